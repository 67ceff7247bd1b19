/* test_transform.c — the PHI transforms on invented text with known spans:
 * each mode, surrogate consistency and scoping, date shift (intervals, weekday,
 * formats), ZIP3 generalisation, ages over 89, keyed pseudonyms, keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "deid/transform.h"
#include "deid/transform_int.h"

static unsigned char key_a[SALUS_DEID_KEY_LEN], key_b[SALUS_DEID_KEY_LEN];

/* Spans for each needle (in order of appearance, each after the previous). */
struct sp {
	const char *needle;
	enum salus_phi t;
};

static size_t mkspans(const char *text, const struct sp *in, size_t n, struct salus_span *out)
{
	size_t from = 0;
	for (size_t i = 0; i < n; i++) {
		const char *p = strstr(text + from, in[i].needle);
		assert_non_null(p);
		out[i] = (struct salus_span){(size_t)(p - text), (size_t)(p - text) + strlen(in[i].needle), in[i].t,
					     1.0f, 0};
		from = out[i].end;
	}
	return n;
}

static struct salus_deid_xform_opts opts(enum salus_deid_mode m, const unsigned char *key, const char *scope)
{
	return (struct salus_deid_xform_opts){.mode = m, .key = key, .key_len = key ? SALUS_DEID_KEY_LEN : 0,
					      .scope = scope, .ref_year = 2025};
}

/* Transform text with spans; returns a heap string (salus_free). */
static char *xf(const struct salus_deid_xform_opts *o, const char *text, const struct sp *in, size_t n)
{
	struct salus_span s[32];
	mkspans(text, in, n, s);
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	assert_int_equal(salus_deid_transform(o, text, strlen(text), s, n, &b), 0);
	return salus_buf_detach(&b, NULL);
}

/* One value through one category. */
static char *one(const struct salus_deid_xform_opts *o, const char *v, enum salus_phi t)
{
	struct sp s = {v, t};
	return xf(o, v, &s, 1);
}

static int setup(void **state)
{
	(void)state;
	for (int i = 0; i < SALUS_DEID_KEY_LEN; i++) {
		key_a[i] = (unsigned char)(i * 7 + 1);
		key_b[i] = (unsigned char)(i * 13 + 5);
	}
	return 0;
}

static const char note[] = "Seen by Dr. Quentin Marlowe on 04/11/2019 at Harborview Clinic, 12 Elm Street. "
			   "Pt Zelda Fitzwilliam, 93 years old, ZIP 03612, MRN A12-4471, call 617-555-0134 "
			   "or zfitz@mailbox.test.";
static const struct sp note_spans[] = {
	{"Quentin Marlowe", SALUS_PHI_NAME}, {"04/11/2019", SALUS_PHI_DATE},
	{"Harborview Clinic", SALUS_PHI_LOCATION}, {"12 Elm Street", SALUS_PHI_LOCATION},
	{"Zelda Fitzwilliam", SALUS_PHI_NAME}, {"93", SALUS_PHI_AGE}, {"03612", SALUS_PHI_ZIP},
	{"A12-4471", SALUS_PHI_ID}, {"617-555-0134", SALUS_PHI_PHONE}, {"zfitz@mailbox.test", SALUS_PHI_EMAIL},
};
#define NSP (sizeof note_spans / sizeof note_spans[0])

static void test_mode_parse(void **state)
{
	(void)state;
	enum salus_deid_mode m;
	assert_int_equal(salus_deid_mode_parse("mask", &m), 0);
	assert_int_equal(m, SALUS_DEID_MASK);
	assert_int_equal(salus_deid_mode_parse("shift-dates", &m), 0);
	assert_int_equal(m, SALUS_DEID_SHIFT_DATES);
	assert_int_equal(salus_deid_mode_parse("generalize", &m), 0);
	assert_int_equal(m, SALUS_DEID_GENERALISE);
	assert_int_equal(salus_deid_mode_parse("safe-harbor", &m), 0);
	assert_int_equal(m, SALUS_DEID_SAFE_HARBOR);
	assert_int_equal(salus_deid_mode_parse("scramble", &m), SALUS_EINVALID);
	assert_int_equal(salus_deid_mode_parse(NULL, &m), SALUS_EINVALID);
	assert_string_equal(salus_deid_mode_name(SALUS_DEID_REDACT), "redact");
	assert_true(salus_deid_mode_keyed(SALUS_DEID_SURROGATE));
	assert_false(salus_deid_mode_keyed(SALUS_DEID_MASK));
}

