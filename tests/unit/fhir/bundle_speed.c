/*
 * bundle_speed.c — in-process transaction-Bundle ingest rate, without HTTP,
 * TLS or the audit phase: the same salus_fhir_bundle path `POST /fhir`
 * takes (validation, reference rewriting, search indexing, one store write
 * per Bundle, encrypted store), so a profiler (perf, callgrind) sees only
 * the write path.  Built, not a test.
 *
 *   bundle_speed [--plain] [--noindex] [--keep] [--threads N] [--rounds R] FILE.json...
 *
 * --plain: a plaintext store (default: the page-encrypting VFS with a fixed
 * test key); --noindex: an indexing hook that computes no rows (only type,
 * id and lastUpdated searchable), to compare with full indexing (issue 5);
 * --keep: leave the database in its temporary directory.
 * Prints resources/s (wall) and CPU seconds used by the process.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "fhir/bundle.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

struct file {
	char *p;
	size_t n;
	long entries;
};

struct run {
	struct salus_store *st;
	struct file *f;
	size_t nf, jobs;
	atomic_size_t next;
	atomic_long resources, errors;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       (double)ru.ru_stime.tv_usec / 1e6;
}

static int load(const char *path, struct file *f)
{
	FILE *fp = fopen(path, "rb");
	if (!fp)
		return -1;
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	f->p = salus_malloc((size_t)n + 1);
	if (!f->p || fread(f->p, 1, (size_t)n, fp) != (size_t)n) {
		fclose(fp);
		return -1;
	}
	fclose(fp);
	f->p[n] = 0;
	f->n = (size_t)n;
	/* entries: count "request" members (one per entry in Synthea bundles) */
	f->entries = 0;
	for (const char *q = f->p; (q = strstr(q, "\"request\"")); q++)
		f->entries++;
	return 0;
}

static void *worker(void *arg)
{
	struct run *r = arg;
	size_t j;
	while ((j = atomic_fetch_add(&r->next, 1)) < r->jobs) {
		struct file *f = &r->f[j % r->nf];
		struct salus_fhir_req rq = {.op = SALUS_FHIR_BUNDLE, .base = "https://localhost/fhir",
					    .prefer = "return=minimal", .body = f->p, .body_len = f->n};
		struct salus_fhir_resp rs;
		salus_fhir_resp_init(&rs);
		int status = salus_fhir_bundle(r->st, &rq, &rs);
		if (status != 200) {
			fprintf(stderr, "bundle %zu: HTTP %d %.300s\n", j % r->nf, status, rs.body.p ? rs.body.p : "");
			atomic_fetch_add(&r->errors, 1);
		} else {
			atomic_fetch_add(&r->resources, f->entries);
		}
		salus_fhir_resp_release(&rs);
	}
	return NULL;
}

static int no_build(void *ctx, const char *type, json_t *res, const struct salus_ix **out, void **state)
{
	(void)ctx, (void)type, (void)res;
	*out = NULL;
	*state = NULL;
	return SALUS_OK;
}
static void no_done(void *ctx, void *state)
{
	(void)ctx, (void)state;
}
static const struct salus_store_indexer no_indexer = {no_build, no_done, NULL};

int main(int argc, char **argv)
{
	static const struct salus_page_key key = {.id = 1, .key = {1, 2, 3, 4, 5, 6, 7, 8}};
	bool plain = false, noindex = false, keep = false;
	int threads = 1, rounds = 1, rc = 0;
	char dir[] = "/tmp/salus-bspeed-XXXXXX", uri[300];
	struct run r = {0};

	salus_alloc_install();
	salus_store_global_init();
	r.f = salus_calloc((size_t)argc, sizeof *r.f);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--plain"))
			plain = true;
		else if (!strcmp(argv[i], "--noindex"))
			noindex = true;
		else if (!strcmp(argv[i], "--keep"))
			keep = true;
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = (int)strtol(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = (int)strtol(argv[++i], NULL, 10);
		else if (load(argv[i], &r.f[r.nf++])) {
			fprintf(stderr, "cannot read %s\n", argv[i]);
			return 2;
		}
	}
	if (!r.nf || threads < 1 || threads > 64 || rounds < 1) {
		fprintf(stderr, "usage: bundle_speed [--plain] [--noindex] [--threads N] [--rounds R] FILE.json...\n");
		return 2;
	}
	if (!mkdtemp(dir))
		return 1;
	snprintf(uri, sizeof uri, "sqlite:%s/b.db", dir);
	struct salus_store_opts o = {.create = true};
	if (!plain) {
		o.page_keys = &key;
		o.npage_keys = 1;
		o.page_key_id = 1;
	}
	if ((rc = salus_store_open(uri, &o, &r.st))) {
		fprintf(stderr, "open: %s\n", salus_err_name(rc));
		return 1;
	}
	if (noindex)
		salus_store_set_indexer(r.st, &no_indexer);
	else
		salus_fhir_search_attach(r.st);
	r.jobs = r.nf * (size_t)rounds;
	pthread_t th[64];
	double t0 = now_s(), c0 = cpu_s();
	for (int t = 0; t < threads; t++)
		pthread_create(&th[t], NULL, worker, &r);
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	double secs = now_s() - t0, cpu = cpu_s() - c0;
	long res = atomic_load(&r.resources);
	printf("bundles=%zu resources=%ld seconds=%.2f resources_per_s=%.0f cpu_s=%.2f resources_per_cpu_s=%.0f "
	       "threads=%d %s %s errors=%ld\n",
	       r.jobs, res, secs, res / secs, cpu, res / cpu, threads, plain ? "plaintext" : "encrypted",
	       noindex ? "noindex" : "indexed", atomic_load(&r.errors));
	salus_store_free(r.st);
	for (size_t i = 0; i < r.nf; i++)
		salus_free(r.f[i].p);
	salus_free(r.f);
	char p[340];
	/* the store's files: database, WAL, index, audit journal (and, once the audit trail has a
	 * database of its own, that one) */
	const char *files[] = {"b.db", "b.db-wal", "b.db-shm", "b.db-auditj", "b-audit.db", "b-audit.db-wal", "b-audit.db-shm"};
	if (keep)
		printf("kept %s/b.db\n", dir);
	for (size_t i = 0; i < sizeof files / sizeof *files && !keep; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	if (!keep)
		rmdir(dir);
	return atomic_load(&r.errors) ? 1 : 0;
}
