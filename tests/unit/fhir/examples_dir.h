/*
 * examples_dir.h — the official R4 examples (npm hl7.fhir.r4.examples@4.0.1, installed by npm ci) for
 * the FHIR unit tests that walk them.  Include after <cmocka.h>.
 */
#ifndef SALUS_TEST_EXAMPLES_DIR_H
#define SALUS_TEST_EXAMPLES_DIR_H
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

/* Open the examples directory (its path into dir[0..n)); fails the test when it is missing. */
static DIR *examples_open(char *dir, size_t n)
{
	const char *src = getenv("SALUS_SOURCE_DIR");
	snprintf(dir, n, "%s/node_modules/hl7.fhir.r4.examples", src ? src : ".");
	DIR *d = opendir(dir);
	if (!d)
		fail_msg("no examples at %s (npm ci)", dir);
	return d;
}

#endif
