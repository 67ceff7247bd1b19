/*
 * fhir_deid.h — de-identify FHIR R4 resources, Bundles and NDJSON per Safe
 * Harbor, keeping the output valid FHIR JSON.
 *
 * Structured elements are handled by their place in the resource, with the
 * action transform.h's mode gives their category:
 *   HumanName family/given/text (and Reference.display of a person) NAME;
 *   Address line/city/district LOCATION, postalCode ZIP (state and country
 *   stay; Address.text is rebuilt; geolocation extensions are removed);
 *   ContactPoint.value PHONE / EMAIL / URL by system; Identifier.value ID
 *   (SSN for us-ssn systems; system kept); every date, dateTime and instant
 *   (birthDate, period start/end, effective*, meta.lastUpdated...) DATE —
 *   in the masking modes dates become their year, because an element cannot
 *   hold "[DATE]"; a date revealing an age over 89 is set to the year
 *   (reference year - 90).
 * Resource ids, Bundle fullUrls and references (Patient/123, absolute URLs,
 * urn:uuid:...) are always replaced by keyed pseudonyms of the id, the same
 * id giving the same pseudonym everywhere, so the graph stays linkable.
 * Photos are removed; attachment data is de-identified as text when its
 * contentType is text/..., removed otherwise, and attachment URLs are removed.
 * Free text (narrative div, note/comment/description/valueString/... and
 * text attachments) goes through the detector (`scan`) and the transform; the
 * narrative's markup is kept and only its text and attribute values change.
 *
 * Scope: surrogates and the date offset of a resource are bound to its
 * patient: "Patient/<id>" for a Patient, the subject/patient reference for
 * other resources (urn:uuid references resolved through the Bundle's
 * fullUrls), the project ("" ) when there is none.  A key is required in every
 * mode (ids are always pseudonymised).
 */
#ifndef SALUS_DEID_FHIR_DEID_H
#define SALUS_DEID_FHIR_DEID_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/buf.h"
#include "deid/span.h"
#include "deid/transform.h"

/* A free-text detector: find PHI spans in text[0..n) (UTF-8), sorted by start,
 * non-overlapping, byte offsets.  *spans is borrowed: valid until the next
 * call with the same ctx (salus_deid_scan's contract).  Returns 0 or a
 * SALUS_E* code. */
typedef int (*salus_deid_scan_fn)(void *ctx, const char *text, size_t n, const struct salus_span **spans /* OUT */,
				  size_t *nspans /* OUT */);

/* The real detector as a salus_deid_scan_fn: ctx is a `struct salus_deid *`
 * from salus_deid_new (deid.h). */
int salus_deid_fhir_scan_detector(void *ctx, const char *text, size_t n, const struct salus_span **spans /* OUT */,
				  size_t *nspans /* OUT */);

struct salus_deid_fhir_opts {
	struct salus_deid_xform_opts x; /* mode, key (required), keep_weekday, shift_dates, ref_year;
					   x.scope is ignored: each resource's patient is the scope */
	salus_deid_scan_fn scan;        /* detector for free text; NULL: free text is replaced whole
					   ("[REDACTED]", narrative by a generated div) */
	void *scan_ctx;                 /* passed to scan */
};

/* De-identify one resource (a Bundle included, with its entries) in place.
 * Errors: SALUS_EINVALID (not an object with a string resourceType, or
 * nested deeper than SALUS_MAX_JSON_DEPTH), SALUS_EUSAGE (no key),
 * SALUS_ENOMEM, or the scan callback's error. */
int salus_deid_fhir_resource(const struct salus_deid_fhir_opts *o, json_t *res);

/* Parse one JSON document (n bytes), de-identify it, and append it to out as
 * JSON (`compact`: one line, no newline; otherwise indented by 2 with a final
 * newline).  Errors: SALUS_EINVALID (not JSON, invalid UTF-8, not a FHIR
 * resource) and those of salus_deid_fhir_resource; `out` is then unchanged. */
int salus_deid_fhir_json(const struct salus_deid_fhir_opts *o, const char *in, size_t n, bool compact,
			 struct salus_buf *out);

/* Whole input, shape detected: when the first non-blank line is by itself a
 * complete JSON value the input is NDJSON and each non-blank line is written
 * back as one compact line; otherwise it is one (pretty-printed) document.
 * For NDJSON a bad line stops the run: *bad_line (may be NULL) gets its
 * 1-based number, 0 when the error is not tied to a line. */
int salus_deid_fhir_text(const struct salus_deid_fhir_opts *o, const char *in, size_t n, struct salus_buf *out,
			 size_t *bad_line /* OUT */);

#endif
