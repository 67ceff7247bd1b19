/*
 * store.h — the storage contract of Salus (DESIGN.md §4).
 *
 * A store keeps FHIR resources as versions: a current-version table apart from
 * history, every write a new version, delete a tombstone version.  Writes go
 * through one writer thread with group commit: concurrent salus_store_write
 * calls are batched into one transaction and one fsync, and each call returns
 * only after its transaction is durable (synchronous=FULL).  Readers never
 * block the writer.  All functions are thread-safe on one `struct salus_store`.
 *
 * Backends (sqlite: now; PostgreSQL: later) implement this header and pass the
 * contract suite in tests/unit/store/.  Backend error codes never escape: every
 * function returns SALUS_OK or a SALUS_E* code from core/err.h.
 *
 * The store owns `id` (on create without one), `meta.versionId` and
 * `meta.lastUpdated`: it writes them into the resource it is given before it
 * serialises it, so what is stored and returned is exactly what a read gives
 * (other meta fields the client sent — profile, tag, security — are kept).
 *
 * Time: updated_ms never decreases in seq order across the whole store, and
 * strictly increases from one version of a resource to the next (if the clock
 * did not move, +1 ms), so version order and time order always agree.  It is
 * deliberately not strictly increasing store-wide: at thousands of writes per
 * second that would push lastUpdated ahead of the wall clock without bound.
 */
#ifndef SALUS_STORE_H
#define SALUS_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "core/clock.h"
#include "core/limits.h"

#define SALUS_MAX_TYPE 64

struct salus_store; /* opaque */

/* Process-wide set-up (routes SQLite's allocator through core/alloc.h).
 * Idempotent and thread-safe; salus_store_open calls it.  Call it before any
 * other code in the process uses SQLite (e.g. registers a VFS), otherwise
 * SQLite keeps its own allocator (logged, not an error).  Returns SALUS_OK. */
int salus_store_global_init(void);

/* A page key of the encrypting VFS (docs/security.md): derived by the keyring
 * (crypto/keyring.h) from a data key; the id is the data key's version. */
#define SALUS_PAGE_KEY_LEN 32
struct salus_page_key {
	uint32_t id;                             /* >= 1; stored in every page it seals */
	unsigned char key[SALUS_PAGE_KEY_LEN];
};

struct salus_store_opts {
	bool create;        /* create the database and schema if missing */
	int readers;        /* read connections to pool (0: 2 x cores) */
	int batch_max;      /* max writes per group-commit transaction (0: 512) */
	/* Encryption at rest (added with the keyring).  page_keys (borrowed for
	 * the call; the store keeps its own copy in locked, read-only memory):
	 * every page of the database and its WAL is sealed with XChaCha20-Poly1305
	 * and authenticated on read; pages may be under any of the keys (by id),
	 * new pages are sealed under page_key_id.  NULL: a plaintext database —
	 * for tests and benchmarks only; the salus binary always passes keys
	 * (cli/store_open.h).  A page that fails authentication makes the call
	 * fail with SALUS_EINTEGRITY. */
	const struct salus_page_key *page_keys;
	size_t npage_keys;
	uint32_t page_key_id;
	/* 0, or the key (one of page_keys) an online salus_store_rekey in
	 * another process will move to: the store switches its write key to it
	 * on the first page it reads under it (the keyring's "pending" data key,
	 * prepared by `salus serve`) */
	uint32_t page_key_next;
	/* Per-patient record keys (crypto-shredding; added after the keyring;
	 * docs/security.md).  patient_keys: path of the key database (created
	 * if missing; the salus binary uses DIR/keys/patient-keys.db) — NULL:
	 * bodies are under the page keys only.  pwks: the patient-key wrapping
	 * keys (borrowed for the call; copied into locked memory), any number
	 * of ids, new patient keys wrapped under the highest.  With keys, the
	 * body of every version of a Patient and of every resource whose index
	 * names a compartment owner (salus_ix.patient) is sealed with
	 * XChaCha20-Poly1305 under that patient's key (created on first use),
	 * associated data = patient id, type, id, version. */
	const char *patient_keys;
	const struct salus_page_key *pwks;
	size_t npwks;
	/* every store with patient_keys holds a shared lock on the key database
	 * (PATH.lock); with this, an exclusive one (`salus patient erase`): the
	 * open fails with SALUS_EBUSY while any other process has it open */
	bool patient_keys_exclusive;
	/* The audit journal (salus_store_audit_journal): how long, in ms, a journaled
	 * event may wait before the writer moves it into the log (0: 10).  Longer
	 * means fewer commits; it is also the window an event spends in the journal
	 * file only (written, not yet synced: a power cut in it loses the event;
	 * a crash of the process does not). */
	int audit_flush_ms;
	/* Own the journal: salus_store_audit_journal appends to it (the server).
	 * false: a journal a crash left is still moved into the log at open (if no
	 * other process owns it), then let go; appends are direct. */
	bool audit_journal;
	/* SALUS_PAGE_KEY_LEN bytes (borrowed for the call) that seal the journal
	 * instead of the page keys — the salus binary passes its keyring's
	 * file-sealing key, which `salus key rekey-data` never retires, so a
	 * journal a crash left always opens.  NULL: the page keys (a data key
	 * retired while the journal held records under it would make the next
	 * open fail with SALUS_EINTEGRITY). */
	const unsigned char *audit_journal_key;
};

/* Open a store.  `uri` is "sqlite:PATH" or a plain file path (SQLite).
 * Errors: SALUS_ENOTFOUND (no database and !create), SALUS_EIO, SALUS_ENOMEM,
 * SALUS_EINVALID (unknown scheme, e.g. a postgres:// URI before that backend). */
int salus_store_open(const char *uri, const struct salus_store_opts *opts, struct salus_store **out /* OUT */);
/* Stop the writer (after draining its queue) and close.  NULL-safe. */
void salus_store_free(struct salus_store *s);

/* Progress of salus_store_rekey: pages [1, next_page) are done.  Non-zero
 * stops the run (that value is returned). */
