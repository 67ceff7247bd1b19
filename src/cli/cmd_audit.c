/*
 * cmd_audit.c — `salus audit verify | export | tail | checkpoint | check-proof`:
 * verify the audit trail of a data directory (or an exported log offline with
 * only the public key), export it for a SIEM (NDJSON, RFC 5424 syslog, CEF),
 * follow it live, sign a checkpoint now, and check a JSON Merkle proof.
 * docs/audit.md describes the formats.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "fhir/search.h" /* salus_fhir_date_range */
#include "store/store.h"

#define AUDIT_KEY "keys/audit.key"
#define MAX_FILE (4u << 20) /* a checkpoint, key or proof file */

static const char usage[] =
	"usage: salus audit COMMAND [OPTIONS]\n"
	"  verify --data DIR [--pubkey FILE]    recompute the Merkle tree from the stored events, check every\n"
	"                                       checkpoint; exit 1 naming the first bad index\n"
	"  verify --log FILE.ndjson --checkpoint FILE --pubkey FILE\n"
	"                                       the same for an exported log, offline\n"
	"  export --data DIR [--format ndjson|syslog|cef] [--from N]\n"
	"                                       write the events to stdout (ndjson: exactly as stored)\n"
	"  tail --data DIR [--format F] [--from N]   follow new events (Ctrl-C to stop)\n"
	"  checkpoint --data DIR                sign a checkpoint of the current tree now; print the note\n"
	"  pubkey --data DIR                    print the checkpoint verifier key\n"
	"  prune --data DIR [--before DATE]     retention: drop the text of events older than DATE (default: now\n"
	"                                       minus [audit] retention_days); hashes and checkpoints stay, so\n"
	"                                       the log still verifies; refuses dates inside the retention period\n"
	"  check-proof FILE                     verify a JSON inclusion or consistency proof (the\n"
	"                                       transparency-dev vector format; '-' reads stdin):\n"
	"                                       exit 0 valid, 1 invalid, 2 unreadable\n";

struct opts {
	const char *data, *pubkey, *log, *checkpoint, *format, *before;
	int64_t from;
	bool from_set;
};

static int parse(const char *cmd, int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof *o);
	o->format = "ndjson";
	for (int i = 1; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return salus_cli_fail(cmd, 2, "unexpected or incomplete argument '%s' (see --help)", a);
		if (!strcmp(a, "--data"))
			o->data = v;
		else if (!strcmp(a, "--pubkey"))
			o->pubkey = v;
		else if (!strcmp(a, "--log"))
			o->log = v;
		else if (!strcmp(a, "--checkpoint"))
			o->checkpoint = v;
		else if (!strcmp(a, "--format"))
			o->format = v;
		else if (!strcmp(a, "--before"))
			o->before = v;
		else if (!strcmp(a, "--from")) {
			long n;
			if (salus_parse_long((struct salus_slice){v, strlen(v)}, 0, INT64_MAX, &n))
				return salus_cli_fail(cmd, 2, "--from needs an index");
			o->from = n;
			o->from_set = true;
		} else
			return salus_cli_fail(cmd, 2, "unexpected argument '%s' (see --help)", a);
	}
	if (strcmp(o->format, "ndjson") && strcmp(o->format, "syslog") && strcmp(o->format, "cef"))
		return salus_cli_fail(cmd, 2, "--format is ndjson, syslog or cef");
	return 0;
}

/* Read a whole small file ('-': stdin) into a NUL-terminated heap string. */
static int read_all(const char *path, char **out, size_t *n)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
	struct salus_buf b;
	char chunk[8192];
	size_t k;
	int rc = 0;
	if (!f)
		return SALUS_ENOTFOUND;
	salus_buf_init(&b, MAX_FILE);
	while (!rc && (k = fread(chunk, 1, sizeof chunk, f)) > 0)
		rc = salus_buf_add(&b, chunk, k);
	if (!rc && ferror(f))
		rc = SALUS_EIO;
	if (f != stdin)
		fclose(f);
	if (rc) {
		salus_buf_release(&b);
		return rc;
	}
	*out = salus_buf_detach(&b, n);
	return *out ? SALUS_OK : SALUS_ENOMEM;
}

