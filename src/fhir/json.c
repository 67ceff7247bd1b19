/*
 * json.c — strict JSON input for FHIR bodies and small JSON output helpers.
 * Parse errors never echo input bytes (they may be PHI): position only.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/json_out.h"
#include "fhir/rest.h"

/* Bytes depth_ok looks at: 1 outside strings ("{}[]), 2 inside ("\\). */
static const unsigned char depth_class[256] = {
	['"'] = 3, ['\\'] = 2, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
};

/* Nesting depth outside strings; stops counting at the first excess.  A
 * table lookup per byte between the bytes that matter. */
static int depth_ok(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	int depth = 0;
	size_t i = 0;
	for (;;) {
		while (i < n && !(depth_class[u[i]] & 1))
			i++;
		if (i >= n)
			return 1;
		char c = p[i++];
		if (c == '"') {
			for (;;) {
				while (i < n && !(depth_class[u[i]] & 2))
					i++;
				if (i >= n)
					return 1; /* unterminated: the parser says so */
				if (p[i++] == '"')
					break;
				i++; /* the escaped byte */
			}
		} else if (c == '{' || c == '[') {
			if (++depth > SALUS_MAX_JSON_DEPTH)
				return 0;
		} else {
			depth--;
		}
	}
}

/* ---- the fast path: a strict recursive-descent parser into a jansson tree ----
 *
 * jansson's own parser reads the input a byte at a time through a stream
 * callback and builds every string in a growable buffer; this one scans with
 * byte-class tables and hands unescaped strings to jansson straight from the
 * input.  It accepts only what jansson accepts with JSON_REJECT_DUPLICATES
 * and builds the same tree (the same value types, integers as json_int_t,
 * reals through strtod, member order as written).  Whatever it is not sure
 * of — any syntax error, invalid UTF-8, \u0000, a number out of range, a
 * duplicate key, an allocation failure — makes it decline, and
 * salus_json_parse_strict hands the document to json_loadb, which decides
 * (and words the error).  The fhir_json fuzz target compares the two trees. */

struct jp {
	const unsigned char *p, *end;
	char *scratch; /* unescaped strings */
	size_t cap;
	int depth;
	struct salus_json_marks *m; /* or NULL */
};

/* What a value is to the marks (salus_json_parse_strict_marks): nothing, the
 * root's m->outer array, or (>= 0) element `mark` of that array. */
#define MARK_NONE (-1L)
#define MARK_OUTER (-2L)

/* 1: a byte that ends a fast scan of a string ('"', '\\', controls, non-ASCII) */
static const unsigned char str_stop[256] = {
	[0] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	['"'] = 1, ['\\'] = 1,
	[0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t'))
		j->p++;
}

/* One UTF-8 sequence at p (p[0] >= 0x80) as jansson's utf8_check_full
 * accepts it: its length, or 0. */
static size_t jp_utf8(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0], v;
	size_t n;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		v = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		v = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		v = c & 0x07;
	} else {
		return 0;
	}
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (p[i] & 0x3fu);
	}
	if ((n == 3 && v < 0x800) || (n == 4 && v < 0x10000) || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	return n;
}

static int jp_hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
	unsigned v = 0;
	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	*out = v;
	return 0;
}

static int jp_put(struct jp *j, size_t *len, const void *src, size_t n)
{
	if (!n)
		return 0;
	if (*len + n > j->cap) {
		size_t nc = j->cap ? j->cap : 256;
		while (nc < *len + n)
			nc *= 2;
		char *ns = salus_realloc(j->scratch, nc);
		if (!ns)
			return -1;
		j->scratch = ns;
		j->cap = nc;
	}
	memcpy(j->scratch + *len, src, n);
	*len += n;
	return 0;
}

/* A string at j->p (the opening quote): its bytes, pointing into the input
 * when it has no escapes, else into j->scratch.  -1: decline. */
