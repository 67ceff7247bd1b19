/*
 * verify.c — verification of a whole audit log: recompute the Merkle tree
 * from the stored event texts and compare it with everything stored and
 * signed (leaf hashes, complete-subtree hashes, checkpoints).  It names the
 * first bad index: a deleted row shows as a gap, an edited event as a leaf
 * mismatch, a moved (swapped, reordered, inserted) event as an event that
 * carries another index, a truncated tail as a checkpoint the log no longer
 * reaches.  The same checks run offline on an exported NDJSON log.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "store/store.h"

#define STOP 1 /* a callback's "found a problem, stop scanning" */

struct cp {
	int64_t size;
	unsigned char root[SALUS_MERKLE_HASH_LEN];
	bool root_ok;
	char *note;
	size_t note_n;
};

struct vstate {
	struct salus_store *st;
	const char *vkey;
	struct salus_audit_report *rep;
	struct salus_merkle_acc acc;
	struct cp *cps;
	size_t ncp, cap, next_cp;
	int64_t covered; /* leaves covered by the last verified checkpoint */
	int err;         /* an error that stopped the scan (not a finding) */
};

static int fail(struct vstate *v, int64_t index, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct vstate *v, int64_t index, const char *fmt, ...)
{
	va_list ap;
	v->rep->bad_index = index;
	va_start(ap, fmt);
	vsnprintf(v->rep->why, sizeof v->rep->why, fmt, ap);
	va_end(ap);
	return STOP;
}

static int cp_collect(void *ctx, const struct salus_audit_checkpoint_row *r)
{
	struct vstate *v = ctx;
	struct cp *c;
	if (v->ncp == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		struct cp *n = salus_realloc(v->cps, cap * sizeof *n);
		if (!n)
			return SALUS_ENOMEM;
		v->cps = n;
		v->cap = cap;
	}
	c = &v->cps[v->ncp];
	memset(c, 0, sizeof *c);
	c->size = r->size;
	c->root_ok = r->root_n == SALUS_MERKLE_HASH_LEN;
	if (c->root_ok)
		memcpy(c->root, r->root, SALUS_MERKLE_HASH_LEN);
	if (!(c->note = salus_strndup(r->note, r->note_n)))
		return SALUS_ENOMEM;
	c->note_n = r->note_n;
	v->ncp++;
	return SALUS_OK;
}

/* Check every checkpoint of exactly the current size. */
static int check_cps(struct vstate *v)
{
	unsigned char root[SALUS_MERKLE_HASH_LEN];
	salus_merkle_acc_root(&v->acc, root);
	while (v->next_cp < v->ncp && v->cps[v->next_cp].size == v->acc.size) {
		struct cp *c = &v->cps[v->next_cp++];
		struct salus_audit_note note;
		int rc = salus_audit_note_verify(c->note, c->note_n, v->vkey, &note);
		if (rc == SALUS_ECRYPTO)
			return fail(v, v->covered, "checkpoint at size %" PRId64 ": signature does not verify with the key",
				    c->size);
		if (rc)
			return fail(v, v->covered, "checkpoint at size %" PRId64 ": malformed signed note", c->size);
		if (note.size != c->size || !c->root_ok || memcmp(note.root, c->root, SALUS_MERKLE_HASH_LEN))
			return fail(v, v->covered, "checkpoint at size %" PRId64 ": stored row differs from its signed note",
				    c->size);
		if (memcmp(root, note.root, SALUS_MERKLE_HASH_LEN))
			return fail(v, v->covered,
				    "checkpoint at size %" PRId64 ": recomputed root differs (one or more of events %" PRId64
				    "..%" PRId64 " were altered)",
				    c->size, v->covered, c->size - 1);
		v->covered = c->size;
		v->rep->checkpoints++;
	}
	return SALUS_OK;
}

static int node_cb(void *ctx, int level, int64_t index, const unsigned char *hash)
{
	struct vstate *v = ctx;
	struct salus_audit_node n = {.level = level, .index = index};
	int rc;
	if (!v->st)
		return SALUS_OK;
	rc = salus_store_audit_nodes(v->st, &n, 1);
	if (rc == SALUS_ENOTFOUND || rc == SALUS_EIO || (!rc && memcmp(n.hash, hash, SALUS_MERKLE_HASH_LEN)))
		return fail(v, index << level,
			    "stored subtree hash (level %d, index %" PRId64 ") is %s: events %" PRId64 "..%" PRId64, level,
			    index, rc ? "missing or damaged" : "wrong", index << level, ((index + 1) << level) - 1);
	if (rc) {
		v->err = rc;
		return STOP;
	}
	return SALUS_OK;
}

