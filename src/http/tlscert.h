/*
 * tlscert.h — a self-signed TLS certificate for a new data directory
 * (GnuTLS: ECDSA P-256, SHA-256, CN and subjectAltName localhost + 127.0.0.1
 * + ::1 + the host name, valid for one year).  Production sites pass their
 * own certificate to `salus init --tls-cert/--tls-key`.
 */
#ifndef SALUS_HTTP_TLSCERT_H
#define SALUS_HTTP_TLSCERT_H

/* Write cert_path (0644) and key_path (0600, PEM, created exclusively).
 * Errors: SALUS_EIO, SALUS_ECRYPTO. */
int salus_tls_selfsigned(const char *cert_path, const char *key_path);

#endif
