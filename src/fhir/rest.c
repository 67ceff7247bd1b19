/*
 * rest.c — FHIR R4 RESTful interactions over the store (see rest.h):
 * routing of the path below the base, create/read/vread/update/delete,
 * history at three levels with keyset paging, a basic type listing, and
 * OperationOutcome errors.  Bundles are assembled as text from the stored
 * JSON, so a read or a history page never re-parses resources.
 */
#include "fhir/rest.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/audit_search.h" /* AuditEvent from the audit log */
#include "fhir/bundle.h"
#include "fhir/capability.h"
#include "fhir/access.h"
#include "fhir/cond.h"
#include "fhir/defs.h"
#include "fhir/json_out.h"
#include "fhir/validate.h" /* validation on every write, $validate (docs/validation.md) */
#include "fhir/search.h"
#include "fhir/fhirpath_patch.h"
#include "fhir/patch.h"
#include "store/splice.h"

#define OUT_MAX SALUS_MAX_BODY /* a response body is capped like a request body */

void salus_fhir_resp_init(struct salus_fhir_resp *rs)
{
	memset(rs, 0, sizeof *rs);
	salus_buf_init(&rs->body, OUT_MAX);
}

void salus_fhir_resp_release(struct salus_fhir_resp *rs)
{
	salus_buf_release(&rs->body);
}

bool salus_fhir_id_valid(const char *s, size_t n)
{
	if (n == 0 || n > SALUS_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.'))
			return false;
	}
	return true;
}

/* ---- routing ---------------------------------------------------------- */

enum { M_GET = 1, M_POST = 2, M_PUT = 4, M_DELETE = 8, M_PATCH = 16, M_HEAD = 32 };

static int method_bit(const char *m)
{
	if (!strcmp(m, "GET"))
		return M_GET;
	if (!strcmp(m, "HEAD"))
		return M_HEAD;
	if (!strcmp(m, "POST"))
		return M_POST;
	if (!strcmp(m, "PUT"))
		return M_PUT;
	if (!strcmp(m, "DELETE"))
		return M_DELETE;
	if (!strcmp(m, "PATCH"))
		return M_PATCH;
	return 0;
}

int salus_fhir_route(const char *method, const char *path, struct salus_fhir_req *rq, const char **why)
{
	struct salus_slice seg[5];
	int nseg = 0;
	const char *p = path;
	while (*p == '/')
		p++;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (nseg == 5 || n == 0) {
			*why = "unknown FHIR path";
			return SALUS_ENOTFOUND;
		}
		seg[nseg++] = (struct salus_slice){p, n};
		p += n;
		if (*p == '/')
			p++;
	}
	int m = method_bit(method);
	if (m == M_HEAD)
		m = M_GET;
	int allowed = 0;
	rq->type[0] = rq->id[0] = rq->ctype[0] = 0;
	rq->vid = 0;

	if (nseg == 0) {
		/* POST /: a batch or transaction; GET /?params: system-wide search */
		allowed = M_POST | M_GET;
		rq->op = m == M_GET ? SALUS_FHIR_SEARCH_SYSTEM : SALUS_FHIR_BUNDLE;
		goto check;
	}
	if (nseg == 1 && salus_slice_eq(seg[0], "_search")) {
		allowed = M_POST;
		rq->op = SALUS_FHIR_SEARCH_SYSTEM;
		goto check;
	}
	if (nseg == 1 && salus_slice_eq(seg[0], "metadata")) {
		allowed = M_GET;
		rq->op = SALUS_FHIR_CAPABILITIES;
		goto check;
	}
	if (nseg == 1 && salus_slice_eq(seg[0], "_history")) {
		allowed = M_GET;
		rq->op = SALUS_FHIR_HISTORY_SYSTEM;
		goto check;
	}
	if (!salus_fhir_is_resource_type(seg[0].p, seg[0].n)) {
		*why = "unknown resource type";
		return SALUS_ENOTFOUND;
	}
	memcpy(rq->type, seg[0].p, seg[0].n);
	rq->type[seg[0].n] = 0;
	if (nseg == 1) {
		allowed = M_GET | M_POST | M_PUT | M_DELETE | M_PATCH;
		rq->op = m == M_POST     ? SALUS_FHIR_CREATE
			 : m == M_PUT    ? SALUS_FHIR_COND_UPDATE
			 : m == M_DELETE ? SALUS_FHIR_COND_DELETE
			 : m == M_PATCH  ? SALUS_FHIR_COND_PATCH
					 : SALUS_FHIR_SEARCH_TYPE;
		goto check;
	}
	if (salus_slice_eq(seg[1], "_search") && nseg == 2) {
		allowed = M_POST;
		rq->op = SALUS_FHIR_SEARCH_TYPE;
		goto check;
	}
	if (salus_slice_eq(seg[1], "_history") && nseg == 2) {
		allowed = M_GET;
		rq->op = SALUS_FHIR_HISTORY_TYPE;
		goto check;
	}
	/* $validate (type level): POST /T/$validate (docs/validation.md) */
	if (nseg == 2 && salus_slice_eq(seg[1], "$validate")) {
		allowed = M_POST;
		rq->op = SALUS_FHIR_VALIDATE;
		goto check;
	}
	if (seg[1].p[0] == '$' || seg[1].p[0] == '_') {
		*why = "operation not supported";
		return SALUS_ENOTFOUND;
	}
	if (!salus_fhir_id_valid(seg[1].p, seg[1].n)) {
		*why = "invalid resource id (expected [A-Za-z0-9-.]{1,64})";
		return SALUS_EINVALID;
	}
	memcpy(rq->id, seg[1].p, seg[1].n);
	rq->id[seg[1].n] = 0;
	if (nseg == 2) {
		allowed = M_GET | M_PUT | M_DELETE | M_PATCH;
		rq->op = m == M_PUT ? SALUS_FHIR_UPDATE
			 : m == M_DELETE ? SALUS_FHIR_DELETE
			 : m == M_PATCH	 ? SALUS_FHIR_PATCH
					 : SALUS_FHIR_READ;
		goto check;
	}
	/* $validate (instance level): POST /T/id/$validate */
	if (nseg == 3 && salus_slice_eq(seg[2], "$validate")) {
		allowed = M_POST;
		rq->op = SALUS_FHIR_VALIDATE;
		goto check;
	}
	/* Patient/id/$everything; compartment search: Patient/id/T, Patient/id/[*],
	 * POST Patient/id/T/_search (docs/search.md) */
	if (!strcmp(rq->type, "Patient") && nseg == 3 && salus_slice_eq(seg[2], "$everything")) {
		allowed = M_GET;
		rq->op = SALUS_FHIR_EVERYTHING;
		goto check;
	}
	if (!strcmp(rq->type, "Patient") && (nseg == 3 || (nseg == 4 && salus_slice_eq(seg[3], "_search"))) &&
	    (salus_slice_eq(seg[2], "*") || salus_fhir_is_resource_type(seg[2].p, seg[2].n))) {
		if (seg[2].p[0] != '*') {
			memcpy(rq->ctype, seg[2].p, seg[2].n);
			rq->ctype[seg[2].n] = 0;
		}
		allowed = nseg == 3 ? M_GET : M_POST;
		rq->op = SALUS_FHIR_SEARCH_COMPARTMENT;
		goto check;
	}
	if (!salus_slice_eq(seg[2], "_history")) {
		*why = "unknown FHIR path";
		return SALUS_ENOTFOUND;
	}
	if (nseg == 3) {
		allowed = M_GET;
		rq->op = SALUS_FHIR_HISTORY_INSTANCE;
		goto check;
	}
	if (nseg == 4) {
		long v;
		if (salus_parse_long(seg[3], 1, 1L << 40, &v) || seg[3].p[0] == '+' || seg[3].p[0] == '-') {
			*why = "invalid version id";
			return SALUS_ENOTFOUND;
		}
		rq->vid = v;
		allowed = M_GET;
		rq->op = SALUS_FHIR_VREAD;
		goto check;
	}
	*why = "unknown FHIR path";
	return SALUS_ENOTFOUND;