typedef int (*salus_rekey_cb)(void *ctx, uint32_t next_page, uint32_t npages);
/* Re-encrypt every page of an encrypted store under opts->page_key_id
 * (`salus key rekey-data`), starting at page `from` (1: the start; a resumed
 * run passes the last reported next_page — pages already under the new key
 * are skipped anyway).  opts->page_keys must hold the old and the new keys.
 * Online: other connections and processes keep reading and writing; a store
 * open elsewhere must hold the new key as its page_key_next (it then switches
 * to it; a store without the new key fails to read re-sealed pages).  Page 1
 * is first rewritten under the new key through the WAL (the signal to
 * switch), then the file is swept in batches (salus_crypt_rekey_file; sync,
 * then cb, after each), the WAL is checkpointed into it and truncated, and
 * the sweep repeats from page 1 until it finds nothing left under another
 * key and the WAL holds nothing under another key.  Safe to kill at any
 * point: each page is under one key or the other, and a new run finishes.
 * Errors: SALUS_EINVALID (no keys, not sqlite), SALUS_ENOTFOUND,
 * SALUS_EBUSY (locks not obtained, or pages under an old key keep
 * appearing), SALUS_EINTEGRITY, SALUS_EIO, SALUS_ENOMEM. */
int salus_store_rekey(const char *uri, const struct salus_store_opts *opts, uint32_t from, salus_rekey_cb cb,
		      void *ctx);

/* One stored version of a resource, as read. */
struct salus_resource {
	char type[SALUS_MAX_TYPE + 1];
	char id[SALUS_MAX_ID + 1];
	long version;       /* meta.versionId, 1, 2, 3... per resource */
	int64_t updated_ms; /* meta.lastUpdated, ms since epoch, UTC */
	int64_t seq;        /* store-wide, strictly increasing write sequence (history paging key) */
	bool deleted;       /* a tombstone: json is NULL */
	char *json;         /* owned: the resource as stored (compact JSON), NUL-terminated */
	size_t len;
	/* the patient whose record key sealed this body (patient_keys; the body
	 * opened under that key, which authenticates it), else "": the owner the
	 * indexer gave the version (salus_ix.patient) */
	char owner[SALUS_MAX_ID + 1];
};
void salus_resource_release(struct salus_resource *r); /* frees json; NULL-safe */

/* Read the current version (version == 0) or a given version (vread).
 * Errors: SALUS_ENOTFOUND (no such resource or version), SALUS_EGONE (current
 * version is a tombstone; *out is still filled with its type/id/version/
 * updated_ms and deleted = true, so the caller can answer 410 with an ETag). */
int salus_store_read(struct salus_store *s, const char *type, const char *id, long version,
		     struct salus_resource *out /* OUT */);

enum salus_write_kind {
	SALUS_WRITE_CREATE, /* new resource; id assigned (UUID) unless given and absent */
	SALUS_WRITE_UPDATE, /* new version; creates version 1 when the id is absent (update-as-create) */
	SALUS_WRITE_DELETE, /* tombstone version; deleting an absent or deleted resource is SALUS_OK with no new version */
	/* added with search (salus reindex): rewrite the search and identifier index rows of the
	 * current version from resource (its parsed JSON), writing no version; skipped (SALUS_OK,
	 * version 0) when the resource is absent or deleted, or when if_match is set and the
	 * current version is another one (a newer write has indexed itself) */
	SALUS_WRITE_REINDEX,
};

/* One write.  Inputs are borrowed for the duration of the call. */
struct salus_write {
	enum salus_write_kind kind;
	const char *type;   /* resource type, already validated by the caller */
	const char *id;     /* CREATE: NULL for a server-assigned id; else required */
	json_t *resource;   /* CREATE/UPDATE: the resource; the store sets id and meta in it */
	long if_match;      /* 0: unconditional; else the current version must be this (SALUS_EPRECONDITION) */
	/* results, written by the store */
	int rc;             /* this write's status */
	char id_out[SALUS_MAX_ID + 1];
	long version;       /* the new (or, for a no-op delete, the current) version; 0 if none */
	int64_t updated_ms;
	bool created;       /* true when this write made version 1 of a new id */
	char *json;         /* owned: the stored JSON (NULL for delete); freed by salus_write_release */
	size_t len;
	int64_t seq;        /* the new version's store-wide seq; 0 if none (added after v0.1) */
	/* Round-trip fidelity (added with bundles; docs/fhir-rest.md).  raw: the
	 * client's JSON text of `resource` (CREATE/UPDATE; borrowed; NULL: none).
	 * When set, the store writes `{"resourceType":..,"id":..,"meta":<merged
	 * meta>` followed by every other top-level member copied byte for byte
	 * from raw (whitespace removed), instead of re-serialising `resource` — so
	 * decimals such as 1.50, big integers and escapes come back as written.
	 * `resource` must be the parse of raw (the meta merge and the identifier
	 * index use it).  A raw text the splicer cannot handle (a top-level key
	 * written with escapes) falls back to serialising `resource`. */
	const char *raw;
	size_t raw_len;
	/* raw is valid, compact JSON: what salus_json_copy_checked (store/splice.h)
	 * wrote from text a strict parser accepted.  The writer then splices it in
	 * one pass without checking it again (salus_json_splice_compact), and
	 * leaves `resource` without the id and meta (the stored text has them).
	 * Added for transaction ingest; false: raw is checked as it is spliced. */
	bool raw_compact;
	/* CREATE/UPDATE: the search index rows (added with search; see below);
	 * borrowed for the call.  NULL: only type, id and lastUpdated are searchable. */
	const struct salus_ix *index;
	/* CREATE: conditional create (added for If-None-Exist races; docs/fhir-rest.md).
	 * The criteria are checked again inside the write transaction, by the one
	 * writer, so two concurrent conditional creates never both create: when a
	 * current resource of `type` matches every criterion, the write fails with
	 * SALUS_EPRECONDITION (the caller then matches again and answers with
	 * that resource).  Borrowed; NULL: unconditional. */
	const struct salus_write_cond *none_match;
	size_t n_none_match;
};
/* One criterion of salus_write.none_match: the resource id (id set), or an
 * identifier in the identifier index (value set; system NULL = any system,
 * "" = none) — the criteria salus_store_find_by_identifier answers. */
struct salus_write_cond {
	const char *id;
	const char *system;
	const char *value;
};
void salus_write_release(struct salus_write *w); /* frees w->json */

/* A new server-assigned resource id: a UUID in the version-7 layout of RFC
 * 9562 (48-bit Unix milliseconds, then 74 random bits), so ids minted
 * together sort together and every b-tree keyed by id (the current row, the
 * version index, the search index's resource table, references to the
 * resource) grows at its end instead of at a random leaf per resource.  A
 * CREATE with id NULL gets one; callers that must know the id before the
 * write (transaction Bundles rewriting references) use this too.  Reveals the
 * creation time to the millisecond, as meta.lastUpdated of version 1 does. */
