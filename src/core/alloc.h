/*
 * alloc.h — the one allocation seam.
 *
 * All heap memory in Salus goes through salus_malloc/calloc/realloc/free (and
 * jansson is pointed at them by salus_alloc_install()).  A test can make the
 * n-th allocation fail (salus_alloc_fail_at) and check that every path returns
 * SALUS_ENOMEM without leaking.  Raw malloc/free are banned in src/ outside
 * this file (scripts/check-banned.sh).
 */
#ifndef SALUS_CORE_ALLOC_H
#define SALUS_CORE_ALLOC_H
#include <stddef.h>

void *salus_malloc(size_t n);
void *salus_calloc(size_t nmemb, size_t size);
void *salus_realloc(void *p, size_t n);
void salus_free(void *p); /* NULL-safe */
/* Duplicate a NUL-terminated string / n bytes (+NUL); NULL on failure. */
char *salus_strdup(const char *s);
char *salus_strndup(const char *s, size_t n);

/* Route jansson's allocations through the seam.  Call once at start-up. */
void salus_alloc_install(void);

/* Testing: fail the n-th allocation from now (1-based), and every one after it
 * when `sticky`; 0 disables.  Returns the number of allocations since the last
 * call (handy to size a torture loop). */
unsigned long salus_alloc_fail_at(unsigned long n, int sticky);

#endif
