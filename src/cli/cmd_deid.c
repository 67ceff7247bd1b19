/*
 * cmd_deid.c — `salus deid scan|eval|fhir`: find PHI in text and NDJSON notes,
 * transform it, and score the detector against gold annotations.
 *
 *   salus deid scan [--transform MODE] [--key FILE] [--scope ID] [FILE]
 *   salus deid scan --spans [--ndjson] [--explain] [FILE]
 *   salus deid eval --gold FILE [--json] [--ignore TYPES] [--half a|b] [--errors FILE]
 *   salus deid fhir ...            (cmd_deid_fhir.c)
 *
 * Input is read in bounded pieces: plain text is cut at line boundaries into
 * pieces of at most SCAN_PIECE bytes, NDJSON line by line (each line capped
 * at SALUS_MAX_LINE), so memory does not grow with the input.  A bad NDJSON
 * line yields {"id":...,"error":"..."} and the stream goes on.  Offsets in
 * span output are Unicode code points, end exclusive.  Errors name the
 * problem, never the text.
 */
#include <errno.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <utf8proc.h>

#include "cli/cmd.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"
#include "deid/deid.h"
#include "deid/transform.h"

/* Provided by cmd_deid_fhir.c when it is linked in. */
#pragma weak salus_cli_deid_fhir

#define SCAN_PIECE (1u << 16) /* plain text is scanned in pieces of about this size (cache-sized) */

static const char usage[] =
	"usage: salus deid scan [--transform MODE] [--key FILE] [--scope ID] [--ndjson] [FILE]\n"
	"       salus deid scan --spans [--ndjson] [--explain] [--threshold C] [FILE]\n"
	"       salus deid eval --gold FILE [--json] [--ignore TYPE,...] [--threshold C] [--half a|b]\n"
	"                       [--errors FILE]\n"
	"       salus deid fhir [OPTIONS] [FILE]   (salus deid fhir --help)\n"
	"Finds the HIPAA Safe Harbor identifiers in clinical text (stdin by default).\n"
	"  scan             write the text with PHI transformed (default --transform mask)\n"
	"  --transform M    mask | redact | surrogate | shift-dates | generalise | pseudonym | safe-harbor\n"
	"  --key FILE       32-byte key (raw or 64 hex digits) for keyed modes; random if absent\n"
	"  --scope ID       patient or project id for surrogates and date shifts (NDJSON: \"patient\" or \"id\")\n"
	"  --ndjson         input lines {\"id\": ..., \"text\": ...}; output one line per input\n"
	"  --spans          write spans instead of text: {\"id\": ..., \"spans\": [{\"start\", \"end\", \"type\",\n"
	"                   \"confidence\"}]}, offsets in Unicode characters, end exclusive; types NAME DATE AGE\n"
	"                   CONTACT ID LOCATION\n"
	"  --explain        also show, per span, the fine type and the pattern / dictionary / rule that fired\n"
	"                   (plain text: one line per span)\n"
	"  --threshold C    minimum confidence of a span (default 0.5)\n"
	"  eval --gold F    score against gold notes (NDJSON of ../shared/deid, or the presidio JSON list):\n"
	"                   token recall/precision (type-blind), entity strict/relaxed P/R/F1, per-type\n"
	"                   recall, F2, document leak rate, MB/s\n"
	"  --ignore T,...   gold types not scored (neither PHI nor false positives), e.g. DateYear\n"
	"  --half a|b       score only one half of the notes, split by a hash of the note id (the list index\n"
	"                   for presidio): develop on one half, report the other\n"
	"  --errors FILE    write each missed and spurious token with context to FILE (created 0600;\n"
	"                   development data only: it holds note text, never use it on real PHI)\n";

/* ---- output helpers ---------------------------------------------------- */

static int json_str(struct salus_buf *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	int rc = salus_buf_addc(o, '"');
	size_t run = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		rc = salus_buf_add(o, s + run, i - run);
		run = i + 1;
		if (rc)
			break;
		switch (c) {
		case '"': rc = salus_buf_adds(o, "\\\""); break;
		case '\\': rc = salus_buf_adds(o, "\\\\"); break;
		case '\n': rc = salus_buf_adds(o, "\\n"); break;
		case '\r': rc = salus_buf_adds(o, "\\r"); break;
		case '\t': rc = salus_buf_adds(o, "\\t"); break;
		default: {
			char u[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
			rc = salus_buf_adds(o, u);
		}
		}
	}
	if (!rc)
		rc = salus_buf_add(o, s + run, n - run);
	if (!rc)
		rc = salus_buf_addc(o, '"');
	return rc;
}

/* Coarse output category (the synthetic corpus labels). */
static const char *coarse(enum salus_phi t)
{
	switch (t) {
	case SALUS_PHI_PHONE:
	case SALUS_PHI_EMAIL:
	case SALUS_PHI_URL:
	case SALUS_PHI_IP: return "CONTACT";
	case SALUS_PHI_SSN: return "ID";
	case SALUS_PHI_ZIP: return "LOCATION";
	default: return salus_phi_label(t);
	}
}

struct scan_opts {
	bool spans, ndjson, explain, have_mode;
	const char *file, *key_file, *scope;
	float threshold;
	struct salus_deid_xform_opts x;
};

/* ---- NDJSON fast path --------------------------------------------------- */

/* A strict reader of one JSON object for `scan --spans --ndjson`: it takes the
 * "id" (string without escapes, or integer) and unescapes "text" into a
 * reused buffer, validating the rest of the line without building a tree.  It
 * accepts a subset of JSON: anything it does not handle (malformed JSON,
 * \u0000, escaped keys or ids, non-ASCII outside "text", invalid UTF-8, big
 * numbers, deep nesting, "text" that is not a string) returns false and the
 * line goes through jansson, which gives the same answer or the error record.
 * jansson cost as much CPU as the detector itself. */

#define FAST_DEPTH 32

struct fast_doc {
	const char *id; /* raw id string (no escapes), or NULL */
	size_t idn;
	bool id_int;
	long long idv;
	bool has_text;
};

static const char *fast_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool fast_hex4(const char *p, const char *end, unsigned *out)
{
	if (end - p < 4)
		return false;
	unsigned v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return false;
		v = v << 4 | (unsigned)h;
	}
	*out = v;
	return true;
}

