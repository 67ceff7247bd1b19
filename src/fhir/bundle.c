/*
 * bundle.c — batch and transaction processing (see bundle.h).
 *
 * A transaction runs in phases: (1) every entry is parsed, routed with
 * salus_fhir_route, authorised, its conditional parts (ifNoneExist,
 * conditional update/delete criteria) resolved and, for creates, a UUID
 * assigned — so (2) every `reference` can be rewritten before anything is
 * written: full URLs of the bundle's entries and conditional references go
 * through one hash map, in the parsed tree and in the raw text; (3) one
 * salus_store_write with all writes, deletes first, then creates, then
 * updates; (4) reads; (5) the response, in entry order.
 */
#include "fhir/bundle.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/access.h"
#include "fhir/audit_search.h" /* AuditEvent entries: read-only */
#include "fhir/cond.h"
#include "fhir/defs.h"
#include "fhir/json_out.h"
#include "store/splice.h"

#define TARGET_MAX (SALUS_MAX_TYPE + SALUS_MAX_ID + 2) /* "Type/id" */

enum act { A_NONE, A_CREATE, A_UPDATE, A_DELETE, A_EXISTS, A_NOOP_DELETE, A_READ };

struct entry {
	const char *method;
	const char *full_url; /* borrowed from the tree, or NULL */
	json_t *res;          /* borrowed from the tree, or NULL */
	struct salus_slice raw;
	struct salus_buf text; /* raw with references rewritten */
	struct salus_fhir_req rq;
	struct salus_query q;
	enum act act;
	size_t op;           /* index into ops for writes */
	char target[TARGET_MAX];
	struct salus_fhir_resp sub; /* reads and batch entries */
	bool sub_used;
	struct salus_fhir_patched pd; /* a PATCH entry of a transaction: the patched resource (res, raw point into it) */
	struct salus_buf pbody;       /* a PATCH entry of a batch: the JSON Patch decoded from its Binary */
	struct salus_cond_guard guard; /* a conditional create: its criteria, for the store to check again */
};

/* ---- a small open-addressing map: full URL / conditional reference → "Type/id" ---- */

struct slot {
	const char *key; /* borrowed from the request tree, or owned (see owned) */
	size_t kn;
	bool owned;
	char val[TARGET_MAX];
};
struct map {
	struct slot *s;
	size_t cap, n;
};

static uint64_t hash(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
	return h;
}

static struct slot *map_find(const struct map *m, const char *k, size_t kn)
{
	if (!m->cap)
		return NULL;
	for (size_t i = hash(k, kn) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct slot *s = &m->s[i];
		if (!s->key)
			return NULL;
		if (s->kn == kn && !memcmp(s->key, k, kn))
			return s;
	}
}

static int map_put(struct map *m, const char *k, size_t kn, const char *val, bool copy)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 64;
		struct slot *ns = salus_calloc(ncap, sizeof *ns);
		if (!ns)
			return SALUS_ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->s[i].key)
				continue;
			size_t j = hash(m->s[i].key, m->s[i].kn) & (ncap - 1);
			while (ns[j].key)
				j = (j + 1) & (ncap - 1);
			ns[j] = m->s[i];
		}
		salus_free(m->s);
		m->s = ns;
		m->cap = ncap;
	}
	size_t i = hash(k, kn) & (m->cap - 1);
	while (m->s[i].key) {
		if (m->s[i].kn == kn && !memcmp(m->s[i].key, k, kn))
			return SALUS_EEXISTS;
		i = (i + 1) & (m->cap - 1);
	}
	if (copy && !(k = salus_strndup(k, kn)))
		return SALUS_ENOMEM;
	m->s[i].key = k;
	m->s[i].kn = kn;
	m->s[i].owned = copy;
	snprintf(m->s[i].val, sizeof m->s[i].val, "%s", val);
	m->n++;
	return 0;
}

/* ---- helpers ---------------------------------------------------------- */

struct ctx {
	struct salus_store *st;
	const struct salus_fhir_req *rq;
	struct salus_fhir_resp *rs;
	struct entry *e;
	size_t n;
	struct map map;
	bool transaction;
	size_t bad;          /* entry that failed the transaction */
	char why[256];
};

static int tx_fail(struct ctx *c, size_t i, int rc, const char *what)
{
	snprintf(c->why, sizeof c->why, "transaction failed at entry %zu: %s", i, what ? what : salus_err_msg(rc));
	c->bad = i;
	c->rs->status = salus_fhir_outcome(&c->rs->body, rc, c->why, NULL);
	return rc;
}

/* Entry i failed with an OperationOutcome already in c->rs (the validator's,
 * or that of the PATCH checks): keep all its issues, each expression moved
 * under Bundle.entry[i].resource ("Patient.name" becomes
 * "Bundle.entry[3].resource.name"); an issue without one gets Bundle.entry[i]. */
