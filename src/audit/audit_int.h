/*
 * audit_int.h — internals shared by the files of src/audit/ only: the
 * canonical event prefix, strict standard-base64 helpers for 32-byte hashes,
 * and the C2SP signed-note primitives.  Not to be included from other modules.
 */
#ifndef SALUS_AUDIT_INT_H
#define SALUS_AUDIT_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/audit.h"
#include "core/buf.h"

struct salus_signkey;

/* Every event the audit module writes starts with this, then its index, then `",`. */
#define SALUS_AUDIT_EVENT_PREFIX "{\"resourceType\":\"AuditEvent\",\"id\":\""

/* The event's post (everything after its index) in the store's compact form (store.h
 * salus_store_audit_encode), appended to post (event.c).  Errors: as salus_audit_event_render. */
int audit_event_compact(const struct salus_audit_req *rq, struct salus_buf *post);
/* SALUS_AUDIT_EVENT_PREFIX (the event's pre) in the compact form: static, *n bytes. */
const unsigned char *audit_event_compact_pre(size_t *n /* OUT */);

#define SALUS_B64_HASH_LEN 44 /* standard base64 of 32 bytes, with one '=' */

/* True when s is valid UTF-8 (what jansson accepts). */
bool utf8_ok(const char *s);

/* Append the standard base64 (RFC 4648 §4, padded) of n bytes to b. */
int b64std_append(struct salus_buf *b, const void *bin, size_t n);
/* Strict standard-base64 decode of exactly s[0..n) into at most cap bytes
 * (canonical padding only, no whitespace).  *out_n gets the length.
 * SALUS_EINVALID for anything else. */
int b64std_decode(const char *s, size_t n, unsigned char *bin, size_t cap, size_t *out_n);
/* Decode a base64 32-byte hash (exactly 44 characters). */
int b64std_hash(const char *s, size_t n, unsigned char out[SALUS_MERKLE_HASH_LEN]);

/* The C2SP note text of a checkpoint: "origin\nsize\nbase64(root)\n". */
int note_body(struct salus_buf *b, const char *origin, int64_t size, const unsigned char root[SALUS_MERKLE_HASH_LEN]);
/* Sign: body + "\n— origin base64(keyhash(4)||sig(64))\n" into out (NUL-terminated, salus_free). */
int note_sign(const struct salus_signkey *k, const char *origin, int64_t size,
	      const unsigned char root[SALUS_MERKLE_HASH_LEN], char **out);
/* The verifier key "origin+hex8(keyhash)+base64(0x01||pk)" into out (salus_free). */
int note_vkey(const struct salus_signkey *k, const char *origin, char **out);

#endif
