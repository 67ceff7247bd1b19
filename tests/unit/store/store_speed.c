/*
 * store_speed.c — throughput of the store (built, not a ctest).
 *
 *   store_speed [--encrypt | --compare] [--patient-keys] [DIR] [CREATES] [THREADS]
 *
 * Opens a fresh SQLite store in DIR (default: a new /tmp directory), runs
 * CREATES durable creates (default 20000) from THREADS client threads (default
 * 32), then reads by id from 1 thread per core and from THREADS threads for
 * two seconds each.  Prints creates/s, per-create latency p50/p99 and reads/s.
 * --encrypt uses the page-encrypting VFS (docs/security.md); --compare runs
 * plaintext then encrypted in the same process and prints the ratios.
 * --patient-keys (crypto-shredding, docs/security.md): every Patient body is
 * also sealed under its own patient key (keys/patient-keys.db in DIR; each
 * create is a new patient, so a new key: the worst case); with --compare it
 * runs page-encrypted without, then with, patient keys.  --per-patient N:
 * each thread creates a Patient then N Observations of it (the usual shape
 * of clinical data: one new key per N + 1 writes).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"

struct run {
	struct salus_store *s;
	int n;                              /* creates per thread */
	int nthreads;
	char (*ids)[SALUS_MAX_ID + 1];     /* all created ids */
	bool *obs;                          /* created as an Observation (--per-patient) */
	double *lat_us;                     /* per create */
	volatile int stop;
	long reads;
	int errors;
	pthread_mutex_t mu;
};

struct arg {
	struct run *r;
	int t;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static json_t *sample(int i)
{
	/* about 600 bytes, a typical small Patient */
	return json_pack("{s:s, s:[{s:s, s:s, s:s}], s:[{s:s, s:s, s:[s,s]}], s:s, s:s,"
			 " s:[{s:s, s:s, s:s}], s:[{s:[s], s:s, s:s, s:s, s:s}]}",
			 "resourceType", "Patient", "identifier", "system", "http://hospital.example/mrn", "value",
			 "MRN-000000", "use", "usual", "name", "use", "official", "family", i % 2 ? "Chalmers" : "Windsor",
			 "given", "Peter", "James", "gender", "male", "birthDate", "1974-12-25", "telecom", "system",
			 "phone", "value", "(03) 5555 6473", "use", "work", "address", "line", "534 Erewhon St", "city",
			 "PleasantVille", "state", "Vic", "postalCode", "3999", "country", "AU");
}

static int per_patient; /* --per-patient N: N Observations of each Patient created (0: Patients only) */

static json_t *sample_obs(const char *pid)
{
	char ref[SALUS_MAX_ID + 16];
	snprintf(ref, sizeof ref, "Patient/%s", pid);
	return json_pack("{s:s, s:s, s:{s:[{s:s, s:s, s:s}]}, s:{s:s}, s:s, s:{s:f, s:s, s:s, s:s}}", "resourceType",
			 "Observation", "status", "final", "code", "coding", "system", "http://loinc.org", "code",
			 "29463-7", "display", "Body weight", "subject", "reference", ref, "effectiveDateTime",
			 "2024-05-01T10:00:00Z", "valueQuantity", "value", 71.5, "unit", "kg", "system",
			 "http://unitsofmeasure.org", "code", "kg");
}

static void *creator(void *p)
{
	struct arg *a = p;
	struct run *r = a->r;
	char pid[SALUS_MAX_ID + 1] = "";
	for (int i = 0; i < r->n; i++) {
		int k = a->t * r->n + i;
		bool obs = per_patient && i % (per_patient + 1) != 0 && pid[0];
		struct salus_ix ix = {.patient = pid};
		struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = obs ? "Observation" : "Patient",
					.resource = obs ? sample_obs(pid) : sample(k), .index = obs ? &ix : NULL};
		r->obs[k] = obs;
		double t0 = now_s();
		int rc = salus_store_write(r->s, &w, 1);
		r->lat_us[k] = (now_s() - t0) * 1e6;
		if (rc) {
			pthread_mutex_lock(&r->mu);
			r->errors++;
			pthread_mutex_unlock(&r->mu);
		}
		memcpy(r->ids[k], w.id_out, sizeof w.id_out);
		if (!obs)
			memcpy(pid, w.id_out, sizeof w.id_out);
		salus_write_release(&w);
		json_decref(w.resource);
	}
	return NULL;
}

static void *reader(void *p)
{
	struct arg *a = p;
	struct run *r = a->r;
	unsigned seed = (unsigned)a->t * 7919u + 1;
	long total = r->n * r->nthreads, done = 0;
	while (!r->stop) {
		struct salus_resource res;
		int k = (int)(rand_r(&seed) % (unsigned)total);
		if (salus_store_read(r->s, r->obs[k] ? "Observation" : "Patient", r->ids[k], 0, &res) == SALUS_OK)
			salus_resource_release(&res);
		else
			r->errors++;
		done++;
	}
	pthread_mutex_lock(&r->mu);
	r->reads += done;
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;
	return (a > b) - (a < b);
}

static double read_phase(struct run *r, int threads, double secs)
{
	pthread_t th[256];
	struct arg args[256];
	double t0;
	r->stop = 0;
	r->reads = 0;
	t0 = now_s();
	for (int t = 0; t < threads; t++) {
		args[t] = (struct arg){r, t};
		pthread_create(&th[t], NULL, reader, &args[t]);
	}
	usleep((useconds_t)(secs * 1e6));
	r->stop = 1;
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	return r->reads / (now_s() - t0);
}

