/*
 * store.h — the storage contract of Salus (DESIGN.md §4).
 *
 * A store keeps FHIR resources as versions: a current-version table apart from
 * history, every write a new version, delete a tombstone version.  Writes go
 * through one writer thread with group commit: concurrent salus_store_write
 * calls are batched into one transaction and one fsync, and each call returns
 * only after its transaction is durable (synchronous=FULL).  Readers never
 * block the writer.  All functions are thread-safe on one `struct salus_store`.
 *
 * Backends (sqlite: now; PostgreSQL: later) implement this header and pass the
 * contract suite in tests/unit/store/.  Backend error codes never escape: every
 * function returns SALUS_OK or a SALUS_E* code from core/err.h.
 *
 * The store owns `id` (on create without one), `meta.versionId` and
 * `meta.lastUpdated`: it writes them into the resource it is given before it
 * serialises it, so what is stored and returned is exactly what a read gives
 * (other meta fields the client sent — profile, tag, security — are kept).
 *
 * Time: updated_ms never decreases in seq order across the whole store, and
 * strictly increases from one version of a resource to the next (if the clock
 * did not move, +1 ms), so version order and time order always agree.  It is
 * deliberately not strictly increasing store-wide: at thousands of writes per
 * second that would push lastUpdated ahead of the wall clock without bound.
 */
#ifndef SALUS_STORE_H
#define SALUS_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/limits.h"

#define SALUS_MAX_TYPE 64

struct salus_store; /* opaque */

/* Process-wide set-up (routes SQLite's allocator through core/alloc.h).
 * Idempotent and thread-safe; salus_store_open calls it.  Call it before any
 * other code in the process uses SQLite (e.g. registers a VFS), otherwise
 * SQLite keeps its own allocator (logged, not an error).  Returns SALUS_OK. */
int salus_store_global_init(void);

struct salus_store_opts {
	bool create;        /* create the database and schema if missing */
	int readers;        /* read connections to pool (0: 2 x cores) */
	int batch_max;      /* max writes per group-commit transaction (0: 512) */
};

/* Open a store.  `uri` is "sqlite:PATH" or a plain file path (SQLite).
 * Errors: SALUS_ENOTFOUND (no database and !create), SALUS_EIO, SALUS_ENOMEM,
 * SALUS_EINVALID (unknown scheme, e.g. a postgres:// URI before that backend). */
int salus_store_open(const char *uri, const struct salus_store_opts *opts, struct salus_store **out /* OUT */);
/* Stop the writer (after draining its queue) and close.  NULL-safe. */
void salus_store_free(struct salus_store *s);

/* One stored version of a resource, as read. */
struct salus_resource {
	char type[SALUS_MAX_TYPE + 1];
	char id[SALUS_MAX_ID + 1];
	long version;       /* meta.versionId, 1, 2, 3... per resource */
	int64_t updated_ms; /* meta.lastUpdated, ms since epoch, UTC */
	int64_t seq;        /* store-wide, strictly increasing write sequence (history paging key) */
	bool deleted;       /* a tombstone: json is NULL */
	char *json;         /* owned: the resource as stored (compact JSON), NUL-terminated */
	size_t len;
};
void salus_resource_release(struct salus_resource *r); /* frees json; NULL-safe */

/* Read the current version (version == 0) or a given version (vread).
 * Errors: SALUS_ENOTFOUND (no such resource or version), SALUS_EGONE (current
 * version is a tombstone; *out is still filled with its type/id/version/
 * updated_ms and deleted = true, so the caller can answer 410 with an ETag). */
int salus_store_read(struct salus_store *s, const char *type, const char *id, long version,
		     struct salus_resource *out /* OUT */);

enum salus_write_kind {
	SALUS_WRITE_CREATE, /* new resource; id assigned (UUID) unless given and absent */
	SALUS_WRITE_UPDATE, /* new version; creates version 1 when the id is absent (update-as-create) */
	SALUS_WRITE_DELETE, /* tombstone version; deleting an absent or deleted resource is SALUS_OK with no new version */
};

