/*
 * test_store_contract.c — the contract suite of store.h.
 *
 * Backend-agnostic: it only uses store.h.  Each test opens the store named by
 * SALUS_TEST_STORE_URI if set (e.g. a PostgreSQL database later), else a fresh
 * temporary SQLite file.  Tests write under a random resource type of their
 * own and check store-wide figures (counts, seqs) as deltas, so they also hold
 * on a shared, non-empty database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"

struct fx {
	char dir[64];  /* temporary directory ("" when the URI came from the environment) */
	char uri[128];
	char type[16]; /* this test's resource type */
	struct salus_store *s;
};

/* SALUS_TEST_STORE_KEY (64 hex digits) runs the suite on an encrypted store
 * (page key id 1; docs/security.md).  Sets the key fields of o. */
static void with_test_key(struct salus_store_opts *o)
{
	static struct salus_page_key key;
	static int have = -1;
	if (have < 0) {
		const char *hex = getenv("SALUS_TEST_STORE_KEY");
		have = hex && strlen(hex) == 2 * SALUS_PAGE_KEY_LEN;
		for (size_t i = 0; have && i < SALUS_PAGE_KEY_LEN; i++) {
			unsigned v;
			if (sscanf(hex + 2 * i, "%2x", &v) != 1)
				have = 0;
			key.key[i] = (unsigned char)v;
		}
		key.id = 1;
	}
	if (have) {
		o->page_keys = &key;
		o->npage_keys = 1;
		o->page_key_id = 1;
	}
}

static int fx_open(struct fx *f, bool create)
{
	struct salus_store_opts o = {.create = create, .readers = 4};
	with_test_key(&o);
	return salus_store_open(f->uri, &o, &f->s);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	const char *env = getenv("SALUS_TEST_STORE_URI");
	char uuid[SALUS_UUID_LEN];

	if (!f)
		return -1;
	if (env && *env) {
		snprintf(f->uri, sizeof f->uri, "%s", env);
	} else {
		snprintf(f->dir, sizeof f->dir, "/tmp/salus-store-XXXXXX");
		if (!mkdtemp(f->dir))
			return -1;
		snprintf(f->uri, sizeof f->uri, "sqlite:%s/salus.db", f->dir);
	}
	salus_uuid_new(uuid);
	snprintf(f->type, sizeof f->type, "T%.8s", uuid);
	if (fx_open(f, true))
		return -1;
	*state = f;
	return 0;
}

static void rm_dir(const char *dir)
{
	static const char *const files[] = {"salus.db", "salus.db-wal", "salus.db-shm"};
	char p[128];
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	salus_alloc_fail_at(0, 0);
	salus_store_free(f->s);
	if (f->dir[0])
		rm_dir(f->dir);
	free(f);
	return 0;
}

static json_t *patient(const char *family)
{
	return json_pack("{s:s, s:[{s:s}]}", "resourceType", "Patient", "name", "family", family);
}

/* One CREATE/UPDATE/DELETE; consumes `res`. */
static int write1(struct fx *f, enum salus_write_kind kind, const char *id, json_t *res, long if_match,
		  struct salus_write *w /* OUT */)
{
	int rc;
	memset(w, 0, sizeof *w);
	w->kind = kind;
	w->type = f->type;
	w->id = id;
	w->resource = res;
	w->if_match = if_match;
	rc = salus_store_write(f->s, w, 1);
	json_decref(res);
	return rc;
}

static int64_t last_seq(struct fx *f)
{
	int64_t seq = -1;
	assert_int_equal(salus_store_last_seq(f->s, &seq), SALUS_OK);
	return seq;
}

/* ---- create / read ---- */

static void test_create_read(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	json_t *p = patient("Chalmers"), *doc;
	char instant[SALUS_INSTANT_LEN];
	int64_t before = last_seq(f);

	json_object_set_new(p, "meta", json_pack("{s:[s], s:s}", "profile", "http://example.org/p", "versionId", "99"));
	json_incref(p);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, p, 0, &w), SALUS_OK);
	assert_int_equal(w.rc, SALUS_OK);
	assert_int_equal(strlen(w.id_out), 36); /* a UUID */
	assert_int_equal(w.version, 1);
	assert_true(w.created);
	assert_true(w.seq > before);
	assert_int_equal(last_seq(f), w.seq);
	assert_non_null(w.json);
	assert_int_equal(strlen(w.json), w.len);
	/* the caller's resource now carries id and meta */
	assert_string_equal(json_string_value(json_object_get(p, "id")), w.id_out);
	json_decref(p);

	doc = json_loads(w.json, 0, NULL);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "id")), w.id_out);
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "meta"), "versionId")), "1");
	salus_instant_format(w.updated_ms, instant);
	assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "meta"), "lastUpdated")),
			    instant);
	assert_string_equal(
		json_string_value(json_array_get(json_object_get(json_object_get(doc, "meta"), "profile"), 0)),
		"http://example.org/p");
	json_decref(doc);
	assert_true(llabs(w.updated_ms - salus_now_ms()) < 60000);

	assert_int_equal(salus_store_read(f->s, f->type, w.id_out, 0, &r), SALUS_OK);
	assert_string_equal(r.type, f->type);
	assert_string_equal(r.id, w.id_out);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.seq, w.seq);
	assert_int_equal(r.updated_ms, w.updated_ms);
	assert_false(r.deleted);
	assert_int_equal(r.len, w.len);
	assert_string_equal(r.json, w.json); /* a read gives exactly what was stored */
	salus_resource_release(&r);
	salus_resource_release(&r); /* idempotent */

	assert_int_equal(salus_store_read(f->s, f->type, "nope", 0, &r), SALUS_ENOTFOUND);
	assert_int_equal(salus_store_read(f->s, "Other", w.id_out, 0, &r), SALUS_ENOTFOUND);
	salus_write_release(&w);
}

