/*
 * defs.c — lookups over the generated FHIR R4 definition tables.
 *
 * The tables (fhir_defs.c, generated at build time by tools/gen_fhir_defs.c)
 * are sorted where a lookup needs it: types by name, resource types by name,
 * each resource's search parameters by code, value sets by URL and their codes
 * by code.  Every lookup is a binary search or a walk over a handful of rows;
 * nothing allocates.  Layouts: defs_int.h.
 */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "fhir/defs.h"
#include "fhir_defs.h"

#define POOL(off) (salus_fhir_pool + (off))
#define OPT(off) ((off) ? POOL(off) : NULL)

/* Compare the NUL-terminated z with s[0..n) byte-wise (unsigned), like strcmp. */
static int cmpn(const char *z, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char a = (unsigned char)z[i], b = (unsigned char)s[i];
		if (a != b)
			return a < b ? -1 : 1; /* also when z ends first (a == 0 < b) */
	}
	return z[n] ? 1 : 0;
}

static size_t elem_idx(const struct salus_fhir_elem *e)
{
	return (size_t)(e - salus_fhir_elems);
}

const char *salus_fhir_version(void)
{
	return SALUS_FHIR_GEN_VERSION;
}

const char *salus_fhir_source(void)
{
	return SALUS_FHIR_GEN_SOURCE;
}

/* ---- resource types and types ---------------------------------------------- */

