/*
 * store_audit_ix.c — searching the audit trail (store.h, "searching the audit
 * trail"; docs/audit.md): a lazily filled index over audit_log, queries over
 * it, and retention pruning.
 *
 * The append path (store_sqlite.c) never touches these tables.  Before a
 * query, salus_store_audit_ix_update reads the events after the high-water
 * mark (max(idx) of audit_ix) on a reader connection, parses each as a FHIR
 * AuditEvent in the caller's thread, and hands the rows to the writer as one
 * job per chunk of IX_CHUNK events; the job re-reads the mark under the write
 * lock and skips what a concurrent caller indexed first, so two queries racing
 * to index the same events write them once.  All SQL binds its values.
 */
#include "store/store_int.h"
#include "store/store_sqlite_int.h"

#include <jansson.h>
#include <sqlite3.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "store/audit_codec.h"

#define IX_CHUNK 500     /* events per indexing job (bounds the writer time taken from appends) */
#define PRUNE_CHUNK 1000 /* events per pruning job */
#define MAX_SQL 16384    /* a compiled query */
#define MAX_BINDS 400    /* bound values of a query */

enum { K_PATIENT = 1, K_AGENT_REF, K_AGENT_ID, K_ENTITY, K_TYPE, K_SUBTYPE, K_ADDRESS };

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS audit_ix(idx INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, action TEXT,"
	" outcome TEXT, pruned INTEGER NOT NULL DEFAULT 0);"
	"CREATE INDEX IF NOT EXISTS audit_ix_ts ON audit_ix(ts_ms, idx);"
	"CREATE TABLE IF NOT EXISTS audit_ix_val(k INTEGER NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL,"
	" idx INTEGER NOT NULL, PRIMARY KEY(k, b, a, idx)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS audit_ix_val_idx ON audit_ix_val(idx);";

static bool is_sqlite(struct salus_store *s)
{
	return s && s->ops == &salus_store_sqlite_ops;
}

/* ---- extraction: one event's rows ---------------------------------------------------------- */

struct val {
	int k;
	char *a, *b; /* owned */
};

struct ev {
	int64_t idx, ts_ms;
	bool pruned;
	char *action, *outcome; /* owned, may be NULL */
	struct val *v;
	size_t nv, cap;
};

struct batch {
	struct ev *e;
	size_t n, cap;
	int64_t mark;     /* high-water mark read with the events (-1: nothing indexed) */
	bool need_schema; /* the tables did not exist yet */
	int err;
};

static void ev_release(struct ev *e)
{
	for (size_t i = 0; i < e->nv; i++) {
		salus_free(e->v[i].a);
		salus_free(e->v[i].b);
	}
	salus_free(e->v);
	salus_free(e->action);
	salus_free(e->outcome);
}

static void batch_release(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		ev_release(&b->e[i]);
	salus_free(b->e);
	memset(b, 0, sizeof *b);
}

static int ev_add(struct ev *e, int k, const char *a, size_t an, const char *b, size_t bn)
{
	if (!bn || bn > 1024 || an > 1024)
		return SALUS_OK; /* nothing to find it by, or not an identifier */
	for (size_t i = 0; i < e->nv; i++)
		if (e->v[i].k == k && strlen(e->v[i].a) == an && !memcmp(e->v[i].a, a, an) &&
		    strlen(e->v[i].b) == bn && !memcmp(e->v[i].b, b, bn))
			return SALUS_OK;
	if (e->nv == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 16;
		struct val *v = salus_realloc(e->v, cap * sizeof *v);
		if (!v)
			return SALUS_ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	struct val *v = &e->v[e->nv];
	v->k = k;
	v->a = salus_strndup(a ? a : "", an);
	v->b = salus_strndup(b, bn);
	if (!v->a || !v->b) {
		salus_free(v->a);
		salus_free(v->b);
		return SALUS_ENOMEM;
	}
	e->nv++;
	return SALUS_OK;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* A reference "Type/id", "Type/id/_history/v" or "http://host/base/Type/id[/_history/v]"
 * as (type, id); false when it is none of those. */
static bool split_ref(const char *ref, struct salus_slice *type, struct salus_slice *id)
{
	const char *seg[64];
	size_t len[64], n = 0;
	const char *p = ref;
	if (!ref || !*ref || *ref == '#' || !strncmp(ref, "urn:", 4))
		return false;
	while (*p && n < 64) {
		const char *e = strchr(p, '/');
		size_t k = e ? (size_t)(e - p) : strlen(p);
		seg[n] = p;
		len[n++] = k;
		p += k;
		if (*p == '/')
			p++;
	}
	if (n >= 4 && len[n - 2] == 8 && !memcmp(seg[n - 2], "_history", 8))
		n -= 2;
	if (n < 2 || !len[n - 1] || !len[n - 2] || seg[n - 2][0] < 'A' || seg[n - 2][0] > 'Z')
		return false;
	*type = (struct salus_slice){seg[n - 2], len[n - 2]};
	*id = (struct salus_slice){seg[n - 1], len[n - 1]};
	return true;
}

static int add_ref(struct ev *e, int k, const char *ref)
{
	struct salus_slice t, id;
	int rc;
	if (!split_ref(ref, &t, &id))
		return SALUS_OK;
	if ((rc = ev_add(e, k, t.p, t.n, id.p, id.n)))
		return rc;
	if (salus_slice_eq(t, "Patient"))
		return ev_add(e, K_PATIENT, "", 0, id.p, id.n);
	return SALUS_OK;
}

static int add_coding(struct ev *e, int k, json_t *c)
{
	const char *sys = jstr(c, "system"), *code = jstr(c, "code");
	if (!code)
		return SALUS_OK;
	return ev_add(e, k, sys ? sys : "", sys ? strlen(sys) : 0, code, strlen(code));
}

/* The rows of one event text (a FHIR R4 AuditEvent).  Text that does not
 * parse is indexed by its time alone. */
static int extract(struct ev *e, const char *text, size_t n)
{
	json_t *ev = json_loadb(text, n, 0, NULL), *x;
	size_t i;
	int rc = SALUS_OK;
	if (!ev)
		return SALUS_OK;
	const char *s;
	if ((s = jstr(ev, "action")) && !(e->action = salus_strdup(s)))
		rc = SALUS_ENOMEM;
	if (!rc && (s = jstr(ev, "outcome")) && !(e->outcome = salus_strdup(s)))
		rc = SALUS_ENOMEM;
	if (!rc)
		rc = add_coding(e, K_TYPE, json_object_get(ev, "type"));
	json_array_foreach(json_object_get(ev, "subtype"), i, x) {
		if (!rc)
			rc = add_coding(e, K_SUBTYPE, x);
	}
	json_array_foreach(json_object_get(ev, "agent"), i, x) {
		json_t *who = json_object_get(x, "who"), *id = json_object_get(who, "identifier");
		const char *sys = jstr(id, "system"), *val = jstr(id, "value"), *addr;
		if (!rc)
			rc = add_ref(e, K_AGENT_REF, jstr(who, "reference"));
		if (!rc && val)
			rc = ev_add(e, K_AGENT_ID, sys ? sys : "", sys ? strlen(sys) : 0, val, strlen(val));
		if (!rc && (addr = jstr(json_object_get(x, "network"), "address")))
			rc = ev_add(e, K_ADDRESS, "", 0, addr, strlen(addr));
	}
	json_array_foreach(json_object_get(ev, "entity"), i, x) {
		if (!rc)
			rc = add_ref(e, K_ENTITY, jstr(json_object_get(x, "what"), "reference"));
	}
	json_decref(ev);
	return rc;
}

/* ---- indexing -------------------------------------------------------------------------------- */

/* Reader: the high-water mark (-1 and need_schema when the tables are missing). */
static int rd_mark(sqlite3 *db, struct batch *b)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(idx), -1) FROM audit_ix", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		/* no such table: nothing indexed yet (any other failure shows again below) */
		b->mark = -1;
		b->need_schema = true;
		return SALUS_OK;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		b->mark = sqlite3_column_int64(st, 0);
	rc = rc == SQLITE_ROW ? SALUS_OK : salus_sq_map_rc(sqlite3_finalize(st));
	sqlite3_finalize(st);
	return rc;
}

static int rd_chunk(void *ctx, sqlite3 *db)
{
	struct batch *b = ctx;
	struct salus_buf text;
	sqlite3_stmt *st = NULL;
	int rc;
	if ((rc = rd_mark(db, b)))
		return rc;
	salus_buf_init(&text, SALUS_MAX_AUDIT_EVENT);
	rc = sqlite3_prepare_v2(db, "SELECT idx, ts_ms, event FROM audit_log WHERE idx > ?1 ORDER BY idx LIMIT ?2", -1,
				&st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return salus_sq_map_rc(rc);
	}
	sqlite3_bind_int64(st, 1, b->mark);
	sqlite3_bind_int(st, 2, IX_CHUNK);
	if (!(b->e = salus_calloc(IX_CHUNK, sizeof *b->e))) {
		sqlite3_finalize(st);
		return SALUS_ENOMEM;
	}
	b->cap = IX_CHUNK;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct ev *e = &b->e[b->n++];
		e->idx = sqlite3_column_int64(st, 0);
		e->ts_ms = sqlite3_column_int64(st, 1);
		if (sqlite3_column_type(st, 2) == SQLITE_NULL) {
			e->pruned = true;
			continue;
		}
		const void *v = sqlite3_column_blob(st, 2);
		size_t vn = (size_t)sqlite3_column_bytes(st, 2);
		if (!v && vn) {
			rc = SQLITE_NOMEM;
			break;
		}
		/* the stored form (audit_codec.h); a row that does not decode is indexed as itself */
		int drc = salus_auc_decode(v ? v : "", vn, &text);
		if (drc == SALUS_ENOMEM || (drc && salus_auc_is_encoded(v, vn))) {
			if (drc == SALUS_ENOMEM) {
				rc = SQLITE_NOMEM;
				break;
			}
			continue; /* damaged: nothing to index (verify names it) */
		}
		if ((rc = extract(e, text.p, text.n))) {
			sqlite3_finalize(st);
			salus_buf_release(&text);
			return rc;
		}
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : salus_sq_map_rc(rc);
	sqlite3_finalize(st);
	salus_buf_release(&text);
	return rc;
}

static int step_once(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
		sqlite3_reset(st);
		return SALUS_OK;
	}
	sqlite3_reset(st);
	return salus_sq_map_rc(rc);
}