static void test_create_given_id(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "pat-1", patient("A"), 0, &w), SALUS_OK);
	assert_string_equal(w.id_out, "pat-1");
	assert_int_equal(w.version, 1);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "pat-1", patient("B"), 0, &w), SALUS_EEXISTS);
	assert_int_equal(w.rc, SALUS_EEXISTS);
	assert_null(w.json);
	assert_int_equal(salus_store_read(f->s, f->type, "pat-1", 0, &r), SALUS_OK);
	assert_int_equal(r.version, 1);
	assert_non_null(strstr(r.json, "\"A\""));
	salus_resource_release(&r);
	/* a tombstone still holds its id */
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "pat-1", NULL, 0, &w), SALUS_OK);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "pat-1", patient("C"), 0, &w), SALUS_EEXISTS);
}

/* ---- update / vread / if_match ---- */

static void test_update_vread(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	char id[SALUS_MAX_ID + 1];
	int64_t ms[4], seq[4];

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, patient("v1"), 0, &w), SALUS_OK);
	snprintf(id, sizeof id, "%s", w.id_out);
	ms[1] = w.updated_ms;
	seq[1] = w.seq;
	salus_write_release(&w);
	for (long v = 2; v <= 3; v++) {
		char fam[8];
		snprintf(fam, sizeof fam, "v%ld", v);
		assert_int_equal(write1(f, SALUS_WRITE_UPDATE, id, patient(fam), 0, &w), SALUS_OK);
		assert_int_equal(w.version, v);
		assert_false(w.created);
		assert_string_equal(w.id_out, id);
		ms[v] = w.updated_ms;
		seq[v] = w.seq;
		assert_true(ms[v] > ms[v - 1]); /* version order == time order */
		assert_true(seq[v] > seq[v - 1]);
		salus_write_release(&w);
	}
	for (long v = 1; v <= 3; v++) {
		char fam[16];
		assert_int_equal(salus_store_read(f->s, f->type, id, v, &r), SALUS_OK);
		assert_int_equal(r.version, v);
		assert_int_equal(r.updated_ms, ms[v]);
		assert_int_equal(r.seq, seq[v]);
		snprintf(fam, sizeof fam, "\"v%ld\"", v);
		assert_non_null(strstr(r.json, fam));
		salus_resource_release(&r);
	}
	assert_int_equal(salus_store_read(f->s, f->type, id, 4, &r), SALUS_ENOTFOUND);
	assert_int_equal(salus_store_read(f->s, f->type, id, 0, &r), SALUS_OK);
	assert_int_equal(r.version, 3);
	assert_non_null(strstr(r.json, "\"versionId\":\"3\""));
	salus_resource_release(&r);
}

static void test_if_match(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	int64_t seq;

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "m", patient("a"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "m", patient("b"), 1, &w), SALUS_OK);
	assert_int_equal(w.version, 2);
	salus_write_release(&w);
	seq = last_seq(f);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "m", patient("c"), 1, &w), SALUS_EPRECONDITION);
	assert_int_equal(w.rc, SALUS_EPRECONDITION);
	assert_int_equal(w.version, 0);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "m", NULL, 1, &w), SALUS_EPRECONDITION);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "absent", patient("x"), 1, &w), SALUS_EPRECONDITION);
	assert_int_equal(last_seq(f), seq); /* nothing written */
	assert_int_equal(salus_store_read(f->s, f->type, "absent", 0, &r), SALUS_ENOTFOUND);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "m", NULL, 2, &w), SALUS_OK);
	assert_int_equal(w.version, 3);
}

static void test_update_as_create(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;

	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "client.chosen-1", patient("u"), 0, &w), SALUS_OK);
	assert_true(w.created);
	assert_int_equal(w.version, 1);
	assert_string_equal(w.id_out, "client.chosen-1");
	salus_write_release(&w);
	assert_int_equal(salus_store_read(f->s, f->type, "client.chosen-1", 0, &r), SALUS_OK);
	assert_non_null(strstr(r.json, "\"id\":\"client.chosen-1\""));
	salus_resource_release(&r);
}

/* ---- delete / 410 ---- */

static void test_delete_gone(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	int64_t seq, del_ms;

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "d", patient("a"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "d", NULL, 0, &w), SALUS_OK);
	assert_int_equal(w.version, 2);
	assert_null(w.json);
	assert_false(w.created);
	assert_string_equal(w.id_out, "d");
	del_ms = w.updated_ms;
	seq = last_seq(f);
	assert_int_equal(w.seq, seq);

	memset(&r, 0, sizeof r);
	assert_int_equal(salus_store_read(f->s, f->type, "d", 0, &r), SALUS_EGONE);
	assert_true(r.deleted);
	assert_int_equal(r.version, 2);
	assert_int_equal(r.updated_ms, del_ms);
	assert_string_equal(r.id, "d");
	assert_string_equal(r.type, f->type);
	assert_null(r.json);
	salus_resource_release(&r);
	assert_int_equal(salus_store_read(f->s, f->type, "d", 2, &r), SALUS_EGONE);
	assert_true(r.deleted);
	assert_int_equal(salus_store_read(f->s, f->type, "d", 1, &r), SALUS_OK);
	assert_false(r.deleted);
	salus_resource_release(&r);

	/* deleting again, or deleting what never existed: OK, nothing written */
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "d", NULL, 0, &w), SALUS_OK);
	assert_int_equal(w.version, 2);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "never", NULL, 0, &w), SALUS_OK);
	assert_int_equal(w.version, 0);
	assert_int_equal(last_seq(f), seq);

	/* update after delete: a new version, created again */
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "d", patient("b"), 0, &w), SALUS_OK);
	assert_int_equal(w.version, 3);
	assert_true(w.created);
	assert_true(w.updated_ms > del_ms);
	salus_write_release(&w);
	assert_int_equal(salus_store_read(f->s, f->type, "d", 0, &r), SALUS_OK);
	assert_int_equal(r.version, 3);
	salus_resource_release(&r);
}

