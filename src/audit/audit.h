/*
 * audit.h — the tamper-evident audit trail (DESIGN.md §5, docs/audit.md).
 *
 * Every access becomes a FHIR R4 AuditEvent shaped by the IHE Basic Audit Log
 * Patterns (BALP), holding identifiers only — never a request body, a name or
 * a search result.  Events are leaves of an append-only RFC 6962 Merkle log
 * kept by the store (store.h: salus_store_audit_*), appended through its
 * group-commit writer, so the events of concurrent requests share one
 * transaction and one fsync.  Ed25519-signed checkpoints in the C2SP
 * signed-note format commit to (tree size, root hash); inclusion and
 * consistency proofs let anyone holding a checkpoint check the log without
 * trusting the server.
 *
 * Lifecycle: salus_audit_new() → any number of threads call
 * salus_audit_record() and the proof functions → salus_audit_free().  The
 * store must outlive the context.
 */
#ifndef SALUS_AUDIT_H
#define SALUS_AUDIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/merkle.h"
#include "core/buf.h"

struct salus_store;

/* ---- the AuditEvent builder (IHE BALP shapes) --------------------------------------------------- */

/* What happened.  Each maps to AuditEvent.type / subtype / action (docs/audit.md has the table). */
enum salus_audit_interaction {
	SALUS_AUDIT_READ,           /* rest read           action R */
	SALUS_AUDIT_VREAD,          /* rest vread          action R */
	SALUS_AUDIT_UPDATE,         /* rest update         action U */
	SALUS_AUDIT_PATCH,          /* rest patch          action U */
	SALUS_AUDIT_DELETE,         /* rest delete         action D */
	SALUS_AUDIT_HISTORY,        /* rest history-instance action R */
	SALUS_AUDIT_HISTORY_TYPE,   /* rest history-type   action R */
	SALUS_AUDIT_HISTORY_SYSTEM, /* rest history-system action R */
	SALUS_AUDIT_CREATE,         /* rest create         action C */
	SALUS_AUDIT_SEARCH,         /* rest search-type    action E */
	SALUS_AUDIT_SEARCH_SYSTEM,  /* rest search-system  action E */
	SALUS_AUDIT_CAPABILITIES,   /* rest capabilities   action R */
	SALUS_AUDIT_OPERATION,      /* rest operation      action E ($everything, $export...) */
	SALUS_AUDIT_BATCH,          /* rest batch          action E */
	SALUS_AUDIT_TRANSACTION,    /* rest transaction    action E */
	SALUS_AUDIT_LOGIN,          /* DCM 110114 User Authentication / 110122 Login   action E */
	SALUS_AUDIT_LOGOUT,         /* DCM 110114 User Authentication / 110123 Logout  action E */
	SALUS_AUDIT_TOKEN,          /* DCM 110114 / 110122: an OAuth token issued (or refused) action E */
	SALUS_AUDIT_AUDIT_READ,     /* reading the audit trail itself (checkpoint, proofs) action R */
	SALUS_AUDIT_ADMIN,          /* DCM 110100 Application Activity (keys, clients, config) action E */
	SALUS_AUDIT__COUNT
};

#define SALUS_AUDIT_MAX_PATIENTS 10000 /* patient entities in one event */

/* One event to record.  Everything is borrowed for the call; NULL / 0 means absent. */
struct salus_audit_req {
	enum salus_audit_interaction interaction;
	const char *resource_type;        /* e.g. "Observation" (the entity touched) */
	const char *id;                   /* its id */
	long version;                     /* > 0: vread/update/create version (entity reference gets _history/N) */
	const char *const *patients;      /* ids of every patient whose record was touched */
	size_t npatients;                 /* <= SALUS_AUDIT_MAX_PATIENTS */
	int status;                       /* the HTTP status answered: < 400 → outcome 0, 4xx → 4, 5xx → 8,
					     0 (no answer could be given) → 12 */
	const char *client_id;            /* OAuth client (agent who, requestor) */
	const char *user_id;              /* the user, when a user is behind the client */
	const char *remote_addr;          /* the peer's IP address (agent network) */
	const char *query;                /* search / operation query string, as received (stored base64) */
	const char *purpose;              /* purposeOfUse code (v3 ActReason, e.g. TREAT, ETREAT) */
	const char *operation;            /* operation name for SALUS_AUDIT_OPERATION ("$export") */
	int64_t ts_ms;                    /* when (0: now) */
	bool status_2xx;                  /* the event is built before its write and commits only with it
					     (salus_store_write_audited): outcome 0, and no outcomeDesc, since
					     the exact 2xx (200 or 201 for an update) is not known yet */
};

/* Render the event text with `id` = index: the canonical text the log
 * stores, `{"resourceType":"AuditEvent","id":"<index>",...}` (compact JSON,
 * UTF-8, no newline).  Split as pre + index + post for the store's splice
 * (store.h).  *pre and *post are owned by the caller (salus_free).
 * Errors: SALUS_EINVALID (bad interaction, too many patients, strings that
 * are not UTF-8), SALUS_ETOOLARGE, SALUS_ENOMEM. */
