/*
 * cmd_load.c — `salus load --data DIR FILE.ndjson...`: bulk-load resources
 * (one JSON resource per line, e.g. `salus gen --ndjson`) straight into the
 * store, indexed for search (docs/search.md), a batch per group commit.
 * Resources with an id are written as update-as-create, others created.
 * For trusted input (benchmarks, migrations): resources are not validated
 * against the definitions, unlike writes through the FHIR API.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "cli/admin_audit.h"
#include "cli/cmd.h"
#include "cli/store_open.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/limits.h"
#include "fhir/defs.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

#define LOAD_BATCH 256
#define LOAD_THREADS 2 /* index rows are computed in the writing thread: overlap that with the commit */

static const char usage[] = "usage: salus load --data DIR [--no-index] FILE.ndjson [FILE.ndjson...]\n"
			    "Writes every resource of the files ('-': standard input) into the store, indexed\n"
			    "for search.  Trusted input only: no validation against the FHIR definitions.\n"
			    "  --no-index  no search index rows (findable by type, _id and _lastUpdated only;\n"
			    "              still sealed under the patient's key): to measure what indexing\n"
			    "              costs; `salus reindex` indexes such data later\n";

struct batch {
	struct salus_write ops[LOAD_BATCH];
	char types[LOAD_BATCH][SALUS_MAX_TYPE + 1];
	char ids[LOAD_BATCH][SALUS_MAX_ID + 1];
	char *raw[LOAD_BATCH]; /* each line's text: the store keeps the resource as written (salus_write.raw) */
	size_t n;
};

struct loader {
	struct salus_store *st;
	FILE *f;
	const char *name;
	long line, written;
	int rc;
	pthread_mutex_t mu; /* f, line, written, rc */
	struct salus_buf lb;
};

/* Fill b with up to LOAD_BATCH resources under l->mu. */
static int fill(struct loader *l, struct batch *b)
{
	char chunk[4096];
	b->n = 0;
	while (b->n < LOAD_BATCH && !l->rc) {
		salus_buf_reset(&l->lb);
		bool eof = true;
		while (fgets(chunk, sizeof chunk, l->f)) {
			eof = false;
			size_t k = strlen(chunk);
			if (salus_buf_add(&l->lb, chunk, k))
				return SALUS_ETOOLARGE;
			if (k && chunk[k - 1] == '\n')
				break;
		}
		if (eof)
			break;
		l->line++;
		size_t n = l->lb.n;
		while (n && (l->lb.p[n - 1] == '\n' || l->lb.p[n - 1] == '\r' || l->lb.p[n - 1] == ' '))
			n--;
		if (!n)
			continue;
		char why[160];
		json_t *j = NULL;
		if (salus_json_parse_strict(l->lb.p, n, &j, why, sizeof why)) {
			fprintf(stderr, "salus load: %s:%ld: %s\n", l->name, l->line, why);
			return SALUS_EINVALID;
		}
		const char *type = json_string_value(json_object_get(j, "resourceType"));
		const char *id = json_string_value(json_object_get(j, "id"));
		if (!json_is_object(j) || !type || !salus_fhir_is_resource_type(type, strlen(type)) ||
		    (id && !salus_fhir_id_valid(id, strlen(id)))) {
			json_decref(j);
			fprintf(stderr, "salus load: %s:%ld: not a FHIR resource with a valid type and id\n", l->name,
				l->line);
			return SALUS_EINVALID;
		}
		char *raw = salus_strndup(l->lb.p, n);
		if (!raw) {
			json_decref(j);
			return SALUS_ENOMEM;
		}
		size_t i = b->n++;
		struct salus_write *w = &b->ops[i];
		memset(w, 0, sizeof *w);
		b->raw[i] = raw;
		w->raw = raw;
		w->raw_len = n;
		snprintf(b->types[i], sizeof b->types[i], "%s", type);
		w->type = b->types[i];
		if (id) {
			snprintf(b->ids[i], sizeof b->ids[i], "%s", id);
			w->id = b->ids[i];
		}
		w->kind = id ? SALUS_WRITE_UPDATE : SALUS_WRITE_CREATE;
		w->resource = j;
	}
	return SALUS_OK;
}