check:
	if (!(m & allowed)) {
		*why = "method not allowed on this FHIR path";
		return SALUS_EMETHOD;
	}
	return 0;
}

enum salus_fhir_access salus_fhir_op_access(enum salus_fhir_op op)
{
	switch (op) {
	case SALUS_FHIR_CREATE: return SALUS_ACCESS_C;
	case SALUS_FHIR_UPDATE:
	case SALUS_FHIR_PATCH:
	case SALUS_FHIR_COND_UPDATE:
	case SALUS_FHIR_COND_PATCH: return SALUS_ACCESS_U;
	case SALUS_FHIR_DELETE:
	case SALUS_FHIR_COND_DELETE: return SALUS_ACCESS_D;
	case SALUS_FHIR_SEARCH_TYPE:
	case SALUS_FHIR_SEARCH_SYSTEM:
	case SALUS_FHIR_SEARCH_COMPARTMENT:
	case SALUS_FHIR_EVERYTHING:
	case SALUS_FHIR_HISTORY_TYPE:
	case SALUS_FHIR_HISTORY_SYSTEM: return SALUS_ACCESS_S;
	default: return SALUS_ACCESS_R;
	}
}

/* ---- responses -------------------------------------------------------- */

int salus_fhir_outcome(struct salus_buf *out, int rc, const char *diagnostics, const char *expression)
{
	salus_buf_reset(out);
	const char *severity = rc == 0 ? "information" : salus_err_http(rc) >= 500 ? "fatal" : "error";
	int e = salus_buf_addf(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"%s\",\"code\":\"%s\",",
			       severity, salus_err_issue(rc));
	if (!e)
		e = salus_buf_adds(out, "\"diagnostics\":");
	if (!e)
		e = salus_json_add_cstr(out, diagnostics ? diagnostics : salus_err_msg(rc));
	if (!e && expression) {
		e = salus_buf_adds(out, ",\"expression\":[");
		if (!e)
			e = salus_json_add_cstr(out, expression);
		if (!e)
			e = salus_buf_addc(out, ']');
	}
	if (!e)
		e = salus_buf_adds(out, "}]}");
	return salus_err_http(rc);
}

static int fail(struct salus_fhir_resp *rs, int rc, const char *why, const char *expr)
{
	rs->status = salus_fhir_outcome(&rs->body, rc, why, expr);
	return rs->status;
}

static void http_date(int64_t ms, char out[40])
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday % 32, mo[tm.tm_mon % 12],
		 (tm.tm_year + 1900) % 10000, tm.tm_hour % 24, tm.tm_min % 60, tm.tm_sec % 61);
}

static void set_version_headers(struct salus_fhir_resp *rs, long version, int64_t updated_ms)
{
	snprintf(rs->etag, sizeof rs->etag, "W/\"%ld\"", version);
	http_date(updated_ms, rs->last_modified);
}

/* Prefer: return=minimal | representation | OperationOutcome (RFC 7240 + FHIR). */
enum ret_pref { RET_REPRESENTATION, RET_MINIMAL, RET_OUTCOME };
static enum ret_pref prefer_return(const char *prefer)
{
	if (!prefer)
		return RET_REPRESENTATION;
	if (strstr(prefer, "return=minimal"))
		return RET_MINIMAL;
	if (strstr(prefer, "return=OperationOutcome"))
		return RET_OUTCOME;
	return RET_REPRESENTATION;
}

static int parse_if_match(const char *h, long *out)
{
	/* W/"n" or "n" */
	size_t n = strlen(h);
	const char *p = h;
	if (n >= 2 && p[0] == 'W' && p[1] == '/') {
		p += 2;
		n -= 2;
	}
	if (n < 3 || p[0] != '"' || p[n - 1] != '"')
		return SALUS_EINVALID;
	struct salus_slice s = {p + 1, n - 2};
	return salus_parse_long(s, 1, 1L << 40, out);
}

/* ---- read ------------------------------------------------------------- */

/* HTTP-date (RFC 7231 IMF-fixdate) to ms; SALUS_EINVALID otherwise. */
static int parse_http_date(const char *s, int64_t *ms)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *e = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!e || *e)
		return SALUS_EINVALID;
	time_t t = timegm(&tm);
	if (t == (time_t)-1)
		return SALUS_EINVALID;
	*ms = (int64_t)t * 1000;
	return 0;
}

/* Conditional read (RFC 7232): If-None-Match wins over If-Modified-Since. */
static bool not_modified(const struct salus_fhir_req *rq, const struct salus_resource *r)
{
	if (rq->if_none_match) {
		long v;
		if (!strcmp(rq->if_none_match, "*"))
			return true;
		return parse_if_match(rq->if_none_match, &v) == 0 && v == r->version;
	}
	if (rq->if_modified_since) {
		int64_t since;
		return parse_http_date(rq->if_modified_since, &since) == 0 && r->updated_ms / 1000 <= since / 1000;
	}
	return false;
}

/* Under a restricting policy (fhir/access.h): may the caller see the version
 * read (r; a tombstone is judged by the version before it)?  A resource it
 * may not see answers exactly as one that does not exist (404), so neither
 * its existence nor its deletion is revealed. */
