/*
 * patch.c — RFC 6902 JSON Patch over jansson (see patch.h).  Pointers are
 * split into decoded tokens once per op; containers are walked with
 * borrowed references, values inserted with json_*_set (which take a
 * reference of their own).
 */
#include "fhir/patch.h"

#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"

#define MAX_TOKENS (SALUS_MAX_JSON_DEPTH + 1)

struct ptr {
	char *tok[MAX_TOKENS];
	size_t n;
};

static void ptr_release(struct ptr *p)
{
	for (size_t i = 0; i < p->n; i++)
		salus_free(p->tok[i]);
	p->n = 0;
}

/* Split and unescape a JSON Pointer.  SALUS_EINVALID for bad syntax. */
static int ptr_parse(const char *s, struct ptr *p)
{
	p->n = 0;
	if (!*s)
		return 0;
	if (*s != '/')
		return SALUS_EINVALID;
	while (*s == '/') {
		const char *e = strchr(s + 1, '/');
		size_t len = e ? (size_t)(e - s - 1) : strlen(s + 1);
		if (p->n == MAX_TOKENS)
			return SALUS_EINVALID;
		char *t = salus_malloc(len + 1), *w = t;
		if (!t)
			return SALUS_ENOMEM;
		p->tok[p->n++] = t;
		for (size_t i = 1; i <= len; i++) {
			char c = s[i];
			if (c == '~') {
				if (i == len || (s[i + 1] != '0' && s[i + 1] != '1'))
					return SALUS_EINVALID;
				*w++ = s[i + 1] == '0' ? '~' : '/';
				i++;
			} else {
				*w++ = c;
			}
		}
		*w = 0;
		s += len + 1;
	}
	return 0;
}

/* An array index token: "0" or [1-9][0-9]*, below 2^31. */
static int index_of(const char *t, size_t *out)
{
	size_t v = 0, n = strlen(t);
	if (n == 0 || n > 10 || (n > 1 && t[0] == '0'))
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return SALUS_EINVALID;
		v = v * 10 + (size_t)(t[i] - '0');
	}
	if (v > 0x7fffffff)
		return SALUS_EINVALID;
	*out = v;
	return 0;
}

/* The value at tokens [0, n) of p, or NULL. */
static json_t *walk(json_t *doc, const struct ptr *p, size_t n)
{
	json_t *cur = doc;
	for (size_t i = 0; i < n && cur; i++) {
		if (json_is_object(cur)) {
			cur = json_object_get(cur, p->tok[i]);
		} else if (json_is_array(cur)) {
			size_t k;
			cur = index_of(p->tok[i], &k) ? NULL : json_array_get(cur, k);
		} else {
			cur = NULL;
		}
	}
	return cur;
}

static int do_add(json_t *doc, const struct ptr *p, json_t *val, const char **why)
{
	json_t *parent = walk(doc, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	if (json_is_object(parent))
		return json_object_set(parent, last, val) ? SALUS_ENOMEM : 0;
	if (json_is_array(parent)) {
		size_t k;
		if (!strcmp(last, "-"))
			return json_array_append(parent, val) ? SALUS_ENOMEM : 0;
		if (index_of(last, &k) || k > json_array_size(parent)) {
			*why = "array index out of range";
			return SALUS_EUNPROCESSABLE;
		}
		return json_array_insert(parent, k, val) ? SALUS_ENOMEM : 0;
	}
	*why = "the parent of the target path does not exist";
	return SALUS_EUNPROCESSABLE;
}

static int do_remove(json_t *doc, const struct ptr *p, const char **why)
{
	json_t *parent = walk(doc, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	if (json_is_object(parent) && json_object_get(parent, last))
		return json_object_del(parent, last) ? SALUS_EINTERNAL : 0;
	size_t k;
	if (json_is_array(parent) && !index_of(last, &k) && k < json_array_size(parent))
		return json_array_remove(parent, k) ? SALUS_EINTERNAL : 0;
	*why = "the target path does not exist";
	return SALUS_EUNPROCESSABLE;
}

static int do_replace(json_t *doc, const struct ptr *p, json_t *val, const char **why)
{
	json_t *parent = walk(doc, p, p->n - 1);
	const char *last = p->tok[p->n - 1];
	if (json_is_object(parent) && json_object_get(parent, last))
		return json_object_set(parent, last, val) ? SALUS_ENOMEM : 0;
	size_t k;
	if (json_is_array(parent) && !index_of(last, &k) && k < json_array_size(parent))
		return json_array_set(parent, k, val) ? SALUS_ENOMEM : 0;
	*why = "the target path does not exist";
	return SALUS_EUNPROCESSABLE;
}

/* Is a a proper prefix of b (token-wise)? */
static bool proper_prefix(const struct ptr *a, const struct ptr *b)
{
	if (a->n >= b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->tok[i], b->tok[i]))
			return false;
	return true;
}

/* RFC 6902 §4.6 equality: like json_equal, except that numbers are equal
 * when their values are (10 and 10.0: jansson keeps integer and real apart). */
static bool patch_equal(const json_t *a, const json_t *b, int depth)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return json_number_value(a) == json_number_value(b);
	}
	if (depth > SALUS_MAX_JSON_DEPTH + 1 || json_typeof(a) != json_typeof(b))
		return false;
	if (json_is_array(a)) {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!patch_equal(json_array_get(a, i), json_array_get(b, i), depth + 1))
				return false;
		return true;
	}
	if (json_is_object(a)) {
		const char *k;
		json_t *v;
		if (json_object_size(a) != json_object_size(b))
			return false;
		json_object_foreach((json_t *)(uintptr_t)a, k, v) {
			json_t *w = json_object_get(b, k);
			if (!w || !patch_equal(v, w, depth + 1))
				return false;
		}
		return true;
	}
	return json_equal(a, b);
}

