/*
 * test_keyring.c — the key hierarchy (crypto/keyring.h): the three KEK
 * sources (key file, Argon2id passphrase, external command via a small shell
 * script), wrong keys failing clearly, a modified keyring detected by its
 * MAC, KEK rotation keeping every data key, and the rekey bookkeeping
 * resuming after a simulated crash, and the key-file sealing key with the
 * key files sealed under it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "crypto/keyring.h"

struct fx {
	char dir[64], ring[128], kek[128], script[128];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/salus-keyring-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->ring, sizeof f->ring, "%s/keyring.json", f->dir);
	snprintf(f->kek, sizeof f->kek, "%s/kek.key", f->dir);
	snprintf(f->script, sizeof f->script, "%s/kms.sh", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	unlink(f->ring);
	unlink(f->kek);
	unlink(f->script);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Page keys of a keyring, concatenated (id order as stored). */
static void keys_of(struct salus_keyring *kr, unsigned char out[4][SALUS_DEK_LEN], uint32_t ids[4], size_t *n)
{
	*n = salus_keyring_count(kr);
	assert_true(*n <= 4);
	for (size_t i = 0; i < *n; i++)
		assert_int_equal(salus_keyring_page_key(kr, i, &ids[i], out[i]), SALUS_OK);
}

static void replace_in_file(const char *path, const char *from, const char *to)
{
	FILE *fp = fopen(path, "r");
	char buf[8192], *at;
	size_t n;
	assert_non_null(fp);
	n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = 0;
	at = strstr(buf, from);
	assert_non_null(at);
	assert_int_equal(strlen(from), strlen(to));
	memcpy(at, to, strlen(to));
	fp = fopen(path, "w");
	assert_non_null(fp);
	fwrite(buf, 1, n, fp);
	fclose(fp);
}

static void test_file_source(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	unsigned char k1[4][SALUS_DEK_LEN], k2[4][SALUS_DEK_LEN];
	uint32_t ids[4];
	size_t n;
	struct stat st;

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(stat(f->kek, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_EEXISTS);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_active(kr), 1);
	keys_of(kr, k1, ids, &n);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 1);
	salus_keyring_free(kr);

	/* a key file readable by others is refused */
	chmod(f->kek, 0644);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_EINVALID);
	assert_non_null(strstr(why, "0600"));
	chmod(f->kek, 0600);

	/* rotation: new KEK version, the same data keys, the old KEK gone from the file */
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_OK);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	keys_of(kr, k2, ids, &n);
	assert_int_equal(n, 1);
	assert_memory_equal(k1[0], k2[0], SALUS_DEK_LEN);
	salus_keyring_free(kr);
	FILE *fp = fopen(f->kek, "r");
	char line[128];
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	assert_non_null(fgets(line, sizeof line, fp));
	assert_int_equal(strncmp(line, "2 ", 2), 0);
	assert_null(fgets(line, sizeof line, fp));
	fclose(fp);

	/* a wrong KEK: clear error, no keys */
	replace_in_file(f->kek, "\n2 ", "\n3 ");
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_EINVALID);
	replace_in_file(f->kek, "\n3 ", "\n2 ");
	{
		/* flip one character of the key itself */
		FILE *k = fopen(f->kek, "r+");
		char b[128];
		size_t kn = fread(b, 1, sizeof b, k);
		b[kn - 5] = b[kn - 5] == 'A' ? 'B' : 'A';
		fseek(k, 0, SEEK_SET);
		fwrite(b, 1, kn, k);
		fclose(k);
	}
	kr = NULL;
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_ECRYPTO);
	assert_non_null(strstr(why, "wrong key"));
	assert_null(kr); /* untouched on failure */
}

static void test_mac_detects_edit(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	uint32_t next = 0;

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_rekey_begin(kr, false, &next), SALUS_OK);
	salus_keyring_free(kr);
	/* point "active" back at the old key without the KEK: the MAC says no */
	replace_in_file(f->ring, "\"active\": 2", "\"active\": 1");
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_ECRYPTO);
	assert_non_null(strstr(why, "modified"));
}

/* Patient-key wrapping keys: added, kept across reopen and KEK rotation,
 * old ones destroyed; a copy of the keyring from before the destruction does
 * not open once the KEK was rotated; a PWK is not a page key. */
