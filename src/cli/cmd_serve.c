/*
 * cmd_serve.c — `salus serve --data DIR [--listen HOST:PORT] [--section.key VALUE...]`:
 * open the store and the auth context of a data directory and serve HTTPS
 * until SIGINT or SIGTERM.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"
#include "http/server.h"
#include "store/store.h"

static const char usage[] =
	"usage: salus serve --data DIR [--listen HOST:PORT] [--section.key VALUE ...]\n"
	"Serves the FHIR R4 API of data directory DIR over HTTPS (FHIR base https://HOST:PORT/fhir).\n"
	"  --data DIR          the data directory made by `salus init`\n"
	"  --listen HOST:PORT  address to listen on (overrides server.listen)\n"
	"  --section.key VAL   override any key of DIR/salus.ini (see docs/configuration.md)\n";

static enum salus_log_level level_of(const char *s)
{
	return !strcmp(s, "debug") ? SALUS_LOG_DEBUG
	       : !strcmp(s, "warn") ? SALUS_LOG_WARN
	       : !strcmp(s, "error") ? SALUS_LOG_ERROR
				     : SALUS_LOG_INFO;
}

/* [keys] rotation_days: warn (once a day) when the KEK is older.  The server
 * never holds the KEK, so it cannot rotate it itself: `salus key rotate` does,
 * online (docs/security.md "Rotation schedule"). */
static void rotation_check(const struct salus_config *cfg, int64_t *warned_ms)
{
	char ring[SALUS_PATH_MAX];
	json_t *doc = NULL;
	int64_t created = 0, now = salus_now_ms();
	if (!cfg->rotation_days || now - *warned_ms < 86400000LL || salus_config_path(cfg, cfg->keyring, ring) ||
	    salus_keyring_status(ring, &doc))
		return;
	const char *c = json_string_value(json_object_get(json_object_get(doc, "kek"), "created"));
	if (c && !salus_instant_parse(c, strlen(c), &created) && (now - created) / 86400000LL >= cfg->rotation_days) {
		salus_log(SALUS_LOG_WARN, "keys.rotation_due", "kek_age_days=%lld rotation_days=%d",
			  (long long)((now - created) / 86400000LL), cfg->rotation_days);
		*warned_ms = now;
	}
	json_decref(doc);
}

int salus_cmd_serve(int argc, char **argv)
{
	const char *dir = NULL, *listen = NULL, *why = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--data") && i + 1 < argc) {
			dir = argv[++i];
			argv[i - 1] = argv[i] = NULL;
		} else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			listen = argv[++i];
			argv[i - 1] = argv[i] = NULL;
		}
	}
	if (!dir)
		return salus_cli_fail("serve", 2, "--data DIR is required (see --help)");
	struct salus_config cfg;
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("serve", 1, "%s", why);
	if (salus_config_override(&cfg, argc, argv, &why))
		return salus_cli_fail("serve", 2, "%s", why);
	for (int i = 1; i < argc; i++)
		if (argv[i])
			return salus_cli_fail("serve", 2, "unexpected argument '%s' (see --help)", argv[i]);
	if (listen && salus_config_set(&cfg, "server.listen", listen))
		return salus_cli_fail("serve", 2, "bad --listen address");
	salus_log_set_level(level_of(cfg.log_level));

	/* no core dumps: they would contain keys and PHI */
	struct rlimit nocore = {0, 0};
	setrlimit(RLIMIT_CORE, &nocore);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (salus_crypto_init())
		return salus_cli_fail("serve", 1, "libsodium failed to initialise");
	/* glibc's malloc gives large blocks back to the kernel (mmap'd above a threshold that grows,
	 * trimmed at the top of the heap) and faults fresh zeroed pages in for the next request: a
	 * Bundle's buffers did that every time (page faults were ~7 % of an ingest's CPU).  Keep up
	 * to a few MB of freed memory for reuse instead. */
	mallopt(M_MMAP_THRESHOLD, 4 << 20);
	mallopt(M_TRIM_THRESHOLD, 16 << 20);

	/* block the stop signals before any thread starts, then wait for them */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* unlock the keyring, open the encrypted store; only the page keys stay in memory */
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = false, .audit_journal = true, .audit_flush_ms = cfg.audit_flush_ms};
	int rc = salus_cli_open_store_serving(&cfg, &so, &st, &why);
	if (rc)
		return salus_cli_fail("serve", 1, "cannot open the store: %s", why);
	/* a database restored from a backup older than an erasure: remove the
	 * erased patients' rows again (their bodies cannot be opened anyway) */
	size_t nerased = 0;
	long nreplayed = 0;
