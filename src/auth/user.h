/*
 * user.h — people who log in: the user registry, password policy, Argon2id
 * with a pepper, TOTP MFA (RFC 6238, liboath) with recovery codes, lockout
 * with exponential backoff per account and per source address, and login
 * sessions with idle logoff and an absolute lifetime (HIPAA §164.312(a)(2)(i)
 * unique user identification, (a)(2)(iii) automatic logoff, (d) person
 * authentication).  docs/security.md ("Identity") has the threat model and
 * every default.
 *
 * Storage: the store's key/value namespaces "user" (one JSON record per
 * username) and "session" (key = base64url(BLAKE2b-256(session token)); the
 * token itself is never stored).  Both live in the encrypted store; the TOTP
 * secret is additionally sealed (XChaCha20-Poly1305, key derived from the
 * pepper, the username as associated data), and recovery codes are kept only
 * as keyed BLAKE2b hashes.
 *
 * The pepper: 32 random bytes in DIR/keys/pepper.key (mode 0600, created by
 * `salus init`, or by the first `salus user add` / `salus serve` of an older
 * data directory).  Passwords are hashed as Argon2id(BLAKE2b-256(key=pepper,
 * password)): a stolen database without the key file cannot be attacked
 * offline.  Losing the pepper makes every password unusable (reset them).
 *
 * Thread safety: a struct salus_users may be used from any number of threads.
 */
#ifndef SALUS_AUTH_USER_H
#define SALUS_AUTH_USER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct salus_store;

/* ---- roles -------------------------------------------------------------------------------------- */

/* The roles of DESIGN.md §5, in a fixed order (stored by name). */
#define SALUS_ROLE_MAP(X)                                                                              \
	X(ADMIN, "admin", true, "user/*.cruds")                                                        \
	X(CLINICIAN, "clinician", true, "user/*.cruds")                                                \
	X(NURSE, "nurse", true, "user/*.crus")                                                         \
	X(FRONT_DESK, "front-desk", true,                                                              \
	  "user/Patient.crus user/Appointment.cruds user/Schedule.rs user/Slot.rs user/Practitioner.rs " \
	  "user/PractitionerRole.rs user/Location.rs user/Organization.rs user/Coverage.crus "          \
	  "user/RelatedPerson.crus")                                                                   \
	X(BILLING, "billing", true,                                                                    \
	  "user/Patient.rs user/Coverage.crus user/Claim.cruds user/ClaimResponse.rs "                 \
	  "user/ExplanationOfBenefit.rs user/Account.crus user/ChargeItem.crus user/Invoice.cruds "    \
	  "user/Encounter.rs user/Organization.rs user/Practitioner.rs")                               \
	X(AUDITOR, "auditor", true, "user/AuditEvent.rs user/Provenance.rs")                           \
	X(PATIENT, "patient", false, "patient/*.rs")                                                   \
	X(RELATED_PERSON, "related-person", false, "patient/*.rs")

enum salus_role {
#define SALUS_ROLE_ENUM(e, name, staff, scopes) SALUS_ROLE_##e,
	SALUS_ROLE_MAP(SALUS_ROLE_ENUM)
#undef SALUS_ROLE_ENUM
	SALUS_ROLE__COUNT
};

/* Role by name; SALUS_EINVALID for an unknown name. */
int salus_role_parse(const char *name, enum salus_role *out /* OUT */);
const char *salus_role_name(enum salus_role r);
/* Staff roles must use MFA (every role but patient and related-person). */
bool salus_role_is_staff(enum salus_role r);
/* The most a token of this role may be granted (a scope string that salus_scopes_parse accepts). */
const char *salus_role_scopes(enum salus_role r);

/* ---- the pepper --------------------------------------------------------------------------------- */

#define SALUS_PEPPER_LEN 32
/* Create a pepper file (32 random bytes, base64url text "salus-pepper-v1\n<b64>\n",
 * mode 0600, written to a temporary file, fsync'ed and linked into place).
 * Errors: SALUS_EEXISTS, SALUS_EIO. */
int salus_pepper_create(const char *path);

/* ---- the users context -------------------------------------------------------------------------- */

#define SALUS_USERNAME_MAX 64      /* [a-z0-9._@-]{1,64}, lower case */
#define SALUS_PASSWORD_MIN 12      /* bytes (UTF-8) */
#define SALUS_PASSWORD_MAX 1024
#define SALUS_TOTP_SECRET_LEN 20   /* bytes: 160 bits (RFC 4226 recommendation) */
#define SALUS_TOTP_B32_LEN 33      /* base32 of 20 bytes (32 chars) + NUL */
#define SALUS_TOTP_STEP 30         /* seconds (RFC 6238 default) */
#define SALUS_TOTP_DIGITS 6
#define SALUS_TOTP_WINDOW 1        /* time steps accepted either side of now */
#define SALUS_RECOVERY_CODES 10
#define SALUS_RECOVERY_LEN 12      /* "xxxxx-xxxxx" + NUL: 50 bits each */
#define SALUS_SESSION_TOKEN_LEN 44 /* base64url of 32 random bytes + NUL */
#define SALUS_SESSION_ID_LEN 44    /* base64url(BLAKE2b-256(token)) + NUL: how sessions are listed */

