/*
 * test_patch.c — JSON Patch (src/fhir/patch.h, RFC 6902 with RFC 6901
 * pointers) and the FHIR PATCH interaction over a temporary store:
 *   - every example of RFC 6902 Appendix A (A.1 .. A.16), written from the
 *     RFC text;
 *   - pointer escapes ~0 / ~1 and their order, `-`, index syntax;
 *   - 400 (malformed patch) vs 422 (cannot apply, failed test), failed-op index;
 *   - salus_json_patch_touches;
 *   - PATCH /T/id: changes to id, resourceType or meta are refused (422), a
 *     no-op patch writes no version, If-Match, decimals of untouched members
 *     keep their spelling; the media type picks JSON Patch or FHIRPath Patch.
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

#include "core/err.h"
#include "fhir/patch.h"
#include "fhir/rest.h"
#include "store/store.h"

/* Apply patch text p to document text d; on success the result must equal want. */
static int apply(const char *d, const char *p, const char *want, size_t *bad)
{
	json_error_t err;
	json_t *doc = json_loads(d, JSON_DECODE_ANY, &err), *patch = json_loads(p, 0, &err);
	assert_non_null(doc);
	assert_non_null(patch);
	const char *why = NULL;
	size_t b = 99;
	int rc = salus_json_patch(doc, patch, &why, &b);
	if (rc == 0 && want) {
		json_t *w = json_loads(want, JSON_DECODE_ANY, &err);
		assert_non_null(w);
		if (!json_equal(doc, w)) {
			char *got = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
			fail_msg("patch %s on %s\n  got  %s\n  want %s", p, d, got, want);
		}
		json_decref(w);
	}
	if (rc)
		assert_non_null(why);
	if (bad)
		*bad = b;
	json_decref(doc);
	json_decref(patch);
	return rc;
}

#define OK(d, p, want) assert_int_equal(apply(d, p, want, NULL), 0)
#define BAD(d, p, code) assert_int_equal(apply(d, p, NULL, NULL), code)

/* ---- RFC 6902 Appendix A ---- */

