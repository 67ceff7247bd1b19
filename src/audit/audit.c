/*
 * audit.c — the audit context: recording events (render in the caller's
 * thread, append through the store's group-commit writer, block until
 * durable), roots and proofs from stored complete subtrees (O(log n) reads),
 * signed checkpoints (on demand, and from a thread every N seconds when the
 * tree grew), and the JSON answers of GET /audit/... .
 */
#include "audit/audit.h"
#include "audit/audit_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "store/store.h"

struct salus_audit {
	struct salus_store *st;
	struct salus_signkey *key;
	char origin[256];
	char *vkey;
	pthread_mutex_t cp_mu; /* one checkpoint at a time */
	/* the checkpoint thread */
	int every_s;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* CLOCK_MONOTONIC */
	bool stopping;
};

int salus_audit_key_create(const char *path)
{
	struct salus_signkey *k = NULL;
	char origin[256], pub[4200], *vkey = NULL;
	FILE *f;
	int rc;

	if (!path || snprintf(pub, sizeof pub, "%s.pub", path) >= (int)sizeof pub)
		return SALUS_EINVALID;
	if ((rc = salus_signkey_create(path)))
		return rc;
	if ((rc = salus_signkey_load(path, &k)))
		return rc;
	snprintf(origin, sizeof origin, "salus.audit/%.16s", salus_signkey_kid(k));
	rc = note_vkey(k, origin, &vkey);
	salus_signkey_free(k);
	if (rc)
		return rc;
	if (!(f = fopen(pub, "wx"))) {
		salus_free(vkey);
		return errno == EEXIST ? SALUS_EEXISTS : SALUS_EIO;
	}
	rc = fprintf(f, "%s\n", vkey) < 0 ? SALUS_EIO : SALUS_OK;
	if (fclose(f))
		rc = SALUS_EIO;
	salus_free(vkey);
	return rc;
}

/* ---- roots and proofs from stored subtrees ---- */

/* Hashes of k ranges, every complete subtree of every range read in one go. */
static int range_hashes(struct salus_store *st, const struct salus_merkle_range *r, size_t k, salus_merkle_hash *out)
{
	struct salus_merkle_subtree sub[64];
	struct salus_audit_node *nodes;
	size_t total = 0, i, j, at = 0;
	int rc;

	for (i = 0; i < k; i++)
		total += salus_merkle_decompose(r[i].a, r[i].b, sub);
	if (!total)
		return SALUS_OK;
	if (!(nodes = salus_calloc(total, sizeof *nodes)))
		return SALUS_ENOMEM;
	for (i = 0; i < k; i++) {
		size_t c = salus_merkle_decompose(r[i].a, r[i].b, sub);
		for (j = 0; j < c; j++)
			nodes[at++] = (struct salus_audit_node){.level = sub[j].level, .index = sub[j].index};
	}
	rc = salus_store_audit_nodes(st, nodes, total);
	if (rc == SALUS_ENOTFOUND)
		rc = SALUS_EIO; /* checked against the size first: a missing node is damage */
	if (rc)
		goto out_nodes;
	at = 0;
	for (i = 0; i < k; i++) {
		salus_merkle_hash v[64];
		size_t c = salus_merkle_decompose(r[i].a, r[i].b, sub);
		for (j = 0; j < c; j++)
			memcpy(v[j], nodes[at++].hash, SALUS_MERKLE_HASH_LEN);
		salus_merkle_fold((const salus_merkle_hash *)v, c, out[i]);
	}
out_nodes:
	salus_free(nodes);
	return rc;
}

static int size_ok(struct salus_store *st, int64_t size)
{
	int64_t have;
	int rc = salus_store_audit_size(st, &have);
	if (rc)
		return rc;
	return size >= 0 && size <= have ? SALUS_OK : SALUS_EINVALID;
}

int salus_audit_root(struct salus_store *st, int64_t size, unsigned char root[SALUS_MERKLE_HASH_LEN])
{
	struct salus_merkle_range r = {0, size};
	salus_merkle_hash h;
	int rc;
	if (!st || !root)
		return SALUS_EINVALID;
	if ((rc = size_ok(st, size)))
		return rc;
	if (size == 0) {
		salus_merkle_empty_root(root);
		return SALUS_OK;
	}
	if ((rc = range_hashes(st, &r, 1, &h)))
		return rc;
	memcpy(root, h, SALUS_MERKLE_HASH_LEN);
	return SALUS_OK;
}