static int read_visible(struct salus_store *st, const struct salus_fhir_req *rq, const struct salus_resource *r,
			bool *ok)
{
	*ok = true;
	if (!salus_fhir_access_restricted(rq->policy))
		return 0;
	if (!r->deleted)
		return salus_fhir_access_visible_res(st, rq->policy, SALUS_POLICY_R, r, ok);
	*ok = false;
	if (r->version <= 1)
		return 0;
	struct salus_resource prev = {.json = NULL};
	int rc = salus_store_read(st, rq->type, rq->id, r->version - 1, &prev);
	if (!rc && !prev.deleted && prev.json)
		rc = salus_fhir_access_visible_res(st, rq->policy, SALUS_POLICY_R, &prev, ok);
	else if (rc == SALUS_ENOTFOUND || rc == SALUS_EGONE || !rc)
		rc = 0;
	salus_resource_release(&prev);
	return rc;
}

static int do_read(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct salus_resource r;
	int rc = salus_store_read(st, rq->type, rq->id, rq->op == SALUS_FHIR_VREAD ? rq->vid : 0, &r);
	if ((rc == 0 || rc == SALUS_EGONE) && salus_fhir_access_restricted(rq->policy)) {
		bool ok = false;
		int vrc = read_visible(st, rq, &r, &ok);
		if (vrc || !ok) {
			salus_resource_release(&r);
			return fail(rs, vrc ? vrc : SALUS_ENOTFOUND,
				    vrc ? NULL : rq->op == SALUS_FHIR_VREAD ? "no such resource version" : "no such resource",
				    NULL);
		}
	}
	if (rc == SALUS_EGONE) {
		bool erased = r.version == 0; /* crypto-shredded: no version left (store.h) */
		if (!erased)
			set_version_headers(rs, r.version, r.updated_ms);
		salus_resource_release(&r);
		return fail(rs, rc, erased ? "resource was erased" : "resource was deleted", NULL);
	}
	if (rc == SALUS_ENOTFOUND)
		return fail(rs, rc, rq->op == SALUS_FHIR_VREAD ? "no such resource version" : "no such resource", NULL);
	if (rc)
		return fail(rs, rc, NULL, NULL);
	set_version_headers(rs, r.version, r.updated_ms);
	salus_buf_reset(&rs->body);
	if (not_modified(rq, &r)) {
		salus_resource_release(&r);
		rs->status = 304;
		return 304;
	}
	const char *why = NULL;
	rc = rq->nparams ? salus_fhir_read_subset(rq->type, rq->params, rq->nparams, r.json, r.len, &rs->body, &why)
			 : salus_buf_add(&rs->body, r.json, r.len);
	salus_resource_release(&r);
	if (rc)
		return fail(rs, rc, why, NULL);
	rs->status = 200;
	return 200;
}

/* ---- create / update / delete ----------------------------------------- */

int salus_fhir_check_resource(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, json_t *j)
{
	json_t *rt = json_object_get(j, "resourceType");
	if (!json_is_string(rt))
		return fail(rs, SALUS_EINVALID, "resourceType is missing or not a string", "resourceType"), SALUS_EINVALID;
	if (strcmp(json_string_value(rt), rq->type))
		return fail(rs, SALUS_EINVALID, "resourceType does not match the type in the URL", "resourceType"),
		       SALUS_EINVALID;
	char expr[SALUS_MAX_TYPE + 8]; /* FHIRPath of the element, as the validator's issues give it */
	json_t *meta = json_object_get(j, "meta");
	if (meta && !json_is_object(meta)) {
		snprintf(expr, sizeof expr, "%s.meta", rq->type);
		return fail(rs, SALUS_EINVALID, "meta must be an object", expr), SALUS_EINVALID;
	}
	json_t *id = json_object_get(j, "id");
	if (id && (!json_is_string(id) || !salus_fhir_id_valid(json_string_value(id), json_string_length(id)))) {
		snprintf(expr, sizeof expr, "%s.id", rq->type);
		return fail(rs, SALUS_EINVALID, "id must match [A-Za-z0-9-.]{1,64}", expr), SALUS_EINVALID;
	}
	/* Validation against the R4 definitions (fhir/validate.h): single writes,
	 * PATCH results and Bundle entries all pass here.  400 for structural
	 * errors, 422 when only invariants fail; the OperationOutcome lists every
	 * issue with its FHIRPath expression. */
	int vrc = salus_fhir_validate(j, rq->type, SALUS_VALIDATE_ANY, &rs->body, NULL);
	if (vrc == SALUS_ENOMEM)
		return fail(rs, vrc, NULL, NULL), vrc;
	if (vrc) {
		rs->status = salus_err_http(vrc);
		return vrc;
	}
	return 0;
}

static int load_body(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, json_t **out)
{
	char why[200];
	json_t *j;
	int rc = salus_json_parse_strict(rq->body, rq->body_len, &j, why, sizeof why);
	if (rc)
		return fail(rs, rc, why, NULL), rc;
	if ((rc = salus_fhir_check_resource(rq, rs, j))) {
		json_decref(j);
		return rc;
	}
	*out = j;
	return 0;
}

int salus_fhir_load_body(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, json_t **out)
{
	return load_body(rq, rs, out);
}

static int write_result(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, struct salus_write *w,
			int created_status)
{
	set_version_headers(rs, w->version, w->updated_ms);
	snprintf(rs->location, sizeof rs->location, "%s/%s/%s/_history/%ld", rq->base, rq->type, w->id_out,
		 w->version);
	rs->status = w->created ? created_status : 200;
	salus_buf_reset(&rs->body);
	switch (prefer_return(rq->prefer)) {
	case RET_MINIMAL:
		break;
	case RET_OUTCOME:
		salus_fhir_outcome(&rs->body, 0, w->created ? "created" : "updated", NULL);
		break;
	case RET_REPRESENTATION:
		if (salus_buf_add(&rs->body, w->json, w->len))
			return fail(rs, SALUS_ENOMEM, NULL, NULL);
		break;
	}
	return rs->status;
}

/* Match a conditional interaction's criteria (a query string or the
 * request's parameters): *count is 0, 1 or 2 (= more than one). */
static int cond_match(struct salus_store *st, const struct salus_fhir_req *rq, const char *query,
		      struct salus_fhir_resp *rs, char id[SALUS_MAX_ID + 1], int *count)
{
	struct salus_query q;
	const char *why = NULL;
	char ids[1][SALUS_MAX_ID + 1];
	int rc;
	if (salus_fhir_access_restricted(rq->policy)) {
		/* matching runs over every patient's identifiers: not offered to a restricted token */
		rc = SALUS_EFORBIDDEN;
		return fail(rs, rc, "conditional interactions are not available to patient-context or restricted tokens",
			    NULL),
		       rc;
	}
	if (query) {
		rc = salus_query_parse(&q, query, strlen(query));
		if (!rc)
			rc = salus_fhir_match(st, rq->type, q.p, q.n, ids, 1, count, &why);
		else
			why = "malformed conditional criteria";
		salus_query_release(&q);
	} else {
		rc = salus_fhir_match(st, rq->type, rq->params, rq->nparams, ids, 1, count, &why);
	}
	if (rc)
		return fail(rs, rc, why, NULL), rc;
	if (*count == 1)
		memcpy(id, ids[0], SALUS_MAX_ID + 1);
	return 0;
}