static void t_rfc_appendix(void **state)
{
	(void)state;
	/* A.1 Adding an Object Member */
	OK("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\"}]",
	   "{\"baz\":\"qux\",\"foo\":\"bar\"}");
	/* A.2 Adding an Array Element */
	OK("{\"foo\":[\"bar\",\"baz\"]}", "[{\"op\":\"add\",\"path\":\"/foo/1\",\"value\":\"qux\"}]",
	   "{\"foo\":[\"bar\",\"qux\",\"baz\"]}");
	/* A.3 Removing an Object Member */
	OK("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"remove\",\"path\":\"/baz\"}]", "{\"foo\":\"bar\"}");
	/* A.4 Removing an Array Element */
	OK("{\"foo\":[\"bar\",\"qux\",\"baz\"]}", "[{\"op\":\"remove\",\"path\":\"/foo/1\"}]",
	   "{\"foo\":[\"bar\",\"baz\"]}");
	/* A.5 Replacing a Value */
	OK("{\"baz\":\"qux\",\"foo\":\"bar\"}", "[{\"op\":\"replace\",\"path\":\"/baz\",\"value\":\"boo\"}]",
	   "{\"baz\":\"boo\",\"foo\":\"bar\"}");
	/* A.6 Moving a Value */
	OK("{\"foo\":{\"bar\":\"baz\",\"waldo\":\"fred\"},\"qux\":{\"corge\":\"grault\"}}",
	   "[{\"op\":\"move\",\"from\":\"/foo/waldo\",\"path\":\"/qux/thud\"}]",
	   "{\"foo\":{\"bar\":\"baz\"},\"qux\":{\"corge\":\"grault\",\"thud\":\"fred\"}}");
	/* A.7 Moving an Array Element */
	OK("{\"foo\":[\"all\",\"grass\",\"cows\",\"eat\"]}", "[{\"op\":\"move\",\"from\":\"/foo/1\",\"path\":\"/foo/3\"}]",
	   "{\"foo\":[\"all\",\"cows\",\"eat\",\"grass\"]}");
	/* A.8 Testing a Value: Success */
	OK("{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}",
	   "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"qux\"},{\"op\":\"test\",\"path\":\"/foo/1\",\"value\":2}]",
	   "{\"baz\":\"qux\",\"foo\":[\"a\",2,\"c\"]}");
	/* A.9 Testing a Value: Error */
	BAD("{\"baz\":\"qux\"}", "[{\"op\":\"test\",\"path\":\"/baz\",\"value\":\"bar\"}]", SALUS_EUNPROCESSABLE);
	/* A.10 Adding a Nested Member Object */
	OK("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/child\",\"value\":{\"grandchild\":{}}}]",
	   "{\"foo\":\"bar\",\"child\":{\"grandchild\":{}}}");
	/* A.11 Ignoring Unrecognized Elements */
	OK("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"xyz\":123}]",
	   "{\"foo\":\"bar\",\"baz\":\"qux\"}");
	/* A.12 Adding to a Nonexistent Target */
	BAD("{\"foo\":\"bar\"}", "[{\"op\":\"add\",\"path\":\"/baz/bat\",\"value\":\"qux\"}]", SALUS_EUNPROCESSABLE);
	/* A.13 Invalid JSON Patch Document: a repeated "op" — refused when the
	 * patch is parsed (the PATCH handler parses with JSON_REJECT_DUPLICATES) */
	json_error_t err;
	assert_null(json_loads("[{\"op\":\"add\",\"path\":\"/baz\",\"value\":\"qux\",\"op\":\"remove\"}]",
			       JSON_REJECT_DUPLICATES, &err));
	/* A.14 ~ Escape Ordering */
	OK("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":10}]", "{\"/\":9,\"~1\":10}");
	/* A.15 Comparing Strings and Numbers */
	BAD("{\"/\":9,\"~1\":10}", "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":\"10\"}]", SALUS_EUNPROCESSABLE);
	/* A.16 Adding an Array Value */
	OK("{\"foo\":[\"bar\"]}", "[{\"op\":\"add\",\"path\":\"/foo/-\",\"value\":[\"abc\",\"def\"]}]",
	   "{\"foo\":[\"bar\",[\"abc\",\"def\"]]}");
}

/* ---- pointers, operations, errors ---- */

