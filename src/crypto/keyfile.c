/*
 * keyfile.c — secret key files (the token-signing key, the audit
 * checkpoint key, the password pepper, the TLS private key): written atomically with mode 0600,
 * read only when they are regular owner-only files, and sealed under the
 * keyring's file key when the process has one (docs/security.md, "Key
 * files").  A sealed file is
 *
 *   "salus-sealed-v1\n" base64url(nonce(24) || XChaCha20-Poly1305(text)) "\n"
 *
 * with associated data "salus-sealed-v1" NUL <file name>, so a sealed file
 * cannot be swapped for another key file (token.key for audit.key).  Plain
 * files (data directories from before sealing, or processes without a
 * keyring such as unit tests) are read as they are.
 */
#include "crypto/crypto.h"
#include "crypto/crypto_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"

#define SEALED_MAGIC "salus-sealed-v1"
#define NONCE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG crypto_aead_xchacha20poly1305_ietf_ABYTES

_Static_assert(SALUS_FILE_KEY_LEN == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "file key length");

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char *g_key; /* sodium_malloc'd, read-only; NULL: none */

int salus_keyfile_seal_key(const unsigned char key[SALUS_FILE_KEY_LEN])
{
	unsigned char *k = NULL;
	if (salus_crypto_init())
		return SALUS_ECRYPTO;
	if (key) {
		if (!(k = sodium_malloc(SALUS_FILE_KEY_LEN)))
			return SALUS_ENOMEM;
		memcpy(k, key, SALUS_FILE_KEY_LEN);
		sodium_mprotect_readonly(k);
	}
	pthread_mutex_lock(&g_mu);
	unsigned char *old = g_key;
	g_key = k;
	pthread_mutex_unlock(&g_mu);
	sodium_free(old); /* wipes; NULL-safe */
	return SALUS_OK;
}

bool salus_keyfile_sealing(void)
{
	pthread_mutex_lock(&g_mu);
	bool on = g_key != NULL;
	pthread_mutex_unlock(&g_mu);
	return on;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Associated data: magic NUL file name. */
static size_t make_ad(const char *path, unsigned char *ad, size_t cap)
{
	const char *b = base_name(path);
	size_t ml = sizeof SEALED_MAGIC, bl = strlen(b);
	if (ml + bl > cap)
		bl = cap - ml;
	memcpy(ad, SEALED_MAGIC, ml); /* with its NUL */
	memcpy(ad + ml, b, bl);
	return ml + bl;
}

int salus_crypto_write_atomic(const char *path, const void *p, size_t n, bool must_not_exist)
{
	char tmp[SALUS_PATH_MAX];
	const char *c = p;
	int fd, rc = SALUS_OK;

	if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int)sizeof tmp)
		return SALUS_EINVALID;
	if (must_not_exist && access(path, F_OK) == 0)
		return SALUS_EEXISTS;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) /* mode 0600 */
		return SALUS_EIO;
	if (fchmod(fd, 0600))
		rc = SALUS_EIO;
	for (size_t left = n; !rc && left;) {
		ssize_t w = write(fd, c, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			rc = SALUS_EIO;
		else
			c += w, left -= (size_t)w;
	}
	if (!rc && fsync(fd))
		rc = SALUS_EIO;
	if (close(fd))
		rc = SALUS_EIO;
	/* link() never replaces: two racing creators cannot both win */
	if (!rc && (must_not_exist ? link(tmp, path) : rename(tmp, path)))
		rc = errno == EEXIST ? SALUS_EEXISTS : SALUS_EIO;
	unlink(tmp);
	if (rc)
		return rc;
	char dir[SALUS_PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t dn = !slash ? 0 : slash == path ? 1 : (size_t)(slash - path);
	if (!slash)
		dir[dn++] = '.';
	else
		memcpy(dir, path, dn); /* dn < strlen(path) < SALUS_PATH_MAX */
	dir[dn] = '\0';
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);
		close(fd);
	}
	return SALUS_OK;
}

/* Scratch for the sealed text of at most max bytes: the file, the box. */
#define RAW_CAP(max) (sizeof SEALED_MAGIC + SALUS_B64URL_LEN(NONCE + (max) + TAG) + 2)
#define BOX_CAP(max) (NONCE + (max) + TAG)

