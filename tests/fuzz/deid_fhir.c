/* deid_fhir.c — libFuzzer target for FHIR de-identification (fhir_deid.h):
 * arbitrary bytes as a resource, Bundle or NDJSON through every transform
 * mode, with a stand-in detector that marks words and numbers with rotating
 * PHI types (so every transform sees arbitrary span text). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "deid/fhir_deid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct salus_span spans[256];

static int fake_scan(void *ctx, const char *t, size_t n, const struct salus_span **out, size_t *ns)
{
	(void)ctx;
	size_t k = 0, i = 0;
	while (i < n && k < 256) {
		unsigned char c = (unsigned char)t[i];
		bool w = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ||
			 c == '/' || c == '-' || c == '@' || c == '.';
		if (!w) {
			i++;
			continue;
		}
		size_t s = i;
		while (i < n) {
			c = (unsigned char)t[i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c >= 0x80 ||
			      c == '/' || c == '-' || c == '@' || c == '.'))
				break;
			i++;
		}
		spans[k] = (struct salus_span){s, i, (enum salus_phi)((s + i) % SALUS_PHI__COUNT), 1.0f, 0};
		k++;
	}
	*out = spans;
	*ns = k;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	static unsigned char key[SALUS_DEID_KEY_LEN] = {1, 2, 3, 4};
	if (!init) {
		salus_alloc_install();
		init = true;
	}
	if (size > (1u << 20))
		return 0;
	struct salus_deid_fhir_opts o = {.scan = fake_scan};
	o.x.key = key;
	o.x.key_len = SALUS_DEID_KEY_LEN;
	o.x.mode = size ? (enum salus_deid_mode)(data[size - 1] % SALUS_DEID__MODE_COUNT) : SALUS_DEID_MASK;
	o.x.keep_weekday = size > 1 && (data[size - 2] & 1);
	o.x.shift_dates = size > 1 && (data[size - 2] & 2);
	struct salus_buf out;
	salus_buf_init(&out, 1u << 24);
	size_t bad;
	salus_deid_fhir_text(&o, (const char *)data, size, &out, &bad);
	salus_buf_release(&out);
	return 0;
}
