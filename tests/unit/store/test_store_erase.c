/*
 * test_store_erase.c — per-patient record keys and crypto-shredding
 * (patkey.c, store.h "crypto-shredding", docs/security.md): bodies of a
 * patient's compartment are sealed (no plaintext in the rows), bound to their
 * identity (a body moved to another row fails), erased patients answer gone
 * on every read path, others are intact, a copy of the database made before
 * the erasure cannot yield the erased bodies (with or without the replay), the
 * key database keeps only a tombstone, re-wrapping moves the keys to the new
 * wrapping key, and an erasure cannot run while another process has the keys.
 *
 * The database is plaintext here (no page keys) so the test can look at the
 * rows with the sqlite3 library: the record layer is what is under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "crypto/pwk.h"
#include "store/store.h"

struct fx {
	char dir[64];
	char db[128], uri[140], keys[128];
	struct salus_page_key pwk[2];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-erase-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/salus.db", f->dir);
	snprintf(f->uri, sizeof f->uri, "sqlite:%s", f->db);
	snprintf(f->keys, sizeof f->keys, "%s/patient-keys.db", f->dir);
	for (int k = 0; k < 2; k++) {
		f->pwk[k].id = (uint32_t)k + 1;
		for (int i = 0; i < SALUS_PAGE_KEY_LEN; i++)
			f->pwk[k].key[i] = (unsigned char)(i * 13 + k * 57 + 1);
	}
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

/* Open with wrapping keys [first, first + n). */
static int open_store(struct fx *f, size_t first, size_t n, bool exclusive, struct salus_store **s)
{
	struct salus_store_opts o = {.create = true, .readers = 2, .patient_keys = f->keys, .pwks = &f->pwk[first],
				     .npwks = n, .patient_keys_exclusive = exclusive};
	return salus_store_open(f->uri, &o, s);
}

/* Write one resource (owned by patient `owner` unless it is a Patient). */
static void put(struct salus_store *s, const char *type, const char *id, const char *owner, const char *text)
{
	char json[512];
	struct salus_ix ix = {.patient = owner};
	snprintf(json, sizeof json, "{\"resourceType\":\"%s\",\"text\":{\"status\":\"generated\",\"div\":\"%s\"}}", type,
		 text);
	json_t *res = json_loads(json, 0, NULL);
	assert_non_null(res);
	struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = type, .id = id, .resource = res, .index = &ix};
	assert_int_equal(salus_store_write(s, &w, 1), SALUS_OK);
	salus_write_release(&w);
	json_decref(res);
}

static int read_rc(struct salus_store *s, const char *type, const char *id, long version, long *got_version)
{
	struct salus_resource r = {.json = NULL};
	int rc = salus_store_read(s, type, id, version, &r);
	if (got_version)
		*got_version = r.version;
	salus_resource_release(&r);
	return rc;
}

struct hits {
	const char *needle;
	long n;
};

static int count_cb(void *ctx, const struct salus_resource *r)
{
	struct hits *h = ctx;
	if (r->json && strstr(r->json, h->needle))
		h->n++;
	return 0;
}

/* Versions in the store-wide history whose body contains needle. */
static long history_hits(struct salus_store *s, const char *needle)
{
	struct hits h = {.needle = needle};
	struct salus_history_q q = {.count = 1000};
	assert_int_equal(salus_store_history(s, &q, count_cb, &h), SALUS_OK);
	return h.n;
}

static long list_hits(struct salus_store *s, const char *type, const char *needle)
{
	struct hits h = {.needle = needle};
	assert_int_equal(salus_store_list(s, type, NULL, 1000, count_cb, &h), SALUS_OK);
	return h.n;
}

/* Rows of the raw database (plaintext here) whose body contains needle, by SQL. */
static long raw_count(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;
	long n = -1;
	assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

static void raw_exec(const char *db, const char *sql)
{
	sqlite3 *h = NULL;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
}

static void copy_file(const char *from, const char *to)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "cp %s %s", from, to);
	assert_int_equal(system(cmd), 0);
}

