/*
 * splice.c — raw JSON scanning, minifying copy with string rewriting, and
 * the id/meta splice of the write path (see splice.h).  One small
 * recursive-descent walker serves all three: with no output buffer it only
 * skips a value, with one it copies the value without whitespace.
 */
#include "store/splice.h"

#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/limits.h"

struct walker {
	const char *p;
	size_t n;
	struct salus_buf *out; /* NULL: scan only */
	salus_json_str_cb cb;
	void *ctx;
	struct salus_buf scratch; /* decoded strings for cb */
	size_t ps, pe;            /* input bytes p[ps..pe) copied but not yet appended to out */
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static inline __attribute__((always_inline)) void skip_ws(const char *p, size_t n, size_t *i)
{
	while (*i < n && is_ws(p[*i]))
		(*i)++;
}

static int hex4(const char *p, unsigned *out)
{
	unsigned v = 0;
	for (int k = 0; k < 4; k++) {
		char c = p[k];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return SALUS_EINVALID;
		v = v << 4 | (unsigned)d;
	}
	*out = v;
	return 0;
}

/* Scan a string at p[*i] == '"'; on return *i is past the closing quote,
 * *s the raw contents, *esc whether it holds escapes. */
static int scan_string(const char *p, size_t n, size_t *i, struct salus_slice *s, bool *esc)
{
	size_t j = *i + 1;
	*esc = false;
	while (j < n) {
		unsigned char c = (unsigned char)p[j];
		if (c == '"') {
			*s = (struct salus_slice){p + *i + 1, j - *i - 1};
			*i = j + 1;
			return 0;
		}
		if (c < 0x20)
			return SALUS_EINVALID;
		if (c == '\\') {
			unsigned u;
			*esc = true;
			if (j + 1 >= n)
				return SALUS_EINVALID;
			switch (p[j + 1]) {
			case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
				j += 2;
				continue;
			case 'u':
				if (j + 6 > n || hex4(p + j + 2, &u))
					return SALUS_EINVALID;
				j += 6;
				continue;
			default:
				return SALUS_EINVALID;
			}
		}
		j++;
	}
	return SALUS_EINVALID;
}

static int put_utf8(struct salus_buf *b, unsigned cp)
{
	char t[4];
	size_t k;
	if (cp < 0x80) {
		t[0] = (char)cp;
		k = 1;
	} else if (cp < 0x800) {
		t[0] = (char)(0xC0 | cp >> 6);
		t[1] = (char)(0x80 | (cp & 0x3F));
		k = 2;
	} else if (cp < 0x10000) {
		t[0] = (char)(0xE0 | cp >> 12);
		t[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		t[2] = (char)(0x80 | (cp & 0x3F));
		k = 3;
	} else {
		t[0] = (char)(0xF0 | cp >> 18);
		t[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		t[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		t[3] = (char)(0x80 | (cp & 0x3F));
		k = 4;
	}
	return salus_buf_add(b, t, k);
}

/* Decode the raw contents of a scanned string (escapes known to be well formed). */
static int decode(struct salus_buf *b, struct salus_slice s)
{
	int rc = 0;
	salus_buf_reset(b);
	for (size_t j = 0; j < s.n && !rc;) {
		char c = s.p[j];
		if (c != '\\') {
			rc = salus_buf_addc(b, c);
			j++;
			continue;
		}
		char e = s.p[j + 1];
		j += 2;
		switch (e) {
		case 'b': rc = salus_buf_addc(b, '\b'); break;
		case 'f': rc = salus_buf_addc(b, '\f'); break;
		case 'n': rc = salus_buf_addc(b, '\n'); break;
		case 'r': rc = salus_buf_addc(b, '\r'); break;
		case 't': rc = salus_buf_addc(b, '\t'); break;
		case 'u': {
			unsigned cp, lo;
			hex4(s.p + j, &cp);
			j += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				if (j + 6 > s.n || s.p[j] != '\\' || s.p[j + 1] != 'u' || hex4(s.p + j + 2, &lo) ||
				    lo < 0xDC00 || lo > 0xDFFF)
					return SALUS_EINVALID;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
				j += 6;
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return SALUS_EINVALID;
			}
			rc = put_utf8(b, cp);
			break;
		}
		default: rc = salus_buf_addc(b, e); break; /* " \ / */
		}
	}
	return rc;
}

static int put_escaped(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int rc = salus_buf_addc(b, '"');
	const char *run = s;
	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		if (s > run && (rc = salus_buf_add(b, run, (size_t)(s - run))))
			break;
		run = s + 1;
		if (c == '"' || c == '\\') {
			char t[2] = {'\\', (char)c};
			rc = salus_buf_add(b, t, 2);
		} else {
			char t[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			rc = salus_buf_add(b, t, 6);
		}
	}
	if (!rc && s > run)
		rc = salus_buf_add(b, run, (size_t)(s - run));
	return rc ? rc : salus_buf_addc(b, '"');
}

static bool lit_char(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' ||
	       (c >= 'a' && c <= 'z');
}

static int walk(struct walker *w, size_t *i, int depth, struct salus_slice key);

/* Output is the input minus whitespace (and replaced strings): bytes are
 * appended in runs, a run ending where whitespace or a replacement starts. */
static int flush(struct walker *w)
{
	int rc = 0;
	if (w->out && w->pe > w->ps)
		rc = salus_buf_add(w->out, w->p + w->ps, w->pe - w->ps);
	w->ps = w->pe;
	return rc;
}

/* Copy the input bytes p[at..at+n). */
static int emit(struct walker *w, size_t at, size_t n)
{
	if (!w->out)
		return 0;
	if (at == w->pe) {
		w->pe += n;
		return 0;
	}
	int rc = flush(w);
	w->ps = at;
	w->pe = at + n;
	return rc;
}

static int walk_string_value(struct walker *w, size_t *i, struct salus_slice key)
{
	struct salus_slice s;
	bool esc;
	size_t start = *i;
	int rc = scan_string(w->p, w->n, i, &s, &esc);
	if (rc || !w->out)
		return rc;
	if (w->cb) {
		struct salus_slice d = s;
		if (esc) {
			if ((rc = decode(&w->scratch, s)))
				return rc;
			d = (struct salus_slice){w->scratch.p, w->scratch.n};
		}
		const char *rep = w->cb(w->ctx, key, d);
		if (rep) {
			if ((rc = flush(w)))
				return rc;
			w->ps = w->pe = *i;
			return put_escaped(w->out, rep);
		}
	}
	return emit(w, start, *i - start);
}

static int walk_container(struct walker *w, size_t *i, int depth, struct salus_slice key)
{
	const char *p = w->p;
	size_t n = w->n;
	bool obj = p[*i] == '{';
	char close = obj ? '}' : ']';
	int rc;
	if (depth >= SALUS_MAX_JSON_DEPTH)
		return SALUS_EINVALID;
	if ((rc = emit(w, *i, 1)))
		return rc;
	(*i)++;
	skip_ws(p, n, i);
	if (*i < n && p[*i] == close)
		return emit(w, (*i)++, 1);
	for (;;) {
		struct salus_slice k = key;
		skip_ws(p, n, i);
		if (obj) {
			bool esc;
			size_t ks = *i;
			if (*i >= n || p[*i] != '"')
				return SALUS_EINVALID;
			if ((rc = scan_string(p, n, i, &k, &esc)))
				return rc;
			if ((rc = emit(w, ks, *i - ks)))
				return rc;
			skip_ws(p, n, i);
			if (*i >= n || p[*i] != ':')
				return SALUS_EINVALID;
			if ((rc = emit(w, (*i)++, 1)))
				return rc;
		}
		if ((rc = walk(w, i, depth + 1, k)))
			return rc;
		skip_ws(p, n, i);
		if (*i >= n)
			return SALUS_EINVALID;
		if (p[*i] == close)
			return emit(w, (*i)++, 1);
		if (p[*i] != ',')
			return SALUS_EINVALID;
		if ((rc = emit(w, (*i)++, 1)))
			return rc;
	}
}

/* One value at p[*i] (after whitespace); *i ends just past it. */
static int walk(struct walker *w, size_t *i, int depth, struct salus_slice key)
{
	const char *p = w->p;
	size_t n = w->n;
	skip_ws(p, n, i);
	if (*i >= n)
		return SALUS_EINVALID;
	char c = p[*i];
	if (c == '{' || c == '[')
		return walk_container(w, i, depth, key);
	if (c == '"')
		return walk_string_value(w, i, key);
	size_t s = *i;
	while (*i < n && lit_char(p[*i]))
		(*i)++;
	size_t len = *i - s;
	if (len == 0)
		return SALUS_EINVALID;
	if (c >= 'a' && c <= 'z') {
		if (!((len == 4 && !memcmp(p + s, "true", 4)) || (len == 5 && !memcmp(p + s, "false", 5)) ||
		      (len == 4 && !memcmp(p + s, "null", 4))))
			return SALUS_EINVALID;
	} else {
		for (size_t k = s; k < *i; k++)
			if (p[k] >= 'a' && p[k] <= 'z' && p[k] != 'e')
				return SALUS_EINVALID;
	}
	return emit(w, s, len);
}

/* ---- iteration -------------------------------------------------------- */

/* Bytes skip_checked stops at: 1 outside strings ("{}[]), 2 inside ("\\). */
static const unsigned char skip_class[256] = {
	['"'] = 3, ['\\'] = 2, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1,
};

/* Bytes salus_json_copy_checked stops at outside strings: skip_class's 1
 * ("{}[]) and whitespace (4). */
static const unsigned char copy_class[256] = {
	['"'] = 1, ['{'] = 1, ['}'] = 1, ['['] = 1, [']'] = 1, [' '] = 4, ['\t'] = 4, ['\n'] = 4, ['\r'] = 4,
};

/* The end of the whitespace at p[i]: pretty-printed text indents with runs
 * of spaces, taken eight at a time. */
static inline size_t skip_ws_run(const char *p, size_t n, size_t i)
{
	static const uint64_t spaces = 0x2020202020202020ull;
	uint64_t x;
	while (i + 8 <= n) {
		memcpy(&x, p + i, 8);
		if (x != spaces)
			break;
		i += 8;
	}
	while (i < n && (copy_class[(unsigned char)p[i]] & 4))
		i++;
	return i;
}

/* salus_buf_add for the many short runs of a copy: within the capacity the
 * buffer already has, a memcpy (the invariants hold: n < cap <= max + 1). */
static inline int add_run(struct salus_buf *b, const char *p, size_t n)
{
	if (b->cap && n < b->cap - b->n) {
		memcpy(b->p + b->n, p, n);
		b->n += n;
		b->p[b->n] = 0;
		return 0;
	}
	return salus_buf_add(b, p, n);
}

/* Skip the value at p[*i] of text known to be valid JSON: strings to their
 * closing quote, containers to their matching bracket, literals to the next
 * delimiter.  A table lookup per byte between the bytes that matter. */
static int skip_checked(const char *p, size_t n, size_t *i)
{
	const unsigned char *u = (const unsigned char *)p;
	size_t j = *i;
	int depth = 0;
	if (j >= n)
		return SALUS_EINVALID;
	if (p[j] != '"' && p[j] != '{' && p[j] != '[') {
		while (j < n && lit_char(p[j]))
			j++;
		if (j == *i)
			return SALUS_EINVALID;
		*i = j;
		return 0;
	}
	for (;;) {
		while (j < n && !(skip_class[u[j]] & 1))
			j++;
		if (j >= n)
			return SALUS_EINVALID;
		char c = p[j++];
		if (c == '"') {
			for (;;) {
				while (j < n && !(skip_class[u[j]] & 2))
					j++;
				if (j >= n)
					return SALUS_EINVALID;
				if (p[j] == '"')
					break;
				j += 2; /* a backslash and the byte it escapes */
			}
			j++;
			if (!depth) {
				*i = j;
				return 0;
			}
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (--depth <= 0) {
			if (depth < 0)
				return SALUS_EINVALID;
			*i = j;
			return 0;
		}
	}
}

int salus_json_iter_init(struct salus_json_iter *it, const char *p, size_t n)
{
	size_t i = 0;
	memset(it, 0, sizeof *it);
	skip_ws(p, n, &i);
	if (i >= n || (p[i] != '{' && p[i] != '['))
		return SALUS_EINVALID;
	it->p = p;
	it->n = n;
	it->close = p[i] == '{' ? '}' : ']';
	it->pos = i + 1;
	it->first = true;
	return 0;
}

int salus_json_iter_next(struct salus_json_iter *it, struct salus_slice *key, struct salus_slice *val)
{
	const char *p = it->p;
	size_t n = it->n;
	size_t i = it->pos;
	struct walker w = {.p = p, .n = n};
	struct salus_slice k = {NULL, 0};
	int rc;
	if (it->done)
		return 0;
	skip_ws(p, n, &i);
	if (i >= n)
		return SALUS_EINVALID;
	if (p[i] == it->close && it->first) {
		it->done = true;
		it->pos = i + 1;
		return 0;
	}
	if (!it->first) {
		if (p[i] == it->close) {
			it->done = true;
			it->pos = i + 1;
			return 0;
		}
		if (p[i] != ',')
			return SALUS_EINVALID;
		i++;
		skip_ws(p, n, &i);
	}
	if (it->close == '}') {
		bool esc;
		if (i >= n || p[i] != '"')
			return SALUS_EINVALID;
		if ((rc = scan_string(p, n, &i, &k, &esc)))
			return rc;
		skip_ws(p, n, &i);
		if (i >= n || p[i] != ':')
			return SALUS_EINVALID;
		i++;
	}
	skip_ws(p, n, &i);
	size_t vs = i;
	if ((rc = it->checked ? skip_checked(p, n, &i) : walk(&w, &i, 1, k)))
		return rc;
	*key = k;
	*val = (struct salus_slice){p + vs, i - vs};
	it->pos = i;
	it->first = false;
	return 1;
}

int salus_json_iter_init_checked(struct salus_json_iter *it, const char *p, size_t n)
{
	int rc = salus_json_iter_init(it, p, n);
	it->checked = !rc;
	return rc;
}

static int member(const char *p, size_t n, const char *name, struct salus_slice *val, bool checked)
{
	struct salus_json_iter it;
	struct salus_slice k, v;
	int rc = checked ? salus_json_iter_init_checked(&it, p, n) : salus_json_iter_init(&it, p, n);
	if (rc)
		return rc;
	if (it.close != '}')
		return SALUS_EINVALID;
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		if (salus_slice_eq(k, name)) {
			*val = v;
			return 1;
		}
	}
	return rc;
}

int salus_json_member(const char *p, size_t n, const char *name, struct salus_slice *val)
{
	return member(p, n, name, val, false);
}

int salus_json_member_checked(const char *p, size_t n, const char *name, struct salus_slice *val)
{
	return member(p, n, name, val, true);
}

/* ---- copy and splice -------------------------------------------------- */

int salus_json_copy(struct salus_buf *out, const char *p, size_t n, salus_json_str_cb cb, void *ctx)
{
	struct walker w = {.p = p, .n = n, .out = out, .cb = cb, .ctx = ctx};
	size_t i = 0;
	salus_buf_init(&w.scratch, SALUS_MAX_BODY);
	int rc = walk(&w, &i, 0, (struct salus_slice){NULL, 0});
	if (!rc) {
		skip_ws(p, n, &i);
		if (i != n)
			rc = SALUS_EINVALID;
	}
	if (!rc)
		rc = flush(&w);
	salus_buf_release(&w.scratch);
	return rc;
}

int salus_json_copy_checked(struct salus_buf *out, const char *p, size_t n, salus_json_str_cb cb, void *ctx)
{
	const unsigned char *u = (const unsigned char *)p;
	struct salus_slice keys[SALUS_MAX_JSON_DEPTH + 2]; /* keys[d]: the key strings at depth d belong to */
	struct salus_buf scratch;
	size_t i = 0, run = 0;
	int d = 0, rc = 0;
	keys[0] = (struct salus_slice){NULL, 0};
	while (i < n && is_ws(p[i]))
		i++;
	if (i >= n)
		return SALUS_EINVALID; /* no value */
	run = i;
	salus_buf_init(&scratch, SALUS_MAX_BODY);
	while (!rc) {
		while (i < n && !copy_class[u[i]])
			i++;
		if (i >= n)
			break;
		char c = p[i];
		if (copy_class[u[i]] & 4) {
			if (i > run && (rc = add_run(out, p + run, i - run)))
				break;
			i = skip_ws_run(p, n, i);
			run = i;
		} else if (c == '{' || c == '[') {
			if (d + 1 >= (int)(sizeof keys / sizeof keys[0])) {
				rc = SALUS_EINVALID;
				break;
			}
			keys[d + 1] = keys[d]; /* array elements: the enclosing member's key */
			d++;
			i++;
		} else if (c == '}' || c == ']') {
			d = d ? d - 1 : 0;
			i++;
		} else { /* a string: a key when a ':' follows */
			size_t s0 = i++;
			bool esc = false;
			for (;;) {
				while (i < n && !(skip_class[u[i]] & 2))
					i++;
				if (i >= n || p[i] == '"')
					break;
				esc = true;
				i += 2;
			}
			if (i >= n) {
				rc = SALUS_EINVALID;
				break;
			}
			i++;
			struct salus_slice str = {p + s0 + 1, i - s0 - 2};
			size_t j = i < n && (copy_class[u[i]] & 4) ? skip_ws_run(p, n, i) : i;
			if (j < n && p[j] == ':') {
				keys[d] = str;
				continue;
			}
			if (!cb)
				continue;
			struct salus_slice dec = str;
			if (esc) {
				if ((rc = decode(&scratch, str)))
					break;
				dec = (struct salus_slice){scratch.p, scratch.n};
			}
			const char *rep = cb(ctx, keys[d], dec);
			if (!rep)
				continue;
			if ((s0 > run && (rc = add_run(out, p + run, s0 - run))) || (rc = put_escaped(out, rep)))
				break;
			run = i;
		}
	}
	if (!rc && (d || i > n))
		rc = SALUS_EINVALID;
	if (!rc && n > run)
		rc = add_run(out, p + run, n - run);
	salus_buf_release(&scratch);
	return rc;
}

static bool has_backslash(struct salus_slice s)
{
	return memchr(s.p, '\\', s.n) != NULL;
}

/* Copy a value already checked by the walker without its whitespace: the
 * bytes salus_json_copy with no callback writes, in runs between whitespace
 * instead of token by token. */
static int copy_checked(struct salus_buf *out, const char *p, size_t n)
{
	size_t i = 0, run = 0;
	int rc;
	while (i < n) {
		char c = p[i];
		if (c == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\')
					i++;
			i++;
			continue;
		}
		if (!is_ws(c)) {
			i++;
			continue;
		}
		if (i > run && (rc = salus_buf_add(out, p + run, i - run)))
			return rc;
		while (i < n && is_ws(p[i]))
			i++;
		run = i;
	}
	return i > run ? salus_buf_add(out, p + run, (i > n ? n : i) - run) : 0;
}

#define SPLICE_MEMBERS 64 /* top-level members remembered by the first pass */

int salus_json_splice(struct salus_buf *out, const char *raw, size_t n, const char *id, const char *meta,
		      size_t meta_len, salus_json_str_cb cb, void *ctx)
{
	struct salus_json_iter it;
	struct salus_slice k, v, rt = {NULL, 0};
	struct salus_slice mk[SPLICE_MEMBERS], mv[SPLICE_MEMBERS];
	size_t nm = 0;
	bool all = true; /* every member is in mk/mv */
	int rc;

	if ((rc = salus_json_iter_init(&it, raw, n)) || it.close != '}')
		return SALUS_EINVALID;
	/* first pass: resourceType, no escaped keys (they could spell id or meta), and
	 * every value checked by the walker; the members are kept for the second pass */
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		if (has_backslash(k))
			return SALUS_EINVALID;
		if (salus_slice_eq(k, "resourceType"))
			rt = v;
		if (nm < SPLICE_MEMBERS) {
			mk[nm] = k;
			mv[nm++] = v;
		} else {
			all = false;
		}
	}
	if (rc)
		return rc;
	if (!rt.p || rt.n < 2 || rt.p[0] != '"')
		return SALUS_EINVALID;
	if ((rc = salus_buf_adds(out, "{\"resourceType\":")) || (rc = salus_buf_add(out, rt.p, rt.n)))
		return rc;
	if (id && ((rc = salus_buf_adds(out, ",\"id\":")) || (rc = put_escaped(out, id))))
		return rc;
	if (meta && ((rc = salus_buf_adds(out, ",\"meta\":")) || (rc = salus_buf_add(out, meta, meta_len))))
		return rc;
	if (all) {
		for (size_t i = 0; i < nm; i++) {
			k = mk[i];
			v = mv[i];
			if (salus_slice_eq(k, "resourceType") || salus_slice_eq(k, "id") || salus_slice_eq(k, "meta"))
				continue;
			if ((rc = salus_buf_adds(out, ",\"")) || (rc = salus_buf_add(out, k.p, k.n)) ||
			    (rc = salus_buf_adds(out, "\":")) ||
			    (rc = cb ? salus_json_copy(out, v.p, v.n, cb, ctx) : copy_checked(out, v.p, v.n)))
				return rc;
		}
		return salus_buf_addc(out, '}');
	}
	salus_json_iter_init(&it, raw, n);
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		if (salus_slice_eq(k, "resourceType") || salus_slice_eq(k, "id") || salus_slice_eq(k, "meta"))
			continue;
		if ((rc = salus_buf_adds(out, ",\"")) || (rc = salus_buf_add(out, k.p, k.n)) ||
		    (rc = salus_buf_adds(out, "\":")) || (rc = salus_json_copy(out, v.p, v.n, cb, ctx)))
			return rc;
	}
	if (rc)
		return rc;
	return salus_buf_addc(out, '}');
}

/* `"key":"value"`: both server-made ASCII (a name, digits, an instant). */
static int put_member(struct salus_buf *out, const char *key, const char *val)
{
	int rc;
	if ((rc = salus_buf_addc(out, '"')) || (rc = salus_buf_adds(out, key)) || (rc = salus_buf_add(out, "\":\"", 3)) ||
	    (rc = salus_buf_adds(out, val)))
		return rc;
	return salus_buf_addc(out, '"');
}

/* The merged meta of salus_json_splice_compact: the client's meta members in
 * their order, versionId and lastUpdated replaced where they stand or added
 * at the end (what jansson's dump of the stamped tree writes). */
static int put_meta_compact(struct salus_buf *out, struct salus_slice meta, const char *vid, const char *instant)
{
	struct salus_json_iter it;
	struct salus_slice k, v;
	bool have_vid = false, have_lu = false, first = true;
	int rc;
	if ((rc = salus_buf_addc(out, '{')))
		return rc;
	if (meta.p) {
		if (salus_json_iter_init_checked(&it, meta.p, meta.n) || it.close != '}')
			return SALUS_EINVALID;
		while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
			if (has_backslash(k))
				return SALUS_EINVALID; /* an escaped key could spell versionId */
			if ((!first && (rc = salus_buf_addc(out, ','))))
				return rc;
			first = false;
			if (salus_slice_eq(k, "versionId")) {
				have_vid = true;
				rc = put_member(out, "versionId", vid);
			} else if (salus_slice_eq(k, "lastUpdated")) {
				have_lu = true;
				rc = put_member(out, "lastUpdated", instant);
			} else {
				rc = salus_buf_add(out, k.p - 1, (size_t)(v.p + v.n - (k.p - 1)));
			}
			if (rc)
				return rc;
		}
		if (rc)
			return rc;
	}
	if (!have_vid) {
		if ((!first && (rc = salus_buf_addc(out, ','))) || (rc = put_member(out, "versionId", vid)))
			return rc;
		first = false;
	}
	if (!have_lu && ((!first && (rc = salus_buf_addc(out, ','))) || (rc = put_member(out, "lastUpdated", instant))))
		return rc;
	return salus_buf_addc(out, '}');
}

