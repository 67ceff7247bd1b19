/*
 * search_parse.c — search request parameters → the store's query form
 * (struct salus_sq): every R4 parameter type with its modifiers and prefixes,
 * chaining, _has, and the result parameters (_sort, _count, _total, _summary,
 * _elements, _include, _revinclude).  Parameter definitions come from the
 * generated tables (fhir/defs.h).  Error messages are static and never carry
 * a search value.
 */
#include "fhir/search_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/defs.h"

#define MAX_VALUES 100   /* comma-separated values of one parameter */
#define MAX_CHAIN 4      /* chained and _has levels */
#define MAX_ELEMENTS 64
#define MAX_SET_CODES 4000 /* codes one :in / :below clause may expand to */

void *salus_fhir_search_alloc(struct salus_fhir_search *s, size_t n)
{
	if (s->nallocs == s->capallocs) {
		size_t cap = s->capallocs ? s->capallocs * 2 : 32;
		void **na = salus_realloc(s->allocs, cap * sizeof *na);
		if (!na)
			return NULL;
		s->allocs = na;
		s->capallocs = cap;
	}
	void *p = salus_calloc(1, n ? n : 1);
	if (p)
		s->allocs[s->nallocs++] = p;
	return p;
}

struct salus_sq_clause *salus_fhir_search_clause(struct salus_fhir_search *s)
{
	if (s->ncl == s->capcl) {
		size_t cap = s->capcl ? s->capcl * 2 : 8;
		struct salus_sq_clause *nc = salus_realloc(s->cl, cap * sizeof *nc);
		if (!nc)
			return NULL;
		s->cl = nc;
		s->capcl = cap;
	}
	struct salus_sq_clause *c = &s->cl[s->ncl++];
	memset(c, 0, sizeof *c);
	s->q.clauses = s->cl;
	s->q.nclauses = s->ncl;
	return c;
}

void salus_fhir_search_free(struct salus_fhir_search *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nallocs; i++)
		salus_free(s->allocs[i]);
	salus_free(s->allocs);
	salus_free(s->cl);
	salus_free(s->incl);
	salus_free(s);
}

const struct salus_sq *salus_fhir_search_query(const struct salus_fhir_search *s)
{
	return &s->q;
}

static char *sdup(struct salus_fhir_search *s, const char *p, size_t n)
{
	char *d = salus_fhir_search_alloc(s, n + 1);
	if (d)
		memcpy(d, p, n);
	return d;
}

/* Split v at unescaped sep into at most max parts, unescaping \, \| \$ \\. */
static int split(struct salus_fhir_search *s, const char *v, char sep, char **parts, size_t max, size_t *np)
{
	size_t n = 0, len = strlen(v);
	char *buf = salus_fhir_search_alloc(s, len + 1), *o = buf;
	if (!buf)
		return SALUS_ENOMEM;
	parts[n++] = buf;
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '\\' && i + 1 < len && (v[i + 1] == ',' || v[i + 1] == '|' || v[i + 1] == '$' || v[i + 1] == '\\')) {
			if (v[i + 1] != sep)
				*o++ = v[i]; /* keep the escape for the next split level ('$', then '|') */
			*o++ = v[++i];
		} else if (v[i] == sep) {
			*o++ = 0;
			if (n == max)
				return SALUS_EINVALID;
			parts[n++] = o;
		} else {
			*o++ = v[i];
		}
	}
	*o = 0;
	*np = n;
	return SALUS_OK;
}

/* Split at the first unescaped '|' (after the comma split: remaining escapes removed). */
static void bar_split(char *v, char **left, char **right)
{
	char *o = v;
	*right = NULL;
	*left = v;
	for (char *p = v; *p; p++) {
		if (*p == '\\' && p[1]) {
			*o++ = *++p;
		} else if (*p == '|' && !*right) {
			*o++ = 0;
			*right = o;
		} else {
			*o++ = *p;
		}
	}
	*o = 0;
}

/* Remove the escapes (after the comma split) without splitting: string values
 * take '|' and '$' literally. */
static void unescape(char *v)
{
	char *o = v;
	for (char *p = v; *p; p++) {
		if (*p == '\\' && p[1])
			p++;
		*o++ = *p;
	}
	*o = 0;
}

static const char *norm_dup(struct salus_fhir_search *s, const char *v, int *rc)
{
	struct salus_buf b;
	salus_buf_init(&b, 1u << 18);
	*rc = salus_fhir_norm(v, strlen(v), &b);
	const char *d = *rc ? NULL : sdup(s, b.p, b.n);
	if (!*rc && !d)
		*rc = SALUS_ENOMEM;
	salus_buf_release(&b);
	return d;
}

static int prefix_op(const char **v)
{
	static const struct {
		const char *p;
		int op;
	} px[] = {{"eq", SALUS_SQ_EQ}, {"ne", SALUS_SQ_NE}, {"gt", SALUS_SQ_GT}, {"lt", SALUS_SQ_LT}, {"ge", SALUS_SQ_GE},
		  {"le", SALUS_SQ_LE}, {"sa", SALUS_SQ_SA}, {"eb", SALUS_SQ_EB}, {"ap", SALUS_SQ_AP}};
	for (size_t i = 0; i < sizeof px / sizeof *px; i++)
		if (!strncmp(*v, px[i].p, 2)) {
			*v += 2;
			return px[i].op;
		}
	return SALUS_SQ_EQ;
}

static int date_val(const char *v, struct salus_sq_val *out)
{
	out->op = prefix_op(&v);
	/* a '+' of a time-zone offset that reached us as a space (form decoding of an unescaped '+') */
	char tmp[64];
	size_t n = strlen(v);
	if (n < sizeof tmp && n > 6 && v[n - 6] == ' ' && v[n - 3] == ':') {
		memcpy(tmp, v, n + 1);
		tmp[n - 6] = '+';
		v = tmp;
	}
	if (salus_fhir_date_range(v, n, &out->lo, &out->hi))
		return SALUS_EINVALID;
	if (out->op == SALUS_SQ_AP) {
		/* approximately: 10% of the distance from now, either side (R4 search §3.1.1.4.7) */
		int64_t now = salus_now_ms(), d = out->lo > now ? out->lo - now : now - out->lo;
		d /= 10;
		out->lo -= d;
		out->hi += d;
	}
	return SALUS_OK;
}

static int number_val(char *v, struct salus_sq_val *out, bool quantity)
{
	const char *p = v;
	out->op = prefix_op(&p);
	char *rest = NULL, *num;
	if (quantity) {
		bar_split((char *)(uintptr_t)p, &num, &rest);
		p = num;
		if (rest) {
			char *sys, *code;
			bar_split(rest, &sys, &code);
			if (code && *code)
				out->b = code;
			if (*sys)
				out->a = sys;
			if (!code && *sys) { /* "5.4|mg" is not a form; take it as a code */
				out->b = sys;
				out->a = NULL;
			}
		}
	}
	if (salus_fhir_number_range(p, strlen(p), &out->v, &out->vlo, &out->vhi))
		return SALUS_EINVALID;
	if (out->op == SALUS_SQ_AP) {
		/* within 10%, the bounds as decimals (like the precision range) */
		char b[64];
		double d = fabs(out->v) * 0.1;
		snprintf(b, sizeof b, "%.15g", out->v - d);
		out->vlo = strtod(b, NULL);
		snprintf(b, sizeof b, "%.15g", out->v + d);
		out->vhi = strtod(b, NULL);
	}
	return SALUS_OK;
}

static uint32_t *one_param(struct salus_fhir_search *s, uint32_t id)
{
	uint32_t *p = salus_fhir_search_alloc(s, sizeof *p);
	if (p)
		*p = id;
	return p;
}

static int parse_clause(struct salus_fhir_search *s, const char *type, const char *name, const char *value,
			struct salus_sq_clause *c, int depth, const char **why);

static int sp_kind(int sptype)
{
	switch (sptype) {
	case SALUS_FHIR_SP_STRING: return SALUS_SQ_STRING;
	case SALUS_FHIR_SP_TOKEN: return SALUS_SQ_TOKEN;
	case SALUS_FHIR_SP_DATE: return SALUS_SQ_DATE;
	case SALUS_FHIR_SP_NUMBER: return SALUS_SQ_NUMBER;
	case SALUS_FHIR_SP_QUANTITY: return SALUS_SQ_QUANTITY;
	case SALUS_FHIR_SP_REFERENCE: return SALUS_SQ_REFERENCE;
	case SALUS_FHIR_SP_URI: return SALUS_SQ_URI;
	case SALUS_FHIR_SP_COMPOSITE: return SALUS_SQ_COMPOSITE;
	default: return 0;
	}
}

