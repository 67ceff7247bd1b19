/*
 * search_exec.c — the search interactions: type-level (GET /T, POST
 * /T/_search); system-wide, compartment (Patient/id/T, all types) and
 * Patient/$everything searches share the same machinery.  Runs the parsed query with keyset
 * paging (next/previous links carry a cursor, never an offset), adds
 * _include/_revinclude resources (search.mode "include", :iterate up to a
 * few rounds), applies _summary/_elements, and writes the searchset Bundle.
 * Also the store's indexing hook (salus_store_set_indexer).
 */
#include "fhir/access.h"
#include "fhir/search_int.h"

#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/defs.h"
#include "fhir/json_out.h"
#include "store/splice.h"

#define OUT_MAX SALUS_MAX_BODY
#define MAX_ITERATE 3
#define MAX_INCLUDED 5000

/* ---- the indexing hook ------------------------------------------------ */

static int ix_build(void *ctx, const char *type, json_t *res, const struct salus_ix **out, void **state)
{
	bool owner_only = ctx != NULL;
	struct salus_fhir_index *x = salus_malloc(sizeof *x);
	if (!x)
		return SALUS_ENOMEM;
	salus_fhir_index_init(x);
	int rc = owner_only ? salus_fhir_index_build_owner(x, type, res) : salus_fhir_index_build(x, type, res);
	if (rc) {
		salus_fhir_index_release(x);
		salus_free(x);
		return rc == SALUS_EINVALID ? SALUS_OK : rc;
	}
	*out = &x->ix;
	*state = x;
	return SALUS_OK;
}

static void ix_done(void *ctx, void *state)
{
	(void)ctx;
	salus_fhir_index_release(state);
	salus_free(state);
}

static const struct salus_store_indexer indexer = {ix_build, ix_done, NULL};
static const char owner_ctx; /* ctx of the owner-only hook: non-NULL */
static const struct salus_store_indexer owner_indexer = {ix_build, ix_done, (void *)(uintptr_t)&owner_ctx};

void salus_fhir_search_attach(struct salus_store *st)
{
	if (salus_store_get_indexer(st) != &indexer)
		salus_store_set_indexer(st, &indexer);
}

void salus_fhir_search_attach_owner(struct salus_store *st)
{
	if (salus_store_get_indexer(st) != &owner_indexer)
		salus_store_set_indexer(st, &owner_indexer);
}

/* ---- collected hits ------------------------------------------------------ */

struct hit {
	char type[SALUS_MAX_TYPE + 1];
	char id[SALUS_MAX_ID + 1];
	int64_t rid;
	int64_t updated_ms;
	char *json;
	size_t len;
	char *cursor;
	bool include;
};

struct hits {
	struct hit *v;
	size_t n, cap;
	int limit; /* stop collecting beyond this */
};

static void hits_release(struct hits *h)
{
	for (size_t i = 0; i < h->n; i++) {
		salus_free(h->v[i].json);
		salus_free(h->v[i].cursor);
	}
	salus_free(h->v);
	memset(h, 0, sizeof *h);
}

static bool hits_has(const struct hits *h, const char *type, const char *id)
{
	for (size_t i = 0; i < h->n; i++)
		if (!strcmp(h->v[i].id, id) && !strcmp(h->v[i].type, type))
			return true;
	return false;
}

struct collect {
	struct hits *h;
	bool include;
	const struct hits *dedupe; /* skip hits already here (includes) */
	long total;                /* salus_sq_hit.total of the hits seen (-1: none) */
};

/* snprintf(d, cap, "%s", s) without its cost (twice per hit) */
static void copy_str(char *d, size_t cap, const char *s)
{
	size_t n = strnlen(s, cap - 1);
	memcpy(d, s, n);
	d[n] = 0;
}

