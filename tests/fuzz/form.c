/*
 * form.c — libFuzzer target fuzz_form: the token request's
 * application/x-www-form-urlencoded body and the client_secret_basic
 * Authorization header.  Input: the header value up to the first '\n', the
 * body after it (no '\n': the whole input is both).  Seeds: tests/fuzz/corpus/form/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth_int.h"
#include "core/alloc.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *nl = memchr(s, '\n', size);
	size_t hn = nl ? (size_t)(nl - s) : size;
	const char *body = nl ? nl + 1 : s;
	size_t bn = nl ? size - hn - 1 : size;

	struct salus_form f;
	if (salus_form_parse(body, bn, &f) == 0) {
		for (size_t i = 0; i < f.n; i++) {
			if (strlen(f.v[i].value) != f.v[i].value_n || salus_form_get(&f, f.v[i].name) != &f.v[i])
				abort(); /* no NUL inside, no duplicates */
		}
		salus_form_release(&f);
	}
	char *h = salus_strndup(s, hn);
	if (!h)
		return 0;
	char id[SALUS_CLIENT_ID_MAX + 1], *secret = NULL;
	size_t sn = 0;
	if (salus_basic_parse(h, id, &secret, &sn) == 0) {
		if (!id[0] || strlen(id) > SALUS_CLIENT_ID_MAX || !sn || sn > SALUS_MAX_SECRET || strlen(secret) != sn)
			abort();
		salus_secret_free(secret, sn);
	}
	salus_free(h);
	return 0;
}
