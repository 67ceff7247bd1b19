/* config.c — defaults, INI loading (libinih), overrides (see config.h). */
#include "core/config.h"

#include <ini.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"

void salus_config_defaults(struct salus_config *c, const char *dir)
{
	memset(c, 0, sizeof *c);
	snprintf(c->dir, sizeof c->dir, "%s", dir);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:8443");
	c->threads = 0;
	c->max_body = SALUS_MAX_BODY;
	c->max_connections = SALUS_MAX_CONNECTIONS;
	c->idle_timeout = SALUS_IDLE_TIMEOUT_S;
	c->rate_limit = 1000;
	snprintf(c->tls_cert, sizeof c->tls_cert, "tls/cert.pem");
	snprintf(c->tls_key, sizeof c->tls_key, "tls/key.pem");
	snprintf(c->tls_client_cert, sizeof c->tls_client_cert, "off");
	/* TLS 1.3 and 1.2 only, AEAD ciphers with forward secrecy. */
	snprintf(c->tls_priorities, sizeof c->tls_priorities,
		 "SECURE192:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:"
		 "+CHACHA20-POLY1305:+AES-128-GCM:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:"
		 "%%SERVER_PRECEDENCE");
	snprintf(c->store_uri, sizeof c->store_uri, "sqlite:salus.db");
	snprintf(c->token_key, sizeof c->token_key, "keys/token.key");
	c->token_lifetime = 900;
	c->jwks_cache_s = 300;
	snprintf(c->log_level, sizeof c->log_level, "info");
	snprintf(c->kek_source, sizeof c->kek_source, "file");
	snprintf(c->kek_file, sizeof c->kek_file, "keys/kek.key");
	snprintf(c->keyring, sizeof c->keyring, "keys/keyring.json");
	snprintf(c->patient_keys, sizeof c->patient_keys, "keys/patient-keys.db");
	c->rotation_days = 90;
	c->audit_retention_days = 2555; /* 7 years (HIPAA keeps documentation 6) */
	c->audit_flush_ms = 25;
	c->audit_checkpoint_s = 60;
	snprintf(c->relationship, sizeof c->relationship, "none");
	c->break_glass_max_minutes = 240;
	snprintf(c->label_roles, sizeof c->label_roles, "clinician nurse");
	c->label_v_roles[0] = 0;
}

/* A list of role names: words of a-z and '-', separated by spaces or commas (may be empty). */
static bool roles_ok(const char *v)
{
	for (; *v; v++)
		if (!((*v >= 'a' && *v <= 'z') || *v == '-' || *v == ' ' || *v == ','))
			return false;
	return true;
}

static int set_str(char *dst, size_t cap, const char *v)
{
	size_t n = strlen(v);
	if (n >= cap)
		return SALUS_EINVALID;
	memcpy(dst, v, n + 1);
	return 0;
}

static int set_int(long *dst, const char *v, long min, long max)
{
	struct salus_slice s = {v, strlen(v)};
	return salus_parse_long(s, min, max, dst);
}