int salus_audit_prove_inclusion(struct salus_store *st, int64_t index, int64_t size,
				salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF], size_t *np)
{
	struct salus_merkle_range r[SALUS_MERKLE_MAX_PROOF];
	size_t k;
	int rc;
	if (!st || !proof || !np)
		return SALUS_EINVALID;
	if ((rc = size_ok(st, size)) || (rc = salus_merkle_inclusion_ranges(index, size, r, &k)))
		return rc;
	if ((rc = range_hashes(st, r, k, proof)))
		return rc;
	*np = k;
	return SALUS_OK;
}

int salus_audit_prove_consistency(struct salus_store *st, int64_t from, int64_t to,
				  salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF], size_t *np)
{
	struct salus_merkle_range r[SALUS_MERKLE_MAX_PROOF];
	size_t k;
	int rc;
	if (!st || !proof || !np)
		return SALUS_EINVALID;
	if ((rc = size_ok(st, to)) || (rc = salus_merkle_consistency_ranges(from, to, r, &k)))
		return rc;
	if ((rc = range_hashes(st, r, k, proof)))
		return rc;
	*np = k;
	return SALUS_OK;
}

/* ---- recording ---- */

/* The store entry of rq (time filled in when unset), its text in *pre / *post (the caller frees). */
static int render(const struct salus_audit_req *rq, struct salus_audit_entry *e, char **pre, char **post)
{
	struct salus_audit_req copy = *rq;
	int rc;

	if (!copy.ts_ms)
		copy.ts_ms = salus_now_ms();
	memset(e, 0, sizeof *e);
	*pre = *post = NULL;
	if ((rc = salus_audit_event_render(&copy, pre, &e->pre_n, post, &e->post_n)))
		return rc;
	e->pre = *pre;
	e->post = *post;
	e->ts_ms = copy.ts_ms;
	return SALUS_OK;
}

/* How the event is handed to the store as text: appended (durable), or with writes. */
enum how { APPEND, WRITE };

static int record(struct salus_audit *au, const struct salus_audit_req *rq, enum how how, struct salus_write *ops,
		  size_t n, int64_t *index)
{
	struct salus_audit_entry e;
	char *pre, *post;
	int rc;

	if (!au || !rq || (how == WRITE && (!ops || !n)))
		return SALUS_EINVALID;
	if ((rc = render(rq, &e, &pre, &post)))
		return rc;
	rc = how == APPEND ? salus_store_audit_append(au->st, &e, 1) : salus_store_write_audited(au->st, ops, n, &e, 1);
	if (rc && how != WRITE) /* a write's own failures (412, 409...) are not the audit's */
		salus_log(SALUS_LOG_ERROR, "audit.record", "err=%s", salus_err_name(rc));
	else if (!rc && index)
		*index = e.index;
	salus_free(pre);
	salus_free(post);
	return rc;
}

int salus_audit_record(struct salus_audit *au, const struct salus_audit_req *rq, int64_t *index)
{
	return record(au, rq, APPEND, NULL, 0, index);
}

/* Reads and searches: the event is built in the store's compact form, never as text, on this
 * thread (event.c); the store's writer decodes it to hash it. */
int salus_audit_record_journal(struct salus_audit *au, const struct salus_audit_req *rq)
{
	struct salus_audit_req copy;
	struct salus_audit_entry e = {0};
	struct salus_buf post;
	int rc;

	if (!au || !rq)
		return SALUS_EINVALID;
	copy = *rq;
	if (!copy.ts_ms)
		copy.ts_ms = salus_now_ms();
	salus_buf_init(&post, SALUS_STORE_AUC_BOUND((size_t)SALUS_MAX_AUDIT_EVENT));
	if (!(rc = audit_event_compact(&copy, &post))) {
		e.cpre = audit_event_compact_pre(&e.cpre_n);
		e.cpost = (const unsigned char *)post.p;
		e.cpost_n = post.n;
		e.ts_ms = copy.ts_ms;
		if ((rc = salus_store_audit_journal(au->st, &e)))
			salus_log(SALUS_LOG_ERROR, "audit.record", "err=%s", salus_err_name(rc));
	}
	salus_buf_release(&post);
	return rc;
}

int salus_audit_write(struct salus_audit *au, const struct salus_audit_req *rq, struct salus_write *ops, size_t n)
{
	return record(au, rq, WRITE, ops, n, NULL);
}

/* ---- checkpoints ---- */

void salus_audit_cp_release(struct salus_audit_cp *cp)
{
	if (!cp)
		return;
	salus_free(cp->note);
	cp->note = NULL;
}

static int latest_cb(void *ctx, const struct salus_audit_checkpoint_row *r)
{
	struct salus_audit_cp *cp = ctx;
	if (r->root_n != SALUS_MERKLE_HASH_LEN)
		return SALUS_EIO;
	cp->size = r->size;
	cp->ts_ms = r->ts_ms;
	memcpy(cp->root, r->root, SALUS_MERKLE_HASH_LEN);
	if (!(cp->note = salus_strndup(r->note, r->note_n)))
		return SALUS_ENOMEM;
	return SALUS_OK;
}

