/*
 * auth.h — OAuth 2.0 client credentials, access tokens and SMART scopes.
 *
 * Until full SMART on FHIR arrives (authorization code + PKCE, users,
 * private_key_jwt), Salus speaks OAuth 2.0 client credentials with
 * client_secret_basic (RFC 6749 §2.3.1, §4.4).  This module is independent of
 * HTTP: the HTTP layer hands it header values and bodies and sends back what
 * it answers.  docs/auth.md describes the flow.
 *
 *  - Client registry: confidential clients kept in the store's key/value
 *    namespace "client" as JSON {id, secret_hash (Argon2id), scope, created,
 *    gen}; `gen` is random per registration so a removed-and-re-added client
 *    never inherits the old registration's tokens.
 *  - Token endpoint: salus_auth_token() turns a POST /auth/token request into
 *    the RFC 6749 §5.1/§5.2 answer; access tokens are EdDSA-signed JWTs.
 *  - Bearer check: salus_auth_check() turns an Authorization header into a
 *    principal; verified tokens are cached, but the client's registration is
 *    looked up on every call so that `salus client remove` (from any
 *    process) takes effect at once.
 *  - SMART scopes v1 and v2: salus_scopes_parse() and salus_scope_allows().
 *
 * Thread safety: a struct salus_auth may be used from any number of threads.
 */
#ifndef SALUS_AUTH_H
#define SALUS_AUTH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct salus_store;

/* ---- SMART scopes ---------------------------------------------------------------------------- */

#define SALUS_MAX_SCOPES 64        /* scope tokens in one scope string */
#define SALUS_MAX_SCOPE_TYPE 64    /* resource type in a scope */

/* The FHIR REST interactions a scope can grant. */
enum salus_interaction {
	SALUS_IA_CREATE, /* v2 'c' */
	SALUS_IA_READ,   /* v2 'r': read, vread, history of an instance */
	SALUS_IA_UPDATE, /* v2 'u' */
	SALUS_IA_DELETE, /* v2 'd' */
	SALUS_IA_SEARCH, /* v2 's': search, type/system history */
};
#define SALUS_IA_BIT(i) (1u << (i))
#define SALUS_IA_ALL 0x1fu

enum salus_scope_ctx { SALUS_SCOPE_PATIENT, SALUS_SCOPE_USER, SALUS_SCOPE_SYSTEM };

/* One parsed resource scope, e.g. "system/Patient.rs" or "patient/Observation.rs?category=laboratory". */
struct salus_scope {
	enum salus_scope_ctx ctx;
	char type[SALUS_MAX_SCOPE_TYPE + 1]; /* resource type, or "*" */
	unsigned perms;                      /* SALUS_IA_BIT set, never 0 */
	bool v2;                             /* written in v2 syntax (letters) rather than v1 (read/write/star) */
	char *query;                         /* v2 restriction after '?' (owned, raw), or NULL */
};

/* A parsed scope string.  Owned storage; release with salus_scopes_release. */
struct salus_scopes {
	size_t n;
	struct salus_scope *v;
	bool user_ctx; /* set by salus_auth_check for a token issued to a logged-in user: user/ scopes grant */
};

/* Parse a space-separated scope string (RFC 6749 §3.3: tokens separated by
 * single spaces, no leading/trailing space, at most SALUS_MAX_SCOPE bytes and
 * SALUS_MAX_SCOPES tokens).  Each token must be a SMART resource scope:
 *   v1  (patient|user|system)/(Type|*).(read|write|*)
 *   v2  (patient|user|system)/(Type|*).<letters>[?query]
 * where <letters> is a non-empty subsequence of "cruds" in that order.  Type
 * is checked for syntax only ([A-Z][A-Za-z]{0,63}), not against the R4 list.
 * Any other token (openid, launch, offline_access, ...) is rejected: none of
 * them means anything for client credentials yet.  An empty string is
 * SALUS_EINVALID.  On success *out is initialised (caller releases).
 * Errors: SALUS_EINVALID (malformed or unknown scope), SALUS_ETOOLARGE, SALUS_ENOMEM. */
int salus_scopes_parse(const char *s, size_t n, struct salus_scopes *out /* OUT */);
void salus_scopes_release(struct salus_scopes *s); /* frees; leaves s empty; NULL-safe */

/* Does the set allow interaction i on resource_type, for a caller that cannot
 * enforce a patient compartment or a restriction (the /audit routes)?
 * `system/` scopes grant; `user/` scopes grant only when s->user_ctx (a token
 * issued to a logged-in user, whose role capped the grant at issue);
 * `patient/` scopes and scopes with a v2 query restriction grant NOTHING here
 * (fail safe).  The FHIR API decides with policy/policy.h instead, which
 * grants them inside the patient's compartment and the restriction.  "*"
 * matches every type. */
