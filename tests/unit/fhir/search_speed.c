/*
 * search_speed.c — in-process cost of the five searches of bench/search.sh
 * (docs/search.md "Benchmark"), without HTTP, TLS or the audit phase: the
 * same salus_fhir_search path a GET /fhir/T?... takes (parsing, the SQL
 * compiler, the store, the searchset Bundle), so a profiler (perf, callgrind)
 * sees only the search.  Built, not a test.
 *
 *   search_speed [--patients N] [--years Y] [--plain] [--iters K] [--plans] [--only NAME] [--db DIR]
 *
 * Generates N patients (`salus gen` data, default 20 x 60 years: ~15,000
 * resources) into a fresh store (encrypted unless --plain) with indexing, or
 * reuses the store of a previous --db DIR run, then runs each query K times
 * (default 200) and prints CPU microseconds per search, hits and total;
 * --plans prints the EXPLAIN QUERY PLAN of each page and count query;
 * --only runs one of them (obs, name, ident, chain, revinc).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/gen.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

#define BATCH 256

struct loadctx {
	struct salus_store *st;
	struct salus_write ops[BATCH];
	char types[BATCH][64], ids[BATCH][80]; /* the store rewrites id and meta in the resource */
	size_t n;
	long written;
	int rc;
	/* the subjects of the queries, from the first patient */
	char pid[80], family[80], isys[200], ival[80], code[40];
	bool obs_seen;
};

static int flush(struct loadctx *l)
{
	if (!l->n)
		return 0;
	int rc = salus_store_write(l->st, l->ops, l->n);
	for (size_t i = 0; i < l->n; i++) {
		json_decref(l->ops[i].resource);
		salus_write_release(&l->ops[i]);
	}
	l->written += rc ? 0 : (long)l->n;
	l->n = 0;
	return rc;
}

static int put_cb(void *ctx, json_t *r)
{
	struct loadctx *l = ctx;
	const char *type = json_string_value(json_object_get(r, "resourceType"));
	const char *id = json_string_value(json_object_get(r, "id"));
	if (!strcmp(type, "Patient") && !l->pid[0]) {
		json_t *i0 = json_array_get(json_object_get(r, "identifier"), 0);
		snprintf(l->pid, sizeof l->pid, "%s", id);
		snprintf(l->family, sizeof l->family, "%s",
		         json_string_value(
		             json_object_get(json_array_get(json_object_get(r, "name"), 0), "family")));
		snprintf(l->isys, sizeof l->isys, "%s", json_string_value(json_object_get(i0, "system")));
		snprintf(l->ival, sizeof l->ival, "%s", json_string_value(json_object_get(i0, "value")));
	}
	if (!strcmp(type, "Observation") && !l->obs_seen) {
		json_t *c0 = json_array_get(json_object_get(json_object_get(r, "code"), "coding"), 0);
		snprintf(l->code, sizeof l->code, "%s", json_string_value(json_object_get(c0, "code")));
		l->obs_seen = true;
	}
	if (!l->st)
		return 0; /* reusing a store: only the subjects are wanted */
	size_t k = l->n++;
	struct salus_write *w = &l->ops[k];
	memset(w, 0, sizeof *w);
	w->kind = SALUS_WRITE_UPDATE;
	snprintf(l->types[k], sizeof l->types[k], "%s", type);
	snprintf(l->ids[k], sizeof l->ids[k], "%s", id);
	w->type = l->types[k];
	w->id = l->ids[k];
	w->resource = json_incref(r);
	return l->n == BATCH ? flush(l) : 0;
}

static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
	       (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

/* "a=b&c=d" into params (the string is modified; values not percent-decoded) */
static size_t split(char *q, struct salus_param *ps, size_t max)
{
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(q, "&", &save); t && n < max; t = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(t, '=');
		if (!eq)
			continue;
		*eq = 0;
		ps[n++] = (struct salus_param){t, eq + 1};
	}
	return n;
}

static void plans(struct salus_store *st, const char *type, struct salus_param *ps, size_t np)
{
	struct salus_fhir_search *s = NULL;
	const char *why = NULL;
	if (salus_fhir_search_parse(type, ps, np, false, &s, &why)) {
		printf("  parse: %s\n", why ? why : "?");
		return;
	}
	for (int count = 0; count < 2; count++) {
		char *plan = NULL;
		if (!salus_store_search_plan(st, salus_fhir_search_query(s), count, &plan)) {
			printf("  %s plan:\n%s", count ? "count" : "page", plan);
			salus_free(plan);
		}
	}
	salus_fhir_search_free(s);
}

