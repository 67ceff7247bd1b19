/*
 * test_fhirpath.c — the FHIRPath subset (src/fhir/fhirpath.h): parsing
 * (including every R4 search-parameter expression from the generated
 * tables), typed navigation with choice types, functions used by the
 * invariants and by search extraction, the expression cache, budgets and
 * allocation failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"

static const char *obs_json =
	"{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
	"\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}],\"text\":\"Heart rate\"},"
	"\"subject\":{\"reference\":\"Patient/p1\"},"
	"\"performer\":[{\"reference\":\"Practitioner/d1\"},{\"reference\":\"https://x.example/fhir/Organization/o9/_history/2\"},"
	"{\"reference\":\"#c1\"}],"
	"\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"c1\",\"name\":[{\"family\":\"Doe\"}]}],"
	"\"effectiveDateTime\":\"2020-01-02T10:00:00Z\","
	"\"_effectiveDateTime\":{\"extension\":[{\"url\":\"http://e.example/x\",\"valueString\":\"s\"}]},"
	"\"valueQuantity\":{\"value\":72,\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"/min\"},"
	"\"component\":[{\"code\":{\"text\":\"a\"},\"valueString\":\"x\"},{\"code\":{\"text\":\"b\"},\"valueInteger\":4}]}";

struct fx {
	json_t *obs;
	struct salus_fp_ctx cx;
	char buf[4096];
};

static int setup(void **state)
{
	struct fx *f = salus_calloc(1, sizeof *f);
	json_error_t err;
	f->obs = json_loads(obs_json, 0, &err);
	if (!f->obs) {
		fprintf(stderr, "bad fixture: %s\n", err.text);
		return -1;
	}
	salus_fp_ctx_init(&f->cx, f->buf, sizeof f->buf);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	json_decref(f->obs);
	salus_fp_ctx_release(&f->cx);
	salus_free(f);
	salus_fp_cache_clear();
	return 0;
}

/* Evaluate and return the result (asserting success). */
static struct salus_fp_result eval(struct fx *f, const char *expr)
{
	struct salus_fp_expr *e = NULL;
	char why[200] = "";
	int rc = salus_fp_parse(expr, strlen(expr), &e, why, sizeof why);
	if (rc)
		fail_msg("parse of %s: %s", expr, why);
	struct salus_fp_result r = {0};
	rc = salus_fp_eval(&f->cx, e, f->obs, NULL, NULL, &r);
	if (rc)
		fail_msg("eval of %s: %d %s", expr, rc, f->cx.err ? f->cx.err : "");
	salus_fp_free(e);
	return r;
}

static int eval_b(struct fx *f, const char *expr)
{
	const struct salus_fp_expr *e;
	assert_int_equal(salus_fp_cached(expr, &e), 0);
	int b = -2;
	int rc = salus_fp_eval_bool(&f->cx, e, f->obs, NULL, NULL, &b);
	if (rc)
		fail_msg("eval of %s: %d %s", expr, rc, f->cx.err ? f->cx.err : "");
	return b;
}

