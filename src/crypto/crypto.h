/*
 * crypto.h — the cryptographic primitives of Salus, on libsodium.
 *
 * What is here: base64url (RFC 4648 §5, no padding), constant-time
 * comparison, random tokens, a 256-bit hash (BLAKE2b), Argon2id secret
 * hashing, the Ed25519 token-signing key (key file + secure memory) and
 * compact JWS/JWT with alg EdDSA (RFC 8037).  The keyring (KEK → per-patient
 * DEKs) and AEAD records come later in this module.
 *
 * Rules: every function returns SALUS_OK or a SALUS_E* code (core/err.h);
 * libsodium codes never escape.  Secret key material lives only in
 * sodium_malloc'd memory (guard pages, mlock'ed, read-only once loaded,
 * wiped on free); transient copies on the stack are wiped with
 * sodium_memzero.  Nothing here logs.
 *
 * Call salus_crypto_init() once before anything else (it is idempotent and
 * thread-safe; every other function also calls it where it matters).
 */
#ifndef SALUS_CRYPTO_H
#define SALUS_CRYPTO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/buf.h"

/* Initialise libsodium.  SALUS_ECRYPTO if it cannot be initialised. */
int salus_crypto_init(void);

/* ---- encoding, comparison, randomness, hashing ---------------------------------------------- */

/* Bytes needed to base64url-encode n bytes without padding, including the NUL. */
#define SALUS_B64URL_LEN(n) ((((size_t)(n)) * 4 + 2) / 3 + 1)

/* Encode n bytes as base64url without padding into out (cap bytes, NUL-terminated).
 * Errors: SALUS_ETOOLARGE when cap < SALUS_B64URL_LEN(n). */
int salus_b64url_encode(const void *bin, size_t n, char *out /* OUT */, size_t cap);
/* Append the base64url encoding of n bytes to b.  Errors: as salus_buf_add. */
int salus_b64url_append(struct salus_buf *b, const void *bin, size_t n);
/* Strict decode of exactly n characters of base64url without padding (no
 * whitespace, no '=', canonical trailing bits) into bin (cap bytes).
 * *bin_n gets the decoded length.  Errors: SALUS_EINVALID (not strict
 * base64url), SALUS_ETOOLARGE (does not fit in cap). */
int salus_b64url_decode(const char *s, size_t n, unsigned char *bin /* OUT */, size_t cap,
			size_t *bin_n /* OUT */);

/* Constant-time equality of two n-byte regions (sodium_memcmp). */
bool salus_ct_eq(const void *a, const void *b, size_t n);

/* Fill buf with n cryptographically random bytes. */
void salus_random_bytes(void *buf, size_t n);
/* A random token: nbytes (1..64) of randomness, base64url-encoded into out.
 * Errors: SALUS_EINVALID (nbytes out of range), SALUS_ETOOLARGE (cap too small). */
int salus_random_token(size_t nbytes, char *out /* OUT */, size_t cap);

#define SALUS_HASH_LEN 32
/* BLAKE2b-256 of n bytes (unkeyed; for cache keys and key ids, not for secrets at rest). */
void salus_hash256(const void *p, size_t n, unsigned char out[SALUS_HASH_LEN] /* OUT */);
/* BLAKE2b-256 of a whole file, read in pieces; *bytes (may be NULL) gets its
 * size.  Errors: SALUS_ENOTFOUND (cannot open), SALUS_EIO. */
int salus_hash256_file(const char *path, unsigned char out[SALUS_HASH_LEN] /* OUT */, uint64_t *bytes /* OUT */);

/* ---- secret key files (token-signing key, audit key, password pepper, TLS key) ------------- */

#define SALUS_FILE_KEY_LEN 32
#define SALUS_KEYFILE_MAX 256 /* bytes of text in a key file */

/* Set the process's key-file sealing key (a copy, in locked read-only
 * memory; from the keyring: salus_keyring_file_key), or clear it (NULL).
 * With it, salus_keyfile_write seals and salus_keyfile_read opens sealed
 * files.  Errors: SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_keyfile_seal_key(const unsigned char key[SALUS_FILE_KEY_LEN] /* NULL: clear */);