int salus_audit_event_render(const struct salus_audit_req *rq, char **pre /* OUT */, size_t *pre_n /* OUT */,
			     char **post /* OUT */, size_t *post_n /* OUT */);

/* True when `event` (n bytes) starts with the canonical prefix for index i
 * (what `salus audit verify` checks so a moved row is caught at its index). */
bool salus_audit_event_has_index(const char *event, size_t n, int64_t i);

/* ---- the audit context ------------------------------------------------------------------------- */

struct salus_audit; /* opaque */

struct salus_audit_opts {
	const char *key_path;     /* Ed25519 key file for checkpoints (salus_audit_key_create); required */
	const char *origin;       /* checkpoint origin line; NULL: "salus.audit/<first 16 chars of the key id>" */
	int checkpoint_every_s;   /* > 0: a thread signs a checkpoint this often when the tree grew; 0: off */
};

/* Create the key file (mode 0600, never replacing one) and the matching
 * public verifier key next to it (path with ".pub": C2SP note verifier
 * key "origin+keyhash+base64(0x01||pk)").  Errors: SALUS_EEXISTS, SALUS_EIO. */
int salus_audit_key_create(const char *path);

/* Errors: SALUS_EINVALID (bad options), errors of salus_signkey_load, SALUS_ENOMEM, SALUS_EINTERNAL. */
int salus_audit_new(struct salus_store *st, const struct salus_audit_opts *o, struct salus_audit **out /* OUT */);
/* Stops the checkpoint thread (signing a last checkpoint if the tree grew) and frees.  NULL-safe. */
void salus_audit_free(struct salus_audit *au);

/* Record one event and block until it is durable (fail closed: any error
 * means it was NOT recorded and the caller must not release the response).
 * *index (may be NULL) gets its log index.
 * Errors: those of salus_audit_event_render and salus_store_audit_append. */
int salus_audit_record(struct salus_audit *au, const struct salus_audit_req *rq, int64_t *index /* OUT */);

/* Record one event through the store's audit journal (salus_store_audit_journal,
 * docs/audit.md "The journal"): when this returns SALUS_OK the event is written
 * (sealed) to the journal file — it survives a crash of the process — and the
 * store's writer moves it into the Merkle log, durably, within
 * [audit] flush_ms.  What the HTTP layer uses for reads and searches: the
 * response is released after this returns SALUS_OK and never otherwise (fail
 * closed), without a commit per request.
 * Errors: as salus_audit_record, and SALUS_EIO once the journal cannot be moved
 * into the log. */
int salus_audit_record_journal(struct salus_audit *au, const struct salus_audit_req *rq);

/* Apply n store writes and append the event in the SAME transaction
 * (salus_store_write_audited): on SALUS_OK both are durable; on any error
 * neither was written (fail closed), and the caller records the failure as
 * its own event.  The event is built before the write, so rq must already
 * name what the write will do (a CREATE needs its id: the caller assigns it).
 * Errors: those of salus_audit_event_render (nothing attempted) and of
 * salus_store_write_audited (ops[i].rc as salus_store_write). */
struct salus_write;
int salus_audit_write(struct salus_audit *au, const struct salus_audit_req *rq, struct salus_write *ops, size_t n);

/* A checkpoint: what the signed note commits to. */
struct salus_audit_cp {
	int64_t size;
	unsigned char root[SALUS_MERKLE_HASH_LEN];
	int64_t ts_ms;
	char *note; /* the signed note (owned; salus_audit_cp_release) */
};
void salus_audit_cp_release(struct salus_audit_cp *cp);

/* Sign and store a checkpoint of the current tree unless the latest stored
 * one already covers it; *out (may be NULL) gets the latest checkpoint.
 * Errors: SALUS_EIO, SALUS_ENOMEM, SALUS_ECRYPTO. */
int salus_audit_checkpoint(struct salus_audit *au, struct salus_audit_cp *out /* OUT, may be NULL */);

/* The root of the first `size` leaves, from stored subtrees (O(log n) reads).
 * Errors: SALUS_EINVALID (size beyond the log), SALUS_EIO. */
int salus_audit_root(struct salus_store *st, int64_t size, unsigned char root[SALUS_MERKLE_HASH_LEN] /* OUT */);
/* Inclusion proof of leaf `index` in the tree of `size` leaves (np <= SALUS_MERKLE_MAX_PROOF).
 * Errors: SALUS_EINVALID (index >= size, size beyond the log), SALUS_EIO. */
int salus_audit_prove_inclusion(struct salus_store *st, int64_t index, int64_t size,
				salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF] /* OUT */, size_t *np /* OUT */);
/* Consistency proof from `from` to `to` leaves.  Errors: as above. */
int salus_audit_prove_consistency(struct salus_store *st, int64_t from, int64_t to,
				  salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF] /* OUT */, size_t *np /* OUT */);

/* ---- JSON for the HTTP routes (GET /audit/...) ------------------------------------------------ */
/* Each appends one JSON document to out (which the caller initialised) and
 * returns SALUS_OK, or a SALUS_E* code for the error answer (EINVALID → 400
 * for out-of-range sizes, EIO / ENOMEM → 500).  Hashes are standard base64. */

