/*
 * test_audit_codec.c — the compact on-disk form of audit events (src/store/audit_codec.h): any byte
 * string round-trips, pieces concatenate, real AuditEvents shrink to a fraction, plain text (rows
 * from before the codec) reads as itself, damaged values are refused, and the dictionary of format 1
 * is pinned (a change would make stored events decode to other texts).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"
#include "store/audit_codec.h"
#include "store/store.h"

/* format 1 (see test_dictionary_pinned) */
#define FORMAT1_TOKENS 115
#define FORMAT1_SHA256 "28cad9e7da93dbef1177115a0230c96233a2fccf7055fcda4aedba4d59a16166"

static void roundtrip(const void *src, size_t n)
{
	unsigned char *enc = malloc(SALUS_AUC_BOUND(n) + 2);
	struct salus_buf out;
	size_t en;

	assert_non_null(enc);
	en = salus_auc_marker(enc);
	en += salus_auc_encode(src, n, enc + en);
	assert_true(en <= SALUS_AUC_BOUND(n));
	assert_true(salus_auc_is_encoded(enc, en));
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	assert_int_equal(salus_auc_decode(enc, en, &out), 0);
	assert_int_equal(out.n, n);
	assert_memory_equal(out.p, src, n);
	salus_buf_release(&out);
	free(enc);
}

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng >> 11);
}

static void test_roundtrip_bytes(void **state)
{
	(void)state;
	unsigned char b[600];
	roundtrip("", 0);
	roundtrip("\x00", 1);
	roundtrip("\x1e\x1f\x01\x00\xff", 5);
	for (int t = 0; t < 2000; t++) {
		size_t n = rnd() % sizeof b;
		/* mostly JSON-ish bytes and dictionary-ish runs, some control and high bytes */
		for (size_t i = 0; i < n; i++) {
			unsigned r = rnd() % 16;
			b[i] = r == 0 ? (unsigned char)(rnd() % 32)
			       : r == 1
			           ? (unsigned char)(128 + rnd() % 128)
			           : (unsigned char)"{\"}:,[]system/code0123456789abcdefhttp:"[rnd() % 38];
		}
		roundtrip(b, n);
	}
}

