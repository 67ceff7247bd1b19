/*
 * audit_journal.h — the audit journal (internal to src/store/; docs/audit.md
 * "The journal").
 *
 * An audited read must not be released before its AuditEvent is written, but
 * a durable commit of the Merkle log per request (or per small group) cost an
 * audited read twice the CPU of an unaudited one.  The journal splits the two:
 * the request's thread appends the event, sealed, to this file next to the
 * database (one pwrite: the event is with the operating system and survives a
 * crash of the process) and releases the response; the store's writer moves
 * journaled events into the log in journal order, many per durable commit,
 * within a few milliseconds, and records in the same transaction the highest
 * sequence number moved.  After a crash, opening the store moves what the
 * journal holds beyond that number.  Once everything in it is in the log the
 * file is emptied.
 *
 * The owner maps the file (MAP_SHARED) and copies records into it: no system
 * call per event, and a copied record is in the page cache, safe from a crash
 * of the process.  The file is preallocated (its blocks reserved, so a store
 * into the mapping cannot fault for want of disk); a zero length word is the
 * end of the records, and a record's length word is stored after the rest of
 * it.  Closing cuts the file back to its records.
 *
 * File: a 16-byte header ("SALUSAJ1", format 1 as a little-endian u32, zero),
 * then records:
 *
 *   [0..3]   body length L (little endian)
 *   [4..7]   id of the page key the record is sealed under (0: none, see below)
 *   [8..15]  sequence number (little endian, increasing)
 *   [16..39] 24-byte nonce (16 random bytes per opening, then the sequence number)
 *   [40..]   L bytes of ciphertext, then a 16-byte tag
 *
 * The length word's top bit set: the record is sealed with AES-256-GCM under BLAKE2b-256(that
 * subkey, the opening's 16 random bytes) with the nonce's last 12 bytes (a key per opening, and in
 * it an increasing sequence number: no nonce is reused); clear: with XChaCha20-Poly1305 under the
 * subkey and the whole nonce.  An opening uses AES when the CPU has it (AES-NI: about half the
 * cost per record).
 *
 * sealed (as above) under a subkey derived from that page key —
 * or, with id SALUS_AJ_OWN_KEY, from the store's journal key (the salus
 * binary's keyring file-sealing key, which data-key rekeys never retire) —
 * (crypto_kdf, context "salusajl"), associated data = bytes [0..15].  The body:
 * ts_ms (i64), the compact pre (audit_codec.h) length (u32), the compact post
 * length (u32; 0xffffffff: no post), then both.  A plaintext store (no page
 * keys: tests and benchmarks only) seals under an all-zero key, id 0 —
 * integrity without confidentiality.
 *
 * One process at a time owns a journal (an exclusive flock on the file).
 */
#ifndef SALUS_STORE_AUDIT_JOURNAL_H
#define SALUS_STORE_AUDIT_JOURNAL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define SALUS_AJ_HEADER 16
#define SALUS_AJ_NO_POST UINT32_MAX
#define SALUS_AJ_OWN_KEY UINT32_MAX /* key id of records under salus_store_opts.audit_journal_key */

struct salus_ajournal; /* opaque */

/* A journaled event as read back: compact pre/post (audit_codec.h), borrowed for the call. */
struct salus_aj_rec {
	uint64_t seq;
	int64_t ts_ms;
	const unsigned char *pre;
	size_t pre_n;
	const unsigned char *post; /* NULL: no post */
	size_t post_n;
};
typedef int (*salus_aj_cb)(void *ctx, const struct salus_aj_rec *r);

/* Open (create if missing, mode 0600) the journal at path and lock it.  keys
 * (copied into locked memory; NULL/0: the all-zero key, id 0) open records;
 * new ones are sealed under write_id.
 * Errors: SALUS_EBUSY (another process owns it), SALUS_EIO, SALUS_EINVALID
 * (not a journal, or write_id unknown), SALUS_ENOMEM. */
int salus_ajournal_open(const char *path, const struct salus_page_key *keys, size_t nkeys, uint32_t write_id,
			struct salus_ajournal **out /* OUT */);
void salus_ajournal_free(struct salus_ajournal *j); /* NULL-safe; wipes the keys */

/* Call cb for every record of the file with seq > after, in file order.  A
 * zero length word ends the records; so does a torn last record (the file ends
 * inside it, or it crosses a 4 KB page boundary and is zero from there: what a
 * crash of the machine leaves); any other record that fails authentication, a
 * key it names that is not known, or sequence numbers that do not increase:
 * SALUS_EINTEGRITY.  cb's non-zero return stops and is
 * returned.  *last (may be NULL): the highest seq in the file (0: none). */
int salus_ajournal_replay(struct salus_ajournal *j, uint64_t after, salus_aj_cb cb, void *ctx, uint64_t *last);

/* The parser alone, over a file's bytes (fuzzing, tests): as replay. */
int salus_ajournal_parse(const struct salus_ajournal *j, const unsigned char *p, size_t n, uint64_t after,
			 salus_aj_cb cb, void *ctx, uint64_t *last);

/* Append one record (callers serialise; seq above every earlier one).  On an
 * error nothing of it stays in the file.  Errors: SALUS_EIO, SALUS_ETOOLARGE,
 * SALUS_ENOMEM. */
int salus_ajournal_append(struct salus_ajournal *j, const struct salus_aj_rec *r);

/* Empty the file (every record is in the log).  Errors: SALUS_EIO. */
int salus_ajournal_reset(struct salus_ajournal *j);

/* The sequence number of the last complete record of a journal's bytes, from
 * the record headers alone (no key needed; nothing authenticated: for waiting
 * on another process's writer, never for trusting a record).  0: none or not a
 * journal. */
uint64_t salus_ajournal_last_seq_of(const unsigned char *p, size_t n);
/* The same for the file at path, read without taking its lock (0 if it cannot be read). */
uint64_t salus_ajournal_last_seq(const char *path);

/* Records appended from now on are sealed with AES-256-GCM (on) or XChaCha20-Poly1305 (off).
 * An opening uses AES when the CPU has it (crypto_aead_aes256gcm_is_available); both kinds read
 * back.  Errors: SALUS_EINVALID (no AES on this CPU), SALUS_ENOMEM, SALUS_EINTERNAL. */
int salus_ajournal_set_aes(struct salus_ajournal *j, bool on);

/* Bytes in the file past the header. */
uint64_t salus_ajournal_size(const struct salus_ajournal *j);

#endif