/* Conditional create found exactly one match: 200 with it, nothing written. */
static int existing_result(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs,
			   const char *id)
{
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(st, rq->type, id, 0, &r);
	if (rc) {
		salus_resource_release(&r);
		return fail(rs, rc == SALUS_EGONE ? SALUS_ECONFLICT : rc, NULL, NULL);
	}
	set_version_headers(rs, r.version, r.updated_ms);
	snprintf(rs->location, sizeof rs->location, "%s/%s/%s/_history/%ld", rq->base, rq->type, id, r.version);
	salus_buf_reset(&rs->body);
	if (prefer_return(rq->prefer) == RET_REPRESENTATION)
		rc = salus_buf_add(&rs->body, r.json, r.len);
	else if (prefer_return(rq->prefer) == RET_OUTCOME)
		salus_fhir_outcome(&rs->body, 0, "a matching resource exists: nothing created", NULL);
	salus_resource_release(&r);
	if (rc)
		return fail(rs, rc, NULL, NULL);
	rs->status = 200;
	return 200;
}

/* A single-resource write: through the HTTP layer's audit hook when it set
 * one (rest.h), so the write and its AuditEvent commit together. */
static int store_write(const struct salus_fhir_req *rq, struct salus_store *st, struct salus_write *ops, size_t n)
{
	size_t bad;
	const char *why = NULL;
	int rc = salus_fhir_access_writes(st, rq->policy, ops, n, &bad, &why);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			ops[i].rc = i == bad ? rc : 0;
		return rc;
	}
	return rq->write ? rq->write(rq->write_ctx, st, ops, n) : salus_store_write(st, ops, n);
}

static int do_create(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	json_t *j;
	if (load_body(rq, rs, &j))
		return rs->status;
	if (rq->if_none_exist) {
		char id[SALUS_MAX_ID + 1];
		int count;
		if (cond_match(st, rq, rq->if_none_exist, rs, id, &count)) {
			json_decref(j);
			return rs->status;
		}
		if (count > 1) {
			json_decref(j);
			return fail(rs, SALUS_EPRECONDITION, "If-None-Exist criteria match more than one resource", NULL);
		}
		if (count == 1) {
			json_decref(j);
			return existing_result(st, rq, rs, id);
		}
	}
	json_object_del(j, "id"); /* the server assigns the id of a created resource */
	struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = rq->type, .resource = j,
				.raw = rq->body, .raw_len = rq->body_len};
	/* If-None-Exist: the store checks the criteria again under its writer (a
	 * concurrent create of a match since cond_match makes this a 412 below) */
	struct salus_query q = {.n = 0};
	struct salus_cond_guard g = {.n = 0};
	int rc = 0;
	if (rq->if_none_exist && !(rc = salus_query_parse(&q, rq->if_none_exist, strlen(rq->if_none_exist))) &&
	    !(rc = salus_cond_guard_init(&g, q.p, q.n))) {
		w.none_match = g.c;
		w.n_none_match = g.n;
	}
	if (!rc)
		rc = store_write(rq, st, &w, 1);
	salus_cond_guard_release(&g);
	salus_query_release(&q);
	json_decref(j);
	if (rc == SALUS_EPRECONDITION && rq->if_none_exist) {
		char id[SALUS_MAX_ID + 1];
		int count = 0;
		salus_write_release(&w);
		if (cond_match(st, rq, rq->if_none_exist, rs, id, &count))
			return rs->status;
		if (count == 1)
			return existing_result(st, rq, rs, id);
		return fail(rs, rc, count ? "If-None-Exist criteria match more than one resource"
					  : "a concurrent write changed what If-None-Exist matches; retry",
			    NULL);
	}
	if (rc) {
		salus_write_release(&w);
		return fail(rs, rc, NULL, NULL);
	}
	w.created = true;
	write_result(rq, rs, &w, 201);
	salus_write_release(&w);
	return rs->status;
}

/* Store j (the parse of body/body_len, or of nothing when raw is NULL) as
 * the next version of id. */
static int update_with(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs,
		       json_t *j, const char *id, long if_match, const char *raw, size_t raw_len)
{
	struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = rq->type, .id = id, .resource = j,
				.if_match = if_match, .raw = raw, .raw_len = raw_len};
	int rc = store_write(rq, st, &w, 1);
	if (rc) {
		salus_write_release(&w);
		if (rc == SALUS_EPRECONDITION)
			return fail(rs, rc, "If-Match does not match the current version", NULL);
		return fail(rs, rc, NULL, NULL);
	}
	write_result(rq, rs, &w, 201);
	salus_write_release(&w);
	return rs->status;
}

static int do_update(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	long if_match = 0;
	if (rq->if_match && parse_if_match(rq->if_match, &if_match))
		return fail(rs, SALUS_EINVALID, "If-Match must be a version ETag such as W/\"3\"", NULL);
	json_t *j;
	if (load_body(rq, rs, &j))
		return rs->status;
	json_t *id = json_object_get(j, "id");
	if (!id || strcmp(json_string_value(id), rq->id)) {
		json_decref(j);
		return fail(rs, SALUS_EINVALID, id ? "id in the body does not match the id in the URL"
						    : "an updated resource must carry its id",
			    "id");
	}
	update_with(st, rq, rs, j, rq->id, if_match, rq->body, rq->body_len);
	json_decref(j);
	return rs->status;
}

/* PUT /T?criteria: 0 matches → create (with the body's id, if any), 1 → update it, more → 412. */
static int do_cond_update(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	long if_match = 0;
	char mid[SALUS_MAX_ID + 1], nid[SALUS_UUID_LEN];
	int count;
	json_t *j;
	if (rq->if_match && parse_if_match(rq->if_match, &if_match))
		return fail(rs, SALUS_EINVALID, "If-Match must be a version ETag such as W/\"3\"", NULL);
	if (load_body(rq, rs, &j))
		return rs->status;
	if (cond_match(st, rq, NULL, rs, mid, &count))
		goto out;
	json_t *id = json_object_get(j, "id");
	if (count > 1) {
		fail(rs, SALUS_EPRECONDITION, "conditional update criteria match more than one resource", NULL);
		goto out;
	}
	if (count == 1 && id && strcmp(json_string_value(id), mid)) {
		fail(rs, SALUS_EINVALID, "id in the body does not match the resource the criteria select", "id");
		goto out;
	}
	const char *target = mid;
	if (count == 0) {
		if (id) {
			target = json_string_value(id);
		} else {
			salus_uuid_new(nid);
			target = nid;
		}
	}
	update_with(st, rq, rs, j, target, if_match, rq->body, rq->body_len);
out:
	json_decref(j);
	return rs->status;
}

