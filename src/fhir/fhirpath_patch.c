/*
 * fhirpath_patch.c — FHIRPath Patch (see fhirpath_patch.h).
 *
 * Each operation's path is evaluated with the FHIRPath evaluator, which
 * yields the JSON nodes it selects (borrowed pointers into `doc`).  To change
 * a node we need where it sits: the object member (and array index) that
 * holds it.  Containers are found by pointer identity with a walk of the
 * document; jansson shares one node for every true, false and null, so a
 * selected boolean that occurs more than once is located instead through
 * the path's last step ("Patient.active": evaluate "Patient", take member
 * "active").  Values get their JSON shape from the R4 definitions.
 */
#include "fhir/fhirpath_patch.h"

#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/fhirpath.h"

#define KEY_MAX 128 /* an element name with its choice suffix */

/* One decoded operation; everything borrowed from the Parameters document. */
struct op {
	const char *type, *path, *name;
	const json_t *value;       /* value[x] content, or NULL */
	char vtype[KEY_MAX];       /* "Quantity" of valueQuantity ("" when parts or none) */
	const json_t *parts;       /* value given as parts, or NULL */
	json_int_t index, source, destination;
	bool has_index, has_source, has_destination;
};

/* Where a selected node sits: obj[key], or obj[key][idx] when arr. */
struct loc {
	json_t *obj;
	char key[KEY_MAX];
	bool arr;
	size_t idx;
};

/* A node of the document being patched, selected through a const view
 * (the evaluator's items and the borrowed Parameters). */
static json_t *mut(const json_t *j)
{
	union {
		const json_t *c;
		json_t *m;
	} u = {.c = j};
	return u.m;
}

/* ---- decoding the Parameters ---------------------------------------------------------------- */

/* The value[x] member of a parameter/part: its key suffix in *vtype. */
static const json_t *value_x(const json_t *p, char *vtype, size_t vmax, int *count)
{
	const char *k;
	const json_t *v, *found = NULL;
	*count = 0;
	json_object_foreach(mut(p), k, v) {
		size_t n = strlen(k);
		if (n > 5 && !strncmp(k, "value", 5) && isupper((unsigned char)k[5])) {
			if (++*count == 1) {
				found = v;
				if (n - 5 >= vmax)
					return NULL;
				memcpy(vtype, k + 5, n - 5 + 1);
			}
		}
	}
	return found;
}

static int part_str(const json_t *part, const char **out, const char **why)
{
	char vt[KEY_MAX];
	int count;
	const json_t *v = value_x(part, vt, sizeof vt, &count);
	if (count != 1 || !json_is_string(v)) {
		*why = "a type, path or name part needs one string value (valueCode or valueString)";
		return SALUS_EINVALID;
	}
	*out = json_string_value(v);
	return 0;
}

static int part_int(const json_t *part, json_int_t *out, bool *has, const char **why)
{
	char vt[KEY_MAX];
	int count;
	const json_t *v = value_x(part, vt, sizeof vt, &count);
	if (count != 1 || !json_is_integer(v) || json_integer_value(v) < 0) {
		*why = "an index, source or destination part needs a non-negative valueInteger";
		return SALUS_EINVALID;
	}
	*out = json_integer_value(v);
	*has = true;
	return 0;
}

