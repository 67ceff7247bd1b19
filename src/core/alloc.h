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

/* ---- JSON arenas -------------------------------------------------------------
 * A request's parsed JSON tree is tens of thousands of small jansson
 * allocations, each malloc'ed and later freed one by one (and the frees make
 * glibc consolidate its fast bins when some thread next frees a large block).
 * Between salus_json_arena_enter and _leave, jansson's allocations on the
 * calling thread are carved from the arena instead; jansson's frees of arena
 * memory (on any thread) do nothing, and salus_json_arena_release gives the
 * memory back at once.  Rules: a tree built in an arena (every value jansson
 * allocated while it was entered) must be gone — json_decref'ed, no reference
 * kept anywhere — before the arena is released; memory jansson hands to its
 * caller (json_dumps text) must not be allocated while an arena is entered.
 * Chunks come from one address range reserved at the first use, so telling
 * arena memory from malloc's is two compares; when it cannot be reserved, or
 * is used up, the arena falls back to salus_malloc (nothing changes but speed).
 * salus_alloc_install() must have been called for arenas to take effect. */
struct salus_json_arena {
	void *chunk;    /* the chunk being carved (its first word links the previous one) */
	size_t used;
	size_t nchunks; /* chunks held */
	void *prev;     /* the thread's arena before enter (arenas do not nest across threads) */
};
/* Start carving the calling thread's jansson allocations from a (zeroed by
 * the caller: `struct salus_json_arena a = {0};`). */
void salus_json_arena_enter(struct salus_json_arena *a);
/* Stop (allocations go to salus_malloc again); a keeps its memory. */
void salus_json_arena_leave(struct salus_json_arena *a);
/* Give a's chunks back (see the rules above); a is empty and reusable. */
void salus_json_arena_release(struct salus_json_arena *a);

/* Testing: fail the n-th allocation from now (1-based), and every one after it
 * when `sticky`; 0 disables.  Returns the number of allocations since the last
 * call (handy to size a torture loop). */
unsigned long salus_alloc_fail_at(unsigned long n, int sticky);

#endif