/* ---- history ---- */

struct hist {
	int n;
	char id[16][SALUS_MAX_ID + 1];
	long version[16];
	int64_t seq[16];
	int64_t ms[16];
	bool deleted[16];
	bool has_json[16];
	int stop_after; /* 0: never */
};

static int hist_cb(void *ctx, const struct salus_resource *r)
{
	struct hist *h = ctx;
	if (h->n >= 16)
		return -100;
	snprintf(h->id[h->n], sizeof h->id[0], "%s", r->id);
	h->version[h->n] = r->version;
	h->seq[h->n] = r->seq;
	h->ms[h->n] = r->updated_ms;
	h->deleted[h->n] = r->deleted;
	h->has_json[h->n] = r->json != NULL;
	if (r->json)
		assert_int_equal(strlen(r->json), r->len);
	h->n++;
	return h->stop_after && h->n == h->stop_after ? 7 : 0;
}

static void test_history(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct hist h;
	long total;
	int64_t seq0 = last_seq(f), mid_ms;

	/* a: v1 v2 (tombstone) v3 ; b: v1 */
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "a", patient("a1"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "a", NULL, 0, &w), SALUS_OK);
	usleep(5000);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "a", patient("a3"), 0, &w), SALUS_OK);
	mid_ms = w.updated_ms;
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "b", patient("b1"), 0, &w), SALUS_OK);
	salus_write_release(&w);

	/* instance */
	memset(&h, 0, sizeof h);
	struct salus_history_q q = {.type = f->type, .id = "a", .count = 10};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 3);
	assert_int_equal(h.version[0], 3);
	assert_int_equal(h.version[1], 2);
	assert_int_equal(h.version[2], 1);
	assert_true(h.deleted[1]);
	assert_false(h.has_json[1]);
	assert_true(h.has_json[0] && h.has_json[2]);
	assert_true(h.seq[0] > h.seq[1] && h.seq[1] > h.seq[2]);
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	assert_int_equal(total, 3);

	/* type level, paged by 2 */
	memset(&h, 0, sizeof h);
	q = (struct salus_history_q){.type = f->type, .count = 2};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 2);
	assert_string_equal(h.id[0], "b");
	assert_string_equal(h.id[1], "a");
	assert_int_equal(h.version[1], 3);
	q.before_seq = h.seq[1];
	memset(&h, 0, sizeof h);
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 2);
	assert_int_equal(h.version[0], 2);
	assert_int_equal(h.version[1], 1);
	q.before_seq = h.seq[1];
	memset(&h, 0, sizeof h);
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 0);
	q.before_seq = 0;
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	assert_int_equal(total, 4);

	/* since: only a v3 and b v1 */
	memset(&h, 0, sizeof h);
	q = (struct salus_history_q){.type = f->type, .since_ms = mid_ms, .count = 10};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 2);
	assert_true(h.ms[0] >= mid_ms && h.ms[1] >= mid_ms);
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	assert_int_equal(total, 2);
	q.since_ms = salus_now_ms() + 3600 * 1000;
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	assert_int_equal(total, 0);

	/* system level with a snapshot: writes after at_most_seq are invisible */
	int64_t snap = last_seq(f);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "c", patient("c1"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	memset(&h, 0, sizeof h);
	q = (struct salus_history_q){.at_most_seq = snap, .count = 10};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_OK);
	assert_true(h.n >= 4);
	assert_int_equal(h.seq[0], snap);
	assert_string_equal(h.id[0], "b");
	q = (struct salus_history_q){.count = 10};
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	q.at_most_seq = snap;
	long snap_total;
	assert_int_equal(salus_store_history_count(f->s, &q, &snap_total), SALUS_OK);
	assert_int_equal(total, snap_total + 1);
	q.at_most_seq = 0;
	q.before_seq = seq0 + 1; /* everything before this test */
	assert_int_equal(salus_store_history_count(f->s, &q, &total), SALUS_OK);
	assert_int_equal(total, snap_total + 1); /* count ignores paging */

	/* early stop returns the callback's value */
	memset(&h, 0, sizeof h);
	h.stop_after = 1;
	q = (struct salus_history_q){.type = f->type, .count = 10};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), 7);
	assert_int_equal(h.n, 1);

	/* bad queries */
	q = (struct salus_history_q){.type = f->type, .count = 0};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_EINVALID);
	q = (struct salus_history_q){.id = "a", .count = 1};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_EINVALID);
	q = (struct salus_history_q){.type = f->type, .count = 1, .before_seq = -1};
	assert_int_equal(salus_store_history(f->s, &q, hist_cb, &h), SALUS_EINVALID);
}

/* ---- atomic multi-op ---- */

