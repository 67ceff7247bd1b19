/*
 * search_index.c — index extraction: every search parameter of a resource's
 * type (from the generated definitions, fhir/defs.h) is evaluated on the
 * resource and its values become rows of the store's index (store.h,
 * struct salus_ix_row), plus the _text (narrative) and _content (all text)
 * documents.  Also the value normalisation shared with the request parser:
 * strings (utf8proc), date ranges and number precision.
 *
 * The expressions are the official R4 SearchParameter FHIRPath; the subset
 * they use is small and evaluated here directly over the JSON: unions `|`,
 * paths with choice types (`Observation.value` finds valueQuantity...),
 * `ofType(T)` / `as(T)`, `where(resolve() is T)`, `where(field='literal')`,
 * and the one boolean expression of Patient.deceased.  An expression this
 * evaluator does not understand indexes nothing (never fails the write).
 */
#include "fhir/search.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/defs.h"

#define MAX_NODES 4096      /* values one expression may select */
#define ARENA_BLOCK 16384
#define TEXT_MAX (1u << 20) /* _text / _content document of one resource */
#define NORM_MAX (64u * 1024)

/* ---- parameter ids -------------------------------------------------------- */

static void aliases_once(void);
static bool row_of(const struct salus_ix_row *r, uint32_t p);

static uint32_t pid_raw(const char *type, const char *code)
{
	uint32_t h = 2166136261u;
	for (const char *p = type; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	h = (h ^ '.') * 16777619u;
	for (const char *p = code; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h & 0x3FFFFFFFu; /* the two top bits are SALUS_SQ_TEXT_BIT / SALUS_SQ_TYPE_BIT */
}

uint32_t salus_fhir_search_param_id(const char *type, const char *code)
{
	/* every query names its parameters by these ids: the store learns which are
	 * derived (salus_store_set_aliases) before the first one is handed out */
	aliases_once();
	return pid_raw(type, code);
}

uint32_t salus_fhir_search_contained_id(uint32_t param)
{
	/* an odd multiplier and an offset: a bijection on the 30 id bits */
	return (((param & 0x3FFFFFFFu) * 0x2C1B3C6Du + 0x297A2D39u) & 0x3FFFFFFFu) | (param & 0xC0000000u);
}

uint32_t salus_fhir_search_contained_marker(void)
{
	return salus_fhir_search_param_id("#contained", "_type");
}

uint32_t salus_fhir_search_patient_code_id(const char *type)
{
	return salus_fhir_search_param_id(type, "#patient+code");
}

static uint32_t comp_id(const char *type, const char *code, size_t i)
{
	char c[128];
	snprintf(c, sizeof c, "%s#%zu", code, i);
	return pid_raw(type, c);
}

/* ---- normalisation -------------------------------------------------------- */

int salus_fhir_norm(const char *s, size_t n, struct salus_buf *out)
{
	const utf8proc_option_t opt = UTF8PROC_STABLE | UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK |
				      UTF8PROC_CASEFOLD | UTF8PROC_IGNORE;
	utf8proc_int32_t stackbuf[256], *buf = stackbuf;
	utf8proc_ssize_t cap = 256, len;
	int rc;

	salus_buf_reset(out);
	if (n > NORM_MAX)
		return SALUS_ETOOLARGE;
	/* ASCII fast path */
	size_t i;
	for (i = 0; i < n && !(s[i] & 0x80); i++)
		;
	if (i == n) {
		for (i = 0; i < n; i++) {
			char c = s[i];
			if ((rc = salus_buf_addc(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c)))
				return rc;
		}
		return SALUS_OK;
	}
	for (;;) {
		len = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, buf, cap, opt);
		if (len < 0) {
			rc = len == UTF8PROC_ERROR_NOMEM ? SALUS_ENOMEM : SALUS_EINVALID;
			goto out_buf;
		}
		if (len <= cap)
			break;
		if (buf != stackbuf)
			salus_free(buf);
		cap = len;
		if (!(buf = salus_malloc((size_t)cap * sizeof *buf + 4))) {
			rc = SALUS_ENOMEM;
			goto out_none;
		}
	}
	len = utf8proc_reencode(buf, len, opt);
	if (len < 0) {
		rc = SALUS_EINVALID;
		goto out_buf;
	}
	rc = salus_buf_add(out, buf, (size_t)len);
out_buf:
	if (buf != stackbuf)
		salus_free(buf);
out_none:
	return rc;
}

/* ---- dates ---------------------------------------------------------------- */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, size_t n, size_t at, size_t k, int *out)
{
	int v = 0;
	if (at + k > n)
		return -1;
	for (size_t i = at; i < at + k; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int month_days(int y, int m)
{
	static const int md[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return md[m - 1];
}

int salus_fhir_date_range(const char *s, size_t n, int64_t *lo, int64_t *hi)
{
	int y, mo = 1, d = 1, h = 0, mi = 0, se = 0, ms = 0;
	int64_t span; /* ms covered by the precision */
	size_t p = 4;
	int64_t tz = 0;

	if (digits(s, n, 0, 4, &y))
		return SALUS_EINVALID;
	if (p == n) {
		int64_t a = days_from_civil(y, 1, 1), b = days_from_civil(y + 1, 1, 1);
		*lo = a * 86400000;
		*hi = b * 86400000 - 1;
		return SALUS_OK;
	}
	if (s[p] != '-' || digits(s, n, p + 1, 2, &mo) || mo < 1 || mo > 12)
		return SALUS_EINVALID;
	p += 3;
	if (p == n) {
		int64_t a = days_from_civil(y, (unsigned)mo, 1);
		*lo = a * 86400000;
		*hi = (a + month_days(y, mo)) * 86400000 - 1;
		return SALUS_OK;
	}
	if (s[p] != '-' || digits(s, n, p + 1, 2, &d) || d < 1 || d > month_days(y, mo))
		return SALUS_EINVALID;
	p += 3;
	span = 86400000;
	if (p < n) {
		if (s[p] != 'T' || digits(s, n, p + 1, 2, &h) || h > 23 || p + 3 >= n || s[p + 3] != ':' ||
		    digits(s, n, p + 4, 2, &mi) || mi > 59)
			return SALUS_EINVALID;
		p += 6;
		span = 60000;
		if (p < n && s[p] == ':') {
			if (digits(s, n, p + 1, 2, &se) || se > 60)
				return SALUS_EINVALID;
			if (se == 60)
				se = 59;
			p += 3;
			span = 1000;
			if (p < n && s[p] == '.') {
				size_t k = 0;
				int f = 0;
				p++;
				while (p < n && s[p] >= '0' && s[p] <= '9') {
					if (k < 3)
						f = f * 10 + (s[p] - '0');
					k++;
					p++;
				}
				if (k == 0)
					return SALUS_EINVALID;
				for (size_t z = k; z < 3; z++)
					f *= 10;
				ms = f;
				span = k >= 3 ? 1 : k == 2 ? 10 : 100;
			}
		}
		if (p < n) {
			if (s[p] == 'Z' && p + 1 == n) {
				p++;
			} else if ((s[p] == '+' || s[p] == '-') && p + 6 == n && s[p + 3] == ':') {
				int th, tm;
				if (digits(s, n, p + 1, 2, &th) || digits(s, n, p + 4, 2, &tm) || th > 14 || tm > 59)
					return SALUS_EINVALID;
				tz = (int64_t)(th * 60 + tm) * 60000 * (s[p] == '+' ? 1 : -1);
				p = n;
			} else {
				return SALUS_EINVALID;
			}
		}
	}
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 + (int64_t)h * 3600000 +
		    (int64_t)mi * 60000 + (int64_t)se * 1000 + ms - tz;
	*lo = t;
	*hi = t + span - 1;
	return SALUS_OK;
}

/* ---- numbers -------------------------------------------------------------- */

int salus_fhir_number_range(const char *s, size_t n, double *v, double *lo, double *hi)
{
	char tmp[64];
	size_t i = 0;
	int decimals = 0, exp10 = 0;
	bool any = false, expo = false;

	if (n == 0 || n >= sizeof tmp)
		return SALUS_EINVALID;
	if (s[i] == '-' || s[i] == '+')
		i++;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
		any = true;
	if (i < n && s[i] == '.') {
		i++;
		for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, decimals++)
			any = true;
		if (!decimals)
			return SALUS_EINVALID;
	}
	if (!any)
		return SALUS_EINVALID;
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		long e;
		size_t j = i + 1;
		if (j < n && (s[j] == '-' || s[j] == '+'))
			j++;
		if (j == n || salus_parse_long((struct salus_slice){s + i + 1, n - i - 1}, -300, 300, &e))
			return SALUS_EINVALID;
		exp10 = (int)e;
		expo = true;
		i = n;
	}
	if (i != n)
		return SALUS_EINVALID;
	memcpy(tmp, s, n);
	tmp[n] = 0;
	char *end;
	double d = strtod(tmp, &end);
	if (end != tmp + n || !isfinite(d))
		return SALUS_EINVALID;
	/* half a unit of the last digit written; in exponent form the specification's
	 * example counts one digit more ("1e2": [95, 105), R4 search §3.1.1.4.1) */
	double half = 0.5 * pow(10.0, (double)(exp10 - decimals - (expo ? 1 : 0)));
	*v = d;
	/* the bounds as the decimals they are (0.5 - 0.05 is 0.45, not 0.44999999999999996),
	 * so a stored 0.45 is inside [0.45, 0.55) and a stored 0.55 outside it */
	char b[64];
	snprintf(b, sizeof b, "%.15g", d - half);
	*lo = strtod(b, NULL);
	snprintf(b, sizeof b, "%.15g", d + half);
	*hi = strtod(b, NULL);
	return SALUS_OK;
}

/* ---- the arena and row list ---------------------------------------------- */

struct salus_fhir_arena {
	struct salus_fhir_arena *next;
	size_t used, cap;
	char data[];
};

void salus_fhir_index_init(struct salus_fhir_index *x)
{
	memset(x, 0, sizeof *x);
	salus_buf_init(&x->text, TEXT_MAX);
	salus_buf_init(&x->content, TEXT_MAX);
}

void salus_fhir_index_release(struct salus_fhir_index *x)
{
	struct salus_fhir_arena *a = x->arena;
	while (a) {
		struct salus_fhir_arena *n = a->next;
		salus_free(a);
		a = n;
	}
	salus_free(x->rows);
	salus_buf_release(&x->text);
	salus_buf_release(&x->content);
	memset(x, 0, sizeof *x);
}

static const char *astr(struct salus_fhir_index *x, const char *s, size_t n)
{
	struct salus_fhir_arena *a = x->arena;
	if (!a || a->cap - a->used < n + 1) {
		size_t cap = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
		struct salus_fhir_arena *na = salus_malloc(sizeof *na + cap);
		if (!na)
			return NULL;
		na->next = a;
		na->used = 0;
		na->cap = cap;
		x->arena = a = na;
	}
	char *p = a->data + a->used;
	memcpy(p, s, n);
	p[n] = 0;
	a->used += n + 1;
	return p;
}

static struct salus_ix_row *row_new(struct salus_fhir_index *x, uint32_t param, int kind)
{
	if (x->ix.n == x->cap) {
		size_t cap = x->cap ? x->cap * 2 : 64;
		struct salus_ix_row *r = salus_realloc(x->rows, cap * sizeof *r);
		if (!r)
			return NULL;
		x->rows = r;
		x->cap = cap;
		x->ix.rows = r;
	}
	struct salus_ix_row *r = &x->rows[x->ix.n++];
	memset(r, 0, sizeof *r);
	r->param = param;
	r->kind = (uint16_t)kind;
	return r;
}

/* ---- the expression evaluator --------------------------------------------- */

struct node {
	json_t *v;
	const char *tname; /* type known from a choice key ("Quantity", "dateTime"), else NULL */
	size_t tlen;
};

struct nodes {
	struct node *v;
	size_t n, cap;
	bool heap; /* v was allocated here (else it is the caller's array, or NULL) */
};

#define TERM_NODES 16 /* nodes a step of one term keeps on the stack before allocating */

static int nodes_add(struct nodes *ns, json_t *v, const char *tname, size_t tlen)
{
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			int rc = nodes_add(ns, e, tname, tlen);
			if (rc)
				return rc;
		}
		return SALUS_OK;
	}
	if (ns->n == MAX_NODES)
		return SALUS_OK; /* silently capped */
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		struct node *nv = ns->heap ? salus_realloc(ns->v, cap * sizeof *nv) : salus_malloc(cap * sizeof *nv);
		if (!nv)
			return SALUS_ENOMEM;
		if (!ns->heap && ns->n)
			memcpy(nv, ns->v, ns->n * sizeof *nv);
		ns->v = nv;
		ns->cap = cap;
		ns->heap = true;
	}
	ns->v[ns->n++] = (struct node){v, tname, tlen};
	return SALUS_OK;
}

