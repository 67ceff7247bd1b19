/*
 * validate.c — FHIR R4 resource validation (see validate.h).
 *
 * One depth-first walk over the JSON, guided by the generated element
 * tables: each object is checked against the children of its (type,
 * element) pair — names, JSON shapes, cardinality, choice types, primitive
 * formats, bindings, reference shapes — and the invariants are evaluated
 * where their context occurs.  The structural invariants that hold on every
 * element (ele-1: an element has a value or children) are checked in C as
 * part of the walk; the others run through the FHIRPath evaluator with the
 * expressions of the definitions (table `invs`, compared with the
 * definitions by tests/unit/fhir/test_validate.c).
 *
 * Cost: no allocation while a resource is valid — the path is a fixed
 * buffer, issues are allocated only when one is found, and the FHIRPath
 * workspace starts in a stack buffer.
 */
#include "fhir/validate.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"
#include "fhir/json_out.h"
#include "fhir/rest.h"

/* ---- invariants ----------------------------------------------------------- */

/* Expressions exactly as in the R4 definitions (checked by the unit test). */
static const struct inv {
	const char *key;
	const char *ctx; /* a type name, or a path to a backbone element */
	const char *human;
	const char *expr;
} invs[] = {
	{"dom-2", "DomainResource", "If the resource is contained in another resource, it SHALL NOT contain nested Resources",
	 "contained.contained.empty()"},
	{"dom-3", "DomainResource",
	 "If the resource is contained in another resource, it SHALL be referred to from elsewhere in the resource or "
	 "SHALL refer to the containing resource",
	 "contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical) | "
	 "%resource.descendants().as(uri) | %resource.descendants().as(url))) or descendants().where(reference = "
	 "'#').exists() or descendants().where(as(canonical) = '#').exists() or descendants().where(as(canonical) = "
	 "'#').exists()).not()).trace('unmatched', id).empty()"},
	{"dom-4", "DomainResource",
	 "If a resource is contained in another resource, it SHALL NOT have a meta.versionId or a meta.lastUpdated",
	 "contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()"},
	{"dom-5", "DomainResource", "If a resource is contained in another resource, it SHALL NOT have a security label",
	 "contained.meta.security.empty()"},
	{"ext-1", "Extension", "Must have either extensions or value[x], not both", "extension.exists() != value.exists()"},
	{"ref-1", "Reference", "SHALL have a contained resource if a local reference is provided",
	 "reference.startsWith('#').not() or (reference.substring(1).trace('url') in "
	 "%rootResource.contained.id.trace('ids'))"},
	{"pat-1", "Patient.contact", "SHALL at least contain a contact's details or a reference to an organization",
	 "name.exists() or telecom.exists() or address.exists() or organization.exists()"},
	{"obs-6", "Observation", "dataAbsentReason SHALL only be present if Observation.value[x] is not present",
	 "dataAbsentReason.empty() or value.empty()"},
	{"obs-7", "Observation",
	 "If Observation.code is the same as an Observation.component.code then the value element associated with the "
	 "code SHALL NOT be present",
	 "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"},
	{"bdl-1", "Bundle", "total only when a search or history",
	 "total.empty() or (type = 'searchset') or (type = 'history')"},
	{"bdl-2", "Bundle", "entry.search only when a search", "entry.search.empty() or (type = 'searchset')"},
	{"bdl-3", "Bundle", "entry.request mandatory for batch/transaction/history, otherwise prohibited",
	 "entry.all(request.exists() = (%resource.type = 'batch' or %resource.type = 'transaction' or %resource.type = "
	 "'history'))"},
	{"bdl-4", "Bundle", "entry.response mandatory for batch-response/transaction-response/history, otherwise prohibited",
	 "entry.all(response.exists() = (%resource.type = 'batch-response' or %resource.type = 'transaction-response' "
	 "or %resource.type = 'history'))"},
	{"bdl-5", "Bundle.entry", "must be a resource unless there's a request or response",
	 "resource.exists() or request.exists() or response.exists()"},
	{"bdl-7", "Bundle", "FullUrl must be unique in a bundle, or else entries with the same fullUrl must have different "
			    "meta.versionId (except in history bundles)",
	 "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()"},
	{"bdl-8", "Bundle.entry", "fullUrl cannot be a version specific reference",
	 "fullUrl.exists() implies fullUrl.contains('/_history/').not()"},
	{"bdl-9", "Bundle", "A document must have an identifier with a system and a value",
	 "type = 'document' implies (identifier.system.exists() and identifier.value.exists())"},
	{"bdl-10", "Bundle", "A document must have a date", "type = 'document' implies (timestamp.hasValue())"},
	{"bdl-11", "Bundle", "A document must have a Composition as the first resource",
	 "type = 'document' implies entry.first().resource.is(Composition)"},
	{"bdl-12", "Bundle", "A message must have a MessageHeader as the first resource",
	 "type = 'message' implies entry.first().resource.is(MessageHeader)"},
};
#define NINVS (sizeof invs / sizeof invs[0])

static pthread_mutex_t inv_mu = PTHREAD_MUTEX_INITIALIZER;
static bool inv_ready;
static const struct salus_fp_expr *inv_expr[NINVS];
static const struct salus_fhir_type *inv_type[NINVS]; /* type context */
static const struct salus_fhir_elem *inv_elem[NINVS]; /* element context */

int salus_fhir_validate_invariant_at(size_t i, const char **key, const char **context, const char **expression)
{
	if (i >= NINVS)
		return SALUS_ENOTFOUND;
	*key = invs[i].key;
	*context = invs[i].ctx;
	*expression = invs[i].expr;
	return 0;
}

static int inv_init(void)
{
	int rc = 0;
	pthread_mutex_lock(&inv_mu);
	for (size_t i = 0; !inv_ready && i < NINVS && !rc; i++) {
		rc = salus_fp_cached(invs[i].expr, &inv_expr[i]);
		if (strchr(invs[i].ctx, '.'))
			inv_elem[i] = salus_fhir_elem_find(invs[i].ctx, strlen(invs[i].ctx));
		else
			inv_type[i] = salus_fhir_type_find(invs[i].ctx, strlen(invs[i].ctx));
	}
	if (!rc)
		inv_ready = true;
	pthread_mutex_unlock(&inv_mu);
	return rc;
}

/* ---- issues --------------------------------------------------------------- */

enum icode { IC_STRUCTURE, IC_REQUIRED, IC_VALUE, IC_INVARIANT, IC_CODE_INVALID, IC_INVALID, IC_TOO_COSTLY };
static const char *const icode_name[] = {"structure", "required", "value", "invariant", "code-invalid", "invalid",
					 "too-costly"};

struct issue {
	bool error;
	enum icode code;
	char diag[240];
	char expr[400];
};

#define PATH_MAX_LEN 380

struct vctx {
	struct issue *iss;
	size_t n, cap;
	int nerr;
	bool structural; /* an error other than a failed invariant */
	int rc;          /* SALUS_ENOMEM */
	char path[PATH_MAX_LEN + 8];
	size_t plen;
	struct salus_fp_ctx fp;
	int depth;
	const struct salus_fhir_type *t_element, *t_extension, *t_reference, *t_coding, *t_cc, *t_resource,
		*t_narrative, *t_domain;
};

