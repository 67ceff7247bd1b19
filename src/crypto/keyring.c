/*
 * keyring.c — KEK sources, wrapped data keys, the keyring file, rotation and
 * rekey bookkeeping (see keyring.h and docs/security.md).
 *
 * keyring.json (mode 0600, replaced atomically):
 *   {"format":"salus-keyring-1",
 *    "kek":{"version":N,"source":"file|passphrase|command","created":INSTANT,
 *           "kdf":{"alg":"argon2id13","ops":3,"mem":67108864,"salt":B64}},   passphrase only
 *    "deks":[{"id":1,"created":INSTANT,"state":"active|retired|pending","wrapped":B64}],
 *    "active":1,
 *    "rekey":{"from":1,"to":2,"next_page":1,"started":INSTANT},              while a rekey runs
 *    "pwks":[{"id":1,"created":INSTANT,"wrapped":B64}],     patient-key wrapping keys (crypto-shredding)
 *    "fsk":{"created":INSTANT,"wrapped":B64},                 seals the key files (keyfile.c)
 *    "mac":B64}
 * wrapped = nonce(24) || ciphertext(32) || tag(16); mac = keyed BLAKE2b-256
 * of the compact, key-sorted document without "mac", under a KEK subkey.
 */
#include "crypto/keyring.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"
#include "crypto/pwk.h"

#define FORMAT "salus-keyring-1"
#define KEKFILE_MAGIC "salus-kek-1"
#define WRAP_LEN (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + SALUS_DEK_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define KEK_LEN 32
#define MAX_FILE (256 * 1024)
#define PW_OPS 3
#define PW_MEM (64u * 1024 * 1024)

_Static_assert(KEK_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "KEK length");

/* Everything secret, in one sodium_malloc'd block. */
struct secrets {
	unsigned char kek[KEK_LEN];
	unsigned char new_kek[KEK_LEN]; /* during rotation */
	unsigned char scratch[128];     /* command output, decoded key files */
	size_t n;
	struct {
		uint32_t id;
		unsigned char key[SALUS_DEK_LEN];
	} dek[SALUS_KEYRING_MAX_DEKS];
	size_t npwk;
	struct {
		uint32_t id;
		unsigned char key[SALUS_DEK_LEN];
	} pwk[SALUS_KEYRING_MAX_PWKS]; /* patient-key wrapping keys, oldest first */
	bool has_fsk;
	unsigned char fsk[SALUS_DEK_LEN]; /* seals key files (keyfile.c) */
};

struct salus_keyring {
	char *path;
	json_t *doc; /* the file, without "mac" */
	uint32_t kek_version;
	enum salus_kek_source source;
	struct secrets *sec;
};

/* A string member's value, or "" (never NULL). */
static const char *jstr(const json_t *v)
{
	const char *s = json_string_value(v);
	return s ? s : "";
}

static const char *const source_names[] = {"file", "passphrase", "command"};

int salus_kek_source_parse(const char *s, enum salus_kek_source *out)
{
	for (int i = 0; i < 3; i++)
		if (s && !strcmp(s, source_names[i])) {
			*out = (enum salus_kek_source)i;
			return SALUS_OK;
		}
	return SALUS_EINVALID;
}

const char *salus_kek_source_name(enum salus_kek_source s)
{
	return (unsigned)s < 3 ? source_names[s] : "unknown";
}

static int fail(const char **why, const char *msg, int rc)
{
	if (why)
		*why = msg;
	return rc;
}

static void sec_rw(struct salus_keyring *kr)
{
	sodium_mprotect_readwrite(kr->sec);
}

static void sec_ro(struct salus_keyring *kr)
{
	sodium_memzero(kr->sec->scratch, sizeof kr->sec->scratch);
	sodium_mprotect_readonly(kr->sec);
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Read a whole small file (NUL-terminated) into seam memory. */
static int read_small(const char *path, char **out, size_t *n)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct salus_buf b;
	char tmp[4096];
	ssize_t k;
	int rc = SALUS_OK;

	if (fd < 0)
		return errno == ENOENT ? SALUS_ENOTFOUND : SALUS_EIO;
	salus_buf_init(&b, MAX_FILE);
	while ((k = read(fd, tmp, sizeof tmp)) > 0)
		if ((rc = salus_buf_add(&b, tmp, (size_t)k)))
			break;
	if (k < 0)
		rc = SALUS_EIO;
	close(fd);
	sodium_memzero(tmp, sizeof tmp);
	if (rc) {
		salus_buf_release(&b);
		return rc;
	}
	*out = salus_buf_detach(&b, n);
	return *out ? SALUS_OK : SALUS_ENOMEM;
}

/* Replace path atomically with n bytes (mode 0600): temp file, fsync, rename, fsync dir. */

/* Decode a 32-byte key written as base64url (43 chars) or hex (64 chars). */
static int decode_key(const char *s, size_t n, unsigned char out[KEK_LEN])
{
	size_t got = 0;
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n == 2 * KEK_LEN)
		return sodium_hex2bin(out, KEK_LEN, s, n, NULL, &got, NULL) == 0 && got == KEK_LEN ? SALUS_OK
												: SALUS_EINVALID;
	if (salus_b64url_decode(s, n, out, KEK_LEN, &got) || got != KEK_LEN)
		return SALUS_EINVALID;
	return SALUS_OK;
}