/* One value of a parameter of kind `kind` with modifier mod (may be NULL). */
static int parse_value(struct salus_fhir_search *s, int kind, const char *mod, char *v, struct salus_sq_val *out,
		       const char **why)
{
	int rc = SALUS_OK;
	char *l, *r;
	switch (kind) {
	case SALUS_SQ_STRING:
		unescape(v);
		if (mod && !strcmp(mod, "exact")) {
			out->op = SALUS_SQ_STR_EXACT;
			out->a = v;
			out->b = norm_dup(s, v, &rc);
		} else {
			out->op = mod && !strcmp(mod, "contains") ? SALUS_SQ_STR_CONTAINS : SALUS_SQ_STR_START;
			out->a = norm_dup(s, v, &rc);
		}
		if (rc == SALUS_EINVALID)
			*why = "string search value is not valid UTF-8";
		return rc;
	case SALUS_SQ_TOKEN:
		bar_split(v, &l, &r);
		if (!r) {
			out->op = SALUS_SQ_TOK_CODE;
			out->b = l;
		} else if (!*l) {
			out->op = SALUS_SQ_TOK_NOSYS;
			out->b = r;
		} else if (!*r) {
			out->op = SALUS_SQ_TOK_SYS;
			out->a = l;
		} else {
			out->op = SALUS_SQ_TOK_SYS_CODE;
			out->a = l;
			out->b = r;
		}
		return SALUS_OK;
	case SALUS_SQ_DATE:
	case SALUS_SQ_LASTUPDATED:
		if (date_val(v, out)) {
			*why = "invalid date search value (expected [prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|+hh:mm]]]])";
			return SALUS_EINVALID;
		}
		return SALUS_OK;
	case SALUS_SQ_NUMBER:
	case SALUS_SQ_QUANTITY:
		if (number_val(v, out, kind == SALUS_SQ_QUANTITY)) {
			*why = "invalid number or quantity search value";
			return SALUS_EINVALID;
		}
		return SALUS_OK;
	case SALUS_SQ_REFERENCE: {
		bar_split(v, &l, &r);
		if (mod && !strcmp(mod, "identifier")) {
			out->op = SALUS_SQ_REF_IDENT;
			if (r) {
				out->e = *l ? l : NULL;
				out->f = r;
			} else {
				out->f = l;
			}
			return SALUS_OK;
		}
		size_t bn = s->base ? strlen(s->base) : 0;
		if (bn && !strncmp(v, s->base, bn) && v[bn] == '/' && !r) {
			/* an absolute URL on this server's base is the local reference Type/id */
			memmove(v, v + bn + 1, strlen(v + bn + 1) + 1);
		}
		const char *colon = strchr(v, ':'), *slash = strchr(v, '/');
		char *hist = strstr(v, "/_history/");
		if (hist && !(colon && (!slash || colon < slash)))
			*hist = 0; /* Type/id/_history/n: references are matched on the resource, not the version */
		if (colon && (!slash || colon < slash)) {
			out->op = SALUS_SQ_REF_URL;
			out->c = v;
			out->d = r;
			return SALUS_OK;
		}
		out->op = SALUS_SQ_REF_LOCAL;
		if (slash) {
			*(char *)(uintptr_t)slash = 0;
			out->a = v;
			out->b = slash + 1;
			if (!salus_fhir_is_resource_type(v, strlen(v)) || strchr(out->b, '/')) {
				*why = "invalid reference search value (expected [Type/]id or a URL)";
				return SALUS_EINVALID;
			}
		} else {
			out->b = v;
			out->a = mod && salus_fhir_is_resource_type(mod, strlen(mod)) ? mod : NULL;
		}
		return SALUS_OK;
	}
	case SALUS_SQ_URI:
		out->op = mod && !strcmp(mod, "below") ? SALUS_SQ_URI_BELOW
			  : mod && !strcmp(mod, "above") ? SALUS_SQ_URI_ABOVE
							  : SALUS_SQ_URI_EQ;
		out->a = v;
		return SALUS_OK;
	default:
		*why = "unsupported search parameter type";
		return SALUS_EINVALID;
	}
}

static bool mod_ok(int kind, const char *mod)
{
	if (!mod || !strcmp(mod, "missing"))
		return true;
	switch (kind) {
	case SALUS_SQ_STRING: return !strcmp(mod, "exact") || !strcmp(mod, "contains");
	case SALUS_SQ_TOKEN:
		return !strcmp(mod, "not") || !strcmp(mod, "text") || !strcmp(mod, "of-type") || !strcmp(mod, "in") ||
		       !strcmp(mod, "not-in") || !strcmp(mod, "above") || !strcmp(mod, "below");
	case SALUS_SQ_REFERENCE: return !strcmp(mod, "identifier") || salus_fhir_is_resource_type(mod, strlen(mod));
	case SALUS_SQ_URI: return !strcmp(mod, "below") || !strcmp(mod, "above");
	default: return false;
	}
}

/* The types a system-wide search covers: those of _type, else all. */
static size_t sys_type_count(const struct salus_fhir_search *s)
{
	return s->types ? s->ntypes : salus_fhir_resource_type_count();
}

static const char *sys_type_at(const struct salus_fhir_search *s, size_t i)
{
	return s->types ? s->types[i] : salus_fhir_resource_type_at(i);
}

/* Every covered type's id of parameter code (system-wide _tag, _profile...).
 * The types that define it must agree on its kind. */
static int all_types_params(struct salus_fhir_search *s, const char *code, struct salus_sq_clause *c, int *sptype)
{
	size_t nt = sys_type_count(s);
	uint32_t *p = salus_fhir_search_alloc(s, (nt ? nt : 1) * sizeof *p);
	if (!p)
		return SALUS_ENOMEM;
	c->params = p;
	c->nparams = 0;
	*sptype = 0;
	for (size_t i = 0; i < nt; i++) {
		const char *t = sys_type_at(s, i);
		const struct salus_fhir_sp *sp = salus_fhir_sp_find(t, strlen(t), code, strlen(code));
		if (!sp)
			continue;
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(sp, &info);
		if (*sptype && *sptype != (int)info.type)
			return SALUS_EINVALID;
		*sptype = info.type;
		p[c->nparams++] = salus_fhir_search_param_id(t, code);
	}
	return c->nparams ? SALUS_OK : SALUS_EINVALID;
}

int salus_fhir_search_compartment(struct salus_fhir_search *s, const char *ctype, const char *pid)
{
	size_t nt = ctype ? 1 : sys_type_count(s), np = 0;
	for (size_t i = 0; i < nt; i++) {
		const char *t = ctype ? ctype : sys_type_at(s, i);
		np += salus_fhir_compartment_count(salus_fhir_type_find(t, strlen(t)));
	}
	struct salus_sq_clause *c = salus_fhir_search_clause(s);
	uint32_t *p = salus_fhir_search_alloc(s, (np ? np : 1) * sizeof *p);
	struct salus_sq_val *v = salus_fhir_search_alloc(s, sizeof *v);
	char *id = sdup(s, pid, strlen(pid));
	if (!c || !p || !v || !id)
		return SALUS_ENOMEM;
	for (size_t i = 0; i < nt; i++) {
		const char *t = ctype ? ctype : sys_type_at(s, i);
		const struct salus_fhir_type *ft = salus_fhir_type_find(t, strlen(t));
		for (size_t k = 0; k < salus_fhir_compartment_count(ft); k++) {
			const char *code = salus_fhir_compartment_param_at(ft, k);
			const struct salus_fhir_sp *sp = code ? salus_fhir_sp_find(t, strlen(t), code, strlen(code)) : NULL;
			struct salus_fhir_sp_info info;
			if (!sp)
				continue;
			salus_fhir_sp_get(sp, &info);
			if (info.type == SALUS_FHIR_SP_REFERENCE)
				p[c->nparams++] = salus_fhir_search_param_id(t, code);
		}
	}
	if (!c->nparams) /* not in the compartment: a parameter id no index row carries */
		p[c->nparams++] = SALUS_SQ_TEXT_BIT | SALUS_SQ_TYPE_BIT;
	c->kind = SALUS_SQ_REFERENCE;
	c->params = p;
	v->op = SALUS_SQ_REF_LOCAL;
	v->a = "Patient";
	v->b = id;
	c->vals = v;
	c->nvals = 1;
	return SALUS_OK;
}