static long resource_idx(const char *s, size_t n)
{
	size_t lo = 0, hi = SALUS_FHIR_NRESOURCES;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmpn(POOL(salus_fhir_types[salus_fhir_resources[mid]].name), s, n);
		if (!c)
			return (long)mid;
		if (c > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

bool salus_fhir_is_resource_type(const char *s, size_t n)
{
	return s && n && resource_idx(s, n) >= 0;
}

size_t salus_fhir_resource_type_count(void)
{
	return SALUS_FHIR_NRESOURCES;
}

const char *salus_fhir_resource_type_at(size_t i)
{
	return i < SALUS_FHIR_NRESOURCES ? POOL(salus_fhir_types[salus_fhir_resources[i]].name) : NULL;
}

const struct salus_fhir_type *salus_fhir_type_find(const char *name, size_t n)
{
	if (!name || !n)
		return NULL;
	size_t lo = 0, hi = SALUS_FHIR_NTYPES;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmpn(POOL(salus_fhir_types[mid].name), name, n);
		if (!c)
			return &salus_fhir_types[mid];
		if (c > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t salus_fhir_type_count(void)
{
	return SALUS_FHIR_NTYPES;
}

const struct salus_fhir_type *salus_fhir_type_at(size_t i)
{
	return i < SALUS_FHIR_NTYPES ? &salus_fhir_types[i] : NULL;
}

const char *salus_fhir_type_name(const struct salus_fhir_type *t)
{
	return POOL(t->name);
}

void salus_fhir_type_get(const struct salus_fhir_type *t, struct salus_fhir_type_info *out)
{
	out->name = POOL(t->name);
	out->kind = (enum salus_fhir_kind)t->kind;
	out->abstract = t->flags & SALUS_FHIR_TF_ABSTRACT;
	out->constraint = t->flags & SALUS_FHIR_TF_CONSTRAINT;
	out->domain_resource = t->flags & SALUS_FHIR_TF_DOMAIN;
	out->base = t->base >= 0 ? &salus_fhir_types[t->base] : NULL;
	out->regex = OPT(t->regex);
	out->nelems = t->elem_count;
}

bool salus_fhir_type_is_a(const struct salus_fhir_type *t, const struct salus_fhir_type *ancestor)
{
	for (int guard = 0; t && guard < 16; guard++) {
		if (t == ancestor)
			return true;
		t = t->base >= 0 ? &salus_fhir_types[t->base] : NULL;
	}
	return false;
}

/* ---- elements -------------------------------------------------------------- */

void salus_fhir_elem_get(const struct salus_fhir_elem *e, struct salus_fhir_elem_info *out)
{
	out->path = POOL(e->path);
	out->name = out->path + e->name_at;
	out->choice = e->flags & SALUS_FHIR_EF_CHOICE;
	out->name_len = strlen(out->name) - (out->choice ? 3 : 0);
	out->min = e->min;
	out->max = e->max;
	out->modifier = e->flags & SALUS_FHIR_EF_MODIFIER;
	out->summary = e->flags & SALUS_FHIR_EF_SUMMARY;
	out->ntypes = e->tref_count;
	out->content_ref = e->ref >= 0 ? &salus_fhir_elems[e->ref] : NULL;
	out->strength = (enum salus_fhir_binding)e->strength;
	out->valueset = e->vs >= 0 ? &salus_fhir_vss[e->vs] : NULL;
	out->owner = &salus_fhir_types[e->owner];
}

const char *salus_fhir_elem_type_code(const struct salus_fhir_elem *e, size_t i)
{
	return i < e->tref_count ? POOL(salus_fhir_trefs[e->tref_first + i].code) : NULL;
}

const char *salus_fhir_elem_type_profile(const struct salus_fhir_elem *e, size_t i)
{
	return i < e->tref_count ? OPT(salus_fhir_trefs[e->tref_first + i].profile) : NULL;
}

size_t salus_fhir_elem_target_count(const struct salus_fhir_elem *e, size_t i)
{
	return i < e->tref_count ? salus_fhir_trefs[e->tref_first + i].tgt_count : 0;
}

const char *salus_fhir_elem_target_at(const struct salus_fhir_elem *e, size_t i, size_t j)
{
	if (i >= e->tref_count)
		return NULL;
	const struct salus_fhir_tref *r = &salus_fhir_trefs[e->tref_first + i];
	return j < r->tgt_count ? POOL(salus_fhir_names[r->tgt_first + j]) : NULL;
}

const struct salus_fhir_elem *salus_fhir_elem_first_child(const struct salus_fhir_type *t,
							  const struct salus_fhir_elem *parent)
{
	if (!parent)
		return t && t->elem_count ? &salus_fhir_elems[t->elem_first] : NULL;
	if (parent->ref >= 0)
		parent = &salus_fhir_elems[parent->ref];
	size_t i = elem_idx(parent);
	return parent->end > i + 1 ? &salus_fhir_elems[i + 1] : NULL;
}

const struct salus_fhir_elem *salus_fhir_elem_next_sibling(const struct salus_fhir_elem *e)
{
	const struct salus_fhir_type *t = &salus_fhir_types[e->owner];
	if (e->end >= t->elem_first + t->elem_count)
		return NULL;
	const struct salus_fhir_elem *n = &salus_fhir_elems[e->end];
	/* a sibling has the same parent path */
	if (n->name_at != e->name_at || memcmp(POOL(n->path), POOL(e->path), e->name_at))
		return NULL;
	return n;
}

/* Which roots (types) and elements have a child with min >= 1, worked out
 * once from the tables (no allocation). */
static unsigned char req_type[SALUS_FHIR_NTYPES], req_elem[SALUS_FHIR_NELEMS];
static pthread_once_t req_once = PTHREAD_ONCE_INIT;

static unsigned char any_required(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent)
{
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, parent); e;
	     e = salus_fhir_elem_next_sibling(e))
		if (e->min)
			return 1;
	return 0;
}

static void req_init(void)
{
	for (size_t i = 0; i < SALUS_FHIR_NTYPES; i++)
		req_type[i] = any_required(&salus_fhir_types[i], NULL);
	for (size_t i = 0; i < SALUS_FHIR_NELEMS; i++)
		req_elem[i] = any_required(&salus_fhir_types[salus_fhir_elems[i].owner], &salus_fhir_elems[i]);
}

bool salus_fhir_elem_has_required_child(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent)
{
	pthread_once(&req_once, req_init);
	if (parent)
		return req_elem[elem_idx(parent)];
	return t && req_type[t - salus_fhir_types];
}

/* Does key[0..n) name element e?  Choice elements: name + capitalised type code. */
static bool key_matches(const struct salus_fhir_elem *e, const char *key, size_t n, size_t *ti)
{
	const char *name = POOL(e->path) + e->name_at;
	if (!(e->flags & SALUS_FHIR_EF_CHOICE)) {
		if (cmpn(name, key, n))
			return false;
		*ti = 0;
		return true;
	}
	size_t bl = strlen(name) - 3;
	if (n <= bl || memcmp(name, key, bl))
		return false;
	const char *suffix = key + bl;
	size_t sl = n - bl;
	for (size_t i = 0; i < e->tref_count; i++) {
		const char *code = POOL(salus_fhir_trefs[e->tref_first + i].code);
		if (code[0] >= 'a' && code[0] <= 'z' ? suffix[0] != code[0] - 'a' + 'A' : suffix[0] != code[0])
			continue;
		if (!cmpn(code + 1, suffix + 1, sl - 1)) {
			*ti = i;
			return true;
		}
	}
	return false;
}

/* The first child of (t, parent) that key[0..n) names: a walk over the siblings. */
static const struct salus_fhir_elem *child_scan(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent,
						const char *key, size_t n, size_t *ti)
{
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, parent); e;
	     e = salus_fhir_elem_next_sibling(e))
		if (key_matches(e, key, n, ti))
			return e;
	return NULL;
}

