/*
 * test_store_schema.c — the SQLite backend's on-disk layout across schema
 * versions (docs/store.md "Schema"): schema 2 stores the current version's
 * body once, in its history row (resource.json NULL); a database written
 * under schema 1 (a copy of the body in resource.json) is upgraded in place
 * at open and reads the same on every path (read, vread, list, history,
 * search with bodies); a database from a newer schema is refused.  Also the
 * time-ordered server-assigned ids (salus_store_id_new), and full-text rows
 * (held back to the end of each group) that follow every write.
 *
 * Plaintext database (no page keys), so the test can look at the rows and
 * rewrite them into the older layout with the sqlite3 library.
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
#include "store/store.h"

struct fx {
	char dir[64];
	char db[128], uri[140];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-schema-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof f->db, "%s/salus.db", f->dir);
	snprintf(f->uri, sizeof f->uri, "sqlite:%s", f->db);
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

static int open_store(struct fx *f, struct salus_store **s)
{
	struct salus_store_opts o = {.create = true, .readers = 2};
	return salus_store_open(f->uri, &o, s);
}

static void put(struct salus_store *s, enum salus_write_kind kind, const char *id, const char *family)
{
	char json[256];
	snprintf(json, sizeof json, "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"%s\"}]}", family);
	json_t *res = kind == SALUS_WRITE_DELETE ? NULL : json_loads(json, 0, NULL);
	struct salus_write w = {.kind = kind, .type = "Patient", .id = id, .resource = res};
	assert_int_equal(salus_store_write(s, &w, 1), SALUS_OK);
	salus_write_release(&w);
	json_decref(res);
}

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

/* The body of the current (version 0) or a given version, or NULL with *rc. */
static char *read_body(struct salus_store *s, const char *id, long version, int *rc)
{
	struct salus_resource r = {.json = NULL};
	*rc = salus_store_read(s, "Patient", id, version, &r);
	char *json = r.json ? strdup(r.json) : NULL;
	salus_resource_release(&r);
	return json;
}

static void expect_family(struct salus_store *s, const char *id, long version, const char *family)
{
	int rc;
	char *json = read_body(s, id, version, &rc);
	assert_int_equal(rc, SALUS_OK);
	assert_non_null(json);
	assert_non_null(strstr(json, family));
	free(json);
}

struct acc {
	char text[4096];
	long n;
};

static int acc_cb(void *ctx, const struct salus_resource *r)
{
	struct acc *a = ctx;
	a->n++;
	if (r->json) {
		size_t k = strlen(a->text);
		snprintf(a->text + k, sizeof a->text - k, "%s|", r->json);
	}
	return 0;
}

static int acc_hit(void *ctx, const struct salus_sq_hit *h)
{
	return acc_cb(ctx, &h->r);
}

/* Every read path sees the bodies: list, history, search with bodies. */
static void expect_all_paths(struct salus_store *s)
{
	struct acc a = {{0}, 0};
	assert_int_equal(salus_store_list(s, "Patient", NULL, 100, acc_cb, &a), SALUS_OK);
	assert_int_equal(a.n, 2);
	assert_non_null(strstr(a.text, "Two"));
	assert_non_null(strstr(a.text, "Bee"));
	assert_null(strstr(a.text, "One")); /* only current versions */

	memset(&a, 0, sizeof a);
	struct salus_history_q q = {.type = "Patient", .count = 100};
	assert_int_equal(salus_store_history(s, &q, acc_cb, &a), SALUS_OK);
	assert_int_equal(a.n, 5); /* a v1, a v2, b v1, c v1, c deleted */
	assert_non_null(strstr(a.text, "One"));
	assert_non_null(strstr(a.text, "Two"));

	memset(&a, 0, sizeof a);
	struct salus_sq sq = {.type = "Patient", .count = 100, .need_json = true};
	assert_int_equal(salus_store_search(s, &sq, acc_hit, &a), SALUS_OK);
	assert_int_equal(a.n, 2);
	assert_non_null(strstr(a.text, "Two"));
	assert_non_null(strstr(a.text, "Bee"));

	int rc;
	assert_null(read_body(s, "c", 0, &rc));
	assert_int_equal(rc, SALUS_EGONE);
	expect_family(s, "a", 0, "Two");
	expect_family(s, "a", 1, "One");
	expect_family(s, "b", 0, "Bee");
}