/* String body after the opening quote.  out: unescape into it (NULL: only
 * validate, and refuse escapes when raw_only).  hi: non-ASCII allowed. */
static const char *fast_str(const char *p, const char *end, struct salus_buf *out, bool hi, bool raw_only,
			    bool *saw_hi)
{
	for (;;) {
		const char *run = p;
#if defined(__SSE2__)
		/* 16 bytes at a time to the next quote, backslash, control or non-ASCII byte */
		while (end - p >= 16) {
			__m128i c = _mm_loadu_si128((const __m128i *)(const void *)p);
			__m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(c, _mm_set1_epi8('"')),
								 _mm_cmpeq_epi8(c, _mm_set1_epi8('\\'))),
						    _mm_cmplt_epi8(c, _mm_set1_epi8(0x20))); /* also >= 0x80 (signed) */
			unsigned mk = (unsigned)_mm_movemask_epi8(stop);
			if (mk) {
				p += __builtin_ctz(mk);
				break;
			}
			p += 16;
		}
#endif
		while (p < end) {
			unsigned char c = (unsigned char)*p;
			if (c == '"' || c == '\\' || c < 0x20)
				break;
			if (c >= 0x80) {
				if (!hi)
					return NULL;
				*saw_hi = true;
			}
			p++;
		}
		if (out && p > run && salus_buf_add(out, run, (size_t)(p - run)))
			return NULL;
		if (p == end || (unsigned char)*p < 0x20)
			return NULL;
		if (*p == '"')
			return p + 1;
		/* escape */
		if (raw_only || end - p < 2)
			return NULL;
		char e = p[1], c;
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
			unsigned u;
			if (!fast_hex4(p, end, &u) || u == 0)
				return NULL;
			p += 4;
			if (u >= 0xDC00 && u <= 0xDFFF)
				return NULL;
			if (u >= 0xD800 && u <= 0xDBFF) {
				unsigned lo;
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !fast_hex4(p + 2, end, &lo) || lo < 0xDC00 ||
				    lo > 0xDFFF)
					return NULL;
				p += 6;
				u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
			}
			char enc[4];
			size_t k;
			if (u < 0x80)
				enc[0] = (char)u, k = 1;
			else if (u < 0x800)
				enc[0] = (char)(0xC0 | u >> 6), enc[1] = (char)(0x80 | (u & 63)), k = 2;
			else if (u < 0x10000)
				enc[0] = (char)(0xE0 | u >> 12), enc[1] = (char)(0x80 | ((u >> 6) & 63)),
				enc[2] = (char)(0x80 | (u & 63)), k = 3;
			else
				enc[0] = (char)(0xF0 | u >> 18), enc[1] = (char)(0x80 | ((u >> 12) & 63)),
				enc[2] = (char)(0x80 | ((u >> 6) & 63)), enc[3] = (char)(0x80 | (u & 63)), k = 4;
			if (u >= 0x80)
				*saw_hi = true;
			if (out && salus_buf_add(out, enc, k))
				return NULL;
			continue;
		}
		default: return NULL;
		}
		if (out && salus_buf_addc(out, c))
			return NULL;
	}
}

/* A JSON number with at most 18 integer digits; *is_int and *v for integers. */
static const char *fast_num(const char *p, const char *end, bool *is_int, long long *v)
{
	bool neg = false;
	if (p < end && *p == '-')
		neg = true, p++;
	if (p == end || *p < '0' || *p > '9')
		return NULL;
	long long x = 0;
	int digits = 0;
	if (*p == '0')
		p++, digits = 1;
	else
		while (p < end && *p >= '0' && *p <= '9') {
			if (++digits > 18)
				return NULL;
			x = x * 10 + (*p++ - '0');
		}
	*is_int = true;
	if (p < end && *p == '.') {
		*is_int = false;
		if (++p == end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		*is_int = false;
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || *p < '0' || *p > '9')
			return NULL;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
	}
	*v = neg ? -x : x;
	return p;
}

static const char *fast_value(const char *p, const char *end, int depth)
{
	bool is_int, hi = false;
	long long v;
	if (p == end || depth > FAST_DEPTH)
		return NULL;
	switch (*p) {
	case '"': return fast_str(p + 1, end, NULL, false, false, &hi);
	case 't': return end - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
	case 'f': return end - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
	case 'n': return end - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
	case '[':
		p = fast_ws(p + 1, end);
		if (p < end && *p == ']')
			return p + 1;
		for (;;) {
			if (!(p = fast_value(p, end, depth + 1)))
				return NULL;
			p = fast_ws(p, end);
			if (p == end)
				return NULL;
			if (*p == ']')
				return p + 1;
			if (*p != ',')
				return NULL;
			p = fast_ws(p + 1, end);
		}
	case '{':
		p = fast_ws(p + 1, end);
		if (p < end && *p == '}')
			return p + 1;
		for (;;) {
			if (p == end || *p != '"' || !(p = fast_str(p + 1, end, NULL, false, true, &hi)))
				return NULL;
			p = fast_ws(p, end);
			if (p == end || *p != ':')
				return NULL;
			if (!(p = fast_value(fast_ws(p + 1, end), end, depth + 1)))
				return NULL;
			p = fast_ws(p, end);
			if (p == end)
				return NULL;
			if (*p == '}')
				return p + 1;
			if (*p != ',')
				return NULL;
			p = fast_ws(p + 1, end);
		}
	default: return fast_num(p, end, &is_int, &v);
	}
}