static int decode_op(const json_t *param, struct op *o, const char **why)
{
	memset(o, 0, sizeof *o);
	const json_t *name = json_object_get(param, "name"), *parts = json_object_get(param, "part");
	if (!json_is_string(name) || strcmp(json_string_value(name), "operation") || !json_is_array(parts)) {
		*why = "every parameter of a FHIRPath Patch is an \"operation\" with parts";
		return SALUS_EINVALID;
	}
	size_t i;
	const json_t *pt;
	unsigned seen = 0;
	json_array_foreach(parts, i, pt) {
		const json_t *pn = json_object_get(pt, "name");
		const char *n = json_is_string(pn) ? json_string_value(pn) : "";
		static const char *const names[] = {"type", "path", "name", "value", "index", "source", "destination"};
		unsigned bit = 0;
		for (unsigned k = 0; k < sizeof names / sizeof *names; k++)
			if (!strcmp(n, names[k]))
				bit = 1u << k;
		if (!bit) {
			*why = "unknown part of a FHIRPath Patch operation";
			return SALUS_EINVALID;
		}
		if (seen & bit) {
			*why = "a part of a FHIRPath Patch operation is repeated";
			return SALUS_EINVALID;
		}
		seen |= bit;
		int rc = 0, count;
		switch (bit) {
		case 1: rc = part_str(pt, &o->type, why); break;
		case 2: rc = part_str(pt, &o->path, why); break;
		case 4: rc = part_str(pt, &o->name, why); break;
		case 8:
			o->value = value_x(pt, o->vtype, sizeof o->vtype, &count);
			o->parts = json_object_get(pt, "part");
			if (count > 1 || (count == 1 && !o->value) || (o->value && o->parts) ||
			    (!o->value && !json_is_array(o->parts))) {
				*why = "a value part needs one value[x] or nested parts";
				return SALUS_EINVALID;
			}
			break;
		case 16: rc = part_int(pt, &o->index, &o->has_index, why); break;
		case 32: rc = part_int(pt, &o->source, &o->has_source, why); break;
		default: rc = part_int(pt, &o->destination, &o->has_destination, why); break;
		}
		if (rc)
			return rc;
	}
	if (!o->type || !o->path) {
		*why = "a FHIRPath Patch operation needs a type and a path";
		return SALUS_EINVALID;
	}
	if (strlen(o->path) > SALUS_FPATCH_MAX_PATH) {
		*why = "a FHIRPath Patch path is too long";
		return SALUS_EINVALID;
	}
	bool ok;
	if (!strcmp(o->type, "add"))
		ok = o->name && (o->value || o->parts);
	else if (!strcmp(o->type, "insert"))
		ok = (o->value || o->parts) && o->has_index;
	else if (!strcmp(o->type, "delete"))
		ok = true;
	else if (!strcmp(o->type, "replace"))
		ok = o->value || o->parts;
	else if (!strcmp(o->type, "move"))
		ok = o->has_source && o->has_destination;
	else {
		*why = "unknown FHIRPath Patch operation type (add, insert, delete, replace, move)";
		return SALUS_EINVALID;
	}
	if (!ok) {
		*why = "a FHIRPath Patch operation lacks a part its type needs";
		return SALUS_EINVALID;
	}
	if (strstr(o->path, "resolve(")) {
		*why = "a FHIRPath Patch path may not leave the resource (resolve)";
		return SALUS_EINVALID;
	}
	return 0;
}

/* ---- values shaped by the definitions ------------------------------------------------------- */

/* The navigation context of element e's children. */
static void child_nav(const struct salus_fhir_elem *e, const char *vtype, const struct salus_fhir_type **t,
		      const struct salus_fhir_elem **pe)
{
	struct salus_fhir_elem_info info;
	salus_fhir_elem_get(e, &info);
	const char *code = info.ntypes ? salus_fhir_elem_type_code(e, 0) : NULL;
	if (!code || !strcmp(code, "BackboneElement") || !strcmp(code, "Element")) {
		*t = info.owner;
		*pe = e;
		return;
	}
	*pe = NULL;
	*t = salus_fhir_type_find(vtype && *vtype ? vtype : code, strlen(vtype && *vtype ? vtype : code));
	if (!*t && vtype && *vtype) { /* primitive suffixes are capitalised: "String" is type "string" */
		char lc[KEY_MAX];
		size_t n = strlen(vtype);
		memcpy(lc, vtype, n + 1);
		lc[0] = (char)tolower((unsigned char)lc[0]);
		*t = salus_fhir_type_find(lc, n);
	}
}

/* The child element of (t, pe) that `name` (with choice suffix vtype) names; the JSON key in key. */
static const struct salus_fhir_elem *child_elem(const struct salus_fhir_type *t, const struct salus_fhir_elem *pe,
						const char *name, const char *vtype, char *key)
{
	const struct salus_fhir_elem *e = NULL;
	if (!t)
		return NULL;
	size_t n = strlen(name);
	if (n + 1 < KEY_MAX && (e = salus_fhir_elem_child(t, pe, name, n, NULL))) {
		memcpy(key, name, n + 1);
		struct salus_fhir_elem_info info;
		salus_fhir_elem_get(e, &info);
		if (!info.choice)
			return e;
	}
	size_t vn = vtype ? strlen(vtype) : 0;
	if (!vn || n + vn + 1 > KEY_MAX)
		return NULL;
	memcpy(key, name, n);
	memcpy(key + n, vtype, vn + 1);
	return salus_fhir_elem_child(t, pe, key, n + vn, NULL);
}

