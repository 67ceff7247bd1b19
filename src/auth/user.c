/*
 * user.c — the user registry, password policy, peppered Argon2id, TOTP MFA
 * with recovery codes, lockout with exponential backoff, and login sessions
 * (see user.h; docs/security.md "Identity").
 *
 * Records (key/value namespace "user", key = username):
 *   {"username","role","pw":"$argon2id$...","totp":"<b64url nonce||sealed>",
 *    "mfa":bool,"totp_last":<last accepted TOTP counter>,"recovery":[<b64url keyed hash>...],
 *    "link":"Practitioner/ID"|"Patient/ID"|"RelatedPerson/ID"|"","disabled":bool,
 *    "created":"<instant>","gen":"<random>"}
 * Lockout counters (namespace "lockout", key = b64url(BLAKE2b-256(key=pepper,
 * "u:" username))) exist for any username tried, known or not, so that an
 * unknown name is locked out, timed and stored exactly like a known one.
 */
#include "auth/user.h"

#include <errno.h>
#include <fcntl.h>
#include <liboath/oath.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/limits.h"
#include "core/log.h"
#include "crypto/crypto.h"
#include "store/store.h"

#define USER_NS "user"
#define LOCK_NS "lockout"
#define SESSION_NS "session"
#define PEPPER_MAGIC "salus-pepper-v1"
#define SESSION_TOUCH_MS 10000 /* last-seen is written at most this often */

/* Argon2id for passwords: 3 passes over 64 MiB (stronger than client secrets' INTERACTIVE t=2,
 * cheaper than MODERATE's 256 MiB, which 64 concurrent logins could not afford). */
#define PW_OPSLIMIT 3
#define PW_MEMLIMIT (64u << 20)

/* The generated list (tools/gen_common_passwords.c). */
extern const char *const salus_common_passwords[];
extern const size_t salus_common_passwords_n;

/* ---- roles ---------------------------------------------------------------------------------------- */

static const struct {
	const char *name;
	bool staff;
	const char *scopes;
} roles[] = {
#define SALUS_ROLE_ROW(e, name, staff, scopes) {name, staff, scopes},
	SALUS_ROLE_MAP(SALUS_ROLE_ROW)
#undef SALUS_ROLE_ROW
};

int salus_role_parse(const char *name, enum salus_role *out)
{
	for (size_t i = 0; name && i < SALUS_ROLE__COUNT; i++)
		if (!strcmp(name, roles[i].name)) {
			*out = (enum salus_role)i;
			return 0;
		}
	return SALUS_EINVALID;
}

const char *salus_role_name(enum salus_role r)
{
	return (unsigned)r < SALUS_ROLE__COUNT ? roles[r].name : "?";
}

bool salus_role_is_staff(enum salus_role r)
{
	return (unsigned)r < SALUS_ROLE__COUNT && roles[r].staff;
}

const char *salus_role_scopes(enum salus_role r)
{
	return (unsigned)r < SALUS_ROLE__COUNT ? roles[r].scopes : "";
}

/* ---- the context ---------------------------------------------------------------------------------- */

struct addr_slot {
	unsigned char key[16]; /* BLAKE2b-128 of the address text */
	int fails;
	int64_t last_ms, until_ms;
};

struct secrets { /* sodium_malloc'd, read-only after set-up */
	unsigned char pepper[SALUS_PEPPER_LEN];
	unsigned char totp_key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES];
};

struct salus_users {
	struct salus_store *store;
	struct secrets *sec;
	int idle_ms, absolute_ms;
	char dummy_hash[SALUS_PWHASH_LEN];
	pthread_mutex_t lock; /* guards addrs */
	struct addr_slot *addrs;
};

int salus_pepper_create(const char *path)
{
	unsigned char raw[SALUS_PEPPER_LEN];
	char text[sizeof PEPPER_MAGIC + SALUS_B64URL_LEN(SALUS_PEPPER_LEN) + 2];
	int rc = salus_crypto_init();
	if (rc)
		return rc;
	randombytes_buf(raw, sizeof raw);
	memcpy(text, PEPPER_MAGIC "\n", sizeof PEPPER_MAGIC);
	salus_b64url_encode(raw, sizeof raw, text + sizeof PEPPER_MAGIC, SALUS_B64URL_LEN(SALUS_PEPPER_LEN));
	size_t len = strlen(text);
	text[len++] = '\n';
	rc = salus_keyfile_write(path, text, len, false); /* sealed when the keyring gave a file key */
	sodium_memzero(raw, sizeof raw);
	sodium_memzero(text, sizeof text);
	return rc;
}

static int pepper_load(const char *path, unsigned char out[SALUS_PEPPER_LEN])
{
	char text[128];
	size_t got = 0, bn = 0;
	int rc = salus_keyfile_read(path, text, sizeof text, &got, NULL);
	if (rc)
		return rc;
	const size_t ml = sizeof PEPPER_MAGIC - 1, bl = SALUS_B64URL_LEN(SALUS_PEPPER_LEN) - 1;
	if (got < ml + 1 + bl || memcmp(text, PEPPER_MAGIC "\n", ml + 1) ||
	    salus_b64url_decode(text + ml + 1, bl, out, SALUS_PEPPER_LEN, &bn) || bn != SALUS_PEPPER_LEN)
		rc = SALUS_EINVALID;
	sodium_memzero(text, sizeof text);
	return rc;
}

/* Argon2id of the peppered password: BLAKE2b-256(key=pepper, password). */
static int pw_hash(const struct salus_users *u, const char *pw, size_t n, char out[SALUS_PWHASH_LEN])
{
	unsigned char pre[32];
	crypto_generichash(pre, sizeof pre, (const unsigned char *)pw, n, u->sec->pepper, SALUS_PEPPER_LEN);
	int rc = crypto_pwhash_str_alg(out, (const char *)pre, sizeof pre, PW_OPSLIMIT, PW_MEMLIMIT,
				       crypto_pwhash_ALG_ARGON2ID13)
			 ? SALUS_ENOMEM
			 : 0;
	sodium_memzero(pre, sizeof pre);
	return rc;
}

