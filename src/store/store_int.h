/*
 * store_int.h — internals shared by the store front (store.c) and its
 * backends (store_sqlite.c; store_pg.c later).  Not for other modules.
 *
 * store.c validates every argument once and then dispatches through the
 * backend's ops table (SQLite's VFS / curl's TLS-backend pattern), so a backend
 * only sees well-formed calls: type 1..SALUS_MAX_TYPE bytes, ids within
 * SALUS_MAX_ID, history queries checked, write ops checked and their result
 * fields reset.
 */
#ifndef SALUS_STORE_INT_H
#define SALUS_STORE_INT_H
#include "store/store.h"

#define SALUS_STORE_MAX_KV_NAME 255          /* ns and key of the kv tables */
#define SALUS_STORE_MAX_JSON SALUS_MAX_BODY /* one stored resource, serialised */

struct salus_store_ops {
	const char *name;
	int (*open)(const char *path, const struct salus_store_opts *o, struct salus_store **out);
	void (*close)(struct salus_store *s); /* salus_store_free */
	int (*read)(struct salus_store *s, const char *type, const char *id, long version,
		    struct salus_resource *out);
	int (*write)(struct salus_store *s, struct salus_write *ops, size_t n);
	int (*history)(struct salus_store *s, const struct salus_history_q *q, salus_resource_cb cb, void *ctx);
	int (*history_count)(struct salus_store *s, const struct salus_history_q *q, long *total);
	int (*last_seq)(struct salus_store *s, int64_t *seq);
	int (*list)(struct salus_store *s, const char *type, const char *after_id, int count,
		    salus_resource_cb cb, void *ctx);
	int (*count)(struct salus_store *s, const char *type, long *total);
	int (*kv_put)(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n);
	int (*kv_get)(struct salus_store *s, const char *ns, const char *key, char **val, size_t *n);
	int (*kv_del)(struct salus_store *s, const char *ns, const char *key);
	int (*kv_list)(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx);
	/* the audit log (checked by store.c like everything else) */
	int (*audit_write)(struct salus_store *s, struct salus_write *ops, size_t n, struct salus_audit_entry *e,
			   size_t ne);
	int (*audit_journal)(struct salus_store *s, const struct salus_audit_entry *e);
	int (*audit_settle)(struct salus_store *s);
	int (*read_begin)(struct salus_store *s); /* NULL: not offered (salus_store_read_begin is a no-op) */
	void (*read_end)(struct salus_store *s);
	int (*audit_size)(struct salus_store *s, int64_t *size);
	int (*audit_nodes)(struct salus_store *s, struct salus_audit_node *v, size_t n);
	int (*audit_scan)(struct salus_store *s, int64_t from, int64_t count, salus_audit_row_cb cb, void *ctx);
	int (*audit_checkpoint_put)(struct salus_store *s, int64_t size, const unsigned char *root, int64_t ts_ms,
				    const char *note);
	int (*audit_checkpoints)(struct salus_store *s, bool latest_only, salus_audit_checkpoint_cb cb, void *ctx);
	/* the identifier index (store.h) */
	int (*find_by_identifier)(struct salus_store *s, const char *type, const char *system, const char *value,
				  salus_id_cb cb, void *ctx);
	/* the search index (store_index.c) */
	int (*search)(struct salus_store *s, const struct salus_sq *q, salus_sq_cb cb, void *ctx);
	int (*search_count)(struct salus_store *s, const struct salus_sq *q, long *total);
	int (*search_plan)(struct salus_store *s, const struct salus_sq *q, bool count, char **plan);
	/* crypto-shredding (store.h) */
	int (*patient_erase)(struct salus_store *s, const char *pid, struct salus_erase_result *out);
	int (*patient_replay)(struct salus_store *s, size_t *npatients, long *nresources);
	int (*patient_rewrap)(struct salus_store *s, size_t *n);
	/* backup (store.h) */
	int (*backup)(struct salus_store *s, const char *dest_db, const char *dest_keys);
};

/* Every backend's store struct starts with this. */
struct salus_store {
	const struct salus_store_ops *ops;
	const struct salus_store_indexer *_Atomic indexer; /* search indexing hook (store.h); NULL: none */
};

extern const struct salus_store_ops salus_store_sqlite_ops;

/* Write id, meta.versionId and meta.lastUpdated into `res` (a JSON object;
 * other meta members are kept) and serialise it compactly into a new
 * salus_malloc'd string.  Errors: SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_store_stamp(json_t *res, const char *id, long version, int64_t updated_ms, char **json /* OUT */,
		      size_t *len /* OUT */);

/* salus_store_stamp for a write with raw text (store.h, salus_write.raw):
 * sets id and meta in `res` like salus_store_stamp, then splices the id and
 * the merged meta into raw (store/splice.h; compact: raw is
 * salus_write.raw_compact text, spliced by salus_json_splice_compact; res is
 * then only stamped when that splice declines).  Falls
 * back to serialising res when raw cannot be spliced.  Errors: SALUS_ENOMEM,
 * SALUS_ETOOLARGE. */
int salus_store_stamp_raw(json_t *res, const char *raw, size_t raw_len, bool compact, const char *id, long version,
			  int64_t updated_ms, char **json /* OUT */, size_t *len /* OUT */);

/* Reset the result fields of one write op (frees json). */
void salus_store_write_reset(struct salus_write *w);

#endif
