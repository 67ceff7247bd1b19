/*
 * patkey.c — per-patient record keys: the key database, the cache of
 * unwrapped keys, sealing and opening resource bodies, erasure (see
 * patkey_int.h and docs/security.md "Crypto-shredding").
 *
 * keys/patient-keys.db (plain SQLite: it holds only wrapped keys, ids and
 * times; WAL, synchronous=FULL, secure_delete=ON; new keys are committed in
 * one transaction per group commit of the store, salus_pk_flush):
 *   patient_key(pid TEXT PRIMARY KEY, state INTEGER (1 live, 2 erased),
 *               wrap_id INTEGER, wrapped BLOB, created_ms, erased_ms)
 *   pk_meta(k TEXT PRIMARY KEY, v INTEGER): "wrap_id", the PWK new keys are
 *               wrapped under (set by salus_pk_rewrap; read by every process
 *               at the start of its key transaction, so all move together)
 *
 * Several processes may have the key database open (a server and a command
 * next to it: `salus patient erase`, `salus key rekey-data`).  What one
 * changes, the others learn:
 *   - a wrapping key they do not hold: the successor of their newest one
 *     (salus_pwk_successor), derived on first sight;
 *   - an erasure: PATH.lock holds an 8-byte generation counter, mapped by
 *     every process and bumped after each tombstone is committed; a process
 *     that sees it change wipes its whole cache of unwrapped keys before it
 *     uses any, so the erased patient's key is gone from every process at
 *     once and the next lookup finds the tombstone.
 */
#include "store/patkey_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>
#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "crypto/pwk.h"

#define KEY_LEN 32
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define WRAPPED_LEN (NONCE_LEN + KEY_LEN + TAG_LEN)
#define MAX_PID SALUS_MAX_ID
#define MAX_WRAP 16
#define MAX_DERIVE 8 /* successors derived at most ahead of the newest wrapping key held */
#define CACHE_SLOTS 16384 /* direct-mapped, ~1.6 MiB; a miss costs one indexed read and one unwrap */
#define MAGIC "\0spk\1"
#define MAGIC_LEN 5

enum { ST_LIVE = 1, ST_ERASED = 2 };

_Static_assert(KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key length");

struct slot {
	uint8_t state; /* 0 empty, ST_LIVE, ST_ERASED */
	char pid[MAX_PID + 1];
	unsigned char key[KEY_LEN];
};

/* The wrapping keys: a sodium_malloc'd block, read-only once filled. */
struct pk_secrets {
	size_t nwrap;
	struct salus_page_key wrap[MAX_WRAP]; /* ascending id; the last wraps new keys */
};

/* Unwrapped patient keys: a sodium_malloc'd block (guard pages, mlock'ed,
 * wiped on free), read-write because it changes on every miss. */
struct pk_cache {
	struct slot slot[CACHE_SLOTS];
};

struct salus_pk {
	pthread_mutex_t mu;      /* the key database and its statements */
	pthread_rwlock_t cmu;    /* the cache */
	struct pk_cache *cache;
	sqlite3_stmt *st_get;    /* under mu */
	sqlite3_stmt *st_ins;
	sqlite3 *db;
	int lock_fd; /* PATH.lock: flock shared (every store), exclusive (offline erase) */
	uint64_t *gen;      /* PATH.lock mapped: erasure generation, shared by every process */
	uint64_t gen_seen;  /* the generation the cache is valid for (under cmu) */
	bool in_txn; /* new keys inserted, not yet committed (salus_pk_flush) */
	uint32_t txn_wrap; /* pk_meta wrap_id read at the start of the open key transaction (0: none) */
	struct pk_secrets *sec;
};

static const char schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=FULL;"
	"PRAGMA secure_delete=ON;"
	"CREATE TABLE IF NOT EXISTS patient_key(pid TEXT PRIMARY KEY, state INTEGER NOT NULL,"
	" wrap_id INTEGER, wrapped BLOB, created_ms INTEGER NOT NULL, erased_ms INTEGER);"
	"CREATE TABLE IF NOT EXISTS pk_meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL);";

static int map(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW: return SALUS_OK;
	case SQLITE_NOMEM: return SALUS_ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return SALUS_EBUSY;
	default: return SALUS_EIO;
	}
}