static bool pw_verify(const struct salus_users *u, const char *hash, const char *pw, size_t n)
{
	unsigned char pre[32];
	crypto_generichash(pre, sizeof pre, (const unsigned char *)pw, n, u->sec->pepper, SALUS_PEPPER_LEN);
	bool ok = salus_pwhash_verify(hash, (const char *)pre, sizeof pre);
	sodium_memzero(pre, sizeof pre);
	return ok;
}

int salus_users_new(struct salus_store *store, const char *pepper_path, const struct salus_users_opts *o,
		    struct salus_users **out)
{
	int idle = o && o->idle_s ? o->idle_s : 900, abs_s = o && o->absolute_s ? o->absolute_s : 43200;
	if (!store || !pepper_path || idle < 60 || idle > 86400 || abs_s < idle || abs_s > 604800)
		return SALUS_EINVALID;
	int rc = salus_crypto_init();
	if (rc)
		return rc;
	if (oath_init() != OATH_OK)
		return SALUS_ECRYPTO;
	struct salus_users *u = salus_calloc(1, sizeof *u);
	if (!u)
		return SALUS_ENOMEM;
	u->store = store;
	u->idle_ms = idle * 1000;
	u->absolute_ms = abs_s * 1000;
	if (pthread_mutex_init(&u->lock, NULL)) {
		salus_free(u);
		return SALUS_ENOMEM;
	}
	rc = SALUS_ENOMEM;
	if (!(u->addrs = salus_calloc(SALUS_LOCK_ADDR_SLOTS, sizeof *u->addrs)) ||
	    !(u->sec = sodium_malloc(sizeof *u->sec)))
		goto out_fail;
	if ((rc = pepper_load(pepper_path, u->sec->pepper)))
		goto out_fail;
	static const unsigned char ctx[] = "salus-totp-seal-v1";
	crypto_generichash(u->sec->totp_key, sizeof u->sec->totp_key, ctx, sizeof ctx - 1, u->sec->pepper,
			   SALUS_PEPPER_LEN);
	sodium_mprotect_readonly(u->sec);
	char junk[33];
	salus_random_token(24, junk, sizeof junk);
	rc = pw_hash(u, junk, strlen(junk), u->dummy_hash);
	sodium_memzero(junk, sizeof junk);
	if (rc)
		goto out_fail;
	*out = u;
	return 0;
out_fail:
	salus_users_free(u);
	return rc;
}

void salus_users_free(struct salus_users *u)
{
	if (!u)
		return;
	if (u->sec)
		sodium_free(u->sec); /* wipes */
	salus_free(u->addrs);
	pthread_mutex_destroy(&u->lock);
	salus_free(u);
}

/* ---- validation and policy ------------------------------------------------------------------------ */

bool salus_username_valid(const char *name)
{
	size_t n = 0;
	if (!name)
		return false;
	for (; name[n]; n++) {
		char c = name[n];
		if (n >= SALUS_USERNAME_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool fhir_id_valid(const char *id)
{
	size_t n = 0;
	if (!id)
		return false;
	for (; id[n]; n++) {
		char c = id[n];
		if (n >= 64 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
				 c == '.' || c == '-'))
			return false;
	}
	return n > 0;
}

static bool is_common(const char *lower)
{
	size_t lo = 0, hi = salus_common_passwords_n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(lower, salus_common_passwords[mid]);
		if (!c)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return false;
}

/* Valid UTF-8 without C0/C1 control characters or DEL. */
static bool utf8_text(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
		if (!len || i + len > n || (len == 1 && (c < 0x20 || c == 0x7f)) || (len == 2 && c < 0xc2))
			return false;
		unsigned cp = len == 1 ? c : c & (0x7fu >> len);
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3fu);
		}
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0x80 && cp < 0xa0))
			return false;
		i += len;
	}
	return true;
}

int salus_password_policy(const char *pw, size_t n, const char *username, const char **why)
{
	static const char *const w_len = "the password must be 12 to 1024 bytes long";
	if (!pw || n < SALUS_PASSWORD_MIN || n > SALUS_PASSWORD_MAX) {
		*why = w_len;
		return SALUS_EINVALID;
	}
	if (!utf8_text((const unsigned char *)pw, n)) {
		*why = "the password must be UTF-8 text without control characters";
		return SALUS_EINVALID;
	}
	size_t same = 1;
	while (same < n && pw[same] == pw[0])
		same++;
	if (same == n) {
		*why = "the password must not be one character repeated";
		return SALUS_EINVALID;
	}
	char *lower = salus_malloc(n + 1);
	if (!lower)
		return SALUS_ENOMEM;
	for (size_t i = 0; i < n; i++)
		lower[i] = pw[i] >= 'A' && pw[i] <= 'Z' ? (char)(pw[i] - 'A' + 'a') : pw[i];
	lower[n] = 0;
	int rc = 0;
	if (username && *username && strstr(lower, username)) {
		*why = "the password must not contain the username";
		rc = SALUS_EINVALID;
	} else if (is_common(lower)) {
		*why = "this password is on a list of common (breached) passwords";
		rc = SALUS_EINVALID;
	} else {
		/* "Password2024!" is "password" with a suffix: strip trailing digits and punctuation */
		size_t k = n;
		while (k && !((lower[k - 1] >= 'a' && lower[k - 1] <= 'z') || (unsigned char)lower[k - 1] >= 0x80))
			k--;
		size_t b = 0; /* and leading ones: "123password" */
		while (b < k && !((lower[b] >= 'a' && lower[b] <= 'z') || (unsigned char)lower[b] >= 0x80))
			b++;
		lower[k] = 0;
		if (k > b && (k < n || b > 0) && is_common(lower + b)) {
			*why = "this password is a common (breached) password with digits or symbols added";
			rc = SALUS_EINVALID;
		}
	}
	sodium_memzero(lower, n);
	salus_free(lower);
	return rc;
}

/* ---- TOTP ------------------------------------------------------------------------------------------ */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