static void test_mask_and_redact(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_MASK, NULL, NULL);
	char *r = xf(&o, note, note_spans, NSP);
	assert_string_equal(r, "Seen by Dr. [NAME] on [DATE] at [LOCATION], [LOCATION]. Pt [NAME], [AGE] years old, "
			       "ZIP [ZIP], MRN [ID], call [PHONE] or [EMAIL].");
	salus_free(r);
	o.mode = SALUS_DEID_REDACT;
	r = xf(&o, note, note_spans, NSP);
	assert_string_equal(r, "Seen by Dr.  on  at , . Pt ,  years old, ZIP , MRN , call  or .");
	salus_free(r);
}

static void test_bad_spans_and_keys(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_MASK, NULL, NULL);
	struct salus_buf b;
	salus_buf_init(&b, 1024);
	struct salus_span s[2] = {{5, 10, SALUS_PHI_NAME, 1, 0}, {8, 12, SALUS_PHI_NAME, 1, 0}};
	assert_int_equal(salus_deid_transform(&o, "abcdefghijklmnop", 16, s, 2, &b), SALUS_EINVALID); /* overlap */
	s[1] = (struct salus_span){12, 40, SALUS_PHI_NAME, 1, 0};
	assert_int_equal(salus_deid_transform(&o, "abcdefghijklmnop", 16, s, 2, &b), SALUS_EINVALID); /* past end */
	s[0] = (struct salus_span){6, 5, SALUS_PHI_NAME, 1, 0};
	assert_int_equal(salus_deid_transform(&o, "abcdefghijklmnop", 16, s, 1, &b), SALUS_EINVALID); /* end<start */
	s[0] = (struct salus_span){1, 2, (enum salus_phi)99, 1, 0};
	assert_int_equal(salus_deid_transform(&o, "abcdefghijklmnop", 16, s, 1, &b), SALUS_EINVALID);
	assert_int_equal(b.n, 0);
	o.mode = SALUS_DEID_SURROGATE; /* keyed mode without a key */
	s[0] = (struct salus_span){0, 3, SALUS_PHI_NAME, 1, 0};
	assert_int_equal(salus_deid_transform(&o, "Ann", 3, s, 1, &b), SALUS_EUSAGE);
	o.key = key_a;
	o.key_len = 16;
	assert_int_equal(salus_deid_transform(&o, "Ann", 3, s, 1, &b), SALUS_EUSAGE);
	/* no spans: text copied; appends after existing content */
	o = opts(SALUS_DEID_MASK, NULL, NULL);
	assert_int_equal(salus_buf_adds(&b, ">"), 0);
	assert_int_equal(salus_deid_transform(&o, "plain", 5, NULL, 0, &b), 0);
	assert_string_equal(b.p, ">plain");
	salus_buf_release(&b);
}

