/*
 * test_audit_journal.c — the audit journal (store/audit_journal.h; docs/audit.md
 * "The journal"): records read back as written, in order, from the given
 * sequence number on; a torn last record is the end of the file; a flipped
 * byte, an unknown or wrong key, or a sequence that does not increase is an
 * integrity error; one process owns a journal; and the store moves what a
 * crash left in the journal into the Merkle log at open, exactly once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/audit_codec.h"
#include "store/audit_journal.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char db[128], path[160];
};

static const struct salus_page_key k1 = {.id = 1, .key = {1, 2, 3}};
static const struct salus_page_key k2 = {.id = 2, .key = {9, 9, 9}};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-aj-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/salus.db", f->dir);
	snprintf(f->path, sizeof f->path, "%s-auditj", f->db);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

struct seen {
	int n;
	uint64_t seq[64];
	char pre[64][32];
	bool post[64];
};

static int collect(void *ctx, const struct salus_aj_rec *r)
{
	struct seen *s = ctx;
	if (s->n >= 64)
		return SALUS_EINTERNAL;
	s->seq[s->n] = r->seq;
	snprintf(s->pre[s->n], sizeof s->pre[0], "%.*s", (int)r->pre_n, (const char *)r->pre);
	s->post[s->n] = r->post != NULL;
	s->n++;
	return 0;
}

static void append_n(struct salus_ajournal *j, uint64_t from, int n)
{
	for (int i = 0; i < n; i++) {
		char pre[32];
		int pn = snprintf(pre, sizeof pre, "event-%llu", (unsigned long long)(from + (uint64_t)i));
		struct salus_aj_rec r = {.seq = from + (uint64_t)i, .ts_ms = 1000 + i, .pre = (unsigned char *)pre,
					 .pre_n = (size_t)pn, .post = i % 2 ? (const unsigned char *)"tail" : NULL,
					 .post_n = i % 2 ? 4 : 0};
		assert_int_equal(salus_ajournal_append(j, &r), 0);
	}
}

static long file_size(const char *p)
{
	struct stat sb;
	return stat(p, &sb) ? -1 : (long)sb.st_size;
}

/* One past the last non-zero byte of the file: how far records reach (the file itself is
 * preallocated). */
static long extent(const char *p)
{
	static unsigned char b[1 << 16];
	FILE *f = fopen(p, "rb");
	long at = 0, end = 0;
	size_t n;
	assert_non_null(f);
	while ((n = fread(b, 1, sizeof b, f)) > 0) {
		for (size_t i = 0; i < n; i++)
			if (b[i])
				end = at + (long)i + 1;
		at += (long)n;
	}
	fclose(f);
	return end;
}

static void zero_range(const char *p, long from, long to)
{
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	for (long i = from; i < to; i++)
		assert_int_equal(pwrite(fd, "", 1, i), 1);
	close(fd);
}

static void flip_byte(const char *p, long at)
{
	int fd = open(p, O_RDWR);
	unsigned char c;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, at), 1);
	c ^= 0x40;
	assert_int_equal(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

static void test_roundtrip(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL, *j2 = NULL;
	struct seen s = {0};
	uint64_t last;

	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_size(j), 0);
	append_n(j, 1, 10);
	assert_true(salus_ajournal_size(j) > 0);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 10);
	assert_int_equal(last, 10);
	assert_string_equal(s.pre[0], "event-1");
	assert_string_equal(s.pre[9], "event-10");
	assert_false(s.post[0]);
	assert_true(s.post[1]);
	/* from a sequence number on */
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 7, collect, &s, &last), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.seq[0], 8);
	/* one owner at a time */
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j2), SALUS_EBUSY);
	/* the text is not in the file */
	char cmd[256];
	snprintf(cmd, sizeof cmd, "grep -q event- %s", f->path);
	assert_int_not_equal(system(cmd), 0);
	/* emptied */
	assert_int_equal(salus_ajournal_reset(j), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(last, 0);
	salus_ajournal_free(j);
	/* a new opening after the lock is gone; records under an older key still open */
	assert_int_equal(salus_ajournal_open(f->path, (struct salus_page_key[]){k1, k2}, 2, 2, &j), 0);
	append_n(j, 11, 2);
	salus_ajournal_free(j);
	const struct salus_page_key both[] = {k1, k2};
	assert_int_equal(salus_ajournal_open(f->path, both, 2, 1, &j), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 2);
	salus_ajournal_free(j);
	/* without the key that sealed them: integrity error, never a silent skip */
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	salus_ajournal_free(j);
}

