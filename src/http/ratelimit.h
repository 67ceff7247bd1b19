/*
 * ratelimit.h — per-source-address token buckets (429 + Retry-After).
 *
 * A fixed table of buckets indexed by a keyed hash of the client address
 * (IPv4, or the /64 prefix of IPv6), so memory is bounded whatever the
 * traffic; two addresses that collide share a bucket (stricter, never
 * looser).  Each bucket holds up to `per_minute` tokens and refills at
 * per_minute/60 tokens a second.
 */
#ifndef SALUS_HTTP_RATELIMIT_H
#define SALUS_HTTP_RATELIMIT_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct salus_ratelimit;

/* per_minute 0 disables limiting (salus_ratelimit_take always allows). */
int salus_ratelimit_new(long per_minute, struct salus_ratelimit **out /* OUT */);
void salus_ratelimit_free(struct salus_ratelimit *rl); /* NULL-safe */
/* Take one token for addr at time now_ms.  false: over the limit, and
 * *retry_after_s says when a token will be there. */
bool salus_ratelimit_take(struct salus_ratelimit *rl, const struct sockaddr *addr, int64_t now_ms,
			  int *retry_after_s /* OUT */);

#endif
