/* test_scope.c — SMART scope parsing (v1, v2), decision table, grant/intersection, form and Basic parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/err.h"

static void parse_ok(const char *s, struct salus_scopes *out)
{
	assert_int_equal(salus_scopes_parse(s, strlen(s), out), 0);
}

static int parse_rc(const char *s)
{
	struct salus_scopes sc;
	int rc = salus_scopes_parse(s, strlen(s), &sc);
	if (!rc)
		salus_scopes_release(&sc);
	return rc;
}

#define C SALUS_IA_CREATE
#define R SALUS_IA_READ
#define U SALUS_IA_UPDATE
#define D SALUS_IA_DELETE
#define S SALUS_IA_SEARCH

/* expected: 5 chars in order c r u d s, '1' allowed / '0' denied */
static void check(const char *scopes, const char *type, const char *expected)
{
	struct salus_scopes sc;
	parse_ok(scopes, &sc);
	for (int i = 0; i < 5; i++) {
		bool want = expected[i] == '1';
		if (salus_scope_allows(&sc, type, (enum salus_interaction)i) != want)
			fail_msg("scope '%s' type %s interaction %d: want %d", scopes, type, i, want);
	}
	salus_scopes_release(&sc);
}

static void test_parse(void **state)
{
	(void)state;
	struct salus_scopes sc;
	parse_ok("system/Patient.rs", &sc);
	assert_int_equal(sc.n, 1);
	assert_int_equal(sc.v[0].ctx, SALUS_SCOPE_SYSTEM);
	assert_string_equal(sc.v[0].type, "Patient");
	assert_int_equal(sc.v[0].perms, SALUS_IA_BIT(R) | SALUS_IA_BIT(S));
	assert_true(sc.v[0].v2);
	assert_null(sc.v[0].query);
	salus_scopes_release(&sc);

	parse_ok("patient/Observation.rs?category=laboratory user/*.cruds system/*.read system/Encounter.write", &sc);
	assert_int_equal(sc.n, 4);
	assert_int_equal(sc.v[0].ctx, SALUS_SCOPE_PATIENT);
	assert_string_equal(sc.v[0].query, "category=laboratory");
	assert_int_equal(sc.v[1].ctx, SALUS_SCOPE_USER);
	assert_string_equal(sc.v[1].type, "*");
	assert_int_equal(sc.v[1].perms, SALUS_IA_ALL);
	assert_false(sc.v[2].v2);
	assert_int_equal(sc.v[2].perms, SALUS_IA_BIT(R) | SALUS_IA_BIT(S));
	assert_int_equal(sc.v[3].perms, SALUS_IA_BIT(C) | SALUS_IA_BIT(U) | SALUS_IA_BIT(D));
	char *f = NULL;
	assert_int_equal(salus_scopes_format(&sc, &f), 0);
	assert_string_equal(f, "patient/Observation.rs?category=laboratory user/*.cruds system/*.read system/Encounter.write");
	salus_free(f);
	salus_scopes_release(&sc);

	parse_ok("system/*.* system/*.* system/Patient.c", &sc);
	assert_int_equal(sc.v[0].perms, SALUS_IA_ALL);
	assert_int_equal(salus_scopes_format(&sc, &f), 0);
	assert_string_equal(f, "system/*.* system/Patient.c"); /* duplicates folded */
	salus_free(f);
	salus_scopes_release(&sc);

	static const char *const bad[] = {
		"",                      " system/Patient.rs",   "system/Patient.rs ",  "system/Patient.rs  system/*.r",
		"openid",                "launch",               "offline_access",      "fhirUser",
		"system/Patient",        "system/Patient.",      "system/.rs",          "system/patient.rs",
		"system/Pat1ent.rs",     "system/Patient.sr",    "system/Patient.rr",   "system/Patient.x",
		"system/Patient.READ",   "system/Patient.read?x=1", "system/Patient.rs?", "admin/Patient.rs",
		"System/Patient.rs",     "system/Patient.rs\t",  "system/Patient.\"rs\"", "system//Patient.rs",
		"system/Patient.rs.rs",  "system/**.rs",         "system/Patient.cruds?a=1 openid", "system/*.write?x=y",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (parse_rc(bad[i]) == 0)
			fail_msg("accepted bad scope '%s'", bad[i]);
	/* caps */
	char big[SALUS_MAX_SCOPE + 2];
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = 0;
	assert_int_equal(parse_rc(big), SALUS_ETOOLARGE);
	char many[65 * 12 + 1] = "";
	size_t k = 0;
	for (int i = 0; i < 65; i++)
		k += (size_t)snprintf(many + k, sizeof many - k, "%ssystem/*.r", i ? " " : "");
	assert_int_equal(parse_rc(many), SALUS_ETOOLARGE);
}

static void test_decision(void **state)
{
	(void)state;
	/*                                                     c r u d s */
	check("system/Patient.rs", "Patient", "01001");
	check("system/Patient.rs", "Observation", "00000");
	check("system/*.cruds", "Observation", "11111");
	check("system/*.read", "Encounter", "01001");
	check("system/*.write", "Encounter", "10110");
	check("system/*.*", "Patient", "11111");
	check("system/Patient.*", "Patient", "11111");
	check("system/Patient.c system/Patient.d", "Patient", "10010");
	check("system/Observation.s system/*.r", "Observation", "01001");
	/* patient/ and user/ grant nothing without a launch context */
	check("patient/*.cruds user/*.cruds patient/Patient.read", "Patient", "00000");
	/* a restricted scope grants nothing until restrictions are enforced */
	check("system/Observation.rs?category=laboratory", "Observation", "00000");
	check("system/Observation.rs?category=laboratory system/Observation.r", "Observation", "01000");
	/* types are exact (case-sensitive) */
	struct salus_scopes sc;
	parse_ok("system/Patient.cruds", &sc);
	assert_false(salus_scope_allows(&sc, "patient", SALUS_IA_READ));
	assert_false(salus_scope_allows(&sc, "Patients", SALUS_IA_READ));
	assert_false(salus_scope_allows(&sc, NULL, SALUS_IA_READ));
	assert_false(salus_scope_allows(&sc, "Patient", (enum salus_interaction)7));
	assert_false(salus_scope_allows(NULL, "Patient", SALUS_IA_READ));
	salus_scopes_release(&sc);
}

static void grant(const char *reg, const char *req, int want_rc, const char *want)
{
	struct salus_scopes a, b;
	parse_ok(reg, &a);
	parse_ok(req, &b);
	char *out = NULL;
	int rc = salus_scopes_grant(&a, &b, &out);
	if (rc != want_rc)
		fail_msg("grant '%s' of '%s': rc %d want %d", req, reg, rc, want_rc);
	if (!rc && strcmp(out, want))
		fail_msg("grant '%s' of '%s': '%s' want '%s'", req, reg, out, want);
	salus_free(out);
	salus_scopes_release(&a);
	salus_scopes_release(&b);
}

static void test_grant(void **state)
{
	(void)state;
	grant("system/*.read", "system/Patient.read", 0, "system/Patient.read");
	grant("system/*.rs", "system/Patient.cruds", 0, "system/Patient.rs");
	grant("system/*.read", "system/Patient.cruds", 0, "system/Patient.rs");
	grant("system/*.r", "system/Patient.read", 0, "system/Patient.r");
	grant("system/Patient.read system/Patient.write", "system/Patient.*", 0, "system/Patient.*");
	grant("system/Patient.rs", "system/*.rs", SALUS_EFORBIDDEN, NULL);
	grant("system/Patient.rs", "system/Observation.rs", SALUS_EFORBIDDEN, NULL);
	grant("system/Patient.rs", "system/Patient.cud", SALUS_EFORBIDDEN, NULL);
	grant("system/Patient.rs", "patient/Patient.rs", SALUS_EFORBIDDEN, NULL);
	grant("system/Patient.rs system/Observation.rs", "system/Observation.r system/Encounter.r", 0,
	      "system/Observation.r");
	grant("system/Observation.rs", "system/Observation.rs?category=vital-signs", 0,
	      "system/Observation.rs?category=vital-signs");
	grant("system/Observation.rs?category=laboratory", "system/Observation.rs", SALUS_EFORBIDDEN, NULL);
	grant("system/Observation.rs?category=laboratory", "system/Observation.r?category=laboratory", 0,
	      "system/Observation.r?category=laboratory");
}

static void test_form(void **state)
{
	(void)state;
	struct salus_form f;
	const char *b = "grant_type=client_credentials&scope=system%2FPatient.rs+system%2F*.read&x=&y";
	assert_int_equal(salus_form_parse(b, strlen(b), &f), 0);
	assert_int_equal(f.n, 4);
	assert_string_equal(salus_form_get(&f, "grant_type")->value, "client_credentials");
	assert_string_equal(salus_form_get(&f, "scope")->value, "system/Patient.rs system/*.read");
	assert_string_equal(salus_form_get(&f, "x")->value, "");
	assert_string_equal(salus_form_get(&f, "y")->value, "");
	assert_null(salus_form_get(&f, "z"));
	salus_form_release(&f);
	assert_int_equal(salus_form_parse("", 0, &f), 0);
	assert_int_equal(f.n, 0);
	assert_int_equal(salus_form_parse("a%3d=%41%62", 11, &f), 0);
	assert_string_equal(f.v[0].name, "a=");
	assert_string_equal(f.v[0].value, "Ab");
	salus_form_release(&f);

	static const char *const bad[] = {"a=1&a=2", "a=1&&b=2", "&a=1", "a=1&", "=1", "a=%", "a=%4",
					  "a=%zz", "a=%00", "a%=1", "grant_type=x&grant%5ftype=y"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (salus_form_parse(bad[i], strlen(bad[i]), &f) != SALUS_EINVALID)
			fail_msg("accepted bad form '%s'", bad[i]);
	char many[400] = "";
	size_t k = 0;
	for (int i = 0; i < 33; i++)
		k += (size_t)snprintf(many + k, sizeof many - k, "%sp%d=1", i ? "&" : "", i);
	assert_int_equal(salus_form_parse(many, k, &f), SALUS_ETOOLARGE);
	/* embedded NUL in the raw body is just a byte: the decoder refuses it */
	assert_int_equal(salus_form_parse("a=b\0c", 5, &f), SALUS_EINVALID);
}

static char *basic(const char *userpass)
{
	static char out[600];
	char b64[512];
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)userpass, strlen(userpass),
			  sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, sizeof out, "Basic %s", b64);
	return out;
}

