/*
 * crypto_int.h — internals shared by the files of src/crypto/ only.
 * Not to be included from other modules.
 */
#ifndef SALUS_CRYPTO_INT_H
#define SALUS_CRYPTO_INT_H
#include <sodium.h>

#include "crypto/crypto.h"

/* The signing key, in one sodium_malloc'd block (read-only after creation). */
struct salus_signkey {
	unsigned char sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	char kid[SALUS_KID_LEN];
};

#endif