/* One write.  Inputs are borrowed for the duration of the call. */
struct salus_write {
	enum salus_write_kind kind;
	const char *type;   /* resource type, already validated by the caller */
	const char *id;     /* CREATE: NULL for a server-assigned id; else required */
	json_t *resource;   /* CREATE/UPDATE: the resource; the store sets id and meta in it */
	long if_match;      /* 0: unconditional; else the current version must be this (SALUS_EPRECONDITION) */
	/* results, written by the store */
	int rc;             /* this write's status */
	char id_out[SALUS_MAX_ID + 1];
	long version;       /* the new (or, for a no-op delete, the current) version; 0 if none */
	int64_t updated_ms;
	bool created;       /* true when this write made version 1 of a new id */
	char *json;         /* owned: the stored JSON (NULL for delete); freed by salus_write_release */
	size_t len;
	int64_t seq;        /* the new version's store-wide seq; 0 if none (added after v0.1) */
};
void salus_write_release(struct salus_write *w); /* frees w->json */

/* Apply `n` writes atomically in order, in one transaction of the group
 * commit (all or nothing: if any fails, none is applied; every op's rc says
 * why, the first failing op's code is returned).  CREATE with a given id that
 * exists (even as a tombstone): SALUS_EEXISTS.  Returns after the transaction
 * is durable.
 * On failure: the op that failed carries the code in its rc; ops before it
 * (rolled back) and after it (not attempted) have rc == SALUS_OK with their
 * results cleared (version 0, json NULL) — so the first op with rc != 0 is the
 * culprit — except when the whole group-commit transaction failed (SALUS_EIO,
 * SALUS_EBUSY, SALUS_ENOMEM), where every op carries that code.
 * if_match != 0 needs a current row (possibly a tombstone) of exactly that
 * version, else SALUS_EPRECONDITION — this takes precedence over the no-op
 * DELETE rule.  On failure the store may already have set id/meta in the
 * given json_t resources.  Other errors: SALUS_EINVALID (bad op: unknown kind,
 * missing type/id, id not [A-Za-z0-9.-]{1,64}, resource not a JSON object),
 * SALUS_ETOOLARGE, SALUS_ENOMEM, SALUS_EIO, SALUS_EBUSY. */
int salus_store_write(struct salus_store *s, struct salus_write *ops, size_t n);

/* History query: newest first.  type NULL = system level; id NULL = type level. */
struct salus_history_q {
	const char *type;
	const char *id;
	int64_t since_ms;   /* 0: none; else only versions with updated_ms >= since_ms */
	int64_t before_seq; /* 0: from the newest; else only seq < before_seq (keyset paging) */
	int64_t at_most_seq;/* 0: none; else ignore versions written after this seq (a stable snapshot) */
	int count;          /* max versions to return (>= 1) */
};
/* Called once per version in order; json is borrowed for the call.  Return
 * non-zero to stop early (that value is then returned). */
typedef int (*salus_resource_cb)(void *ctx, const struct salus_resource *r);
/* Errors: SALUS_EINVALID (bad query), SALUS_EIO. */
int salus_store_history(struct salus_store *s, const struct salus_history_q *q, salus_resource_cb cb, void *ctx);
/* Number of versions the same query would return without count/paging (for Bundle.total). */
int salus_store_history_count(struct salus_store *s, const struct salus_history_q *q, long *total /* OUT */);
/* The newest seq written so far (0 for an empty store). */
int salus_store_last_seq(struct salus_store *s, int64_t *seq /* OUT */);

/* Current, non-deleted resources of one type, in id order after `after_id`
 * (NULL: from the start); a simple listing used until the search module lands. */
int salus_store_list(struct salus_store *s, const char *type, const char *after_id, int count,
		     salus_resource_cb cb, void *ctx);
/* Number of current, non-deleted resources of a type (NULL: all types). */
int salus_store_count(struct salus_store *s, const char *type, long *total /* OUT */);

/* Small key/value tables for server state (clients, keys, settings), written
 * through the same writer, durable on return.  ns and key are short ASCII
 * strings; value is opaque bytes (usually JSON). */
int salus_store_kv_put(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n);
/* Errors: SALUS_ENOTFOUND.  *val is NUL-terminated, freed with salus_free. */
int salus_store_kv_get(struct salus_store *s, const char *ns, const char *key, char **val /* OUT */,
		       size_t *n /* OUT, may be NULL */);
/* Errors: SALUS_ENOTFOUND. */
int salus_store_kv_del(struct salus_store *s, const char *ns, const char *key);
typedef int (*salus_kv_cb)(void *ctx, const char *key, const char *val, size_t n);
/* Every key of a namespace in key order; non-zero from cb stops and is returned. */
int salus_store_kv_list(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx);

#endif
