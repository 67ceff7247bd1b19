/*
 * audit_phase.h — what the HTTP layer tells the audit trail about a FHIR
 * request: the patients whose records a request or response touched, and the
 * query as received.  Patients are found by a bounded scan of the JSON text
 * for references to Patient resources ("reference":"Patient/ID" or an
 * absolute URL ending in /Patient/ID) plus the id of any Patient resource
 * itself: cheap enough for every response, and never smaller than the true
 * set for the resources the patient compartment defines through references.
 */
#ifndef SALUS_HTTP_AUDIT_PHASE_H
#define SALUS_HTTP_AUDIT_PHASE_H
#include <stddef.h>

#include "audit/audit.h"
#include "core/buf.h"
#include "core/limits.h"
#include "fhir/rest.h"

struct salus_patient_set {
	size_t n, cap;
	char **ids; /* owned strings; a valid `const char *const *` for salus_audit_req.patients */
	int nomem;  /* an allocation failed: the set is incomplete (the caller fails closed) */
};
void salus_patient_set_release(struct salus_patient_set *ps); /* frees; leaves it empty */

/* Add the patients that JSON text (a resource or a Bundle) touches; duplicates
 * are skipped; past SALUS_AUDIT_MAX_PATIENTS the rest are dropped. */
void salus_patient_set_scan(struct salus_patient_set *ps, const char *json, size_t n);
/* Add one patient id (ignored when not a valid FHIR id). */
void salus_patient_set_add(struct salus_patient_set *ps, const char *id, size_t n);

/* The audit interaction for a FHIR op. */
enum salus_audit_interaction salus_audit_interaction_of(enum salus_fhir_op op);

/* Rebuild "name=value&..." (decoded values) from request parameters into out. */
int salus_query_string(struct salus_buf *out, const struct salus_param *p, size_t n);

#endif
