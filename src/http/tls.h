/*
 * tls.h — the server's TLS credentials (docs/security.md "TLS: certificate
 * reload and mutual TLS"), internal to the http module.
 *
 * Certificate reload: libmicrohttpd cannot swap its credentials in place, so
 * the daemon is started with MHD_OPTION_HTTPS_CERT_CALLBACK and GnuTLS asks
 * salus_tls_cert_cb for the certificate during every handshake; the callback
 * hands out the credential set loaded last.  salus_tls_reload (SIGHUP in
 * `salus serve`) reads [tls] cert and key again and, when both parse and
 * match, makes them the current set; a bad pair is refused and the old one
 * kept.  Connections already established keep the certificate they were
 * handshaken with; older sets are freed only when the server stops (GnuTLS may
 * still refer to them from a session).
 *
 * Mutual TLS: with [tls] client_cert = require|optional and client_ca = FILE,
 * the CA file is given to libmicrohttpd (MHD_OPTION_HTTPS_MEM_TRUST) and
 * salus_tls_on_connection (MHD_OPTION_NOTIFY_CONNECTION, called before the
 * handshake) sets every session to require (or request) a client certificate
 * that is verified against that CA during the handshake (a per-session
 * verify function: gnutls_certificate_verify_peers2): a missing (require) or
 * untrusted certificate fails the handshake, before any HTTP byte is read.
 */
#ifndef SALUS_HTTP_TLS_H
#define SALUS_HTTP_TLS_H
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>

#include "core/config.h"

enum salus_client_cert { SALUS_CLIENT_CERT_OFF, SALUS_CLIENT_CERT_OPTIONAL, SALUS_CLIENT_CERT_REQUIRE };

/* Parse "off" / "optional" / "require".  SALUS_EINVALID otherwise. */
int salus_tls_client_cert_parse(const char *s, enum salus_client_cert *out /* OUT */);

struct salus_tls; /* opaque */

/* Load the certificate chain and key of cfg (and, with client certificates
 * on, the CA file: *trust_pem gets it, borrowed until salus_tls_free, for
 * MHD_OPTION_HTTPS_MEM_TRUST; NULL when off).  Errors: SALUS_EIO (unreadable
 * file), SALUS_EINVALID (not PEM, key does not match, client_cert set
 * without client_ca), SALUS_ENOMEM. */
int salus_tls_new(const struct salus_config *cfg, struct salus_tls **out /* OUT */, const char **trust_pem /* OUT */);
/* Free every credential set ever loaded.  After the daemon stopped.  NULL-safe. */
void salus_tls_free(struct salus_tls *t);

/* Read cert and key again; on success new handshakes use them.  Errors as
 * salus_tls_new (the current set stays in use). */
int salus_tls_reload(struct salus_tls *t);

/* MHD_OPTION_HTTPS_CERT_CALLBACK (a gnutls_certificate_retrieve_function2). */
int salus_tls_cert_cb(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
		      const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
		      unsigned int *pcert_length, gnutls_privkey_t *privkey);
/* MHD_OPTION_NOTIFY_CONNECTION, with the struct salus_tls as closure. */
void salus_tls_on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			     enum MHD_ConnectionNotificationCode toe);

#endif
