/* vfs_crypt.c — libFuzzer target: database files read through the page-encrypting VFS
 * (store/vfs_crypt.h; docs/security.md "Page format").  Any bytes as a database file: every whole
 * page either opens — and then its reserved bytes named a known format (1 XChaCha20-Poly1305,
 * 2 AES-256-GCM) and key id 1, and SQLite is handed zeros there — or fails with
 * SQLITE_IOERR_DATA; never anything else, never a read past the page.  Then SQLite itself reads
 * the file (schema, integrity check), which must fail cleanly on whatever does not open.
 * Seeds: small databases (one table, a few rows) sealed under the key below in each format, and
 * the same with a byte of the reserved area changed. */
#include <fcntl.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"
#include "store/vfs_crypt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct salus_crypt_vfs *vfs;
static char dir[] = "/tmp/salus-fuzz-vfs-XXXXXX";
static char path[64], wal[72], shm[72];

/* key id 1: bytes i * 7 + 3 (the unit test's first key) */
static void init(void)
{
	struct salus_page_key k = {.id = 1};
	for (int i = 0; i < SALUS_PAGE_KEY_LEN; i++)
		k.key[i] = (unsigned char)(i * 7 + 3);
	if (!mkdtemp(dir) || snprintf(path, sizeof path, "%s/f.db", dir) >= (int)sizeof path)
		abort();
	snprintf(wal, sizeof wal, "%s-wal", path);
	snprintf(shm, sizeof shm, "%s-shm", path);
	if (salus_crypt_vfs_new(&k, 1, 1, 0, &vfs) != SALUS_OK)
		abort();
}

static int cb(void *ctx, int n, char **v, char **c)
{
	(void)ctx, (void)n, (void)v, (void)c;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	sqlite3 *db = NULL;
	sqlite3_file *fp = NULL;
	unsigned char page[SALUS_CRYPT_PAGE];

	if (!vfs)
		init();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size))
		abort();
	close(fd);
	/* page by page, straight through the VFS (the open itself reads page 1) */
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, salus_crypt_vfs_name(vfs));
	if (rc == SQLITE_OK && sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &fp) == SQLITE_OK && fp) {
		for (size_t off = 0; off + SALUS_CRYPT_PAGE <= size; off += SALUS_CRYPT_PAGE) {
			const uint8_t *res = data + off + SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE;
			int r = fp->pMethods->xRead(fp, page, SALUS_CRYPT_PAGE, (sqlite3_int64)off);
			if (r == SQLITE_IOERR_DATA)
				continue;
			if (r != SQLITE_OK || (res[0] != 1 && res[0] != 2) || res[1] || res[2] || res[3] ||
			    (res[4] | res[5] << 8 | res[6] << 16 | (uint32_t)res[7] << 24) != 1)
				abort();
			for (size_t i = SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE; i < SALUS_CRYPT_PAGE; i++)
				if (page[i])
					abort();
		}
		/* SQLite on top: any outcome but a crash */
		sqlite3_exec(db, "PRAGMA temp_store=MEMORY; SELECT name, sql FROM sqlite_schema; PRAGMA quick_check",
			     cb, NULL, NULL);
	}
	sqlite3_close(db);
	unlink(path);
	unlink(wal);
	unlink(shm);
	return 0;
}