static void test_surrogate_shape_and_consistency(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SURROGATE, key_a, "Patient/p1");
	const char *text = "Quentin Marlowe came with Q. MARLOWE; Mr. Marlowe's wife quentin. Call 617-555-0134.";
	struct sp s[] = {{"Quentin Marlowe", SALUS_PHI_NAME}, {"Q. MARLOWE", SALUS_PHI_NAME},
			 {"Mr. Marlowe", SALUS_PHI_NAME}, {"quentin", SALUS_PHI_NAME},
			 {"617-555-0134", SALUS_PHI_PHONE}};
	char *r = xf(&o, text, s, 5);
	/* parse the fake first/last name back out of "F L came with ..." */
	char first[64], last[64];
	assert_int_equal(sscanf(r, "%63s %63s came", first, last), 2);
	assert_string_not_equal(first, "Quentin");
	assert_string_not_equal(last, "Marlowe");
	assert_true(first[0] >= 'A' && first[0] <= 'Z' && first[1] >= 'a' && first[1] <= 'z'); /* Title case */
	char upper_last[64];
	size_t i;
	for (i = 0; last[i]; i++)
		upper_last[i] = (char)(last[i] >= 'a' && last[i] <= 'z' ? last[i] - 32 : last[i]);
	upper_last[i] = 0;
	char expect[256];
	snprintf(expect, sizeof expect, ". %s; Mr. %s's wife ", upper_last, last);
	assert_non_null(strstr(r, expect)); /* the same surname, upper-cased; title kept */
	char lower_first[64];
	for (i = 0; first[i]; i++)
		lower_first[i] = (char)(first[i] >= 'A' && first[i] <= 'Z' ? first[i] + 32 : first[i]);
	lower_first[i] = 0;
	snprintf(expect, sizeof expect, "wife %s. Call ", lower_first);
	assert_non_null(strstr(r, expect)); /* the same given name, lower-cased */
	assert_null(strstr(r, "Marlowe"));
	assert_null(strstr(r, "MARLOWE"));
	assert_null(strstr(r, "Q. ")); /* the initial changed */
	/* phone: same layout, different digits */
	const char *ph = strstr(r, "Call ") + 5;
	assert_int_equal(strlen(ph), strlen("617-555-0134."));
	assert_true(ph[3] == '-' && ph[7] == '-');
	assert_memory_not_equal(ph, "617-555-0134", 12);

	/* same input, same scope, same key: same output */
	char *r2 = xf(&o, text, s, 5);
	assert_string_equal(r, r2);
	salus_free(r2);
	/* another scope: the name changes (for this fixed key and these names) */
	o.scope = "Patient/p2";
	r2 = xf(&o, text, s, 5);
	assert_string_not_equal(r, r2);
	salus_free(r2);
	/* another key: different too */
	o.scope = "Patient/p1";
	o.key = key_b;
	r2 = xf(&o, text, s, 5);
	assert_string_not_equal(r, r2);
	salus_free(r2);
	salus_free(r);
}

static void test_surrogate_never_real(void **state)
{
	(void)state;
	/* Whatever the scope, a listed name never maps to itself. */
	static const char *const names[] = {"John", "Mary", "Baker", "Smith", "Sutton", "Paul"};
	char scope[32];
	for (int k = 0; k < 300; k++) {
		snprintf(scope, sizeof scope, "s%d", k);
		struct salus_deid_xform_opts o = opts(SALUS_DEID_SURROGATE, key_a, scope);
		for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
			char *r = one(&o, names[i], SALUS_PHI_NAME);
			assert_string_not_equal(r, names[i]);
			salus_free(r);
		}
		char *r = one(&o, "123-45-6789", SALUS_PHI_SSN);
		assert_int_equal(strlen(r), 11);
		assert_true(r[0] == '9' && r[3] == '-' && r[6] == '-'); /* never-issued area */
		salus_free(r);
	}
}