static int jp_string(struct jp *j, const char **s, size_t *n)
{
	const unsigned char *p = j->p + 1, *start = p;
	size_t len = 0;
	bool esc = false;
	for (;;) {
		while (p < j->end && !str_stop[*p])
			p++;
		if (p >= j->end)
			return -1;
		if (*p == '"')
			break;
		if (*p >= 0x80) {
			size_t u = jp_utf8(p, j->end);
			if (!u)
				return -1;
			p += u;
			continue;
		}
		if (*p != '\\')
			return -1; /* a control character */
		/* an escape: the run before it, then the decoded character */
		if (jp_put(j, &len, start, (size_t)(p - start)))
			return -1;
		esc = true;
		if (p + 1 >= j->end)
			return -1;
		unsigned char e = p[1], c;
		char u8[4];
		size_t un;
		p += 2;
		switch (e) {
		case '"': c = '"'; break;
		case '\\': c = '\\'; break;
		case '/': c = '/'; break;
		case 'b': c = '\b'; break;
		case 'f': c = '\f'; break;
		case 'n': c = '\n'; break;
		case 'r': c = '\r'; break;
		case 't': c = '\t'; break;
		case 'u': {
			unsigned v, lo;
			if (jp_hex4(p, j->end, &v) || v == 0)
				return -1;
			p += 4;
			if (v >= 0xdc00 && v <= 0xdfff)
				return -1;
			if (v >= 0xd800 && v <= 0xdbff) {
				if (j->end - p < 6 || p[0] != '\\' || p[1] != 'u' || jp_hex4(p + 2, j->end, &lo) || lo < 0xdc00 ||
				    lo > 0xdfff)
					return -1;
				p += 6;
				v = 0x10000 + ((v - 0xd800) << 10) + (lo - 0xdc00);
			}
			if (v < 0x80) {
				u8[0] = (char)v;
				un = 1;
			} else if (v < 0x800) {
				u8[0] = (char)(0xc0 | v >> 6);
				u8[1] = (char)(0x80 | (v & 0x3f));
				un = 2;
			} else if (v < 0x10000) {
				u8[0] = (char)(0xe0 | v >> 12);
				u8[1] = (char)(0x80 | (v >> 6 & 0x3f));
				u8[2] = (char)(0x80 | (v & 0x3f));
				un = 3;
			} else {
				u8[0] = (char)(0xf0 | v >> 18);
				u8[1] = (char)(0x80 | (v >> 12 & 0x3f));
				u8[2] = (char)(0x80 | (v >> 6 & 0x3f));
				u8[3] = (char)(0x80 | (v & 0x3f));
				un = 4;
			}
			if (jp_put(j, &len, u8, un))
				return -1;
			start = p;
			continue;
		}
		default: return -1;
		}
		if (jp_put(j, &len, &c, 1))
			return -1;
		start = p;
	}
	if (esc) {
		if (jp_put(j, &len, start, (size_t)(p - start)))
			return -1;
		*s = j->scratch;
		*n = len;
	} else {
		*s = (const char *)start;
		*n = (size_t)(p - start);
	}
	j->p = p + 1;
	return 0;
}

static bool jp_digit(const unsigned char *p, const unsigned char *end)
{
	return p < end && *p >= '0' && *p <= '9';
}

/* A number: an integer (json_int_t) when it has no fraction or exponent,
 * else a real through strtod, as jansson does.  NULL: decline. */
static json_t *jp_number(struct jp *j)
{
	const unsigned char *p = j->p, *start = p;
	bool neg = false, real = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (!jp_digit(p, j->end))
		return NULL;
	if (*p == '0') {
		p++;
		if (jp_digit(p, j->end))
			return NULL;
	}
	while (jp_digit(p, j->end))
		p++;
	if (p < j->end && *p == '.') {
		p++;
		if (!jp_digit(p, j->end))
			return NULL;
		while (jp_digit(p, j->end))
			p++;
		real = true;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (!jp_digit(p, j->end))
			return NULL;
		while (jp_digit(p, j->end))
			p++;
		real = true;
	}
	j->p = p;
	if (!real) {
		/* strtoll's range; beyond it jansson decides (numeric overflow) */
		unsigned long long v = 0, lim = neg ? 9223372036854775808ull : 9223372036854775807ull;
		for (const unsigned char *d = start + neg; d < p; d++) {
			unsigned dv = *d - '0';
			if (v > (lim - dv) / 10)
				return NULL;
			v = v * 10 + dv;
		}
		json_int_t iv = neg ? (v == 9223372036854775808ull ? INT64_MIN : -(json_int_t)v) : (json_int_t)v;
		return json_integer(iv);
	}
	char tmp[128];
	size_t tn = (size_t)(p - start);
	if (tn >= sizeof tmp)
		return NULL;
	memcpy(tmp, start, tn);
	tmp[tn] = 0;
	errno = 0;
	char *endp; /* under a locale with another decimal point strtod stops early: declined */
	double d = strtod(tmp, &endp);
	if (endp != tmp + tn || ((d == HUGE_VAL || d == -HUGE_VAL) && errno == ERANGE))
		return NULL;
	return json_real(d);
}

