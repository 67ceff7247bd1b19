/*
 * test_backend.c — SMART Backend Services (backend.c) against the in-memory
 * key/value store (fake_kv.c): JWK Set registration (public RSA / P-384 keys
 * only), client assertions signed here with OpenSSL's EVP API (RS384, ES384;
 * keys generated per run), and every refusal — wrong key, wrong aud,
 * expired, exp too far, replayed jti, alg none, HS256 keyed with the public
 * key, RS256, unknown kid, DER-encoded ES384 signature, tampered payload,
 * extra header members, removed client — as the same 400 invalid_client.
 * Also: the token works with salus_auth_check, store failures fail closed,
 * and failed allocations never crash or leak.
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
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rsa.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "fake_kv.h"
#include "store/store.h"

#define ISS "https://salus.test:8443"
#define TOKEN_URL ISS "/auth/token"
#define FORM "application/x-www-form-urlencoded"
#define ATYPE "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"

static struct salus_store *const ST = (struct salus_store *)1; /* the fake ignores it */
static char dir[] = "/tmp/salus-backend-XXXXXX";
static char keypath[128];
static struct salus_auth *A;
static EVP_PKEY *rsa, *ec, *other_rsa;
static char rsa_jwk[2048], ec_jwk[512], other_jwk[2048];

/* ---- keys and JWS made with OpenSSL ------------------------------------------------------------ */

static void b64u(const unsigned char *p, size_t n, char *out, size_t cap)
{
	assert_int_equal(salus_b64url_encode(p, n, out, cap), 0);
}

static void bn_b64u(EVP_PKEY *k, const char *name, size_t pad, char *out, size_t cap)
{
	BIGNUM *bn = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(k, name, &bn), 1);
	unsigned char buf[1024];
	int n = pad ? BN_bn2binpad(bn, buf, (int)pad) : BN_bn2bin(bn, buf);
	assert_true(n > 0);
	b64u(buf, (size_t)n, out, cap);
	BN_free(bn);
}

static void rsa_jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
	char n[1400], e[16];
	bn_b64u(k, OSSL_PKEY_PARAM_RSA_N, 0, n, sizeof n);
	bn_b64u(k, OSSL_PKEY_PARAM_RSA_E, 0, e, sizeof e);
	snprintf(out, cap, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"alg\":\"RS384\",\"use\":\"sig\",\"n\":\"%s\",\"e\":\"%s\"}",
		 kid, n, e);
}

static void ec_jwk_of(EVP_PKEY *k, const char *kid, char *out, size_t cap)
{
	char x[80], y[80];
	bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_X, 48, x, sizeof x);
	bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_Y, 48, y, sizeof y);
	snprintf(out, cap, "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"}", kid, x, y);
}

enum sigmode { SIG_RAW, SIG_DER };

/* header.payload signed with k by alg (RS384, RS256, ES384); ES384 as raw R||S unless SIG_DER. */
static char *jws(const char *hdr, const char *payload, EVP_PKEY *k, const char *alg, enum sigmode mode)
{
	char h64[1024], p64[4096];
	b64u((const unsigned char *)hdr, strlen(hdr), h64, sizeof h64);
	b64u((const unsigned char *)payload, strlen(payload), p64, sizeof p64);
	char input[5200];
	snprintf(input, sizeof input, "%s.%s", h64, p64);
	unsigned char sig[1024];
	size_t sn = sizeof sig;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	const EVP_MD *md = strstr(alg, "256") ? EVP_sha256() : EVP_sha384();
	assert_int_equal(EVP_DigestSignInit(c, NULL, md, NULL, k), 1);
	assert_int_equal(EVP_DigestSign(c, sig, &sn, (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(c);
	if (alg[0] == 'E' && mode == SIG_RAW) { /* DER ECDSA-Sig-Value → R||S (RFC 7518 §3.4) */
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sn);
		assert_non_null(es);
		unsigned char raw[96];
		BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 48);
		BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 48, 48);
		ECDSA_SIG_free(es);
		memcpy(sig, raw, 96);
		sn = 96;
	}
	char s64[1400];
	b64u(sig, sn, s64, sizeof s64);
	size_t n = strlen(input) + strlen(s64) + 2;
	char *out = salus_malloc(n);
	snprintf(out, n, "%s.%s", input, s64);
	return out;
}

