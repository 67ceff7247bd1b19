/*
 * store_index.c — the SQLite search index: tables, the write path (rows
 * replaced in the writer's group-commit transaction) and the compiler from a
 * parsed search (struct salus_sq, store.h) to one SQL query, with keyset
 * paging.  See store_index_int.h for the tables and docs/search.md for the
 * semantics.
 *
 * SQL text is built only from fixed fragments, table/alias names chosen
 * here and `?` placeholders: every value (parameter ids included) is bound.
 *
 * Query shape: the most selective clause (an _id, a local reference, a code...)
 * drives — `r.rid IN (SELECT rid FROM <table> WHERE p=? AND <value>)`, an
 * index range — and the others are correlated EXISTS probes on the (rid, p)
 * indexes, so no path scans a whole table.  Sort keys are correlated min/max
 * subqueries (ascending: the lowest value, descending: the highest; dates by
 * the start resp. end of their range), missing values last; the row number
 * breaks ties.  A cursor is the sort-key values and row number of the last row
 * of a page; the next page continues strictly after it.
 */
#include "store/store_index_int.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#define SQL_MAX (256u * 1024)  /* one generated statement */
#define MAX_BINDS 30000        /* below SQLite's default of 32766 host parameters */
#define MAX_DEPTH 8            /* chains and _has nested in one another */
#define CURSOR_MAX 2048
#define MAX_INNER 64  /* clauses of one level checked inside its driving subquery */
#define STMT_TAG "/*sx*/"      /* leads the text of a search statement kept for reuse (prepare) */
#define STMT_CACHE 24          /* search statements kept per connection */
#define STMT_CACHE_SQL 16384   /* longest statement text kept */

static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS sx_res(rid INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT NULL,"
	" updated_ms INTEGER NOT NULL);"
	"CREATE UNIQUE INDEX IF NOT EXISTS sx_res_id ON sx_res(type, id);"
	"CREATE INDEX IF NOT EXISTS sx_res_upd ON sx_res(type, updated_ms);"
	"CREATE TABLE IF NOT EXISTS sx_str(p INTEGER NOT NULL, norm TEXT NOT NULL, rid INTEGER NOT NULL,"
	" g INTEGER NOT NULL, raw TEXT NOT NULL, PRIMARY KEY(p, norm, rid, g, raw)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_str_rid ON sx_str(rid, p);"
	"CREATE TABLE IF NOT EXISTS sx_tok(p INTEGER NOT NULL, code TEXT NOT NULL, sys TEXT NOT NULL,"
	" rid INTEGER NOT NULL, g INTEGER NOT NULL, PRIMARY KEY(p, code, sys, rid, g)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_tok_rid ON sx_tok(rid, p);"
	"CREATE TABLE IF NOT EXISTS sx_date(p INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,"
	" rid INTEGER NOT NULL, g INTEGER NOT NULL, PRIMARY KEY(p, lo, hi, rid, g)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_date_rid ON sx_date(rid, p);"
	"CREATE TABLE IF NOT EXISTS sx_num(p INTEGER NOT NULL, v REAL NOT NULL, rid INTEGER NOT NULL,"
	" g INTEGER NOT NULL, sys TEXT NOT NULL, code TEXT NOT NULL, unit TEXT NOT NULL, vlo REAL NOT NULL,"
	" vhi REAL NOT NULL, PRIMARY KEY(p, v, rid, g, sys, code, unit)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_num_rid ON sx_num(rid, p);"
	"CREATE TABLE IF NOT EXISTS sx_ref(p INTEGER NOT NULL, tid TEXT NOT NULL, ttype TEXT NOT NULL,"
	" rid INTEGER NOT NULL, g INTEGER NOT NULL, url TEXT NOT NULL, ver TEXT NOT NULL, isys TEXT NOT NULL,"
	" ival TEXT NOT NULL, PRIMARY KEY(p, tid, ttype, rid, g, url, ver, isys, ival)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_ref_rid ON sx_ref(rid, p);"
	"CREATE TABLE IF NOT EXISTS sx_uri(p INTEGER NOT NULL, v TEXT NOT NULL, rid INTEGER NOT NULL,"
	" g INTEGER NOT NULL, PRIMARY KEY(p, v, rid, g)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS sx_uri_rid ON sx_uri(rid, p);"
	"CREATE VIRTUAL TABLE IF NOT EXISTS sx_fts USING fts5(narr, body,"
	" tokenize='unicode61 remove_diacritics 2');";

int salus_sx_schema(sqlite3 *db)
{
	int rc = sqlite3_exec(db, schema_sql, NULL, NULL, NULL);
	if (rc == SQLITE_NOMEM)
		return SALUS_ENOMEM;
	return rc == SQLITE_OK ? SALUS_OK : SALUS_EIO;
}

static int map(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return SALUS_OK;
	case SQLITE_NOMEM:
		return SALUS_ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SALUS_EBUSY;
	case SQLITE_TOOBIG:
		return SALUS_ETOOLARGE;
	case SQLITE_ERROR:
		return SALUS_EINVALID; /* a malformed generated query (e.g. an FTS5 expression) */
	default:
		return SALUS_EIO;
	}
}

/* ---- the write path ------------------------------------------------------ */

enum {
	W_FIND,
	W_RES_INS,
	W_RES_UPD,
	W_RES_DEL,
	W_DEL_STR,
	W_DEL_TOK,
	W_DEL_DATE,
	W_DEL_NUM,
	W_DEL_REF,
	W_DEL_URI,
	W_DEL_FTS,
	W_INS_FTS,
	W__COUNT
};

static const char *const w_sql[W__COUNT] = {
	[W_FIND] = "SELECT rid FROM sx_res WHERE type=?1 AND id=?2",
	[W_RES_INS] = "INSERT INTO sx_res(type, id, updated_ms) VALUES(?1, ?2, ?3)",
	[W_RES_UPD] = "UPDATE sx_res SET updated_ms=?2 WHERE rid=?1",
	[W_RES_DEL] = "DELETE FROM sx_res WHERE rid=?1",
	[W_DEL_STR] = "DELETE FROM sx_str WHERE rid=?1",
	[W_DEL_TOK] = "DELETE FROM sx_tok WHERE rid=?1",
	[W_DEL_DATE] = "DELETE FROM sx_date WHERE rid=?1",
	[W_DEL_NUM] = "DELETE FROM sx_num WHERE rid=?1",
	[W_DEL_REF] = "DELETE FROM sx_ref WHERE rid=?1",
	[W_DEL_URI] = "DELETE FROM sx_uri WHERE rid=?1",
	[W_DEL_FTS] = "DELETE FROM sx_fts WHERE rowid=?1",
	[W_INS_FTS] = "INSERT INTO sx_fts(rowid, narr, body) VALUES(?1, ?2, ?3)",
};

/* A full-text row change held back until salus_sx_fts_flush: FTS5 flushes
 * its pending terms into a new segment at every SAVEPOINT and RELEASE, so
 * writing them inside each job (one savepoint per job) made one tiny segment,
 * and merges, per single-resource write.  Texts are borrowed from the
 * caller's salus_ix, which stays valid until its job is committed. */
struct fts_op {
	int64_t rid;
	const char *text, *content; /* both NULL: delete the row */
	uint64_t seq;               /* its place among all held-back operations */
};

/* Search-index rows are held back the same way and written at the flush,
 * each table's rows of the whole group in primary-key order (consecutive
 * inserts land on the same b-tree pages).  A resource's rows deleted in the
 * group (an update, a delete) are a kill: rows of that rid held before it
 * are not written.  Rows are borrowed from the caller's salus_ix. */
struct held_row {
	const struct salus_ix_row *r;
	int64_t rid;
	uint64_t seq;
	uint64_t key; /* row_key: the primary key's leading bits, compared before the key itself */
};
struct kill_op {
	int64_t rid;
	uint64_t seq;
};

/* Index rows are inserted W_MULTI at a time per table, one multi-row INSERT
 * (`VALUES (...),(...)`) per chunk: one statement execution (cursor opens,
 * halt, reset) per chunk instead of per row. */
#define W_MULTI 8
enum { T_STR, T_TOK, T_DATE, T_NUM, T_REF, T_URI, T__COUNT };
static const struct {
	const char *head; /* the statement up to VALUES */
	int ncol;         /* placeholders per row */
} w_tab[T__COUNT] = {
	[T_STR] = {"INSERT OR IGNORE INTO sx_str(p, norm, rid, g, raw) VALUES", 5},
	[T_TOK] = {"INSERT OR IGNORE INTO sx_tok(p, code, sys, rid, g) VALUES", 5},
	[T_DATE] = {"INSERT OR IGNORE INTO sx_date(p, lo, hi, rid, g) VALUES", 5},
	[T_NUM] = {"INSERT OR IGNORE INTO sx_num(p, v, rid, g, sys, code, unit, vlo, vhi) VALUES", 9},
	[T_REF] = {"INSERT OR IGNORE INTO sx_ref(p, tid, ttype, rid, g, url, ver, isys, ival) VALUES", 9},
	[T_URI] = {"INSERT OR IGNORE INTO sx_uri(p, v, rid, g) VALUES", 4},
};

struct salus_sx_w {
	sqlite3 *db;
	sqlite3_stmt *st[W__COUNT];
	sqlite3_stmt *multi[T__COUNT][W_MULTI]; /* [table][rows - 1], prepared on first use */
	struct fts_op *fts; /* held back, in order */
	size_t nfts, capfts;
	struct held_row *held; /* held back, in order */
	size_t nheld, capheld;
	struct kill_op *kills; /* in order */
	size_t nkills, capkills;
	uint64_t seq; /* the next held-back operation's */
};

int salus_sx_w_new(sqlite3 *db, struct salus_sx_w **out)
{
	struct salus_sx_w *w = salus_calloc(1, sizeof *w);
	if (!w)
		return SALUS_ENOMEM;
	w->db = db;
	*out = w;
	return SALUS_OK;
}

void salus_sx_w_free(struct salus_sx_w *w)
{
	if (!w)
		return;
	for (int i = 0; i < W__COUNT; i++)
		sqlite3_finalize(w->st[i]);
	for (int t = 0; t < T__COUNT; t++)
		for (int m = 0; m < W_MULTI; m++)
			sqlite3_finalize(w->multi[t][m]);
	salus_free(w->fts);
	salus_free(w->held);
	salus_free(w->kills);
	salus_free(w);
}

/* Room for one more element in held-back array a (n used of cap). */
#define HOLD_ROOM(a, n, cap)                                                                 \
	do {                                                                                 \
		if ((n) == (cap)) {                                                          \
			size_t c_ = (cap) ? 2 * (cap) : 64;                                  \
			__typeof__(a) na_ = salus_realloc((a), c_ * sizeof *(a));            \
			if (!na_)                                                            \
				return SALUS_ENOMEM;                                         \
			(a) = na_;                                                           \
			(cap) = c_;                                                          \
		}                                                                            \
	} while (0)

static int fts_hold(struct salus_sx_w *w, int64_t rid, const char *text, const char *content)
{
	HOLD_ROOM(w->fts, w->nfts, w->capfts);
	w->fts[w->nfts++] = (struct fts_op){.rid = rid, .text = text, .content = content, .seq = w->seq++};
	return SALUS_OK;
}

