/*
 * access.c — the access decision enforced in the FHIR layer (see access.h):
 * store guards for queries, a content check for single resources, and the
 * check of writes.
 */
#include "fhir/access.h"

#include <pthread.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "fhir/cond.h"
#include "fhir/defs.h"
#include "fhir/search.h"
#include "fhir/search_int.h"

#define MAX_GUARD_TYPES 66 /* the scopes' types (<= 64), "Patient", and the default guard */

/* ---- the Patient compartment's reference parameters, of every type ---- */

static uint32_t *comp_params;
static size_t ncomp_params;
static struct salus_sq_val *comp_types; /* the types in the Patient compartment (a = name), for SQ_TYPE */
static size_t ncomp_types;
static pthread_once_t comp_once = PTHREAD_ONCE_INIT;
static uint32_t *sec_params; /* every type's _security parameter (meta.security) */
static size_t nsec_params;

static size_t type_comp_params(const char *t, uint32_t *out)
{
	const struct salus_fhir_type *ft = salus_fhir_type_find(t, strlen(t));
	size_t n = 0;
	for (size_t k = 0; ft && k < salus_fhir_compartment_count(ft); k++) {
		const char *code = salus_fhir_compartment_param_at(ft, k);
		const struct salus_fhir_sp *sp = code ? salus_fhir_sp_find(t, strlen(t), code, strlen(code)) : NULL;
		struct salus_fhir_sp_info info;
		if (!sp)
			continue;
		salus_fhir_sp_get(sp, &info);
		if (info.type != SALUS_FHIR_SP_REFERENCE)
			continue;
		if (out)
			out[n] = salus_fhir_search_param_id(t, code);
		n++;
	}
	return n;
}

#define MAX_TYPE_COMP_PARAMS 64

/* The Patient-compartment reference parameters of type t into v (at most
 * MAX_TYPE_COMP_PARAMS; a type with more gets none: fail safe). */
static size_t type_comp_params_capped(const char *t, uint32_t v[MAX_TYPE_COMP_PARAMS])
{
	size_t n = type_comp_params(t, NULL);
	return n > MAX_TYPE_COMP_PARAMS ? 0 : type_comp_params(t, v);
}

/* Is row a reference to a Patient through one of the parameters v[0..n)? */
static bool comp_patient_row(const struct salus_ix_row *row, const uint32_t *v, size_t n)
{
	if (row->kind != SALUS_IX_REFERENCE || !row->a || strcmp(row->a, "Patient"))
		return false;
	for (size_t i = 0; i < n; i++)
		if (salus_fhir_index_row_is(row, v[i])) /* derived parameters read their bases' rows */
			return true;
	return false;
}

static void comp_init(void)
{
	size_t total = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++)
		total += type_comp_params(salus_fhir_type_name(salus_fhir_type_at(i)), NULL);
	/* process-lifetime table, allocated once (never freed: LeakSanitizer sees it reachable) */
	uint32_t *v = salus_calloc(total ? total : 1, sizeof *v);
	if (!v)
		return;
	size_t n = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++)
		n += type_comp_params(salus_fhir_type_name(salus_fhir_type_at(i)), v + n);
	struct salus_sq_val *tv = salus_calloc(salus_fhir_type_count(), sizeof *tv);
	if (!tv) {
		salus_free(v);
		return;
	}
	size_t nt = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++) {
		const char *t = salus_fhir_type_name(salus_fhir_type_at(i));
		if (type_comp_params(t, NULL))
			tv[nt++] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = t};
	}
	uint32_t *sp = salus_calloc(salus_fhir_type_count(), sizeof *sp);
	if (!sp) {
		salus_free(v);
		salus_free(tv);
		return;
	}
	size_t ns = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++) {
		const char *t = salus_fhir_type_name(salus_fhir_type_at(i));
		if (salus_fhir_sp_find(t, strlen(t), "_security", 9))
			sp[ns++] = salus_fhir_search_param_id(t, "_security");
	}
	nsec_params = ns;
	sec_params = sp;
	ncomp_params = n;
	comp_params = v;
	ncomp_types = nt;
	comp_types = tv;
}

bool salus_fhir_access_restricted(const struct salus_policy *p)
{
	return p && salus_policy_restricts(p);
}

/* ---- v2 restrictions: parsed as a search on their type ---- */

static int parse_restriction(const char *type, const char *query, struct salus_query **qo,
			     struct salus_fhir_search **so)
{
	const char *why = NULL;
	struct salus_query *q = salus_calloc(1, sizeof *q);
	*qo = q;
	*so = NULL;
	if (!q)
		return SALUS_ENOMEM;
	int rc = salus_query_parse(q, query, strlen(query));
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EINVALID;
	if (!q->n)
		return SALUS_EINVALID;
	for (size_t i = 0; i < q->n; i++)
		if (q->p[i].name[0] == '_' && strcmp(q->p[i].name, "_id"))
			return SALUS_EINVALID; /* result parameters (_sort, _include...) restrict nothing */
	rc = salus_fhir_search_parse(type, q->p, q->n, false, so, &why);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EINVALID;
	if ((*so)->nincl || !(*so)->q.nclauses)
		return SALUS_EINVALID;
	return SALUS_OK;
}

/* ---- the relationship rule: patients related to the user's Practitioner ---- */

/* Patient X is related to Practitioner P when X.generalPractitioner is P, a
 * CareTeam of X has participant P, or an Encounter of X has participant P;
 * or X is opened by one of the user's break-glass grants.  The clauses below
 * express it for the store (pointers into the struct itself: never moved). */
