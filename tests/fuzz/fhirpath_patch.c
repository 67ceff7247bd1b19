/* fhirpath_patch.c — libFuzzer target: FHIRPath Patch (salus_fhirpath_patch).
 * The input is "DOC\nPARAMETERS": the first line a resource, the rest a
 * Parameters patch; without a newline the input is the patch and the
 * resource a small fixed Patient.  Checks: no crash or leak, errors are the
 * documented ones with a reason and an operation index inside the patch,
 * and a patch that succeeds gives the same result on a fresh copy. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "fhir/fhirpath_patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_doc[] =
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"active\":true,\"deceasedBoolean\":true,"
	"\"name\":[{\"family\":\"X\",\"given\":[\"A\",\"B\"],\"_given\":[null,{\"id\":\"g\"}]},{\"family\":\"Y\"}],"
	"\"contact\":[{\"telecom\":[{\"system\":\"phone\",\"value\":\"1\"}]}]}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	json_t *doc, *patch;
	if (size > 1 << 16)
		return 0;
	if (nl) {
		doc = json_loadb(p, (size_t)(nl - p), 0, NULL);
		patch = json_loadb(nl + 1, size - (size_t)(nl - p) - 1, 0, NULL);
	} else {
		doc = json_loads(base_doc, 0, NULL);
		patch = json_loadb(p, size, 0, NULL);
	}
	if (doc && patch) {
		json_t *a = json_deep_copy(doc), *b = json_deep_copy(doc);
		const char *why = NULL;
		size_t bad = (size_t)-1;
		int rc = salus_fhirpath_patch(a, patch, &why, &bad);
		if (rc) {
			if (rc != SALUS_EINVALID && rc != SALUS_EUNPROCESSABLE && rc != SALUS_ENOMEM &&
			    rc != SALUS_ETOOLARGE)
				__builtin_trap();
			const json_t *ops = json_object_get(patch, "parameter");
			if (json_is_array(ops) && json_array_size(ops) && bad >= json_array_size(ops))
				__builtin_trap();
			if (!why && rc != SALUS_ENOMEM)
				__builtin_trap();
		} else if (salus_fhirpath_patch(b, patch, NULL, NULL) || !json_equal(a, b)) {
			__builtin_trap();
		}
		json_decref(a);
		json_decref(b);
	}
	json_decref(doc);
	json_decref(patch);
	return 0;
}
