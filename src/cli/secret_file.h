/*
 * secret_file.h — reading a file, or a secret (client secret, password), from a file or stdin.
 */
#ifndef SALUS_CLI_SECRET_FILE_H
#define SALUS_CLI_SECRET_FILE_H
#include <stddef.h>

/* Read a whole file ("-": stdin) into buf, at most cap bytes (not NUL-terminated).  *n is
 * written on success only.  Errors: SALUS_ENOTFOUND (cannot open), SALUS_EIO, SALUS_ETOOLARGE
 * (more than cap bytes). */
int salus_cli_read_file(const char *file, char *buf, size_t cap, size_t *n /* OUT */);

/* Read file ("-": stdin) into buf, dropping one trailing newline (LF or CRLF).
 * *n is written on success only.  Errors: SALUS_ENOTFOUND (cannot open),
 * SALUS_EIO, SALUS_ETOOLARGE (cap bytes or more). */
int salus_cli_read_secret(const char *file, char *buf, size_t cap, size_t *n /* OUT */);

#endif