static void test_surrogate_contacts(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SURROGATE, key_a, "p");
	char *r = one(&o, "zelda.fitz@mailbox.test", SALUS_PHI_EMAIL);
	assert_non_null(strchr(r, '@'));
	assert_true(strstr(r, "@example.com") || strstr(r, "@example.org") || strstr(r, "@example.net"));
	assert_null(strstr(r, "zelda"));
	salus_free(r);
	r = one(&o, "https://www.zelda-fitz.test/about/me", SALUS_PHI_URL);
	assert_true(!strncmp(r, "https://www.example.", 20));
	assert_null(strstr(r, "zelda"));
	salus_free(r);
	r = one(&o, "10.20.30.40", SALUS_PHI_IP);
	assert_true(!strncmp(r, "203.0.113.", 10));
	salus_free(r);
	r = one(&o, "fe80::1ff:fe23:4567:890a", SALUS_PHI_IP);
	assert_true(!strncmp(r, "2001:db8::", 10));
	salus_free(r);
	r = one(&o, "AB-99231x", SALUS_PHI_ID);
	assert_int_equal(strlen(r), 9);
	assert_true(r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z' && r[2] == '-');
	assert_true(r[3] >= '0' && r[3] <= '9' && r[8] >= 'a' && r[8] <= 'z');
	assert_string_not_equal(r, "AB-99231x");
	salus_free(r);
	r = one(&o, "14 Larchmont Ave, Apt 3", SALUS_PHI_LOCATION);
	assert_null(strstr(r, "Larchmont"));
	assert_null(strstr(r, "14 "));
	assert_non_null(strstr(r, " Ave, Apt "));
	salus_free(r);
	r = one(&o, "Boston, Massachusetts", SALUS_PHI_LOCATION);
	assert_null(strstr(r, "Boston"));
	assert_non_null(strstr(r, ", Massachusetts")); /* the state may stay */
	salus_free(r);
}

static void test_date_shift_intervals(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SHIFT_DATES, key_a, "Patient/42");
	long off;
	assert_int_equal(salus_xf_shift_days(&o, &off), 0);
	assert_true(off != 0 && off >= -365 && off <= 365);
	const char *text = "Admitted 2019-03-01, discharged 2019-03-11, follow-up 2020-02-28.";
	struct sp s[] = {{"2019-03-01", SALUS_PHI_DATE}, {"2019-03-11", SALUS_PHI_DATE}, {"2020-02-28", SALUS_PHI_DATE}};
	char *r = xf(&o, text, s, 3);
	int y[3], m[3], d[3];
	assert_int_equal(sscanf(r, "Admitted %d-%d-%d, discharged %d-%d-%d, follow-up %d-%d-%d.", &y[0], &m[0], &d[0],
				&y[1], &m[1], &d[1], &y[2], &m[2], &d[2]),
			 9);
	int64_t a = salus_xf_days_from_civil(y[0], m[0], d[0]);
	int64_t b = salus_xf_days_from_civil(y[1], m[1], d[1]);
	int64_t c = salus_xf_days_from_civil(y[2], m[2], d[2]);
	assert_int_equal(b - a, 10);
	assert_int_equal(c - a, salus_xf_days_from_civil(2020, 2, 28) - salus_xf_days_from_civil(2019, 3, 1));
	assert_int_equal(a - salus_xf_days_from_civil(2019, 3, 1), off);
	/* names are masked in shift-dates mode */
	salus_free(r);
	r = one(&o, "Ann Lee", SALUS_PHI_NAME);
	assert_string_equal(r, "[NAME]");
	salus_free(r);
	/* another patient: another offset (for this key) */
	struct salus_deid_xform_opts o2 = opts(SALUS_DEID_SHIFT_DATES, key_a, "Patient/43");
	long off2;
	assert_int_equal(salus_xf_shift_days(&o2, &off2), 0);
	assert_int_not_equal(off, off2);
}

static void test_date_keep_weekday(void **state)
{
	(void)state;
	char scope[32];
	for (int k = 0; k < 50; k++) {
		snprintf(scope, sizeof scope, "Patient/%d", k);
		struct salus_deid_xform_opts o = opts(SALUS_DEID_SHIFT_DATES, key_b, scope);
		o.keep_weekday = true;
		long off;
		assert_int_equal(salus_xf_shift_days(&o, &off), 0);
		assert_int_equal(off % 7, 0);
		assert_true(off != 0 && off >= -364 && off <= 364);
		char *r = one(&o, "2021-06-15", SALUS_PHI_DATE); /* a Tuesday */
		int y, m, d;
		assert_int_equal(sscanf(r, "%d-%d-%d", &y, &m, &d), 3);
		int64_t days = salus_xf_days_from_civil(y, m, d);
		assert_int_equal(((days % 7) + 7 + 4) % 7, 2); /* 1970-01-01 was a Thursday (4) */
		assert_string_not_equal(r, "2021-06-15");
		salus_free(r);
	}
}

