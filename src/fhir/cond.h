/*
 * cond.h — matching for conditional interactions until the search module
 * lands: conditional create (If-None-Exist), conditional update and delete
 * (`PUT|DELETE /T?criteria`), and conditional references in transactions
 * (`Patient?identifier=system|value`).
 *
 * Supported criteria: `identifier=system|value`, `identifier=value` (any
 * system), `identifier=|value` (no system) — through the store's identifier
 * index (salus_store_find_by_identifier) — and `_id=id`; several are ANDed.
 * Anything else is refused (SALUS_EINVALID), never silently ignored: a
 * conditional write that ignored a criterion could hit the wrong resource.
 * The search engineer replaces salus_fhir_match with the search engine.
 */
#ifndef SALUS_FHIR_COND_H
#define SALUS_FHIR_COND_H
#include <stddef.h>

#include "fhir/rest.h"

#define SALUS_COND_MAX_PARAMS 16

/* A parsed query string: names and values percent-decoded into owned copies. */
struct salus_query {
	struct salus_param p[SALUS_COND_MAX_PARAMS];
	size_t n;
};
/* Parse "a=b&c=d" (a leading '?' is skipped).  Errors: SALUS_EINVALID (too
 * many parameters, bad escapes, NUL), SALUS_ENOMEM.  Release with
 * salus_query_release even on error. */
int salus_query_parse(struct salus_query *q /* OUT */, const char *s, size_t n);
void salus_query_release(struct salus_query *q);

/* Ids of the current resources of `type` matching the criteria: at most
 * `max` are written to ids (each SALUS_MAX_ID + 1 bytes), *count gets the
 * number found, capped at max + 1 (so "more than max" is visible).
 * Errors: SALUS_EINVALID (no criteria, or an unsupported one; *why says which
 * kind, PHI-free), SALUS_EIO, SALUS_ENOMEM. */
int salus_fhir_match(struct salus_store *st, const char *type, const struct salus_param *params, size_t n,
		     char (*ids)[SALUS_MAX_ID + 1], int max, int *count /* OUT */, const char **why /* OUT */);

/* The criteria of a conditional create as store-side guards
 * (salus_write.none_match): the store checks them again in the write
 * transaction, so concurrent conditional creates cannot both create.  Only
 * the criteria salus_fhir_match supports (identifier, _id); the guard keeps
 * its own copies of the values.  Errors:
 * SALUS_EINVALID, SALUS_ENOMEM.  Release with salus_cond_guard_release, also
 * after an error. */
struct salus_cond_guard {
	struct salus_write_cond c[SALUS_COND_MAX_PARAMS];
	char *own[2 * SALUS_COND_MAX_PARAMS]; /* the strings c points to (owned copies) */
	size_t n;
};
int salus_cond_guard_init(struct salus_cond_guard *g /* OUT */, const struct salus_param *params, size_t n);
void salus_cond_guard_release(struct salus_cond_guard *g);

#endif
