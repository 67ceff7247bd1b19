/*
 * cmd_key.c — `salus key status|rotate|rekey-data --data DIR`: the keys of
 * encryption at rest (docs/security.md).
 *   status      KEK version and source, data keys with their ages, a rekey in
 *               progress, and which keys are older than [keys] rotation_days
 *   rotate      new KEK version, every data key re-wrapped, keyring replaced
 *               atomically; the data is not touched, a running server is not
 *               disturbed (it needs the KEK only at start-up)
 *   rekey-data  new data key; every database page re-encrypted under it; the
 *               progress is in the keyring, so a killed run resumes where it
 *               stopped.  Online: with a server running, the new key is the
 *               pending one the server made at start-up and holds, and the
 *               server keeps reading and writing throughout.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/admin_audit.h"
#include "cli/store_open.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "store/store.h"

static const char usage[] =
	"usage: salus key status|rotate|rekey-data|seal-files --data DIR [--section.key VALUE ...]\n"
	"Manages the keys that encrypt DIR at rest (docs/security.md).\n"
	"  status      show the KEK version, the data keys and their ages, and what is due\n"
	"  rotate      make a new KEK version and re-wrap every data key (online: the server keeps serving)\n"
	"  rekey-data  re-encrypt every database page under a new data key (resumable; online: a running\n"
	"              server keeps serving and moves to the new key)\n"
	"  seal-files  seal the token, audit and pepper key files and the TLS private key under the keyring\n"
	"              (data directories made before sealing, or a TLS key replaced by a plain one)\n"
	"The KEK comes from [keys] kek_source: file (keys/kek.key), passphrase (SALUS_KEK_PASSPHRASE;\n"
	"rotate also reads SALUS_KEK_NEW_PASSPHRASE) or command ([keys] kek_command).\n";

static long age_days(const char *instant)
{
	int64_t ms = 0;
	if (!instant || salus_instant_parse(instant, strlen(instant), &ms))
		return -1;
	return (long)((salus_now_ms() - ms) / 86400000);
}

/* The key files of a data directory (crypto.h, salus_keyfile_*). */
static int key_files(const struct salus_config *cfg, char paths[3][SALUS_PATH_MAX])
{
	return salus_config_path(cfg, cfg->token_key, paths[0]) || salus_config_path(cfg, "keys/audit.key", paths[1]) ||
			       salus_config_path(cfg, "keys/pepper.key", paths[2])
		       ? SALUS_EINVALID
		       : SALUS_OK;
}

/* "sealed", "NOT sealed" or "missing" (without opening a sealed file). */
static const char *key_file_state(const char *path)
{
	char text[SALUS_KEYFILE_MAX + 1];
	size_t n = 0;
	bool sealed = false;
	int rc = salus_keyfile_read(path, text, sizeof text, &n, &sealed);
	sodium_memzero(text, sizeof text);
	if (rc == SALUS_ENOTFOUND)
		return "missing";
	return sealed ? "sealed" : rc ? "unreadable" : "NOT sealed (salus key seal-files)";
}

/* The TLS key is sealed when it starts with the sealed-file line (read
 * without the key: only the first bytes). */
static const char *tls_key_state(const char *path)
{
	static const char magic[] = "salus-sealed-v1\n";
	char head[sizeof magic - 1];
	FILE *f = fopen(path, "rb");
	if (!f)
		return "missing";
	size_t got = fread(head, 1, sizeof head, f);
	fclose(f);
	return got == sizeof head && !memcmp(head, magic, sizeof head) ? "sealed" : "NOT sealed (salus key seal-files)";
}

