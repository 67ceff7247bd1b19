/*
 * test_store_sync.c — durability off the writer's path (store_sqlite.c, docs/store.md
 * "Durability off the writer's path"): the writer commits with synchronous=NORMAL and the
 * syncer fdatasyncs the resource WAL before it wakes a group's callers.  Checked through the
 * test seam salus_sq_sync_hook (store_sqlite_int.h), which sees every such sync:
 *   - a caller is not answered while the sync of its group is held back, and is once it is done;
 *   - every acknowledged write of 8 concurrent threads had a sync start after it was submitted,
 *     and groups share syncs;
 *   - a write with audit events: the audit WAL is synced before the resource COMMIT (the write
 *     is not visible yet when the audit sync runs);
 *   - a failed sync (resource or audit WAL) fails its callers and every later write (fail
 *     closed) while reads go on; a new open works again; an audit sync failure leaves no write;
 *   - a group whose jobs run without savepoints, one of which fails, runs again with them: only
 *     the failing jobs fail;
 *   - a process that dies right after acknowledged writes (no close) loses none of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/err.h"
#include "store/store.h"
#include "store/store_sqlite_int.h"

struct fx {
	char dir[64];
	char uri[140];
};

/* what the hook does and saw */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool hold;       /* resource syncs wait while set */
	int fail_res;    /* fail the next n resource syncs */
	int fail_audit;  /* fail the next n audit syncs */
	struct salus_store *s;
	const char *probe_id; /* on an audit sync: is this Patient readable yet? */
	int probe_seen;       /* -1: not probed; 0: not there; 1: there */
} hk = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};
static atomic_long res_syncs, audit_syncs;

static int hook(void *ctx, bool audit)
{
	(void)ctx;
	int rc = 0;
	if (audit) {
		atomic_fetch_add(&audit_syncs, 1);
		if (hk.probe_id) {
			struct salus_resource r = {0};
			hk.probe_seen = salus_store_read(hk.s, "Patient", hk.probe_id, 0, &r) == SALUS_OK;
			salus_resource_release(&r);
		}
		pthread_mutex_lock(&hk.mu);
		if (hk.fail_audit > 0) {
			hk.fail_audit--;
			rc = 1;
		}
		pthread_mutex_unlock(&hk.mu);
		return rc;
	}
	atomic_fetch_add(&res_syncs, 1);
	pthread_mutex_lock(&hk.mu);
	pthread_cond_broadcast(&hk.cv); /* "a sync has started" */
	while (hk.hold)
		pthread_cond_wait(&hk.cv, &hk.mu);
	if (hk.fail_res > 0) {
		hk.fail_res--;
		rc = 1;
	}
	pthread_mutex_unlock(&hk.mu);
	return rc;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-sync-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->uri, sizeof f->uri, "sqlite:%s/salus.db", f->dir);
	hk.hold = false;
	hk.fail_res = hk.fail_audit = 0;
	hk.probe_id = NULL;
	hk.probe_seen = -1;
	hk.s = NULL;
	atomic_store(&res_syncs, 0);
	atomic_store(&audit_syncs, 0);
	salus_sq_sync_hook = hook;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];
	salus_sq_sync_hook = NULL;
	snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static struct salus_store *open_store(struct fx *f)
{
	struct salus_store_opts o = {.create = true, .readers = 2};
	struct salus_store *s = NULL;
	assert_int_equal(salus_store_open(f->uri, &o, &s), SALUS_OK);
	hk.s = s;
	return s;
}

/* A CREATE of a Patient with id (NULL: the store picks one); returns the write's status. */
static int create(struct salus_store *s, const char *id)
{
	struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = "Patient", .id = id};
	w.resource = json_pack("{s:s, s:b}", "resourceType", "Patient", "active", 1);
	int rc = salus_store_write(s, &w, 1);
	if (rc)
		assert_int_equal(w.rc, rc);
	salus_write_release(&w);
	json_decref(w.resource);
	return rc;
}

