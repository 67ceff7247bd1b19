/* clock.c — FHIR instants and random UUIDs (see clock.h). */
#include "core/clock.h"

#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/err.h"

int64_t salus_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t salus_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void salus_instant_format(int64_t ms, char out[SALUS_INSTANT_LEN])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	/* years outside 0..9999 are clamped: FHIR instants have four-digit years */
	int year = tm.tm_year + 1900;
	year = year < 0 ? 0 : year > 9999 ? 9999 : year;
	snprintf(out, SALUS_INSTANT_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, (tm.tm_mon + 1) % 13,
		 tm.tm_mday % 32, tm.tm_hour % 24, tm.tm_min % 60, tm.tm_sec % 61, (int)(((ms % 1000) + 1000) % 1000));
}

/* Read exactly `w` digits at s[*i]. */
static int digits(const char *s, size_t n, size_t *i, int w, int *out)
{
	int v = 0;
	for (int k = 0; k < w; k++, (*i)++) {
		if (*i >= n || s[*i] < '0' || s[*i] > '9')
			return SALUS_EINVALID;
		v = v * 10 + (s[*i] - '0');
	}
	*out = v;
	return 0;
}

static int expect(const char *s, size_t n, size_t *i, char c)
{
	if (*i >= n || s[*i] != c)
		return SALUS_EINVALID;
	(*i)++;
	return 0;
}

int salus_instant_parse(const char *s, size_t n, int64_t *ms)
{
	int Y, M = 1, D = 1, h = 0, m = 0, sec = 0, frac = 0, off = 0;
	size_t i = 0;
	if (digits(s, n, &i, 4, &Y))
		return SALUS_EINVALID;
	if (i < n) {
		if (expect(s, n, &i, '-') || digits(s, n, &i, 2, &M))
			return SALUS_EINVALID;
		if (i < n && (expect(s, n, &i, '-') || digits(s, n, &i, 2, &D)))
			return SALUS_EINVALID;
		if (i < n) {
			if (expect(s, n, &i, 'T') || digits(s, n, &i, 2, &h) || expect(s, n, &i, ':') ||
			    digits(s, n, &i, 2, &m))
				return SALUS_EINVALID;
			if (i < n && s[i] == ':' && (i++, digits(s, n, &i, 2, &sec)))
				return SALUS_EINVALID;
			if (i < n && s[i] == '.') {
				i++;
				int k = 0;
				for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
					if (k < 3)
						frac = frac * 10 + (s[i] - '0');
				if (k == 0)
					return SALUS_EINVALID;
				for (; k < 3; k++)
					frac *= 10;
			}
			if (i >= n)
				return SALUS_EINVALID; /* a time needs a zone */
			if (s[i] == 'Z') {
				i++;
			} else if (s[i] == '+' || s[i] == '-') {
				int sign = s[i++] == '-' ? -1 : 1, oh, om;
				if (digits(s, n, &i, 2, &oh) || expect(s, n, &i, ':') || digits(s, n, &i, 2, &om) ||
				    oh > 14 || om > 59)
					return SALUS_EINVALID;
				off = sign * (oh * 60 + om);
			} else {
				return SALUS_EINVALID;
			}
		}
	}
	if (i != n || M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return SALUS_EINVALID;
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
	if (D > mdays[M - 1] || (M == 2 && D == 29 && !leap))
		return SALUS_EINVALID;
	/* days from civil (Howard Hinnant's algorithm) */
	int y = Y - (M <= 2);
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = (int64_t)era * 146097 + doe - 719468;
	*ms = ((days * 86400 + h * 3600 + m * 60 + (sec > 59 ? 59 : sec)) - (int64_t)off * 60) * 1000 + frac;
	return 0;
}

void salus_uuid_new(char out[SALUS_UUID_LEN])
{
	unsigned char r[16];
	size_t got = 0;
	while (got < sizeof r) {
		ssize_t k = getrandom(r + got, sizeof r - got, 0);
		if (k > 0)
			got += (size_t)k;
	}
	r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
	r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[r[i] >> 4];
		out[o++] = hex[r[i] & 15];
	}
	out[o] = 0;
}
