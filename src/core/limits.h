/*
 * limits.h — every size cap in Salus, named once (curl's DYN_* habit).
 * Change a limit here and only here; the config file may lower the HTTP ones.
 */
#ifndef SALUS_CORE_LIMITS_H
#define SALUS_CORE_LIMITS_H

#define SALUS_MAX_BODY          (64u * 1024 * 1024) /* request body (a 10,000-entry bundle fits) */
#define SALUS_MAX_HEADER        (16u * 1024)        /* all request headers together */
#define SALUS_MAX_URL           (8u * 1024)         /* request target */
#define SALUS_MAX_JSON_DEPTH    64                  /* nesting of a JSON document */
#define SALUS_MAX_CONNECTIONS   1024                /* concurrent TLS connections */
#define SALUS_MAX_PER_IP        256                 /* concurrent connections per address */
#define SALUS_IDLE_TIMEOUT_S    30                  /* idle keep-alive connection */
#define SALUS_MAX_ID            64                  /* FHIR id: [A-Za-z0-9\-\.]{1,64} */
#define SALUS_MAX_COUNT         1000                /* _count upper bound */
#define SALUS_DEFAULT_COUNT     50                  /* _count default of history and audit searches */
#define SALUS_SEARCH_COUNT      20                  /* _count default of a FHIR search (docs/search.md) */
#define SALUS_MAX_SCOPE         4096                /* scope string of a client or token */
#define SALUS_MAX_TOKEN         8192                /* bearer token */
#define SALUS_MAX_SECRET        1024                /* client secret */
#define SALUS_MAX_BUNDLE_ENTRIES 10000              /* batch / transaction entries */
#define SALUS_MAX_NOTE          (16u * 1024 * 1024) /* one clinical note for de-identification */
#define SALUS_MAX_LINE          (64u * 1024 * 1024) /* one NDJSON line */
#define SALUS_MAX_AUDIT_EVENT   (1u * 1024 * 1024)  /* one serialised AuditEvent (identifiers only) */

#endif
