/*
 * merkle.h — RFC 6962 / RFC 9162 Merkle tree hashing, proofs and their
 * verification (SHA-256, leaf = H(0x00 || data), node = H(0x01 || l || r)).
 *
 * Pure functions on indexes and hashes; no storage.  Proof *generation* is
 * split in two so that a log with millions of leaves needs only O(log n)
 * reads: salus_merkle_*_ranges() say which subtree hashes MTH(D[a:b]) make up
 * a proof, salus_merkle_decompose() splits each range into complete subtrees
 * (which the store keeps, see store.h), and salus_merkle_fold() combines
 * their hashes.  Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 and is
 * what `salus audit check-proof` and independent auditors run.
 */
#ifndef SALUS_AUDIT_MERKLE_H
#define SALUS_AUDIT_MERKLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SALUS_MERKLE_HASH_LEN 32
#define SALUS_MERKLE_MAX_PROOF 126 /* nodes in any proof for a tree below 2^63 leaves */
#define SALUS_MERKLE_MAX_LEVEL 63

typedef unsigned char salus_merkle_hash[SALUS_MERKLE_HASH_LEN];

/* H(0x00 || data) */
void salus_merkle_leaf_hash(const void *data, size_t n, unsigned char out[SALUS_MERKLE_HASH_LEN] /* OUT */);
/* H(0x01 || l || r); out may alias l or r. */
void salus_merkle_node_hash(const unsigned char l[SALUS_MERKLE_HASH_LEN], const unsigned char r[SALUS_MERKLE_HASH_LEN],
			    unsigned char out[SALUS_MERKLE_HASH_LEN] /* OUT */);
/* The root of the empty tree, SHA-256 of nothing (RFC 6962 §2.1). */
void salus_merkle_empty_root(unsigned char out[SALUS_MERKLE_HASH_LEN] /* OUT */);

/* ---- proof generation by ranges ---- */

/* A run of leaves [a, b) that is a subtree of the RFC 6962 tree. */
struct salus_merkle_range {
	int64_t a, b;
};

/* The ranges whose hashes form the inclusion proof of leaf m in a tree of n
 * leaves (RFC 6962 §2.1.1 PATH), in proof order.  *cnt <= SALUS_MERKLE_MAX_PROOF.
 * Errors: SALUS_EINVALID (m >= n or negative). */
int salus_merkle_inclusion_ranges(int64_t m, int64_t n, struct salus_merkle_range out[SALUS_MERKLE_MAX_PROOF],
				  size_t *cnt /* OUT */);
/* The ranges of the consistency proof from size m to size n (RFC 6962 §2.1.2
 * PROOF), in proof order; empty when m == n or m == 0.
 * Errors: SALUS_EINVALID (m > n or negative). */
int salus_merkle_consistency_ranges(int64_t m, int64_t n, struct salus_merkle_range out[SALUS_MERKLE_MAX_PROOF],
				    size_t *cnt /* OUT */);

/* One complete subtree: leaves [index << level, (index + 1) << level). */
struct salus_merkle_subtree {
	int level;
	int64_t index;
};
/* Split [a, b) (a < b) into complete subtrees, left to right, largest first;
 * returns how many (at most 64).  The hash of the range is
 * salus_merkle_fold() of their hashes in this order. */
size_t salus_merkle_decompose(int64_t a, int64_t b, struct salus_merkle_subtree out[64] /* OUT */);
/* Fold k >= 1 subtree hashes (left to right) into the hash of their range:
 * right to left, h = H(0x01 || v[i] || h). */
void salus_merkle_fold(const salus_merkle_hash *v, size_t k, unsigned char out[SALUS_MERKLE_HASH_LEN] /* OUT */);

/* ---- an in-memory right edge (compact range) ---- */

/* Accumulates leaves in order and gives the root of what it holds in O(log n). */
struct salus_merkle_acc {
	int64_t size;
	salus_merkle_hash front[64]; /* front[l]: the complete subtree that bit l of size stands for */
};
void salus_merkle_acc_init(struct salus_merkle_acc *acc);
/* Add a leaf hash.  For every subtree this completes, cb (if not NULL) is told
 * its level (>= 1), index and hash; a non-zero return stops and is returned. */
int salus_merkle_acc_push(struct salus_merkle_acc *acc, const unsigned char leaf[SALUS_MERKLE_HASH_LEN],
			  int (*cb)(void *ctx, int level, int64_t index, const unsigned char *hash), void *ctx);
/* The root of the acc->size leaves pushed so far (the empty root for none). */
void salus_merkle_acc_root(const struct salus_merkle_acc *acc, unsigned char out[SALUS_MERKLE_HASH_LEN] /* OUT */);

/* ---- verification (RFC 9162) ---- */

/* SALUS_OK when proof (np hashes) proves that `leaf` is leaf `index` of the
 * tree of `size` leaves with root `root`; SALUS_EINVALID otherwise. */
int salus_merkle_verify_inclusion(int64_t index, int64_t size, const unsigned char leaf[SALUS_MERKLE_HASH_LEN],
				  const salus_merkle_hash *proof, size_t np, const unsigned char root[SALUS_MERKLE_HASH_LEN]);
/* SALUS_OK when proof shows the tree (size2, root2) extends (size1, root1);
 * SALUS_EINVALID otherwise.  size1 == size2 needs an empty proof and equal
 * roots; size1 == 0 needs an empty proof. */
int salus_merkle_verify_consistency(int64_t size1, int64_t size2, const unsigned char root1[SALUS_MERKLE_HASH_LEN],
				    const unsigned char root2[SALUS_MERKLE_HASH_LEN], const salus_merkle_hash *proof,
				    size_t np);

#endif
