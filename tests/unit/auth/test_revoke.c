/*
 * test_revoke.c — revocation across processes, against the real store: a
 * token verified (and cached) through one store handle stops working as soon
 * as the client is removed through a second, independent handle on the same
 * database file — what `salus client remove` does from another process.
 * Skips when the store cannot be opened (backend not built yet).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/auth.h"
#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define SECRET "0123456789abcdef-secret"

static void test_remove_from_other_handle(void **state)
{
	(void)state;
	char dir[] = "/tmp/salus-revoke-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char uri[128], key[128], cmd[160];
	snprintf(uri, sizeof uri, "sqlite:%s/salus.db", dir);
	snprintf(key, sizeof key, "%s/token.key", dir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	struct salus_store_opts o = {.create = true};
	struct salus_store *s1 = NULL, *s2 = NULL;
	int rc = salus_store_open(uri, &o, &s1);
	if (rc) {
		print_message("store cannot be opened (%s): skipping\n", salus_err_name(rc));
		assert_int_equal(system(cmd), 0);
		skip();
	}
	assert_int_equal(salus_store_open(uri, &o, &s2), 0);
	assert_int_equal(salus_signkey_create(key), 0);
	struct salus_auth *a = NULL;
	assert_int_equal(salus_auth_new(s1, key, "https://salus.test", NULL, 600, &a), 0);
	assert_int_equal(salus_auth_client_add(s2, "svc", SECRET, strlen(SECRET), "system/*.rs", NULL), 0);

	char up[64], b64[128], basic[160];
	snprintf(up, sizeof up, "svc:%s", SECRET);
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)up, strlen(up), sodium_base64_VARIANT_ORIGINAL);
	snprintf(basic, sizeof basic, "Basic %s", b64);
	const char *body = "grant_type=client_credentials";
	struct salus_token_response r;
	assert_int_equal(salus_auth_token(a, basic, "application/x-www-form-urlencoded", body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	json_t *j = json_loads(r.body, 0, NULL);
	char h[SALUS_MAX_TOKEN + 16];
	snprintf(h, sizeof h, "Bearer %s", json_string_value(json_object_get(j, "access_token")));
	json_decref(j);
	salus_token_response_release(&r);

	struct salus_principal p;
	for (int i = 0; i < 3; i++) { /* verified once, then cached */
		assert_int_equal(salus_auth_check(a, h, &p), 0);
		salus_principal_release(&p);
	}
	assert_int_equal(salus_auth_client_remove(s2, "svc"), 0);
	assert_int_equal(salus_auth_check(a, h, &p), SALUS_EUNAUTHORIZED);

	salus_auth_free(a);
	salus_store_free(s2);
	salus_store_free(s1);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_remove_from_other_handle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
