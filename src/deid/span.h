/*
 * span.h — a detected PHI span: the one type shared by the detector
 * (deid.h) and the transforms (transform.h).
 */
#ifndef SALUS_DEID_SPAN_H
#define SALUS_DEID_SPAN_H
#include <stddef.h>
#include <stdint.h>

/* Safe Harbor categories, coarse enough to score against gold annotations.
 * X(NAME, label) — label is the public name used in CLI output and masks. */
#define SALUS_PHI_MAP(X)      \
	X(NAME, "NAME")         \
	X(DATE, "DATE")         \
	X(AGE, "AGE")           \
	X(PHONE, "PHONE")       \
	X(EMAIL, "EMAIL")       \
	X(URL, "URL")           \
	X(IP, "IP")             \
	X(SSN, "SSN")           \
	X(ID, "ID")             \
	X(LOCATION, "LOCATION") \
	X(ZIP, "ZIP")

enum salus_phi {
#define SALUS_PHI_ENUM(n, l) SALUS_PHI_##n,
	SALUS_PHI_MAP(SALUS_PHI_ENUM)
#undef SALUS_PHI_ENUM
	SALUS_PHI__COUNT
};

/* "NAME", "DATE"...; "UNKNOWN" out of range. */
const char *salus_phi_label(enum salus_phi t);

struct salus_span {
	size_t start;     /* byte offset into the UTF-8 text */
	size_t end;       /* exclusive */
	enum salus_phi type;
	float confidence; /* 0..1 */
	uint16_t rule;    /* which pattern / dictionary / context rule fired (deid.h: salus_deid_rule_name) */
};

#endif
