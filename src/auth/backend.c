/*
 * backend.c — SMART Backend Services (SMART App Launch 2.x "Backend
 * Services"; RFC 7523 §2.2 client authentication with a JWT, "private_key_jwt"):
 * registering a backend client with a JWK Set of public keys, and verifying
 * the signed client assertion of a client_credentials token request.
 *
 * Keys and signatures go through libcjose (on OpenSSL); everything a
 * hostile assertion could use to steer the library is decided here first:
 * the algorithm must be RS384 or ES384 (never none, never HS*: cjose's HMAC
 * path would use whatever key it is handed as the secret), the key's type and
 * curve must fit the algorithm, the signature must have the exact length the
 * key makes, and header and claims are parsed strictly (no duplicate
 * members, no header member but alg, kid and typ — no jku, jwk, x5u, x5c or
 * crit to point at another key).  Every refusal is the same 400
 * invalid_client (RFC 7523 §3.2); the reason goes to the log only.
 *
 * A backend client is a record of the "client" namespace (client.c) with
 * "auth":"private_key_jwt" and "jwks":{"keys":[...]} (the public members
 * only, re-serialised); its "secret_hash" is an Argon2id hash of a random
 * secret nobody knows, so client_secret_basic can never succeed for it and
 * costs the same as for any other client.
 *
 * A client may instead register the URL of its JWK Set (--jwks-url): the set
 * is fetched with libcurl when a token is asked for (https only, no
 * redirects, 5 s, 64 KiB), checked like a registered set, and kept in a small
 * cache (auth.jwks_cache_s, default 300 s) as text; an assertion whose kid the
 * cached set lacks refetches it (at most every JWKS_REFETCH_S), so a client
 * can rotate keys by publishing the new one first.  A fetch that fails is a
 * refusal (fail closed; no stale set is used).  A `jku` header member is
 * accepted only when it equals the registered URL (SMART Backend Services).
 *
 * Replay: the assertion's jti is claimed in the store (salus_store_once_claim,
 * namespace "jti", key BLAKE2b-256(client id, jti)) until the assertion's exp
 * plus the leeway; the claim is one job of the single writer (atomic across
 * threads and processes) and durable before the token is issued.
 *
 * cjose allocates with malloc/free directly (cjose_set_alloc_funcs would also
 * re-point OpenSSL's process-wide allocator, which OpenSSL 3 refuses once it
 * has allocated), so its internal allocations are outside the fault-injection
 * seam; everything Salus allocates around it goes through the seam.
 */
#include <cjose/cjose.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define JTI_NS "jti"
#define HDR_MAX 1024   /* decoded JOSE header */
#define SIG_MAX 1024   /* decoded signature: RSA 8192 bits */
#define PAYLOAD_MAX (SALUS_MAX_TOKEN / 4 * 3)
#define KID_MAX 256
#define JTI_MAX 256
#define RSA_MAX_BITS 8192
#define JWKS_URL_MAX 512
#define JWKS_SLOTS 64            /* cached sets (direct-mapped by client id) */
#define JWKS_REFETCH_S 10        /* an unknown kid refetches a set at most this often */
#define JWKS_TIMEOUT_MS 5000     /* whole fetch */
#define JWKS_CONNECT_MS 3000

/* The algorithms accepted, and the key each needs. */
enum key_kind { K_RSA, K_EC384 };
static const struct {
	const char *alg;
	enum key_kind kind;
} algs[] = {{"RS384", K_RSA}, {"ES384", K_EC384}};

static int alg_kind(const char *alg, enum key_kind *k)
{
	for (size_t i = 0; alg && i < sizeof algs / sizeof algs[0]; i++)
		if (!strcmp(alg, algs[i].alg)) {
			*k = algs[i].kind;
			return 0;
		}
	return SALUS_EINVALID;
}

static const char *jstr(const json_t *j, const char *name)
{
	return json_string_value(json_object_get(j, name));
}

/* Length in bytes of a strict base64url string's decoding, or -1. */
static long b64_len(const char *s)
{
	unsigned char buf[SIG_MAX + 8];
	size_t n = 0;
	if (!s || salus_b64url_decode(s, strlen(s), buf, sizeof buf, &n))
		return -1;
	return (long)n;
}