static void test_navigation(void **state)
{
	struct fx *f = *state;
	struct salus_fp_result r = eval(f, "Observation.code.coding.code");
	assert_int_equal(r.n, 1);
	assert_string_equal(json_string_value(r.items[0].j), "8867-4");
	assert_string_equal(r.items[0].tname, "code");

	/* choice type: value → valueQuantity, typed */
	r = eval(f, "Observation.value");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.items[0].tname, "Quantity");
	r = eval(f, "Observation.value.ofType(Quantity).value");
	assert_int_equal(r.n, 1);
	assert_int_equal(json_integer_value(r.items[0].j), 72);
	assert_string_equal(r.items[0].tname, "decimal");
	assert_int_equal(eval(f, "Observation.value.ofType(string)").n, 0);
	assert_int_equal(eval(f, "(Observation.value as Quantity).unit").n, 1);
	assert_int_equal(eval(f, "Observation.value.as(Quantity).code").n, 1);
	assert_int_equal(eval(f, "Observation.effective").n, 1);
	assert_string_equal(eval(f, "Observation.effective").items[0].tname, "dateTime");
	/* primitive extension sibling */
	r = eval(f, "Observation.effective.extension('http://e.example/x').value");
	assert_int_equal(r.n, 1);
	assert_string_equal(r.items[0].tname, "string");
	/* backbone elements, choice inside backbone */
	r = eval(f, "Observation.component.value");
	assert_int_equal(r.n, 2);
	assert_string_equal(r.items[0].tname, "string");
	assert_string_equal(r.items[1].tname, "integer");
	assert_string_equal(eval(f, "Observation.component").items[0].tname, "BackboneElement");
	/* contained resources are typed by resourceType */
	r = eval(f, "Observation.contained.name.family");
	assert_int_equal(r.n, 1);
	assert_string_equal(eval(f, "Observation.contained").items[0].tname, "Practitioner");
	/* wrong root type: empty */
	assert_int_equal(eval(f, "Patient.name").n, 0);
	assert_int_equal(eval(f, "Observation.performer[1].reference").n, 1);
	assert_int_equal(eval(f, "Observation.performer[7]").n, 0);
	assert_int_equal(eval(f, "Observation.nosuch").n, 0);
	/* children / descendants */
	assert_true(eval(f, "Observation.code.children()").n == 2);
	assert_true(eval(f, "descendants().ofType(Reference)").n == 4);
}

static void test_functions(void **state)
{
	struct fx *f = *state;
	assert_int_equal(eval_b(f, "status = 'final'"), 1);
	assert_int_equal(eval_b(f, "status != 'final'"), 0);
	assert_int_equal(eval_b(f, "nosuch = 'x'"), -1);
	assert_int_equal(eval_b(f, "code.coding.exists()"), 1);
	assert_int_equal(eval_b(f, "code.coding.where(system = %loinc).exists()"), 1);
	assert_int_equal(eval_b(f, "code.coding.exists(code = 'nope')"), 0);
	assert_int_equal(eval_b(f, "performer.all(reference.exists())"), 1);
	assert_int_equal(eval_b(f, "dataAbsentReason.empty() or value.empty()"), 1);
	assert_int_equal(eval_b(f, "performer.count() = 3"), 1);
	assert_int_equal(eval_b(f, "performer.first().reference = 'Practitioner/d1'"), 1);
	assert_int_equal(eval_b(f, "performer.last().reference.startsWith('#')"), 1);
	assert_int_equal(eval_b(f, "subject.reference.substring(0, 7) = 'Patient'"), 1);
	assert_int_equal(eval_b(f, "subject.reference.length() = 10"), 1);
	assert_int_equal(eval_b(f, "code.text.matches('^Heart [a-z]+$')"), 1);
	assert_int_equal(eval_b(f, "code.text.contains('art')"), 1);
	assert_int_equal(eval_b(f, "('#' + 'c1') in performer.reference"), 1);
	assert_int_equal(eval_b(f, "performer.reference contains 'Practitioner/d1'"), 1);
	assert_int_equal(eval_b(f, "(1 | 2 | 2).count() = 2"), 1);
	assert_int_equal(eval_b(f, "(1 + 2 * 3) = 7 and (7 div 2) = 3 and (7 mod 2) = 1"), 1);
	assert_int_equal(eval_b(f, "true xor false"), 1);
	assert_int_equal(eval_b(f, "false implies nosuch.exists()"), 1);
	assert_int_equal(eval_b(f, "{}.empty()"), 1);
	assert_int_equal(eval_b(f, "iif(status = 'final', 1, 2) = 1"), 1);
	assert_int_equal(eval_b(f, "value.hasValue()"), 0);
	assert_int_equal(eval_b(f, "status.hasValue()"), 1);
	assert_int_equal(eval_b(f, "effective > @2019-12-31"), 1);
	assert_int_equal(eval_b(f, "component.code.where(coding.intersect(%resource.code.coding).exists()).empty()"), 1);
	assert_int_equal(eval_b(f, "performer.select(reference & '!').count() = 3"), 1);
	assert_int_equal(eval_b(f, "performer.reference.isDistinct()"), 1);
	assert_int_equal(eval_b(f, "contained.where(('#'+id in %resource.descendants().reference).not()).empty()"), 1);
	assert_int_equal(eval_b(f, "Observation.code.coding.code.toString() = '8867-4'"), 1);
	assert_int_equal(eval_b(f, "'a' ~ 'A'"), 1);
	assert_int_equal(eval_b(f, "value is Quantity"), 1);
	assert_int_equal(eval_b(f, "value.is(Quantity)"), 1);
	assert_int_equal(eval_b(f, "value is FHIR.Quantity"), 1);
	assert_int_equal(eval_b(f, "'x' is System.String"), 1);
	assert_int_equal(eval_b(f, "%context.id = 'o1'"), 1);
	assert_int_equal(eval_b(f, "%resource.text.`div`.exists()"), 0);
}