struct salus_fhir_rel {
	uint32_t p_gp, p_ct_patient, p_ct_part, p_enc_patient, p_enc_part;
	struct salus_sq_val v_prac;
	struct salus_sq_clause c_gp, c_ct_part, c_enc_part, c_has_ct, c_has_enc, c_btg_id;
	struct salus_sq sub_ct, sub_enc;
	struct salus_sq_val v_btg_id[SALUS_POLICY_MAX_BTG];
	struct salus_sq alt[4];
	struct salus_sq_val or_v[4];
	struct salus_sq_clause c_or_patient; /* on a Patient: it is related */
	struct salus_sq chain_patient;
	struct salus_sq_val v_ref[1 + SALUS_POLICY_MAX_BTG];
	struct salus_sq_clause c_ref_related; /* on any resource: in the compartment of a related patient */
	struct salus_sq_clause c_not_comp;    /* on any resource: its type is outside the compartment */
	struct salus_sq alt2[2];
	struct salus_sq_val or2_v[2];
	struct salus_sq_clause c_or_other;    /* on a resource that is not a Patient: the rule holds */
};

static struct salus_fhir_rel *rel_new(const struct salus_policy *p)
{
	struct salus_fhir_rel *r = salus_calloc(1, sizeof *r);
	if (!r)
		return NULL;
	r->p_gp = salus_fhir_search_param_id("Patient", "general-practitioner");
	r->p_ct_patient = salus_fhir_search_param_id("CareTeam", "patient");
	r->p_ct_part = salus_fhir_search_param_id("CareTeam", "participant");
	r->p_enc_patient = salus_fhir_search_param_id("Encounter", "patient");
	r->p_enc_part = salus_fhir_search_param_id("Encounter", "participant");
	r->v_prac = (struct salus_sq_val){.op = SALUS_SQ_REF_LOCAL, .a = "Practitioner", .b = p->practitioner};
#define REF1(param) {.kind = SALUS_SQ_REFERENCE, .params = &(param), .nparams = 1, .vals = &r->v_prac, .nvals = 1}
	r->c_gp = (struct salus_sq_clause)REF1(r->p_gp);
	r->c_ct_part = (struct salus_sq_clause)REF1(r->p_ct_part);
	r->c_enc_part = (struct salus_sq_clause)REF1(r->p_enc_part);
#undef REF1
	r->sub_ct = (struct salus_sq){.type = "CareTeam", .clauses = &r->c_ct_part, .nclauses = 1};
	r->sub_enc = (struct salus_sq){.type = "Encounter", .clauses = &r->c_enc_part, .nclauses = 1};
	r->c_has_ct = (struct salus_sq_clause){.kind = SALUS_SQ_HAS, .params = &r->p_ct_patient, .nparams = 1,
					       .sub = &r->sub_ct};
	r->c_has_enc = (struct salus_sq_clause){.kind = SALUS_SQ_HAS, .params = &r->p_enc_patient, .nparams = 1,
						.sub = &r->sub_enc};
	size_t na = 0;
	r->alt[na++] = (struct salus_sq){.type = "Patient", .clauses = &r->c_gp, .nclauses = 1};
	r->alt[na++] = (struct salus_sq){.type = "Patient", .clauses = &r->c_has_ct, .nclauses = 1};
	r->alt[na++] = (struct salus_sq){.type = "Patient", .clauses = &r->c_has_enc, .nclauses = 1};
	if (p->nbtg) {
		for (size_t i = 0; i < p->nbtg; i++)
			r->v_btg_id[i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = p->btg[i]};
		r->c_btg_id = (struct salus_sq_clause){.kind = SALUS_SQ_ID, .vals = r->v_btg_id, .nvals = p->nbtg};
		r->alt[na++] = (struct salus_sq){.type = "Patient", .clauses = &r->c_btg_id, .nclauses = 1};
	}
	for (size_t i = 0; i < na; i++)
		r->or_v[i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &r->alt[i]};
	r->c_or_patient = (struct salus_sq_clause){.kind = SALUS_SQ_OR, .vals = r->or_v, .nvals = na};
	r->chain_patient = (struct salus_sq){.type = "Patient", .clauses = &r->c_or_patient, .nclauses = 1};
	r->v_ref[0] = (struct salus_sq_val){.op = SALUS_SQ_REF_CHAIN, .chain = &r->chain_patient};
	for (size_t i = 0; i < p->nbtg; i++) /* a break-glass patient directly, without the chain */
		r->v_ref[1 + i] = (struct salus_sq_val){.op = SALUS_SQ_REF_LOCAL, .a = "Patient", .b = p->btg[i]};
	r->c_ref_related = (struct salus_sq_clause){.kind = SALUS_SQ_REFERENCE, .params = comp_params,
						    .nparams = ncomp_params, .vals = r->v_ref, .nvals = 1 + p->nbtg};
	r->c_not_comp = (struct salus_sq_clause){.kind = SALUS_SQ_TYPE, .negate = true, .vals = comp_types,
						 .nvals = ncomp_types};
	r->alt2[0] = (struct salus_sq){.clauses = &r->c_not_comp, .nclauses = 1};
	r->alt2[1] = (struct salus_sq){.clauses = &r->c_ref_related, .nclauses = 1};
	r->or2_v[0] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &r->alt2[0]};
	r->or2_v[1] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &r->alt2[1]};
	r->c_or_other = (struct salus_sq_clause){.kind = SALUS_SQ_OR, .vals = r->or2_v, .nvals = 2};
	return r;
}

/* Is patient id related to p's practitioner (or opened by break-glass)? */
static int related_patient(struct salus_store *st, const struct salus_policy *p, const struct salus_fhir_rel *r,
			   const char *id, bool *ok)
{
	*ok = salus_policy_btg_has(p, id);
	if (*ok)
		return SALUS_OK;
	if (!st)
		return SALUS_OK;
	struct salus_sq_val v = {.op = SALUS_SQ_ANY, .a = id};
	struct salus_sq_clause cl[2] = {{.kind = SALUS_SQ_ID, .vals = &v, .nvals = 1}, r->c_or_patient};
	struct salus_sq q = {.type = "Patient", .clauses = cl, .nclauses = 2};
	long n = 0;
	int rc = salus_store_search_count(st, &q, &n);
	if (rc)
		return rc;
	*ok = n > 0;
	return SALUS_OK;
}