/* Writer: the chunk's rows, skipping events a concurrent caller indexed first. */
static int wr_chunk(void *ctx, sqlite3 *db)
{
	struct batch *b = ctx;
	sqlite3_stmt *mk = NULL, *ix = NULL, *val = NULL;
	int64_t mark = -1;
	int rc;

	if (b->need_schema && (rc = salus_sq_map_rc(sqlite3_exec(db, schema_sql, NULL, NULL, NULL))))
		return rc;
	if ((rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(idx), -1) FROM audit_ix", -1, &mk, NULL)) ||
	    (rc = sqlite3_prepare_v2(db, "INSERT INTO audit_ix(idx, ts_ms, action, outcome, pruned) VALUES(?1,?2,?3,?4,?5)",
				     -1, &ix, NULL)) ||
	    (rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO audit_ix_val(k, a, b, idx) VALUES(?1,?2,?3,?4)", -1, &val,
				     NULL))) {
		rc = salus_sq_map_rc(rc);
		goto out;
	}
	if ((rc = sqlite3_step(mk)) != SQLITE_ROW) {
		rc = salus_sq_map_rc(rc);
		goto out;
	}
	mark = sqlite3_column_int64(mk, 0);
	rc = SALUS_OK;
	for (size_t i = 0; i < b->n && !rc; i++) {
		struct ev *e = &b->e[i];
		if (e->idx <= mark)
			continue;
		sqlite3_bind_int64(ix, 1, e->idx);
		sqlite3_bind_int64(ix, 2, e->ts_ms);
		sqlite3_bind_text(ix, 3, e->action, -1, SQLITE_STATIC);
		sqlite3_bind_text(ix, 4, e->outcome, -1, SQLITE_STATIC);
		sqlite3_bind_int(ix, 5, e->pruned);
		rc = step_once(ix);
		for (size_t j = 0; j < e->nv && !rc; j++) {
			sqlite3_bind_int(val, 1, e->v[j].k);
			sqlite3_bind_text(val, 2, e->v[j].a, -1, SQLITE_STATIC);
			sqlite3_bind_text(val, 3, e->v[j].b, -1, SQLITE_STATIC);
			sqlite3_bind_int64(val, 4, e->idx);
			rc = step_once(val);
		}
	}
