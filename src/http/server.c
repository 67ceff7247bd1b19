/*
 * server.c — libmicrohttpd glue, the route table and the request phases
 * (see server.h).  One `struct req` per request, created on the first
 * access-handler call and freed in the request-completed callback.
 */
#include "http/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "fhir/access.h" /* salus_fhir_access_consents */
#include "fhir/json_out.h"
#include "fhir/rest.h"
#include "http/admin.h"
#include "http/audit_phase.h"
#include "http/pool.h"
#include "http/ratelimit.h"
#include "http/tls.h"
#include "policy/policy.h"
#include "auth/oauth.h"

#define MAX_PARAMS 128
#define WORKERS 64 /* blocking-work threads: writes in flight for group commit */
#define AUTH_RATE_PER_MIN 120 /* per address on login/token/introspect/revoke (docs/security.md) */

struct salus_http {
	struct MHD_Daemon *d;
	const struct salus_config *cfg;
	struct salus_store *store;
	struct salus_auth *auth;
	struct salus_pool *pool;
	struct salus_ratelimit *rl;
	struct salus_ratelimit *rl_login; /* stricter bucket for /auth/authorize POST, token, introspect, revoke */
	struct salus_audit *audit; /* the audit trail: /audit routes, checkpoints every minute */
	struct salus_policy_config pcfg; /* [policy] (policy/policy.h) */
	char base[600];      /* https://host:port */
	char fhir_base[620]; /* base + /fhir */
	struct salus_tls *tls; /* certificate (reloadable) and client-certificate settings */
	int port;
};

/* libmicrohttpd's per-connection memory pool (request line and headers, the
 * response header): room for SALUS_MAX_HEADER + SALUS_MAX_URL and MHD's own
 * use.  Not larger: libmicrohttpd 0.9.75 zeroes the whole pool after every
 * request (MHD_pool_reset), so its size is a memset per request. */
#define CONN_POOL (SALUS_MAX_HEADER * 2)
_Static_assert(CONN_POOL >= SALUS_MAX_HEADER + SALUS_MAX_URL + 4096, "connection pool too small");

enum req_state { REQ_NEW, REQ_BODY, REQ_WORKING, REQ_READY, REQ_SENT };

struct req {
	struct salus_http *h;
	struct MHD_Connection *conn;
	const char *method; /* borrowed from MHD for the request's lifetime */
	const char *url;
	enum req_state state;
	int too_large;
	uint64_t discarded; /* body bytes thrown away after too_large */
	int64_t t0;
	const char *route; /* for the log line: a route name, never the URL */
	struct salus_buf body;
	/* parameters (query, or form body of _search) */
	struct salus_param params[MAX_PARAMS];
	size_t nparams;
	int params_overflow;
	/* the FHIR request and response */
	struct salus_fhir_req frq;
	struct salus_fhir_resp frs;
	const char *content_type; /* of the response */
	const char *www_auth;     /* WWW-Authenticate value, or NULL */
	int retry_after;          /* seconds, for 429 */
	char client_id[SALUS_CLIENT_ID_MAX + 1]; /* the authenticated client, for the audit trail */
	char remote[INET6_ADDRSTRLEN];           /* the peer address, for the audit trail */
	int no_cache;             /* add Pragma: no-cache (token responses) */
	char *redirect;           /* Location of an /auth/authorize 302 (owned), or NULL */
	char set_cookie[160];     /* Set-Cookie value, or "" */
	/* the principal, kept for the request: its scopes back the access decision */
	struct salus_principal who;
	bool has_who;
	bool write_audited; /* the write's AuditEvent committed with it (audited_write) */
	bool preflight;     /* a CORS preflight (OPTIONS) answered with the Allow-* headers */
	int cork_fd;        /* the socket corked by send_response until on_completed, or -1 */
	/* last: ~47 KB, most of it a denial array that is never cleared (new_req) */
	struct salus_policy pol; /* the access decision (policy/policy.h), given to the FHIR layer */
};

/* A zeroed request, except the policy's denial array (salus_policy_clear):
 * calloc of the whole ~50 KB struct would be a memset per request. */
static struct req *new_req(void)
{
	struct req *r = salus_malloc(sizeof *r);
	if (r) {
		memset(r, 0, offsetof(struct req, pol));
		r->cork_fd = -1;
		salus_policy_clear(&r->pol);
	}
	return r;
}

/* ---- small helpers ---------------------------------------------------- */

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static const char *header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static void add_security_headers(struct MHD_Response *resp)
{
	MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=63072000; includeSubDomains");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
	MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

/* Routes a browser app on another origin may call with fetch() (SMART App Launch: the
 * discovery documents, the token endpoint, revocation, the JWKS and the FHIR API).  They
 * authenticate by the Authorization header or the request body, never by cookies, so
 * they answer any Origin with `Access-Control-Allow-Origin: *` and no credentials
 * (docs/security.md "CORS").  The login pages (/auth/authorize, cookie-bound) and
 * /audit never do. */
static bool cors_route(const char *u)
{
	return !strcmp(u, "/fhir") || !strncmp(u, "/fhir/", 6) || !strcmp(u, "/auth/token") ||
	       !strcmp(u, "/auth/revoke") || !strcmp(u, "/auth/jwks") || !strcmp(u, "/.well-known/smart-configuration") ||
	       !strcmp(u, "/.well-known/openid-configuration");
}

static void add_cors_headers(struct req *r, struct MHD_Response *resp)
{
	if (!cors_route(r->url) || !header(r, "Origin"))
		return;
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	if (r->preflight) {
		MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, PATCH, DELETE");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
					"Authorization, Content-Type, Accept, Prefer, If-Match, If-None-Match, "
					"If-Modified-Since, If-None-Exist");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
	} else {
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
					"Location, Content-Location, ETag, Last-Modified, WWW-Authenticate, Retry-After");
	}
}

/* Set an OperationOutcome error as the response. */
static void set_error(struct req *r, int rc, const char *why)
{
	r->frs.status = salus_fhir_outcome(&r->frs.body, rc, why, NULL);
	r->content_type = "application/fhir+json; charset=utf-8";
}

/* One transmission per response.  Over TLS libmicrohttpd writes the header
 * and the body as separate records, each its own sendmsg that the kernel
 * pushes at once (TCP_NODELAY): on loopback every push runs the receiver's
 * TCP path and wakes it, ~8 % of the server's CPU on a one-hit search.  The
 * socket is corked while the response is written (libmicrohttpd sets no
 * cork of its own on TLS writes of a complete response, docs/search.md) and
 * uncorked in on_completed, called once the last byte is handed to the
 * kernel: full segments still leave as they fill, the rest with the uncork. */
static void cork(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	int on = 1;
	if (ci && !setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on))
		r->cork_fd = ci->connect_fd;
}

static void uncork(struct req *r)
{
	int off = 0;
	if (r->cork_fd >= 0)
		(void)setsockopt(r->cork_fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
	r->cork_fd = -1;
}

static enum MHD_Result send_response(struct req *r)
{
	size_t len;
	char *body = salus_buf_detach(&r->frs.body, &len);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer_with_free_callback(len, body ? body : NULL, salus_free);
	if (!resp) {
		salus_free(body);
		return MHD_NO;
	}
	add_security_headers(resp);
	add_cors_headers(r, resp);
	if (len || (r->frs.status != 204 && r->frs.status != 304))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
					r->content_type ? r->content_type : "application/fhir+json; charset=utf-8");
	if (r->frs.etag[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, r->frs.etag);
	if (r->frs.location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->frs.location);
	if (r->frs.last_modified[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, r->frs.last_modified);
	if (r->www_auth)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, r->www_auth);
	if (r->retry_after) {
		char ra[16];
		snprintf(ra, sizeof ra, "%d", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (r->no_cache)
		MHD_add_response_header(resp, "Pragma", "no-cache");
	if (r->redirect)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->redirect);
	if (r->set_cookie[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, r->set_cookie);
	if (r->frs.status == 405)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST, PUT, PATCH, DELETE");
	cork(r);
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->frs.status, resp);
	MHD_destroy_response(resp);
	r->state = REQ_SENT;
	return ret;
}

static enum MHD_Result collect_param(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct req *r = cls;
	if (r->nparams == MAX_PARAMS) {
		r->params_overflow = 1;
		return MHD_NO;
	}
	char *k = salus_strdup(key);
	char *v = salus_strdup(value ? value : "");
	if (!k || !v) {
		salus_free(k);
		salus_free(v);
		r->params_overflow = 1;
		return MHD_NO;
	}
	r->params[r->nparams++] = (struct salus_param){k, v};
	return MHD_YES;
}

/* Remove _format/_pretty after checking them; 0 or SALUS_ENOTACCEPTABLE. */
static int negotiate(struct req *r)
{
	size_t o = 0;
	int rc = 0;
	for (size_t i = 0; i < r->nparams; i++) {
		struct salus_param *p = &r->params[i];
		if (!strcmp(p->name, "_format")) {
			const char *f = p->value;
			if (strcmp(f, "json") && strcmp(f, "application/json") && strcmp(f, "application/fhir+json") &&
			    strncmp(f, "application/fhir+json;", 22) && strncmp(f, "application/json;", 17))
				rc = SALUS_ENOTACCEPTABLE;
		} else if (!strcmp(p->name, "_pretty")) {
			/* accepted and ignored: responses are compact JSON */
		} else {
			r->params[o++] = *p;
			continue;
		}
		salus_free(p->name);
		salus_free(p->value);
	}
	r->nparams = o;
	if (rc)
		return rc;
	const char *acc = header(r, MHD_HTTP_HEADER_ACCEPT);
	if (acc && *acc && !strstr(acc, "json") && !strstr(acc, "*/*") && !strstr(acc, "application/*"))
		return SALUS_ENOTACCEPTABLE;
	return 0;
}

static int body_content_type_ok(struct req *r)
{
	const char *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct)
		return 0;
	return !strncmp(ct, "application/fhir+json", 21) || !strncmp(ct, "application/json", 16);
}

/* ---- phases ----------------------------------------------------------- */

/* The peer's address as text into r->remote ("" when unknown). */
static inline const char *remote_addr(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	r->remote[0] = 0;
	if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET) {
		/* dotted decimal by hand: inet_ntop's snprintf was a tenth of an audited read's audit phase */
		const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr;
		char *o = r->remote;
		_Static_assert(sizeof r->remote >= sizeof "255.255.255.255", "room for an IPv4 address");
		for (int i = 0; i < 4; i++) {
			unsigned v = a[i];
			if (v >= 100)
				*o++ = (char)('0' + v / 100);
			if (v >= 10)
				*o++ = (char)('0' + v / 10 % 10);
			*o++ = (char)('0' + v % 10);
			*o++ = i < 3 ? '.' : 0;
		}
	} else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, r->remote,
			  sizeof r->remote);
	return r->remote;
}

