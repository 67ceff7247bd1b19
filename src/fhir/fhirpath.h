/*
 * fhirpath.h — a small FHIRPath (N1, as used by FHIR R4) evaluator over
 * jansson documents, typed by the generated R4 definitions (fhir/defs.h).
 *
 * Two users: the validator (FHIR invariants such as dom-3, pat-1, bdl-7) and
 * search (extracting the nodes a SearchParameter expression selects, with
 * their FHIR type, to fill the index tables).
 *
 * Lifecycle.
 *   - An expression is parsed once into an immutable AST
 *     (salus_fp_parse → salus_fp_free), or fetched from the process-wide
 *     cache (salus_fp_cached: parsed on first use, shared by all threads,
 *     never freed before salus_fp_cache_clear()).  A parsed expression is
 *     read-only and may be evaluated by many threads at once.
 *   - Evaluation needs a workspace, `struct salus_fp_ctx` (one per thread,
 *     usually on the stack): an arena that holds the result collections.
 *     Results stay valid until the next salus_fp_ctx_reset/release on that
 *     workspace.  A workspace given an initial buffer allocates nothing until
 *     that is full, so repeated small evaluations cost no malloc at all.
 *
 * Typing.  Each result item carries the JSON node it stands for and its FHIR
 * type name ("HumanName", "date", "Reference", "BackboneElement", "Patient"),
 * derived from the element definitions while navigating: `value` on an
 * Observation finds `valueQuantity` and types it Quantity, `contained` and
 * `Bundle.entry.resource` are typed by their resourceType, primitives carry
 * their "_name" sibling (id/extension) in `ext`.
 *
 * Supported: paths and indexers, $this, %resource, %rootResource, %context,
 * %ucum, %sct, %loinc; literals (string, integer, decimal, boolean, {},
 * @date/@dateTime/@time as strings); operators . [] unary -, * / div mod,
 * + - &, is as, |, < > <= >=, = != ~ !~, in contains, and or xor implies;
 * functions empty exists(crit) all(crit) not where select first last tail
 * skip take count distinct isDistinct hasValue children descendants
 * ofType as is resolve extension(url) startsWith endsWith contains(s)
 * matches (POSIX ERE) length substring upper lower replace indexOf
 * toString toInteger intersect exclude union combine single iif trace
 * allTrue anyTrue allFalse anyFalse subsetOf supersetOf getValue
 * hasExtension memberOf(accepts: empty) and the FHIR conversions that R4
 * search expressions use.  Quantities compare only as their JSON nodes;
 * dates compare as strings of the same precision (else empty).
 *
 * resolve() does not read the store: it yields a marker item typed by the
 * reference's resource type ("Patient/1", ".../Patient/1/_history/2",
 * "#local" → the contained resource itself), enough for
 * `subject.where(resolve() is Patient)`.
 *
 * Errors: SALUS_EINVALID (syntax error, unknown function, type error at run
 * time such as a non-boolean where() criterion), SALUS_ENOMEM, and
 * SALUS_ETOOLARGE when an evaluation exceeds its step or memory budget
 * (descendants() of a huge document inside a where(), for instance).
 */
#ifndef SALUS_FHIR_FHIRPATH_H
#define SALUS_FHIR_FHIRPATH_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fhir/defs.h"

struct salus_fp_expr; /* a parsed expression (immutable) */

enum salus_fp_kind {
	SALUS_FP_NODE = 0, /* a node of the document: j (and ext) */
	SALUS_FP_BOOL,     /* computed boolean: b */
	SALUS_FP_INT,      /* computed integer: i */
	SALUS_FP_DEC,      /* computed decimal: d */
	SALUS_FP_STR,      /* computed string: s, n (not NUL-terminated) */
	SALUS_FP_REF,      /* resolve() marker: a resource of type `type`, no content (j NULL) */
};

/* One item of a result collection.  Everything it points to belongs to the
 * evaluated document, the definition tables, or the workspace arena. */
struct salus_fp_item {
	enum salus_fp_kind kind;
	const json_t *j;   /* NODE: the JSON value (NULL when only the "_name" sibling exists) */
	const json_t *ext; /* NODE primitives: the "_name" object (id, extension) or NULL */
	const char *tname; /* FHIR type name ("Quantity", "date", "BackboneElement", "Patient"),
			    * System type name for computed values ("String", "Boolean"...); never NULL */
	const struct salus_fhir_type *type;  /* the type `tname` names; NULL for System types */
	const struct salus_fhir_elem *elem;  /* element definition of a NODE; NULL at a resource
					      * root, for computed values and unknown content */
	/* navigation context (internal): children are looked up in (nav_t, nav_e) */
	const struct salus_fhir_type *nav_t;
	const struct salus_fhir_elem *nav_e;
	bool b;
	long long i;
	double d;
	const char *s;
	size_t n;
};

