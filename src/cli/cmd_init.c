/*
 * cmd_init.c — `salus init --data DIR [--demo] [--tls-cert F --tls-key F]`:
 * create a data directory with its configuration, token-signing key, TLS
 * certificate and an empty store; with --demo, also synthetic patients and a
 * demo client.  Never overwrites: an existing non-empty DIR is refused.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "auth/auth.h"
#include "auth/user.h"
#include "cli/cmd.h"
#include "cli/secret_file.h"
#include "cli/admin_audit.h"
#include "cli/demo.h"
#include "cli/store_open.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "http/tlscert.h"
#include "store/store.h"

static const char usage[] =
	"usage: salus init --data DIR [--demo [--patients N]] [--tls-cert FILE --tls-key FILE] [--section.key VALUE ...]\n"
	"Creates data directory DIR: salus.ini, keys/token.key, keys/pepper.key, tls/cert.pem + tls/key.pem (self-signed\n"
	"unless given) and an empty database.  Refuses to touch an existing non-empty DIR.\n"
	"  --demo          also load synthetic demo patients and register a demo client\n"
	"                  (id \"demo\", secret in DIR/demo-client-secret, scope system/*.cruds)\n"
	"  --patients N    number of demo patients (default 20)\n"
	"  --tls-cert F    use this PEM certificate (chain) instead of a self-signed one\n"
	"  --tls-key F     the PEM private key of --tls-cert\n"
	"  --section.key V write this setting into salus.ini (e.g. --server.listen 0.0.0.0:8443)\n";

static int dir_is_empty(const char *path)
{
	DIR *d = opendir(path);
	if (!d)
		return 0;
	struct dirent *e;
	int empty = 1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = 0;
	closedir(d);
	return empty;
}


int salus_cmd_init(int argc, char **argv)
{
	const char *dir = NULL, *cert = NULL, *key = NULL, *why = NULL;
	int demo = 0;
	long patients = 20;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		int has = i + 1 < argc, used = 2;
		if (!strcmp(a, "--demo"))
			demo = 1, used = 1;
		else if (!strcmp(a, "--data") && has)
			dir = argv[i + 1];
		else if (!strcmp(a, "--tls-cert") && has)
			cert = argv[i + 1];
		else if (!strcmp(a, "--tls-key") && has)
			key = argv[i + 1];
		else if (!strcmp(a, "--patients") && has) {
			const char *v = argv[i + 1];
			if (salus_parse_long((struct salus_slice){v, strlen(v)}, 1, 100000, &patients))
				return salus_cli_fail("init", 2, "--patients must be 1..100000");
		} else
			continue; /* a --section.key setting, checked below */
		argv[i] = NULL;
		if (used == 2)
			argv[++i] = NULL;
	}
	if (!dir)
		return salus_cli_fail("init", 2, "--data DIR is required (see --help)");
	if (!cert != !key)
		return salus_cli_fail("init", 2, "--tls-cert and --tls-key go together");

	struct salus_config cfg;
	salus_config_defaults(&cfg, dir);
	/* settings given on the command line go into the file */
	if (salus_config_override(&cfg, argc, argv, &why))
		return salus_cli_fail("init", 2, "%s", why);
	for (int i = 1; i < argc; i++)
		if (argv[i])
			return salus_cli_fail("init", 2, "unexpected argument '%s' (see --help)", argv[i]);

	struct stat sb;
	if (stat(dir, &sb) == 0 && !(S_ISDIR(sb.st_mode) && dir_is_empty(dir)))
		return salus_cli_fail("init", 1, "%s already exists; refusing to overwrite it", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		return salus_cli_fail("init", 1, "cannot create %s", dir);
	chmod(dir, 0700);

	char abs[SALUS_PATH_MAX];
	if (!realpath(dir, abs))
		return salus_cli_fail("init", 1, "cannot resolve %s", dir);
	snprintf(cfg.dir, sizeof cfg.dir, "%s", abs);
	char p[SALUS_PATH_MAX], p2[SALUS_PATH_MAX];
	int rc;
	if (salus_cli_path_join(p, abs, "keys") || mkdir(p, 0700) || salus_cli_path_join(p, abs, "tls") || mkdir(p, 0700))
		return salus_cli_fail("init", 1, "cannot create the keys/ and tls/ folders");
	if (salus_cli_path_join(p, abs, "salus.ini") || salus_config_write(&cfg, p))
		return salus_cli_fail("init", 1, "cannot write salus.ini");
	if (salus_crypto_init())
		return salus_cli_fail("init", 1, "libsodium failed to initialise");
	if (salus_config_path(&cfg, cfg.tls_cert, p) || salus_config_path(&cfg, cfg.tls_key, p2))
		return salus_cli_fail("init", 1, "TLS path too long");
	if (cert) {
		if (salus_cli_copy_file(cert, p, 0644) || salus_cli_copy_file(key, p2, 0600))
			return salus_cli_fail("init", 1, "cannot copy the TLS certificate or key");
	} else if (salus_tls_selfsigned(p, p2)) {
		return salus_cli_fail("init", 1, "cannot create a self-signed TLS certificate");
	}

	/* encryption at rest: KEK + first data key, then an encrypted store (cli/store_open.h) */
	if ((rc = salus_cli_keyring_create(&cfg, &why)))
		return salus_cli_fail("init", 1, "cannot create the keyring: %s", why ? why : salus_err_msg(rc));
	/* the key files, sealed under the keyring's file key (crypto.h, salus_keyfile_*) */
	if ((rc = salus_cli_file_key(&cfg, true, &why)))
		return salus_cli_fail("init", 1, "cannot make the key-file sealing key: %s", why ? why : salus_err_msg(rc));
	bool tls_sealed = false;
	if ((rc = salus_cli_tls_key_seal(&cfg, &tls_sealed)))
		return salus_cli_fail("init", 1, "cannot seal the TLS key: %s%s", salus_err_msg(rc),
				      rc == SALUS_EINVALID ? " (a given key must be a PEM file of up to 16 KiB)" : "");
	if (salus_config_path(&cfg, cfg.token_key, p) || (rc = salus_signkey_create(p)))
		return salus_cli_fail("init", 1, "cannot create the token-signing key");
	if (salus_cli_path_join(p, abs, "keys/audit.key") || salus_audit_key_create(p)) /* + keys/audit.key.pub */
		return salus_cli_fail("init", 1, "cannot create the audit checkpoint key");
	if (salus_cli_path_join(p, abs, "keys/pepper.key") || salus_pepper_create(p)) /* password pepper (auth/user.h) */
		return salus_cli_fail("init", 1, "cannot create the password pepper");
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = true};
	if ((rc = salus_cli_open_store(&cfg, &so, &st, &why)))
		return salus_cli_fail("init", 1, "cannot create the store: %s", why);
	/* the trail's first event: the data directory was made (fail closed, like every admin command) */
	int status = salus_cli_audit_admin("init", abs, st, "action=init", 0);
	if (demo && !status) {
		long loaded = 0;
		char q[96];
		rc = salus_demo_load(st, (int)patients, 1, &loaded);
		snprintf(q, sizeof q, "action=demo-load&resources=%ld&patients=%ld", loaded, patients);
		if ((status = salus_cli_audit_admin("init", abs, st, q, rc)))
			goto out_store;
		if (rc) {
			status = salus_cli_fail("init", 1, "cannot load demo data: %s", salus_err_msg(rc));
			goto out_store;
		}
		char secret[64];
		if (salus_random_token(24, secret, sizeof secret) || salus_cli_path_join(p, abs, "demo-client-secret")) {
			status = salus_cli_fail("init", 1, "cannot make the demo client secret");
			goto out_store;
		}
		int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		size_t sl = strlen(secret);
		if (fd < 0 || write(fd, secret, sl) != (ssize_t)sl || close(fd)) {
			status = salus_cli_fail("init", 1, "cannot write the demo client secret");
			goto out_store;
		}
		rc = salus_auth_client_add(st, "demo", secret, sl, "system/*.cruds", &why);
		if ((status = salus_cli_audit_admin("init", abs, st, "action=client-add&client=demo", rc)))
			goto out_store;
		if (rc) {
			status = salus_cli_fail("init", 1, "cannot register the demo client: %s",
						why ? why : salus_err_msg(rc));
			goto out_store;
		}
		printf("salus: loaded %ld demo resources for %ld synthetic patients\n", loaded, patients);
	}
	printf("salus: created data directory %s\n", abs);
out_store:
	salus_store_free(st);
	return status;
}