void salus_store_id_new(char out[SALUS_UUID_LEN] /* OUT */);

/* Apply `n` writes atomically in order, in one transaction of the group
 * commit (all or nothing: if any fails, none is applied; every op's rc says
 * why, the first failing op's code is returned).  CREATE with a given id that
 * exists (even as a tombstone): SALUS_EEXISTS.  Returns after the transaction
 * is durable.
 * On failure: the op that failed carries the code in its rc; ops before it
 * (rolled back) and after it (not attempted) have rc == SALUS_OK with their
 * results cleared (version 0, json NULL) — so the first op with rc != 0 is the
 * culprit — except when the whole group-commit transaction failed (SALUS_EIO,
 * SALUS_EBUSY, SALUS_ENOMEM), where every op carries that code.
 * if_match != 0 needs a current row (possibly a tombstone) of exactly that
 * version, else SALUS_EPRECONDITION — this takes precedence over the no-op
 * DELETE rule.  On failure the store may already have set id/meta in the
 * given json_t resources.  Other errors: SALUS_EINVALID (bad op: unknown kind,
 * missing type/id, id not [A-Za-z0-9.-]{1,64}, resource not a JSON object),
 * SALUS_ETOOLARGE, SALUS_ENOMEM, SALUS_EIO, SALUS_EBUSY. */
int salus_store_write(struct salus_store *s, struct salus_write *ops, size_t n);

/* History query: newest first.  type NULL = system level; id NULL = type level. */
struct salus_history_q {
	const char *type;
	const char *id;
	int64_t since_ms;   /* 0: none; else only versions with updated_ms >= since_ms */
	int64_t before_seq; /* 0: from the newest; else only seq < before_seq (keyset paging) */
	int64_t at_most_seq;/* 0: none; else ignore versions written after this seq (a stable snapshot) */
	int count;          /* max versions to return (>= 1) */
};
/* Called once per version in order; json is borrowed for the call.  Return
 * non-zero to stop early (that value is then returned). */
typedef int (*salus_resource_cb)(void *ctx, const struct salus_resource *r);
/* Errors: SALUS_EINVALID (bad query), SALUS_EIO. */
int salus_store_history(struct salus_store *s, const struct salus_history_q *q, salus_resource_cb cb, void *ctx);
/* Number of versions the same query would return without count/paging (for Bundle.total). */
int salus_store_history_count(struct salus_store *s, const struct salus_history_q *q, long *total /* OUT */);
/* The newest seq written so far (0 for an empty store). */
int salus_store_last_seq(struct salus_store *s, int64_t *seq /* OUT */);

/* Current, non-deleted resources of one type, in id order after `after_id`
 * (NULL: from the start); a simple listing used until the search module lands. */
int salus_store_list(struct salus_store *s, const char *type, const char *after_id, int count,
		     salus_resource_cb cb, void *ctx);
/* Number of current, non-deleted resources of a type (NULL: all types). */
int salus_store_count(struct salus_store *s, const char *type, long *total /* OUT */);

/* ---- crypto-shredding (docs/security.md "Crypto-shredding") ----------------------------------
 *
 * Only for a store opened with patient_keys. */

struct salus_erase_result {
	bool key_destroyed; /* a live key was destroyed now (false: erased before, or never had one) */
	long resources;     /* resources whose rows were removed now */
};

/* Erase patient pid: destroy their record key (the key database row becomes
 * a tombstone, the in-memory copy is wiped), then remove, in one writer
 * transaction, every row of the Patient and of every resource sealed under
 * the key: current and history versions, search and identifier index rows
 * (with secure_delete), recording each (type, id) as erased.  From then on a
 * read or vread of them is SALUS_EGONE (*out a tombstone of version 0), they
 * are in no history, list or search, and a write into the patient's
 * compartment is SALUS_EGONE.  Bodies in older copies of the database stay
 * sealed under the destroyed key.  Idempotent.
 * Errors: SALUS_EINVALID (no patient keys, bad id), SALUS_EIO, SALUS_EBUSY. */
int salus_store_patient_erase(struct salus_store *s, const char *pid, struct salus_erase_result *out /* OUT */);
/* Apply again the row removal of every erased patient (after a database
 * backup older than an erasure was restored): *npatients erased patients,
 * *nresources resources removed now.  Errors: as salus_store_patient_erase. */
int salus_store_patient_replay(struct salus_store *s, size_t *npatients /* OUT */, long *nresources /* OUT */);
/* Re-wrap every live patient key under the newest wrapping key (pwks) and
 * compact the key database.  *n (may be NULL): keys re-wrapped. */
int salus_store_patient_rewrap(struct salus_store *s, size_t *n /* OUT, may be NULL */);

/* ---- backup (docs/backup.md) ---- */

/* Write a consistent copy of the store, online (readers and the writer go on):
 * dest_db gets the database as of one read transaction (and its audit database
 * salus_store_audit_path(dest_db), as of a second one just after), written through the
 * store's encrypting VFS (every page sealed, under the current write key, like
 * the live file); then, when the store has a patient key database and
 * dest_keys is not NULL, dest_keys gets a copy of that.  Keys are durable
 * before any body they seal, so every sealed body in the copy has its key in
 * the key copy.  Both files are new (mode 0600); an existing one is an error.
 * Errors: SALUS_EINVALID (bad argument), SALUS_EEXISTS (a destination exists),
 * SALUS_EIO, SALUS_EINTEGRITY (a live page failed authentication), SALUS_ENOMEM. */
int salus_store_backup(struct salus_store *s, const char *dest_db, const char *dest_keys);

/* The file of a SQLite store's audit trail (see "the audit log" below), beside
 * its database: "DIR/salus.db" -> "DIR/salus-audit.db" (a name not ending in
 * ".db" gets "-audit.db" appended).  salus_store_backup writes the audit copy
 * at the same name for dest_db.  Errors: SALUS_EINVALID (empty, or longer than cap). */
int salus_store_audit_path(const char *db_path, char *out /* OUT */, size_t cap);