/* ---- security labels and Consent denials (policy.h): clauses on every level ---- */

#define LBL_MAX 32
#define VARIANTS 2 /* [0]: a resource that is not a Patient; [1]: a Patient (its compartment is its id) */

struct salus_fhir_lbl {
	struct salus_sq_val v_hid[LBL_MAX], v_hb[LBL_MAX];
	struct salus_sq_clause c_hid, c_hb_not;
	struct salus_sq_val v_btg_ref[SALUS_POLICY_MAX_BTG], v_btg_id[SALUS_POLICY_MAX_BTG];
	struct salus_sq_clause c_btg[VARIANTS];
	struct salus_sq hb_alt[VARIANTS][2];
	struct salus_sq_val hb_or[VARIANTS][2];
	struct salus_sq_val d_ref[SALUS_POLICY_MAX_DENY], d_id[SALUS_POLICY_MAX_DENY];
	struct salus_sq_val d_lbl[SALUS_POLICY_MAX_DENY][SALUS_POLICY_DENY_CODES];
	struct salus_sq_val d_typ[SALUS_POLICY_MAX_DENY][SALUS_POLICY_DENY_CODES];
	struct salus_sq_clause d_not_in[VARIANTS][SALUS_POLICY_MAX_DENY], d_not_lbl[SALUS_POLICY_MAX_DENY],
		d_not_typ[SALUS_POLICY_MAX_DENY];
	struct salus_sq d_alt[VARIANTS][SALUS_POLICY_MAX_DENY][3 + SALUS_POLICY_DENY_EXCEPT];
	struct salus_sq_val d_or[VARIANTS][SALUS_POLICY_MAX_DENY][3 + SALUS_POLICY_DENY_EXCEPT];
	/* a denial's permit exceptions: labelled with one of, and of one of the types */
	struct salus_sq_val e_lbl[SALUS_POLICY_MAX_DENY][SALUS_POLICY_DENY_EXCEPT][SALUS_POLICY_EXCEPT_CODES];
	struct salus_sq_val e_typ[SALUS_POLICY_MAX_DENY][SALUS_POLICY_DENY_EXCEPT][SALUS_POLICY_EXCEPT_CODES];
	struct salus_sq_clause e_cl[SALUS_POLICY_MAX_DENY][SALUS_POLICY_DENY_EXCEPT][2];
	/* what a guard appends, per variant */
	struct salus_sq_clause add[VARIANTS][2 + SALUS_POLICY_MAX_DENY];
	size_t nadd[VARIANTS];
};

/* A clause "the resource carries none of these labels" over vals v[0..n). */
static struct salus_sq_clause not_labelled(const struct salus_sq_val *v, size_t n)
{
	return (struct salus_sq_clause){.kind = SALUS_SQ_TOKEN, .negate = true, .params = sec_params,
					.nparams = nsec_params, .vals = v, .nvals = n};
}

