/*
 * admin.c — the administration REST surface for users and sessions (see
 * admin.h): routes `/admin/users...` to the user registry and writes the
 * answers as JSON.
 */
#include "http/admin.h"

#include <stdint.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/err.h"

#define ADMIN_MAX_BODY 4096 /* a user-creation body: names, role, a password */

/* Append a jansson value (stolen) to out as compact JSON. */
static int put_json(struct salus_buf *out, json_t *j)
{
	if (!j)
		return SALUS_ENOMEM;
	char *t = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!t)
		return SALUS_ENOMEM;
	int rc = salus_buf_adds(out, t);
	salus_free(t);
	return rc;
}

struct list_ctx {
	json_t *arr;
	int rc;
};

static int list_user(void *ctx, const struct salus_user_info *ui)
{
	struct list_ctx *c = ctx;
	json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:i, s:s}", "username", ui->username, "role", ui->role,
			      "link", ui->link ? ui->link : "", "disabled", ui->disabled, "mfaEnrolled", ui->mfa_enrolled,
			      "failedLogins", ui->failures, "created", ui->created ? ui->created : "");
	if (o && ui->locked_until_ms)
		json_object_set_new(o, "lockedUntilMs", json_integer(ui->locked_until_ms));
	if (!o || json_array_append_new(c->arr, o))
		return c->rc = SALUS_ENOMEM;
	return 0;
}

static int list_session(void *ctx, const struct salus_session_info *si)
{
	struct list_ctx *c = ctx;
	json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", si->id, "username", si->username, "address",
			      si->remote ? si->remote : "", "createdMs", (json_int_t)si->created_ms, "lastSeenMs",
			      (json_int_t)si->seen_ms);
	if (!o || json_array_append_new(c->arr, o))
		return c->rc = SALUS_ENOMEM;
	return 0;
}

/* The enrolment answer: secret, otpauth URI, recovery codes.  Wipes mfa. */
static int put_enrolment(struct salus_buf *out, const char *issuer, const char *user, struct salus_mfa_enrolment *mfa)
{
	char uri[512];
	int rc = salus_totp_uri(issuer, user, mfa->secret_b32, uri, sizeof uri);
	json_t *codes = json_array(), *o = NULL;
	for (int i = 0; !rc && codes && i < SALUS_RECOVERY_CODES; i++)
		if (json_array_append_new(codes, json_string(mfa->recovery[i])))
			rc = SALUS_ENOMEM;
	if (!rc && codes)
		o = json_pack("{s:s, s:{s:s, s:s}, s:o}", "username", user, "totp", "secret", mfa->secret_b32, "uri", uri,
			      "recoveryCodes", codes);
	else
		json_decref(codes);
	salus_mfa_enrolment_clear(mfa);
	sodium_memzero(uri, sizeof uri);
	if (rc)
		return rc;
	return put_json(out, o);
}

/* A JSON object body with only the members in `allowed` (NULL-terminated). */
static int parse_body(const char *content_type, const char *body, size_t n, const char *const *allowed, json_t **out,
		      const char **why)
{
	if (!content_type || strncmp(content_type, "application/json", 16) || (content_type[16] && content_type[16] != ';'))
		return *why = "the body must be application/json", SALUS_EMEDIATYPE;
	if (n > ADMIN_MAX_BODY)
		return *why = "the body is too large", SALUS_ETOOLARGE;
	json_t *j = json_loadb(body ? body : "", n, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return *why = "the body must be a JSON object", SALUS_EINVALID;
	}
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = !strcmp(k, *a);
		if (!ok || !json_is_string(v)) {
			json_decref(j);
			return *why = "unknown member, or a member that is not a string", SALUS_EINVALID;
		}
	}
	*out = j;
	return 0;
}

static const char *member(const json_t *j, const char *name)
{
	return json_string_value(json_object_get(j, name));
}

static int add_user(struct salus_users *u, const char *issuer, const char *ct, const char *body, size_t n,
		    struct salus_buf *out, struct salus_admin_act *act, const char **why)
{
	static const char *const allowed[] = {"username", "role", "password", "practitioner", "patient",
					      "relatedPerson", NULL};
	json_t *j = NULL;
	int rc = parse_body(ct, body, n, allowed, &j, why);
	if (rc)
		return rc;
	const char *name = member(j, "username"), *role = member(j, "role"), *pw = member(j, "password");
	const char *prac = member(j, "practitioner"), *pat = member(j, "patient"), *rel = member(j, "relatedPerson");
	struct salus_user_new nu = {0};
	struct salus_mfa_enrolment mfa;
	if (!name || !role || !pw || (pat && rel)) {
		*why = "username, role and password are required, and at most one of patient and relatedPerson";
		rc = SALUS_EINVALID;
		goto out;
	}
	snprintf(act->user, sizeof act->user, "%s", salus_username_valid(name) ? name : "");
	if (salus_role_parse(role, &nu.role)) {
		*why = "unknown role";
		rc = SALUS_EINVALID;
		goto out;
	}
	nu.username = name;
	nu.password = pw;
	nu.password_n = strlen(pw);
	nu.practitioner = prac;
	nu.patient = pat ? pat : rel;
	if ((rc = salus_user_add(u, &nu, &mfa, why)))
		goto out;
	rc = put_enrolment(out, issuer, name, &mfa);
out:
	if (j) { /* the password leaves memory */
		json_t *p = json_object_get(j, "password");
		if (json_is_string(p))
			sodium_memzero((void *)(uintptr_t)json_string_value(p), json_string_length(p));
	}
	json_decref(j);
	return rc;
}