/* ---- KEK sources ---------------------------------------------------------------------------- */

/* The key of `version` from a key file (mode must deny group and others). */
static int kek_from_file(const char *path, uint32_t version, unsigned char out[KEK_LEN], const char **why)
{
	struct stat st;
	char *text = NULL, *line, *save = NULL;
	size_t n = 0;
	int rc = SALUS_EINVALID;

	if (!path || !*path)
		return fail(why, "no KEK file configured ([keys] kek_file)", SALUS_EINVALID);
	if (stat(path, &st))
		return fail(why, "KEK file not found", errno == ENOENT ? SALUS_ENOTFOUND : SALUS_EIO);
	if (!S_ISREG(st.st_mode) || (st.st_mode & 077))
		return fail(why, "KEK file must be a regular file with mode 0600", SALUS_EINVALID);
	if ((rc = read_small(path, &text, &n)))
		return fail(why, "cannot read the KEK file", rc);
	rc = fail(why, "KEK file is malformed", SALUS_EINVALID);
	line = strtok_r(text, "\n", &save);
	if (!line || strcmp(line, KEKFILE_MAGIC))
		goto out_text;
	fail(why, "KEK file has no key of the keyring's KEK version", rc);
	while ((line = strtok_r(NULL, "\n", &save))) {
		char *sp = strchr(line, ' ');
		long v;
		if (!sp || salus_parse_long((struct salus_slice){line, (size_t)(sp - line)}, 1, UINT32_MAX, &v))
			continue;
		if ((uint32_t)v == version) {
			rc = decode_key(sp + 1, strlen(sp + 1), out);
			break;
		}
	}
out_text:
	sodium_memzero(text, n);
	salus_free(text);
	return rc;
}

/* Run the KEK command for `version`; its stdout (<= 127 bytes) is the key. */
static int kek_from_command(const char *cmd, uint32_t version, struct secrets *sec, unsigned char out[KEK_LEN],
			    const char **why)
{
	int fds[2], status = 0;
	size_t n = 0;
	ssize_t k;
	pid_t pid;
	char ver[16];

	if (!cmd || !*cmd)
		return fail(why, "no KEK command configured ([keys] kek_command)", SALUS_EINVALID);
	snprintf(ver, sizeof ver, "%u", version);
	if (pipe2(fds, O_CLOEXEC))
		return fail(why, "cannot run the KEK command", SALUS_EIO);
	if ((pid = fork()) < 0) {
		close(fds[0]);
		close(fds[1]);
		return fail(why, "cannot run the KEK command", SALUS_EIO);
	}
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		setenv("SALUS_KEK_VERSION", ver, 1);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	while (n < sizeof sec->scratch - 1 &&
	       (k = read(fds[0], sec->scratch + n, sizeof sec->scratch - 1 - n)) > 0)
		n += (size_t)k;
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return fail(why, "the KEK command failed", SALUS_EINVALID);
	if (decode_key((const char *)sec->scratch, n, out))
		return fail(why, "the KEK command printed no 32-byte key (base64url or hex)", SALUS_EINVALID);
	return SALUS_OK;
}

static const char *passphrase_of(const struct salus_kek_config *kc, bool new_one)
{
	const char *p = NULL;
	if (new_one)
		p = getenv("SALUS_KEK_NEW_PASSPHRASE");
	if (!p || !*p)
		p = kc->passphrase ? kc->passphrase : getenv("SALUS_KEK_PASSPHRASE");
	return p && *p ? p : NULL;
}

static int kek_from_passphrase(const char *pass, const json_t *kdf, unsigned char out[KEK_LEN], const char **why)
{
	unsigned char salt[crypto_pwhash_SALTBYTES];
	const char *s = json_string_value(json_object_get(kdf, "salt"));
	json_int_t ops = json_integer_value(json_object_get(kdf, "ops"));
	json_int_t mem = json_integer_value(json_object_get(kdf, "mem"));
	size_t got = 0;

	if (!pass)
		return fail(why, "no passphrase (set SALUS_KEK_PASSPHRASE)", SALUS_EINVALID);
	if (!s || salus_b64url_decode(s, strlen(s), salt, sizeof salt, &got) || got != sizeof salt || ops < 1 ||
	    ops > 64 || mem < 8192 || mem > (json_int_t)4096 * 1024 * 1024)
		return fail(why, "keyring has bad passphrase parameters", SALUS_EINVALID);
	if (crypto_pwhash(out, KEK_LEN, pass, strlen(pass), salt, (unsigned long long)ops, (size_t)mem,
			  crypto_pwhash_ALG_ARGON2ID13))
		return fail(why, "not enough memory for Argon2id", SALUS_ENOMEM);
	return SALUS_OK;
}

/* A new kdf object with a random salt. */
static json_t *new_kdf(void)
{
	unsigned char salt[crypto_pwhash_SALTBYTES];
	char b64[SALUS_B64URL_LEN(sizeof salt)];
	randombytes_buf(salt, sizeof salt);
	salus_b64url_encode(salt, sizeof salt, b64, sizeof b64);
	return json_pack("{s:s, s:i, s:I, s:s}", "alg", "argon2id13", "ops", PW_OPS, "mem", (json_int_t)PW_MEM, "salt",
			 b64);
}