static bool elem_repeats(const struct salus_fhir_elem *e)
{
	struct salus_fhir_elem_info info;
	salus_fhir_elem_get(e, &info);
	return info.max > 1;
}

static int build_parts(const json_t *parts, const struct salus_fhir_type *t, const struct salus_fhir_elem *pe,
		       int depth, json_t **out, const char **why);

/* A new JSON value for a value part (value[x] or parts) whose children live in (t, pe). */
static int make_value(const json_t *value, const json_t *parts, const struct salus_fhir_type *t,
		      const struct salus_fhir_elem *pe, int depth, json_t **out, const char **why)
{
	if (value) {
		*out = json_deep_copy(value);
		return *out ? 0 : SALUS_ENOMEM;
	}
	return build_parts(parts, t, pe, depth, out, why);
}

static int build_parts(const json_t *parts, const struct salus_fhir_type *t, const struct salus_fhir_elem *pe,
		       int depth, json_t **out, const char **why)
{
	if (depth > 32) {
		*why = "FHIRPath Patch value parts nest too deeply";
		return SALUS_EINVALID;
	}
	if (!t) {
		*why = "a value given as parts needs a complex element";
		return SALUS_EUNPROCESSABLE;
	}
	json_t *obj = json_object();
	if (!obj)
		return SALUS_ENOMEM;
	size_t i;
	const json_t *pt;
	int rc = 0;
	json_array_foreach(parts, i, pt) {
		const json_t *pn = json_object_get(pt, "name");
		char vtype[KEY_MAX] = "", key[KEY_MAX];
		int count;
		const json_t *v = value_x(pt, vtype, sizeof vtype, &count), *sub = json_object_get(pt, "part");
		if (!json_is_string(pn) || count > 1 || (!v && !json_is_array(sub)) || (v && sub)) {
			*why = "each value part needs a name and one value[x] or nested parts";
			rc = SALUS_EINVALID;
			break;
		}
		const struct salus_fhir_elem *e = child_elem(t, pe, json_string_value(pn), vtype, key);
		if (!e) {
			*why = "a value part names no element of its type";
			rc = SALUS_EUNPROCESSABLE;
			break;
		}
		const struct salus_fhir_type *ct;
		const struct salus_fhir_elem *ce;
		child_nav(e, vtype, &ct, &ce);
		json_t *val = NULL;
		if ((rc = make_value(v, sub, ct, ce, depth + 1, &val, why)))
			break;
		json_t *have = json_object_get(obj, key);
		if (elem_repeats(e)) {
			if (!have && (!(have = json_array()) || json_object_set_new(obj, key, have))) {
				json_decref(val);
				rc = SALUS_ENOMEM;
				break;
			}
			rc = json_array_append_new(have, val) ? SALUS_ENOMEM : 0;
		} else if (have) {
			json_decref(val);
			*why = "a value part repeats an element that does not repeat";
			rc = SALUS_EUNPROCESSABLE;
		} else {
			rc = json_object_set_new(obj, key, val) ? SALUS_ENOMEM : 0;
		}
		if (rc)
			break;
	}
	if (rc) {
		json_decref(obj);
		return rc;
	}
	*out = obj;
	return 0;
}

/* ---- locating nodes ------------------------------------------------------------------------- */

static void set_loc(struct loc *l, json_t *obj, const char *key, bool arr, size_t idx)
{
	l->obj = obj;
	snprintf(l->key, sizeof l->key, "%s", key);
	l->arr = arr;
	l->idx = idx;
}