static int collect_cb(void *ctx, const struct salus_sq_hit *sh)
{
	struct collect *c = ctx;
	struct hits *h = c->h;
	c->total = sh->total;
	if (c->include && (hits_has(h, sh->r.type, sh->r.id) || (c->dedupe && hits_has(c->dedupe, sh->r.type, sh->r.id))))
		return 0;
	if (h->limit && h->n >= (size_t)h->limit)
		return 0;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 32;
		struct hit *nv = salus_realloc(h->v, cap * sizeof *nv);
		if (!nv)
			return SALUS_ENOMEM;
		h->v = nv;
		h->cap = cap;
	}
	struct hit *x = &h->v[h->n];
	memset(x, 0, sizeof *x);
	copy_str(x->type, sizeof x->type, sh->r.type);
	copy_str(x->id, sizeof x->id, sh->r.id);
	x->rid = sh->rid;
	x->updated_ms = sh->r.updated_ms;
	x->include = c->include;
	if (sh->r.json && sh->take && *sh->take == sh->r.json) {
		x->json = *sh->take; /* the opened body, kept as it is (store.h) */
		*sh->take = NULL;
	} else if (sh->r.json && !(x->json = salus_strndup(sh->r.json, sh->r.len))) {
		return SALUS_ENOMEM;
	}
	x->len = sh->r.len;
	if (sh->cursor && !(x->cursor = salus_strdup(sh->cursor))) {
		salus_free(x->json);
		return SALUS_ENOMEM;
	}
	h->n++;
	return 0;
}

/* ---- _summary and _elements ---------------------------------------------- */

static bool keep_elem(const struct salus_fhir_type *t, const char *key, int summary)
{
	if (!strcmp(key, "resourceType") || !strcmp(key, "id") || !strcmp(key, "meta"))
		return true;
	if (summary == SUM_DATA)
		return strcmp(key, "text") != 0;
	if (summary == SUM_TEXT && !strcmp(key, "text"))
		return true;
	size_t ti;
	const struct salus_fhir_elem *e = salus_fhir_elem_child(t, NULL, key, strlen(key), &ti);
	if (!e)
		return false;
	struct salus_fhir_elem_info info;
	salus_fhir_elem_get(e, &info);
	return summary == SUM_TEXT ? info.min > 0 : info.summary;
}

/* _summary=true below the top level: in the backbone elements of the
 * resource (Observation.component, Patient.contact...) keep only the
 * children marked isSummary; data types are kept whole. */
static void summary_prune(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent, json_t *v)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		summary_prune(t, parent, e);
		return;
	}
	if (!json_is_object(v))
		return;
	const char *k;
	json_t *c, *tmp;
	json_object_foreach_safe(v, tmp, k, c)
	{
		size_t ti;
		const struct salus_fhir_elem *e = salus_fhir_elem_child(t, parent, k, strlen(k), &ti);
		struct salus_fhir_elem_info info;
		if (!e)
			continue;
		salus_fhir_elem_get(e, &info);
		if (!info.summary)
			json_object_del(v, k);
		else if (salus_fhir_elem_first_child(t, e))
			summary_prune(t, e, c);
	}
}

/* Does the first segment of path t (up to '.') name key k?  "value" names
 * valueQuantity too (a choice). */
static bool seg_names(const char *t, size_t sn, const char *k)
{
	size_t kl = strlen(k);
	return kl >= sn && !memcmp(k, t, sn) && (kl == sn || (k[sn] >= 'A' && k[sn] <= 'Z'));
}

/* _elements: keep the keys of o some path names; a nested path (name.family)
 * keeps only the named children of each value; values left empty go. */
static void prune(json_t *o, const char *const *paths, size_t np, bool top)
{
	const char *k;
	json_t *v, *tmp;
	json_object_foreach_safe(o, tmp, k, v)
	{
		const char *sub[64];
		size_t ns = 0;
		bool keep = top && (!strcmp(k, "resourceType") || !strcmp(k, "id") || !strcmp(k, "meta")), whole = keep;
		for (size_t i = 0; i < np && !whole; i++) {
			size_t sn = strcspn(paths[i], ".");
			if (!seg_names(paths[i], sn, k))
				continue;
			keep = true;
			if (!paths[i][sn])
				whole = true;
			else if (ns < sizeof sub / sizeof *sub)
				sub[ns++] = paths[i] + sn + 1;
		}
		if (keep && !whole) {
			if (json_is_object(v)) {
				prune(v, sub, ns, false);
				keep = json_object_size(v) > 0;
			} else if (json_is_array(v)) {
				size_t i;
				json_t *e;
				json_array_foreach(v, i, e)
				if (json_is_object(e))
					prune(e, sub, ns, false);
				for (i = json_array_size(v); i-- > 0;)
					if (json_is_object(json_array_get(v, i)) && !json_object_size(json_array_get(v, i)))
						json_array_remove(v, i);
				keep = json_array_size(v) > 0;
			} else {
				keep = false; /* a primitive has no children */
			}
		}
		if (!keep)
			json_object_del(o, k);
	}
}

