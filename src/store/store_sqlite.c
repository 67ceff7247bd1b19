/*
 * store_sqlite.c — the SQLite backend of store.h (DESIGN.md §4).
 *
 * One database file in WAL mode (synchronous=NORMAL on the writer, whose commits
 * the store fsyncs itself before answering: "durability off the writer's path"
 * below).  Tables: `resource`
 * (current version per type/id, the hot read path), `history` (every version,
 * seq = store-wide write order), `kv` (server state) and `meta` (schema
 * version).  See docs/store.md for the schema and the reasoning.
 *
 * Writes: every salus_store_write / kv_put / kv_del becomes a job on a queue
 * (mutex + condvar) and its caller sleeps.  One writer thread takes all queued
 * jobs (up to batch_max ops), runs BEGIN IMMEDIATE, applies each job inside its
 * own SAVEPOINT (a failing job rolls back only itself), COMMITs, and hands the
 * group to the syncer thread, which fsyncs the WAL once for every group handed
 * over since its last sync and only then wakes the callers.  While a group is
 * built and synced, new jobs pile up and form the next group: group commit.
 *
 * Reads: a pool of read-only connections, each with its own prepared-statement
 * cache; WAL lets them read while the writer writes.  A call borrows one
 * connection for its duration.  A callback (history, list) that calls back into
 * the store borrows a second one and never waits for the pool (it opens a
 * temporary connection if the pool is empty), so nesting cannot deadlock.
 *
 * Time: the writer keeps updated_ms non-decreasing in seq order store-wide and
 * strictly increasing per resource (store.h).  History's `since_ms` relies on
 * that: it becomes a lower seq bound by binary search, so every history query
 * is a seq range scan.
 */
#include "store/store_int.h"
#include "store/store_sqlite_int.h"

#include <errno.h>
#include <fcntl.h>
#include <nettle/sha2.h>
#include <stddef.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "store/audit_codec.h"
#include "store/audit_journal.h"
#include "store/patkey_int.h"
#include "store/store_index_int.h"
#include "store/vfs_crypt.h"

#define SCHEMA_VERSION 2 /* 2: resource.json NULL, the body lives in history only */
/* kv row present while the patient+code index rows are incomplete (schema 1 data not yet reindexed) */
#define PC_NS "store"
#define PC_KEY "index.patient-code.incomplete"
#define BUSY_TIMEOUT_MS 10000 /* another process holding the write lock (backup, CLI) */
#define MAX_READERS 256
#define READER_MMAP "1073741824" /* bytes of the database file each reader maps */
#define CRYPT_CACHE "-32768"     /* KiB of decrypted pages per connection of an encrypted store */
#define AUDIT_CACHE "-4096"      /* KiB of pages of the audit database's writer connection */
#define DEFAULT_BATCH 512
#define UUID_TRIES 4
#define MAX_GATHER_NS 2000000 /* longest wait for stragglers before a group (2 ms) */
#define FAST_OFF_GROUPS 16    /* after a job failed in a group without savepoints: groups with them */
#define JOURNAL_FLUSH_MS 25         /* default salus_store_opts.audit_flush_ms */
#define JOURNAL_WAKE 1024           /* journaled records that wake the writer before its timer */
#define JOURNAL_GROUP_MAX 2048      /* journaled records moved in one group (~10 ms of the writer) */
#define JOURNAL_MAX_PENDING 65536   /* journaled records waiting for the writer: appends wait past this */
#define JOURNAL_POOL_BYTES 448      /* compact entries up to this size go in pooled jobs (see jpool) */
#define JOURNAL_POOL_MAX 4096       /* pooled jobs kept for reuse (~3 MB at most) */
#define JOURNAL_RESET_BYTES (4u << 20) /* the journal file is emptied once all of it is in the log and it is this big */
#define JOURNAL_NS "audit"         /* kv namespace of JOURNAL_KEY before the audit database */
#define JOURNAL_KEY "journal.done" /* audit_meta: the last journal record in the log */
#define AU_DB "au"                 /* the audit database, attached to every reader connection */
/* WAL checkpoints (see "checkpoints" below): the checkpointer thread is woken
 * past CKPT_PAGES frames; the writer checkpoints itself only past
 * CKPT_HARD_PAGES (SQLite's default autocheckpoint is 1000 frames, inline). */
#define CKPT_PAGES 16384      /* 64 MiB of WAL */
#define CKPT_HARD_PAGES 65536 /* 256 MiB of WAL */

/* ------------------------------------------------------------------------- */
/* SQLite's allocator through the seam (STYLE habit 14)                       */

/* SQLite needs xSize, so each block carries its size in a max-aligned header. */
typedef union {
	size_t n;
	max_align_t align;
} mem_hdr;

static void *mem_malloc(int n)
{
	mem_hdr *h = salus_malloc(sizeof *h + (size_t)n);
	if (!h)
		return NULL;
	h->n = (size_t)n;
	return h + 1;
}

static void mem_free(void *p)
{
	if (p)
		salus_free((mem_hdr *)p - 1);
}

static void *mem_realloc(void *p, int n)
{
	mem_hdr *h = salus_realloc((mem_hdr *)p - 1, sizeof *h + (size_t)n);
	if (!h)
		return NULL;
	h->n = (size_t)n;
	return h + 1;
}

static int mem_size(void *p)
{
	return p ? (int)((mem_hdr *)p - 1)->n : 0;
}

static int mem_roundup(int n)
{
	return (n + 7) & ~7;
}

static int mem_init(void *unused)
{
	(void)unused;
	return SQLITE_OK;
}

static void mem_shutdown(void *unused)
{
	(void)unused;
}

static const sqlite3_mem_methods mem_methods = {
	mem_malloc, mem_free, mem_realloc, mem_size, mem_roundup, mem_init, mem_shutdown, NULL,
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init_once(void)
{
	/* Only legal before SQLite initialises; if something else in the process
	 * used SQLite first, it keeps its own allocator. */
	int rc = sqlite3_config(SQLITE_CONFIG_MALLOC, &mem_methods);
	if (rc != SQLITE_OK)
		salus_log(SALUS_LOG_WARN, "store.sqlite.malloc", "routed=0 rc=%d", rc);
	/* no global allocation statistics: one mutex less on every allocation */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	sqlite3_initialize();
}

int salus_store_global_init(void)
{
	pthread_once(&global_once, global_init_once);
	return SALUS_OK;
}

/* ------------------------------------------------------------------------- */
/* errors                                                                     */

static int map_rc(int rc)
{
	if (rc == SQLITE_IOERR_NOMEM)
		return SALUS_ENOMEM;
	if (rc == SQLITE_IOERR_DATA) /* a page failed authentication (vfs_crypt.c) */
		return SALUS_EINTEGRITY;
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return SALUS_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SALUS_EBUSY;
	case SQLITE_NOMEM:
		return SALUS_ENOMEM;
	case SQLITE_TOOBIG:
		return SALUS_ETOOLARGE;
	case SQLITE_CONSTRAINT:
		return SALUS_ECONFLICT;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return SALUS_EINTERNAL;
	default: /* IOERR, FULL, CORRUPT, NOTADB, CANTOPEN, READONLY, PROTOCOL... */
		return SALUS_EIO;
	}
}

/* ------------------------------------------------------------------------- */
/* connections and their statement caches                                     */

enum stmt_id {
	/* readers */
	ST_READ,
	ST_VREAD,
	ST_HIST_SYS,
	ST_HIST_TYPE,
	ST_HIST_ID,
	ST_HCOUNT_SYS,
	ST_HCOUNT_TYPE,
	ST_HCOUNT_ID,
	ST_SEQ_AT,
	ST_LAST_SEQ,
	ST_LIST,
	ST_COUNT_TYPE,
	ST_COUNT_ALL,
	ST_KV_GET,
	ST_KV_LIST,
	ST_AU_SIZE,
	ST_AU_LEAF,
	ST_AU_NODE,
	ST_AU_SUBTREE,
	ST_AU_SCAN,
	ST_AU_CPS,
	ST_AU_CP_LAST,
	/* writer */
	ST_W_LOOKUP,
	ST_W_HIST_INS,
	ST_W_RES_INS,
	ST_W_RES_UPD,
	ST_W_KV_PUT,
	ST_W_KV_DEL,
	ST_W_BEGIN,
	ST_W_COMMIT,
	ST_W_ROLLBACK,
	ST_W_SAVE,
	ST_W_RELEASE,
	ST_W_ROLLBACK_TO,
	ST_W_AU_INS,
	ST_W_AU_SUBTREE_INS,
	ST_W_AU_CP_INS,
	ST_W_AU_META_PUT,
	ST_W_TOK_DEL, /* the identifier index (added with conditional operations) */
	ST_W_TOK_INS,
	ST_TOK_FIND,
	ST_TOK_FIND_ANY,
	ST_ERASED, /* crypto-shredding (added with per-patient keys) */
	ST_W_OWNER_INS,
	ST__COUNT
};

#define HCOLS "SELECT type, id, version, updated_ms, seq, deleted, json FROM history "
/* The current version's body: schema 2 stores it once, in its history row
 * (resource.json is NULL); rows written under schema 1 still carry a copy in
 * resource.json, which wins.  coalesce() evaluates the subquery only when
 * resource.json is NULL: one rowid seek into history. */
#define RES_BODY "coalesce(json, (SELECT h.json FROM history h WHERE h.seq=resource.seq))"

static const char *const stmt_sql[ST__COUNT] = {
	[ST_READ] = "SELECT version, updated_ms, seq, deleted, " RES_BODY " FROM resource WHERE type=?1 AND id=?2",
	[ST_VREAD] = "SELECT version, updated_ms, seq, deleted, json FROM history "
		     "WHERE type=?1 AND id=?2 AND version=?3",
	[ST_HIST_SYS] = HCOLS "WHERE seq>=?1 AND seq<?2 ORDER BY seq DESC LIMIT ?3",
	[ST_HIST_TYPE] = HCOLS "WHERE type=?4 AND seq>=?1 AND seq<?2 ORDER BY seq DESC LIMIT ?3",
	[ST_HIST_ID] = HCOLS "WHERE type=?4 AND id=?5 AND seq>=?1 AND seq<?2 ORDER BY seq DESC LIMIT ?3",
	[ST_HCOUNT_SYS] = "SELECT count(*) FROM history WHERE seq>=?1 AND seq<?2",
	[ST_HCOUNT_TYPE] = "SELECT count(*) FROM history WHERE type=?4 AND seq>=?1 AND seq<?2",
	[ST_HCOUNT_ID] = "SELECT count(*) FROM history WHERE type=?4 AND id=?5 AND seq>=?1 AND seq<?2",
	[ST_SEQ_AT] = "SELECT seq, updated_ms FROM history WHERE seq>=?1 ORDER BY seq LIMIT 1",
	[ST_LAST_SEQ] = "SELECT max(seq) FROM history",
	[ST_LIST] = "SELECT id, version, updated_ms, seq, " RES_BODY " FROM resource "
		    "WHERE type=?1 AND id>?2 AND deleted=0 ORDER BY id LIMIT ?3",
	[ST_COUNT_TYPE] = "SELECT count(*) FROM resource WHERE type=?1 AND deleted=0",
	[ST_COUNT_ALL] = "SELECT count(*) FROM resource WHERE deleted=0",
	[ST_KV_GET] = "SELECT val FROM kv WHERE ns=?1 AND key=?2",
	[ST_KV_LIST] = "SELECT key, val FROM kv WHERE ns=?1 ORDER BY key",
	[ST_AU_SIZE] = "SELECT coalesce(max(idx) + 1, 0) FROM audit_log",
	[ST_AU_LEAF] = "SELECT leaf_hash FROM audit_log WHERE idx=?1",
	[ST_AU_NODE] = "SELECT hash FROM audit_node WHERE level=?1 AND idx=?2",
	[ST_AU_SUBTREE] = "SELECT hashes FROM audit_subtree WHERE leaf=?1",
	[ST_AU_SCAN] = "SELECT idx, ts_ms, leaf_hash, event FROM audit_log WHERE idx>=?1 ORDER BY idx LIMIT ?2",
	[ST_AU_CPS] = "SELECT size, root, ts_ms, signed_note FROM audit_checkpoint ORDER BY size",
	[ST_AU_CP_LAST] = "SELECT size, root, ts_ms, signed_note FROM audit_checkpoint ORDER BY size DESC LIMIT 1",
	[ST_W_LOOKUP] = "SELECT version, updated_ms, deleted FROM resource WHERE type=?1 AND id=?2",
	[ST_W_HIST_INS] = "INSERT INTO history(type, id, version, updated_ms, deleted, json) "
			  "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_W_RES_INS] = "INSERT INTO resource(type, id, version, updated_ms, seq, deleted, json) "
			 "VALUES(?1, ?2, ?3, ?4, ?5, ?6, NULL)",
	[ST_W_RES_UPD] = "UPDATE resource SET version=?3, updated_ms=?4, seq=?5, deleted=?6, json=NULL "
			 "WHERE type=?1 AND id=?2",
	[ST_W_KV_PUT] = "INSERT INTO kv(ns, key, val) VALUES(?1, ?2, ?3) "
			"ON CONFLICT(ns, key) DO UPDATE SET val=excluded.val",
	[ST_W_KV_DEL] = "DELETE FROM kv WHERE ns=?1 AND key=?2",
	[ST_W_BEGIN] = "BEGIN IMMEDIATE",
	[ST_W_COMMIT] = "COMMIT",
	[ST_W_ROLLBACK] = "ROLLBACK",
	[ST_W_SAVE] = "SAVEPOINT job",
	[ST_W_RELEASE] = "RELEASE job",
	[ST_W_ROLLBACK_TO] = "ROLLBACK TO job",
	[ST_W_AU_INS] = "INSERT INTO audit_log(idx, ts_ms, leaf_hash, event) VALUES(?1, ?2, ?3, ?4)",
	[ST_W_AU_SUBTREE_INS] = "INSERT INTO audit_subtree(leaf, hashes) VALUES(?1, ?2)",
	[ST_W_AU_CP_INS] = "INSERT INTO audit_checkpoint(size, root, ts_ms, signed_note) VALUES(?1, ?2, ?3, ?4) "
			   "ON CONFLICT(size) DO NOTHING",
	[ST_W_AU_META_PUT] = "INSERT INTO audit_meta(key, val) VALUES(?1, ?2) "
			     "ON CONFLICT(key) DO UPDATE SET val=excluded.val",
	[ST_W_TOK_DEL] = "DELETE FROM token_index WHERE type=?1 AND id=?2",
	[ST_W_TOK_INS] = "INSERT INTO token_index(type, id, system, value) VALUES(?1, ?2, ?3, ?4)",
	[ST_TOK_FIND] = "SELECT DISTINCT id FROM token_index WHERE type=?1 AND value=?2 AND system=?3 ORDER BY id",
	[ST_TOK_FIND_ANY] = "SELECT DISTINCT id FROM token_index WHERE type=?1 AND value=?2 ORDER BY id",
	[ST_ERASED] = "SELECT erased_ms FROM erased WHERE type=?1 AND id=?2",
	[ST_W_OWNER_INS] = "INSERT OR IGNORE INTO patient_owner(patient, type, id) VALUES(?1, ?2, ?3)",
};

/* Crypto-shredding (docs/security.md; patkey_int.h): which resources have
 * bodies sealed under which patient's key, and the resources whose rows an
 * erasure removed (a read of them answers 410).  Ids only, no PHI. */