static void load(struct salus_store *s)
{
	put(s, "Patient", "p1", NULL, "ALPHA-SECRET one");
	put(s, "Patient", "p1", NULL, "ALPHA-SECRET two"); /* version 2: history */
	put(s, "Observation", "o1", "p1", "ALPHA-SECRET obs");
	put(s, "Patient", "p2", NULL, "BRAVO-KEPT");
	put(s, "Observation", "o2", "p2", "BRAVO-KEPT obs");
	put(s, "Organization", "org", NULL, "CHARLIE-PUBLIC"); /* in no compartment: not sealed */
}

static void test_sealed_at_rest(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	load(s);
	salus_store_free(s);
	/* compartment bodies are blobs without the plaintext; the Organization is JSON text */
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE json LIKE '%SECRET%' OR json LIKE '%KEPT%'"),
			 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE typeof(json)='blob'"), 5);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM resource r JOIN history h ON h.seq=r.seq WHERE"
					  " r.type='Organization' AND typeof(h.json)='text' AND h.json LIKE '%CHARLIE-PUBLIC%'"),
			 1);
	/* the current body is stored once, in history (schema 2) */
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM resource WHERE json IS NOT NULL"), 0);
	/* and read back as JSON on every path */
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	assert_int_equal(history_hits(s, "ALPHA-SECRET"), 3);
	assert_int_equal(list_hits(s, "Observation", "obs"), 2);
	long v = 0;
	assert_int_equal(read_rc(s, "Patient", "p1", 1, &v), SALUS_OK);
	salus_store_free(s);
	/* a body moved to another row (same patient, another version) does not open */
	raw_exec(f->db, "UPDATE resource SET json=(SELECT json FROM history WHERE type='Patient' AND id='p1' AND version=1)"
			" WHERE type='Patient' AND id='p1'");
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p1", 0, NULL), SALUS_EINTEGRITY);
	assert_int_equal(read_rc(s, "Patient", "p1", 1, NULL), SALUS_OK);
	salus_store_free(s);
}

static void test_erase_and_restored_copy(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	struct salus_erase_result res;
	char backup[160];
	long v = -1;

	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	load(s);
	salus_store_free(s);
	snprintf(backup, sizeof backup, "%s/backup.db", f->dir);
	copy_file(f->db, backup); /* closed store: the WAL is checkpointed */

	assert_int_equal(open_store(f, 0, 1, true, &s), SALUS_OK);
	assert_int_equal(salus_store_patient_erase(s, "p1", &res), SALUS_OK);
	assert_true(res.key_destroyed);
	assert_int_equal(res.resources, 2);
	assert_int_equal(read_rc(s, "Patient", "p1", 0, &v), SALUS_EGONE);
	assert_int_equal(v, 0);
	assert_int_equal(read_rc(s, "Patient", "p1", 1, NULL), SALUS_EGONE);
	assert_int_equal(read_rc(s, "Observation", "o1", 0, NULL), SALUS_EGONE);
	assert_int_equal(history_hits(s, "ALPHA"), 0);
	assert_int_equal(list_hits(s, "Observation", "obs"), 1);
	assert_int_equal(read_rc(s, "Patient", "p2", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Observation", "o2", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Organization", "org", 0, NULL), SALUS_OK);
	/* writes into the erased compartment are refused; erase again is a no-op */
	char json[] = "{\"resourceType\":\"Observation\"}";
	json_t *res_j = json_loads(json, 0, NULL);
	struct salus_ix ix = {.patient = "p1"};
	struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = "Observation", .resource = res_j, .index = &ix};
	assert_int_equal(salus_store_write(s, &w, 1), SALUS_EGONE);
	salus_write_release(&w);
	json_decref(res_j);
	assert_int_equal(salus_store_patient_erase(s, "p1", &res), SALUS_OK);
	assert_false(res.key_destroyed);
	assert_int_equal(res.resources, 0);
	salus_store_free(s);
	/* rows gone from the live file; the key database holds a tombstone only */
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE id IN ('p1','o1')"), 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_res WHERE id IN ('p1','o1')"), 0);
	assert_int_equal(raw_count(f->keys, "SELECT count(*) FROM patient_key WHERE pid='p1' AND state=2 AND wrapped IS "
					    "NULL"),
			 1);

	/* the pre-erase database restored over the live one: nothing of p1 opens */
	copy_file(backup, f->db);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE id IN ('p1','o1')"), 3);
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p1", 0, &v), SALUS_EGONE);
	assert_int_equal(v, 2);
	assert_int_equal(read_rc(s, "Patient", "p1", 1, NULL), SALUS_EGONE);
	assert_int_equal(read_rc(s, "Observation", "o1", 0, NULL), SALUS_EGONE);
	assert_int_equal(history_hits(s, "ALPHA"), 0);
	assert_int_equal(history_hits(s, "BRAVO"), 2);
	assert_int_equal(list_hits(s, "Observation", "obs"), 1);
	/* and the replay removes the rows again */
	size_t np = 0;
	long nr = 0;
	assert_int_equal(salus_store_patient_replay(s, &np, &nr), SALUS_OK);
	assert_int_equal(np, 1);
	assert_int_equal(nr, 2);
	assert_int_equal(read_rc(s, "Patient", "p1", 0, &v), SALUS_EGONE);
	assert_int_equal(v, 0);
	salus_store_free(s);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE id IN ('p1','o1')"), 0);
}

