/* alloc.c — allocation seam with fault injection for tests (see alloc.h). */
#include "core/alloc.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* ---- JSON arenas (see alloc.h) ---- */

#define AR_CHUNK ((size_t)1 << 20)    /* bytes per chunk */
#define AR_REGION ((size_t)1 << 33)   /* address range reserved for chunks (8 GiB, no memory) */
#define AR_KEEP 64                    /* free chunks kept ready; beyond, their pages go back */
#define AR_ALIGN 16

static char *ar_base;                 /* the reserved range; NULL: arenas fall back to malloc */
static pthread_once_t ar_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t ar_mu = PTHREAD_MUTEX_INITIALIZER;
static size_t ar_next;                /* under ar_mu: chunks handed out of the range so far */
static void *ar_free;                 /* under ar_mu: released chunks, linked by their first word */
static size_t ar_nfree;
static _Thread_local struct salus_json_arena *ar_cur;

static void ar_init(void)
{
	void *p = mmap(NULL, AR_REGION, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ar_base = p == MAP_FAILED ? NULL : p;
}

static bool ar_owns(const void *p)
{
	const char *c = p;
	return ar_base && c >= ar_base && c < ar_base + AR_REGION;
}

/* A chunk for an arena, or NULL (range used up, or mprotect failed). */
static void *ar_chunk_get(void)
{
	void *c = NULL;
	pthread_mutex_lock(&ar_mu);
	if (ar_free) {
		c = ar_free;
		ar_free = *(void **)c;
		ar_nfree--;
	} else if (ar_next < AR_REGION / AR_CHUNK) {
		c = ar_base + ar_next * AR_CHUNK;
		if (mprotect(c, AR_CHUNK, PROT_READ | PROT_WRITE))
			c = NULL;
		else
			ar_next++;
	}
	pthread_mutex_unlock(&ar_mu);
	return c;
}

static void *ar_alloc(struct salus_json_arena *a, size_t n)
{
	n = (n + AR_ALIGN - 1) & ~(size_t)(AR_ALIGN - 1);
	if (!ar_base || n > AR_CHUNK / 4)
		return salus_malloc(n); /* big values: malloc's (freed by free) */
	if (should_fail())
		return NULL;
	if (!a->chunk || a->used + n > AR_CHUNK) {
		void *c = ar_chunk_get();
		if (!c)
			return salus_malloc(n);
		*(void **)c = a->chunk;
		a->chunk = c;
		a->used = AR_ALIGN; /* the link */
		a->nchunks++;
	}
	void *p = (char *)a->chunk + a->used;
	a->used += n;
	return p;
}

static void *json_malloc_hook(size_t n)
{
	struct salus_json_arena *a = ar_cur;
	return a ? ar_alloc(a, n ? n : 1) : salus_malloc(n);
}

static void json_free_hook(void *p)
{
	if (!ar_owns(p)) /* arena memory goes back with its arena */
		salus_free(p);
}

void salus_json_arena_enter(struct salus_json_arena *a)
{
	pthread_once(&ar_once, ar_init);
	a->prev = ar_cur;
	ar_cur = a;
}

void salus_json_arena_leave(struct salus_json_arena *a)
{
	if (ar_cur == a)
		ar_cur = a->prev;
	a->prev = NULL;
}

void salus_json_arena_release(struct salus_json_arena *a)
{
	void *c = a->chunk;
	if (ar_cur == a)
		ar_cur = a->prev;
	pthread_mutex_lock(&ar_mu);
	while (c) {
		void *next = *(void **)c;
		if (ar_nfree >= AR_KEEP)
			madvise(c, AR_CHUNK, MADV_DONTNEED); /* kept in the list, its pages returned */
		*(void **)c = ar_free;
		ar_free = c;
		ar_nfree++;
		c = next;
	}
	pthread_mutex_unlock(&ar_mu);
	memset(a, 0, sizeof *a);
}

void salus_alloc_install(void)
{
	json_set_alloc_funcs(json_malloc_hook, json_free_hook);
}

unsigned long salus_alloc_fail_at(unsigned long n, int sticky)
{
	unsigned long c = atomic_exchange(&count, 0);
	atomic_store(&fail_sticky, sticky);
	atomic_store(&fail_at, n);
	return c;
}
