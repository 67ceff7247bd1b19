/*
 * test_fhirpath_patch.c — FHIRPath Patch (src/fhir/fhirpath_patch.h), each
 * operation type of FHIR R4 fhirpatch.html with expectations worked out by
 * hand from the specification text:
 *   - add to a repeating element (appends, creates the list), to a singular
 *     one (only when absent), a choice element (name "value" + valueQuantity),
 *     a backbone value built from parts (repeating children become arrays);
 *   - insert at the front, middle and end, and past the end (422);
 *   - delete of one element, of a list item (the list disappears when empty,
 *     with its "_name" primitive extensions), of nothing (no change), of two
 *     elements (422);
 *   - replace of a shared boolean node, of a list item, of a choice element
 *     changing type;
 *   - move within a list;
 *   - malformed Parameters are 400 before anything changes, the failed
 *     operation's index is reported, resolve() is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/err.h"
#include "fhir/fhirpath_patch.h"

/* Apply the operations ops (JSON array text of operation parameters) to d; on success the result
 * must equal want. */
static int apply(const char *d, const char *ops, const char *want, size_t *bad)
{
	json_error_t err;
	char params[8192];
	snprintf(params, sizeof params, "{\"resourceType\":\"Parameters\",\"parameter\":%s}", ops);
	json_t *doc = json_loads(d, 0, &err), *p = json_loads(params, 0, &err);
	assert_non_null(doc);
	if (!p)
		fail_msg("bad test parameters: %s: %s", err.text, params);
	assert_true(salus_fhirpath_patch_is(p));
	const char *why = NULL;
	size_t b = 99;
	int rc = salus_fhirpath_patch(doc, p, &why, &b);
	if (rc == 0 && want) {
		json_t *w = json_loads(want, 0, &err);
		assert_non_null(w);
		if (!json_equal(doc, w)) {
			char *got = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
			fail_msg("patch %s on %s\n  got  %s\n  want %s", ops, d, got, want);
		}
		json_decref(w);
	}
	if (rc)
		assert_non_null(why);
	if (bad)
		*bad = b;
	json_decref(doc);
	json_decref(p);
	return rc;
}

#define OK(d, ops, want) assert_int_equal(apply(d, ops, want, NULL), 0)
#define BAD(d, ops, code) assert_int_equal(apply(d, ops, NULL, NULL), code)

/* One operation parameter: type, path and further parts (text, may be empty). */
#define OP(type, path, more)                                                                                         \
	"{\"name\":\"operation\",\"part\":[{\"name\":\"type\",\"valueCode\":\"" type "\"},{\"name\":\"path\","      \
	"\"valueString\":\"" path "\"}" more "]}"

static const char pat[] = "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
			  "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Ann\"]},{\"family\":\"Beta\"}],"
			  "\"deceasedBoolean\":false,\"birthDate\":\"1970-01-01\"}";

static void test_add(void **state)
{
	(void)state;
	/* a repeating element: appended */
	OK("{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"}]}",
	   "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"name\"},{\"name\":\"value\",\"valueHumanName\":{\"family\":\"B\"}}") "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"},{\"family\":\"B\"}]}");
	/* the list is created when absent */
	OK("{\"resourceType\":\"Patient\"}",
	   "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"identifier\"},{\"name\":\"value\",\"valueIdentifier\":{\"value\":\"7\"}}") "]",
	   "{\"resourceType\":\"Patient\",\"identifier\":[{\"value\":\"7\"}]}");
	/* a singular element: set when absent, refused when present */
	OK("{\"resourceType\":\"Patient\"}", "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"gender\"},{\"name\":\"value\",\"valueCode\":\"other\"}") "]",
	   "{\"resourceType\":\"Patient\",\"gender\":\"other\"}");
	BAD(pat, "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"birthDate\"},{\"name\":\"value\",\"valueDate\":\"1971-01-01\"}") "]",
	    SALUS_EUNPROCESSABLE);
	/* into a nested element selected by the path */
	OK(pat, "[" OP("add", "Patient.name[1]", ",{\"name\":\"name\",\"valueString\":\"given\"},{\"name\":\"value\",\"valueString\":\"Bo\"}") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
	   "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Ann\"]},{\"family\":\"Beta\",\"given\":[\"Bo\"]}],"
	   "\"deceasedBoolean\":false,\"birthDate\":\"1970-01-01\"}");
	/* a choice element: name "value", the type from value[x] */
	OK("{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"}}",
	   "[" OP("add", "Observation", ",{\"name\":\"name\",\"valueString\":\"value\"},"
					"{\"name\":\"value\",\"valueQuantity\":{\"value\":5,\"unit\":\"mg\"}}") "]",
	   "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"t\"},"
	   "\"valueQuantity\":{\"value\":5,\"unit\":\"mg\"}}");
	/* a backbone value from parts: telecom repeats (array), name does not */
	OK("{\"resourceType\":\"Patient\"}",
	   "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"contact\"},{\"name\":\"value\",\"part\":["
				    "{\"name\":\"name\",\"valueHumanName\":{\"family\":\"Mum\"}},"
				    "{\"name\":\"telecom\",\"valueContactPoint\":{\"system\":\"phone\",\"value\":\"1\"}},"
				    "{\"name\":\"telecom\",\"valueContactPoint\":{\"system\":\"email\",\"value\":\"a@b\"}}]}") "]",
	   "{\"resourceType\":\"Patient\",\"contact\":[{\"name\":{\"family\":\"Mum\"},\"telecom\":["
	   "{\"system\":\"phone\",\"value\":\"1\"},{\"system\":\"email\",\"value\":\"a@b\"}]}]}");
	/* an element the type does not have */
	BAD(pat, "[" OP("add", "Patient", ",{\"name\":\"name\",\"valueString\":\"nickname\"},{\"name\":\"value\",\"valueString\":\"x\"}") "]",
	    SALUS_EUNPROCESSABLE);
	/* the path must select exactly one element */
	BAD(pat, "[" OP("add", "Patient.name", ",{\"name\":\"name\",\"valueString\":\"given\"},{\"name\":\"value\",\"valueString\":\"x\"}") "]",
	    SALUS_EUNPROCESSABLE);
}

