/*
 * jwt.c — compact JWS with alg EdDSA (RFC 7515, RFC 8037) carrying JWT
 * claims (RFC 7519): signing, and strict verification (see crypto.h).
 *
 * Verification order: size cap → exactly three non-empty base64url parts →
 * header (small JSON object, alg EdDSA, known members only) → signature over
 * the ASCII "header.payload" → payload JSON (depth-limited, no duplicate
 * keys) → time and issuer/audience claims.  Every failure is
 * SALUS_EUNAUTHORIZED: a caller must not learn which check failed.
 */
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"

#define JWT_MAX_HEADER 512 /* decoded protected header */
#define SIG_B64_LEN 86     /* base64url of 64 bytes */

int salus_jwt_sign(const struct salus_signkey *k, const json_t *claims, char **out, size_t *out_n)
{
	if (!json_is_object(claims))
		return SALUS_EINVALID;
	int rc;
	char *payload = NULL;
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_TOKEN);

	size_t plen = json_dumpb(claims, NULL, 0, JSON_COMPACT);
	if (plen == 0)
		return SALUS_ENOMEM;
	if (plen > SALUS_MAX_TOKEN)
		return SALUS_ETOOLARGE;
	if (!(payload = salus_malloc(plen)))
		return SALUS_ENOMEM;
	if (json_dumpb(claims, payload, plen, JSON_COMPACT) != plen) {
		rc = SALUS_ENOMEM;
		goto out_payload;
	}

	char header[128];
	int hn = snprintf(header, sizeof header, "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}",
			  salus_signkey_kid(k));
	if (hn < 0 || (size_t)hn >= sizeof header) {
		rc = SALUS_EINTERNAL;
		goto out_payload;
	}
	if ((rc = salus_b64url_append(&b, header, (size_t)hn)) || (rc = salus_buf_addc(&b, '.')) ||
	    (rc = salus_b64url_append(&b, payload, plen)))
		goto out_buf;

	unsigned char sig[crypto_sign_BYTES];
	if (crypto_sign_detached(sig, NULL, (const unsigned char *)b.p, b.n, k->sk) != 0) {
		rc = SALUS_ECRYPTO;
		goto out_buf;
	}
	if ((rc = salus_buf_addc(&b, '.')) || (rc = salus_b64url_append(&b, sig, sizeof sig)))
		goto out_buf;
	*out = salus_buf_detach(&b, out_n);
	if (!*out)
		rc = SALUS_ENOMEM;
out_buf:
	salus_buf_release(&b);
out_payload:
	salus_free(payload);
	return rc;
}

/* Nesting depth of a JSON text, counting brackets outside strings. */
static bool depth_ok(const unsigned char *p, size_t n, int max)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return false;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return true;
}

static bool header_ok(const struct salus_signkey *k, const unsigned char *h, size_t n)
{
	json_error_t err;
	if (!depth_ok(h, n, 2))
		return false;
	json_t *hdr = json_loadb((const char *)h, n, JSON_REJECT_DUPLICATES, &err);
	if (!hdr)
		return false;
	bool ok = json_is_object(hdr);
	const char *key;
	json_t *v;
	bool have_alg = false;
	json_object_foreach(hdr, key, v)
	{
		if (!ok)
			break;
		if (!strcmp(key, "alg")) {
			ok = json_is_string(v) && !strcmp(json_string_value(v), "EdDSA");
			have_alg = true;
		} else if (!strcmp(key, "typ")) {
			ok = json_is_string(v) &&
			     (!strcmp(json_string_value(v), "JWT") || !strcmp(json_string_value(v), "at+jwt"));
		} else if (!strcmp(key, "kid")) {
			ok = json_is_string(v) && !strcmp(json_string_value(v), salus_signkey_kid(k));
		} else {
			ok = false; /* crit, jku, jwk, x5u, b64...: never honoured, so refused */
		}
	}
	json_decref(hdr);
	return ok && have_alg;
}

