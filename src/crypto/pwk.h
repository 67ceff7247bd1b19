/*
 * pwk.h — the two derivations of patient-key wrapping keys (PWKs) that both
 * the keyring (crypto/keyring.c) and the patient key database
 * (store/patkey.c) perform, header-only so the store needs no link to the
 * keyring:
 *   wrapping key W(n) = BLAKE2b-KDF(PWK(n), subkey 1, context "salusPW1")
 *   successor PWK(n+1) = BLAKE2b-KDF(W(n), subkey n+1, context "salusPWc")
 * The successor lets a running server, which holds W(n) and never the KEK,
 * follow an online erasure or rekey to PWK(n+1); it is one-way (W(n+1) does
 * not yield W(n)), so destroying PWK(n) still shreds what it wrapped.
 */
#ifndef SALUS_CRYPTO_PWK_H
#define SALUS_CRYPTO_PWK_H
#include <sodium.h>
#include <stdint.h>

#define SALUS_PWK_LEN 32

static inline void salus_pwk_wrapping_key(const unsigned char pwk[SALUS_PWK_LEN], unsigned char out[SALUS_PWK_LEN])
{
	crypto_kdf_derive_from_key(out, SALUS_PWK_LEN, 1, "salusPW1", pwk);
}

static inline void salus_pwk_successor(const unsigned char wrapping[SALUS_PWK_LEN], uint32_t next_id,
				       unsigned char pwk[SALUS_PWK_LEN])
{
	crypto_kdf_derive_from_key(pwk, SALUS_PWK_LEN, next_id, "salusPWc", wrapping);
}

#endif
