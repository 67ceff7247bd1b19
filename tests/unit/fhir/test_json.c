/*
 * test_json.c — the strict JSON parser's fast path (src/fhir/json.c,
 * salus_json_parse_fast) against jansson's json_loadb(JSON_REJECT_DUPLICATES):
 *   - hand-picked documents (escapes, surrogates, UTF-8 edges, numbers at
 *     and past the 64-bit range, duplicates, trailing bytes): the same tree,
 *     or the fast path declines — it never accepts what jansson refuses;
 *   - every official R4 example (npm hl7.fhir.r4.examples@4.0.1) read as
 *     bytes: the same tree, none declined;
 *   - every one-byte truncation and a set of one-byte substitutions of a
 *     FHIR document: the same verdict, and the same tree when accepted;
 *   - salus_json_parse_strict keeps jansson's answers (errors, integers
 *     beyond 64 bits read as reals);
 *   - the marks of salus_json_parse_strict_marks (each Bundle entry's resource
 *     text) equal what the checked iterator of store/splice.h finds;
 *   - allocation failure at every point: NULL without leaking.
 * "The same tree": same types (integer vs real), same member order, same
 * string bytes, bit-identical reals.
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
#include "fhir/rest.h"
#include "store/splice.h"

static bool same(json_t *a, json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		void *ia = json_object_iter(a), *ib = json_object_iter(b);
		for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
			if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) ||
			    !same(json_object_iter_value(ia), json_object_iter_value(ib)))
				return false;
		return !ia && !ib;
	}
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	case JSON_INTEGER: return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);
		return !memcmp(&x, &y, sizeof x);
	}
	default: return true;
	}
}

/* 1: same tree, 0: fast declined what jansson accepts, -1: both refuse;
 * fails the test when fast accepts what jansson refuses or trees differ. */
static int compare(const char *p, size_t n, const char *what)
{
	json_t *x = json_loadb(p, n, JSON_REJECT_DUPLICATES, NULL);
	json_t *y = salus_json_parse_fast(p, n);
	int r = x && y ? 1 : x ? 0 : -1;
	if (y && !x)
		fail_msg("fast path accepts what jansson refuses: %s", what);
	if (x && y && !same(x, y))
		fail_msg("trees differ: %s", what);
	json_decref(x);
	json_decref(y);
	return r;
}

static void test_cases(void **state)
{
	(void)state;
	static const struct {
		const char *doc;
		int want; /* as compare() */
	} cases[] = {
		{"{}", 1},
		{"[]", 1},
		{" \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , 3.5 , -0.0 , 1e3 , 1E+3 , 1e-3 , 2.50 ] } \n", 1},
		{"{\"a\":9223372036854775807,\"b\":-9223372036854775808}", 1},
		{"{\"a\":9223372036854775808}", -1},   /* jansson: numeric overflow */
		{"{\"a\":-9223372036854775809}", -1},
		{"{\"a\":1e400}", -1},                 /* real overflow */
		{"{\"a\":1e-400}", 1},                 /* underflow is a value */
		{"{\"a\":0.1000000000000000055511151231257827021181583404541015625}", 1},
		{"{\"a\":01}", -1},
		{"{\"a\":1.}", -1},
		{"{\"a\":.5}", -1},
		{"{\"a\":1e}", -1},
		{"{\"a\":+1}", -1},
		{"{\"a\":-}", -1},
		{"{\"a\":1a}", -1},
		{"{\"a\":true,\"b\":false,\"c\":null}", 1},
		{"{\"a\":tru}", -1},
		{"{\"a\":nulll}", -1},
		{"{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", 1},
		{"{\"a\":\"\\u00e9\\u20AC\\ud83d\\ude00x\"}", 1},
		{"{\"\\u00e9k\":\"v\",\"k\\n\":1}", 1}, /* escaped keys */
		{"{\"a\":\"\\ud83d\"}", -1},            /* lone high surrogate */
		{"{\"a\":\"\\ude00\"}", -1},            /* lone low surrogate */
		{"{\"a\":\"\\ud83d\\u0041\"}", -1},
		{"{\"a\":\"\\u0000\"}", -1},            /* NUL needs JSON_ALLOW_NUL */
		{"{\"a\":\"\\x\"}", -1},
		{"{\"a\":\"\\u12\"}", -1},
		{"{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}", 1},
		{"{\"a\":\"\xc0\xaf\"}", -1},           /* overlong */
		{"{\"a\":\"\xe0\x80\xaf\"}", -1},
		{"{\"a\":\"\xed\xa0\x80\"}", -1},       /* an encoded surrogate */
		{"{\"a\":\"\xf4\x90\x80\x80\"}", -1},   /* beyond U+10FFFF */
		{"{\"a\":\"\xe2\x82\"}", -1},           /* truncated sequence */
		{"{\"a\":\"\x80\"}", -1},
		{"{\"a\":\"tab\there\"}", -1},          /* a raw control character */
		{"{\"a\":1,\"a\":2}", -1},              /* duplicate key */
		{"{\"a\":{\"b\":1,\"b\":1}}", -1},
		{"{\"a\":1,}", -1},
		{"[1,]", -1},
		{"{\"a\" 1}", -1},
		{"{a:1}", -1},
		{"{\"a\":1}x", -1},
		{"{\"a\":1}{}", -1},
		{"{\"a\":1", -1},
		{"\"a\"", -1},                          /* not an object or array */
		{"1", -1},
		{"", -1},
		{"\xef\xbb\xbf{}", -1},                 /* a byte-order mark */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		int r = compare(cases[i].doc, strlen(cases[i].doc), cases[i].doc);
		if (r != cases[i].want)
			fail_msg("case %zu (%s): %d, want %d", i, cases[i].doc, r, cases[i].want);
	}
	/* a raw NUL byte inside a string and outside one */
	assert_int_equal(compare("{\"a\":\"x\0y\"}", 11, "NUL in a string"), -1);
	assert_int_equal(compare("{\"a\":1}\0", 8, "NUL after"), -1);
	/* a long escaped key declines; jansson takes it */
	char doc[700];
	int k = snprintf(doc, sizeof doc, "{\"\\n");
	for (int i = 0; i < 300; i++)
		doc[k++] = 'k';
	k += snprintf(doc + k, sizeof doc - (size_t)k, "\":1}");
	assert_int_equal(compare(doc, (size_t)k, "long escaped key"), 0);
}

