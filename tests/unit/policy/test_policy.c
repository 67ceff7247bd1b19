/*
 * test_policy.c — the access decision (policy/policy.h): which scope wins for
 * a (type, letter), when patient/ scopes grant, v2 restrictions, and the
 * patient context of patient and proxy (RelatedPerson) users against a real
 * temporary store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/clock.h"
#include "core/err.h"
#include "policy/policy.h"
#include "store/store.h"

#define RS (SALUS_POLICY_BIT(SALUS_POLICY_R) | SALUS_POLICY_BIT(SALUS_POLICY_S))
#define ALL 0x1fu
#define LAB "category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"

static struct salus_policy pol(const struct salus_policy_scope *v, size_t n, bool user, const char *fhir_user,
			       const char *claim)
{
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = n, .user_ctx = user, .fhir_user = fhir_user, .patient = claim};
	assert_int_equal(salus_policy_init(&p, NULL, NULL, &t), 0);
	return p;
}

static void test_system_scopes(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_SYSTEM, "Patient", RS, NULL}};
	struct salus_policy p = pol(v, 1, false, NULL, NULL);
	struct salus_policy_rule r = salus_policy_rule(&p, "Patient", SALUS_POLICY_R);
	assert_true(r.granted);
	assert_false(r.compartment);
	assert_null(r.query);
	assert_false(salus_policy_allows(&p, "Patient", SALUS_POLICY_C));
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	assert_false(salus_policy_allows(&p, "*", SALUS_POLICY_S)); /* system-wide needs a "*" scope */
	assert_false(salus_policy_restricts(&p));
	assert_false(salus_policy_allows(NULL, "Patient", SALUS_POLICY_R));
}

static void test_patient_scopes_need_a_context(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", RS, NULL}};
	struct salus_policy p = pol(v, 1, true, NULL, NULL); /* no fhirUser: no context */
	assert_string_equal(p.patient, "");
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	assert_false(salus_policy_restricts(&p));
	p = pol(v, 1, true, "Practitioner/d1", NULL); /* staff: no patient context */
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	p = pol(v, 1, true, "Patient/p1", NULL);
	assert_string_equal(p.patient, "p1");
	struct salus_policy_rule r = salus_policy_rule(&p, "Observation", SALUS_POLICY_S);
	assert_true(r.granted);
	assert_true(r.compartment);
	assert_true(salus_policy_allows(&p, "*", SALUS_POLICY_S));
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_U));
	assert_true(salus_policy_restricts(&p));
	p = pol(v, 1, true, "Patient/p1", "p2"); /* the token was issued for another patient */
	assert_string_equal(p.patient, "");
	p = pol(v, 1, true, "Patient/bad/id", NULL);
	assert_string_equal(p.patient, "");
	/* without patient/ scopes a patient's fhirUser gives no context (nothing to restrict) */
	const struct salus_policy_scope u[] = {{SALUS_POLICY_CTX_USER, "*", RS, NULL}};
	p = pol(u, 1, true, "Patient/p1", NULL);
	assert_string_equal(p.patient, "");
	assert_true(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	p = pol(u, 1, false, NULL, NULL); /* user/ scopes of a client-credentials token: nothing */
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
}

