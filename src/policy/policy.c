/*
 * policy.c — the access decision (see policy.h): the patient context of a
 * token, and the rule of a (resource type, interaction) from the scopes.
 */
#include "policy/policy.h"

#include <stddef.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/clock.h"
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

int salus_policy_launch_target(struct salus_store *st, const char *patient, const char *encounter)
{
	if (!st || !patient || !id_ok(patient, strlen(patient)) ||
	    (encounter && *encounter && !id_ok(encounter, strlen(encounter))))
		return SALUS_ENOTFOUND;
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(st, "Patient", patient, 0, &r);
	salus_resource_release(&r);
	if (rc)
		return rc == SALUS_EGONE || rc == SALUS_ENOTFOUND ? SALUS_ENOTFOUND : rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	if (!encounter || !*encounter)
		return SALUS_OK;
	if ((rc = salus_store_read(st, "Encounter", encounter, 0, &r))) {
		salus_resource_release(&r);
		return rc == SALUS_EGONE || rc == SALUS_ENOTFOUND ? SALUS_ENOTFOUND : rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	}
	json_t *j = json_loadb(r.json, r.len, 0, NULL);
	salus_resource_release(&r);
	if (!j)
		return SALUS_ENOMEM;
	const char *ref = json_string_value(json_object_get(json_object_get(j, "subject"), "reference"));
	rc = ref && !strncmp(ref, "Patient/", 8) && !strcmp(ref + 8, patient) ? SALUS_OK : SALUS_ENOTFOUND;
	json_decref(j);
	return rc;
}

#define BTG_NS "breakglass"

/* The user's break-glass record (a JSON array, or NULL when there is none). */
static int btg_load(struct salus_store *st, const char *user, json_t **out)
{
	char *val = NULL;
	size_t n = 0;
	*out = NULL;
	int rc = salus_store_kv_get(st, BTG_NS, user, &val, &n);
	if (rc == SALUS_ENOTFOUND)
		return SALUS_OK;
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(val, n, 0, NULL);
	salus_free(val);
	if (!j || !json_is_array(j)) {
		json_decref(j);
		return SALUS_EIO; /* a record this module did not write */
	}
	*out = j;
	return SALUS_OK;
}

static int64_t now_or(int64_t now_ms)
{
	return now_ms ? now_ms : salus_now_ms();
}

/* The scopes, the patient context and the relationship rule of a token. */
static int context_init(struct salus_policy *p, struct salus_store *st, const struct salus_policy_config *cfg,
			const struct salus_policy_token *t)
{
	if (t->n > SALUS_POLICY_MAX_SCOPES)
		return SALUS_EINVALID;
	if (t->n)
		memcpy(p->v, t->scopes, t->n * sizeof *t->scopes);
	p->n = t->n;
	p->user_ctx = t->user_ctx;
	bool any_patient = false, any_user = false;
	for (size_t i = 0; i < t->n; i++) {
		any_patient |= t->scopes[i].ctx == SALUS_POLICY_CTX_PATIENT;
		any_user |= t->scopes[i].ctx == SALUS_POLICY_CTX_USER;
	}
	const char *fu = t->fhir_user;
	/* a staff user's token from an EHR launch: patient/ scopes in the launch's patient context */
	bool staff_launch = t->user_ctx && any_patient && fu && !strncmp(fu, "Practitioner/", 13) &&
			    id_ok(fu + 13, strlen(fu + 13)) && t->patient && id_ok(t->patient, strlen(t->patient));
	if (cfg && cfg->relationship && t->user_ctx && (any_user || staff_launch) && fu &&
	    !strncmp(fu, "Practitioner/", 13) && id_ok(fu + 13, strlen(fu + 13))) {
		p->related = true;
		memcpy(p->practitioner, fu + 13, strlen(fu + 13) + 1);
		json_t *g = NULL;
		int rc = st && t->user ? btg_load(st, t->user, &g) : SALUS_OK;
		if (rc)
			return rc;
		int64_t now = salus_now_ms();
		size_t i;
		json_t *e;
		json_array_foreach(g, i, e)
		{
			const char *pid = json_string_value(json_object_get(e, "patient"));
			int64_t exp = (int64_t)json_integer_value(json_object_get(e, "expires_ms"));
			if (pid && exp > now && id_ok(pid, strlen(pid)) && p->nbtg < SALUS_POLICY_MAX_BTG)
				memcpy(p->btg[p->nbtg++], pid, strlen(pid) + 1);
		}
		json_decref(g);
	}
	if (!any_patient || !fu || !*fu)
		return SALUS_OK;
	if (staff_launch) { /* the context the launching user chose; the relationship rule still applies */
		memcpy(p->patient, t->patient, strlen(t->patient) + 1);
		return SALUS_OK;
	}
	char pid[SALUS_MAX_ID + 1];
	int rc = salus_policy_patient_of(st, fu, pid);
	if (rc == SALUS_ENOTFOUND) {
		if (!strncmp(fu, "RelatedPerson/", 14))
			salus_log(SALUS_LOG_INFO, "policy.proxy.inactive", "reason=no-active-relatedperson");
		return SALUS_OK;
	}
	if (rc)
		return rc;
	if (t->patient && *t->patient && strcmp(t->patient, pid)) {
		/* the RelatedPerson now points at another patient than when the token was issued */
		salus_log(SALUS_LOG_WARN, "policy.context.changed", "reason=patient-differs-from-token");
		return SALUS_OK;
	}
	memcpy(p->patient, pid, sizeof pid);
	return SALUS_OK;
}

