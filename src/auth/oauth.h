/*
 * oauth.h — the OAuth 2.0 / SMART App Launch authorization server on top of
 * auth.h (tokens, clients) and user.h (people): app registration with
 * redirect URIs, the authorization endpoint (login → TOTP → consent pages,
 * with the patient and encounter pickers between TOTP and consent when a
 * staff user authorizes a standalone launch/patient (salus_auth_set_picker),
 * authorization code with PKCE S256 required), the authorization_code and
 * refresh_token grants (through salus_auth_token), introspection (RFC 7662)
 * and revocation (RFC 7009).  docs/security.md ("Identity") has the flow,
 * the threat model and every default.
 *
 * Key/value namespaces: "authz" (a login transaction in progress, 10 min),
 * "code" (authorization codes, key = base64url(BLAKE2b(code)), 60 s, single
 * use), "refresh" (refresh tokens, key = base64url(BLAKE2b(token))) and
 * "rfamily" (a refresh-token family; revoked as a whole when a used refresh
 * token is presented again) and "launch" (EHR launch contexts, key =
 * base64url(BLAKE2b(launch)), SALUS_LAUNCH_S, single use).
 */
#ifndef SALUS_AUTH_OAUTH_H
#define SALUS_AUTH_OAUTH_H
#include <stdbool.h>
#include <stddef.h>

#include "auth/auth.h"
#include "auth/user.h"

#define SALUS_AUTHZ_TX_S 600   /* a login transaction's lifetime */
#define SALUS_CODE_S 60        /* authorization code lifetime */
#define SALUS_LAUNCH_S 300     /* an EHR launch context's lifetime (single use) */
#define SALUS_REFRESH_S 2592000 /* refresh token (offline_access) lifetime: 30 days */
#define SALUS_REFRESH_ONLINE_S 43200 /* online_access: 12 h */
#define SALUS_MAX_REDIRECT_URI 512

/* Give the auth context the user registry (borrowed; must outlive it).
 * Without it, the authorization endpoint answers 503 and user tokens fail. */
void salus_auth_set_users(struct salus_auth *a, struct salus_users *u);
/* The user registry given with salus_auth_set_users (borrowed), or NULL. */
struct salus_users *salus_auth_users(const struct salus_auth *a);

/* Register a SMART app: redirect_uri must be an absolute https URI (or
 * http://localhost / 127.0.0.1 for native apps), without fragment, at most
 * SALUS_MAX_REDIRECT_URI bytes; scope as for salus_auth_client_add, and may
 * also use user/ and patient/ scopes plus openid fhirUser profile
 * offline_access online_access launch launch/patient launch/encounter.
 * launch_uri (or NULL): where the EHR launch sends the browser (SMART EHR
 * launch, salus_oauth_launch), rules as for redirect_uri and no query; it
 * adds the `launch` scope to what the app may ask.  A public app has no
 * secret (PKCE is its only proof); a confidential one authenticates with
 * client_secret_basic (secret 16..1024 bytes).
 * Errors: SALUS_EINVALID (*why), SALUS_EEXISTS, SALUS_EIO, SALUS_ENOMEM. */
int salus_auth_app_add(struct salus_store *st, const char *id, const char *scope, const char *redirect_uri,
		       const char *launch_uri, bool public_client, const char *secret, size_t secret_n,
		       const char **why /* OUT */);