int main(int argc, char **argv)
{
	static const struct salus_page_key key = {.id = 1, .key = {1, 2, 3, 4, 5, 6, 7, 8}};
	long patients = 20, years = 60, iters = 200;
	bool plain = false, show_plans = false;
	const char *dbdir = NULL, *only = NULL;
	char dir[] = "/tmp/salus-sspeed-XXXXXX", uri[400];
	struct loadctx l = {0};

	salus_alloc_install();
	salus_store_global_init();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plain"))
			plain = true;
		else if (!strcmp(argv[i], "--plans"))
			show_plans = true;
		else if (!strcmp(argv[i], "--patients") && i + 1 < argc)
			patients = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--years") && i + 1 < argc)
			years = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--db") && i + 1 < argc)
			dbdir = argv[++i];
		else {
			fprintf(
			    stderr,
			    "usage: search_speed [--patients N] [--years Y] [--plain] [--iters K] [--plans] "
			    "[--only NAME] [--db DIR]\n");
			return 2;
		}
	}
	if (patients < 1 || years < 1 || iters < 1)
		return 2;
	if (!dbdir && !mkdtemp(dir))
		return 1;
	if (dbdir)
		mkdir(dbdir, 0700);
	snprintf(uri, sizeof uri, "sqlite:%s/s.db", dbdir ? dbdir : dir);
	char dbpath[400];
	snprintf(dbpath, sizeof dbpath, "%s/s.db", dbdir ? dbdir : dir);
	bool fresh = access(dbpath, F_OK) != 0;
	struct salus_store_opts o = {.create = true};
	if (!plain) {
		o.page_keys = &key;
		o.npage_keys = 1;
		o.page_key_id = 1;
	}
	int rc = salus_store_open(uri, &o, &l.st);
	if (rc) {
		fprintf(stderr, "open: %s\n", salus_err_name(rc));
		return 1;
	}
	salus_fhir_search_attach(l.st);
	struct salus_gen *g = NULL;
	struct salus_gen_opts go = {.seed = 1, .years = (int)years};
	if ((rc = salus_gen_new(&go, &g)))
		return 1;
	double t0 = cpu_us();
	if (fresh) {
		rc = salus_gen_run(g, (size_t)patients, put_cb, &l);
		if (!rc)
			rc = flush(&l);
	} else {
		/* the same seed gives the same first patient: generate one to learn the subjects */
		struct salus_store *keep = l.st;
		l.st = NULL;
		rc = salus_gen_patient(g, put_cb, &l);
		l.st = keep;
	}
	salus_gen_free(g);
	if (rc) {
		fprintf(stderr, "load: %s\n", salus_err_name(rc));
		return 1;
	}
	if (fresh)
		printf("loaded %ld resources in %.1f CPU s\n", l.written, (cpu_us() - t0) / 1e6);

	char q[5][1200];
	const char *types[5] = {"Observation", "Patient", "Patient", "Observation", "Patient"};
	const char *names[5] = {"obs", "name", "ident", "chain", "revinc"};
	snprintf(q[0], sizeof q[0], "patient=%s&code=%s&date=ge2000-01-01&_sort=-date", l.pid, l.code);
	snprintf(q[1], sizeof q[1], "name=%.3s", l.family);
	snprintf(q[2], sizeof q[2], "identifier=%s|%s", l.isys, l.ival);
	snprintf(q[3], sizeof q[3], "subject:Patient.name=%s&code=%s", l.family, l.code);
	snprintf(q[4], sizeof q[4], "_id=%s&_revinclude=Encounter:subject", l.pid);
	for (int k = 0; k < 5; k++) {
		if (only && strcmp(only, names[k]))
			continue;
		struct salus_param ps[16];
		char tmp[1200];
		memcpy(tmp, q[k], sizeof tmp);
		size_t np = split(tmp, ps, 16);
		struct salus_fhir_req rq = {.op = SALUS_FHIR_SEARCH_TYPE,
		                            .base = "https://localhost/fhir",
		                            .params = ps,
		                            .nparams = np};
		snprintf(rq.type, sizeof rq.type, "%s", types[k]);
		long entries = -1, total = -1;
		double c0 = cpu_us();
		for (long i = 0; i < iters; i++) {
			struct salus_fhir_resp rs;
			salus_fhir_resp_init(&rs);
			int status = salus_fhir_search(l.st, &rq, &rs);
			if (status != 200) {
				fprintf(stderr, "%s: HTTP %d %.300s\n", names[k], status,
				        rs.body.p ? rs.body.p : "");
				return 1;
			}
			if (i == 0) {
				json_t *b = json_loadb(rs.body.p, rs.body.n, 0, NULL);
				entries = (long)json_array_size(json_object_get(b, "entry"));
				json_t *t = json_object_get(b, "total");
				total = t ? (long)json_integer_value(t) : -1;
				json_decref(b);
			}
			salus_fhir_resp_release(&rs);
		}
		double us = (cpu_us() - c0) / (double)iters;
		printf("%-7s %8.1f us/search  entries %ld total %ld  %s?%s\n", names[k], us, entries, total,
		       types[k], q[k]);
		if (show_plans)
			plans(l.st, types[k], ps, np);
	}
	salus_store_free(l.st);
	if (!dbdir) {
		const char *sfx[] = {"", "-wal", "-shm"};
		for (int i = 0; i < 3; i++) {
			char p[420];
			snprintf(p, sizeof p, "%s/s.db%s", dir, sfx[i]);
			unlink(p);
		}
		rmdir(dir);
	}
	return 0;
}