/* Lockout (docs/security.md): after SALUS_LOCK_ACCOUNT_AFTER consecutive
 * failures an account waits SALUS_LOCK_BASE_S, doubling with each further
 * failure, at most SALUS_LOCK_MAX_S; the same per source address after
 * SALUS_LOCK_ADDR_AFTER failures (from any usernames).  Success resets the
 * account's count; an address's count decays after SALUS_LOCK_MAX_S quiet. */
#define SALUS_LOCK_ACCOUNT_AFTER 5
#define SALUS_LOCK_ADDR_AFTER 20
#define SALUS_LOCK_BASE_S 30
#define SALUS_LOCK_MAX_S 900
#define SALUS_LOCK_ADDR_SLOTS 4096

struct salus_users_opts {
	int idle_s;     /* idle logoff; 0: 900 (15 min); 60..86400 */
	int absolute_s; /* absolute session lifetime; 0: 43200 (12 h); idle_s..604800 */
};

struct salus_users; /* opaque */

/* Create the context: loads the pepper (mode must be 0600 or stricter) into
 * sodium_malloc'd memory and makes the dummy hash for unknown usernames (one
 * Argon2id hash of time).  store is borrowed.
 * Errors: SALUS_ENOTFOUND (no pepper file), SALUS_EINVALID (bad file or
 * options), SALUS_EIO, SALUS_ENOMEM. */
int salus_users_new(struct salus_store *store, const char *pepper_path, const struct salus_users_opts *o,
		    struct salus_users **out /* OUT */);
void salus_users_free(struct salus_users *u); /* NULL-safe; wipes the pepper */

/* True when name is a valid username ([a-z0-9._@-]{1,64}). */
bool salus_username_valid(const char *name);

/* The password policy: SALUS_PASSWORD_MIN..MAX bytes, valid UTF-8 without
 * control characters, not the username (or containing it), not a common
 * password (the list of the npm package @zxcvbn-ts/language-common,
 * compared case-insensitively, also with trailing digits and punctuation
 * removed), not a single repeated character.
 * Returns 0 or SALUS_EINVALID with *why (static, PHI-free). */
int salus_password_policy(const char *pw, size_t n, const char *username, const char **why /* OUT */);

/* What `salus user add` gives. */
struct salus_user_new {
	const char *username;
	enum salus_role role;
	const char *password; /* password_n bytes */
	size_t password_n;
	const char *practitioner; /* FHIR Practitioner id, or NULL */
	const char *patient;      /* FHIR Patient id (patient role) or RelatedPerson id (related-person), or NULL */
};

/* What a new MFA enrolment yields; shown once, never stored in clear. */
struct salus_mfa_enrolment {
	char secret_b32[SALUS_TOTP_B32_LEN];                    /* base32, no padding */
	char recovery[SALUS_RECOVERY_CODES][SALUS_RECOVERY_LEN]; /* single-use recovery codes */
};
/* Wipe an enrolment (sodium_memzero). */
void salus_mfa_enrolment_clear(struct salus_mfa_enrolment *e);

/* Add a user.  The password must pass salus_password_policy; a staff role
 * must be linked to a Practitioner, a patient to a Patient and a
 * related-person to a RelatedPerson (ids: [A-Za-z0-9.-]{1,64}).  A TOTP
 * secret and recovery codes are always provisioned (*mfa; MFA is required
 * for staff, optional for patients).  The MFA counts as enrolled once the
 * first code is verified (salus_user_mfa_verify).
 * Errors: SALUS_EINVALID (*why), SALUS_EEXISTS, SALUS_EIO, SALUS_ENOMEM. */
int salus_user_add(struct salus_users *u, const struct salus_user_new *nu, struct salus_mfa_enrolment *mfa /* OUT */,
		   const char **why /* OUT, may be NULL */);

/* One user as listed (no secret). */
struct salus_user_info {
	const char *username;
	const char *role;
	const char *link;       /* "Practitioner/ID", "Patient/ID", "RelatedPerson/ID" or "" */
	bool disabled;
	bool mfa_enrolled;
	int failures;           /* consecutive failed logins */
	int64_t locked_until_ms;/* 0: not locked */
	const char *created;
};
typedef int (*salus_user_cb)(void *ctx, const struct salus_user_info *ui);
/* Every user in username order.  Errors: SALUS_EIO. */
int salus_user_list(struct salus_users *u, salus_user_cb cb, void *ctx);
/* Disable a user (cannot log in; sessions and tokens stop at once).  SALUS_ENOTFOUND, SALUS_EIO. */
int salus_user_disable(struct salus_users *u, const char *username);
/* New TOTP secret and recovery codes (*mfa), MFA no longer enrolled, sessions ended, lockout cleared. */
int salus_user_reset_mfa(struct salus_users *u, const char *username, struct salus_mfa_enrolment *mfa /* OUT */);
/* Change the role (the link must fit the new role, see salus_user_add).  Sessions and tokens end. */
int salus_user_set_role(struct salus_users *u, const char *username, enum salus_role role, const char **why /* OUT */);

