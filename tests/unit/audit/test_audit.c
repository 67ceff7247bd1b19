/*
 * test_audit.c — the audit trail: RFC 6962 vectors (read from ../shared at
 * test time, skipped when absent), proofs and roots from the store against a
 * naive recomputation, the AuditEvent shape, signed checkpoints, tamper tests
 * on the SQLite file itself, 8 concurrent appenders, and fail-closed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "audit/audit.h"
#include "audit/audit_int.h"
#include <sodium.h>
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "core/limits.h"
#include "store/audit_codec.h"
#include "store/store.h"

/* ---- helpers ---- */

struct fx {
	char dir[256];
	char db[300];
	char adb[300]; /* its audit database (salus_store_audit_path) */
	char key[300];
	struct salus_store *st;
	struct salus_audit *au;
};

static void rmtree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[600];
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(dir);
}

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	struct salus_store_opts so = {.create = true, .audit_journal = true};
	struct salus_audit_opts ao = {0};
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-audit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->db, sizeof f->db, "%s/salus.db", f->dir);
	assert_int_equal(salus_store_audit_path(f->db, f->adb, sizeof f->adb), 0);
	snprintf(f->key, sizeof f->key, "%s/audit.key", f->dir);
	assert_int_equal(salus_audit_key_create(f->key), 0);
	assert_int_equal(salus_store_open(f->db, &so, &f->st), 0);
	ao.key_path = f->key;
	assert_int_equal(salus_audit_new(f->st, &ao, &f->au), 0);
	*state = f;
	return 0;
}

static void fx_close(struct fx *f)
{
	salus_audit_free(f->au);
	salus_store_free(f->st);
	f->au = NULL;
	f->st = NULL;
}

static void fx_reopen(struct fx *f)
{
	struct salus_store_opts so = {.create = false, .audit_journal = true};
	struct salus_audit_opts ao = {.key_path = f->key};
	assert_int_equal(salus_store_open(f->db, &so, &f->st), 0);
	assert_int_equal(salus_audit_new(f->st, &ao, &f->au), 0);
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;
	fx_close(f);
	rmtree(f->dir);
	free(f);
	return 0;
}

static void record_n(struct fx *f, int n, const char *client)
{
	static const char *const pats[] = {"p1", "p2"};
	for (int i = 0; i < n; i++) {
		struct salus_audit_req rq = {
			.interaction = SALUS_AUDIT_READ, .resource_type = "Observation", .id = "obs-1",
			.patients = pats, .npatients = 2, .status = 200, .client_id = client, .remote_addr = "10.0.0.1"};
		int64_t idx = -1;
		assert_int_equal(salus_audit_record(f->au, &rq, &idx), 0);
		assert_true(idx >= 0);
	}
}

/* ---- RFC 6962 vectors ---- */

static char *slurp(const char *path, size_t *n)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long len;
	if (!fp)
		return NULL;
	fseek(fp, 0, SEEK_END);
	len = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	buf = malloc((size_t)len + 1);
	if (fread(buf, 1, (size_t)len, fp) != (size_t)len)
		len = 0;
	buf[len] = 0;
	fclose(fp);
	*n = (size_t)len;
	return buf;
}

static int vectors_in(const char *dir, int *count)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[1024];
		struct stat sb;
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (stat(p, &sb))
			continue;
		if (S_ISDIR(sb.st_mode)) {
			vectors_in(p, count);
		} else if (strstr(e->d_name, ".json")) {
			size_t n;
			char *text = slurp(p, &n);
			json_t *j = json_loads(text, JSON_DECODE_INT_AS_REAL, NULL);
			const char *why;
			assert_non_null(j);
			bool want_err = json_is_true(json_object_get(j, "wantErr"));
			enum salus_proof_verdict v = salus_audit_proof_check(text, n, &why);
			if ((v == SALUS_PROOF_VALID) == want_err)
				fail_msg("%s: verdict %d (%s), wantErr %d", p, v, why, want_err);
			assert_int_not_equal(v, SALUS_PROOF_UNREADABLE);
			json_decref(j);
			free(text);
			(*count)++;
		}
	}
	closedir(d);
	return 0;
}

static void test_vectors(void **state)
{
	(void)state;
	const char *src = getenv("SALUS_SOURCE_DIR");
	char dir[1024];
	int count = 0;
	snprintf(dir, sizeof dir, "%s/../shared/audit/rfc6962-vectors", src ? src : "../..");
	if (vectors_in(dir, &count) < 0) {
		print_message("skipped: %s not present\n", dir);
		skip();
	}
	print_message("checked %d vector files\n", count);
	assert_true(count >= 90);
}