/* The KEK of `version` for the keyring's kek object. */
static int get_kek(const struct salus_kek_config *kc, const json_t *kek, uint32_t version, bool new_pass,
		   struct secrets *sec, unsigned char out[KEK_LEN], const char **why)
{
	switch (kc->source) {
	case SALUS_KEK_FILE:
		return kek_from_file(kc->kek_file, version, out, why);
	case SALUS_KEK_PASSPHRASE:
		return kek_from_passphrase(passphrase_of(kc, new_pass), json_object_get(kek, "kdf"), out, why);
	case SALUS_KEK_COMMAND:
		return kek_from_command(kc->command, version, sec, out, why);
	}
	return fail(why, "unknown KEK source", SALUS_EINVALID);
}

/* ---- wrapping and the MAC ------------------------------------------------------------------- */

/* label: "salus-dek" (data keys) or "salus-pwk" (patient-key wrapping keys),
 * so a wrapped key of one kind can never be passed off as the other. */
static void wrap_ad_l(unsigned char ad[17], const char *label, uint32_t id, uint32_t kek_version)
{
	memcpy(ad, label, 9);
	for (int i = 0; i < 4; i++) {
		ad[9 + i] = (unsigned char)(id >> (8 * i));
		ad[13 + i] = (unsigned char)(kek_version >> (8 * i));
	}
}

static json_t *wrap_key(const char *label, const unsigned char kek[KEK_LEN], uint32_t kek_version, uint32_t id,
			const unsigned char dek[SALUS_DEK_LEN])
{
	unsigned char w[WRAP_LEN], ad[17];
	char b64[SALUS_B64URL_LEN(WRAP_LEN)];
	wrap_ad_l(ad, label, id, kek_version);
	randombytes_buf(w, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(w + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, NULL, dek,
						   SALUS_DEK_LEN, ad, sizeof ad, NULL, w, kek);
	salus_b64url_encode(w, sizeof w, b64, sizeof b64);
	return json_string(b64);
}

static json_t *wrap_dek(const unsigned char kek[KEK_LEN], uint32_t kek_version, uint32_t id,
			const unsigned char dek[SALUS_DEK_LEN])
{
	return wrap_key("salus-dek", kek, kek_version, id, dek);
}

static int unwrap_key(const char *label, const unsigned char kek[KEK_LEN], uint32_t kek_version, uint32_t id,
		      const char *b64, unsigned char dek[SALUS_DEK_LEN])
{
	unsigned char w[WRAP_LEN], ad[17];
	size_t got = 0;
	if (!b64 || salus_b64url_decode(b64, strlen(b64), w, sizeof w, &got) || got != WRAP_LEN)
		return SALUS_EINVALID;
	wrap_ad_l(ad, label, id, kek_version);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dek, NULL, NULL, w + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
						       WRAP_LEN - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, ad,
						       sizeof ad, w, kek))
		return SALUS_ECRYPTO;
	return SALUS_OK;
}

static int unwrap_dek(const unsigned char kek[KEK_LEN], uint32_t kek_version, uint32_t id, const char *b64,
		      unsigned char dek[SALUS_DEK_LEN])
{
	return unwrap_key("salus-dek", kek, kek_version, id, b64, dek);
}

/* MAC of doc (without "mac") under a subkey of kek, base64url into out. */
static int doc_mac(const json_t *doc, const unsigned char kek[KEK_LEN], char out[SALUS_B64URL_LEN(32)])
{
	unsigned char mk[32], tag[32];
	char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text)
		return SALUS_ENOMEM;
	crypto_kdf_derive_from_key(mk, sizeof mk, 2, "salusKRM", kek);
	crypto_generichash(tag, sizeof tag, (const unsigned char *)text, strlen(text), mk, sizeof mk);
	sodium_memzero(mk, sizeof mk);
	salus_free(text);
	salus_b64url_encode(tag, sizeof tag, out, SALUS_B64URL_LEN(32));
	return SALUS_OK;
}

/* Write the keyring (doc + MAC under kek) atomically. */
static int save(const char *path, const json_t *doc, const unsigned char kek[KEK_LEN], bool must_not_exist)
{
	char mac[SALUS_B64URL_LEN(32)];
	json_t *out;
	char *text;
	int rc;

	if ((rc = doc_mac(doc, kek, mac)))
		return rc;
	if (!(out = json_deep_copy(doc)) || json_object_set_new(out, "mac", json_string(mac))) {
		json_decref(out);
		return SALUS_ENOMEM;
	}
	text = json_dumps(out, JSON_INDENT(1) | JSON_SORT_KEYS);
	json_decref(out);
	if (!text)
		return SALUS_ENOMEM;
	rc = salus_crypto_write_atomic(path, text, strlen(text), must_not_exist);
	salus_free(text);
	return rc;
}

static json_t *dek_entry(uint32_t id, json_t *wrapped, const char *state)
{
	char now[SALUS_INSTANT_LEN];
	salus_instant_format(salus_now_ms(), now);
	return json_pack("{s:I, s:s, s:s, s:o}", "id", (json_int_t)id, "created", now, "state", state, "wrapped",
			 wrapped);
}

/* ---- create / open -------------------------------------------------------------------------- */

static struct secrets *sec_new(void)
{
	struct secrets *s = sodium_malloc(sizeof *s);
	if (s)
		memset(s, 0, sizeof *s);
	return s;
}

