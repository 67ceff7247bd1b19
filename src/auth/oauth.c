/*
 * oauth.c — authorization server: app registration, the authorization
 * endpoint with its login / TOTP / consent pages, the authorization_code
 * and refresh_token grants, introspection and revocation (see oauth.h).
 *
 * Rules kept here: PKCE S256 is required for every app; a code is claimed by
 * deleting its record (the store's writer serialises deletes, so exactly one
 * of two concurrent redemptions wins) and is bound to its client,
 * redirect_uri and code_challenge; a refresh token is claimed the same way
 * and leaves a "used" marker behind, so presenting it again revokes its
 * whole family (every refresh token and access token descended from the
 * same authorization).  Pages are plain HTML forms with no script, style or
 * external asset (the server's CSP is default-src 'none'), bound to the
 * browser by a __Host- cookie (login CSRF).
 */
#include "auth/oauth.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/store.h"

#define TX_NS "authz"
#define CODE_NS "code"
#define REFRESH_NS "refresh"
#define USED_NS "refresh_used"
#define FAMILY_NS "rfamily"
#define LAUNCH_NS "launch"
#define CSRF_COOKIE "__Host-salus_csrf"

/* The non-resource scopes Salus understands. */
enum {
	SP_OPENID = 1,
	SP_FHIRUSER = 2,
	SP_PROFILE = 4,
	SP_OFFLINE = 8,
	SP_ONLINE = 16,
	SP_LAUNCH_PATIENT = 32,
	SP_LAUNCH = 64,            /* EHR launch: the context comes from the launch parameter */
	SP_LAUNCH_ENCOUNTER = 128, /* an encounter context (EHR launch only: no encounter picker) */
};
static const struct {
	const char *name;
	unsigned bit;
} specials[] = {{"openid", SP_OPENID},   {"fhirUser", SP_FHIRUSER},         {"profile", SP_PROFILE},
		{"offline_access", SP_OFFLINE}, {"online_access", SP_ONLINE}, {"launch/patient", SP_LAUNCH_PATIENT},
		{"launch", SP_LAUNCH},          {"launch/encounter", SP_LAUNCH_ENCOUNTER}};

void salus_auth_set_users(struct salus_auth *a, struct salus_users *u)
{
	a->users = u;
}

struct salus_users *salus_auth_users(const struct salus_auth *a)
{
	return a->users;
}

/* Split a scope string into resource scopes (appended to res, space-separated) and special bits.
 * SALUS_EINVALID for anything else. */
static int split_scope(const char *s, struct salus_buf *res, unsigned *bits)
{
	*bits = 0;
	if (!s || strlen(s) > SALUS_MAX_SCOPE)
		return SALUS_EINVALID;
	while (*s) {
		size_t n = strcspn(s, " ");
		if (!n)
			return SALUS_EINVALID;
		bool special = false;
		for (size_t i = 0; i < sizeof specials / sizeof specials[0]; i++)
			if (strlen(specials[i].name) == n && !memcmp(s, specials[i].name, n)) {
				*bits |= specials[i].bit;
				special = true;
			}
		if (!special) {
			int rc = (res->n ? salus_buf_addc(res, ' ') : 0) || salus_buf_add(res, s, n) ? SALUS_ENOMEM : 0;
			if (rc)
				return rc;
		}
		s += n;
		if (*s == ' ' && !*++s)
			return SALUS_EINVALID;
	}
	return 0;
}

static int join_scope(const char *res, unsigned bits, char **out)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_SCOPE * 2);
	int rc = res && *res ? salus_buf_adds(&b, res) : 0;
	for (size_t i = 0; !rc && i < sizeof specials / sizeof specials[0]; i++)
		if (bits & specials[i].bit)
			rc = (b.n ? salus_buf_addc(&b, ' ') : 0) || salus_buf_adds(&b, specials[i].name);
	if (rc) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	if (!b.n && salus_buf_adds(&b, "")) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	*out = salus_buf_detach(&b, NULL);
	return *out ? 0 : SALUS_ENOMEM;
}

/* Intersection of two resource-scope strings (either may be empty → ""). */
static int grant_res(const char *have, const char *want, char **out)
{
	struct salus_scopes h, w;
	if (!have || !*have || !want || !*want)
		return (*out = salus_strdup("")) ? 0 : SALUS_ENOMEM;
	int rc = salus_scopes_parse(have, strlen(have), &h);
	if (rc)
		return rc;
	if ((rc = salus_scopes_parse(want, strlen(want), &w))) {
		salus_scopes_release(&h);
		return rc;
	}
	rc = salus_scopes_grant(&h, &w, out);
	salus_scopes_release(&h);
	salus_scopes_release(&w);
	if (rc == SALUS_EFORBIDDEN)
		return (*out = salus_strdup("")) ? 0 : SALUS_ENOMEM;
	return rc;
}

static bool redirect_uri_ok(const char *u)
{
	size_t n = u ? strlen(u) : 0;
	if (!n || n > SALUS_MAX_REDIRECT_URI || strchr(u, '#') || strpbrk(u, " \"'<>\\`"))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
			return false;
	return (!strncmp(u, "https://", 8) && n > 8) || !strncmp(u, "http://localhost:", 17) ||
	       !strncmp(u, "http://localhost/", 17) || !strncmp(u, "http://127.0.0.1:", 17) ||
	       !strncmp(u, "http://127.0.0.1/", 17);
}

/* ---- kv helpers -------------------------------------------------------------------------------------- */

static int kv_json_get(struct salus_store *st, const char *ns, const char *key, json_t **out)
{
	char *val = NULL;
	size_t n = 0;
	int rc = salus_store_kv_get(st, ns, key, &val, &n);
	if (rc)
		return rc == SALUS_ENOTFOUND || rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(val, n, JSON_REJECT_DUPLICATES, NULL);
	salus_free(val);
	if (!j || !json_is_object(j)) {
		json_decref(j);
		return SALUS_EIO;
	}
	*out = j;
	return 0;
}

static int kv_json_put(struct salus_store *st, const char *ns, const char *key, const json_t *j)
{
	size_t n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	char *text = n ? salus_malloc(n) : NULL;
	if (!text)
		return SALUS_ENOMEM;
	json_dumpb(j, text, n, JSON_COMPACT);
	int rc = salus_store_kv_put(st, ns, key, text, n);
	salus_free(text);
	return rc;
}

/* key = base64url(BLAKE2b-256(secret)) */
static void secret_key(const char *secret, char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)])
{
	unsigned char h[SALUS_HASH_LEN];
	salus_hash256(secret, strlen(secret), h);
	salus_b64url_encode(h, sizeof h, key, SALUS_B64URL_LEN(SALUS_HASH_LEN));
}

static const char *jstr(const json_t *j, const char *name)
{
	const char *s = json_string_value(json_object_get(j, name));
	return s ? s : "";
}

static const char *jstr_of(const json_t *j)
{
	const char *s = json_string_value(j);
	return s ? s : "";
}

/* ---- app registration -------------------------------------------------------------------------------- */

int salus_auth_app_add(struct salus_store *st, const char *id, const char *scope, const char *redirect_uri,
		       const char *launch_uri, bool public_client, const char *secret, size_t secret_n,
		       const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (!salus_client_id_valid(id)) {
		*why = "client id must be 1-64 characters of A-Z a-z 0-9 . _ -";
		return SALUS_EINVALID;
	}
	if (!redirect_uri_ok(redirect_uri)) {
		*why = "redirect URI must be an absolute https URI (or http://localhost, http://127.0.0.1) "
		       "without fragment, at most 512 bytes";
		return SALUS_EINVALID;
	}
	if (launch_uri && (!redirect_uri_ok(launch_uri) || strchr(launch_uri, '?'))) {
		*why = "launch URI must be an absolute https URI (or http://localhost, http://127.0.0.1) without query "
		       "or fragment, at most 512 bytes";
		return SALUS_EINVALID;
	}
	if (!public_client && (!secret || secret_n < SALUS_CLIENT_SECRET_MIN || secret_n > SALUS_MAX_SECRET ||
			       memchr(secret, 0, secret_n))) {
		*why = "a confidential app needs a secret of 16-1024 bytes";
		return SALUS_EINVALID;
	}
	struct salus_buf res;
	salus_buf_init(&res, SALUS_MAX_SCOPE);
	unsigned bits;
	char *canon = NULL, *full = NULL;
	int rc = split_scope(scope, &res, &bits);
	if (!rc && res.n) {
		struct salus_scopes sc;
		if (!(rc = salus_scopes_parse(res.p, res.n, &sc))) {
			rc = salus_scopes_format(&sc, &canon);
			salus_scopes_release(&sc);
		}
	}
	if (rc || !(res.n || bits)) {
		salus_buf_release(&res);
		if (rc == SALUS_ENOMEM)
			return rc;
		*why = "scope must be SMART scopes (patient/ user/ system/ resource scopes, openid, fhirUser, profile, "
		       "offline_access, online_access, launch, launch/patient, launch/encounter)";
		return SALUS_EINVALID;
	}
	salus_buf_release(&res);
	if (launch_uri)
		bits |= SP_LAUNCH; /* an app the EHR launches may ask for its launch context */
	if ((rc = join_scope(canon, bits, &full)))
		goto out;
	if ((rc = salus_client_absent(st, id, why)))
		goto out;
	char hash[SALUS_PWHASH_LEN], gen[SALUS_B64URL_LEN(16)], created[SALUS_INSTANT_LEN];
	rc = public_client ? salus_client_unusable_hash(hash) : salus_pwhash(secret, secret_n, hash);
	if (rc)
		goto out;
	salus_random_token(16, gen, sizeof gen);
	salus_instant_format(salus_now_ms(), created);
	/* "scope" keeps the resource scopes only (what client_credentials and the bearer check parse) */
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:[s], s:b, s:s, s:s}", "id", id, "secret_hash", hash, "scope",
				canon ? canon : "", "app_scope", full, "redirect_uris", redirect_uri, "public",
				public_client, "created", created, "gen", gen);
	if (!rec || (launch_uri && json_object_set_new(rec, "launch_uri", json_string(launch_uri)))) {
		json_decref(rec);
		rc = SALUS_ENOMEM;
		goto out;
	}
	rc = kv_json_put(st, "client", id, rec);
	json_decref(rec);
	if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.app.add", "client=%s public=%d ehr_launch=%d", id, public_client ? 1 : 0,
			  launch_uri ? 1 : 0);