static void test_resolve(void **state)
{
	struct fx *f = *state;
	assert_int_equal(eval_b(f, "subject.resolve() is Patient"), 1);
	assert_int_equal(eval(f, "Observation.subject.where(resolve() is Patient)").n, 1);
	assert_int_equal(eval(f, "Observation.performer.where(resolve() is Organization)").n, 1);
	assert_int_equal(eval(f, "Observation.performer.where(resolve() is Practitioner)").n, 2);
	assert_int_equal(eval(f, "Observation.performer.resolve().ofType(Practitioner).name.family").n, 1);
}

static void test_errors(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {"", "a.", "a(", "nosuchfn()", "a..b", "(a", "a[1", "'open", "a = ", "1 +",
					  "where(", "first(1)", "a b", "$nope", "@", "a is", "%", "!a"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct salus_fp_expr *e = NULL;
		char why[200] = "";
		int rc = salus_fp_parse(bad[i], strlen(bad[i]), &e, why, sizeof why);
		if (rc != SALUS_EINVALID)
			fail_msg("'%s' parsed (rc %d)", bad[i], rc);
		assert_null(e);
		assert_non_null(strstr(why, "syntax error"));
	}
	/* run-time errors */
	const struct salus_fp_expr *e;
	struct salus_fp_result r;
	assert_int_equal(salus_fp_cached("performer.where(reference)", &e), 0);
	assert_int_equal(salus_fp_eval(&f->cx, e, f->obs, NULL, NULL, &r), 0); /* singleton non-boolean: true */
	assert_int_equal(r.n, 3);
	assert_int_equal(salus_fp_cached("performer.reference = 'x' or performer.reference", &e), 0);
	assert_int_equal(salus_fp_eval(&f->cx, e, f->obs, NULL, NULL, &r), SALUS_EINVALID);
	assert_int_equal(salus_fp_cached("%nosuch", &e), 0);
	assert_int_equal(salus_fp_eval(&f->cx, e, f->obs, NULL, NULL, &r), SALUS_EINVALID);
	/* cache returns the same parse */
	const struct salus_fp_expr *e2;
	assert_int_equal(salus_fp_cached("%nosuch", &e2), 0);
	assert_ptr_equal(e, e2);
	assert_string_equal(salus_fp_text(e), "%nosuch");
}

/* descendants() inside a where() over a big document hits the step budget. */
static void test_budget(void **state)
{
	struct fx *f = *state;
	json_t *big = json_object();
	json_object_set_new(big, "resourceType", json_string("Observation"));
	json_t *arr = json_array();
	for (int i = 0; i < 6000; i++) {
		json_t *p = json_object();
		json_object_set_new(p, "reference", json_sprintf("Patient/%d", i));
		json_array_append_new(arr, p);
	}
	json_object_set_new(big, "performer", arr);
	const struct salus_fp_expr *e;
	struct salus_fp_result r;
	/* quadratic: a search of the whole list per item */
	assert_int_equal(salus_fp_cached("performer.where(reference in (%resource.performer.reference | reference)).count()", &e), 0);
	int rc = salus_fp_eval(&f->cx, e, big, NULL, NULL, &r);
	assert_int_equal(rc, SALUS_ETOOLARGE);
	/* memoised: linear */
	assert_int_equal(salus_fp_cached("performer.where(('x' + reference) in %resource.descendants().reference)", &e), 0);
	salus_fp_ctx_reset(&f->cx);
	assert_int_equal(salus_fp_eval(&f->cx, e, big, NULL, NULL, &r), 0);
	assert_int_equal(r.n, 0);
	json_decref(big);
}