static void test_torn_and_tampered(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	struct seen s = {0};
	uint64_t last;

	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	append_n(j, 1, 5);
	salus_ajournal_free(j);
	long size = file_size(f->path);
	/* a torn last record (a crash during its write): the four before it */
	assert_int_equal(truncate(f->path, size - 3), 0);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(last, 4);
	salus_ajournal_free(j);
	/* a flipped byte in a body: integrity error */
	flip_byte(f->path, SALUS_AJ_HEADER + 45);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	salus_ajournal_free(j);
	flip_byte(f->path, SALUS_AJ_HEADER + 45);
	/* a changed sequence number (bound as associated data) */
	flip_byte(f->path, SALUS_AJ_HEADER + 8);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	salus_ajournal_free(j);
	/* not a journal */
	FILE *o = fopen(f->path, "w");
	assert_non_null(o);
	fputs("this is not a journal at all", o);
	fclose(o);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), SALUS_EINVALID);
}

/* After a power loss the preallocated file can hold the last record up to a page boundary and zeros
 * after it: that record is the end.  The same zeros in a record that is not the last, or a last
 * record damaged without that shape, are integrity errors. */
static void test_power_loss_tail(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	struct seen s = {0};
	uint64_t last;
	char pre[600];
	long ends[16];

	memset(pre, 'p', sizeof pre);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	for (int i = 0; i < 16; i++) {
		struct salus_aj_rec r = {.seq = (uint64_t)i + 1, .ts_ms = 7, .pre = (unsigned char *)pre, .pre_n = sizeof pre};
		assert_int_equal(salus_ajournal_append(j, &r), 0);
		ends[i] = (long)salus_ajournal_size(j) + SALUS_AJ_HEADER;
	}
	/* the zero tail after the last record is the end of the records */
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 16);
	assert_int_equal(last, 16);
	salus_ajournal_free(j);
	/* a record crossing a page boundary: find one (records are 672 bytes) */
	int k = -1;
	for (int i = 1; i < 16 && k < 0; i++)
		if (ends[i - 1] / 4096 != (ends[i] - 1) / 4096 && ends[i] % 4096)
			k = i;
	assert_true(k > 0);
	long pb = (ends[k - 1] / 4096 + 1) * 4096;
	/* it is the last: cut the journal after it, then lose its second page */
	zero_range(f->path, ends[k], ends[k] + 4);
	zero_range(f->path, pb, ends[k]);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, k);
	assert_int_equal(last, (uint64_t)k);
	salus_ajournal_free(j);
	/* the same record, but one byte short of that shape: damage, not a torn write */
	flip_byte(f->path, ends[k] - 1);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	salus_ajournal_free(j);
}

/* Another process reads only the record headers, through a window: across window boundaries, with
 * the preallocated zero tail after the records, and after the file is emptied. */
static void test_last_seq_of_file(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	char pre[1000];

	memset(pre, 'q', sizeof pre);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_last_seq(f->path), 0);
	for (int i = 1; i <= 300; i++) { /* ~316 KB: several 64 KB windows */
		struct salus_aj_rec r = {.seq = (uint64_t)i, .ts_ms = 1, .pre = (unsigned char *)pre, .pre_n = sizeof pre};
		assert_int_equal(salus_ajournal_append(j, &r), 0);
		if (i == 1 || i == 150)
			assert_int_equal(salus_ajournal_last_seq(f->path), (uint64_t)i);
	}
	assert_true(file_size(f->path) >= (8L << 20)); /* preallocated */
	assert_int_equal(salus_ajournal_last_seq(f->path), 300);
	assert_int_equal(salus_ajournal_reset(j), 0);
	assert_int_equal(salus_ajournal_last_seq(f->path), 0);
	struct salus_aj_rec r = {.seq = 301, .ts_ms = 1, .pre = (unsigned char *)pre, .pre_n = 10};
	assert_int_equal(salus_ajournal_append(j, &r), 0);
	assert_int_equal(salus_ajournal_last_seq(f->path), 301);
	salus_ajournal_free(j);
	/* closed: cut back to its records */
	assert_true(file_size(f->path) < 4096);
	assert_int_equal(salus_ajournal_last_seq(f->path), 301);
}

/* Records past the preallocated 8 MB: the file and its mapping grow, and read back. */
static void test_grows(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	struct seen s = {0};
	uint64_t last;
	size_t n = 1500 * 1024;
	unsigned char *big = malloc(n);

	assert_non_null(big);
	memset(big, 'g', n);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	for (int i = 1; i <= 7; i++) {
		struct salus_aj_rec r = {.seq = (uint64_t)i, .ts_ms = i, .pre = big, .pre_n = n};
		assert_int_equal(salus_ajournal_append(j, &r), 0);
	}
	assert_true(file_size(f->path) > (8L << 20));
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 7);
	assert_int_equal(last, 7);
	salus_ajournal_free(j);
	free(big);
	assert_int_equal(salus_ajournal_last_seq(f->path), 7);
}

