/*
 * cmd_report.c — `salus report access`: the accounting of disclosures
 * (HIPAA §164.528) for one patient, from the audit trail: every recorded
 * access that touched the patient's record — time, client and user, action,
 * outcome, resource, purpose of use, network address — oldest first, as
 * text, CSV (RFC 4180) or a FHIR Bundle of the stored AuditEvents.  The
 * events come from the audit log's search index (store.h,
 * salus_store_audit_query), brought up to date first.  Running the report is
 * itself audited (an "Audit Log Used" event naming the patient), before
 * anything is printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "audit/audit.h"
#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/limits.h"
#include "crypto/crypto.h"
#include "fhir/json_out.h"
#include "fhir/search.h"
#include "store/store.h"

#define PAGE 1000               /* events per query */
#define MAX_OUT (512u << 20)    /* the whole report, buffered so nothing is printed unless audited */

static const char usage[] =
	"usage: salus report access --data DIR --patient ID [--since DATE] [--format text|csv|fhir]\n"
	"  Accounting of disclosures: who accessed the patient's record (time, client/user, action,\n"
	"  outcome, resource, purpose, address), oldest first, from the audit trail.\n"
	"  --since DATE   only accesses at or after DATE (YYYY, YYYY-MM-DD or a FHIR dateTime)\n"
	"  --format       text (default), csv (RFC 4180) or fhir (a Bundle of the AuditEvents)\n";

enum fmt { F_TEXT, F_CSV, F_FHIR };

/* The columns of one access, borrowed from the parsed event. */
struct access {
	char when[SALUS_INSTANT_LEN];
	const char *client, *user, *action, *subtype, *outcome, *status, *purpose, *address;
	char resource[512];
};

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_string(v) ? json_string_value(v) : "";
}

static void describe(json_t *ev, const char *patient, struct access *a)
{
	json_t *x;
	size_t i, used = 0;
	a->client = a->user = a->address = a->purpose = "";
	a->action = jstr(ev, "action");
	a->outcome = jstr(ev, "outcome");
	a->status = jstr(ev, "outcomeDesc");
	a->subtype = jstr(json_array_get(json_object_get(ev, "subtype"), 0), "code");
	if (!*a->subtype)
		a->subtype = jstr(json_object_get(ev, "type"), "display");
	json_array_foreach(json_object_get(ev, "agent"), i, x) {
		json_t *id = json_object_get(json_object_get(x, "who"), "identifier");
		const char *sys = jstr(id, "system"), *addr = jstr(json_object_get(x, "network"), "address");
		if (!strcmp(sys, "urn:salus:client"))
			a->client = jstr(id, "value");
		else if (!strcmp(sys, "urn:salus:user"))
			a->user = jstr(id, "value");
		if (*addr && !*a->address)
			a->address = addr;
	}
	a->purpose = jstr(json_array_get(json_object_get(json_array_get(json_object_get(ev, "purposeOfEvent"), 0), "coding"), 0),
			  "code");
	a->resource[0] = 0;
	json_array_foreach(json_object_get(ev, "entity"), i, x) {
		const char *ref = jstr(json_object_get(x, "what"), "reference");
		const char *desc = jstr(x, "description");
		char self[SALUS_MAX_ID + 16];
		snprintf(self, sizeof self, "Patient/%s", patient);
		const char *show = *ref ? ref : *desc ? desc : "";
		if (!*show || (!strcmp(ref, self) && json_array_size(json_object_get(ev, "entity")) > 1))
			continue; /* the patient itself is implied, unless it is all there is */
		if (*ref && !strncmp(ref, "Patient/", 8) && strcmp(ref, self))
			continue; /* other patients of the same request are theirs to account for */
		int k = snprintf(a->resource + used, sizeof a->resource - used, "%s%s%s", used ? " " : "",
				 *ref ? "" : "query:", show);
		if (k < 0 || (size_t)k >= sizeof a->resource - used)
			break;
		used += (size_t)k;
	}
	int64_t ms = 0;
	const char *rec = jstr(ev, "recorded");
	if (salus_instant_parse(rec, strlen(rec), &ms))
		snprintf(a->when, sizeof a->when, "%s", rec);
	else
		salus_instant_format(ms, a->when);
}