static void test_insert(void **state)
{
	(void)state;
	static const char d[] = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"},{\"family\":\"B\"}]}";
#define INS(i) OP("insert", "Patient.name", ",{\"name\":\"index\",\"valueInteger\":" #i "},"                         \
							"{\"name\":\"value\",\"valueHumanName\":{\"family\":\"N\"}}")
	OK(d, "[" INS(0) "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"N\"},{\"family\":\"A\"},{\"family\":\"B\"}]}");
	OK(d, "[" INS(1) "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"},{\"family\":\"N\"},{\"family\":\"B\"}]}");
	OK(d, "[" INS(2) "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\"},{\"family\":\"B\"},{\"family\":\"N\"}]}");
	BAD(d, "[" INS(3) "]", SALUS_EUNPROCESSABLE);
	/* into a list that does not exist yet: only at 0 */
	OK("{\"resourceType\":\"Patient\"}", "[" INS(0) "]", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"N\"}]}");
	BAD("{\"resourceType\":\"Patient\"}", "[" INS(1) "]", SALUS_EUNPROCESSABLE);
	/* a singular element is not a list */
	BAD(d, "[" OP("insert", "Patient.birthDate", ",{\"name\":\"index\",\"valueInteger\":0},{\"name\":\"value\",\"valueDate\":\"2000\"}") "]",
	    SALUS_EUNPROCESSABLE);
#undef INS
}

static void test_delete(void **state)
{
	(void)state;
	OK(pat, "[" OP("delete", "Patient.birthDate", "") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
	   "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Ann\"]},{\"family\":\"Beta\"}],\"deceasedBoolean\":false}");
	OK(pat, "[" OP("delete", "Patient.name.where(family = 'Alpha')", "") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,\"name\":[{\"family\":\"Beta\"}],"
	   "\"deceasedBoolean\":false,\"birthDate\":\"1970-01-01\"}");
	/* the last item: the list goes, with its primitive extensions */
	OK("{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"A\"],\"_given\":[{\"id\":\"g\"}]}]}",
	   "[" OP("delete", "Patient.name.given", "") "]", "{\"resourceType\":\"Patient\",\"name\":[{}]}");
	/* a shared boolean node (true occurs once, false once here: located either way) */
	OK(pat, "[" OP("delete", "Patient.deceased", "") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
	   "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Ann\"]},{\"family\":\"Beta\"}],\"birthDate\":\"1970-01-01\"}");
	/* nothing selected: no change */
	OK(pat, "[" OP("delete", "Patient.gender", "") "]", pat);
	/* two selected */
	BAD(pat, "[" OP("delete", "Patient.name", "") "]", SALUS_EUNPROCESSABLE);
	/* the resource itself */
	BAD(pat, "[" OP("delete", "Patient", "") "]", SALUS_EUNPROCESSABLE);
}