/* salus_json_parse_strict: what the fast path declines is decided by jansson. */
static void test_strict(void **state)
{
	(void)state;
	char why[200];
	json_t *j = NULL;
	const char *big = "{\"a\":123456789012345678901234567890,\"b\":1}";
	assert_int_equal(salus_json_parse_strict(big, strlen(big), &j, why, sizeof why), 0);
	assert_true(json_is_real(json_object_get(j, "a")));
	assert_true(json_is_real(json_object_get(j, "b"))); /* the whole document as reals, as before */
	json_decref(j);
	const char *dup = "{\"a\":1,\"a\":2}";
	assert_int_equal(salus_json_parse_strict(dup, strlen(dup), &j, why, sizeof why), SALUS_EINVALID);
	assert_non_null(strstr(why, "duplicate key"));
	const char *bad = "{\"a\":\"\xc0\xaf\"}";
	assert_int_equal(salus_json_parse_strict(bad, strlen(bad), &j, why, sizeof why), SALUS_EINVALID);
	assert_non_null(strstr(why, "UTF-8"));
	assert_int_equal(salus_json_parse_strict("[1]", 3, &j, why, sizeof why), SALUS_EINVALID);
	assert_non_null(strstr(why, "JSON object"));
	const char *ok = "{\"resourceType\":\"Patient\",\"x\":[1,2.5,\"\\u00e9\"]}";
	assert_int_equal(salus_json_parse_strict(ok, strlen(ok), &j, why, sizeof why), 0);
	assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "x"), 0)), 1);
	json_decref(j);
}

static char *read_all(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	rewind(f);
	char *b = malloc((size_t)len + 1);
	if (b && fread(b, 1, (size_t)len, f) != (size_t)len) {
		free(b);
		b = NULL;
	}
	fclose(f);
	*n = (size_t)len;
	return b;
}

static void test_official_examples(void **state)
{
	(void)state;
	char dir[1024];
	DIR *d = examples_open(dir, sizeof dir);
	size_t seen = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), n = 0;
		if (l < 6 || strcmp(de->d_name + l - 5, ".json"))
			continue;
		char path[1400];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		char *b = read_all(path, &n);
		assert_non_null(b);
		if (compare(b, n, de->d_name) != 1)
			fail_msg("%s: not parsed alike", de->d_name);
		free(b);
		seen++;
	}
	closedir(d);
	assert_true(seen > 2500);
}

/* Truncations and one-byte substitutions of a document with every kind of value. */
static void test_mutations(void **state)
{
	(void)state;
	static const char doc[] =
		"{\"resourceType\":\"Observation\",\"id\":\"o-1\",\"status\":\"final\",\"code\":{\"coding\":[{\"system\":"
		"\"http://loinc.org\",\"code\":\"8867-4\",\"display\":\"Heart rate \\u00e9\\n\"}]},\"valueQuantity\":{"
		"\"value\":72.50,\"unit\":\"/min\",\"code\":\"/min\"},\"component\":[{\"valueInteger\":-12},{\"valueBoolean\""
		":true},{\"valueString\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \\ud83d\\ude00\"},{\"x\":null,\"y\":1e-2,\"z\":[]}]}";
	static const char subs[] = {'"', '\\', '{', '}', '[', ']', ',', ':', '0', '9', '-', '.', 'e', ' ', 'u', '\x80', '\xc3', 0};
	size_t n = sizeof doc - 1;
	char m[sizeof doc];
	assert_int_equal(compare(doc, n, "the document"), 1);
	for (size_t cut = 0; cut < n; cut++)
		compare(doc, cut, "a truncation");
	for (size_t i = 0; i < n; i++)
		for (size_t s = 0; s < sizeof subs; s++) {
			memcpy(m, doc, n);
			m[i] = subs[s];
			compare(m, n, "a substitution");
			/* and the byte deleted */
			memcpy(m, doc, i);
			memcpy(m + i, doc + i + 1, n - i - 1);
			compare(m, n - 1, "a deletion");
		}
}