/* A result collection (ordered).  Valid until the workspace is reset. */
struct salus_fp_result {
	const struct salus_fp_item *items;
	size_t n;
};

#define SALUS_FP_ARENA_MAX (64u * 1024 * 1024) /* memory one evaluation may use */
#define SALUS_FP_STEPS_MAX 20000000u          /* item operations one evaluation may do */

/* Evaluation workspace.  Fields are private; allocate it anywhere. */
struct salus_fp_ctx {
	void *chunks;        /* heap chunks, in allocation order (private) */
	void *at;            /* chunk being filled; NULL while in init_buf */
	char *cur;           /* bump pointer */
	size_t left;         /* bytes left in the current block */
	size_t used;         /* heap bytes held */
	char *init_buf;      /* caller's initial buffer or NULL */
	size_t init_len;
	unsigned long steps; /* budget used by the current evaluation */
	int rc;              /* sticky allocation error of the current evaluation */
	const char *err;     /* PHI-free message of the last error, or NULL */
};

/* Workspace lifecycle.  buf (may be NULL) is used first; it must outlive the
 * workspace.  reset forgets every result and keeps heap memory for reuse;
 * release frees it (the workspace may be init'ed again). */
void salus_fp_ctx_init(struct salus_fp_ctx *cx, void *buf, size_t len);
void salus_fp_ctx_reset(struct salus_fp_ctx *cx);
void salus_fp_ctx_release(struct salus_fp_ctx *cx);

/* Parse expr[0..n) into a new expression (*out, free with salus_fp_free).
 * SALUS_EINVALID with a PHI-free message in why (may be NULL; expressions
 * come from definitions, the message may quote the offending token), or
 * SALUS_ENOMEM. */
int salus_fp_parse(const char *expr, size_t n, struct salus_fp_expr **out /* OUT */, char *why, size_t why_len);
void salus_fp_free(struct salus_fp_expr *e); /* NULL-safe */
/* The source text of a parsed expression (NUL-terminated). */
const char *salus_fp_text(const struct salus_fp_expr *e);

/* The cached parse of a NUL-terminated expression: parsed on first use and
 * kept for the life of the process (thread-safe).  Errors as salus_fp_parse,
 * plus SALUS_ETOOLARGE when the cache is full (4096 expressions). */
int salus_fp_cached(const char *expr, const struct salus_fp_expr **out /* OUT */);
/* Free every cached expression (tests, shutdown); no evaluation may run. */
void salus_fp_cache_clear(void);

/* Evaluate e with `resource` as %resource/%rootResource and as the input when
 * context is NULL; otherwise the input and %context are *context (an item
 * from an earlier result on the same workspace, or one made with
 * salus_fp_item_root).  root (may be NULL: resource) is %rootResource, the
 * container of a contained resource.  The result lives in cx's arena.
 * Errors: SALUS_EINVALID (run-time type error), SALUS_ENOMEM, SALUS_ETOOLARGE. */
int salus_fp_eval(struct salus_fp_ctx *cx, const struct salus_fp_expr *e, const json_t *resource,
		  const json_t *root, const struct salus_fp_item *context, struct salus_fp_result *out /* OUT */);

/* An item for a resource (typed by its resourceType; untyped when unknown). */
void salus_fp_item_root(const json_t *resource, struct salus_fp_item *out /* OUT */);
/* An item for a node of type `type` (data type or resource) or, for an
 * inline backbone element, of element `elem` of type `type`. */
void salus_fp_item_typed(const json_t *node, const struct salus_fhir_type *type, const struct salus_fhir_elem *elem,
			 struct salus_fp_item *out /* OUT */);

/* Convenience: evaluate as a boolean per FHIRPath's singleton rules.
 * *out is 1 (true), 0 (false) or -1 (empty). */
int salus_fp_eval_bool(struct salus_fp_ctx *cx, const struct salus_fp_expr *e, const json_t *resource,
		       const json_t *root, const struct salus_fp_item *context, int *out /* OUT */);

/* Accessors for search extraction.  The string of a string-like item
 * (JSON string node or computed string); NULL otherwise. */
const char *salus_fp_item_str(const struct salus_fp_item *it, size_t *n /* OUT, may be NULL */);
/* True if the item's type is `name` or derives from it ("Age" is a "Quantity"). */
bool salus_fp_item_is(const struct salus_fp_item *it, const char *name);

#endif