static bool is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* The names of the choice elements of every type ("value", "effective",
 * "deceased"...), from the definitions: a step whose name is none of them
 * cannot match a key name+Type in a valid resource, so step_name looks at
 * the object's other keys only for these.  Built once. */
#define CHOICE_SLOTS 512
static struct {
	const char *p;
	size_t n;
} choice_set[CHOICE_SLOTS];
static size_t choice_n;
static bool choice_all; /* the set could not be built: look at every name */
static pthread_once_t choice_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 16777619u;
	return h;
}

static void choice_add(const char *s, size_t n)
{
	for (uint32_t k = name_hash(s, n) & (CHOICE_SLOTS - 1);; k = (k + 1) & (CHOICE_SLOTS - 1)) {
		if (!choice_set[k].p) {
			if (++choice_n > CHOICE_SLOTS / 2) {
				choice_all = true;
				return;
			}
			choice_set[k].p = s;
			choice_set[k].n = n;
			return;
		}
		if (choice_set[k].n == n && !memcmp(choice_set[k].p, s, n))
			return;
	}
}

static void choice_walk(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent, int depth)
{
	if (depth > 32) {
		choice_all = true;
		return;
	}
	for (const struct salus_fhir_elem *e = salus_fhir_elem_first_child(t, parent); e && !choice_all;
	     e = salus_fhir_elem_next_sibling(e)) {
		struct salus_fhir_elem_info ei;
		salus_fhir_elem_get(e, &ei);
		if (ei.choice)
			choice_add(ei.name, ei.name_len);
		if (!ei.content_ref)
			choice_walk(t, e, depth + 1);
	}
}

static void choice_init(void)
{
	for (size_t i = 0; i < salus_fhir_type_count() && !choice_all; i++)
		choice_walk(salus_fhir_type_at(i), NULL, 0);
	if (!choice_n)
		choice_all = true;
}

static bool maybe_choice(const char *name, size_t nn)
{
	pthread_once(&choice_once, choice_init);
	if (choice_all)
		return true;
	for (uint32_t k = name_hash(name, nn) & (CHOICE_SLOTS - 1); choice_set[k].p; k = (k + 1) & (CHOICE_SLOTS - 1))
		if (choice_set[k].n == nn && !memcmp(choice_set[k].p, name, nn))
			return true;
	return false;
}

/* The values of choice element name[x] in object o (valueQuantity, valueDateTime...), each with its type
 * suffix: a complex type by its name, a primitive one by its lower-case name (valueDateTime → dateTime). */
static int choice_values(json_t *o, const char *name, size_t nn, struct nodes *out)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
	{
		/* most keys differ at once: no strlen for them */
		if (k[0] != name[0] || strncmp(k, name, nn) || k[nn] < 'A' || k[nn] > 'Z')
			continue;
		size_t kl = strlen(k);
		char t[64];
		bool known = salus_fhir_type_find(k + nn, kl - nn);
		if (!known && kl - nn < sizeof t) {
			memcpy(t, k + nn, kl - nn);
			t[0] = (char)(t[0] + 32);
			known = salus_fhir_type_find(t, kl - nn);
		}
		int rc = known ? nodes_add(out, v, k + nn, kl - nn) : SALUS_OK;
		if (rc)
			return rc;
	}
	return SALUS_OK;
}

/* Child `name` of an object: the key itself, or a choice key name+Type. */
static int step_name(struct nodes *out, const struct node *in, const char *name, size_t nn)
{
	char key[96];
	json_t *o = in->v, *v;
	if (!json_is_object(o) || nn >= sizeof key)
		return SALUS_OK;
	memcpy(key, name, nn);
	key[nn] = 0;
	if ((v = json_object_get(o, key)))
		return nodes_add(out, v, NULL, 0);
	if (!maybe_choice(name, nn))
		return SALUS_OK;
	return choice_values(o, name, nn, out);
}

static bool type_eq(const struct node *n, const char *t, size_t tn)
{
	if (n->tname)
		return n->tlen == tn && (n->tname[0] == t[0] || n->tname[0] == t[0] - 32 || n->tname[0] == t[0] + 32) &&
		       !memcmp(n->tname + 1, t + 1, tn - 1);
	/* no choice information: judge by shape */
	json_t *v = n->v;
	if (tn == 9 && !memcmp(t, "Reference", 9))
		return json_is_object(v) && (json_object_get(v, "reference") || json_object_get(v, "identifier"));
	if (tn == 15 && !memcmp(t, "CodeableConcept", 15))
		return json_is_object(v) && (json_object_get(v, "coding") || json_object_get(v, "text"));
	if (tn == 8 && !memcmp(t, "Quantity", 8))
		return json_is_object(v) && json_object_get(v, "value");
	if (tn == 6 && !memcmp(t, "Period", 6))
		return json_is_object(v) && (json_object_get(v, "start") || json_object_get(v, "end"));
	if (tn == 10 && !memcmp(t, "Identifier", 10))
		return json_is_object(v) && json_object_get(v, "value");
	return json_is_string(v) && t[0] >= 'a' && t[0] <= 'z';
}

/* "Type/id" (relative, or the last two segments of an absolute URL): the type. */
static bool ref_type(const char *ref, const char **t, size_t *tn)
{
	const char *h = strstr(ref, "/_history/");
	size_t n = h ? (size_t)(h - ref) : strlen(ref);
	const char *slash = NULL;
	for (size_t i = n; i-- > 0;)
		if (ref[i] == '/') {
			slash = ref + i;
			break;
		}
	if (!slash)
		return false;
	const char *ts = slash;
	while (ts > ref && ts[-1] != '/')
		ts--;
	if (!salus_fhir_is_resource_type(ts, (size_t)(slash - ts)))
		return false;
	*t = ts;
	*tn = (size_t)(slash - ts);
	return true;
}

/* Evaluate one union term (no top-level '|') on the resource. */
static int eval_term(const char *e, size_t n, json_t *res, const char *rtype, struct nodes *out)
{
	struct node ca[TERM_NODES], na[TERM_NODES]; /* the usual few nodes, without allocating */
	struct nodes cur = {ca, 0, TERM_NODES, false}, nxt = {na, 0, TERM_NODES, false};
	size_t i = 0;
	int rc = SALUS_OK;
	bool first = true;

	if ((rc = nodes_add(&cur, res, NULL, 0)))
		goto out_free;
	while (i < n) {
		char c = e[i];
		if (c == '(' || c == ')' || c == ' ' || c == '.') {
			i++;
			continue;
		}
		if (!is_ident(c)) {
			rc = SALUS_EINVALID;
			goto out_free;
		}
		size_t s = i;
		while (i < n && is_ident(e[i]))
			i++;
		const char *name = e + s;
		size_t nn = i - s;
		nxt.n = 0;
		if (first) {
			first = false;
			if ((nn == strlen(rtype) && !memcmp(name, rtype, nn)) || (nn == 8 && !memcmp(name, "Resource", 8)) ||
			    (nn == 14 && !memcmp(name, "DomainResource", 14)))
				continue;
			cur.n = 0; /* a term of another type */
			goto out_done;
		}
		if (i < n && e[i] == '(') {
			/* a function: find its argument */
			size_t depth = 1, a = i + 1, j = i + 1;
			for (; j < n && depth; j++)
				depth += e[j] == '(' ? 1 : e[j] == ')' ? -1 : 0;
			if (depth) {
				rc = SALUS_EINVALID;
				goto out_free;
			}
			const char *arg = e + a;
			size_t an = j - 1 - a;
			i = j;
			if ((nn == 6 && !memcmp(name, "ofType", 6)) || (nn == 2 && !memcmp(name, "as", 2))) {
				for (size_t k = 0; k < cur.n; k++)
					if (type_eq(&cur.v[k], arg, an) && (rc = nodes_add(&nxt, cur.v[k].v, arg, an)))
						goto out_free;
			} else if (nn == 5 && !memcmp(name, "where", 5) && an > 14 && !memcmp(arg, "resolve() is ", 13)) {
				const char *want = arg + 13;
				size_t wn = an - 13;
				for (size_t k = 0; k < cur.n; k++) {
					json_t *r = json_object_get(cur.v[k].v, "reference");
					const char *t;
					size_t tn;
					if (json_is_string(r) && ref_type(json_string_value(r), &t, &tn) && tn == wn &&
					    !memcmp(t, want, wn) && (rc = nodes_add(&nxt, cur.v[k].v, NULL, 0)))
						goto out_free;
				}
			} else if (nn == 5 && !memcmp(name, "where", 5)) {
				/* field='literal' */
				const char *eq = memchr(arg, '=', an);
				if (!eq || eq + 2 >= arg + an || eq[1] != '\'' || arg[an - 1] != '\'') {
					rc = SALUS_EINVALID;
					goto out_free;
				}
				char field[64], lit[128];
				size_t fn = (size_t)(eq - arg), ln = (size_t)(arg + an - 1 - (eq + 2));
				if (fn >= sizeof field || ln >= sizeof lit) {
					rc = SALUS_EINVALID;
					goto out_free;
				}
				memcpy(field, arg, fn);
				field[fn] = 0;
				memcpy(lit, eq + 2, ln);
				lit[ln] = 0;
				for (size_t k = 0; k < cur.n; k++) {
					json_t *f = json_object_get(cur.v[k].v, field);
					if (json_is_string(f) && !strcmp(json_string_value(f), lit) &&
					    (rc = nodes_add(&nxt, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen)))
						goto out_free;
				}
			} else if (nn == 6 && !memcmp(name, "exists", 6)) {
				for (size_t k = 0; k < cur.n; k++)
					if ((rc = nodes_add(&nxt, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen)))
						goto out_free;
			} else {
				rc = SALUS_EINVALID;
				goto out_free;
			}
		} else {
			for (size_t k = 0; k < cur.n; k++)
				if ((rc = step_name(&nxt, &cur.v[k], name, nn)))
					goto out_free;
		}
		struct nodes t = cur;
		cur = nxt;
		nxt = t;
		if (!cur.n)
			break;
	}
out_done:
	for (size_t k = 0; k < cur.n && !rc; k++)
		rc = nodes_add(out, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen);
out_free:
	if (cur.heap)
		salus_free(cur.v);
	if (nxt.heap)
		salus_free(nxt.v);
	return rc;
}