static const char erase_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS patient_owner(patient TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,"
	" PRIMARY KEY(patient, type, id)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS erased(type TEXT NOT NULL, id TEXT NOT NULL, erased_ms INTEGER NOT NULL,"
	" PRIMARY KEY(type, id)) WITHOUT ROWID;";

/* The identifier index (store.h): created on every open if missing.  system
 * is '' when the identifier has none, so "no system" is an equality test. */
static const char token_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS token_index(type TEXT NOT NULL, id TEXT NOT NULL,"
	" system TEXT NOT NULL, value TEXT NOT NULL);"
	"CREATE INDEX IF NOT EXISTS token_index_value ON token_index(type, value, system);"
	"CREATE INDEX IF NOT EXISTS token_index_id ON token_index(type, id);";

/* The schema (docs/store.md).  Portable shapes, so store_pg can mirror it. */
static const char schema_sql[] =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, val TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS history("
	" seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, json TEXT);"
	"CREATE UNIQUE INDEX IF NOT EXISTS history_version ON history(type, id, version);"
	"CREATE INDEX IF NOT EXISTS history_type_seq ON history(type, seq);"
	"CREATE TABLE IF NOT EXISTS resource("
	" type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,"
	" updated_ms INTEGER NOT NULL, seq INTEGER NOT NULL REFERENCES history(seq),"
	" deleted INTEGER NOT NULL DEFAULT 0, json TEXT,"
	" PRIMARY KEY(type, id));"
	"CREATE INDEX IF NOT EXISTS resource_type_live ON resource(type, deleted);"
	"CREATE TABLE IF NOT EXISTS kv(ns TEXT NOT NULL, key TEXT NOT NULL, val BLOB NOT NULL,"
	" PRIMARY KEY(ns, key));";

/* The audit log (store.h), in its own database file (salus_store_audit_path):
 * created on every open if missing.  The triggers make the tables append-only;
 * the one UPDATE allowed sets an event's text to NULL (pruning) and nothing
 * else.  audit_meta holds the last journal record in the log (JOURNAL_KEY). */
static const char audit_schema_sql[] =
	"CREATE TABLE IF NOT EXISTS audit_meta(key TEXT PRIMARY KEY, val TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit_log(idx INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
	" leaf_hash BLOB NOT NULL, event TEXT);"
	"CREATE TABLE IF NOT EXISTS audit_node(level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL,"
	" PRIMARY KEY(level, idx)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS audit_subtree(leaf INTEGER PRIMARY KEY, hashes BLOB NOT NULL);"
	"CREATE TABLE IF NOT EXISTS audit_checkpoint(size INTEGER PRIMARY KEY, root BLOB NOT NULL,"
	" ts_ms INTEGER NOT NULL, signed_note TEXT NOT NULL);"
	"CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log"
	" WHEN NEW.idx IS NOT OLD.idx OR NEW.ts_ms IS NOT OLD.ts_ms OR NEW.leaf_hash IS NOT OLD.leaf_hash"
	" OR NEW.event IS NOT NULL"
	" BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log"
	" BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_node_no_update BEFORE UPDATE ON audit_node"
	" BEGIN SELECT RAISE(ABORT, 'audit_node is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_subtree_no_update BEFORE UPDATE ON audit_subtree"
	" BEGIN SELECT RAISE(ABORT, 'audit_subtree is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_subtree_no_delete BEFORE DELETE ON audit_subtree"
	" BEGIN SELECT RAISE(ABORT, 'audit_subtree is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_node_no_delete BEFORE DELETE ON audit_node"
	" BEGIN SELECT RAISE(ABORT, 'audit_node is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint"
	" BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;"
	"CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint"
	" BEGIN SELECT RAISE(ABORT, 'audit_checkpoint is append-only'); END;";

#define AU_LEVELS 64 /* frontier slots: one per bit of the tree size */

struct conn {
	sqlite3 *db;
	sqlite3_stmt *st[ST__COUNT]; /* prepared on first use */
	bool temp;                   /* opened for a nested call; closed on release */
	struct conn *next;           /* pool free list */
};

/* A queued write, on its caller's stack. */
struct job {
	enum { JOB_WRITE, JOB_KV_PUT, JOB_KV_DEL, JOB_CHECKPOINT, JOB_FN } kind;
	int (*fn)(void *ctx, sqlite3 *db); /* JOB_FN: run on a writer connection (store_sqlite_int.h) */
	bool fn_audit;                     /* JOB_FN: on the audit database's connection */
	void *fn_ctx;
	struct salus_write *ops; /* JOB_WRITE */
	size_t n;
	struct salus_audit_entry *au; /* JOB_WRITE: audit entries appended after the ops */
	size_t nau;
	/* journaled (nau == 1): pre and post already in the stored form (audit_codec.h), encoded by
	 * the caller's thread so the single writer only splices the index in; NULL: the writer encodes */
	const unsigned char *au_epre, *au_epost;
	size_t au_epre_n, au_epost_n;
	int64_t cp_size, cp_ts; /* JOB_CHECKPOINT */
	const unsigned char *cp_root;
	const char *cp_note;
	/* journaled (salus_store_audit_journal): heap, already in the journal file as record jseq;
	 * freed by the writer after its group (no one waits for it) */
	bool journaled;
	bool pooled; /* journaled, a pooled job (jpool): the writer gives it back instead of freeing it */
	uint64_t jseq;
	const char *ns, *key; /* JOB_KV_* */
	const void *val;
	size_t vn;
	int rc;
	bool done;
	pthread_cond_t cv; /* signalled under sq->qmu when done */
	struct job *next;
};

struct sq_store {
	struct salus_store base;
	char *path;
	bool pc_incomplete; /* no driving by patient+code rows (PC_KEY): a schema-1 database not yet reindexed */
	struct salus_crypt_vfs *vfs; /* the encrypting VFS; NULL: a plaintext database */
	struct salus_pk *pk;         /* per-patient record keys; NULL: bodies under the page key only */
	int batch_max;

	/* writer: `w`, `a` and last_ms belong to the writer thread once it runs.  `w` writes the
	 * resources, `a` the audit database (apath): its commits never touch the resource
	 * database, so they do not reset the readers' page caches, and a group commits `a`
	 * first — an event is never missing for a write that is there (see w_run_group) */
	struct conn w, a;
	char *apath;
	int64_t last_ms; /* newest updated_ms written */
	/* the audit tree's right edge, writer-only: au_front[l] is the hash of the
	 * complete subtree of 2^l leaves that bit l of au_size stands for */
	bool au_loaded;
	int64_t au_size;
	unsigned char au_front[AU_LEVELS][SALUS_AUDIT_HASH_LEN];
	uint64_t group_no, au_group; /* au_size checked against the table once per group */
	unsigned char *au_val;       /* scratch: its stored (compact) form, audit_codec.h */
	size_t au_val_cap, au_val_n;
	struct salus_sx_w *sx;       /* the search index's writer statements (store_index.c) */
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t qmu;
	pthread_cond_t qcv;      /* work queued, or stopping (CLOCK_MONOTONIC) */
	struct job *head, *tail; /* under qmu */
	size_t queued;           /* jobs in the queue, under qmu */
	size_t wake_at;          /* under qmu: queue() signals qcv only when queued reaches this — what
				  * the writer waits for (1 when idle, the gather target, SIZE_MAX
				  * while it runs a group): a wake-up per job was a context switch
				  * per audited request */
	bool stopping;           /* under qmu */

	/* the audit journal (audit_journal.h); NULL when another process owns it (appends are then
	 * direct).  Lock order: jmu, then qmu. */
	struct salus_ajournal *aj;
	char *jpath;    /* the journal's path (a reader in another process than its owner waits on it) */
	pthread_mutex_t jmu;
	uint64_t jseq;  /* under jmu: the last record appended */
	uint64_t jdone; /* under jmu: the last record in the log, durably (kv JOURNAL_KEY) */
	bool jbroken;   /* under jmu: moving records into the log failed — appends are refused (fail
			 * closed); the next open moves what the file holds */
	bool jbroken_w; /* the writer's copy: journaled jobs still queued then fail their group */
	struct job *jhead, *jtail; /* under qmu: journaled, not yet taken by the writer */
	size_t jqueued;            /* under qmu */
	size_t jwake;              /* under qmu: an append signals qcv when jqueued reaches this */
	int64_t jfirst_ns;         /* under qmu: when the oldest of them was appended */
	pthread_cond_t jcv;        /* under qmu: room in the journaled list */
	pthread_cond_t jdone_cv;   /* under jmu: jdone moved (or jbroken) */
	bool jgate;                /* under jmu: an append waits for the file to be emptied; others wait too */
	int64_t jflush_ns;         /* how long a journaled record may wait for the writer */
	/* under jmu: jobs of small compact entries, given back by the writer for the next appends.  A
	 * job malloc'ed by a request thread and freed by the writer went back to the request thread's
	 * malloc arena under its lock, a few hundred at a time: the request threads' own allocations
	 * then waited on that lock (a futex call per audited read; none without the audit). */
	struct job *jpool;
	size_t jnpool;

	/* the syncer (see "durability off the writer's path"): with `synced` set, `w` and `a` commit
	 * with synchronous=NORMAL (no fsync in COMMIT); the writer fdatasyncs the audit WAL (afd)
	 * itself before the resource COMMIT, and hands each group to the syncer thread, which
	 * fdatasyncs the resource WAL (wfd) once for every group committed since its last sync and
	 * only then wakes their callers — while the writer already builds the next group */
	bool synced;             /* set at open, then read-only; false: both stay synchronous=FULL */
	int wfd, afd;            /* the WAL files of `w` and `a`, opened by us only to fdatasync them */
	pthread_t sy_thread;
	bool sy_started;
	pthread_cond_t sycv;     /* under qmu: a group handed over, or stopping */
	struct job *sy_head, *sy_tail; /* under qmu: committed jobs waiting for the sync, in order */
	bool sy_dirty;           /* under qmu: a group among them committed on `w` */
	int64_t sy_last_ns;      /* under qmu: how long the last fdatasync took */
	int fast_off;            /* writer: groups left to run with a savepoint per job (w_apply_fast) */
	bool sy_stopping;        /* under qmu */
	bool sync_failed;        /* under qmu: a sync failed — every later group fails (fail closed) */

	/* the checkpointer: its own connection (the audit database attached) and thread (see
	 * "checkpoints") */
	struct conn ck;
	pthread_t ck_thread;
	bool ck_started;   /* set before the writer thread starts, then read-only */
	pthread_mutex_t ckmu;
	pthread_cond_t ckcv;
	bool ck_wanted;    /* under ckmu */
	bool ck_stopping;  /* under ckmu */

	/* readers */
	pthread_mutex_t rmu;
	pthread_cond_t rcv;
	struct conn *readers; /* array of nreaders */
	int nreaders;
	struct conn *free_readers; /* under rmu */
};

static _Thread_local int reader_depth; /* reader connections this thread holds */
/* salus_store_read_begin: the reader connection this thread holds, in a read transaction, for the
 * reads of one request; busy while a read uses it (a nested read then takes another connection) */
static _Thread_local struct conn *pin_conn;
static _Thread_local const struct sq_store *pin_sq;
static _Thread_local bool pin_busy;

static int conn_stmt(struct conn *c, enum stmt_id id, sqlite3_stmt **out)
{
	if (!c->st[id]) {
		int rc = sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->st[id], NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(c->st[id]);
			c->st[id] = NULL;
			return map_rc(rc);
		}
	}
	*out = c->st[id];
	return SALUS_OK;
}

static void conn_close(struct conn *c)
{
	for (int i = 0; i < ST__COUNT; i++) {
		sqlite3_finalize(c->st[i]);
		c->st[i] = NULL;
	}
	if (c->db)
		salus_sx_release(c->db); /* search statements kept for reuse */
	sqlite3_close(c->db);
	c->db = NULL;
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	return map_rc(sqlite3_exec(db, sql, NULL, NULL, NULL));
}

static int conn_open(struct conn *c, const char *path, int flags, struct salus_crypt_vfs *vfs)
{
	int rc;
	memset(c, 0, sizeof *c);
	rc = sqlite3_open_v2(path, &c->db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
			     vfs ? salus_crypt_vfs_name(vfs) : NULL);
	if (rc != SQLITE_OK) {
		int e = errno;
		if ((rc & 0xff) == SQLITE_CANTOPEN) {
			struct stat st;
			rc = (stat(path, &st) && e == ENOENT) ? SALUS_ENOTFOUND : SALUS_EIO;
		} else {
			rc = map_rc(rc);
		}
		sqlite3_close(c->db);
		c->db = NULL;
		return rc;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
	/* encrypted: temp tables, sorters and statement journals stay in memory
	 * (the VFS refuses every file but the database and its WAL); and a
	 * bigger page cache of decrypted pages, since there is no mmap'd OS
	 * cache to share (measured: reads 40% -> 84% of plaintext; docs/security.md) */
	if (vfs && (rc = exec_sql(c->db, "PRAGMA temp_store=MEMORY; PRAGMA cache_size=" CRYPT_CACHE))) {
		conn_close(c);
		return rc;
	}
	return SALUS_OK;
}

/* Attach the database at path as `name` (AU_DB: the audit database) through the connection's VFS. */
static int conn_attach(sqlite3 *db, const char *path, const char *name)
{
	sqlite3_stmt *st = NULL;
	int rc = map_rc(sqlite3_prepare_v2(db, "ATTACH DATABASE ?1 AS ?2", -1, &st, NULL));
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? SALUS_OK : map_rc(rc);
}

/* A reader: the resource database, the audit database attached (the audit tables are
 * found by their names, which the resource database does not use). */
static int reader_open(struct conn *c, const struct sq_store *sq)
{
	int rc = conn_open(c, sq->path, SQLITE_OPEN_READONLY, sq->vfs);
	if (rc)
		return rc;
	/* Any commit resets a WAL reader's whole page cache, so under write load
	 * reads would go back to pread(2) every time; mapping the file avoids that
	 * copy.  (A page-encrypting VFS without xFetch turns this off by itself.) */
	if ((rc = exec_sql(c->db, "PRAGMA query_only=1; PRAGMA mmap_size=" READER_MMAP)) ||
	    (rc = conn_attach(c->db, sq->apath, AU_DB))) {
		conn_close(c);
		return rc;
	}
	return SALUS_OK;
}

static int reader_get(struct sq_store *sq, struct conn **out)
{
	struct conn *c;
	int rc;

	if (pin_conn && pin_sq == sq && !pin_busy) {
		pin_busy = true;
		reader_depth++;
		*out = pin_conn;
		return SALUS_OK;
	}
	pthread_mutex_lock(&sq->rmu);
	while (!sq->free_readers && !reader_depth)
		pthread_cond_wait(&sq->rcv, &sq->rmu);
	c = sq->free_readers;
	if (c)
		sq->free_readers = c->next;
	pthread_mutex_unlock(&sq->rmu);
	if (!c) {
		/* nested call from a callback with the pool empty: never wait */
		if (!(c = salus_calloc(1, sizeof *c)))
			return SALUS_ENOMEM;
		if ((rc = reader_open(c, sq))) {
			salus_free(c);
			return rc;
		}
		c->temp = true;
	}
	reader_depth++;
	*out = c;
	return SALUS_OK;
}

static void reader_put(struct sq_store *sq, struct conn *c)
{
	reader_depth--;
	if (c == pin_conn) {
		pin_busy = false;
		return;
	}
	if (c->temp) {
		conn_close(c);
		salus_free(c);
		return;
	}
	pthread_mutex_lock(&sq->rmu);
	c->next = sq->free_readers;
	sq->free_readers = c;
	pthread_cond_signal(&sq->rcv);
	pthread_mutex_unlock(&sq->rmu);
}

/* Step a statement that returns no rows, and reset it. */
static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return SALUS_OK;
	}
	rc = sqlite3_reset(st);
	return map_rc(rc ? rc : SQLITE_INTERNAL);
}

/* ------------------------------------------------------------------------- */
/* reads                                                                      */

static struct sq_store *sq_of(struct salus_store *s)
{
	return (struct sq_store *)s;
}

/* A borrowed view of column `col` as text, or NULL when the value is NULL;
 * SALUS_ENOMEM when SQLite cannot materialise it. */
static int col_text(sqlite3_stmt *st, int col, const char **p, size_t *n)
{
	if (sqlite3_column_type(st, col) == SQLITE_NULL) {
		*p = NULL;
		*n = 0;
		return SALUS_OK;
	}
	*p = (const char *)sqlite3_column_text(st, col);
	if (!*p)
		return SALUS_ENOMEM;
	*n = (size_t)sqlite3_column_bytes(st, col);
	return SALUS_OK;
}

/* The `char *json` of a callback's borrowed resource; never written through. */
static char *unconst(const char *p)
{
	return (char *)(uintptr_t)p;
}

static void copy_name(char *dst, size_t cap, const char *src)
{
	size_t n = src ? strnlen(src, cap - 1) : 0;
	memcpy(dst, src ? src : "", n);
	dst[n] = 0;
}

/* A stored body as callers see it: JSON text as stored, or a body sealed
 * under a patient's key (a blob) opened into *owned (salus_malloc'd, else
 * NULL).  SALUS_EGONE: the patient was erased; SALUS_EINTEGRITY: a sealed
 * body that does not open (or a store opened without patient keys). */
static int body_view(struct sq_store *sq, sqlite3_stmt *st, int col, const char *type, const char *id, long version,
		     const char **p, size_t *n, char **owned, char owner[SALUS_MAX_ID + 1])
{
	*owned = NULL;
	owner[0] = '\0';
	if (sqlite3_column_type(st, col) != SQLITE_BLOB)
		return col_text(st, col, p, n);
	const void *b = sqlite3_column_blob(st, col);
	size_t bn = (size_t)sqlite3_column_bytes(st, col);
	if (!sq->pk || !salus_pk_is_sealed(b, bn))
		return SALUS_EINTEGRITY;
	int rc = salus_pk_open_rec(sq->pk, type, id, version, b, bn, owned, n);
	if (!rc) {
		*p = *owned;
		if (!salus_pk_owner(b, bn, owner, SALUS_MAX_ID + 1)) /* it opened, so it is well formed */
			owner[0] = '\0';
	}
	return rc;
}

/* A read of a resource with no row: was it erased (crypto-shredding)?  Then
 * SALUS_EGONE with *out a tombstone of version 0, else SALUS_ENOTFOUND. */
static int erased_check(struct conn *c, const char *type, const char *id, struct salus_resource *out)
{
	sqlite3_stmt *st = NULL;
	int rc = conn_stmt(c, ST_ERASED, &st);
	if (rc)
		return rc;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof *out);
		copy_name(out->type, sizeof out->type, type);
		copy_name(out->id, sizeof out->id, id);
		out->updated_ms = sqlite3_column_int64(st, 0);
		out->deleted = true;
		rc = SALUS_EGONE;
	} else {
		rc = rc == SQLITE_DONE ? SALUS_ENOTFOUND : map_rc(rc);
	}
	sqlite3_reset(st);
	return rc;
}

static int sq_read(struct salus_store *s, const char *type, const char *id, long version,
		   struct salus_resource *out)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	struct salus_resource r;
	const char *json;
	char *owned = NULL;
	size_t len;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, version ? ST_VREAD : ST_READ, &st)))
		goto out_conn;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if (version)
		sqlite3_bind_int64(st, 3, version);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? SALUS_ENOTFOUND : map_rc(sqlite3_reset(st));
		if (rc == SALUS_ENOTFOUND)
			rc = erased_check(c, type, id, out);
		goto out_stmt;
	}
	memset(&r, 0, sizeof r);
	copy_name(r.type, sizeof r.type, type);
	copy_name(r.id, sizeof r.id, id);
	r.version = (long)sqlite3_column_int64(st, 0);
	r.updated_ms = sqlite3_column_int64(st, 1);
	r.seq = sqlite3_column_int64(st, 2);
	r.deleted = sqlite3_column_int(st, 3) != 0;
	if (r.deleted) {
		*out = r;
		rc = SALUS_EGONE;
		goto out_stmt;
	}
	rc = body_view(sq, st, 4, type, id, r.version, &json, &len, &owned, r.owner);
	if (rc == SALUS_EGONE) { /* its patient was erased after this copy of the database was made */
		r.deleted = true;
		*out = r;
		goto out_stmt;
	}
	if (rc)
		goto out_stmt;
	if (!json) {
		rc = SALUS_EIO; /* a live version without a body: corrupt */
		goto out_stmt;
	}
	if (owned) {
		r.json = owned;
	} else if (!(r.json = salus_strndup(json, len))) {
		rc = SALUS_ENOMEM;
		goto out_stmt;
	}
	r.len = len;
	*out = r;
	rc = SALUS_OK;
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

/* Lowest seq whose updated_ms >= since (last seq + 1 if none), by binary
 * search over seq: updated_ms never decreases in seq order. */