static void test_atomic(void **state)
{
	struct fx *f = *state;
	struct salus_write ops[3];
	struct salus_resource r;
	json_t *p0 = patient("x"), *p1 = patient("y"), *p2 = patient("z");
	int64_t seq = last_seq(f);

	memset(ops, 0, sizeof ops);
	ops[0] = (struct salus_write){.kind = SALUS_WRITE_CREATE, .type = f->type, .id = "x", .resource = p0};
	ops[1] = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = f->type, .id = "y", .resource = p1,
				      .if_match = 5};
	ops[2] = (struct salus_write){.kind = SALUS_WRITE_CREATE, .type = f->type, .resource = p2};
	assert_int_equal(salus_store_write(f->s, ops, 3), SALUS_EPRECONDITION);
	assert_int_equal(ops[0].rc, SALUS_OK); /* rolled back, results cleared */
	assert_int_equal(ops[0].version, 0);
	assert_null(ops[0].json);
	assert_int_equal(ops[1].rc, SALUS_EPRECONDITION);
	assert_int_equal(ops[2].rc, SALUS_OK);
	assert_int_equal(ops[2].version, 0);
	assert_int_equal(salus_store_read(f->s, f->type, "x", 0, &r), SALUS_ENOTFOUND);
	assert_int_equal(last_seq(f), seq);

	/* second op fails with EEXISTS: first not applied */
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "taken", patient("t"), 0, &ops[0]), SALUS_OK);
	salus_write_release(&ops[0]);
	ops[0] = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = f->type, .id = "x", .resource = p0};
	ops[1] = (struct salus_write){.kind = SALUS_WRITE_CREATE, .type = f->type, .id = "taken", .resource = p1};
	assert_int_equal(salus_store_write(f->s, ops, 2), SALUS_EEXISTS);
	assert_int_equal(ops[1].rc, SALUS_EEXISTS);
	assert_int_equal(salus_store_read(f->s, f->type, "x", 0, &r), SALUS_ENOTFOUND);

	/* all good: ops see each other's effects in order */
	ops[0] = (struct salus_write){.kind = SALUS_WRITE_CREATE, .type = f->type, .id = "x", .resource = p0};
	ops[1] = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = f->type, .id = "x", .resource = p1,
				      .if_match = 1};
	ops[2] = (struct salus_write){.kind = SALUS_WRITE_DELETE, .type = f->type, .id = "taken"};
	assert_int_equal(salus_store_write(f->s, ops, 3), SALUS_OK);
	assert_int_equal(ops[0].version, 1);
	assert_int_equal(ops[1].version, 2);
	assert_int_equal(ops[2].version, 2);
	assert_true(ops[0].seq < ops[1].seq && ops[1].seq < ops[2].seq);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(ops[i].rc, SALUS_OK);
		salus_write_release(&ops[i]);
	}
	assert_int_equal(salus_store_read(f->s, f->type, "x", 0, &r), SALUS_OK);
	assert_int_equal(r.version, 2);
	salus_resource_release(&r);
	assert_int_equal(salus_store_read(f->s, f->type, "taken", 0, &r), SALUS_EGONE);

	/* an invalid op is refused before anything is queued */
	ops[0] = (struct salus_write){.kind = SALUS_WRITE_CREATE, .type = f->type, .resource = p0};
	ops[1] = (struct salus_write){.kind = SALUS_WRITE_UPDATE, .type = f->type, .id = "bad id!", .resource = p1};
	assert_int_equal(salus_store_write(f->s, ops, 2), SALUS_EINVALID);
	assert_int_equal(ops[1].rc, SALUS_EINVALID);
	assert_int_equal(ops[0].version, 0);
	json_decref(p0);
	json_decref(p1);
	json_decref(p2);
}

/* ---- kv ---- */

struct kvs {
	int n;
	char keys[8][16];
	size_t len[8];
};

static int kv_cb(void *ctx, const char *key, const char *val, size_t n)
{
	struct kvs *k = ctx;
	(void)val;
	if (k->n >= 8)
		return -100;
	snprintf(k->keys[k->n], sizeof k->keys[0], "%s", key);
	k->len[k->n++] = n;
	return 0;
}

/* One-time values (salus_store_once_claim): once per live claim, again after expiry, atomic
 * across threads, durable across a reopen. */
struct once_race {
	struct salus_store *s;
	int rc;
};

static void *once_thread(void *arg)
{
	struct once_race *r = arg;
	r->rc = salus_store_once_claim(r->s, "jti", "race", 2000000100, 2000000000);
	return NULL;
}

static void test_once(void **state)
{
	struct fx *f = *state;
	const int64_t now = 2000000000;
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k1", now + 100, now), SALUS_OK);
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k1", now + 100, now), SALUS_EEXISTS);
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k1", now + 300, now + 99), SALUS_EEXISTS);
	assert_int_equal(salus_store_once_claim(f->s, "other", "k1", now + 100, now), SALUS_OK);
	/* an expired claim is as good as none */
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k1", now + 300, now + 100), SALUS_OK);
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k1", now + 300, now + 200), SALUS_EEXISTS);
	/* many expired rows are purged along the way and can all be claimed again */
	char key[32];
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "p%d", i);
		assert_int_equal(salus_store_once_claim(f->s, "jti", key, now + 10, now), SALUS_OK);
	}
	for (int i = 0; i < 200; i++) {
		snprintf(key, sizeof key, "p%d", i);
		assert_int_equal(salus_store_once_claim(f->s, "jti", key, now + 50, now + 20), SALUS_OK);
	}
	/* bad arguments */
	assert_int_equal(salus_store_once_claim(f->s, "jti", "k9", now, now), SALUS_EINVALID);
	assert_int_equal(salus_store_once_claim(f->s, "", "k9", now + 1, now), SALUS_EINVALID);
	assert_int_equal(salus_store_once_claim(f->s, "jti", NULL, now + 1, now), SALUS_EINVALID);
	assert_int_equal(salus_store_once_claim(NULL, "jti", "k9", now + 1, now), SALUS_EINVALID);
	/* concurrent claims of one value: exactly one wins */
	struct once_race r[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		r[i] = (struct once_race){f->s, -1};
		assert_int_equal(pthread_create(&t[i], NULL, once_thread, &r[i]), 0);
	}
	int won = 0;
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		if (r[i].rc == SALUS_OK)
			won++;
		else
			assert_int_equal(r[i].rc, SALUS_EEXISTS);
	}
	assert_int_equal(won, 1);
	/* durable: still claimed after the store is closed and opened again */
	if (f->dir[0]) {
		salus_store_free(f->s);
		f->s = NULL;
		assert_int_equal(fx_open(f, false), SALUS_OK);
		assert_int_equal(salus_store_once_claim(f->s, "jti", "race", now + 100, now), SALUS_EEXISTS);
	}
}

