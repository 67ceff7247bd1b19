/*
 * event.c — the AuditEvent builder: one struct salus_audit_req becomes a FHIR
 * R4 AuditEvent shaped by IHE BALP (type/subtype, action, recorded, outcome,
 * agents for the client / user / this server, source, an entity for the
 * resource, one per patient touched, one for the query), as compact JSON
 * split around its id so the store can splice the log index in (store.h).
 * Identifiers only: no body, no search result, no free text from the client
 * except the query string, which is stored base64 as BALP asks.
 */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"

#define SYS_EVENT_TYPE "http://terminology.hl7.org/CodeSystem/audit-event-type"
#define SYS_REST "http://hl7.org/fhir/restful-interaction"
#define SYS_DCM "http://dicom.nema.org/resources/ontology/DCM"
#define SYS_ENTITY_TYPE "http://terminology.hl7.org/CodeSystem/audit-entity-type"
#define SYS_ROLE "http://terminology.hl7.org/CodeSystem/object-role"
#define SYS_SOURCE "http://terminology.hl7.org/CodeSystem/security-source-type"
#define SYS_ACTREASON "http://terminology.hl7.org/CodeSystem/v3-ActReason"
#define SYS_PARTICIPATION "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
#define BALP "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."

struct kind {
	const char *type_sys, *type_code, *type_display;
	const char *sub_sys, *sub_code, *sub_display;
	const char *action;
	const char *profile; /* BALP profile suffix, or NULL */
};

static const struct kind kinds[SALUS_AUDIT__COUNT] = {
#define REST(code, act, prof) {SYS_EVENT_TYPE, "rest", "Restful Operation", SYS_REST, code, code, act, prof}
	[SALUS_AUDIT_READ] = REST("read", "R", "Read"),
	[SALUS_AUDIT_VREAD] = REST("vread", "R", "Read"),
	[SALUS_AUDIT_UPDATE] = REST("update", "U", "Update"),
	[SALUS_AUDIT_PATCH] = REST("patch", "U", "Update"),
	[SALUS_AUDIT_DELETE] = REST("delete", "D", "Delete"),
	[SALUS_AUDIT_HISTORY] = REST("history-instance", "R", "Query"),
	[SALUS_AUDIT_HISTORY_TYPE] = REST("history-type", "R", "Query"),
	[SALUS_AUDIT_HISTORY_SYSTEM] = REST("history-system", "R", "Query"),
	[SALUS_AUDIT_CREATE] = REST("create", "C", "Create"),
	[SALUS_AUDIT_SEARCH] = REST("search-type", "E", "Query"),
	[SALUS_AUDIT_SEARCH_SYSTEM] = REST("search-system", "E", "Query"),
	[SALUS_AUDIT_CAPABILITIES] = REST("capabilities", "R", NULL),
	[SALUS_AUDIT_OPERATION] = REST("operation", "E", NULL),
	[SALUS_AUDIT_BATCH] = REST("batch", "E", NULL),
	[SALUS_AUDIT_TRANSACTION] = REST("transaction", "E", NULL),
#undef REST
	[SALUS_AUDIT_LOGIN] = {SYS_DCM, "110114", "User Authentication", SYS_DCM, "110122", "Login", "E", NULL},
	[SALUS_AUDIT_LOGOUT] = {SYS_DCM, "110114", "User Authentication", SYS_DCM, "110123", "Logout", "E", NULL},
	[SALUS_AUDIT_TOKEN] = {SYS_DCM, "110114", "User Authentication", SYS_DCM, "110122", "Login", "E", NULL},
	[SALUS_AUDIT_AUDIT_READ] = {SYS_DCM, "110101", "Audit Log Used", SYS_REST, "read", "read", "R", NULL},
	[SALUS_AUDIT_ADMIN] = {SYS_DCM, "110100", "Application Activity", NULL, NULL, NULL, "E", NULL},
};

/* The event is written straight into a capped buffer (no JSON object tree):
 * at tens of thousands of events per second the allocations of a tree cost
 * more than everything else.  Every string from a request goes through
 * put_str (UTF-8 checked, JSON-escaped); ids and types are checked first. */

static bool fhir_id_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= SALUS_MAX_ID ||
		    !((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
		      s[n] == '-' || s[n] == '.'))
			return false;
	return n > 0;
}

