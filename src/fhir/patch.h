/*
 * patch.h — JSON Patch (RFC 6902) over jansson trees, for the FHIR PATCH
 * interaction (`application/json-patch+json`).
 *
 * Operations add, remove, replace, move, copy and test; paths are JSON
 * Pointers (RFC 6901: `~0` is `~`, `~1` is `/`, `-` appends to an array).
 * The patch is applied in order to the document in place; on any error the
 * document may be partly patched, so callers patch a copy.
 *
 * Status mapping (RFC 5789 §2.2, docs/fhir-rest.md): a malformed patch
 * document (not an array, unknown op, missing member, bad pointer syntax) is
 * SALUS_EINVALID (400); a well-formed patch that cannot be applied (path not
 * found, index out of range, move into its own child) or whose `test` fails
 * is SALUS_EUNPROCESSABLE (422).
 */
#ifndef SALUS_FHIR_PATCH_H
#define SALUS_FHIR_PATCH_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#define SALUS_PATCH_MAX_OPS 10000

/* Apply `patch` (borrowed) to `doc` (modified in place; it is never replaced
 * as a whole: a patch of the root path "" is refused).  *why (PHI-free, never
 * echoes values; may be NULL) and *failed_op (0-based; may be NULL) describe
 * the first failure.  Returns 0 or an error above; SALUS_ENOMEM. */
int salus_json_patch(json_t *doc, const json_t *patch, const char **why /* OUT */, size_t *failed_op /* OUT */);

/* True when some op of a (well-formed) patch may change top-level member
 * `name` (its path or from starts with /name). */
bool salus_json_patch_touches(const json_t *patch, const char *name);

#endif