/* One event at the next index: its text (NULL when pruned) and stored leaf hash (NULL offline). */
static int push_event(struct vstate *v, int64_t i, const char *event, size_t n, const unsigned char *stored,
		      size_t stored_n)
{
	unsigned char leaf[SALUS_MERKLE_HASH_LEN];
	int rc;

	if (event) {
		salus_merkle_leaf_hash(event, n, leaf);
		if (stored && (stored_n != SALUS_MERKLE_HASH_LEN || memcmp(leaf, stored, SALUS_MERKLE_HASH_LEN)))
			return fail(v, i, "event %" PRId64 " does not match its stored leaf hash (edited)", i);
		if (!salus_audit_event_has_index(event, n, i))
			return fail(v, i, "event %" PRId64 " does not carry its own index (moved, inserted or edited)", i);
	} else {
		/* pruned (retention.c): its text is gone, so its stored leaf hash
		 * stands for it — trusted only because a signed checkpoint covers
		 * it (a root recomputed with a forged hash would not match), so a
		 * pruned event beyond the largest checkpoint is a finding */
		if (!stored || stored_n != SALUS_MERKLE_HASH_LEN)
			return fail(v, i, "pruned event %" PRId64 " has no valid leaf hash", i);
		if (!v->ncp || i >= v->cps[v->ncp - 1].size)
			return fail(v, i,
				    "event %" PRId64 " was pruned but no checkpoint covers it (its leaf hash cannot be "
				    "checked)",
				    i);
		memcpy(leaf, stored, SALUS_MERKLE_HASH_LEN);
		v->rep->pruned++;
	}
	if ((rc = salus_merkle_acc_push(&v->acc, leaf, node_cb, v)))
		return rc;
	v->rep->events++;
	return check_cps(v);
}

static int row_cb(void *ctx, const struct salus_audit_row *r)
{
	struct vstate *v = ctx;
	if (r->index != v->acc.size)
		return fail(v, v->acc.size, "event %" PRId64 " is missing (the next stored event is %" PRId64 ")",
			    v->acc.size, r->index);
	return push_event(v, r->index, r->event, r->event_n, r->leaf_hash, r->leaf_hash_n);
}

static void vstate_release(struct vstate *v)
{
	for (size_t i = 0; i < v->ncp; i++)
		salus_free(v->cps[i].note);
	salus_free(v->cps);
}

/* After the last event: checkpoints beyond the log mean a truncated tail. */
static int finish(struct vstate *v, int rc)
{
	if (rc == STOP)
		return v->err ? v->err : SALUS_EINVALID;
	if (rc)
		return rc;
	if (v->next_cp < v->ncp) {
		struct cp *c = &v->cps[v->next_cp];
		fail(v, v->acc.size,
		     "the log ends at %" PRId64 " events but a checkpoint covers %" PRId64 " (events %" PRId64 "..%" PRId64
		     " are missing)",
		     v->acc.size, c->size, v->acc.size, c->size - 1);
		return SALUS_EINVALID;
	}
	return SALUS_OK;
}

int salus_audit_verify_store(struct salus_store *st, const char *vkey, struct salus_audit_report *rep)
{
	struct vstate v;
	int rc;

	if (!st || !rep)
		return SALUS_EINVALID;
	memset(rep, 0, sizeof *rep);
	rep->bad_index = -1;
	memset(&v, 0, sizeof v);
	v.st = st;
	v.vkey = vkey;
	v.rep = rep;
	salus_merkle_acc_init(&v.acc);
	if ((rc = salus_store_audit_checkpoints(st, false, cp_collect, &v)))
		goto out;
	rc = check_cps(&v); /* a checkpoint of the empty tree */
	if (!rc)
		rc = salus_store_audit_scan(st, 0, 0, row_cb, &v);
	rc = finish(&v, rc);
out:
	vstate_release(&v);
	return rc;
}

#define PRUNED_HEAD "{\"salusPruned\":{\"index\":"

size_t salus_audit_pruned_line(int64_t index, const unsigned char *leaf_hash, size_t n, char *out, size_t cap)
{
	char b64[sodium_base64_ENCODED_LEN(SALUS_MERKLE_HASH_LEN, sodium_base64_VARIANT_ORIGINAL)];
	if (!leaf_hash || n != SALUS_MERKLE_HASH_LEN || index < 0)
		return 0;
	sodium_bin2base64(b64, sizeof b64, leaf_hash, n, sodium_base64_VARIANT_ORIGINAL);
	int k = snprintf(out, cap, PRUNED_HEAD "%" PRId64 ",\"leafHash\":\"%s\"}}", index, b64);
	return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}