static json_t *jp_value(struct jp *j, long mark);

/* Room for element i of the marked array in j->m (at[i] zeroed). */
static int jp_mark_room(struct jp *j, size_t i)
{
	struct salus_json_marks *m = j->m;
	if (i < m->cap)
		return 0;
	size_t nc = m->cap ? m->cap * 2 : 64;
	struct salus_slice *na = salus_realloc(m->at, nc * sizeof *na);
	if (!na)
		return -1;
	memset(na + m->cap, 0, (nc - m->cap) * sizeof *na);
	m->at = na;
	m->cap = nc;
	return 0;
}

/* Past an opening bracket: true when the value closes at once (an empty object or array). */
static bool jp_open(struct jp *j, char close)
{
	j->p++;
	jp_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	return false;
}

/* After a member or element: 1 past the closing bracket, 0 past a comma, -1 anything else. */
static int jp_next(struct jp *j, char close)
{
	jp_ws(j);
	if (j->p >= j->end)
		return -1;
	if (*j->p == close) {
		j->p++;
		return 1;
	}
	if (*j->p != ',')
		return -1;
	j->p++;
	jp_ws(j);
	return 0;
}

/* An object; elem >= 0: element elem of the marked array (note its m->inner). */
static json_t *jp_object(struct jp *j, long elem)
{
	json_t *o = json_object();
	if (!o)
		return NULL;
	if (jp_open(j, '}'))
		return o;
	for (;;) {
		const char *k;
		size_t kn;
		if (j->p >= j->end || *j->p != '"' || jp_string(j, &k, &kn))
			goto fail;
		/* an escaped key lives in scratch, which the value may reuse: keep
		 * it on the stack (FHIR keys are short; a long one declines) */
		char key[256];
		if (k == j->scratch) {
			if (kn >= sizeof key)
				goto fail;
			memcpy(key, k, kn);
			k = key;
		}
		jp_ws(j);
		if (j->p >= j->end || *j->p != ':')
			goto fail;
		j->p++;
		jp_ws(j);
		size_t had = json_object_size(o);
		const unsigned char *at = j->p;
		long role = MARK_NONE;
		bool mark = false;
		if (j->m) {
			if (j->depth == 1 && kn == strlen(j->m->outer) && !memcmp(k, j->m->outer, kn))
				role = MARK_OUTER;
			else if (elem >= 0 && kn == strlen(j->m->inner) && !memcmp(k, j->m->inner, kn))
				mark = true;
		}
		json_t *v = jp_value(j, role);
		if (!v || json_object_setn_new_nocheck(o, k, kn, v))
			goto fail;
		if (mark)
			j->m->at[elem] = (struct salus_slice){(const char *)at, (size_t)(j->p - at)};
		if (json_object_size(o) == had)
			goto fail; /* a duplicate key replaced a value: jansson says so */
		int next = jp_next(j, '}');
		if (next < 0)
			goto fail;
		if (next)
			return o;
	}
fail:
	json_decref(o);
	return NULL;
}

/* An array; marked: the root's m->outer (count its elements, mark them). */
static json_t *jp_array(struct jp *j, bool marked)
{
	json_t *a = json_array();
	if (!a)
		return NULL;
	if (jp_open(j, ']'))
		return a;
	for (long i = 0;; i++) {
		if (marked) {
			if (jp_mark_room(j, (size_t)i))
				goto fail;
			j->m->n = (size_t)i + 1;
		}
		json_t *v = jp_value(j, marked ? i : MARK_NONE);
		if (!v || json_array_append_new(a, v))
			goto fail;
		int next = jp_next(j, ']');
		if (next < 0)
			goto fail;
		if (next)
			return a;
	}
fail:
	json_decref(a);
	return NULL;
}

static bool jp_lit(struct jp *j, const char *w, size_t n)
{
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return false;
	j->p += n;
	return true;
}

