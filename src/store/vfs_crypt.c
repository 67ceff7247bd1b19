/*
 * vfs_crypt.c — the page-encrypting SQLite VFS (see vfs_crypt.h and
 * docs/security.md).
 *
 * A shim over the default VFS, in the manner of SQLite's ext/misc/cksumvfs.c:
 * our sqlite3_file is followed in memory by the real one, and every method we
 * do not care about is passed straight through.  What we care about:
 *
 *  - Main database: SQLite reads and writes whole pages at page-aligned
 *    offsets.  A write seals the page (copy, encrypt in place, nonce and tag
 *    into the reserved bytes); a read opens it in the caller's buffer.
 *    Partial reads (the 100-byte header read at open, the 16-byte change
 *    counter) read the whole enclosing page and copy out the slice, so even
 *    the file header is ciphertext on disk.
 *  - WAL: a 32-byte header, then frames of a 24-byte header and a page image.
 *    Headers are plaintext (page number, salts, SQLite's checksums); page
 *    images are sealed with the page number and salts of their frame header
 *    (the WAL header's salts where SQLite leaves a frame header's zero until
 *    its commit: frame_salts) as associated data.  SQLite computes the frame checksum over the
 *    plaintext page in memory before xWrite and verifies it after xRead, so
 *    encrypting inside the VFS keeps the checksums consistent.  SQLite writes
 *    a frame's header before its page image, and we keep the last header
 *    written; a page image rewritten in place reads its header back first.
 *    The header is not written on its own: it goes to disk in one write with
 *    its sealed page image, which SQLite writes next (one pwrite per frame
 *    instead of two; any other call on the file writes a pending header
 *    first, so the file never differs from what SQLite believes it wrote
 *    when it looks, syncs, truncates or closes).  Sealed frames that follow
 *    one another are gathered too (up to WB_FRAMES, ~125 KiB) and written in one pwrite
 *    when the transaction's commit frame comes (a frame header with a
 *    non-zero database size: before SQLite publishes the frames in the WAL
 *    index, so no other connection can look for them earlier), or before
 *    any read, sync, size, truncate, close or write at an offset they cover:
 *    a Bundle's hundreds of frames cost a few writes instead of one each, and
 *    the kernel touches each page-cache page once instead of twice (a frame
 *    straddles two pages).
 *    During WAL recovery SQLite reads whole frames and stops at the first
 *    frame whose checksum fails (a torn write at a crash): a page that fails
 *    authentication there is returned as zeros, so the checksum fails and the
 *    log ends exactly where SQLite would end it.  A page image read by page
 *    number (an indexed, committed frame) that fails is an integrity error.
 *  - Everything else (rollback journal, temp files) is refused: the store
 *    runs in WAL mode with temp_store=MEMORY, so none is ever needed, and
 *    refusing them makes "no plaintext journal" a property, not a hope.
 *
 * xFetch (mmap) is not offered (io methods version 2), so SQLite always
 * reads through xRead and never sees ciphertext.
 *
 * Online rekey (salus_crypt_rekey_file, salus_store_rekey; docs/security.md
 * "Online rekey"): an instance may hold a *next* key; the first page it
 * authenticates under it becomes its write key (ratchet).  The rekey
 * rewrites database pages in place under the WAL checkpointer lock; a reader
 * racing such a rewrite re-reads the page under that lock held shared
 * (db_page_read), so it never reports a torn page as an integrity error.
 */
#include "store/vfs_crypt.h"

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/log.h"

#define PAGE SALUS_CRYPT_PAGE
#define RES SALUS_CRYPT_RESERVE
#define BODY (PAGE - RES) /* bytes of a page that are encrypted */
#define WAL_HDR 32
#define FRAME_HDR 24
#define FRAME (FRAME_HDR + PAGE)
#define FORMAT_XC 1  /* XChaCha20-Poly1305, 24-byte nonce */
#define FORMAT_GCM 2 /* AES-256-GCM under a key of the sealing instance (cipher_of) */
#define AD_LEN 24
#define GCM_SLOTS 4 /* AES-256-GCM contexts a handle keeps, per (key id, instance salt) */
/* Sealed WAL frames a writing handle gathers into one pwrite: SQLite's unix
 * VFS writes at most 0x1ffff bytes per call (seekAndWriteFd masks the count). */
#define WB_FRAMES 31
#define PENDING_PAGE (0x40000000u / PAGE + 1) /* SQLite's lock-byte page: never written */
#define MAX_KEYS 1024

_Static_assert(RES == 8 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "reserved bytes layout");
_Static_assert(WB_FRAMES * FRAME <= 0x1ffff, "gathered frames: one write of the unix VFS");
_Static_assert(SALUS_PAGE_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "page key length");
_Static_assert(SALUS_PAGE_KEY_LEN >= crypto_generichash_KEYBYTES_MIN &&
		       SALUS_PAGE_KEY_LEN <= crypto_generichash_KEYBYTES_MAX,
	       "page key as a BLAKE2b key");

enum kind { KIND_DB = 1, KIND_WAL = 2 };

/* Which of a store's database files a handle is, from its name: the audit
 * database is `<base>-audit.db` (salus_store_audit_path), its WAL that and
 * "-wal"; every other name is the resource database.  Bound into a format 2
 * page's associated data, so a page cannot move between the two files
 * (they are sealed under the same keys). */
enum { ROLE_MAIN = 0, ROLE_AUDIT = 1 };

static unsigned char role_of(const char *name, enum kind kind)
{
	static const char sfx[] = "-audit.db";
	size_t n = strlen(name), k = sizeof sfx - 1;
	if (kind == KIND_WAL && n >= 4 && !strcmp(name + n - 4, "-wal"))
		n -= 4;
	return n >= k && !memcmp(name + n - k, sfx, k) ? ROLE_AUDIT : ROLE_MAIN;
}

/* The decrypted-page cache of one instance, shared by its read-only connections.
 * In WAL mode SQLite drops a reader connection's whole page cache whenever the
 * database changed since its last read transaction — with the audit journal's
 * commits, many times a second — and every page it then reads again costs a
 * pread and an AEAD open.  This cache remembers, per database
 * page, the exact bytes read from disk and what they opened to: a read whose
 * bytes are identical to the remembered ones (ciphertext, key id, nonce, tag)
 * gets the remembered plaintext without the cipher — the same authenticated
 * result — and anything else goes the full way.  So tampering is caught exactly
 * as without the cache.  Only the readers' database pages: the writer and the
 * checkpointer read a page to replace it, or once from the WAL.  Direct-mapped,
 * PC_SLOTS slots (~8 KB each, 64 MB of address space touched only as used),
 * PC_LOCKS striped locks. */
#define PC_SLOTS 8192
#define PC_LOCKS 64
struct pc_slot {
	uint64_t key; /* 0: empty; else KIND << 56 | position + 1 */
	unsigned char ct[PAGE];
	unsigned char pt[BODY];
};
struct pcache {
	pthread_mutex_t locks[PC_LOCKS];
	struct pc_slot *slots;
};

/* The keys of one instance, in one sodium_malloc'd block (read-only once loaded). */
struct keyset {
	size_t n;
	struct salus_page_key k[];
};

