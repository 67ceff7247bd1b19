/*
 * transform.c — the span rewriter: chooses an action per (mode, category),
 * applies it to each span and copies the text between spans; also the keyed
 * hash every keyed action derives from, and de-identification keys.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "deid/transform_int.h"

static const char *const mode_names[] = {
#define SALUS_DEID_MODE_NAME(e, s) s,
	SALUS_DEID_MODE_MAP(SALUS_DEID_MODE_NAME)
#undef SALUS_DEID_MODE_NAME
};

int salus_deid_mode_parse(const char *name, enum salus_deid_mode *out)
{
	if (!name)
		return SALUS_EINVALID;
	for (int i = 0; i < SALUS_DEID__MODE_COUNT; i++) {
		if (!strcmp(name, mode_names[i])) {
			*out = (enum salus_deid_mode)i;
			return 0;
		}
	}
	if (!strcmp(name, "generalize")) {
		*out = SALUS_DEID_GENERALISE;
		return 0;
	}
	return SALUS_EINVALID;
}

const char *salus_deid_mode_name(enum salus_deid_mode m)
{
	return (unsigned)m < SALUS_DEID__MODE_COUNT ? mode_names[m] : "unknown";
}

bool salus_deid_mode_keyed(enum salus_deid_mode m)
{
	return m == SALUS_DEID_SURROGATE || m == SALUS_DEID_SHIFT_DATES || m == SALUS_DEID_PSEUDONYM ||
	       m == SALUS_DEID_SAFE_HARBOR;
}

enum salus_xf_action salus_xf_action(const struct salus_deid_xform_opts *o, enum salus_phi t)
{
	switch (o->mode) {
	case SALUS_DEID_REDACT:
		return SALUS_XA_REDACT;
	case SALUS_DEID_SURROGATE:
		if (t == SALUS_PHI_DATE)
			return SALUS_XA_SHIFT;
		if (t == SALUS_PHI_AGE)
			return SALUS_XA_AGE;
		return SALUS_XA_SURROGATE;
	case SALUS_DEID_SHIFT_DATES:
		return t == SALUS_PHI_DATE ? SALUS_XA_SHIFT : SALUS_XA_MASK;
	case SALUS_DEID_GENERALISE:
		if (t == SALUS_PHI_DATE)
			return SALUS_XA_YEAR;
		if (t == SALUS_PHI_AGE)
			return SALUS_XA_AGE;
		if (t == SALUS_PHI_ZIP)
			return SALUS_XA_ZIP3;
		return SALUS_XA_MASK;
	case SALUS_DEID_PSEUDONYM:
		return (t == SALUS_PHI_ID || t == SALUS_PHI_SSN) ? SALUS_XA_PSEUDO : SALUS_XA_MASK;
	case SALUS_DEID_SAFE_HARBOR:
		switch (t) {
		case SALUS_PHI_DATE:
			return o->shift_dates ? SALUS_XA_SHIFT : SALUS_XA_YEAR;
		case SALUS_PHI_AGE:
			return SALUS_XA_AGE;
		case SALUS_PHI_ZIP:
			return SALUS_XA_ZIP3;
		case SALUS_PHI_ID:
		case SALUS_PHI_SSN:
			return SALUS_XA_PSEUDO;
		case SALUS_PHI_NAME:
		case SALUS_PHI_LOCATION:
		case SALUS_PHI_PHONE:
		case SALUS_PHI_EMAIL:
		case SALUS_PHI_URL:
		case SALUS_PHI_IP:
			return SALUS_XA_SURROGATE;
		default:
			return SALUS_XA_MASK;
		}
	case SALUS_DEID_MASK:
	default:
		return SALUS_XA_MASK;
	}
}

int salus_xf_hash(const struct salus_deid_xform_opts *o, const char *domain, const char *scope, const char *v,
		  size_t n, unsigned char *out, size_t outlen)
{
	crypto_generichash_state st;
	static const unsigned char zero = 0;
	if (!o->key || o->key_len != SALUS_DEID_KEY_LEN || outlen < crypto_generichash_BYTES_MIN ||
	    outlen > crypto_generichash_BYTES_MAX)
		return SALUS_EUSAGE;
	/* domain NUL scope-flag scope NUL value: unambiguous framing */
	unsigned char has_scope = scope != NULL;
	if (crypto_generichash_init(&st, o->key, o->key_len, outlen) ||
	    crypto_generichash_update(&st, (const unsigned char *)domain, strlen(domain)) ||
	    crypto_generichash_update(&st, &zero, 1) || crypto_generichash_update(&st, &has_scope, 1) ||
	    (scope && crypto_generichash_update(&st, (const unsigned char *)scope, strlen(scope))) ||
	    crypto_generichash_update(&st, &zero, 1) ||
	    crypto_generichash_update(&st, (const unsigned char *)v, n) ||
	    crypto_generichash_final(&st, out, outlen)) {
		sodium_memzero(&st, sizeof st);
		return SALUS_ECRYPTO;
	}
	sodium_memzero(&st, sizeof st);
	return 0;
}