static json_t *jp_value(struct jp *j, long mark)
{
	if (j->p >= j->end)
		return NULL;
	switch (*j->p) {
	case '{':
	case '[': {
		if (++j->depth > SALUS_MAX_JSON_DEPTH)
			return NULL;
		json_t *v = *j->p == '{' ? jp_object(j, mark) : jp_array(j, mark == MARK_OUTER);
		j->depth--;
		return v;
	}
	case '"': {
		const char *s;
		size_t n;
		return jp_string(j, &s, &n) ? NULL : json_stringn_nocheck(s, n);
	}
	case 't': return jp_lit(j, "true", 4) ? json_true() : NULL;
	case 'f': return jp_lit(j, "false", 5) ? json_false() : NULL;
	case 'n': return jp_lit(j, "null", 4) ? json_null() : NULL;
	default: return jp_number(j);
	}
}

static json_t *parse_fast(const char *p, size_t n, struct salus_json_marks *m)
{
	struct jp j = {.p = (const unsigned char *)p, .end = (const unsigned char *)p + n, .m = m};
	jp_ws(&j);
	if (j.p >= j.end || (*j.p != '{' && *j.p != '['))
		return NULL;
	json_t *v = jp_value(&j, MARK_NONE);
	salus_free(j.scratch);
	if (v) {
		jp_ws(&j);
		if (j.p != j.end) {
			json_decref(v);
			v = NULL;
		}
	}
	if (m)
		m->ok = v != NULL;
	return v;
}

json_t *salus_json_parse_fast(const char *p, size_t n)
{
	return parse_fast(p, n, NULL);
}

int salus_json_parse_strict(const char *p, size_t n, json_t **out, char *why, size_t why_len)
{
	return salus_json_parse_strict_marks(p, n, out, why, why_len, NULL);
}

int salus_json_parse_strict_marks(const char *p, size_t n, json_t **out, char *why, size_t why_len,
				  struct salus_json_marks *m)
{
	if (m) {
		m->n = 0;
		m->ok = false;
	}
	if (n == 0) {
		snprintf(why, why_len, "request body is empty");
		return SALUS_EINVALID;
	}
	/* the fast path keeps to SALUS_MAX_JSON_DEPTH itself (it declines deeper text) */
	json_t *j = parse_fast(p, n, m);
	if (j && json_is_object(j)) {
		*out = j;
		return 0;
	}
	json_decref(j);
	if (m) {
		m->n = 0;
		m->ok = false;
	}
	if (!depth_ok(p, n)) {
		snprintf(why, why_len, "JSON nesting deeper than %d levels", SALUS_MAX_JSON_DEPTH);
		return SALUS_EINVALID;
	}
	json_error_t err;
	j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
	if (!j && json_error_code(&err) == json_error_numeric_overflow)
		/* an integer beyond 64 bits: parse numbers as doubles; the stored
		 * text keeps the digits (store.h, salus_write.raw) */
		j = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
	if (!j) {
		const char *kind = "malformed JSON";
		switch (json_error_code(&err)) {
		case json_error_invalid_utf8: kind = "invalid UTF-8 in JSON"; break;
		case json_error_duplicate_key: kind = "duplicate key in JSON object"; break;
		case json_error_premature_end_of_input: kind = "truncated JSON"; break;
		case json_error_null_character: kind = "NUL character in JSON"; break;
		case json_error_end_of_input_expected: kind = "extra data after the JSON document"; break;
		case json_error_out_of_memory: return SALUS_ENOMEM;
		default: break;
		}
		snprintf(why, why_len, "%s at line %d, column %d", kind, err.line, err.column);
		return SALUS_EINVALID;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(why, why_len, "a FHIR resource must be a JSON object");
		return SALUS_EINVALID;
	}
	*out = j;
	return 0;
}

int salus_json_add_str(struct salus_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int rc = salus_buf_addc(b, '"');
	size_t run = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (i > run)
			rc = salus_buf_add(b, s + run, i - run);
		run = i + 1;
		if (rc)
			break;
		switch (c) {
		case '"': rc = salus_buf_add(b, "\\\"", 2); break;
		case '\\': rc = salus_buf_add(b, "\\\\", 2); break;
		case '\n': rc = salus_buf_add(b, "\\n", 2); break;
		case '\r': rc = salus_buf_add(b, "\\r", 2); break;
		case '\t': rc = salus_buf_add(b, "\\t", 2); break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rc = salus_buf_add(b, u, 6);
		}
		}
	}
	if (!rc && n > run)
		rc = salus_buf_add(b, s + run, n - run);
	return rc ? rc : salus_buf_addc(b, '"');
}

int salus_json_add_cstr(struct salus_buf *b, const char *s)
{
	return salus_json_add_str(b, s, strlen(s));
}
