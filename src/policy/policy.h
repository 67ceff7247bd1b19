/*
 * policy.h — the access decision (DESIGN.md §5, docs/security.md "The access
 * decision").
 *
 * Effective permission = SMART scopes ∩ user role ∩ patient compartment ∩ v2
 * scope restrictions.  The role is already folded into the scopes when a user
 * token is issued (auth/user.h SALUS_ROLE_MAP); this module adds the patient
 * context (a patient, or a related person acting for one) and turns a set of
 * scopes into one rule per (resource type, interaction):
 *
 *   granted      — some scope whose context is in force grants the letter;
 *   compartment  — only resources in the Patient compartment of the context
 *                  patient (the grant came from patient/ scopes only);
 *   query        — only resources matching a v2 restriction ("category=...").
 *
 * The FHIR layer (fhir/rest.h, salus_fhir_req.policy) enforces the rule below
 * the REST handlers: as guards on every store query (fhir/access.h, store.h
 * struct salus_sq_guard) and as a check of every resource read or written.
 * This module decides; it never looks inside FHIR resources except the one
 * RelatedPerson that gives a proxy its patient.
 *
 * Thread safety: a struct salus_policy is read-only after salus_policy_init
 * and may be shared by the threads of one request.
 */
#ifndef SALUS_POLICY_H
#define SALUS_POLICY_H
#include <stdbool.h>
#include <stddef.h>

#include <stdint.h>

#include "core/limits.h"

#define SALUS_MAX_TYPE_NAME 64 /* a resource type name (store.h SALUS_MAX_TYPE) */

struct salus_store;

/* The interactions a scope letter grants (SMART v2 "cruds", in that order,
 * the same bit layout as auth.h SALUS_IA_BIT). */
enum salus_policy_letter { SALUS_POLICY_C, SALUS_POLICY_R, SALUS_POLICY_U, SALUS_POLICY_D, SALUS_POLICY_S };
#define SALUS_POLICY_BIT(l) (1u << (l))

enum salus_policy_ctx { SALUS_POLICY_CTX_PATIENT, SALUS_POLICY_CTX_USER, SALUS_POLICY_CTX_SYSTEM };

/* One granted scope, as the caller parsed it (auth.h struct salus_scope). */
struct salus_policy_scope {
	enum salus_policy_ctx ctx;
	const char *type;  /* a resource type or "*" (borrowed) */
	unsigned letters;  /* SALUS_POLICY_BIT set */
	const char *query; /* v2 restriction (borrowed, raw "a=b&c=d") or NULL */
};

#define SALUS_POLICY_MAX_SCOPES 64
#define SALUS_POLICY_MAX_BTG 16 /* active break-glass grants of one user */

/* ---- security labels and Consent (docs/security.md "Consent and security labels") ---- */

/* The security labels that hide a resource (meta.security) from some callers:
 * confidentiality R and V (v3-Confidentiality) and the sensitivity codes of
 * v3-ActCode below.  Bit i of a mask is entry i of salus_policy_label_at. */
#define SALUS_POLICY_CONF_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
#define SALUS_POLICY_ACT_SYSTEM "http://terminology.hl7.org/CodeSystem/v3-ActCode"
enum { SALUS_POLICY_LABEL_R, SALUS_POLICY_LABEL_V, SALUS_POLICY_LABEL_SENSITIVE /* first sensitivity code */ };
/* The number of labels the policy knows, and label i (system, code); NULL past the end. */
size_t salus_policy_label_count(void);
bool salus_policy_label_at(size_t i, const char **system /* OUT */, const char **code /* OUT */);

/* Default [policy] label_roles and label_v_roles. */
#define SALUS_POLICY_LABEL_ROLES "clinician nurse"
#define SALUS_POLICY_LABEL_V_ROLES ""

#define SALUS_POLICY_MAX_DENY 16   /* Consent denials in force for one user */
#define SALUS_POLICY_DENY_CODES 6  /* labels or classes of one denial (more: the whole compartment) */
#define SALUS_POLICY_CODE_MAX 96   /* a label's system (longer: the whole compartment) */

struct salus_policy_code {
	char system[SALUS_POLICY_CODE_MAX + 1];
	char code[SALUS_POLICY_CODE_MAX + 1];
};