_Static_assert(SALUS_IA_CREATE == (int)SALUS_POLICY_C && SALUS_IA_READ == (int)SALUS_POLICY_R &&
		       SALUS_IA_UPDATE == (int)SALUS_POLICY_U && SALUS_IA_DELETE == (int)SALUS_POLICY_D &&
		       SALUS_IA_SEARCH == (int)SALUS_POLICY_S && SALUS_POLICY_MAX_SCOPES >= SALUS_MAX_SCOPES,
	       "policy letters follow the SMART letters of auth.h");

/* The access decision (policy/policy.h) of scopes sc held by a caller into *pol. */
static int policy_of(struct salus_http *h, struct salus_policy *pol, const struct salus_scopes *sc, const char *user,
		     const char *fhir_user, const char *patient, const char *role)
{
	struct salus_policy_scope v[SALUS_POLICY_MAX_SCOPES];
	size_t n = sc->n < SALUS_POLICY_MAX_SCOPES ? sc->n : SALUS_POLICY_MAX_SCOPES;
	for (size_t i = 0; i < n; i++)
		v[i] = (struct salus_policy_scope){
			.ctx = sc->v[i].ctx == SALUS_SCOPE_PATIENT ? SALUS_POLICY_CTX_PATIENT
			       : sc->v[i].ctx == SALUS_SCOPE_USER  ? SALUS_POLICY_CTX_USER
								   : SALUS_POLICY_CTX_SYSTEM,
			.type = sc->v[i].type,
			.letters = sc->v[i].perms,
			.query = sc->v[i].query,
		};
	struct salus_policy_token t = {.scopes = v, .n = n, .user_ctx = sc->user_ctx, .user = user,
				       .fhir_user = fhir_user, .patient = patient, .role = role && role[0] ? role : NULL};
	return salus_policy_init(pol, h->store, &h->pcfg, &t);
}

/* The access decision of a principal into r->pol. */
static int build_policy(struct req *r, const struct salus_principal *who)
{
	return policy_of(r->h, &r->pol, who->scopes, who->user_id, who->fhir_user, who->patient, who->role);
}

/* Authenticate and authorise a FHIR interaction; 0 to proceed. */
static int policy(struct req *r)
{
	struct salus_principal who;
	const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	int rc = salus_auth_check(r->h->auth, authz, &who);
	if (rc == SALUS_EUNAUTHORIZED) {
		r->www_auth = salus_auth_challenge(authz);
		set_error(r, rc, "a valid bearer token is required");
		return rc;
	}
	if (rc) {
		set_error(r, rc, NULL);
		return rc;
	}
	snprintf(r->client_id, sizeof r->client_id, "%s", who.client_id);
	enum salus_fhir_access a = salus_fhir_op_access(r->frq.op);
	static const enum salus_policy_letter map[] = {
		[SALUS_ACCESS_C] = SALUS_POLICY_C, [SALUS_ACCESS_R] = SALUS_POLICY_R,
		[SALUS_ACCESS_U] = SALUS_POLICY_U, [SALUS_ACCESS_D] = SALUS_POLICY_D,
		[SALUS_ACCESS_S] = SALUS_POLICY_S,
	};
	r->who = who; /* kept for the request: the decision borrows its scopes */
	r->has_who = true;
	if ((rc = build_policy(r, &who))) {
		set_error(r, rc, NULL);
		return rc;
	}
	r->frq.policy = &r->pol; /* enforced below the REST layer (fhir/access.h) */
	if (r->frq.op == SALUS_FHIR_BUNDLE)
		return 0; /* scopes are checked per entry (bundle_allow), where the types are known */
	const char *type = r->frq.type[0] ? r->frq.type : "*";
	/* a compartment search returns resources of the searched type(s); $everything of any type */
	if (r->frq.op == SALUS_FHIR_SEARCH_COMPARTMENT || r->frq.op == SALUS_FHIR_EVERYTHING)
		type = r->frq.ctype[0] ? r->frq.ctype : "*";
	bool ok = salus_policy_allows(&r->pol, type, map[a]);
	if (!ok) {
		set_error(r, SALUS_EFORBIDDEN, "the token's scopes do not allow this interaction");
		return SALUS_EFORBIDDEN;
	}
	return 0;
}

/* Per-entry authorisation of a batch/transaction (salus_fhir_req.allow). */
static bool bundle_allow(void *ctx, const char *type, enum salus_fhir_access a)
{
	static const enum salus_policy_letter map[] = {
		[SALUS_ACCESS_C] = SALUS_POLICY_C, [SALUS_ACCESS_R] = SALUS_POLICY_R,
		[SALUS_ACCESS_U] = SALUS_POLICY_U, [SALUS_ACCESS_D] = SALUS_POLICY_D,
		[SALUS_ACCESS_S] = SALUS_POLICY_S,
	};
	struct req *r = ctx;
	return r->has_who && salus_policy_allows(&r->pol, type, map[a]);
}

/* ---- the audit phase (docs/audit.md) ---------------------------------- */
#ifndef SALUS_BENCH_NO_AUDIT

/* purposeOfUse of a request's AuditEvent: BTG when it touched a patient the
 * caller reaches through a break-glass grant (policy.h), else none. */
static const char *purpose_of(const struct req *r, const struct salus_patient_set *ps)
{
	for (size_t i = 0; r->pol.nbtg && i < ps->n; i++)
		if (salus_policy_btg_has(&r->pol, ps->ids[i]))
			return "BTG";
	return NULL;
}

/* The event could not be written: nothing of the answer is released (fail closed). */
static void audit_failed(struct req *r)
{
	r->frs.etag[0] = r->frs.location[0] = r->frs.last_modified[0] = 0;
	set_error(r, SALUS_EINTERNAL, "the access could not be audited; nothing was released");
}

/* Record the AuditEvent of a FHIR request through the audit journal
 * (docs/audit.md): when this returns the event is written, and the response
 * may go; if it could not be written, the response becomes a 500. */
static void audit_fhir(struct req *r)
{
	struct salus_patient_set ps = {0};
	struct salus_buf query;
	salus_buf_init(&query, SALUS_MAX_URL * 4);
	enum salus_fhir_op op = r->frq.op;
	const char *type = r->frq.type[0] ? r->frq.type : NULL;
	char id[SALUS_MAX_ID + 1];
	snprintf(id, sizeof id, "%s", r->frq.id);
	/* a created resource's id and version come back in Location / ETag */
	const char *loc = r->frs.location[0] ? strstr(r->frs.location, "/fhir/") : NULL;
	if (!id[0] && loc && type) {
		const char *p = loc + 6 + strlen(type) + 1;
		if (p < r->frs.location + strlen(r->frs.location)) {
			size_t n = strcspn(p, "/");
			if (n <= SALUS_MAX_ID) {
				memcpy(id, p, n);
				id[n] = 0;
			}
		}
	}
	long version = 0;
	if (r->frs.etag[0] == 'W')
		salus_parse_long((struct salus_slice){r->frs.etag + 3, strcspn(r->frs.etag + 3, "\"")}, 1, 1L << 40,
				 &version);
	if (type && !strcmp(type, "Patient") && id[0])
		salus_patient_set_add(&ps, id, strlen(id));
	if (r->frs.status < 400)
		salus_patient_set_scan(&ps, r->frs.body.p, r->frs.body.n);
	bool search = op == SALUS_FHIR_SEARCH_TYPE || op == SALUS_FHIR_SEARCH_SYSTEM ||
		      op == SALUS_FHIR_SEARCH_COMPARTMENT || op == SALUS_FHIR_EVERYTHING;
	if (!search)
		salus_patient_set_scan(&ps, r->body.p, r->body.n);
	int rc = ps.nomem ? SALUS_ENOMEM : 0;
	if (!rc && (search || op == SALUS_FHIR_HISTORY_TYPE || op == SALUS_FHIR_HISTORY_SYSTEM))
		rc = salus_query_string(&query, r->params, r->nparams);
	if (!rc && query.n > SALUS_MAX_URL) { /* percent-encoding can outgrow the URL cap: keep the head */
		query.n = SALUS_MAX_URL;
		query.p[query.n] = 0;
	}
	if (!rc) {
		struct salus_audit_req arq = {
			.interaction = salus_audit_interaction_of(op),
			.resource_type = type,
			.id = id[0] ? id : NULL,
			.version = version,
			.patients = (const char *const *)ps.ids,
			.npatients = ps.n,
			.status = r->frs.status,
			.client_id = r->client_id[0] ? r->client_id : NULL,
			.remote_addr = remote_addr(r)[0] ? r->remote : NULL,
			.query = query.n ? query.p : NULL,
			.operation = op == SALUS_FHIR_VALIDATE	 ? "$validate"
				     : op == SALUS_FHIR_EVERYTHING ? "$everything"
								   : NULL,
			.purpose = purpose_of(r, &ps),
			.user_id = r->has_who && r->who.user_id[0] ? r->who.user_id : NULL,
		};
		rc = salus_audit_record_journal(r->h->audit, &arq);
	}
	salus_patient_set_release(&ps);
	salus_buf_release(&query);
	if (rc)
		audit_failed(r);
}

