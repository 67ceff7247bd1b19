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

#include "examples_dir.h"

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/defs.h"
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

static size_t total_rows, derived_rows, derived_params_seen, whole_seen;

/* Row equality but for the parameter (and, for a composite component's rows,
 * the group number: groups are numbered per resource in write order). */
static bool row_eq_but_param(const struct salus_ix_row *x, const struct salus_ix_row *y, bool any_group)
{
	struct salus_ix_row xx = *x;
	xx.param = y->param;
	if (any_group)
		xx.group = y->group;
	return row_eq(&xx, y);
}

/* The derived parameters (salus_fhir_search_aliases): with aliases off, every
 * row of a derived parameter p is a row of one of its bases (restricted to the
 * target type), and with aliases on every base row that p's derivation reads
 * is a row p had; the other rows are the same, in order.  So a query reading
 * the bases finds exactly what it found in p's own rows. */
static void check_derived(const struct salus_fhir_index *on, const char *type, json_t *res, const char *what)
{
	const struct salus_sq_aliases *al = salus_fhir_search_aliases();
	assert_non_null(al);
	struct salus_fhir_index off;
	salus_fhir_index_init(&off);
	salus_fhir_index_aliases(false);
	int rc = salus_fhir_index_build(&off, type, res);
	salus_fhir_index_aliases(true);
	assert_int_equal(rc, 0);
	size_t j = 0;
	for (size_t i = 0; i < off.ix.n; i++) {
		const struct salus_ix_row *r = &off.ix.rows[i];
		uint32_t id = r->param & 0x3FFFFFFFu, bits = r->param & ~0x3FFFFFFFu;
		bool derived = false, found = false;
		for (size_t k = 0; k < al->n; k++) {
			const struct salus_sq_alias *a = &al->v[k];
			if (a->param != id)
				continue;
			derived = true;
			bool comp = r->group > 0 && r->group < 0x8000;
			for (size_t m = 0; m < on->ix.n && !found; m++) {
				const struct salus_ix_row *q = &on->ix.rows[m];
				found = q->param == (a->base | bits) && (!a->ttype || str_eq(q->a, a->ttype)) &&
					row_eq_but_param(r, q, comp);
			}
		}
		if (derived) {
			if (!found)
				fail_msg("%s: row %zu of derived param %u has no base row", what, i, r->param);
			derived_rows++;
			continue;
		}
		/* not derived: the same row, in order (composite groups renumbered: a derived
		 * composite's group is no longer counted) */
		bool comp = r->group > 0 && r->group < 0x8000;
		if (j >= on->ix.n || !row_eq_but_param(r, &on->ix.rows[j], comp) || r->param != on->ix.rows[j].param)
			fail_msg("%s: row %zu (param %u) differs with aliases", what, i, r->param);
		j++;
	}
	if (j != on->ix.n)
		fail_msg("%s: %zu rows with aliases, %zu expected", what, on->ix.n, j);
	/* a composite on the resource itself (whole): its group was written exactly when
	 * every component's base has rows (top level; contained resources alike) */
	const struct salus_fhir_type *ty = salus_fhir_type_find(type, strlen(type));
	for (size_t i = 0; ty && i < salus_fhir_sp_count(ty); i++) {
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(salus_fhir_sp_at(ty, i), &info);
		bool all = info.ncomponents > 0, any_whole = false, group = false;
		for (size_t k = 0; k < info.ncomponents; k++) {
			char cc[160];
			snprintf(cc, sizeof cc, "%s#%zu", info.code, k);
			uint32_t cid = salus_fhir_search_param_id(type, cc);
			for (size_t m = 0; m < al->n; m++) {
				if (al->v[m].param != cid || !al->v[m].whole)
					continue;
				any_whole = true;
				bool has = false;
				for (size_t q = 0; q < on->ix.n && !has; q++)
					has = on->ix.rows[q].param == al->v[m].base;
				all &= has;
			}
			for (size_t q = 0; q < off.ix.n; q++)
				group |= off.ix.rows[q].param == cid;
		}
		if (any_whole && all != group)
			fail_msg("%s: composite %s: group %d, every component's base has rows %d", what, info.code, group,
				 all);
		if (any_whole)
			whole_seen += group;
	}
	/* and the other way: each base row a derivation reads was a row of the derived param */
	for (size_t k = 0; k < al->n; k++) {
		const struct salus_sq_alias *a = &al->v[k];
		if (a->whole)
			continue; /* read only with every component: above */
		for (size_t m = 0; m < on->ix.n; m++) {
			const struct salus_ix_row *q = &on->ix.rows[m];
			uint32_t bits = q->param & ~0x3FFFFFFFu;
			if ((q->param & 0x3FFFFFFFu) != a->base || (a->ttype && !str_eq(q->a, a->ttype)))
				continue;
			bool comp = q->group > 0 && q->group < 0x8000, found = false;
			for (size_t i = 0; i < off.ix.n && !found; i++)
				found = off.ix.rows[i].param == (a->param | bits) && row_eq_but_param(q, &off.ix.rows[i], comp);
			if (!found)
				fail_msg("%s: base row %zu (param %u) is not a row of derived param %u", what, m, q->param,
					 a->param);
			derived_params_seen++;
		}
	}
	if (!str_eq(on->ix.patient, off.ix.patient) || !str_eq(on->ix.text, off.ix.text) ||
	    !str_eq(on->ix.content, off.ix.content))
		fail_msg("%s: owner or text differs with aliases", what);
	salus_fhir_index_release(&off);
}

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
	if (!rb)
		check_derived(&b, type, res, what);
	salus_fhir_index_release(&a);
	salus_fhir_index_release(&b);
}

