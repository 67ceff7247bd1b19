/*
 * test_splice.c — raw JSON scanning and splicing (src/store/splice.h), the
 * heart of round-trip fidelity:
 *   - the top-level member iterator (objects and arrays, whitespace, nesting,
 *     strings with braces and escapes, malformed text, truncation at every length);
 *   - salus_json_member;
 *   - the minifying copy keeps numbers (1.50, 1e2, -0.0, big integers) and
 *     escapes byte for byte and replaces strings through the callback;
 *   - the id/meta splice: resourceType first, the server's id and meta, every
 *     other member copied, the client's id and meta dropped; a top-level key
 *     written with escapes is refused (the caller falls back to the tree);
 *   - the compact splice of the write path (salus_json_splice_compact): the
 *     general splice's output with jansson's dump of the stamped meta, byte
 *     for byte, on hand-made metas and every official example; its refusals;
 *   - end to end through the REST handler on a temporary store.
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

#include "examples_dir.h"
#include <dirent.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/rest.h"
#include "store/splice.h"
#include "store/store.h"

#define S(lit) lit, strlen(lit)

static char *slice_dup(struct salus_slice s)
{
	char *p = malloc(s.n + 1);
	memcpy(p, s.p, s.n);
	p[s.n] = 0;
	return p;
}

/* "k=v|k=v|..." of the members of p (array elements: "=v"), or "!rc" on error. */
static char *members_of(const char *p, bool checked)
{
	static char out[4096];
	struct salus_json_iter it;
	struct salus_slice k, v;
	int rc;
	out[0] = 0;
	if ((rc = checked ? salus_json_iter_init_checked(&it, p, strlen(p)) : salus_json_iter_init(&it, p, strlen(p)))) {
		snprintf(out, sizeof out, "!%d", rc);
		return out;
	}
	while ((rc = salus_json_iter_next(&it, &k, &v)) == 1) {
		size_t l = strlen(out);
		snprintf(out + l, sizeof out - l, "%s%.*s=%.*s", l ? "|" : "", (int)k.n, k.p ? k.p : "", (int)v.n, v.p);
	}
	if (rc) {
		size_t l = strlen(out);
		snprintf(out + l, sizeof out - l, "!%d", rc);
	}
	return out;
}

static char *members(const char *p)
{
	return members_of(p, false);
}

