/*
 * store.c — the backend-independent front of store.h.
 *
 * Picks a backend from the URI, checks every argument once (so backends see
 * only well-formed calls and client input never reaches an assert), and owns
 * the pieces every backend shares: release functions and the stamping of id /
 * meta into a resource before it is serialised.
 */
#include "store/store_int.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "store/audit_codec.h"
#include "store/splice.h"

void salus_resource_release(struct salus_resource *r)
{
	if (!r)
		return;
	salus_free(r->json);
	r->json = NULL;
	r->len = 0;
}

void salus_write_release(struct salus_write *w)
{
	if (!w)
		return;
	salus_free(w->json);
	w->json = NULL;
	w->len = 0;
}

void salus_store_write_reset(struct salus_write *w)
{
	salus_write_release(w);
	w->rc = SALUS_OK;
	w->id_out[0] = 0;
	w->version = 0;
	w->updated_ms = 0;
	w->created = false;
	w->seq = 0;
}

static bool name_ok(const char *s, size_t max)
{
	if (!s || !*s)
		return false;
	return strnlen(s, max + 1) <= max;
}

/* FHIR id: [A-Za-z0-9\-\.]{1,64} */
static bool fhir_id_ok(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		if (n >= SALUS_MAX_ID)
			return false;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '.'))
			return false;
	}
	return n > 0;
}

static int json_to_buf(const char *p, size_t n, void *ctx)
{
	return salus_buf_add(ctx, p, n) ? -1 : 0;
}

/* Set id, meta.versionId and meta.lastUpdated (vid, instant: formatted) in
 * res (other meta kept). */
static int stamp_tree_as(json_t *res, const char *id, const char *vid, const char *instant)
{
	json_t *meta;

	if (!json_is_object(res))
		return SALUS_EINVALID;
	if (json_object_set_new(res, "id", json_string(id)))
		return SALUS_ENOMEM;
	meta = json_object_get(res, "meta");
	if (!json_is_object(meta)) {
		meta = json_object();
		if (json_object_set_new(res, "meta", meta))
			return SALUS_ENOMEM;
	}
	if (json_object_set_new(meta, "versionId", json_string(vid)) ||
	    json_object_set_new(meta, "lastUpdated", json_string(instant)))
		return SALUS_ENOMEM;
	return SALUS_OK;
}

static int stamp_tree(json_t *res, const char *id, long version, int64_t updated_ms)
{
	char vid[24], instant[SALUS_INSTANT_LEN];
	snprintf(vid, sizeof vid, "%ld", version);
	salus_instant_format(updated_ms, instant);
	return stamp_tree_as(res, id, vid, instant);
}

int salus_store_stamp(json_t *res, const char *id, long version, int64_t updated_ms, char **json, size_t *len)
{
	struct salus_buf b;
	int rc;

	if ((rc = stamp_tree(res, id, version, updated_ms)))
		return rc;
	salus_buf_init(&b, SALUS_STORE_MAX_JSON);
	rc = json_dump_callback(res, json_to_buf, &b, JSON_COMPACT);
	if (rc) {
		/* the buffer freed itself; measure to tell the cap from a failed allocation */
		salus_buf_release(&b);
		return json_dumpb(res, NULL, 0, JSON_COMPACT) > SALUS_STORE_MAX_JSON ? SALUS_ETOOLARGE : SALUS_ENOMEM;
	}
	*json = salus_buf_detach(&b, len);
	return *json ? SALUS_OK : SALUS_ENOMEM;
}

/* Newest millisecond put in an id by this process: ids never go back in time
 * order, even when the wall clock steps back (RFC 9562 §6.2 allows it). */
static _Atomic int64_t id_last_ms;