struct salus_crypt_vfs {
	sqlite3_vfs base; /* first: SQLite hands this pointer back to us */
	sqlite3_vfs *root;
	struct keyset *keys;
	_Atomic uint32_t write_id; /* new pages are sealed under it */
	uint32_t next_id;          /* 0, or the key a rekey will switch to (see ratchet) */
	struct pcache *pc;         /* NULL: no cache (it could not be allocated) */
	bool gcm;                  /* new pages: AES-256-GCM (FORMAT_GCM), else XChaCha20-Poly1305 */
	unsigned char salt[16];    /* random: this instance's AES-256-GCM keys (cipher_of) */
	_Atomic uint64_t gcm_ctr;  /* the next AES-256-GCM nonce counter of this instance */
	unsigned gen;              /* fork_gen when it was created: it seals only then */
	char name[48];
};

/* An AES-256-GCM context for the pages one instance sealed under one page key:
 * key = BLAKE2b-256(key = page key, "salusPG2" || the instance's salt). */
struct gcm_slot {
	gnutls_aead_cipher_hd_t h; /* NULL: empty */
	uint32_t id;
	unsigned char salt[16];
};

struct cfile {
	sqlite3_file base; /* first */
	struct salus_crypt_vfs *v;
	sqlite3_file *real; /* follows this struct in the same allocation */
	enum kind kind;
	unsigned char prefix[16];  /* random nonce prefix of this handle */
	uint64_t ctr;              /* nonce counter of this handle */
	sqlite3_int64 hdr_off;     /* offset of the cached WAL frame header; -1: none */
	bool hdr_pending;          /* hdr is not on disk yet: it goes out with its page image */
	unsigned char hdr[FRAME_HDR];
	unsigned char *wb;         /* sealed frames not written yet (WB_FRAMES; allocated at the first) */
	size_t wb_n;               /* bytes in wb */
	sqlite3_int64 wb_off;      /* the WAL offset of wb[0] */
	unsigned char *buf;        /* FRAME bytes of scratch, then PAGE more (ct) */
	unsigned char *ct;         /* the bytes read, before they are opened (for the cache) */
	bool cache;                /* reads of this file use the instance's page cache */
	bool shm;                  /* the WAL index is mapped (xShmLock may be called) */
	unsigned char role;        /* ROLE_*: which of a store's databases (in a format 2 page's AD) */
	struct gcm_slot gcm[GCM_SLOTS]; /* the handle's AES-256-GCM contexts (one thread at a time) */
	unsigned gcm_next;         /* the slot replaced next */
};

#define CFILE_SIZE ((sizeof(struct cfile) + 15) & ~(size_t)15)

static atomic_ulong n_db, n_wal, n_refused, n_auth, n_pc_hit, n_pc_miss, n_seal_gcm, n_seal_xc, n_wal_writes;
static atomic_ulong n_instances;

/* Forks since the process started (pthread_atfork child handler).  A child
 * holds copies of its parent's instances — salt, counters, nonce prefixes —
 * so whatever either sealed next would reuse the other's nonces under the
 * same key: an instance seals only in the process (fork generation) that
 * created it, and a child that tries gets a write error.  Salus never forks
 * with a store open; this makes it a property. */
static atomic_uint fork_gen;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_child(void)
{
	atomic_fetch_add(&fork_gen, 1);
}