/* Evaluate a whole expression (terms separated by top-level '|'). */
static int eval_expr(const char *e, json_t *res, const char *rtype, struct nodes *out)
{
	size_t n = strlen(e), s = 0, depth = 0;
	/* the one boolean expression: Patient.deceased.exists() and Patient.deceased != false */
	const char *and = strstr(e, " and ");
	if (and)
		n = (size_t)(and - e);
	for (size_t i = 0; i <= n; i++) {
		if (i < n && e[i] == '(')
			depth++;
		else if (i < n && e[i] == ')')
			depth--;
		if (i == n || (e[i] == '|' && depth == 0)) {
			int rc = eval_term(e + s, i - s, res, rtype, out);
			if (rc)
				return rc;
			s = i + 1;
		}
	}
	return SALUS_OK;
}

/* ---- values to rows ------------------------------------------------------- */

struct ctx {
	struct salus_fhir_index *x;
	const char *type;
	struct salus_buf norm;
	uint16_t group;
	const char *code_sys; /* the implicit system of the `code` values being indexed, or NULL */
	bool contained;       /* indexing a contained resource: contained parameter ids */
	bool component;       /* indexing a composite's component: no :text / :of-type rows, which no
			       * composite search reads (its components are matched on their own ids) */
};

static uint32_t pid(const struct ctx *c, uint32_t p)
{
	return c->contained ? salus_fhir_search_contained_id(p) : p;
}

static int add_string(struct ctx *c, uint32_t p, const char *s, size_t n)
{
	int rc;
	if (!n || (c->component && (p & (SALUS_SQ_TEXT_BIT | SALUS_SQ_TYPE_BIT))))
		return SALUS_OK;
	if ((rc = salus_fhir_norm(s, n, &c->norm)))
		return rc == SALUS_EINVALID || rc == SALUS_ETOOLARGE ? SALUS_OK : rc;
	struct salus_ix_row *r = row_new(c->x, p, SALUS_IX_STRING);
	if (!r || !(r->a = astr(c->x, c->norm.p, c->norm.n)) || !(r->b = astr(c->x, s, n)))
		return SALUS_ENOMEM;
	r->group = c->group;
	return SALUS_OK;
}

static int add_string_json(struct ctx *c, uint32_t p, json_t *v)
{
	if (json_is_string(v))
		return add_string(c, p, json_string_value(v), json_string_length(v));
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			int rc = add_string_json(c, p, e);
			if (rc)
				return rc;
		}
	}
	return SALUS_OK;
}

static int add_token(struct ctx *c, uint32_t p, const char *sys, const char *code)
{
	if (c->component && (p & (SALUS_SQ_TEXT_BIT | SALUS_SQ_TYPE_BIT)))
		return SALUS_OK;
	struct salus_ix_row *r = row_new(c->x, p, SALUS_IX_TOKEN);
	if (!r || !(r->a = astr(c->x, sys ? sys : "", sys ? strlen(sys) : 0)) || !(r->b = astr(c->x, code, strlen(code))))
		return SALUS_ENOMEM;
	r->group = c->group;
	return SALUS_OK;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int index_coding(struct ctx *c, uint32_t p, json_t *cd)
{
	const char *code = jstr(cd, "code"), *sys = jstr(cd, "system"), *disp = jstr(cd, "display");
	int rc = SALUS_OK;
	if (code || sys) /* a system without a code still answers system| (and :missing) */
		rc = add_token(c, p, sys, code ? code : "");
	if (!rc && disp)
		rc = add_string(c, p | SALUS_SQ_TEXT_BIT, disp, strlen(disp));
	return rc;
}

static bool contact_system(const char *s)
{
	static const char *const k[] = {"phone", "fax", "email", "pager", "url", "sms", "other"};
	for (size_t i = 0; s && i < sizeof k / sizeof *k; i++)
		if (!strcmp(s, k[i]))
			return true;
	return false;
}

static int index_token(struct ctx *c, uint32_t p, json_t *v)
{
	int rc = SALUS_OK;
	if (json_is_string(v))
		return add_token(c, p, c->code_sys, json_string_value(v));
	if (json_is_boolean(v))
		return add_token(c, p, NULL, json_is_true(v) ? "true" : "false");
	if (!json_is_object(v))
		return SALUS_OK;
	json_t *coding = json_object_get(v, "coding");
	const char *text = jstr(v, "text");
	if (json_is_array(coding) || (text && !json_object_get(v, "value"))) {
		size_t i;
		json_t *cd;
		bool same = false; /* the text is a coding's display: the very same :text row */
		json_array_foreach(coding, i, cd)
		{
			if ((rc = index_coding(c, p, cd)))
				return rc;
			const char *disp = text ? jstr(cd, "display") : NULL;
			same |= disp && !strcmp(disp, text);
		}
		if (text && !same)
			rc = add_string(c, p | SALUS_SQ_TEXT_BIT, text, strlen(text));
		return rc;
	}
	if (jstr(v, "code"))
		return index_coding(c, p, v);
	const char *value = jstr(v, "value"), *sys = jstr(v, "system");
	if (!value && sys && !json_object_get(v, "type") && !contact_system(sys))
		return index_coding(c, p, v); /* a Coding or Identifier with a system only */
	if (!value)
		return SALUS_OK;
	if (contact_system(sys) && !json_object_get(v, "type"))
		return add_token(c, p, sys, value); /* ContactPoint: system is phone/email/... */
	if ((rc = add_token(c, p, sys, value)))
		return rc;
	/* Identifier.type for :of-type (rows "code|value" under the type system) */
	json_t *type = json_object_get(v, "type");
	if (json_is_object(type)) {
		size_t i;
		json_t *cd;
		json_array_foreach(json_object_get(type, "coding"), i, cd)
		{
			const char *tc = jstr(cd, "code"), *ts = jstr(cd, "system");
			if (!tc)
				continue;
			struct salus_buf b;
			salus_buf_init(&b, 8192);
			rc = salus_buf_addf(&b, "%s|%s", tc, value);
			if (!rc)
				rc = add_token(c, p | SALUS_SQ_TYPE_BIT, ts, b.p);
			salus_buf_release(&b);
			if (rc)
				return rc;
		}
		if ((text = jstr(type, "text")))
			rc = add_string(c, p | SALUS_SQ_TEXT_BIT, text, strlen(text));
	}
	return rc;
}

static int add_date(struct ctx *c, uint32_t p, int64_t lo, int64_t hi)
{
	struct salus_ix_row *r = row_new(c->x, p, SALUS_IX_DATE);
	if (!r)
		return SALUS_ENOMEM;
	r->lo = lo;
	r->hi = hi;
	r->group = c->group;
	return SALUS_OK;
}

static int index_date(struct ctx *c, uint32_t p, json_t *v)
{
	int64_t lo, hi, lo2, hi2;
	if (json_is_string(v)) {
		if (!salus_fhir_date_range(json_string_value(v), json_string_length(v), &lo, &hi))
			return add_date(c, p, lo, hi);
		return SALUS_OK;
	}
	if (!json_is_object(v))
		return SALUS_OK;
	const char *s = jstr(v, "start"), *e = jstr(v, "end");
	if (s || e) { /* Period: open ends are unbounded */
		lo = INT64_MIN;
		hi = INT64_MAX;
		if (s && salus_fhir_date_range(s, strlen(s), &lo, &hi2))
			return SALUS_OK;
		if (e && salus_fhir_date_range(e, strlen(e), &lo2, &hi))
			return SALUS_OK;
		if (!e)
			hi = INT64_MAX;
		return add_date(c, p, lo, hi);
	}
	/* Timing: events, and repeat.boundsPeriod */
	json_t *ev = json_object_get(v, "event"), *rep = json_object_get(v, "repeat");
	size_t i;
	json_t *d;
	int rc = SALUS_OK;
	json_array_foreach(ev, i, d)
	{
		if ((rc = index_date(c, p, d)))
			return rc;
	}
	if (json_is_object(rep) && json_object_get(rep, "boundsPeriod"))
		rc = index_date(c, p, json_object_get(rep, "boundsPeriod"));
	return rc;
}

static int add_num(struct ctx *c, uint32_t p, int kind, double v, const char *sys, const char *code,
		   const char *unit)
{
	struct salus_ix_row *r = row_new(c->x, p, kind);
	if (!r)
		return SALUS_ENOMEM;
	r->v = v;
	r->vlo = v;
	r->vhi = v;
	r->group = c->group;
	if ((sys && !(r->a = astr(c->x, sys, strlen(sys)))) || (code && !(r->b = astr(c->x, code, strlen(code)))) ||
	    (unit && !(r->c = astr(c->x, unit, strlen(unit)))))
		return SALUS_ENOMEM;
	return SALUS_OK;
}

static int index_quantity(struct ctx *c, uint32_t p, int kind, json_t *v)
{
	if (json_is_number(v))
		return add_num(c, p, kind, json_number_value(v), NULL, NULL, NULL);
	if (!json_is_object(v))
		return SALUS_OK;
	json_t *val = json_object_get(v, "value");
	if (json_is_number(val)) {
		const char *cur = jstr(v, "currency");
		if (cur) /* Money */
			return add_num(c, p, kind, json_number_value(val), "urn:iso:std:iso:4217", cur, cur);
		return add_num(c, p, kind, json_number_value(val), jstr(v, "system"), jstr(v, "code"), jstr(v, "unit"));
	}
	/* Range: both ends */
	int rc = SALUS_OK;
	json_t *low = json_object_get(v, "low"), *high = json_object_get(v, "high");
	if (json_is_object(low))
		rc = index_quantity(c, p, kind, low);
	if (!rc && json_is_object(high))
		rc = index_quantity(c, p, kind, high);
	return rc;
}

static int index_reference(struct ctx *c, uint32_t p, json_t *v)
{
	const char *ref = NULL, *isys = NULL, *ival = NULL;
	if (json_is_string(v)) {
		ref = json_string_value(v); /* canonical */
	} else if (json_is_object(v)) {
		ref = jstr(v, "reference");
		json_t *ident = json_object_get(v, "identifier");
		if (json_is_object(ident)) {
			isys = jstr(ident, "system");
			ival = jstr(ident, "value");
		}
	}
	if (!ref && !ival)
		return SALUS_OK;
	if (ref && ref[0] == '#')
		return SALUS_OK; /* contained */
	struct salus_ix_row *r = row_new(c->x, p, SALUS_IX_REFERENCE);
	if (!r)
		return SALUS_ENOMEM;
	r->group = c->group;
	if (isys && !(r->e = astr(c->x, isys, strlen(isys))))
		return SALUS_ENOMEM;
	if (ival && !(r->f = astr(c->x, ival, strlen(ival))))
		return SALUS_ENOMEM;
	if (!ref)
		return SALUS_OK;
	const char *colon = strchr(ref, ':'), *slash = strchr(ref, '/');
	bool absolute = colon && (!slash || colon < slash);
	const char *t;
	size_t tn;
	if (!absolute && ref_type(ref, &t, &tn) && t == ref) {
		const char *idp = ref + tn + 1, *h = strchr(idp, '/');
		size_t idn = h ? (size_t)(h - idp) : strlen(idp);
		if (!(r->a = astr(c->x, t, tn)) || !(r->b = astr(c->x, idp, idn)))
			return SALUS_ENOMEM;
		if (h && !strncmp(h, "/_history/", 10) && !(r->d = astr(c->x, h + 10, strlen(h + 10))))
			return SALUS_ENOMEM;
		return SALUS_OK;
	}
	/* absolute or canonical: url[|version]; the type of a RESTful URL too */
	const char *bar = strchr(ref, '|');
	size_t un = bar ? (size_t)(bar - ref) : strlen(ref);
	if (!(r->c = astr(c->x, ref, un)))
		return SALUS_ENOMEM;
	if (bar && !(r->d = astr(c->x, bar + 1, strlen(bar + 1))))
		return SALUS_ENOMEM;
	if (ref_type(ref, &t, &tn) && !(r->a = astr(c->x, t, tn)))
		return SALUS_ENOMEM;
	return SALUS_OK;
}

static int index_value(struct ctx *c, uint32_t p, int sptype, json_t *v)
{
	switch (sptype) {
	case SALUS_FHIR_SP_STRING:
		if (json_is_string(v))
			return add_string(c, p, json_string_value(v), json_string_length(v));
		if (json_is_object(v)) {
			static const char *const parts[] = {"text",   "family",     "given",   "prefix",  "suffix",
							    "line",   "city",       "district", "state",  "postalCode",
							    "country", "value"};
			for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
				int rc = add_string_json(c, p, json_object_get(v, parts[i]));
				if (rc)
					return rc;
			}
		}
		return SALUS_OK;
	case SALUS_FHIR_SP_TOKEN: return index_token(c, p, v);
	case SALUS_FHIR_SP_DATE: return index_date(c, p, v);
	case SALUS_FHIR_SP_NUMBER: return index_quantity(c, p, SALUS_IX_NUMBER, v);
	case SALUS_FHIR_SP_QUANTITY: return index_quantity(c, p, SALUS_IX_QUANTITY, v);
	case SALUS_FHIR_SP_REFERENCE: return index_reference(c, p, v);
	case SALUS_FHIR_SP_URI:
		if (json_is_string(v)) {
			struct salus_ix_row *r = row_new(c->x, p, SALUS_IX_URI);
			if (!r || !(r->a = astr(c->x, json_string_value(v), json_string_length(v))))
				return SALUS_ENOMEM;
			r->group = c->group;
		}
		return SALUS_OK;
	default: return SALUS_OK;
	}
}

