/* fhirpath.c — libFuzzer target: the FHIRPath parser and evaluator.  The
 * input is an expression; it is parsed and evaluated against a fixed
 * Observation (typed navigation, functions, budgets). */
#include <stddef.h>
#include <stdint.h>

#include "core/alloc.h"
#include "fhir/fhirpath.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static json_t *doc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!doc)
		doc = json_loads("{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\","
				 "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"1-8\"}]},"
				 "\"subject\":{\"reference\":\"Patient/p1\"},\"performer\":[{\"reference\":\"#c\"}],"
				 "\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"c\"}],"
				 "\"valueQuantity\":{\"value\":1.5,\"unit\":\"mg\"},\"_status\":{\"extension\":[{\"url\":"
				 "\"http://x\",\"valueString\":\"s\"}]},\"component\":[{\"code\":{\"text\":\"a\"},"
				 "\"valueInteger\":3}]}",
				 0, NULL);
	struct salus_fp_expr *e = NULL;
	char why[200];
	if (salus_fp_parse((const char *)data, size, &e, why, sizeof why) == 0) {
		char buf[2048];
		struct salus_fp_ctx cx;
		salus_fp_ctx_init(&cx, buf, sizeof buf);
		struct salus_fp_result r;
		(void)salus_fp_eval(&cx, e, doc, NULL, NULL, &r);
		salus_fp_ctx_release(&cx);
		salus_fp_free(e);
	}
	return 0;
}