/* salus_fhir_req.write: a single-resource write and its AuditEvent in ONE
 * transaction (docs/audit.md), instead of a commit for the write and another
 * for the event.  A created resource gets its id here, so the event can name
 * it; the event is built before the write, so an update or delete carries its
 * version only when If-Match fixes it.  If the write fails nothing was
 * appended, and the audit phase records the failure as usual. */
static int audited_write(void *ctx, struct salus_store *st, struct salus_write *ops, size_t n)
{
	struct req *r = ctx;
	struct salus_write *w = &ops[0];
	struct salus_patient_set ps = {0};
	char uuid[SALUS_UUID_LEN];
	char *dump = NULL;
	int rc;

	if (n != 1)
		return salus_store_write(st, ops, n); /* not a single write: audited afterwards */
	bool create = w->kind == SALUS_WRITE_CREATE;
	if (create && !w->id) {
		salus_store_id_new(uuid); /* time-ordered (store.h) */
		w->id = uuid;
	}
	if (!strcmp(w->type, "Patient"))
		salus_patient_set_add(&ps, w->id, strlen(w->id));
	if (w->raw)
		salus_patient_set_scan(&ps, w->raw, w->raw_len);
	else if (w->resource && (dump = json_dumps(w->resource, JSON_COMPACT)))
		salus_patient_set_scan(&ps, dump, strlen(dump));
	salus_patient_set_scan(&ps, r->body.p, r->body.n);
	rc = ps.nomem || (w->resource && !w->raw && !dump) ? SALUS_ENOMEM : SALUS_OK;
	if (!rc) {
		struct salus_audit_req arq = {
			.interaction = salus_audit_interaction_of(r->frq.op),
			.resource_type = w->type,
			.id = w->id,
			.version = create ? 1 : w->kind == SALUS_WRITE_UPDATE && w->if_match ? w->if_match + 1 : 0,
			.patients = (const char *const *)ps.ids,
			.npatients = ps.n,
			.status = create ? 201 : 200,
			.status_2xx = !create,
			.client_id = r->client_id[0] ? r->client_id : NULL,
			.remote_addr = remote_addr(r)[0] ? r->remote : NULL,
			.purpose = purpose_of(r, &ps),
			.user_id = r->has_who && r->who.user_id[0] ? r->who.user_id : NULL,
		};
		rc = salus_audit_write(r->h->audit, &arq, ops, n);
	}
	if (!rc)
		r->write_audited = true;
	if (w->id == uuid)
		w->id = NULL; /* the store copied it into id_out */
	salus_free(dump);
	salus_patient_set_release(&ps);
	return rc;
}
#else
/* BENCHMARK-ONLY build (CMake SALUS_BENCH_NO_AUDIT): the audit phase is
 * compiled out so bench/run.sh can measure its cost against the same code. */
static void audit_fhir(struct req *r)
{
	(void)r;
}
#endif

/* On a libmicrohttpd thread: the AuditEvent is written, then the answer goes. */
static enum MHD_Result audit_then_send(struct req *r)
{
	audit_fhir(r);
	return send_response(r);
}