static int since_to_seq(struct conn *c, int64_t since, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int64_t lo = 1, hi;
	int rc;

	if ((rc = conn_stmt(c, ST_LAST_SEQ, &st)))
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		return map_rc(sqlite3_reset(st));
	hi = sqlite3_column_int64(st, 0) + 1;
	sqlite3_reset(st);
	if ((rc = conn_stmt(c, ST_SEQ_AT, &st)))
		return rc;
	while (lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		bool at_or_after;
		sqlite3_bind_int64(st, 1, mid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			at_or_after = sqlite3_column_int64(st, 1) >= since;
		else if (rc == SQLITE_DONE)
			at_or_after = true;
		else
			return map_rc(sqlite3_reset(st));
		sqlite3_reset(st);
		if (at_or_after)
			hi = mid;
		else
			lo = mid + 1;
	}
	*out = lo;
	return SALUS_OK;
}

/* Bind the shape and seq range of a history query; `paging` applies before_seq. */
static int hist_prepare(struct conn *c, const struct salus_history_q *q, bool count, sqlite3_stmt **out)
{
	enum stmt_id id;
	int64_t lo = 1, hi = INT64_MAX;
	sqlite3_stmt *st = NULL;
	int rc;

	if (q->since_ms > 0 && (rc = since_to_seq(c, q->since_ms, &lo)))
		return rc;
	if (!count && q->before_seq > 0)
		hi = q->before_seq;
	if (q->at_most_seq > 0 && q->at_most_seq < hi - 1)
		hi = q->at_most_seq + 1;
	if (!q->type)
		id = count ? ST_HCOUNT_SYS : ST_HIST_SYS;
	else if (!q->id)
		id = count ? ST_HCOUNT_TYPE : ST_HIST_TYPE;
	else
		id = count ? ST_HCOUNT_ID : ST_HIST_ID;
	if ((rc = conn_stmt(c, id, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, lo);
	sqlite3_bind_int64(st, 2, hi);
	if (!count)
		sqlite3_bind_int(st, 3, q->count);
	if (q->type)
		sqlite3_bind_text(st, 4, q->type, -1, SQLITE_STATIC);
	if (q->id)
		sqlite3_bind_text(st, 5, q->id, -1, SQLITE_STATIC);
	*out = st;
	return SALUS_OK;
}

static int sq_history(struct salus_store *s, const struct salus_history_q *q, salus_resource_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = hist_prepare(c, q, false, &st)))
		goto out_conn;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct salus_resource r;
		const char *t, *id, *json = NULL;
		char *owned = NULL;
		size_t tn, idn;
		memset(&r, 0, sizeof r);
		if ((rc = col_text(st, 0, &t, &tn)) || (rc = col_text(st, 1, &id, &idn)))
			goto out_stmt;
		copy_name(r.type, sizeof r.type, t);
		copy_name(r.id, sizeof r.id, id);
		r.version = (long)sqlite3_column_int64(st, 2);
		r.updated_ms = sqlite3_column_int64(st, 3);
		r.seq = sqlite3_column_int64(st, 4);
		r.deleted = sqlite3_column_int(st, 5) != 0;
		if (!r.deleted && (rc = body_view(sq, st, 6, r.type, r.id, r.version, &json, &r.len, &owned, r.owner))) {
			if (rc == SALUS_EGONE)
				continue; /* an erased patient's version (in a restored copy): never shown */
			goto out_stmt;
		}
		r.json = r.deleted ? NULL : unconst(json);
		if (r.deleted)
			r.len = 0;
		rc = cb(ctx, &r);
		salus_free(owned);
		if (rc)
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

/* Run a one-row integer query that is already bound; *v = column 0. */
static int scalar(sqlite3_stmt *st, int64_t *v)
{
	int rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = sqlite3_reset(st);
		return map_rc(rc ? rc : SQLITE_INTERNAL);
	}
	*v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return SALUS_OK;
}

static int sq_history_count(struct salus_store *s, const struct salus_history_q *q, long *total)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if (!(rc = hist_prepare(c, q, true, &st)) && !(rc = scalar(st, &v)))
		*total = (long)v;
	reader_put(sq, c);
	return rc;
}

static int sq_last_seq(struct salus_store *s, int64_t *seq)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if (!(rc = conn_stmt(c, ST_LAST_SEQ, &st)) && !(rc = scalar(st, &v)))
		*seq = v; /* max() of no rows is NULL, read as 0 */
	reader_put(sq, c);
	return rc;
}

static int sq_list(struct salus_store *s, const char *type, const char *after_id, int count,
		   salus_resource_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, ST_LIST, &st)))
		goto out_conn;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, after_id ? after_id : "", -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, count);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct salus_resource r;
		const char *id, *json = NULL;
		char *owned = NULL;
		size_t idn;
		memset(&r, 0, sizeof r);
		if ((rc = col_text(st, 0, &id, &idn)))
			goto out_stmt;
		copy_name(r.type, sizeof r.type, type);
		copy_name(r.id, sizeof r.id, id);
		r.version = (long)sqlite3_column_int64(st, 1);
		r.updated_ms = sqlite3_column_int64(st, 2);
		r.seq = sqlite3_column_int64(st, 3);
		if ((rc = body_view(sq, st, 4, r.type, r.id, r.version, &json, &r.len, &owned, r.owner))) {
			if (rc == SALUS_EGONE)
				continue; /* an erased patient's resource (in a restored copy) */
			goto out_stmt;
		}
		r.json = unconst(json);
		rc = cb(ctx, &r);
		salus_free(owned);
		if (rc)
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

static int sq_count(struct salus_store *s, const char *type, long *total)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int64_t v;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if (!(rc = conn_stmt(c, type ? ST_COUNT_TYPE : ST_COUNT_ALL, &st))) {
		if (type)
			sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
		if (!(rc = scalar(st, &v)))
			*total = (long)v;
	}
	reader_put(sq, c);
	return rc;
}

static int sq_kv_get(struct salus_store *s, const char *ns, const char *key, char **val, size_t *n)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	const char *p;
	size_t len;
	char *copy;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, ST_KV_GET, &st)))
		goto out_conn;
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? SALUS_ENOTFOUND : map_rc(sqlite3_reset(st));
		goto out_stmt;
	}
	if ((rc = col_text(st, 0, &p, &len)))
		goto out_stmt;
	if (!(copy = salus_strndup(p ? p : "", len))) {
		rc = SALUS_ENOMEM;
		goto out_stmt;
	}
	*val = copy;
	if (n)
		*n = len;
	rc = SALUS_OK;
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

static int sq_kv_list(struct salus_store *s, const char *ns, salus_kv_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, ST_KV_LIST, &st)))
		goto out_conn;
	sqlite3_bind_text(st, 1, ns, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *k, *v;
		size_t kn, vn;
		if ((rc = col_text(st, 0, &k, &kn)) || (rc = col_text(st, 1, &v, &vn)))
			goto out_stmt;
		if ((rc = cb(ctx, k ? k : "", v ? v : "", vn)))
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* the writer                                                                 */

static int c_exec(struct conn *c, enum stmt_id id)
{
	sqlite3_stmt *st = NULL;
	int rc = conn_stmt(c, id, &st);
	return rc ? rc : step_done(st);
}

static int w_exec(struct sq_store *sq, enum stmt_id id)
{
	return c_exec(&sq->w, id);
}

struct cur {
	bool exists;
	bool deleted;
	long version;
	int64_t updated_ms;
};

static int w_lookup(struct sq_store *sq, const char *type, const char *id, struct cur *cur)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = conn_stmt(&sq->w, ST_W_LOOKUP, &st)))
		return rc;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	memset(cur, 0, sizeof *cur);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		cur->exists = true;
		cur->version = (long)sqlite3_column_int64(st, 0);
		cur->updated_ms = sqlite3_column_int64(st, 1);
		cur->deleted = sqlite3_column_int(st, 2) != 0;
	} else if (rc != SQLITE_DONE) {
		return map_rc(sqlite3_reset(st));
	}
	sqlite3_reset(st);
	return SALUS_OK;
}

/* The next updated_ms: never before the previous write, and after the
 * previous version of this resource. */
static int64_t w_next_ms(struct sq_store *sq, const struct cur *cur)
{
	int64_t ms = salus_now_ms();
	if (ms < sq->last_ms)
		ms = sq->last_ms;
	if (cur->exists && ms <= cur->updated_ms)
		ms = cur->updated_ms + 1;
	sq->last_ms = ms;
	return ms;
}

/* The patient whose key seals this body (crypto-shredding): a Patient is its
 * own; other resources the one the indexer found (salus_ix.patient). */
static const char *w_owner(const struct sq_store *sq, const struct salus_write *w, const char *id)
{
	if (!sq->pk)
		return NULL;
	if (!strcmp(w->type, "Patient"))
		return id;
	return w->index && w->index->patient && *w->index->patient ? w->index->patient : NULL;
}

/* Bind a body: sealed (a blob) or the JSON text. */
static void bind_body(sqlite3_stmt *st, int col, const struct salus_write *w, const unsigned char *sealed,
		      size_t sealed_n)
{
	if (sealed)
		sqlite3_bind_blob(st, col, sealed, (int)sealed_n, SQLITE_STATIC);
	else
		sqlite3_bind_text(st, col, w->json, (int)w->len, SQLITE_STATIC);
}

static int w_put_rows(struct sq_store *sq, struct salus_write *w, const char *id, const struct cur *cur,
		      bool deleted, const unsigned char *sealed, size_t sealed_n);

/* Insert the history row, then insert or update the current row (the body
 * sealed under the owning patient's key when there is one). */
static int w_put_version(struct sq_store *sq, struct salus_write *w, const char *id, const struct cur *cur,
			 bool deleted)
{
	sqlite3_stmt *st = NULL;
	const char *owner = deleted ? NULL : w_owner(sq, w, id);
	unsigned char *sealed = NULL;
	size_t sealed_n = 0;
	int rc;

	if (owner) {
		if ((rc = salus_pk_seal(sq->pk, owner, w->type, id, w->version, w->json, w->len, &sealed, &sealed_n)))
			return rc;
		if ((rc = conn_stmt(&sq->w, ST_W_OWNER_INS, &st)))
			goto out_sealed;
		sqlite3_bind_text(st, 1, owner, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, w->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
		if ((rc = step_done(st)))
			goto out_sealed;
	}
	rc = w_put_rows(sq, w, id, cur, deleted, sealed, sealed_n);
out_sealed:
	salus_free(sealed);
	return rc;
}

static int w_put_rows(struct sq_store *sq, struct salus_write *w, const char *id, const struct cur *cur,
		      bool deleted, const unsigned char *sealed, size_t sealed_n)
{
	sqlite3_stmt *st = NULL;
	int64_t seq;
	int rc;

	if ((rc = conn_stmt(&sq->w, ST_W_HIST_INS, &st)))
		return rc;
	sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, w->version);
	sqlite3_bind_int64(st, 4, w->updated_ms);
	sqlite3_bind_int(st, 5, deleted);
	if (deleted)
		sqlite3_bind_null(st, 6);
	else
		bind_body(st, 6, w, sealed, sealed_n);
	if ((rc = step_done(st)))
		return rc;
	seq = sqlite3_last_insert_rowid(sq->w.db);

	if ((rc = conn_stmt(&sq->w, cur->exists ? ST_W_RES_UPD : ST_W_RES_INS, &st)))
		return rc;
	sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, w->version);
	sqlite3_bind_int64(st, 4, w->updated_ms);
	sqlite3_bind_int64(st, 5, seq);
	sqlite3_bind_int(st, 6, deleted); /* the body is in the history row only (schema 2) */
	if ((rc = step_done(st)))
		return rc;
	/* the search index, in the same transaction (history is not indexed) */
	if ((rc = salus_sx_put(sq->sx, w->type, id, w->updated_ms, deleted, cur->exists, w->index)))
		return rc;
	w->seq = seq;
	return SALUS_OK;
}

/* Replace the identifier-index rows of (type, id) with the resource's
 * top-level identifiers (none for a delete).  A new resource has no rows. */
static int w_index(struct sq_store *sq, struct salus_write *w, const char *id, const struct cur *cur, bool deleted)
{
	sqlite3_stmt *st = NULL;
	json_t *ids, *e;
	size_t i;
	int rc;

	if (cur->exists && !cur->deleted) {
		if ((rc = conn_stmt(&sq->w, ST_W_TOK_DEL, &st)))
			return rc;
		sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		if ((rc = step_done(st)))
			return rc;
	}
	if (deleted || !json_is_array(ids = json_object_get(w->resource, "identifier")))
		return SALUS_OK;
	json_array_foreach(ids, i, e) {
		json_t *sys = json_object_get(e, "system"), *val = json_object_get(e, "value");
		if (!json_is_string(val))
			continue;
		if ((rc = conn_stmt(&sq->w, ST_W_TOK_INS, &st)))
			return rc;
		sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, json_is_string(sys) ? json_string_value(sys) : "", -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, json_string_value(val), (int)json_string_length(val), SQLITE_STATIC);
		if ((rc = step_done(st)))
			return rc;
	}
	return SALUS_OK;
}

/* Conditional create (store.h, salus_write.none_match): does a current
 * resource of w->type match every criterion?  Run on the writer connection,
 * inside the group's transaction, so earlier writes of the same transaction
 * (and of the group) are seen.  Returns SALUS_EPRECONDITION on a match. */
static int w_none_match(struct sq_store *sq, const struct salus_write *w)
{
	struct salus_buf sql;
	sqlite3_stmt *st = NULL;
	const char *id = NULL;
	size_t nident = 0;
	int rc, arg = 2;

	for (size_t i = 0; i < w->n_none_match; i++) {
		const struct salus_write_cond *c = &w->none_match[i];
		if (c->id && id && strcmp(c->id, id))
			return SALUS_OK; /* two different ids: nothing matches */
		if (c->id)
			id = c->id;
		else if (c->value)
			nident++;
		else
			return SALUS_EINVALID;
	}
	if (!nident) {
		struct cur cur;
		if (!id || (rc = w_lookup(sq, w->type, id, &cur)))
			return id ? rc : SALUS_EINVALID;
		return cur.exists && !cur.deleted ? SALUS_EPRECONDITION : SALUS_OK;
	}
	/* token_index holds rows of current resources only (deletes remove them) */
	salus_buf_init(&sql, 1 << 14);
	rc = salus_buf_adds(&sql, "SELECT 1 FROM token_index t0 WHERE t0.type=?1");
	for (size_t i = 0, k = 0; i < w->n_none_match && !rc; i++) {
		const struct salus_write_cond *c = &w->none_match[i];
		if (!c->value)
			continue;
		if (k)
			rc = salus_buf_addf(&sql, " AND EXISTS(SELECT 1 FROM token_index t%zu WHERE t%zu.type=?1 AND t%zu.id=t0.id AND", k, k, k);
		else
			rc = salus_buf_adds(&sql, " AND");
		if (!rc)
			rc = salus_buf_addf(&sql, " t%zu.value=?%d", k, arg++);
		if (!rc && c->system)
			rc = salus_buf_addf(&sql, " AND t%zu.system=?%d", k, arg++);
		if (!rc && k)
			rc = salus_buf_addc(&sql, ')');
		k++;
	}
	if (!rc && id)
		rc = salus_buf_addf(&sql, " AND t0.id=?%d", arg++);
	if (!rc)
		rc = salus_buf_adds(&sql, " LIMIT 1");
	if (rc)
		goto out_sql;
	if (sqlite3_prepare_v2(sq->w.db, sql.p, (int)sql.n, &st, NULL) != SQLITE_OK) {
		rc = map_rc(sqlite3_errcode(sq->w.db));
		goto out_sql;
	}
	arg = 2;
	sqlite3_bind_text(st, 1, w->type, -1, SQLITE_STATIC);
	for (size_t i = 0; i < w->n_none_match; i++) {
		const struct salus_write_cond *c = &w->none_match[i];
		if (!c->value)
			continue;
		sqlite3_bind_text(st, arg++, c->value, -1, SQLITE_STATIC);
		if (c->system)
			sqlite3_bind_text(st, arg++, c->system, -1, SQLITE_STATIC);
	}
	if (id)
		sqlite3_bind_text(st, arg++, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_ROW ? SALUS_EPRECONDITION : rc == SQLITE_DONE ? SALUS_OK : map_rc(rc);
	sqlite3_finalize(st);
out_sql:
	salus_buf_release(&sql);
	return rc;
}

static int w_apply_op(struct sq_store *sq, struct salus_write *w)
{
	char uuid[SALUS_UUID_LEN];
	const char *id = w->id;
	struct cur cur;
	int rc;

	if (w->kind == SALUS_WRITE_CREATE && !id) {
		for (int tries = 0;; tries++) {
			if (tries == UUID_TRIES)
				return SALUS_EINTERNAL;
			salus_store_id_new(uuid);
			if ((rc = w_lookup(sq, w->type, uuid, &cur)))
				return rc;
			if (!cur.exists)
				break;
		}
		id = uuid;
	} else if ((rc = w_lookup(sq, w->type, id, &cur))) {
		return rc;
	}
	if (w->kind == SALUS_WRITE_REINDEX) {
		/* the current version's index rows, no new version (salus reindex) */
		if (!cur.exists || cur.deleted || (w->if_match && cur.version != w->if_match))
			return SALUS_OK;
		w->version = cur.version;
		w->updated_ms = cur.updated_ms;
		if ((rc = salus_sx_put(sq->sx, w->type, id, cur.updated_ms, false, true, w->index)) ||
		    (rc = w_index(sq, w, id, &cur, false)))
			return rc;
		copy_name(w->id_out, sizeof w->id_out, id);
		return SALUS_OK;
	}
	if (w->if_match && (!cur.exists || cur.version != w->if_match))
		return SALUS_EPRECONDITION;
	if (w->kind == SALUS_WRITE_CREATE && w->n_none_match && (rc = w_none_match(sq, w)))
		return rc; /* conditional create: a match appeared since the caller looked */

	switch (w->kind) {
	case SALUS_WRITE_CREATE:
		if (cur.exists)
			return SALUS_EEXISTS;
		/* fall through */
	case SALUS_WRITE_UPDATE:
		w->version = cur.exists ? cur.version + 1 : 1;
		w->created = !cur.exists || cur.deleted;
		w->updated_ms = w_next_ms(sq, &cur);
		if ((rc = salus_store_stamp_raw(w->resource, w->raw, w->raw_len, w->raw_compact, id, w->version, w->updated_ms,
						&w->json, &w->len)))
			return rc;
		if ((rc = w_put_version(sq, w, id, &cur, false)) || (rc = w_index(sq, w, id, &cur, false)))
			return rc;
		break;
	case SALUS_WRITE_DELETE:
		if (!cur.exists || cur.deleted) {
			/* nothing to delete: report the current state, write nothing */
			w->version = cur.version;
			w->updated_ms = cur.updated_ms;
			break;
		}
		w->version = cur.version + 1;
		w->updated_ms = w_next_ms(sq, &cur);
		if ((rc = w_put_version(sq, w, id, &cur, true)) || (rc = w_index(sq, w, id, &cur, true)))
			return rc;
		break;
	case SALUS_WRITE_REINDEX: break; /* handled above */
	}
	copy_name(w->id_out, sizeof w->id_out, id);
	return SALUS_OK;
}

static int w_apply_kv(struct sq_store *sq, struct job *j)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = conn_stmt(&sq->w, j->kind == JOB_KV_PUT ? ST_W_KV_PUT : ST_W_KV_DEL, &st)))
		return rc;
	sqlite3_bind_text(st, 1, j->ns, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, j->key, -1, SQLITE_STATIC);
	if (j->kind == JOB_KV_PUT)
		sqlite3_bind_blob(st, 3, j->val, (int)j->vn, SQLITE_STATIC);
	if ((rc = step_done(st)))
		return rc;
	if (j->kind == JOB_KV_DEL && sqlite3_changes(sq->w.db) == 0)
		return SALUS_ENOTFOUND;
	return SALUS_OK;
}