static void test_replace(void **state)
{
	(void)state;
	/* booleans are shared nodes in jansson: two trues, the path's last step says which */
	static const char d[] = "{\"resourceType\":\"Patient\",\"active\":true,\"deceasedBoolean\":true}";
	OK(d, "[" OP("replace", "Patient.active", ",{\"name\":\"value\",\"valueBoolean\":false}") "]",
	   "{\"resourceType\":\"Patient\",\"active\":false,\"deceasedBoolean\":true}");
	OK(d, "[" OP("replace", "Patient.deceased", ",{\"name\":\"value\",\"valueBoolean\":false}") "]",
	   "{\"resourceType\":\"Patient\",\"active\":true,\"deceasedBoolean\":false}");
	/* a choice element changing type */
	OK(d, "[" OP("replace", "Patient.deceased", ",{\"name\":\"value\",\"valueDateTime\":\"2020-02-02\"}") "]",
	   "{\"resourceType\":\"Patient\",\"active\":true,\"deceasedDateTime\":\"2020-02-02\"}");
	/* a list item */
	OK(pat, "[" OP("replace", "Patient.name[1].family", ",{\"name\":\"value\",\"valueString\":\"Gamma\"}") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
	   "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Ann\"]},{\"family\":\"Gamma\"}],"
	   "\"deceasedBoolean\":false,\"birthDate\":\"1970-01-01\"}");
	OK(pat, "[" OP("replace", "Patient.name.given[0]", ",{\"name\":\"value\",\"valueString\":\"Anna\"}") "]",
	   "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,"
	   "\"name\":[{\"family\":\"Alpha\",\"given\":[\"Anna\"]},{\"family\":\"Beta\"}],"
	   "\"deceasedBoolean\":false,\"birthDate\":\"1970-01-01\"}");
	/* none or two selected */
	BAD(pat, "[" OP("replace", "Patient.gender", ",{\"name\":\"value\",\"valueCode\":\"male\"}") "]",
	    SALUS_EUNPROCESSABLE);
	BAD(pat, "[" OP("replace", "Patient.name.family", ",{\"name\":\"value\",\"valueString\":\"X\"}") "]",
	    SALUS_EUNPROCESSABLE);
}

static void test_move(void **state)
{
	(void)state;
	static const char d[] = "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"0\"},{\"text\":\"1\"},{\"text\":\"2\"}]}";
#define MV(s, t)                                                                                                     \
	OP("move", "Patient.name", ",{\"name\":\"source\",\"valueInteger\":" #s "},"                                  \
				   "{\"name\":\"destination\",\"valueInteger\":" #t "}")
	OK(d, "[" MV(0, 2) "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"1\"},{\"text\":\"2\"},{\"text\":\"0\"}]}");
	OK(d, "[" MV(2, 0) "]",
	   "{\"resourceType\":\"Patient\",\"name\":[{\"text\":\"2\"},{\"text\":\"0\"},{\"text\":\"1\"}]}");
	OK(d, "[" MV(1, 1) "]", d);
	BAD(d, "[" MV(0, 3) "]", SALUS_EUNPROCESSABLE);
	BAD(d, "[" MV(3, 0) "]", SALUS_EUNPROCESSABLE);
#undef MV
}

static void test_malformed(void **state)
{
	(void)state;
	size_t bad = 0;
	/* unknown type, missing parts, duplicate parts, bad index, not an operation */
	BAD(pat, "[" OP("frob", "Patient", "") "]", SALUS_EINVALID);
	BAD(pat, "[" OP("add", "Patient", "") "]", SALUS_EINVALID);
	BAD(pat, "[" OP("insert", "Patient.name", ",{\"name\":\"value\",\"valueString\":\"x\"}") "]", SALUS_EINVALID);
	BAD(pat, "[" OP("delete", "Patient.name", ",{\"name\":\"path\",\"valueString\":\"Patient\"}") "]", SALUS_EINVALID);
	BAD(pat, "[" OP("move", "Patient.name", ",{\"name\":\"source\",\"valueInteger\":-1},{\"name\":\"destination\",\"valueInteger\":0}") "]",
	    SALUS_EINVALID);
	BAD(pat, "[{\"name\":\"op\",\"part\":[]}]", SALUS_EINVALID);
	BAD(pat, "[" OP("delete", "Patient.name.(", "") "]", SALUS_EINVALID);
	BAD(pat, "[" OP("delete", "Patient.managingOrganization.resolve().name", "") "]", SALUS_EINVALID);
	/* a malformed later operation: nothing was applied, and its index is reported */
	assert_int_equal(apply(pat, "[" OP("delete", "Patient.birthDate", "") "," OP("frob", "Patient", "") "]", NULL, &bad),
			 SALUS_EINVALID);
	assert_int_equal(bad, 1);
	/* an operation that cannot apply: its index */
	assert_int_equal(apply(pat, "[" OP("delete", "Patient.birthDate", "") "," OP("delete", "Patient.name", "") "]",
			       NULL, &bad),
			 SALUS_EUNPROCESSABLE);
	assert_int_equal(bad, 1);
	/* not Parameters */
	json_t *doc = json_loads(pat, 0, NULL), *p = json_loads("{\"resourceType\":\"Binary\"}", 0, NULL);
	assert_false(salus_fhirpath_patch_is(p));
	assert_int_equal(salus_fhirpath_patch(doc, p, NULL, NULL), SALUS_EINVALID);
	json_decref(doc);
	json_decref(p);
	/* an empty patch changes nothing */
	OK(pat, "[]", pat);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),     cmocka_unit_test(test_insert), cmocka_unit_test(test_delete),
		cmocka_unit_test(test_replace), cmocka_unit_test(test_move),   cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