static void fhir_work(void *arg)
{
	struct req *r = arg;
	salus_fhir_handle(r->h->store, &r->frq, &r->frs);
	r->content_type = "application/fhir+json; charset=utf-8";
	if (!r->write_audited) /* else durable with its event already */
		audit_fhir(r);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

#ifndef SALUS_BENCH_NO_AUDIT
/* The client id claimed by a client_secret_basic header ("Basic
 * base64(urlenc(id):urlenc(secret))", RFC 6749 §2.3.1) into out, for the
 * token endpoint's AuditEvent: the decoded secret stays in a local buffer
 * that is wiped.  "" when there is none, or it is not printable ASCII. */
static void basic_client_id(const char *authz, char out[SALUS_CLIENT_ID_MAX + 1])
{
	unsigned char bin[1024];
	size_t n = 0, o = 0, i;
	const char *p;
	bool colon = false;

	out[0] = 0;
	if (!authz || strncasecmp(authz, "Basic ", 6))
		return;
	for (p = authz + 6; *p == ' '; p++)
		;
	if (sodium_base642bin(bin, sizeof bin, p, strlen(p), NULL, &n, NULL, sodium_base64_VARIANT_ORIGINAL)) {
		sodium_memzero(bin, sizeof bin);
		return;
	}
	for (i = 0; i < n && o < SALUS_CLIENT_ID_MAX; i++) {
		int hi, lo, c = bin[i];
		if (c == ':') {
			colon = true;
			break;
		}
		if (c == '%' && i + 2 < n && (hi = hexval((char)bin[i + 1])) >= 0 && (lo = hexval((char)bin[i + 2])) >= 0) {
			c = hi << 4 | lo;
			i += 2;
		} else if (c == '+') {
			c = ' ';
		}
		if (c < 0x20 || c > 0x7e) {
			o = 0;
			break;
		}
		out[o++] = (char)c;
	}
	out[colon ? o : 0] = 0;
	sodium_memzero(bin, sizeof bin);
}
#endif

/* POST /auth/token: the issue or refusal is audited (SALUS_AUDIT_TOKEN, with
 * the client id when the header names one, never the secret) before the
 * answer is released; if the event cannot be written the token is discarded
 * and the answer is 500 (fail closed). */
static void token_work(void *arg)
{
	struct req *r = arg;
	struct salus_token_response tr = {0};
	int rc = salus_auth_token(r->h->auth, header(r, MHD_HTTP_HEADER_AUTHORIZATION),
				  header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->body.p, r->body.n, &tr);
	salus_buf_reset(&r->frs.body);
	if (rc || salus_buf_add(&r->frs.body, tr.body, tr.body_len)) {
		set_error(r, rc ? rc : SALUS_ENOMEM, NULL);
	} else {
		r->frs.status = tr.status;
		r->content_type = "application/json";
		r->no_cache = 1;
		if (tr.basic_challenge)
			r->www_auth = "Basic realm=\"salus\"";
	}
#ifdef SALUS_BENCH_NO_AUDIT
	salus_token_response_release(&tr);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
#else
	if (tr.client_id[0]) /* named by a client assertion (private_key_jwt) */
		memcpy(r->client_id, tr.client_id, sizeof tr.client_id);
	else
		basic_client_id(header(r, MHD_HTTP_HEADER_AUTHORIZATION), r->client_id);
	salus_token_response_release(&tr);
	struct salus_audit_req arq = {
		.interaction = SALUS_AUDIT_TOKEN,
		.status = r->frs.status,
		.client_id = r->client_id[0] ? r->client_id : NULL,
		.remote_addr = remote_addr(r)[0] ? r->remote : NULL,
	};
	if (salus_audit_record_journal(r->h->audit, &arq)) {
		r->no_cache = 1;
		set_error(r, SALUS_EINTERNAL, "the request could not be audited; nothing was released");
	}
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
#endif
}

/* ---- the authorization server (auth/oauth.h, docs/security.md "Identity") ---- */

static const char *query_param(void *ctx, const char *name)
{
	struct req *r = ctx;
	for (size_t i = 0; i < r->nparams; i++)
		if (!strcmp(r->params[i].name, name))
			return r->params[i].value;
	return NULL;
}

/* GET/POST /auth/authorize: pages, then the login / MFA / consent events are
 * audited before the answer leaves (fail closed: an unaudited login is a 500). */
static void authorize_work(void *arg)
{
	struct req *r = arg;
	struct salus_authz_response ar;
	remote_addr(r);
	int rc = !strcmp(r->url, "/auth/launch")
			 ? salus_oauth_launch(r->h->auth, query_param, r, &ar)
			 : salus_oauth_authorize(r->h->auth, r->method, query_param, r,
						 header(r, MHD_HTTP_HEADER_CONTENT_TYPE), r->body.p, r->body.n,
						 header(r, MHD_HTTP_HEADER_COOKIE), r->remote[0] ? r->remote : NULL, &ar);
	if (!rc && ar.event != SALUS_AUTHZ_EV_NONE) {
		bool pick = ar.event == SALUS_AUTHZ_EV_PICK; /* a picker's search: audited as a search of the user */
		bool ok = ar.event == SALUS_AUTHZ_EV_LOGIN_OK || ar.event == SALUS_AUTHZ_EV_MFA_OK ||
			  ar.event == SALUS_AUTHZ_EV_CODE || ar.event == SALUS_AUTHZ_EV_LAUNCH || pick;
		const char *pids[SALUS_PICK_MAX];
		for (size_t i = 0; i < ar.npick; i++)
			pids[i] = ar.pick_ids[i];
		struct salus_audit_req arq = {
			.interaction = pick ? SALUS_AUDIT_SEARCH
				       : ar.event == SALUS_AUTHZ_EV_CODE || ar.event == SALUS_AUTHZ_EV_DENIED ? SALUS_AUDIT_TOKEN
													    : SALUS_AUDIT_LOGIN,
			.resource_type = pick ? ar.pick_type : NULL,
			.patients = pick && ar.npick ? pids : NULL,
			.npatients = pick ? ar.npick : 0,
			.status = ok ? 200 : 401,
			.client_id = ar.client_id[0] ? ar.client_id : NULL,
			.user_id = ar.user[0] ? ar.user : NULL,
			.remote_addr = r->remote[0] ? r->remote : NULL,
			.operation = ar.event == SALUS_AUTHZ_EV_MFA_OK || ar.event == SALUS_AUTHZ_EV_MFA_FAIL ? "mfa"
				     : ar.event == SALUS_AUTHZ_EV_LAUNCH                                     ? "ehr-launch"
														: NULL,
		};
		rc = salus_audit_record(r->h->audit, &arq, NULL);
	}
	salus_buf_reset(&r->frs.body);
	if (rc) {
		set_error(r, rc, rc == SALUS_ENOMEM || rc == SALUS_EIO ? NULL : "the sign-in could not be audited");
	} else if (ar.status == 302) {
		r->frs.status = 302;
		if (!(r->redirect = salus_strdup(ar.location)))
			set_error(r, SALUS_ENOMEM, NULL);
	} else if (salus_buf_add(&r->frs.body, ar.body, ar.body_len)) {
		set_error(r, SALUS_ENOMEM, NULL);
	} else {
		r->frs.status = ar.status;
		r->content_type = "text/html; charset=utf-8";
		r->retry_after = ar.retry_after;
	}
	if (!rc)
		snprintf(r->set_cookie, sizeof r->set_cookie, "%s", ar.set_cookie);
	salus_authz_response_release(&ar);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

/* POST /auth/introspect and /auth/revoke. */
static void oauth_work(void *arg)
{
	struct req *r = arg;
	struct salus_token_response tr = {0};
	const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION), *ct = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	int rc = !strcmp(r->url, "/auth/introspect")
			 ? salus_oauth_introspect(r->h->auth, authz, ct, r->body.p, r->body.n, &tr)
			 : salus_oauth_revoke(r->h->auth, authz, ct, r->body.p, r->body.n, &tr);
	salus_buf_reset(&r->frs.body);
	if (rc || salus_buf_add(&r->frs.body, tr.body, tr.body_len)) {
		set_error(r, rc ? rc : SALUS_ENOMEM, NULL);
	} else {
		r->frs.status = tr.status;
		r->content_type = "application/json";
		r->no_cache = 1;
		if (tr.basic_challenge)
			r->www_auth = "Basic realm=\"salus\"";
	}
	salus_token_response_release(&tr);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

/* POST /auth/break-glass {"patient","reason","minutes"}: a staff user opens a
 * patient's record outside the relationship rule for a time box (policy.h).
 * Always audited (purposeOfUse BTG, success or refusal) before the answer
 * leaves, and alerted with a warning log line (ids only, never the reason);
 * if the event cannot be written the grant is withdrawn (fail closed).
 * GET /auth/break-glass: every grant, for a token that may read AuditEvent. */
static void btg_work(void *arg)
{
	struct req *r = arg;
	struct salus_principal who;
	const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	char patient[SALUS_MAX_ID + 1] = "", why_buf[160];
	const char *why = NULL;
	char *list = NULL;
	int64_t expires = 0;
	json_t *body = NULL;
	bool post = !strcmp(r->method, "POST");
	int rc = salus_auth_check(r->h->auth, authz, &who);
	if (rc == SALUS_EUNAUTHORIZED) {
		r->www_auth = salus_auth_challenge(authz);
		set_error(r, rc, "a valid bearer token is required");
		goto out_answer;
	}
	if (rc) {
		set_error(r, rc, NULL);
		goto out_answer;
	}
	snprintf(r->client_id, sizeof r->client_id, "%s", who.client_id);
	remote_addr(r);
	if (!post) {
		if (!salus_scope_allows(who.scopes, "AuditEvent", SALUS_IA_READ)) {
			rc = SALUS_EFORBIDDEN;
			why = "listing break-glass grants needs AuditEvent read scope";
		} else {
			rc = salus_policy_break_glass_list(r->h->store, 0, &list);
		}
	} else if (!who.user_id[0] || strncmp(who.fhir_user, "Practitioner/", 13)) {
		rc = SALUS_EFORBIDDEN;
		why = "break-glass is for signed-in staff users (fhirUser Practitioner)";
	} else if (salus_json_parse_strict(r->body.p, r->body.n, &body, why_buf, sizeof why_buf)) {
		rc = SALUS_EINVALID;
		why = "the body must be a JSON object {\"patient\", \"reason\", \"minutes\"}";
	} else {
		const char *pid = json_string_value(json_object_get(body, "patient"));
		json_t *m = json_object_get(body, "minutes");
		if (pid && strlen(pid) <= SALUS_MAX_ID)
			snprintf(patient, sizeof patient, "%s", pid);
		rc = !json_is_integer(m) ? (why = "minutes must be an integer", SALUS_EINVALID)
					  : salus_policy_break_glass(r->h->store, &r->h->pcfg, who.user_id, pid,
								     json_string_value(json_object_get(body, "reason")),
								     (long)json_integer_value(m), 0, &expires, &why);
	}
#ifndef SALUS_BENCH_NO_AUDIT
	const char *pats[1] = {patient};
	struct salus_audit_req arq = {
		.interaction = post ? SALUS_AUDIT_OPERATION : SALUS_AUDIT_AUDIT_READ,
		.operation = post ? "break-glass" : NULL,
		.purpose = post ? "BTG" : NULL,
		.resource_type = post && patient[0] ? "Patient" : NULL,
		.id = post && patient[0] && salus_fhir_id_valid(patient, strlen(patient)) ? patient : NULL,
		.patients = pats,
		.npatients = post && patient[0] && salus_fhir_id_valid(patient, strlen(patient)) ? 1 : 0,
		.status = rc ? salus_err_http(rc) : post ? 201 : 200,
		.client_id = r->client_id[0] ? r->client_id : NULL,
		.user_id = who.user_id[0] ? who.user_id : NULL,
		.remote_addr = r->remote[0] ? r->remote : NULL,
	};
	int arc = salus_audit_record(r->h->audit, &arq, NULL);
	if (arc) {
		if (post && !rc)
			salus_policy_break_glass_revoke(r->h->store, who.user_id, patient);
		set_error(r, arc, "the break-glass request could not be audited; nothing was granted");
		salus_principal_release(&who);
		goto out_answer;
	}
#endif
	if (rc) {
		set_error(r, rc, why);
	} else if (post) {
		char when[SALUS_INSTANT_LEN];
		salus_instant_format(expires, when);
		salus_log(SALUS_LOG_WARN, "policy.break_glass", "user=%s patient=%s expires=%s", who.user_id, patient, when);
		salus_buf_reset(&r->frs.body);
		if (salus_buf_addf(&r->frs.body, "{\"patient\":\"%s\",\"expires\":\"%s\"}", patient, when)) {
			set_error(r, SALUS_ENOMEM, NULL);
		} else {
			r->frs.status = 201;
			r->content_type = "application/json";
		}
	} else {
		salus_buf_reset(&r->frs.body);
		if (salus_buf_adds(&r->frs.body, list)) {
			set_error(r, SALUS_ENOMEM, NULL);
		} else {
			r->frs.status = 200;
			r->content_type = "application/json";
		}
	}
	salus_principal_release(&who);
out_answer:
	json_decref(body);
	salus_free(list);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

/* The stricter per-address bucket of the login and token endpoints; false when answered 429. */
static bool auth_rate_ok(struct req *r)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (salus_ratelimit_take(r->h->rl_login, ci ? ci->client_addr : NULL, salus_mono_ms(), &r->retry_after))
		return true;
	set_error(r, SALUS_ERATELIMIT, "too many sign-in or token requests from this address; retry later");
	return false;
}

/* Queue blocking work; the connection is resumed by the worker. */
static enum MHD_Result defer(struct req *r, void (*fn)(void *))
{
	r->state = REQ_WORKING;
	MHD_suspend_connection(r->conn);
	if (salus_pool_submit(r->h->pool, fn, r)) {
		r->state = REQ_READY;
		set_error(r, SALUS_EBUSY, NULL);
		MHD_resume_connection(r->conn);
	}
	return MHD_YES;
}

static enum MHD_Result route_fhir(struct req *r, const char *path)
{
	const char *why = NULL;
	int rc = negotiate(r);
	if (rc) {
		set_error(r, rc, "only JSON is supported (_format=json, Accept: application/fhir+json)");
		return audit_then_send(r);
	}
	memset(&r->frq, 0, sizeof r->frq);
	rc = salus_fhir_route(r->method, path, &r->frq, &why);
	if (rc) {
		set_error(r, rc, why);
		return audit_then_send(r);
	}
	r->frq.base = r->h->fhir_base;
	r->frq.if_match = header(r, MHD_HTTP_HEADER_IF_MATCH);
	r->frq.prefer = header(r, "Prefer");
	r->frq.body = r->body.p;
	r->frq.body_len = r->body.n;
	r->frq.params = r->params;
	r->frq.nparams = r->nparams;
	/* conditional operations, PATCH and Bundles (docs/fhir-rest.md) */
	r->frq.if_none_exist = header(r, "If-None-Exist");
	r->frq.if_none_match = header(r, MHD_HTTP_HEADER_IF_NONE_MATCH);
	r->frq.if_modified_since = header(r, MHD_HTTP_HEADER_IF_MODIFIED_SINCE);
	r->frq.content_type = header(r, MHD_HTTP_HEADER_CONTENT_TYPE);
	r->frq.allow = bundle_allow;
	r->frq.allow_ctx = r;
#ifndef SALUS_BENCH_NO_AUDIT
	/* single-resource writes: the event commits with the write (a Bundle's
	 * read entries touch patients only its response shows: audited after) */
	if (r->frq.op == SALUS_FHIR_CREATE || r->frq.op == SALUS_FHIR_UPDATE || r->frq.op == SALUS_FHIR_DELETE ||
	    r->frq.op == SALUS_FHIR_PATCH || r->frq.op == SALUS_FHIR_COND_UPDATE ||
	    r->frq.op == SALUS_FHIR_COND_DELETE || r->frq.op == SALUS_FHIR_COND_PATCH) {
		r->frq.write = audited_write;
		r->frq.write_ctx = r;
	}
#endif
	static const char *const names[] = {
		[SALUS_FHIR_CAPABILITIES] = "fhir.metadata", [SALUS_FHIR_READ] = "fhir.read",
		[SALUS_FHIR_VREAD] = "fhir.vread", [SALUS_FHIR_UPDATE] = "fhir.update",
		[SALUS_FHIR_DELETE] = "fhir.delete", [SALUS_FHIR_CREATE] = "fhir.create",
		[SALUS_FHIR_SEARCH_TYPE] = "fhir.search", [SALUS_FHIR_HISTORY_INSTANCE] = "fhir.history",
		[SALUS_FHIR_HISTORY_TYPE] = "fhir.history-type", [SALUS_FHIR_HISTORY_SYSTEM] = "fhir.history-system",
		[SALUS_FHIR_BUNDLE] = "fhir.bundle", [SALUS_FHIR_PATCH] = "fhir.patch",
		[SALUS_FHIR_COND_UPDATE] = "fhir.cond-update", [SALUS_FHIR_COND_DELETE] = "fhir.cond-delete",
		[SALUS_FHIR_COND_PATCH] = "fhir.cond-patch",
		[SALUS_FHIR_VALIDATE] = "fhir.validate",
		[SALUS_FHIR_SEARCH_SYSTEM] = "fhir.search-system",
		[SALUS_FHIR_SEARCH_COMPARTMENT] = "fhir.search-compartment",
		[SALUS_FHIR_EVERYTHING] = "fhir.everything",
	};
	r->route = names[r->frq.op];
	if (r->frq.op == SALUS_FHIR_CAPABILITIES) {
		salus_fhir_handle(r->h->store, &r->frq, &r->frs);
		return audit_then_send(r);
	}
	enum salus_fhir_op op = r->frq.op;
	int writes = op == SALUS_FHIR_CREATE || op == SALUS_FHIR_UPDATE || op == SALUS_FHIR_DELETE ||
		     op == SALUS_FHIR_BUNDLE || op == SALUS_FHIR_PATCH || op == SALUS_FHIR_COND_UPDATE ||
		     op == SALUS_FHIR_COND_DELETE || op == SALUS_FHIR_COND_PATCH;
	/* a read: the token check, the access decision and the read in one snapshot (store.h) —
	 * not the audit trail, whose reads first wait for the journal's newest events to commit */
	bool trail = !strcmp(r->frq.type, "AuditEvent") || !strcmp(r->frq.ctype, "AuditEvent");
	bool pinned = !writes && !trail && !salus_store_read_begin(r->h->store);
	if (policy(r)) {
		if (pinned)
			salus_store_read_end(r->h->store);
		return audit_then_send(r);
	}
	if ((op == SALUS_FHIR_CREATE || op == SALUS_FHIR_UPDATE || op == SALUS_FHIR_COND_UPDATE ||
	     op == SALUS_FHIR_BUNDLE) &&
	    !body_content_type_ok(r)) {
		set_error(r, SALUS_EMEDIATYPE, "Content-Type must be application/fhir+json");
		return audit_then_send(r);
	}
	/* POST _search: the form body carries the parameters (fhir/search.h) */
	if (writes)
		return defer(r, fhir_work);
	salus_fhir_handle(r->h->store, &r->frq, &r->frs);
	if (pinned)
		salus_store_read_end(r->h->store);
	r->content_type = "application/fhir+json; charset=utf-8";
	return audit_then_send(r);
}

static enum MHD_Result send_text(struct req *r, int status, const char *ctype, const char *text)
{
	salus_buf_reset(&r->frs.body);
	if (salus_buf_adds(&r->frs.body, text))
		return MHD_NO;
	r->frs.status = status;
	r->content_type = ctype;
	return send_response(r);
}

static enum MHD_Result route_smart_config(struct req *r)
{
	struct salus_buf *b = &r->frs.body;
	salus_buf_reset(b);
	int rc = salus_buf_addf(b,
				"{\"issuer\":\"%s\",\"jwks_uri\":\"%s/auth/jwks\","
				"\"authorization_endpoint\":\"%s/auth/authorize\",\"token_endpoint\":\"%s/auth/token\","
				"\"introspection_endpoint\":\"%s/auth/introspect\",\"revocation_endpoint\":\"%s/auth/revoke\","
				"\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\",\"private_key_jwt\",\"none\"],"
				"\"token_endpoint_auth_signing_alg_values_supported\":[\"RS384\",\"ES384\"],"
				"\"grant_types_supported\":[\"authorization_code\",\"refresh_token\",\"client_credentials\"],"
				"\"response_types_supported\":[\"code\"],\"code_challenge_methods_supported\":[\"S256\"],"
				"\"scopes_supported\":[\"openid\",\"fhirUser\",\"profile\",\"launch\",\"launch/patient\","
				"\"launch/encounter\","
				"\"offline_access\",\"online_access\",\"patient/*.rs\",\"user/*.cruds\",\"user/*.rs\",\"system/*.cruds\","
				"\"system/*.rs\",\"system/*.read\",\"system/*.*\"],"
				"\"capabilities\":[\"launch-standalone\",\"launch-ehr\",\"context-ehr-patient\","
				"\"context-ehr-encounter\",\"client-public\",\"client-confidential-symmetric\","
				"\"client-confidential-asymmetric\","
				"\"sso-openid-connect\",\"context-standalone-patient\",\"context-standalone-encounter\",\"permission-offline\","
				"\"permission-online\",\"permission-patient\",\"permission-user\",\"permission-v1\",\"permission-v2\"]}",
				r->h->base, r->h->base, r->h->base, r->h->base, r->h->base, r->h->base);
	if (rc)
		return MHD_NO;
	r->frs.status = 200;
	r->content_type = "application/json";
	return send_response(r);
}

static const char landing[] =
	"<!doctype html><html lang=en><head><meta charset=utf-8><title>Salus</title></head><body>"
	"<h1>Salus</h1><p>FHIR R4 server. Base URL: <code>/fhir</code>; "
	"capabilities: <a href=\"/fhir/metadata\">/fhir/metadata</a>.</p></body></html>\n";

/* ---- /audit: checkpoint and proofs (docs/audit.md) ---------------------- */

static int audit_param(struct req *r, const char *name, int64_t *v)
{
	long l;
	for (size_t i = 0; i < r->nparams; i++)
		if (!strcmp(r->params[i].name, name)) {
			if (salus_parse_long((struct salus_slice){r->params[i].value, strlen(r->params[i].value)}, 0,
					     INT64_MAX, &l))
				return SALUS_EINVALID;
			*v = l;
			return 0;
		}
	return SALUS_EINVALID;
}

/* GET /audit/checkpoint, /audit/proof/inclusion?index=N&size=M, /audit/proof/consistency?from=M&to=N:
 * a bearer token whose scopes allow reading AuditEvent; the access is itself audited (fail closed). */
static void audit_work(void *arg)
{
	struct req *r = arg;
	struct salus_principal who;
	const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	int rc = salus_auth_check(r->h->auth, authz, &who);
	if (rc == SALUS_EUNAUTHORIZED) {
		r->www_auth = salus_auth_challenge(authz);
		set_error(r, rc, "a valid bearer token is required");
	} else if (rc) {
		set_error(r, rc, NULL);
	} else if (!salus_scope_allows(who.scopes, "AuditEvent", SALUS_IA_READ)) {
		set_error(r, SALUS_EFORBIDDEN, "reading the audit trail needs AuditEvent read scope");
		salus_principal_release(&who);
	} else {
		int64_t a = 0, b = 0;
		char addr[INET6_ADDRSTRLEN] = "";
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, addr, sizeof addr);
		else if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)ci->client_addr)->sin6_addr, addr,
				  sizeof addr);
		salus_buf_reset(&r->frs.body);
		if (!strcmp(r->url, "/audit/checkpoint"))
			rc = salus_audit_http_checkpoint(r->h->audit, &r->frs.body);
		else if (!strcmp(r->url, "/audit/proof/inclusion"))
			rc = (audit_param(r, "index", &a) || audit_param(r, "size", &b))
				     ? SALUS_EINVALID
				     : salus_audit_http_inclusion(r->h->audit, a, b, &r->frs.body);
		else if (!strcmp(r->url, "/audit/proof/consistency"))
			rc = (audit_param(r, "from", &a) || audit_param(r, "to", &b))
				     ? SALUS_EINVALID
				     : salus_audit_http_consistency(r->h->audit, a, b, &r->frs.body);
		else
			rc = SALUS_ENOTFOUND;
		struct salus_audit_req arq = {.interaction = SALUS_AUDIT_AUDIT_READ, .resource_type = "AuditEvent",
					      .status = rc ? salus_err_http(rc) : 200, .client_id = who.client_id,
					      .remote_addr = addr[0] ? addr : NULL};
		int arc = salus_audit_record(r->h->audit, &arq, NULL);
		salus_principal_release(&who);
		if (arc) {
			salus_buf_reset(&r->frs.body);
			set_error(r, arc, "the access could not be audited");
		} else if (rc) {
			salus_buf_reset(&r->frs.body);
			set_error(r, rc, rc == SALUS_EINVALID ? "need index<size (inclusion) or from<=to (consistency) "
								"within the log" : NULL);
		} else {
			r->frs.status = 200;
			r->content_type = "application/json";
		}
	}
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

