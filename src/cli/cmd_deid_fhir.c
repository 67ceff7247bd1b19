/*
 * cmd_deid_fhir.c — `salus deid fhir [FILE]`: de-identify a FHIR resource, a
 * Bundle or NDJSON (stdin by default) per Safe Harbor, output in the same
 * shape.  NDJSON is streamed line by line (memory bounded by the longest
 * line); a bad line is reported on stderr by number, skipped, and makes the
 * exit status 1.  Messages never contain input text.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"
#include "deid/deid.h"
#include "deid/fhir_deid.h"

#define CMD "deid fhir"

static void usage(FILE *f)
{
	fprintf(f, "usage: salus deid fhir [--transform MODE] [--key FILE] [--keep-weekday] [--shift-dates] [FILE]\n"
		   "De-identifies a FHIR R4 resource, Bundle or NDJSON file (stdin by default) and writes it in\n"
		   "the same shape to stdout.\n"
		   "  --transform MODE  safe-harbor (default), surrogate, mask, redact, shift-dates, generalise,\n"
		   "                    pseudonym (see docs/deid-transforms.md)\n"
		   "  --key FILE        32-byte key (raw, or 64 hex digits): same key, same pseudonyms and\n"
		   "                    surrogates; without it a random key is used for this run only\n"
		   "  --keep-weekday    shift dates by whole weeks\n"
		   "  --shift-dates     safe-harbor: shift dates instead of keeping only the year\n");
}

/* One line (without '\n') into b; 0 at EOF with nothing read (*eof set). */
static int read_line(FILE *in, struct salus_buf *b, bool *eof)
{
	int ch;
	salus_buf_reset(b);
	*eof = false;
	while ((ch = getc_unlocked(in)) != EOF) {
		if (ch == '\n')
			return 0;
		int rc = salus_buf_addc(b, (char)ch);
		if (rc)
			return rc;
	}
	if (ferror(in))
		return SALUS_EIO;
	*eof = b->n == 0;
	return 0;
}

static bool blank(const struct salus_buf *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->p[i] != ' ' && b->p[i] != '\t' && b->p[i] != '\r')
			return false;
	return true;
}

static bool one_json_value(const struct salus_buf *b)
{
	json_error_t err;
	json_t *j = json_loadb(b->p, b->n, 0, &err);
	json_decref(j);
	return j != NULL;
}

static int run(const struct salus_deid_fhir_opts *o, FILE *in)
{
	struct salus_buf line, out;
	salus_buf_init(&line, SALUS_MAX_LINE);
	salus_buf_init(&out, SALUS_MAX_LINE * 2);
	int status = 0, rc = 0;
	bool eof = false;
	size_t lineno = 0;
	do { /* first non-blank line decides the shape */
		rc = read_line(in, &line, &eof);
		lineno++;
	} while (!rc && !eof && blank(&line));
	if (rc || eof) {
		status = salus_cli_fail(CMD, 1, rc ? "cannot read the input (%s)" : "empty input", salus_err_msg(rc));
		goto done;
	}
	if (one_json_value(&line)) { /* NDJSON */
		for (; !eof; rc = read_line(in, &line, &eof), lineno++) {
			if (rc) {
				status = salus_cli_fail(CMD, 1, "line %zu: %s", lineno, salus_err_msg(rc));
				if (rc == SALUS_EIO)
					break;
				continue;
			}
			if (blank(&line))
				continue;
			salus_buf_reset(&out);
			rc = salus_deid_fhir_json(o, line.p, line.n, true, &out);
			if (!rc)
				rc = salus_buf_addc(&out, '\n');
			if (rc) {
				status = salus_cli_fail(CMD, 1, "line %zu: %s", lineno,
							rc == SALUS_EINVALID ? "not a FHIR JSON resource" : salus_err_msg(rc));
				if (rc == SALUS_EUSAGE || rc == SALUS_ENOMEM)
					break;
				continue;
			}
			if (fwrite(out.p, 1, out.n, stdout) != out.n) {
				status = salus_cli_fail(CMD, 1, "cannot write the output");
				break;
			}
		}
		goto done;
	}
	/* one (pretty-printed) document: collect it whole */
	struct salus_buf doc;
	salus_buf_init(&doc, SALUS_MAX_BODY);
	rc = salus_buf_add(&doc, line.p, line.n);
	while (!rc) {
		if (!rc)
			rc = salus_buf_addc(&doc, '\n');
		if (!rc)
			rc = read_line(in, &line, &eof);
		if (rc || eof)
			break;
		rc = salus_buf_add(&doc, line.p, line.n);
	}
	if (!rc)
		rc = salus_deid_fhir_json(o, doc.p, doc.n, false, &out);
	salus_buf_release(&doc);
	if (rc)
		status = salus_cli_fail(CMD, 1, "%s",
					rc == SALUS_EINVALID ? "input is not a FHIR JSON resource, Bundle or NDJSON"
							      : salus_err_msg(rc));
	else if (fwrite(out.p, 1, out.n, stdout) != out.n)
		status = salus_cli_fail(CMD, 1, "cannot write the output");
done:
	salus_buf_release(&line);
	salus_buf_release(&out);
	if (fflush(stdout) != 0 && !status)
		status = salus_cli_fail(CMD, 1, "cannot write the output");
	return status;
}

