/*
 * token.c — the auth context, the OAuth 2.0 token endpoint (client
 * credentials, client_secret_basic) and the JWKS (see auth.h).
 */
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

int salus_auth_new(struct salus_store *store, const char *key_path, const char *issuer, const char *audience,
		   int lifetime_s, struct salus_auth **out)
{
	if (!store || !key_path || !issuer || !*issuer || lifetime_s < 300 || lifetime_s > 3600)
		return SALUS_EINVALID;
	int rc = salus_crypto_init();
	if (rc)
		return rc;
	struct salus_auth *a = salus_calloc(1, sizeof *a);
	if (!a)
		return SALUS_ENOMEM;
	a->store = store;
	a->lifetime = lifetime_s;
	if (pthread_mutex_init(&a->lock, NULL)) {
		salus_free(a);
		return SALUS_ENOMEM;
	}
	struct salus_buf b;
	salus_buf_init(&b, 4096);
	if (!audience) {
		size_t n = strlen(issuer);
		while (n && issuer[n - 1] == '/')
			n--;
		if ((rc = salus_buf_add(&b, issuer, n)) || (rc = salus_buf_adds(&b, "/fhir")))
			goto out_fail;
	} else if ((rc = salus_buf_adds(&b, audience))) {
		goto out_fail;
	}
	rc = SALUS_ENOMEM;
	if (!(a->audience = salus_buf_detach(&b, NULL)) || !(a->issuer = salus_strdup(issuer)))
		goto out_fail;
	size_t in = strlen(issuer);
	while (in && issuer[in - 1] == '/')
		in--;
	salus_buf_init(&b, 4096);
	if ((rc = salus_buf_add(&b, issuer, in)) || (rc = salus_buf_adds(&b, "/auth/token")))
		goto out_fail;
	rc = SALUS_ENOMEM;
	if (!(a->token_url = salus_buf_detach(&b, NULL)) ||
	    !(a->cache = salus_calloc(SALUS_AUTH_CACHE_SLOTS, sizeof *a->cache)))
		goto out_fail;
	if ((rc = salus_signkey_load(key_path, &a->key)) || (rc = salus_jwks_cache_new(&a->jwks)))
		goto out_fail;
	/* The dummy hash: the same parameters as real client hashes, of a secret nobody knows. */
	char junk[33];
	salus_random_token(24, junk, sizeof junk);
	rc = salus_pwhash(junk, strlen(junk), a->dummy_hash);
	sodium_memzero(junk, sizeof junk);
	if (rc)
		goto out_fail;
	*out = a;
	return 0;
out_fail:
	salus_buf_release(&b);
	salus_auth_free(a);
	return rc;
}

void salus_auth_set_context(struct salus_auth *a, salus_auth_context_fn fn, void *ctx)
{
	a->context = fn;
	a->context_ctx = ctx;
}

void salus_auth_set_launch_check(struct salus_auth *a, salus_auth_launch_fn fn, void *ctx)
{
	a->launch_check = fn;
	a->launch_check_ctx = ctx;
}

void salus_auth_set_picker(struct salus_auth *a, salus_auth_pick_fn fn, void *ctx)
{
	a->picker = fn;
	a->picker_ctx = ctx;
}

void salus_auth_free(struct salus_auth *a)
{
	if (!a)
		return;
	if (a->cache) {
		for (size_t i = 0; i < SALUS_AUTH_CACHE_SLOTS; i++)
			salus_grant_unref(a->cache[i].grant);
		salus_free(a->cache);
	}
	pthread_mutex_destroy(&a->lock);
	salus_signkey_free(a->key);
	salus_free(a->issuer);
	salus_free(a->audience);
	salus_free(a->token_url);
	salus_jwks_cache_free(a->jwks);
	salus_free(a);
}

char *salus_auth_jwks(const struct salus_auth *a)
{
	json_t *jwk = salus_signkey_jwk(a->key);
	json_t *set = jwk ? json_pack("{s:[o]}", "keys", jwk) : NULL;
	char *out = NULL;
	if (set) {
		size_t n = json_dumpb(set, NULL, 0, JSON_COMPACT);
		if (n && (out = salus_malloc(n + 1))) {
			json_dumpb(set, out, n, JSON_COMPACT);
			out[n] = 0;
		}
	}
	json_decref(set);
	return out;
}