static void add_issue(struct vctx *V, bool error, enum icode code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_issue(struct vctx *V, bool error, enum icode code, const char *fmt, ...)
{
	if (error) {
		V->nerr++;
		if (code != IC_INVARIANT)
			V->structural = true;
	}
	if (V->n >= SALUS_VALIDATE_MAX_ISSUES || V->rc)
		return;
	if (V->n == V->cap) {
		size_t nc = V->cap ? V->cap * 2 : 8;
		struct issue *ni = salus_realloc(V->iss, nc * sizeof *ni);
		if (!ni) {
			V->rc = SALUS_ENOMEM;
			return;
		}
		V->iss = ni;
		V->cap = nc;
	}
	struct issue *is = &V->iss[V->n++];
	is->error = error;
	is->code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(is->diag, sizeof is->diag, fmt, ap);
	va_end(ap);
	snprintf(is->expr, sizeof is->expr, "%.*s", (int)V->plen, V->path);
}

/* Only element names that look like names are echoed (keys are client input). */
static bool safe_name(const char *k)
{
	size_t n = strlen(k);
	if (!n || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9') ||
		      k[i] == '_'))
			return false;
	return true;
}

/* Path segments: push returns the old length to restore. */
static size_t path_push(struct vctx *V, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t path_push(struct vctx *V, const char *fmt, ...)
{
	size_t old = V->plen;
	if (V->plen >= PATH_MAX_LEN)
		return old;
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(V->path + V->plen, PATH_MAX_LEN - V->plen + 1, fmt, ap);
	va_end(ap);
	if (k < 0)
		return old;
	V->plen += (size_t)k;
	if (V->plen > PATH_MAX_LEN)
		V->plen = PATH_MAX_LEN;
	return old;
}

static void path_pop(struct vctx *V, size_t old)
{
	V->plen = old;
	V->path[old] = 0;
}

/* Append raw bytes (the hot path: no printf per element). */
static size_t path_addn(struct vctx *V, const char *s, size_t n)
{
	size_t old = V->plen;
	if (V->plen + n > PATH_MAX_LEN)
		n = PATH_MAX_LEN - V->plen;
	memcpy(V->path + V->plen, s, n);
	V->plen += n;
	V->path[V->plen] = 0;
	return old;
}

static size_t path_name(struct vctx *V, const char *name)
{
	size_t old = path_addn(V, ".", 1);
	path_addn(V, name, strlen(name));
	return old;
}

static size_t path_index(struct vctx *V, size_t i)
{
	char b[24];
	size_t k = sizeof b;
	b[--k] = ']';
	do
		b[--k] = (char)('0' + i % 10);
	while ((i /= 10) && k > 1);
	b[--k] = '[';
	return path_addn(V, b + k, sizeof b - k);
}

static size_t path_key(struct vctx *V, const char *key)
{
	return safe_name(key) ? path_name(V, key) : path_addn(V, ".(unknown)", 10);
}

/* ---- primitive formats ---------------------------------------------------- */

static bool dig(char c)
{
	return c >= '0' && c <= '9';
}

static bool num2(const char *s, int lo, int hi)
{
	if (!dig(s[0]) || !dig(s[1]))
		return false;
	int v = (s[0] - '0') * 10 + (s[1] - '0');
	return v >= lo && v <= hi;
}

/* YYYY, YYYY-MM, YYYY-MM-DD; returns chars used or 0 */
static size_t date_part(const char *s, size_t n, bool full)
{
	if (n < 4 || !dig(s[0]) || !dig(s[1]) || !dig(s[2]) || !dig(s[3]))
		return 0;
	if (s[0] == '0' && s[1] == '0' && s[2] == '0' && s[3] == '0')
		return 0;
	if (n == 4 || s[4] != '-')
		return full ? 0 : 4;
	if (n < 7 || !num2(s + 5, 1, 12))
		return 0;
	if (n == 7 || s[7] != '-')
		return full ? 0 : 7;
	if (n < 10 || !num2(s + 8, 1, 31))
		return 0;
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0'), d = (s[8] - '0') * 10 + (s[9] - '0');
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (d > mdays[m - 1] || (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)))
		return 0;
	return 10;
}

/* hh:mm:ss(.f+)? ; returns chars used or 0 */
static size_t time_part(const char *s, size_t n)
{
	if (n < 8 || !num2(s, 0, 23) || s[2] != ':' || !num2(s + 3, 0, 59) || s[5] != ':' || !num2(s + 6, 0, 60))
		return 0;
	size_t i = 8;
	if (i < n && s[i] == '.') {
		i++;
		size_t st = i;
		while (i < n && dig(s[i]))
			i++;
		if (i == st)
			return 0;
	}
	return i;
}

static bool tz_ok(const char *s, size_t n)
{
	if (n == 1 && s[0] == 'Z')
		return true;
	return n == 6 && (s[0] == '+' || s[0] == '-') && num2(s + 1, 0, 14) && s[3] == ':' && num2(s + 4, 0, 59);
}

static bool is_date(const char *s, size_t n)
{
	return date_part(s, n, false) == n;
}

static bool is_datetime(const char *s, size_t n, bool instant)
{
	size_t d = date_part(s, n, instant);
	if (!d)
		return false;
	if (d == n)
		return !instant;
	if (d != 10 || s[10] != 'T')
		return false;
	size_t t = time_part(s + 11, n - 11);
	if (!t)
		return false;
	return tz_ok(s + 11 + t, n - 11 - t);
}

static bool is_time(const char *s, size_t n)
{
	return time_part(s, n) == n;
}

static bool is_id(const char *s, size_t n)
{
	if (n == 0 || n > SALUS_MAX_ID)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || dig(c) || c == '-' || c == '.'))
			return false;
	}
	return true;
}

static bool is_code(const char *s, size_t n)
{
	if (!n || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\t' || c == '\r' || c == '\n' || (c == ' ' && s[i + 1] == ' '))
			return false;
		if (c < 0x20)
			return false;
	}
	return true;
}

static bool no_ws(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20)
			return false;
	return true;
}

static bool is_hexlower(char c)
{
	return dig(c) || (c >= 'a' && c <= 'f');
}

static bool is_uuid(const char *s, size_t n)
{
	if (n != 45 || memcmp(s, "urn:uuid:", 9))
		return false;
	for (size_t i = 0; i < 36; i++) {
		char c = s[9 + i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!is_hexlower(c)) {
			return false;
		}
	}
	return true;
}

static bool is_oid(const char *s, size_t n)
{
	if (n < 10 || memcmp(s, "urn:oid:", 8) || s[8] < '0' || s[8] > '2')
		return false;
	size_t i = 9;
	if (i >= n)
		return false;
	while (i < n) {
		if (s[i] != '.' || i + 1 >= n)
			return false;
		i++;
		if (!dig(s[i]))
			return false;
		if (s[i] == '0' && i + 1 < n && dig(s[i + 1]))
			return false;
		while (i < n && dig(s[i]))
			i++;
	}
	return true;
}

