/*
 * deid.h — the PHI detector: find the 18 HIPAA Safe Harbor identifiers in
 * clinical free text.
 *
 * Pipeline (docs/deid.md): validate UTF-8 → normalise non-ASCII with utf8proc
 * (compatibility decomposition, accents stripped, dashes/quotes/spaces lumped
 * to ASCII; offsets are mapped back) → one Hyperscan pass over every pattern
 * (dates, phones, e-mails, URLs, IPs, SSNs, IDs, ZIPs, streets, ages over 89,
 * field labels) → tokenizer + dictionary pass (first names, surnames, cities,
 * with common-word, medical-term and abbreviation exclusions) → context rules
 * (titles, relations, "seen by", "lives in", labels, credentials,
 * capitalisation, all-caps notes) → span merge.  Patterns and dictionaries are
 * compiled at build time; salus_deid_new only deserializes them.
 *
 * Lifecycle: a `struct salus_deid` holds the database and the scratch and work
 * buffers of ONE thread; create one per thread (salus_deid_new), scan any
 * number of texts with it, free it with salus_deid_free.  After the first few
 * texts a scan allocates nothing (buffers are reused and grow to the largest
 * text seen).
 */
#ifndef SALUS_DEID_DEID_H
#define SALUS_DEID_DEID_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deid/span.h"

struct salus_deid;

/* Create a detector.  Errors: SALUS_ENOMEM; SALUS_EINTERNAL if Hyperscan
 * refuses the database (unsupported CPU).  *out is written only on success. */
int salus_deid_new(struct salus_deid **out /* OUT */);
/* NULL-safe. */
void salus_deid_free(struct salus_deid *d);

/* Scan `len` bytes of UTF-8 text.  On success *spans points at `*n` spans in
 * increasing, non-overlapping order of byte offsets into `text`; the array is
 * owned by `d` and valid until the next scan or free (borrowed).
 * Errors: SALUS_EINVALID (invalid UTF-8 or a NUL byte; *why names the
 * problem, never the text), SALUS_ETOOLARGE (len > SALUS_MAX_NOTE),
 * SALUS_ENOMEM.  `why` may be NULL. */
int salus_deid_scan(struct salus_deid *d, const char *text, size_t len, const struct salus_span **spans /* OUT */,
		    size_t *n /* OUT */, const char **why /* OUT */);

/* Minimum confidence of a reported span (default 0.5, clamped to 0..1). */
void salus_deid_set_threshold(struct salus_deid *d, float min_confidence);

/* Explainability: the name of the pattern, dictionary or context rule that
 * produced span.rule ("date.m/d/y", "name.after-title"...), and a one-line
 * description of it; "unknown" / "" for ids out of range.  Static strings. */
const char *salus_deid_rule_name(uint16_t rule);
const char *salus_deid_rule_desc(uint16_t rule);
/* "pattern", "dictionary" or "context". */
const char *salus_deid_rule_kind(uint16_t rule);

/* Number of Unicode code points in n bytes of valid UTF-8 (for character
 * offsets: a byte offset b becomes salus_deid_utf8_chars(text, b)). */
size_t salus_deid_utf8_chars(const char *s, size_t n);
/* Check that s[0..n) is valid UTF-8 without NUL; false and *why otherwise. */
bool salus_deid_utf8_valid(const char *s, size_t n, const char **why /* OUT */);

/* Number of words in the compiled dictionary (for `salus deid scan --stats`). */
size_t salus_deid_dict_size(void);

#endif