bool salus_scope_allows(const struct salus_scopes *s, const char *resource_type, enum salus_interaction i);

/* Grant the part of `requested` covered by `registered` (both parsed).  For
 * each requested scope, the permissions of every registered scope with the
 * same context and a covering type ("*" covers all; a requested "*" needs a
 * registered "*") and the same query (or none: a requested restriction of an
 * unrestricted registration is kept) are unioned and intersected with the
 * request; empty results are dropped.  The result is written as a canonical
 * scope string into *out (owned, salus_free).
 * Errors: SALUS_EFORBIDDEN (nothing left), SALUS_ENOMEM. */
int salus_scopes_grant(const struct salus_scopes *registered, const struct salus_scopes *requested,
		       char **out /* OUT */);
/* Canonical scope string of a parsed set (v1 tokens stay v1 when they can).
 * *out owned by the caller (salus_free).  Errors: SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_scopes_format(const struct salus_scopes *s, char **out /* OUT */);

/* ---- client registry ------------------------------------------------------------------------- */

#define SALUS_CLIENT_SECRET_MIN 16
#define SALUS_CLIENT_ID_MAX 64

/* True when id matches [A-Za-z0-9._-]{1,64}. */
bool salus_client_id_valid(const char *id);

/* Register a confidential client: secret (secret_n bytes, 16..SALUS_MAX_SECRET,
 * no NUL bytes) is stored only as an Argon2id hash; scope must parse with
 * salus_scopes_parse and is stored in canonical form.
 * Errors: SALUS_EINVALID (bad id, secret length or scope; *why, if not NULL,
 * gets a static PHI-free reason), SALUS_EEXISTS, SALUS_EIO, SALUS_ENOMEM. */
int salus_auth_client_add(struct salus_store *st, const char *id, const char *secret, size_t secret_n,
			  const char *scope, const char **why /* OUT, may be NULL */);
/* Remove a client; its tokens stop working at once.  Errors: SALUS_ENOTFOUND, SALUS_EIO. */
int salus_auth_client_remove(struct salus_store *st, const char *id);

/* What a listing shows: never the secret hash. */
struct salus_client_info {
	const char *id;      /* borrowed for the callback */
	const char *scope;   /* borrowed for the callback */
	const char *created; /* FHIR instant, borrowed for the callback */
};
typedef int (*salus_client_cb)(void *ctx, const struct salus_client_info *c);
/* Every client in id order; non-zero from cb stops the listing and is
 * returned.  Unreadable records are skipped.  Errors: SALUS_EIO. */
int salus_auth_client_list(struct salus_store *st, salus_client_cb cb, void *ctx);

/* ---- SMART Backend Services (backend.c; docs/auth.md "Backend services") ------------------------ */

#define SALUS_JWKS_MAX 65536               /* bytes of a registered JWK Set */
#define SALUS_JWKS_MAX_KEYS 16             /* keys in one set */
#define SALUS_RSA_MIN_BITS 2048            /* smallest RSA modulus accepted */
#define SALUS_ASSERTION_MAX_LIFETIME_S 300 /* a client assertion's exp at most this far ahead (+ leeway) */

/* Register a backend service (client_credentials with private_key_jwt, RFC
 * 7523): jwks (jwks_n bytes) is a JWK Set {"keys":[...]} of 1..16 public
 * keys, each RSA (2048..8192 bits; alg RS384 if given) or EC P-384 (alg
 * ES384 if given), use "sig" and key_ops including "verify" if given, kids
 * unique.  Private or symmetric key material (d, p, q, dp, dq, qi, oth, k),
 * other key types and curves are refused.  Only the public members (kty, n,
 * e / crv, x, y, kid, alg) are stored, in the client's record.  scope as for
 * salus_auth_client_add.
 * Errors: SALUS_EINVALID (*why, static and PHI-free), SALUS_EEXISTS,
 * SALUS_EIO, SALUS_ENOMEM. */
int salus_auth_backend_add(struct salus_store *st, const char *id, const char *scope, const char *jwks, size_t jwks_n,
			   const char **why /* OUT, may be NULL */);

/* Register a backend service whose JWK Set is published at url (an https URL,
 * at most 512 bytes, no fragment or blanks): the server fetches it when the
 * client asks for a token (libcurl; https only, no redirects, 5 s, 64 KiB),
 * checks it as salus_auth_backend_add does, and uses it for the configured
 * cache time; a kid it does not hold makes it fetch again (at most every 10 s).
 * The URL is not fetched here.  Errors as salus_auth_backend_add. */