int salus_cli_deid_fhir(int argc, char **argv)
{
	struct salus_deid_fhir_opts o = {.x = {.mode = SALUS_DEID_SAFE_HARBOR}};
	const char *key_path = NULL, *file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!a)
			continue;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--transform") && i + 1 < argc) {
			if (salus_deid_mode_parse(argv[++i], &o.x.mode))
				return salus_cli_fail(CMD, 2, "unknown transform (see --help)");
		} else if (!strncmp(a, "--transform=", 12)) {
			if (salus_deid_mode_parse(a + 12, &o.x.mode))
				return salus_cli_fail(CMD, 2, "unknown transform (see --help)");
		} else if (!strcmp(a, "--key") && i + 1 < argc) {
			key_path = argv[++i];
		} else if (!strcmp(a, "--keep-weekday")) {
			o.x.keep_weekday = true;
		} else if (!strcmp(a, "--shift-dates")) {
			o.x.shift_dates = true;
		} else if (a[0] == '-' && a[1]) {
			return salus_cli_fail(CMD, 2, "unknown option (see --help)");
		} else if (!file) {
			file = a;
		} else {
			return salus_cli_fail(CMD, 2, "more than one input file (see --help)");
		}
	}
	unsigned char *key = NULL;
	int rc;
	if (key_path) {
		rc = salus_deid_key_load(key_path, &key);
		if (rc)
			return salus_cli_fail(CMD, 1, "cannot use the key file: %s",
					      rc == SALUS_EINVALID ? "need 32 raw bytes or 64 hex digits" : salus_err_msg(rc));
	} else {
		rc = salus_deid_key_random(&key);
		if (rc)
			return salus_cli_fail(CMD, 1, "cannot make a key: %s", salus_err_msg(rc));
		fprintf(stderr, "salus %s: no --key: using an ephemeral random key; pseudonyms, surrogates and date "
				"offsets will differ from any other run\n",
			CMD);
	}
	o.x.key = key;
	o.x.key_len = SALUS_DEID_KEY_LEN;
	struct salus_deid *det = NULL;
	rc = salus_deid_new(&det);
	if (rc) {
		salus_deid_key_free(key);
		return salus_cli_fail(CMD, 1, "cannot start the detector: %s", salus_err_msg(rc));
	}
	o.scan = salus_deid_fhir_scan_detector;
	o.scan_ctx = det;
	FILE *in = stdin;
	if (file && strcmp(file, "-")) {
		in = fopen(file, "rb");
		if (!in) {
			salus_deid_free(det);
			salus_deid_key_free(key);
			return salus_cli_fail(CMD, 1, "cannot open the input file");
		}
	}
	int status = run(&o, in);
	if (in != stdin)
		fclose(in);
	salus_deid_free(det);
	salus_deid_key_free(key);
	return status;
}
