/*
 * store_open.h — how every salus command opens the store of a data
 * directory: unlock the keyring ([keys] in salus.ini), derive the page keys,
 * open the encrypted store, wipe the keys (docs/security.md).  The salus
 * binary never opens a store without encryption.
 */
#ifndef SALUS_CLI_STORE_OPEN_H
#define SALUS_CLI_STORE_OPEN_H
#include "core/config.h"
#include "crypto/keyring.h"
#include "store/store.h"

/* Paths and source of the KEK from cfg; kek_file and ring are filled with
 * resolved paths and kc points into them.  SALUS_EINVALID on a bad setting. */
int salus_cli_kek_config(const struct salus_config *cfg, struct salus_kek_config *kc /* OUT */,
			 char kek_file[SALUS_PATH_MAX] /* OUT */, char ring[SALUS_PATH_MAX] /* OUT */);
/* The store URI of cfg with its path resolved against the data directory. */
int salus_cli_store_uri(const struct salus_config *cfg, char uri[SALUS_PATH_MAX + 8] /* OUT */);
/* Create the KEK (key file source) and the keyring of a new data directory. */
int salus_cli_keyring_create(const struct salus_config *cfg, const char **why /* OUT */);
/* Unlock the keyring of cfg and set its key-file sealing key in this process
 * (crypto.h, salus_keyfile_*), creating one first when `create` (salus init,
 * salus key seal-files).  The store openers below do this too (never
 * creating).  Errors: SALUS_ENOTFOUND (no file key and !create), those of
 * the keyring; *why says which. */
int salus_cli_file_key(const struct salus_config *cfg, bool create, const char **why /* OUT */);
/* Open the store of cfg with the page keys of its keyring.  opts supplies
 * create/readers/batch_max (NULL: defaults); its key fields are ignored.
 * *why gets a message for the user on failure (never key material). */
int salus_cli_open_store(const struct salus_config *cfg, const struct salus_store_opts *opts,
			 struct salus_store **out /* OUT */, const char **why /* OUT */);
/* salus_cli_open_store with a keyring the caller unlocked (and keeps; `salus
 * patient erase` goes on using it).  Adds the first patient-key wrapping key
 * to a keyring that has none (saved).  Also opens the patient key database
 * ([keys] patient_keys) so records of patient compartments are sealed. */
int salus_cli_open_store_kr(const struct salus_config *cfg, struct salus_keyring *kr,
			    const struct salus_store_opts *opts, struct salus_store **out /* OUT */,
			    const char **why /* OUT */);
/* salus_cli_open_store for `salus serve`: first makes the keyring's pending
 * data key if it has none (salus_keyring_dek_prepare), which the store then
 * holds as its next page key, so an online rekey can move to it (a failure
 * to save it is logged, not fatal). */
int salus_cli_open_store_serving(const struct salus_config *cfg, const struct salus_store_opts *opts,
				 struct salus_store **out /* OUT */, const char **why /* OUT */);
/* Whether another process (a running server, or another command) has the
 * store of cfg open: its shared lock on the patient key database's lock file
 * is held.  Errors: SALUS_EINVALID (bad paths), SALUS_EIO. */
int salus_cli_store_in_use(const struct salus_config *cfg, bool *in_use /* OUT */);
/* Seal the TLS private key file ([tls] key) in place under the process's
 * key-file sealing key (set by salus_cli_file_key or when a store is opened);
 * *already: it was sealed.  The server opens it in memory (http/tls.c).
 * Errors: SALUS_ECRYPTO (no sealing key set, or a sealed file that does not
 * open), SALUS_EINVALID (not an owner-only regular file, too large),
 * SALUS_ENOTFOUND, SALUS_EIO, SALUS_ENOMEM. */
int salus_cli_tls_key_seal(const struct salus_config *cfg, bool *already /* OUT */);
/* The patient-key wrapping keys of an unlocked keyring, as salus_cli_page_keys. */
int salus_cli_pwks(const struct salus_keyring *kr, struct salus_page_key **keys /* OUT */, size_t *n /* OUT */);
/* Fill a sodium_malloc'd array with the page keys of an unlocked keyring;
 * free it with salus_cli_page_keys_free. */
int salus_cli_page_keys(const struct salus_keyring *kr, struct salus_page_key **keys /* OUT */, size_t *n /* OUT */);
void salus_cli_page_keys_free(struct salus_page_key *keys);

#endif