static void fork_watch(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

void salus_crypt_stats_get(struct salus_crypt_stats *out)
{
	out->opened_db = atomic_load(&n_db);
	out->opened_wal = atomic_load(&n_wal);
	out->refused = atomic_load(&n_refused);
	out->auth_failed = atomic_load(&n_auth);
	out->cache_hits = atomic_load(&n_pc_hit);
	out->cache_misses = atomic_load(&n_pc_miss);
	out->sealed_gcm = atomic_load(&n_seal_gcm);
	out->sealed_xchacha = atomic_load(&n_seal_xc);
	out->wal_frame_writes = atomic_load(&n_wal_writes);
}

/* ------------------------------------------------------------------------- */
/* sealing and opening one page                                               */

static void put_le32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const unsigned char *key_by_id(const struct keyset *ks, uint32_t id)
{
	for (size_t i = 0; i < ks->n; i++)
		if (ks->k[i].id == id)
			return ks->k[i].key;
	return NULL;
}

/* kind, for format 2 the file's role, page number, the 8-byte reserved
 * prefix (format, key id) and, for a WAL frame, its two salts. */
static void make_ad(unsigned char ad[AD_LEN], const struct cfile *cf, enum kind kind, uint32_t pgno,
		    const unsigned char *res, const unsigned char *salts)
{
	memset(ad, 0, AD_LEN);
	ad[0] = (unsigned char)kind;
	if (res[0] == FORMAT_GCM)
		ad[1] = cf->role; /* format 1 pages were sealed without it: they keep their AD */
	put_le32(ad + 4, pgno);
	memcpy(ad + 8, res, 8);
	if (salts)
		memcpy(ad + 16, salts, 8);
}

/* The AES-256-GCM context for pages sealed by the instance whose salt is given
 * under page key id (NULL: unknown key, or no memory).  The key of an instance
 * and page key is BLAKE2b-256 keyed with the page key over "salusPG2" and the
 * instance's 16 random bytes: each instance (one per store opening, in every
 * process) has keys of its own, and within one a page's nonce is a counter
 * that never repeats (docs/security.md, "Page format"). */
static gnutls_aead_cipher_hd_t gcm_ctx(struct cfile *cf, uint32_t id, const unsigned char salt[16])
{
	static const unsigned char ctx[8] = {'s', 'a', 'l', 'u', 's', 'P', 'G', '2'};
	unsigned char in[sizeof ctx + 16], key[32];
	const unsigned char *pk;
	struct gcm_slot *sl;

	for (size_t i = 0; i < GCM_SLOTS; i++)
		if (cf->gcm[i].h && cf->gcm[i].id == id && !memcmp(cf->gcm[i].salt, salt, 16))
			return cf->gcm[i].h;
	if (!(pk = key_by_id(cf->v->keys, id)))
		return NULL;
	memcpy(in, ctx, sizeof ctx);
	memcpy(in + sizeof ctx, salt, 16);
	crypto_generichash(key, sizeof key, in, sizeof in, pk, SALUS_PAGE_KEY_LEN);
	sl = &cf->gcm[cf->gcm_next++ % GCM_SLOTS];
	if (sl->h) {
		gnutls_aead_cipher_deinit(sl->h);
		sl->h = NULL;
	}
	gnutls_datum_t kd = {.data = key, .size = sizeof key};
	int rc = gnutls_aead_cipher_init(&sl->h, GNUTLS_CIPHER_AES_256_GCM, &kd);
	sodium_memzero(key, sizeof key);
	if (rc < 0) {
		sl->h = NULL;
		salus_log(SALUS_LOG_ERROR, "store.crypt.cipher_init", "rc=%d", rc);
		return NULL;
	}
	sl->id = id;
	memcpy(sl->salt, salt, 16);
	return sl->h;
}

static void gcm_release(struct cfile *cf)
{
	for (size_t i = 0; i < GCM_SLOTS; i++)
		if (cf->gcm[i].h) {
			gnutls_aead_cipher_deinit(cf->gcm[i].h); /* wipes the key schedule */
			cf->gcm[i].h = NULL;
		}
}

/* The 96-bit AES-256-GCM nonce of a page: four zero bytes, then its 64-bit counter. */
static void gcm_nonce(unsigned char nonce[12], const unsigned char *res)
{
	memset(nonce, 0, 4);
	memcpy(nonce + 4, res + 24, 8);
}

/* Seal a page in place under the write key, with the instance's cipher;
 * false if no AES-256-GCM context could be made (no memory). */
static bool seal(struct cfile *cf, unsigned char *page, enum kind kind, uint32_t pgno, const unsigned char *salts)
{
	struct salus_crypt_vfs *v = cf->v;
	unsigned char *res = page + BODY, ad[AD_LEN];
	uint32_t wid = atomic_load(&v->write_id);
	uint64_t c;

	if (atomic_load_explicit(&fork_gen, memory_order_relaxed) != v->gen) {
		salus_log(SALUS_LOG_ERROR, "store.crypt.forked", "op=seal (a store may not be used across fork)");
		return false;
	}
	memset(res, 0, 8);
	put_le32(res + 4, wid);
	if (v->gcm) {
		/* [8..24) the instance's salt (its key), [24..32) the instance's counter
		 * (never repeats under that key), [32..48) the tag */
		gnutls_aead_cipher_hd_t h = gcm_ctx(cf, wid, v->salt);
		unsigned char nonce[12];
		size_t tag_len = 16;
		if (!h)
			return false;
		res[0] = FORMAT_GCM;
		memcpy(res + 8, v->salt, 16);
		c = atomic_fetch_add_explicit(&v->gcm_ctr, 1, memory_order_relaxed);
		for (int i = 0; i < 8; i++)
			res[24 + i] = (unsigned char)(c >> (8 * i));
		gcm_nonce(nonce, res);
		make_ad(ad, cf, kind, pgno, res, salts);
		giovec_t adv = {.iov_base = ad, .iov_len = AD_LEN}, body = {.iov_base = page, .iov_len = BODY};
		if (gnutls_aead_cipher_encryptv2(h, nonce, sizeof nonce, &adv, 1, &body, 1, res + 32, &tag_len) < 0 ||
		    tag_len != 16)
			return false;
		atomic_fetch_add_explicit(&n_seal_gcm, 1, memory_order_relaxed);
		return true;
	}
	res[0] = FORMAT_XC;
	/* nonce: 16 random bytes per handle, then a 64-bit counter (never repeats
	 * within a handle; handles differ with overwhelming probability) */
	memcpy(res + 8, cf->prefix, 16);
	c = cf->ctr++;
	for (int i = 0; i < 8; i++)
		res[24 + i] = (unsigned char)(c >> (8 * i));
	make_ad(ad, cf, kind, pgno, res, salts);
	crypto_aead_xchacha20poly1305_ietf_encrypt_detached(page, res + 32, NULL, page, BODY, ad, AD_LEN, NULL,
							   res + 8, key_by_id(v->keys, wid));
	atomic_fetch_add_explicit(&n_seal_xc, 1, memory_order_relaxed);
	return true;
}

/* A page authenticated under the instance's next key proves that an online
 * rekey (salus_store_rekey, another process) has started writing under it:
 * from now on this process writes under it too, so nothing it writes later
 * is left under the old key (docs/security.md, "Online rekey"). */
static void ratchet(struct salus_crypt_vfs *v, uint32_t id)
{
	uint32_t old = atomic_load(&v->write_id);
	if (id == v->next_id && old != id && atomic_compare_exchange_strong(&v->write_id, &old, id))
		salus_log(SALUS_LOG_INFO, "store.crypt.write_key", "id=%u from=%u (online rekey)", id, old);
}

/* Open (authenticate and decrypt) a page in place, whichever of the two
 * formats sealed it; false if it fails (not counted: see unseal; the page
 * is then garbage, never to be used). */
static bool unseal_try(struct cfile *cf, unsigned char *page, enum kind kind, uint32_t pgno,
		       const unsigned char *salts)
{
	struct salus_crypt_vfs *v = cf->v;
	const unsigned char *res = page + BODY, *key;
	unsigned char ad[AD_LEN];
	uint32_t id = get_le32(res + 4);

	if (res[1] | res[2] | res[3])
		return false;
	if (res[0] == FORMAT_GCM) {
		gnutls_aead_cipher_hd_t h = gcm_ctx(cf, id, res + 8);
		unsigned char nonce[12];
		if (!h)
			return false;
		gcm_nonce(nonce, res);
		make_ad(ad, cf, kind, pgno, res, salts);
		giovec_t adv = {.iov_base = ad, .iov_len = AD_LEN}, body = {.iov_base = page, .iov_len = BODY};
		unsigned char tag[16]; /* (the API takes it non-const) */
		memcpy(tag, res + 32, 16);
		if (gnutls_aead_cipher_decryptv2(h, nonce, sizeof nonce, &adv, 1, &body, 1, tag, sizeof tag) < 0) {
			memset(page, 0, BODY); /* whatever it decrypted in place is not authentic */
			return false;
		}
	} else if (res[0] == FORMAT_XC) {
		if (!(key = key_by_id(v->keys, id)))
			return false;
		make_ad(ad, cf, kind, pgno, res, salts);
		if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(page, NULL, page, BODY, res + 32, ad, AD_LEN,
									res + 8, key) != 0)
			return false;
	} else {
		return false;
	}
	/* SQLite sees zero reserved bytes, always: it never writes them, so
	 * the page it later hands to xWrite has zeros there too, and the WAL
	 * frame checksum it computed over that page matches the page we give
	 * back to recovery (which checks it) */
	memset(page + BODY, 0, RES);
	if (id == v->next_id)
		ratchet(v, id);
	return true;
}

static bool unseal(struct cfile *cf, unsigned char *page, enum kind kind, uint32_t pgno, const unsigned char *salts)
{
	if (unseal_try(cf, page, kind, pgno, salts))
		return true;
	atomic_fetch_add(&n_auth, 1);
	return false;
}

static uint64_t pc_key(enum kind kind, sqlite3_int64 pos)
{
	return (uint64_t)kind << 56 | (uint64_t)(pos + 1);
}

static size_t pc_slot_of(uint64_t key)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	return (size_t)(h >> 40) % PC_SLOTS;
}

/* n bytes as read (ct): if they are the ones remembered for key, their plaintext into out. */
static bool pc_get(struct pcache *pc, uint64_t key, const unsigned char *ct, size_t n, unsigned char *out)
{
	if (!pc)
		return false;
	size_t i = pc_slot_of(key);
	struct pc_slot *sl = &pc->slots[i];
	pthread_mutex_t *mu = &pc->locks[i % PC_LOCKS];
	bool hit;
	pthread_mutex_lock(mu);
	/* the reserved bytes (nonce, tag) first: a changed page differs there */
	hit = sl->key == key && !memcmp(sl->ct + n - RES, ct + n - RES, RES) && !memcmp(sl->ct, ct, n - RES);
	if (hit)
		memcpy(out, sl->pt, BODY);
	pthread_mutex_unlock(mu);
	atomic_fetch_add_explicit(hit ? &n_pc_hit : &n_pc_miss, 1, memory_order_relaxed);
	return hit;
}

static void pc_put(struct pcache *pc, uint64_t key, const unsigned char *ct, size_t n, const unsigned char *pt)
{
	if (!pc)
		return;
	size_t i = pc_slot_of(key);
	struct pc_slot *sl = &pc->slots[i];
	pthread_mutex_t *mu = &pc->locks[i % PC_LOCKS];
	pthread_mutex_lock(mu);
	sl->key = key;
	memcpy(sl->ct, ct, n);
	memcpy(sl->pt, pt, BODY);
	pthread_mutex_unlock(mu);
}

/* Read and open database page pgno at off into page.  An online rekey
 * (another connection or process; salus_crypt_rekey_file) rewrites database
 * pages in place — same plaintext, new key — while it holds the WAL's
 * checkpointer lock, and a read racing that pwrite may see a torn page.  So a
 * page that fails is read again once, then once more while this connection
 * holds the checkpointer lock SHARED (waiting, up to DB_READ_WAIT_MS, while
 * someone holds it exclusively): nobody can be rewriting it then, so a
 * failure is an integrity error, never a race. */
