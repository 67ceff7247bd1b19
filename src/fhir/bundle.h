/*
 * bundle.h — batch and transaction Bundles (`POST /fhir`).
 *
 * Transaction: every entry is checked, conditional parts resolved and ids
 * assigned first; then all writes go to the store in ONE salus_store_write
 * (one SQLite transaction: all or nothing), in the order the specification
 * gives (DELETE, POST, PUT/PATCH), and GET/HEAD entries are answered after
 * it, so they see the writes.  `urn:uuid:` / `urn:oid:` full URLs and
 * conditional references (`Patient?identifier=s|v`) are rewritten to
 * `Type/id` in every string of every resource — in the raw text, so the
 * stored resources keep the client's number spelling (store.h, salus_write.raw).
 * Batch: each entry is its own interaction (own store write); an entry's
 * error is its response.outcome.  docs/fhir-rest.md has the details.
 */
#ifndef SALUS_FHIR_BUNDLE_H
#define SALUS_FHIR_BUNDLE_H
#include "fhir/rest.h"

/* Serve `POST /` (rq->op == SALUS_FHIR_BUNDLE): fills rs with the
 * transaction-response / batch-response Bundle, or (a failed transaction, a
 * malformed Bundle) an OperationOutcome.  Returns the HTTP status. */
int salus_fhir_bundle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs);

#endif