/* One measurement on a fresh store in dir: creates/s, reads/s (cores threads), reads/s (threads). */
static int run_once(const char *dir, int creates, int threads, bool encrypt, bool pkeys, bool keep, double out[3])
{
	/* fixed test keys: this tool measures, it protects nothing */
	static const struct salus_page_key key = {.id = 1, .key = {1, 2, 3, 4, 5, 6, 7, 8}};
	static const struct salus_page_key pwk = {.id = 1, .key = {9, 10, 11, 12}};
	char uri[300], pkpath[300];
	const char *label = pkeys ? "patient-keys" : encrypt ? "encrypted" : "plaintext";
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	struct run r = {.nthreads = threads};
	struct salus_store_opts o = {.create = true};
	pthread_t th[256];
	struct arg args[256];
	double t0, secs;
	int rc;

	if (encrypt) {
		o.page_keys = &key;
		o.npage_keys = 1;
		o.page_key_id = 1;
	}
	if (pkeys) {
		snprintf(pkpath, sizeof pkpath, "%s/speed-patient-keys.db", dir);
		o.patient_keys = pkpath;
		o.pwks = &pwk;
		o.npwks = 1;
	}
	snprintf(uri, sizeof uri, "sqlite:%s/speed%s.db", dir, pkeys ? "-pk" : encrypt ? "-enc" : "");
	if ((rc = salus_store_open(uri, &o, &r.s))) {
		fprintf(stderr, "open: %s\n", salus_err_name(rc));
		return 1;
	}
	r.n = creates / threads;
	r.ids = calloc((size_t)(r.n * threads), sizeof *r.ids);
	r.lat_us = calloc((size_t)(r.n * threads), sizeof *r.lat_us);
	r.obs = calloc((size_t)(r.n * threads), sizeof *r.obs);
	pthread_mutex_init(&r.mu, NULL);

	t0 = now_s();
	for (int t = 0; t < threads; t++) {
		args[t] = (struct arg){&r, t};
		pthread_create(&th[t], NULL, creator, &args[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	secs = now_s() - t0;
	qsort(r.lat_us, (size_t)(r.n * threads), sizeof *r.lat_us, cmp_d);
	out[0] = r.n * threads / secs;
	printf("[%s] creates: %d in %.2f s = %.0f creates/s (%d threads, %ld cores), latency p50 %.0f us p99 %.0f us, "
	       "errors %d\n",
	       label, r.n * threads, secs, out[0], threads, cores,
	       r.lat_us[r.n * threads / 2], r.lat_us[r.n * threads * 99 / 100], r.errors);
	out[1] = read_phase(&r, (int)cores, 2.0);
	printf("[%s] reads: %.0f reads/s (%ld threads)\n", label, out[1], cores);
	out[2] = read_phase(&r, threads, 2.0);
	printf("[%s] reads: %.0f reads/s (%d threads)\n", label, out[2], threads);
	printf("[%s] read errors: %d\n", label, r.errors);

	salus_store_free(r.s);
	free(r.ids);
	free(r.lat_us);
	free(r.obs);
	if (!keep) {
		char p[320];
		const char *sfx[] = {"", "-wal", "-shm"};
		for (int i = 0; i < 3; i++) {
			snprintf(p, sizeof p, "%s/speed%s.db%s", dir, pkeys ? "-pk" : encrypt ? "-enc" : "", sfx[i]);
			unlink(p);
		}
		if (pkeys) {
			unlink(pkpath);
			snprintf(p, sizeof p, "%s.lock", pkpath);
			unlink(p);
		}
	}
	return r.errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	char dir[256] = "/tmp/salus-speed-XXXXXX";
	bool encrypt = false, compare = false, pkeys = false;
	char *pos[4] = {0};
	int npos = 0, rc = 0;

	/* flags anywhere: --encrypt (the page-encrypting VFS), --compare (plaintext
	 * then encrypted in the same run, with the ratios) */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--encrypt"))
			encrypt = true;
		else if (!strcmp(argv[i], "--compare"))
			compare = true;
		else if (!strcmp(argv[i], "--patient-keys"))
			pkeys = true;
		else if (!strcmp(argv[i], "--per-patient") && i + 1 < argc)
			per_patient = (int)strtol(argv[++i], NULL, 10);
		else if (npos < 4)
			pos[npos++] = argv[i];
	}
	int creates = npos > 1 ? (int)strtol(pos[1], NULL, 10) : 20000;
	int threads = npos > 2 ? (int)strtol(pos[2], NULL, 10) : 32;
	if (threads < 1 || threads > 256 || creates < threads) {
		fprintf(stderr, "usage: store_speed [--encrypt|--compare] [DIR] [CREATES>=THREADS] [THREADS<=256]\n");
		return 2;
	}
	if (npos > 0)
		snprintf(dir, sizeof dir, "%s", pos[0]);
	else if (!mkdtemp(dir))
		return 1;
	salus_alloc_install();
	salus_store_global_init();
	double plain[3], enc[3];
	if (compare) {
		rc |= run_once(dir, creates, threads, pkeys, false, npos > 0, plain);
		rc |= run_once(dir, creates, threads, true, pkeys, npos > 0, enc);
		printf("%s / %s: creates %.0f%%, reads %.0f%% (cores threads), reads %.0f%% (%d threads)\n",
		       pkeys ? "patient-keys" : "encrypted", pkeys ? "encrypted" : "plaintext", 100 * enc[0] / plain[0],
		       100 * enc[1] / plain[1], 100 * enc[2] / plain[2], threads);
	} else {
		rc = run_once(dir, creates, threads, encrypt || pkeys, pkeys, npos > 0, encrypt ? enc : plain);
	}
	if (npos == 0)
		rmdir(dir);
	return rc;
}
