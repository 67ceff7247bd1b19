/*
 * clock.h — time stamps as FHIR instants, and random identifiers.
 */
#ifndef SALUS_CORE_CLOCK_H
#define SALUS_CORE_CLOCK_H
#include <stddef.h>
#include <stdint.h>

#define SALUS_INSTANT_LEN 32 /* "2026-11-23T08:30:00.123Z" + NUL, with room */
#define SALUS_UUID_LEN 37    /* 36 chars + NUL */

/* Milliseconds since the Unix epoch (UTC, CLOCK_REALTIME). */
int64_t salus_now_ms(void);
/* Monotonic milliseconds, for timeouts and durations. */
int64_t salus_mono_ms(void);
/* Format ms as a FHIR instant with milliseconds, UTC ("...T08:30:00.123Z"). */
void salus_instant_format(int64_t ms, char out[SALUS_INSTANT_LEN] /* OUT */);
/* Parse a FHIR date, dateTime or instant (any precision, any offset) into the
 * first millisecond it covers, UTC.  SALUS_EINVALID on anything else. */
int salus_instant_parse(const char *s, size_t n, int64_t *ms /* OUT */);
/* A random RFC 4122 version-4 UUID in lower case, from getrandom(2). */
void salus_uuid_new(char out[SALUS_UUID_LEN] /* OUT */);

#endif