static int create_audited(struct salus_store *s, const char *id)
{
	struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = "Patient", .id = id};
	static const char pre[] = "{\"resourceType\":\"AuditEvent\",\"id\":\"", post[] = "\"}";
	struct salus_audit_entry e = {.pre = pre, .pre_n = sizeof pre - 1, .post = post, .post_n = sizeof post - 1,
				      .ts_ms = 1};
	w.resource = json_pack("{s:s}", "resourceType", "Patient");
	int rc = salus_store_write_audited(s, &w, 1, &e, 1);
	salus_write_release(&w);
	json_decref(w.resource);
	return rc;
}

static bool exists(struct salus_store *s, const char *id)
{
	struct salus_resource r = {0};
	int rc = salus_store_read(s, "Patient", id, 0, &r);
	salus_resource_release(&r);
	assert_true(rc == SALUS_OK || rc == SALUS_ENOTFOUND);
	return rc == SALUS_OK;
}

struct writer_arg {
	struct salus_store *s;
	const char *id;
	atomic_int done;
	int rc;
};

static void *one_write(void *arg)
{
	struct writer_arg *a = arg;
	a->rc = create(a->s, a->id);
	atomic_store(&a->done, 1);
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void test_ack_waits_for_sync(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);
	struct writer_arg a = {.s = s, .id = "held"};
	pthread_t t;

	assert_int_equal(create(s, "first"), SALUS_OK);
	long before = atomic_load(&res_syncs);
	assert_true(before >= 1); /* the pipeline is on: the first write went through the syncer */
	pthread_mutex_lock(&hk.mu);
	hk.hold = true;
	pthread_mutex_unlock(&hk.mu);
	assert_int_equal(pthread_create(&t, NULL, one_write, &a), 0);
	pthread_mutex_lock(&hk.mu);
	while (atomic_load(&res_syncs) == before)
		pthread_cond_wait(&hk.cv, &hk.mu);
	pthread_mutex_unlock(&hk.mu);
	/* its group is committed and its sync is held back: no answer yet */
	sleep_ms(150);
	assert_int_equal(atomic_load(&a.done), 0);
	pthread_mutex_lock(&hk.mu);
	hk.hold = false;
	pthread_cond_broadcast(&hk.cv);
	pthread_mutex_unlock(&hk.mu);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(a.rc, SALUS_OK);
	assert_true(exists(s, "held"));
	salus_store_free(s);
}

#define THREADS 8
#define PER_THREAD 100

struct many_arg {
	struct salus_store *s;
	int k;
	int bad; /* acknowledged writes with no sync started after their submission */
	int failed;
};

static void *many_writes(void *arg)
{
	struct many_arg *a = arg;
	char id[32];
	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(id, sizeof id, "t%d-%d", a->k, i);
		long before = atomic_load(&res_syncs);
		int rc = i % 4 == 3 ? create_audited(a->s, id) : create(a->s, id);
		if (rc)
			a->failed++;
		else if (atomic_load(&res_syncs) <= before)
			a->bad++;
	}
	return NULL;
}

static void test_concurrent_acks_follow_a_sync(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);
	struct many_arg a[THREADS];
	pthread_t t[THREADS];
	long total;

	for (int k = 0; k < THREADS; k++) {
		a[k] = (struct many_arg){.s = s, .k = k};
		assert_int_equal(pthread_create(&t[k], NULL, many_writes, &a[k]), 0);
	}
	for (int k = 0; k < THREADS; k++) {
		assert_int_equal(pthread_join(t[k], NULL), 0);
		assert_int_equal(a[k].failed, 0);
		assert_int_equal(a[k].bad, 0);
	}
	assert_int_equal(salus_store_count(s, "Patient", &total), SALUS_OK);
	assert_int_equal(total, THREADS * PER_THREAD);
	/* the audited writes' groups synced the audit WAL; syncs are shared by groups */
	assert_true(atomic_load(&audit_syncs) >= 1);
	assert_true(atomic_load(&res_syncs) <= THREADS * PER_THREAD);
	salus_store_free(s);
}

