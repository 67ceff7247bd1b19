/*
 * check.c — bearer-token check with a verified-token cache (see auth.h).
 *
 * The cache is a direct-mapped table of SALUS_AUTH_CACHE_SLOTS entries keyed
 * by BLAKE2b-256 of the token, under one mutex held only for a slot lookup or
 * swap.  An entry holds a reference-counted, immutable grant (client, jti,
 * exp, parsed scopes) and the client's registry record as it was when the
 * token was verified.  A hit skips the signature check and the JSON/scope
 * parsing, but never the registry: every check reads the client's record
 * (one key/value read) and requires it to be byte-identical to the cached
 * one, so a removal — or a removal and re-registration — by any process
 * ends the token's validity on the next request.
 */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"

void salus_grant_unref(struct salus_grant *g)
{
	if (!g || atomic_fetch_sub(&g->refs, 1) != 1)
		return;
	salus_scopes_release(&g->scopes);
	salus_free(g->record);
	salus_free(g);
}

void salus_principal_release(struct salus_principal *p)
{
	if (!p)
		return;
	salus_grant_unref(p->grant_);
	p->grant_ = NULL;
	p->scopes = NULL;
}

const char *salus_auth_challenge(const char *authorization)
{
	if (!authorization || !*authorization)
		return "Bearer realm=\"salus\"";
	return "Bearer realm=\"salus\", error=\"invalid_token\"";
}

static bool token_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
	       c == '.';
}

/* Extract the token of "Bearer <token>" (scheme case-insensitive). */
static bool bearer_token(const char *h, const char **tok, size_t *n)
{
	if (!h || strncasecmp(h, "Bearer ", 7))
		return false;
	const char *p = h + 7;
	while (*p == ' ')
		p++;
	size_t i = 0;
	while (i <= SALUS_MAX_TOKEN && token_char(p[i]))
		i++;
	if (i == 0 || i > SALUS_MAX_TOKEN)
		return false;
	for (const char *q = p + i; *q; q++) /* only trailing blanks may follow */
		if (*q != ' ' && *q != '\t')
			return false;
	*tok = p;
	*n = i;
	return true;
}

static size_t slot_of(const unsigned char key[SALUS_HASH_LEN])
{
	size_t v;
	memcpy(&v, key, sizeof v);
	return v & (SALUS_AUTH_CACHE_SLOTS - 1);
}

_Static_assert((SALUS_AUTH_CACHE_SLOTS & (SALUS_AUTH_CACHE_SLOTS - 1)) == 0, "cache slots: power of two");

/* A new reference to the cached grant for key, or NULL. */
static struct salus_grant *cache_get(struct salus_auth *a, const unsigned char key[SALUS_HASH_LEN])
{
	struct cache_slot *s = &a->cache[slot_of(key)];
	struct salus_grant *g = NULL;
	pthread_mutex_lock(&a->lock);
	if (s->grant && salus_ct_eq(s->key, key, SALUS_HASH_LEN)) {
		g = s->grant;
		atomic_fetch_add(&g->refs, 1);
	}
	pthread_mutex_unlock(&a->lock);
	return g;
}

/* Drop the cache's reference to g if it still holds it. */
static void cache_evict(struct salus_auth *a, const unsigned char key[SALUS_HASH_LEN], struct salus_grant *g)
{
	struct cache_slot *s = &a->cache[slot_of(key)];
	struct salus_grant *old = NULL;
	pthread_mutex_lock(&a->lock);
	if (s->grant == g) {
		old = g;
		s->grant = NULL;
	}
	pthread_mutex_unlock(&a->lock);
	salus_grant_unref(old);
}

/* Put g (the caller's reference is taken over by the cache) in its slot. */
static void cache_put(struct salus_auth *a, const unsigned char key[SALUS_HASH_LEN], struct salus_grant *g)
{
	struct cache_slot *s = &a->cache[slot_of(key)];
	pthread_mutex_lock(&a->lock);
	struct salus_grant *old = s->grant;
	memcpy(s->key, key, SALUS_HASH_LEN);
	s->grant = g;
	pthread_mutex_unlock(&a->lock);
	salus_grant_unref(old);
}

static void fill(struct salus_principal *out, struct salus_grant *g)
{
	memcpy(out->client_id, g->client_id, sizeof out->client_id);
	memcpy(out->jti, g->jti, sizeof out->jti);
	memcpy(out->user_id, g->uid, sizeof out->user_id);
	memcpy(out->fhir_user, g->fhir_user, sizeof out->fhir_user);
	memcpy(out->patient, g->patient, sizeof out->patient);
	memcpy(out->role, g->role, sizeof out->role);
	out->exp = g->exp;
	out->scopes = &g->scopes;
	out->grant_ = g;
}

static bool copy_claim(json_t *claims, const char *name, char *dst, size_t cap)
{
	const char *v = json_string_value(json_object_get(claims, name));
	size_t n = v ? strlen(v) : 0;
	if (!n || n >= cap)
		return false;
	memcpy(dst, v, n + 1);
	return true;
}

