/*
 * test_user.c — users against an in-memory key/value store (fake_kv.c):
 * password policy, peppered hashing, login without enumeration (answers and
 * timing), lockout with backoff per account and per address, TOTP (RFC 6238
 * Appendix B vectors, replay), recovery codes, sessions (idle logoff,
 * absolute lifetime, revocation), disable / set-role / reset-mfa.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <liboath/oath.h>

#include "auth/user.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "fake_kv.h"
#include "store/store.h"

static struct salus_store *const ST = (struct salus_store *)1;
static char dir[] = "/tmp/salus-user-XXXXXX";
static char pepper[128];
static struct salus_users *U;
static struct salus_mfa_enrolment M; /* alice's */
#define PW "correct horse battery staple 42"
#define T0 1700000000000LL /* a fixed "now" (ms) */

static int group_setup(void **state)
{
	(void)state;
	salus_alloc_install();
	if (!mkdtemp(dir))
		return -1;
	snprintf(pepper, sizeof pepper, "%s/pepper.key", dir);
	if (salus_pepper_create(pepper))
		return -1;
	return salus_users_new(ST, pepper, NULL, &U);
}

static int group_teardown(void **state)
{
	(void)state;
	salus_users_free(U);
	fake_kv_clear();
	unlink(pepper);
	rmdir(dir);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	fake_kv_clear();
	struct salus_user_new nu = {.username = "alice", .role = SALUS_ROLE_CLINICIAN, .password = PW,
				    .password_n = strlen(PW), .practitioner = "prac-1"};
	const char *why = NULL;
	int rc = salus_user_add(U, &nu, &M, &why);
	if (rc)
		fail_msg("add: %s", why ? why : salus_err_msg(rc));
	return 0;
}

static int login(const char *user, const char *pw, const char *addr, int64_t now, struct salus_login *out)
{
	int retry;
	struct salus_login tmp;
	return salus_user_login(U, user, pw, strlen(pw), addr, now, out ? out : &tmp, &retry);
}

static void test_pepper_file(void **state)
{
	(void)state;
	assert_int_equal(salus_pepper_create(pepper), SALUS_EEXISTS);
	struct salus_users *u2;
	char other[160];
	snprintf(other, sizeof other, "%s/none.key", dir);
	assert_int_equal(salus_users_new(ST, other, NULL, &u2), SALUS_ENOTFOUND);
}

static void test_roles(void **state)
{
	(void)state;
	enum salus_role r;
	assert_int_equal(salus_role_parse("front-desk", &r), 0);
	assert_int_equal(r, SALUS_ROLE_FRONT_DESK);
	assert_int_equal(salus_role_parse("root", &r), SALUS_EINVALID);
	assert_true(salus_role_is_staff(SALUS_ROLE_AUDITOR));
	assert_false(salus_role_is_staff(SALUS_ROLE_PATIENT));
	assert_string_equal(salus_role_name(SALUS_ROLE_RELATED_PERSON), "related-person");
}