int salus_auth_backend_add_url(struct salus_store *st, const char *id, const char *scope, const char *url,
			       const char **why /* OUT, may be NULL */);

/* ---- the auth context ------------------------------------------------------------------------ */

struct salus_auth; /* opaque */

#define SALUS_AUTH_LEEWAY_S 30      /* clock skew tolerated on exp/iat/nbf */
#define SALUS_AUTH_CACHE_SLOTS 4096 /* verified-token cache entries (power of two) */

/* Create the auth context.  store is borrowed (must outlive the context);
 * key_path is the Ed25519 key file (salus_signkey_create makes one); issuer
 * is the server's base URL ("https://host:8443", the token's iss) and
 * audience the FHIR base URL (the token's aud; NULL: issuer + "/fhir");
 * lifetime_s is the access-token lifetime, 300..3600 seconds.  Takes about
 * one Argon2id hash of time (the dummy hash that evens out timing for
 * unknown clients).
 * Errors: SALUS_EINVALID (bad argument), errors of salus_signkey_load, SALUS_ENOMEM. */
int salus_auth_new(struct salus_store *store, const char *key_path, const char *issuer, const char *audience,
		   int lifetime_s, struct salus_auth **out /* OUT */);
void salus_auth_free(struct salus_auth *a); /* NULL-safe */

/* The patient context of a user: the id of the Patient whose compartment a
 * token of the user with fhirUser `fhir_user` ("Patient/X",
 * "RelatedPerson/Y", ...) may reach through patient/ scopes, into out.
 * Returns 0, SALUS_ENOTFOUND (no context) or another error (the token is
 * then not issued).  Set by the server (policy/policy.h
 * salus_policy_patient_of resolves a RelatedPerson to its patient); without
 * a resolver, Patient/X gives X and nothing else gives a context. */
typedef int (*salus_auth_context_fn)(void *ctx, const char *fhir_user, char out[SALUS_MAX_ID + 1]);
void salus_auth_set_context(struct salus_auth *a, salus_auth_context_fn fn, void *ctx);

/* Does the context of an EHR launch exist: Patient `patient`, and (when
 * `encounter` is not "") Encounter `encounter` of that patient?  Returns 0,
 * SALUS_ENOTFOUND or another error.  Set by the server (policy/policy.h
 * salus_policy_launch_target); without a checker no launch is made. */
typedef int (*salus_auth_launch_fn)(void *ctx, const char *patient, const char *encounter);
void salus_auth_set_launch_check(struct salus_auth *a, salus_auth_launch_fn fn, void *ctx);

/* ---- standalone launch: the patient and encounter pickers (docs/security.md) ---- */

#define SALUS_PICK_MAX 20 /* hits shown on one picker page */

/* Who searches: a signed-in staff user (borrowed strings). */
struct salus_pick_user {
	const char *username;
	const char *role;      /* auth/user.h role name */
	const char *fhir_user; /* "Practitioner/P" */
};
/* One row of a picker: a Patient or an Encounter the user may read. */
struct salus_pick_hit {
	char id[SALUS_MAX_ID + 1];
	char label[160]; /* Patient: "Family, Given"; Encounter: class, type, status */
	char detail[48]; /* Patient: birthDate; Encounter: period.start */
};
/* Search type ("Patient", "Encounter", or for an EHR launch's fhirContext
 * any type) as user u, under u's own access decision (policy/policy.h: the
 * role's user/ scopes, the relationship rule, break-glass, labels and
 * Consent — exactly what the user's own token would see), with the search
 * parameters kv[0..2*npairs) (name, value, ...), inside the Patient
 * compartment of `compartment` when it is not NULL (a compartment search:
 * types outside the compartment find nothing), at most max hits into hits,
 * *n how many.  Returns 0 (also for no hits, or when
 * the user may not search the type: *n = 0), or SALUS_EIO / SALUS_ENOMEM.
 * Set by the server; without it a staff user's launch/patient in a
 * standalone launch gives no context (dropped from the grant). */
typedef int (*salus_auth_pick_fn)(void *ctx, const struct salus_pick_user *u, const char *type,
				  const char *const *kv, size_t npairs, const char *compartment,
				  struct salus_pick_hit *hits, size_t max, size_t *n /* OUT */);
void salus_auth_set_picker(struct salus_auth *a, salus_auth_pick_fn fn, void *ctx);

/* How JWK Set URLs are fetched (salus_auth_backend_add_url): ca_file, if not
 * NULL or "", a PEM file of the CAs to trust instead of the system's; cache_s
 * how long a fetched set is used (1..86400; the default is 300).
 * Errors: SALUS_EINVALID, SALUS_ENOMEM. */