#define SALUS_POLICY_DENY_EXCEPT 2  /* permit exceptions kept for one denial (more: left out, fail safe) */
#define SALUS_POLICY_EXCEPT_CODES 2 /* labels or classes of one exception (more: the exception is left out) */

/* A nested permit inside a denial: what carries one of labels (none: any)
 * and is of one of types (none: any) stays visible.  At least one list is
 * non-empty (a permit of everything voids the denial instead). */
struct salus_policy_except {
	struct salus_policy_code labels[SALUS_POLICY_EXCEPT_CODES];
	size_t nlabels;
	char types[SALUS_POLICY_EXCEPT_CODES][SALUS_MAX_TYPE_NAME + 1];
	size_t ntypes;
};

/* One Consent denial in force: patient's compartment, or the part of it that
 * carries one of labels (none: every label) and is of one of types (none:
 * every type), is hidden from the user — except what one of the permit
 * exceptions covers. */
struct salus_policy_deny {
	char patient[SALUS_MAX_ID + 1];
	struct salus_policy_code labels[SALUS_POLICY_DENY_CODES];
	size_t nlabels;
	char types[SALUS_POLICY_DENY_CODES][SALUS_MAX_TYPE_NAME + 1];
	size_t ntypes;
	struct salus_policy_except except[SALUS_POLICY_DENY_EXCEPT];
	size_t nexcept;
};

/* Calls each(each_ctx, json, n) for the JSON text of every Consent that may
 * deny `actor` ("Practitioner/P", "RelatedPerson/R", "Patient/X"): at least
 * those whose provision.actor references it (the FHIR layer searches
 * Consent?actor=...; fhir/access.h salus_fhir_access_consents).  A non-zero
 * return of each stops and is returned.  Errors: SALUS_EIO, SALUS_ENOMEM. */
typedef int (*salus_policy_consent_each)(void *each_ctx, const char *json, size_t n);
typedef int (*salus_policy_consent_fn)(void *ctx, const char *actor, salus_policy_consent_each each, void *each_ctx);

/* The [policy] settings (core/config.h). */
struct salus_policy_config {
	bool relationship;           /* "practitioner": staff user/ scopes reach related patients only */
	int break_glass_max_minutes; /* longest break-glass time box */
	/* security labels: staff roles (names, space-separated) that see R and sensitivity-labelled
	 * resources, and those that also see V; NULL: the defaults "clinician nurse" and "" */
	const char *label_roles;
	const char *label_v_roles;
	salus_policy_consent_fn consents; /* the Consents of an actor, or NULL (no Consent is enforced) */
	void *consents_ctx;
};

/* What a token says about its caller (borrowed for the call). */
struct salus_policy_token {
	const struct salus_policy_scope *scopes;
	size_t n;
	bool user_ctx;         /* a logged-in user's token: user/ scopes are in force */
	const char *user;      /* the username, or NULL */
	const char *fhir_user; /* "Patient/ID", "RelatedPerson/ID", "Practitioner/ID" or NULL */
	const char *patient;   /* the token's "patient" claim (context fixed at issue) or NULL */
	const char *role;      /* the user's role (auth/user.h name) when the token was issued, or NULL */
};

/* The decision of one caller, for the life of one request. */
struct salus_policy {
	struct salus_policy_scope v[SALUS_POLICY_MAX_SCOPES]; /* strings borrowed from the token's scopes */
	size_t n;
	bool user_ctx;                  /* a logged-in user's token: user/ scopes are in force */
	char patient[SALUS_MAX_ID + 1]; /* the patient context ("": none — patient/ scopes grant nothing) */
	/* the relationship rule (config relationship = practitioner) for a staff user's user/ scopes */
	bool related;                        /* in force for this token */
	char practitioner[SALUS_MAX_ID + 1]; /* the user's Practitioner id */
	char btg[SALUS_POLICY_MAX_BTG][SALUS_MAX_ID + 1]; /* patients opened by an active break-glass grant */
	size_t nbtg;
	/* security labels: resources carrying a label of `hidden` are not visible, except those of
	 * `hidden_btg` inside the compartment of a break-glass patient (bits: salus_policy_label_at) */
	uint32_t hidden;
	uint32_t hidden_btg;
	/* Consent: denials in force for this user (break-glass patients left out) */
	struct salus_policy_deny deny[SALUS_POLICY_MAX_DENY];
	size_t ndeny;
	bool deny_overflow; /* more denials than fit: user/ and patient/ scopes grant nothing (fail safe) */
};