static bool fast_parse(const char *line, size_t n, struct salus_buf *text, struct fast_doc *fd /* OUT */)
{
	const char *p = line, *end = line + n;
	bool text_hi = false;
	memset(fd, 0, sizeof *fd);
	p = fast_ws(p, end);
	if (p == end || *p != '{')
		return false;
	p = fast_ws(p + 1, end);
	if (p < end && *p == '}')
		return false; /* no text: jansson's error record */
	for (;;) {
		bool hi = false;
		if (p == end || *p != '"')
			return false;
		const char *k = p + 1;
		if (!(p = fast_str(k, end, NULL, false, true, &hi)))
			return false;
		size_t kn = (size_t)(p - 1 - k);
		p = fast_ws(p, end);
		if (p == end || *p != ':')
			return false;
		p = fast_ws(p + 1, end);
		if (p == end)
			return false;
		if (kn == 4 && !memcmp(k, "text", 4)) {
			if (*p != '"')
				return false;
			salus_buf_reset(text);
			text_hi = false;
			if (!(p = fast_str(p + 1, end, text, true, false, &text_hi)))
				return false;
			fd->has_text = true;
		} else if (kn == 2 && !memcmp(k, "id", 2)) {
			fd->id = NULL;
			fd->id_int = false;
			if (*p == '"') {
				const char *s = p + 1;
				if (!(p = fast_str(s, end, NULL, false, true, &hi)))
					return false;
				fd->id = s;
				fd->idn = (size_t)(p - 1 - s);
			} else if (*p == '-' || (*p >= '0' && *p <= '9')) {
				bool is_int;
				long long v;
				if (!(p = fast_num(p, end, &is_int, &v)))
					return false;
				fd->id_int = is_int;
				fd->idv = v;
			} else if (!(p = fast_value(p, end, 1))) {
				return false;
			}
		} else if (!(p = fast_value(p, end, 1))) {
			return false;
		}
		p = fast_ws(p, end);
		if (p == end)
			return false;
		if (*p == '}')
			break;
		if (*p != ',')
			return false;
		p = fast_ws(p + 1, end);
	}
	if (fast_ws(p + 1, end) != end || !fd->has_text)
		return false;
	if (text_hi && !salus_deid_utf8_valid(text->p, text->n, NULL))
		return false;
	return true;
}

/* Decimal of v. */
static int buf_addu(struct salus_buf *o, size_t v)
{
	char t[24];
	size_t k = sizeof t;
	do
		t[--k] = (char)('0' + v % 10);
	while ((v /= 10));
	return salus_buf_add(o, t + k, sizeof t - k);
}

/* Confidence as printf's "%.2f" would write it for 0..1. */
static int buf_addconf(struct salus_buf *o, float conf)
{
	double x = (double)conf * 100.0;
	if (!(x >= 0))
		x = 0;
	if (x > 100)
		x = 100;
	unsigned v = (unsigned)x;
	double fr = x - v;
	if (fr > 0.5 || (fr == 0.5 && (v & 1)))
		v++;
	char t[4] = {(char)('0' + v / 100), '.', (char)('0' + v / 10 % 10), (char)('0' + v % 10)};
	return salus_buf_add(o, t, 4);
}

/* Append `"spans": [...]` for spans of text (byte offsets) with character
 * offsets plus `base` chars. */
static int spans_json(struct salus_buf *o, const char *text, const struct salus_span *sp, size_t n, size_t base,
		      bool explain, bool first_comma)
{
	int rc = 0;
	size_t pos = 0, chars = base;
	for (size_t i = 0; i < n && !rc; i++) {
		chars += salus_deid_utf8_chars(text + pos, sp[i].start - pos);
		size_t cs = chars;
		chars += salus_deid_utf8_chars(text + sp[i].start, sp[i].end - sp[i].start);
		pos = sp[i].end;
		rc = salus_buf_adds(o, (i || first_comma) ? ", {\"start\": " : "{\"start\": ");
		rc = rc ? rc : buf_addu(o, cs);
		rc = rc ? rc : salus_buf_add(o, ", \"end\": ", 9);
		rc = rc ? rc : buf_addu(o, chars);
		rc = rc ? rc : salus_buf_add(o, ", \"type\": \"", 11);
		rc = rc ? rc : salus_buf_adds(o, coarse(sp[i].type));
		rc = rc ? rc : salus_buf_add(o, "\", \"confidence\": ", 17);
		rc = rc ? rc : buf_addconf(o, sp[i].confidence);
		if (!rc && explain)
			rc = salus_buf_addf(o, ", \"fine\": \"%s\", \"rule\": \"%s\", \"kind\": \"%s\"",
					    salus_phi_label(sp[i].type), salus_deid_rule_name(sp[i].rule),
					    salus_deid_rule_kind(sp[i].rule));
		if (!rc)
			rc = salus_buf_addc(o, '}');
	}
	return rc;
}

static int flush(struct salus_buf *o, FILE *out)
{
	if (o->n && fwrite(o->p, 1, o->n, out) != o->n)
		return SALUS_EIO;
	salus_buf_reset(o);
	return 0;
}

/* ---- bounded line reader ------------------------------------------------ */

struct reader {
	FILE *f;
	char *chunk;
	size_t cn, cp; /* bytes in chunk, read position */
	bool eof;
	struct salus_buf line;
	bool overlong;
};

static int reader_init(struct reader *r, FILE *f)
{
	memset(r, 0, sizeof *r);
	r->f = f;
	r->chunk = salus_malloc(1u << 16);
	salus_buf_init(&r->line, SALUS_MAX_LINE);
	return r->chunk ? 0 : SALUS_ENOMEM;
}

static void reader_release(struct reader *r)
{
	salus_free(r->chunk);
	salus_buf_release(&r->line);
}

/* Next line (without '\n') in r->line; 1 = got a line, 0 = end, <0 error.
 * A line over SALUS_MAX_LINE is skipped to its end and returned empty with
 * r->overlong set. */
static int reader_next(struct reader *r)
{
	salus_buf_reset(&r->line);
	r->overlong = false;
	bool any = false;
	for (;;) {
		if (r->cp == r->cn) {
			if (r->eof)
				return any ? 1 : 0;
			r->cn = fread(r->chunk, 1, 1u << 16, r->f);
			r->cp = 0;
			if (r->cn == 0) {
				if (ferror(r->f))
					return SALUS_EIO;
				r->eof = true;
				return any ? 1 : 0;
			}
		}
		any = true;
		char *nl = memchr(r->chunk + r->cp, '\n', r->cn - r->cp);
		size_t take = nl ? (size_t)(nl - (r->chunk + r->cp)) : r->cn - r->cp;
		if (!r->overlong) {
			int rc = salus_buf_add(&r->line, r->chunk + r->cp, take);
			if (rc == SALUS_ETOOLARGE)
				r->overlong = true;
			else if (rc)
				return rc;
		}
		r->cp += take;
		if (nl) {
			r->cp++;
			return 1;
		}
	}
}

/* ---- scan --------------------------------------------------------------- */