/* ---- child lookup by hash -----------------------------------------------------
 * Validation looks up every JSON key of a resource among its parent's children;
 * the walk compares each sibling's path.  A table built once holds every
 * (parent, JSON key) pair the walk can answer — each child's name, and each
 * choice element's name + capitalised type code — with the answer: the first
 * sibling that matches, as the walk finds it.  Parents: a type's root
 * (its index), or an element (SALUS_FHIR_NTYPES + row, after contentReference). */
#define CH_SLOTS 32768 /* a power of two, over twice the (parent, key) pairs of R4 (~16,000) */
struct ch_slot {
	uint32_t hash; /* 0: empty */
	uint32_t parent;
	uint16_t elem;
	uint16_t ti;
};
static struct ch_slot ch_tab[CH_SLOTS];
static bool ch_ok;
static pthread_once_t ch_once = PTHREAD_ONCE_INIT;

_Static_assert(SALUS_FHIR_NELEMS < 0xFFFF, "element rows fit the child table");

static uint32_t ch_hash(uint32_t parent, const char *key, size_t n)
{
	uint32_t h = 2166136261u ^ parent * 16777619u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)key[i]) * 16777619u;
	return h ? h : 1;
}

static uint32_t ch_parent(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent)
{
	if (!parent)
		return (uint32_t)(t - salus_fhir_types);
	if (parent->ref >= 0)
		parent = &salus_fhir_elems[parent->ref];
	return (uint32_t)(SALUS_FHIR_NTYPES + elem_idx(parent));
}

/* The slot of (parent, key), or NULL: the answer is "no child". */
static const struct ch_slot *ch_find(uint32_t parent, const char *key, size_t n, size_t *ti)
{
	uint32_t h = ch_hash(parent, key, n);
	for (size_t i = h & (CH_SLOTS - 1);; i = (i + 1) & (CH_SLOTS - 1)) {
		const struct ch_slot *s = &ch_tab[i];
		if (!s->hash)
			return NULL;
		if (s->hash == h && s->parent == parent && key_matches(&salus_fhir_elems[s->elem], key, n, ti) &&
		    *ti == s->ti)
			return s;
	}
}

/* Add (parent, key) → (e, ti) unless an earlier sibling answers it; false when full. */
static bool ch_add(uint32_t parent, const char *key, size_t n, const struct salus_fhir_elem *e, size_t ti)
{
	size_t ti2;
	uint32_t h = ch_hash(parent, key, n);
	size_t i = h & (CH_SLOTS - 1), probes = 0;
	for (; ch_tab[i].hash; i = (i + 1) & (CH_SLOTS - 1)) {
		const struct ch_slot *s = &ch_tab[i];
		if (s->hash == h && s->parent == parent && key_matches(&salus_fhir_elems[s->elem], key, n, &ti2))
			return true; /* the walk finds the earlier one */
		if (++probes == CH_SLOTS)
			return false;
	}
	ch_tab[i] = (struct ch_slot){.hash = h, .parent = parent, .elem = (uint16_t)elem_idx(e), .ti = (uint16_t)ti};
	return true;
}

static bool ch_add_children(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent)
{
	uint32_t pk = ch_parent(t, parent);
	char key[256];
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, parent); e;
	     e = salus_fhir_elem_next_sibling(e)) {
		const char *name = POOL(e->path) + e->name_at;
		size_t nl = strlen(name);
		if (!(e->flags & SALUS_FHIR_EF_CHOICE)) {
			if (!ch_add(pk, name, nl, e, 0))
				return false;
			continue;
		}
		size_t bl = nl - 3; /* "value[x]" */
		for (size_t i = 0; i < e->tref_count; i++) {
			const char *code = POOL(salus_fhir_trefs[e->tref_first + i].code);
			size_t cl = strlen(code);
			if (!cl || bl + cl > sizeof key)
				return false;
			memcpy(key, name, bl);
			memcpy(key + bl, code, cl);
			if (key[bl] >= 'a' && key[bl] <= 'z')
				key[bl] = (char)(key[bl] - 'a' + 'A');
			if (!ch_add(pk, key, bl + cl, e, i))
				return false;
		}
	}
	return true;
}