/* What the caller may do with one interaction on one resource type. */
struct salus_policy_rule {
	bool granted;
	bool compartment;  /* restricted to the Patient compartment of policy.patient */
	bool related;      /* restricted to the compartments of patients related to policy.practitioner
			    * (or opened by break-glass); types outside the Patient compartment are not */
	const char *query; /* a v2 scope restriction (borrowed from the scopes, raw "a=b&c=d"), or NULL */
};

/* Build the decision for a token t (its scope strings are borrowed and must
 * outlive p; more than SALUS_POLICY_MAX_SCOPES scopes is SALUS_EINVALID);
 * cfg NULL: the defaults (no relationship rule).  The patient context is set
 * only when the scopes hold a patient/ scope and:
 *   - fhir_user is Patient/X and the claim is X (or absent): context X;
 *   - fhir_user is RelatedPerson/Y, the current RelatedPerson Y exists, is not
 *     deleted, is not `active: false`, its `patient` is the local reference
 *     Patient/Z, and the claim is Z: context Z (proxy access; re-checked on
 *     every request, so deactivating the RelatedPerson ends the access at once).
 *   - fhir_user is Practitioner/P (a staff user's token) and the claim is X
 *     (set at issue from a SMART EHR launch context the user made,
 *     auth/oauth.h salus_oauth_launch): context X; under the relationship
 *     rule the patient/ scopes are then narrowed by it as user/ ones are.
 * Anything else leaves no context (patient/ scopes then grant nothing: fail
 * safe).  With cfg->relationship and a user token of Practitioner/P, the
 * relationship rule is in force for its user/ scopes, and the user's active
 * break-glass grants are read from st (one key/value read).  st may be NULL
 * (no RelatedPerson or grant can be read then).
 * Errors: SALUS_EIO (the store could not answer: fail closed), SALUS_ENOMEM,
 * SALUS_EINVALID. */
/* The empty decision (grants nothing), without clearing the denial array
 * (only deny[0..ndeny) is ever read; it is most of the struct's size). */
void salus_policy_clear(struct salus_policy *p /* OUT */);

int salus_policy_init(struct salus_policy *p /* OUT */, struct salus_store *st, const struct salus_policy_config *cfg,
		      const struct salus_policy_token *t);

/* Interpret one Consent (JSON text) for actor at now_ms (0: now) into p's
 * denials (docs/security.md "Consent"): status active, scope patient-privacy
 * (http://terminology.hl7.org/CodeSystem/consentscope), patient a local
 * Patient reference (never the actor's own record), then
 *   - a top-level provision of type deny whose actors name `actor` (or that
 *     has no actor: everyone) denies the patient's compartment, narrowed by
 *     its securityLabel and class (resource types of
 *     http://hl7.org/fhir/resource-types), with its nested permit
 *     provisions that apply to the actor as exceptions (labels, classes; a
 *     nested permit of everything voids the denial);
 *   - a top-level permit: each nested deny provision that applies to the
 *     actor (its own actors, or the top level's) is a denial as above;
 * a provision applies only within its period, and by its purpose: the
 * access is a break-glass one when p holds a break-glass grant for the
 * patient (purposeOfUse BTG/ETREAT), an ordinary one otherwise.  A deny
 * without purpose binds ordinary access only (break-glass overrides it); one
 * with purposes binds break-glass access when they include BTG or ETREAT and
 * ordinary access when they include any other code.  A permit without
 * purpose excepts both; one with purposes excepts break-glass access only,
 * and only when they include BTG or ETREAT (other purposes: not applied).
 * Whatever cannot be kept exactly is kept wider (fail safe).
 * Errors: SALUS_ENOMEM. */
int salus_policy_consent_add(struct salus_policy *p, const char *actor, const char *json, size_t n, int64_t now_ms);

/* Does p hide a resource of patient compartment `patient` (NULL/"": none
 * known) with type `type` and labels (system, code) pairs labels[0..nlabels)?
 * The content-side counterpart of the store guards (fhir/access.c). */
bool salus_policy_hides(const struct salus_policy *p, const char *type, const char *const *patients, size_t npatients,
			const struct salus_policy_code *labels, size_t nlabels);

