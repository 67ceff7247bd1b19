/*
 * store_open.c — keyring + encrypted store for the salus commands (see store_open.h).
 */
#include "cli/store_open.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "core/err.h"
#include "core/log.h"
#include "crypto/crypto.h"

int salus_cli_kek_config(const struct salus_config *cfg, struct salus_kek_config *kc, char kek_file[SALUS_PATH_MAX],
			 char ring[SALUS_PATH_MAX])
{
	memset(kc, 0, sizeof *kc);
	if (salus_kek_source_parse(cfg->kek_source, &kc->source) || salus_config_path(cfg, cfg->kek_file, kek_file) ||
	    salus_config_path(cfg, cfg->keyring, ring))
		return SALUS_EINVALID;
	kc->kek_file = kek_file;
	kc->command = cfg->kek_command;
	return SALUS_OK;
}

int salus_cli_store_uri(const struct salus_config *cfg, char uri[SALUS_PATH_MAX + 8])
{
	char p[SALUS_PATH_MAX];
	if (strncmp(cfg->store_uri, "sqlite:", 7) == 0) {
		if (salus_config_path(cfg, cfg->store_uri + 7, p))
			return SALUS_EINVALID;
		snprintf(uri, SALUS_PATH_MAX + 8, "sqlite:%s", p);
	} else {
		snprintf(uri, SALUS_PATH_MAX + 8, "%s", cfg->store_uri);
	}
	return SALUS_OK;
}

int salus_cli_keyring_create(const struct salus_config *cfg, const char **why)
{
	struct salus_kek_config kc;
	char kf[SALUS_PATH_MAX], ring[SALUS_PATH_MAX];
	if (salus_cli_kek_config(cfg, &kc, kf, ring)) {
		*why = "bad [keys] settings";
		return SALUS_EINVALID;
	}
	return salus_keyring_create(ring, &kc, why);
}

int salus_cli_page_keys(const struct salus_keyring *kr, struct salus_page_key **keys, size_t *n)
{
	size_t k = salus_keyring_count(kr);
	struct salus_page_key *a = sodium_allocarray(k ? k : 1, sizeof *a);
	if (!a)
		return SALUS_ENOMEM;
	for (size_t i = 0; i < k; i++)
		salus_keyring_page_key(kr, i, &a[i].id, a[i].key);
	*keys = a;
	*n = k;
	return SALUS_OK;
}

void salus_cli_page_keys_free(struct salus_page_key *keys)
{
	sodium_free(keys); /* wipes */
}

int salus_cli_pwks(const struct salus_keyring *kr, struct salus_page_key **keys, size_t *n)
{
	size_t k = salus_keyring_pwk_count(kr);
	struct salus_page_key *a = sodium_allocarray(k ? k : 1, sizeof *a);
	if (!a)
		return SALUS_ENOMEM;
	for (size_t i = 0; i < k; i++)
		salus_keyring_pwk(kr, i, &a[i].id, a[i].key);
	*keys = a;
	*n = k;
	return SALUS_OK;
}

/* Hand the keyring's file key to keyfile.c (crypto.h). */
static int file_key_set(struct salus_keyring *kr, bool create)
{
	unsigned char fk[SALUS_FILE_KEY_LEN];
	int rc = salus_keyring_file_key(kr, create, fk);
	if (!rc)
		rc = salus_keyfile_seal_key(fk);
	sodium_memzero(fk, sizeof fk);
	return rc;
}

/* Unlock the keyring of cfg. */
static int keyring_of(const struct salus_config *cfg, struct salus_keyring **kr, const char **why)
{
	struct salus_kek_config kc;
	char kf[SALUS_PATH_MAX], ring[SALUS_PATH_MAX];
	if (salus_cli_kek_config(cfg, &kc, kf, ring)) {
		*why = "bad [keys] settings";
		return SALUS_EINVALID;
	}
	return salus_keyring_open(ring, &kc, kr, why);
}

int salus_cli_file_key(const struct salus_config *cfg, bool create, const char **why)
{
	struct salus_keyring *kr = NULL;
	int rc = keyring_of(cfg, &kr, why);
	if (rc)
		return rc;
	if ((rc = file_key_set(kr, create)))
		*why = rc == SALUS_ENOTFOUND ? "the keyring has no file-sealing key" : "cannot save the keyring";
	salus_keyring_free(kr);
	return rc;
}