out:
	sqlite3_finalize(mk);
	sqlite3_finalize(ix);
	sqlite3_finalize(val);
	return rc;
}

static int rd_size(void *ctx, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, "SELECT coalesce(max(idx), -1) FROM audit_log", -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		*(int64_t *)ctx = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	return salus_sq_map_rc(rc);
}

int salus_store_audit_ix_update(struct salus_store *s, int64_t *indexed)
{
	int64_t last = -1, done = 0;
	int rc;

	if (!is_sqlite(s))
		return SALUS_EINVALID;
	if ((rc = salus_store_audit_settle(s)) || (rc = salus_sq_reader_call(s, rd_size, &last)))
		return rc;
	for (;;) {
		struct batch b = {0};
		if ((rc = salus_sq_reader_call(s, rd_chunk, &b))) {
			batch_release(&b);
			return rc;
		}
		if (b.n == 0 && !b.need_schema) {
			batch_release(&b);
			break;
		}
		rc = salus_sq_audit_writer_call(s, wr_chunk, &b);
		int64_t top = b.n ? b.e[b.n - 1].idx : -1;
		done += (int64_t)b.n;
		batch_release(&b);
		if (rc)
			return rc;
		/* events appended while we index are for the next query */
		if (top < 0 || top >= last)
			break;
	}
	if (indexed)
		*indexed = done;
	return SALUS_OK;
}

