/*
 * audit_codec.c — the compact on-disk form of audit event texts (format in audit_codec.h).
 *
 * The dictionary holds the fixed fragments the AuditEvent builder (src/audit/event.c) writes, longest
 * first where they overlap; the encoder is greedy (at each position the longest fragment that matches,
 * else the byte), the decoder a table walk.  Both are plain byte operations: the text does not need to
 * be JSON, and any byte string round-trips.  A typical audited read's 1.2 KB event is stored in about
 * a tenth of that.
 *
 * THE DICTIONARY IS PART OF FORMAT 1: entries are never changed, removed or reordered (events
 * already stored refer to them by position).  New fragments go in a new format.
 */
#include "store/audit_codec.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/limits.h"
#include "store/store.h"

#define ESC     0x1e
#define EXT     0x1f
#define NSINGLE 29 /* tokens 0x01..0x1d */

#define SYS_TERM "http://terminology.hl7.org/CodeSystem/"
#define SYS_DCM  "http://dicom.nema.org/resources/ontology/DCM"
#define REST_TYPE                                                                                            \
	"\"type\":{\"system\":\"" SYS_TERM "audit-event-type\",\"code\":\"rest\"},\"subtype\":[{\"system\":" \
	"\"http://hl7.org/fhir/restful-interaction\",\"code\":\""
#define SERVER_AGENT                                                                                         \
	"{\"type\":{\"coding\":[{\"system\":\"" SYS_DCM                                                      \
	"\",\"code\":\"110152\"}]},\"who\":{\"identifier\":{\"system\":"                                     \
	"\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}],\"source\":{\"observer\":{"        \
	"\"display\":"                                                                                       \
	"\"salus\"},\"type\":[{\"system\":\"" SYS_TERM "security-source-type\",\"code\":\"4\"}]}"
#define ENTITY_PATIENT                                                                                       \
	"{\"type\":{\"system\":\"" SYS_TERM                                                                  \
	"audit-entity-type\",\"code\":\"1\"},\"role\":{\"system\":\"" SYS_TERM                               \
	"object-role\",\"code\":\"1\"},\"what\":{\"reference\":\"Patient/"
#define ENTITY_RESOURCE                                                                                      \
	"{\"type\":{\"system\":\"" SYS_TERM                                                                  \
	"audit-entity-type\",\"code\":\"2\"},\"role\":{\"system\":\"" SYS_TERM                               \
	"object-role\",\"code\":\"4\"},\"what\":{\"reference\":\""
#define ENTITY_QUERY                                                                                         \
	"{\"type\":{\"system\":\"" SYS_TERM                                                                  \
	"audit-entity-type\",\"code\":\"2\"},\"role\":{\"system\":\"" SYS_TERM                               \
	"object-role\",\"code\":\"24\"}"
#define CLIENT_AGENT(req)                                                                                    \
	"{\"type\":{\"coding\":[{\"system\":\"" SYS_DCM "\",\"code\":\"110153\"}]},\"requestor\":" req       \
	",\"who\":"                                                                                          \
	"{\"identifier\":{\"system\":\"urn:salus:client\",\"value\":\""