static bool is_base64(const char *s, size_t n)
{
	size_t k = 0, pad = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
		} else {
			if (pad)
				return false;
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || dig(c) || c == '+' || c == '/'))
				return false;
		}
		k++;
	}
	return k % 4 == 0 && pad <= 2;
}

/* string: no control characters other than CR, LF and TAB */
static bool is_string(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x20 && c != '\r' && c != '\n' && c != '\t')
			return false;
	}
	return true;
}

static bool all_ws(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
			return false;
	return true;
}

/* Map the type code of an element to the primitive checked; NULL if not a primitive. */
static const char *prim_code(const char *code)
{
	const char *d = strstr(code, "System.");
	if (d)
		return d; /* System.String ... */
	if (code[0] >= 'a' && code[0] <= 'z')
		return code;
	return NULL;
}

/* The format class of a primitive type code (prim_code's result): one
 * strcmp or two per value instead of a chain of them. */
enum prim_kind { PK_BOOL, PK_INT, PK_DEC, PK_ID, PK_DATE, PK_DATETIME, PK_INSTANT, PK_TIME, PK_CODE, PK_URI, PK_OID,
		 PK_UUID, PK_B64, PK_XHTML, PK_STRING };

static enum prim_kind prim_kind(const char *c)
{
	switch (c[0]) {
	case 'b':
		return !strcmp(c, "boolean") ? PK_BOOL : !strcmp(c, "base64Binary") ? PK_B64 : PK_STRING;
	case 'i':
		return !strcmp(c, "integer")   ? PK_INT
		       : !strcmp(c, "id")      ? PK_ID
		       : !strcmp(c, "instant") ? PK_INSTANT
					       : PK_STRING;
	case 'u':
		return !strcmp(c, "unsignedInt") ? PK_INT
		       : !strcmp(c, "uri") || !strcmp(c, "url") ? PK_URI
		       : !strcmp(c, "uuid")			  ? PK_UUID
								  : PK_STRING;
	case 'p': return !strcmp(c, "positiveInt") ? PK_INT : PK_STRING;
	case 'd':
		return !strcmp(c, "decimal")    ? PK_DEC
		       : !strcmp(c, "date")     ? PK_DATE
		       : !strcmp(c, "dateTime") ? PK_DATETIME
						: PK_STRING;
	case 't': return !strcmp(c, "time") ? PK_TIME : PK_STRING;
	case 'c': return !strcmp(c, "code") ? PK_CODE : !strcmp(c, "canonical") ? PK_URI : PK_STRING;
	case 'o': return !strcmp(c, "oid") ? PK_OID : PK_STRING;
	case 'x': return !strcmp(c, "xhtml") ? PK_XHTML : PK_STRING;
	case 'S':
		if (strncmp(c, "System.", 7))
			return PK_STRING;
		c += 7;
		return !strcmp(c, "Boolean") ? PK_BOOL
		       : !strcmp(c, "Integer") ? PK_INT
		       : !strcmp(c, "Decimal") ? PK_DEC
		       : !strcmp(c, "Date")    ? PK_DATE
		       : !strcmp(c, "DateTime") ? PK_DATETIME
		       : !strcmp(c, "Time")    ? PK_TIME
						: PK_STRING;
	default: return PK_STRING;
	}
}

static void check_primitive(struct vctx *V, const char *code, const json_t *v, bool is_resource_id)
{
	enum prim_kind pk = prim_kind(code);
	if (pk == PK_BOOL) {
		if (!json_is_boolean(v))
			add_issue(V, true, IC_VALUE, "expected a JSON boolean (true or false)");
		return;
	}
	if (pk == PK_INT) {
		if (!json_is_integer(v)) {
			add_issue(V, true, IC_VALUE, "expected a JSON integer number for %s", code);
			return;
		}
		json_int_t x = json_integer_value(v);
		long long lo = code[0] == 'u' ? 0 : code[0] == 'p' ? 1 : -2147483648LL;
		if (x < lo || x > 2147483647LL)
			add_issue(V, true, IC_VALUE, "value out of range for %s", code);
		return;
	}
	if (pk == PK_DEC) {
		if (!json_is_number(v))
			add_issue(V, true, IC_VALUE, "expected a JSON number for decimal");
		return;
	}
	if (!json_is_string(v)) {
		add_issue(V, true, IC_VALUE, "expected a JSON string for %s", code);
		return;
	}
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);
	if (n == 0) {
		add_issue(V, true, IC_VALUE, "empty string is not allowed (omit the element instead)");
		return;
	}
	if (n > 1024u * 1024u && pk != PK_B64 && pk != PK_XHTML) {
		add_issue(V, true, IC_VALUE, "string longer than 1 MB");
		return;
	}
	bool ok = true;
	const char *what = code;
	if (is_resource_id || pk == PK_ID) {
		ok = is_id(s, n);
		what = "id";
	} else if (pk == PK_DATE) {
		ok = is_date(s, n);
	} else if (pk == PK_DATETIME) {
		ok = is_datetime(s, n, false);
	} else if (pk == PK_INSTANT) {
		ok = is_datetime(s, n, true);
	} else if (pk == PK_TIME) {
		ok = is_time(s, n);
	} else if (pk == PK_CODE) {
		ok = is_code(s, n);
	} else if (pk == PK_URI) {
		ok = no_ws(s, n);
	} else if (pk == PK_OID) {
		ok = is_oid(s, n);
	} else if (pk == PK_UUID) {
		ok = is_uuid(s, n);
	} else if (pk == PK_B64) {
		ok = is_base64(s, n);
	} else if (pk == PK_XHTML) {
		size_t i = 0;
		while (i < n && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
			i++;
		ok = n - i >= 5 && !memcmp(s + i, "<div", 4);
		what = "xhtml (must be a <div> element)";
	} else { /* string, markdown, System.String */
		ok = is_string(s, n) && !all_ws(s, n);
		what = "string (control characters or only whitespace)";
	}
	if (!ok)
		add_issue(V, true, IC_VALUE, "invalid %s format", what);
}

/* ---- bindings ---------------------------------------------------------------- */

/* Does the value set contain any code of `system`? */
static bool vs_has_system(const struct salus_fhir_vs *vs, const char *sys, size_t sn)
{
	size_t n = salus_fhir_vs_code_count(vs);
	for (size_t i = 0; i < n; i++) {
		const char *s, *c;
		if (!salus_fhir_vs_code_at(vs, i, &s, &c) && strlen(s) == sn && !memcmp(s, sys, sn))
			return true;
	}
	return false;
}

/* One Coding against a required value set: 1 in, 0 not in (system of the set), -1 other system / unknown. */
static int coding_in(const struct salus_fhir_vs *vs, const json_t *coding)
{
	const json_t *sys = json_object_get(coding, "system"), *code = json_object_get(coding, "code");
	if (!json_is_string(code))
		return -1;
	const char *s = json_is_string(sys) ? json_string_value(sys) : NULL;
	size_t sn = s ? json_string_length(sys) : 0;
	enum salus_fhir_vs_result r =
		salus_fhir_vs_check(vs, s, sn, json_string_value(code), json_string_length(code));
	if (r == SALUS_FHIR_VS_IN)
		return 1;
	if (r == SALUS_FHIR_VS_UNKNOWN)
		return -1;
	if (s && !vs_has_system(vs, s, sn))
		return -1;
	return 0;
}