/* Append "VERSION KEY" to the key file (creating it with the magic line). */
static int kekfile_add(const char *path, uint32_t version, const unsigned char kek[KEK_LEN], bool create)
{
	char *old = NULL;
	size_t n = 0;
	struct salus_buf b;
	char b64[SALUS_B64URL_LEN(KEK_LEN)];
	int rc;

	salus_buf_init(&b, MAX_FILE);
	if (!create && (rc = read_small(path, &old, &n)))
		return rc;
	salus_b64url_encode(kek, KEK_LEN, b64, sizeof b64);
	rc = create ? salus_buf_adds(&b, KEKFILE_MAGIC "\n") : salus_buf_add(&b, old, n);
	if (!rc)
		rc = salus_buf_addf(&b, "%u %s\n", version, b64);
	if (!rc)
		rc = salus_crypto_write_atomic(path, b.p, b.n, create);
	sodium_memzero(b64, sizeof b64);
	if (old) {
		sodium_memzero(old, n);
		salus_free(old);
	}
	if (b.cap)
		sodium_memzero(b.p, b.n);
	salus_buf_release(&b);
	return rc;
}

/* Rewrite the key file with only `version` (after a rotation). */
static int kekfile_keep(const char *path, uint32_t version, const unsigned char kek[KEK_LEN])
{
	char tmp[SALUS_PATH_MAX + 8];
	if (snprintf(tmp, sizeof tmp, "%s.new", path) >= (int)sizeof tmp)
		return SALUS_EINVALID;
	unlink(tmp);
	int rc = kekfile_add(tmp, version, kek, true);
	if (!rc && rename(tmp, path))
		rc = SALUS_EIO;
	return rc;
}

int salus_keyring_create(const char *path, const struct salus_kek_config *kc, const char **why)
{
	struct secrets *sec;
	json_t *doc = NULL, *kek;
	char now[SALUS_INSTANT_LEN];
	struct stat st;
	int rc;

	if (!path || !kc)
		return fail(why, "no keyring path", SALUS_EINVALID);
	if (salus_crypto_init())
		return fail(why, "libsodium failed to initialise", SALUS_ECRYPTO);
	if (stat(path, &st) == 0)
		return fail(why, "the keyring already exists", SALUS_EEXISTS);
	if (!(sec = sec_new()))
		return fail(why, "out of secure memory", SALUS_ENOMEM);
	salus_instant_format(salus_now_ms(), now);
	kek = json_pack("{s:i, s:s, s:s}", "version", 1, "source", salus_kek_source_name(kc->source), "created", now);
	if (kek && kc->source == SALUS_KEK_PASSPHRASE)
		json_object_set_new(kek, "kdf", new_kdf());
	doc = json_pack("{s:s, s:o, s:[], s:i}", "format", FORMAT, "kek", kek, "deks", "active", 1);
	if (!doc) {
		rc = fail(why, "out of memory", SALUS_ENOMEM);
		goto out_sec;
	}
	if (kc->source == SALUS_KEK_FILE) {
		randombytes_buf(sec->kek, KEK_LEN);
		if ((rc = kekfile_add(kc->kek_file, 1, sec->kek, true))) {
			fail(why, rc == SALUS_EEXISTS ? "the KEK file already exists" : "cannot write the KEK file", rc);
			goto out_sec;
		}
	} else if ((rc = get_kek(kc, kek, 1, false, sec, sec->kek, why))) {
		goto out_sec;
	}
	randombytes_buf(sec->dek[0].key, SALUS_DEK_LEN);
	if (json_array_append_new(json_object_get(doc, "deks"), dek_entry(1, wrap_dek(sec->kek, 1, 1, sec->dek[0].key), "active"))) {
		rc = fail(why, "out of memory", SALUS_ENOMEM);
		goto out_sec;
	}
	if ((rc = save(path, doc, sec->kek, true)))
		fail(why, "cannot write the keyring", rc);
out_sec:
	json_decref(doc);
	sodium_free(sec);
	return rc;
}

static uint32_t u32_of(const json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));
	return v > 0 && v <= UINT32_MAX ? (uint32_t)v : 0;
}