out:
	salus_free(canon);
	salus_free(full);
	return rc;
}

/* ---- HTML pages ----------------------------------------------------------------------------------------- */

static int html_esc(struct salus_buf *b, const char *s)
{
	int rc = 0;
	for (; !rc && *s; s++) {
		switch (*s) {
		case '<': rc = salus_buf_adds(b, "&lt;"); break;
		case '>': rc = salus_buf_adds(b, "&gt;"); break;
		case '&': rc = salus_buf_adds(b, "&amp;"); break;
		case '"': rc = salus_buf_adds(b, "&quot;"); break;
		case '\'': rc = salus_buf_adds(b, "&#39;"); break;
		default: rc = salus_buf_addc(b, *s);
		}
	}
	return rc;
}

static int page_head(struct salus_buf *b, const char *title)
{
	return salus_buf_adds(b, "<!doctype html><html lang=en><head><meta charset=utf-8>"
				 "<meta name=viewport content=\"width=device-width\"><meta name=referrer content=no-referrer>"
				 "<title>") ||
	       html_esc(b, title) || salus_buf_adds(b, "</title></head><body><h1>") || html_esc(b, title) ||
	       salus_buf_adds(b, "</h1>");
}

static int page_done(struct salus_authz_response *out, struct salus_buf *b, int status)
{
	if (salus_buf_adds(b, "</body></html>\n")) {
		salus_buf_release(b);
		return SALUS_ENOMEM;
	}
	out->status = status;
	out->body = salus_buf_detach(b, &out->body_len);
	return out->body ? 0 : SALUS_ENOMEM;
}

static int error_page(struct salus_authz_response *out, int status, const char *msg)
{
	struct salus_buf b;
	salus_buf_init(&b, 65536);
	if (page_head(&b, "Sign-in problem") || salus_buf_adds(&b, "<p>") || html_esc(&b, msg) ||
	    salus_buf_adds(&b, "</p>")) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	return page_done(out, &b, status);
}

/* The registration of client_id for a browser page; an unknown id gets the
 * error page instead (*paged).  Errors: the store's. */
static int client_for_page(struct salus_auth *a, const char *client_id, json_t **rec, struct salus_authz_response *out,
			   bool *paged)
{
	char *raw = NULL;
	size_t raw_n;
	int rc = salus_client_id_valid(client_id) ? salus_client_get(a->store, client_id, rec, &raw, &raw_n)
						  : SALUS_ENOTFOUND;
	salus_free(raw);
	if (rc == SALUS_ENOTFOUND) {
		*paged = true;
		return error_page(out, 400, "unknown application (client_id)");
	}
	if (rc)
		return rc;
	snprintf(out->client_id, sizeof out->client_id, "%s", client_id);
	return SALUS_OK;
}

/* The form of a step: hidden tx, then the step's fields. */
static int pick_page(struct salus_authz_response *out, const char *txid, const json_t *t, const char *step,
		     const struct salus_pick_hit *hits, size_t n, bool searched, const char *notice);

static int step_page(struct salus_authz_response *out, const char *tx, const json_t *t, const char *step,
		     const char *notice)
{
	if (!strcmp(step, "patient") || !strcmp(step, "encounter"))
		return pick_page(out, tx, t, step, NULL, 0, false, notice);
	struct salus_buf b;
	salus_buf_init(&b, 65536);
	const char *client = jstr(t, "client");
	int rc = page_head(&b, !strcmp(step, "login") ? "Sign in" : !strcmp(step, "mfa") ? "Two-step verification"
											 : "Allow access?");
	if (!rc && notice)
		rc = salus_buf_adds(&b, "<p role=alert><strong>") || html_esc(&b, notice) ||
		     salus_buf_adds(&b, "</strong></p>");
	if (!rc)
		rc = salus_buf_adds(&b, "<form method=post action=\"/auth/authorize\"><input type=hidden name=tx value=\"") ||
		     html_esc(&b, tx) || salus_buf_adds(&b, "\"><input type=hidden name=step value=\"") ||
		     html_esc(&b, step) || salus_buf_adds(&b, "\">");
	if (rc) {
	} else if (!strcmp(step, "login")) {
		bool ehr = !strcmp(jstr(t, "kind"), "launch");
		rc = salus_buf_adds(&b, ehr ? "<p>Sign in to open the application <b>" : "<p>The application <b>") ||
		     html_esc(&b, client) ||
		     (ehr ? salus_buf_adds(&b, "</b> for patient <b>") || html_esc(&b, jstr(t, "patient")) ||
				    salus_buf_adds(&b, "</b>.</p>")
			  : salus_buf_adds(&b, "</b> asks you to sign in.</p>")) ||
		     salus_buf_adds(&b, ""
					"<p><label>Username <input name=username autocomplete=username required "
					"maxlength=64 autofocus></label></p>"
					"<p><label>Password <input name=password type=password "
					"autocomplete=current-password required maxlength=1024></label></p>"
					"<p><button type=submit>Sign in</button></p>");
	} else if (!strcmp(step, "mfa")) {
		rc = salus_buf_adds(&b, "<p>Enter the 6-digit code from your authenticator app, or a recovery code.</p>"
					"<p><label>Code <input name=otp autocomplete=one-time-code inputmode=numeric "
					"required maxlength=24 autofocus></label></p>"
					"<p><button type=submit>Verify</button></p>");
	} else {
		rc = salus_buf_adds(&b, "<p>Signed in as <b>") || html_esc(&b, jstr(t, "user")) ||
		     salus_buf_adds(&b, "</b>. The application <b>") || html_esc(&b, client) ||
		     salus_buf_adds(&b, "</b> asks for:</p><ul>");
		if (!rc && *jstr(t, "plabel")) /* the patient (and encounter) chosen on the pickers */
			rc = salus_buf_adds(&b, "<li>the record of patient <b>") || html_esc(&b, jstr(t, "plabel")) ||
			     salus_buf_adds(&b, "</b>") ||
			     (*jstr(t, "elabel") &&
			      (salus_buf_adds(&b, ", encounter <b>") || html_esc(&b, jstr(t, "elabel")) ||
			       salus_buf_adds(&b, "</b>"))) ||
			     salus_buf_adds(&b, "</li>");
		const char *sc = jstr(t, "grant");
		while (!rc && *sc) {
			size_t n = strcspn(sc, " ");
			char one[SALUS_MAX_SCOPE_TYPE + 64];
			snprintf(one, sizeof one, "%.*s", (int)(n < sizeof one - 1 ? n : sizeof one - 1), sc);
			rc = salus_buf_adds(&b, "<li><code>") || html_esc(&b, one) || salus_buf_adds(&b, "</code></li>");
			sc += n;
			while (*sc == ' ')
				sc++;
		}
		if (!rc)
			rc = salus_buf_adds(&b, "</ul><p><button type=submit name=decision value=approve>Allow</button> "
						"<button type=submit name=decision value=deny>Deny</button></p>");
	}
	if (rc || salus_buf_adds(&b, "</form>")) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	return page_done(out, &b, 200);
}

void salus_authz_response_release(struct salus_authz_response *r)
{
	if (!r)
		return;
	salus_free(r->body);
	r->body = NULL;
	r->body_len = 0;
}

/* 302 to the app's redirect_uri with a query (code or error) appended. */
static int redirect(struct salus_authz_response *out, const char *uri, const char *k1, const char *v1,
		    const char *state, const char *iss)
{
	struct salus_buf b;
	salus_buf_init(&b, sizeof out->location - 1);
	int rc = salus_buf_adds(&b, uri) || salus_buf_addc(&b, strchr(uri, '?') ? '&' : '?') ||
		 salus_buf_addf(&b, "%s=%s", k1, v1);
	const char *pairs[2][2] = {{"state", state}, {"iss", iss}};
	for (int i = 0; !rc && i < 2; i++) {
		if (!pairs[i][1] || !*pairs[i][1])
			continue;
		rc = salus_buf_addf(&b, "&%s=", pairs[i][0]);
		for (const unsigned char *p = (const unsigned char *)pairs[i][1]; !rc && *p; p++)
			rc = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
				     *p == '-' || *p == '.' || *p == '_' || *p == '~'
				     ? salus_buf_addc(&b, (char)*p)
				     : salus_buf_addf(&b, "%%%02X", *p);
	}
	if (rc) {
		salus_buf_release(&b);
		return error_page(out, 400, "the redirect would be too long");
	}
	memcpy(out->location, b.p, b.n);
	out->location[b.n] = 0;
	salus_buf_release(&b);
	out->status = 302;
	return 0;
}

/* ---- the authorization endpoint ------------------------------------------------------------------------- */

static bool pkce_chars(const char *s, size_t min, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n < min || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		      c == '_' || c == '~'))
			return false;
	}
	return true;
}

bool salus_pkce_s256_ok(const char *verifier, const char *challenge)
{
	if (!pkce_chars(verifier, 43, 128) || !challenge || strlen(challenge) != 43)
		return false;
	unsigned char h[crypto_hash_sha256_BYTES];
	char enc[SALUS_B64URL_LEN(crypto_hash_sha256_BYTES)];
	crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
	salus_b64url_encode(h, sizeof h, enc, sizeof enc);
	return salus_ct_eq(enc, challenge, 43);
}

static const char *cookie_named(const char *cookie, const char *cname, char *buf, size_t cap);

#define LAUNCH_COOKIE "__Host-salus_launch"

/* ---- SMART EHR launch: the launch context ---------------------------------------------------------- */

/* A FHIR id: [A-Za-z0-9.-]{1,64}. */
static bool fhir_id_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (!n || n > SALUS_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return false;
	}
	return true;
}

/* The sign-in of an EHR launch is complete (password and second factor):
 * make the launch context — single use, SALUS_LAUNCH_S, bound to client,
 * user (and generation), patient and encounter — and send the browser to the
 * app's launch URI with iss (the FHIR base URL) and launch (opaque). */