/* Every place under obj that holds `target` (by identity): the first in *l, the number in *count (stops at 2). */
static void find_ptr(json_t *obj, const json_t *target, struct loc *l, int *count, int depth)
{
	const char *k;
	json_t *v;
	if (depth > 128)
		return;
	json_object_foreach(obj, k, v) {
		if (v == target && (*count)++ == 0)
			set_loc(l, obj, k, false, 0);
		if (json_is_object(v)) {
			find_ptr(v, target, l, count, depth + 1);
		} else if (json_is_array(v)) {
			for (size_t i = 0; i < json_array_size(v); i++) {
				json_t *e = json_array_get(v, i);
				if (e == target && (*count)++ == 0)
					set_loc(l, obj, k, true, i);
				if (json_is_object(e))
					find_ptr(e, target, l, count, depth + 1);
			}
		}
		if (*count > 1)
			return;
	}
}

/* Split "A.b.c[2]" into the prefix "A.b" (length *plen), the name "c" and the index 2 (-1 if none).
 * False when the last step is not a plain name with an optional [n]. */
static bool split_last(const char *p, size_t *plen, char *name, long *index)
{
	int depth = 0;
	char quote = 0;
	const char *dot = NULL;
	for (const char *c = p; *c; c++) {
		if (quote) {
			if (*c == '\\' && c[1])
				c++;
			else if (*c == quote)
				quote = 0;
		} else if (*c == '\'' || *c == '`') {
			quote = *c;
		} else if (*c == '(' || *c == '[') {
			depth++;
		} else if (*c == ')' || *c == ']') {
			depth--;
		} else if (*c == '.' && depth == 0) {
			dot = c;
		}
	}
	if (!dot)
		return false;
	const char *s = dot + 1;
	size_t n = 0;
	if (!isalpha((unsigned char)s[0]) && s[0] != '_')
		return false;
	while (isalnum((unsigned char)s[n]) || s[n] == '_')
		n++;
	if (n >= KEY_MAX)
		return false;
	memcpy(name, s, n);
	name[n] = 0;
	*index = -1;
	if (s[n] == '[') {
		char *end;
		long v = strtol(s + n + 1, &end, 10);
		if (end == s + n + 1 || *end != ']' || end[1] || v < 0)
			return false;
		*index = v;
	} else if (s[n]) {
		return false;
	}
	*plen = (size_t)(dot - p);
	return true;
}

/* Evaluate text[0..n) on doc into *res (items live in cx). */
static int eval(struct salus_fp_ctx *cx, const char *text, size_t n, json_t *doc, struct salus_fp_result *res,
		const char **why)
{
	struct salus_fp_expr *e = NULL;
	char msg[160];
	int rc = salus_fp_parse(text, n, &e, msg, sizeof msg);
	if (rc) {
		*why = rc == SALUS_ENOMEM ? NULL : "a FHIRPath Patch path is not a valid FHIRPath expression";
		return rc;
	}
	rc = salus_fp_eval(cx, e, doc, NULL, NULL, res);
	salus_fp_free(e);
	if (rc && rc != SALUS_ENOMEM)
		*why = rc == SALUS_ETOOLARGE ? "a FHIRPath Patch path exceeded its evaluation budget"
					     : "a FHIRPath Patch path could not be evaluated";
	return rc;
}

/* The single object the path's prefix selects and the member its last step names (the member
 * may be absent).  *item gets the prefix item (for definitions).  0 or SALUS_EUNPROCESSABLE. */
static int locate_by_prefix(struct salus_fp_ctx *cx, const char *path, json_t *doc, struct loc *l, long *index,
			    struct salus_fp_item *item, const char **why)
{
	size_t plen;
	char name[KEY_MAX];
	struct salus_fp_result res;
	int rc;
	if (!split_last(path, &plen, name, index)) {
		*why = "the path selects a node that can only be located through a plain last step";
		return SALUS_EUNPROCESSABLE;
	}
	if ((rc = eval(cx, path, plen, doc, &res, why)))
		return rc;
	if (res.n != 1 || res.items[0].kind != SALUS_FP_NODE || !json_is_object(res.items[0].j)) {
		*why = "the path's parent must select exactly one element";
		return SALUS_EUNPROCESSABLE;
	}
	*item = res.items[0];
	json_t *obj = mut(res.items[0].j);
	set_loc(l, obj, name, false, 0);
	if (!json_object_get(obj, name)) { /* a choice element: "value" is held as valueQuantity */
		const char *k;
		json_t *v;
		size_t n = strlen(name);
		json_object_foreach(obj, k, v) {
			if (!strncmp(k, name, n) && isupper((unsigned char)k[n])) {
				const struct salus_fhir_elem *e = salus_fhir_elem_child(item->nav_t, item->nav_e, k, strlen(k), NULL);
				struct salus_fhir_elem_info info;
				if (e && (salus_fhir_elem_get(e, &info), info.choice && info.name_len == n)) {
					set_loc(l, obj, k, false, 0);
					break;
				}
			}
		}
	}
	return 0;
}