/* ---- queries --------------------------------------------------------------------------------- */

struct qc {
	struct salus_buf sql;
	struct bind {
		bool is_int;
		int64_t i;
		const char *t;
	} b[MAX_BINDS];
	int nb;
	int err;
};

static void q_text(struct qc *c, const char *t)
{
	if (c->nb == MAX_BINDS) {
		c->err = SALUS_EINVALID;
		return;
	}
	c->b[c->nb++] = (struct bind){.t = t};
}

static void q_int(struct qc *c, int64_t v)
{
	if (c->nb == MAX_BINDS) {
		c->err = SALUS_EINVALID;
		return;
	}
	c->b[c->nb++] = (struct bind){.is_int = true, .i = v};
}

static void q_sql(struct qc *c, const char *s)
{
	if (!c->err)
		c->err = salus_buf_adds(&c->sql, s);
}

/* One value of a clause on audit_ix_val, as a subquery term. */
static void val_term(struct qc *c, int kind, const struct salus_aq_val *v)
{
	int k = kind == SALUS_AQ_PATIENT   ? K_PATIENT
		: kind == SALUS_AQ_ENTITY  ? K_ENTITY
		: kind == SALUS_AQ_TYPE    ? K_TYPE
		: kind == SALUS_AQ_SUBTYPE ? K_SUBTYPE
		: kind == SALUS_AQ_ADDRESS ? K_ADDRESS
		: v->ident                 ? K_AGENT_ID
					   : K_AGENT_REF;
	if (kind == SALUS_AQ_AGENT && !v->ident && !v->sys) {
		q_sql(c, "(k IN (2, 3) AND b = ?)");
		q_text(c, v->code ? v->code : "");
		return;
	}
	q_sql(c, "(k = ?");
	q_int(c, k);
	if (v->code) {
		q_sql(c, " AND b = ?");
		q_text(c, v->code);
	}
	if (v->sys && k != K_PATIENT && k != K_ADDRESS) {
		q_sql(c, " AND a = ?");
		q_text(c, v->sys);
	}
	q_sql(c, ")");
}