static char *claims(const char *iss, const char *sub, const char *aud, long exp_in, const char *jti)
{
	static char buf[1024];
	snprintf(buf, sizeof buf, "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,\"jti\":\"%s\"}", iss, sub, aud,
		 (long)time(NULL) + exp_in, jti);
	return buf;
}

static const char *fresh_jti(void)
{
	static char j[40];
	salus_random_token(16, j, sizeof j);
	return j;
}

/* POST /auth/token with a client assertion; returns the status, *j the body (caller decrefs). */
static int post(const char *assertion, const char *extra, json_t **j)
{
	size_t n = strlen(assertion) + 512;
	char *body = salus_malloc(n);
	snprintf(body, n, "grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s%s", ATYPE, assertion,
		 extra ? extra : "");
	struct salus_token_response r;
	assert_int_equal(salus_auth_token(A, NULL, FORM, body, strlen(body), &r), 0);
	salus_free(body);
	*j = json_loads(r.body, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(*j);
	int st = r.status;
	salus_token_response_release(&r);
	return st;
}

static void expect_refused(char *assertion, const char *what)
{
	json_t *j;
	int st = post(assertion, NULL, &j);
	const char *err = json_string_value(json_object_get(j, "error"));
	if (st != 400 || !err || strcmp(err, "invalid_client") || json_object_size(j) != 1)
		fail_msg("%s: %d %s", what, st, err ? err : "(no error)");
	json_decref(j);
	salus_free(assertion);
}

static char *good(const char *client, EVP_PKEY *k, const char *alg, const char *kid)
{
	char hdr[256];
	snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}", alg, kid);
	return jws(hdr, claims(client, client, TOKEN_URL, 240, fresh_jti()), k, alg, SIG_RAW);
}

/* ---- fixtures ------------------------------------------------------------------------------------ */

static int add_set(const char *id, const char *scope, const char *keys_json)
{
	char set[5000];
	snprintf(set, sizeof set, "{\"keys\":[%s]}", keys_json);
	return salus_auth_backend_add(ST, id, scope, set, strlen(set), NULL);
}

static int setup(void **state)
{
	(void)state;
	fake_kv_clear();
	assert_int_equal(add_set("svc-rsa", "system/Patient.rs system/Observation.rs", rsa_jwk), 0);
	assert_int_equal(add_set("svc-ec", "system/*.rs", ec_jwk), 0);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	salus_alloc_install();
	rsa = EVP_RSA_gen(3072);
	other_rsa = EVP_RSA_gen(2048);
	ec = EVP_EC_gen("P-384");
	if (!rsa || !ec || !other_rsa || !mkdtemp(dir))
		return -1;
	rsa_jwk_of(rsa, "r1", rsa_jwk, sizeof rsa_jwk);
	rsa_jwk_of(other_rsa, "r1", other_jwk, sizeof other_jwk);
	ec_jwk_of(ec, "e1", ec_jwk, sizeof ec_jwk);
	snprintf(keypath, sizeof keypath, "%s/token.key", dir);
	if (salus_signkey_create(keypath))
		return -1;
	return salus_auth_new(ST, keypath, ISS "/", NULL, 900, &A); /* a trailing slash: the token URL has none */
}

static int group_teardown(void **state)
{
	(void)state;
	salus_auth_free(A);
	fake_kv_clear();
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(other_rsa);
	unlink(keypath);
	rmdir(dir);
	return 0;
}

/* ---- tests --------------------------------------------------------------------------------------- */

