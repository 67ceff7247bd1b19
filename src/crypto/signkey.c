/*
 * signkey.c — the Ed25519 token-signing key: key file creation (keyfile.c:
 * atomic, mode 0600, never replacing an existing key, sealed under the
 * keyring's file key when there is one), loading into sodium_malloc'd memory
 * made read-only, key id and JWK (see crypto.h).
 *
 * The file holds only the 32-byte seed; the key pair is derived on load.
 */
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"

#define KEYFILE_MAGIC "salus-ed25519-seed-v1"

int salus_signkey_from_seed(const unsigned char seed[32], struct salus_signkey **out)
{
	if (salus_crypto_init())
		return SALUS_ECRYPTO;
	struct salus_signkey *k = sodium_malloc(sizeof *k);
	if (!k)
		return SALUS_ENOMEM;
	/* sodium_malloc already mlock()s the region; a failing mlock (RLIMIT_MEMLOCK)
	 * is not fatal there, and is not fatal here either. */
	if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0) {
		sodium_free(k);
		return SALUS_ECRYPTO;
	}
	unsigned char h[SALUS_HASH_LEN];
	salus_hash256(k->pk, sizeof k->pk, h);
	salus_b64url_encode(h, sizeof h, k->kid, sizeof k->kid);
	sodium_mprotect_readonly(k);
	*out = k;
	return 0;
}

void salus_signkey_free(struct salus_signkey *k)
{
	if (!k)
		return;
	sodium_mprotect_readwrite(k);
	sodium_memzero(k, sizeof *k);
	sodium_free(k); /* also wipes, unlocks and releases the guard pages */
}

const char *salus_signkey_kid(const struct salus_signkey *k)
{
	return k->kid;
}

void salus_signkey_public(const struct salus_signkey *k, unsigned char pk[SALUS_ED25519_PK_LEN])
{
	memcpy(pk, k->pk, SALUS_ED25519_PK_LEN);
}

json_t *salus_signkey_jwk(const struct salus_signkey *k)
{
	char x[SALUS_B64URL_LEN(SALUS_ED25519_PK_LEN)];
	salus_b64url_encode(k->pk, sizeof k->pk, x, sizeof x);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x", x, "kid", k->kid,
			 "alg", "EdDSA", "use", "sig");
}

int salus_signkey_create(const char *path)
{
	unsigned char seed[32];
	char text[sizeof KEYFILE_MAGIC + SALUS_B64URL_LEN(32) + 2];
	int rc = salus_crypto_init();
	if (rc)
		return rc;
	randombytes_buf(seed, sizeof seed);
	memcpy(text, KEYFILE_MAGIC "\n", sizeof KEYFILE_MAGIC);
	salus_b64url_encode(seed, sizeof seed, text + sizeof KEYFILE_MAGIC, SALUS_B64URL_LEN(32));
	size_t len = strlen(text);
	text[len++] = '\n';
	rc = salus_keyfile_write(path, text, len, false); /* sealed when the keyring gave a file key */
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(text, sizeof text);
	return rc;
}

int salus_signkey_load(const char *path, struct salus_signkey **out)
{
	char text[128];
	unsigned char seed[32];
	size_t got = 0, seed_n = 0;
	int rc = salus_keyfile_read(path, text, sizeof text, &got, NULL);
	if (rc)
		return rc;
	/* Exactly: MAGIC "\n" 43 base64url chars, optional trailing "\n". */
	const size_t ml = sizeof KEYFILE_MAGIC - 1, bl = SALUS_B64URL_LEN(32) - 1;
	if (got < ml + 1 + bl || memcmp(text, KEYFILE_MAGIC "\n", ml + 1) != 0 ||
	    (got != ml + 1 + bl && !(got == ml + 2 + bl && text[got - 1] == '\n'))) {
		rc = SALUS_EINVALID;
		goto out_wipe;
	}
	if (salus_b64url_decode(text + ml + 1, bl, seed, sizeof seed, &seed_n) || seed_n != sizeof seed) {
		rc = SALUS_EINVALID;
		goto out_wipe;
	}
	rc = salus_signkey_from_seed(seed, out);
out_wipe:
	sodium_memzero(seed, sizeof seed);
	sodium_memzero(text, sizeof text);
	return rc;
}

int salus_signkey_sign(const struct salus_signkey *k, const void *msg, size_t n,
		       unsigned char sig[SALUS_ED25519_SIG_LEN])
{
	crypto_sign_detached(sig, NULL, msg, n, k->sk);
	return SALUS_OK;
}

bool salus_ed25519_verify(const unsigned char pk[SALUS_ED25519_PK_LEN], const void *msg, size_t n,
			  const unsigned char sig[SALUS_ED25519_SIG_LEN])
{
	if (salus_crypto_init())
		return false;
	return crypto_sign_verify_detached(sig, msg, n, pk) == 0;
}