/* System-wide search: the types of _type (before the other parameters, which
 * must be defined on them).  One type makes it a search on that type. */
static int sys_types(struct salus_fhir_search *s, const struct salus_param *params, size_t nparams,
		     const char **type, const char **why)
{
	for (size_t i = 0; i < nparams; i++) {
		if (strcmp(params[i].name, "_type") || !params[i].value[strspn(params[i].value, ",")])
			continue; /* (an empty _type is ignored like any empty parameter) */
		char *vals[MAX_VALUES];
		size_t nv;
		if (split(s, params[i].value, ',', vals, MAX_VALUES, &nv)) {
			*why = "too many values";
			return SALUS_EINVALID;
		}
		const char **nt = salus_fhir_search_alloc(s, (s->ntypes + nv) * sizeof *nt);
		if (!nt)
			return SALUS_ENOMEM;
		/* repeated _type parameters are ANDed: keep the types every one names */
		size_t n = 0;
		for (size_t k = 0; k < nv; k++) {
			size_t ti;
			if (!salus_fhir_is_resource_type(vals[k], strlen(vals[k]))) {
				*why = "unknown resource type in _type";
				return SALUS_EINVALID;
			}
			bool keep = !s->types;
			for (ti = 0; s->types && ti < s->ntypes && !keep; ti++)
				keep = !strcmp(s->types[ti], vals[k]);
			if (keep)
				nt[n++] = vals[k];
		}
		s->types = nt;
		s->ntypes = n;
	}
	if (s->types && s->ntypes == 1)
		*type = s->types[0];
	return SALUS_OK;
}

static int parse_has(struct salus_fhir_search *s, const char *type, const char *name, const char *value,
		     struct salus_sq_clause *c, int depth, const char **why)
{
	/* _has:Type:refparam:rest */
	const char *a = name + 5, *b = strchr(a, ':');
	const char *rest = b ? strchr(b + 1, ':') : NULL;
	if (!type || !b || !rest || depth >= MAX_CHAIN) {
		*why = "invalid _has (expected _has:Type:reference:parameter)";
		return SALUS_EINVALID;
	}
	char *t = sdup(s, a, (size_t)(b - a)), *ref = sdup(s, b + 1, (size_t)(rest - b - 1));
	struct salus_sq *sub = salus_fhir_search_alloc(s, sizeof *sub);
	struct salus_sq_clause *sc = salus_fhir_search_alloc(s, sizeof *sc);
	if (!t || !ref || !sub || !sc)
		return SALUS_ENOMEM;
	const struct salus_fhir_sp *sp = salus_fhir_sp_find(t, strlen(t), ref, strlen(ref));
	struct salus_fhir_sp_info info;
	if (!salus_fhir_is_resource_type(t, strlen(t)) || !sp) {
		*why = "unknown type or reference parameter in _has";
		return SALUS_EINVALID;
	}
	salus_fhir_sp_get(sp, &info);
	if (info.type != SALUS_FHIR_SP_REFERENCE) {
		*why = "_has needs a reference parameter";
		return SALUS_EINVALID;
	}
	int rc = parse_clause(s, t, rest + 1, value, sc, depth + 1, why);
	if (rc)
		return rc;
	sub->type = t;
	sub->clauses = sc;
	sub->nclauses = 1;
	c->kind = SALUS_SQ_HAS;
	c->sub = sub;
	if (!(c->params = one_param(s, salus_fhir_search_param_id(t, ref))))
		return SALUS_ENOMEM;
	c->nparams = 1;
	return SALUS_OK;
}

static int parse_chain(struct salus_fhir_search *s, const char *type, const struct salus_fhir_sp *sp,
		       const char *code, const char *mod, const char *rest, const char *value,
		       struct salus_sq_clause *c, int depth, const char **why)
{
	struct salus_fhir_sp_info info;
	salus_fhir_sp_get(sp, &info);
	if (info.type != SALUS_FHIR_SP_REFERENCE || depth >= MAX_CHAIN) {
		*why = "chained parameters need a reference parameter";
		return SALUS_EINVALID;
	}
	/* the next parameter's code (before any '.' or ':') */
	size_t cn = strcspn(rest, ".:");
	size_t nt = info.ntargets;
	struct salus_sq_val *vals = salus_fhir_search_alloc(s, (nt ? nt : 1) * sizeof *vals);
	if (!vals)
		return SALUS_ENOMEM;
	c->kind = SALUS_SQ_REFERENCE;
	c->vals = vals;
	if (!(c->params = one_param(s, salus_fhir_search_param_id(type, code))))
		return SALUS_ENOMEM;
	c->nparams = 1;
	for (size_t i = 0; i < nt; i++) {
		const char *t = salus_fhir_sp_target_at(sp, i);
		if (mod && strcmp(mod, t))
			continue;
		if (!salus_fhir_sp_find(t, strlen(t), rest, cn))
			continue;
		struct salus_sq *sub = salus_fhir_search_alloc(s, sizeof *sub);
		struct salus_sq_clause *sc = salus_fhir_search_alloc(s, sizeof *sc);
		if (!sub || !sc)
			return SALUS_ENOMEM;
		int rc = parse_clause(s, t, rest, value, sc, depth + 1, why);
		if (rc)
			return rc;
		sub->type = t;
		sub->clauses = sc;
		sub->nclauses = 1;
		vals[c->nvals].op = SALUS_SQ_REF_CHAIN;
		vals[c->nvals++].chain = sub;
	}
	if (!c->nvals) {
		*why = "chained parameter not defined on the reference's target types";
		return SALUS_EINVALID;
	}
	return SALUS_OK;
}

static int set_add(struct salus_sq_clause *c, struct salus_sq_val *v, size_t cap, const char *sys, const char *code,
		   const char **why)
{
	if (c->nvals == cap) {
		*why = "the value set or hierarchy has too many codes to search on";
		return SALUS_EINVALID;
	}
	v[c->nvals].op = SALUS_SQ_TOK_SYS_CODE;
	v[c->nvals].a = sys;
	v[c->nvals++].b = code;
	return SALUS_OK;
}

/* Is code `anc` an ancestor of (or equal to) `code` in system's hierarchy? */
static bool cs_subsumes(const char *sys, const char *anc, const char *code)
{
	size_t sn = strlen(sys);
	for (int depth = 0; code && depth < 64; depth++) {
		if (!strcmp(code, anc))
			return true;
		code = salus_fhir_cs_parent(sys, sn, code, strlen(code));
	}
	return false;
}

/* Token :in / :not-in (value set URLs) and :above / :below (system|code in a
 * code-system hierarchy of the definitions): the clause becomes the OR of the
 * (system, code) pairs; :not-in negates it.  A value set that is not expanded
 * or a system without a known hierarchy is a 400 (never a silent empty set). */
static int token_set(struct salus_fhir_search *s, const char *mod, char **vals, size_t nv, struct salus_sq_clause *c,
		     const char **why)
{
	const struct salus_fhir_vs *vss[MAX_VALUES];
	char *syss[MAX_VALUES], *codes[MAX_VALUES];
	bool in = !strcmp(mod, "in") || !strcmp(mod, "not-in"), below = !strcmp(mod, "below");
	size_t need = 1; /* room for every code (capped), or the one that matches nothing */
	for (size_t i = 0; i < nv && i < MAX_VALUES; i++) {
		if (in) {
			unescape(vals[i]);
			vss[i] = salus_fhir_vs_find(vals[i], strlen(vals[i]));
			if (!vss[i] || !salus_fhir_vs_expanded(vss[i])) {
				*why = vss[i] ? "value set cannot be expanded by this server (filters or an external code system)"
					      : "unknown value set";
				return SALUS_EINVALID;
			}
			need += salus_fhir_vs_code_count(vss[i]);
			continue;
		}
		bar_split(vals[i], &syss[i], &codes[i]);
		if (!codes[i] || !*syss[i] || !*codes[i]) {
			*why = "token :above and :below take system|code";
			return SALUS_EINVALID;
		}
		size_t n = salus_fhir_cs_concept_count(syss[i], strlen(syss[i]));
		if (!n) {
			*why = "no hierarchy known for this code system (:above / :below)";
			return SALUS_EINVALID;
		}
		need += n + 1;
	}
	size_t cap = need < MAX_SET_CODES ? need : MAX_SET_CODES;
	struct salus_sq_val *v = salus_fhir_search_alloc(s, cap * sizeof *v);
	int rc = SALUS_OK;
	if (!v)
		return SALUS_ENOMEM;
	c->vals = v;
	c->nvals = 0;
	c->negate = !strcmp(mod, "not-in");
	for (size_t i = 0; i < nv && i < MAX_VALUES && !rc; i++) {
		if (in) {
			size_t n = salus_fhir_vs_code_count(vss[i]);
			for (size_t k = 0; k < n && !rc; k++) {
				const char *sys, *code;
				if (!salus_fhir_vs_code_at(vss[i], k, &sys, &code))
					rc = set_add(c, v, cap, sys, code, why);
			}
			continue;
		}
		const char *sys = syss[i], *code = codes[i];
		size_t sn = strlen(sys), n = salus_fhir_cs_concept_count(sys, sn);
		bool found = false;
		for (size_t k = 0; k < n && !rc; k++) {
			const char *cc, *parent;
			if (salus_fhir_cs_concept_at(sys, sn, k, &cc, &parent))
				break;
			found |= !strcmp(cc, code);
			if (below ? cs_subsumes(sys, code, cc) : cs_subsumes(sys, cc, code))
				rc = set_add(c, v, cap, sys, cc, why);
		}
		if (!rc && !found) /* a code the hierarchy does not list: itself only */
			rc = set_add(c, v, cap, sys, code, why);
	}
	if (!rc && !c->nvals) /* an empty value set matches nothing (:not-in: everything) */
		rc = set_add(c, v, cap, "", "", why);
	return rc;
}

