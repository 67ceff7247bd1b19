/*
 * defs_int.h — layout of the generated FHIR definition tables (internal).
 *
 * Shared only by src/fhir/defs.c and the generated ${build}/generated/fhir_defs.c
 * (written by tools/gen_fhir_defs.c).  Other modules use fhir/defs.h.
 *
 * Every string lives once in one pool (`salus_fhir_pool`, NUL-separated) and
 * tables refer to it by 32-bit offset; offset 0 is the empty string and means
 * "none".  Rows are flat records of integers so the generated file compiles
 * quickly; indices between tables are absolute.
 *
 * Element rows of one type are its StructureDefinition snapshot in order
 * (depth-first, the root element itself omitted); `end` is one past the last
 * row of an element's subtree, so direct children of row i are i+1,
 * rows[i+1].end, ... up to rows[i].end.
 */
#ifndef SALUS_FHIR_DEFS_INT_H
#define SALUS_FHIR_DEFS_INT_H
#include <stdint.h>

#define SALUS_FHIR_TF_ABSTRACT 0x01   /* abstract type (Resource, Element...) */
#define SALUS_FHIR_TF_CONSTRAINT 0x02 /* a constraining profile (SimpleQuantity) */
#define SALUS_FHIR_TF_DOMAIN 0x04     /* a resource derived from DomainResource */

#define SALUS_FHIR_EF_CHOICE 0x01   /* path ends in [x] */
#define SALUS_FHIR_EF_MODIFIER 0x02 /* isModifier */
#define SALUS_FHIR_EF_SUMMARY 0x04  /* isSummary */

#define SALUS_FHIR_VSF_EXPANDED 0x01 /* code list is the complete expansion */
#define SALUS_FHIR_VSF_REQUIRED 0x02 /* bound with required strength somewhere */

struct salus_fhir_type {
	uint32_t name;       /* pool offset */
	uint32_t regex;      /* primitive types: the value regex (0: none) */
	uint32_t elem_first; /* first element row */
	uint32_t elem_count;
	uint32_t sp_first;   /* first search-parameter row (resources) */
	uint32_t comp_first; /* first name row of the Patient compartment params */
	int16_t base;        /* type index of the base type; -1 for none */
	uint16_t sp_count;
	uint16_t comp_count; /* 0: not in the Patient compartment */
	uint8_t kind;        /* enum salus_fhir_kind */
	uint8_t flags;       /* SALUS_FHIR_TF_* */
};

struct salus_fhir_elem {
	uint32_t path;       /* pool offset of the full path, "Observation.value[x]" */
	uint32_t end;        /* one past the last row of this element's subtree */
	int32_t ref;         /* contentReference: row whose children apply; -1 none */
	uint32_t tref_first; /* first type-reference row */
	int32_t vs;          /* value-set row of the binding; -1 none */
	uint16_t tref_count;
	uint16_t owner;      /* type index */
	uint16_t max;        /* 0xFFFF for '*' */
	uint8_t name_at;     /* offset of the last path segment within path */
	uint8_t min;
	uint8_t flags;       /* SALUS_FHIR_EF_* */
	uint8_t strength;    /* enum salus_fhir_binding */
};

struct salus_fhir_tref {
	uint32_t code;      /* type code: "Quantity", "string", "System.String"... */
	uint32_t profile;   /* profile type name ("SimpleQuantity"); 0 none */
	uint32_t tgt_first; /* first row in salus_fhir_names of target types */
	uint16_t tgt_count;
};

struct salus_fhir_sp {
	uint32_t code;
	uint32_t expr;       /* FHIRPath expression for this resource type; 0 none */
	uint32_t url;
	uint32_t tgt_first;  /* salus_fhir_names rows: reference target types */
	uint32_t comp_first; /* salus_fhir_spcomps rows */
	uint16_t tgt_count;
	uint8_t comp_count;
	uint8_t type;        /* enum salus_fhir_sp_type */
};

struct salus_fhir_spcomp {
	uint32_t code; /* code of the component's search parameter */
	uint32_t expr; /* relative FHIRPath expression */
};

struct salus_fhir_vs {
	uint32_t url;        /* canonical URL without |version */
	uint32_t code_first; /* salus_fhir_vscodes rows, sorted by code */
	uint32_t code_count;
	uint8_t flags;       /* SALUS_FHIR_VSF_* */
};

struct salus_fhir_vscode {
	uint32_t system;
	uint32_t code;
};

/* One concept of a code system with a hierarchy (nested concepts), rows
 * sorted by (system, code). */
struct salus_fhir_csconcept {
	uint32_t system;
	uint32_t code;
	uint32_t parent; /* the parent concept's code; 0 for a root */
};

#endif
