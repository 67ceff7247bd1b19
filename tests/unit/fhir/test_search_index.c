/*
 * test_search_index.c — index extraction (src/fhir/search_index.c): the
 * search-parameter expressions compiled once per type give exactly the rows
 * the interpreter gives (salus_fhir_index_interpret), row by row in order,
 * with the same _text, _content and compartment owner, on every official R4
 * example (npm hl7.fhir.r4.examples@4.0.1) and on each Synthea bundle's
 * resources when /tmp/syn (or SALUS_SYNTHEA_DIR) holds them; and the
 * compiled path builds no rows for a type it does not know; and a composite
 * group with a component that has no value writes no rows (no composite
 * search could match it), nor :text rows for a component, both ways.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/search.h"

static bool str_eq(const char *x, const char *y)
{
	return !strcmp(x ? x : "", y ? y : "");
}

static bool row_eq(const struct salus_ix_row *x, const struct salus_ix_row *y)
{
	return x->param == y->param && x->kind == y->kind && x->group == y->group && str_eq(x->a, y->a) &&
	       str_eq(x->b, y->b) && str_eq(x->c, y->c) && str_eq(x->d, y->d) && str_eq(x->e, y->e) &&
	       str_eq(x->f, y->f) && x->lo == y->lo && x->hi == y->hi && !memcmp(&x->v, &y->v, sizeof x->v) &&
	       !memcmp(&x->vlo, &y->vlo, sizeof x->vlo) && !memcmp(&x->vhi, &y->vhi, sizeof x->vhi);
}

static size_t total_rows;

/* Index res both ways and compare. */
static void compare(json_t *res, const char *what)
{
	const char *type = json_string_value(json_object_get(res, "resourceType"));
	if (!type)
		return;
	struct salus_fhir_index a, b;
	salus_fhir_index_init(&a);
	salus_fhir_index_init(&b);
	salus_fhir_index_interpret(true);
	int ra = salus_fhir_index_build(&a, type, res);
	salus_fhir_index_interpret(false);
	int rb = salus_fhir_index_build(&b, type, res);
	if (ra != rb)
		fail_msg("%s: rc %d interpreted, %d compiled", what, ra, rb);
	if (a.ix.n != b.ix.n)
		fail_msg("%s: %zu rows interpreted, %zu compiled", what, a.ix.n, b.ix.n);
	for (size_t i = 0; i < a.ix.n; i++)
		if (!row_eq(&a.ix.rows[i], &b.ix.rows[i]))
			fail_msg("%s: row %zu differs (param %u)", what, i, a.ix.rows[i].param);
	if (!str_eq(a.ix.text, b.ix.text) || !str_eq(a.ix.content, b.ix.content) || !str_eq(a.ix.patient, b.ix.patient))
		fail_msg("%s: text, content or owner differs", what);
	total_rows += a.ix.n;
	salus_fhir_index_release(&a);
	salus_fhir_index_release(&b);
}

static void test_official_examples(void **state)
{
	(void)state;
	char dir[1024];
	const char *src = getenv("SALUS_SOURCE_DIR");
	snprintf(dir, sizeof dir, "%s/node_modules/hl7.fhir.r4.examples", src ? src : ".");
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("no examples at %s (npm ci)", dir);
	size_t seen = 0;
	total_rows = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		json_t *j = json_load_file(path, 0, NULL);
		if (!j)
			continue;
		compare(j, de->d_name);
		/* a Bundle's entries too (Synthea-like documents) */
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "entry"), i, e)
		{
			json_t *r = json_object_get(e, "resource");
			if (json_is_object(r))
				compare(r, de->d_name);
		}
		json_decref(j);
		seen++;
	}
	closedir(d);
	assert_true(seen > 2500);
	assert_true(total_rows > 50000);
}

static void test_synthea(void **state)
{
	(void)state;
	const char *syn = getenv("SALUS_SYNTHEA_DIR");
	DIR *d = opendir(syn ? syn : "/tmp/syn");
	if (!d)
		skip();
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strstr(de->d_name, ".json"))
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", syn ? syn : "/tmp/syn", de->d_name);
		json_t *j = json_load_file(path, 0, NULL);
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(j, "entry"), i, e)
		{
			json_t *r = json_object_get(e, "resource");
			if (json_is_object(r))
				compare(r, de->d_name);
		}
		json_decref(j);
	}
	closedir(d);
}

/* Hand-made resources with the expression forms the subset has: choice
 * types, ofType, where(resolve() is T), where(field='x'), contained,
 * composites, Patient.deceased, Location.near. */