static void test_policy(void **state)
{
	(void)state;
	const char *why;
	static const char *const bad[] = {
		"short",               /* length */
		"aaaaaaaaaaaaaaaa",    /* one character */
		"123456789012",        /* on the list */
		"qwertyuiopasdfgh",    /* on the list? (keyboard walk) — allowed only if not listed */
		"Password12345678!",   /* list word + digits */
		"xxalicexx-long-pass", /* contains the username */
		"tab\there-is-long",   /* control character */
	};
	assert_int_equal(salus_password_policy(bad[0], strlen(bad[0]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(bad[1], strlen(bad[1]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(bad[2], strlen(bad[2]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(bad[4], strlen(bad[4]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(bad[5], strlen(bad[5]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(bad[6], strlen(bad[6]), "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy("\xff\xfe-not-utf8-xx", 16, "alice", &why), SALUS_EINVALID);
	assert_int_equal(salus_password_policy(PW, strlen(PW), "alice", &why), 0);
	assert_int_equal(salus_password_policy("Zebra-Quartz-Lamp-17", 20, "alice", &why), 0);
	/* a common password cannot be registered */
	struct salus_mfa_enrolment m;
	struct salus_user_new nu = {.username = "bob", .role = SALUS_ROLE_NURSE, .password = "password1234",
				    .password_n = 12};
	assert_int_equal(salus_user_add(U, &nu, &m, &why), SALUS_EINVALID);
}

static void test_add_rules(void **state)
{
	(void)state;
	struct salus_mfa_enrolment m;
	const char *why;
	struct salus_user_new nu = {.username = "alice", .role = SALUS_ROLE_NURSE, .password = PW, .password_n = strlen(PW)};
	assert_int_equal(salus_user_add(U, &nu, &m, &why), SALUS_EEXISTS);
	nu.username = "Bad Name";
	assert_int_equal(salus_user_add(U, &nu, &m, &why), SALUS_EINVALID);
	nu.username = "pat";
	nu.role = SALUS_ROLE_PATIENT; /* a patient needs --patient */
	assert_int_equal(salus_user_add(U, &nu, &m, &why), SALUS_EINVALID);
	nu.practitioner = "p1"; /* not a practitioner link */
	assert_int_equal(salus_user_add(U, &nu, &m, &why), SALUS_EINVALID);
	nu.practitioner = NULL;
	nu.patient = "pt-9";
	assert_int_equal(salus_user_add(U, &nu, &m, &why), 0);
	struct salus_login l;
	assert_int_equal(login("pat", PW, "10.0.0.1", T0, &l), 0);
	assert_string_equal(l.fhir_user, "Patient/pt-9");
	assert_false(l.mfa_required); /* patients: MFA optional until enrolled */
	/* the record holds neither the password nor the TOTP secret in clear */
	char *val;
	size_t n;
	assert_int_equal(salus_store_kv_get(ST, "user", "alice", &val, &n), 0);
	assert_null(strstr(val, PW));
	assert_null(strstr(val, M.secret_b32));
	assert_null(strstr(val, M.recovery[0]));
	assert_non_null(strstr(val, "$argon2id$v=19$m=65536,t=3,p=1$"));
	salus_free(val);
}

static void test_login(void **state)
{
	(void)state;
	struct salus_login l;
	assert_int_equal(login("alice", PW, "10.0.0.1", T0, &l), 0);
	assert_string_equal(l.username, "alice");
	assert_int_equal(l.role, SALUS_ROLE_CLINICIAN);
	assert_string_equal(l.fhir_user, "Practitioner/prac-1");
	assert_true(l.mfa_required);
	assert_false(l.mfa_enrolled);
	assert_int_equal(login("alice", "wrong password here", "10.0.0.1", T0, NULL), SALUS_EUNAUTHORIZED);
	assert_int_equal(login("nobody", PW, "10.0.0.1", T0, NULL), SALUS_EUNAUTHORIZED);
	assert_int_equal(login("Not Valid!", PW, "10.0.0.1", T0, NULL), SALUS_EUNAUTHORIZED);
	assert_int_equal(login("alice", "", "10.0.0.1", T0, NULL), SALUS_EUNAUTHORIZED);
}

static double ms_of(const char *user, int64_t now)
{
	double best = 1e9;
	for (int i = 0; i < 3; i++) {
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		login(user, "wrong password here", NULL, now + i, NULL);
		clock_gettime(CLOCK_MONOTONIC, &b);
		double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
		if (ms < best)
			best = ms;
	}
	return best;
}

static void test_enumeration_timing(void **state)
{
	(void)state;
	/* unknown names run the same Argon2id (dummy hash) and the same lockout bookkeeping */
	double known = ms_of("alice", T0), unknown = ms_of("nobody", T0), invalid = ms_of("NOT VALID", T0);
	print_message("known %.1f ms, unknown %.1f ms, invalid %.1f ms\n", known, unknown, invalid);
	assert_true(known >= 5);
	assert_true(unknown > known / 2 && unknown < known * 2);
	assert_true(invalid > known / 2 && invalid < known * 2);
}

static void test_account_lockout(void **state)
{
	(void)state;
	int64_t t = T0;
	for (int i = 0; i < SALUS_LOCK_ACCOUNT_AFTER; i++)
		assert_int_equal(login("alice", "wrong password here", NULL, t, NULL), SALUS_EUNAUTHORIZED);
	/* locked: even the right password is refused, with the same answer */
	assert_int_equal(login("alice", PW, NULL, t + 1000, NULL), SALUS_EUNAUTHORIZED);
	/* after the backoff it works again */
	assert_int_equal(login("alice", PW, NULL, t + SALUS_LOCK_BASE_S * 1000 + 1, NULL), 0);
	/* doubling: 5 failures → 30 s; 6 → 60 s */
	t += 100000;
	for (int i = 0; i < SALUS_LOCK_ACCOUNT_AFTER + 1; i++)
		login("alice", "wrong password here", NULL, t + i * 31000, NULL);
	int64_t last = t + SALUS_LOCK_ACCOUNT_AFTER * 31000;
	assert_int_equal(login("alice", PW, NULL, last + 45000, NULL), SALUS_EUNAUTHORIZED);
	assert_int_equal(login("alice", PW, NULL, last + 61000, NULL), 0);
	/* unknown users are locked out the same way (no enumeration through lockout) */
	char *v;
	for (int i = 0; i < SALUS_LOCK_ACCOUNT_AFTER; i++)
		login("ghost", "wrong password here", NULL, t, NULL);
	assert_int_equal(salus_store_kv_get(ST, "user", "ghost", &v, NULL), SALUS_ENOTFOUND);
}

static void test_address_lockout(void **state)
{
	(void)state;
	int retry = 0;
	struct salus_login l;
	int64_t t = T0 + 10000000;
	char name[32];
	for (int i = 0; i < SALUS_LOCK_ADDR_AFTER; i++) { /* spread over names: no account lock */
		snprintf(name, sizeof name, "user%d", i);
		assert_int_equal(login(name, "wrong password here", "192.0.2.7", t, NULL), SALUS_EUNAUTHORIZED);
	}
	assert_int_equal(salus_user_login(U, "alice", PW, strlen(PW), "192.0.2.7", t + 1, &l, &retry),
			 SALUS_ERATELIMIT);
	assert_true(retry > 0 && retry <= SALUS_LOCK_BASE_S);
	/* other addresses are served */
	assert_int_equal(login("alice", PW, "192.0.2.8", t + 1, NULL), 0);
	assert_int_equal(login("alice", PW, "192.0.2.7", t + SALUS_LOCK_BASE_S * 1000 + 1, NULL), 0);
}

static void test_totp_rfc6238(void **state)
{
	(void)state;
	/* RFC 6238 Appendix B, SHA-1, secret "12345678901234567890" (8 digits) */
	static const struct {
		time_t t;
		const char *otp;
	} v[] = {{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"},
		 {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}};
	const char *secret = "12345678901234567890";
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char out[10];
		assert_int_equal(oath_totp_generate(secret, 20, v[i].t, 30, 0, 8, out), OATH_OK);
		assert_string_equal(out, v[i].otp);
		/* salus_totp_code: the same, 6 digits, from the base32 secret */
		char six[7];
		assert_int_equal(salus_totp_code("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", v[i].t, six), 0);
		assert_string_equal(six, v[i].otp + 2);
	}
}

static void test_mfa(void **state)
{
	(void)state;
	int retry;
	int64_t t = T0 + 20000000;
	char code[7];
	assert_int_equal(strlen(M.secret_b32), 32);
	assert_int_equal(salus_totp_code(M.secret_b32, t / 1000, code), 0);
	assert_int_equal(salus_user_mfa_verify(U, "alice", "000000", NULL, t, &retry) == 0,
			 !strcmp(code, "000000"));
	assert_int_equal(salus_user_mfa_verify(U, "alice", code, NULL, t, &retry), 0);
	/* replay of the same code (same time step) is refused */
	assert_int_equal(salus_user_mfa_verify(U, "alice", code, NULL, t + 1000, &retry), SALUS_EUNAUTHORIZED);
	/* the next step's code works; one step of drift is accepted */
	assert_int_equal(salus_totp_code(M.secret_b32, t / 1000 + 30, code), 0);
	assert_int_equal(salus_user_mfa_verify(U, "alice", code, NULL, t + 30000, &retry), 0);
	assert_int_equal(salus_totp_code(M.secret_b32, t / 1000 + 120, code), 0); /* 4 steps ahead: refused */
	assert_int_equal(salus_user_mfa_verify(U, "alice", code, NULL, t + 30000, &retry), SALUS_EUNAUTHORIZED);
	struct salus_login l;
	assert_int_equal(login("alice", PW, NULL, t + 31000, &l), 0);
	assert_true(l.mfa_enrolled);
	/* recovery codes: each once, case and dashes ignored */
	char upper[SALUS_RECOVERY_LEN];
	for (int i = 0; i < SALUS_RECOVERY_LEN; i++)
		upper[i] = M.recovery[3][i] >= 'a' && M.recovery[3][i] <= 'z' ? (char)(M.recovery[3][i] - 32) : M.recovery[3][i];
	assert_int_equal(salus_user_mfa_verify(U, "alice", upper, NULL, t + 32000, &retry), 0);
	assert_int_equal(salus_user_mfa_verify(U, "alice", M.recovery[3], NULL, t + 33000, &retry), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_user_mfa_verify(U, "alice", M.recovery[4], NULL, t + 34000, &retry), 0);
	assert_int_equal(salus_user_mfa_verify(U, "alice", "zzzzz-zzzzz", NULL, t + 35000, &retry), SALUS_EUNAUTHORIZED);
	/* reset: new secret, the old codes are gone */
	struct salus_mfa_enrolment m2;
	assert_int_equal(salus_user_reset_mfa(U, "alice", &m2), 0);
	assert_string_not_equal(m2.secret_b32, M.secret_b32);
	assert_int_equal(salus_user_mfa_verify(U, "alice", M.recovery[5], NULL, t + 36000, &retry), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_totp_code(m2.secret_b32, t / 1000 + 40, code), 0);
	assert_int_equal(salus_user_mfa_verify(U, "alice", code, NULL, t + 40000, &retry), 0);
	char uri[256];
	assert_int_equal(salus_totp_uri("Salus Clinic", "alice@x", m2.secret_b32, uri, sizeof uri), 0);
	assert_non_null(strstr(uri, "otpauth://totp/Salus%20Clinic:alice%40x?secret="));
	assert_non_null(strstr(uri, "&algorithm=SHA1&digits=6&period=30"));
	salus_mfa_enrolment_clear(&m2);
}

static int count_sessions(void *ctx, const struct salus_session_info *si)
{
	(void)si;
	(*(int *)ctx)++;
	return 0;
}

static void test_sessions(void **state)
{
	(void)state;
	struct salus_login l, who;
	char tok[SALUS_SESSION_TOKEN_LEN], tok2[SALUS_SESSION_TOKEN_LEN];
	int64_t t = T0;
	assert_int_equal(login("alice", PW, NULL, t, &l), 0);
	assert_int_equal(salus_session_new(U, &l, "10.1.1.1", t, tok), 0);
	assert_int_equal(salus_session_check(U, tok, t + 60000, &who), 0);
	assert_string_equal(who.username, "alice");
	/* idle logoff: 15 minutes without use */
	assert_int_equal(salus_session_check(U, tok, t + 60000 + 901000, &who), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_session_check(U, tok, t + 61000, &who), SALUS_EUNAUTHORIZED); /* deleted */
	/* absolute lifetime: used every 10 min, still ends after 12 h */
	assert_int_equal(salus_session_new(U, &l, "10.1.1.1", t, tok), 0);
	int64_t s;
	for (s = t + 600000; s < t + 43200000; s += 600000)
		assert_int_equal(salus_session_check(U, tok, s, &who), 0);
	assert_int_equal(salus_session_check(U, tok, t + 43200001, &who), SALUS_EUNAUTHORIZED);
	/* list and revoke */
	assert_int_equal(salus_session_new(U, &l, "10.1.1.1", t, tok), 0);
	assert_int_equal(salus_session_new(U, &l, "10.1.1.2", t, tok2), 0);
	int n = 0;
	assert_int_equal(salus_session_list(U, "alice", count_sessions, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(salus_session_end(U, tok2), 0);
	assert_int_equal(salus_session_check(U, tok2, t, &who), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_session_check(U, "forged-token", t, &who), SALUS_EUNAUTHORIZED);
	/* set-role and disable end sessions */
	const char *why;
	assert_int_equal(salus_user_set_role(U, "alice", SALUS_ROLE_NURSE, &why), 0);
	assert_int_equal(salus_session_check(U, tok, t, &who), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_user_set_role(U, "alice", SALUS_ROLE_PATIENT, &why), SALUS_EINVALID);
	assert_int_equal(login("alice", PW, NULL, t, &l), 0);
	assert_int_equal(l.role, SALUS_ROLE_NURSE);
	assert_int_equal(salus_session_new(U, &l, NULL, t, tok), 0);
	assert_int_equal(salus_user_current(U, "alice", l.gen), 0);
	assert_int_equal(salus_user_disable(U, "alice"), 0);
	assert_int_equal(salus_session_check(U, tok, t, &who), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_user_current(U, "alice", l.gen), SALUS_EUNAUTHORIZED);
	assert_int_equal(login("alice", PW, NULL, t, NULL), SALUS_EUNAUTHORIZED);
	n = 0;
	assert_int_equal(salus_session_list(U, NULL, count_sessions, &n), 0);
	assert_int_equal(n, 0);
}

static void test_store_failure(void **state)
{
	(void)state;
	fake_kv_fail(1);
	assert_int_equal(login("alice", PW, NULL, T0, NULL), SALUS_EIO); /* fail closed */
	fake_kv_fail(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_pepper_file, setup),   cmocka_unit_test_setup(test_roles, setup),
		cmocka_unit_test_setup(test_policy, setup),        cmocka_unit_test_setup(test_add_rules, setup),
		cmocka_unit_test_setup(test_login, setup),         cmocka_unit_test_setup(test_enumeration_timing, setup),
		cmocka_unit_test_setup(test_account_lockout, setup), cmocka_unit_test_setup(test_address_lockout, setup),
		cmocka_unit_test_setup(test_totp_rfc6238, setup),  cmocka_unit_test_setup(test_mfa, setup),
		cmocka_unit_test_setup(test_sessions, setup),      cmocka_unit_test_setup(test_store_failure, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
