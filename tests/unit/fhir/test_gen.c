/*
 * test_gen.c — the synthetic patient generator (src/fhir/gen.h): determinism
 * for a seed, counts, references that resolve within the output, resource
 * types and element names checked against the generated R4 definitions,
 * plausible dates, and allocation failures handled without leaks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/gen.h"
#include "fhir/search.h"

#define S(lit) (lit), (sizeof(lit) - 1)

/* Collects every resource as compact JSON lines plus the set of "Type/id". */
struct collect {
	json_t *all;  /* array of resources (increfs) */
	json_t *keys; /* object: "Type/id" -> true */
};

static int collect_cb(void *ctx, json_t *r)
{
	struct collect *c = ctx;
	char key[160];
	snprintf(key, sizeof key, "%s/%s", json_string_value(json_object_get(r, "resourceType")),
		 json_string_value(json_object_get(r, "id")));
	/* ids are unique */
	assert_null(json_object_get(c->keys, key));
	/* references point at resources emitted before (dependency order) — checked in walk */
	json_object_set_new(c->keys, key, json_true());
	json_array_append(c->all, r);
	return 0;
}

static char *dump_years(uint64_t seed, int years, size_t n, size_t *count)
{
	struct salus_gen *g;
	struct salus_gen_opts o = {.seed = seed, .years = years};
	struct collect c = {json_array(), json_object()};
	assert_int_equal(salus_gen_new(&o, &g), SALUS_OK);
	assert_int_equal(salus_gen_run(g, n, collect_cb, &c), SALUS_OK);
	assert_int_equal(salus_gen_patient_count(g), n);
	assert_int_equal(salus_gen_resource_count(g), json_array_size(c.all));
	*count = json_array_size(c.all);
	salus_gen_free(g);
	char *s = json_dumps(c.all, JSON_COMPACT);
	json_decref(c.all);
	json_decref(c.keys);
	return s;
}

static char *dump_all(uint64_t seed, size_t n, size_t *count)
{
	return dump_years(seed, 0, n, count);
}

static void test_deterministic(void **state)
{
	(void)state;
	size_t n1, n2, n3;
	char *a = dump_all(42, 5, &n1);
	char *b = dump_all(42, 5, &n2);
	char *c = dump_all(43, 5, &n3);
	assert_int_equal(n1, n2);
	assert_string_equal(a, b);
	assert_true(strcmp(a, c) != 0);
	salus_free(a);
	salus_free(b);
	salus_free(c);
}

/* Check every element name in `v` against the definitions (type t, element
 * parent), recursing into data types and backbone elements. */
static void check_elements(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent, json_t *obj,
			   const char *where)
{
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val)
	{
		if (!parent && !strcmp(key, "resourceType"))
			continue;
		size_t ti = 0;
		const struct salus_fhir_elem *e = salus_fhir_elem_child(t, parent, key, strlen(key), &ti);
		if (!e)
			fail_msg("%s: unknown element '%s' in %s", where, key, salus_fhir_type_name(t));
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		if (ei.max > 1)
			assert_true(json_is_array(val));
		else
			assert_false(json_is_array(val));
		if (json_is_array(val))
			assert_true(json_array_size(val) >= ei.min && json_array_size(val) <= ei.max);
		const char *code = ei.content_ref ? "BackboneElement" : salus_fhir_elem_type_code(e, ti);
		size_t i;
		json_t *item;
		json_t *one = json_array();
		if (json_is_array(val))
			json_array_extend(one, val);
		else
			json_array_append(one, val);
		json_array_foreach(one, i, item)
		{
			if (!json_is_object(item))
				continue;
			if (!strcmp(code, "BackboneElement") || !strcmp(code, "Element"))
				check_elements(t, e, item, where);
			else if (strcmp(code, "Resource"))
				check_elements(salus_fhir_type_find(code, strlen(code)), NULL, item, where);
		}
		json_decref(one);
	}
	/* required children of this level are present */
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, parent); e;
	     e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		if (ei.min == 0 || ei.choice)
			continue;
		if (!json_object_get(obj, ei.name))
			fail_msg("%s: required %s missing", where, ei.path);
	}
}