/* Location near=latitude|longitude[|distance[|units]] (R4 Location search):
 * positions inside the box of that half-width around the point (as HAPI
 * FHIR does: a bounding box, not a circle); units km (default), m, [mi_i] or
 * mi; no distance: the point itself.  A composite clause on the two index
 * rows of Location.position (Location.near#0 latitude, #1 longitude). */
static int parse_near(struct salus_fhir_search *s, const char *value, struct salus_sq_clause *c, const char **why)
{
	char *vals[MAX_VALUES], *part[4] = {0};
	size_t nv;
	int rc;
	if ((rc = split(s, value, ',', vals, MAX_VALUES, &nv)))
		return rc == SALUS_EINVALID ? (*why = "too many values", rc) : rc;
	struct salus_sq_val *v = salus_fhir_search_alloc(s, nv * sizeof *v);
	if (!v)
		return SALUS_ENOMEM;
	c->kind = SALUS_SQ_COMPOSITE;
	c->params = one_param(s, salus_fhir_search_param_id("Location", "near"));
	c->nparams = 1;
	c->vals = v;
	for (size_t i = 0; i < nv; i++) {
		char *rest = vals[i];
		size_t np = 0;
		while (rest && np < 4)
			bar_split(rest, &part[np++], &rest);
		double lat, lon, d = 0, lo, hi, mul = 1;
		if (np < 2 || rest || salus_fhir_number_range(part[0], strlen(part[0]), &lat, &lo, &hi) ||
		    salus_fhir_number_range(part[1], strlen(part[1]), &lon, &lo, &hi) || fabs(lat) > 90 || fabs(lon) > 180 ||
		    (np > 2 && *part[2] && (salus_fhir_number_range(part[2], strlen(part[2]), &d, &lo, &hi) || d < 0))) {
			*why = "near takes latitude|longitude[|distance[|units]]";
			return SALUS_EINVALID;
		}
		const char *u = np > 3 && *part[3] ? part[3] : "km";
		if (!strcmp(u, "m"))
			mul = 0.001;
		else if (!strcmp(u, "[mi_i]") || !strcmp(u, "mi"))
			mul = 1.609344;
		else if (strcmp(u, "km")) {
			*why = "near distance units: km, m or [mi_i]";
			return SALUS_EINVALID;
		}
		double km = d * mul, dlat = km / 111.32, cl = cos(lat * 3.14159265358979323846 / 180.0);
		double dlon = cl > 1e-9 ? km / (111.32 * cl) : 360;
		struct salus_sq_clause *comp = salus_fhir_search_alloc(s, 2 * sizeof *comp);
		struct salus_sq_val *cv = salus_fhir_search_alloc(s, 2 * sizeof *cv);
		if (!comp || !cv || !(comp[0].params = one_param(s, salus_fhir_search_param_id("Location", "near#0"))) ||
		    !(comp[1].params = one_param(s, salus_fhir_search_param_id("Location", "near#1"))))
			return SALUS_ENOMEM;
		for (int k = 0; k < 2; k++) {
			double at = k ? lon : lat, dd = k ? dlon : dlat;
			comp[k].kind = SALUS_SQ_NUMBER;
			comp[k].nparams = 1;
			comp[k].vals = &cv[k];
			comp[k].nvals = 1;
			cv[k].op = SALUS_SQ_AP; /* inclusive [vlo, vhi] */
			cv[k].v = at;
			cv[k].vlo = at - dd;
			cv[k].vhi = at + dd;
		}
		v[i].op = SALUS_SQ_ANY;
		v[i].comp = comp;
		v[i].ncomp = 2;
	}
	c->nvals = nv;
	return c->params ? SALUS_OK : SALUS_ENOMEM;
}

static int parse_clause(struct salus_fhir_search *s, const char *type, const char *name, const char *value,
			struct salus_sq_clause *c, int depth, const char **why)
{
	char *vals[MAX_VALUES];
	size_t nv = 0;
	int rc;