/* The clauses of p's hidden labels and Consent denials (pointers into the struct itself: never moved). */
static struct salus_fhir_lbl *lbl_new(const struct salus_policy *p)
{
	struct salus_fhir_lbl *L = salus_calloc(1, sizeof *L);
	if (!L)
		return NULL;
	size_t nh = 0, nb = 0;
	for (size_t k = 0; k < salus_policy_label_count(); k++) {
		const char *sys, *code;
		if (!((p->hidden >> k) & 1u) || !salus_policy_label_at(k, &sys, &code))
			continue;
		struct salus_sq_val v = {.op = SALUS_SQ_TOK_SYS_CODE, .a = sys, .b = code};
		if (((p->hidden_btg >> k) & 1u) && p->nbtg)
			L->v_hb[nb++] = v; /* visible in a break-glass patient's compartment */
		else
			L->v_hid[nh++] = v;
	}
	if (nh) {
		L->c_hid = not_labelled(L->v_hid, nh);
		for (int x = 0; x < VARIANTS; x++)
			L->add[x][L->nadd[x]++] = L->c_hid;
	}
	if (nb) {
		L->c_hb_not = not_labelled(L->v_hb, nb);
		for (size_t i = 0; i < p->nbtg; i++) {
			L->v_btg_ref[i] = (struct salus_sq_val){.op = SALUS_SQ_REF_LOCAL, .a = "Patient", .b = p->btg[i]};
			L->v_btg_id[i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = p->btg[i]};
		}
		L->c_btg[0] = (struct salus_sq_clause){.kind = SALUS_SQ_REFERENCE, .params = comp_params,
						       .nparams = ncomp_params, .vals = L->v_btg_ref, .nvals = p->nbtg};
		L->c_btg[1] = (struct salus_sq_clause){.kind = SALUS_SQ_ID, .vals = L->v_btg_id, .nvals = p->nbtg};
		for (int x = 0; x < VARIANTS; x++) {
			L->hb_alt[x][0] = (struct salus_sq){.clauses = &L->c_hb_not, .nclauses = 1};
			L->hb_alt[x][1] = (struct salus_sq){.clauses = &L->c_btg[x], .nclauses = 1};
			L->hb_or[x][0] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &L->hb_alt[x][0]};
			L->hb_or[x][1] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &L->hb_alt[x][1]};
			L->add[x][L->nadd[x]++] =
				(struct salus_sq_clause){.kind = SALUS_SQ_OR, .vals = L->hb_or[x], .nvals = 2};
		}
	}
	for (size_t k = 0; k < p->ndeny; k++) {
		const struct salus_policy_deny *d = &p->deny[k];
		L->d_ref[k] = (struct salus_sq_val){.op = SALUS_SQ_REF_LOCAL, .a = "Patient", .b = d->patient};
		L->d_id[k] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = d->patient};
		L->d_not_in[0][k] = (struct salus_sq_clause){.kind = SALUS_SQ_REFERENCE, .negate = true, .params = comp_params,
							     .nparams = ncomp_params, .vals = &L->d_ref[k], .nvals = 1};
		L->d_not_in[1][k] = (struct salus_sq_clause){.kind = SALUS_SQ_ID, .negate = true, .vals = &L->d_id[k], .nvals = 1};
		for (size_t i = 0; i < d->nlabels; i++)
			L->d_lbl[k][i] = (struct salus_sq_val){.op = SALUS_SQ_TOK_SYS_CODE, .a = d->labels[i].system,
							       .b = d->labels[i].code};
		L->d_not_lbl[k] = not_labelled(L->d_lbl[k], d->nlabels);
		for (size_t i = 0; i < d->ntypes; i++)
			L->d_typ[k][i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = d->types[i]};
		L->d_not_typ[k] = (struct salus_sq_clause){.kind = SALUS_SQ_TYPE, .negate = true, .vals = L->d_typ[k],
							   .nvals = d->ntypes};
		for (size_t e = 0; e < d->nexcept; e++) { /* an exception: labelled with one of and of one of the types */
			const struct salus_policy_except *xe = &d->except[e];
			size_t nc = 0;
			for (size_t i = 0; i < xe->nlabels; i++)
				L->e_lbl[k][e][i] = (struct salus_sq_val){.op = SALUS_SQ_TOK_SYS_CODE, .a = xe->labels[i].system,
									  .b = xe->labels[i].code};
			for (size_t i = 0; i < xe->ntypes; i++)
				L->e_typ[k][e][i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .a = xe->types[i]};
			if (xe->nlabels) {
				L->e_cl[k][e][nc] = not_labelled(L->e_lbl[k][e], xe->nlabels);
				L->e_cl[k][e][nc++].negate = false;
			}
			if (xe->ntypes)
				L->e_cl[k][e][nc++] = (struct salus_sq_clause){.kind = SALUS_SQ_TYPE, .vals = L->e_typ[k][e],
									       .nvals = xe->ntypes};
		}
		for (int x = 0; x < VARIANTS; x++) {
			/* not (in the patient's compartment and labelled and of a class), or one of the exceptions */
			if (!d->nlabels && !d->ntypes && !d->nexcept) {
				L->add[x][L->nadd[x]++] = L->d_not_in[x][k];
				continue;
			}
			size_t na = 0;
			L->d_alt[x][k][na++] = (struct salus_sq){.clauses = &L->d_not_in[x][k], .nclauses = 1};
			if (d->nlabels)
				L->d_alt[x][k][na++] = (struct salus_sq){.clauses = &L->d_not_lbl[k], .nclauses = 1};
			if (d->ntypes)
				L->d_alt[x][k][na++] = (struct salus_sq){.clauses = &L->d_not_typ[k], .nclauses = 1};
			for (size_t e = 0; e < d->nexcept; e++)
				L->d_alt[x][k][na++] = (struct salus_sq){.clauses = L->e_cl[k][e],
									 .nclauses = (size_t)(d->except[e].nlabels > 0) +
										     (size_t)(d->except[e].ntypes > 0)};
			for (size_t i = 0; i < na; i++)
				L->d_or[x][k][i] = (struct salus_sq_val){.op = SALUS_SQ_ANY, .chain = &L->d_alt[x][k][i]};
			L->add[x][L->nadd[x]++] = (struct salus_sq_clause){.kind = SALUS_SQ_OR, .vals = L->d_or[x][k], .nvals = na};
		}
	}
	return L;
}

/* The labels of a resource (meta.security) into out (at most max; more are left out only
 * after max, and a label that does not fit is skipped: it matches no known label). */
static size_t labels_of(json_t *res, struct salus_policy_code *out, size_t max)
{
	size_t n = 0, i;
	json_t *e;
	json_array_foreach(json_object_get(json_object_get(res, "meta"), "security"), i, e)
	{
		const char *sys = json_string_value(json_object_get(e, "system")), *code = json_string_value(json_object_get(e, "code"));
		if (n >= max || !sys || !code || strlen(sys) > SALUS_POLICY_CODE_MAX || strlen(code) > SALUS_POLICY_CODE_MAX)
			continue;
		memcpy(out[n].system, sys, strlen(sys) + 1);
		memcpy(out[n++].code, code, strlen(code) + 1);
	}
	return n;
}

#define MAX_RES_LABELS 32
#define MAX_RES_PATIENTS 16

/* Does p hide resource type/id (content res, index x) by its labels or a Consent denial? */
static bool hidden_by_labels(const struct salus_policy *p, const char *type, const char *id, json_t *res,
			     const struct salus_fhir_index *x)
{
	if (!p->hidden && !p->ndeny)
		return false;
	struct salus_policy_code *labels = salus_calloc(MAX_RES_LABELS, sizeof *labels);
	if (!labels)
		return true; /* fail safe */
	size_t nl = labels_of(res, labels, MAX_RES_LABELS);
	const char *pats[MAX_RES_PATIENTS];
	size_t np = 0;
	if (!strcmp(type, "Patient")) {
		pats[np++] = id ? id : "";
	} else {
		uint32_t mine[MAX_TYPE_COMP_PARAMS];
		size_t nm = type_comp_params_capped(type, mine);
		for (size_t k = 0; k < x->ix.n; k++) {
			const struct salus_ix_row *row = &x->ix.rows[k];
			if (!comp_patient_row(row, mine, nm) || !row->b)
				continue;
			if (np == MAX_RES_PATIENTS) { /* more patients than this checks: hidden if any denial applies */
				salus_free(labels);
				return p->ndeny > 0 || salus_policy_hides(p, type, pats, np, labels, nl);
			}
			pats[np++] = row->b;
		}
	}
	bool h = salus_policy_hides(p, type, pats, np, labels, nl);
	salus_free(labels);
	return h;
}

/* ---- guards ---- */