/* ---- identifier index (added with conditional operations) -------------------------------------
 *
 * Every write fills table token_index(type, id, system, value) from the
 * resource's top-level `identifier` elements (system may be absent), in the
 * same transaction; a delete removes the resource's rows.  This is the minimal
 * index conditional create/update/delete and conditional references need
 * (`identifier=system|value`); the search module generalises it into the
 * token index of every token search parameter.  Resources written before the
 * index existed are not in it. */

/* Called once per matching current resource id (borrowed); non-zero stops and
 * is returned. */
typedef int (*salus_id_cb)(void *ctx, const char *id);
/* Ids of current resources of `type` with an identifier of exactly this value
 * and system: system NULL = any system, "" = no system.  Errors:
 * SALUS_EINVALID, SALUS_EIO. */
int salus_store_find_by_identifier(struct salus_store *s, const char *type, const char *system, const char *value,
				   salus_id_cb cb, void *ctx);

/* Small key/value tables for server state (clients, keys, settings), written
 * through the same writer, durable on return.  ns and key are short ASCII
 * strings; value is opaque bytes (usually JSON). */
int salus_store_kv_put(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n);
/* Errors: SALUS_ENOTFOUND.  *val is NUL-terminated, freed with salus_free. */
int salus_store_kv_get(struct salus_store *s, const char *ns, const char *key, char **val /* OUT */,
		       size_t *n /* OUT, may be NULL */);
/* Errors: SALUS_ENOTFOUND. */
int salus_store_kv_del(struct salus_store *s, const char *ns, const char *key);
typedef int (*salus_kv_cb)(void *ctx, const char *key, const char *val, size_t n);
/* Every key of a namespace in key order; non-zero from cb stops and is returned. */
int salus_store_kv_list(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx);

/* One-time values (store_once.c): claim (ns, key) until exp_s (seconds since
 * the epoch).  0 when the value was not claimed before, or its earlier claim
 * has expired (exp <= now_s); SALUS_EEXISTS when a claim is still live.
 * Atomic across threads and processes (one job of the single writer) and
 * durable on return.  Each call also removes a few expired claims.  Used for
 * the `jti` replay cache of JWT client assertions (auth).  ns and key are
 * short ASCII strings as for kv.
 * Errors: SALUS_EEXISTS, SALUS_EINVALID (bad argument, exp_s <= now_s, or not
 * a SQLite store), SALUS_EIO, SALUS_EBUSY, SALUS_ENOMEM. */
int salus_store_once_claim(struct salus_store *s, const char *ns, const char *key, int64_t exp_s, int64_t now_s);

/* ---- the audit log (an append-only Merkle log; src/audit/ and docs/audit.md) -------------------
 *
 * Events are appended through the same single writer and group commit as
 * resource writes: the entries of many concurrent callers share one
 * transaction and one fsync, and every call returns only once its entries are
 * durable, with their indexes.  Index i (0-based, dense, never reused) is the
 * position of the leaf in an RFC 6962 / RFC 9162 Merkle tree over the event
 * texts: leaf hash = SHA-256(0x00 || event), node hash = SHA-256(0x01 || l || r).
 * As leaves are appended the store also keeps the hash of every complete
 * subtree (2^level leaves starting at index << level), so any root or proof
 * needs O(log n) reads (salus_store_audit_nodes).  SQLite keeps these tables
 * in their own database file beside the resource database
 * (salus_store_audit_path), written by a second writer connection: audit
 * commits then leave the resource database, and the readers' page caches of
 * it, untouched; a group that writes both commits the audit database first.
 * Tables (SQLite):
 *   audit_log(idx INTEGER PRIMARY KEY, ts_ms, leaf_hash BLOB, event TEXT)   event: the text in
 *                          the compact lossless form of store/audit_codec.h (older rows: the text);
 *                          every read (salus_store_audit_scan, queries) gives the text back
 *   audit_subtree(leaf INTEGER PRIMARY KEY, hashes BLOB)   the subtrees leaf completes,
 *                          levels 1..k, 32 bytes each (node (L, i) completes at leaf ((i+1) << L) - 1)
 *   audit_node(level, idx, hash BLOB, PRIMARY KEY(level, idx))   older data directories
 *   audit_checkpoint(size INTEGER PRIMARY KEY, root BLOB, ts_ms, signed_note TEXT)
 * Triggers refuse UPDATE and DELETE on all four, except an UPDATE that only
 * sets audit_log.event to NULL (pruning the text of an old event keeps its
 * leaf hash, so the tree still verifies).  The store never interprets event
 * text: building, signing and verifying are the audit module's business. */

#define SALUS_AUDIT_HASH_LEN 32 /* SHA-256 */

/* One event to append.  Inputs are borrowed for the call. */
struct salus_audit_entry {
	/* The stored event text is pre, then the decimal index assigned by the
	 * writer, then post: an event can carry its own position (e.g. as its
	 * AuditEvent.id), which makes a moved or deleted row detectable at that
	 * index.  post == NULL: the text is pre alone, nothing spliced.
	 * The whole text must be valid UTF-8 and at most SALUS_MAX_AUDIT_EVENT bytes. */
	const char *pre;
	size_t pre_n;
	const char *post;
	size_t post_n;
	int64_t ts_ms; /* the event's time (ms since the epoch), kept in its row for retention */
	/* salus_store_audit_journal only: the text given in the store's compact form instead
	 * (salus_store_audit_encode; pre and post each encoded on its own).  cpre != NULL: pre and
	 * post are NULL / 0 and cpre, cpost (NULL: no post) stand for them; the writer decodes them
	 * to hash the text.  The point: a caller that builds the event in that form from pre-encoded
	 * fixed fragments never writes, scans and copies the ~1.2 KB text on its own thread. */
	const unsigned char *cpre;
	size_t cpre_n;
	const unsigned char *cpost;
	size_t cpost_n;
	/* results, written by the store */
	int64_t index;                                /* the assigned index; -1 if not appended */
	unsigned char leaf_hash[SALUS_AUDIT_HASH_LEN]; /* SHA-256(0x00 || stored text) */
};

/* The compact form of audit texts (format 1 of the stored events, docs/audit.md "On disk,
 * compact"), for callers that build entries in it (salus_audit_entry.cpre).
 * salus_store_audit_encode writes at most SALUS_STORE_AUC_BOUND(n) bytes for n bytes of text and
 * returns how many; encodings of consecutive pieces concatenate (enc(a) || enc(b) decodes to
 * a || b).  salus_store_audit_decode appends the text of such bytes to out.
 * Errors: SALUS_EIO (not the compact form), SALUS_EINVALID, SALUS_ENOMEM, SALUS_ETOOLARGE. */
