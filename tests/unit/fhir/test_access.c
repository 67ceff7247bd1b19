/*
 * test_access.c — the access decision enforced in the FHIR layer (fhir/access.h)
 * against a real temporary store, through salus_fhir_handle with a policy:
 * content checks (compartment, v2 restrictions, fail-safe criteria), writes
 * (create, update, delete, transactions), reads that answer 404, guarded
 * searches with totals, and the unrestricted path staying unchanged.
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

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "fhir/access.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

#define RS (SALUS_POLICY_BIT(SALUS_POLICY_R) | SALUS_POLICY_BIT(SALUS_POLICY_S))
#define ALL 0x1fu
#define CATSYS "http://terminology.hl7.org/CodeSystem/observation-category"

static struct salus_store *st;
static char dir[] = "/tmp/salus-access-XXXXXX";

static int setup(void **state)
{
	(void)state;
	char uri[96];
	if (!mkdtemp(dir))
		return -1;
	snprintf(uri, sizeof uri, "sqlite:%s/salus.db", dir);
	struct salus_store_opts o = {.create = true};
	return salus_store_open(uri, &o, &st) ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[96];
	salus_store_free(st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) ? -1 : 0;
}

static int call(const struct salus_policy *p, enum salus_fhir_op op, const char *type, const char *id,
		const char *body, const struct salus_param *params, size_t np, json_t **out)
{
	struct salus_fhir_req rq = {.op = op, .base = "https://x/fhir", .body = body, .body_len = body ? strlen(body) : 0,
				    .content_type = "application/fhir+json", .params = params, .nparams = np,
				    .policy = p};
	snprintf(rq.type, sizeof rq.type, "%s", type ? type : "");
	snprintf(rq.id, sizeof rq.id, "%s", id ? id : "");
	struct salus_fhir_resp rs;
	salus_fhir_resp_init(&rs);
	int status = salus_fhir_handle(st, &rq, &rs);
	if (out)
		*out = rs.body.n ? json_loadb(rs.body.p, rs.body.n, 0, NULL) : NULL;
	salus_fhir_resp_release(&rs);
	return status;
}

static void put(const char *type, const char *id, const char *json)
{
	int s = call(NULL, SALUS_FHIR_UPDATE, type, id, json, NULL, 0, NULL);
	if (s != 200 && s != 201)
		fail_msg("PUT %s/%s: %d", type, id, s);
}

static char obs_buf[512];
static const char *obs(const char *id, const char *patient, const char *cat)
{
	snprintf(obs_buf, sizeof obs_buf,
		 "{\"resourceType\":\"Observation\"%s%s%s,\"status\":\"final\",\"category\":[{\"coding\":[{"
		 "\"system\":\"" CATSYS "\",\"code\":\"%s\"}]}],\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
		 "\"Patient/%s\"},\"effectiveDateTime\":\"2020-01-02\"}",
		 *id ? ",\"id\":\"" : "", id, *id ? "\"" : "", cat, patient);
	return obs_buf;
}

static void fixtures(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	put("Patient", "pa", "{\"resourceType\":\"Patient\",\"id\":\"pa\"}");
	put("Patient", "pb", "{\"resourceType\":\"Patient\",\"id\":\"pb\"}");
	put("Observation", "oa1", obs("oa1", "pa", "laboratory"));
	put("Observation", "oa2", obs("oa2", "pa", "vital-signs"));
	put("Observation", "ob1", obs("ob1", "pb", "laboratory"));
	put("Practitioner", "d1", "{\"resourceType\":\"Practitioner\",\"id\":\"d1\"}");
}

static struct salus_policy patient_policy(const struct salus_policy_scope *v, size_t n)
{
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = n, .user_ctx = true, .fhir_user = "Patient/pa", .patient = "pa"};
	assert_int_equal(salus_policy_init(&p, st, NULL, &t), 0);
	assert_string_equal(p.patient, "pa");
	return p;
}

static long total_of(json_t *b)
{
	return (long)json_integer_value(json_object_get(b, "total"));
}

static void test_reads(void **state)
{
	(void)state;
	fixtures();
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", RS, NULL}};
	struct salus_policy p = patient_policy(v, 1);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "pa", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "pb", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "oa1", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "ob1", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Practitioner", "d1", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(NULL, SALUS_FHIR_READ, "Observation", "ob1", NULL, NULL, 0, NULL), 200);
	/* a deleted resource of another patient: 404, not 410 */
	put("Observation", "ob2", obs("ob2", "pb", "laboratory"));
	assert_int_equal(call(NULL, SALUS_FHIR_DELETE, "Observation", "ob2", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "ob2", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(NULL, SALUS_FHIR_READ, "Observation", "ob2", NULL, NULL, 0, NULL), 410);
	put("Observation", "oa9", obs("oa9", "pa", "laboratory"));
	assert_int_equal(call(NULL, SALUS_FHIR_DELETE, "Observation", "oa9", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "oa9", NULL, NULL, 0, NULL), 410);
}