/* composite_whole: a composite parameter's rows are written per element
 * (one group), and a search on it joins all its components within a group
 * (store_index.c, SALUS_SQ_COMPOSITE; `:missing` and `_sort` are refused on
 * composites).  A group in which some component has no value can therefore
 * never match, and its rows are not kept: an Observation with a
 * valueQuantity writes no code-value-string, code-value-date or
 * code-value-concept rows (about a tenth of the Synthea rows).  Nor does a
 * component write the :text / :of-type rows of a token (ctx.component). */
/* One selected node: a SampledData is no number or quantity (it has no value;
 * valid data never indexed one) and gives no rows, so that the terms
 * `X.ofType(SampledData)` of the quantity parameters select nothing by
 * construction (derived parameters, below). */
static int index_node(struct ctx *c, uint32_t p, int sptype, const struct node *n)
{
	if ((sptype == SALUS_FHIR_SP_QUANTITY || sptype == SALUS_FHIR_SP_NUMBER) && n->tname && n->tlen == 11 &&
	    !memcmp(n->tname, "SampledData", 11))
		return SALUS_OK;
	return index_value(c, p, sptype, n->v);
}

static int index_composite(struct ctx *c, const struct salus_fhir_sp *sp, const struct salus_fhir_sp_info *info,
			   json_t *res)
{
	struct nodes ns = {0};
	int rc = eval_expr(info->expression, res, c->type, &ns);
	if (rc == SALUS_EINVALID)
		rc = SALUS_OK;
	uint16_t saved = c->group; /* a contained resource's group (_contained correlation) */
	for (size_t k = 0; k < ns.n && !rc; k++) {
		c->group = ++c->x->group;
		size_t at = c->x->ix.n;
		bool whole = true;
		for (size_t i = 0; i < info->ncomponents && !rc; i++) {
			const char *code, *expr;
			if (salus_fhir_sp_component(sp, i, &code, &expr))
				break;
			const struct salus_fhir_sp *csp = salus_fhir_sp_find(c->type, strlen(c->type), code, strlen(code));
			struct salus_fhir_sp_info ci;
			size_t before = c->x->ix.n;
			if (!csp)
				continue;
			salus_fhir_sp_get(csp, &ci);
			/* the relative expression, evaluated on the element: prefix it with the type */
			struct salus_buf e;
			salus_buf_init(&e, 4096);
			struct nodes cn = {0};
			if (!strcmp(expr, "$this"))
				rc = salus_buf_addf(&e, "%s", c->type);
			else
				rc = salus_buf_addf(&e, "%s.%s", c->type, expr);
			if (!rc)
				rc = eval_expr(e.p, ns.v[k].v, c->type, &cn);
			if (rc == SALUS_EINVALID)
				rc = SALUS_OK;
			c->component = true;
			for (size_t j = 0; j < cn.n && !rc; j++)
				rc = index_node(c, pid(c, comp_id(c->type, info->code, i)), ci.type, &cn.v[j]);
			c->component = false;
			whole &= c->x->ix.n > before;
			salus_free(cn.v);
			salus_buf_release(&e);
		}
		if (!whole)
			c->x->ix.n = at; /* see composite_whole */
		c->group = saved;
	}
	salus_free(ns.v);
	return rc;
}

/* Text of an XHTML div without its tags (entities left as written). */
static int add_div_text(struct salus_buf *b, const char *s)
{
	int rc = SALUS_OK;
	bool tag = false;
	for (; *s && !rc; s++) {
		if (*s == '<')
			tag = true, rc = salus_buf_addc(b, ' ');
		else if (*s == '>')
			tag = false;
		else if (!tag)
			rc = salus_buf_addc(b, *s);
	}
	return rc ? rc : salus_buf_addc(b, ' ');
}

static int add_all_text(struct salus_buf *b, json_t *v, int depth)
{
	int rc = SALUS_OK;
	if (depth > 64)
		return SALUS_OK;
	if (json_is_string(v)) {
		rc = salus_buf_add(b, json_string_value(v), json_string_length(v));
		return rc ? rc : salus_buf_addc(b, ' ');
	}
	if (json_is_array(v)) {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if ((rc = add_all_text(b, e, depth + 1)))
				return rc;
		}
	} else if (json_is_object(v)) {
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			if (!strcmp(k, "div"))
				rc = json_is_string(e) ? add_div_text(b, json_string_value(e)) : 0;
			else if (strcmp(k, "resourceType") && strcmp(k, "id") && strcmp(k, "meta") && strcmp(k, "url") &&
				 strcmp(k, "system") && strcmp(k, "reference"))
				rc = add_all_text(b, e, depth + 1);
			if (rc)
				return rc;
		}
	}
	return rc;
}

/* The patient whose record key seals the resource (store.h, salus_ix.patient):
 * the first local Patient reference among the rows of the type's Patient
 * compartment parameters, in the CompartmentDefinition's order (subject /
 * patient before performer, author...).  A Patient owns itself (the store
 * knows its id); NULL when the type is not in the compartment or no such
 * reference is present. */
static const char *compartment_owner(const struct salus_fhir_index *x, const struct salus_fhir_type *t,
				     const char *type)
{
	if (!strcmp(type, "Patient"))
		return NULL;
	for (size_t k = 0; k < salus_fhir_compartment_count(t); k++) {
		const char *code = salus_fhir_compartment_param_at(t, k);
		uint32_t p = code ? salus_fhir_search_param_id(type, code) : 0;
		for (size_t i = 0; p && i < x->ix.n; i++) {
			const struct salus_ix_row *r = &x->rows[i];
			if (r->kind == SALUS_IX_REFERENCE && r->a && !strcmp(r->a, "Patient") && row_of(r, p) && r->b &&
			    *r->b)
				return r->b;
		}
	}
	return NULL;
}

/* The system of a token parameter's `code` values: when its expression is one
 * path to an element of type code with a required binding whose expansion
 * has a single code system (Patient.gender → administrative-gender), that
 * system, so that system|code and :in match as on a Coding; else NULL. */
static const char *code_system(const char *expr)
{
	for (const char *p = expr; *p; p++)
		if (!is_ident(*p) && *p != '.')
			return NULL;
	const struct salus_fhir_elem *e = salus_fhir_elem_find(expr, strlen(expr));
	struct salus_fhir_elem_info ei;
	const char *tc = e ? salus_fhir_elem_type_code(e, 0) : NULL;
	if (!tc || strcmp(tc, "code"))
		return NULL;
	salus_fhir_elem_get(e, &ei);
	if (ei.strength != SALUS_FHIR_BIND_REQUIRED || !ei.valueset || !salus_fhir_vs_expanded(ei.valueset))
		return NULL;
	const char *sys = NULL, *s, *code;
	for (size_t i = 0; !salus_fhir_vs_code_at(ei.valueset, i, &s, &code); i++) {
		if (sys && strcmp(sys, s))
			return NULL;
		sys = s;
	}
	return sys;
}

/* ---- the expressions compiled per resource type ----------------------------
 *
 * eval_expr above interprets an expression's text on every resource.  The
 * same expressions are compiled once per type into lists of steps (cx_*),
 * with each parameter's id, kind and implicit code system worked out once,
 * and evaluated with the same semantics: a term of another type selects
 * nothing, a term stops at the first step that selects nothing, and a step
 * this subset does not understand (OP_INVALID) makes the expression
 * SALUS_EINVALID when evaluation reaches it — after the rows of the terms
 * before it, as eval_expr does.  The compiled form is built for every type
 * at the first index build; when that fails (memory), the interpreter runs.
 * test_search compares the two on every official example. */

enum cx_opcode { OP_NAME, OP_OFTYPE, OP_WHERE_RESOLVE, OP_WHERE_EQ, OP_EXISTS, OP_INVALID };

struct cx_op {
	uint8_t op;
	bool choice;  /* OP_NAME: a choice element somewhere (maybe_choice) */
	bool never;   /* OP_NAME: a name too long for step_name: selects nothing */
	const char *a; /* OP_NAME: the name; OP_OFTYPE: the type; OP_WHERE_RESOLVE: the type */
	size_t an;
	char field[64], lit[128]; /* OP_WHERE_EQ */
};

struct cx_term {
	struct cx_op *ops;
	size_t n;
	bool other; /* a term of another type: selects nothing */
};

struct cx_expr {
	struct cx_term *t;
	size_t n;
};

enum cx_kind { CK_SKIP, CK_NEAR, CK_COMPOSITE, CK_VALUES };