static int open_store(const char *cmd, const char *dir, struct salus_config *cfg, struct salus_store **st)
{
	struct salus_store_opts so = {.create = false, .readers = 2};
	const char *why = NULL;
	int rc;

	if (!dir)
		return salus_cli_fail(cmd, 2, "--data DIR is required (see --help)");
	if (salus_config_load(cfg, dir, &why))
		return salus_cli_fail(cmd, 2, "%s", why ? why : "cannot read the data directory");
	/* keyring + encrypted store (cli/store_open.h) */
	if ((rc = salus_cli_open_store(cfg, &so, st, &why)))
		return salus_cli_fail(cmd, 2, "cannot open the store: %s", why);
	return 0;
}

/* The verifier key: --pubkey FILE, else DIR/keys/audit.key.pub, else derived from the private key. */
static int load_vkey(const char *cmd, const struct salus_config *cfg, const char *file, char **vkey)
{
	char p[SALUS_PATH_MAX];
	size_t n;
	if (file)
		return read_all(file, vkey, &n) ? salus_cli_fail(cmd, 2, "cannot read %s", file) : 0;
	if (salus_config_path(cfg, AUDIT_KEY ".pub", p))
		return salus_cli_fail(cmd, 2, "key path too long");
	if (!read_all(p, vkey, &n))
		return 0;
	return salus_cli_fail(cmd, 2, "no verifier key: give --pubkey FILE (%s is missing)", p);
}

static int open_audit(const char *cmd, struct salus_config *cfg, struct salus_store *st, struct salus_audit **au)
{
	char p[SALUS_PATH_MAX];
	struct salus_audit_opts ao = {0};
	int rc;
	if (salus_config_path(cfg, AUDIT_KEY, p))
		return salus_cli_fail(cmd, 2, "key path too long");
	ao.key_path = p;
	if ((rc = salus_audit_new(st, &ao, au)))
		return salus_cli_fail(cmd, 1, "cannot load the audit key %s: %s", p, salus_err_msg(rc));
	return 0;
}

static void print_report(const struct salus_audit_report *rep, int rc)
{
	if (rc == SALUS_OK && rep->pruned)
		printf("salus audit verify: OK: %" PRId64 " events (%" PRId64 " pruned, checked by their leaf hash under "
		       "a signed checkpoint), %" PRId64 " checkpoints verified\n",
		       rep->events, rep->pruned, rep->checkpoints);
	else if (rc == SALUS_OK)
		printf("salus audit verify: OK: %" PRId64 " events, %" PRId64 " checkpoints verified\n", rep->events,
		       rep->checkpoints);
	else if (rc == SALUS_EINVALID && rep->bad_index >= 0)
		printf("salus audit verify: FAILED at index %" PRId64 ": %s\n", rep->bad_index, rep->why);
	else if (rc == SALUS_EINVALID)
		printf("salus audit verify: FAILED: %s\n", rep->why);
	else
		printf("salus audit verify: could not verify: %s\n", salus_err_msg(rc));
}

static int cmd_verify(int argc, char **argv)
{
	struct salus_audit_report rep;
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct opts o;
	char *vkey = NULL;
	int rc, status;

	if ((status = parse("audit verify", argc, argv, &o)))
		return status;
	if (o.log || o.checkpoint) {
		char *note = NULL;
		size_t nn;
		if (!o.log || !o.checkpoint || !o.pubkey)
			return salus_cli_fail("audit verify", 2, "offline verification needs --log, --checkpoint and --pubkey");
		if (read_all(o.pubkey, &vkey, &nn))
			return salus_cli_fail("audit verify", 2, "cannot read %s", o.pubkey);
		if (read_all(o.checkpoint, &note, &nn)) {
			salus_free(vkey);
			return salus_cli_fail("audit verify", 2, "cannot read %s", o.checkpoint);
		}
		rc = salus_audit_verify_export(o.log, note, nn, vkey, &rep);
		print_report(&rep, rc);
		salus_free(note);
		salus_free(vkey);
		return rc == SALUS_OK ? 0 : rc == SALUS_EINVALID ? 1 : 2;
	}
	if ((status = open_store("audit verify", o.data, &cfg, &st)))
		return status;
	if ((status = load_vkey("audit verify", &cfg, o.pubkey, &vkey)))
		goto out_store;
	rc = salus_audit_verify_store(st, vkey, &rep);
	print_report(&rep, rc);
	status = rc == SALUS_OK ? 0 : rc == SALUS_EINVALID ? 1 : 2;
	salus_free(vkey);
out_store:
	salus_store_free(st);
	return status;
}

