/*
 * gen.h — synthetic demo patients as FHIR R4 resources (`salus gen`,
 * `salus init --demo`).
 *
 * Everything is made up: names, addresses and phone numbers come from small
 * built-in lists of common words (phones in the 555-01xx fiction range, e-mail
 * at example.org), identifiers in demo-only systems under https://salus.example/.
 * No real person's data is used.  Clinical content uses real code systems so
 * the data exercises search and validation: SNOMED CT conditions, LOINC vital
 * signs and labs with UCUM units, RxNorm medications, plain-text clinical
 * notes (DocumentReference, base64 attachment) with narrative.
 *
 * Deterministic: the same seed and options give byte-identical output (the
 * reference "today" is fixed unless given), so tests and demos are
 * reproducible.
 *
 * Ids are UUID-shaped and generated from the seed; references are concrete
 * "Type/id".  Resources come out in dependency order (shared Organization and
 * Practitioners first, then each patient: Patient, Encounters, Conditions,
 * Observations, MedicationRequests, DocumentReferences), so a caller can store
 * each one with an update-as-create (PUT Type/id) as it arrives and every
 * reference already resolves.
 *
 * Lifecycle: salus_gen_new → salus_gen_run / salus_gen_patient (any number of
 * times; the shared resources are emitted once, before the first patient) →
 * salus_gen_free.  One generator is not thread-safe; use one per thread.
 */
#ifndef SALUS_FHIR_GEN_H
#define SALUS_FHIR_GEN_H
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SALUS_GEN_MAX_PATIENTS 1000000
#define SALUS_GEN_MAX_YEARS 90

struct salus_gen; /* opaque */

struct salus_gen_opts {
	uint64_t seed;    /* any value; same seed, same output */
	int64_t today_ms; /* the generator's "now" (ms since epoch, UTC); 0: 2025-06-30T12:00:00Z */
	int years;        /* history: encounters over the last `years` years (1..SALUS_GEN_MAX_YEARS; 0: 3),
			   * 2..5 per three years the patient has lived, each with its vitals, labs (adults,
			   * every other visit) and note: ~16 resources a visit, so 60 years gives Synthea-like
			   * volume (several hundred resources a patient).  The default 3 gives ~48. */
};

/* Called once per generated resource, in dependency order.  `resource` is
 * borrowed for the call (json_incref it to keep it).  Return 0 to continue;
 * any other value stops generation and is returned by the caller of the
 * generator. */
typedef int (*salus_gen_cb)(void *ctx, json_t *resource);

/* Create a generator.  opts may be NULL (seed 0, default today, 3 years).
 * Errors: SALUS_ENOMEM, SALUS_EINVALID (years out of range). */
int salus_gen_new(const struct salus_gen_opts *opts, struct salus_gen **out /* OUT */);
void salus_gen_free(struct salus_gen *g); /* NULL-safe */

/* Generate one patient and all their resources (after the shared ones, the
 * first time).  Returns SALUS_OK, SALUS_ENOMEM, or the callback's non-zero
 * value. */
int salus_gen_patient(struct salus_gen *g, salus_gen_cb cb, void *ctx);
/* Generate n patients (salus_gen_patient n times).  SALUS_EINVALID when n is
 * above SALUS_GEN_MAX_PATIENTS. */
int salus_gen_run(struct salus_gen *g, size_t n, salus_gen_cb cb, void *ctx);

/* Counters since salus_gen_new: resources emitted and patients generated. */
size_t salus_gen_resource_count(const struct salus_gen *g);
size_t salus_gen_patient_count(const struct salus_gen *g);

/* A transaction Bundle entry for a generated resource (new reference):
 * {"fullUrl":"urn:uuid:ID","resource":R,"request":{"method":"PUT","url":"Type/ID"}}.
 * The resource is shared (incref), not copied.  NULL on allocation failure or
 * when the resource has no resourceType/id. */
json_t *salus_gen_bundle_entry(json_t *resource);

/* Convenience for small n: a whole transaction Bundle (new reference) of n
 * patients in *out.  Errors: SALUS_ENOMEM, SALUS_EINVALID. */
int salus_gen_bundle(struct salus_gen *g, size_t n, json_t **out /* OUT */);

#endif
