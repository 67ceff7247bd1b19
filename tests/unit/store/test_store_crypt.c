/*
 * test_store_crypt.c — encryption at rest of the SQLite store (vfs_crypt.c,
 * docs/security.md): no plaintext in the database, WAL or shm files; the
 * sqlite3 library alone cannot open the file; wrong or missing keys fail;
 * a flipped byte is an integrity error, never wrong data; WAL recovery after
 * a crash; no journal or temp file is ever opened; rekey, including a resume
 * after a crash in the middle, online next to a writing and reading store,
 * and a torn read during it.  (The contract suite also runs encrypted:
 * ctest test_store_contract_encrypted.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "store/vfs_crypt.h"

#define NRES 6000 /* enough for several batches of 256 pages (rekey) */

struct fx {
	char dir[64];
	char path[128];
	char uri[140];
	char marker[48]; /* a unique plaintext that must never reach the disk */
	struct salus_page_key keys[2];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	char uuid[SALUS_UUID_LEN];
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-crypt-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/salus.db", f->dir);
	snprintf(f->uri, sizeof f->uri, "sqlite:%s", f->path);
	salus_uuid_new(uuid);
	snprintf(f->marker, sizeof f->marker, "ZEBRA-%s", uuid);
	for (int k = 0; k < 2; k++) {
		f->keys[k].id = (uint32_t)k + 1;
		for (int i = 0; i < SALUS_PAGE_KEY_LEN; i++)
			f->keys[k].key[i] = (unsigned char)(i * 7 + k * 101 + 3);
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	static const char *const files[] = {"salus.db", "salus.db-wal", "salus.db-shm", "salus.db-journal"};
	char p[160];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Open with keys [first, first + n) of the fixture, writing under write_id. */
static int open_keys(struct fx *f, bool create, size_t first, size_t n, uint32_t write_id, struct salus_store **s)
{
	struct salus_store_opts o = {.create = create, .readers = 2};
	if (n) {
		o.page_keys = &f->keys[first];
		o.npage_keys = n;
		o.page_key_id = write_id;
	}
	*s = NULL;
	return salus_store_open(f->uri, &o, s);
}

static int open1(struct fx *f, bool create, struct salus_store **s)
{
	return open_keys(f, create, 0, 1, 1, s);
}

static json_t *patient(const struct fx *f, int i)
{
	return json_pack("{s:s, s:[{s:s, s:[s]}], s:s, s:i}", "resourceType", "Patient", "name", "family", f->marker,
			 "given", "Alice", "birthDate", "1970-01-01", "n", i);
}

/* Create n patients with ids p0..p(n-1) (several per transaction). */
static void fill(struct fx *f, struct salus_store *s, int n)
{
	for (int i = 0; i < n; i += 10) {
		struct salus_write w[10];
		char ids[10][16];
		int k = n - i < 10 ? n - i : 10;
		memset(w, 0, sizeof w);
		for (int j = 0; j < k; j++) {
			snprintf(ids[j], sizeof ids[j], "p%d", i + j);
			w[j] = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = "Patient", .id = ids[j],
						    .resource = patient(f, i + j)};
		}
		assert_int_equal(salus_store_write(s, w, (size_t)k), SALUS_OK);
		for (int j = 0; j < k; j++) {
			salus_write_release(&w[j]);
			json_decref(w[j].resource);
		}
	}
	assert_int_equal(salus_store_kv_put(s, "test", "secret", f->marker, strlen(f->marker)), SALUS_OK);
}

/* Read every patient back; returns the first error (SALUS_OK if all match). */
static int check_all(struct fx *f, struct salus_store *s, int n)
{
	for (int i = 0; i < n; i++) {
		char id[16];
		struct salus_resource r;
		snprintf(id, sizeof id, "p%d", i);
		int rc = salus_store_read(s, "Patient", id, 0, &r);
		if (rc)
			return rc;
		/* never wrong data: a page either authenticates or the read fails */
		assert_non_null(strstr(r.json, f->marker));
		salus_resource_release(&r);
	}
	return SALUS_OK;
}

static bool file_has(const char *path, const void *needle, size_t n)
{
	FILE *fp = fopen(path, "rb");
	bool found = false;
	if (!fp)
		return false;
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);
	found = memmem(buf, (size_t)size, needle, n) != NULL;
	free(buf);
	return found;
}

static long file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) ? -1 : (long)st.st_size;
}

/* Neither the database, the WAL nor the shm file holds the marker or any of
 * a few other plaintexts that were written. */
static void assert_no_plaintext(struct fx *f)
{
	static const char *const files[] = {"salus.db",       "salus.db-wal",       "salus.db-shm",
					    "salus-audit.db", "salus-audit.db-wal", "salus-audit.db-shm"};
	static const char *const words[] = {"SQLite format 3", "Patient", "Alice", "1970-01-01", "CREATE TABLE"};
	char p[160];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
		assert_false(file_has(p, f->marker, strlen(f->marker)));
		for (size_t j = 0; j < sizeof words / sizeof *words; j++)
			if (file_has(p, words[j], strlen(words[j]))) {
				print_message("plaintext '%s' found in %s\n", words[j], files[i]);
				fail();
			}
	}
}