static void t_iter(void **state)
{
	(void)state;
	assert_string_equal(members("{}"), "");
	assert_string_equal(members(" [ ] "), "");
	assert_string_equal(members("{\"a\":1,\"b\":\"x\"}"), "a=1|b=\"x\"");
	assert_string_equal(members(" {\n \"a\" : 1.50 ,\t\"b\" : [ 1 , {\"c\":\"}\"} ] , \"d\":null}\n"),
			    "a=1.50|b=[ 1 , {\"c\":\"}\"} ]|d=null");
	assert_string_equal(members("[1,\"two\",{\"x\":[]},true]"), "=1|=\"two\"|={\"x\":[]}|=true");
	/* keys are raw: escapes intact */
	assert_string_equal(members("{\"a\\\"b\":1,\"\\u0069d\":2}"), "a\\\"b=1|\\u0069d=2");
	/* strings with brackets, quotes and backslashes inside */
	assert_string_equal(members("{\"s\":\"[{\\\"\\\\\",\"t\":\"]}\"}"), "s=\"[{\\\"\\\\\"|t=\"]}\"");
	/* not a container */
	assert_string_equal(members("\"x\""), "!-2");
	assert_string_equal(members("12"), "!-2");
	assert_string_equal(members(""), "!-2");
	/* malformed: errors, never a read past the end */
	assert_string_equal(members("{\"a\" 1}"), "!-2");
	assert_string_equal(members("{\"a\":1 \"b\":2}"), "a=1!-2");
	assert_string_equal(members("{a:1}"), "!-2");
	assert_string_equal(members("{\"a\":tru}"), "!-2");
	assert_string_equal(members("{\"a\":\"\\x\"}"), "!-2");
	assert_string_equal(members("{\"a\":\"\\u12g4\"}"), "!-2");
	assert_string_equal(members("{\"a\":\"tab\there\"}"), "!-2");
	assert_string_equal(members("{\"a\":[1,2}"), "!-2");
	/* every truncation of a valid document fails cleanly (ASan checks the reads) */
	const char *doc = "{\"resourceType\":\"Patient\",\"name\":[{\"given\":[\"A\\u00e9\",\"B\"]}],\"x\":-1.5e+3}";
	size_t n = strlen(doc);
	for (size_t l = 0; l < n; l++) {
		char *t = malloc(l ? l : 1);
		memcpy(t, doc, l);
		struct salus_json_iter it;
		struct salus_slice k, v;
		int rc = salus_json_iter_init(&it, t, l);
		while (!rc && (rc = salus_json_iter_next(&it, &k, &v)) == 1)
			rc = 0;
		assert_true(rc < 0);
		struct salus_buf b;
		salus_buf_init(&b, 1 << 16);
		assert_int_equal(salus_json_copy(&b, t, l, NULL, NULL), SALUS_EINVALID);
		salus_buf_release(&b);
		free(t);
	}
	/* nesting is bounded: SALUS_MAX_JSON_DEPTH - 1 arrays inside the object are fine, one more is not */
	for (int d = SALUS_MAX_JSON_DEPTH - 1; d <= SALUS_MAX_JSON_DEPTH; d++) {
		char deep[2 * SALUS_MAX_JSON_DEPTH + 16];
		size_t k = 0;
		memcpy(deep, "{\"a\":", 5);
		k = 5;
		for (int i = 0; i < d; i++)
			deep[k++] = '[';
		for (int i = 0; i < d; i++)
			deep[k++] = ']';
		deep[k++] = '}';
		deep[k] = 0;
		const char *m = members(deep);
		assert_true(d < SALUS_MAX_JSON_DEPTH ? !strchr(m, '!') : !strcmp(m, "!-2"));
	}
}

/* The checked iterator (text a strict parser accepted) skips values by
 * bracket matching: the same members as the checking one on valid text, and
 * on any truncation no read past the end (ASan) and no slice outside it. */
static void t_iter_checked(void **state)
{
	(void)state;
	static const char *const docs[] = {
		"{}",
		" [ ] ",
		"{\"a\":1,\"b\":\"x\"}",
		" {\n \"a\" : 1.50 ,\t\"b\" : [ 1 , {\"c\":\"}\"} ] , \"d\":null}\n",
		"[1,\"two\",{\"x\":[]},true,-0.5e+3,false,null]",
		"{\"a\\\"b\":1,\"\\u0069d\":2}",
		"{\"s\":\"[{\\\"\\\\\",\"t\":\"]}\",\"u\":[\"\\\\\",\"\\\"]\"],\"v\":{\"w\":{\"x\":[[],[{}]]}}}",
		("{\"entry\":[{\"fullUrl\":\"urn:uuid:1\",\"resource\":{\"resourceType\":\"Patient\",\"name\":[{\"given\":"
		 "[\"A\\u00e9\"]}]},\"request\":{\"method\":\"POST\",\"url\":\"Patient\"}}]}"),
	};
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		char want[4096];
		snprintf(want, sizeof want, "%s", members_of(docs[d], false));
		assert_string_equal(members_of(docs[d], true), want);
		size_t n = strlen(docs[d]);
		for (size_t l = 0; l < n; l++) {
			char *t = malloc(l ? l : 1);
			memcpy(t, docs[d], l);
			struct salus_json_iter it;
			struct salus_slice k, v;
			int rc = salus_json_iter_init_checked(&it, t, l);
			while (!rc && (rc = salus_json_iter_next(&it, &k, &v)) == 1) {
				assert_true(v.p >= t && v.p + v.n <= t + l);
				rc = 0;
			}
			free(t);
		}
	}
	struct salus_slice v;
	assert_int_equal(salus_json_member_checked(S("{\"a\":{\"entry\":1},\"entry\":[ {\"b\":2} ]}"), "entry", &v), 1);
	assert_int_equal((int)v.n, 11);
	assert_int_equal(memcmp(v.p, "[ {\"b\":2} ]", 11), 0);
	assert_int_equal(salus_json_member_checked(S("{\"a\":{\"entry\":1}}"), "entry", &v), 0);
}