static void test_widest_kind_wins(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {
		{SALUS_POLICY_CTX_PATIENT, "Observation", RS, LAB},
		{SALUS_POLICY_CTX_PATIENT, "Observation", RS, "category=vital-signs"},
		{SALUS_POLICY_CTX_PATIENT, "Patient", RS, NULL},
		{SALUS_POLICY_CTX_SYSTEM, "Encounter", RS, "status=finished"},
		{SALUS_POLICY_CTX_PATIENT, "Encounter", RS, NULL},
		{SALUS_POLICY_CTX_PATIENT, "*", ALL, "code=x"}, /* a restriction on "*" grants nothing */
		{SALUS_POLICY_CTX_SYSTEM, "Condition", RS, NULL},
		{SALUS_POLICY_CTX_PATIENT, "Condition", RS, NULL},
	};
	struct salus_policy p = pol(v, sizeof v / sizeof *v, true, "Patient/p1", NULL);
	struct salus_policy_rule r = salus_policy_rule(&p, "Observation", SALUS_POLICY_R);
	assert_true(r.granted);
	assert_true(r.compartment);
	assert_string_equal(r.query, LAB); /* two restricted scopes: the first, never the union */
	r = salus_policy_rule(&p, "Encounter", SALUS_POLICY_S);
	assert_true(r.compartment); /* unrestricted patient/ beats restricted system/ */
	assert_null(r.query);
	r = salus_policy_rule(&p, "Condition", SALUS_POLICY_S);
	assert_false(r.compartment); /* unrestricted system/ beats everything */
	assert_false(salus_policy_allows(&p, "Procedure", SALUS_POLICY_R));
	assert_false(salus_policy_allows(&p, "*", SALUS_POLICY_S));
	const char *types[8];
	size_t nt = salus_policy_types(&p, types, 8);
	assert_int_equal(nt, 4);
	assert_string_equal(types[0], "Observation");
	assert_string_equal(types[1], "Patient");
	assert_string_equal(types[2], "Encounter");
	assert_string_equal(types[3], "Condition");
	/* a restricted system/ scope alone restricts (no patient context needed) */
	const struct salus_policy_scope w[] = {{SALUS_POLICY_CTX_SYSTEM, "Observation", RS, LAB}};
	p = pol(w, 1, false, NULL, NULL);
	assert_true(salus_policy_restricts(&p));
	r = salus_policy_rule(&p, "Observation", SALUS_POLICY_S);
	assert_true(r.granted);
	assert_false(r.compartment);
	assert_non_null(r.query);
}

static void test_too_many_scopes(void **state)
{
	(void)state;
	struct salus_policy_scope v[SALUS_POLICY_MAX_SCOPES + 1];
	for (size_t i = 0; i < SALUS_POLICY_MAX_SCOPES + 1; i++)
		v[i] = (struct salus_policy_scope){SALUS_POLICY_CTX_SYSTEM, "Patient", RS, NULL};
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = SALUS_POLICY_MAX_SCOPES + 1};
	assert_int_equal(salus_policy_init(&p, NULL, NULL, &t), SALUS_EINVALID);
}

/* ---- proxies: a real store ---- */

static void put(struct salus_store *st, const char *id, const char *json)
{
	json_t *j = json_loads(json, 0, NULL);
	assert_non_null(j);
	struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = "RelatedPerson", .id = id, .resource = j};
	assert_int_equal(salus_store_write(st, &w, 1), 0);
	salus_write_release(&w);
	json_decref(j);
}

static void test_related_person(void **state)
{
	(void)state;
	char dir[] = "/tmp/salus-policy-XXXXXX", uri[96], cmd[96];
	assert_non_null(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/salus.db", dir);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	struct salus_store_opts o = {.create = true};
	struct salus_store *st = NULL;
	assert_int_equal(salus_store_open(uri, &o, &st), 0);
	put(st, "rp1", "{\"resourceType\":\"RelatedPerson\",\"active\":true,\"patient\":{\"reference\":\"Patient/p1\"}}");
	put(st, "rp2", "{\"resourceType\":\"RelatedPerson\",\"patient\":{\"reference\":\"Patient/p2\"}}");
	put(st, "rp3", "{\"resourceType\":\"RelatedPerson\",\"active\":false,\"patient\":{\"reference\":\"Patient/p1\"}}");
	put(st, "rp4", "{\"resourceType\":\"RelatedPerson\",\"patient\":{\"reference\":\"https://other.example/Patient/p1\"}}");
	put(st, "rp5", "{\"resourceType\":\"RelatedPerson\",\"patient\":{\"display\":\"no reference\"}}");
	put(st, "rp6", "{\"resourceType\":\"RelatedPerson\",\"patient\":{\"reference\":\"Patient/p1\"}}");
	struct salus_write del = {.kind = SALUS_WRITE_DELETE, .type = "RelatedPerson", .id = "rp6"};
	assert_int_equal(salus_store_write(st, &del, 1), 0);
	salus_write_release(&del);

	char pid[SALUS_MAX_ID + 1];
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp1", pid), 0);
	assert_string_equal(pid, "p1");
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp2", pid), 0); /* active absent: active */
	assert_string_equal(pid, "p2");
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp3", pid), SALUS_ENOTFOUND); /* inactive */
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp4", pid), SALUS_ENOTFOUND); /* not local */
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp5", pid), SALUS_ENOTFOUND);
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/rp6", pid), SALUS_ENOTFOUND); /* deleted */
	assert_int_equal(salus_policy_patient_of(st, "RelatedPerson/none", pid), SALUS_ENOTFOUND);
	assert_int_equal(salus_policy_patient_of(NULL, "RelatedPerson/rp1", pid), SALUS_ENOTFOUND);
	assert_int_equal(salus_policy_patient_of(st, "Patient/p9", pid), 0);
	assert_string_equal(pid, "p9");
	assert_int_equal(salus_policy_patient_of(st, "Practitioner/d1", pid), SALUS_ENOTFOUND);

	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", RS, NULL}};
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = 1, .user_ctx = true, .fhir_user = "RelatedPerson/rp1",
				       .patient = "p1"};
	assert_int_equal(salus_policy_init(&p, st, NULL, &t), 0);
	assert_string_equal(p.patient, "p1");
	assert_true(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	/* the RelatedPerson now points at another patient than the token was issued for */
	t.fhir_user = "RelatedPerson/rp2";
	assert_int_equal(salus_policy_init(&p, st, NULL, &t), 0);
	assert_string_equal(p.patient, "");
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	/* deactivated after issue */
	put(st, "rp1", "{\"resourceType\":\"RelatedPerson\",\"active\":false,\"patient\":{\"reference\":\"Patient/p1\"}}");
	t.fhir_user = "RelatedPerson/rp1";
	assert_int_equal(salus_policy_init(&p, st, NULL, &t), 0);
	assert_string_equal(p.patient, "");
	salus_store_free(st);
	assert_int_equal(system(cmd), 0);
}

/* ---- security labels ---- */

static struct salus_policy pol_role(const char *fhir_user, const char *role, bool user, const struct salus_policy_config *cfg)
{
	static const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_USER, "*", RS, NULL}};
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = 1, .user_ctx = user, .user = user ? "u1" : NULL,
				       .fhir_user = fhir_user, .role = role};
	assert_int_equal(salus_policy_init(&p, NULL, cfg, &t), 0);
	return p;
}