	if (!strncmp(name, "_has:", 5))
		return parse_has(s, type, name, value, c, depth, why);
	if (strcspn(name, ".:") == 6 && !strncmp(name, "_query", 6)) { /* R4 "Named queries": unknown = error */
		*why = "named queries (_query) are not supported";
		return SALUS_EINVALID;
	}
	if (!strcmp(name, "_list")) {
		/* _list=ID: the resources List/ID has as entry.item, i.e. _has:List:item:_id=ID
		 * (functional lists such as $current-problems are not supported) */
		if (strchr(value, '$')) {
			*why = "functional lists ($...) are not supported in _list";
			return SALUS_EINVALID;
		}
		return parse_has(s, type, "_has:List:item:_id", value, c, depth, why);
	}
	size_t cn = strcspn(name, ".:");
	char *code = sdup(s, name, cn);
	const char *mod = NULL, *rest = NULL;
	if (!code)
		return SALUS_ENOMEM;
	if (name[cn] == ':') {
		size_t mn = strcspn(name + cn + 1, ".");
		if (!(mod = sdup(s, name + cn + 1, mn)))
			return SALUS_ENOMEM;
		if (name[cn + 1 + mn] == '.')
			rest = name + cn + 2 + mn;
	} else if (name[cn] == '.') {
		rest = name + cn + 1;
	}
	/* parameters every resource has, kept on the resource row */
	if (!strcmp(code, "_id") || !strcmp(code, "_lastUpdated") || !strcmp(code, "_text") ||
	    !strcmp(code, "_content") || !strcmp(code, "_type")) {
		bool neg = mod && !strcmp(mod, "not") && !strcmp(code, "_id");
		if (mod && !strcmp(mod, "missing") && !rest && (!strcmp(code, "_id") || !strcmp(code, "_lastUpdated"))) {
			/* every resource has both: missing=true matches nothing, false everything */
			if (strcmp(value, "true") && strcmp(value, "false")) {
				*why = ":missing takes true or false";
				return SALUS_EINVALID;
			}
			c->kind = SALUS_SQ_ID;
			c->negate = !strcmp(value, "false"); /* NOT id IN () */
			return SALUS_OK;
		}
		if ((mod && !neg) || rest) {
			*why = "unsupported modifier on a resource parameter";
			return SALUS_EINVALID;
		}
		c->kind = !strcmp(code, "_id") ? SALUS_SQ_ID
			  : !strcmp(code, "_lastUpdated") ? SALUS_SQ_LASTUPDATED
			  : !strcmp(code, "_text") ? SALUS_SQ_TEXT
			  : !strcmp(code, "_content") ? SALUS_SQ_CONTENT
						      : SALUS_SQ_TYPE;
		c->negate = neg;
		if (c->kind == SALUS_SQ_TEXT || c->kind == SALUS_SQ_CONTENT) {
			struct salus_sq_val *v = salus_fhir_search_alloc(s, sizeof *v);
			if (!v || !(v->a = sdup(s, value, strlen(value))))
				return SALUS_ENOMEM;
			v->op = SALUS_SQ_ANY;
			c->vals = v;
			c->nvals = 1;
			return SALUS_OK;
		}
		if ((rc = split(s, value, ',', vals, MAX_VALUES, &nv)))
			return rc == SALUS_EINVALID ? (*why = "too many values", rc) : rc;
		struct salus_sq_val *v = salus_fhir_search_alloc(s, nv * sizeof *v);
		if (!v)
			return SALUS_ENOMEM;
		for (size_t i = 0; i < nv; i++) {
			if (c->kind == SALUS_SQ_LASTUPDATED) {
				if ((rc = parse_value(s, SALUS_SQ_LASTUPDATED, NULL, vals[i], &v[i], why)))
					return rc;
			} else {
				char *l, *r;
				bar_split(vals[i], &l, &r);
				v[i].op = SALUS_SQ_ANY;
				v[i].a = l;
				if (c->kind == SALUS_SQ_TYPE && !salus_fhir_is_resource_type(l, strlen(l))) {
					*why = "unknown resource type in _type";
					return SALUS_EINVALID;
				}
			}
		}
		c->vals = v;
		c->nvals = nv;
		return SALUS_OK;
	}
	int sptype = 0;
	const struct salus_fhir_sp *sp = NULL;
	if (type) {
		sp = salus_fhir_sp_find(type, strlen(type), code, strlen(code));
		if (!sp) {
			*why = "unknown search parameter";
			return SALUS_ENOTFOUND;
		}
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(sp, &info);
		sptype = info.type;
		if (rest)
			return parse_chain(s, type, sp, code, mod, rest, value, c, depth, why);
		if (!(c->params = one_param(s, salus_fhir_search_param_id(type, code))))
			return SALUS_ENOMEM;
		c->nparams = 1;
	} else {
		if (rest || (rc = all_types_params(s, code, c, &sptype))) {
			*why = "unknown search parameter for a system-wide search";
			return SALUS_ENOTFOUND;
		}
	}
	if (type && !strcmp(type, "Location") && !strcmp(code, "near") && !mod)
		return parse_near(s, value, c, why);
	c->kind = sp_kind(sptype);
	if (!c->kind) {
		*why = "unsupported search parameter (special)";
		return SALUS_EINVALID;
	}
	if (!mod_ok(c->kind, mod)) {
		*why = "unsupported modifier for this parameter type";
		return SALUS_EINVALID;
	}
	if (mod && !strcmp(mod, "missing")) {
		if (strcmp(value, "true") && strcmp(value, "false")) {
			*why = ":missing takes true or false";
			return SALUS_EINVALID;
		}
		c->missing = !strcmp(value, "true") ? 1 : 2;
		if (c->kind == SALUS_SQ_COMPOSITE) {
			*why = ":missing on a composite parameter is not supported";
			return SALUS_EINVALID;
		}
		return SALUS_OK;
	}
	int vkind = c->kind;
	if (c->kind == SALUS_SQ_TOKEN && mod && !strcmp(mod, "text")) {
		c->kind = vkind = SALUS_SQ_STRING;
		for (size_t i = 0; i < c->nparams; i++)
			((uint32_t *)(uintptr_t)c->params)[i] |= SALUS_SQ_TEXT_BIT;
		mod = NULL;
	} else if (c->kind == SALUS_SQ_TOKEN && mod && !strcmp(mod, "of-type")) {
		for (size_t i = 0; i < c->nparams; i++)
			((uint32_t *)(uintptr_t)c->params)[i] |= SALUS_SQ_TYPE_BIT;
	} else if (c->kind == SALUS_SQ_TOKEN && mod && !strcmp(mod, "not")) {
		c->negate = true;
	}
	if ((rc = split(s, value, ',', vals, MAX_VALUES, &nv)))
		return rc == SALUS_EINVALID ? (*why = "too many values", rc) : rc;
	struct salus_sq_val *v = salus_fhir_search_alloc(s, nv * sizeof *v);
	if (!v)
		return SALUS_ENOMEM;
	/* empty members of an OR list ("a,,b") are skipped */
	size_t kept = 0;
	for (size_t i = 0; i < nv; i++)
		if (*vals[i])
			vals[kept++] = vals[i];
	nv = kept;
	if (!nv) {
		*why = "empty search value";
		return SALUS_EINVALID;
	}
	if (c->kind == SALUS_SQ_TOKEN && mod &&
	    (!strcmp(mod, "in") || !strcmp(mod, "not-in") || !strcmp(mod, "above") || !strcmp(mod, "below")))
		return token_set(s, mod, vals, nv, c, why);
	c->vals = v;
	c->nvals = nv;
	for (size_t i = 0; i < nv; i++) {
		if (c->kind == SALUS_SQ_TOKEN && mod && !strcmp(mod, "of-type")) {
			/* system|code|value */
			char *sys, *r1, *tc, *val;
			bar_split(vals[i], &sys, &r1);
			if (!r1) {
				*why = ":of-type takes system|code|value";
				return SALUS_EINVALID;
			}
			bar_split(r1, &tc, &val);
			if (!val) {
				*why = ":of-type takes system|code|value";
				return SALUS_EINVALID;
			}
			v[i].op = SALUS_SQ_TOK_SYS_CODE;
			v[i].a = sys;
			size_t n1 = strlen(tc), n2 = strlen(val);
			char *b = salus_fhir_search_alloc(s, n1 + n2 + 2);
			if (!b)
				return SALUS_ENOMEM;
			memcpy(b, tc, n1);
			b[n1] = '|';
			memcpy(b + n1 + 1, val, n2);
			v[i].b = b;
			continue;
		}
		if (c->kind == SALUS_SQ_COMPOSITE) {
			char *parts[8];
			size_t np = 0;
			if ((rc = split(s, vals[i], '$', parts, 8, &np)))
				return rc == SALUS_EINVALID ? (*why = "too many composite components", rc) : rc;
			struct salus_fhir_sp_info info;
			if (!type || !sp) { /* system-wide: the components differ per type */
				*why = "composite parameters need a resource type (or one _type)";
				return SALUS_EINVALID;
			}
			salus_fhir_sp_get(sp, &info);
			if (np != info.ncomponents) {
				*why = "composite value needs one part per component (a$b)";
				return SALUS_EINVALID;
			}
			struct salus_sq_clause *comp = salus_fhir_search_alloc(s, np * sizeof *comp);
			if (!comp)
				return SALUS_ENOMEM;
			for (size_t k = 0; k < np; k++) {
				const char *ccode, *cexpr;
				if (salus_fhir_sp_component(sp, k, &ccode, &cexpr))
					return SALUS_EINVALID;
				const struct salus_fhir_sp *csp = salus_fhir_sp_find(type, strlen(type), ccode, strlen(ccode));
				struct salus_fhir_sp_info ci;
				if (!csp)
					return SALUS_EINVALID;
				salus_fhir_sp_get(csp, &ci);
				char cid[160];
				snprintf(cid, sizeof cid, "%s#%zu", code, k);
				struct salus_sq_val *cv = salus_fhir_search_alloc(s, sizeof *cv);
				if (!cv || !(comp[k].params = one_param(s, salus_fhir_search_param_id(type, cid))))
					return SALUS_ENOMEM;
				comp[k].nparams = 1;
				comp[k].kind = sp_kind(ci.type);
				comp[k].vals = cv;
				comp[k].nvals = 1;
				if ((rc = parse_value(s, comp[k].kind, NULL, parts[k], cv, why)))
					return rc;
			}
			v[i].op = SALUS_SQ_ANY;
			v[i].comp = comp;
			v[i].ncomp = np;
			continue;
		}
		if ((rc = parse_value(s, vkind, mod, vals[i], &v[i], why)))
			return rc;
	}
	/* ne is "not equal" for the whole parameter only when it is the single value */
	return SALUS_OK;
}