int salus_keyring_open(const char *path, const struct salus_kek_config *kc, struct salus_keyring **out,
		       const char **why)
{
	struct salus_keyring *kr;
	json_t *deks, *e;
	json_error_t jerr;
	char *text = NULL, mac[SALUS_B64URL_LEN(32)];
	const char *given;
	size_t n = 0, i;
	int rc;

	if (!path || !kc || !out)
		return fail(why, "bad arguments", SALUS_EINVALID);
	if (salus_crypto_init())
		return fail(why, "libsodium failed to initialise", SALUS_ECRYPTO);
	if ((rc = read_small(path, &text, &n)))
		return fail(why, rc == SALUS_ENOTFOUND ? "no keyring (run salus init)" : "cannot read the keyring", rc);
	if (!(kr = salus_calloc(1, sizeof *kr))) {
		salus_free(text);
		return fail(why, "out of memory", SALUS_ENOMEM);
	}
	kr->doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
	salus_free(text);
	rc = fail(why, "the keyring is malformed", SALUS_EINVALID);
	if (!kr->doc || !json_is_object(kr->doc) ||
	    strcmp(jstr(json_object_get(kr->doc, "format")), FORMAT))
		goto out_free;
	given = json_string_value(json_object_get(kr->doc, "mac"));
	if (!given || strlen(given) >= sizeof mac)
		goto out_free;
	memcpy(mac, given, strlen(given) + 1);
	json_object_del(kr->doc, "mac");
	json_t *kek = json_object_get(kr->doc, "kek");
	kr->kek_version = u32_of(kek, "version");
	deks = json_object_get(kr->doc, "deks");
	if (!kr->kek_version || !json_is_array(deks) || json_array_size(deks) > SALUS_KEYRING_MAX_DEKS ||
	    salus_kek_source_parse(json_string_value(json_object_get(kek, "source")), &kr->source))
		goto out_free;
	if (kr->source != kc->source) {
		rc = fail(why, "the configured KEK source differs from the keyring's ([keys] kek_source)", SALUS_EINVALID);
		goto out_free;
	}
	if (!(kr->path = salus_strdup(path)) || !(kr->sec = sec_new())) {
		rc = fail(why, "out of memory", SALUS_ENOMEM);
		goto out_free;
	}
	if ((rc = get_kek(kc, kek, kr->kek_version, false, kr->sec, kr->sec->kek, why)))
		goto out_free;
	json_array_foreach(deks, i, e) {
		uint32_t id = u32_of(e, "id");
		const char *state = json_string_value(json_object_get(e, "state"));
		if (!id || !state) {
			rc = fail(why, "the keyring is malformed", SALUS_EINVALID);
			goto out_free;
		}
		if (!strcmp(state, "destroyed"))
			continue;
		rc = unwrap_dek(kr->sec->kek, kr->kek_version, id, json_string_value(json_object_get(e, "wrapped")),
				kr->sec->dek[kr->sec->n].key);
		if (rc) {
			fail(why, rc == SALUS_ECRYPTO ? "wrong key or passphrase (a data key does not unwrap)"
						      : "the keyring is malformed", rc);
			goto out_free;
		}
		kr->sec->dek[kr->sec->n++].id = id;
	}
	json_t *pwks = json_object_get(kr->doc, "pwks");
	if (pwks && (!json_is_array(pwks) || json_array_size(pwks) > SALUS_KEYRING_MAX_PWKS)) {
		rc = fail(why, "the keyring is malformed", SALUS_EINVALID);
		goto out_free;
	}
	json_array_foreach(pwks, i, e) {
		uint32_t id = u32_of(e, "id");
		size_t k = kr->sec->npwk;
		if (!id || (k && kr->sec->pwk[k - 1].id >= id)) {
			rc = fail(why, "the keyring is malformed", SALUS_EINVALID);
			goto out_free;
		}
		rc = unwrap_key("salus-pwk", kr->sec->kek, kr->kek_version, id,
				json_string_value(json_object_get(e, "wrapped")), kr->sec->pwk[k].key);
		if (rc) {
			fail(why, rc == SALUS_ECRYPTO ? "wrong key or passphrase (a patient wrapping key does not unwrap)"
						      : "the keyring is malformed", rc);
			goto out_free;
		}
		kr->sec->pwk[kr->sec->npwk++].id = id;
	}
	json_t *fsk = json_object_get(kr->doc, "fsk");
	if (fsk) {
		rc = unwrap_key("salus-fsk", kr->sec->kek, kr->kek_version, 1,
				json_string_value(json_object_get(fsk, "wrapped")), kr->sec->fsk);
		if (rc) {
			fail(why, rc == SALUS_ECRYPTO ? "wrong key or passphrase (the file-sealing key does not unwrap)"
						      : "the keyring is malformed", rc);
			goto out_free;
		}
		kr->sec->has_fsk = true;
	}
	{
		char want[SALUS_B64URL_LEN(32)];
		if ((rc = doc_mac(kr->doc, kr->sec->kek, want)))
			goto out_free;
		if (strlen(want) != strlen(mac) || !salus_ct_eq(want, mac, strlen(mac))) {
			rc = fail(why, "the keyring was modified (MAC mismatch)", SALUS_ECRYPTO);
			goto out_free;
		}
	}
	uint32_t active = u32_of(kr->doc, "active");
	for (i = 0; i < kr->sec->n && kr->sec->dek[i].id != active; i++)
		;
	if (i == kr->sec->n) {
		rc = fail(why, "the keyring's active data key is missing", SALUS_EINVALID);
		goto out_free;
	}
	sec_ro(kr);
	*out = kr;
	return SALUS_OK;
out_free:
	salus_keyring_free(kr);
	return rc;
}

void salus_keyring_free(struct salus_keyring *kr)
{
	if (!kr)
		return;
	sodium_free(kr->sec); /* wipes; NULL-safe */
	json_decref(kr->doc);
	salus_free(kr->path);
	salus_free(kr);
}

size_t salus_keyring_count(const struct salus_keyring *kr)
{
	return kr->sec->n;
}

uint32_t salus_keyring_active(const struct salus_keyring *kr)
{
	return u32_of(kr->doc, "active");
}

int salus_keyring_page_key(const struct salus_keyring *kr, size_t i, uint32_t *id, unsigned char key[SALUS_DEK_LEN])
{
	if (i >= kr->sec->n)
		return SALUS_EINVALID;
	*id = kr->sec->dek[i].id;
	crypto_kdf_derive_from_key(key, SALUS_DEK_LEN, 1, "salusPG1", kr->sec->dek[i].key);
	return SALUS_OK;
}

/* ---- rotation and rekey --------------------------------------------------------------------- */