static void check_binding(struct vctx *V, const struct salus_fhir_elem_info *ei, const char *code, const json_t *v)
{
	const struct salus_fhir_vs *vs = ei->valueset;
	if (ei->strength != SALUS_FHIR_BIND_REQUIRED || !vs || !salus_fhir_vs_expanded(vs))
		return;
	if (!strcmp(code, "code") || !strcmp(code, "string") || !strcmp(code, "uri")) {
		if (json_is_string(v) && json_string_length(v) &&
		    salus_fhir_vs_check(vs, NULL, 0, json_string_value(v), json_string_length(v)) == SALUS_FHIR_VS_NOT_IN)
			add_issue(V, true, IC_CODE_INVALID, "code is not in the required value set %s",
				  salus_fhir_vs_url(vs));
		return;
	}
	if (!strcmp(code, "Coding")) {
		if (json_is_object(v) && coding_in(vs, v) == 0)
			add_issue(V, true, IC_CODE_INVALID, "coding is not in the required value set %s",
				  salus_fhir_vs_url(vs));
		return;
	}
	if (!strcmp(code, "CodeableConcept")) {
		const json_t *codings = json_is_object(v) ? json_object_get(v, "coding") : NULL;
		size_t i;
		json_t *c;
		bool any_in = false, any_not = false;
		json_array_foreach (codings, i, c) {
			if (!json_is_object(c))
				continue;
			int r = coding_in(vs, c);
			any_in |= r == 1;
			any_not |= r == 0;
		}
		if (any_not && !any_in)
			add_issue(V, true, IC_CODE_INVALID, "no coding is in the required value set %s",
				  salus_fhir_vs_url(vs));
	}
}

/* ---- references --------------------------------------------------------------- */

static bool ref_type_allowed(const struct salus_fhir_elem *e, size_t ti, const char *type, size_t tn)
{
	size_t nt = salus_fhir_elem_target_count(e, ti);
	if (!nt)
		return true;
	for (size_t j = 0; j < nt; j++) {
		const char *tg = salus_fhir_elem_target_at(e, ti, j);
		if (!strcmp(tg, "Resource") || (strlen(tg) == tn && !memcmp(tg, type, tn)))
			return true;
		/* an abstract or base target (DomainResource) admits its descendants */
		const struct salus_fhir_type *tt = salus_fhir_type_find(tg, strlen(tg)),
					     *rt = salus_fhir_type_find(type, tn);
		if (tt && rt && salus_fhir_type_is_a(rt, tt))
			return true;
	}
	return false;
}

struct res_ctx {
	const json_t *resource; /* the resource being walked (%resource) */
	const json_t *root;     /* its container, or itself (%rootResource) */
	bool contained;
};

static bool contained_has(const json_t *root, const char *id, size_t n)
{
	size_t i;
	json_t *c;
	json_array_foreach (json_object_get(root, "contained"), i, c) {
		const json_t *cid = json_object_get(c, "id");
		if (json_is_string(cid) && json_string_length(cid) == n && !memcmp(json_string_value(cid), id, n))
			return true;
	}
	return false;
}

static void check_reference(struct vctx *V, const struct res_ctx *R, const struct salus_fhir_elem *e, size_t ti,
			    const json_t *v)
{
	const json_t *ref = json_object_get(v, "reference");
	if (!json_is_string(ref) || !json_string_length(ref))
		return; /* type errors reported by the walk */
	const char *s = json_string_value(ref);
	size_t n = json_string_length(ref);
	size_t old = path_push(V, ".reference");
	if (s[0] == '#') {
		if (n == 1) {
			if (!R->contained)
				add_issue(V, true, IC_INVALID, "a reference to '#' (the container) is only allowed in a "
							       "contained resource");
		} else if (!contained_has(R->root, s + 1, n - 1)) {
			add_issue(V, true, IC_INVARIANT,
				  "Constraint failed: ref-1: SHALL have a contained resource if a local reference is provided");
		}
		path_pop(V, old);
		return;
	}
	if (!strncmp(s, "urn:uuid:", 9)) {
		if (!is_uuid(s, n))
			add_issue(V, true, IC_VALUE, "invalid urn:uuid reference");
		path_pop(V, old);
		return;
	}
	if (!strncmp(s, "urn:oid:", 8)) {
		if (!is_oid(s, n))
			add_issue(V, true, IC_VALUE, "invalid urn:oid reference");
		path_pop(V, old);
		return;
	}
	if (!no_ws(s, n)) {
		add_issue(V, true, IC_VALUE, "invalid reference format (whitespace)");
		path_pop(V, old);
		return;
	}
	/* absolute URL, relative Type/id[/_history/v], or conditional Type?query */
	const char *colon = memchr(s, ':', n), *slash = memchr(s, '/', n), *q = memchr(s, '?', n);
	bool absolute = colon && (!slash || colon < slash) && (!q || colon < q);
	const char *type = NULL;
	size_t tn = 0;
	if (!absolute) {
		const char *end = slash ? slash : q ? q : s + n;
		type = s;
		tn = (size_t)(end - s);
		if (!salus_fhir_is_resource_type(type, tn)) {
			add_issue(V, true, IC_VALUE, "invalid reference format (expected Type/id, an absolute URL, urn:uuid:, "
						    "urn:oid: or #id)");
			path_pop(V, old);
			return;
		}
		if (slash && (!q || slash < q)) {
			const char *id = slash + 1, *idend = memchr(id, '/', (size_t)(s + n - id));
			size_t idn = (size_t)((idend ? idend : s + n) - id);
			bool ok = is_id(id, idn);
			if (ok && idend) {
				const char *h = idend + 1;
				size_t hn = (size_t)(s + n - h);
				ok = hn > 9 && !memcmp(h, "_history/", 9) && is_id(h + 9, hn - 9);
			}
			if (!ok) {
				add_issue(V, true, IC_VALUE, "invalid reference format (expected Type/id)");
				path_pop(V, old);
				return;
			}
		} else if (!q) {
			add_issue(V, true, IC_VALUE, "invalid reference format (expected Type/id)");
			path_pop(V, old);
			return;
		}
	} else {
		/* .../Type/id or .../Type/id/_history/v: check the type when it is recognisable */
		const char *end = s + n, *h = NULL;
		for (const char *p = s; p + 10 <= end; p++)
			if (!memcmp(p, "/_history/", 10))
				h = p;
		if (h)
			end = h;
		const char *idstart = end;
		while (idstart > s && idstart[-1] != '/')
			idstart--;
		if (idstart > s + 1) {
			const char *ts = idstart - 1;
			while (ts > s && ts[-1] != '/')
				ts--;
			if (salus_fhir_is_resource_type(ts, (size_t)(idstart - 1 - ts))) {
				type = ts;
				tn = (size_t)(idstart - 1 - ts);
			}
		}
	}
	if (type && !ref_type_allowed(e, ti, type, tn))
		add_issue(V, true, IC_STRUCTURE, "reference to a resource type that this element does not allow");
	path_pop(V, old);
}