static void test_labels_by_role(void **state)
{
	(void)state;
	const uint32_t v = 1u << SALUS_POLICY_LABEL_V, all = (uint32_t)((1ull << salus_policy_label_count()) - 1);
	const char *sys, *code;
	assert_true(salus_policy_label_at(SALUS_POLICY_LABEL_R, &sys, &code));
	assert_string_equal(sys, SALUS_POLICY_CONF_SYSTEM);
	assert_string_equal(code, "R");
	assert_false(salus_policy_label_at(salus_policy_label_count(), &sys, &code));
	struct salus_policy p = pol_role("Practitioner/d1", "clinician", true, NULL);
	assert_int_equal(p.hidden, v);
	assert_int_equal(p.hidden_btg, v);
	assert_true(salus_policy_restricts(&p));
	assert_true(salus_policy_allows(&p, "Observation", SALUS_POLICY_R)); /* labels narrow, scopes still grant */
	p = pol_role("Practitioner/d1", "nurse", true, NULL);
	assert_int_equal(p.hidden, v);
	p = pol_role("Practitioner/d1", "billing", true, NULL);
	assert_int_equal(p.hidden, all);
	assert_int_equal(p.hidden_btg, 0);
	p = pol_role("Practitioner/d1", NULL, true, NULL); /* a token from before roles were claimed */
	assert_int_equal(p.hidden, all);
	p = pol_role("RelatedPerson/r1", "related-person", true, NULL);
	assert_int_equal(p.hidden, all);
	p = pol_role("Patient/p1", "patient", true, NULL);
	assert_int_equal(p.hidden, 0);
	p = pol_role(NULL, NULL, false, NULL); /* a client */
	assert_int_equal(p.hidden, 0);
	assert_false(salus_policy_restricts(&p));
	struct salus_policy_config cfg = {.label_roles = "billing", .label_v_roles = "clinician,admin"};
	p = pol_role("Practitioner/d1", "clinician", true, &cfg);
	assert_int_equal(p.hidden, 0);
	p = pol_role("Practitioner/d1", "billing", true, &cfg);
	assert_int_equal(p.hidden, v);
	p = pol_role("Practitioner/d1", "nurse", true, &cfg);
	assert_int_equal(p.hidden, all);
	cfg.label_roles = "clinicianx"; /* words, not prefixes */
	p = pol_role("Practitioner/d1", "clinician", true, &(struct salus_policy_config){.label_roles = "clinicianx"});
	assert_int_equal(p.hidden, all);
}