void salus_store_id_new(char out[SALUS_UUID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char r[16];
	int64_t now = salus_now_ms(), last = atomic_load(&id_last_ms);
	while (now > last && !atomic_compare_exchange_weak(&id_last_ms, &last, now))
		;
	uint64_t ms = (uint64_t)(now > last ? now : last);
	size_t got = 6, o = 0;

	for (int i = 0; i < 6; i++)
		r[i] = (unsigned char)(ms >> (40 - 8 * i));
	while (got < sizeof r) {
		ssize_t k = getrandom(r + got, sizeof r - got, 0);
		if (k > 0)
			got += (size_t)k;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x70); /* version 7 */
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* variant 10 */
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[r[i] >> 4];
		out[o++] = hex[r[i] & 15];
	}
	out[o] = 0;
}

/* The compact JSON of a stamped meta (what json_dump_callback writes): the
 * usual {versionId, lastUpdated} object is formatted directly (both values
 * are server-made ASCII: digits, an instant), any other meta by jansson. */
static int meta_text(json_t *meta, struct salus_buf *m)
{
	void *it = json_object_iter(meta);
	void *it2 = it ? json_object_iter_next(meta, it) : NULL;
	if (json_object_size(meta) == 2 && !strcmp(json_object_iter_key(it), "versionId") &&
	    !strcmp(json_object_iter_key(it2), "lastUpdated") && json_is_string(json_object_iter_value(it)) &&
	    json_is_string(json_object_iter_value(it2)))
		return salus_buf_addf(m, "{\"versionId\":\"%s\",\"lastUpdated\":\"%s\"}",
				      json_string_value(json_object_iter_value(it)),
				      json_string_value(json_object_iter_value(it2)));
	return json_dump_callback(meta, json_to_buf, m, JSON_COMPACT) ? SALUS_ENOMEM : SALUS_OK;
}

int salus_store_stamp_raw(json_t *res, const char *raw, size_t raw_len, bool compact, const char *id, long version,
			  int64_t updated_ms, char **json, size_t *len)
{
	struct salus_buf m, b;
	int rc;

	if (!raw)
		return salus_store_stamp(res, id, version, updated_ms, json, len);
	if (compact) {
		/* the meta merged from the text, not dumped from the tree: one pass, no jansson */
		char vid[24], instant[SALUS_INSTANT_LEN];
		snprintf(vid, sizeof vid, "%ld", version);
		salus_instant_format(updated_ms, instant);
		salus_buf_init(&b, SALUS_STORE_MAX_JSON);
		rc = salus_json_splice_compact(&b, raw, raw_len, id, vid, instant);
		if (!rc) {
			*json = salus_buf_detach(&b, len);
			return *json ? SALUS_OK : SALUS_ENOMEM; /* res is left as it is (store.h) */
		}
		salus_buf_release(&b);
		if (rc != SALUS_EINVALID)
			return rc;
		/* not the common shape: the general splice decides, from the stamped tree */
		if ((rc = stamp_tree_as(res, id, vid, instant)))
			return rc;
	} else if ((rc = stamp_tree(res, id, version, updated_ms))) {
		return rc;
	}
	salus_buf_init(&m, SALUS_STORE_MAX_JSON);
	if ((rc = meta_text(json_object_get(res, "meta"), &m))) {
		salus_buf_release(&m);
		return rc;
	}
	salus_buf_init(&b, SALUS_STORE_MAX_JSON);
	rc = salus_json_splice(&b, raw, raw_len, id, m.p, m.n, NULL, NULL);
	salus_buf_release(&m);
	if (rc) {
		salus_buf_release(&b);
		if (rc == SALUS_EINVALID) /* not spliceable (escaped top-level keys): serialise the tree */
			return salus_store_stamp(res, id, version, updated_ms, json, len);
		return rc;
	}
	*json = salus_buf_detach(&b, len);
	return *json ? SALUS_OK : SALUS_ENOMEM;
}

/* ---- open / free ---- */