int salus_audit_checkpoint(struct salus_audit *au, struct salus_audit_cp *out)
{
	struct salus_audit_cp cp = {.size = -1};
	int64_t size;
	int rc;

	if (!au)
		return SALUS_EINVALID;
	pthread_mutex_lock(&au->cp_mu);
	if ((rc = salus_store_audit_size(au->st, &size)))
		goto out_unlock;
	rc = salus_store_audit_checkpoints(au->st, true, latest_cb, &cp);
	if (rc && rc != SALUS_ENOTFOUND)
		goto out_unlock;
	if (rc == SALUS_ENOTFOUND || cp.size < size) {
		salus_audit_cp_release(&cp);
		cp.size = size;
		cp.ts_ms = salus_now_ms();
		if ((rc = salus_audit_root(au->st, size, cp.root)) ||
		    (rc = note_sign(au->key, au->origin, size, cp.root, &cp.note)) ||
		    (rc = salus_store_audit_checkpoint_put(au->st, size, cp.root, cp.ts_ms, cp.note)))
			goto out_unlock;
		salus_log(SALUS_LOG_INFO, "audit.checkpoint", "size=%" PRId64, size);
	}
	rc = SALUS_OK;
	if (out) {
		*out = cp;
		cp.note = NULL;
	}
out_unlock:
	pthread_mutex_unlock(&au->cp_mu);
	salus_audit_cp_release(&cp);
	return rc;
}

static void *checkpoint_main(void *arg)
{
	struct salus_audit *au = arg;
	pthread_mutex_lock(&au->mu);
	while (!au->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += au->every_s;
		while (!au->stopping && pthread_cond_timedwait(&au->cv, &au->mu, &ts) != ETIMEDOUT)
			;
		pthread_mutex_unlock(&au->mu);
		int rc = salus_audit_checkpoint(au, NULL); /* a no-op when the tree did not grow */
		if (rc)
			salus_log(SALUS_LOG_ERROR, "audit.checkpoint", "err=%s", salus_err_name(rc));
		pthread_mutex_lock(&au->mu);
	}
	pthread_mutex_unlock(&au->mu);
	return NULL;
}

const char *salus_audit_vkey(const struct salus_audit *au)
{
	return au->vkey;
}

int salus_audit_new(struct salus_store *st, const struct salus_audit_opts *o, struct salus_audit **out)
{
	struct salus_audit *au;
	pthread_condattr_t ca;
	int rc;

	if (!st || !o || !o->key_path || !out || o->checkpoint_every_s < 0)
		return SALUS_EINVALID;
	if (!(au = salus_calloc(1, sizeof *au)))
		return SALUS_ENOMEM;
	au->st = st;
	au->every_s = o->checkpoint_every_s;
	pthread_mutex_init(&au->cp_mu, NULL);
	pthread_mutex_init(&au->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&au->cv, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = salus_signkey_load(o->key_path, &au->key)))
		goto out_free;
	if (o->origin)
		rc = snprintf(au->origin, sizeof au->origin, "%s", o->origin) >= (int)sizeof au->origin ? SALUS_EINVALID : 0;
	else
		snprintf(au->origin, sizeof au->origin, "salus.audit/%.16s", salus_signkey_kid(au->key));
	if (rc || (rc = note_vkey(au->key, au->origin, &au->vkey)))
		goto out_free;
	if (au->every_s > 0) {
		if (pthread_create(&au->thread, NULL, checkpoint_main, au)) {
			rc = SALUS_EINTERNAL;
			goto out_free;
		}
		au->thread_started = true;
	}
	*out = au;
	return SALUS_OK;
out_free:
	salus_audit_free(au);
	return rc;
}

void salus_audit_free(struct salus_audit *au)
{
	if (!au)
		return;
	if (au->thread_started) {
		pthread_mutex_lock(&au->mu);
		au->stopping = true;
		pthread_cond_signal(&au->cv);
		pthread_mutex_unlock(&au->mu);
		pthread_join(au->thread, NULL);
	}
	salus_signkey_free(au->key);
	salus_free(au->vkey);
	pthread_cond_destroy(&au->cv);
	pthread_mutex_destroy(&au->mu);
	pthread_mutex_destroy(&au->cp_mu);
	salus_free(au);
}

/* ---- JSON for the HTTP routes ---- */

static int add_hash(struct salus_buf *b, const char *key, const unsigned char *h)
{
	int rc;
	if ((rc = salus_buf_addf(b, "\"%s\":\"", key)) || (rc = b64std_append(b, h, SALUS_MERKLE_HASH_LEN)) ||
	    (rc = salus_buf_addc(b, '"')))
		return rc;
	return SALUS_OK;
}