/* ---- the walk ----------------------------------------------------------------- */

static void walk_object(struct vctx *V, const struct res_ctx *R, const json_t *obj, const struct salus_fhir_type *t,
			const struct salus_fhir_elem *pe, bool resource_root);
static void validate_resource(struct vctx *V, const json_t *obj, const char *expected, const json_t *root,
			      bool contained);

static void eval_inv(struct vctx *V, const struct res_ctx *R, size_t i, const struct salus_fp_item *context)
{
	int b = -1;
	salus_fp_ctx_reset(&V->fp);
	int rc = salus_fp_eval_bool(&V->fp, inv_expr[i], R->resource, R->root, context, &b);
	if (rc == SALUS_ENOMEM) {
		V->rc = rc;
		return;
	}
	if (rc == SALUS_ETOOLARGE) {
		add_issue(V, true, IC_TOO_COSTLY, "Constraint %s could not be checked: the resource is too complex",
			  invs[i].key);
		return;
	}
	if (rc) {
		add_issue(V, true, IC_INVARIANT, "Constraint %s could not be evaluated on this content", invs[i].key);
		return;
	}
	if (b == 0)
		add_issue(V, true, IC_INVARIANT, "Constraint failed: %s: %s", invs[i].key, invs[i].human);
}

/* obs-6 is "dataAbsentReason.empty() or ..." and obs-7 "value.empty() or
 * component.code.where(...).empty()": on an Observation without
 * dataAbsentReason (obs-6), or without any value[x] or without any component
 * (obs-7), one operand is true and so is the invariant.  Most Observations
 * lack one or the other, and these two were the bulk of the FHIRPath time of
 * a Synthea ingest (obs-7 on Observations with a value and no component was
 * still 4,370 evaluations per 11k resources). */
static bool obs_vacuous(size_t i, const json_t *obj)
{
	if (!strcmp(invs[i].key, "obs-6"))
		return !json_object_get(obj, "dataAbsentReason");
	if (strcmp(invs[i].key, "obs-7"))
		return false;
	if (!json_object_get(obj, "component"))
		return true;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)obj, k, v) {
		const char *kk = k[0] == '_' ? k + 1 : k; /* "_valueString": a value with only extensions */
		if (!strncmp(kk, "value", 5) && kk[5] >= 'A' && kk[5] <= 'Z')
			return false;
	}
	return true;
}

/* A descendant object of the resource (not the resource itself) whose
 * `reference` is the string want: a term of dom-3's
 * `%resource.descendants().reference`.  Values under "_x" keys are not
 * looked at (they could only add matches). */
static bool ref_to(const json_t *v, const char *want, bool root)
{
	const char *k;
	const json_t *x;
	size_t i;
	if (json_is_array(v)) {
		json_array_foreach ((json_t *)(uintptr_t)v, i, x)
			if (ref_to(x, want, false))
				return true;
		return false;
	}
	if (!json_is_object(v))
		return false;
	if (!root && json_is_string(x = json_object_get(v, "reference")) && json_string_length(x) == strlen(want) &&
	    !strcmp(json_string_value(x), want))
		return true;
	json_object_foreach ((json_t *)(uintptr_t)v, k, x) {
		if (k[0] != '_' && (json_is_object(x) || json_is_array(x)) && ref_to(x, want, false))
			return true;
	}
	return false;
}

/* dom-2..dom-5 on a resource with contained resources, when C can tell that
 * they hold (the FHIRPath evaluation, with four %resource.descendants()
 * walks per contained resource in dom-3, was half of all validation time
 * on Synthea ExplanationOfBenefits): dom-2 when no contained resource has
 * `contained`, dom-4 / dom-5 when none has meta.versionId / lastUpdated /
 * security, dom-3 when each contained resource has an id and a descendant
 * of the resource refers to it as `#id` (its first alternative).  Only
 * after a walk without structural errors, so that every `reference` key is
 * an element FHIRPath navigates to.  False: evaluate the FHIRPath. */
static bool dom_holds(const struct vctx *V, size_t i, const json_t *obj)
{
	const char *key = invs[i].key;
	const json_t *list = json_object_get(obj, "contained"), *cr;
	size_t k;
	if (V->structural || !json_is_array(list) || strncmp(key, "dom-", 4))
		return false;
	json_array_foreach ((json_t *)(uintptr_t)list, k, cr) {
		if (!json_is_object(cr))
			return false;
		const json_t *meta = json_object_get(cr, "meta");
		if (!strcmp(key, "dom-2") && (json_object_get(cr, "contained") || json_object_get(cr, "_contained")))
			return false;
		if (!strcmp(key, "dom-4") && meta &&
		    (!json_is_object(meta) || json_object_get(meta, "versionId") || json_object_get(meta, "_versionId") ||
		     json_object_get(meta, "lastUpdated") || json_object_get(meta, "_lastUpdated")))
			return false;
		if (!strcmp(key, "dom-5") && meta && (!json_is_object(meta) || json_object_get(meta, "security")))
			return false;
		if (!strcmp(key, "dom-3")) {
			const json_t *id = json_object_get(cr, "id");
			char want[SALUS_MAX_ID + 2];
			if (!json_is_string(id) || json_string_length(id) > SALUS_MAX_ID)
				return false;
			want[0] = '#';
			memcpy(want + 1, json_string_value(id), json_string_length(id) + 1);
			if (strlen(want) != json_string_length(id) + 1 || !ref_to(obj, want, true))
				return false;
		}
	}
	return true;
}

/* Invariants whose context is a data type (Extension, Reference). */
static void type_invariants(struct vctx *V, const struct res_ctx *R, const json_t *obj, const struct salus_fhir_type *t)
{
	/* ref-1 is checked by check_reference, ext-1 here: the same rules as the
	 * FHIRPath in `invs`, in C because they run on every Reference and every
	 * Extension (through FHIRPath ext-1 alone halved validation throughput). */
	(void)R;
	if (t != V->t_extension)
		return;
	bool has_ext = json_object_get(obj, "extension") != NULL, has_val = false;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)obj, k, v) {
		const char *kk = k[0] == '_' ? k + 1 : k; /* "_valueString": a value with only extensions */
		if (!strncmp(kk, "value", 5) && kk[5] >= 'A' && kk[5] <= 'Z')
			has_val = true;
	}
	if (has_ext == has_val)
		add_issue(V, true, IC_INVARIANT, "Constraint failed: ext-1: %s", invs[4].human);
}

static void elem_invariants(struct vctx *V, const struct res_ctx *R, const json_t *obj, const struct salus_fhir_type *t,
			    const struct salus_fhir_elem *e)
{
	for (size_t i = 0; i < NINVS; i++) {
		if (inv_elem[i] != e)
			continue;
		struct salus_fp_item it;
		salus_fp_item_typed(obj, t, e, &it);
		eval_inv(V, R, i, &it);
	}
}

