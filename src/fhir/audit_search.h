/*
 * audit_search.h — AuditEvent through the FHIR API, answered from the audit
 * log (store.h, salus_store_audit_*), never from the resource store
 * (docs/audit.md, "Searching the trail").
 *
 * AuditEvents are read-only: rest.c routes only read, vread and search of
 * AuditEvent here and refuses every write (salus_fhir_audit_event_op_ok).
 * The id of an AuditEvent is its log index; the resource is the stored event
 * text byte for byte (so it can be hashed against an inclusion proof).
 */
#ifndef SALUS_FHIR_AUDIT_SEARCH_H
#define SALUS_FHIR_AUDIT_SEARCH_H
#include <stdbool.h>
#include <stddef.h>

#include "fhir/rest.h"
#include "store/store.h"

/* False for an interaction AuditEvent does not support through the API
 * (create, update, patch, delete, conditional forms, history): rest.c then
 * answers 405.  *why gets a static PHI-free reason. */
bool salus_fhir_audit_event_op_ok(enum salus_fhir_op op, const char **why /* OUT */);

/* Serve GET /AuditEvent/{index}, /AuditEvent/{index}/_history/1 and
 * GET /AuditEvent?..., POST /AuditEvent/_search from the audit log:
 * patient, agent (reference, identifier system|value, or a bare id/value;
 * also agent:identifier), entity, type, subtype (tokens system|code), action,
 * outcome, address, date (prefixes eq ne gt lt ge le sa eb ap), _id, _count,
 * _sort (-date default, date), _summary=count, and the paging cursor.  The
 * index is brought up to date first.  Always fills rs; returns the status. */
int salus_fhir_audit_handle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs);

/* A parsed AuditEvent search, for other front ends (salus report access). */
struct salus_fhir_audit_q {
	struct salus_aq q;        /* hand &q to salus_store_audit_query */
	struct salus_aq_clause *cl;
	struct salus_aq_val *vals;
	size_t ncl, nvals;
	char **strs;              /* owned copies the values point into */
	size_t nstrs;
	bool summary_count;       /* _summary=count */
};
/* Parse search parameters (names and values decoded) into q; unknown
 * parameters are an error.  Errors: SALUS_EINVALID with a static PHI-free
 * *why, SALUS_ENOMEM.  Release with salus_fhir_audit_q_release even on error. */
int salus_fhir_audit_q_parse(struct salus_fhir_audit_q *q /* OUT */, const struct salus_param *p, size_t n,
			     const char **why /* OUT */);
void salus_fhir_audit_q_release(struct salus_fhir_audit_q *q);

#endif
