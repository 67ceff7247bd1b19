/*
 * form.c — strict application/x-www-form-urlencoded parsing and the
 * client_secret_basic Authorization header (RFC 6749 §2.3.1: the client id
 * and secret are form-urlencoded, then joined by ':' and base64-encoded as
 * in RFC 7617).  Secrets are wiped before their memory is freed.
 */
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"

void salus_secret_free(char *s, size_t n)
{
	if (!s)
		return;
	sodium_memzero(s, n);
	salus_free(s);
}

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int salus_form_decode(const char *s, size_t n, char **out, size_t *out_n)
{
	char *d = salus_malloc(n + 1);
	if (!d)
		return SALUS_ENOMEM;
	size_t j = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '+') {
			c = ' ';
		} else if (c == '%') {
			int hi, lo;
			if (i + 2 >= n)
				goto out_bad;
			if ((hi = hexval((unsigned char)s[i + 1])) < 0 || (lo = hexval((unsigned char)s[i + 2])) < 0)
				goto out_bad;
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
		}
		if (c == 0)
			goto out_bad;
		d[j++] = (char)c;
	}
	d[j] = 0;
	*out = d;
	*out_n = j;
	return 0;
out_bad:
	salus_secret_free(d, n + 1);
	return SALUS_EINVALID;
}

void salus_form_release(struct salus_form *f)
{
	for (size_t i = 0; i < f->n; i++) {
		salus_free(f->v[i].name);
		salus_secret_free(f->v[i].value, f->v[i].value_n);
	}
	f->n = 0;
}

const struct salus_form_param *salus_form_get(const struct salus_form *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (!strcmp(f->v[i].name, name))
			return &f->v[i];
	return NULL;
}

int salus_form_parse(const char *body, size_t n, struct salus_form *out)
{
	struct salus_form f;
	f.n = 0;
	out->n = 0;
	if (n > SALUS_FORM_MAX)
		return SALUS_ETOOLARGE;
	if (n == 0)
		return 0;
	int rc = 0;
	size_t i = 0;
	while (i <= n) {
		const char *amp = memchr(body + i, '&', n - i);
		size_t e = amp ? (size_t)(amp - body) : n;
		if (e == i) { /* empty pair: "&&", leading or trailing '&' */
			rc = SALUS_EINVALID;
			goto out_fail;
		}
		if (f.n == SALUS_FORM_MAX_PARAMS) {
			rc = SALUS_ETOOLARGE;
			goto out_fail;
		}
		const char *eq = memchr(body + i, '=', e - i);
		size_t ne = eq ? (size_t)(eq - body) : e;
		size_t name_n;
		struct salus_form_param *p = &f.v[f.n];
		if (ne == i) { /* empty name */
			rc = SALUS_EINVALID;
			goto out_fail;
		}
		if ((rc = salus_form_decode(body + i, ne - i, &p->name, &name_n)))
			goto out_fail;
		if (eq)
			rc = salus_form_decode(eq + 1, e - ne - 1, &p->value, &p->value_n);
		else
			rc = salus_form_decode("", 0, &p->value, &p->value_n);
		if (rc) {
			salus_free(p->name);
			goto out_fail;
		}
		f.n++;
		if (salus_form_get(&f, p->name) != p) { /* RFC 6749 §3.2: no parameter twice */
			rc = SALUS_EINVALID;
			goto out_fail;
		}
		i = e + 1;
	}
	*out = f;
	return 0;
out_fail:
	salus_form_release(&f);
	return rc;
}

int salus_basic_parse(const char *authorization, char id[SALUS_CLIENT_ID_MAX + 1], char **secret,
		      size_t *secret_n)
{
	if (!authorization)
		return SALUS_EUNAUTHORIZED;
	size_t n = strnlen(authorization, SALUS_MAX_HEADER + 1);
	if (n > SALUS_MAX_HEADER || n < 6 || strncasecmp(authorization, "Basic ", 6))
		return SALUS_EUNAUTHORIZED;
	const char *p = authorization + 6;
	while (*p == ' ')
		p++;
	const char *e = authorization + n;
	while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t bn = (size_t)(e - p);
	if (bn == 0 || bn % 4)
		return SALUS_EUNAUTHORIZED;
	for (size_t i = 0; i < bn; i++) { /* libsodium 1.0.18 lets some bytes >= 0x80 through */
		char c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
		      c == '='))
			return SALUS_EUNAUTHORIZED;
	}

	int rc = SALUS_EUNAUTHORIZED;
	size_t cap = bn / 4 * 3, dn = 0;
	char *dec = salus_malloc(cap + 1), *cid = NULL, *sec = NULL;
	size_t cid_n = 0, sec_n = 0;
	const char *end = NULL;
	if (!dec)
		return SALUS_ENOMEM;
	if (sodium_base642bin((unsigned char *)dec, cap, p, bn, NULL, &dn, &end, sodium_base64_VARIANT_ORIGINAL) ||
	    end != e)
		goto out_dec;
	const char *colon = memchr(dec, ':', dn);
	if (!colon)
		goto out_dec;
	size_t in = (size_t)(colon - dec);
	int drc;
	if ((drc = salus_form_decode(dec, in, &cid, &cid_n))) {
		rc = drc == SALUS_ENOMEM ? drc : SALUS_EUNAUTHORIZED;
		goto out_dec;
	}
	if ((drc = salus_form_decode(colon + 1, dn - in - 1, &sec, &sec_n))) {
		rc = drc == SALUS_ENOMEM ? drc : SALUS_EUNAUTHORIZED;
		goto out_cid;
	}
	if (cid_n == 0 || cid_n > SALUS_CLIENT_ID_MAX || sec_n == 0 || sec_n > SALUS_MAX_SECRET) {
		salus_secret_free(sec, sec_n);
		goto out_cid;
	}
	memcpy(id, cid, cid_n + 1);
	*secret = sec;
	*secret_n = sec_n;
	rc = 0;
out_cid:
	salus_free(cid);
out_dec:
	salus_secret_free(dec, cap + 1);
	return rc;
}
