/*
 * consent.c — libFuzzer target fuzz_consent: the policy's reading of FHIR
 * Consent resources (salus_policy_consent_add) and of the EHR-launch and
 * label decisions built on it.  The input is a Consent's JSON text; it is
 * read for two actors.  Invariants checked: a denial names a valid patient
 * id, never the actor's own record, and keeps its label and class lists
 * within their bounds; salus_policy_hides agrees with the denial for a
 * resource of that patient without labels (whole-record denials hide it).
 * Seeds: tests/fuzz/corpus/consent/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const actors[] = {"Practitioner/d1", "Patient/p1"};
	for (size_t a = 0; a < sizeof actors / sizeof actors[0]; a++) {
		static struct salus_policy p;
		memset(&p, 0, sizeof p);
		if (salus_policy_consent_add(&p, actors[a], (const char *)data, size, 1796644800000) != 0)
			abort();
		if (p.ndeny > 1)
			abort();
		for (size_t k = 0; k < p.ndeny; k++) {
			const struct salus_policy_deny *d = &p.deny[k];
			size_t n = strlen(d->patient);
			if (!n || n > SALUS_MAX_ID || d->nlabels > SALUS_POLICY_DENY_CODES || d->ntypes > SALUS_POLICY_DENY_CODES)
				abort();
			if (!strncmp(actors[a], "Patient/", 8) && !strcmp(actors[a] + 8, d->patient))
				abort(); /* the patient's own record is never denied */
			const char *pats[] = {d->patient};
			bool h = salus_policy_hides(&p, d->ntypes ? d->types[0] : "Observation", pats, 1, NULL, 0);
			if (h != (d->nlabels == 0))
				abort();
		}
	}
	return 0;
}