/* Pages of the database and WAL files sealed in format fmt (1: XChaCha20-Poly1305, 2: AES-256-GCM). */
static long pages_in_format(struct fx *f, int fmt)
{
	char p[160];
	unsigned char res[8];
	long n = 0;
	for (int w = 0; w < 2; w++) {
		snprintf(p, sizeof p, "%s/salus.db%s", f->dir, w ? "-wal" : "");
		FILE *fp = fopen(p, "rb");
		if (!fp)
			continue;
		long first = w ? 32 + 24 : 0, step = w ? 24 + SALUS_CRYPT_PAGE : SALUS_CRYPT_PAGE;
		for (long off = first + SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE;; off += step) {
			if (fseek(fp, off, SEEK_SET) || fread(res, 1, sizeof res, fp) != sizeof res)
				break;
			n += res[0] == fmt;
		}
		fclose(fp);
	}
	return n;
}

/* SALUS_PAGE_CIPHER for the stores opened next (NULL: unset). */
static void set_cipher(const char *c)
{
	if (c)
		assert_int_equal(setenv("SALUS_PAGE_CIPHER", c, 1), 0);
	else
		unsetenv("SALUS_PAGE_CIPHER");
}

static void rw_page(const char *path, long pgno, unsigned char *buf, bool write)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	if (write)
		assert_int_equal(pwrite(fd, buf, SALUS_CRYPT_PAGE, (pgno - 1) * SALUS_CRYPT_PAGE), SALUS_CRYPT_PAGE);
	else
		assert_int_equal(pread(fd, buf, SALUS_CRYPT_PAGE, (pgno - 1) * SALUS_CRYPT_PAGE), SALUS_CRYPT_PAGE);
	close(fd);
}

/* Read database page pgno of the fixture's file through a fresh VFS instance
 * holding both keys: the xRead result (SQLITE_IOERR_DATA: it failed to open). */
static int vfs_read_page_at(struct fx *f, const char *path, long pgno)
{
	struct salus_crypt_vfs *v = NULL;
	sqlite3 *db = NULL;
	sqlite3_file *fp = NULL;
	unsigned char buf[SALUS_CRYPT_PAGE];
	assert_int_equal(salus_crypt_vfs_new(f->keys, 2, 1, 0, &v), SALUS_OK);
	/* the open reads the header: page 1 */
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, salus_crypt_vfs_name(v));
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		salus_crypt_vfs_free(v);
		return rc;
	}
	assert_int_equal(sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &fp), SQLITE_OK);
	rc = fp->pMethods->xRead(fp, buf, SALUS_CRYPT_PAGE, (pgno - 1) * SALUS_CRYPT_PAGE);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
	return rc;
}

static int vfs_read_page(struct fx *f, long pgno)
{
	return vfs_read_page_at(f, f->path, pgno);
}

/* ---- tests ---- */

static void test_roundtrip_no_plaintext(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_crypt_stats st0, st1;
	char p[160];

	salus_crypt_stats_get(&st0);
	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 300);
	/* the sealed frames of a commit reach the WAL in a few writes, not one each (vfs_crypt.c, wb_add) */
	salus_crypt_stats_get(&st1);
	unsigned long sealed = st1.sealed_gcm + st1.sealed_xchacha - st0.sealed_gcm - st0.sealed_xchacha;
	unsigned long writes = st1.wal_frame_writes - st0.wal_frame_writes;
	assert_true(sealed > 60);
	assert_true(writes > 0 && writes * 3 < sealed);
	assert_int_equal(check_all(f, s, 300), SALUS_OK);
	/* while open: WAL and shm exist and hold no plaintext */
	snprintf(p, sizeof p, "%s/salus.db-wal", f->dir);
	assert_true(file_size(p) > 0);
	assert_no_plaintext(f);
	salus_store_free(s);
	assert_no_plaintext(f);

	/* reopen: still readable; history and lists too */
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 300), SALUS_OK);
	long total = 0;
	assert_int_equal(salus_store_count(s, "Patient", &total), SALUS_OK);
	assert_int_equal(total, 300);
	char *v = NULL;
	assert_int_equal(salus_store_kv_get(s, "test", "secret", &v, NULL), SALUS_OK);
	assert_string_equal(v, f->marker);
	salus_free(v);
	salus_store_free(s);

	/* no journal or temp file was ever opened (the VFS refuses them), none exists */
	salus_crypt_stats_get(&st1);
	assert_int_equal(st1.refused, st0.refused);
	assert_true(st1.opened_db > st0.opened_db);
	assert_true(st1.opened_wal > st0.opened_wal);
	assert_int_equal(st1.auth_failed, st0.auth_failed);
	snprintf(p, sizeof p, "%s/salus.db-journal", f->dir);
	assert_int_equal(file_size(p), -1);
}

