/*
 * capability.h — the server's CapabilityStatement (GET /fhir/metadata),
 * generated from the resource-type table and what rest.c implements.
 */
#ifndef SALUS_FHIR_CAPABILITY_H
#define SALUS_FHIR_CAPABILITY_H
#include "core/buf.h"

/* Append the CapabilityStatement JSON for a server whose FHIR base is `base`. */
int salus_fhir_capability(struct salus_buf *out, const char *base);

#endif