static void test_hides(void **state)
{
	(void)state;
	struct salus_policy p = pol_role("Practitioner/d1", "clinician", true, NULL);
	struct salus_policy_code lv[] = {{SALUS_POLICY_CONF_SYSTEM, "V"}}, lr[] = {{SALUS_POLICY_CONF_SYSTEM, "R"}},
				 lother[] = {{"urn:other", "V"}};
	const char *pats[] = {"p1"};
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, lv, 1));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, lr, 1));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, lother, 1)); /* another system's V */
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	memcpy(p.btg[p.nbtg++], "p1", 3); /* break-glass opens V in p1's compartment only */
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, lv, 1));
	const char *other[] = {"p2"};
	assert_true(salus_policy_hides(&p, "Observation", other, 1, lv, 1));
	assert_false(salus_policy_hides(NULL, "Observation", pats, 1, lv, 1));
}

/* ---- Consent ---- */

#define NOW "2026-12-07T12:00:00Z"
static int64_t now_ms(void)
{
	int64_t ms;
	assert_int_equal(salus_instant_parse(NOW, strlen(NOW), &ms), 0);
	return ms;
}

/* A Consent text: status, scope code, patient, provision type, actor and extra provision members. */
static char *consent(const char *status, const char *scope, const char *patient, const char *type, const char *actor,
		     const char *extra)
{
	static char buf[4096];
	snprintf(buf, sizeof buf,
		 "{\"resourceType\":\"Consent\",\"status\":\"%s\",\"scope\":{\"coding\":[{\"system\":"
		 "\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"%s\"}]},\"patient\":{\"reference\":"
		 "\"Patient/%s\"},\"provision\":{\"type\":\"%s\",\"actor\":[{\"role\":{\"text\":\"x\"},\"reference\":{"
		 "\"reference\":\"%s\"}}]%s}}",
		 status, scope, patient, type, actor, extra ? extra : "");
	return buf;
}

static size_t add(struct salus_policy *p, const char *actor, const char *text)
{
	size_t before = p->ndeny;
	assert_int_equal(salus_policy_consent_add(p, actor, text, strlen(text), now_ms()), 0);
	return p->ndeny - before;
}

static void test_consent_add(void **state)
{
	(void)state;
	const char *A = "Practitioner/d1";
	struct salus_policy p = pol_role(A, "clinician", true, NULL);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "deny", A, NULL)), 1);
	assert_string_equal(p.deny[0].patient, "p1");
	assert_int_equal(p.deny[0].nlabels, 0);
	assert_int_equal(p.deny[0].ntypes, 0);
	const char *pats[] = {"p1"}, *other[] = {"p2"};
	assert_true(salus_policy_hides(&p, "Condition", pats, 1, NULL, 0));
	assert_false(salus_policy_hides(&p, "Condition", other, 1, NULL, 0));
	/* not interpreted: inactive, other scope, permit, another actor, no local patient, not JSON */
	assert_int_equal(add(&p, A, consent("inactive", "patient-privacy", "p1", "deny", A, NULL)), 0);
	assert_int_equal(add(&p, A, consent("active", "research", "p1", "deny", A, NULL)), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "permit", A, NULL)), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "deny", "Practitioner/d2", NULL)), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "a/b", "deny", A, NULL)), 0);
	assert_int_equal(add(&p, A, "{\"resourceType\":"), 0);
	assert_int_equal(add(&p, A, "{\"resourceType\":\"Consent\",\"status\":\"active\"}"), 0);
	/* an absolute reference to the actor counts; a look-alike does not */
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p2", "deny", "https://x.example/fhir/Practitioner/d1", NULL)), 1);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p2", "deny", "Practitioner/d1x", NULL)), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p2", "deny", "xPractitioner/d1", NULL)), 0);
	/* the period */
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p3", "deny", A, ",\"period\":{\"start\":\"2027-01-01\"}")), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p3", "deny", A, ",\"period\":{\"end\":\"2026-12-06\"}")), 0);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p3", "deny", A, ",\"period\":{\"end\":\"2026-12-07\"}")), 1);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p3", "deny", A,
					    ",\"period\":{\"start\":\"2026-12-07T11:00:00Z\",\"end\":\"2026-12-07T13:00:00Z\"}")), 1);
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p3", "deny", A,
					    ",\"period\":{\"end\":\"2026-12-07T11:59:59Z\"}")), 0);
}

