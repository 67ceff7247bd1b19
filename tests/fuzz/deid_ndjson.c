/* deid_ndjson.c — libFuzzer target for `salus deid scan --ndjson`: the bounded
 * line reader, the JSON decoding of each line, per-line error records, span and
 * text output.  It compiles the CLI source itself so the real reader is fuzzed. */
#include <stdarg.h>
#include <stdio.h>

#include "../../src/cli/cmd_deid.c"

int salus_cli_fail(const char *cmd, int status, const char *fmt, ...)
{
	(void)cmd;
	(void)fmt;
	return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct salus_deid *d;
	static FILE *out;
	if (!d) {
		salus_alloc_install();
		if (salus_deid_new(&d) || !(out = fopen("/dev/null", "w")))
			abort();
	}
	FILE *in = fmemopen((void *)(uintptr_t)data, size, "rb");
	if (!in)
		return 0;
	struct scan_opts so = {.threshold = 0.5f, .ndjson = true};
	so.spans = size > 0 && (data[0] & 1);
	so.explain = size > 0 && (data[0] & 2);
	so.x.mode = SALUS_DEID_MASK;
	so.x.scope = "";
	(void)scan_ndjson(d, &so, in, out);
	fclose(in);
	return 0;
}