static void ch_init(void)
{
	bool ok = true;
	for (size_t i = 0; i < SALUS_FHIR_NTYPES && ok; i++)
		ok = ch_add_children(&salus_fhir_types[i], NULL);
	for (size_t i = 0; i < SALUS_FHIR_NELEMS && ok; i++) {
		const struct salus_fhir_elem *e = &salus_fhir_elems[i];
		if (e->ref < 0) /* a contentReference's children are its target's, added with it */
			ok = ch_add_children(&salus_fhir_types[e->owner], e);
	}
	ch_ok = ok; /* else every lookup walks (never with the R4 tables: test_defs) */
}

bool salus_fhir_elem_child_indexed(void)
{
	pthread_once(&ch_once, ch_init);
	return ch_ok;
}

const struct salus_fhir_elem *salus_fhir_elem_child(const struct salus_fhir_type *t,
						    const struct salus_fhir_elem *parent,
						    const char *key, size_t n, size_t *type_index)
{
	size_t ti = 0;
	const struct salus_fhir_elem *e;
	if (!key || !n)
		return NULL;
	if (salus_fhir_elem_child_indexed() && (t || parent)) {
		const struct ch_slot *s = ch_find(ch_parent(t, parent), key, n, &ti);
		e = s ? &salus_fhir_elems[s->elem] : NULL;
	} else {
		e = child_scan(t, parent, key, n, &ti);
	}
	if (e && type_index)
		*type_index = ti;
	return e;
}

const struct salus_fhir_elem *salus_fhir_elem_find(const char *path, size_t n)
{
	if (!path)
		return NULL;
	const char *end = path + n, *seg = memchr(path, '.', n);
	if (!seg)
		return NULL;
	const struct salus_fhir_type *t = salus_fhir_type_find(path, (size_t)(seg - path));
	const struct salus_fhir_elem *e = NULL;
	while (t && seg < end) {
		const char *s = seg + 1, *dot = memchr(s, '.', (size_t)(end - s));
		size_t sl = (size_t)((dot ? dot : end) - s);
		const struct salus_fhir_elem *c = NULL;
		for (c = salus_fhir_elem_first_child(t, e); c; c = salus_fhir_elem_next_sibling(c))
			if (!cmpn(POOL(c->path) + c->name_at, s, sl))
				break;
		if (!c && e && e->tref_count == 1) {
			/* step into the element's data type: "Patient.name.given" */
			const char *code = POOL(salus_fhir_trefs[e->tref_first].code);
			t = salus_fhir_type_find(code, strlen(code));
			e = NULL;
			if (!t)
				return NULL;
			continue;
		}
		if (!c)
			return NULL;
		e = c;
		seg = dot ? dot : end;
	}
	return e;
}

/* ---- search parameters ----------------------------------------------------- */

