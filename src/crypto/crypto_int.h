/*
 * crypto_int.h — internals shared by the files of src/crypto/ only.
 * Not to be included from other modules.
 */
#ifndef SALUS_CRYPTO_INT_H
#define SALUS_CRYPTO_INT_H
#include <sodium.h>
#include <stdbool.h>

#include "crypto/crypto.h"

/* The signing key, in one sodium_malloc'd block (read-only after creation). */
struct salus_signkey {
	unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	char kid[SALUS_KID_LEN];
};

/* Write n bytes to path atomically (a 0600 temporary file, fsync, then link
 * (must_not_exist: never replaces, SALUS_EEXISTS) or rename, and an fsync of
 * the directory): the file is complete or absent.  keyfile.c; used by the
 * keyring and the key files.  Errors: SALUS_EINVALID, SALUS_EEXISTS, SALUS_EIO. */
int salus_crypto_write_atomic(const char *path, const void *p, size_t n, bool must_not_exist);

#endif