static void test_searches(void **state)
{
	(void)state;
	fixtures();
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", RS, NULL}};
	struct salus_policy p = patient_policy(v, 1);
	json_t *b = NULL;
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, NULL, 0, &b), 200);
	assert_int_equal(total_of(b), 2);
	json_decref(b);
	struct salus_param pb[] = {{(char *)"subject", (char *)"Patient/pb"}};
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, pb, 1, &b), 200);
	assert_int_equal(total_of(b), 0);
	json_decref(b);
	assert_int_equal(call(NULL, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, pb, 1, &b), 200);
	assert_int_equal(total_of(b), 1); /* no policy: unchanged */
	json_decref(b);
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Practitioner", NULL, NULL, NULL, 0, &b), 200);
	assert_int_equal(total_of(b), 0);
	json_decref(b);
	/* a restricted grant: lab Observations of the patient only */
	const struct salus_policy_scope w[] = {
		{SALUS_POLICY_CTX_PATIENT, "Observation", RS, "category=" CATSYS "|laboratory"}};
	p = patient_policy(w, 1);
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, NULL, 0, &b), 200);
	assert_int_equal(total_of(b), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource"), "id")),
			    "oa1");
	json_decref(b);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "oa2", NULL, NULL, 0, NULL), 404);
	/* a restriction that does not parse grants nothing (fail safe) */
	const struct salus_policy_scope bad[] = {{SALUS_POLICY_CTX_PATIENT, "Observation", RS, "no-such-param=1"}};
	p = patient_policy(bad, 1);
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, NULL, 0, &b), 200);
	assert_int_equal(total_of(b), 0);
	json_decref(b);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "oa1", NULL, NULL, 0, NULL), 404);
}

static void test_content_checks(void **state)
{
	(void)state;
	const struct salus_policy_scope v[] = {
		{SALUS_POLICY_CTX_PATIENT, "Observation", RS, "category=" CATSYS "|laboratory"},
		{SALUS_POLICY_CTX_PATIENT, "Encounter", RS, "date=ge2020"}, /* not evaluated on content */
		{SALUS_POLICY_CTX_PATIENT, "Condition", RS, "code:missing=true"},
		{SALUS_POLICY_CTX_PATIENT, "Patient", RS, NULL}};
	struct salus_policy p = patient_policy(v, 4);
	json_t *j = json_loads(obs("x", "pa", "laboratory"), 0, NULL);
	bool ok = false;
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Observation", "x", j, &ok), 0);
	assert_true(ok);
	json_decref(j);
	j = json_loads(obs("x", "pb", "laboratory"), 0, NULL);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Observation", "x", j, &ok), 0);
	assert_false(ok);
	json_decref(j);
	j = json_loads(obs("x", "pa", "imaging"), 0, NULL);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Observation", "x", j, &ok), 0);
	assert_false(ok);
	json_decref(j);
	j = json_loads("{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
		       "\"subject\":{\"reference\":\"Patient/pa\"},\"period\":{\"start\":\"2021-01-01\"}}",
		       0, NULL);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Encounter", "e", j, &ok), 0);
	assert_false(ok); /* date criteria are not evaluated on content: fail safe */
	json_decref(j);
	j = json_loads("{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/pa\"}}", 0, NULL);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Condition", "c", j, &ok), 0);
	assert_true(ok); /* :missing=true */
	json_decref(j);
	j = json_loads("{\"resourceType\":\"Patient\"}", 0, NULL);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Patient", "pa", j, &ok), 0);
	assert_true(ok);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_R, "Patient", "pb", j, &ok), 0);
	assert_false(ok);
	assert_int_equal(salus_fhir_access_visible(st, &p, SALUS_POLICY_U, "Patient", "pa", j, &ok), 0);
	assert_false(ok); /* no 'u' letter */
	assert_int_equal(salus_fhir_access_visible(st, NULL, SALUS_POLICY_U, "Patient", "pb", j, &ok), 0);
	assert_true(ok); /* no policy: no restriction */
	json_decref(j);
}