static void test_kv(void **state)
{
	struct fx *f = *state;
	char *v;
	size_t n;
	struct kvs k;
	const char *ns = f->type; /* a namespace of our own */

	assert_int_equal(salus_store_kv_get(f->s, ns, "k1", &v, &n), SALUS_ENOTFOUND);
	assert_int_equal(salus_store_kv_put(f->s, ns, "k2", "{\"a\":1}", 7), SALUS_OK);
	assert_int_equal(salus_store_kv_put(f->s, ns, "k1", "one", 3), SALUS_OK);
	assert_int_equal(salus_store_kv_put(f->s, ns, "k3", "a\0b", 3), SALUS_OK);
	assert_int_equal(salus_store_kv_put(f->s, ns, "k0", NULL, 0), SALUS_OK);
	assert_int_equal(salus_store_kv_get(f->s, ns, "k1", &v, &n), SALUS_OK);
	assert_int_equal(n, 3);
	assert_string_equal(v, "one");
	salus_free(v);
	assert_int_equal(salus_store_kv_put(f->s, ns, "k1", "uno!", 4), SALUS_OK); /* overwrite */
	assert_int_equal(salus_store_kv_get(f->s, ns, "k1", &v, NULL), SALUS_OK);
	assert_string_equal(v, "uno!");
	salus_free(v);
	assert_int_equal(salus_store_kv_get(f->s, ns, "k3", &v, &n), SALUS_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "a\0b", 4); /* binary-safe, NUL-terminated */
	salus_free(v);
	assert_int_equal(salus_store_kv_get(f->s, ns, "k0", &v, &n), SALUS_OK);
	assert_int_equal(n, 0);
	assert_string_equal(v, "");
	salus_free(v);

	memset(&k, 0, sizeof k);
	assert_int_equal(salus_store_kv_list(f->s, ns, kv_cb, &k), SALUS_OK);
	assert_int_equal(k.n, 4);
	assert_string_equal(k.keys[0], "k0");
	assert_string_equal(k.keys[1], "k1");
	assert_string_equal(k.keys[2], "k2");
	assert_string_equal(k.keys[3], "k3");
	assert_int_equal(k.len[2], 7);
	assert_int_equal(k.len[3], 3);

	assert_int_equal(salus_store_kv_del(f->s, ns, "k1"), SALUS_OK);
	assert_int_equal(salus_store_kv_del(f->s, ns, "k1"), SALUS_ENOTFOUND);
	assert_int_equal(salus_store_kv_get(f->s, ns, "k1", &v, &n), SALUS_ENOTFOUND);
	memset(&k, 0, sizeof k);
	assert_int_equal(salus_store_kv_list(f->s, ns, kv_cb, &k), SALUS_OK);
	assert_int_equal(k.n, 3);
	memset(&k, 0, sizeof k);
	assert_int_equal(salus_store_kv_list(f->s, "other-ns-empty", kv_cb, &k), SALUS_OK);
	assert_int_equal(k.n, 0);
	assert_int_equal(salus_store_kv_put(f->s, "", "k", "v", 1), SALUS_EINVALID);
}

/* ---- list / count ---- */