static void test_consent_narrowing(void **state)
{
	(void)state;
	const char *A = "RelatedPerson/r1";
	struct salus_policy p = pol_role(A, "related-person", true, NULL);
	p.hidden = 0; /* only the Consent here */
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "deny", A,
					    ",\"securityLabel\":[{\"system\":\"" SALUS_POLICY_ACT_SYSTEM "\",\"code\":\"PSY\"}]")), 1);
	assert_int_equal(p.deny[0].nlabels, 1);
	const char *pats[] = {"p1"};
	struct salus_policy_code psy[] = {{SALUS_POLICY_ACT_SYSTEM, "PSY"}}, hiv[] = {{SALUS_POLICY_ACT_SYSTEM, "HIV"}};
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, psy, 1));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, hiv, 1));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	/* a class of resource types */
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "deny", A,
					    ",\"class\":[{\"system\":\"http://hl7.org/fhir/resource-types\",\"code\":\"Condition\"}]")), 1);
	assert_true(salus_policy_hides(&p, "Condition", pats, 1, NULL, 0));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	/* a class that is not a resource type, or a label without a code: the whole compartment (fail safe) */
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent("active", "patient-privacy", "p1", "deny", A,
					    ",\"class\":[{\"system\":\"urn:profiles\",\"code\":\"x\"}],\"securityLabel\":[{\"system\":\"s\"}]")), 1);
	assert_int_equal(p.deny[0].ntypes, 0);
	assert_int_equal(p.deny[0].nlabels, 0);
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	/* the patient's own record is never denied; nor a break-glass patient */
	struct salus_policy q = pol_role("Patient/p1", "patient", true, NULL);
	assert_int_equal(add(&q, "Patient/p1", consent("active", "patient-privacy", "p1", "deny", "Patient/p1", NULL)), 0);
	struct salus_policy b = pol_role("Practitioner/d1", "clinician", true, NULL);
	memcpy(b.btg[b.nbtg++], "p1", 3);
	assert_int_equal(add(&b, "Practitioner/d1", consent("active", "patient-privacy", "p1", "deny", "Practitioner/d1", NULL)), 0);
	assert_int_equal(add(&b, "Practitioner/d1", consent("active", "patient-privacy", "p2", "deny", "Practitioner/d1", NULL)), 1);
}

/* A Consent with provision text prov (a JSON object) on patient pid. */
static char *consent_prov(const char *pid, const char *prov)
{
	static char buf[4096];
	snprintf(buf, sizeof buf,
		 "{\"resourceType\":\"Consent\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
		 "\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},\"patient\":{"
		 "\"reference\":\"Patient/%s\"},\"provision\":%s}",
		 pid, prov);
	return buf;
}

#define ACTOR(r) "{\"role\":{\"text\":\"x\"},\"reference\":{\"reference\":\"" r "\"}}"
#define RT "\"system\":\"http://hl7.org/fhir/resource-types\""
#define REASON "\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActReason\""