static void test_official_examples(void **state)
{
	(void)state;
	char dir[1024];
	DIR *d = examples_open(dir, sizeof dir);
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
	print_message("official examples: %zu rows, %zu rows of derived parameters not written, %zu base rows read "
		      "for them, %zu composite groups on the resource itself\n",
		      total_rows, derived_rows, derived_params_seen, whole_seen);
	assert_true(whole_seen > 50);
	assert_true(derived_rows > 1000);
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
	print_message("with Synthea: %zu rows, %zu rows of derived parameters not written\n", total_rows,
		      derived_rows);
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
		/* code-value-quantity: on the resource itself, derived (code and value-quantity rows) */
		assert_int_equal(rows_of(&x, "Observation", "code-value-quantity#0"), 0);
		assert_int_equal(rows_of(&x, "Observation", "code-value-quantity#1"), 0);
		assert_int_equal(rows_of(&x, "Observation", "value-quantity"), 1);
		/* no valueString / valueDateTime / valueCodeableConcept: no rows at all */
		assert_int_equal(rows_of(&x, "Observation", "code-value-string#0"), 0);
		assert_int_equal(rows_of(&x, "Observation", "code-value-date#0"), 0);
		assert_int_equal(rows_of(&x, "Observation", "code-value-concept#0"), 0);
		/* the component without a value writes nothing, the other one its pair */
		/* (under combo-code-value-quantity, which component-code-value-quantity derives from) */
		assert_int_equal(rows_of(&x, "Observation", "combo-code-value-quantity#0"), 1);
		assert_int_equal(rows_of(&x, "Observation", "combo-code-value-quantity#1"), 1);
		assert_int_equal(rows_of(&x, "Observation", "component-code-value-quantity#0"), 0);
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


/* The derivations the definitions give for the cases the brief names, worked
 * out (not listed): Observation.patient, Encounter.patient, combo-code and
 * combo-code-value-quantity; and none for parameters of their own. */
static bool has_alias(const char *type, const char *code, const char *base, const char *ttype)
{
	const struct salus_sq_aliases *al = salus_fhir_search_aliases();
	uint32_t p = salus_fhir_search_param_id(type, code), b = salus_fhir_search_param_id(type, base);
	for (size_t k = 0; al && k < al->n; k++)
		if (al->v[k].param == p && al->v[k].base == b && str_eq(al->v[k].ttype, ttype))
			return true;
	return false;
}

static bool is_derived(const char *type, const char *code)
{
	const struct salus_sq_aliases *al = salus_fhir_search_aliases();
	uint32_t p = salus_fhir_search_param_id(type, code);
	for (size_t k = 0; al && k < al->n; k++)
		if (al->v[k].param == p)
			return true;
	return false;
}

static void test_aliases(void **state)
{
	(void)state;
	const struct salus_sq_aliases *al = salus_fhir_search_aliases();
	assert_non_null(al);
	for (size_t k = 1; k < al->n; k++)
		assert_true(al->v[k - 1].param <= al->v[k].param);
	assert_true(has_alias("Observation", "patient", "subject", "Patient"));
	assert_true(has_alias("Encounter", "patient", "subject", "Patient"));
	assert_true(has_alias("Condition", "patient", "subject", "Patient"));
	assert_true(has_alias("Observation", "combo-code", "code", NULL));
	assert_true(has_alias("Observation", "combo-code", "component-code", NULL));
	/* R4: combo-code-value-quantity's expression is Observation.component, the same terms and
	 * components as component-code-value-quantity: one derives from the other */
	for (int k = 0; k < 2; k++) {
		char a[64], b[64];
		snprintf(a, sizeof a, "combo-code-value-quantity#%d", k);
		snprintf(b, sizeof b, "component-code-value-quantity#%d", k);
		assert_true(has_alias("Observation", a, b, NULL) || has_alias("Observation", b, a, NULL));
	}
	assert_false(has_alias("Observation", "combo-code-value-quantity#0", "code-value-quantity#0", NULL));
	assert_true(has_alias("Observation", "combo-value-quantity", "value-quantity", NULL));
	assert_true(has_alias("Observation", "combo-value-quantity", "component-value-quantity", NULL));
	/* a composite on the resource itself: each component all of another parameter */
	assert_true(has_alias("Observation", "code-value-quantity#0", "code", NULL));
	assert_true(has_alias("Observation", "code-value-quantity#1", "value-quantity", NULL));
	assert_true(has_alias("Observation", "code-value-concept#1", "value-concept", NULL));
	/* contained resources' ids too */
	const struct salus_sq_aliases *a2 = al;
	uint32_t cp = salus_fhir_search_contained_id(salus_fhir_search_param_id("Observation", "patient"));
	bool found = false;
	for (size_t k = 0; k < a2->n; k++)
		found |= a2->v[k].param == cp &&
			 a2->v[k].base == salus_fhir_search_contained_id(salus_fhir_search_param_id("Observation", "subject"));
	assert_true(found);
	/* own rows: the bases, Immunization.patient (its own element), Patient.deceased */
	assert_false(is_derived("Observation", "subject"));
	assert_false(is_derived("Observation", "code"));
	assert_false(is_derived("Immunization", "patient"));
	assert_false(is_derived("Patient", "deceased"));
	assert_false(is_derived("AllergyIntolerance", "patient"));
	print_message("%zu derived-parameter entries\n", al->n);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aliases),
		cmocka_unit_test(test_forms),
		cmocka_unit_test(test_composite_whole),
		cmocka_unit_test(test_official_examples),
		cmocka_unit_test(test_synthea),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