static int key_status(const struct salus_config *cfg, const char *ring)
{
	json_t *doc = NULL, *kek, *e, *rk;
	size_t i;
	int rc = salus_keyring_status(ring, &doc);
	if (rc)
		return salus_cli_fail("key", 1, "cannot read the keyring: %s", salus_err_msg(rc));
	kek = json_object_get(doc, "kek");
	const char *kc = json_string_value(json_object_get(kek, "created"));
	long kage = age_days(kc);
	bool due = cfg->rotation_days && kage >= cfg->rotation_days;
	printf("KEK: version %lld, source %s, created %s (%ld days)%s\n",
	       (long long)json_integer_value(json_object_get(kek, "version")),
	       json_string_value(json_object_get(kek, "source")) ? json_string_value(json_object_get(kek, "source")) : "?",
	       kc ? kc : "?", kage, due ? "  ROTATION DUE (salus key rotate)" : "");
	printf("data keys (active %lld):\n", (long long)json_integer_value(json_object_get(doc, "active")));
	json_array_foreach(json_object_get(doc, "deks"), i, e) {
		const char *c = json_string_value(json_object_get(e, "created"));
		const char *st = json_string_value(json_object_get(e, "state"));
		long age = age_days(c);
		bool d = cfg->rotation_days && age >= cfg->rotation_days && st && !strcmp(st, "active");
		printf("  id %lld  %-9s created %s (%ld days)%s\n", (long long)json_integer_value(json_object_get(e, "id")),
		       st ? st : "?", c ? c : "?", age, d ? "  REKEY DUE (salus key rekey-data)" : "");
	}
	if ((rk = json_object_get(doc, "rekey")))
		printf("rekey in progress: data key %lld -> %lld, next page %lld (run salus key rekey-data to resume)\n",
		       (long long)json_integer_value(json_object_get(rk, "from")),
		       (long long)json_integer_value(json_object_get(rk, "to")),
		       (long long)json_integer_value(json_object_get(rk, "next_page")));
	printf("rotation schedule: every %d days ([keys] rotation_days)\n", cfg->rotation_days);
	char paths[3][SALUS_PATH_MAX], tls[SALUS_PATH_MAX];
	if (!key_files(cfg, paths))
		for (int f = 0; f < 3; f++)
			printf("key file %s: %s\n", paths[f], key_file_state(paths[f]));
	if (!salus_config_path(cfg, cfg->tls_key, tls))
		printf("TLS key %s: %s\n", tls, tls_key_state(tls));
	json_decref(doc);
	return 0;
}

/* The AuditEvent of a key operation (its outcome rc), in the store of cfg.  1 (with a message)
 * when it cannot be written. */
static int audit_key(const struct salus_config *cfg, const char *query, int rc)
{
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.readers = 1};
	const char *why = NULL;
	int arc = salus_cli_open_store(cfg, &so, &st, &why);
	if (!arc)
		arc = salus_cli_audit_action(cfg, st, query, rc);
	salus_store_free(st);
	if (arc)
		return salus_cli_fail("key", 1, "the key operation could not be audited: %s",
				      why ? why : salus_err_msg(arc));
	return 0;
}

static int key_rotate(const struct salus_config *cfg, const char *ring, const struct salus_kek_config *kc)
{
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	int rc = salus_keyring_open(ring, kc, &kr, &why);
	if (rc)
		return salus_cli_fail("key", 1, "cannot unlock the keyring: %s", why ? why : salus_err_msg(rc));
	rc = salus_keyring_rotate_kek(kr, kc, &why);
	salus_keyring_free(kr);
	int arc = audit_key(cfg, "action=key-rotate-kek", rc);
	if (rc)
		return salus_cli_fail("key", 1, "rotation failed: %s", why ? why : salus_err_msg(rc));
	if (arc)
		return arc;
	printf("salus: KEK rotated; every data key re-wrapped\n");
	return 0;
}

static int on_progress(void *ctx, uint32_t next_page, uint32_t npages)
{
	int rc = salus_keyring_rekey_progress(ctx, next_page);
	if (!rc && (next_page > npages || next_page % 4096 < 256)) {
		printf("salus: rekey %u / %u pages\n", next_page - 1, npages);
		fflush(stdout);
	}
	return rc;
}