/* Bits of an RSA modulus given in base64url (leading zero octets ignored), or -1. */
static long rsa_bits(const char *n64)
{
	unsigned char buf[SIG_MAX + 8];
	size_t n = 0, i = 0;
	if (!n64 || salus_b64url_decode(n64, strlen(n64), buf, sizeof buf, &n))
		return -1;
	while (i < n && !buf[i])
		i++;
	if (i == n)
		return 0;
	long bits = (long)(n - i - 1) * 8;
	for (unsigned c = buf[i]; c; c >>= 1)
		bits++;
	return bits;
}

/* ---- registration ------------------------------------------------------------------------------ */

/* Check one JWK and append its public form to keys.  0, or SALUS_EINVALID with *why, or SALUS_ENOMEM. */
static int key_check(const json_t *k, json_t *keys, const char **why)
{
	static const char *const private_members[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"};
	if (!json_is_object(k)) {
		*why = "every member of \"keys\" must be a JWK object";
		return SALUS_EINVALID;
	}
	for (size_t i = 0; i < sizeof private_members / sizeof private_members[0]; i++)
		if (json_object_get(k, private_members[i])) {
			*why = "the JWK Set holds private or symmetric key material: register the public keys only";
			return SALUS_EINVALID;
		}
	const char *kty = jstr(k, "kty"), *alg = jstr(k, "alg"), *kid = jstr(k, "kid"), *use = jstr(k, "use");
	if ((json_object_get(k, "alg") && !alg) || (json_object_get(k, "kid") && !kid) ||
	    (json_object_get(k, "use") && !use)) {
		*why = "alg, kid and use must be strings";
		return SALUS_EINVALID;
	}
	if (kid && (!*kid || strlen(kid) > KID_MAX)) {
		*why = "a kid must be 1-256 characters";
		return SALUS_EINVALID;
	}
	if (use && strcmp(use, "sig")) {
		*why = "a key's use must be \"sig\"";
		return SALUS_EINVALID;
	}
	json_t *ops = json_object_get(k, "key_ops");
	if (ops) {
		bool verify = false;
		size_t i;
		json_t *v;
		json_array_foreach(ops, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), "verify")) verify = true;
		if (!json_is_array(ops) || !verify) {
			*why = "a key's key_ops must include \"verify\"";
			return SALUS_EINVALID;
		}
	}
	enum key_kind want;
	json_t *pub = NULL;
	if (kty && !strcmp(kty, "RSA")) {
		const char *ns = jstr(k, "n");
		long bits = rsa_bits(ns), e = b64_len(jstr(k, "e"));
		if (bits < 0 || e <= 0 || e > 8) {
			*why = "an RSA key needs n and e in base64url";
			return SALUS_EINVALID;
		}
		if (bits < SALUS_RSA_MIN_BITS || bits > RSA_MAX_BITS) {
			*why = "RSA keys must be 2048 to 8192 bits";
			return SALUS_EINVALID;
		}
		if (alg && (alg_kind(alg, &want) || want != K_RSA)) {
			*why = "an RSA key's alg must be RS384";
			return SALUS_EINVALID;
		}
		pub = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", ns, "e", jstr(k, "e"));
	} else if (kty && !strcmp(kty, "EC")) {
		const char *crv = jstr(k, "crv");
		if (!crv || strcmp(crv, "P-384")) {
			*why = "EC keys must be on curve P-384 (ES384)";
			return SALUS_EINVALID;
		}
		if (b64_len(jstr(k, "x")) != 48 || b64_len(jstr(k, "y")) != 48) {
			*why = "a P-384 key needs x and y of 48 bytes in base64url";
			return SALUS_EINVALID;
		}
		if (alg && (alg_kind(alg, &want) || want != K_EC384)) {
			*why = "a P-384 key's alg must be ES384";
			return SALUS_EINVALID;
		}
		pub = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-384", "x", jstr(k, "x"), "y", jstr(k, "y"));
	} else {
		*why = "unsupported key type: use RSA (RS384) or EC P-384 (ES384)";
		return SALUS_EINVALID;
	}
	if (!pub || (kid && json_object_set_new(pub, "kid", json_string(kid))) ||
	    (alg && json_object_set_new(pub, "alg", json_string(alg)))) {
		json_decref(pub);
		return SALUS_ENOMEM;
	}
	/* the library must accept it as a key too (an EC point off the curve, a malformed modulus) */
	cjose_err err = {0};
	cjose_jwk_t *jwk = cjose_jwk_import_json((cjose_header_t *)pub, &err);
	if (!jwk) { /* cjose reports some invalid points as CJOSE_ERR_NO_MEMORY: every failure is a refusal */
		json_decref(pub);
		*why = "a key is not a valid public key";
		return SALUS_EINVALID;
	}
	cjose_jwk_release(jwk);
	return json_array_append_new(keys, pub) ? SALUS_ENOMEM : 0;
}