static void test_register(void **state)
{
	(void)state;
	const char *why = NULL;
	char set[8192];
	/* the stored record holds the public members only */
	char *val = NULL;
	assert_int_equal(salus_store_kv_get(ST, "client", "svc-rsa", &val, NULL), 0);
	json_t *rec = json_loads(val, JSON_REJECT_DUPLICATES, NULL);
	salus_free(val);
	json_t *k0 = json_array_get(json_object_get(json_object_get(rec, "jwks"), "keys"), 0);
	assert_string_equal(json_string_value(json_object_get(k0, "kty")), "RSA");
	assert_null(json_object_get(k0, "use"));
	assert_string_equal(json_string_value(json_object_get(rec, "auth")), "private_key_jwt");
	assert_string_equal(json_string_value(json_object_get(rec, "scope")), "system/Patient.rs system/Observation.rs");
	json_decref(rec);

	assert_int_equal(add_set("svc-rsa", "system/Patient.rs", rsa_jwk), SALUS_EEXISTS);
	static const struct {
		const char *keys, *why;
	} bad[] = {
		{"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\",\"d\":\"AQAB\"}", "private"},
		{"{\"kty\":\"oct\",\"k\":\"c2VjcmV0c2VjcmV0c2VjcmV0\"}", "symmetric"},
		{"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}", "P-384"},
		{"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}", "2048"},
		{"{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AQAB\"}", "unsupported"},
		{"{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AQAB\",\"y\":\"AQAB\"}", "48 bytes"},
		{"\"a string\"", "JWK object"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(set, sizeof set, "{\"keys\":[%s]}", bad[i].keys);
		why = NULL;
		assert_int_equal(salus_auth_backend_add(ST, "bad", "system/Patient.rs", set, strlen(set), &why),
				 SALUS_EINVALID);
		if (!why || !strstr(why, bad[i].why))
			fail_msg("case %zu: why '%s', want '%s'", i, why ? why : "(null)", bad[i].why);
	}
	/* duplicate kid; an RSA key whose alg is another algorithm; an EC point off the curve */
	snprintf(set, sizeof set, "{\"keys\":[%s,%s]}", rsa_jwk, other_jwk);
	assert_int_equal(salus_auth_backend_add(ST, "bad", "system/Patient.rs", set, strlen(set), &why), SALUS_EINVALID);
	assert_non_null(strstr(why, "same kid"));
	char x[80];
	memset(x, 'A', 64);
	x[64] = 0;
	snprintf(set, sizeof set, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, x);
	assert_int_equal(salus_auth_backend_add(ST, "bad", "system/Patient.rs", set, strlen(set), &why), SALUS_EINVALID);
	assert_non_null(strstr(why, "not a valid public key"));
	const char *sets[] = {"", "{}", "{\"keys\":[]}", "[1]", "{\"keys\":{}}", "{\"keys\":[1],\"keys\":[2]}"};
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
		assert_int_equal(salus_auth_backend_add(ST, "bad", "system/Patient.rs", sets[i], strlen(sets[i]), &why),
				 SALUS_EINVALID);
	assert_int_equal(add_set("bad id!", "system/Patient.rs", ec_jwk), SALUS_EINVALID);
	assert_int_equal(add_set("bad", "launch", ec_jwk), SALUS_EINVALID);
	assert_int_equal(salus_store_kv_get(ST, "client", "bad", &val, NULL), SALUS_ENOTFOUND);
}

static void test_good(void **state)
{
	(void)state;
	json_t *j;
	char *a = good("svc-rsa", rsa, "RS384", "r1");
	assert_int_equal(post(a, NULL, &j), 200);
	json_decref(j);
	salus_free(a);
	a = good("svc-ec", ec, "ES384", "e1");
	assert_int_equal(post(a, "&scope=system%2FPatient.r", &j), 200);
	salus_free(a);
	assert_string_equal(json_string_value(json_object_get(j, "scope")), "system/Patient.r");
	char h[SALUS_MAX_TOKEN + 16];
	snprintf(h, sizeof h, "Bearer %s", json_string_value(json_object_get(j, "access_token")));
	json_decref(j);
	struct salus_principal p;
	assert_int_equal(salus_auth_check(A, h, &p), 0);
	assert_string_equal(p.client_id, "svc-ec");
	assert_true(salus_scope_allows(p.scopes, "Patient", SALUS_IA_READ));
	assert_false(salus_scope_allows(p.scopes, "Patient", SALUS_IA_SEARCH));
	salus_principal_release(&p);
	/* no kid: each key that fits the algorithm is tried */
	a = jws("{\"alg\":\"ES384\"}", claims("svc-ec", "svc-ec", TOKEN_URL, 60, fresh_jti()), ec, "ES384", SIG_RAW);
	assert_int_equal(post(a, NULL, &j), 200);
	json_decref(j);
	salus_free(a);
	/* the client named in the answer, for the audit */
	a = good("svc-ec", ec, "ES384", "e1");
	size_t n = strlen(a) + 256;
	char *body = salus_malloc(n);
	snprintf(body, n, "grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s", ATYPE, a);
	struct salus_token_response r;
	assert_int_equal(salus_auth_token(A, NULL, FORM, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.client_id, "svc-ec");
	salus_token_response_release(&r);
	salus_free(body);
	salus_free(a);
}

static void test_refused(void **state)
{
	(void)state;
	const char *hdr = "{\"alg\":\"RS384\",\"kid\":\"r1\",\"typ\":\"JWT\"}";
	char *p;
	expect_refused(jws(hdr, claims("svc-rsa", "svc-rsa", TOKEN_URL, 240, fresh_jti()), other_rsa, "RS384", SIG_RAW),
		       "wrong key, same kid");
	expect_refused(jws(hdr, claims("svc-rsa", "svc-rsa", ISS "/fhir", 240, fresh_jti()), rsa, "RS384", SIG_RAW), "aud");
	expect_refused(jws(hdr, claims("svc-rsa", "svc-rsa", TOKEN_URL, -100, fresh_jti()), rsa, "RS384", SIG_RAW), "expired");
	expect_refused(jws(hdr, claims("svc-rsa", "svc-rsa", TOKEN_URL, 400, fresh_jti()), rsa, "RS384", SIG_RAW),
		       "exp too far");
	expect_refused(jws(hdr, claims("svc-rsa", "svc-ec", TOKEN_URL, 60, fresh_jti()), rsa, "RS384", SIG_RAW), "sub");
	expect_refused(jws(hdr, claims("nobody", "nobody", TOKEN_URL, 60, fresh_jti()), rsa, "RS384", SIG_RAW), "unknown");
	expect_refused(jws("{\"alg\":\"RS384\",\"kid\":\"r9\"}", claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti()),
			   rsa, "RS384", SIG_RAW),
		       "unknown kid");
	expect_refused(jws("{\"alg\":\"RS256\",\"kid\":\"r1\"}", claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti()),
			   rsa, "RS256", SIG_RAW),
		       "RS256");
	expect_refused(jws("{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims("svc-ec", "svc-ec", TOKEN_URL, 60, fresh_jti()), ec,
			   "ES384", SIG_DER),
		       "DER signature");
	expect_refused(jws("{\"alg\":\"ES384\",\"kid\":\"e1\"}", claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti()),
			   ec, "ES384", SIG_RAW),
		       "ES384 for an RSA-only client");
	expect_refused(jws("{\"alg\":\"RS384\",\"kid\":\"r1\",\"jku\":\"https://x/\"}",
			   claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti()), rsa, "RS384", SIG_RAW),
		       "jku");
	expect_refused(jws("{\"alg\":\"RS384\",\"alg\":\"RS384\"}", claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti()),
			   rsa, "RS384", SIG_RAW),
		       "duplicate header member");
	expect_refused(jws(hdr, "{\"iss\":\"svc-rsa\",\"sub\":\"svc-rsa\",\"aud\":\"" TOKEN_URL "\",\"exp\":99999999999}",
			   rsa, "RS384", SIG_RAW),
		       "no jti, far exp");
	/* alg none, HS256 with the registered public key's JWK text and modulus as the secret */
	char h64[256], p64[1024], none[1400];
	const char *c = claims("svc-rsa", "svc-rsa", TOKEN_URL, 60, fresh_jti());
	b64u((const unsigned char *)"{\"alg\":\"none\"}", 14, h64, sizeof h64);
	b64u((const unsigned char *)c, strlen(c), p64, sizeof p64);
	snprintf(none, sizeof none, "%s.%s.", h64, p64);
	expect_refused(salus_strdup(none), "alg none");
	const char *hs = "{\"alg\":\"HS256\",\"kid\":\"r1\"}";
	b64u((const unsigned char *)hs, strlen(hs), h64, sizeof h64);
	char input[1400], mac64[64];
	snprintf(input, sizeof input, "%s.%s", h64, p64);
	unsigned char mac[32];
	unsigned int ml = 0;
	HMAC(EVP_sha256(), rsa_jwk, (int)strlen(rsa_jwk), (const unsigned char *)input, strlen(input), mac, &ml);
	b64u(mac, ml, mac64, sizeof mac64);
	size_t n = strlen(input) + strlen(mac64) + 2;
	p = salus_malloc(n);
	snprintf(p, n, "%s.%s", input, mac64);
	expect_refused(p, "HS256");
	/* tampered payload: a valid signature over other claims */
	char *a = good("svc-rsa", rsa, "RS384", "r1");
	char *d1 = strchr(a, '.');
	d1[1] = d1[1] == 'e' ? 'f' : 'e';
	expect_refused(a, "tampered");
	/* malformed */
	expect_refused(salus_strdup("a.b"), "two parts");
	expect_refused(salus_strdup("..."), "empty parts");
	expect_refused(salus_strdup("e30.e30.e30"), "empty objects");
	/* replay */
	a = good("svc-ec", ec, "ES384", "e1");
	json_t *j;
	assert_int_equal(post(a, NULL, &j), 200);
	json_decref(j);
	expect_refused(a, "replay");
	/* client_id in the form must name the same client */
	a = good("svc-ec", ec, "ES384", "e1");
	assert_int_equal(post(a, "&client_id=svc-rsa", &j), 400);
	json_decref(j);
	salus_free(a);
	/* a removed client */
	assert_int_equal(salus_auth_client_remove(ST, "svc-ec"), 0);
	expect_refused(good("svc-ec", ec, "ES384", "e1"), "removed");
}