static int ndjson_line(struct salus_deid *d, const struct scan_opts *so, const char *line, size_t n, bool overlong,
		       struct salus_buf *o)
{
	json_error_t jerr;
	json_t *doc = NULL, *id = NULL;
	const char *err = NULL;
	int rc = 0;
	size_t mark = o->n; /* on error, drop what this line appended */
	if (overlong) {
		err = "line longer than the NDJSON line limit";
		goto out_record;
	}
	if (!(doc = json_loadb(line, n, JSON_ALLOW_NUL, &jerr))) {
		err = "malformed JSON";
		goto out_record;
	}
	if (!json_is_object(doc)) {
		err = "line is not a JSON object";
		goto out_record;
	}
	id = json_object_get(doc, "id");
	json_t *jt = json_object_get(doc, "text");
	if (!json_is_string(jt)) {
		err = "missing text string";
		goto out_record;
	}
	const char *text = json_string_value(jt);
	size_t tn = json_string_length(jt);
	const struct salus_span *sp;
	size_t ns;
	const char *why = NULL;
	int src = salus_deid_scan(d, text, tn, &sp, &ns, &why);
	if (src == SALUS_ENOMEM) {
		rc = src;
		goto out_doc;
	}
	if (src) {
		err = why ? why : salus_err_msg(src);
		goto out_record;
	}
	rc = salus_buf_adds(o, "{\"id\": ");
	if (json_is_string(id))
		rc = rc ? rc : json_str(o, json_string_value(id), json_string_length(id));
	else if (json_is_integer(id))
		rc = rc ? rc : salus_buf_addf(o, "%lld", (long long)json_integer_value(id));
	else
		rc = rc ? rc : salus_buf_adds(o, "null");
	if (so->spans) {
		rc = rc ? rc : salus_buf_adds(o, ", \"spans\": [");
		rc = rc ? rc : spans_json(o, text, sp, ns, 0, so->explain, false);
		rc = rc ? rc : salus_buf_adds(o, "]}\n");
	} else {
		struct salus_buf t;
		struct salus_deid_xform_opts x = so->x;
		json_t *pat = json_object_get(doc, "patient");
		if (!so->scope)
			x.scope = json_is_string(pat) ? json_string_value(pat) : json_is_string(id) ? json_string_value(id) : "";
		salus_buf_init(&t, SALUS_MAX_LINE);
		int trc = salus_deid_transform(&x, text, tn, sp, ns, &t);
		if (trc) {
			salus_buf_release(&t);
			if (trc == SALUS_ENOMEM) {
				rc = trc;
				goto out_doc;
			}
			err = "transform failed";
			goto out_record;
		}
		rc = rc ? rc : salus_buf_adds(o, ", \"text\": ");
		rc = rc ? rc : json_str(o, t.p, t.n);
		rc = rc ? rc : salus_buf_adds(o, "}\n");
		salus_buf_release(&t);
	}
	goto out_doc;
out_record:
	o->n = mark;
	o->p[mark] = 0;
	rc = salus_buf_adds(o, "{\"id\": ");
	if (json_is_string(id))
		rc = rc ? rc : json_str(o, json_string_value(id), json_string_length(id));
	else if (json_is_integer(id))
		rc = rc ? rc : salus_buf_addf(o, "%lld", (long long)json_integer_value(id));
	else
		rc = rc ? rc : salus_buf_adds(o, "null");
	rc = rc ? rc : salus_buf_adds(o, ", \"error\": ");
	rc = rc ? rc : json_str(o, err, strlen(err));
	rc = rc ? rc : salus_buf_adds(o, "}\n");
out_doc:
	json_decref(doc);
	return rc;
}

/* --spans for a line fast_parse understood; a scan error goes to ndjson_line
 * for its error record. */
static int ndjson_fast_line(struct salus_deid *d, const struct scan_opts *so, const struct fast_doc *fd,
			    const struct salus_buf *text, const char *line, size_t n, struct salus_buf *o)
{
	const struct salus_span *sp;
	size_t ns;
	const char *why = NULL;
	int src = salus_deid_scan(d, text->p, text->n, &sp, &ns, &why);
	if (src == SALUS_ENOMEM)
		return src;
	if (src)
		return ndjson_line(d, so, line, n, false, o);
	int rc = salus_buf_add(o, "{\"id\": ", 7);
	if (fd->id)
		rc = rc ? rc : json_str(o, fd->id, fd->idn);
	else if (fd->id_int)
		rc = rc ? rc : salus_buf_addf(o, "%lld", fd->idv);
	else
		rc = rc ? rc : salus_buf_add(o, "null", 4);
	rc = rc ? rc : salus_buf_add(o, ", \"spans\": [", 12);
	rc = rc ? rc : spans_json(o, text->p, sp, ns, 0, so->explain, false);
	rc = rc ? rc : salus_buf_add(o, "]}\n", 3);
	return rc;
}

static int scan_ndjson(struct salus_deid *d, const struct scan_opts *so, FILE *in, FILE *out)
{
	struct reader r;
	struct salus_buf o, text;
	struct fast_doc fd;
	int rc = reader_init(&r, in);
	salus_buf_init(&o, SALUS_MAX_LINE * 2u);
	salus_buf_init(&text, SALUS_MAX_LINE);
	while (!rc) {
		int got = reader_next(&r);
		if (got <= 0) {
			rc = got;
			break;
		}
		if (r.line.n == 0 && !r.overlong)
			continue;
		if (so->spans && !r.overlong && fast_parse(r.line.p, r.line.n, &text, &fd))
			rc = ndjson_fast_line(d, so, &fd, &text, r.line.p, r.line.n, &o);
		else
			rc = ndjson_line(d, so, r.line.p, r.line.n, r.overlong, &o);
		if (!rc && o.n > (1u << 16))
			rc = flush(&o, out);
	}
	if (!rc)
		rc = flush(&o, out);
	salus_buf_release(&text);
	salus_buf_release(&o);
	reader_release(&r);
	return rc;
}

/* Plain text: pieces of about SCAN_PIECE bytes cut after a newline (or at a
 * space, or anywhere, for text without them, never inside a UTF-8 sequence). */