static void test_sqlite_alone_cannot_open(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 20);
	salus_store_free(s);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	int rc = sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema", -1, &st, NULL);
	assert_int_equal(rc, SQLITE_NOTADB);
	assert_string_equal(sqlite3_errmsg(db), "file is not a database");
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void test_wrong_or_missing_key(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 20);
	salus_store_free(s);
	/* key 2 only: page 1 fails authentication */
	assert_int_equal(open_keys(f, false, 1, 1, 2, &s), SALUS_EINTEGRITY);
	assert_null(s);
	/* no key: not a database */
	assert_int_equal(open_keys(f, false, 0, 0, 0, &s), SALUS_EIO);
	assert_null(s);
	/* bad key sets */
	struct salus_store_opts o = {.page_keys = f->keys, .npage_keys = 1, .page_key_id = 9};
	assert_int_equal(salus_store_open(f->uri, &o, &s), SALUS_EINVALID);
	/* the right key still works */
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 20), SALUS_OK);
	salus_store_free(s);
}

static void flip(const char *path, long off)
{
	int fd = open(path, O_RDWR);
	unsigned char b;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x01;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_tamper_detected(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_crypt_stats st0, st1;
	long size;
	int detected = 0;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 200);
	salus_store_free(s); /* checkpointed: everything is in the database file */
	size = file_size(f->path);
	assert_true(size >= 8 * SALUS_CRYPT_PAGE);
	/* flip one bit in the body, the nonce and the tag of pages in turn */
	for (long pg = 0; pg < size / SALUS_CRYPT_PAGE; pg++) {
		long off = pg * SALUS_CRYPT_PAGE + (pg % 3 == 0 ? 1000 : pg % 3 == 1 ? SALUS_CRYPT_PAGE - 30 : SALUS_CRYPT_PAGE - 5);
		flip(f->path, off);
		salus_crypt_stats_get(&st0);
		int rc = open1(f, false, &s);
		if (rc == SALUS_OK) {
			rc = check_all(f, s, 200);
			long total = 0;
			if (!rc)
				rc = salus_store_history_count(s, &(struct salus_history_q){.count = 1}, &total);
			salus_store_free(s);
		}
		salus_crypt_stats_get(&st1);
		if (st1.auth_failed > st0.auth_failed) {
			/* the page was read: the call failed with the integrity error */
			assert_int_equal(rc, SALUS_EINTEGRITY);
			detected++;
		}
		flip(f->path, off); /* restore */
	}
	print_message("tampered pages detected: %d of %ld\n", detected, size / SALUS_CRYPT_PAGE);
	assert_true(detected >= 4);
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 200), SALUS_OK);
	salus_store_free(s);
}

/* The decrypted-page cache (vfs_crypt.c): after a commit has dropped the readers' page caches, pages
 * read again come from it — and a page whose bytes on disk changed since is not served from it but
 * opened, and fails. */
static void test_page_cache(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_crypt_stats st0, st1, st2;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 200);
	salus_store_free(s); /* everything in the database file */
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 200), SALUS_OK); /* fills both caches */
	salus_crypt_stats_get(&st0);
	assert_int_equal(salus_store_kv_put(s, "test", "bump", "1", 1), SALUS_OK); /* a commit */
	assert_int_equal(check_all(f, s, 200), SALUS_OK);
	salus_crypt_stats_get(&st1);
	assert_true(st1.cache_hits > st0.cache_hits);
	assert_int_equal(st1.auth_failed, st0.auth_failed);
	/* change every database page after page 1 on disk, drop the readers' caches again */
	assert_int_equal(salus_store_kv_put(s, "test", "bump", "2", 1), SALUS_OK);
	long size = file_size(f->path);
	for (long off = SALUS_CRYPT_PAGE + 100; off < size; off += SALUS_CRYPT_PAGE)
		flip(f->path, off);
	assert_int_equal(check_all(f, s, 200), SALUS_EINTEGRITY);
	salus_crypt_stats_get(&st2);
	assert_true(st2.auth_failed > st1.auth_failed);
	salus_store_free(s);
}

static void test_wal_recovery_after_crash(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	char p[160];

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	salus_store_free(s);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* the child writes and dies without closing: the WAL keeps the frames */
		if (open1(f, false, &s))
			_exit(2);
		fill(f, s, 100);
		_exit(0);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	snprintf(p, sizeof p, "%s/salus.db-wal", f->dir);
	assert_true(file_size(p) > 100 * 100);
	assert_no_plaintext(f);
	/* recovery reads every frame back through the VFS */
	struct salus_crypt_stats st0;
	salus_crypt_stats_get(&st0);
	int orc = open1(f, false, &s);
	struct salus_crypt_stats st1;
	salus_crypt_stats_get(&st1);
	assert_int_equal(orc, SALUS_OK);
	assert_int_equal(st1.auth_failed, st0.auth_failed); /* no frame was dropped */
	assert_int_equal(check_all(f, s, 100), SALUS_OK);
	salus_store_free(s);
}