/* Collect every "reference" value; each must name an emitted resource. */
static void check_refs(json_t *v, json_t *keys, size_t *nrefs)
{
	const char *key;
	json_t *val;
	size_t i;
	if (json_is_array(v)) {
		json_array_foreach(v, i, val)
		check_refs(val, keys, nrefs);
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, val)
		{
			if (!strcmp(key, "reference") && json_is_string(val)) {
				if (!json_object_get(keys, json_string_value(val)))
					fail_msg("unresolved reference %s", json_string_value(val));
				(*nrefs)++;
			} else {
				check_refs(val, keys, nrefs);
			}
		}
	}
}

static int64_t ms_of(json_t *s)
{
	int64_t ms = 0;
	assert_true(json_is_string(s));
	assert_int_equal(salus_instant_parse(json_string_value(s), json_string_length(s), &ms), SALUS_OK);
	return ms;
}

static void test_content(void **state)
{
	(void)state;
	struct salus_gen *g;
	struct salus_gen_opts o = {.seed = 7};
	struct collect c = {json_array(), json_object()};
	assert_int_equal(salus_gen_new(&o, &g), SALUS_OK);
	assert_int_equal(salus_gen_run(g, 20, collect_cb, &c), SALUS_OK);
	salus_gen_free(g);

	size_t i, nrefs = 0;
	json_t *r;
	size_t counts[8] = {0};
	static const char *const types[] = {"Organization", "Practitioner", "Patient", "Encounter",
					    "Condition", "Observation", "MedicationRequest", "DocumentReference"};
	json_t *seen = json_object(); /* Type/id emitted so far: references only go backwards */
	json_t *birth = json_object(); /* Patient/id -> birthDate */
	int64_t today = 1751284800000LL;
	size_t vital = 0, lab = 0;
	json_array_foreach(c.all, i, r)
	{
		const char *rt = json_string_value(json_object_get(r, "resourceType"));
		assert_non_null(rt);
		assert_true(salus_fhir_is_resource_type(rt, strlen(rt)));
		size_t k = 0;
		while (k < 8 && strcmp(types[k], rt))
			k++;
		assert_true(k < 8);
		counts[k]++;
		const struct salus_fhir_type *t = salus_fhir_type_find(rt, strlen(rt));
		check_elements(t, NULL, r, rt);
		size_t before = nrefs;
		check_refs(r, seen, &nrefs);
		(void)before;
		char key[160];
		snprintf(key, sizeof key, "%s/%s", rt, json_string_value(json_object_get(r, "id")));
		json_object_set_new(seen, key, json_true());

		if (!strcmp(rt, "Patient")) {
			int64_t b = ms_of(json_object_get(r, "birthDate"));
			assert_true(b < today);
			assert_true(b > today - 100LL * 366 * 86400000LL);
			json_object_set_new(birth, key, json_integer(b));
			json_t *id = json_array_get(json_object_get(r, "identifier"), 0);
			assert_string_equal(json_string_value(json_object_get(id, "system")),
					    "https://salus.example/fhir/sid/mrn");
			const char *g2 = json_string_value(json_object_get(r, "gender"));
			assert_true(!strcmp(g2, "female") || !strcmp(g2, "male"));
		}
		const char *subj = json_string_value(json_object_get(json_object_get(r, "subject"), "reference"));
		int64_t b = subj ? json_integer_value(json_object_get(birth, subj)) : 0;
		if (!strcmp(rt, "Encounter")) {
			json_t *p = json_object_get(r, "period");
			int64_t s = ms_of(json_object_get(p, "start")), e = ms_of(json_object_get(p, "end"));
			assert_true(b < s && s < e && e <= today);
		}
		if (!strcmp(rt, "Observation")) {
			int64_t e = ms_of(json_object_get(r, "effectiveDateTime"));
			assert_true(b < e && e <= today);
			const char *cat = json_string_value(json_object_get(
				json_array_get(json_object_get(json_array_get(json_object_get(r, "category"), 0), "coding"), 0),
				"code"));
			vital += !strcmp(cat, "vital-signs");
			lab += !strcmp(cat, "laboratory");
			json_t *q = json_object_get(r, "valueQuantity");
			if (!q) /* the blood pressure panel */
				q = json_object_get(json_array_get(json_object_get(r, "component"), 0), "valueQuantity");
			assert_string_equal(json_string_value(json_object_get(q, "system")), "http://unitsofmeasure.org");
			assert_true(json_is_number(json_object_get(q, "value")));
			assert_string_equal(json_string_value(json_object_get(json_array_get(
						    json_object_get(json_object_get(r, "code"), "coding"), 0), "system")),
					    "http://loinc.org");
		}
		if (!strcmp(rt, "Condition")) {
			int64_t on = ms_of(json_object_get(r, "onsetDateTime"));
			assert_true(b <= on && on <= ms_of(json_object_get(r, "recordedDate")));
		}
		if (!strcmp(rt, "DocumentReference")) {
			json_t *att = json_object_get(json_array_get(json_object_get(r, "content"), 0), "attachment");
			assert_string_equal(json_string_value(json_object_get(att, "contentType")),
					    "text/plain; charset=utf-8");
			assert_true(json_string_length(json_object_get(att, "data")) > 100);
			assert_non_null(json_object_get(json_object_get(r, "text"), "div"));
		}
	}
	assert_int_equal(counts[0], 1);
	assert_int_equal(counts[1], 6);
	assert_int_equal(counts[2], 20);
	assert_true(counts[3] >= 40 && counts[3] <= 100); /* 2..5 encounters each */
	assert_true(counts[4] >= 20);
	assert_true(counts[6] >= 1);
	assert_int_equal(counts[7], counts[3]); /* one note per encounter */
	assert_true(vital >= 7 * counts[3]);
	assert_true(lab > 0);
	assert_true(nrefs > json_array_size(c.all)); /* on average more than one reference each */
	json_decref(seen);
	json_decref(birth);
	json_decref(c.all);
	json_decref(c.keys);
}

