/*
 * test_token.c — client registry, token endpoint and bearer check against an
 * in-memory key/value store (fake_kv.c): good and bad requests, scope
 * subsets, timing-equal unknown clients, cache hits, revocation and
 * re-registration, forged and expired tokens.
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
#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "fake_kv.h"
#include "store/store.h"

#define ISS "https://salus.test"
#define SECRET "0123456789abcdef-secret"
#define FORM "application/x-www-form-urlencoded"

static struct salus_store *const ST = (struct salus_store *)1; /* the fake ignores it */
static char dir[] = "/tmp/salus-auth-XXXXXX";
static char keypath[128];
static struct salus_auth *A;

static const char *basic(const char *id, const char *secret)
{
	static char out[1024];
	char up[600], b64[820];
	snprintf(up, sizeof up, "%s:%s", id, secret);
	sodium_bin2base64(b64, sizeof b64, (const unsigned char *)up, strlen(up), sodium_base64_VARIANT_ORIGINAL);
	snprintf(out, sizeof out, "Basic %s", b64);
	return out;
}

static int setup(void **state)
{
	(void)state;
	fake_kv_clear();
	assert_int_equal(salus_auth_client_add(ST, "app", SECRET, strlen(SECRET), "system/*.read system/Patient.cruds",
					       NULL),
			 0);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	salus_alloc_install();
	if (!mkdtemp(dir))
		return -1;
	snprintf(keypath, sizeof keypath, "%s/token.key", dir);
	if (salus_signkey_create(keypath))
		return -1;
	return salus_auth_new(ST, keypath, ISS, NULL, 900, &A);
}

static int group_teardown(void **state)
{
	(void)state;
	salus_auth_free(A);
	fake_kv_clear();
	unlink(keypath);
	rmdir(dir);
	return 0;
}