int salus_xf_shift_days(const struct salus_deid_xform_opts *o, long *days)
{
	unsigned char h[16];
	int rc = salus_xf_hash(o, "date-shift", o->scope ? o->scope : "", "", 0, h, sizeof h);
	if (rc)
		return rc;
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = (x << 8) | h[i];
	long mag = o->keep_weekday ? 7 * (long)(1 + x % 52) : (long)(1 + x % 365);
	*days = (h[8] & 1) ? -mag : mag;
	return 0;
}

static int add_mask(struct salus_buf *out, enum salus_phi t)
{
	return salus_buf_addf(out, "[%s]", salus_phi_label(t));
}

static bool has_ci(const char *v, size_t n, const char *w)
{
	size_t wn = strlen(w);
	for (size_t i = 0; i + wn <= n; i++) {
		size_t k = 0;
		while (k < wn && (v[i + k] | 0x20) == w[k])
			k++;
		if (k == wn)
			return true;
	}
	return false;
}

/* Ages: the first number in the span; >= 90 becomes "90+", others stay. */
static int xf_age(const char *v, size_t n, struct salus_buf *out)
{
	size_t s = 0;
	while (s < n && !(v[s] >= '0' && v[s] <= '9'))
		s++;
	if (s == n) {
		if (has_ci(v, n, "ninety") || has_ci(v, n, "hundred"))
			return salus_buf_adds(out, "90+");
		return add_mask(out, SALUS_PHI_AGE);
	}
	size_t e = s;
	while (e < n && v[e] >= '0' && v[e] <= '9')
		e++;
	long age;
	if (e - s > 3 || salus_parse_long((struct salus_slice){v + s, e - s}, 0, 999, &age))
		age = 999;
	if (age < 90)
		return salus_buf_add(out, v, n);
	int rc = salus_buf_add(out, v, s);
	if (!rc)
		rc = salus_buf_adds(out, "90+");
	if (!rc && e < n && v[e] == '+')
		e++;
	if (!rc)
		rc = salus_buf_add(out, v + e, n - e);
	return rc;
}

int salus_xf_value(const struct salus_deid_xform_opts *o, enum salus_xf_action a, enum salus_phi t,
		   const char *v, size_t n, struct salus_buf *out)
{
	int rc, st;
	size_t mark = out->n;
	switch (a) {
	case SALUS_XA_REDACT:
		return 0;
	case SALUS_XA_SURROGATE:
		rc = salus_xf_surrogate(o, t, v, n, out);
		if (rc != SALUS_EINVALID)
			return rc;
		break;
	case SALUS_XA_SHIFT:
	case SALUS_XA_YEAR:
		rc = salus_xf_date(o, a, v, n, false, &st, out);
		if (rc || st == SALUS_XF_DATE_OK)
			return rc;
		break;
	case SALUS_XA_AGE:
		return xf_age(v, n, out);
	case SALUS_XA_ZIP3:
		rc = salus_xf_zip3(v, n, out);
		if (rc != SALUS_EINVALID)
			return rc;
		break;
	case SALUS_XA_PSEUDO:
		return salus_xf_pseudonym(o, v, n, out);
	case SALUS_XA_MASK:
		break;
	}
	if (out->n > mark) { /* drop a partial write before masking (cannot happen today) */
		out->n = mark;
		out->p[mark] = 0;
	}
	return add_mask(out, t);
}

