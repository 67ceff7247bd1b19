/*
 * test_store_backup.c — salus_store_backup (store_backup.c, docs/backup.md):
 * the copy of an encrypted store opens with the same page keys and the same
 * patient key database copy and yields every resource and version written
 * before it, none written after it; no plaintext of the bodies or of the
 * index is in either copy file; the copy does not open with other page keys;
 * an existing destination is refused and left untouched; a backup taken while
 * another thread writes is a consistent snapshot (every resource of the copy
 * reads, and history agrees with the current rows).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char db[128], uri[140], keys[128], bdb[128], buri[140], bkeys[128];
	struct salus_page_key page[2];
	struct salus_page_key pwk;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-backup-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/salus.db", f->dir);
	snprintf(f->uri, sizeof f->uri, "sqlite:%s", f->db);
	snprintf(f->keys, sizeof f->keys, "%s/patient-keys.db", f->dir);
	snprintf(f->bdb, sizeof f->bdb, "%s/copy.db", f->dir);
	snprintf(f->buri, sizeof f->buri, "sqlite:%s", f->bdb);
	snprintf(f->bkeys, sizeof f->bkeys, "%s/copy-keys.db", f->dir);
	for (int k = 0; k < 2; k++) {
		f->page[k].id = (uint32_t)k + 1;
		for (int i = 0; i < SALUS_PAGE_KEY_LEN; i++)
			f->page[k].key[i] = (unsigned char)(i * 7 + k * 91 + 3);
	}
	f->pwk.id = 1;
	for (int i = 0; i < SALUS_PAGE_KEY_LEN; i++)
		f->pwk.key[i] = (unsigned char)(i * 13 + 1);
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

/* Open uri with page key k (0 or 1) and the patient key database keys. */
static int open_at(struct fx *f, const char *uri, int k, const char *keys, bool create,
                   struct salus_store **s)
{
	struct salus_store_opts o = {.create = create,
	                             .readers = 2,
	                             .page_keys = &f->page[k],
	                             .npage_keys = 1,
	                             .page_key_id = f->page[k].id,
	                             .patient_keys = keys,
	                             .pwks = &f->pwk,
	                             .npwks = 1};
	return salus_store_open(uri, &o, s);
}

static int put(struct salus_store *s, const char *type, const char *id, const char *owner, const char *text)
{
	char json[512];
	struct salus_ix ix = {.patient = owner};
	snprintf(json, sizeof json,
	         "{\"resourceType\":\"%s\",\"text\":{\"status\":\"generated\",\"div\":\"%s\"}}", type, text);
	json_t *res = json_loads(json, 0, NULL);
	if (!res)
		return SALUS_ENOMEM;
	struct salus_write w = {
	    .kind = SALUS_WRITE_UPDATE, .type = type, .id = id, .resource = res, .index = &ix};
	int rc = salus_store_write(s, &w, 1);
	salus_write_release(&w);
	json_decref(res);
	return rc;
}

/* The body of (type, id, version) contains needle. */
static bool reads(struct salus_store *s, const char *type, const char *id, long version, const char *needle)
{
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(s, type, id, version, &r);
	bool ok = rc == SALUS_OK && r.json && strstr(r.json, needle);
	salus_resource_release(&r);
	return ok;
}

static bool file_has(const char *path, const char *needle)
{
	FILE *fp = fopen(path, "rb");
	size_t n = strlen(needle), len, i;
	char *buf;
	bool hit = false;
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	len = (size_t)ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc(len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, len, fp), len);
	fclose(fp);
	for (i = 0; i + n <= len && !hit; i++)
		hit = !memcmp(buf + i, needle, n);
	free(buf);
	return hit;
}