/* ---- /admin: users and sessions (http/admin.h, docs/auth.md) ----------- */

/* A user token whose user holds the admin role (looked up on every call, so
 * a demoted or disabled admin loses access at once); every call, allowed or
 * not, is an administrative AuditEvent written before the answer (fail closed). */
static void admin_work(void *arg)
{
	struct req *r = arg;
	struct salus_principal who;
	struct salus_admin_act act = {.action = "admin"};
	struct salus_users *users = salus_auth_users(r->h->auth);
	const char *authz = header(r, MHD_HTTP_HEADER_AUTHORIZATION), *why = NULL;
	enum salus_role role;
	bool have_who = false;
	int status = 0, rc = salus_auth_check(r->h->auth, authz, &who);
	salus_buf_reset(&r->frs.body);
	if (rc == SALUS_EUNAUTHORIZED) {
		r->www_auth = salus_auth_challenge(authz);
		set_error(r, rc, "a valid bearer token is required");
		goto send; /* no principal: nothing to attribute (the token endpoint audits issues) */
	} else if (rc) {
		set_error(r, rc, NULL);
		goto send;
	}
	have_who = true;
	if (!users || !who.user_id[0] || salus_user_role(users, who.user_id, &role) || role != SALUS_ROLE_ADMIN) {
		rc = SALUS_EFORBIDDEN;
		why = "administration needs the token of a user with the admin role";
	} else {
		rc = salus_admin_handle(users, r->h->base, r->method, r->url + 6, header(r, MHD_HTTP_HEADER_CONTENT_TYPE),
					r->body.p, r->body.n, &r->frs.body, &status, &act, &why);
	}
	char query[160];
	snprintf(query, sizeof query, "action=%s%s%s", act.action, act.user[0] ? "&user=" : "", act.user);
	struct salus_audit_req arq = {.interaction = SALUS_AUDIT_ADMIN, .status = rc ? salus_err_http(rc) : status,
				      .client_id = who.client_id, .user_id = who.user_id,
				      .remote_addr = remote_addr(r)[0] ? r->remote : NULL, .query = query};
	int arc = salus_audit_record(r->h->audit, &arq, NULL);
	if (arc) {
		salus_buf_reset(&r->frs.body);
		set_error(r, arc, "the administrative action could not be audited");
	} else if (rc) {
		salus_buf_reset(&r->frs.body);
		set_error(r, rc, why);
	} else {
		r->frs.status = status;
		r->content_type = "application/json";
		r->no_cache = 1;
	}
send:
	if (have_who)
		salus_principal_release(&who);
	r->state = REQ_READY;
	MHD_resume_connection(r->conn);
}