/* ---- the audit log: Merkle leaves and complete-subtree nodes ---- */

/* SHA-256 on the writer thread is nettle's (GnuTLS's own back end: SHA-NI / AVX2 code paths chosen at
 * run time; libsodium's portable SHA-256 was a fifth of the writer's time per audited event,
 * docs/performance.md), fed in pieces from where they are: no copy of the event to hash it. */
static int au_node_hash(const unsigned char *l, const unsigned char *r, unsigned char out[SALUS_AUDIT_HASH_LEN])
{
	struct sha256_ctx h;
	sha256_init(&h);
	sha256_update(&h, 1, (const uint8_t *)"\x01");
	sha256_update(&h, SALUS_AUDIT_HASH_LEN, l);
	sha256_update(&h, SALUS_AUDIT_HASH_LEN, r);
	sha256_digest(&h, SALUS_AUDIT_HASH_LEN, out);
	return SALUS_OK;
}

/* One stored hash (level 0: a leaf) on connection c.  Subtree hashes live in
 * the row of the leaf that completed them: node (level L >= 1, idx i) is
 * completed by leaf ((i + 1) << L) - 1, whose audit_subtree row holds the
 * hashes of levels 1..k it completed, 32 bytes each, level L at (L - 1) * 32
 * — so an append writes one row at the end of one b-tree.  Data written
 * before audit_subtree existed keeps its nodes in audit_node(level, idx). */
static int au_read_hash(struct conn *c, int level, int64_t idx, unsigned char out[SALUS_AUDIT_HASH_LEN])
{
	sqlite3_stmt *st = NULL;
	const unsigned char *blob;
	int rc;

	if (level < 0 || level >= AU_LEVELS - 1 || idx < 0 || idx > (INT64_MAX >> level) - 1)
		return SALUS_ENOTFOUND;
	if (level) { /* the completing leaf's row first, then the older layout */
		if ((rc = conn_stmt(c, ST_AU_SUBTREE, &st)))
			return rc;
		sqlite3_bind_int64(st, 1, ((idx + 1) << level) - 1);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			blob = sqlite3_column_blob(st, 0);
			if (!blob || sqlite3_column_bytes(st, 0) < level * SALUS_AUDIT_HASH_LEN ||
			    sqlite3_column_bytes(st, 0) % SALUS_AUDIT_HASH_LEN) {
				sqlite3_reset(st);
				return SALUS_EIO;
			}
			memcpy(out, blob + (size_t)(level - 1) * SALUS_AUDIT_HASH_LEN, SALUS_AUDIT_HASH_LEN);
			sqlite3_reset(st);
			return SALUS_OK;
		}
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return map_rc(rc);
	}
	if ((rc = conn_stmt(c, level ? ST_AU_NODE : ST_AU_LEAF, &st)))
		return rc;
	if (level) {
		sqlite3_bind_int(st, 1, level);
		sqlite3_bind_int64(st, 2, idx);
	} else {
		sqlite3_bind_int64(st, 1, idx);
	}
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = rc == SQLITE_DONE ? SALUS_ENOTFOUND : map_rc(sqlite3_reset(st));
		sqlite3_reset(st);
		return rc;
	}
	if (sqlite3_column_bytes(st, 0) != SALUS_AUDIT_HASH_LEN || !sqlite3_column_blob(st, 0)) {
		sqlite3_reset(st);
		return SALUS_EIO;
	}
	memcpy(out, sqlite3_column_blob(st, 0), SALUS_AUDIT_HASH_LEN);
	sqlite3_reset(st);
	return SALUS_OK;
}

static int au_size_on(struct conn *c, int64_t *size)
{
	sqlite3_stmt *st = NULL;
	int rc = conn_stmt(c, ST_AU_SIZE, &st);
	return rc ? rc : scalar(st, size);
}

/* Make sure the in-memory right edge matches the table (another process, or a
 * lost group, may have changed it): once per group, inside its transaction. */
static int au_sync(struct sq_store *sq)
{
	int64_t size;
	int rc;

	if (sq->au_loaded && sq->au_group == sq->group_no)
		return SALUS_OK;
	if ((rc = au_size_on(&sq->a, &size)))
		return rc;
	if (!sq->au_loaded || size != sq->au_size) {
		sq->au_loaded = false;
		for (int l = 0; l < AU_LEVELS - 1; l++)
			if ((size >> l) & 1) {
				rc = au_read_hash(&sq->a, l, (size >> l) - 1, sq->au_front[l]);
				if (rc)
					return rc == SALUS_ENOTFOUND ? SALUS_EIO : rc; /* a damaged tree */
			}
		sq->au_size = size;
		sq->au_loaded = true;
	}
	sq->au_group = sq->group_no;
	return SALUS_OK;
}

/* sq->au_val = the stored form of e's text at index n (audit_codec.h): the marker, pre, the
 * decimal index, post, the pieces encoded by the job's caller (au_epre/au_epost) or here. */
static int au_value(struct sq_store *sq, const struct salus_audit_entry *e, bool has_post, const char *digits,
		    size_t nd, const struct job *j)
{
	bool pre_done = j && j->au_epre;
	size_t need = 2 + nd, at;
	unsigned char *o;

	need += pre_done ? j->au_epre_n + j->au_epost_n
			 : SALUS_AUC_BOUND(e->pre_n) + (e->post ? SALUS_AUC_BOUND(e->post_n) : 0);
	if (need > sq->au_val_cap) {
		size_t cap = need < 4096 ? 4096 : need;
		if (!(o = salus_realloc(sq->au_val, cap)))
			return SALUS_ENOMEM;
		sq->au_val = o;
		sq->au_val_cap = cap;
	}
	o = sq->au_val;
	at = salus_auc_marker(o);
	if (pre_done) {
		memcpy(o + at, j->au_epre, j->au_epre_n);
		at += j->au_epre_n;
	} else {
		at += salus_auc_encode(e->pre, e->pre_n, o + at);
	}
	if (has_post) {
		memcpy(o + at, digits, nd);
		at += nd;
		if (pre_done) {
			memcpy(o + at, j->au_epost, j->au_epost_n);
			at += j->au_epost_n;
		} else {
			at += salus_auc_encode(e->post, e->post_n, o + at);
		}
	}
	sq->au_val_n = at;
	return SALUS_OK;
}

static int sha_piece(void *ctx, const void *p, size_t n)
{
	sha256_update(ctx, n, p);
	return SALUS_OK;
}

/* Append one entry at index au_size: its row, and every subtree it completes.  The leaf hash is
 * over the text; the row keeps the text's compact form (audit_codec.h), decoded on every read. */
static int au_append(struct sq_store *sq, struct salus_audit_entry *e, const struct job *j)
{
	unsigned char cur[SALUS_AUDIT_HASH_LEN];
	sqlite3_stmt *st = NULL;
	int64_t n = sq->au_size;
	char num[24], *d = num + sizeof num;
	size_t nd;
	int l, rc;

	{
		int64_t v = n;
		do
			*--d = (char)('0' + v % 10);
		while ((v /= 10));
		nd = (size_t)(num + sizeof num - d);
	}
	/* the leaf hash: SHA-256(0x00 || text) (RFC 6962 §2.1), the text = pre || index || post; an entry
	 * given compact (journaled reads) is hashed piece by piece as it decodes, never built */
	bool has_post = e->cpre ? e->cpost != NULL : e->post != NULL;
	struct sha256_ctx h;
	sha256_init(&h);
	sha256_update(&h, 1, (const uint8_t *)"");
	if (e->cpre) {
		if (!j || j->au_epre != e->cpre)
			return SALUS_EINVALID; /* only journaled jobs carry compact entries */
		if ((rc = salus_auc_visit(e->cpre, e->cpre_n, sha_piece, &h)))
			return rc;
		if (has_post) {
			sha256_update(&h, nd, (const uint8_t *)d);
			if ((rc = salus_auc_visit(e->cpost, e->cpost_n, sha_piece, &h)))
				return rc;
		}
	} else {
		sha256_update(&h, e->pre_n, (const uint8_t *)e->pre);
		if (has_post) {
			sha256_update(&h, nd, (const uint8_t *)d);
			sha256_update(&h, e->post_n, (const uint8_t *)e->post);
		}
	}
	sha256_digest(&h, SALUS_AUDIT_HASH_LEN, cur);
	if ((rc = au_value(sq, e, has_post, d, nd, j)))
		return rc;

	if ((rc = conn_stmt(&sq->a, ST_W_AU_INS, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, n);
	sqlite3_bind_int64(st, 2, e->ts_ms);
	sqlite3_bind_blob(st, 3, cur, sizeof cur, SQLITE_STATIC);
	sqlite3_bind_blob(st, 4, sq->au_val, (int)sq->au_val_n, SQLITE_STATIC);
	if ((rc = step_done(st)))
		return rc;
	memcpy(e->leaf_hash, cur, sizeof cur);
	e->index = n;
	/* the subtrees leaf n completes (levels 1..l), in one row keyed by n (see au_read_hash) */
	unsigned char nodes[(AU_LEVELS - 1) * SALUS_AUDIT_HASH_LEN];
	for (l = 0; l < AU_LEVELS - 1 && (n >> l) & 1; l++) {
		if ((rc = au_node_hash(sq->au_front[l], cur, cur)))
			return rc;
		memcpy(nodes + (size_t)l * SALUS_AUDIT_HASH_LEN, cur, sizeof cur);
	}
	if (l) {
		if ((rc = conn_stmt(&sq->a, ST_W_AU_SUBTREE_INS, &st)))
			return rc;
		sqlite3_bind_int64(st, 1, n);
		sqlite3_bind_blob(st, 2, nodes, l * SALUS_AUDIT_HASH_LEN, SQLITE_STATIC);
		if ((rc = step_done(st)))
			return rc;
	}
	memcpy(sq->au_front[l], cur, sizeof cur);
	sq->au_size = n + 1;
	return SALUS_OK;
}

static int w_apply_checkpoint(struct sq_store *sq, struct job *j)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = conn_stmt(&sq->a, ST_W_AU_CP_INS, &st)))
		return rc;
	sqlite3_bind_int64(st, 1, j->cp_size);
	sqlite3_bind_blob(st, 2, j->cp_root, SALUS_AUDIT_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, j->cp_ts);
	sqlite3_bind_text(st, 4, j->cp_note, -1, SQLITE_STATIC);
	return step_done(st);
}

static void au_entries_reset(struct salus_audit_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		e[i].index = -1;
		memset(e[i].leaf_hash, 0, sizeof e[i].leaf_hash);
	}
}

static int w_apply_job(struct sq_store *sq, struct job *j)
{
	size_t i, bad = 0;
	int rc = SALUS_OK;

	if (j->kind == JOB_CHECKPOINT)
		return w_apply_checkpoint(sq, j);
	if (j->kind == JOB_FN)
		return j->fn(j->fn_ctx, j->fn_audit ? sq->a.db : sq->w.db);
	if (j->kind != JOB_WRITE)
		return w_apply_kv(sq, j);
	for (i = 0; i < j->n; i++) {
		if ((rc = w_apply_op(sq, &j->ops[i]))) {
			bad = i;
			break;
		}
	}
	if (!rc && j->nau) {
		/* the caller's w_run_group saved the right edge; it restores it on failure */
		if (!(rc = au_sync(sq)))
			for (i = 0; i < j->nau && !rc; i++)
				rc = au_append(sq, &j->au[i], j->nau == 1 ? j : NULL);
		if (rc) {
			au_entries_reset(j->au, j->nau);
			for (i = 0; i < j->n; i++)
				salus_store_write_reset(&j->ops[i]);
			return rc;
		}
	}
	if (!rc)
		return SALUS_OK;
	for (i = 0; i < j->n; i++)
		salus_store_write_reset(&j->ops[i]);
	j->ops[bad].rc = rc;
	return rc;
}

/* Fail every op of every job in [from, to) with rc: their group is lost. */
static void w_fail_jobs(struct sq_store *sq, struct job *from, struct job *to, int rc)
{
	salus_sx_fts_rewind(sq->sx, 0); /* their full-text rows were never written */
	for (struct job *j = from; j != to; j = j->next) {
		j->rc = rc;
		if (j->kind == JOB_WRITE)
			au_entries_reset(j->au, j->nau);
		if (j->kind == JOB_WRITE)
			for (size_t i = 0; i < j->n; i++) {
				salus_store_write_reset(&j->ops[i]);
				j->ops[i].rc = rc;
			}
	}
}

/* An asynchronous audit append: no resource write that could fail on its own. */
static bool audit_only(const struct job *j)
{
	return j->kind == JOB_WRITE && j->n == 0 && j->nau > 0;
}

/* Apply the run of audit-only jobs that starts at j under ONE savepoint (a
 * savepoint per job copies every page it touches into the statement journal:
 * most of the writer's per-event cost).  Returns the first job after the run;
 * or j itself when the run could not be applied as a whole (rolled back: the
 * caller then applies its jobs one by one, so one bad entry fails only its
 * own request).  A transaction SQLite lost shows as autocommit on return. */
static struct job *w_run_audit(struct sq_store *sq, struct job *j, struct job *end)
{
	int64_t au_size = sq->au_size;
	struct job *k;
	int rc = SALUS_OK;

	if (!j->next || j->next == end || !audit_only(j->next))
		return j; /* a run of one: the per-job path is the same work */
	if (c_exec(&sq->a, ST_W_SAVE))
		return j;
	for (k = j; k != end && audit_only(k) && !rc; k = k->next)
		rc = k->rc = w_apply_job(sq, k);
	if (!rc && !c_exec(&sq->a, ST_W_RELEASE))
		return k;
	if (sq->au_size != au_size)
		sq->au_loaded = false; /* reloaded from the table by the next au_sync */
	if (!sqlite3_get_autocommit(sq->a.db) && !c_exec(&sq->a, ST_W_ROLLBACK_TO))
		c_exec(&sq->a, ST_W_RELEASE);
	for (k = j; k != end && audit_only(k); k = k->next) {
		k->rc = SALUS_OK;
		au_entries_reset(k->au, k->nau);
	}
	return j;
}

/* The journaled records of [first, end) go into the log all together, with the kv row that
 * says up to which record (the next open moves only what is past it).  A failed one fails the
 * group: its record is still in the journal file, and moving from the file again puts
 * everything in the log once, in order. */
static int w_journal_mark(struct sq_store *sq, struct job *first, struct job *end)
{
	sqlite3_stmt *st = NULL;
	uint64_t top = 0;
	char v[24];
	int rc;

	for (struct job *j = first; j != end; j = j->next) {
		if (!j->journaled)
			continue;
		if (j->rc)
			return j->rc;
		if (sq->jbroken_w)
			return SALUS_EIO; /* an earlier record is not in the log: none after it may be */
		top = j->jseq > top ? j->jseq : top;
	}
	if (!top)
		return SALUS_OK;
	if ((rc = conn_stmt(&sq->a, ST_W_AU_META_PUT, &st)))
		return rc;
	int n = snprintf(v, sizeof v, "%llu", (unsigned long long)top);
	sqlite3_bind_text(st, 1, JOURNAL_KEY, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, v, n, SQLITE_TRANSIENT);
	return step_done(st);
}

/* Which of the writer's connections a job writes through: the resource database (w), the
 * audit database (a), or both (a write with its audit entries). */
static bool job_on_w(const struct job *j)
{
	return j->kind == JOB_KV_PUT || j->kind == JOB_KV_DEL || (j->kind == JOB_FN && !j->fn_audit) ||
	       (j->kind == JOB_WRITE && j->n > 0);
}

static bool job_on_a(const struct job *j)
{
	return j->kind == JOB_CHECKPOINT || (j->kind == JOB_FN && j->fn_audit) ||
	       (j->kind == JOB_WRITE && j->nau > 0);
}

/* SQLite rolled a whole transaction back by itself (I/O error, disk full, out of memory). */
static bool txn_lost(const struct sq_store *sq, bool on_w, bool on_a)
{
	return (on_w && sqlite3_get_autocommit(sq->w.db)) || (on_a && sqlite3_get_autocommit(sq->a.db));
}

static void txn_rollback(struct sq_store *sq)
{
	if (!sqlite3_get_autocommit(sq->w.db))
		w_exec(sq, ST_W_ROLLBACK);
	if (!sqlite3_get_autocommit(sq->a.db))
		c_exec(&sq->a, ST_W_ROLLBACK);
}

/* Apply every job of [first, end) in the open transactions WITHOUT a savepoint per job: a
 * savepoint copies each page its job first touches into a statement journal (~10 pages, ~35 k
 * instructions per single create, plus SAVEPOINT/RELEASE on both connections), and jobs almost
 * never fail.  True when every job succeeded: the transactions stay open for the commit.  False
 * when one failed: everything is rolled back and every job's results cleared, so the caller can
 * run the group again with a savepoint per job (then only the failing job fails; the outcome is
 * the same as if that had been done first, since the group's jobs run again in the same order on
 * the same database). */
static bool w_apply_fast(struct sq_store *sq, struct job *first, struct job *end)
{
	struct job *j;

	for (j = first; j != end; j = j->next)
		if ((j->rc = w_apply_job(sq, j)))
			break;
	if (j == end)
		return true;
	txn_rollback(sq);
	sq->au_loaded = false; /* the appends are gone: reloaded by the next au_sync */
	salus_sx_fts_rewind(sq->sx, 0);
	for (j = first; j != end; j = j->next) {
		j->rc = SALUS_OK;
		if (j->kind != JOB_WRITE)
			continue;
		au_entries_reset(j->au, j->nau);
		for (size_t i = 0; i < j->n; i++)
			salus_store_write_reset(&j->ops[i]);
	}
	return false;
}

int (*salus_sq_sync_hook)(void *ctx, bool audit);
void *salus_sq_sync_hook_ctx;

/* Make a writer's WAL durable: everything written to it before this call (fdatasync covers
 * the file's dirty pages whichever descriptor wrote them).  Any failure is final: after a
 * failed fsync Linux may have dropped the dirty pages, so a later sync that succeeds proves
 * nothing about them — the caller fails closed (sync_failed). */
static int wal_sync(int fd, bool audit)
{
	if (salus_sq_sync_hook && salus_sq_sync_hook(salus_sq_sync_hook_ctx, audit))
		return SALUS_EIO;
	return fdatasync(fd) ? SALUS_EIO : SALUS_OK;
}

/* A sync failed: log it once and fail every later group (under qmu). */
static void sync_failed_set(struct sq_store *sq, bool audit)
{
	if (!sq->sync_failed)
		salus_log(SALUS_LOG_ERROR, "store.sync", "file=%s: writes are refused until a restart",
			  audit ? "audit-wal" : "wal");
	sq->sync_failed = true;
}