static void test_consent_nested(void **state)
{
	(void)state;
	const char *A = "Practitioner/d1";
	const char *pats[] = {"p1"};
	struct salus_policy_code psy[] = {{SALUS_POLICY_ACT_SYSTEM, "PSY"}};
	struct salus_policy p = pol_role(A, "clinician", true, NULL);
	p.hidden = 0;
	/* deny everyone (no actor), permit d2: d1 is denied, d2 is not */
	const char *all_but_d2 = "{\"type\":\"deny\",\"provision\":[{\"type\":\"permit\",\"actor\":[" ACTOR("Practitioner/d2") "]}]}";
	assert_int_equal(add(&p, A, consent_prov("p1", all_but_d2)), 1);
	assert_int_equal(p.deny[0].nexcept, 0);
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	struct salus_policy q = pol_role("Practitioner/d2", "clinician", true, NULL);
	assert_int_equal(add(&q, "Practitioner/d2", consent_prov("p1", all_but_d2)), 0);
	/* the patient's own record: never */
	struct salus_policy own = pol_role("Patient/p1", "patient", true, NULL);
	assert_int_equal(add(&own, "Patient/p1", consent_prov("p1", all_but_d2)), 0);
	/* deny d1 with a permit of PSY-labelled and Condition resources */
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent_prov("p1", "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"provision\":["
						 "{\"type\":\"permit\",\"securityLabel\":[{\"system\":\"" SALUS_POLICY_ACT_SYSTEM "\",\"code\":\"PSY\"}]},"
						 "{\"type\":\"permit\",\"class\":[{" RT ",\"code\":\"Condition\"}]}]}")),
			 1);
	assert_int_equal(p.deny[0].nexcept, 2);
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	assert_false(salus_policy_hides(&p, "Observation", pats, 1, psy, 1));
	assert_false(salus_policy_hides(&p, "Condition", pats, 1, NULL, 0));
	/* exceptions that cannot be kept exactly (3 classes, a nested provision, another actor, over, a
	 * purpose other than BTG/ETREAT) are not applied; a permit of everything voids the denial */
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent_prov("p1", "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"provision\":["
						 "{\"type\":\"permit\",\"class\":[{" RT ",\"code\":\"A\"},{" RT ",\"code\":\"B\"},{" RT ",\"code\":\"C\"}]},"
						 "{\"type\":\"permit\",\"provision\":[{\"type\":\"deny\"}]},"
						 "{\"type\":\"permit\",\"actor\":[" ACTOR("Practitioner/d9") "]},"
						 "{\"type\":\"permit\",\"period\":{\"end\":\"2001-01-01\"}},"
						 "{\"type\":\"permit\",\"purpose\":[{" REASON ",\"code\":\"TREAT\"}]}]}")),
			 1);
	assert_int_equal(p.deny[0].nexcept, 0);
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent_prov("p1", "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"provision\":["
						 "{\"type\":\"permit\",\"actor\":[" ACTOR("Practitioner/d1") "]}]}")),
			 0);
	/* permit with nested denials: each one that applies to d1 */
	assert_int_equal(add(&p, A, consent_prov("p1", "{\"type\":\"permit\",\"provision\":["
						 "{\"type\":\"deny\",\"class\":[{" RT ",\"code\":\"Observation\"}]},"
						 "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d2") "]},"
						 "{\"type\":\"deny\",\"period\":{\"start\":\"2999-01-01\"}}]}")),
			 1);
	assert_true(salus_policy_hides(&p, "Observation", pats, 1, NULL, 0));
	assert_false(salus_policy_hides(&p, "Condition", pats, 1, NULL, 0));
	/* a top-level permit naming another actor: its unnamed nested denials are that actor's */
	p.ndeny = 0;
	assert_int_equal(add(&p, A, consent_prov("p1", "{\"type\":\"permit\",\"actor\":[" ACTOR("Practitioner/d2") "],\"provision\":["
						 "{\"type\":\"deny\"},{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "]}]}")),
			 1);
}

static void test_consent_purpose(void **state)
{
	(void)state;
	const char *A = "Practitioner/d1";
	struct salus_policy p = pol_role(A, "clinician", true, NULL);
	struct salus_policy b = pol_role(A, "clinician", true, NULL);
	memcpy(b.btg[b.nbtg++], "p1", 3); /* break-glass access to p1 */
	const char *btg_only = "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"purpose\":[{" REASON ",\"code\":\"BTG\"}]}";
	const char *treat = "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"purpose\":[{" REASON ",\"code\":\"TREAT\"}]}";
	const char *both = "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"purpose\":[{" REASON ",\"code\":\"TREAT\"},{" REASON
			   ",\"code\":\"ETREAT\"}]}";
	assert_int_equal(add(&p, A, consent_prov("p1", btg_only)), 0);
	assert_int_equal(add(&b, A, consent_prov("p1", btg_only)), 1);
	assert_int_equal(add(&p, A, consent_prov("p1", treat)), 1);
	assert_int_equal(add(&b, A, consent_prov("p1", treat)), 0);
	assert_int_equal(add(&p, A, consent_prov("p1", both)), 1);
	assert_int_equal(add(&b, A, consent_prov("p1", both)), 1);
	/* a permit exception for emergencies: applied under break-glass only */
	const char *exc = "{\"type\":\"deny\",\"actor\":[" ACTOR("Practitioner/d1") "],\"purpose\":[{" REASON ",\"code\":\"BTG\"},{" REASON
			  ",\"code\":\"TREAT\"}],\"provision\":[{\"type\":\"permit\",\"purpose\":[{" REASON ",\"code\":\"ETREAT\"}],"
			  "\"class\":[{" RT ",\"code\":\"AllergyIntolerance\"}]}]}";
	p.ndeny = b.ndeny = 0;
	assert_int_equal(add(&p, A, consent_prov("p1", exc)), 1);
	assert_int_equal(p.deny[0].nexcept, 0);
	assert_int_equal(add(&b, A, consent_prov("p1", exc)), 1);
	assert_int_equal(b.deny[0].nexcept, 1);
	const char *pats[] = {"p1"};
	assert_false(salus_policy_hides(&b, "AllergyIntolerance", pats, 1, NULL, 0));
	assert_true(salus_policy_hides(&b, "Observation", pats, 1, NULL, 0));
}