int salus_store_open(const char *uri, const struct salus_store_opts *opts, struct salus_store **out)
{
	static const struct salus_store_opts defaults = {.create = false};
	const char *path = uri;

	if (!uri || !*uri || !out)
		return SALUS_EINVALID;
	if (!opts)
		opts = &defaults;
	if (opts->readers < 0 || opts->batch_max < 0)
		return SALUS_EINVALID;
	if (!strncmp(uri, "sqlite:", 7)) {
		path = uri + 7;
	} else if (!strncmp(uri, "postgres://", 11) || !strncmp(uri, "postgresql://", 13) ||
		   !strncmp(uri, "pg:", 3)) {
		salus_log(SALUS_LOG_ERROR, "store.open", "backend=pg err=not-built");
		return SALUS_EINVALID;
	}
	if (!*path || !strcmp(path, ":memory:"))
		return SALUS_EINVALID; /* readers need a shared file */
	return salus_store_sqlite_ops.open(path, opts, out);
}

void salus_store_free(struct salus_store *s)
{
	if (s)
		s->ops->close(s);
}

/* ---- reads ---- */

int salus_store_read(struct salus_store *s, const char *type, const char *id, long version,
		     struct salus_resource *out)
{
	if (!s || !out || !name_ok(type, SALUS_MAX_TYPE) || !name_ok(id, SALUS_MAX_ID) || version < 0)
		return SALUS_EINVALID;
	return s->ops->read(s, type, id, version, out);
}

static int history_q_ok(const struct salus_history_q *q)
{
	if (!q || q->since_ms < 0 || q->before_seq < 0 || q->at_most_seq < 0)
		return SALUS_EINVALID;
	if (q->type && !name_ok(q->type, SALUS_MAX_TYPE))
		return SALUS_EINVALID;
	if (q->id && (!q->type || !name_ok(q->id, SALUS_MAX_ID)))
		return SALUS_EINVALID;
	return SALUS_OK;
}

int salus_store_history(struct salus_store *s, const struct salus_history_q *q, salus_resource_cb cb, void *ctx)
{
	if (!s || !cb || history_q_ok(q) || q->count < 1)
		return SALUS_EINVALID;
	return s->ops->history(s, q, cb, ctx);
}

int salus_store_history_count(struct salus_store *s, const struct salus_history_q *q, long *total)
{
	if (!s || !total || history_q_ok(q))
		return SALUS_EINVALID;
	return s->ops->history_count(s, q, total);
}

int salus_store_last_seq(struct salus_store *s, int64_t *seq)
{
	if (!s || !seq)
		return SALUS_EINVALID;
	return s->ops->last_seq(s, seq);
}

int salus_store_list(struct salus_store *s, const char *type, const char *after_id, int count,
		     salus_resource_cb cb, void *ctx)
{
	if (!s || !cb || count < 1 || !name_ok(type, SALUS_MAX_TYPE) ||
	    (after_id && strnlen(after_id, SALUS_MAX_ID + 1) > SALUS_MAX_ID))
		return SALUS_EINVALID;
	return s->ops->list(s, type, after_id, count, cb, ctx);
}

int salus_store_count(struct salus_store *s, const char *type, long *total)
{
	if (!s || !total || (type && !name_ok(type, SALUS_MAX_TYPE)))
		return SALUS_EINVALID;
	return s->ops->count(s, type, total);
}

int salus_store_find_by_identifier(struct salus_store *s, const char *type, const char *system, const char *value,
				   salus_id_cb cb, void *ctx)
{
	if (!s || !cb || !name_ok(type, SALUS_MAX_TYPE) || !value || !*value)
		return SALUS_EINVALID;
	return s->ops->find_by_identifier(s, type, system, value, cb, ctx);
}

/* ---- search (store_index.c checks the query itself) ---- */

static bool sq_ok(const struct salus_sq *q)
{
	return q && q->count >= 0 && q->nsort <= SALUS_SQ_MAX_SORT && (!q->type || name_ok(q->type, SALUS_MAX_TYPE)) &&
	       (q->nclauses == 0 || q->clauses);
}

int salus_store_search(struct salus_store *s, const struct salus_sq *q, salus_sq_cb cb, void *ctx)
{
	if (!s || !cb || !sq_ok(q))
		return SALUS_EINVALID;
	return s->ops->search(s, q, cb, ctx);
}

int salus_store_search_count(struct salus_store *s, const struct salus_sq *q, long *total)
{
	if (!s || !total || !sq_ok(q))
		return SALUS_EINVALID;
	return s->ops->search_count(s, q, total);
}