struct progress {
	uint32_t next;
	int calls;
	int stop_after; /* 0: never; else stop (or _exit in a child) after this many calls */
	bool die;
};

static int on_progress(void *ctx, uint32_t next, uint32_t npages)
{
	struct progress *pr = ctx;
	(void)npages;
	pr->next = next;
	pr->calls++;
	if (pr->stop_after && pr->calls >= pr->stop_after) {
		if (pr->die)
			_exit(0); /* a crash: nothing is closed or flushed by us */
		return 42;
	}
	return 0;
}

/* Pages of the database files (resources, audit) and frames of their WALs sealed under key
 * `id` (raw: the key id in each page's reserved bytes). */
static long pages_under(struct fx *f, uint32_t id)
{
	static const char *const files[] = {"salus.db", "salus.db-wal", "salus-audit.db", "salus-audit.db-wal"};
	char p[160];
	unsigned char res[8];
	long n = 0;
	for (int i = 0; i < 4; i++) {
		int w = i % 2;
		snprintf(p, sizeof p, "%s/%s", f->dir, files[i]);
		FILE *fp = fopen(p, "rb");
		if (!fp)
			continue;
		long first = w ? 32 + 24 : 0, step = w ? 24 + SALUS_CRYPT_PAGE : SALUS_CRYPT_PAGE;
		for (long off = first + SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE;; off += step) {
			if (fseek(fp, off, SEEK_SET) || fread(res, 1, sizeof res, fp) != sizeof res)
				break;
			uint32_t k = (uint32_t)res[4] | (uint32_t)res[5] << 8 | (uint32_t)res[6] << 16 | (uint32_t)res[7] << 24;
			n += (res[0] == 1 || res[0] == 2) && k == id;
		}
		fclose(fp);
	}
	return n;
}

/* Online rekey: a store that holds key 2 as its next key keeps writing and
 * reading from several threads while another connection (in the server's
 * place) rekeys to 2; it switches to 2 when it first reads a page under it;
 * nothing fails, every write reads back, and no page is left under key 1. */
struct load {
	struct fx *f;
	struct salus_store *s;
	volatile int stop;
	int base;       /* ids w<base>... for this writer */
	int written;    /* patients written (each read back at the end) */
	int errors;
};

static void *load_writer(void *arg)
{
	struct load *l = arg;
	while (!l->stop) {
		char id[24];
		snprintf(id, sizeof id, "w%d", l->base + l->written);
		struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = "Patient", .id = id,
					.resource = patient(l->f, l->written)};
		if (salus_store_write(l->s, &w, 1))
			l->errors++;
		else
			l->written++;
		salus_write_release(&w);
		json_decref(w.resource);
	}
	return NULL;
}

static void *load_reader(void *arg)
{
	struct load *l = arg;
	for (unsigned i = 0; !l->stop; i++) {
		char id[16];
		struct salus_resource r;
		snprintf(id, sizeof id, "p%u", i % NRES);
		if (salus_store_read(l->s, "Patient", id, 0, &r)) {
			l->errors++;
			continue;
		}
		if (!strstr(r.json, l->f->marker))
			l->errors++;
		salus_resource_release(&r);
	}
	return NULL;
}

static void test_rekey_online(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_store_opts so = {.readers = 2, .page_keys = f->keys, .npage_keys = 2, .page_key_id = 1,
				      .page_key_next = 2};
	struct salus_store_opts o = {.page_keys = f->keys, .npage_keys = 2, .page_key_id = 2};
	struct load lw = {.f = f}, lr = {.f = f};
	pthread_t tw, tr;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, NRES);
	salus_store_free(s);
	/* a next key the store does not hold is refused */
	so.page_key_next = 3;
	assert_int_equal(salus_store_open(f->uri, &so, &s), SALUS_EINVALID);
	so.page_key_next = 2;
	assert_int_equal(salus_store_open(f->uri, &so, &s), SALUS_OK);
	lw.s = lr.s = s;
	assert_int_equal(pthread_create(&tw, NULL, load_writer, &lw), 0);
	assert_int_equal(pthread_create(&tr, NULL, load_reader, &lr), 0);
	usleep(200000);
	struct progress pr = {0};
	assert_int_equal(salus_store_rekey(f->uri, &o, 1, on_progress, &pr), SALUS_OK);
	int before = lw.written;
	usleep(200000); /* the store goes on writing, now under key 2 */
	lw.stop = lr.stop = 1;
	pthread_join(tw, NULL);
	pthread_join(tr, NULL);
	print_message("online rekey: %d writes, %d reads failed; %d written during, %d after\n", lw.errors, lr.errors,
		      before, lw.written - before);
	assert_int_equal(lw.errors, 0);
	assert_int_equal(lr.errors, 0);
	assert_true(lw.written > before);
	salus_store_free(s); /* checkpoints its WAL: under key 2 as well */
	assert_int_equal(pages_under(f, 1), 0);
	assert_true(pages_under(f, 2) > 0);
	/* key 1 is no longer needed for anything */
	assert_int_equal(open_keys(f, false, 1, 1, 2, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, NRES), SALUS_OK);
	for (int i = 0; i < lw.written; i++) {
		char id[24];
		struct salus_resource r;
		snprintf(id, sizeof id, "w%d", i);
		assert_int_equal(salus_store_read(s, "Patient", id, 0, &r), SALUS_OK);
		salus_resource_release(&r);
	}
	salus_store_free(s);
	assert_no_plaintext(f);
}

