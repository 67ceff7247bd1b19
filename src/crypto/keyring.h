/*
 * keyring.h — the key hierarchy of encryption at rest (docs/security.md).
 *
 *   KEK (key-encryption key, 256 bits, versioned) — never on disk in clear;
 *       from a key file (DIR/keys/kek.key, mode 0600: the default), from a
 *       passphrase (Argon2id, salt and cost in the keyring), or from an
 *       external command (a KMS/HSM/Vault client printing the KEK).
 *    └─ DEKs (data keys, 256 bits, versioned by id) — stored only wrapped by
 *       the KEK (XChaCha20-Poly1305, associated data = "salus-dek", id, KEK
 *       version) in DIR/keys/keyring.json.  Each DEK yields the page key of
 *       the encrypting store VFS (BLAKE2b KDF, context "salusPG1"); the page
 *       key id is the DEK id.
 *
 *    └─ PWKs (patient-key wrapping keys, 256 bits, versioned by id) — also
 *       wrapped by the KEK (associated data "salus-pwk", id, KEK version), in
 *       the same file.  They wrap the per-patient record keys kept in their
 *       own key database (store.h, crypto-shredding); `salus patient erase`
 *       adds a new PWK, re-wraps every remaining patient key under it and
 *       destroys the old PWKs, then rotates the KEK, so no copy of the key
 *       files made before the erasure can yield the erased patient's key.
 *
 * The keyring file is replaced atomically (write, fsync, rename, fsync dir)
 * and carries a MAC under a KEK-derived key, so its plaintext fields (active
 * DEK, rekey progress) cannot be altered unnoticed.  Secrets live in one
 * sodium_malloc'd block (guard pages, mlock'ed, read-only except while the
 * keyring changes), wiped on free.  Nothing here logs key material.
 */
#ifndef SALUS_CRYPTO_KEYRING_H
#define SALUS_CRYPTO_KEYRING_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "crypto/crypto.h"

#define SALUS_DEK_LEN 32
#define SALUS_KEYRING_MAX_DEKS 64
#define SALUS_KEYRING_MAX_PWKS 4

enum salus_kek_source {
	SALUS_KEK_FILE,       /* kek_file holds "salus-kek-1" then "VERSION BASE64URL" lines */
	SALUS_KEK_PASSPHRASE, /* Argon2id(passphrase, salt from the keyring) */
	SALUS_KEK_COMMAND,    /* `sh -c COMMAND` with SALUS_KEK_VERSION=N prints the KEK (base64url or hex) */
};

/* Where the KEK comes from.  Strings are borrowed for each call. */
struct salus_kek_config {
	enum salus_kek_source source;
	const char *kek_file;   /* FILE: path of the key file */
	const char *command;    /* COMMAND: shell command */
	const char *passphrase; /* PASSPHRASE: NULL: the environment variable SALUS_KEK_PASSPHRASE */
};

/* Parse "file" / "passphrase" / "command"; SALUS_EINVALID otherwise. */
int salus_kek_source_parse(const char *s, enum salus_kek_source *out /* OUT */);
const char *salus_kek_source_name(enum salus_kek_source s);

struct salus_keyring; /* opaque */

/* Create a keyring at `path` (must not exist) with KEK version 1 and DEK 1.
 * With SALUS_KEK_FILE the key file is created too (must not exist).
 * *why (may be NULL) gets a PHI- and key-free reason on failure.
 * Errors: SALUS_EEXISTS, SALUS_EINVALID (bad config, no passphrase, command
 * failed or printed no key), SALUS_EIO, SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_keyring_create(const char *path, const struct salus_kek_config *kc, const char **why /* OUT */);

/* Load and unlock: get the KEK, unwrap every DEK, check the MAC.  The KEK is
 * kept (in secure memory) only for rotate/rekey calls on this object; a
 * server frees the keyring once the store has its page keys.
 * Errors: SALUS_ENOTFOUND (no keyring), SALUS_ECRYPTO ("wrong key or
 * passphrase", or the keyring was modified), SALUS_EINVALID (bad file or
 * config), SALUS_EIO, SALUS_ENOMEM. */
int salus_keyring_open(const char *path, const struct salus_kek_config *kc, struct salus_keyring **out /* OUT */,
		       const char **why /* OUT */);
/* Wipe and free.  NULL-safe. */
void salus_keyring_free(struct salus_keyring *kr);

/* Number of usable DEKs, and the id new data is written under. */
size_t salus_keyring_count(const struct salus_keyring *kr);
uint32_t salus_keyring_active(const struct salus_keyring *kr);
/* The i-th (0-based) DEK's id and page key (derived; the caller wipes it). */
int salus_keyring_page_key(const struct salus_keyring *kr, size_t i, uint32_t *id /* OUT */,
			   unsigned char key[SALUS_DEK_LEN] /* OUT */);