static int apply_one(json_t *doc, const json_t *op, const char **why)
{
	const char *name = json_string_value(json_object_get(op, "op"));
	const char *path = json_string_value(json_object_get(op, "path"));
	const char *from = json_string_value(json_object_get(op, "from"));
	json_t *value = json_object_get(op, "value");
	struct ptr p = {.n = 0}, f = {.n = 0};
	int rc;

	if (!json_is_object(op) || !name || !path) {
		*why = "each patch operation needs string members op and path";
		return SALUS_EINVALID;
	}
	bool needs_value = !strcmp(name, "add") || !strcmp(name, "replace") || !strcmp(name, "test");
	bool needs_from = !strcmp(name, "move") || !strcmp(name, "copy");
	if (!needs_value && !needs_from && strcmp(name, "remove")) {
		*why = "unknown patch operation (add, remove, replace, move, copy, test)";
		return SALUS_EINVALID;
	}
	if ((needs_value && !value) || (needs_from && !from)) {
		*why = needs_value ? "patch operation needs a value" : "patch operation needs from";
		return SALUS_EINVALID;
	}
	if ((rc = ptr_parse(path, &p)) || (needs_from && (rc = ptr_parse(from, &f)))) {
		*why = "malformed JSON Pointer";
		goto out;
	}
	if (!strcmp(name, "test")) {
		json_t *cur = walk(doc, &p, p.n);
		if (!cur || !patch_equal(cur, value, 0)) {
			*why = "test operation failed";
			rc = SALUS_EUNPROCESSABLE;
		}
		goto out;
	}
	if (p.n == 0 || (needs_from && f.n == 0)) {
		*why = "a patch may not replace or move the whole resource";
		rc = SALUS_EUNPROCESSABLE;
		goto out;
	}
	if (!strcmp(name, "add")) {
		rc = do_add(doc, &p, value, why);
	} else if (!strcmp(name, "remove")) {
		rc = do_remove(doc, &p, why);
	} else if (!strcmp(name, "replace")) {
		rc = do_replace(doc, &p, value, why);
	} else {
		json_t *src = walk(doc, &f, f.n);
		if (!src) {
			*why = "the from path does not exist";
			rc = SALUS_EUNPROCESSABLE;
			goto out;
		}
		if (!strcmp(name, "copy")) {
			json_t *c = json_deep_copy(src);
			if (!c) {
				rc = SALUS_ENOMEM;
				goto out;
			}
			rc = do_add(doc, &p, c, why);
			json_decref(c);
		} else {
			if (proper_prefix(&f, &p)) {
				*why = "cannot move a value into one of its children";
				rc = SALUS_EUNPROCESSABLE;
				goto out;
			}
			json_incref(src);
			if (!(rc = do_remove(doc, &f, why)))
				rc = do_add(doc, &p, src, why);
			json_decref(src);
		}
	}
out:
	ptr_release(&p);
	ptr_release(&f);
	return rc;
}

int salus_json_patch(json_t *doc, const json_t *patch, const char **why, size_t *failed_op)
{
	const char *w = NULL;
	size_t i;
	json_t *op;
	if (!why)
		why = &w;
	if (!json_is_array(patch)) {
		*why = "a JSON Patch document is an array of operations";
		return SALUS_EINVALID;
	}
	if (json_array_size(patch) > SALUS_PATCH_MAX_OPS) {
		*why = "too many patch operations";
		return SALUS_EINVALID;
	}
	json_array_foreach(patch, i, op) {
		int rc = apply_one(doc, op, why);
		if (rc) {
			if (failed_op)
				*failed_op = i;
			return rc;
		}
	}
	return 0;
}

static bool starts_member(const char *path, const char *name)
{
	size_t n = strlen(name);
	if (!path)
		return false;
	if (!*path)
		return true;
	/* compare the first token, unescaped on the fly */
	const char *s = path + 1;
	size_t i = 0;
	while (*s && *s != '/') {
		char c = *s;
		if (c == '~' && (s[1] == '0' || s[1] == '1')) {
			c = s[1] == '0' ? '~' : '/';
			s++;
		}
		if (i >= n || name[i] != c)
			return false;
		i++;
		s++;
	}
	return i == n;
}

bool salus_json_patch_touches(const json_t *patch, const char *name)
{
	size_t i;
	json_t *op;
	json_array_foreach(patch, i, op) {
		const char *kind = json_string_value(json_object_get(op, "op"));
		if (kind && !strcmp(kind, "test"))
			continue;
		if (starts_member(json_string_value(json_object_get(op, "path")), name) ||
		    (kind && !strcmp(kind, "move") && starts_member(json_string_value(json_object_get(op, "from")), name)))
			return true;
	}
	return false;
}
