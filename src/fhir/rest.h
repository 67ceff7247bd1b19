/*
 * rest.h — the FHIR R4 RESTful API, independent of the transport.
 *
 * The HTTP layer turns a request into a `struct salus_fhir_req` with
 * salus_fhir_route(), lets the policy phase decide on the interaction, and
 * calls salus_fhir_handle(), which answers a `struct salus_fhir_resp`:
 * status, JSON body (a resource, a Bundle or an OperationOutcome), ETag,
 * Location and Last-Modified.  Every error is an OperationOutcome.
 */
#ifndef SALUS_FHIR_REST_H
#define SALUS_FHIR_REST_H
#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "store/store.h"

struct salus_policy;

enum salus_fhir_op {
	SALUS_FHIR_CAPABILITIES, /* GET  /metadata */
	SALUS_FHIR_READ,         /* GET  /T/id */
	SALUS_FHIR_VREAD,        /* GET  /T/id/_history/vid */
	SALUS_FHIR_UPDATE,       /* PUT  /T/id */
	SALUS_FHIR_DELETE,       /* DELETE /T/id */
	SALUS_FHIR_CREATE,       /* POST /T */
	SALUS_FHIR_SEARCH_TYPE,  /* GET  /T, POST /T/_search */
	SALUS_FHIR_HISTORY_INSTANCE, /* GET /T/id/_history */
	SALUS_FHIR_HISTORY_TYPE,     /* GET /T/_history */
	SALUS_FHIR_HISTORY_SYSTEM,   /* GET /_history */
	/* added with bundles, conditional operations and PATCH (docs/fhir-rest.md) */
	SALUS_FHIR_BUNDLE,           /* POST / (Bundle.type batch or transaction) */
	SALUS_FHIR_PATCH,            /* PATCH /T/id (application/json-patch+json) */
	SALUS_FHIR_COND_UPDATE,      /* PUT /T?criteria */
	SALUS_FHIR_COND_DELETE,      /* DELETE /T?criteria */
	SALUS_FHIR_COND_PATCH,       /* PATCH /T?criteria */
	SALUS_FHIR_VALIDATE,         /* POST /T/$validate, POST /T/id/$validate (access 'r') */
	/* added with search (docs/search.md) */
	SALUS_FHIR_SEARCH_SYSTEM,      /* GET /?params, POST /_search */
	SALUS_FHIR_SEARCH_COMPARTMENT, /* GET /Patient/id/T and /Patient/id/[*], POST /Patient/id/T/_search */
	SALUS_FHIR_EVERYTHING,         /* GET /Patient/id/$everything */
};

/* What an interaction needs from SMART scopes: c r u d s. */
enum salus_fhir_access { SALUS_ACCESS_C, SALUS_ACCESS_R, SALUS_ACCESS_U, SALUS_ACCESS_D, SALUS_ACCESS_S };

struct salus_param {
	char *name;  /* decoded, owned by the request */
	char *value; /* decoded, owned by the request */
};

struct salus_fhir_req {
	enum salus_fhir_op op;
	char type[SALUS_MAX_TYPE + 1]; /* empty for system-level interactions */
	char id[SALUS_MAX_ID + 1];
	long vid;
	/* SALUS_FHIR_SEARCH_COMPARTMENT: the type searched in the compartment of
	 * type/id ("" for all types: /Patient/id/[*]) */
	char ctype[SALUS_MAX_TYPE + 1];
	const char *base;              /* FHIR base URL, e.g. https://localhost:8443/fhir */
	const struct salus_param *params;
	size_t nparams;
	const char *if_match;          /* header values or NULL */
	const char *prefer;
	const char *body;
	size_t body_len;
	/* added with conditional operations and PATCH: header values or NULL */
	const char *if_none_exist;     /* conditional create: a query string */
	const char *if_none_match;     /* conditional read: W/"n" or * */
	const char *if_modified_since; /* conditional read: an HTTP date */
	const char *content_type;      /* of the body (PATCH needs application/json-patch+json) */
	/* Authorisation of each entry of a batch/transaction Bundle, which the
	 * HTTP policy phase cannot see (NULL: everything allowed).  True when
	 * the caller may perform access `a` on resource type `type`. */
	bool (*allow)(void *ctx, const char *type, enum salus_fhir_access a);
	void *allow_ctx;
	/* The audit hook for writes (NULL: salus_store_write).  When set, the
	 * handlers of single-resource writes (create, update, patch, delete and
	 * their conditional forms) call it instead of salus_store_write, with the
	 * same arguments and meaning; the HTTP layer builds the access's
	 * AuditEvent in it and commits it in the write's own transaction
	 * (salus_store_write_audited, docs/audit.md), so this module never sees
	 * the audit trail.  A CREATE op may get its id assigned by the hook. */
	int (*write)(void *ctx, struct salus_store *st, struct salus_write *ops, size_t n);
	void *write_ctx;
	/* The caller's access decision (policy/policy.h; borrowed), enforced by
	 * every handler below the REST layer (fhir/access.h, docs/security.md):
	 * queries carry its guards, reads and history entries outside it answer
	 * as not found, writes outside it are refused; Bundle entries inherit it.
	 * NULL: no restriction beyond what the HTTP policy phase checked. */
	const struct salus_policy *policy;
};