static int key_rekey(const struct salus_config *cfg, const char *ring, const struct salus_kek_config *kc)
{
	struct salus_keyring *kr = NULL;
	struct salus_page_key *keys = NULL;
	char uri[SALUS_PATH_MAX + 8];
	const char *why = NULL;
	uint32_t from = 1;
	size_t n = 0;
	bool online = false;
	int rc, status = 1;

	if ((rc = salus_cli_store_in_use(cfg, &online)))
		return salus_cli_fail("key", 1, "cannot tell whether a server is running: %s", salus_err_msg(rc));
	if ((rc = salus_keyring_open(ring, kc, &kr, &why)))
		return salus_cli_fail("key", 1, "cannot unlock the keyring: %s", why ? why : salus_err_msg(rc));
	if (salus_cli_store_uri(cfg, uri)) {
		salus_cli_fail("key", 1, "bad [store] uri");
		goto out_kr;
	}
	if ((rc = salus_keyring_rekey_begin(kr, online, &from))) {
		if (rc == SALUS_ENOTFOUND)
			salus_cli_fail("key", 1, "the store is in use (a server or another command) and the running server "
						 "holds no next data key: restart the server once (it prepares one), or stop "
						 "everything and rekey offline");
		else
			salus_cli_fail("key", 1, "cannot start the rekey: %s", salus_err_msg(rc));
		goto out_kr;
	}
	if (online)
		printf("salus: a server is running: rekeying online to data key %u\n", salus_keyring_active(kr));
	if ((rc = salus_cli_page_keys(kr, &keys, &n))) {
		salus_cli_fail("key", 1, "out of secure memory");
		goto out_kr;
	}
	if (from > 1)
		printf("salus: resuming the rekey at page %u\n", from);
	struct salus_store_opts o = {.page_keys = keys, .npage_keys = n, .page_key_id = salus_keyring_active(kr)};
	rc = salus_store_rekey(uri, &o, from, on_progress, kr);
	salus_cli_page_keys_free(keys);
	if (rc) {
		salus_cli_fail("key", 1, "rekey stopped: %s; run it again to resume", salus_err_msg(rc));
		goto out_kr;
	}
	/* the patient key database too: every record key re-wrapped under a new
	 * PWK, the old ones destroyed (online: the successor, which the server
	 * derives; offline: a random one).  Before rekey_finish, so a run killed
	 * here finishes this step when run again. */
	if (salus_keyring_pwk_count(kr) < 2 &&
	    (rc = online ? salus_keyring_pwk_add_successor(kr) : salus_keyring_pwk_add(kr))) {
		salus_cli_fail("key", 1, "pages done, but no new patient-key wrapping key: %s; run it again",
			       salus_err_msg(rc));
		goto out_kr;
	}
	{
		struct salus_store *st = NULL;
		struct salus_store_opts so = {.readers = 1, .patient_keys_exclusive = !online};
		size_t nw = 0;
		if ((rc = salus_cli_open_store_kr(cfg, kr, &so, &st, &why)) || (rc = salus_store_patient_rewrap(st, &nw))) {
			salus_store_free(st);
			salus_cli_fail("key", 1, "pages done, but the patient keys were not re-wrapped: %s; run it again",
				       why ? why : salus_err_msg(rc));
			goto out_kr;
		}
		salus_store_free(st);
		if ((rc = salus_keyring_pwk_destroy_old(kr))) {
			salus_cli_fail("key", 1, "patient keys re-wrapped, but the old wrapping key was not destroyed: %s",
				       salus_err_msg(rc));
			goto out_kr;
		}
		printf("salus: %zu patient keys re-wrapped under a new wrapping key\n", nw);
	}
	if ((rc = salus_keyring_rekey_finish(kr))) {
		salus_cli_fail("key", 1, "pages done, but the keyring was not updated: %s", salus_err_msg(rc));
		goto out_kr;
	}
	printf("salus: every page is under data key %u; older data keys are retired\n", salus_keyring_active(kr));
	status = 0;
out_kr:
	salus_keyring_free(kr);
	if (audit_key(cfg, "action=key-rekey-data", status ? SALUS_EIO : 0))
		status = 1;
	return status;
}