static void base32_encode(const unsigned char *in, size_t n, char *out /* >= ceil(n*8/5)+1 */)
{
	size_t o = 0;
	unsigned buf = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		buf = buf << 8 | in[i];
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32[(buf << (5 - bits)) & 31];
	out[o] = 0;
}

/* Strict-ish base32 decode (case-insensitive, no padding, spaces ignored). */
static int base32_decode(const char *s, unsigned char *out, size_t cap, size_t *n)
{
	size_t o = 0;
	unsigned buf = 0;
	int bits = 0;
	for (; *s; s++) {
		char c = *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
		if (c == ' ')
			continue;
		const char *p = c ? strchr(b32, c) : NULL;
		if (!p)
			return SALUS_EINVALID;
		buf = buf << 5 | (unsigned)(p - b32);
		bits += 5;
		if (bits >= 8) {
			if (o == cap)
				return SALUS_ETOOLARGE;
			out[o++] = (unsigned char)(buf >> (bits - 8));
			bits -= 8;
		}
	}
	*n = o;
	return 0;
}

int salus_totp_code(const char *secret_b32, int64_t now_s, char out[SALUS_TOTP_DIGITS + 1])
{
	unsigned char sec[64];
	size_t n = 0;
	int rc = base32_decode(secret_b32, sec, sizeof sec, &n);
	if (!rc && oath_totp_generate((const char *)sec, n, (time_t)now_s, SALUS_TOTP_STEP, 0, SALUS_TOTP_DIGITS, out) != OATH_OK)
		rc = SALUS_ECRYPTO;
	sodium_memzero(sec, sizeof sec);
	return rc;
}

int salus_totp_uri(const char *issuer, const char *username, const char *secret_b32, char *out, size_t cap)
{
	/* issuer and username are [A-Za-z0-9._@-] after validation; '@' is encoded */
	struct salus_buf b;
	salus_buf_init(&b, cap ? cap - 1 : 0);
	int rc = salus_buf_adds(&b, "otpauth://totp/");
	for (const char *p = issuer; !rc && *p; p++)
		rc = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
			     *p == '-' || *p == '_'
			     ? salus_buf_addc(&b, *p)
			     : salus_buf_addf(&b, "%%%02X", (unsigned char)*p);
	if (!rc)
		rc = salus_buf_adds(&b, ":");
	for (const char *p = username; !rc && *p; p++)
		rc = *p == '@' ? salus_buf_adds(&b, "%40") : salus_buf_addc(&b, *p);
	if (!rc)
		rc = salus_buf_addf(&b, "?secret=%s&issuer=", secret_b32);
	for (const char *p = issuer; !rc && *p; p++)
		rc = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '.' ||
			     *p == '-' || *p == '_'
			     ? salus_buf_addc(&b, *p)
			     : salus_buf_addf(&b, "%%%02X", (unsigned char)*p);
	if (!rc)
		rc = salus_buf_addf(&b, "&algorithm=SHA1&digits=%d&period=%d", SALUS_TOTP_DIGITS, SALUS_TOTP_STEP);
	if (!rc) {
		memcpy(out, b.p, b.n);
		out[b.n] = 0;
	}
	salus_buf_release(&b);
	return rc ? SALUS_ETOOLARGE : 0;
}

/* Seal a TOTP secret: b64url(nonce || XChaCha20-Poly1305(secret, ad = username)). */
static int totp_seal(const struct salus_users *u, const char *username, const unsigned char sec[SALUS_TOTP_SECRET_LEN],
		     char *out, size_t cap)
{
	unsigned char box[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + SALUS_TOTP_SECRET_LEN +
			  crypto_aead_xchacha20poly1305_ietf_ABYTES];
	randombytes_buf(box, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, sec,
						   SALUS_TOTP_SECRET_LEN, (const unsigned char *)username, strlen(username),
						   NULL, box, u->sec->totp_key);
	return salus_b64url_encode(box, sizeof box, out, cap);
}

static int totp_open(const struct salus_users *u, const char *username, const char *sealed,
		     unsigned char sec[SALUS_TOTP_SECRET_LEN])
{
	unsigned char box[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + SALUS_TOTP_SECRET_LEN +
			  crypto_aead_xchacha20poly1305_ietf_ABYTES];
	size_t n = 0;
	if (!sealed || salus_b64url_decode(sealed, strlen(sealed), box, sizeof box, &n) || n != sizeof box)
		return SALUS_EIO;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(sec, NULL, NULL, box + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
						       sizeof box - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
						       (const unsigned char *)username, strlen(username), box,
						       u->sec->totp_key))
		return SALUS_EIO; /* wrong pepper or tampered record */
	return 0;
}

/* Keyed hash of a normalised recovery code (lower case, no '-' or spaces). */
static int recovery_hash(const struct salus_users *u, const char *code, char out[SALUS_B64URL_LEN(32)])
{
	char norm[32];
	size_t k = 0;
	norm[k++] = 'r';
	norm[k++] = ':';
	for (const char *p = code; *p; p++) {
		if (*p == '-' || *p == ' ')
			continue;
		if (k == sizeof norm)
			return SALUS_EINVALID;
		norm[k++] = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
	}
	unsigned char h[32];
	crypto_generichash(h, sizeof h, (const unsigned char *)norm, k, u->sec->pepper, SALUS_PEPPER_LEN);
	sodium_memzero(norm, sizeof norm);
	return salus_b64url_encode(h, sizeof h, out, SALUS_B64URL_LEN(32));
}

void salus_mfa_enrolment_clear(struct salus_mfa_enrolment *e)
{
	if (e)
		sodium_memzero(e, sizeof *e);
}