/* Apply one group [first, end): one transaction on each database it writes, the audit
 * database's committed — and durable — first.  A crash between the two commits leaves audit
 * events of writes that are not there (their callers had no answer), never a write without its
 * event; should the resource commit fail after the audit one, the events stay and the jobs
 * fail.  Returns true when the group committed on `w`: with `synced`, that commit is not
 * durable yet (the syncer makes it so before anyone is told). */
static bool w_run_group(struct sq_store *sq, struct job *first, struct job *end)
{
	bool on_w = false, on_a = false, fast = !sq->fast_off;
	struct job *j;
	int rc;

	sq->group_no++;
	for (j = first; j != end; j = j->next) {
		on_w |= job_on_w(j);
		on_a |= job_on_a(j);
		fast &= j->kind != JOB_FN; /* arbitrary code: not run twice */
	}
	if (sq->fast_off)
		sq->fast_off--;
again:
	if ((on_a && (rc = c_exec(&sq->a, ST_W_BEGIN))) || (on_w && (rc = w_exec(sq, ST_W_BEGIN)))) {
		txn_rollback(sq);
		w_fail_jobs(sq, first, end, rc);
		return false;
	}
	if (fast) {
		if (w_apply_fast(sq, first, end))
			goto out_commit;
		/* a job failed: everything is rolled back; again, each job under its savepoint */
		fast = false;
		sq->fast_off = FAST_OFF_GROUPS;
		sq->group_no++;
		goto again;
	}
	for (j = first; j != end; j = j->next) {
		if (audit_only(j)) {
			struct job *after = w_run_audit(sq, j, end);
			if (txn_lost(sq, on_w, on_a)) {
				/* SQLite rolled a whole transaction back: the group is lost */
				txn_rollback(sq);
				sq->au_loaded = false;
				w_fail_jobs(sq, first, end, SALUS_EIO);
				return false;
			}
			if (after != j) {
				/* the run is applied: continue with the job after it */
				struct job *prev = j;
				while (prev->next != after)
					prev = prev->next;
				j = prev;
				continue;
			}
		}
		int64_t au_size = sq->au_size;
		bool jw = job_on_w(j), ja = job_on_a(j);
		/* a job of another file (JOB_FN) may write full-text rows itself:
		 * the ones held back so far go first, outside its savepoint */
		if (j->kind == JOB_FN && !j->fn_audit && (rc = salus_sx_fts_flush(sq->sx)))
			goto out_rollback;
		size_t fts_mark = salus_sx_fts_mark(sq->sx);
		if ((jw && (rc = w_exec(sq, ST_W_SAVE))) || (ja && (rc = c_exec(&sq->a, ST_W_SAVE))))
			goto out_rollback;
		j->rc = w_apply_job(sq, j);
		if (j->rc)
			salus_sx_fts_rewind(sq->sx, fts_mark); /* rolled back with the job */
		/* the job's rows are rolled back: so must be the tree's right edge
		 * (reloaded from the table by the next au_sync) */
		if (j->rc && sq->au_size != au_size)
			sq->au_loaded = false;
		if (j->rc && txn_lost(sq, on_w, on_a)) {
			/* SQLite rolled a whole transaction back (I/O error, disk
			 * full, out of memory): the group is lost */
			rc = j->rc == SALUS_ENOMEM || j->rc == SALUS_EBUSY ? j->rc : SALUS_EIO;
			txn_rollback(sq);
			sq->au_loaded = false;
			w_fail_jobs(sq, first, end, rc);
			return false;
		}
		if (j->rc && ((jw && (rc = w_exec(sq, ST_W_ROLLBACK_TO))) ||
			      (ja && (rc = c_exec(&sq->a, ST_W_ROLLBACK_TO)))))
			goto out_rollback;
		if ((jw && (rc = w_exec(sq, ST_W_RELEASE))) || (ja && (rc = c_exec(&sq->a, ST_W_RELEASE))))
			goto out_rollback;
	}
out_commit:
	if (on_a && (rc = w_journal_mark(sq, first, end)))
		goto out_rollback;
	/* the group's full-text rows, in one go (see salus_sx_fts_flush) */
	if (on_w && (rc = salus_sx_fts_flush(sq->sx)))
		goto out_rollback;
	/* patient keys created by this group: durable before the bodies sealed under them */
	if (sq->pk && (rc = salus_pk_flush(sq->pk)))
		goto out_rollback;
	if (on_a && (rc = c_exec(&sq->a, ST_W_COMMIT)))
		goto out_rollback;
	/* the events durable before a byte of the writes they record reaches the resource WAL
	 * (with synchronous=FULL the COMMIT above synced them itself) */
	if (on_a && sq->synced && (rc = wal_sync(sq->afd, true))) {
		pthread_mutex_lock(&sq->qmu);
		sync_failed_set(sq, true);
		pthread_mutex_unlock(&sq->qmu);
		goto out_rollback;
	}
	if (!on_w || (rc = w_exec(sq, ST_W_COMMIT)) == SALUS_OK)
		return on_w;
	if (on_a) /* the audit database has the group's events: the writes they record are lost */
		salus_log(SALUS_LOG_ERROR, "store.commit", "err=%s audit_committed=1", salus_err_name(rc));
out_rollback:
	txn_rollback(sq);
	sq->au_loaded = false; /* the group's appends are gone (or in the log: reloaded) */
	w_fail_jobs(sq, first, end, rc);
	return false;
}

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Gather: wait (under qmu) until `target` jobs are queued or `ns` pass. */
static void w_gather(struct sq_store *sq, size_t target, int64_t ns)
{
	int64_t until = mono_ns() + ns;
	struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};

	sq->wake_at = target;
	while (sq->queued < target && !sq->stopping)
		if (pthread_cond_timedwait(&sq->qcv, &sq->qmu, &ts) == ETIMEDOUT)
			break;
	sq->wake_at = SIZE_MAX;
}

/* Queue j (under qmu) and wake the writer if it waits for it. */
static void queue_job(struct sq_store *sq, struct job *j)
{
	if (sq->tail)
		sq->tail->next = j;
	else
		sq->head = j;
	sq->tail = j;
	if (++sq->queued >= sq->wake_at)
		pthread_cond_signal(&sq->qcv);
}

/* One audit entry whose text is copied into the job's own allocation, followed by the compact
 * forms of pre and post (encoded here, in the caller's thread, not by the single writer). */
struct heap_job {
	struct job j; /* first: the writer frees the job pointer */
	struct salus_audit_entry e;
	char text[];
};

/* The compact forms are encoded into this thread's scratch first (their bound is ~2x the text, the
 * forms ~1/3 of it), so a job takes only the bytes it keeps: a third of the memory per pending job. */
static _Thread_local unsigned char *enc_scratch;
static _Thread_local size_t enc_scratch_cap;
#define ENC_SCRATCH_KEEP (64u << 10) /* a bigger scratch (a rare huge event) is freed after use */

/* A heap job's journal fields: one entry (a->e), its compact forms at enc (pn + qn bytes). */
static void heap_job_journaled(struct heap_job *a, unsigned char *enc, size_t pn, size_t qn)
{
	a->j.au_epre = enc;
	a->j.au_epre_n = pn;
	a->j.au_epost = enc + pn;
	a->j.au_epost_n = qn;
	a->j.kind = JOB_WRITE;
	a->j.au = &a->e;
	a->j.nau = 1;
	a->j.journaled = true;
}

/* A job of an entry given compact (e->cpre): only the compact bytes are kept; the writer decodes
 * them to hash the text (au_append).  Small ones come from the pool (under jmu). */
static struct heap_job *heap_job_new_compact(struct sq_store *sq, const struct salus_audit_entry *e)
{
	size_t pn = e->cpre_n, qn = e->cpost ? e->cpost_n : 0;
	bool pooled = pn + qn <= JOURNAL_POOL_BYTES;
	struct heap_job *a;
	unsigned char *enc;

	if (pooled && sq->jpool) {
		a = (struct heap_job *)sq->jpool; /* j is its first member */
		sq->jpool = sq->jpool->next;
		sq->jnpool--;
	} else if (!(a = salus_malloc(sizeof *a + (pooled ? JOURNAL_POOL_BYTES : pn + qn) + 1))) {
		return NULL;
	}
	memset(a, 0, sizeof *a);
	a->j.pooled = pooled;
	enc = (unsigned char *)a->text;
	memcpy(enc, e->cpre, pn);
	if (qn)
		memcpy(enc + pn, e->cpost, qn);
	a->e = *e;
	a->e.cpre = enc;
	a->e.cpost = e->cpost ? enc + pn : NULL;
	heap_job_journaled(a, enc, pn, qn);
	return a;
}

static struct heap_job *heap_job_new(const struct salus_audit_entry *e)
{
	size_t tn = e->pre_n + (e->post ? e->post_n : 0), bound = SALUS_AUC_BOUND(tn), pn, qn;
	struct heap_job *a = NULL;
	unsigned char *enc;

	if (bound > enc_scratch_cap) {
		unsigned char *p = salus_realloc(enc_scratch, bound);
		if (!p)
			return NULL;
		enc_scratch = p;
		enc_scratch_cap = bound;
	}
	pn = salus_auc_encode(e->pre, e->pre_n, enc_scratch);
	qn = e->post ? salus_auc_encode(e->post, e->post_n, enc_scratch + pn) : 0;
	if ((a = salus_malloc(sizeof *a + tn + 1 + pn + qn))) {
		memset(a, 0, sizeof *a);
		if (e->pre_n)
			memcpy(a->text, e->pre, e->pre_n);
		if (e->post_n)
			memcpy(a->text + e->pre_n, e->post, e->post_n);
		a->e = *e;
		a->e.pre = a->text;
		a->e.post = e->post ? a->text + e->pre_n : NULL;
		enc = (unsigned char *)a->text + tn + 1;
		memcpy(enc, enc_scratch, pn + qn);
		heap_job_journaled(a, enc, pn, qn);
	}
	if (enc_scratch_cap > ENC_SCRATCH_KEEP) {
		salus_free(enc_scratch);
		enc_scratch = NULL;
		enc_scratch_cap = 0;
	}
	return a;
}

/* On the writer, after a group with journaled records: they are in the log up to top, or the
 * group failed.  Once everything appended is in the log and the file is big, it is emptied. */
static void aj_moved(struct sq_store *sq, uint64_t top, bool failed, struct job *back)
{
	struct job *drop = NULL;
	pthread_mutex_lock(&sq->jmu);
	while (back) { /* pooled jobs back to the pool, the excess freed below (outside the lock) */
		struct job *next = back->next;
		if (sq->jnpool < JOURNAL_POOL_MAX) {
			back->next = sq->jpool;
			sq->jpool = back;
			sq->jnpool++;
		} else {
			back->next = drop;
			drop = back;
		}
		back = next;
	}
	if (failed && !sq->jbroken) {
		salus_log(SALUS_LOG_ERROR, "audit.journal",
			  "journaled events could not be moved into the log: audited requests are refused until a restart");
		sq->jbroken = sq->jbroken_w = true;
	}
	if (!failed && top > sq->jdone)
		sq->jdone = top;
	pthread_cond_broadcast(&sq->jdone_cv);
	if (!sq->jbroken && sq->jdone == sq->jseq && salus_ajournal_size(sq->aj) >= JOURNAL_RESET_BYTES &&
	    salus_ajournal_reset(sq->aj))
		salus_log(SALUS_LOG_WARN, "audit.journal", "could not empty the journal file");
	pthread_mutex_unlock(&sq->jmu);
	for (struct job *next; drop; drop = next) {
		next = drop->next;
		salus_free(drop);
	}
}

/* ---- the journal at open: what a crash left in it goes into the log ---- */

struct aj_recovery {
	struct sq_store *sq;
	struct job *head, *tail;
	size_t n;
	struct salus_buf in, pre, post;
	uint64_t top;
};

static int aj_recovery_apply(struct aj_recovery *a)
{
	int rc = SALUS_OK;
	if (!a->head)
		return SALUS_OK;
	w_run_group(a->sq, a->head, NULL);
	for (struct job *j = a->head, *next; j; j = next) {
		next = j->next;
		if (j->rc && !rc)
			rc = j->rc;
		salus_free(j);
	}
	a->head = a->tail = NULL;
	a->n = 0;
	return rc;
}

static int aj_decode(struct salus_buf *in, struct salus_buf *out, const unsigned char *v, size_t n)
{
	unsigned char m[2];
	int rc;
	salus_buf_reset(in);
	if ((rc = salus_buf_add(in, m, salus_auc_marker(m))) || (rc = salus_buf_add(in, v, n)))
		return rc;
	return salus_auc_decode(in->p, in->n, out);
}

static int aj_recover_one(void *ctx, const struct salus_aj_rec *r)
{
	struct aj_recovery *a = ctx;
	struct salus_audit_entry e = {.ts_ms = r->ts_ms};
	struct heap_job *h;
	int rc;

	if ((rc = aj_decode(&a->in, &a->pre, r->pre, r->pre_n)) ||
	    (r->post && (rc = aj_decode(&a->in, &a->post, r->post, r->post_n))))
		return rc == SALUS_ENOMEM ? rc : SALUS_EINTEGRITY;
	e.pre = a->pre.p;
	e.pre_n = a->pre.n;
	if (r->post) {
		e.post = a->post.p;
		e.post_n = a->post.n;
	}
	if (!(h = heap_job_new(&e)))
		return SALUS_ENOMEM;
	h->j.jseq = r->seq;
	if (a->tail)
		a->tail->next = &h->j;
	else
		a->head = &h->j;
	a->tail = &h->j;
	a->top = r->seq;
	if (++a->n >= (size_t)a->sq->batch_max)
		return aj_recovery_apply(a);
	return SALUS_OK;
}

/* audit_meta JOURNAL_KEY (the last journal record in the log; 0: none) as db sees it now
 * (the audit connection, or a reader with the audit database attached). */
static int jdone_read(void *ctx, sqlite3 *db)
{
	uint64_t *done = ctx;
	sqlite3_stmt *st = NULL;
	int rc = map_rc(sqlite3_prepare_v2(db, "SELECT val FROM audit_meta WHERE key='" JOURNAL_KEY "'", -1, &st, NULL));
	if (rc)
		return rc;
	*done = sqlite3_step(st) == SQLITE_ROW ? strtoull((const char *)sqlite3_column_text(st, 0), NULL, 10) : 0;
	return map_rc(sqlite3_finalize(st));
}

/* Open the journal next to the database (unless another process owns it) and move what it
 * holds past the kv row into the log, then empty it.  On the writer connection, before the
 * writer thread starts.  Errors: SALUS_EINTEGRITY (a damaged journal: the store does not open,
 * docs/audit.md says what to do), SALUS_EIO, SALUS_ENOMEM. */
static int aj_open(struct sq_store *sq, const struct salus_store_opts *o)
{
	struct aj_recovery a = {.sq = sq};
	char *path;
	uint64_t done = 0, last = 0;
	int rc;

	sq->jflush_ns = (int64_t)(o->audit_flush_ms > 0 ? o->audit_flush_ms : JOURNAL_FLUSH_MS) * 1000000;
	sq->jwake = SIZE_MAX;
	size_t pn = strlen(sq->path);
	if (!(path = salus_malloc(pn + sizeof "-auditj")))
		return SALUS_ENOMEM;
	memcpy(path, sq->path, pn);
	memcpy(path + pn, "-auditj", sizeof "-auditj");
	if (o->audit_journal_key) {
		struct salus_page_key *jk = sodium_malloc(sizeof *jk);
		if (!jk) {
			salus_free(path);
			return SALUS_ENOMEM;
		}
		jk->id = SALUS_AJ_OWN_KEY;
		memcpy(jk->key, o->audit_journal_key, sizeof jk->key);
		rc = salus_ajournal_open(path, jk, 1, jk->id, &sq->aj);
		sodium_free(jk);
	} else {
		rc = salus_ajournal_open(path, o->page_keys, o->page_keys ? o->npage_keys : 0,
					 o->page_keys ? o->page_key_id : 0, &sq->aj);
	}
	sq->jpath = path;
	if (rc == SALUS_EBUSY) {
		sq->aj = NULL; /* a running server owns it: this process appends directly */
		if (o->audit_journal)
			salus_log(SALUS_LOG_WARN, "audit.journal", "another process holds the audit journal: every "
				  "audited request waits for its own commit");
		return SALUS_OK;
	}
	if (rc)
		return rc;
	if ((rc = jdone_read(&done, sq->a.db)))
		return rc;
	salus_buf_init(&a.in, 2 * (size_t)SALUS_MAX_AUDIT_EVENT + 2);
	salus_buf_init(&a.pre, SALUS_MAX_AUDIT_EVENT);
	salus_buf_init(&a.post, SALUS_MAX_AUDIT_EVENT);
	rc = salus_ajournal_replay(sq->aj, done, aj_recover_one, &a, &last);
	if (!rc)
		rc = aj_recovery_apply(&a);
	for (struct job *j = a.head, *next; j; j = next) {
		next = j->next;
		salus_free(j);
	}
	salus_buf_release(&a.in);
	salus_buf_release(&a.pre);
	salus_buf_release(&a.post);
	if (rc) {
		salus_log(SALUS_LOG_ERROR, "audit.journal", "recovery failed: err=%s", salus_err_name(rc));
		return rc;
	}
	if (a.top)
		salus_log(SALUS_LOG_INFO, "audit.journal", "moved %llu journaled events into the log",
			  (unsigned long long)(a.top - done));
	sq->jseq = sq->jdone = done > last ? done : last;
	if ((rc = salus_ajournal_reset(sq->aj)))
		return rc;
	if (!o->audit_journal) { /* recovered: another process (the server) may own it now */
		salus_ajournal_free(sq->aj);
		sq->aj = NULL;
	}
	return SALUS_OK;
}

/* Wait (under qmu) for work: a queued job, journaled records that have waited jflush_ns (or
 * JOURNAL_WAKE of them), or stopping.  Then the journaled records go first in the queue. */
static void w_wait(struct sq_store *sq)
{
	sq->wake_at = 1;
	for (;;) {
		if (sq->head || sq->stopping)
			break;
		if (!sq->jhead) {
			sq->jwake = 1; /* the first one sets the timer */
			pthread_cond_wait(&sq->qcv, &sq->qmu);
			continue;
		}
		int64_t until = sq->jfirst_ns + sq->jflush_ns;
		if (sq->jqueued >= JOURNAL_WAKE || mono_ns() >= until)
			break;
		struct timespec ts = {.tv_sec = until / 1000000000, .tv_nsec = until % 1000000000};
		sq->jwake = JOURNAL_WAKE;
		pthread_cond_timedwait(&sq->qcv, &sq->qmu, &ts);
	}
	sq->wake_at = SIZE_MAX;
	sq->jwake = SIZE_MAX;
	if (sq->jhead) {
		sq->jtail->next = sq->head;
		sq->head = sq->jhead;
		if (!sq->tail)
			sq->tail = sq->jtail;
		sq->queued += sq->jqueued;
		sq->jhead = sq->jtail = NULL;
		sq->jqueued = 0;
		pthread_cond_broadcast(&sq->jcv);
	}
}