/* Marks against the checked iterator, which bundle.c used before (and still
 * uses when the slow path parsed the body). */
static void check_marks(const char *p, size_t n, const char *what)
{
	char why[200];
	json_t *j = NULL;
	struct salus_json_marks m = {.outer = "entry", .inner = "resource"};
	assert_int_equal(salus_json_parse_strict_marks(p, n, &j, why, sizeof why, &m), 0);
	assert_true(m.ok);
	json_t *entries = json_object_get(j, "entry");
	assert_int_equal(m.n, json_array_size(entries));
	struct salus_slice all, k, v, r;
	struct salus_json_iter it;
	size_t i = 0;
	if (salus_json_member_checked(p, n, "entry", &all) == 1 && *all.p == '[' &&
	    !salus_json_iter_init_checked(&it, all.p, all.n)) {
		for (; salus_json_iter_next(&it, &k, &v) == 1; i++) {
			assert_true(i < m.n);
			bool has = *v.p == '{' && salus_json_member_checked(v.p, v.n, "resource", &r) == 1;
			if (!has) {
				if (m.at[i].p)
					fail_msg("%s: entry %zu marked, has no resource", what, i);
				continue;
			}
			if (!m.at[i].p || m.at[i].p != r.p || m.at[i].n != r.n)
				fail_msg("%s: entry %zu: marks differ", what, i);
		}
	}
	assert_int_equal(i, m.n);
	salus_free(m.at);
	json_decref(j);
}

static void test_marks(void **state)
{
	(void)state;
	static const char *docs[] = {
		"{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[]}",
		"{\"entry\" : [ { \"resource\" : {\"a\":1} , \"request\":{}} ,\n {\"request\":{}},"
		" {\"fullUrl\":\"x\",\"resource\":{\"entry\":[{\"resource\":{}}],\"b\":[1]}}, 3, [], "
		"{\"resource\":\"text\"}, {\"resource\" :\t[1,{\"resource\":2}] } ] ,\"type\":\"batch\"}",
		"{\"x\":{\"entry\":[{\"resource\":{}}]},\"entry\":[{\"resource\":{\"k\\n\":\"\\u00e9\"}}]}",
		"{\"entry\":{\"resource\":{}}}",
	};
	for (size_t d = 0; d < sizeof docs / sizeof *docs; d++)
		check_marks(docs[d], strlen(docs[d]), docs[d]);
	/* more elements than the first allocation holds */
	char big[20000];
	size_t n = (size_t)snprintf(big, sizeof big, "{\"entry\":[");
	for (int i = 0; i < 300; i++)
		n += (size_t)snprintf(big + n, sizeof big - n, "%s{\"resource\":{\"i\":%d}}", i ? "," : "", i);
	n += (size_t)snprintf(big + n, sizeof big - n, "]}");
	check_marks(big, n, "300 entries");
	/* the Synthea bundles, when unpacked (bench/ingest.sh does: /tmp/syn) */
	const char *syn = getenv("SALUS_SYNTHEA_DIR");
	DIR *dir = opendir(syn ? syn : "/tmp/syn");
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir))) {
			char path[1400];
			size_t len;
			if (!strstr(de->d_name, ".json"))
				continue;
			snprintf(path, sizeof path, "%s/%s", syn ? syn : "/tmp/syn", de->d_name);
			char *b = read_all(path, &len);
			if (b)
				check_marks(b, len, de->d_name);
			free(b);
		}
		closedir(dir);
	}
	/* a body the fast path declines (an integer beyond 64 bits): no marks, still parsed */
	const char *slow = "{\"entry\":[{\"resource\":{\"v\":123456789012345678901234567890}}]}";
	char why[200];
	json_t *j = NULL;
	struct salus_json_marks m = {.outer = "entry", .inner = "resource"};
	assert_int_equal(salus_json_parse_strict_marks(slow, strlen(slow), &j, why, sizeof why, &m), 0);
	assert_false(m.ok);
	assert_int_equal(m.n, 0);
	salus_free(m.at);
	json_decref(j);
}

static void test_alloc_failure(void **state)
{
	(void)state;
	static const char doc[] = "{\"a\":[1,2.5,\"x\\ny\",{\"b\":true,\"\\u00e9\":null}],\"c\":\"d\"}";
	salus_alloc_fail_at(0, 0);
	json_t *j = salus_json_parse_fast(doc, sizeof doc - 1);
	assert_non_null(j);
	json_decref(j);
	for (unsigned long k = 1;; k++) {
		salus_alloc_fail_at(k, 1);
		j = salus_json_parse_fast(doc, sizeof doc - 1);
		salus_alloc_fail_at(0, 0);
		if (j) {
			json_decref(j);
			assert_true(k > 5);
			break;
		}
	}
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cases),
		cmocka_unit_test(test_strict),
		cmocka_unit_test(test_official_examples),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_alloc_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