static void test_pwk(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	unsigned char k1[SALUS_DEK_LEN], k1b[SALUS_DEK_LEN], k2[SALUS_DEK_LEN], tmp[SALUS_DEK_LEN];
	uint32_t id = 0;
	char old[300];

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_pwk_count(kr), 0);
	assert_int_equal(salus_keyring_pwk(kr, 0, &id, k1), SALUS_EINVALID);
	assert_int_equal(salus_keyring_pwk_add(kr), SALUS_OK);
	assert_int_equal(salus_keyring_pwk(kr, 0, &id, k1), SALUS_OK);
	assert_int_equal(id, 1);
	assert_int_equal(salus_keyring_count(kr), 1); /* page keys unchanged */
	salus_keyring_page_key(kr, 0, &id, tmp);
	assert_memory_not_equal(tmp, k1, SALUS_DEK_LEN);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_pwk(kr, 0, &id, k1b), SALUS_OK);
	assert_memory_equal(k1, k1b, SALUS_DEK_LEN);
	/* a backup of the keyring and the key file as they are now */
	snprintf(old, sizeof old, "%s.old", f->ring);
	assert_int_equal(rename(f->ring, old), 0);
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_OK); /* writes f->ring anew */
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_pwk(kr, 0, &id, k1b), SALUS_OK);
	assert_memory_equal(k1, k1b, SALUS_DEK_LEN); /* rotation re-wraps, keeps */
	assert_int_equal(salus_keyring_pwk_add(kr), SALUS_OK);
	assert_int_equal(salus_keyring_pwk_count(kr), 2);
	assert_int_equal(salus_keyring_pwk(kr, 1, &id, k2), SALUS_OK);
	assert_int_equal(id, 2);
	assert_memory_not_equal(k1, k2, SALUS_DEK_LEN);
	assert_int_equal(salus_keyring_pwk_destroy_old(kr), SALUS_OK);
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_OK);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_pwk_count(kr), 1);
	assert_int_equal(salus_keyring_pwk(kr, 0, &id, k1b), SALUS_OK);
	assert_int_equal(id, 2);
	assert_memory_equal(k2, k1b, SALUS_DEK_LEN);
	salus_keyring_free(kr);
	/* the old keyring (with PWK 1) does not open with the current key file */
	assert_int_equal(rename(old, f->ring), 0);
	kr = NULL;
	assert_int_not_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_null(kr);
}