static bool type_ok(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= 64 || !((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9')))
			return false;
	return n > 0;
}

static bool looks_like_ip(const char *a)
{
	for (; *a; a++)
		if (!((*a >= '0' && *a <= '9') || (*a >= 'a' && *a <= 'f') || (*a >= 'A' && *a <= 'F') || *a == '.' ||
		      *a == ':'))
			return false;
	return true;
}

/* A JSON string: quotes, escapes; SALUS_EINVALID for invalid UTF-8 or an over-long value. */
static int put_str(struct salus_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strnlen(s, 4096);
	size_t i, run = 0;
	int rc;
	if (n == 4096 || !utf8_ok(s))
		return SALUS_EINVALID;
	if ((rc = salus_buf_addc(b, '"')))
		return rc;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6];
		size_t en = 0;
		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			en = 2;
		} else if (c < 0x20 || c == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			en = 6;
		}
		if (!en)
			continue;
		if ((rc = salus_buf_add(b, s + run, i - run)) || (rc = salus_buf_add(b, esc, en)))
			return rc;
		run = i + 1;
	}
	if ((rc = salus_buf_add(b, s + run, n - run)))
		return rc;
	return salus_buf_addc(b, '"');
}

/* Concatenate NULL-terminated string arguments (no printf: this is the hot path). */
static int cat(struct salus_buf *b, ...)
{
	va_list ap;
	const char *p;
	int rc = SALUS_OK;
	va_start(ap, b);
	while (!rc && (p = va_arg(ap, const char *)))
		rc = salus_buf_adds(b, p);
	va_end(ap);
	return rc;
}

/* A string literal, its length known at compile time. */
#define ADDL(b, lit) salus_buf_add((b), "" lit, sizeof(lit) - 1)
/* A Coding of a literal system and code, as one literal. */
#define CODING(sys, code) "{\"system\":\"" sys "\",\"code\":\"" code "\"}"

/* Codings carry system and code only.  BALP fixes its codings by system and code;
 * display is optional in FHIR and was a sixth of every stored event (readers
 * that want one look the code up: docs/audit.md has the table). */

static int put_who(struct salus_buf *b, const char *sys, const char *value)
{
	int rc;
	if ((rc = cat(b, ",\"who\":{\"identifier\":{\"system\":\"", sys, "\",\"value\":", (char *)NULL)) ||
	    (rc = put_str(b, value)))
		return rc;
	return ADDL(b, "}}");
}

static int put_agents(struct salus_buf *b, const struct salus_audit_req *rq)
{
	int rc;
	if ((rc = ADDL(b, ",\"agent\":[")))
		return rc;
	if (rq->user_id) {
		if ((rc = ADDL(b, "{\"type\":{\"coding\":[" CODING(SYS_PARTICIPATION, "IRCP") "]},\"requestor\":true")) ||
		    (rc = put_who(b, "urn:salus:user", rq->user_id)) || (rc = ADDL(b, "},")))
			return rc;
	}
	if (rq->client_id || rq->remote_addr || !rq->user_id) {
		if ((rc = rq->user_id ? ADDL(b, "{\"type\":{\"coding\":[" CODING(SYS_DCM, "110153") "]},\"requestor\":false")
				      : ADDL(b, "{\"type\":{\"coding\":[" CODING(SYS_DCM, "110153") "]},\"requestor\":true")))
			return rc;
		if (rq->client_id && (rc = put_who(b, "urn:salus:client", rq->client_id)))
			return rc;
		if (rq->remote_addr &&
		    ((rc = ADDL(b, ",\"network\":{\"address\":")) || (rc = put_str(b, rq->remote_addr)) ||
		     (rc = looks_like_ip(rq->remote_addr) ? ADDL(b, ",\"type\":\"2\"}") : ADDL(b, ",\"type\":\"1\"}"))))
			return rc;
		if ((rc = ADDL(b, "},")))
			return rc;
	}
	/* BALP: the server is the destination agent */
	return ADDL(b, "{\"type\":{\"coding\":[" CODING(SYS_DCM, "110152") "]},\"who\":{\"identifier\":{\"system\":"
		       "\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}]");
}

static int put_entity_head(struct salus_buf *b, bool *first, bool patient, bool query)
{
	int rc;
	if ((rc = *first ? ADDL(b, ",\"entity\":[{") : ADDL(b, ",{")))
		return rc;
	*first = false;
	if (patient) /* Person, role Patient */
		return ADDL(b, "\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"1\"},"
			       "\"role\":{\"system\":\"" SYS_ROLE "\",\"code\":\"1\"}");
	/* System Object, role Query (24) or Domain Resource (4) */
	return query ? ADDL(b, "\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"2\"},"
			       "\"role\":{\"system\":\"" SYS_ROLE "\",\"code\":\"24\"}")
		     : ADDL(b, "\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"2\"},"
			       "\"role\":{\"system\":\"" SYS_ROLE "\",\"code\":\"4\"}");
}