static int sort_key(const char *type, const char *k, struct salus_sq_sort *out, const char **why)
{
	memset(out, 0, sizeof *out);
	if (*k == '-') {
		out->desc = true;
		k++;
	}
	if (!strcmp(k, "_id")) {
		out->kind = SALUS_SQ_SORT_ID;
		return SALUS_OK;
	}
	if (!strcmp(k, "_lastUpdated")) {
		out->kind = SALUS_SQ_SORT_UPDATED;
		return SALUS_OK;
	}
	const struct salus_fhir_sp *sp = type ? salus_fhir_sp_find(type, strlen(type), k, strlen(k)) : NULL;
	struct salus_fhir_sp_info info;
	if (!sp) {
		*why = "unknown _sort parameter";
		return SALUS_EINVALID;
	}
	salus_fhir_sp_get(sp, &info);
	static const int ix[] = {[SALUS_FHIR_SP_NUMBER] = SALUS_IX_NUMBER, [SALUS_FHIR_SP_DATE] = SALUS_IX_DATE,
				 [SALUS_FHIR_SP_STRING] = SALUS_IX_STRING, [SALUS_FHIR_SP_TOKEN] = SALUS_IX_TOKEN,
				 [SALUS_FHIR_SP_REFERENCE] = SALUS_IX_REFERENCE, [SALUS_FHIR_SP_COMPOSITE] = 0,
				 [SALUS_FHIR_SP_QUANTITY] = SALUS_IX_QUANTITY, [SALUS_FHIR_SP_URI] = SALUS_IX_URI,
				 [SALUS_FHIR_SP_SPECIAL] = 0};
	if (info.type < 1 || info.type > SALUS_FHIR_SP_SPECIAL || !ix[info.type]) {
		*why = "_sort on a composite or special parameter is not supported";
		return SALUS_EINVALID;
	}
	out->kind = SALUS_SQ_SORT_PARAM;
	out->ix = ix[info.type];
	out->param = salus_fhir_search_param_id(type, k);
	return SALUS_OK;
}

static int parse_include(struct salus_fhir_search *s, const char *type, const char *name, const char *value,
			 const char **why)
{
	struct incl *in = salus_realloc(s->incl, (s->nincl + 1) * sizeof *in);
	if (!in)
		return SALUS_ENOMEM;
	s->incl = in; /* freed by salus_fhir_search_free */
	in = &s->incl[s->nincl];
	memset(in, 0, sizeof *in);
	in->rev = !strncmp(name, "_revinclude", 11);
	const char *m = strchr(name, ':');
	if (m && (!strcmp(m, ":iterate") || !strcmp(m, ":recurse")))
		in->iterate = true;
	else if (m) {
		*why = "unsupported _include modifier";
		return SALUS_EINVALID;
	}
	if (!strcmp(value, "*")) {
		in->src = "*";
		s->nincl++;
		return SALUS_OK;
	}
	const char *c1 = strchr(value, ':');
	if (!c1) {
		*why = "_include takes Type:parameter[:target]";
		return SALUS_EINVALID;
	}
	char *src = sdup(s, value, (size_t)(c1 - value));
	const char *c2 = strchr(c1 + 1, ':');
	char *code = sdup(s, c1 + 1, c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1));
	if (!src || !code)
		return SALUS_ENOMEM;
	if (!salus_fhir_is_resource_type(src, strlen(src)) || (c2 && !salus_fhir_is_resource_type(c2 + 1, strlen(c2 + 1)))) {
		*why = "unknown resource type in _include";
		return SALUS_EINVALID;
	}
	if (!in->rev && type && strcmp(src, type) && !in->iterate) {
		/* an _include for another source type matches nothing; accepted */
	}
	in->src = src;
	in->target = c2 ? c2 + 1 : NULL;
	const struct salus_fhir_type *st = salus_fhir_type_find(src, strlen(src));
	size_t nsp = salus_fhir_sp_count(st);
	if (!(in->params = salus_fhir_search_alloc(s, nsp * sizeof *in->params)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < nsp; i++) {
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(salus_fhir_sp_at(st, i), &info);
		if (info.type != SALUS_FHIR_SP_REFERENCE || (strcmp(code, "*") && strcmp(code, info.code)))
			continue;
		in->params[in->nparams++] = salus_fhir_search_param_id(src, info.code);
	}
	if (!in->nparams) {
		*why = "unknown reference parameter in _include";
		return SALUS_EINVALID;
	}
	s->nincl++;
	return SALUS_OK;
}

/* _contained / _containedType (R4 search §3.1.1.5.10): false (the default)
 * searches the resources themselves (*on 0); true (1) searches the resources
 * contained in others and answers their containers (_containedType=container,
 * the default); both (2) answers both.  _containedType=contained is not
 * supported (400). */
static int contained_mode(const char *type, const struct salus_param *params, size_t nparams, int *on,
			  const char **why)
{
	for (size_t i = 0; i < nparams; i++) {
		const char *n = params[i].name, *v = params[i].value;
		if (!*v)
			continue;
		if (!strcmp(n, "_contained")) {
			if (!strcmp(v, "true")) {
				*on = 1;
			} else if (!strcmp(v, "both")) {
				*on = 2;
			} else if (strcmp(v, "false")) {
				*why = "_contained takes true, false or both";
				return SALUS_EINVALID;
			}
		} else if (!strcmp(n, "_containedType") && strcmp(v, "container")) {
			*why = strcmp(v, "contained") ? "_containedType takes container or contained"
						      : "_containedType=contained is not supported (container)";
			return SALUS_EINVALID;
		}
	}
	if (*on && !type) {
		*why = "_contained=true|both needs a resource type";
		return SALUS_EINVALID;
	}
	return SALUS_OK;
}

/* A clause of a _contained=true search: on the contained index. */
static int contained_clause(struct salus_sq_clause *c, const char **why)
{
	if (c->kind != SALUS_SQ_STRING && c->kind != SALUS_SQ_TOKEN && c->kind != SALUS_SQ_DATE &&
	    c->kind != SALUS_SQ_NUMBER && c->kind != SALUS_SQ_QUANTITY && c->kind != SALUS_SQ_REFERENCE &&
	    c->kind != SALUS_SQ_URI && c->kind != SALUS_SQ_COMPOSITE) {
		*why = "with _contained=true only the type's own search parameters are supported";
		return SALUS_EINVALID;
	}
	return SALUS_OK;
}

/* Copies of n clauses on the contained parameter ids (into out). */
static const uint32_t *contained_params(struct salus_fhir_search *s, const uint32_t *in, size_t n)
{
	uint32_t *p = salus_fhir_search_alloc(s, (n ? n : 1) * sizeof *p);
	for (size_t i = 0; p && i < n; i++)
		p[i] = salus_fhir_search_contained_id(in[i]);
	return p;
}

static int contained_copy(struct salus_fhir_search *s, const struct salus_sq_clause *in, size_t n,
			  struct salus_sq_clause *out)
{
	for (size_t i = 0; i < n; i++) {
		out[i] = in[i];
		if (!(out[i].params = contained_params(s, in[i].params, in[i].nparams)))
			return SALUS_ENOMEM;
		if (in[i].kind != SALUS_SQ_COMPOSITE)
			continue;
		struct salus_sq_val *v = salus_fhir_search_alloc(s, in[i].nvals * sizeof *v);
		if (!v)
			return SALUS_ENOMEM;
		for (size_t k = 0; k < in[i].nvals; k++) {
			v[k] = in[i].vals[k];
			struct salus_sq_clause *comp = salus_fhir_search_alloc(s, v[k].ncomp * sizeof *comp);
			if (!comp || contained_copy(s, in[i].vals[k].comp, v[k].ncomp, comp))
				return SALUS_ENOMEM;
			v[k].comp = comp;
		}
		out[i].vals = v;
	}
	return SALUS_OK;
}

/* Finish a _contained=true|both search (mode 1|2).  The contained branch:
 * containers of any type that contain a resource of `type` on which the
 * clauses hold, on the contained ids.  The positive clauses become the
 * components of one composite clause with the type marker (all rows of a
 * contained resource share a group), so they must hold on the same contained
 * resource; negated and :missing clauses stay apart (any contained resource
 * of the type).  The marker alone drives it.  both: the resource itself (the
 * clauses as parsed, on `type`) or the contained branch.  Sorted by resource
 * keys only. */
