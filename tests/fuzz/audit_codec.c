/* audit_codec.c — libFuzzer target: the stored form of audit events (store/audit_codec.h).
 * Any stored value either decodes (within the cap) or is refused with SALUS_EIO / SALUS_ETOOLARGE,
 * never read past; and the input itself, encoded, decodes back to exactly the input — also as two
 * pieces encoded separately (how the store splices the index in), and as a dictionary piece followed
 * by a raw one (how the audit module builds events).  As unmarked compact bytes (what the journal
 * carries), salus_auc_text_len accepts exactly what salus_auc_decode_append decodes, and gives its
 * length. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/limits.h"
#include "store/audit_codec.h"
#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct salus_buf out;
	unsigned char *enc;
	size_t en, cut;
	int rc;

	if (size > 1 << 16)
		return 0;
	salus_buf_init(&out, SALUS_MAX_AUDIT_EVENT);
	/* as a stored value */
	rc = salus_auc_decode(data, size, &out);
	if (rc && rc != SALUS_EIO && rc != SALUS_ETOOLARGE && rc != SALUS_ENOMEM)
		abort();
	if (!salus_auc_is_encoded(data, size) && (rc || out.n != size || memcmp(out.p, data, size)))
		abort(); /* plain text reads as itself */
	/* as a text: encode (in two pieces), decode, compare */
	if (!(enc = malloc(SALUS_AUC_BOUND(size) + 2)))
		return 0;
	cut = size ? data[0] % (size + 1) : 0;
	en = salus_auc_marker(enc);
	en += salus_auc_encode((const char *)data, cut, enc + en);
	en += salus_auc_encode((const char *)data + cut, size - cut, enc + en);
	if (en > SALUS_AUC_BOUND(size) + 2)
		abort();
	if (salus_auc_decode(enc, en, &out) || out.n != size || memcmp(out.p, data, size))
		abort();
	en = salus_auc_marker(enc);
	en += salus_auc_encode((const char *)data, cut, enc + en);
	en += salus_store_audit_encode_raw((const char *)data + cut, size - cut, enc + en);
	if (en > SALUS_AUC_BOUND(size) + 2)
		abort();
	if (salus_auc_decode(enc, en, &out) || out.n != size || memcmp(out.p, data, size))
		abort();
	/* unmarked compact bytes: the length without decoding agrees with the decoding */
	size_t tl;
	int lrc = salus_auc_text_len(data, size, &tl);
	salus_buf_reset(&out);
	rc = salus_auc_decode_append(data, size, &out);
	if (rc != SALUS_ETOOLARGE && ((lrc == 0) != (rc == 0) || (!rc && out.n != tl)))
		abort(); /* (past the cap, decoding stops before a later bad token) */
	free(enc);
	salus_buf_release(&out);
	return 0;
}
