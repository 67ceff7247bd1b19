/*
 * audit_search.c — AuditEvent read and search answered from the audit log
 * (see audit_search.h).  Parameters follow the R4 AuditEvent search
 * parameters: date is `recorded` (the event's time in the log), patient any
 * reference to a Patient among the agents and entities, agent the agent's
 * who (reference or identifier), entity entity.what.  Paging is keyset
 * (a cursor of the last entry's time and index), never an offset.
 */
#include "fhir/audit_search.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/cond.h"
#include "fhir/json_out.h"
#include "fhir/search.h"

#define OUT_MAX SALUS_MAX_BODY

bool salus_fhir_audit_event_op_ok(enum salus_fhir_op op, const char **why)
{
	switch (op) {
	case SALUS_FHIR_READ:
	case SALUS_FHIR_VREAD:
	case SALUS_FHIR_SEARCH_TYPE:
	case SALUS_FHIR_VALIDATE: return true;
	case SALUS_FHIR_HISTORY_INSTANCE:
	case SALUS_FHIR_HISTORY_TYPE:
		*why = "AuditEvents never change and have no history: use read or search";
		return false;
	default:
		*why = "AuditEvents are read-only: the audit trail is append-only and written by the server";
		return false;
	}
}

/* ---- parsing ---------------------------------------------------------------------------------- */

static const char *keep(struct salus_fhir_audit_q *q, const char *p, size_t n)
{
	char *s = salus_strndup(p, n);
	if (!s)
		return NULL;
	q->strs[q->nstrs++] = s;
	return s;
}

void salus_fhir_audit_q_release(struct salus_fhir_audit_q *q)
{
	for (size_t i = 0; i < q->nstrs; i++)
		salus_free(q->strs[i]);
	salus_free(q->strs);
	salus_free(q->cl);
	salus_free(q->vals);
	memset(q, 0, sizeof *q);
}

static const struct {
	const char *name;
	int kind;
} params[] = {
	{"patient", SALUS_AQ_PATIENT}, {"agent", SALUS_AQ_AGENT},     {"entity", SALUS_AQ_ENTITY},
	{"type", SALUS_AQ_TYPE},       {"subtype", SALUS_AQ_SUBTYPE}, {"action", SALUS_AQ_ACTION},
	{"outcome", SALUS_AQ_OUTCOME}, {"address", SALUS_AQ_ADDRESS}, {"date", SALUS_AQ_DATE},
	{"_id", SALUS_AQ_ID},
};

/* Split name[:modifier]; the kind or 0. */
static int kind_of(const char *name, const char **mod)
{
	const char *c = strchr(name, ':');
	size_t n = c ? (size_t)(c - name) : strlen(name);
	*mod = c ? c + 1 : NULL;
	for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
		if (strlen(params[i].name) == n && !memcmp(params[i].name, name, n))
			return params[i].kind;
	return 0;
}