/* ---- security labels ---- */

static const struct {
	const char *system, *code;
} label_tab[] = {
	{SALUS_POLICY_CONF_SYSTEM, "R"},   {SALUS_POLICY_CONF_SYSTEM, "V"},  {SALUS_POLICY_ACT_SYSTEM, "ETH"},
	{SALUS_POLICY_ACT_SYSTEM, "GDIS"}, {SALUS_POLICY_ACT_SYSTEM, "HIV"}, {SALUS_POLICY_ACT_SYSTEM, "MST"},
	{SALUS_POLICY_ACT_SYSTEM, "PSY"},  {SALUS_POLICY_ACT_SYSTEM, "SCA"}, {SALUS_POLICY_ACT_SYSTEM, "SDV"},
	{SALUS_POLICY_ACT_SYSTEM, "SEX"},  {SALUS_POLICY_ACT_SYSTEM, "STD"}, {SALUS_POLICY_ACT_SYSTEM, "SUD"},
	{SALUS_POLICY_ACT_SYSTEM, "TBOO"}, {SALUS_POLICY_ACT_SYSTEM, "BH"},  {SALUS_POLICY_ACT_SYSTEM, "MH"},
	{SALUS_POLICY_ACT_SYSTEM, "SICKLE"},
};
#define NLABELS (sizeof label_tab / sizeof label_tab[0])
_Static_assert(NLABELS <= 32, "label masks are 32 bits");

size_t salus_policy_label_count(void)
{
	return NLABELS;
}

bool salus_policy_label_at(size_t i, const char **system, const char **code)
{
	if (i >= NLABELS)
		return false;
	*system = label_tab[i].system;
	*code = label_tab[i].code;
	return true;
}

/* Is `word` one of the space-separated words of list? */
static bool word_in(const char *list, const char *word)
{
	size_t n = strlen(word);
	for (const char *p = list; n && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		size_t m = strcspn(p, " ,");
		if (m == n && !memcmp(p, word, n))
			return true;
		p += m;
	}
	return false;
}

/* Which labels hide resources from this caller (docs/security.md). */
static void labels_init(struct salus_policy *p, const struct salus_policy_config *cfg, const struct salus_policy_token *t)
{
	const uint32_t all = (uint32_t)((1ull << NLABELS) - 1), v = 1u << SALUS_POLICY_LABEL_V;
	const char *fu = t->fhir_user ? t->fhir_user : "";
	if (!t->user_ctx || !t->user || !*t->user)
		return; /* a client (system/ scopes): a service trusted with the data it was registered for */
	if (!strncmp(fu, "Patient/", 8))
		return; /* the patient's own record (patient/ scopes reach nothing else) */
	if (!strncmp(fu, "RelatedPerson/", 14)) {
		p->hidden = all; /* a proxy sees no restricted or sensitive part of the record */
		return;
	}
	const char *lr = cfg && cfg->label_roles ? cfg->label_roles : SALUS_POLICY_LABEL_ROLES;
	const char *vr = cfg && cfg->label_v_roles ? cfg->label_v_roles : SALUS_POLICY_LABEL_V_ROLES;
	if (t->role && word_in(vr, t->role))
		return;
	if (t->role && word_in(lr, t->role)) {
		p->hidden = v; /* very restricted: only inside a break-glass patient's compartment */
		p->hidden_btg = v;
		return;
	}
	p->hidden = all;
}

