/*
 * server.h — the HTTPS server: libmicrohttpd with GnuTLS, a route table and
 * the request phases of DESIGN.md §2:
 *   limits (size, content type) → route → authenticate (bearer token)
 *   → authorise (SMART scopes) → handler → security headers → log.
 * Reads run on the libmicrohttpd worker threads (one per core, epoll);
 * writes and token requests, which wait for a group commit or Argon2id, are
 * handed to a blocking-work pool and their connection is suspended meanwhile,
 * so a few threads keep many writes in flight (that is what lets the store
 * batch them into one fsync).
 */
#ifndef SALUS_HTTP_SERVER_H
#define SALUS_HTTP_SERVER_H

#include "auth/auth.h"
#include "core/config.h"
#include "store/store.h"

struct salus_http; /* opaque */

/* Start serving on cfg->listen with the TLS files of cfg ([tls] cert, key;
 * client_cert and client_ca for mutual TLS: http/tls.h).  Borrowed: cfg,
 * store, auth (they must outlive the server).  Errors: SALUS_EIO (cannot read
 * the TLS files or bind), SALUS_EINVALID (bad listen address, TLS files that
 * do not parse or match, client_cert without client_ca). */
int salus_http_start(const struct salus_config *cfg, struct salus_store *store, struct salus_auth *auth,
		     struct salus_http **out /* OUT */);
/* Stop accepting, finish in-flight requests, free.  NULL-safe. */
void salus_http_stop(struct salus_http *h);
/* Read [tls] cert and key again (SIGHUP): new connections get the new
 * certificate, established ones keep theirs.  A pair that does not load is
 * refused and the old one kept.  Errors: SALUS_EIO, SALUS_EINVALID. */
int salus_http_reload_tls(struct salus_http *h);
/* The port actually bound (useful with port 0). */
int salus_http_port(const struct salus_http *h);

#endif