/* New KEK version: a new random key (FILE: appended to the key file, old
 * version removed after the keyring is replaced), a new salt (PASSPHRASE;
 * SALUS_KEK_NEW_PASSPHRASE changes the passphrase too) or the command asked
 * for the next version (COMMAND); every DEK re-wrapped; the keyring replaced
 * atomically.  Data is not touched: online-safe.
 * Errors: as salus_keyring_create. */
int salus_keyring_rotate_kek(struct salus_keyring *kr, const struct salus_kek_config *kc, const char **why /* OUT */);

/* The pending DEK: made in advance by `salus serve` at start-up (which has
 * the KEK then, and not later), held by the server as its next page key, so
 * that an online rekey can move to a key the running server already has.
 * salus_keyring_pending: its id, or 0.  salus_keyring_dek_prepare: make one
 * (random, state "pending", saved) unless there is one; *id gets its id.
 * Errors: SALUS_ETOOLARGE, SALUS_EIO, SALUS_ENOMEM. */
uint32_t salus_keyring_pending(const struct salus_keyring *kr);
int salus_keyring_dek_prepare(struct salus_keyring *kr, uint32_t *id /* OUT */);

/* Start (or continue) a rekey of the data: unless one is in progress, pick
 * the new DEK — online (a server is running): the pending DEK, which it
 * holds; offline: a new random DEK (a pending one is dropped) — make it the
 * active one and record {from, to, next_page = 1}.  *next_page gets the page
 * to resume from.  Errors: SALUS_ENOTFOUND (online without a pending DEK),
 * SALUS_ETOOLARGE (too many DEKs), SALUS_EIO, SALUS_ENOMEM. */
int salus_keyring_rekey_begin(struct salus_keyring *kr, bool online, uint32_t *next_page /* OUT */);
/* Record progress (pages before next_page are done); atomic replace. */
int salus_keyring_rekey_progress(struct salus_keyring *kr, uint32_t next_page);
/* Finish: the old DEK becomes "retired" (kept to read older backups), the
 * progress record goes away. */
int salus_keyring_rekey_finish(struct salus_keyring *kr);

/* Patient-key wrapping keys (PWKs), oldest first; the last is the one new
 * patient keys are wrapped under.  salus_keyring_pwk gives the i-th one's id
 * and its derived wrapping key (BLAKE2b KDF, context "salusPW1"; the caller
 * wipes it).  Errors: SALUS_EINVALID (i out of range). */
size_t salus_keyring_pwk_count(const struct salus_keyring *kr);
int salus_keyring_pwk(const struct salus_keyring *kr, size_t i, uint32_t *id /* OUT */,
		      unsigned char key[SALUS_DEK_LEN] /* OUT */);
/* Add a new random PWK (id = last + 1), wrapped by the current KEK; the
 * keyring is replaced atomically.  Errors: SALUS_ETOOLARGE (already
 * SALUS_KEYRING_MAX_PWKS), SALUS_ENOMEM, SALUS_EIO. */
int salus_keyring_pwk_add(struct salus_keyring *kr);
/* Add the successor of the newest PWK instead of a random one (crypto/pwk.h:
 * PWK(n+1) = KDF(W(n), n+1)), so a running server, which holds W(n) but
 * never the KEK, can derive the key an online erasure or rekey moves the
 * patient keys to.  One-way: destroying PWK(n) still makes keys wrapped
 * under it (in older copies of the key database) unrecoverable.  Errors: as
 * salus_keyring_pwk_add; SALUS_EINVALID (no PWK yet). */
int salus_keyring_pwk_add_successor(struct salus_keyring *kr);
/* Destroy every PWK but the newest (from the file and from memory).  Call
 * only once no patient key is wrapped under them any more. */
int salus_keyring_pwk_destroy_old(struct salus_keyring *kr);

/* The keyring's public state without unlocking it (for `salus key status`):
 * a new reference to the parsed file minus wrapped keys and MAC.
 * Errors: SALUS_ENOTFOUND, SALUS_EINVALID, SALUS_ENOMEM. */
/* The key that seals the key files (crypto.h, salus_keyfile_*), derived from
 * the keyring's file-sealing key, which is wrapped by the KEK like the data
 * keys (and re-wrapped by salus_keyring_rotate_kek).  create: a keyring
 * without one gets one (saved).  Only `salus init` and `salus key seal-files`
 * create it, so two processes never race to make different ones.
 * Errors: SALUS_ENOTFOUND (none and !create), SALUS_ENOMEM, SALUS_EIO. */
int salus_keyring_file_key(struct salus_keyring *kr, bool create, unsigned char key[SALUS_FILE_KEY_LEN] /* OUT */);
int salus_keyring_status(const char *path, json_t **out /* OUT */);

#endif
