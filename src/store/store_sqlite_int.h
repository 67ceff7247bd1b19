/*
 * store_sqlite_int.h — what store_sqlite.c lends to the other files of the
 * SQLite backend that keep their own tables (store_audit_ix.c): a job on the
 * single writer (inside the group-commit transaction, under its own
 * savepoint, like every write) and a pooled reader connection.  Internal to
 * the store; not for other modules.
 */
#ifndef SALUS_STORE_SQLITE_INT_H
#define SALUS_STORE_SQLITE_INT_H
#include <sqlite3.h>

#include "store/store.h"

/* Run fn(ctx, db) on the writer connection as one job of a group commit and
 * wait until that group is durable.  A non-zero return from fn rolls back
 * what fn wrote (and only that) and is returned.  fn must not wait on the
 * store.  Errors: fn's, or those of the group (SALUS_EIO, SALUS_EBUSY,
 * SALUS_ENOMEM), SALUS_EINTERNAL (the store is closing). */
int salus_sq_writer_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx);
/* The same on the audit database's writer connection (its tables: store.h, "the audit log"). */
int salus_sq_audit_writer_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx);

/* Run fn(ctx, db) on a pooled read-only connection (query_only; the audit database attached
 * as "au", its tables found by their names); returns fn's
 * result, or SALUS_ENOMEM / SALUS_EIO when no connection could be had. */
int salus_sq_reader_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx);

/* A SQLite result code as a SALUS_E* code. */
int salus_sq_map_rc(int rc);

struct salus_pk;
/* The store's patient key database (patkey_int.h); NULL when it has none. */
struct salus_pk *salus_sq_pk(struct salus_store *s);

/* Test seam of the commit pipeline (docs/store.md "Durability off the writer's path"): when set,
 * called on every fdatasync of a writer's WAL just before it, with audit = true for the audit
 * database's WAL (on the writer thread) and false for the resource database's (on the syncer
 * thread); a non-zero return makes that sync fail as if fdatasync had (the store then fails
 * closed).  Set it only while no store is open.  NULL in production. */
extern int (*salus_sq_sync_hook)(void *ctx, bool audit);
extern void *salus_sq_sync_hook_ctx;

/* salus_store_backup of the SQLite backend (store_backup.c). */
int salus_sq_backup(struct salus_store *s, const char *dest_db, const char *dest_keys);

#endif
