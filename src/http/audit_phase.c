/* audit_phase.c — patients touched by a FHIR request, and its query (see audit_phase.h). */
#include "http/audit_phase.h"

#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

void salus_patient_set_release(struct salus_patient_set *ps)
{
	for (size_t i = 0; i < ps->n; i++)
		salus_free(ps->ids[i]);
	salus_free(ps->ids);
	memset(ps, 0, sizeof *ps);
}

void salus_patient_set_add(struct salus_patient_set *ps, const char *id, size_t n)
{
	/* the set first: a search's hits mostly name the same few patients again */
	for (size_t i = 0; i < ps->n; i++)
		if (!strncmp(ps->ids[i], id, n) && ps->ids[i][n] == 0)
			return;
	if (!salus_fhir_id_valid(id, n) || ps->n == SALUS_AUDIT_MAX_PATIENTS)
		return;
	if (ps->n == ps->cap) {
		size_t cap = ps->cap ? ps->cap * 2 : 8;
		char **v = salus_realloc(ps->ids, cap * sizeof *v);
		if (!v) {
			ps->nomem = 1;
			return;
		}
		ps->ids = v;
		ps->cap = cap;
	}
	char *d = salus_strndup(id, n);
	if (!d) {
		ps->nomem = 1;
		return;
	}
	ps->ids[ps->n++] = d;
}

static size_t id_len(const char *p, const char *end)
{
	size_t n = 0;
	while (p + n < end && n <= SALUS_MAX_ID) {
		char c = p[n];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			break;
		n++;
	}
	return n;
}

void salus_patient_set_scan(struct salus_patient_set *ps, const char *json, size_t n)
{
	static const char ref[] = "\"reference\":\"";
	static const char rt[] = "\"resourceType\":\"Patient\"";
	const char *end = json + n, *p = json;
	/* references: "reference":"Patient/ID..." or "...://host/fhir/Patient/ID..." */
	while (p < end && (p = memmem(p, (size_t)(end - p), ref, sizeof ref - 1))) {
		p += sizeof ref - 1;
		const char *q = memchr(p, '"', (size_t)(end - p));
		if (!q)
			break;
		const char *hit = NULL;
		if ((size_t)(q - p) > 8 && !memcmp(p, "Patient/", 8))
			hit = p + 8;
		else {
			const char *m = memmem(p, (size_t)(q - p), "/Patient/", 9);
			if (m)
				hit = m + 9;
		}
		if (hit)
			salus_patient_set_add(ps, hit, id_len(hit, q));
		p = q;
	}
	/* Patient resources themselves: the "id" that follows "resourceType":"Patient" in the same object */
	p = json;
	while (p < end && (p = memmem(p, (size_t)(end - p), rt, sizeof rt - 1))) {
		p += sizeof rt - 1;
		int depth = 0;
		for (const char *c = p; c < end; c++) {
			if (*c == '"') { /* skip a string, watching for "id" at depth 0 */
				const char *s = c + 1;
				const char *e = s;
				while (e < end && *e != '"')
					e += *e == '\\' ? 2 : 1;
				if (depth == 0 && e - s == 2 && !memcmp(s, "id", 2) && e + 2 < end && e[1] == ':' && e[2] == '"') {
					const char *v = e + 3;
					salus_patient_set_add(ps, v, id_len(v, end));
					break;
				}
				c = e;
			} else if (*c == '{' || *c == '[') {
				depth++;
			} else if (*c == '}' || *c == ']') {
				if (--depth < 0)
					break;
			}
		}
	}
}

enum salus_audit_interaction salus_audit_interaction_of(enum salus_fhir_op op)
{
	switch (op) {
	case SALUS_FHIR_CAPABILITIES: return SALUS_AUDIT_CAPABILITIES;
	case SALUS_FHIR_READ: return SALUS_AUDIT_READ;
	case SALUS_FHIR_VREAD: return SALUS_AUDIT_VREAD;
	case SALUS_FHIR_UPDATE:
	case SALUS_FHIR_COND_UPDATE: return SALUS_AUDIT_UPDATE;
	case SALUS_FHIR_DELETE:
	case SALUS_FHIR_COND_DELETE: return SALUS_AUDIT_DELETE;
	case SALUS_FHIR_CREATE: return SALUS_AUDIT_CREATE;
	case SALUS_FHIR_SEARCH_TYPE: return SALUS_AUDIT_SEARCH;
	case SALUS_FHIR_HISTORY_INSTANCE: return SALUS_AUDIT_HISTORY;
	case SALUS_FHIR_HISTORY_TYPE: return SALUS_AUDIT_HISTORY_TYPE;
	case SALUS_FHIR_HISTORY_SYSTEM: return SALUS_AUDIT_HISTORY_SYSTEM;
	case SALUS_FHIR_BUNDLE: return SALUS_AUDIT_BATCH;
	case SALUS_FHIR_PATCH:
	case SALUS_FHIR_COND_PATCH: return SALUS_AUDIT_PATCH;
	case SALUS_FHIR_VALIDATE: return SALUS_AUDIT_OPERATION;
	case SALUS_FHIR_SEARCH_SYSTEM: return SALUS_AUDIT_SEARCH_SYSTEM;
	case SALUS_FHIR_SEARCH_COMPARTMENT: return SALUS_AUDIT_SEARCH;
	case SALUS_FHIR_EVERYTHING: return SALUS_AUDIT_OPERATION;
	}
	return SALUS_AUDIT_OPERATION;
}

static int add_enc(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~:|,$/", c))
			rc = salus_buf_addc(b, (char)c);
		else
			rc = salus_buf_addf(b, "%%%c%c", hex[c >> 4], hex[c & 15]);
	}
	return rc;
}

int salus_query_string(struct salus_buf *out, const struct salus_param *p, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (i)
			rc = salus_buf_addc(out, '&');
		if (!rc)
			rc = add_enc(out, p[i].name);
		if (!rc)
			rc = salus_buf_addc(out, '=');
		if (!rc)
			rc = add_enc(out, p[i].value);
	}
	return rc;
}