int salus_config_set(struct salus_config *c, const char *key, const char *v)
{
	long n;
	int rc;
#define STR(k, f)               \
	if (!strcmp(key, k))    \
		return set_str(c->f, sizeof c->f, v);
#define INT(k, f, lo, hi)                                   \
	if (!strcmp(key, k)) {                              \
		if ((rc = set_int(&n, v, lo, hi)))          \
			return rc;                          \
		c->f = (__typeof__(c->f))n;                 \
		return 0;                                   \
	}
	STR("server.listen", listen)
	STR("server.base_url", base_url)
	INT("server.threads", threads, 0, 256)
	INT("server.max_body", max_body, 1024, SALUS_MAX_BODY)
	INT("server.max_connections", max_connections, 1, 65536)
	INT("server.idle_timeout", idle_timeout, 1, 3600)
	INT("server.rate_limit", rate_limit, 0, 100000000)
	STR("tls.cert", tls_cert)
	STR("tls.key", tls_key)
	STR("tls.priorities", tls_priorities)
	STR("tls.client_ca", tls_client_ca)
	if (!strcmp(key, "tls.client_cert")) {
		if (strcmp(v, "off") && strcmp(v, "optional") && strcmp(v, "require"))
			return SALUS_EINVALID;
		return set_str(c->tls_client_cert, sizeof c->tls_client_cert, v);
	}
	STR("store.uri", store_uri)
	STR("auth.token_key", token_key)
	INT("auth.token_lifetime", token_lifetime, 300, 3600)
	STR("auth.jwks_ca_file", jwks_ca_file)
	INT("auth.jwks_cache_s", jwks_cache_s, 1, 86400)
	if (!strcmp(key, "keys.kek_source")) {
		if (strcmp(v, "file") && strcmp(v, "passphrase") && strcmp(v, "command"))
			return SALUS_EINVALID;
		return set_str(c->kek_source, sizeof c->kek_source, v);
	}
	STR("keys.kek_file", kek_file)
	STR("keys.kek_command", kek_command)
	STR("keys.keyring", keyring)
	STR("keys.patient_keys", patient_keys)
	INT("keys.rotation_days", rotation_days, 0, 3650)
	INT("keys.rotate_days", rotation_days, 0, 3650) /* the same setting, by the name the issue uses */
	INT("audit.retention_days", audit_retention_days, 1, 36500)
	INT("audit.flush_ms", audit_flush_ms, 1, 10000)
	INT("audit.checkpoint_s", audit_checkpoint_s, 1, 86400)
	if (!strcmp(key, "policy.relationship")) {
		if (strcmp(v, "none") && strcmp(v, "practitioner"))
			return SALUS_EINVALID;
		return set_str(c->relationship, sizeof c->relationship, v);
	}
	INT("policy.break_glass_max_minutes", break_glass_max_minutes, 1, 1440)
	if (!strcmp(key, "policy.label_roles") || !strcmp(key, "policy.label_v_roles")) {
		if (!roles_ok(v))
			return SALUS_EINVALID;
		return key[13] == 'v' ? set_str(c->label_v_roles, sizeof c->label_v_roles, v)
				      : set_str(c->label_roles, sizeof c->label_roles, v);
	}
	if (!strcmp(key, "log.level")) {
		if (strcmp(v, "debug") && strcmp(v, "info") && strcmp(v, "warn") && strcmp(v, "error"))
			return SALUS_EINVALID;
		return set_str(c->log_level, sizeof c->log_level, v);
	}
#undef STR
#undef INT
	return SALUS_EINVALID;
}

struct load_ctx {
	struct salus_config *c;
	char bad[96];
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *lc = user;
	char key[128];
	int k = snprintf(key, sizeof key, "%s.%s", section, name);
	if (k < 0 || (size_t)k >= sizeof key || salus_config_set(lc->c, key, value)) {
		if (!lc->bad[0])
			snprintf(lc->bad, sizeof lc->bad, "%.40s.%.40s", section, name);
		return 0;
	}
	return 1;
}

int salus_config_load(struct salus_config *c, const char *dir, const char **why)
{
	static _Thread_local char msg[160];
	char abs[PATH_MAX];
	if (!realpath(dir, abs)) {
		*why = "data directory not found";
		return SALUS_ENOTFOUND;
	}
	salus_config_defaults(c, abs);
	char path[SALUS_PATH_MAX + 16];
	snprintf(path, sizeof path, "%s/salus.ini", abs);
	FILE *f = fopen(path, "r");
	if (!f) {
		*why = "no salus.ini in the data directory (run salus init)";
		return SALUS_ENOTFOUND;
	}
	struct load_ctx lc = {c, ""};
	int line = ini_parse_file(f, on_ini, &lc);
	fclose(f);
	if (line) {
		if (lc.bad[0])
			snprintf(msg, sizeof msg, "salus.ini line %d: bad or unknown key %s", line, lc.bad);
		else
			snprintf(msg, sizeof msg, "salus.ini line %d: syntax error", line);
		*why = msg;
		return SALUS_EINVALID;
	}
	return 0;
}

int salus_config_override(struct salus_config *c, int argc, char **argv, const char **why)
{
	static _Thread_local char msg[160];
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!a || strncmp(a, "--", 2) || !strchr(a, '.'))
			continue;
		char key[128];
		const char *eq = strchr(a, '=');
		const char *val;
		size_t kn = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
		if (kn >= sizeof key)
			goto bad;
		memcpy(key, a + 2, kn);
		key[kn] = 0;
		if (eq) {
			val = eq + 1;
		} else {
			if (i + 1 >= argc || !argv[i + 1])
				goto bad;
			val = argv[i + 1];
			argv[i + 1] = NULL;
		}
		if (salus_config_set(c, key, val))
			goto bad;
		argv[i] = NULL;
		if (!eq)
			i++;
		continue;
	bad:
		snprintf(msg, sizeof msg, "bad or unknown setting %.60s", a);
		*why = msg;
		return SALUS_EINVALID;
	}
	return 0;
}