static int tx_fail_outcome(struct ctx *c, size_t i, int rc)
{
	struct salus_fhir_resp *rs = c->rs;
	const char *type = c->e[i].rq.type;
	size_t tl = strlen(type), k, m;
	char pre[64];
	json_t *oo = json_loadb(rs->body.p, rs->body.n, 0, NULL), *is, *x;
	json_t *issues = json_object_get(oo, "issue");
	struct salus_buf b;
	int err = 0;
	if (!json_is_array(issues) || !json_array_size(issues)) {
		json_decref(oo);
		return tx_fail(c, i, rc, "entry.resource is not valid for its request");
	}
	salus_buf_init(&b, SALUS_MAX_BODY);
	json_array_foreach(issues, k, is) {
		json_t *ex = json_object_get(is, "expression");
		if (!json_is_array(ex) || !json_array_size(ex)) {
			snprintf(pre, sizeof pre, "Bundle.entry[%zu]", i);
			err |= json_object_set_new(is, "expression", json_pack("[s]", pre));
			continue;
		}
		json_array_foreach(ex, m, x) {
			const char *e = json_string_value(x);
			if (!e)
				continue;
			if (!strncmp(e, type, tl) && (e[tl] == '.' || e[tl] == 0 || e[tl] == '['))
				e += tl; /* the resource's own type: Bundle.entry[i].resource stands for it */
			salus_buf_reset(&b);
			err |= salus_buf_addf(&b, "Bundle.entry[%zu].resource%s%s", i, *e && *e != '.' && *e != '[' ? "." : "", e);
			err |= json_array_set_new(ex, m, json_stringn(b.p, b.n));
		}
	}
	char *t = err ? NULL : json_dumps(oo, JSON_COMPACT);
	json_decref(oo);
	salus_buf_release(&b);
	c->bad = i;
	salus_buf_reset(&rs->body);
	if (!t || salus_buf_adds(&rs->body, t)) {
		salus_free(t);
		return tx_fail(c, i, rc, "entry.resource is not valid for its request");
	}
	salus_free(t);
	rs->status = salus_err_http(rc);
	return rc;
}