static void test_audit_synced_first(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);

	hk.probe_id = "audited";
	assert_int_equal(create_audited(s, "audited"), SALUS_OK);
	assert_int_equal(hk.probe_seen, 0); /* the audit sync ran before the resource COMMIT */
	assert_true(atomic_load(&audit_syncs) >= 1);
	hk.probe_id = NULL;
	assert_true(exists(s, "audited"));
	int64_t size = 0;
	assert_int_equal(salus_store_audit_size(s, &size), SALUS_OK);
	assert_int_equal(size, 1);
	salus_store_free(s);
}

static void test_sync_failure_fails_closed(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);
	char *v = NULL;

	assert_int_equal(create(s, "kept"), SALUS_OK);
	hk.fail_res = 1;
	assert_int_equal(create(s, "lost"), SALUS_EIO);
	/* every later write fails, whatever its kind, though the syncs would work again */
	assert_int_equal(hk.fail_res, 0);
	assert_int_equal(create(s, "after"), SALUS_EIO);
	assert_int_equal(salus_store_kv_put(s, "t", "k", "v", 1), SALUS_EIO);
	assert_int_equal(create_audited(s, "after2"), SALUS_EIO);
	/* reads go on */
	assert_true(exists(s, "kept"));
	assert_false(exists(s, "after"));
	assert_int_equal(salus_store_kv_get(s, "t", "k", &v, NULL), SALUS_ENOTFOUND);
	salus_store_free(s);

	/* a new open writes again; the failed write's outcome is unknown (its frames may be
	 * in the file, as after a failed fsync at COMMIT): only what came after is checked */
	s = open_store(f);
	assert_true(exists(s, "kept"));
	assert_false(exists(s, "after"));
	assert_int_equal(create(s, "after"), SALUS_OK);
	assert_true(exists(s, "after"));
	salus_store_free(s);
}

static void test_audit_sync_failure(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);

	hk.fail_audit = 1;
	assert_int_equal(create_audited(s, "never"), SALUS_EIO);
	assert_false(exists(s, "never")); /* the resource COMMIT did not happen */
	assert_int_equal(create(s, "plain"), SALUS_EIO); /* closed */
	salus_store_free(s);
	s = open_store(f);
	assert_false(exists(s, "never"));
	assert_int_equal(create_audited(s, "now"), SALUS_OK);
	assert_true(exists(s, "now"));
	salus_store_free(s);
}

/* A writer job that holds the writer until released, so the next jobs queue up into one group. */
static atomic_int gate_in, gate_open;
static int hold_writer(void *ctx, sqlite3 *db)
{
	(void)ctx;
	(void)db;
	atomic_store(&gate_in, 1);
	while (!atomic_load(&gate_open))
		sleep_ms(1);
	return SALUS_OK;
}

static void *hold_thread(void *arg)
{
	salus_sq_writer_call(arg, hold_writer, NULL);
	return NULL;
}

struct group_arg {
	struct salus_store *s;
	const char *id;
	long if_match; /* UPDATE when set */
	int rc;
	long version;
	char id_out[SALUS_MAX_ID + 1];
};

static void *group_write(void *arg)
{
	struct group_arg *a = arg;
	struct salus_write w = {.kind = a->if_match ? SALUS_WRITE_UPDATE : SALUS_WRITE_CREATE, .type = "Patient",
				.id = a->id, .if_match = a->if_match};
	w.resource = json_pack("{s:s}", "resourceType", "Patient");
	a->rc = salus_store_write(a->s, &w, 1);
	a->version = w.version;
	memcpy(a->id_out, w.id_out, sizeof a->id_out);
	salus_write_release(&w);
	json_decref(w.resource);
	return NULL;
}

/* Jobs of one group run without savepoints first; when one of them fails, the group is rolled
 * back and run again with a savepoint per job: only the failing jobs fail, the others commit with
 * their own results. */
