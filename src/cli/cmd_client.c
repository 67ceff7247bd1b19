/*
 * cmd_client.c — `salus client add|list|remove`: the OAuth client registry
 * of a data directory (auth.h).  Secrets are read from a file (never from the
 * command line, where `ps` would show them), stored only as Argon2id hashes,
 * wiped from memory after use and never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "cli/cmd.h"
#include "cli/secret_file.h"
#include "cli/admin_audit.h"
#include "cli/store_open.h"
#include "core/config.h"
#include "core/err.h"
#include "core/limits.h"
#include "crypto/crypto.h"
#include "store/store.h"

static const char usage_main[] =
	"usage: salus client add|list|remove --data DIR [OPTIONS]   (salus client SUBCOMMAND --help)\n"
	"Registers, lists and removes OAuth 2.0 clients: confidential clients (client credentials with a\n"
	"secret), SMART Backend Services (client credentials with a signed JWT) and SMART apps.\n";
static const char usage_add[] =
	"usage: salus client add --data DIR --id ID --scope \"SCOPES\" --secret-file FILE\n"
	"Registers a confidential client.  Its secret is read from FILE ('-' for standard input; one\n"
	"trailing newline is dropped), must be 16..1024 bytes, and is stored only as an Argon2id hash.\n"
	"  --id ID          client id: 1-64 characters of A-Z a-z 0-9 . _ -\n"
	"  --scope SCOPES   space-separated SMART scopes, e.g. \"system/Patient.rs system/Observation.read\"\n"
	"                   (v1: system/TYPE.read|write|*, v2: system/TYPE.cruds; TYPE may be *)\n"
	"  --secret-file F  file holding the secret\n"
	"\n"
	"usage: salus client add --data DIR --id ID --scope \"SCOPES\" --redirect-uri URI [--launch-uri URI]\n"
	"                        [--public] [--secret-file F]\n"
	"Registers a SMART app (authorization code + PKCE S256).  SCOPES may include user/ and patient/\n"
	"scopes, openid fhirUser profile offline_access online_access launch launch/patient\n"
	"launch/encounter.  --public: no secret (browser or native app); otherwise the secret is read\n"
	"from F, or generated and printed once.  --launch-uri: the app's launch URL for the SMART EHR\n"
	"launch (staff open it from /auth/launch?client_id=ID&patient=P[&encounter=E]).\n"
	"\n"
	"usage: salus client add --data DIR --id ID --scope \"SCOPES\" --jwks FILE\n"
	"Registers a SMART Backend Services client (client_credentials with a signed JWT assertion,\n"
	"private_key_jwt).  FILE ('-' for standard input) holds a JWK Set {\"keys\":[...]} of 1-16 PUBLIC\n"
	"keys: RSA of 2048+ bits (RS384) or EC P-384 (ES384).  Private key material is refused.\n"
	"  --jwks-url URL   instead of --jwks: the https URL where the client publishes its JWK Set; the\n"
	"                   server fetches it when needed (cached [auth] jwks_cache_s, default 300 s).\n";
static const char usage_list[] =
	"usage: salus client list --data DIR\n"
	"Lists the registered clients, one per line: id, scope and creation time, tab-separated.\n"
	"Secrets are never shown.\n";
static const char usage_remove[] =
	"usage: salus client remove --data DIR --id ID\n"
	"Removes a client.  Its access tokens stop working at once, also in a running server.\n";

struct opts {
	const char *data, *id, *scope, *secret_file, *redirect_uri, *launch_uri, *jwks, *jwks_url;
	bool public_client;
};

/* Parse --data/--id/--scope/--secret-file; 0, 1 for --help shown, or 2 (usage error, reported). */
static int parse(const char *name, const char *usage, int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char **dst = NULL;
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 1;
		}
		if (!strcmp(a, "--public")) {
			o->public_client = true;
			continue;
		}
		if (!strcmp(a, "--data"))
			dst = &o->data;
		else if (!strcmp(a, "--redirect-uri"))
			dst = &o->redirect_uri;
		else if (!strcmp(a, "--launch-uri"))
			dst = &o->launch_uri;
		else if (!strcmp(a, "--id"))
			dst = &o->id;
		else if (!strcmp(a, "--scope"))
			dst = &o->scope;
		else if (!strcmp(a, "--secret-file"))
			dst = &o->secret_file;
		else if (!strcmp(a, "--jwks"))
			dst = &o->jwks;
		else if (!strcmp(a, "--jwks-url"))
			dst = &o->jwks_url;
		if (!dst)
			return salus_cli_fail(name, 2, "unexpected argument '%s' (see salus %s --help)", a, name);
		if (i + 1 >= argc)
			return salus_cli_fail(name, 2, "%s needs a value", a);
		*dst = argv[++i];
	}
	if (!o->data)
		return salus_cli_fail(name, 2, "--data DIR is required (see salus %s --help)", name);
	return 0;
}