#define WAL_CKPT_LOCK 1 /* SQLite's shm lock slot of the checkpointer (wal.c) */
#define DB_READ_WAIT_MS 10000
static int db_page_read(struct cfile *cf, unsigned char *page, sqlite3_int64 off, uint32_t pgno)
{
	const sqlite3_io_methods *m = cf->real->pMethods;
	int rc;

	uint64_t key = pc_key(KIND_DB, off);
	for (int t = 0; t < 2; t++) {
		if ((rc = m->xRead(cf->real, page, PAGE, off)) != SQLITE_OK)
			return rc; /* SHORT_READ: zero-filled, a page not yet written */
		if (cf->cache && pc_get(cf->v->pc, key, page, PAGE, page)) {
			uint32_t id = get_le32(page + BODY + 4);
			memset(page + BODY, 0, RES);
			if (id == cf->v->next_id)
				ratchet(cf->v, id);
			return SQLITE_OK;
		}
		if (cf->cache)
			memcpy(cf->ct, page, PAGE);
		if (unseal_try(cf, page, KIND_DB, pgno, NULL)) {
			if (cf->cache)
				pc_put(cf->v->pc, key, cf->ct, PAGE, page);
			return SQLITE_OK;
		}
	}
	if (cf->shm) {
		int lrc = SQLITE_BUSY;
		for (int waited = 0; waited < DB_READ_WAIT_MS; waited++) {
			if ((lrc = m->xShmLock(cf->real, WAL_CKPT_LOCK, 1, SQLITE_SHM_LOCK | SQLITE_SHM_SHARED)) != SQLITE_BUSY)
				break;
			sqlite3_sleep(1);
		}
		if (lrc == SQLITE_OK) {
			rc = m->xRead(cf->real, page, PAGE, off);
			bool ok = rc == SQLITE_OK && unseal_try(cf, page, KIND_DB, pgno, NULL);
			m->xShmLock(cf->real, WAL_CKPT_LOCK, 1, SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED);
			if (rc != SQLITE_OK)
				return rc;
			if (ok)
				return SQLITE_OK;
		}
	}
	atomic_fetch_add(&n_auth, 1);
	return SQLITE_IOERR_DATA;
}

static int integrity_fail(enum kind kind, uint32_t pgno)
{
	salus_log(SALUS_LOG_ERROR, "store.crypt.integrity", "file=%s page=%u",
		  kind == KIND_DB ? "db" : "wal", pgno);
	return SQLITE_IOERR_DATA;
}

/* Page 1 must carry the layout every sealed page relies on. */
static bool header_ok(const unsigned char *page)
{
	return !memcmp(page, "SQLite format 3", 16) && page[16] == (PAGE >> 8) && page[17] == (PAGE & 0xff) &&
	       page[20] == RES;
}

/* ------------------------------------------------------------------------- */
/* io methods                                                                 */

static struct cfile *cf_of(sqlite3_file *f)
{
	return (struct cfile *)f;
}

static int wal_flush(struct cfile *cf);

static int c_close(sqlite3_file *f)
{
	struct cfile *cf = cf_of(f);
	int frc = cf->real->pMethods ? wal_flush(cf) : SQLITE_OK;
	int rc = cf->real->pMethods ? cf->real->pMethods->xClose(cf->real) : SQLITE_OK;
	rc = rc != SQLITE_OK ? rc : frc;
	if (cf->buf)
		sodium_memzero(cf->buf, FRAME + PAGE);
	salus_free(cf->buf);
	cf->buf = NULL;
	salus_free(cf->wb); /* ciphertext only */
	cf->wb = NULL;
	gcm_release(cf);
	return rc;
}

static int real_read(struct cfile *cf, void *p, int n, sqlite3_int64 off)
{
	return cf->real->pMethods->xRead(cf->real, p, n, off);
}

static int real_write(struct cfile *cf, const void *p, int n, sqlite3_int64 off)
{
	return cf->real->pMethods->xWrite(cf->real, p, n, off);
}

/* Write the sealed frames gathered by wb_add. */
static int wb_flush(struct cfile *cf)
{
	if (!cf->wb_n)
		return SQLITE_OK;
	size_t n = cf->wb_n;
	cf->wb_n = 0;
	atomic_fetch_add_explicit(&n_wal_writes, 1, memory_order_relaxed);
	return real_write(cf, cf->wb, (int)n, cf->wb_off);
}

/* A sealed frame (header and page image, FRAME bytes) for offset off: kept
 * with the frames before it when it follows them, written with them at the
 * commit frame (its header's database size is not zero), when WB_FRAMES are
 * gathered, or before any other call on the file (see the file comment). */
static int wb_add(struct cfile *cf, const unsigned char *frame, sqlite3_int64 off)
{
	int rc;
	if (cf->wb_n && off != cf->wb_off + (sqlite3_int64)cf->wb_n && (rc = wb_flush(cf)) != SQLITE_OK)
		return rc;
	if (!cf->wb && !(cf->wb = salus_malloc((size_t)WB_FRAMES * FRAME))) {
		atomic_fetch_add_explicit(&n_wal_writes, 1, memory_order_relaxed);
		return real_write(cf, frame, FRAME, off); /* no memory for gathering: one write per frame */
	}
	if (!cf->wb_n)
		cf->wb_off = off;
	memcpy(cf->wb + cf->wb_n, frame, FRAME);
	cf->wb_n += FRAME;
	if (get_be32(frame + 4) || cf->wb_n == (size_t)WB_FRAMES * FRAME)
		return wb_flush(cf);
	return SQLITE_OK;
}

/* Write the gathered frames and a frame header held back by wal_write (see
 * the file comment). */
static int wal_flush(struct cfile *cf)
{
	int rc = wb_flush(cf);
	if (rc != SQLITE_OK || !cf->hdr_pending)
		return rc;
	cf->hdr_pending = false;
	return real_write(cf, cf->hdr, FRAME_HDR, cf->hdr_off);
}

static int db_read(struct cfile *cf, unsigned char *out, int n, sqlite3_int64 off)
{
	int rc;

	if (n == PAGE && off % PAGE == 0) {
		uint32_t pgno = (uint32_t)(off / PAGE) + 1;
		rc = db_page_read(cf, out, off, pgno);
		return rc == SQLITE_IOERR_DATA ? integrity_fail(KIND_DB, pgno) : rc;
	}
	/* a slice of one or more pages: open each whole page, copy out */
	while (n > 0) {
		sqlite3_int64 base = off - off % PAGE;
		int in = (int)(off - base), take = PAGE - in < n ? PAGE - in : n;
		uint32_t pgno = (uint32_t)(base / PAGE) + 1;
		rc = db_page_read(cf, cf->buf, base, pgno);
		if (rc == SQLITE_IOERR_SHORT_READ) {
			memset(out, 0, (size_t)n);
			return rc;
		}
		if (rc == SQLITE_IOERR_DATA)
			return integrity_fail(KIND_DB, pgno);
		if (rc != SQLITE_OK)
			return rc;
		memcpy(out, cf->buf + in, (size_t)take);
		out += take;
		off += take;
		n -= take;
	}
	return SQLITE_OK;
}