/* Shift a date whose offset we know, in each written form. */
static void test_date_formats(void **state)
{
	(void)state;
	/* find a scope with a known offset by search: we only need the offset value */
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SHIFT_DATES, key_a, "fmt");
	long off;
	assert_int_equal(salus_xf_shift_days(&o, &off), 0);
	int y, m, d;
	salus_xf_civil_from_days(salus_xf_days_from_civil(2019, 3, 3) + off, &y, &m, &d);
	static const char *const full[] = {"January", "February", "March", "April", "May", "June", "July",
					   "August", "September", "October", "November", "December"};
	char expect[64];
	char *r;

	r = one(&o, "3/3/2019", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%d/%d/%d", m, d, y);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "03/03/2019", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%02d/%02d/%d", m, d, y);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "3/3/19", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%d/%d/%02d", m, d, y % 100);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "2019-03-03", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%04d-%02d-%02d", y, m, d);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "2019-03-03T08:15:00Z", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%04d-%02d-%02dT08:15:00Z", y, m, d);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "March 3, 2019", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%s %d, %d", full[m - 1], d, y);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "3 Mar 2019", SALUS_PHI_DATE);
	snprintf(expect, sizeof expect, "%d %.3s %d", d, full[m - 1], y);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "3/3", SALUS_PHI_DATE); /* no year: shifted within the leap year 2000 */
	salus_xf_civil_from_days(salus_xf_days_from_civil(2000, 3, 3) + off, &y, &m, &d);
	snprintf(expect, sizeof expect, "%d/%d", m, d);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "Mar 2019", SALUS_PHI_DATE); /* month-year: anchored on the 15th */
	salus_xf_civil_from_days(salus_xf_days_from_civil(2019, 3, 15) + off, &y, &m, &d);
	snprintf(expect, sizeof expect, "%.3s %d", full[m - 1], y);
	assert_string_equal(r, expect);
	salus_free(r);
	r = one(&o, "MARCH 3RD, 2019", SALUS_PHI_DATE); /* case and ordinal kept */
	salus_xf_civil_from_days(salus_xf_days_from_civil(2019, 3, 3) + off, &y, &m, &d);
	assert_null(strstr(r, "MARCH 3RD"));
	assert_true(r[0] >= 'A' && r[0] <= 'Z' && r[1] >= 'A' && r[1] <= 'Z');
	salus_free(r);
	/* unparseable dates fall back to the mask */
	r = one(&o, "last Tuesday", SALUS_PHI_DATE);
	assert_string_equal(r, "[DATE]");
	salus_free(r);
	r = one(&o, "13/45/2019", SALUS_PHI_DATE);
	assert_string_equal(r, "[DATE]");
	salus_free(r);
	r = one(&o, "2/30/2019", SALUS_PHI_DATE);
	assert_string_equal(r, "[DATE]");
	salus_free(r);
}