/* Standard base64 (RFC 4648 §4, padded), as FHIR base64Binary. */
static int b64_decode(const char *s, size_t n, struct salus_buf *out)
{
	unsigned acc = 0;
	int bits = 0;
	size_t pad = 0;
	if (n % 4)
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		int v = ch >= 'A' && ch <= 'Z' ? ch - 'A' : ch >= 'a' && ch <= 'z' ? ch - 'a' + 26 : ch >= '0' && ch <= '9' ? ch - '0' + 52
			: ch == '+' ? 62 : ch == '/' ? 63 : -1;
		if (ch == '=' && i + 2 >= n) {
			pad++;
			continue;
		}
		if (v < 0 || pad)
			return SALUS_EINVALID;
		acc = (acc << 6 | (unsigned)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			int rc = salus_buf_addc(out, (char)(acc >> bits & 0xff));
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* A PATCH entry carries its JSON Patch as a Binary resource (FHIR R4
 * http.html#patch: contentType application/json-patch+json, data base64),
 * or a FHIRPath Patch as a Parameters resource: put the patch document into
 * out, and *fhirpath says which it is.  Errors: SALUS_EINVALID,
 * SALUS_EMEDIATYPE, SALUS_ENOMEM, with *why. */
static int binary_patch(const struct entry *e, struct salus_buf *out, bool *fhirpath, const char **why)
{
	const char *rt = json_string_value(json_object_get(e->res, "resourceType"));
	const char *ct = json_string_value(json_object_get(e->res, "contentType"));
	json_t *data = json_object_get(e->res, "data");
	*fhirpath = rt && !strcmp(rt, "Parameters");
	if (*fhirpath) {
		char *t = json_dumps(e->res, JSON_COMPACT);
		int rc = t ? salus_buf_adds(out, t) : SALUS_ENOMEM;
		salus_free(t);
		return rc;
	}
	if (!rt || strcmp(rt, "Binary")) {
		*why = "a PATCH entry needs a Binary resource holding a JSON Patch, or a Parameters resource (FHIRPath Patch)";
		return SALUS_EINVALID;
	}
	if (!ct || strncmp(ct, "application/json-patch+json", 27) || (ct[27] && ct[27] != ';')) {
		*why = "a PATCH entry's Binary needs contentType application/json-patch+json";
		return SALUS_EMEDIATYPE;
	}
	if (!json_is_string(data) || b64_decode(json_string_value(data), json_string_length(data), out)) {
		*why = "a PATCH entry's Binary.data must be base64";
		return SALUS_EINVALID;
	}
	return 0;
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "200 OK";
	case 201: return "201 Created";
	case 204: return "204 No Content";
	case 304: return "304 Not Modified";
	case 400: return "400 Bad Request";
	case 401: return "401 Unauthorized";
	case 403: return "403 Forbidden";
	case 404: return "404 Not Found";
	case 405: return "405 Method Not Allowed";
	case 409: return "409 Conflict";
	case 410: return "410 Gone";
	case 412: return "412 Precondition Failed";
	case 413: return "413 Payload Too Large";
	case 415: return "415 Unsupported Media Type";
	case 422: return "422 Unprocessable Entity";
	case 503: return "503 Service Unavailable";
	default: return status >= 500 ? "500 Internal Server Error" : "400 Bad Request";
	}
}

static bool is_urn(const char *s)
{
	return s && (!strncmp(s, "urn:uuid:", 9) || !strncmp(s, "urn:oid:", 8));
}

/* Route entry i's request (method + url) into e->rq; 0 or an error with *why. */
static int route_entry(struct ctx *c, struct entry *e, json_t *req, const char **why)
{
	const char *url = json_string_value(json_object_get(req, "url"));
	e->method = json_string_value(json_object_get(req, "method"));
	if (!e->method || !url || !*url) {
		*why = "entry.request needs method and url";
		return SALUS_EINVALID;
	}
	size_t bl = strlen(c->rq->base);
	if (!strncmp(url, c->rq->base, bl) && url[bl] == '/')
		url += bl + 1;
	const char *qm = strchr(url, '?');
	size_t pn = qm ? (size_t)(qm - url) : strlen(url);
	char path[SALUS_MAX_URL];
	if (pn + 2 > sizeof path) {
		*why = "entry.request.url is too long";
		return SALUS_EINVALID;
	}
	path[0] = '/';
	memcpy(path + 1, url, pn);
	path[pn + 1] = 0;
	memset(&e->rq, 0, sizeof e->rq);
	int rc = salus_fhir_route(e->method, path, &e->rq, why);
	if (rc)
		return rc;
	/* AuditEvent is the audit log, read-only through the API (fhir/audit_search.h) */
	if (!strcmp(e->rq.type, "AuditEvent") && !salus_fhir_audit_event_op_ok(e->rq.op, why))
		return SALUS_EMETHOD;
	if (qm && (rc = salus_query_parse(&e->q, qm + 1, strlen(qm + 1)))) {
		*why = "malformed query in entry.request.url";
		return rc;
	}
	e->rq.base = c->rq->base;
	e->rq.policy = c->rq->policy; /* every entry under the caller's access decision */
	e->rq.params = e->q.p;
	e->rq.nparams = e->q.n;
	e->rq.prefer = c->rq->prefer;
	e->rq.if_match = json_string_value(json_object_get(req, "ifMatch"));
	e->rq.if_none_exist = json_string_value(json_object_get(req, "ifNoneExist"));
	e->rq.if_none_match = json_string_value(json_object_get(req, "ifNoneMatch"));
	e->rq.if_modified_since = json_string_value(json_object_get(req, "ifModifiedSince"));
	e->rq.content_type = "application/fhir+json";
	e->rq.body = e->raw.p;
	e->rq.body_len = e->raw.n;
	if (e->rq.op == SALUS_FHIR_BUNDLE) {
		*why = "a Bundle entry cannot be a batch or transaction";
		return SALUS_EINVALID;
	}
	if (c->rq->allow && e->rq.op != SALUS_FHIR_CAPABILITIES &&
	    !c->rq->allow(c->rq->allow_ctx, e->rq.type[0] ? e->rq.type : "*", salus_fhir_op_access(e->rq.op))) {
		*why = "the token's scopes do not allow this entry";
		return SALUS_EFORBIDDEN;
	}
	return 0;
}

static int parse_etag(const char *h, long *out)
{
	size_t n = strlen(h);
	const char *p = h;
	if (n >= 2 && p[0] == 'W' && p[1] == '/') {
		p += 2;
		n -= 2;
	}
	if (n < 3 || p[0] != '"' || p[n - 1] != '"')
		return SALUS_EINVALID;
	return salus_parse_long((struct salus_slice){p + 1, n - 2}, 1, 1L << 40, out);
}

/* Criteria (a query string or e's parameters) → 0/1/2 matches. */
static int match(struct ctx *c, const char *type, const struct salus_param *p, size_t np, char id[SALUS_MAX_ID + 1],
		 int *count, const char **why)
{
	char ids[1][SALUS_MAX_ID + 1];
	if (salus_fhir_access_restricted(c->rq->policy)) {
		/* matching runs over every patient's identifiers: not offered to a restricted token */
		*why = "conditional references and ifNoneExist are not available to patient-context or restricted tokens";
		return SALUS_EFORBIDDEN;
	}
	int rc = salus_fhir_match(c->st, type, p, np, ids, 1, count, why);
	if (!rc && *count == 1)
		memcpy(id, ids[0], SALUS_MAX_ID + 1);
	return rc;
}

static int match_query(struct ctx *c, const char *type, const char *query, char id[SALUS_MAX_ID + 1], int *count,
		       const char **why)
{
	struct salus_query q;
	int rc = salus_query_parse(&q, query, strlen(query));
	if (rc)
		*why = "malformed conditional criteria";
	else
		rc = match(c, type, q.p, q.n, id, count, why);
	salus_query_release(&q);
	return rc;
}

/* ---- phase 1: plan each entry of a transaction ---- */

/* A PATCH entry: decode and apply its patch to the current version now, so
 * the result is checked, its references rewritten and it is written as an
 * update (if_match = the version read) with the others. */
static int plan_patch(struct ctx *c, size_t i, long if_match)
{
	struct entry *e = &c->e[i];
	struct salus_fhir_req *r = &e->rq;
	const char *why = NULL;
	char id[SALUS_MAX_ID + 1];
	struct salus_buf body;
	json_t *patch;
	int rc, count = 0;

	bool fhirpath;
	salus_buf_init(&body, SALUS_MAX_BODY);
	if ((rc = binary_patch(e, &body, &fhirpath, &why))) {
		salus_buf_release(&body);
		return tx_fail(c, i, rc, why);
	}
	patch = json_loadb(body.p ? body.p : "", body.n, JSON_REJECT_DUPLICATES, NULL);
	salus_buf_release(&body);
	if (!patch || (!fhirpath && !json_is_array(patch))) {
		json_decref(patch);
		return tx_fail(c, i, SALUS_EINVALID, "a PATCH entry's Binary.data is not a JSON Patch document");
	}
	if (r->op == SALUS_FHIR_COND_PATCH) {
		rc = match(c, r->type, r->params, r->nparams, id, &count, &why);
		if (!rc && count != 1) {
			rc = count ? SALUS_EPRECONDITION : SALUS_ENOTFOUND;
			why = count ? "conditional patch criteria match more than one resource"
				    : "conditional patch criteria match no resource";
		}
		if (rc) {
			json_decref(patch);
			return tx_fail(c, i, rc, why);
		}
		snprintf(r->id, sizeof r->id, "%s", id);
	}
	rc = salus_fhir_patch_prepare(c->st, r, r->id, if_match, patch, c->rs, &e->pd);
	json_decref(patch);
	if (rc)
		return tx_fail_outcome(c, i, rc);
	if (e->pd.unchanged) {
		e->act = A_EXISTS; /* nothing to write: answered like a read */
		return 0;
	}
	e->act = A_UPDATE;
	e->res = e->pd.doc;
	e->raw = e->pd.text_ok ? (struct salus_slice){e->pd.text.p, e->pd.text.n} : (struct salus_slice){NULL, 0};
	return 0;
}

static int plan_entry(struct ctx *c, size_t i)
{
	struct entry *e = &c->e[i];
	struct salus_fhir_req *r = &e->rq;
	const char *why = NULL;
	char id[SALUS_MAX_ID + 1];
	int count = 0, rc;
	long im = 0;

	if (r->if_match && parse_etag(r->if_match, &im))
		return tx_fail(c, i, SALUS_EINVALID, "ifMatch must be a version ETag such as W/\"3\"");
	switch (r->op) {
	case SALUS_FHIR_CREATE:
	case SALUS_FHIR_UPDATE:
	case SALUS_FHIR_COND_UPDATE:
		if (!e->res)
			return tx_fail(c, i, SALUS_EINVALID, "entry.resource is required for POST and PUT");
		if ((rc = salus_fhir_check_resource(r, c->rs, e->res)))
			return tx_fail_outcome(c, i, rc); /* every issue, under Bundle.entry[i].resource */
		break;
	default:
		break;
	}
	switch (r->op) {
	case SALUS_FHIR_CREATE:
		if (r->if_none_exist) {
			if ((rc = match_query(c, r->type, r->if_none_exist, id, &count, &why)))
				return tx_fail(c, i, rc, why);
			if (count > 1)
				return tx_fail(c, i, SALUS_EPRECONDITION, "ifNoneExist matches more than one resource");
			if (count == 1) {
				e->act = A_EXISTS;
				snprintf(r->id, sizeof r->id, "%s", id);
				break;
			}
		}
		e->act = A_CREATE;
		salus_store_id_new(r->id); /* time-ordered: see store.h */
		json_object_del(e->res, "id");
		if (r->if_none_exist) {
			/* checked again by the store under its writer (concurrent creates) */
			struct salus_query q;
			rc = salus_query_parse(&q, r->if_none_exist, strlen(r->if_none_exist));
			if (!rc)
				rc = salus_cond_guard_init(&e->guard, q.p, q.n);
			salus_query_release(&q);
			if (rc)
				return tx_fail(c, i, rc, NULL);
		}
		break;
	case SALUS_FHIR_UPDATE: {
		json_t *bid = json_object_get(e->res, "id");
		if (!bid || strcmp(json_string_value(bid), r->id))
			return tx_fail(c, i, SALUS_EINVALID, "entry.resource.id must match the id in request.url");
		e->act = A_UPDATE;
		break;
	}
	case SALUS_FHIR_COND_UPDATE: {
		json_t *bid = json_object_get(e->res, "id");
		if ((rc = match(c, r->type, r->params, r->nparams, id, &count, &why)))
			return tx_fail(c, i, rc, why);
		if (count > 1)
			return tx_fail(c, i, SALUS_EPRECONDITION, "conditional update criteria match more than one resource");
		if (count == 1 && bid && strcmp(json_string_value(bid), id))
			return tx_fail(c, i, SALUS_EINVALID, "entry.resource.id differs from the matched resource");
		if (count == 1)
			snprintf(r->id, sizeof r->id, "%s", id);
		else if (bid)
			snprintf(r->id, sizeof r->id, "%s", json_string_value(bid));
		else
			salus_store_id_new(r->id);
		e->act = A_UPDATE;
		break;
	}
	case SALUS_FHIR_DELETE:
		e->act = A_DELETE;
		break;
	case SALUS_FHIR_COND_DELETE:
		if ((rc = match(c, r->type, r->params, r->nparams, id, &count, &why)))
			return tx_fail(c, i, rc, why);
		if (count > 1)
			return tx_fail(c, i, SALUS_EPRECONDITION, "conditional delete criteria match more than one resource");
		if (count == 0) {
			e->act = A_NOOP_DELETE;
			break;
		}
		snprintf(r->id, sizeof r->id, "%s", id);
		e->act = A_DELETE;
		break;
	case SALUS_FHIR_PATCH:
	case SALUS_FHIR_COND_PATCH:
		if ((rc = plan_patch(c, i, im)))
			return rc;
		if (e->act == A_UPDATE)
			im = e->pd.cur.version; /* the version patched: a concurrent write is a 412, never lost */
		break;
	default:
		e->act = A_READ;
		break;
	}
	r->if_match = NULL;
	e->rq.vid = im; /* reused below as the ifMatch version for writes */
	if (e->act == A_CREATE || e->act == A_UPDATE || e->act == A_EXISTS) {
		snprintf(e->target, sizeof e->target, "%s/%s", r->type, r->id);
		if (is_urn(e->full_url) && map_put(&c->map, e->full_url, strlen(e->full_url), e->target, false) == SALUS_EEXISTS)
			return tx_fail(c, i, SALUS_EINVALID, "two entries have the same fullUrl");
	}
	return 0;
}

/* ---- phase 2: references ---- */

/* In-bundle matches of a conditional reference's identifier criteria (creates/updates of that type). */
static int in_bundle(struct ctx *c, const char *type, const struct salus_query *q, const char **target)
{
	int found = 0;
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = &c->e[i];
		if ((e->act != A_CREATE && e->act != A_UPDATE) || strcmp(e->rq.type, type))
			continue;
		bool all = true;
		for (size_t k = 0; k < q->n && all; k++) {
			const char *v = q->p[k].value;
			if (!strcmp(q->p[k].name, "_id")) {
				all = !strcmp(v, e->rq.id);
				continue;
			}
			if (strcmp(q->p[k].name, "identifier")) {
				all = false;
				continue;
			}
			const char *bar = strchr(v, '|');
			json_t *ids = json_object_get(e->res, "identifier"), *x;
			size_t j;
			bool hit = false;
			json_array_foreach(ids, j, x) {
				const char *sys = json_string_value(json_object_get(x, "system"));
				const char *val = json_string_value(json_object_get(x, "value"));
				if (!val)
					continue;
				if (bar) {
					size_t sn = (size_t)(bar - v);
					const char *s2 = sys ? sys : "";
					if (strlen(s2) == sn && !memcmp(s2, v, sn) && !strcmp(val, bar + 1))
						hit = true;
				} else if (!strcmp(val, v)) {
					hit = true;
				}
			}
			all = hit;
		}
		if (all) {
			found++;
			*target = e->target;
		}
	}
	return found;
}

static int resolve_conditional(struct ctx *c, size_t i, const char *ref)
{
	const char *qm = strchr(ref, '?'), *why = NULL, *bt = NULL;
	char type[SALUS_MAX_TYPE + 1], id[SALUS_MAX_ID + 1], target[TARGET_MAX];
	size_t tn = (size_t)(qm - ref);
	int count = 0, rc;
	struct salus_query q;
	if (tn == 0 || tn > SALUS_MAX_TYPE || !salus_fhir_is_resource_type(ref, tn))
		return tx_fail(c, i, SALUS_EINVALID, "conditional reference with an unknown resource type");
	memcpy(type, ref, tn);
	type[tn] = 0;
	if ((rc = salus_query_parse(&q, qm + 1, strlen(qm + 1)))) {
		salus_query_release(&q);
		return tx_fail(c, i, rc, "malformed conditional reference");
	}
	int nb = in_bundle(c, type, &q, &bt);
	rc = match(c, type, q.p, q.n, id, &count, &why);
	salus_query_release(&q);
	if (rc)
		return tx_fail(c, i, rc, why);
	if (count == 1 && nb == 1) {
		snprintf(target, sizeof target, "%s/%s", type, id);
		if (strcmp(target, bt))
			count = 2;
		else
			nb = 0;
	}
	if (count + nb != 1)
		return tx_fail(c, i, SALUS_EPRECONDITION,
			       count + nb ? "conditional reference matches more than one resource"
					  : "conditional reference matches no resource");
	if (nb)
		snprintf(target, sizeof target, "%s", bt);
	else
		snprintf(target, sizeof target, "%s/%s", type, id);
	/* the reference string is replaced in the tree right after: the map keeps a copy */
	return map_put(&c->map, ref, strlen(ref), target, true) == SALUS_ENOMEM ? tx_fail(c, i, SALUS_ENOMEM, NULL) : 0;
}

static bool is_conditional_ref(const char *s)
{
	const char *qm = strchr(s, '?');
	/* "Type?criteria": no scheme or path before the '?' (the criteria may hold
	 * ':' and '/', as in identifier=urn:oid:1.2|x) */
	return qm && qm != s && !memchr(s, ':', (size_t)(qm - s)) && !memchr(s, '/', (size_t)(qm - s)) && s[0] != '#';
}

/* Rewrite every `reference` string of the tree; resolve conditional ones. */
static int rewrite_tree(struct ctx *c, size_t i, json_t *v, int depth)
{
	int rc;
	if (depth > SALUS_MAX_JSON_DEPTH + 1)
		return 0;
	if (json_is_array(v)) {
		size_t k;
		json_t *x;
		json_array_foreach(v, k, x)
			if ((rc = rewrite_tree(c, i, x, depth + 1)))
				return rc;
		return 0;
	}
	if (!json_is_object(v))
		return 0;
	const char *key;
	json_t *x;
	json_object_foreach(v, key, x) {
		if (json_is_string(x) && !strcmp(key, "reference")) {
			const char *s = json_string_value(x);
			size_t sn = json_string_length(x);
			struct slot *hit = map_find(&c->map, s, sn);
			if (!hit && is_conditional_ref(s)) {
				if ((rc = resolve_conditional(c, i, s)))
					return rc;
				hit = map_find(&c->map, s, sn);
			} else if (!hit && is_urn(s)) {
				return tx_fail(c, i, SALUS_EINVALID, "a urn: reference names no entry of the Bundle");
			}
			if (hit && json_object_set_new(v, key, json_string(hit->val)))
				return tx_fail(c, i, SALUS_ENOMEM, NULL);
		} else if ((rc = rewrite_tree(c, i, x, depth + 1))) {
			return rc;
		}
	}
	return 0;
}

static const char *rewrite_raw(void *ctx, struct salus_slice key, struct salus_slice str)
{
	struct ctx *c = ctx;
	if (!salus_slice_eq(key, "reference"))
		return NULL;
	struct slot *s = map_find(&c->map, str.p, str.n);
	return s ? s->val : NULL;
}

/* ---- the response ---- */

/* Three strings appended. */
static int adds3(struct salus_buf *b, const char *x, const char *y, const char *z)
{
	int rc;
	if ((rc = salus_buf_adds(b, x)) || (rc = salus_buf_adds(b, y)))
		return rc;
	return salus_buf_adds(b, z);
}

/* A version number (>= 0) in decimal, as "%ld" writes it. */
static void fmt_version(char out[24], long v)
{
	char t[24];
	size_t n = 0, k = 0;
	unsigned long u = v < 0 ? 0 : (unsigned long)v;
	do
		t[n++] = (char)('0' + u % 10);
	while ((u /= 10));
	while (n)
		out[k++] = t[--n];
	out[k] = 0;
}

static int add_entry_response(struct ctx *c, struct salus_buf *b, size_t i, const struct salus_write *w)
{
	struct entry *e = &c->e[i];
	int rc = salus_buf_adds(b, i ? ",{" : "{");
	bool rep = c->rq->prefer && strstr(c->rq->prefer, "return=representation");
	if (rc)
		return rc;
	if (w && w->json && e->act != A_DELETE) {
		if ((rc = adds3(b, "\"fullUrl\":\"", c->rq->base, "/")) || (rc = adds3(b, e->target, "\",", "")))
			return rc;
		if (rep && ((rc = salus_buf_adds(b, "\"resource\":")) || (rc = salus_buf_add(b, w->json, w->len)) ||
			    (rc = salus_buf_addc(b, ','))))
			return rc;
	}
	if (w) {
		/* one entry per written resource: formatted without printf */
		char when[SALUS_INSTANT_LEN], ver[24];
		int status = e->act == A_DELETE ? 204 : w->created ? 201 : 200;
		fmt_version(ver, w->version);
		rc = adds3(b, "\"response\":{\"status\":\"", reason(status), "\"");
		if (!rc && e->act != A_DELETE && !(rc = adds3(b, ",\"location\":\"", e->rq.type, "/")) &&
		    !(rc = adds3(b, w->id_out, "/_history/", ver)))
			rc = salus_buf_addc(b, '"');
		if (!rc && w->version) {
			salus_instant_format(w->updated_ms, when);
			if (!(rc = adds3(b, ",\"etag\":\"W/\\\"", ver, "\\\"\",\"lastModified\":\"")))
				rc = adds3(b, when, "\"", "");
		}
		return rc ? rc : salus_buf_adds(b, "}}");
	}
	if (e->act == A_NOOP_DELETE)
		return salus_buf_adds(b, "\"response\":{\"status\":\"204 No Content\"}}");
	/* a read, an ifNoneExist match or a batch entry: its sub-response */
	struct salus_fhir_resp *s = &e->sub;
	bool ok = s->status < 400;
	if (ok && s->body.n && (rep || e->act == A_READ || !c->transaction) && s->body.p[0] == '{' &&
	    !strstr(s->body.p, "\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"information\"")) {
		if ((rc = salus_buf_adds(b, "\"resource\":")) || (rc = salus_buf_add(b, s->body.p, s->body.n)) ||
		    (rc = salus_buf_addc(b, ',')))
			return rc;
	}
	rc = salus_buf_addf(b, "\"response\":{\"status\":\"%s\"", reason(s->status));
	if (!rc && s->location[0]) {
		const char *loc = s->location;
		size_t bl = strlen(c->rq->base);
		if (!strncmp(loc, c->rq->base, bl) && loc[bl] == '/')
			loc += bl + 1;
		rc = salus_buf_adds(b, ",\"location\":");
		if (!rc)
			rc = salus_json_add_cstr(b, loc);
	}
	if (!rc && s->etag[0]) {
		rc = salus_buf_adds(b, ",\"etag\":");
		if (!rc)
			rc = salus_json_add_cstr(b, s->etag);
	}
	if (!rc && !ok)
		rc = salus_buf_addf(b, ",\"outcome\":%s", s->body.n ? s->body.p : "{}");
	return rc ? rc : salus_buf_adds(b, "}}");
}

/* ---- transaction ---- */

static int run_transaction(struct ctx *c)
{
	struct salus_write *ops = NULL;
	size_t nops = 0, *back = NULL;
	int rc = 0;

	for (size_t i = 0; i < c->n; i++)
		if ((rc = plan_entry(c, i)))
			return rc;
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = &c->e[i];
		if (e->act != A_CREATE && e->act != A_UPDATE)
			continue;
		if ((rc = rewrite_tree(c, i, e->res, 0)))
			return rc;
	}
	for (size_t i = 0; i < c->n && c->map.n; i++) {
		struct entry *e = &c->e[i];
		if (e->act != A_CREATE && e->act != A_UPDATE)
			continue;
		salus_buf_init(&e->text, SALUS_MAX_BODY);
		/* a slice of the body the strict parser accepted */
		if (salus_json_copy_checked(&e->text, e->raw.p, e->raw.n, rewrite_raw, c))
			salus_buf_release(&e->text); /* fall back to the tree (store.h) */
	}
	ops = salus_calloc(c->n ? c->n : 1, sizeof *ops);
	back = salus_calloc(c->n ? c->n : 1, sizeof *back);
	if (!ops || !back) {
		rc = tx_fail(c, 0, SALUS_ENOMEM, NULL);
		goto out_ops;
	}
	static const enum act order[] = {A_DELETE, A_CREATE, A_UPDATE};
	for (size_t k = 0; k < 3; k++)
		for (size_t i = 0; i < c->n; i++) {
			struct entry *e = &c->e[i];
			if (e->act != order[k])
				continue;
			struct salus_write *w = &ops[nops];
			w->kind = e->act == A_DELETE ? SALUS_WRITE_DELETE : e->act == A_CREATE ? SALUS_WRITE_CREATE
												  : SALUS_WRITE_UPDATE;
			w->type = e->rq.type;
			w->id = e->rq.id;
			w->if_match = e->rq.vid;
			w->none_match = e->guard.n ? e->guard.c : NULL;
			w->n_none_match = e->guard.n;
			if (e->act != A_DELETE) {
				w->resource = e->res;
				if (e->text.n) {
					w->raw = e->text.p;
					w->raw_len = e->text.n;
					w->raw_compact = true; /* copied from the strictly parsed body */
				} else if (!c->map.n) {
					w->raw = e->raw.p;
					w->raw_len = e->raw.n;
				}
			}
			e->op = nops;
			back[nops++] = i;
		}
	size_t refused = 0;
	const char *awhy = NULL;
	if ((rc = salus_fhir_access_writes(c->st, c->rq->policy, ops, nops, &refused, &awhy))) {
		tx_fail(c, back[refused], rc, awhy);
		goto out_ops;
	}
	rc = salus_store_write(c->st, ops, nops);
	if (rc) {
		size_t bad = 0;
		for (size_t k = 0; k < nops; k++)
			if (ops[k].rc) {
				bad = back[k];
				break;
			}
		tx_fail(c, bad, rc,
			rc == SALUS_EPRECONDITION && c->e[bad].guard.n
				? "ifNoneExist criteria match a resource created concurrently"
			: rc == SALUS_EPRECONDITION ? "ifMatch does not match the current version"
			: rc == SALUS_EEXISTS	  ? "resource already exists"
						  : NULL);
		goto out_ops;
	}
	/* reads and ifNoneExist matches, after the writes */
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = &c->e[i];
		if (e->act != A_READ && e->act != A_EXISTS)
			continue;
		salus_fhir_resp_init(&e->sub);
		e->sub_used = true;
		struct salus_fhir_req r = e->rq;
		if (e->act == A_EXISTS)
			r.op = SALUS_FHIR_READ;
		salus_fhir_handle(c->st, &r, &e->sub);
		if (e->act == A_EXISTS && e->sub.status == 200) {
			struct salus_resource cur = {.json = NULL};
			if (!salus_store_read(c->st, r.type, r.id, 0, &cur))
				snprintf(e->sub.location, sizeof e->sub.location, "%s/%s/_history/%ld", r.type, r.id,
					 cur.version);
			salus_resource_release(&cur);
		}
	}
	struct salus_buf *b = &c->rs->body;
	salus_buf_reset(b);
	rc = salus_buf_addf(b, "{\"resourceType\":\"Bundle\",\"id\":\"");
	char uuid[SALUS_UUID_LEN];
	salus_uuid_new(uuid);
	if (!rc)
		rc = salus_buf_addf(b, "%s\",\"type\":\"transaction-response\"%s", uuid, c->n ? ",\"entry\":[" : "");
	for (size_t i = 0; i < c->n && !rc; i++) {
		struct entry *e = &c->e[i];
		bool wrote = e->act == A_CREATE || e->act == A_UPDATE || e->act == A_DELETE;
		rc = add_entry_response(c, b, i, wrote ? &ops[e->op] : NULL);
	}
	if (!rc)
		rc = salus_buf_adds(b, c->n ? "]}" : "}");
	if (rc) {
		c->rs->status = salus_fhir_outcome(b, rc, "the transaction was applied but its response is too large", NULL);
		rc = 0;
		goto out_ops;
	}
	c->rs->status = 200;