#define SALUS_STORE_AUC_BOUND(n) (2 * (n))
struct salus_buf;
size_t salus_store_audit_encode(const char *text, size_t n, unsigned char *out /* OUT */);
/* The same without the dictionary (bytes below 0x20 escaped, the rest as themselves): for short
 * variable text between pre-encoded fixed parts, where a dictionary search costs more than it saves. */
size_t salus_store_audit_encode_raw(const char *text, size_t n, unsigned char *out /* OUT */);
int salus_store_audit_decode(const unsigned char *c, size_t n, struct salus_buf *out);

/* Append n entries, in order, durably (consecutive indexes within one call).
 * Errors: SALUS_EINVALID (bad entry), SALUS_ETOOLARGE, SALUS_EIO, SALUS_EBUSY,
 * SALUS_ENOMEM — on any error nothing of this call was appended (fail closed). */
int salus_store_audit_append(struct salus_store *s, struct salus_audit_entry *e, size_t n);

/* Append one entry through the audit journal (docs/audit.md "The journal"):
 * when this returns SALUS_OK the entry, sealed, is written to the journal file
 * next to the database — it survives a crash of the process — and the writer
 * moves it into the log (index assigned then, in journal order, durably)
 * within opts.audit_flush_ms; after a crash the next open moves it.  No index
 * comes back.  Where another process owns the journal (a CLI command next to a
 * running server) this is salus_store_audit_append.  Errors: as
 * salus_store_audit_append, and SALUS_EIO once moving journaled entries into
 * the log has failed (nothing more is accepted: fail closed). */
int salus_store_audit_journal(struct salus_store *s, const struct salus_audit_entry *e);

/* One snapshot for a request that only reads: until salus_store_read_end, every
 * read of this store from the calling thread uses one reader connection in one
 * read transaction (one round of SQLite's locks instead of one per read; a read
 * nested inside another takes a connection of its own, as before).  The thread
 * must not wait for its own writes in between (it would not see them).  Not
 * nested.  Errors: SALUS_EINVALID (already begun), those of a read. */
int salus_store_read_begin(struct salus_store *s);
void salus_store_read_end(struct salus_store *s); /* NULL-safe; a no-op without a begin */

/* Wait until every entry journaled before the call is in the log.  Every
 * read of the log through this API does it first, so a reader sees the
 * events of the requests that came before it.  Errors: SALUS_EIO. */
int salus_store_audit_settle(struct salus_store *s);

/* salus_store_write plus audit entries in the SAME transaction: the entries are
 * appended after the ops are applied, and only if every op succeeded; all of
 * it commits together or not at all.  The events are built before the write,
 * so a caller that needs the new id in its event gives CREATE an id (a UUID it
 * made) rather than letting the store pick one.  A failed write appends
 * nothing: record a failure event separately (salus_store_audit_append).
 * Errors: those of salus_store_write and salus_store_audit_append. */
int salus_store_write_audited(struct salus_store *s, struct salus_write *ops, size_t n,
			      struct salus_audit_entry *e, size_t ne);

/* Number of events in the log (the current tree size). */
int salus_store_audit_size(struct salus_store *s, int64_t *size /* OUT */);

/* A complete subtree: the hash over leaves [index << level, (index + 1) << level). */
struct salus_audit_node {
	int level;     /* 0 (a leaf) .. 62 */
	int64_t index; /* >= 0 */
	unsigned char hash[SALUS_AUDIT_HASH_LEN]; /* OUT */
};
/* Fill in the hash of each of n nodes (one reader connection for all).
 * Errors: SALUS_EINVALID (bad level/index), SALUS_ENOTFOUND (a subtree that is
 * not complete in the log yet), SALUS_EIO (a stored hash of the wrong size). */
int salus_store_audit_nodes(struct salus_store *s, struct salus_audit_node *v, size_t n);

/* One stored event, as read; pointers borrowed for the callback. */
struct salus_audit_row {
	int64_t index;
	int64_t ts_ms;
	const unsigned char *leaf_hash; /* as stored (may be damaged: check leaf_hash_n) */
	size_t leaf_hash_n;
	const char *event; /* NULL when pruned */
	size_t event_n;
};
typedef int (*salus_audit_row_cb)(void *ctx, const struct salus_audit_row *r);
/* Rows with index >= from in index order, at most count (0: all).  Rows are
 * given as stored, gaps included (a verifier must check the indexes).
 * Non-zero from cb stops and is returned.  Errors: SALUS_EINVALID, SALUS_EIO. */
int salus_store_audit_scan(struct salus_store *s, int64_t from, int64_t count, salus_audit_row_cb cb,
			   void *ctx);

/* One stored checkpoint; pointers borrowed for the callback. */
struct salus_audit_checkpoint_row {
	int64_t size;
	const unsigned char *root; /* as stored: check root_n */
	size_t root_n;
	int64_t ts_ms;
	const char *note; /* the signed note */
	size_t note_n;
};
typedef int (*salus_audit_checkpoint_cb)(void *ctx, const struct salus_audit_checkpoint_row *c);
/* Store a checkpoint (durable on return).  A checkpoint of the same size
 * already stored is kept and this one dropped (SALUS_OK).  note: NUL-terminated.
 * Errors: SALUS_EINVALID, SALUS_EIO, SALUS_EBUSY, SALUS_ENOMEM. */
int salus_store_audit_checkpoint_put(struct salus_store *s, int64_t size,
				     const unsigned char root[SALUS_AUDIT_HASH_LEN], int64_t ts_ms,
				     const char *note);
/* Checkpoints in increasing size order (latest_only: just the largest).
 * Non-zero from cb stops and is returned; SALUS_ENOTFOUND from latest_only
 * when there is none.  Errors: SALUS_EIO. */
int salus_store_audit_checkpoints(struct salus_store *s, bool latest_only, salus_audit_checkpoint_cb cb,
				  void *ctx);