static int delete_id(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs,
		     const char *type, const char *id,
		     long if_match)
{
	struct salus_write w = {.kind = SALUS_WRITE_DELETE, .type = type, .id = id, .if_match = if_match};
	int rc = store_write(rq, st, &w, 1);
	salus_write_release(&w);
	if (rc) {
		if (rc == SALUS_EPRECONDITION)
			return fail(rs, rc, "If-Match does not match the current version", NULL);
		return fail(rs, rc, NULL, NULL);
	}
	if (w.version)
		set_version_headers(rs, w.version, w.updated_ms);
	salus_fhir_outcome(&rs->body, 0, "deleted", NULL);
	rs->status = 200;
	return 200;
}

static int do_delete(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	long if_match = 0;
	if (rq->if_match && parse_if_match(rq->if_match, &if_match))
		return fail(rs, SALUS_EINVALID, "If-Match must be a version ETag such as W/\"3\"", NULL);
	return delete_id(st, rq, rs, rq->type, rq->id, if_match);
}

/* DELETE /T?criteria, single mode: 0 matches → 200 (nothing to do), 1 → delete it, more → 412. */
static int do_cond_delete(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	char id[SALUS_MAX_ID + 1];
	int count;
	long if_match = 0;
	if (rq->if_match && parse_if_match(rq->if_match, &if_match))
		return fail(rs, SALUS_EINVALID, "If-Match must be a version ETag such as W/\"3\"", NULL);
	if (cond_match(st, rq, NULL, rs, id, &count))
		return rs->status;
	if (count > 1)
		return fail(rs, SALUS_EPRECONDITION, "conditional delete criteria match more than one resource", NULL);
	if (count == 0) {
		salus_fhir_outcome(&rs->body, 0, "no resource matched: nothing deleted", NULL);
		rs->status = 200;
		return 200;
	}
	return delete_id(st, rq, rs, rq->type, id, if_match);
}

/* ---- PATCH ------------------------------------------------------------ */

/* Rebuild the patched resource's text: top-level members the patch left
 * equal to their value before it are copied from the stored text (so their
 * decimals keep their precision); changed ones are serialised from the
 * patched tree. */
static int patched_text(const char *old, size_t oldn, json_t *doc, const json_t *before, struct salus_buf *out)
{
	struct salus_json_iter it;
	struct salus_slice k, v;
	int rc, first = 1;
	char key[256];
	if ((rc = salus_buf_addc(out, '{')) || (rc = salus_json_iter_init(&it, old, oldn)))
		return rc;
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		if (k.n >= sizeof key || memchr(k.p, '\\', k.n))
			return SALUS_EINVALID;
		memcpy(key, k.p, k.n);
		key[k.n] = 0;
		json_t *nv = json_object_get(doc, key);
		if (!nv)
			continue; /* removed */
		if ((rc = salus_buf_adds(out, first ? "\"" : ",\"")) || (rc = salus_buf_add(out, k.p, k.n)) ||
		    (rc = salus_buf_adds(out, "\":")))
			return rc;
		first = 0;
		if (json_equal(nv, json_object_get(before, key))) {
			if ((rc = salus_buf_add(out, v.p, v.n)))
				return rc;
		} else {
			char *t = json_dumps(nv, JSON_COMPACT | JSON_ENCODE_ANY);
			if (!t)
				return SALUS_ENOMEM;
			rc = salus_buf_adds(out, t);
			salus_free(t);
			if (rc)
				return rc;
		}
	}
	if (rc)
		return rc;
	const char *name;
	json_t *val;
	json_object_foreach(doc, name, val) {
		if (salus_json_member(old, oldn, name, &v) == 1)
			continue; /* written above */
		char *t = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!t)
			return SALUS_ENOMEM;
		if ((rc = salus_buf_adds(out, first ? "" : ",")) || (rc = salus_json_add_cstr(out, name)) ||
		    (rc = salus_buf_addc(out, ':')) || (rc = salus_buf_adds(out, t))) {
			salus_free(t);
			return rc;
		}
		salus_free(t);
		first = 0;
	}
	return salus_buf_addc(out, '}');
}

static bool json_patch_type(const char *ct)
{
	return ct && !strncmp(ct, "application/json-patch+json", 27) && (ct[27] == 0 || ct[27] == ';');
}

/* application/fhir+json or application/json (parameters allowed): a FHIRPath Patch. */
static bool fhir_json_type(const char *ct)
{
	if (!ct)
		return false;
	size_t n = !strncmp(ct, "application/fhir+json", 21) ? 21 : !strncmp(ct, "application/json", 16) ? 16 : 0;
	return n && (ct[n] == 0 || ct[n] == ';' || ct[n] == ' ');
}

void salus_fhir_patched_release(struct salus_fhir_patched *p)
{
	json_decref(p->doc);
	p->doc = NULL;
	if (p->text.max)
		salus_buf_release(&p->text);
	salus_resource_release(&p->cur);
}

