/*
 * secret_file.h — reading a file, or a secret (client secret, password), from a file or stdin;
 * joining a path and copying a file (the data-directory commands).
 */
#ifndef SALUS_CLI_SECRET_FILE_H
#define SALUS_CLI_SECRET_FILE_H
#include <stddef.h>
#include <sys/types.h>

/* Read a whole file ("-": stdin) into buf, at most cap bytes (not NUL-terminated).  *n is
 * written on success only.  Errors: SALUS_ENOTFOUND (cannot open), SALUS_EIO, SALUS_ETOOLARGE
 * (more than cap bytes). */
int salus_cli_read_file(const char *file, char *buf, size_t cap, size_t *n /* OUT */);

/* Read file ("-": stdin) into buf, dropping one trailing newline (LF or CRLF).
 * *n is written on success only.  Errors: SALUS_ENOTFOUND (cannot open),
 * SALUS_EIO, SALUS_ETOOLARGE (cap bytes or more). */
int salus_cli_read_secret(const char *file, char *buf, size_t cap, size_t *n /* OUT */);

/* out = a "/" b (out holds SALUS_PATH_MAX bytes); SALUS_EINVALID when it does not fit. */
int salus_cli_path_join(char *out, const char *a, const char *b);

/* Copy the file from to the new file to (created with mode, never replacing one), synced; a
 * partial copy is removed.  Errors: SALUS_ENOTFOUND (cannot open from), SALUS_EEXISTS, SALUS_EIO. */
int salus_cli_copy_file(const char *from, const char *to, mode_t mode);

#endif