static void t_member(void **state)
{
	(void)state;
	struct salus_slice v;
	const char *p = "{\"entry\":[{\"resource\":{\"a\":1}}],\"type\":\"batch\",\"entryx\":2}";
	assert_int_equal(salus_json_member(S(p), "type", &v), 1);
	assert_int_equal(v.n, 7);
	assert_memory_equal(v.p, "\"batch\"", 7);
	assert_int_equal(salus_json_member(S(p), "entry", &v), 1);
	assert_int_equal(v.n, strlen("[{\"resource\":{\"a\":1}}]"));
	assert_int_equal(salus_json_member(S(p), "a", &v), 0); /* only top-level members */
	assert_int_equal(salus_json_member(S(p), "entr", &v), 0);
	assert_int_equal(salus_json_member(S("[1]"), "a", &v), SALUS_EINVALID);
	assert_int_equal(salus_json_member(S("{\"a\":}"), "a", &v), SALUS_EINVALID);
}

static char *copy(const char *p, salus_json_str_cb cb, void *ctx, int *rc)
{
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	*rc = salus_json_copy(&b, p, strlen(p), cb, ctx);
	char *out = *rc ? NULL : slice_dup((struct salus_slice){b.p, b.n});
	salus_buf_release(&b);
	return out;
}

static const char *swap_refs(void *ctx, struct salus_slice key, struct salus_slice str)
{
	int *calls = ctx;
	(*calls)++;
	if (salus_slice_eq(key, "reference") && salus_slice_eq(str, "urn:uuid:1"))
		return "Patient/p1";
	if (salus_slice_eq(key, "reference") && salus_slice_eq(str, "urn:uuid:é\"2"))
		return "Patient/\"q\"\\\x01";
	return NULL;
}