int salus_fhir_patch_prepare(struct salus_store *st, const struct salus_fhir_req *rq, const char *id, long if_match,
			     const json_t *patch, struct salus_fhir_resp *rs, struct salus_fhir_patched *out)
{
	char why[200];
	const char *pwhy = NULL;
	json_t *before = NULL;
	int rc;

	memset(out, 0, sizeof *out);
	salus_buf_init(&out->text, SALUS_MAX_BODY);
	rc = salus_store_read(st, rq->type, id, 0, &out->cur);
	if (!rc && salus_fhir_access_restricted(rq->policy)) {
		bool ok = false;
		if ((rc = salus_fhir_access_visible_text(st, rq->policy, SALUS_POLICY_U, rq->type, id, out->cur.json,
							 out->cur.len, &ok)) == 0 && !ok)
			rc = SALUS_ENOTFOUND;
	} else if (rc == SALUS_EGONE && salus_fhir_access_restricted(rq->policy)) {
		rc = SALUS_ENOTFOUND; /* a deleted resource's compartment is not judged: not revealed */
	}
	if (rc)
		return fail(rs, rc, rc == SALUS_ENOTFOUND ? "no such resource" : NULL, NULL), rc;
	if (if_match && if_match != out->cur.version)
		return fail(rs, SALUS_EPRECONDITION, "If-Match does not match the current version", NULL),
		       SALUS_EPRECONDITION;
	if (salus_json_parse_strict(out->cur.json, out->cur.len, &out->doc, why, sizeof why))
		return fail(rs, SALUS_EINTERNAL, "stored resource is not readable", NULL), SALUS_EINTERNAL;
	if (!(before = json_deep_copy(out->doc)))
		return fail(rs, SALUS_ENOMEM, NULL, NULL), SALUS_ENOMEM;
	size_t bad = 0;
	rc = json_is_array(patch) ? salus_json_patch(out->doc, patch, &pwhy, &bad)
				  : salus_fhirpath_patch(out->doc, patch, &pwhy, &bad);
	if (rc) {
		snprintf(why, sizeof why, "patch operation %zu: %s", bad, pwhy ? pwhy : salus_err_msg(rc));
		fail(rs, rc, why, NULL);
		goto out;
	}
	if (!json_equal(json_object_get(out->doc, "resourceType"), json_object_get(before, "resourceType")) ||
	    !json_equal(json_object_get(out->doc, "id"), json_object_get(before, "id")) ||
	    !json_equal(json_object_get(out->doc, "meta"), json_object_get(before, "meta"))) {
		rc = SALUS_EUNPROCESSABLE;
		fail(rs, rc, "a patch may not change resourceType, id or meta", NULL);
		goto out;
	}
	if (json_equal(out->doc, before)) {
		out->unchanged = true;
		goto out;
	}
	struct salus_fhir_req sub = *rq;
	sub.op = SALUS_FHIR_UPDATE;
	snprintf(sub.id, sizeof sub.id, "%s", id);
	if ((rc = salus_fhir_check_resource(&sub, rs, out->doc)))
		goto out;
	/* a text the splicer cannot build: the store serialises the tree */
	out->text_ok = !patched_text(out->cur.json, out->cur.len, out->doc, before, &out->text);
out:
	json_decref(before);
	return rc;
}

static int do_patch(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	long if_match = 0;
	char why[200], mid[SALUS_MAX_ID + 1];
	json_t *patch = NULL;
	struct salus_fhir_patched pd;
	const char *id = rq->id;

	memset(&pd, 0, sizeof pd);
	bool fhirpath = !json_patch_type(rq->content_type);
	if (fhirpath && !fhir_json_type(rq->content_type))
		return fail(rs, SALUS_EMEDIATYPE,
			    "PATCH needs Content-Type application/json-patch+json (JSON Patch) or application/fhir+json "
			    "(FHIRPath Patch)",
			    NULL);
	if (rq->if_match && parse_if_match(rq->if_match, &if_match))
		return fail(rs, SALUS_EINVALID, "If-Match must be a version ETag such as W/\"3\"", NULL);
	json_error_t err;
	if (rq->body_len == 0 || !(patch = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES, &err))) {
		snprintf(why, sizeof why, "malformed %s document at line %d, column %d",
			 fhirpath ? "FHIRPath Patch" : "JSON Patch", err.line, err.column);
		return fail(rs, SALUS_EINVALID, rq->body_len ? why : "request body is empty", NULL);
	}
	if (fhirpath ? !salus_fhirpath_patch_is(patch) : !json_is_array(patch)) {
		fail(rs, SALUS_EINVALID,
		     fhirpath ? "a FHIRPath Patch (application/fhir+json) is a Parameters resource"
			      : "a JSON Patch is an array of operations",
		     NULL);
		goto out;
	}
	if (rq->op == SALUS_FHIR_COND_PATCH) {
		int count;
		if (cond_match(st, rq, NULL, rs, mid, &count))
			goto out;
		if (count != 1) {
			fail(rs, count ? SALUS_EPRECONDITION : SALUS_ENOTFOUND,
			     count ? "conditional patch criteria match more than one resource"
				   : "conditional patch criteria match no resource",
			     NULL);
			goto out;
		}
		id = mid;
	}
	if (salus_fhir_patch_prepare(st, rq, id, if_match, patch, rs, &pd))
		goto out;
	if (pd.unchanged) {
		/* nothing changed: no new version */
		set_version_headers(rs, pd.cur.version, pd.cur.updated_ms);
		salus_buf_reset(&rs->body);
		if (salus_buf_add(&rs->body, pd.cur.json, pd.cur.len))
			fail(rs, SALUS_ENOMEM, NULL, NULL);
		else
			rs->status = 200;
		goto out;
	}
	struct salus_fhir_req sub = *rq;
	sub.op = SALUS_FHIR_UPDATE;
	snprintf(sub.id, sizeof sub.id, "%s", id);
	/* the version read is the one patched: a concurrent write in between is a 412, never lost */
	update_with(st, &sub, rs, pd.doc, id, pd.cur.version, pd.text_ok ? pd.text.p : NULL, pd.text_ok ? pd.text.n : 0);
	if (rs->status == 201)
		rs->status = 200;
out:
	salus_fhir_patched_release(&pd);
	json_decref(patch);
	return rs->status;
}

/* ---- bundles ---------------------------------------------------------- */

static int add_url_encoded(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		    c == '.' || c == '_' || c == '~' || c == ':' || c == '|' || c == ',' || c == '$')
			rc = salus_buf_addc(b, (char)c);
		else
			rc = salus_buf_addf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return rc;
}

/* A link URL: base/path?params (excluding paging params) plus extra. */
static int link_url(struct salus_buf *u, const struct salus_fhir_req *rq, const char *path, const char *extra)
{
	int rc = salus_buf_addf(u, "%s%s", rq->base, path);
	char sep = '?';
	for (size_t i = 0; i < rq->nparams && !rc; i++) {
		const char *n = rq->params[i].name;
		if (!strcmp(n, "_cursor") || !strcmp(n, "_snapshot") || !strcmp(n, "_after"))
			continue;
		rc = salus_buf_addc(u, sep);
		sep = '&';
		if (!rc)
			rc = add_url_encoded(u, n);
		if (!rc)
			rc = salus_buf_addc(u, '=');
		if (!rc)
			rc = add_url_encoded(u, rq->params[i].value);
	}
	if (!rc && extra)
		rc = salus_buf_addf(u, "%c%s", sep, extra);
	return rc;
}

static int add_link(struct salus_buf *b, const char *rel, const struct salus_fhir_req *rq, const char *path,
		    const char *extra, int first)
{
	struct salus_buf u;
	salus_buf_init(&u, SALUS_MAX_URL * 4);
	int rc = link_url(&u, rq, path, extra);
	if (!rc)
		rc = salus_buf_addf(b, "%s{\"relation\":\"%s\",\"url\":", first ? "" : ",", rel);
	if (!rc)
		rc = salus_json_add_str(b, u.p, u.n);
	if (!rc)
		rc = salus_buf_addc(b, '}');
	salus_buf_release(&u);
	return rc;
}