/* True when the element is not at the root of its type ("Patient.id" is, "Patient.contact.name" is not). */
static bool pe_of(const struct salus_fhir_elem_info *ei)
{
	return strchr(ei->path, '.') != strrchr(ei->path, '.');
}

/* Check one value (not an array) of element e, chosen type ti. */
static void check_value(struct vctx *V, const struct res_ctx *R, const json_t *v, const struct salus_fhir_type *t,
			const struct salus_fhir_elem *e, const struct salus_fhir_elem_info *ei, size_t ti)
{
	if (json_is_null(v)) {
		add_issue(V, true, IC_STRUCTURE, "null is not allowed");
		return;
	}
	if (ei->content_ref) {
		if (!json_is_object(v)) {
			add_issue(V, true, IC_STRUCTURE, "expected a JSON object");
			return;
		}
		walk_object(V, R, v, t, e, false);
		return;
	}
	const char *code = salus_fhir_elem_type_code(e, ti);
	if (!code)
		return;
	const char *prim = prim_code(code);
	if (prim) {
		/* Resource.id (typed System.String in the snapshot) has the id format */
		bool rid = !pe_of(ei) && !strcmp(ei->name, "id") && salus_fhir_type_is_a(ei->owner, V->t_resource);
		check_primitive(V, prim, v, rid);
		check_binding(V, ei, code, v);
		return;
	}
	if (!json_is_object(v)) {
		add_issue(V, true, IC_STRUCTURE, "expected a JSON object for %s", code);
		return;
	}
	if (!strcmp(code, "Resource")) {
		bool cont = !strcmp(ei->name, "contained");
		validate_resource(V, v, NULL, cont ? R->root : NULL, cont);
		return;
	}
	if ((!strcmp(code, "BackboneElement") || !strcmp(code, "Element")) && salus_fhir_elem_first_child(t, e)) {
		walk_object(V, R, v, t, e, false);
		elem_invariants(V, R, v, t, e);
		return;
	}
	const char *prof = salus_fhir_elem_type_profile(e, ti);
	const struct salus_fhir_type *ct = prof ? salus_fhir_type_find(prof, strlen(prof)) : NULL;
	if (!ct)
		ct = salus_fhir_type_find(code, strlen(code));
	if (!ct) {
		add_issue(V, false, IC_STRUCTURE, "type %s is not known to this server; content not checked", code);
		return;
	}
	struct salus_fhir_type_info cti;
	salus_fhir_type_get(ct, &cti);
	if (cti.kind == SALUS_FHIR_RESOURCE) { /* an element typed by a resource (Bundle.entry.response.outcome) */
		validate_resource(V, v, cti.abstract ? NULL : cti.name, NULL, false);
		return;
	}
	walk_object(V, R, v, ct, NULL, false);
	check_binding(V, ei, code, v);
	if (salus_fhir_type_is_a(ct, V->t_reference))
		check_reference(V, R, e, ti, v);
	type_invariants(V, R, v, salus_fhir_type_is_a(ct, V->t_extension) ? V->t_extension : ct);
}

/* Is the JSON key a value of element e (the element, or a choice of it)? */
static bool key_is_elem(const struct salus_fhir_type *t, const struct salus_fhir_elem *pe, const char *k,
			const struct salus_fhir_elem *e)
{
	return salus_fhir_elem_child(t, pe, k, strlen(k), NULL) == e;
}

/* The `_name` sibling of a primitive: {id, extension} or an array aligned with the values. */
static void check_prim_ext(struct vctx *V, const struct res_ctx *R, const json_t *obj, const char *key,
			   const json_t *x, const struct salus_fhir_type *t, const struct salus_fhir_elem *pe)
{
	size_t ti = 0;
	const char *base = key + 1;
	const struct salus_fhir_elem *e = salus_fhir_elem_child(t, pe, base, strlen(base), &ti);
	size_t old = path_key(V, base);
	if (!e) {
		add_issue(V, true, IC_STRUCTURE, "unknown element");
		path_pop(V, old);
		return;
	}
	const char *code = salus_fhir_elem_type_code(e, ti);
	if (!code || !prim_code(code)) {
		add_issue(V, true, IC_STRUCTURE, "a '_' primitive extension sibling is only allowed for primitive elements");
		path_pop(V, old);
		return;
	}
	struct salus_fhir_elem_info ei;
	salus_fhir_elem_get(e, &ei);
	const json_t *val = json_object_get(obj, base);
	if (json_is_array(x)) {
		if (ei.max <= 1) {
			add_issue(V, true, IC_STRUCTURE, "element must not be an array");
		} else if (!json_array_size(x)) {
			add_issue(V, true, IC_STRUCTURE, "empty arrays are not allowed");
		} else if (val && (!json_is_array(val) || json_array_size(val) != json_array_size(x))) {
			add_issue(V, true, IC_STRUCTURE, "primitive extension array is not aligned with the values");
		}
		size_t i;
		json_t *xi;
		json_array_foreach (x, i, xi) {
			size_t o2 = path_push(V, "[%zu]", i);
			const json_t *vi = json_is_array(val) ? json_array_get(val, i) : NULL;
			if (json_is_null(xi)) {
				if (!vi || json_is_null(vi))
					add_issue(V, true, IC_STRUCTURE, "null for both the value and its extension");
			} else if (!json_is_object(xi)) {
				add_issue(V, true, IC_STRUCTURE, "expected a JSON object for the primitive's id/extension");
			} else {
				walk_object(V, R, xi, V->t_element, NULL, false);
				if ((!vi || json_is_null(vi)) && !json_object_get(xi, "extension"))
					add_issue(V, true, IC_INVARIANT,
						  "Constraint failed: ele-1: All FHIR elements must have a @value or children");
			}
			path_pop(V, o2);
		}
	} else if (!json_is_object(x)) {
		add_issue(V, true, IC_STRUCTURE, "expected a JSON object for the primitive's id/extension");
	} else {
		if (ei.max > 1 && !val)
			add_issue(V, true, IC_STRUCTURE, "element must be an array");
		walk_object(V, R, x, V->t_element, NULL, false);
		if (!val && !json_object_get(x, "extension"))
			add_issue(V, true, IC_INVARIANT,
				  "Constraint failed: ele-1: All FHIR elements must have a @value or children");
	}
	path_pop(V, old);
}