#ifdef SALUS_BENCH_NO_ENCRYPT
	/* no patient keys in the benchmark-only plaintext store: nothing to replay */
	if (0) {
#else
	if ((rc = salus_store_patient_replay(st, &nerased, &nreplayed))) {
#endif
		salus_store_free(st);
		return salus_cli_fail("serve", 1, "cannot re-apply patient erasures: %s", salus_err_msg(rc));
	}
	if (nreplayed)
		salus_log(SALUS_LOG_WARN, "store.erase.replay", "patients=%zu resources=%ld", nerased, nreplayed);
	char issuer[600];
	if (cfg.base_url[0]) {
		snprintf(issuer, sizeof issuer, "%s", cfg.base_url);
	} else {
		snprintf(issuer, sizeof issuer, "https://%s", cfg.listen);
	}
	char keypath[SALUS_PATH_MAX];
	struct salus_auth *auth = NULL;
	struct salus_users *users = NULL;
	struct salus_http *h = NULL;
	int status = 1;
	if (salus_config_path(&cfg, cfg.token_key, keypath) ||
	    (rc = salus_auth_new(st, keypath, issuer, NULL, cfg.token_lifetime, &auth))) {
		salus_cli_fail("serve", 1, "cannot load the token key: %s", salus_err_msg(rc));
		goto out_store;
	}
	char jwks_ca[SALUS_PATH_MAX] = "";
	if ((cfg.jwks_ca_file[0] && salus_config_path(&cfg, cfg.jwks_ca_file, jwks_ca)) ||
	    (rc = salus_auth_set_jwks_fetch(auth, jwks_ca, cfg.jwks_cache_s))) {
		salus_cli_fail("serve", 1, "bad [auth] jwks_ca_file or jwks_cache_s");
		goto out_auth;
	}
	/* users (auth/user.h): the pepper is created for data directories from before it existed */
	char pepper[SALUS_PATH_MAX];
	if (salus_config_path(&cfg, "keys/pepper.key", pepper) ||
	    (access(pepper, F_OK) && (rc = salus_pepper_create(pepper)) && rc != SALUS_EEXISTS) ||
	    (rc = salus_users_new(st, pepper, NULL, &users))) {
		salus_cli_fail("serve", 1, "cannot load keys/pepper.key: %s", salus_err_msg(rc));
		goto out_auth;
	}
	salus_auth_set_users(auth, users);
	rc = salus_http_start(&cfg, st, auth, &h);
	if (rc) {
		salus_cli_fail("serve", 1, "cannot serve on %s: %s", cfg.listen,
			       rc == SALUS_EINVALID ? "bad listen address" : "TLS files unreadable or address in use");
		goto out_auth;
	}
	printf("salus: serving FHIR R4 at %s/fhir (Ctrl-C to stop)\n", issuer);
	fflush(stdout);
	salus_log(SALUS_LOG_INFO, "server.start", "port=%d", salus_http_port(h));
#ifdef SALUS_BENCH_NO_AUDIT
	salus_log(SALUS_LOG_WARN, "server.start", "benchmark-only build: accesses are NOT audited; never ship it");
#endif
#ifdef SALUS_BENCH_NO_INDEX
	salus_log(SALUS_LOG_WARN, "server.start", "benchmark-only build: writes are NOT indexed for search; never ship it");
#endif
#ifdef SALUS_BENCH_NO_ENCRYPT
	salus_log(SALUS_LOG_WARN, "server.start", "benchmark-only build: data is stored UNENCRYPTED; never ship it");
	fprintf(stderr, "salus: WARNING: benchmark-only build, data is stored UNENCRYPTED; never use it for real data\n");
#endif
	int sig = 0;
	/* SIGHUP: reload the TLS certificate and key ([tls] cert, key); at start,
	 * every hour and on SIGHUP: is the KEK due for rotation? */
	int64_t warned_ms = 0;
	for (;;) {
		rotation_check(&cfg, &warned_ms);
		struct timespec hour = {3600, 0};
		sig = sigtimedwait(&stop, NULL, &hour);
		if (sig == SIGHUP)
			salus_http_reload_tls(h); /* logs tls.reload ok=0|1; then the rotation check again */
		else if (sig > 0)
			break;
	}
	salus_log(SALUS_LOG_INFO, "server.stop", "signal=%d", sig);
	salus_http_stop(h);
	status = 0;
out_auth:
	salus_auth_free(auth);
	salus_users_free(users);
out_store:
	salus_store_free(st);
	return status;
}