/* Whether the file at path contains needle. */
static bool file_has(const char *path, const char *needle)
{
	char buf[1024];
	FILE *fp = fopen(path, "r");
	assert_non_null(fp);
	size_t n = fread(buf, 1, sizeof buf - 1, fp);
	fclose(fp);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

/* The key-file sealing key: created once, kept by reopening and by KEK
 * rotation; key files sealed under it open only with it, only under their
 * own name, only unaltered; plain files (older data directories) still read. */
static void test_file_key(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	unsigned char k1[SALUS_FILE_KEY_LEN], k2[SALUS_FILE_KEY_LEN], other[SALUS_FILE_KEY_LEN];
	char a[160], b[160], plain[160], text[SALUS_KEYFILE_MAX + 1];
	const char *secret = "salus-ed25519-seed-v1\nTHIS-IS-THE-SECRET-SEED-TEXT\n";
	size_t n = 0;
	bool sealed = false;

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_file_key(kr, false, k1), SALUS_ENOTFOUND);
	assert_int_equal(salus_keyring_file_key(kr, true, k1), SALUS_OK);
	assert_int_equal(salus_keyring_file_key(kr, true, k2), SALUS_OK); /* the same, not a second one */
	assert_memory_equal(k1, k2, sizeof k1);
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_OK);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_file_key(kr, false, k2), SALUS_OK);
	assert_memory_equal(k1, k2, sizeof k1); /* rotation re-wraps, keeps */
	salus_keyring_free(kr);

	snprintf(a, sizeof a, "%s/token.key", f->dir);
	snprintf(b, sizeof b, "%s/audit.key", f->dir);
	snprintf(plain, sizeof plain, "%s/pepper.key", f->dir);
	/* without a sealing key: plain text, read back as it is */
	assert_false(salus_keyfile_sealing());
	assert_int_equal(salus_keyfile_write(plain, secret, strlen(secret), false), SALUS_OK);
	assert_true(file_has(plain, "SECRET-SEED"));
	/* sealed: no plaintext, mode 0600, never replaced unless asked */
	assert_int_equal(salus_keyfile_seal_key(k1), SALUS_OK);
	assert_true(salus_keyfile_sealing());
	assert_int_equal(salus_keyfile_write(a, secret, strlen(secret), false), SALUS_OK);
	assert_int_equal(salus_keyfile_write(a, secret, strlen(secret), false), SALUS_EEXISTS);
	assert_false(file_has(a, "SECRET-SEED"));
	assert_true(file_has(a, "salus-sealed-v1"));
	struct stat st;
	assert_int_equal(stat(a, &st), 0);
	assert_int_equal((int)(st.st_mode & 0777), 0600);
	assert_int_equal(salus_keyfile_read(a, text, sizeof text, &n, &sealed), SALUS_OK);
	assert_true(sealed);
	assert_int_equal(n, strlen(secret));
	assert_string_equal(text, secret);
	assert_int_equal(salus_keyfile_read(plain, text, sizeof text, &n, &sealed), SALUS_OK);
	assert_false(sealed);
	assert_string_equal(text, secret);
	/* under another name (token.key copied over audit.key): refused */
	char cmd[400];
	snprintf(cmd, sizeof cmd, "cp -p %s %s", a, b);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(salus_keyfile_read(b, text, sizeof text, &n, &sealed), SALUS_ECRYPTO);
	/* with another key, or none: refused */
	memset(other, 0x5a, sizeof other);
	assert_int_equal(salus_keyfile_seal_key(other), SALUS_OK);
	assert_int_equal(salus_keyfile_read(a, text, sizeof text, &n, &sealed), SALUS_ECRYPTO);
	assert_int_equal(salus_keyfile_seal_key(NULL), SALUS_OK);
	assert_int_equal(salus_keyfile_read(a, text, sizeof text, &n, &sealed), SALUS_ECRYPTO);
	assert_true(sealed);
	/* one altered character: refused */
	assert_int_equal(salus_keyfile_seal_key(k1), SALUS_OK);
	FILE *fp = fopen(a, "r+");
	assert_non_null(fp);
	fseek(fp, 30, SEEK_SET);
	int c = fgetc(fp);
	fseek(fp, 30, SEEK_SET);
	fputc(c == 'A' ? 'B' : 'A', fp);
	fclose(fp);
	assert_int_equal(salus_keyfile_read(a, text, sizeof text, &n, &sealed), SALUS_ECRYPTO);
	/* a group-readable key file is refused before it is read */
	assert_int_equal(chmod(plain, 0640), 0);
	assert_int_equal(salus_keyfile_read(plain, text, sizeof text, &n, &sealed), SALUS_EINVALID);
	/* sealing a plain file in place */
	assert_int_equal(chmod(plain, 0600), 0);
	assert_int_equal(salus_keyfile_write(plain, secret, strlen(secret), true), SALUS_OK);
	assert_false(file_has(plain, "SECRET-SEED"));
	assert_int_equal(salus_keyfile_read(plain, text, sizeof text, &n, &sealed), SALUS_OK);
	assert_true(sealed);
	assert_string_equal(text, secret);
	/* a big one (a TLS private key): sealed, read back in secure memory, bound to its name */
	{
		char tlsk[160], moved[160], *big = malloc(9000), *got = NULL;
		assert_non_null(big);
		for (int i = 0; i < 8999; i++)
			big[i] = "BEGIN-PRIVATE-KEY-"[i % 18];
		big[8999] = 0;
		snprintf(tlsk, sizeof tlsk, "%s/key.pem", f->dir);
		snprintf(moved, sizeof moved, "%s/other.pem", f->dir);
		assert_int_equal(salus_keyfile_write(tlsk, big, 8999, false), SALUS_EINVALID); /* too big for the small form */
		assert_int_equal(salus_keyfile_write_big(tlsk, big, 8999, false), SALUS_OK);
		assert_false(file_has(tlsk, "BEGIN-PRIVATE-KEY"));
		assert_int_equal(salus_keyfile_read_big(tlsk, &got, &n, &sealed), SALUS_OK);
		assert_true(sealed);
		assert_int_equal(n, 8999);
		assert_string_equal(got, big);
		salus_keyfile_text_free(got);
		snprintf(cmd, sizeof cmd, "cp -p %s %s", tlsk, moved);
		assert_int_equal(system(cmd), 0);
		assert_int_equal(salus_keyfile_read_big(moved, &got, &n, &sealed), SALUS_ECRYPTO);
		assert_int_equal(salus_keyfile_write_big(tlsk, big, SALUS_KEYFILE_BIG_MAX + 1, true), SALUS_EINVALID);
		free(big);
	}
	assert_int_equal(salus_keyfile_seal_key(NULL), SALUS_OK);
	unlink(a);
	unlink(b);
	unlink(plain);
}

