/* test_crypto.c — base64url vectors, Argon2id, Ed25519 key file, JWK, EdDSA JWT sign/verify and rejection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "crypto/crypto.h"

/* RFC 8037 appendix A.1 key. */
static const char *const RFC8037_D = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char *const RFC8037_X = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

static struct salus_signkey *rfc_key(void)
{
	unsigned char seed[32];
	size_t n = 0;
	assert_int_equal(salus_b64url_decode(RFC8037_D, strlen(RFC8037_D), seed, sizeof seed, &n), 0);
	assert_int_equal(n, 32);
	struct salus_signkey *k = NULL;
	assert_int_equal(salus_signkey_from_seed(seed, &k), 0);
	return k;
}

static struct salus_signkey *other_key(void)
{
	unsigned char seed[32];
	memset(seed, 7, sizeof seed);
	struct salus_signkey *k = NULL;
	assert_int_equal(salus_signkey_from_seed(seed, &k), 0);
	return k;
}

static void test_b64url_vectors(void **state)
{
	(void)state;
	static const char *const vec[][2] = {{"", ""},          {"f", "Zg"},         {"fo", "Zm8"},
					     {"foo", "Zm9v"},   {"foob", "Zm9vYg"},  {"fooba", "Zm9vYmE"},
					     {"foobar", "Zm9vYmFy"}};
	char out[32];
	unsigned char bin[32];
	size_t n;
	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
		assert_int_equal(salus_b64url_encode(vec[i][0], strlen(vec[i][0]), out, sizeof out), 0);
		assert_string_equal(out, vec[i][1]);
		assert_int_equal(salus_b64url_decode(vec[i][1], strlen(vec[i][1]), bin, sizeof bin, &n), 0);
		assert_int_equal(n, strlen(vec[i][0]));
		assert_memory_equal(bin, vec[i][0], n);
	}
	const unsigned char url[] = {0xfb, 0xff};
	assert_int_equal(salus_b64url_encode(url, 2, out, sizeof out), 0);
	assert_string_equal(out, "-_8");
	/* strictness */
	assert_int_equal(salus_b64url_decode("Zg==", 4, bin, sizeof bin, &n), SALUS_EINVALID);
	assert_int_equal(salus_b64url_decode("Z", 1, bin, sizeof bin, &n), SALUS_EINVALID);
	assert_int_equal(salus_b64url_decode("Zh", 2, bin, sizeof bin, &n), SALUS_EINVALID); /* non-canonical */
	assert_int_equal(salus_b64url_decode("Zm9v Yg", 7, bin, sizeof bin, &n), SALUS_EINVALID);
	assert_int_equal(salus_b64url_decode("+/8", 3, bin, sizeof bin, &n), SALUS_EINVALID);
	assert_int_equal(salus_b64url_decode("Zm9\xff", 4, bin, sizeof bin, &n), SALUS_EINVALID); /* libsodium 1.0.18 takes it as '_' */
	assert_int_equal(salus_b64url_decode("Zm9\xf1", 4, bin, sizeof bin, &n), SALUS_EINVALID);
	assert_int_equal(salus_b64url_decode("Zm9vYmFy", 8, bin, 5, &n), SALUS_ETOOLARGE);
	/* short output buffers are an error, never an abort */
	assert_int_equal(salus_b64url_encode("foo", 3, out, 4), SALUS_ETOOLARGE);
	assert_int_equal(SALUS_B64URL_LEN(32), 44);

	struct salus_buf b;
	unsigned char big[1000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (unsigned char)(i * 7);
	char ref[SALUS_B64URL_LEN(1000)];
	salus_buf_init(&b, 4096);
	assert_int_equal(salus_b64url_append(&b, big, sizeof big), 0);
	assert_int_equal(salus_b64url_encode(big, sizeof big, ref, sizeof ref), 0);
	assert_string_equal(b.p, ref);
	salus_buf_release(&b);
}

static void test_random_ct(void **state)
{
	(void)state;
	char a[64], b[64];
	assert_int_equal(salus_random_token(32, a, sizeof a), 0);
	assert_int_equal(salus_random_token(32, b, sizeof b), 0);
	assert_int_equal(strlen(a), 43);
	assert_string_not_equal(a, b);
	assert_int_equal(salus_random_token(0, a, sizeof a), SALUS_EINVALID);
	assert_int_equal(salus_random_token(32, a, 10), SALUS_ETOOLARGE);
	assert_true(salus_ct_eq("abc", "abc", 3));
	assert_false(salus_ct_eq("abc", "abd", 3));
}