struct salus_fhir_resp {
	int status;
	struct salus_buf body;         /* JSON; empty for 204 and return=minimal */
	char etag[32];                 /* W/"n" or empty */
	char location[600];            /* absolute URL or empty */
	char last_modified[40];        /* RFC 7231 date or empty */
};

void salus_fhir_resp_init(struct salus_fhir_resp *rs);
void salus_fhir_resp_release(struct salus_fhir_resp *rs);

/* Parse method + path below the FHIR base ("/Patient/123/_history/2", query
 * excluded) into rq->op/type/id/vid.  Errors: SALUS_ENOTFOUND (unknown path or
 * resource type), SALUS_EMETHOD (known path, wrong method), SALUS_EINVALID (bad
 * id or version); *why is a PHI-free message. */
int salus_fhir_route(const char *method, const char *path, struct salus_fhir_req *rq /* OUT */,
		     const char **why /* OUT */);
/* The scope letter an op needs, and whether it is system-wide (type "*"). */
enum salus_fhir_access salus_fhir_op_access(enum salus_fhir_op op);

/* Serve one interaction against the store.  Always fills rs (on error with an
 * OperationOutcome and the status from the error table); returns the status. */
int salus_fhir_handle(struct salus_store *st, const struct salus_fhir_req *rq, struct salus_fhir_resp *rs);

/* Write an OperationOutcome for rc (core/err.h) into out, replacing its
 * contents.  diagnostics and expression (FHIRPath) may be NULL; neither may
 * carry PHI.  Returns the HTTP status for rc. */
int salus_fhir_outcome(struct salus_buf *out, int rc, const char *diagnostics, const char *expression);

/* Parse a request body as a resource of rq->type with the structural checks
 * of create/update (resourceType matches, id and meta shapes; validation
 * against the definitions once the validator is wired in), for the bundle
 * processor and PATCH.  On error fills rs with the OperationOutcome and
 * returns the code. */
int salus_fhir_load_body(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, json_t **out /* OUT, new */);
/* The structural checks of salus_fhir_load_body on an already parsed
 * resource j (borrowed).  0, or an error with rs filled. */
int salus_fhir_check_resource(const struct salus_fhir_req *rq, struct salus_fhir_resp *rs, json_t *j);

/* A resource patched but not yet written: the PATCH interaction, and PATCH
 * entries of Bundles (docs/fhir-rest.md).  Release with
 * salus_fhir_patched_release (also after an error, or when memset to 0). */
struct salus_fhir_patched {
	struct salus_resource cur; /* the version read (its version is the write's if_match) */
	json_t *doc;               /* owned: the patched resource */
	struct salus_buf text;     /* its text: members no op touched keep their bytes */
	bool text_ok;              /* false: serialise doc instead */
	bool unchanged;            /* the patch changed nothing: write nothing */
};
void salus_fhir_patched_release(struct salus_fhir_patched *p);
/* Read the current rq->type/id (id overrides rq->id), check if_match (0:
 * none), apply the JSON Patch `patch` (borrowed; patch.h), refuse changes to
 * resourceType, id or meta (422) and validate the result as an update.  On
 * error rs holds the OperationOutcome and the code is returned (404/410 for
 * a missing resource, 412, 400/422 for the patch or the result). */
int salus_fhir_patch_prepare(struct salus_store *st, const struct salus_fhir_req *rq, const char *id, long if_match,
			     const json_t *patch, struct salus_fhir_resp *rs, struct salus_fhir_patched *out /* OUT */);

/* Strict JSON for request bodies: an object, valid UTF-8, no duplicate keys,
 * nesting <= SALUS_MAX_JSON_DEPTH.  Errors: SALUS_EINVALID with a PHI-free
 * message (position only) in why (a buffer of >= 160 bytes). */
int salus_json_parse_strict(const char *p, size_t n, json_t **out /* OUT, new */, char *why, size_t why_len);
/* Its fast path alone (json.c): the tree json_loadb(JSON_REJECT_DUPLICATES)
 * would build for an object or array document, or NULL when it declines —
 * on anything invalid, and on a few valid rarities (\u0000, integers beyond
 * 64 bits, keys of 256 bytes or more, numbers of 128 characters or more).
 * Exposed for the fuzz target and tests that compare it with jansson. */
json_t *salus_json_parse_fast(const char *p, size_t n /* new, or NULL */);

/* salus_json_parse_strict that also notes where in p the values of the
 * members named `inner` of the elements of the root's array member `outer`
 * are (for a Bundle: "entry" and "resource", so each entry's resource text
 * is known without another pass).  When ok is true, n is the number of
 * elements of outer and at[i] the text of outer[i].inner (p == NULL: absent
 * or outer[i] not an object); when false (the text was decided by the slow
 * path), n is 0.  Caller sets outer and inner, zeroes at and cap, and frees
 * at with salus_free. */
struct salus_json_marks {
	const char *outer, *inner;
	struct salus_slice *at; /* OUT */
	size_t n, cap;          /* OUT */
	bool ok;                /* OUT */
};
int salus_json_parse_strict_marks(const char *p, size_t n, json_t **out /* OUT, new */, char *why, size_t why_len,
				  struct salus_json_marks *m);

/* True for a FHIR id: [A-Za-z0-9-.]{1,64}. */
bool salus_fhir_id_valid(const char *s, size_t n);

#endif
