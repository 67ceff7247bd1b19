/*
 * splice.h — bounded scanning, copying and splicing of raw JSON text.
 *
 * Round-trip fidelity (docs/fhir-rest.md): jansson turns numbers into double
 * or long long, so `1.50` would come back as `1.5` and `1e2` as `100.0`.  The
 * write path therefore never re-serialises a client's resource: it keeps the
 * client's bytes and splices the server's `id` and `meta` into them.  This
 * module is that splicer, plus the pieces the transaction processor needs to
 * work on raw text: an iterator over the members of an object (or the
 * elements of an array) and a copier that strips insignificant whitespace and
 * can replace string values (reference rewriting).
 *
 * The text is normally already validated by jansson, but every function is
 * safe on arbitrary bytes (fuzzed: tests/fuzz/splice.c): malformed input gives
 * SALUS_EINVALID, never a read past `n`.  Nesting is bounded by
 * SALUS_MAX_JSON_DEPTH.  Nothing here logs or echoes input.
 */
#ifndef SALUS_STORE_SPLICE_H
#define SALUS_STORE_SPLICE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* Iterator over the members of a JSON object or the elements of an array. */
struct salus_json_iter {
	const char *p;
	size_t n;
	size_t pos;
	char close; /* '}' or ']' */
	bool first;
	bool done;
	bool checked; /* the text is known to be valid JSON: values are skipped, not checked */
};

/* Start iterating the object or array whose text is p[0..n) (leading and
 * trailing whitespace allowed).  Errors: SALUS_EINVALID (not an object or
 * array). */
int salus_json_iter_init(struct salus_json_iter *it, const char *p, size_t n);

/* The next member: *key is the raw key between the quotes (escapes intact;
 * an empty slice with p == NULL for array elements), *val the raw text of the
 * value without surrounding whitespace.  Returns 1 for a member, 0 at the end,
 * SALUS_EINVALID for malformed text. */
int salus_json_iter_next(struct salus_json_iter *it, struct salus_slice *key /* OUT */,
			 struct salus_slice *val /* OUT */);

/* Find member `name` (plain ASCII, compared with the raw key) of the object
 * text p[0..n).  Returns 1 and sets *val when found, 0 when absent,
 * SALUS_EINVALID for malformed text. */
int salus_json_member(const char *p, size_t n, const char *name, struct salus_slice *val /* OUT */);

/* The same two on text already accepted by a strict JSON parser (the body a
 * request's tree was parsed from): each value is skipped by matching
 * brackets outside strings instead of being checked token by token, several
 * times faster.  On text that is not valid JSON the slices are unspecified
 * (but within p[0..n)). */
int salus_json_iter_init_checked(struct salus_json_iter *it, const char *p, size_t n);
int salus_json_member_checked(const char *p, size_t n, const char *name, struct salus_slice *val /* OUT */);

/* String rewriting during a copy.  `key` is the member key the string value
 * belongs to (for strings inside arrays: the key of the enclosing member),
 * `str` the decoded string (UTF-8, not NUL-terminated).  Return a
 * NUL-terminated replacement (borrowed; it is escaped when written) or NULL to
 * keep the original bytes.  Keys are never passed. */
typedef const char *(*salus_json_str_cb)(void *ctx, struct salus_slice key, struct salus_slice str);

/* Append the JSON value p[0..n) to out without insignificant whitespace,
 * every other byte (numbers, escapes, unicode) exactly as written; cb (may be
 * NULL) can replace string values.  Errors: SALUS_EINVALID, SALUS_ENOMEM,
 * SALUS_ETOOLARGE (out's cap). */
int salus_json_copy(struct salus_buf *out, const char *p, size_t n, salus_json_str_cb cb, void *ctx);

/* salus_json_copy on text already accepted by a strict JSON parser: the same
 * output and callbacks, in one pass that copies runs between whitespace and
 * looks only at quotes, brackets and separators.  Errors: SALUS_EINVALID
 * (unterminated text, or a string with a lone surrogate escape given to cb),
 * SALUS_ENOMEM, SALUS_ETOOLARGE.  On text that is not valid JSON the output
 * is unspecified (reads stay within p[0..n)). */
int salus_json_copy_checked(struct salus_buf *out, const char *p, size_t n, salus_json_str_cb cb, void *ctx);

/* Write a resource: `{"resourceType":<as in raw>,"id":<id>,"meta":<meta>`,
 * then every other top-level member of raw in its order, copied with
 * salus_json_copy (cb as there), then `}`.  meta is JSON object text (e.g. a
 * compact dump of the merged meta); id is a FHIR id (NULL: none written).
 * Errors: SALUS_EINVALID when raw is not an object, has no string
 * resourceType, or has a top-level key written with escapes (the caller then
 * falls back to serialising its parsed tree); SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_json_splice(struct salus_buf *out, const char *raw, size_t n, const char *id, const char *meta,
		      size_t meta_len, salus_json_str_cb cb, void *ctx);

/* salus_json_splice for the write path's common case, on text known to be
 * valid, compact JSON — what salus_json_copy_checked writes from text a strict
 * parser accepted (a Bundle entry's resource with its references rewritten):
 * one pass with the checked iterator, members copied as written.  The meta
 * written is the text's own meta object with versionId and lastUpdated set to
 * vid and instant (server-made ASCII): replaced where they stand, else added
 * at the end, as jansson writes the stamped tree's meta.  Errors: SALUS_EINVALID
 * when the general path must decide (not an object, no string resourceType, a
 * meta that is not an object, a top-level or meta key written with escapes,
 * more than 64 top-level members); SALUS_ENOMEM, SALUS_ETOOLARGE.  On text
 * that is not valid JSON the output is unspecified (reads stay within raw[0..n)). */
int salus_json_splice_compact(struct salus_buf *out, const char *raw, size_t n, const char *id, const char *vid,
			      const char *instant);

#endif