/* Open the store of a data directory (it must exist: `salus init` creates it). */
static int open_store(const char *name, const char *dir, struct salus_store **st)
{
	struct salus_config cfg;
	const char *why = NULL;
	int rc = salus_config_load(&cfg, dir, &why);
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	struct salus_store_opts so = {.create = false, .readers = 1};
	rc = salus_cli_open_store(&cfg, &so, st, &why); /* cli/store_open.h: keyring + encrypted store */
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "no database or keyring in %s (run salus init)", dir);
	if (rc)
		return salus_cli_fail(name, 1, "cannot open the store: %s", why);
	return 0;
}

/* salus client add ... --redirect-uri URI [--public]: a SMART app (auth/oauth.h). */
static int add_app(const char *name, const struct opts *o)
{
	if (!o->id || !o->scope)
		return salus_cli_fail(name, 2, "--id and --scope are required (see --help)");
	if (o->public_client && o->secret_file)
		return salus_cli_fail(name, 2, "a --public app has no secret");
	if (salus_crypto_init())
		return salus_cli_fail(name, 1, "libsodium failed to initialise");
	char secret[SALUS_MAX_SECRET + 2];
	size_t sn = 0;
	bool generated = false;
	int rc = 0;
	if (o->secret_file) {
		rc = salus_cli_read_secret(o->secret_file, secret, sizeof secret, &sn);
		if (rc) {
			sodium_memzero(secret, sizeof secret);
			return salus_cli_fail(name, 1, "cannot read the secret file %s", o->secret_file);
		}
	} else if (!o->public_client) {
		salus_random_token(32, secret, sizeof secret);
		sn = strlen(secret);
		generated = true;
	}
	struct salus_store *st = NULL;
	if ((rc = open_store(name, o->data, &st))) {
		sodium_memzero(secret, sizeof secret);
		return rc;
	}
	const char *why = NULL;
	rc = salus_auth_app_add(st, o->id, o->scope, o->redirect_uri, o->launch_uri, o->public_client, o->public_client ? NULL : secret,
				sn, &why);
	char q[SALUS_CLIENT_ID_MAX + 64];
	snprintf(q, sizeof q, "action=client-add&client=%s", o->id);
	int arc = salus_cli_audit_admin(name, o->data, st, q, rc);
	salus_store_free(st);
	if (arc) {
		sodium_memzero(secret, sizeof secret);
		return arc;
	}
	if (rc) {
		sodium_memzero(secret, sizeof secret);
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	}
	printf("app %s registered (%s)\n", o->id, o->public_client ? "public" : "confidential");
	if (generated)
		printf("client secret (shown once): %s\n", secret);
	sodium_memzero(secret, sizeof secret);
	return 0;
}

/* salus client add ... --jwks FILE: a SMART Backend Services client (auth.h). */
static int add_backend(const char *name, const struct opts *o)
{
	if (!o->id || !o->scope)
		return salus_cli_fail(name, 2, "--id and --scope are required (see --help)");
	if (o->secret_file || o->redirect_uri || o->launch_uri || o->public_client || (o->jwks && o->jwks_url))
		return salus_cli_fail(name, 2, "--jwks or --jwks-url, without --secret-file, --redirect-uri or --public");
	if (salus_crypto_init())
		return salus_cli_fail(name, 1, "libsodium failed to initialise");
	if (o->jwks_url) {
		struct salus_store *ust = NULL;
		int urc = open_store(name, o->data, &ust);
		if (urc)
			return urc;
		const char *uwhy = NULL;
		urc = salus_auth_backend_add_url(ust, o->id, o->scope, o->jwks_url, &uwhy);
		char uq[SALUS_CLIENT_ID_MAX + 64];
		snprintf(uq, sizeof uq, "action=client-add&client=%s", o->id);
		int uarc = salus_cli_audit_admin(name, o->data, ust, uq, urc);
		salus_store_free(ust);
		if (uarc)
			return uarc;
		if (urc)
			return salus_cli_fail(name, 1, "%s", uwhy ? uwhy : salus_err_msg(urc));
		printf("backend client %s registered (private_key_jwt, JWK Set URL)\n", o->id);
		return 0;
	}
	static char jwks[SALUS_JWKS_MAX];
	size_t n = 0;
	int rc = salus_cli_read_file(o->jwks, jwks, sizeof jwks, &n);
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "cannot open the JWK Set file %s", o->jwks);
	if (rc == SALUS_ETOOLARGE)
		return salus_cli_fail(name, 1, "the JWK Set file is larger than 64 KiB");
	if (rc)
		return salus_cli_fail(name, 1, "cannot read the JWK Set file %s", o->jwks);
	struct salus_store *st = NULL;
	if ((rc = open_store(name, o->data, &st)))
		return rc;
	const char *why = NULL;
	rc = salus_auth_backend_add(st, o->id, o->scope, jwks, n, &why);
	char q[SALUS_CLIENT_ID_MAX + 64];
	snprintf(q, sizeof q, "action=client-add&client=%s", o->id);
	int arc = salus_cli_audit_admin(name, o->data, st, q, rc);
	salus_store_free(st);
	if (arc)
		return arc;
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	printf("backend client %s registered (private_key_jwt)\n", o->id);
	return 0;
}