void salus_fhir_guards_release(struct salus_fhir_guards *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->nparsed; i++) {
		salus_fhir_search_free(g->parsed[i]);
		if (g->queries[i])
			salus_query_release(g->queries[i]);
		salus_free(g->queries[i]);
	}
	salus_free(g->parsed);
	salus_free(g->queries);
	salus_free(g->v);
	salus_free(g->cl);
	salus_free(g->vals);
	salus_free(g->rel);
	salus_free(g->lbl);
	memset(g, 0, sizeof *g);
}

/* One guard for `type` (NULL: the default guard, rule of "*"). */
static int guard_one(const struct salus_policy *p, enum salus_policy_letter l, const char *type,
		     struct salus_fhir_guards *g, struct salus_sq_clause *scratch, size_t cap)
{
	struct salus_sq_guard *gd = &g->v[g->n++];
	struct salus_policy_rule r = salus_policy_rule(p, type ? type : "*", l);
	gd->type = type;
	if (!r.granted) {
		gd->deny = true;
		return SALUS_OK;
	}
	size_t nc = 0;
	const struct salus_fhir_search *s = NULL;
	if (r.query) {
		struct salus_fhir_search *ps = NULL;
		struct salus_query *q = NULL;
		int rc = parse_restriction(type, r.query, &q, &ps);
		g->parsed[g->nparsed] = ps;
		g->queries[g->nparsed++] = q;
		if (rc == SALUS_ENOMEM)
			return rc;
		if (rc) { /* a restriction that does not parse grants nothing (fail safe) */
			gd->deny = true;
			return SALUS_OK;
		}
		s = ps;
	}
	int variant = type && !strcmp(type, "Patient") ? 1 : 0;
	size_t nlbl = g->lbl ? g->lbl->nadd[variant] : 0;
	size_t need = (r.compartment ? 1 : 0) + (r.related ? 1 : 0) + (s ? s->q.nclauses : 0) + nlbl;
	if (need > cap) { /* a restriction too complex to guard with: grants nothing */
		gd->deny = true;
		return SALUS_OK;
	}
	struct salus_sq_clause *cl = need ? scratch : NULL;
	if (r.compartment) {
		struct salus_sq_val *v = &g->vals[g->n - 1];
		if (type && !strcmp(type, "Patient")) {
			v->op = SALUS_SQ_ANY;
			v->a = p->patient;
			cl[nc++] = (struct salus_sq_clause){.kind = SALUS_SQ_ID, .vals = v, .nvals = 1};
		} else {
			v->op = SALUS_SQ_REF_LOCAL;
			v->a = "Patient";
			v->b = p->patient;
			cl[nc++] = (struct salus_sq_clause){.kind = SALUS_SQ_REFERENCE, .params = comp_params,
							    .nparams = ncomp_params, .vals = v, .nvals = 1};
		}
	}
	if (r.related) {
		if (!g->rel && !(g->rel = rel_new(p)))
			return SALUS_ENOMEM;
		cl[nc++] = type && !strcmp(type, "Patient") ? g->rel->c_or_patient : g->rel->c_or_other;
	}
	for (size_t i = 0; s && i < s->q.nclauses; i++)
		cl[nc++] = s->q.clauses[i];
	for (size_t i = 0; i < nlbl; i++)
		cl[nc++] = g->lbl->add[variant][i];
	gd->clauses = cl;
	gd->nclauses = nc;
	return SALUS_OK;
}

