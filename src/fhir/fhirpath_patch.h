/*
 * fhirpath_patch.h — FHIRPath Patch (FHIR R4 fhirpatch.html) over jansson
 * trees, for the PATCH interaction with a Parameters body
 * (`application/fhir+json`) and for PATCH entries of Bundles.
 *
 * A patch is a Parameters resource whose `parameter`s are all named
 * "operation", each with parts:
 *   type         valueCode     add | insert | delete | replace | move
 *   path         valueString   a FHIRPath expression (fhirpath.h subset)
 *   name         valueString   add: the element to add under `path`
 *   value        value[x], or nested parts for a backbone/complex value
 *                              add, insert, replace
 *   index        valueInteger  insert: position in the list (0-based, <= size)
 *   source       valueInteger  move: from
 *   destination  valueInteger  move: to
 *
 * Semantics (R4): add appends to a repeating element or sets a singular one
 * that does not exist yet; insert puts the value at `index` of the list that
 * `path` selects; delete removes the single element `path` selects (nothing
 * selected: no change; two or more: an error); replace swaps the single
 * element's value (a choice element such as Observation.value[x] may change
 * type); move reorders the list `path` selects.  Paths must stay inside the
 * resource (resolve() is refused).  A value's JSON shape comes from the R4
 * definitions: a repeating child of a part-built value becomes an array.
 *
 * Operations apply in order to `doc` in place; on error `doc` may be partly
 * patched, so callers patch a copy.  The result is not validated here: the
 * PATCH interaction validates it as an update.
 *
 * Status mapping (as patch.h): a malformed Parameters document (wrong shape,
 * unknown type, missing or duplicate part, FHIRPath syntax error) is
 * SALUS_EINVALID (400); a well-formed operation that cannot be applied (no
 * or several elements where one is needed, index out of range, adding an
 * element that exists, unknown element name) is SALUS_EUNPROCESSABLE (422).
 */
#ifndef SALUS_FHIR_FHIRPATH_PATCH_H
#define SALUS_FHIR_FHIRPATH_PATCH_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SALUS_FPATCH_MAX_OPS 1000    /* operations in one FHIRPath Patch */
#define SALUS_FPATCH_MAX_PATH 4096   /* bytes of one path expression */

/* True when `params` (borrowed) looks like a FHIRPath Patch: a JSON object
 * with "resourceType":"Parameters". */
bool salus_fhirpath_patch_is(const json_t *params);

/* Apply the FHIRPath Patch `params` (borrowed) to the resource `doc`
 * (modified in place).  *why (PHI-free, never echoes values or paths; may be
 * NULL) and *failed_op (0-based; may be NULL) describe the first failure.
 * Returns 0, SALUS_EINVALID, SALUS_EUNPROCESSABLE, SALUS_ETOOLARGE (an
 * evaluation over its budget) or SALUS_ENOMEM. */
int salus_fhirpath_patch(json_t *doc, const json_t *params, const char **why /* OUT */,
			 size_t *failed_op /* OUT */);

#endif
