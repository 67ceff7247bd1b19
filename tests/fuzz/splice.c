/* splice.c — libFuzzer target: the raw-JSON scanner, minifying copy and
 * id/meta splice of the write path (store/splice.h) on arbitrary bytes.
 * Checks: no read past the input, no crash or leak; whatever the copier
 * accepts is accepted again unchanged (it is already minified); when jansson
 * also accepts the input, the copy and the splice parse as JSON and the
 * splice carries the given id and meta and every other member; the checked
 * iterator keeps its slices inside the input on any bytes and, on text
 * jansson accepts, yields exactly the members the checking iterator does; the
 * checked copy writes, on such text, exactly what the walker's copy writes;
 * the compact splice stays inside the input on any bytes and, on the checked
 * copy of an object jansson accepts, writes the same members with the server's
 * id and versionId/lastUpdated merged into the text's own meta. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "store/splice.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *upper_refs(void *ctx, struct salus_slice key, struct salus_slice str)
{
	(void)ctx;
	if (salus_slice_eq(key, "reference") && str.n && str.p[0] == 'u')
		return "Patient/x\"\\\n";
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	struct salus_json_iter it;
	struct salus_slice k, v;
	struct salus_buf out, again, sp;
	if (size > 1 << 16)
		return 0;
	/* the iterator: slices stay inside the input */
	if (!salus_json_iter_init(&it, p, size)) {
		int rc, guard = 0;
		while ((rc = salus_json_iter_next(&it, &k, &v)) == 1 && guard++ < 100000) {
			if (v.p < p || v.p + v.n > p + size || (k.p && (k.p < p || k.p + k.n > p + size)))
				__builtin_trap();
		}
	}
	(void)salus_json_member(p, size, "resourceType", &v);
	/* the checked iterator: slices inside the input on any bytes */
	if (!salus_json_iter_init_checked(&it, p, size)) {
		int rc, guard = 0;
		while ((rc = salus_json_iter_next(&it, &k, &v)) == 1 && guard++ < 100000) {
			if (v.p < p || v.p + v.n > p + size || (k.p && (k.p < p || k.p + k.n > p + size)))
				__builtin_trap();
		}
	}

	json_t *j = json_loadb(p, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	salus_buf_init(&out, 1 << 20);
	salus_buf_init(&again, 1 << 20);
	salus_buf_init(&sp, 1 << 20);
	int rc = salus_json_copy(&out, p, size, NULL, NULL);
	if (!rc) {
		if (salus_json_copy(&again, out.p, out.n, NULL, NULL) || again.n != out.n ||
		    memcmp(again.p, out.p, out.n))
			__builtin_trap();
	}
	if (j && (json_is_object(j) || json_is_array(j))) {
		/* on text jansson accepts, the checked iterator yields what the checking one does */
		struct salus_json_iter a, b;
		struct salus_slice ka, va, kb, vb;
		int ra = salus_json_iter_init(&a, p, size), rb = salus_json_iter_init_checked(&b, p, size);
		while (!ra && !rb) {
			ra = salus_json_iter_next(&a, &ka, &va);
			rb = salus_json_iter_next(&b, &kb, &vb);
			if (ra < 0)
				break; /* the checking iterator also bounds the nesting depth */
			if (ra != rb || (ra == 1 && (va.p != vb.p || va.n != vb.n || ka.p != kb.p || ka.n != kb.n)))
				__builtin_trap();
			if (ra != 1)
				break;
			ra = rb = 0;
		}
	}
	if (j && !rc) {
		json_t *c = json_loadb(out.p, out.n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (!c || !json_equal(c, j))
			__builtin_trap();
		json_decref(c);
	}
	salus_buf_reset(&out);
	rc = salus_json_copy(&out, p, size, upper_refs, NULL);
	if (j && !rc) {
		/* on text jansson accepts, the checked copy writes what the walker's does */
		salus_buf_reset(&again);
		if (salus_json_copy_checked(&again, p, size, upper_refs, NULL) || again.n != out.n ||
		    memcmp(again.p, out.p, out.n))
			__builtin_trap();
	}
	salus_buf_reset(&again);
	(void)salus_json_copy_checked(&again, p, size, upper_refs, NULL); /* any bytes: no read past the end */
	static const char meta[] = "{\"versionId\":\"1\"}";
	rc = salus_json_splice(&sp, p, size, "id-1", meta, sizeof meta - 1, upper_refs, NULL);
	if (!rc && j && json_is_object(j)) {
		json_t *s = json_loadb(sp.p, sp.n, JSON_ALLOW_NUL, NULL);
		if (!s || strcmp(json_string_value(json_object_get(s, "id")), "id-1") ||
		    !json_equal(json_object_get(s, "resourceType"), json_object_get(j, "resourceType")))
			__builtin_trap();
		const char *key;
		json_t *x;
		json_object_foreach(j, key, x)
			if (strcmp(key, "id") && strcmp(key, "meta") && !json_object_get(s, key))
				__builtin_trap();
		json_decref(s);
	}
	salus_buf_reset(&sp);
	(void)salus_json_splice_compact(&sp, p, size, "id-1", "2", "2026-01-01T00:00:00.000Z"); /* any bytes */
	salus_buf_reset(&again);
	salus_buf_reset(&sp);
	if (j && json_is_object(j) && !salus_json_copy_checked(&again, p, size, NULL, NULL) &&
	    !salus_json_splice_compact(&sp, again.p, again.n, "id-1", "2", "2026-01-01T00:00:00.000Z")) {
		json_t *s = json_loadb(sp.p, sp.n, JSON_ALLOW_NUL, NULL), *sm = json_object_get(s, "meta");
		json_t *jm = json_object_get(j, "meta");
		if (!s || strcmp(json_string_value(json_object_get(s, "id")), "id-1") ||
		    strcmp(json_string_value(json_object_get(sm, "versionId")), "2") ||
		    strcmp(json_string_value(json_object_get(sm, "lastUpdated")), "2026-01-01T00:00:00.000Z") ||
		    json_object_size(s) != json_object_size(j) + !json_object_get(j, "id") + !jm)
			__builtin_trap();
		const char *key;
		json_t *x;
		json_object_foreach(j, key, x)
			if (strcmp(key, "id") && strcmp(key, "meta") && !json_equal(json_object_get(s, key), x))
				__builtin_trap();
		json_object_foreach(jm, key, x)
			if (strcmp(key, "versionId") && strcmp(key, "lastUpdated") && !json_equal(json_object_get(sm, key), x))
				__builtin_trap();
		json_decref(s);
	}
	salus_buf_release(&out);
	salus_buf_release(&again);
	salus_buf_release(&sp);
	json_decref(j);
	return 0;
}