/* The eight leaves of the vectors, and their root. */
static void test_known_root(void **state)
{
	(void)state;
	static const char *hex[] = {"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
				    "606162636465666768696a6b6c6d6e6f"};
	struct salus_merkle_acc acc;
	unsigned char root[32], bin[32];
	char out[65];
	salus_merkle_acc_init(&acc);
	for (int i = 0; i < 8; i++) {
		size_t n = strlen(hex[i]) / 2;
		for (size_t k = 0; k < n; k++)
			sscanf(hex[i] + 2 * k, "%2hhx", &bin[k]);
		unsigned char leaf[32];
		salus_merkle_leaf_hash(bin, n, leaf);
		salus_merkle_acc_push(&acc, leaf, NULL, NULL);
	}
	salus_merkle_acc_root(&acc, root);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", root[i]);
	assert_string_equal(out, "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
	/* and the proof checker rejects garbage */
	assert_int_equal(salus_audit_proof_check("nope", 4, NULL), SALUS_PROOF_UNREADABLE);
	assert_int_equal(salus_audit_proof_check("{}", 2, NULL), SALUS_PROOF_UNREADABLE);
	assert_int_equal(salus_audit_proof_check("{\"leafIdx\":\"x\"}", 15, NULL), SALUS_PROOF_UNREADABLE);
}

/* ---- naive recomputation ---- */

static void naive_root(const salus_merkle_hash *leaves, int64_t a, int64_t b, unsigned char out[32])
{
	if (b - a == 1) {
		memcpy(out, leaves[a], 32);
		return;
	}
	int64_t k = 1;
	while (k << 1 < b - a)
		k <<= 1;
	unsigned char l[32], r[32];
	naive_root(leaves, a, a + k, l);
	naive_root(leaves, a + k, b, r);
	salus_merkle_node_hash(l, r, out);
}

static int leaf_cb(void *ctx, const struct salus_audit_row *r)
{
	salus_merkle_hash *leaves = ctx;
	salus_merkle_leaf_hash(r->event, r->event_n, leaves[r->index]);
	assert_memory_equal(leaves[r->index], r->leaf_hash, 32);
	return 0;
}

static void test_store_proofs(void **state)
{
	struct fx *f = *state;
	enum { N = 300 };
	salus_merkle_hash *leaves = calloc(N, sizeof *leaves), proof[SALUS_MERKLE_MAX_PROOF];
	unsigned char root[32], want[32], r1[32];
	size_t np;
	int64_t size;

	srand(7);
	record_n(f, N, "cli");
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, N);
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, leaf_cb, leaves), 0);
	for (int t = 0; t < 400; t++) {
		int64_t n = 1 + rand() % N, m = rand() % n, m0 = rand() % (n + 1);
		naive_root((const salus_merkle_hash *)leaves, 0, n, want);
		assert_int_equal(salus_audit_root(f->st, n, root), 0);
		assert_memory_equal(root, want, 32);
		assert_int_equal(salus_audit_prove_inclusion(f->st, m, n, proof, &np), 0);
		assert_int_equal(salus_merkle_verify_inclusion(m, n, leaves[m], (const salus_merkle_hash *)proof, np, root), 0);
		if (np) { /* a damaged proof must fail */
			proof[np - 1][0] ^= 1;
			assert_int_not_equal(
				salus_merkle_verify_inclusion(m, n, leaves[m], (const salus_merkle_hash *)proof, np, root), 0);
		}
		assert_int_equal(salus_audit_prove_consistency(f->st, m0, n, proof, &np), 0);
		if (m0)
			naive_root((const salus_merkle_hash *)leaves, 0, m0, r1);
		else
			salus_merkle_empty_root(r1);
		assert_int_equal(salus_merkle_verify_consistency(m0, n, r1, root, (const salus_merkle_hash *)proof, np), 0);
	}
	/* out of range */
	assert_int_equal(salus_audit_prove_inclusion(f->st, 5, N + 1, proof, &np), SALUS_EINVALID);
	assert_int_equal(salus_audit_root(f->st, N + 1, root), SALUS_EINVALID);
	/* the JSON answers check with the offline checker */
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	assert_int_equal(salus_audit_http_inclusion(f->au, 17, 200, &b), 0);
	assert_int_equal(salus_audit_proof_check(b.p, b.n, NULL), SALUS_PROOF_VALID);
	salus_buf_reset(&b);
	assert_int_equal(salus_audit_http_consistency(f->au, 13, 299, &b), 0);
	assert_int_equal(salus_audit_proof_check(b.p, b.n, NULL), SALUS_PROOF_VALID);
	salus_buf_reset(&b);
	assert_int_equal(salus_audit_http_checkpoint(f->au, &b), 0);
	json_t *cp = json_loads(b.p, 0, NULL);
	assert_non_null(cp);
	assert_int_equal(json_integer_value(json_object_get(cp, "size")), N);
	struct salus_audit_note note;
	const char *nt = json_string_value(json_object_get(cp, "note"));
	assert_int_equal(salus_audit_note_verify(nt, strlen(nt), salus_audit_vkey(f->au), &note), 0);
	assert_int_equal(note.size, N);
	naive_root((const salus_merkle_hash *)leaves, 0, N, want);
	assert_memory_equal(note.root, want, 32);
	/* another key does not verify it */
	char other[] = "salus.audit/x+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
	assert_int_not_equal(salus_audit_note_verify(nt, strlen(nt), other, &note), 0);
	json_decref(cp);
	salus_buf_release(&b);
	free(leaves);
}

/* Roots survive a reopen (the writer reloads its right edge from the table). */
static void test_reopen(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	record_n(f, 37, "a");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	fx_close(f);
	fx_reopen(f);
	record_n(f, 29, "b");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 66);
	assert_int_equal(rep.checkpoints, 2);
}

static void sql(const char *db, const char *q);

/* Data directories written before audit_subtree keep their subtree hashes in
 * audit_node(level, idx): rewrite a log into that layout (the node of level L,
 * index i sits at offset (L-1)*32 of the row of leaf ((i+1) << L) - 1) and
 * check that roots, proofs and verification still agree, that appends after
 * the change mix both layouts, and that a damaged subtree row is caught. */
static void test_subtree_layouts(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	unsigned char before[32], after[32];
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	size_t np;
	record_n(f, 45, "old");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_root(f->st, 45, before), 0);
	fx_close(f);
	/* to the older layout: one audit_node row per stored subtree, no audit_subtree rows */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "DROP TRIGGER audit_subtree_no_delete", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *rd, *wr;
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT leaf, hashes FROM audit_subtree", -1, &rd, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "INSERT INTO audit_node(level, idx, hash) VALUES(?1, ?2, ?3)", -1, &wr, NULL),
			 SQLITE_OK);
	int moved = 0;
	while (sqlite3_step(rd) == SQLITE_ROW) {
		int64_t leaf = sqlite3_column_int64(rd, 0);
		const unsigned char *hs = sqlite3_column_blob(rd, 1);
		int k = sqlite3_column_bytes(rd, 1) / 32;
		for (int l = 1; l <= k; l++) {
			sqlite3_bind_int(wr, 1, l);
			sqlite3_bind_int64(wr, 2, leaf >> l);
			sqlite3_bind_blob(wr, 3, hs + (l - 1) * 32, 32, SQLITE_TRANSIENT);
			assert_int_equal(sqlite3_step(wr), SQLITE_DONE);
			sqlite3_reset(wr);
			moved++;
		}
	}
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	assert_int_equal(moved, 45 - 4); /* n leaves make n - popcount(n) complete subtrees: 45 = 101101b */
	assert_int_equal(sqlite3_exec(h, "DELETE FROM audit_subtree", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	fx_reopen(f);
	assert_int_equal(salus_audit_root(f->st, 45, after), 0);
	assert_memory_equal(before, after, 32);
	assert_int_equal(salus_audit_prove_inclusion(f->st, 3, 45, proof, &np), 0);
	record_n(f, 30, "new"); /* the new subtrees complete over old ones */
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 75);
	fx_close(f);
	/* a damaged subtree row of the new layout is named */
	sql(f->adb, "DROP TRIGGER audit_subtree_no_update;"
		   "UPDATE audit_subtree SET hashes = zeroblob(length(hashes)) WHERE leaf = 63");
	fx_reopen(f);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), SALUS_EINVALID);
	assert_true(strstr(rep.why, "subtree") != NULL);
}

/* Data directories written before the compact form (store/audit_codec.h) hold events as plain
 * text: rewrite a log that way and check that the texts read back the same, that appends after it
 * mix both forms, that roots, proofs and verification agree, and that new rows are compact. */