/* ---- Consent ---- */

#define CONSENT_SCOPE_SYSTEM "http://terminology.hl7.org/CodeSystem/consentscope"
#define RESOURCE_TYPES_SYSTEM "http://hl7.org/fhir/resource-types"

static const char *jstr_or(const json_t *j)
{
	const char *s = json_string_value(j);
	return s ? s : "";
}

static bool code_ok(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	return n && n <= max;
}

/* Does reference r name actor ("Type/id"), relative or as the end of an absolute URL? */
static bool ref_is(const char *r, const char *actor)
{
	size_t n = r ? strlen(r) : 0, m = strlen(actor);
	if (n == m)
		return !strcmp(r, actor);
	return n > m && r[n - m - 1] == '/' && !strcmp(r + n - m, actor) && strstr(r, "://");
}

/* The end (exclusive) of a FHIR date/dateTime s (the whole of its precision), or INT64_MAX if it does not parse. */
static int64_t period_end(const char *s)
{
	int64_t ms;
	size_t n = strlen(s);
	if (salus_instant_parse(s, n, &ms))
		return INT64_MAX;
	if (n == 4)
		return ms + 366ll * 86400000;
	if (n == 7)
		return ms + 31ll * 86400000;
	if (n == 10)
		return ms + 86400000;
	return ms + 1;
}

#define ACT_REASON_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#define CONSENT_NESTED_MAX 16 /* nested provisions read of one provision (more: fail safe) */

/* Does provision prov name actor among its actors?  *listed: it has actors at all. */
static bool prov_names(const json_t *prov, const char *actor, bool *listed)
{
	json_t *e;
	size_t i;
	bool mine = false;
	*listed = json_array_size(json_object_get(prov, "actor")) > 0;
	json_array_foreach(json_object_get(prov, "actor"), i, e)
		mine |= ref_is(json_string_value(json_object_get(json_object_get(e, "reference"), "reference")), actor);
	return mine;
}

/* Is now within provision.period (when given)? */
static bool prov_now(const json_t *prov, int64_t now)
{
	json_t *per = json_object_get(prov, "period");
	if (!per)
		return true;
	const char *start = json_string_value(json_object_get(per, "start"));
	const char *end = json_string_value(json_object_get(per, "end"));
	int64_t ms;
	if (start && !salus_instant_parse(start, strlen(start), &ms) && now < ms)
		return false; /* not yet */
	if (end && now >= period_end(end))
		return false; /* over */
	return true;
}

/* Does provision prov bind this access by its purpose (docs/security.md)?  btg: a
 * break-glass access (purposeOfUse BTG); deny: prov is a denial. */
static bool prov_purpose(const json_t *prov, bool btg, bool deny)
{
	json_t *pu = json_object_get(prov, "purpose"), *e;
	size_t i;
	if (!json_array_size(pu))
		return deny ? !btg : true;
	bool emergency = false, other = false;
	json_array_foreach(pu, i, e)
	{
		const char *code = jstr_or(json_object_get(e, "code"));
		bool em = !strcmp(jstr_or(json_object_get(e, "system")), ACT_REASON_SYSTEM) &&
			  (!strcmp(code, "BTG") || !strcmp(code, "ETREAT"));
		emergency |= em;
		other |= !em;
	}
	if (deny)
		return btg ? emergency : other;
	return btg && emergency; /* a permit for ordinary purposes is not applied: Salus cannot tell them apart */
}

/* The labels and classes of prov into (labels, *nl) and (types, *nt), at most max each.
 * false when one is unusable or there are more than max (the caller widens). */
