/*
 * qr.c — the TOTP enrolment QR code as an SVG image (see user.h,
 * salus_totp_qr_svg): libqrencode encodes the otpauth:// URI, and each row's
 * runs of dark modules become one path segment, so the image is small, exact
 * at any size (one user unit per module, crispEdges) and viewable or
 * printable anywhere without an image library.
 */
#include <qrencode.h>
#include <string.h>

#include "auth/user.h"
#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"

#define QR_QUIET 4               /* modules of white border (ISO/IEC 18004 asks for 4) */
#define QR_SVG_MAX (256 * 1024)  /* an SVG of a version-40 code stays far below this */
#define QR_TEXT_MAX 1024         /* the URI */

int salus_totp_qr_svg(const char *uri, char **out, size_t *n)
{
	if (!uri || !*uri || strlen(uri) > QR_TEXT_MAX)
		return SALUS_EINVALID;
	QRcode *q = QRcode_encodeString(uri, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (!q)
		return SALUS_ENOMEM; /* libqrencode fails only on memory for a text this short */
	int w = q->width, size = w + 2 * QR_QUIET;
	struct salus_buf b;
	salus_buf_init(&b, QR_SVG_MAX);
	int rc = salus_buf_addf(&b,
				"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
				"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" "
				"shape-rendering=\"crispEdges\"><title>Salus TOTP enrolment</title>"
				"<rect width=\"%d\" height=\"%d\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
				size, size, size * 8, size * 8, size, size);
	for (int y = 0; !rc && y < w; y++)
		for (int x = 0; !rc && x < w;) {
			if (!(q->data[y * w + x] & 1)) {
				x++;
				continue;
			}
			int run = 1;
			while (x + run < w && (q->data[y * w + x + run] & 1))
				run++;
			rc = salus_buf_addf(&b, "M%d %dh%dv1h-%dz", x + QR_QUIET, y + QR_QUIET, run, run);
			x += run;
		}
	QRcode_free(q);
	if (!rc)
		rc = salus_buf_adds(&b, "\"/></svg>\n");
	if (rc) {
		salus_buf_release(&b);
		return rc == SALUS_ETOOLARGE ? SALUS_EINVALID : SALUS_ENOMEM;
	}
	*out = salus_buf_detach(&b, n);
	return *out ? 0 : SALUS_ENOMEM;
}
