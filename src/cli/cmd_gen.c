/*
 * cmd_gen.c — `salus gen`: write synthetic demo patients (src/fhir/gen.h) as a
 * FHIR R4 transaction Bundle or as NDJSON (one resource per line).
 *
 * The Bundle is streamed entry by entry, so memory stays flat for any number
 * of patients.  Output is deterministic for a seed.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/cmd.h"
#include "core/buf.h"
#include "core/err.h"
#include "fhir/gen.h"

static const char usage_text[] =
	"usage: salus gen --patients N [--seed S] [--years Y] [--out FILE] [--ndjson]\n"
	"Writes N synthetic demo patients (no real person's data) with their encounters,\n"
	"conditions, observations, medication requests and clinical notes.\n"
	"  --patients N  number of patients (1.." "1000000)\n"
	"  --seed S      random seed, 0..999999999999999 (default 1); same seed, same output\n"
	"  --years Y     years of history, 1..90 (default 3, ~48 resources a patient); 60 gives\n"
	"                Synthea-like volume (~700 resources a patient: visits with vitals and labs)\n"
	"  --out FILE    write to FILE instead of standard output\n"
	"  --ndjson      one resource per line instead of a transaction Bundle\n";

struct out {
	FILE *f;
	bool ndjson;
	size_t n; /* resources written */
};

static int write_one(void *ctx, json_t *resource)
{
	struct out *o = ctx;
	json_t *item = resource;
	if (!o->ndjson && !(item = salus_gen_bundle_entry(resource)))
		return SALUS_ENOMEM;
	if (!o->ndjson && o->n && fputc(',', o->f) == EOF)
		goto out_io;
	if (json_dumpf(item, o->f, JSON_COMPACT) || fputc('\n', o->f) == EOF)
		goto out_io;
	if (item != resource)
		json_decref(item);
	o->n++;
	return 0;
out_io:
	if (item != resource)
		json_decref(item);
	return SALUS_EIO;
}

static int parse_num(const char *s, long min, long max, long *v)
{
	return s ? salus_parse_long((struct salus_slice){s, strlen(s)}, min, max, v) : SALUS_EINVALID;
}

int salus_cmd_gen(int argc, char **argv)
{
	long patients = -1, seed = 1, years = 3;
	const char *path = NULL;
	struct out o = {stdout, false, 0};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (!strcmp(a, "--patients")) {
			if (parse_num(v, 1, SALUS_GEN_MAX_PATIENTS, &patients))
				return salus_cli_fail("gen", 2, "--patients needs a number from 1 to %d",
						      SALUS_GEN_MAX_PATIENTS);
			i++;
		} else if (!strcmp(a, "--seed")) {
			if (parse_num(v, 0, 999999999999999L, &seed))
				return salus_cli_fail("gen", 2, "--seed needs a number from 0 to 999999999999999");
			i++;
		} else if (!strcmp(a, "--years")) {
			if (parse_num(v, 1, SALUS_GEN_MAX_YEARS, &years))
				return salus_cli_fail("gen", 2, "--years needs a number from 1 to %d", SALUS_GEN_MAX_YEARS);
			i++;
		} else if (!strcmp(a, "--out")) {
			if (!v)
				return salus_cli_fail("gen", 2, "--out needs a file name");
			path = v;
			i++;
		} else if (!strcmp(a, "--ndjson")) {
			o.ndjson = true;
		} else {
			return salus_cli_fail("gen", 2, "unexpected argument '%s' (see --help)", a);
		}
	}
	if (patients < 0)
		return salus_cli_fail("gen", 2, "--patients N is required (see --help)");
	if (path && !(o.f = fopen(path, "w")))
		return salus_cli_fail("gen", 1, "cannot open %s: %s", path, strerror(errno));

	struct salus_gen *g = NULL;
	struct salus_gen_opts opts = {.seed = (uint64_t)seed, .years = (int)years};
	int rc = salus_gen_new(&opts, &g);
	if (!rc && !o.ndjson &&
	    fputs("{\"resourceType\":\"Bundle\",\"type\":\"transaction\",\"entry\":[\n", o.f) == EOF)
		rc = SALUS_EIO;
	if (!rc)
		rc = salus_gen_run(g, (size_t)patients, write_one, &o);
	if (!rc && !o.ndjson && fputs("]}\n", o.f) == EOF)
		rc = SALUS_EIO;
	if (fflush(o.f) || ferror(o.f))
		rc = rc ? rc : SALUS_EIO;
	if (path && fclose(o.f))
		rc = rc ? rc : SALUS_EIO;
	salus_gen_free(g);
	if (rc)
		return salus_cli_fail("gen", 1, "%s", salus_err_msg(rc));
	if (path)
		fprintf(stderr, "salus gen: %ld patients, %zu resources written to %s\n", patients, o.n, path);
	return 0;
}