/* A search hit's body opened under its patient's key is a heap copy the
 * callback may keep (salus_sq_hit.take); a body that was not sealed is
 * borrowed (take NULL). */
struct take_ctx {
	char *kept;
	int sealed, plain;
};

static int take_cb(void *ctx, const struct salus_sq_hit *h)
{
	struct take_ctx *t = ctx;
	assert_non_null(h->r.json);
	if (!h->take) {
		t->plain++;
		return 0;
	}
	t->sealed++;
	assert_ptr_equal(*h->take, h->r.json);
	assert_int_equal(strlen(h->r.json), h->r.len);
	if (!t->kept) { /* keep the first, leave the others to the store */
		t->kept = *h->take;
		*h->take = NULL;
	}
	return 0;
}

static void test_search_body_taken(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	load(s);
	struct take_ctx t = {0};
	struct salus_sq q = {.type = "Observation", .count = 10, .need_json = true};
	assert_int_equal(salus_store_search(s, &q, take_cb, &t), SALUS_OK);
	assert_int_equal(t.sealed, 2);
	assert_int_equal(t.plain, 0);
	assert_non_null(t.kept);
	assert_non_null(strstr(t.kept, " obs"));
	salus_free(t.kept);
	struct take_ctx u = {0};
	q.type = "Organization";
	assert_int_equal(salus_store_search(s, &q, take_cb, &u), SALUS_OK);
	assert_int_equal(u.sealed, 0);
	assert_int_equal(u.plain, 1);
	salus_store_free(s);
}

static void test_rewrap_and_lock(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL, *s2 = NULL;
	size_t n = 0;

	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	load(s);
	/* an erasure needs the key database to itself */
	assert_int_equal(open_store(f, 0, 2, true, &s2), SALUS_EBUSY);
	salus_store_free(s);
	assert_int_equal(open_store(f, 0, 2, true, &s), SALUS_OK);
	assert_int_equal(open_store(f, 0, 2, false, &s2), SALUS_EBUSY);
	assert_int_equal(salus_store_patient_rewrap(s, &n), SALUS_OK);
	assert_int_equal(n, 2);
	salus_store_free(s);
	assert_int_equal(raw_count(f->keys, "SELECT count(*) FROM patient_key WHERE wrap_id=2"), 2);
	/* the old wrapping key alone opens nothing any more; the new one alone does */
	assert_int_equal(open_store(f, 0, 1, false, &s), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p2", 0, NULL), SALUS_EINTEGRITY);
	salus_store_free(s);
	assert_int_equal(open_store(f, 1, 1, false, &s), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p2", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Observation", "o1", 0, NULL), SALUS_OK);
	salus_store_free(s);
}