static void test_copy_reads_back(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL, *c = NULL;
	struct stat st;

	assert_int_equal(open_at(f, f->uri, 0, f->keys, true, &s), SALUS_OK);
	assert_int_equal(put(s, "Patient", "p1", NULL, "Zebedee Quartermaine"), SALUS_OK);
	assert_int_equal(put(s, "Patient", "p1", NULL, "Zebedee Quartermaine v2"), SALUS_OK);
	assert_int_equal(put(s, "Observation", "o1", "p1", "Xylophone reading"), SALUS_OK);
	assert_int_equal(put(s, "Organization", "org1", NULL, "Marmalade Clinic"), SALUS_OK);
	assert_int_equal(salus_store_backup(s, f->bdb, f->bkeys), SALUS_OK);
	assert_int_equal(put(s, "Patient", "p2", NULL, "After Backup"), SALUS_OK);

	/* an existing destination is refused and left as it was */
	assert_int_equal(stat(f->bdb, &st), 0);
	off_t size = st.st_size;
	assert_true(size > 0);
	assert_int_equal((int)(st.st_mode & 0777), 0600);
	assert_int_equal(salus_store_backup(s, f->bdb, NULL), SALUS_EEXISTS);
	assert_int_equal(stat(f->bdb, &st), 0);
	assert_int_equal(st.st_size, size);
	salus_store_free(s);

	/* no plaintext in the copies (bodies are sealed twice: record and page) */
	assert_false(file_has(f->bdb, "Quartermaine"));
	assert_false(file_has(f->bdb, "Xylophone"));
	assert_false(file_has(f->bdb, "Marmalade"));
	assert_false(file_has(f->bdb, "SQLite format 3"));
	assert_false(file_has(f->bkeys, "Quartermaine"));

	/* the copy with the same page key and the key copy */
	assert_int_equal(open_at(f, f->buri, 0, f->bkeys, false, &c), SALUS_OK);
	assert_true(reads(c, "Patient", "p1", 0, "Quartermaine v2"));
	assert_true(reads(c, "Patient", "p1", 1, "Zebedee Quartermaine"));
	assert_true(reads(c, "Observation", "o1", 0, "Xylophone"));
	assert_true(reads(c, "Organization", "org1", 0, "Marmalade"));
	struct salus_resource r = {.json = NULL};
	assert_int_equal(salus_store_read(c, "Patient", "p2", 0, &r), SALUS_ENOTFOUND);
	salus_resource_release(&r);
	salus_store_free(c);

	/* with another page key the copy does not open (or reads nothing) */
	c = NULL;
	int rc = open_at(f, f->buri, 1, f->bkeys, false, &c);
	if (rc == SALUS_OK) {
		assert_false(reads(c, "Patient", "p1", 0, "Quartermaine"));
		salus_store_free(c);
	} else {
		assert_true(rc == SALUS_EINTEGRITY || rc == SALUS_EIO);
	}
}

/* A writer thread keeps updating while the backup runs. */
struct writer {
	struct salus_store *s;
	volatile int stop;
	int n, rc;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char id[32], text[64];
	while (!w->stop && !w->rc && w->n < 20000) {
		snprintf(id, sizeof id, "w%d", w->n % 50);
		snprintf(text, sizeof text, "Concurrent %d", w->n);
		w->rc = put(w->s, "Patient", id, NULL, text);
		w->n++;
	}
	return NULL;
}

struct cnt {
	long n;
};

static int count_cb(void *ctx, const struct salus_resource *r)
{
	struct cnt *c = ctx;
	(void)r;
	c->n++;
	return 0;
}

static void test_online_snapshot(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL, *c = NULL;
	struct writer w = {.n = 0};
	pthread_t t;

	assert_int_equal(open_at(f, f->uri, 0, f->keys, true, &s), SALUS_OK);
	for (int i = 0; i < 200; i++) {
		char id[16];
		snprintf(id, sizeof id, "b%d", i);
		assert_int_equal(put(s, "Patient", id, NULL, "Baseline Person"), SALUS_OK);
	}
	w.s = s;
	assert_int_equal(pthread_create(&t, NULL, writer_main, &w), 0);
	while (w.n < 100 && !w.rc)
		usleep(1000);
	assert_int_equal(salus_store_backup(s, f->bdb, f->bkeys), SALUS_OK);
	w.stop = 1;
	pthread_join(t, NULL);
	assert_int_equal(w.rc, SALUS_OK);
	salus_store_free(s);

	assert_int_equal(open_at(f, f->buri, 0, f->bkeys, false, &c), SALUS_OK);
	for (int i = 0; i < 200; i++) {
		char id[16];
		snprintf(id, sizeof id, "b%d", i);
		assert_true(reads(c, "Patient", id, 0, "Baseline"));
	}
	/* every version in the copy's history reads (sealed under a key in the key copy) */
	struct cnt all = {0};
	struct salus_history_q q = {.count = 100000};
	assert_int_equal(salus_store_history(c, &q, count_cb, &all), SALUS_OK);
	assert_true(all.n >= 200);
	long current = 0;
	assert_int_equal(salus_store_count(c, "Patient", &current), SALUS_OK);
	assert_true(current >= 200 && current <= 250);
	salus_store_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_copy_reads_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_online_snapshot, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