static json_t *loc_get(const struct loc *l)
{
	json_t *v = json_object_get(l->obj, l->key);
	return l->arr ? json_array_get(v, l->idx) : v;
}

/* Locate the one node of an evaluated item. */
static int locate_item(struct salus_fp_ctx *cx, const char *path, json_t *doc, const struct salus_fp_item *it,
		       struct loc *l, const char **why)
{
	int count = 0;
	if (it->kind != SALUS_FP_NODE || !it->j) {
		*why = "the path must select an element of the resource";
		return SALUS_EUNPROCESSABLE;
	}
	if (it->j == doc) {
		*why = "the path selects the resource itself";
		return SALUS_EUNPROCESSABLE;
	}
	find_ptr(doc, it->j, l, &count, 0);
	if (count == 1)
		return 0;
	if (count == 0) {
		*why = "the path must select an element of the resource";
		return SALUS_EUNPROCESSABLE;
	}
	/* a shared true/false/null: through the last step */
	long index;
	struct salus_fp_item parent;
	int rc = locate_by_prefix(cx, path, doc, l, &index, &parent, why);
	if (rc)
		return rc;
	json_t *v = json_object_get(l->obj, l->key);
	if (json_is_array(v)) {
		if (index < 0 && json_array_size(v) == 1)
			index = 0;
		if (index < 0 || (size_t)index >= json_array_size(v)) {
			*why = "the path must select exactly one element";
			return SALUS_EUNPROCESSABLE;
		}
		l->arr = true;
		l->idx = (size_t)index;
	} else if (index > 0) {
		*why = "the path must select exactly one element";
		return SALUS_EUNPROCESSABLE;
	}
	if (loc_get(l) != it->j) {
		*why = "the path selects a node that can only be located through a plain last step";
		return SALUS_EUNPROCESSABLE;
	}
	return 0;
}

/* The list (an array member) a path selects the items of: l->obj[l->key], which may not exist yet
 * when the path selects nothing.  nav_t, nav_e: where the list's items find their children. */
static int locate_list(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, struct loc *l,
		       const struct salus_fhir_type **nav_t, const struct salus_fhir_elem **nav_e, const char **why)
{
	struct salus_fp_result res;
	int rc = eval(cx, o->path, strlen(o->path), doc, &res, why);
	if (rc)
		return rc;
	if (res.n == 0) {
		long index;
		struct salus_fp_item parent;
		char key[KEY_MAX];
		if ((rc = locate_by_prefix(cx, o->path, doc, l, &index, &parent, why)))
			return rc;
		const struct salus_fhir_elem *e = child_elem(parent.nav_t, parent.nav_e, l->key, o->vtype, key);
		if (!e || !elem_repeats(e) || index >= 0) {
			*why = "the path must select a list";
			return SALUS_EUNPROCESSABLE;
		}
		child_nav(e, o->vtype, nav_t, nav_e);
		l->arr = true;
		return 0;
	}
	for (size_t i = 0; i < res.n; i++) {
		struct loc li;
		if ((rc = locate_item(cx, o->path, doc, &res.items[i], &li, why)))
			return rc;
		if (!li.arr || (i && (li.obj != l->obj || strcmp(li.key, l->key)))) {
			*why = "the path must select the items of one list";
			return SALUS_EUNPROCESSABLE;
		}
		if (!i)
			*l = li;
	}
	*nav_t = res.items[0].nav_t;
	*nav_e = res.items[0].nav_e;
	return 0;
}

/* ---- operations ----------------------------------------------------------------------------- */