static int scan_text(struct salus_deid *d, const struct scan_opts *so, FILE *in, FILE *out, const char **why)
{
	char *buf = salus_malloc(SCAN_PIECE * 2);
	struct salus_buf o;
	size_t have = 0, base_chars = 0, base_bytes = 0;
	bool eof = false, first = true;
	int rc = 0;
	if (!buf)
		return SALUS_ENOMEM;
	salus_buf_init(&o, SALUS_MAX_NOTE * 4u);
	if (so->spans && !so->explain)
		rc = salus_buf_adds(&o, "{\"spans\": [");
	while (!rc && (!eof || have)) {
		if (!eof) {
			size_t got = fread(buf + have, 1, SCAN_PIECE * 2 - have, in);
			if (got == 0) {
				if (ferror(in)) {
					rc = SALUS_EIO;
					break;
				}
				eof = true;
			}
			have += got;
			if (!eof && have < SCAN_PIECE * 2)
				continue;
		}
		size_t cut = have;
		if (!eof || have > SCAN_PIECE * 2 - 1) {
			cut = have > SCAN_PIECE ? SCAN_PIECE : have;
			size_t k = cut;
			while (k > cut / 2 && buf[k - 1] != '\n')
				k--;
			if (k == cut / 2) {
				k = cut;
				while (k > cut / 2 && buf[k - 1] != ' ')
					k--;
			}
			if (k == cut / 2) {
				k = cut;
				while (k > 0 && ((unsigned char)buf[k] & 0xC0) == 0x80)
					k--;
			}
			cut = k;
		}
		const struct salus_span *sp;
		size_t ns;
		rc = salus_deid_scan(d, buf, cut, &sp, &ns, why);
		if (rc)
			break;
		if (so->explain) {
			size_t pos = 0, chars = base_chars;
			for (size_t i = 0; i < ns && !rc; i++) {
				chars += salus_deid_utf8_chars(buf + pos, sp[i].start - pos);
				size_t cs = chars;
				chars += salus_deid_utf8_chars(buf + sp[i].start, sp[i].end - sp[i].start);
				pos = sp[i].end;
				rc = salus_buf_addf(&o, "%zu\t%zu\t%s\t%s\t%.2f\t%s %s\t", cs, chars, coarse(sp[i].type),
						    salus_phi_label(sp[i].type), (double)sp[i].confidence,
						    salus_deid_rule_kind(sp[i].rule), salus_deid_rule_name(sp[i].rule));
				rc = rc ? rc : json_str(&o, buf + sp[i].start, sp[i].end - sp[i].start);
				rc = rc ? rc : salus_buf_addc(&o, '\n');
			}
		} else if (so->spans) {
			rc = spans_json(&o, buf, sp, ns, base_chars, false, !first && ns);
			if (ns)
				first = false;
		} else {
			rc = salus_deid_transform(&so->x, buf, cut, sp, ns, &o);
		}
		base_chars += salus_deid_utf8_chars(buf, cut);
		base_bytes += cut;
		memmove(buf, buf + cut, have - cut);
		have -= cut;
		if (!rc)
			rc = flush(&o, out);
	}
	if (!rc && so->spans && !so->explain)
		rc = salus_buf_adds(&o, "]}\n");
	if (!rc)
		rc = flush(&o, out);
	(void)base_bytes;
	salus_buf_release(&o);
	salus_free(buf);
	return rc;
}

static int parse_float(const char *s, float *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v < 0 || v > 1)
		return SALUS_EINVALID;
	*out = (float)v;
	return 0;
}

static int cmd_scan(int argc, char **argv)
{
	struct scan_opts so = {.threshold = 0.5f};
	so.x.mode = SALUS_DEID_MASK;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help")) {
			fputs(usage, stdout);
			return 0;
		} else if (!strcmp(a, "--spans"))
			so.spans = true;
		else if (!strcmp(a, "--ndjson"))
			so.ndjson = true;
		else if (!strcmp(a, "--explain"))
			so.explain = true;
		else if (!strcmp(a, "--transform") && i + 1 < argc) {
			if (salus_deid_mode_parse(argv[++i], &so.x.mode))
				return salus_cli_fail("deid scan", 2, "unknown --transform (see --help)");
			so.have_mode = true;
		} else if (!strcmp(a, "--key") && i + 1 < argc)
			so.key_file = argv[++i];
		else if (!strcmp(a, "--scope") && i + 1 < argc)
			so.scope = argv[++i];
		else if (!strcmp(a, "--threshold") && i + 1 < argc) {
			if (parse_float(argv[++i], &so.threshold))
				return salus_cli_fail("deid scan", 2, "--threshold takes a number from 0 to 1");
		} else if (a[0] == '-' && a[1])
			return salus_cli_fail("deid scan", 2, "unknown option %s (see --help)", a);
		else if (!so.file)
			so.file = a;
		else
			return salus_cli_fail("deid scan", 2, "more than one input file");
	}
	if (so.spans && so.have_mode)
		return salus_cli_fail("deid scan", 2, "--spans and --transform are exclusive");
	FILE *in = stdin;
	if (so.file && strcmp(so.file, "-") && !(in = fopen(so.file, "rb")))
		return salus_cli_fail("deid scan", 1, "cannot open input file");
	unsigned char *key = NULL;
	int status = 0, rc = 0;
	struct salus_deid *d = NULL;
	if (!so.spans && salus_deid_mode_keyed(so.x.mode)) {
		if (so.key_file)
			rc = salus_deid_key_load(so.key_file, &key);
		else {
			fprintf(stderr, "salus deid scan: no --key: using a random key, output is not reproducible\n");
			rc = salus_deid_key_random(&key);
		}
		if (rc) {
			status = salus_cli_fail("deid scan", 1, "key: %s", salus_err_msg(rc));
			goto out_file;
		}
		so.x.key = key;
		so.x.key_len = SALUS_DEID_KEY_LEN;
	}
	so.x.scope = so.scope ? so.scope : "";
	if ((rc = salus_deid_new(&d))) {
		status = salus_cli_fail("deid scan", 1, "detector: %s", salus_err_msg(rc));
		goto out_key;
	}
	salus_deid_set_threshold(d, so.threshold);
	const char *why = NULL;
	rc = so.ndjson ? scan_ndjson(d, &so, in, stdout) : scan_text(d, &so, in, stdout, &why);
	if (rc)
		status = salus_cli_fail("deid scan", 1, "%s", why ? why : salus_err_msg(rc));
	if (fflush(stdout))
		status = salus_cli_fail("deid scan", 1, "cannot write output");
	salus_deid_free(d);
out_key:
	salus_deid_key_free(key);
out_file:
	if (in != stdin)
		fclose(in);
	return status;
}

/* ---- eval --------------------------------------------------------------- */

