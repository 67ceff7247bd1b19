/* fhir_json.c — libFuzzer target: strict JSON parsing of FHIR request bodies
 * (salus_json_parse_strict) and the JSON string writer on what it accepts;
 * and its fast path (salus_json_parse_fast) against jansson: it never accepts
 * what json_loadb(JSON_REJECT_DUPLICATES) refuses, and what it accepts is the
 * same tree (types, member order, string bytes, bit-identical reals); and
 * the marks of salus_json_parse_strict_marks (each Bundle entry's resource
 * text) are what the checked iterator of store/splice.h finds. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "fhir/json_out.h"
#include "fhir/rest.h"
#include "store/splice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int same(json_t *a, json_t *b)
{
	if (json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return 0;
		void *ia = json_object_iter(a), *ib = json_object_iter(b);
		for (; ia && ib; ia = json_object_iter_next(a, ia), ib = json_object_iter_next(b, ib))
			if (strcmp(json_object_iter_key(ia), json_object_iter_key(ib)) ||
			    !same(json_object_iter_value(ia), json_object_iter_value(ib)))
				return 0;
		return !ia && !ib;
	}
	case JSON_ARRAY:
		if (json_array_size(a) != json_array_size(b))
			return 0;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
	case JSON_INTEGER: return json_integer_value(a) == json_integer_value(b);
	case JSON_REAL: {
		double x = json_real_value(a), y = json_real_value(b);
		return !memcmp(&x, &y, sizeof x);
	}
	default: return 1;
	}
}

/* The marks against the checked iterator (as test_json does). */
static void check_marks(const char *p, size_t n)
{
	char why[200];
	json_t *j = NULL;
	struct salus_json_marks m = {.outer = "entry", .inner = "resource"};
	if (salus_json_parse_strict_marks(p, n, &j, why, sizeof why, &m)) {
		salus_free(m.at);
		return;
	}
	if (m.ok) {
		struct salus_slice all, k, v, r;
		struct salus_json_iter it;
		size_t i = 0;
		if (salus_json_member_checked(p, n, "entry", &all) == 1 && *all.p == '[' &&
		    !salus_json_iter_init_checked(&it, all.p, all.n)) {
			for (; salus_json_iter_next(&it, &k, &v) == 1; i++) {
				if (i >= m.n)
					abort();
				bool has = *v.p == '{' && salus_json_member_checked(v.p, v.n, "resource", &r) == 1;
				if (has ? m.at[i].p != r.p || m.at[i].n != r.n : m.at[i].p != NULL)
					abort();
			}
		}
		if (i != m.n || m.n != json_array_size(json_object_get(j, "entry")))
			abort();
	}
	salus_free(m.at);
	json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[200];
	json_t *j = NULL;
	json_t *ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	json_t *fast = salus_json_parse_fast((const char *)data, size);
	if (fast && (!ref || !same(ref, fast)))
		abort();
	json_decref(ref);
	json_decref(fast);
	check_marks((const char *)data, size);
	if (salus_json_parse_strict((const char *)data, size, &j, why, sizeof why) == 0) {
		json_t *rt = json_object_get(j, "resourceType");
		if (json_is_string(rt)) {
			struct salus_buf b;
			salus_buf_init(&b, 1 << 20);
			salus_json_add_str(&b, json_string_value(rt), json_string_length(rt));
			salus_buf_release(&b);
		}
		json_decref(j);
	}
	return 0;
}
