/* deid_scan.c — libFuzzer target for the PHI detector: any bytes, as a note.
 * Checks the span invariants (sorted, disjoint, in bounds, known rule) and that
 * bad input yields an error, never a crash. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/err.h"
#include "deid/deid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct salus_deid *d;
	if (!d && salus_deid_new(&d))
		abort();
	const struct salus_span *sp;
	size_t n;
	int rc = salus_deid_scan(d, (const char *)data, size, &sp, &n, NULL);
	if (rc == 0) {
		for (size_t i = 0; i < n; i++) {
			if (sp[i].start >= sp[i].end || sp[i].end > size || (i && sp[i].start < sp[i - 1].end))
				abort();
			if ((unsigned)sp[i].type >= SALUS_PHI__COUNT)
				abort();
			(void)salus_deid_rule_name(sp[i].rule);
		}
	} else if (rc != SALUS_EINVALID && rc != SALUS_ETOOLARGE) {
		abort();
	}
	return 0;
}