struct texts {
	char *t[64];
	size_t n[64];
	unsigned char leaf[64][32];
	int count;
};

static int texts_cb(void *ctx, const struct salus_audit_row *r)
{
	struct texts *x = ctx;
	assert_true(r->index < 64);
	assert_non_null(r->event);
	x->t[r->index] = strndup(r->event, r->event_n);
	x->n[r->index] = r->event_n;
	assert_int_equal(r->leaf_hash_n, 32);
	memcpy(x->leaf[r->index], r->leaf_hash, 32);
	x->count++;
	return 0;
}

static void test_plain_and_compact(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	struct texts a = {0}, b = {0};
	unsigned char before[32], after[32];
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	size_t np;
	record_n(f, 21, "old");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_root(f->st, 21, before), 0);
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, texts_cb, &a), 0);
	assert_int_equal(a.count, 21);
	fx_close(f);
	/* to the older form: every event as its text */
	sqlite3 *h;
	sqlite3_stmt *rd, *wr;
	struct salus_buf dec;
	int n = 0;
	salus_buf_init(&dec, SALUS_MAX_AUDIT_EVENT);
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "DROP TRIGGER audit_log_no_update", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT idx, event FROM audit_log", -1, &rd, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "UPDATE audit_log SET event=?2 WHERE idx=?1", -1, &wr, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(rd) == SQLITE_ROW) {
		const void *v = sqlite3_column_blob(rd, 1);
		size_t vn = (size_t)sqlite3_column_bytes(rd, 1);
		assert_true(salus_auc_is_encoded(v, vn));
		assert_true(vn * 4 < a.n[sqlite3_column_int64(rd, 0)]); /* stored in under a quarter */
		assert_int_equal(salus_auc_decode(v, vn, &dec), 0);
		sqlite3_bind_int64(wr, 1, sqlite3_column_int64(rd, 0));
		sqlite3_bind_text(wr, 2, dec.p, (int)dec.n, SQLITE_TRANSIENT);
		assert_int_equal(sqlite3_step(wr), SQLITE_DONE);
		sqlite3_reset(wr);
		n++;
	}
	assert_int_equal(n, 21);
	sqlite3_finalize(rd);
	sqlite3_finalize(wr);
	sqlite3_close(h);
	salus_buf_release(&dec);
	fx_reopen(f);
	/* the same texts, roots and proofs */
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, texts_cb, &b), 0);
	for (int i = 0; i < 21; i++) {
		assert_int_equal(a.n[i], b.n[i]);
		assert_memory_equal(a.t[i], b.t[i], a.n[i]);
		free(b.t[i]);
		b.t[i] = NULL;
	}
	assert_int_equal(salus_audit_root(f->st, 21, after), 0);
	assert_memory_equal(before, after, 32);
	/* appends after the change: compact rows next to plain ones */
	record_n(f, 20, "new");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_prove_inclusion(f->st, 5, 41, proof, &np), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 41);
	b.count = 0;
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, texts_cb, &b), 0);
	assert_int_equal(b.count, 41);
	for (int i = 0; i < 41; i++) {
		assert_true(salus_audit_event_has_index(b.t[i], b.n[i], i));
		unsigned char leaf[32];
		salus_merkle_leaf_hash(b.t[i], b.n[i], leaf); /* the leaf is over the text, in both forms */
		assert_memory_equal(leaf, b.leaf[i], 32);
		free(b.t[i]);
	}
	for (int i = 0; i < 21; i++)
		free(a.t[i]);
	fx_close(f);
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h,
	                                    "SELECT count(*) FROM audit_log WHERE substr(event, 1, 1) = '{'",
	                                    -1, &rd, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(rd), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(rd, 0), 21);
	sqlite3_finalize(rd);
	sqlite3_close(h);
	fx_reopen(f);
}

/* ---- the event ---- */

/* `recorded` is the same text salus_instant_format gives, at any time (the builder formats it
 * itself, without gmtime_r; ts_ms 0 means now). */
static void test_event_recorded(void **state)
{
	(void)state;
	static const int64_t fixed[] = {1,		999,	       86399999,      951782400000,
					951868799999,	 4102444800000, 1796630400123, 253402300799999, 253402300800000,
					253402300800001, INT64_C(1) << 52};
	uint64_t x = 0x9e3779b97f4a7c15u;
	for (int i = 0; i < 20000; i++) {
		int64_t ms;
		if (i < (int)(sizeof fixed / sizeof fixed[0]))
			ms = fixed[i];
		else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			ms = 1 + (int64_t)(x % UINT64_C(253402300800000)); /* 0 is "now" */
		}
		struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .status = 200, .ts_ms = ms};
		char *pre, *post, want[SALUS_INSTANT_LEN], key[64];
		size_t pn, qn;
		assert_int_equal(salus_audit_event_render(&rq, &pre, &pn, &post, &qn), 0);
		salus_instant_format(ms, want);
		snprintf(key, sizeof key, "\"recorded\":\"%s\"", want);
		if (!strstr(post, key))
			fail_msg("ms=%lld: want %s in %s", (long long)ms, want, post);
		salus_free(pre);
		salus_free(post);
	}
}

