/*
 * log.h — structured, PHI-free logging.
 *
 * A log line is an event name plus key=value fields the caller chooses from
 * identifiers, codes and timings; there is deliberately no free-text "%s of a
 * resource" form.  Never pass names, note text, request bodies or search
 * values: only resource types, ids that are server-assigned, status codes,
 * durations and counts.  Lines go to stderr as logfmt:
 *   ts=2026-11-23T08:30:00Z level=info event=http.request status=200 ms=0.41
 */
#ifndef SALUS_CORE_LOG_H
#define SALUS_CORE_LOG_H

enum salus_log_level { SALUS_LOG_DEBUG, SALUS_LOG_INFO, SALUS_LOG_WARN, SALUS_LOG_ERROR };

void salus_log_set_level(enum salus_log_level min);
/* fmt holds only the key=value fields after `event=`; e.g. ("store.open", "path_kind=%s", "sqlite"). */
void salus_log(enum salus_log_level lvl, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
