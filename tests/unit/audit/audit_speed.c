/*
 * audit_speed.c — audited events appended per second under concurrent load
 * (built, not a ctest).
 *
 *   audit_speed [DIR] [EVENTS] [THREADS] [journal [RATE]]
 *
 * Opens a fresh store in DIR (default: a new /tmp directory), records EVENTS
 * (default 100000) BALP AuditEvents from THREADS threads (default 64), each
 * call blocking until durable, then prints events/s, p50/p99 latency, the
 * time of a checkpoint and of an inclusion proof at the final size.
 * With "journal", each thread records through the audit journal
 * (salus_audit_record_journal: what the server does for reads), latency is
 * that of the append, and the clock stops when all of them are in the log
 * (salus_store_audit_settle).  RATE (events/s over all threads) paces the
 * callers as requests arrive at a server, instead of all at once (which piles
 * events up for the writer, as no server load does).
 * SALUS_SPEED_ENCRYPT=1 opens the store encrypted, as `salus serve` does.
 * It also prints the process CPU time per event (every thread: the callers'
 * rendering, encoding, sealing and appending, and the writer's hashing, rows
 * and commits) — the figure to compare builds by on a busy machine.  The
 * allocator is tuned as `salus serve` tunes it.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <unistd.h>

#include "audit/audit.h"
#include "core/alloc.h"
#include "core/err.h"
#include "store/store.h"

struct run {
	struct salus_audit *au;
	int per;
	double *lat_us;
	int errors;
	double rate; /* events/s over all threads (0: as fast as they go) */
	int threads;
	bool null; /* SALUS_SPEED_NULL: pace, record nothing (the harness's own CPU) */
	pthread_mutex_t mu;
};

struct arg {
	struct run *r;
	int t;
};

static double now_s(void);