static int kf_write(const char *path, const char *text, size_t n, bool replace, size_t max)
{
	unsigned char ad[sizeof SEALED_MAGIC + 256], *box;
	char *out;
	size_t len;
	int rc = salus_crypto_init();

	if (rc)
		return rc;
	if (!path || !text || !n || n > max)
		return SALUS_EINVALID;
	if (!replace && access(path, F_OK) == 0)
		return SALUS_EEXISTS;
	if (!(out = sodium_malloc(RAW_CAP(max))))
		return SALUS_ENOMEM;
	if (!(box = sodium_malloc(BOX_CAP(max)))) {
		sodium_free(out);
		return SALUS_ENOMEM;
	}
	pthread_mutex_lock(&g_mu);
	if (g_key) {
		size_t adn = make_ad(path, ad, sizeof ad);
		randombytes_buf(box, NONCE);
		crypto_aead_xchacha20poly1305_ietf_encrypt(box + NONCE, NULL, (const unsigned char *)text, n, ad, adn,
							   NULL, box, g_key);
		pthread_mutex_unlock(&g_mu);
		memcpy(out, SEALED_MAGIC "\n", sizeof SEALED_MAGIC);
		salus_b64url_encode(box, NONCE + n + TAG, out + sizeof SEALED_MAGIC, RAW_CAP(max) - sizeof SEALED_MAGIC);
		len = strlen(out);
		out[len++] = '\n';
	} else {
		pthread_mutex_unlock(&g_mu);
		memcpy(out, text, n);
		len = n;
	}
	rc = salus_crypto_write_atomic(path, out, len, !replace);
	sodium_free(out); /* wipes */
	sodium_free(box);
	return rc;
}

int salus_keyfile_write(const char *path, const char *text, size_t n, bool replace)
{
	return kf_write(path, text, n, replace, SALUS_KEYFILE_MAX);
}

int salus_keyfile_write_big(const char *path, const char *text, size_t n, bool replace)
{
	return kf_write(path, text, n, replace, SALUS_KEYFILE_BIG_MAX);
}

static int kf_read(const char *path, char *text, size_t cap, size_t *n, bool *sealed, size_t max)
{
	unsigned char ad[sizeof SEALED_MAGIC + 256], *box = NULL;
	char *raw = NULL;
	struct stat st;
	size_t got = 0, bn = 0, rawcap = RAW_CAP(max);
	bool is_sealed = false;
	int rc = salus_crypto_init();

	if (rc)
		return rc;
	if (!path || !text || cap < 2)
		return SALUS_EINVALID;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return errno == ENOENT ? SALUS_ENOTFOUND : SALUS_EIO;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077) || st.st_size >= (off_t)rawcap) {
		close(fd);
		return SALUS_EINVALID;
	}
	if (!(raw = sodium_malloc(rawcap)) || !(box = sodium_malloc(BOX_CAP(max)))) {
		close(fd);
		rc = SALUS_ENOMEM;
		goto out;
	}
	while (got < rawcap - 1) {
		ssize_t r = read(fd, raw + got, rawcap - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			rc = SALUS_EIO;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	raw[got] = '\0';
	const size_t ml = sizeof SEALED_MAGIC; /* with the newline */
	is_sealed = got > ml && !memcmp(raw, SEALED_MAGIC "\n", ml);
	if (rc)
		goto out;
	if (!is_sealed) {
		if (got >= cap) {
			rc = SALUS_EINVALID;
			goto out;
		}
		memcpy(text, raw, got + 1);
		*n = got;
		goto out;
	}
	size_t bl = got - ml;
	while (bl && (raw[ml + bl - 1] == '\n' || raw[ml + bl - 1] == '\r'))
		bl--;
	if (salus_b64url_decode(raw + ml, bl, box, BOX_CAP(max), &bn) || bn < NONCE + TAG || bn - NONCE - TAG >= cap) {
		rc = SALUS_EINVALID;
		goto out;
	}
	size_t adn = make_ad(path, ad, sizeof ad);
	unsigned long long pn = 0;
	pthread_mutex_lock(&g_mu);
	if (!g_key || crypto_aead_xchacha20poly1305_ietf_decrypt((unsigned char *)text, &pn, NULL, box + NONCE,
								 bn - NONCE, ad, adn, box, g_key))
		rc = SALUS_ECRYPTO;
	pthread_mutex_unlock(&g_mu);
	if (!rc) {
		text[pn] = '\0';
		*n = (size_t)pn;
	}
out:
	if (sealed)
		*sealed = is_sealed;
	sodium_free(raw); /* wipes; NULL-safe */
	sodium_free(box);
	return rc;
}

int salus_keyfile_read(const char *path, char *text, size_t cap, size_t *n, bool *sealed)
{
	return kf_read(path, text, cap, n, sealed, SALUS_KEYFILE_MAX);
}

int salus_keyfile_read_big(const char *path, char **text, size_t *n, bool *sealed)
{
	char *t = sodium_malloc(SALUS_KEYFILE_BIG_MAX + 1);
	if (!t)
		return SALUS_ENOMEM;
	int rc = kf_read(path, t, SALUS_KEYFILE_BIG_MAX + 1, n, sealed, SALUS_KEYFILE_BIG_MAX);
	if (rc) {
		sodium_free(t);
		return rc;
	}
	*text = t;
	return SALUS_OK;
}

void salus_keyfile_text_free(char *text)
{
	sodium_free(text); /* wipes; NULL-safe */
}
