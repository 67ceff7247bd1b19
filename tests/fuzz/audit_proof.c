/*
 * audit_proof.c — libFuzzer target fuzz_audit_proof: the JSON Merkle proof
 * reader and RFC 9162 verifier behind `salus audit check-proof`
 * (salus_audit_proof_check), and the signed-note parser of checkpoints
 * (salus_audit_note_verify), on arbitrary input.  Nothing may crash or leak,
 * and the verdict is always one of the three exit codes.
 * Seeds: tests/fuzz/corpus/audit_proof/ (valid and damaged proofs, notes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "audit/audit.h"
#include "core/alloc.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static const char vkey[] = "salus.audit/fuzz+a58e34c7+AeJFBWNQAI4ifOQZxRkjInc1+8J3xwygmpwuQpIVSUGj";
	struct salus_audit_note note;
	const char *why = NULL;

	if (!ready) {
		salus_alloc_install();
		if (salus_crypto_init())
			abort();
		ready = 1;
	}
	enum salus_proof_verdict v = salus_audit_proof_check((const char *)data, size, &why);
	if (v != SALUS_PROOF_VALID && v != SALUS_PROOF_INVALID && v != SALUS_PROOF_UNREADABLE)
		abort();
	if (!why)
		abort();
	salus_audit_note_verify((const char *)data, size, NULL, &note);
	salus_audit_note_verify((const char *)data, size, vkey, &note);
	return 0;
}