static void walk_object(struct vctx *V, const struct res_ctx *R, const json_t *obj, const struct salus_fhir_type *t,
			const struct salus_fhir_elem *pe, bool resource_root)
{
	if (V->rc)
		return;
	if (++V->depth > SALUS_MAX_JSON_DEPTH + 8) {
		add_issue(V, true, IC_STRUCTURE, "nested too deeply");
		V->depth--;
		return;
	}
	size_t nkeys = json_object_size(obj);
	if (!resource_root && (nkeys == 0 || (nkeys == 1 && json_object_get(obj, "id"))))
		add_issue(V, true, IC_INVARIANT, "Constraint failed: ele-1: All FHIR elements must have a @value or children");
	const struct salus_fhir_elem *choice_seen[32];
	size_t nchoice = 0;
	const char *k;
	json_t *v;
	json_object_foreach ((json_t *)(uintptr_t)obj, k, v) {
		if (resource_root && !strcmp(k, "resourceType"))
			continue;
		if (k[0] == '_') {
			check_prim_ext(V, R, obj, k, v, t, pe);
			continue;
		}
		size_t ti = 0;
		const struct salus_fhir_elem *e = salus_fhir_elem_child(t, pe, k, strlen(k), &ti);
		if (!e) {
			size_t old = path_key(V, k);
			add_issue(V, true, IC_STRUCTURE, "unknown element");
			path_pop(V, old);
			continue;
		}
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		size_t old;
		if (ei.choice) {
			const char *tc = salus_fhir_elem_type_code(e, ti);
			old = path_push(V, ".%.*s.ofType(%s)", (int)ei.name_len, ei.name, tc ? tc : "?");
			bool dup = false;
			for (size_t i = 0; i < nchoice && !dup; i++)
				dup = choice_seen[i] == e;
			if (dup)
				add_issue(V, true, IC_STRUCTURE, "only one type of a choice element [x] is allowed");
			else if (nchoice < sizeof choice_seen / sizeof choice_seen[0])
				choice_seen[nchoice++] = e;
		} else {
			old = path_name(V, k); /* k names a known element: safe to echo */
		}
		char xk[80];
		const json_t *xv = NULL;
		if (strlen(k) + 2 <= sizeof xk) {
			xk[0] = '_';
			memcpy(xk + 1, k, strlen(k) + 1);
			xv = json_object_get(obj, xk);
		}
		if (json_is_array(v)) {
			size_t n = json_array_size(v);
			if (ei.max <= 1)
				add_issue(V, true, IC_STRUCTURE, "element must not be an array (max cardinality 1)");
			else if (n == 0)
				add_issue(V, true, IC_STRUCTURE, "empty arrays are not allowed");
			else if (ei.max != SALUS_FHIR_MANY && n > ei.max)
				add_issue(V, true, IC_STRUCTURE, "too many items (max cardinality %u)", ei.max);
			if (ei.max > 1 && n && n < ei.min)
				add_issue(V, true, IC_REQUIRED, "too few items (min cardinality %u)", ei.min);
			size_t i;
			json_t *it;
			json_array_foreach (v, i, it) {
				size_t o2 = path_index(V, i);
				if (json_is_null(it)) {
					const json_t *xi = json_is_array(xv) ? json_array_get(xv, i) : NULL;
					if (!json_is_object(xi))
						add_issue(V, true, IC_STRUCTURE, "null is not allowed");
				} else if (json_is_array(it)) {
					add_issue(V, true, IC_STRUCTURE, "nested arrays are not allowed");
				} else {
					check_value(V, R, it, t, e, &ei, ti);
				}
				path_pop(V, o2);
				if (V->rc)
					break;
			}
		} else {
			if (ei.max > 1)
				add_issue(V, true, IC_STRUCTURE, "element must be an array (max cardinality > 1)");
			check_value(V, R, v, t, e, &ei, ti);
		}
		path_pop(V, old);
		if (V->rc)
			break;
	}
	/* required children (most data types have none) */
	const struct salus_fhir_elem *first =
		salus_fhir_elem_has_required_child(t, pe) ? salus_fhir_elem_first_child(t, pe) : NULL;
	for (const struct salus_fhir_elem *e = first; e && !V->rc; e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		if (!ei.min)
			continue;
		bool present = false;
		if (!ei.choice) {
			char xk[80];
			present = json_object_get(obj, ei.name) != NULL;
			if (!present && strlen(ei.name) + 2 <= sizeof xk) {
				xk[0] = '_';
				memcpy(xk + 1, ei.name, strlen(ei.name) + 1);
				present = json_object_get(obj, xk) != NULL;
			}
		} else {
			json_object_foreach ((json_t *)(uintptr_t)obj, k, v) {
				if (key_is_elem(t, pe, k[0] == '_' ? k + 1 : k, e)) {
					present = true;
					break;
				}
			}
		}
		if (!present) {
			size_t old = path_push(V, ".%.*s", (int)ei.name_len, ei.name);
			add_issue(V, true, IC_REQUIRED, "missing required element (min cardinality %u)", ei.min);
			path_pop(V, old);
		}
	}
	V->depth--;
}

static void validate_resource(struct vctx *V, const json_t *obj, const char *expected, const json_t *root,
			      bool contained)
{
	if (V->rc)
		return;
	if (!json_is_object(obj)) {
		add_issue(V, true, IC_STRUCTURE, "a resource must be a JSON object");
		return;
	}
	const json_t *rt = json_object_get(obj, "resourceType");
	if (!json_is_string(rt)) {
		size_t old = path_push(V, "%s", V->plen ? ".resourceType" : "resourceType");
		add_issue(V, true, IC_REQUIRED, "resourceType is missing or not a string");
		path_pop(V, old);
		return;
	}
	const char *tn = json_string_value(rt);
	size_t tl = json_string_length(rt);
	if (!salus_fhir_is_resource_type(tn, tl)) {
		size_t old = path_push(V, "%s", V->plen ? ".resourceType" : "resourceType");
		add_issue(V, true, IC_VALUE, "unknown resource type");
		path_pop(V, old);
		return;
	}
	if (expected && strcmp(expected, tn)) {
		size_t old = path_push(V, "%s", V->plen ? ".resourceType" : "resourceType");
		add_issue(V, true, IC_VALUE, "resourceType does not match the expected type %s",
			  salus_fhir_is_resource_type(expected, strlen(expected)) ? expected : "(invalid)");
		path_pop(V, old);
		return;
	}
	const struct salus_fhir_type *t = salus_fhir_type_find(tn, tl);
	size_t old = V->plen ? V->plen : path_push(V, "%s", tn);
	struct res_ctx R = {.resource = obj, .root = root ? root : obj, .contained = contained};
	walk_object(V, &R, obj, t, NULL, true);
	/* resource-level invariants.  dom-2..dom-5 all start from `contained`:
	 * with no contained resource each is trivially true, so skip them. */
	bool has_contained = json_object_get(obj, "contained") != NULL;
	for (size_t i = 0; i < NINVS && !V->rc; i++) {
		if (!inv_type[i] || !salus_fhir_type_is_a(t, inv_type[i]))
			continue;
		if ((inv_type[i] == V->t_domain && (!has_contained || dom_holds(V, i, obj))) || obs_vacuous(i, obj))
			continue;
		eval_inv(V, &R, i, NULL);
	}
	if (V->plen != old)
		path_pop(V, old);
}

/* ---- output ----------------------------------------------------------------- */

