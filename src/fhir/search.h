/*
 * search.h — FHIR R4 search (docs/search.md): index extraction from the
 * official SearchParameter expressions, parsing of search requests into the
 * store's query form (store.h, struct salus_sq), and the search interactions
 * (type, system, compartment, Patient/$everything) answering searchset Bundles.
 *
 * Values are normalised once here, for both sides: strings are case-folded and
 * accent-stripped (utf8proc), dates become [low, high] millisecond ranges with
 * the precision they were written with, numbers carry their precision range.
 */
#ifndef SALUS_FHIR_SEARCH_H
#define SALUS_FHIR_SEARCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"
#include "fhir/rest.h"
#include "store/store.h"

/* The store's id of search parameter `code` of resource type `type`: a 30-bit
 * FNV-1a hash of "Type.code" (composite components: "Type.code#i").  The
 * unit tests check it is collision-free over all R4 definitions. */
uint32_t salus_fhir_search_param_id(const char *type, const char *code);

/* Contained resources (_contained=true) are indexed with their container:
 * their parameters under salus_fhir_search_contained_id(id) (a bijection of
 * the 30 id bits; text/of-type bits kept), plus one token row per contained
 * resource under salus_fhir_search_contained_marker() whose code is its
 * type.  The unit tests check neither collides with an ordinary id. */
uint32_t salus_fhir_search_contained_id(uint32_t param);
uint32_t salus_fhir_search_contained_marker(void);

/* Patient-scoped code searches (T?patient=X&code=...; search at scale): a
 * resource of type T with local references X in its `patient` parameter and
 * codes (s, k) in its `code` parameter also has token rows under this id of
 * T with code k and system "X" (any system) and "X|s" (s empty: no system),
 * so the pair is one index range instead of every resource of the patient.
 * The parser adds it as the driving clause; both original clauses stay.
 * The unit tests check it collides with no other id.  Data written before
 * it needs `salus reindex`. */
uint32_t salus_fhir_search_patient_code_id(const char *type);

/* The index of one resource, with the memory its rows point into. */
struct salus_fhir_index {
	struct salus_ix ix;       /* hand &ix to salus_write.index */
	struct salus_ix_row *rows;
	size_t cap;
	struct salus_fhir_arena *arena; /* strings */
	uint16_t group;                 /* last composite group number used */
	struct salus_buf text, content; /* _text and _content */
};
void salus_fhir_index_init(struct salus_fhir_index *x);
void salus_fhir_index_release(struct salus_fhir_index *x);

/* Compute the index rows of `res` (a resource of `type`) from every search
 * parameter of the type.  Errors: SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_fhir_index_build(struct salus_fhir_index *x, const char *type, json_t *res);
/* Tests: evaluate the search parameter expressions from their text on every
 * resource (true) instead of compiled once per type (false, the default);
 * both give the same rows (test_search compares them). */
void salus_fhir_index_interpret(bool on);

/* Derived parameters (store.h struct salus_sq_alias; docs/search.md
 * "Indexing"): parameters whose rows would be exactly other parameters' rows
 * (Observation.patient = subject rows to a Patient; combo-code = code ∪
 * component-code) are not written, and the store reads their bases instead.
 * The table is worked out from the definitions once and handed to the store
 * before the first parameter id is (salus_fhir_search_param_id); NULL when
 * it could not be built (then every parameter keeps its own rows).  Tests:
 * salus_fhir_index_aliases(false) writes and reads every parameter's own
 * rows again (the stored-row version), true restores the default. */
const struct salus_sq_aliases *salus_fhir_search_aliases(void);
/* Is r (a row of a salus_fhir_index) a row of parameter id param (flag bits
 * included)?  Its own, or its base's for a derived parameter: for code that
 * reads a resource's rows by parameter in memory (the access checks). */
bool salus_fhir_index_row_is(const struct salus_ix_row *r, uint32_t param);
void salus_fhir_index_aliases(bool on);

