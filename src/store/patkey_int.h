/*
 * patkey_int.h — per-patient record keys (crypto-shredding; docs/security.md),
 * internal to the store.
 *
 * Every patient has a random 256-bit record key, created on the first write
 * in their compartment.  Resource bodies (current and history) of the
 * compartment are sealed with XChaCha20-Poly1305 under it, with the patient
 * id and the resource identity (type, id, version) as associated data, on top
 * of the page encryption.  The keys are kept wrapped (XChaCha20-Poly1305,
 * associated data "salus-pk1" | wrapping-key id | patient id) by a
 * patient-key wrapping key (PWK, from the keyring) in a SQLite database of
 * their own, DIR/keys/patient-keys.db — NOT in the store's database, so a
 * backup of the database never carries a usable copy of a key that was
 * erased later.  Erasing a patient deletes their key row (secure_delete: the
 * freed bytes are zeroed) and wipes it from the in-memory cache; the row
 * becomes a tombstone (patient id, time) so records sealed under it answer
 * "gone" and no new key is ever made for that id.
 *
 * A sealed body starts with a NUL byte (no JSON text does):
 *   0x00 "spk" 0x01 | pid length (1 byte) | pid | nonce (24) | ciphertext | tag (16)
 *
 * Thread-safe: a mutex guards the key database; a read-write lock the cache
 * of unwrapped keys (a sodium_malloc'd, direct-mapped table of 16384 slots:
 * a hit costs no system call, a miss one indexed read and one unwrap).
 */
#ifndef SALUS_STORE_PATKEY_INT_H
#define SALUS_STORE_PATKEY_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct salus_pk; /* opaque */

/* Open (creating if missing, mode 0600) the key database at path.  wrap: the
 * PWKs (borrowed; copied into secure memory); new keys are wrapped under the
 * one with the highest id.  Holds a flock on PATH.lock while open: shared, or
 * with exclusive (erasure) the only one.  Errors: SALUS_EBUSY (the lock is
 * taken), SALUS_EINVALID (no wrapping key), SALUS_EIO, SALUS_ENOMEM. */
int salus_pk_open(const char *path, const struct salus_page_key *wrap, size_t nwrap, bool exclusive,
		  struct salus_pk **out /* OUT */);
void salus_pk_free(struct salus_pk *pk); /* wipes; NULL-safe */

/* True when the n bytes at p are a sealed body (start with the magic). */
bool salus_pk_is_sealed(const void *p, size_t n);

/* Seal n bytes of JSON for patient pid as (type, id, version).  The patient's
 * key is created on first use (durable at the next salus_pk_flush).  *out is
 * salus_malloc'd.  Errors: SALUS_EGONE (the patient was erased),
 * SALUS_EINVALID (bad pid), SALUS_EIO, SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_pk_seal(struct salus_pk *pk, const char *pid, const char *type, const char *id, long version,
		  const char *json, size_t n, unsigned char **out /* OUT */, size_t *out_n /* OUT */);

/* Make the keys created since the last call durable (one transaction and
 * fsync for all of them).  The store's writer calls it before it commits a
 * group, so a body is never durable before its key.  Errors: SALUS_EIO,
 * SALUS_EBUSY. */
int salus_pk_flush(struct salus_pk *pk);

/* Open a sealed body of (type, id, version) into a new NUL-terminated
 * salus_malloc'd string.  *pid (may be NULL) gets the owning patient id.
 * Errors: SALUS_EGONE (the patient's key was erased), SALUS_EINTEGRITY
 * (malformed, altered, moved to another identity, or no such key),
 * SALUS_EIO, SALUS_ENOMEM. */
int salus_pk_open_rec(struct salus_pk *pk, const char *type, const char *id, long version, const void *blob,
		      size_t n, char **json /* OUT */, size_t *len /* OUT */);

/* The patient id in the header of a sealed body into out (cap bytes): not
 * authenticated by itself — only once the body opened under that patient's
 * key (salus_pk_open_rec binds it in the associated data).  Returns false
 * when blob is not a well-formed sealed body or the id does not fit. */
bool salus_pk_owner(const void *blob, size_t n, char *out, size_t cap);

/* Destroy pid's key: the row becomes a tombstone, the cache slot is wiped.
 * *existed (may be NULL): a live key was destroyed now.  Errors: SALUS_EIO. */
int salus_pk_erase(struct salus_pk *pk, const char *pid, bool *existed /* OUT, may be NULL */);

/* Re-wrap every live key under the newest wrapping key (after
 * salus_keyring_pwk_add), in one transaction, then VACUUM the key database so
 * no page still holds a key wrapped under an older PWK.  *n: keys re-wrapped. */
int salus_pk_rewrap(struct salus_pk *pk, size_t *n /* OUT, may be NULL */);

/* Every erased patient id, in id order; non-zero from cb stops and is returned. */
int salus_pk_erased(struct salus_pk *pk, int (*cb)(void *ctx, const char *pid, int64_t erased_ms), void *ctx);

/* Write a consistent copy of the key database to the new file dest (after
 * making pending keys durable).  Errors: SALUS_EIO, SALUS_ENOMEM. */
int salus_pk_backup(struct salus_pk *pk, const char *dest);

#endif
