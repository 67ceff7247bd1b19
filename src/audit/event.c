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
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "store/store.h"

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

/* The event is built straight in the store's compact form (store.h salus_store_audit_encode;
 * docs/audit.md "On disk, compact"): its fixed parts — each kind's head, the agents' and entities'
 * openers, the server agent with the source, every other literal — are encoded with the store's
 * dictionary once (frags, ADDL) and copied; the variable parts (ids, the instant, escaped strings,
 * the query) go in as themselves, with no dictionary search.  So the request's thread never writes,
 * scans and copies the ~1.2 KB text: the store's writer hashes the text as it decodes the ~90 bytes, and
 * salus_audit_event_render decodes them for the callers that want the text.  Every string from a
 * request goes through cw_body (UTF-8 checked, JSON-escaped); ids and types are checked first. */

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

/* ---- the compact writer: pre-encoded fixed text, variable text raw ---- */

struct cw {
	struct salus_buf *out; /* the compact bytes */
	int rc;                /* sticky: the first error */
};

/* Append n compact bytes.  The buffer is grown ahead (audit_event_compact), so this is mostly a
 * memcpy; salus_buf_add keeps its rules (cap, NUL, freed on failure) for the rest. */
static int cw_put(struct cw *w, const void *p, size_t n)
{
	struct salus_buf *b = w->out;
	if (w->rc)
		return w->rc;
	if (b->cap && n < b->cap - b->n) {
		memcpy(b->p + b->n, p, n);
		b->n += n;
		b->p[b->n] = 0;
		return SALUS_OK;
	}
	return w->rc = salus_buf_add(b, p, n);
}

/* Variable text (ids, the instant, escaped strings): in the compact form as itself (only bytes below
 * 0x20 are escaped), without a dictionary search, which cost as much as building the text. */
static int cw_add(struct cw *w, const char *s, size_t n)
{
	struct salus_buf *b = w->out;
	if (!w->rc && b->cap && n < (b->cap - b->n) / 2) { /* room for the worst case, 2n */
		b->n += salus_store_audit_encode_raw(s, n, (unsigned char *)b->p + b->n);
		b->p[b->n] = 0;
		return SALUS_OK;
	}
	unsigned char tmp[SALUS_STORE_AUC_BOUND(256)];
	while (n && !w->rc) {
		size_t k = n < 256 ? n : 256;
		cw_put(w, tmp, salus_store_audit_encode_raw(s, k, tmp));
		s += k;
		n -= k;
	}
	return w->rc;
}

static int cw_adds(struct cw *w, const char *s)
{
	return cw_add(w, s, strlen(s));
}

static int cw_addc(struct cw *w, char c)
{
	return cw_add(w, &c, 1);
}

/* Fixed text: encoded with the store's dictionary once per call site (ADDL), then copied. */
struct litc {
	atomic_bool ready;
	size_t n;
	unsigned char b[1024];
};
static pthread_mutex_t lit_mu = PTHREAD_MUTEX_INITIALIZER;

static int cw_lit(struct cw *w, struct litc *c, const char *s, size_t n)
{
	if (!atomic_load_explicit(&c->ready, memory_order_acquire)) {
		pthread_mutex_lock(&lit_mu);
		if (!atomic_load_explicit(&c->ready, memory_order_relaxed) && SALUS_STORE_AUC_BOUND(n) <= sizeof c->b) {
			c->n = salus_store_audit_encode(s, n, c->b);
			atomic_store_explicit(&c->ready, true, memory_order_release);
		}
		pthread_mutex_unlock(&lit_mu);
		if (!atomic_load_explicit(&c->ready, memory_order_acquire))
			return cw_add(w, s, n); /* too long to keep: as variable text (never, for these) */
	}
	return cw_put(w, c->b, c->n);
}

/* A string literal, encoded once. */
#define ADDL(w, lit)                                                                                           \
	({                                                                                                     \
		static struct litc lc_;                                                                        \
		cw_lit((w), &lc_, "" lit, sizeof(lit) - 1);                                                    \
	})
/* A Coding of a literal system and code, as one literal. */
#define CODING(sys, code) "{\"system\":\"" sys "\",\"code\":\"" code "\"}"

/* A JSON string's content (escaped, without its quotes); SALUS_EINVALID for invalid UTF-8 or an
 * over-long value. */
static int cw_body(struct cw *w, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strnlen(s, 4096);
	size_t i, run = 0;
	if (n == 4096 || !utf8_ok(s))
		return w->rc = w->rc ? w->rc : SALUS_EINVALID;
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
		cw_add(w, s + run, i - run);
		cw_add(w, esc, en);
		run = i + 1;
	}
	return cw_add(w, s + run, n - run);
}

