/* admin.c — libFuzzer target: the administration REST surface (src/http/admin.c) over a real
 * user registry in a temporary store.  Input: "METHOD PATH\nCONTENT-TYPE\nBODY" (missing parts are
 * empty).  Checks: no crash or leak; every answer is a documented status or error code; a created
 * user is removed again so the registry stays small. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/user.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "http/admin.h"
#include "store/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct salus_store *st;
static struct salus_users *users;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static char dir[] = "/tmp/salus-fuzz-admin-XXXXXX";
	char db[64], pepper[64];
	struct salus_store_opts so = {.create = true};
	salus_alloc_install();
	if (!mkdtemp(dir))
		abort();
	snprintf(db, sizeof db, "%s/salus.db", dir);
	snprintf(pepper, sizeof pepper, "%s/pepper", dir);
	if (salus_store_open(db, &so, &st) || salus_pepper_create(pepper) || salus_users_new(st, pepper, NULL, &users))
		abort();
	return 0;
}

/* The next '\n'-terminated line of [*p, end) into out (NUL-terminated, at most cap-1 bytes kept). */
static void line(const char **p, const char *end, char *out, size_t cap)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n = (size_t)((nl ? nl : end) - *p);
	size_t k = n < cap - 1 ? n : cap - 1;
	memcpy(out, *p, k);
	out[k] = 0;
	*p += n + (nl ? 1 : 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char req[300], ct[100], *sp;
	const char *p = (const char *)data, *end = p + size;
	if (size > 8192)
		return 0;
	line(&p, end, req, sizeof req);
	line(&p, end, ct, sizeof ct);
	if (memchr(req, 0, strlen(req)) || !(sp = strchr(req, ' ')))
		return 0;
	*sp = 0;
	struct salus_buf out;
	struct salus_admin_act act;
	const char *why = NULL;
	int status = 0;
	salus_buf_init(&out, 1 << 20);
	int rc = salus_admin_handle(users, "https://fuzz.test", req, sp + 1, ct[0] ? ct : NULL, p, (size_t)(end - p), &out,
				    &status, &act, &why);
	if (rc == 0 && status != 200 && status != 201 && status != 204)
		__builtin_trap();
	if (rc && salus_err_http(rc) < 400)
		__builtin_trap();
	if (!act.action)
		__builtin_trap();
	if (rc == 0 && status == 201 && act.user[0]) {
		salus_user_disable(users, act.user); /* keep the registry from growing without bound */
		salus_session_revoke(users, NULL, act.user);
	}
	salus_buf_release(&out);
	return 0;
}