int salus_store_search_plan(struct salus_store *s, const struct salus_sq *q, bool count, char **plan)
{
	if (!s || !plan || !sq_ok(q))
		return SALUS_EINVALID;
	return s->ops->search_plan(s, q, count, plan);
}

/* ---- writes ---- */

static int write_op_ok(const struct salus_write *w)
{
	if (!name_ok(w->type, SALUS_MAX_TYPE))
		return SALUS_EINVALID;
	switch (w->kind) {
	case SALUS_WRITE_CREATE:
		if (w->id && !fhir_id_ok(w->id))
			return SALUS_EINVALID;
		return json_is_object(w->resource) ? SALUS_OK : SALUS_EINVALID;
	case SALUS_WRITE_UPDATE:
	case SALUS_WRITE_REINDEX:
		if (!fhir_id_ok(w->id))
			return SALUS_EINVALID;
		return json_is_object(w->resource) ? SALUS_OK : SALUS_EINVALID;
	case SALUS_WRITE_DELETE:
		return fhir_id_ok(w->id) ? SALUS_OK : SALUS_EINVALID;
	}
	return SALUS_EINVALID;
}

void salus_store_set_indexer(struct salus_store *s, const struct salus_store_indexer *ix)
{
	if (s)
		atomic_store(&s->indexer, ix);
}

const struct salus_store_indexer *salus_store_get_indexer(struct salus_store *s)
{
	return s ? atomic_load(&s->indexer) : NULL;
}

/* Run the write (with audit entries when audited), first computing index rows
 * through the hook for ops that carry none (store.h). */
static int write_indexed(struct salus_store *s, struct salus_write *ops, size_t n, struct salus_audit_entry *e,
			 size_t ne, bool audited)
{
	const struct salus_store_indexer *ix = atomic_load(&s->indexer);
	void *stack_states[8], **states = stack_states;
	size_t i, built = 0;
	int rc = SALUS_OK;

	if (ix && n > sizeof stack_states / sizeof *stack_states &&
	    !(states = salus_calloc(n, sizeof *states)))
		return SALUS_ENOMEM;
	for (i = 0; ix && i < n; i++, built++) {
		states[i] = NULL;
		if (ops[i].index || ops[i].kind == SALUS_WRITE_DELETE || !ops[i].resource)
			continue;
		if ((rc = ix->build(ix->ctx, ops[i].type, ops[i].resource, &ops[i].index, &states[i]))) {
			ops[i].rc = rc;
			goto out_done;
		}
	}
	rc = audited ? s->ops->audit_write(s, ops, n, e, ne) : s->ops->write(s, ops, n);
out_done:
	for (i = 0; i < built; i++)
		if (states[i]) {
			ix->done(ix->ctx, states[i]);
			ops[i].index = NULL;
		}
	if (states != stack_states)
		salus_free(states);
	return rc;
}

int salus_store_write(struct salus_store *s, struct salus_write *ops, size_t n)
{
	size_t i;
	if (!s || (n && !ops))
		return SALUS_EINVALID;
	for (i = 0; i < n; i++) {
		ops[i].json = NULL; /* results are output-only; never free what the caller left there */
		salus_store_write_reset(&ops[i]);
	}
	for (i = 0; i < n; i++) {
		int rc = write_op_ok(&ops[i]);
		if (rc) {
			ops[i].rc = rc;
			return rc;
		}
		if (ops[i].if_match < 0) {
			ops[i].rc = SALUS_EINVALID;
			return SALUS_EINVALID;
		}
	}
	if (!n)
		return SALUS_OK;
	return write_indexed(s, ops, n, NULL, 0, false);
}

/* ---- crypto-shredding ---- */

int salus_store_patient_erase(struct salus_store *s, const char *pid, struct salus_erase_result *out)
{
	if (!s || !out || !fhir_id_ok(pid))
		return SALUS_EINVALID;
	memset(out, 0, sizeof *out);
	return s->ops->patient_erase ? s->ops->patient_erase(s, pid, out) : SALUS_EINVALID;
}