static int finish_launch(struct salus_auth *a, const char *txid, json_t *tx, struct salus_authz_response *out)
{
	const char *pid = jstr(tx, "patient"), *eid = jstr(tx, "encounter");
	int rc = a->launch_check ? a->launch_check(a->launch_check_ctx, pid, eid) : SALUS_ENOTFOUND;
	if (rc == SALUS_ENOTFOUND) {
		salus_store_kv_del(a->store, TX_NS, txid);
		return error_page(out, 404, "no such patient (or no such encounter of that patient)");
	}
	if (rc)
		return rc;
	/* fhirContext: each resource in the patient's compartment, and one the launching user may open */
	size_t ci;
	json_t *cv;
	json_array_foreach(json_object_get(tx, "context"), ci, cv)
	{
		char ref[160];
		snprintf(ref, sizeof ref, "%s", jstr_of(cv));
		char *slash = strchr(ref, '/');
		struct salus_pick_hit hit;
		size_t n = 0;
		if (!slash || !a->picker) {
			salus_store_kv_del(a->store, TX_NS, txid);
			return error_page(out, 404, "no such resource (context) in this patient's record");
		}
		*slash = 0;
		const char *kv[] = {"_id", slash + 1};
		struct salus_pick_user u = {jstr(tx, "user"), jstr(tx, "role"), jstr(tx, "fhirUser")};
		if ((rc = a->picker(a->picker_ctx, &u, ref, kv, 1, pid, &hit, 1, &n)))
			return rc;
		if (n != 1) {
			salus_store_kv_del(a->store, TX_NS, txid);
			return error_page(out, 404, "no such resource (context) in this patient's record");
		}
	}
	json_t *rec = NULL;
	char *raw = NULL;
	size_t raw_n;
	rc = salus_client_get(a->store, jstr(tx, "client"), &rec, &raw, &raw_n);
	salus_free(raw);
	if (rc == SALUS_ENOTFOUND || (!rc && !*jstr(rec, "launch_uri"))) {
		json_decref(rec);
		salus_store_kv_del(a->store, TX_NS, txid);
		return error_page(out, 400, "unknown application (client_id)");
	}
	if (rc)
		return rc;
	char tok[SALUS_B64URL_LEN(32)], key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	char bind[SALUS_B64URL_LEN(24)], bkey[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	salus_random_token(32, tok, sizeof tok);
	secret_key(tok, key);
	salus_random_token(24, bind, sizeof bind); /* this browser's proof for the app's authorization */
	secret_key(bind, bkey);
	json_t *l = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:O}", "client", jstr(tx, "client"), "user",
			      jstr(tx, "user"), "ugen", jstr(tx, "ugen"), "role", jstr(tx, "role"), "fhirUser",
			      jstr(tx, "fhirUser"), "patient", pid, "encounter", eid, "browser", bkey, "exp",
			      (json_int_t)(salus_now_ms() + SALUS_LAUNCH_S * 1000), "context",
			      json_is_array(json_object_get(tx, "context")) ? json_object_get(tx, "context") : json_null());
	rc = l ? kv_json_put(a->store, LAUNCH_NS, key, l) : SALUS_ENOMEM;
	json_decref(l);
	if (!rc) {
		salus_store_kv_del(a->store, TX_NS, txid);
		out->event = SALUS_AUTHZ_EV_LAUNCH;
		/* SameSite=Lax: sent when the app sends this browser back to /auth/authorize (a top-level GET) */
		snprintf(out->set_cookie, sizeof out->set_cookie,
			 LAUNCH_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=%d", bind, SALUS_LAUNCH_S);
		rc = redirect(out, jstr(rec, "launch_uri"), "launch", tok, NULL, a->audience);
	}
	json_decref(rec);
	return rc;
}

#define LAUNCH_CONTEXT_MAX 4 /* fhirContext references of one EHR launch */

/* The `context` parameter of an EHR launch: 1..LAUNCH_CONTEXT_MAX relative
 * references "Type/id", comma-separated, Type a resource type name other than
 * Patient and Encounter (those are the launch's patient and encounter), into
 * a new JSON array of strings.  NULL when it does not parse. */