/* Run the token endpoint; return the status, *j = parsed body. */
static int token(const char *auth, const char *ct, const char *body, json_t **j)
{
	struct salus_token_response r;
	assert_int_equal(salus_auth_token(A, auth, ct, body, body ? strlen(body) : 0, &r), 0);
	*j = json_loads(r.body, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(*j);
	assert_int_equal(r.basic_challenge, r.status == 401);
	int st = r.status;
	salus_token_response_release(&r);
	return st;
}

static void expect_error(const char *auth, const char *ct, const char *body, int status, const char *err)
{
	json_t *j;
	int st = token(auth, ct, body, &j);
	if (st != status || strcmp(json_string_value(json_object_get(j, "error")), err))
		fail_msg("body '%s': %d %s, want %d %s", body ? body : "(null)", st,
			 json_string_value(json_object_get(j, "error")), status, err);
	assert_null(json_object_get(j, "access_token"));
	json_decref(j);
}

/* A good token for app (optionally with a scope request); caller frees. */
static char *get_token(const char *scope_param, char *granted, size_t cap)
{
	char body[512];
	snprintf(body, sizeof body, "grant_type=client_credentials%s%s", scope_param ? "&scope=" : "",
		 scope_param ? scope_param : "");
	json_t *j;
	assert_int_equal(token(basic("app", SECRET), FORM, body, &j), 200);
	assert_string_equal(json_string_value(json_object_get(j, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(j, "expires_in")), 900);
	if (granted)
		snprintf(granted, cap, "%s", json_string_value(json_object_get(j, "scope")));
	char *t = salus_strdup(json_string_value(json_object_get(j, "access_token")));
	json_decref(j);
	return t;
}

static const char *bearer(const char *t)
{
	static char h[SALUS_MAX_TOKEN + 16];
	snprintf(h, sizeof h, "Bearer %s", t);
	return h;
}

static void test_registry(void **state)
{
	(void)state;
	const char *why = NULL;
	assert_int_equal(salus_auth_client_add(ST, "app", SECRET, strlen(SECRET), "system/*.read", &why), SALUS_EEXISTS);
	assert_int_equal(salus_auth_client_add(ST, "bad id", SECRET, strlen(SECRET), "system/*.read", &why),
			 SALUS_EINVALID);
	assert_non_null(why);
	assert_int_equal(salus_auth_client_add(ST, "b", "short", 5, "system/*.read", &why), SALUS_EINVALID);
	assert_int_equal(salus_auth_client_add(ST, "b", SECRET, strlen(SECRET), "openid", &why), SALUS_EINVALID);
	assert_int_equal(salus_auth_client_add(ST, "b", SECRET, strlen(SECRET), "", &why), SALUS_EINVALID);
	assert_int_equal(salus_auth_client_add(ST, "b", "0123456789abcdef\0x", 18, "system/*.read", &why),
			 SALUS_EINVALID);
	/* the stored record: Argon2id hash, never the secret */
	char *val = NULL;
	assert_int_equal(salus_store_kv_get(ST, "client", "app", &val, NULL), 0);
	assert_null(strstr(val, SECRET));
	json_t *rec = json_loads(val, 0, NULL);
	assert_true(!strncmp(json_string_value(json_object_get(rec, "secret_hash")), "$argon2id$", 10));
	assert_string_equal(json_string_value(json_object_get(rec, "id")), "app");
	assert_string_equal(json_string_value(json_object_get(rec, "scope")), "system/*.read system/Patient.cruds");
	assert_non_null(json_string_value(json_object_get(rec, "created")));
	json_decref(rec);
	salus_free(val);
	assert_int_equal(salus_auth_client_remove(ST, "nope"), SALUS_ENOTFOUND);
	assert_int_equal(salus_auth_client_remove(ST, "a b"), SALUS_ENOTFOUND);
	fake_kv_fail(1);
	assert_int_equal(salus_auth_client_add(ST, "c", SECRET, strlen(SECRET), "system/*.read", &why), SALUS_EIO);
	fake_kv_fail(0);
}

static int count_cb(void *ctx, const struct salus_client_info *c)
{
	int *n = ctx;
	assert_non_null(c->id);
	assert_non_null(c->scope);
	assert_non_null(c->created);
	(*n)++;
	return 0;
}

static void test_list(void **state)
{
	(void)state;
	assert_int_equal(salus_auth_client_add(ST, "zed", SECRET, strlen(SECRET), "system/Observation.rs", NULL), 0);
	int n = 0;
	assert_int_equal(salus_auth_client_list(ST, count_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(salus_auth_client_remove(ST, "zed"), 0);
	n = 0;
	assert_int_equal(salus_auth_client_list(ST, count_cb, &n), 0);
	assert_int_equal(n, 1);
}

static void test_token_good(void **state)
{
	(void)state;
	char granted[256];
	char *t = get_token(NULL, granted, sizeof granted);
	assert_string_equal(granted, "system/*.read system/Patient.cruds");
	/* the claims */
	json_t *c = NULL;
	struct salus_signkey *k = NULL;
	assert_int_equal(salus_signkey_load(keypath, &k), 0);
	struct salus_jwt_expect ex = {ISS, ISS "/fhir", 0, 0};
	assert_int_equal(salus_jwt_verify(k, t, strlen(t), &ex, &c), 0);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "app");
	assert_string_equal(json_string_value(json_object_get(c, "client_id")), "app");
	assert_string_equal(json_string_value(json_object_get(c, "scope")), granted);
	json_int_t iat = json_integer_value(json_object_get(c, "iat")), exp = json_integer_value(json_object_get(c, "exp"));
	assert_int_equal(exp - iat, 900);
	assert_true(iat <= (json_int_t)time(NULL) && iat >= (json_int_t)time(NULL) - 5);
	assert_true(strlen(json_string_value(json_object_get(c, "jti"))) >= 22);
	json_decref(c);
	salus_signkey_free(k);

	/* the bearer check */
	struct salus_principal p;
	assert_int_equal(salus_auth_check(A, bearer(t), &p), 0);
	assert_string_equal(p.client_id, "app");
	assert_int_equal(p.exp, exp);
	assert_true(salus_scope_allows(p.scopes, "Observation", SALUS_IA_SEARCH));
	assert_true(salus_scope_allows(p.scopes, "Patient", SALUS_IA_DELETE));
	assert_false(salus_scope_allows(p.scopes, "Observation", SALUS_IA_CREATE));
	salus_principal_release(&p);
	salus_principal_release(&p); /* idempotent */
	/* scheme is case-insensitive; the token is not */
	char h[SALUS_MAX_TOKEN + 16];
	snprintf(h, sizeof h, "bearer %s", t);
	assert_int_equal(salus_auth_check(A, h, &p), 0);
	salus_principal_release(&p);
	/* a second token is a different jti */
	char *t2 = get_token(NULL, NULL, 0);
	assert_string_not_equal(t, t2);
	assert_int_equal(salus_auth_check(A, bearer(t2), &p), 0);
	salus_principal_release(&p);
	/* the JWKS carries the verification key */
	char *jwks = salus_auth_jwks(A);
	assert_non_null(strstr(jwks, "\"kty\":\"OKP\""));
	assert_null(strstr(jwks, "\"d\""));
	salus_free(jwks);
	/* content type with parameters */
	json_t *j;
	assert_int_equal(token(basic("app", SECRET), FORM "; charset=UTF-8", "grant_type=client_credentials", &j), 200);
	json_decref(j);
	salus_free(t);
	salus_free(t2);
}

static void test_token_scope_subset(void **state)
{
	(void)state;
	char granted[256];
	char *t = get_token("system%2FPatient.rs", granted, sizeof granted);
	assert_string_equal(granted, "system/Patient.rs");
	struct salus_principal p;
	assert_int_equal(salus_auth_check(A, bearer(t), &p), 0);
	assert_true(salus_scope_allows(p.scopes, "Patient", SALUS_IA_READ));
	assert_false(salus_scope_allows(p.scopes, "Patient", SALUS_IA_UPDATE));
	assert_false(salus_scope_allows(p.scopes, "Observation", SALUS_IA_READ));
	salus_principal_release(&p);
	salus_free(t);
	t = get_token("system/Observation.cruds+system/Patient.d+system/Encounter.s", granted, sizeof granted);
	assert_string_equal(granted, "system/Observation.rs system/Patient.d system/Encounter.s");
	salus_free(t);
	expect_error(basic("app", SECRET), FORM, "grant_type=client_credentials&scope=system/Observation.c", 400,
		     "invalid_scope");
	expect_error(basic("app", SECRET), FORM, "grant_type=client_credentials&scope=openid", 400, "invalid_scope");
	expect_error(basic("app", SECRET), FORM, "grant_type=client_credentials&scope=", 400, "invalid_scope");
	expect_error(basic("app", SECRET), FORM, "grant_type=client_credentials&scope=patient/*.read", 400,
		     "invalid_scope");
}

static void test_token_errors(void **state)
{
	(void)state;
	char good[1024];
	snprintf(good, sizeof good, "%s", basic("app", SECRET));
	const char *gt = "grant_type=client_credentials";
	/* client authentication */
	expect_error(basic("app", "wrong-secret-0123456789"), FORM, gt, 401, "invalid_client");
	expect_error(basic("nobody", SECRET), FORM, gt, 401, "invalid_client");
	expect_error(basic("bad id!", SECRET), FORM, gt, 401, "invalid_client");
	expect_error(NULL, FORM, gt, 401, "invalid_client");
	expect_error("Bearer abc", FORM, gt, 401, "invalid_client");
	expect_error("Basic !!!!", FORM, gt, 401, "invalid_client");
	expect_error(NULL, FORM, "grant_type=client_credentials&client_id=app&client_secret=" SECRET, 401,
		     "invalid_client");
	expect_error(good, FORM, "grant_type=client_credentials&client_secret=" SECRET, 400, "invalid_request");
	expect_error(good, FORM, "grant_type=client_credentials&client_id=other", 400, "invalid_request");
	json_t *j;
	assert_int_equal(token(good, FORM, "grant_type=client_credentials&client_id=app", &j), 200);
	json_decref(j);
	/* request syntax */
	expect_error(good, "application/json", gt, 400, "invalid_request");
	expect_error(good, NULL, gt, 400, "invalid_request");
	expect_error(good, "application/x-www-form-urlencodedx", gt, 400, "invalid_request");
	expect_error(good, FORM, "", 400, "invalid_request");
	expect_error(good, FORM, NULL, 400, "invalid_request");
	expect_error(good, FORM, "grant_type=client_credentials&grant_type=client_credentials", 400, "invalid_request");
	expect_error(good, FORM, "grant_type=client_credentials&&", 400, "invalid_request");
	expect_error(good, FORM, "grant_type=client%ZZcredentials", 400, "invalid_request");
	expect_error(good, FORM, "grant_type=", 400, "invalid_request");
	expect_error(good, FORM, "grant_type=password&username=a&password=b", 400, "unsupported_grant_type");
	expect_error(good, FORM, "grant_type=authorization_code&code=x", 400, "unsupported_grant_type");
	/* unknown parameters are ignored (RFC 6749 §3.2) */
	assert_int_equal(token(good, FORM, "grant_type=client_credentials&foo=bar", &j), 200);
	json_decref(j);
	/* store failure: no answer, the caller sends 500 */
	struct salus_token_response r;
	fake_kv_fail(1);
	assert_int_equal(salus_auth_token(A, good, FORM, gt, strlen(gt), &r), SALUS_EIO);
	fake_kv_fail(0);
	assert_null(r.body);
}

/* Fastest of 5 token requests, in ms (the minimum is robust against a busy machine). */
static double ms_of(const char *auth)
{
	const char *gt = "grant_type=client_credentials";
	struct salus_token_response r;
	int64_t best = INT64_MAX;
	for (int i = 0; i < 5; i++) {
		int64_t t0 = salus_mono_ms();
		assert_int_equal(salus_auth_token(A, auth, FORM, gt, strlen(gt), &r), 0);
		int64_t d = salus_mono_ms() - t0;
		best = d < best ? d : best;
		salus_token_response_release(&r);
	}
	return (double)best;
}

static void test_unknown_client_timing(void **state)
{
	(void)state;
	/* An unknown client (or an impossible id) costs an Argon2id verify like a
	 * wrong secret does, so response times do not tell which ids exist.  The
	 * bound is loose on purpose: without the dummy verify the ratio is ~0. */
	double wrong = ms_of(basic("app", "wrong-secret-0123456789"));
	double unknown = ms_of(basic("nobody", "wrong-secret-0123456789"));
	double badid = ms_of(basic("bad id", "wrong-secret-0123456789"));
	print_message("wrong secret %.1f ms, unknown client %.1f ms, bad id %.1f ms\n", wrong, unknown, badid);
	assert_true(wrong >= 5);
	assert_true(unknown > wrong / 3 && badid > wrong / 3);
	assert_true(unknown < wrong * 3 && badid < wrong * 3);
}

static void test_revocation(void **state)
{
	(void)state;
	char *t = get_token(NULL, NULL, 0);
	struct salus_principal p, p2;
	assert_int_equal(salus_auth_check(A, bearer(t), &p), 0);
	/* cache hit: still one registry read per check */
	unsigned long before = fake_kv_gets;
	assert_int_equal(salus_auth_check(A, bearer(t), &p2), 0);
	assert_int_equal(fake_kv_gets - before, 1);
	salus_principal_release(&p2);
	/* remove: the next check fails, the principal already handed out stays readable */
	assert_int_equal(salus_auth_client_remove(ST, "app"), 0);
	assert_int_equal(salus_auth_check(A, bearer(t), &p2), SALUS_EUNAUTHORIZED);
	assert_int_equal(salus_auth_check(A, bearer(t), &p2), SALUS_EUNAUTHORIZED);
	assert_string_equal(p.client_id, "app");
	assert_true(salus_scope_allows(p.scopes, "Patient", SALUS_IA_READ));
	salus_principal_release(&p);
	/* re-registering the same id does not revive the old token */
	assert_int_equal(salus_auth_client_add(ST, "app", SECRET, strlen(SECRET), "system/*.cruds", NULL), 0);
	assert_int_equal(salus_auth_check(A, bearer(t), &p2), SALUS_EUNAUTHORIZED);
	char *t2 = get_token(NULL, NULL, 0);
	assert_int_equal(salus_auth_check(A, bearer(t2), &p2), 0);
	salus_principal_release(&p2);
	/* store down: fail closed */
	fake_kv_fail(1);
	assert_int_equal(salus_auth_check(A, bearer(t2), &p2), SALUS_EIO);
	fake_kv_fail(0);
	assert_int_equal(salus_auth_check(A, bearer(t2), &p2), 0);
	salus_principal_release(&p2);
	salus_free(t);
	salus_free(t2);
}

/* Sign arbitrary claims with the server's key. */
static char *forge(json_t *claims)
{
	struct salus_signkey *k = NULL;
	assert_int_equal(salus_signkey_load(keypath, &k), 0);
	char *t = NULL;
	assert_int_equal(salus_jwt_sign(k, claims, &t, NULL), 0);
	json_decref(claims);
	salus_signkey_free(k);
	return t;
}

static void test_check_rejects(void **state)
{
	(void)state;
	struct salus_principal p;
	char *val = NULL;
	assert_int_equal(salus_store_kv_get(ST, "client", "app", &val, NULL), 0);
	json_t *rec = json_loads(val, 0, NULL);
	salus_free(val);
	const char *gen = json_string_value(json_object_get(rec, "gen"));
	json_int_t now = (json_int_t)time(NULL);

	/* a well-formed token of ours is accepted (sanity for the forger) */
	char *t = forge(json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir",
				  "iat", now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "app",
				  "cgen", gen));
	assert_int_equal(salus_auth_check(A, bearer(t), &p), 0);
	salus_principal_release(&p);
	salus_free(t);

	json_t *bad[] = {
		/* expired beyond the leeway */
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir", "iat",
			  now - 1000, "exp", now - 60, "jti", "x", "scope", "system/*.read", "client_id", "app", "cgen", gen),
		/* wrong audience, wrong issuer */
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", "https://x/fhir", "iat",
			  now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "app", "cgen", gen),
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", "https://x", "sub", "app", "aud", ISS "/fhir",
			  "iat", now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "app", "cgen", gen),
		/* another registration generation, unknown client, sub/client_id mismatch, bad scope, missing jti */
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir", "iat",
			  now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "app", "cgen", "old"),
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "ghost", "aud", ISS "/fhir", "iat",
			  now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "ghost", "cgen", gen),
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir", "iat",
			  now, "exp", now + 600, "jti", "x", "scope", "system/*.read", "client_id", "zed", "cgen", gen),
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir", "iat",
			  now, "exp", now + 600, "jti", "x", "scope", "openid", "client_id", "app", "cgen", gen),
		json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s}", "iss", ISS, "sub", "app", "aud", ISS "/fhir", "iat", now,
			  "exp", now + 600, "scope", "system/*.read", "client_id", "app", "cgen", gen),
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		t = forge(bad[i]);
		if (salus_auth_check(A, bearer(t), &p) != SALUS_EUNAUTHORIZED)
			fail_msg("forged token %zu accepted", i);
		salus_free(t);
	}
	json_decref(rec);

	/* header shapes */
	static const char *const hdrs[] = {NULL, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearer a.b.c",
					   "Bearer a\"b", "Token abc.def.ghi"};
	for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++)
		assert_int_equal(salus_auth_check(A, hdrs[i], &p), SALUS_EUNAUTHORIZED);
	assert_string_equal(salus_auth_challenge(NULL), "Bearer realm=\"salus\"");
	assert_string_equal(salus_auth_challenge("Bearer x"), "Bearer realm=\"salus\", error=\"invalid_token\"");

	/* a tampered good token */
	t = get_token(NULL, NULL, 0);
	size_t n = strlen(t);
	t[n - 3] = t[n - 3] == 'A' ? 'B' : 'A';
	assert_int_equal(salus_auth_check(A, bearer(t), &p), SALUS_EUNAUTHORIZED);
	salus_free(t);
}

