/*
 * cond.c — query-string parsing and the minimal exact matcher for
 * conditional interactions (see cond.h).
 */
#include "fhir/cond.h"

#include <string.h>

#include "core/alloc.h"
#include "core/err.h"

#define SET_MAX 4096 /* ids one criterion may match when several are ANDed */

static int hexv(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *decode(const char *s, size_t n)
{
	char *o = salus_malloc(n + 1), *w = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexv(s[i + 1])) >= 0 && (lo = hexv(s[i + 2])) >= 0) {
			if (!(hi | lo)) {
				salus_free(o);
				return NULL;
			}
			*w++ = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+') {
			*w++ = ' ';
		} else {
			*w++ = s[i];
		}
	}
	*w = 0;
	return o;
}

int salus_query_parse(struct salus_query *q, const char *s, size_t n)
{
	memset(q, 0, sizeof *q);
	if (n && s[0] == '?') {
		s++;
		n--;
	}
	while (n) {
		const char *amp = memchr(s, '&', n);
		size_t len = amp ? (size_t)(amp - s) : n;
		if (len) {
			const char *eq = memchr(s, '=', len);
			size_t kn = eq ? (size_t)(eq - s) : len;
			if (q->n == SALUS_COND_MAX_PARAMS || memchr(s, 0, len))
				return SALUS_EINVALID;
			char *k = decode(s, kn);
			char *v = eq ? decode(eq + 1, len - kn - 1) : salus_strdup("");
			if (!k || !v) {
				salus_free(k);
				salus_free(v);
				return SALUS_EINVALID;
			}
			q->p[q->n++] = (struct salus_param){k, v};
		}
		s += len;
		n -= len;
		if (n) {
			s++;
			n--;
		}
	}
	return 0;
}

void salus_query_release(struct salus_query *q)
{
	for (size_t i = 0; i < q->n; i++) {
		salus_free(q->p[i].name);
		salus_free(q->p[i].value);
	}
	q->n = 0;
}

struct idset {
	char (*ids)[SALUS_MAX_ID + 1];
	int n, cap;
	int over; /* more than cap matched */
};

static int add_id(void *ctx, const char *id)
{
	struct idset *s = ctx;
	if (s->n == s->cap) {
		s->over = 1;
		return 1; /* stop */
	}
	memcpy(s->ids[s->n], id, strlen(id) + 1);
	s->n++;
	return 0;
}

static bool in_set(const struct idset *s, const char *id)
{
	for (int i = 0; i < s->n; i++)
		if (!strcmp(s->ids[i], id))
			return true;
	return false;
}

/* One criterion into s (ids of current resources). */
static int one(struct salus_store *st, const char *type, const struct salus_param *p, struct idset *s,
	       const char **why)
{
	if (!strcmp(p->name, "_id")) {
		struct salus_resource r = {.json = NULL};
		if (!salus_fhir_id_valid(p->value, strlen(p->value))) {
			*why = "invalid _id in the conditional criteria";
			return SALUS_EINVALID;
		}
		int rc = salus_store_read(st, type, p->value, 0, &r);
		salus_resource_release(&r);
		if (rc == SALUS_ENOTFOUND || rc == SALUS_EGONE)
			return 0;
		if (rc)
			return rc;
		add_id(s, p->value);
		return 0;
	}
	if (!strcmp(p->name, "identifier")) {
		const char *bar = strchr(p->value, '|');
		char sys[1024];
		const char *value = p->value, *system = NULL;
		if (bar) {
			size_t sn = (size_t)(bar - p->value);
			if (sn >= sizeof sys) {
				*why = "identifier system too long";
				return SALUS_EINVALID;
			}
			memcpy(sys, p->value, sn);
			sys[sn] = 0;
			system = sys;
			value = bar + 1;
		}
		if (!*value) {
			*why = "conditional criteria need an identifier value";
			return SALUS_EINVALID;
		}
		int rc = salus_store_find_by_identifier(st, type, system, value, add_id, s);
		return rc == 1 ? 0 : rc;
	}
	*why = "conditional criteria support only identifier and _id (until the search module)";
	return SALUS_EINVALID;
}

int salus_fhir_match(struct salus_store *st, const char *type, const struct salus_param *params, size_t n,
		     char (*ids)[SALUS_MAX_ID + 1], int max, int *count, const char **why)
{
	struct idset acc = {0}, next = {0};
	int rc = 0;
	if (n == 0) {
		*why = "conditional interaction without criteria";
		return SALUS_EINVALID;
	}
	int cap = n == 1 ? max + 1 : SET_MAX;
	acc.ids = salus_malloc(sizeof *acc.ids * (size_t)cap);
	next.ids = n > 1 ? salus_malloc(sizeof *next.ids * SET_MAX) : NULL;
	if (!acc.ids || (n > 1 && !next.ids)) {
		rc = SALUS_ENOMEM;
		goto out_free;
	}
	acc.cap = cap;
	if ((rc = one(st, type, &params[0], &acc, why)))
		goto out_free;
	if (n > 1 && acc.over) {
		*why = "conditional criteria match too many resources";
		rc = SALUS_EINVALID;
		goto out_free;
	}
	for (size_t i = 1; i < n && acc.n; i++) {
		next.n = 0;
		next.cap = SET_MAX;
		next.over = 0;
		if ((rc = one(st, type, &params[i], &next, why)))
			goto out_free;
		if (next.over) {
			*why = "conditional criteria match too many resources";
			rc = SALUS_EINVALID;
			goto out_free;
		}
		int k = 0;
		for (int j = 0; j < acc.n; j++)
			if (in_set(&next, acc.ids[j]))
				memmove(acc.ids[k++], acc.ids[j], sizeof acc.ids[0]);
		acc.n = k;
	}
	*count = acc.n + acc.over > max + 1 ? max + 1 : acc.n + acc.over;
	for (int j = 0; j < acc.n && j < max; j++)
		memcpy(ids[j], acc.ids[j], sizeof ids[j]);
out_free:
	salus_free(acc.ids);
	salus_free(next.ids);
	return rc;
}

int salus_cond_guard_init(struct salus_cond_guard *g, const struct salus_param *params, size_t n)
{
	memset(g, 0, sizeof *g);
	if (n == 0 || n > SALUS_COND_MAX_PARAMS)
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		const struct salus_param *p = &params[i];
		struct salus_write_cond *c = &g->c[g->n++];
		char **own = &g->own[2 * i];
		if (!strcmp(p->name, "_id")) {
			if (!(c->id = own[0] = salus_strdup(p->value)))
				return SALUS_ENOMEM;
			continue;
		}
		if (strcmp(p->name, "identifier"))
			return SALUS_EINVALID;
		const char *bar = strchr(p->value, '|');
		if (!(c->value = own[0] = salus_strdup(bar ? bar + 1 : p->value)))
			return SALUS_ENOMEM;
		if (bar && !(c->system = own[1] = salus_strndup(p->value, (size_t)(bar - p->value))))
			return SALUS_ENOMEM;
	}
	return 0;
}

void salus_cond_guard_release(struct salus_cond_guard *g)
{
	for (size_t i = 0; i < 2 * SALUS_COND_MAX_PARAMS; i++)
		salus_free(g->own[i]);
	memset(g, 0, sizeof *g);
}