static void test_passphrase_source(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_PASSPHRASE, .passphrase = "correct horse battery staple"};
	struct salus_kek_config bad = {.source = SALUS_KEK_PASSPHRASE, .passphrase = "correct horse battery stapler"};
	struct salus_kek_config none = {.source = SALUS_KEK_PASSPHRASE};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	unsigned char k1[4][SALUS_DEK_LEN], k2[4][SALUS_DEK_LEN];
	uint32_t ids[4];
	size_t n;

	unsetenv("SALUS_KEK_PASSPHRASE");
	unsetenv("SALUS_KEK_NEW_PASSPHRASE");
	assert_int_equal(salus_keyring_create(f->ring, &none, &why), SALUS_EINVALID);
	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(access(f->kek, F_OK), -1); /* nothing on disk but the keyring */
	assert_int_equal(salus_keyring_open(f->ring, &bad, &kr, &why), SALUS_ECRYPTO);
	assert_non_null(strstr(why, "wrong key or passphrase"));
	/* from the environment */
	setenv("SALUS_KEK_PASSPHRASE", "correct horse battery staple", 1);
	assert_int_equal(salus_keyring_open(f->ring, &none, &kr, &why), SALUS_OK);
	keys_of(kr, k1, ids, &n);
	/* rotation to a new passphrase */
	setenv("SALUS_KEK_NEW_PASSPHRASE", "a different passphrase", 1);
	assert_int_equal(salus_keyring_rotate_kek(kr, &none, &why), SALUS_OK);
	salus_keyring_free(kr);
	unsetenv("SALUS_KEK_NEW_PASSPHRASE");
	assert_int_equal(salus_keyring_open(f->ring, &none, &kr, &why), SALUS_ECRYPTO);
	setenv("SALUS_KEK_PASSPHRASE", "a different passphrase", 1);
	assert_int_equal(salus_keyring_open(f->ring, &none, &kr, &why), SALUS_OK);
	keys_of(kr, k2, ids, &n);
	assert_memory_equal(k1[0], k2[0], SALUS_DEK_LEN);
	salus_keyring_free(kr);
	unsetenv("SALUS_KEK_PASSPHRASE");
	/* the configured source must match the keyring's */
	struct salus_kek_config file = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	assert_int_equal(salus_keyring_open(f->ring, &file, &kr, &why), SALUS_EINVALID);
}

static void test_command_source(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_COMMAND, .command = f->script};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	unsigned char k1[4][SALUS_DEK_LEN], k2[4][SALUS_DEK_LEN];
	uint32_t ids[4];
	size_t n;

	/* a stand-in for a KMS client: one key per KEK version, in hex or base64url */
	FILE *fp = fopen(f->script, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\n"
	      "case \"$SALUS_KEK_VERSION\" in\n"
	      "1) echo 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ;;\n"
	      "2) echo AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 | tr A-M N-Z ;;\n"
	      "*) echo 'no such key version' >&2; exit 3 ;;\n"
	      "esac\n",
	      fp);
	fclose(fp);
	chmod(f->script, 0700);
	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	keys_of(kr, k1, ids, &n);
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_OK);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	keys_of(kr, k2, ids, &n);
	assert_memory_equal(k1[0], k2[0], SALUS_DEK_LEN);
	/* version 3 does not exist in the "KMS": rotation fails clearly, nothing changes */
	assert_int_equal(salus_keyring_rotate_kek(kr, &kc, &why), SALUS_EINVALID);
	assert_non_null(strstr(why, "KEK command failed"));
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	salus_keyring_free(kr);
	/* a command printing garbage */
	struct salus_kek_config junk = {.source = SALUS_KEK_COMMAND, .command = "echo not-a-key"};
	assert_int_equal(salus_keyring_open(f->ring, &junk, &kr, &why), SALUS_EINVALID);
	assert_non_null(strstr(why, "no 32-byte key"));
}