static void aj_moved(struct sq_store *sq, uint64_t top, bool failed, struct job *back);

static void *writer_main(void *arg)
{
	struct sq_store *sq = arg;
	size_t target = 0;   /* jobs worth waiting for before the next group */
	int64_t gather = 0;  /* how long they are worth waiting for (ns) */

	pthread_mutex_lock(&sq->qmu);
	for (;;) {
		struct job *first, *end, *j;
		size_t ops = 0, jobs = 0, waited = 0;
		int64_t t0;

		w_wait(sq);
		if (!sq->head)
			break; /* stopping and drained */
		/* The callers woken by the last commit usually come straight back
		 * with their next write: wait a little for them, so the group is
		 * everyone rather than every other half (PostgreSQL's commit_delay
		 * idea, bounded by half a commit).  A lone client meets the target
		 * by itself and never waits.  Journaled records have no caller
		 * waiting: a group of only those never waits. */
		if (!sq->head->journaled && target > sq->queued)
			w_gather(sq, target, gather);
		/* take up to batch_max ops (at least one job); journaled records count apart, up to
		 * JOURNAL_GROUP_MAX: one commit for all of a flush interval's reads */
		size_t jops = 0;
		first = end = sq->head;
		while (end) {
			if (end->journaled) {
				if (end != first && jops >= JOURNAL_GROUP_MAX)
					break;
				jops++;
			} else {
				size_t k = end->kind == JOB_WRITE ? end->n + end->nau : 1;
				if (end != first && ops + k > (size_t)sq->batch_max)
					break;
				ops += k;
				waited++;
			}
			jobs++;
			end = end->next;
		}
		sq->head = end;
		sq->queued -= jobs;
		if (!end)
			sq->tail = NULL;
		bool closed = sq->sync_failed;
		pthread_mutex_unlock(&sq->qmu);

		t0 = mono_ns();
		bool wrote = false;
		if (closed)
			w_fail_jobs(sq, first, end, SALUS_EIO); /* a sync failed: nothing more is committed */
		else
			wrote = w_run_group(sq, first, end);
		gather = mono_ns() - t0;

		/* journaled jobs: no one waits; the log has them (or the group failed) */
		uint64_t top = 0;
		bool failed = false;
		struct job **pp = &first, *back = NULL;
		for (j = first; j != end;) {
			struct job *next = j->next;
			if (j->journaled) {
				top = j->jseq > top ? j->jseq : top;
				failed |= j->rc != 0;
				*pp = next;
				if (j->pooled) {
					j->next = back;
					back = j;
				} else {
					salus_free(j);
				}
			} else {
				pp = &j->next;
			}
			j = next;
		}
		if (top || failed || back)
			aj_moved(sq, top, failed, back);

		pthread_mutex_lock(&sq->qmu);
		if (sq->sy_started) {
			/* the group's callers, in commit order, to the syncer: it wakes them once the
			 * resource WAL is durable (and never before an earlier group's) */
			struct job *last = NULL;
			for (j = first; j != end; j = j->next)
				last = j;
			if (last) {
				last->next = NULL;
				if (sq->sy_tail)
					sq->sy_tail->next = first;
				else
					sq->sy_head = first;
				sq->sy_tail = last;
			}
			sq->sy_dirty |= wrote;
			if (last || wrote)
				pthread_cond_signal(&sq->sycv);
		} else {
			for (j = first; j != end;) {
				struct job *next = j->next; /* j may vanish once done is seen */
				j->done = true;
				pthread_cond_signal(&j->cv);
				j = next;
			}
		}
		target = sq->queued + waited;
		/* its callers are woken only after the syncer's fsync: wait for them as long as
		 * before (half the group, at most MAX_GATHER_NS), counted from then — so groups stay
		 * as large as when the writer synced them itself.  A writer that finds the target
		 * already queued (saturated) does not wait at all: then the fsync of one group
		 * overlaps the building of the next */
		gather = gather / 2 > MAX_GATHER_NS ? MAX_GATHER_NS : gather / 2;
		gather += sq->sy_last_ns;
	}
	pthread_mutex_unlock(&sq->qmu);
	return NULL;
}

/* A group's jobs failed after their commit: the sync that was to make it durable did not. */
static void sy_fail_jobs(struct job *j, int rc)
{
	for (; j; j = j->next) {
		j->rc = rc;
		if (j->kind != JOB_WRITE)
			continue;
		au_entries_reset(j->au, j->nau);
		for (size_t i = 0; i < j->n; i++) {
			salus_store_write_reset(&j->ops[i]);
			j->ops[i].rc = rc;
		}
	}
}

/* The syncer thread: takes every group committed since its last pass, makes the resource WAL
 * durable with one fdatasync (when one of them wrote to it), then wakes their callers. */
static void *syncer_main(void *arg)
{
	struct sq_store *sq = arg;

	pthread_mutex_lock(&sq->qmu);
	for (;;) {
		while (!sq->sy_head && !sq->sy_dirty && !sq->sy_stopping)
			pthread_cond_wait(&sq->sycv, &sq->qmu);
		if (!sq->sy_head && !sq->sy_dirty)
			break; /* stopping, and everything handed over is done */
		struct job *j = sq->sy_head;
		bool dirty = sq->sy_dirty, closed = sq->sync_failed;
		sq->sy_head = sq->sy_tail = NULL;
		sq->sy_dirty = false;
		pthread_mutex_unlock(&sq->qmu);

		int64_t t0 = mono_ns();
		int rc = closed ? SALUS_EIO : dirty ? wal_sync(sq->wfd, false) : SALUS_OK;
		int64_t took = mono_ns() - t0;
		if (rc)
			sy_fail_jobs(j, rc);

		pthread_mutex_lock(&sq->qmu);
		if (dirty)
			sq->sy_last_ns = took;
		if (rc && !closed)
			sync_failed_set(sq, false);
		while (j) {
			struct job *next = j->next; /* j may vanish once done is seen */
			j->done = true;
			pthread_cond_signal(&j->cv);
			j = next;
		}
	}
	pthread_mutex_unlock(&sq->qmu);
	return NULL;
}

/* Queue a job and wait until the writer has committed (or failed) it. */
static int submit(struct sq_store *sq, struct job *j)
{
	int rc;

	j->done = false;
	j->next = NULL;
	if ((rc = pthread_cond_init(&j->cv, NULL)))
		return rc == ENOMEM ? SALUS_ENOMEM : SALUS_EINTERNAL;
	pthread_mutex_lock(&sq->qmu);
	if (sq->stopping) {
		pthread_mutex_unlock(&sq->qmu);
		pthread_cond_destroy(&j->cv);
		return SALUS_EINTERNAL; /* use after salus_store_free started */
	}
	queue_job(sq, j);
	while (!j->done)
		pthread_cond_wait(&j->cv, &sq->qmu);
	pthread_mutex_unlock(&sq->qmu);
	pthread_cond_destroy(&j->cv);
	return j->rc;
}

static int sq_write(struct salus_store *s, struct salus_write *ops, size_t n)
{
	struct job j = {.kind = JOB_WRITE, .ops = ops, .n = n};
	int rc = submit(sq_of(s), &j);
	size_t i;

	for (i = 0; !rc && i < n; i++)
		ops[i].rc = SALUS_OK;
	return rc;
}

static int sq_kv_put(struct salus_store *s, const char *ns, const char *key, const void *val, size_t n)
{
	struct job j = {.kind = JOB_KV_PUT, .ns = ns, .key = key, .val = val, .vn = n};
	return submit(sq_of(s), &j);
}

static int sq_kv_del(struct salus_store *s, const char *ns, const char *key)
{
	struct job j = {.kind = JOB_KV_DEL, .ns = ns, .key = key};
	return submit(sq_of(s), &j);
}

/* ---- jobs of other store files (store_sqlite_int.h) ---- */

int salus_sq_map_rc(int rc)
{
	return map_rc(rc);
}

int salus_sq_writer_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx)
{
	struct job j = {.kind = JOB_FN, .fn = fn, .fn_ctx = ctx};
	return submit(sq_of(s), &j);
}

int salus_sq_audit_writer_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx)
{
	struct job j = {.kind = JOB_FN, .fn = fn, .fn_ctx = ctx, .fn_audit = true};
	return submit(sq_of(s), &j);
}

int salus_store_audit_path(const char *db_path, char *out, size_t cap)
{
	size_t n = db_path ? strlen(db_path) : 0;
	if (!n)
		return SALUS_EINVALID;
	if (n > 3 && !strcmp(db_path + n - 3, ".db"))
		n -= 3;
	if (n + sizeof "-audit.db" > cap)
		return SALUS_EINVALID;
	memcpy(out, db_path, n);
	memcpy(out + n, "-audit.db", sizeof "-audit.db");
	return SALUS_OK;
}

struct salus_pk *salus_sq_pk(struct salus_store *s)
{
	return sq_of(s)->pk;
}

int salus_sq_reader_call(struct salus_store *s, int (*fn)(void *ctx, sqlite3 *db), void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	int rc = reader_get(sq, &c);
	if (rc)
		return rc;
	rc = fn(ctx, c->db);
	reader_put(sq, c);
	return rc;
}

/* ---- crypto-shredding (docs/security.md): erase a patient ---- */

struct purge {
	struct sq_store *sq;
	const char *pid;
	int64_t now;
	long n; /* resources whose rows were removed */
};

static int purge_stmt(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
	return map_rc(sqlite3_prepare_v2(db, sql, -1, st, NULL));
}

/* Remove every row of every resource sealed under pid's key (and the Patient
 * itself): current and history versions, search and identifier index rows;
 * record each as erased.  Freed pages are zeroed (secure_delete).  Runs as a
 * writer job, inside the group's transaction. */
static int w_purge(void *arg, sqlite3 *db)
{
	static const char *const del_sql[] = {
		"DELETE FROM token_index WHERE type=?1 AND id=?2",
		"DELETE FROM resource WHERE type=?1 AND id=?2",
		"DELETE FROM history WHERE type=?1 AND id=?2",
		"INSERT OR REPLACE INTO erased(type, id, erased_ms) VALUES(?1, ?2, ?3)",
	};
	struct purge *p = arg;
	sqlite3_stmt *sel = NULL, *del[4] = {NULL};
	int rc;

	if ((rc = map_rc(sqlite3_exec(db, "PRAGMA secure_delete=ON", NULL, NULL, NULL))))
		return rc;
	if ((rc = purge_stmt(db, "SELECT type, id FROM patient_owner WHERE patient=?1 UNION SELECT 'Patient', ?1",
			     &sel)))
		goto out;
	for (size_t k = 0; k < 4; k++)
		if ((rc = purge_stmt(db, del_sql[k], &del[k])))
			goto out;
	sqlite3_bind_text(sel, 1, p->pid, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		char type[SALUS_MAX_TYPE + 1], id[SALUS_MAX_ID + 1];
		copy_name(type, sizeof type, (const char *)sqlite3_column_text(sel, 0));
		copy_name(id, sizeof id, (const char *)sqlite3_column_text(sel, 1));
		if ((rc = salus_sx_put(p->sq->sx, type, id, 0, true, true, NULL)))
			goto out;
		for (size_t k = 0; k < 4; k++) {
			sqlite3_bind_text(del[k], 1, type, -1, SQLITE_STATIC);
			sqlite3_bind_text(del[k], 2, id, -1, SQLITE_STATIC);
			if (k == 3)
				sqlite3_bind_int64(del[k], 3, p->now);
			if ((rc = step_done(del[k])))
				goto out;
			if (k == 1)
				p->n += sqlite3_changes(db);
		}
	}
	if (rc != SQLITE_DONE) {
		rc = map_rc(rc);
		goto out;
	}
	sqlite3_finalize(sel);
	sel = NULL;
	/* the full-text rows too, now, while freed pages are zeroed */
	if ((rc = salus_sx_fts_flush(p->sq->sx)))
		goto out;
	if (!(rc = purge_stmt(db, "DELETE FROM patient_owner WHERE patient=?1", &sel))) {
		sqlite3_bind_text(sel, 1, p->pid, -1, SQLITE_STATIC);
		rc = step_done(sel);
	}
out:
	sqlite3_finalize(sel);
	for (size_t k = 0; k < 4; k++)
		sqlite3_finalize(del[k]);
	sqlite3_exec(db, "PRAGMA secure_delete=OFF", NULL, NULL, NULL);
	return rc;
}

static int sq_patient_erase(struct salus_store *s, const char *pid, struct salus_erase_result *out)
{
	struct sq_store *sq = sq_of(s);
	struct purge p = {.sq = sq, .pid = pid, .now = salus_now_ms()};
	bool existed = false;
	int rc;

	if (!sq->pk)
		return SALUS_EINVALID;
	/* the key first: from here on nothing of the patient can be opened,
	 * whatever happens to the rows (replayed at the next open if we stop) */
	if ((rc = salus_pk_erase(sq->pk, pid, &existed)))
		return rc;
	struct job j = {.kind = JOB_FN, .fn = w_purge, .fn_ctx = &p};
	if ((rc = submit(sq, &j)))
		return rc;
	out->key_destroyed = existed;
	out->resources = p.n;
	return SALUS_OK;
}

struct replay {
	char (*pids)[SALUS_MAX_ID + 1];
	size_t n, cap;
};

static int replay_collect(void *ctx, const char *pid, int64_t ms)
{
	struct replay *r = ctx;
	(void)ms;
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 64;
		void *np = salus_realloc(r->pids, cap * sizeof *r->pids);
		if (!np)
			return SALUS_ENOMEM;
		r->pids = np;
		r->cap = cap;
	}
	copy_name(r->pids[r->n++], SALUS_MAX_ID + 1, pid);
	return 0;
}

static int sq_patient_replay(struct salus_store *s, size_t *npatients, long *nresources)
{
	struct sq_store *sq = sq_of(s);
	struct replay r = {0};
	long total = 0;
	int rc;

	if (!sq->pk)
		return SALUS_EINVALID;
	if ((rc = salus_pk_erased(sq->pk, replay_collect, &r)))
		goto out;
	for (size_t i = 0; i < r.n && !rc; i++) {
		struct purge p = {.sq = sq, .pid = r.pids[i], .now = salus_now_ms()};
		struct job j = {.kind = JOB_FN, .fn = w_purge, .fn_ctx = &p};
		rc = submit(sq, &j);
		total += p.n;
	}
	if (!rc) {
		*npatients = r.n;
		*nresources = total;
	}
out:
	salus_free(r.pids);
	return rc;
}

static int sq_patient_rewrap(struct salus_store *s, size_t *n)
{
	struct sq_store *sq = sq_of(s);
	return sq->pk ? salus_pk_rewrap(sq->pk, n) : SALUS_EINVALID;
}

/* ---- audit log: the calls ---- */

static int sq_audit_write(struct salus_store *s, struct salus_write *ops, size_t n, struct salus_audit_entry *e,
			  size_t ne)
{
	struct job j = {.kind = JOB_WRITE, .ops = ops, .n = n, .au = e, .nau = ne};
	int rc = submit(sq_of(s), &j);
	size_t i;

	for (i = 0; !rc && i < n; i++)
		ops[i].rc = SALUS_OK;
	return rc;
}

/* The journal file has grown past JOURNAL_RESET_BYTES: with jmu held, close the gate (other appends
 * wait), have the writer move what is pending now, wait until everything appended is in the log, and
 * empty the file — under a steady load the writer alone never finds the file fully moved.  One
 * commit's wait for the appends of that moment, every few MB. */
static int aj_drain_reset(struct sq_store *sq)
{
	sq->jgate = true;
	pthread_mutex_lock(&sq->qmu);
	sq->jfirst_ns = mono_ns() - sq->jflush_ns; /* due now */
	pthread_cond_signal(&sq->qcv);
	pthread_mutex_unlock(&sq->qmu);
	while (sq->jdone != sq->jseq && !sq->jbroken) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&sq->jdone_cv, &sq->jmu, &ts);
		pthread_mutex_lock(&sq->qmu);
		bool stopping = sq->stopping;
		pthread_mutex_unlock(&sq->qmu);
		if (stopping)
			break; /* the next open moves the rest */
	}
	sq->jgate = false;
	pthread_cond_broadcast(&sq->jdone_cv);
	if (sq->jbroken)
		return SALUS_EIO;
	if (sq->jdone == sq->jseq && salus_ajournal_reset(sq->aj))
		salus_log(SALUS_LOG_WARN, "audit.journal", "could not empty the journal file");
	return SALUS_OK;
}

static int sq_audit_journal(struct salus_store *s, const struct salus_audit_entry *e)
{
	struct sq_store *sq = sq_of(s);
	struct heap_job *a = NULL;
	int rc;

	if (!sq->aj) { /* another process owns the journal: append directly */
		struct salus_audit_entry c = *e;
		struct salus_buf t;
		size_t pn;
		if (!e->cpre)
			return sq_audit_write(s, NULL, 0, &c, 1);
		salus_buf_init(&t, SALUS_MAX_AUDIT_EVENT);
		if (!(rc = salus_auc_decode_append(e->cpre, e->cpre_n, &t))) {
			pn = t.n;
			if (!(rc = e->cpost ? salus_auc_decode_append(e->cpost, e->cpost_n, &t) : SALUS_OK)) {
				c.cpre = c.cpost = NULL;
				c.cpre_n = c.cpost_n = 0;
				c.pre = t.p;
				c.pre_n = pn;
				c.post = e->cpost ? t.p + pn : NULL;
				c.post_n = e->cpost ? t.n - pn : 0;
				rc = sq_audit_write(s, NULL, 0, &c, 1);
			}
		}
		salus_buf_release(&t);
		return rc;
	}
	if (!e->cpre && !(a = heap_job_new(e)))
		return SALUS_ENOMEM;
	pthread_mutex_lock(&sq->jmu);
	if (e->cpre && !(a = heap_job_new_compact(sq, e))) {
		pthread_mutex_unlock(&sq->jmu);
		return SALUS_ENOMEM;
	}
	while (sq->jgate && !sq->jbroken)
		pthread_cond_wait(&sq->jdone_cv, &sq->jmu);
	if (sq->jbroken) {
		rc = SALUS_EIO;
		goto out_unlock;
	}
	if (salus_ajournal_size(sq->aj) >= JOURNAL_RESET_BYTES && (rc = aj_drain_reset(sq)))
		goto out_unlock;
	struct salus_aj_rec rec = {
		.seq = sq->jseq + 1,
		.ts_ms = e->ts_ms,
		.pre = a->j.au_epre,
		.pre_n = a->j.au_epre_n,
		.post = a->e.post || a->e.cpost ? a->j.au_epost : NULL,
		.post_n = a->j.au_epost_n,
	};
	if ((rc = salus_ajournal_append(sq->aj, &rec)))
		goto out_unlock;
	a->j.jseq = ++sq->jseq;
	pthread_mutex_lock(&sq->qmu);
	while (sq->jqueued >= JOURNAL_MAX_PENDING && !sq->stopping)
		pthread_cond_wait(&sq->jcv, &sq->qmu);
	if (sq->stopping) {
		/* the writer is gone or going: the record stays in the file for the next open */
		pthread_mutex_unlock(&sq->qmu);
		pthread_mutex_unlock(&sq->jmu);
		salus_free(a);
		return SALUS_OK;
	}
	if (sq->jtail)
		sq->jtail->next = &a->j;
	else
		sq->jhead = &a->j;
	sq->jtail = &a->j;
	if (sq->jqueued++ == 0)
		sq->jfirst_ns = mono_ns();
	if (sq->jqueued >= sq->jwake)
		pthread_cond_signal(&sq->qcv);
	pthread_mutex_unlock(&sq->qmu);
	pthread_mutex_unlock(&sq->jmu);
	return SALUS_OK;
out_unlock:
	pthread_mutex_unlock(&sq->jmu);
	salus_free(a);
	if (rc)
		salus_log(SALUS_LOG_ERROR, "audit.journal", "err=%s", salus_err_name(rc));
	return rc;
}