/* Codings carry system and code only.  BALP fixes its codings by system and code;
 * display is optional in FHIR and was a sixth of every stored event (readers
 * that want one look the code up: docs/audit.md has the table). */

/* Per kind, the head: the text from `",` after the id to `"recorded":"` (FR_HEAD); with an
 * operation coding to add, FR_HEAD_OP stops where the subtype array is still open.  And the pre. */
enum frag {
	FR_PREFIX,                                  /* SALUS_AUDIT_EVENT_PREFIX: the whole of pre */
	FR_HEAD,                                    /* + interaction */
	FR_HEAD_OP = FR_HEAD + SALUS_AUDIT__COUNT,  /* + interaction */
	FR__COUNT = FR_HEAD_OP + SALUS_AUDIT__COUNT
};

static struct {
	unsigned char b[1024]; /* compact bytes */
	size_t n;               /* 0: could not be built (never: checked in build) */
} frags[FR__COUNT];
static pthread_once_t frags_once = PTHREAD_ONCE_INIT;

static void frag_set(enum frag f, const char *text, size_t n)
{
	if (n && SALUS_STORE_AUC_BOUND(n) <= sizeof frags[f].b)
		frags[f].n = salus_store_audit_encode(text, n, frags[f].b);
}

static void frags_build(void)
{
	char h[768];
	frag_set(FR_PREFIX, SALUS_AUDIT_EVENT_PREFIX, strlen(SALUS_AUDIT_EVENT_PREFIX));
	for (int i = 0; i < SALUS_AUDIT__COUNT; i++) {
		const struct kind *k = &kinds[i];
		int n = snprintf(h, sizeof h, "\",%s%s%s\"type\":{\"system\":\"%s\",\"code\":\"%s\"}%s%s%s%s%s",
				 k->profile ? "\"meta\":{\"profile\":[\"" BALP : "", k->profile ? k->profile : "",
				 k->profile ? "\"]}," : "", k->type_sys, k->type_code,
				 k->sub_sys ? ",\"subtype\":[{\"system\":\"" : "", k->sub_sys ? k->sub_sys : "",
				 k->sub_sys ? "\",\"code\":\"" : "", k->sub_sys ? k->sub_code : "", k->sub_sys ? "\"}" : "");
		if (n <= 0 || (size_t)n >= sizeof h)
			continue;
		frag_set((enum frag)(FR_HEAD_OP + i), h, (size_t)n);
		int m = snprintf(h + n, sizeof h - (size_t)n, "%s,\"action\":\"%s\",\"recorded\":\"",
				 k->sub_sys ? "]" : "", k->action);
		if (m > 0 && (size_t)m < sizeof h - (size_t)n)
			frag_set((enum frag)(FR_HEAD + i), h, (size_t)(n + m));
	}
}

/* The fragment's compact bytes. */
static int cw_frag(struct cw *w, enum frag f)
{
	if (w->rc)
		return w->rc;
	if (!frags[f].n)
		return w->rc = SALUS_EINTERNAL;
	return cw_put(w, frags[f].b, frags[f].n);
}

/* The literals below are cut where the store's dictionary cuts (audit_codec.c), so the fixed text
 * encodes as it would in one piece: a string's quotes belong to the literals around its content. */
#define CLIENT_AGENT(req) "{\"type\":{\"coding\":[" CODING(SYS_DCM, "110153") "]},\"requestor\":" req
#define CLIENT_WHO ",\"who\":{\"identifier\":{\"system\":\"urn:salus:client\",\"value\":\""
#define SERVER_AGENT                                                                                         \
	"{\"type\":{\"coding\":[" CODING(SYS_DCM, "110152") "]},\"who\":{\"identifier\":{\"system\":"          \
	"\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}]"                                     \
	",\"source\":{\"observer\":{\"display\":\"salus\"},\"type\":[" CODING(SYS_SOURCE, "4") "]}"

static int put_agents(struct cw *w, const struct salus_audit_req *rq)
{
	if (rq->user_id) {
		ADDL(w, "{\"type\":{\"coding\":[" CODING(SYS_PARTICIPATION, "IRCP") "]},\"requestor\":true"
			",\"who\":{\"identifier\":{\"system\":\"urn:salus:user\",\"value\":\"");
		cw_body(w, rq->user_id);
		ADDL(w, "\"}}},");
	}
	if (!(rq->client_id || rq->remote_addr || !rq->user_id)) /* BALP: the server is the destination agent */
		return ADDL(w, SERVER_AGENT);
	if (rq->client_id) {
		if (rq->user_id)
			ADDL(w, CLIENT_AGENT("false") CLIENT_WHO);
		else
			ADDL(w, CLIENT_AGENT("true") CLIENT_WHO);
		cw_body(w, rq->client_id);
		if (!rq->remote_addr)
			return ADDL(w, "\"}}}," SERVER_AGENT);
		ADDL(w, "\"}},\"network\":{\"address\":\"");
	} else {
		if (rq->user_id)
			ADDL(w, CLIENT_AGENT("false"));
		else
			ADDL(w, CLIENT_AGENT("true"));
		if (!rq->remote_addr)
			return ADDL(w, "}," SERVER_AGENT);
		ADDL(w, ",\"network\":{\"address\":\"");
	}
	cw_body(w, rq->remote_addr);
	if (looks_like_ip(rq->remote_addr))
		return ADDL(w, "\",\"type\":\"2\"}}," SERVER_AGENT);
	return ADDL(w, "\",\"type\":\"1\"}}," SERVER_AGENT);
}