/* Parse and check a JWK Set; *out is {"keys":[public keys]} (new reference). */
static int jwks_check(const char *text, size_t n, json_t **out, const char **why)
{
	if (!text || !n || n > SALUS_JWKS_MAX) {
		*why = "the JWK Set must be 1 byte to 64 KiB of JSON";
		return SALUS_EINVALID;
	}
	json_error_t jerr;
	json_t *set = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	json_t *in = set ? json_object_get(set, "keys") : NULL;
	size_t nk = json_array_size(in);
	if (!json_is_object(set) || !json_is_array(in) || nk == 0 || nk > SALUS_JWKS_MAX_KEYS) {
		json_decref(set);
		*why = "the JWK Set must be a JSON object {\"keys\":[...]} with 1 to 16 keys";
		return SALUS_EINVALID;
	}
	json_t *keys = json_array();
	int rc = keys ? 0 : SALUS_ENOMEM;
	for (size_t i = 0; !rc && i < nk; i++)
		rc = key_check(json_array_get(in, i), keys, why);
	for (size_t i = 0; !rc && i < nk; i++) /* kids unique: a kid selects exactly one key */
		for (size_t j = i + 1; !rc && j < nk; j++) {
			const char *a = jstr(json_array_get(keys, i), "kid"), *b = jstr(json_array_get(keys, j), "kid");
			if (a && b && !strcmp(a, b)) {
				*why = "two keys have the same kid";
				rc = SALUS_EINVALID;
			}
		}
	json_decref(set);
	if (!rc && !(*out = json_pack("{s:o}", "keys", keys)))
		return SALUS_ENOMEM;
	if (rc)
		json_decref(keys);
	return rc;
}

/* Register backend client `id` with `scope` and its keys: member `key` of the record is `keyval`
 * (stolen: the checked JWK Set, or the JWK Set URL).  The record's secret hash is of a random secret
 * nobody knows, so client_secret_basic never succeeds for it.  Errors as salus_auth_backend_add. */
static int register_backend(struct salus_store *st, const char *id, const char *scope, const char *key,
			    json_t *keyval, const char **why)
{
	struct salus_scopes sc;
	char *canon = NULL, *text = NULL;
	json_t *rec = NULL;
	int rc = scope ? salus_scopes_parse(scope, strlen(scope), &sc) : SALUS_EINVALID;
	if (rc) {
		json_decref(keyval);
		if (rc == SALUS_ENOMEM)
			return rc;
		*why = "scope must be SMART resource scopes, e.g. \"system/Patient.rs system/Observation.rs\"";
		return SALUS_EINVALID;
	}
	rc = salus_scopes_format(&sc, &canon);
	salus_scopes_release(&sc);
	if (rc)
		goto out;
	if ((rc = salus_client_absent(st, id, why)))
		goto out;
	char hash[SALUS_PWHASH_LEN], gen[SALUS_B64URL_LEN(16)], created[SALUS_INSTANT_LEN];
	if ((rc = salus_client_unusable_hash(hash)))
		goto out;
	salus_random_token(16, gen, sizeof gen);
	salus_instant_format(salus_now_ms(), created);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O}", "id", id, "secret_hash", hash, "scope", canon, "created",
			created, "gen", gen, "auth", "private_key_jwt", key, keyval);
	size_t tn = rec ? json_dumpb(rec, NULL, 0, JSON_COMPACT) : 0;
	if (!tn || !(text = salus_malloc(tn))) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	json_dumpb(rec, text, tn, JSON_COMPACT);
	rc = salus_store_kv_put(st, "client", id, text, tn);
	if (!rc && json_is_object(keyval))
		salus_log(SALUS_LOG_INFO, "auth.client.add", "client=%s auth=private_key_jwt keys=%zu", id,
			  json_array_size(json_object_get(keyval, "keys")));
	else if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.client.add", "client=%s auth=private_key_jwt keys=url", id);
