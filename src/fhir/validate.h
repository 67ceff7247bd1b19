/*
 * validate.h — validation of FHIR R4 resources against the official
 * definitions (fhir/defs.h), on every write and in the $validate operation.
 *
 * What is checked (docs/validation.md has the details and the known gaps):
 * element names at every level (unknown elements are errors, also in data
 * types, backbone elements, `_element` primitive-extension siblings and
 * extensions), JSON shapes (arrays exactly where max > 1, no empty arrays,
 * objects or strings, no null), data types and choice types (exactly one
 * value[x]), cardinality (min/max), primitive formats (id, date, dateTime,
 * instant, time, decimal, integer ranges, uri, url, canonical, oid, uuid,
 * code, base64Binary, boolean, string, markdown, xhtml), contained
 * resources (recursively) and local references, reference shapes and their
 * target types, required bindings to the base value sets (code, Coding,
 * CodeableConcept), and the invariants ele-1, ext-1, ref-1, dom-2..dom-5,
 * pat-1, obs-6, obs-7, bdl-1..bdl-5, bdl-7..bdl-12 (the last ones through
 * the FHIRPath evaluator, with the expressions of the definitions).
 *
 * Every issue carries severity, code, a PHI-free diagnostics text (never an
 * element's value) and the FHIRPath expression of the element
 * ("Patient.name[0].given[1]", "Observation.value.ofType(Quantity)").  All
 * issues are reported at once, up to SALUS_VALIDATE_MAX_ISSUES.
 *
 * Thread-safe; a valid resource costs no heap allocation beyond the
 * invariant expressions parsed once per process.
 */
#ifndef SALUS_FHIR_VALIDATE_H
#define SALUS_FHIR_VALIDATE_H
#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"

#define SALUS_VALIDATE_MAX_ISSUES 100

enum salus_validate_mode {
	SALUS_VALIDATE_ANY = 0, /* the resource as it is (what every write checks) */
	SALUS_VALIDATE_CREATE,  /* as for ANY (a server-assigned id replaces any id) */
	SALUS_VALIDATE_UPDATE,  /* the resource must carry an id */
	SALUS_VALIDATE_DELETE,  /* nothing about the content is checked */
};

/* Validate `resource` (a resource JSON object).  expected_type, when not
 * NULL, is the type the resourceType must name.
 *
 * Returns 0 when there is no error-level issue; SALUS_EINVALID when the
 * resource breaks the structure/type/format/cardinality/binding rules
 * (HTTP 400); SALUS_EUNPROCESSABLE when the only errors are failed
 * invariants (HTTP 422); SALUS_ENOMEM.
 *
 * outcome (may be NULL) is replaced by an OperationOutcome: the issues
 * found, or a single information issue "ok" when there are none.
 * *nissues (may be NULL) is the number of error issues (capped).
 * On SALUS_ENOMEM outcome is left empty. */
int salus_fhir_validate(const json_t *resource, const char *expected_type, enum salus_validate_mode mode,
			struct salus_buf *outcome /* OUT, may be NULL */, int *nissues /* OUT, may be NULL */);

/* The $validate operation (type or instance level).  body is the request
 * body: a resource, or a Parameters with `resource` and optionally `mode`
 * (create | update | delete).  type is the type of the URL; id the id of an
 * instance-level call or NULL (an update must then carry that id).  out gets
 * the OperationOutcome.  Returns the HTTP status: 200 when validation ran
 * (whatever its result), 400 when the request itself is unusable (not
 * JSON, bad Parameters, unknown mode), 500 when out of memory. */
int salus_fhir_validate_op(const char *type, const char *id, const char *body, size_t len, struct salus_buf *out);

/* The invariants evaluated with FHIRPath, for tests and documentation: the
 * i-th key ("pat-1"), context (a type "Bundle" or an element path
 * "Patient.contact") and expression, exactly as in the R4 definitions.
 * SALUS_OK, or SALUS_ENOTFOUND when i is out of range. */
int salus_fhir_validate_invariant_at(size_t i, const char **key /* OUT */, const char **context /* OUT */,
				     const char **expression /* OUT */);

#endif