/* ---- the search index (store_index.c; docs/search.md) ----------------------------------------
 *
 * The FHIR layer computes, for each resource written, the rows of the search
 * index from the official SearchParameter expressions (fhir/search.h) and
 * hands them over with the write (salus_write.index); the store writes them in
 * the same transaction as the version, replacing the resource's previous rows.
 * A delete removes them; history versions are never indexed.  Every current
 * resource (indexed rows or not) can be found by type, _id and _lastUpdated.
 *
 * Parameters are identified by a 32-bit id (salus_fhir_search_param_id(): a
 * 31-bit hash of "Type.code", checked collision-free over the definitions);
 * the store never interprets it. */

enum salus_ix_kind {
	SALUS_IX_STRING = 1,    /* a = normalised (case-folded, accents stripped), b = as written */
	SALUS_IX_TOKEN = 2,     /* a = system ("" when none), b = code */
	SALUS_IX_DATE = 3,      /* [lo, hi] in ms since the epoch, inclusive; INT64_MIN/MAX when open */
	SALUS_IX_NUMBER = 4,    /* v, and [vlo, vhi) its precision range */
	SALUS_IX_QUANTITY = 5,  /* v, [vlo, vhi); a = system, b = code, c = unit */
	SALUS_IX_REFERENCE = 6, /* a = target type, b = target id ("" when not a local reference),
				 * c = url ("" for a relative reference; the canonical or absolute URL
				 * otherwise, without |version), d = version, e = identifier system,
				 * f = identifier value */
	SALUS_IX_URI = 7,       /* a = uri */
};

/* One index row.  Strings are borrowed (owned by whoever built the list). */
struct salus_ix_row {
	uint32_t param; /* parameter id */
	uint16_t kind;  /* enum salus_ix_kind */
	uint16_t group; /* composite parameters: the components of one element share a group
			 * number >= 1; 0 for ordinary rows */
	const char *a, *b, *c, *d, *e, *f; /* NULL reads as "" */
	int64_t lo, hi;
	double v, vlo, vhi;
};

/* The index of one resource. */
struct salus_ix {
	const struct salus_ix_row *rows;
	size_t n;
	const char *text;    /* narrative text for _text (NULL: none) */
	const char *content; /* all the resource's text for _content (NULL: none) */
	/* the patient whose compartment the resource is in (its body is sealed
	 * under their key, see salus_store_opts.patient_keys); NULL: none.  Set
	 * by the FHIR indexer from the first Patient reference of the type's
	 * compartment parameters (added with crypto-shredding). */
	const char *patient;
};

/* The indexing hook (set by the FHIR layer: fhir/search.h).  salus_store_write
 * and salus_store_write_audited call build() in the caller's thread for every
 * CREATE/UPDATE op whose .index is NULL, use *out for the write, then call
 * done(state).  An error from build() fails the write with that code. */
struct salus_store_indexer {
	int (*build)(void *ctx, const char *type, json_t *res, const struct salus_ix **out /* OUT */,
		     void **state /* OUT */);
	void (*done)(void *ctx, void *state);
	void *ctx;
};
/* Set (or, with NULL, clear) the hook; the struct is borrowed for the
 * store's life.  Safe to call while other threads write (an atomic swap). */
void salus_store_set_indexer(struct salus_store *s, const struct salus_store_indexer *ix);
/* The hook set, or NULL. */
const struct salus_store_indexer *salus_store_get_indexer(struct salus_store *s);

/* ---- search queries --------------------------------------------------------------------------
 *
 * A parsed, checked search (built by fhir/search_parse.c) that each backend
 * compiles to one query over its index: clauses are ANDed, the values of one
 * clause ORed.  Values are always bound as parameters, never spliced into SQL. */

enum salus_sq_kind {
	SALUS_SQ_STRING = 1, /* index rows of kind STRING (also token :text, on param | SALUS_SQ_TEXT_BIT) */
	SALUS_SQ_TOKEN,
	SALUS_SQ_DATE,
	SALUS_SQ_NUMBER,
	SALUS_SQ_QUANTITY,
	SALUS_SQ_REFERENCE,
	SALUS_SQ_URI,
	SALUS_SQ_ID,          /* the resource id: values a = id */
	SALUS_SQ_LASTUPDATED, /* meta.lastUpdated: values are date comparisons */
	SALUS_SQ_TEXT,        /* _text: a = words (all must occur) */
	SALUS_SQ_CONTENT,     /* _content: a = words */
	SALUS_SQ_HAS,         /* reverse chain: a resource of sub->type whose reference param
			       * (params) points here matches sub */
	SALUS_SQ_INCLUDED,    /* referenced through params (none: any) by one of rids */
	SALUS_SQ_COMPOSITE,   /* values: sub-clauses (comp) that hold within one group */
	SALUS_SQ_TYPE,        /* system search: values a = resource type */
	SALUS_SQ_OR,          /* values: sub-queries (val.chain; its type ignored) whose clauses hold on this same
			       * resource; the clause holds when one of them does (access guards, policy) */
	SALUS_SQ_ANYOF,       /* the resource meets any of sub[0..nsub), each with its own type
			       * (NULL: any) and clauses (_contained=both) */
};

#define SALUS_SQ_TEXT_BIT 0x80000000u /* token param id | this: its display texts (STRING rows) */
#define SALUS_SQ_TYPE_BIT 0x40000000u /* Identifier param id | this: of-type rows (TOKEN, b = "code|value") */

enum salus_sq_op {
	/* string */
	SALUS_SQ_STR_START = 1, /* a = normalised value: a prefix of a normalised indexed value */
	SALUS_SQ_STR_EXACT,     /* a = value as written, equal */
	SALUS_SQ_STR_CONTAINS,  /* a = normalised value, anywhere */
	/* token */
	SALUS_SQ_TOK_CODE,     /* b = code, any system */
	SALUS_SQ_TOK_SYS_CODE, /* a = system, b = code */
	SALUS_SQ_TOK_NOSYS,    /* b = code without a system */
	SALUS_SQ_TOK_SYS,      /* a = system, any code */
	/* ordered values: date [lo, hi]; number and quantity v, [vlo, vhi) (quantity also
	 * a = system and b = code, or b = code or unit when a is NULL; NULL b: any unit) */
	SALUS_SQ_EQ,
	SALUS_SQ_NE,
	SALUS_SQ_GT,
	SALUS_SQ_LT,
	SALUS_SQ_GE,
	SALUS_SQ_LE,
	SALUS_SQ_SA,
	SALUS_SQ_EB,
	SALUS_SQ_AP,
	/* reference */
	SALUS_SQ_REF_LOCAL, /* a = target type (NULL: any), b = id */
	SALUS_SQ_REF_URL,   /* c = url (absolute or canonical), d = version (NULL: any) */
	SALUS_SQ_REF_IDENT, /* e = identifier system (NULL: any), f = value */
	SALUS_SQ_REF_CHAIN, /* the target, of type chain->type, matches chain */
	/* uri */
	SALUS_SQ_URI_EQ,    /* a = uri */
	SALUS_SQ_URI_BELOW, /* a = uri: indexed values it is a prefix of */
	SALUS_SQ_URI_ABOVE, /* a = uri: indexed values that are a prefix of it */
	SALUS_SQ_ANY,       /* values of kinds that carry no op (composite, _id, type) */
	/* token (added for patient+code pairs, fhir/search.h): b = code; the system is the id
	 * of a resource matching chain (of type chain->type) followed by a ("" or "|s") */
	SALUS_SQ_TOK_CODE_CHAIN,
};

