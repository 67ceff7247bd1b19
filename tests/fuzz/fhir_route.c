/* fhir_route.c — libFuzzer target: FHIR path routing (salus_fhir_route) and
 * the OperationOutcome writer.  Input: method byte + path. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "fhir/rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
	if (size < 1 || size > 4096)
		return 0;
	char path[4097];
	memcpy(path, data + 1, size - 1);
	path[size - 1] = 0;
	struct salus_fhir_req rq;
	memset(&rq, 0, sizeof rq);
	const char *why = NULL;
	int rc = salus_fhir_route(methods[data[0] % 7], path, &rq, &why);
	struct salus_buf b;
	salus_buf_init(&b, 1 << 16);
	salus_fhir_outcome(&b, rc, rc ? why : "ok", rq.type[0] ? rq.type : NULL);
	salus_buf_release(&b);
	return 0;
}