/* New secret and codes into *mfa; sets "totp", "mfa":false, "totp_last", "recovery" on rec. */
static int enrol(const struct salus_users *u, const char *username, json_t *rec, struct salus_mfa_enrolment *mfa)
{
	unsigned char sec[SALUS_TOTP_SECRET_LEN];
	char sealed[SALUS_B64URL_LEN(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + SALUS_TOTP_SECRET_LEN +
				     crypto_aead_xchacha20poly1305_ietf_ABYTES)];
	randombytes_buf(sec, sizeof sec);
	base32_encode(sec, sizeof sec, mfa->secret_b32);
	int rc = totp_seal(u, username, sec, sealed, sizeof sealed);
	sodium_memzero(sec, sizeof sec);
	json_t *codes = json_array();
	if (rc || !codes) {
		json_decref(codes);
		return rc ? rc : SALUS_ENOMEM;
	}
	static const char alpha[] = "abcdefghijklmnopqrstuvwxyz234567";
	for (int i = 0; i < SALUS_RECOVERY_CODES; i++) {
		unsigned char rb[10];
		randombytes_buf(rb, sizeof rb);
		char *c = mfa->recovery[i];
		for (int k = 0, o = 0; k < 10; k++) {
			if (k == 5)
				c[o++] = '-';
			c[o++] = alpha[rb[k] & 31];
		}
		c[11] = 0;
		char h[SALUS_B64URL_LEN(32)];
		if ((rc = recovery_hash(u, c, h)) || json_array_append_new(codes, json_string(h))) {
			json_decref(codes);
			return rc ? rc : SALUS_ENOMEM;
		}
	}
	if (json_object_set_new(rec, "totp", json_string(sealed)) || json_object_set_new(rec, "mfa", json_false()) ||
	    json_object_set_new(rec, "totp_last", json_integer(0)) || json_object_set_new(rec, "recovery", codes))
		return SALUS_ENOMEM;
	return 0;
}

/* ---- records ---------------------------------------------------------------------------------------- */

static int user_get(struct salus_users *u, const char *name, json_t **rec)
{
	char *val = NULL;
	size_t n = 0;
	if (!salus_username_valid(name))
		return SALUS_ENOTFOUND;
	int rc = salus_store_kv_get(u->store, USER_NS, name, &val, &n);
	if (rc)
		return rc == SALUS_ENOTFOUND || rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(val, n, JSON_REJECT_DUPLICATES, NULL);
	salus_free(val);
	if (!j || !json_is_object(j) || !json_is_string(json_object_get(j, "pw")) ||
	    !json_is_string(json_object_get(j, "role")) || !json_is_string(json_object_get(j, "gen"))) {
		json_decref(j);
		salus_log(SALUS_LOG_WARN, "auth.user.unreadable", "ns=user");
		return SALUS_EIO;
	}
	*rec = j;
	return 0;
}

static int json_put(struct salus_store *st, const char *ns, const char *key, const json_t *rec)
{
	size_t n = json_dumpb(rec, NULL, 0, JSON_COMPACT);
	char *text = n ? salus_malloc(n) : NULL;
	if (!text)
		return SALUS_ENOMEM;
	json_dumpb(rec, text, n, JSON_COMPACT);
	int rc = salus_store_kv_put(st, ns, key, text, n);
	sodium_memzero(text, n);
	salus_free(text);
	return rc;
}

static int new_gen(json_t *rec)
{
	char gen[SALUS_B64URL_LEN(16)];
	salus_random_token(16, gen, sizeof gen);
	return json_object_set_new(rec, "gen", json_string(gen)) ? SALUS_ENOMEM : 0;
}

/* Does the link fit the role?  why set when not. */
static bool link_fits(enum salus_role role, const char *link, const char **why)
{
	const char *want = salus_role_is_staff(role) ? "Practitioner/" : role == SALUS_ROLE_PATIENT ? "Patient/" : "RelatedPerson/";
	if (!link || !*link) {
		if (role == SALUS_ROLE_PATIENT || role == SALUS_ROLE_RELATED_PERSON) {
			*why = "a patient needs --patient ID (a related person: --related-person ID)";
			return false;
		}
		return true; /* staff may be created before their Practitioner resource */
	}
	if (strncmp(link, want, strlen(want))) {
		*why = salus_role_is_staff(role) ? "a staff role is linked with --practitioner ID"
						 : "a patient or related person is linked with --patient ID";
		return false;
	}
	return true;
}

int salus_user_add(struct salus_users *u, const struct salus_user_new *nu, struct salus_mfa_enrolment *mfa,
		   const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	memset(mfa, 0, sizeof *mfa);
	if (!salus_username_valid(nu->username)) {
		*why = "username must be 1-64 characters of a-z 0-9 . _ @ -";
		return SALUS_EINVALID;
	}
	if ((unsigned)nu->role >= SALUS_ROLE__COUNT) {
		*why = "unknown role";
		return SALUS_EINVALID;
	}
	if ((nu->practitioner && nu->patient) || (nu->practitioner && !fhir_id_valid(nu->practitioner)) ||
	    (nu->patient && !fhir_id_valid(nu->patient))) {
		*why = "give at most one of --practitioner ID and --patient ID, ids of [A-Za-z0-9.-]{1,64}";
		return SALUS_EINVALID;
	}
	char link[96] = "";
	if (nu->practitioner)
		snprintf(link, sizeof link, "Practitioner/%s", nu->practitioner);
	else if (nu->patient)
		snprintf(link, sizeof link, "%s/%s", nu->role == SALUS_ROLE_RELATED_PERSON ? "RelatedPerson" : "Patient",
			 nu->patient);
	if (!link_fits(nu->role, link, why))
		return SALUS_EINVALID;
	int rc = salus_password_policy(nu->password, nu->password_n, nu->username, why);
	if (rc)
		return rc;
	json_t *old = NULL;
	rc = user_get(u, nu->username, &old);
	json_decref(old);
	if (!rc) {
		*why = "a user with this username already exists";
		return SALUS_EEXISTS;
	}
	if (rc != SALUS_ENOTFOUND)
		return rc;
	char hash[SALUS_PWHASH_LEN], created[SALUS_INSTANT_LEN];
	if ((rc = pw_hash(u, nu->password, nu->password_n, hash)))
		return rc;
	salus_instant_format(salus_now_ms(), created);
	json_t *rec = json_pack("{s:s, s:s, s:s, s:s, s:b, s:s}", "username", nu->username, "role",
				salus_role_name(nu->role), "pw", hash, "link", link, "disabled", 0, "created", created);
	if (!rec)
		return SALUS_ENOMEM;
	if (!(rc = new_gen(rec)) && !(rc = enrol(u, nu->username, rec, mfa)))
		rc = json_put(u->store, USER_NS, nu->username, rec);
	json_decref(rec);
	if (rc)
		salus_mfa_enrolment_clear(mfa);
	else
		salus_log(SALUS_LOG_INFO, "auth.user.add", "user=%s role=%s", nu->username, salus_role_name(nu->role));
	return rc;
}

