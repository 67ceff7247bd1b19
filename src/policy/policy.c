/*
 * policy.c — the access decision (see policy.h): the patient context of a
 * token, and the rule of a (resource type, interaction) from the scopes.
 */
#include "policy/policy.h"

#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

static bool id_ok(const char *s, size_t n)
{
	if (n == 0 || n > SALUS_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

int salus_policy_patient_of(struct salus_store *st, const char *fhir_user, char out[SALUS_MAX_ID + 1])
{
	if (!fhir_user)
		return SALUS_ENOTFOUND;
	if (!strncmp(fhir_user, "Patient/", 8)) {
		size_t n = strlen(fhir_user + 8);
		if (!id_ok(fhir_user + 8, n))
			return SALUS_ENOTFOUND;
		memcpy(out, fhir_user + 8, n + 1);
		return SALUS_OK;
	}
	if (strncmp(fhir_user, "RelatedPerson/", 14) || !st || !id_ok(fhir_user + 14, strlen(fhir_user + 14)))
		return SALUS_ENOTFOUND;
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(st, "RelatedPerson", fhir_user + 14, 0, &r);
	if (rc == SALUS_ENOTFOUND || rc == SALUS_EGONE) {
		salus_resource_release(&r);
		return SALUS_ENOTFOUND;
	}
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(r.json, r.len, 0, NULL);
	salus_resource_release(&r);
	if (!j)
		return SALUS_ENOMEM;
	rc = SALUS_ENOTFOUND;
	json_t *active = json_object_get(j, "active");
	const char *ref = json_string_value(json_object_get(json_object_get(j, "patient"), "reference"));
	if ((!active || json_is_true(active)) && ref && !strncmp(ref, "Patient/", 8) && id_ok(ref + 8, strlen(ref + 8))) {
		memcpy(out, ref + 8, strlen(ref + 8) + 1);
		rc = SALUS_OK;
	}
	json_decref(j);
	return rc;
}

int salus_policy_init(struct salus_policy *p, struct salus_store *st, const struct salus_policy_scope *scopes,
		      size_t n, bool user_ctx, const char *fhir_user, const char *patient)
{
	memset(p, 0, sizeof *p);
	if (n > SALUS_POLICY_MAX_SCOPES)
		return SALUS_EINVALID;
	memcpy(p->v, scopes, n * sizeof *scopes);
	p->n = n;
	p->user_ctx = user_ctx;
	bool any_patient = false;
	for (size_t i = 0; i < n; i++)
		any_patient |= scopes[i].ctx == SALUS_POLICY_CTX_PATIENT;
	if (!any_patient || !fhir_user || !*fhir_user)
		return SALUS_OK;
	char pid[SALUS_MAX_ID + 1];
	int rc = salus_policy_patient_of(st, fhir_user, pid);
	if (rc == SALUS_ENOTFOUND) {
		if (!strncmp(fhir_user, "RelatedPerson/", 14))
			salus_log(SALUS_LOG_INFO, "policy.proxy.inactive", "reason=no-active-relatedperson");
		return SALUS_OK;
	}
	if (rc)
		return rc;
	if (patient && *patient && strcmp(patient, pid)) {
		/* the RelatedPerson now points at another patient than when the token was issued */
		salus_log(SALUS_LOG_WARN, "policy.context.changed", "reason=patient-differs-from-token");
		return SALUS_OK;
	}
	memcpy(p->patient, pid, sizeof pid);
	return SALUS_OK;
}

/* Rank of a granting scope: lower is wider. */
static int rank_of(const struct salus_policy_scope *sc)
{
	bool pat = sc->ctx == SALUS_POLICY_CTX_PATIENT;
	if (!sc->query)
		return pat ? 1 : 0;
	return pat ? 3 : 2;
}

struct salus_policy_rule salus_policy_rule(const struct salus_policy *p, const char *type, enum salus_policy_letter l)
{
	struct salus_policy_rule r = {false, false, NULL};
	int best = 4;
	if (!p || !type || (unsigned)l > SALUS_POLICY_S)
		return r;
	bool star = !strcmp(type, "*");
	for (size_t k = 0; k < p->n; k++) {
		const struct salus_policy_scope *sc = &p->v[k];
		if (!(sc->letters & SALUS_POLICY_BIT(l)))
			continue;
		if (strcmp(sc->type, "*") && (star || strcmp(sc->type, type)))
			continue;
		if ((sc->ctx == SALUS_POLICY_CTX_USER && !p->user_ctx) ||
		    (sc->ctx == SALUS_POLICY_CTX_PATIENT && !p->patient[0]))
			continue;
		if (sc->query && !strcmp(sc->type, "*"))
			continue; /* a restriction names one type's parameters */
		int rk = rank_of(sc);
		if (rk < best) {
			best = rk;
			r.granted = true;
			r.compartment = sc->ctx == SALUS_POLICY_CTX_PATIENT;
			r.query = sc->query;
		}
	}
	return r;
}

bool salus_policy_allows(const struct salus_policy *p, const char *type, enum salus_policy_letter l)
{
	return salus_policy_rule(p, type, l).granted;
}

bool salus_policy_restricts(const struct salus_policy *p)
{
	if (!p)
		return false;
	for (size_t k = 0; k < p->n; k++) {
		const struct salus_policy_scope *sc = &p->v[k];
		if (sc->query || (sc->ctx == SALUS_POLICY_CTX_PATIENT && p->patient[0]))
			return true;
	}
	return false;
}

size_t salus_policy_types(const struct salus_policy *p, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t k = 0; p && k < p->n && n < max; k++) {
		const char *t = p->v[k].type;
		bool dup = !strcmp(t, "*");
		for (size_t i = 0; i < n && !dup; i++)
			dup = !strcmp(out[i], t);
		if (!dup)
			out[n++] = t;
	}
	return n;
}
