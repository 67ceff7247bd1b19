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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_system_scopes),
		cmocka_unit_test(test_patient_scopes_need_a_context),
		cmocka_unit_test(test_widest_kind_wins),
		cmocka_unit_test(test_too_many_scopes),
		cmocka_unit_test(test_related_person),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