static bool int_claim(json_t *claims, const char *name, bool required, json_int_t *out)
{
	json_t *v = json_object_get(claims, name);
	if (!v)
		return !required;
	if (!json_is_integer(v))
		return false;
	*out = json_integer_value(v);
	return true;
}

static bool aud_ok(json_t *aud, const char *want)
{
	if (json_is_string(aud))
		return !strcmp(json_string_value(aud), want);
	if (!json_is_array(aud))
		return false;
	size_t i;
	json_t *v;
	json_array_foreach(aud, i, v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return true;
	return false;
}

static bool claims_ok(json_t *c, const struct salus_jwt_expect *e)
{
	int64_t now = e && e->now ? e->now : (int64_t)time(NULL);
	int leeway = e ? e->leeway : 0;
	if (leeway < 0 || leeway > 300)
		return false;
	json_int_t exp = 0, nbf = 0, iat = 0;
	if (!int_claim(c, "exp", true, &exp) || !int_claim(c, "nbf", false, &nbf) || !int_claim(c, "iat", false, &iat))
		return false;
	if (now >= (int64_t)exp + leeway)
		return false;
	if ((int64_t)nbf > now + leeway || (int64_t)iat > now + leeway)
		return false;
	if (e && e->iss) {
		json_t *iss = json_object_get(c, "iss");
		if (!json_is_string(iss) || strcmp(json_string_value(iss), e->iss))
			return false;
	}
	if (e && e->aud && !aud_ok(json_object_get(c, "aud"), e->aud))
		return false;
	return true;
}

int salus_jwt_verify(const struct salus_signkey *k, const char *token, size_t n,
		     const struct salus_jwt_expect *expect, json_t **claims)
{
	if (!token || n == 0 || n > SALUS_MAX_TOKEN)
		return SALUS_EUNAUTHORIZED;
	const char *d1 = memchr(token, '.', n);
	if (!d1)
		return SALUS_EUNAUTHORIZED;
	const char *d2 = memchr(d1 + 1, '.', n - (size_t)(d1 + 1 - token));
	if (!d2 || memchr(d2 + 1, '.', n - (size_t)(d2 + 1 - token)))
		return SALUS_EUNAUTHORIZED;
	size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1), sl = n - (size_t)(d2 + 1 - token);
	if (hl == 0 || pl == 0 || sl != SIG_B64_LEN)
		return SALUS_EUNAUTHORIZED;

	unsigned char hdr[JWT_MAX_HEADER], sig[crypto_sign_BYTES];
	size_t hn, sn, pn;
	if (salus_b64url_decode(token, hl, hdr, sizeof hdr, &hn) || !header_ok(k, hdr, hn))
		return SALUS_EUNAUTHORIZED;
	if (salus_b64url_decode(d2 + 1, sl, sig, sizeof sig, &sn) || sn != sizeof sig)
		return SALUS_EUNAUTHORIZED;
	if (crypto_sign_verify_detached(sig, (const unsigned char *)token, hl + 1 + pl, k->pk) != 0)
		return SALUS_EUNAUTHORIZED;

	unsigned char payload[SALUS_MAX_TOKEN / 4 * 3 + 3];
	if (salus_b64url_decode(d1 + 1, pl, payload, sizeof payload, &pn) ||
	    !depth_ok(payload, pn, SALUS_MAX_JSON_DEPTH))
		return SALUS_EUNAUTHORIZED;
	json_error_t err;
	json_t *c = json_loadb((const char *)payload, pn, JSON_REJECT_DUPLICATES, &err);
	if (!c)
		return SALUS_EUNAUTHORIZED; /* a signed token we cannot parse: also ENOMEM, fail closed */
	if (!json_is_object(c) || !claims_ok(c, expect)) {
		json_decref(c);
		return SALUS_EUNAUTHORIZED;
	}
	*claims = c;
	return 0;
}
