/*
 * demo.h — load synthetic demo patients (src/fhir/gen.h) into a store, for
 * `salus init --demo` and `make run`.
 */
#ifndef SALUS_CLI_DEMO_H
#define SALUS_CLI_DEMO_H
#include "store/store.h"

/* Generate `patients` synthetic patients from `seed` and store every
 * resource (update-as-create with the generator's ids, in dependency order).
 * *loaded: resources written.  Errors: those of the generator and the store. */
int salus_demo_load(struct salus_store *st, int patients, unsigned long seed, long *loaded /* OUT */);

#endif
