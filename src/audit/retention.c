/*
 * retention.c — pruning old audit events without breaking verification
 * (docs/audit.md, "Retention").  The text of an event is what the retention
 * period limits (it names patients and clients); its leaf hash, the subtree
 * hashes and the signed checkpoints are kept, so roots and proofs are
 * unchanged and `salus audit verify` checks a pruned leaf by its stored hash
 * against the checkpoints that cover it.  A checkpoint of the whole log is
 * signed before anything is pruned, so no pruned leaf is left uncovered.
 */
#include "audit/audit.h"

#include <inttypes.h>
#include <stdio.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"

int salus_audit_prune(struct salus_audit *au, struct salus_store *st, int64_t before_ms, const char *client_id,
		      int64_t *pruned)
{
	struct salus_audit_cp cp = {0};
	char when[SALUS_INSTANT_LEN], query[160];
	int64_t n = 0;
	int rc, arc;

	if (!au || !st || before_ms <= 0)
		return SALUS_EINVALID;
	if ((rc = salus_audit_checkpoint(au, &cp)))
		return rc;
	rc = salus_store_audit_prune(st, before_ms, cp.size, &n);
	salus_audit_cp_release(&cp);
	salus_instant_format(before_ms, when);
	snprintf(query, sizeof query, "action=prune&before=%s&pruned=%" PRId64, when, n);
	struct salus_audit_req rq = {
		.interaction = SALUS_AUDIT_ADMIN,
		.resource_type = "AuditEvent",
		.status = rc ? 500 : 200,
		.client_id = client_id,
		.query = query,
	};
	arc = salus_audit_record(au, &rq, NULL);
	if (!rc && pruned)
		*pruned = n;
	return rc ? rc : arc;
}
