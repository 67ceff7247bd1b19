/*
 * client.c — the OAuth client registry, kept in the store's key/value
 * namespace "client".  A record is JSON:
 *   {"id":..., "secret_hash":"$argon2id$...", "scope":"<canonical>",
 *    "created":"<FHIR instant>", "gen":"<random base64url>"}
 * The secret itself is never stored, returned or logged.
 */
#include <string.h>

#include <sodium.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#define CLIENT_NS "client"

bool salus_client_id_valid(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		if (n >= SALUS_CLIENT_ID_MAX)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-'))
			return false;
	}
	return n > 0;
}

int salus_client_get(struct salus_store *st, const char *id, json_t **rec, char **raw, size_t *raw_n)
{
	char *val = NULL;
	size_t n = 0;
	int rc = salus_store_kv_get(st, CLIENT_NS, id, &val, &n);
	if (rc)
		return rc == SALUS_ENOTFOUND || rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_error_t err;
	/* jansson leaves err unset when it cannot allocate its lexer: preset "out of memory". */
	memset(&err, 0, sizeof err);
	err.text[JSON_ERROR_TEXT_LENGTH - 1] = (char)json_error_out_of_memory;
	json_t *j = json_loadb(val, n, JSON_REJECT_DUPLICATES, &err);
	if (!j || !json_is_object(j) || !json_is_string(json_object_get(j, "secret_hash")) ||
	    !json_is_string(json_object_get(j, "scope")) || !json_is_string(json_object_get(j, "gen"))) {
		json_decref(j);
		salus_free(val);
		if (!j && json_error_code(&err) == json_error_out_of_memory)
			return SALUS_ENOMEM;
		/* Corrupt, or out of memory inside jansson's lexer (which reports that as a
		 * syntax error): either way the caller answers 500. */
		salus_log(SALUS_LOG_WARN, "auth.client.unreadable", "ns=client");
		return SALUS_EIO;
	}
	*rec = j;
	*raw = val;
	*raw_n = n;
	return 0;
}

static void set_why(const char **why, const char *msg)
{
	if (why)
		*why = msg;
}

int salus_auth_client_add(struct salus_store *st, const char *id, const char *secret, size_t secret_n,
			  const char *scope, const char **why)
{
	if (!salus_client_id_valid(id)) {
		set_why(why, "client id must be 1-64 characters of A-Z a-z 0-9 . _ -");
		return SALUS_EINVALID;
	}
	if (!secret || secret_n < SALUS_CLIENT_SECRET_MIN || secret_n > SALUS_MAX_SECRET ||
	    memchr(secret, 0, secret_n)) {
		set_why(why, "client secret must be 16-1024 bytes without NUL");
		return SALUS_EINVALID;
	}
	struct salus_scopes sc;
	int rc = scope ? salus_scopes_parse(scope, strlen(scope), &sc) : SALUS_EINVALID;
	if (rc) {
		if (rc != SALUS_ENOMEM) {
			set_why(why, "scope must be SMART resource scopes, e.g. \"system/Patient.rs system/*.read\"");
			rc = SALUS_EINVALID;
		}
		return rc;
	}
	char *canon = NULL, *text = NULL;
	json_t *rec = NULL;
	char hash[SALUS_PWHASH_LEN], gen[SALUS_B64URL_LEN(16)], created[SALUS_INSTANT_LEN];
	if ((rc = salus_scopes_format(&sc, &canon)))
		goto out_scopes;
	if ((rc = salus_client_absent(st, id, why)))
		goto out_canon;
	if ((rc = salus_pwhash(secret, secret_n, hash)))
		goto out_canon;
	salus_random_token(16, gen, sizeof gen);
	salus_instant_format(salus_now_ms(), created);
	rec = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", id, "secret_hash", hash, "scope", canon, "created", created,
			"gen", gen);
	if (!rec) {
		rc = SALUS_ENOMEM;
		goto out_canon;
	}
	size_t tn = json_dumpb(rec, NULL, 0, JSON_COMPACT);
	if (!tn || !(text = salus_malloc(tn))) {
		rc = SALUS_ENOMEM;
		goto out_rec;
	}
	json_dumpb(rec, text, tn, JSON_COMPACT);
	rc = salus_store_kv_put(st, CLIENT_NS, id, text, tn);
	if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.client.add", "client=%s", id);
	salus_free(text);
out_rec:
	json_decref(rec);
out_canon:
	salus_free(canon);
out_scopes:
	salus_scopes_release(&sc);
	return rc;
}

int salus_auth_client_remove(struct salus_store *st, const char *id)
{
	if (!salus_client_id_valid(id))
		return SALUS_ENOTFOUND;
	int rc = salus_store_kv_del(st, CLIENT_NS, id);
	if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.client.remove", "client=%s", id);
	return rc;
}

struct list_ctx {
	salus_client_cb cb;
	void *ctx;
};

static int on_kv(void *ctx, const char *key, const char *val, size_t n)
{
	struct list_ctx *lc = ctx;
	json_error_t err;
	json_t *j = json_loadb(val, n, 0, &err);
	const char *scope = j ? json_string_value(json_object_get(j, "scope")) : NULL;
	const char *created = j ? json_string_value(json_object_get(j, "created")) : NULL;
	int rc = 0;
	if (scope) {
		struct salus_client_info ci = {key, scope, created ? created : ""};
		rc = lc->cb(lc->ctx, &ci);
	}
	json_decref(j);
	return rc;
}

int salus_auth_client_list(struct salus_store *st, salus_client_cb cb, void *ctx)
{
	struct list_ctx lc = {cb, ctx};
	return salus_store_kv_list(st, CLIENT_NS, on_kv, &lc);
}

int salus_client_absent(struct salus_store *st, const char *id, const char **why)
{
	char *val = NULL;
	int rc = salus_store_kv_get(st, CLIENT_NS, id, &val, NULL);
	salus_free(val);
	if (rc == 0) {
		set_why(why, "a client with this id already exists");
		return SALUS_EEXISTS;
	}
	return rc == SALUS_ENOTFOUND ? 0 : rc;
}

int salus_client_unusable_hash(char hash[SALUS_PWHASH_LEN])
{
	char junk[SALUS_B64URL_LEN(32)];
	salus_random_token(32, junk, sizeof junk);
	int rc = salus_pwhash(junk, strlen(junk), hash);
	sodium_memzero(junk, sizeof junk);
	return rc;
}