struct cx_comp {
	bool stop;   /* salus_fhir_sp_component failed: no further components */
	bool absent; /* no such parameter: skipped */
	enum salus_fhir_sp_type type;
	uint32_t id;
	struct cx_expr e;
};

struct cx_param {
	enum cx_kind kind;
	enum salus_fhir_sp_type type;
	uint32_t id;
	bool deceased;        /* the boolean Patient.deceased expression */
	bool derived;         /* its rows are other parameters' (struct salus_sq_alias): none written */
	const char *code_sys; /* code_system(expression) for token parameters */
	struct cx_expr e;
	struct cx_comp *comps;
	size_t ncomps;
};

struct cx_type {
	const struct salus_fhir_type *t;
	struct cx_param *p;
	size_t n;
};

struct cx_blk {
	struct cx_blk *next;
	size_t used, cap;
	max_align_t data[];
};

struct cx_all {
	struct cx_type *slots; /* open addressing by type pointer */
	size_t cap;
	struct cx_blk *mem;
};

static void *cx_alloc(struct cx_all *all, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
	struct cx_blk *b = all->mem;
	if (!b || b->cap - b->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		if (!(b = salus_malloc(sizeof *b + cap)))
			return NULL;
		b->next = all->mem;
		b->used = 0;
		b->cap = cap;
		all->mem = b;
	}
	void *p = (char *)b->data + b->used;
	b->used += n;
	memset(p, 0, n);
	return p;
}

static void cx_free(struct cx_all *all)
{
	for (struct cx_blk *b = all->mem, *nb; b; b = nb) {
		nb = b->next;
		salus_free(b);
	}
	salus_free(all->slots);
	salus_free(all);
}

/* The steps of one union term, parsed as eval_term parses it.  ops NULL:
 * count them only.  Returns the number of steps. */
static size_t cx_term_parse(const char *e, size_t n, const char *rtype, struct cx_op *ops, bool *other)
{
	size_t i = 0, k = 0;
	bool first = true;
	*other = false;
#define EMIT(...)                                                  \
	do {                                                       \
		if (ops)                                           \
			ops[k] = (struct cx_op){__VA_ARGS__};      \
		k++;                                               \
	} while (0)
	while (i < n) {
		char c = e[i];
		if (c == '(' || c == ')' || c == ' ' || c == '.') {
			i++;
			continue;
		}
		if (!is_ident(c)) {
			EMIT(.op = OP_INVALID);
			return k;
		}
		size_t s = i;
		while (i < n && is_ident(e[i]))
			i++;
		const char *name = e + s;
		size_t nn = i - s;
		if (first) {
			first = false;
			if ((nn == strlen(rtype) && !memcmp(name, rtype, nn)) || (nn == 8 && !memcmp(name, "Resource", 8)) ||
			    (nn == 14 && !memcmp(name, "DomainResource", 14)))
				continue;
			*other = true;
			return k;
		}
		if (i < n && e[i] == '(') {
			size_t depth = 1, a = i + 1, j = i + 1;
			for (; j < n && depth; j++)
				depth += e[j] == '(' ? 1 : e[j] == ')' ? -1 : 0;
			if (depth) {
				EMIT(.op = OP_INVALID);
				return k;
			}
			const char *arg = e + a;
			size_t an = j - 1 - a;
			i = j;
			if ((nn == 6 && !memcmp(name, "ofType", 6)) || (nn == 2 && !memcmp(name, "as", 2))) {
				EMIT(.op = OP_OFTYPE, .a = arg, .an = an);
			} else if (nn == 5 && !memcmp(name, "where", 5) && an > 14 && !memcmp(arg, "resolve() is ", 13)) {
				EMIT(.op = OP_WHERE_RESOLVE, .a = arg + 13, .an = an - 13);
			} else if (nn == 5 && !memcmp(name, "where", 5)) {
				const char *eq = memchr(arg, '=', an);
				if (!eq || eq + 2 >= arg + an || eq[1] != '\'' || arg[an - 1] != '\'') {
					EMIT(.op = OP_INVALID);
					return k;
				}
				size_t fn = (size_t)(eq - arg), ln = (size_t)(arg + an - 1 - (eq + 2));
				if (fn >= sizeof ops->field || ln >= sizeof ops->lit) {
					EMIT(.op = OP_INVALID);
					return k;
				}
				if (ops) {
					ops[k] = (struct cx_op){.op = OP_WHERE_EQ};
					memcpy(ops[k].field, arg, fn);
					memcpy(ops[k].lit, eq + 2, ln);
				}
				k++;
			} else if (nn == 6 && !memcmp(name, "exists", 6)) {
				EMIT(.op = OP_EXISTS);
			} else {
				EMIT(.op = OP_INVALID);
				return k;
			}
		} else {
			EMIT(.op = OP_NAME, .a = name, .an = nn, .choice = maybe_choice(name, nn), .never = nn >= 96);
		}
	}
#undef EMIT
	return k;
}

/* Compile expression e (owned by the definitions or by all) for rtype. */
static int cx_expr_compile(struct cx_all *all, const char *e, const char *rtype, struct cx_expr *out)
{
	size_t n = strlen(e), s = 0, depth = 0, nt = 1;
	const char *and = strstr(e, " and ");
	if (and)
		n = (size_t)(and - e);
	for (size_t i = 0; i < n; i++) {
		depth += e[i] == '(' ? 1 : 0;
		depth -= e[i] == ')' ? 1 : 0;
		nt += e[i] == '|' && depth == 0;
	}
	if (!(out->t = cx_alloc(all, nt * sizeof *out->t)))
		return SALUS_ENOMEM;
	depth = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && e[i] == '(')
			depth++;
		else if (i < n && e[i] == ')')
			depth--;
		if (i == n || (e[i] == '|' && depth == 0)) {
			struct cx_term *t = &out->t[out->n++];
			t->n = cx_term_parse(e + s, i - s, rtype, NULL, &t->other);
			if (t->n && !(t->ops = cx_alloc(all, t->n * sizeof *t->ops)))
				return SALUS_ENOMEM;
			cx_term_parse(e + s, i - s, rtype, t->ops, &t->other);
			s = i + 1;
		}
	}
	return SALUS_OK;
}

/* ---- derived parameters (store.h, struct salus_sq_alias) -------------------
 *
 * A parameter whose rows would be exactly other parameters' rows is not
 * stored; the store's query compiler reads those instead.  Worked out from
 * the definitions, per type, on the terms of the expressions (the `|` parts
 * that apply to the type, spaces trimmed, compared as text):
 *  - P = Q.where(resolve() is T), Q a reference parameter of one term: P's
 *    rows are Q's reference rows whose target type is T (the same ref_type
 *    decides both; Observation.patient = subject to a Patient);
 *  - every term of P is a term of some parameters Q1..Qn of P's kind, all of
 *    whose terms are P's: P's rows are the union of theirs (rows are per
 *    selected element, a set per parameter); for a token not when any has an
 *    implicit code system (code_system()); for a composite also each
 *    component the same (relative expression and kind), its component ids
 *    the union of theirs (combo-code = code ∪ component-code;
 *    in R4 combo-code-value-quantity has the very terms and components of
 *    component-code-value-quantity: of two such the first keeps its rows);
 * and only when every term is inside the evaluator's subset (no step that
 * ends the expression), P is not Patient.deceased, and no base is itself
 * derived.  test_search_index checks, on every official example and the
 * Synthea bundles, that the rows written without aliases for each derived
 * parameter are exactly the rows the derivation reads. */

#define AL_TERMS 16

struct al_param {
	struct salus_fhir_sp_info info;
	const struct salus_fhir_sp *sp;
	uint32_t id;
	const char *ts[AL_TERMS];
	size_t tn[AL_TERMS];
	size_t k;
	bool ok;   /* its terms are known and inside the subset */
	bool cand; /* derivable (before the no-chains rule) */
	bool whole; /* a composite on the resource itself: component k is all of base b[k] */
	size_t nb; /* its bases (indexes), for a candidate */
	size_t b[AL_TERMS];
	char ttype[72];
};

struct al_table {
	struct salus_sq_alias *v; /* by param, then base */
	size_t n, cap;
	uint32_t *skip; /* sorted: the ids extraction leaves out (derived params, their composites) */
	size_t nskip, skip_cap;
	char *types; /* the ttype strings */
	size_t ntypes, types_cap;
	struct salus_sq_aliases pub;
};

static struct al_table al_tab;
static pthread_once_t al_once_ctl = PTHREAD_ONCE_INIT;
static bool al_ready;     /* al_tab built */
static _Atomic bool al_off; /* tests: store and query every parameter's own rows */

static bool al_split(const char *e, const char *rtype, struct al_param *ap)
{
	size_t n = strlen(e), s = 0, depth = 0;
	ap->k = 0;
	if (strstr(e, " and "))
		return false;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && e[i] == '(')
			depth++;
		else if (i < n && e[i] == ')')
			depth--;
		if (i < n && !(e[i] == '|' && depth == 0))
			continue;
		const char *a = e + s;
		size_t l = i - s;
		s = i + 1;
		while (l && *a == ' ')
			a++, l--;
		while (l && a[l - 1] == ' ')
			l--;
		/* (X) is X: parentheses are skipped by the evaluator */
		while (l >= 2 && a[0] == '(' && a[l - 1] == ')') {
			size_t d = 0, j = 0;
			for (; j < l; j++) {
				d += a[j] == '(' ? 1 : 0;
				d -= a[j] == ')' ? 1 : 0;
				if (!d)
					break;
			}
			if (j != l - 1)
				break; /* (a).b(c): not one outer pair */
			a++;
			l -= 2;
		}
		if (!l)
			return false;
		static const char sd[] = ".ofType(SampledData)";
		if ((ap->info.type == SALUS_FHIR_SP_QUANTITY || ap->info.type == SALUS_FHIR_SP_NUMBER) &&
		    l > sizeof sd - 1 && !memcmp(a + l - (sizeof sd - 1), sd, sizeof sd - 1))
			continue; /* gives no rows (index_node) */
		struct cx_op ops[24];
		bool other;
		size_t no = cx_term_parse(a, l, rtype, NULL, &other);
		if (no > sizeof ops / sizeof *ops)
			return false;
		cx_term_parse(a, l, rtype, ops, &other);
		for (size_t j = 0; j < no; j++)
			if (ops[j].op == OP_INVALID)
				return false;
		if (other)
			continue; /* selects nothing here */
		if (ap->k >= AL_TERMS)
			return false;
		ap->ts[ap->k] = a;
		ap->tn[ap->k++] = l;
	}
	return ap->k > 0;
}

static bool al_has_term(const struct al_param *ap, const char *t, size_t n)
{
	for (size_t i = 0; i < ap->k; i++)
		if (ap->tn[i] == n && !memcmp(ap->ts[i], t, n))
			return true;
	return false;
}