struct page {
	struct salus_buf *b;
	const struct salus_fhir_req *rq;
	int n;             /* entries written */
	int64_t last_seq;  /* of the last entry */
	char last_id[SALUS_MAX_ID + 1];
	int history;       /* history entries (request/response) vs searchset */
	int limit;         /* entries wanted; one more row only sets `more` */
	int more;          /* a row beyond the limit exists: there is a next page */
	/* history under a restricting policy (fhir/access.h): versions the caller may not see are skipped */
	const struct salus_policy *policy;
	struct salus_store *st;
	enum salus_policy_letter letter;
	long seen;         /* rows the store gave, skipped ones included */
	int64_t seen_seq;  /* seq of the last of them */
	int vrc;           /* an error of the visibility check */
};
#define HISTORY_BATCH 200  /* rows read per round of a restricted history */
#define PAGE_STOP 1        /* add_entry's "stop, page full" (positive: never an error code) */

static int add_entry(void *ctx, const struct salus_resource *r)
{
	struct page *pg = ctx;
	struct salus_buf *b = pg->b;
	pg->seen++;
	pg->seen_seq = r->seq;
	if (pg->policy) {
		bool ok = false;
		/* tombstones carry no content to judge: left out of a restricted history */
		if (!r->deleted && (pg->vrc = salus_fhir_access_visible_res(pg->st, pg->policy, pg->letter, r, &ok)))
			return pg->vrc;
		if (!ok)
			return 0;
	}
	if (pg->n == pg->limit) {
		pg->more = 1;
		return PAGE_STOP;
	}
	int rc = salus_buf_addf(b, "%s{\"fullUrl\":\"%s/%s/%s\"", pg->n ? "," : "", pg->rq->base, r->type, r->id);
	if (!rc && !r->deleted) {
		rc = salus_buf_adds(b, ",\"resource\":");
		if (!rc)
			rc = salus_buf_add(b, r->json, r->len);
	}
	if (!rc && pg->history) {
		char when[SALUS_INSTANT_LEN];
		salus_instant_format(r->updated_ms, when);
		const char *method = r->deleted ? "DELETE" : r->version == 1 ? "POST" : "PUT";
		const char *status = r->deleted ? "204" : r->version == 1 ? "201" : "200";
		if (r->version == 1 && !r->deleted)
			rc = salus_buf_addf(b, ",\"request\":{\"method\":\"POST\",\"url\":\"%s\"}", r->type);
		else
			rc = salus_buf_addf(b, ",\"request\":{\"method\":\"%s\",\"url\":\"%s/%s\"}", method, r->type,
					    r->id);
		if (!rc)
			rc = salus_buf_addf(b,
					    ",\"response\":{\"status\":\"%s\",\"etag\":\"W/\\\"%ld\\\"\",\"lastModified\":\"%s\"}",
					    status, r->version, when);
	} else if (!rc) {
		rc = salus_buf_adds(b, ",\"search\":{\"mode\":\"match\"}");
	}
	if (!rc)
		rc = salus_buf_addc(b, '}');
	if (rc)
		return rc;
	pg->n++;
	pg->last_seq = r->seq;
	snprintf(pg->last_id, sizeof pg->last_id, "%s", r->id);
	return 0;
}

static int parse_count(const char *v, int *count)
{
	long c;
	if (salus_parse_long((struct salus_slice){v, strlen(v)}, 0, SALUS_MAX_COUNT, &c))
		return SALUS_EINVALID;
	*count = (int)c;
	return 0;
}

static int parse_seq(const char *v, int64_t *out)
{
	long c;
	if (salus_parse_long((struct salus_slice){v, strlen(v)}, 1, 1L << 62, &c))
		return SALUS_EINVALID;
	*out = c;
	return 0;
}

static int do_history(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct salus_history_q q = {.count = SALUS_DEFAULT_COUNT};
	q.type = rq->type[0] ? rq->type : NULL;
	q.id = rq->id[0] ? rq->id : NULL;
	for (size_t i = 0; i < rq->nparams; i++) {
		const char *n = rq->params[i].name, *v = rq->params[i].value;
		if (!strcmp(n, "_count")) {
			if (parse_count(v, &q.count))
				return fail(rs, SALUS_EINVALID, "_count must be an integer from 0 to 1000", NULL);
		} else if (!strcmp(n, "_since")) {
			if (salus_instant_parse(v, strlen(v), &q.since_ms))
				return fail(rs, SALUS_EINVALID, "_since must be a FHIR instant", NULL);
		} else if (!strcmp(n, "_cursor")) {
			if (parse_seq(v, &q.before_seq))
				return fail(rs, SALUS_EINVALID, "bad paging cursor", NULL);
		} else if (!strcmp(n, "_snapshot")) {
			if (parse_seq(v, &q.at_most_seq))
				return fail(rs, SALUS_EINVALID, "bad paging snapshot", NULL);
		} else {
			return fail(rs, SALUS_EINVALID, "unsupported parameter for _history", NULL);
		}
	}
	if (!q.at_most_seq) {
		int rc = salus_store_last_seq(st, &q.at_most_seq);
		if (rc)
			return fail(rs, rc, NULL, NULL);
	}
	long total = 0;
	bool restricted = salus_fhir_access_restricted(rq->policy);
	int rc = restricted ? 0 : salus_store_history_count(st, &q, &total);
	if (rc)
		return fail(rs, rc, NULL, NULL);
	char path[SALUS_MAX_TYPE + SALUS_MAX_ID + 32];
	if (q.id)
		snprintf(path, sizeof path, "/%s/%s/_history", rq->type, rq->id);
	else if (q.type)
		snprintf(path, sizeof path, "/%s/_history", rq->type);
	else
		snprintf(path, sizeof path, "/_history");

	struct salus_buf *b = &rs->body;
	salus_buf_reset(b);
	/* a restricted history has no total: counting the visible versions would mean reading them all */
	rc = restricted ? salus_buf_adds(b, "{\"resourceType\":\"Bundle\",\"type\":\"history\",\"link\":[")
			: salus_buf_addf(b, "{\"resourceType\":\"Bundle\",\"type\":\"history\",\"total\":%ld,\"link\":[",
					 total);
	if (!rc)
		rc = add_link(b, "self", rq, path, NULL, 1);
	/* entries go to a second buffer so the next link (which needs the last seq) precedes them */
	struct salus_buf entries;
	salus_buf_init(&entries, OUT_MAX);
	struct page pg = {.b = &entries, .rq = rq, .history = 1, .limit = q.count};
	if (restricted) {
		pg.policy = rq->policy;
		pg.st = st;
		pg.letter = q.id ? SALUS_POLICY_R : SALUS_POLICY_S;
	}
	if (!rc && q.count > 0 && restricted) {
		/* versions the caller may not see are skipped, so rows are read in batches
		 * until the page is full (and one more visible row exists) or none are left */
		for (;;) {
			long before = pg.seen;
			q.count = HISTORY_BATCH;
			rc = salus_store_history(st, &q, add_entry, &pg);
			if (rc == PAGE_STOP || rc || pg.seen - before < HISTORY_BATCH)
				break;
			q.before_seq = pg.seen_seq;
		}
	} else if (!rc && q.count > 0) {
		q.count++; /* one extra row tells whether a next page exists */
		rc = salus_store_history(st, &q, add_entry, &pg);
	}
	if (rc == PAGE_STOP)
		rc = 0;
	if (!rc && pg.more) {
		char extra[96];
		snprintf(extra, sizeof extra, "_snapshot=%lld&_cursor=%lld", (long long)q.at_most_seq,
			 (long long)pg.last_seq);
		rc = add_link(b, "next", rq, path, extra, 0);
	}
	if (!rc) /* no "entry" at all when there is none: FHIR JSON has no empty arrays */
		rc = salus_buf_adds(b, entries.n ? "],\"entry\":[" : "]");
	if (!rc)
		rc = salus_buf_add(b, entries.p, entries.n);
	if (!rc)
		rc = salus_buf_adds(b, entries.n ? "]}" : "}");
	salus_buf_release(&entries);
	if (rc)
		return fail(rs, rc, NULL, NULL);
	rs->status = 200;
	return 200;
}