int salus_store_patient_replay(struct salus_store *s, size_t *npatients, long *nresources)
{
	if (!s || !npatients || !nresources)
		return SALUS_EINVALID;
	*npatients = 0;
	*nresources = 0;
	return s->ops->patient_replay ? s->ops->patient_replay(s, npatients, nresources) : SALUS_EINVALID;
}

int salus_store_patient_rewrap(struct salus_store *s, size_t *n)
{
	if (!s)
		return SALUS_EINVALID;
	return s->ops->patient_rewrap ? s->ops->patient_rewrap(s, n) : SALUS_EINVALID;
}

int salus_store_backup(struct salus_store *s, const char *dest_db, const char *dest_keys)
{
	if (!s || !dest_db || !*dest_db || (dest_keys && !*dest_keys))
		return SALUS_EINVALID;
	return s->ops->backup ? s->ops->backup(s, dest_db, dest_keys) : SALUS_EINVALID;
}

/* ---- kv ---- */

int salus_store_kv_put(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n)
{
	if (!s || !name_ok(ns, SALUS_STORE_MAX_KV_NAME) || !name_ok(key, SALUS_STORE_MAX_KV_NAME) ||
	    (n && !val))
		return SALUS_EINVALID;
	if (n > SALUS_STORE_MAX_JSON)
		return SALUS_ETOOLARGE;
	return s->ops->kv_put(s, ns, key, n ? val : "", n);
}

int salus_store_kv_get(struct salus_store *s, const char *ns, const char *key, char **val, size_t *n)
{
	if (!s || !val || !name_ok(ns, SALUS_STORE_MAX_KV_NAME) || !name_ok(key, SALUS_STORE_MAX_KV_NAME))
		return SALUS_EINVALID;
	return s->ops->kv_get(s, ns, key, val, n);
}

int salus_store_kv_del(struct salus_store *s, const char *ns, const char *key)
{
	if (!s || !name_ok(ns, SALUS_STORE_MAX_KV_NAME) || !name_ok(key, SALUS_STORE_MAX_KV_NAME))
		return SALUS_EINVALID;
	return s->ops->kv_del(s, ns, key);
}

int salus_store_kv_list(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx)
{
	if (!s || !cb || !name_ok(ns, SALUS_STORE_MAX_KV_NAME))
		return SALUS_EINVALID;
	return s->ops->kv_list(s, ns, cb, ctx);
}

/* ---- audit log ---- */

#define MAX_AUDIT_LEVEL 62

/* compact: entries may be in the compact form (salus_store_audit_journal only) */
static int audit_entries_ok(struct salus_audit_entry *e, size_t n, bool compact)
{
	if (n && !e)
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		size_t len = e[i].pre_n + e[i].post_n;
		e[i].index = -1;
		memset(e[i].leaf_hash, 0, sizeof e[i].leaf_hash);
		if (e[i].cpre || e[i].cpost || e[i].cpre_n || e[i].cpost_n) {
			size_t pn, qn = 0;
			if (!compact || !e[i].cpre || e[i].pre || e[i].pre_n || e[i].post || e[i].post_n ||
			    (!e[i].cpost && e[i].cpost_n) || e[i].ts_ms < 0 ||
			    salus_auc_text_len(e[i].cpre, e[i].cpre_n, &pn) ||
			    (e[i].cpost && salus_auc_text_len(e[i].cpost, e[i].cpost_n, &qn)))
				return SALUS_EINVALID;
			if (pn + 20 > SALUS_MAX_AUDIT_EVENT || qn + 20 > SALUS_MAX_AUDIT_EVENT ||
			    pn + qn + 20 > SALUS_MAX_AUDIT_EVENT)
				return SALUS_ETOOLARGE;
			continue;
		}
		if ((e[i].pre_n && !e[i].pre) || (!e[i].post && e[i].post_n) || e[i].ts_ms < 0)
			return SALUS_EINVALID;
		if (len < e[i].pre_n || len + 20 > SALUS_MAX_AUDIT_EVENT)
			return SALUS_ETOOLARGE;
	}
	return SALUS_OK;
}