/* A reader that meets a page failing authentication while someone holds the
 * WAL checkpointer lock exclusively (an online rekey rewriting pages in
 * place) waits for the lock and reads the page again, instead of failing: a
 * torn read is never reported as an integrity error.  Simulated: every page
 * but the first is garbled while the lock is held, and restored before it is
 * released. */
struct tread {
	struct fx *f;
	struct salus_store *s;
	int rc;
	volatile int done;
};

static void *torn_reader(void *arg)
{
	struct tread *t = arg;
	t->rc = check_all(t->f, t->s, 200);
	t->done = 1;
	return NULL;
}

static void test_torn_read_waits_for_rekey(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_crypt_vfs *v = NULL;
	sqlite3 *db = NULL;
	sqlite3_file *fp = NULL;
	struct salus_crypt_stats st0, st1;

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 200);
	salus_store_free(s); /* everything in the database file */
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	/* the "rekey": a connection of its own that takes the checkpointer lock */
	assert_int_equal(salus_crypt_vfs_new(f->keys, 1, 1, 0, &v), SALUS_OK);
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, salus_crypt_vfs_name(v)), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &fp), SQLITE_OK);
	assert_int_equal(fp->pMethods->xShmLock(fp, 1, 1, SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE), SQLITE_OK);
	/* pages 2.. "half rewritten" */
	long size = file_size(f->path);
	for (long off = SALUS_CRYPT_PAGE + 100; off < size; off += SALUS_CRYPT_PAGE)
		flip(f->path, off);
	salus_crypt_stats_get(&st0);
	struct tread t = {.f = f, .s = s};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, torn_reader, &t), 0);
	usleep(300000);
	assert_false(t.done); /* waiting, not failed */
	for (long off = SALUS_CRYPT_PAGE + 100; off < size; off += SALUS_CRYPT_PAGE)
		flip(f->path, off); /* the "rewrite" completes */
	assert_int_equal(fp->pMethods->xShmLock(fp, 1, 1, SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE), SQLITE_OK);
	pthread_join(th, NULL);
	assert_int_equal(t.rc, SALUS_OK);
	salus_crypt_stats_get(&st1);
	assert_int_equal(st1.auth_failed, st0.auth_failed); /* nothing was reported */
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
	salus_store_free(s);
}

static void test_rekey_resume(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_store_opts o = {.page_keys = f->keys, .npage_keys = 2, .page_key_id = 2};
	struct progress pr = {.stop_after = 1};

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, NRES);
	salus_store_free(s);
	print_message("database: %ld pages\n", file_size(f->path) / SALUS_CRYPT_PAGE);

	/* a run stopped after its first batch: some pages under key 2, the rest under 1 */
	assert_int_equal(salus_store_rekey(f->uri, &o, 1, on_progress, &pr), 42);
	assert_true(pr.next > 1);
	assert_true(pages_under(f, 1) > 0 && pages_under(f, 2) > 0);
	/* key 2 alone: the old pages fail (at open, or when read) */
	int orc = open_keys(f, false, 1, 1, 2, &s);
	if (orc == SALUS_OK) {
		assert_int_equal(check_all(f, s, NRES), SALUS_EINTEGRITY);
		salus_store_free(s);
	} else {
		assert_int_equal(orc, SALUS_EINTEGRITY);
	}
	assert_int_equal(open_keys(f, false, 0, 2, 2, &s), SALUS_OK); /* both keys: all readable */
	assert_int_equal(check_all(f, s, NRES), SALUS_OK);
	salus_store_free(s);

	/* a crash (child _exit) in the second batch, then a resume from the progress */
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct progress cpr = {.stop_after = 1, .die = true};
		salus_store_rekey(f->uri, &o, pr.next, on_progress, &cpr);
		_exit(3);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
	struct progress pr2 = {0};
	assert_int_equal(salus_store_rekey(f->uri, &o, pr.next, on_progress, &pr2), SALUS_OK);
	/* every page is under key 2 now: key 1 is no longer needed */
	assert_int_equal(pages_under(f, 1), 0);
	assert_int_equal(open_keys(f, false, 1, 1, 2, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, NRES), SALUS_OK);
	fill(f, s, 10);
	salus_store_free(s);
	assert_no_plaintext(f);
	/* idempotent */
	assert_int_equal(salus_store_rekey(f->uri, &o, 1, NULL, NULL), SALUS_OK);
}