/* Both seals read back, in one file and across openings (each AES opening has its own key); the
 * cipher bit is bound as associated data. */
static void test_both_ciphers(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	struct seen s = {0};
	uint64_t last;

	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	assert_int_equal(salus_ajournal_set_aes(j, false), 0);
	append_n(j, 1, 3); /* XChaCha20-Poly1305 */
	int aes = salus_ajournal_set_aes(j, true);
	assert_true(aes == SALUS_OK || aes == SALUS_EINVALID); /* EINVALID: no AES-NI here */
	append_n(j, 4, 3);
	salus_ajournal_free(j);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0); /* a new opening: new AES key */
	append_n(j, 7, 2);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), 0);
	assert_int_equal(s.n, 8);
	assert_int_equal(last, 8);
	assert_string_equal(s.pre[3], "event-4");
	assert_string_equal(s.pre[7], "event-8");
	salus_ajournal_free(j);
	/* the first record's cipher bit (the length word's top bit) flipped: it no longer opens */
	int fd = open(f->path, O_RDWR);
	unsigned char c;
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, &c, 1, SALUS_AJ_HEADER + 3), 1);
	c ^= 0x80;
	assert_int_equal(pwrite(fd, &c, 1, SALUS_AJ_HEADER + 3), 1);
	close(fd);
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	memset(&s, 0, sizeof s);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	assert_int_equal(s.n, 0);
	salus_ajournal_free(j);
}

static void test_sequence_must_increase(void **state)
{
	struct fx *f = *state;
	struct salus_ajournal *j = NULL;
	struct seen s = {0};
	uint64_t last;
	assert_int_equal(salus_ajournal_open(f->path, NULL, 0, 0, &j), 0);
	append_n(j, 5, 1);
	append_n(j, 3, 1);
	assert_int_equal(salus_ajournal_replay(j, 0, collect, &s, &last), SALUS_EINTEGRITY);
	salus_ajournal_free(j);
}

/* The store: journaled entries reach the log; what a crash left in the journal is moved at the
 * next open, once; a journal another process owns is not touched. */
static struct salus_store *open_store(struct fx *f, bool journal)
{
	struct salus_store *st = NULL;
	struct salus_store_opts o = {.create = true, .page_keys = &k1, .npage_keys = 1, .page_key_id = 1,
				     .audit_journal = journal};
	assert_int_equal(salus_store_open(f->db, &o, &st), 0);
	return st;
}

static int count_rows(void *ctx, const struct salus_audit_row *r)
{
	int *n = ctx;
	char want[48];
	snprintf(want, sizeof want, "{\"i\":%d,\"e\":\"x\"}", *n);
	assert_int_equal(r->index, *n);
	assert_int_equal(r->event_n, strlen(want));
	assert_memory_equal(r->event, want, r->event_n);
	(*n)++;
	return 0;
}

static void journal_left_by_crash(struct fx *f, uint64_t from, int n)
{
	/* what a server that died before its writer moved them leaves: records past the kv row */
	struct salus_ajournal *j = NULL;
	assert_int_equal(salus_ajournal_open(f->path, &k1, 1, 1, &j), 0);
	for (int i = 0; i < n; i++) {
		unsigned char pre[16], post[16];
		size_t pn = salus_auc_encode("{\"i\":", 5, pre), qn = salus_auc_encode(",\"e\":\"x\"}", 9, post);
		struct salus_aj_rec r = {.seq = from + (uint64_t)i, .ts_ms = 5, .pre = pre, .pre_n = pn, .post = post,
					 .post_n = qn};
		assert_int_equal(salus_ajournal_append(j, &r), 0);
	}
	salus_ajournal_free(j);
}

