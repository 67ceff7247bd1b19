/*
 * auth_int.h — internals shared by the files of src/auth/ (and its unit tests
 * and fuzz targets).  Not to be included from other modules.
 */
#ifndef SALUS_AUTH_INT_H
#define SALUS_AUTH_INT_H
#include <pthread.h>
#include <stdatomic.h>

#include <jansson.h>

#include "auth/auth.h"
#include "auth/user.h"
#include "crypto/crypto.h"

#define SALUS_FORM_MAX 16384     /* token request body */
#define SALUS_FORM_MAX_PARAMS 32 /* parameters in one form body */

/* One decoded application/x-www-form-urlencoded parameter. */
struct salus_form_param {
	char *name;     /* owned, NUL-terminated, never contains NUL */
	char *value;    /* owned, NUL-terminated, never contains NUL; wiped on release */
	size_t value_n;
};
struct salus_form {
	size_t n;
	struct salus_form_param v[SALUS_FORM_MAX_PARAMS];
};

/* Strict parse of a form body: '&'-separated name=value pairs ('=' and value
 * may be absent: empty value), '+' is a space, %XX must be two hex digits,
 * decoded NUL bytes, empty names, empty pairs and duplicate names are refused.
 * Errors: SALUS_EINVALID, SALUS_ETOOLARGE (> SALUS_FORM_MAX bytes or too many
 * parameters), SALUS_ENOMEM.  On error *out is empty. */
int salus_form_parse(const char *body, size_t n, struct salus_form *out /* OUT */);
void salus_form_release(struct salus_form *f); /* wipes values, frees */
/* Value of a parameter (borrowed) or NULL. */
const struct salus_form_param *salus_form_get(const struct salus_form *f, const char *name);
/* Percent-decode n bytes (form rules) into a new NUL-terminated string.
 * Errors: SALUS_EINVALID (bad escape or NUL), SALUS_ENOMEM. */
int salus_form_decode(const char *s, size_t n, char **out /* OUT */, size_t *out_n /* OUT */);

/* client_secret_basic: parse "Basic base64(urlenc(id):urlenc(secret))".
 * The id is only length-checked here (<= SALUS_CLIENT_ID_MAX, no NUL): the
 * caller checks it against the registry, so that a bad id costs an Argon2id
 * verify like any unknown one.
 * *secret is owned (salus_free after sodium_memzero; use salus_secret_free).
 * Errors: SALUS_EUNAUTHORIZED (not Basic, malformed), SALUS_ENOMEM. */
int salus_basic_parse(const char *authorization, char id[SALUS_CLIENT_ID_MAX + 1] /* OUT */,
		      char **secret /* OUT */, size_t *secret_n /* OUT */);
/* Wipe n bytes of a heap secret and free it (NULL-safe). */
void salus_secret_free(char *s, size_t n);

/* A verified token's grant: immutable after creation, shared by the cache
 * and the principals that hold it. */
struct salus_grant {
	atomic_int refs;
	char client_id[SALUS_CLIENT_ID_MAX + 1];
	char jti[SALUS_JTI_MAX + 1];
	char uid[65];  /* user token: the username ("" otherwise) */
	char ugen[32]; /* and the user record's generation when issued */
	char fam[48];  /* refresh-token family the token came from ("" if none) */
	char fhir_user[96];            /* the user's "fhirUser" claim ("" if none) */
	char patient[SALUS_MAX_ID + 1]; /* the "patient" claim: the patient context fixed at issue ("" if none) */
	char role[24];                  /* the "role" claim: the user's role at issue ("" if none) */
	int64_t exp;
	struct salus_scopes scopes;
	char *record; /* the client's registry record as seen when verified (owned) */
	size_t record_n;
};
void salus_grant_unref(struct salus_grant *g);
/* Per-request checks of a user token (oauth.c): the user is still enabled
 * with the same generation, and the refresh family it came from is not
 * revoked.  0, SALUS_EUNAUTHORIZED, or SALUS_EIO / SALUS_ENOMEM. */