/* Remove obj[key] (or its idx-th item), and the matching "_key" primitive extensions. */
static void remove_at(const struct loc *l)
{
	char ukey[KEY_MAX + 1];
	ukey[0] = '_';
	memcpy(ukey + 1, l->key, strlen(l->key) + 1);
	json_t *v = json_object_get(l->obj, l->key), *u = json_object_get(l->obj, ukey);
	if (!l->arr) {
		json_object_del(l->obj, l->key);
		json_object_del(l->obj, ukey);
		return;
	}
	if (json_is_array(u) && json_array_size(u) == json_array_size(v))
		json_array_remove(u, l->idx);
	json_array_remove(v, l->idx);
	if (json_array_size(v) == 0) { /* FHIR JSON has no empty arrays */
		json_object_del(l->obj, l->key);
		json_object_del(l->obj, ukey);
	}
}

static int op_add(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, const char **why)
{
	struct salus_fp_result res;
	int rc = eval(cx, o->path, strlen(o->path), doc, &res, why);
	if (rc)
		return rc;
	if (res.n != 1 || res.items[0].kind != SALUS_FP_NODE || !json_is_object(res.items[0].j)) {
		*why = "an add path must select exactly one element to add to";
		return SALUS_EUNPROCESSABLE;
	}
	const struct salus_fp_item *it = &res.items[0];
	json_t *obj = mut(it->j);
	char key[KEY_MAX];
	const struct salus_fhir_elem *e = child_elem(it->nav_t, it->nav_e, o->name, o->vtype, key);
	if (!e) {
		*why = "an add names no element of the selected element's type";
		return SALUS_EUNPROCESSABLE;
	}
	const struct salus_fhir_type *ct;
	const struct salus_fhir_elem *ce;
	child_nav(e, o->vtype, &ct, &ce);
	json_t *val = NULL, *have = json_object_get(obj, key);
	if (!elem_repeats(e) && have) {
		*why = "an add names a single element that already exists (use replace)";
		return SALUS_EUNPROCESSABLE;
	}
	if ((rc = make_value(o->value, o->parts, ct, ce, 0, &val, why)))
		return rc;
	if (!elem_repeats(e))
		return json_object_set_new(obj, key, val) ? SALUS_ENOMEM : 0;
	if (!have && (!(have = json_array()) || json_object_set_new(obj, key, have))) {
		json_decref(val);
		return SALUS_ENOMEM;
	}
	return json_array_append_new(have, val) ? SALUS_ENOMEM : 0;
}

static int op_insert(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, const char **why)
{
	struct loc l;
	const struct salus_fhir_type *nt;
	const struct salus_fhir_elem *ne;
	int rc = locate_list(cx, o, doc, &l, &nt, &ne, why);
	if (rc)
		return rc;
	json_t *arr = json_object_get(l.obj, l.key), *val = NULL;
	size_t size = json_array_size(arr);
	if ((json_int_t)size < o->index) {
		*why = "an insert index is beyond the end of the list";
		return SALUS_EUNPROCESSABLE;
	}
	if ((rc = make_value(o->value, o->parts, nt, ne, 0, &val, why)))
		return rc;
	if (!arr && (!(arr = json_array()) || json_object_set_new(l.obj, l.key, arr))) {
		json_decref(val);
		return SALUS_ENOMEM;
	}
	return json_array_insert_new(arr, (size_t)o->index, val) ? SALUS_ENOMEM : 0;
}

static int op_delete(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, const char **why)
{
	struct salus_fp_result res;
	struct loc l;
	int rc = eval(cx, o->path, strlen(o->path), doc, &res, why);
	if (rc || res.n == 0) /* nothing selected: nothing to delete */
		return rc;
	if (res.n > 1) {
		*why = "a delete path must select at most one element";
		return SALUS_EUNPROCESSABLE;
	}
	if ((rc = locate_item(cx, o->path, doc, &res.items[0], &l, why)))
		return rc;
	remove_at(&l);
	return 0;
}