/* Fail each allocation of a full bearer check and of a token request in turn:
 * every path returns an error (never a crash, a leak or a false success). */
static void test_nomem(void **state)
{
	(void)state;
	char *val = NULL;
	assert_int_equal(salus_store_kv_get(ST, "client", "app", &val, NULL), 0);
	json_t *rec = json_loads(val, 0, NULL);
	salus_free(val);
	json_int_t now = (json_int_t)time(NULL);
	bool done = false;
	for (unsigned long i = 1; i < 400 && !done; i++) {
		char jti[32];
		snprintf(jti, sizeof jti, "nomem-%lu", i); /* a new token each time: the full path */
		char *t = forge(json_pack("{s:s,s:s,s:s,s:I,s:I,s:s,s:s,s:s,s:O}", "iss", ISS, "sub", "app", "aud",
					  ISS "/fhir", "iat", now, "exp", now + 600, "jti", jti, "scope",
					  "system/*.read system/Patient.cruds", "client_id", "app", "cgen",
					  json_object_get(rec, "gen")));
		struct salus_principal p;
		salus_alloc_fail_at(i, 0);
		int rc = salus_auth_check(A, bearer(t), &p);
		salus_alloc_fail_at(0, 0);
		if (rc == 0) {
			salus_principal_release(&p);
			done = true;
		} else if (rc != SALUS_ENOMEM && rc != SALUS_EUNAUTHORIZED && rc != SALUS_EIO) {
			fail_msg("check: allocation %lu failed gave %d", i, rc);
		}
		salus_free(t);
	}
	assert_true(done);
	json_decref(rec);

	char auth[1024];
	snprintf(auth, sizeof auth, "%s", basic("app", SECRET));
	const char *body = "grant_type=client_credentials&scope=system%2FPatient.rs";
	done = false;
	for (unsigned long i = 1; i < 200 && !done; i++) {
		struct salus_token_response r;
		salus_alloc_fail_at(i, 0);
		int rc = salus_auth_token(A, auth, FORM, body, strlen(body), &r);
		salus_alloc_fail_at(0, 0);
		if (rc == 0) {
			done = r.status == 200;
			salus_token_response_release(&r);
		} else if (rc != SALUS_ENOMEM && rc != SALUS_EINTERNAL && rc != SALUS_EIO) {
			/* EIO: jansson reports some allocation failures as syntax errors */
			fail_msg("token: allocation %lu failed gave %d", i, rc);
		}
	}
	assert_true(done);
}