static bool pid_ok(const char *pid)
{
	size_t n = pid ? strnlen(pid, MAX_PID + 1) : 0;
	return n >= 1 && n <= MAX_PID;
}

static size_t slot_of(const char *pid)
{
	uint32_t h = 2166136261u; /* FNV-1a: ids are not attacker-chosen secrets, only a spread is needed */
	for (const unsigned char *p = (const unsigned char *)pid; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % CACHE_SLOTS;
}

static void wrap_ad(unsigned char *ad, size_t *adn, uint32_t wrap_id, const char *pid)
{
	size_t n = strlen(pid);
	memcpy(ad, "salus-pk1", 9);
	for (int i = 0; i < 4; i++)
		ad[9 + i] = (unsigned char)(wrap_id >> (8 * i));
	memcpy(ad + 13, pid, n);
	*adn = 13 + n;
}

static const struct salus_page_key *wrap_key(const struct salus_pk *pk, uint32_t id)
{
	for (size_t i = 0; i < pk->sec->nwrap; i++)
		if (pk->sec->wrap[i].id == id)
			return &pk->sec->wrap[i];
	return NULL;
}

/* The wrapping key `id`: held, or derived as a successor of the newest held
 * (another process moved the key database to it; keyring.h,
 * salus_keyring_pwk_add_successor).  NULL: unknown.  Caller holds mu. */
static const struct salus_page_key *wrap_find(struct salus_pk *pk, uint32_t id)
{
	const struct salus_page_key *w = wrap_key(pk, id);
	uint32_t top = pk->sec->wrap[pk->sec->nwrap - 1].id;

	if (w || id <= top || id - top > MAX_DERIVE)
		return w;
	sodium_mprotect_readwrite(pk->sec);
	while (pk->sec->wrap[pk->sec->nwrap - 1].id < id) {
		const struct salus_page_key *last = &pk->sec->wrap[pk->sec->nwrap - 1];
		struct salus_page_key nk = {.id = last->id + 1};
		unsigned char pwk[KEY_LEN];
		salus_pwk_successor(last->key, nk.id, pwk);
		salus_pwk_wrapping_key(pwk, nk.key);
		sodium_memzero(pwk, sizeof pwk);
		if (pk->sec->nwrap == MAX_WRAP) { /* drop the oldest */
			sodium_memzero(&pk->sec->wrap[0], sizeof pk->sec->wrap[0]);
			memmove(&pk->sec->wrap[0], &pk->sec->wrap[1], (MAX_WRAP - 1) * sizeof pk->sec->wrap[0]);
			pk->sec->nwrap--;
		}
		pk->sec->wrap[pk->sec->nwrap++] = nk;
		sodium_memzero(&nk, sizeof nk);
	}
	sodium_mprotect_readonly(pk->sec);
	salus_log(SALUS_LOG_INFO, "store.patkey.wrap_key", "id=%u (derived: moved to by another process)", id);
	return wrap_key(pk, id);
}

/* Map the erasure generation counter (the first 8 bytes of PATH.lock). */
static int gen_map(struct salus_pk *pk)
{
	struct stat st;
	void *m;
	if (fstat(pk->lock_fd, &st) || (st.st_size < (off_t)sizeof(uint64_t) && ftruncate(pk->lock_fd, sizeof(uint64_t))))
		return SALUS_EIO;
	if ((m = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, pk->lock_fd, 0)) == MAP_FAILED)
		return SALUS_EIO;
	pk->gen = m;
	pk->gen_seen = __atomic_load_n(pk->gen, __ATOMIC_ACQUIRE);
	return SALUS_OK;
}

static uint64_t gen_now(const struct salus_pk *pk)
{
	return __atomic_load_n(pk->gen, __ATOMIC_ACQUIRE);
}