out:
	salus_free(text);
	json_decref(rec);
	json_decref(keyval);
	salus_free(canon);
	return rc;
}

int salus_auth_backend_add(struct salus_store *st, const char *id, const char *scope, const char *jwks, size_t jwks_n,
			   const char **why)
{
	const char *dummy;
	json_t *set = NULL;
	if (!why)
		why = &dummy;
	if (!salus_client_id_valid(id)) {
		*why = "client id must be 1-64 characters of A-Z a-z 0-9 . _ -";
		return SALUS_EINVALID;
	}
	int rc = jwks_check(jwks, jwks_n, &set, why);
	return rc ? rc : register_backend(st, id, scope, "jwks", set, why);
}

static bool url_ok(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (n <= 8 || n > JWKS_URL_MAX || strncmp(u, "https://", 8) || strchr(u, '#'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f || u[i] == '"' || u[i] == '\\')
			return false;
	return true;
}

int salus_auth_backend_add_url(struct salus_store *st, const char *id, const char *scope, const char *url,
			       const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (!salus_client_id_valid(id)) {
		*why = "client id must be 1-64 characters of A-Z a-z 0-9 . _ -";
		return SALUS_EINVALID;
	}
	if (!url_ok(url)) {
		*why = "the JWK Set URL must be an https URL of at most 512 bytes, without fragment or blanks";
		return SALUS_EINVALID;
	}
	json_t *u = json_string(url);
	return u ? register_backend(st, id, scope, "jwks_uri", u, why) : SALUS_ENOMEM;
}

/* ---- fetched JWK Sets ------------------------------------------------------------------------------ */

struct jwks_slot {
	char client[SALUS_CLIENT_ID_MAX + 1];
	char url[JWKS_URL_MAX + 1];
	char *text;         /* the checked set, canonical JSON (owned), or NULL: empty */
	int64_t fetched_ms; /* when */
};

struct salus_jwks_cache {
	pthread_mutex_t lock; /* guards slots */
	char *ca_file;        /* or NULL: the system's CAs */
	int cache_s;
	struct jwks_slot slots[JWKS_SLOTS];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static bool curl_ready;
static void curl_start(void)
{
	curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

int salus_jwks_cache_new(struct salus_jwks_cache **out)
{
	struct salus_jwks_cache *c = salus_calloc(1, sizeof *c);
	if (!c)
		return SALUS_ENOMEM;
	if (pthread_mutex_init(&c->lock, NULL)) {
		salus_free(c);
		return SALUS_ENOMEM;
	}
	c->cache_s = 300;
	pthread_once(&curl_once, curl_start); /* at start-up, before the server's threads */
	*out = c;
	return 0;
}

void salus_jwks_cache_free(struct salus_jwks_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < JWKS_SLOTS; i++)
		salus_free(c->slots[i].text);
	salus_free(c->ca_file);
	pthread_mutex_destroy(&c->lock);
	salus_free(c);
}

int salus_auth_set_jwks_fetch(struct salus_auth *a, const char *ca_file, int cache_s)
{
	if (!a || cache_s < 1 || cache_s > 86400)
		return SALUS_EINVALID;
	char *ca = ca_file && *ca_file ? salus_strdup(ca_file) : NULL;
	if (ca_file && *ca_file && !ca)
		return SALUS_ENOMEM;
	salus_free(a->jwks->ca_file);
	a->jwks->ca_file = ca;
	a->jwks->cache_s = cache_s;
	return 0;
}

static size_t slot_of_client(const char *id)
{
	unsigned char h[SALUS_HASH_LEN];
	salus_hash256(id, strlen(id), h);
	return h[0] % JWKS_SLOTS;
}

struct fetch_buf {
	char *p;
	size_t n;
	bool over;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct fetch_buf *b = ctx;
	size_t n = size * nmemb;
	if (b->n + n > SALUS_JWKS_MAX) {
		b->over = true;
		return 0; /* aborts the transfer */
	}
	memcpy(b->p + b->n, data, n);
	b->n += n;
	return n;
}

/* GET url into a new buffer (≤ SALUS_JWKS_MAX).  0, SALUS_EIO (any failure), SALUS_ENOMEM. */
static int fetch(const struct salus_jwks_cache *c, const char *url, char **out, size_t *n)
{
	if (!curl_ready)
		return SALUS_EIO;
	struct fetch_buf b = {salus_malloc(SALUS_JWKS_MAX), 0, false};
	CURL *h = b.p ? curl_easy_init() : NULL;
	if (!h) {
		salus_free(b.p);
		return SALUS_ENOMEM;
	}
	long status = 0;
	int rc = SALUS_EIO;
	if (curl_easy_setopt(h, CURLOPT_URL, url) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https") == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)JWKS_TIMEOUT_MS) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)JWKS_CONNECT_MS) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_USERAGENT, "salus") == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body) == CURLE_OK &&
	    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b) == CURLE_OK &&
	    (!c->ca_file || curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file) == CURLE_OK) &&
	    curl_easy_perform(h) == CURLE_OK && curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	    status == 200 && !b.over && b.n)
		rc = 0;
	curl_easy_cleanup(h);
	if (rc) {
		salus_free(b.p);
		salus_log(SALUS_LOG_WARN, "auth.jwks.fetch_failed", "http_status=%ld too_large=%d", status, b.over ? 1 : 0);
		return rc;
	}
	*out = b.p;
	*n = b.n;
	return 0;
}