/* Full verification of a token not in the cache.  On success *out is a new grant with two references. */
static int verify_full(struct salus_auth *a, const char *tok, size_t n, struct salus_grant **out)
{
	struct salus_jwt_expect ex = {a->issuer, a->audience, 0, SALUS_AUTH_LEEWAY_S};
	json_t *claims = NULL, *rec = NULL;
	int rc = salus_jwt_verify(a->key, tok, n, &ex, &claims);
	if (rc)
		return rc;
	struct salus_grant *g = salus_calloc(1, sizeof *g);
	if (!g) {
		rc = SALUS_ENOMEM;
		goto out_claims;
	}
	atomic_init(&g->refs, 1);
	rc = SALUS_EUNAUTHORIZED;
	const char *scope = json_string_value(json_object_get(claims, "scope"));
	const char *cgen = json_string_value(json_object_get(claims, "cgen"));
	const char *cid = json_string_value(json_object_get(claims, "client_id"));
	if (!copy_claim(claims, "sub", g->client_id, sizeof g->client_id) ||
	    !copy_claim(claims, "jti", g->jti, sizeof g->jti) || !scope || !cgen || !cid ||
	    strcmp(cid, g->client_id) || !salus_client_id_valid(g->client_id))
		goto out_grant;
	g->exp = (int64_t)json_integer_value(json_object_get(claims, "exp"));
	int prc = salus_scopes_parse(scope, strlen(scope), &g->scopes);
	if (prc) {
		rc = prc == SALUS_ENOMEM ? prc : SALUS_EUNAUTHORIZED;
		goto out_grant;
	}
	if (json_object_get(claims, "uid")) { /* a user's token (authorization code grant) */
		if (!copy_claim(claims, "uid", g->uid, sizeof g->uid) ||
		    !copy_claim(claims, "ugen", g->ugen, sizeof g->ugen))
			goto out_grant;
		g->scopes.user_ctx = true;
		if (json_object_get(claims, "fhirUser") &&
		    !copy_claim(claims, "fhirUser", g->fhir_user, sizeof g->fhir_user))
			goto out_grant;
		if (json_object_get(claims, "patient") && !copy_claim(claims, "patient", g->patient, sizeof g->patient))
			goto out_grant;
		if (json_object_get(claims, "role") && !copy_claim(claims, "role", g->role, sizeof g->role))
			goto out_grant;
	}
	if (json_object_get(claims, "fam") && !copy_claim(claims, "fam", g->fam, sizeof g->fam))
		goto out_grant;
	int grc = salus_client_get(a->store, g->client_id, &rec, &g->record, &g->record_n);
	if (grc) {
		rc = grc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : grc;
		goto out_grant;
	}
	const char *gen = json_string_value(json_object_get(rec, "gen"));
	if (!gen || strcmp(gen, cgen)) /* the client was removed and registered again */
		goto out_rec;
	atomic_store(&g->refs, 2);
	*out = g;
	g = NULL;
	rc = 0;
out_rec:
	json_decref(rec);
out_grant:
	salus_grant_unref(g);
out_claims:
	json_decref(claims);
	return rc;
}

int salus_auth_check(struct salus_auth *a, const char *authorization, struct salus_principal *out)
{
	const char *tok;
	size_t n;
	if (!bearer_token(authorization, &tok, &n))
		return SALUS_EUNAUTHORIZED;
	unsigned char key[SALUS_HASH_LEN];
	salus_hash256(tok, n, key);

	struct salus_grant *g = cache_get(a, key);
	if (g) {
		if ((int64_t)time(NULL) >= g->exp + SALUS_AUTH_LEEWAY_S) {
			cache_evict(a, key, g);
			salus_grant_unref(g);
			return SALUS_EUNAUTHORIZED;
		}
		char *val = NULL;
		size_t vn = 0;
		int rc = salus_store_kv_get(a->store, "client", g->client_id, &val, &vn);
		bool same = rc == 0 && vn == g->record_n && !memcmp(val, g->record, vn);
		salus_free(val);
		if (same && (rc = salus_oauth_still_valid(a, g)) != 0) {
			cache_evict(a, key, g);
			salus_grant_unref(g);
			return rc;
		}
		if (same) {
			fill(out, g);
			return 0;
		}
		cache_evict(a, key, g);
		salus_grant_unref(g);
		if (rc == SALUS_ENOTFOUND)
			return SALUS_EUNAUTHORIZED;
		if (rc)
			return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
		/* the record changed: verify from scratch */
	}
	int rc = verify_full(a, tok, n, &g);
	if (rc)
		return rc;
	if ((rc = salus_oauth_still_valid(a, g))) {
		salus_grant_unref(g);
		salus_grant_unref(g);
		return rc;
	}
	cache_put(a, key, g); /* one reference to the cache, one to the principal */
	fill(out, g);
	return 0;
}
