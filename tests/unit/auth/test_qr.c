/*
 * test_qr.c — the TOTP enrolment QR code as SVG (qr.c): the image, read back
 * module by module from its path, is exactly libqrencode's matrix for the
 * URI, placed inside a 4-module white quiet zone; bad input is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <qrencode.h>

#include "auth/user.h"
#include "core/alloc.h"
#include "core/err.h"

static void check_uri(const char *uri)
{
	char *svg = NULL;
	size_t n = 0;
	assert_int_equal(salus_totp_qr_svg(uri, &svg, &n), 0);
	assert_int_equal(strlen(svg), n);
	assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_null(strstr(svg, "secret=")); /* the secret is only in the picture */
	QRcode *q = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	assert_non_null(q);
	int w = q->width, size = w + 8;
	int vb = 0;
	assert_int_equal(sscanf(strstr(svg, "viewBox=\"0 0 "), "viewBox=\"0 0 %d", &vb), 1);
	assert_int_equal(vb, size);
	unsigned char *grid = calloc((size_t)(size * size), 1);
	/* every segment is "M x y h run v1 h-run z": one row, run modules */
	const char *p = strstr(svg, " d=\"") + 4;
	while (*p == 'M') {
		int x, y, run, back, used = 0;
		assert_int_equal(sscanf(p, "M%d %dh%dv1h-%dz%n", &x, &y, &run, &back, &used), 4);
		assert_int_equal(run, back);
		assert_true(x >= 0 && y >= 0 && run > 0 && x + run <= size && y < size);
		for (int i = 0; i < run; i++) {
			assert_int_equal(grid[y * size + x + i], 0); /* no module drawn twice */
			grid[y * size + x + i] = 1;
		}
		p += used;
	}
	assert_string_equal(p, "\"/></svg>\n");
	for (int y = 0; y < size; y++)
		for (int x = 0; x < size; x++) {
			int in = x >= 4 && x < 4 + w && y >= 4 && y < 4 + w;
			int want = in ? (q->data[(y - 4) * w + (x - 4)] & 1) : 0;
			if (grid[y * size + x] != want)
				fail_msg("module %d,%d: %d, want %d", x, y, grid[y * size + x], want);
		}
	free(grid);
	QRcode_free(q);
	salus_free(svg);
}

static void test_roundtrip(void **state)
{
	(void)state;
	check_uri("otpauth://totp/Salus:drsmith?secret=7Y4GMWZTLCYIEXWCDUHY2J4NTVFULWLR&issuer=Salus&algorithm=SHA1"
		  "&digits=6&period=30");
	check_uri("x");
	char long_uri[1025];
	memset(long_uri, 'A', 1024);
	long_uri[1024] = 0;
	check_uri(long_uri);
}

static void test_bad(void **state)
{
	(void)state;
	char *svg = NULL;
	size_t n;
	char too_long[1026];
	memset(too_long, 'A', 1025);
	too_long[1025] = 0;
	assert_int_equal(salus_totp_qr_svg(NULL, &svg, &n), SALUS_EINVALID);
	assert_int_equal(salus_totp_qr_svg("", &svg, &n), SALUS_EINVALID);
	assert_int_equal(salus_totp_qr_svg(too_long, &svg, &n), SALUS_EINVALID);
	assert_null(svg);
	/* failed allocations: an error, never a crash or a leak */
	for (unsigned long i = 1; i < 64; i++) {
		salus_alloc_fail_at(i, 0);
		int rc = salus_totp_qr_svg("otpauth://totp/Salus:a?secret=AAAA", &svg, &n);
		salus_alloc_fail_at(0, 0);
		if (rc == 0) {
			salus_free(svg);
			svg = NULL;
		} else {
			assert_int_equal(rc, SALUS_ENOMEM);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
