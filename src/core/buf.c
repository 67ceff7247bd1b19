/* buf.c — capped growable buffer and string views (see buf.h). */
#include "core/buf.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/err.h"

static char empty[1];

void salus_buf_init(struct salus_buf *b, size_t max)
{
	b->p = empty;
	b->n = 0;
	b->cap = 0;
	b->max = max;
}

void salus_buf_release(struct salus_buf *b)
{
	if (b->cap)
		salus_free(b->p);
	b->p = empty;
	b->n = b->cap = 0;
}

void salus_buf_clear(struct salus_buf *b)
{
	size_t max = b->max;
	salus_buf_release(b);
	salus_buf_init(b, max);
}

void salus_buf_reset(struct salus_buf *b)
{
	b->n = 0;
	b->p[0] = 0;
}

static int grow(struct salus_buf *b, size_t extra)
{
	if (extra > b->max || b->n > b->max - extra) {
		salus_buf_clear(b);
		return SALUS_ETOOLARGE;
	}
	size_t need = b->n + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
	if (cap > b->max + 1)
		cap = b->max + 1; /* never reserve beyond the cap */
	char *p = salus_realloc(b->cap ? b->p : NULL, cap);
	if (!p) {
		salus_buf_clear(b);
		return SALUS_ENOMEM;
	}
	if (!b->cap)
		p[0] = 0;
	b->p = p;
	b->cap = cap;
	return 0;
}

int salus_buf_add(struct salus_buf *b, const void *p, size_t n)
{
	int rc = grow(b, n);
	if (rc)
		return rc;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	b->p[b->n] = 0;
	return 0;
}

int salus_buf_adds(struct salus_buf *b, const char *s)
{
	return salus_buf_add(b, s, strlen(s));
}

int salus_buf_addc(struct salus_buf *b, char c)
{
	return salus_buf_add(b, &c, 1);
}

int salus_buf_vaddf(struct salus_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	int len = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (len < 0)
		return SALUS_EINTERNAL;
	int rc = grow(b, (size_t)len);
	if (rc)
		return rc;
	vsnprintf(b->p + b->n, (size_t)len + 1, fmt, ap);
	b->n += (size_t)len;
	return 0;
}

int salus_buf_addf(struct salus_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = salus_buf_vaddf(b, fmt, ap);
	va_end(ap);
	return rc;
}

char *salus_buf_detach(struct salus_buf *b, size_t *len)
{
	char *p = b->cap ? b->p : salus_strdup("");
	if (len)
		*len = b->cap ? b->n : 0;
	salus_buf_init(b, b->max);
	return p;
}

bool salus_slice_eq(struct salus_slice a, const char *s)
{
	size_t n = strlen(s);
	return a.n == n && memcmp(a.p, s, n) == 0;
}

bool salus_slice_eq_nocase(struct salus_slice a, const char *s)
{
	size_t n = strlen(s);
	return a.n == n && strncasecmp(a.p, s, n) == 0;
}

bool salus_slice_starts(struct salus_slice a, const char *prefix)
{
	size_t n = strlen(prefix);
	return a.n >= n && memcmp(a.p, prefix, n) == 0;
}

int salus_parse_long(struct salus_slice s, long min, long max, long *out)
{
	if (s.n == 0 || s.n > 19)
		return SALUS_EINVALID;
	size_t i = 0;
	int neg = 0;
	if (s.p[0] == '-' || s.p[0] == '+') {
		neg = s.p[0] == '-';
		if (++i == s.n)
			return SALUS_EINVALID;
	}
	long v = 0;
	for (; i < s.n; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return SALUS_EINVALID;
		int d = s.p[i] - '0';
		if (v > (LONG_MAX - d) / 10)
			return SALUS_EINVALID;
		v = v * 10 + d;
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return SALUS_EINVALID;
	*out = v;
	return 0;
}