/* A realistic event of each kind: round trip, pieces concatenate, and the size it is stored in. */
static void test_events(void **state)
{
	(void)state;
	const char *pats[] = {"p-1", "0d6c1b3e-8c1a-4b8e-9f7a-2b8e0c2f3a11", "p.3"};
	static const enum salus_audit_interaction kinds[] = {
	    SALUS_AUDIT_READ,       SALUS_AUDIT_VREAD,  SALUS_AUDIT_CREATE,    SALUS_AUDIT_UPDATE,
	    SALUS_AUDIT_PATCH,      SALUS_AUDIT_DELETE, SALUS_AUDIT_SEARCH,    SALUS_AUDIT_SEARCH_SYSTEM,
	    SALUS_AUDIT_HISTORY,    SALUS_AUDIT_BATCH,  SALUS_AUDIT_LOGIN,     SALUS_AUDIT_TOKEN,
	    SALUS_AUDIT_AUDIT_READ, SALUS_AUDIT_ADMIN,  SALUS_AUDIT_OPERATION,
	};
	size_t total_text = 0, total_stored = 0;
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		for (int variant = 0; variant < 4; variant++) {
			struct salus_audit_req rq = {
			    .interaction = kinds[k],
			    .resource_type = variant == 3 ? NULL : "Patient",
			    .id = variant == 1 ? NULL : "0d6c1b3e-8c1a-4b8e-9f7a-2b8e0c2f3a11",
			    .version = variant == 2 ? 7 : 0,
			    .patients = pats,
			    .npatients = (size_t)variant % 3 + (variant == 3),
			    .status = variant == 2 ? 404 : 200,
			    .client_id = "bench",
			    .remote_addr = variant == 1 ? "2001:db8::1" : "127.0.0.1",
			    .query = variant == 1 ? "name=Smith&_count=10" : NULL,
			    .purpose = variant == 2 ? "BTG" : NULL,
			    .user_id = variant == 3 ? "dr.who" : NULL,
			    .operation = kinds[k] == SALUS_AUDIT_OPERATION ? "$everything" : NULL,
			    .ts_ms = 1796630400123 + variant,
			};
			char *pre, *post;
			size_t pre_n, post_n;
			assert_int_equal(salus_audit_event_render(&rq, &pre, &pre_n, &post, &post_n), 0);
			/* the store's stored form: marker, enc(pre), the index, enc(post) */
			char text[8192];
			int tn = snprintf(text, sizeof text, "%s123456%s", pre, post);
			assert_true(tn > 0 && (size_t)tn < sizeof text);
			unsigned char enc[16384];
			size_t en = salus_auc_marker(enc);
			en += salus_auc_encode(pre, pre_n, enc + en);
			memcpy(enc + en, "123456", 6);
			en += 6;
			en += salus_auc_encode(post, post_n, enc + en);
			struct salus_buf out;
			salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
			assert_int_equal(salus_auc_decode(enc, en, &out), 0);
			assert_int_equal(out.n, (size_t)tn);
			assert_memory_equal(out.p, text, (size_t)tn);
			salus_buf_release(&out);
			roundtrip(text, (size_t)tn);
			total_text += (size_t)tn;
			total_stored += en;
			if (kinds[k] == SALUS_AUDIT_READ && variant == 0) {
				print_message("audited read: %d bytes of text, %zu stored\n", tn, en);
				assert_true(en * 6 < (size_t)tn); /* a sixth or less */
			}
			salus_free(pre);
			salus_free(post);
		}
	}
	print_message("all kinds: %zu bytes of text, %zu stored (%.1f %%)\n", total_text, total_stored,
	              100.0 * (double)total_stored / (double)total_text);
	assert_true(total_stored * 4 < total_text);
}

/* A value without the marker is the text itself (rows written before the codec). */
static void test_plain(void **state)
{
	(void)state;
	static const char legacy[] = "{\"resourceType\":\"AuditEvent\",\"id\":\"7\",\"action\":\"R\"}";
	struct salus_buf out;
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	assert_false(salus_auc_is_encoded(legacy, sizeof legacy - 1));
	assert_int_equal(salus_auc_decode(legacy, sizeof legacy - 1, &out), 0);
	assert_string_equal(out.p, legacy);
	assert_int_equal(salus_auc_decode("", 0, &out), 0);
	assert_int_equal(out.n, 0);
	salus_buf_release(&out);
}

static void test_damaged(void **state)
{
	(void)state;
	static const struct {
		const char *v;
		size_t n;
	} bad[] = {
	    {"\x00\x02{}", 4},       /* unknown format */
	    {"\x00\x01{\x00}", 5},   /* a NUL token */
	    {"\x00\x01{\x1e", 4},    /* escape at the end */
	    {"\x00\x01{\x1f", 4},    /* two-byte token cut */
	    {"\x00\x01\x1f\xff", 4}, /* a token past the dictionary */
	};
	struct salus_buf out;
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		assert_int_equal(salus_auc_decode(bad[i].v, bad[i].n, &out), SALUS_EIO);
	/* the cap holds for decoded output too */
	struct salus_buf small;
	salus_buf_init(&small, 16);
	assert_int_not_equal(salus_auc_decode("\x00\x01\x02", 3, &small), 0);
	salus_buf_release(&small);
	salus_buf_release(&out);
}

/* The pieces the audit module builds events from (store.h): raw encoding escapes only bytes below
 * 0x20, raw and dictionary encodings of consecutive pieces concatenate, salus_auc_text_len gives the
 * decoded length without decoding and refuses what decode refuses. */
