/* secret_file.c — a file or a secret from a file or stdin, paths and file copies (see secret_file.h). */
#include "cli/secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/err.h"

int salus_cli_read_file(const char *file, char *buf, size_t cap, size_t *n)
{
	int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return SALUS_ENOTFOUND;
	size_t got = 0;
	int rc = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = SALUS_EIO;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == cap) { /* full: anything more is too much */
			char c;
			ssize_t more;
			while ((more = read(fd, &c, 1)) < 0 && errno == EINTR)
				;
			rc = more > 0 ? SALUS_ETOOLARGE : more < 0 ? SALUS_EIO : 0;
			break;
		}
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (!rc)
		*n = got;
	return rc;
}

int salus_cli_read_secret(const char *file, char *buf, size_t cap, size_t *n)
{
	size_t got = 0;
	int rc = cap ? salus_cli_read_file(file, buf, cap - 1, &got) : SALUS_ETOOLARGE;
	if (rc)
		return rc;
	if (got && buf[got - 1] == '\n')
		got--;
	if (got && buf[got - 1] == '\r')
		got--;
	*n = got;
	return 0;
}

int salus_cli_path_join(char *out, const char *a, const char *b)
{
	size_t na = strlen(a), nb = strlen(b);
	if (na + 1 + nb >= SALUS_PATH_MAX)
		return SALUS_EINVALID;
	memcpy(out, a, na);
	out[na] = '/';
	memcpy(out + na + 1, b, nb + 1);
	return SALUS_OK;
}

int salus_cli_copy_file(const char *src, const char *dst, mode_t mode)
{
	char buf[65536];
	ssize_t n;
	int rc = SALUS_OK;
	int in = open(src, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return SALUS_ENOTFOUND;
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (out < 0) {
		close(in);
		return errno == EEXIST ? SALUS_EEXISTS : SALUS_EIO;
	}
	while ((n = read(in, buf, sizeof buf)) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0) {
				if (errno == EINTR)
					continue;
				rc = SALUS_EIO;
				goto out;
			}
			off += w;
		}
	}
	if (n < 0 || fsync(out))
		rc = SALUS_EIO;
out:
	close(in);
	if (close(out) && !rc)
		rc = SALUS_EIO;
	if (rc)
		unlink(dst);
	return rc;
}