/* The subset tree j of the stored text json[0..len) written out: each member the subsetting left
 * as it was is copied from the text (jansson would respell its numbers: 1.50 as 1.5), each it
 * changed (meta and its tag, a member pruned inside) serialised from the tree; orig is the text's
 * own tree.  Members keep the text's order; one j gained (meta) comes after them. */
static int subset_out(json_t *j, json_t *orig, const char *json, size_t len, struct salus_buf *out)
{
	struct salus_json_iter it;
	struct salus_slice key, val;
	size_t nkept = 0;
	int rc = salus_json_iter_init_checked(&it, json, len), more;
	if (!rc)
		rc = salus_buf_addc(out, '{');
	while (!rc && (more = salus_json_iter_next(&it, &key, &val)) == 1) {
		char name[128]; /* element names are short; a longer key falls back to the dump */
		if (key.n >= sizeof name || memchr(key.p, '\\', key.n))
			return SALUS_EINVALID; /* not an element name as written by the store: the caller dumps */
		memcpy(name, key.p, key.n);
		name[key.n] = 0;
		json_t *v = json_object_get(j, name);
		if (!v)
			continue;
		rc = salus_buf_addf(out, "%s\"%s\":", nkept++ ? "," : "", name);
		if (!rc && json_equal(v, json_object_get(orig, name))) {
			rc = salus_buf_add(out, val.p, val.n);
		} else if (!rc) {
			char *d = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
			rc = d ? salus_buf_adds(out, d) : SALUS_ENOMEM;
			salus_free(d);
		}
	}
	if (!rc && more < 0)
		rc = more;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
	{
		if (rc || json_object_get(orig, k))
			continue;
		char *d = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
		rc = !d ? SALUS_ENOMEM : salus_buf_addf(out, "%s\"%s\":", nkept++ ? "," : "", k);
		if (!rc)
			rc = salus_buf_adds(out, d);
		salus_free(d);
	}
	return rc ? rc : salus_buf_addc(out, '}');
}

static int subset(const struct salus_fhir_search *s, const char *type, const char *json, size_t len,
		  struct salus_buf *out)
{
	json_error_t err;
	json_t *j = json_loadb(json, len, 0, &err), *orig = json_loadb(json, len, 0, &err);
	const struct salus_fhir_type *t = salus_fhir_type_find(type, strlen(type));
	int rc = SALUS_OK;
	if (!j || !orig || !t) {
		json_decref(j);
		json_decref(orig);
		return salus_buf_add(out, json, len);
	}
	const char *k;
	json_t *v, *tmp;
	if (s->nelements)
		prune(j, s->elements, s->nelements, true);
	json_object_foreach_safe(j, tmp, k, v)
	{
		if (!s->nelements && !keep_elem(t, k, s->summary)) {
			json_object_del(j, k);
		} else if (!s->nelements && s->summary == SUM_TRUE) {
			const struct salus_fhir_elem *e = salus_fhir_elem_child(t, NULL, k, strlen(k), NULL);
			if (e && salus_fhir_elem_first_child(t, e))
				summary_prune(t, e, v);
		}
	}
	if (s->summary != SUM_DATA || s->nelements) {
		/* meta.tag SUBSETTED (R4 search §3.1.1.5.8) */
		json_t *meta = json_object_get(j, "meta");
		if (!json_is_object(meta)) {
			meta = json_object();
			json_object_set_new(j, "meta", meta);
		}
		json_t *tags = json_object_get(meta, "tag");
		if (!json_is_array(tags)) {
			tags = json_array();
			json_object_set_new(meta, "tag", tags);
		}
		json_array_append_new(tags, json_pack("{s:s,s:s}", "system",
						      "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code",
						      "SUBSETTED"));
	}
	size_t mark = out->n;
	rc = subset_out(j, orig, json, len, out);
	if (rc == SALUS_EINVALID) { /* text the member scanner does not take: the tree as a whole */
		out->n = mark;
		char *d = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
		rc = d ? salus_buf_adds(out, d) : SALUS_ENOMEM;
		salus_free(d);
	}
	json_decref(j);
	json_decref(orig);
	return rc;
}