static void test_pwhash(void **state)
{
	(void)state;
	char h[SALUS_PWHASH_LEN];
	const char *s = "correct horse battery staple";
	assert_int_equal(salus_pwhash(s, strlen(s), h), 0);
	assert_true(!strncmp(h, "$argon2id$v=19$m=65536,t=2,p=1$", 31));
	assert_true(salus_pwhash_verify(h, s, strlen(s)));
	assert_false(salus_pwhash_verify(h, s, strlen(s) - 1));
	assert_false(salus_pwhash_verify(h, "Correct horse battery staple", strlen(s)));
	assert_false(salus_pwhash_needs_rehash(h));
	assert_false(salus_pwhash_verify("$argon2i$v=19$m=32768,t=4,p=1$c2FsdHNhbHRzYWx0$aGFzaA", s, strlen(s)));
	assert_false(salus_pwhash_verify("garbage", s, strlen(s)));
	assert_false(salus_pwhash_verify(NULL, s, strlen(s)));
	assert_int_equal(salus_pwhash("", 0, h), SALUS_EINVALID);
	char h2[SALUS_PWHASH_LEN];
	assert_int_equal(salus_pwhash(s, strlen(s), h2), 0);
	assert_string_not_equal(h, h2); /* salted */
}

static void test_jwk_rfc8037(void **state)
{
	(void)state;
	struct salus_signkey *k = rfc_key();
	json_t *jwk = salus_signkey_jwk(k);
	assert_non_null(jwk);
	assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "OKP");
	assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
	assert_string_equal(json_string_value(json_object_get(jwk, "x")), RFC8037_X);
	assert_string_equal(json_string_value(json_object_get(jwk, "kid")), salus_signkey_kid(k));
	assert_null(json_object_get(jwk, "d"));
	assert_int_equal(strlen(salus_signkey_kid(k)), 43);
	json_decref(jwk);
	salus_signkey_free(k);
}

static void test_keyfile(void **state)
{
	(void)state;
	char dir[] = "/tmp/salus-crypto-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char path[128], bad[128];
	snprintf(path, sizeof path, "%s/token.key", dir);
	snprintf(bad, sizeof bad, "%s/bad.key", dir);
	struct salus_signkey *k = NULL, *k2 = NULL;
	assert_int_equal(salus_signkey_load(path, &k), SALUS_ENOTFOUND);
	assert_int_equal(salus_signkey_create(path), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(salus_signkey_create(path), SALUS_EEXISTS);
	assert_int_equal(salus_signkey_load(path, &k), 0);
	assert_int_equal(salus_signkey_load(path, &k2), 0);
	assert_string_equal(salus_signkey_kid(k), salus_signkey_kid(k2));
	salus_signkey_free(k2);
	k2 = NULL;
	/* group/other-readable keys are refused */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(salus_signkey_load(path, &k2), SALUS_EINVALID);
	/* malformed key files */
	static const char *const junk[] = {"", "salus-ed25519-seed-v1\n", "salus-ed25519-seed-v1\nshort\n",
					   "other-magic\nnWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\n",
					   "salus-ed25519-seed-v1\nnWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\n\n"};
	for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
		FILE *f = fopen(bad, "w");
		assert_non_null(f);
		fputs(junk[i], f);
		fclose(f);
		chmod(bad, 0600);
		assert_int_equal(salus_signkey_load(bad, &k2), SALUS_EINVALID);
	}
	FILE *f = fopen(bad, "w");
	fputs("salus-ed25519-seed-v1\nnWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A\n", f);
	fclose(f);
	assert_int_equal(salus_signkey_load(bad, &k2), 0);
	json_t *jwk = salus_signkey_jwk(k2);
	assert_string_equal(json_string_value(json_object_get(jwk, "x")), RFC8037_X);
	json_decref(jwk);
	salus_signkey_free(k2);
	salus_signkey_free(k);
	unlink(path);
	unlink(bad);
	rmdir(dir);
}

static char *sign(struct salus_signkey *k, json_t *claims)
{
	char *t = NULL;
	assert_int_equal(salus_jwt_sign(k, claims, &t, NULL), 0);
	json_decref(claims);
	return t;
}

static json_t *std_claims(int64_t now, int64_t exp_off)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s}", "iss", "https://salus.test", "sub", "app",
			 "aud", "https://salus.test/fhir", "iat", (json_int_t)now, "exp", (json_int_t)(now + exp_off),
			 "jti", "j1", "scope", "system/*.rs");
}