static void t_pointers(void **state)
{
	(void)state;
	const char *d = "{\"a/b\":1,\"m~n\":2,\"\":{\"\":3},\"arr\":[0,1,2]}";
	OK(d, "[{\"op\":\"replace\",\"path\":\"/a~1b\",\"value\":5}]", "{\"a/b\":5,\"m~n\":2,\"\":{\"\":3},\"arr\":[0,1,2]}");
	OK(d, "[{\"op\":\"remove\",\"path\":\"/m~0n\"}]", "{\"a/b\":1,\"\":{\"\":3},\"arr\":[0,1,2]}");
	OK(d, "[{\"op\":\"test\",\"path\":\"//\",\"value\":3}]", d); /* empty keys */
	/* ~01 is "~1", not "/" (decode ~1 before ~0 would be wrong) */
	BAD(d, "[{\"op\":\"test\",\"path\":\"/~01\",\"value\":1}]", SALUS_EUNPROCESSABLE);
	/* malformed pointers: no leading slash, bad escapes */
	BAD(d, "[{\"op\":\"remove\",\"path\":\"a\"}]", SALUS_EINVALID);
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/a~2b\"}]", SALUS_EINVALID);
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/a~\"}]", SALUS_EINVALID);
	/* `-` appends on add, names no element elsewhere */
	OK(d, "[{\"op\":\"add\",\"path\":\"/arr/-\",\"value\":3}]", "{\"a/b\":1,\"m~n\":2,\"\":{\"\":3},\"arr\":[0,1,2,3]}");
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/arr/-\"}]", SALUS_EUNPROCESSABLE);
	BAD(d, "[{\"op\":\"replace\",\"path\":\"/arr/-\",\"value\":1}]", SALUS_EUNPROCESSABLE);
	/* array indexes: no leading zeros, no signs, end inclusive for add only */
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/arr/01\"}]", SALUS_EUNPROCESSABLE);
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/arr/-1\"}]", SALUS_EUNPROCESSABLE);
	BAD(d, "[{\"op\":\"remove\",\"path\":\"/arr/3\"}]", SALUS_EUNPROCESSABLE);
	OK(d, "[{\"op\":\"add\",\"path\":\"/arr/3\",\"value\":9}]", "{\"a/b\":1,\"m~n\":2,\"\":{\"\":3},\"arr\":[0,1,2,9]}");
	BAD(d, "[{\"op\":\"add\",\"path\":\"/arr/4\",\"value\":9}]", SALUS_EUNPROCESSABLE);
	BAD(d, "[{\"op\":\"add\",\"path\":\"/arr/99999999999\",\"value\":9}]", SALUS_EUNPROCESSABLE);
	/* add on an existing member replaces it */
	OK(d, "[{\"op\":\"add\",\"path\":\"/m~0n\",\"value\":[]}]", "{\"a/b\":1,\"m~n\":[],\"\":{\"\":3},\"arr\":[0,1,2]}");
	/* copy is a deep copy */
	OK("{\"a\":{\"x\":1}}", "[{\"op\":\"copy\",\"from\":\"/a\",\"path\":\"/b\"},{\"op\":\"replace\",\"path\":\"/b/x\",\"value\":2}]",
	   "{\"a\":{\"x\":1},\"b\":{\"x\":2}}");
	/* move to itself is a no-op; into its own child is refused */
	OK("{\"a\":{\"x\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a\"}]", "{\"a\":{\"x\":1}}");
	BAD("{\"a\":{\"x\":1}}", "[{\"op\":\"move\",\"from\":\"/a\",\"path\":\"/a/x/y\"}]", SALUS_EUNPROCESSABLE);
	BAD("{\"a\":1}", "[{\"op\":\"move\",\"from\":\"/nope\",\"path\":\"/b\"}]", SALUS_EUNPROCESSABLE);
	/* the whole document is never replaced or moved */
	BAD("{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", SALUS_EUNPROCESSABLE);
	BAD("{\"a\":1}", "[{\"op\":\"remove\",\"path\":\"\"}]", SALUS_EUNPROCESSABLE);
	/* but the root can be tested */
	OK("{\"a\":1}", "[{\"op\":\"test\",\"path\":\"\",\"value\":{\"a\":1}}]", "{\"a\":1}");
}

static void t_test_op(void **state)
{
	(void)state;
	const char *d = "{\"n\":10,\"r\":1.5,\"o\":{\"a\":[1,{\"b\":null}],\"c\":true}}";
	OK(d, "[{\"op\":\"test\",\"path\":\"/o\",\"value\":{\"c\":true,\"a\":[1,{\"b\":null}]}}]", d); /* member order */
	BAD(d, "[{\"op\":\"test\",\"path\":\"/o/a\",\"value\":[{\"b\":null},1]}]", SALUS_EUNPROCESSABLE); /* element order */
	BAD(d, "[{\"op\":\"test\",\"path\":\"/o/c\",\"value\":1}]", SALUS_EUNPROCESSABLE);
	BAD(d, "[{\"op\":\"test\",\"path\":\"/nope\",\"value\":null}]", SALUS_EUNPROCESSABLE);
	OK(d, "[{\"op\":\"test\",\"path\":\"/o/a/1/b\",\"value\":null}]", d);
	/* RFC 6902 §4.6: numbers are equal when their values are numerically equal */
	OK(d, "[{\"op\":\"test\",\"path\":\"/n\",\"value\":10.0}]", d);
	OK(d, "[{\"op\":\"test\",\"path\":\"/r\",\"value\":1.50}]", d);
	OK(d, "[{\"op\":\"test\",\"path\":\"/o/a\",\"value\":[1.0,{\"b\":null}]}]", d);
	BAD(d, "[{\"op\":\"test\",\"path\":\"/n\",\"value\":10.5}]", SALUS_EUNPROCESSABLE);
}

