/* test_core.c — error table, capped buffers, bounded parsing, allocation seam. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_err_table),
		cmocka_unit_test(test_buf_cap),
		cmocka_unit_test(test_buf_nomem),
		cmocka_unit_test(test_parse_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