static int set_role(struct salus_users *u, const char *user, const char *ct, const char *body, size_t n,
		    const char **why)
{
	static const char *const allowed[] = {"role", NULL};
	json_t *j = NULL;
	enum salus_role role;
	int rc = parse_body(ct, body, n, allowed, &j, why);
	if (rc)
		return rc;
	if (!member(j, "role") || salus_role_parse(member(j, "role"), &role)) {
		*why = "a known role is required";
		rc = SALUS_EINVALID;
	} else {
		rc = salus_user_set_role(u, user, role, why);
	}
	json_decref(j);
	return rc;
}

/* Split "/users/NAME/REST" into NAME (checked) and REST (may be ""). */
static int user_path(const char *p, struct salus_admin_act *act, const char **rest)
{
	const char *s = p + 7; /* after "/users/" */
	const char *e = strchr(s, '/');
	size_t n = e ? (size_t)(e - s) : strlen(s);
	if (n == 0 || n > SALUS_USERNAME_MAX)
		return SALUS_ENOTFOUND;
	memcpy(act->user, s, n);
	act->user[n] = 0;
	if (!salus_username_valid(act->user)) {
		act->user[0] = 0;
		return SALUS_ENOTFOUND;
	}
	*rest = e ? e : "";
	return 0;
}

int salus_admin_handle(struct salus_users *u, const char *issuer, const char *method, const char *path,
		       const char *content_type, const char *body, size_t n, struct salus_buf *out, int *status,
		       struct salus_admin_act *act, const char **why)
{
	const char *rest = NULL;
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST"), del = !strcmp(method, "DELETE");
	int rc;

	memset(act, 0, sizeof *act);
	act->action = "admin";
	*status = 204;
	if (!strcmp(path, "/users")) {
		act->action = post ? "user.add" : "user.list";
		if (get) {
			struct list_ctx c = {.arr = json_array()};
			if (!c.arr)
				return SALUS_ENOMEM;
			rc = salus_user_list(u, list_user, &c);
			if (rc || c.rc) {
				json_decref(c.arr);
				return rc ? rc : c.rc;
			}
			*status = 200;
			return put_json(out, json_pack("{s:o}", "users", c.arr));
		}
		if (!post)
			return SALUS_EMETHOD;
		if ((rc = add_user(u, issuer, content_type, body, n, out, act, why)))
			return rc;
		*status = 201;
		return 0;
	}
	if (strncmp(path, "/users/", 7) || (rc = user_path(path, act, &rest)))
		return SALUS_ENOTFOUND;
	if (!strcmp(rest, "/disable")) {
		act->action = "user.disable";
		return post ? salus_user_disable(u, act->user) : SALUS_EMETHOD;
	}
	if (!strcmp(rest, "/role")) {
		act->action = "user.set-role";
		return post ? set_role(u, act->user, content_type, body, n, why) : SALUS_EMETHOD;
	}
	if (!strcmp(rest, "/reset-mfa")) {
		struct salus_mfa_enrolment mfa;
		act->action = "user.reset-mfa";
		if (!post)
			return SALUS_EMETHOD;
		if ((rc = salus_user_reset_mfa(u, act->user, &mfa)))
			return rc;
		*status = 200;
		return put_enrolment(out, issuer, act->user, &mfa);
	}
	if (!strcmp(rest, "/sessions")) {
		act->action = del ? "session.revoke-all" : "session.list";
		if (del) {
			rc = salus_session_revoke(u, NULL, act->user);
			return rc == SALUS_ENOTFOUND ? 0 : rc; /* no session left to end is not an error */
		}
		if (!get)
			return SALUS_EMETHOD;
		struct list_ctx c = {.arr = json_array()};
		if (!c.arr)
			return SALUS_ENOMEM;
		rc = salus_session_list(u, act->user, list_session, &c);
		if (rc || c.rc) {
			json_decref(c.arr);
			return rc ? rc : c.rc;
		}
		*status = 200;
		return put_json(out, json_pack("{s:o}", "sessions", c.arr));
	}
	if (!strncmp(rest, "/sessions/", 10) && rest[10]) {
		act->action = "session.revoke";
		if (!del)
			return SALUS_EMETHOD;
		if (strlen(rest + 10) >= SALUS_SESSION_ID_LEN || strchr(rest + 10, '/'))
			return SALUS_ENOTFOUND;
		return salus_session_revoke(u, rest + 10, act->user);
	}
	return SALUS_ENOTFOUND;
}
