/* validate.c — libFuzzer target: FHIR resource validation (salus_fhir_validate)
 * and the $validate operation on arbitrary request bodies.  Checks that the
 * outcome is always a JSON OperationOutcome and that nothing leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "fhir/rest.h"
#include "fhir/validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[200];
	json_t *j = NULL;
	struct salus_buf out;
	salus_buf_init(&out, 1u << 24);
	if (salus_json_parse_strict((const char *)data, size, &j, why, sizeof why) == 0) {
		int n = 0;
		int rc = salus_fhir_validate(j, NULL, SALUS_VALIDATE_ANY, &out, &n);
		if (rc != SALUS_ENOMEM) {
			json_error_t err;
			json_t *oo = json_loads(out.p, 0, &err);
			if (!oo || !json_is_array(json_object_get(oo, "issue")) || (rc == 0) != (n == 0))
				abort();
			json_decref(oo);
		}
		json_decref(j);
	}
	(void)salus_fhir_validate_op("Patient", "p1", (const char *)data, size, &out);
	salus_buf_release(&out);
	return 0;
}