out_ops:
	for (size_t k = 0; k < nops; k++)
		salus_write_release(&ops[k]);
	salus_free(ops);
	salus_free(back);
	return rc;
}

/* ---- batch ---- */

static int run_batch(struct ctx *c)
{
	struct salus_buf *b = &c->rs->body;
	char uuid[SALUS_UUID_LEN];
	int rc;
	for (size_t i = 0; i < c->n; i++) {
		struct entry *e = &c->e[i];
		if (e->act == A_NONE) /* routing failed: sub already holds the outcome */
			continue;
		salus_fhir_resp_init(&e->sub);
		e->sub_used = true;
		if (e->rq.op == SALUS_FHIR_PATCH || e->rq.op == SALUS_FHIR_COND_PATCH) {
			const char *why = NULL;
			bool fhirpath;
			salus_buf_init(&e->pbody, SALUS_MAX_BODY);
			if ((rc = binary_patch(e, &e->pbody, &fhirpath, &why))) {
				e->sub.status = salus_fhir_outcome(&e->sub.body, rc, why, NULL);
				continue;
			}
			e->rq.body = e->pbody.p ? e->pbody.p : "";
			e->rq.body_len = e->pbody.n;
			e->rq.content_type = fhirpath ? "application/fhir+json" : "application/json-patch+json";
		}
		salus_fhir_handle(c->st, &e->rq, &e->sub);
	}
	salus_buf_reset(b);
	salus_uuid_new(uuid);
	rc = salus_buf_addf(b, "{\"resourceType\":\"Bundle\",\"id\":\"%s\",\"type\":\"batch-response\"%s", uuid,
			    c->n ? ",\"entry\":[" : "");
	for (size_t i = 0; i < c->n && !rc; i++)
		rc = add_entry_response(c, b, i, NULL);
	if (!rc)
		rc = salus_buf_adds(b, c->n ? "]}" : "}");
	if (rc) {
		c->rs->status = salus_fhir_outcome(b, rc, "the batch was processed but its response is too large", NULL);
		return 0;
	}
	c->rs->status = 200;
	return 0;
}