#define EVAL_TYPES 48

struct gold {
	size_t s, e; /* characters */
	int type;    /* index into ev.types */
};

struct eval {
	char types[EVAL_TYPES][32];
	int ntypes;
	bool ignore[EVAL_TYPES];
	size_t type_tok[EVAL_TYPES], type_hit[EVAL_TYPES], type_ent[EVAL_TYPES], type_ent_hit[EVAL_TYPES];
	size_t tp, fn, fp, tn;
	size_t ent_gold, ent_pred, ent_strict, ent_relaxed_gold, ent_relaxed_pred;
	size_t notes, leaked, bytes;
	size_t fp_type[SALUS_PHI__COUNT]; /* false-positive tokens by predicted fine type */
	double secs;
	FILE *errs; /* --errors FILE, or NULL */
	int half;   /* 0 all notes, 1 half "a", 2 half "b" */
	float threshold;
	const char *ignore_list;
};

static int type_index(struct eval *ev, const char *t)
{
	for (int i = 0; i < ev->ntypes; i++)
		if (!strcmp(ev->types[i], t))
			return i;
	if (ev->ntypes == EVAL_TYPES)
		return EVAL_TYPES - 1;
	snprintf(ev->types[ev->ntypes], sizeof ev->types[0], "%s", t);
	if (ev->ignore_list) {
		const char *p = ev->ignore_list;
		size_t n = strlen(t);
		while (p && *p) {
			const char *c = strchr(p, ',');
			size_t l = c ? (size_t)(c - p) : strlen(p);
			if (l == n && !strncmp(p, t, n))
				ev->ignore[ev->ntypes] = true;
			p = c ? c + 1 : NULL;
		}
	}
	return ev->ntypes++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool cp_alnum(utf8proc_int32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
	utf8proc_category_t k = utf8proc_category(c);
	return k <= UTF8PROC_CATEGORY_LO || k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_MN;
}

/* --errors: one line per token, the token in [[ ]] with 30 characters before
 * and 20 after (newlines as spaces).  Development data only. */
static void show_ctx(FILE *f, const char *tag, const char *text, const size_t *boff, size_t nch, size_t s, size_t e,
		     const char *type)
{
	size_t a = s > 30 ? s - 30 : 0, z = e + 20 < nch ? e + 20 : nch;
	fprintf(f, "%s %-24s ", tag, type);
	for (size_t k = boff[a]; k < boff[z]; k++) {
		char c = text[k];
		if (k == boff[s])
			fputs("[[", f);
		fputc(c == '\n' || c == '\r' || c == '\t' ? ' ' : c, f);
		if (k + 1 == boff[e])
			fputs("]]", f);
	}
	fputc('\n', f);
}

/* Score one note: text (UTF-8), gold spans in characters. */
static int eval_note(struct eval *ev, struct salus_deid *d, const char *text, size_t n, const struct gold *g,
		     size_t ng)
{
	const struct salus_span *sp;
	size_t ns;
	const char *why;
	double t0 = now_s();
	int rc = salus_deid_scan(d, text, n, &sp, &ns, &why);
	ev->secs += now_s() - t0;
	if (rc)
		return rc;
	ev->bytes += n;
	ev->notes++;
	size_t nch = salus_deid_utf8_chars(text, n);
	size_t *boff = salus_malloc((nch + 1) * sizeof *boff);       /* char -> byte */
	utf8proc_int32_t *cps = salus_malloc((nch + 1) * sizeof *cps); /* code points */
	signed char *gl = salus_malloc(nch + 1);                       /* gold type per char, -1 none */
	uint16_t *pl = salus_malloc((nch + 1) * sizeof *pl);           /* 1 + rule of the prediction per char */
	uint8_t *pt = salus_malloc(nch + 1);                           /* fine type of the prediction per char */
	size_t *ps = salus_malloc((ns + 1) * 2 * sizeof *ps);          /* predicted spans in chars */
	if (!boff || !cps || !gl || !pl || !pt || !ps) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	for (size_t i = 0, b = 0; i < nch; i++) {
		boff[i] = b;
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)text + b, (utf8proc_ssize_t)(n - b), &cps[i]);
		b += k > 0 ? (size_t)k : 1;
	}
	boff[nch] = n;
	memset(gl, -1, nch + 1);
	memset(pl, 0, (nch + 1) * sizeof *pl);
	for (size_t i = 0; i < ng; i++)
		for (size_t c = g[i].s; c < g[i].e && c < nch; c++)
			gl[c] = (signed char)g[i].type;
	/* predicted spans in chars */
	for (size_t i = 0, c = 0, b = 0; i < ns; i++) {
		while (b < sp[i].start)
			b = boff[++c];
		ps[2 * i] = c;
		while (b < sp[i].end)
			b = boff[++c];
		ps[2 * i + 1] = c;
		for (size_t q = ps[2 * i]; q < c; q++) {
			pl[q] = (uint16_t)(sp[i].rule + 1);
			pt[q] = (uint8_t)sp[i].type;
		}
	}
	/* tokens: runs of letters/digits */
	bool leaked = false;
	for (size_t i = 0; i < nch;) {
		if (!cp_alnum(cps[i])) {
			i++;
			continue;
		}
		size_t s = i;
		while (i < nch && cp_alnum(cps[i]))
			i++;
		int gt = -1;
		unsigned pred = 0, ptype = 0;
		for (size_t c = s; c < i; c++) {
			if (gl[c] >= 0 && gt < 0)
				gt = gl[c];
			if (!pred) {
				pred = pl[c];
				ptype = pt[c];
			}
		}
		if (gt >= 0 && ev->ignore[gt])
			continue;
		if (gt >= 0) {
			ev->type_tok[gt]++;
			if (pred) {
				ev->tp++;
				ev->type_hit[gt]++;
			} else {
				ev->fn++;
				leaked = true;
				if (ev->errs)
					show_ctx(ev->errs, "MISS", text, boff, nch, s, i, ev->types[gt]);
			}
		} else if (pred) {
			ev->fp++;
			if (ptype < SALUS_PHI__COUNT)
				ev->fp_type[ptype]++;
			if (ev->errs)
				show_ctx(ev->errs, "FP  ", text, boff, nch, s, i, salus_deid_rule_name((uint16_t)(pred - 1)));
		} else {
			ev->tn++;
		}
	}
	ev->leaked += leaked;
	/* entities */
	for (size_t i = 0; i < ng; i++) {
		if (ev->ignore[g[i].type])
			continue;
		ev->ent_gold++;
		ev->type_ent[g[i].type]++;
		bool strict = false, relaxed = false;
		for (size_t k = 0; k < ns; k++) {
			if (ps[2 * k] == g[i].s && ps[2 * k + 1] == g[i].e)
				strict = true;
			if (ps[2 * k] < g[i].e && ps[2 * k + 1] > g[i].s)
				relaxed = true;
		}
		ev->ent_strict += strict;
		ev->ent_relaxed_gold += relaxed;
		ev->type_ent_hit[g[i].type] += relaxed;
	}
	for (size_t k = 0; k < ns; k++) {
		bool ignored = false, relaxed = false;
		for (size_t i = 0; i < ng; i++)
			if (ps[2 * k] < g[i].e && ps[2 * k + 1] > g[i].s) {
				if (ev->ignore[g[i].type])
					ignored = true;
				else
					relaxed = true;
			}
		if (ignored && !relaxed)
			continue;
		ev->ent_pred++;
		ev->ent_relaxed_pred += relaxed;
	}