int salus_oauth_still_valid(struct salus_auth *a, const struct salus_grant *g);

struct cache_slot {
	unsigned char key[SALUS_HASH_LEN]; /* BLAKE2b-256 of the token */
	struct salus_grant *grant;         /* NULL: empty */
};

struct salus_auth {
	struct salus_store *store;
	struct salus_signkey *key;
	char *issuer;
	char *audience;
	char *token_url; /* issuer + "/auth/token": the aud a client assertion must name */
	struct salus_jwks_cache *jwks; /* fetched JWK Sets of backend clients (backend.c) */
	int lifetime;
	char dummy_hash[SALUS_PWHASH_LEN]; /* Argon2id of a random secret, for unknown clients */
	struct salus_users *users;         /* the user registry (authorization code grant), or NULL */
	salus_auth_context_fn context;     /* the patient context of a fhirUser (salus_auth_set_context), or NULL */
	void *context_ctx;
	salus_auth_launch_fn launch_check; /* EHR launch targets exist (salus_auth_set_launch_check), or NULL */
	void *launch_check_ctx;
	salus_auth_pick_fn picker;         /* standalone launch pickers (salus_auth_set_picker), or NULL */
	void *picker_ctx;
	pthread_mutex_t lock;              /* guards cache */
	struct cache_slot *cache;          /* SALUS_AUTH_CACHE_SLOTS, direct-mapped */
};

/* Token-endpoint answers (token.c): JSON body (stolen) / {"error":...}; 401 sets basic_challenge. */
int salus_token_answer(struct salus_token_response *out, int status, json_t *body);
int salus_token_error(struct salus_token_response *out, int status, const char *error);
bool salus_form_media_type(const char *ct);
/* grant_type authorization_code and refresh_token (oauth.c), form already parsed. */
int salus_oauth_grant(struct salus_auth *a, const char *authorization, const struct salus_form *f,
		      struct salus_token_response *out);

/* Sign an access token for a client and answer 200 (token.c). */
int salus_token_issue(struct salus_auth *a, const char *client_id, const char *gen, const char *scope,
		      struct salus_token_response *out);
/* private_key_jwt (backend.c): authenticate a client_credentials request by its
 * client assertion (form already parsed; the caller has checked that no
 * Authorization header was sent).  0 with *answered false and *rec the
 * client's record (new reference); 0 with *answered true when *out holds the
 * refusal (400 invalid_client); SALUS_ENOMEM / SALUS_EIO. */
int salus_backend_authenticate(struct salus_auth *a, const struct salus_form *f, json_t **rec /* OUT */,
			       struct salus_token_response *out, bool *answered /* OUT */);

/* The JWK Set cache of an auth context (backend.c). */
struct salus_jwks_cache;
int salus_jwks_cache_new(struct salus_jwks_cache **out /* OUT */);
void salus_jwks_cache_free(struct salus_jwks_cache *c); /* NULL-safe */

/* Client record read and parse: on success *rec is a new JSON object and
 * *raw the stored bytes (owned).  Errors: SALUS_ENOTFOUND, SALUS_EIO, SALUS_ENOMEM. */
int salus_client_get(struct salus_store *st, const char *id, json_t **rec /* OUT */, char **raw /* OUT */,
		     size_t *raw_n /* OUT */);

/* Before registering a client: 0 when no client has this id; SALUS_EEXISTS
 * (with *why) when one does; SALUS_EIO, SALUS_ENOMEM. */
int salus_client_absent(struct salus_store *st, const char *id, const char **why /* OUT */);

/* The secret hash of a client that has no secret (a public app, a backend
 * service): the Argon2id hash of random bytes nobody keeps, so
 * client_secret_basic can never succeed for it.  Errors: SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_client_unusable_hash(char hash[SALUS_PWHASH_LEN] /* OUT */);

#endif