static int put_entities(struct salus_buf *b, const struct salus_audit_req *rq)
{
	bool first = true, self_patient = false;
	int rc;

	if (rq->resource_type && !type_ok(rq->resource_type))
		return SALUS_EINVALID;
	if (rq->resource_type && rq->id) {
		if (!fhir_id_ok(rq->id))
			return SALUS_EINVALID;
		self_patient = !strcmp(rq->resource_type, "Patient");
		if ((rc = put_entity_head(b, &first, self_patient, false)) ||
		    (rc = cat(b, ",\"what\":{\"reference\":\"", rq->resource_type, "/", rq->id, (char *)NULL)))
			return rc;
		if (rq->version > 0) {
			char num[24], *d = num + sizeof num - 1;
			unsigned long v = (unsigned long)rq->version;
			*d = 0;
			do
				*--d = (char)('0' + v % 10);
			while ((v /= 10) && d > num);
			if ((rc = cat(b, "/_history/", d, (char *)NULL)))
				return rc;
		}
		if ((rc = ADDL(b, "\"}}")))
			return rc;
	}
	for (size_t i = 0; i < rq->npatients; i++) {
		const char *p = rq->patients[i];
		if (!p || !fhir_id_ok(p))
			return SALUS_EINVALID;
		if (self_patient && !strcmp(p, rq->id))
			continue; /* already the resource entity, with role patient */
		if ((rc = put_entity_head(b, &first, true, false)) ||
		    (rc = cat(b, ",\"what\":{\"reference\":\"Patient/", p, "\"}}", (char *)NULL)))
			return rc;
	}
	if (rq->query || (rq->resource_type && !rq->id)) {
		if ((rc = put_entity_head(b, &first, false, true)))
			return rc;
		if (rq->resource_type && (rc = cat(b, ",\"description\":\"", rq->resource_type, "\"", (char *)NULL)))
			return rc;
		if (rq->query) {
			size_t qn = strnlen(rq->query, SALUS_MAX_URL + 1), bn;
			char *b64;
			if (qn > SALUS_MAX_URL)
				return SALUS_ETOOLARGE;
			bn = sodium_base64_ENCODED_LEN(qn, sodium_base64_VARIANT_ORIGINAL);
			if (!(b64 = salus_malloc(bn)))
				return SALUS_ENOMEM;
			sodium_bin2base64(b64, bn, (const unsigned char *)rq->query, qn, sodium_base64_VARIANT_ORIGINAL);
			rc = cat(b, ",\"query\":\"", b64, "\"", (char *)NULL);
			salus_free(b64);
			if (rc)
				return rc;
		}
		if ((rc = salus_buf_addc(b, '}')))
			return rc;
	}
	return first ? SALUS_OK : salus_buf_addc(b, ']');
}

/* The event's `recorded` instant, "YYYY-MM-DDThh:mm:ss.sssZ": the same text as salus_instant_format
 * without gmtime_r and snprintf, which were a quarter of building an event (days to a civil date:
 * H. Hinnant's algorithm).  Times outside 1970..9999 go to salus_instant_format. */