static void test_writes(void **state)
{
	(void)state;
	fixtures();
	const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_PATIENT, "*", ALL, NULL}};
	struct salus_policy p = patient_policy(v, 1);
	json_t *b = NULL;
	/* create inside the compartment: ok; outside: 403 */
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Observation", NULL, obs("", "pa", "laboratory"), NULL, 0, NULL),
			 201);
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Observation", NULL, obs("", "pb", "laboratory"), NULL, 0, NULL),
			 403);
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Patient", NULL, "{\"resourceType\":\"Patient\"}", NULL, 0, NULL),
			 403);
	/* update of another patient's resource: 404 (existence not revealed); moving one out: 403 */
	assert_int_equal(call(&p, SALUS_FHIR_UPDATE, "Observation", "ob1", obs("ob1", "pa", "laboratory"), NULL, 0,
			      NULL),
			 404);
	assert_int_equal(call(&p, SALUS_FHIR_UPDATE, "Observation", "oa1", obs("oa1", "pb", "laboratory"), NULL, 0,
			      NULL),
			 403);
	assert_int_equal(call(&p, SALUS_FHIR_DELETE, "Observation", "ob1", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(NULL, SALUS_FHIR_READ, "Observation", "ob1", NULL, NULL, 0, NULL), 200);
	/* conditional interactions are refused to restricted tokens */
	struct salus_param c[] = {{(char *)"_id", (char *)"ob1"}};
	assert_int_equal(call(&p, SALUS_FHIR_COND_DELETE, "Observation", NULL, NULL, c, 1, NULL), 403);
	/* a transaction with one entry outside: nothing applied */
	const char *tx = "{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":["
			 "{\"resource\":{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t1\"},"
			 "\"subject\":{\"reference\":\"Patient/pa\"}},\"request\":{\"method\":\"POST\",\"url\":\"Observation\"}},"
			 "{\"request\":{\"method\":\"DELETE\",\"url\":\"Observation/ob1\"}}]}";
	assert_int_equal(call(&p, SALUS_FHIR_BUNDLE, "", NULL, tx, NULL, 0, &b), 404);
	json_decref(b);
	assert_int_equal(call(NULL, SALUS_FHIR_READ, "Observation", "ob1", NULL, NULL, 0, NULL), 200);
	struct salus_param t1[] = {{(char *)"code:text", (char *)"t1"}};
	assert_int_equal(call(NULL, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, t1, 1, &b), 200);
	assert_int_equal(total_of(b), 0);
	json_decref(b);
	/* a delete inside the compartment */
	assert_int_equal(call(&p, SALUS_FHIR_DELETE, "Observation", "oa2", NULL, NULL, 0, NULL), 200);
	put("Observation", "oa2", obs("oa2", "pa", "vital-signs"));
}

/* ---- the relationship rule and break-glass ---- */

static struct salus_policy staff_policy(const struct salus_policy_config *cfg)
{
	static const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_USER, "*", ALL, NULL}};
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = 1, .user_ctx = true, .user = "drx",
				       .fhir_user = "Practitioner/dr"};
	assert_int_equal(salus_policy_init(&p, st, cfg, &t), 0);
	return p;
}