struct salus_sq;
struct salus_sq_clause;

struct salus_sq_val {
	int op; /* enum salus_sq_op */
	const char *a, *b, *c, *d, *e, *f;
	int64_t lo, hi;
	double v, vlo, vhi;
	const struct salus_sq *chain;       /* SALUS_SQ_REF_CHAIN; SALUS_SQ_OR: one alternative */
	const struct salus_sq_clause *comp; /* SALUS_SQ_COMPOSITE: one clause per component */
	size_t ncomp;
};

struct salus_sq_clause {
	int kind;               /* enum salus_sq_kind */
	const uint32_t *params; /* the parameter; several: any of them (compartments, chains) */
	size_t nparams;
	int missing;            /* 0: match values; 1: :missing=true; 2: :missing=false */
	bool negate;            /* :not: no value of the parameter matches any of vals */
	const struct salus_sq_val *vals;
	size_t nvals;
	const struct salus_sq *sub; /* SALUS_SQ_HAS; SALUS_SQ_ANYOF: an array of nsub */
	size_t nsub;
	const int64_t *rids;        /* SALUS_SQ_INCLUDED */
	size_t nrids;
	/* a hint (added for search at scale): the caller knows this clause is the
	 * most selective (an index of pairs, fhir/search.h), so it drives the query */
	bool drive;
	/* (added for chained search at scale) every resource the level's `drive` clause
	 * matches also meets this clause, so while that clause is in the query the
	 * compiler leaves this one out; without it (the store strips an incomplete
	 * drive clause) this clause is compiled as usual */
	bool implied;
	/* (added for chained search at scale) a resource has at most one index row this
	 * clause can match (one value of a parameter that has at most one per resource),
	 * so as a driver it gives each resource once and needs no DISTINCT */
	bool one_row;
};

/* Derived parameters (added for fewer index rows, issue 5 item 4): a parameter
 * whose rows would be exactly other parameters' rows is not stored; a query on
 * it reads theirs.  One entry per (param, base): `param`'s rows are the union
 * over its entries of base's rows, restricted to reference rows of target type
 * `ttype` when that is not NULL (Observation.patient = Observation.subject
 * where the target is a Patient; combo-code = code ∪ component-code).  The ids
 * carry no SALUS_SQ_TEXT_BIT / SALUS_SQ_TYPE_BIT: a clause's bits go onto the
 * base.  The FHIR layer works the table out from the definitions
 * (fhir/search.h) and sets it before any query can name such a parameter;
 * the entries are sorted by param and borrowed for the process's life.  Every
 * clause, sort key, include, guard and _has the compiler builds reads the
 * parameters through it. */
struct salus_sq_alias {
	uint32_t param;
	uint32_t base;
	const char *ttype;
	/* param is a component of a composite on the resource itself (Observation
	 * code-value-quantity: code and value-quantity): its group is the resource's
	 * own (the base's rows: 0, or a contained resource's group), so a composite
	 * all of whose components are such joins them on that, with no g>0 */
	bool whole;
};
struct salus_sq_aliases {
	const struct salus_sq_alias *v;
	size_t n;
};
/* Set (NULL: none) the process's table; borrowed.  An atomic swap. */
void salus_store_set_aliases(const struct salus_sq_aliases *t);

enum salus_sq_sort_kind { SALUS_SQ_SORT_ID = 1, SALUS_SQ_SORT_UPDATED, SALUS_SQ_SORT_PARAM };

struct salus_sq_sort {
	int kind;       /* enum salus_sq_sort_kind */
	int ix;         /* SORT_PARAM: enum salus_ix_kind of the parameter */
	uint32_t param;
	bool desc;
};

#define SALUS_SQ_MAX_SORT 4

/* An access guard (added with the access policy, src/policy/ and docs/security.md): a
 * condition every resource a query reaches must meet — its matches, and also the
 * resources its chains and _has clauses look at — so that search results, totals,
 * paging and existence tests never involve a resource the caller may not see.
 * A guard applies to resources of `type` (NULL: to every type no other guard of the
 * list names); `deny`: no resource of those types passes; else a resource passes
 * when it meets every clause (none: all pass). */
struct salus_sq_guard {
	const char *type;
	bool deny;
	const struct salus_sq_clause *clauses;
	size_t nclauses;
};

struct salus_sq {
	const char *type; /* resource type; NULL for a system-wide search */
	const struct salus_sq_clause *clauses;
	size_t nclauses;
	struct salus_sq_sort sort[SALUS_SQ_MAX_SORT];
	size_t nsort;      /* 0: a stable internal order (first indexed first) */
	int count;         /* rows wanted (>= 0) */
	const char *after; /* keyset cursor (salus_sq_hit.cursor): rows after it; NULL: first page */
	bool before;       /* with a cursor: the rows just before it (still given in order) */
	bool need_json;    /* false: type, id, version only */
	/* also count every match (count and cursor ignored) in the same query,
	 * into salus_sq_hit.total (added for search at scale: a page and its
	 * Bundle.total from one evaluation) */
	bool with_total;
	/* (added for search at scale) the caller vouches that every index row of the
	 * parameters of the top level's clauses belongs to a resource of `type` (the
	 * parameter ids are per type, fhir/search.h): a level whose clauses all lie in
	 * its driving subquery is then answered from the index rows, and only the
	 * page's rows are looked up */
	bool typed_rows;
	/* access guards (NULL: none), applied at every level of the query */
	const struct salus_sq_guard *guards;
	size_t nguards;
};