/* Patient/X/AuditEvent: AuditEvent is in the Patient compartment through its `patient` parameter
 * (compartmentdefinition-patient), so the search is AuditEvent?patient=X&... on the audit log. */
static int audit_compartment(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct salus_fhir_req a = *rq;
	struct salus_param *p = salus_calloc(rq->nparams + 1, sizeof *p);
	char name[] = "patient";
	int rc;

	if (!p)
		return fail(rs, SALUS_ENOMEM, NULL, NULL);
	if (rq->nparams)
		memcpy(p, rq->params, rq->nparams * sizeof *p);
	p[rq->nparams] = (struct salus_param){.name = name, .value = a.id};
	snprintf(a.type, sizeof a.type, "AuditEvent");
	a.ctype[0] = 0;
	a.op = SALUS_FHIR_SEARCH_TYPE;
	a.params = p;
	a.nparams = rq->nparams + 1;
	rc = salus_fhir_handle(st, &a, rs);
	salus_free(p);
	return rc;
}

int salus_fhir_handle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
#ifdef SALUS_BENCH_NO_INDEX
	salus_fhir_search_attach_owner(st); /* BENCHMARK-ONLY build: record keys, no search rows */
#else
	salus_fhir_search_attach(st); /* writes are indexed for search (fhir/search.h) */
#endif
	if (rq->op == SALUS_FHIR_SEARCH_COMPARTMENT && !strcmp(rq->ctype, "AuditEvent"))
		return audit_compartment(st, rq, rs);
	if (!strcmp(rq->type, "AuditEvent") && rq->op != SALUS_FHIR_VALIDATE) {
		/* the audit log is searched apart from the resource index: no guards there, so a
		 * compartment- or query-restricted grant of AuditEvent is refused, never widened */
		static const enum salus_policy_letter letter[] = {
			[SALUS_ACCESS_C] = SALUS_POLICY_C, [SALUS_ACCESS_R] = SALUS_POLICY_R,
			[SALUS_ACCESS_U] = SALUS_POLICY_U, [SALUS_ACCESS_D] = SALUS_POLICY_D,
			[SALUS_ACCESS_S] = SALUS_POLICY_S,
		};
		if (rq->policy) {
			struct salus_policy_rule ar = salus_policy_rule(rq->policy, "AuditEvent",
									  letter[salus_fhir_op_access(rq->op)]);
			if (ar.compartment || ar.query)
				return fail(rs, SALUS_EFORBIDDEN, "the audit trail is not available to patient-context or "
								  "restricted tokens", NULL);
		}
		return salus_fhir_audit_handle(st, rq, rs); /* from the audit log; writes → 405 */
	}
	switch (rq->op) {
	case SALUS_FHIR_CAPABILITIES: {
		salus_buf_reset(&rs->body);
		int rc = salus_fhir_capability(&rs->body, rq->base);
		if (rc)
			return fail(rs, rc, NULL, NULL);
		rs->status = 200;
		return 200;
	}
	case SALUS_FHIR_READ:
	case SALUS_FHIR_VREAD: return do_read(st, rq, rs);
	case SALUS_FHIR_CREATE: return do_create(st, rq, rs);
	case SALUS_FHIR_UPDATE: return do_update(st, rq, rs);
	case SALUS_FHIR_DELETE: return do_delete(st, rq, rs);
	case SALUS_FHIR_HISTORY_INSTANCE:
	case SALUS_FHIR_HISTORY_TYPE:
	case SALUS_FHIR_HISTORY_SYSTEM: return do_history(st, rq, rs);
	case SALUS_FHIR_SEARCH_TYPE:
	case SALUS_FHIR_SEARCH_SYSTEM:
	case SALUS_FHIR_SEARCH_COMPARTMENT:
	case SALUS_FHIR_EVERYTHING: return salus_fhir_search(st, rq, rs);
	case SALUS_FHIR_BUNDLE: return salus_fhir_bundle(st, rq, rs);
	case SALUS_FHIR_VALIDATE: /* $validate: no store access (docs/validation.md) */
		rs->status = salus_fhir_validate_op(rq->type, rq->id[0] ? rq->id : NULL, rq->body, rq->body_len, &rs->body);
		return rs->status;
	default: break;
	}
	/* PUT/PATCH/DELETE on a type without criteria is not an interaction */
	if ((rq->op == SALUS_FHIR_COND_UPDATE || rq->op == SALUS_FHIR_COND_DELETE || rq->op == SALUS_FHIR_COND_PATCH) &&
	    rq->nparams == 0)
		return fail(rs, SALUS_EMETHOD, "PUT, PATCH and DELETE on a type need conditional criteria", NULL);
	switch (rq->op) {
	case SALUS_FHIR_PATCH:
	case SALUS_FHIR_COND_PATCH: return do_patch(st, rq, rs);
	case SALUS_FHIR_COND_UPDATE: return do_cond_update(st, rq, rs);
	case SALUS_FHIR_COND_DELETE: return do_cond_delete(st, rq, rs);
	default: break;
	}
	return fail(rs, SALUS_EINTERNAL, NULL, NULL);
}