/* ---- entry point ---- */

int salus_fhir_bundle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	char why[200];
	json_t *doc = NULL;
	struct ctx c = {.st = st, .rq = rq, .rs = rs};
	struct salus_json_iter it;
	struct salus_slice k, v;
	/* the parser notes where each entry's resource is in the text */
	struct salus_json_marks marks = {.outer = "entry", .inner = "resource"};
	/* the Bundle's tree is carved from an arena (core/alloc.h): it lives only
	 * in this call, and nothing keeps a node of it past the json_decref below */
	struct salus_json_arena arena = {0};
	salus_json_arena_enter(&arena);
	int rc = salus_json_parse_strict_marks(rq->body, rq->body_len, &doc, why, sizeof why, &marks);
	salus_json_arena_leave(&arena);
	if (rc) {
		salus_free(marks.at);
		salus_json_arena_release(&arena);
		return rs->status = salus_fhir_outcome(&rs->body, rc, why, NULL);
	}
	const char *rt = json_string_value(json_object_get(doc, "resourceType"));
	const char *type = json_string_value(json_object_get(doc, "type"));
	json_t *entries = json_object_get(doc, "entry");
	if (!rt || strcmp(rt, "Bundle")) {
		rs->status = salus_fhir_outcome(&rs->body, SALUS_EINVALID, "POST to the base needs a Bundle", "resourceType");
		goto out_doc;
	}
	if (!type || (strcmp(type, "transaction") && strcmp(type, "batch"))) {
		rs->status = salus_fhir_outcome(&rs->body, SALUS_EINVALID, "Bundle.type must be batch or transaction",
						"Bundle.type");
		goto out_doc;
	}
	if (entries && !json_is_array(entries)) {
		rs->status = salus_fhir_outcome(&rs->body, SALUS_EINVALID, "Bundle.entry must be an array", "Bundle.entry");
		goto out_doc;
	}
	c.transaction = !strcmp(type, "transaction");
	c.n = json_array_size(entries);
	if (c.n > SALUS_MAX_BUNDLE_ENTRIES) {
		rs->status = salus_fhir_outcome(&rs->body, SALUS_ETOOLARGE, "too many Bundle entries", "Bundle.entry");
		goto out_doc;
	}
	c.e = salus_calloc(c.n ? c.n : 1, sizeof *c.e);
	if (!c.e) {
		rs->status = salus_fhir_outcome(&rs->body, SALUS_ENOMEM, NULL, NULL);
		goto out_doc;
	}
	/* the raw text of each entry's resource, in step with the tree: noted by
	 * the parser, or else found in the text (the body was just accepted by the
	 * strict parser: values are skipped, not checked) */
	struct salus_slice raw_entries = {NULL, 0};
	if (marks.ok && marks.n == c.n) {
		for (size_t i = 0; i < c.n; i++)
			if (marks.at[i].p)
				c.e[i].raw = marks.at[i];
	} else if (c.n && salus_json_member_checked(rq->body, rq->body_len, "entry", &raw_entries) == 1 &&
		   !salus_json_iter_init_checked(&it, raw_entries.p, raw_entries.n)) {
		for (size_t i = 0; i < c.n && salus_json_iter_next(&it, &k, &v) == 1; i++) {
			struct salus_slice r;
			if (salus_json_member_checked(v.p, v.n, "resource", &r) == 1)
				c.e[i].raw = r;
		}
	}
	for (size_t i = 0; i < c.n; i++) {
		struct entry *e = &c.e[i];
		json_t *ent = json_array_get(entries, i), *req = json_object_get(ent, "request");
		const char *ewhy = NULL;
		e->res = json_object_get(ent, "resource");
		if (e->res && !json_is_object(e->res))
			e->res = NULL;
		e->full_url = json_string_value(json_object_get(ent, "fullUrl"));
		rc = json_is_object(req) ? route_entry(&c, e, req, &ewhy) : SALUS_EINVALID;
		if (!json_is_object(req))
			ewhy = "entry.request is required";
		if (rc && c.transaction) {
			tx_fail(&c, i, rc, ewhy);
			goto out_entries;
		}
		if (rc) {
			e->act = A_NONE;
			salus_fhir_resp_init(&e->sub);
			e->sub_used = true;
			e->sub.status = salus_fhir_outcome(&e->sub.body, rc, ewhy, NULL);
			continue;
		}
		e->act = A_READ; /* batch: anything routed is run */
	}
	if (c.transaction)
		run_transaction(&c);
	else
		run_batch(&c);
out_entries:
	for (size_t i = 0; i < c.n; i++) {
		salus_query_release(&c.e[i].q);
		if (c.e[i].text.max)
			salus_buf_release(&c.e[i].text);
		if (c.e[i].sub_used)
			salus_fhir_resp_release(&c.e[i].sub);
		salus_fhir_patched_release(&c.e[i].pd);
		salus_cond_guard_release(&c.e[i].guard);
		if (c.e[i].pbody.max)
			salus_buf_release(&c.e[i].pbody);
	}
	salus_free(c.e);
	for (size_t i = 0; i < c.map.cap; i++)
		if (c.map.s[i].owned)
			salus_free((void *)(uintptr_t)c.map.s[i].key);
	salus_free(c.map.s);
out_doc:
	json_decref(doc);
	salus_json_arena_release(&arena);
	salus_free(marks.at);
	return rs->status;
}