static int write_rc(struct salus_store *s, const char *type, const char *id, const char *owner)
{
	struct salus_ix ix = {.patient = owner};
	json_t *res = json_pack("{s:s}", "resourceType", type);
	struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = type, .id = id, .resource = res, .index = &ix};
	int rc = salus_store_write(s, &w, 1);
	salus_write_release(&w);
	json_decref(res);
	return rc;
}

/* An erasure by another process next to a running store (`salus patient
 * erase` next to `salus serve`): the running store stops serving the patient
 * at once — reads gone, a write into the compartment refused, its cached
 * record key wiped — follows the move of the other keys to the successor
 * wrapping key it derives itself, and wraps new keys under it. */
static void test_online_erase(void **state)
{
	struct fx *f = *state;
	struct salus_store *srv = NULL, *cli = NULL, *s = NULL;
	struct salus_page_key both[2];
	struct salus_erase_result res = {0};
	unsigned char pwk2[SALUS_PWK_LEN];
	size_t n = 0;

	/* wrapping key 2 = that of the successor of PWK 1 (salus_keyring_pwk_add_successor) */
	both[0] = f->pwk[0];
	both[1].id = 2;
	salus_pwk_successor(f->pwk[0].key, 2, pwk2);
	salus_pwk_wrapping_key(pwk2, both[1].key);

	assert_int_equal(open_store(f, 0, 1, false, &srv), SALUS_OK); /* the server: wrapping key 1 only */
	load(srv);
	assert_int_equal(read_rc(srv, "Patient", "p1", 0, NULL), SALUS_OK); /* p1's key is cached now */
	assert_int_equal(read_rc(srv, "Patient", "p2", 0, NULL), SALUS_OK);
	struct salus_store_opts o = {.readers = 1, .patient_keys = f->keys, .pwks = both, .npwks = 2};
	assert_int_equal(salus_store_open(f->uri, &o, &cli), SALUS_OK); /* not exclusive: next to the server */

	assert_int_equal(salus_store_patient_erase(cli, "p1", &res), SALUS_OK);
	assert_true(res.key_destroyed);
	/* at once, in the server: gone, and no new body under the destroyed key */
	assert_int_equal(read_rc(srv, "Patient", "p1", 0, NULL), SALUS_EGONE);
	assert_int_equal(read_rc(srv, "Observation", "o1", 0, NULL), SALUS_EGONE);
	assert_int_equal(write_rc(srv, "Observation", "o9", "p1"), SALUS_EGONE);
	assert_int_equal(write_rc(srv, "Patient", "p1", NULL), SALUS_EGONE);

	assert_int_equal(salus_store_patient_rewrap(cli, &n), SALUS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(raw_count(f->keys, "SELECT count(*) FROM patient_key WHERE wrap_id=1"), 0);
	/* the server reads p2 under the successor it derives, and wraps p3's new key under it */
	assert_int_equal(read_rc(srv, "Observation", "o2", 0, NULL), SALUS_OK);
	assert_int_equal(write_rc(srv, "Patient", "p3", NULL), SALUS_OK);
	assert_int_equal(write_rc(srv, "Observation", "o3", "p3"), SALUS_OK);
	salus_store_free(cli);
	salus_store_free(srv);
	assert_int_equal(raw_count(f->keys, "SELECT count(*) FROM patient_key WHERE state=1 AND wrap_id<>2"), 0);

	/* wrapping key 2 alone (the keyring after the erase) opens everything that is left */
	o.pwks = &both[1];
	o.npwks = 1;
	assert_int_equal(salus_store_open(f->uri, &o, &s), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p2", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Observation", "o2", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Observation", "o3", 0, NULL), SALUS_OK);
	assert_int_equal(read_rc(s, "Patient", "p1", 0, NULL), SALUS_EGONE);
	salus_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sealed_at_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_erase_and_restored_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_search_body_taken, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewrap_and_lock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_online_erase, setup, teardown),
	};
	salus_alloc_install();
	salus_store_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