static void load(struct salus_store *s)
{
	put(s, SALUS_WRITE_UPDATE, "a", "One");
	put(s, SALUS_WRITE_UPDATE, "a", "Two");
	put(s, SALUS_WRITE_UPDATE, "b", "Bee");
	put(s, SALUS_WRITE_UPDATE, "c", "Sea");
	put(s, SALUS_WRITE_DELETE, "c", NULL);
}

static void test_body_stored_once(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	assert_int_equal(open_store(f, &s), SALUS_OK);
	load(s);
	expect_all_paths(s);
	salus_store_free(s);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM resource WHERE json IS NOT NULL"), 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM history WHERE json IS NOT NULL"), 4);
	assert_int_equal(raw_count(f->db, "SELECT val FROM meta WHERE key='schema_version'"), 2);
}

static void test_schema1_upgraded_in_place(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	assert_int_equal(open_store(f, &s), SALUS_OK);
	load(s);
	salus_store_free(s);
	/* rewrite into the schema-1 layout: a copy of the current body in resource */
	raw_exec(f->db, "UPDATE resource SET json=(SELECT json FROM history h WHERE h.seq=resource.seq);"
			"UPDATE meta SET val='1' WHERE key='schema_version'");
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM resource WHERE json IS NOT NULL"), 2);

	assert_int_equal(open_store(f, &s), SALUS_OK);
	assert_int_equal(raw_count(f->db, "SELECT val FROM meta WHERE key='schema_version'"), 2);
	expect_all_paths(s);
	/* the schema-1 copy is what a current row reads (it wins over history) */
	salus_store_free(s);
	raw_exec(f->db, "UPDATE resource SET json='{\"resourceType\":\"Patient\",\"id\":\"b\",\"name\":[{\"family\":"
			"\"Copy\"}]}' WHERE id='b'");
	assert_int_equal(open_store(f, &s), SALUS_OK);
	expect_family(s, "b", 0, "Copy");
	/* a new version of an old row moves to the new layout */
	put(s, SALUS_WRITE_UPDATE, "b", "Bee2");
	expect_family(s, "b", 0, "Bee2");
	expect_family(s, "b", 1, "Bee");
	salus_store_free(s);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM resource WHERE json IS NOT NULL"), 1); /* a */
}

static void test_newer_schema_refused(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	assert_int_equal(open_store(f, &s), SALUS_OK);
	load(s);
	salus_store_free(s);
	raw_exec(f->db, "UPDATE meta SET val='3' WHERE key='schema_version'");
	s = NULL;
	assert_int_equal(open_store(f, &s), SALUS_EIO);
	assert_null(s);
	assert_int_equal(raw_count(f->db, "SELECT val FROM meta WHERE key='schema_version'"), 3);
}

static void put_text(struct salus_write *w, const char *id, json_t *res, struct salus_ix *ix, const char *words)
{
	*ix = (struct salus_ix){.content = words, .text = words};
	*w = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = "Basic", .id = id, .resource = res, .index = ix};
}

/* Resources whose _content matches `word` (the full-text rows). */
static long content_hits(struct salus_store *s, const char *word)
{
	struct salus_sq_val v = {.a = word};
	struct salus_sq_clause cl = {.kind = SALUS_SQ_CONTENT, .vals = &v, .nvals = 1};
	struct salus_sq q = {.type = "Basic", .clauses = &cl, .nclauses = 1, .count = 100};
	long n = -1;
	assert_int_equal(salus_store_search_count(s, &q, &n), SALUS_OK);
	return n;
}

/* Full-text rows are held back to the end of the group (store_index.c): they
 * must still follow every write, inside a job and across jobs, and vanish
 * with a job that is rolled back. */