/* The last "Type/id" of a reference (URL, relative, with or without _history). */
static bool last_ref(const char *v, size_t n, struct salus_slice *type, struct salus_slice *id)
{
	struct salus_slice seg[8];
	size_t k = 0;
	const char *p = v, *end = v + n;
	while (p < end) {
		const char *e = memchr(p, '/', (size_t)(end - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
		if (k == 8)
			memmove(seg, seg + 1, 7 * sizeof seg[0]), k = 7;
		seg[k++] = (struct salus_slice){p, len};
		p += len + (e ? 1 : 0);
	}
	if (k >= 4 && salus_slice_eq(seg[k - 2], "_history"))
		k -= 2;
	if (k < 2 || !seg[k - 1].n || !seg[k - 2].n)
		return false;
	*type = seg[k - 2];
	*id = seg[k - 1];
	return true;
}

static int parse_date(const char *v, size_t n, struct salus_aq_val *out)
{
	static const struct {
		const char *p;
		int op;
	} pre[] = {{"eq", SALUS_SQ_EQ}, {"ne", SALUS_SQ_NE}, {"gt", SALUS_SQ_GT}, {"lt", SALUS_SQ_LT}, {"ge", SALUS_SQ_GE},
		   {"le", SALUS_SQ_LE}, {"sa", SALUS_SQ_SA}, {"eb", SALUS_SQ_EB}, {"ap", SALUS_SQ_AP}};
	out->op = SALUS_SQ_EQ;
	if (n > 2 && v[0] >= 'a' && v[0] <= 'z')
		for (size_t i = 0; i < sizeof pre / sizeof pre[0]; i++)
			if (!memcmp(v, pre[i].p, 2)) {
				out->op = pre[i].op;
				v += 2;
				n -= 2;
				break;
			}
	return salus_fhir_date_range(v, n, &out->lo, &out->hi);
}

/* One comma-separated value of a parameter into *v. */
static int parse_value(struct salus_fhir_audit_q *q, int kind, const char *mod, const char *v, size_t n,
		       struct salus_aq_val *out, const char **why)
{
	struct salus_slice t, id;
	const char *bar = memchr(v, '|', n);
	memset(out, 0, sizeof *out);
	if (!n) {
		*why = "empty search value";
		return SALUS_EINVALID;
	}
	switch (kind) {
	case SALUS_AQ_DATE:
		if (parse_date(v, n, out)) {
			*why = "date must be a FHIR date, dateTime or instant with an optional prefix (eq, ge, lt, ...)";
			return SALUS_EINVALID;
		}
		return SALUS_OK;
	case SALUS_AQ_ID: {
		long l;
		if (salus_parse_long((struct salus_slice){v, n}, 0, INT64_MAX, &l)) {
			*why = "an AuditEvent id is its log index (a decimal number)";
			return SALUS_EINVALID;
		}
		out->lo = l;
		return SALUS_OK;
	}
	case SALUS_AQ_PATIENT:
		if (memchr(v, '/', n)) {
			if (!last_ref(v, n, &t, &id) || !salus_slice_eq(t, "Patient")) {
				*why = "patient must be a Patient reference or id";
				return SALUS_EINVALID;
			}
			v = id.p;
			n = id.n;
		}
		out->code = keep(q, v, n);
		break;
	case SALUS_AQ_AGENT:
		if ((mod && !strcmp(mod, "identifier")) || bar) {
			out->ident = true;
			if (bar) { /* system|value ("|value": no system) */
				size_t sn = (size_t)(bar - v);
				if (!(out->sys = keep(q, v, sn)))
					return SALUS_ENOMEM;
				v = bar + 1;
				n -= sn + 1;
				if (!n) {
					*why = "agent identifier needs a value";
					return SALUS_EINVALID;
				}
			}
			out->code = keep(q, v, n);
		} else if (memchr(v, '/', n)) {
			if (!last_ref(v, n, &t, &id)) {
				*why = "agent must be a reference (Type/id), an identifier (system|value) or an id";
				return SALUS_EINVALID;
			}
			if (!(out->sys = keep(q, t.p, t.n)))
				return SALUS_ENOMEM;
			out->code = keep(q, id.p, id.n);
		} else {
			out->code = keep(q, v, n);
		}
		break;
	case SALUS_AQ_ENTITY:
		if (memchr(v, '/', n)) {
			if (!last_ref(v, n, &t, &id)) {
				*why = "entity must be a reference (Type/id) or an id";
				return SALUS_EINVALID;
			}
			if (!(out->sys = keep(q, t.p, t.n)))
				return SALUS_ENOMEM;
			out->code = keep(q, id.p, id.n);
		} else {
			out->code = keep(q, v, n);
		}
		break;
	case SALUS_AQ_TYPE:
	case SALUS_AQ_SUBTYPE:
		if (bar) {
			size_t sn = (size_t)(bar - v), cn = n - sn - 1;
			if (!(out->sys = keep(q, v, sn)))
				return SALUS_ENOMEM;
			if (!cn)
				return SALUS_OK; /* system|: any code of that system */
			out->code = keep(q, bar + 1, cn);
		} else {
			out->code = keep(q, v, n);
		}
		break;
	case SALUS_AQ_ACTION:
	case SALUS_AQ_OUTCOME:
		if (bar) {
			n -= (size_t)(bar + 1 - v);
			v = bar + 1;
		}
		out->code = keep(q, v, n);
		break;
	default: /* SALUS_AQ_ADDRESS */
		out->code = keep(q, v, n);
		break;
	}
	return out->code ? SALUS_OK : SALUS_ENOMEM;
}

static int parse_cursor(const char *v, struct salus_aq *q)
{
	const char *dot = strchr(v, '.');
	long ts, idx;
	if (!dot || salus_parse_long((struct salus_slice){v, (size_t)(dot - v)}, 0, INT64_MAX, &ts) ||
	    salus_parse_long((struct salus_slice){dot + 1, strlen(dot + 1)}, 0, INT64_MAX, &idx))
		return SALUS_EINVALID;
	q->after = true;
	q->after_ts = ts;
	q->after_idx = idx;
	return SALUS_OK;
}

int salus_fhir_audit_q_parse(struct salus_fhir_audit_q *q, const struct salus_param *p, size_t n, const char **why)
{
	size_t nv = 0, ns = 0;
	memset(q, 0, sizeof *q);
	q->q.count = SALUS_DEFAULT_COUNT;
	*why = NULL;
	for (size_t i = 0; i < n; i++) {
		size_t commas = 1;
		for (const char *c = p[i].value; *c; c++)
			commas += *c == ',';
		nv += commas;
		ns += 2 * commas;
	}
	if (!(q->cl = salus_calloc(n + 1, sizeof *q->cl)) || !(q->vals = salus_calloc(nv + 1, sizeof *q->vals)) ||
	    !(q->strs = salus_calloc(ns + 1, sizeof *q->strs)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *name = p[i].name, *val = p[i].value, *mod;
		int kind = kind_of(name, &mod), rc;
		if (!strcmp(name, "_count")) {
			long c;
			if (salus_parse_long((struct salus_slice){val, strlen(val)}, 0, SALUS_MAX_COUNT, &c)) {
				*why = "_count must be an integer from 0 to 1000";
				return SALUS_EINVALID;
			}
			q->q.count = (int)c;
			continue;
		}
		if (!strcmp(name, "_sort")) {
			if (!strcmp(val, "date") || !strcmp(val, "_lastUpdated"))
				q->q.oldest_first = true;
			else if (!strcmp(val, "-date") || !strcmp(val, "-_lastUpdated"))
				q->q.oldest_first = false;
			else {
				*why = "AuditEvent can be sorted by date or -date only";
				return SALUS_EINVALID;
			}
			continue;
		}
		if (!strcmp(name, "_cursor")) {
			if (parse_cursor(val, &q->q)) {
				*why = "bad paging cursor";
				return SALUS_EINVALID;
			}
			continue;
		}
		if (!strcmp(name, "_summary")) {
			if (strcmp(val, "count") && strcmp(val, "false")) {
				*why = "_summary on AuditEvent supports count and false";
				return SALUS_EINVALID;
			}
			q->summary_count = !strcmp(val, "count");
			continue;
		}
		if (!strcmp(name, "_total"))
			continue; /* the total is always given */
		if (!kind) {
			*why = "unsupported AuditEvent search parameter (patient, agent, entity, type, subtype, action, "
			       "outcome, address, date, _id, _count, _sort)";
			return SALUS_EINVALID;
		}
		if (mod && !(kind == SALUS_AQ_AGENT && !strcmp(mod, "identifier")) &&
		    !(kind == SALUS_AQ_PATIENT && !strcmp(mod, "Patient"))) {
			*why = "unsupported modifier on an AuditEvent search parameter";
			return SALUS_EINVALID;
		}
		struct salus_aq_clause *cl = &q->cl[q->ncl++];
		cl->kind = kind;
		cl->vals = &q->vals[q->nvals];
		for (const char *s = val;;) {
			const char *e = strchr(s, ',');
			size_t len = e ? (size_t)(e - s) : strlen(s);
			if ((rc = parse_value(q, kind, mod, s, len, &q->vals[q->nvals], why)))
				return rc;
			q->nvals++;
			cl->nvals++;
			if (!e)
				break;
			s = e + 1;
		}
	}
	q->q.clauses = q->cl;
	q->q.nclauses = q->ncl;
	return SALUS_OK;
}

/* ---- answers ---------------------------------------------------------------------------------- */

static int fail(struct salus_fhir_resp *rs, int rc, const char *why)
{
	rs->status = salus_fhir_outcome(&rs->body, rc, why, NULL);
	return rs->status;
}

static int add_enc(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~:|,$/", c))
			rc = salus_buf_addc(b, (char)c);
		else
			rc = salus_buf_addf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return rc;
}

/* {"relation":rel,"url":base/AuditEvent?params(without the cursor)[&_cursor=...]} */
static int add_link(struct salus_buf *b, const char *rel, const char *base, const struct salus_param *p, size_t n,
		    const char *cursor)
{
	struct salus_buf u;
	char sep = '?';
	int rc;
	salus_buf_init(&u, SALUS_MAX_URL * 4);
	rc = salus_buf_addf(&u, "%s/AuditEvent", base);
	for (size_t i = 0; i < n && !rc; i++) {
		if (!strcmp(p[i].name, "_cursor"))
			continue;
		if (!(rc = salus_buf_addc(&u, sep)) && !(rc = add_enc(&u, p[i].name)) && !(rc = salus_buf_addc(&u, '=')))
			rc = add_enc(&u, p[i].value);
		sep = '&';
	}
	if (!rc && cursor)
		rc = salus_buf_addf(&u, "%c_cursor=%s", sep, cursor);
	if (!rc)
		rc = salus_buf_addf(b, "{\"relation\":\"%s\",\"url\":", rel);
	if (!rc)
		rc = salus_json_add_str(b, u.p, u.n);
	if (!rc)
		rc = salus_buf_addc(b, '}');
	salus_buf_release(&u);
	return rc;
}

struct page {
	struct salus_buf *b;
	const char *base;
	int n, limit;
	bool more;
	int64_t last_ts, last_idx;
};
#define PAGE_FULL 1

static int add_entry(void *ctx, const struct salus_aq_hit *h)
{
	struct page *pg = ctx;
	int rc;
	if (pg->n == pg->limit) {
		pg->more = true;
		return PAGE_FULL;
	}
	if ((rc = salus_buf_addf(pg->b, "%s{\"fullUrl\":\"%s/AuditEvent/%" PRId64 "\",\"resource\":", pg->n ? "," : "",
				 pg->base, h->index)) ||
	    (rc = salus_buf_add(pg->b, h->event, h->event_n)) ||
	    (rc = salus_buf_adds(pg->b, ",\"search\":{\"mode\":\"match\"}}")))
		return rc;
	pg->n++;
	pg->last_ts = h->ts_ms;
	pg->last_idx = h->index;
	return SALUS_OK;
}

static int do_search(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct salus_fhir_audit_q q;
	struct salus_query form = {.n = 0};
	struct salus_param *all = NULL;
	const struct salus_param *p = rq->params;
	size_t np = rq->nparams;
	struct salus_buf entries;
	const char *why = NULL;
	long total = 0;
	int rc;

	salus_buf_init(&entries, OUT_MAX);
	if (rq->body && rq->body_len) { /* POST _search: the form body's parameters too */
		if ((rc = salus_query_parse(&form, rq->body, rq->body_len))) {
			salus_query_release(&form);
			return fail(rs, rc, "invalid form body");
		}
		if (!(all = salus_calloc(np + form.n + 1, sizeof *all))) {
			salus_query_release(&form);
			return fail(rs, SALUS_ENOMEM, NULL);
		}
		memcpy(all, p, np * sizeof *all);
		memcpy(all + np, form.p, form.n * sizeof *all);
		p = all;
		np += form.n;
	}
	if ((rc = salus_fhir_audit_q_parse(&q, p, np, &why))) {
		fail(rs, rc, why);
		goto out;
	}
	if ((rc = salus_store_audit_ix_update(st, NULL)) || (rc = salus_store_audit_query_count(st, &q.q, &total))) {
		fail(rs, rc, NULL);
		goto out;
	}
	struct salus_buf *b = &rs->body;
	salus_buf_reset(b);
	struct page pg = {.b = &entries, .base = rq->base, .limit = q.summary_count ? 0 : q.q.count};
	if (pg.limit > 0) {
		struct salus_aq one = q.q;
		one.count = pg.limit + 1; /* one more row tells whether there is a next page */
		rc = salus_store_audit_query(st, &one, add_entry, &pg);
		if (rc == PAGE_FULL)
			rc = SALUS_OK;
		if (rc) {
			fail(rs, rc, rc == SALUS_ETOOLARGE ? "the page is too large: use a smaller _count" : NULL);
			goto out;
		}
	}
	rc = salus_buf_addf(b, "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":%ld,\"link\":[", total);
	if (!rc)
		rc = add_link(b, "self", rq->base, p, np, NULL);
	if (!rc && pg.more) {
		char cur[48];
		snprintf(cur, sizeof cur, "%" PRId64 ".%" PRId64, pg.last_ts, pg.last_idx);
		if (!(rc = salus_buf_addc(b, ',')))
			rc = add_link(b, "next", rq->base, p, np, cur);
	}
	if (!rc) /* no "entry" at all when there is none: FHIR JSON has no empty arrays */
		rc = salus_buf_adds(b, entries.n ? "],\"entry\":[" : "]");
	if (!rc)
		rc = salus_buf_add(b, entries.p, entries.n);
	if (!rc)
		rc = salus_buf_adds(b, entries.n ? "]}" : "}");
	if (rc)
		fail(rs, rc, NULL);
	else
		rs->status = 200;
out:
	salus_fhir_audit_q_release(&q);
	salus_free(all);
	salus_query_release(&form);
	salus_buf_release(&entries);
	return rs->status;
}

struct one {
	struct salus_fhir_resp *rs;
	int64_t want;
	bool found, pruned;
	int64_t ts_ms;
};

static int one_cb(void *ctx, const struct salus_audit_row *r)
{
	struct one *o = ctx;
	if (r->index != o->want)
		return SALUS_OK;
	o->found = true;
	o->ts_ms = r->ts_ms;
	if (!r->event) {
		o->pruned = true;
		return SALUS_OK;
	}
	salus_buf_reset(&o->rs->body);
	return salus_buf_add(&o->rs->body, r->event, r->event_n);
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

static int do_read(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	struct one o = {.rs = rs};
	long idx;
	int rc;
	if (salus_parse_long((struct salus_slice){rq->id, strlen(rq->id)}, 0, INT64_MAX, &idx) ||
	    (rq->id[0] == '0' && rq->id[1]))
		return fail(rs, SALUS_ENOTFOUND, "no such AuditEvent (its id is its log index)");
	if (rq->op == SALUS_FHIR_VREAD && rq->vid != 1)
		return fail(rs, SALUS_ENOTFOUND, "no such AuditEvent version (events have only version 1)");
	o.want = idx;
	if ((rc = salus_store_audit_scan(st, idx, 1, one_cb, &o)))
		return fail(rs, rc, NULL);
	if (!o.found)
		return fail(rs, SALUS_ENOTFOUND, "no such AuditEvent (its id is its log index)");
	if (o.pruned)
		return fail(rs, SALUS_EGONE, "this AuditEvent was pruned by the retention policy (its hash is kept)");
	snprintf(rs->etag, sizeof rs->etag, "W/\"1\"");
	http_date(o.ts_ms, rs->last_modified);
	rs->status = 200;
	return 200;
}

int salus_fhir_audit_handle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs)
{
	const char *why = NULL;
	if (!salus_fhir_audit_event_op_ok(rq->op, &why))
		return fail(rs, SALUS_EMETHOD, why);
	switch (rq->op) {
	case SALUS_FHIR_READ:
	case SALUS_FHIR_VREAD: return do_read(st, rq, rs);
	case SALUS_FHIR_SEARCH_TYPE: return do_search(st, rq, rs);
	default: return fail(rs, SALUS_EINTERNAL, NULL);
	}
}