/* Only the compartment owner of res (salus_ix.patient, whose record key seals
 * the body) and no search rows: the write path without search indexing, for
 * measuring what indexing costs (`salus load --no-index`).  Errors as
 * salus_fhir_index_build. */
int salus_fhir_index_build_owner(struct salus_fhir_index *x, const char *type, json_t *res);

/* Register the indexing hook on st (idempotent): from then on every CREATE
 * and UPDATE written through salus_store_write is indexed (store.h). */
void salus_fhir_search_attach(struct salus_store *st);
/* Register a hook that gives the store only each resource's compartment owner
 * (salus_fhir_index_build_owner): resources are sealed as usual but findable
 * by type, _id and _lastUpdated only.  Benchmarks (`salus load --no-index`). */
void salus_fhir_search_attach_owner(struct salus_store *st);

/* ---- value normalisation (shared with the request parser; tested alone) ---- */

/* Case-fold and strip accents (NFKD, marks removed) into out (replacing it).
 * Errors: SALUS_EINVALID (not UTF-8), SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_fhir_norm(const char *s, size_t n, struct salus_buf *out);
/* A FHIR date/dateTime/instant (or a search value of the same forms, where
 * seconds are optional) as the inclusive ms range its precision covers.
 * Without a time zone the value is taken as UTC.  Errors: SALUS_EINVALID. */
int salus_fhir_date_range(const char *s, size_t n, int64_t *lo /* OUT */, int64_t *hi /* OUT */);
/* A decimal ("100", "1.50", "1e2") and its precision range [lo, hi): half a
 * unit of the last significant digit either side.  Errors: SALUS_EINVALID. */
int salus_fhir_number_range(const char *s, size_t n, double *v /* OUT */, double *lo /* OUT */,
			    double *hi /* OUT */);

/* ---- requests ---- */

struct salus_fhir_search; /* a parsed request (opaque) */

/* Parse the parameters of a search on `type` (NULL: system-wide) into q.
 * lenient: unknown parameters are dropped (and left out of the self link)
 * instead of failing.  Errors: SALUS_EINVALID with a PHI-free message in *why
 * (static), SALUS_ENOMEM. */
int salus_fhir_search_parse(const char *type, const struct salus_param *params, size_t nparams, bool lenient,
			    struct salus_fhir_search **out /* OUT */, const char **why /* OUT */);
/* The same, knowing this server's base URL (borrowed, must outlive *out):
 * a reference search value on it ("BASE/Patient/1") is the local reference
 * Patient/1. */
int salus_fhir_search_parse_at(const char *type, const char *base, const struct salus_param *params, size_t nparams,
			       bool lenient, struct salus_fhir_search **out /* OUT */, const char **why /* OUT */);
void salus_fhir_search_free(struct salus_fhir_search *s); /* NULL-safe */
/* The store query of a parsed search (borrowed; valid until free). */
const struct salus_sq *salus_fhir_search_query(const struct salus_fhir_search *s);

/* Serve a search interaction (rq->op: SALUS_FHIR_SEARCH_TYPE, and the search
 * ops of rest.h: system, compartment, $everything).  POST _search bodies
 * (application/x-www-form-urlencoded) are merged with the URL parameters.
 * Always fills rs; returns the status. */
int salus_fhir_search(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs);

/* The read interaction's _summary and _elements (R4 search.html "Summary" and "Elements", which a
 * read takes too): appends to out the stored resource text json[0..len) subsetted as in a search
 * (with the SUBSETTED tag), or unchanged when neither is given (or _summary is false or count).
 * Other parameters are not looked at.  Errors: SALUS_EINVALID (*why: static, PHI-free),
 * SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_fhir_read_subset(const char *type, const struct salus_param *params, size_t nparams, const char *json,
			   size_t len, struct salus_buf *out, const char **why);

#endif
