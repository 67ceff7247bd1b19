/* json_patch.c — libFuzzer target: RFC 6902 JSON Patch (salus_json_patch,
 * salus_json_patch_touches).  The input is "DOC\nPATCH": the first line a
 * JSON document, the rest a patch; without a newline the input is the patch
 * and the document a small fixed resource.  Checks: no crash or leak, a
 * failed patch reports an op index inside the patch, and a patch that
 * succeeds is repeatable on a fresh copy with the same result. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "fhir/patch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char base_doc[] =
	"{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"X\",\"given\":[\"A\",\"B\"]}],"
	"\"a/b\":1,\"m~n\":{\"\":[0,1,2]},\"active\":true}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	const char *nl = memchr(p, '\n', size);
	json_t *doc, *patch;
	if (size > 1 << 16)
		return 0;
	if (nl) {
		doc = json_loadb(p, (size_t)(nl - p), JSON_DECODE_ANY, NULL);
		patch = json_loadb(nl + 1, size - (size_t)(nl - p) - 1, 0, NULL);
	} else {
		doc = json_loads(base_doc, 0, NULL);
		patch = json_loadb(p, size, 0, NULL);
	}
	if (doc && patch) {
		json_t *a = json_deep_copy(doc), *b = json_deep_copy(doc);
		const char *why = NULL;
		size_t bad = (size_t)-1;
		int rc = salus_json_patch(a, patch, &why, &bad);
		if (rc) {
			if (rc != SALUS_EINVALID && rc != SALUS_EUNPROCESSABLE && rc != SALUS_ENOMEM)
				__builtin_trap();
			if (json_is_array(patch) && json_array_size(patch) <= SALUS_PATCH_MAX_OPS &&
			    bad >= json_array_size(patch))
				__builtin_trap();
			if (!why)
				__builtin_trap();
		} else {
			if (salus_json_patch(b, patch, NULL, NULL) || !json_equal(a, b))
				__builtin_trap();
			(void)salus_json_patch_touches(patch, "id");
			(void)salus_json_patch_touches(patch, "meta");
		}
		json_decref(a);
		json_decref(b);
	}
	json_decref(doc);
	json_decref(patch);
	return 0;
}