/* One matching resource.  Everything is borrowed for the callback, except
 * that when `take` is not NULL the body r.json is a heap copy (salus_malloc,
 * NUL-terminated: a body opened under its patient's key) that the callback
 * may keep: it sets *take = NULL and frees it later with salus_free (a search
 * keeps its page's bodies without copying each again). */
struct salus_sq_hit {
	struct salus_resource r; /* json NULL when !need_json */
	int64_t rid;             /* the index's stable number for the resource */
	const char *cursor;      /* keyset position of this row (URL-safe), for salus_sq.after */
	long total;              /* with salus_sq.with_total: the number of matches; else -1 */
	char **take;             /* NULL, or where r.json is owned (see above) */
};
typedef int (*salus_sq_cb)(void *ctx, const struct salus_sq_hit *h);

/* Run a search: up to q->count hits in order.  Non-zero from cb stops and is
 * returned.  Errors: SALUS_EINVALID (bad cursor, malformed query),
 * SALUS_ENOMEM, SALUS_EIO. */
int salus_store_search(struct salus_store *s, const struct salus_sq *q, salus_sq_cb cb, void *ctx);
/* The number of matches (count, cursor and sort ignored). */
int salus_store_search_count(struct salus_store *s, const struct salus_sq *q, long *total /* OUT */);
/* The query plan of a search (EXPLAIN QUERY PLAN details, one per line) into a
 * new salus_malloc'd string; for tests.  Errors as salus_store_search. */
int salus_store_search_plan(struct salus_store *s, const struct salus_sq *q, bool count, char **plan /* OUT */);

/* ---- searching the audit trail (store_audit_ix.c; docs/audit.md "Searching the trail") ------------
 *
 * The append path never indexes: a query first brings a separate index up to
 * date LAZILY (salus_store_audit_ix_update), reading the events appended since
 * the last indexed one on a reader, parsing them as FHIR AuditEvents (the only
 * place the store looks inside event text), and writing their rows as jobs of
 * the ordinary writer, a bounded chunk per job so appends are never held up
 * for long.  Tables (SQLite; derived data, rebuilt if dropped):
 *   audit_ix(idx INTEGER PRIMARY KEY, ts_ms, action, outcome, pruned)
 *   audit_ix_val(k, a, b, idx)  -- k: 1 patient (b = id), 2 agent reference
 *       (a = type, b = id), 3 agent identifier (a = system, b = value), 4 entity
 *       (a = type, b = id, version dropped), 5 type and 6 subtype (a = system,
 *       b = code), 7 agent network address (b)
 * Every event has exactly one audit_ix row, so max(idx) is the high-water mark.
 * Pruned events keep their audit_ix row (pruned = 1) and lose their values. */

/* Index every event appended since the last call.  *indexed (may be NULL)
 * gets the number of events indexed now.  Errors: SALUS_EIO, SALUS_EBUSY,
 * SALUS_ENOMEM, SALUS_EINVALID (not a SQLite store). */
int salus_store_audit_ix_update(struct salus_store *s, int64_t *indexed /* OUT, may be NULL */);

enum salus_aq_kind {
	SALUS_AQ_PATIENT = 1, /* code = patient id */
	SALUS_AQ_AGENT,       /* reference: sys = type (NULL: any), code = id; ident: sys = identifier system
			       * (NULL: any), code = value; neither (sys NULL, !ident): reference id or identifier value */
	SALUS_AQ_ENTITY,      /* sys = type (NULL: any), code = id */
	SALUS_AQ_TYPE,        /* sys = system (NULL: any), code (NULL: any code of the system) */
	SALUS_AQ_SUBTYPE,     /* as TYPE */
	SALUS_AQ_ACTION,      /* code */
	SALUS_AQ_OUTCOME,     /* code */
	SALUS_AQ_ADDRESS,     /* code = network address */
	SALUS_AQ_DATE,        /* op (SALUS_SQ_EQ..SALUS_SQ_AP) against [lo, hi] (ms, inclusive) on the event's time */
	SALUS_AQ_ID,          /* lo = index */
};

struct salus_aq_val {
	const char *sys, *code; /* borrowed */
	bool ident;             /* AGENT: an identifier rather than a reference */
	int op;                 /* DATE: enum salus_sq_op */
	int64_t lo, hi;
};

/* One search parameter: its values are ORed; clauses are ANDed. */
struct salus_aq_clause {
	int kind; /* enum salus_aq_kind */
	const struct salus_aq_val *vals;
	size_t nvals;
};

struct salus_aq {
	const struct salus_aq_clause *clauses;
	size_t nclauses;
	bool oldest_first;           /* false (default): newest first (_sort=-date) */
	int count;                   /* rows wanted (>= 0) */
	bool after;                  /* keyset paging: only rows after (after_ts, after_idx) in this order */
	int64_t after_ts, after_idx;
	int64_t now_ms;              /* for `ap` (0: the clock) */
};

/* One matching event; borrowed for the callback.  Pruned events never match. */
struct salus_aq_hit {
	int64_t index;
	int64_t ts_ms;
	const char *event;
	size_t event_n;
};
typedef int (*salus_aq_cb)(void *ctx, const struct salus_aq_hit *h);

/* Run a query over the index as it is (call salus_store_audit_ix_update
 * first): up to q->count events in order; non-zero from cb stops and is
 * returned.  Errors: SALUS_EINVALID (malformed query), SALUS_EIO, SALUS_ENOMEM. */
int salus_store_audit_query(struct salus_store *s, const struct salus_aq *q, salus_aq_cb cb, void *ctx);
/* The number of matching events (count and cursor ignored). */
int salus_store_audit_query_count(struct salus_store *s, const struct salus_aq *q, long *total /* OUT */);

/* Retention: set the text of every event with ts_ms < before_ms and index <
 * below_index to NULL (the one UPDATE the triggers allow), and drop its
 * search-index values; leaf hashes, subtree hashes and checkpoints stay, so
 * the log still verifies.  Freed pages are zeroed (secure_delete).  Runs as a
 * series of bounded writer jobs.  *pruned (may be NULL) gets the number of
 * events pruned now.  Errors: SALUS_EINVALID, SALUS_EIO, SALUS_EBUSY, SALUS_ENOMEM. */
int salus_store_audit_prune(struct salus_store *s, int64_t before_ms, int64_t below_index,
			    int64_t *pruned /* OUT, may be NULL */);

#endif