static void test_event_shape(void **state)
{
	(void)state;
	static const char *const pats[] = {"p1", "p2", "p3"};
	struct salus_audit_req rq = {.interaction = SALUS_AUDIT_SEARCH, .resource_type = "Observation",
				     .patients = pats, .npatients = 3, .status = 200, .client_id = "app",
				     .user_id = "dr-who", .remote_addr = "192.0.2.7", .query = "code=1234&_count=5",
				     .purpose = "TREAT", .ts_ms = 1700000000123};
	char *pre, *post, text[8192];
	size_t pn, qn;
	assert_int_equal(salus_audit_event_render(&rq, &pre, &pn, &post, &qn), 0);
	snprintf(text, sizeof text, "%s42%s", pre, post);
	assert_true(salus_audit_event_has_index(text, strlen(text), 42));
	assert_false(salus_audit_event_has_index(text, strlen(text), 4));
	json_t *ev = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(ev);
	assert_string_equal(json_string_value(json_object_get(ev, "id")), "42");
	assert_string_equal(json_string_value(json_object_get(ev, "action")), "E");
	assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "0");
	assert_string_equal(json_string_value(json_object_get(ev, "recorded")), "2023-11-14T22:13:20.123Z");
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(json_object_get(ev, "subtype"), 0), "code")), "search-type");
	json_t *ents = json_object_get(ev, "entity");
	assert_int_equal(json_array_size(ents), 4); /* 3 patients + the query */
	json_t *q = json_array_get(ents, 3);
	assert_string_equal(json_string_value(json_object_get(q, "query")), "Y29kZT0xMjM0Jl9jb3VudD01");
	assert_string_equal(json_string_value(json_object_get(json_object_get(q, "role"), "code")), "24");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(json_array_get(ents, 1), "what"), "reference")),
		"Patient/p2");
	json_t *agents = json_object_get(ev, "agent");
	assert_int_equal(json_array_size(agents), 3);
	assert_true(json_is_true(json_object_get(json_array_get(agents, 0), "requestor")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_object_get(json_array_get(agents, 1), "who"), "identifier"), "value")),
			    "app");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(json_array_get(agents, 1), "network"), "address")),
		"192.0.2.7");
	json_decref(ev);
	salus_free(pre);
	salus_free(post);

	/* a failure, a Patient read (one patient entity, not two), bad input */
	struct salus_audit_req rd = {.interaction = SALUS_AUDIT_READ, .resource_type = "Patient", .id = "p1",
				     .patients = pats, .npatients = 1, .status = 404, .client_id = "app"};
	assert_int_equal(salus_audit_event_render(&rd, &pre, &pn, &post, &qn), 0);
	snprintf(text, sizeof text, "%s0%s", pre, post);
	ev = json_loads(text, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(ev, "outcome")), "4");
	assert_int_equal(json_array_size(json_object_get(ev, "entity")), 1);
	json_decref(ev);
	salus_free(pre);
	salus_free(post);
	rd.id = "bad id/../x";
	assert_int_equal(salus_audit_event_render(&rd, &pre, &pn, &post, &qn), SALUS_EINVALID);
	rd.id = "p1";
	rd.client_id = "\xff\xfe";
	assert_int_equal(salus_audit_event_render(&rd, &pre, &pn, &post, &qn), SALUS_EINVALID);
}

/* ---- the event as the audited read builds it (compact, on the request's thread) ---- */

/* The four requests of test_event_golden / test_journal_compact and their texts (post: everything
 * after the index) as the text renderer wrote them before events were built in the compact form:
 * the compact build must decode to these bytes exactly. */
static const char *const golden_pats1[] = {"0192f3a4-aaaa-7bbb-8ccc-123456789abc"};
static const char *const golden_pats3[] = {"p1", "p2", "p3"};
static const struct salus_audit_req golden_rq[4] = {
	{.interaction = SALUS_AUDIT_READ, .resource_type = "Patient", .id = "0192f3a4-aaaa-7bbb-8ccc-123456789abc",
	 .patients = golden_pats1, .npatients = 1, .status = 200, .client_id = "bench", .remote_addr = "127.0.0.1",
	 .ts_ms = 1796630400123},
	{.interaction = SALUS_AUDIT_SEARCH, .resource_type = "Observation", .patients = golden_pats3, .npatients = 3,
	 .status = 200, .client_id = "app", .user_id = "dr \"who\"", .remote_addr = "192.0.2.7",
	 .query = "code=1234&_count=5", .purpose = "BTG", .ts_ms = 1700000000123},
	{.interaction = SALUS_AUDIT_OPERATION, .resource_type = "Encounter", .id = "e.1", .version = 12,
	 .patients = golden_pats3, .npatients = 2, .status = 503, .user_id = "u\t1", .remote_addr = "unix",
	 .operation = "$everything", .ts_ms = 951782400000},
	{.interaction = SALUS_AUDIT_ADMIN, .status = 0, .client_id = "cli", .query = "before=1&pruned=3",
	 .operation = "$x", .ts_ms = 1},
};
static const char *const golden_post[4] = {
	"\",\"meta\":{\"profile\":[\"https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Read\"]},\""
	"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-event-type\",\"code\":\"rest\"},\"subtype\":[{"
	"\"system\":\"http://hl7.org/fhir/restful-interaction\",\"code\":\"read\"}],\"action\":\"R\",\"recorded\":\"2026-12-"
	"07T08:00:00.123Z\",\"outcome\":\"0\",\"outcomeDesc\":\"HTTP 200\",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http"
	"://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110153\"}]},\"requestor\":true,\"who\":{\"identifier\":{\""
	"system\":\"urn:salus:client\",\"value\":\"bench\"}},\"network\":{\"address\":\"127.0.0.1\",\"type\":\"2\"}},{\"type\":{"
	"\"coding\":[{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110152\"}]},\"who\":{\"identi"
	"fier\":{\"system\":\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}],\"source\":{\"observer\":{\"disp"
	"lay\":\"salus\"},\"type\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/security-source-type\",\"code\":"
	"\"4\"}]},\"entity\":[{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entity-type\",\"code\":"
	"\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"1\"},\"what\":{\"refer"
	"ence\":\"Patient/0192f3a4-aaaa-7bbb-8ccc-123456789abc\"}}]}",
	"\",\"meta\":{\"profile\":[\"https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.Query\"]},"
	"\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-event-type\",\"code\":\"rest\"},\"subtype\":["
	"{\"system\":\"http://hl7.org/fhir/restful-interaction\",\"code\":\"search-type\"}],\"action\":\"E\",\"recorded\":\""
	"2023-11-14T22:13:20.123Z\",\"outcome\":\"0\",\"outcomeDesc\":\"HTTP 200\",\"purposeOfEvent\":[{\"coding\":[{\"syst"
	"em\":\"http://terminology.hl7.org/CodeSystem/v3-ActReason\",\"code\":\"BTG\"}]}],\"agent\":[{\"type\":{\"coding\""
	":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ParticipationType\",\"code\":\"IRCP\"}]},\"requestor"
	"\":true,\"who\":{\"identifier\":{\"system\":\"urn:salus:user\",\"value\":\"dr \\\"who\\\"\"}}},{\"type\":{\"coding\":[{\"s"
	"ystem\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110153\"}]},\"requestor\":false,\"who\":{\"i"
	"dentifier\":{\"system\":\"urn:salus:client\",\"value\":\"app\"}},\"network\":{\"address\":\"192.0.2.7\",\"type\":\"2\"}"
	"},{\"type\":{\"coding\":[{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110152\"}]},\"wh"
	"o\":{\"identifier\":{\"system\":\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}],\"source\":{\"obser"
	"ver\":{\"display\":\"salus\"},\"type\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/security-source-ty"
	"pe\",\"code\":\"4\"}]},\"entity\":[{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entity-ty"
	"pe\",\"code\":\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"1\"},\"wh"
	"at\":{\"reference\":\"Patient/p1\"}},{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entit"
	"y-type\",\"code\":\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"1\"}"
	",\"what\":{\"reference\":\"Patient/p2\"}},{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-e"
	"ntity-type\",\"code\":\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":"
	"\"1\"},\"what\":{\"reference\":\"Patient/p3\"}},{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/aud"
	"it-entity-type\",\"code\":\"2\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"co"
	"de\":\"24\"},\"description\":\"Observation\",\"query\":\"Y29kZT0xMjM0Jl9jb3VudD01\"}]}",
	"\",\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-event-type\",\"code\":\"rest\"},\"subtype\""
	":[{\"system\":\"http://hl7.org/fhir/restful-interaction\",\"code\":\"operation\"},{\"system\":\"urn:salus:opera"
	"tion\",\"code\":\"$everything\"}],\"action\":\"E\",\"recorded\":\"2000-02-29T00:00:00.000Z\",\"outcome\":\"8\",\"outco"
	"meDesc\":\"HTTP 503\",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-P"
	"articipationType\",\"code\":\"IRCP\"}]},\"requestor\":true,\"who\":{\"identifier\":{\"system\":\"urn:salus:user\",\""
	"value\":\"u\\u00091\"}}},{\"type\":{\"coding\":[{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"co"
	"de\":\"110153\"}]},\"requestor\":false,\"network\":{\"address\":\"unix\",\"type\":\"1\"}},{\"type\":{\"coding\":[{\"syst"
	"em\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110152\"}]},\"who\":{\"identifier\":{\"system\":"
	"\"urn:salus:server\",\"value\":\"salus\"}},\"requestor\":false}],\"source\":{\"observer\":{\"display\":\"salus\"},\"t"
	"ype\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/security-source-type\",\"code\":\"4\"}]},\"entity\":"
	"[{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entity-type\",\"code\":\"2\"},\"role\":{\"sy"
	"stem\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"4\"},\"what\":{\"reference\":\"Encounter"
	"/e.1/_history/12\"}},{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entity-type\",\"cod"
	"e\":\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"1\"},\"what\":{\"re"
	"ference\":\"Patient/p1\"}},{\"type\":{\"system\":\"http://terminology.hl7.org/CodeSystem/audit-entity-type\","
	"\"code\":\"1\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeSystem/object-role\",\"code\":\"1\"},\"what\":"
	"{\"reference\":\"Patient/p2\"}}]}",
	"\",\"type\":{\"system\":\"http://dicom.nema.org/resources/ontology/DCM\",\"code\":\"110100\"},\"action\":\"E\",\"rec"
	"orded\":\"1970-01-01T00:00:00.001Z\",\"outcome\":\"12\",\"agent\":[{\"type\":{\"coding\":[{\"system\":\"http://dicom"
	".nema.org/resources/ontology/DCM\",\"code\":\"110153\"}]},\"requestor\":true,\"who\":{\"identifier\":{\"system\":"
	"\"urn:salus:client\",\"value\":\"cli\"}}},{\"type\":{\"coding\":[{\"system\":\"http://dicom.nema.org/resources/on"
	"tology/DCM\",\"code\":\"110152\"}]},\"who\":{\"identifier\":{\"system\":\"urn:salus:server\",\"value\":\"salus\"}},\"r"
	"equestor\":false}],\"source\":{\"observer\":{\"display\":\"salus\"},\"type\":[{\"system\":\"http://terminology.hl7"
	".org/CodeSystem/security-source-type\",\"code\":\"4\"}]},\"entity\":[{\"type\":{\"system\":\"http://terminology."
	"hl7.org/CodeSystem/audit-entity-type\",\"code\":\"2\"},\"role\":{\"system\":\"http://terminology.hl7.org/CodeS"
	"ystem/object-role\",\"code\":\"24\"},\"query\":\"YmVmb3JlPTEmcHJ1bmVkPTM=\"}]}",
};