/* A pruned event's line at index i: its leaf hash into leaf.  false: not such a line (an event). */
static bool pruned_line(const char *s, size_t n, int64_t i, unsigned char leaf[SALUS_MERKLE_HASH_LEN], bool *bad)
{
	char want[160];
	size_t k = salus_audit_pruned_line(i, leaf, SALUS_MERKLE_HASH_LEN, want, sizeof want);
	size_t head = sizeof PRUNED_HEAD - 1;
	*bad = false;
	if (n < head || memcmp(s, PRUNED_HEAD, head))
		return false;
	/* exactly the line the export writes for index i, whatever hash it carries */
	const char *h = strstr(s, "\"leafHash\":\"");
	size_t bin = 0;
	const char *end = NULL;
	if (!h || sodium_base642bin(leaf, SALUS_MERKLE_HASH_LEN, h + 12, (size_t)(s + n - (h + 12)), NULL, &bin, &end,
				    sodium_base64_VARIANT_ORIGINAL) ||
	    bin != SALUS_MERKLE_HASH_LEN ||
	    !(k = salus_audit_pruned_line(i, leaf, SALUS_MERKLE_HASH_LEN, want, sizeof want)) || k != n ||
	    memcmp(want, s, n))
		*bad = true;
	return true;
}

int salus_audit_verify_export(const char *ndjson_path, const char *note, size_t note_n, const char *vkey,
			      struct salus_audit_report *rep)
{
	struct salus_audit_note parsed;
	struct salus_buf line;
	struct vstate v;
	char chunk[8192];
	FILE *f;
	int rc;

	if (!ndjson_path || !note || !vkey || !rep)
		return SALUS_EINVALID;
	memset(rep, 0, sizeof *rep);
	rep->bad_index = -1;
	memset(&v, 0, sizeof v);
	v.vkey = vkey;
	v.rep = rep;
	salus_merkle_acc_init(&v.acc);
	rc = salus_audit_note_verify(note, note_n, vkey, &parsed);
	if (rc) {
		snprintf(rep->why, sizeof rep->why, "%s",
			 rc == SALUS_ECRYPTO ? "the checkpoint's signature does not verify with the key"
					     : "the checkpoint or key is malformed");
		return SALUS_EINVALID;
	}
	if (!(v.cps = salus_calloc(1, sizeof *v.cps)) || !(v.cps[0].note = salus_strndup(note, note_n))) {
		rc = SALUS_ENOMEM;
		goto out;
	}
	v.ncp = v.cap = 1;
	v.cps[0].size = parsed.size;
	v.cps[0].note_n = note_n;
	v.cps[0].root_ok = true;
	memcpy(v.cps[0].root, parsed.root, SALUS_MERKLE_HASH_LEN);
	if (!(f = fopen(ndjson_path, "rb"))) {
		rc = SALUS_ENOTFOUND;
		goto out;
	}
	salus_buf_init(&line, SALUS_MAX_AUDIT_EVENT + 2);
	rc = check_cps(&v);
	while (!rc && v.acc.size < parsed.size && fgets(chunk, sizeof chunk, f)) {
		size_t k = strlen(chunk);
		if ((rc = salus_buf_add(&line, chunk, k)))
			break;
		if (k && chunk[k - 1] != '\n' && !feof(f))
			continue; /* a long line: keep reading it */
		if (line.n && line.p[line.n - 1] == '\n')
			line.p[--line.n] = 0;
		if (line.n && line.p[line.n - 1] == '\r')
			line.p[--line.n] = 0;
		unsigned char leaf[SALUS_MERKLE_HASH_LEN];
		bool bad;
		if (pruned_line(line.p, line.n, v.acc.size, leaf, &bad))
			rc = bad ? fail(&v, v.acc.size, "line %" PRId64 " is a malformed pruned-event line", v.acc.size)
				 : push_event(&v, v.acc.size, NULL, 0, leaf, sizeof leaf);
		else
			rc = push_event(&v, v.acc.size, line.p, line.n, NULL, 0);
		salus_buf_reset(&line);
	}
	if (!rc && ferror(f))
		rc = SALUS_EIO;
	fclose(f);
	salus_buf_release(&line);
	rc = finish(&v, rc);
out:
	vstate_release(&v);
	return rc;
}