static const struct salus_jwt_expect *expect(int64_t now)
{
	static struct salus_jwt_expect e;
	e = (struct salus_jwt_expect){"https://salus.test", "https://salus.test/fhir", now, 30};
	return &e;
}

static int verify(struct salus_signkey *k, const char *t, int64_t now)
{
	json_t *c = NULL;
	int rc = salus_jwt_verify(k, t, strlen(t), expect(now), &c);
	if (!rc) {
		assert_non_null(c);
		json_decref(c);
	}
	return rc;
}

/* Build "b64(header).b64(payload).sig" by hand. */
static char *forge(const char *header, const char *payload, const char *sig)
{
	struct salus_buf b;
	salus_buf_init(&b, 16384);
	assert_int_equal(salus_b64url_append(&b, header, strlen(header)), 0);
	salus_buf_addc(&b, '.');
	assert_int_equal(salus_b64url_append(&b, payload, strlen(payload)), 0);
	salus_buf_addc(&b, '.');
	salus_buf_adds(&b, sig);
	return salus_buf_detach(&b, NULL);
}

static void test_jwt_roundtrip(void **state)
{
	(void)state;
	struct salus_signkey *k = rfc_key();
	int64_t now = 1800000000;
	char *t = sign(k, std_claims(now, 900));
	json_t *c = NULL;
	assert_int_equal(salus_jwt_verify(k, t, strlen(t), expect(now), &c), 0);
	assert_string_equal(json_string_value(json_object_get(c, "sub")), "app");
	json_decref(c);
	/* header is what we promise */
	const char *dot = strchr(t, '.');
	unsigned char hdr[256];
	size_t hn;
	assert_int_equal(salus_b64url_decode(t, (size_t)(dot - t), hdr, sizeof hdr, &hn), 0);
	json_t *h = json_loadb((const char *)hdr, hn, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "EdDSA");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "at+jwt");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), salus_signkey_kid(k));
	json_decref(h);
	/* no expectation: only signature and times */
	assert_int_equal(salus_jwt_verify(k, t, strlen(t), NULL, &c), SALUS_EUNAUTHORIZED); /* now = real time: expired */
	salus_free(t);
	t = sign(k, json_pack("{s:I}", "exp", (json_int_t)time(NULL) + 60));
	assert_int_equal(salus_jwt_verify(k, t, strlen(t), NULL, &c), 0);
	json_decref(c);
	salus_free(t);
	json_t *arr = json_array();
	assert_int_equal(salus_jwt_sign(k, arr, &t, NULL), SALUS_EINVALID);
	json_decref(arr);
	salus_signkey_free(k);
}