static int contained_search(struct salus_fhir_search *s, const char *type, int mode, const char **why)
{
	for (size_t i = 0; i < s->q.nsort; i++)
		if (s->q.sort[i].kind == SALUS_SQ_SORT_PARAM) {
			*why = "_sort on a parameter is not supported with _contained=true|both";
			return SALUS_EINVALID;
		}
	size_t n = s->ncl;
	struct salus_sq_clause *orig = salus_fhir_search_alloc(s, (n + 1) * sizeof *orig);
	struct salus_sq_clause *mapped = salus_fhir_search_alloc(s, (n + 1) * sizeof *mapped);
	struct salus_sq_clause *comp = salus_fhir_search_alloc(s, (n + 1) * sizeof *comp);
	struct salus_sq_clause *branch = salus_fhir_search_alloc(s, (n + 2) * sizeof *branch);
	struct salus_sq_val *mv = salus_fhir_search_alloc(s, sizeof *mv), *cv = salus_fhir_search_alloc(s, sizeof *cv);
	const uint32_t *marker = one_param(s, salus_fhir_search_contained_marker());
	if (!orig || !mapped || !comp || !branch || !mv || !cv || !marker)
		return SALUS_ENOMEM;
	if (n)
		memcpy(orig, s->cl, n * sizeof *orig);
	if (contained_copy(s, orig, n, mapped))
		return SALUS_ENOMEM;
	mv->op = SALUS_SQ_TOK_CODE;
	mv->b = type;
	comp[0] = (struct salus_sq_clause){.kind = SALUS_SQ_TOKEN, .params = marker, .nparams = 1, .vals = mv, .nvals = 1};
	branch[0] = comp[0]; /* the driver */
	size_t ncomp = 1, nb = 1;
	for (size_t i = 0; i < n; i++) {
		if (!mapped[i].negate && !mapped[i].missing && mapped[i].kind != SALUS_SQ_COMPOSITE)
			comp[ncomp++] = mapped[i];
		else
			branch[nb++] = mapped[i];
	}
	if (ncomp > 1) {
		cv->op = SALUS_SQ_ANY;
		cv->comp = comp;
		cv->ncomp = ncomp;
		branch[nb++] = (struct salus_sq_clause){
			.kind = SALUS_SQ_COMPOSITE, .params = marker, .nparams = 1, .vals = cv, .nvals = 1};
	}
	s->ncl = s->q.nclauses = 0;
	s->q.type = NULL;
	if (mode == 1) {
		for (size_t i = 0; i < nb; i++) {
			struct salus_sq_clause *c = salus_fhir_search_clause(s);
			if (!c)
				return SALUS_ENOMEM;
			*c = branch[i];
		}
		return SALUS_OK;
	}
	struct salus_sq *subs = salus_fhir_search_alloc(s, 2 * sizeof *subs);
	struct salus_sq_clause *c = salus_fhir_search_clause(s);
	if (!subs || !c)
		return SALUS_ENOMEM;
	subs[0].type = type;
	subs[0].clauses = orig;
	subs[0].nclauses = n;
	subs[1].clauses = branch;
	subs[1].nclauses = nb;
	c->kind = SALUS_SQ_ANYOF;
	c->sub = subs;
	c->nsub = 2;
	return SALUS_OK;
}

static bool name_is(const char *n, const char *want)
{
	size_t k = strlen(want);
	return !strncmp(n, want, k) && (n[k] == 0 || n[k] == ':');
}

int salus_fhir_search_parse(const char *type, const struct salus_param *params, size_t nparams, bool lenient,
			    struct salus_fhir_search **out, const char **why)
{
	return salus_fhir_search_parse_at(type, NULL, params, nparams, lenient, out, why);
}

/* Does parameter code of type have at most one reference per resource, so at
 * most one index row (index_reference writes one row per Reference)?  Its
 * expression is one top-level element of at most one value, of type
 * Reference, optionally restricted by where(resolve() is X). */
static bool one_reference(const char *type, const char *code)
{
	const struct salus_fhir_sp *sp = salus_fhir_sp_find(type, strlen(type), code, strlen(code));
	struct salus_fhir_sp_info info;
	if (!sp)
		return false;
	salus_fhir_sp_get(sp, &info);
	const char *e = info.expression;
	size_t tl = strlen(type);
	if (info.type != SALUS_FHIR_SP_REFERENCE || !e || strncmp(e, type, tl) || e[tl] != '.')
		return false;
	size_t n = tl + 1;
	while ((e[n] >= 'a' && e[n] <= 'z') || (e[n] >= 'A' && e[n] <= 'Z') || (e[n] >= '0' && e[n] <= '9'))
		n++;
	if (n == tl + 1)
		return false;
	if (e[n]) {
		/* .where(resolve() is X): a filter, never more values */
		const char *w = e + n;
		static const char pre[] = ".where(resolve() is ";
		if (strncmp(w, pre, sizeof pre - 1))
			return false;
		w += sizeof pre - 1;
		while ((*w >= 'a' && *w <= 'z') || (*w >= 'A' && *w <= 'Z'))
			w++;
		if (strcmp(w, ")"))
			return false;
	}
	const struct salus_fhir_elem *el = salus_fhir_elem_find(e, n);
	struct salus_fhir_elem_info ei;
	if (!el)
		return false;
	salus_fhir_elem_get(el, &ei);
	const char *tc = salus_fhir_elem_type_code(el, 0);
	return ei.max == 1 && !ei.choice && ei.ntypes == 1 && tc && !strcmp(tc, "Reference");
}

/* Mark the top-level reference clauses on such a parameter one_row (store.h). */
static void mark_one_row(struct salus_fhir_search *s, const char *type)
{
	const struct salus_fhir_type *t = salus_fhir_type_find(type, strlen(type));
	size_t nsp = t ? salus_fhir_sp_count(t) : 0;
	for (size_t i = 0; i < s->ncl; i++) {
		struct salus_sq_clause *c = &s->cl[i];
		if (c->kind != SALUS_SQ_REFERENCE || c->nparams != 1 || c->negate || c->missing || c->drive)
			continue;
		for (size_t k = 0; k < nsp; k++) {
			struct salus_fhir_sp_info info;
			salus_fhir_sp_get(salus_fhir_sp_at(t, k), &info);
			if (salus_fhir_search_param_id(type, info.code) == c->params[0]) {
				c->one_row = one_reference(type, info.code);
				break;
			}
		}
	}
}

/* T?patient=X&code=c1,c2...: the patient+code rows of X and those codes
 * (search.h, salus_fhir_search_patient_code_id) as one more clause, marked
 * to drive the query: the pairs are an index range, where either clause
 * alone is every resource of the patient or of the code.  The same for a
 * chain into the Patients (patient:Patient.name=..., or subject:Patient...
 * where patient is subject restricted to Patients): the pairs of each
 * matching Patient.  Both clauses stay, so the result is the same.
 * Errors: SALUS_ENOMEM. */
/* Is `subject` of type the `patient` parameter without its Patient filter
 * (patient = T.subject.where(resolve() is Patient))?  Then a reference to a
 * Patient through subject is one through patient. */
static bool subject_is_patient(const char *type)
{
	const struct salus_fhir_sp *sp = salus_fhir_sp_find(type, strlen(type), "patient", 7);
	struct salus_fhir_sp_info info;
	char want[SALUS_MAX_TYPE + 48];
	if (!sp || !salus_fhir_sp_find(type, strlen(type), "subject", 7))
		return false;
	salus_fhir_sp_get(sp, &info);
	snprintf(want, sizeof want, "%s.subject.where(resolve() is Patient)", type);
	return info.expression && !strcmp(info.expression, want);
}