int salus_deid_transform(const struct salus_deid_xform_opts *o, const char *text, size_t n,
			 const struct salus_span *spans, size_t nspans, struct salus_buf *out)
{
	if (!o || (!text && n) || (!spans && nspans) || !out)
		return SALUS_EUSAGE;
	if ((unsigned)o->mode >= SALUS_DEID__MODE_COUNT)
		return SALUS_EINVALID;
	if (salus_deid_mode_keyed(o->mode) && (!o->key || o->key_len != SALUS_DEID_KEY_LEN))
		return SALUS_EUSAGE;
	if (sodium_init() < 0)
		return SALUS_ECRYPTO;
	size_t prev = 0;
	for (size_t i = 0; i < nspans; i++) {
		if (spans[i].start < prev || spans[i].end < spans[i].start || spans[i].end > n ||
		    (unsigned)spans[i].type >= SALUS_PHI__COUNT)
			return SALUS_EINVALID;
		prev = spans[i].end;
	}
	size_t at = 0, mark = out->n;
	int rc = 0;
	for (size_t i = 0; i < nspans && !rc; i++) {
		const struct salus_span *s = &spans[i];
		rc = salus_buf_add(out, text + at, s->start - at);
		if (!rc)
			rc = salus_xf_value(o, salus_xf_action(o, s->type), s->type, text + s->start,
					    s->end - s->start, out);
		at = s->end;
	}
	if (!rc)
		rc = salus_buf_add(out, text + at, n - at);
	if (rc && out->n >= mark && out->cap) { /* keep the caller's earlier content, drop ours */
		out->n = mark;
		out->p[mark] = 0;
	}
	return rc;
}

/* --- keys --------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int salus_deid_key_load(const char *path, unsigned char **key)
{
	enum { CAP = 160 };
	if (!path || !key)
		return SALUS_EUSAGE;
	if (sodium_init() < 0)
		return SALUS_ECRYPTO;
	FILE *f = fopen(path, "rb");
	if (!f)
		return SALUS_ENOTFOUND;
	unsigned char *raw = sodium_malloc(CAP);
	unsigned char *k = sodium_malloc(SALUS_DEID_KEY_LEN);
	int rc = SALUS_EINVALID;
	if (!raw || !k) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	setvbuf(f, NULL, _IONBF, 0); /* no stdio copy of the key */
	size_t n = fread(raw, 1, CAP, f);
	if (ferror(f)) {
		rc = SALUS_EIO;
		goto out;
	}
	if (n == SALUS_DEID_KEY_LEN) {
		memcpy(k, raw, SALUS_DEID_KEY_LEN);
		rc = 0;
		goto out;
	}
	size_t s = 0, e = n;
	while (s < e && (raw[s] == ' ' || raw[s] == '\n' || raw[s] == '\r' || raw[s] == '\t'))
		s++;
	while (e > s && (raw[e - 1] == ' ' || raw[e - 1] == '\n' || raw[e - 1] == '\r' || raw[e - 1] == '\t'))
		e--;
	if (e - s != 2 * SALUS_DEID_KEY_LEN)
		goto out;
	for (size_t i = 0; i < SALUS_DEID_KEY_LEN; i++) {
		int hi = hexval(raw[s + 2 * i]), lo = hexval(raw[s + 2 * i + 1]);
		if (hi < 0 || lo < 0)
			goto out;
		k[i] = (unsigned char)(hi << 4 | lo);
	}
	rc = 0;
out:
	fclose(f);
	sodium_free(raw); /* sodium_free wipes */
	if (rc) {
		sodium_free(k);
		return rc;
	}
	*key = k;
	return 0;
}

int salus_deid_key_random(unsigned char **key)
{
	if (!key)
		return SALUS_EUSAGE;
	if (sodium_init() < 0)
		return SALUS_ECRYPTO;
	unsigned char *k = sodium_malloc(SALUS_DEID_KEY_LEN);
	if (!k)
		return SALUS_ENOMEM;
	randombytes_buf(k, SALUS_DEID_KEY_LEN);
	*key = k;
	return 0;
}

void salus_deid_key_free(unsigned char *key)
{
	if (key)
		sodium_free(key); /* zeroes before unmapping */
}