static void rel_fixtures(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	put("Practitioner", "dr", "{\"resourceType\":\"Practitioner\",\"id\":\"dr\"}");
	put("Patient", "r1", "{\"resourceType\":\"Patient\",\"id\":\"r1\",\"generalPractitioner\":[{\"reference\":"
			     "\"Practitioner/dr\"}]}");
	put("Patient", "r2", "{\"resourceType\":\"Patient\",\"id\":\"r2\"}");
	put("CareTeam", "ct2", "{\"resourceType\":\"CareTeam\",\"id\":\"ct2\",\"subject\":{\"reference\":\"Patient/r2\"},"
			       "\"participant\":[{\"member\":{\"reference\":\"Practitioner/dr\"}}]}");
	put("Patient", "r3", "{\"resourceType\":\"Patient\",\"id\":\"r3\"}");
	put("Encounter", "e3", "{\"resourceType\":\"Encounter\",\"id\":\"e3\",\"status\":\"finished\",\"class\":{"
			       "\"code\":\"AMB\"},\"subject\":{\"reference\":\"Patient/r3\"},\"participant\":[{"
			       "\"individual\":{\"reference\":\"Practitioner/dr\"}}]}");
	put("Patient", "r4", "{\"resourceType\":\"Patient\",\"id\":\"r4\"}");
	put("Observation", "or1", obs("or1", "r1", "laboratory"));
	put("Observation", "or4", obs("or4", "r4", "laboratory"));
}

/* Ids of the entries of a searchset (sorted by the caller's expectations: compared as a set). */
static bool has_entry(json_t *b, const char *type, const char *id)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(b, "entry"), i, e)
	{
		json_t *r = json_object_get(e, "resource");
		if (!strcmp(json_string_value(json_object_get(r, "resourceType")), type) &&
		    !strcmp(json_string_value(json_object_get(r, "id")), id))
			return true;
	}
	return false;
}

