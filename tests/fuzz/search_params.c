/* search_params.c — libFuzzer target: search request parameters
 * (salus_fhir_search_parse) and the SQL compiler of the store
 * (salus_store_search_plan on an empty plaintext store, so every query the
 * parser accepts is also compiled and prepared by SQLite: the page, the
 * count, and the page with its total).
 * Input: one byte choosing the resource type (or a system-wide search), then
 * a query string: name=value pairs separated by '&' (no percent-decoding). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/search.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PARAMS 32

static struct salus_store *store(void)
{
	static struct salus_store *st;
	static char path[64];
	if (!st) {
		snprintf(path, sizeof path, "/tmp/salus-fuzz-search-%d.db", (int)getpid());
		struct salus_store_opts o = {.create = true, .readers = 1};
		if (salus_store_open(path, &o, &st))
			st = NULL;
	}
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {NULL, "Patient", "Observation", "Encounter", "Condition",
					    "MedicationRequest", "Practitioner", "Organization", "DiagnosticReport",
					    "Questionnaire", "Location", "Medication"};
	if (size < 1 || size > 8192)
		return 0;
	const char *type = types[data[0] % (sizeof types / sizeof *types)];
	char *q = salus_malloc(size);
	if (!q)
		return 0;
	memcpy(q, data + 1, size - 1);
	q[size - 1] = 0;
	if (strlen(q) != size - 1) { /* parameters never carry NUL */
		salus_free(q);
		return 0;
	}
	struct salus_param p[MAX_PARAMS];
	size_t np = 0;
	for (char *s = q; *s && np < MAX_PARAMS;) {
		char *amp = strchr(s, '&');
		if (amp)
			*amp = 0;
		char *eq = strchr(s, '=');
		if (eq) {
			*eq = 0;
			p[np++] = (struct salus_param){s, eq + 1};
		}
		if (!amp)
			break;
		s = amp + 1;
	}
	struct salus_fhir_search *s = NULL;
	const char *why = NULL;
	int rc = salus_fhir_search_parse(type, p, np, data[0] & 0x80, &s, &why);
	if (!rc) {
		struct salus_store *st = store();
		char *plan = NULL;
		if (st && !salus_store_search_plan(st, salus_fhir_search_query(s), false, &plan))
			salus_free(plan);
		plan = NULL;
		if (st && !salus_store_search_plan(st, salus_fhir_search_query(s), true, &plan))
			salus_free(plan);
		/* the page with its total (the matches materialized once, or from the index rows) */
		struct salus_sq sq = *salus_fhir_search_query(s);
		sq.with_total = true;
		plan = NULL;
		if (st && !salus_store_search_plan(st, &sq, false, &plan))
			salus_free(plan);
	} else if (rc != SALUS_ENOMEM && (!why || strlen(why) > 200)) {
		__builtin_trap(); /* every refusal explains itself with a static message */
	}
	salus_fhir_search_free(s);
	salus_free(q);
	return 0;
}