static void t_errors(void **state)
{
	(void)state;
	size_t bad;
	const char *d = "{\"a\":1}";
	BAD(d, "{\"op\":\"remove\",\"path\":\"/a\"}", SALUS_EINVALID); /* not an array */
	BAD(d, "[{\"op\":\"frobnicate\",\"path\":\"/a\"}]", SALUS_EINVALID);
	BAD(d, "[{\"path\":\"/a\"}]", SALUS_EINVALID);
	BAD(d, "[{\"op\":\"add\",\"path\":\"/b\"}]", SALUS_EINVALID);    /* no value */
	BAD(d, "[{\"op\":\"move\",\"path\":\"/b\"}]", SALUS_EINVALID);   /* no from */
	BAD(d, "[{\"op\":\"add\",\"path\":5,\"value\":1}]", SALUS_EINVALID);
	BAD(d, "[\"add\"]", SALUS_EINVALID);
	OK(d, "[]", d);
	/* a null value is a value */
	OK(d, "[{\"op\":\"add\",\"path\":\"/b\",\"value\":null}]", "{\"a\":1,\"b\":null}");
	/* the failing op's index */
	assert_int_equal(apply(d, "[{\"op\":\"add\",\"path\":\"/b\",\"value\":2},{\"op\":\"test\",\"path\":\"/b\",\"value\":2},"
				  "{\"op\":\"remove\",\"path\":\"/zz\"}]",
			       NULL, &bad),
			 SALUS_EUNPROCESSABLE);
	assert_int_equal(bad, 2);
	/* op limit */
	json_t *many = json_array();
	for (int i = 0; i <= SALUS_PATCH_MAX_OPS; i++)
		json_array_append_new(many, json_pack("{s:s,s:s}", "op", "test", "path", "/a"));
	json_t *doc = json_loads(d, 0, NULL);
	assert_int_equal(salus_json_patch(doc, many, NULL, NULL), SALUS_EINVALID);
	json_decref(doc);
	json_decref(many);
}

static void t_touches(void **state)
{
	(void)state;
	json_t *p = json_loads("[{\"op\":\"test\",\"path\":\"/id\",\"value\":\"x\"},{\"op\":\"add\",\"path\":\"/name/0\",\"value\":{}},"
			       "{\"op\":\"move\",\"from\":\"/m~1eta/x\",\"path\":\"/other\"}]",
			       0, NULL);
	assert_non_null(p);
	assert_false(salus_json_patch_touches(p, "id")); /* test changes nothing */
	assert_true(salus_json_patch_touches(p, "name"));
	assert_false(salus_json_patch_touches(p, "nam"));
	assert_true(salus_json_patch_touches(p, "m/eta"));
	assert_true(salus_json_patch_touches(p, "other"));
	assert_false(salus_json_patch_touches(p, "meta"));
	json_decref(p);
	p = json_loads("[{\"op\":\"test\",\"path\":\"\",\"value\":{}},{\"op\":\"replace\",\"path\":\"\",\"value\":{}}]", 0, NULL);
	assert_true(salus_json_patch_touches(p, "anything")); /* the root touches every member */
	json_decref(p);
}

/* ---- the PATCH interaction on a store ---- */