static void test_relationship(void **state)
{
	(void)state;
	fixtures();
	rel_fixtures();
	struct salus_policy_config cfg = {.relationship = true, .break_glass_max_minutes = 60};
	struct salus_policy p = staff_policy(&cfg);
	assert_true(p.related);
	json_t *b = NULL;
	struct salus_param ids[] = {{(char *)"_id", (char *)"r1,r2,r3,r4,pa"}};
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Patient", NULL, NULL, ids, 1, &b), 200);
	assert_int_equal(total_of(b), 3); /* GP, CareTeam, Encounter; not r4, not pa */
	assert_true(has_entry(b, "Patient", "r1") && has_entry(b, "Patient", "r2") && has_entry(b, "Patient", "r3"));
	json_decref(b);
	struct salus_param oids[] = {{(char *)"_id", (char *)"or1,or4"}};
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, oids, 1, &b), 200);
	assert_int_equal(total_of(b), 1);
	assert_true(has_entry(b, "Observation", "or1"));
	json_decref(b);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "r2", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "r4", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "or4", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Practitioner", "d1", NULL, NULL, 0, NULL), 200); /* not in a compartment */
	/* writes: into a related patient's record, or registering a patient of one's own */
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Observation", NULL, obs("", "r3", "laboratory"), NULL, 0, NULL),
			 201);
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Observation", NULL, obs("", "r4", "laboratory"), NULL, 0, NULL),
			 403);
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Patient", NULL,
			      "{\"resourceType\":\"Patient\",\"generalPractitioner\":[{\"reference\":\"Practitioner/dr\"}]}",
			      NULL, 0, NULL),
			 201);
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Patient", NULL, "{\"resourceType\":\"Patient\"}", NULL, 0, NULL),
			 403);
	/* the rule off (the default): every patient */
	struct salus_policy q = staff_policy(NULL);
	assert_false(q.related);
	assert_int_equal(call(&q, SALUS_FHIR_READ, "Patient", "r4", NULL, NULL, 0, NULL), 200);

	/* break-glass */
	int64_t exp = 0;
	const char *why = NULL;
	const char *reason = "unconscious patient in the emergency department";
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", "too short", 30, 0, &exp, &why), SALUS_EINVALID);
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", reason, 0, 0, &exp, &why), SALUS_EINVALID);
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", reason, 61, 0, &exp, &why), SALUS_EINVALID);
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "nobody", reason, 30, 0, &exp, &why), SALUS_ENOTFOUND);
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", "line\nbreak in the reason", 30, 0, &exp, &why),
			 SALUS_EINVALID);
	struct salus_policy_config off = {.relationship = false, .break_glass_max_minutes = 60};
	assert_int_equal(salus_policy_break_glass(st, &off, "drx", "r4", reason, 30, 0, &exp, &why), SALUS_EINVALID);
	/* an expired grant opens nothing */
	int64_t past = salus_now_ms() - 2 * 3600 * 1000;
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", reason, 30, past, &exp, &why), 0);
	p = staff_policy(&cfg);
	assert_int_equal(p.nbtg, 0);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "r4", NULL, NULL, 0, NULL), 404);
	assert_int_equal(salus_policy_break_glass(st, &cfg, "drx", "r4", reason, 30, 0, &exp, &why), 0);
	assert_true(exp > salus_now_ms() + 29 * 60000);
	p = staff_policy(&cfg);
	assert_int_equal(p.nbtg, 1);
	assert_true(salus_policy_btg_has(&p, "r4"));
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "r4", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "or4", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_SEARCH_TYPE, "Observation", NULL, NULL, oids, 1, &b), 200);
	assert_int_equal(total_of(b), 2);
	json_decref(b);
	char *list = NULL;
	assert_int_equal(salus_policy_break_glass_list(st, 0, &list), 0);
	assert_non_null(strstr(list, "\"user\":\"drx\""));
	assert_non_null(strstr(list, "\"patient\":\"r4\""));
	assert_non_null(strstr(list, "\"active\":true"));
	salus_free(list);
	/* withdrawn: closed again */
	assert_int_equal(salus_policy_break_glass_revoke(st, "drx", "r4"), 0);
	p = staff_policy(&cfg);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "r4", NULL, NULL, 0, NULL), 404);
}

/* Security labels and a Consent denial, through salus_fhir_handle and the Consent lookup. */
static struct salus_policy role_policy(const char *prac, const char *role, const struct salus_policy_config *cfg)
{
	static const struct salus_policy_scope v[] = {{SALUS_POLICY_CTX_USER, "*", RS, NULL}};
	struct salus_policy p;
	struct salus_policy_token t = {.scopes = v, .n = 1, .user_ctx = true, .user = "u", .fhir_user = prac, .role = role};
	assert_int_equal(salus_policy_init(&p, st, cfg, &t), 0);
	return p;
}

static long search_total(const struct salus_policy *p, const char *type, char *pname, char *pval)
{
	json_t *b = NULL;
	struct salus_param pr[] = {{pname, pval}, {(char *)"_total", (char *)"accurate"}};
	assert_int_equal(call(p, SALUS_FHIR_SEARCH_TYPE, type, NULL, NULL, pr, 2, &b), 200);
	long n = total_of(b);
	assert_int_equal((long)json_array_size(json_object_get(b, "entry")), n);
	json_decref(b);
	return n;
}