/* The route table: path → handler, in order; the first match wins. */
static enum MHD_Result dispatch(struct req *r)
{
	const char *u = r->url;
	r->route = "other";
	for (const char *c = u; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f || (c[0] == '%' && c[1] == '0' && c[2] == '0')) {
			set_error(r, SALUS_EINVALID, "control character in the request path");
			return send_response(r);
		}
	if (!strcmp(r->method, "OPTIONS") && cors_route(u) && header(r, "Origin") &&
	    header(r, "Access-Control-Request-Method")) {
		/* a CORS preflight: no credentials, nothing read or written, not audited */
		r->route = "cors-preflight";
		r->preflight = true;
		r->frs.status = 204;
		salus_buf_reset(&r->frs.body);
		return send_response(r);
	}
	if (!strcmp(u, "/fhir") || !strncmp(u, "/fhir/", 6)) {
		if (!strcmp(u, "/fhir/.well-known/smart-configuration")) {
			r->route = "smart-configuration";
			return route_smart_config(r);
		}
		r->route = "fhir";
		return route_fhir(r, u + 5);
	}
	if (!strcmp(u, "/auth/token")) {
		r->route = "auth.token";
		if (strcmp(r->method, "POST")) {
			set_error(r, SALUS_EMETHOD, "use POST");
			return send_response(r);
		}
		if (!auth_rate_ok(r))
			return send_response(r);
		return defer(r, token_work);
	}
	if (!strcmp(u, "/auth/authorize")) {
		r->route = "auth.authorize";
		if (strcmp(r->method, "GET") && strcmp(r->method, "POST")) {
			set_error(r, SALUS_EMETHOD, "use GET or POST");
			return send_response(r);
		}
		if (!strcmp(r->method, "POST") && !auth_rate_ok(r))
			return send_response(r);
		return defer(r, authorize_work);
	}
	if (!strcmp(u, "/auth/launch")) { /* SMART EHR launch: the staff sign-in page (auth/oauth.h) */
		r->route = "auth.launch";
		if (strcmp(r->method, "GET")) {
			set_error(r, SALUS_EMETHOD, "use GET");
			return send_response(r);
		}
		return defer(r, authorize_work);
	}
	if (!strcmp(u, "/auth/introspect") || !strcmp(u, "/auth/revoke")) {
		r->route = u[6] == 'i' ? "auth.introspect" : "auth.revoke";
		if (strcmp(r->method, "POST")) {
			set_error(r, SALUS_EMETHOD, "use POST");
			return send_response(r);
		}
		if (!auth_rate_ok(r))
			return send_response(r);
		return defer(r, oauth_work);
	}
	if (!strcmp(u, "/auth/break-glass")) {
		r->route = "auth.break-glass";
		if (strcmp(r->method, "POST") && strcmp(r->method, "GET")) {
			set_error(r, SALUS_EMETHOD, "use POST (open) or GET (list)");
			return send_response(r);
		}
		if (!strcmp(r->method, "POST") && !auth_rate_ok(r))
			return send_response(r);
		return defer(r, btg_work);
	}
	if (!strcmp(u, "/auth/jwks")) {
		r->route = "auth.jwks";
		char *jwks = salus_auth_jwks(r->h->auth);
		if (!jwks) {
			set_error(r, SALUS_ENOMEM, NULL);
			return send_response(r);
		}
		enum MHD_Result res = send_text(r, 200, "application/jwk-set+json", jwks);
		salus_free(jwks);
		return res;
	}
	if (!strcmp(u, "/.well-known/openid-configuration")) {
		r->route = "openid-configuration";
		salus_buf_reset(&r->frs.body);
		if (salus_buf_addf(&r->frs.body,
				   "{\"issuer\":\"%s\",\"authorization_endpoint\":\"%s/auth/authorize\","
				   "\"token_endpoint\":\"%s/auth/token\",\"jwks_uri\":\"%s/auth/jwks\","
				   "\"introspection_endpoint\":\"%s/auth/introspect\",\"revocation_endpoint\":\"%s/auth/revoke\","
				   "\"response_types_supported\":[\"code\"],\"subject_types_supported\":[\"public\"],"
				   "\"id_token_signing_alg_values_supported\":[\"EdDSA\"],"
				   "\"code_challenge_methods_supported\":[\"S256\"],"
				   "\"grant_types_supported\":[\"authorization_code\",\"refresh_token\",\"client_credentials\"],"
				   "\"token_endpoint_auth_methods_supported\":[\"client_secret_basic\",\"private_key_jwt\",\"none\"],"
				   "\"token_endpoint_auth_signing_alg_values_supported\":[\"RS384\",\"ES384\"],"
				   "\"scopes_supported\":[\"openid\",\"fhirUser\",\"profile\",\"offline_access\",\"online_access\"],"
				   "\"claims_supported\":[\"iss\",\"sub\",\"aud\",\"exp\",\"iat\",\"nonce\",\"fhirUser\","
				   "\"preferred_username\"]}",
				   r->h->base, r->h->base, r->h->base, r->h->base, r->h->base, r->h->base)) {
			set_error(r, SALUS_ENOMEM, NULL);
			return send_response(r);
		}
		r->frs.status = 200;
		r->content_type = "application/json";
		return send_response(r);
	}
	if (!strcmp(u, "/.well-known/smart-configuration")) {
		r->route = "smart-configuration";
		return route_smart_config(r);
	}
	if (!strcmp(u, "/health/live")) {
		r->route = "health";
		return send_text(r, 200, "application/json", "{\"status\":\"ok\"}");
	}
	if (!strcmp(u, "/")) {
		r->route = "portal";
		return send_text(r, 200, "text/html; charset=utf-8", landing);
	}
	if (!strncmp(u, "/admin/", 7)) {
		r->route = "admin";
		if (!auth_rate_ok(r))
			return send_response(r);
		return defer(r, admin_work); /* registry reads, Argon2id for new users, an audit commit */
	}
	if (!strncmp(u, "/audit/", 7)) {
		r->route = "audit";
		if (strcmp(r->method, "GET")) {
			set_error(r, SALUS_EMETHOD, "use GET");
			return send_response(r);
		}
		return defer(r, audit_work); /* a checkpoint waits for a commit */
	}
	set_error(r, SALUS_ENOTFOUND, "no such path");
	return send_response(r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
				  const char *version, const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	(void)version;
	struct salus_http *h = cls;
	struct req *r = *req_cls;
	if (!r) {
		r = new_req();
		if (!r)
			return MHD_NO;
		r->h = h;
		r->conn = conn;
		r->url = url;
		r->method = method;
		r->t0 = salus_mono_ms();
		salus_buf_init(&r->body, (size_t)h->cfg->max_body);
		salus_fhir_resp_init(&r->frs);
		*req_cls = r;
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		long len;
		if (cl && salus_parse_long((struct salus_slice){cl, strlen(cl)}, 0, 1L << 62, &len) == 0 &&
		    len > h->cfg->max_body)
			r->too_large = 1;
		if (strlen(url) > SALUS_MAX_URL)
			r->too_large = 2;
		/* A body over the limit is read and discarded, not buffered, and answered
		 * with 413 once it has arrived: answering early and closing would reset
		 * the connection under a client still sending, which then never sees
		 * the answer. */
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (!salus_ratelimit_take(h->rl, ci ? ci->client_addr : NULL, salus_mono_ms(), &r->retry_after)) {
			r->route = "ratelimit";
			set_error(r, SALUS_ERATELIMIT, "too many requests from this address; retry later");
			return send_response(r);
		}
		r->retry_after = 0;
		return MHD_YES;
	}
	if (r->state == REQ_SENT) {
		*upload_data_size = 0; /* answered early (413, 429): discard the rest */
		return MHD_YES;
	}
	if (r->state == REQ_WORKING)
		return MHD_YES; /* spurious call while suspended */
	if (r->state == REQ_READY)
		return send_response(r);
	if (*upload_data_size) {
		if (!r->too_large && salus_buf_add(&r->body, upload_data, *upload_data_size))
			r->too_large = 1;
		if (r->too_large) {
			r->discarded += *upload_data_size;
			if (r->discarded > 4 * (uint64_t)h->cfg->max_body)
				return MHD_NO; /* a client that will not stop: close */
		}
		*upload_data_size = 0;
		r->state = REQ_BODY;
		return MHD_YES;
	}
	/* the whole request is here */
	if (r->too_large) {
		if (r->too_large == 2)
			set_error(r, SALUS_EURITOOLONG, "request URL is too long");
		else
			set_error(r, SALUS_ETOOLARGE, "request body is too large");
		return send_response(r);
	}
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_param, r);
	if (r->params_overflow) {
		set_error(r, SALUS_EINVALID, "too many query parameters");
		return send_response(r);
	}
	/* the path is checked on the first call; here the query, which libmicrohttpd splits off */
	size_t qlen = 0;
	for (size_t i = 0; i < r->nparams; i++)
		qlen += strlen(r->params[i].name) + strlen(r->params[i].value) + 2;
	if (qlen + strlen(url) > SALUS_MAX_URL) {
		set_error(r, SALUS_EURITOOLONG, "request URL is too long");
		return send_response(r);
	}
	return dispatch(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	struct req *r = *req_cls;
	if (!r)
		return;
	uncork(r);
	salus_log(SALUS_LOG_DEBUG, "http.request", "method=%s route=%s type=%s status=%d ms=%lld end=%d", r->method,
		  r->route ? r->route : "none", r->frq.type[0] ? r->frq.type : "-", r->frs.status,
		  (long long)(salus_mono_ms() - r->t0), (int)toe);
	for (size_t i = 0; i < r->nparams; i++) {
		salus_free(r->params[i].name);
		salus_free(r->params[i].value);
	}
	salus_buf_release(&r->body);
	salus_fhir_resp_release(&r->frs);
	if (r->has_who)
		salus_principal_release(&r->who);
	salus_free(r->redirect);
	salus_free(r);
	*req_cls = NULL;
}

/* Percent-decoding of the path and query arguments.  "%00" is left encoded:
 * a decoded NUL would cut the C string short, so "/Patient/a%00junk" would
 * address "/Patient/a".  Left as "%00", it fails id validation with a 400. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	char *w = s;
	for (const char *r = s; *r; r++) {
		int hi, lo;
		if (r[0] == '%' && r[1] && r[2] && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0 &&
		    (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

/* ---- lifecycle -------------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, int *port)
{
	const char *colon = strrchr(s, ':');
	if (!colon)
		return SALUS_EINVALID;
	long p;
	if (salus_parse_long((struct salus_slice){colon + 1, strlen(colon + 1)}, 0, 65535, &p))
		return SALUS_EINVALID;
	char host[128];
	size_t hn = (size_t)(colon - s);
	if (hn >= sizeof host)
		return SALUS_EINVALID;
	memcpy(host, s, hn);
	host[hn] = 0;
	memset(ss, 0, sizeof *ss);
	if (host[0] == '[' && hn > 2 && host[hn - 1] == ']') {
		host[hn - 1] = 0;
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)p);
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			return SALUS_EINVALID;
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)p);
		if (!strcmp(host, "localhost"))
			snprintf(host, sizeof host, "127.0.0.1");
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			return SALUS_EINVALID;
	}
	*port = (int)p;
	return 0;
}

/* salus_auth_context_fn: the patient context of a user (policy/policy.h). */
static int patient_context(void *ctx, const char *fhir_user, char out[SALUS_MAX_ID + 1])
{
	return salus_policy_patient_of(ctx, fhir_user, out);
}

/* salus_auth_launch_fn: the Patient (and Encounter) of an EHR launch exist (policy/policy.h). */
static int launch_target(void *ctx, const char *patient, const char *encounter)
{
	return salus_policy_launch_target(ctx, patient, encounter);
}

/* The text of JSON string j into out (cap bytes), or "". */
static void pick_copy(char *out, size_t cap, const json_t *j)
{
	snprintf(out, cap, "%s", json_is_string(j) ? json_string_value(j) : "");
}

/* A picker row from a Patient (name, birth date) or an Encounter (class, type, status; period start). */
static void pick_hit_of(const json_t *res, bool encounter, struct salus_pick_hit *h)
{
	char a[32], b[80], c[24]; /* class or family, type or given names, status: at most 137 bytes with the separators */
	pick_copy(h->id, sizeof h->id, json_object_get(res, "id"));
	if (encounter) {
		pick_copy(a, sizeof a, json_object_get(json_object_get(res, "class"), "code"));
		json_t *ty = json_array_get(json_object_get(res, "type"), 0);
		pick_copy(b, sizeof b, json_object_get(ty, "text"));
		if (!b[0])
			pick_copy(b, sizeof b, json_object_get(json_array_get(json_object_get(ty, "coding"), 0), "display"));
		pick_copy(c, sizeof c, json_object_get(res, "status"));
		snprintf(h->label, sizeof h->label, "%s%s%s (%s)", a[0] ? a : "Encounter", b[0] ? " " : "", b, c);
		pick_copy(h->detail, sizeof h->detail, json_object_get(json_object_get(res, "period"), "start"));
		return;
	}
	json_t *nm = json_array_get(json_object_get(res, "name"), 0);
	pick_copy(a, sizeof a, json_object_get(nm, "family"));
	b[0] = 0;
	size_t i;
	json_t *g;
	json_array_foreach(json_object_get(nm, "given"), i, g)
	{
		size_t bn = strlen(b);
		if (json_is_string(g) && bn < sizeof b - 2)
			snprintf(b + bn, sizeof b - bn, "%s%s", bn ? " " : "", json_string_value(g));
	}
	if (!a[0] && !b[0])
		pick_copy(b, sizeof b, json_object_get(nm, "text"));
	snprintf(h->label, sizeof h->label, "%s%s%s", a[0] ? a : "", a[0] && b[0] ? ", " : "", b[0] ? b : a[0] ? "" : "(no name)");
	pick_copy(h->detail, sizeof h->detail, json_object_get(res, "birthDate"));
}

/* salus_auth_pick_fn: a picker's search, run by the FHIR search under the user's own access decision
 * (the role's user/ scopes as a token of the user would hold them), so the pickers show exactly what
 * the user may open (relationship rule, break-glass, labels, Consent). */
static int pick_search(void *ctx, const struct salus_pick_user *u, const char *type, const char *const *kv,
		       size_t npairs, const char *compartment, struct salus_pick_hit *hits, size_t max, size_t *n)
{
	struct salus_http *h = ctx;
	enum salus_role role;
	struct salus_scopes sc;
	struct salus_policy *pol = NULL;
	struct salus_param params[8];
	char pbuf[8][2][256], count[16];
	*n = 0;
	if (salus_role_parse(u->role, &role) || !salus_role_is_staff(role) || npairs > 6)
		return 0;
	const char *rs = salus_role_scopes(role);
	int rc = salus_scopes_parse(rs, strlen(rs), &sc);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	sc.user_ctx = true;
	if (!(pol = salus_malloc(sizeof *pol))) {
		rc = SALUS_ENOMEM;
		goto out_scopes;
	}
	salus_policy_clear(pol);
	if ((rc = policy_of(h, pol, &sc, u->username, u->fhir_user, NULL, u->role)))
		goto out_pol;
	if (!salus_policy_allows(pol, type, SALUS_POLICY_S))
		goto out_pol; /* the role may not search this type: nothing to pick */
	for (size_t i = 0; i < npairs; i++) { /* the search parameters (struct salus_param holds mutable strings) */
		snprintf(pbuf[i][0], sizeof pbuf[i][0], "%s", kv[2 * i]);
		snprintf(pbuf[i][1], sizeof pbuf[i][1], "%s", kv[2 * i + 1]);
		if (strlen(kv[2 * i]) >= sizeof pbuf[i][0] || strlen(kv[2 * i + 1]) >= sizeof pbuf[i][1])
			goto out_pol; /* longer than any field of the pickers: nothing */
		params[i] = (struct salus_param){pbuf[i][0], pbuf[i][1]};
	}
	snprintf(pbuf[npairs][0], sizeof pbuf[npairs][0], "_count");
	snprintf(count, sizeof count, "%zu", max);
	params[npairs] = (struct salus_param){pbuf[npairs][0], count};
	struct salus_fhir_req rq = {.op = compartment ? SALUS_FHIR_SEARCH_COMPARTMENT : SALUS_FHIR_SEARCH_TYPE,
				    .base = h->fhir_base, .params = params, .nparams = npairs + 1, .policy = pol};
	if (compartment) { /* Patient/<compartment>/<type>?... */
		if (!salus_fhir_id_valid(compartment, strlen(compartment)))
			goto out_pol;
		snprintf(rq.type, sizeof rq.type, "Patient");
		snprintf(rq.id, sizeof rq.id, "%s", compartment);
		snprintf(rq.ctype, sizeof rq.ctype, "%s", type);
	} else {
		snprintf(rq.type, sizeof rq.type, "%s", type);
	}
	struct salus_fhir_resp rs_;
	salus_fhir_resp_init(&rs_);
	int st = salus_fhir_handle(h->store, &rq, &rs_);
	json_t *bundle = st == 200 ? json_loadb(rs_.body.p, rs_.body.n, 0, NULL) : NULL;
	if (st != 200) {
		/* a search the picker made is refused: the user sees no hits; ids only in the log */
		salus_log(SALUS_LOG_WARN, "auth.picker.search", "type=%s status=%d", type, st);
	} else if (!bundle) {
		rc = SALUS_ENOMEM;
	}
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(bundle, "entry"), i, e)
	{
		json_t *res = json_object_get(e, "resource");
		const char *mode = json_string_value(json_object_get(json_object_get(e, "search"), "mode"));
		if (*n == max || (mode && strcmp(mode, "match")) || !json_is_string(json_object_get(res, "resourceType")) ||
		    strcmp(json_string_value(json_object_get(res, "resourceType")), type))
			continue;
		pick_hit_of(res, !strcmp(type, "Encounter"), &hits[*n]);
		if (salus_fhir_id_valid(hits[*n].id, strlen(hits[*n].id)))
			(*n)++;
	}
	json_decref(bundle);
	salus_fhir_resp_release(&rs_);
out_pol:
	salus_free(pol);
out_scopes:
	salus_scopes_release(&sc);
	return rc;
}

