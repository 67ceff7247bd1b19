/*
 * vfs_crypt.h — the page-encrypting SQLite VFS (internal to src/store/).
 *
 * A shim over the default (unix) VFS in the manner of SQLite's
 * ext/misc/cksumvfs.c: every page of the main database and every page image
 * of its WAL is sealed with an AEAD on its way to disk and opened
 * (authenticated) on its way back: AES-256-GCM (format 2) where the CPU has
 * AES-NI, XChaCha20-Poly1305 (format 1) otherwise; each page says which, so
 * files holding both read fine.  The page keeps SQLite's layout; the last
 * SALUS_CRYPT_RESERVE bytes of each page — SQLite's "reserved bytes", which
 * the b-tree never touches — carry:
 *
 *   [0]      format (1: XChaCha20-Poly1305, 2: AES-256-GCM)
 *   [1..3]   zero
 *   [4..7]   key id (little endian) of the page key that sealed it
 *   [8..31]  format 1: 24-byte nonce (16 random bytes per handle, counter)
 *            format 2: 16 random bytes of the sealing instance (which pick
 *            its AES key, derived from the page key), 64-bit counter (the
 *            GCM nonce is four zero bytes and the counter)
 *   [32..47] 16-byte tag
 *
 * Associated data binds a page to where it lives: the file kind (database or
 * WAL), for format 2 the file's role (resources, or the audit database
 * `<base>-audit.db`), the page number, the first 8 bytes above and, for a
 * WAL frame, the frame's salts (its WAL generation).  See docs/security.md for the design,
 * the WAL checksum argument and the threat model.
 *
 * Each encrypted store registers its own VFS instance (its own name, its own
 * keys); the instance must outlive every connection opened through it.
 */
#ifndef SALUS_STORE_VFS_CRYPT_H
#define SALUS_STORE_VFS_CRYPT_H
#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SALUS_CRYPT_PAGE 4096  /* the only page size an encrypted database uses */
#define SALUS_CRYPT_RESERVE 48 /* reserved bytes per page (layout above) */

struct salus_crypt_vfs; /* opaque */

/* Create and register a VFS instance over the default VFS with a copy of the
 * n keys (in sodium_malloc'd memory, read-only once loaded); new pages are
 * sealed under key write_id, which must be one of them.  next_id (0: none,
 * else one of the keys) is the key an online rekey will move to: the first
 * page this instance authenticates under it makes it the write key (an
 * online rekey in another process has started; docs/security.md).
 * Errors: SALUS_EINVALID (no keys, duplicate ids, write_id or next_id
 * unknown), SALUS_ENOMEM, SALUS_EINTERNAL (registration failed). */
int salus_crypt_vfs_new(const struct salus_page_key *keys, size_t n, uint32_t write_id, uint32_t next_id,
			struct salus_crypt_vfs **out /* OUT */);
/* The registered name, for sqlite3_open_v2 (borrowed). */
const char *salus_crypt_vfs_name(const struct salus_crypt_vfs *v);
/* Unregister, wipe the keys and free.  Only after every connection through
 * it is closed.  NULL-safe. */
void salus_crypt_vfs_free(struct salus_crypt_vfs *v);

/* Statistics of all instances in this process (tests). */
struct salus_crypt_stats {
	unsigned long opened_db;   /* main database files opened */
	unsigned long opened_wal;  /* WAL files opened */
	unsigned long refused;     /* any other file (journal, temp) refused */
	unsigned long auth_failed; /* pages that failed authentication */
	unsigned long cache_hits;  /* page reads answered by the decrypted-page cache */
	unsigned long cache_misses; /* page reads that went through the cipher */
	unsigned long sealed_gcm;   /* pages sealed with AES-256-GCM (format 2) */
	unsigned long sealed_xchacha; /* pages sealed with XChaCha20-Poly1305 (format 1) */
	unsigned long wal_frame_writes; /* writes of sealed WAL frames (several frames gathered in one) */
};
void salus_crypt_stats_get(struct salus_crypt_stats *out /* OUT */);

/* Re-seal the pages of the database open on `db` (through an instance, in
 * WAL mode) from page `from` to its end under the instance's write key, next
 * to other connections and processes: each batch of `batch` pages is read
 * raw, opened and re-sealed while this connection holds the WAL's
 * checkpointer lock (only a checkpoint writes database pages in WAL mode, so
 * no page changes underneath; readers that race a rewrite re-read it, see
 * db_page_read).  Pages already under the write key are skipped, so a run
 * can resume anywhere.  After every batch the file is synced and
 * cb(ctx, next_page, npages) is called; a non-zero return stops the run and
 * is returned.  *resealed (may be NULL) gets the number of pages re-sealed.
 * Errors: SALUS_EINTEGRITY (a page fails authentication), SALUS_EBUSY (the
 * checkpointer lock was not free for 30 s), SALUS_EIO. */
int salus_crypt_rekey_file(sqlite3 *db, uint32_t from, uint32_t batch, salus_rekey_cb cb, void *ctx,
			   uint32_t *resealed /* OUT */);

#endif
