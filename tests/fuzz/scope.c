/*
 * scope.c — libFuzzer target fuzz_scope: SMART scope parsing, formatting,
 * granting and the access decision.  Invariants checked: a parsed set
 * formats to a string that parses again to the same format (canonical), and
 * granting a set to itself gives exactly that canonical form.
 * Seeds: tests/fuzz/corpus/scope/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "core/alloc.h"
#include "core/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {"Patient", "Observation", "*", "", "patient"};
	struct salus_scopes s, s2;
	if (salus_scopes_parse((const char *)data, size, &s))
		return 0;
	for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
		for (int i = 0; i <= SALUS_IA_SEARCH; i++)
			(void)salus_scope_allows(&s, types[t], (enum salus_interaction)i);
	char *f = NULL, *f2 = NULL, *g = NULL;
	if (salus_scopes_format(&s, &f))
		abort();
	if (salus_scopes_parse(f, strlen(f), &s2))
		abort();
	if (salus_scopes_format(&s2, &f2) || strcmp(f, f2))
		abort();
	if (salus_scopes_grant(&s, &s2, &g) || strcmp(g, f))
		abort();
	salus_free(f);
	salus_free(f2);
	salus_free(g);
	salus_scopes_release(&s2);
	salus_scopes_release(&s);
	return 0;
}
