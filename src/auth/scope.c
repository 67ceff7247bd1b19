/*
 * scope.c — SMART on FHIR scopes, v1 and v2: parsing, the access decision,
 * the grant (intersection of a request with a registration) and canonical
 * formatting (see auth.h).
 */
#include <string.h>

#include "auth/auth.h"
#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

static const char *const ctx_names[] = {"patient", "user", "system"};

/* RFC 6749 §3.3 scope-token characters. */
static bool scope_char(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

static int parse_one(const char *p, size_t n, struct salus_scope *sc)
{
	memset(sc, 0, sizeof *sc);
	size_t i = 0;
	bool found = false;
	for (int c = 0; c < 3 && !found; c++) {
		size_t l = strlen(ctx_names[c]);
		if (n > l && !memcmp(p, ctx_names[c], l) && p[l] == '/') {
			sc->ctx = (enum salus_scope_ctx)c;
			i = l + 1;
			found = true;
		}
	}
	if (!found)
		return SALUS_EINVALID;
	/* resource type */
	size_t t0 = i;
	while (i < n && p[i] != '.')
		i++;
	size_t tl = i - t0;
	if (i == n || tl == 0 || tl > SALUS_MAX_SCOPE_TYPE)
		return SALUS_EINVALID;
	if (!(tl == 1 && p[t0] == '*')) {
		if (p[t0] < 'A' || p[t0] > 'Z')
			return SALUS_EINVALID;
		for (size_t k = t0; k < i; k++)
			if (!((p[k] >= 'A' && p[k] <= 'Z') || (p[k] >= 'a' && p[k] <= 'z')))
				return SALUS_EINVALID;
	}
	memcpy(sc->type, p + t0, tl);
	sc->type[tl] = 0;
	i++; /* '.' */
	/* permissions, up to '?' */
	size_t p0 = i;
	while (i < n && p[i] != '?')
		i++;
	struct salus_slice perm = {p + p0, i - p0};
	if (salus_slice_eq(perm, "read")) {
		sc->perms = SALUS_IA_BIT(SALUS_IA_READ) | SALUS_IA_BIT(SALUS_IA_SEARCH);
	} else if (salus_slice_eq(perm, "write")) {
		sc->perms = SALUS_IA_BIT(SALUS_IA_CREATE) | SALUS_IA_BIT(SALUS_IA_UPDATE) |
			    SALUS_IA_BIT(SALUS_IA_DELETE);
	} else if (salus_slice_eq(perm, "*")) {
		sc->perms = SALUS_IA_ALL;
	} else {
		static const char letters[] = "cruds";
		int next = 0;
		if (perm.n == 0)
			return SALUS_EINVALID;
		for (size_t k = 0; k < perm.n; k++) {
			const char *at = memchr(letters + next, perm.p[k], (size_t)(5 - next));
			if (!at || !perm.p[k])
				return SALUS_EINVALID;
			int bit = (int)(at - letters);
			sc->perms |= SALUS_IA_BIT(bit);
			next = bit + 1;
		}
		sc->v2 = true;
	}
	if (i < n) { /* '?' query: v2 only, non-empty */
		if (!sc->v2 || i + 1 == n)
			return SALUS_EINVALID;
		if (!(sc->query = salus_strndup(p + i + 1, n - i - 1)))
			return SALUS_ENOMEM;
	}
	return 0;
}

void salus_scopes_release(struct salus_scopes *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		salus_free(s->v[i].query);
	salus_free(s->v);
	s->v = NULL;
	s->n = 0;
}

int salus_scopes_parse(const char *s, size_t n, struct salus_scopes *out)
{
	out->n = 0;
	out->v = NULL;
	if (n == 0)
		return SALUS_EINVALID;
	if (n > SALUS_MAX_SCOPE)
		return SALUS_ETOOLARGE;
	size_t count = 1;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ')
			count++;
		else if (!scope_char((unsigned char)s[i]))
			return SALUS_EINVALID;
	}
	if (count > SALUS_MAX_SCOPES)
		return SALUS_ETOOLARGE;
	struct salus_scopes r = {0, salus_calloc(count, sizeof(struct salus_scope))};
	if (!r.v)
		return SALUS_ENOMEM;
	size_t i = 0;
	int rc = 0;
	while (i <= n) {
		const char *sp = memchr(s + i, ' ', n - i);
		size_t e = sp ? (size_t)(sp - s) : n;
		if (e == i) { /* empty token: leading, trailing or double space */
			rc = SALUS_EINVALID;
			goto out_fail;
		}
		if ((rc = parse_one(s + i, e - i, &r.v[r.n])))
			goto out_fail;
		r.n++;
		i = e + 1;
	}
	*out = r;
	return 0;
out_fail:
	salus_scopes_release(&r);
	return rc;
}