int salus_http_start(const struct salus_config *cfg, struct salus_store *store, struct salus_auth *auth,
		     struct salus_http **out)
{
	struct sockaddr_storage ss;
	int port, rc;
	if (parse_listen(cfg->listen, &ss, &port))
		return SALUS_EINVALID;
	struct salus_http *h = salus_calloc(1, sizeof *h);
	if (!h)
		return SALUS_ENOMEM;
	h->cfg = cfg;
	h->store = store;
	h->auth = auth;
	h->pcfg.relationship = !strcmp(cfg->relationship, "practitioner");
	h->pcfg.break_glass_max_minutes = cfg->break_glass_max_minutes;
	h->pcfg.label_roles = cfg->label_roles;
	h->pcfg.label_v_roles = cfg->label_v_roles;
	h->pcfg.consents = salus_fhir_access_consents; /* Consent denials of a user (fhir/access.h) */
	h->pcfg.consents_ctx = store;
	char path[SALUS_PATH_MAX];
	const char *trust = NULL;
	if ((rc = salus_tls_new(cfg, &h->tls, &trust)))
		goto out_free;
	if ((rc = salus_ratelimit_new(cfg->rate_limit, &h->rl)))
		goto out_free;
	if ((rc = salus_ratelimit_new(cfg->rate_limit ? AUTH_RATE_PER_MIN : 0, &h->rl_login)))
		goto out_free;
	if ((rc = salus_config_path(cfg, "keys/audit.key", path)))
		goto out_free;
	if (access(path, F_OK) && (rc = salus_audit_key_create(path))) /* data directories from before the audit trail */
		goto out_free;
	struct salus_audit_opts ao = {.key_path = path, .checkpoint_every_s = cfg->audit_checkpoint_s};
	if ((rc = salus_audit_new(store, &ao, &h->audit)))
		goto out_free;
	if ((rc = salus_pool_new(WORKERS, &h->pool)))
		goto out_free;
	salus_auth_set_context(auth, patient_context, store); /* proxy tokens: RelatedPerson → Patient */
	salus_auth_set_launch_check(auth, launch_target, store); /* EHR launch: the context exists */
	salus_auth_set_picker(auth, pick_search, h);              /* standalone launch: patient and encounter pickers */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = cfg->threads > 0 ? (unsigned)cfg->threads : (unsigned)(ncpu > 0 ? ncpu : 1);
	h->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TLS | MHD_ALLOW_SUSPEND_RESUME |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		(uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_HTTPS_CERT_CALLBACK, salus_tls_cert_cb, MHD_OPTION_HTTPS_MEM_TRUST, trust,
		MHD_OPTION_NOTIFY_CONNECTION, salus_tls_on_connection, h->tls, MHD_OPTION_HTTPS_PRIORITIES,
		cfg->tls_priorities, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)SALUS_MAX_PER_IP,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->idle_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)CONN_POOL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_END);
	if (!h->d) {
		rc = SALUS_EIO;
		goto out_pool;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
	h->port = di ? di->port : port;
	if (cfg->base_url[0]) {
		snprintf(h->base, sizeof h->base, "%s", cfg->base_url);
	} else {
		char host[256];
		snprintf(host, sizeof host, "%s", cfg->listen);
		char *colon = strrchr(host, ':');
		if (colon)
			*colon = 0;
		snprintf(h->base, sizeof h->base, "https://%s:%d", host, h->port);
	}
	snprintf(h->fhir_base, sizeof h->fhir_base, "%s/fhir", h->base);
	*out = h;
	return 0;
out_pool:
	salus_pool_free(h->pool);
out_free:
	salus_audit_free(h->audit);
	salus_ratelimit_free(h->rl);
	salus_ratelimit_free(h->rl_login);
	salus_tls_free(h->tls);
	salus_free(h);
	return rc;
}

int salus_http_reload_tls(struct salus_http *h)
{
	return salus_tls_reload(h->tls);
}

int salus_http_port(const struct salus_http *h)
{
	return h->port;
}

void salus_http_stop(struct salus_http *h)
{
	if (!h)
		return;
	/* Every deferred request first: each job resumes its connection, and
	 * libmicrohttpd aborts the process if it is stopped with a connection
	 * still suspended (a write waiting for its group commit, say).  A request
	 * deferred from now on is refused at once (503) and resumed. */
	salus_pool_stop(h->pool);
	MHD_stop_daemon(h->d);
	salus_pool_free(h->pool);
	salus_audit_free(h->audit); /* after the workers: signs a last checkpoint */
	salus_ratelimit_free(h->rl);
	salus_ratelimit_free(h->rl_login);
	salus_tls_free(h->tls); /* after the daemon: no session refers to a certificate any more */
	salus_free(h);
}
