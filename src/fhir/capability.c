/* capability.c — CapabilityStatement for /fhir/metadata (see capability.h).
 *
 * Generated from the definition tables (every resource type, each one's search parameters with
 * their canonical URLs, reference parameters for _include/_revinclude) and from what rest.c and
 * the search module implement; nothing here is listed that a request would refuse. */
#include "fhir/capability.h"

#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/json_out.h"

static const char *sp_type_code(enum salus_fhir_sp_type t)
{
	switch (t) {
	case SALUS_FHIR_SP_NUMBER:
		return "number";
	case SALUS_FHIR_SP_DATE:
		return "date";
	case SALUS_FHIR_SP_STRING:
		return "string";
	case SALUS_FHIR_SP_TOKEN:
		return "token";
	case SALUS_FHIR_SP_REFERENCE:
		return "reference";
	case SALUS_FHIR_SP_COMPOSITE:
		return "composite";
	case SALUS_FHIR_SP_QUANTITY:
		return "quantity";
	case SALUS_FHIR_SP_URI:
		return "uri";
	case SALUS_FHIR_SP_SPECIAL:
		return "special";
	}
	return NULL;
}

/* Whether the search module takes parameter sp of type `type` (docs/search.md): every type but
 * `special`, of which it implements Location's `near`; never `_query` (named queries: 400). */
static bool sp_served(const char *type, const struct salus_fhir_sp_info *in)
{
	if (!strcmp(in->code, "_query"))
		return false;
	if (in->type == SALUS_FHIR_SP_SPECIAL)
		return !strcmp(type, "Location") && !strcmp(in->code, "near");
	return sp_type_code(in->type) != NULL;
}

/* "name":"value" with the value escaped; sep before it unless first. */
static int add_kv(struct salus_buf *out, const char *sep, const char *key, const char *val)
{
	int rc = salus_buf_addf(out, "%s\"%s\":", sep, key);
	return rc ? rc : salus_json_add_cstr(out, val);
}

/* "searchParam":[...] of the parameters of t the search module takes (common: only those every
 * resource type inherits, named with a leading underscore). */
static int add_search_params(struct salus_buf *out, const char *type, const struct salus_fhir_type *t, bool common)
{
	struct salus_fhir_sp_info in;
	size_t n = salus_fhir_sp_count(t), k = 0;
	int rc = salus_buf_adds(out, "\"searchParam\":[");
	for (size_t i = 0; i < n && !rc; i++) {
		salus_fhir_sp_get(salus_fhir_sp_at(t, i), &in);
		if (!sp_served(type, &in) || (common && in.code[0] != '_'))
			continue;
		rc = add_kv(out, k++ ? ",{" : "{", "name", in.code);
		if (!rc && in.url)
			rc = add_kv(out, ",", "definition", in.url);
		if (!rc)
			rc = add_kv(out, ",", "type", sp_type_code(in.type));
		if (!rc)
			rc = salus_buf_addc(out, '}');
	}
	return rc ? rc : salus_buf_addc(out, ']');
}

/* searchInclude: "*" and T:param for each reference parameter of T; searchRevInclude: S:param
 * for each reference parameter of any type S that may point at T. */
static int add_includes(struct salus_buf *out, const char *type, const struct salus_fhir_type *t)
{
	struct salus_fhir_sp_info in;
	size_t n = salus_fhir_sp_count(t);
	int rc = salus_buf_adds(out, ",\"searchInclude\":[\"*\"");
	for (size_t i = 0; i < n && !rc; i++) {
		salus_fhir_sp_get(salus_fhir_sp_at(t, i), &in);
		if (in.type == SALUS_FHIR_SP_REFERENCE)
			rc = salus_buf_addf(out, ",\"%s:%s\"", type, in.code);
	}
	if (!rc)
		rc = salus_buf_adds(out, "],\"searchRevInclude\":[");
	size_t ntypes = salus_fhir_resource_type_count(), k = 0;
	for (size_t s = 0; s < ntypes && !rc; s++) {
		const char *sname = salus_fhir_resource_type_at(s);
		const struct salus_fhir_type *st = salus_fhir_type_find(sname, strlen(sname));
		size_t ns = st ? salus_fhir_sp_count(st) : 0;
		for (size_t i = 0; i < ns && !rc; i++) {
			const struct salus_fhir_sp *sp = salus_fhir_sp_at(st, i);
			salus_fhir_sp_get(sp, &in);
			if (in.type != SALUS_FHIR_SP_REFERENCE)
				continue;
			bool targets = false;
			for (size_t g = 0; g < in.ntargets && !targets; g++) {
				const char *tt = salus_fhir_sp_target_at(sp, g);
				targets = tt && (!strcmp(tt, type) || !strcmp(tt, "Resource"));
			}
			if (targets)
				rc = salus_buf_addf(out, "%s\"%s:%s\"", k++ ? "," : "", sname, in.code);
		}
	}
	return rc ? rc : salus_buf_addc(out, ']');
}