/* What the authorization endpoint answers. */
enum salus_authz_event {
	SALUS_AUTHZ_EV_NONE,
	SALUS_AUTHZ_EV_LOGIN_OK,   /* password verified */
	SALUS_AUTHZ_EV_LOGIN_FAIL, /* password refused (or address locked out) */
	SALUS_AUTHZ_EV_MFA_OK,
	SALUS_AUTHZ_EV_MFA_FAIL,
	SALUS_AUTHZ_EV_CODE,       /* consent given, code issued */
	SALUS_AUTHZ_EV_DENIED,     /* the user refused consent */
	SALUS_AUTHZ_EV_LAUNCH,     /* sign-in (with MFA) complete, EHR launch context made */
	SALUS_AUTHZ_EV_PICK,       /* a picker searched (pick_type, pick_ids: what the page shows) */
};
struct salus_authz_response {
	int status;               /* 200 (a page), 302 (Location), 400 (error page), 429, 503 */
	char *body;               /* HTML (owned) */
	size_t body_len;
	char location[2048];      /* 302 target, or "" */
	char set_cookie[160];     /* Set-Cookie value, or "" */
	int retry_after;          /* 429 */
	enum salus_authz_event event; /* what to audit */
	char user[SALUS_USERNAME_MAX + 1];  /* who (as typed, validated) for the audit, or "" */
	char client_id[SALUS_CLIENT_ID_MAX + 1];
	/* SALUS_AUTHZ_EV_PICK: the type searched and the ids found (audited as a search of the user) */
	char pick_type[16];
	char pick_ids[SALUS_PICK_MAX][SALUS_MAX_ID + 1];
	size_t npick;
};
void salus_authz_response_release(struct salus_authz_response *r);

/* Request parameters: the value of `name` or NULL. */
typedef const char *(*salus_param_fn)(void *ctx, const char *name);

/* GET /auth/authorize (query parameters through get) or POST /auth/authorize
 * (a form: content_type, body).  cookie: the Cookie header or NULL; remote:
 * the peer address.  Returns 0 with *out filled, or SALUS_ENOMEM / SALUS_EIO. */
int salus_oauth_authorize(struct salus_auth *a, const char *method, salus_param_fn get, void *get_ctx,
			  const char *content_type, const char *body, size_t body_n, const char *cookie,
			  const char *remote, struct salus_authz_response *out /* OUT */);

/* GET /auth/launch?client_id=ID&patient=P[&encounter=E][&context=T/id,...] — the SMART EHR
 * launch, Salus being the EHR: a staff user signs in (password, then TOTP)
 * on the page this answers (posted to /auth/authorize); then a launch
 * context is made — opaque, single use, SALUS_LAUNCH_S, bound to the client,
 * the user (and its generation), the Patient (which must exist) and the
 * Encounter (which must be that patient's) — and the browser is sent to the
 * app's registered launch URI with `iss` (the FHIR base URL) and `launch`.
 * /auth/authorize with that `launch` and the `launch` scope, by the same
 * client, signed in by the same user, yields tokens whose response carries
 * `patient` (and `encounter`, and `fhirContext` [{reference}] for the 1..4
 * `context` references, each of which must be in P's compartment and
 * visible to the user: checked with the picker, salus_auth_set_picker);
 * the token's patient claim puts its patient/ scopes in that patient's
 * compartment.  Returns 0 with *out filled, or
 * SALUS_ENOMEM / SALUS_EIO. */
int salus_oauth_launch(struct salus_auth *a, salus_param_fn get, void *get_ctx, struct salus_authz_response *out /* OUT */);

/* POST /auth/introspect (RFC 7662; client_secret_basic required) and POST
 * /auth/revoke (RFC 7009; confidential clients authenticate, public ones
 * give client_id).  Answers as the token endpoint's. */
int salus_oauth_introspect(struct salus_auth *a, const char *authorization, const char *content_type,
			   const char *body, size_t body_n, struct salus_token_response *out /* OUT */);
int salus_oauth_revoke(struct salus_auth *a, const char *authorization, const char *content_type, const char *body,
		       size_t body_n, struct salus_token_response *out /* OUT */);

/* PKCE S256 (RFC 7636 §4.6): does BASE64URL(SHA256(verifier)) equal challenge?
 * The verifier must be 43..128 characters of [A-Za-z0-9-._~]. */
bool salus_pkce_s256_ok(const char *verifier, const char *challenge);

#endif