int salus_fhir_read_subset(const char *type, const struct salus_param *params, size_t nparams, const char *json,
			   size_t len, struct salus_buf *out, const char **why)
{
	struct salus_param pick[8];
	size_t n = 0;
	for (size_t i = 0; i < nparams; i++)
		if (!strcmp(params[i].name, "_summary") || !strcmp(params[i].name, "_elements")) {
			if (n == sizeof pick / sizeof pick[0]) {
				*why = "too many _summary/_elements parameters";
				return SALUS_EINVALID;
			}
			pick[n++] = params[i];
		}
	if (!n)
		return salus_buf_add(out, json, len);
	struct salus_fhir_search *s = NULL;
	int rc = salus_fhir_search_parse(type, pick, n, false, &s, why);
	if (!rc && ((s->summary == SUM_NONE || s->summary == SUM_COUNT) && !s->nelements))
		rc = salus_buf_add(out, json, len); /* false, or count (a search's answer, nothing to subset) */
	else if (!rc)
		rc = subset(s, type, json, len, out);
	salus_fhir_search_free(s);
	return rc;
}

/* ---- links ----------------------------------------------------------------- */

static int add_enc(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	while (*s && !rc) {
		/* a run of characters kept as they are, in one append */
		size_t n = 0;
		for (unsigned char c; (c = (unsigned char)s[n]) != 0; n++)
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
			      c == '.' || c == '_' || c == '~' || c == ':' || c == '|' || c == ',' || c == '$'))
				break;
		if (n) {
			rc = salus_buf_add(b, s, n);
			s += n;
			continue;
		}
		unsigned char c = (unsigned char)*s++;
		const char e[3] = {'%', hex[c >> 4], hex[c & 15]};
		rc = salus_buf_add(b, e, sizeof e);
	}
	return rc;
}

static int add_link(struct salus_buf *b, const char *rel, const char *base, const char *path,
		    const struct salus_param *p, size_t np, const bool *used, const char *cursor, bool prev,
		    bool first)
{
	struct salus_buf u;
	salus_buf_init(&u, SALUS_MAX_URL * 4);
	int rc = salus_buf_adds(&u, base);
	if (!rc)
		rc = salus_buf_adds(&u, path);
	char sep = '?';
	for (size_t i = 0; i < np && !rc; i++) {
		const char *n = p[i].name;
		if (!used[i] || !strcmp(n, "_cursor") || !strcmp(n, "_dir"))
			continue;
		rc = salus_buf_addc(&u, sep);
		sep = '&';
		if (!rc)
			rc = add_enc(&u, n);
		if (!rc)
			rc = salus_buf_addc(&u, '=');
		if (!rc)
			rc = add_enc(&u, p[i].value);
	}
	if (!rc && cursor) {
		rc = salus_buf_addc(&u, sep);
		if (!rc)
			rc = salus_buf_adds(&u, "_cursor=");
		if (!rc)
			rc = add_enc(&u, cursor);
		if (!rc && prev)
			rc = salus_buf_adds(&u, "&_dir=prev");
	}
	if (!rc)
		rc = salus_buf_adds(b, first ? "{\"relation\":\"" : ",{\"relation\":\"");
	if (!rc)
		rc = salus_buf_adds(b, rel);
	if (!rc)
		rc = salus_buf_adds(b, "\",\"url\":");
	if (!rc)
		rc = salus_json_add_str(b, u.p, u.n);
	if (!rc)
		rc = salus_buf_addc(b, '}');
	salus_buf_release(&u);
	return rc;
}

/* ---- form bodies (POST _search) ------------------------------------------- */