static json_t *launch_context_parse(const char *s)
{
	json_t *arr = json_array();
	while (arr && *s) {
		size_t n = strcspn(s, ","), t = strcspn(s, "/");
		char ref[64 + SALUS_MAX_ID + 2];
		bool ok = n < sizeof ref && t < n && t >= 1 && t <= 64 && s[0] >= 'A' && s[0] <= 'Z' &&
			  json_array_size(arr) < LAUNCH_CONTEXT_MAX;
		for (size_t i = 1; ok && i < t; i++)
			ok = (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z');
		if (ok) {
			memcpy(ref, s, n);
			ref[n] = 0;
			ref[t] = 0;
			ok = fhir_id_ok(ref + t + 1) && strcmp(ref, "Patient") && strcmp(ref, "Encounter");
			ref[t] = '/';
		}
		if (!ok || json_array_append_new(arr, json_string(ref))) {
			json_decref(arr);
			return NULL;
		}
		s += n;
		if (*s == ',' && !*++s) { /* a trailing comma */
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* GET /auth/launch?client_id=&patient=[&encounter=]: the sign-in page of an EHR launch. */
static int launch_get(struct salus_auth *a, salus_param_fn get, void *gc, struct salus_authz_response *out)
{
	const char *client_id = get(gc, "client_id"), *pid = get(gc, "patient"), *eid = get(gc, "encounter");
	json_t *rec = NULL, *tx = NULL;
	bool paged = false;
	int rc = client_for_page(a, client_id, &rec, out, &paged);
	if (rc || paged)
		return rc;
	bool launchable = *jstr(rec, "launch_uri") != 0;
	json_decref(rec);
	if (!launchable)
		return error_page(out, 400, "this application has no launch URI (salus client add --launch-uri)");
	if (!fhir_id_ok(pid) || (eid && !fhir_id_ok(eid)))
		return error_page(out, 400, "patient (and encounter, when given) must be FHIR ids");
	const char *cref = get(gc, "context");
	json_t *fctx = cref ? launch_context_parse(cref) : json_array();
	if (!fctx)
		return cref ? error_page(out, 400, "context must be 1 to 4 references Type/id (not Patient or Encounter), "
						   "comma-separated")
			    : SALUS_ENOMEM;
	char txid[SALUS_B64URL_LEN(24)], csrf[SALUS_B64URL_LEN(24)];
	salus_random_token(24, txid, sizeof txid);
	salus_random_token(24, csrf, sizeof csrf);
	tx = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "kind", "launch", "client", client_id, "patient", pid,
		       "encounter", eid ? eid : "", "csrf", csrf, "exp",
		       (json_int_t)(salus_now_ms() + SALUS_AUTHZ_TX_S * 1000), "stage", "login", "context", fctx);
	if (!tx)
		return SALUS_ENOMEM;
	if (!(rc = kv_json_put(a->store, TX_NS, txid, tx))) {
		snprintf(out->set_cookie, sizeof out->set_cookie,
			 CSRF_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%d", csrf, SALUS_AUTHZ_TX_S);
		rc = step_page(out, txid, tx, "login", NULL);
	}
	json_decref(tx);
	return rc;
}

int salus_oauth_launch(struct salus_auth *a, salus_param_fn get, void *get_ctx, struct salus_authz_response *out)
{
	memset(out, 0, sizeof *out);
	if (!a->users)
		return error_page(out, 503, "sign-in is not available on this server");
	return launch_get(a, get, get_ctx, out);
}

/* Claim the launch context `launch` for client_id (single use: of two
 * concurrent claims exactly one deletes the record) into *out.
 * SALUS_ENOTFOUND for an unknown, reused, expired or other client's launch. */
static int claim_launch(struct salus_auth *a, const char *launch, const char *client_id, json_t **out)
{
	if (!pkce_chars(launch, 1, 128))
		return SALUS_ENOTFOUND;
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	secret_key(launch, key);
	json_t *l = NULL;
	int rc = kv_json_get(a->store, LAUNCH_NS, key, &l);
	if (!rc && (rc = salus_store_kv_del(a->store, LAUNCH_NS, key)))
		rc = rc == SALUS_ENOTFOUND ? rc : SALUS_EIO;
	if (rc) {
		json_decref(l);
		if (rc == SALUS_ENOTFOUND)
			salus_log(SALUS_LOG_INFO, "auth.launch.denied", "client=%s reason=unknown-or-used", client_id);
		return rc;
	}
	if (json_integer_value(json_object_get(l, "exp")) < salus_now_ms() || strcmp(jstr(l, "client"), client_id)) {
		salus_log(SALUS_LOG_INFO, "auth.launch.denied", "client=%s reason=%s", client_id,
			  strcmp(jstr(l, "client"), client_id) ? "other-client" : "expired");
		json_decref(l);
		return SALUS_ENOTFOUND;
	}
	*out = l;
	return 0;
}

/* The role's scopes, plus each user/ scope again as a patient/ scope (a staff
 * user in a launch's patient context may give an app patient/ scopes within
 * what the role allows on every patient). */
static int role_with_patient(const char *role, char **out)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_SCOPE * 3);
	int rc = salus_buf_adds(&b, role);
	for (const char *p = role; !rc && *p;) {
		size_t n = strcspn(p, " ");
		if (n > 5 && !strncmp(p, "user/", 5))
			rc = salus_buf_adds(&b, " patient/") || salus_buf_add(&b, p + 5, n - 5);
		p += n;
		while (*p == ' ')
			p++;
	}
	if (rc || !(*out = salus_buf_detach(&b, NULL))) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	return 0;
}

/* A signed-in user's grant into tx: the most the role allows (in an EHR launch also as patient/
 * scopes), intersected with what the app may have and asked for; the user, generation, role and
 * fhirUser; the next stage.  *empty: the role allows none of what was asked. */
static int tx_grant(struct salus_auth *a, json_t *tx, const char *username, const char *gen, enum salus_role role,
		    const char *fhir_user, const char *stage, bool *empty)
{
	const char *luser = jstr(tx, "luser");
	char *g = NULL, *rs = NULL, *full = NULL;
	int bits = (int)json_integer_value(json_object_get(tx, "bits"));
	bool staff = !(role == SALUS_ROLE_PATIENT || role == SALUS_ROLE_RELATED_PERSON);
	/* a standalone launch asking for launch/patient: a staff user with a Practitioner picks the patient */
	bool pick = !*luser && staff && (bits & SP_LAUNCH_PATIENT) && a->picker && fhir_user &&
		    !strncmp(fhir_user, "Practitioner/", 13);
	int rc = *luser || pick ? role_with_patient(salus_role_scopes(role), &rs) : 0;
	if (rc)
		return rc;
	rc = grant_res(rs ? rs : salus_role_scopes(role), jstr(tx, "res"), &g);
	salus_free(rs);
	if (rc)
		return rc;
	if (!*luser && staff && !pick)
		bits &= ~SP_LAUNCH_PATIENT; /* no picker for this user: no patient context */
	if (!*jstr(tx, "lencounter") && !pick)
		bits &= ~SP_LAUNCH_ENCOUNTER; /* an encounter context comes from a launch or the encounter picker */
	if (!(rc = join_scope(g, (unsigned)bits, &full)))
		rc = json_object_set_new(tx, "grant", json_string(full)) || json_object_set_new(tx, "res", json_string(g)) ||
				     json_object_set_new(tx, "bits", json_integer(bits)) ||
				     json_object_set_new(tx, "user", json_string(username)) ||
				     json_object_set_new(tx, "ugen", json_string(gen)) ||
				     json_object_set_new(tx, "role", json_string(salus_role_name(role))) ||
				     json_object_set_new(tx, "fhirUser", json_string(fhir_user)) ||
				     json_object_set_new(tx, "stage", json_string(stage)) ||
				     json_object_set_new(tx, "pick", json_boolean(pick))
			     ? SALUS_ENOMEM
			     : 0;
	*empty = g && !g[0];
	salus_free(full);
	salus_free(g);
	return rc;
}

static int authorize_get(struct salus_auth *a, salus_param_fn get, void *gc, const char *cookie,
			 struct salus_authz_response *out)
{
	const char *client_id = get(gc, "client_id"), *ruri = get(gc, "redirect_uri");
	const char *state = get(gc, "state"), *rt = get(gc, "response_type"), *scope = get(gc, "scope");
	const char *cc = get(gc, "code_challenge"), *ccm = get(gc, "code_challenge_method"), *aud = get(gc, "aud");
	const char *nonce = get(gc, "nonce");
	json_t *rec = NULL;
	bool paged = false;
	int rc = client_for_page(a, client_id, &rec, out, &paged);
	if (rc || paged)
		return rc;
	json_t *uris = json_object_get(rec, "redirect_uris");
	bool uri_ok = false;
	size_t i;
	json_t *v;
	json_array_foreach(uris, i, v) if (ruri && !strcmp(json_string_value(v), ruri)) uri_ok = true;
	if (!uri_ok) { /* never redirect to an unregistered URI (RFC 6749 §4.1.2.1) */
		json_decref(rec);
		return error_page(out, 400, "the redirect_uri is not registered for this application");
	}
	const char *iss = a->issuer;
	if (state && strlen(state) > 512)
		state = NULL;
	struct salus_buf res;
	salus_buf_init(&res, SALUS_MAX_SCOPE);
	char *have_res = NULL, *granted = NULL;
	unsigned want_bits = 0, have_bits = 0;
	json_t *tx = NULL;
	if (!rt || strcmp(rt, "code")) {
		rc = redirect(out, ruri, "error", "unsupported_response_type", state, iss);
		goto out;
	}
	if (!cc || !ccm || strcmp(ccm, "S256") || !pkce_chars(cc, 43, 43)) {
		rc = redirect(out, ruri, "error", "invalid_request", state, iss); /* PKCE S256 is required */
		goto out;
	}
	if ((aud && strcmp(aud, a->audience)) || (nonce && strlen(nonce) > 256)) {
		rc = redirect(out, ruri, "error", "invalid_request", state, iss);
		goto out;
	}
	struct salus_buf hres;
	salus_buf_init(&hres, SALUS_MAX_SCOPE);
	int src = split_scope(jstr(rec, "app_scope"), &hres, &have_bits);
	if (!src && salus_buf_adds(&hres, ""))
		src = SALUS_ENOMEM;
	have_res = src ? NULL : salus_buf_detach(&hres, NULL);
	salus_buf_release(&hres);
	if (!have_res) {
		rc = SALUS_EIO;
		goto out;
	}
	rc = split_scope(scope, &res, &want_bits);
	if (!rc && salus_buf_adds(&res, ""))
		rc = SALUS_ENOMEM;
	if (!rc)
		rc = grant_res(have_res, res.p, &granted);
	if (rc == SALUS_ENOMEM)
		goto out;
	if (rc || !granted[0]) {
		rc = redirect(out, ruri, "error", "invalid_scope", state, iss);
		goto out;
	}
	const char *launch = get(gc, "launch");
	json_t *lctx = NULL;
	if (launch || (want_bits & SP_LAUNCH)) {
		/* EHR launch: both the launch parameter and the launch scope, by an app registered for it */
		if (!(have_bits & SP_LAUNCH)) {
			rc = redirect(out, ruri, "error", "invalid_scope", state, iss);
			goto out;
		}
		if (!launch || !(want_bits & SP_LAUNCH)) {
			rc = redirect(out, ruri, "error", "invalid_request", state, iss);
			goto out;
		}
		if ((rc = claim_launch(a, launch, client_id, &lctx))) {
			rc = rc == SALUS_ENOTFOUND ? redirect(out, ruri, "error", "invalid_request", state, iss) : rc;
			goto out;
		}
	}
	char txid[SALUS_B64URL_LEN(24)], csrf[SALUS_B64URL_LEN(24)];
	salus_random_token(24, txid, sizeof txid);
	salus_random_token(24, csrf, sizeof csrf);
	int64_t now = salus_now_ms();
	tx = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:I, s:s}", "client", client_id, "redirect", ruri,
		       "res", granted, "bits", (int)(want_bits & have_bits), "state", state ? state : "", "challenge", cc,
		       "nonce", nonce ? nonce : "", "csrf", csrf, "exp", (json_int_t)(now + SALUS_AUTHZ_TX_S * 1000),
		       "stage", "login");
	if (!tx || (lctx && (json_object_set_new(tx, "luser", json_string(jstr(lctx, "user"))) ||
			     json_object_set_new(tx, "lugen", json_string(jstr(lctx, "ugen"))) ||
			     json_object_set_new(tx, "lpatient", json_string(jstr(lctx, "patient"))) ||
			     json_object_set_new(tx, "lencounter", json_string(jstr(lctx, "encounter"))) ||
			     (json_is_array(json_object_get(lctx, "context")) &&
			      json_object_set(tx, "lcontext", json_object_get(lctx, "context")))))) {
		json_decref(lctx);
		rc = SALUS_ENOMEM;
		goto out;
	}
	/* the browser that made the launch, with the launch's cookie, signed in minutes ago: consent next */
	const char *stage = "login";
	char bbuf[64], bkey[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	const char *bind = lctx ? cookie_named(cookie, LAUNCH_COOKIE, bbuf, sizeof bbuf) : NULL;
	enum salus_role lrole;
	if (bind) {
		secret_key(bind, bkey);
		const char *want = jstr(lctx, "browser");
		if (strlen(want) == strlen(bkey) && salus_ct_eq(want, bkey, strlen(bkey)) &&
		    !salus_role_parse(jstr(lctx, "role"), &lrole) &&
		    !salus_user_current(a->users, jstr(lctx, "user"), jstr(lctx, "ugen"))) {
			bool empty = false;
			if ((rc = tx_grant(a, tx, jstr(lctx, "user"), jstr(lctx, "ugen"), lrole, jstr(lctx, "fhirUser"), "consent",
					   &empty))) {
				json_decref(lctx);
				goto out;
			}
			if (empty) {
				json_decref(lctx);
				rc = redirect(out, ruri, "error", "invalid_scope", state, iss);
				goto out;
			}
			stage = "consent";
			out->event = SALUS_AUTHZ_EV_LOGIN_OK; /* audited: the launch's sign-in carried over */
			snprintf(out->user, sizeof out->user, "%s", jstr(lctx, "user"));
		}
	}
	json_decref(lctx);
	if ((rc = kv_json_put(a->store, TX_NS, txid, tx)))
		goto out;
	/* a __Host- cookie must have Path=/ (and Secure, no Domain), or browsers drop it */
	snprintf(out->set_cookie, sizeof out->set_cookie, CSRF_COOKIE "=%s; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=%d",
		 csrf, SALUS_AUTHZ_TX_S);
	rc = step_page(out, txid, tx, stage, NULL);
out:
	json_decref(tx);
	salus_free(have_res);
	salus_free(granted);
	salus_buf_release(&res);
	json_decref(rec);
	return rc;
}

/* The value of cookie `cname` from a Cookie header, or NULL. */
static const char *cookie_named(const char *cookie, const char *cname, char *buf, size_t cap)
{
	char name[64];
	snprintf(name, sizeof name, "%s=", cname);
	for (const char *p = cookie; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t n = strcspn(p, ";");
		if (!strncmp(p, name, strlen(name)) && n - strlen(name) < cap) {
			memcpy(buf, p + strlen(name), n - strlen(name));
			buf[n - strlen(name)] = 0;
			return buf;
		}
		p += n;
	}
	return NULL;
}

/* The CSRF cookie's value from a Cookie header, or NULL. */
static const char *cookie_value(const char *cookie, char *buf, size_t cap)
{
	return cookie_named(cookie, CSRF_COOKIE, buf, cap);
}

static int issue_code(struct salus_auth *a, const char *txid, json_t *tx, struct salus_authz_response *out)
{
	char code[SALUS_B64URL_LEN(32)], key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	salus_random_token(32, code, sizeof code);
	secret_key(code, key);
	json_object_set_new(tx, "exp", json_integer((json_int_t)(salus_now_ms() + SALUS_CODE_S * 1000)));
	json_object_del(tx, "csrf");
	json_object_del(tx, "stage");
	json_object_del(tx, "plabel"); /* names shown on the pickers stay out of the code record */
	json_object_del(tx, "elabel");
	int rc = kv_json_put(a->store, CODE_NS, key, tx);
	if (rc)
		return rc;
	salus_store_kv_del(a->store, TX_NS, txid);
	out->event = SALUS_AUTHZ_EV_CODE;
	return redirect(out, jstr(tx, "redirect"), "code", code, jstr(tx, "state"), a->issuer);
}

/* ---- standalone launch: the patient and encounter pickers ------------------------------------------------ */

#define PICK_FIELD_MAX 100 /* a search field of the patient picker */

/* The form's hidden fields of a step. */
static int hidden_fields(struct salus_buf *b, const char *txid, const char *step)
{
	return salus_buf_adds(b, "<form method=post action=\"/auth/authorize\"><input type=hidden name=tx value=\"") ||
	       html_esc(b, txid) || salus_buf_adds(b, "\"><input type=hidden name=step value=\"") || html_esc(b, step) ||
	       salus_buf_adds(b, "\">");
}

/* The patient picker (search form, then the hits as buttons) or the encounter
 * picker (the chosen patient's encounters as buttons, or none). */
static int pick_page(struct salus_authz_response *out, const char *txid, const json_t *t, const char *step,
		     const struct salus_pick_hit *hits, size_t n, bool searched, const char *notice)
{
	bool enc = !strcmp(step, "encounter");
	struct salus_buf b;
	salus_buf_init(&b, 131072);
	int rc = page_head(&b, enc ? "Choose an encounter" : "Choose a patient");
	if (!rc && notice)
		rc = salus_buf_adds(&b, "<p role=alert><strong>") || html_esc(&b, notice) ||
		     salus_buf_adds(&b, "</strong></p>");
	if (!rc)
		rc = salus_buf_adds(&b, "<p>Signed in as <b>") || html_esc(&b, jstr(t, "user")) ||
		     salus_buf_adds(&b, "</b>. The application <b>") || html_esc(&b, jstr(t, "client")) ||
		     (enc ? salus_buf_adds(&b, "</b> asks for an encounter of patient <b>") ||
				    html_esc(&b, jstr(t, "plabel")) || salus_buf_adds(&b, "</b>.</p>")
			  : salus_buf_adds(&b, "</b> asks for a patient. Search the patients you may open.</p>"));
	if (!rc && !enc)
		rc = hidden_fields(&b, txid, step) ||
		     salus_buf_adds(&b, "<p><label>Name <input name=name maxlength=100 autocomplete=off autofocus></label></p>"
					"<p><label>Birth date <input name=birthdate type=date></label></p>"
					"<p><label>Identifier <input name=identifier maxlength=100 autocomplete=off></label></p>"
					"<p><button type=submit name=action value=search>Search</button></p></form>");
	if (!rc && searched && !n)
		rc = salus_buf_adds(&b, enc ? "<p>No encounter of this patient that you may open.</p>"
					    : "<p>No patient found that you may open.</p>");
	if (!rc && (n || enc)) {
		rc = hidden_fields(&b, txid, step) || salus_buf_adds(&b, "<ul>");
		for (size_t i = 0; !rc && i < n; i++)
			rc = salus_buf_adds(&b, enc ? "<li><button type=submit name=encounter value=\""
						    : "<li><button type=submit name=patient value=\"") ||
			     html_esc(&b, hits[i].id) || salus_buf_adds(&b, "\">") || html_esc(&b, hits[i].label) ||
			     (hits[i].detail[0] && (salus_buf_adds(&b, " &middot; ") || html_esc(&b, hits[i].detail))) ||
			     salus_buf_adds(&b, "</button></li>");
		if (!rc)
			rc = salus_buf_adds(&b, "</ul>") ||
			     (enc && salus_buf_adds(&b, "<p><button type=submit name=action value=skip>Continue without an "
							"encounter</button></p>")) ||
			     salus_buf_adds(&b, "</form>");
	}
	if (!rc)
		rc = hidden_fields(&b, txid, step) ||
		     salus_buf_adds(&b, "<p><button type=submit name=action value=cancel>Cancel</button></p></form>");
	if (rc) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	return page_done(out, &b, 200);
}

/* A search field of the patient picker: at most PICK_FIELD_MAX bytes, no control characters. */
static bool pick_field_ok(const char *s)
{
	size_t n = strlen(s);
	if (n > PICK_FIELD_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* YYYY, YYYY-MM or YYYY-MM-DD (what a date input sends, or less). */
static bool pick_date_ok(const char *s)
{
	size_t n = strlen(s);
	if (n != 4 && n != 7 && n != 10)
		return false;
	for (size_t i = 0; i < n; i++)
		if (i == 4 || i == 7 ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
			return false;
	return true;
}

/* Search with the picker as the transaction's user; the ids found (or, for
 * Encounters, the patient) go to the audit of this answer. */
static int pick_search(struct salus_auth *a, const json_t *tx, const char *type, const char *const *kv, size_t npairs,
		       struct salus_pick_hit *hits, size_t *n, struct salus_authz_response *out)
{
	struct salus_pick_user u = {jstr(tx, "user"), jstr(tx, "role"), jstr(tx, "fhirUser")};
	*n = 0;
	int rc = a->picker(a->picker_ctx, &u, type, kv, npairs, NULL, hits, SALUS_PICK_MAX, n);
	if (rc)
		return rc;
	out->event = SALUS_AUTHZ_EV_PICK;
	snprintf(out->pick_type, sizeof out->pick_type, "%s", type);
	out->npick = 0;
	if (!strcmp(type, "Encounter")) {
		snprintf(out->pick_ids[0], sizeof out->pick_ids[0], "%s", jstr(tx, "lpatient"));
		out->npick = 1;
	} else {
		for (size_t i = 0; i < *n; i++)
			memcpy(out->pick_ids[out->npick++], hits[i].id, sizeof hits[i].id);
	}
	return 0;
}

/* "label · detail" of a hit into tx[name]. */
static int pick_label(json_t *tx, const char *name, const struct salus_pick_hit *h)
{
	char l[sizeof h->label + sizeof h->detail + 8];
	snprintf(l, sizeof l, "%s%s%s", h->label, h->detail[0] ? ", " : "", h->detail);
	return json_object_set_new(tx, name, json_string(l)) ? SALUS_ENOMEM : 0;
}

/* Save tx at the consent stage (the grant string rebuilt from res and bits) and show the consent page. */
static int pick_to_consent(struct salus_auth *a, const char *txid, json_t *tx, struct salus_authz_response *out)
{
	char *full = NULL;
	int rc = join_scope(jstr(tx, "res"), (unsigned)json_integer_value(json_object_get(tx, "bits")), &full);
	if (rc)
		return rc;
	rc = json_object_set_new(tx, "grant", json_string(full)) || json_object_set_new(tx, "stage", json_string("consent"))
		     ? SALUS_ENOMEM
		     : 0;
	salus_free(full);
	if (!rc)
		rc = kv_json_put(a->store, TX_NS, txid, tx);
	return rc ? rc : step_page(out, txid, tx, "consent", NULL);
}

/* POST of the patient or encounter picker: search, choose, skip (encounter) or cancel. */
static int pick_post(struct salus_auth *a, const char *txid, json_t *tx, const struct salus_form *f,
		     struct salus_authz_response *out)
{
	const struct salus_form_param *pa = salus_form_get(f, "action");
	const char *action = pa ? pa->value : "";
	bool enc = !strcmp(jstr(tx, "stage"), "encounter");
	struct salus_pick_hit hits[SALUS_PICK_MAX];
	size_t n = 0;
	int rc = 0;
	if (!a->picker)
		return error_page(out, 503, "the patient picker is not available on this server");
	if (!strcmp(action, "cancel")) {
		salus_store_kv_del(a->store, TX_NS, txid);
		out->event = SALUS_AUTHZ_EV_DENIED;
		return redirect(out, jstr(tx, "redirect"), "error", "access_denied", jstr(tx, "state"), a->issuer);
	}
	if (!enc) {
		const struct salus_form_param *pp = salus_form_get(f, "patient");
		if (pp) { /* a patient chosen from the list: still one the user may open? */
			const char *kv[] = {"_id", pp->value};
			if (!fhir_id_ok(pp->value) || (rc = pick_search(a, tx, "Patient", kv, 1, hits, &n, out)) || n != 1) {
				if (fhir_id_ok(pp->value) && rc)
					return rc;
				return pick_page(out, txid, tx, "patient", NULL, 0, false,
						 "That patient cannot be opened; search again.");
			}
			if (json_object_set_new(tx, "lpatient", json_string(hits[0].id)) || pick_label(tx, "plabel", &hits[0]))
				return SALUS_ENOMEM;
			if (!(json_integer_value(json_object_get(tx, "bits")) & SP_LAUNCH_ENCOUNTER))
				return pick_to_consent(a, txid, tx, out);
			/* launch/encounter: the encounter picker, with that patient's encounters */
			const char *ekv[] = {"patient", hits[0].id, "_sort", "-date"};
			if ((rc = pick_search(a, tx, "Encounter", ekv, 2, hits, &n, out)))
				return rc;
			if (json_object_set_new(tx, "stage", json_string("encounter")))
				return SALUS_ENOMEM;
			if ((rc = kv_json_put(a->store, TX_NS, txid, tx)))
				return rc;
			return pick_page(out, txid, tx, "encounter", hits, n, true, NULL);
		}
		const struct salus_form_param *pn = salus_form_get(f, "name"), *pb = salus_form_get(f, "birthdate"),
					      *pi = salus_form_get(f, "identifier");
		const char *name = pn ? pn->value : "", *birth = pb ? pb->value : "", *ident = pi ? pi->value : "";
		if (strcmp(action, "search") || !pick_field_ok(name) || !pick_field_ok(ident) || (*birth && !pick_date_ok(birth)))
			return pick_page(out, txid, tx, "patient", NULL, 0, false,
					 "Enter a name, a birth date (YYYY-MM-DD) or an identifier of at most 100 characters.");
		if (!*name && !*birth && !*ident)
			return pick_page(out, txid, tx, "patient", NULL, 0, false, "Enter a name, a birth date or an identifier.");
		const char *kv[6];
		size_t np = 0;
		if (*name) {
			kv[2 * np] = "name";
			kv[2 * np++ + 1] = name;
		}
		if (*birth) {
			kv[2 * np] = "birthdate";
			kv[2 * np++ + 1] = birth;
		}
		if (*ident) {
			kv[2 * np] = "identifier";
			kv[2 * np++ + 1] = ident;
		}
		if ((rc = pick_search(a, tx, "Patient", kv, np, hits, &n, out)))
			return rc;
		return pick_page(out, txid, tx, "patient", hits, n, true, NULL);
	}
	/* the encounter picker */
	const struct salus_form_param *pe = salus_form_get(f, "encounter");
	if (!strcmp(action, "skip")) {
		/* no encounter: launch/encounter is not granted */
		int bits = (int)json_integer_value(json_object_get(tx, "bits")) & ~SP_LAUNCH_ENCOUNTER;
		if (json_object_set_new(tx, "bits", json_integer(bits)) || json_object_set_new(tx, "lencounter", json_string("")))
			return SALUS_ENOMEM;
		return pick_to_consent(a, txid, tx, out);
	}
	if (pe && fhir_id_ok(pe->value)) {
		const char *kv[] = {"_id", pe->value, "patient", jstr(tx, "lpatient")};
		if ((rc = pick_search(a, tx, "Encounter", kv, 2, hits, &n, out)))
			return rc;
		if (n == 1) {
			if (json_object_set_new(tx, "lencounter", json_string(hits[0].id)) || pick_label(tx, "elabel", &hits[0]))
				return SALUS_ENOMEM;
			return pick_to_consent(a, txid, tx, out);
		}
	}
	const char *ekv[] = {"patient", jstr(tx, "lpatient"), "_sort", "-date"};
	if ((rc = pick_search(a, tx, "Encounter", ekv, 2, hits, &n, out)))
		return rc;
	return pick_page(out, txid, tx, "encounter", hits, n, true, "Choose an encounter from the list, or none.");
}

static int authorize_post(struct salus_auth *a, const struct salus_form *f, const char *cookie, const char *remote,
			  struct salus_authz_response *out)
{
	const struct salus_form_param *ptx = salus_form_get(f, "tx"), *pstep = salus_form_get(f, "step");
	char cbuf[64];
	const char *csrf = cookie_value(cookie, cbuf, sizeof cbuf);
	json_t *tx = NULL;
	if (!ptx || !pstep || ptx->value_n > 64 || !salus_client_id_valid(ptx->value))
		return error_page(out, 400, "this sign-in request is not valid; start again from the application");
	int rc = kv_json_get(a->store, TX_NS, ptx->value, &tx);
	if (rc == SALUS_ENOTFOUND)
		return error_page(out, 400, "this sign-in request has expired; start again from the application");
	if (rc)
		return rc;
	const char *want = jstr(tx, "csrf"), *stage = jstr(tx, "stage");
	snprintf(out->client_id, sizeof out->client_id, "%s", jstr(tx, "client"));
	if (json_integer_value(json_object_get(tx, "exp")) < salus_now_ms() || !csrf || strlen(csrf) != strlen(want) ||
	    !salus_ct_eq(csrf, want, strlen(want)) || strcmp(pstep->value, stage)) {
		json_decref(tx);
		return error_page(out, 400, "this sign-in request has expired or was opened elsewhere; start again from "
					    "the application");
	}
	int retry = 0;
	int64_t now = salus_now_ms();
	if (!strcmp(stage, "login")) {
		const struct salus_form_param *pu = salus_form_get(f, "username"), *pp = salus_form_get(f, "password");
		struct salus_login who;
		if (pu && salus_username_valid(pu->value))
			snprintf(out->user, sizeof out->user, "%s", pu->value);
		rc = salus_user_login(a->users, pu ? pu->value : "", pp ? pp->value : "", pp ? pp->value_n : 0, remote, now,
				      &who, &retry);
		if (rc == SALUS_EUNAUTHORIZED || rc == SALUS_ERATELIMIT) {
			out->event = SALUS_AUTHZ_EV_LOGIN_FAIL;
			out->retry_after = retry;
			rc = step_page(out, ptx->value, tx,
				       "login", rc == SALUS_ERATELIMIT ? "Too many failed attempts from this address; "
									 "wait and try again."
								       : "Wrong username or password (or the account is "
									 "temporarily locked).");
			if (!rc && retry)
				out->status = 429;
			goto out;
		}
		if (rc)
			goto out;
		out->event = SALUS_AUTHZ_EV_LOGIN_OK;
		snprintf(out->user, sizeof out->user, "%s", who.username);
		if (!strcmp(jstr(tx, "kind"), "launch")) { /* the sign-in of an EHR launch */
			if (!salus_role_is_staff(who.role)) {
				salus_store_kv_del(a->store, TX_NS, ptx->value);
				rc = error_page(out, 403, "only staff users launch applications from the EHR");
				goto out;
			}
			rc = json_object_set_new(tx, "user", json_string(who.username)) ||
					     json_object_set_new(tx, "ugen", json_string(who.gen)) ||
					     json_object_set_new(tx, "fhirUser", json_string(who.fhir_user)) ||
					     json_object_set_new(tx, "role", json_string(salus_role_name(who.role))) ||
					     json_object_set_new(tx, "stage", json_string("mfa"))
				     ? SALUS_ENOMEM
				     : 0;
			if (rc)
				goto out;
			if (!who.mfa_required) {
				rc = finish_launch(a, ptx->value, tx, out);
				goto out;
			}
			if ((rc = kv_json_put(a->store, TX_NS, ptx->value, tx)))
				goto out;
			rc = step_page(out, ptx->value, tx, "mfa", NULL);
			goto out;
		}
		const char *luser = jstr(tx, "luser");
		if (*luser && (strcmp(luser, who.username) || strcmp(jstr(tx, "lugen"), who.gen))) {
			/* an EHR launch is for the user who launched, as they were then */
			salus_store_kv_del(a->store, TX_NS, ptx->value);
			salus_log(SALUS_LOG_WARN, "auth.launch.denied", "client=%s reason=other-user", jstr(tx, "client"));
			rc = redirect(out, jstr(tx, "redirect"), "error", "access_denied", jstr(tx, "state"), a->issuer);
			goto out;
		}
		bool empty = false;
		if ((rc = tx_grant(a, tx, who.username, who.gen, who.role, who.fhir_user, who.mfa_required ? "mfa" : "consent",
				   &empty)))
			goto out;
		if (!who.mfa_required && json_is_true(json_object_get(tx, "pick")) &&
		    json_object_set_new(tx, "stage", json_string("patient"))) {
			rc = SALUS_ENOMEM;
			goto out;
		}
		if (empty) { /* the role allows none of what was asked */
			salus_store_kv_del(a->store, TX_NS, ptx->value);
			rc = redirect(out, jstr(tx, "redirect"), "error", "invalid_scope", jstr(tx, "state"), a->issuer);
			goto out;
		}
		if ((rc = kv_json_put(a->store, TX_NS, ptx->value, tx)))
			goto out;
		rc = step_page(out, ptx->value, tx, jstr(tx, "stage"), NULL);
	} else if (!strcmp(stage, "mfa")) {
		const struct salus_form_param *po = salus_form_get(f, "otp");
		snprintf(out->user, sizeof out->user, "%s", jstr(tx, "user"));
		rc = salus_user_mfa_verify(a->users, jstr(tx, "user"), po ? po->value : "", remote, now, &retry);
		if (rc == SALUS_EUNAUTHORIZED || rc == SALUS_ERATELIMIT) {
			out->event = SALUS_AUTHZ_EV_MFA_FAIL;
			out->retry_after = retry;
			rc = step_page(out, ptx->value, tx, "mfa", "That code is not valid. Try the next code.");
			if (!rc && retry)
				out->status = 429;
			goto out;
		}
		if (rc)
			goto out;
		out->event = SALUS_AUTHZ_EV_MFA_OK;
		if (!strcmp(jstr(tx, "kind"), "launch")) {
			rc = finish_launch(a, ptx->value, tx, out);
			goto out;
		}
		const char *next = json_is_true(json_object_get(tx, "pick")) ? "patient" : "consent";
		if (json_object_set_new(tx, "stage", json_string(next))) {
			rc = SALUS_ENOMEM;
			goto out;
		}
		if ((rc = kv_json_put(a->store, TX_NS, ptx->value, tx)))
			goto out;
		rc = step_page(out, ptx->value, tx, next, NULL);
	} else if (!strcmp(stage, "patient") || !strcmp(stage, "encounter")) {
		snprintf(out->user, sizeof out->user, "%s", jstr(tx, "user"));
		rc = pick_post(a, ptx->value, tx, f, out);
	} else {
		const struct salus_form_param *pd = salus_form_get(f, "decision");
		snprintf(out->user, sizeof out->user, "%s", jstr(tx, "user"));
		if (!pd || strcmp(pd->value, "approve")) {
			salus_store_kv_del(a->store, TX_NS, ptx->value);
			out->event = SALUS_AUTHZ_EV_DENIED;
			rc = redirect(out, jstr(tx, "redirect"), "error", "access_denied", jstr(tx, "state"), a->issuer);
			goto out;
		}
		rc = issue_code(a, ptx->value, tx, out);
	}
out:
	json_decref(tx);
	return rc;
}

int salus_oauth_authorize(struct salus_auth *a, const char *method, salus_param_fn get, void *get_ctx,
			  const char *content_type, const char *body, size_t body_n, const char *cookie,
			  const char *remote, struct salus_authz_response *out)
{
	memset(out, 0, sizeof *out);
	if (!a->users)
		return error_page(out, 503, "sign-in is not available on this server");
	if (!strcmp(method, "GET"))
		return authorize_get(a, get, get_ctx, cookie, out);
	if (strcmp(method, "POST"))
		return error_page(out, 405, "use GET or POST");
	if (!salus_form_media_type(content_type))
		return error_page(out, 400, "the form must be application/x-www-form-urlencoded");
	struct salus_form f;
	int rc = salus_form_parse(body ? body : "", body ? body_n : 0, &f);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : error_page(out, 400, "the form is not valid");
	rc = authorize_post(a, &f, cookie, remote, out);
	salus_form_release(&f);
	return rc;
}

/* ---- the token grants ------------------------------------------------------------------------------------ */

/* Authenticate the client of a grant: Basic (confidential) or client_id alone (public).
 * On success *rec is the client's record (new reference). */
static int client_auth(struct salus_auth *a, const char *authorization, const struct salus_form *f, json_t **rec,
		       struct salus_token_response *out, bool *answered)
{
	const struct salus_form_param *cid = salus_form_get(f, "client_id");
	char id[SALUS_CLIENT_ID_MAX + 1];
	char *secret = NULL, *raw = NULL;
	size_t secret_n = 0, raw_n;
	json_t *r = NULL;
	int rc;
	*answered = true;
	if (salus_form_get(f, "client_secret") || salus_form_get(f, "client_assertion"))
		return salus_token_error(out, 401, "invalid_client");
	if (authorization) {
		if ((rc = salus_basic_parse(authorization, id, &secret, &secret_n)))
			return rc == SALUS_ENOMEM ? rc : salus_token_error(out, 401, "invalid_client");
		if (cid && strcmp(cid->value, id)) {
			salus_secret_free(secret, secret_n);
			return salus_token_error(out, 400, "invalid_request");
		}
		rc = salus_client_id_valid(id) ? salus_client_get(a->store, id, &r, &raw, &raw_n) : SALUS_ENOTFOUND;
		salus_free(raw);
		if (rc && rc != SALUS_ENOTFOUND) {
			salus_secret_free(secret, secret_n);
			*answered = false;
			return rc;
		}
		bool ok = salus_pwhash_verify(r ? jstr(r, "secret_hash") : a->dummy_hash, secret, secret_n);
		salus_secret_free(secret, secret_n);
		if (!r || !ok || json_is_true(json_object_get(r, "public"))) {
			json_decref(r);
			return salus_token_error(out, 401, "invalid_client");
		}
	} else {
		if (!cid || !salus_client_id_valid(cid->value))
			return salus_token_error(out, 401, "invalid_client");
		rc = salus_client_get(a->store, cid->value, &r, &raw, &raw_n);
		salus_free(raw);
		if (rc == SALUS_ENOTFOUND)
			return salus_token_error(out, 401, "invalid_client");
		if (rc) {
			*answered = false;
			return rc;
		}
		if (!json_is_true(json_object_get(r, "public"))) { /* a confidential client must authenticate */
			json_decref(r);
			return salus_token_error(out, 401, "invalid_client");
		}
	}
	*answered = false;
	*rec = r;
	return 0;
}

static void revoke_family(struct salus_auth *a, const char *fam)
{
	json_t *j = json_pack("{s:b, s:I}", "revoked", 1, "at", (json_int_t)salus_now_ms());
	if (j)
		kv_json_put(a->store, FAMILY_NS, fam, j);
	json_decref(j);
	salus_log(SALUS_LOG_WARN, "auth.refresh.family_revoked", "family=%.8s", fam);
}

/* The patient context of a user token into out ("" when none): only when the
 * granted scopes `res` hold a patient/ scope (or launch/patient was
 * granted) and the user's fhirUser gives
 * one (Patient/X, or an active RelatedPerson's patient through the
 * server's resolver).  Errors of the resolver other than "no context". */
static int patient_context(struct salus_auth *a, const char *fhir_user, const char *res, bool launch_patient,
			   char out[SALUS_MAX_ID + 1])
{
	out[0] = 0;
	if (!fhir_user || !*fhir_user || !res ||
	    (!launch_patient && strncmp(res, "patient/", 8) && !strstr(res, " patient/")))
		return 0;
	int rc;
	if (a->context) {
		rc = a->context(a->context_ctx, fhir_user, out);
	} else if (!strncmp(fhir_user, "Patient/", 8) && strlen(fhir_user + 8) <= SALUS_MAX_ID) {
		memcpy(out, fhir_user + 8, strlen(fhir_user + 8) + 1);
		rc = 0;
	} else {
		rc = SALUS_ENOTFOUND;
	}
	if (rc)
		out[0] = 0;
	return rc == SALUS_ENOTFOUND ? 0 : rc;
}

/* Tokens for a grant g {client, user, ugen, fhirUser, res, bits, nonce, [fam, fexp]}: the answer. */
static int issue_user_tokens(struct salus_auth *a, json_t *g, struct salus_token_response *out)
{
	char jti[SALUS_B64URL_LEN(18)], fam[SALUS_B64URL_LEN(18)] = "";
	salus_random_token(18, jti, sizeof jti);
	int64_t now = salus_now_ms() / 1000;
	unsigned bits = (unsigned)json_integer_value(json_object_get(g, "bits"));
	bool refresh = bits & (SP_OFFLINE | SP_ONLINE);
	char *tok = NULL, *idt = NULL, *full = NULL, *rt = NULL;
	json_t *claims = NULL, *body = NULL;
	int rc;
	if (refresh) {
		const char *f = jstr(g, "fam");
		if (*f) {
			snprintf(fam, sizeof fam, "%s", f);
		} else {
			salus_random_token(18, fam, sizeof fam);
			json_t *fj = json_pack("{s:b}", "revoked", 0);
			rc = fj ? kv_json_put(a->store, FAMILY_NS, fam, fj) : SALUS_ENOMEM;
			json_decref(fj);
			if (rc)
				return rc;
			json_object_set_new(g, "fexp", json_integer((json_int_t)(salus_now_ms() +
										  (int64_t)((bits & SP_OFFLINE) ? SALUS_REFRESH_S
													       : SALUS_REFRESH_ONLINE_S) *
											  1000)));
		}
	}
	json_t *cl = json_object_get(g, "client");
	json_t *crec = NULL;
	char *raw = NULL;
	size_t raw_n;
	/* the patient context (policy/policy.h): fixed in the token, re-checked on every request */
	char patient[SALUS_MAX_ID + 1] = "";
	const char *lpatient = jstr(g, "lpatient"), *lencounter = jstr(g, "lencounter");
	if (*lpatient && fhir_id_ok(lpatient)) /* an EHR launch's context */
		memcpy(patient, lpatient, strlen(lpatient) + 1);
	else if ((rc = patient_context(a, jstr(g, "fhirUser"), jstr(g, "res"), bits & SP_LAUNCH_PATIENT, patient)))
		return rc;
	if ((rc = salus_client_get(a->store, json_string_value(cl), &crec, &raw, &raw_n)))
		return rc == SALUS_ENOTFOUND ? salus_token_error(out, 400, "invalid_grant") : rc;
	salus_free(raw);
	claims = json_pack("{s:s, s:O, s:s, s:I, s:I, s:s, s:s, s:O, s:s, s:s, s:s}", "iss", a->issuer, "sub", cl, "aud",
			   a->audience, "iat", (json_int_t)now, "exp", (json_int_t)(now + a->lifetime), "jti", jti, "scope",
			   jstr(g, "res"), "client_id", cl, "cgen", jstr(crec, "gen"), "uid", jstr(g, "user"), "ugen",
			   jstr(g, "ugen"));
	json_decref(crec);
	if (!claims || (fam[0] && json_object_set_new(claims, "fam", json_string(fam))) ||
	    (*jstr(g, "role") && json_object_set_new(claims, "role", json_string(jstr(g, "role")))) ||
	    (patient[0] && json_object_set_new(claims, "patient", json_string(patient))) ||
	    (*jstr(g, "fhirUser") && json_object_set_new(claims, "fhirUser", json_string(jstr(g, "fhirUser"))))) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	if ((rc = salus_jwt_sign(a->key, claims, &tok, NULL)))
		goto out;
	if ((rc = join_scope(jstr(g, "res"), bits, &full)))
		goto out;
	body = json_pack("{s:s, s:s, s:i, s:s}", "access_token", tok, "token_type", "Bearer", "expires_in", a->lifetime,
			 "scope", full);
	if (!body) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	const char *fu = jstr(g, "fhirUser");
	if ((patient[0] && json_object_set_new(body, "patient", json_string(patient))) ||
	    (patient[0] && *lencounter && json_object_set_new(body, "encounter", json_string(lencounter))) ||
	    /* an EHR launch opens the app in its own window, without a patient banner of Salus's around it */
	    (*lpatient && json_object_set_new(body, "need_patient_banner", json_true()))) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	json_t *lcontext = json_object_get(g, "lcontext");
	if (patient[0] && json_array_size(lcontext)) { /* SMART 2.x fhirContext: the launch's other resources */
		json_t *fc = json_array(), *cv;
		size_t ci;
		json_array_foreach(lcontext, ci, cv)
		{
			if (fc && json_array_append_new(fc, json_pack("{s:s}", "reference", jstr_of(cv)))) {
				json_decref(fc);
				fc = NULL;
			}
		}
		if (!fc || json_object_set_new(body, "fhirContext", fc)) {
			rc = SALUS_ENOMEM;
			goto out;
		}
	}
	if (bits & SP_OPENID) {
		json_t *ic = json_pack("{s:s, s:s, s:O, s:I, s:I}", "iss", a->issuer, "sub", jstr(g, "user"), "aud", cl,
				       "iat", (json_int_t)now, "exp", (json_int_t)(now + a->lifetime));
		char fhiruser[700];
		if (ic && *jstr(g, "nonce"))
			json_object_set_new(ic, "nonce", json_string(jstr(g, "nonce")));
		if (ic && (bits & SP_FHIRUSER) && *fu) {
			snprintf(fhiruser, sizeof fhiruser, "%s/%s", a->audience, fu);
			json_object_set_new(ic, "fhirUser", json_string(fhiruser));
		}
		if (ic && (bits & SP_PROFILE))
			json_object_set_new(ic, "preferred_username", json_string(jstr(g, "user")));
		rc = ic ? salus_jwt_sign(a->key, ic, &idt, NULL) : SALUS_ENOMEM;
		json_decref(ic);
		if (rc || json_object_set_new(body, "id_token", json_string(idt))) {
			rc = rc ? rc : SALUS_ENOMEM;
			goto out;
		}
	}
	if (refresh) {
		char rtok[SALUS_B64URL_LEN(32)], key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
		salus_random_token(32, rtok, sizeof rtok);
		secret_key(rtok, key);
		json_t *r = json_pack("{s:O, s:s, s:s, s:s, s:s, s:i, s:s, s:O, s:s, s:s}", "client", cl, "user",
				      jstr(g, "user"), "ugen", jstr(g, "ugen"), "fhirUser", fu, "res", jstr(g, "res"), "bits",
				      (int)bits, "fam", fam, "fexp", json_object_get(g, "fexp"), "lpatient", lpatient,
				      "lencounter", lencounter);
		if (r && ((*jstr(g, "role") && json_object_set_new(r, "role", json_string(jstr(g, "role")))) ||
			  (lcontext && json_object_set(r, "lcontext", lcontext)))) {
			json_decref(r);
			r = NULL;
		}
		rc = r ? kv_json_put(a->store, REFRESH_NS, key, r) : SALUS_ENOMEM;
		json_decref(r);
		if (rc || json_object_set_new(body, "refresh_token", json_string(rtok))) {
			rc = rc ? rc : SALUS_ENOMEM;
			goto out;
		}
	}
	rc = salus_token_answer(out, 200, body);
	body = NULL;
	if (!rc)
		salus_log(SALUS_LOG_INFO, "auth.token.issued", "client=%s user=%s jti=%s", json_string_value(cl),
			  jstr(g, "user"), jti);
out:
	json_decref(body);
	json_decref(claims);
	salus_free(tok);
	salus_free(idt);
	salus_free(full);
	salus_free(rt);
	return rc;
}

static int grant_code(struct salus_auth *a, const json_t *client, const struct salus_form *f,
		      struct salus_token_response *out)
{
	const struct salus_form_param *pc = salus_form_get(f, "code"), *pr = salus_form_get(f, "redirect_uri"),
				      *pv = salus_form_get(f, "code_verifier");
	if (!pc || !pr || !pv)
		return salus_token_error(out, 400, "invalid_request");
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	secret_key(pc->value, key);
	json_t *g = NULL;
	int rc = kv_json_get(a->store, CODE_NS, key, &g);
	if (rc == SALUS_ENOTFOUND)
		return salus_token_error(out, 400, "invalid_grant");
	if (rc)
		return rc;
	/* claim the code: of two concurrent redemptions exactly one deletes it */
	rc = salus_store_kv_del(a->store, CODE_NS, key);
	if (rc) {
		json_decref(g);
		return rc == SALUS_ENOTFOUND ? salus_token_error(out, 400, "invalid_grant") : SALUS_EIO;
	}
	if (json_integer_value(json_object_get(g, "exp")) < salus_now_ms() || strcmp(jstr(g, "client"), jstr(client, "id")) ||
	    strcmp(jstr(g, "redirect"), pr->value) || !salus_pkce_s256_ok(pv->value, jstr(g, "challenge")) ||
	    salus_user_current(a->users, jstr(g, "user"), jstr(g, "ugen"))) {
		json_decref(g);
		salus_log(SALUS_LOG_INFO, "auth.token.denied", "reason=invalid_grant grant=authorization_code");
		return salus_token_error(out, 400, "invalid_grant");
	}
	rc = issue_user_tokens(a, g, out);
	json_decref(g);
	return rc;
}

static int grant_refresh(struct salus_auth *a, const json_t *client, const struct salus_form *f,
			 struct salus_token_response *out)
{
	const struct salus_form_param *pt = salus_form_get(f, "refresh_token");
	if (!pt)
		return salus_token_error(out, 400, "invalid_request");
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	secret_key(pt->value, key);
	json_t *g = NULL, *fam = NULL;
	int rc = kv_json_get(a->store, REFRESH_NS, key, &g);
	if (rc == SALUS_ENOTFOUND) {
		json_t *used = NULL;
		if (!kv_json_get(a->store, USED_NS, key, &used)) { /* reuse: revoke the whole family */
			revoke_family(a, jstr(used, "fam"));
			json_decref(used);
		}
		return salus_token_error(out, 400, "invalid_grant");
	}
	if (rc)
		return rc;
	if (strcmp(jstr(g, "client"), jstr(client, "id"))) {
		json_decref(g);
		return salus_token_error(out, 400, "invalid_grant");
	}
	rc = salus_store_kv_del(a->store, REFRESH_NS, key); /* claim */
	if (rc) {
		json_decref(g);
		return rc == SALUS_ENOTFOUND ? salus_token_error(out, 400, "invalid_grant") : SALUS_EIO;
	}
	json_t *marker = json_pack("{s:s, s:O}", "fam", jstr(g, "fam"), "fexp", json_object_get(g, "fexp"));
	rc = marker ? kv_json_put(a->store, USED_NS, key, marker) : SALUS_ENOMEM;
	json_decref(marker);
	if (rc)
		goto out;
	rc = kv_json_get(a->store, FAMILY_NS, jstr(g, "fam"), &fam);
	if (rc && rc != SALUS_ENOTFOUND)
		goto out;
	if (rc == SALUS_ENOTFOUND || json_is_true(json_object_get(fam, "revoked")) ||
	    json_integer_value(json_object_get(g, "fexp")) < salus_now_ms() ||
	    salus_user_current(a->users, jstr(g, "user"), jstr(g, "ugen"))) {
		rc = salus_token_error(out, 400, "invalid_grant");
		goto out;
	}
	rc = issue_user_tokens(a, g, out); /* same family, same absolute expiry */
out:
	json_decref(fam);
	json_decref(g);
	return rc;
}

int salus_oauth_grant(struct salus_auth *a, const char *authorization, const struct salus_form *f,
		      struct salus_token_response *out)
{
	if (!a->users)
		return salus_token_error(out, 400, "unsupported_grant_type");
	json_t *client = NULL;
	bool answered;
	int rc = client_auth(a, authorization, f, &client, out, &answered);
	if (rc || answered)
		return rc;
	if (!json_object_get(client, "redirect_uris")) { /* a backend service has no user grants */
		json_decref(client);
		return salus_token_error(out, 400, "unauthorized_client");
	}
	const struct salus_form_param *gt = salus_form_get(f, "grant_type");
	rc = !strcmp(gt->value, "authorization_code") ? grant_code(a, client, f, out) : grant_refresh(a, client, f, out);
	json_decref(client);
	return rc;
}

int salus_oauth_still_valid(struct salus_auth *a, const struct salus_grant *g)
{
	if (g->uid[0]) {
		if (!a->users)
			return SALUS_EUNAUTHORIZED;
		int rc = salus_user_current(a->users, g->uid, g->ugen);
		if (rc)
			return rc;
	}
	if (g->fam[0]) {
		json_t *fam = NULL;
		int rc = kv_json_get(a->store, FAMILY_NS, g->fam, &fam);
		if (rc)
			return rc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : rc;
		rc = json_is_true(json_object_get(fam, "revoked")) ? SALUS_EUNAUTHORIZED : 0;
		json_decref(fam);
		return rc;
	}
	return 0;
}

/* ---- introspection and revocation ------------------------------------------------------------------------- */

int salus_oauth_introspect(struct salus_auth *a, const char *authorization, const char *content_type,
			   const char *body, size_t body_n, struct salus_token_response *out)
{
	memset(out, 0, sizeof *out);
	if (!salus_form_media_type(content_type))
		return salus_token_error(out, 400, "invalid_request");
	struct salus_form f;
	int rc = salus_form_parse(body ? body : "", body ? body_n : 0, &f);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : salus_token_error(out, 400, "invalid_request");
	json_t *client = NULL;
	bool answered;
	if (!authorization) { /* introspection needs a confidential client (RFC 7662 §2.1) */
		rc = salus_token_error(out, 401, "invalid_client");
		goto out_form;
	}
	rc = client_auth(a, authorization, &f, &client, out, &answered);
	if (rc || answered)
		goto out_form;
	const struct salus_form_param *pt = salus_form_get(&f, "token");
	json_t *ans = NULL;
	if (!pt || pt->value_n > SALUS_MAX_TOKEN) {
		rc = salus_token_error(out, 400, "invalid_request");
		goto out_client;
	}
	char hdr[SALUS_MAX_TOKEN + 16];
	snprintf(hdr, sizeof hdr, "Bearer %s", pt->value);
	struct salus_principal p;
	json_t *r = NULL;
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	if (!(rc = salus_auth_check(a, hdr, &p))) {
		char *sc = NULL;
		rc = salus_scopes_format(p.scopes, &sc);
		if (!rc)
			ans = json_pack("{s:b, s:s, s:s, s:s, s:I, s:s}", "active", 1, "scope", sc, "client_id", p.client_id,
					"sub", p.user_id[0] ? p.user_id : p.client_id, "exp", (json_int_t)p.exp, "token_type",
					"Bearer");
		salus_free(sc);
		salus_principal_release(&p);
	} else if (rc == SALUS_EUNAUTHORIZED) {
		secret_key(pt->value, key);
		json_t *fam = NULL;
		rc = kv_json_get(a->store, REFRESH_NS, key, &r);
		if (!rc && !kv_json_get(a->store, FAMILY_NS, jstr(r, "fam"), &fam) &&
		    !json_is_true(json_object_get(fam, "revoked")) &&
		    json_integer_value(json_object_get(r, "fexp")) > salus_now_ms()) {
			char *full = NULL;
			rc = join_scope(jstr(r, "res"), (unsigned)json_integer_value(json_object_get(r, "bits")), &full);
			if (!rc)
				ans = json_pack("{s:b, s:s, s:s, s:s, s:I, s:s}", "active", 1, "scope", full, "client_id",
						jstr(r, "client"), "sub", jstr(r, "user"), "exp",
						(json_int_t)(json_integer_value(json_object_get(r, "fexp")) / 1000),
						"token_type", "refresh_token");
			salus_free(full);
		} else if (rc == SALUS_ENOTFOUND || !rc) {
			rc = 0;
		}
		json_decref(fam);
		json_decref(r);
	}
	if (rc == SALUS_EIO || rc == SALUS_ENOMEM)
		goto out_client;
	if (!ans)
		ans = json_pack("{s:b}", "active", 0);
	rc = salus_token_answer(out, 200, ans);
out_client:
	json_decref(client);
out_form:
	salus_form_release(&f);
	return rc;
}

int salus_oauth_revoke(struct salus_auth *a, const char *authorization, const char *content_type, const char *body,
		       size_t body_n, struct salus_token_response *out)
{
	memset(out, 0, sizeof *out);
	if (!salus_form_media_type(content_type))
		return salus_token_error(out, 400, "invalid_request");
	struct salus_form f;
	int rc = salus_form_parse(body ? body : "", body ? body_n : 0, &f);
	if (rc)
		return rc == SALUS_ENOMEM ? rc : salus_token_error(out, 400, "invalid_request");
	json_t *client = NULL, *r = NULL;
	bool answered;
	rc = client_auth(a, authorization, &f, &client, out, &answered);
	if (rc || answered)
		goto out_form;
	const struct salus_form_param *pt = salus_form_get(&f, "token");
	if (!pt || pt->value_n > SALUS_MAX_TOKEN) {
		rc = salus_token_error(out, 400, "invalid_request");
		goto out_client;
	}
	char key[SALUS_B64URL_LEN(SALUS_HASH_LEN)];
	secret_key(pt->value, key);
	rc = kv_json_get(a->store, REFRESH_NS, key, &r);
	if (!rc && !strcmp(jstr(r, "client"), jstr(client, "id"))) {
		revoke_family(a, jstr(r, "fam")); /* the refresh token and every token of its family */
		salus_store_kv_del(a->store, REFRESH_NS, key);
	} else if (rc == SALUS_ENOTFOUND || !rc) {
		/* an access token: revocable when it belongs to a refresh family of this client */
		char hdr[SALUS_MAX_TOKEN + 16];
		struct salus_principal p;
		snprintf(hdr, sizeof hdr, "Bearer %s", pt->value);
		if (!salus_auth_check(a, hdr, &p)) {
			if (!strcmp(p.client_id, jstr(client, "id")) && p.grant_ && p.grant_->fam[0])
				revoke_family(a, p.grant_->fam);
			salus_principal_release(&p);
		}
	}
	json_decref(r);
	if (rc && rc != SALUS_ENOTFOUND)
		goto out_client;
	/* RFC 7009 §2.2: 200 whether or not the token was valid */
	rc = salus_token_answer(out, 200, json_object());
out_client:
	json_decref(client);
out_form:
	salus_form_release(&f);
	return rc;
}