static void test_event_golden(void **state)
{
	(void)state;
	for (int i = 0; i < 4; i++) {
		char *pre, *post;
		size_t pn, qn;
		assert_int_equal(salus_audit_event_render(&golden_rq[i], &pre, &pn, &post, &qn), 0);
		assert_string_equal(pre, SALUS_AUDIT_EVENT_PREFIX);
		assert_int_equal(qn, strlen(golden_post[i]));
		assert_string_equal(post, golden_post[i]);
		salus_free(pre);
		salus_free(post);
	}
}

struct golden_scan {
	int64_t rows;
	int bad;
};

static int golden_row(void *ctx, const struct salus_audit_row *r)
{
	struct golden_scan *g = ctx;
	char text[4096];
	unsigned char leaf[32], zero = 0;
	crypto_hash_sha256_state h;
	int n = snprintf(text, sizeof text, "%s%lld%s", SALUS_AUDIT_EVENT_PREFIX, (long long)r->index,
			 golden_post[r->index % 4]);
	g->rows++;
	if (!r->event || r->event_n != (size_t)n || memcmp(r->event, text, (size_t)n))
		g->bad++;
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, &zero, 1);
	crypto_hash_sha256_update(&h, (const unsigned char *)text, (size_t)n);
	crypto_hash_sha256_final(&h, leaf);
	if (r->leaf_hash_n != 32 || memcmp(r->leaf_hash, leaf, 32))
		g->bad++;
	return 0;
}

/* Journaled events (built compact, decoded and hashed by the writer) are stored as the text
 * renderer's bytes with the leaf hash of that text (checked here with libsodium's SHA-256, not the
 * writer's); the store refuses compact entries anywhere but the journal, and damaged ones. */
static void test_journal_compact(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	struct golden_scan g = {0};
	int64_t size;
	for (int i = 0; i < 400; i++)
		assert_int_equal(salus_audit_record_journal(f->au, &golden_rq[i % 4]), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 400);
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, golden_row, &g), 0);
	assert_int_equal(g.rows, 400);
	assert_int_equal(g.bad, 0);
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 400);

	/* the store's checks of compact entries */
	unsigned char c[64];
	size_t cn = salus_store_audit_encode("{\"a\":1}", 7, c);
	struct salus_audit_entry e = {.cpre = c, .cpre_n = cn, .ts_ms = 1};
	assert_int_equal(salus_store_audit_append(f->st, &e, 1), SALUS_EINVALID); /* journal only */
	e.pre = "x";
	e.pre_n = 1;
	assert_int_equal(salus_store_audit_journal(f->st, &e), SALUS_EINVALID); /* text and compact */
	e.pre = NULL;
	e.pre_n = 0;
	c[cn] = 0x00; /* a zero byte is no token */
	e.cpre_n = cn + 1;
	assert_int_equal(salus_store_audit_journal(f->st, &e), SALUS_EINVALID);
	c[cn] = 0x1f; /* a two-byte token cut short */
	assert_int_equal(salus_store_audit_journal(f->st, &e), SALUS_EINVALID);
	e.cpre_n = cn;
	assert_int_equal(salus_store_audit_journal(f->st, &e), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 401);
}