static void test_list_count(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct hist h;
	long total, all0, all1;
	const char *ids[] = {"e", "b", "a", "d", "c"};

	assert_int_equal(salus_store_count(f->s, NULL, &all0), SALUS_OK);
	assert_int_equal(salus_store_count(f->s, f->type, &total), SALUS_OK);
	assert_int_equal(total, 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(write1(f, SALUS_WRITE_CREATE, ids[i], patient(ids[i]), 0, &w), SALUS_OK),
			salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "a", patient("a2"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "c", NULL, 0, &w), SALUS_OK);
	assert_int_equal(salus_store_count(f->s, f->type, &total), SALUS_OK);
	assert_int_equal(total, 4);
	assert_int_equal(salus_store_count(f->s, NULL, &all1), SALUS_OK);
	assert_int_equal(all1, all0 + 4);

	memset(&h, 0, sizeof h);
	assert_int_equal(salus_store_list(f->s, f->type, NULL, 10, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 4);
	assert_string_equal(h.id[0], "a");
	assert_int_equal(h.version[0], 2);
	assert_string_equal(h.id[1], "b");
	assert_string_equal(h.id[2], "d");
	assert_string_equal(h.id[3], "e");
	for (int i = 0; i < 4; i++)
		assert_true(h.has_json[i] && !h.deleted[i]);
	memset(&h, 0, sizeof h);
	assert_int_equal(salus_store_list(f->s, f->type, "b", 1, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 1);
	assert_string_equal(h.id[0], "d");
	memset(&h, 0, sizeof h);
	assert_int_equal(salus_store_list(f->s, f->type, "e", 10, hist_cb, &h), SALUS_OK);
	assert_int_equal(h.n, 0);
	assert_int_equal(salus_store_list(f->s, f->type, NULL, 0, hist_cb, &h), SALUS_EINVALID);
}

/* ---- argument checks ---- */

static void test_invalid(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	char longid[SALUS_MAX_ID + 2];
	struct salus_store *s2 = NULL;

	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = 0;
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, longid, patient("a"), 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "has/slash", patient("a"), 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, NULL, patient("a"), 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "ok", json_array(), 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, NULL, 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, (enum salus_write_kind)42, "ok", patient("a"), 0, &w), SALUS_EINVALID);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, "ok", patient("a"), -1, &w), SALUS_EINVALID);
	assert_int_equal(salus_store_read(f->s, f->type, longid, 0, &r), SALUS_EINVALID);
	assert_int_equal(salus_store_read(f->s, "", "x", 0, &r), SALUS_EINVALID);
	assert_int_equal(salus_store_read(f->s, f->type, "x", -1, &r), SALUS_EINVALID);
	assert_int_equal(salus_store_write(f->s, NULL, 0), SALUS_OK);
	assert_int_equal(salus_store_open("postgres://localhost/x", NULL, &s2), SALUS_EINVALID);
	assert_null(s2);
	if (f->dir[0]) {
		char uri[160];
		snprintf(uri, sizeof uri, "sqlite:%s/missing.db", f->dir);
		assert_int_equal(salus_store_open(uri, NULL, &s2), SALUS_ENOTFOUND);
		snprintf(uri, sizeof uri, "%s/no/such/dir/x.db", f->dir);
		struct salus_store_opts o = {.create = true};
		assert_int_not_equal(salus_store_open(uri, &o, &s2), SALUS_OK);
		assert_null(s2);
	}
	salus_store_free(NULL);
}

/* ---- durability ---- */

static void test_reopen(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct salus_resource r;
	char id[SALUS_MAX_ID + 1], *v;
	int64_t seq, ms;

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, patient("durable"), 0, &w), SALUS_OK);
	snprintf(id, sizeof id, "%s", w.id_out);
	ms = w.updated_ms;
	salus_write_release(&w);
	assert_int_equal(salus_store_kv_put(f->s, f->type, "key", "val", 3), SALUS_OK);
	seq = last_seq(f);

	salus_store_free(f->s);
	f->s = NULL;
	assert_int_equal(fx_open(f, false), SALUS_OK);
	assert_int_equal(last_seq(f), seq);
	assert_int_equal(salus_store_read(f->s, f->type, id, 0, &r), SALUS_OK);
	assert_non_null(strstr(r.json, "durable"));
	assert_int_equal(r.updated_ms, ms);
	salus_resource_release(&r);
	assert_int_equal(salus_store_kv_get(f->s, f->type, "key", &v, NULL), SALUS_OK);
	assert_string_equal(v, "val");
	salus_free(v);
	/* time and seq carry on after a restart */
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, id, patient("again"), 0, &w), SALUS_OK);
	assert_int_equal(w.version, 2);
	assert_true(w.updated_ms > ms);
	assert_true(w.seq > seq);
	salus_write_release(&w);
}

/* ---- concurrency ---- */

#define THREADS 8
#define PER_THREAD 200

struct worker {
	struct fx *f;
	int t;
	int failures;
	int64_t seq[PER_THREAD];
	char id[PER_THREAD][SALUS_MAX_ID + 1];
};

static void *create_worker(void *arg)
{
	struct worker *wk = arg;
	for (int i = 0; i < PER_THREAD; i++) {
		struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = wk->f->type};
		w.resource = patient("c");
		if (salus_store_write(wk->f->s, &w, 1) != SALUS_OK || w.version != 1 || !w.created)
			wk->failures++;
		wk->seq[i] = w.seq;
		memcpy(wk->id[i], w.id_out, sizeof w.id_out);
		salus_write_release(&w);
		json_decref(w.resource);
		if (i % 20 == 0) {
			/* a failing atomic job in the same groups must not hurt the others */
			struct salus_write ops[2] = {
				{.kind = SALUS_WRITE_CREATE, .type = wk->f->type, .resource = patient("x")},
				{.kind = SALUS_WRITE_UPDATE, .type = wk->f->type, .id = "zz", .resource = patient("y"),
				 .if_match = 9},
			};
			if (salus_store_write(wk->f->s, ops, 2) != SALUS_EPRECONDITION)
				wk->failures++;
			json_decref(ops[0].resource);
			json_decref(ops[1].resource);
		}
	}
	return NULL;
}