/* One read transaction for the calling thread's reads until sq_read_end (store.h). */
static int sq_read_begin(struct salus_store *s)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	int rc;

	if (pin_conn)
		return SALUS_EINVALID; /* not nested */
	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = exec_sql(c->db, "BEGIN"))) {
		reader_put(sq, c);
		return rc;
	}
	pin_conn = c;
	pin_sq = sq;
	pin_busy = false;
	return SALUS_OK;
}

static void sq_read_end(struct salus_store *s)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c = pin_conn;

	if (!c || pin_sq != sq || pin_busy)
		return;
	pin_conn = NULL;
	pin_sq = NULL;
	if (exec_sql(c->db, "COMMIT") && !sqlite3_get_autocommit(c->db))
		exec_sql(c->db, "ROLLBACK");
	reader_put(sq, c);
}

static int noop_fn(void *ctx, sqlite3 *db)
{
	(void)ctx;
	(void)db;
	return SALUS_OK;
}

/* Another process (the server) owns the journal: wait, up to SETTLE_FOREIGN_MS, until its writer has
 * moved into the log every record the file held when we looked — so `salus audit export`, `verify`,
 * `report access` run next to a server see the events of the requests answered before them.  Record
 * headers are read without a key; nothing of them is trusted but the number to wait for. */
#define SETTLE_FOREIGN_MS 3000
static int settle_foreign(struct sq_store *sq)
{
	uint64_t last = sq->jpath ? salus_ajournal_last_seq(sq->jpath) : 0, done = 0;
	int rc;

	for (int waited = 0; last; waited += 5) {
		if ((rc = salus_sq_reader_call(&sq->base, jdone_read, &done)))
			return rc;
		if (done >= last)
			return SALUS_OK;
		if (waited >= SETTLE_FOREIGN_MS) {
			salus_log(SALUS_LOG_WARN, "audit.journal", "the server has not moved its journaled events "
				  "into the log within %d ms: reading the log as it is", SETTLE_FOREIGN_MS);
			return SALUS_OK;
		}
		usleep(5000);
	}
	return SALUS_OK;
}

static int sq_audit_settle(struct salus_store *s)
{
	struct sq_store *sq = sq_of(s);
	bool pending, broken;

	if (!sq->aj)
		return settle_foreign(sq);
	pthread_mutex_lock(&sq->jmu);
	pending = sq->jdone != sq->jseq;
	broken = sq->jbroken;
	pthread_mutex_unlock(&sq->jmu);
	if (broken)
		return SALUS_EIO;
	if (!pending)
		return SALUS_OK;
	/* a job queued now is in a group after every journaled record taken so far (the writer
	 * takes them at the start of each group) */
	struct job j = {.kind = JOB_FN, .fn = noop_fn};
	int rc = submit(sq, &j);
	pthread_mutex_lock(&sq->jmu);
	broken = sq->jbroken;
	pthread_mutex_unlock(&sq->jmu);
	return broken ? SALUS_EIO : rc;
}

static int sq_audit_checkpoint_put(struct salus_store *s, int64_t size, const unsigned char *root, int64_t ts_ms,
				   const char *note)
{
	struct job j = {.kind = JOB_CHECKPOINT, .cp_size = size, .cp_root = root, .cp_ts = ts_ms, .cp_note = note};
	return submit(sq_of(s), &j);
}

static int sq_audit_size(struct salus_store *s, int64_t *size)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	int64_t v;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if (!(rc = au_size_on(c, &v)))
		*size = v;
	reader_put(sq, c);
	return rc;
}

static int sq_audit_nodes(struct salus_store *s, struct salus_audit_node *v, size_t n)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	int rc = SALUS_OK;

	if ((rc = reader_get(sq, &c)))
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = au_read_hash(c, v[i].level, v[i].index, v[i].hash);
	reader_put(sq, c);
	return rc;
}

static int sq_audit_scan(struct salus_store *s, int64_t from, int64_t count, salus_audit_row_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct salus_buf text;
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int rc;

	salus_buf_init(&text, SALUS_MAX_AUDIT_EVENT);
	if ((rc = reader_get(sq, &c)))
		goto out_text;
	if ((rc = conn_stmt(c, ST_AU_SCAN, &st)))
		goto out_conn;
	sqlite3_bind_int64(st, 1, from);
	sqlite3_bind_int64(st, 2, count ? count : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct salus_audit_row r;
		memset(&r, 0, sizeof r);
		r.index = sqlite3_column_int64(st, 0);
		r.ts_ms = sqlite3_column_int64(st, 1);
		r.leaf_hash = sqlite3_column_blob(st, 2);
		r.leaf_hash_n = (size_t)sqlite3_column_bytes(st, 2);
		if (sqlite3_column_type(st, 3) != SQLITE_NULL) {
			const void *v = sqlite3_column_blob(st, 3);
			size_t vn = (size_t)sqlite3_column_bytes(st, 3);
			if (!v && vn) {
				rc = SALUS_ENOMEM;
				goto out_stmt;
			}
			rc = salus_auc_decode(v ? v : "", vn, &text);
			if (rc == SALUS_ENOMEM)
				goto out_stmt;
			if (rc) {
				/* damaged beyond decoding: give the stored bytes, which do not hash to the
				 * leaf, so a verifier names this index instead of giving up */
				r.event = v;
				r.event_n = vn;
			} else {
				r.event = text.p;
				r.event_n = text.n;
			}
		}
		if ((rc = cb(ctx, &r)))
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
out_text:
	salus_buf_release(&text);
	return rc;
}

static int sq_audit_checkpoints(struct salus_store *s, bool latest_only, salus_audit_checkpoint_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	bool any = false;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, latest_only ? ST_AU_CP_LAST : ST_AU_CPS, &st)))
		goto out_conn;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct salus_audit_checkpoint_row r;
		memset(&r, 0, sizeof r);
		any = true;
		r.size = sqlite3_column_int64(st, 0);
		r.root = sqlite3_column_blob(st, 1);
		r.root_n = (size_t)sqlite3_column_bytes(st, 1);
		r.ts_ms = sqlite3_column_int64(st, 2);
		if ((rc = col_text(st, 3, &r.note, &r.note_n)))
			goto out_stmt;
		if (!r.note)
			r.note = "";
		if ((rc = cb(ctx, &r)))
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? (latest_only && !any ? SALUS_ENOTFOUND : SALUS_OK) : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

/* ------------------------------------------------------------------------- */
/* open / close                                                               */

/* Create or check the schema and load last_ms, on the writer connection. */
static int schema_init(struct sq_store *sq, bool create)
{
	sqlite3 *db = sq->w.db;
	sqlite3_stmt *st = NULL;
	int rc, version = 0;

	if ((rc = exec_sql(db, "BEGIN IMMEDIATE")))
		return rc;
	rc = sqlite3_prepare_v2(db, "SELECT val FROM meta WHERE key='schema_version'", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		if ((rc = sqlite3_step(st)) == SQLITE_ROW)
			version = sqlite3_column_int(st, 0);
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	} else if (strstr(sqlite3_errmsg(db), "no such table")) {
		rc = SQLITE_OK; /* a new (or foreign) database */
	}
	sqlite3_finalize(st);
	st = NULL;
	if ((rc = map_rc(rc)))
		goto out_rollback;
	if (version > SCHEMA_VERSION) {
		salus_log(SALUS_LOG_ERROR, "store.open", "schema=%d supported=%d", version, SCHEMA_VERSION);
		rc = SALUS_EIO;
		goto out_rollback;
	}
	if (version == 0) {
		if (!create) {
			rc = SALUS_ENOTFOUND;
			goto out_rollback;
		}
		if ((rc = exec_sql(db, schema_sql)) ||
		    (rc = exec_sql(db, "INSERT INTO meta(key, val) VALUES('schema_version', '2'),"
				       "('backend', 'sqlite')")))
			goto out_rollback;
	} else if (version == 1) {
		/* 1 -> 2 in place: rows written from now on keep the current body
		 * in history only; older rows keep their copy in resource.json and
		 * are read as before (RES_BODY).  The new number makes a binary that
		 * knows only schema 1 refuse the file instead of misreading it. */
		if ((rc = exec_sql(db, "UPDATE meta SET val='2' WHERE key='schema_version'")))
			goto out_rollback;
		/* rows of schema 1 have no patient+code index rows (search.h): until a
		 * full `salus reindex` deletes this, searches do not drive by them */
		if ((rc = exec_sql(db, "INSERT OR REPLACE INTO kv(ns, key, val) VALUES('" PC_NS "', '" PC_KEY "', 'incomplete')")))
			goto out_rollback;
		salus_log(SALUS_LOG_INFO, "store.open", "schema=2 from=1");
	}
	if ((rc = exec_sql(db, token_schema_sql)) ||
	    (rc = exec_sql(db, erase_schema_sql)) || (rc = salus_sx_schema(db)))
		goto out_rollback;
	/* the newest version holds the newest updated_ms (it never decreases in seq) */
	if ((rc = map_rc(sqlite3_prepare_v2(db, "SELECT updated_ms FROM history ORDER BY seq DESC LIMIT 1", -1,
					    &st, NULL))))
		goto out_rollback;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		sq->last_ms = sqlite3_column_int64(st, 0);
	rc = map_rc(rc == SQLITE_ROW ? SQLITE_OK : rc);
	sqlite3_finalize(st);
	if (rc)
		goto out_rollback;
	return exec_sql(db, "COMMIT");
out_rollback:
	exec_sql(db, "ROLLBACK");
	return rc;
}

/* ---- checkpoints ----------------------------------------------------------
 *
 * SQLite checkpoints a WAL database from the committing connection once the
 * log passes 1000 frames, so the single writer spent a sixth of an ingest
 * copying (decrypting, re-encrypting) pages from the WAL into the database
 * instead of committing.  Here the writer's commit hook only counts frames
 * and wakes a checkpointer thread, which runs PASSIVE checkpoints on its own
 * connection while the writer goes on committing (WAL mode allows both at
 * once); a larger threshold also copies a page rewritten by many commits
 * once (measured on the Synthea ingest: 4,096 -> 16,384 frames copied a fifth
 * fewer pages).  Should the log still grow past CKPT_HARD_PAGES (a long reader pins
 * it, or the checkpointer cannot keep up) the writer checkpoints itself as
 * before, so the WAL stays bounded.  Durability is unchanged: a commit is
 * durable in the WAL before the caller returns (the syncer's fsync), and every
 * checkpoint syncs the WAL before it copies a frame (synchronous=NORMAL and FULL
 * alike). */

/* sqlite3_wal_hook on the writer connection: after each commit, `frames` in the log. */
static int w_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_store *sq = arg;
	if (frames >= CKPT_HARD_PAGES || (frames >= CKPT_PAGES && !sq->ck_started)) {
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	} else if (frames >= CKPT_PAGES) {
		pthread_mutex_lock(&sq->ckmu);
		sq->ck_wanted = true;
		pthread_cond_signal(&sq->ckcv);
		pthread_mutex_unlock(&sq->ckmu);
	}
	return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
	struct sq_store *sq = arg;
	pthread_mutex_lock(&sq->ckmu);
	for (;;) {
		while (!sq->ck_wanted && !sq->ck_stopping)
			pthread_cond_wait(&sq->ckcv, &sq->ckmu);
		if (sq->ck_stopping)
			break;
		sq->ck_wanted = false;
		pthread_mutex_unlock(&sq->ckmu);
		int rc = sqlite3_wal_checkpoint_v2(sq->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
			salus_log(SALUS_LOG_WARN, "store.checkpoint", "rc=%d", rc);
		pthread_mutex_lock(&sq->ckmu);
	}
	pthread_mutex_unlock(&sq->ckmu);
	return NULL;
}

/* Open the checkpointer's connection and start its thread; on failure the
 * writer keeps checkpointing inline (w_wal_hook). */
static void ckpt_start(struct sq_store *sq)
{
	if (conn_open(&sq->ck, sq->path, SQLITE_OPEN_READWRITE, sq->vfs))
		return;
	if (conn_attach(sq->ck.db, sq->apath, AU_DB) ||
	    exec_sql(sq->ck.db, "PRAGMA synchronous=FULL; PRAGMA " AU_DB ".synchronous=FULL") ||
	    pthread_create(&sq->ck_thread, NULL, ckpt_main, sq)) {
		conn_close(&sq->ck);
		return;
	}
	sq->ck_started = true;
}

static void ckpt_stop(struct sq_store *sq)
{
	if (sq->ck_started) {
		pthread_mutex_lock(&sq->ckmu);
		sq->ck_stopping = true;
		pthread_cond_signal(&sq->ckcv);
		pthread_mutex_unlock(&sq->ckmu);
		pthread_join(sq->ck_thread, NULL);
		sq->ck_started = false;
	}
	if (sq->ck.db)
		conn_close(&sq->ck);
}

/* A writer connection's database in WAL mode with full durability; an encrypted one gets the
 * page layout the VFS needs first. */