static void test_bundle(void **state)
{
	(void)state;
	struct salus_gen *g;
	json_t *b = NULL;
	assert_int_equal(salus_gen_new(NULL, &g), SALUS_OK);
	assert_int_equal(salus_gen_bundle(g, 2, &b), SALUS_OK);
	assert_string_equal(json_string_value(json_object_get(b, "type")), "transaction");
	json_t *entries = json_object_get(b, "entry");
	assert_int_equal(json_array_size(entries), salus_gen_resource_count(g));
	size_t i;
	json_t *e;
	json_array_foreach(entries, i, e)
	{
		json_t *r = json_object_get(e, "resource");
		char url[160];
		snprintf(url, sizeof url, "%s/%s", json_string_value(json_object_get(r, "resourceType")),
			 json_string_value(json_object_get(r, "id")));
		assert_string_equal(json_string_value(json_object_get(json_object_get(e, "request"), "url")), url);
		assert_string_equal(json_string_value(json_object_get(json_object_get(e, "request"), "method")), "PUT");
		assert_true(!strncmp(json_string_value(json_object_get(e, "fullUrl")), "urn:uuid:", 9));
	}
	/* the Bundle itself is valid against the definitions' element names */
	const struct salus_fhir_type *bt = salus_fhir_type_find(S("Bundle"));
	assert_non_null(salus_fhir_elem_child(bt, NULL, S("entry"), NULL));
	json_decref(b);
	assert_int_equal(salus_gen_run(g, SALUS_GEN_MAX_PATIENTS + 1, NULL, NULL), SALUS_EINVALID);
	salus_gen_free(g);
}

static int stop_cb(void *ctx, json_t *r)
{
	(void)r;
	size_t *n = ctx;
	return ++*n == 10 ? 77 : 0;
}

static void test_callback_stop(void **state)
{
	(void)state;
	struct salus_gen *g;
	size_t n = 0;
	assert_int_equal(salus_gen_new(NULL, &g), SALUS_OK);
	assert_int_equal(salus_gen_run(g, 3, stop_cb, &n), 77);
	assert_int_equal(n, 10);
	salus_gen_free(g);
}

static int count_cb(void *ctx, json_t *r)
{
	(void)r;
	(*(size_t *)ctx)++;
	return 0;
}

struct span {
	size_t enc, obs;
	int64_t first_ms; /* earliest Encounter start */
};

