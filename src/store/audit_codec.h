/*
 * audit_codec.h — how the store keeps an audit event's text on disk (internal to src/store).
 *
 * An AuditEvent is ~1.2 KB of JSON of which ~90 % is the same few dozen fixed fragments (code
 * system URLs, BALP profile, member names).  Every byte stored is written to the WAL, sealed,
 * read back, written again and sealed again by the checkpoint, so the store keeps events in a
 * compact form: a marker, then the text with each fragment of a fixed dictionary replaced by a
 * one- or two-byte token.  Decoding gives the text back byte for byte, so the Merkle leaf, the
 * FHIR read, the export and verification all still see (and hash) the JSON text; only the bytes
 * in audit_log.event change.  Values without the marker are the text itself (rows written before
 * the codec existed, or by hand): they decode to themselves.
 *
 * Format 1 (the dictionary is part of it: it never changes; a new dictionary is a new format):
 *   0x00 0x01        marker, format 1
 *   then, per byte b:
 *     0x01..0x1d     the fragment dict[b - 1]                  (one-byte tokens)
 *     0x1f X         the fragment dict[29 + X]                 (two-byte tokens)
 *     0x1e X         the byte X itself (an escaped byte < 0x20)
 *     0x00           invalid
 *     0x20..0xff     that byte
 * Any byte string can be encoded (bytes < 0x20 are escaped), so encoding never fails.
 */
#ifndef SALUS_STORE_AUDIT_CODEC_H
#define SALUS_STORE_AUDIT_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"

/* The most bytes salus_auc_encode writes for n input bytes (marker included). */
#define SALUS_AUC_BOUND(n) (2 * (n) + 2)

/* Append the marker to out (a value's first bytes). */
size_t salus_auc_marker(unsigned char *out /* OUT: 2 bytes */);

/* Encode n bytes of src into out (at most 2n bytes, no marker); returns the bytes written.
 * Encodings of consecutive pieces concatenate: enc(a) || enc(b) decodes to a || b. */
size_t salus_auc_encode(const char *src, size_t n, unsigned char *out /* OUT */);

/* Is this stored value in the compact form? */
bool salus_auc_is_encoded(const void *v, size_t n);

/* Decode a stored value (encoded or not) into out (reset first; NUL-terminated).
 * Errors: SALUS_EIO (damaged: bad token, truncated, unknown format), SALUS_ETOOLARGE (over
 * SALUS_MAX_AUDIT_EVENT), SALUS_ENOMEM. */
int salus_auc_decode(const void *v, size_t n, struct salus_buf *out);

/* Append the text of compact bytes c[0..n) (the form salus_auc_encode writes: no marker) to out.
 * Errors: SALUS_EIO (bad token, truncated), SALUS_EINVALID, SALUS_ENOMEM / SALUS_ETOOLARGE (out's cap). */
int salus_auc_decode_append(const unsigned char *c, size_t n, struct salus_buf *out);

/* Call fn with the text of compact bytes c[0..n) (no marker), piece by piece in order (runs of
 * literal bytes, dictionary fragments), without building it; fn's non-zero return stops and is
 * returned.  Errors: SALUS_EIO (bad token, truncated), SALUS_EINVALID. */
int salus_auc_visit(const unsigned char *c, size_t n, int (*fn)(void *ctx, const void *p, size_t n), void *ctx);

/* The length of the text compact bytes c[0..n) (no marker) decode to, without decoding them, into
 * *len.  Errors: SALUS_EINVALID (a zero byte, a bad or truncated token). */
int salus_auc_text_len(const unsigned char *c, size_t n, size_t *len /* OUT */);

#endif