/* The cipher is recorded per page: a file written with XChaCha20-Poly1305, then
 * opened by a store that seals with AES-256-GCM (and back), holds pages of both
 * kinds and reads the same under either setting. */
static void test_cipher_per_page(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	struct salus_crypt_stats st0, st1;
	const char *was = getenv("SALUS_PAGE_CIPHER");
	char *saved = was ? strdup(was) : NULL;

	set_cipher("xchacha20-poly1305");
	salus_crypt_stats_get(&st0);
	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 200);
	salus_store_free(s);
	salus_crypt_stats_get(&st1);
	assert_true(st1.sealed_xchacha > st0.sealed_xchacha);
	assert_int_equal(st1.sealed_gcm, st0.sealed_gcm);
	assert_true(pages_in_format(f, 1) > 0);
	assert_int_equal(pages_in_format(f, 2), 0);

	set_cipher("aes-256-gcm");
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 200), SALUS_OK);
	salus_crypt_stats_get(&st0);
	fill(f, s, 60); /* updates p0..p59: new pages in format 2 */
	assert_int_equal(check_all(f, s, 200), SALUS_OK);
	salus_store_free(s);
	salus_crypt_stats_get(&st1);
	assert_true(st1.sealed_gcm > st0.sealed_gcm);
	assert_int_equal(st1.sealed_xchacha, st0.sealed_xchacha);
	long n1 = pages_in_format(f, 1), n2 = pages_in_format(f, 2);
	print_message("pages: %ld XChaCha20-Poly1305, %ld AES-256-GCM\n", n1, n2);
	assert_true(n1 > 0 && n2 > 0);
	assert_no_plaintext(f);

	/* both kinds open under either setting, and under auto */
	static const char *const all[] = {"xchacha20-poly1305", "aes-256-gcm", "auto"};
	for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
		set_cipher(all[i]);
		assert_int_equal(open1(f, false, &s), SALUS_OK);
		assert_int_equal(check_all(f, s, 200), SALUS_OK);
		salus_store_free(s);
	}
	/* an unknown setting is refused, not silently replaced */
	set_cipher("rot13");
	assert_int_equal(open1(f, false, &s), SALUS_EINVALID);
	assert_null(s);
	set_cipher(saved);
	free(saved);
}

/* A sealed page is bound to its place: moved to another page number, taken
 * from the WAL into the database at its own page number, relabelled with the
 * other format or another key id, it fails to open (run under both ciphers:
 * ctest test_store_crypt and test_store_crypt_xchacha). */
