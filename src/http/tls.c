/*
 * tls.c — TLS credentials of the server: certificate reload and mutual TLS
 * (see tls.h and docs/security.md).
 */
#include "http/tls.h"

#include <gnutls/abstract.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/crypto.h"

#define PEM_MAX (1u << 20)
#define MAX_CHAIN 16

/* One certificate chain and its key, never changed once loaded. */
struct creds {
	gnutls_pcert_st certs[MAX_CHAIN];
	unsigned ncerts;
	gnutls_privkey_t key;
	struct creds *older; /* every set loaded before, freed with the server */
};

struct salus_tls {
	pthread_mutex_t mu;           /* reloads */
	struct creds *_Atomic cur;    /* what new handshakes get */
	char cert_path[SALUS_PATH_MAX], key_path[SALUS_PATH_MAX];
	char *trust;                  /* client CA PEM, or NULL */
	enum salus_client_cert mode;
};

/* GnuTLS's retrieve callback has no closure: one server per process. */
static struct salus_tls *_Atomic the_tls;

int salus_tls_client_cert_parse(const char *s, enum salus_client_cert *out)
{
	static const char *const names[] = {"off", "optional", "require"};
	for (int i = 0; i < 3; i++)
		if (s && !strcmp(s, names[i])) {
			*out = (enum salus_client_cert)i;
			return SALUS_OK;
		}
	return SALUS_EINVALID;
}

static int read_pem(const char *path, char **out, size_t *n)
{
	FILE *f = fopen(path, "rb");
	struct salus_buf b;
	char chunk[4096];
	size_t k;
	int rc = SALUS_OK;

	if (!f)
		return SALUS_EIO;
	salus_buf_init(&b, PEM_MAX);
	while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = salus_buf_add(&b, chunk, k);
	if (ferror(f))
		rc = SALUS_EIO;
	fclose(f);
	if (!rc && !b.n)
		rc = SALUS_EINVALID;
	if (rc) {
		salus_buf_release(&b);
		return rc;
	}
	*out = salus_buf_detach(&b, n);
	return *out ? SALUS_OK : SALUS_ENOMEM;
}

static void creds_free(struct creds *c)
{
	while (c) {
		struct creds *o = c->older;
		for (unsigned i = 0; i < c->ncerts; i++)
			gnutls_pcert_deinit(&c->certs[i]);
		if (c->key)
			gnutls_privkey_deinit(c->key);
		salus_free(c);
		c = o;
	}
}

/* The private key's PEM: a key file sealed under the keyring's file key
 * (`salus key seal-files`, crypto.h) is opened, in secure memory (*secure);
 * a plain PEM (as a certificate tool writes it) is read as it is. */
static int read_key(const char *path, char **out, size_t *n, bool *secure)
{
	char *pem = NULL;
	size_t k = 0;
	int rc = read_pem(path, &pem, &k);
	if (rc)
		return rc;
	static const char magic[] = "salus-sealed-v1\n";
	if (k < sizeof magic - 1 || memcmp(pem, magic, sizeof magic - 1)) {
		*out = pem;
		*n = k;
		*secure = false;
		return SALUS_OK;
	}
	memset(pem, 0, k);
	salus_free(pem);
	*secure = true;
	rc = salus_keyfile_read_big(path, out, n, NULL);
	if (rc)
		salus_log(SALUS_LOG_ERROR, "tls.key", "sealed=1 rc=%d", rc);
	return rc;
}

/* Parse the chain and key files; the key must match the first certificate. */
static int creds_load(const char *cert_path, const char *key_path, struct creds **out)
{
	char *cpem = NULL, *kpem = NULL;
	size_t cn = 0, kn = 0;
	bool ksecure = false;
	struct creds *c;
	int rc;

	if (!(c = salus_calloc(1, sizeof *c)))
		return SALUS_ENOMEM;
	if ((rc = read_pem(cert_path, &cpem, &cn)) || (rc = read_key(key_path, &kpem, &kn, &ksecure)))
		goto out;
	gnutls_datum_t cd = {(unsigned char *)cpem, (unsigned)cn}, kd = {(unsigned char *)kpem, (unsigned)kn};
	c->ncerts = MAX_CHAIN;
	rc = SALUS_EINVALID;
	if (gnutls_pcert_list_import_x509_raw(c->certs, &c->ncerts, &cd, GNUTLS_X509_FMT_PEM, 0) < 0 || !c->ncerts) {
		c->ncerts = 0;
		goto out;
	}
	if (gnutls_privkey_init(&c->key) < 0) {
		c->key = NULL;
		goto out;
	}
	if (gnutls_privkey_import_x509_raw(c->key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) < 0)
		goto out;
	/* the key must be the first certificate's */
	gnutls_pubkey_t pub = NULL;
	unsigned char kid[64], cid[64];
	size_t kidn = sizeof kid, cidn = sizeof cid;
	if (gnutls_pubkey_init(&pub) < 0)
		goto out;
	int bad = gnutls_pubkey_import_privkey(pub, c->key, 0, 0) < 0 || gnutls_pubkey_get_key_id(pub, 0, kid, &kidn) < 0 ||
		  gnutls_pubkey_get_key_id(c->certs[0].pubkey, 0, cid, &cidn) < 0 || kidn != cidn ||
		  memcmp(kid, cid, kidn);
	gnutls_pubkey_deinit(pub);
	if (bad)
		goto out;
	rc = SALUS_OK;
out:
	if (kpem && ksecure) {
		salus_keyfile_text_free(kpem);
	} else if (kpem) {
		memset(kpem, 0, kn);
		salus_free(kpem);
	}
	salus_free(cpem);
	if (rc) {
		creds_free(c);
		return rc;
	}
	*out = c;
	return SALUS_OK;
}