/* Is a sealing key set? */
bool salus_keyfile_sealing(void);
/* Write n bytes of text (1..SALUS_KEYFILE_MAX) to a new key file at path,
 * atomically, mode 0600: sealed (XChaCha20-Poly1305 under the sealing key,
 * bound to the file's name) when a sealing key is set, else as they are.
 * Never replaces an existing file unless `replace`.
 * Errors: SALUS_EINVALID, SALUS_EEXISTS, SALUS_EIO. */
int salus_keyfile_write(const char *path, const char *text, size_t n, bool replace);
/* Read a key file (a regular file, no group/other access) into text (cap
 * bytes, NUL-terminated), opening it when sealed; a plain file is returned as
 * it is.  *sealed (may be NULL) says which it was.
 * Errors: SALUS_ENOTFOUND, SALUS_EIO, SALUS_EINVALID (not a regular owner-only
 * file, too large, malformed), SALUS_ECRYPTO (sealed, and no sealing key is
 * set or it does not open the file: another keyring, a moved or altered file). */
int salus_keyfile_read(const char *path, char *text, size_t cap, size_t *n /* OUT */, bool *sealed /* OUT */);
/* The same for larger secrets, up to SALUS_KEYFILE_BIG_MAX bytes of text (the
 * TLS private key, PEM): read_big gives the text (NUL-terminated) in secure
 * memory, freed (and wiped) with salus_keyfile_text_free.  Same errors. */
#define SALUS_KEYFILE_BIG_MAX 16384
int salus_keyfile_write_big(const char *path, const char *text, size_t n, bool replace);
int salus_keyfile_read_big(const char *path, char **text /* OUT */, size_t *n /* OUT */, bool *sealed /* OUT */);
void salus_keyfile_text_free(char *text);

/* ---- Argon2id secret hashing ---------------------------------------------------------------- */

/* Length of an encoded Argon2id hash string including the NUL (crypto_pwhash_STRBYTES). */
#define SALUS_PWHASH_LEN 128

/* Hash a secret with Argon2id (v1.3), libsodium's INTERACTIVE limits:
 * opslimit 2 passes, memlimit 64 MiB, 1 lane, 16-byte random salt, 32-byte tag,
 * encoded as "$argon2id$v=19$m=65536,t=2,p=1$<salt>$<tag>" into out.
 * About 50–100 ms and 64 MiB per call, on purpose.
 * Errors: SALUS_EINVALID (n == 0), SALUS_ENOMEM (Argon2 could not get its memory). */
int salus_pwhash(const char *secret, size_t n, char out[SALUS_PWHASH_LEN] /* OUT */);
/* True when secret (n bytes) matches the encoded hash; false for a mismatch,
 * a malformed hash, or when memory for Argon2 cannot be had.  Takes the time
 * given by the hash's own parameters. */
bool salus_pwhash_verify(const char *hash, const char *secret, size_t n);
/* True when the encoded hash was made with weaker parameters than salus_pwhash uses now. */
bool salus_pwhash_needs_rehash(const char *hash);

/* ---- Ed25519 signing key -------------------------------------------------------------------- */

#define SALUS_KID_LEN 44 /* base64url(BLAKE2b-256(public key)) = 43 chars + NUL */
#define SALUS_ED25519_PK_LEN 32

struct salus_signkey; /* opaque; lives in sodium_malloc'd, read-only memory */

/* Create a new random Ed25519 key file at path: written to a temporary file
 * in the same directory with mode 0600, fsync'ed, then linked into place so
 * that the file appears complete or not at all, and an existing file is never
 * replaced.  Format (text): the line "salus-ed25519-seed-v1" then the
 * base64url 32-byte seed on the next line.
 * Errors: SALUS_EEXISTS (path exists), SALUS_EIO. */
