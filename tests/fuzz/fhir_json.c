/* fhir_json.c — libFuzzer target: strict JSON parsing of FHIR request bodies
 * (salus_json_parse_strict) and the JSON string writer on what it accepts. */
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "fhir/json_out.h"
#include "fhir/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[200];
	json_t *j = NULL;
	if (salus_json_parse_strict((const char *)data, size, &j, why, sizeof why) == 0) {
		json_t *rt = json_object_get(j, "resourceType");
		if (json_is_string(rt)) {
			struct salus_buf b;
			salus_buf_init(&b, 1 << 20);
			salus_json_add_str(&b, json_string_value(rt), json_string_length(rt));
			salus_buf_release(&b);
		}
		json_decref(j);
	}
	return 0;
}