static void test_new_args(void **state)
{
	(void)state;
	struct salus_auth *a = NULL;
	assert_int_equal(salus_auth_new(ST, keypath, ISS, NULL, 299, &a), SALUS_EINVALID);
	assert_int_equal(salus_auth_new(ST, keypath, ISS, NULL, 3601, &a), SALUS_EINVALID);
	assert_int_equal(salus_auth_new(ST, keypath, "", NULL, 900, &a), SALUS_EINVALID);
	assert_int_equal(salus_auth_new(ST, "/nonexistent/key", ISS, NULL, 900, &a), SALUS_ENOTFOUND);
	assert_int_equal(salus_auth_new(ST, keypath, ISS "/", "https://other/fhir", 900, &a), 0);
	salus_auth_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_registry, setup),
		cmocka_unit_test_setup(test_list, setup),
		cmocka_unit_test_setup(test_token_good, setup),
		cmocka_unit_test_setup(test_token_scope_subset, setup),
		cmocka_unit_test_setup(test_token_errors, setup),
		cmocka_unit_test_setup(test_unknown_client_timing, setup),
		cmocka_unit_test_setup(test_revocation, setup),
		cmocka_unit_test_setup(test_check_rejects, setup),
		cmocka_unit_test_setup(test_nomem, setup),
		cmocka_unit_test(test_new_args),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