static void test_page_swap(void **state)
{
	struct fx *f = *state;
	struct salus_store *s;
	unsigned char a[SALUS_CRYPT_PAGE], b[SALUS_CRYPT_PAGE], t[SALUS_CRYPT_PAGE];
	char wal[160];

	assert_int_equal(open1(f, true, &s), SALUS_OK);
	fill(f, s, 200);
	salus_store_free(s); /* checkpointed: every page in the database file */
	long npages = file_size(f->path) / SALUS_CRYPT_PAGE;
	assert_true(npages >= 8);
	for (long pg = 1; pg <= npages; pg++)
		assert_int_equal(vfs_read_page(f, pg), SQLITE_OK);

	/* page 3 written over page 5 (and 5 over 3): both fail; restored: both open */
	rw_page(f->path, 3, a, false);
	rw_page(f->path, 5, b, false);
	rw_page(f->path, 5, a, true);
	rw_page(f->path, 3, b, true);
	assert_int_equal(vfs_read_page(f, 3), SQLITE_IOERR_DATA);
	assert_int_equal(vfs_read_page(f, 5), SQLITE_IOERR_DATA);
	rw_page(f->path, 3, a, true);
	rw_page(f->path, 5, b, true);
	assert_int_equal(vfs_read_page(f, 3), SQLITE_OK);
	assert_int_equal(vfs_read_page(f, 5), SQLITE_OK);

	/* the format byte or the key id changed: fails */
	memcpy(t, a, sizeof t);
	t[SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE] ^= 3; /* 1 <-> 2 */
	rw_page(f->path, 3, t, true);
	assert_int_equal(vfs_read_page(f, 3), SQLITE_IOERR_DATA);
	memcpy(t, a, sizeof t);
	t[SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE + 4] ^= 3; /* key id 1 -> 2 (the reader holds both) */
	rw_page(f->path, 3, t, true);
	assert_int_equal(vfs_read_page(f, 3), SQLITE_IOERR_DATA);
	rw_page(f->path, 3, a, true);

	/* a WAL frame's page image, authentic for the WAL, put at its own page number in the database */
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	fill(f, s, 30); /* frames in the WAL, not checkpointed while the store is open */
	snprintf(wal, sizeof wal, "%s/salus.db-wal", f->dir);
	FILE *fp = fopen(wal, "rb");
	assert_non_null(fp);
	unsigned char hdr[24], img1[SALUS_CRYPT_PAGE];
	long pgno = 0;
	bool have1 = false;
	for (long off = 32;; off += 24 + SALUS_CRYPT_PAGE) {
		assert_int_equal(fseek(fp, off, SEEK_SET), 0);
		assert_int_equal(fread(hdr, 1, sizeof hdr, fp), sizeof hdr);
		assert_int_equal(fread(t, 1, sizeof t, fp), sizeof t);
		pgno = (long)hdr[0] << 24 | (long)hdr[1] << 16 | (long)hdr[2] << 8 | hdr[3];
		if (pgno == 1 && !have1) {
			memcpy(img1, t, sizeof img1);
			have1 = true;
		}
		if (pgno > 1 && have1)
			break;
	}
	fclose(fp);
	salus_store_free(s);
	assert_true(pgno > 1 && pgno <= file_size(f->path) / SALUS_CRYPT_PAGE);
	/* page 1 from the WAL: the open itself fails */
	rw_page(f->path, 1, a, false);
	rw_page(f->path, 1, img1, true);
	assert_int_equal(vfs_read_page(f, 2), SQLITE_IOERR_DATA);
	rw_page(f->path, 1, a, true);
	rw_page(f->path, pgno, a, false);
	assert_int_equal(vfs_read_page(f, pgno), SQLITE_OK);
	rw_page(f->path, pgno, t, true);
	assert_int_equal(vfs_read_page(f, pgno), SQLITE_IOERR_DATA);
	rw_page(f->path, pgno, a, true);
	assert_int_equal(open1(f, false, &s), SALUS_OK);
	assert_int_equal(check_all(f, s, 200), SALUS_OK);
	salus_store_free(s);
}

/* A raw database through a VFS instance of its own (the fixture's key 1), with one table. */
static sqlite3 *raw_open_at(struct fx *f, const char *path, struct salus_crypt_vfs **v)
{
	sqlite3 *db = NULL;
	int reserve = SALUS_CRYPT_RESERVE;
	assert_int_equal(salus_crypt_vfs_new(f->keys, 1, 1, 0, v), SALUS_OK);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, salus_crypt_vfs_name(*v)),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_file_control(db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
	assert_int_equal(sqlite3_exec(db, "PRAGMA temp_store=MEMORY; PRAGMA journal_mode=MEMORY; PRAGMA journal_mode=WAL;"
					  "CREATE TABLE IF NOT EXISTS t(a)",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	return db;
}

static sqlite3 *raw_open(struct fx *f, struct salus_crypt_vfs **v)
{
	return raw_open_at(f, f->path, v);
}

/* An instance seals only in the process that created it: a forked child holds
 * copies of its salt, counters and nonce prefixes, so its pages would reuse
 * the parent's nonces.  The child's write fails; the parent's go on, and a
 * new instance in the child works. */
static void test_fork_refuses_seal(void **state)
{
	struct fx *f = *state;
	struct salus_crypt_vfs *v = NULL;
	sqlite3 *db = raw_open(f, &v);

	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES (1)", NULL, NULL, NULL), SQLITE_OK);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc = sqlite3_exec(db, "INSERT INTO t VALUES (2)", NULL, NULL, NULL);
		_exit((rc & 0xff) == SQLITE_IOERR ? 0 : 1);
	}
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);

	db = raw_open(f, &v);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES (3)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
	/* a child with an instance of its own seals */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct salus_crypt_vfs *cv = NULL;
		sqlite3 *cdb = NULL;
		int rc = salus_crypt_vfs_new(f->keys, 1, 1, 0, &cv);
		if (!rc)
			rc = sqlite3_open_v2(f->path, &cdb, SQLITE_OPEN_READWRITE, salus_crypt_vfs_name(cv));
		if (!rc)
			rc = sqlite3_exec(cdb, "INSERT INTO t VALUES (4)", NULL, NULL, NULL);
		sqlite3_close(cdb);
		salus_crypt_vfs_free(cv);
		_exit(rc == SQLITE_OK ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFEXITED(ws));
	assert_int_equal(WEXITSTATUS(ws), 0);
	db = raw_open(f, &v);
	sqlite3_stmt *st = NULL;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(a) FROM t", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "1,3,4");
	sqlite3_finalize(st);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
}