/* RFC 4180: quote a field holding a comma, quote, CR or LF; double the quotes. */
static int csv_field(struct salus_buf *b, const char *s, bool last)
{
	int rc = 0;
	if (strpbrk(s, ",\"\r\n")) {
		rc = salus_buf_addc(b, '"');
		for (; *s && !rc; s++)
			rc = *s == '"' ? salus_buf_adds(b, "\"\"") : salus_buf_addc(b, *s);
		if (!rc)
			rc = salus_buf_addc(b, '"');
	} else {
		rc = salus_buf_adds(b, s);
	}
	if (!rc)
		rc = last ? salus_buf_adds(b, "\r\n") : salus_buf_addc(b, ',');
	return rc;
}

struct rep {
	enum fmt fmt;
	const char *patient;
	struct salus_buf *out;
	long n;
	int64_t last_ts, last_idx;
	int got; /* rows of the current page */
};

static int row_cb(void *ctx, const struct salus_aq_hit *h)
{
	struct rep *r = ctx;
	struct access a;
	json_t *ev;
	int rc = 0;

	r->got++;
	r->last_ts = h->ts_ms;
	r->last_idx = h->index;
	if (r->fmt == F_FHIR) {
		/* "entry" opens with the first row: FHIR JSON has no empty arrays */
		rc = salus_buf_addf(r->out, "%s{\"fullUrl\":\"AuditEvent/%" PRId64 "\",\"resource\":",
				    r->n ? "," : ",\"entry\":[", h->index);
		if (!rc)
			rc = salus_buf_add(r->out, h->event, h->event_n);
		if (!rc)
			rc = salus_buf_addc(r->out, '}');
		r->n++;
		return rc;
	}
	if (!(ev = json_loadb(h->event, h->event_n, 0, NULL)))
		return SALUS_OK; /* not an AuditEvent: never in the index's patient rows */
	describe(ev, r->patient, &a);
	char action[64], outcome[64];
	snprintf(action, sizeof action, "%s%s%s", a.action, *a.subtype ? " " : "", a.subtype);
	snprintf(outcome, sizeof outcome, "%s%s%s%s", a.outcome, *a.status ? " (" : "", a.status, *a.status ? ")" : "");
	if (r->fmt == F_CSV) {
		char idx[24];
		snprintf(idx, sizeof idx, "%" PRId64, h->index);
		const char *f[] = {a.when, idx, a.client, a.user, action, outcome, a.resource, a.purpose, a.address};
		for (size_t i = 0; i < sizeof f / sizeof f[0] && !rc; i++)
			rc = csv_field(r->out, f[i], i + 1 == sizeof f / sizeof f[0]);
	} else {
		rc = salus_buf_addf(r->out, "%-24s %-8" PRId64 " %-20s %-12s %-20s %-16s %-8s %-15s %s\n", a.when, h->index,
				    *a.client ? a.client : "-", *a.user ? a.user : "-", action, outcome,
				    *a.purpose ? a.purpose : "-", *a.address ? a.address : "-",
				    *a.resource ? a.resource : "-");
	}
	json_decref(ev);
	r->n++;
	return rc;
}