static int add_proof(struct salus_buf *b, const salus_merkle_hash *p, size_t n)
{
	int rc = salus_buf_adds(b, "\"proof\":[");
	for (size_t i = 0; !rc && i < n; i++) {
		if (i)
			rc = salus_buf_addc(b, ',');
		if (!rc)
			rc = salus_buf_addc(b, '"');
		if (!rc)
			rc = b64std_append(b, p[i], SALUS_MERKLE_HASH_LEN);
		if (!rc)
			rc = salus_buf_addc(b, '"');
	}
	return rc ? rc : salus_buf_addc(b, ']');
}

/* Append a JSON string (the note has newlines and an em dash). */
static int add_json_string(struct salus_buf *b, const char *s)
{
	json_t *j = json_string(s);
	char *t;
	int rc;
	if (!j)
		return SALUS_ENOMEM;
	t = json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
	json_decref(j);
	if (!t)
		return SALUS_ENOMEM;
	rc = salus_buf_adds(b, t);
	salus_free(t);
	return rc;
}

int salus_audit_http_checkpoint(struct salus_audit *au, struct salus_buf *out)
{
	struct salus_audit_cp cp = {0};
	char instant[SALUS_INSTANT_LEN];
	int rc;

	if (!au || !out)
		return SALUS_EINVALID;
	if ((rc = salus_audit_checkpoint(au, &cp)))
		return rc;
	salus_instant_format(cp.ts_ms, instant);
	if ((rc = salus_buf_adds(out, "{\"origin\":")) || (rc = add_json_string(out, au->origin)) ||
	    (rc = salus_buf_addf(out, ",\"size\":%" PRId64 ",", cp.size)) || (rc = add_hash(out, "root", cp.root)) ||
	    (rc = salus_buf_addf(out, ",\"timestamp\":\"%s\",\"note\":", instant)) ||
	    (rc = add_json_string(out, cp.note)) || (rc = salus_buf_adds(out, ",\"verifierKey\":")) ||
	    (rc = add_json_string(out, au->vkey)) || (rc = salus_buf_addc(out, '}')))
		goto out_cp;
out_cp:
	salus_audit_cp_release(&cp);
	return rc;
}

int salus_audit_http_inclusion(struct salus_audit *au, int64_t index, int64_t size, struct salus_buf *out)
{
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	struct salus_audit_node leaf = {.level = 0, .index = index};
	unsigned char root[SALUS_MERKLE_HASH_LEN];
	size_t np;
	int rc;

	if (!au || !out || index < 0 || size <= index)
		return SALUS_EINVALID;
	if ((rc = salus_audit_prove_inclusion(au->st, index, size, proof, &np)) ||
	    (rc = salus_audit_root(au->st, size, root)) || (rc = salus_store_audit_nodes(au->st, &leaf, 1)))
		return rc == SALUS_ENOTFOUND ? SALUS_EIO : rc;
	if ((rc = salus_buf_addf(out, "{\"leafIdx\":%" PRId64 ",\"treeSize\":%" PRId64 ",", index, size)) ||
	    (rc = add_hash(out, "root", root)) || (rc = salus_buf_addc(out, ',')) ||
	    (rc = add_hash(out, "leafHash", leaf.hash)) || (rc = salus_buf_addc(out, ',')) ||
	    (rc = add_proof(out, (const salus_merkle_hash *)proof, np)) || (rc = salus_buf_addc(out, '}')))
		return rc;
	return SALUS_OK;
}

int salus_audit_http_consistency(struct salus_audit *au, int64_t from, int64_t to, struct salus_buf *out)
{
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	unsigned char r1[SALUS_MERKLE_HASH_LEN], r2[SALUS_MERKLE_HASH_LEN];
	size_t np;
	int rc;

	if (!au || !out || from < 0 || to < from)
		return SALUS_EINVALID;
	if ((rc = salus_audit_prove_consistency(au->st, from, to, proof, &np)) ||
	    (rc = salus_audit_root(au->st, from, r1)) || (rc = salus_audit_root(au->st, to, r2)))
		return rc;
	if ((rc = salus_buf_addf(out, "{\"size1\":%" PRId64 ",\"size2\":%" PRId64 ",", from, to)) ||
	    (rc = add_hash(out, "root1", r1)) || (rc = salus_buf_addc(out, ',')) || (rc = add_hash(out, "root2", r2)) ||
	    (rc = salus_buf_addc(out, ',')) || (rc = add_proof(out, (const salus_merkle_hash *)proof, np)) ||
	    (rc = salus_buf_addc(out, '}')))
		return rc;
	return SALUS_OK;
}