/* Without a journal of its own (another process owns it, or none is opened) a journaled event is
 * appended directly: the compact build is decoded to text first, and stored as the same text. */
static void test_journal_compact_direct(void **state)
{
	struct fx *f = *state;
	struct salus_store_opts so = {.create = false, .audit_journal = false};
	struct salus_audit_opts ao = {.key_path = f->key};
	struct golden_scan g = {0};
	int64_t size;
	fx_close(f);
	assert_int_equal(salus_store_open(f->db, &so, &f->st), 0);
	assert_int_equal(salus_audit_new(f->st, &ao, &f->au), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(salus_audit_record_journal(f->au, &golden_rq[i % 4]), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 8);
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, golden_row, &g), 0);
	assert_int_equal(g.rows, 8);
	assert_int_equal(g.bad, 0);
}

/* ---- tamper tests, on the database file ---- */

static void sql(const char *db, const char *q)
{
	sqlite3 *h;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	char *err = NULL;
	int rc = sqlite3_exec(h, q, NULL, NULL, &err);
	if (rc)
		fail_msg("%s: %s", q, err);
	sqlite3_close(h);
}

static const char drop_triggers[] = "DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete;";

/* A log of 40 events with a checkpoint, closed so everything is in the main file. */
static void tamper_setup(struct fx *f)
{
	record_n(f, 20, "client-a");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	record_n(f, 20, "client-b");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	fx_close(f);
}

static int64_t verify_bad(struct fx *f, char *why, size_t cap)
{
	struct salus_audit_report rep;
	fx_reopen(f);
	int rc = salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep);
	snprintf(why, cap, "%s", rep.why);
	if (rc == 0)
		return -1;
	assert_int_equal(rc, SALUS_EINVALID);
	return rep.bad_index;
}

static void test_tamper_flip_byte(void **state)
{
	struct fx *f = *state;
	char why[256];
	tamper_setup(f);
	/* flip one byte of event 23's text in the file itself: find the 4th "client-b" */
	size_t n;
	char *img = slurp(f->adb, &n);
	char *p = img;
	int seen = 0, fd;
	/* rows are stored in index order, in their compact form (store/audit_codec.h): find event 23
	 * by its encoded start (marker, the prefix up to the id, "23") */
	unsigned char head[64];
	size_t hn = salus_auc_marker(head);
	hn += salus_auc_encode(SALUS_AUDIT_EVENT_PREFIX, strlen(SALUS_AUDIT_EVENT_PREFIX), head + hn);
	memcpy(head + hn, "23", 2);
	hn += 2;
	assert_true(hn < 10); /* the prefix is one token */
	p = memmem(img, n, head, hn);
	assert_non_null(p);
	p = memmem(p, n - (size_t)(p - img), "client-b", 8);
	assert_non_null(p);
	(void)seen;
	fd = open(f->adb, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, p - img), 1);
	close(fd);
	free(img);
	assert_int_equal(verify_bad(f, why, sizeof why), 23);
	print_message("flip: %s\n", why);
}

static void test_tamper_delete(void **state)
{
	struct fx *f = *state;
	char why[256], q[256];
	tamper_setup(f);
	snprintf(q, sizeof q, "%s DELETE FROM audit_log WHERE idx=11;", drop_triggers);
	sql(f->adb, q);
	assert_int_equal(verify_bad(f, why, sizeof why), 11);
	print_message("delete: %s\n", why);
}

static void test_tamper_swap(void **state)
{
	struct fx *f = *state;
	char why[256], q[512];
	tamper_setup(f);
	/* swap rows 5 and 30 entirely (text and leaf hash move together) */
	snprintf(q, sizeof q,
		 "%s UPDATE audit_log SET idx=-1 WHERE idx=5; UPDATE audit_log SET idx=5 WHERE idx=30;"
		 " UPDATE audit_log SET idx=30 WHERE idx=-1;",
		 drop_triggers);
	sql(f->adb, q);
	assert_int_equal(verify_bad(f, why, sizeof why), 5);
	print_message("swap: %s\n", why);
}

/* A stored value that no longer decodes (here: a two-byte token cut at the end) is named as an
 * edited event, not a reason to give up. */
static void test_tamper_undecodable(void **state)
{
	struct fx *f = *state;
	char why[256], q[256];
	tamper_setup(f);
	snprintf(q, sizeof q, "%s UPDATE audit_log SET event = event || x'1f' WHERE idx=17;",
		 drop_triggers);
	sql(f->adb, q);
	assert_int_equal(verify_bad(f, why, sizeof why), 17);
	print_message("undecodable: %s\n", why);
}

static void test_tamper_truncate(void **state)
{
	struct fx *f = *state;
	char why[256], q[256];
	tamper_setup(f);
	snprintf(q, sizeof q, "%s DELETE FROM audit_log WHERE idx>=35;", drop_triggers);
	sql(f->adb, q);
	assert_int_equal(verify_bad(f, why, sizeof why), 35);
	print_message("truncate: %s\n", why);
}