static void test_generalise(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_GENERALISE, NULL, NULL);
	char *r = xf(&o, note, note_spans, NSP);
	/* 03612 -> restricted 036 -> 000; 04/11/2019 -> 2019; 93 -> 90+; the rest masked */
	assert_string_equal(r, "Seen by Dr. [NAME] on 2019 at [LOCATION], [LOCATION]. Pt [NAME], 90+ years old, "
			       "ZIP 000, MRN [ID], call [PHONE] or [EMAIL].");
	salus_free(r);
	static const char *const restricted[] = {"036", "059", "063", "102", "203", "556", "692", "790", "821",
						 "823", "830", "831", "878", "879", "884", "890", "893"};
	for (size_t i = 0; i < 17; i++) {
		char zip[16];
		snprintf(zip, sizeof zip, "%s42", restricted[i]);
		r = one(&o, zip, SALUS_PHI_ZIP);
		assert_string_equal(r, "000");
		salus_free(r);
	}
	r = one(&o, "02139", SALUS_PHI_ZIP);
	assert_string_equal(r, "021");
	salus_free(r);
	r = one(&o, "02139-4307", SALUS_PHI_ZIP);
	assert_string_equal(r, "021");
	salus_free(r);
	r = one(&o, "03712", SALUS_PHI_ZIP); /* 037 is not restricted */
	assert_string_equal(r, "037");
	salus_free(r);
	r = one(&o, "K1A 0B6", SALUS_PHI_ZIP);
	assert_string_equal(r, "[ZIP]");
	salus_free(r);
	/* ages */
	r = one(&o, "89", SALUS_PHI_AGE);
	assert_string_equal(r, "89");
	salus_free(r);
	r = one(&o, "90", SALUS_PHI_AGE);
	assert_string_equal(r, "90+");
	salus_free(r);
	r = one(&o, "104-year-old", SALUS_PHI_AGE);
	assert_string_equal(r, "90+-year-old");
	salus_free(r);
	r = one(&o, "ninety-one", SALUS_PHI_AGE);
	assert_string_equal(r, "90+");
	salus_free(r);
	r = one(&o, "aged 1000000000000000000000", SALUS_PHI_AGE);
	assert_string_equal(r, "aged 90+");
	salus_free(r);
	/* dates to years; a year revealing an age over 89 is masked */
	r = one(&o, "March 3, 2019", SALUS_PHI_DATE);
	assert_string_equal(r, "2019");
	salus_free(r);
	r = one(&o, "3/3/19", SALUS_PHI_DATE);
	assert_string_equal(r, "2019");
	salus_free(r);
	r = one(&o, "6/1/1931", SALUS_PHI_DATE);
	assert_string_equal(r, "[DATE]");
	salus_free(r);
	r = one(&o, "3/3", SALUS_PHI_DATE); /* no year to keep */
	assert_string_equal(r, "[DATE]");
	salus_free(r);
}

static void test_pseudonym(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_PSEUDONYM, key_a, "Patient/1");
	char *a = one(&o, "MRN-0042-77", SALUS_PHI_ID);
	assert_int_equal(strlen(a), 13);
	assert_true(!strncmp(a, "ID-", 3));
	for (int i = 3; i < 13; i++)
		assert_true((a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
	char *b = one(&o, "mrn 0042 77", SALUS_PHI_ID); /* same identifier, other punctuation */
	assert_string_equal(a, b);
	salus_free(b);
	o.scope = "Patient/2"; /* pseudonyms are project-wide: scope does not matter */
	b = one(&o, "MRN-0042-77", SALUS_PHI_ID);
	assert_string_equal(a, b);
	salus_free(b);
	b = one(&o, "MRN-0042-78", SALUS_PHI_ID);
	assert_string_not_equal(a, b);
	salus_free(b);
	o.key = key_b; /* keyed: another key, another pseudonym */
	b = one(&o, "MRN-0042-77", SALUS_PHI_ID);
	assert_string_not_equal(a, b);
	salus_free(b);
	b = one(&o, "Ann Lee", SALUS_PHI_NAME);
	assert_string_equal(b, "[NAME]");
	salus_free(b);
	salus_free(a);
}

static void test_safe_harbor(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SAFE_HARBOR, key_a, "Patient/9");
	char *r = xf(&o, note, note_spans, NSP);
	assert_null(strstr(r, "Quentin"));
	assert_null(strstr(r, "Marlowe"));
	assert_null(strstr(r, "Zelda"));
	assert_null(strstr(r, "Harborview"));
	assert_null(strstr(r, "Elm"));
	assert_null(strstr(r, "04/11"));
	assert_null(strstr(r, "A12-4471"));
	assert_null(strstr(r, "617-555-0134"));
	assert_null(strstr(r, "zfitz"));
	assert_non_null(strstr(r, " on 2019 at "));
	assert_non_null(strstr(r, "90+ years old"));
	assert_non_null(strstr(r, "ZIP 000,"));
	assert_non_null(strstr(r, "MRN ID-"));
	assert_non_null(strstr(r, " Clinic, "));
	assert_null(strchr(r, '[')); /* every category has a non-mask rule */
	salus_free(r);
	o.shift_dates = true;
	r = one(&o, "04/11/2019", SALUS_PHI_DATE);
	assert_int_equal(strlen(r) >= 8, 1);
	assert_string_not_equal(r, "04/11/2019");
	assert_non_null(strchr(r, '/'));
	salus_free(r);
}

