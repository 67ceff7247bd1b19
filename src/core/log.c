/* log.c — logfmt lines on stderr, one write(2) per line (see log.h). */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static enum salus_log_level min_level = SALUS_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void salus_log_set_level(enum salus_log_level min)
{
	min_level = min;
}

void salus_log(enum salus_log_level lvl, const char *event, const char *fmt, ...)
{
	if (lvl < min_level)
		return;
	char line[1024];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02dZ level=%s event=%s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 names[lvl], event);
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 1 ? (size_t)m : sizeof line - (size_t)n - 2);
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