static bool set_has_kid(const json_t *set, const char *kid)
{
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(set, "keys"), i, k)
	{
		const char *v = json_string_value(json_object_get(k, "kid"));
		if (v && !strcmp(v, kid))
			return true;
	}
	return false;
}

/* The JWK Set of client id published at url (new reference): from the cache while fresh (and,
 * when kid is not NULL, while it holds kid or was fetched less than JWKS_REFETCH_S ago), else
 * fetched and checked.  0, SALUS_EUNAUTHORIZED (could not be had, or is not a valid set),
 * SALUS_ENOMEM. */
static int url_keys(struct salus_auth *a, const char *id, const char *url, const char *kid, json_t **out)
{
	struct salus_jwks_cache *c = a->jwks;
	struct jwks_slot *sl = &c->slots[slot_of_client(id)];
	int64_t now = salus_now_ms();
	char *copy = NULL;
	pthread_mutex_lock(&c->lock);
	if (sl->text && !strcmp(sl->client, id) && !strcmp(sl->url, url) && now - sl->fetched_ms < (int64_t)c->cache_s * 1000) {
		copy = salus_strdup(sl->text);
		int64_t age = now - sl->fetched_ms;
		pthread_mutex_unlock(&c->lock);
		if (!copy)
			return SALUS_ENOMEM;
		json_t *set = json_loads(copy, JSON_REJECT_DUPLICATES, NULL);
		salus_free(copy);
		if (!set)
			return SALUS_ENOMEM; /* it parsed when it was stored */
		if (!kid || set_has_kid(set, kid) || age < JWKS_REFETCH_S * 1000) {
			*out = set;
			return 0;
		}
		json_decref(set); /* a kid the set does not hold: the client may have rotated */
	} else {
		pthread_mutex_unlock(&c->lock);
	}
	char *body = NULL;
	size_t n = 0;
	int rc = fetch(c, url, &body, &n);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EUNAUTHORIZED;
	json_t *set = NULL;
	const char *why = NULL;
	rc = jwks_check(body, n, &set, &why);
	salus_free(body);
	if (rc) {
		if (rc != SALUS_ENOMEM)
			salus_log(SALUS_LOG_WARN, "auth.jwks.invalid", "client=%s", id);
		return rc == SALUS_ENOMEM ? rc : SALUS_EUNAUTHORIZED;
	}
	char *text = json_dumps(set, JSON_COMPACT);
	if (!text) {
		json_decref(set);
		return SALUS_ENOMEM;
	}
	pthread_mutex_lock(&c->lock);
	salus_free(sl->text);
	sl->text = text;
	memcpy(sl->client, id, strlen(id) + 1);
	memcpy(sl->url, url, strlen(url) + 1);
	sl->fetched_ms = salus_now_ms();
	pthread_mutex_unlock(&c->lock);
	*out = set;
	return 0;
}