const struct salus_fhir_sp *salus_fhir_sp_find(const char *type, size_t tn, const char *code, size_t cn)
{
	if (!type || !code || !tn || !cn)
		return NULL;
	long r = resource_idx(type, tn);
	if (r < 0)
		return NULL;
	const struct salus_fhir_type *t = &salus_fhir_types[salus_fhir_resources[r]];
	size_t lo = 0, hi = t->sp_count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct salus_fhir_sp *sp = &salus_fhir_sps[t->sp_first + mid];
		int c = cmpn(POOL(sp->code), code, cn);
		if (!c)
			return sp;
		if (c > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t salus_fhir_sp_count(const struct salus_fhir_type *t)
{
	return t ? t->sp_count : 0;
}

const struct salus_fhir_sp *salus_fhir_sp_at(const struct salus_fhir_type *t, size_t i)
{
	return t && i < t->sp_count ? &salus_fhir_sps[t->sp_first + i] : NULL;
}

void salus_fhir_sp_get(const struct salus_fhir_sp *sp, struct salus_fhir_sp_info *out)
{
	out->code = POOL(sp->code);
	out->type = (enum salus_fhir_sp_type)sp->type;
	out->expression = OPT(sp->expr);
	out->url = POOL(sp->url);
	out->ntargets = sp->tgt_count;
	out->ncomponents = sp->comp_count;
}

const char *salus_fhir_sp_target_at(const struct salus_fhir_sp *sp, size_t i)
{
	return i < sp->tgt_count ? POOL(salus_fhir_names[sp->tgt_first + i]) : NULL;
}

int salus_fhir_sp_component(const struct salus_fhir_sp *sp, size_t i, const char **code, const char **expression)
{
	if (i >= sp->comp_count)
		return SALUS_ENOTFOUND;
	const struct salus_fhir_spcomp *c = &salus_fhir_spcomps[sp->comp_first + i];
	*code = POOL(c->code);
	*expression = POOL(c->expr);
	return SALUS_OK;
}

/* ---- Patient compartment --------------------------------------------------- */

size_t salus_fhir_compartment_count(const struct salus_fhir_type *t)
{
	return t ? t->comp_count : 0;
}

const char *salus_fhir_compartment_param_at(const struct salus_fhir_type *t, size_t i)
{
	return t && i < t->comp_count ? POOL(salus_fhir_comps[t->comp_first + i]) : NULL;
}

bool salus_fhir_in_patient_compartment(const struct salus_fhir_type *t)
{
	return t && t->comp_count > 0;
}

/* ---- value sets ------------------------------------------------------------ */

const struct salus_fhir_vs *salus_fhir_vs_find(const char *url, size_t n)
{
	if (!url)
		return NULL;
	const char *bar = memchr(url, '|', n);
	if (bar)
		n = (size_t)(bar - url);
	size_t lo = 0, hi = SALUS_FHIR_NVSS;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmpn(POOL(salus_fhir_vss[mid].url), url, n);
		if (!c)
			return &salus_fhir_vss[mid];
		if (c > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *salus_fhir_vs_url(const struct salus_fhir_vs *vs)
{
	return POOL(vs->url);
}

bool salus_fhir_vs_expanded(const struct salus_fhir_vs *vs)
{
	return vs->flags & SALUS_FHIR_VSF_EXPANDED;
}

size_t salus_fhir_vs_code_count(const struct salus_fhir_vs *vs)
{
	return vs->code_count;
}

int salus_fhir_vs_code_at(const struct salus_fhir_vs *vs, size_t i, const char **system, const char **code)
{
	if (i >= vs->code_count)
		return SALUS_ENOTFOUND;
	const struct salus_fhir_vscode *c = &salus_fhir_vscodes[vs->code_first + i];
	*system = POOL(c->system);
	*code = POOL(c->code);
	return SALUS_OK;
}

enum salus_fhir_vs_result salus_fhir_vs_check(const struct salus_fhir_vs *vs, const char *system, size_t sn,
					      const char *code, size_t cn)
{
	if (!(vs->flags & SALUS_FHIR_VSF_EXPANDED))
		return SALUS_FHIR_VS_UNKNOWN;
	if (!code || !cn)
		return SALUS_FHIR_VS_NOT_IN;
	const struct salus_fhir_vscode *c = &salus_fhir_vscodes[vs->code_first];
	size_t lo = 0, hi = vs->code_count;
	while (lo < hi) { /* first row with code >= the one asked for */
		size_t mid = lo + (hi - lo) / 2;
		if (cmpn(POOL(c[mid].code), code, cn) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < vs->code_count && !cmpn(POOL(c[lo].code), code, cn); lo++)
		if (!system || !cmpn(POOL(c[lo].system), system, sn))
			return SALUS_FHIR_VS_IN;
	return SALUS_FHIR_VS_NOT_IN;
}

/* ---- code-system hierarchies ----------------------------------------------- */

/* The rows of system: [*first, *first + return value). */
static size_t cs_rows(const char *system, size_t sn, size_t *first)
{
	size_t lo = 0, hi = SALUS_FHIR_NCSCONCEPTS;
	while (lo < hi) { /* first row of the system */
		size_t mid = lo + (hi - lo) / 2;
		if (cmpn(POOL(salus_fhir_csconcepts[mid].system), system, sn) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t first_row = lo;
	hi = SALUS_FHIR_NCSCONCEPTS;
	while (lo < hi) { /* one past the system's last row */
		size_t mid = lo + (hi - lo) / 2;
		if (cmpn(POOL(salus_fhir_csconcepts[mid].system), system, sn) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*first = first_row;
	return lo - first_row;
}

size_t salus_fhir_cs_concept_count(const char *system, size_t sn)
{
	size_t first;
	return system ? cs_rows(system, sn, &first) : 0;
}

int salus_fhir_cs_concept_at(const char *system, size_t sn, size_t i, const char **code, const char **parent)
{
	size_t first;
	if (!system || i >= cs_rows(system, sn, &first))
		return SALUS_ENOTFOUND;
	const struct salus_fhir_csconcept *c = &salus_fhir_csconcepts[first + i];
	*code = POOL(c->code);
	*parent = c->parent ? POOL(c->parent) : NULL;
	return SALUS_OK;
}

const char *salus_fhir_cs_parent(const char *system, size_t sn, const char *code, size_t cn)
{
	size_t first, n = system && code ? cs_rows(system, sn, &first) : 0, lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmpn(POOL(salus_fhir_csconcepts[first + mid].code), code, cn);
		if (!c) {
			uint32_t p = salus_fhir_csconcepts[first + mid].parent;
			return p ? POOL(p) : NULL;
		}
		if (c > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}
