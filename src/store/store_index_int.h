/*
 * store_index_int.h — the SQLite search index (store_index.c), internal to the
 * store: the SQLite backend calls these on its writer connection (inside the
 * group-commit transaction) and on its reader connections.  Not for other
 * modules: they use salus_store_search() and salus_write.index (store.h).
 *
 * Tables (docs/search.md): sx_res(rid, type, id, updated_ms) gives every
 * current resource a stable integer number; one table per value kind holds
 * the rows (sx_str, sx_tok, sx_date, sx_num, sx_ref, sx_uri), each a WITHOUT
 * ROWID table keyed for search (p, value..., rid) with a second index on
 * (rid, p) for deletes, :missing, sort keys and per-candidate checks; sx_fts
 * is an FTS5 table (rowid = rid) for _text and _content.
 */
#ifndef SALUS_STORE_INDEX_INT_H
#define SALUS_STORE_INDEX_INT_H
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct salus_sx_w; /* the writer's prepared statements */

/* Create the index tables if missing (inside the caller's transaction). */
int salus_sx_schema(sqlite3 *db);

/* Writer statements on db; freed with salus_sx_w_free (before db closes). */
int salus_sx_w_new(sqlite3 *db, struct salus_sx_w **out /* OUT */);
void salus_sx_w_free(struct salus_sx_w *w); /* NULL-safe */

/* Replace the index of (type, id) after a write: deleted removes it; else the
 * resource's rows become ix (NULL: none) and updated_ms its lastUpdated.
 * existed: the resource had a current row before (so old rows may exist). */
int salus_sx_put(struct salus_sx_w *w, const char *type, const char *id, int64_t updated_ms, bool deleted,
		 bool existed, const struct salus_ix *ix);

/* The full-text rows (sx_fts) and the search-index rows (sx_str, sx_tok...)
 * of salus_sx_put are held back and written by salus_sx_fts_flush, once per
 * group before COMMIT (FTS5 would otherwise flush a segment at every job's
 * SAVEPOINT/RELEASE; the index rows of the whole group go in in primary-key
 * order, each table's inserts walking its b-tree once).  A job rolled back to
 * its savepoint drops its own with salus_sx_fts_rewind(w, mark taken at the
 * job's start).  The flush empties the queue whatever it returns; an error
 * fails the group.  Texts and rows are borrowed from the writes' salus_ix
 * until then.  Nothing reads the sx_ tables on the writer connection between
 * (searches run on readers; conditional creates use token_index), and a job
 * of another file (JOB_FN) is preceded by a flush. */
size_t salus_sx_fts_mark(const struct salus_sx_w *w);
void salus_sx_fts_rewind(struct salus_sx_w *w, size_t mark);
int salus_sx_fts_flush(struct salus_sx_w *w);

/* Searches on a reader connection (store.h semantics). */
int salus_sx_search(sqlite3 *db, const struct salus_sq *q, salus_sq_cb cb, void *ctx);
int salus_sx_count(sqlite3 *db, const struct salus_sq *q, long *total);
int salus_sx_plan(sqlite3 *db, const struct salus_sq *q, bool count, char **plan);
/* Finalize the search statements kept on db for reuse; before sqlite3_close. */
void salus_sx_release(sqlite3 *db);

#endif