static void date_term(struct qc *c, const struct salus_aq_val *v, int64_t now)
{
	int64_t lo = v->lo, hi = v->hi;
	switch (v->op) {
	case SALUS_SQ_NE:
		q_sql(c, "(x.ts_ms < ? OR x.ts_ms > ?)");
		q_int(c, lo);
		q_int(c, hi);
		return;
	case SALUS_SQ_GT:
	case SALUS_SQ_SA:
		q_sql(c, "x.ts_ms > ?");
		q_int(c, hi);
		return;
	case SALUS_SQ_LT:
	case SALUS_SQ_EB:
		q_sql(c, "x.ts_ms < ?");
		q_int(c, lo);
		return;
	case SALUS_SQ_GE:
		q_sql(c, "x.ts_ms >= ?");
		q_int(c, lo);
		return;
	case SALUS_SQ_LE:
		q_sql(c, "x.ts_ms <= ?");
		q_int(c, hi);
		return;
	case SALUS_SQ_AP: {
		/* FHIR leaves "approximately" to the server: 10% of the distance to now, either side */
		int64_t d = (now > lo ? now - lo : lo - now) / 10;
		lo = lo > INT64_MIN + d ? lo - d : INT64_MIN;
		hi = hi < INT64_MAX - d ? hi + d : INT64_MAX;
		break;
	}
	default:
		break;
	}
	q_sql(c, "(x.ts_ms >= ? AND x.ts_ms <= ?)");
	q_int(c, lo);
	q_int(c, hi);
}

/* The WHERE clause of a query (after "WHERE x.pruned = 0"). */
static void where(struct qc *c, const struct salus_aq *q)
{
	int64_t now = q->now_ms ? q->now_ms : salus_now_ms();
	for (size_t i = 0; i < q->nclauses; i++) {
		const struct salus_aq_clause *cl = &q->clauses[i];
		if (!cl->nvals) {
			c->err = SALUS_EINVALID;
			return;
		}
		q_sql(c, " AND (");
		for (size_t j = 0; j < cl->nvals; j++) {
			const struct salus_aq_val *v = &cl->vals[j];
			if (j)
				q_sql(c, " OR ");
			switch (cl->kind) {
			case SALUS_AQ_ACTION:
			case SALUS_AQ_OUTCOME:
				q_sql(c, cl->kind == SALUS_AQ_ACTION ? "x.action = ?" : "x.outcome = ?");
				q_text(c, v->code ? v->code : "");
				break;
			case SALUS_AQ_DATE: date_term(c, v, now); break;
			case SALUS_AQ_ID:
				q_sql(c, "x.idx = ?");
				q_int(c, v->lo);
				break;
			case SALUS_AQ_PATIENT:
			case SALUS_AQ_AGENT:
			case SALUS_AQ_ENTITY:
			case SALUS_AQ_TYPE:
			case SALUS_AQ_SUBTYPE:
			case SALUS_AQ_ADDRESS:
				q_sql(c, "x.idx IN (SELECT idx FROM audit_ix_val WHERE ");
				val_term(c, cl->kind, v);
				q_sql(c, ")");
				break;
			default: c->err = SALUS_EINVALID; return;
			}
		}
		q_sql(c, ")");
	}
}

