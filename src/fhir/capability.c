/* capability.c — CapabilityStatement for /fhir/metadata (see capability.h). */
#include "fhir/capability.h"

#include <string.h>

#include "fhir/defs.h"
#include "fhir/json_out.h"

int salus_fhir_capability(struct salus_buf *out, const char *base)
{
	const char *origin_end = strstr(base, "/fhir");
	int olen = origin_end ? (int)(origin_end - base) : (int)strlen(base);
	int rc = salus_buf_addf(
		out,
		"{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\",\"date\":\"2026-11-23\","
		"\"kind\":\"instance\",\"software\":{\"name\":\"Salus\",\"version\":\"%s\"},"
		"\"implementation\":{\"description\":\"Salus FHIR R4 server\",\"url\":",
		SALUS_VERSION);
	if (!rc)
		rc = salus_json_add_cstr(out, base);
	if (!rc)
		rc = salus_buf_addf(
			out,
			"},\"fhirVersion\":\"%s\",\"format\":[\"json\",\"application/fhir+json\"],"
			"\"patchFormat\":[\"application/json-patch+json\",\"application/fhir+json\"],"
			"\"rest\":[{\"mode\":\"server\",\"security\":{\"cors\":false,"
			"\"service\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/restful-security-service\","
			"\"code\":\"SMART-on-FHIR\"}]}],"
			"\"extension\":[{\"url\":\"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris\","
			"\"extension\":[{\"url\":\"token\",\"valueUri\":\"%.*s/auth/token\"}]}],"
			"\"description\":\"OAuth 2.0 client credentials (client_secret_basic); SMART v1/v2 system scopes\"},"
			"\"interaction\":[{\"code\":\"transaction\"},{\"code\":\"batch\"},{\"code\":\"history-system\"}],"
			"\"resource\":[",
			salus_fhir_version(), olen, base);
	size_t n = salus_fhir_resource_type_count();
	for (size_t i = 0; i < n && !rc; i++)
		rc = salus_buf_addf(
			out,
			"%s{\"type\":\"%s\",\"versioning\":\"versioned-update\",\"readHistory\":true,"
			"\"updateCreate\":true,\"conditionalCreate\":true,\"conditionalRead\":\"full-support\","
			"\"conditionalUpdate\":true,\"conditionalDelete\":\"single\","
			"\"referencePolicy\":[\"literal\",\"local\"],"
			"\"interaction\":[{\"code\":\"read\"},{\"code\":\"vread\"},"
			"{\"code\":\"update\"},{\"code\":\"patch\"},{\"code\":\"delete\"},{\"code\":\"history-instance\"},"
			"{\"code\":\"history-type\"},{\"code\":\"create\"},{\"code\":\"search-type\"}],"
			"\"searchParam\":[{\"name\":\"_id\",\"type\":\"token\"}]}",
			i ? "," : "", salus_fhir_resource_type_at(i));
	if (!rc)
		rc = salus_buf_adds(out, "]}]}");
	return rc;
}
