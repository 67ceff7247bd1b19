/*
 * config.h — the data directory and its one configuration file.
 *
 * Layout of a data directory (created by `salus init`):
 *   DIR/salus.ini           this configuration (INI, parsed with libinih)
 *   DIR/salus.db            the SQLite store (+ -wal, -shm)
 *   DIR/keys/token.key      Ed25519 token-signing key (mode 0600)
 *   DIR/keys/kek.key, keyring.json  key-encryption key and wrapped data keys (docs/security.md)
 *   DIR/keys/patient-keys.db  per-patient record keys, wrapped (crypto-shredding)
 *   DIR/tls/cert.pem, key.pem  the TLS certificate and key (self-signed unless given)
 * Relative paths in the file are relative to DIR.  Every key can be
 * overridden on the command line as `--section.key VALUE` (see
 * salus_config_override); docs/configuration.md lists them all.
 */
#ifndef SALUS_CORE_CONFIG_H
#define SALUS_CORE_CONFIG_H
#include <stdbool.h>
#include <stddef.h>

#define SALUS_PATH_MAX 4096

struct salus_config {
	char dir[SALUS_PATH_MAX];        /* the data directory (absolute) */
	/* [server] */
	char listen[256];                /* host:port, e.g. 127.0.0.1:8443 */
	char base_url[512];              /* public base URL; empty: https://<listen> */
	int threads;                     /* worker threads; 0: one per core */
	long max_body;                   /* bytes; <= SALUS_MAX_BODY */
	int max_connections;
	int idle_timeout;                /* seconds */
	long rate_limit;                 /* requests per minute per client address; 0: off */
	/* [tls] */
	char tls_cert[SALUS_PATH_MAX];
	char tls_key[SALUS_PATH_MAX];
	char tls_priorities[512];        /* GnuTLS priority string */
	char tls_client_ca[SALUS_PATH_MAX]; /* CA (PEM) client certificates must chain to (mutual TLS) */
	char tls_client_cert[16];        /* off|optional|require */
	/* [store] */
	char store_uri[SALUS_PATH_MAX];  /* sqlite:PATH (relative to dir) */
	/* [auth] */
	char token_key[SALUS_PATH_MAX];  /* Ed25519 signing key file */
	int token_lifetime;              /* seconds, 300..3600 */
	char jwks_ca_file[SALUS_PATH_MAX];/* PEM CAs trusted for backend clients' JWK Set URLs ("" = the system's) */
	int jwks_cache_s;                /* how long a fetched JWK Set is used, 1..86400 */
	/* [log] */
	char log_level[16];              /* debug|info|warn|error */
	/* [keys] (encryption at rest; docs/security.md) */
	char kek_source[16];             /* file|passphrase|command */
	char kek_file[SALUS_PATH_MAX];   /* KEK key file (source file) */
	char kek_command[SALUS_PATH_MAX];/* shell command printing the KEK (source command) */
	char keyring[SALUS_PATH_MAX];    /* wrapped data keys */
	char patient_keys[SALUS_PATH_MAX]; /* per-patient record keys (crypto-shredding), wrapped */
	int rotation_days;               /* KEK and data-key age `salus key status` flags as due; 0: never */
	/* [audit] (docs/audit.md) */
	int audit_retention_days;        /* `salus audit prune` drops event texts older than this (default 2555 = 7 y) */
	int audit_flush_ms;
	int audit_checkpoint_s;          /* a signed checkpoint this often when the log grew (default 60) */              /* longest wait of a journaled event for the log's commit (default 10) */
	/* [policy] (docs/security.md "The access decision") */
	char relationship[16];           /* none | practitioner: which patients staff user/ scopes reach */
	int break_glass_max_minutes;     /* longest break-glass time box (1..1440) */
	char label_roles[128];           /* staff roles that see R and sensitivity-labelled resources */
	char label_v_roles[128];         /* staff roles that also see V (very restricted) ones */
};

/* Defaults for a data directory `dir` (not read from disk). */
void salus_config_defaults(struct salus_config *c, const char *dir);
/* Load DIR/salus.ini over the defaults.  Errors: SALUS_ENOTFOUND (no such
 * data directory or file), SALUS_EINVALID (bad line or value; *why says which
 * key, never a value). */
int salus_config_load(struct salus_config *c, const char *dir, const char **why /* OUT */);
/* Set one key ("server.listen") from a string; SALUS_EINVALID for an unknown
 * key or bad value. */
int salus_config_set(struct salus_config *c, const char *key, const char *value);
/* Apply `--section.key VALUE` / `--section.key=VALUE` pairs from argv; other
 * arguments are left alone.  Consumed arguments are replaced by NULL. */
int salus_config_override(struct salus_config *c, int argc, char **argv, const char **why /* OUT */);
/* Resolve a path from the config against the data directory into out. */
int salus_config_path(const struct salus_config *c, const char *p, char out[SALUS_PATH_MAX] /* OUT */);
/* Write the documented default file for c to path (mode 0600); SALUS_EIO on failure. */
int salus_config_write(const struct salus_config *c, const char *path);

#endif