static void test_group_with_failing_jobs(void **state)
{
	struct fx *f = *state;
	struct salus_store *s = open_store(f);
	struct group_arg a[6] = {
		{.id = "g1"}, {.id = "dup"}, {.id = NULL}, {.id = "old", .if_match = 7}, {.id = "old", .if_match = 1},
		{.id = "g2"},
	};
	pthread_t hold, t[6];

	assert_int_equal(create(s, "dup"), SALUS_OK);
	assert_int_equal(create(s, "old"), SALUS_OK);
	atomic_store(&gate_in, 0);
	atomic_store(&gate_open, 0);
	assert_int_equal(pthread_create(&hold, NULL, hold_thread, s), 0);
	while (!atomic_load(&gate_in))
		sleep_ms(1);
	for (int i = 0; i < 6; i++) {
		a[i].s = s;
		assert_int_equal(pthread_create(&t[i], NULL, group_write, &a[i]), 0);
		sleep_ms(20); /* queued in this order */
	}
	atomic_store(&gate_open, 1);
	assert_int_equal(pthread_join(hold, NULL), 0);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pthread_join(t[i], NULL), 0);
	assert_int_equal(a[0].rc, SALUS_OK);
	assert_int_equal(a[1].rc, SALUS_EEXISTS);
	assert_int_equal(a[2].rc, SALUS_OK);
	assert_int_equal(a[3].rc, SALUS_EPRECONDITION);
	assert_int_equal(a[4].rc, SALUS_OK);
	assert_int_equal(a[4].version, 2);
	assert_int_equal(a[5].rc, SALUS_OK);
	assert_int_equal(a[0].version, 1);
	assert_true(exists(s, "g1"));
	assert_true(exists(s, "g2"));
	assert_true(a[2].id_out[0] && exists(s, a[2].id_out));
	struct salus_resource r = {0};
	assert_int_equal(salus_store_read(s, "Patient", "old", 0, &r), SALUS_OK);
	assert_int_equal(r.version, 2);
	salus_resource_release(&r);
	long total = 0;
	assert_int_equal(salus_store_count(s, "Patient", &total), SALUS_OK);
	assert_int_equal(total, 5); /* dup, old, g1, the server-assigned one, g2 */
	salus_store_free(s);
}

/* A child writes, reports each acknowledged id through a pipe, and dies without closing while
 * more writes are in flight; everything it was told is durable is there after a new open. */
static void test_acked_survive_process_death(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe(p), 0);
	salus_sq_sync_hook = NULL;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(p[0]);
		struct salus_store_opts o = {.create = true, .readers = 2};
		struct salus_store *s = NULL;
		if (salus_store_open(f->uri, &o, &s))
			_exit(2);
		for (int i = 0;; i++) {
			char id[16];
			snprintf(id, sizeof id, "c%d", i);
			if ((i % 3 == 2 ? create_audited(s, id) : create(s, id)) != SALUS_OK)
				_exit(3);
			if (write(p[1], &i, sizeof i) != sizeof i)
				_exit(4);
		}
	}
	close(p[1]);
	int last = -1, i;
	while (last < 200 && read(p[0], &i, sizeof i) == sizeof i)
		last = i;
	kill(pid, SIGKILL);
	int ws = 0;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	assert_true(WIFSIGNALED(ws));
	while (read(p[0], &i, sizeof i) == sizeof i)
		last = i;
	close(p[0]);
	assert_true(last >= 200);

	salus_sq_sync_hook = hook;
	struct salus_store *s = open_store(f);
	for (i = 0; i <= last; i++) {
		char id[16];
		snprintf(id, sizeof id, "c%d", i);
		assert_true(exists(s, id));
	}
	assert_int_equal(create(s, "after-crash"), SALUS_OK);
	salus_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ack_waits_for_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_acks_follow_a_sync, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_synced_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure_fails_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_sync_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_with_failing_jobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_acked_survive_process_death, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