/* Is patient id opened by one of p's break-glass grants? */
bool salus_policy_btg_has(const struct salus_policy *p, const char *id);

/* ---- break-glass ---- */

#define SALUS_BTG_REASON_MIN 10
#define SALUS_BTG_REASON_MAX 500

/* Open patient `patient`'s record to staff user `user` for `minutes`
 * (1..cfg->break_glass_max_minutes) with a stated reason (10..500 bytes of
 * UTF-8 text without control characters; kept in the grant record, which is
 * encrypted at rest like all data, and never logged).  Only under the
 * relationship rule (otherwise staff already reach every patient).  The
 * grant is stored in the key/value namespace "breakglass" under the username
 * (expired grants are dropped; a grant for the same patient is replaced).
 * now_ms: the clock (0: now).  *expires_ms gets the end of the time box.  The
 * caller audits it (purposeOfUse BTG) and alerts.
 * Errors: SALUS_EINVALID (*why: relationship rule off, bad minutes, reason or
 * id), SALUS_ENOTFOUND (no such Patient), SALUS_ETOOLARGE (already
 * SALUS_POLICY_MAX_BTG active grants), SALUS_EIO, SALUS_ENOMEM. */
int salus_policy_break_glass(struct salus_store *st, const struct salus_policy_config *cfg, const char *user,
			     const char *patient, const char *reason, long minutes, int64_t now_ms,
			     int64_t *expires_ms /* OUT */, const char **why /* OUT */);
/* Withdraw user's grant for patient (when its audit event could not be
 * written).  Absent: SALUS_OK.  Errors: SALUS_EIO, SALUS_ENOMEM. */
int salus_policy_break_glass_revoke(struct salus_store *st, const char *user, const char *patient);
/* Every stored break-glass grant as a JSON array text [{"user", "patient",
 * "reason", "created", "expires", "active"}] (times as FHIR instants) into
 * *out (new, salus_free).  Expired grants stay until their user's next grant.
 * Errors: SALUS_EIO, SALUS_ENOMEM. */
int salus_policy_break_glass_list(struct salus_store *st, int64_t now_ms, char **out /* OUT */);

/* The patient whose context a fhirUser reference gives ("Patient/X" → X;
 * "RelatedPerson/Y" → the patient of the active RelatedPerson Y, read from
 * st) into out (SALUS_MAX_ID + 1 bytes).  Errors: SALUS_ENOTFOUND (no
 * context: another kind of user, a missing, deleted or inactive
 * RelatedPerson, or one without a local Patient reference), SALUS_EIO,
 * SALUS_ENOMEM. */
int salus_policy_patient_of(struct salus_store *st, const char *fhir_user, char out[SALUS_MAX_ID + 1] /* OUT */);

/* The context of a SMART EHR launch exists: Patient `patient` (not deleted)
 * and, when `encounter` is neither NULL nor "", Encounter `encounter` whose
 * subject is that Patient.  Errors: SALUS_ENOTFOUND, SALUS_EIO, SALUS_ENOMEM. */
int salus_policy_launch_target(struct salus_store *st, const char *patient, const char *encounter);

/* The rule for interaction letter l on type ("*": a system-wide interaction, which
 * only a "*" scope grants).  Among the scopes that grant it, the widest kind
 * wins: unrestricted system/ or user/ > unrestricted patient/ (compartment) >
 * restricted system/ or user/ (query) > restricted patient/ (compartment and
 * query).  Two restricted scopes of the same kind are not unioned: the first
 * is applied (narrower than the union, never wider).  A restricted scope on
 * type "*" grants nothing (a restriction names one type's parameters). */
struct salus_policy_rule salus_policy_rule(const struct salus_policy *p, const char *type, enum salus_policy_letter l);

/* salus_policy_rule(p, type, l).granted. */
bool salus_policy_allows(const struct salus_policy *p, const char *type, enum salus_policy_letter l);

/* True when some rule of p may restrict what an interaction returns (a
 * patient context or a restricted scope is in force): the FHIR layer then
 * guards queries and checks resources; false: the scopes alone decide. */
bool salus_policy_restricts(const struct salus_policy *p);

/* The distinct resource types named by p's scopes (never "*"), in scope
 * order, at most max; returns how many were written to out (borrowed). */
size_t salus_policy_types(const struct salus_policy *p, const char **out /* OUT */, size_t max);

#endif
