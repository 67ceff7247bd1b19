/*
 * json.c — strict JSON input for FHIR bodies and small JSON output helpers.
 * Parse errors never echo input bytes (they may be PHI): position only.
 */
#include <stdio.h>
#include <string.h>

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

int salus_json_parse_strict(const char *p, size_t n, json_t **out, char *why, size_t why_len)
{
	if (n == 0) {
		snprintf(why, why_len, "request body is empty");
		return SALUS_EINVALID;
	}
	if (!depth_ok(p, n)) {
		snprintf(why, why_len, "JSON nesting deeper than %d levels", SALUS_MAX_JSON_DEPTH);
		return SALUS_EINVALID;
	}
	json_error_t err;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &err);
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
