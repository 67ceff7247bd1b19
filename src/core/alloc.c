/* alloc.c — allocation seam with fault injection for tests (see alloc.h). */
#include "core/alloc.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_ulong count;
static atomic_ulong fail_at;
static atomic_int fail_sticky;

static int should_fail(void)
{
	unsigned long f = atomic_load_explicit(&fail_at, memory_order_relaxed);
	if (!f)
		return 0;
	unsigned long c = atomic_fetch_add(&count, 1) + 1;
	return c == f || (c > f && atomic_load(&fail_sticky));
}

void *salus_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	return malloc(n ? n : 1);
}

void *salus_calloc(size_t nmemb, size_t size)
{
	if (should_fail())
		return NULL;
	return calloc(nmemb ? nmemb : 1, size ? size : 1);
}

void *salus_realloc(void *p, size_t n)
{
	if (should_fail())
		return NULL;
	return realloc(p, n ? n : 1);
}

void salus_free(void *p)
{
	free(p);
}

char *salus_strndup(const char *s, size_t n)
{
	char *d = salus_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

char *salus_strdup(const char *s)
{
	return salus_strndup(s, strlen(s));
}

void salus_alloc_install(void)
{
	json_set_alloc_funcs(salus_malloc, salus_free);
}

unsigned long salus_alloc_fail_at(unsigned long n, int sticky)
{
	unsigned long c = atomic_exchange(&count, 0);
	atomic_store(&fail_sticky, sticky);
	atomic_store(&fail_at, n);
	return c;
}