static bool prov_codes(const json_t *prov, struct salus_policy_code *labels, size_t *nl,
		       char (*types)[SALUS_MAX_TYPE_NAME + 1], size_t *nt, size_t max)
{
	json_t *sl = json_object_get(prov, "securityLabel"), *cl = json_object_get(prov, "class"), *e;
	size_t i;
	bool lok = json_array_size(sl) <= max, tok = json_array_size(cl) <= max;
	*nl = *nt = 0;
	json_array_foreach(sl, i, e)
	{
		const char *sys = json_string_value(json_object_get(e, "system")), *code = json_string_value(json_object_get(e, "code"));
		if (!lok || !code_ok(sys, SALUS_POLICY_CODE_MAX) || !code_ok(code, SALUS_POLICY_CODE_MAX)) {
			lok = false;
			break;
		}
		memcpy(labels[*nl].system, sys, strlen(sys) + 1);
		memcpy(labels[(*nl)++].code, code, strlen(code) + 1);
	}
	json_array_foreach(cl, i, e)
	{
		const char *sys = json_string_value(json_object_get(e, "system")), *code = json_string_value(json_object_get(e, "code"));
		if (!tok || !sys || strcmp(sys, RESOURCE_TYPES_SYSTEM) || !code_ok(code, SALUS_MAX_TYPE_NAME) || code[0] < 'A' ||
		    code[0] > 'Z') {
			tok = false;
			break;
		}
		memcpy(types[(*nt)++], code, strlen(code) + 1);
	}
	if (!lok)
		*nl = 0;
	if (!tok)
		*nt = 0;
	return lok && tok;
}

/* A denial of patient by provision prov (which applies) into p, with the nested permits of prov that
 * apply to actor as exceptions. */
static void deny_add(struct salus_policy *p, const char *patient, const json_t *prov, const char *actor, int64_t now,
		     bool btg)
{
	struct salus_policy_deny d;
	memset(&d, 0, offsetof(struct salus_policy_deny, except));
	d.nexcept = 0;
	memcpy(d.patient, patient, strlen(patient) + 1);
	/* labels, classes: an unusable list is dropped — the whole record for that dimension (fail safe) */
	prov_codes(prov, d.labels, &d.nlabels, d.types, &d.ntypes, SALUS_POLICY_DENY_CODES);
	json_t *nested = json_object_get(prov, "provision"), *e;
	size_t i;
	json_array_foreach(nested, i, e)
	{
		bool listed;
		if (i >= CONSENT_NESTED_MAX || strcmp(jstr_or(json_object_get(e, "type")), "permit"))
			continue; /* a nested deny inside a deny adds nothing to it */
		bool mine = prov_names(e, actor, &listed);
		if ((listed && !mine) || !prov_now(e, now) || !prov_purpose(e, btg, false))
			continue;
		if (json_array_size(json_object_get(e, "provision")))
			continue; /* an exception with exceptions of its own: not applied (fail safe) */
		struct salus_policy_except x;
		memset(&x, 0, sizeof x);
		if (!prov_codes(e, x.labels, &x.nlabels, x.types, &x.ntypes, SALUS_POLICY_EXCEPT_CODES))
			continue; /* not kept exactly: not applied */
		if (!x.nlabels && !x.ntypes)
			return; /* a permit of everything: this actor is not denied */
		if (d.nexcept < SALUS_POLICY_DENY_EXCEPT)
			d.except[d.nexcept++] = x;
	}
	if (p->ndeny < SALUS_POLICY_MAX_DENY)
		p->deny[p->ndeny++] = d;
	else
		p->deny_overflow = true;
}

