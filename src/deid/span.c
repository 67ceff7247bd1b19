/*
 * span.c — names of the PHI categories (span.h).
 */
#include "deid/span.h"

const char *salus_phi_label(enum salus_phi t)
{
	static const char *const labels[] = {
#define SALUS_PHI_LABEL(n, l) l,
		SALUS_PHI_MAP(SALUS_PHI_LABEL)
#undef SALUS_PHI_LABEL
	};
	if ((unsigned)t >= SALUS_PHI__COUNT)
		return "UNKNOWN";
	return labels[t];
}
