/*
 * search_probe.c — one search on a real data directory, in-process (no HTTP,
 * TLS or audit): the store is opened as every salus command opens it
 * (src/cli/store_open.c: keyring, page keys), the search runs through
 * salus_fhir_search K times on one connection, and the CPU microseconds per
 * search, the start of the Bundle and (--plan) the EXPLAIN QUERY PLAN of the
 * page query with its total are printed.  For looking at query plans and
 * costs on the 1M-resource benchmark data (docs/search.md "Benchmark") —
 * never on a directory a server is using.  Built, not a test.
 *
 *   search_probe --data DIR [--iters K] [--plan] TYPE 'name=value&name=value'
 *
 * Values are taken as written (not percent-decoded).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/config.h"
#include "core/err.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

static double cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
	       (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec;
}

int main(int argc, char **argv)
{
	const char *dir = NULL, *type = NULL, *query = NULL, *why = NULL;
	long iters = 100;
	bool plan = false;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--data") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--plan"))
			plan = true;
		else if (!type)
			type = argv[i];
		else if (!query)
			query = argv[i];
		else
			type = NULL, i = argc; /* too many arguments */
	}
	if (!dir || !type || !query || iters < 1 || strlen(query) >= 4096) {
		fprintf(stderr,
		        "usage: search_probe --data DIR [--iters K] [--plan] TYPE 'name=value&...'\n");
		return 2;
	}
	salus_alloc_install();
	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = false, .readers = 1};
	if (salus_config_load(&cfg, dir, &why) || salus_cli_open_store(&cfg, &so, &st, &why)) {
		fprintf(stderr, "search_probe: cannot open the store: %s\n", why ? why : "unknown error");
		return 1;
	}
	salus_fhir_search_attach(st);
	char q[4096];
	struct salus_param ps[32];
	size_t np = 0;
	snprintf(q, sizeof q, "%s", query);
	for (char *save = NULL, *t = strtok_r(q, "&", &save); t && np < 32; t = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(t, '=');
		if (!eq)
			continue;
		*eq = 0;
		ps[np++] = (struct salus_param){t, eq + 1};
	}
	struct salus_fhir_req rq = {
	    .op = SALUS_FHIR_SEARCH_TYPE, .base = "https://localhost/fhir", .params = ps, .nparams = np};
	snprintf(rq.type, sizeof rq.type, "%s", type);
	double c0 = 0;
	int rc = 0;
	for (long i = 0; i <= iters && !rc; i++) {
		if (i == 1)
			c0 = cpu_us(); /* the first run prepares the statement and warms the cache */
		struct salus_fhir_resp rs;
		salus_fhir_resp_init(&rs);
		int status = salus_fhir_search(st, &rq, &rs);
		if (i == 0)
			printf("HTTP %d, %zu bytes: %.160s\n", status, rs.body.n, rs.body.p ? rs.body.p : "");
		rc = status != 200;
		salus_fhir_resp_release(&rs);
	}
	if (!rc)
		printf("%.1f CPU us/search (%ld searches)\n", (cpu_us() - c0) / (double)iters, iters);
	if (!rc && plan) {
		struct salus_fhir_search *s = NULL;
		if (!salus_fhir_search_parse(type, ps, np, false, &s, &why)) {
			struct salus_sq sq = *salus_fhir_search_query(s);
			char *text = NULL;
			sq.with_total = true;
			if (!salus_store_search_plan(st, &sq, false, &text)) {
				printf("page plan (with total):\n%s", text);
				salus_free(text);
			}
			if (!salus_store_search_plan(st, &sq, true, &text)) {
				printf("count plan:\n%s", text);
				salus_free(text);
			}
			salus_fhir_search_free(s);
		}
	}
	salus_store_free(st);
	return rc;
}