/* A Consent source for salus_policy_init: n copies of a deny, or an error. */
struct src {
	int n;
	int rc;
};
static int source(void *ctx, const char *actor, salus_policy_consent_each each, void *each_ctx)
{
	struct src *s = ctx;
	char pid[16];
	for (int i = 0; i < s->n; i++) {
		snprintf(pid, sizeof pid, "p%d", i);
		const char *text = consent("active", "patient-privacy", pid, "deny", actor, NULL);
		int rc = each(each_ctx, text, strlen(text));
		if (rc)
			return rc;
	}
	return s->rc;
}

static void test_consent_source(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_USER, "*", RS, NULL},
					       {SALUS_POLICY_CTX_SYSTEM, "Organization", RS, NULL}};
	struct src src = {2, 0};
	struct salus_policy_config cfg = {.consents = source, .consents_ctx = &src};
	struct salus_policy_token t = {.scopes = v, .n = 2, .user_ctx = true, .user = "u1", .fhir_user = "Practitioner/d1",
				       .role = "clinician"};
	struct salus_policy p;
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), 0);
	assert_int_equal(p.ndeny, 2);
	assert_false(p.deny_overflow);
	assert_true(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	/* more denials than are kept: user/ and patient/ scopes grant nothing, system/ ones still do */
	src.n = SALUS_POLICY_MAX_DENY + 1;
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), 0);
	assert_true(p.deny_overflow);
	assert_false(salus_policy_allows(&p, "Observation", SALUS_POLICY_R));
	assert_true(salus_policy_allows(&p, "Organization", SALUS_POLICY_R));
	src = (struct src){0, SALUS_ETOOLARGE};
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), 0);
	assert_true(p.deny_overflow);
	src = (struct src){0, SALUS_EIO}; /* the store could not answer: fail closed */
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), SALUS_EIO);
	/* a client token: no Consent is looked up */
	src = (struct src){0, SALUS_EIO};
	t.user_ctx = false;
	t.fhir_user = NULL;
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), 0);
}

/* ---- EHR launch: a staff token's patient context ---- */

static void test_staff_launch_context(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", RS, NULL}};
	struct salus_policy p = pol(v, 1, true, "Practitioner/d1", "p7");
	assert_string_equal(p.patient, "p7");
	struct salus_policy_rule r = salus_policy_rule(&p, "Observation", SALUS_POLICY_R);
	assert_true(r.granted);
	assert_true(r.compartment);
	assert_false(r.related);
	p = pol(v, 1, false, "Practitioner/d1", "p7"); /* not a user token */
	assert_string_equal(p.patient, "");
	p = pol(v, 1, true, "Practitioner/d1", "a/b");
	assert_string_equal(p.patient, "");
	/* under the relationship rule the launch context is narrowed like user/ scopes */
	struct salus_policy_config cfg = {.relationship = true, .break_glass_max_minutes = 60};
	struct salus_policy_token t = {.scopes = v, .n = 1, .user_ctx = true, .fhir_user = "Practitioner/d1", .patient = "p7"};
	assert_int_equal(salus_policy_init(&p, NULL, &cfg, &t), 0);
	r = salus_policy_rule(&p, "Observation", SALUS_POLICY_R);
	assert_true(r.compartment);
	assert_true(r.related);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_scopes),
		cmocka_unit_test(test_patient_scopes_need_a_context),
		cmocka_unit_test(test_widest_kind_wins),
		cmocka_unit_test(test_too_many_scopes),
		cmocka_unit_test(test_related_person),
		cmocka_unit_test(test_labels_by_role),
		cmocka_unit_test(test_hides),
		cmocka_unit_test(test_consent_add),
		cmocka_unit_test(test_consent_narrowing),
		cmocka_unit_test(test_consent_nested),
		cmocka_unit_test(test_consent_purpose),
		cmocka_unit_test(test_consent_source),
		cmocka_unit_test(test_staff_launch_context),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