/* The otpauth:// URI of an enrolment (Key Uri Format: issuer, SHA1, 6
 * digits, 30 s), into out (cap bytes).  Errors: SALUS_ETOOLARGE. */
int salus_totp_uri(const char *issuer, const char *username, const char *secret_b32, char *out /* OUT */, size_t cap);
/* That URI as a QR code in an SVG image (qr.c; libqrencode, error correction
 * level M, a quiet zone of 4 modules, one SVG unit per module, drawn 8 px per
 * module).  The image holds the TOTP secret: write it only to a private file.
 * *out is new text (salus_free), *n its length.
 * Errors: SALUS_EINVALID (empty or over 1024 bytes), SALUS_ENOMEM. */
int salus_totp_qr_svg(const char *uri, char **out /* OUT */, size_t *n /* OUT */);

/* ---- login --------------------------------------------------------------------------------------- */

/* A logged-in (password verified) user. */
struct salus_login {
	char username[SALUS_USERNAME_MAX + 1];
	enum salus_role role;
	char fhir_user[96]; /* "Practitioner/ID" etc., or "" */
	char gen[32];       /* the record's generation (changes on disable, set-role, reset-mfa) */
	bool mfa_enrolled;  /* a TOTP code has been verified at least once */
	bool mfa_required;  /* staff role, or the user enrolled */
};

/* Check a username and password.  Unknown usernames, disabled or locked
 * accounts and wrong passwords all take one Argon2id verification and give
 * the same SALUS_EUNAUTHORIZED (no enumeration; a locked account is not
 * told apart).  A source address over its failure budget gets
 * SALUS_ERATELIMIT with *retry_after_s before any verification.  remote may
 * be NULL.  Every outcome is counted against the account and the address.
 * Errors also: SALUS_EIO, SALUS_ENOMEM. */
int salus_user_login(struct salus_users *u, const char *username, const char *password, size_t password_n,
		     const char *remote, int64_t now_ms, struct salus_login *out /* OUT */, int *retry_after_s /* OUT */);

/* Verify the second factor of a user whose password was just verified: a
 * TOTP code (6 digits, ±SALUS_TOTP_WINDOW steps, each time step usable once:
 * no replay) or a recovery code (single use).  The first valid TOTP code
 * completes enrolment.  Failures count like password failures.
 * Errors: SALUS_EUNAUTHORIZED, SALUS_ERATELIMIT, SALUS_EIO, SALUS_ENOMEM. */
int salus_user_mfa_verify(struct salus_users *u, const char *username, const char *code, const char *remote,
			  int64_t now_ms, int *retry_after_s /* OUT */);

/* The current TOTP code of a base32 secret at time now (tests, `salus user` tooling). */
int salus_totp_code(const char *secret_b32, int64_t now_s, char out[SALUS_TOTP_DIGITS + 1] /* OUT */);

/* ---- sessions ------------------------------------------------------------------------------------- */

/* Start a session for a fully authenticated user; *token (the cookie value)
 * is shown to the browser only.  Errors: SALUS_EIO, SALUS_ENOMEM. */
int salus_session_new(struct salus_users *u, const struct salus_login *who, const char *remote, int64_t now_ms,
		      char token[SALUS_SESSION_TOKEN_LEN] /* OUT */);
/* Check a session token: it exists, is neither idle longer than idle_s nor
 * older than absolute_s, and its user is still enabled with the same
 * generation; touches the last-seen time.  *who gets the user.
 * Errors: SALUS_EUNAUTHORIZED (ended; an expired session is deleted), SALUS_EIO, SALUS_ENOMEM. */
int salus_session_check(struct salus_users *u, const char *token, int64_t now_ms, struct salus_login *who /* OUT */);
/* End one session by token (logout).  Always SALUS_OK unless the store fails. */
int salus_session_end(struct salus_users *u, const char *token);

struct salus_session_info {
	const char *id;       /* base64url(BLAKE2b(token)) — usable with salus_session_revoke */
	const char *username;
	const char *remote;
	int64_t created_ms, seen_ms;
};
typedef int (*salus_session_cb)(void *ctx, const struct salus_session_info *si);
/* Every session (of one user if username is not NULL).  Errors: SALUS_EIO. */
int salus_session_list(struct salus_users *u, const char *username, salus_session_cb cb, void *ctx);
/* End a session by id, or every session of a user (username != NULL, id NULL).
 * Errors: SALUS_ENOTFOUND, SALUS_EIO. */
int salus_session_revoke(struct salus_users *u, const char *id, const char *username);

/* The role of an enabled user.  Errors: SALUS_ENOTFOUND (unknown or disabled), SALUS_EIO. */
int salus_user_role(struct salus_users *u, const char *username, enum salus_role *out /* OUT */);

/* Is this user still enabled with generation gen?  (Bearer checks of user
 * tokens.)  Errors: SALUS_EUNAUTHORIZED (disabled, gone, changed), SALUS_EIO. */
int salus_user_current(struct salus_users *u, const char *username, const char *gen);

#endif
