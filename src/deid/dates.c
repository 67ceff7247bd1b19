/*
 * dates.c — parse the date forms the detector finds, shift them by a
 * per-scope offset or cut them to the year, and write them back in the same
 * form (separators, zero padding, two- or four-digit years, month names in the
 * same length and case, ordinal suffixes, a trailing time kept verbatim).
 *
 * Forms: yyyy-mm-dd[Thh:mm...] and yyyy/mm/dd, yyyy-mm, m/d/yyyy, m/d/yy, m/d
 * (also with '-' or '.'), "March 3, 2019", "Mar. 3rd 2019", "March 3",
 * "3 Mar 2019", "3-Mar-2019", "3rd of March, 2019", "March 2019", and a bare
 * four-digit year ("Mar '19" and weekday names are not handled: masked).  Dates without a day are anchored on the 15th to
 * shift; dates without a year on the leap year 2000.
 */
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "deid/transform_int.h"

static const char *const month_full[12] = {"january", "february", "march",     "april",   "may",      "june",
					   "july",    "august",   "september", "october", "november", "december"};
static const char *const month_abbr[12] = {"jan", "feb", "mar", "apr", "may", "jun",
					   "jul", "aug", "sep", "oct", "nov", "dec"};

enum dform {
	DF_ISO,       /* y-m-d / y/m/d, y-m; rest kept */
	DF_NUM,       /* m/d/y, m/d/yy, m/d */
	DF_MONTH_DAY, /* March 3, 2019 / March 3 */
	DF_DAY_MONTH, /* 3 March 2019 */
	DF_MONTH_YEAR,/* March 2019 */
	DF_YEAR,      /* 2019 */
};

enum mcase { MC_TITLE, MC_UPPER, MC_LOWER };

struct pdate {
	enum dform form;
	int y, m, d;          /* y == 0: no year; d == 0: no day */
	char sep;             /* numeric separator */
	bool pad_m, pad_d;    /* zero padded fields */
	bool yy;              /* two-digit year */
	int mlen;             /* month-name style: 0 full, 3 or 4 abbreviated */
	enum mcase mc;
	bool mdot;            /* "Mar." */
	bool ordinal;         /* "3rd" */
	bool of;              /* "3rd of March" */
	const char *mid;      /* text between the day/month and the year (", " or " ") */
	size_t nmid;
	const char *mid2;     /* text between day and month (DF_DAY_MONTH) or month and day */
	size_t nmid2;
	const char *rest;     /* trailing text kept verbatim (time of day) */
	size_t nrest;
};

int64_t salus_xf_days_from_civil(int y, int m, int d)
{
	/* Howard Hinnant's days_from_civil, proleptic Gregorian. */
	int64_t yy = (int64_t)y - (m <= 2);
	int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
	int64_t yoe = yy - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void salus_xf_civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t dd = doy - (153 * mp + 2) / 5 + 1;
	int64_t mm = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (mm <= 2));
	*m = (int)mm;
	*d = (int)dd;
}

static int days_in_month(int y, int m)
{
	static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return dm[m - 1];
}