static int op_replace(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, const char **why)
{
	struct salus_fp_result res;
	struct loc l;
	int rc = eval(cx, o->path, strlen(o->path), doc, &res, why);
	if (rc)
		return rc;
	if (res.n != 1) {
		*why = "a replace path must select exactly one element";
		return SALUS_EUNPROCESSABLE;
	}
	const struct salus_fp_item *it = &res.items[0];
	if ((rc = locate_item(cx, o->path, doc, it, &l, why)))
		return rc;
	json_t *val = NULL;
	const struct salus_fhir_type *nt = it->nav_t;
	const struct salus_fhir_elem *ne = it->nav_e;
	if ((rc = make_value(o->value, o->parts, nt, ne, 0, &val, why)))
		return rc;
	if (l.arr)
		return json_array_set_new(json_object_get(l.obj, l.key), l.idx, val) ? SALUS_ENOMEM : 0;
	/* a choice element changing type: valueQuantity → valueString */
	struct salus_fhir_elem_info info;
	if (it->elem && *o->vtype && (salus_fhir_elem_get(it->elem, &info), info.choice)) {
		char key[KEY_MAX];
		size_t vn = strlen(o->vtype);
		if (info.name_len + vn + 1 > KEY_MAX) {
			json_decref(val);
			*why = "a replace value type is not one of the element's types";
			return SALUS_EUNPROCESSABLE;
		}
		memcpy(key, info.name, info.name_len);
		memcpy(key + info.name_len, o->vtype, vn + 1);
		if (strcmp(key, l.key)) {
			remove_at(&l);
			snprintf(l.key, sizeof l.key, "%s", key);
		}
	}
	return json_object_set_new(l.obj, l.key, val) ? SALUS_ENOMEM : 0;
}

static int op_move(struct salus_fp_ctx *cx, const struct op *o, json_t *doc, const char **why)
{
	struct loc l;
	const struct salus_fhir_type *nt;
	const struct salus_fhir_elem *ne;
	int rc = locate_list(cx, o, doc, &l, &nt, &ne, why);
	if (rc)
		return rc;
	json_t *arr = json_object_get(l.obj, l.key);
	size_t size = json_array_size(arr);
	if (o->source >= (json_int_t)size || o->destination >= (json_int_t)size) {
		*why = "a move source or destination is beyond the end of the list";
		return SALUS_EUNPROCESSABLE;
	}
	json_t *v = json_incref(json_array_get(arr, (size_t)o->source));
	if (json_array_remove(arr, (size_t)o->source) || json_array_insert_new(arr, (size_t)o->destination, v))
		return SALUS_ENOMEM;
	return 0;
}

/* ---- entry points --------------------------------------------------------------------------- */

bool salus_fhirpath_patch_is(const json_t *params)
{
	const json_t *rt = json_object_get(params, "resourceType");
	return json_is_string(rt) && !strcmp(json_string_value(rt), "Parameters");
}

int salus_fhirpath_patch(json_t *doc, const json_t *params, const char **why, size_t *failed_op)
{
	const char *w = NULL;
	size_t bad = 0;
	int rc = 0;
	const json_t *list = json_object_get(params, "parameter");
	if (!salus_fhirpath_patch_is(params) || !json_is_object(doc) || (list && !json_is_array(list))) {
		w = "a FHIRPath Patch is a Parameters resource";
		rc = SALUS_EINVALID;
		goto out;
	}
	if (json_array_size(list) > SALUS_FPATCH_MAX_OPS) {
		w = "a FHIRPath Patch has too many operations";
		rc = SALUS_EINVALID;
		goto out;
	}
	/* decode every operation first: a malformed patch is a 400 before anything changes */
	struct op o;
	for (bad = 0; bad < json_array_size(list); bad++)
		if ((rc = decode_op(json_array_get(list, bad), &o, &w)))
			goto out;
	char buf[4096];
	struct salus_fp_ctx cx;
	salus_fp_ctx_init(&cx, buf, sizeof buf);
	for (bad = 0; bad < json_array_size(list) && !rc; bad++) {
		decode_op(json_array_get(list, bad), &o, &w);
		salus_fp_ctx_reset(&cx);
		if (!strcmp(o.type, "add"))
			rc = op_add(&cx, &o, doc, &w);
		else if (!strcmp(o.type, "insert"))
			rc = op_insert(&cx, &o, doc, &w);
		else if (!strcmp(o.type, "delete"))
			rc = op_delete(&cx, &o, doc, &w);
		else if (!strcmp(o.type, "replace"))
			rc = op_replace(&cx, &o, doc, &w);
		else
			rc = op_move(&cx, &o, doc, &w);
	}
	salus_fp_ctx_release(&cx);
	if (rc)
		bad--;
out:
	if (rc) {
		if (why)
			*why = w;
		if (failed_op)
			*failed_op = bad;
	}
	return rc;
}