static void test_jwt_rejects(void **state)
{
	(void)state;
	struct salus_signkey *k = rfc_key(), *k2 = other_key();
	int64_t now = 1800000000;
	char *t = sign(k, std_claims(now, 900));
	size_t n = strlen(t);
	char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');

	/* another key's signature */
	assert_int_equal(verify(k2, t, now), SALUS_EUNAUTHORIZED);
	/* tampered signature, payload, header: flip one character in each part */
	size_t pos[] = {n - 5, (size_t)(d1 - t) + 3, 2, (size_t)(d2 - t) + 1};
	for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
		char *c = salus_strdup(t);
		c[pos[i]] = c[pos[i]] == 'A' ? 'B' : 'A';
		assert_int_equal(verify(k, c, now), SALUS_EUNAUTHORIZED);
		salus_free(c);
	}
	/* expired, beyond the leeway; inside the leeway still fine */
	assert_int_equal(verify(k, t, now + 900 + 30), SALUS_EUNAUTHORIZED);
	assert_int_equal(verify(k, t, now + 900 + 29), 0);
	/* issued in the future */
	assert_int_equal(verify(k, t, now - 31), SALUS_EUNAUTHORIZED);
	salus_free(t);
	/* wrong aud, wrong iss, aud array */
	t = sign(k, json_pack("{s:s, s:s, s:I}", "iss", "https://salus.test", "aud", "https://evil.test/fhir", "exp",
			      (json_int_t)now + 60));
	assert_int_equal(verify(k, t, now), SALUS_EUNAUTHORIZED);
	salus_free(t);
	t = sign(k, json_pack("{s:s, s:s, s:I}", "iss", "https://evil.test", "aud", "https://salus.test/fhir", "exp",
			      (json_int_t)now + 60));
	assert_int_equal(verify(k, t, now), SALUS_EUNAUTHORIZED);
	salus_free(t);
	t = sign(k, json_pack("{s:s, s:[ss], s:I}", "iss", "https://salus.test", "aud", "x",
			      "https://salus.test/fhir", "exp", (json_int_t)now + 60));
	assert_int_equal(verify(k, t, now), 0);
	salus_free(t);
	/* missing or non-integer exp, nbf in the future */
	t = sign(k, json_pack("{s:s, s:s}", "iss", "https://salus.test", "aud", "https://salus.test/fhir"));
	assert_int_equal(verify(k, t, now), SALUS_EUNAUTHORIZED);
	salus_free(t);
	t = sign(k, json_pack("{s:s, s:s, s:f}", "iss", "https://salus.test", "aud", "https://salus.test/fhir", "exp",
			      (double)now + 60));
	assert_int_equal(verify(k, t, now), SALUS_EUNAUTHORIZED);
	salus_free(t);
	t = sign(k, json_pack("{s:s, s:s, s:I, s:I}", "iss", "https://salus.test", "aud", "https://salus.test/fhir",
			      "exp", (json_int_t)now + 600, "nbf", (json_int_t)now + 300));
	assert_int_equal(verify(k, t, now), SALUS_EUNAUTHORIZED);
	salus_free(t);

	/* alg=none, alg=HS256, unknown header member, kid of another key, with a real signature part */
	const char *payload = "{\"iss\":\"https://salus.test\",\"aud\":\"https://salus.test/fhir\",\"exp\":1800000600}";
	char sig[100];
	memset(sig, 'A', 86);
	sig[86] = 0;
	static const char *const headers[] = {
		"{\"alg\":\"none\"}", "{\"alg\":\"HS256\"}", "{\"alg\":\"EdDSA\",\"crit\":[\"exp\"]}",
		"{\"alg\":\"EdDSA\",\"kid\":\"nope\"}", "{\"alg\":\"EdDSA\",\"alg\":\"EdDSA\"}", "[\"EdDSA\"]",
		"{\"typ\":\"JWT\"}", "{\"alg\":\"EdDSA\",\"typ\":\"JOSE+JSON\"}"};
	for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
		char *f = forge(headers[i], payload, sig);
		assert_int_equal(verify(k, f, now), SALUS_EUNAUTHORIZED);
		salus_free(f);
		f = forge(headers[i], payload, "");
		assert_int_equal(verify(k, f, now), SALUS_EUNAUTHORIZED);
		salus_free(f);
	}
	/* structure: wrong number of parts, empty parts, oversize */
	static const char *const bad[] = {"", ".", "..", "a.b", "a.b.c.d", "a..c", ".b.c", "eyJ.eyJ.", "a b.c.d"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(verify(k, bad[i], now), SALUS_EUNAUTHORIZED);
	char *huge = salus_malloc(SALUS_MAX_TOKEN + 2);
	memset(huge, 'A', SALUS_MAX_TOKEN + 1);
	huge[10] = huge[20] = '.';
	huge[SALUS_MAX_TOKEN + 1] = 0;
	assert_int_equal(verify(k, huge, now), SALUS_EUNAUTHORIZED);
	salus_free(huge);
	salus_signkey_free(k);
	salus_signkey_free(k2);
}

static void test_jwt_nomem(void **state)
{
	(void)state;
	struct salus_signkey *k = rfc_key();
	json_t *claims = std_claims(1800000000, 900);
	for (unsigned long i = 1; i < 200; i++) {
		char *t = NULL;
		salus_alloc_fail_at(i, 0);
		int rc = salus_jwt_sign(k, claims, &t, NULL);
		salus_alloc_fail_at(0, 0);
		if (!rc) {
			json_t *c = NULL;
			salus_alloc_fail_at(i, 0);
			rc = salus_jwt_verify(k, t, strlen(t), expect(1800000000), &c);
			salus_alloc_fail_at(0, 0);
			assert_true(rc == 0 || rc == SALUS_EUNAUTHORIZED);
			json_decref(c);
			salus_free(t);
		} else {
			assert_int_equal(rc, SALUS_ENOMEM);
		}
	}
	json_decref(claims);
	salus_signkey_free(k);
}

int main(void)
{
	salus_alloc_install();
	assert_int_equal(salus_crypto_init(), 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64url_vectors), cmocka_unit_test(test_random_ct),
		cmocka_unit_test(test_pwhash),         cmocka_unit_test(test_jwk_rfc8037),
		cmocka_unit_test(test_keyfile),        cmocka_unit_test(test_jwt_roundtrip),
		cmocka_unit_test(test_jwt_rejects),    cmocka_unit_test(test_jwt_nomem),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
