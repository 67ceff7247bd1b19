/*
 * err.h — the one error table of Salus.
 *
 * Every module returns `int` status codes: 0 (SALUS_OK) on success, a negative
 * SALUS_E* code on failure.  The X-macro below yields the enum, a short name,
 * the HTTP status, the FHIR OperationOutcome issue.code and a PHI-free default
 * message.  Library codes (SQLite, jansson, libsodium...) are translated into
 * these at the module boundary; nothing above `store` ever sees an SQLite code.
 */
#ifndef SALUS_CORE_ERR_H
#define SALUS_CORE_ERR_H

/*        NAME       code  http  issue.code        message */
#define SALUS_ERR_MAP(X)                                                                       \
	X(INVALID, -2, 400, "invalid", "request is not valid")                                 \
	X(UNAUTHORIZED, -3, 401, "login", "authentication required")                           \
	X(FORBIDDEN, -4, 403, "forbidden", "not allowed")                                      \
	X(NOTFOUND, -5, 404, "not-found", "no such resource")                                  \
	X(METHOD, -6, 405, "not-supported", "method not allowed")                              \
	X(NOTACCEPTABLE, -7, 406, "not-supported", "only JSON is supported")                   \
	X(CONFLICT, -8, 409, "conflict", "conflict")                                           \
	X(GONE, -9, 410, "deleted", "resource was deleted")                                    \
	X(PRECONDITION, -10, 412, "conflict", "version does not match If-Match")              \
	X(TOOLARGE, -11, 413, "too-costly", "request is too large")                            \
	X(MEDIATYPE, -12, 415, "not-supported", "unsupported media type")                      \
	X(UNPROCESSABLE, -13, 422, "processing", "resource failed validation")                 \
	X(RATELIMIT, -14, 429, "throttled", "too many requests")                               \
	X(NOMEM, -15, 500, "exception", "out of memory")                                       \
	X(IO, -16, 500, "exception", "storage error")                                          \
	X(INTERNAL, -17, 500, "exception", "internal error")                                   \
	X(CRYPTO, -18, 500, "security", "cryptographic failure")                               \
	X(BUSY, -19, 503, "transient", "service busy, retry")                                  \
	X(EXISTS, -20, 409, "duplicate", "already exists")                                     \
	X(USAGE, -21, 400, "invalid", "invalid usage")                                         \
	X(INTEGRITY, -22, 500, "exception", "integrity check failed") \
	X(URITOOLONG, -23, 414, "too-long", "request URL is too long")

enum salus_err {
	SALUS_OK = 0,
#define SALUS_ERR_ENUM(name, code, http, issue, msg) SALUS_E##name = (code),
	SALUS_ERR_MAP(SALUS_ERR_ENUM)
#undef SALUS_ERR_ENUM
};

/* Short name ("NOTFOUND"), never NULL; "OK" for 0, "UNKNOWN" for codes not in the table. */
const char *salus_err_name(int rc);
/* PHI-free default message, never NULL. */
const char *salus_err_msg(int rc);
/* HTTP status for a code (200 for SALUS_OK, 500 for unknown codes). */
int salus_err_http(int rc);
/* FHIR OperationOutcome issue.code for a code ("exception" for unknown codes). */
const char *salus_err_issue(int rc);

#endif
