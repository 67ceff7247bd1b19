/*
 * json_out.h — writing JSON text straight into a capped buffer (used to
 * assemble Bundles from stored resources without re-parsing them).
 */
#ifndef SALUS_FHIR_JSON_OUT_H
#define SALUS_FHIR_JSON_OUT_H
#include <stddef.h>

#include "core/buf.h"

/* Append s as a JSON string literal (quoted, escaped).  Input must be UTF-8. */
int salus_json_add_str(struct salus_buf *b, const char *s, size_t n);
int salus_json_add_cstr(struct salus_buf *b, const char *s);

#endif
