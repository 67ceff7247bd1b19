/*
 * crypto.c — libsodium initialisation, base64url, constant-time comparison,
 * randomness, BLAKE2b and Argon2id secret hashing (see crypto.h).
 */
#include "crypto/crypto.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"

int salus_crypto_init(void)
{
	/* sodium_init is thread-safe and returns 1 when already initialised. */
	return sodium_init() < 0 ? SALUS_ECRYPTO : 0;
}

int salus_b64url_encode(const void *bin, size_t n, char *out, size_t cap)
{
	/* sodium_bin2base64 aborts on a short buffer: check first. */
	if (n > (SIZE_MAX - 3) / 4 || cap < SALUS_B64URL_LEN(n))
		return SALUS_ETOOLARGE;
	sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	return 0;
}

int salus_b64url_append(struct salus_buf *b, const void *bin, size_t n)
{
	char tmp[256];
	const unsigned char *p = bin;
	/* Whole 3-byte groups per chunk keep the chunks' encodings concatenable. */
	const size_t chunk = 189; /* 63 groups -> 252 chars */
	while (n) {
		size_t k = n < chunk ? n : chunk;
		int rc = salus_b64url_encode(p, k, tmp, sizeof tmp);
		if (!rc)
			rc = salus_buf_adds(b, tmp);
		if (rc)
			return rc;
		p += k;
		n -= k;
	}
	return 0;
}

int salus_b64url_decode(const char *s, size_t n, unsigned char *bin, size_t cap, size_t *bin_n)
{
	const char *end = NULL;
	size_t len = 0;
	if (n % 4 == 1)
		return SALUS_EINVALID;
	/* libsodium 1.0.18's decoder maps some bytes >= 0x80 to '_' (found by
	 * fuzz_jwt): check the alphabet ourselves so that decoding is canonical. */
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return SALUS_EINVALID;
	}
	if ((n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0) > cap)
		return SALUS_ETOOLARGE;
	if (n == 0) {
		*bin_n = 0;
		return 0;
	}
	if (sodium_base642bin(bin, cap, s, n, NULL, &len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
		return SALUS_EINVALID;
	if (end != s + n)
		return SALUS_EINVALID;
	*bin_n = len;
	return 0;
}

bool salus_ct_eq(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void salus_random_bytes(void *buf, size_t n)
{
	randombytes_buf(buf, n);
}

int salus_random_token(size_t nbytes, char *out, size_t cap)
{
	unsigned char r[64];
	if (nbytes < 1 || nbytes > sizeof r)
		return SALUS_EINVALID;
	randombytes_buf(r, nbytes);
	int rc = salus_b64url_encode(r, nbytes, out, cap);
	sodium_memzero(r, sizeof r);
	return rc;
}

void salus_hash256(const void *p, size_t n, unsigned char out[SALUS_HASH_LEN])
{
	crypto_generichash(out, SALUS_HASH_LEN, p, n, NULL, 0);
}

int salus_hash256_file(const char *path, unsigned char out[SALUS_HASH_LEN], uint64_t *bytes)
{
	crypto_generichash_state st;
	unsigned char buf[65536];
	uint64_t total = 0;
	size_t n;
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return SALUS_ENOTFOUND;
	crypto_generichash_init(&st, NULL, 0, SALUS_HASH_LEN);
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
		crypto_generichash_update(&st, buf, n);
		total += n;
	}
	int bad = ferror(fp);
	fclose(fp);
	if (bad)
		return SALUS_EIO;
	crypto_generichash_final(&st, out, SALUS_HASH_LEN);
	if (bytes)
		*bytes = total;
	return SALUS_OK;
}

_Static_assert(SALUS_PWHASH_LEN == crypto_pwhash_STRBYTES, "SALUS_PWHASH_LEN");

int salus_pwhash(const char *secret, size_t n, char out[SALUS_PWHASH_LEN])
{
	if (n == 0)
		return SALUS_EINVALID;
	if (salus_crypto_init())
		return SALUS_ECRYPTO;
	if (crypto_pwhash_str_alg(out, secret, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
				  crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return SALUS_ENOMEM;
	return 0;
}

bool salus_pwhash_verify(const char *hash, const char *secret, size_t n)
{
	if (!hash || !secret || salus_crypto_init())
		return false;
	/* Only Argon2id hashes are accepted (never argon2i or anything older). */
	if (strncmp(hash, "$argon2id$", 10) != 0 || strnlen(hash, SALUS_PWHASH_LEN) >= SALUS_PWHASH_LEN)
		return false;
	return crypto_pwhash_str_verify(hash, secret, n) == 0;
}

bool salus_pwhash_needs_rehash(const char *hash)
{
	return crypto_pwhash_str_needs_rehash(hash, crypto_pwhash_OPSLIMIT_INTERACTIVE,
					      crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0;
}