/* The composites p and q have the same components (relative expression and kind). */
static bool al_same_comps(const char *type, const struct al_param *p, const struct al_param *q)
{
	if (p->info.ncomponents != q->info.ncomponents || !p->info.ncomponents)
		return false;
	for (size_t k = 0; k < p->info.ncomponents; k++) {
		const char *pc, *pe, *qc, *qe;
		if (salus_fhir_sp_component(p->sp, k, &pc, &pe) || salus_fhir_sp_component(q->sp, k, &qc, &qe) ||
		    strcmp(pe, qe))
			return false;
		const struct salus_fhir_sp *ps = salus_fhir_sp_find(type, strlen(type), pc, strlen(pc));
		const struct salus_fhir_sp *qs = salus_fhir_sp_find(type, strlen(type), qc, strlen(qc));
		if (!ps || !qs)
			return false;
		struct salus_fhir_sp_info pi, qi;
		salus_fhir_sp_get(ps, &pi);
		salus_fhir_sp_get(qs, &qi);
		if (pi.type != qi.type)
			return false;
	}
	return true;
}

static void al_candidate(const char *type, struct al_param *ps, size_t n, size_t ip)
{
	struct al_param *p = &ps[ip];
	static const char wr[] = ".where(resolve() is ";
	const size_t wl = sizeof wr - 1;
	if (p->info.type == SALUS_FHIR_SP_REFERENCE && p->k == 1 && p->tn[0] > wl + 1 && p->ts[0][p->tn[0] - 1] == ')') {
		/* Q.where(resolve() is T) */
		const char *t = p->ts[0];
		size_t tl = p->tn[0];
		const char *w = NULL;
		for (size_t i = 0; i + wl <= tl; i++)
			if (!memcmp(t + i, wr, wl))
				w = t + i;
		size_t bl = w ? (size_t)(w - t) : 0, xl = w ? tl - bl - wl - 1 : 0;
		if (w && xl && xl < sizeof p->ttype && salus_fhir_is_resource_type(w + wl, xl)) {
			for (size_t iq = 0; iq < n; iq++) {
				const struct al_param *q = &ps[iq];
				if (iq == ip || !q->ok || q->info.type != SALUS_FHIR_SP_REFERENCE || q->k != 1 ||
				    q->tn[0] != bl || memcmp(q->ts[0], t, bl))
					continue;
				p->cand = true;
				p->nb = 1;
				p->b[0] = iq;
				memcpy(p->ttype, w + wl, xl);
				p->ttype[xl] = 0;
				return;
			}
		}
	}
	/* a composite on the resource itself (expression: the type): its one group is
	 * the resource, each component the whole of another parameter */
	if (p->info.type == SALUS_FHIR_SP_COMPOSITE && p->k == 1 && p->tn[0] == strlen(type) &&
	    !memcmp(p->ts[0], type, p->tn[0]) && p->info.ncomponents && p->info.ncomponents <= AL_TERMS) {
		size_t nb = 0;
		for (size_t k = 0; k < p->info.ncomponents; k++) {
			const char *cc, *ce;
			char full[256];
			if (salus_fhir_sp_component(p->sp, k, &cc, &ce))
				break;
			const struct salus_fhir_sp *csp = salus_fhir_sp_find(type, strlen(type), cc, strlen(cc));
			int fl = !strcmp(ce, "$this") ? snprintf(full, sizeof full, "%s", type)
						      : snprintf(full, sizeof full, "%s.%s", type, ce);
			if (!csp || fl <= 0 || (size_t)fl >= sizeof full)
				break;
			struct salus_fhir_sp_info ci;
			salus_fhir_sp_get(csp, &ci);
			size_t iq = n;
			for (size_t j = 0; j < n && iq == n; j++) {
				const struct al_param *q = &ps[j];
				if (q->ok && q->info.type == ci.type && q->info.type != SALUS_FHIR_SP_COMPOSITE && q->k == 1 &&
				    q->tn[0] == (size_t)fl && !memcmp(q->ts[0], full, (size_t)fl) &&
				    !(q->info.type == SALUS_FHIR_SP_TOKEN && code_system(q->info.expression)))
					iq = j;
			}
			if (iq == n)
				break;
			p->b[nb++] = iq;
		}
		if (nb == p->info.ncomponents) {
			p->cand = true;
			p->whole = true;
			p->nb = nb;
			p->ttype[0] = 0;
		}
		return;
	}
	/* a union of other parameters' whole term lists */
	if (p->info.type == SALUS_FHIR_SP_TOKEN && code_system(p->info.expression))
		return;
	bool covered[AL_TERMS] = {false};
	size_t nb = 0;
	for (size_t iq = 0; iq < n && nb < AL_TERMS; iq++) {
		const struct al_param *q = &ps[iq];
		if (iq == ip || !q->ok || q->info.type != p->info.type)
			continue;
		bool all = true, same = q->k == p->k;
		for (size_t i = 0; i < q->k && all; i++)
			all = al_has_term(p, q->ts[i], q->tn[i]);
		for (size_t i = 0; i < p->k && same; i++)
			same = al_has_term(q, p->ts[i], p->tn[i]);
		if (!all || (same && iq > ip))
			continue; /* of two with the same terms the first keeps its rows */
		if (q->info.type == SALUS_FHIR_SP_TOKEN && code_system(q->info.expression))
			return;
		if (q->info.type == SALUS_FHIR_SP_COMPOSITE && !al_same_comps(type, p, q))
			continue;
		for (size_t i = 0; i < p->k; i++)
			covered[i] |= al_has_term(q, p->ts[i], p->tn[i]);
		p->b[nb++] = iq;
	}
	for (size_t i = 0; i < p->k; i++)
		if (!covered[i])
			return;
	p->cand = nb > 0;
	p->nb = nb;
	p->ttype[0] = 0;
}

static int al_add(struct al_table *t, uint32_t param, uint32_t base, const char *ttype, bool whole)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		struct salus_sq_alias *v = salus_realloc(t->v, cap * sizeof *v);
		if (!v)
			return SALUS_ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = (struct salus_sq_alias){param, base, ttype, whole};
	return SALUS_OK;
}

static int al_skip_add(struct al_table *t, uint32_t id)
{
	if (t->nskip == t->skip_cap) {
		size_t cap = t->skip_cap ? 2 * t->skip_cap : 256;
		uint32_t *v = salus_realloc(t->skip, cap * sizeof *v);
		if (!v)
			return SALUS_ENOMEM;
		t->skip = v;
		t->skip_cap = cap;
	}
	t->skip[t->nskip++] = id;
	return SALUS_OK;
}

/* The ttype strings live in one block (their pointers are taken at the end). */
static const char *al_type(struct al_table *t, const char *s)
{
	for (size_t i = 0; i < t->ntypes;) {
		if (!strcmp(t->types + i, s))
			return (const char *)(uintptr_t)(i + 1); /* an offset until al_fix */
		i += strlen(t->types + i) + 1;
	}
	size_t l = strlen(s) + 1;
	if (t->ntypes + l > t->types_cap) {
		size_t cap = t->types_cap ? 2 * t->types_cap + l : 256 + l;
		char *v = salus_realloc(t->types, cap);
		if (!v)
			return NULL;
		t->types = v;
		t->types_cap = cap;
	}
	memcpy(t->types + t->ntypes, s, l);
	t->ntypes += l;
	return (const char *)(uintptr_t)(t->ntypes - l + 1);
}

static int al_cmp(const void *pa, const void *pb)
{
	const struct salus_sq_alias *a = pa, *b = pb;
	if (a->param != b->param)
		return a->param < b->param ? -1 : 1;
	return a->base < b->base ? -1 : a->base > b->base;
}

static int u32_cmp(const void *pa, const void *pb)
{
	uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
	return a < b ? -1 : a > b;
}

static int al_type_build(struct al_table *tab, const struct salus_fhir_type *ty)
{
	const char *type = salus_fhir_type_name(ty);
	size_t n = salus_fhir_sp_count(ty);
	if (!type || !n)
		return SALUS_OK;
	struct al_param *ps = salus_calloc(n, sizeof *ps);
	if (!ps)
		return SALUS_ENOMEM;
	int rc = SALUS_OK;
	for (size_t i = 0; i < n; i++) {
		struct al_param *p = &ps[i];
		p->sp = salus_fhir_sp_at(ty, i);
		salus_fhir_sp_get(p->sp, &p->info);
		p->id = pid_raw(type, p->info.code);
		p->ok = p->info.expression && p->info.type != SALUS_FHIR_SP_SPECIAL && strcmp(p->info.code, "_id") &&
			strcmp(p->info.code, "_lastUpdated") && al_split(p->info.expression, type, p);
	}
	for (size_t i = 0; i < n; i++)
		if (ps[i].ok)
			al_candidate(type, ps, n, i);
	for (size_t i = 0; i < n && !rc; i++) {
		struct al_param *p = &ps[i];
		bool chain = false;
		for (size_t j = 0; j < p->nb; j++)
			chain |= ps[p->b[j]].cand;
		if (!p->cand || chain)
			continue;
		const char *tt = p->ttype[0] ? al_type(tab, p->ttype) : NULL;
		if (p->ttype[0] && !tt) {
			rc = SALUS_ENOMEM;
			break;
		}
		rc = al_skip_add(tab, p->id);
		for (size_t j = 0; j < p->nb && !rc; j++) {
			const struct al_param *q = &ps[p->b[j]];
			if (p->whole) {
				uint32_t pk = comp_id(type, p->info.code, j);
				rc = al_add(tab, pk, q->id, NULL, true);
				if (!rc)
					rc = al_add(tab, salus_fhir_search_contained_id(pk), salus_fhir_search_contained_id(q->id),
						    NULL, true);
				continue;
			}
			if (p->info.type != SALUS_FHIR_SP_COMPOSITE) {
				rc = al_add(tab, p->id, q->id, tt, false);
				if (!rc)
					rc = al_add(tab, salus_fhir_search_contained_id(p->id),
						    salus_fhir_search_contained_id(q->id), tt, false);
				continue;
			}
			for (size_t k = 0; k < p->info.ncomponents && !rc; k++) {
				uint32_t pk = comp_id(type, p->info.code, k), qk = comp_id(type, q->info.code, k);
				rc = al_add(tab, pk, qk, NULL, false);
				if (!rc)
					rc = al_add(tab, salus_fhir_search_contained_id(pk), salus_fhir_search_contained_id(qk),
						    NULL, false);
			}
		}
	}
	salus_free(ps);
	return rc;
}

static void al_init(void)
{
	struct al_table *t = &al_tab;
	int rc = SALUS_OK;
	for (size_t i = 0; i < salus_fhir_type_count() && !rc; i++) {
		const struct salus_fhir_type *ty = salus_fhir_type_at(i);
		struct salus_fhir_type_info ti;
		if (!ty)
			continue;
		salus_fhir_type_get(ty, &ti);
		if (ti.kind == SALUS_FHIR_RESOURCE && !ti.abstract)
			rc = al_type_build(t, ty);
	}
	if (rc) { /* no derived parameters at all: every row is written and read as before */
		salus_free(t->v);
		salus_free(t->skip);
		salus_free(t->types);
		memset(t, 0, sizeof *t);
		return;
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].ttype)
			t->v[i].ttype = t->types + ((uintptr_t)t->v[i].ttype - 1);
	qsort(t->v, t->n, sizeof *t->v, al_cmp);
	qsort(t->skip, t->nskip, sizeof *t->skip, u32_cmp);
	t->pub.v = t->v;
	t->pub.n = t->n;
	al_ready = true;
	salus_store_set_aliases(&t->pub);
}

static void aliases_once(void)
{
	pthread_once(&al_once_ctl, al_init);
}