void salus_token_response_release(struct salus_token_response *r)
{
	if (!r)
		return;
	salus_free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* Fill *out with an answer whose body is built from a JSON object (stolen). */
int salus_token_answer(struct salus_token_response *out, int status, json_t *body)
{
	if (!body)
		return SALUS_ENOMEM;
	size_t n = json_dumpb(body, NULL, 0, JSON_COMPACT);
	char *p = n ? salus_malloc(n + 1) : NULL;
	if (!p) {
		json_decref(body);
		return SALUS_ENOMEM;
	}
	json_dumpb(body, p, n, JSON_COMPACT);
	p[n] = 0;
	json_decref(body);
	out->status = status;
	out->body = p;
	out->body_len = n;
	out->basic_challenge = status == 401;
	return 0;
}

int salus_token_error(struct salus_token_response *out, int status, const char *error)
{
	return salus_token_answer(out, status, json_pack("{s:s}", "error", error));
}

bool salus_form_media_type(const char *ct)
{
	static const char want[] = "application/x-www-form-urlencoded";
	if (!ct || strncasecmp(ct, want, sizeof want - 1))
		return false;
	char c = ct[sizeof want - 1];
	return c == 0 || c == ';' || c == ' ' || c == '\t';
}

/* Authenticate the client: 0 with *rec (new ref) on success, SALUS_EUNAUTHORIZED
 * when unknown or wrong, SALUS_EIO / SALUS_ENOMEM.  Always one Argon2id verify. */
static int authenticate(struct salus_auth *a, const char *id, const char *secret, size_t secret_n, json_t **rec)
{
	json_t *r = NULL;
	char *raw = NULL;
	size_t raw_n = 0;
	int rc = salus_client_id_valid(id) ? salus_client_get(a->store, id, &r, &raw, &raw_n) : SALUS_ENOTFOUND;
	salus_free(raw);
	if (rc && rc != SALUS_ENOTFOUND)
		return rc;
	const char *hash = r ? json_string_value(json_object_get(r, "secret_hash")) : a->dummy_hash;
	bool ok = salus_pwhash_verify(hash, secret, secret_n);
	if (!r || !ok) {
		json_decref(r);
		return SALUS_EUNAUTHORIZED;
	}
	*rec = r;
	return 0;
}

int salus_token_issue(struct salus_auth *a, const char *client_id, const char *gen, const char *scope,
		      struct salus_token_response *out)
{
	char jti[SALUS_B64URL_LEN(18)];
	salus_random_token(18, jti, sizeof jti);
	int64_t now = salus_now_ms() / 1000;
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s}", "iss", a->issuer, "sub", client_id,
				   "aud", a->audience, "iat", (json_int_t)now, "exp", (json_int_t)(now + a->lifetime),
				   "jti", jti, "scope", scope, "client_id", client_id, "cgen", gen);
	if (!claims)
		return SALUS_ENOMEM;
	char *tok = NULL;
	int rc = salus_jwt_sign(a->key, claims, &tok, NULL);
	json_decref(claims);
	if (rc)
		return rc == SALUS_ETOOLARGE ? SALUS_EINTERNAL : rc;
	json_t *body = json_pack("{s:s, s:s, s:i, s:s}", "access_token", tok, "token_type", "Bearer", "expires_in",
				 a->lifetime, "scope", scope);
	salus_free(tok);
	rc = salus_token_answer(out, 200, body);
	if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.token.issued", "client=%s jti=%s", client_id, jti);
	return rc;
}