static int add_resource(struct salus_buf *out, const char *type, bool first)
{
	const struct salus_fhir_type *t = salus_fhir_type_find(type, strlen(type));
	int rc = salus_buf_addf(
		out,
		"%s{\"type\":\"%s\",\"profile\":\"http://hl7.org/fhir/StructureDefinition/%s\","
		"\"interaction\":[{\"code\":\"read\"},{\"code\":\"vread\"},{\"code\":\"update\"},{\"code\":\"patch\"},"
		"{\"code\":\"delete\"},{\"code\":\"history-instance\"},{\"code\":\"history-type\"},{\"code\":\"create\"},"
		"{\"code\":\"search-type\"}],"
		"\"versioning\":\"versioned-update\",\"readHistory\":true,\"updateCreate\":true,"
		"\"conditionalCreate\":true,\"conditionalRead\":\"full-support\",\"conditionalUpdate\":true,"
		"\"conditionalDelete\":\"single\",\"referencePolicy\":[\"literal\",\"local\"]",
		first ? "" : ",", type, type);
	if (!rc && t)
		rc = add_includes(out, type, t);
	if (!rc && t && !(rc = salus_buf_addc(out, ',')))
		rc = add_search_params(out, type, t, false);
	if (!rc)
		rc = salus_buf_adds(out, ",\"operation\":[{\"name\":\"validate\",\"definition\":"
					 "\"http://hl7.org/fhir/OperationDefinition/Resource-validate\"}");
	if (!rc && !strcmp(type, "Patient"))
		rc = salus_buf_adds(out, ",{\"name\":\"everything\",\"definition\":"
					 "\"http://hl7.org/fhir/OperationDefinition/Patient-everything\"}");
	return rc ? rc : salus_buf_adds(out, "]}");
}

static int build(struct salus_buf *out, const char *base)
{
	const char *origin_end = strstr(base, "/fhir");
	int olen = origin_end ? (int)(origin_end - base) : (int)strlen(base);
	int rc = salus_buf_addf(
		out,
		"{\"resourceType\":\"CapabilityStatement\",\"status\":\"active\",\"date\":\"2026-12-07\","
		"\"publisher\":\"Salus\",\"kind\":\"instance\",\"software\":{\"name\":\"Salus\",\"version\":\"%s\"},"
		"\"implementation\":{\"description\":\"Salus FHIR R4 server\",\"url\":",
		SALUS_VERSION);
	if (!rc)
		rc = salus_json_add_cstr(out, base);
	if (!rc)
		rc = salus_buf_addf(
			out,
			"},\"fhirVersion\":\"%s\",\"format\":[\"json\",\"application/fhir+json\"],"
			"\"patchFormat\":[\"application/json-patch+json\",\"application/fhir+json\"],"
			"\"rest\":[{\"mode\":\"server\",\"security\":{\"cors\":true,"
			"\"service\":[{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/restful-security-service\","
			"\"code\":\"SMART-on-FHIR\"}]}],"
			"\"extension\":[{\"url\":\"http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris\","
			"\"extension\":[{\"url\":\"token\",\"valueUri\":\"%.*s/auth/token\"},"
			"{\"url\":\"authorize\",\"valueUri\":\"%.*s/auth/authorize\"},"
			"{\"url\":\"introspect\",\"valueUri\":\"%.*s/auth/introspect\"},"
			"{\"url\":\"revoke\",\"valueUri\":\"%.*s/auth/revoke\"}]}],"
			"\"description\":\"SMART App Launch 2 (authorization code with PKCE, standalone and EHR launch; "
			"client credentials with client_secret_basic or private_key_jwt); SMART v1 and v2 scopes; "
			"discovery at /.well-known/smart-configuration\"},"
			"\"resource\":[",
			salus_fhir_version(), olen, base, olen, base, olen, base, olen, base);
	size_t n = salus_fhir_resource_type_count();
	for (size_t i = 0; i < n && !rc; i++)
		rc = add_resource(out, salus_fhir_resource_type_at(i), i == 0);
	if (!rc)
		rc = salus_buf_adds(out, "],\"interaction\":[{\"code\":\"transaction\"},{\"code\":\"batch\"},"
					 "{\"code\":\"search-system\"},{\"code\":\"history-system\"}]");
	const struct salus_fhir_type *any = salus_fhir_type_find("Patient", 7); /* inherits them all */
	if (!rc && any && !(rc = salus_buf_addc(out, ',')))
		rc = add_search_params(out, "Patient", any, true);
	return rc ? rc : salus_buf_adds(out, "}]}");
}

/* The statement depends only on the tables and the base URL, and takes ~50 ms to build (760 KB):
 * built once per base and kept (an unauthenticated route; clients fetch it often). */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static char *cache_base, *cache_doc;
static size_t cache_len;

int salus_fhir_capability(struct salus_buf *out, const char *base)
{
	int rc;
	pthread_mutex_lock(&cache_mu);
	if (cache_base && !strcmp(cache_base, base)) {
		rc = salus_buf_add(out, cache_doc, cache_len);
		pthread_mutex_unlock(&cache_mu);
		return rc;
	}
	pthread_mutex_unlock(&cache_mu);
	size_t mark = out->n;
	if ((rc = build(out, base)))
		return rc;
	char *b = salus_strdup(base), *d = salus_malloc(out->n - mark);
	if (!b || !d) { /* the answer stands; only the cache is skipped */
		salus_free(b);
		salus_free(d);
		return SALUS_OK;
	}
	memcpy(d, out->p + mark, out->n - mark);
	pthread_mutex_lock(&cache_mu);
	salus_free(cache_base);
	salus_free(cache_doc);
	cache_base = b;
	cache_doc = d;
	cache_len = out->n - mark;
	pthread_mutex_unlock(&cache_mu);
	return SALUS_OK;
}