static void test_tamper_edit_consistently(void **state)
{
	/* rewrite an event AND its leaf hash: only the nodes / checkpoint tell */
	struct fx *f = *state;
	char why[256];
	tamper_setup(f);
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, drop_triggers, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT event FROM audit_log WHERE idx=8", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	/* stored compact (store/audit_codec.h); written back below as plain text, which the
	 * store also reads (rows from before the codec) */
	struct salus_buf dec;
	salus_buf_init(&dec, SALUS_MAX_AUDIT_EVENT);
	assert_true(salus_auc_is_encoded(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)));
	assert_int_equal(salus_auc_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &dec), 0);
	char *ev = strdup(dec.p);
	salus_buf_release(&dec);
	sqlite3_finalize(st);
	char *p = strstr(ev, "client-a");
	p[0] = 'C';
	unsigned char leaf[32];
	salus_merkle_leaf_hash(ev, strlen(ev), leaf);
	assert_int_equal(sqlite3_prepare_v2(h, "UPDATE audit_log SET event=?1, leaf_hash=?2 WHERE idx=8", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, ev, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, leaf, 32, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(h);
	free(ev);
	assert_int_equal(verify_bad(f, why, sizeof why), 8);
	print_message("consistent edit: %s\n", why);
}

static void test_untampered_and_triggers(void **state)
{
	struct fx *f = *state;
	char why[256];
	tamper_setup(f);
	/* the triggers refuse edits */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(h, "DELETE FROM audit_log WHERE idx=3", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(h, "UPDATE audit_log SET ts_ms=0 WHERE idx=3", NULL, NULL, NULL), SQLITE_OK);
	assert_int_not_equal(sqlite3_exec(h, "DELETE FROM audit_checkpoint", NULL, NULL, NULL), SQLITE_OK);
	/* pruning the text of an old event is allowed and still verifies */
	assert_int_equal(sqlite3_exec(h, "UPDATE audit_log SET event=NULL WHERE idx=3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(verify_bad(f, why, sizeof why), -1);
}

/* ---- concurrency and failure ---- */

struct targ {
	struct fx *f;
	int n;
};

static void *appender(void *p)
{
	struct targ *t = p;
	for (int i = 0; i < t->n; i++) {
		struct salus_audit_req rq = {.interaction = SALUS_AUDIT_CREATE, .resource_type = "Patient", .id = "x",
					     .status = 201, .client_id = "c"};
		if (salus_audit_record(t->f->au, &rq, NULL))
			return (void *)1;
	}
	return NULL;
}

static void test_concurrent(void **state)
{
	struct fx *f = *state;
	pthread_t th[8];
	struct targ t = {f, 250};
	struct salus_audit_report rep;
	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, appender, &t);
	for (int i = 0; i < 8; i++) {
		void *r;
		pthread_join(th[i], &r);
		assert_null(r);
	}
	int64_t size;
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 2000);
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 2000);
}

/* Journaled recording: the events are in the log, in order, once settled. */
static void test_journal(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	int64_t size;
	for (int i = 0; i < 1500; i++) {
		struct salus_audit_req rq = {.interaction = SALUS_AUDIT_SEARCH, .resource_type = "Encounter",
					     .query = "status=finished", .status = 200, .client_id = "a"};
		assert_int_equal(salus_audit_record_journal(f->au, &rq), 0);
	}
	/* a read of the log settles the journal first */
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 1500);
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 1500);
}

/* Same transaction: a write and its event commit together, or neither. */
static void test_write_audited(void **state)
{
	struct fx *f = *state;
	json_t *res = json_pack("{s:s}", "resourceType", "Patient");
	struct salus_write w = {.kind = SALUS_WRITE_CREATE, .type = "Patient", .id = "pat-1", .resource = res};
	static const char head[] = "{\"resourceType\":\"AuditEvent\",\"id\":\"";
	struct salus_audit_entry e = {.pre = head, .pre_n = sizeof head - 1, .post = "\",\"x\":1}", .post_n = 8, .ts_ms = 1};
	int64_t size;
	assert_int_equal(salus_store_write_audited(f->st, &w, 1, &e, 1), 0);
	assert_int_equal(e.index, 0);
	salus_write_release(&w);
	/* the same create again fails: nothing appended */
	assert_int_equal(salus_store_write_audited(f->st, &w, 1, &e, 1), SALUS_EEXISTS);
	assert_int_equal(e.index, -1);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 1);
	/* and the tree still grows correctly after the rolled-back job */
	record_n(f, 5, "z");
	struct salus_audit_report rep;
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	salus_write_release(&w);
	json_decref(res);
}

static void test_fail_closed(void **state)
{
	struct fx *f = *state;
	record_n(f, 3, "a");
	/* make the database read-only underneath the store: appends must fail */
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TRIGGER audit_block BEFORE INSERT ON audit_log "
					 "BEGIN SELECT RAISE(ABORT, 'disk gone'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .resource_type = "Patient", .id = "p",
				     .status = 200};
	int64_t idx = 77;
	assert_int_not_equal(salus_audit_record(f->au, &rq, &idx), 0);
	assert_int_equal(idx, 77);
	/* allocation failure is an error too, never a silent drop */
	salus_alloc_fail_at(1, 1);
	int rc = salus_audit_record(f->au, &rq, &idx);
	salus_alloc_fail_at(0, 0);
	assert_int_not_equal(rc, 0);
	/* once the store works again, so does the log, with no gap */
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "DROP TRIGGER audit_block", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	assert_int_equal(salus_audit_record(f->au, &rq, &idx), 0);
	assert_int_equal(idx, 3);
}

/* Fail closed through the journal: an event the writer cannot move into the log stays in the journal
 * file; from then on journaled events are refused (the server answers 500); after a restart with the
 * store working again, the event is in the log — nothing lost, nothing twice. */
static void test_journal_fail_closed(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	int64_t size = -1;
	record_n(f, 2, "a");
	sqlite3 *h;
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "CREATE TRIGGER audit_block BEFORE INSERT ON audit_log "
					 "BEGIN SELECT RAISE(ABORT, 'disk gone'); END;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .resource_type = "Patient", .id = "jp",
				     .status = 200};
	assert_int_equal(salus_audit_record_journal(f->au, &rq), 0); /* written to the journal */
	assert_int_equal(salus_store_audit_settle(f->st), SALUS_EIO); /* not movable into the log */
	assert_int_equal(salus_audit_record_journal(f->au, &rq), SALUS_EIO); /* refused from now on */
	assert_int_not_equal(salus_store_audit_size(f->st, &size), 0);
	fx_close(f);
	assert_int_equal(sqlite3_open(f->adb, &h), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "DROP TRIGGER audit_block", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(h);
	fx_reopen(f); /* moves the journaled event */
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 3);
	assert_int_equal(salus_audit_record_journal(f->au, &rq), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 4);
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 4);
}

/* Export → offline verification with only the public key. */
static int export_cb(void *ctx, const struct salus_audit_row *r)
{
	fprintf(ctx, "%.*s\n", (int)r->event_n, r->event);
	return 0;
}