int salus_cli_open_store_kr(const struct salus_config *cfg, struct salus_keyring *kr,
			    const struct salus_store_opts *opts, struct salus_store **out, const char **why)
{
	struct salus_store_opts o = {0};
	struct salus_page_key *keys = NULL, *pwks = NULL;
	char uri[SALUS_PATH_MAX + 8], pkpath[SALUS_PATH_MAX];
	size_t n = 0, npwk = 0;
	int rc;

	if (opts)
		o = *opts;
	if (salus_cli_store_uri(cfg, uri) || salus_config_path(cfg, cfg->patient_keys, pkpath)) {
		*why = "bad [keys] or [store] settings";
		return SALUS_EINVALID;
	}
	/* a keyring from before per-patient keys gets its first wrapping key */
	if (!salus_keyring_pwk_count(kr) && (rc = salus_keyring_pwk_add(kr))) {
		*why = "cannot add a patient-key wrapping key to the keyring";
		return rc;
	}
	/* key files (token, audit, pepper) are sealed under the keyring's file key */
	if ((rc = file_key_set(kr, false)) && rc != SALUS_ENOTFOUND) {
		*why = "cannot set the key-file sealing key";
		return rc;
	}
	if ((rc = salus_cli_page_keys(kr, &keys, &n)) || (rc = salus_cli_pwks(kr, &pwks, &npwk))) {
		*why = "out of secure memory";
		goto out_keys;
	}
#ifdef SALUS_BENCH_NO_ENCRYPT
	/* BENCHMARK-ONLY build (CMake SALUS_BENCH_NO_ENCRYPT): a plaintext store
	 * (no page encryption, no patient record keys), to measure what
	 * encryption at rest costs (issue 8).  The shipped binary has no way to
	 * get here. */
	salus_log(SALUS_LOG_WARN, "store.open", "benchmark-only build: store is UNENCRYPTED");
#else
	o.page_keys = keys;
	o.npage_keys = n;
	o.page_key_id = salus_keyring_active(kr);
	o.page_key_next = salus_keyring_pending(kr);
	o.patient_keys = pkpath;
	o.pwks = pwks;
	o.npwks = npwk;
#endif
	_Static_assert(SALUS_FILE_KEY_LEN == SALUS_PAGE_KEY_LEN, "the journal key is a file key");
	/* the audit journal is sealed under (a KDF subkey of) the file key: rekey-data never retires it */
	unsigned char *jk = sodium_malloc(SALUS_FILE_KEY_LEN);
	if (!jk) {
		rc = SALUS_ENOMEM;
		*why = "out of secure memory";
		goto out_keys;
	}
	if (!salus_keyring_file_key(kr, false, jk))
		o.audit_journal_key = jk;
	rc = salus_store_open(uri, &o, out);
	sodium_free(jk);
	if (rc)
		*why = rc == SALUS_EINTEGRITY ? "integrity check failed (wrong keys, or the database was altered)"
					      : salus_err_msg(rc);
out_keys:
	salus_cli_page_keys_free(keys);
	salus_cli_page_keys_free(pwks);
	return rc;
}

int salus_cli_open_store(const struct salus_config *cfg, const struct salus_store_opts *opts,
			 struct salus_store **out, const char **why)
{
	struct salus_keyring *kr = NULL;
	int rc = keyring_of(cfg, &kr, why);
	if (rc)
		return rc;
	/* the KEK is freed with the keyring: only page and record keys live on, in the store */
	rc = salus_cli_open_store_kr(cfg, kr, opts, out, why);
	salus_keyring_free(kr);
	return rc;
}

int salus_cli_open_store_serving(const struct salus_config *cfg, const struct salus_store_opts *opts,
				 struct salus_store **out, const char **why)
{
	struct salus_keyring *kr = NULL;
	uint32_t next = 0;
	int rc = keyring_of(cfg, &kr, why);
	if (rc)
		return rc;
	/* the next data key, made now while the KEK is at hand: an online
	 * `salus key rekey-data` moves the data to it (docs/security.md).  Not
	 * fatal (a read-only keyring): the server serves, an online rekey is
	 * then refused until a restart can prepare the key. */
	if ((rc = salus_keyring_dek_prepare(kr, &next)))
		salus_log(SALUS_LOG_WARN, "keys.next_key", "prepared=0 rc=%d (online rekey-data unavailable)", rc);
	rc = salus_cli_open_store_kr(cfg, kr, opts, out, why);
	salus_keyring_free(kr);
	return rc;
}

int salus_cli_store_in_use(const struct salus_config *cfg, bool *in_use)
{
	char pk[SALUS_PATH_MAX], lp[SALUS_PATH_MAX + 8];
	int fd, rc = SALUS_OK;

	if (salus_config_path(cfg, cfg->patient_keys, pk) || (size_t)snprintf(lp, sizeof lp, "%s.lock", pk) >= sizeof lp)
		return SALUS_EINVALID;
	if ((fd = open(lp, O_RDWR | O_CLOEXEC)) < 0) {
		*in_use = false; /* no lock file: no store was ever opened with the key database */
		return errno == ENOENT ? SALUS_OK : SALUS_EIO;
	}
	if (!flock(fd, LOCK_EX | LOCK_NB)) {
		*in_use = false;
		flock(fd, LOCK_UN);
	} else if (errno == EWOULDBLOCK) {
		*in_use = true;
	} else {
		rc = SALUS_EIO;
	}
	close(fd);
	return rc;
}

int salus_cli_tls_key_seal(const struct salus_config *cfg, bool *already)
{
	char path[SALUS_PATH_MAX], *pem = NULL;
	size_t n = 0;
	bool sealed = false;
	int rc;

	if (salus_config_path(cfg, cfg->tls_key, path))
		return SALUS_EINVALID;
	if (!salus_keyfile_sealing())
		return SALUS_ECRYPTO;
	if ((rc = salus_keyfile_read_big(path, &pem, &n, &sealed)))
		return rc;
	*already = sealed;
	if (!sealed)
		rc = salus_keyfile_write_big(path, pem, n, true);
	salus_keyfile_text_free(pem);
	return rc;
}