static int unhex(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *form_decode(const char *p, size_t n)
{
	char *o = salus_malloc(n + 1), *w = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '+') {
			*w++ = ' ';
		} else if (p[i] == '%' && i + 2 < n && unhex(p[i + 1]) >= 0 && unhex(p[i + 2]) >= 0) {
			char c = (char)(unhex(p[i + 1]) << 4 | unhex(p[i + 2]));
			if (!c) {
				salus_free(o);
				return NULL;
			}
			*w++ = c;
			i += 2;
		} else {
			*w++ = p[i];
		}
	}
	*w = 0;
	return o;
}

struct params {
	struct salus_param *v;
	size_t n;
	char **owned;
	size_t nowned;
};

static void params_release(struct params *ps)
{
	for (size_t i = 0; i < ps->nowned; i++)
		salus_free(ps->owned[i]);
	salus_free(ps->owned);
	salus_free(ps->v);
}

static int params_merge(const struct salus_fhir_req *rq, struct params *ps)
{
	size_t extra = 0;
	bool form = rq->body && rq->body_len;
	for (size_t i = 0; form && i < rq->body_len; i++)
		extra += rq->body[i] == '&';
	size_t cap = rq->nparams + (form ? extra + 1 : 0);
	memset(ps, 0, sizeof *ps);
	if (!(ps->v = salus_calloc(cap ? cap : 1, sizeof *ps->v)) ||
	    !(ps->owned = salus_calloc(2 * (extra + 1), sizeof *ps->owned)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < rq->nparams; i++)
		ps->v[ps->n++] = rq->params[i];
	if (!form)
		return SALUS_OK;
	const char *p = rq->body, *end = rq->body + rq->body_len;
	while (p < end) {
		const char *amp = memchr(p, '&', (size_t)(end - p));
		const char *e = amp ? amp : end;
		const char *eq = memchr(p, '=', (size_t)(e - p));
		if (e > p) {
			char *k = form_decode(p, (size_t)((eq ? eq : e) - p));
			char *v = eq ? form_decode(eq + 1, (size_t)(e - eq - 1)) : salus_strdup("");
			if (k)
				ps->owned[ps->nowned++] = k;
			if (v)
				ps->owned[ps->nowned++] = v;
			if (!k || !v)
				return SALUS_EINVALID;
			ps->v[ps->n++] = (struct salus_param){k, v};
		}
		p = e + 1;
	}
	return SALUS_OK;
}

/* ---- the interaction ------------------------------------------------------ */

static int fail(struct salus_fhir_resp *rs, int rc, const char *why)
{
	rs->status = salus_fhir_outcome(&rs->body, rc, why, NULL);
	return rs->status;
}

static bool lenient(const char *prefer)
{
	return prefer && strstr(prefer, "handling=lenient");
}

/* _include / _revinclude for the hits [from, n) of h: appended as includes. */
static int run_includes(struct salus_store *st, const struct salus_fhir_search *s, struct hits *h,
			const struct salus_fhir_guards *gr)
{
	size_t from = 0;
	for (int round = 0; round <= MAX_ITERATE; round++) {
		size_t to = h->n;
		if (from == to)
			break;
		for (size_t k = 0; k < s->nincl; k++) {
			const struct incl *in = &s->incl[k];
			if (round > 0 && !in->iterate)
				continue;
			/* included resources are read: the guards of the 'r' letter */
			struct salus_sq q = {.count = MAX_INCLUDED, .need_json = true, .guards = gr->v, .nguards = gr->n};
			struct salus_sq_clause cl = {0};
			int64_t *rids = NULL;
			struct salus_sq_val *vals = NULL;
			int rc = SALUS_OK;
			if (!in->rev) {
				if (!(rids = salus_calloc(to - from, sizeof *rids)))
					return SALUS_ENOMEM;
				bool any = !strcmp(in->src, "*"); /* _include=*: every reference of every hit */
				for (size_t i = from; i < to; i++)
					if (any || !strcmp(h->v[i].type, in->src))
						rids[cl.nrids++] = h->v[i].rid;
				cl.kind = SALUS_SQ_INCLUDED;
				cl.params = in->params;
				cl.nparams = in->nparams;
				cl.rids = rids;
				q.type = in->target;
			} else {
				if (!strcmp(in->src, "*")) {
					salus_free(rids);
					continue;
				}
				if (!(vals = salus_calloc(to - from, sizeof *vals)))
					return SALUS_ENOMEM;
				for (size_t i = from; i < to; i++) {
					vals[cl.nvals].op = SALUS_SQ_REF_LOCAL;
					vals[cl.nvals].a = h->v[i].type;
					vals[cl.nvals++].b = h->v[i].id;
				}
				cl.kind = SALUS_SQ_REFERENCE;
				cl.params = in->params;
				cl.nparams = in->nparams;
				cl.vals = vals;
				q.type = in->src;
			}
			if ((in->rev && cl.nvals) || (!in->rev && cl.nrids)) {
				q.clauses = &cl;
				q.nclauses = 1;
				struct collect c = {.h = h, .include = true};
				rc = salus_store_search(st, &q, collect_cb, &c);
			}
			salus_free(rids);
			salus_free(vals);
			if (rc)
				return rc;
		}
		from = to;
	}
	return SALUS_OK;
}

/* Patient/$everything takes _since, _type, _count (and the paging cursor):
 * into search parameters (_since=t: _lastUpdated=get), everything referenced
 * from the page included (_include=*). */
static int everything_params(const struct params *ps, struct params *sp, const char **why)
{
	memset(sp, 0, sizeof *sp);
	if (!(sp->v = salus_calloc(ps->n + 1, sizeof *sp->v)) || !(sp->owned = salus_calloc(ps->n + 1, sizeof *sp->owned)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < ps->n; i++) {
		const char *n = ps->v[i].name;
		sp->v[i] = ps->v[i];
		if (!strcmp(n, "_since")) {
			size_t k = strlen(ps->v[i].value);
			char *v = salus_malloc(k + 3);
			if (!v)
				return SALUS_ENOMEM;
			memcpy(v, "ge", 2);
			memcpy(v + 2, ps->v[i].value, k + 1);
			sp->owned[sp->nowned++] = v;
			sp->v[i] = (struct salus_param){(char *)(uintptr_t) "_lastUpdated", v};
		} else if (strcmp(n, "_type") && strcmp(n, "_count") && strcmp(n, "_cursor") && strcmp(n, "_dir") &&
			   strcmp(n, "_format") && strcmp(n, "_pretty")) {
			*why = "Patient/$everything takes _since, _type and _count";
			return SALUS_EINVALID;
		}
	}
	sp->v[ps->n] = (struct salus_param){(char *)(uintptr_t) "_include", (char *)(uintptr_t) "*"};
	sp->n = ps->n + 1;
	return SALUS_OK;
}

/* Whether the patient of $everything passes its _type and _since filters. */
static bool everything_self(const struct salus_fhir_search *s)
{
	bool keep = !s->types;
	for (size_t i = 0; s->types && i < s->ntypes; i++)
		keep |= !strcmp(s->types[i], "Patient");
	return keep;
}

/* $everything's _type names the types "to include in the return resources" (R4
 * patient-operation-everything): a resource referenced from the page (_include=*) of
 * another type is left out too. */
static void everything_typed_includes(const struct salus_fhir_search *s, struct hits *h)
{
	size_t k = 0;
	for (size_t i = 0; i < h->n; i++) {
		bool keep = !h->v[i].include;
		for (size_t t = 0; !keep && t < s->ntypes; t++)
			keep = !strcmp(s->types[t], h->v[i].type);
		if (keep) {
			h->v[k++] = h->v[i];
		} else {
			salus_free(h->v[i].json);
			salus_free(h->v[i].cursor);
		}
	}
	h->n = k;
}

/* Put the patient of $everything at the front of h when it passes the _type
 * filter and _since (the search's _lastUpdated clauses): *passes.
 * Errors: SALUS_ENOTFOUND (no such patient). */
static int everything_patient(struct salus_store *st, const struct salus_fhir_search *s, const char *id,
			      struct hits *h, bool *passes)
{
	struct salus_sq_val v = {.op = SALUS_SQ_ANY, .a = id};
	struct salus_sq_clause cl = {.kind = SALUS_SQ_ID, .vals = &v, .nvals = 1};
	struct salus_sq q = {.type = "Patient", .clauses = &cl, .nclauses = 1, .count = 1, .need_json = true,
			     .guards = s->q.guards, .nguards = s->q.nguards};
	size_t n0 = h->n;
	struct collect c = {.h = h};
	int lim = h->limit;
	h->limit = 0;
	int rc = salus_store_search(st, &q, collect_cb, &c);
	h->limit = lim;
	if (rc)
		return rc;
	if (h->n == n0)
		return SALUS_ENOTFOUND;
	bool keep = everything_self(s);
	for (size_t i = 0; i < s->q.nclauses && keep; i++)
		if (s->q.clauses[i].kind == SALUS_SQ_LASTUPDATED)
			for (size_t k = 0; k < s->q.clauses[i].nvals; k++)
				keep = keep && h->v[n0].updated_ms >= s->q.clauses[i].vals[k].lo;
	*passes = keep;
	if (!keep) {
		salus_free(h->v[n0].json);
		salus_free(h->v[n0].cursor);
		h->n--;
		return SALUS_OK;
	}
	struct hit x = h->v[n0];
	memmove(&h->v[1], &h->v[0], n0 * sizeof *h->v);
	h->v[0] = x;
	return SALUS_OK;
}

int salus_fhir_search(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct params ps, sp = {0};
	struct salus_fhir_search *s = NULL;
	struct salus_fhir_guards gs = {0}, gr = {0}; /* the access guards of matches ('s') and includes ('r') */
	struct hits h = {0};
	struct salus_buf entries, *b = &rs->body;
	const char *why = NULL;
	char path[SALUS_MAX_TYPE * 2 + SALUS_MAX_ID + 32];
	int rc;

	salus_buf_init(&entries, OUT_MAX);
	if ((rc = params_merge(rq, &ps))) {
		why = "invalid form body";
		goto out_fail;
	}
	const char *type = NULL;
	bool everything = false, compartment = false;
	switch (rq->op) {
	case SALUS_FHIR_SEARCH_TYPE:
		type = rq->type;
		snprintf(path, sizeof path, "/%s", rq->type);
		break;
	case SALUS_FHIR_SEARCH_COMPARTMENT:
		compartment = true;
		type = rq->ctype[0] ? rq->ctype : NULL;
		snprintf(path, sizeof path, "/Patient/%s/%s", rq->id, type ? type : "*");
		break;
	case SALUS_FHIR_EVERYTHING:
		everything = true;
		snprintf(path, sizeof path, "/Patient/%s/$everything", rq->id);
		break;
	default: /* system-wide */
		path[0] = 0;
		break;
	}
	if (everything && (rc = everything_params(&ps, &sp, &why)))
		goto out_fail;
	if ((rc = salus_fhir_search_parse_at(type, rq->base, everything ? sp.v : ps.v, everything ? sp.n : ps.n,
					     lenient(rq->prefer), &s, &why)))
		goto out_fail;
	if ((compartment || everything) && (rc = salus_fhir_search_compartment(s, type, rq->id)))
		goto out_fail;
	if ((rc = salus_fhir_guards_build(rq->policy, SALUS_POLICY_S, &gs)) ||
	    (rc = salus_fhir_guards_build(rq->policy, SALUS_POLICY_R, &gr)))
		goto out_fail;
	struct salus_sq *q = &s->q;
	q->guards = gs.v; /* every level of the query: chains and _has too (store.h) */
	q->nguards = gs.n;
	if (s->summary == SUM_COUNT)
		q->count = 0;
	/* Bundle.total from the same evaluation as the page (a second query only when the page is empty) */
	q->with_total = s->total != TOTAL_NONE;
	/* whether there is a next (or previous) page: on a first page with its total, the
	 * total says it; otherwise one row more than the page is read (and dropped) */
	int want = q->count;
	bool by_total = q->with_total && !q->after && want > 0;
	q->count = by_total ? want : want + 1;
	struct collect c = {.h = &h, .total = -1};
	if (want > 0 && (rc = salus_store_search(st, q, collect_cb, &c)))
		goto out_fail;
	q->count = want;
	bool more = by_total ? c.total > (long)want : h.n > (size_t)want;
	if (more && !by_total) {
		/* the extra row: last in order (forward) or first (a page before a cursor) */
		size_t drop = q->after && q->before ? 0 : h.n - 1;
		salus_free(h.v[drop].json);
		salus_free(h.v[drop].cursor);
		memmove(&h.v[drop], &h.v[drop + 1], (h.n - drop - 1) * sizeof *h.v);
		h.n--;
	}
	size_t nmatch = h.n;
	bool self = false; /* $everything: the patient itself is a match */
	if (everything) {
		if ((rc = everything_patient(st, s, rq->id, &h, &self))) {
			why = rc == SALUS_ENOTFOUND ? "no such Patient" : NULL;
			goto out_fail;
		}
		if (self && (q->after || want == 0)) { /* only on the first page */
			salus_free(h.v[0].json);
			salus_free(h.v[0].cursor);
			memmove(&h.v[0], &h.v[1], (h.n - 1) * sizeof *h.v);
			h.n--;
		}
	}
	long total = -1;
	if (s->total != TOTAL_NONE) {
		if (!q->after && !more && want > 0)
			total = (long)nmatch;
		else if (c.total >= 0)
			total = c.total;
		else if ((rc = salus_store_search_count(st, q, &total)))
			goto out_fail;
		if (self)
			total++;
	}
	nmatch = h.n;
	if (s->nincl && nmatch && (rc = run_includes(st, s, &h, &gr)))
		goto out_fail;
	if (everything && s->types)
		everything_typed_includes(s, &h);

	salus_buf_reset(b);
	rc = salus_buf_adds(b, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\"");
	if (!rc && total >= 0)
		rc = salus_buf_addf(b, ",\"total\":%ld", total);
	if (!rc)
		rc = salus_buf_adds(b, ",\"link\":[");
	if (!rc)
		rc = add_link(b, "self", rq->base, path, ps.v, ps.n, s->used, q->after, q->before, true);
	bool has_next = q->after && q->before ? true : more;
	bool has_prev = q->after && q->before ? more : q->after != NULL;
	if (!rc && has_next && nmatch)
		rc = add_link(b, "next", rq->base, path, ps.v, ps.n, s->used, h.v[nmatch - 1].cursor, false, false);
	if (!rc && has_prev && nmatch)
		rc = add_link(b, "previous", rq->base, path, ps.v, ps.n, s->used, h.v[0].cursor, true, false);
	/* no "entry" at all when there is none: FHIR JSON has no empty arrays */
	if (!rc)
		rc = salus_buf_adds(b, h.n ? "],\"entry\":[" : "]");
	/* per entry: plain appends (a formatted append costs more than the rest of the entry) */
	for (size_t i = 0; i < h.n && !rc; i++) {
		rc = salus_buf_adds(b, i ? ",{\"fullUrl\":\"" : "{\"fullUrl\":\"");
		if (!rc)
			rc = salus_buf_adds(b, rq->base);
		if (!rc)
			rc = salus_buf_addc(b, '/');
		if (!rc)
			rc = salus_buf_adds(b, h.v[i].type);
		if (!rc)
			rc = salus_buf_addc(b, '/');
		if (!rc)
			rc = salus_buf_adds(b, h.v[i].id);
		if (!rc)
			rc = salus_buf_adds(b, "\",\"resource\":");
		if (!rc && (s->summary == SUM_NONE && !s->nelements))
			rc = salus_buf_add(b, h.v[i].json, h.v[i].len);
		else if (!rc)
			rc = subset(s, h.v[i].type, h.v[i].json, h.v[i].len, b);
		if (!rc)
			rc = salus_buf_adds(b, h.v[i].include ? ",\"search\":{\"mode\":\"include\"}}"
							      : ",\"search\":{\"mode\":\"match\"}}");
	}
	if (!rc)
		rc = salus_buf_adds(b, h.n ? "]}" : "}");
	if (rc)
		goto out_fail;
	rs->status = 200;
	goto out;
out_fail:
	fail(rs, rc, why);
out:
	hits_release(&h);
	salus_buf_release(&entries);
	salus_fhir_guards_release(&gs);
	salus_fhir_guards_release(&gr);
	salus_fhir_search_free(s);
	params_release(&ps);
	params_release(&sp);
	return rs->status;
}