static const char *const dict[] = {
    /* one-byte tokens (29): the fragments of every audited FHIR request */
    "{\"resourceType\":\"AuditEvent\",\"id\":\"",
    "\",\"meta\":{\"profile\":[\"https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.",
    "\"]}," REST_TYPE,
    "\"," REST_TYPE,
    "\"}],\"action\":\"R\",\"recorded\":\"",
    "\"}],\"action\":\"E\",\"recorded\":\"",
    "\"}],\"action\":\"C\",\"recorded\":\"",
    "\"}],\"action\":\"U\",\"recorded\":\"",
    "\"}],\"action\":\"D\",\"recorded\":\"",
    "\",\"outcome\":\"0\",\"outcomeDesc\":\"HTTP 200\",\"agent\":[",
    "\",\"outcome\":\"",
    ",\"outcomeDesc\":\"HTTP ",
    ",\"agent\":[",
    CLIENT_AGENT("true"),
    CLIENT_AGENT("false"),
    "\"}},\"network\":{\"address\":\"",
    "\",\"type\":\"2\"}}," SERVER_AGENT,
    "\",\"type\":\"1\"}}," SERVER_AGENT,
    "\"}}," SERVER_AGENT,
    SERVER_AGENT,
    ",\"entity\":[" ENTITY_PATIENT,
    "\"}}," ENTITY_PATIENT,
    ",\"entity\":[" ENTITY_RESOURCE,
    "\"}}," ENTITY_RESOURCE,
    ",\"entity\":[" ENTITY_QUERY,
    "\"}}," ENTITY_QUERY,
    "\"}}]}",
    "{\"type\":{\"coding\":[{\"system\":\"" SYS_TERM
    "v3-ParticipationType\",\"code\":\"IRCP\"}]},\"requestor\":true,"
    "\"who\":{\"identifier\":{\"system\":\"urn:salus:user\",\"value\":\"",
    ",\"purposeOfEvent\":[{\"coding\":[{\"system\":\"" SYS_TERM "v3-ActReason\",\"code\":",
    /* two-byte tokens */
    "Read",
    "Query",
    "Create",
    "Update",
    "Delete",
    "search-type",
    "search-system",
    "history-instance",
    "history-type",
    "history-system",
    "capabilities",
    "operation",
    "transaction",
    "batch",
    "vread",
    "read",
    "create",
    "update",
    "patch",
    "delete",
    ",{\"system\":\"urn:salus:operation\",\"code\":",
    "$everything",
    "$validate",
    "{\"system\":\"" SYS_DCM "\",\"code\":\"",
    "\"type\":{\"system\":\"" SYS_DCM "\",\"code\":\"",
    SYS_DCM,
    ("{\"system\":\"" SYS_TERM), /* parenthesised: one entry, not a missing comma */
    SYS_TERM,
    "http://hl7.org/fhir/restful-interaction",
    "\"},\"subtype\":[",
    "\",\"type\":",
    "\"type\":",
    "\",\"code\":\"",
    "\"system\":\"",
    "\"}]",
    "\"},",
    "\"}}",
    "}]}]",
    "\"requestor\":true",
    "\"requestor\":false",
    ",\"who\":{\"identifier\":{\"system\":\"",
    "urn:salus:",
    "\",\"value\":\"",
    "\"what\":{\"reference\":\"",
    "/_history/",
    ",\"description\":\"",
    ",\"query\":\"",
    "HTTP 20",
    "HTTP 40",
    "HTTP 50",
    "\"recorded\":\"",
    "\"action\":\"",
    "\",\"outcome\":\"4\"",
    "\",\"outcome\":\"8\"",
    "\",\"outcome\":\"12\"",
    "\",\"outcome\":\"0\"",
    "\"]},",
    "Patient/",
    "Observation/",
    "Encounter/",
    "Condition/",
    "Procedure/",
    "MedicationRequest/",
    "DiagnosticReport/",
    "Immunization/",
    "AllergyIntolerance/",
    "110114",
    "110122",
    "110123",
    "110101",
    "110100",
    "127.0.0.1",
    "::1",
    "\",\"type\":\"2\"}},",
    "\",\"type\":\"1\"}},",
    "\"}},",
    "},{",
    "000Z\",",
    "0Z\",",
    "Z\",",
    "2025-",
    "2026-",
    "2027-",
    "2028-",
    "2029-",
    "2030-",
};

#define NDICT (sizeof dict / sizeof dict[0])
_Static_assert(NDICT <= NSINGLE + 256, "the dictionary has at most 285 entries");

/* The encoder's index: dictionary positions bucketed by their first two bytes (every entry has at
 * least three), longest first within a bucket. */
#define NBUCKET 1024
#define BUCKET(c0, c1) ((((unsigned)(c0) * 257u) + (unsigned)(c1)) & (NBUCKET - 1))
static uint16_t by_bucket[NDICT];
static uint16_t bucket_at[NBUCKET + 1]; /* by_bucket[bucket_at[h] .. bucket_at[h + 1]) hash to h */
static uint16_t dict_len[NDICT];
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

static unsigned bucket_of(size_t d)
{
	return BUCKET((unsigned char)dict[d][0], (unsigned char)dict[d][1]);
}

static void index_build(void)
{
	size_t i, at = 0;
	for (i = 0; i < NDICT; i++)
		dict_len[i] = (uint16_t)strlen(dict[i]);
	for (unsigned h = 0; h < NBUCKET; h++) {
		bucket_at[h] = (uint16_t)at;
		size_t start = at;
		for (i = 0; i < NDICT; i++)
			if (bucket_of(i) == h) {
				/* insertion by length, descending (stable: earlier entries first on ties) */
				size_t k = at++;
				while (k > start && dict_len[by_bucket[k - 1]] < dict_len[i]) {
					by_bucket[k] = by_bucket[k - 1];
					k--;
				}
				by_bucket[k] = (uint16_t)i;
			}
	}
	bucket_at[NBUCKET] = (uint16_t)at;
}

size_t salus_auc_marker(unsigned char *out)
{
	out[0] = 0x00;
	out[1] = 0x01;
	return 2;
}

bool salus_auc_is_encoded(const void *v, size_t n)
{
	return n >= 2 && ((const unsigned char *)v)[0] == 0x00;
}

