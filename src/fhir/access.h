/*
 * access.h — enforcement of the access decision (policy/policy.h) inside the
 * FHIR layer, below the REST handlers (docs/security.md "The access
 * decision").  Internal to src/fhir/, except salus_fhir_access_consents (the
 * server gives it to the policy).
 *
 *  - Queries: salus_fhir_guards_build turns the decision for one interaction
 *    letter into store guards (store.h struct salus_sq_guard) that every
 *    search, count, chain, _has, _include and _revinclude query carries, so
 *    matches, totals and paging only ever see permitted rows.
 *  - Resources: salus_fhir_access_visible decides on one resource (current or
 *    historical version) from its content, with the same index rows a search
 *    would use: reads, vreads, history entries.
 *  - Writes: salus_fhir_access_writes checks each write of an interaction or a
 *    transaction before it is handed to the store.
 * A NULL policy, or one that restricts nothing (salus_policy_restricts), makes
 * every function here a no-op that allows.
 */
#ifndef SALUS_FHIR_ACCESS_H
#define SALUS_FHIR_ACCESS_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "policy/policy.h"
#include "store/store.h"

struct salus_fhir_search;
struct salus_query;
struct salus_fhir_rel;
struct salus_fhir_lbl;

/* Guards of one interaction letter; owns everything it points to. */
struct salus_fhir_guards {
	struct salus_sq_guard *v;
	size_t n;
	struct salus_sq_clause *cl;       /* compartment clauses (owned) */
	struct salus_sq_val *vals;        /* their values (owned) */
	struct salus_fhir_search **parsed; /* v2 restrictions parsed (owned) */
	struct salus_query **queries;      /* and their parameters (owned) */
	size_t nparsed;
	struct salus_fhir_rel *rel;        /* the relationship rule's clauses (owned), or NULL */
	struct salus_fhir_lbl *lbl;        /* the security labels' and Consent denials' clauses (owned), or NULL */
};

/* Guards for letter l under policy p (NULL or unrestricted: none, g->n == 0).
 * Always release g, also after an error.  Errors: SALUS_ENOMEM. */
int salus_fhir_guards_build(const struct salus_policy *p, enum salus_policy_letter l,
			    struct salus_fhir_guards *g /* OUT */);
void salus_fhir_guards_release(struct salus_fhir_guards *g);

/* May the caller see resource type/id with content res (borrowed) under
 * letter l?  *ok false for a type not granted, a resource outside the
 * patient's compartment or not matching a v2 restriction.  Restrictions are
 * evaluated on the resource's index rows: token, reference (local), string,
 * uri and _id criteria; any other criterion counts as not matching (fail
 * safe).  Under the relationship rule (policy.h) the resource must be a
 * related Patient or in the compartment of one (store queries on st; types
 * outside the compartment pass).  Errors: SALUS_ENOMEM, SALUS_EIO. */
int salus_fhir_access_visible(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
			      const char *type, const char *id, json_t *res, bool *ok /* OUT */);
/* The same for stored JSON text (json, len). */
int salus_fhir_access_visible_text(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
				   const char *type, const char *id, const char *json, size_t len, bool *ok /* OUT */);
/* The same for a stored version (its json), deciding without parsing it when
 * its body was sealed under the record key of the token's own patient
 * (r->owner): that owner is a Patient reference through the type's
 * compartment parameters, so the version is in the compartment (a patient
 * token sees every label of it and no Consent applies). */
int salus_fhir_access_visible_res(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
				  const struct salus_resource *r, bool *ok /* OUT */);

/* Check writes before they are applied: an update or delete needs the
 * current version (if any, and not deleted) visible under 'u'/'d' (else
 * SALUS_ENOTFOUND: existence is not revealed), a create or update needs the
 * new content visible under 'c'/'u' (else SALUS_EFORBIDDEN).  *bad gets the
 * index of the first refused op, *why a PHI-free reason.
 * Errors also: SALUS_EIO, SALUS_ENOMEM. */
int salus_fhir_access_writes(struct salus_store *st, const struct salus_policy *p, const struct salus_write *ops,
			     size_t n, size_t *bad /* OUT */, const char **why /* OUT */);

/* salus_policy_consent_fn for the server (ctx: the store): every active
 * Consent whose provision.actor references actor (Consent?actor=&status=active,
 * through the index).  More than 256: SALUS_ETOOLARGE (the caller fails safe).
 * Errors also: SALUS_EIO, SALUS_ENOMEM. */
int salus_fhir_access_consents(void *st, const char *actor, salus_policy_consent_each each, void *each_ctx);

/* True when p restricts anything (salus_policy_restricts; NULL: false). */
bool salus_fhir_access_restricted(const struct salus_policy *p);

#endif