static void test_raw_and_text_len(void **state)
{
	(void)state;
	unsigned char src[300], enc[2000];
	struct salus_buf out;
	size_t en = 0, len;
	for (size_t i = 0; i < sizeof src; i++)
		src[i] = (unsigned char)(rnd() & 0xff);
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	/* "text" raw, an event fragment with the dictionary, the random bytes raw */
	en += salus_store_audit_encode_raw("id-1\x01", 5, enc + en);
	assert_int_equal(en, 6); /* one escape */
	static const char frag[] = "\",\"outcome\":\"0\",\"outcomeDesc\":\"HTTP 200\",\"agent\":[";
	size_t fn = salus_store_audit_encode(frag, sizeof frag - 1, enc + en);
	assert_int_equal(fn, 1); /* one token */
	en += fn;
	en += salus_store_audit_encode_raw((const char *)src, sizeof src, enc + en);
	assert_int_equal(salus_auc_text_len(enc, en, &len), 0);
	assert_int_equal(len, 5 + sizeof frag - 1 + sizeof src);
	assert_int_equal(salus_store_audit_decode(enc, en, &out), 0);
	assert_int_equal(out.n, len);
	assert_memory_equal(out.p, "id-1\x01", 5);
	assert_memory_equal(out.p + 5, frag, sizeof frag - 1);
	assert_memory_equal(out.p + 5 + sizeof frag - 1, src, sizeof src);
	/* damaged (no marker here) */
	static const struct {
		const char *v;
		size_t n;
	} bad[] = {{"{\x00}", 3}, {"{\x1e", 2}, {"{\x1f", 2}, {"\x1f\xff", 2}};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(salus_auc_text_len((const unsigned char *)bad[i].v, bad[i].n, &len), SALUS_EINVALID);
		salus_buf_reset(&out);
		assert_int_not_equal(salus_store_audit_decode((const unsigned char *)bad[i].v, bad[i].n, &out), 0);
	}
	assert_int_equal(salus_auc_text_len((const unsigned char *)"", 0, &len), 0);
	assert_int_equal(len, 0);
	salus_buf_release(&out);
}

/* Format 1's dictionary, pinned: every token's text, hashed in order.  If this fails, stored events
 * would decode to different texts — make a format 2 instead of editing the dictionary. */
static void test_dictionary_pinned(void **state)
{
	(void)state;
	crypto_hash_sha256_state h;
	unsigned char md[32], v[4];
	char hex[65];
	struct salus_buf out;
	int ntok = 0;
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	crypto_hash_sha256_init(&h);
	for (unsigned t = 1; t <= 0x1d; t++) {
		v[0] = 0, v[1] = 1, v[2] = (unsigned char)t;
		assert_int_equal(salus_auc_decode(v, 3, &out), 0);
		assert_true(out.n >= 3); /* shorter would not shrink anything (the encoder relies on it) */
		crypto_hash_sha256_update(&h, (const unsigned char *)out.p, out.n + 1);
		ntok++;
	}
	for (unsigned x = 0; x < 256; x++) {
		v[0] = 0, v[1] = 1, v[2] = 0x1f, v[3] = (unsigned char)x;
		int rc = salus_auc_decode(v, 4, &out);
		if (rc == SALUS_EIO)
			break;
		assert_int_equal(rc, 0);
		assert_true(out.n >= 3); /* shorter would not shrink anything (the encoder relies on it) */
		crypto_hash_sha256_update(&h, (const unsigned char *)out.p, out.n + 1);
		ntok++;
	}
	crypto_hash_sha256_final(&h, md);
	sodium_bin2hex(hex, sizeof hex, md, sizeof md);
	print_message("format 1: %d tokens, sha256 %s\n", ntok, hex);
	assert_int_equal(ntok, FORMAT1_TOKENS);
	assert_string_equal(hex, FORMAT1_SHA256);
	salus_buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip_bytes),
	    cmocka_unit_test(test_events),
	    cmocka_unit_test(test_plain),
	    cmocka_unit_test(test_damaged),
	    cmocka_unit_test(test_raw_and_text_len),
	    cmocka_unit_test(test_dictionary_pinned),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
