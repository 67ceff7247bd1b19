/*
 * fake_kv.c — an in-memory stand-in for the store's key/value functions, so
 * the auth unit tests run without a database (test_auth links it instead of
 * salus_store).  fake_kv_fail makes every call fail with SALUS_EIO.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "store/store.h"
#include "fake_kv.h"

struct ent {
	char *ns, *key, *val;
	size_t n;
	struct ent *next;
};
static struct ent *head;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int failing;
unsigned long fake_kv_gets;

void fake_kv_fail(int on)
{
	failing = on;
}

static struct ent **find(const char *ns, const char *key)
{
	struct ent **e = &head;
	for (; *e; e = &(*e)->next)
		if (!strcmp((*e)->ns, ns) && !strcmp((*e)->key, key))
			return e;
	return e;
}

int salus_store_kv_put(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n)
{
	(void)s;
	if (failing)
		return SALUS_EIO;
	pthread_mutex_lock(&mu);
	struct ent **e = find(ns, key);
	if (!*e) {
		*e = salus_calloc(1, sizeof **e);
		(*e)->ns = salus_strdup(ns);
		(*e)->key = salus_strdup(key);
	}
	salus_free((*e)->val);
	(*e)->val = salus_strndup(val, n);
	(*e)->n = n;
	pthread_mutex_unlock(&mu);
	return 0;
}

int salus_store_kv_get(struct salus_store *s, const char *ns, const char *key, char **val, size_t *n)
{
	(void)s;
	if (failing)
		return SALUS_EIO;
	pthread_mutex_lock(&mu);
	fake_kv_gets++;
	struct ent **e = find(ns, key);
	int rc = SALUS_ENOTFOUND;
	if (*e) {
		*val = salus_strndup((*e)->val, (*e)->n);
		if (n)
			*n = (*e)->n;
		rc = *val ? 0 : SALUS_ENOMEM;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

int salus_store_kv_del(struct salus_store *s, const char *ns, const char *key)
{
	(void)s;
	if (failing)
		return SALUS_EIO;
	pthread_mutex_lock(&mu);
	struct ent **e = find(ns, key), *d = *e;
	if (d) {
		*e = d->next;
		salus_free(d->ns);
		salus_free(d->key);
		salus_free(d->val);
		salus_free(d);
	}
	pthread_mutex_unlock(&mu);
	return d ? 0 : SALUS_ENOTFOUND;
}

int salus_store_kv_list(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx)
{
	(void)s;
	if (failing)
		return SALUS_EIO;
	/* key order, as the contract says: repeated minimum search (tests hold few keys) */
	const char *last = NULL;
	for (;;) {
		const struct ent *best = NULL;
		for (const struct ent *e = head; e; e = e->next)
			if (!strcmp(e->ns, ns) && (!last || strcmp(e->key, last) > 0) &&
			    (!best || strcmp(e->key, best->key) < 0))
				best = e;
		if (!best)
			return 0;
		int rc = cb(ctx, best->key, best->val, best->n);
		if (rc)
			return rc;
		last = best->key;
	}
}

/* One-time values, kept as kv entries in a namespace of their own ("once:" + ns)
 * whose value is the expiry as decimal text; the mutex makes the claim atomic. */
int salus_store_once_claim(struct salus_store *s, const char *ns, const char *key, int64_t exp_s, int64_t now_s)
{
	(void)s;
	if (failing)
		return SALUS_EIO;
	if (!ns || !key || exp_s <= now_s)
		return SALUS_EINVALID;
	char full[300], val[32];
	snprintf(full, sizeof full, "once:%s", ns);
	int n = snprintf(val, sizeof val, "%lld", (long long)exp_s);
	pthread_mutex_lock(&mu);
	struct ent **e = find(full, key);
	int rc = 0;
	if (*e && strtoll((*e)->val, NULL, 10) > now_s) {
		rc = SALUS_EEXISTS;
	} else {
		if (!*e) {
			*e = salus_calloc(1, sizeof **e);
			(*e)->ns = salus_strdup(full);
			(*e)->key = salus_strdup(key);
		}
		salus_free((*e)->val);
		(*e)->val = salus_strndup(val, (size_t)n);
		(*e)->n = (size_t)n;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void fake_kv_clear(void)
{
	while (head) {
		struct ent *d = head;
		head = d->next;
		salus_free(d->ns);
		salus_free(d->key);
		salus_free(d->val);
		salus_free(d);
	}
}