static int db_write(struct cfile *cf, const unsigned char *p, int n, sqlite3_int64 off)
{
	uint32_t pgno = (uint32_t)(off / PAGE) + 1;

	if (n != PAGE || off % PAGE || (pgno == 1 && !header_ok(p))) {
		salus_log(SALUS_LOG_ERROR, "store.crypt.refused", "file=db op=write bytes=%d", n);
		return SQLITE_IOERR_WRITE;
	}
	memcpy(cf->buf, p, PAGE);
	if (!seal(cf, cf->buf, KIND_DB, pgno, NULL))
		return SQLITE_IOERR_WRITE;
	return real_write(cf, cf->buf, PAGE, off);
}

/* The salts a WAL frame's page image is sealed with: its header's, which for
 * a valid frame are the WAL header's (SQLite checks that).  Within a
 * transaction that rewrote a spilled frame in place, SQLite writes the
 * later frames' headers with zero salts and checksums and fills them in at
 * the commit (walRewriteChecksums); such a frame is sealed and opened with
 * the WAL header's salts, the ones its header will carry.  So an image
 * stays bound to its WAL generation either way. */
static int frame_salts(struct cfile *cf, const unsigned char *fhdr, unsigned char salts[8])
{
	static const unsigned char zero[8];
	if (memcmp(fhdr + 8, zero, 8)) {
		memcpy(salts, fhdr + 8, 8);
		return SQLITE_OK;
	}
	int rc = real_read(cf, salts, 8, 16);
	return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_READ : rc;
}

static int wal_read(struct cfile *cf, unsigned char *out, int n, sqlite3_int64 off)
{
	sqlite3_int64 r;
	unsigned char salts[8];
	int rc;

	if ((rc = wal_flush(cf)) != SQLITE_OK)
		return rc;

	if (off + n <= WAL_HDR)
		return real_read(cf, out, n, off); /* the WAL header */
	if (off < WAL_HDR)
		goto out_refuse;
	r = (off - WAL_HDR) % FRAME;
	if (r + n <= FRAME_HDR)
		return real_read(cf, out, n, off); /* (part of) a frame header */
	if (r == 0 && n == FRAME) {
		/* a whole frame: recovery, or rewriting checksums */
		if ((rc = real_read(cf, out, n, off)) != SQLITE_OK || (rc = frame_salts(cf, out, salts)) != SQLITE_OK)
			return rc;
		if (!unseal(cf, out + FRAME_HDR, KIND_WAL, get_be32(out), salts))
			memset(out + FRAME_HDR, 0, PAGE); /* SQLite's checksum ends the log here */
		return SQLITE_OK;
	}
	if (r == FRAME_HDR && n == PAGE) {
		/* a committed page image, by frame number: read its header too */
		rc = real_read(cf, cf->buf, FRAME, off - FRAME_HDR);
		if (rc == SQLITE_IOERR_SHORT_READ) {
			memset(out, 0, PAGE);
			return rc;
		}
		if (rc != SQLITE_OK)
			return rc;
		uint32_t pgno = get_be32(cf->buf);
		if ((rc = frame_salts(cf, cf->buf, salts)) != SQLITE_OK)
			return rc;
		if (!unseal(cf, cf->buf + FRAME_HDR, KIND_WAL, pgno, salts))
			return integrity_fail(KIND_WAL, pgno);
		memcpy(out, cf->buf + FRAME_HDR, PAGE);
		return SQLITE_OK;
	}
out_refuse:
	salus_log(SALUS_LOG_ERROR, "store.crypt.refused", "file=wal op=read bytes=%d", n);
	return SQLITE_IOERR_READ;
}

static int wal_write(struct cfile *cf, const unsigned char *p, int n, sqlite3_int64 off)
{
	sqlite3_int64 r;
	int rc;

	bool with_hdr = false;

	/* gathered frames go first when this write could overlap them */
	if (cf->wb_n && off < cf->wb_off + (sqlite3_int64)cf->wb_n && (rc = wb_flush(cf)) != SQLITE_OK)
		return rc;
	/* the page image of a held-back header is the only write that takes it along */
	if (cf->hdr_pending && !(off == cf->hdr_off + FRAME_HDR && n == PAGE) && (rc = wal_flush(cf)) != SQLITE_OK)
		return rc;
	if (off == 0 && n == WAL_HDR) {
		if (get_be32(p + 8) != PAGE)
			goto out_refuse;
		return real_write(cf, p, n, off);
	}
	if (off < WAL_HDR)
		goto out_refuse;
	r = (off - WAL_HDR) % FRAME;
	if (r == 0 && n == FRAME_HDR) {
		memcpy(cf->hdr, p, FRAME_HDR);
		cf->hdr_off = off;
		cf->hdr_pending = true;
		return SQLITE_OK;
	}
	if (r == 0 && n == FRAME) {
		memcpy(cf->hdr, p, FRAME_HDR);
		cf->hdr_off = off;
		memcpy(cf->buf, p, FRAME);
	} else if (r == FRAME_HDR && n == PAGE) {
		if (cf->hdr_off != off - FRAME_HDR) {
			/* a page image rewritten in place: its header is on disk */
			if ((rc = real_read(cf, cf->hdr, FRAME_HDR, off - FRAME_HDR)) != SQLITE_OK)
				return rc == SQLITE_IOERR_SHORT_READ ? SQLITE_IOERR_WRITE : rc;
			cf->hdr_off = off - FRAME_HDR;
		}
		memcpy(cf->buf, cf->hdr, FRAME_HDR);
		memcpy(cf->buf + FRAME_HDR, p, PAGE);
		with_hdr = cf->hdr_pending;
	} else {
		goto out_refuse;
	}
	uint32_t pgno = get_be32(cf->buf);
	if (pgno == 1 && !header_ok(cf->buf + FRAME_HDR))
		goto out_refuse;
	unsigned char salts[8];
	if ((rc = frame_salts(cf, cf->buf, salts)) != SQLITE_OK)
		return rc;
	if (!seal(cf, cf->buf + FRAME_HDR, KIND_WAL, pgno, salts))
		return SQLITE_IOERR_WRITE;
	if (n == FRAME)
		return wb_add(cf, cf->buf, off);
	if (with_hdr) {
		cf->hdr_pending = false;
		return wb_add(cf, cf->buf, off - FRAME_HDR);
	}
	return real_write(cf, cf->buf + FRAME_HDR, PAGE, off);
out_refuse:
	salus_log(SALUS_LOG_ERROR, "store.crypt.refused", "file=wal op=write bytes=%d", n);
	return SQLITE_IOERR_WRITE;
}

static int c_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	struct cfile *cf = cf_of(f);
	return cf->kind == KIND_DB ? db_read(cf, p, n, off) : wal_read(cf, p, n, off);
}

static int c_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct cfile *cf = cf_of(f);
	return cf->kind == KIND_DB ? db_write(cf, p, n, off) : wal_write(cf, p, n, off);
}

static int c_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct cfile *cf = cf_of(f);
	int rc = wal_flush(cf);
	cf->hdr_off = -1;
	return rc != SQLITE_OK ? rc : cf->real->pMethods->xTruncate(cf->real, size);
}

static int c_sync(sqlite3_file *f, int flags)
{
	int rc = wal_flush(cf_of(f));
	return rc != SQLITE_OK ? rc : cf_of(f)->real->pMethods->xSync(cf_of(f)->real, flags);
}

static int c_size(sqlite3_file *f, sqlite3_int64 *size)
{
	int rc = wal_flush(cf_of(f));
	return rc != SQLITE_OK ? rc : cf_of(f)->real->pMethods->xFileSize(cf_of(f)->real, size);
}

static int c_lock(sqlite3_file *f, int lock)
{
	return cf_of(f)->real->pMethods->xLock(cf_of(f)->real, lock);
}

