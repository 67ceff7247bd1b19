/* client_assertion.c — libFuzzer target: SMART Backend Services (src/auth/backend.c).
 * The first byte picks what the rest of the input is:
 *   even: a client assertion (JWT) POSTed to the token endpoint as
 *         client_credentials + private_key_jwt for the registered client "fz";
 *   odd:  a JWK Set offered to salus_auth_backend_add (a registration that
 *         succeeds is removed again).
 * Checks: no crash or leak; the token endpoint answers 400 (a fuzzer cannot
 * forge an ES384 signature) or 401, never 200, and never fails internally. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "store/store.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A public P-384 key (its private half is not kept anywhere). */
static const char jwks[] = "{\"keys\":[{\"kty\":\"EC\",\"x\":\"2P6CsEZDkGxZ3-Yv_LpZ1_iyTDRda-JVstnK84vxB1z_5Z1DX3XpLZqp6npkKbLW\",\"y\":\"0E6AZscnbgXPN21BoLRGwRGvONdZxFLDT_AjA_N8B6HdaN9t-AvdBRo1ATR3xbur\",\"crv\":\"P-384\",\"kid\":\"fz1\",\"alg\":\"ES384\",\"use\":\"sig\"}]}";

static struct salus_store *st;
static struct salus_auth *au;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	static char dir[] = "/tmp/salus-fuzz-assert-XXXXXX";
	char db[64], key[64];
	struct salus_store_opts so = {.create = true};
	salus_alloc_install();
	if (!mkdtemp(dir))
		abort();
	snprintf(db, sizeof db, "%s/salus.db", dir);
	snprintf(key, sizeof key, "%s/token.key", dir);
	if (salus_store_open(db, &so, &st) || salus_signkey_create(key) ||
	    salus_auth_new(st, key, "https://fuzz.test", NULL, 900, &au) ||
	    salus_auth_backend_add(st, "fz", "system/Patient.rs", jwks, sizeof jwks - 1, NULL))
		abort();
	return 0;
}

static int add_enc(struct salus_buf *b, const uint8_t *p, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++)
		rc = salus_buf_addf(b, "%%%c%c", hex[p[i] >> 4], hex[p[i] & 15]);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 16384)
		return 0;
	if (data[0] & 1) {
		const char *why = NULL;
		if (!salus_auth_backend_add(st, "fz2", "system/Patient.rs", (const char *)data + 1, size - 1, &why))
			salus_auth_client_remove(st, "fz2");
		return 0;
	}
	struct salus_buf body;
	struct salus_token_response tr = {0};
	salus_buf_init(&body, 1 << 20);
	if (salus_buf_adds(&body, "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
				  "client-assertion-type%3Ajwt-bearer&client_assertion=") ||
	    add_enc(&body, data + 1, size - 1)) {
		salus_buf_release(&body);
		return 0;
	}
	int rc = salus_auth_token(au, NULL, "application/x-www-form-urlencoded", body.p, body.n, &tr);
	if (rc == 0 && tr.status != 400 && tr.status != 401)
		__builtin_trap();
	if (rc && rc != SALUS_ENOMEM)
		__builtin_trap();
	salus_token_response_release(&tr);
	salus_buf_release(&body);
	return 0;
}