static void test_fulltext_rows_follow_writes(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	struct salus_write w[2];
	struct salus_ix ix[2];
	json_t *res = json_loads("{\"resourceType\":\"Basic\"}", 0, NULL);

	assert_int_equal(open_store(f, &s), SALUS_OK);
	/* one job: create, then a second version of the same resource */
	put_text(&w[0], "a", res, &ix[0], "alpha");
	put_text(&w[1], "a", res, &ix[1], "bravo");
	assert_int_equal(salus_store_write(s, w, 2), SALUS_OK);
	salus_write_release(&w[0]);
	salus_write_release(&w[1]);
	assert_int_equal(content_hits(s, "alpha"), 0);
	assert_int_equal(content_hits(s, "bravo"), 1);
	/* a job that fails on its second op leaves no full-text row */
	put_text(&w[0], "b", res, &ix[0], "charlie");
	put_text(&w[1], "a", res, &ix[1], "delta");
	w[1].if_match = 99;
	assert_int_equal(salus_store_write(s, w, 2), SALUS_EPRECONDITION);
	salus_write_release(&w[0]);
	salus_write_release(&w[1]);
	assert_int_equal(content_hits(s, "charlie"), 0);
	assert_int_equal(content_hits(s, "delta"), 0);
	assert_int_equal(content_hits(s, "bravo"), 1);
	/* the next new resource takes the row number b would have had: b's words must not become its */
	put_text(&w[0], "b2", res, &ix[0], "golf");
	assert_int_equal(salus_store_write(s, w, 1), SALUS_OK);
	salus_write_release(&w[0]);
	assert_int_equal(content_hits(s, "charlie"), 0);
	assert_int_equal(content_hits(s, "golf"), 1);
	/* across jobs: update, then delete */
	put_text(&w[0], "a", res, &ix[0], "echo");
	assert_int_equal(salus_store_write(s, w, 1), SALUS_OK);
	salus_write_release(&w[0]);
	assert_int_equal(content_hits(s, "bravo"), 0);
	assert_int_equal(content_hits(s, "echo"), 1);
	struct salus_write d = {.kind = SALUS_WRITE_DELETE, .type = "Basic", .id = "a"};
	assert_int_equal(salus_store_write(s, &d, 1), SALUS_OK);
	salus_write_release(&d);
	assert_int_equal(content_hits(s, "echo"), 0);
	salus_store_free(s);
	/* and durable */
	assert_int_equal(open_store(f, &s), SALUS_OK);
	put_text(&w[0], "c", res, &ix[0], "foxtrot");
	assert_int_equal(salus_store_write(s, w, 1), SALUS_OK);
	salus_write_release(&w[0]);
	salus_store_free(s);
	assert_int_equal(open_store(f, &s), SALUS_OK);
	assert_int_equal(content_hits(s, "foxtrot"), 1);
	salus_store_free(s);
	json_decref(res);
}

/* A resource's index rows are written per table in key order, each key once
 * (store_index.c w_rows): rows repeated in one resource are stored once, the
 * first of equal keys is the one kept (sx_num's vlo/vhi are not in the key),
 * rows that differ in any key column are all stored, across chunks of the
 * multi-row INSERT and past the on-stack index array. */