static int c_unlock(sqlite3_file *f, int lock)
{
	return cf_of(f)->real->pMethods->xUnlock(cf_of(f)->real, lock);
}

static int c_check_lock(sqlite3_file *f, int *out)
{
	return cf_of(f)->real->pMethods->xCheckReservedLock(cf_of(f)->real, out);
}

static int c_fcntl(sqlite3_file *f, int op, void *arg)
{
	return cf_of(f)->real->pMethods->xFileControl(cf_of(f)->real, op, arg);
}

static int c_sector(sqlite3_file *f)
{
	return cf_of(f)->real->pMethods->xSectorSize(cf_of(f)->real);
}

static int c_devchar(sqlite3_file *f)
{
	int d = cf_of(f)->real->pMethods->xDeviceCharacteristics(cf_of(f)->real);
	/* Writes stay whole pages: no WAL padding frames split at sector
	 * boundaries, no batch-atomic writes that bypass the WAL. */
	return (d | SQLITE_IOCAP_POWERSAFE_OVERWRITE) & ~SQLITE_IOCAP_BATCH_ATOMIC;
}

static int c_shm_map(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp)
{
	int rc = cf_of(f)->real->pMethods->xShmMap(cf_of(f)->real, pg, pgsz, extend, pp);
	if (rc == SQLITE_OK && *pp)
		cf_of(f)->shm = true;
	return rc;
}

static int c_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	return cf_of(f)->real->pMethods->xShmLock(cf_of(f)->real, off, n, flags);
}

static void c_shm_barrier(sqlite3_file *f)
{
	cf_of(f)->real->pMethods->xShmBarrier(cf_of(f)->real);
}

static int c_shm_unmap(sqlite3_file *f, int del)
{
	cf_of(f)->shm = false;
	return cf_of(f)->real->pMethods->xShmUnmap(cf_of(f)->real, del);
}

static const sqlite3_io_methods crypt_io = {
	2, /* no xFetch/xUnfetch: SQLite must never map ciphertext */
	c_close,  c_read,   c_write,   c_truncate,  c_sync,    c_size,        c_lock,     c_unlock,
	c_check_lock, c_fcntl, c_sector, c_devchar, c_shm_map, c_shm_lock, c_shm_barrier, c_shm_unmap,
	NULL,     NULL,
};

/* ------------------------------------------------------------------------- */
/* vfs methods                                                                */

static struct salus_crypt_vfs *cv_of(sqlite3_vfs *v)
{
	return (struct salus_crypt_vfs *)v;
}

static int v_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out_flags)
{
	struct salus_crypt_vfs *v = cv_of(vfs);
	struct cfile *cf = cf_of(f);
	int rc;

	memset(cf, 0, sizeof *cf);
	if (!name || !(flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL))) {
		/* journals and temp files: never needed (WAL, temp_store=MEMORY),
		 * and they would hold plaintext pages */
		atomic_fetch_add(&n_refused, 1);
		salus_log(SALUS_LOG_ERROR, "store.crypt.refused", "op=open flags=0x%x", (unsigned)flags);
		return SQLITE_CANTOPEN;
	}
	cf->v = v;
	cf->real = (sqlite3_file *)((char *)cf + CFILE_SIZE);
	cf->kind = flags & SQLITE_OPEN_MAIN_DB ? KIND_DB : KIND_WAL;
	cf->role = role_of(name, cf->kind);
	/* the cache serves the read-only connections' database pages: the writer and the
	 * checkpointer read a page to replace it (or once, from the WAL), so remembering it is waste */
	cf->cache = cf->kind == KIND_DB && (flags & SQLITE_OPEN_READONLY);
	cf->hdr_off = -1;
	randombytes_buf(cf->prefix, sizeof cf->prefix);
	if ((cf->buf = salus_malloc(FRAME + PAGE)))
		cf->ct = cf->buf + FRAME;
	if (!cf->buf)
		return SQLITE_NOMEM;
	rc = v->root->xOpen(v->root, name, cf->real, flags, out_flags);
	if (rc != SQLITE_OK) {
		salus_free(cf->buf);
		cf->buf = NULL;
		return rc;
	}
	atomic_fetch_add(cf->kind == KIND_DB ? &n_db : &n_wal, 1);
	cf->base.pMethods = &crypt_io;
	return SQLITE_OK;
}

static sqlite3_vfs *root_of(sqlite3_vfs *v)
{
	return cv_of(v)->root;
}

static int v_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	return root_of(v)->xDelete(root_of(v), name, sync_dir);
}

static int v_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	return root_of(v)->xAccess(root_of(v), name, flags, out);
}

static int v_fullpath(sqlite3_vfs *v, const char *name, int n, char *out)
{
	return root_of(v)->xFullPathname(root_of(v), name, n, out);
}

static void *v_dlopen(sqlite3_vfs *v, const char *path)
{
	return root_of(v)->xDlOpen(root_of(v), path);
}

static void v_dlerror(sqlite3_vfs *v, int n, char *msg)
{
	root_of(v)->xDlError(root_of(v), n, msg);
}

static void (*v_dlsym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	return root_of(v)->xDlSym(root_of(v), h, sym);
}

static void v_dlclose(sqlite3_vfs *v, void *h)
{
	root_of(v)->xDlClose(root_of(v), h);
}

static int v_random(sqlite3_vfs *v, int n, char *out)
{
	return root_of(v)->xRandomness(root_of(v), n, out);
}

static int v_sleep(sqlite3_vfs *v, int us)
{
	return root_of(v)->xSleep(root_of(v), us);
}

static int v_time(sqlite3_vfs *v, double *out)
{
	return root_of(v)->xCurrentTime(root_of(v), out);
}

static int v_lasterr(sqlite3_vfs *v, int n, char *out)
{
	return root_of(v)->xGetLastError(root_of(v), n, out);
}

static int v_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	return root_of(v)->xCurrentTimeInt64(root_of(v), out);
}

static int v_setsys(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p)
{
	return root_of(v)->xSetSystemCall(root_of(v), name, p);
}

static sqlite3_syscall_ptr v_getsys(sqlite3_vfs *v, const char *name)
{
	return root_of(v)->xGetSystemCall(root_of(v), name);
}

static const char *v_nextsys(sqlite3_vfs *v, const char *name)
{
	return root_of(v)->xNextSystemCall(root_of(v), name);
}

static struct pcache *pc_new(void)
{
	struct pcache *pc = salus_calloc(1, sizeof *pc);
	if (!pc)
		return NULL;
	/* calloc of a large block: fresh zero pages from the kernel, touched only as slots fill */
	if (!(pc->slots = salus_calloc(PC_SLOTS, sizeof *pc->slots))) {
		salus_free(pc);
		return NULL;
	}
	for (size_t i = 0; i < PC_LOCKS; i++)
		pthread_mutex_init(&pc->locks[i], NULL);
	return pc;
}

static void pc_free(struct pcache *pc)
{
	if (!pc)
		return;
	for (size_t i = 0; i < PC_LOCKS; i++)
		pthread_mutex_destroy(&pc->locks[i]);
	for (size_t i = 0; i < PC_SLOTS; i++) /* plaintext pages; slots never used were never touched */
		if (pc->slots[i].key)
			sodium_memzero(&pc->slots[i], sizeof pc->slots[i]);
	salus_free(pc->slots);
	salus_free(pc);
}