struct env {
	char path[128];
	struct salus_store *st;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	snprintf(e->path, sizeof e->path, "/tmp/salus-test-patch-%d.db", (int)getpid());
	unlink(e->path);
	struct salus_store_opts o = {.create = true, .readers = 2};
	if (salus_store_open(e->path, &o, &e->st))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char p[160];
	salus_store_free(e->st);
	unlink(e->path);
	snprintf(p, sizeof p, "%s-wal", e->path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", e->path);
	unlink(p);
	free(e);
	return 0;
}

static int call(struct env *e, enum salus_fhir_op op, const char *type, const char *id, const char *body,
		const char *ct, const char *if_match, struct salus_fhir_resp *rs)
{
	struct salus_fhir_req rq = {.op = op, .base = "https://x/fhir", .body = body, .body_len = body ? strlen(body) : 0,
				    .content_type = ct, .if_match = if_match};
	snprintf(rq.type, sizeof rq.type, "%s", type);
	snprintf(rq.id, sizeof rq.id, "%s", id);
	salus_fhir_resp_init(rs);
	return salus_fhir_handle(e->st, &rq, rs);
}

static int patch(struct env *e, const char *id, const char *body, const char *if_match, char **out)
{
	struct salus_fhir_resp rs;
	int st = call(e, SALUS_FHIR_PATCH, "Observation", id, body, "application/json-patch+json", if_match, &rs);
	if (out)
		*out = strdup(rs.body.n ? rs.body.p : "");
	salus_fhir_resp_release(&rs);
	return st;
}

static void t_patch_interaction(void **state)
{
	struct env *e = *state;
	struct salus_fhir_resp rs;
	const char *obs = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
			  "\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg\"},\"component\":[{\"code\":{\"text\":\"c\"},"
			  "\"valueQuantity\":{\"value\":1e2}}]}";
	assert_int_equal(call(e, SALUS_FHIR_UPDATE, "Observation", "o1", obs, "application/fhir+json", NULL, &rs), 201);
	salus_fhir_resp_release(&rs);

	/* forbidden members: 422 */
	assert_int_equal(patch(e, "o1", "[{\"op\":\"replace\",\"path\":\"/id\",\"value\":\"o2\"}]", NULL, NULL), 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"remove\",\"path\":\"/id\"}]", NULL, NULL), 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"replace\",\"path\":\"/resourceType\",\"value\":\"Patient\"}]", NULL, NULL),
			 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"add\",\"path\":\"/meta/tag\",\"value\":[{\"code\":\"t\"}]}]", NULL, NULL),
			 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"remove\",\"path\":\"/meta\"}]", NULL, NULL), 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"move\",\"from\":\"/meta\",\"path\":\"/x\"}]", NULL, NULL), 422);
	/* malformed 400, cannot apply 422, wrong media type 415, missing resource 404 */
	assert_int_equal(patch(e, "o1", "{\"op\":\"remove\"}", NULL, NULL), 400);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"add\",\"path\":\"/a\",\"value\":1,\"op\":\"remove\"}]", NULL, NULL), 400);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"remove\",\"path\":\"/nope\"}]", NULL, NULL), 422);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"test\",\"path\":\"/status\",\"value\":\"amended\"}]", NULL, NULL), 422);
	assert_int_equal(call(e, SALUS_FHIR_PATCH, "Observation", "o1", "[]", "text/plain", NULL, &rs), 415);
	salus_fhir_resp_release(&rs);
	/* application/json is FHIR JSON: a FHIRPath Patch (Parameters), so a JSON Patch array there is a 400 */
	assert_int_equal(call(e, SALUS_FHIR_PATCH, "Observation", "o1", "[]", "application/json", NULL, &rs), 400);
	salus_fhir_resp_release(&rs);
	assert_int_equal(patch(e, "nope", "[]", NULL, NULL), 404);
	/* the result is validated: an unknown element is refused */
	assert_int_equal(patch(e, "o1", "[{\"op\":\"add\",\"path\":\"/bogus\",\"value\":1}]", NULL, NULL), 400);
	/* a no-op patch (test only) writes no version */
	char *out = NULL;
	assert_int_equal(patch(e, "o1", "[{\"op\":\"test\",\"path\":\"/status\",\"value\":\"final\"}]", NULL, &out), 200);
	assert_non_null(strstr(out, "\"versionId\":\"1\""));
	free(out);
	/* If-Match */
	assert_int_equal(patch(e, "o1", "[{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"amended\"}]", "W/\"7\"", NULL),
			 412);
	assert_int_equal(patch(e, "o1", "[{\"op\":\"replace\",\"path\":\"/status\",\"value\":\"amended\"}]", "W/\"1\"", &out),
			 200);
	assert_non_null(strstr(out, "\"versionId\":\"2\""));
	assert_non_null(strstr(out, "\"status\":\"amended\""));
	/* untouched members keep their number spelling */
	assert_non_null(strstr(out, "\"value\":1.50"));
	assert_non_null(strstr(out, "\"value\":1e2"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_rfc_appendix),
		cmocka_unit_test(t_pointers),
		cmocka_unit_test(t_test_op),
		cmocka_unit_test(t_errors),
		cmocka_unit_test(t_touches),
		cmocka_unit_test_setup_teardown(t_patch_interaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
