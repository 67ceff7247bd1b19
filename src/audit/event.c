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
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

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

static json_t *coding(const char *sys, const char *code, const char *display)
{
	return json_pack("{s:s, s:s, s:s}", "system", sys, "code", code, "display", display);
}

/* jansson refuses invalid UTF-8 (json_string → NULL): that is a bad request, not ENOMEM. */
static int set_str(json_t *o, const char *k, const char *v)
{
	json_t *s = json_string(v);
	if (!s)
		return utf8_ok(v) ? SALUS_ENOMEM : SALUS_EINVALID;
	return json_object_set_new(o, k, s) ? SALUS_ENOMEM : SALUS_OK;
}

static int add(json_t *arr, json_t *v)
{
	if (!v)
		return SALUS_ENOMEM;
	return json_array_append_new(arr, v) ? SALUS_ENOMEM : SALUS_OK;
}

static int agent_who(json_t *agent, const char *sys, const char *value)
{
	json_t *ident = json_object(), *who = json_object();
	int rc;
	if (!ident || !who || json_object_set_new(who, "identifier", ident)) {
		json_decref(ident);
		json_decref(who);
		return SALUS_ENOMEM;
	}
	if ((rc = set_str(ident, "system", sys)) || (rc = set_str(ident, "value", value))) {
		json_decref(who);
		return rc;
	}
	return json_object_set_new(agent, "who", who) ? SALUS_ENOMEM : SALUS_OK;
}

static bool looks_like_ip(const char *a)
{
	for (; *a; a++)
		if (!((*a >= '0' && *a <= '9') || (*a >= 'a' && *a <= 'f') || (*a >= 'A' && *a <= 'F') || *a == '.' ||
		      *a == ':'))
			return false;
	return true;
}

static int agents(json_t *ev, const struct salus_audit_req *rq)
{
	json_t *arr = json_array(), *a;
	int rc = SALUS_ENOMEM;
	if (!arr || json_object_set_new(ev, "agent", arr))
		return SALUS_ENOMEM;
	if (rq->user_id) {
		a = json_pack("{s:{s:[o]}, s:b}", "type", "coding",
			      coding(SYS_PARTICIPATION, "IRCP", "information recipient"), "requestor", 1);
		if ((rc = add(arr, a)) || (rc = agent_who(a, "urn:salus:user", rq->user_id)))
			return rc;
	}
	if (rq->client_id || rq->remote_addr || !rq->user_id) {
		a = json_pack("{s:{s:[o]}, s:b}", "type", "coding", coding(SYS_DCM, "110153", "Source Role ID"),
			      "requestor", !rq->user_id);
		if ((rc = add(arr, a)))
			return rc;
		if (rq->client_id && (rc = agent_who(a, "urn:salus:client", rq->client_id)))
			return rc;
		if (rq->remote_addr) {
			json_t *net = json_object();
			if (!net || json_object_set_new(a, "network", net))
				return SALUS_ENOMEM;
			if ((rc = set_str(net, "address", rq->remote_addr)) ||
			    (rc = set_str(net, "type", looks_like_ip(rq->remote_addr) ? "2" : "1")))
				return rc;
		}
	}
	/* BALP: the server is the destination agent */
	a = json_pack("{s:{s:[o]}, s:{s:{s:s, s:s}}, s:b}", "type", "coding",
		      coding(SYS_DCM, "110152", "Destination Role ID"), "who", "identifier", "system",
		      "urn:salus:server", "value", "salus", "requestor", 0);
	return add(arr, a);
}

static json_t *entity(const char *type_code, const char *type_display, const char *role_code,
		      const char *role_display)
{
	return json_pack("{s:o, s:o}", "type", coding(SYS_ENTITY_TYPE, type_code, type_display), "role",
			 coding(SYS_ROLE, role_code, role_display));
}