/* The cipher of new pages: SALUS_PAGE_CIPHER (xchacha20-poly1305, aes-256-gcm or
 * auto), by default AES-256-GCM when libsodium finds AES-NI and CLMUL (the check
 * the audit journal makes) — GnuTLS does the work, with its own hardware code —
 * and XChaCha20-Poly1305 otherwise.  Pages of both kinds are read anywhere
 * (without AES-NI, GnuTLS opens AES-256-GCM pages in software). */
static int cipher_choice(bool *gcm /* OUT */)
{
	const char *e = getenv("SALUS_PAGE_CIPHER");
	if (!e || !*e || !strcmp(e, "auto"))
		*gcm = crypto_aead_aes256gcm_is_available() != 0;
	else if (!strcmp(e, "aes-256-gcm"))
		*gcm = true;
	else if (!strcmp(e, "xchacha20-poly1305"))
		*gcm = false;
	else {
		salus_log(SALUS_LOG_ERROR, "store.crypt.cipher",
			  "SALUS_PAGE_CIPHER unknown (auto, aes-256-gcm or xchacha20-poly1305)");
		return SALUS_EINVALID;
	}
	return SALUS_OK;
}

int salus_crypt_vfs_new(const struct salus_page_key *keys, size_t n, uint32_t write_id, uint32_t next_id,
			struct salus_crypt_vfs **out)
{
	struct salus_crypt_vfs *v;
	sqlite3_vfs *root;
	bool have_write = false, have_next = next_id == 0, gcm;
	int rc;

	if (!keys || n == 0 || n > MAX_KEYS)
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		if (keys[i].id == 0)
			return SALUS_EINVALID;
		for (size_t j = 0; j < i; j++)
			if (keys[j].id == keys[i].id)
				return SALUS_EINVALID;
		have_write |= keys[i].id == write_id;
		have_next |= keys[i].id == next_id;
	}
	if (!have_write || !have_next)
		return SALUS_EINVALID;
	if (sodium_init() < 0)
		return SALUS_EINTERNAL;
	if ((rc = cipher_choice(&gcm)))
		return rc;
	pthread_once(&fork_once, fork_watch);
	if (!(root = sqlite3_vfs_find(NULL)))
		return SALUS_EINTERNAL;
	if (!(v = salus_calloc(1, sizeof *v)))
		return SALUS_ENOMEM;
	/* sodium_malloc puts the block against its guard page: round the size up
	 * so that the block starts aligned */
	if (!(v->keys = sodium_malloc((sizeof *v->keys + n * sizeof v->keys->k[0] + 15) & ~(size_t)15))) {
		salus_free(v);
		return SALUS_ENOMEM;
	}
	atomic_init(&v->write_id, write_id);
	v->gcm = gcm;
	v->gen = atomic_load(&fork_gen);
	randombytes_buf(v->salt, sizeof v->salt);
	atomic_init(&v->gcm_ctr, 0);
	v->next_id = next_id != write_id ? next_id : 0;
	v->keys->n = n;
	memcpy(v->keys->k, keys, n * sizeof keys[0]);
	sodium_mprotect_readonly(v->keys);
	v->root = root;
	v->pc = pc_new(); /* NULL: reads go the full way */
	snprintf(v->name, sizeof v->name, "salus-crypt-%lu", atomic_fetch_add(&n_instances, 1) + 1);
	v->base = (sqlite3_vfs){
		.iVersion = 3,
		.szOsFile = (int)(CFILE_SIZE + (size_t)root->szOsFile),
		.mxPathname = root->mxPathname,
		.zName = v->name,
		.pAppData = v,
		.xOpen = v_open,
		.xDelete = v_delete,
		.xAccess = v_access,
		.xFullPathname = v_fullpath,
		.xDlOpen = v_dlopen,
		.xDlError = v_dlerror,
		.xDlSym = v_dlsym,
		.xDlClose = v_dlclose,
		.xRandomness = v_random,
		.xSleep = v_sleep,
		.xCurrentTime = v_time,
		.xGetLastError = v_lasterr,
		.xCurrentTimeInt64 = v_time64,
		.xSetSystemCall = v_setsys,
		.xGetSystemCall = v_getsys,
		.xNextSystemCall = v_nextsys,
	};
	if (sqlite3_vfs_register(&v->base, 0) != SQLITE_OK) {
		sodium_free(v->keys);
		salus_free(v);
		return SALUS_EINTERNAL;
	}
	salus_log(SALUS_LOG_DEBUG, "store.crypt.cipher", "new_pages=%s", gcm ? "aes-256-gcm" : "xchacha20-poly1305");
	*out = v;
	return SALUS_OK;
}

const char *salus_crypt_vfs_name(const struct salus_crypt_vfs *v)
{
	return v->name;
}

void salus_crypt_vfs_free(struct salus_crypt_vfs *v)
{
	if (!v)
		return;
	sqlite3_vfs_unregister(&v->base);
	pc_free(v->pc);
	sodium_free(v->keys); /* wipes */
	salus_free(v);
}

/* ------------------------------------------------------------------------- */
/* rekey                                                                      */

#define CKPT_WAIT_MS 30000

/* Take or drop the checkpointer's lock on the database's shared memory: while
 * it is held nobody (no process) checkpoints, and a checkpoint is the only
 * thing that writes database pages in WAL mode, so the file's pages can be
 * rewritten in place with no lost update.  Writers keep appending to the WAL
 * and readers keep reading meanwhile. */
static int ckpt_lock(struct cfile *cf, bool take)
{
	int flags = (take ? SQLITE_SHM_LOCK : SQLITE_SHM_UNLOCK) | SQLITE_SHM_EXCLUSIVE;
	for (int waited = 0;; waited++) {
		int rc = cf->real->pMethods->xShmLock(cf->real, WAL_CKPT_LOCK, 1, flags);
		if (rc != SQLITE_BUSY || !take)
			return rc == SQLITE_OK ? SALUS_OK : rc == SQLITE_BUSY ? SALUS_EBUSY : SALUS_EIO;
		if (waited >= CKPT_WAIT_MS)
			return SALUS_EBUSY;
		sqlite3_sleep(1);
	}
}

/* A page never written: a checkpoint that may backfill only part of the WAL
 * (readers hold older snapshots) writes a later page before an earlier one,
 * leaving zeros between; SQLite reads such a page from the WAL, never from
 * the file.  Our VFS writes nothing else unsealed. */
static bool all_zero(const unsigned char *p)
{
	for (size_t i = 0; i < PAGE; i++)
		if (p[i])
			return false;
	return true;
}