static void *worker(void *arg)
{
	struct loader *l = arg;
	struct batch *b = salus_calloc(1, sizeof *b);
	if (!b) {
		pthread_mutex_lock(&l->mu);
		l->rc = SALUS_ENOMEM;
		pthread_mutex_unlock(&l->mu);
		return NULL;
	}
	for (;;) {
		pthread_mutex_lock(&l->mu);
		int rc = l->rc ? l->rc : fill(l, b);
		if (rc && !l->rc)
			l->rc = rc;
		pthread_mutex_unlock(&l->mu);
		if (rc || !b->n) {
			for (size_t i = 0; i < b->n; i++) {
				json_decref(b->ops[i].resource);
				salus_free(b->raw[i]);
			}
			break;
		}
		rc = salus_store_write(l->st, b->ops, b->n);
		for (size_t i = 0; i < b->n; i++) {
			json_decref(b->ops[i].resource);
			salus_free(b->raw[i]);
			salus_write_release(&b->ops[i]);
		}
		pthread_mutex_lock(&l->mu);
		if (rc && !l->rc)
			l->rc = rc;
		else if (!rc)
			l->written += (long)b->n;
		pthread_mutex_unlock(&l->mu);
		if (rc)
			break;
	}
	salus_free(b);
	return NULL;
}

int salus_cmd_load(int argc, char **argv)
{
	const char *dir = NULL, *why = NULL;
	int nfiles = 0, first = 0;
	bool index = true;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		}
		if (!strcmp(argv[i], "--data") && i + 1 < argc) {
			dir = argv[++i];
		} else if (!strcmp(argv[i], "--no-index")) {
			index = false;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			return salus_cli_fail("load", 2, "unexpected argument '%s' (see --help)", argv[i]);
		} else {
			if (!nfiles)
				first = i;
			else if (first + nfiles != i)
				return salus_cli_fail("load", 2, "options go before the files (see --help)");
			nfiles++;
		}
	}
	if (!dir || !nfiles)
		return salus_cli_fail("load", 2, "--data DIR and at least one file are required (see --help)");

	struct salus_config cfg;
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = false, .readers = 2};
	if (salus_config_load(&cfg, dir, &why))
		return salus_cli_fail("load", 2, "%s", why ? why : "cannot read the data directory");
	if (salus_cli_open_store(&cfg, &so, &st, &why))
		return salus_cli_fail("load", 1, "cannot open the store: %s", why ? why : "unknown error");
	if (index)
		salus_fhir_search_attach(st);
	else
		salus_fhir_search_attach_owner(st);

	struct loader l = {.st = st};
	pthread_mutex_init(&l.mu, NULL);
	salus_buf_init(&l.lb, SALUS_MAX_BODY);
	int rc = SALUS_OK;
	for (int k = 0; k < nfiles && !rc; k++) {
		const char *name = argv[first + k];
		l.f = strcmp(name, "-") ? fopen(name, "r") : stdin;
		l.name = name;
		l.line = 0;
		if (!l.f) {
			salus_buf_release(&l.lb);
			salus_store_free(st);
			return salus_cli_fail("load", 1, "cannot open %s", name);
		}
		pthread_t th[LOAD_THREADS];
		int started = 0;
		for (int t = 0; t < LOAD_THREADS; t++)
			if (!pthread_create(&th[started], NULL, worker, &l))
				started++;
		if (!started)
			worker(&l);
		for (int t = 0; t < started; t++)
			pthread_join(th[t], NULL);
		if (l.f != stdin)
			fclose(l.f);
		rc = l.rc;
	}
	salus_buf_release(&l.lb);
	pthread_mutex_destroy(&l.mu);
	/* the bulk write is an administrative action in the trail (the count, not the patients) */
	char q[96];
	snprintf(q, sizeof q, "action=load&resources=%ld", l.written);
	int arc = salus_cli_audit_action(&cfg, st, q, rc);
	salus_store_free(st);
	if (arc)
		return salus_cli_fail("load", 1, "the load could not be audited: %s", salus_err_msg(arc));
	if (rc)
		return salus_cli_fail("load", 1, "%s (after %ld resources)", salus_err_msg(rc), l.written);
	printf("salus load: %ld resources written\n", l.written);
	return 0;
}