static void t_copy(void **state)
{
	(void)state;
	int rc, calls = 0;
	char *o;
	/* numbers and escapes byte for byte, whitespace outside strings removed */
	const char *in = "{ \"a\" : [ 1.50 , 1e2 , 1E+2 , -0.0 , 0.1e-7 , 123456789012345678901234567890 , "
			 "3.141592653589793238462643383279 ] ,\n \"s\" : \"x y\\u00e9\\ud83d\\ude00\\n\\/\" , \"t\" : true , \"n\" : null }";
	o = copy(in, NULL, NULL, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "{\"a\":[1.50,1e2,1E+2,-0.0,0.1e-7,123456789012345678901234567890,3.141592653589793238462643383279],"
			       "\"s\":\"x y\\u00e9\\ud83d\\ude00\\n\\/\",\"t\":true,\"n\":null}");
	free(o);
	/* strings are replaced through the callback, with the key of the member
	 * (or of the enclosing member for array elements), decoded */
	in = "{\"subject\":{\"reference\":\"urn:uuid:1\"},\"reference\":[\"urn:uuid:1\",\"keep\"],"
	     "\"other\":{\"reference\":\"urn:uuid:\\u00e9\\\"2\"},\"urn:uuid:1\":\"urn:uuid:1\"}";
	o = copy(in, swap_refs, &calls, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "{\"subject\":{\"reference\":\"Patient/p1\"},\"reference\":[\"Patient/p1\",\"keep\"],"
			       "\"other\":{\"reference\":\"Patient/\\\"q\\\"\\\\\\u0001\"},\"urn:uuid:1\":\"urn:uuid:1\"}");
	assert_int_equal(calls, 5); /* values only, never keys */
	free(o);
	/* malformed input */
	assert_null(copy("{\"a\":1,}", NULL, NULL, &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	assert_null(copy("{\"a\":1} x", NULL, NULL, &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	assert_null(copy("{\"a\":nul}", NULL, NULL, &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	assert_null(copy("{\"a\":1x}", NULL, NULL, &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	/* a lone surrogate cannot be decoded for the callback */
	calls = 0;
	assert_null(copy("{\"reference\":\"\\ud800\"}", swap_refs, &calls, &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	/* ... but without a callback it is copied as written */
	o = copy("{\"reference\":\"\\ud800\"}", NULL, NULL, &rc);
	assert_int_equal(rc, 0);
	free(o);
	/* the output cap */
	struct salus_buf b;
	salus_buf_init(&b, 8);
	assert_int_equal(salus_json_copy(&b, S("{\"abcdefgh\":1}"), NULL, NULL), SALUS_ETOOLARGE);
	salus_buf_release(&b);
}

static char *splice(const char *raw, const char *id, const char *meta, int *rc)
{
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	*rc = salus_json_splice(&b, raw, strlen(raw), id, meta, meta ? strlen(meta) : 0, NULL, NULL);
	char *out = *rc ? NULL : slice_dup((struct salus_slice){b.p, b.n});
	salus_buf_release(&b);
	return out;
}

static void t_splice(void **state)
{
	(void)state;
	int rc;
	char *o;
	const char *meta = "{\"versionId\":\"2\",\"lastUpdated\":\"2024-01-01T00:00:00.000Z\"}";
	o = splice("{\n  \"valueQuantity\": {\"value\": 1.50, \"unit\": \"mg\"},\n  \"id\": \"client\",\n"
		   "  \"resourceType\": \"Observation\",\n  \"meta\": {\"versionId\": \"9\", \"x\": 1.0},\n"
		   "  \"big\": 123456789012345678901234567890, \"e\": [1e2, -0.0, 1E-7],\n"
		   "  \"text\": \"\\u00e9\\ud83d\\ude00 \\\"q\\\"\", \"name\\u0020x\": 1\n}",
		   "srv-1", meta, &rc);
	/* an escaped top-level key: refused, the caller falls back to its tree */
	assert_null(o);
	assert_int_equal(rc, SALUS_EINVALID);
	o = splice("{\n  \"valueQuantity\": {\"value\": 1.50, \"unit\": \"mg\", \"k\\u0020\": 2},\n  \"id\": \"client\",\n"
		   "  \"resourceType\": \"Observation\",\n  \"meta\": {\"versionId\": \"9\", \"x\": 1.0},\n"
		   "  \"big\": 123456789012345678901234567890, \"e\": [1e2, -0.0, 1E-7],\n"
		   "  \"text\": \"\\u00e9\\ud83d\\ude00 \\\"q\\\"\"\n}",
		   "srv-1", meta, &rc);
	assert_int_equal(rc, 0);
	assert_string_equal(o, "{\"resourceType\":\"Observation\",\"id\":\"srv-1\",\"meta\":{\"versionId\":\"2\","
			       "\"lastUpdated\":\"2024-01-01T00:00:00.000Z\"},\"valueQuantity\":{\"value\":1.50,\"unit\":\"mg\","
			       "\"k\\u0020\":2},\"big\":123456789012345678901234567890,\"e\":[1e2,-0.0,1E-7],"
			       "\"text\":\"\\u00e9\\ud83d\\ude00 \\\"q\\\"\"}");
	free(o);
	/* no id: none written; the client's is still dropped */
	o = splice("{\"id\":\"x\",\"resourceType\":\"Patient\",\"active\":true}", NULL, "{}", &rc);
	assert_string_equal(o, "{\"resourceType\":\"Patient\",\"meta\":{},\"active\":true}");
	free(o);
	/* an id needing escapes is escaped (ids are validated before, but the splicer is safe) */
	o = splice("{\"resourceType\":\"Patient\"}", "a\"b", NULL, &rc);
	assert_string_equal(o, "{\"resourceType\":\"Patient\",\"id\":\"a\\\"b\"}");
	free(o);
	/* resourceType must be a string member of an object */
	assert_null(splice("{\"active\":true}", "x", "{}", &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	assert_null(splice("{\"resourceType\":7}", "x", "{}", &rc));
	assert_null(splice("[{\"resourceType\":\"Patient\"}]", "x", "{}", &rc));
	assert_null(splice("{\"resourceType\":\"Patient\",}", "x", "{}", &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	/* an escaped key that spells id or meta must never survive next to the server's */
	assert_null(splice("{\"resourceType\":\"Patient\",\"\\u0069d\":\"evil\"}", "x", "{}", &rc));
	assert_int_equal(rc, SALUS_EINVALID);
}

/* ---- the compact splice against the general one ---- */

static const char VID[] = "7", INSTANT[] = "2026-12-07T23:00:00.123Z";

/* What the writer wrote before salus_json_splice_compact: the tree's meta
 * stamped and dumped by jansson, spliced into the text by the general path. */
static char *splice_general(const char *txt, size_t n, const char *id)
{
	json_t *doc = json_loadb(txt, n, 0, NULL), *meta;
	char *m, *out;
	int rc;
	assert_non_null(doc);
	meta = json_object_get(doc, "meta");
	if (!json_is_object(meta))
		json_object_set_new(doc, "meta", meta = json_object());
	json_object_set_new(meta, "versionId", json_string(VID));
	json_object_set_new(meta, "lastUpdated", json_string(INSTANT));
	m = json_dumps(meta, JSON_COMPACT);
	json_decref(doc);
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_BODY);
	rc = salus_json_splice(&b, txt, n, id, m, strlen(m), NULL, NULL);
	out = rc ? NULL : slice_dup((struct salus_slice){b.p, b.n});
	salus_buf_release(&b);
	free(m);
	return out;
}

static char *splice_compact(const char *txt, size_t n, const char *id, int *rc)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_BODY);
	*rc = salus_json_splice_compact(&b, txt, n, id, VID, INSTANT);
	char *out = *rc ? NULL : slice_dup((struct salus_slice){b.p, b.n});
	salus_buf_release(&b);
	return out;
}

/* 1: spliced alike; 0: refused by the compact splice (the general path decides). */
static int compact_alike(const char *txt, size_t n, const char *what)
{
	int rc;
	char *c = splice_compact(txt, n, "srv-1", &rc), *g;
	if (rc == SALUS_EINVALID)
		return 0;
	assert_int_equal(rc, 0);
	g = splice_general(txt, n, "srv-1");
	assert_non_null(g);
	if (strcmp(c, g))
		fail_msg("%s: compact splice differs:\n%s\n%s", what, c, g);
	free(c);
	free(g);
	return 1;
}

static void t_splice_compact(void **state)
{
	(void)state;
	static const char *const alike[] = {
		"{\"resourceType\":\"Patient\",\"active\":true}",
		"{\"active\":true,\"id\":\"c\",\"resourceType\":\"Patient\",\"meta\":{}}",
		"{\"resourceType\":\"Patient\",\"id\":\"c\",\"meta\":{\"versionId\":\"9\",\"profile\":[\"p\"],"
		"\"lastUpdated\":\"x\"},\"active\":true}",
		"{\"resourceType\":\"Patient\",\"meta\":{\"lastUpdated\":\"x\",\"tag\":[{\"code\":\"a\"}]}}",
		"{\"resourceType\":\"Patient\",\"meta\":{\"tag\":[],\"versionId\":\"1\"},\"name\":[{\"given\":[\"A\\\"\"]}]}",
		"{\"meta\":{\"source\":\"s\"},\"resourceType\":\"Observation\",\"valueQuantity\":{\"value\":1.50},"
		"\"x\":[1e2,-0.0,{\"y\":\"}\"}]}",
	};
	for (size_t i = 0; i < sizeof alike / sizeof alike[0]; i++)
		assert_int_equal(compact_alike(alike[i], strlen(alike[i]), alike[i]), 1);
	int rc;
	char *o = splice_compact(alike[2], strlen(alike[2]), "srv-1", &rc);
	assert_string_equal(o, "{\"resourceType\":\"Patient\",\"id\":\"srv-1\",\"meta\":{\"versionId\":\"7\","
			       "\"profile\":[\"p\"],\"lastUpdated\":\"2026-12-07T23:00:00.123Z\"},\"active\":true}");
	free(o);
	/* refused, the general path decides: escaped keys (top level or meta), a meta
	 * that is not an object, no resourceType, not an object, too many members */
	static const char *const refused[] = {
		"{\"resourceType\":\"Patient\",\"\\u0069d\":\"evil\"}",
		"{\"resourceType\":\"Patient\",\"meta\":{\"version\\u0049d\":\"1\"}}",
		"{\"resourceType\":\"Patient\",\"meta\":5}",
		"{\"resourceType\":\"Patient\",\"meta\":[]}",
		"{\"active\":true}",
		"{\"resourceType\":7}",
		"[{\"resourceType\":\"Patient\"}]",
		"",
	};
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		assert_null(splice_compact(refused[i], strlen(refused[i]), "x", &rc));
		assert_int_equal(rc, SALUS_EINVALID);
	}
	char many[2048] = "{\"resourceType\":\"Patient\"";
	for (int k = 0; k < 64; k++)
		snprintf(many + strlen(many), sizeof many - strlen(many), ",\"m%d\":%d", k, k);
	strcat(many, "}");
	assert_null(splice_compact(many, strlen(many), "x", &rc));
	assert_int_equal(rc, SALUS_EINVALID);
	/* every prefix: reads stay in bounds (ASan), and nothing is half written */
	for (size_t cut = 0; cut < strlen(alike[2]); cut++) {
		o = splice_compact(alike[2], cut, "x", &rc);
		assert_true(rc != 0 || o);
		free(o);
	}
}

/* Every official example, minified as a Bundle entry's text is (salus_json_copy_checked). */
static void t_splice_compact_examples(void **state)
{
	(void)state;
	char dir[1024];
	DIR *d = examples_open(dir, sizeof dir);
	size_t seen = 0, same = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		FILE *f = fopen(path, "rb");
		assert_non_null(f);
		struct salus_buf raw, txt;
		salus_buf_init(&raw, SALUS_MAX_BODY);
		salus_buf_init(&txt, SALUS_MAX_BODY);
		char chunk[65536];
		size_t got;
		while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
			assert_int_equal(salus_buf_add(&raw, chunk, got), 0);
		fclose(f);
		json_t *doc = json_loadb(raw.p, raw.n, JSON_REJECT_DUPLICATES, NULL);
		if (doc && json_is_object(doc) && !salus_json_copy_checked(&txt, raw.p, raw.n, NULL, NULL)) {
			seen++;
			same += (size_t)compact_alike(txt.p, txt.n, de->d_name);
		}
		json_decref(doc);
		salus_buf_release(&raw);
		salus_buf_release(&txt);
	}
	closedir(d);
	print_message("compact splice: %zu of %zu examples spliced alike, the rest refused\n", same, seen);
	assert_true(seen > 2500);
	/* refusals are rare: resources with more than 64 top-level members or escaped keys */
	assert_true(same * 100 >= seen * 99);
}

/* ---- end to end: what is PUT is what is read ---- */

/* The splice copies the members of a raw text it has checked in runs between
 * whitespace (splice.c, copy_checked): byte for byte what the walker's
 * minifying copy writes, for strings holding whitespace, quotes, backslashes
 * and braces, for every kind of value, and past the 64 members the first pass
 * remembers (the second pass then walks the text again). */
static void t_splice_runs(void **state)
{
	(void)state;
	static const char *const vals[] = {
		"\"a b\\t c\"", "\"q\\\"  {x} \\\\\"", "\"\\\\\"", "[ 1 , 2.50 ,\n -0.0e+3 ]", "{ \"k\" : { \"l\" : [ ] } }",
		"true", "null", "\" \"", "[\"\\\\\\\" ]\", { \"a\" :\"}\"} ]", "\"\\u00e9 \\n\"", "12345678901234567890",
	};
	size_t nv = sizeof vals / sizeof vals[0];
	for (size_t members = 1; members <= 80; members += 79) {
		struct salus_buf raw, want;
		salus_buf_init(&raw, 1u << 20);
		salus_buf_init(&want, 1u << 20);
		assert_int_equal(salus_buf_adds(&raw, " {\n \"resourceType\" : \"Basic\" , \"id\" : \"old\" "), 0);
		assert_int_equal(salus_buf_adds(&want, "{\"resourceType\":\"Basic\",\"id\":\"n1\",\"meta\":{\"v\":1}"), 0);
		for (size_t i = 0; i < members; i++) {
			const char *v = vals[i % nv];
			assert_int_equal(salus_buf_addf(&raw, ",\n\t\"m%zu\" :  %s ", i, v), 0);
			assert_int_equal(salus_buf_addf(&want, ",\"m%zu\":", i), 0);
			assert_int_equal(salus_json_copy(&want, v, strlen(v), NULL, NULL), 0);
		}
		assert_int_equal(salus_buf_adds(&raw, "}\n"), 0);
		assert_int_equal(salus_buf_addc(&want, '}'), 0);
		int rc;
		char *o = splice(raw.p, "n1", "{\"v\":1}", &rc);
		assert_int_equal(rc, 0);
		assert_string_equal(o, want.p);
		free(o);
		salus_buf_release(&raw);
		salus_buf_release(&want);
	}
}

static const char *mark_refs(void *ctx, struct salus_slice key, struct salus_slice str)
{
	(void)ctx;
	if (salus_slice_eq(key, "reference") && str.n && str.p[0] == 'u')
		return "Patient/\"x\"\\\n";
	if (salus_slice_eq(key, "given") && str.n == 2 && !memcmp(str.p, "\xc3\xa9", 2))
		return "E";
	return NULL;
}

/* The checked copy (text a strict parser accepted): byte for byte the
 * walker's copy, with the same strings given to the callback under the same
 * keys (array elements: the key of the array's member), whitespace anywhere
 * between tokens and inside strings; a lone surrogate given to the callback
 * is refused as by the walker. */
static void t_copy_checked(void **state)
{
	(void)state;
	static const char *const docs[] = {
		("{\"resourceType\":\"Observation\",\"subject\":{\"reference\":\"urn:uuid:1\"},\"x\":[\"urn:a\",{\"reference\""
		 ":[\"urn:b\",\"Patient/2\"]}]}"),
		" {\n \"a\" : [ 1 , 2.50 ,\n -0.0e+3 , true , null ] ,\t\"reference\" : \"urn:top\" ,\n\"s\":\" :, {[ \\\" \\\\\" } \n",
		"{\"name\":[{\"given\":[\"\\u00e9\",\"\\u00e9x\"],\"family\":\"\\\"reference\\\"\"}],\"reference\":\"u\\n\"}",
		"[\"urn:x\",{\"reference\":\"urn:y\"},[[{\"k\":{\"reference\":\"urn:z\"}}]]]",
		"\"urn:plain\"",
		"{}",
		"{\"reference\":\"\\ud800x\"}",
	};
	for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
		struct salus_buf a, b;
		salus_buf_init(&a, 1u << 16);
		salus_buf_init(&b, 1u << 16);
		int ra = salus_json_copy(&a, docs[d], strlen(docs[d]), mark_refs, NULL);
		int rb = salus_json_copy_checked(&b, docs[d], strlen(docs[d]), mark_refs, NULL);
		assert_int_equal(rb, ra);
		if (!ra) {
			assert_int_equal(a.n, b.n);
			assert_memory_equal(a.p, b.p, a.n);
		}
		salus_buf_release(&a);
		salus_buf_release(&b);
	}
	/* a replacement is escaped: it reads back as given */
	struct salus_buf r;
	salus_buf_init(&r, 1u << 16);
	assert_int_equal(salus_json_copy_checked(&r, S("{\"subject\":{\"reference\":\"urn:1\"}}"), mark_refs, NULL), 0);
	json_t *j = json_loadb(r.p, r.n, 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "subject"), "reference")),
			    "Patient/\"x\"\\\n");
	json_decref(j);
	salus_buf_release(&r);
	/* the lone surrogate of the last document is refused */
	struct salus_buf b;
	salus_buf_init(&b, 1u << 16);
	assert_int_equal(salus_json_copy_checked(&b, S("{\"reference\":\"\\ud800x\"}"), mark_refs, NULL), SALUS_EINVALID);
	salus_buf_release(&b);
	/* truncations: no read past the end (ASan), an error or some output */
	const char *doc = docs[0];
	for (size_t l = 0; l < strlen(doc); l++) {
		char *t = malloc(l ? l : 1);
		memcpy(t, doc, l);
		salus_buf_init(&b, 1u << 16);
		(void)salus_json_copy_checked(&b, t, l, mark_refs, NULL);
		salus_buf_release(&b);
		free(t);
	}
}

static void t_store_roundtrip(void **state)
{
	(void)state;
	char path[128];
	struct salus_store *st;
	snprintf(path, sizeof path, "/tmp/salus-test-splice-%d.db", (int)getpid());
	unlink(path);
	struct salus_store_opts o = {.create = true, .readers = 2};
	assert_int_equal(salus_store_open(path, &o, &st), 0);
	const char *body = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":\"\\u00e9\\ud83d\\ude00\"},"
			   "\"valueQuantity\":{\"value\":1.50},\"component\":[{\"code\":{\"text\":\"a\"},\"valueQuantity\":{\"value\":1e2}},"
			   "{\"code\":{\"text\":\"b\"},\"valueInteger\":2147483647},{\"code\":{\"text\":\"c\"},\"valueQuantity\":{\"value\":"
			   "12345678901234567890.000}}],\"meta\":{\"profile\":[\"http://x/p\"]}}";
	struct salus_fhir_req rq = {.op = SALUS_FHIR_UPDATE, .base = "https://x/fhir", .body = body, .body_len = strlen(body),
				    .content_type = "application/fhir+json"};
	snprintf(rq.type, sizeof rq.type, "Observation");
	snprintf(rq.id, sizeof rq.id, "o1");
	struct salus_fhir_resp rs;
	salus_fhir_resp_init(&rs);
	assert_int_equal(salus_fhir_handle(st, &rq, &rs), 201);
	salus_fhir_resp_release(&rs);
	struct salus_resource r;
	assert_int_equal(salus_store_read(st, "Observation", "o1", 0, &r), 0);
	assert_non_null(strstr(r.json, "\"value\":1.50}"));
	assert_non_null(strstr(r.json, "\"value\":1e2}"));
	assert_non_null(strstr(r.json, "\"value\":12345678901234567890.000}"));
	assert_non_null(strstr(r.json, "\"text\":\"\\u00e9\\ud83d\\ude00\""));
	assert_non_null(strstr(r.json, "\"profile\":[\"http://x/p\"]")); /* client meta kept */
	assert_non_null(strstr(r.json, "\"versionId\":\"1\""));
	const char *head = "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"meta\":{";
	assert_int_equal(strncmp(r.json, head, strlen(head)), 0);
	salus_resource_release(&r);
	/* an escaped top-level key: stored from the tree (the numbers then lose their spelling) */
	body = "{\"resourceType\":\"Observation\",\"id\":\"o2\",\"st\\u0061tus\":\"final\",\"code\":{\"text\":\"x\"}}";
	rq.body = body;
	rq.body_len = strlen(body);
	snprintf(rq.id, sizeof rq.id, "o2");
	salus_fhir_resp_init(&rs);
	assert_int_equal(salus_fhir_handle(st, &rq, &rs), 201);
	salus_fhir_resp_release(&rs);
	assert_int_equal(salus_store_read(st, "Observation", "o2", 0, &r), 0);
	assert_non_null(strstr(r.json, "\"status\":\"final\""));
	salus_resource_release(&r);
	salus_store_free(st);
	char p2[160];
	unlink(path);
	snprintf(p2, sizeof p2, "%s-wal", path);
	unlink(p2);
	snprintf(p2, sizeof p2, "%s-shm", path);
	unlink(p2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_iter),   cmocka_unit_test(t_iter_checked), cmocka_unit_test(t_member),         cmocka_unit_test(t_copy),
		cmocka_unit_test(t_splice), cmocka_unit_test(t_splice_runs), cmocka_unit_test(t_copy_checked), cmocka_unit_test(t_store_roundtrip),
		cmocka_unit_test(t_splice_compact), cmocka_unit_test(t_splice_compact_examples),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