#define ENT_PAT                                                                                              \
	"\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"1\"},\"role\":{\"system\":\"" SYS_ROLE            \
	"\",\"code\":\"1\"},\"what\":{\"reference\":\"Patient/"
#define ENT_RES                                                                                              \
	"\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"2\"},\"role\":{\"system\":\"" SYS_ROLE            \
	"\",\"code\":\"4\"},\"what\":{\"reference\":\""
#define ENT_QRY                                                                                              \
	"\"type\":{\"system\":\"" SYS_ENTITY_TYPE "\",\"code\":\"2\"},\"role\":{\"system\":\"" SYS_ROLE            \
	"\",\"code\":\"24\"}"

static void put_u(struct cw *w, unsigned long v)
{
	char num[24], *d = num + sizeof num;
	do
		*--d = (char)('0' + v % 10);
	while ((v /= 10) && d > num);
	cw_add(w, d, (size_t)(num + sizeof num - d));
}

/* The entities: the resource, each patient (a reference entity's closing `"}}` goes with what
 * follows it, as the dictionary cuts), the query. */
static int put_entities(struct cw *w, const struct salus_audit_req *rq)
{
	bool first = true, self_patient = false;

	if (rq->resource_type && !type_ok(rq->resource_type))
		return w->rc = SALUS_EINVALID;
	if (rq->resource_type && rq->id) {
		if (!fhir_id_ok(rq->id))
			return w->rc = SALUS_EINVALID;
		self_patient = !strcmp(rq->resource_type, "Patient");
		if (self_patient) { /* Person, role Patient; "Patient/" is in the literal */
			ADDL(w, ",\"entity\":[{" ENT_PAT);
		} else { /* System Object, role Domain Resource */
			ADDL(w, ",\"entity\":[{" ENT_RES);
			cw_adds(w, rq->resource_type);
			cw_addc(w, '/');
		}
		first = false;
		cw_adds(w, rq->id);
		if (rq->version > 0) {
			ADDL(w, "/_history/");
			put_u(w, (unsigned long)rq->version);
		}
	}
	for (size_t i = 0; i < rq->npatients && !w->rc; i++) {
		const char *p = rq->patients[i];
		if (!p || !fhir_id_ok(p))
			return w->rc = SALUS_EINVALID;
		if (self_patient && !strcmp(p, rq->id))
			continue; /* already the resource entity, with role patient */
		if (first)
			ADDL(w, ",\"entity\":[{" ENT_PAT);
		else
			ADDL(w, "\"}},{" ENT_PAT);
		first = false;
		cw_adds(w, p);
	}
	if (rq->query || (rq->resource_type && !rq->id)) {
		if (first) /* System Object, role Query */
			ADDL(w, ",\"entity\":[{" ENT_QRY);
		else
			ADDL(w, "\"}},{" ENT_QRY);
		if (rq->resource_type) {
			ADDL(w, ",\"description\":\"");
			cw_adds(w, rq->resource_type);
			cw_addc(w, '"');
		}
		if (rq->query) {
			size_t qn = strnlen(rq->query, SALUS_MAX_URL + 1), bn;
			char *b64;
			if (qn > SALUS_MAX_URL)
				return w->rc = w->rc ? w->rc : SALUS_ETOOLARGE;
			bn = sodium_base64_ENCODED_LEN(qn, sodium_base64_VARIANT_ORIGINAL);
			if (!(b64 = salus_malloc(bn)))
				return w->rc = w->rc ? w->rc : SALUS_ENOMEM;
			sodium_bin2base64(b64, bn, (const unsigned char *)rq->query, qn, sodium_base64_VARIANT_ORIGINAL);
			ADDL(w, ",\"query\":\"");
			cw_adds(w, b64);
			cw_addc(w, '"');
			salus_free(b64);
		}
		return ADDL(w, "}]}");
	}
	if (first)
		return cw_addc(w, '}');
	return ADDL(w, "\"}}]}");
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

/* The compact form of everything after `"id":"INDEX` : `",` then the members, then `}`. */
static int build(struct cw *w, const struct salus_audit_req *rq)
{
	const struct kind *k = &kinds[rq->interaction];
	char instant[SALUS_INSTANT_LEN];

	pthread_once(&frags_once, frags_build);
	if (k->sub_sys && rq->operation) {
		cw_frag(w, (enum frag)(FR_HEAD_OP + rq->interaction));
		ADDL(w, ",{\"system\":\"urn:salus:operation\",\"code\":\"");
		cw_body(w, rq->operation);
		ADDL(w, "\"}],\"action\":\"");
		cw_adds(w, k->action);
		ADDL(w, "\",\"recorded\":\"");
	} else {
		cw_frag(w, (enum frag)(FR_HEAD + rq->interaction));
	}
	instant_format(rq->ts_ms ? rq->ts_ms : salus_now_ms(), instant);
	cw_adds(w, instant);
	if (rq->status == 200 && !rq->status_2xx && !rq->purpose) { /* most events: as one literal */
		ADDL(w, "\",\"outcome\":\"0\",\"outcomeDesc\":\"HTTP 200\",\"agent\":[");
	} else {
		ADDL(w, "\",\"outcome\":\"");
		cw_adds(w, rq->status_2xx ? "0" : outcome_of(rq->status));
		cw_addc(w, '"');
		if (rq->status > 0 && !rq->status_2xx) {
			ADDL(w, ",\"outcomeDesc\":\"HTTP ");
			put_u(w, (unsigned long)rq->status);
			cw_addc(w, '"');
		}
		if (rq->purpose) {
			ADDL(w, ",\"purposeOfEvent\":[{\"coding\":[{\"system\":\"" SYS_ACTREASON "\",\"code\":\"");
			cw_body(w, rq->purpose);
			ADDL(w, "\"}]}]");
		}
		ADDL(w, ",\"agent\":[");
	}
	if (w->rc || put_agents(w, rq))
		return w->rc;
	return put_entities(w, rq);
}

int audit_event_compact(const struct salus_audit_req *rq, struct salus_buf *post)
{
	static const char room[512]; /* one allocation for a typical event (~100 bytes) and its stages */
	struct cw w = {.out = post};
	size_t n0;

	if (!rq || !post || (unsigned)rq->interaction >= SALUS_AUDIT__COUNT ||
	    rq->npatients > SALUS_AUDIT_MAX_PATIENTS || (rq->npatients && !rq->patients) || rq->ts_ms < 0)
		return SALUS_EINVALID;
	n0 = post->n;
	if (post->cap - n0 < sizeof room) {
		if (salus_buf_add(post, room, sizeof room))
			return SALUS_ENOMEM;
		post->n = n0;
		post->p[n0] = 0;
	}
	return build(&w, rq);
}

const unsigned char *audit_event_compact_pre(size_t *n)
{
	pthread_once(&frags_once, frags_build);
	*n = frags[FR_PREFIX].n;
	return frags[FR_PREFIX].b;
}

int salus_audit_event_render(const struct salus_audit_req *rq, char **pre, size_t *pre_n, char **post, size_t *post_n)
{
	struct salus_buf c, t;
	char *head;
	int rc;

	static const char room[2048]; /* one allocation for a typical event's text */
	salus_buf_init(&c, SALUS_STORE_AUC_BOUND((size_t)SALUS_MAX_AUDIT_EVENT));
	salus_buf_init(&t, SALUS_MAX_AUDIT_EVENT - 64);
	if ((rc = audit_event_compact(rq, &c)))
		goto out_bufs;
	if ((rc = salus_buf_add(&t, room, sizeof room)))
		goto out_bufs;
	t.n = 0;
	t.p[0] = 0;
	if ((rc = salus_store_audit_decode((const unsigned char *)c.p, c.n, &t)))
		goto out_bufs;
	if (!(head = salus_strdup(SALUS_AUDIT_EVENT_PREFIX))) {
		rc = SALUS_ENOMEM;
		goto out_bufs;
	}
	if (!(*post = salus_buf_detach(&t, post_n))) {
		salus_free(head);
		rc = SALUS_ENOMEM;
		goto out_bufs;
	}
	*pre = head;
	*pre_n = strlen(head);
out_bufs:
	salus_buf_release(&c);
	salus_buf_release(&t);
	return rc;
}

bool salus_audit_event_has_index(const char *event, size_t n, int64_t i)
{
	char want[sizeof SALUS_AUDIT_EVENT_PREFIX + 24];
	int k = snprintf(want, sizeof want, SALUS_AUDIT_EVENT_PREFIX "%" PRId64 "\",", i);
	return k > 0 && (size_t)k <= n && !memcmp(event, want, (size_t)k);
}