static int wal_setup(struct sq_store *sq, struct conn *c)
{
	sqlite3_stmt *st = NULL;
	char *mode = NULL;
	int rc;

	if (sq->vfs) {
		/* a new encrypted database gets the page size and the reserved bytes
		 * the VFS needs before its first page is written (journal_mode=WAL
		 * below writes it); on an existing one these are no-ops, and the VFS
		 * refuses to write a page 1 with any other layout */
		int reserve = SALUS_CRYPT_RESERVE;
		if ((rc = exec_sql(c->db, "PRAGMA page_size=4096")))
			return rc;
		sqlite3_file_control(c->db, "main", SQLITE_FCNTL_RESERVE_BYTES, &reserve);
		/* switching a new database to WAL writes its page 1 in a rollback
		 * transaction; keep that journal in memory (the VFS refuses files) */
		if ((rc = map_rc(sqlite3_prepare_v2(c->db, "PRAGMA journal_mode", -1, &st, NULL))))
			return rc;
		bool wal = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) &&
			   !strcmp((const char *)sqlite3_column_text(st, 0), "wal");
		if ((rc = map_rc(sqlite3_finalize(st))))
			return rc;
		st = NULL;
		if (!wal && (rc = exec_sql(c->db, "PRAGMA journal_mode=MEMORY")))
			return rc;
	}
	/* WAL is persistent in the file; check that it took (not every VFS can) */
	if ((rc = map_rc(sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL))))
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		mode = salus_strdup((const char *)sqlite3_column_text(st, 0));
	rc = map_rc(sqlite3_finalize(st));
	if (!rc && !mode)
		rc = SALUS_ENOMEM;
	if (!rc && strcmp(mode, "wal"))
		rc = SALUS_EIO;
	salus_free(mode);
	if (rc || (rc = exec_sql(c->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")))
		return rc;
	sqlite3_wal_hook(c->db, w_wal_hook, sq); /* replaces the inline autocheckpoint */
	return SALUS_OK;
}

/* One integer from a one-row query on db; *v untouched when there is no row. */
static int query_int(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc = map_rc(sqlite3_prepare_v2(db, sql, -1, &st, NULL));
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(st, 0);
	int fin = sqlite3_finalize(st); /* the step's error again, if it failed */
	return map_rc(rc == SQLITE_ROW || rc == SQLITE_DONE ? fin : rc);
}

/* A data directory written before the audit database keeps its log in the resource database:
 * copy it into the audit database (one transaction there), then drop it from the resource
 * database (one transaction there).  A crash between the two leaves both copies; the next open
 * sees the audit database holding the same log and only drops the old one.  The search index
 * of the trail (audit_ix, store_audit_ix.c) is not copied: it is rebuilt from the log. */
static int au_migrate(struct sq_store *sq)
{
	static const char copy_sql[] =
		"INSERT INTO main.audit_log(idx, ts_ms, leaf_hash, event) SELECT idx, ts_ms, leaf_hash, event FROM old.audit_log;"
		"INSERT INTO main.audit_node(level, idx, hash) SELECT level, idx, hash FROM old.audit_node;"
		"INSERT INTO main.audit_subtree(leaf, hashes) SELECT leaf, hashes FROM old.audit_subtree;"
		"INSERT INTO main.audit_checkpoint(size, root, ts_ms, signed_note)"
		" SELECT size, root, ts_ms, signed_note FROM old.audit_checkpoint;"
		"INSERT OR REPLACE INTO main.audit_meta(key, val) SELECT key, CAST(val AS TEXT) FROM old.kv"
		" WHERE ns='" JOURNAL_NS "' AND key='" JOURNAL_KEY "';";
	static const char drop_sql[] =
		"DROP TRIGGER IF EXISTS audit_log_no_update; DROP TRIGGER IF EXISTS audit_log_no_delete;"
		"DROP TRIGGER IF EXISTS audit_node_no_update; DROP TRIGGER IF EXISTS audit_node_no_delete;"
		"DROP TRIGGER IF EXISTS audit_subtree_no_update; DROP TRIGGER IF EXISTS audit_subtree_no_delete;"
		"DROP TRIGGER IF EXISTS audit_checkpoint_no_update; DROP TRIGGER IF EXISTS audit_checkpoint_no_delete;"
		"DROP TABLE IF EXISTS audit_ix_val; DROP TABLE IF EXISTS audit_ix; DROP TABLE IF EXISTS audit_subtree;"
		"DROP TABLE IF EXISTS audit_node; DROP TABLE IF EXISTS audit_checkpoint; DROP TABLE IF EXISTS audit_log;"
		"DELETE FROM kv WHERE ns='" JOURNAL_NS "' AND key='" JOURNAL_KEY "';";
	int64_t old = 0, top_old = -1, top_new = -1;
	int rc;

	if ((rc = query_int(sq->w.db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='audit_log'",
			    &old)) || !old)
		return rc;
	if ((rc = conn_attach(sq->a.db, sq->path, "old")))
		return rc;
	if ((rc = exec_sql(sq->a.db, "BEGIN IMMEDIATE")))
		goto out_detach;
	if ((rc = query_int(sq->a.db, "SELECT coalesce(max(idx), -1) FROM old.audit_log", &top_old)) ||
	    (rc = query_int(sq->a.db, "SELECT coalesce(max(idx), -1) FROM main.audit_log", &top_new)))
		goto out_rollback;
	if (top_new < 0 && top_old >= 0 && (rc = exec_sql(sq->a.db, copy_sql)))
		goto out_rollback;
	if (top_new >= 0 && top_new != top_old) {
		salus_log(SALUS_LOG_ERROR, "store.open", "audit database last=%lld resource database last=%lld",
			  (long long)top_new, (long long)top_old);
		rc = SALUS_EINTEGRITY; /* two different logs: nothing is dropped */
		goto out_rollback;
	}
	if ((rc = exec_sql(sq->a.db, "COMMIT")))
		goto out_rollback;
	exec_sql(sq->a.db, "DETACH DATABASE old");
	if ((rc = exec_sql(sq->w.db, "BEGIN IMMEDIATE")))
		return rc;
	if ((rc = exec_sql(sq->w.db, drop_sql)) || (rc = exec_sql(sq->w.db, "COMMIT"))) {
		exec_sql(sq->w.db, "ROLLBACK");
		return rc;
	}
	salus_log(SALUS_LOG_INFO, "store.open", "audit_moved=%lld", (long long)(top_old + 1));
	return SALUS_OK;
out_rollback:
	exec_sql(sq->a.db, "ROLLBACK");
out_detach:
	exec_sql(sq->a.db, "DETACH DATABASE old");
	return rc;
}

/* The audit database's connection: the file created (mode 0600) if missing, WAL, the schema,
 * a log still in the resource database moved into it. */
static int audit_open(struct sq_store *sq)
{
	int fd = open(sq->apath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int rc;

	if (fd < 0)
		return errno == ENOENT ? SALUS_ENOTFOUND : SALUS_EIO;
	close(fd);
	if ((rc = conn_open(&sq->a, sq->apath, SQLITE_OPEN_READWRITE, sq->vfs)))
		return rc;
	/* appends touch the right edge of a few b-trees: a small page cache is enough */
	if ((rc = exec_sql(sq->a.db, "PRAGMA cache_size=" AUDIT_CACHE)) || (rc = wal_setup(sq, &sq->a)) ||
	    (rc = exec_sql(sq->a.db, "BEGIN IMMEDIATE")))
		return rc;
	if ((rc = exec_sql(sq->a.db, audit_schema_sql)) || (rc = exec_sql(sq->a.db, "COMMIT"))) {
		exec_sql(sq->a.db, "ROLLBACK");
		return rc;
	}
	return au_migrate(sq);
}

static int writer_open(struct sq_store *sq, bool create)
{
	int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
	int rc;

	if ((rc = conn_open(&sq->w, sq->path, flags, sq->vfs)))
		return rc;
	if ((rc = wal_setup(sq, &sq->w)) || (rc = schema_init(sq, create)) || (rc = audit_open(sq)) ||
	    (rc = salus_sx_w_new(sq->w.db, &sq->sx)))
		goto out_close;
	{
		sqlite3_stmt *pc = NULL;
		if ((rc = map_rc(sqlite3_prepare_v2(sq->w.db, "SELECT 1 FROM kv WHERE ns='" PC_NS "' AND key='" PC_KEY "'",
						    -1, &pc, NULL))))
			goto out_close;
		int step = sqlite3_step(pc);
		sq->pc_incomplete = step == SQLITE_ROW;
		sqlite3_finalize(pc);
		if (step != SQLITE_ROW && step != SQLITE_DONE) {
			rc = map_rc(step);
			goto out_close;
		}
	}
	return SALUS_OK;
out_close:
	conn_close(&sq->a);
	conn_close(&sq->w);
	return rc;
}

/* ---- durability off the writer's path ----------------------------------------
 *
 * With synchronous=FULL every COMMIT fsyncs its WAL on the single writer thread,
 * so a group of writes with audit events waited for two fsyncs before the
 * writer could take the next one.  Now `w` and `a` run synchronous=NORMAL, which
 * keeps SQLite's own ordering (the WAL is synced before a checkpoint copies any
 * frame into the database, the database after it, the WAL header when the log
 * restarts) and only leaves out the fsync at COMMIT.  That one we do ourselves,
 * on descriptors of our own for the two WAL files: the audit WAL inline, right
 * after its COMMIT and before the resource COMMIT writes a byte (so the events
 * are durable first, as before); the resource WAL on the syncer thread, once
 * for every group committed since its last sync, before any of their callers
 * is woken.  The writer builds the next group meanwhile.  Crash argument and
 * what readers may see: docs/store.md. */

/* A descriptor of db's WAL (SQLite's name: db + "-wal"; it exists while the writer's connection
 * is open, and no other connection deletes it meanwhile: that needs an exclusive lock on db). */
static int wal_open(const char *db)
{
	size_t n = strlen(db);
	char *p = salus_malloc(n + sizeof "-wal");
	int fd;

	if (!p)
		return -1;
	memcpy(p, db, n);
	memcpy(p + n, "-wal", sizeof "-wal");
	fd = open(p, O_RDONLY | O_CLOEXEC);
	salus_free(p);
	return fd;
}

/* Open our descriptors of the two WALs and switch `w` and `a` to synchronous=NORMAL; on any
 * failure both stay FULL (the COMMITs sync themselves) and nothing else changes. */
static void sync_setup(struct sq_store *sq)
{
	sq->wfd = wal_open(sq->path);
	sq->afd = wal_open(sq->apath);
	if (sq->wfd < 0 || sq->afd < 0 || pthread_create(&sq->sy_thread, NULL, syncer_main, sq))
		goto out_full;
	sq->sy_started = true;
	if (exec_sql(sq->w.db, "PRAGMA synchronous=NORMAL") || exec_sql(sq->a.db, "PRAGMA synchronous=NORMAL")) {
		exec_sql(sq->w.db, "PRAGMA synchronous=FULL");
		return; /* the syncer runs, but every COMMIT is durable by itself */
	}
	sq->synced = true;
	return;
out_full:
	salus_log(SALUS_LOG_WARN, "store.open", "sync=commit errno=%d", errno);
	if (sq->wfd >= 0)
		close(sq->wfd);
	if (sq->afd >= 0)
		close(sq->afd);
	sq->wfd = sq->afd = -1;
}

static void sq_free(struct salus_store *s)
{
	struct sq_store *sq = sq_of(s);

	if (sq->thread_started) {
		pthread_mutex_lock(&sq->qmu);
		sq->stopping = true;
		pthread_cond_signal(&sq->qcv);
		pthread_cond_broadcast(&sq->jcv);
		pthread_mutex_unlock(&sq->qmu);
		pthread_join(sq->thread, NULL);
	}
	if (sq->sy_started) { /* after the writer: it drains what the writer handed over */
		pthread_mutex_lock(&sq->qmu);
		sq->sy_stopping = true;
		pthread_cond_signal(&sq->sycv);
		pthread_mutex_unlock(&sq->qmu);
		pthread_join(sq->sy_thread, NULL);
		sq->sy_started = false;
	}
	if (sq->wfd >= 0)
		close(sq->wfd);
	if (sq->afd >= 0)
		close(sq->afd);
	if (sq->aj && !sq->jbroken && sq->jdone == sq->jseq)
		salus_ajournal_reset(sq->aj); /* all of it is in the log */
	ckpt_stop(sq); /* after the writer: nothing wakes it any more */
	for (int i = 0; i < sq->nreaders; i++)
		conn_close(&sq->readers[i]);
	salus_free(sq->readers);
	salus_sx_w_free(sq->sx); /* its statements, before their connection */
	conn_close(&sq->w); /* last: they checkpoint their WALs into the databases */
	conn_close(&sq->a);
	salus_crypt_vfs_free(sq->vfs); /* after every connection through it */
	salus_pk_free(sq->pk);
	pthread_cond_destroy(&sq->rcv);
	pthread_mutex_destroy(&sq->rmu);
	pthread_cond_destroy(&sq->qcv);
	pthread_mutex_destroy(&sq->qmu);
	pthread_cond_destroy(&sq->jcv);
	pthread_cond_destroy(&sq->jdone_cv);
	pthread_mutex_destroy(&sq->jmu);
	salus_ajournal_free(sq->aj); /* after the writer moved what was queued */
	for (struct job *j = sq->jpool, *next; j; j = next) {
		next = j->next;
		salus_free(j);
	}
	salus_free(sq->jpath);
	pthread_cond_destroy(&sq->ckcv);
	pthread_mutex_destroy(&sq->ckmu);
	pthread_cond_destroy(&sq->sycv);
	salus_free(sq->au_val);
	salus_free(sq->path);
	salus_free(sq->apath);
	salus_free(sq);
}

static int sq_open(const char *path, const struct salus_store_opts *o, struct salus_store **out)
{
	struct sq_store *sq;
	long cores;
	int rc, n;

	salus_store_global_init();
	if (!(sq = salus_calloc(1, sizeof *sq)))
		return SALUS_ENOMEM;
	sq->base.ops = &salus_store_sqlite_ops;
	pthread_mutex_init(&sq->qmu, NULL);
	pthread_mutex_init(&sq->jmu, NULL);
	pthread_cond_init(&sq->jcv, NULL);
	pthread_cond_init(&sq->jdone_cv, NULL);
	pthread_mutex_init(&sq->ckmu, NULL);
	pthread_cond_init(&sq->ckcv, NULL);
	pthread_cond_init(&sq->sycv, NULL);
	sq->wfd = sq->afd = -1;
	{
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&sq->qcv, &ca);
		pthread_condattr_destroy(&ca);
	}
	sq->wake_at = 1;
	pthread_mutex_init(&sq->rmu, NULL);
	pthread_cond_init(&sq->rcv, NULL);
	sq->batch_max = o->batch_max ? o->batch_max : DEFAULT_BATCH;
	cores = sysconf(_SC_NPROCESSORS_ONLN);
	n = o->readers ? o->readers : (int)(2 * (cores > 0 ? cores : 1));
	n = n > MAX_READERS ? MAX_READERS : n;
	if (!(sq->path = salus_strdup(path)) || !(sq->apath = salus_malloc(strlen(path) + sizeof "-audit.db")) ||
	    salus_store_audit_path(path, sq->apath, strlen(path) + sizeof "-audit.db")) {
		rc = SALUS_ENOMEM;
		goto out_free;
	}
	if (o->page_keys &&
	    (rc = salus_crypt_vfs_new(o->page_keys, o->npage_keys, o->page_key_id, o->page_key_next, &sq->vfs)))
		goto out_free;
	if (o->patient_keys && (rc = salus_pk_open(o->patient_keys, o->pwks, o->npwks, o->patient_keys_exclusive, &sq->pk)))
		goto out_free;
	if ((rc = writer_open(sq, o->create)) || (rc = aj_open(sq, o)))
		goto out_free;
	if (!(sq->readers = salus_calloc((size_t)n, sizeof *sq->readers))) {
		rc = SALUS_ENOMEM;
		goto out_free;
	}
	for (; sq->nreaders < n; sq->nreaders++) {
		struct conn *c = &sq->readers[sq->nreaders];
		if ((rc = reader_open(c, sq)))
			goto out_free;
		c->next = sq->free_readers;
		sq->free_readers = c;
	}
	ckpt_start(sq); /* before the writer thread, which reads ck_started */
	sync_setup(sq); /* likewise sy_started and synced */
	if (pthread_create(&sq->thread, NULL, writer_main, sq)) {
		rc = SALUS_EINTERNAL;
		goto out_free;
	}
	sq->thread_started = true;
	salus_log(SALUS_LOG_DEBUG, "store.open", "backend=sqlite readers=%d batch_max=%d", n, sq->batch_max);
	*out = &sq->base;
	return SALUS_OK;
out_free:
	sq_free(&sq->base);
	return rc;
}

/* Search hits with bodies sealed under a patient's key are opened before the
 * caller sees them; an erased patient's (in a restored copy) are skipped. */
struct open_hits {
	struct sq_store *sq;
	salus_sq_cb cb;
	void *ctx;
};

static int open_hit(void *arg, const struct salus_sq_hit *h)
{
	struct open_hits *oh = arg;
	struct salus_sq_hit o;
	char *json = NULL;
	size_t n = 0;
	int rc;

	if (!h->r.json || !salus_pk_is_sealed(h->r.json, h->r.len))
		return oh->cb(oh->ctx, h);
	rc = salus_pk_open_rec(oh->sq->pk, h->r.type, h->r.id, h->r.version, h->r.json, h->r.len, &json, &n);
	if (rc == SALUS_EGONE)
		return 0;
	if (rc)
		return rc;
	o = (struct salus_sq_hit){.r = h->r, .rid = h->rid, .cursor = h->cursor, .total = h->total};
	if (!salus_pk_owner(h->r.json, h->r.len, o.r.owner, sizeof o.r.owner))
		o.r.owner[0] = '\0';
	o.r.json = json;
	o.r.len = n;
	o.take = &json; /* the callback may keep the opened body (NULL then) */
	rc = oh->cb(oh->ctx, &o);
	salus_free(json);
	return rc;
}

/* q without its driving patient+code clauses (store.h: redundant with the
 * patient and code clauses that stay) while those rows are incomplete; the
 * copy shares everything else with q.  *tmp is the clause array to free. */
static const struct salus_sq *pc_strip(const struct sq_store *sq, const struct salus_sq *q, struct salus_sq *copy,
				       struct salus_sq_clause **tmp)
{
	size_t n = 0;
	*tmp = NULL;
	if (!sq->pc_incomplete)
		return q;
	for (size_t i = 0; i < q->nclauses; i++)
		n += !q->clauses[i].drive;
	if (n == q->nclauses)
		return q;
	if (!(*tmp = salus_calloc(n ? n : 1, sizeof **tmp)))
		return NULL;
	*copy = *q;
	copy->clauses = *tmp;
	copy->nclauses = 0;
	for (size_t i = 0; i < q->nclauses; i++)
		if (!q->clauses[i].drive)
			(*tmp)[copy->nclauses++] = q->clauses[i];
	return copy;
}

/* Searches (store_index.c) on a pooled reader connection. */
static int sq_search(struct salus_store *s, const struct salus_sq *q0, salus_sq_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct salus_sq copy;
	struct salus_sq_clause *tmp;
	const struct salus_sq *q = pc_strip(sq, q0, &copy, &tmp);
	struct conn *c;
	if (!q)
		return SALUS_ENOMEM;
	int rc = reader_get(sq, &c);
	if (rc) {
		salus_free(tmp);
		return rc;
	}
	struct open_hits oh = {.sq = sq, .cb = cb, .ctx = ctx};
	rc = salus_sx_search(c->db, q, sq->pk ? open_hit : cb, sq->pk ? (void *)&oh : ctx);
	reader_put(sq, c);
	salus_free(tmp);
	return rc;
}

static int sq_search_count(struct salus_store *s, const struct salus_sq *q0, long *total)
{
	struct sq_store *sq = sq_of(s);
	struct salus_sq copy;
	struct salus_sq_clause *tmp;
	const struct salus_sq *q = pc_strip(sq, q0, &copy, &tmp);
	struct conn *c;
	if (!q)
		return SALUS_ENOMEM;
	int rc = reader_get(sq, &c);
	if (!rc) {
		rc = salus_sx_count(c->db, q, total);
		reader_put(sq, c);
	}
	salus_free(tmp);
	return rc;
}

static int sq_search_plan(struct salus_store *s, const struct salus_sq *q0, bool count, char **plan)
{
	struct sq_store *sq = sq_of(s);
	struct salus_sq copy;
	struct salus_sq_clause *tmp;
	const struct salus_sq *q = pc_strip(sq, q0, &copy, &tmp);
	struct conn *c;
	if (!q)
		return SALUS_ENOMEM;
	int rc = reader_get(sq, &c);
	if (!rc) {
		rc = salus_sx_plan(c->db, q, count, plan);
		reader_put(sq, c);
	}
	salus_free(tmp);
	return rc;
}

static int sq_find_by_identifier(struct salus_store *s, const char *type, const char *system, const char *value,
				 salus_id_cb cb, void *ctx)
{
	struct sq_store *sq = sq_of(s);
	struct conn *c;
	sqlite3_stmt *st = NULL;
	int rc;

	if ((rc = reader_get(sq, &c)))
		return rc;
	if ((rc = conn_stmt(c, system ? ST_TOK_FIND : ST_TOK_FIND_ANY, &st)))
		goto out_conn;
	sqlite3_bind_text(st, 1, type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	if (system)
		sqlite3_bind_text(st, 3, system, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id;
		size_t idn;
		char idb[SALUS_MAX_ID + 1];
		if ((rc = col_text(st, 0, &id, &idn)) || !id)
			goto out_stmt;
		copy_name(idb, sizeof idb, id);
		if ((rc = cb(ctx, idb)))
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map_rc(sqlite3_reset(st));
out_stmt:
	sqlite3_reset(st);
out_conn:
	reader_put(sq, c);
	return rc;
}

const struct salus_store_ops salus_store_sqlite_ops = {
	.name = "sqlite",
	.open = sq_open,
	.close = sq_free,
	.read = sq_read,
	.write = sq_write,
	.history = sq_history,
	.history_count = sq_history_count,
	.last_seq = sq_last_seq,
	.list = sq_list,
	.count = sq_count,
	.kv_put = sq_kv_put,
	.kv_get = sq_kv_get,
	.kv_del = sq_kv_del,
	.kv_list = sq_kv_list,
	.audit_write = sq_audit_write,
	.audit_journal = sq_audit_journal,
	.audit_settle = sq_audit_settle,
	.read_begin = sq_read_begin,
	.read_end = sq_read_end,
	.audit_size = sq_audit_size,
	.audit_nodes = sq_audit_nodes,
	.audit_scan = sq_audit_scan,
	.audit_checkpoint_put = sq_audit_checkpoint_put,
	.audit_checkpoints = sq_audit_checkpoints,
	.find_by_identifier = sq_find_by_identifier,
	.search = sq_search,
	.search_count = sq_search_count,
	.search_plan = sq_search_plan,
	.patient_erase = sq_patient_erase,
	.patient_replay = sq_patient_replay,
	.patient_rewrap = sq_patient_rewrap,
	.backup = salus_sq_backup,
};