/* A store's two databases (resources, and the audit database `<base>-audit.db`)
 * are sealed under the same keys; a format 2 page names its file's role in its
 * associated data, so a page of one at the same page number in the other
 * fails (format 1 pages cannot tell them apart: docs/security.md). */
static void test_page_other_file(void **state)
{
	struct fx *f = *state;
	const char *was = getenv("SALUS_PAGE_CIPHER");
	char *saved = was ? strdup(was) : NULL;
	char au[160], wal[170];
	struct salus_crypt_vfs *v = NULL;
	unsigned char a[SALUS_CRYPT_PAGE], b[SALUS_CRYPT_PAGE];

	set_cipher("aes-256-gcm");
	snprintf(au, sizeof au, "%s/salus-audit.db", f->dir);
	sqlite3 *db = raw_open_at(f, f->path, &v);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES ('resource')", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
	db = raw_open_at(f, au, &v);
	assert_int_equal(sqlite3_exec(db, "INSERT INTO t VALUES ('audit')", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
	assert_int_equal(vfs_read_page_at(f, f->path, 2), SQLITE_OK);
	assert_int_equal(vfs_read_page_at(f, au, 2), SQLITE_OK);
	/* the table's page of each file in the other */
	rw_page(f->path, 2, a, false);
	rw_page(au, 2, b, false);
	assert_int_equal(a[SALUS_CRYPT_PAGE - SALUS_CRYPT_RESERVE], 2);
	rw_page(f->path, 2, b, true);
	rw_page(au, 2, a, true);
	assert_int_equal(vfs_read_page_at(f, f->path, 2), SQLITE_IOERR_DATA);
	assert_int_equal(vfs_read_page_at(f, au, 2), SQLITE_IOERR_DATA);
	rw_page(f->path, 2, a, true);
	rw_page(au, 2, b, true);
	assert_int_equal(vfs_read_page_at(f, f->path, 2), SQLITE_OK);
	assert_int_equal(vfs_read_page_at(f, au, 2), SQLITE_OK);
	unlink(au);
	snprintf(wal, sizeof wal, "%s-wal", au);
	unlink(wal);
	snprintf(wal, sizeof wal, "%s-shm", au);
	unlink(wal);
	set_cipher(saved);
	free(saved);
}

/* A transaction larger than the connection's page cache: SQLite spills pages
 * into the WAL before the commit, rewrites spilled frames in place when their
 * page changes again, and at the commit rewrites the checksums of every frame
 * from the first one rewritten (frame headers on their own, whole frames
 * read back).  Every page must still authenticate: read back in the same
 * connection, after a reopen (WAL recovery) and after a checkpoint. */
static void test_spilling_transaction(void **state)
{
	struct fx *f = *state;
	struct salus_crypt_vfs *v = NULL;
	sqlite3 *db = raw_open(f, &v);
	sqlite3_stmt *st = NULL;

	assert_int_equal(sqlite3_exec(db, "PRAGMA cache_size=16; CREATE TABLE u(a, b); BEGIN", NULL, NULL, NULL),
			 SQLITE_OK);
	for (int round = 0; round < 3; round++) {
		/* rows into two tables (pages spilled, then changed again), a table
		 * created and dropped (page 1 changed late) */
		assert_int_equal(sqlite3_exec(db,
					      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000) "
					      "INSERT INTO t SELECT randomblob(300) FROM c;"
					      "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) "
					      "INSERT INTO u SELECT i, randomblob(200) FROM c;"
					      "UPDATE t SET a = randomblob(310) WHERE rowid % 7 = 0;"
					      "CREATE TABLE x(a); DROP TABLE x;",
					      NULL, NULL, NULL),
				 SQLITE_OK);
	}
	assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	for (int pass = 0; pass < 3; pass++) {
		if (pass == 1) { /* reopened: the WAL recovered from the file */
			sqlite3_close(db);
			salus_crypt_vfs_free(v);
			db = raw_open(f, &v);
		}
		if (pass == 2)
			assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL), SQLITE_OK);
		assert_int_equal(sqlite3_prepare_v2(db,
						    "SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM u), "
						    "(SELECT integrity_check FROM pragma_integrity_check)",
						    -1, &st, NULL),
				 SQLITE_OK);
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		assert_int_equal(sqlite3_column_int(st, 0), 9000);
		assert_int_equal(sqlite3_column_int(st, 1), 6000);
		assert_string_equal((const char *)sqlite3_column_text(st, 2), "ok");
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	salus_crypt_vfs_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip_no_plaintext, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sqlite_alone_cannot_open, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_or_missing_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tamper_detected, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cipher_per_page, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_swap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_refuses_seal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_page_other_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_recovery_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spilling_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_online, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_read_waits_for_rekey, setup, teardown),
	};
	salus_alloc_install();
	salus_store_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