static int kill_hold(struct salus_sx_w *w, int64_t rid)
{
	HOLD_ROOM(w->kills, w->nkills, w->capkills);
	w->kills[w->nkills++] = (struct kill_op){.rid = rid, .seq = w->seq++};
	return SALUS_OK;
}

/* The first four bytes of s as a big-endian number (strcmp's order on them). */
static uint32_t str4(const char *s)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = v << 8 | (s && *s ? (unsigned char)*s++ : 0u);
	return v;
}

static int table_of_kind(int kind);

/* A row's sort key: the parameter id, then 32 bits of the first primary-key
 * column after it, in an order that never contradicts row_pk_cmp's (x's key
 * below y's implies x's row sorts first), so most comparisons of a group's
 * rows end on one integer compare. */
static uint64_t row_key(const struct salus_ix_row *r)
{
	uint32_t lead = 0;
	switch (table_of_kind(r->kind)) {
	case T_STR:
	case T_URI: lead = str4(r->a); break;
	case T_TOK:
	case T_REF: lead = str4(r->b); break;
	case T_DATE: lead = (uint32_t)(((uint64_t)r->lo ^ (1ull << 63)) >> 32); break;
	case T_NUM: {
		/* doubles in numeric order as unsigned integers (NaN: row_pk_cmp puts them last) */
		uint64_t u;
		memcpy(&u, &r->v, sizeof u);
		u = isnan(r->v) ? UINT64_MAX : (u >> 63) ? ~u : u | (1ull << 63);
		if (r->v == 0)
			u = 1ull << 63; /* -0.0 == 0.0 */
		lead = (uint32_t)(u >> 32);
		break;
	}
	default: break;
	}
	return (uint64_t)r->param << 32 | lead;
}

static int row_hold(struct salus_sx_w *w, int64_t rid, const struct salus_ix_row *r)
{
	HOLD_ROOM(w->held, w->nheld, w->capheld);
	w->held[w->nheld++] = (struct held_row){.r = r, .rid = rid, .seq = w->seq++, .key = row_key(r)};
	return SALUS_OK;
}

size_t salus_sx_fts_mark(const struct salus_sx_w *w)
{
	return (size_t)w->seq;
}

void salus_sx_fts_rewind(struct salus_sx_w *w, size_t mark)
{
	while (w->nfts && w->fts[w->nfts - 1].seq >= mark)
		w->nfts--;
	while (w->nheld && w->held[w->nheld - 1].seq >= mark)
		w->nheld--;
	while (w->nkills && w->kills[w->nkills - 1].seq >= mark)
		w->nkills--;
}

static int w_stmt(struct salus_sx_w *w, int id, sqlite3_stmt **out)
{
	if (!w->st[id]) {
		int rc = sqlite3_prepare_v3(w->db, w_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &w->st[id], NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(w->st[id]);
			w->st[id] = NULL;
			return map(rc);
		}
	}
	*out = w->st[id];
	return SALUS_OK;
}

static int w_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	int r2 = sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return map(rc == SQLITE_DONE || rc == SQLITE_ROW ? r2 : rc);
}

static void bind_s(sqlite3_stmt *st, int i, const char *s)
{
	sqlite3_bind_text(st, i, s ? s : "", -1, SQLITE_STATIC);
}

static int table_of_kind(int kind)
{
	switch (kind) {
	case SALUS_IX_STRING:
		return T_STR;
	case SALUS_IX_TOKEN:
		return T_TOK;
	case SALUS_IX_DATE:
		return T_DATE;
	case SALUS_IX_NUMBER:
	case SALUS_IX_QUANTITY:
		return T_NUM;
	case SALUS_IX_REFERENCE:
		return T_REF;
	case SALUS_IX_URI:
		return T_URI;
	default:
		return -1;
	}
}

/* The INSERT of m rows (1..W_MULTI) into table t. */
static int w_multi(struct salus_sx_w *w, int t, int m, sqlite3_stmt **out)
{
	sqlite3_stmt **st = &w->multi[t][m - 1];
	if (!*st) {
		char sql[512];
		size_t n = (size_t)snprintf(sql, sizeof sql, "%s", w_tab[t].head);
		for (int j = 0; j < m && n < sizeof sql; j++) {
			n += (size_t)snprintf(sql + n, sizeof sql - n, "%s(", j ? "," : "");
			for (int k = 0; k < w_tab[t].ncol && n < sizeof sql; k++)
				n += (size_t)snprintf(sql + n, sizeof sql - n, "%s?", k ? "," : "");
			if (n < sizeof sql)
				n += (size_t)snprintf(sql + n, sizeof sql - n, ")");
		}
		if (n >= sizeof sql)
			return SALUS_EINVALID; /* cannot happen with the tables above */
		int rc = sqlite3_prepare_v3(w->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(*st);
			*st = NULL;
			return map(rc);
		}
	}
	*out = *st;
	return SALUS_OK;
}

/* Bind one row's values at placeholders o+1.. (the column order of w_tab). */
static void w_bind(sqlite3_stmt *st, int o, int64_t rid, const struct salus_ix_row *r)
{
	sqlite3_bind_int64(st, o + 1, r->param);
	switch (r->kind) {
	case SALUS_IX_STRING:
		bind_s(st, o + 2, r->a);
		sqlite3_bind_int64(st, o + 3, rid);
		sqlite3_bind_int(st, o + 4, r->group);
		bind_s(st, o + 5, r->b);
		break;
	case SALUS_IX_TOKEN:
		bind_s(st, o + 2, r->b);
		bind_s(st, o + 3, r->a);
		sqlite3_bind_int64(st, o + 4, rid);
		sqlite3_bind_int(st, o + 5, r->group);
		break;
	case SALUS_IX_DATE:
		sqlite3_bind_int64(st, o + 2, r->lo);
		sqlite3_bind_int64(st, o + 3, r->hi);
		sqlite3_bind_int64(st, o + 4, rid);
		sqlite3_bind_int(st, o + 5, r->group);
		break;
	case SALUS_IX_NUMBER:
	case SALUS_IX_QUANTITY:
		sqlite3_bind_double(st, o + 2, r->v);
		sqlite3_bind_int64(st, o + 3, rid);
		sqlite3_bind_int(st, o + 4, r->group);
		bind_s(st, o + 5, r->a);
		bind_s(st, o + 6, r->b);
		bind_s(st, o + 7, r->c);
		sqlite3_bind_double(st, o + 8, r->vlo);
		sqlite3_bind_double(st, o + 9, r->vhi);
		break;
	case SALUS_IX_REFERENCE:
		bind_s(st, o + 2, r->b);
		bind_s(st, o + 3, r->a);
		sqlite3_bind_int64(st, o + 4, rid);
		sqlite3_bind_int(st, o + 5, r->group);
		bind_s(st, o + 6, r->c);
		bind_s(st, o + 7, r->d);
		bind_s(st, o + 8, r->e);
		bind_s(st, o + 9, r->f);
		break;
	case SALUS_IX_URI:
		bind_s(st, o + 2, r->a);
		sqlite3_bind_int64(st, o + 3, rid);
		sqlite3_bind_int(st, o + 4, r->group);
		break;
	}
}

/* Insert rows[0..m) (all of table t) with one statement. */
static int w_chunk(struct salus_sx_w *w, int t, const struct held_row *const *rows, int m)
{
	sqlite3_stmt *st;
	int rc = w_multi(w, t, m, &st);
	if (rc)
		return rc;
	for (int j = 0; j < m; j++)
		w_bind(st, j * w_tab[t].ncol, rows[j]->rid, rows[j]->r);
	return w_done(st);
}

static int cmp_s(const char *x, const char *y)
{
	return strcmp(x ? x : "", y ? y : "");
}

static int cmp_i(int64_t x, int64_t y)
{
	return (x > y) - (x < y);
}

static int cmp_d(double x, double y)
{
	if (isnan(x) || isnan(y))
		return isnan(x) - isnan(y);
	return (x > y) - (x < y);
}

/* Two held rows of one table in the order of its PRIMARY KEY (rid at its
 * place in it); 0: the same key, so the later is a row INSERT OR IGNORE would
 * only probe and drop. */
static int row_pk_cmp(const struct held_row *hx, const struct held_row *hy)
{
	const struct salus_ix_row *x = hx->r, *y = hy->r;
	int c;
	if ((c = cmp_i(x->param, y->param)))
		return c;
	switch (table_of_kind(x->kind)) {
	case T_STR: /* p, norm, rid, g, raw */
		if ((c = cmp_s(x->a, y->a)) || (c = cmp_i(hx->rid, hy->rid)) || (c = cmp_i(x->group, y->group)))
			return c;
		return cmp_s(x->b, y->b);
	case T_TOK: /* p, code, sys, rid, g */
		if ((c = cmp_s(x->b, y->b)) || (c = cmp_s(x->a, y->a)) || (c = cmp_i(hx->rid, hy->rid)))
			return c;
		return cmp_i(x->group, y->group);
	case T_DATE: /* p, lo, hi, rid, g */
		if ((c = cmp_i(x->lo, y->lo)) || (c = cmp_i(x->hi, y->hi)) || (c = cmp_i(hx->rid, hy->rid)))
			return c;
		return cmp_i(x->group, y->group);
	case T_NUM: /* p, v, rid, g, sys, code, unit */
		if ((c = cmp_d(x->v, y->v)) || (c = cmp_i(hx->rid, hy->rid)) || (c = cmp_i(x->group, y->group)) ||
		    (c = cmp_s(x->a, y->a)) || (c = cmp_s(x->b, y->b)))
			return c;
		return cmp_s(x->c, y->c);
	case T_REF: /* p, tid, ttype, rid, g, url, ver, isys, ival */
		if ((c = cmp_s(x->b, y->b)) || (c = cmp_s(x->a, y->a)) || (c = cmp_i(hx->rid, hy->rid)) ||
		    (c = cmp_i(x->group, y->group)) || (c = cmp_s(x->c, y->c)) || (c = cmp_s(x->d, y->d)) ||
		    (c = cmp_s(x->e, y->e)))
			return c;
		return cmp_s(x->f, y->f);
	default: /* T_URI: p, v, rid, g */
		if ((c = cmp_s(x->a, y->a)) || (c = cmp_i(hx->rid, hy->rid)))
			return c;
		return cmp_i(x->group, y->group);
	}
}

/* qsort order of held rows of one table: key, then hold order (the first of
 * equal keys first: the one INSERT OR IGNORE in hold order would have kept). */