int salus_policy_consent_add(struct salus_policy *p, const char *actor, const char *json, size_t n, int64_t now_ms)
{
	json_t *j = json_loadb(json, n, 0, NULL);
	if (!j)
		return SALUS_OK; /* not a resource this can read: nothing to add */
	int64_t now = now_or(now_ms);
	const char *pref = json_string_value(json_object_get(json_object_get(j, "patient"), "reference"));
	json_t *prov = json_object_get(j, "provision"), *e;
	size_t i;
	const char *type = jstr_or(json_object_get(prov, "type"));
	bool ok = !strcmp(jstr_or(json_object_get(j, "resourceType")), "Consent") &&
		  !strcmp(jstr_or(json_object_get(j, "status")), "active") && pref &&
		  !strncmp(pref, "Patient/", 8) && id_ok(pref + 8, strlen(pref + 8)) && json_is_object(prov) &&
		  (!strcmp(type, "deny") || !strcmp(type, "permit"));
	if (ok) { /* scope: patient-privacy */
		bool priv = false;
		json_array_foreach(json_object_get(json_object_get(j, "scope"), "coding"), i, e)
			priv |= !strcmp(jstr_or(json_object_get(e, "system")), CONSENT_SCOPE_SYSTEM) &&
				!strcmp(jstr_or(json_object_get(e, "code")), "patient-privacy");
		ok = priv;
	}
	/* the patient's own record is never denied */
	if (ok && !strncmp(actor, "Patient/", 8) && !strcmp(actor + 8, pref + 8))
		ok = false;
	if (ok) {
		const char *patient = pref + 8;
		bool btg = salus_policy_btg_has(p, patient), listed;
		bool mine = prov_names(prov, actor, &listed);
		if (!strcmp(type, "deny")) {
			/* a denial of the actor (or of everyone: no actor), with its permits as exceptions */
			if ((mine || !listed) && prov_now(prov, now) && prov_purpose(prov, btg, true))
				deny_add(p, patient, prov, actor, now, btg);
		} else if (prov_now(prov, now)) {
			/* permit, but deny: each nested denial that applies to the actor */
			json_array_foreach(json_object_get(prov, "provision"), i, e)
			{
				bool nlisted;
				bool nmine = prov_names(e, actor, &nlisted);
				if (i >= CONSENT_NESTED_MAX) {
					p->deny_overflow = true; /* more than is read: fail safe */
					break;
				}
				if (strcmp(jstr_or(json_object_get(e, "type")), "deny") ||
				    !(nmine || (!nlisted && (mine || !listed))) || !prov_now(e, now) ||
				    !prov_purpose(e, btg, true))
					continue;
				deny_add(p, patient, e, actor, now, btg);
			}
		}
	}
	json_decref(j);
	return SALUS_OK;
}

struct consent_ctx {
	struct salus_policy *p;
	const char *actor;
};

static int consent_one(void *ctx, const char *json, size_t n)
{
	struct consent_ctx *c = ctx;
	return salus_policy_consent_add(c->p, c->actor, json, n, 0);
}

void salus_policy_clear(struct salus_policy *p)
{
	/* everything up to the denials (only deny[0..ndeny) is ever read: not cleared, it is most of the size) */
	memset(p, 0, offsetof(struct salus_policy, deny));
	p->ndeny = 0;
	p->deny_overflow = false;
}

int salus_policy_init(struct salus_policy *p, struct salus_store *st, const struct salus_policy_config *cfg,
		      const struct salus_policy_token *t)
{
	salus_policy_clear(p);
	int rc = context_init(p, st, cfg, t);
	if (rc)
		return rc;
	labels_init(p, cfg, t);
	/* a patient's own tokens reach only their own record, which no Consent denies them: no lookup */
	if (t->user_ctx && t->fhir_user && *t->fhir_user && strncmp(t->fhir_user, "Patient/", 8) && cfg && cfg->consents) {
		struct consent_ctx c = {p, t->fhir_user};
		rc = cfg->consents(cfg->consents_ctx, t->fhir_user, consent_one, &c);
		if (rc == SALUS_ETOOLARGE)
			p->deny_overflow = true; /* more Consents than are read: fail safe */
		else if (rc)
			return rc == SALUS_ENOMEM ? rc : SALUS_EIO; /* fail closed */
		if (p->ndeny || p->deny_overflow)
			salus_log(SALUS_LOG_DEBUG, "policy.consent", "denials=%zu overflow=%d", p->ndeny, p->deny_overflow ? 1 : 0);
	}
	return SALUS_OK;
}

static bool label_is(const struct salus_policy_code *l, const char *system, const char *code)
{
	return !strcmp(l->system, system) && !strcmp(l->code, code);
}