/* {"origin","size","root","timestamp","note"} of the latest checkpoint (made now if the tree grew). */
int salus_audit_http_checkpoint(struct salus_audit *au, struct salus_buf *out);
/* {"leafIdx","treeSize","root","leafHash","proof":[...]} — the test-vector format. */
int salus_audit_http_inclusion(struct salus_audit *au, int64_t index, int64_t size, struct salus_buf *out);
/* {"size1","size2","root1","root2","proof":[...]} — the test-vector format. */
int salus_audit_http_consistency(struct salus_audit *au, int64_t from, int64_t to, struct salus_buf *out);

/* ---- checking proofs and checkpoints offline --------------------------------------------------- */

enum salus_proof_verdict {
	SALUS_PROOF_VALID = 0,      /* a well-formed proof that verifies */
	SALUS_PROOF_INVALID = 1,    /* readable, but it does not verify (or a hash is malformed) */
	SALUS_PROOF_UNREADABLE = 2, /* not JSON, or neither an inclusion nor a consistency proof */
};
/* Check a JSON inclusion proof {"leafIdx","treeSize","root","leafHash","proof"}
 * or consistency proof {"size1","size2","root1","root2","proof"} (n bytes;
 * "proof" may be null; other members ignored).  *why (may be NULL) gets a
 * static reason. */
enum salus_proof_verdict salus_audit_proof_check(const char *json, size_t n, const char **why /* OUT */);

/* A parsed C2SP checkpoint note (see docs/audit.md). */
struct salus_audit_note {
	char origin[256];
	int64_t size;
	unsigned char root[SALUS_MERKLE_HASH_LEN];
};
/* Verify a signed checkpoint note against a verifier key
 * ("name+hex8+base64(0x01||pk)"): the key name must equal the origin, and a
 * signature line of that key must verify.  Errors: SALUS_EINVALID (malformed
 * note or key), SALUS_ECRYPTO (no valid signature by that key). */
int salus_audit_note_verify(const char *note, size_t n, const char *vkey, struct salus_audit_note *out /* OUT */);
/* The verifier key of the context's signing key (borrowed, NUL-terminated). */
const char *salus_audit_vkey(const struct salus_audit *au);

/* ---- verification of a whole log --------------------------------------------------------------- */

struct salus_audit_report {
	int64_t events;      /* rows read */
	int64_t checkpoints; /* checkpoints verified */
	int64_t bad_index;   /* first bad index, -1 if none */
	char why[256];       /* what is wrong (PHI-free), empty if none */
	int64_t pruned;      /* events whose text was pruned (verified by their stored leaf hash, which a
				checkpoint must cover) */
};
/* Recompute the tree from the stored events: every index present and in
 * order, each event's text hashing to its stored leaf hash and carrying its
 * own index, every stored subtree hash, and every checkpoint (signature by
 * vkey — NULL: the note's signature is only parsed — and root at its size,
 * and the log reaching it).  Returns SALUS_OK when all is well, SALUS_EINVALID
 * when something is wrong (see report), other codes if it could not check. */
int salus_audit_verify_store(struct salus_store *st, const char *vkey, struct salus_audit_report *rep /* OUT */);
/* ---- retention (retention.c; docs/audit.md "Retention") ---------------------------------------- */

/* Prune the text of every event older than before_ms, keeping the log
 * verifiable: first sign a checkpoint of the whole log (so every pruned leaf
 * hash is covered by a signed root), then set the texts to NULL
 * (salus_store_audit_prune; only events below that checkpoint's size), then
 * record an ADMIN AuditEvent for the prune (client_id: who asked, may be
 * NULL; the query says before= and how many were pruned).  *pruned (may be
 * NULL) gets the number pruned.  Errors: those of salus_audit_checkpoint,
 * salus_store_audit_prune and salus_audit_record (the prune is then still
 * done if it got that far). */
int salus_audit_prune(struct salus_audit *au, struct salus_store *st, int64_t before_ms, const char *client_id,
		      int64_t *pruned /* OUT, may be NULL */);

/* The NDJSON line `salus audit export` writes for a pruned event (its text is
 * gone): {"salusPruned":{"index":N,"leafHash":"<base64>"}} — enough for an
 * offline verifier to recompute roots, trusted only under a signed checkpoint
 * (a forged hash changes the root).  Writes at most cap bytes (NUL included);
 * returns the length, or 0 if it does not fit or the hash is not 32 bytes. */
size_t salus_audit_pruned_line(int64_t index, const unsigned char *leaf_hash, size_t n, char *out, size_t cap);

/* The same for an exported NDJSON log (one event per line, as stored; a
 * pruned event as salus_audit_pruned_line) and one signed checkpoint note,
 * offline.  Returns as above. */
int salus_audit_verify_export(const char *ndjson_path, const char *note, size_t note_n, const char *vkey,
			      struct salus_audit_report *rep /* OUT */);

#endif