out:
	salus_free(boff);
	salus_free(cps);
	salus_free(gl);
	salus_free(pl);
	salus_free(pt);
	salus_free(ps);
	return rc;
}

/* --half: which half a note belongs to (1 or 2), from its id, else its index. */
static int note_half(json_t *doc, size_t index)
{
	json_t *id = json_object_get(doc, "id");
	uint64_t h = 0xcbf29ce484222325ull;
	if (json_is_string(id)) {
		const char *p = json_string_value(id);
		for (size_t i = 0; i < json_string_length(id); i++)
			h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	} else {
		uint64_t v = json_is_integer(id) ? (uint64_t)json_integer_value(id) : (uint64_t)index;
		for (int i = 0; i < 8; i++)
			h = (h ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
	}
	return 1 + (int)((h >> 32) & 1);
}

static int eval_doc(struct eval *ev, struct salus_deid *d, json_t *doc, size_t index, struct gold **g, size_t *gcap)
{
	if (ev->half && note_half(doc, index) != ev->half)
		return 0;
	json_t *jt = json_object_get(doc, "text");
	json_t *phi = json_object_get(doc, "phi");
	const char *ks = "start", *ke = "end", *kt = "type";
	if (!jt) { /* presidio-research format */
		jt = json_object_get(doc, "full_text");
		phi = json_object_get(doc, "spans");
		ks = "start_position";
		ke = "end_position";
		kt = "entity_type";
	}
	if (!json_is_string(jt) || (phi && !json_is_array(phi)))
		return SALUS_EINVALID;
	size_t ng = json_array_size(phi);
	if (ng > *gcap) {
		struct gold *q = salus_realloc(*g, ng * sizeof **g);
		if (!q)
			return SALUS_ENOMEM;
		*g = q;
		*gcap = ng;
	}
	for (size_t i = 0; i < ng; i++) {
		json_t *p = json_array_get(phi, i);
		json_t *t = json_object_get(p, kt);
		if (!json_is_integer(json_object_get(p, ks)) || !json_is_integer(json_object_get(p, ke)) || !json_is_string(t))
			return SALUS_EINVALID;
		json_int_t s = json_integer_value(json_object_get(p, ks)), e = json_integer_value(json_object_get(p, ke));
		if (s < 0 || e < s)
			return SALUS_EINVALID;
		(*g)[i] = (struct gold){(size_t)s, (size_t)e, type_index(ev, json_string_value(t))};
	}
	return eval_note(ev, d, json_string_value(jt), json_string_length(jt), *g, ng);
}

static double div0(double a, double b)
{
	return b > 0 ? a / b : 0;
}

static void eval_report(const struct eval *ev, bool js)
{
	double r = div0((double)ev->tp, (double)(ev->tp + ev->fn)), p = div0((double)ev->tp, (double)(ev->tp + ev->fp));
	double f1 = div0(2 * p * r, p + r), f2 = div0(5 * p * r, 4 * p + r);
	double sp = div0((double)ev->ent_strict, (double)ev->ent_pred), sr = div0((double)ev->ent_strict, (double)ev->ent_gold);
	double rp = div0((double)ev->ent_relaxed_pred, (double)ev->ent_pred),
	       rr = div0((double)ev->ent_relaxed_gold, (double)ev->ent_gold);
	double leak = div0((double)ev->leaked, (double)ev->notes), mbs = div0((double)ev->bytes / 1e6, ev->secs);
	if (js) {
		printf("{\"notes\": %zu, \"bytes\": %zu, \"token\": {\"recall\": %.4f, \"precision\": %.4f, \"f1\": %.4f, "
		       "\"f2\": %.4f, \"tp\": %zu, \"fn\": %zu, \"fp\": %zu}, "
		       "\"entity_strict\": {\"precision\": %.4f, \"recall\": %.4f, \"f1\": %.4f}, "
		       "\"entity_relaxed\": {\"precision\": %.4f, \"recall\": %.4f, \"f1\": %.4f}, "
		       "\"leak_rate\": %.4f, \"mb_per_s\": %.1f, \"per_type\": {",
		       ev->notes, ev->bytes, r, p, f1, f2, ev->tp, ev->fn, ev->fp, sp, sr, div0(2 * sp * sr, sp + sr), rp,
		       rr, div0(2 * rp * rr, rp + rr), leak, mbs);
		for (int i = 0, first = 1; i < ev->ntypes; i++) {
			if (ev->ignore[i])
				continue;
			printf("%s\"%s\": {\"tokens\": %zu, \"token_recall\": %.4f, \"entities\": %zu, \"entity_recall\": %.4f}",
			       first ? "" : ", ", ev->types[i], ev->type_tok[i],
			       div0((double)ev->type_hit[i], (double)ev->type_tok[i]), ev->type_ent[i],
			       div0((double)ev->type_ent_hit[i], (double)ev->type_ent[i]));
			first = 0;
		}
		printf("}, \"fp_by_predicted_type\": {");
		for (int t = 0, first = 1; t < SALUS_PHI__COUNT; t++) {
			if (!ev->fp_type[t])
				continue;
			printf("%s\"%s\": %zu", first ? "" : ", ", salus_phi_label((enum salus_phi)t), ev->fp_type[t]);
			first = 0;
		}
		printf("}}\n");
		return;
	}
	printf("notes %zu, %.2f MB, detector %.1f MB/s\n", ev->notes, (double)ev->bytes / 1e6, mbs);
	printf("token (type-blind)   recall %.4f  precision %.4f  F1 %.4f  F2 %.4f   (tp %zu fn %zu fp %zu)\n", r, p, f1,
	       f2, ev->tp, ev->fn, ev->fp);
	printf("entity strict        recall %.4f  precision %.4f  F1 %.4f\n", sr, sp, div0(2 * sp * sr, sp + sr));
	printf("entity relaxed       recall %.4f  precision %.4f  F1 %.4f\n", rr, rp, div0(2 * rp * rr, rp + rr));
	printf("document leak rate   %.4f  (%zu of %zu notes with a missed PHI token)\n", leak, ev->leaked, ev->notes);
	printf("per type             tokens  token-recall  entities  entity-recall(relaxed)\n");
	for (int i = 0; i < ev->ntypes; i++)
		printf("  %-18s %7zu  %12.4f  %8zu  %.4f%s\n", ev->types[i], ev->type_tok[i],
		       div0((double)ev->type_hit[i], (double)ev->type_tok[i]), ev->type_ent[i],
		       div0((double)ev->type_ent_hit[i], (double)ev->type_ent[i]), ev->ignore[i] ? "  (ignored)" : "");
	printf("false-positive tokens by predicted type:");
	for (int t = 0; t < SALUS_PHI__COUNT; t++)
		if (ev->fp_type[t])
			printf(" %s %zu", salus_phi_label((enum salus_phi)t), ev->fp_type[t]);
	printf("\n");
}

static int cmd_eval(int argc, char **argv)
{
	const char *gold = NULL, *errs_path = NULL;
	bool js = false;
	struct eval *ev = salus_calloc(1, sizeof *ev);
	if (!ev)
		return salus_cli_fail("deid eval", 1, "out of memory");
	int status = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			salus_free(ev);
			return 0;
		} else if (!strcmp(argv[i], "--gold") && i + 1 < argc)
			gold = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			js = true;
		else if (!strcmp(argv[i], "--errors") && i + 1 < argc)
			errs_path = argv[++i];
		else if (!strcmp(argv[i], "--half") && i + 1 < argc) {
			const char *h = argv[++i];
			if (strcmp(h, "a") && strcmp(h, "b")) {
				salus_free(ev);
				return salus_cli_fail("deid eval", 2, "--half takes a or b");
			}
			ev->half = h[0] == 'a' ? 1 : 2;
		}
		else if (!strcmp(argv[i], "--ignore") && i + 1 < argc)
			ev->ignore_list = argv[++i];
		else if (!strcmp(argv[i], "--threshold") && i + 1 < argc) {
			if (parse_float(argv[++i], &ev->threshold)) {
				salus_free(ev);
				return salus_cli_fail("deid eval", 2, "--threshold takes a number from 0 to 1");
			}
		}
		else {
			salus_free(ev);
			return salus_cli_fail("deid eval", 2, "unexpected argument %s (see --help)", argv[i]);
		}
	}
	if (!gold) {
		salus_free(ev);
		return salus_cli_fail("deid eval", 2, "--gold FILE is required");
	}
	FILE *f = fopen(gold, "rb");
	if (!f) {
		salus_free(ev);
		return salus_cli_fail("deid eval", 1, "cannot open the gold file");
	}
	struct salus_deid *d = NULL;
	struct gold *g = NULL;
	size_t gcap = 0, lineno = 0;
	if (errs_path) { /* note text: owner-only, never a log */
		int fd = open(errs_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || !(ev->errs = fdopen(fd, "w"))) {
			if (fd >= 0)
				close(fd);
			status = salus_cli_fail("deid eval", 1, "cannot create the --errors file");
			goto out;
		}
	}
	int rc = salus_deid_new(&d);
	if (rc) {
		status = salus_cli_fail("deid eval", 1, "detector: %s", salus_err_msg(rc));
		goto out;
	}
	if (ev->threshold > 0)
		salus_deid_set_threshold(d, ev->threshold);
	int c;
	while ((c = fgetc(f)) == ' ' || c == '\n' || c == '\t' || c == '\r')
		;
	ungetc(c, f);
	if (c == '[') { /* presidio: one JSON list */
		json_error_t je;
		json_t *all = json_loadf(f, 0, &je);
		if (!json_is_array(all)) {
			json_decref(all);
			status = salus_cli_fail("deid eval", 1, "gold file: malformed JSON list (line %d)", je.line);
			goto out;
		}
		for (size_t i = 0; i < json_array_size(all) && !rc; i++)
			rc = eval_doc(ev, d, json_array_get(all, i), i, &g, &gcap), lineno = i + 1;
		json_decref(all);
	} else {
		struct reader r;
		rc = reader_init(&r, f);
		while (!rc) {
			int got = reader_next(&r);
			if (got <= 0) {
				rc = got;
				break;
			}
			lineno++;
			if (r.line.n == 0)
				continue;
			json_error_t je;
			json_t *doc = json_loadb(r.line.p, r.line.n, 0, &je);
			rc = doc ? eval_doc(ev, d, doc, lineno - 1, &g, &gcap) : SALUS_EINVALID;
			json_decref(doc);
		}
		reader_release(&r);
	}
	if (rc) {
		status = salus_cli_fail("deid eval", 1, "gold note %zu: %s", lineno, salus_err_msg(rc));
		goto out;
	}
	eval_report(ev, js);
out:
	salus_free(g);
	salus_deid_free(d);
	fclose(f);
	if (ev->errs)
		fclose(ev->errs);
	salus_free(ev);
	return status;
}

int salus_cmd_deid(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "scan"))
		return cmd_scan(argc - 1, argv + 1);
	if (!strcmp(argv[1], "eval"))
		return cmd_eval(argc - 1, argv + 1);
	if (!strcmp(argv[1], "fhir")) {
		if (!salus_cli_deid_fhir)
			return salus_cli_fail("deid", 1, "FHIR de-identification is not built in");
		return salus_cli_deid_fhir(argc - 1, argv + 1);
	}
	return salus_cli_fail("deid", 2, "unknown subcommand '%s' (scan, eval, fhir)", argv[1]);
}