static int span_cb(void *ctx, json_t *r)
{
	struct span *sp = ctx;
	const char *rt = json_string_value(json_object_get(r, "resourceType"));
	if (!strcmp(rt, "Observation"))
		sp->obs++;
	if (strcmp(rt, "Encounter"))
		return 0;
	sp->enc++;
	const char *start = json_string_value(json_object_get(json_object_get(r, "period"), "start"));
	int64_t lo, hi;
	assert_non_null(start);
	assert_int_equal(salus_fhir_date_range(start, strlen(start), &lo, &hi), SALUS_OK);
	if (!sp->first_ms || lo < sp->first_ms)
		sp->first_ms = lo;
	return 0;
}

/* --years: the default (3) is the historical output; more years give a longer,
 * denser history (Synthea-like volume), still deterministic, never before
 * the reference "today" minus the span; out of range is refused. */
static void test_years(void **state)
{
	(void)state;
	size_t n0, n3, a, b;
	char *d0 = dump_years(5, 0, 4, &n0), *d3 = dump_years(5, 3, 4, &n3);
	assert_string_equal(d0, d3);
	salus_free(d0);
	salus_free(d3);
	char *y1 = dump_years(5, 60, 3, &a), *y2 = dump_years(5, 60, 3, &b);
	assert_int_equal(a, b);
	assert_string_equal(y1, y2);
	salus_free(y1);
	salus_free(y2);

	struct span s3 = {0}, s60 = {0};
	struct salus_gen *g;
	struct salus_gen_opts o = {.seed = 9, .years = 3};
	assert_int_equal(salus_gen_new(&o, &g), SALUS_OK);
	assert_int_equal(salus_gen_run(g, 40, span_cb, &s3), SALUS_OK);
	salus_gen_free(g);
	o.years = 60;
	assert_int_equal(salus_gen_new(&o, &g), SALUS_OK);
	assert_int_equal(salus_gen_run(g, 40, span_cb, &s60), SALUS_OK);
	size_t total = salus_gen_resource_count(g);
	salus_gen_free(g);
	const int64_t today = 1751284800000LL, year = 365LL * 86400000;
	assert_true(s3.first_ms >= today - 3 * year - 86400000);
	assert_true(s60.first_ms >= today - 60 * year - 86400000);
	assert_true(s60.first_ms < today - 20 * year);
	assert_true(s60.enc > 8 * s3.enc);
	assert_true(s60.obs > 8 * s3.obs);
	assert_true(total / 40 > 300 && total / 40 < 2000); /* hundreds a patient */

	o.years = SALUS_GEN_MAX_YEARS + 1;
	assert_int_equal(salus_gen_new(&o, &g), SALUS_EINVALID);
	o.years = -1;
	assert_int_equal(salus_gen_new(&o, &g), SALUS_EINVALID);
}

/* Fail the k-th allocation (every k up to 300, then a stride, to keep the
 * sanitizer run short): each run returns SALUS_ENOMEM or OK, never crashes or
 * leaks (LeakSanitizer in the sanitizer build). */
static void test_alloc_failures(void **state)
{
	(void)state;
	for (unsigned long k = 1;; k += k < 300 ? 1 : 37) {
		struct salus_gen *g = NULL;
		json_t *b = NULL;
		salus_alloc_fail_at(k, 1);
		int rc = salus_gen_new(NULL, &g);
		if (!rc) {
			rc = salus_gen_bundle(g, 1, &b);
			salus_gen_free(g);
		}
		salus_alloc_fail_at(0, 0);
		if (!rc) {
			json_decref(b);
			break;
		}
		assert_int_equal(rc, SALUS_ENOMEM);
		assert_true(k < 100000);
	}
	size_t n = 0;
	struct salus_gen *g;
	assert_int_equal(salus_gen_new(NULL, &g), SALUS_OK);
	assert_int_equal(salus_gen_patient(g, count_cb, &n), SALUS_OK);
	assert_true(n > 10);
	salus_gen_free(g);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deterministic), cmocka_unit_test(test_content),
		cmocka_unit_test(test_bundle),        cmocka_unit_test(test_callback_stop),
		cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_years),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