static void test_utf8_text(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SURROGATE, key_a, "u");
	const char *text = "Señora José Núñez — visita";
	struct sp s[] = {{"José Núñez", SALUS_PHI_NAME}};
	char *r = xf(&o, text, s, 1);
	assert_true(!strncmp(r, "Señora ", 8));
	assert_non_null(strstr(r, " — visita"));
	assert_null(strstr(r, "José"));
	salus_free(r);
}

static void test_keys(void **state)
{
	(void)state;
	char path[] = "/tmp/salus-test-key-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	unsigned char raw[SALUS_DEID_KEY_LEN];
	for (int i = 0; i < SALUS_DEID_KEY_LEN; i++)
		raw[i] = (unsigned char)(0xA0 + i);
	assert_int_equal(write(fd, raw, sizeof raw), (ssize_t)sizeof raw);
	close(fd);
	unsigned char *k = NULL;
	assert_int_equal(salus_deid_key_load(path, &k), 0);
	assert_memory_equal(k, raw, sizeof raw);
	salus_deid_key_free(k);

	FILE *f = fopen(path, "w");
	for (int i = 0; i < SALUS_DEID_KEY_LEN; i++)
		fprintf(f, "%02X", raw[i]);
	fputs("\n", f);
	fclose(f);
	k = NULL;
	assert_int_equal(salus_deid_key_load(path, &k), 0);
	assert_memory_equal(k, raw, sizeof raw);
	salus_deid_key_free(k);

	f = fopen(path, "w");
	fputs("not a key\n", f);
	fclose(f);
	k = NULL;
	assert_int_equal(salus_deid_key_load(path, &k), SALUS_EINVALID);
	assert_null(k);
	f = fopen(path, "w");
	for (int i = 0; i < SALUS_DEID_KEY_LEN; i++)
		fputs("zz", f);
	fclose(f);
	assert_int_equal(salus_deid_key_load(path, &k), SALUS_EINVALID);
	unlink(path);
	assert_int_equal(salus_deid_key_load(path, &k), SALUS_ENOTFOUND);

	unsigned char *r1, *r2;
	assert_int_equal(salus_deid_key_random(&r1), 0);
	assert_int_equal(salus_deid_key_random(&r2), 0);
	assert_memory_not_equal(r1, r2, SALUS_DEID_KEY_LEN);
	salus_deid_key_free(r1);
	salus_deid_key_free(r2);
	salus_deid_key_free(NULL);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	struct salus_deid_xform_opts o = opts(SALUS_DEID_SAFE_HARBOR, key_a, "Patient/9");
	struct salus_span s[NSP];
	mkspans(note, note_spans, NSP, s);
	for (unsigned long n = 1; n < 200; n++) {
		struct salus_buf b;
		salus_buf_init(&b, 1 << 20);
		salus_alloc_fail_at(n, 1);
		int rc = salus_deid_transform(&o, note, strlen(note), s, NSP, &b);
		salus_alloc_fail_at(0, 0);
		if (rc == 0) {
			salus_buf_release(&b);
			break;
		}
		assert_int_equal(rc, SALUS_ENOMEM);
		assert_int_equal(b.n, 0);
		salus_buf_release(&b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mode_parse),
		cmocka_unit_test(test_mask_and_redact),
		cmocka_unit_test(test_bad_spans_and_keys),
		cmocka_unit_test(test_surrogate_shape_and_consistency),
		cmocka_unit_test(test_surrogate_never_real),
		cmocka_unit_test(test_surrogate_contacts),
		cmocka_unit_test(test_date_shift_intervals),
		cmocka_unit_test(test_date_keep_weekday),
		cmocka_unit_test(test_date_formats),
		cmocka_unit_test(test_generalise),
		cmocka_unit_test(test_pseudonym),
		cmocka_unit_test(test_safe_harbor),
		cmocka_unit_test(test_utf8_text),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