int salus_store_audit_append(struct salus_store *s, struct salus_audit_entry *e, size_t n)
{
	int rc;
	if (!s)
		return SALUS_EINVALID;
	if ((rc = audit_entries_ok(e, n, false)))
		return rc;
	if (!n)
		return SALUS_OK;
	return s->ops->audit_write(s, NULL, 0, e, n);
}

int salus_store_audit_journal(struct salus_store *s, const struct salus_audit_entry *e)
{
	struct salus_audit_entry c;
	int rc;
	if (!s || !e)
		return SALUS_EINVALID;
	c = *e;
	if ((rc = audit_entries_ok(&c, 1, true)))
		return rc;
	return s->ops->audit_journal(s, &c);
}

int salus_store_read_begin(struct salus_store *s)
{
	if (!s)
		return SALUS_EINVALID;
	return s->ops->read_begin ? s->ops->read_begin(s) : SALUS_OK;
}

void salus_store_read_end(struct salus_store *s)
{
	if (s && s->ops->read_end)
		s->ops->read_end(s);
}

int salus_store_audit_settle(struct salus_store *s)
{
	if (!s)
		return SALUS_EINVALID;
	return s->ops->audit_settle(s);
}

int salus_store_write_audited(struct salus_store *s, struct salus_write *ops, size_t n, struct salus_audit_entry *e,
			      size_t ne)
{
	size_t i;
	int rc;
	if (!s || (n && !ops))
		return SALUS_EINVALID;
	if ((rc = audit_entries_ok(e, ne, false)))
		return rc;
	for (i = 0; i < n; i++) {
		ops[i].json = NULL;
		salus_store_write_reset(&ops[i]);
	}
	for (i = 0; i < n; i++) {
		rc = write_op_ok(&ops[i]);
		if (!rc && ops[i].if_match < 0)
			rc = SALUS_EINVALID;
		if (rc) {
			ops[i].rc = rc;
			return rc;
		}
	}
	if (!n && !ne)
		return SALUS_OK;
	return write_indexed(s, ops, n, e, ne, true);
}

int salus_store_audit_size(struct salus_store *s, int64_t *size)
{
	int rc;
	if (!s || !size)
		return SALUS_EINVALID;
	if ((rc = s->ops->audit_settle(s)))
		return rc;
	return s->ops->audit_size(s, size);
}

int salus_store_audit_nodes(struct salus_store *s, struct salus_audit_node *v, size_t n)
{
	if (!s || (n && !v))
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++)
		if (v[i].level < 0 || v[i].level > MAX_AUDIT_LEVEL || v[i].index < 0 ||
		    v[i].index > (INT64_MAX >> v[i].level))
			return SALUS_EINVALID;
	if (!n)
		return SALUS_OK;
	return s->ops->audit_nodes(s, v, n);
}

int salus_store_audit_scan(struct salus_store *s, int64_t from, int64_t count, salus_audit_row_cb cb, void *ctx)
{
	int rc;
	if (!s || !cb || from < 0 || count < 0)
		return SALUS_EINVALID;
	if ((rc = s->ops->audit_settle(s)))
		return rc;
	return s->ops->audit_scan(s, from, count, cb, ctx);
}

int salus_store_audit_checkpoint_put(struct salus_store *s, int64_t size, const unsigned char root[SALUS_AUDIT_HASH_LEN],
				     int64_t ts_ms, const char *note)
{
	if (!s || !root || !note || size < 0 || ts_ms < 0)
		return SALUS_EINVALID;
	if (strlen(note) > SALUS_MAX_AUDIT_EVENT)
		return SALUS_ETOOLARGE;
	return s->ops->audit_checkpoint_put(s, size, root, ts_ms, note);
}

int salus_store_audit_checkpoints(struct salus_store *s, bool latest_only, salus_audit_checkpoint_cb cb, void *ctx)
{
	if (!s || !cb)
		return SALUS_EINVALID;
	return s->ops->audit_checkpoints(s, latest_only, cb, ctx);
}