int salus_keyring_rotate_kek(struct salus_keyring *kr, const struct salus_kek_config *kc, const char **why)
{
	json_t *doc, *kek, *deks, *e;
	uint32_t nv = kr->kek_version + 1;
	char now[SALUS_INSTANT_LEN];
	size_t i;
	int rc;

	if (!(doc = json_deep_copy(kr->doc)))
		return fail(why, "out of memory", SALUS_ENOMEM);
	kek = json_object_get(doc, "kek");
	salus_instant_format(salus_now_ms(), now);
	json_object_set_new(kek, "version", json_integer(nv));
	json_object_set_new(kek, "created", json_string(now));
	sec_rw(kr);
	if (kc->source == SALUS_KEK_PASSPHRASE)
		json_object_set_new(kek, "kdf", new_kdf());
	if (kc->source == SALUS_KEK_FILE) {
		randombytes_buf(kr->sec->new_kek, KEK_LEN);
		/* 1: the key file holds both versions (either keyring works) */
		if ((rc = kekfile_add(kc->kek_file, nv, kr->sec->new_kek, false))) {
			fail(why, "cannot write the KEK file", rc);
			goto out_doc;
		}
	} else if ((rc = get_kek(kc, kek, nv, true, kr->sec, kr->sec->new_kek, why))) {
		goto out_doc;
	}
	deks = json_object_get(doc, "deks");
	json_array_foreach(deks, i, e) {
		uint32_t id = u32_of(e, "id");
		size_t k;
		if (!strcmp(jstr(json_object_get(e, "state")), "destroyed"))
			continue;
		for (k = 0; k < kr->sec->n && kr->sec->dek[k].id != id; k++)
			;
		if (k == kr->sec->n || json_object_set_new(e, "wrapped", wrap_dek(kr->sec->new_kek, nv, id, kr->sec->dek[k].key))) {
			rc = fail(why, "out of memory", SALUS_ENOMEM);
			goto out_doc;
		}
	}
	json_array_foreach(json_object_get(doc, "pwks"), i, e) {
		uint32_t id = u32_of(e, "id");
		size_t k;
		for (k = 0; k < kr->sec->npwk && kr->sec->pwk[k].id != id; k++)
			;
		if (k == kr->sec->npwk ||
		    json_object_set_new(e, "wrapped", wrap_key("salus-pwk", kr->sec->new_kek, nv, id, kr->sec->pwk[k].key))) {
			rc = fail(why, "out of memory", SALUS_ENOMEM);
			goto out_doc;
		}
	}
	if (kr->sec->has_fsk &&
	    json_object_set_new(json_object_get(doc, "fsk"), "wrapped",
				wrap_key("salus-fsk", kr->sec->new_kek, nv, 1, kr->sec->fsk))) {
		rc = fail(why, "out of memory", SALUS_ENOMEM);
		goto out_doc;
	}
	/* 2: the keyring switches to the new version in one rename */
	if ((rc = save(kr->path, doc, kr->sec->new_kek, false))) {
		fail(why, "cannot write the keyring", rc);
		goto out_doc;
	}
	/* 3: the old KEK is gone from the key file */
	if (kc->source == SALUS_KEK_FILE)
		kekfile_keep(kc->kek_file, nv, kr->sec->new_kek); /* on failure the old line stays; harmless */
	memcpy(kr->sec->kek, kr->sec->new_kek, KEK_LEN);
	json_decref(kr->doc);
	kr->doc = doc;
	doc = NULL;
	kr->kek_version = nv;
	rc = SALUS_OK;
out_doc:
	sodium_memzero(kr->sec->new_kek, KEK_LEN);
	sec_ro(kr);
	json_decref(doc);
	return rc;
}

/* Save a modified copy of the document and adopt it. */
static int commit_doc(struct salus_keyring *kr, json_t *doc)
{
	int rc = save(kr->path, doc, kr->sec->kek, false);
	if (rc) {
		json_decref(doc);
		return rc;
	}
	json_decref(kr->doc);
	kr->doc = doc;
	return SALUS_OK;
}

/* The id of the pending DEK (prepared by salus_keyring_dek_prepare), or 0. */
uint32_t salus_keyring_pending(const struct salus_keyring *kr)
{
	json_t *e;
	size_t i;
	json_array_foreach(json_object_get(kr->doc, "deks"), i, e)
		if (!strcmp(jstr(json_object_get(e, "state")), "pending"))
			return u32_of(e, "id");
	return 0;
}

/* Add a new random DEK in `state` to doc and to the secrets (not saved). */
static int dek_add(struct salus_keyring *kr, json_t *doc, const char *state, uint32_t *id_out)
{
	json_t *e;
	uint32_t id = 0;
	size_t i, k = kr->sec->n;

	if (k >= SALUS_KEYRING_MAX_DEKS)
		return SALUS_ETOOLARGE;
	/* ids are never reused, not even a dropped pending key's (kr->doc still has it) */
	json_array_foreach(json_object_get(doc, "deks"), i, e)
		if (u32_of(e, "id") > id)
			id = u32_of(e, "id");
	json_array_foreach(json_object_get(kr->doc, "deks"), i, e)
		if (u32_of(e, "id") > id)
			id = u32_of(e, "id");
	id++;
	kr->sec->dek[k].id = id;
	randombytes_buf(kr->sec->dek[k].key, SALUS_DEK_LEN);
	if (json_array_append_new(json_object_get(doc, "deks"),
				  dek_entry(id, wrap_dek(kr->sec->kek, kr->kek_version, id, kr->sec->dek[k].key), state))) {
		sodium_memzero(&kr->sec->dek[k], sizeof kr->sec->dek[k]);
		return SALUS_ENOMEM;
	}
	*id_out = id;
	return SALUS_OK;
}