static void test_offline(void **state)
{
	struct fx *f = *state;
	struct salus_audit_cp cp = {0};
	struct salus_audit_report rep;
	char path[400];
	record_n(f, 50, "q");
	assert_int_equal(salus_audit_checkpoint(f->au, &cp), 0);
	snprintf(path, sizeof path, "%s/log.ndjson", f->dir);
	FILE *fp = fopen(path, "w");
	assert_int_equal(salus_store_audit_scan(f->st, 0, 0, export_cb, fp), 0);
	fclose(fp);
	assert_int_equal(salus_audit_verify_export(path, cp.note, strlen(cp.note), salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.events, 50);
	/* edit line 12 */
	size_t n;
	char *text = slurp(path, &n);
	char *p = text;
	for (int i = 0; i < 12; i++)
		p = strchr(p, '\n') + 1;
	p = strstr(p, "10.0.0.1");
	p[0] = '9';
	fp = fopen(path, "w");
	fwrite(text, 1, n, fp);
	fclose(fp);
	free(text);
	assert_int_equal(salus_audit_verify_export(path, cp.note, strlen(cp.note), salus_audit_vkey(f->au), &rep),
			 SALUS_EINVALID);
	print_message("offline: %s\n", rep.why);
	salus_audit_cp_release(&cp);
}

/* ---- the audit database (store.h "the audit log") ---- */

/* Audit appends commit to the audit database only: the resource database and its WAL are
 * byte for byte what they were (so the readers' page caches of it stay valid). */
static void test_audit_db_apart(void **state)
{
	struct fx *f = *state;
	char wal[320];
	size_t n1, n2, w1, w2;
	record_n(f, 3, "warm");
	assert_int_equal(salus_store_audit_settle(f->st), 0);
	snprintf(wal, sizeof wal, "%s-wal", f->db);
	char *db1 = slurp(f->db, &n1), *wal1 = slurp(wal, &w1);
	assert_non_null(db1);
	record_n(f, 50, "apart");
	struct salus_audit_req rq = {.interaction = SALUS_AUDIT_READ, .resource_type = "Patient", .id = "j",
				     .status = 200};
	for (int i = 0; i < 50; i++)
		assert_int_equal(salus_audit_record_journal(f->au, &rq), 0);
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	assert_int_equal(salus_store_audit_settle(f->st), 0);
	int64_t size = 0;
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 103);
	char *db2 = slurp(f->db, &n2), *wal2 = slurp(wal, &w2);
	assert_int_equal(n1, n2);
	assert_memory_equal(db1, db2, n1);
	assert_true((!wal1 && !wal2) || (wal1 && wal2 && w1 == w2 && !memcmp(wal1, wal2, w1)));
	free(db1);
	free(db2);
	free(wal1);
	free(wal2);
}

/* Rewrite f's store into the layout of data directories from before the audit database: the
 * audit tables (with their triggers) and the journal mark in the resource database; the audit
 * database removed unless keep. */
static void to_old_layout(struct fx *f, bool keep)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	char q[400];
	assert_int_equal(sqlite3_open(f->db, &h), SQLITE_OK);
	snprintf(q, sizeof q, "ATTACH DATABASE '%s' AS a", f->adb);
	assert_int_equal(sqlite3_exec(h, q, NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_exec(h, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT sql FROM a.sqlite_master WHERE name LIKE 'audit%' AND sql IS NOT NULL"
					       " AND name NOT LIKE 'audit_meta%' ORDER BY type = 'trigger'",
					    -1, &st, NULL),
			 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		assert_int_equal(sqlite3_exec(h, (const char *)sqlite3_column_text(st, 0), NULL, NULL, NULL), SQLITE_OK);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(h,
				      "INSERT INTO main.audit_log SELECT * FROM a.audit_log;"
				      "INSERT INTO main.audit_subtree SELECT * FROM a.audit_subtree;"
				      "INSERT INTO main.audit_node SELECT * FROM a.audit_node;"
				      "INSERT INTO main.audit_checkpoint SELECT * FROM a.audit_checkpoint;"
				      "INSERT INTO main.kv(ns, key, val) SELECT 'audit', key, val FROM a.audit_meta;"
				      "COMMIT; DETACH DATABASE a;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(h);
	if (!keep) {
		char p[320];
		assert_int_equal(unlink(f->adb), 0);
		snprintf(p, sizeof p, "%s-wal", f->adb);
		unlink(p);
		snprintf(p, sizeof p, "%s-shm", f->adb);
		unlink(p);
	}
}

static int64_t tables_named(const char *db, const char *name)
{
	sqlite3 *h;
	sqlite3_stmt *st;
	int64_t n = -1;
	assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM sqlite_master WHERE name = ?1", -1, &st, NULL),
			 SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(h);
	return n;
}

/* An older data directory's log moves into the audit database at open, whole and verifiable;
 * after a crash between the copy and the drop, the next open only drops; two different logs
 * refuse to open. */
static void test_audit_db_migration(void **state)
{
	struct fx *f = *state;
	struct salus_audit_report rep;
	int64_t size = 0;
	char q[200];
	record_n(f, 20, "old-a");
	assert_int_equal(salus_audit_checkpoint(f->au, NULL), 0);
	record_n(f, 5, "old-b");
	fx_close(f);
	to_old_layout(f, false);
	assert_int_equal(tables_named(f->db, "audit_log"), 1);
	fx_reopen(f);
	assert_int_equal(tables_named(f->db, "audit_log"), 0);
	assert_int_equal(tables_named(f->db, "audit_log_no_update"), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 25);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	assert_int_equal(rep.checkpoints, 1);
	record_n(f, 2, "new");
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	fx_close(f);
	/* the crash between the copy and the drop: both hold the same log */
	to_old_layout(f, true);
	fx_reopen(f);
	assert_int_equal(tables_named(f->db, "audit_log"), 0);
	assert_int_equal(salus_store_audit_size(f->st, &size), 0);
	assert_int_equal(size, 27);
	assert_int_equal(salus_audit_verify_store(f->st, salus_audit_vkey(f->au), &rep), 0);
	fx_close(f);
	/* two different logs: the store does not open, nothing is dropped */
	to_old_layout(f, true);
	snprintf(q, sizeof q, "%s DELETE FROM audit_log WHERE idx=26;", drop_triggers);
	sql(f->db, q);
	struct salus_store_opts so = {.audit_journal = true};
	assert_int_equal(salus_store_open(f->db, &so, &f->st), SALUS_EINTEGRITY);
	f->st = NULL;
	assert_int_equal(tables_named(f->db, "audit_log"), 1);
}

int main(void)
{
	salus_alloc_install();
	salus_store_global_init();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vectors),
		cmocka_unit_test(test_known_root),
		cmocka_unit_test(test_event_shape),
		cmocka_unit_test(test_event_recorded),
		cmocka_unit_test(test_event_golden),
		cmocka_unit_test_setup_teardown(test_store_proofs, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_reopen, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_subtree_layouts, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plain_and_compact, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_flip_byte, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_delete, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_swap, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_truncate, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_undecodable, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_tamper_edit_consistently, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_untampered_and_triggers, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_journal, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_journal_compact, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_journal_compact_direct, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_write_audited, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_fail_closed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_journal_fail_closed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_offline, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_audit_db_apart, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_audit_db_migration, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