int salus_auth_set_jwks_fetch(struct salus_auth *a, const char *ca_file, int cache_s);

/* The public signing key as a JWK Set {"keys":[...]} for /auth/jwks; new JSON text, salus_free. */
char *salus_auth_jwks(const struct salus_auth *a);

/* ---- token endpoint -------------------------------------------------------------------------- */

/* The answer to POST /auth/token. */
struct salus_token_response {
	int status;        /* 200, 400 or 401 */
	char *body;        /* JSON (owned; salus_token_response_release frees it) */
	size_t body_len;
	bool basic_challenge; /* 401: send `WWW-Authenticate: Basic realm="salus"` */
	char client_id[SALUS_CLIENT_ID_MAX + 1]; /* client named by a client assertion (as claimed, for the
						  * audit), or "" (then the Basic header names it) */
};
void salus_token_response_release(struct salus_token_response *r);

/* The token endpoint.  authorization: the Authorization header value or
 * NULL; content_type: the Content-Type value or NULL (must be
 * application/x-www-form-urlencoded, parameters ignored); body: the raw
 * request body (body_n bytes, not NUL-terminated).
 * Checks, in order: media type and form syntax (percent-decoding, no
 * duplicate parameters) → grant_type present and "client_credentials" →
 * client_secret_basic credentials (client_secret in the body is refused), or
 * a client assertion (client_assertion_type jwt-bearer + client_assertion,
 * no Authorization header; see salus_auth_backend_add and docs/auth.md: any
 * failure is 400 invalid_client) →
 * Argon2id verification (an unknown client is verified against a dummy hash:
 * same cost, no enumeration by timing) → optional `scope` (a subset of the
 * registered scopes; the grant is the intersection) → a signed access token
 * with claims iss, sub, aud, iat, exp, jti, scope, client_id.
 * Answers: 200 {"access_token","token_type":"Bearer","expires_in","scope"};
 * 400 {"error":"invalid_request"|"unsupported_grant_type"|"invalid_scope"|"invalid_client"};
 * 401 {"error":"invalid_client"} with basic_challenge set.
 * The caller must also send Cache-Control: no-store and Pragma: no-cache.
 * Returns 0 when *out holds an answer; SALUS_ENOMEM / SALUS_EIO /
 * SALUS_ECRYPTO when it could not (the caller answers 500; *out is empty). */
int salus_auth_token(struct salus_auth *a, const char *authorization, const char *content_type, const char *body,
		     size_t body_n, struct salus_token_response *out /* OUT */);

/* ---- bearer check ---------------------------------------------------------------------------- */

#define SALUS_JTI_MAX 64

struct salus_grant; /* internal, shared and reference-counted */

/* Who is calling, and with which scopes. */
struct salus_principal {
	char client_id[SALUS_CLIENT_ID_MAX + 1];
	char jti[SALUS_JTI_MAX + 1];
	char user_id[65];                  /* the logged-in user behind the token, or "" (client credentials) */
	char fhir_user[96];                /* the user's FHIR identity ("Patient/ID", "RelatedPerson/ID", ...) or "" */
	char patient[SALUS_MAX_ID + 1];    /* the patient context the token was issued with, or "" */
	char role[24];                     /* the user's role when the token was issued (user.h names), or "" */
	int64_t exp;                       /* token expiry, seconds since the epoch */
	const struct salus_scopes *scopes; /* granted scopes; valid until salus_principal_release */
	struct salus_grant *grant_;        /* internal: keeps scopes alive */
};
/* Drop the principal's reference to its grant; NULL-safe, idempotent. */
void salus_principal_release(struct salus_principal *p);

/* Check "Authorization: Bearer <token>": the token's signature, exp (with
 * SALUS_AUTH_LEEWAY_S), iss and aud, and that the issuing client is still
 * registered with the same registration (one store key/value read per call;
 * signature verification is cached by token hash).  On success *out holds a
 * principal (caller releases).
 * Errors: SALUS_EUNAUTHORIZED (no, malformed, forged, expired or revoked
 * token: answer 401 with salus_auth_challenge), SALUS_EIO (the store could
 * not answer: fail closed with 500/503), SALUS_ENOMEM. */
int salus_auth_check(struct salus_auth *a, const char *authorization, struct salus_principal *out /* OUT */);

/* The WWW-Authenticate value for a 401 from salus_auth_check: without error
 * when no Authorization header was sent (RFC 6750 §3.1), else with
 * error="invalid_token".  Static string. */
const char *salus_auth_challenge(const char *authorization);

#endif