int salus_signkey_create(const char *path);
/* Load a key file into secure memory.  The file must be a regular file not
 * readable or writable by group or others (like ssh), else SALUS_EINVALID.
 * Errors: SALUS_ENOTFOUND (no file), SALUS_EINVALID (bad permissions or
 * format), SALUS_EIO, SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_signkey_load(const char *path, struct salus_signkey **out /* OUT */);
/* Make a key from a 32-byte seed (tests, and future key rotation). */
int salus_signkey_from_seed(const unsigned char seed[32], struct salus_signkey **out /* OUT */);
/* Wipe and free.  NULL-safe. */
void salus_signkey_free(struct salus_signkey *k);
/* The key id: base64url of BLAKE2b-256 of the raw public key (borrowed, NUL-terminated). */
const char *salus_signkey_kid(const struct salus_signkey *k);
/* Copy the raw 32-byte public key. */
void salus_signkey_public(const struct salus_signkey *k, unsigned char pk[SALUS_ED25519_PK_LEN] /* OUT */);
/* The public key as a JWK (RFC 8037): {"kty":"OKP","crv":"Ed25519","x":...,
 * "kid":...,"alg":"EdDSA","use":"sig"}.  New reference; NULL on ENOMEM. */
json_t *salus_signkey_jwk(const struct salus_signkey *k);

#define SALUS_ED25519_SIG_LEN 64
/* Detached Ed25519 signature of n bytes (RFC 8032; used by the audit log's
 * signed checkpoints).  Cannot fail for a loaded key; returns SALUS_OK. */
int salus_signkey_sign(const struct salus_signkey *k, const void *msg, size_t n,
		       unsigned char sig[SALUS_ED25519_SIG_LEN] /* OUT */);
/* True when sig is a valid Ed25519 signature of msg (n bytes) by public key pk. */
bool salus_ed25519_verify(const unsigned char pk[SALUS_ED25519_PK_LEN], const void *msg, size_t n,
			  const unsigned char sig[SALUS_ED25519_SIG_LEN]);

/* ---- JWT (compact JWS, alg EdDSA) ----------------------------------------------------------- */

/* Sign claims (borrowed; must be a JSON object) as a compact JWS with the
 * protected header {"alg":"EdDSA","typ":"at+jwt","kid":<kid>} (RFC 9068 typ).
 * *out is a NUL-terminated string owned by the caller (salus_free).
 * Errors: SALUS_EINVALID (claims not an object), SALUS_ETOOLARGE (token would
 * exceed SALUS_MAX_TOKEN), SALUS_ENOMEM. */
int salus_jwt_sign(const struct salus_signkey *k, const json_t *claims, char **out /* OUT */,
		   size_t *out_n /* OUT, may be NULL */);

/* What a verified token must also satisfy. */
struct salus_jwt_expect {
	const char *iss; /* required "iss" value; NULL: not checked */
	const char *aud; /* required audience ("aud" string, or member of an "aud" array); NULL: not checked */
	int64_t now;     /* seconds since the epoch; 0: the current time */
	int leeway;      /* seconds of clock skew tolerated on exp, nbf and iat (0..300) */
};

/* Verify a compact JWS of n bytes: exactly three base64url parts, a header
 * that is a JSON object with alg "EdDSA", optional typ "JWT"/"at+jwt" and
 * optional kid equal to this key's, nothing else (no crit, jku, jwk, x5u...);
 * a valid Ed25519 signature; a payload that is a JSON object (no duplicate
 * keys, depth <= SALUS_MAX_JSON_DEPTH) with an integer exp in the future,
 * integer nbf/iat (if present) not in the future, and iss/aud per expect.
 * On success *claims is a new reference to the payload.
 * Errors: SALUS_EUNAUTHORIZED for anything malformed, forged or expired
 * (never a more specific code: callers answer 401), SALUS_ENOMEM. */
int salus_jwt_verify(const struct salus_signkey *k, const char *token, size_t n,
		     const struct salus_jwt_expect *expect, json_t **claims /* OUT */);

#endif