int salus_xf_ref_year(const struct salus_deid_xform_opts *o)
{
	if (o->ref_year > 0)
		return o->ref_year;
	int y, m, d;
	salus_xf_civil_from_days(salus_now_ms() / 86400000, &y, &m, &d);
	return y;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static char lower(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c; }

/* Read 1..max digits at *i; returns the count (0 if none) and the value. */
static size_t digits(const char *v, size_t n, size_t *i, size_t max, int *val)
{
	size_t k = 0;
	int x = 0;
	while (*i < n && k < max && is_digit(v[*i])) {
		x = x * 10 + (v[*i] - '0');
		(*i)++;
		k++;
	}
	if (k && *i < n && is_digit(v[*i]))
		return 0; /* too many digits */
	*val = x;
	return k;
}

/* A month name at *i: full or 3/4-letter abbreviation, optional '.'. */
static bool month_word(const char *v, size_t n, size_t *i, struct pdate *p)
{
	size_t s = *i, e = s;
	while (e < n && is_alpha(v[e]))
		e++;
	size_t len = e - s;
	if (len < 3 || len > 9)
		return false;
	char w[10];
	for (size_t k = 0; k < len; k++)
		w[k] = lower(v[s + k]);
	w[len] = 0;
	int m = -1, ml = 0;
	for (int k = 0; k < 12; k++) {
		if (!strcmp(w, month_full[k])) {
			m = k;
			ml = 0;
			break;
		}
		if (len == 3 && !strncmp(w, month_abbr[k], 3)) {
			m = k;
			ml = 3;
			break;
		}
		if (len == 4 && !strcmp(w, "sept") && k == 8) {
			m = k;
			ml = 4;
			break;
		}
	}
	if (m < 0)
		return false;
	p->m = m + 1;
	p->mlen = ml;
	bool up = true, low = true;
	for (size_t k = 0; k < len; k++) {
		if (v[s + k] >= 'a' && v[s + k] <= 'z')
			up = false;
		else
			low = false;
	}
	p->mc = up ? MC_UPPER : low ? MC_LOWER : MC_TITLE;
	*i = e;
	if (*i < n && v[*i] == '.' && ml) {
		p->mdot = true;
		(*i)++;
	}
	return true;
}

static bool ordinal_suffix(const char *v, size_t n, size_t *i)
{
	if (*i + 2 > n)
		return false;
	char a = lower(v[*i]), b = lower(v[*i + 1]);
	if ((a == 's' && b == 't') || (a == 'n' && b == 'd') || (a == 'r' && b == 'd') || (a == 't' && b == 'h')) {
		if (*i + 2 < n && is_alpha(v[*i + 2]))
			return false;
		*i += 2;
		return true;
	}
	return false;
}

static size_t skip_spaces(const char *v, size_t n, size_t i)
{
	while (i < n && (v[i] == ' ' || v[i] == '\t'))
		i++;
	return i;
}

/* An optional year after month/day text: separators (", " / " ") then 4 digits. */
static bool tail_year(const char *v, size_t n, size_t *i, struct pdate *p)
{
	size_t j = *i;
	if (j < n && v[j] == ',')
		j++;
	j = skip_spaces(v, n, j);
	if (j == *i)
		return false;
	size_t k = j;
	int y;
	if (digits(v, n, &k, 4, &y) != 4)
		return false;
	p->mid = v + *i;
	p->nmid = j - *i;
	p->y = y;
	*i = k;
	return true;
}

static int parse(const char *v, size_t n, struct pdate *p)
{
	memset(p, 0, sizeof *p);
	size_t i = 0;
	int a, b, c;
	if (n == 0)
		return -1;
	if (is_digit(v[0])) {
		size_t na = digits(v, n, &i, 4, &a);
		if (na == 4) {
			if (i == n) { /* bare year */
				p->form = DF_YEAR;
				p->y = a;
				return 0;
			}
			if (v[i] != '-' && v[i] != '/')
				return -1;
			p->form = DF_ISO;
			p->sep = v[i++];
			size_t nb = digits(v, n, &i, 2, &b);
			if (nb != 2)
				return -1;
			p->y = a;
			p->m = b;
			if (i < n && v[i] == p->sep) {
				i++;
				if (digits(v, n, &i, 2, &c) != 2)
					return -1;
				p->d = c;
			}
			p->pad_m = p->pad_d = true;
			p->rest = v + i;
			p->nrest = n - i;
			if (p->nrest && p->d == 0)
				return -1;
			if (p->nrest && v[i] != 'T' && v[i] != ' ')
				return -1;
			return 0;
		}
		if (na == 0 || na > 2)
			return -1;
		if (i < n && (v[i] == '/' || v[i] == '-' || v[i] == '.')) {
			p->form = DF_NUM;
			p->sep = v[i++];
			p->pad_m = na == 2 && v[0] == '0';
			size_t bstart = i;
			size_t nb = digits(v, n, &i, 2, &b);
			if (nb == 0)
				return -1;
			p->pad_d = nb == 2 && v[bstart] == '0';
			p->m = a;
			p->d = b;
			if (i < n && v[i] == p->sep) {
				i++;
				size_t ny = digits(v, n, &i, 4, &c);
				if (ny == 2) {
					p->yy = true;
					p->y = c; /* century fixed by the caller */
				} else if (ny == 4) {
					p->y = c;
				} else {
					return -1;
				}
			}
			p->rest = v + i;
			p->nrest = n - i;
			if (p->nrest && v[i] != ' ' && v[i] != 'T')
				return -1;
			if (p->nrest && !p->y)
				return -1;
			return 0;
		}
		/* "3 March 2019", "3rd of March, 2019" */
		p->form = DF_DAY_MONTH;
		p->d = a;
		p->pad_d = na == 2 && v[0] == '0';
		p->ordinal = ordinal_suffix(v, n, &i);
		size_t ms = i;
		i = skip_spaces(v, n, i);
		if (i == ms && !(i < n && v[i] == '-'))
			return -1;
		if (i < n && v[i] == '-')
			i++;
		if (i + 3 < n && lower(v[i]) == 'o' && lower(v[i + 1]) == 'f' && v[i + 2] == ' ') {
			p->of = true;
			i = skip_spaces(v, n, i + 2);
		}
		p->mid2 = v + ms;
		p->nmid2 = i - ms;
		if (!month_word(v, n, &i, p))
			return -1;
		if (i < n && !tail_year(v, n, &i, p)) {
			/* "3-Mar-2019" */
			if (v[i] == '-') {
				p->mid = v + i;
				p->nmid = 1;
				i++;
				if (digits(v, n, &i, 4, &c) != 4)
					return -1;
				p->y = c;
			} else {
				return -1;
			}
		}
		return i == n ? 0 : -1;
	}
	if (!month_word(v, n, &i, p))
		return -1;
	size_t ms = i;
	i = skip_spaces(v, n, i);
	if (i == ms || i == n)
		return -1;
	size_t ds = i;
	size_t nd = digits(v, n, &i, 4, &a);
	if (nd == 4) { /* March 2019 */
		p->form = DF_MONTH_YEAR;
		p->y = a;
		p->mid = v + ms;
		p->nmid = ds - ms;
		return i == n ? 0 : -1;
	}
	if (nd == 0)
		return -1;
	p->form = DF_MONTH_DAY;
	p->d = a;
	p->pad_d = nd == 2 && v[ds] == '0';
	p->mid2 = v + ms;
	p->nmid2 = ds - ms;
	p->ordinal = ordinal_suffix(v, n, &i);
	if (i < n && !tail_year(v, n, &i, p))
		return -1;
	return i == n ? 0 : -1;
}

static int put_month(struct salus_buf *out, const struct pdate *p, int m)
{
	char w[12];
	const char *src = p->mlen ? month_abbr[m - 1] : month_full[m - 1];
	size_t len = strlen(src);
	if (p->mlen == 4 && m == 9)
		src = "sept", len = 4;
	for (size_t k = 0; k < len; k++) {
		char ch = src[k];
		if (p->mc == MC_UPPER || (p->mc == MC_TITLE && k == 0))
			ch = (char)(ch - 'a' + 'A');
		w[k] = ch;
	}
	int rc = salus_buf_add(out, w, len);
	if (!rc && p->mdot)
		rc = salus_buf_addc(out, '.');
	return rc;
}

static const char *ord(int d)
{
	if (d % 100 >= 11 && d % 100 <= 13)
		return "th";
	switch (d % 10) {
	case 1: return "st";
	case 2: return "nd";
	case 3: return "rd";
	default: return "th";
	}
}

static int put_num(struct salus_buf *out, int v, bool pad)
{
	return salus_buf_addf(out, pad ? "%02d" : "%d", v);
}

static int render(const struct pdate *p, int y, int m, int d, struct salus_buf *out)
{
	int rc = 0;
	switch (p->form) {
	case DF_YEAR:
		return salus_buf_addf(out, "%04d", y);
	case DF_ISO:
		rc = salus_buf_addf(out, "%04d%c%02d", y, p->sep, m);
		if (!rc && p->d)
			rc = salus_buf_addf(out, "%c%02d", p->sep, d);
		if (!rc)
			rc = salus_buf_add(out, p->rest, p->nrest);
		return rc;
	case DF_NUM:
		rc = put_num(out, m, p->pad_m);
		if (!rc)
			rc = salus_buf_addc(out, p->sep);
		if (!rc)
			rc = put_num(out, d, p->pad_d);
		if (!rc && p->y) {
			if (p->yy)
				rc = salus_buf_addf(out, "%c%02d", p->sep, y % 100);
			else
				rc = salus_buf_addf(out, "%c%04d", p->sep, y);
		}
		if (!rc)
			rc = salus_buf_add(out, p->rest, p->nrest);
		return rc;
	case DF_MONTH_DAY:
		rc = put_month(out, p, m);
		if (!rc)
			rc = salus_buf_add(out, p->mid2, p->nmid2);
		if (!rc)
			rc = put_num(out, d, p->pad_d);
		if (!rc && p->ordinal)
			rc = salus_buf_adds(out, ord(d));
		if (!rc && p->y) {
			rc = salus_buf_add(out, p->mid, p->nmid);
			if (!rc)
				rc = salus_buf_addf(out, "%04d", y);
		}
		return rc;
	case DF_DAY_MONTH:
		rc = put_num(out, d, p->pad_d);
		if (!rc && p->ordinal)
			rc = salus_buf_adds(out, ord(d));
		if (!rc)
			rc = salus_buf_add(out, p->mid2, p->nmid2);
		if (!rc)
			rc = put_month(out, p, m);
		if (!rc && p->y) {
			rc = salus_buf_add(out, p->mid, p->nmid);
			if (!rc)
				rc = salus_buf_addf(out, "%04d", y);
		}
		return rc;
	case DF_MONTH_YEAR:
		rc = put_month(out, p, m);
		if (!rc)
			rc = salus_buf_add(out, p->mid, p->nmid);
		if (!rc)
			rc = salus_buf_addf(out, "%04d", y);
		return rc;
	}
	return SALUS_EINTERNAL;
}

int salus_xf_date(const struct salus_deid_xform_opts *o, enum salus_xf_action a, const char *v, size_t n,
		  bool fhir_instant, int *status, struct salus_buf *out)
{
	struct pdate p;
	*status = SALUS_XF_DATE_BAD;
	if (parse(v, n, &p) != 0)
		return 0;
	int ref = salus_xf_ref_year(o);
	bool has_year = p.y != 0 || p.form == DF_YEAR;
	if (p.yy) /* two-digit year: the most recent century not in the future */
		p.y = 2000 + p.y <= ref ? 2000 + p.y : 1900 + p.y;
	int y = has_year ? p.y : 2000;
	int m = p.m ? p.m : 1;
	bool has_day = p.d != 0;
	int d = has_day ? p.d : 15;
	if (p.form != DF_YEAR) {
		if (m < 1 || m > 12 || y < 1 || y > 9999 || d < 1 || d > days_in_month(y, m))
			return 0;
	} else if (y < 1) {
		return 0;
	}
	if (has_year && y <= ref - 90) {
		*status = SALUS_XF_DATE_OLD;
		return 0;
	}
	if (a == SALUS_XA_YEAR) {
		if (!has_year)
			return 0;
		*status = SALUS_XF_DATE_OK;
		if (fhir_instant && p.form == DF_ISO && p.nrest)
			return salus_buf_addf(out, "%04d-01-01T00:00:00Z", y);
		return salus_buf_addf(out, "%04d", y);
	}
	if (p.form == DF_YEAR) { /* a year alone stays: it is not an element Safe Harbor removes */
		*status = SALUS_XF_DATE_OK;
		return salus_buf_addf(out, "%04d", y);
	}
	long off;
	int rc = salus_xf_shift_days(o, &off);
	if (rc)
		return rc;
	int ny, nm, nd;
	salus_xf_civil_from_days(salus_xf_days_from_civil(y, m, d) + off, &ny, &nm, &nd);
	if (ny < 1 || ny > 9999 || (p.yy && (ny < 1900 || ny > 2099)))
		return 0;
	if (has_year && ny <= ref - 90) {
		*status = SALUS_XF_DATE_OLD;
		return 0;
	}
	*status = SALUS_XF_DATE_OK;
	return render(&p, ny, nm, nd, out);
}
