/*
 * audit_journal.c — the audit journal file (see audit_journal.h).
 */
#include "store/audit_journal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"

#define AJ_MAGIC "SALUSAJ1"
#define AJ_FORMAT 1u
#define AJ_REC_HEAD 40 /* length, key id, seq, nonce */
#define AJ_AD 16       /* the associated data: length, key id, seq */
#define AJ_TAG crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AJ_BODY_HEAD 16 /* ts_ms, pre length, post length */
/* a body: the compact form is at most SALUS_AUC_BOUND of an event of SALUS_MAX_AUDIT_EVENT */
#define AJ_BODY_MAX (AJ_BODY_HEAD + 2 * (size_t)SALUS_MAX_AUDIT_EVENT + 4)
/* the mapping (and the blocks reserved for it): the store empties the file at 4 MB (store_sqlite.c
 * JOURNAL_RESET_BYTES), so this holds that and the largest record without growing */
#define AJ_MAP_MIN ((size_t)8 << 20)
#define AJ_PAGE 4096 /* the smallest page the kernel writes back on its own */
#define AJ_AES 0x80000000u /* in a record's length word: sealed with AES-256-GCM (see audit_journal.h) */
#define AJ_LEN(w) ((w) & ~AJ_AES)

struct aj_key {
	uint32_t id;
	unsigned char k[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

struct salus_ajournal {
	int fd;
	unsigned char *map; /* the whole file, shared: a record copied here is in the page cache */
	size_t map_n;       /* its size = the file's size, every block allocated */
	uint64_t off;       /* end of the last record (append offset) */
	uint64_t hw;        /* bytes from here on are zero (UINT64_MAX: not known, since the open) */
	uint64_t tail;      /* the file's size at the open: a record past it is torn */
	struct aj_key *keys; /* sodium_malloc'd, read-only once derived */
	size_t nkeys;
	size_t wk;                    /* index of the write key */
	unsigned char nonce_base[16]; /* random per opening */
	/* AES-256-GCM (when the CPU has it): under a key of this opening, BLAKE2b(journal key,
	 * nonce_base), expanded once; sodium_malloc'd (aligned, guarded) */
	crypto_aead_aes256gcm_state *aes;
	unsigned char *buf;           /* one record being built */
	size_t cap;
};

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static int derive_keys(struct salus_ajournal *j, const struct salus_page_key *keys, size_t n, uint32_t write_id)
{
	size_t k = n ? n : 1;
	if (!(j->keys = sodium_allocarray(k, sizeof *j->keys)))
		return SALUS_ENOMEM;
	j->nkeys = k;
	j->wk = SIZE_MAX;
	if (!n) {
		memset(j->keys, 0, sizeof *j->keys); /* id 0, the all-zero key */
		j->wk = write_id == 0 ? 0 : SIZE_MAX;
	}
	for (size_t i = 0; i < n; i++) {
		j->keys[i].id = keys[i].id;
		if (crypto_kdf_derive_from_key(j->keys[i].k, sizeof j->keys[i].k, 1, "salusajl", keys[i].key))
			return SALUS_EINTERNAL;
		if (keys[i].id == write_id)
			j->wk = i;
	}
	sodium_mprotect_readonly(j->keys);
	return j->wk == SIZE_MAX ? SALUS_EINVALID : SALUS_OK;
}

/* The AES-256-GCM state of the opening whose 16-byte salt is given, under journal key k: key =
 * BLAKE2b-256(key k, salt).  Each opening has its own key, and within it a record's nonce is the
 * salt's last 4 bytes and the increasing sequence number: never reused.  Non-zero: no AES here. */
static int aes_state(crypto_aead_aes256gcm_state *st, const struct aj_key *k, const unsigned char salt[16])
{
	unsigned char key[crypto_aead_aes256gcm_KEYBYTES];
	int rc;
	if (!crypto_aead_aes256gcm_is_available())
		return -1;
	crypto_generichash(key, sizeof key, salt, 16, k->k, sizeof k->k);
	rc = crypto_aead_aes256gcm_beforenm(st, key);
	sodium_memzero(key, sizeof key);
	return rc;
}

static int write_all(int fd, const void *p, size_t n, uint64_t off)
{
	const unsigned char *c = p;
	while (n) {
		ssize_t w = pwrite(fd, c, n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SALUS_EIO;
		c += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return SALUS_OK;
}

/* The end of the chain of complete records of a journal's bytes, from the record headers alone: a
 * zero length word (the preallocated tail), a bad length or a record past n ends it. */
static uint64_t scan_end(const unsigned char *p, size_t n)
{
	size_t at = SALUS_AJ_HEADER;
	while (n - at >= AJ_REC_HEAD) {
		size_t len = AJ_LEN(get32(p + at));
		if (len < AJ_BODY_HEAD || len > AJ_BODY_MAX || n - at - AJ_REC_HEAD < len + AJ_TAG)
			break;
		at += AJ_REC_HEAD + len + AJ_TAG;
	}
	return at;
}

int salus_ajournal_open(const char *path, const struct salus_page_key *keys, size_t nkeys, uint32_t write_id,
			struct salus_ajournal **out)
{
	struct salus_ajournal *j;
	unsigned char head[SALUS_AJ_HEADER];
	struct stat sb;
	int rc;

	if (!path || !out || (nkeys && !keys))
		return SALUS_EINVALID;
	if (sodium_init() < 0)
		return SALUS_EINTERNAL;
	if (!(j = salus_calloc(1, sizeof *j)))
		return SALUS_ENOMEM;
	if ((j->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
		salus_free(j);
		return SALUS_EIO;
	}
	if (flock(j->fd, LOCK_EX | LOCK_NB)) {
		rc = errno == EWOULDBLOCK ? SALUS_EBUSY : SALUS_EIO;
		goto fail;
	}
	if ((rc = derive_keys(j, keys, nkeys, write_id)))
		goto fail;
	randombytes_buf(j->nonce_base, sizeof j->nonce_base);
	if (crypto_aead_aes256gcm_is_available() && (rc = salus_ajournal_set_aes(j, true)))
		goto fail;
	if (fstat(j->fd, &sb)) {
		rc = SALUS_EIO;
		goto fail;
	}
	memset(head, 0, sizeof head);
	memcpy(head, AJ_MAGIC, 8);
	put32(head + 8, AJ_FORMAT);
	if (sb.st_size == 0) {
		if ((rc = write_all(j->fd, head, sizeof head, 0)))
			goto fail;
		sb.st_size = sizeof head;
	} else {
		unsigned char got[SALUS_AJ_HEADER];
		if (sb.st_size < (off_t)sizeof got || pread(j->fd, got, sizeof got, 0) != (ssize_t)sizeof got ||
		    memcmp(got, head, sizeof got)) {
			rc = SALUS_EINVALID;
			goto fail;
		}
	}
	/* the file covers the mapping with allocated blocks: a store into the mapping then never
	 * needs a block the disk may not have (which would be SIGBUS, not an error) */
	j->tail = (uint64_t)sb.st_size;
	j->map_n = (size_t)sb.st_size > AJ_MAP_MIN ? (size_t)sb.st_size : AJ_MAP_MIN;
	if ((errno = posix_fallocate(j->fd, 0, (off_t)j->map_n))) {
		rc = SALUS_EIO;
		goto fail;
	}
	j->map = mmap(NULL, j->map_n, PROT_READ | PROT_WRITE, MAP_SHARED, j->fd, 0);
	if (j->map == MAP_FAILED) {
		j->map = NULL;
		rc = errno == ENOMEM ? SALUS_ENOMEM : SALUS_EIO;
		goto fail;
	}
	j->off = scan_end(j->map, (size_t)j->tail);
	j->hw = UINT64_MAX; /* a crash while emptying may have left records past a zero length */
	*out = j;
	return SALUS_OK;
fail:
	salus_ajournal_free(j);
	return rc;
}

void salus_ajournal_free(struct salus_ajournal *j)
{
	if (!j)
		return;
	if (j->map) {
		munmap(j->map, j->map_n);
		/* give the reserved blocks back; only the records stay (the lock is still ours) */
		if (ftruncate(j->fd, (off_t)j->off)) {
			/* the file keeps its zero tail: read as the end of the records */
		}
	}
	if (j->fd >= 0)
		close(j->fd); /* releases the lock */
	sodium_free(j->keys);
	sodium_free(j->aes); /* wipes it */
	salus_free(j->buf);
	salus_free(j);
}

static const struct aj_key *key_of(const struct salus_ajournal *j, uint32_t id)
{
	for (size_t i = 0; i < j->nkeys; i++)
		if (j->keys[i].id == id)
			return &j->keys[i];
	return NULL;
}

/* The record [a, e) failed authentication: is it the last one, torn by a power loss?  The file
 * is preallocated and written through the page cache, so after a crash of the machine a record
 * that crosses a page boundary can be on disk up to that boundary and zero after it.  Only that
 * shape, in the last record (a zero length word or the end of the file follows), is the end of
 * the journal; anything else is an integrity error. */
static bool torn_tail(const unsigned char *p, size_t n, size_t a, size_t e)
{
	size_t pb = (a / AJ_PAGE + 1) * AJ_PAGE;
	if (!(n - e < AJ_REC_HEAD || get32(p + e) == 0) || pb >= e)
		return false;
	for (size_t i = pb; i < e; i++)
		if (p[i])
			return false;
	return true;
}

int salus_ajournal_parse(const struct salus_ajournal *j, const unsigned char *p, size_t n, uint64_t after,
			 salus_aj_cb cb, void *ctx, uint64_t *last)
{
	unsigned char *body = NULL;
	size_t at = SALUS_AJ_HEADER, cap = 0;
	uint64_t prev = 0;
	int rc = SALUS_OK;
	/* the AES state of the last (key, opening) an AES record was sealed under */
	crypto_aead_aes256gcm_state aes;
	unsigned char aes_salt[16];
	const struct aj_key *aes_key = NULL;

	if (last)
		*last = 0;
	if (!j || (n && !p) || n < SALUS_AJ_HEADER || memcmp(p, AJ_MAGIC, 8) || get32(p + 8) != AJ_FORMAT)
		return SALUS_EINVALID;
	while (n - at >= AJ_REC_HEAD) {
		const unsigned char *h = p + at;
		uint32_t word = get32(h);
		size_t len = AJ_LEN(word);
		uint64_t seq = get64(h + 8);
		if (word == 0)
			break; /* the zero tail: no record here yet */
		if (len < AJ_BODY_HEAD || len > AJ_BODY_MAX) {
			rc = SALUS_EINTEGRITY;
			break;
		}
		if (n - at - AJ_REC_HEAD < len + AJ_TAG)
			break; /* torn: the write of the last record did not finish */
		const struct aj_key *k = key_of(j, get32(h + 4));
		if (!k || seq <= prev) {
			rc = SALUS_EINTEGRITY;
			break;
		}
		prev = seq;
		at += AJ_REC_HEAD + len + AJ_TAG;
		uint64_t prev_last = last ? *last : 0;
		if (last)
			*last = seq;
		if (seq <= after)
			continue; /* already in the log: not even opened */
		if (len > cap) {
			unsigned char *nb = salus_realloc(body, len);
			if (!nb) {
				rc = SALUS_ENOMEM;
				break;
			}
			body = nb;
			cap = len;
		}
		int bad;
		if (word & AJ_AES) {
			if (aes_key != k || memcmp(aes_salt, h + 16, sizeof aes_salt)) {
				if (aes_state(&aes, k, h + 16)) {
					rc = SALUS_EINTEGRITY; /* sealed with AES on a CPU that had it; this one has not */
					break;
				}
				memcpy(aes_salt, h + 16, sizeof aes_salt);
				aes_key = k;
			}
			bad = crypto_aead_aes256gcm_decrypt_detached_afternm(body, NULL, h + AJ_REC_HEAD, len,
									   h + AJ_REC_HEAD + len, h, AJ_AD, h + 28,
									   &aes);
		} else {
			bad = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(body, NULL, h + AJ_REC_HEAD, len,
										  h + AJ_REC_HEAD + len, h, AJ_AD, h + 16,
										  k->k);
		}
		if (bad) {
			if (torn_tail(p, n, at - AJ_REC_HEAD - len - AJ_TAG, at)) {
				if (last)
					*last = prev_last;
				break;
			}
			rc = SALUS_EINTEGRITY;
			break;
		}
		struct salus_aj_rec r = {.seq = seq, .ts_ms = (int64_t)get64(body)};
		uint32_t pn = get32(body + 8), qn = get32(body + 12);
		size_t rest = len - AJ_BODY_HEAD;
		if (pn > rest || (qn != SALUS_AJ_NO_POST && qn != rest - pn) || (qn == SALUS_AJ_NO_POST && pn != rest)) {
			rc = SALUS_EINTEGRITY;
			break;
		}
		r.pre = body + AJ_BODY_HEAD;
		r.pre_n = pn;
		if (qn != SALUS_AJ_NO_POST) {
			r.post = body + AJ_BODY_HEAD + pn;
			r.post_n = qn;
		}
		if ((rc = cb(ctx, &r)))
			break;
	}
	sodium_memzero(&aes, sizeof aes);
	salus_free(body);
	return rc;
}

int salus_ajournal_replay(struct salus_ajournal *j, uint64_t after, salus_aj_cb cb, void *ctx, uint64_t *last)
{
	if (!j || !cb)
		return SALUS_EINVALID;
	/* a file cut short (by a crash of the machine before the preallocation) ends at its old size */
	size_t n = (size_t)(j->tail > j->off ? j->tail : j->off);
	return salus_ajournal_parse(j, j->map, n < j->map_n ? n : j->map_n, after, cb, ctx, last);
}

/* Make the mapping hold need more bytes past off (rare: the store empties the file at 4 MB). */
static int grow(struct salus_ajournal *j, size_t need)
{
	size_t n = j->map_n;
	void *m;

	if (need > SIZE_MAX / 4 - j->off)
		return SALUS_ETOOLARGE;
	while (n - j->off < need)
		n *= 2;
	if ((errno = posix_fallocate(j->fd, 0, (off_t)n)))
		return SALUS_EIO;
	if ((m = mremap(j->map, j->map_n, n, MREMAP_MAYMOVE)) == MAP_FAILED)
		return SALUS_ENOMEM;
	j->map = m;
	j->map_n = n;
	return SALUS_OK;
}

int salus_ajournal_append(struct salus_ajournal *j, const struct salus_aj_rec *r)
{
	size_t qn = r->post ? r->post_n : 0;
	size_t len = AJ_BODY_HEAD + r->pre_n + qn, need = AJ_REC_HEAD + len + AJ_TAG;
	const struct aj_key *k = &j->keys[j->wk];
	unsigned char *b;
	int rc;

	if (r->pre_n > AJ_BODY_MAX || qn > AJ_BODY_MAX || len > AJ_BODY_MAX || (r->post && qn >= SALUS_AJ_NO_POST))
		return SALUS_ETOOLARGE;
	if (need > j->cap) {
		size_t cap = need < 4096 ? 4096 : need;
		if (!(b = salus_realloc(j->buf, cap)))
			return SALUS_ENOMEM;
		j->buf = b;
		j->cap = cap;
	}
	b = j->buf;
	put32(b, (uint32_t)len | (j->aes ? AJ_AES : 0));
	put32(b + 4, k->id);
	put64(b + 8, r->seq);
	memcpy(b + 16, j->nonce_base, sizeof j->nonce_base);
	put64(b + 32, r->seq);
	/* the body in place, then sealed in place */
	unsigned char *body = b + AJ_REC_HEAD;
	put64(body, (uint64_t)r->ts_ms);
	put32(body + 8, (uint32_t)r->pre_n);
	put32(body + 12, r->post ? (uint32_t)qn : SALUS_AJ_NO_POST);
	if (r->pre_n)
		memcpy(body + AJ_BODY_HEAD, r->pre, r->pre_n);
	if (qn)
		memcpy(body + AJ_BODY_HEAD + r->pre_n, r->post, qn);
	if (j->aes) /* ~half the cost of XChaCha20-Poly1305 on a record this size (AES-NI) */
		crypto_aead_aes256gcm_encrypt_detached_afternm(body, body + len, NULL, body, len, b, AJ_AD, NULL, b + 28,
							       j->aes);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(body, body + len, NULL, body, len, b, AJ_AD, NULL,
								    b + 16, k->k);
	if (j->map_n - j->off < need && (rc = grow(j, need)))
		return rc;
	/* sealed here first, so the page cache never holds the plaintext; the length word last: until
	 * it is stored the place reads as the zero tail, so a crash of the process at any instruction
	 * leaves either the whole record or none of it */
	unsigned char *at = j->map + j->off;
	memcpy(at + 4, b + 4, need - 4);
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(at, b, 4);
	j->off += need;
	if (j->hw != UINT64_MAX && j->off > j->hw)
		j->hw = j->off;
	return SALUS_OK;
}

int salus_ajournal_reset(struct salus_ajournal *j)
{
	if (j->hw == UINT64_MAX) {
		/* past a zero length there may be records an earlier opening left: drop every page and
		 * allocate the blocks again (nothing touches the mapping meanwhile: we own the file) */
		if (ftruncate(j->fd, SALUS_AJ_HEADER) || (errno = posix_fallocate(j->fd, 0, (off_t)j->map_n)))
			return SALUS_EIO;
	} else if (j->hw > SALUS_AJ_HEADER) {
		/* the first length word first: from then on the file reads as empty */
		memset(j->map + SALUS_AJ_HEADER, 0, 4);
		atomic_signal_fence(memory_order_seq_cst);
		memset(j->map + SALUS_AJ_HEADER + 4, 0, j->hw - SALUS_AJ_HEADER - 4);
	}
	j->off = j->hw = j->tail = SALUS_AJ_HEADER;
	return SALUS_OK;
}

uint64_t salus_ajournal_last_seq_of(const unsigned char *p, size_t n)
{
	size_t at = SALUS_AJ_HEADER;
	uint64_t last = 0;
	if (!p || n < SALUS_AJ_HEADER || memcmp(p, AJ_MAGIC, 8))
		return 0;
	while (n - at >= AJ_REC_HEAD) {
		size_t len = AJ_LEN(get32(p + at));
		if (len < AJ_BODY_HEAD || len > AJ_BODY_MAX || n - at - AJ_REC_HEAD < len + AJ_TAG)
			break;
		last = get64(p + at + 8);
		at += AJ_REC_HEAD + len + AJ_TAG;
	}
	return last;
}

uint64_t salus_ajournal_last_seq(const char *path)
{
	/* headers only, through a window: the file is mostly its preallocated zero tail */
	enum { WIN = 64 * 1024 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	unsigned char *w;
	uint64_t last = 0, at = SALUS_AJ_HEADER, w0 = 0, wn = 0;
	struct stat sb;

	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) || sb.st_size < SALUS_AJ_HEADER || !(w = salus_malloc(WIN))) {
		close(fd);
		return 0;
	}
	uint64_t size = (uint64_t)sb.st_size;
	unsigned char m[8];
	bool ok = pread(fd, m, sizeof m, 0) == (ssize_t)sizeof m && !memcmp(m, AJ_MAGIC, sizeof m);
	while (ok) {
		if (at < w0 || at + AJ_REC_HEAD > w0 + wn) { /* the header is not in the window: move it */
			ssize_t r = pread(fd, w, WIN, (off_t)at);
			if (r < (ssize_t)AJ_REC_HEAD)
				break;
			w0 = at;
			wn = (uint64_t)r;
		}
		const unsigned char *h = w + (at - w0);
		size_t len = AJ_LEN(get32(h));
		if (len < AJ_BODY_HEAD || len > AJ_BODY_MAX || size - at - AJ_REC_HEAD < len + AJ_TAG)
			break;
		last = get64(h + 8);
		at += AJ_REC_HEAD + len + AJ_TAG;
	}
	salus_free(w);
	close(fd);
	return last;
}

int salus_ajournal_set_aes(struct salus_ajournal *j, bool on)
{
	if (!on) {
		sodium_free(j->aes);
		j->aes = NULL;
		return SALUS_OK;
	}
	if (j->aes)
		return SALUS_OK;
	if (!crypto_aead_aes256gcm_is_available())
		return SALUS_EINVALID;
	if (!(j->aes = sodium_malloc(sizeof *j->aes)))
		return SALUS_ENOMEM;
	return aes_state(j->aes, &j->keys[j->wk], j->nonce_base) ? SALUS_EINTERNAL : SALUS_OK;
}

uint64_t salus_ajournal_size(const struct salus_ajournal *j)
{
	return j->off - SALUS_AJ_HEADER;
}
