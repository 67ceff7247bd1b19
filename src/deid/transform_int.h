/*
 * transform_int.h — internals shared by transform.c, surrogate.c, dates.c and
 * fhir_deid.c.  Not for other modules: use transform.h / fhir_deid.h.
 *
 * The value-level functions below append the de-identified form of ONE value
 * (a span's text, or a FHIR element's string) to `out`.  They assume the
 * options were validated (a key is present for keyed actions).
 */
#ifndef SALUS_DEID_TRANSFORM_INT_H
#define SALUS_DEID_TRANSFORM_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "deid/span.h"
#include "deid/transform.h"

/* What happens to one span; chosen from (mode, category) by salus_xf_action. */
enum salus_xf_action {
	SALUS_XA_MASK,      /* "[LABEL]" */
	SALUS_XA_REDACT,    /* "" */
	SALUS_XA_SURROGATE, /* realistic fake of the same shape */
	SALUS_XA_SHIFT,     /* date shifted by the scope's offset */
	SALUS_XA_YEAR,      /* date reduced to its year */
	SALUS_XA_AGE,       /* >= 90 -> "90+", else kept */
	SALUS_XA_ZIP3,      /* first three digits, "000" for restricted prefixes */
	SALUS_XA_PSEUDO,    /* "ID-" + 10 hex digits of a keyed hash */
};

enum salus_xf_action salus_xf_action(const struct salus_deid_xform_opts *o, enum salus_phi t);

/* Apply `a` to one value of category t.  Falls back to the mask when the
 * value cannot be handled (e.g. an unparseable date). */
int salus_xf_value(const struct salus_deid_xform_opts *o, enum salus_xf_action a, enum salus_phi t,
		   const char *v, size_t n, struct salus_buf *out);

/* Keyed BLAKE2b of (domain, scope, value) into out[outlen] (16..64 bytes).
 * scope may be NULL (no scope: project-wide).  Returns SALUS_ECRYPTO on failure. */
int salus_xf_hash(const struct salus_deid_xform_opts *o, const char *domain, const char *scope,
		  const char *v, size_t n, unsigned char *out, size_t outlen);

/* The scope's date offset in days: non-zero, within +-365 (a multiple of 7
 * within +-364 with keep_weekday). */
int salus_xf_shift_days(const struct salus_deid_xform_opts *o, long *days /* OUT */);

/* Date handling (dates.c).  Renders the date `v` shifted (SALUS_XA_SHIFT) or
 * as its year (SALUS_XA_YEAR) in the input's own format.  *status: 0 written,
 * 1 not a date this parser knows, 2 the date reveals an age over 89 (nothing
 * written in both cases).  `fhir_instant` keeps a FHIR instant valid in year
 * mode ("2019-01-01T00:00:00Z"). */
enum { SALUS_XF_DATE_OK = 0, SALUS_XF_DATE_BAD = 1, SALUS_XF_DATE_OLD = 2 };
int salus_xf_date(const struct salus_deid_xform_opts *o, enum salus_xf_action a, const char *v, size_t n,
		  bool fhir_instant, int *status /* OUT */, struct salus_buf *out);
/* Days since 1970-01-01 for a proleptic Gregorian date, and back. */
int64_t salus_xf_days_from_civil(int y, int m, int d);
void salus_xf_civil_from_days(int64_t z, int *y, int *m, int *d);
/* The reference year of o (o->ref_year, or the current UTC year). */
int salus_xf_ref_year(const struct salus_deid_xform_opts *o);

/* Surrogates (surrogate.c), all shape-preserving and consistent per scope. */
int salus_xf_surrogate(const struct salus_deid_xform_opts *o, enum salus_phi t, const char *v, size_t n,
		       struct salus_buf *out);
/* "ID-" + 10 lower-case hex digits of a keyed hash of the normalised value
 * (letters and digits only, upper-cased), independent of the scope. */
int salus_xf_pseudonym(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out);
/* ZIP3 generalisation; SALUS_EINVALID when v does not start with 5 digits. */
int salus_xf_zip3(const char *v, size_t n, struct salus_buf *out);
/* True for the restricted three-digit ZIP prefixes of the Safe Harbor guidance. */
bool salus_xf_zip3_restricted(const char *zip3);

#endif
