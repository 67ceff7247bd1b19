/*
 * consent.c — libFuzzer target fuzz_consent: the policy's reading of FHIR
 * Consent resources (salus_policy_consent_add) and of the EHR-launch and
 * label decisions built on it.  The input is a Consent's JSON text; it is
 * read for two actors, without and with a break-glass grant for p1 (the
 * purpose rules).  Invariants checked: a denial names a valid patient id,
 * never the actor's own record, and keeps its label, class and exception
 * lists within their bounds (an exception is never empty); alone,
 * salus_policy_hides agrees with the denial for a resource of that patient
 * without labels (hidden unless the denial is label-limited or a class-only
 * exception covers the type).
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
	for (size_t a = 0; a < 2 * (sizeof actors / sizeof actors[0]); a++) {
		static struct salus_policy p, one;
		memset(&p, 0, sizeof p);
		if (a >= 2) { /* break-glass access to p1 */
			memcpy(p.btg[0], "p1", 3);
			p.nbtg = 1;
		}
		const char *actor = actors[a % 2];
		if (salus_policy_consent_add(&p, actor, (const char *)data, size, 1796644800000) != 0)
			abort();
		if (p.ndeny > SALUS_POLICY_MAX_DENY)
			abort();
		for (size_t k = 0; k < p.ndeny; k++) {
			const struct salus_policy_deny *d = &p.deny[k];
			size_t n = strlen(d->patient);
			if (!n || n > SALUS_MAX_ID || d->nlabels > SALUS_POLICY_DENY_CODES || d->ntypes > SALUS_POLICY_DENY_CODES ||
			    d->nexcept > SALUS_POLICY_DENY_EXCEPT)
				abort();
			if (!strncmp(actor, "Patient/", 8) && !strcmp(actor + 8, d->patient))
				abort(); /* the patient's own record is never denied */
			const char *type = d->ntypes ? d->types[0] : "Observation";
			bool want = d->nlabels == 0;
			for (size_t e = 0; e < d->nexcept; e++) {
				const struct salus_policy_except *x = &d->except[e];
				if ((!x->nlabels && !x->ntypes) || x->nlabels > SALUS_POLICY_EXCEPT_CODES ||
				    x->ntypes > SALUS_POLICY_EXCEPT_CODES)
					abort();
				for (size_t t = 0; !x->nlabels && t < x->ntypes; t++)
					if (!strcmp(x->types[t], type))
						want = false; /* excepted */
			}
			memset(&one, 0, offsetof(struct salus_policy, deny));
			one.deny[0] = *d;
			one.ndeny = 1;
			const char *pats[] = {d->patient};
			if (salus_policy_hides(&one, type, pats, 1, NULL, 0) != want)
				abort();
		}
	}
	return 0;
}