struct list_ctx {
	salus_user_cb cb;
	void *ctx;
	struct salus_users *u;
};

static int lock_key(const struct salus_users *u, const char *username, char out[SALUS_B64URL_LEN(32)]);

static int on_user(void *ctx, const char *key, const char *val, size_t n)
{
	struct list_ctx *lc = ctx;
	json_t *j = json_loadb(val, n, 0, NULL);
	int rc = 0;
	if (j && json_is_object(j)) {
		struct salus_user_info ui = {
			.username = key,
			.role = json_string_value(json_object_get(j, "role")),
			.link = json_string_value(json_object_get(j, "link")),
			.disabled = json_is_true(json_object_get(j, "disabled")),
			.mfa_enrolled = json_is_true(json_object_get(j, "mfa")),
			.created = json_string_value(json_object_get(j, "created")),
		};
		if (!ui.role)
			ui.role = "?";
		if (!ui.link)
			ui.link = "";
		if (!ui.created)
			ui.created = "";
		rc = lc->cb(lc->ctx, &ui);
	}
	json_decref(j);
	return rc;
}

int salus_user_list(struct salus_users *u, salus_user_cb cb, void *ctx)
{
	struct list_ctx lc = {cb, ctx, u};
	return salus_store_kv_list(u->store, USER_NS, on_user, &lc);
}

int salus_user_disable(struct salus_users *u, const char *username)
{
	json_t *rec = NULL;
	int rc = user_get(u, username, &rec);
	if (rc)
		return rc;
	if (json_object_set_new(rec, "disabled", json_true()) || new_gen(rec))
		rc = SALUS_ENOMEM;
	else
		rc = json_put(u->store, USER_NS, username, rec);
	json_decref(rec);
	if (!rc) {
		salus_session_revoke(u, NULL, username); /* the gen changed anyway: this only tidies up */
		salus_log(SALUS_LOG_INFO, "auth.user.disable", "user=%s", username);
	}
	return rc;
}

int salus_user_reset_mfa(struct salus_users *u, const char *username, struct salus_mfa_enrolment *mfa)
{
	memset(mfa, 0, sizeof *mfa);
	json_t *rec = NULL;
	int rc = user_get(u, username, &rec);
	if (rc)
		return rc;
	if (!(rc = enrol(u, username, rec, mfa)) && !(rc = new_gen(rec)))
		rc = json_put(u->store, USER_NS, username, rec);
	json_decref(rec);
	if (rc) {
		salus_mfa_enrolment_clear(mfa);
		return rc;
	}
	char lk[SALUS_B64URL_LEN(32)];
	if (!lock_key(u, username, lk))
		salus_store_kv_del(u->store, LOCK_NS, lk);
	salus_session_revoke(u, NULL, username);
	salus_log(SALUS_LOG_INFO, "auth.user.reset_mfa", "user=%s", username);
	return 0;
}

int salus_user_set_role(struct salus_users *u, const char *username, enum salus_role role, const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if ((unsigned)role >= SALUS_ROLE__COUNT) {
		*why = "unknown role";
		return SALUS_EINVALID;
	}
	json_t *rec = NULL;
	int rc = user_get(u, username, &rec);
	if (rc)
		return rc;
	const char *link = json_string_value(json_object_get(rec, "link"));
	if (!link_fits(role, link, why) ||
	    (link && !strncmp(link, "RelatedPerson/", 14) && role != SALUS_ROLE_RELATED_PERSON) ||
	    (link && !strncmp(link, "Patient/", 8) && role != SALUS_ROLE_PATIENT)) {
		*why = "the user's link (Practitioner / Patient / RelatedPerson) does not fit that role";
		rc = SALUS_EINVALID;
	} else if (json_object_set_new(rec, "role", json_string(salus_role_name(role))) || new_gen(rec)) {
		rc = SALUS_ENOMEM;
	} else {
		rc = json_put(u->store, USER_NS, username, rec);
	}
	json_decref(rec);
	if (!rc) {
		salus_session_revoke(u, NULL, username);
		salus_log(SALUS_LOG_INFO, "auth.user.set_role", "user=%s role=%s", username, salus_role_name(role));
	}
	return rc;
}

/* ---- lockout ------------------------------------------------------------------------------------------ */

static int lock_key(const struct salus_users *u, const char *username, char out[SALUS_B64URL_LEN(32)])
{
	unsigned char h[32];
	crypto_generichash_state st;
	crypto_generichash_init(&st, u->sec->pepper, SALUS_PEPPER_LEN, sizeof h);
	crypto_generichash_update(&st, (const unsigned char *)"u:", 2);
	crypto_generichash_update(&st, (const unsigned char *)username, strlen(username));
	crypto_generichash_final(&st, h, sizeof h);
	return salus_b64url_encode(h, sizeof h, out, SALUS_B64URL_LEN(32));
}

static int64_t backoff_ms(int fails, int after)
{
	if (fails < after)
		return 0;
	int shift = fails - after;
	int64_t s = shift >= 10 ? SALUS_LOCK_MAX_S : (int64_t)SALUS_LOCK_BASE_S << shift;
	return (s > SALUS_LOCK_MAX_S ? SALUS_LOCK_MAX_S : s) * 1000;
}