size_t salus_auc_encode(const char *src, size_t n, unsigned char *out)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	pthread_once(&index_once, index_build);
	while (i < n) {
		unsigned c = s[i];
		size_t k, best = NDICT;
		if (i + 2 < n) {
			unsigned h = BUCKET(c, s[i + 1]);
			for (k = bucket_at[h]; k < bucket_at[h + 1]; k++) {
				size_t d = by_bucket[k], len = dict_len[d];
				if (len <= n - i && (unsigned char)dict[d][0] == c && !memcmp(s + i, dict[d], len)) {
					best = d;
					break;
				}
			}
		}
		if (best < NSINGLE) {
			out[o++] = (unsigned char)(best + 1);
			i += dict_len[best];
		} else if (best < NDICT) {
			out[o++] = EXT;
			out[o++] = (unsigned char)(best - NSINGLE);
			i += dict_len[best];
		} else if (c < 0x20) {
			out[o++] = ESC;
			out[o++] = (unsigned char)c;
			i++;
		} else {
			out[o++] = (unsigned char)c;
			i++;
		}
	}
	return o;
}

int salus_auc_visit(const unsigned char *s, size_t n, int (*fn)(void *ctx, const void *p, size_t n), void *ctx)
{
	size_t i, run;
	int rc;

	if (n && !s)
		return SALUS_EINVALID;
	pthread_once(&index_once, index_build);
	for (i = 0, run = 0; i < n; i++) {
		unsigned c = s[i];
		size_t d;
		if (c >= 0x20)
			continue; /* a run of literal bytes, given at once below */
		if (i > run && (rc = fn(ctx, s + run, i - run)))
			return rc;
		if (c == 0)
			return SALUS_EIO;
		if (c == ESC || c == EXT) {
			if (++i == n)
				return SALUS_EIO;
			if (c == ESC) {
				if ((rc = fn(ctx, s + i, 1)))
					return rc;
				run = i + 1;
				continue;
			}
			d = NSINGLE + s[i];
		} else {
			d = c - 1;
		}
		if (d >= NDICT)
			return SALUS_EIO;
		if ((rc = fn(ctx, dict[d], dict_len[d])))
			return rc;
		run = i + 1;
	}
	return n > run ? fn(ctx, s + run, n - run) : SALUS_OK;
}

static int buf_piece(void *ctx, const void *p, size_t n)
{
	return salus_buf_add(ctx, p, n);
}

/* Append the text of compact bytes s[0..n) (no marker) to out. */
static int decode_body(const unsigned char *s, size_t n, struct salus_buf *out)
{
	return salus_auc_visit(s, n, buf_piece, out);
}

int salus_auc_decode(const void *v, size_t n, struct salus_buf *out)
{
	const unsigned char *s = v;
	int rc;

	salus_buf_reset(out);
	if (!salus_auc_is_encoded(v, n)) /* stored as text */
		return n > SALUS_MAX_AUDIT_EVENT ? SALUS_ETOOLARGE : salus_buf_add(out, v, n);
	if (s[1] != 0x01)
		return SALUS_EIO; /* a format this version does not know */
	if ((rc = decode_body(s + 2, n - 2, out)))
		return rc;
	return out->n > SALUS_MAX_AUDIT_EVENT ? SALUS_ETOOLARGE : SALUS_OK;
}

int salus_auc_decode_append(const unsigned char *c, size_t n, struct salus_buf *out)
{
	if (n && !c)
		return SALUS_EINVALID;
	return decode_body(c, n, out);
}

int salus_auc_text_len(const unsigned char *c, size_t n, size_t *len)
{
	size_t i, t = 0;

	if (n && !c)
		return SALUS_EINVALID;
	pthread_once(&index_once, index_build);
	for (i = 0; i < n; i++) {
		unsigned b = c[i];
		if (b >= 0x20) {
			t++;
			continue;
		}
		if (b == 0 || ((b == ESC || b == EXT) && ++i == n))
			return SALUS_EINVALID;
		if (b == ESC)
			t++;
		else if (b == EXT && NSINGLE + (size_t)c[i] >= NDICT)
			return SALUS_EINVALID;
		else
			t += dict_len[b == EXT ? NSINGLE + (size_t)c[i] : (size_t)b - 1];
	}
	*len = t;
	return SALUS_OK;
}

/* ---- the store's public face of the codec (store.h) ---- */

size_t salus_store_audit_encode(const char *text, size_t n, unsigned char *out)
{
	return salus_auc_encode(text, n, out);
}

size_t salus_store_audit_encode_raw(const char *text, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c < 0x20)
			out[o++] = ESC;
		out[o++] = c;
	}
	return o;
}

int salus_store_audit_decode(const unsigned char *c, size_t n, struct salus_buf *out)
{
	return salus_auc_decode_append(c, n, out);
}