static int held_cmp(const void *pa, const void *pb)
{
	const struct held_row *x = *(const struct held_row *const *)pa, *y = *(const struct held_row *const *)pb;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	int c = row_pk_cmp(x, y);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static int kill_cmp(const void *pa, const void *pb)
{
	const struct kill_op *x = pa, *y = pb;
	int c = cmp_i(x->rid, y->rid);
	return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

/* Was the held row's resource killed after it was held?  (kills sorted by rid, seq) */
static bool held_dead(const struct salus_sx_w *w, const struct held_row *h)
{
	size_t lo = 0, hi = w->nkills; /* first kill with rid > h->rid */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->kills[mid].rid <= h->rid)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && w->kills[lo - 1].rid == h->rid && w->kills[lo - 1].seq > h->seq;
}

/* Write the held rows: per table, the live ones in primary-key order, each key
 * once, W_MULTI per statement. */
static int rows_flush(struct salus_sx_w *w)
{
	const struct held_row **v;
	int rc = SALUS_OK;

	if (!w->nheld)
		return SALUS_OK;
	if (!(v = salus_malloc(w->nheld * sizeof *v)))
		return SALUS_ENOMEM;
	if (w->nkills > 1)
		qsort(w->kills, w->nkills, sizeof *w->kills, kill_cmp);
	for (int t = 0; t < T__COUNT && !rc; t++) {
		size_t n = 0;
		for (size_t i = 0; i < w->nheld; i++)
			if (table_of_kind(w->held[i].r->kind) == t && !held_dead(w, &w->held[i]))
				v[n++] = &w->held[i];
		if (n > 1)
			qsort(v, n, sizeof *v, held_cmp);
		const struct held_row *chunk[W_MULTI], *prev = NULL;
		int m = 0;
		for (size_t k = 0; k < n && !rc; k++) {
			if (prev && !row_pk_cmp(prev, v[k]))
				continue; /* the same key as the row before it */
			prev = v[k];
			chunk[m++] = v[k];
			if (m == W_MULTI) {
				rc = w_chunk(w, t, chunk, m);
				m = 0;
			}
		}
		if (!rc && m)
			rc = w_chunk(w, t, chunk, m);
	}
	salus_free(v);
	return rc;
}

int salus_sx_put(struct salus_sx_w *w, const char *type, const char *id, int64_t updated_ms, bool deleted,
		 bool existed, const struct salus_ix *ix)
{
	sqlite3_stmt *st;
	int64_t rid = 0;
	int rc;

	if (existed) {
		if ((rc = w_stmt(w, W_FIND, &st)))
			return rc;
		bind_s(st, 1, type);
		bind_s(st, 2, id);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			rid = sqlite3_column_int64(st, 0);
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
		sqlite3_reset(st);
		if ((rc = map(rc)))
			return rc;
	}
	if (rid) {
		if ((rc = fts_hold(w, rid, NULL, NULL)) || (rc = kill_hold(w, rid)))
			return rc;
		for (int k = W_DEL_STR; k < W_DEL_FTS; k++) {
			if ((rc = w_stmt(w, k, &st)))
				return rc;
			sqlite3_bind_int64(st, 1, rid);
			if ((rc = w_done(st)))
				return rc;
		}
		if ((rc = w_stmt(w, deleted ? W_RES_DEL : W_RES_UPD, &st)))
			return rc;
		sqlite3_bind_int64(st, 1, rid);
		if (!deleted)
			sqlite3_bind_int64(st, 2, updated_ms);
		if ((rc = w_done(st)))
			return rc;
	}
	if (deleted)
		return SALUS_OK;
	if (!rid) {
		if ((rc = w_stmt(w, W_RES_INS, &st)))
			return rc;
		bind_s(st, 1, type);
		bind_s(st, 2, id);
		sqlite3_bind_int64(st, 3, updated_ms);
		if ((rc = w_done(st)))
			return rc;
		rid = sqlite3_last_insert_rowid(w->db);
	}
	if (!ix)
		return SALUS_OK;
	for (size_t i = 0; i < ix->n; i++)
		if (table_of_kind(ix->rows[i].kind) < 0)
			return SALUS_EINVALID;
	for (size_t i = 0; i < ix->n; i++)
		if ((rc = row_hold(w, rid, &ix->rows[i])))
			return rc;
	if ((ix->text && *ix->text) || (ix->content && *ix->content))
		return fts_hold(w, rid, ix->text ? ix->text : "", ix->content ? ix->content : "");
	return SALUS_OK;
}

int salus_sx_fts_flush(struct salus_sx_w *w)
{
	sqlite3_stmt *st;
	int rc = rows_flush(w);

	w->nheld = 0;
	w->nkills = 0;
	for (size_t i = 0; i < w->nfts && !rc; i++) {
		const struct fts_op *o = &w->fts[i];
		if ((rc = w_stmt(w, o->text ? W_INS_FTS : W_DEL_FTS, &st)))
			break;
		sqlite3_bind_int64(st, 1, o->rid);
		if (o->text) {
			bind_s(st, 2, o->text);
			bind_s(st, 3, o->content);
		}
		rc = w_done(st);
	}
	w->nfts = 0;
	return rc;
}

/* ---- the query compiler -------------------------------------------------- */

enum { B_INT = 1, B_DBL, B_TEXT, B_TEXT_HI };

struct bindv {
	int t;
	int64_t i;
	double d;
	const char *s;
};

struct cq {
	struct salus_buf sql;
	struct bindv *b;
	size_t nb, cap;
	int rc;
	int alias; /* next alias number */
	int depth;
	const struct salus_sq_guard *guards; /* of the top-level query, applied at every level */
	size_t nguards;
	bool in_guard; /* compiling a guard's clauses: no guard inside a guard */
	bool bare;     /* the next driver is written as its own SELECT [DISTINCT] rid (ix_only) */
	bool pk_only;  /* ... reading its table's primary key only (NOT INDEXED: rows in rid order) */
	/* clauses of the current level compiled inside the driving subquery (rid_only) */
	const struct salus_sq_clause *const *inner;
	size_t ninner;
	struct salus_buf strs; /* owned strings for bindings (FTS expressions, cursor texts) */
	char **owned;
	size_t nowned, owned_cap;
};

static void emit(struct cq *c, const char *s)
{
	if (!c->rc)
		c->rc = salus_buf_adds(&c->sql, s);
}

static void emitf(struct cq *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* an integer in decimal, for emitf */
static int emit_int(struct salus_buf *b, long long v)
{
	char t[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		t[sizeof t - 1 - n++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		t[sizeof t - 1 - n++] = '-';
	return salus_buf_add(b, t + sizeof t - n, n);
}

/* The fragments use %s, %d and %zu only: written here with plain appends (a
 * formatted append costs more than most fragments).  Any other conversion is
 * a programmer error (SALUS_EINTERNAL). */
static void emitf(struct cq *c, const char *fmt, ...)
{
	va_list ap;
	if (c->rc)
		return;
	va_start(ap, fmt);
	int rc = 0;
	const char *p = fmt;
	while (*p && !rc) {
		const char *pc = strchr(p, '%');
		size_t lit = pc ? (size_t)(pc - p) : strlen(p);
		if (lit)
			rc = salus_buf_add(&c->sql, p, lit);
		if (!pc || rc)
			break;
		if (pc[1] == 's') {
			rc = salus_buf_adds(&c->sql, va_arg(ap, const char *));
			p = pc + 2;
		} else if (pc[1] == 'd') {
			rc = emit_int(&c->sql, va_arg(ap, int));
			p = pc + 2;
		} else if (pc[1] == 'z' && pc[2] == 'u') {
			rc = emit_int(&c->sql, (long long)va_arg(ap, size_t));
			p = pc + 3;
		} else {
			rc = SALUS_EINTERNAL;
		}
	}
	c->rc = rc;
	va_end(ap);
}

static struct bindv *bind_new(struct cq *c)
{
	if (c->rc)
		return NULL;
	if (c->nb == MAX_BINDS) {
		c->rc = SALUS_ETOOLARGE;
		return NULL;
	}
	if (c->nb == c->cap) {
		size_t n = c->cap ? c->cap * 2 : 64;
		struct bindv *nb = salus_realloc(c->b, n * sizeof *nb);
		if (!nb) {
			c->rc = SALUS_ENOMEM;
			return NULL;
		}
		c->b = nb;
		c->cap = n;
	}
	emit(c, "?");
	if (c->rc)
		return NULL;
	struct bindv *v = &c->b[c->nb++];
	memset(v, 0, sizeof *v);
	return v;
}

static void P_int(struct cq *c, int64_t i)
{
	struct bindv *v = bind_new(c);
	if (v) {
		v->t = B_INT;
		v->i = i;
	}
}

static void P_dbl(struct cq *c, double d)
{
	struct bindv *v = bind_new(c);
	if (v) {
		v->t = B_DBL;
		v->d = d;
	}
}

static void P_str(struct cq *c, const char *s)
{
	struct bindv *v = bind_new(c);
	if (v) {
		v->t = B_TEXT;
		v->s = s ? s : "";
	}
}

/* s followed by the byte 0xFF: an upper bound for every text starting with s */
static void P_str_hi(struct cq *c, const char *s)
{
	struct bindv *v = bind_new(c);
	if (v) {
		v->t = B_TEXT_HI;
		v->s = s ? s : "";
	}
}

static char *own(struct cq *c, char *s)
{
	if (!s) {
		if (!c->rc)
			c->rc = SALUS_ENOMEM;
		return NULL;
	}
	if (c->nowned == c->owned_cap) {
		size_t n = c->owned_cap ? c->owned_cap * 2 : 8;
		char **no = salus_realloc(c->owned, n * sizeof *no);
		if (!no) {
			salus_free(s);
			c->rc = SALUS_ENOMEM;
			return NULL;
		}
		c->owned = no;
		c->owned_cap = n;
	}
	c->owned[c->nowned++] = s;
	return s;
}

/* ---- derived parameters (store.h, struct salus_sq_alias) ---- */

#define ID_BITS 0x3FFFFFFFu

static _Atomic(const struct salus_sq_aliases *) aliases;

void salus_store_set_aliases(const struct salus_sq_aliases *t)
{
	atomic_store_explicit(&aliases, t, memory_order_release);
}

/* The entries of p (no flag bits) in t: the first, and their number in *n. */
static const struct salus_sq_alias *alias_of(const struct salus_sq_aliases *t, uint32_t p, size_t *n)
{
	*n = 0;
	if (!t || !t->n)
		return NULL;
	size_t lo = 0, hi = t->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (t->v[mid].param < p)
			lo = mid + 1;
		else
			hi = mid;
	}
	size_t k = lo;
	while (k < t->n && t->v[k].param == p)
		k++;
	*n = k - lo;
	return *n ? &t->v[lo] : NULL;
}

/* The target type every value of a reference clause names (Type/id, a chain
 * into Type), or NULL: a derived parameter's type restriction is then implied
 * by the values themselves and left out (the query keeps its shape). */
static const char *implied_type(const struct salus_sq_clause *cl)
{
	const char *t = NULL;
	if (cl->kind != SALUS_SQ_REFERENCE || !cl->nvals || cl->missing)
		return NULL;
	for (size_t i = 0; i < cl->nvals; i++) {
		const struct salus_sq_val *v = &cl->vals[i];
		const char *vt = v->op == SALUS_SQ_REF_LOCAL ? v->a
				 : v->op == SALUS_SQ_REF_CHAIN && v->chain ? v->chain->type
									   : NULL;
		if (!vt || (t && strcmp(t, vt)))
			return NULL;
		t = vt;
	}
	return t;
}

/* One group of ids: x.p=? or x.p IN (...). */
static void ids_in(struct cq *c, const char *x, const uint32_t *ps, size_t n)
{
	if (n == 1) {
		emitf(c, "%s.p=", x);
		P_int(c, (int64_t)ps[0]);
		return;
	}
	emitf(c, "%s.p IN (", x);
	for (size_t i = 0; i < n; i++) {
		if (i)
			emit(c, ",");
		P_int(c, (int64_t)ps[i]);
	}
	emit(c, ")");
}

/* The rows of parameters ps (flag bits included) on alias x: derived
 * parameters read their bases' rows, those restricted to a target type as
 * (x.p IN (...) AND x.ttype=?), ORed with the plain ids. */
static void param_set(struct cq *c, const char *x, const uint32_t *ps, size_t n, const char *implied)
{
	const struct salus_sq_aliases *t = atomic_load_explicit(&aliases, memory_order_acquire);
	size_t na = 0, k;
	for (size_t i = 0; i < n; i++)
		if (alias_of(t, ps[i] & ID_BITS, &k))
			na += k;
	if (!na) {
		ids_in(c, x, ps, n);
		return;
	}
	uint32_t stack[64], *ids = stack;
	const char *tstack[64], **types = tstack;
	size_t cap = n + na;
	if (cap > 64) {
		ids = salus_malloc(cap * sizeof *ids);
		types = salus_malloc(cap * sizeof *types);
		if (!ids || !types) {
			c->rc = SALUS_ENOMEM;
			goto out;
		}
	}
	/* every id to read with its type restriction (NULL: none), in order */
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		uint32_t bits = ps[i] & ~ID_BITS;
		const struct salus_sq_alias *a = alias_of(t, ps[i] & ID_BITS, &k);
		if (!a) {
			ids[m] = ps[i];
			types[m++] = NULL;
			continue;
		}
		for (size_t j = 0; j < k; j++) {
			ids[m] = a[j].base | bits;
			types[m++] = a[j].ttype && !(implied && !strcmp(implied, a[j].ttype)) ? a[j].ttype : NULL;
		}
	}
	/* groups by restriction: the unrestricted first */
	uint32_t gstack[64], *g = cap > 64 ? salus_malloc(cap * sizeof *g) : gstack;
	if (!g) {
		c->rc = SALUS_ENOMEM;
		goto out;
	}
	size_t ngroups = 0;
	for (size_t i = 0; i < m; i++) {
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = (!types[i] && !types[j]) || (types[i] && types[j] && !strcmp(types[i], types[j]));
		ngroups += !seen;
	}
	if (ngroups > 1)
		emit(c, "(");
	bool first = true;
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < m; i++) {
			if ((pass == 0) != !types[i])
				continue;
			bool seen = false;
			for (size_t j = 0; j < i && !seen; j++)
				seen = (!types[i] && !types[j]) || (types[i] && types[j] && !strcmp(types[i], types[j]));
			if (seen)
				continue;
			size_t ng = 0;
			for (size_t j = i; j < m; j++)
				if ((!types[i] && !types[j]) || (types[i] && types[j] && !strcmp(types[i], types[j])))
					g[ng++] = ids[j];
			if (!first)
				emit(c, " OR ");
			first = false;
			if (types[i])
				emit(c, "(");
			ids_in(c, x, g, ng);
			if (types[i]) {
				emitf(c, " AND %s.ttype=", x);
				P_str(c, types[i]);
				emit(c, ")");
			}
		}
	if (ngroups > 1)
		emit(c, ")");
	if (g != gstack)
		salus_free(g);
out:
	if (ids != stack)
		salus_free(ids);
	if (types != tstack)
		salus_free(types);
}

/* Is every parameter of a composite's component a component on the resource
 * itself (struct salus_sq_alias.whole)? */
static bool comp_whole(const struct salus_sq_clause *comp)
{
	const struct salus_sq_aliases *t = atomic_load_explicit(&aliases, memory_order_acquire);
	size_t k;
	for (size_t i = 0; i < comp->nparams; i++) {
		const struct salus_sq_alias *a = alias_of(t, comp->params[i] & ID_BITS, &k);
		if (!a)
			return false;
		for (size_t j = 0; j < k; j++)
			if (!a[j].whole)
				return false;
	}
	return comp->nparams > 0;
}

static void params_in(struct cq *c, const char *x, const struct salus_sq_clause *cl, uint32_t bits)
{
	(void)bits; /* param ids arrive complete (text and of-type bits included) */
	param_set(c, x, cl->params, cl->nparams, implied_type(cl));
}

static const char *table_of(int kind)
{
	switch (kind) {
	case SALUS_SQ_STRING: return "sx_str";
	case SALUS_SQ_TOKEN: return "sx_tok";
	case SALUS_SQ_DATE: return "sx_date";
	case SALUS_SQ_NUMBER:
	case SALUS_SQ_QUANTITY: return "sx_num";
	case SALUS_SQ_REFERENCE: return "sx_ref";
	case SALUS_SQ_URI: return "sx_uri";
	default: return NULL;
	}
}

static void where_sq(struct cq *c, const char *ra, const struct salus_sq *q);

/* Date comparison of the range [lo_e, hi_e] (SQL expressions) with v. */
static void date_cond(struct cq *c, const char *lo_e, const char *hi_e, const struct salus_sq_val *v)
{
	switch (v->op) {
	case SALUS_SQ_EQ:
	case SALUS_SQ_NE:
		emitf(c, "%s(%s>=", v->op == SALUS_SQ_NE ? "NOT " : "", lo_e);
		P_int(c, v->lo);
		emitf(c, " AND %s<=", hi_e);
		P_int(c, v->hi);
		emit(c, ")");
		break;
	case SALUS_SQ_GT:
		emitf(c, "%s>", hi_e);
		P_int(c, v->hi);
		break;
	case SALUS_SQ_LT:
		emitf(c, "%s<", lo_e);
		P_int(c, v->lo);
		break;
	case SALUS_SQ_GE:
		emitf(c, "(%s>", hi_e);
		P_int(c, v->hi);
		emitf(c, " OR (%s>=", lo_e);
		P_int(c, v->lo);
		emitf(c, " AND %s<=", hi_e);
		P_int(c, v->hi);
		emit(c, "))");
		break;
	case SALUS_SQ_LE:
		emitf(c, "(%s<", lo_e);
		P_int(c, v->lo);
		emitf(c, " OR (%s>=", lo_e);
		P_int(c, v->lo);
		emitf(c, " AND %s<=", hi_e);
		P_int(c, v->hi);
		emit(c, "))");
		break;
	case SALUS_SQ_SA:
		emitf(c, "%s>", lo_e);
		P_int(c, v->hi);
		break;
	case SALUS_SQ_EB:
		emitf(c, "%s<", hi_e);
		P_int(c, v->lo);
		break;
	case SALUS_SQ_AP:
		emitf(c, "(%s<=", lo_e);
		P_int(c, v->hi);
		emitf(c, " AND %s>=", hi_e);
		P_int(c, v->lo);
		emit(c, ")");
		break;
	default:
		c->rc = SALUS_EINVALID;
	}
}

static void num_cond(struct cq *c, const char *x, const struct salus_sq_val *v, bool quantity)
{
	emit(c, "(");
	switch (v->op) {
	case SALUS_SQ_EQ:
	case SALUS_SQ_NE:
		emitf(c, "%s(%s.v>=", v->op == SALUS_SQ_NE ? "NOT " : "", x);
		P_dbl(c, v->vlo);
		emitf(c, " AND %s.v<", x);
		P_dbl(c, v->vhi);
		emit(c, ")");
		break;
	case SALUS_SQ_GT:
	case SALUS_SQ_SA:
		emitf(c, "%s.v>", x);
		P_dbl(c, v->v);
		break;
	case SALUS_SQ_LT:
	case SALUS_SQ_EB:
		emitf(c, "%s.v<", x);
		P_dbl(c, v->v);
		break;
	case SALUS_SQ_GE:
		emitf(c, "%s.v>=", x);
		P_dbl(c, v->v);
		break;
	case SALUS_SQ_LE:
		emitf(c, "%s.v<=", x);
		P_dbl(c, v->v);
		break;
	case SALUS_SQ_AP:
		emitf(c, "%s.v>=", x);
		P_dbl(c, v->vlo);
		emitf(c, " AND %s.v<=", x);
		P_dbl(c, v->vhi);
		break;
	default:
		c->rc = SALUS_EINVALID;
	}
	if (quantity && v->b) {
		if (v->a) {
			emitf(c, " AND %s.sys=", x);
			P_str(c, v->a);
			emitf(c, " AND %s.code=", x);
			P_str(c, v->b);
		} else {
			emitf(c, " AND (%s.code=", x);
			P_str(c, v->b);
			emitf(c, " OR %s.unit=", x);
			P_str(c, v->b);
			emit(c, ")");
		}
	} else if (quantity && v->a) {
		emitf(c, " AND %s.sys=", x);
		P_str(c, v->a);
	}
	emit(c, ")");
}

/* The condition on row alias x for one value of a clause of kind `kind`. */
static void val_cond(struct cq *c, int kind, const char *x, const struct salus_sq_val *v)
{
	char lo[16], hi[16];
	switch (kind) {
	case SALUS_SQ_STRING:
		if (v->op == SALUS_SQ_STR_START) {
			emitf(c, "(%s.norm>=", x);
			P_str(c, v->a);
			emitf(c, " AND %s.norm<", x);
			P_str_hi(c, v->a);
			emit(c, ")");
		} else if (v->op == SALUS_SQ_STR_EXACT) {
			emit(c, "(");
			if (v->b) {
				emitf(c, "%s.norm=", x);
				P_str(c, v->b);
				emit(c, " AND ");
			}
			emitf(c, "%s.raw=", x);
			P_str(c, v->a);
			emit(c, ")");
		} else if (v->op == SALUS_SQ_STR_CONTAINS) {
			emitf(c, "instr(%s.norm,", x);
			P_str(c, v->a);
			emit(c, ")>0");
		} else {
			c->rc = SALUS_EINVALID;
		}
		break;
	case SALUS_SQ_TOKEN:
		emit(c, "(");
		if (v->op == SALUS_SQ_TOK_CODE_CHAIN) {
			char ta[16];
			if (!v->chain || !v->chain->type || ++c->depth > MAX_DEPTH) {
				c->rc = SALUS_EINVALID;
				break;
			}
			snprintf(ta, sizeof ta, "t%d", c->alias++);
			emitf(c, "%s.code=", x);
			P_str(c, v->b);
			emitf(c, " AND %s.sys IN (SELECT %s.id||", x, ta);
			P_str(c, v->a);
			emitf(c, " FROM sx_res %s WHERE ", ta);
			where_sq(c, ta, v->chain);
			emit(c, ")");
			c->depth--;
		} else if (v->op == SALUS_SQ_TOK_SYS) {
			emitf(c, "%s.sys=", x);
			P_str(c, v->a);
		} else {
			emitf(c, "%s.code=", x);
			P_str(c, v->b);
			if (v->op == SALUS_SQ_TOK_SYS_CODE) {
				emitf(c, " AND %s.sys=", x);
				P_str(c, v->a);
			} else if (v->op == SALUS_SQ_TOK_NOSYS) {
				emitf(c, " AND %s.sys=''", x);
			} else if (v->op != SALUS_SQ_TOK_CODE) {
				c->rc = SALUS_EINVALID;
			}
		}
		emit(c, ")");
		break;
	case SALUS_SQ_DATE:
		snprintf(lo, sizeof lo, "%s.lo", x);
		snprintf(hi, sizeof hi, "%s.hi", x);
		date_cond(c, lo, hi, v);
		break;
	case SALUS_SQ_NUMBER:
	case SALUS_SQ_QUANTITY:
		num_cond(c, x, v, kind == SALUS_SQ_QUANTITY);
		break;
	case SALUS_SQ_REFERENCE:
		emit(c, "(");
		switch (v->op) {
		case SALUS_SQ_REF_LOCAL:
			emitf(c, "%s.tid=", x);
			P_str(c, v->b);
			if (v->a) {
				emitf(c, " AND %s.ttype=", x);
				P_str(c, v->a);
			}
			break;
		case SALUS_SQ_REF_URL:
			emitf(c, "%s.url=", x);
			P_str(c, v->c);
			if (v->d) {
				emitf(c, " AND %s.ver=", x);
				P_str(c, v->d);
			}
			break;
		case SALUS_SQ_REF_IDENT:
			emitf(c, "%s.ival=", x);
			P_str(c, v->f);
			if (v->e) {
				emitf(c, " AND %s.isys=", x);
				P_str(c, v->e);
			}
			break;
		case SALUS_SQ_REF_CHAIN: {
			char ta[16];
			if (!v->chain || !v->chain->type || ++c->depth > MAX_DEPTH) {
				c->rc = SALUS_EINVALID;
				break;
			}
			snprintf(ta, sizeof ta, "t%d", c->alias++);
			emitf(c, "%s.ttype=", x);
			P_str(c, v->chain->type);
			emitf(c, " AND %s.tid IN (SELECT %s.id FROM sx_res %s WHERE ", x, ta, ta);
			where_sq(c, ta, v->chain);
			emit(c, ")");
			c->depth--;
			break;
		}
		default:
			c->rc = SALUS_EINVALID;
		}
		emit(c, ")");
		break;
	case SALUS_SQ_URI:
		if (v->op == SALUS_SQ_URI_EQ) {
			emitf(c, "%s.v=", x);
			P_str(c, v->a);
		} else if (v->op == SALUS_SQ_URI_BELOW) {
			emitf(c, "(%s.v>=", x);
			P_str(c, v->a);
			emitf(c, " AND %s.v<", x);
			P_str_hi(c, v->a);
			emit(c, ")");
		} else if (v->op == SALUS_SQ_URI_ABOVE) {
			emit(c, "instr(");
			P_str(c, v->a);
			emitf(c, ",%s.v)=1", x);
		} else {
			c->rc = SALUS_EINVALID;
		}
		break;
	default:
		c->rc = SALUS_EINVALID;
	}
}

/* Every value a (system, code) pair: a long list (token :in, :below) is one
 * row-value IN, not an OR chain deeper than SQLite's expression limit. */
static bool tok_pairs(int kind, const struct salus_sq_clause *cl)
{
	if (kind != SALUS_SQ_TOKEN || cl->nvals < 8)
		return false;
	for (size_t i = 0; i < cl->nvals; i++)
		if (cl->vals[i].op != SALUS_SQ_TOK_SYS_CODE)
			return false;
	return true;
}

static void vals_or(struct cq *c, int kind, const char *x, const struct salus_sq_clause *cl)
{
	if (tok_pairs(kind, cl)) {
		emitf(c, "(%s.code,%s.sys) IN (VALUES", x, x);
		for (size_t i = 0; i < cl->nvals; i++) {
			emit(c, i ? ",(" : "(");
			P_str(c, cl->vals[i].b);
			emit(c, ",");
			P_str(c, cl->vals[i].a);
			emit(c, ")");
		}
		emit(c, ")");
		return;
	}
	emit(c, "(");
	for (size_t i = 0; i < cl->nvals; i++) {
		if (i)
			emit(c, " OR ");
		val_cond(c, kind, x, &cl->vals[i]);
	}
	emit(c, ")");
}

/* "word" "word" ...: each whitespace-separated word quoted, so FTS5 syntax in
 * the input is taken literally; all words must occur in column col. */
static const char *fts_expr(struct cq *c, const char *col, const char *in)
{
	struct salus_buf b;
	salus_buf_init(&b, 8192);
	int rc = salus_buf_addf(&b, "%s : (", col);
	bool any = false;
	const char *p = in ? in : "";
	while (!rc && *p) {
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (!*p)
			break;
		rc = salus_buf_adds(&b, any ? " \"" : "\"");
		any = true;
		for (; !rc && *p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r'; p++)
			rc = *p == '"' ? salus_buf_adds(&b, "\"\"") : salus_buf_addc(&b, *p);
		if (!rc)
			rc = salus_buf_addc(&b, '"');
	}
	if (!rc && !any)
		rc = salus_buf_adds(&b, "\"\"");
	if (!rc)
		rc = salus_buf_addc(&b, ')');
	if (rc) {
		salus_buf_release(&b);
		if (!c->rc)
			c->rc = rc;
		return NULL;
	}
	return own(c, salus_buf_detach(&b, NULL));
}

/* Can this clause drive (give a small candidate set through an index)? Lower is better; -1: no. */
static int drive_rank(const struct salus_sq_clause *cl)
{
	if (cl->negate || cl->missing)
		return -1;
	if (cl->drive && table_of(cl->kind))
		return 0;
	switch (cl->kind) {
	case SALUS_SQ_ID:
	case SALUS_SQ_INCLUDED: return 0;
	case SALUS_SQ_REFERENCE:
		/* local references and chains (through the target's own index) are usually the
		 * narrowest: a patient's rows, the rows of the few resources a chain names */
		for (size_t i = 0; i < cl->nvals; i++)
			if (cl->vals[i].op != SALUS_SQ_REF_LOCAL && cl->vals[i].op != SALUS_SQ_REF_CHAIN)
				return 4;
		return 1;
	case SALUS_SQ_TOKEN:
		for (size_t i = 0; i < cl->nvals; i++)
			if (cl->vals[i].op == SALUS_SQ_TOK_SYS)
				return -1;
		return 2;
	case SALUS_SQ_STRING:
		for (size_t i = 0; i < cl->nvals; i++)
			if (cl->vals[i].op == SALUS_SQ_STR_CONTAINS)
				return -1;
		return 3;
	case SALUS_SQ_URI:
		for (size_t i = 0; i < cl->nvals; i++)
			if (cl->vals[i].op == SALUS_SQ_URI_ABOVE)
				return -1;
		return 3;
	case SALUS_SQ_TEXT:
	case SALUS_SQ_CONTENT: return 4;
	case SALUS_SQ_DATE:
		for (size_t i = 0; i < cl->nvals; i++)
			if (cl->vals[i].op == SALUS_SQ_NE)
				return -1;
		return 5;
	default: return -1;
	}
}

static void clause_sql(struct cq *c, const char *ra, const struct salus_sq_clause *cl, bool driver)
{
	const char *tbl = table_of(cl->kind);
	char x[16];
	snprintf(x, sizeof x, "x%d", c->alias++);
	const uint32_t bits = 0; /* param ids arrive complete (text and of-type bits included) */
	bool bare = false;

	if (tbl && (cl->nparams == 0 || (cl->nvals == 0 && !cl->missing))) {
		c->rc = SALUS_EINVALID;
		return;
	}
	if (tbl && cl->missing) {
		emitf(c, "%sEXISTS(SELECT 1 FROM %s %s WHERE %s.rid=%s.rid AND ", cl->missing == 1 ? "NOT " : "", tbl, x,
		      x, ra);
		params_in(c, x, cl, bits);
		emit(c, ")");
		return;
	}
	if (tbl) {
		if (driver) {
			/* the other rid-only clauses filter the driver's rows where they are produced,
			 * before the candidate set is built and its resource rows are read: positive
			 * ones as joins on the (rid, p) indexes (cursors opened once, not per row as a
			 * correlated EXISTS; CROSS JOIN keeps the driver outermost; a rid repeated by
			 * a join is one member of the IN list), the others as EXISTS on the driver's rid */
			const struct salus_sq_clause *const *inner = c->inner;
			size_t ninner = c->ninner;
			bare = c->bare;
			bool pk_only = c->pk_only;
			c->inner = NULL;
			c->ninner = 0;
			c->bare = false;
			c->pk_only = false;
			/* each resource once: a rid repeats when several of its rows match (or a
			 * join multiplies them), except for a one_row driver without joins */
			bool joins = false;
			for (size_t i = 0; i < ninner; i++)
				joins |= table_of(inner[i]->kind) && !inner[i]->negate && !inner[i]->missing;
			if (bare)
				emitf(c, "SELECT %s%s.rid AS rid FROM %s %s%s",
				      cl->one_row && !joins ? "" : "DISTINCT ", x, tbl, x, pk_only ? " NOT INDEXED" : "");
			else
				emitf(c, "%s.rid IN (SELECT %s.rid FROM %s %s", ra, x, tbl, x);
			for (size_t i = 0; i < ninner; i++) {
				const struct salus_sq_clause *ic = inner[i];
				const char *it = table_of(ic->kind);
				if (!it || ic->negate || ic->missing)
					continue;
				char xi[16];
				snprintf(xi, sizeof xi, "x%d", c->alias++);
				emitf(c, " CROSS JOIN %s %s ON %s.rid=%s.rid AND ", it, xi, xi, x);
				params_in(c, xi, ic, bits);
				emit(c, " AND ");
				vals_or(c, ic->kind, xi, ic);
			}
			emit(c, " WHERE ");
			for (size_t i = 0; i < ninner; i++) {
				const struct salus_sq_clause *ic = inner[i];
				if (table_of(ic->kind) && !ic->negate && !ic->missing)
					continue;
				clause_sql(c, x, ic, false);
				emit(c, " AND ");
			}
		} else {
			emitf(c, "%sEXISTS(SELECT 1 FROM %s %s WHERE %s.rid=%s.rid AND ", cl->negate ? "NOT " : "", tbl,
			      x, x, ra);
		}
		params_in(c, x, cl, bits);
		emit(c, " AND ");
		vals_or(c, cl->kind, x, cl);
		if (!bare)
			emit(c, ")");
		return;
	}
	switch (cl->kind) {
	case SALUS_SQ_ID:
	case SALUS_SQ_TYPE:
		emitf(c, "%s%s.%s IN (", cl->negate ? "NOT " : "", ra, cl->kind == SALUS_SQ_ID ? "id" : "type");
		for (size_t i = 0; i < cl->nvals; i++) {
			if (i)
				emit(c, ",");
			P_str(c, cl->vals[i].a);
		}
		emit(c, ")");
		break;
	case SALUS_SQ_LASTUPDATED: {
		char e[24];
		snprintf(e, sizeof e, "%s.updated_ms", ra);
		emit(c, "(");
		for (size_t i = 0; i < cl->nvals; i++) {
			if (i)
				emit(c, " OR ");
			date_cond(c, e, e, &cl->vals[i]);
		}
		emit(c, ")");
		break;
	}
	case SALUS_SQ_TEXT:
	case SALUS_SQ_CONTENT:
		emitf(c, "%s%s.rid IN (SELECT rowid FROM sx_fts WHERE sx_fts MATCH ", cl->negate ? "NOT " : "", ra);
		{
			/* values ORed: one MATCH per value */
			if (cl->nvals != 1) {
				c->rc = SALUS_EINVALID;
				break;
			}
			P_str(c, fts_expr(c, cl->kind == SALUS_SQ_TEXT ? "narr" : "body", cl->vals[0].a));
		}
		emit(c, ")");
		break;
	case SALUS_SQ_HAS: {
		char ta[16];
		if (!cl->sub || !cl->sub->type || !cl->nparams || ++c->depth > MAX_DEPTH) {
			c->rc = SALUS_EINVALID;
			break;
		}
		snprintf(ta, sizeof ta, "t%d", c->alias++);
		emitf(c, "%sEXISTS(SELECT 1 FROM sx_ref %s JOIN sx_res %s ON %s.rid=%s.rid WHERE ", cl->negate ? "NOT " : "",
		      x, ta, ta, x);
		params_in(c, x, cl, 0);
		emitf(c, " AND %s.tid=%s.id AND %s.ttype=%s.type AND ", x, ra, x, ra);
		where_sq(c, ta, cl->sub);
		emit(c, ")");
		c->depth--;
		break;
	}
	case SALUS_SQ_ANYOF:
		if (!cl->sub || !cl->nsub || ++c->depth > MAX_DEPTH) {
			c->rc = SALUS_EINVALID;
			break;
		}
		emitf(c, "%s(", cl->negate ? "NOT " : "");
		for (size_t i = 0; i < cl->nsub; i++) {
			emit(c, i ? " OR (" : "(");
			where_sq(c, ra, &cl->sub[i]);
			emit(c, ")");
		}
		emit(c, ")");
		c->depth--;
		break;
	case SALUS_SQ_INCLUDED: {
		char ta[16];
		snprintf(ta, sizeof ta, "t%d", c->alias++);
		emitf(c, "%s.rid IN (SELECT %s.rid FROM sx_ref %s JOIN sx_res %s ON %s.type=%s.ttype AND %s.id=%s.tid WHERE ",
		      ra, ta, x, ta, ta, x, ta, x);
		if (cl->nparams) {
			params_in(c, x, cl, 0);
			emit(c, " AND ");
		}
		emitf(c, "%s.rid IN (", x);
		for (size_t i = 0; i < cl->nrids; i++) {
			if (i)
				emit(c, ",");
			P_int(c, cl->rids[i]);
		}
		if (!cl->nrids)
			emit(c, "NULL");
		emit(c, "))");
		break;
	}
	case SALUS_SQ_OR:
		emitf(c, "%s(", cl->negate ? "NOT " : "");
		for (size_t i = 0; i < cl->nvals; i++) {
			const struct salus_sq *alt = cl->vals[i].chain;
			if (!alt || ++c->depth > MAX_DEPTH) {
				c->rc = SALUS_EINVALID;
				break;
			}
			emit(c, i ? " OR (1" : "(1");
			for (size_t k = 0; k < alt->nclauses; k++) {
				emit(c, " AND ");
				clause_sql(c, ra, &alt->clauses[k], false);
			}
			emit(c, ")");
			c->depth--;
		}
		emit(c, cl->nvals ? ")" : "0)");
		break;
	case SALUS_SQ_COMPOSITE:
		emitf(c, "%s(", cl->negate ? "NOT " : "");
		for (size_t i = 0; i < cl->nvals; i++) {
			const struct salus_sq_val *v = &cl->vals[i];
			char a0[16];
			if (i)
				emit(c, " OR ");
			if (!v->ncomp) {
				c->rc = SALUS_EINVALID;
				break;
			}
			snprintf(a0, sizeof a0, "x%d", c->alias);
			int first = c->alias;
			c->alias += (int)v->ncomp;
			/* a composite on the resource itself reads its components' own rows: their group
			 * is the resource's (0, or a contained resource's); else the composite's groups (>0) */
			bool whole = true;
			for (size_t k = 0; k < v->ncomp && whole; k++)
				whole = comp_whole(&v->comp[k]);
			emit(c, "EXISTS(SELECT 1 FROM ");
			for (size_t k = 0; k < v->ncomp; k++) {
				const char *t = table_of(v->comp[k].kind);
				if (!t || !v->comp[k].nparams || !v->comp[k].nvals) {
					c->rc = SALUS_EINVALID;
					break;
				}
				emitf(c, "%s%s x%d", k ? " JOIN " : "", t, first + (int)k);
				if (k)
					emitf(c, " ON x%d.rid=%s.rid AND x%d.g=%s.g", first + (int)k, a0, first + (int)k, a0);
			}
			emitf(c, " WHERE %s.rid=%s.rid", a0, ra);
			if (!whole)
				emitf(c, " AND %s.g>0", a0);
			for (size_t k = 0; k < v->ncomp && !c->rc; k++) {
				char xk[16];
				snprintf(xk, sizeof xk, "x%d", first + (int)k);
				emit(c, " AND ");
				params_in(c, xk, &v->comp[k], 0);
				emit(c, " AND ");
				vals_or(c, v->comp[k].kind, xk, &v->comp[k]);
			}
			emit(c, ")");
		}
		emit(c, ")");
		break;
	default:
		c->rc = SALUS_EINVALID;
	}
}

/* The access guards on resource alias ra (struct salus_sq_guard). */
static void guards_sql(struct cq *c, const char *ra)
{
	bool any_default = false;
	c->in_guard = true;
	for (size_t g = 0; g < c->nguards; g++) {
		const struct salus_sq_guard *gd = &c->guards[g];
		if (!gd->type) {
			any_default = true;
			continue;
		}
		emitf(c, " AND (%s.type<>", ra);
		P_str(c, gd->type);
		if (gd->deny) {
			emit(c, ")");
			continue;
		}
		for (size_t i = 0; i < gd->nclauses; i++) {
			emit(c, i ? " AND " : " OR (");
			clause_sql(c, ra, &gd->clauses[i], false);
		}
		emit(c, gd->nclauses ? "))" : " OR 1)");
	}
	for (size_t g = 0; any_default && g < c->nguards; g++) {
		const struct salus_sq_guard *gd = &c->guards[g];
		if (gd->type)
			continue;
		/* the types named by other guards are theirs */
		emitf(c, " AND (%s.type IN (''", ra);
		for (size_t k = 0; k < c->nguards; k++)
			if (c->guards[k].type) {
				emit(c, ",");
				P_str(c, c->guards[k].type);
			}
		emit(c, ")");
		if (!gd->deny) {
			emit(c, " OR (1");
			for (size_t i = 0; i < gd->nclauses; i++) {
				emit(c, " AND ");
				clause_sql(c, ra, &gd->clauses[i], false);
			}
			emit(c, ")");
		}
		emit(c, ")");
	}
	c->in_guard = false;
}

/* Does the clause look at its resource only through the index rows of its
 * rid (never at the type, id or lastUpdated of the resource row)?  Such a
 * clause may be checked on a driving row's rid instead of the resource's. */
static bool rid_only(const struct salus_sq_clause *cl)
{
	return table_of(cl->kind) || cl->kind == SALUS_SQ_COMPOSITE;
}

/* How one level of a query is evaluated: the driving clause (-1: none), the
 * clauses checked inside the driving subquery, and whether the level's
 * implied clauses are left out. */
struct level {
	int best;
	bool skip_implied;
	const struct salus_sq_clause *inner[MAX_INNER];
	size_t ninner;
	bool moved[MAX_INNER];
};

static void level_plan(const struct salus_sq *q, struct level *lv)
{
	int best_rank = 100;
	lv->best = -1;
	lv->ninner = 0;
	memset(lv->moved, 0, sizeof lv->moved);
	for (size_t i = 0; i < q->nclauses; i++) {
		int r = drive_rank(&q->clauses[i]);
		if (r >= 0 && r < best_rank) {
			best_rank = r;
			lv->best = (int)i;
		}
	}
	/* a drive hint that drives makes the level's implied clauses redundant (store.h) */
	lv->skip_implied = lv->best >= 0 && q->clauses[lv->best].drive;
	/* a driver that is an index-table subquery takes the level's other rid-only
	 * clauses inside it (clause_sql): a patient's Observations are filtered by
	 * code and date on the index rows, and only the survivors are looked up */
	if (lv->best >= 0 && table_of(q->clauses[lv->best].kind)) {
		for (size_t i = 0; i < q->nclauses && i < MAX_INNER; i++)
			if ((int)i != lv->best && rid_only(&q->clauses[i]) &&
			    !(lv->skip_implied && q->clauses[i].implied)) {
				lv->moved[i] = true;
				lv->inner[lv->ninner++] = &q->clauses[i];
			}
	}
}

/* Is every condition of the top level q inside its driving subquery, and is
 * every row of that subquery a resource of q->type?  The driver is then the
 * whole answer: the matches, their count and their parameter sort keys come
 * from index rows alone (a delete removes a resource's rows), and only the
 * page's rows are looked up in sx_res.  For a typed search without guards,
 * sorted by parameters only, whose caller vouches for its rows' type
 * (salus_sq.typed_rows) or whose driver is a drive hint (the patient+code
 * pairs: a per-type parameter id). */
static bool ix_only(const struct salus_sq *q, const struct level *lv)
{
	if (!q->type || q->nguards || lv->best < 0 || !table_of(q->clauses[lv->best].kind) ||
	    !(q->typed_rows || q->clauses[lv->best].drive))
		return false;
	for (size_t i = 0; i < q->nclauses; i++)
		if ((int)i != lv->best && !(lv->skip_implied && q->clauses[i].implied) &&
		    !(i < MAX_INNER && lv->moved[i]))
			return false;
	for (size_t i = 0; i < q->nsort; i++)
		if (q->sort[i].kind != SALUS_SQ_SORT_PARAM)
			return false;
	return true;
}

/* The driving subquery of an ix_only level: SELECT [DISTINCT] rid ... */
static void driver_bare(struct cq *c, const struct salus_sq *q, const struct level *lv)
{
	c->inner = lv->inner;
	c->ninner = lv->ninner;
	c->bare = true;
	clause_sql(c, "d", &q->clauses[lv->best], true);
	c->inner = NULL;
	c->ninner = 0;
	c->bare = false;
}

/* The WHERE conditions of q on resource alias ra (type included). */
static void where_sq(struct cq *c, const char *ra, const struct salus_sq *q)
{
	struct level lvs, *lv = &lvs;
	level_plan(q, lv);
	int best = lv->best;
	bool skip_implied = lv->skip_implied;
	const struct salus_sq_clause *const *inner = lv->inner;
	size_t ninner = lv->ninner;
	const bool *moved = lv->moved;
	if (q->type) {
		/* with a driving clause the type is a filter, never the index to scan: without
		 * statistics SQLite takes type=? for selective and walks every row of the type */
		bool by_id = best >= 0 && q->clauses[best].kind == SALUS_SQ_ID; /* (type, id) is the index */
		emitf(c, "%s%s.type=", best >= 0 && !by_id ? "+" : "", ra);
		P_str(c, q->type);
	} else {
		emit(c, "1");
	}
	if (best >= 0) {
		emit(c, " AND ");
		c->inner = inner;
		c->ninner = ninner;
		clause_sql(c, ra, &q->clauses[best], true);
		c->inner = NULL;
		c->ninner = 0;
	}
	for (size_t i = 0; i < q->nclauses; i++) {
		if ((int)i == best || (i < MAX_INNER && moved[i]) || (skip_implied && q->clauses[i].implied))
			continue;
		emit(c, " AND ");
		clause_sql(c, ra, &q->clauses[i], false);
	}
	if (c->nguards && !c->in_guard)
		guards_sql(c, ra);
}

/* ---- sort keys and cursors ------------------------------------------------ */

enum { KT_INT = 1, KT_DBL, KT_TEXT };

static int key_type(const struct salus_sq_sort *s)
{
	if (s->kind == SALUS_SQ_SORT_UPDATED)
		return KT_INT;
	if (s->kind == SALUS_SQ_SORT_ID)
		return KT_TEXT;
	switch (s->ix) {
	case SALUS_IX_DATE: return KT_INT;
	case SALUS_IX_NUMBER:
	case SALUS_IX_QUANTITY: return KT_DBL;
	default: return KT_TEXT;
	}
}

static void key_expr(struct cq *c, const char *ra, const struct salus_sq_sort *s)
{
	const char *tbl, *col;
	if (s->kind == SALUS_SQ_SORT_ID) {
		emitf(c, "%s.id", ra);
		return;
	}
	if (s->kind == SALUS_SQ_SORT_UPDATED) {
		emitf(c, "%s.updated_ms", ra);
		return;
	}
	switch (s->ix) {
	case SALUS_IX_STRING: tbl = "sx_str", col = "norm"; break;
	case SALUS_IX_TOKEN: tbl = "sx_tok", col = "code"; break;
	case SALUS_IX_DATE: tbl = "sx_date", col = s->desc ? "hi" : "lo"; break;
	case SALUS_IX_NUMBER:
	case SALUS_IX_QUANTITY: tbl = "sx_num", col = "v"; break;
	case SALUS_IX_REFERENCE: tbl = "sx_ref", col = "tid"; break;
	case SALUS_IX_URI: tbl = "sx_uri", col = "v"; break;
	default: c->rc = SALUS_EINVALID; return;
	}
	emitf(c, "coalesce((SELECT %s(s.%s) FROM %s s WHERE s.rid=%s.rid AND ", s->desc ? "max" : "min", col, tbl, ra);
	param_set(c, "s", &s->param, 1, NULL);
	emit(c, "),");
	switch (key_type(s)) {
	case KT_INT: emit(c, s->desc ? "(-9223372036854775807-1))" : "9223372036854775807)"); break;
	case KT_DBL: emit(c, s->desc ? "-1e308)" : "1e308)"); break;
	default: emit(c, s->desc ? "'')" : "CAST(x'F48FBFBF' AS TEXT))"); break;
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* Decode one cursor field "i<n>", "f<16 hex>", "t<hex>" up to '.' or the end. */
static int cursor_field(struct cq *c, const char **pp, int want)
{
	const char *p = *pp, *e = strchr(p, '.');
	size_t n = e ? (size_t)(e - p) : strlen(p);
	if (n < 1)
		return SALUS_EINVALID;
	if (p[0] == 'i' && want == KT_INT) {
		long long v = 0;
		bool neg = false;
		size_t i = 1;
		if (i < n && p[i] == '-')
			neg = true, i++;
		if (i == n || n - i > 19)
			return SALUS_EINVALID;
		for (; i < n; i++) {
			if (p[i] < '0' || p[i] > '9')
				return SALUS_EINVALID;
			v = v * 10 + (p[i] - '0'); /* 19 digits: may wrap only for INT64_MIN, handled below */
		}
		P_int(c, neg ? -v : v);
	} else if (p[0] == 'f' && want == KT_DBL && n == 17) {
		uint64_t bits = 0;
		for (size_t i = 1; i < n; i++) {
			int h = hexval(p[i]);
			if (h < 0)
				return SALUS_EINVALID;
			bits = bits << 4 | (uint64_t)h;
		}
		double d;
		memcpy(&d, &bits, sizeof d);
		if (d != d)
			return SALUS_EINVALID;
		P_dbl(c, d);
	} else if (p[0] == 't' && want == KT_TEXT && (n - 1) % 2 == 0) {
		char *s = salus_malloc((n - 1) / 2 + 1);
		if (!s)
			return SALUS_ENOMEM;
		size_t k = 0;
		for (size_t i = 1; i < n; i += 2) {
			int h1 = hexval(p[i]), h2 = hexval(p[i + 1]);
			if (h1 < 0 || h2 < 0 || (h1 == 0 && h2 == 0)) {
				salus_free(s);
				return SALUS_EINVALID;
			}
			s[k++] = (char)(h1 << 4 | h2);
		}
		s[k] = 0;
		P_str(c, own(c, s));
	} else {
		return SALUS_EINVALID;
	}
	*pp = e ? e + 1 : p + n;
	return c->rc;
}

/* (k0, k1, ..., rid) strictly after (or before) the cursor, per direction. */
static int keyset(struct cq *c, const struct salus_sq *q)
{
	size_t nk = q->nsort;
	const char *p = q->after;
	/* k0 > c0 OR (k0 = c0 AND (k1 > c1 OR (k1 = c1 AND rid > r))), each
	 * comparison flipped for a descending key (and for the page before) */
	if (strlen(p) > CURSOR_MAX)
		return SALUS_EINVALID;
	emit(c, " AND (");
	for (size_t i = 0; i <= nk; i++) {
		bool desc = i < nk ? q->sort[i].desc : (nk ? q->sort[nk - 1].desc : false);
		if (q->before)
			desc = !desc;
		int kt = i < nk ? key_type(&q->sort[i]) : KT_INT;
		char col[24];
		if (i < nk)
			snprintf(col, sizeof col, "k%zu", i);
		else
			snprintf(col, sizeof col, "rid");
		/* each comparison needs the value twice (> and =): decode it twice */
		const char *p0 = p;
		emitf(c, "m0.%s%s", col, desc ? "<" : ">");
		int rc = cursor_field(c, &p, kt);
		if (rc)
			return rc;
		if (i < nk) {
			emitf(c, " OR (m0.%s=", col);
			p = p0;
			if ((rc = cursor_field(c, &p, kt)))
				return rc;
			emit(c, " AND (");
		}
	}
	if (*p)
		return SALUS_EINVALID;
	for (size_t i = 0; i < nk; i++)
		emit(c, "))");
	emit(c, ")");
	return c->rc;
}

static void order_by(struct cq *c, const char *m, const struct salus_sq *q, bool reverse)
{
	emit(c, " ORDER BY ");
	for (size_t i = 0; i < q->nsort; i++) {
		bool desc = q->sort[i].desc != reverse;
		emitf(c, "%s.k%zu%s,", m, i, desc ? " DESC" : "");
	}
	bool rdesc = (q->nsort ? q->sort[q->nsort - 1].desc : false) != reverse;
	emitf(c, "%s.rid%s", m, rdesc ? " DESC" : "");
}

static void cq_init(struct cq *c)
{
	memset(c, 0, sizeof *c);
	salus_buf_init(&c->sql, SQL_MAX);
}

static void cq_release(struct cq *c)
{
	salus_buf_release(&c->sql);
	salus_free(c->b);
	for (size_t i = 0; i < c->nowned; i++)
		salus_free(c->owned[i]);
	salus_free(c->owned);
}

/* SELECT rid, type, id, k0.. of every match of q */
static void matches(struct cq *c, const struct salus_sq *q)
{
	emit(c, "SELECT r.rid AS rid, r.type AS type, r.id AS id");
	for (size_t i = 0; i < q->nsort; i++) {
		emit(c, ", ");
		key_expr(c, "r", &q->sort[i]);
		emitf(c, " AS k%zu", i);
	}
	emit(c, " FROM sx_res r WHERE ");
	where_sq(c, "r", q);
}

/* SELECT rid, k0.. of every match of an ix_only q, from its driver alone */
static void matches_ix(struct cq *c, const struct salus_sq *q, const struct level *lv)
{
	emit(c, "SELECT d.rid AS rid");
	for (size_t i = 0; i < q->nsort; i++) {
		emit(c, ", ");
		key_expr(c, "d", &q->sort[i]);
		emitf(c, " AS k%zu", i);
	}
	emit(c, " FROM (");
	driver_bare(c, q, lv);
	emit(c, ") d");
}

/* Does the driver of an ix_only level yield its rows in rid order?  An
 * equality of one parameter and one value, alone in its level, on the
 * columns before rid in its table's primary key: a token system|code or
 * |code (p, code, sys, rid, g; the patient+code pairs are such), a local
 * reference with its type (p, tid, ttype, rid, ...). */
static bool rid_ordered(const struct salus_sq *q, const struct level *lv)
{
	const struct salus_sq_clause *cl = &q->clauses[lv->best];
	if (lv->ninner || cl->nparams != 1 || cl->nvals != 1 || cl->negate || cl->missing)
		return false;
	const struct salus_sq_val *v = &cl->vals[0];
	if (cl->kind == SALUS_SQ_TOKEN)
		return v->op == SALUS_SQ_TOK_SYS_CODE || v->op == SALUS_SQ_TOK_NOSYS;
	return cl->kind == SALUS_SQ_REFERENCE && v->op == SALUS_SQ_REF_LOCAL && v->a;
}

/* A page of such a level, unsorted (the first, or the next after a cursor):
 * the page m is the driver itself,
 * read in its primary key's order up to the LIMIT (its DISTINCT compares
 * each rid with the one before: no temporary b-tree), and the total is a
 * count over the same index range — no materialized matches and no sort
 * (each an ephemeral table: ~20% of the instructions of a one-hit search,
 * and a copy and sort of every match of a large one). */
static int compile_ordered(struct cq *c, const struct salus_sq *q, const struct level *lv)
{
	emit(c, "SELECT m.rid, r.type, r.id");
	if (q->need_json)
		emit(c, ", res.version, res.updated_ms, res.seq,"
			" coalesce(res.json, (SELECT h.json FROM history h WHERE h.seq=res.seq))");
	else
		emit(c, ", res.version, res.updated_ms, res.seq, NULL");
	c->pk_only = true;
	if (q->with_total) {
		emit(c, ", (SELECT count(*) FROM (");
		driver_bare(c, q, lv);
		emit(c, "))");
	}
	emit(c, " FROM (");
	c->pk_only = true;
	int a = c->alias; /* the driver's alias: x<a> */
	driver_bare(c, q, lv);
	if (q->after && !c->rc) { /* a page after a cursor "i<rid>": the next rids of the range */
		const char *p = q->after;
		if (strlen(p) > CURSOR_MAX)
			return c->rc = SALUS_EINVALID;
		emitf(c, " AND x%d.rid>", a);
		int rc = cursor_field(c, &p, KT_INT);
		if (rc || *p)
			return c->rc = rc ? rc : SALUS_EINVALID;
	}
	emit(c, " ORDER BY 1 LIMIT ");
	P_int(c, q->count);
	emit(c, ") m CROSS JOIN sx_res r ON r.rid=m.rid CROSS JOIN resource res ON res.type=r.type AND res.id=r.id");
	return c->rc;
}

static int compile(struct cq *c, const struct salus_sq *q, bool count)
{
	if (q->nsort > SALUS_SQ_MAX_SORT)
		return SALUS_EINVALID;
	c->guards = q->guards;
	c->nguards = q->nguards;
	if (!c->sql.n)
		emit(c, STMT_TAG); /* a cached statement (prepare); EXPLAIN QUERY PLAN is not */
	struct level lv;
	level_plan(q, &lv);
	bool ixo = ix_only(q, &lv);
	if (count && ixo) {
		emit(c, "SELECT count(*) FROM (");
		driver_bare(c, q, &lv);
		emit(c, ") d");
		return c->rc;
	}
	if (count) {
		emit(c, "SELECT count(*) FROM sx_res r WHERE ");
		where_sq(c, "r", q);
		return c->rc;
	}
	if (ixo && !q->before && !q->nsort && rid_ordered(q, &lv))
		return compile_ordered(c, q, &lv);
	/* the matches m0 with their sort keys; with a total, materialized once and
	 * counted (before the cursor's filter): every match is computed for the
	 * ORDER BY anyway, so Bundle.total costs no second evaluation */
	/* (ix_only: always materialized, so that SQLite never flattens the driver into
	 * the ORDER BY ... LIMIT and walks an index in rid order instead) */
	if (q->with_total || ixo) {
		emit(c, "WITH m0 AS MATERIALIZED (");
		if (ixo)
			matches_ix(c, q, &lv);
		else
			matches(c, q);
		emit(c, ") ");
	}
	/* ix_only: the type and id of the page's rows only, from sx_res r */
	emit(c, ixo ? "SELECT m.rid, r.type, r.id" : "SELECT m.rid, m.type, m.id");
	for (size_t i = 0; i < q->nsort; i++)
		emitf(c, ", m.k%zu", i);
	if (q->need_json)
		/* the body: in history only (schema 2), or a copy in resource (1) */
		emit(c, ", res.version, res.updated_ms, res.seq,"
			" coalesce(res.json, (SELECT h.json FROM history h WHERE h.seq=res.seq))");
	else
		emit(c, ", res.version, res.updated_ms, res.seq, NULL");
	if (q->with_total) {
		emit(c, ", m.nt FROM (SELECT *, (SELECT count(*) FROM m0) AS nt FROM m0 WHERE 1");
	} else if (ixo) {
		emit(c, " FROM (SELECT * FROM m0 WHERE 1");
	} else {
		emit(c, " FROM (SELECT * FROM (");
		matches(c, q);
		emit(c, ") m0 WHERE 1");
	}
	if (q->after && !c->rc) {
		int rc = keyset(c, q);
		if (rc)
			return c->rc = rc;
	}
	order_by(c, "m0", q, q->after && q->before);
	emit(c, " LIMIT ");
	P_int(c, q->count);
	/* the page m is the outer loop (CROSS JOIN fixes the order of the loops),
	 * a co-routine read once in its ORDER BY, and each of its rows meets at
	 * most one row of each lookup (rowid, primary key): the rows come out in
	 * the page's order without a second ORDER BY, which sorted the page again
	 * with its bodies in a temporary b-tree (t_plans checks the plan, the
	 * ordered searches of the tests the order).  A page before a cursor is
	 * taken in reverse order and turned forward here. */
	emit(c, ixo ? ") m CROSS JOIN sx_res r ON r.rid=m.rid CROSS JOIN resource res ON res.type=r.type AND res.id=r.id"
	            : ") m CROSS JOIN resource res ON res.type=m.type AND res.id=m.id");
	if (q->after && q->before)
		order_by(c, "m", q, false);
	return c->rc;
}

/* Prepared search statements stay on their connection for the next query of
 * the same shape (values are bound, so the text repeats): found again by
 * their text among the connection's statements (sqlite3_next_stmt), which
 * carry STMT_TAG in front; at most STMT_CACHE of them per connection, an idle
 * one finalized to make room.  Compiling the SQL is the larger part of a
 * cheap search.  The connection's owner calls salus_sx_release before
 * closing it. */

static bool is_cached(sqlite3_stmt *st)
{
	const char *sql = sqlite3_sql(st);
	return sql && !strncmp(sql, STMT_TAG, sizeof STMT_TAG - 1);
}

static sqlite3_stmt *cache_find(sqlite3 *db, const struct cq *c)
{
	sqlite3_stmt *it = NULL, *idle = NULL;
	int n = 0;
	while ((it = sqlite3_next_stmt(db, it))) {
		if (!is_cached(it))
			continue;
		n++;
		if (sqlite3_stmt_busy(it))
			continue;
		const char *sql = sqlite3_sql(it);
		if (!strncmp(sql, c->sql.p, c->sql.n) && !sql[c->sql.n])
			return it;
		idle = idle ? idle : it;
	}
	if (n >= STMT_CACHE && idle)
		sqlite3_finalize(idle);
	return NULL;
}

/* Done with a statement of prepare(): kept for reuse or finalized. */
static void unprepare(sqlite3_stmt *st)
{
	if (st && is_cached(st)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st); /* bound texts point into the query */
	} else {
		sqlite3_finalize(st);
	}
}

void salus_sx_release(sqlite3 *db)
{
	sqlite3_stmt *it = sqlite3_next_stmt(db, NULL);
	while (it) {
		sqlite3_stmt *next = sqlite3_next_stmt(db, it);
		if (is_cached(it))
			sqlite3_finalize(it);
		it = next;
	}
}

static int prepare(sqlite3 *db, struct cq *c, sqlite3_stmt **out)
{
	const size_t tag = sizeof STMT_TAG - 1;
	bool tagged = c->sql.n >= tag && !memcmp(c->sql.p, STMT_TAG, tag);
	/* a huge statement (a long :in list) is compiled each time, without the tag, not kept */
	bool cache = tagged && c->sql.n <= STMT_CACHE_SQL;
	size_t skip = tagged && !cache ? tag : 0;
	sqlite3_stmt *st = cache ? cache_find(db, c) : NULL;
	int rc = st ? SQLITE_OK
		    : sqlite3_prepare_v3(db, c->sql.p + skip, (int)(c->sql.n - skip),
					 cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return map(rc) == SALUS_EINVALID ? SALUS_EINTERNAL : map(rc);
	}
	for (size_t i = 0; i < c->nb; i++) {
		const struct bindv *v = &c->b[i];
		int k = (int)i + 1;
		switch (v->t) {
		case B_INT: sqlite3_bind_int64(st, k, v->i); break;
		case B_DBL: sqlite3_bind_double(st, k, v->d); break;
		case B_TEXT: sqlite3_bind_text(st, k, v->s, -1, SQLITE_STATIC); break;
		case B_TEXT_HI: {
			size_t n = strlen(v->s);
			char *s = salus_malloc(n + 2);
			if (!s) {
				unprepare(st);
				return SALUS_ENOMEM;
			}
			memcpy(s, v->s, n);
			s[n] = (char)0xFF;
			s[n + 1] = 0;
			sqlite3_bind_text(st, k, s, (int)n + 1, salus_free);
			break;
		}
		}
	}
	*out = st;
	return SALUS_OK;
}

/* "i<decimal>" (a cursor field) without the cost of a formatted append */
static int cursor_int(struct salus_buf *b, int64_t v)
{
	char t[24];
	size_t n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do
		t[sizeof t - 1 - n++] = (char)('0' + u % 10);
	while ((u /= 10));
	if (v < 0)
		t[sizeof t - 1 - n++] = '-';
	t[sizeof t - 1 - n++] = 'i';
	return salus_buf_add(b, t + sizeof t - n, n);
}

static int cursor_add(struct salus_buf *b, sqlite3_stmt *st, int col)
{
	static const char hex[] = "0123456789abcdef";
	int rc = 0;
	switch (sqlite3_column_type(st, col)) {
	case SQLITE_INTEGER: rc = cursor_int(b, sqlite3_column_int64(st, col)); break;
	case SQLITE_FLOAT: {
		double d = sqlite3_column_double(st, col);
		uint64_t bits;
		memcpy(&bits, &d, sizeof bits);
		rc = salus_buf_addf(b, "f%016" PRIx64, bits);
		break;
	}
	default: {
		const unsigned char *t = sqlite3_column_text(st, col);
		int n = sqlite3_column_bytes(st, col);
		rc = salus_buf_addc(b, 't');
		for (int i = 0; i < n && !rc; i++) {
			rc = salus_buf_addc(b, hex[t[i] >> 4]);
			if (!rc)
				rc = salus_buf_addc(b, hex[t[i] & 15]);
		}
	}
	}
	return rc;
}

/* snprintf(d, cap, "%s", s) without its cost (twice per hit); NULL as "" */
static void copy_str(char *d, size_t cap, const char *s)
{
	size_t n = s ? strnlen(s, cap - 1) : 0;
	memcpy(d, s ? s : "", n);
	d[n] = 0;
}

int salus_sx_search(sqlite3 *db, const struct salus_sq *q, salus_sq_cb cb, void *ctx)
{
	struct cq c;
	sqlite3_stmt *st = NULL;
	struct salus_buf cur;
	int rc;

	cq_init(&c);
	salus_buf_init(&cur, CURSOR_MAX * 2);
	if ((rc = compile(&c, q, false)) || (rc = prepare(db, &c, &st)))
		goto out_cq;
	int nk = (int)q->nsort;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct salus_sq_hit h;
		memset(&h, 0, sizeof h);
		h.rid = sqlite3_column_int64(st, 0);
		const char *t = (const char *)sqlite3_column_text(st, 1);
		const char *id = (const char *)sqlite3_column_text(st, 2);
		copy_str(h.r.type, sizeof h.r.type, t);
		copy_str(h.r.id, sizeof h.r.id, id);
		h.r.version = (long)sqlite3_column_int64(st, 3 + nk);
		h.r.updated_ms = sqlite3_column_int64(st, 4 + nk);
		h.r.seq = sqlite3_column_int64(st, 5 + nk);
		if (q->need_json) {
			const unsigned char *j = sqlite3_column_text(st, 6 + nk);
			memcpy(&h.r.json, &j, sizeof j); /* salus_resource.json is not const; borrowed here */
			h.r.len = (size_t)sqlite3_column_bytes(st, 6 + nk);
		}
		h.total = q->with_total ? (long)sqlite3_column_int64(st, 7 + nk) : -1;
		salus_buf_reset(&cur);
		int e = 0;
		for (int k = 0; k < nk && !e; k++) {
			e = cursor_add(&cur, st, 3 + k);
			if (!e)
				e = salus_buf_addc(&cur, '.');
		}
		if (!e)
			e = cursor_int(&cur, h.rid);
		if (e) {
			rc = e;
			goto out_st;
		}
		h.cursor = cur.p;
		if ((rc = cb(ctx, &h)))
			goto out_st;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map(rc);
out_st:
	unprepare(st);
out_cq:
	salus_buf_release(&cur);
	cq_release(&c);
	return rc;
}

int salus_sx_count(sqlite3 *db, const struct salus_sq *q, long *total)
{
	struct cq c;
	sqlite3_stmt *st = NULL;
	int rc;

	cq_init(&c);
	if ((rc = compile(&c, q, true)) || (rc = prepare(db, &c, &st)))
		goto out_cq;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*total = (long)sqlite3_column_int64(st, 0);
		rc = SALUS_OK;
	} else {
		rc = map(rc);
		if (!rc)
			rc = SALUS_EIO;
	}
	unprepare(st);
out_cq:
	cq_release(&c);
	return rc;
}

int salus_sx_plan(sqlite3 *db, const struct salus_sq *q, bool count, char **plan)
{
	struct cq c;
	sqlite3_stmt *st = NULL;
	struct salus_buf out;
	int rc;

	cq_init(&c);
	salus_buf_init(&out, SQL_MAX);
	emit(&c, "EXPLAIN QUERY PLAN ");
	if ((rc = compile(&c, q, count)) || (rc = prepare(db, &c, &st)))
		goto out_cq;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		if ((rc = salus_buf_addf(&out, "%s\n", d ? d : "")))
			goto out_st;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map(rc);
	if (!rc)
		*plan = salus_buf_detach(&out, NULL);
out_st:
	sqlite3_finalize(st);
out_cq:
	salus_buf_release(&out);
	cq_release(&c);
	return rc;
}