static int cmd_add(int argc, char **argv)
{
	const char *name = "client add";
	struct opts o = {0};
	int rc = parse(name, usage_add, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.jwks || o.jwks_url)
		return add_backend(name, &o);
	if (o.redirect_uri)
		return add_app(name, &o);
	if (o.public_client || o.launch_uri)
		return salus_cli_fail(name, 2, "--public and --launch-uri need --redirect-uri (a SMART app)");
	if (!o.id || !o.scope || !o.secret_file)
		return salus_cli_fail(name, 2, "--id, --scope and --secret-file are required (see --help)");
	if (!salus_client_id_valid(o.id))
		return salus_cli_fail(name, 2, "client id must be 1-64 characters of A-Z a-z 0-9 . _ -");
	if (salus_crypto_init())
		return salus_cli_fail(name, 1, "libsodium failed to initialise");

	char secret[SALUS_MAX_SECRET + 2];
	size_t sn = 0;
	rc = salus_cli_read_secret(o.secret_file, secret, sizeof secret, &sn);
	if (rc == SALUS_ENOTFOUND) {
		sodium_memzero(secret, sizeof secret);
		return salus_cli_fail(name, 1, "cannot open the secret file %s", o.secret_file);
	}
	if (rc || sn < SALUS_CLIENT_SECRET_MIN || sn > SALUS_MAX_SECRET) {
		sodium_memzero(secret, sizeof secret);
		return salus_cli_fail(name, 1, rc == SALUS_EIO ? "cannot read the secret file"
							       : "the secret must be 16..1024 bytes");
	}
	struct salus_store *st = NULL;
	if ((rc = open_store(name, o.data, &st))) {
		sodium_memzero(secret, sizeof secret);
		return rc;
	}
	const char *why = NULL;
	rc = salus_auth_client_add(st, o.id, secret, sn, o.scope, &why);
	sodium_memzero(secret, sizeof secret);
	char q[SALUS_CLIENT_ID_MAX + 64];
	snprintf(q, sizeof q, "action=client-add&client=%s", o.id);
	int arc = salus_cli_audit_admin(name, o.data, st, q, rc);
	salus_store_free(st);
	if (arc)
		return arc;
	if (rc)
		return salus_cli_fail(name, 1, "%s", why ? why : salus_err_msg(rc));
	printf("client %s registered\n", o.id);
	return 0;
}

static int print_client(void *ctx, const struct salus_client_info *c)
{
	(void)ctx;
	printf("%s\t%s\t%s\n", c->id, c->scope, c->created);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	const char *name = "client list";
	struct opts o = {0};
	int rc = parse(name, usage_list, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (o.id || o.scope || o.secret_file || o.jwks || o.jwks_url)
		return salus_cli_fail(name, 2, "list takes only --data (see --help)");
	struct salus_store *st = NULL;
	if ((rc = open_store(name, o.data, &st)))
		return rc;
	rc = salus_auth_client_list(st, print_client, NULL);
	salus_store_free(st);
	if (rc)
		return salus_cli_fail(name, 1, "cannot list clients: %s", salus_err_msg(rc));
	return 0;
}

static int cmd_remove(int argc, char **argv)
{
	const char *name = "client remove";
	struct opts o = {0};
	int rc = parse(name, usage_remove, argc, argv, &o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (!o.id || o.scope || o.secret_file || o.jwks || o.jwks_url)
		return salus_cli_fail(name, 2, "remove takes --data and --id (see --help)");
	struct salus_store *st = NULL;
	if ((rc = open_store(name, o.data, &st)))
		return rc;
	rc = salus_auth_client_remove(st, o.id);
	char q[SALUS_CLIENT_ID_MAX + 64];
	snprintf(q, sizeof q, "action=client-remove&client=%s", o.id);
	int arc = salus_cli_audit_admin(name, o.data, st, q, rc);
	salus_store_free(st);
	if (arc)
		return arc;
	if (rc == SALUS_ENOTFOUND)
		return salus_cli_fail(name, 1, "no client with id %s", o.id);
	if (rc)
		return salus_cli_fail(name, 1, "cannot remove the client: %s", salus_err_msg(rc));
	printf("client %s removed\n", o.id);
	return 0;
}

int salus_cmd_client(int argc, char **argv)
{
	if (argc < 2)
		return salus_cli_fail("client", 2, "add, list or remove? (see salus client --help)");
	const char *sub = argv[1];
	if (!strcmp(sub, "--help") || !strcmp(sub, "help")) {
		fputs(usage_main, stdout);
		fputs(usage_add, stdout);
		fputs(usage_list, stdout);
		fputs(usage_remove, stdout);
		return 0;
	}
	if (!strcmp(sub, "add"))
		return cmd_add(argc - 1, argv + 1);
	if (!strcmp(sub, "list"))
		return cmd_list(argc - 1, argv + 1);
	if (!strcmp(sub, "remove"))
		return cmd_remove(argc - 1, argv + 1);
	return salus_cli_fail("client", 2, "unknown subcommand '%s' (add, list or remove)", sub);
}
