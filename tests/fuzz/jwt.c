/*
 * jwt.c — libFuzzer target fuzz_jwt: strict JWT (compact JWS, EdDSA)
 * verification and base64url decoding on arbitrary input.  Nothing may crash
 * or leak; the key's seed is fixed, so the seed corpus can hold one validly
 * signed token (corpus/jwt/valid_sig) whose mutations exercise every check
 * after the signature only when the signed bytes are left intact.
 * Seeds: tests/fuzz/corpus/jwt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct salus_signkey *key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!key) {
		unsigned char seed[32] = {1, 2, 3, 4, 5, 6, 7, 8};
		salus_alloc_install();
		if (salus_crypto_init() || salus_signkey_from_seed(seed, &key))
			abort();
	}
	const char *s = (const char *)data;
	struct salus_jwt_expect ex = {"https://salus.test", "https://salus.test/fhir", 1800000000, 30};
	json_t *claims = NULL;
	int rc = salus_jwt_verify(key, s, size, &ex, &claims);
	if (rc == 0) {
		if (!json_is_object(claims) || !json_is_integer(json_object_get(claims, "exp")))
			abort();
		json_decref(claims);
	} else if (rc != SALUS_EUNAUTHORIZED && rc != SALUS_ENOMEM) {
		abort();
	}
	unsigned char bin[SALUS_MAX_TOKEN];
	size_t n;
	if (size <= SALUS_MAX_TOKEN && salus_b64url_decode(s, size, bin, sizeof bin, &n) == 0) {
		/* strict decoding is canonical: re-encoding gives the input back */
		char out[SALUS_B64URL_LEN(SALUS_MAX_TOKEN)];
		if (salus_b64url_encode(bin, n, out, sizeof out) || strlen(out) != size || memcmp(out, s, size))
			abort();
	}
	return 0;
}
