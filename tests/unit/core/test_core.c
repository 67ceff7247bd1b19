/* test_core.c — error table, capped buffers, bounded parsing, allocation seam, JSON arenas. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

static void test_err_table(void **state)
{
	(void)state;
	assert_int_equal(salus_err_http(SALUS_ENOTFOUND), 404);
	assert_string_equal(salus_err_issue(SALUS_ENOTFOUND), "not-found");
	assert_int_equal(salus_err_http(SALUS_EGONE), 410);
	assert_int_equal(salus_err_http(SALUS_EPRECONDITION), 412);
	assert_string_equal(salus_err_name(SALUS_ECONFLICT), "CONFLICT");
	assert_int_equal(salus_err_http(12345), 500);
	assert_string_equal(salus_err_name(0), "OK");
}

static void test_buf_cap(void **state)
{
	(void)state;
	struct salus_buf b;
	salus_buf_init(&b, 8);
	assert_non_null(b.p);
	assert_string_equal(b.p, "");
	assert_int_equal(salus_buf_adds(&b, "abcd"), 0);
	assert_int_equal(salus_buf_addf(&b, "%d", 123), 0);
	assert_string_equal(b.p, "abcd123");
	assert_int_equal(salus_buf_adds(&b, "xy"), SALUS_ETOOLARGE);
	assert_int_equal(b.n, 0); /* freed and empty after overflow */
	assert_string_equal(b.p, "");
	assert_int_equal(salus_buf_adds(&b, "ok"), 0);
	size_t n;
	char *s = salus_buf_detach(&b, &n);
	assert_string_equal(s, "ok");
	assert_int_equal(n, 2);
	salus_free(s);
	salus_buf_release(&b);
}

static void test_buf_nomem(void **state)
{
	(void)state;
	struct salus_buf b;
	salus_buf_init(&b, 1024);
	salus_alloc_fail_at(1, 0);
	assert_int_equal(salus_buf_adds(&b, "hello"), SALUS_ENOMEM);
	salus_alloc_fail_at(0, 0);
	assert_int_equal(b.n, 0);
	assert_int_equal(salus_buf_adds(&b, "hello"), 0);
	salus_buf_release(&b);
}

static void test_parse_long(void **state)
{
	(void)state;
	long v = -1;
	assert_int_equal(salus_parse_long(SALUS_SLICE("42"), 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(salus_parse_long(SALUS_SLICE("101"), 0, 100, &v), SALUS_EINVALID);
	assert_int_equal(salus_parse_long(SALUS_SLICE("4x"), 0, 100, &v), SALUS_EINVALID);
	assert_int_equal(salus_parse_long(SALUS_SLICE(""), 0, 100, &v), SALUS_EINVALID);
	assert_int_equal(salus_parse_long(SALUS_SLICE("-"), -5, 100, &v), SALUS_EINVALID);
	assert_int_equal(salus_parse_long(SALUS_SLICE("99999999999999999999"), 0, 100, &v), SALUS_EINVALID);
	assert_int_equal(salus_parse_long(SALUS_SLICE("-5"), -5, 100, &v), 0);
	assert_int_equal(v, -5);
}

/* JSON arenas: a tree carved from one, changed with malloc'ed values after,
 * freed on another thread, big strings from malloc, released at once. */
static void *decref_thread(void *doc)
{
	json_decref(doc);
	return NULL;
}

static void test_json_arena(void **state)
{
	(void)state;
	salus_alloc_install();
	struct salus_json_arena a = {0};
	json_t *doc = json_object();
	char key[32];
	size_t big_n = 600000;
	char *big = salus_malloc(big_n + 1);
	assert_non_null(big);
	memset(big, 'x', big_n);
	big[big_n] = 0;
	salus_json_arena_enter(&a);
	json_t *tree = json_object();
	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(json_object_set_new(tree, key, json_pack("{s:i, s:[s]}", "n", i, "s", key)), 0);
	}
	assert_int_equal(json_object_set_new(tree, "big", json_string(big)), 0); /* too big for a chunk: malloc's */
	salus_json_arena_leave(&a);
	assert_true(a.nchunks > 1);
	/* outside: malloc'ed values replace and join arena ones, text handed out is salus_free'd */
	assert_int_equal(json_object_set_new(tree, "k1", json_string("replaced")), 0);
	assert_int_equal(json_object_del(tree, "k2"), 0);
	assert_int_equal(json_object_set_new(tree, "late", json_integer(7)), 0);
	assert_int_equal(json_object_set_new(doc, "tree", json_incref(tree)), 0);
	char *t = json_dumps(json_object_get(tree, "k3"), JSON_COMPACT);
	assert_string_equal(t, "{\"n\":3,\"s\":[\"k3\"]}");
	salus_free(t);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(tree, "k19999"), "n")), 19999);
	assert_int_equal(json_string_length(json_object_get(tree, "big")), big_n);
	json_decref(tree);
	json_decref(doc); /* doc is malloc's, tree the arena's: freed through it */
	/* a second tree, released by another thread */
	salus_json_arena_enter(&a);
	tree = json_pack("{s:[i,i,i], s:s}", "a", 1, 2, 3, "b", "c");
	salus_json_arena_leave(&a);
	assert_non_null(tree);
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, decref_thread, tree), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	salus_json_arena_release(&a);
	assert_null(a.chunk);
	assert_int_equal(a.nchunks, 0);
	/* failed allocations still fail inside an arena */
	salus_json_arena_enter(&a);
	salus_alloc_fail_at(1, 1);
	assert_null(json_object());
	salus_alloc_fail_at(0, 0);
	salus_json_arena_leave(&a);
	salus_json_arena_release(&a);
	salus_free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_table),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_nomem),
		cmocka_unit_test(test_parse_long),
		cmocka_unit_test(test_json_arena),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