int salus_config_path(const struct salus_config *c, const char *p, char out[SALUS_PATH_MAX])
{
	int n = p[0] == '/' ? snprintf(out, SALUS_PATH_MAX, "%s", p)
			    : snprintf(out, SALUS_PATH_MAX, "%s/%s", c->dir, p);
	return n < 0 || n >= SALUS_PATH_MAX ? SALUS_EINVALID : 0;
}

int salus_config_write(const struct salus_config *c, const char *path)
{
	FILE *f = fopen(path, "wx");
	if (!f)
		return SALUS_EIO;
	fprintf(f,
		"; Salus configuration (docs/configuration.md).  Relative paths are relative to this directory.\n"
		"; Every key can be overridden on the command line: --section.key VALUE\n\n"
		"[server]\n"
		"listen = %s          ; host:port to serve HTTPS on (there is no plaintext listener)\n"
		"base_url = %s                    ; public base URL; empty: https://<listen>\n"
		"threads = %d                      ; worker threads; 0 = one per core\n"
		"max_body = %ld             ; largest request body in bytes\n"
		"max_connections = %d\n"
		"idle_timeout = %d                ; seconds before an idle connection is closed\n"
		"rate_limit = %ld                ; requests per minute per client address (429 beyond); 0 = off\n\n"
		"[tls]\n"
		"cert = %s\n"
		"key = %s\n"
		"priorities = %s\n"
		"client_cert = %s                ; off | optional | require: mutual TLS for backend links\n"
		"client_ca = %s                   ; PEM CA file client certificates must chain to\n\n"
		"[store]\n"
		"uri = %s\n\n"
		"[auth]\n"
		"token_key = %s\n"
		"token_lifetime = %d              ; access-token lifetime in seconds (300..3600)\n"
		"jwks_ca_file = %s                  ; PEM CAs for backend clients' --jwks-url (empty: the system's)\n"
		"jwks_cache_s = %d                ; seconds a fetched JWK Set is used (1..86400)\n\n"
		"[log]\n"
		"level = %s\n",
		c->listen, c->base_url, c->threads, c->max_body, c->max_connections, c->idle_timeout, c->rate_limit, c->tls_cert,
		c->tls_key, c->tls_priorities, c->tls_client_cert, c->tls_client_ca, c->store_uri, c->token_key, c->token_lifetime,
		c->jwks_ca_file, c->jwks_cache_s, c->log_level);
	fprintf(f,
		"\n[keys]\n"
		"; encryption at rest (docs/security.md): where the key-encryption key (KEK) comes from\n"
		"kek_source = %s                 ; file | passphrase (SALUS_KEK_PASSPHRASE) | command\n"
		"kek_file = %s\n"
		"kek_command = %s                    ; e.g. /usr/local/bin/kms-get-kek (prints the KEK; SALUS_KEK_VERSION=N)\n"
		"keyring = %s\n"
		"patient_keys = %s  ; per-patient record keys (salus patient erase); back up apart from the database\n"
		"rotation_days = %d               ; `salus key status` flags keys older than this; 0 = never\n",
		c->kek_source, c->kek_file, c->kek_command, c->keyring, c->patient_keys, c->rotation_days);
	fprintf(f,
		"\n[audit]\n"
		"retention_days = %d            ; `salus audit prune` drops the text of older events (hashes stay)\n"
		"flush_ms = %d                    ; a read's AuditEvent is in the journal file before the answer, in the\n"
		"                                  ; Merkle log (fsync'd) within this many ms (docs/audit.md)\n"
		"checkpoint_s = %d                ; a signed checkpoint this often when the log grew (also on demand)\n",
		c->audit_retention_days, c->audit_flush_ms, c->audit_checkpoint_s);
	fprintf(f,
		"\n[policy]\n"
		"; docs/security.md \"The access decision\"\n"
		"relationship = %s               ; none: staff reach every patient | practitioner: only patients whose\n"
		"                                  ; generalPractitioner, CareTeam or Encounter names the user's Practitioner\n"
		"break_glass_max_minutes = %d     ; longest POST /auth/break-glass time box (1..1440)\n"
		"label_roles = %s       ; staff roles that see resources labelled R (restricted) or sensitive\n"
		"                                  ; (PSY, HIV, ETH, SUD...); other staff and proxies do not\n"
		"label_v_roles = %s               ; staff roles that also see V (very restricted); others: break-glass\n",
		c->relationship, c->break_glass_max_minutes, c->label_roles, c->label_v_roles);
	return fclose(f) ? SALUS_EIO : 0;
}