/* Seal every plain key file under the keyring's file key (made if missing). */
static int key_seal_files(const struct salus_config *cfg)
{
	char paths[3][SALUS_PATH_MAX], text[SALUS_KEYFILE_MAX + 1];
	const char *why = NULL;
	int rc, status = 0;

	if (key_files(cfg, paths))
		return salus_cli_fail("key", 2, "bad key paths");
	if ((rc = salus_cli_file_key(cfg, true, &why)))
		return salus_cli_fail("key", 1, "cannot unlock the keyring: %s", why ? why : salus_err_msg(rc));
	for (int i = 0; i < 3; i++) {
		size_t n = 0;
		bool sealed = false;
		rc = salus_keyfile_read(paths[i], text, sizeof text, &n, &sealed);
		if (rc == SALUS_ENOTFOUND)
			continue;
		if (rc) {
			status = salus_cli_fail("key", 1, "%s: %s", paths[i], salus_err_msg(rc));
		} else if (sealed) {
			printf("%s: already sealed\n", paths[i]);
		} else if ((rc = salus_keyfile_write(paths[i], text, n, true))) {
			status = salus_cli_fail("key", 1, "%s: cannot seal: %s", paths[i], salus_err_msg(rc));
		} else {
			printf("%s: sealed\n", paths[i]);
		}
		sodium_memzero(text, sizeof text);
	}
	/* the TLS private key: the server opens it in memory (http/tls.c) */
	bool already = false;
	rc = salus_cli_tls_key_seal(cfg, &already);
	if (rc == SALUS_EINVALID)
		status = salus_cli_fail("key", 1, "TLS key: cannot seal: it must be a regular file of mode 0600, up to 16 KiB");
	else if (rc && rc != SALUS_ENOTFOUND)
		status = salus_cli_fail("key", 1, "TLS key: cannot seal: %s", salus_err_msg(rc));
	else if (!rc)
		printf("TLS key: %s\n", already ? "already sealed" : "sealed");
	if (audit_key(cfg, "action=key-seal-files", status ? SALUS_EIO : 0))
		status = 1;
	return status;
}

int salus_cmd_key(int argc, char **argv)
{
	const char *dir = NULL, *sub = NULL, *why = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--data") && i + 1 < argc) {
			dir = argv[++i];
			argv[i - 1] = argv[i] = NULL;
		} else if (!sub && argv[i][0] != '-') {
			sub = argv[i];
			argv[i] = NULL;
		}
	}
	if (!sub || !dir)
		return salus_cli_fail("key", 2, "usage: salus key status|rotate|rekey-data|seal-files --data DIR (see --help)");
	struct salus_config cfg;
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("key", 1, "%s", why);
	if (salus_config_override(&cfg, argc, argv, &why))
		return salus_cli_fail("key", 2, "%s", why);
	for (int i = 1; i < argc; i++)
		if (argv[i])
			return salus_cli_fail("key", 2, "unexpected argument '%s' (see --help)", argv[i]);
	if (salus_crypto_init())
		return salus_cli_fail("key", 1, "libsodium failed to initialise");
	struct salus_kek_config kc;
	char kf[SALUS_PATH_MAX], ring[SALUS_PATH_MAX];
	if (salus_cli_kek_config(&cfg, &kc, kf, ring))
		return salus_cli_fail("key", 2, "bad [keys] settings");
	if (!strcmp(sub, "status"))
		return key_status(&cfg, ring);
	if (!strcmp(sub, "rotate"))
		return key_rotate(&cfg, ring, &kc);
	if (!strcmp(sub, "rekey-data"))
		return key_rekey(&cfg, ring, &kc);
	if (!strcmp(sub, "seal-files"))
		return key_seal_files(&cfg);
	return salus_cli_fail("key", 2, "unknown subcommand '%s' (see --help)", sub);
}