static void test_index_rows_once(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	struct salus_ix_row rows[150];
	size_t n = 0;
	char codes[40][8];
	json_t *res = json_loads("{\"resourceType\":\"Basic\"}", 0, NULL);

	/* 40 distinct tokens, each three times, interleaved in reverse order */
	for (int rep = 0; rep < 3; rep++)
		for (int i = 39; i >= 0; i--) {
			snprintf(codes[i], sizeof codes[i], "c%02d", i);
			rows[n++] = (struct salus_ix_row){.param = 7, .kind = SALUS_IX_TOKEN, .a = "sys", .b = codes[i]};
		}
	/* the same code in another system, another group, another parameter: distinct */
	rows[n++] = (struct salus_ix_row){.param = 7, .kind = SALUS_IX_TOKEN, .a = "other", .b = "c00"};
	rows[n++] = (struct salus_ix_row){.param = 7, .kind = SALUS_IX_TOKEN, .a = "sys", .b = "c00", .group = 1};
	rows[n++] = (struct salus_ix_row){.param = 8, .kind = SALUS_IX_TOKEN, .a = "sys", .b = "c00"};
	/* NULL reads as "": the same key as "" */
	rows[n++] = (struct salus_ix_row){.param = 9, .kind = SALUS_IX_TOKEN, .a = NULL, .b = "x"};
	rows[n++] = (struct salus_ix_row){.param = 9, .kind = SALUS_IX_TOKEN, .a = "", .b = "x"};
	/* quantities: equal keys, different ranges (the first is kept); another unit is another key */
	rows[n++] = (struct salus_ix_row){.param = 3, .kind = SALUS_IX_QUANTITY, .v = 1.5, .vlo = 1.45, .vhi = 1.55,
					  .a = "u", .b = "kg", .c = "kg"};
	rows[n++] = (struct salus_ix_row){.param = 3, .kind = SALUS_IX_QUANTITY, .v = 1.5, .vlo = 1.495, .vhi = 1.505,
					  .a = "u", .b = "kg", .c = "kg"};
	rows[n++] = (struct salus_ix_row){.param = 3, .kind = SALUS_IX_QUANTITY, .v = 1.5, .vlo = 1.45, .vhi = 1.55,
					  .a = "u", .b = "g", .c = "g"};
	/* dates and strings, repeated */
	for (int rep = 0; rep < 2; rep++) {
		rows[n++] = (struct salus_ix_row){.param = 4, .kind = SALUS_IX_DATE, .lo = 10, .hi = 20};
		rows[n++] = (struct salus_ix_row){.param = 4, .kind = SALUS_IX_DATE, .lo = 10, .hi = 21};
		rows[n++] = (struct salus_ix_row){.param = 5, .kind = SALUS_IX_STRING, .a = "smith", .b = "Smith"};
		rows[n++] = (struct salus_ix_row){.param = 5, .kind = SALUS_IX_STRING, .a = "smith", .b = "SMITH"};
	}
	assert_true(n <= sizeof rows / sizeof *rows);
	struct salus_ix ix = {.rows = rows, .n = n};
	struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = "Basic", .id = "r", .resource = res, .index = &ix};

	assert_int_equal(open_store(f, &s), SALUS_OK);
	assert_int_equal(salus_store_write(s, &w, 1), SALUS_OK);
	salus_write_release(&w);
	salus_store_free(s);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_tok"), 40 + 3 + 1);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_tok WHERE p = 7 AND sys = 'sys' AND g = 0"), 40);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_num"), 2);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_num WHERE code = 'kg' AND vlo = 1.45 AND vhi = 1.55"), 1);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_date"), 2);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_str"), 2);
	json_decref(res);
}

static void put_tok(struct salus_write *w, enum salus_write_kind kind, const char *id, json_t *res,
		    struct salus_ix *ix, struct salus_ix_row *row, const char *code)
{
	*row = (struct salus_ix_row){.param = 11, .kind = SALUS_IX_TOKEN, .a = "s", .b = code};
	*ix = (struct salus_ix){.rows = row, .n = 1};
	*w = (struct salus_write){.kind = kind, .type = "Basic", .id = id, .resource = res, .index = ix};
}

static long tok_rows(struct fx *f, const char *code)
{
	char sql[128];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM sx_tok WHERE p = 11 AND code = '%s'", code);
	return raw_count(f->db, sql);
}

/* Index rows are held back to the end of the group and written there in
 * key order (store_index.c rows_flush): a resource written twice in one job
 * keeps only its last rows, a resource deleted in the job none, a new one
 * that takes a deleted one's row number only its own, and a job rolled back
 * none of its rows. */