static void *update_worker(void *arg)
{
	struct worker *wk = arg;
	for (int i = 0; i < 25; i++) {
		struct salus_write w = {.kind = SALUS_WRITE_UPDATE, .type = wk->f->type, .id = "shared"};
		w.resource = patient("u");
		if (salus_store_write(wk->f->s, &w, 1) != SALUS_OK)
			wk->failures++;
		salus_write_release(&w);
		json_decref(w.resource);
	}
	return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct order {
	int64_t prev_seq, prev_ms;
	long n;
	int bad;
	long next_version; /* for the shared resource, newest first */
};

static int order_cb(void *ctx, const struct salus_resource *r)
{
	struct order *o = ctx;
	if (o->n && (r->seq >= o->prev_seq || r->updated_ms > o->prev_ms))
		o->bad++;
	if (o->next_version && r->version != o->next_version--)
		o->bad++;
	o->prev_seq = r->seq;
	o->prev_ms = r->updated_ms;
	o->n++;
	return 0;
}

static void test_concurrent(void **state)
{
	struct fx *f = *state;
	static struct worker wk[THREADS];
	static int64_t seqs[THREADS * PER_THREAD];
	static char ids[THREADS * PER_THREAD][SALUS_MAX_ID + 1];
	pthread_t th[THREADS];
	long total;
	struct order o;

	for (int t = 0; t < THREADS; t++) {
		memset(&wk[t], 0, sizeof wk[t]);
		wk[t].f = f;
		wk[t].t = t;
		assert_int_equal(pthread_create(&th[t], NULL, create_worker, &wk[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++) {
		assert_int_equal(wk[t].failures, 0);
		for (int i = 0; i < PER_THREAD; i++) {
			if (i)
				assert_true(wk[t].seq[i] > wk[t].seq[i - 1]);
			seqs[t * PER_THREAD + i] = wk[t].seq[i];
			memcpy(ids[t * PER_THREAD + i], wk[t].id[i], sizeof ids[0]);
		}
	}
	qsort(seqs, THREADS * PER_THREAD, sizeof seqs[0], cmp_i64);
	qsort(ids, THREADS * PER_THREAD, sizeof ids[0], cmp_str);
	for (int i = 1; i < THREADS * PER_THREAD; i++) {
		assert_true(seqs[i] > seqs[i - 1]);
		assert_true(strcmp(ids[i], ids[i - 1]) > 0);
	}
	assert_int_equal(salus_store_count(f->s, f->type, &total), SALUS_OK);
	assert_int_equal(total, THREADS * PER_THREAD);

	/* history: seq strictly decreasing, time never increasing, newest first */
	memset(&o, 0, sizeof o);
	struct salus_history_q q = {.type = f->type, .count = THREADS * PER_THREAD};
	assert_int_equal(salus_store_history(f->s, &q, order_cb, &o), SALUS_OK);
	assert_int_equal(o.n, THREADS * PER_THREAD);
	assert_int_equal(o.bad, 0);

	/* concurrent updates of one resource: versions 1..200 without gaps */
	for (int t = 0; t < THREADS; t++) {
		wk[t].failures = 0;
		assert_int_equal(pthread_create(&th[t], NULL, update_worker, &wk[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(th[t], NULL);
	for (int t = 0; t < THREADS; t++)
		assert_int_equal(wk[t].failures, 0);
	memset(&o, 0, sizeof o);
	o.next_version = THREADS * 25;
	q = (struct salus_history_q){.type = f->type, .id = "shared", .count = 1000};
	assert_int_equal(salus_store_history(f->s, &q, order_cb, &o), SALUS_OK);
	assert_int_equal(o.n, THREADS * 25);
	assert_int_equal(o.bad, 0);
	assert_int_equal(o.next_version, 0);
}

/* A callback that reads back through the store (nested reader use) must not
 * deadlock, even with the pool exhausted by other threads. */
struct nest {
	struct fx *f;
	int reads;
};

static int nest_cb(void *ctx, const struct salus_resource *r)
{
	struct nest *n = ctx;
	struct salus_resource again;
	struct hist h;
	struct salus_history_q q = {.type = n->f->type, .id = r->id, .count = 4};
	memset(&h, 0, sizeof h);
	if (salus_store_read(n->f->s, n->f->type, r->id, 0, &again) == SALUS_OK)
		n->reads++;
	salus_resource_release(&again);
	return salus_store_history(n->f->s, &q, hist_cb, &h);
}

static void *nest_worker(void *arg)
{
	struct nest *n = arg;
	for (int i = 0; i < 20; i++)
		salus_store_list(n->f->s, n->f->type, NULL, 10, nest_cb, n);
	return NULL;
}

static void test_nested_readers(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	struct nest n[8];
	pthread_t th[8];
	char id[8];

	for (int i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "n%d", i);
		assert_int_equal(write1(f, SALUS_WRITE_CREATE, id, patient("n"), 0, &w), SALUS_OK);
		salus_write_release(&w);
	}
	for (int t = 0; t < 8; t++) { /* 8 threads, 4 pooled readers */
		n[t] = (struct nest){.f = f};
		assert_int_equal(pthread_create(&th[t], NULL, nest_worker, &n[t]), 0);
	}
	for (int t = 0; t < 8; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(n[t].reads, 20 * 5);
	}
}

/* ---- allocation failure ---- */

static bool ok_or_error(int rc)
{
	return rc == SALUS_OK || rc == SALUS_ENOMEM || rc == SALUS_EIO;
}

/* Run every read-path call with the n-th allocation failing, for n = 1, 2...
 * until a full round needs fewer than n allocations.  Every failure must be
 * an error code (never a crash, never a wrong answer); LeakSanitizer checks
 * that nothing leaks. */
static void read_torture_round(struct fx *f, const char *id, int *oks)
{
	struct salus_resource r;
	struct hist h;
	struct kvs k;
	char *v = NULL;
	long total;
	int64_t seq;
	int rc;
	struct salus_history_q q = {.type = f->type, .count = 10};

	rc = salus_store_read(f->s, f->type, id, 0, &r);
	assert_true(ok_or_error(rc));
	if (!rc) {
		assert_non_null(strstr(r.json, "torture"));
		salus_resource_release(&r);
		(*oks)++;
	}
	rc = salus_store_read(f->s, f->type, id, 1, &r);
	assert_true(ok_or_error(rc));
	if (!rc)
		salus_resource_release(&r);
	rc = salus_store_read(f->s, f->type, "gone", 0, &r);
	assert_true(rc == SALUS_EGONE || rc == SALUS_ENOMEM || rc == SALUS_EIO);
	memset(&h, 0, sizeof h);
	rc = salus_store_history(f->s, &q, hist_cb, &h);
	assert_true(ok_or_error(rc));
	if (!rc)
		assert_int_equal(h.n, 4);
	q.since_ms = 1;
	rc = salus_store_history_count(f->s, &q, &total);
	assert_true(ok_or_error(rc));
	if (!rc)
		assert_int_equal(total, 4);
	memset(&h, 0, sizeof h);
	rc = salus_store_list(f->s, f->type, NULL, 10, hist_cb, &h);
	assert_true(ok_or_error(rc));
	if (!rc)
		assert_int_equal(h.n, 1);
	rc = salus_store_count(f->s, f->type, &total);
	assert_true(ok_or_error(rc));
	rc = salus_store_last_seq(f->s, &seq);
	assert_true(ok_or_error(rc));
	rc = salus_store_kv_get(f->s, f->type, "k", &v, NULL);
	assert_true(ok_or_error(rc));
	if (!rc) {
		assert_string_equal(v, "value");
		salus_free(v);
	}
	memset(&k, 0, sizeof k);
	rc = salus_store_kv_list(f->s, f->type, kv_cb, &k);
	assert_true(ok_or_error(rc));
}

static void test_read_alloc_torture(void **state)
{
	struct fx *f = *state;
	struct salus_write w;
	char id[SALUS_MAX_ID + 1];
	unsigned long n, used;
	int oks = 0;

	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, patient("torture"), 0, &w), SALUS_OK);
	snprintf(id, sizeof id, "%s", w.id_out);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_UPDATE, id, patient("torture"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, "gone", patient("g"), 0, &w), SALUS_OK);
	salus_write_release(&w);
	assert_int_equal(write1(f, SALUS_WRITE_DELETE, "gone", NULL, 0, &w), SALUS_OK);
	assert_int_equal(salus_store_kv_put(f->s, f->type, "k", "value", 5), SALUS_OK);

	for (int sticky = 0; sticky <= 1; sticky++) {
		/* fresh connections each mode, so statement preparation is tortured too */
		salus_store_free(f->s);
		f->s = NULL;
		assert_int_equal(fx_open(f, false), SALUS_OK);
		for (n = 1;; n++) {
			salus_alloc_fail_at(n, sticky);
			read_torture_round(f, id, &oks);
			used = salus_alloc_fail_at(0, 0);
			if (used < n) {
				print_message("read torture (sticky=%d): %lu failure points\n", sticky, n);
				break; /* the round finished without reaching the failure */
			}
			assert_true(n < 100000);
		}
		/* and everything still works afterwards */
		oks = 0;
		read_torture_round(f, id, &oks);
		assert_int_equal(oks, 1);
	}
}

static void test_open_alloc_torture(void **state)
{
	struct fx *f = *state;
	struct salus_store_opts o = {.create = false, .readers = 1};
	struct salus_store *s2;
	unsigned long n, used;
	with_test_key(&o);
	int rc;

	if (!f->dir[0])
		skip();
	for (n = 1;; n++) {
		s2 = NULL;
		salus_alloc_fail_at(n, 1);
		rc = salus_store_open(f->uri, &o, &s2);
		used = salus_alloc_fail_at(0, 0);
		assert_true(rc == SALUS_OK || rc == SALUS_ENOMEM || rc == SALUS_EIO);
		if (rc) {
			assert_null(s2);
			continue;
		}
		salus_store_free(s2);
		if (used < n) {
			print_message("open torture: %lu failure points\n", n);
			break;
		}
		assert_true(n < 100000);
	}
}

/* Each single write with the n-th allocation failing (in the caller or the
 * writer thread): an error or success, never a crash; afterwards the store is
 * consistent (count == successes) and still writable. */
static void test_write_alloc_torture(void **state)
{
	struct fx *f = *state;
	unsigned long n, used;
	long ok = 0, total;
	int rc;

	for (n = 1;; n++) {
		struct salus_write w;
		json_t *p = patient("w");
		salus_alloc_fail_at(n, 0);
		rc = write1(f, SALUS_WRITE_CREATE, NULL, p, 0, &w);
		used = salus_alloc_fail_at(0, 0);
		assert_true(ok_or_error(rc));
		if (!rc) {
			ok++;
			assert_non_null(w.json);
		} else {
			assert_null(w.json);
		}
		salus_write_release(&w);
		if (used < n) {
			print_message("write torture: %lu failure points, %ld succeeded\n", n, ok);
			break;
		}
		assert_true(n < 100000);
	}
	assert_int_equal(salus_store_count(f->s, f->type, &total), SALUS_OK);
	assert_int_equal(total, ok);
	struct salus_write w;
	assert_int_equal(write1(f, SALUS_WRITE_CREATE, NULL, patient("after"), 0, &w), SALUS_OK);
	salus_write_release(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_given_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_vread, setup, teardown),
		cmocka_unit_test_setup_teardown(test_if_match, setup, teardown),
		cmocka_unit_test_setup_teardown(test_update_as_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kv, setup, teardown),
		cmocka_unit_test_setup_teardown(test_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nested_readers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_alloc_torture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_alloc_torture, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_alloc_torture, setup, teardown),
	};
	salus_alloc_install();
	salus_store_global_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
