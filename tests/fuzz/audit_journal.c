/* audit_journal.c — libFuzzer target: the audit journal file (store/audit_journal.h).
 * Any bytes as a journal file parse to records or to SALUS_EINVALID / SALUS_EINTEGRITY, never read
 * past; and the input cut into records, appended and read back, gives exactly those records. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/err.h"
#include "store/audit_journal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct salus_ajournal *jn; /* the all-zero key, id 0 (a plaintext store's) */

struct want {
	const uint8_t *data;
	size_t size, at, n;
	uint64_t seq;
};

static int count(void *ctx, const struct salus_aj_rec *r)
{
	size_t *n = ctx;
	if (!r->pre && r->pre_n)
		abort();
	(*n)++;
	return 0;
}

/* record k is data[at, at + len) as pre, no post when len is even */
static int check(void *ctx, const struct salus_aj_rec *r)
{
	struct want *w = ctx;
	size_t len = w->data[w->at % w->size] % 32;
	if (len > w->size - w->at)
		len = w->size - w->at;
	if (r->seq != ++w->seq || r->pre_n != len || memcmp(r->pre, w->data + w->at, len) ||
	    (r->post != NULL) != (len % 2 == 1) || r->ts_ms != (int64_t)w->at)
		abort();
	w->at += len ? len : 1;
	w->n++;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t n = 0;
	uint64_t last;
	int rc;

	if (!jn) {
		char path[] = "/tmp/salus-fuzz-aj-XXXXXX";
		int fd = mkstemp(path);
		if (fd < 0)
			abort();
		close(fd);
		unlink(path);
		if (salus_ajournal_open(path, NULL, 0, 0, &jn))
			abort();
		unlink(path); /* the open descriptor keeps it */
	}
	if (size > 1 << 16)
		return 0;
	rc = salus_ajournal_parse(jn, data, size, 0, count, &n, &last);
	if (rc && rc != SALUS_EINVALID && rc != SALUS_EINTEGRITY && rc != SALUS_ENOMEM)
		abort();
	/* the header-only scan (another process waiting on the owner) reads no further than parse */
	(void)salus_ajournal_last_seq_of(data, size);
	if (!size)
		return 0;
	/* round trip */
	if (salus_ajournal_reset(jn))
		abort();
	(void)salus_ajournal_set_aes(jn, data[0] & 1); /* both seals (EINVALID without AES-NI: XChaCha) */
	size_t at = 0, recs = 0;
	while (at < size) {
		size_t len = data[at % size] % 32;
		if (len > size - at)
			len = size - at;
		struct salus_aj_rec r = {.seq = ++recs, .ts_ms = (int64_t)at, .pre = data + at, .pre_n = len,
					 .post = len % 2 ? (const unsigned char *)"" : NULL};
		if (salus_ajournal_append(jn, &r))
			abort();
		at += len ? len : 1;
	}
	struct want w = {.data = data, .size = size};
	if (salus_ajournal_replay(jn, 0, check, &w, &last) || w.n != recs || last != recs)
		abort();

	return 0;
}