bool salus_policy_hides(const struct salus_policy *p, const char *type, const char *const *patients, size_t npatients,
			const struct salus_policy_code *labels, size_t nlabels)
{
	if (!p)
		return false;
	for (size_t i = 0; p->hidden && i < nlabels; i++)
		for (size_t k = 0; k < NLABELS; k++) {
			if (!((p->hidden >> k) & 1u) || !label_is(&labels[i], label_tab[k].system, label_tab[k].code))
				continue;
			bool opened = false;
			for (size_t x = 0; ((p->hidden_btg >> k) & 1u) && x < npatients && !opened; x++)
				opened = salus_policy_btg_has(p, patients[x]);
			if (!opened)
				return true;
		}
	for (size_t k = 0; k < p->ndeny; k++) {
		const struct salus_policy_deny *d = &p->deny[k];
		bool in = false, typed = !d->ntypes, labelled = !d->nlabels;
		for (size_t x = 0; x < npatients && !in; x++)
			in = patients[x] && !strcmp(patients[x], d->patient);
		for (size_t x = 0; x < d->ntypes && !typed; x++)
			typed = !strcmp(d->types[x], type);
		for (size_t x = 0; x < d->nlabels && !labelled; x++)
			for (size_t y = 0; y < nlabels && !labelled; y++)
				labelled = label_is(&labels[y], d->labels[x].system, d->labels[x].code);
		bool excepted = false;
		for (size_t e = 0; e < d->nexcept && !excepted; e++) {
			const struct salus_policy_except *x = &d->except[e];
			bool et = !x->ntypes, el = !x->nlabels;
			for (size_t y = 0; y < x->ntypes && !et; y++)
				et = !strcmp(x->types[y], type);
			for (size_t y = 0; y < x->nlabels && !el; y++)
				for (size_t z = 0; z < nlabels && !el; z++)
					el = label_is(&labels[z], x->labels[y].system, x->labels[y].code);
			excepted = et && el;
		}
		if (in && typed && labelled && !excepted)
			return true;
	}
	return false;
}

bool salus_policy_btg_has(const struct salus_policy *p, const char *id)
{
	for (size_t i = 0; p && id && i < p->nbtg; i++)
		if (!strcmp(p->btg[i], id))
			return true;
	return false;
}

/* A break-glass reason: 10..500 bytes of UTF-8 without control characters. */
static bool reason_ok(const char *r)
{
	size_t n = r ? strlen(r) : 0;
	if (n < SALUS_BTG_REASON_MIN || n > SALUS_BTG_REASON_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)r[i] < 0x20 || r[i] == 0x7f)
			return false;
	json_t *j = json_string(r); /* jansson refuses invalid UTF-8 */
	bool ok = j != NULL;
	json_decref(j);
	return ok;
}

/* Store user's grants g (steals g). */
static int btg_put(struct salus_store *st, const char *user, json_t *g)
{
	char *text = json_dumps(g, JSON_COMPACT);
	json_decref(g);
	if (!text)
		return SALUS_ENOMEM;
	int rc = salus_store_kv_put(st, BTG_NS, user, text, strlen(text));
	salus_free(text);
	return rc;
}

int salus_policy_break_glass(struct salus_store *st, const struct salus_policy_config *cfg, const char *user,
			     const char *patient, const char *reason, long minutes, int64_t now_ms, int64_t *expires_ms,
			     const char **why)
{
	*why = NULL;
	if (!cfg || !cfg->relationship) {
		*why = "break-glass applies under the relationship rule ([policy] relationship = practitioner)";
		return SALUS_EINVALID;
	}
	if (!user || !*user || strlen(user) > 64) {
		*why = "break-glass needs a signed-in user";
		return SALUS_EINVALID;
	}
	if (!patient || !id_ok(patient, strlen(patient))) {
		*why = "patient must be a Patient id";
		return SALUS_EINVALID;
	}
	if (minutes < 1 || minutes > cfg->break_glass_max_minutes) {
		*why = "minutes must be from 1 to [policy] break_glass_max_minutes";
		return SALUS_EINVALID;
	}
	if (!reason_ok(reason)) {
		*why = "a reason of 10 to 500 characters is required";
		return SALUS_EINVALID;
	}
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(st, "Patient", patient, 0, &r);
	salus_resource_release(&r);
	if (rc == SALUS_ENOTFOUND || rc == SALUS_EGONE) {
		*why = "no such Patient";
		return SALUS_ENOTFOUND;
	}
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *old = NULL, *g = json_array();
	if (!g)
		return SALUS_ENOMEM;
	if ((rc = btg_load(st, user, &old))) {
		json_decref(g);
		return rc;
	}
	int64_t now = now_or(now_ms), exp = now + (int64_t)minutes * 60000;
	size_t i;
	json_t *e;
	json_array_foreach(old, i, e)
	{ /* keep the user's other active grants */
		const char *pid = json_string_value(json_object_get(e, "patient"));
		if (pid && strcmp(pid, patient) && json_integer_value(json_object_get(e, "expires_ms")) > now)
			json_array_append(g, e);
	}
	json_decref(old);
	if (json_array_size(g) >= SALUS_POLICY_MAX_BTG) {
		json_decref(g);
		*why = "too many active break-glass grants";
		return SALUS_ETOOLARGE;
	}
	json_t *ne = json_pack("{s:s, s:s, s:I, s:I}", "patient", patient, "reason", reason, "created_ms",
			       (json_int_t)now, "expires_ms", (json_int_t)exp);
	if (!ne || json_array_append_new(g, ne)) {
		json_decref(g);
		return SALUS_ENOMEM;
	}
	if ((rc = btg_put(st, user, g)))
		return rc;
	*expires_ms = exp;
	return SALUS_OK;
}