int salus_keyring_dek_prepare(struct salus_keyring *kr, uint32_t *id)
{
	json_t *doc;
	int rc;

	if ((*id = salus_keyring_pending(kr)))
		return SALUS_OK;
	if (!(doc = json_deep_copy(kr->doc)))
		return SALUS_ENOMEM;
	sec_rw(kr);
	uint32_t nid = 0;
	if ((rc = dek_add(kr, doc, "pending", &nid))) {
		json_decref(doc);
		goto out_ro;
	}
	if ((rc = commit_doc(kr, doc)) == SALUS_OK) {
		kr->sec->n++;
		*id = nid;
	} else {
		sodium_memzero(&kr->sec->dek[kr->sec->n], sizeof kr->sec->dek[0]);
	}
out_ro:
	sec_ro(kr);
	return rc;
}

int salus_keyring_rekey_begin(struct salus_keyring *kr, bool online, uint32_t *next_page)
{
	json_t *rk = json_object_get(kr->doc, "rekey"), *doc, *e;
	char now[SALUS_INSTANT_LEN];
	uint32_t id = 0, pending = salus_keyring_pending(kr);
	size_t i;
	int rc;

	if (rk) {
		*next_page = u32_of(rk, "next_page") ? u32_of(rk, "next_page") : 1;
		return SALUS_OK;
	}
	if (online && !pending)
		return SALUS_ENOTFOUND;
	if (!(doc = json_deep_copy(kr->doc)))
		return SALUS_ENOMEM;
	sec_rw(kr);
	if (online) {
		/* the key the running server already holds as its next key */
		id = pending;
		json_array_foreach(json_object_get(doc, "deks"), i, e)
			if (u32_of(e, "id") == id)
				json_object_set_new(e, "state", json_string("active"));
	} else {
		/* offline: a fresh key; a pending one (which a server's memory held) is dropped */
		if (pending) {
			json_t *deks = json_object_get(doc, "deks");
			json_array_foreach(deks, i, e)
				if (u32_of(e, "id") == pending) {
					json_array_remove(deks, i);
					break;
				}
			for (i = 0; i < kr->sec->n && kr->sec->dek[i].id != pending; i++)
				;
			if (i < kr->sec->n) {
				memmove(&kr->sec->dek[i], &kr->sec->dek[i + 1], (kr->sec->n - i - 1) * sizeof kr->sec->dek[0]);
				kr->sec->n--;
				sodium_memzero(&kr->sec->dek[kr->sec->n], sizeof kr->sec->dek[0]);
			}
		}
		if ((rc = dek_add(kr, doc, "active", &id))) {
			json_decref(doc);
			goto out_ro;
		}
	}
	salus_instant_format(salus_now_ms(), now);
	if (json_object_set_new(doc, "rekey", json_pack("{s:I, s:I, s:i, s:s}", "from", (json_int_t)salus_keyring_active(kr),
							"to", (json_int_t)id, "next_page", 1, "started", now)) ||
	    json_object_set_new(doc, "active", json_integer(id))) {
		json_decref(doc);
		rc = SALUS_ENOMEM;
		goto out_new;
	}
	if ((rc = commit_doc(kr, doc)) == SALUS_OK) {
		if (!online)
			kr->sec->n++;
		*next_page = 1;
	}
out_new:
	if (rc && !online)
		sodium_memzero(&kr->sec->dek[kr->sec->n], sizeof kr->sec->dek[0]);
out_ro:
	sec_ro(kr);
	return rc;
}

int salus_keyring_rekey_progress(struct salus_keyring *kr, uint32_t next_page)
{
	json_t *doc = json_deep_copy(kr->doc);
	if (!doc || json_object_set_new(json_object_get(doc, "rekey"), "next_page", json_integer(next_page))) {
		json_decref(doc);
		return SALUS_ENOMEM;
	}
	return commit_doc(kr, doc);
}

int salus_keyring_rekey_finish(struct salus_keyring *kr)
{
	json_t *doc = json_deep_copy(kr->doc), *e;
	uint32_t active = salus_keyring_active(kr);
	size_t i;
	if (!doc)
		return SALUS_ENOMEM;
	json_object_del(doc, "rekey");
	json_array_foreach(json_object_get(doc, "deks"), i, e)
		if (u32_of(e, "id") != active &&
		    !strcmp(jstr(json_object_get(e, "state")), "active"))
			json_object_set_new(e, "state", json_string("retired"));
	return commit_doc(kr, doc);
}

/* ---- patient-key wrapping keys (crypto-shredding) ------------------------------------------- */

size_t salus_keyring_pwk_count(const struct salus_keyring *kr)
{
	return kr->sec->npwk;
}

int salus_keyring_pwk(const struct salus_keyring *kr, size_t i, uint32_t *id, unsigned char key[SALUS_DEK_LEN])
{
	if (i >= kr->sec->npwk)
		return SALUS_EINVALID;
	*id = kr->sec->pwk[i].id;
	salus_pwk_wrapping_key(kr->sec->pwk[i].key, key);
	return SALUS_OK;
}