/* Every R4 search-parameter expression of every resource type parses, and
 * evaluates without error against a resource of that type. */
static void test_all_search_expressions(void **state)
{
	struct fx *f = *state;
	size_t total = 0;
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) {
		const char *tn = salus_fhir_resource_type_at(i);
		const struct salus_fhir_type *t = salus_fhir_type_find(tn, strlen(tn));
		json_t *res = json_pack("{s:s, s:s}", "resourceType", tn, "id", "x");
		for (size_t k = 0; k < salus_fhir_sp_count(t); k++) {
			struct salus_fhir_sp_info si;
			salus_fhir_sp_get(salus_fhir_sp_at(t, k), &si);
			if (!si.expression)
				continue;
			struct salus_fp_expr *e = NULL;
			char why[200] = "";
			int rc = salus_fp_parse(si.expression, strlen(si.expression), &e, why, sizeof why);
			if (rc)
				fail_msg("%s %s: %s: %s", tn, si.code, si.expression, why);
			struct salus_fp_result r;
			salus_fp_ctx_reset(&f->cx);
			rc = salus_fp_eval(&f->cx, e, res, NULL, NULL, &r);
			if (rc)
				fail_msg("%s %s eval: %d %s", tn, si.code, rc, f->cx.err ? f->cx.err : "");
			if (!strcmp(si.code, "_id"))
				assert_int_equal(r.n, 1);
			salus_fp_free(e);
			for (size_t c = 0; c < si.ncomponents; c++) {
				const char *cc, *cexpr;
				assert_int_equal(salus_fhir_sp_component(salus_fhir_sp_at(t, k), c, &cc, &cexpr), 0);
				rc = salus_fp_parse(cexpr, strlen(cexpr), &e, why, sizeof why);
				if (rc)
					fail_msg("%s %s component %s: %s", tn, si.code, cexpr, why);
				salus_fp_free(e);
			}
			total++;
		}
		json_decref(res);
	}
	assert_true(total > 2500);
	print_message("search expressions parsed: %zu\n", total);
}

/* Allocation failure at every point of parse + evaluation: an error, no leak. */
static void test_alloc_failure(void **state)
{
	struct fx *f = *state;
	const char *expr = "contained.where((('#'+id in (%resource.descendants().reference | "
			   "%resource.descendants().as(canonical))) or descendants().where(reference = '#').exists()).not())"
			   ".trace('unmatched', id).empty() and performer.where(resolve() is Practitioner).count() = 2";
	int ok = 0;
	for (unsigned long n = 1; n < 400 && !ok; n++) {
		struct salus_fp_ctx cx; /* no initial buffer: every collection is heap */
		salus_fp_ctx_init(&cx, NULL, 0);
		salus_alloc_fail_at(n, 1);
		struct salus_fp_expr *e = NULL;
		int rc = salus_fp_parse(expr, strlen(expr), &e, NULL, 0);
		int b = -2;
		if (!rc)
			rc = salus_fp_eval_bool(&cx, e, f->obs, NULL, NULL, &b);
		salus_alloc_fail_at(0, 0);
		if (rc)
			assert_int_equal(rc, SALUS_ENOMEM);
		else {
			assert_int_equal(b, 1);
			ok = 1;
		}
		salus_fp_free(e);
		salus_fp_ctx_release(&cx);
	}
	assert_true(ok);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_navigation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_functions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_budget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_search_expressions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alloc_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
