/*
 * merkle.c — RFC 6962 / RFC 9162 Merkle tree math (see merkle.h): hashing,
 * the index arithmetic of inclusion and consistency proofs, complete-subtree
 * decomposition, an in-memory right edge, and proof verification.
 */
#include "audit/merkle.h"

#include <sodium.h>
#include <string.h>

#include "core/err.h"

void salus_merkle_leaf_hash(const void *data, size_t n, unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	static const unsigned char zero = 0;
	crypto_hash_sha256_state h;
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, &zero, 1);
	crypto_hash_sha256_update(&h, data, n);
	crypto_hash_sha256_final(&h, out);
}

void salus_merkle_node_hash(const unsigned char l[SALUS_MERKLE_HASH_LEN], const unsigned char r[SALUS_MERKLE_HASH_LEN],
			    unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	unsigned char buf[1 + 2 * SALUS_MERKLE_HASH_LEN];
	buf[0] = 1;
	memcpy(buf + 1, l, SALUS_MERKLE_HASH_LEN);
	memcpy(buf + 1 + SALUS_MERKLE_HASH_LEN, r, SALUS_MERKLE_HASH_LEN);
	crypto_hash_sha256(out, buf, sizeof buf);
}

void salus_merkle_empty_root(unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	crypto_hash_sha256(out, (const unsigned char *)"", 0);
}