int salus_crypt_rekey_file(sqlite3 *db, uint32_t from, uint32_t batch, salus_rekey_cb cb, void *ctx,
			   uint32_t *resealed)
{
	sqlite3_file *f = NULL;
	struct cfile *cf;
	sqlite3_int64 size = 0;
	uint32_t pg = from < 1 ? 1 : from, n_new = 0, npages;
	int rc = SALUS_OK;

	if (sqlite3_file_control(db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK || !f ||
	    f->pMethods != &crypt_io)
		return SALUS_EINVALID;
	cf = cf_of(f);
	if (!batch)
		batch = 256;
	for (;;) {
		/* one batch under the checkpointer lock (the file does not change
		 * size or content behind us while it is held) */
		if ((rc = ckpt_lock(cf, true)))
			break;
		if (cf->real->pMethods->xFileSize(cf->real, &size) != SQLITE_OK) {
			ckpt_lock(cf, false);
			rc = SALUS_EIO;
			break;
		}
		npages = (uint32_t)(size / PAGE);
		uint32_t end = pg + batch - 1 < npages ? pg + batch - 1 : npages;
		for (; pg <= end && !rc; pg++) {
			sqlite3_int64 off = (sqlite3_int64)(pg - 1) * PAGE;
			if (pg == PENDING_PAGE)
				continue;
			if (real_read(cf, cf->buf, PAGE, off) != SQLITE_OK)
				rc = SALUS_EIO;
			else if (get_le32(cf->buf + BODY + 4) == atomic_load(&cf->v->write_id) &&
				 (cf->buf[BODY] == FORMAT_XC || cf->buf[BODY] == FORMAT_GCM))
				continue;
			else if (all_zero(cf->buf))
				continue; /* a hole: a page whose frames are not checkpointed yet (it holds nothing) */
			else if (!unseal(cf, cf->buf, KIND_DB, pg, NULL))
				rc = (integrity_fail(KIND_DB, pg), SALUS_EINTEGRITY);
			else {
				if (!seal(cf, cf->buf, KIND_DB, pg, NULL) || real_write(cf, cf->buf, PAGE, off) != SQLITE_OK)
					rc = SALUS_EIO;
				n_new++;
			}
		}
		if (!rc && cf->real->pMethods->xSync(cf->real, SQLITE_SYNC_FULL) != SQLITE_OK)
			rc = SALUS_EIO;
		ckpt_lock(cf, false);
		if (rc)
			break;
		if (cb && (rc = cb(ctx, pg, npages)))
			break;
		if (pg > npages)
			break;
	}
	sodium_memzero(cf->buf, FRAME);
	if (resealed)
		*resealed = n_new;
	return rc;
}

/* Frames of the WAL file at `path` that are not sealed under key `id` (raw
 * scan of the reserved bytes; a frame torn by a concurrent append counts). */
static int wal_foreign(const char *path, uint32_t id, unsigned long *out)
{
	char wal[4096 + 8];
	unsigned char res[8];
	unsigned long n = 0;
	FILE *fp;

	if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal)
		return SALUS_EINVALID;
	if (!(fp = fopen(wal, "rb"))) {
		*out = 0;
		return SALUS_OK; /* no WAL */
	}
	for (long off = WAL_HDR + FRAME_HDR + BODY;; off += FRAME) {
		if (fseek(fp, off, SEEK_SET) || fread(res, 1, sizeof res, fp) != sizeof res)
			break;
		if ((res[0] != FORMAT_XC && res[0] != FORMAT_GCM) || get_le32(res + 4) != id)
			n++;
	}
	fclose(fp);
	*out = n;
	return SALUS_OK;
}

/* One value of a single-row pragma, as an integer; -1 on failure. */
static sqlite3_int64 pragma_int(sqlite3 *db, const char *sql, int col)
{
	sqlite3_stmt *st = NULL;
	sqlite3_int64 v = -1;
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, col);
	sqlite3_finalize(st);
	return v;
}

static int map_open_rc(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return SALUS_EBUSY;
	case SQLITE_NOMEM:
		return SALUS_ENOMEM;
	case SQLITE_CANTOPEN:
		return SALUS_ENOTFOUND;
	default:
		return rc == SQLITE_IOERR_DATA ? SALUS_EINTEGRITY : SALUS_EIO;
	}
}

/* Rekey one database file of the store (see salus_store_rekey): announce (the resource
 * database only: page 1 is the signal to switch), then sweep until nothing is left under
 * another key. */
static int rekey_path(struct salus_crypt_vfs *v, const char *path, uint32_t key_id, bool announce, uint32_t from,
		      salus_rekey_cb cb, void *ctx)
{
	sqlite3 *db = NULL;
	sqlite3_int64 uv;
	char sql[64];
	int rc;

	if ((rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_EXRESCODE, v->name)) != SQLITE_OK) {
		rc = map_open_rc(rc);
		goto out_db;
	}
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, 10000);
	/* Announce the new key: rewrite page 1 (user_version, unchanged) through
	 * the WAL under it.  Every connection reads page 1 at the start of its
	 * next transaction; a store that holds the key as its next key switches
	 * its write key on that read (vfs: ratchet), so from here on every page
	 * written anywhere is under the new key, and the sweeps below converge. */
	if ((rc = sqlite3_exec(db, "PRAGMA temp_store=MEMORY", NULL, NULL, NULL)) != SQLITE_OK) {
		rc = map_open_rc(rc);
		goto out_db;
	}
	if (!announce && pragma_int(db, "SELECT count(*) FROM sqlite_master", 0) < 0) {
		rc = SALUS_EIO; /* a read maps the WAL index, which the sweep's lock needs */
		goto out_db;
	}
	if (announce) {
		if ((rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) != SQLITE_OK) {
			rc = map_open_rc(rc);
			goto out_db;
		}
		if ((uv = pragma_int(db, "PRAGMA user_version", 0)) < 0) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			rc = SALUS_EIO;
			goto out_db;
		}
		snprintf(sql, sizeof sql, "PRAGMA user_version=%lld", (long long)uv);
		if ((rc = sqlite3_exec(db, sql, NULL, NULL, NULL)) != SQLITE_OK ||
		    (rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL)) != SQLITE_OK) {
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			rc = map_open_rc(rc);
			goto out_db;
		}
	}
	/* Sweep the file (from `from` on a resume), then move the WAL into it and
	 * sweep again from page 1, until a sweep finds nothing to re-seal and the
	 * WAL holds only frames under the new key (a writer that had not switched
	 * yet when a sweep passed its pages is caught by the next). */
	for (int pass = 0;; pass++) {
		uint32_t resealed = 0;
		unsigned long foreign = 0;
		if ((rc = salus_crypt_rekey_file(db, pass ? 1 : from, 256, cb, ctx, &resealed)))
			goto out_db;
		/* TRUNCATE: copy the WAL into the database (sealed under the new
		 * key by this connection) and empty it; waits for readers */
		sqlite3_int64 busy = pragma_int(db, "PRAGMA wal_checkpoint(TRUNCATE)", 0);
		if ((rc = wal_foreign(path, key_id, &foreign)))
			goto out_db;
		if (pass && !resealed && !foreign && busy == 0)
			break;
		if (pass >= 16) {
			rc = SALUS_EBUSY; /* something keeps writing under an old key */
			goto out_db;
		}
	}
	rc = SALUS_OK;
out_db:
	sqlite3_close(db);
	return rc;
}

int salus_store_rekey(const char *uri, const struct salus_store_opts *opts, uint32_t from, salus_rekey_cb cb,
		      void *ctx)
{
	struct salus_crypt_vfs *v = NULL;
	const char *path = uri;
	char apath[4096];
	struct stat st;
	int rc;

	if (!uri || !opts || !opts->page_keys)
		return SALUS_EINVALID;
	if (!strncmp(uri, "sqlite:", 7))
		path = uri + 7;
	else if (strstr(uri, "://") || !strncmp(uri, "pg:", 3))
		return SALUS_EINVALID;
	if (salus_store_audit_path(path, apath, sizeof apath))
		return SALUS_EINVALID;
	salus_store_global_init();
	if ((rc = salus_crypt_vfs_new(opts->page_keys, opts->npage_keys, opts->page_key_id, 0, &v)))
		return rc;
	/* the resource database (its page 1 announces the key), then the audit database, whole on
	 * every run (a resumed run's `from` and the progress are the resource database's) */
	if (!(rc = rekey_path(v, path, opts->page_key_id, true, from, cb, ctx)) && !stat(apath, &st))
		rc = rekey_path(v, apath, opts->page_key_id, false, 1, NULL, NULL);
	salus_crypt_vfs_free(v);
	return rc;
}