static int compile(struct qc *c, const struct salus_aq *q, bool count)
{
	salus_buf_init(&c->sql, MAX_SQL);
	c->nb = 0;
	c->err = 0;
	q_sql(c, count ? "SELECT count(*) FROM audit_ix x WHERE x.pruned = 0"
		       : "SELECT x.idx, x.ts_ms, l.event FROM audit_ix x JOIN audit_log l ON l.idx = x.idx"
			 " WHERE x.pruned = 0 AND l.event IS NOT NULL");
	where(c, q);
	if (!count) {
		if (q->after) {
			q_sql(c, q->oldest_first ? " AND (x.ts_ms, x.idx) > (?, ?)" : " AND (x.ts_ms, x.idx) < (?, ?)");
			q_int(c, q->after_ts);
			q_int(c, q->after_idx);
		}
		q_sql(c, q->oldest_first ? " ORDER BY x.ts_ms, x.idx LIMIT ?" : " ORDER BY x.ts_ms DESC, x.idx DESC LIMIT ?");
		q_int(c, q->count);
	}
	if (c->err)
		salus_buf_release(&c->sql);
	return c->err;
}

struct qrun {
	struct qc c;
	bool count;
	salus_aq_cb cb;
	void *ctx;
	long total;
};

static int rd_query(void *ctx, sqlite3 *db)
{
	struct qrun *r = ctx;
	struct salus_buf text;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, r->c.sql.p, (int)r->c.sql.n, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		/* the index tables do not exist yet: nothing was ever indexed */
		if (sqlite3_errcode(db) == SQLITE_ERROR)
			return SALUS_OK;
		return salus_sq_map_rc(rc);
	}
	salus_buf_init(&text, SALUS_MAX_AUDIT_EVENT);
	for (int i = 0; i < r->c.nb; i++) {
		if (r->c.b[i].is_int)
			sqlite3_bind_int64(st, i + 1, r->c.b[i].i);
		else
			sqlite3_bind_text(st, i + 1, r->c.b[i].t, -1, SQLITE_STATIC);
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (r->count) {
			r->total = (long)sqlite3_column_int64(st, 0);
			continue;
		}
		struct salus_aq_hit h = {.index = sqlite3_column_int64(st, 0), .ts_ms = sqlite3_column_int64(st, 1)};
		const void *v = sqlite3_column_blob(st, 2);
		size_t vn = (size_t)sqlite3_column_bytes(st, 2);
		if (!v && vn) {
			rc = SQLITE_NOMEM;
			break;
		}
		int crc = salus_auc_decode(v ? v : "", vn, &text);
		if (crc == SALUS_ENOMEM) {
			rc = SQLITE_NOMEM;
			break;
		}
		if (crc) { /* damaged beyond decoding: the stored bytes (verify names the index) */
			h.event = v;
			h.event_n = vn;
		} else {
			h.event = text.p;
			h.event_n = text.n;
		}
		crc = r->cb(r->ctx, &h);
		if (crc) {
			sqlite3_finalize(st);
			salus_buf_release(&text);
			return crc;
		}
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : salus_sq_map_rc(rc);
	sqlite3_finalize(st);
	salus_buf_release(&text);
	return rc;
}

int salus_store_audit_query(struct salus_store *s, const struct salus_aq *q, salus_aq_cb cb, void *ctx)
{
	struct qrun r = {.cb = cb, .ctx = ctx};
	int rc;
	if (!is_sqlite(s) || !q || !cb || q->count < 0 || (q->nclauses && !q->clauses))
		return SALUS_EINVALID;
	if ((rc = salus_store_audit_settle(s)) || (rc = compile(&r.c, q, false)))
		return rc;
	rc = salus_sq_reader_call(s, rd_query, &r);
	salus_buf_release(&r.c.sql);
	return rc;
}