int salus_auth_token(struct salus_auth *a, const char *authorization, const char *content_type, const char *body,
		     size_t body_n, struct salus_token_response *out)
{
	memset(out, 0, sizeof *out);
	struct salus_form f = {0};
	char id[SALUS_CLIENT_ID_MAX + 1];
	char *secret = NULL, *granted = NULL;
	size_t secret_n = 0;
	json_t *rec = NULL;
	int rc;

	if (!salus_form_media_type(content_type))
		return salus_token_error(out, 400, "invalid_request");
	if ((rc = salus_form_parse(body ? body : "", body ? body_n : 0, &f)))
		return rc == SALUS_ENOMEM ? rc : salus_token_error(out, 400, "invalid_request");

	const struct salus_form_param *gt = salus_form_get(&f, "grant_type");
	const struct salus_form_param *sp = salus_form_get(&f, "scope");
	const struct salus_form_param *cid = salus_form_get(&f, "client_id");
	if (!gt || !gt->value_n) {
		rc = salus_token_error(out, 400, "invalid_request");
		goto out_form;
	}
	if (!strcmp(gt->value, "authorization_code") || !strcmp(gt->value, "refresh_token")) {
		rc = salus_oauth_grant(a, authorization, &f, out); /* oauth.c */
		goto out_form;
	}
	if (strcmp(gt->value, "client_credentials")) {
		rc = salus_token_error(out, 400, "unsupported_grant_type");
		goto out_form;
	}
	bool assertion = salus_form_get(&f, "client_assertion") || salus_form_get(&f, "client_assertion_type");
	if (salus_form_get(&f, "client_secret") || (assertion && authorization)) {
		/* client_secret_post is not supported; two methods at once is invalid_request (§2.3). */
		rc = authorization ? salus_token_error(out, 400, "invalid_request") : salus_token_error(out, 401, "invalid_client");
		goto out_form;
	}
	if (assertion) { /* private_key_jwt (backend.c): SMART Backend Services */
		bool answered;
		rc = salus_backend_authenticate(a, &f, &rec, out, &answered);
		if (rc || answered)
			goto out_form;
		goto authenticated;
	}
	if ((rc = salus_basic_parse(authorization, id, &secret, &secret_n))) {
		rc = rc == SALUS_ENOMEM ? rc : salus_token_error(out, 401, "invalid_client");
		goto out_form;
	}
	if (cid && strcmp(cid->value, id)) {
		rc = salus_token_error(out, 400, "invalid_request");
		goto out_secret;
	}
	rc = authenticate(a, id, secret, secret_n, &rec);
	if (rc == SALUS_EUNAUTHORIZED) {
		salus_log(SALUS_LOG_INFO, "auth.token.denied", "reason=invalid_client");
		rc = salus_token_error(out, 401, "invalid_client");
		goto out_secret;
	}
	if (rc)
		goto out_secret;
authenticated:
	if (json_object_get(rec, "redirect_uris")) { /* a SMART app: authorization code only (oauth.c) */
		rc = salus_token_error(out, 400, "unauthorized_client");
		goto out_rec;
	}
	const char *reg = json_string_value(json_object_get(rec, "scope"));
	struct salus_scopes rs, qs;
	if ((rc = salus_scopes_parse(reg, strlen(reg), &rs))) {
		rc = rc == SALUS_ENOMEM ? rc : SALUS_EIO; /* a stored scope that does not parse: corrupt */
		goto out_rec;
	}
	if (!sp) {
		rc = salus_scopes_format(&rs, &granted);
	} else if (!(rc = salus_scopes_parse(sp->value, sp->value_n, &qs))) {
		rc = salus_scopes_grant(&rs, &qs, &granted);
		salus_scopes_release(&qs);
	}
	salus_scopes_release(&rs);
	if (rc == SALUS_EINVALID || rc == SALUS_ETOOLARGE || rc == SALUS_EFORBIDDEN) {
		rc = salus_token_error(out, 400, "invalid_scope");
		goto out_rec;
	}
	if (rc)
		goto out_rec;
	rc = salus_token_issue(a, json_string_value(json_object_get(rec, "id")), json_string_value(json_object_get(rec, "gen")),
			       granted, out);
	salus_free(granted);
out_rec:
	json_decref(rec);
out_secret:
	salus_secret_free(secret, secret_n);
out_form:
	salus_form_release(&f);
	return rc;
}
