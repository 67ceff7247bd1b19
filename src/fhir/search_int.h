/*
 * search_int.h — the parsed form of a search request, shared by
 * search_parse.c (which builds it) and search_exec.c (which runs it).
 * Internal to src/fhir/search*.c.
 */
#ifndef SALUS_FHIR_SEARCH_INT_H
#define SALUS_FHIR_SEARCH_INT_H
#include "fhir/search.h"

enum { SUM_NONE, SUM_TRUE, SUM_TEXT, SUM_DATA, SUM_COUNT };
enum { TOTAL_DEFAULT, TOTAL_NONE, TOTAL_ESTIMATE, TOTAL_ACCURATE };

struct incl {
	bool rev;      /* _revinclude */
	bool iterate;  /* :iterate */
	const char *src; /* source type ("*": any) */
	uint32_t *params; /* reference params of src (all of them for "*") */
	size_t nparams;
	const char *target; /* target type or NULL */
};

struct salus_fhir_search {
	struct salus_sq q;
	struct salus_sq_clause *cl; /* q.clauses (growable) */
	size_t ncl, capcl;
	void **allocs; /* everything below is owned through this list */
	size_t nallocs, capallocs;
	int summary, total;
	const char **elements;
	size_t nelements;
	struct incl *incl;
	size_t nincl;
	bool *used; /* per request parameter: kept in the self link */
	size_t nused;
	const char **types; /* system-wide search: the types of _type (NULL: all) */
	size_t ntypes;
	bool include_all;   /* _include=* (every reference of every hit) */
	const char *base;   /* this server's FHIR base URL (borrowed; NULL: unknown) */
};

/* Allocate zeroed memory owned by s (freed with it); NULL on failure. */
void *salus_fhir_search_alloc(struct salus_fhir_search *s, size_t n);
/* Append a clause to s->q; NULL on failure. */
struct salus_sq_clause *salus_fhir_search_clause(struct salus_fhir_search *s);
/* Restrict s to the Patient compartment of patient id pid: a clause on the
 * compartment parameters (fhir/defs.h) of ctype, or, with ctype NULL, of the
 * types of _type (all types when there is none).  A type outside the
 * compartment matches nothing.  Errors: SALUS_ENOMEM. */
int salus_fhir_search_compartment(struct salus_fhir_search *s, const char *ctype, const char *pid);

#endif