/* Every process with the key database open holds a shared lock on PATH.lock;
 * an erasure needs it exclusively (it changes the wrapping keys under the
 * feet of any other process).  Non-blocking: SALUS_EBUSY. */
static int lock_take(struct salus_pk *pk, const char *path, bool exclusive)
{
	char lp[4096 + 8];
	if (snprintf(lp, sizeof lp, "%s.lock", path) >= (int)sizeof lp)
		return SALUS_EINVALID;
	if ((pk->lock_fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0)
		return SALUS_EIO;
	if (flock(pk->lock_fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB))
		return errno == EWOULDBLOCK ? SALUS_EBUSY : SALUS_EIO;
	return SALUS_OK;
}

int salus_pk_open(const char *path, const struct salus_page_key *wrap, size_t nwrap, bool exclusive,
		  struct salus_pk **out)
{
	struct salus_pk *pk;
	int rc;

	if (!path || !wrap || !nwrap || nwrap > MAX_WRAP)
		return SALUS_EINVALID;
	if (sodium_init() < 0)
		return SALUS_ECRYPTO;
	if (!(pk = salus_calloc(1, sizeof *pk)))
		return SALUS_ENOMEM;
	pk->lock_fd = -1;
	pthread_mutex_init(&pk->mu, NULL);
	pthread_rwlock_init(&pk->cmu, NULL);
	if ((rc = lock_take(pk, path, exclusive)) || (rc = gen_map(pk)))
		goto out_free;
	if (!(pk->sec = sodium_malloc(sizeof *pk->sec)) || !(pk->cache = sodium_malloc(sizeof *pk->cache))) {
		rc = SALUS_ENOMEM;
		goto out_free;
	}
	memset(pk->sec, 0, sizeof *pk->sec);
	memset(pk->cache, 0, sizeof *pk->cache);
	for (size_t i = 0; i < nwrap; i++) {
		size_t k = pk->sec->nwrap++;
		pk->sec->wrap[k] = wrap[i];
		/* keep ascending id order (insertion sort: at most MAX_WRAP) */
		while (k && pk->sec->wrap[k - 1].id > pk->sec->wrap[k].id) {
			struct salus_page_key t = pk->sec->wrap[k - 1];
			pk->sec->wrap[k - 1] = pk->sec->wrap[k];
			pk->sec->wrap[k] = t;
			sodium_memzero(&t, sizeof t);
			k--;
		}
	}
	sodium_mprotect_readonly(pk->sec);
	mode_t old = umask(077);
	rc = sqlite3_open_v2(path, &pk->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	umask(old);
	if (rc != SQLITE_OK) {
		rc = map(rc);
		goto out_free;
	}
	chmod(path, 0600);
	sqlite3_busy_timeout(pk->db, 10000);
	if ((rc = map(sqlite3_exec(pk->db, schema, NULL, NULL, NULL))))
		goto out_free;
	if ((rc = map(sqlite3_prepare_v2(pk->db, "SELECT state, wrap_id, wrapped FROM patient_key WHERE pid=?1", -1,
					 &pk->st_get, NULL))) ||
	    (rc = map(sqlite3_prepare_v2(pk->db,
					 "INSERT INTO patient_key(pid, state, wrap_id, wrapped, created_ms) "
					 "VALUES(?1, 1, ?2, ?3, ?4)",
					 -1, &pk->st_ins, NULL))))
		goto out_free;
	*out = pk;
	return SALUS_OK;
out_free:
	salus_log(SALUS_LOG_ERROR, "store.patkey.open", "rc=%d", rc);
	salus_pk_free(pk);
	return rc;
}

static int flush_locked(struct salus_pk *pk);

void salus_pk_free(struct salus_pk *pk)
{
	if (!pk)
		return;
	sqlite3_finalize(pk->st_get);
	sqlite3_finalize(pk->st_ins);
	if (pk->db) {
		flush_locked(pk);
		sqlite3_close_v2(pk->db);
	}
	sodium_free(pk->sec); /* wipes */
	sodium_free(pk->cache);
	pthread_rwlock_destroy(&pk->cmu);
	if (pk->gen)
		munmap(pk->gen, sizeof(uint64_t));
	if (pk->lock_fd >= 0)
		close(pk->lock_fd); /* releases the flock */
	pthread_mutex_destroy(&pk->mu);
	salus_free(pk);
}

bool salus_pk_is_sealed(const void *p, size_t n)
{
	return p && n >= MAGIC_LEN && memcmp(p, MAGIC, MAGIC_LEN) == 0;
}

/* Put a key (or an erased mark, key NULL) in the cache, replacing (and
 * wiping) what the slot held — unless an erasure happened since the caller
 * read it (generation `g`, taken before the read): it may be the erased key. */
static void cache_put(struct salus_pk *pk, const char *pid, const unsigned char *key, uint64_t g)
{
	pthread_rwlock_wrlock(&pk->cmu);
	if (g != gen_now(pk) || g != pk->gen_seen) {
		pthread_rwlock_unlock(&pk->cmu);
		return;
	}
	struct slot *s = &pk->cache->slot[slot_of(pid)];
	sodium_memzero(s, sizeof *s);
	memcpy(s->pid, pid, strlen(pid) + 1);
	s->state = key ? ST_LIVE : ST_ERASED;
	if (key)
		memcpy(s->key, key, KEY_LEN);
	pthread_rwlock_unlock(&pk->cmu);
}

/* From the cache: SALUS_OK (key copied), SALUS_EGONE (erased) or SALUS_ENOTFOUND (not cached). */
static int cache_get(struct salus_pk *pk, const char *pid, unsigned char key[KEY_LEN])
{
	int rc = SALUS_ENOTFOUND;
	uint64_t g = gen_now(pk);
	pthread_rwlock_rdlock(&pk->cmu);
	if (g != pk->gen_seen) {
		/* a patient was erased (by any process): forget every key */
		pthread_rwlock_unlock(&pk->cmu);
		pthread_rwlock_wrlock(&pk->cmu);
		if (g != pk->gen_seen) {
			sodium_memzero(pk->cache, sizeof *pk->cache);
			pk->gen_seen = g;
			salus_log(SALUS_LOG_INFO, "store.patkey.cache_wiped", "generation=%llu", (unsigned long long)g);
		}
		pthread_rwlock_unlock(&pk->cmu);
		return SALUS_ENOTFOUND;
	}
	const struct slot *s = &pk->cache->slot[slot_of(pid)];
	if (s->state && !strcmp(s->pid, pid)) {
		rc = s->state == ST_ERASED ? SALUS_EGONE : SALUS_OK;
		if (!rc)
			memcpy(key, s->key, KEY_LEN);
	}
	pthread_rwlock_unlock(&pk->cmu);
	return rc;
}

/* Commit the keys created since the last flush.  Caller holds mu. */
static int flush_locked(struct salus_pk *pk)
{
	int rc;
	if (!pk->in_txn)
		return SALUS_OK;
	if ((rc = map(sqlite3_exec(pk->db, "COMMIT", NULL, NULL, NULL))))
		return rc;
	pk->in_txn = false;
	return SALUS_OK;
}

int salus_pk_flush(struct salus_pk *pk)
{
	pthread_mutex_lock(&pk->mu);
	int rc = flush_locked(pk);
	pthread_mutex_unlock(&pk->mu);
	return rc;
}

/* Create pid's key, wrapped under the newest PWK, in the open key
 * transaction (durable at the next salus_pk_flush, which the store's writer
 * runs before it commits a body sealed under the key).  Caller holds mu. */
static int key_create(struct salus_pk *pk, const char *pid, unsigned char key[KEY_LEN])
{
	const struct salus_page_key *w = &pk->sec->wrap[pk->sec->nwrap - 1];
	unsigned char wrapped[WRAPPED_LEN], ad[13 + MAX_PID];
	sqlite3_stmt *st = pk->st_ins;
	size_t adn;
	int rc;

	if (!pk->in_txn) {
		if ((rc = map(sqlite3_exec(pk->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))))
			return rc;
		pk->in_txn = true;
		/* the wrapping key every process uses now (set by the last rewrap) */
		sqlite3_stmt *q = NULL;
		pk->txn_wrap = 0;
		if (sqlite3_prepare_v2(pk->db, "SELECT v FROM pk_meta WHERE k='wrap_id'", -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int64(q, 0) > 0)
			pk->txn_wrap = (uint32_t)sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	}
	if (pk->txn_wrap && !(w = wrap_find(pk, pk->txn_wrap))) {
		salus_log(SALUS_LOG_ERROR, "store.patkey.wrap_key", "id=%u unknown (restart to load the keyring)",
			  pk->txn_wrap);
		return SALUS_EINTEGRITY;
	}
	randombytes_buf(key, KEY_LEN);
	randombytes_buf(wrapped, NONCE_LEN);
	wrap_ad(ad, &adn, w->id, pid);
	crypto_aead_xchacha20poly1305_ietf_encrypt(wrapped + NONCE_LEN, NULL, key, KEY_LEN, ad, adn, NULL, wrapped,
						   w->key);
	sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, w->id);
	sqlite3_bind_blob(st, 3, wrapped, sizeof wrapped, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, salus_now_ms());
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return map(rc);
}

/* pid's key into key (caller wipes): from the cache, else the database, else
 * (create) a new one.  Caller holds mu.  SALUS_EGONE: erased; SALUS_ENOTFOUND:
 * none and !create. */
static int key_get(struct salus_pk *pk, const char *pid, bool create, unsigned char key[KEY_LEN])
{
	sqlite3_stmt *st = pk->st_get;
	int rc;

	if ((rc = cache_get(pk, pid, key)) != SALUS_ENOTFOUND)
		return rc; /* another thread may have filled it since the caller looked */
	uint64_t g = gen_now(pk); /* before the read: see cache_put */
	sqlite3_bind_text(st, 1, pid, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		if (!create)
			return SALUS_ENOTFOUND;
		if ((rc = key_create(pk, pid, key)))
			return rc;
		cache_put(pk, pid, key, g);
		return SALUS_OK;
	}
	if (rc != SQLITE_ROW) {
		rc = map(rc);
		sqlite3_reset(st);
		return rc ? rc : SALUS_EIO;
	}
	if (sqlite3_column_int(st, 0) == ST_ERASED) {
		sqlite3_reset(st);
		cache_put(pk, pid, NULL, g);
		return SALUS_EGONE;
	}
	const struct salus_page_key *w = wrap_find(pk, (uint32_t)sqlite3_column_int64(st, 1));
	const unsigned char *wrapped = sqlite3_column_blob(st, 2);
	unsigned char ad[13 + MAX_PID];
	size_t adn;
	rc = SALUS_EINTEGRITY;
	if (w && wrapped && sqlite3_column_bytes(st, 2) == WRAPPED_LEN) {
		wrap_ad(ad, &adn, w->id, pid);
		if (!crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, wrapped + NONCE_LEN, WRAPPED_LEN - NONCE_LEN,
								 ad, adn, wrapped, w->key))
			rc = SALUS_OK;
	}
	sqlite3_reset(st);
	if (rc) {
		salus_log(SALUS_LOG_ERROR, "store.patkey.unwrap", "rc=%d", rc);
		return rc;
	}
	cache_put(pk, pid, key, g);
	return SALUS_OK;
}

/* Associated data of a record: pid NUL type NUL id NUL version (8 bytes LE). */
static size_t rec_ad(unsigned char *ad, const char *pid, const char *type, const char *id, long version)
{
	size_t n = 0;
	const char *parts[3] = {pid, type, id};
	for (int i = 0; i < 3; i++) {
		size_t k = strlen(parts[i]);
		memcpy(ad + n, parts[i], k);
		n += k;
		ad[n++] = 0;
	}
	for (int i = 0; i < 8; i++)
		ad[n++] = (unsigned char)((uint64_t)version >> (8 * i));
	return n;
}

#define AD_MAX (3 * (SALUS_MAX_ID + SALUS_MAX_TYPE + 1) + 8)

int salus_pk_seal(struct salus_pk *pk, const char *pid, const char *type, const char *id, long version,
		  const char *json, size_t n, unsigned char **out, size_t *out_n)
{
	unsigned char key[KEY_LEN], ad[AD_MAX], *b;
	size_t pn, hdr, adn;
	int rc;

	if (!pid_ok(pid) || strlen(type) > SALUS_MAX_TYPE || strlen(id) > SALUS_MAX_ID)
		return SALUS_EINVALID;
	if ((rc = cache_get(pk, pid, key)) == SALUS_ENOTFOUND) {
		pthread_mutex_lock(&pk->mu);
		rc = key_get(pk, pid, true, key);
		pthread_mutex_unlock(&pk->mu);
	}
	if (rc)
		return rc;
	pn = strlen(pid);
	hdr = MAGIC_LEN + 1 + pn;
	if (!(b = salus_malloc(hdr + NONCE_LEN + n + TAG_LEN))) {
		sodium_memzero(key, sizeof key);
		return SALUS_ENOMEM;
	}
	memcpy(b, MAGIC, MAGIC_LEN);
	b[MAGIC_LEN] = (unsigned char)pn;
	memcpy(b + MAGIC_LEN + 1, pid, pn);
	randombytes_buf(b + hdr, NONCE_LEN);
	adn = rec_ad(ad, pid, type, id, version);
	crypto_aead_xchacha20poly1305_ietf_encrypt(b + hdr + NONCE_LEN, NULL, (const unsigned char *)json, n, ad, adn,
						   NULL, b + hdr, key);
	sodium_memzero(key, sizeof key);
	*out = b;
	*out_n = hdr + NONCE_LEN + n + TAG_LEN;
	return SALUS_OK;
}

bool salus_pk_owner(const void *blob, size_t n, char *out, size_t cap)
{
	const unsigned char *b = blob;
	if (!salus_pk_is_sealed(blob, n) || n < MAGIC_LEN + 1)
		return false;
	size_t pn = b[MAGIC_LEN];
	if (!pn || pn > MAX_PID || pn >= cap || n < MAGIC_LEN + 1 + pn)
		return false;
	memcpy(out, b + MAGIC_LEN + 1, pn);
	out[pn] = '\0';
	return strlen(out) == pn;
}

int salus_pk_open_rec(struct salus_pk *pk, const char *type, const char *id, long version, const void *blob,
		      size_t n, char **json, size_t *len)
{
	const unsigned char *b = blob;
	unsigned char key[KEY_LEN], ad[AD_MAX];
	char pid[MAX_PID + 1];
	size_t pn, hdr, adn, m;
	char *p;
	int rc;

	if (!salus_pk_is_sealed(blob, n) || n < MAGIC_LEN + 1)
		return SALUS_EINTEGRITY;
	pn = b[MAGIC_LEN];
	hdr = MAGIC_LEN + 1 + pn;
	if (!pn || pn > MAX_PID || n < hdr + NONCE_LEN + TAG_LEN)
		return SALUS_EINTEGRITY;
	memcpy(pid, b + MAGIC_LEN + 1, pn);
	pid[pn] = 0;
	if (strlen(pid) != pn || strlen(type) > SALUS_MAX_TYPE || strlen(id) > SALUS_MAX_ID)
		return SALUS_EINTEGRITY;
	if ((rc = cache_get(pk, pid, key)) == SALUS_ENOTFOUND) {
		pthread_mutex_lock(&pk->mu);
		rc = key_get(pk, pid, false, key);
		pthread_mutex_unlock(&pk->mu);
	}
	if (rc)
		return rc == SALUS_ENOTFOUND ? SALUS_EINTEGRITY : rc;
	m = n - hdr - NONCE_LEN - TAG_LEN;
	if (!(p = salus_malloc(m + 1))) {
		sodium_memzero(key, sizeof key);
		return SALUS_ENOMEM;
	}
	adn = rec_ad(ad, pid, type, id, version);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)p, NULL, NULL, b + hdr + NONCE_LEN,
						       n - hdr - NONCE_LEN, ad, adn, b + hdr, key)) {
		sodium_memzero(key, sizeof key);
		salus_free(p);
		salus_log(SALUS_LOG_ERROR, "store.patkey.integrity", "version=%ld", version);
		return SALUS_EINTEGRITY;
	}
	sodium_memzero(key, sizeof key);
	p[m] = 0;
	*json = p;
	*len = m;
	return SALUS_OK;
}