/* ---- export formats ---- */

static const char *jstr(json_t *o, const char *path0, const char *path1)
{
	json_t *v = json_object_get(o, path0);
	if (path1)
		v = json_object_get(v, path1);
	return json_is_string(v) ? json_string_value(v) : "";
}

/* CEF header fields escape | and \ ; extension values escape = and \ (and newlines). */
static void cef_put(FILE *f, const char *s, bool header)
{
	for (; *s; s++) {
		if (*s == '\\' || (header && *s == '|') || (!header && *s == '='))
			fputc('\\', f);
		if (*s == '\n' || *s == '\r')
			fputs(header ? " " : "\\n", f);
		else
			fputc(*s, f);
	}
}

/* RFC 5424 SD-PARAM values escape " \ and ]. */
static void sd_put(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\' || *s == ']')
			fputc('\\', f);
		fputc(*s, f);
	}
}

struct exp {
	const char *format;
	char host[256];
	int64_t next;
	int err;
};

static int export_cb(void *ctx, const struct salus_audit_row *r)
{
	struct exp *x = ctx;
	json_t *ev, *agents, *ents, *a, *e;
	const char *who = "", *addr = "", *sub = "", *outcome;
	char when[SALUS_INSTANT_LEN];
	size_t i;

	x->next = r->index + 1;
	if (!r->event) {
		if (!strcmp(x->format, "ndjson")) { /* a line an offline verifier takes the leaf hash from */
			char line[160];
			if (!salus_audit_pruned_line(r->index, r->leaf_hash, r->leaf_hash_n, line, sizeof line)) {
				fprintf(stderr, "salus audit export: event %" PRId64 " was pruned and its leaf hash is damaged\n",
					r->index);
				return SALUS_EINVALID;
			}
			puts(line);
			return ferror(stdout) ? SALUS_EIO : 0;
		}
		fprintf(stderr, "salus audit export: event %" PRId64 " was pruned (only its hash is kept)\n", r->index);
		return 0;
	}
	if (!strcmp(x->format, "ndjson")) {
		fwrite(r->event, 1, r->event_n, stdout);
		fputc('\n', stdout);
		return ferror(stdout) ? SALUS_EIO : 0;
	}
	if (!(ev = json_loadb(r->event, r->event_n, 0, NULL))) {
		fprintf(stderr, "salus audit export: event %" PRId64 " is not JSON\n", r->index);
		return 0;
	}
	agents = json_object_get(ev, "agent");
	json_array_foreach(agents, i, a) {
		if (json_is_true(json_object_get(a, "requestor"))) {
			who = jstr(json_object_get(json_object_get(a, "who"), "identifier"), "value", NULL);
			break;
		}
	}
	json_array_foreach(agents, i, a) {
		if (*jstr(a, "network", "address")) {
			addr = jstr(a, "network", "address");
			break;
		}
	}
	sub = jstr(json_array_get(json_object_get(ev, "subtype"), 0), "code", NULL);
	if (!*sub)
		sub = jstr(json_object_get(ev, "type"), "code", NULL);
	outcome = jstr(ev, "outcome", NULL);
	salus_instant_format(r->ts_ms, when);
	ents = json_object_get(ev, "entity");
	if (!strcmp(x->format, "syslog")) {
		/* facility 13 (log audit); severity 6 (info) for success, 4 (warning) for failures */
		printf("<%d>1 %s %s salus - audit [salus@32473 idx=\"%" PRId64 "\" action=\"", 13 * 8 + (strcmp(outcome, "0") ? 4 : 6),
		       when, x->host, r->index);
		sd_put(stdout, jstr(ev, "action", NULL));
		fputs("\" subtype=\"", stdout);
		sd_put(stdout, sub);
		fputs("\" outcome=\"", stdout);
		sd_put(stdout, outcome);
		fputs("\" who=\"", stdout);
		sd_put(stdout, who);
		fputs("\" src=\"", stdout);
		sd_put(stdout, addr);
		fputs("\"]", stdout);
		json_array_foreach(ents, i, e) {
			const char *ref = jstr(e, "what", "reference");
			if (*ref) {
				fputs(i ? "," : " ", stdout);
				fputs(ref, stdout);
			}
		}
		fputc('\n', stdout);
	} else {
		/* CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|Extension */
		printf("CEF:0|Salus|Salus|%s|", SALUS_VERSION);
		cef_put(stdout, sub, true);
		fputc('|', stdout);
		/* events carry codes only (docs/audit.md); older ones may have a display */
		cef_put(stdout, *jstr(ev, "type", "display") ? jstr(ev, "type", "display") : jstr(ev, "type", "code"), true);
		fputc(' ', stdout);
		cef_put(stdout, sub, true);
		printf("|%d|rt=%" PRId64 " externalId=%" PRId64 " act=", strcmp(outcome, "0") ? 6 : 3, r->ts_ms, r->index);
		cef_put(stdout, jstr(ev, "action", NULL), false);
		fputs(" outcome=", stdout);
		cef_put(stdout, outcome, false);
		fputs(" suser=", stdout);
		cef_put(stdout, who, false);
		fputs(" src=", stdout);
		cef_put(stdout, addr, false);
		json_array_foreach(ents, i, e) {
			const char *ref = jstr(e, "what", "reference");
			if (*ref && !strncmp(ref, "Patient/", 8)) {
				fputs(" duid=", stdout);
				cef_put(stdout, ref + 8, false);
				break;
			}
		}
		json_array_foreach(ents, i, e) {
			const char *ref = jstr(e, "what", "reference");
			if (*ref) {
				fputs(" cs1Label=entity cs1=", stdout);
				cef_put(stdout, ref, false);
				break;
			}
		}
		fputc('\n', stdout);
	}
	json_decref(ev);
	return ferror(stdout) ? SALUS_EIO : 0;
}