int salus_json_splice_compact(struct salus_buf *out, const char *raw, size_t n, const char *id, const char *vid,
			      const char *instant)
{
	struct salus_json_iter it;
	struct salus_slice k, v, rt = {NULL, 0}, meta = {NULL, 0};
	struct salus_slice mk[SPLICE_MEMBERS], mv[SPLICE_MEMBERS];
	size_t nm = 0;
	int rc;

	if ((rc = salus_json_iter_init_checked(&it, raw, n)) || it.close != '}')
		return SALUS_EINVALID;
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		if (has_backslash(k) || nm == SPLICE_MEMBERS)
			return SALUS_EINVALID; /* the caller takes the general path */
		if (salus_slice_eq(k, "resourceType"))
			rt = v;
		else if (salus_slice_eq(k, "meta"))
			meta = v;
		mk[nm] = k;
		mv[nm++] = v;
	}
	if (rc)
		return rc;
	if (!rt.p || rt.n < 2 || rt.p[0] != '"' || (meta.p && meta.p[0] != '{'))
		return SALUS_EINVALID;
	if ((rc = salus_buf_adds(out, "{\"resourceType\":")) || (rc = salus_buf_add(out, rt.p, rt.n)) ||
	    (id && ((rc = salus_buf_adds(out, ",\"id\":")) || (rc = put_escaped(out, id)))) ||
	    (rc = salus_buf_adds(out, ",\"meta\":")) || (rc = put_meta_compact(out, meta, vid, instant)))
		return rc;
	for (size_t i = 0; i < nm; i++) {
		k = mk[i];
		v = mv[i];
		if (salus_slice_eq(k, "resourceType") || salus_slice_eq(k, "id") || salus_slice_eq(k, "meta"))
			continue;
		/* `,"key":value` as written: the text is compact */
		if ((rc = add_run(out, ",", 1)) || (rc = add_run(out, k.p - 1, (size_t)(v.p + v.n - (k.p - 1)))))
			return rc;
	}
	return salus_buf_addc(out, '}');
}