static void test_rekey_bookkeeping(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	uint32_t next = 0;
	json_t *st = NULL;

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_rekey_begin(kr, false, &next), SALUS_OK);
	assert_int_equal(next, 1);
	assert_int_equal(salus_keyring_active(kr), 2);
	assert_int_equal(salus_keyring_count(kr), 2);
	assert_int_equal(salus_keyring_rekey_progress(kr, 513), SALUS_OK);
	salus_keyring_free(kr); /* "crash" */

	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_rekey_begin(kr, false, &next), SALUS_OK);
	assert_int_equal(next, 513); /* resumes, no third key */
	assert_int_equal(salus_keyring_count(kr), 2);
	assert_int_equal(salus_keyring_rekey_finish(kr), SALUS_OK);
	salus_keyring_free(kr);

	assert_int_equal(salus_keyring_status(f->ring, &st), SALUS_OK);
	assert_null(json_object_get(st, "rekey"));
	assert_null(json_object_get(st, "mac"));
	json_t *deks = json_object_get(st, "deks");
	assert_int_equal(json_array_size(deks), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(deks, 0), "state")), "retired");
	assert_null(json_object_get(json_array_get(deks, 0), "wrapped"));
	json_decref(st);
	/* retired keys still unlock (older backups) */
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_count(kr), 2);
	salus_keyring_free(kr);
}

/* The pending data key: prepared once (by serve), kept across opens, moved
 * to by an online rekey; an offline rekey drops it for a fresh key. */
static void test_pending_dek(void **state)
{
	struct fx *f = *state;
	struct salus_kek_config kc = {.source = SALUS_KEK_FILE, .kek_file = f->kek};
	struct salus_keyring *kr = NULL;
	const char *why = NULL;
	uint32_t next = 0, id = 0, id2 = 0, pid = 0;
	unsigned char k1[SALUS_DEK_LEN], k2[SALUS_DEK_LEN];

	assert_int_equal(salus_keyring_create(f->ring, &kc, &why), SALUS_OK);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_pending(kr), 0);
	/* online without a pending key: refused, nothing changes */
	assert_int_equal(salus_keyring_rekey_begin(kr, true, &next), SALUS_ENOTFOUND);
	assert_int_equal(salus_keyring_dek_prepare(kr, &id), SALUS_OK);
	assert_int_equal(id, 2);
	assert_int_equal(salus_keyring_active(kr), 1);
	assert_int_equal(salus_keyring_count(kr), 2);
	assert_int_equal(salus_keyring_page_key(kr, 1, &pid, k1), SALUS_OK);
	assert_int_equal(pid, 2);
	salus_keyring_free(kr);

	/* a second prepare (another serve start) keeps the same key */
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_dek_prepare(kr, &id2), SALUS_OK);
	assert_int_equal(id2, 2);
	assert_int_equal(salus_keyring_page_key(kr, 1, &pid, k2), SALUS_OK);
	assert_memory_equal(k1, k2, sizeof k1);
	assert_int_equal(salus_keyring_rekey_begin(kr, true, &next), SALUS_OK);
	assert_int_equal(salus_keyring_active(kr), 2);
	assert_int_equal(salus_keyring_pending(kr), 0);
	assert_int_equal(salus_keyring_count(kr), 2);
	assert_int_equal(salus_keyring_rekey_finish(kr), SALUS_OK);
	salus_keyring_free(kr);

	/* offline: a pending key is dropped, a fresh one becomes active */
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_dek_prepare(kr, &id), SALUS_OK);
	assert_int_equal(id, 3);
	assert_int_equal(salus_keyring_rekey_begin(kr, false, &next), SALUS_OK);
	assert_int_equal(salus_keyring_active(kr), 4);
	assert_int_equal(salus_keyring_pending(kr), 0);
	assert_int_equal(salus_keyring_count(kr), 3); /* 1, 2, 4 */
	assert_int_equal(salus_keyring_rekey_finish(kr), SALUS_OK);
	salus_keyring_free(kr);
	assert_int_equal(salus_keyring_open(f->ring, &kc, &kr, &why), SALUS_OK);
	assert_int_equal(salus_keyring_count(kr), 3);
	assert_int_equal(salus_keyring_active(kr), 4);
	salus_keyring_free(kr);
	memset(k1, 0, sizeof k1);
	memset(k2, 0, sizeof k2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mac_detects_edit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pwk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_passphrase_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_command_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_bookkeeping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pending_dek, setup, teardown),
	};
	salus_alloc_install();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