static struct addr_slot *addr_slot(struct salus_users *u, const char *remote, bool *fresh)
{
	unsigned char k[16];
	crypto_generichash(k, sizeof k, (const unsigned char *)remote, strlen(remote), NULL, 0);
	size_t i;
	memcpy(&i, k, sizeof i);
	struct addr_slot *s = &u->addrs[i & (SALUS_LOCK_ADDR_SLOTS - 1)];
	*fresh = memcmp(s->key, k, sizeof k) != 0;
	if (*fresh) { /* a collision evicts: at worst an attacker's budget is reset by another address */
		memset(s, 0, sizeof *s);
		memcpy(s->key, k, sizeof k);
	}
	return s;
}

/* 0, or SALUS_ERATELIMIT with *retry when the address is blocked. */
static int addr_check(struct salus_users *u, const char *remote, int64_t now, int *retry)
{
	if (!remote || !*remote)
		return 0;
	bool fresh;
	pthread_mutex_lock(&u->lock);
	struct addr_slot *s = addr_slot(u, remote, &fresh);
	int rc = 0;
	if (s->until_ms > now) {
		*retry = (int)((s->until_ms - now + 999) / 1000);
		rc = SALUS_ERATELIMIT;
	}
	pthread_mutex_unlock(&u->lock);
	return rc;
}

static void addr_result(struct salus_users *u, const char *remote, int64_t now, bool ok)
{
	if (!remote || !*remote)
		return;
	bool fresh;
	pthread_mutex_lock(&u->lock);
	struct addr_slot *s = addr_slot(u, remote, &fresh);
	if (ok || now - s->last_ms > (int64_t)SALUS_LOCK_MAX_S * 1000) /* decays after a quiet spell */
		s->fails = 0;
	if (!ok) {
		s->fails++;
		s->last_ms = now;
		int64_t b = backoff_ms(s->fails, SALUS_LOCK_ADDR_AFTER);
		if (b)
			s->until_ms = now + b;
	}
	pthread_mutex_unlock(&u->lock);
}

/* The account's lock state: *fails and *until (0 when no entry). */
static int lock_get(struct salus_users *u, const char *key, int *fails, int64_t *until)
{
	char *val = NULL;
	size_t n = 0;
	*fails = 0;
	*until = 0;
	int rc = salus_store_kv_get(u->store, LOCK_NS, key, &val, &n);
	if (rc == SALUS_ENOTFOUND)
		return 0;
	if (rc)
		return rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(val, n, 0, NULL);
	salus_free(val);
	json_int_t f = 0, t = 0;
	if (j && !json_unpack(j, "{s:I, s:I}", "fail", &f, "until", &t)) {
		*fails = (int)(f > 1000 ? 1000 : f);
		*until = (int64_t)t;
	}
	json_decref(j);
	return 0;
}

static int lock_fail(struct salus_users *u, const char *key, int fails, int64_t now)
{
	fails++;
	int64_t b = backoff_ms(fails, SALUS_LOCK_ACCOUNT_AFTER);
	json_t *j = json_pack("{s:i, s:I, s:I}", "fail", fails, "until", (json_int_t)(b ? now + b : 0), "last",
			      (json_int_t)now);
	if (!j)
		return SALUS_ENOMEM;
	int rc = json_put(u->store, LOCK_NS, key, j);
	json_decref(j);
	return rc;
}

/* ---- login ----------------------------------------------------------------------------------------------- */

static void fill_login(const json_t *rec, const char *username, struct salus_login *out)
{
	memset(out, 0, sizeof *out);
	snprintf(out->username, sizeof out->username, "%s", username);
	salus_role_parse(json_string_value(json_object_get(rec, "role")), &out->role);
	const char *link = json_string_value(json_object_get(rec, "link"));
	snprintf(out->fhir_user, sizeof out->fhir_user, "%s", link ? link : "");
	snprintf(out->gen, sizeof out->gen, "%s", json_string_value(json_object_get(rec, "gen")));
	out->mfa_enrolled = json_is_true(json_object_get(rec, "mfa"));
	out->mfa_required = salus_role_is_staff(out->role) || out->mfa_enrolled;
}

int salus_user_login(struct salus_users *u, const char *username, const char *password, size_t password_n,
		     const char *remote, int64_t now_ms, struct salus_login *out, int *retry_after_s)
{
	*retry_after_s = 0;
	int rc = addr_check(u, remote, now_ms, retry_after_s);
	if (rc)
		return rc;
	/* Names that cannot exist are handled like unknown ones (same hash, same lockout entry). */
	bool valid = salus_username_valid(username) && password && password_n <= SALUS_PASSWORD_MAX;
	char lk[SALUS_B64URL_LEN(32)];
	if ((rc = lock_key(u, valid ? username : "\x01invalid", lk)))
		return rc;
	int fails;
	int64_t until;
	if ((rc = lock_get(u, lk, &fails, &until)))
		return rc;
	json_t *rec = NULL;
	rc = valid ? user_get(u, username, &rec) : SALUS_ENOTFOUND;
	if (rc && rc != SALUS_ENOTFOUND)
		return rc;
	bool locked = until > now_ms;
	bool usable = rec && !json_is_true(json_object_get(rec, "disabled")) && !locked;
	const char *hash = usable ? json_string_value(json_object_get(rec, "pw")) : u->dummy_hash;
	bool ok = pw_verify(u, hash, password ? password : "", password ? password_n : 0) && usable;
	addr_result(u, remote, now_ms, ok);
	if (!ok) {
		json_decref(rec);
		/* attempts while locked are refused without extending the lock */
		if (!locked && (rc = lock_fail(u, lk, fails, now_ms)))
			return rc;
		salus_log(SALUS_LOG_INFO, "auth.login.denied", "locked=%d", locked ? 1 : 0);
		return SALUS_EUNAUTHORIZED;
	}
	if (fails && (rc = salus_store_kv_del(u->store, LOCK_NS, lk)) && rc != SALUS_ENOTFOUND) {
		json_decref(rec);
		return SALUS_EIO;
	}
	fill_login(rec, username, out);
	json_decref(rec);
	return 0;
}