static void put2(char *p, int v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

static void instant_format(int64_t ms, char out[SALUS_INSTANT_LEN])
{
	if (ms < 0 || ms >= INT64_C(253402300800000)) {
		salus_instant_format(ms, out);
		return;
	}
	int64_t secs = ms / 1000, z = secs / 86400 + 719468;
	int sod = (int)(secs % 86400), msr = (int)(ms % 1000);
	int64_t era = z / 146097;
	int doe = (int)(z - era * 146097);
	int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int mp = (5 * doy + 2) / 153;
	int day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
	int year = (int)(yoe + era * 400) + (month <= 2);
	put2(out, year / 100);
	put2(out + 2, year % 100);
	out[4] = '-';
	put2(out + 5, month);
	out[7] = '-';
	put2(out + 8, day);
	out[10] = 'T';
	put2(out + 11, sod / 3600);
	out[13] = ':';
	put2(out + 14, sod / 60 % 60);
	out[16] = ':';
	put2(out + 17, sod % 60);
	out[19] = '.';
	out[20] = (char)('0' + msr / 100);
	put2(out + 21, msr % 100);
	out[23] = 'Z';
	out[24] = 0;
}

static const char *outcome_of(int status)
{
	if (status <= 0)
		return "12";
	if (status < 400)
		return "0";
	if (status < 500)
		return "4";
	return "8";
}

/* Per kind, the text from `",` to the first subtype coding (its `]` left open): the same for every
 * event of the kind, so built once. */
static struct {
	char s[512];
	size_t n;
} heads[SALUS_AUDIT__COUNT];
static pthread_once_t heads_once = PTHREAD_ONCE_INIT;

static void heads_build(void)
{
	for (int i = 0; i < SALUS_AUDIT__COUNT; i++) {
		const struct kind *k = &kinds[i];
		int n = snprintf(heads[i].s, sizeof heads[i].s,
				 "\",%s%s%s\"type\":{\"system\":\"%s\",\"code\":\"%s\"}%s%s%s%s%s",
				 k->profile ? "\"meta\":{\"profile\":[\"" BALP : "", k->profile ? k->profile : "",
				 k->profile ? "\"]}," : "", k->type_sys, k->type_code,
				 k->sub_sys ? ",\"subtype\":[{\"system\":\"" : "", k->sub_sys ? k->sub_sys : "",
				 k->sub_sys ? "\",\"code\":\"" : "", k->sub_sys ? k->sub_code : "", k->sub_sys ? "\"}" : "");
		heads[i].n = n > 0 && (size_t)n < sizeof heads[i].s ? (size_t)n : 0; /* 0: never (checked in build) */
	}
}

/* Everything after `"id":"INDEX` : `",` then the members, then `}`. */
static int build(struct salus_buf *b, const struct salus_audit_req *rq)
{
	const struct kind *k = &kinds[rq->interaction];
	char instant[SALUS_INSTANT_LEN];
	int rc;

	pthread_once(&heads_once, heads_build);
	if (!heads[rq->interaction].n)
		return SALUS_EINTERNAL;
	if ((rc = salus_buf_add(b, heads[rq->interaction].s, heads[rq->interaction].n)))
		return rc;
	if (k->sub_sys) {
		if (rq->operation && ((rc = ADDL(b, ",{\"system\":\"urn:salus:operation\",\"code\":")) ||
				      (rc = put_str(b, rq->operation)) || (rc = salus_buf_addc(b, '}'))))
			return rc;
		if ((rc = salus_buf_addc(b, ']')))
			return rc;
	}
	instant_format(rq->ts_ms ? rq->ts_ms : salus_now_ms(), instant);
	if ((rc = cat(b, ",\"action\":\"", k->action, "\",\"recorded\":\"", instant, "\",\"outcome\":\"",
		      rq->status_2xx ? "0" : outcome_of(rq->status), "\"", (char *)NULL)))
		return rc;
	if (rq->status > 0 && !rq->status_2xx) {
		char num[24], *d = num + sizeof num - 1;
		int v = rq->status;
		*d = 0;
		do
			*--d = (char)('0' + v % 10);
		while ((v /= 10) && d > num);
		if ((rc = cat(b, ",\"outcomeDesc\":\"HTTP ", d, "\"", (char *)NULL)))
			return rc;
	}
	if (rq->purpose && ((rc = ADDL(b, ",\"purposeOfEvent\":[{\"coding\":[{\"system\":\"" SYS_ACTREASON "\",\"code\":")) ||
			    (rc = put_str(b, rq->purpose)) || (rc = ADDL(b, "}]}]"))))
		return rc;
	if ((rc = put_agents(b, rq)))
		return rc;
	if ((rc = ADDL(b, ",\"source\":{\"observer\":{\"display\":\"salus\"},\"type\":[" CODING(SYS_SOURCE, "4") "]}")))
		return rc;
	if ((rc = put_entities(b, rq)))
		return rc;
	return salus_buf_addc(b, '}');
}

int salus_audit_event_render(const struct salus_audit_req *rq, char **pre, size_t *pre_n, char **post, size_t *post_n)
{
	struct salus_buf b;
	char *head;
	int rc;

	if (!rq || (unsigned)rq->interaction >= SALUS_AUDIT__COUNT || rq->npatients > SALUS_AUDIT_MAX_PATIENTS ||
	    (rq->npatients && !rq->patients) || rq->ts_ms < 0)
		return SALUS_EINVALID;
	salus_buf_init(&b, SALUS_MAX_AUDIT_EVENT - 64);
	/* one allocation for a typical event instead of doubling up from 64 bytes */
	static const char room[2048];
	if ((rc = salus_buf_add(&b, room, sizeof room)))
		return rc;
	b.n = 0;
	b.p[0] = 0;
	if ((rc = build(&b, rq))) {
		salus_buf_release(&b);
		return rc;
	}
	if (!(head = salus_strdup(SALUS_AUDIT_EVENT_PREFIX))) {
		salus_buf_release(&b);
		return SALUS_ENOMEM;
	}
	if (!(*post = salus_buf_detach(&b, post_n))) {
		salus_free(head);
		return SALUS_ENOMEM;
	}
	*pre = head;
	*pre_n = strlen(head);
	return SALUS_OK;
}

bool salus_audit_event_has_index(const char *event, size_t n, int64_t i)
{
	char want[sizeof SALUS_AUDIT_EVENT_PREFIX + 24];
	int k = snprintf(want, sizeof want, SALUS_AUDIT_EVENT_PREFIX "%" PRId64 "\",", i);
	return k > 0 && (size_t)k <= n && !memcmp(event, want, (size_t)k);
}
