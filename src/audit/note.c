/*
 * note.c — checkpoints as C2SP signed notes (https://c2sp.org/signed-note,
 * https://c2sp.org/tlog-checkpoint) with Ed25519, and strict standard base64.
 *
 *   <origin>\n<tree size>\n<base64 root>\n\n— <origin> <base64(keyhash[4] || sig[64])>\n
 *
 * keyhash = SHA-256(origin || "\n" || 0x01 || public key)[0:4]; the signature
 * covers the text before the blank line (the three lines, newline included).
 * The verifier key is "origin+hex(keyhash)+base64(0x01 || public key)", the
 * form golang.org/x/mod/sumdb/note and transparency-dev tools read.
 */
#include "audit/audit_int.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"

#define EM_DASH "\xe2\x80\x94"
#define ALG_ED25519 0x01

bool utf8_ok(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
		if (n < 0 || (n == 1 && *p < 0xc2) || (n == 3 && *p > 0xf4))
			return false;
		p++;
		for (int i = 0; i < n; i++, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

int b64std_append(struct salus_buf *b, const void *bin, size_t n)
{
	size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
	char tmp[256];
	char *p = cap <= sizeof tmp ? tmp : salus_malloc(cap);
	int rc;
	if (!p)
		return SALUS_ENOMEM;
	sodium_bin2base64(p, cap, bin, n, sodium_base64_VARIANT_ORIGINAL);
	rc = salus_buf_adds(b, p);
	if (p != tmp)
		salus_free(p);
	return rc;
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int b64std_decode(const char *s, size_t n, unsigned char *bin, size_t cap, size_t *out_n)
{
	size_t i, pad = 0, len;
	const char *end;
	unsigned char back[3];
	char re[8];

	if (n == 0 || n % 4)
		return SALUS_EINVALID;
	if (s[n - 1] == '=')
		pad = s[n - 2] == '=' ? 2 : 1;
	for (i = 0; i < n - pad; i++)
		if (!b64_char(s[i]))
			return SALUS_EINVALID;
	if (sodium_base642bin(bin, cap, s, n, NULL, &len, &end, sodium_base64_VARIANT_ORIGINAL) || end != s + n)
		return SALUS_EINVALID;
	/* canonical: the last quantum re-encodes to the same characters */
	if (len && pad) {
		size_t tail = 3 - pad;
		memcpy(back, bin + len - tail, tail);
		sodium_bin2base64(re, sizeof re, back, tail, sodium_base64_VARIANT_ORIGINAL);
		if (memcmp(re, s + n - 4, 4))
			return SALUS_EINVALID;
	}
	*out_n = len;
	return SALUS_OK;
}

int b64std_hash(const char *s, size_t n, unsigned char out[SALUS_MERKLE_HASH_LEN])
{
	unsigned char tmp[SALUS_MERKLE_HASH_LEN + 3];
	size_t len;
	if (n != SALUS_B64_HASH_LEN || b64std_decode(s, n, tmp, sizeof tmp, &len) || len != SALUS_MERKLE_HASH_LEN)
		return SALUS_EINVALID;
	memcpy(out, tmp, SALUS_MERKLE_HASH_LEN);
	return SALUS_OK;
}

static bool origin_ok(const char *o)
{
	size_t n = strlen(o);
	if (!n || n >= sizeof(((struct salus_audit_note *)0)->origin))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)o[i] <= ' ' || o[i] == '+' || (unsigned char)o[i] >= 0x7f)
			return false;
	return true;
}

static void key_hash(const char *origin, const unsigned char pk[SALUS_ED25519_PK_LEN], unsigned char out[4])
{
	crypto_hash_sha256_state h;
	unsigned char sum[32];
	static const unsigned char sep[2] = {'\n', ALG_ED25519};
	crypto_hash_sha256_init(&h);
	crypto_hash_sha256_update(&h, (const unsigned char *)origin, strlen(origin));
	crypto_hash_sha256_update(&h, sep, 2);
	crypto_hash_sha256_update(&h, pk, SALUS_ED25519_PK_LEN);
	crypto_hash_sha256_final(&h, sum);
	memcpy(out, sum, 4);
}

int note_body(struct salus_buf *b, const char *origin, int64_t size, const unsigned char root[SALUS_MERKLE_HASH_LEN])
{
	int rc;
	if (!origin_ok(origin))
		return SALUS_EINVALID;
	if ((rc = salus_buf_addf(b, "%s\n%" PRId64 "\n", origin, size)) || (rc = b64std_append(b, root, SALUS_MERKLE_HASH_LEN)) ||
	    (rc = salus_buf_addc(b, '\n')))
		return rc;
	return SALUS_OK;
}

int note_sign(const struct salus_signkey *k, const char *origin, int64_t size,
	      const unsigned char root[SALUS_MERKLE_HASH_LEN], char **out)
{
	unsigned char pk[SALUS_ED25519_PK_LEN], blob[4 + SALUS_ED25519_SIG_LEN];
	struct salus_buf b;
	int rc;

	salus_buf_init(&b, 4096);
	if ((rc = note_body(&b, origin, size, root)))
		goto out_buf;
	salus_signkey_public(k, pk);
	key_hash(origin, pk, blob);
	salus_signkey_sign(k, b.p, b.n, blob + 4);
	if ((rc = salus_buf_addf(&b, "\n" EM_DASH " %s ", origin)) || (rc = b64std_append(&b, blob, sizeof blob)) ||
	    (rc = salus_buf_addc(&b, '\n')))
		goto out_buf;
	*out = salus_buf_detach(&b, NULL);
	return *out ? SALUS_OK : SALUS_ENOMEM;
out_buf:
	salus_buf_release(&b);
	return rc;
}

int note_vkey(const struct salus_signkey *k, const char *origin, char **out)
{
	unsigned char pk[1 + SALUS_ED25519_PK_LEN], kh[4];
	struct salus_buf b;
	int rc;

	if (!origin_ok(origin))
		return SALUS_EINVALID;
	pk[0] = ALG_ED25519;
	salus_signkey_public(k, pk + 1);
	key_hash(origin, pk + 1, kh);
	salus_buf_init(&b, 1024);
	if ((rc = salus_buf_addf(&b, "%s+%02x%02x%02x%02x+", origin, kh[0], kh[1], kh[2], kh[3])) ||
	    (rc = b64std_append(&b, pk, sizeof pk))) {
		salus_buf_release(&b);
		return rc;
	}
	*out = salus_buf_detach(&b, NULL);
	return *out ? SALUS_OK : SALUS_ENOMEM;
}

/* Parse "name+hex8+base64(0x01||pk)". */
static int vkey_parse(const char *vkey, char name[256], unsigned char kh[4], unsigned char pk[SALUS_ED25519_PK_LEN])
{
	const char *plus = strchr(vkey, '+'), *b64;
	unsigned char raw[1 + SALUS_ED25519_PK_LEN + 2];
	size_t n, len;

	if (!plus || (size_t)(plus - vkey) >= 256 || plus == vkey)
		return SALUS_EINVALID;
	memcpy(name, vkey, (size_t)(plus - vkey));
	name[plus - vkey] = 0;
	for (int i = 0; i < 4; i++) {
		unsigned v = 0;
		for (int j = 0; j < 2; j++) {
			char c = plus[1 + 2 * i + j];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return SALUS_EINVALID;
			v = v * 16 + (unsigned)d;
		}
		kh[i] = (unsigned char)v;
	}
	if (plus[9] != '+')
		return SALUS_EINVALID;
	b64 = plus + 10;
	n = strlen(b64);
	while (n && (b64[n - 1] == '\n' || b64[n - 1] == '\r' || b64[n - 1] == ' '))
		n--; /* a key file's trailing newline */
	if (b64std_decode(b64, n, raw, sizeof raw, &len) || len != sizeof raw - 2 || raw[0] != ALG_ED25519)
		return SALUS_EINVALID;
	memcpy(pk, raw + 1, SALUS_ED25519_PK_LEN);
	if (!origin_ok(name))
		return SALUS_EINVALID;
	return SALUS_OK;
}

/* Parse a decimal tree size: no sign, no leading zeros. */
static int parse_size(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	if (!n || n > 19 || (n > 1 && s[0] == '0'))
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SALUS_EINVALID;
		if (v > (INT64_MAX - (s[i] - '0')) / 10)
			return SALUS_EINVALID;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return SALUS_OK;
}

int salus_audit_note_verify(const char *note, size_t n, const char *vkey, struct salus_audit_note *out)
{
	char name[256];
	unsigned char kh[4], pk[SALUS_ED25519_PK_LEN];
	struct salus_audit_note res;
	const char *p, *end = note + n, *sep, *l1, *l2, *l3;
	size_t body_n;
	bool signed_ok = false;

	if (!note || !out)
		return SALUS_EINVALID;
	memset(&res, 0, sizeof res);
	if (n < 8 || note[n - 1] != '\n' || memchr(note, 0, n))
		return SALUS_EINVALID;
	/* the body ends at the first blank line */
	for (sep = note; sep + 1 < end && !(sep[0] == '\n' && sep[1] == '\n'); sep++)
		;
	if (sep + 1 >= end)
		return SALUS_EINVALID;
	body_n = (size_t)(sep - note) + 1;
	l1 = memchr(note, '\n', body_n);
	l2 = l1 ? memchr(l1 + 1, '\n', (size_t)(note + body_n - l1 - 1)) : NULL;
	l3 = l2 ? memchr(l2 + 1, '\n', (size_t)(note + body_n - l2 - 1)) : NULL;
	if (!l3 || (size_t)(l1 - note) >= sizeof res.origin)
		return SALUS_EINVALID;
	memcpy(res.origin, note, (size_t)(l1 - note));
	res.origin[l1 - note] = 0;
	if (!origin_ok(res.origin) || parse_size(l1 + 1, (size_t)(l2 - l1 - 1), &res.size) ||
	    b64std_hash(l2 + 1, (size_t)(l3 - l2 - 1), res.root))
		return SALUS_EINVALID;
	if (vkey) {
		if (vkey_parse(vkey, name, kh, pk))
			return SALUS_EINVALID;
		if (strcmp(name, res.origin))
			return SALUS_ECRYPTO; /* a key for another log */
	}
	/* signature lines: "— name base64\n" */
	for (p = sep + 2; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *sp;
		unsigned char blob[4 + SALUS_ED25519_SIG_LEN + 2];
		size_t bl, nn;
		if (!nl || (size_t)(nl - p) < 4 || memcmp(p, EM_DASH " ", 4))
			return SALUS_EINVALID;
		sp = memchr(p + 4, ' ', (size_t)(nl - p - 4));
		if (!sp)
			return SALUS_EINVALID;
		nn = (size_t)(sp - p - 4);
		if (vkey && nn == strlen(name) && !memcmp(p + 4, name, nn) &&
		    !b64std_decode(sp + 1, (size_t)(nl - sp - 1), blob, sizeof blob, &bl) &&
		    bl == 4 + SALUS_ED25519_SIG_LEN && !memcmp(blob, kh, 4) &&
		    salus_ed25519_verify(pk, note, body_n, blob + 4))
			signed_ok = true;
		p = nl + 1;
	}
	if (vkey && !signed_ok)
		return SALUS_ECRYPTO;
	*out = res;
	return SALUS_OK;
}