int salus_user_mfa_verify(struct salus_users *u, const char *username, const char *code, const char *remote,
			  int64_t now_ms, int *retry_after_s)
{
	*retry_after_s = 0;
	int rc = addr_check(u, remote, now_ms, retry_after_s);
	if (rc)
		return rc;
	json_t *rec = NULL;
	char lk[SALUS_B64URL_LEN(32)];
	int fails;
	int64_t until;
	if ((rc = lock_key(u, username, lk)) || (rc = lock_get(u, lk, &fails, &until)))
		return rc;
	if ((rc = user_get(u, username, &rec)))
		return rc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : rc;
	bool ok = false, changed = false;
	size_t cn = code ? strlen(code) : 0;
	if (until > now_ms || json_is_true(json_object_get(rec, "disabled")) || cn == 0 || cn > 24) {
		ok = false;
	} else if (cn == SALUS_TOTP_DIGITS) {
		unsigned char sec[SALUS_TOTP_SECRET_LEN];
		if ((rc = totp_open(u, username, json_string_value(json_object_get(rec, "totp")), sec)))
			goto out_rec;
		int pos = 0;
		uint64_t counter = 0;
		int r = oath_totp_validate3((const char *)sec, sizeof sec, (time_t)(now_ms / 1000), SALUS_TOTP_STEP, 0,
					    SALUS_TOTP_WINDOW, &pos, &counter, code);
		sodium_memzero(sec, sizeof sec);
		json_int_t last = json_integer_value(json_object_get(rec, "totp_last"));
		if (r >= 0 && (json_int_t)counter > last) { /* each time step once: no replay */
			ok = changed = true;
			if (json_object_set_new(rec, "totp_last", json_integer((json_int_t)counter)) ||
			    json_object_set_new(rec, "mfa", json_true())) {
				rc = SALUS_ENOMEM;
				goto out_rec;
			}
		}
	} else {
		char h[SALUS_B64URL_LEN(32)];
		json_t *codes = json_object_get(rec, "recovery");
		if (!recovery_hash(u, code, h) && json_is_array(codes)) {
			size_t i, hit = (size_t)-1;
			json_t *v;
			json_array_foreach(codes, i, v) { /* look at every entry: no early exit */
				const char *s = json_string_value(v);
				if (s && strlen(s) == strlen(h) && salus_ct_eq(s, h, strlen(h)))
					hit = i;
			}
			if (hit != (size_t)-1) {
				ok = changed = true;
				json_array_remove(codes, hit);
			}
		}
	}
	addr_result(u, remote, now_ms, ok);
	if (changed && (rc = json_put(u->store, USER_NS, username, rec)))
		goto out_rec;
	if (!ok) {
		if (until <= now_ms && (rc = lock_fail(u, lk, fails, now_ms)))
			goto out_rec;
		salus_log(SALUS_LOG_INFO, "auth.mfa.denied", "user=%s", username);
		rc = SALUS_EUNAUTHORIZED;
	} else if (fails) {
		salus_store_kv_del(u->store, LOCK_NS, lk);
	}
out_rec:
	json_decref(rec);
	return rc;
}

/* What salus_user_current learnt from a user record, keyed by the hash of its exact bytes: the
 * record is still read on every call (so a change by another process counts at once), only its
 * parsing is skipped while the bytes are the same.  Holds no secret (a hash, the generation). */
struct current_slot {
	char username[SALUS_USERNAME_MAX + 1];
	unsigned char h[SALUS_HASH_LEN];
	char gen[32];
	bool disabled, valid;
};
#define CURRENT_SLOTS 256
static struct current_slot current_cache[CURRENT_SLOTS];
static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;

int salus_user_current(struct salus_users *u, const char *username, const char *gen)
{
	char *val = NULL;
	size_t n = 0;
	if (!salus_username_valid(username))
		return SALUS_EUNAUTHORIZED;
	int rc = salus_store_kv_get(u->store, USER_NS, username, &val, &n);
	if (rc)
		return rc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	unsigned char h[SALUS_HASH_LEN];
	salus_hash256(val, n, h);
	uint32_t k = 2166136261u;
	for (const char *p = username; *p; p++)
		k = (k ^ (unsigned char)*p) * 16777619u;
	struct current_slot *sl = &current_cache[k % CURRENT_SLOTS], got = {.valid = false};
	pthread_mutex_lock(&current_lock);
	if (sl->valid && !strcmp(sl->username, username) && !memcmp(sl->h, h, sizeof h))
		got = *sl;
	pthread_mutex_unlock(&current_lock);
	if (!got.valid) {
		json_t *rec = json_loadb(val, n, JSON_REJECT_DUPLICATES, NULL);
		const char *g = json_string_value(json_object_get(rec, "gen"));
		if (!rec || !g || strlen(g) >= sizeof got.gen) {
			json_decref(rec);
			salus_free(val);
			salus_log(SALUS_LOG_WARN, "auth.user.unreadable", "ns=user");
			return SALUS_EIO;
		}
		memcpy(got.username, username, strlen(username) + 1);
		memcpy(got.h, h, sizeof h);
		memcpy(got.gen, g, strlen(g) + 1);
		got.disabled = json_is_true(json_object_get(rec, "disabled"));
		got.valid = true;
		json_decref(rec);
		pthread_mutex_lock(&current_lock);
		*sl = got;
		pthread_mutex_unlock(&current_lock);
	}
	salus_free(val);
	return !got.disabled && gen && strlen(got.gen) == strlen(gen) && salus_ct_eq(got.gen, gen, strlen(gen))
		       ? 0
		       : SALUS_EUNAUTHORIZED;
}

/* ---- sessions --------------------------------------------------------------------------------------------- */

static void session_id(const char *token, char id[SALUS_SESSION_ID_LEN])
{
	unsigned char h[SALUS_HASH_LEN];
	salus_hash256(token, strlen(token), h);
	salus_b64url_encode(h, sizeof h, id, SALUS_SESSION_ID_LEN);
}