int salus_pk_erase(struct salus_pk *pk, const char *pid, bool *existed)
{
	sqlite3_stmt *st = NULL;
	int rc, live = 0;

	if (!pid_ok(pid))
		return SALUS_EINVALID;
	pthread_mutex_lock(&pk->mu);
	if ((rc = flush_locked(pk))) {
		pthread_mutex_unlock(&pk->mu);
		return rc;
	}
	/* the tombstone replaces the row: wrapped key gone, freed bytes zeroed (secure_delete) */
	rc = sqlite3_prepare_v2(pk->db,
				"INSERT INTO patient_key(pid, state, created_ms, erased_ms) VALUES(?1, 2, ?2, ?2) "
				"ON CONFLICT(pid) DO UPDATE SET state=2, wrap_id=NULL, wrapped=NULL, "
				"erased_ms=coalesce(erased_ms, ?2)",
				-1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_stmt *q = NULL;
		if (sqlite3_prepare_v2(pk->db, "SELECT state FROM patient_key WHERE pid=?1", -1, &q, NULL) == SQLITE_OK) {
			sqlite3_bind_text(q, 1, pid, -1, SQLITE_STATIC);
			live = sqlite3_step(q) == SQLITE_ROW && sqlite3_column_int(q, 0) == ST_LIVE;
		}
		sqlite3_finalize(q);
		sqlite3_bind_text(st, 1, pid, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, salus_now_ms());
		rc = sqlite3_step(st);
	}
	sqlite3_finalize(st);
	rc = map(rc);
	if (!rc) {
		/* every process (this one included) forgets every cached key */
		__atomic_add_fetch(pk->gen, 1, __ATOMIC_ACQ_REL);
		cache_put(pk, pid, NULL, gen_now(pk)); /* no-op unless this process already wiped */
		/* the page with the zeroed row into the database file, the WAL emptied */
		sqlite3_exec(pk->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&pk->mu);
	if (!rc && existed)
		*existed = live;
	return rc;
}

int salus_pk_rewrap(struct salus_pk *pk, size_t *n)
{
	const struct salus_page_key *nw = &pk->sec->wrap[pk->sec->nwrap - 1];
	sqlite3_stmt *sel = NULL, *upd = NULL;
	size_t done = 0;
	int rc;

	pthread_mutex_lock(&pk->mu);
	if ((rc = flush_locked(pk)) || (rc = map(sqlite3_exec(pk->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))))
		goto out_unlock;
	{
		/* every process wraps new keys under nw from this commit on (key_create) */
		char sql[96];
		snprintf(sql, sizeof sql, "INSERT OR REPLACE INTO pk_meta(k, v) VALUES('wrap_id', %u)", nw->id);
		if ((rc = map(sqlite3_exec(pk->db, sql, NULL, NULL, NULL))))
			goto out_rollback;
	}
	if (sqlite3_prepare_v2(pk->db, "SELECT pid, wrap_id, wrapped FROM patient_key WHERE state=1 AND wrap_id<>?1",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(pk->db, "UPDATE patient_key SET wrap_id=?2, wrapped=?3 WHERE pid=?1", -1, &upd,
			       NULL) != SQLITE_OK) {
		rc = map(sqlite3_errcode(pk->db));
		goto out_rollback;
	}
	sqlite3_bind_int64(sel, 1, nw->id);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const char *pid = (const char *)sqlite3_column_text(sel, 0);
		const struct salus_page_key *ow = wrap_find(pk, (uint32_t)sqlite3_column_int64(sel, 1));
		const unsigned char *w = sqlite3_column_blob(sel, 2);
		unsigned char key[KEY_LEN], nwr[WRAPPED_LEN], ad[13 + MAX_PID];
		size_t adn;
		if (!pid || !pid_ok(pid) || !ow || !w || sqlite3_column_bytes(sel, 2) != WRAPPED_LEN) {
			rc = SALUS_EINTEGRITY;
			goto out_rollback;
		}
		wrap_ad(ad, &adn, ow->id, pid);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(key, NULL, NULL, w + NONCE_LEN, WRAPPED_LEN - NONCE_LEN, ad,
							       adn, w, ow->key)) {
			rc = SALUS_EINTEGRITY;
			goto out_rollback;
		}
		randombytes_buf(nwr, NONCE_LEN);
		wrap_ad(ad, &adn, nw->id, pid);
		crypto_aead_xchacha20poly1305_ietf_encrypt(nwr + NONCE_LEN, NULL, key, KEY_LEN, ad, adn, NULL, nwr,
							   nw->key);
		sodium_memzero(key, sizeof key);
		sqlite3_bind_text(upd, 1, pid, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 2, nw->id);
		sqlite3_bind_blob(upd, 3, nwr, sizeof nwr, SQLITE_TRANSIENT);
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		if (rc != SQLITE_DONE) {
			rc = map(rc);
			goto out_rollback;
		}
		done++;
	}
	if (rc != SQLITE_DONE) {
		rc = map(rc);
		goto out_rollback;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sel = upd = NULL;
	if ((rc = map(sqlite3_exec(pk->db, "COMMIT", NULL, NULL, NULL))))
		goto out_rollback;
	/* rewrite the file: no free page keeps bytes of an older wrapping */
	rc = map(sqlite3_exec(pk->db, "VACUUM; PRAGMA wal_checkpoint(TRUNCATE);", NULL, NULL, NULL));
	if (!rc && n)
		*n = done;
	goto out_unlock;
out_rollback:
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	sqlite3_exec(pk->db, "ROLLBACK", NULL, NULL, NULL);
	if (!rc)
		rc = SALUS_EIO;
out_unlock:
	pthread_mutex_unlock(&pk->mu);
	return rc;
}

int salus_pk_erased(struct salus_pk *pk, int (*cb)(void *ctx, const char *pid, int64_t erased_ms), void *ctx)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&pk->mu);
	if ((rc = flush_locked(pk)))
		goto out_unlock;
	if (sqlite3_prepare_v2(pk->db, "SELECT pid, erased_ms FROM patient_key WHERE state=2 ORDER BY pid", -1, &st,
			       NULL) != SQLITE_OK) {
		rc = map(sqlite3_errcode(pk->db));
		goto out_unlock;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *pid = (const char *)sqlite3_column_text(st, 0);
		if (pid && (rc = cb(ctx, pid, sqlite3_column_int64(st, 1))))
			goto out_stmt;
	}
	rc = rc == SQLITE_DONE ? SALUS_OK : map(rc);
out_stmt:
	sqlite3_finalize(st);
out_unlock:
	pthread_mutex_unlock(&pk->mu);
	return rc;
}

int salus_pk_backup(struct salus_pk *pk, const char *dest)
{
	sqlite3_stmt *st = NULL;
	int rc;

	pthread_mutex_lock(&pk->mu);
	if ((rc = flush_locked(pk)))
		goto out;
	if (sqlite3_prepare_v2(pk->db, "VACUUM INTO ?1", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_bind_text(st, 1, dest, -1, SQLITE_STATIC) != SQLITE_OK) {
		rc = map(sqlite3_errcode(pk->db));
		goto out;
	}
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? SALUS_OK : map(rc);
out:
	sqlite3_finalize(st);
	pthread_mutex_unlock(&pk->mu);
	return rc;
}