static int write_outcome(const struct vctx *V, struct salus_buf *out)
{
	salus_buf_reset(out);
	int rc = salus_buf_adds(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[");
	if (!V->n && !rc)
		rc = salus_buf_adds(out, "{\"severity\":\"information\",\"code\":\"informational\","
					 "\"diagnostics\":\"ok: no issues found\"}");
	for (size_t i = 0; i < V->n && !rc; i++) {
		const struct issue *is = &V->iss[i];
		rc = salus_buf_addf(out, "%s{\"severity\":\"%s\",\"code\":\"%s\",\"diagnostics\":", i ? "," : "",
				    is->error ? "error" : "warning", icode_name[is->code]);
		if (!rc)
			rc = salus_json_add_cstr(out, is->diag);
		if (!rc && is->expr[0]) {
			rc = salus_buf_adds(out, ",\"expression\":[");
			if (!rc)
				rc = salus_json_add_cstr(out, is->expr);
			if (!rc)
				rc = salus_buf_addc(out, ']');
		}
		if (!rc)
			rc = salus_buf_addc(out, '}');
	}
	if (!rc && V->nerr > SALUS_VALIDATE_MAX_ISSUES)
		rc = salus_buf_addf(out, ",{\"severity\":\"error\",\"code\":\"too-costly\",\"diagnostics\":"
					 "\"more than %d issues; the rest are not listed\"}",
				    SALUS_VALIDATE_MAX_ISSUES);
	if (!rc)
		rc = salus_buf_adds(out, "]}");
	return rc;
}

static void vctx_init(struct vctx *V, void *fpbuf, size_t fplen)
{
	memset(V, 0, sizeof *V);
	salus_fp_ctx_init(&V->fp, fpbuf, fplen);
	V->t_element = salus_fhir_type_find("Element", 7);
	V->t_extension = salus_fhir_type_find("Extension", 9);
	V->t_reference = salus_fhir_type_find("Reference", 9);
	V->t_resource = salus_fhir_type_find("Resource", 8);
	V->t_domain = salus_fhir_type_find("DomainResource", 14);
}

int salus_fhir_validate(const json_t *resource, const char *expected_type, enum salus_validate_mode mode,
			struct salus_buf *outcome, int *nissues)
{
	if (!inv_ready) {
		int rc = inv_init();
		if (rc)
			return rc == SALUS_ENOMEM ? rc : SALUS_EINTERNAL;
	}
	_Alignas(16) char fpbuf[8192];
	struct vctx V;
	vctx_init(&V, fpbuf, sizeof fpbuf);
	if (mode != SALUS_VALIDATE_DELETE) {
		validate_resource(&V, resource, expected_type, NULL, false);
		if (mode == SALUS_VALIDATE_UPDATE && json_is_object(resource) && !json_object_get(resource, "id") &&
		    !V.rc) {
			const json_t *rt = json_object_get(resource, "resourceType");
			size_t old = path_push(&V, "%s.id",
					       json_is_string(rt) && salus_fhir_is_resource_type(json_string_value(rt),
												  json_string_length(rt))
						       ? json_string_value(rt)
						       : "Resource");
			add_issue(&V, true, IC_REQUIRED, "an updated resource must carry its id");
			path_pop(&V, old);
		}
	}
	int rc = V.rc;
	if (!rc && outcome)
		rc = write_outcome(&V, outcome);
	if (!rc && V.nerr)
		rc = V.structural ? SALUS_EINVALID : SALUS_EUNPROCESSABLE;
	if (rc == SALUS_ENOMEM && outcome)
		salus_buf_reset(outcome);
	if (nissues)
		*nissues = V.nerr > SALUS_VALIDATE_MAX_ISSUES ? SALUS_VALIDATE_MAX_ISSUES : V.nerr;
	salus_free(V.iss);
	salus_fp_ctx_release(&V.fp);
	return rc;
}

/* ---- $validate ------------------------------------------------------------- */

/* A one-issue OperationOutcome (rest.c's salus_fhir_outcome, kept here so the
 * validator does not depend on the REST module). Returns the HTTP status. */
static int op_outcome(struct salus_buf *out, int rc, const char *diagnostics, const char *expression)
{
	salus_buf_reset(out);
	int e = salus_buf_addf(out, "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"%s\","
				    "\"code\":\"%s\",\"diagnostics\":",
			       rc == 0 ? "information" : salus_err_http(rc) >= 500 ? "fatal" : "error",
			       rc == 0 ? "informational" : salus_err_issue(rc));
	if (!e)
		e = salus_json_add_cstr(out, diagnostics ? diagnostics : salus_err_msg(rc));
	if (!e && expression) {
		e = salus_buf_adds(out, ",\"expression\":[");
		if (!e)
			e = salus_json_add_cstr(out, expression);
		if (!e)
			e = salus_buf_addc(out, ']');
	}
	if (!e)
		e = salus_buf_adds(out, "}]}");
	return salus_err_http(rc);
}

int salus_fhir_validate_op(const char *type, const char *id, const char *body, size_t len, struct salus_buf *out)
{
	char why[200];
	json_t *j = NULL;
	int rc = salus_json_parse_strict(body, len, &j, why, sizeof why);
	if (rc)
		return op_outcome(out, rc, why, NULL);
	enum salus_validate_mode mode = SALUS_VALIDATE_ANY;
	const json_t *res = j;
	const json_t *rt = json_object_get(j, "resourceType");
	if (json_is_string(rt) && !strcmp(json_string_value(rt), "Parameters") && strcmp(type, "Parameters")) {
		res = NULL;
		size_t i;
		json_t *p;
		json_array_foreach (json_object_get(j, "parameter"), i, p) {
			const json_t *name = json_object_get(p, "name");
			if (!json_is_string(name))
				continue;
			if (!strcmp(json_string_value(name), "resource")) {
				res = json_object_get(p, "resource");
			} else if (!strcmp(json_string_value(name), "mode")) {
				const json_t *m = json_object_get(p, "valueCode");
				const char *ms = json_is_string(m) ? json_string_value(m) : "";
				if (!strcmp(ms, "create"))
					mode = SALUS_VALIDATE_CREATE;
				else if (!strcmp(ms, "update"))
					mode = SALUS_VALIDATE_UPDATE;
				else if (!strcmp(ms, "delete"))
					mode = SALUS_VALIDATE_DELETE;
				else {
					json_decref(j);
					return op_outcome(out, SALUS_EINVALID,
								  "mode must be create, update or delete", "Parameters.parameter");
				}
			}
		}
		if (!res && mode != SALUS_VALIDATE_DELETE) {
			json_decref(j);
			return op_outcome(out, SALUS_EINVALID, "Parameters has no resource parameter",
						  "Parameters.parameter");
		}
	}
	if (mode == SALUS_VALIDATE_DELETE) {
		json_decref(j);
		rc = op_outcome(out, 0, "ok: delete is allowed (referential integrity is not checked)", NULL);
		return 200;
	}
	rc = salus_fhir_validate(res, type, mode, out, NULL);
	if (!rc && mode == SALUS_VALIDATE_UPDATE && id) {
		const json_t *rid = json_object_get(res, "id");
		if (json_is_string(rid) && strcmp(json_string_value(rid), id)) {
			json_decref(j);
			op_outcome(out, SALUS_EINVALID, "id in the resource does not match the id in the URL",
					   "id");
			return 200;
		}
	}
	json_decref(j);
	if (rc == SALUS_ENOMEM)
		return op_outcome(out, rc, NULL, NULL);
	return 200;
}