static void test_forms(void **state)
{
	(void)state;
	static const char *docs[] = {
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
		"\"code\":\"8480-6\"}]},\"subject\":{\"reference\":\"Patient/p1\"},\"effectiveDateTime\":\"2020-01-02\","
		"\"valueQuantity\":{\"value\":120,\"unit\":\"mm[Hg]\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"},"
		"\"component\":[{\"code\":{\"coding\":[{\"code\":\"a\"}]},\"valueQuantity\":{\"value\":1}},"
		"{\"code\":{\"text\":\"t\"},\"valueCodeableConcept\":{\"coding\":[{\"code\":\"b\"}]}}]}",
		"{\"resourceType\":\"Patient\",\"deceasedDateTime\":\"2001\",\"name\":[{\"family\":\"Zo\\u00eb\",\"given\":[\"A\"]}],"
		"\"telecom\":[{\"system\":\"phone\",\"value\":\"1\"},{\"system\":\"email\",\"value\":\"a@b\"}],"
		"\"contained\":[{\"resourceType\":\"Organization\",\"id\":\"o\",\"name\":\"Org\"}],"
		"\"managingOrganization\":{\"reference\":\"#o\"},\"gender\":\"female\"}",
		"{\"resourceType\":\"Patient\",\"deceasedBoolean\":false}",
		"{\"resourceType\":\"Location\",\"position\":{\"latitude\":1.5,\"longitude\":-2}}",
		("{\"resourceType\":\"Encounter\",\"subject\":{\"reference\":\"Group/g\"},\"participant\":[{\"individual\":"
		 "{\"reference\":\"Practitioner/x\"}}],\"period\":{\"start\":\"2020\"}}"),
		"{\"resourceType\":\"NoSuchType\",\"a\":1}",
	};
	for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
		json_t *j = json_loads(docs[i], 0, NULL);
		assert_non_null(j);
		compare(j, docs[i]);
		json_decref(j);
	}
}

static size_t rows_of_bits(const struct salus_fhir_index *x, const char *type, const char *code, uint32_t bits)
{
	uint32_t p = salus_fhir_search_param_id(type, code) | bits;
	size_t n = 0;
	for (size_t i = 0; i < x->ix.n; i++)
		n += x->ix.rows[i].param == p;
	return n;
}

static size_t rows_of(const struct salus_fhir_index *x, const char *type, const char *code)
{
	return rows_of_bits(x, type, code, 0);
}

static void test_composite_whole(void **state)
{
	(void)state;
	static const char doc[] =
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
		"\"code\":\"8867-4\",\"display\":\"Heart rate\"},{\"code\":\"hr\"}]},\"valueQuantity\":{\"value\":72},"
		"\"component\":[{\"code\":{\"coding\":[{\"code\":\"a\"}]}},{\"code\":{\"coding\":[{\"code\":\"b\"}]},"
		"\"valueQuantity\":{\"value\":1}}]}";
	json_t *j = json_loads(doc, 0, NULL);
	assert_non_null(j);
	for (int interp = 0; interp < 2; interp++) {
		struct salus_fhir_index x;
		salus_fhir_index_init(&x);
		salus_fhir_index_interpret(interp);
		assert_int_equal(salus_fhir_index_build(&x, "Observation", j), 0);
		/* code-value-quantity: both codes and the value, one group */
		assert_int_equal(rows_of(&x, "Observation", "code-value-quantity#0"), 2);
		assert_int_equal(rows_of(&x, "Observation", "code-value-quantity#1"), 1);
		/* no valueString / valueDateTime / valueCodeableConcept: no rows at all */
		assert_int_equal(rows_of(&x, "Observation", "code-value-string#0"), 0);
		assert_int_equal(rows_of(&x, "Observation", "code-value-date#0"), 0);
		assert_int_equal(rows_of(&x, "Observation", "code-value-concept#0"), 0);
		/* the component without a value writes nothing, the other one its pair */
		assert_int_equal(rows_of(&x, "Observation", "component-code-value-quantity#0"), 1);
		assert_int_equal(rows_of(&x, "Observation", "component-code-value-quantity#1"), 1);
		/* the plain parameters are untouched */
		assert_int_equal(rows_of(&x, "Observation", "code"), 2);
		assert_int_equal(rows_of(&x, "Observation", "component-code"), 2);
		/* :text rows for the parameter, none for a composite's component (never searched) */
		assert_int_equal(rows_of_bits(&x, "Observation", "code", SALUS_SQ_TEXT_BIT), 1);
		assert_int_equal(rows_of_bits(&x, "Observation", "code-value-quantity#0", SALUS_SQ_TEXT_BIT), 0);
		salus_fhir_index_release(&x);
	}
	salus_fhir_index_interpret(false);
	json_decref(j);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_composite_whole),
		cmocka_unit_test(test_official_examples),
		cmocka_unit_test(test_synthea),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