static void test_labels_and_consent(void **state)
{
	(void)state;
	fixtures();
	put("Patient", "pl", "{\"resourceType\":\"Patient\",\"id\":\"pl\"}");
	put("Patient", "pm", "{\"resourceType\":\"Patient\",\"id\":\"pm\"}");
	put("Observation", "ol0", obs("ol0", "pl", "laboratory"));
	put("Observation", "om0", obs("om0", "pm", "laboratory"));
	const char *labelled[][2] = {{"olr", "{\"system\":\"" SALUS_POLICY_CONF_SYSTEM "\",\"code\":\"R\"}"},
				     {"olv", "{\"system\":\"" SALUS_POLICY_CONF_SYSTEM "\",\"code\":\"V\"}"},
				     {"olh", "{\"system\":\"" SALUS_POLICY_ACT_SYSTEM "\",\"code\":\"HIV\"}"}};
	for (size_t i = 0; i < 3; i++) {
		char buf[768];
		snprintf(buf, sizeof buf,
			 "{\"resourceType\":\"Observation\",\"id\":\"%s\",\"meta\":{\"security\":[%s]},\"status\":\"final\","
			 "\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":\"Patient/pl\"}}",
			 labelled[i][0], labelled[i][1]);
		put("Observation", labelled[i][0], buf);
	}
	struct salus_policy p = role_policy("Practitioner/d5", "billing", NULL);
	assert_int_equal(search_total(&p, "Observation", (char *)"subject", (char *)"Patient/pl"), 1);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "olr", NULL, NULL, 0, NULL), 404);
	p = role_policy("Practitioner/d5", "clinician", NULL);
	assert_int_equal(search_total(&p, "Observation", (char *)"subject", (char *)"Patient/pl"), 3);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "olr", NULL, NULL, 0, NULL), 200);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "olv", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(NULL, SALUS_FHIR_READ, "Observation", "olv", NULL, NULL, 0, NULL), 200);
	/* a Consent denying Practitioner/d5 patient pl's record */
	put("Consent", "cl",
	    "{\"resourceType\":\"Consent\",\"id\":\"cl\",\"status\":\"active\",\"scope\":{\"coding\":[{\"system\":"
	    "\"http://terminology.hl7.org/CodeSystem/consentscope\",\"code\":\"patient-privacy\"}]},\"category\":[{"
	    "\"text\":\"privacy\"}],\"patient\":{\"reference\":\"Patient/pl\"},\"provision\":{\"type\":\"deny\",\"actor\":[{"
	    "\"role\":{\"text\":\"x\"},\"reference\":{\"reference\":\"Practitioner/d5\"}}]}}");
	struct salus_policy_config cfg = {.consents = salus_fhir_access_consents, .consents_ctx = st};
	p = role_policy("Practitioner/d5", "clinician", &cfg);
	assert_int_equal(p.ndeny, 1);
	assert_int_equal(search_total(&p, "Observation", (char *)"subject", (char *)"Patient/pl"), 0);
	assert_int_equal(search_total(&p, "Observation", (char *)"subject", (char *)"Patient/pm"), 1);
	assert_int_equal(search_total(&p, "Patient", (char *)"_id", (char *)"pl"), 0);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "pl", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Observation", "ol0", NULL, NULL, 0, NULL), 404);
	assert_int_equal(call(&p, SALUS_FHIR_READ, "Patient", "pm", NULL, NULL, 0, NULL), 200);
	/* a write into the denied compartment is refused */
	assert_int_equal(call(&p, SALUS_FHIR_CREATE, "Observation", NULL, obs("", "pl", "laboratory"), NULL, 0, NULL), 403);
	/* another practitioner is not named */
	p = role_policy("Practitioner/d6", "clinician", &cfg);
	assert_int_equal(p.ndeny, 0);
	assert_int_equal(search_total(&p, "Observation", (char *)"subject", (char *)"Patient/pl"), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reads),
		cmocka_unit_test(test_searches),
		cmocka_unit_test(test_content_checks),
		cmocka_unit_test(test_writes),
		cmocka_unit_test(test_relationship),
		cmocka_unit_test(test_labels_and_consent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