bool salus_scope_allows(const struct salus_scopes *s, const char *resource_type, enum salus_interaction i)
{
	if (!s || !resource_type || (unsigned)i > SALUS_IA_SEARCH)
		return false;
	for (size_t k = 0; k < s->n; k++) {
		const struct salus_scope *sc = &s->v[k];
		/* patient/ and user/ need a launch context; restricted scopes are not enforced yet. */
		if (sc->query || sc->ctx == SALUS_SCOPE_PATIENT || (sc->ctx == SALUS_SCOPE_USER && !s->user_ctx))
			continue;
		if (!(sc->perms & SALUS_IA_BIT(i)))
			continue;
		if (!strcmp(sc->type, "*") || !strcmp(sc->type, resource_type))
			return true;
	}
	return false;
}

static int add_scope(struct salus_buf *b, const struct salus_scope *sc)
{
	const unsigned rs = SALUS_IA_BIT(SALUS_IA_READ) | SALUS_IA_BIT(SALUS_IA_SEARCH);
	const unsigned cud = SALUS_IA_BIT(SALUS_IA_CREATE) | SALUS_IA_BIT(SALUS_IA_UPDATE) | SALUS_IA_BIT(SALUS_IA_DELETE);
	int rc = salus_buf_addf(b, "%s/%s.", ctx_names[sc->ctx], sc->type);
	if (rc)
		return rc;
	if (!sc->v2 && sc->perms == rs)
		return salus_buf_adds(b, "read");
	if (!sc->v2 && sc->perms == cud)
		return salus_buf_adds(b, "write");
	if (!sc->v2 && sc->perms == SALUS_IA_ALL)
		return salus_buf_adds(b, "*");
	for (int k = 0; k < 5; k++)
		if ((sc->perms & SALUS_IA_BIT(k)) && (rc = salus_buf_addc(b, "cruds"[k])))
			return rc;
	if (sc->query && ((rc = salus_buf_addc(b, '?')) || (rc = salus_buf_adds(b, sc->query))))
		return rc;
	return 0;
}

/* Is the token b->p[from..b->n) already present earlier in b? */
static bool dup_token(const struct salus_buf *b, size_t from)
{
	struct salus_slice t = {b->p + from, b->n - from};
	size_t i = 0;
	while (i < from) {
		const char *sp = memchr(b->p + i, ' ', from - i);
		size_t e = sp ? (size_t)(sp - b->p) : from;
		if (e - i == t.n && !memcmp(b->p + i, t.p, t.n))
			return true;
		i = e + 1;
	}
	return false;
}

int salus_scopes_format(const struct salus_scopes *s, char **out)
{
	struct salus_buf b;
	salus_buf_init(&b, SALUS_MAX_SCOPE);
	int rc = 0;
	for (size_t i = 0; i < s->n; i++) {
		size_t mark = b.n;
		if (b.n && (rc = salus_buf_addc(&b, ' ')))
			goto out_buf;
		size_t from = b.n;
		if ((rc = add_scope(&b, &s->v[i])))
			goto out_buf;
		if (dup_token(&b, from)) {
			b.n = mark;
			b.p[mark] = 0;
		}
	}
	if (!(*out = salus_buf_detach(&b, NULL)))
		rc = SALUS_ENOMEM;
out_buf:
	salus_buf_release(&b);
	return rc;
}

static bool same_query(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

int salus_scopes_grant(const struct salus_scopes *registered, const struct salus_scopes *requested, char **out)
{
	const unsigned rs = SALUS_IA_BIT(SALUS_IA_READ) | SALUS_IA_BIT(SALUS_IA_SEARCH);
	const unsigned cud = SALUS_IA_BIT(SALUS_IA_CREATE) | SALUS_IA_BIT(SALUS_IA_UPDATE) | SALUS_IA_BIT(SALUS_IA_DELETE);
	struct salus_scopes g = {0, NULL};
	if (requested->n == 0)
		return SALUS_EFORBIDDEN;
	if (!(g.v = salus_calloc(requested->n, sizeof *g.v)))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < requested->n; i++) {
		const struct salus_scope *r = &requested->v[i];
		unsigned perms = 0;
		for (size_t k = 0; k < registered->n; k++) {
			const struct salus_scope *c = &registered->v[k];
			if (c->ctx != r->ctx)
				continue;
			if (strcmp(c->type, "*") && strcmp(c->type, r->type))
				continue;
			if (c->query && !same_query(c->query, r->query))
				continue;
			perms |= c->perms;
		}
		perms &= r->perms;
		if (!perms)
			continue;
		struct salus_scope *d = &g.v[g.n];
		*d = *r;
		d->query = NULL;
		d->perms = perms;
		/* v1 stays v1 only when the grant is still expressible in v1 words. */
		d->v2 = r->v2 || !(perms == rs || perms == cud || perms == SALUS_IA_ALL);
		if (r->query && !(d->query = salus_strdup(r->query))) {
			salus_scopes_release(&g);
			return SALUS_ENOMEM;
		}
		g.n++;
	}
	int rc = g.n ? salus_scopes_format(&g, out) : SALUS_EFORBIDDEN;
	salus_scopes_release(&g);
	return rc;
}
