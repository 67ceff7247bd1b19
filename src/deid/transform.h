/*
 * transform.h — turn detected PHI spans into de-identified text.
 *
 * The detector (deid.h) finds spans; this module rewrites them.  One call,
 * salus_deid_transform(), copies `text` to `out` and replaces every span
 * according to a mode.  Each mode says what happens to each PHI category; a
 * category a mode has no special rule for is masked, so no mode ever leaves a
 * detected span in clear (the one exception: ages under 90 are not PHI and the
 * modes that generalise ages keep them).
 *
 *   mode          NAME/LOCATION  PHONE/EMAIL/URL/IP  SSN/ID      ZIP        DATE        AGE
 *   mask          [NAME]...      [PHONE]...          [SSN]/[ID]  [ZIP]      [DATE]      [AGE]
 *   redact        (removed)      (removed)           (removed)   (removed)  (removed)   (removed)
 *   surrogate     fake, same shape                   fake digits fake       shifted     90+ if >= 90
 *   shift-dates   mask           mask                mask        mask       shifted     mask
 *   generalise    mask           mask                mask        ZIP3/000   year        90+ if >= 90
 *   pseudonym     mask           mask                ID-xxxxxxxxxx mask     mask        mask
 *   safe-harbor   fake           fake                ID-xxxxxxxxxx ZIP3/000 year(*)     90+ if >= 90
 *   (*) or shifted when opts.shift_dates is set.
 *
 * Keyed modes (surrogate, shift-dates, pseudonym, safe-harbor) need a
 * SALUS_DEID_KEY_LEN-byte key: every fake value, date offset and pseudonym is
 * a keyed BLAKE2b hash, so the same key gives the same output (consistency
 * across runs and files) and nobody without the key can invert or recompute
 * them.  Surrogates and date offsets are also bound to `scope` (a patient or
 * project id): the same real value maps to the same fake within one scope and
 * (almost always) to a different one in another.  Pseudonyms ignore the scope
 * so identifiers stay linkable across patients of one keyed project.
 *
 * Dates older than 89 years before opts.ref_year (a year that reveals an age
 * over 89) are masked whatever the mode.  Unparseable dates are masked.
 */
#ifndef SALUS_DEID_TRANSFORM_H
#define SALUS_DEID_TRANSFORM_H
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "deid/span.h"

#define SALUS_DEID_KEY_LEN 32 /* bytes of a de-identification key */

/* X(ENUM, "cli-name") — the transform modes, in the order of the table above. */
#define SALUS_DEID_MODE_MAP(X)             \
	X(MASK, "mask")                    \
	X(REDACT, "redact")                \
	X(SURROGATE, "surrogate")          \
	X(SHIFT_DATES, "shift-dates")      \
	X(GENERALISE, "generalise")        \
	X(PSEUDONYM, "pseudonym")          \
	X(SAFE_HARBOR, "safe-harbor")

enum salus_deid_mode {
#define SALUS_DEID_MODE_ENUM(e, s) SALUS_DEID_##e,
	SALUS_DEID_MODE_MAP(SALUS_DEID_MODE_ENUM)
#undef SALUS_DEID_MODE_ENUM
	SALUS_DEID__MODE_COUNT
};

struct salus_deid_xform_opts {
	enum salus_deid_mode mode;
	const unsigned char *key; /* SALUS_DEID_KEY_LEN bytes (borrowed); NULL for mask/redact/generalise */
	size_t key_len;           /* must be SALUS_DEID_KEY_LEN when key is set */
	const char *scope;        /* patient or project id for surrogates and date shift; NULL = "" */
	bool keep_weekday;        /* date shift by a multiple of 7 days */
	bool shift_dates;         /* safe-harbor: shift dates instead of keeping only the year */
	int ref_year;             /* "now" for the age-over-89 rule; 0 = the current UTC year */
};

/* Parse a mode name ("mask", "redact", "surrogate", "shift-dates", "generalise"
 * or "generalize", "pseudonym", "safe-harbor").  SALUS_EINVALID if unknown. */
int salus_deid_mode_parse(const char *name, enum salus_deid_mode *out /* OUT */);
/* The canonical name of a mode; "unknown" out of range. */
const char *salus_deid_mode_name(enum salus_deid_mode m);
/* True when the mode needs a key. */
bool salus_deid_mode_keyed(enum salus_deid_mode m);

/* Append `text` (n bytes of UTF-8) to `out` with every span replaced per
 * o->mode.  `spans` must be sorted by start, non-overlapping, with
 * start <= end <= n (byte offsets); otherwise SALUS_EINVALID and nothing is
 * appended.  SALUS_EUSAGE if the mode is keyed and o->key is NULL or not
 * SALUS_DEID_KEY_LEN bytes; SALUS_ENOMEM / SALUS_ETOOLARGE from the buffer
 * (which is then empty, core/buf.h's rule).  The output is valid UTF-8 when
 * the input is and span bounds fall on character boundaries. */
int salus_deid_transform(const struct salus_deid_xform_opts *o, const char *text, size_t n,
			 const struct salus_span *spans, size_t nspans, struct salus_buf *out);

/* Keys.  A key lives in sodium_malloc'd memory (guarded, locked) and must be
 * released with salus_deid_key_free, which wipes it.
 * salus_deid_key_load reads a file holding exactly 32 raw bytes, or 64 hex
 * digits (surrounding whitespace allowed).  Errors: SALUS_ENOTFOUND (cannot
 * open), SALUS_EINVALID (wrong size or not hex), SALUS_ENOMEM / SALUS_ECRYPTO
 * (libsodium).  The error never contains key material. */
int salus_deid_key_load(const char *path, unsigned char **key /* OUT: SALUS_DEID_KEY_LEN bytes */);
/* A fresh random key (for runs without --key: outputs are not reproducible). */
int salus_deid_key_random(unsigned char **key /* OUT: SALUS_DEID_KEY_LEN bytes */);
/* Wipe and free a key from the two functions above; NULL-safe. */
void salus_deid_key_free(unsigned char *key);

#endif