static int entity_ref(json_t *arr, const char *ref, bool patient)
{
	json_t *e = patient ? entity("1", "Person", "1", "Patient") : entity("2", "System Object", "4", "Domain Resource");
	json_t *what = json_object();
	int rc;
	if (!e || !what || json_object_set_new(e, "what", what)) {
		json_decref(e);
		json_decref(what);
		return SALUS_ENOMEM;
	}
	if ((rc = set_str(what, "reference", ref))) {
		json_decref(e);
		return rc;
	}
	return add(arr, e);
}

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

static int entities(json_t *ev, const struct salus_audit_req *rq)
{
	json_t *arr = json_array();
	char ref[SALUS_MAX_ID + 64 + 48];
	bool self_patient = false;
	int rc;

	if (!arr || json_object_set_new(ev, "entity", arr))
		return SALUS_ENOMEM;
	if (rq->resource_type && rq->id) {
		if (!type_ok(rq->resource_type) || !fhir_id_ok(rq->id))
			return SALUS_EINVALID;
		self_patient = !strcmp(rq->resource_type, "Patient");
		if (rq->version > 0)
			snprintf(ref, sizeof ref, "%s/%s/_history/%ld", rq->resource_type, rq->id, rq->version);
		else
			snprintf(ref, sizeof ref, "%s/%s", rq->resource_type, rq->id);
		if ((rc = entity_ref(arr, ref, self_patient)))
			return rc;
	}
	for (size_t i = 0; i < rq->npatients; i++) {
		const char *p = rq->patients[i];
		if (!p || !fhir_id_ok(p))
			return SALUS_EINVALID;
		if (self_patient && !strcmp(p, rq->id))
			continue; /* already the resource entity, with role patient */
		snprintf(ref, sizeof ref, "Patient/%s", p);
		if ((rc = entity_ref(arr, ref, true)))
			return rc;
	}
	if (rq->query || (rq->resource_type && !rq->id)) {
		json_t *e = entity("2", "System Object", "24", "Query");
		if ((rc = add(arr, e)))
			return rc;
		if (rq->resource_type) {
			if (!type_ok(rq->resource_type))
				return SALUS_EINVALID;
			if ((rc = set_str(e, "description", rq->resource_type)))
				return rc;
		}
		if (rq->query) {
			size_t qn = strnlen(rq->query, SALUS_MAX_URL + 1), bn;
			char *b64;
			if (qn > SALUS_MAX_URL)
				return SALUS_ETOOLARGE;
			bn = sodium_base64_ENCODED_LEN(qn, sodium_base64_VARIANT_ORIGINAL);
			if (!(b64 = salus_malloc(bn)))
				return SALUS_ENOMEM;
			sodium_bin2base64(b64, bn, (const unsigned char *)rq->query, qn, sodium_base64_VARIANT_ORIGINAL);
			rc = set_str(e, "query", b64);
			salus_free(b64);
			if (rc)
				return rc;
		}
	}
	if (json_array_size(arr) == 0)
		json_object_del(ev, "entity");
	return SALUS_OK;
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

static int build(const struct salus_audit_req *rq, json_t *ev)
{
	const struct kind *k = &kinds[rq->interaction];
	char instant[SALUS_INSTANT_LEN], desc[32];
	json_t *sub;
	int rc;

	if (k->profile) {
		char prof[128];
		snprintf(prof, sizeof prof, BALP "%s", k->profile);
		if (json_object_set_new(ev, "meta", json_pack("{s:[s]}", "profile", prof)))
			return SALUS_ENOMEM;
	}
	if (json_object_set_new(ev, "type", coding(k->type_sys, k->type_code, k->type_display)))
		return SALUS_ENOMEM;
	if (k->sub_sys) {
		if (!(sub = json_array()) || json_object_set_new(ev, "subtype", sub) ||
		    (rc = add(sub, coding(k->sub_sys, k->sub_code, k->sub_display))) != SALUS_OK)
			return SALUS_ENOMEM;
		if (rq->operation) {
			json_t *op = json_pack("{s:s}", "system", "urn:salus:operation");
			if ((rc = add(sub, op)) || (rc = set_str(op, "code", rq->operation)))
				return rc;
		}
	}
	salus_instant_format(rq->ts_ms ? rq->ts_ms : salus_now_ms(), instant);
	snprintf(desc, sizeof desc, "HTTP %d", rq->status);
	if (json_object_set_new(ev, "action", json_string(k->action)) ||
	    json_object_set_new(ev, "recorded", json_string(instant)) ||
	    json_object_set_new(ev, "outcome", json_string(outcome_of(rq->status))))
		return SALUS_ENOMEM;
	if (rq->status > 0 && json_object_set_new(ev, "outcomeDesc", json_string(desc)))
		return SALUS_ENOMEM;
	if (rq->purpose) {
		json_t *c = json_pack("{s:s}", "system", SYS_ACTREASON);
		json_t *pou = json_pack("[{s:[o]}]", "coding", c);
		if (!c || !pou || json_object_set_new(ev, "purposeOfEvent", pou))
			return SALUS_ENOMEM;
		if ((rc = set_str(c, "code", rq->purpose)))
			return rc;
	}
	if ((rc = agents(ev, rq)))
		return rc;
	if (json_object_set_new(ev, "source",
				json_pack("{s:{s:s}, s:[o]}", "observer", "display", "salus", "type",
					  coding(SYS_SOURCE, "4", "Application Server"))))
		return SALUS_ENOMEM;
	return entities(ev, rq);
}

static int dump_cb(const char *p, size_t n, void *ctx)
{
	return salus_buf_add(ctx, p, n) ? -1 : 0;
}

int salus_audit_event_render(const struct salus_audit_req *rq, char **pre, size_t *pre_n, char **post, size_t *post_n)
{
	struct salus_buf b;
	json_t *ev;
	char *head;
	int rc;

	if (!rq || (unsigned)rq->interaction >= SALUS_AUDIT__COUNT || rq->npatients > SALUS_AUDIT_MAX_PATIENTS ||
	    (rq->npatients && !rq->patients) || rq->ts_ms < 0)
		return SALUS_EINVALID;
	if (!(ev = json_object()))
		return SALUS_ENOMEM;
	if ((rc = build(rq, ev)))
		goto out_ev;
	/* `{"resourceType":"AuditEvent","id":"` INDEX `",` + the rest of the object */
	salus_buf_init(&b, SALUS_MAX_AUDIT_EVENT);
	if (salus_buf_adds(&b, "\",") || json_dump_callback(ev, dump_cb, &b, JSON_COMPACT | JSON_ENSURE_ASCII)) {
		rc = json_dumpb(ev, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII) >= SALUS_MAX_AUDIT_EVENT - 64
			     ? SALUS_ETOOLARGE
			     : SALUS_ENOMEM;
		salus_buf_release(&b);
		goto out_ev;
	}
	/* drop the object's own '{' (the third byte) */
	memmove(b.p + 2, b.p + 3, b.n - 2);
	b.n--;
	if (!(head = salus_strdup(SALUS_AUDIT_EVENT_PREFIX))) {
		salus_buf_release(&b);
		rc = SALUS_ENOMEM;
		goto out_ev;
	}
	if (!(*post = salus_buf_detach(&b, post_n))) {
		salus_free(head);
		rc = SALUS_ENOMEM;
		goto out_ev;
	}
	*pre = head;
	*pre_n = strlen(head);
	rc = SALUS_OK;
out_ev:
	json_decref(ev);
	return rc;
}

bool salus_audit_event_has_index(const char *event, size_t n, int64_t i)
{
	char want[sizeof SALUS_AUDIT_EVENT_PREFIX + 24];
	int k = snprintf(want, sizeof want, SALUS_AUDIT_EVENT_PREFIX "%" PRId64 "\",", i);
	return k > 0 && (size_t)k <= n && !memcmp(event, want, (size_t)k);
}