int salus_fhir_guards_build(const struct salus_policy *p, enum salus_policy_letter l, struct salus_fhir_guards *g)
{
	memset(g, 0, sizeof *g);
	if (!salus_fhir_access_restricted(p))
		return SALUS_OK;
	pthread_once(&comp_once, comp_init);
	if (!comp_params)
		return SALUS_ENOMEM;
	const char *types[MAX_GUARD_TYPES];
	size_t nt = salus_policy_types(p, types, MAX_GUARD_TYPES - 2);
	bool has_patient = false;
	for (size_t i = 0; i < nt; i++)
		has_patient |= !strcmp(types[i], "Patient");
	if (!has_patient) /* the Patient type is in its own compartment by id, not by reference */
		types[nt++] = "Patient";
	size_t ng = nt + 1;
	if ((p->hidden || p->ndeny) && !(g->lbl = lbl_new(p)))
		return SALUS_ENOMEM;
	/* clauses: per guard the compartment and relationship clauses, the restriction's (more: the
	 * guard denies), and the labels' and denials' */
	const size_t per = 2 + 4 * SALUS_COND_MAX_PARAMS + 2 + SALUS_POLICY_MAX_DENY;
	if (!(g->v = salus_calloc(ng, sizeof *g->v)) || !(g->vals = salus_calloc(ng, sizeof *g->vals)) ||
	    !(g->cl = salus_calloc(ng * per, sizeof *g->cl)) || !(g->parsed = salus_calloc(ng, sizeof *g->parsed)) ||
	    !(g->queries = salus_calloc(ng, sizeof *g->queries)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i <= nt; i++) {
		const char *t = i < nt ? types[i] : NULL;
		int rc = guard_one(p, l, t, g, g->cl + i * per, per);
		if (rc)
			return rc;
	}
	return SALUS_OK;
}

/* ---- one resource, from its index rows ---- */

static const char *S(const char *s)
{
	return s ? s : "";
}

static bool row_matches(int kind, const struct salus_ix_row *r, const struct salus_sq_val *v)
{
	switch (kind) {
	case SALUS_SQ_TOKEN:
		switch (v->op) {
		case SALUS_SQ_TOK_CODE: return !strcmp(S(r->b), S(v->b));
		case SALUS_SQ_TOK_SYS_CODE: return !strcmp(S(r->a), S(v->a)) && !strcmp(S(r->b), S(v->b));
		case SALUS_SQ_TOK_NOSYS: return !*S(r->a) && !strcmp(S(r->b), S(v->b));
		case SALUS_SQ_TOK_SYS: return !strcmp(S(r->a), S(v->a));
		default: return false;
		}
	case SALUS_SQ_REFERENCE:
		return v->op == SALUS_SQ_REF_LOCAL && !strcmp(S(r->b), S(v->b)) && (!v->a || !strcmp(S(r->a), v->a));
	case SALUS_SQ_STRING:
		switch (v->op) {
		case SALUS_SQ_STR_EXACT: return !strcmp(S(r->b), S(v->a));
		case SALUS_SQ_STR_START: return !strncmp(S(r->a), S(v->a), strlen(S(v->a)));
		case SALUS_SQ_STR_CONTAINS: return strstr(S(r->a), S(v->a)) != NULL;
		default: return false;
		}
	case SALUS_SQ_URI: return v->op == SALUS_SQ_URI_EQ && !strcmp(S(r->a), S(v->a));
	default: return false;
	}
}

static bool has_param(const struct salus_sq_clause *cl, uint32_t param)
{
	for (size_t i = 0; i < cl->nparams; i++)
		if (cl->params[i] == param)
			return true;
	return false;
}

/* Is r a row of one of the clause's parameters (derived ones read their bases' rows)? */
static bool row_in_clause(const struct salus_sq_clause *cl, const struct salus_ix_row *r)
{
	if (has_param(cl, r->param))
		return true;
	for (size_t i = 0; i < cl->nparams; i++)
		if (salus_fhir_index_row_is(r, cl->params[i]))
			return true;
	return false;
}

static bool clause_matches(const struct salus_sq_clause *cl, const struct salus_ix *ix, const char *id)
{
	if (cl->kind == SALUS_SQ_ID) {
		bool any = false;
		for (size_t i = 0; i < cl->nvals; i++)
			any |= !strcmp(S(cl->vals[i].a), id);
		return cl->negate ? !any : any;
	}
	if (cl->kind != SALUS_SQ_TOKEN && cl->kind != SALUS_SQ_REFERENCE && cl->kind != SALUS_SQ_STRING &&
	    cl->kind != SALUS_SQ_URI)
		return false; /* not evaluated on content: fail safe */
	bool present = false, any = false;
	for (size_t k = 0; k < ix->n; k++) {
		const struct salus_ix_row *r = &ix->rows[k];
		if (r->kind != cl->kind || !row_in_clause(cl, r))
			continue;
		present = true;
		for (size_t i = 0; i < cl->nvals && !any; i++)
			any = row_matches(cl->kind, r, &cl->vals[i]);
	}
	if (cl->missing)
		return cl->missing == 1 ? !present : present;
	return cl->negate ? !any : any;
}

/* The resource reduced to the top-level elements that type's Patient-compartment reference
 * parameters read (new reference; the rest is not needed to decide membership), or NULL when
 * an expression is not a union of plain "Type.element..." terms (then the whole is indexed). */
static json_t *comp_view(const char *type, json_t *res)
{
	const struct salus_fhir_type *ft = salus_fhir_type_find(type, strlen(type));
	json_t *v = ft && !json_object_get(res, "contained") ? json_object() : NULL;
	size_t tl = strlen(type);
	if (!v)
		return NULL;
	json_object_set(v, "resourceType", json_object_get(res, "resourceType"));
	for (size_t k = 0; k < salus_fhir_compartment_count(ft); k++) {
		const char *code = salus_fhir_compartment_param_at(ft, k);
		const struct salus_fhir_sp *sp = code ? salus_fhir_sp_find(type, tl, code, strlen(code)) : NULL;
		struct salus_fhir_sp_info info;
		if (!sp)
			continue;
		salus_fhir_sp_get(sp, &info);
		if (info.type != SALUS_FHIR_SP_REFERENCE)
			continue;
		for (const char *t = info.expression; t && *t;) {
			size_t n;
			if (strncmp(t, type, tl) || t[tl] != '.' ||
			    !(n = strspn(t + tl + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"))) {
				json_decref(v);
				return NULL;
			}
			const char *key;
			json_t *val;
			json_object_foreach(res, key, val)
			{
				if (!strncmp(key, t + tl + 1, n)) /* also the choice-type names (valueReference) */
					json_object_set(v, key, val);
			}
			const char *bar = strstr(t, " | ");
			t = bar ? bar + 3 : NULL;
		}
	}
	return v;
}

int salus_fhir_access_visible(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
			      const char *type, const char *id, json_t *res, bool *ok)
{
	*ok = true;
	if (!salus_fhir_access_restricted(p))
		return SALUS_OK;
	struct salus_policy_rule r = salus_policy_rule(p, type, l);
	*ok = false;
	if (!r.granted)
		return SALUS_OK;
	if (!r.compartment && !r.query && !r.related && !p->hidden && !p->ndeny) {
		*ok = true;
		return SALUS_OK;
	}
	pthread_once(&comp_once, comp_init);
	if (!comp_params)
		return SALUS_ENOMEM;
	struct salus_fhir_rel *rel = NULL;
	if (r.related && !(rel = rel_new(p)))
		return SALUS_ENOMEM;
	if (r.compartment && !strcmp(type, "Patient") && (!id || strcmp(id, p->patient))) {
		salus_free(rel);
		return SALUS_OK;
	}
	if (r.compartment && !strcmp(type, "Patient") && !r.query && !r.related && !p->hidden && !p->ndeny) {
		*ok = true; /* the context patient itself: nothing in its content can change the answer */
		return SALUS_OK;
	}
	struct salus_fhir_index x;
	salus_fhir_index_init(&x);
	struct salus_query *q = NULL;
	struct salus_fhir_search *s = NULL;
	/* only the compartment decides: index just what its parameters read */
	json_t *view = r.compartment && !r.query && !r.related && !p->hidden && !p->ndeny && strcmp(type, "Patient")
			       ? comp_view(type, res)
			       : NULL;
	int rc = salus_fhir_index_build(&x, type, view ? view : res);
	json_decref(view);
	if (rc)
		goto out;
	bool pass = true;
	if (r.compartment && strcmp(type, "Patient")) {
		uint32_t mine[MAX_TYPE_COMP_PARAMS];
		size_t nm = type_comp_params_capped(type, mine);
		bool in = false;
		for (size_t k = 0; k < x.ix.n && !in; k++)
			in = comp_patient_row(&x.ix.rows[k], mine, nm) && !strcmp(S(x.ix.rows[k].b), p->patient);
		pass = in;
	}
	if (pass && r.related && !strcmp(type, "Patient")) {
		/* the content itself names the user's Practitioner as generalPractitioner (a patient
		 * being registered), or the stored relations say so */
		bool gp = false;
		for (size_t k = 0; k < x.ix.n && !gp; k++) {
			const struct salus_ix_row *row = &x.ix.rows[k];
			gp = row->param == rel->p_gp && row->kind == SALUS_IX_REFERENCE &&
			     !strcmp(S(row->a), "Practitioner") && !strcmp(S(row->b), p->practitioner);
		}
		if (!gp && (rc = related_patient(st, p, rel, id ? id : "", &gp)))
			goto out;
		pass = gp;
	} else if (pass && r.related && type_comp_params(type, NULL)) {
		/* in the compartment of at least one related patient */
		uint32_t mine[MAX_TYPE_COMP_PARAMS];
		size_t nm = type_comp_params_capped(type, mine);
		bool any = false;
		for (size_t k = 0; k < x.ix.n && !any; k++) {
			const struct salus_ix_row *row = &x.ix.rows[k];
			if (!comp_patient_row(row, mine, nm) || !*S(row->b))
				continue;
			if ((rc = related_patient(st, p, rel, row->b, &any)))
				goto out;
		}
		pass = any;
	}
	if (pass && r.query) {
		int prc = parse_restriction(type, r.query, &q, &s);
		if (prc == SALUS_ENOMEM) {
			rc = prc;
			goto out;
		}
		pass = prc == SALUS_OK;
		for (size_t i = 0; pass && i < s->q.nclauses; i++)
			pass = clause_matches(&s->q.clauses[i], &x.ix, id ? id : "");
	}
	if (pass && strcmp(type, "AuditEvent") && hidden_by_labels(p, type, id, res, &x))
		pass = false;
	*ok = pass;
out:
	salus_free(rel);
	salus_fhir_search_free(s);
	if (q)
		salus_query_release(q);
	salus_free(q);
	salus_fhir_index_release(&x);
	return rc;
}

int salus_fhir_access_visible_text(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
				   const char *type, const char *id, const char *json, size_t len, bool *ok)
{
	*ok = true;
	if (!salus_fhir_access_restricted(p))
		return SALUS_OK;
	*ok = false;
	struct salus_policy_rule r = salus_policy_rule(p, type, l);
	if (!r.granted)
		return SALUS_OK;
	if (!r.query && !r.related && !p->hidden && !p->ndeny &&
	    ((!r.compartment) || (!strcmp(type, "Patient") && id && !strcmp(id, p->patient)))) {
		*ok = true; /* decided without the content: no need to parse it */
		return SALUS_OK;
	}
	json_t *j = json_loadb(json, len, 0, NULL);
	if (!j)
		return SALUS_ENOMEM; /* stored JSON always parses: only memory can fail */
	int rc = salus_fhir_access_visible(st, p, l, type, id, j, ok);
	json_decref(j);
	return rc;
}

int salus_fhir_access_visible_res(struct salus_store *st, const struct salus_policy *p, enum salus_policy_letter l,
				  const struct salus_resource *r, bool *ok)
{
	if (salus_fhir_access_restricted(p) && r->owner[0] && p->patient[0] && !p->hidden && !p->ndeny &&
	    !strcmp(r->owner, p->patient)) {
		struct salus_policy_rule rule = salus_policy_rule(p, r->type, l);
		if (rule.granted && rule.compartment && !rule.query && !rule.related) {
			*ok = true;
			return SALUS_OK;
		}
	}
	return salus_fhir_access_visible_text(st, p, l, r->type, r->id, r->json, r->len, ok);
}

/* ---- writes ---- */

int salus_fhir_access_writes(struct salus_store *st, const struct salus_policy *p, const struct salus_write *ops,
			     size_t n, size_t *bad, const char **why)
{
	*bad = 0;
	if (!salus_fhir_access_restricted(p))
		return SALUS_OK;
	for (size_t i = 0; i < n; i++) {
		const struct salus_write *w = &ops[i];
		enum salus_policy_letter l = w->kind == SALUS_WRITE_CREATE   ? SALUS_POLICY_C
					     : w->kind == SALUS_WRITE_UPDATE ? SALUS_POLICY_U
					     : w->kind == SALUS_WRITE_DELETE ? SALUS_POLICY_D
									     : SALUS_POLICY_R;
		bool ok = true;
		int rc;
		*bad = i;
		if (w->kind == SALUS_WRITE_REINDEX) {
			*why = "reindexing is not an interaction of a restricted token";
			return SALUS_EFORBIDDEN;
		}
		if ((w->kind == SALUS_WRITE_UPDATE || w->kind == SALUS_WRITE_DELETE) && w->id) {
			struct salus_resource cur = {.json = NULL};
			rc = salus_store_read(st, w->type, w->id, 0, &cur);
			if (!rc)
				rc = salus_fhir_access_visible_text(st, p, l, w->type, w->id, cur.json, cur.len, &ok);
			else if (rc == SALUS_ENOTFOUND || rc == SALUS_EGONE)
				rc = SALUS_OK; /* update-as-create, or a deleted resource: the content decides */
			salus_resource_release(&cur);
			if (rc)
				return rc;
			if (!ok) {
				*why = "no such resource";
				return SALUS_ENOTFOUND;
			}
		}
		if (w->kind == SALUS_WRITE_CREATE || w->kind == SALUS_WRITE_UPDATE) {
			if (!w->resource) {
				*why = "nothing to write";
				return SALUS_EINVALID;
			}
			if ((rc = salus_fhir_access_visible(st, p, l, w->type, w->id, w->resource, &ok)))
				return rc;
			if (!ok) {
				*why = "the token may not write this resource (outside the patient's compartment or "
				       "the scope's restriction)";
				return SALUS_EFORBIDDEN;
			}
		}
	}
	return SALUS_OK;
}

/* ---- the Consents of an actor (policy.h salus_policy_consent_fn) ---- */

struct consent_cb {
	salus_policy_consent_each each;
	void *ctx;
	size_t n;
};

static int consent_hit(void *ctx, const struct salus_sq_hit *h)
{
	struct consent_cb *c = ctx;
	c->n++;
	return h->r.json ? c->each(c->ctx, h->r.json, h->r.len) : 0;
}

#define MAX_CONSENTS 256
#define ACTOR_MAX 160

/* The answer of one lookup: the Consent texts of an actor, valid while the store's last write
 * sequence is still `seq` (any write since — of a Consent or not — makes it stale). */
struct consent_entry {
	struct salus_store *st;
	int64_t seq;
	char actor[ACTOR_MAX + 1];
	struct salus_buf texts; /* the texts, each followed by a NUL */
	size_t n;
	bool valid;
};

#define CONSENT_CACHE 64 /* direct-mapped by actor hash */
static struct consent_entry consent_cache[CONSENT_CACHE];
static pthread_mutex_t consent_lock = PTHREAD_MUTEX_INITIALIZER;

struct consent_fill {
	struct salus_buf *b;
	size_t n;
};

static int consent_keep(void *ctx, const char *json, size_t n)
{
	struct consent_fill *f = ctx;
	f->n++;
	return salus_buf_add(f->b, json, n) || salus_buf_addc(f->b, 0) ? SALUS_ENOMEM : 0;
}

/* Every active Consent of actor into texts (owned by the caller). */
/* The active Consents naming actor at the top level, then those naming no actor at all (a denial
 * of everyone, with permits for some: docs/security.md), at most MAX_CONSENTS together. */
static int consent_search(struct salus_store *st, const char *actor, struct salus_buf *texts, size_t *count)
{
	struct consent_fill f = {texts, 0};
	int rc = 0;
	size_t seen = 0;
	for (int pass = 0; !rc && pass < 2; pass++) {
		char qs[ACTOR_MAX + 32];
		if (pass == 0)
			snprintf(qs, sizeof qs, "actor=%s&status=active", actor);
		else
			snprintf(qs, sizeof qs, "actor:missing=true&status=active");
		struct salus_query q;
		struct salus_fhir_search *s = NULL;
		const char *why = NULL;
		rc = salus_query_parse(&q, qs, strlen(qs));
		if (!rc)
			rc = salus_fhir_search_parse("Consent", q.p, q.n, false, &s, &why);
		if (!rc) {
			struct consent_cb c = {consent_keep, &f, 0};
			s->q.count = (int)(MAX_CONSENTS + 1 - seen);
			s->q.need_json = true;
			rc = salus_store_search(st, &s->q, consent_hit, &c);
			seen += c.n;
			if (!rc && seen > MAX_CONSENTS)
				rc = SALUS_ETOOLARGE;
		}
		salus_fhir_search_free(s);
		salus_query_release(&q);
	}
	*count = f.n;
	return rc == SALUS_ENOMEM || rc == SALUS_ETOOLARGE || !rc ? rc : SALUS_EIO;
}

static int consent_replay(const char *p, size_t n, salus_policy_consent_each each, void *each_ctx)
{
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(p);
		int rc = each(each_ctx, p, len);
		if (rc)
			return rc;
		p += len + 1;
	}
	return SALUS_OK;
}

int salus_fhir_access_consents(void *ctx, const char *actor, salus_policy_consent_each each, void *each_ctx)
{
	struct salus_store *st = ctx;
	size_t n = actor ? strlen(actor) : 0;
	if (!n || n > ACTOR_MAX || strspn(actor, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-./") != n)
		return SALUS_OK; /* not a reference a Consent can hold */
	int64_t seq = 0;
	int rc = salus_store_last_seq(st, &seq);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)actor[i]) * 16777619u;
	struct consent_entry *e = &consent_cache[h % CONSENT_CACHE];
	/* a hit: replayed from a copy taken under the lock (each may be slow) */
	struct salus_buf copy;
	salus_buf_init(&copy, SALUS_MAX_BODY);
	size_t cnt = 0;
	bool hit = false;
	pthread_mutex_lock(&consent_lock);
	if (e->valid && e->st == st && e->seq == seq && !strcmp(e->actor, actor)) {
		hit = true;
		cnt = e->n;
		if (e->texts.n && salus_buf_add(&copy, e->texts.p, e->texts.n))
			rc = SALUS_ENOMEM;
	}
	pthread_mutex_unlock(&consent_lock);
	if (hit) {
		if (!rc)
			rc = consent_replay(copy.p, cnt, each, each_ctx);
		salus_buf_release(&copy);
		return rc;
	}
	/* a miss: search (seq was read before it, so a write racing with the search only makes the entry stale) */
	rc = consent_search(st, actor, &copy, &cnt);
	if (!rc)
		rc = consent_replay(copy.p, cnt, each, each_ctx);
	if (!rc) {
		pthread_mutex_lock(&consent_lock);
		salus_buf_release(&e->texts);
		e->texts = copy; /* moved */
		e->st = st;
		e->seq = seq;
		e->n = cnt;
		memcpy(e->actor, actor, n + 1);
		e->valid = true;
		pthread_mutex_unlock(&consent_lock);
		return SALUS_OK;
	}
	salus_buf_release(&copy);
	return rc;
}