static void test_basic(void **state)
{
	(void)state;
	char id[SALUS_CLIENT_ID_MAX + 1];
	char *sec = NULL;
	size_t sn = 0;
	assert_int_equal(salus_basic_parse(basic("app-1:s3cr%3At+x"), id, &sec, &sn), 0);
	assert_string_equal(id, "app-1");
	assert_string_equal(sec, "s3cr:t x");
	assert_int_equal(sn, 8);
	salus_secret_free(sec, sn);
	assert_int_equal(salus_basic_parse("bAsIc   YTpi  ", id, &sec, &sn), 0); /* a:b */
	assert_string_equal(id, "a");
	salus_secret_free(sec, sn);

	static const char *const bad[] = {"Bearer YTpi", "Basic", "Basic ", "BasicYTpi", "Basic YTpi=",
					  "Basic YQ==" /* no colon */, "Basic OmI=" /* empty id */,
					  "Basic YTo=" /* empty secret */, "Basic YTpi!!!!", "Basic YTpi\nYTpi"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (salus_basic_parse(bad[i], id, &sec, &sn) != SALUS_EUNAUTHORIZED)
			fail_msg("accepted bad Basic '%s'", bad[i]);
	assert_int_equal(salus_basic_parse(NULL, id, &sec, &sn), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_basic_parse(basic("a:%"), id, &sec, &sn), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_basic_parse(basic("a:b%00c"), id, &sec, &sn), SALUS_EUNAUTHORIZED);
	char longid[80];
	memset(longid, 'x', 65);
	memcpy(longid + 65, ":secret", 8);
	assert_int_equal(salus_basic_parse(basic(longid), id, &sec, &sn), SALUS_EUNAUTHORIZED);

	assert_true(salus_client_id_valid("a"));
	assert_true(salus_client_id_valid("My.App_2-x"));
	assert_false(salus_client_id_valid(""));
	assert_false(salus_client_id_valid("a b"));
	assert_false(salus_client_id_valid("a/b"));
	assert_false(salus_client_id_valid("a:b"));
	assert_false(salus_client_id_valid(NULL));
	memset(longid, 'x', 65);
	longid[64] = 0;
	assert_true(salus_client_id_valid(longid));
	longid[64] = 'x';
	longid[65] = 0;
	assert_false(salus_client_id_valid(longid));
}

static void test_nomem(void **state)
{
	(void)state;
	const char *s = "system/Observation.rs?category=laboratory system/*.read";
	for (unsigned long i = 1; i < 20; i++) {
		struct salus_scopes sc;
		salus_alloc_fail_at(i, 0);
		int rc = salus_scopes_parse(s, strlen(s), &sc);
		salus_alloc_fail_at(0, 0);
		assert_true(rc == 0 || rc == SALUS_ENOMEM);
		if (!rc)
			salus_scopes_release(&sc);
		struct salus_form f;
		const char *b = "grant_type=client_credentials&scope=a+b";
		salus_alloc_fail_at(i, 0);
		rc = salus_form_parse(b, strlen(b), &f);
		salus_alloc_fail_at(0, 0);
		assert_true(rc == 0 || rc == SALUS_ENOMEM);
		if (!rc)
			salus_form_release(&f);
	}
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse), cmocka_unit_test(test_decision), cmocka_unit_test(test_grant),
		cmocka_unit_test(test_form),  cmocka_unit_test(test_basic),    cmocka_unit_test(test_nomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
