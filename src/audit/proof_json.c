/*
 * proof_json.c — reading a JSON inclusion or consistency proof in the format
 * of the transparency-dev test vectors (base64 hashes) and checking it
 * offline.  This is a parser of untrusted input: strict JSON (jansson, no
 * duplicate keys, depth and size limits), strict base64, every size bounded;
 * it has a libFuzzer target (tests/fuzz/audit_proof.c).
 */
#include "audit/audit_int.h"

#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/limits.h"

#define MAX_PROOF_JSON (1u << 20)

/* A hash member: not a string → unreadable; a string that is not a 32-byte hash → invalid. */
static enum salus_proof_verdict get_hash(json_t *o, const char *k, unsigned char out[SALUS_MERKLE_HASH_LEN], bool *bad)
{
	json_t *v = json_object_get(o, k);
	if (!json_is_string(v))
		return SALUS_PROOF_UNREADABLE;
	if (b64std_hash(json_string_value(v), json_string_length(v), out))
		*bad = true;
	return SALUS_PROOF_VALID;
}

/* Numbers are read as doubles (JSON_DECODE_INT_AS_REAL) so that a huge index
 * such as 2^64-1 is a readable, invalid proof rather than unparseable JSON;
 * exact integers up to 2^53 are sizes, anything else is invalid. */
static enum salus_proof_verdict get_size(json_t *o, const char *k, int64_t *out, bool *bad)
{
	json_t *v = json_object_get(o, k);
	double d;
	if (!json_is_number(v))
		return SALUS_PROOF_UNREADABLE;
	d = json_number_value(v);
	if (!(d >= 0 && d < 9007199254740992.0) || d != (double)(int64_t)d) {
		*bad = true;
		*out = 0;
		return SALUS_PROOF_VALID;
	}
	*out = (int64_t)d;
	return SALUS_PROOF_VALID;
}

static enum salus_proof_verdict get_proof(json_t *o, salus_merkle_hash *p, size_t *np, bool *bad)
{
	json_t *v = json_object_get(o, "proof"), *e;
	size_t i;
	*np = 0;
	if (!v || json_is_null(v))
		return SALUS_PROOF_VALID;
	if (!json_is_array(v))
		return SALUS_PROOF_UNREADABLE;
	json_array_foreach(v, i, e) {
		if (!json_is_string(e))
			return SALUS_PROOF_UNREADABLE;
		if (i >= SALUS_MERKLE_MAX_PROOF) {
			*bad = true; /* longer than any proof can be */
			continue;
		}
		if (b64std_hash(json_string_value(e), json_string_length(e), p[i]))
			*bad = true;
	}
	*np = json_array_size(v) > SALUS_MERKLE_MAX_PROOF ? SALUS_MERKLE_MAX_PROOF : json_array_size(v);
	return SALUS_PROOF_VALID;
}

enum salus_proof_verdict salus_audit_proof_check(const char *text, size_t n, const char **why)
{
	salus_merkle_hash proof[SALUS_MERKLE_MAX_PROOF];
	unsigned char r1[SALUS_MERKLE_HASH_LEN], r2[SALUS_MERKLE_HASH_LEN];
	enum salus_proof_verdict v = SALUS_PROOF_UNREADABLE;
	const char *reason = "not a JSON object";
	json_error_t err;
	json_t *o;
	bool bad = false;
	size_t np = 0;

	if (!text || n > MAX_PROOF_JSON) {
		reason = "input too large";
		goto out;
	}
	o = json_loadb(text, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &err);
	if (!json_is_object(o)) {
		json_decref(o);
		goto out;
	}
	if (json_object_get(o, "leafIdx")) {
		int64_t idx, size;
		reason = "inclusion proof needs integer leafIdx and treeSize, string root and leafHash, proof array";
		if (get_size(o, "leafIdx", &idx, &bad) || get_size(o, "treeSize", &size, &bad) ||
		    get_hash(o, "root", r1, &bad) || get_hash(o, "leafHash", r2, &bad) || get_proof(o, proof, &np, &bad))
			goto out_json;
		v = SALUS_PROOF_INVALID;
		reason = "a hash or size is malformed";
		if (bad)
			goto out_json;
		reason = "the inclusion proof does not verify";
		if (salus_merkle_verify_inclusion(idx, size, r2, (const salus_merkle_hash *)proof, np, r1))
			goto out_json;
	} else if (json_object_get(o, "size1")) {
		int64_t s1, s2;
		reason = "consistency proof needs integer size1 and size2, string root1 and root2, proof array";
		if (get_size(o, "size1", &s1, &bad) || get_size(o, "size2", &s2, &bad) || get_hash(o, "root1", r1, &bad) ||
		    get_hash(o, "root2", r2, &bad) || get_proof(o, proof, &np, &bad))
			goto out_json;
		v = SALUS_PROOF_INVALID;
		reason = "a hash or size is malformed";
		if (bad)
			goto out_json;
		reason = "the consistency proof does not verify";
		if (salus_merkle_verify_consistency(s1, s2, r1, r2, (const salus_merkle_hash *)proof, np))
			goto out_json;
	} else {
		reason = "neither an inclusion proof (leafIdx) nor a consistency proof (size1)";
		goto out_json;
	}
	v = SALUS_PROOF_VALID;
	reason = "valid";
out_json:
	json_decref(o);
out:
	if (why)
		*why = reason;
	return v;
}