static void test_store_recovery(void **state)
{
	struct fx *f = *state;
	struct salus_store *st = open_store(f, true), *other;
	int64_t size;
	int n = 0;

	for (int i = 0; i < 3; i++) {
		struct salus_audit_entry e = {.pre = "{\"i\":", .pre_n = 5, .post = ",\"e\":\"x\"}", .post_n = 9, .ts_ms = 5};
		assert_int_equal(salus_store_audit_journal(st, &e), 0);
	}
	/* a second process next to it: the journal is the first one's */
	{
		struct salus_store_opts o = {.page_keys = &k1, .npage_keys = 1, .page_key_id = 1, .audit_journal = true};
		assert_int_equal(salus_store_open(f->db, &o, &other), 0);
		struct salus_audit_entry e = {.pre = "{\"i\":", .pre_n = 5, .post = ",\"e\":\"x\"}", .post_n = 9, .ts_ms = 5};
		assert_int_equal(salus_store_audit_settle(st), 0);
		assert_int_equal(salus_store_audit_journal(other, &e), 0); /* direct: index 3 */
		salus_store_free(other);
	}
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 4);
	salus_store_free(st);
	assert_int_equal(file_size(f->path), SALUS_AJ_HEADER); /* emptied at close: all in the log */

	/* seq 1..3 are in the log (kv row 3); a crash leaves 4..8 in the journal */
	journal_left_by_crash(f, 4, 5);
	st = open_store(f, false); /* a CLI command: recovers, then lets go */
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 9);
	assert_int_equal(salus_store_audit_scan(st, 0, 0, count_rows, &n), 0);
	assert_int_equal(n, 9);
	salus_store_free(st);
	/* the same records again (below the kv row): skipped, never twice */
	journal_left_by_crash(f, 4, 5);
	st = open_store(f, true);
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 9);
	salus_store_free(st);
	/* a damaged journal stops the open (the log must not silently lose events) */
	journal_left_by_crash(f, 9, 2);
	flip_byte(f->path, SALUS_AJ_HEADER + 50);
	struct salus_store_opts o = {.page_keys = &k1, .npage_keys = 1, .page_key_id = 1, .audit_journal = true};
	assert_int_equal(salus_store_open(f->db, &o, &st), SALUS_EINTEGRITY);
}

/* With a journal key of its own (the salus binary's file key), records open whatever page keys the
 * store has by then (a rekey may have retired the one current when they were written). */
static void test_store_own_key(void **state)
{
	struct fx *f = *state;
	static const unsigned char jkey[SALUS_PAGE_KEY_LEN] = {7, 7, 7};
	const struct salus_page_key own = {.id = SALUS_AJ_OWN_KEY, .key = {7, 7, 7}};
	struct salus_store *st = NULL;
	struct salus_ajournal *j = NULL;
	int64_t size;

	st = open_store(f, false);
	salus_store_free(st);
	assert_int_equal(salus_ajournal_open(f->path, &own, 1, own.id, &j), 0);
	unsigned char pre[16];
	size_t pn = salus_auc_encode("{\"x\":1}", 7, pre);
	struct salus_aj_rec r = {.seq = 1, .ts_ms = 5, .pre = pre, .pre_n = pn};
	assert_int_equal(salus_ajournal_append(j, &r), 0);
	salus_ajournal_free(j);
	/* under page key 2 only now: the record still opens */
	struct salus_store_opts o = {.page_keys = (struct salus_page_key[]){k1, k2}, .npage_keys = 2, .page_key_id = 2,
				     .audit_journal = true, .audit_journal_key = jkey};
	assert_int_equal(salus_store_open(f->db, &o, &st), 0);
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 1);
	struct salus_audit_entry e = {.pre = "{\"y\":2}", .pre_n = 7, .ts_ms = 6};
	assert_int_equal(salus_store_audit_journal(st, &e), 0);
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 2);
	salus_store_free(st);
}

/* Under a steady stream of appends the file is emptied every few MB (the appends wait for the writer
 * once), so it never grows without bound, and nothing is lost. */
static void test_store_bounded(void **state)
{
	struct fx *f = *state;
	struct salus_store *st = open_store(f, true);
	char pre[320];
	int64_t size;
	long biggest = 0;
	memset(pre, 'x', sizeof pre);
	memcpy(pre, "{\"i\":", 5);
	for (int i = 0; i < 20000; i++) {
		struct salus_audit_entry e = {.pre = pre, .pre_n = sizeof pre, .post = "}", .post_n = 1, .ts_ms = 5};
		assert_int_equal(salus_store_audit_journal(st, &e), 0);
		if (i % 500 == 0) {
			long sz = extent(f->path);
			biggest = sz > biggest ? sz : biggest;
			assert_true(file_size(f->path) <= (8L << 20)); /* the preallocation did not grow */
		}
	}
	assert_true(biggest > 0);
	assert_true(biggest < (5L << 20)); /* 20,000 x ~370 bytes = 7.4 MB were appended */
	assert_int_equal(salus_store_audit_size(st, &size), 0);
	assert_int_equal(size, 20000);
	salus_store_free(st);
}

int main(void)
{
	salus_alloc_install();
	salus_store_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_and_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_power_loss_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_last_seq_of_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grows, setup, teardown),
		cmocka_unit_test_setup_teardown(test_both_ciphers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sequence_must_increase, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_own_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_bounded, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