static int cmd_export(int argc, char **argv, bool follow)
{
	const char *cmd = follow ? "audit tail" : "audit export";
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct exp x = {0};
	struct opts o;
	int rc, status;

	if ((status = parse(cmd, argc, argv, &o)))
		return status;
	if ((status = open_store(cmd, o.data, &cfg, &st)))
		return status;
	x.format = o.format;
	if (gethostname(x.host, sizeof x.host - 1) || !x.host[0])
		snprintf(x.host, sizeof x.host, "-");
	x.next = o.from;
	if (follow && !o.from_set && (rc = salus_store_audit_size(st, &x.next))) {
		status = salus_cli_fail(cmd, 1, "cannot read the log: %s", salus_err_msg(rc));
		goto out_store;
	}
	for (;;) {
		if ((rc = salus_store_audit_scan(st, x.next, 0, export_cb, &x))) {
			status = salus_cli_fail(cmd, 1, "cannot read the log: %s", salus_err_msg(rc));
			goto out_store;
		}
		fflush(stdout);
		if (!follow)
			break;
		struct timespec ts = {0, 500 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
out_store:
	salus_store_free(st);
	return status;
}

static int cmd_checkpoint(int argc, char **argv, bool pubkey_only)
{
	const char *cmd = pubkey_only ? "audit pubkey" : "audit checkpoint";
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_audit *au = NULL;
	struct salus_audit_cp cp = {0};
	struct opts o;
	int rc, status;

	if ((status = parse(cmd, argc, argv, &o)))
		return status;
	if ((status = open_store(cmd, o.data, &cfg, &st)))
		return status;
	if ((status = open_audit(cmd, &cfg, st, &au)))
		goto out_store;
	if (pubkey_only) {
		printf("%s\n", salus_audit_vkey(au));
	} else if ((rc = salus_audit_checkpoint(au, &cp))) {
		status = salus_cli_fail(cmd, 1, "cannot sign a checkpoint: %s", salus_err_msg(rc));
	} else {
		fputs(cp.note, stdout);
		salus_audit_cp_release(&cp);
	}
	salus_audit_free(au);
out_store:
	salus_store_free(st);
	return status;
}

/* `salus audit prune`: retention (docs/audit.md, "Retention"). */
static int cmd_prune(int argc, char **argv)
{
	const char *cmd = "audit prune";
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_audit *au = NULL;
	struct opts o;
	int64_t horizon, before, lo, hi, n = 0;
	char when[SALUS_INSTANT_LEN];
	int rc, status;

	if ((status = parse(cmd, argc, argv, &o)))
		return status;
	if ((status = open_store(cmd, o.data, &cfg, &st)))
		return status;
	horizon = salus_now_ms() - (int64_t)cfg.audit_retention_days * 86400000;
	before = horizon;
	if (o.before) {
		if (salus_fhir_date_range(o.before, strlen(o.before), &lo, &hi)) {
			status = salus_cli_fail(cmd, 2, "--before needs a date (YYYY, YYYY-MM-DD or a FHIR dateTime)");
			goto out_store;
		}
		if (lo > horizon) {
			status = salus_cli_fail(cmd, 2,
						"--before is inside the retention period ([audit] retention_days = %d); "
						"events younger than that must be kept",
						cfg.audit_retention_days);
			goto out_store;
		}
		before = lo;
	}
	if ((status = open_audit(cmd, &cfg, st, &au)))
		goto out_store;
	rc = salus_audit_prune(au, st, before, "salus-cli", &n);
	salus_instant_format(before, when);
	if (rc)
		status = salus_cli_fail(cmd, 1, "pruning failed: %s", salus_err_msg(rc));
	else
		printf("salus audit prune: %" PRId64 " events before %s pruned (hashes and checkpoints kept)\n", n, when);
	salus_audit_free(au);
out_store:
	salus_store_free(st);
	return status;
}

static int cmd_check_proof(int argc, char **argv)
{
	enum salus_proof_verdict v;
	const char *why = NULL;
	char *text = NULL;
	size_t n;

	if (argc != 2)
		return salus_cli_fail("audit check-proof", 2, "usage: salus audit check-proof FILE");
	if (read_all(argv[1], &text, &n)) {
		fprintf(stderr, "salus audit check-proof: cannot read %s\n", argv[1]);
		return 2;
	}
	v = salus_audit_proof_check(text, n, &why);
	salus_free(text);
	if (v == SALUS_PROOF_VALID)
		printf("salus audit check-proof: valid\n");
	else
		fprintf(stderr, "salus audit check-proof: %s: %s\n", v == SALUS_PROOF_INVALID ? "invalid" : "unreadable", why);
	return (int)v;
}

int salus_cmd_audit(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(usage, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (int i = 2; i < argc; i++)
		if (!strcmp(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
	if (salus_crypto_init())
		return salus_cli_fail("audit", 2, "libsodium failed to initialise");
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	if (!strcmp(argv[1], "export"))
		return cmd_export(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "tail"))
		return cmd_export(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "checkpoint"))
		return cmd_checkpoint(argc - 1, argv + 1, false);
	if (!strcmp(argv[1], "pubkey"))
		return cmd_checkpoint(argc - 1, argv + 1, true);
	if (!strcmp(argv[1], "check-proof"))
		return cmd_check_proof(argc - 1, argv + 1);
	if (!strcmp(argv[1], "prune"))
		return cmd_prune(argc - 1, argv + 1);
	return salus_cli_fail("audit", 2, "unknown command '%s' (see --help)", argv[1]);
}