static void test_index_rows_group(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = NULL;
	struct salus_write w[4];
	struct salus_ix ix[4];
	struct salus_ix_row row[4];
	json_t *res = json_loads("{\"resourceType\":\"Basic\"}", 0, NULL);

	assert_int_equal(open_store(f, &s), SALUS_OK);
	put_tok(&w[0], SALUS_WRITE_UPDATE, "a", res, &ix[0], &row[0], "a1");
	put_tok(&w[1], SALUS_WRITE_UPDATE, "a", res, &ix[1], &row[1], "a2");
	put_tok(&w[2], SALUS_WRITE_UPDATE, "b", res, &ix[2], &row[2], "b1");
	w[3] = (struct salus_write){.kind = SALUS_WRITE_DELETE, .type = "Basic", .id = "b"};
	assert_int_equal(salus_store_write(s, w, 4), SALUS_OK);
	for (int i = 0; i < 4; i++)
		salus_write_release(&w[i]);
	/* c is the newest row of sx_res, deleted, then d takes its row number, in one job */
	put_tok(&w[0], SALUS_WRITE_UPDATE, "c", res, &ix[0], &row[0], "c1");
	w[1] = (struct salus_write){.kind = SALUS_WRITE_DELETE, .type = "Basic", .id = "c"};
	put_tok(&w[2], SALUS_WRITE_UPDATE, "d", res, &ix[2], &row[2], "d1");
	assert_int_equal(salus_store_write(s, w, 3), SALUS_OK);
	for (int i = 0; i < 3; i++)
		salus_write_release(&w[i]);
	/* a job that fails on its last op writes none of its rows */
	put_tok(&w[0], SALUS_WRITE_UPDATE, "e", res, &ix[0], &row[0], "e1");
	put_tok(&w[1], SALUS_WRITE_UPDATE, "a", res, &ix[1], &row[1], "a3");
	put_tok(&w[2], SALUS_WRITE_UPDATE, "d", res, &ix[2], &row[2], "d2");
	w[2].if_match = 99;
	assert_int_equal(salus_store_write(s, w, 3), SALUS_EPRECONDITION);
	for (int i = 0; i < 3; i++)
		salus_write_release(&w[i]);
	salus_store_free(s);

	assert_int_equal(tok_rows(f, "a1"), 0);
	assert_int_equal(tok_rows(f, "a2"), 1);
	assert_int_equal(tok_rows(f, "a3"), 0);
	assert_int_equal(tok_rows(f, "b1"), 0);
	assert_int_equal(tok_rows(f, "c1"), 0);
	assert_int_equal(tok_rows(f, "d1"), 1);
	assert_int_equal(tok_rows(f, "d2"), 0);
	assert_int_equal(tok_rows(f, "e1"), 0);
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_tok"), 2);
	/* every row belongs to its resource */
	assert_int_equal(raw_count(f->db, "SELECT count(*) FROM sx_tok t JOIN sx_res r USING(rid) WHERE"
					  " (r.id = 'a' AND t.code = 'a2') OR (r.id = 'd' AND t.code = 'd1')"),
			 2);
	json_decref(res);
}

/* Server-assigned ids: RFC 9562 version 7 (time first), unique, and ids
 * minted in a later millisecond sort after earlier ones. */
static void test_ids_time_ordered(void **state)
{
	(void)state;
	char a[SALUS_UUID_LEN], b[SALUS_UUID_LEN], prev[SALUS_UUID_LEN] = "";
	for (int i = 0; i < 2000; i++) {
		salus_store_id_new(a);
		assert_int_equal(strlen(a), 36);
		assert_int_equal(a[14], '7');
		assert_non_null(strchr("89ab", a[19]));
		for (int k = 0; k < 36; k++)
			assert_true(k == 8 || k == 13 || k == 18 || k == 23 ? a[k] == '-' : !!strchr("0123456789abcdef", a[k]));
		assert_string_not_equal(a, prev);
		/* the first 12 hex digits are the millisecond: never go back */
		assert_true(!*prev || memcmp(prev, a, 13) <= 0);
		memcpy(prev, a, sizeof prev);
	}
	salus_store_id_new(a);
	usleep(3000);
	salus_store_id_new(b);
	assert_true(strcmp(a, b) < 0);
	/* the time prefix is the wall clock's millisecond (within a minute: the machine may be busy) */
	char hexms[13];
	memcpy(hexms, b, 8);
	memcpy(hexms + 8, b + 9, 4);
	hexms[12] = 0;
	long long d = (long long)strtoull(hexms, NULL, 16) - (long long)salus_now_ms();
	assert_true(d > -60000 && d < 60000);
}

int main(void)
{
	salus_alloc_install();
	salus_store_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_body_stored_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_schema1_upgraded_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
		cmocka_unit_test(test_ids_time_ordered),
		cmocka_unit_test_setup_teardown(test_fulltext_rows_follow_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rows_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_index_rows_group, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
