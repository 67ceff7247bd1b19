/*
 * buf.h — growable byte buffer with a hard cap, and {ptr,len} string views.
 *
 * Invariants (git's strbuf): `p` is never NULL after salus_buf_init (it points
 * at a static empty string until the first append) and is always
 * NUL-terminated; `n` is the length without the NUL; `n < cap` always holds.
 * An append that would exceed `max` or cannot allocate frees the buffer,
 * leaves it initialised-and-empty and returns SALUS_ETOOLARGE / SALUS_ENOMEM
 * (curl's dynbuf rule), so a caller never keeps half a document.
 */
#ifndef SALUS_CORE_BUF_H
#define SALUS_CORE_BUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct salus_slice {
	const char *p;
	size_t n;
};
#define SALUS_SLICE(lit) ((struct salus_slice){(lit), sizeof(lit) - 1})

struct salus_buf {
	char *p;    /* never NULL; NUL-terminated */
	size_t n;   /* bytes used, excluding the NUL */
	size_t cap; /* bytes allocated (0 while p is the static empty string) */
	size_t max; /* hard cap on n */
};

void salus_buf_init(struct salus_buf *b, size_t max);
void salus_buf_release(struct salus_buf *b); /* frees; leaves b unusable until init */
void salus_buf_clear(struct salus_buf *b);   /* release + init with the same max */
void salus_buf_reset(struct salus_buf *b);   /* n = 0, keeps memory */
int salus_buf_add(struct salus_buf *b, const void *p, size_t n);
int salus_buf_adds(struct salus_buf *b, const char *s);
int salus_buf_addc(struct salus_buf *b, char c);
int salus_buf_addf(struct salus_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int salus_buf_vaddf(struct salus_buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Hand the heap string to the caller (who frees it with salus_free); b is re-initialised.
 * Returns NULL only if nothing was ever appended and allocation of "" fails. */
char *salus_buf_detach(struct salus_buf *b, size_t *len /* OUT, may be NULL */);

bool salus_slice_eq(struct salus_slice a, const char *s);
bool salus_slice_eq_nocase(struct salus_slice a, const char *s);
bool salus_slice_starts(struct salus_slice a, const char *prefix);

/* Bounded decimal parse of the whole slice into [min,max]; SALUS_EINVALID otherwise. */
int salus_parse_long(struct salus_slice s, long min, long max, long *out /* OUT */);

#endif
