/*
 * keyfile.c — libFuzzer target fuzz_keyfile: reading a key file
 * (salus_keyfile_read, crypto.h) of arbitrary bytes, sealed or plain, with a
 * fixed sealing key, then parsing what opens as a token-signing key
 * (salus_signkey_load).  Nothing may crash or leak; a sealed input must open
 * only when it was sealed under the fixed key for the file name "token.key"
 * (corpus/keyfile/sealed is one, made with that key).
 * Seeds: tests/fuzz/corpus/keyfile/.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/err.h"
#include "crypto/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[SALUS_KEYFILE_MAX + 1];
	size_t n = 0;
	bool sealed = false;

	if (!path[0]) {
		unsigned char key[SALUS_FILE_KEY_LEN];
		char dir[] = "/tmp/salus-fuzz-keyfile-XXXXXX";
		salus_alloc_install();
		for (size_t i = 0; i < sizeof key; i++)
			key[i] = (unsigned char)(i * 7 + 1);
		if (salus_crypto_init() || salus_keyfile_seal_key(key) || !mkdtemp(dir))
			abort();
		snprintf(path, sizeof path, "%s/token.key", dir);
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || close(fd))
		abort();
	int rc = salus_keyfile_read(path, text, sizeof text, &n, &sealed);
	if (rc == SALUS_OK) {
		if (n >= sizeof text || text[n] != '\0')
			abort();
		struct salus_signkey *k = NULL;
		if (salus_signkey_load(path, &k) == SALUS_OK)
			salus_signkey_free(k);
	}
	return 0;
}