int salus_policy_break_glass_revoke(struct salus_store *st, const char *user, const char *patient)
{
	json_t *old = NULL, *g;
	int rc = btg_load(st, user, &old);
	if (rc || !old)
		return rc;
	if (!(g = json_array())) {
		json_decref(old);
		return SALUS_ENOMEM;
	}
	size_t i;
	json_t *e;
	json_array_foreach(old, i, e)
	{
		const char *pid = json_string_value(json_object_get(e, "patient"));
		if (pid && strcmp(pid, patient))
			json_array_append(g, e);
	}
	json_decref(old);
	return btg_put(st, user, g);
}

struct list_ctx {
	json_t *out;
	int64_t now;
	int rc;
};

static int list_one(void *ctx, const char *key, const char *val, size_t n)
{
	struct list_ctx *lc = ctx;
	json_t *g = json_loadb(val, n, 0, NULL);
	size_t i;
	json_t *e;
	json_array_foreach(g, i, e)
	{
		char created[SALUS_INSTANT_LEN], expires[SALUS_INSTANT_LEN];
		int64_t exp = (int64_t)json_integer_value(json_object_get(e, "expires_ms"));
		salus_instant_format((int64_t)json_integer_value(json_object_get(e, "created_ms")), created);
		salus_instant_format(exp, expires);
		json_t *o = json_pack("{s:s, s:O, s:O, s:s, s:s, s:b}", "user", key, "patient", json_object_get(e, "patient"),
				      "reason", json_object_get(e, "reason"), "created", created, "expires", expires,
				      "active", exp > lc->now);
		if (!o || json_array_append_new(lc->out, o)) {
			json_decref(g);
			lc->rc = SALUS_ENOMEM;
			return 1;
		}
	}
	json_decref(g);
	return 0;
}

int salus_policy_break_glass_list(struct salus_store *st, int64_t now_ms, char **out)
{
	struct list_ctx lc = {json_array(), now_or(now_ms), 0};
	if (!lc.out)
		return SALUS_ENOMEM;
	int rc = salus_store_kv_list(st, BTG_NS, list_one, &lc);
	if (rc == 1 || lc.rc)
		rc = lc.rc ? lc.rc : SALUS_ENOMEM;
	if (!rc && !(*out = json_dumps(lc.out, JSON_COMPACT)))
		rc = SALUS_ENOMEM;
	json_decref(lc.out);
	return rc ? (rc == SALUS_ENOMEM ? rc : SALUS_EIO) : SALUS_OK;
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
		if (p->deny_overflow && sc->ctx != SALUS_POLICY_CTX_SYSTEM)
			continue; /* more Consent denials than can be enforced: fail safe */
		if (sc->query && !strcmp(sc->type, "*"))
			continue; /* a restriction names one type's parameters */
		int rk = rank_of(sc);
		if (rk < best) {
			best = rk;
			r.granted = true;
			r.compartment = sc->ctx == SALUS_POLICY_CTX_PATIENT;
			/* the audit trail is the auditors': not a patient record the rule narrows */
			r.related = sc->ctx != SALUS_POLICY_CTX_SYSTEM && p->related && strcmp(type, "AuditEvent");
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
	if (p->hidden || p->ndeny || p->deny_overflow)
		return true;
	for (size_t k = 0; k < p->n; k++) {
		const struct salus_policy_scope *sc = &p->v[k];
		if (sc->query || (sc->ctx == SALUS_POLICY_CTX_PATIENT && p->patient[0]) ||
		    (sc->ctx != SALUS_POLICY_CTX_SYSTEM && p->related))
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