static int patient_code(struct salus_fhir_search *s, const char *type)
{
	uint32_t pp = salus_fhir_search_param_id(type, "patient"), pc = salus_fhir_search_param_id(type, "code");
	uint32_t ps_ = salus_fhir_search_param_id(type, "subject");
	const char *x = NULL;
	const struct salus_sq *chain = NULL; /* T?patient:Patient.name=...&code=...: the Patients */
	const struct salus_sq_val *cv = NULL;
	size_t ncv = 0, ipat = 0, icode = 0;
	for (size_t i = 0; i < s->ncl; i++) {
		const struct salus_sq_clause *c = &s->cl[i];
		if (c->negate || c->missing || c->nparams != 1 || !c->nvals)
			continue;
		const struct salus_sq_val *v = &c->vals[0];
		if (!x && !chain && c->kind == SALUS_SQ_REFERENCE && c->params[0] == pp && c->nvals == 1 &&
		    v->op == SALUS_SQ_REF_LOCAL && (!v->a || !strcmp(v->a, "Patient")) && v->b && *v->b &&
		    strlen(v->b) <= SALUS_MAX_ID) {
			x = v->b;
			ipat = i;
		} else if (!x && !chain && c->kind == SALUS_SQ_REFERENCE && c->nvals == 1 && v->op == SALUS_SQ_REF_CHAIN &&
			   v->chain && v->chain->type && !strcmp(v->chain->type, "Patient") &&
			   (c->params[0] == pp || (c->params[0] == ps_ && subject_is_patient(type)))) {
			chain = v->chain;
			ipat = i;
		} else if (!cv && c->kind == SALUS_SQ_TOKEN && c->params[0] == pc) {
			bool ok = true;
			for (size_t k = 0; k < c->nvals && ok; k++)
				ok = (c->vals[k].op == SALUS_SQ_TOK_CODE || c->vals[k].op == SALUS_SQ_TOK_SYS_CODE ||
				      c->vals[k].op == SALUS_SQ_TOK_NOSYS) && c->vals[k].b && *c->vals[k].b;
			if (ok) {
				cv = c->vals;
				ncv = c->nvals;
				icode = i;
			}
		}
	}
	if ((!x && !chain) || !cv || ncv >= 8) /* a long list (:in) stays on the code clause */
		return SALUS_OK;
	struct salus_sq_val *vals = salus_fhir_search_alloc(s, ncv * sizeof *vals);
	uint32_t *ps = salus_fhir_search_alloc(s, sizeof *ps);
	if (!vals || !ps)
		return SALUS_ENOMEM;
	*ps = salus_fhir_search_patient_code_id(type);
	size_t xl = x ? strlen(x) : 0;
	for (size_t k = 0; k < ncv; k++) {
		/* with a chain the system is "<each Patient's id>" + a, else x + a */
		vals[k].op = chain ? SALUS_SQ_TOK_CODE_CHAIN : SALUS_SQ_TOK_SYS_CODE;
		vals[k].chain = chain;
		vals[k].b = cv[k].b;
		if (cv[k].op == SALUS_SQ_TOK_CODE) {
			vals[k].a = chain ? "" : x; /* the any-system row */
			continue;
		}
		const char *sys = cv[k].op == SALUS_SQ_TOK_SYS_CODE && cv[k].a ? cv[k].a : "";
		size_t sl = strlen(sys);
		char *a = salus_fhir_search_alloc(s, xl + sl + 2);
		if (!a)
			return SALUS_ENOMEM;
		if (xl)
			memcpy(a, x, xl);
		a[xl] = '|';
		memcpy(a + xl + 1, sys, sl + 1);
		vals[k].a = a;
	}
	/* a pair row (X, k) exists only where the resource has a patient reference to X
	 * and a code k (index_patient_code), and a chain's pair rows are those of the
	 * Patients the chain matches (subject:Patient is patient here): the patient and
	 * code clauses hold for every match of the pairs, and are left out while the
	 * pairs drive (the store keeps them when it strips the pairs) — a chain then
	 * reads only the pair rows, not each match's reference and code rows */
	s->cl[ipat].implied = true;
	s->cl[icode].implied = true;
	struct salus_sq_clause *c = salus_fhir_search_clause(s); /* may move s->cl: nothing of it held */
	if (!c)
		return SALUS_ENOMEM;
	c->kind = SALUS_SQ_TOKEN;
	c->params = ps;
	c->nparams = 1;
	c->vals = vals;
	c->nvals = ncv;
	c->drive = true;
	/* one code value: a resource has one pair row (X, k), or (X|s, k), per Patient X
	 * it references (codings that repeat k give the same row), so one row when
	 * `patient` has at most one value */
	c->one_row = ncv == 1 && one_reference(type, "patient");
	return SALUS_OK;
}

int salus_fhir_search_parse_at(const char *type, const char *base, const struct salus_param *params, size_t nparams,
			       bool lenient, struct salus_fhir_search **out, const char **why)
{
	struct salus_fhir_search *s = salus_calloc(1, sizeof *s);
	int rc = SALUS_OK;
	*why = NULL;
	if (!s)
		return SALUS_ENOMEM;
	s->base = base;
	int contained = 0;
	if ((rc = contained_mode(type, params, nparams, &contained, why)))
		goto out_free;
	if (!type && (rc = sys_types(s, params, nparams, &type, why)))
		goto out_free;
	s->q.type = type;
	s->q.count = SALUS_SEARCH_COUNT;
	s->q.need_json = true;
	if (!(s->used = salus_fhir_search_alloc(s, (nparams ? nparams : 1) * sizeof *s->used)))
		goto out_nomem;
	s->nused = nparams;
	for (size_t i = 0; i < nparams; i++) {
		const char *n = params[i].name, *v = params[i].value;
		s->used[i] = true;
		if (!v[strspn(v, ",")]) {
			/* an empty value ("name=", "name=,") is ignored, as HAPI does, and left out of the self link */
			s->used[i] = false;
		} else if (!strcmp(n, "_count")) {
			long c;
			if (salus_parse_long((struct salus_slice){v, strlen(v)}, 0, 1L << 30, &c)) {
				*why = "_count must be a non-negative integer";
				rc = SALUS_EINVALID;
				goto out_free;
			}
			s->q.count = c > SALUS_MAX_COUNT ? SALUS_MAX_COUNT : (int)c;
		} else if (!strcmp(n, "_sort")) {
			char *keys[SALUS_SQ_MAX_SORT];
			size_t nk;
			if ((rc = split(s, v, ',', keys, SALUS_SQ_MAX_SORT, &nk))) {
				*why = "too many _sort keys";
				goto out_free;
			}
			for (size_t k = 0; k < nk; k++)
				if ((rc = sort_key(type, keys[k], &s->q.sort[k], why)))
					goto out_free;
			s->q.nsort = nk;
		} else if (!strcmp(n, "_total")) {
			s->total = !strcmp(v, "none") ? TOTAL_NONE : !strcmp(v, "estimate") ? TOTAL_ESTIMATE
				   : !strcmp(v, "accurate")                        ? TOTAL_ACCURATE
											   : -1;
			if (s->total < 0) {
				*why = "_total takes none, estimate or accurate";
				rc = SALUS_EINVALID;
				goto out_free;
			}
		} else if (!strcmp(n, "_summary")) {
			s->summary = !strcmp(v, "true") ? SUM_TRUE : !strcmp(v, "text") ? SUM_TEXT
				     : !strcmp(v, "data")                              ? SUM_DATA
				     : !strcmp(v, "count")                             ? SUM_COUNT
				     : !strcmp(v, "false")                             ? SUM_NONE
											: -1;
			if (s->summary < 0) {
				*why = "_summary takes true, text, data, count or false";
				rc = SALUS_EINVALID;
				goto out_free;
			}
		} else if (!strcmp(n, "_elements")) {
			char *els[MAX_ELEMENTS];
			size_t ne;
			if ((rc = split(s, v, ',', els, MAX_ELEMENTS, &ne))) {
				*why = "too many _elements";
				goto out_free;
			}
			if (!(s->elements = salus_fhir_search_alloc(s, ne * sizeof *s->elements)))
				goto out_nomem;
			for (size_t k = 0; k < ne; k++) {
				const char *e = els[k], *dot = strchr(e, '.');
				/* "Patient.name", "name" or a nested path "name.family" (kept below its parents) */
				if (dot && salus_fhir_is_resource_type(e, (size_t)(dot - e)))
					e = dot + 1;
				if (!*e || e[strlen(e) - 1] == '.' || strstr(e, "..")) {
					*why = "invalid _elements path";
					rc = SALUS_EINVALID;
					goto out_free;
				}
				s->elements[k] = e;
			}
			s->nelements = ne;
		} else if (name_is(n, "_include") || name_is(n, "_revinclude")) {
			if ((rc = parse_include(s, type, n, v, why)))
				goto out_free;
		} else if (!strcmp(n, "_cursor")) {
			s->q.after = v;
		} else if (!strcmp(n, "_dir")) {
			s->q.before = !strcmp(v, "prev");
		} else if (!strcmp(n, "_contained") || !strcmp(n, "_containedType")) {
			/* read before the loop (contained_mode) */
		} else if (!strcmp(n, "_pretty") || !strcmp(n, "_format")) {
			/* handled by the HTTP layer */
		} else {
			struct salus_sq_clause *c = salus_fhir_search_clause(s);
			if (!c)
				goto out_nomem;
			rc = parse_clause(s, type, n, v, c, 0, why);
			if (rc == SALUS_ENOTFOUND && lenient) {
				s->ncl--;
				s->q.nclauses = s->ncl;
				s->used[i] = false;
				rc = SALUS_OK;
				continue;
			}
			if (rc == SALUS_ENOTFOUND)
				rc = SALUS_EINVALID;
			if (!rc && contained)
				rc = contained_clause(c, why);
			if (rc)
				goto out_free;
		}
	}
	if (contained && (rc = contained_search(s, type, contained, why)))
		goto out_free;
	if (!contained && type && (rc = patient_code(s, type)))
		goto out_nomem;
	/* the clauses' parameter ids are those of type (contained ones are not) */
	s->q.typed_rows = !contained && type;
	if (!contained && type)
		mark_one_row(s, type);
	*out = s;
	return SALUS_OK;
out_nomem:
	rc = SALUS_ENOMEM;
out_free:
	if (rc != SALUS_ENOMEM && !*why)
		*why = "invalid search request";
	salus_fhir_search_free(s);
	return rc;
}