static void test_methods(void **state)
{
	(void)state;
	json_t *j;
	/* a wrong assertion type, and Basic together with an assertion */
	char *a = good("svc-rsa", rsa, "RS384", "r1");
	size_t n = strlen(a) + 256;
	char *body = salus_malloc(n);
	snprintf(body, n, "grant_type=client_credentials&client_assertion_type=urn%%3Ax&client_assertion=%s", a);
	struct salus_token_response r;
	assert_int_equal(salus_auth_token(A, NULL, FORM, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "invalid_client"));
	salus_token_response_release(&r);
	snprintf(body, n, "grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s", ATYPE, a);
	assert_int_equal(salus_auth_token(A, "Basic c3ZjLXJzYTp4eHh4eHh4eHh4eHh4eHh4eHg=", FORM, body, strlen(body), &r), 0);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body, "invalid_request"));
	salus_token_response_release(&r);
	/* the backend client has no secret that works */
	assert_int_equal(salus_auth_token(A, "Basic c3ZjLXJzYTp4eHh4eHh4eHh4eHh4eHh4eHg=", FORM,
					  "grant_type=client_credentials", 29, &r),
			 0);
	assert_int_equal(r.status, 401);
	salus_token_response_release(&r);
	/* a store that fails: 500 (fail closed), never a token */
	fake_kv_fail(1);
	assert_int_equal(salus_auth_token(A, NULL, FORM, body, strlen(body), &r), SALUS_EIO);
	fake_kv_fail(0);
	salus_free(body);
	/* the same assertion still works afterwards (the failed attempt claimed nothing) */
	assert_int_equal(post(a, NULL, &j), 200);
	json_decref(j);
	salus_free(a);
}

static void test_nomem(void **state)
{
	(void)state;
	bool done = false;
	for (unsigned long i = 1; i < 400 && !done; i++) {
		char *a = good("svc-rsa", rsa, "RS384", "r1");
		size_t n = strlen(a) + 256;
		char *body = salus_malloc(n);
		snprintf(body, n, "grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s", ATYPE, a);
		struct salus_token_response r;
		salus_alloc_fail_at(i, 0);
		int rc = salus_auth_token(A, NULL, FORM, body, strlen(body), &r);
		salus_alloc_fail_at(0, 0);
		if (rc == 0) {
			done = r.status == 200;
			if (!done && r.status != 400)
				fail_msg("allocation %lu failed: status %d", i, r.status);
			salus_token_response_release(&r);
		} else if (rc != SALUS_ENOMEM && rc != SALUS_EIO && rc != SALUS_EINTERNAL) {
			fail_msg("allocation %lu failed gave %d", i, rc);
		}
		salus_free(body);
		salus_free(a);
	}
	assert_true(done);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_register, setup),
		cmocka_unit_test_setup(test_good, setup),
		cmocka_unit_test_setup(test_refused, setup),
		cmocka_unit_test_setup(test_methods, setup),
		cmocka_unit_test_setup(test_nomem, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
