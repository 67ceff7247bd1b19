/*
 * secret_file.h — reading a secret (client secret, password) from a file or stdin.
 */
#ifndef SALUS_CLI_SECRET_FILE_H
#define SALUS_CLI_SECRET_FILE_H
#include <stddef.h>

/* Read file ("-": stdin) into buf, dropping one trailing newline (LF or CRLF).
 * *n is written on success only.  Errors: SALUS_ENOTFOUND (cannot open),
 * SALUS_EIO, SALUS_ETOOLARGE (cap bytes or more). */
int salus_cli_read_secret(const char *file, char *buf, size_t cap, size_t *n /* OUT */);

#endif