/* ---- the assertion ------------------------------------------------------------------------------- */

/* A refusal: 400 invalid_client, the reason logged (never sent). */
static int refuse(struct salus_token_response *out, bool *answered, const char *reason)
{
	*answered = true;
	salus_log(SALUS_LOG_INFO, "auth.token.denied", "reason=invalid_client method=private_key_jwt check=%s",
		  reason);
	return salus_token_error(out, 400, "invalid_client");
}

/* Decode one base64url segment [s, s+n) as a strict JSON object (new reference), or NULL. */
static json_t *segment_json(const char *s, size_t n, unsigned char *buf, size_t cap, bool *nomem)
{
	size_t bn = 0;
	if (salus_b64url_decode(s, n, buf, cap, &bn) || !bn)
		return NULL;
	json_error_t err;
	memset(&err, 0, sizeof err);
	json_t *j = json_loadb((const char *)buf, bn, JSON_REJECT_DUPLICATES, &err);
	if (!j && json_error_code(&err) == json_error_out_of_memory)
		*nomem = true;
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* A NumericDate claim: absent (false, *v untouched) or a finite number (true). *bad when neither. */
static bool num_claim(const json_t *c, const char *name, double *v, bool *bad)
{
	json_t *j = json_object_get(c, name);
	if (!j)
		return false;
	if (!json_is_number(j) || !isfinite(json_number_value(j))) {
		*bad = true;
		return false;
	}
	*v = json_number_value(j);
	return true;
}

static bool aud_ok(const json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return true;
	return false;
}

/* Does key k fit algorithm kind want (and the header's alg when the key names one)? */
static bool key_fits(const json_t *k, enum key_kind want, const char *alg)
{
	const char *kty = jstr(k, "kty"), *kalg = jstr(k, "alg");
	if (!kty || (kalg && strcmp(kalg, alg)))
		return false;
	return want == K_RSA ? !strcmp(kty, "RSA") : !strcmp(kty, "EC") && jstr(k, "crv") && !strcmp(jstr(k, "crv"), "P-384");
}

/* Verify the compact JWS with key k; SALUS_ENOMEM, SALUS_EUNAUTHORIZED or 0. */
static int verify_with(cjose_jws_t *jws, json_t *k, enum key_kind kind, size_t sig_n)
{
	if (kind == K_EC384 && sig_n != 96)
		return SALUS_EUNAUTHORIZED;
	if (kind == K_RSA && (long)sig_n != (rsa_bits(jstr(k, "n")) + 7) / 8)
		return SALUS_EUNAUTHORIZED;
	cjose_err err = {0};
	cjose_jwk_t *jwk = cjose_jwk_import_json((cjose_header_t *)k, &err);
	if (!jwk)
		return err.code == CJOSE_ERR_NO_MEMORY ? SALUS_ENOMEM : SALUS_EUNAUTHORIZED;
	bool ok = cjose_jws_verify(jws, jwk, &err);
	cjose_jwk_release(jwk);
	if (!ok && err.code == CJOSE_ERR_NO_MEMORY)
		return SALUS_ENOMEM;
	return ok ? 0 : SALUS_EUNAUTHORIZED;
}

int salus_backend_authenticate(struct salus_auth *a, const struct salus_form *f, json_t **rec,
			       struct salus_token_response *out, bool *answered)
{
	const struct salus_form_param *pt = salus_form_get(f, "client_assertion_type"),
				      *pa = salus_form_get(f, "client_assertion"), *pc = salus_form_get(f, "client_id");
	*answered = false;
	if (!pt || strcmp(pt->value, ASSERTION_TYPE) || !pa)
		return refuse(out, answered, "assertion_type");
	const char *tok = pa->value;
	size_t n = pa->value_n;
	const char *d1 = memchr(tok, '.', n), *d2 = d1 ? memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - tok)) : NULL;
	if (n > SALUS_MAX_TOKEN || !d1 || !d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - tok)) || d1 == tok ||
	    d2 == d1 + 1 || d2 + 1 == tok + n)
		return refuse(out, answered, "format");

	unsigned char hbuf[HDR_MAX], sbuf[SIG_MAX];
	unsigned char *pbuf = salus_malloc(PAYLOAD_MAX);
	if (!pbuf)
		return SALUS_ENOMEM;
	bool nomem = false;
	json_t *hdr = segment_json(tok, (size_t)(d1 - tok), hbuf, sizeof hbuf, &nomem);
	json_t *claims = hdr ? segment_json(d1 + 1, (size_t)(d2 - d1 - 1), pbuf, PAYLOAD_MAX, &nomem) : NULL;
	json_t *r = NULL, *fetched = NULL;
	cjose_jws_t *jws = NULL;
	char *raw = NULL;
	size_t raw_n = 0, sig_n = 0;
	enum key_kind kind = K_RSA;
	int rc;
	salus_free(pbuf);
	if (nomem) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	if (!hdr || !claims) {
		rc = refuse(out, answered, "format");
		goto out;
	}
	/* the header: alg, kid, typ, jku (checked below) and nothing else (no jwk / x5u / x5c / crit) */
	const char *name;
	json_t *v;
	json_object_foreach(hdr, name, v)
	{
		if ((strcmp(name, "alg") && strcmp(name, "kid") && strcmp(name, "typ") && strcmp(name, "jku")) ||
		    !json_is_string(v)) {
			rc = refuse(out, answered, "header");
			goto out;
		}
	}
	const char *alg = jstr(hdr, "alg"), *kid = jstr(hdr, "kid"), *typ = jstr(hdr, "typ"), *jku = jstr(hdr, "jku");
	if (alg_kind(alg, &kind)) {
		rc = refuse(out, answered, "alg");
		goto out;
	}
	if ((typ && strcmp(typ, "JWT")) || (kid && (!*kid || strlen(kid) > KID_MAX))) {
		rc = refuse(out, answered, "header");
		goto out;
	}
	/* who claims to be asking */
	const char *iss = jstr(claims, "iss"), *sub = jstr(claims, "sub");
	if (!iss || !salus_client_id_valid(iss)) {
		rc = refuse(out, answered, "iss");
		goto out;
	}
	memcpy(out->client_id, iss, strlen(iss) + 1); /* for the audit: as claimed */
	if (!sub || strcmp(iss, sub) || (pc && strcmp(pc->value, iss))) {
		rc = refuse(out, answered, "sub");
		goto out;
	}
	rc = salus_client_get(a->store, iss, &r, &raw, &raw_n);
	salus_free(raw);
	if (rc == SALUS_ENOTFOUND) {
		rc = refuse(out, answered, "client");
		goto out;
	}
	if (rc)
		goto out;
	const char *url = jstr(r, "jwks_uri");
	if (jku && (!url || strcmp(jku, url))) { /* jku may only name the registered URL */
		rc = refuse(out, answered, "jku");
		goto out;
	}
	if (url && !json_object_get(r, "jwks")) {
		rc = url_keys(a, iss, url, kid, &fetched);
		if (rc == SALUS_ENOMEM)
			goto out;
		if (rc) {
			rc = refuse(out, answered, "jwks_url");
			goto out;
		}
	}
	json_t *keys = json_object_get(fetched ? fetched : json_object_get(r, "jwks"), "keys");
	if (!json_is_array(keys)) { /* a client with a secret, or a SMART app */
		rc = refuse(out, answered, "client");
		goto out;
	}
	/* the signature, with the key the kid names (or each key that fits the algorithm) */
	if (salus_b64url_decode(d2 + 1, (size_t)(tok + n - d2 - 1), sbuf, sizeof sbuf, &sig_n)) {
		rc = refuse(out, answered, "format");
		goto out;
	}
	cjose_err err = {0};
	if (!(jws = cjose_jws_import(tok, n, &err))) {
		rc = err.code == CJOSE_ERR_NO_MEMORY ? SALUS_ENOMEM : refuse(out, answered, "format");
		goto out;
	}
	rc = SALUS_EUNAUTHORIZED;
	bool kid_found = false;
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		if (kid && (!jstr(k, "kid") || strcmp(jstr(k, "kid"), kid)))
			continue;
		kid_found = true;
		if (!key_fits(k, kind, alg))
			continue;
		if ((rc = verify_with(jws, k, kind, sig_n)) != SALUS_EUNAUTHORIZED)
			break;
	}
	if (rc == SALUS_ENOMEM)
		goto out;
	if (rc) {
		rc = refuse(out, answered, kid && !kid_found ? "kid" : "signature");
		goto out;
	}
	/* the claims (RFC 7523 §3, SMART Backend Services) */
	double exp = 0, nbf = 0, iat = 0, now = (double)time(NULL);
	bool bad = false, has_exp = num_claim(claims, "exp", &exp, &bad);
	bool has_nbf = num_claim(claims, "nbf", &nbf, &bad), has_iat = num_claim(claims, "iat", &iat, &bad);
	const char *jti = jstr(claims, "jti");
	if (!aud_ok(json_object_get(claims, "aud"), a->token_url)) {
		rc = refuse(out, answered, "aud");
		goto out;
	}
	if (bad || !has_exp || exp + SALUS_AUTH_LEEWAY_S <= now) {
		rc = refuse(out, answered, "exp");
		goto out;
	}
	if (exp > now + SALUS_ASSERTION_MAX_LIFETIME_S + SALUS_AUTH_LEEWAY_S) {
		rc = refuse(out, answered, "exp_too_far");
		goto out;
	}
	if ((has_nbf && nbf > now + SALUS_AUTH_LEEWAY_S) || (has_iat && iat > now + SALUS_AUTH_LEEWAY_S)) {
		rc = refuse(out, answered, "not_yet_valid");
		goto out;
	}
	if (!jti || !*jti || strlen(jti) > JTI_MAX) {
		rc = refuse(out, answered, "jti");
		goto out;
	}
	/* replay: the jti is claimed once, until the assertion could no longer be accepted */
	unsigned char h[SALUS_HASH_LEN];
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	struct salus_buf kb;
	salus_buf_init(&kb, SALUS_CLIENT_ID_MAX + JTI_MAX + 2);
	if (salus_buf_adds(&kb, iss) || salus_buf_addc(&kb, '\n') || salus_buf_adds(&kb, jti)) {
		salus_buf_release(&kb);
		rc = SALUS_ENOMEM;
		goto out;
	}
	salus_hash256(kb.p, kb.n, h);
	salus_buf_release(&kb);
	salus_b64url_encode(h, sizeof h, key, sizeof key);
	int64_t until = (int64_t)floor(exp) + SALUS_AUTH_LEEWAY_S + 1, now_s = (int64_t)now;
	rc = salus_store_once_claim(a->store, JTI_NS, key, until > now_s ? until : now_s + 1, now_s);
	if (rc == SALUS_EEXISTS) {
		rc = refuse(out, answered, "replay");
		goto out;
	}
	if (rc) {
		rc = rc == SALUS_ENOMEM ? rc : SALUS_EIO;
		goto out;
	}
	*rec = r;
	r = NULL;
out:
	if (jws)
		cjose_jws_release(jws);
	json_decref(fetched);
	json_decref(r);
	json_decref(hdr);
	json_decref(claims);
	return rc;
}
