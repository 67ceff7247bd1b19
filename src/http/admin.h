/*
 * admin.h — the administration REST surface for users and sessions
 * (`/admin/...`, docs/auth.md "Administration over HTTPS"): what
 * `salus user add|list|disable|reset-mfa|set-role|sessions` do, for an
 * administrator's own tools.
 *
 *   GET    /admin/users                      list (no secrets)
 *   POST   /admin/users                      create: {"username","role","password",
 *                                            "practitioner"|"patient"|"relatedPerson"} → 201 with the
 *                                            TOTP enrolment (secret, otpauth URI, recovery codes), shown once
 *   POST   /admin/users/U/disable            → 204; sessions and tokens end at once
 *   POST   /admin/users/U/role   {"role"}    → 204; sessions and tokens end
 *   POST   /admin/users/U/reset-mfa          → 200 with a new enrolment
 *   GET    /admin/users/U/sessions           the user's sessions (ids, address, times)
 *   DELETE /admin/users/U/sessions           end every session of U → 204
 *   DELETE /admin/users/U/sessions/ID        end one session → 204
 *
 * This module only maps a request to the user registry (auth/user.h) and
 * back; the HTTP layer authenticates the caller (a user token whose user
 * has the admin role, checked against the registry on every request),
 * audits every call (success or failure) as an administrative AuditEvent
 * before answering, and sends the answer.  Bodies are JSON objects with
 * known members only; passwords go through the password policy and are
 * never echoed, logged or audited.
 */
#ifndef SALUS_HTTP_ADMIN_H
#define SALUS_HTTP_ADMIN_H
#include <stddef.h>

#include "auth/user.h"
#include "core/buf.h"

/* What one admin request did, for its AuditEvent (all static or pointing
 * into the request's path). */
struct salus_admin_act {
	const char *action; /* "user.list", "user.add", ... (static) */
	char user[SALUS_USERNAME_MAX + 1]; /* the user acted on, or "" */
};

/* Handle one admin request.  path is the part after "/admin" (e.g.
 * "/users/alice/disable"); body (n bytes) the request body.  On 0, *status
 * is the HTTP status and out holds the JSON answer (empty for 204).
 * issuer names the otpauth:// issuer of new enrolments.  *why gets a
 * PHI-free reason with SALUS_EINVALID.
 * Errors: SALUS_ENOTFOUND (no such route or user), SALUS_EMETHOD,
 * SALUS_EINVALID, SALUS_EMEDIATYPE, SALUS_EEXISTS, SALUS_EIO, SALUS_ENOMEM. */
int salus_admin_handle(struct salus_users *u, const char *issuer, const char *method, const char *path,
		       const char *content_type, const char *body, size_t n, struct salus_buf *out /* OUT */,
		       int *status /* OUT */, struct salus_admin_act *act /* OUT */, const char **why /* OUT */);

#endif