int salus_session_new(struct salus_users *u, const struct salus_login *who, const char *remote, int64_t now_ms,
		      char token[SALUS_SESSION_TOKEN_LEN])
{
	char id[SALUS_SESSION_ID_LEN];
	salus_random_token(32, token, SALUS_SESSION_TOKEN_LEN);
	session_id(token, id);
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s}", "user", who->username, "gen", who->gen, "created",
			      (json_int_t)now_ms, "seen", (json_int_t)now_ms, "remote", remote ? remote : "");
	if (!j)
		return SALUS_ENOMEM;
	int rc = json_put(u->store, SESSION_NS, id, j);
	json_decref(j);
	if (rc)
		sodium_memzero(token, SALUS_SESSION_TOKEN_LEN);
	return rc;
}

int salus_session_check(struct salus_users *u, const char *token, int64_t now_ms, struct salus_login *who)
{
	if (!token || strlen(token) != SALUS_SESSION_TOKEN_LEN - 1)
		return SALUS_EUNAUTHORIZED;
	char id[SALUS_SESSION_ID_LEN];
	session_id(token, id);
	char *val = NULL;
	size_t n = 0;
	int rc = salus_store_kv_get(u->store, SESSION_NS, id, &val, &n);
	if (rc)
		return rc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : rc == SALUS_ENOMEM ? rc : SALUS_EIO;
	json_t *j = json_loadb(val, n, 0, NULL);
	salus_free(val);
	const char *user = NULL, *gen = NULL;
	json_int_t created = 0, seen = 0;
	json_t *rec = NULL;
	if (!j || json_unpack(j, "{s:s, s:s, s:I, s:I}", "user", &user, "gen", &gen, "created", &created, "seen", &seen)) {
		rc = SALUS_EUNAUTHORIZED;
	} else if (now_ms - seen > u->idle_ms || now_ms - created > u->absolute_ms) {
		salus_store_kv_del(u->store, SESSION_NS, id); /* idle logoff */
		salus_log(SALUS_LOG_INFO, "auth.session.expired", "user=%s", user);
		rc = SALUS_EUNAUTHORIZED;
	} else if ((rc = user_get(u, user, &rec))) {
		rc = rc == SALUS_ENOTFOUND ? SALUS_EUNAUTHORIZED : rc;
	} else if (json_is_true(json_object_get(rec, "disabled")) ||
		   strcmp(json_string_value(json_object_get(rec, "gen")), gen)) {
		salus_store_kv_del(u->store, SESSION_NS, id);
		rc = SALUS_EUNAUTHORIZED;
	} else {
		fill_login(rec, user, who);
		if (now_ms - seen > SESSION_TOUCH_MS) {
			json_object_set_new(j, "seen", json_integer((json_int_t)now_ms));
			rc = json_put(u->store, SESSION_NS, id, j);
		}
	}
	json_decref(rec);
	json_decref(j);
	return rc;
}

int salus_session_end(struct salus_users *u, const char *token)
{
	if (!token || strlen(token) != SALUS_SESSION_TOKEN_LEN - 1)
		return 0;
	char id[SALUS_SESSION_ID_LEN];
	session_id(token, id);
	int rc = salus_store_kv_del(u->store, SESSION_NS, id);
	return rc == SALUS_ENOTFOUND ? 0 : rc;
}

struct sess_list {
	const char *username;
	salus_session_cb cb;
	void *ctx;
	char (*ids)[SALUS_SESSION_ID_LEN]; /* collect mode (revoke) */
	size_t n, cap;
};

static int on_session(void *ctx, const char *key, const char *val, size_t n)
{
	struct sess_list *sl = ctx;
	json_t *j = json_loadb(val, n, 0, NULL);
	const char *user = NULL, *remote = "";
	json_int_t created = 0, seen = 0;
	int rc = 0;
	if (j && !json_unpack(j, "{s:s, s:I, s:I, s?:s}", "user", &user, "created", &created, "seen", &seen, "remote",
			      &remote) &&
	    (!sl->username || !strcmp(sl->username, user))) {
		if (sl->cb) {
			struct salus_session_info si = {key, user, remote, (int64_t)created, (int64_t)seen};
			rc = sl->cb(sl->ctx, &si);
		} else if (strlen(key) < SALUS_SESSION_ID_LEN) {
			if (sl->n == sl->cap) {
				size_t nc = sl->cap ? sl->cap * 2 : 16;
				void *p = salus_realloc(sl->ids, nc * sizeof *sl->ids);
				if (!p) {
					json_decref(j);
					return SALUS_ENOMEM;
				}
				sl->ids = p;
				sl->cap = nc;
			}
			snprintf(sl->ids[sl->n++], SALUS_SESSION_ID_LEN, "%s", key);
		}
	}
	json_decref(j);
	return rc;
}

int salus_session_list(struct salus_users *u, const char *username, salus_session_cb cb, void *ctx)
{
	struct sess_list sl = {.username = username, .cb = cb, .ctx = ctx};
	return salus_store_kv_list(u->store, SESSION_NS, on_session, &sl);
}

int salus_session_revoke(struct salus_users *u, const char *id, const char *username)
{
	if (id)
		return salus_store_kv_del(u->store, SESSION_NS, id);
	if (!username)
		return SALUS_EINVALID;
	struct sess_list sl = {.username = username};
	int rc = salus_store_kv_list(u->store, SESSION_NS, on_session, &sl);
	for (size_t i = 0; !rc && i < sl.n; i++) {
		rc = salus_store_kv_del(u->store, SESSION_NS, sl.ids[i]);
		if (rc == SALUS_ENOTFOUND)
			rc = 0;
	}
	salus_free(sl.ids);
	return rc;
}

int salus_user_role(struct salus_users *u, const char *username, enum salus_role *out)
{
	json_t *rec = NULL;
	enum salus_role role;
	int rc = user_get(u, username, &rec);
	if (rc)
		return rc;
	if (json_is_true(json_object_get(rec, "disabled")) ||
	    salus_role_parse(json_string_value(json_object_get(rec, "role")), &role))
		rc = SALUS_ENOTFOUND;
	else
		*out = role;
	json_decref(rec);
	return rc;
}