void salus_fhir_index_aliases(bool on)
{
	aliases_once();
	atomic_store(&al_off, !on);
	salus_store_set_aliases(on && al_ready ? &al_tab.pub : NULL);
}

const struct salus_sq_aliases *salus_fhir_search_aliases(void)
{
	aliases_once();
	return al_ready ? &al_tab.pub : NULL;
}

/* Does extraction leave param id p (no flag bits, not contained) out? */
static bool al_skipped(uint32_t p)
{
	aliases_once();
	if (!al_ready || atomic_load_explicit(&al_off, memory_order_relaxed))
		return false;
	return bsearch(&p, al_tab.skip, al_tab.nskip, sizeof p, u32_cmp) != NULL;
}

/* Is r a row of parameter p (flag bits included): its own, or a base's that p derives from? */
static bool row_of(const struct salus_ix_row *r, uint32_t p)
{
	if (r->param == p)
		return true;
	aliases_once();
	if (!al_ready || atomic_load_explicit(&al_off, memory_order_relaxed))
		return false;
	uint32_t id = p & 0x3FFFFFFFu, bits = p & ~0x3FFFFFFFu;
	size_t lo = 0, hi = al_tab.n; /* the first entry of id */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (al_tab.v[mid].param < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (size_t i = lo; i < al_tab.n && al_tab.v[i].param == id; i++)
		if ((al_tab.v[i].base | bits) == r->param &&
		    (!al_tab.v[i].ttype || (r->a && !strcmp(r->a, al_tab.v[i].ttype))))
			return true;
	return false;
}

bool salus_fhir_index_row_is(const struct salus_ix_row *r, uint32_t param)
{
	return row_of(r, param);
}

static int cx_type_compile(struct cx_all *all, const struct salus_fhir_type *t, struct cx_type *ct)
{
	struct salus_fhir_type_info ti;
	salus_fhir_type_get(t, &ti);
	const char *type = ti.name;
	size_t nsp = salus_fhir_sp_count(t);
	ct->t = t;
	ct->n = nsp;
	if (nsp && !(ct->p = cx_alloc(all, nsp * sizeof *ct->p)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < nsp; i++) {
		const struct salus_fhir_sp *sp = salus_fhir_sp_at(t, i);
		struct cx_param *cp = &ct->p[i];
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(sp, &info);
		cp->type = info.type;
		if (info.type == SALUS_FHIR_SP_SPECIAL && !strcmp(type, "Location") && !strcmp(info.code, "near")) {
			cp->kind = CK_NEAR;
			continue;
		}
		if (!info.expression || info.type == SALUS_FHIR_SP_SPECIAL || !strcmp(info.code, "_id") ||
		    !strcmp(info.code, "_lastUpdated")) {
			cp->kind = CK_SKIP;
			continue;
		}
		cp->id = salus_fhir_search_param_id(type, info.code);
		cp->derived = al_skipped(cp->id);
		int rc = cx_expr_compile(all, info.expression, type, &cp->e);
		if (rc)
			return rc;
		if (info.type == SALUS_FHIR_SP_COMPOSITE) {
			cp->kind = CK_COMPOSITE;
			cp->ncomps = info.ncomponents;
			if (cp->ncomps && !(cp->comps = cx_alloc(all, cp->ncomps * sizeof *cp->comps)))
				return SALUS_ENOMEM;
			for (size_t k = 0; k < cp->ncomps; k++) {
				struct cx_comp *cc = &cp->comps[k];
				const char *code, *expr;
				if (salus_fhir_sp_component(sp, k, &code, &expr)) {
					cc->stop = true;
					break;
				}
				const struct salus_fhir_sp *csp = salus_fhir_sp_find(type, strlen(type), code, strlen(code));
				if (!csp) {
					cc->absent = true;
					continue;
				}
				struct salus_fhir_sp_info ci;
				salus_fhir_sp_get(csp, &ci);
				cc->type = ci.type;
				cc->id = comp_id(type, info.code, k);
				/* the relative expression, evaluated on the element: prefixed with the type */
				size_t tl = strlen(type), el = strlen(expr);
				bool self = !strcmp(expr, "$this");
				char *full = cx_alloc(all, tl + el + 2);
				if (!full)
					return SALUS_ENOMEM;
				memcpy(full, type, tl);
				if (!self) {
					full[tl] = '.';
					memcpy(full + tl + 1, expr, el + 1);
				}
				if ((rc = cx_expr_compile(all, full, type, &cc->e)))
					return rc;
			}
			continue;
		}
		cp->kind = CK_VALUES;
		cp->deceased = strstr(info.expression, " and ") && info.type == SALUS_FHIR_SP_TOKEN;
		cp->code_sys = info.type == SALUS_FHIR_SP_TOKEN ? code_system(info.expression) : NULL;
	}
	return SALUS_OK;
}

static size_t cx_slot(const struct cx_all *all, const struct salus_fhir_type *t)
{
	uintptr_t h = (uintptr_t)t;
	h ^= h >> 17;
	h *= 0x9E3779B97F4A7C15ull;
	return (size_t)(h >> 20) & (all->cap - 1);
}

static pthread_mutex_t cx_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(struct cx_all *) cx_ready;
static _Atomic bool cx_off; /* tests: interpret instead (salus_fhir_index_interpret) */

void salus_fhir_index_interpret(bool on)
{
	atomic_store(&cx_off, on);
}

static struct cx_all *cx_build(void)
{
	struct cx_all *all = salus_calloc(1, sizeof *all);
	size_t nt = salus_fhir_type_count();
	if (!all)
		return NULL;
	for (all->cap = 64; all->cap < 2 * nt; all->cap *= 2)
		;
	if (!(all->slots = salus_calloc(all->cap, sizeof *all->slots)))
		goto fail;
	for (size_t i = 0; i < nt; i++) {
		const struct salus_fhir_type *t = salus_fhir_type_at(i);
		if (!t || !salus_fhir_sp_count(t))
			continue;
		size_t k = cx_slot(all, t);
		while (all->slots[k].t)
			k = (k + 1) & (all->cap - 1);
		if (cx_type_compile(all, t, &all->slots[k]))
			goto fail;
	}
	return all;
fail:
	cx_free(all);
	return NULL;
}

/* The compiled parameters of type t, or NULL (interpret). */
static const struct cx_type *cx_find(const struct salus_fhir_type *t)
{
	if (atomic_load_explicit(&cx_off, memory_order_relaxed))
		return NULL;
	struct cx_all *all = atomic_load_explicit(&cx_ready, memory_order_acquire);
	if (!all) {
		pthread_mutex_lock(&cx_mu);
		if (!(all = atomic_load_explicit(&cx_ready, memory_order_acquire)) && (all = cx_build()))
			atomic_store_explicit(&cx_ready, all, memory_order_release);
		pthread_mutex_unlock(&cx_mu);
		if (!all)
			return NULL;
	}
	for (size_t k = cx_slot(all, t); all->slots[k].t; k = (k + 1) & (all->cap - 1))
		if (all->slots[k].t == t)
			return &all->slots[k];
	return NULL;
}

/* Child `name` of an object (step_name with the name's facts worked out). */
static int cx_step_name(struct nodes *out, const struct node *in, const struct cx_op *op)
{
	json_t *o = in->v, *v;
	size_t nn = op->an;
	const char *name = op->a;
	if (!json_is_object(o) || op->never)
		return SALUS_OK;
	if ((v = json_object_getn(o, name, nn)))
		return nodes_add(out, v, NULL, 0);
	if (!op->choice)
		return SALUS_OK;
	return choice_values(o, name, nn, out);
}

static int cx_eval_term(const struct cx_term *ct, json_t *res, struct nodes *out)
{
	struct node ca[TERM_NODES], na[TERM_NODES];
	struct nodes cur = {ca, 0, TERM_NODES, false}, nxt = {na, 0, TERM_NODES, false};
	int rc = SALUS_OK;

	if (ct->other)
		return SALUS_OK;
	if ((rc = nodes_add(&cur, res, NULL, 0)))
		goto out_free;
	for (size_t s = 0; s < ct->n; s++) {
		const struct cx_op *op = &ct->ops[s];
		nxt.n = 0;
		switch (op->op) {
		case OP_INVALID:
			rc = SALUS_EINVALID;
			goto out_free;
		case OP_OFTYPE:
			for (size_t k = 0; k < cur.n; k++)
				if (type_eq(&cur.v[k], op->a, op->an) && (rc = nodes_add(&nxt, cur.v[k].v, op->a, op->an)))
					goto out_free;
			break;
		case OP_WHERE_RESOLVE:
			for (size_t k = 0; k < cur.n; k++) {
				json_t *r = json_object_get(cur.v[k].v, "reference");
				const char *t;
				size_t tn;
				if (json_is_string(r) && ref_type(json_string_value(r), &t, &tn) && tn == op->an &&
				    !memcmp(t, op->a, op->an) && (rc = nodes_add(&nxt, cur.v[k].v, NULL, 0)))
					goto out_free;
			}
			break;
		case OP_WHERE_EQ:
			for (size_t k = 0; k < cur.n; k++) {
				json_t *f = json_object_get(cur.v[k].v, op->field);
				if (json_is_string(f) && !strcmp(json_string_value(f), op->lit) &&
				    (rc = nodes_add(&nxt, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen)))
					goto out_free;
			}
			break;
		case OP_EXISTS:
			for (size_t k = 0; k < cur.n; k++)
				if ((rc = nodes_add(&nxt, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen)))
					goto out_free;
			break;
		default: /* OP_NAME */
			for (size_t k = 0; k < cur.n; k++)
				if ((rc = cx_step_name(&nxt, &cur.v[k], op)))
					goto out_free;
			break;
		}
		struct nodes t = cur;
		cur = nxt;
		nxt = t;
		if (!cur.n)
			break;
	}
	for (size_t k = 0; k < cur.n && !rc; k++)
		rc = nodes_add(out, cur.v[k].v, cur.v[k].tname, cur.v[k].tlen);
out_free:
	if (cur.heap)
		salus_free(cur.v);
	if (nxt.heap)
		salus_free(nxt.v);
	return rc;
}

static int cx_eval(const struct cx_expr *ce, json_t *res, struct nodes *out)
{
	for (size_t i = 0; i < ce->n; i++) {
		int rc = cx_eval_term(&ce->t[i], res, out);
		if (rc)
			return rc;
	}
	return SALUS_OK;
}

/* Location.near: Location.position's latitude and longitude, as the two
 * components of one group (Location.near#0, #1). */
static int index_near(struct ctx *c, json_t *res)
{
	json_t *pos = json_object_get(res, "position");
	json_t *lat = json_object_get(pos, "latitude"), *lon = json_object_get(pos, "longitude");
	if (!json_is_number(lat) || !json_is_number(lon))
		return SALUS_OK;
	uint16_t saved = c->group;
	c->group = ++c->x->group;
	int rc = add_num(c, pid(c, comp_id("Location", "near", 0)), SALUS_IX_NUMBER, json_number_value(lat), NULL, NULL,
			 NULL);
	if (!rc)
		rc = add_num(c, pid(c, comp_id("Location", "near", 1)), SALUS_IX_NUMBER, json_number_value(lon), NULL,
			     NULL, NULL);
	c->group = saved;
	return rc;
}

/* The patient+code rows (search.h, salus_fhir_search_patient_code_id): for
 * each local reference X of the type's `patient` parameter and each code
 * (system s, code k) of its `code` parameter, token rows (k, "X") and
 * (k, "X|s"), so a patient's resources with a code are one index range. */
static int index_patient_code(struct ctx *c, const char *type)
{
	struct salus_fhir_index *x = c->x;
	uint32_t pp = salus_fhir_search_param_id(type, "patient"), pc = salus_fhir_search_param_id(type, "code");
	uint32_t pk = salus_fhir_search_patient_code_id(type);
	size_t n = x->ix.n; /* rows added below are not looked at again */
	bool any_code = false;
	for (size_t i = 0; i < n && !any_code; i++)
		any_code = x->rows[i].kind == SALUS_IX_TOKEN && row_of(&x->rows[i], pc);
	if (!any_code)
		return SALUS_OK;
	char key[SALUS_MAX_ID + 2];
	int rc = SALUS_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		const struct salus_ix_row *r = &x->rows[i];
		if (r->kind != SALUS_IX_REFERENCE || !r->a || strcmp(r->a, "Patient") || !r->b || !*r->b ||
		    strlen(r->b) > SALUS_MAX_ID || !row_of(r, pp))
			continue;
		snprintf(key, sizeof key, "%s", r->b);
		for (size_t k = 0; k < n && !rc; k++) {
			/* x->rows moves as rows are added: take the row's (arena) strings first */
			const struct salus_ix_row *t = &x->rows[k];
			if (t->kind != SALUS_IX_TOKEN || !t->b || !*t->b || !row_of(t, pc))
				continue;
			const char *sys = t->a ? t->a : "", *code = t->b;
			/* every code of the resource, any system */
			if ((rc = add_token(c, pk, key, code)))
				break;
			size_t kl = strlen(key), sl = strlen(sys);
			char *ks = salus_malloc(kl + sl + 2);
			if (!ks)
				return SALUS_ENOMEM;
			memcpy(ks, key, kl);
			ks[kl] = '|';
			memcpy(ks + kl + 1, sys, sl + 1);
			rc = add_token(c, pk, ks, code);
			salus_free(ks);
		}
	}
	return rc;
}

/* index_composite and index_params with the compiled parameters of the type. */
static int cx_index_composite(struct ctx *c, const struct cx_param *cp, json_t *res)
{
	struct nodes ns = {0};
	int rc = cx_eval(&cp->e, res, &ns);
	if (rc == SALUS_EINVALID)
		rc = SALUS_OK;
	uint16_t saved = c->group; /* a contained resource's group (_contained correlation) */
	for (size_t k = 0; k < ns.n && !rc; k++) {
		c->group = ++c->x->group;
		size_t at = c->x->ix.n;
		bool whole = true;
		for (size_t i = 0; i < cp->ncomps && !rc; i++) {
			const struct cx_comp *cc = &cp->comps[i];
			if (cc->stop)
				break;
			if (cc->absent)
				continue;
			size_t before = c->x->ix.n;
			struct nodes cn = {0};
			rc = cx_eval(&cc->e, ns.v[k].v, &cn);
			if (rc == SALUS_EINVALID)
				rc = SALUS_OK;
			c->component = true;
			for (size_t j = 0; j < cn.n && !rc; j++)
				rc = index_node(c, pid(c, cc->id), cc->type, &cn.v[j]);
			c->component = false;
			whole &= c->x->ix.n > before;
			salus_free(cn.v);
		}
		if (!whole)
			c->x->ix.n = at; /* see composite_whole */
		c->group = saved;
	}
	salus_free(ns.v);
	return rc;
}

static int cx_index_params(struct ctx *c, const struct cx_type *ct, json_t *res)
{
	int rc = SALUS_OK;
	for (size_t i = 0; i < ct->n && !rc; i++) {
		const struct cx_param *cp = &ct->p[i];
		if (cp->kind == CK_SKIP || (cp->derived && !atomic_load_explicit(&al_off, memory_order_relaxed)))
			continue;
		if (cp->kind == CK_NEAR) {
			rc = index_near(c, res);
			continue;
		}
		if (cp->kind == CK_COMPOSITE) {
			rc = cx_index_composite(c, cp, res);
			continue;
		}
		uint32_t p = pid(c, cp->id);
		struct nodes ns = {0};
		rc = cx_eval(&cp->e, res, &ns);
		if (rc == SALUS_EINVALID)
			rc = SALUS_OK; /* an expression outside the subset: nothing indexed (from there on) */
		if (!rc && cp->deceased) {
			bool dead = false;
			for (size_t k = 0; k < ns.n; k++)
				dead |= !json_is_false(ns.v[k].v);
			rc = add_token(c, p, NULL, dead ? "true" : "false");
			ns.n = 0;
		}
		c->code_sys = ns.n ? cp->code_sys : NULL;
		for (size_t k = 0; k < ns.n && !rc; k++)
			rc = index_node(c, p, cp->type, &ns.v[k]);
		c->code_sys = NULL;
		salus_free(ns.v);
	}
	return rc;
}

/* The rows of every search parameter of type (t) on res; in a contained
 * resource (c->contained) under the contained parameter ids. */
static int index_params(struct ctx *c, const struct salus_fhir_type *t, const char *type, json_t *res)
{
	const struct cx_type *ct = cx_find(t);
	if (ct)
		return cx_index_params(c, ct, res);
	int rc = SALUS_OK;
	size_t nsp = salus_fhir_sp_count(t);
	for (size_t i = 0; i < nsp && !rc; i++) {
		const struct salus_fhir_sp *sp = salus_fhir_sp_at(t, i);
		struct salus_fhir_sp_info info;
		salus_fhir_sp_get(sp, &info);
		if (info.type == SALUS_FHIR_SP_SPECIAL && !strcmp(type, "Location") && !strcmp(info.code, "near")) {
			rc = index_near(c, res);
			continue;
		}
		if (!info.expression || info.type == SALUS_FHIR_SP_SPECIAL)
			continue;
		if (!strcmp(info.code, "_id") || !strcmp(info.code, "_lastUpdated"))
			continue; /* from the resource row itself */
		if (al_skipped(salus_fhir_search_param_id(type, info.code)))
			continue; /* derived: its rows are other parameters' */
		uint32_t p = pid(c, salus_fhir_search_param_id(type, info.code));
		if (info.type == SALUS_FHIR_SP_COMPOSITE) {
			rc = index_composite(c, sp, &info, res);
			continue;
		}
		struct nodes ns = {0};
		rc = eval_expr(info.expression, res, type, &ns);
		if (rc == SALUS_EINVALID)
			rc = SALUS_OK; /* an expression outside the subset: nothing indexed */
		if (!rc && strstr(info.expression, " and ") && info.type == SALUS_FHIR_SP_TOKEN) {
			/* Patient.deceased: true when deceasedBoolean is true or a deceasedDateTime is given */
			bool dead = false;
			for (size_t k = 0; k < ns.n; k++)
				dead |= !json_is_false(ns.v[k].v);
			rc = add_token(c, p, NULL, dead ? "true" : "false");
			ns.n = 0;
		}
		c->code_sys = info.type == SALUS_FHIR_SP_TOKEN && ns.n ? code_system(info.expression) : NULL;
		for (size_t k = 0; k < ns.n && !rc; k++)
			rc = index_node(c, p, info.type, &ns.v[k]);
		c->code_sys = NULL;
		salus_free(ns.v);
	}
	return rc;
}

int salus_fhir_index_build(struct salus_fhir_index *x, const char *type, json_t *res)
{
	const struct salus_fhir_type *t = salus_fhir_type_find(type, strlen(type));
	struct ctx c = {.x = x, .type = type};
	int rc = SALUS_OK;

	if (!t || !json_is_object(res))
		return SALUS_EINVALID;
	salus_buf_init(&c.norm, NORM_MAX * 4);
	rc = index_params(&c, t, type, res);
	/* contained resources (_contained=true): their own parameters under the contained
	 * ids, and a marker row with their type; no text of their own */
	size_t k;
	json_t *cr;
	json_array_foreach(json_object_get(res, "contained"), k, cr)
	{
		const char *ct = jstr(cr, "resourceType");
		const struct salus_fhir_type *ctt = ct ? salus_fhir_type_find(ct, strlen(ct)) : NULL;
		if (rc || !ctt || !salus_fhir_is_resource_type(ct, strlen(ct)) || !json_is_object(cr))
			continue;
		c.contained = true;
		c.type = ct;
		/* every row of one contained resource shares a group (above the composite groups),
		 * so a search can require all its clauses to hold on the same contained resource */
		c.group = (uint16_t)(0x8000u | ((k + 1) & 0x7FFFu));
		rc = add_token(&c, salus_fhir_search_contained_marker(), NULL, ct);
		if (!rc)
			rc = index_params(&c, ctt, ct, cr);
		c.contained = false;
		c.type = type;
		c.group = 0;
	}
	/* _text: the narrative; _content: all text */
	json_t *text = json_object_get(res, "text");
	if (!rc && json_is_object(text) && json_is_string(json_object_get(text, "div")))
		rc = add_div_text(&x->text, json_string_value(json_object_get(text, "div")));
	if (!rc)
		rc = add_all_text(&x->content, res, 0);
	if (rc == SALUS_ETOOLARGE)
		rc = SALUS_OK; /* a huge document is indexed up to the cap */
	if (!rc)
		rc = index_patient_code(&c, type);
	x->ix.text = x->text.n ? x->text.p : NULL;
	x->ix.content = x->content.n ? x->content.p : NULL;
	x->ix.rows = x->rows;
	x->ix.patient = rc ? NULL : compartment_owner(x, t, type);
	salus_buf_release(&c.norm);
	return rc;
}

int salus_fhir_index_build_owner(struct salus_fhir_index *x, const char *type, json_t *res)
{
	const struct salus_fhir_type *t = salus_fhir_type_find(type, strlen(type));
	struct ctx c = {.x = x, .type = type};
	int rc = SALUS_OK;

	if (!t || !json_is_object(res))
		return SALUS_EINVALID;
	salus_buf_init(&c.norm, NORM_MAX * 4);
	/* only the compartment parameters, the rows compartment_owner reads */
	for (size_t k = 0; k < salus_fhir_compartment_count(t) && !rc; k++) {
		const char *code = salus_fhir_compartment_param_at(t, k);
		const struct salus_fhir_sp *sp = code ? salus_fhir_sp_find(type, strlen(type), code, strlen(code)) : NULL;
		struct salus_fhir_sp_info info;
		if (!sp)
			continue;
		salus_fhir_sp_get(sp, &info);
		if (!info.expression || info.type != SALUS_FHIR_SP_REFERENCE)
			continue;
		struct nodes ns = {0};
		rc = eval_expr(info.expression, res, type, &ns);
		if (rc == SALUS_EINVALID)
			rc = SALUS_OK;
		uint32_t p = salus_fhir_search_param_id(type, code);
		for (size_t i = 0; i < ns.n && !rc; i++)
			rc = index_value(&c, p, info.type, ns.v[i].v);
		salus_free(ns.v);
	}
	x->ix.patient = rc ? NULL : compartment_owner(x, t, type);
	x->ix.rows = x->rows;
	x->ix.n = 0; /* no search rows: the owner only */
	salus_buf_release(&c.norm);
	return rc;
}
