/*
 * store_backup.c — an online, encrypted copy of a SQLite store
 * (salus_store_backup, docs/backup.md).
 *
 * The database is copied with SQLite's online backup API from a pooled reader
 * connection: one read transaction, so the copy is a consistent snapshot while
 * the writer goes on committing to the WAL.  The reader was opened through the
 * store's encrypting VFS, and the destination is opened through the same VFS
 * with journal_mode=OFF, so every page of the copy is sealed (under the
 * current write key) on its way to disk; no plaintext page or journal is ever
 * written.
 * The audit database (salus_store_audit_path) is copied next, from a second read
 * transaction, so it holds the events of every write in the first.
 * The patient key database is copied after the snapshot (patkey.c): keys are
 * made durable before any body they seal is committed, so the key copy holds a
 * key for every sealed body of the database copy.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "store/patkey_int.h"
#include "store/store_sqlite_int.h"

/* Create dest empty with mode 0600, refusing an existing file (creating it
 * here fixes its mode and closes the race with another writer of the name). */
static int create_empty(const char *dest)
{
	int fd = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? SALUS_EEXISTS : SALUS_EIO;
	close(fd);
	return SALUS_OK;
}

/* fsync a finished copy (written with synchronous=OFF). */
static int sync_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc = SALUS_OK;
	if (fd < 0)
		return SALUS_EIO;
	if (fsync(fd))
		rc = SALUS_EIO;
	close(fd);
	return rc;
}

static int exec1(sqlite3 *db, const char *sql)
{
	return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? SALUS_OK
	                                                            : salus_sq_map_rc(sqlite3_errcode(db));
}

/* On a reader connection (one read transaction, so a consistent snapshot):
 * copy every page into dest, a connection through the same encrypting VFS
 * with journal_mode=OFF (a new file needs no rollback, and the VFS refuses
 * journals anyway).  Pages are copied as SQLite has them in memory (opened)
 * and sealed again by the VFS on their way into dest; the header, with its
 * page size and reserved-bytes count, comes with page 1. */
struct copy {
	const char *dest;
	const char *schema; /* "main" (the resource database) or "au" (the audit database) */
};

static int copy_pages(void *ctx, sqlite3 *src)
{
	const struct copy *cp = ctx;
	const char *dest = cp->dest;
	sqlite3_vfs *vfs = NULL;
	sqlite3 *out = NULL;
	sqlite3_backup *b;
	int rc;

	if (sqlite3_file_control(src, "main", SQLITE_FCNTL_VFS_POINTER, &vfs) != SQLITE_OK || !vfs)
		return SALUS_EINTERNAL;
	if (sqlite3_open_v2(dest, &out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, vfs->zName) !=
	    SQLITE_OK) {
		rc = SALUS_EIO;
		goto out;
	}
	if ((rc = exec1(out, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF")))
		goto out;
	if (!(b = sqlite3_backup_init(out, "main", src, cp->schema))) {
		rc = salus_sq_map_rc(sqlite3_extended_errcode(out));
		goto out;
	}
	int step = sqlite3_backup_step(b, -1);
	int fin = sqlite3_backup_finish(b);
	if (step != SQLITE_DONE)
		rc = salus_sq_map_rc(step);
	else if (fin != SQLITE_OK)
		rc = salus_sq_map_rc(fin);
out:
	if (out && sqlite3_close(out) != SQLITE_OK && !rc)
		rc = SALUS_EIO;
	return rc;
}

int salus_sq_backup(struct salus_store *s, const char *dest_db, const char *dest_keys)
{
	struct salus_pk *pk = salus_sq_pk(s);
	bool keys = dest_keys && pk;
	char dest_au[4096];
	int rc;

	if (salus_store_audit_path(dest_db, dest_au, sizeof dest_au))
		return SALUS_EINVALID;
	if ((rc = create_empty(dest_db)))
		return rc;
	if ((rc = create_empty(dest_au))) {
		unlink(dest_db);
		return rc;
	}
	if (keys && (rc = create_empty(dest_keys))) {
		unlink(dest_db);
		unlink(dest_au);
		return rc;
	}
	/* the resources, then the trail: its events of the resources' writes are in it (w_run_group
	 * commits the audit database first) */
	struct copy db = {dest_db, "main"}, au = {dest_au, "au"};
	rc = salus_sq_reader_call(s, copy_pages, &db);
	if (!rc)
		rc = salus_sq_reader_call(s, copy_pages, &au);
	if (!rc)
		rc = sync_file(dest_db);
	if (!rc)
		rc = sync_file(dest_au);
	if (!rc && keys && !(rc = salus_pk_backup(pk, dest_keys)))
		rc = sync_file(dest_keys);
	if (rc) {
		salus_log(SALUS_LOG_ERROR, "store.backup", "err=%s", salus_err_name(rc));
		unlink(dest_db);
		unlink(dest_au);
		if (keys)
			unlink(dest_keys);
	}
	return rc;
}