int salus_tls_new(const struct salus_config *cfg, struct salus_tls **out, const char **trust_pem)
{
	struct salus_tls *t;
	int rc;

	if (!(t = salus_calloc(1, sizeof *t)))
		return SALUS_ENOMEM;
	pthread_mutex_init(&t->mu, NULL);
	if ((rc = salus_tls_client_cert_parse(cfg->tls_client_cert, &t->mode)) ||
	    (rc = salus_config_path(cfg, cfg->tls_cert, t->cert_path)) ||
	    (rc = salus_config_path(cfg, cfg->tls_key, t->key_path)))
		goto out_free;
	struct creds *c = NULL;
	if ((rc = creds_load(t->cert_path, t->key_path, &c)))
		goto out_free;
	atomic_store(&t->cur, c);
	if (t->mode != SALUS_CLIENT_CERT_OFF) {
		char ca[SALUS_PATH_MAX];
		size_t n = 0;
		rc = SALUS_EINVALID;
		if (!cfg->tls_client_ca[0] || salus_config_path(cfg, cfg->tls_client_ca, ca) ||
		    (rc = read_pem(ca, &t->trust, &n)))
			goto out_free;
		/* it must hold at least one certificate */
		gnutls_x509_crt_t tmp[MAX_CHAIN];
		unsigned k = MAX_CHAIN;
		gnutls_datum_t d = {(unsigned char *)t->trust, (unsigned)n};
		int got = gnutls_x509_crt_list_import(tmp, &k, &d, GNUTLS_X509_FMT_PEM, GNUTLS_X509_CRT_LIST_IMPORT_FAIL_IF_EXCEED);
		for (int i = 0; i < got; i++)
			gnutls_x509_crt_deinit(tmp[i]);
		if (got < 1) {
			rc = SALUS_EINVALID;
			goto out_free;
		}
	}
	atomic_store(&the_tls, t);
	*out = t;
	*trust_pem = t->trust;
	return SALUS_OK;
out_free:
	salus_tls_free(t);
	return rc;
}

void salus_tls_free(struct salus_tls *t)
{
	if (!t)
		return;
	struct salus_tls *expect = t;
	atomic_compare_exchange_strong(&the_tls, &expect, NULL);
	creds_free(atomic_load(&t->cur));
	salus_free(t->trust);
	pthread_mutex_destroy(&t->mu);
	salus_free(t);
}

int salus_tls_reload(struct salus_tls *t)
{
	struct creds *c = NULL;
	int rc;

	pthread_mutex_lock(&t->mu);
	rc = creds_load(t->cert_path, t->key_path, &c);
	if (!rc) {
		c->older = atomic_load(&t->cur);
		atomic_store(&t->cur, c);
	}
	pthread_mutex_unlock(&t->mu);
	salus_log(rc ? SALUS_LOG_ERROR : SALUS_LOG_INFO, "tls.reload", "ok=%d certs=%u", !rc, rc ? 0 : c->ncerts);
	return rc;
}

int salus_tls_cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
	(void)session;
	(void)req_ca_dn;
	(void)nreqs;
	(void)pk_algos;
	(void)pk_algos_length;
	struct salus_tls *t = atomic_load(&the_tls);
	struct creds *c = t ? atomic_load(&t->cur) : NULL;
	if (!c)
		return -1;
	/* ours, never freed by GnuTLS: kept until the server stops */
	*pcert = c->certs;
	*pcert_length = c->ncerts;
	*privkey = c->key;
	return 0;
}

/* During the handshake, once the client's certificate arrived: it must chain
 * to client_ca (the trust list libmicrohttpd gave the credentials).  Without
 * one GnuTLS has already refused under "require"; "optional" lets it in. */
static int verify_client(gnutls_session_t s)
{
	unsigned status = 0, n = 0;
	if (!gnutls_certificate_get_peers(s, &n) || !n)
		return 0;
	if (gnutls_certificate_verify_peers2(s, &status) < 0 || status) {
		salus_log(SALUS_LOG_WARN, "tls.client_cert", "verified=0 status=%u", status);
		return -1;
	}
	return 0;
}

void salus_tls_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			     enum MHD_ConnectionNotificationCode toe)
{
	struct salus_tls *t = cls;
	(void)socket_context;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED || !t || t->mode == SALUS_CLIENT_CERT_OFF)
		return;
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session)
		return;
	gnutls_session_t s = (gnutls_session_t)ci->tls_session;
	gnutls_certificate_server_set_request(s, t->mode == SALUS_CLIENT_CERT_REQUIRE ? GNUTLS_CERT_REQUIRE
										   : GNUTLS_CERT_REQUEST);
	/* a certificate the client sends must chain to client_ca: checked in the handshake */
	gnutls_session_set_verify_function(s, verify_client);
}