static void *journal_worker(void *arg)
{
	struct arg *a = arg;
	struct run *r = a->r;
	static const char *const pats[] = {"pat-0001"};
	double start = now_s(), every = r->rate > 0 ? r->threads / r->rate : 0;
	for (int i = 0; i < r->per; i++) {
		if (every > 0 && i % 32 == 0) { /* paced (in bursts of 32): as requests arrive at a server */
			double due = start + i * every, d = due - now_s();
			if (d > 0) {
				struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
				nanosleep(&ts, NULL);
			}
		}
		struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .resource_type = "Observation",
					     .id = "obs-123", .patients = pats, .npatients = 1, .status = 200,
					     .client_id = "bench", .remote_addr = "127.0.0.1"};
		double t0 = now_s();
		int rc = r->null ? 0 : salus_audit_record_journal(r->au, &rq);
		r->lat_us[a->t * r->per + i] = (now_s() - t0) * 1e6;
		if (rc) {
			pthread_mutex_lock(&r->mu);
			r->errors++;
			pthread_mutex_unlock(&r->mu);
		}
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void *worker(void *p)
{
	struct arg *a = p;
	struct run *r = a->r;
	static const char *const pats[] = {"pat-0001"};
	double start = now_s(), every = r->rate > 0 ? r->threads / r->rate : 0;
	for (int i = 0; i < r->per; i++) {
		if (every > 0 && i % 32 == 0) { /* paced (in bursts of 32): as requests arrive at a server */
			double due = start + i * every, d = due - now_s();
			if (d > 0) {
				struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (double)(time_t)d) * 1e9)};
				nanosleep(&ts, NULL);
			}
		}
		struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .resource_type = "Observation",
					     .id = "obs-123", .patients = pats, .npatients = 1, .status = 200,
					     .client_id = "bench", .remote_addr = "127.0.0.1"};
		double t0 = now_s();
		int rc = salus_audit_record(r->au, &rq, NULL);
		r->lat_us[a->t * r->per + i] = (now_s() - t0) * 1e6;
		if (rc) {
			pthread_mutex_lock(&r->mu);
			r->errors++;
			pthread_mutex_unlock(&r->mu);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char dir[256], db[300], key[300];
	int events = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 100000;
	int threads = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 64;
	struct salus_store *st = NULL;
	struct salus_store_opts so = {.create = true, .audit_journal = true,
				      .audit_flush_ms = getenv("SALUS_SPEED_FLUSH_MS") ? atoi(getenv("SALUS_SPEED_FLUSH_MS")) : 0};
	struct salus_audit_opts ao = {0};
	struct run r = {0};
	pthread_t *th;
	struct arg *args;
	double t0, dt;
	int rc;

	mallopt(M_MMAP_THRESHOLD, 4 << 20); /* as cmd_serve.c */
	mallopt(M_TRIM_THRESHOLD, 16 << 20);
	salus_alloc_install();
	salus_store_global_init();
	if (argc > 1 && argv[1][0]) {
		snprintf(dir, sizeof dir, "%s", argv[1]);
	} else {
		snprintf(dir, sizeof dir, "/tmp/salus-audit-speed-XXXXXX");
		if (!mkdtemp(dir))
			return 1;
	}
	snprintf(db, sizeof db, "%s/salus.db", dir);
	snprintf(key, sizeof key, "%s/audit.key", dir);
	if ((rc = salus_audit_key_create(key)) && rc != SALUS_EEXISTS)
		return fprintf(stderr, "key: %s\n", salus_err_name(rc)), 1;
	static const struct salus_page_key pk = {.id = 1, .key = {1, 2, 3, 4, 5, 6, 7, 8}};
	if (getenv("SALUS_SPEED_ENCRYPT") && *getenv("SALUS_SPEED_ENCRYPT")) { /* as the server runs: every page sealed (docs/security.md) */
		so.page_keys = &pk;
		so.npage_keys = 1;
		so.page_key_id = 1;
	}
	if ((rc = salus_store_open(db, &so, &st)))
		return fprintf(stderr, "open: %s\n", salus_err_name(rc)), 1;
	ao.key_path = key;
	if ((rc = salus_audit_new(st, &ao, &r.au)))
		return fprintf(stderr, "audit: %s\n", salus_err_name(rc)), 1;
	r.per = events / threads;
	r.lat_us = calloc((size_t)r.per * (size_t)threads, sizeof *r.lat_us);
	pthread_mutex_init(&r.mu, NULL);
	th = calloc((size_t)threads, sizeof *th);
	args = calloc((size_t)threads, sizeof *args);
	t0 = now_s();
	double c0 = cpu_s();
	bool journal = argc > 4 && !strcmp(argv[4], "journal");
	r.rate = journal && argc > 5 ? strtod(argv[5], NULL) : 0;
	r.threads = threads;
	r.null = getenv("SALUS_SPEED_NULL") != NULL;
	for (int i = 0; i < threads; i++) {
		args[i] = (struct arg){.r = &r, .t = i};
		pthread_create(&th[i], NULL, journal ? journal_worker : worker, &args[i]);
	}
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	if (journal && salus_store_audit_settle(st))
		r.errors++;
	dt = now_s() - t0;
	double cpu = cpu_s() - c0;
	size_t total = (size_t)r.per * (size_t)threads;
	qsort(r.lat_us, total, sizeof *r.lat_us, cmp);
	printf("audit_speed: %zu events from %d threads%s in %.2f s = %.0f events/s durable; errors %d\n", total, threads,
	       journal ? " (journal)" : "", dt, total / dt, r.errors);
	printf("latency p50 %.0f us, p99 %.0f us; CPU %.2f us per event (all threads)\n", r.lat_us[total / 2],
	       r.lat_us[total * 99 / 100], cpu * 1e6 / (double)total);
	t0 = now_s();
	struct salus_audit_cp cp = {0};
	rc = salus_audit_checkpoint(r.au, &cp);
	printf("checkpoint at size %lld: %.2f ms (%s)\n", (long long)cp.size, (now_s() - t0) * 1e3, salus_err_name(rc));
	salus_audit_cp_release(&cp);
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	size_t np;
	t0 = now_s();
	for (int i = 0; i < 1000; i++)
		salus_audit_prove_inclusion(st, (int64_t)(i * 7919) % (int64_t)total, (int64_t)total, proof, &np);
	printf("inclusion proof at size %zu: %.1f us each (%zu nodes)\n", total, (now_s() - t0) * 1e3, np);
	salus_audit_free(r.au);
	salus_store_free(st);
	free(r.lat_us);
	free(th);
	free(args);
	return r.errors ? 1 : 0;
}