int salus_store_audit_query_count(struct salus_store *s, const struct salus_aq *q, long *total)
{
	struct qrun r = {.count = true};
	int rc;
	if (!is_sqlite(s) || !q || !total || (q->nclauses && !q->clauses))
		return SALUS_EINVALID;
	if ((rc = salus_store_audit_settle(s)) || (rc = compile(&r.c, q, true)))
		return rc;
	rc = salus_sq_reader_call(s, rd_query, &r);
	salus_buf_release(&r.c.sql);
	if (!rc)
		*total = r.total;
	return rc;
}

/* ---- retention ------------------------------------------------------------------------------- */

struct prune {
	int64_t before_ms, below;
	int64_t n; /* pruned by the last job */
};

static int wr_prune(void *ctx, sqlite3 *db)
{
	struct prune *p = ctx;
	sqlite3_stmt *sel = NULL, *upd = NULL, *ix = NULL, *del = NULL;
	int64_t ids[PRUNE_CHUNK];
	size_t n = 0;
	bool have_ix;
	int rc;

	p->n = 0;
	have_ix = sqlite3_prepare_v2(db, "UPDATE audit_ix SET pruned = 1 WHERE idx = ?1", -1, &ix, NULL) == SQLITE_OK &&
		  sqlite3_prepare_v2(db, "DELETE FROM audit_ix_val WHERE idx = ?1", -1, &del, NULL) == SQLITE_OK;
	if ((rc = sqlite3_prepare_v2(db,
				     "SELECT idx FROM audit_log WHERE idx < ?1 AND ts_ms < ?2 AND event IS NOT NULL"
				     " ORDER BY idx LIMIT ?3",
				     -1, &sel, NULL)) ||
	    (rc = sqlite3_prepare_v2(db, "UPDATE audit_log SET event = NULL WHERE idx = ?1", -1, &upd, NULL))) {
		rc = salus_sq_map_rc(rc);
		goto out;
	}
	sqlite3_bind_int64(sel, 1, p->below);
	sqlite3_bind_int64(sel, 2, p->before_ms);
	sqlite3_bind_int(sel, 3, PRUNE_CHUNK);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW && n < PRUNE_CHUNK)
		ids[n++] = sqlite3_column_int64(sel, 0);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = salus_sq_map_rc(rc);
		goto out;
	}
	sqlite3_reset(sel);
	/* the pages that held the texts are zeroed, not just freed */
	if ((rc = salus_sq_map_rc(sqlite3_exec(db, "PRAGMA secure_delete=ON", NULL, NULL, NULL))))
		goto out;
	rc = SALUS_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		sqlite3_bind_int64(upd, 1, ids[i]);
		rc = step_once(upd);
		if (!rc && have_ix) {
			sqlite3_bind_int64(ix, 1, ids[i]);
			sqlite3_bind_int64(del, 1, ids[i]);
			if (!(rc = step_once(ix)))
				rc = step_once(del);
		}
	}
	sqlite3_exec(db, "PRAGMA secure_delete=OFF", NULL, NULL, NULL);
	if (!rc)
		p->n = (int64_t)n;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_finalize(ix);
	sqlite3_finalize(del);
	return rc;
}

int salus_store_audit_prune(struct salus_store *s, int64_t before_ms, int64_t below_index, int64_t *pruned)
{
	struct prune p = {.before_ms = before_ms, .below = below_index};
	int64_t total = 0;
	int rc;
	if (!is_sqlite(s) || below_index < 0)
		return SALUS_EINVALID;
	do {
		if ((rc = salus_sq_audit_writer_call(s, wr_prune, &p)))
			return rc;
		total += p.n;
	} while (p.n == PRUNE_CHUNK);
	if (pruned)
		*pruned = total;
	return SALUS_OK;
}