static int pwk_add(struct salus_keyring *kr, bool successor);

int salus_keyring_pwk_add(struct salus_keyring *kr)
{
	return pwk_add(kr, false);
}

int salus_keyring_pwk_add_successor(struct salus_keyring *kr)
{
	return kr->sec->npwk ? pwk_add(kr, true) : SALUS_EINVALID;
}

static int pwk_add(struct salus_keyring *kr, bool successor)
{
	json_t *doc, *arr;
	size_t k = kr->sec->npwk;
	uint32_t id = k ? kr->sec->pwk[k - 1].id + 1 : 1;
	int rc;

	if (k >= SALUS_KEYRING_MAX_PWKS)
		return SALUS_ETOOLARGE;
	if (!(doc = json_deep_copy(kr->doc)))
		return SALUS_ENOMEM;
	if (!(arr = json_object_get(doc, "pwks")) && json_object_set_new(doc, "pwks", arr = json_array())) {
		json_decref(doc);
		return SALUS_ENOMEM;
	}
	sec_rw(kr);
	kr->sec->pwk[k].id = id;
	if (successor) {
		unsigned char w[SALUS_DEK_LEN];
		salus_pwk_wrapping_key(kr->sec->pwk[k - 1].key, w);
		salus_pwk_successor(w, id, kr->sec->pwk[k].key);
		sodium_memzero(w, sizeof w);
	} else {
		randombytes_buf(kr->sec->pwk[k].key, SALUS_DEK_LEN);
	}
	char now[SALUS_INSTANT_LEN];
	salus_instant_format(salus_now_ms(), now);
	if (!arr || json_array_append_new(arr, json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "created", now, "wrapped",
						     wrap_key("salus-pwk", kr->sec->kek, kr->kek_version, id,
							      kr->sec->pwk[k].key)))) {
		json_decref(doc);
		rc = SALUS_ENOMEM;
	} else {
		rc = commit_doc(kr, doc);
	}
	if (rc)
		sodium_memzero(&kr->sec->pwk[k], sizeof kr->sec->pwk[k]);
	else
		kr->sec->npwk++;
	sec_ro(kr);
	return rc;
}

int salus_keyring_pwk_destroy_old(struct salus_keyring *kr)
{
	json_t *doc, *arr, *keep;
	size_t n = kr->sec->npwk;
	int rc;

	if (n <= 1)
		return SALUS_OK;
	if (!(doc = json_deep_copy(kr->doc)))
		return SALUS_ENOMEM;
	arr = json_object_get(doc, "pwks");
	keep = json_incref(json_array_get(arr, json_array_size(arr) - 1));
	if (!keep || json_array_clear(arr) || json_array_append_new(arr, keep)) {
		json_decref(doc);
		return SALUS_ENOMEM;
	}
	if ((rc = commit_doc(kr, doc)))
		return rc;
	sec_rw(kr);
	kr->sec->pwk[0] = kr->sec->pwk[n - 1];
	sodium_memzero(&kr->sec->pwk[1], sizeof kr->sec->pwk[1] * (SALUS_KEYRING_MAX_PWKS - 1));
	kr->sec->npwk = 1;
	sec_ro(kr);
	return SALUS_OK;
}

int salus_keyring_status(const char *path, json_t **out)
{
	char *text = NULL;
	size_t n = 0, i;
	json_t *doc, *e;
	int rc;

	if ((rc = read_small(path, &text, &n)))
		return rc;
	doc = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
	salus_free(text);
	if (!json_is_object(doc)) {
		json_decref(doc);
		return SALUS_EINVALID;
	}
	json_object_del(doc, "mac");
	json_object_del(json_object_get(doc, "kek"), "kdf");
	json_array_foreach(json_object_get(doc, "deks"), i, e)
		json_object_del(e, "wrapped");
	json_array_foreach(json_object_get(doc, "pwks"), i, e)
		json_object_del(e, "wrapped");
	*out = doc;
	return SALUS_OK;
}

/* ---- the key-file sealing key ------------------------------------------------------------------ */

int salus_keyring_file_key(struct salus_keyring *kr, bool create, unsigned char key[SALUS_FILE_KEY_LEN])
{
	int rc = SALUS_OK;
	if (!kr->sec->has_fsk) {
		json_t *doc;
		char now[SALUS_INSTANT_LEN];
		if (!create)
			return SALUS_ENOTFOUND;
		if (!(doc = json_deep_copy(kr->doc)))
			return SALUS_ENOMEM;
		sec_rw(kr);
		randombytes_buf(kr->sec->fsk, SALUS_DEK_LEN);
		salus_instant_format(salus_now_ms(), now);
		if (json_object_set_new(doc, "fsk",
					json_pack("{s:s, s:o}", "created", now, "wrapped",
						  wrap_key("salus-fsk", kr->sec->kek, kr->kek_version, 1, kr->sec->fsk)))) {
			json_decref(doc);
			rc = SALUS_ENOMEM;
		} else {
			rc = commit_doc(kr, doc);
		}
		if (rc)
			sodium_memzero(kr->sec->fsk, SALUS_DEK_LEN);
		else
			kr->sec->has_fsk = true;
		sec_ro(kr);
		if (rc)
			return rc;
	}
	crypto_kdf_derive_from_key(key, SALUS_FILE_KEY_LEN, 1, "salusFSK", kr->sec->fsk);
	return SALUS_OK;
}