static int parse_args(int argc, char **argv, const char **data, const char **patient, const char **since,
		      enum fmt *fmt)
{
	*data = *patient = *since = NULL;
	*fmt = F_TEXT;
	if (argc < 2 || strcmp(argv[1], "access"))
		return salus_cli_fail("report", 2, "unknown or missing report (the report is 'access'; see --help)");
	for (int i = 2; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			return salus_cli_fail("report", 2, "unexpected or incomplete argument '%s' (see --help)", a);
		if (!strcmp(a, "--data"))
			*data = v;
		else if (!strcmp(a, "--patient"))
			*patient = v;
		else if (!strcmp(a, "--since"))
			*since = v;
		else if (!strcmp(a, "--format")) {
			if (!strcmp(v, "text"))
				*fmt = F_TEXT;
			else if (!strcmp(v, "csv"))
				*fmt = F_CSV;
			else if (!strcmp(v, "fhir"))
				*fmt = F_FHIR;
			else
				return salus_cli_fail("report", 2, "--format is text, csv or fhir");
		} else
			return salus_cli_fail("report", 2, "unexpected argument '%s' (see --help)", a);
	}
	if (!*data || !*patient)
		return salus_cli_fail("report", 2, "--data DIR and --patient ID are required (see --help)");
	size_t pn = strlen(*patient);
	if (!pn || pn > SALUS_MAX_ID || strspn(*patient, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") != pn)
		return salus_cli_fail("report", 2, "--patient must be a FHIR id ([A-Za-z0-9-.]{1,64})");
	return 0;
}

int salus_cmd_report(int argc, char **argv)
{
	const char *data, *patient, *since, *why = NULL;
	struct salus_store_opts so = {.create = false, .readers = 2};
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_audit *au = NULL;
	struct salus_buf out;
	enum fmt fmt;
	int rc, status;

	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--help") || (i == 1 && !strcmp(argv[i], "help"))) {
			fputs(usage, stdout);
			return 0;
		}
	if ((status = parse_args(argc, argv, &data, &patient, &since, &fmt)))
		return status;
	struct salus_aq_val pv = {.code = patient}, dv = {.op = SALUS_SQ_GE};
	struct salus_aq_clause cl[2] = {{.kind = SALUS_AQ_PATIENT, .vals = &pv, .nvals = 1},
					{.kind = SALUS_AQ_DATE, .vals = &dv, .nvals = 1}};
	if (since && salus_fhir_date_range(since, strlen(since), &dv.lo, &dv.hi))
		return salus_cli_fail("report", 2, "--since needs a date (YYYY, YYYY-MM-DD or a FHIR dateTime)");
	if (salus_crypto_init())
		return salus_cli_fail("report", 2, "libsodium failed to initialise");
	if (salus_config_load(&cfg, data, &why))
		return salus_cli_fail("report", 2, "%s", why ? why : "cannot read the data directory");
	if ((rc = salus_cli_open_store(&cfg, &so, &st, &why)))
		return salus_cli_fail("report", 2, "cannot open the store: %s", why);
	salus_buf_init(&out, MAX_OUT);
	if ((rc = salus_store_audit_ix_update(st, NULL))) {
		status = salus_cli_fail("report", 1, "cannot index the audit trail: %s", salus_err_msg(rc));
		goto out;
	}
	struct salus_aq q = {.clauses = cl, .nclauses = since ? 2 : 1, .oldest_first = true, .count = PAGE};
	long total = 0;
	if ((rc = salus_store_audit_query_count(st, &q, &total))) {
		status = salus_cli_fail("report", 1, "cannot read the audit trail: %s", salus_err_msg(rc));
		goto out;
	}
	if (fmt == F_FHIR)
		rc = salus_buf_addf(&out, "{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"total\":%ld", total);
	else if (fmt == F_CSV)
		rc = salus_buf_adds(&out, "time,event,client,user,action,outcome,resource,purpose,address\r\n");
	else
		rc = salus_buf_addf(&out, "Accounting of disclosures for Patient/%s%s%s: %ld accesses\n%-24s %-8s %-20s %-12s "
				    "%-20s %-16s %-8s %-15s %s\n",
				    patient, since ? " since " : "", since ? since : "", total, "time", "event", "client",
				    "user", "action", "outcome", "purpose", "address", "resource");
	struct rep r = {.fmt = fmt, .patient = patient, .out = &out};
	while (!rc) {
		r.got = 0;
		if ((rc = salus_store_audit_query(st, &q, row_cb, &r)))
			break;
		if (r.got < PAGE)
			break;
		q.after = true;
		q.after_ts = r.last_ts;
		q.after_idx = r.last_idx;
	}
	if (!rc && fmt == F_FHIR)
		rc = salus_buf_adds(&out, r.n ? "]}\n" : "}\n");
	if (rc) {
		status = salus_cli_fail("report", 1, "cannot build the report: %s", salus_err_msg(rc));
		goto out;
	}
	/* the report is itself an access to the patient's audit trail: audited before it is shown */
	char key[SALUS_PATH_MAX];
	struct salus_audit_opts ao = {.key_path = key};
	const char *pats[] = {patient};
	if ((rc = salus_config_path(&cfg, "keys/audit.key", key)) || (rc = salus_audit_new(st, &ao, &au))) {
		status = salus_cli_fail("report", 1, "cannot open the audit trail: %s", salus_err_msg(rc));
		goto out;
	}
	struct salus_audit_req arq = {.interaction = SALUS_AUDIT_AUDIT_READ, .resource_type = "AuditEvent",
				      .patients = pats, .npatients = 1, .status = 200, .client_id = "salus-cli",
				      .query = "report=access"};
	if ((rc = salus_audit_record(au, &arq, NULL))) {
		status = salus_cli_fail("report", 1, "the report could not be audited, so it is not shown: %s",
					salus_err_msg(rc));
		goto out;
	}
	fwrite(out.p, 1, out.n, stdout);
	status = fflush(stdout) ? 1 : 0;
out:
	salus_audit_free(au);
	salus_buf_release(&out);
	salus_store_free(st);
	return status;
}