/* The largest power of two strictly below n (n >= 2). */
static int64_t split_point(int64_t n)
{
	int64_t k = 1;
	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void path(int64_t m, int64_t a, int64_t n, struct salus_merkle_range *out, size_t *cnt)
{
	int64_t k;
	if (n <= 1)
		return;
	k = split_point(n);
	if (m < k) {
		path(m, a, k, out, cnt);
		out[(*cnt)++] = (struct salus_merkle_range){a + k, a + n};
	} else {
		path(m - k, a + k, n - k, out, cnt);
		out[(*cnt)++] = (struct salus_merkle_range){a, a + k};
	}
}

int salus_merkle_inclusion_ranges(int64_t m, int64_t n, struct salus_merkle_range out[SALUS_MERKLE_MAX_PROOF],
				  size_t *cnt)
{
	size_t c = 0;
	if (m < 0 || n <= 0 || m >= n)
		return SALUS_EINVALID;
	path(m, 0, n, out, &c);
	*cnt = c;
	return SALUS_OK;
}

static void subproof(int64_t m, int64_t a, int64_t n, bool b, struct salus_merkle_range *out, size_t *cnt)
{
	int64_t k;
	if (m == n) {
		if (!b)
			out[(*cnt)++] = (struct salus_merkle_range){a, a + n};
		return;
	}
	k = split_point(n);
	if (m <= k) {
		subproof(m, a, k, b, out, cnt);
		out[(*cnt)++] = (struct salus_merkle_range){a + k, a + n};
	} else {
		subproof(m - k, a + k, n - k, false, out, cnt);
		out[(*cnt)++] = (struct salus_merkle_range){a, a + k};
	}
}

int salus_merkle_consistency_ranges(int64_t m, int64_t n, struct salus_merkle_range out[SALUS_MERKLE_MAX_PROOF],
				    size_t *cnt)
{
	size_t c = 0;
	if (m < 0 || n < 0 || m > n)
		return SALUS_EINVALID;
	if (m > 0 && m < n)
		subproof(m, 0, n, true, out, &c);
	*cnt = c;
	return SALUS_OK;
}

size_t salus_merkle_decompose(int64_t a, int64_t b, struct salus_merkle_subtree out[64])
{
	size_t k = 0;
	while (a < b) {
		int l = 0;
		/* the largest aligned power of two that starts at a and fits */
		while (l < SALUS_MERKLE_MAX_LEVEL - 1 && !(a & ((int64_t)1 << l)) && ((int64_t)1 << (l + 1)) <= b - a)
			l++;
		out[k++] = (struct salus_merkle_subtree){l, a >> l};
		a += (int64_t)1 << l;
	}
	return k;
}

void salus_merkle_fold(const salus_merkle_hash *v, size_t k, unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	unsigned char h[SALUS_MERKLE_HASH_LEN];
	memcpy(h, v[k - 1], sizeof h);
	for (size_t i = k - 1; i-- > 0;)
		salus_merkle_node_hash(v[i], h, h);
	memcpy(out, h, sizeof h);
}

void salus_merkle_acc_init(struct salus_merkle_acc *acc)
{
	memset(acc, 0, sizeof *acc);
}

int salus_merkle_acc_push(struct salus_merkle_acc *acc, const unsigned char leaf[SALUS_MERKLE_HASH_LEN],
			  int (*cb)(void *ctx, int level, int64_t index, const unsigned char *hash), void *ctx)
{
	unsigned char cur[SALUS_MERKLE_HASH_LEN];
	int64_t n = acc->size;
	int l, rc;

	memcpy(cur, leaf, sizeof cur);
	for (l = 0; (n >> l) & 1; l++) {
		salus_merkle_node_hash(acc->front[l], cur, cur);
		if (cb && (rc = cb(ctx, l + 1, n >> (l + 1), cur)))
			return rc;
	}
	memcpy(acc->front[l], cur, sizeof cur);
	acc->size = n + 1;
	return SALUS_OK;
}

void salus_merkle_acc_root(const struct salus_merkle_acc *acc, unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	unsigned char h[SALUS_MERKLE_HASH_LEN];
	bool have = false;

	for (int l = 0; l < 63; l++) {
		if (!((acc->size >> l) & 1))
			continue;
		if (have)
			salus_merkle_node_hash(acc->front[l], h, h);
		else
			memcpy(h, acc->front[l], sizeof h);
		have = true;
	}
	if (!have)
		salus_merkle_empty_root(h);
	memcpy(out, h, sizeof h);
}

static bool eq(const unsigned char *a, const unsigned char *b)
{
	return memcmp(a, b, SALUS_MERKLE_HASH_LEN) == 0;
}

int salus_merkle_verify_inclusion(int64_t index, int64_t size, const unsigned char leaf[SALUS_MERKLE_HASH_LEN],
				  const salus_merkle_hash *proof, size_t np, const unsigned char root[SALUS_MERKLE_HASH_LEN])
{
	unsigned char r[SALUS_MERKLE_HASH_LEN];
	uint64_t fn, sn;

	if (index < 0 || size <= 0 || index >= size || np > SALUS_MERKLE_MAX_PROOF)
		return SALUS_EINVALID;
	fn = (uint64_t)index;
	sn = (uint64_t)size - 1;
	memcpy(r, leaf, sizeof r);
	for (size_t i = 0; i < np; i++) {
		if (sn == 0)
			return SALUS_EINVALID;
		if ((fn & 1) || fn == sn) {
			salus_merkle_node_hash(proof[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			salus_merkle_node_hash(r, proof[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && eq(r, root) ? SALUS_OK : SALUS_EINVALID;
}

int salus_merkle_verify_consistency(int64_t size1, int64_t size2, const unsigned char root1[SALUS_MERKLE_HASH_LEN],
				    const unsigned char root2[SALUS_MERKLE_HASH_LEN], const salus_merkle_hash *proof,
				    size_t np)
{
	unsigned char fr[SALUS_MERKLE_HASH_LEN], sr[SALUS_MERKLE_HASH_LEN];
	uint64_t fn, sn;
	size_t i = 0;

	if (size1 < 0 || size2 < 0 || size1 > size2 || np > SALUS_MERKLE_MAX_PROOF)
		return SALUS_EINVALID;
	if (size1 == size2)
		return np == 0 && eq(root1, root2) ? SALUS_OK : SALUS_EINVALID;
	if (size1 == 0)
		return np == 0 ? SALUS_OK : SALUS_EINVALID;
	if (np == 0)
		return SALUS_EINVALID;
	fn = (uint64_t)size1 - 1;
	sn = (uint64_t)size2 - 1;
	/* a power-of-two size1 is itself a node of the proof: root1 starts the path */
	if ((size1 & (size1 - 1)) == 0) {
		memcpy(fr, root1, sizeof fr);
	} else {
		memcpy(fr, proof[0], sizeof fr);
		i = 1;
	}
	memcpy(sr, fr, sizeof sr);
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < np; i++) {
		if (sn == 0)
			return SALUS_EINVALID;
		if ((fn & 1) || fn == sn) {
			salus_merkle_node_hash(proof[i], fr, fr);
			salus_merkle_node_hash(proof[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			salus_merkle_node_hash(sr, proof[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && eq(fr, root1) && eq(sr, root2) ? SALUS_OK : SALUS_EINVALID;
}
