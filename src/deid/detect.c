/*
 * detect.c — the PHI detector (deid.h).
 *
 * One scan: validate UTF-8 → normalise non-ASCII text with utf8proc into a
 * work buffer with a byte map back to the input → one Hyperscan pass over all
 * DEID_PATTERNS, collecting (start, end, pattern) candidates → tokenize (runs
 * of letters/digits, lower-case FNV hash computed on the fly; dictionary flags
 * looked up lazily, only for tokens a rule asks about) → turn candidates into
 * spans (pattern actions: trimming, label values, fraction and 24-hour-time
 * rejection) → context and dictionary rules over tokens (names, places) →
 * merge overlapping and adjacent spans → map offsets back.
 *
 * Every buffer lives in the detector and is reused, so a warmed-up scan does
 * not allocate.  Nothing here logs: spans and text are PHI.
 */
#include <hs.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "deid/deid.h"
#include "deid/deid_int.h"

/* ---- tables -------------------------------------------------------------- */

static uint8_t cclass[256];        /* CC_* bits of each byte (init_tables) */
static unsigned char lowtab[256];  /* ASCII lower case */
static uint8_t kwtab[256][8];      /* KW_* by first byte and min(length, 7) */
/* CS_WEAK and CS_DICT by the first two letters (PAIR_KEY): a word of weak_first, a month
 * name.  Supersets (the key folds letters with other bytes; CS_DICT ignores the shape and
 * length): the passes test the token again. */
static uint8_t pair_cls[1024];
#define PAIR_KEY(c0, c1) ((((unsigned)(c0) & 31u) << 5) | ((unsigned)(c1) & 31u))
static uint8_t weak_tab[256];      /* 1 + index in weak_first by WEAK_KEY of the first two letters, or 0 */
static const char *const weak_first[] = {"case",  "unit",  "visit", "encounter", "record", "patient", "pt", "lot",
					 "model", "order", "group", "plan",  "room",      "bed",    "account"};
#define WEAK_KEY(c0, c1) ((((unsigned)(c0) * 31u) + (unsigned)(c1)) & 255u) /* no two of weak_first collide */
static void init_tables(void);
/* The street suffixes of RX_STREETSFX in a small open-addressing table (street_suffix). */
#define SFX_MAX 96
static const char *sfx_word[SFX_MAX];
static uint8_t sfx_len[SFX_MAX];
static uint8_t sfx_slot[256]; /* 1 + index in sfx_word, or 0 */
#define SFX_KEY(c0, c1, cl, n) \
	((((unsigned)(c0) * 31u + (unsigned)(c1)) * 31u + (unsigned)(cl) + (unsigned)(n) * 7u) & 255u)

struct pat_info {
	const char *name;
	const char *flags;
	const char *expr;
	enum salus_phi type;
	enum deid_act act;
	float conf;
};

static const struct pat_info pats[PAT__COUNT] = {
#define P_INFO(e, n, t, a, c, f, r) {n, f, r, SALUS_PHI_##t, a, c},
	DEID_PATTERNS(P_INFO)
#undef P_INFO
};

static const char *const rule_names[] = {
#define R_NAME(e, n, d) n,
	DEID_RULES(R_NAME)
#undef R_NAME
};
static const char *const rule_descs[] = {
#define R_DESC(e, n, d) d,
	DEID_RULES(R_DESC)
#undef R_DESC
};

const char *salus_deid_rule_name(uint16_t rule)
{
	if (rule < PAT__COUNT)
		return pats[rule].name;
	if (rule > RULE__FIRST && rule < RULE__END)
		return rule_names[rule - RULE__FIRST - 1];
	return "unknown";
}

const char *salus_deid_rule_desc(uint16_t rule)
{
	if (rule < PAT__COUNT)
		return pats[rule].expr;
	if (rule > RULE__FIRST && rule < RULE__END)
		return rule_descs[rule - RULE__FIRST - 1];
	return "";
}

const char *salus_deid_rule_kind(uint16_t rule)
{
	if (rule < PAT__COUNT)
		return "pattern";
	if (rule == RULE_DICT_NAME || rule == RULE_CITY_DICT)
		return "dictionary";
	if (rule > RULE__FIRST && rule < RULE__END)
		return "context";
	return "unknown";
}

size_t salus_deid_dict_size(void)
{
	return salus_deid_dict_words;
}

/* ---- detector state ------------------------------------------------------ */

struct cand {
	uint32_t s, e;
	uint16_t pat;
};

enum shape { SH_LOWER, SH_CAP, SH_UPPER, SH_INIT, SH_NUM, SH_MIX, SH_OTHER };

#define TB_SENT 1u    /* first word of a sentence or line */
#define TB_NL 2u      /* a newline separates it from the previous token */
#define TB_COVERED 4u /* inside a pattern span */
#define TB_HASHED 8u  /* tok.h is computed */

/* Keyword rules a token may start, from its first letter and length alone
 * (kwtab), so the per-token loops test one bit instead of a chain of
 * data-dependent comparisons. */
#define KW_ATTOFROM 1u /* at, to, from (2-4 letters, a/t/f) */
#define KW_PREP 2u     /* to, from, at, on, per (2-4 letters, t/f/a/o/p) */
#define KW_AWARE 4u    /* aware */
#define KW_UNIV 8u     /* u, univ */
#define KW_TRIG 16u    /* passes the context-trigger bit filter (may be a title, relation, label...) */
#define KW_GENINST 32u /* general, regional, memorial (7+ letters, g/r/m) */

/* Classes of tokens that start a per-token pass, as bit sets built by the
 * tokenizer (the passes visit their set bits, not every token). */
enum {
	CS_ATF,    /* rules: KW_ATTOFROM (at, to, from...; the same bit as in kw) */
	CS_WEAK,   /* weak_labels: the first two letters of a word of weak_first */
	CS_AGE,    /* age_sex_spaced: a number of 2-3 digits */
	CS_NUMR,   /* numeric_rules: not a lower-case or capitalised word, or a word before ':' */
	CS_TRIG,   /* rules: KW_TRIG (every word with a DF_TRIGGER flag has it; the same bit as in kw) */
	CS_INIT,   /* rules: an initial (SH_INIT) */
	CS_ALPHA,  /* rules, dictionary pass of a note that is not mixed: letters, not an initial */
	CS_DICT,   /* rules, dictionary pass of a mixed note: letters, not an initial, not lower case
		    * unless it may be a month (month_start, 3-9 letters) */
	CS__COUNT  /* eight: a token's classes are one byte (tokenize) */
};
_Static_assert(KW_TRIG == 1u << 4, "KW_TRIG is bit 4 (tokenize)");
_Static_assert(CS__COUNT == 8 && (1u << CS_ATF) == KW_ATTOFROM && (1u << CS_TRIG) == KW_TRIG, "token class bits");
/* the classes a token's shape gives (SH_LOWER ... SH_OTHER) */
static const uint8_t shape_cls[7] = {
	/* SH_LOWER */ 1u << CS_ALPHA,
	/* SH_CAP */ 1u << CS_ALPHA | 1u << CS_DICT,
	/* SH_UPPER */ 1u << CS_ALPHA | 1u << CS_DICT | 1u << CS_NUMR,
	/* SH_INIT */ 1u << CS_INIT | 1u << CS_NUMR,
	/* SH_NUM, SH_MIX, SH_OTHER */ 1u << CS_NUMR, 1u << CS_NUMR, 1u << CS_NUMR,
};

struct tok {
	uint32_t s, e;
	uint64_t h;    /* FNV-1a of the lower-cased word, without a trailing 's */
	uint32_t f;    /* DF_* flags once DF_LOOKED */
	uint8_t shape; /* enum shape */
	uint8_t bits;  /* TB_* */
	uint8_t mtype; /* 0, or 1 + enum salus_phi assigned by a rule */
	uint8_t c0;    /* first byte, lower case (ASCII) */
	uint16_t mrule;
	uint8_t c1;    /* second byte, lower case, or 0 */
	uint8_t kw;    /* KW_*: which keyword rules may start here (by first letter and length) */
	float mconf;
};

struct cspan {
	uint32_t s, e;
	float conf;
	uint16_t rule;
	uint8_t type;
};

#define NAMESET 1024 /* slots of the per-note name set (at most half used) */
#define NAME_PRE(c0, c1) ((((unsigned)(c0) * 31u) + (unsigned)(c1)) & 255u)
#define DCACHE 16384  /* slots of the dictionary look-up cache (a power of two) */

enum notecase { CASE_MIXED, CASE_UPPER, CASE_LOWER };

struct salus_deid {
	hs_database_t *db;              /* all patterns, end offsets only */
	hs_database_t *som[PAT__COUNT]; /* one pattern each, with start of match */
	uint32_t width[PAT__COUNT];     /* window to re-scan before a match end */
	hs_scratch_t *scratch;
	float threshold;
	/* current text (input or normalised copy) */
	const char *b;
	size_t n;
	enum notecase nc;
	int oom;
	/* work buffers, reused across scans */
	char *norm;
	size_t norm_cap;
	uint32_t *map; /* norm byte -> input byte of its code point */
	size_t map_cap;
	struct cand *cand;
	size_t ncand, cand_cap;
	struct tok *tok;
	uint64_t *mset; /* bit i: token i may be marked (set by mark(); a superset of the marked tokens) */
	size_t mset_cap;
	uint64_t *tset; /* tokenize: bit sets of the tokens each per-token pass starts on (CS_*), word w of
			 * class c at tset[w * CS__COUNT + c] */
	size_t tset_cap;
	size_t ntok, tok_cap;
	uint64_t *mask; /* tokenize: M__COUNT arrays of mask_words class bit masks */
	size_t mask_cap, mask_words;
	struct cspan *cs;
	size_t ncs, cs_cap;
	struct salus_span *out;
	size_t nout, out_cap;
	uint64_t names[NAMESET]; /* open-addressing set of hashes of words found as names (0 = empty) */
	size_t nnames;
	uint64_t names_pre[4]; /* bits of NAME_PRE(c0, c1) of the words in names: most tokens skip the hash */
	/* direct-mapped cache of dictionary look-ups: the table is 4 MB, so each
	 * look-up is a cache miss, and a few hundred words make most of a note */
	struct {
		uint32_t fp; /* 32-bit check of the word hash (never 0); 0 = empty */
		uint32_t f;
	} dcache[DCACHE]; /* 8 bytes a slot: 128 KB, in L2 (9.5 k look-ups of the table instead of 15.6 k with 4 K slots on one pass of the PhysioNet text) */
};

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *q = salus_realloc(*p, nc * elem);
	if (!q)
		return SALUS_ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

void salus_deid_set_threshold(struct salus_deid *d, float t)
{
	d->threshold = t < 0 ? 0 : t > 1 ? 1 : t;
}

static void *hs_alloc(size_t n)
{
	return salus_malloc(n);
}

#define SOM_WINDOW 512 /* bytes re-scanned before the end of an unbounded match */

static unsigned pat_flags(unsigned i, bool som)
{
	return (som ? HS_FLAG_SOM_LEFTMOST : 0) | (strchr(pats[i].flags, 'c') ? HS_FLAG_CASELESS : 0);
}

/* Databases built on another CPU, or a stale table: compile the same patterns now. */
static int compile_now(struct salus_deid *d)
{
	const char *exprs[PAT__COUNT];
	unsigned flags[PAT__COUNT], ids[PAT__COUNT];
	hs_compile_error_t *err = NULL;
	for (unsigned i = 0; i < PAT__COUNT; i++) {
		exprs[i] = pats[i].expr;
		flags[i] = pat_flags(i, false);
		ids[i] = i;
		hs_expr_info_t *info = NULL;
		if (hs_expression_info(exprs[i], flags[i], &info, &err) != HS_SUCCESS) {
			hs_free_compile_error(err);
			return SALUS_EINTERNAL;
		}
		d->width[i] = info->max_width;
		salus_free(info);
		unsigned f = pat_flags(i, true);
		if (hs_compile_multi(&exprs[i], &f, &ids[i], 1, HS_MODE_BLOCK, NULL, &d->som[i], &err) != HS_SUCCESS) {
			hs_free_compile_error(err);
			return SALUS_EINTERNAL;
		}
	}
	unsigned k = 0; /* the block database leaves out the patterns found on tokens ("t") */
	for (unsigned i = 0; i < PAT__COUNT; i++)
		if (!strchr(pats[i].flags, 't')) {
			exprs[k] = pats[i].expr;
			flags[k] = pat_flags(i, false);
			ids[k++] = i;
		}
	if (hs_compile_multi(exprs, flags, ids, k, HS_MODE_BLOCK, NULL, &d->db, &err) != HS_SUCCESS) {
		hs_free_compile_error(err);
		return SALUS_EINTERNAL;
	}
	return 0;
}

static int load_prebuilt(struct salus_deid *d)
{
	if (salus_deid_hsdb_patterns_hash != deid_patterns_hash())
		return SALUS_EINTERNAL;
	const char *base = (const char *)salus_deid_hsdb;
	const size_t *off = salus_deid_hsdb_off;
	if (hs_deserialize_database(base + off[0], off[1] - off[0], &d->db) != HS_SUCCESS)
		return SALUS_EINTERNAL;
	for (unsigned i = 0; i < PAT__COUNT; i++) {
		if (hs_deserialize_database(base + off[i + 1], off[i + 2] - off[i + 1], &d->som[i]) != HS_SUCCESS)
			return SALUS_EINTERNAL;
		d->width[i] = salus_deid_hs_width[i];
	}
	return 0;
}

static void free_dbs(struct salus_deid *d)
{
	hs_free_database(d->db);
	d->db = NULL;
	for (unsigned i = 0; i < PAT__COUNT; i++) {
		hs_free_database(d->som[i]);
		d->som[i] = NULL;
	}
}

int salus_deid_new(struct salus_deid **out)
{
	struct salus_deid *d = salus_calloc(1, sizeof *d);
	if (!d)
		return SALUS_ENOMEM;
	d->threshold = 0.5f;
	if (!cclass['a'])
		init_tables(); /* idempotent: concurrent first calls write the same bytes */
	hs_set_allocator(hs_alloc, salus_free);
	int rc = load_prebuilt(d);
	if (rc) {
		free_dbs(d);
		rc = compile_now(d);
	}
	for (unsigned i = 0; !rc && i <= PAT__COUNT; i++) {
		hs_error_t hr = hs_alloc_scratch(i ? d->som[i - 1] : d->db, &d->scratch);
		if (hr != HS_SUCCESS)
			rc = hr == HS_NOMEM ? SALUS_ENOMEM : SALUS_EINTERNAL;
	}
	if (rc) {
		hs_free_scratch(d->scratch);
		free_dbs(d);
		salus_free(d);
		return rc;
	}
	*out = d;
	return 0;
}

void salus_deid_free(struct salus_deid *d)
{
	if (!d)
		return;
	hs_free_scratch(d->scratch);
	free_dbs(d);
	salus_free(d->norm);
	salus_free(d->map);
	salus_free(d->cand);
	salus_free(d->tok);
	salus_free(d->mset);
	salus_free(d->tset);
	salus_free(d->mask);
	salus_free(d->cs);
	salus_free(d->out);
	salus_free(d);
}

/* ---- UTF-8 --------------------------------------------------------------- */

bool salus_deid_utf8_valid(const char *s, size_t n, const char **why)
{
	size_t i = 0;
	while (i < n) {
		unsigned char c = (unsigned char)s[i];
		if (c == 0) {
			if (why)
				*why = "text contains a NUL byte";
			return false;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		utf8proc_int32_t cp;
		size_t left = n - i;
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i,
						      left > 8 ? 8 : (utf8proc_ssize_t)left, &cp);
		if (k <= 0) {
			if (why)
				*why = "text is not valid UTF-8";
			return false;
		}
		i += (size_t)k;
	}
	return true;
}

size_t salus_deid_utf8_chars(const char *s, size_t n)
{
	/* every byte that is not a continuation byte (10xxxxxx) starts a
	 * character: count the continuation bytes eight at a time */
	const uint64_t hi = 0x8080808080808080ull;
	size_t cont = 0, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x;
		memcpy(&x, s + i, 8);
		if (x & hi)
			cont += (size_t)__builtin_popcountll(x & hi & ~(x << 1));
	}
	for (; i < n; i++)
		cont += ((unsigned char)s[i] & 0xC0) == 0x80;
	return n - cont;
}

/* Normalise valid UTF-8 into d->norm with d->map.  ASCII bytes are copied;
 * other code points go through compatibility decomposition with marks
 * stripped and punctuation lumped (é → e, – → -, NBSP → space). */
static int normalise(struct salus_deid *d, const char *s, size_t n)
{
	size_t o = 0;
	if (grow((void **)&d->norm, &d->norm_cap, n + 1, 1) || grow((void **)&d->map, &d->map_cap, n + 1, 4))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c < 0x80) {
			if (grow((void **)&d->norm, &d->norm_cap, o + 2, 1) ||
			    grow((void **)&d->map, &d->map_cap, o + 2, 4))
				return SALUS_ENOMEM;
			d->norm[o] = (char)c;
			d->map[o++] = (uint32_t)i++;
			continue;
		}
		utf8proc_int32_t cp, dec[8];
		utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
		if (k <= 0)
			return SALUS_EINVALID;
		int lbc = 0;
		utf8proc_ssize_t m = utf8proc_decompose_char(
			cp, dec, 8, UTF8PROC_COMPAT | UTF8PROC_DECOMPOSE | UTF8PROC_STRIPMARK | UTF8PROC_LUMP, &lbc);
		if (m < 0 || m > 8) {
			dec[0] = cp;
			m = 1;
		}
		for (utf8proc_ssize_t j = 0; j < m; j++) {
			utf8proc_uint8_t enc[4];
			utf8proc_ssize_t el = utf8proc_encode_char(dec[j], enc);
			if (grow((void **)&d->norm, &d->norm_cap, o + (size_t)el + 1, 1) ||
			    grow((void **)&d->map, &d->map_cap, o + (size_t)el + 1, 4))
				return SALUS_ENOMEM;
			for (utf8proc_ssize_t q = 0; q < el; q++) {
				d->norm[o] = (char)enc[q];
				d->map[o++] = (uint32_t)i;
			}
		}
		i += (size_t)k;
	}
	d->norm[o] = 0;
	d->map[o] = (uint32_t)n;
	d->n = o;
	d->b = d->norm;
	return 0;
}

/* ---- character helpers --------------------------------------------------- */

static inline bool is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}
static inline bool is_upper(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}
static inline bool is_lower(unsigned char c)
{
	return c >= 'a' && c <= 'z';
}
static inline bool is_alpha(unsigned char c)
{
	return is_upper(c) || is_lower(c) || c >= 0x80;
}
static inline bool is_alnum(unsigned char c)
{
	return is_alpha(c) || is_digit(c);
}
static inline unsigned char lower(unsigned char c)
{
	return is_upper(c) ? (unsigned char)(c + 32) : c;
}

/* ---- Hyperscan pass ------------------------------------------------------ */

static int on_match(unsigned id, unsigned long long from, unsigned long long to, unsigned fl, void *ctx)
{
	(void)fl;
	struct salus_deid *d = ctx;
	if (pats[id].act == ACT_LABEL_ID && d->ncand && d->cand[d->ncand - 1].pat == id) {
		/* "Policy No.: " ends a match at each separator: keep the last end */
		struct cand *p = &d->cand[d->ncand - 1];
		size_t k = p->e;
		while (k < to && (d->b[k] == ' ' || d->b[k] == '\t' || d->b[k] == '.' || d->b[k] == ':' ||
				  d->b[k] == '#' || d->b[k] == '='))
			k++;
		if (k == to) {
			p->e = (uint32_t)to;
			return 0;
		}
	}
	if (d->ncand == d->cand_cap && grow((void **)&d->cand, &d->cand_cap, d->ncand + 1, sizeof *d->cand)) {
		d->oom = 1;
		return 1;
	}
	d->cand[d->ncand++] = (struct cand){(uint32_t)from, (uint32_t)to, (uint16_t)id};
	return 0;
}

struct som_ctx {
	unsigned long long want; /* the match end, relative to the window */
	unsigned long long from; /* leftmost start found, or ULLONG_MAX */
};

static int on_som(unsigned id, unsigned long long from, unsigned long long to, unsigned fl, void *ctx)
{
	(void)id;
	(void)fl;
	struct som_ctx *c = ctx;
	if (to == c->want && from < c->from)
		c->from = from;
	return 0;
}

/* Find the start of each candidate: re-scan a window before its end with the
 * pattern's start-of-match database.  Drops candidates whose start is not found. */
static int find_starts(struct salus_deid *d)
{
	size_t w = 0;
	for (size_t i = 0; i < d->ncand; i++) {
		struct cand c = d->cand[i];
		size_t q = c.e;
		switch (c.pat) { /* the most frequent matches, whose start is plain (no re-scan) */
		case PAT_YEAR_APOS:
		case PAT_YEAR_APOS2: /* '95, 95' */
			c.s = c.e - 3;
			d->cand[w++] = c;
			continue;
		case PAT_DATE_MD: /* \bMM/DD\b: the run of digits, '/', digits */
			while (q > 0 && is_digit((unsigned char)d->b[q - 1]))
				q--;
			if (q == 0 || d->b[q - 1] != '/')
				break;
			q--;
			while (q > 0 && is_digit((unsigned char)d->b[q - 1]))
				q--;
			c.s = (uint32_t)q;
			d->cand[w++] = c;
			continue;
		case PAT_HASH_ID: /* '#', an optional blank, the run */
			while (q > 0 && (is_upper((unsigned char)d->b[q - 1]) || is_lower((unsigned char)d->b[q - 1]) ||
					 is_digit((unsigned char)d->b[q - 1]) || d->b[q - 1] == '-'))
				q--;
			if (q > 0 && (d->b[q - 1] == ' ' || d->b[q - 1] == '\t') && q > 1 && d->b[q - 2] == '#')
				q--;
			if (q == 0 || d->b[q - 1] != '#')
				break; /* not the plain shape: re-scan */
			c.s = (uint32_t)(q - 1);
			d->cand[w++] = c;
			continue;
		default:
			/* a label before an identifier ("MRN:", "ID:", ~900 a megabyte of
			 * nursing notes, mostly the infectious-disease heading): only its end
			 * is used, so the label's last word stands for its start */
			if (pats[c.pat].act == ACT_LABEL_ID) {
				while (q > 0 && (d->b[q - 1] == ':' || d->b[q - 1] == '#' || d->b[q - 1] == '=' ||
						 d->b[q - 1] == ' ' || d->b[q - 1] == '\t' || d->b[q - 1] == '.'))
					q--;
				while (q > 0 && (is_alnum((unsigned char)d->b[q - 1]) || d->b[q - 1] == '#'))
					q--;
				c.s = (uint32_t)q;
				d->cand[w++] = c;
				continue;
			}
			break;
		}
		uint32_t width = d->width[c.pat];
		size_t win = width > SOM_WINDOW ? SOM_WINDOW : width;
		size_t ws = c.e > win ? c.e - win : 0;
		struct som_ctx sc = {c.e - ws, ULLONG_MAX};
		hs_error_t hr = hs_scan(d->som[c.pat], d->b + ws, (unsigned)(c.e - ws), 0, d->scratch, on_som, &sc);
		if (hr != HS_SUCCESS)
			return SALUS_EINTERNAL;
		if (sc.from == ULLONG_MAX)
			continue;
		c.s = (uint32_t)(ws + sc.from);
		d->cand[w++] = c;
	}
	d->ncand = w;
	return 0;
}

/* ---- tokens -------------------------------------------------------------- */

#define CC_UP 1u
#define CC_LO 2u
#define CC_DIG 4u
#define CC_HI 8u
#define CC_WORD (CC_UP | CC_LO | CC_DIG | CC_HI)
/* May a word starting with these two (lower-case) letters be a month name or abbreviation? */
static inline bool month_start(unsigned char c0, unsigned char c1)
{
	switch (c0) {
	case 'j': return c1 == 'a' || c1 == 'u';
	case 'f': return c1 == 'e';
	case 'm': return c1 == 'a';
	case 'a': return c1 == 'p' || c1 == 'u';
	case 's': return c1 == 'e';
	case 'o': return c1 == 'c';
	case 'n': return c1 == 'o';
	case 'd': return c1 == 'e';
	default: return false;
	}
}

static void init_tables(void)
{
	for (unsigned c = 0; c < 256; c++) {
		cclass[c] = (uint8_t)(is_upper((unsigned char)c)   ? CC_UP
				      : is_lower((unsigned char)c) ? CC_LO
				      : is_digit((unsigned char)c) ? CC_DIG
				      : c >= 0x80		   ? CC_HI
								   : 0);
		lowtab[c] = lower((unsigned char)c);
	}
	for (unsigned c = 0; c < 256; c++)
		for (unsigned n = 1; n < 8; n++) {
			unsigned char l = lowtab[c];
			uint8_t k = 0;
			if (n >= 2 && n <= 4 && (l == 'a' || l == 't' || l == 'f'))
				k |= KW_ATTOFROM;
			if (n >= 2 && n <= 4 && (l == 't' || l == 'f' || l == 'a' || l == 'o' || l == 'p'))
				k |= KW_PREP;
			if (n == 5 && l == 'a')
				k |= KW_AWARE;
			if (l == 'u' && (n == 1 || n == 4 || n == 7))
				k |= KW_UNIV;
			if (n == 7 && (l == 'g' || l == 'r' || l == 'm'))
				k |= KW_GENINST;
			kwtab[c][n] = k;
		}
	for (unsigned i = 0; i < sizeof weak_first / sizeof weak_first[0]; i++)
		weak_tab[WEAK_KEY(weak_first[i][0], weak_first[i][1])] = (uint8_t)(i + 1);
	for (unsigned c0 = 0; c0 < 256; c0++)
		for (unsigned c1 = 0; c1 < 256; c1++) {
			unsigned k = PAIR_KEY(c0, c1);
			if (weak_tab[WEAK_KEY(c0, c1)] && !strncmp(weak_first[weak_tab[WEAK_KEY(c0, c1)] - 1],
								  (const char[]){(char)c0, (char)c1}, 2))
				pair_cls[k] |= 1u << CS_WEAK;
			if (month_start((unsigned char)c0, (unsigned char)c1))
				pair_cls[k] |= 1u << CS_DICT;
		}
	unsigned ns = 0;
	for (const char *a = &RX_STREETSFX[1]; *a && *a != ')' && ns < SFX_MAX;) {
		size_t l = strcspn(a, "|)");
		sfx_word[ns] = a;
		sfx_len[ns] = (uint8_t)l;
		unsigned key = SFX_KEY((unsigned char)a[0], (unsigned char)a[1], (unsigned char)a[l - 1], l);
		while (sfx_slot[key])
			key = (key + 1) & 255u;
		sfx_slot[key] = (uint8_t)++ns;
		a += l + (a[l] == '|');
	}
}

/* Character classes of the text as bit masks, 64 bytes per word (bit i of
 * word k is byte 64k+i): the tokenizer then finds word starts and ends with
 * count-trailing-zeros and a word's letter cases with popcounts, instead of
 * a branch per byte.  Built 16 bytes at a time with SSE2 where available. */
enum { M_WORD, M_UP, M_LO, M_DG, M_HI, M_AP, M_NL, M_ST, M__COUNT };

static void class_block(const unsigned char *p, uint64_t m[M__COUNT])
{
#if defined(__SSE2__)
	for (int q = 0; q < 4; q++) {
		__m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * q));
#define RANGE(lo_, hi_) \
	_mm_and_si128(_mm_cmpgt_epi8(c, _mm_set1_epi8((char)((lo_) - 1))), _mm_cmplt_epi8(c, _mm_set1_epi8((char)((hi_) + 1))))
#define EQ(ch) _mm_cmpeq_epi8(c, _mm_set1_epi8(ch))
		unsigned sh = 16u * (unsigned)q;
		m[M_UP] |= (uint64_t)(unsigned)_mm_movemask_epi8(RANGE('A', 'Z')) << sh;
		m[M_LO] |= (uint64_t)(unsigned)_mm_movemask_epi8(RANGE('a', 'z')) << sh;
		m[M_DG] |= (uint64_t)(unsigned)_mm_movemask_epi8(RANGE('0', '9')) << sh;
		m[M_HI] |= (uint64_t)(unsigned)_mm_movemask_epi8(c) << sh;
		m[M_AP] |= (uint64_t)(unsigned)_mm_movemask_epi8(EQ('\'')) << sh;
		m[M_NL] |= (uint64_t)(unsigned)_mm_movemask_epi8(EQ('\n')) << sh;
		__m128i st = _mm_or_si128(_mm_or_si128(EQ('.'), EQ('!')), _mm_or_si128(EQ('?'), EQ(':')));
		st = _mm_or_si128(st, _mm_or_si128(EQ(';'), EQ('*')));
		m[M_ST] |= (uint64_t)(unsigned)_mm_movemask_epi8(st) << sh;
#undef RANGE
#undef EQ
	}
#else
	for (unsigned i = 0; i < 64; i++) {
		unsigned char c = p[i];
		uint64_t bit = 1ull << i;
		uint8_t k = cclass[c];
		if (k & CC_UP)
			m[M_UP] |= bit;
		if (k & CC_LO)
			m[M_LO] |= bit;
		if (k & CC_DIG)
			m[M_DG] |= bit;
		if (k & CC_HI)
			m[M_HI] |= bit;
		if (c == '\'')
			m[M_AP] |= bit;
		if (c == '\n')
			m[M_NL] |= bit;
		if (c == '.' || c == '!' || c == '?' || c == ':' || c == ';' || c == '*')
			m[M_ST] |= bit;
	}
#endif
}

static int build_masks(struct salus_deid *d)
{
	size_t nw = d->n / 64 + 2;
	if (grow((void **)&d->mask, &d->mask_cap, nw * M__COUNT, sizeof *d->mask))
		return SALUS_ENOMEM;
	uint64_t *m = d->mask;
	const unsigned char *b = (const unsigned char *)d->b;
	size_t n = d->n;
	for (size_t k = 0; k < nw; k++) {
		uint64_t blk[M__COUNT] = {0};
		size_t at = k * 64;
		if (at + 64 <= n) {
			class_block(b + at, blk);
		} else if (at < n) {
			unsigned char tail[64] = {0};
			memcpy(tail, b + at, n - at);
			class_block(tail, blk);
			blk[M_NL] &= n - at == 64 ? ~0ull : (1ull << (n - at)) - 1; /* padding is not text */
			blk[M_ST] &= n - at == 64 ? ~0ull : (1ull << (n - at)) - 1;
			blk[M_AP] &= n - at == 64 ? ~0ull : (1ull << (n - at)) - 1;
		}
		blk[M_WORD] = blk[M_UP] | blk[M_LO] | blk[M_DG] | blk[M_HI];
		memcpy(m + k * M__COUNT, blk, sizeof blk);
	}
	/* words: letters, digits, bytes >= 0x80, and an apostrophe between a word
	 * character and a letter (O'Brien, Bell's) */
	uint64_t carry = 0;
	for (size_t k = 0; k < nw; k++) {
		uint64_t *x = m + k * M__COUNT;
		uint64_t let = x[M_UP] | x[M_LO] | x[M_HI];
		uint64_t next = k + 1 < nw ? (x[M__COUNT + M_UP] | x[M__COUNT + M_LO] | x[M__COUNT + M_HI]) & 1 : 0;
		uint64_t w0 = x[M_WORD];
		if (x[M_AP])
			x[M_WORD] = w0 | (x[M_AP] & ((w0 << 1) | carry) & ((let >> 1) | (next << 63)));
		carry = w0 >> 63;
	}
	d->mask_words = nw;
	return 0;
}

static inline unsigned pop64(uint64_t x)
{
	/* branch-free (a loop per set bit mispredicts on all-caps notes) */
	x = x - ((x >> 1) & 0x5555555555555555ull);
	x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
	return (unsigned)((x * 0x0101010101010101ull) >> 56);
}

/* The class bits of [a, b) OR-ed per class into r (uppercase counted in *nu). */
static inline void mask_range(const uint64_t *m, size_t a, size_t b, uint64_t r[M__COUNT], unsigned *nu)
{
	while (a < b) {
		size_t k = a / 64, lo = a % 64, hi = b - k * 64 > 64 ? 64 : b - k * 64;
		uint64_t sel = (hi == 64 ? ~0ull : (1ull << hi) - 1) & ~((1ull << lo) - 1);
		const uint64_t *x = m + k * M__COUNT;
		for (int q = 0; q < M__COUNT; q++)
			r[q] |= x[q] & sel;
		if (nu)
			*nu += pop64(x[M_UP] & sel);
		a = k * 64 + hi;
	}
}

/* First position >= a (< n) whose word bit equals `set`, or n. */
static inline size_t mask_next(const uint64_t *m, size_t a, size_t n, bool set)
{
	while (a < n) {
		size_t k = a / 64;
		uint64_t x = set ? m[k * M__COUNT + M_WORD] : ~m[k * M__COUNT + M_WORD];
		x &= ~0ull << (a % 64);
		if (x) {
			size_t p = k * 64 + (size_t)__builtin_ctzll(x);
			return p < n ? p : n;
		}
		a = (k + 1) * 64;
	}
	return n;
}

/* Store word w of the token class sets from the class bytes of its 64 tokens
 * (bit c of cb[q]: token 64w+q is in class c), and clear them. */
static int tset_store(struct salus_deid *d, size_t w, uint8_t cb[64])
{
	if (grow((void **)&d->tset, &d->tset_cap, (w + 1) * CS__COUNT, sizeof *d->tset))
		return SALUS_ENOMEM;
	uint64_t *set = d->tset + w * CS__COUNT;
#if defined(__SSE2__)
	for (int c = 0; c < CS__COUNT; c++)
		set[c] = 0;
	for (int k = 0; k < 4; k++) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(cb + 16 * k));
		/* bit c of each byte to its top bit (bits shifted in from the byte below stay lower) */
		set[7] |= (uint64_t)(unsigned)_mm_movemask_epi8(v) << (16 * k);
		set[6] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 1)) << (16 * k);
		set[5] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 2)) << (16 * k);
		set[4] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 3)) << (16 * k);
		set[3] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 4)) << (16 * k);
		set[2] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 5)) << (16 * k);
		set[1] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 6)) << (16 * k);
		set[0] |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_slli_epi64(v, 7)) << (16 * k);
	}
#else
	for (int c = 0; c < CS__COUNT; c++) {
		uint64_t x = 0;
		for (unsigned q = 0; q < 64; q++)
			x |= (uint64_t)((cb[q] >> c) & 1u) << q;
		set[c] = x;
	}
#endif
	memset(cb, 0, 64);
	return 0;
}

/* The first token at or after i in class c (CS_*), or nt. */
static inline size_t next_tok(const struct salus_deid *d, int c, size_t i, size_t nt)
{
	const uint64_t *set = d->tset + c;
	size_t w = i / 64, nw = (nt + 63) / 64; /* words 0 .. ntok / 64 are stored, and i <= nt */
	uint64_t x = set[w * CS__COUNT] & (~0ull << (i % 64));
	while (!x) {
		if (++w >= nw)
			return nt;
		x = set[w * CS__COUNT];
	}
	size_t p = w * 64 + (size_t)__builtin_ctzll(x);
	return p < nt ? p : nt;
}


static int tokenize(struct salus_deid *d)
{
	const unsigned char *b = (const unsigned char *)d->b;
	size_t n = d->n;
	size_t up = 0, lo = 0;
	int rc = build_masks(d);
	if (rc)
		return rc;
	const uint64_t *m = d->mask;
	d->ntok = 0;
	size_t pe = 0; /* end of the previous token */
	/* capitals of the words without digits in block upk, counted once a block
	 * (a popcount per word was a tenth of the tokenizer) */
	uint64_t upacc = 0;
	size_t upk = 0, letters = 0;
	uint8_t cbuf[64] = {0}; /* the classes of the tokens of the current word of the sets */
	for (;;) {
		size_t s = mask_next(m, pe, n, true);
		if (s >= n)
			break;
		size_t e = mask_next(m, s, n, false);
		if (d->ntok == d->tok_cap && grow((void **)&d->tok, &d->tok_cap, d->ntok + 1, sizeof *d->tok))
			return SALUS_ENOMEM;
		bool nl, sent, nl_, nd, nx;
		unsigned nu = 0;
		size_t k = s / 64;
		if (pe / 64 == k && (e - 1) / 64 == k) { /* gap and word in one 64-byte block */
			const uint64_t *x = m + k * M__COUNT;
			uint64_t gs = (~0ull << (pe % 64)) & ~(~0ull << (s % 64));
			uint64_t ws = (~0ull << (s % 64)) & (~0ull >> (63 - (e - 1) % 64)); /* no branch on e % 64 */
			nl = pe == 0 || (x[M_NL] & gs);
			sent = nl || (x[M_ST] & gs);
			uint64_t y = x[M_UP] & ws, y2 = y & (y - 1);
			nu = !y ? 0 : !y2 ? 1 : !(y2 & (y2 - 1)) ? 2 : 3; /* 3: three or more */
			nl_ = x[M_LO] & ws;
			nd = x[M_DG] & ws;
			nx = x[M_HI] & ws;
			if (!nd) {
				if (k != upk) {
					up += pop64(upacc);
					upacc = 0;
					upk = k;
				}
				upacc |= y;
				letters += e - s;
			}
		} else {
			uint64_t g[M__COUNT] = {0}, w[M__COUNT] = {0};
			mask_range(m, pe, s, g, NULL);
			mask_range(m, s, e, w, &nu);
			nl = pe == 0 || g[M_NL];
			sent = nl || g[M_ST];
			nl_ = w[M_LO];
			nd = w[M_DG];
			nx = w[M_HI];
			if (!nd) {
				up += nu;
				letters += e - s;
			}
		}
		struct tok *t = &d->tok[d->ntok++];
		t->s = (uint32_t)s;
		t->e = (uint32_t)e;
		t->h = 0;
		t->f = 0;
		t->mtype = 0;
		t->mrule = 0;
		t->mconf = 0;
		t->c0 = lowtab[b[s]];
		t->c1 = e - s > 1 ? lowtab[b[s + 1]] : 0;
		t->kw = kwtab[b[s]][e - s < 7 ? e - s : 7];
		{
			size_t wn = e - s;
			if (wn > 3 && b[e - 2] == '\'' && lowtab[b[e - 1]] == 's')
				wn -= 2;
			unsigned key = deid_trigger_key(t->c0, t->c1, lowtab[b[s + wn - 1]], wn);
			t->kw |= (uint8_t)(((salus_deid_trigger_filter[key / 64] >> (key % 64)) & 1u) << 4); /* KW_TRIG */
		}
		t->bits = (uint8_t)((sent ? TB_SENT : 0) | (nl ? TB_NL : 0));
		if (nd && (nu || nl_ || nx))
			t->shape = SH_MIX;
		else if (nd)
			t->shape = SH_NUM;
		else if (nu == 1 && !nl_ && !nx && e - s == 1)
			t->shape = SH_INIT;
		else if (nu && !nl_ && !nx)
			t->shape = SH_UPPER;
		else if (is_upper(b[s]) && (nl_ || nx) && (nu == 1 || (nu == 2 && e - s > 3 && (is_lower(b[s + 1]) || b[s + 1] == '\''))))
			t->shape = SH_CAP;
		else if (!nu && (nl_ || nx))
			t->shape = SH_LOWER;
		else
			t->shape = SH_OTHER;
		size_t ti = d->ntok - 1, len = e - s;
		unsigned q = (unsigned)(ti % 64);
		/* the token's classes (CS_*) as one byte; tset_store turns 64 of them into the sets */
		unsigned cls = shape_cls[t->shape] | (t->kw & (KW_ATTOFROM | KW_TRIG)) |
			       pair_cls[PAIR_KEY(t->c0, t->c1)] | (unsigned)(t->shape == SH_NUM && len - 2 <= 1) << CS_AGE |
			       (unsigned)(e < n && b[e] == ':') << CS_NUMR |
			       (unsigned)(t->shape == SH_LOWER && len == 1) << CS_INIT;
		cbuf[q] = (uint8_t)cls;
		if (q == 63 && (rc = tset_store(d, ti / 64, cbuf)))
			return rc;
		pe = e;
	}
	if ((rc = tset_store(d, d->ntok / 64, cbuf)))
		return rc;
	up += pop64(upacc);
	lo = letters - up;
	size_t mw = d->ntok / 64 + 1;
	if (grow((void **)&d->mset, &d->mset_cap, mw, sizeof *d->mset))
		return SALUS_ENOMEM;
	memset(d->mset, 0, mw * sizeof *d->mset);
	if (up + lo < 24)
		d->nc = CASE_MIXED;
	else if (up * 10 > (up + lo) * 7)
		d->nc = CASE_UPPER;
	else if (up * 100 < (up + lo) * 2)
		d->nc = CASE_LOWER;
	else
		d->nc = CASE_MIXED;
	return 0;
}

static uint64_t deid_hash_lower(const char *p, size_t n)
{
	uint64_t h = DEID_HASH_INIT;
	for (size_t i = 0; i < n; i++)
		h = deid_hash_step(h, lower((unsigned char)p[i]));
	return h;
}

/* The byte at i, or 0 past the end (texts are not NUL-terminated). */
static inline char byte_at(const struct salus_deid *d, size_t i)
{
	return i < d->n ? d->b[i] : 0;
}

/* The dictionary key of token i: lower case, without a possessive 's (cached). */
static inline uint64_t tok_hash(struct salus_deid *d, size_t i)
{
	struct tok *t = &d->tok[i];
	if (!(t->bits & TB_HASHED)) {
		size_t e = t->e;
		if (e - t->s > 3 && d->b[e - 2] == '\'' && lower((unsigned char)d->b[e - 1]) == 's')
			e -= 2;
		t->h = deid_hash_lower(d->b + t->s, e - t->s);
		t->bits |= TB_HASHED;
	}
	return t->h;
}

/* deid_dict_lookup through the detector's cache. */
static inline uint32_t dict_lookup(struct salus_deid *d, uint64_t h)
{
	size_t k = (size_t)(h ^ (h >> 29)) & (DCACHE - 1);
	uint32_t fp = (uint32_t)(h >> 32) | 1u; /* with the 12 index bits: as selective as the table's fingerprint */
	if (d->dcache[k].fp == fp)
		return d->dcache[k].f;
	uint32_t f = deid_dict_lookup(h);
	d->dcache[k].fp = fp;
	d->dcache[k].f = f;
	return f;
}

static inline uint32_t tf(struct salus_deid *d, size_t i)
{
	struct tok *t = &d->tok[i];
	if (!(t->f & DF_LOOKED)) {
		uint32_t f = dict_lookup(d, tok_hash(d, i));
		size_t n = t->e - t->s;
		if (!f && n > 3 && lower((unsigned char)d->b[t->e - 1]) == 's') { /* plural of a known word */
			uint32_t g = dict_lookup(d, deid_hash_lower(d->b + t->s, n - 1));
			f = g & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR);
		}
		t->f = f | DF_LOOKED;
	}
	return t->f;
}

/* Is token i a 4-6 letter start of a medical term ("Vanco", "Dobuta")? */
static bool med_prefix(struct salus_deid *d, size_t i)
{
	size_t n = d->tok[i].e - d->tok[i].s;
	return n >= 4 && n <= 8 && deid_medpfx_lookup(tok_hash(d, i)) != 0;
}

static inline bool tok_alpha(const struct tok *t)
{
	return t->shape == SH_LOWER || t->shape == SH_CAP || t->shape == SH_UPPER || t->shape == SH_INIT;
}

/* Index of the first token starting at or after byte `pos`. */
static size_t tok_at(const struct salus_deid *d, size_t pos)
{
	size_t lo = 0, hi = d->ntok;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (d->tok[mid].s < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Is the token the word w (lower-case ASCII)? */
static inline bool tok_is(const struct salus_deid *d, size_t i, const char *w)
{
	const struct tok *t = &d->tok[i];
	/* first letter first (kept in the token): most tokens differ there, and no strlen is needed */
	if (t->c0 != (unsigned char)w[0])
		return false;
	const unsigned char *p = (const unsigned char *)d->b + t->s;
	size_t n = t->e - t->s;
	size_t k = 1;
	for (; k < n; k++)
		if (lowtab[p[k]] != (unsigned char)w[k])
			return false; /* also stops at w's NUL */
	return w[k] == 0;
}

static bool tok_in(const struct salus_deid *d, size_t i, const char *const *ws)
{
	for (; *ws; ws++)
		if (tok_is(d, i, *ws))
			return true;
	return false;
}

enum gap { GAP_NONE, GAP_SPACE, GAP_HYPHEN, GAP_DOT, GAP_COMMA, GAP_NL, GAP_OTHER };

/* What separates token i from token i+1. */
static enum gap gap_after(const struct salus_deid *d, size_t i)
{
	if (i + 1 >= d->ntok)
		return GAP_OTHER;
	size_t a = d->tok[i].e, z = d->tok[i + 1].s;
	if (a == z)
		return GAP_NONE;
	size_t sp = 0, other = 0;
	char p = 0;
	for (size_t k = a; k < z; k++) {
		char c = d->b[k];
		if (c == ' ' || c == '\t')
			sp++;
		else if (c == '\n' || c == '\r')
			return GAP_NL;
		else {
			if (p)
				other++;
			p = c;
		}
	}
	if (other || sp > 2)
		return GAP_OTHER;
	if (!p)
		return GAP_SPACE;
	if (p == '-')
		return sp ? GAP_OTHER : GAP_HYPHEN;
	if (p == '.')
		return GAP_DOT;
	if (p == ',')
		return GAP_COMMA;
	return GAP_OTHER;
}

/* ---- spans --------------------------------------------------------------- */

static int push(struct salus_deid *d, size_t s, size_t e, enum salus_phi type, float conf, uint16_t rule)
{
	while (e > s && (d->b[e - 1] == ' ' || d->b[e - 1] == '\t' || d->b[e - 1] == '\n' || d->b[e - 1] == '\r' ||
			 d->b[e - 1] == ',' || d->b[e - 1] == ';' || d->b[e - 1] == ':'))
		e--;
	while (s < e && (d->b[s] == ' ' || d->b[s] == '\t' || d->b[s] == '\n' || d->b[s] == ':'))
		s++;
	if (e <= s)
		return 0;
	if (d->ncs == d->cs_cap && grow((void **)&d->cs, &d->cs_cap, d->ncs + 1, sizeof *d->cs))
		return SALUS_ENOMEM;
	d->cs[d->ncs++] = (struct cspan){(uint32_t)s, (uint32_t)e, conf, rule, (uint8_t)type};
	return 0;
}

static void mark(struct salus_deid *d, size_t i, enum salus_phi type, float conf, uint16_t rule)
{
	struct tok *t = &d->tok[i];
	if (t->bits & TB_COVERED)
		return;
	if (t->mtype && t->mconf >= conf)
		return;
	t->mtype = (uint8_t)(type + 1);
	t->mconf = conf;
	t->mrule = rule;
	d->mset[i / 64] |= 1ull << (i % 64);
}

/* The first token at or after i that may be marked, or nt.  The set is read
 * again at each call, so a loop over it also visits the tokens its own marks
 * add ahead of it, as a loop over every token would. */
static inline size_t next_marked(const struct salus_deid *d, size_t i, size_t nt)
{
	size_t w = i / 64, nw = (nt + 63) / 64; /* words 0 .. ntok / 64 exist, and i <= nt */
	uint64_t x = d->mset[w] & (~0ull << (i % 64));
	while (!x) {
		if (++w >= nw)
			return nt;
		x = d->mset[w];
	}
	size_t p = w * 64 + (size_t)__builtin_ctzll(x);
	return p < nt ? p : nt;
}

/* The lower-case word before byte s (up to 15 chars), "" if none on this line. */
static void word_before(const struct salus_deid *d, size_t s, char out[16])
{
	size_t k = s;
	out[0] = 0;
	while (k > 0 && (d->b[k - 1] == ' ' || d->b[k - 1] == '\t' || d->b[k - 1] == ',' || d->b[k - 1] == ':'))
		k--;
	size_t e = k;
	while (k > 0 && is_alpha((unsigned char)d->b[k - 1]))
		k--;
	if (e - k == 0 || e - k > 15)
		return;
	for (size_t q = 0; q < e - k; q++)
		out[q] = (char)lower((unsigned char)d->b[k + q]);
	out[e - k] = 0;
}

static void word_after(const struct salus_deid *d, size_t e, char out[16])
{
	size_t k = e;
	out[0] = 0;
	while (k < d->n && (d->b[k] == ' ' || d->b[k] == '\t'))
		k++;
	size_t s = k;
	while (k < d->n && (is_alpha((unsigned char)d->b[k]) || d->b[k] == '%'))
		k++;
	if (k - s == 0 || k - s > 15)
		return;
	for (size_t q = 0; q < k - s; q++)
		out[q] = (char)lower((unsigned char)d->b[s + q]);
	out[k - s] = 0;
}

static bool in_list(const char *w, const char *const *ws)
{
	for (; *ws; ws++)
		if (!strcmp(w, *ws))
			return true;
	return false;
}

static const char *const units[] = {"ml", "cc", "mg", "mcg", "g", "gm", "kg", "lb", "lbs", "units", "u", "kcal",
				    "cal", "calories", "mmhg", "mm", "cm", "hrs", "hr", "h", "am", "pm", "min",
				    "mins", "ft", "meq", "iu", "l", "x", "%", "times", "steps", "feet", "meters",
				    "m", "hours", "minutes", "o'clock", "oclock", "mls", "cgy", "rads", NULL};
static const char *const time_words[] = {"until", "by", "from", "to", "and", "since", "at", "till", "after",
					 "before", "around", "about", NULL};
/* Past procedures and diagnoses that a history dates with a bare year
 * ("s/p CABG 1957", "PMH MI 92, CVA 04"). */
static const char *const hist_words[] = {
	"cabg", "mi", "ami", "imi", "nstemi", "stemi", "avr", "mvr", "tvr", "ptca", "pci", "cva", "tia", "stent",
	"stents", "stented", "surgery", "repair", "replacement", "dx", "dx'd", "diagnosed", "ca", "cancer", "chf",
	"dvt", "fx", "fracture", "transplant", "angioplasty", "ablation", "pacer", "ppm", "aicd", "icd", "turp",
	"orif", "thr", "tkr", "tah", "hernia", "lymphoma", "leukemia", "melanoma", "chemo", "xrt", "radiation",
	"sah", "sdh", "ich", "pe", "pna", "endocarditis", "bypass", "mastectomy", "lumpectomy", "appy", "chole",
	"hysterectomy", "nephrectomy", "colectomy", "craniotomy", "laminectomy", "thoracotomy", NULL};
static const char *const date_ctx[] = {"on", "since", "from", "until", "dated", "date", "dob", "thru", "through",
				       "admitted", "discharged", "seen", "last", "born", "due", "started", "visit",
				       "surgery", "before", "after", "note", "triage", "birth", "admission",
				       "discharge", "today", "yesterday", "tomorrow", NULL};
static const char *const score_ctx[] = {"perrl", "perrla", "strength", "pupils", "grade", "murmur", "sbp", "bp",
					"abg", "vbg", "tablet", "tab", "tabs", "ns", "dose", "cup", "normal", "rales",
					"crackles", "drop", "psv", "ps", "peep", "cpap", "bipap", "ipap", "epap",
					"nl", "mae", "lung", "eomi", "equal", "mm", "x", "gcs", "pain", "rate",
					"cx", "bcx", "bottles", "bottle", NULL};

/* Is one of the `back` words before byte s, or the word after byte e, in ws? */
static bool near_word(const struct salus_deid *d, size_t s, size_t e, size_t back, const char *const *ws)
{
	size_t i = tok_at(d, s);
	for (size_t k = 0; k < back && i > 0; k++) {
		i--;
		if (tok_in(d, i, ws))
			return true;
		if (d->tok[i].bits & TB_NL)
			break;
	}
	size_t j = tok_at(d, e);
	return j < d->ntok && tok_in(d, j, ws);
}

/* Is one of the `fwd` words after byte e (same line) in ws? */
static bool near_after(const struct salus_deid *d, size_t e, size_t fwd, const char *const *ws)
{
	size_t j = tok_at(d, e);
	for (size_t k = 0; k < fwd && j < d->ntok; k++, j++) {
		if (k > 0 && (d->tok[j].bits & TB_NL))
			break;
		if (tok_in(d, j, ws))
			return true;
	}
	return false;
}

static unsigned num_at(const char *p, size_t n)
{
	unsigned v = 0;
	for (size_t i = 0; i < n && is_digit((unsigned char)p[i]); i++)
		v = v * 10 + (unsigned)(p[i] - '0');
	return v;
}

/* Is [s,e) part of a longer run of numbers (7.4/40/100, 10.1/4.72, 63-70/27)? */
static bool run_before(const struct salus_deid *d, size_t s)
{
	const char *b = d->b;
	if (s > 0) {
		char c = b[s - 1];
		if (c == '.' || c == '/' || c == '+' || is_digit((unsigned char)c))
			return true;
		if (c == '-' && s > 1 && is_digit((unsigned char)b[s - 2]))
			return true;
	}
	return false;
}

static bool run_after(const struct salus_deid *d, size_t e)
{
	const char *b = d->b;
	if (e < d->n) {
		char c = b[e];
		if (c == '/' || c == '%' || is_digit((unsigned char)c))
			return true;
		if ((c == '.' || c == '-') && e + 1 < d->n && is_digit((unsigned char)b[e + 1]))
			return true;
		if (c == '-' && e + 2 < d->n && b[e + 1] == '.' && is_digit((unsigned char)b[e + 2]))
			return true; /* "5/5-.40": ventilator settings */
	}
	return false;
}

static bool in_number_run(const struct salus_deid *d, size_t s, size_t e)
{
	return run_before(d, s) || run_after(d, e);
}

/* m/d at [s, e) of one or two digits each: the month and day, or false. */
static bool md_at(const char *b, size_t s, size_t e, unsigned *m, unsigned *dd)
{
	size_t k = s;
	while (k < e && is_digit((unsigned char)b[k]))
		k++;
	if (k == s || k - s > 2 || k >= e || b[k] != '/' || e - k - 1 < 1 || e - k - 1 > 2)
		return false;
	for (size_t q = k + 1; q < e; q++)
		if (!is_digit((unsigned char)b[q]))
			return false;
	*m = num_at(b + s, k - s);
	*dd = num_at(b + k + 1, e - k - 1);
	return *m >= 1 && *m <= 12 && *dd >= 1 && *dd <= 31;
}

/* A ZIP at [z,e) after the state at s ("Pellston, MI 49769"): the ZIP, and
 * the capitalised words before ", ST" as the city. */
static int zip_city(struct salus_deid *d, size_t s, size_t z, size_t e, float conf, uint16_t rule)
{
	const char *b = d->b;
	int rc = push(d, z, e, SALUS_PHI_ZIP, conf, rule);
	if (rc)
		return rc;
	size_t k = s;
	while (k > 0 && (b[k - 1] == ' ' || b[k - 1] == '\t'))
		k--;
	if (k > 0 && b[k - 1] == ',')
		k--;
	size_t ti = tok_at(d, k), j = ti, got = 0;
	while (j > 0 && got < 3) {
		struct tok *t = &d->tok[j - 1];
		if (got == 0 ? t->e != k : gap_after(d, j - 1) != GAP_SPACE)
			break;
		if ((t->shape != SH_CAP && t->shape != SH_UPPER) || (tf(d, j - 1) & (DF_STREET | DF_STOP)))
			break;
		got++;
		j--;
	}
	if (got)
		return push(d, d->tok[j].s, d->tok[ti - 1].e, SALUS_PHI_LOCATION, 0.85f, RULE_CITY_ZIP);
	return 0;
}

/* The id.labelled-weak pattern on tokens: "Pt ID:", "Bed #", "Room No." --
 * (case|unit|visit|encounter|record|patient|pt|lot|model|order|group|plan|room|
 * bed|account), at most two blanks, then a word starting with id, identification,
 * number, num, nbr or "no.", or a '#'; a candidate for each, as the pattern's
 * matches would be (the value after it is read by do_candidate). */
static int weak_labels(struct salus_deid *d)
{
	static const char *const second[] = {"identification", "number", "num", "nbr", "id", NULL};
	for (size_t i = next_tok(d, CS_WEAK, 0, d->ntok); i < d->ntok; i = next_tok(d, CS_WEAK, i + 1, d->ntok)) {
		const struct tok *t = &d->tok[i];
		/* the first two letters pick the one word it could be */
		unsigned wi = weak_tab[WEAK_KEY(t->c0, t->c1)];
		if (!wi || !tok_is(d, i, weak_first[wi - 1]))
			continue;
		size_t k = t->e, sp = 0;
		while (k < d->n && sp < 2 && (d->b[k] == ' ' || d->b[k] == '\t'))
			k++, sp++;
		size_t ends[6], ne = 0;
		if (k < d->n && d->b[k] == '#') {
			ends[ne++] = k + 1;
		} else if (i + 1 < d->ntok && d->tok[i + 1].s == k && k > t->e) {
			const unsigned char *w = (const unsigned char *)d->b + k;
			size_t wl = d->tok[i + 1].e - k;
			for (const char *const *q = second; *q; q++) {
				size_t ql = strlen(*q), x = 0;
				while (x < ql && x < wl && lowtab[w[x]] == (unsigned char)(*q)[x])
					x++;
				if (x == ql)
					ends[ne++] = k + ql;
			}
			if (wl == 2 && lowtab[w[0]] == 'n' && lowtab[w[1]] == 'o' && k + 2 < d->n && d->b[k + 2] == '.')
				ends[ne++] = k + 3;
		}
		for (size_t x = 0; x < ne; x++) {
			/* the pattern's longest match: blanks and one of ':#=' after it */
			size_t e = ends[x], z = e, b2 = 0;
			while (z < d->n && b2 < 2 && (d->b[z] == ' ' || d->b[z] == '\t'))
				z++, b2++;
			if (z < d->n && (d->b[z] == ':' || d->b[z] == '#' || d->b[z] == '='))
				e = z + 1;
			if (d->ncand == d->cand_cap && grow((void **)&d->cand, &d->cand_cap, d->ncand + 1, sizeof *d->cand))
				return SALUS_ENOMEM;
			d->cand[d->ncand++] = (struct cand){t->s, (uint32_t)e, PAT_ID_LABEL_WEAK};
		}
	}
	return 0;
}

/* Does the text at p (n bytes left) start with the lower-case word w, caselessly? */
static bool text_is(const char *p, size_t n, const char *w)
{
	size_t k = 0;
	for (; w[k]; k++)
		if (k >= n || lowtab[(unsigned char)p[k]] != (unsigned char)w[k])
			return false;
	return true;
}

/* The age.number-sex-spaced pattern on tokens: "96 F with", "101 woman who":
 * 90-129, one or two blanks, a sex word, one or two blanks, a word that goes on
 * the story (\b around the words, as the pattern). */
static int age_sex_spaced(struct salus_deid *d)
{
	static const char *const sex[] = {"m", "f", "male", "female", "man", "woman", "gentleman", "lady", "yo", NULL};
	static const char *const next[] = {"with", "w/", "who", "presenting", "presents", "s/p", "h/o", "hx", "admitted",
					   "transferred", "brought", "here", NULL};
	const char *b = d->b;
	for (size_t i = next_tok(d, CS_AGE, 0, d->ntok); i + 1 < d->ntok; i = next_tok(d, CS_AGE, i + 1, d->ntok)) {
		const struct tok *t = &d->tok[i];
		if (t->shape != SH_NUM || t->e - t->s < 2 || t->e - t->s > 3)
			continue;
		unsigned v = num_at(b + t->s, t->e - t->s);
		if (v < 90 || v > 129 || (t->e - t->s == 3 && b[t->s] != '1') || (t->e - t->s == 2 && b[t->s] != '9'))
			continue;
		size_t k = t->e, sp = 0;
		while (k < d->n && sp < 3 && (b[k] == ' ' || b[k] == '\t'))
			k++, sp++;
		const struct tok *u = &d->tok[i + 1];
		if (sp < 1 || sp > 2 || u->s != k || !tok_in(d, i + 1, sex))
			continue;
		k = u->e;
		sp = 0;
		while (k < d->n && sp < 3 && (b[k] == ' ' || b[k] == '\t'))
			k++, sp++;
		if (sp < 1 || sp > 2)
			continue;
		for (const char *const *q = next; *q; q++) {
			size_t ql = strlen(*q);
			if (!text_is(b + k, d->n - k, *q))
				continue;
			bool word_end = k + ql < d->n && is_alnum((unsigned char)b[k + ql]);
			if ((*q)[ql - 1] == '/' ? !word_end : word_end)
				continue; /* \b after the word */
			if (d->ncand == d->cand_cap && grow((void **)&d->cand, &d->cand_cap, d->ncand + 1, sizeof *d->cand))
				return SALUS_ENOMEM;
			d->cand[d->ncand++] = (struct cand){t->s, (uint32_t)(k + ql), PAT_AGE_SEX_SP};
			break;
		}
	}
	return 0;
}

/* ---- location.street on the text ---------------------------------------- */

/* The location.street pattern ("t": not in the block database, where its
 * "\b[0-9]{1,6}" started the automaton at every number, a third of the scan)
 * is matched here from each run of digits, with the candidates the pattern's
 * matches would give: a house number of 1-6 digits and an optional letter, 1-2
 * blanks, an optional direction, 1-4 elements (a capitalised word of letters,
 * apostrophes and hyphens, or an ordinal "21st"), each with an optional dot and
 * 1-2 blanks, then a street suffix of RX_STREETSFX followed by a word boundary;
 * a candidate ends after the suffix, after its dot and at each character of a
 * unit number after it (", Apt. #4B").  Every element is deterministic (a word
 * runs to the first byte that cannot continue it), so the elements before a
 * position, and the start of each end, are unique. */
static inline bool sp_tab(char c)
{
	return c == ' ' || c == '\t';
}

static inline bool word_char(unsigned char c) /* \w: ASCII letters, digits and '_' */
{
	return is_upper(c) || is_lower(c) || is_digit(c) || c == '_';
}

/* Blanks (' ', '\t') at k, at most 3 counted. */
static inline size_t blanks_at(const struct salus_deid *d, size_t k)
{
	size_t m = 0;
	while (m < 3 && k + m < d->n && sp_tab(d->b[k + m]))
		m++;
	return m;
}

/* Is [p, p + n) one of the alternatives of the regex group alt ("(A|B|C)")? */
static bool in_alt(const char *p, size_t n, const char *alt)
{
	for (const char *a = alt + 1; *a && *a != ')';) {
		size_t l = strcspn(a, "|)");
		if (l == n && !memcmp(a, p, n))
			return true;
		a += l + (a[l] == '|');
	}
	return false;
}

static int street_cand(struct salus_deid *d, size_t s, size_t e)
{
	if (d->ncand == d->cand_cap && grow((void **)&d->cand, &d->cand_cap, d->ncand + 1, sizeof *d->cand))
		return SALUS_ENOMEM;
	d->cand[d->ncand++] = (struct cand){(uint32_t)s, (uint32_t)e, PAT_STREET};
	return 0;
}

/* The ends after a street suffix at k (its word boundary checked by the caller). */
static int street_ends(struct salus_deid *d, size_t s, size_t e)
{
	const char *b = d->b;
	size_t n = d->n;
	int rc = street_cand(d, s, e);
	if (!rc && e < n && b[e] == '.')
		rc = street_cand(d, s, ++e);
	if (rc)
		return rc;
	/* (,?[ \t]{1,2}(Apt|Apartment|Suite|Ste|Unit|APT|SUITE|#)\.?[ \t]{0,2}#?[A-Za-z0-9-]+)? */
	size_t q = e;
	if (q < n && b[q] == ',')
		q++;
	size_t m = blanks_at(d, q);
	if (m < 1 || m > 2)
		return 0;
	q += m;
	static const char *const unit[] = {"Apartment", "Apt", "Suite", "Ste", "Unit", "APT", "SUITE", "#", NULL};
	size_t kl = 0;
	for (const char *const *u = unit; *u && !kl; u++) {
		size_t l = strlen(*u);
		if (q + l <= n && !memcmp(b + q, *u, l))
			kl = l;
	}
	if (!kl)
		return 0;
	q += kl;
	if (q < n && b[q] == '.')
		q++;
	m = blanks_at(d, q);
	if (m > 2)
		return 0;
	q += m;
	if (q < n && b[q] == '#')
		q++;
	for (; q < n && (is_upper((unsigned char)b[q]) || is_lower((unsigned char)b[q]) || is_digit((unsigned char)b[q]) ||
			 b[q] == '-');
	     q++)
		if ((rc = street_cand(d, s, q + 1)))
			return rc;
	return 0;
}

/* Is [p, p + n) (n >= 2) a street suffix of RX_STREETSFX? */
static bool street_suffix(const char *p, size_t n)
{
	unsigned key = SFX_KEY((unsigned char)p[0], (unsigned char)p[1], (unsigned char)p[n - 1], n);
	for (; sfx_slot[key]; key = (key + 1) & 255u) {
		unsigned i = sfx_slot[key] - 1u;
		if (sfx_len[i] == n && !memcmp(sfx_word[i], p, n))
			return true;
	}
	return false;
}

/* The candidates of a street address whose house number starts at s. */
static int street_from(struct salus_deid *d, size_t s)
{
	const char *b = d->b;
	size_t n = d->n, k = s;
	while (k < n && is_digit((unsigned char)b[k]))
		k++;
	if (k - s > 6)
		return 0;
	if (k < n && (is_upper((unsigned char)b[k]) || is_lower((unsigned char)b[k])))
		k++;
	size_t m = blanks_at(d, k);
	if (m < 1 || m > 2)
		return 0;
	k += m;
	size_t k0 = k, r0 = k; /* the first element (a direction?) */
	for (unsigned el = 0;; el++) {
		if (k >= n)
			return 0;
		unsigned char c = (unsigned char)b[k];
		/* a suffix here, after 1-4 elements (5 when the first is a direction) */
		if ((el >= 1 && el <= 4) ||
		    (el == 5 && in_alt(b + k0, r0 - k0, "(N|S|E|W|North|South|East|West|NE|NW|SE|SW)"))) {
			size_t r = k;
			while (r < n && word_char((unsigned char)b[r]))
				r++;
			if (r - k >= 2 && r - k <= 10 && street_suffix(b + k, r - k)) {
				int rc = street_ends(d, s, r);
				if (rc)
					return rc;
			}
		}
		if (el == 5)
			return 0;
		/* the next element: a capitalised word or an ordinal */
		size_t r = k;
		if (is_upper(c)) {
			r++;
			while (r < n && (is_upper((unsigned char)b[r]) || is_lower((unsigned char)b[r]) || b[r] == '\'' ||
					 b[r] == '-'))
				r++;
			if (el == 0)
				r0 = r;
		} else if (is_digit(c)) {
			while (r < n && r - k < 4 && is_digit((unsigned char)b[r]))
				r++;
			if (r - k > 3 || r + 2 > n)
				return 0;
			char o0 = b[r], o1 = b[r + 1];
			if (!((o0 == 's' && o1 == 't') || (o0 == 'n' && o1 == 'd') || (o0 == 'r' && o1 == 'd') ||
			      (o0 == 't' && o1 == 'h')))
				return 0;
			r += 2;
		} else {
			return 0;
		}
		if (r < n && b[r] == '.')
			r++;
		m = blanks_at(d, r);
		if (m < 1 || m > 2)
			return 0;
		k = r + m;
	}
}

/* Every run of digits at a word boundary may start a street address. */
static int street_cands(struct salus_deid *d)
{
	const uint64_t *m = d->mask;
	uint64_t carry = 0;
	for (size_t k = 0; k < d->mask_words; k++) {
		const uint64_t *x = m + k * M__COUNT;
		uint64_t w = x[M_UP] | x[M_LO] | x[M_DG];
		uint64_t st = x[M_DG] & ~((w << 1) | carry);
		carry = w >> 63;
		for (; st; st &= st - 1) {
			size_t p = k * 64 + (size_t)__builtin_ctzll(st);
			if (p >= d->n)
				break;
			if (p > 0 && d->b[p - 1] == '_')
				continue;
			int rc = street_from(d, p);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* Words of the id.labelled pattern that take an "ID" after them ("member ID"). */
static const char *const id_label_words[] = {
	"mr", "mrn", "record", "acct", "account", "member", "subscriber", "policy", "insurance", "insurer",
	"beneficiary", "medicare", "medicaid", "claim", "license", "licence", "lic", "dl", "plate", "vin",
	"vehicle", "serial", "sn", "device", "implant", "pacemaker", "npi", "dea", "passport", "badge",
	"employee", "identifier", "ref", "reference", "confirmation", "accession", "specimen", "tracking",
	"invoice", "chart", "certificate", "cert", "plan", NULL};

static int do_candidate(struct salus_deid *d, const struct cand *c)
{
	const struct pat_info *p = &pats[c->pat];
	const char *b = d->b;
	size_t s = c->s, e = c->e, n = d->n;
	char w[16];
	switch (p->act) {
	case ACT_SPAN:
		if (c->pat == PAT_PHONE_INTL) { /* "+3371 LOS", "+1728 for the day": fluid balances */
			size_t digits = 0;
			for (size_t k = s; k < e; k++)
				digits += is_digit((unsigned char)b[k]);
			if (digits < 8)
				return 0;
		}
		break;
	case ACT_NUMDATE: {
		char sep = 0;
		for (size_t k = s; k < e; k++)
			if (!is_digit((unsigned char)b[k])) {
				if (sep && b[k] != sep)
					return 0;
				sep = b[k];
			}
		if (in_number_run(d, s, e))
			return 0;
		break;
	}
	case ACT_PHONE7: {
		static const char *const range_ctx[] = {"svr", "stv", "hr", "map", "is", "the", "between", "from", "of",
							"range", "rate", "bp", "pvr", "co", "uo", "vt", "tv", "plt",
							"sbp", "dbp", "ranging", "to", "cc", "ml", "was", "were", NULL};
		unsigned a = num_at(b + s, 3), z = num_at(b + s + 4, 4);
		word_before(d, s, w);
		if (in_number_run(d, s, e) || (a < z && in_list(w, range_ctx)))
			return 0;
		break;
	}
	case ACT_NUMID: {
		size_t digits = 0;
		for (size_t k = s; k < e; k++)
			digits += is_digit((unsigned char)b[k]);
		if (digits < 7 || in_number_run(d, s, e))
			return 0;
		break;
	}
	case ACT_STREET: {
		if (s > 0 && (b[s - 1] == '/' || b[s - 1] == '.' || b[s - 1] == '-' || b[s - 1] == '#'))
			return 0;
		size_t t0 = tok_at(d, s), words = 0;
		for (size_t k = t0 + 1; k < d->ntok && d->tok[k].e < e; k++) {
			uint32_t f = tf(d, k);
			if (d->tok[k].shape == SH_NUM)
				continue;
			/* a medical term that is not also an English word ("3 UPRBCS ST");
			 * hunspell-en-med also lists plain words (juniper, hollow) */
			if ((f & (DF_STOP | DF_ABBR | DF_TITLE | DF_CRED)) ||
			    ((f & DF_MED) && !(f & (DF_FIRST | DF_LAST | DF_PROPER | DF_PLACE | DF_COMMON | DF_VOCAB))))
				return 0;
			/* "3 UPRBCS. CT": a sentence ends before the "suffix" */
			if (d->tok[k].e - d->tok[k].s > 2 && b[d->tok[k].e] == '.')
				return 0;
			/* "3 EPSIODES ST" in a note without case evidence: words nobody names a street after */
			if (d->nc != CASE_MIXED && !(f & (DF_PROPER | DF_PLACE | DF_FIRST | DF_LAST)))
				return 0;
			words++;
		}
		if (!words)
			return 0;
		break;
	}
	case ACT_PARTIAL: {
		/* "RA-10/3" (a line and the day it went in) but not "3-10/3" or "PS-10/5" */
		bool dash = s > 1 && b[s - 1] == '-';
		/* "transferred to Quellmoor.8/31": a dot glued to a word ends its sentence; it is not a
		 * decimal point */
		bool dot_word = s > 2 && b[s - 1] == '.' && is_alpha((unsigned char)b[s - 2]) && is_alpha((unsigned char)b[s - 3]);
		if ((run_before(d, s) && !dot_word) || (dash && !is_alpha((unsigned char)b[s - 2])))
			return 0;
		/* "11/21.93": a two-digit year after a dot; "intubated 6/30-7/2": a range of two dates
		 * (after a date word or a past event, below) */
		size_t e2 = e;
		bool range = false;
		unsigned m2 = 0, d2 = 0;
		if (e + 3 <= n && b[e] == '.' && is_digit((unsigned char)b[e + 1]) && is_digit((unsigned char)b[e + 2]) &&
		    (e + 3 == n || (!is_alnum((unsigned char)b[e + 3]) && b[e + 3] != '.' && b[e + 3] != '/' &&
				    b[e + 3] != '%' && b[e + 3] != '-')))
			e2 = e + 3;
		else if (e + 1 < n && b[e] == '-' && is_digit((unsigned char)b[e + 1])) {
			size_t k = e + 1;
			while (k < n && k < e + 7 && (is_digit((unsigned char)b[k]) || b[k] == '/'))
				k++;
			if (md_at(b, e + 1, k, &m2, &d2) && !run_after(d, k)) {
				e2 = k;
				range = true;
			}
		}
		if (run_after(d, e2))
			return 0;
		size_t sl = s;
		while (b[sl] != '/')
			sl++;
		unsigned m = num_at(b + s, sl - s), dd = num_at(b + sl + 1, e - sl - 1);
		word_before(d, s, w);
		bool ctx = in_list(w, date_ctx);
		/* "cx 2/4" counts bottles, "last cx 4/26" is a date */
		bool bottles = dd <= 4 && m <= dd;
		if (in_list(w, score_ctx) && (bottles || !in_list(w, (const char *const[]){"cx", "bcx", "bottles", "bottle", NULL})))
			return 0;
		if (dash && near_word(d, s, s, 2, (const char *const[]){"psv", "ps", "peep", "cpap", "bipap", "simv", "imv",
								       "ac", "vent", "settings", "fio2", NULL}))
			return 0;
		/* "extubated 2/2", "s/p CABG 4/4", "POST 3/3 TX": a past event before m/m */
		size_t wl = strlen(w);
		bool event = (wl >= 5 && w[wl - 2] == 'e' && w[wl - 1] == 'd') || in_list(w, hist_words) ||
			     !strcmp(w, "post") || !strcmp(w, "bm");
		if (range && !ctx && !event)
			return 0;
		word_after(d, e2, w);
		if (in_list(w, score_ctx) || !strcmp(w, "brisk") || !strcmp(w, "strength") || !strcmp(w, "ns") ||
		    !strcmp(w, "tab") || !strcmp(w, "tabs"))
			return 0;
		bool frac = (m == 1 && dd <= 4) || (m == 2 && dd == 3) || (m == 3 && dd == 4);
		bool timed = e + 3 < n && b[e] == ' ' && is_digit((unsigned char)b[e + 1]) &&
			     (b[e + 2] == ':' || (is_digit((unsigned char)b[e + 2]) && b[e + 3] == ':'));
		if (frac && !ctx && !timed)
			return 0;
		if (!ctx && !event && m == dd && m <= 5)
			return 0;
		static const char *const score_near[] = {"pain", "cp", "discomfort", "ache", "headache", "score",
							 "rated", "scale", "psv", "ps", "cpap", "bipap", "peep", "pap",
							 "flowby", "weaning", "trialed", "simv", "imv", "strength", NULL};
		if (dd == 10 ? near_word(d, s, e, 3, score_near) : !ctx && near_word(d, s, e, 2, score_near))
			return 0;
		/* ventilator settings after a percentage or '&' ("40%, & 5/8", "50% 8/5") */
		size_t pb = s;
		while (pb > 0 && (b[pb - 1] == ' ' || b[pb - 1] == ','))
			pb--;
		if (pb > 0 && pb < s && (b[pb - 1] == '&' || b[pb - 1] == '%') && m <= 12 && dd <= 20)
			return 0;
		/* blood culture bottles: "2/4 bl cx", "1/2 bottles" */
		if (dd <= 4 && m <= dd && near_after(d, e, 3, (const char *const[]){"cx", "bcx", "bottles", "bottle",
										       "cultures", "culture", NULL}))
			return 0;
		/* ... or after the organism: "gram neg rods in 2/4", "GPC 1/2" */
		if (dd <= 4 && m <= dd &&
		    near_word(d, s, s, 3, (const char *const[]){"rods", "cocci", "gpc", "gnr", "gpr", "gnc", "gpcs",
								 "gnrs", "yeast", "growing", "grew", NULL}))
			return 0;
		/* a score out of 10 with its complaint a few words later ("3/10 l back pain") */
		if (dd == 10 && m <= 10 && !ctx && near_after(d, e, 4, score_near))
			return 0;
		/* a murmur's grade out of 6 or 4 ("2/6 systolic murmur", "grade 1/4 diastolic rumble") and a
		 * muscle's strength out of 5 ("4/5 left grip", "deltoids 3/5") with their words near */
		static const char *const murmur_near[] = {"murmur", "murmurs", "sem", "hsm", "rumble", "systolic",
							  "diastolic", "holosystolic", "ejection", "grade", NULL};
		static const char *const strength_near[] = {"strength", "grip", "motor", "power", "weakness", "flexion",
							    "extension", "abduction", "dorsiflexion", "deltoid", "deltoids",
							    "biceps", "triceps", "quads", "quadriceps", "hamstrings", "ue",
							    "le", "rue", "lue", "rle", "lle", "bue", "ble", "extremity",
							    "extremities", "handgrip", NULL};
		if (!ctx && m >= 1 && m <= dd &&
		    (((dd == 6 || dd == 4) && (near_after(d, e, 3, murmur_near) || near_word(d, s, s, 2, murmur_near))) ||
		     (dd == 5 && (near_after(d, e, 3, strength_near) || near_word(d, s, s, 3, strength_near)))))
			return 0;
		e = e2;
		break;
	}
	case ACT_YEAR_APOS:
		if (b[s] == '\'') {
			/* "CA'88", "MI'92": a diagnosis then its year; not 5'10 */
			if (s > 0 && is_digit((unsigned char)b[s - 1]))
				return 0;
			if (e < n && (b[e] == '\'' || b[e] == '"'))
				return 0;
			s++;
		} else {
			if (e < n && (is_alnum((unsigned char)b[e]) || b[e] == '"' || b[e] == '\''))
				return 0;
			if (s > 0 && (b[s - 1] == '\'' || b[s - 1] == '.' || is_digit((unsigned char)b[s - 1])))
				return 0;
			if (s > 1 && b[s - 1] == '-' && is_digit((unsigned char)b[s - 2]))
				return 0; /* "70-80'", "10-15'": a range, not a year */
			e--;
		}
		break;
	case ACT_YEAR_CTX: {
		s = e - 4;
		unsigned y = num_at(b + s, 4);
		word_before(d, s, w);
		if (y / 100 <= 23 && y % 100 <= 59 && in_list(w, time_words)) /* "at 1015 and 1815": times */
			return 0;
		word_after(d, e, w);
		if (in_list(w, units) || (e < n && (b[e] == ':' || b[e] == '-' || b[e] == '/')))
			return 0;
		break;
	}
	case ACT_YEAR:
		word_after(d, e, w);
		if (in_list(w, units))
			return 0;
		if ((s > 0 && (b[s - 1] == '.' || b[s - 1] == ',' || b[s - 1] == '-' || b[s - 1] == '/' || b[s - 1] == '+')) ||
		    (e < n && (b[e] == '.' && e + 1 < n && is_digit((unsigned char)b[e + 1]))))
			return 0;
		word_before(d, s, w);
		if (in_list(w, units) || !strcmp(w, "total"))
			return 0;
		break;
	case ACT_TAIL:
		while (s < e && !is_digit((unsigned char)b[s]) && b[s] != '(' && b[s] != '+')
			s++;
		if (s < e && b[s] == '(' && !memchr(b + s, ')', e - s))
			s++;
		while (e > s && (b[e - 1] == ' ' || b[e - 1] == '.' || b[e - 1] == '-' || b[e - 1] == '('))
			e--;
		if (e - s < 4)
			return 0;
		break;
	case ACT_LABEL_ID: {
		size_t k = e;
		while (k < n && (b[k] == ' ' || b[k] == '\t' || b[k] == ':' || b[k] == '#' || b[k] == '='))
			k++;
		if (k + 3 < n && lower((unsigned char)b[k]) == 'i' && lower((unsigned char)b[k + 1]) == 's' &&
		    b[k + 2] == ' ')
			k += 3;
		size_t vs = k, digits = 0;
		while (k < n && (is_alnum((unsigned char)b[k]) || b[k] == '-' || b[k] == '/' || b[k] == '.')) {
			digits += is_digit((unsigned char)b[k]);
			k++;
		}
		while (k > vs && (b[k - 1] == '.' || b[k - 1] == '-' || b[k - 1] == '/'))
			k--;
		if (!digits && k > vs && k - vs <= 4 && k + 1 < n && b[k] == ' ' && is_digit((unsigned char)b[k + 1])) {
			size_t ti = tok_at(d, vs);
			bool caps = ti < d->ntok && d->tok[ti].s == vs &&
				    (tok_is(d, ti, "mrn") || tok_is(d, ti, "mr") || tok_is(d, ti, "acct") || tok_is(d, ti, "id"));
			if (caps) { /* "MRN: MRN 59869058" */
				size_t q = k + 1;
				while (q < n && (is_alnum((unsigned char)b[q]) || b[q] == '-')) {
					digits += is_digit((unsigned char)b[q]);
					q++;
				}
				k = q;
			}
		}
		if (!digits || k - vs < 2 || k - vs > 40)
			return 0;
		{
			size_t q = vs, dots = 0;
			while (q < k && (is_digit((unsigned char)b[q]) || b[q] == '.'))
				dots += b[q++] == '.';
			if (q == k && dots) /* a decimal number: "ID: WBC 6.8" */
				return 0;
			/* a bare "ID" label is weak: "ID: TM 101" is the infectious-disease section
			 * (s is the start of the label's last word, see find_starts) */
			size_t lt = tok_at(d, s);
			if (c->pat == PAT_ID_LABEL && lt < d->ntok && tok_is(d, lt, "id") && k - vs < 5 &&
			    !(lt > 0 && gap_after(d, lt - 1) == GAP_SPACE && tok_in(d, lt - 1, id_label_words)))
				return 0;
		}
		if (k - vs <= 3 && digits == k - vs) {
			word_after(d, k, w); /* "ID 2 days", "Bed 12" are rarely identifiers */
			if (in_list(w, units) || k - vs < 3)
				return 0;
		}
		return push(d, vs, k, p->type, p->conf, c->pat);
	}
	case ACT_AGE:
		while (s < e && !is_digit((unsigned char)b[s]))
			s++;
		e = s;
		while (e < c->e && is_digit((unsigned char)b[e]))
			e++;
		break;
	case ACT_LAST4:
		s = e - 4;
		break;
	case ACT_AGE_WORD_L: /* skip the label, a colon and blanks */
		while (s < e && b[s] != ' ' && b[s] != '\t' && b[s] != ':')
			s++;
		while (s < e && (b[s] == ' ' || b[s] == '\t' || b[s] == ':'))
			s++;
		break;
	case ACT_AGE_WORD: {
		size_t k = e;
		while (k > s && b[k - 1] != ' ' && b[k - 1] != '-')
			k--;
		e = k;
		break;
	}
	case ACT_ZIPSTATE: {
		size_t z = e;
		while (z > s && (is_digit((unsigned char)b[z - 1]) || b[z - 1] == '-'))
			z--;
		return zip_city(d, s, z, e, p->conf, c->pat);
	}
	case ACT_CITY: {
		size_t k = s;
		while (k < e && b[k] != ',')
			k++;
		e = k;
		size_t ti = tok_at(d, s);
		while (ti < d->ntok && d->tok[ti].s < e && (tf(d, ti) & (DF_COMMON | DF_STOP | DF_TITLE))) {
			s = d->tok[ti].e;
			ti++;
		}
		break;
	}
	case ACT_URL:
		while (e > s && strchr(".,;:!?)]'\"", b[e - 1]))
			e--;
		break;
	case ACT_IP6:
		if (!is_alnum((unsigned char)b[s]) && b[s] != ':')
			s++;
		break;
	case ACT_HASHID: {
		s++;
		while (s < e && (b[s] == ' ' || b[s] == '\t'))
			s++;
		size_t digits = 0;
		for (size_t k = s; k < e; k++)
			digits += is_digit((unsigned char)b[k]);
		/* "#20fr", "#4PRBC": a size or a count; "pa# 63-70/27-30": pressures */
		if (e - s < 4 || digits < 3 || in_number_run(d, s, e))
			return 0;
		break;
	}
	}
	return push(d, s, e, p->type, p->conf, c->pat);
}

/* ---- numeric formats over tokens ---------------------------------------- */

/* Long numbers, letter+digit identifiers and groups of digits are found on
 * tokens rather than by Hyperscan: as regexes they cost more than all other
 * patterns together (every run of digits starts them), and the tokenizer has
 * already cut the runs. */
static bool tok_chars(const struct salus_deid *d, const struct tok *t, bool (*ok)(unsigned char))
{
	for (size_t k = t->s; k < t->e; k++)
		if (!ok((unsigned char)d->b[k]))
			return false;
	return true;
}

static bool vin_char(unsigned char c)
{
	return is_digit(c) || (is_upper(c) && c != 'I' && c != 'O' && c != 'Q');
}

static bool cap_or_digit(unsigned char c)
{
	return is_digit(c) || is_upper(c);
}

static bool hex_char(unsigned char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Two capitals of a US state or territory code (the ZIP_STATE rule). */
static bool state_code(const char *p)
{
	static const char codes[] = "ALAKAZARCACOCTDEDCFLGAHIIDILINIAKSKYLAMEMDMAMIMNMSMOMTNENVNHNJNMNYNCNDOHOKORPARISCSDTNTXUTVTVAWAWVWIWYPR";
	for (const char *c = codes; *c; c += 2)
		if (c[0] == p[0] && c[1] == p[1])
			return true;
	return false;
}

/* Formats that were the most expensive Hyperscan patterns (every dash, colon
 * or two capitals starts them), checked on tokens: dashed IDs (AB12-34-5678),
 * full IPv6 addresses, a ZIP after a state code. */
static int token_formats(struct salus_deid *d, size_t i)
{
	const char *b = d->b;
	const struct tok *t = &d->tok[i];
	size_t len = t->e - t->s;
	char after = byte_at(d, t->e);
	if (after == '-' && len >= 2 && len <= 5 && i + 2 < d->ntok && tok_chars(d, t, cap_or_digit)) {
		const struct tok *u = &d->tok[i + 1], *v = &d->tok[i + 2];
		if (u->s == t->e + 1 && u->shape == SH_NUM && u->e - u->s >= 2 && byte_at(d, u->e) == '-' &&
		    v->s == u->e + 1 && v->e - v->s >= 3 && tok_chars(d, v, cap_or_digit)) {
			size_t lead = 0, digits = 0;
			while (v->s + lead < v->e && is_digit((unsigned char)b[v->s + lead]))
				lead++;
			for (size_t k = t->s; k < v->e; k++)
				digits += is_digit((unsigned char)b[k]);
			if (lead >= 3 && digits >= 7 && !in_number_run(d, t->s, v->e))
				return push(d, t->s, v->e, SALUS_PHI_ID, 0.7f, RULE_ID_DASHED);
		}
	}
	if (after == ':' && len <= 4 && tok_chars(d, t, hex_char) && (t->s == 0 || b[t->s - 1] != ':')) {
		size_t j = i, groups = 1;
		while (groups < 8 && j + 1 < d->ntok && d->tok[j + 1].s == d->tok[j].e + 1 && b[d->tok[j].e] == ':' &&
		       d->tok[j + 1].e - d->tok[j + 1].s <= 4 && tok_chars(d, &d->tok[j + 1], hex_char)) {
			j++;
			groups++;
		}
		if (groups == 8)
			return push(d, t->s, d->tok[j].e, SALUS_PHI_IP, 0.97f, RULE_IPV6_FULL);
	}
	if (t->shape == SH_NUM && len == 5 && i > 0) {
		const struct tok *st = &d->tok[i - 1];
		size_t k = t->s, sp = 0;
		while (k > st->e && (b[k - 1] == ' ' || b[k - 1] == '\t') && sp < 3)
			k--, sp++;
		if (k > st->e && b[k - 1] == ',')
			k--;
		if (k > st->e && b[k - 1] == '.')
			k--;
		if (sp >= 1 && sp <= 2 && k == st->e && st->e - st->s == 2 && st->shape == SH_UPPER &&
		    state_code(b + st->s)) {
			size_t e = t->e;
			if (i + 1 < d->ntok && after == '-' && d->tok[i + 1].s == e + 1 && d->tok[i + 1].shape == SH_NUM &&
			    d->tok[i + 1].e - d->tok[i + 1].s == 4)
				e = d->tok[i + 1].e;
			return zip_city(d, st->s, t->s, e, 0.95f, RULE_ZIP_STATE);
		}
	}
	return 0;
}

/* "returned to the OR on 4-12", "cultures from 11-3 grew": month-day with a
 * dash after a date preposition.  Not a range ("on 2-4 L", "from 3-5 mg",
 * "on 5-10 units"): the word after it must not be a unit or a count, nor a
 * number, and the pair must be a plausible month and day. */
static int date_dash(struct salus_deid *d, size_t i)
{
	static const char *const preps[] = {"on", "since", "until", "till", "from", "thru", "through", "dated", NULL};
	static const char *const counts[] = {"l", "lpm", "liters", "litres", "liter", "mg", "mcg", "g", "gm", "u", "units",
					    "unit", "cc", "ml", "mls", "cm", "mm", "kg", "lb", "lbs", "hrs", "hours", "hr",
					    "days", "day", "d", "wks", "weeks", "week", "mins", "min", "minutes", "months",
					    "mos", "years", "yrs", "yr", "times", "x", "beats", "bpm", "breaths", "puffs",
					    "tabs", "pills", "episodes", "drops", "gtts", "gtt", "mmhg", "cmh2o", "pm", "am",
					    "and", "to", "or", "out", "of", "per", "ppd", "packs", "people", "nurses", "hrly",
					    "q", "fr", "french", "inches", "in", "ft", "feet", "meq", "mmol", "sec", "seconds",
					    "amps", "bags", "doses", "dose", "vials", "loose", "large", "small", "medium",
					    "liquid", "soft", "formed", "word", "words", "steps", "mph", "percent", NULL};
	const struct tok *t = &d->tok[i];
	if (i == 0 || i + 1 >= d->ntok || byte_at(d, t->e) != '-')
		return 0;
	const struct tok *u = &d->tok[i + 1];
	if (u->shape != SH_NUM || u->s != t->e + 1 || u->e - u->s > 2 || (t->bits & TB_COVERED) ||
	    (u->bits & TB_COVERED) || t->mtype || u->mtype)
		return 0;
	char after = byte_at(d, u->e);
	if (after == '-' || after == '/' || after == '.' || after == '%' || after == '\'' || after == ':' || after == 'x')
		return 0;
	if (t->s > 0 && (d->b[t->s - 1] == '-' || d->b[t->s - 1] == '/' || d->b[t->s - 1] == '.'))
		return 0;
	unsigned m = num_at(d->b + t->s, t->e - t->s), dd = num_at(d->b + u->s, u->e - u->s);
	if (m < 1 || m > 12 || dd < 1 || dd > 31)
		return 0;
	if (gap_after(d, i - 1) != GAP_SPACE || !tok_in(d, i - 1, preps))
		return 0;
	if (i + 2 < d->ntok && !(d->tok[i + 2].bits & TB_NL)) {
		const struct tok *w = &d->tok[i + 2];
		if (w->shape == SH_NUM || w->shape == SH_MIX || w->s == u->e || tok_in(d, i + 2, counts))
			return 0;
		/* a plural noun counts: "on 1-2 pillows", "from 3-4 visits" */
		if (tok_alpha(w) && w->e - w->s > 3 && lower((unsigned char)d->b[w->e - 1]) == 's' &&
		    (tf(d, i + 2) & (DF_COMMON | DF_VOCAB | DF_MED)))
			return 0;
	}
	return push(d, t->s, u->e, SALUS_PHI_DATE, 0.7f, RULE_DATE_DASH);
}

/* "call me on 450 0840", "not answering at 78 651 450", "reach her at
 * (64) 3591-3246", "my registered 668 5702": digit groups (7-15 digits in all,
 * one separator between groups) after a calling verb and at/on. */
static int phone_after_call(struct salus_deid *d, size_t i)
{
	static const char *const verbs[] = {"call", "called", "calling", "reach", "reached", "text", "ring", "dial",
					    "answering", "answer", "contact", "contacted", "phone", "phoned", NULL};
	const struct tok *t = &d->tok[i];
	if (i < 2 || (i > 0 && d->tok[i - 1].e == t->s))
		return 0;
	size_t st = t->s;
	if (st > 0 && (d->b[st - 1] == '(' || d->b[st - 1] == '+'))
		st--;
	size_t p = i - 1; /* the word before the number */
	if (gap_after(d, p) == GAP_NL && !(st < t->s))
		return 0;
	bool ok = false;
	if (tok_is(d, p, "registered"))
		ok = true;
	else if (tok_is(d, p, "at") || tok_is(d, p, "on"))
		for (size_t k = p; k > 0 && k + 4 > p && !ok; k--)
			ok = tok_in(d, k - 1, verbs);
	if (!ok)
		return 0;
	size_t j = i, digits = t->e - t->s, groups = 1;
	while (j + 1 < d->ntok && d->tok[j + 1].shape == SH_NUM && groups < 6) {
		size_t a = d->tok[j].e, z = d->tok[j + 1].s;
		bool sep = (z == a + 1 && (d->b[a] == ' ' || d->b[a] == '-' || d->b[a] == '.')) ||
			   (z == a + 2 && d->b[a] == ')' && d->b[a + 1] == ' ') || (z == a + 1 && d->b[a] == ')');
		if (!sep)
			break;
		j++;
		groups++;
		digits += d->tok[j].e - d->tok[j].s;
	}
	if (digits < 7 || digits > 15 || (groups == 1 && digits < 8) || in_number_run(d, st, d->tok[j].e))
		return 0;
	return push(d, st, d->tok[j].e, SALUS_PHI_PHONE, 0.8f, RULE_PHONE_CALL);
}

static int numeric_rules(struct salus_deid *d)
{
	const char *b = d->b;
	int rc = 0;
	size_t nt = d->ntok;
	/* every rule below starts on a token of CS_NUMR (numbers, mixed, capitals, initials, a word before ':') */
	for (size_t i = next_tok(d, CS_NUMR, 0, nt); i < nt && !rc; i = next_tok(d, CS_NUMR, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		size_t len = t->e - t->s;
		if (((t->shape != SH_LOWER && t->shape != SH_CAP) || byte_at(d, t->e) == ':') && (rc = token_formats(d, i)))
			break;
		if (t->shape == SH_NUM && len <= 2 && (rc = date_dash(d, i)))
			break;
		if (t->shape == SH_NUM && !(t->bits & TB_COVERED) && (rc = phone_after_call(d, i)))
			break;
		if (t->shape == SH_NUM) {
			/* groups of digits: "51 516 33 75", "617.555.0199", "4111-1111-1111-1111", "078 05 1120" */
			char sep = (char)byte_at(d, t->e);
			size_t j = i, digits = len, groups = 1;
			unsigned glen[8] = {(unsigned)len};
			if (len <= 4 && (sep == ' ' || sep == '-' || sep == '.')) {
				while (j + 1 < d->ntok && groups < 8 && d->tok[j + 1].shape == SH_NUM &&
				       d->tok[j + 1].s == d->tok[j].e + 1 && b[d->tok[j].e] == sep &&
				       d->tok[j + 1].e - d->tok[j + 1].s <= 4) {
					j++;
					glen[groups++] = (unsigned)(d->tok[j].e - d->tok[j].s);
					digits += d->tok[j].e - d->tok[j].s;
				}
			}
			if (groups >= 3 && !in_number_run(d, t->s, d->tok[j].e)) {
				if (groups == 4 && glen[0] == 4 && glen[1] == 4 && glen[2] == 4 && glen[3] == 4)
					rc = push(d, t->s, d->tok[j].e, SALUS_PHI_ID, 0.9f, RULE_NUM_CARD);
				else if (groups == 3 && glen[0] == 3 && glen[1] == 2 && glen[2] == 4 && sep == ' ')
					rc = push(d, t->s, d->tok[j].e, SALUS_PHI_SSN, 0.85f, RULE_NUM_SSN);
				else if (digits >= 9 && digits <= 15 && sep != '.' && glen[0] >= 2)
					rc = push(d, t->s, d->tok[j].e, SALUS_PHI_PHONE, 0.7f, RULE_NUM_GROUPS);
				i = j;
				continue;
			}
			if (len >= 7 && !in_number_run(d, t->s, t->e)) {
				/* "AB-1234567": take the letters too */
				size_t st = t->s;
				if (i > 0 && t->s > 0 && b[t->s - 1] == '-' && d->tok[i - 1].e == t->s - 1 &&
				    d->tok[i - 1].e - d->tok[i - 1].s <= 4 && tok_alpha(&d->tok[i - 1]))
					st = d->tok[i - 1].s;
				rc = push(d, st, t->e, SALUS_PHI_ID, st < t->s ? 0.75f : 0.6f, st < t->s ? RULE_NUM_ALNUM : RULE_NUM_LONG);
			} else if (len >= 5 && i > 0 && t->s > 0 && b[t->s - 1] == '-' && d->tok[i - 1].e == t->s - 1 &&
				   d->tok[i - 1].e - d->tok[i - 1].s <= 4 && tok_alpha(&d->tok[i - 1]) &&
				   !in_number_run(d, t->s, t->e)) {
				rc = push(d, d->tok[i - 1].s, t->e, SALUS_PHI_ID, 0.75f, RULE_NUM_ALNUM);
			}
			continue;
		}
		/* "s/p pelvic fx4/97", "cabg3/2004": a month/year glued to the word before it
		 * (a year of two digits 32-99 cannot be a day; not "po2/80", "pco2/45") */
		if (t->shape == SH_MIX && len >= 3 && len <= 8 && byte_at(d, t->e) == '/' && i + 1 < d->ntok &&
		    d->tok[i + 1].shape == SH_NUM && d->tok[i + 1].s == t->e + 1 && !(d->tok[i + 1].bits & TB_COVERED)) {
			size_t k = t->s;
			while (k < t->e && is_alpha((unsigned char)b[k]))
				k++;
			const struct tok *y = &d->tok[i + 1];
			size_t yl = y->e - y->s, ml = t->e - k;
			unsigned mo = num_at(b + k, ml), yv = num_at(b + y->s, yl);
			char after = (char)byte_at(d, y->e);
			if (k - t->s >= 2 && (ml == 1 || ml == 2) && b[k] != '0' && mo >= 1 && mo <= 12 &&
			    ((yl == 2 && yv >= 32) || (yl == 4 && yv >= 1900 && yv <= 2029)) && after != '/' &&
			    !(after == '.' && is_digit((unsigned char)byte_at(d, y->e + 1))) &&
			    !(lower((unsigned char)b[k - 1]) == 'o' && b[k] == '2') &&
			    (rc = push(d, k, y->e, SALUS_PHI_DATE, 0.7f, RULE_DATE_GLUED)))
				break;
		}
		if (t->shape != SH_MIX || len < 6)
			continue;
		/* letters then digits, digits-letters-digits, VIN, IBAN */
		size_t k = t->s, a = 0, dg = 0, a2 = 0, dg2 = 0;
		while (k < t->e && is_alpha((unsigned char)b[k]))
			k++, a++;
		while (k < t->e && is_digit((unsigned char)b[k]))
			k++, dg++;
		size_t rest = t->e - k;
		if (a >= 1 && a <= 4 && dg >= 5 && rest == 0) {
			rc = push(d, t->s, t->e, SALUS_PHI_ID, 0.75f, RULE_NUM_ALNUM);
			continue;
		}
		if (a == 0) {
			while (k < t->e && is_alpha((unsigned char)b[k]))
				k++, a2++;
			while (k < t->e && is_digit((unsigned char)b[k]))
				k++, dg2++;
			bool times = a2 == 1 && dg <= 2 && lower((unsigned char)b[t->s + dg]) == 'x'; /* "12x650": vent settings */
			if (dg >= 2 && a2 >= 1 && a2 <= 3 && dg2 >= 3 && k == t->e && !times) {
				rc = push(d, t->s, t->e, SALUS_PHI_ID, 0.7f, RULE_NUM_MIXED);
				continue;
			}
		}
		if (len == 17 && tok_chars(d, t, vin_char)) {
			size_t nd = 0;
			for (size_t q = t->s; q < t->e; q++)
				nd += is_digit((unsigned char)b[q]);
			if (nd >= 3 && nd < 17) {
				rc = push(d, t->s, t->e, SALUS_PHI_ID, 0.9f, RULE_NUM_VIN);
				continue;
			}
		}
		if (is_upper((unsigned char)b[t->s]) && is_upper((unsigned char)b[t->s + 1]) &&
		    is_digit((unsigned char)b[t->s + 2]) && is_digit((unsigned char)b[t->s + 3]) && tok_chars(d, t, cap_or_digit)) {
			size_t j = i, total = len;
			while (j + 1 < d->ntok && d->tok[j + 1].s == d->tok[j].e + 1 && b[d->tok[j].e] == ' ' &&
			       d->tok[j + 1].e - d->tok[j + 1].s <= 4 && tok_chars(d, &d->tok[j + 1], cap_or_digit) &&
			       total < 34) {
				j++;
				total += d->tok[j].e - d->tok[j].s;
			}
			if (total >= 15 && total <= 34)
				rc = push(d, t->s, d->tok[j].e, SALUS_PHI_ID, 0.85f, RULE_NUM_IBAN);
			i = j;
		}
	}
	return rc;
}

/* ---- name and place rules ----------------------------------------------- */

#define F_NAME (DF_FIRST | DF_LAST)
#define F_FUNC (DF_STOP | DF_TITLE | DF_REL | DF_ROLE | DF_CRED | DF_MONTH)

/* May token i be (the first word of) a name after a context of the given
 * strength (3 title, 2 relation/label, 1 verb)? */
static bool ctx_name_ok(struct salus_deid *d, size_t i, int strength)
{
	if (i >= d->ntok)
		return false;
	struct tok *t = &d->tok[i];
	if (!tok_alpha(t) || (t->bits & TB_COVERED))
		return false;
	uint32_t f = tf(d, i);
	bool nd = f & F_NAME;
	if (f & F_FUNC)
		return strength == 3 && t->shape == SH_CAP && nd && !(f & (DF_STOP | DF_TITLE));
	if ((f & DF_ABBR) && !nd)
		return false;
	if (t->shape == SH_INIT)
		return strength >= 2;
	if (d->nc != CASE_MIXED) {
		if (t->e - t->s < 2)
			return false;
		if ((f & DF_COMMON) && !(strength >= 2 && (f & DF_FIRST)) && !(strength == 3 && nd))
			return false;
		if ((f & DF_MED) && !nd)
			return false;
		return true;
	}
	if (t->shape == SH_CAP || t->shape == SH_UPPER) {
		if (t->shape == SH_UPPER && (f & (DF_ABBR | DF_MED)))
			return false;
		if (f & DF_COMMON)
			return strength == 3 || (strength == 2 && nd);
		if ((f & DF_MED) && !nd && !(f & DF_MEDPROP))
			return strength == 3;
		if ((f & DF_MEDPROP) && !nd)
			return strength >= 2;
		return true;
	}
	if (t->shape == SH_LOWER)
		return strength == 3 && t->e - t->s >= 3 && !(f & (DF_COMMON | DF_VOCAB | DF_MED));
	return false;
}

/* May token i continue a name found next to it? */
static bool cont_ok(struct salus_deid *d, size_t i)
{
	if (i >= d->ntok)
		return false;
	struct tok *t = &d->tok[i];
	if (!tok_alpha(t) || (t->bits & TB_COVERED))
		return false;
	if (t->shape == SH_INIT)
		return true;
	uint32_t f = tf(d, i);
	bool nd = f & F_NAME;
	if (f & (F_FUNC | DF_INST | DF_STREET | DF_LABEL | DF_LOCLABEL))
		return false;
	if ((f & DF_ABBR) && !nd)
		return false;
	if (d->nc != CASE_MIXED) {
		if (t->shape == SH_INIT)
			return true;
		bool first = (f & DF_FIRST) && !(f & DF_COMMON); /* "ANN" is also a medical abbreviation */
		return (t->e - t->s >= 4 || nd) && !(f & DF_COMMON) && !((f & DF_MED) && !first) && !((f & DF_VOCAB) && !nd);
	}
	if (t->shape != SH_CAP && t->shape != SH_UPPER && t->shape != SH_INIT)
		return false;
	if (t->shape == SH_UPPER && (f & (DF_MED | DF_VOCAB)) && !nd)
		return false;
	if ((f & DF_COMMON) && !nd)
		return false;
	if ((f & DF_MED) && !nd && !(f & DF_MEDPROP))
		return false; /* eponyms (capitalised medical words) are surnames */
	return true;
}

/* "nurse jolene", "made with martin quellby": in a note with capitals, is the
 * lower-case token i after a role or a verb a first name all the same (in the
 * first-name list, in no English, medical or closed list, not the start of a
 * medical term)? */
__attribute__((noinline)) static bool lower_name_ok(struct salus_deid *d, size_t i)
{
	if (i >= d->ntok)
		return false;
	struct tok *t = &d->tok[i];
	if (t->shape != SH_LOWER || t->e - t->s < 4 || (t->bits & TB_COVERED) || t->mtype || i == 0 ||
	    (d->tok[i - 1].e - d->tok[i - 1].s < 4 && !(tf(d, i - 1) & DF_REL)))
		return false; /* not after "RT", "OT", "dr": "RT rad art line" (but "dtr jane", "son mike") */
	uint32_t f = tf(d, i);
	return (f & DF_FIRST) && !(f & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR | DF_STOP | F_FUNC | DF_MONTH |
					 DF_LABEL | DF_INST | DF_STREET | DF_VERB | DF_LOCVERB | DF_TITLE | DF_REL |
					 DF_ROLE | DF_CRED | DF_PLACE | DF_STATE)) &&
	       !med_prefix(d, i);
}

/* Extend a name from token i to the right over up to `max` more words. */
static void extend_right(struct salus_deid *d, size_t i, float conf, uint16_t rule, int max)
{
	while (max-- > 0 && i + 1 < d->ntok) {
		enum gap g = gap_after(d, i);
		bool ok = g == GAP_SPACE || g == GAP_HYPHEN || (g == GAP_DOT && d->tok[i].shape == SH_INIT);
		bool hy = g == GAP_HYPHEN && tok_alpha(&d->tok[i + 1]) && !(tf(d, i + 1) & (DF_COMMON | DF_STOP));
		/* a double-barrelled surname whose second part is also a word ("Okonkwo-Bell",
		 * "GARCIA-ROSE"): written like the first part, a name-list word */
		if (!hy && g == GAP_HYPHEN && d->tok[i + 1].shape == d->tok[i].shape &&
		    (d->tok[i].shape == SH_CAP || d->tok[i].shape == SH_UPPER) && d->tok[i + 1].e - d->tok[i + 1].s >= 3 &&
		    (tf(d, i + 1) & F_NAME) && !(tf(d, i + 1) & (DF_STOP | DF_ABBR | F_FUNC)))
			hy = true;
		if (!ok)
			return;
		/* "dr elspeth nwachukwu" typed in lower case in a note that has capitals: a
		 * lower-case name goes on over a lower-case word in no English or medical list */
		bool low = d->nc == CASE_MIXED && g == GAP_SPACE && d->tok[i].shape == SH_LOWER &&
			   d->tok[i + 1].shape == SH_LOWER && d->tok[i + 1].e - d->tok[i + 1].s >= 3 &&
			   !(d->tok[i + 1].bits & TB_COVERED) && !d->tok[i + 1].mtype &&
			   !(tf(d, i + 1) & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR | DF_STOP | F_FUNC |
					     DF_LABEL | DF_INST | DF_STREET | DF_VERB | DF_LOCVERB | DF_MONTH)) &&
			   !med_prefix(d, i + 1);
		if (!(cont_ok(d, i + 1) || hy || low)) {
			/* "Ignatius Murmur": after a first name, a capitalised word is the surname */
			if (d->nc != CASE_MIXED || g != GAP_SPACE || d->tok[i].shape != SH_CAP || d->tok[i + 1].shape != SH_CAP ||
			    (d->tok[i + 1].bits & TB_COVERED))
				return;
			uint32_t cf = tf(d, i), nf = tf(d, i + 1);
			if (!(cf & DF_FIRST) || (cf & DF_COMMON) ||
			    (nf & (F_FUNC | DF_ABBR | DF_LABEL | DF_LOCLABEL | DF_INST | DF_STREET | DF_VERB | DF_LOCVERB)))
				return;
		}
		mark(d, i + 1, SALUS_PHI_NAME, conf, rule);
		i++;
	}
}

static void extend_left(struct salus_deid *d, size_t i, float conf, uint16_t rule, int max)
{
	while (max-- > 0 && i > 0) {
		enum gap g = gap_after(d, i - 1);
		bool ok = g == GAP_SPACE || g == GAP_HYPHEN || (g == GAP_DOT && d->tok[i - 1].shape == SH_INIT);
		if (!ok)
			return;
		if (!cont_ok(d, i - 1)) {
			/* "EARL N. RAND": a first name before a middle initial */
			if (d->tok[i].shape != SH_INIT || g != GAP_SPACE || d->tok[i - 1].shape == SH_LOWER ||
			    (d->tok[i - 1].bits & TB_COVERED))
				return;
			uint32_t pf = tf(d, i - 1);
			if (!(pf & DF_FIRST) || (pf & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST)))
				return;
		}
		mark(d, i - 1, SALUS_PHI_NAME, conf, rule);
		i--;
	}
}

/* The per-note set of words found as names or places: each slot holds the
 * word's hash with bit 0 replaced by 1 for a place, 0 for a name. */
static inline uint64_t name_key(uint64_t h)
{
	h &= ~1ull;
	return h ? h : 2;
}

static void add_name_hash(struct salus_deid *d, size_t i, bool place)
{
	struct tok *t = &d->tok[i];
	if (t->e - t->s < 3 || d->nnames >= NAMESET / 2)
		return;
	uint64_t h = name_key(t->h);
	for (size_t k = (h >> 1) & (NAMESET - 1);; k = (k + 1) & (NAMESET - 1)) {
		if ((d->names[k] & ~1ull) == h)
			return;
		if (!d->names[k]) {
			d->names[k] = h | place;
			d->nnames++;
			d->names_pre[NAME_PRE(t->c0, t->c1) / 64] |= 1ull << (NAME_PRE(t->c0, t->c1) % 64);
			return;
		}
	}
}

/* Words that start a place name of several words ("New Haven", "East Hollisford"). */
static const char *const place_pfx[] = {"new", "north", "south", "east", "west", "eastern", "western",
					"northern", "southern", "upper", "lower", "middle", "fort", "ft",
					"mount", "mt", "port", "san", "santa", "los", "las", "el", "bel",
					"glen", "saint", "st", "lake", NULL};

/* Which short preposition token i is, from its length and first letters
 * (no string compares for the common words that share them: the, for, and). */
enum { PW_TO = 1, PW_AT = 2, PW_FROM = 4, PW_ON = 8, PW_PER = 16, PW_IN = 32, PW_NEAR = 64, PW_OF = 128 };
static inline __attribute__((always_inline)) unsigned prep_word(const struct salus_deid *d, size_t i)
{
	const struct tok *t = &d->tok[i];
	switch (t->e - t->s) {
	case 2:
		return t->c0 == 't' ? (t->c1 == 'o' ? PW_TO : 0)
		     : t->c0 == 'a' ? (t->c1 == 't' ? PW_AT : 0)
		     : t->c0 == 'o' ? (t->c1 == 'n' ? PW_ON : t->c1 == 'f' ? PW_OF : 0)
		     : t->c0 == 'i' && t->c1 == 'n' ? PW_IN : 0;
	case 3:
		return t->c0 == 'p' && t->c1 == 'e' && lowtab[(unsigned char)d->b[t->s + 2]] == 'r' ? PW_PER : 0;
	case 4:
		if (t->c0 == 'f' && t->c1 == 'r')
			return tok_is(d, i, "from") ? PW_FROM : 0;
		return t->c0 == 'n' && t->c1 == 'e' && tok_is(d, i, "near") ? PW_NEAR : 0;
	default:
		return 0;
	}
}

static void place_run(struct salus_deid *d, size_t j, float conf, uint16_t rule);

/* "PT IS FROM QUELLMOUTH", "home is in marrowfield", "a resident of X",
 * "originally from X": where a person is from or lives, in any case (the
 * place run refuses English, medical and closed-list words).  Token i is
 * from/in/of. */
__attribute__((noinline)) static void loc_home(struct salus_deid *d, size_t i, size_t nt, unsigned pw)
{
	if (i < 1 || i + 1 >= nt || gap_after(d, i - 1) != GAP_SPACE || gap_after(d, i) != GAP_SPACE)
		return;
	const struct tok *p = &d->tok[i - 1];
	if (p->e - p->s < 2 || p->e - p->s > 10 || !tok_alpha(p))
		return;
	bool ok;
	if (pw == PW_OF)
		ok = tok_in(d, i - 1, (const char *const[]){"resident", "native", "residents", NULL});
	else if (pw == PW_FROM)
		ok = tok_in(d, i - 1, (const char *const[]){"is", "originally", "orig", "hails", "moved", NULL});
	else /* in */
		ok = (tok_in(d, i - 1, (const char *const[]){"home", "house", "apartment", "apt", "condo", NULL}) ||
		      (tok_is(d, i - 1, "is") && i >= 2 && gap_after(d, i - 2) == GAP_SPACE &&
		       tok_in(d, i - 2, (const char *const[]){"home", "house", "residence", NULL})));
	if (!ok)
		return;
	const struct tok *u = &d->tok[i + 1];
	if (u->mtype || (u->bits & TB_COVERED) || !tok_alpha(u) || u->e - u->s < 4 || med_prefix(d, i + 1))
		return;
	if (d->nc == CASE_MIXED && u->shape != SH_CAP)
		return;
	/* without case evidence the place ends its clause ("FROM QUELLMOUTH,"), or a
	 * second word follows it ("in east marrowfield") */
	enum gap ga = gap_after(d, i + 1);
	if (d->nc != CASE_MIXED && !(ga == GAP_COMMA || ga == GAP_DOT || ga == GAP_NL || i + 2 >= nt) &&
	    !(ga == GAP_SPACE && tok_in(d, i + 1, place_pfx)))
		return;
	place_run(d, i + 1, 0.75f, RULE_LOC_CONTEXT);
}

/* Words that end a place name of several words ("Daytona Beach", "Milford Mill"). */
static const char *const place_sfx[] = {"beach", "city", "springs", "falls", "park", "heights", "island",
					"harbor", "harbour", "valley", "river", "hills", "lake", "bay", "point",
					"shore", "village", "mills", "mill", "creek", "junction", "air", "grove",
					"ridge", "station", "county", "haven", "landing", "crossing", "corners",
					"woods", "meadows", "plains", "rapids", "ferry", "cove", "bluffs", NULL};

/* After in/at/to/from/near (and "the"): "in Bel Air", "from Glen Burnie", "FROM
 * THE EASTERN SHORE" — a place prefix and the word after it written alike (in a
 * note without case evidence, a place suffix or a word in no English list
 * after the prefix); "went to Holy Cross", "at Sacred Heart", "to Good
 * Samaritan" — hospitals named for a saint or a devotion, in any case.
 * Token i is the preposition. */
__attribute__((noinline)) static void loc_prefix_place(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	size_t j = i + 1;
	if (j + 2 < nt && tok_is(d, j, "the") && gap_after(d, j) == GAP_SPACE)
		j++;
	if (j + 1 >= nt || gap_after(d, i) != GAP_SPACE)
		return;
	struct tok *u = &d->tok[j], *v = &d->tok[j + 1];
	size_t ul = u->e - u->s;
	/* cheap shape tests before any look-up: a prefix of 2-7 letters (holy, sacred, good
	 * in any case; the others capitalised), then a word of 3+ letters */
	if (ul < 2 || ul > 7 || !tok_alpha(u) || !tok_alpha(v) || ((u->bits | v->bits) & TB_COVERED) || v->e - v->s < 3)
		return;
	bool relig = tok_in(d, j, (const char *const[]){"holy", "sacred", NULL}) ||
		     (tok_is(d, j, "good") && tok_is(d, j + 1, "samaritan"));
	if (!relig && (u->shape != v->shape || (u->shape != SH_CAP && u->shape != SH_UPPER) ||
		       (mixed && u->shape != SH_CAP) || !tok_in(d, j, place_pfx)))
		return;
	enum gap g = gap_after(d, j);
	if (g != GAP_SPACE && !(g == GAP_DOT && ul == 2 && tok_in(d, j, (const char *const[]){"st", "mt", "ft", NULL})))
		return;
	uint32_t vf = tf(d, j + 1);
	if (vf & (DF_STOP | F_FUNC | DF_ABBR | DF_LABEL | DF_MONTH | DF_TITLE | DF_REL | DF_ROLE | DF_VERB))
		return;
	if (!relig) {
		bool sfx = tok_in(d, j + 1, place_sfx);
		if ((vf & (DF_MED | DF_INST)) && !sfx)
			return;
		if (mixed ? !sfx && (vf & (DF_COMMON | DF_VOCAB)) &&
				    tok_in(d, j, (const char *const[]){"lower", "upper", "middle", "new", NULL})
			  : !sfx && ((vf & (DF_COMMON | DF_VOCAB)) || med_prefix(d, j + 1) ||
				     tok_in(d, j, (const char *const[]){"lower", "upper", "middle", NULL})))
			return; /* "TO UPPER EXTREM": a body part */
	}
	mark(d, j, SALUS_PHI_LOCATION, 0.7f, RULE_LOC_CONTEXT);
	mark(d, j + 1, SALUS_PHI_LOCATION, 0.7f, RULE_LOC_CONTEXT);
}

/* "transferred to the NSICU", "from CVICU": an intensive-care unit in capitals, not a place. */
static inline bool icu_word(const struct salus_deid *d, const struct tok *t)
{
	return t->shape == SH_UPPER && t->e - t->s >= 4 && t->e - t->s <= 8 &&
	       lowtab[(unsigned char)d->b[t->e - 2]] == 'c' && lowtab[(unsigned char)d->b[t->e - 1]] == 'u';
}

static void place_run(struct salus_deid *d, size_t j, float conf, uint16_t rule)
{
	/* up to 4 capitalised words ("New Haven", "St. Louis"), allowing "of" inside */
	for (int k = 0; k < 4 && j < d->ntok; k++, j++) {
		struct tok *t = &d->tok[j];
		uint32_t f = tf(d, j);
		if (!tok_alpha(t) || (t->bits & TB_COVERED))
			return;
		if (k > 0 && tok_is(d, j, "of") && j + 1 < d->ntok && d->tok[j + 1].shape == SH_CAP) {
			continue;
		}
		/* "lives in east hollisford": a place prefix before a word in no English list
		 * (looked at only when the word would stop the run) */
		bool pfx = false;
		if (d->nc == CASE_MIXED) {
			if (t->shape != SH_CAP && t->shape != SH_UPPER)
				return;
			if (f & DF_ABBR)
				return;
		} else if ((f & (DF_STOP | DF_ABBR)) || ((f & DF_COMMON) && !(f & DF_STATE)) ||
			   ((f & (DF_MED | DF_VOCAB)) && !(f & (DF_PLACE | DF_STATE)))) {
			pfx = k == 0 && j + 1 < d->ntok && gap_after(d, j) == GAP_SPACE && tok_in(d, j, place_pfx) &&
			      tok_alpha(&d->tok[j + 1]) &&
			      !(tf(d, j + 1) & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR | DF_STOP | F_FUNC));
			if (!pfx)
				return;
		}
		if (f & (F_FUNC | DF_LABEL))
			return;
		if (k == 0 && !pfx && (f & (DF_COMMON | DF_MED)) && !(f & (DF_PLACE | DF_STATE | DF_PROPER)))
			return;
		if (k == 0 && (f & DF_INST))
			return; /* "admitted to hospital": no name before the institution word */
		if (k == 0 && icu_word(d, t))
			return;
		mark(d, j, SALUS_PHI_LOCATION, conf, rule);
		enum gap g = gap_after(d, j);
		if (g != GAP_SPACE && !(g == GAP_DOT && tok_is(d, j, "st")) && g != GAP_HYPHEN)
			return;
	}
}

/* "98 s/p left hip fx", "91 with dementia": a number of 90-119 opening a
 * sentence or line, before a history word, is an age (not a temperature or a
 * rate, which follow their label). */
__attribute__((noinline)) static void age_lead(struct salus_deid *d, size_t i, size_t nt)
{
	const struct tok *t = &d->tok[i];
	unsigned v = num_at(d->b + t->s, t->e - t->s);
	if (v < 90 || v > 119 || i + 1 >= nt || t->mtype || (t->bits & TB_COVERED) || gap_after(d, i) != GAP_SPACE)
		return;
	const struct tok *u = &d->tok[i + 1];
	bool slash = u->e - u->s == 1 && u->e + 1 < d->n && d->b[u->e] == '/' && is_alpha((unsigned char)d->b[u->e + 1]);
	bool hist = slash && (tok_is(d, i + 1, "s") || tok_is(d, i + 1, "h") || tok_is(d, i + 1, "w"));
	if (!hist && !tok_in(d, i + 1, (const char *const[]){"with", "who", "presents", "presented", "admitted",
							       "transferred", "w", NULL}))
		return;
	if (tok_is(d, i + 1, "w") && !slash)
		return;
	mark(d, i, SALUS_PHI_AGE, 0.7f, RULE_AGE_LEAD);
}


/* Subjects of "is 102": a person, not a measurement ("HR is 102"). */
static const char *const age_subj[] = {"he", "she", "pt", "patient", "who", "i", NULL};
/* Words after "he is 102" that end the age (not "on RA", "%", "kg"). */
static const char *const age_next[] = {"and", "but", "now", "today", "years", "year", "yrs", "yr", "yo", "with",
				       "who", "since", "this", NULL};
/* Words before "at 94" that make it the age of a death. */
static const char *const age_death[] = {"died", "death", "expired", "away", "deceased", "dead", "passed", NULL};
static const char *const age_sex[] = {"m", "f", "male", "female", NULL};

/* "He is 102.", "his father died at 94", "at the age of 97", "AGE-92", "Mrs Quell (95)",
 * "(M, 93)", "(93, F)", "Pt, 99, is", "91 y old": a number of 90-125 that its context makes
 * a person's age (ages over 89 are PHI).  Not a rate, a saturation or a weight after its
 * label ("HR is 102", "she is 95% on RA", "he is 95 kg"). */
__attribute__((noinline)) static void age_context(struct salus_deid *d, size_t i, size_t nt)
{
	const struct tok *t = &d->tok[i];
	unsigned v = num_at(d->b + t->s, t->e - t->s);
	if (v < 90 || v > 125 || i == 0 || t->mtype || (t->bits & (TB_COVERED | TB_NL)))
		return;
	char nx = byte_at(d, t->e), pv = byte_at(d, t->s - 1);
	if (nx == '.' && is_digit((unsigned char)byte_at(d, t->e + 1)))
		return; /* a decimal */
	if (nx == '%' || nx == '/' || nx == ':' || nx == '\'' || is_alnum((unsigned char)nx) || pv == '/' || pv == '.')
		return;
	bool end = nx == '.' || nx == ',' || nx == ';' || nx == ')' || nx == '\n' || nx == '\r' || t->e == d->n;
	bool after = end || (nx == ' ' && i + 1 < nt && gap_after(d, i) == GAP_SPACE && tok_in(d, i + 1, age_next));
	enum gap g = gap_after(d, i - 1);
	const struct tok *p = &d->tok[i - 1];
	bool ok = false;
	if (g == GAP_SPACE && i >= 2 && gap_after(d, i - 2) == GAP_SPACE) {
		/* "he is 102.", "who was 94 and" */
		if (after && (tok_is(d, i - 1, "is") || tok_is(d, i - 1, "was")) &&
		    (tok_in(d, i - 2, age_subj) || d->tok[i - 2].mtype == SALUS_PHI_NAME + 1))
			ok = true;
		/* "died at 94", "passed away at 101" */
		else if (tok_is(d, i - 1, "at") && tok_in(d, i - 2, age_death))
			ok = true;
		/* "at the age of 97" */
		else if (tok_is(d, i - 1, "of") && tok_is(d, i - 2, "age"))
			ok = true;
	}
	/* "AGE-92", "age=92" */
	if (!ok && p->e + 1 == t->s && (pv == '-' || pv == '=') && (tok_is(d, i - 1, "age") || tok_is(d, i - 1, "aged")))
		ok = true;
	/* "Mrs Quell (95)": a bare number in brackets after a name */
	if (!ok && pv == '(' && nx == ')' && p->mtype == SALUS_PHI_NAME + 1 && p->e + 2 >= t->s)
		ok = true;
	/* "(M, 93)", "(F 93)" and "(93, M)", "(93 female)" */
	if (!ok && nx == ')' && tok_in(d, i - 1, age_sex) && (g == GAP_COMMA || g == GAP_SPACE) &&
	    byte_at(d, p->s - 1) == '(')
		ok = true;
	if (!ok && pv == '(' && i + 1 < nt && tok_in(d, i + 1, age_sex) && byte_at(d, d->tok[i + 1].e) == ')' &&
	    (gap_after(d, i) == GAP_COMMA || gap_after(d, i) == GAP_SPACE))
		ok = true;
	/* "Pt, 99, is alert", "Quell, 97, was seen" */
	if (!ok && g == GAP_COMMA && nx == ',' && (tok_is(d, i - 1, "pt") || tok_is(d, i - 1, "patient") ||
						   p->mtype == SALUS_PHI_NAME + 1))
		ok = true;
	/* "91 y old", "91 y. old" */
	if (!ok && i + 2 < nt && nx == ' ' && tok_is(d, i + 1, "y") && tok_is(d, i + 2, "old") &&
	    d->tok[i + 2].s <= d->tok[i + 1].e + 2)
		ok = true;
	if (ok)
		mark(d, i, SALUS_PHI_AGE, 0.75f, RULE_AGE_CTX);
}

/* Words before a history item that make the number after it a year. */
static const char *const hist_ctx[] = {"pmh", "pmhx", "hx", "history", "sp", "status", "prior",
				       "previous", "old", "remote", NULL};

/* "s/p CABG 1957", "AVR 2004", "PMH MI 92,": a number after a past procedure
 * or diagnosis is its year.  Four digits 1900-2029 need the word before to be
 * such an item (not "at 1957", a time); two digits (40-99, or 0N) also need a
 * history word earlier on the line and punctuation or a line end after them
 * ("MI 92," but not "HR 92 SR"). A year after a comma following such a year
 * continues the list ("CABG 1957, 1971"). */
__attribute__((noinline)) static void year_history(struct salus_deid *d, size_t i, size_t nt)
{
	const struct tok *t = &d->tok[i];
	size_t len = t->e - t->s;
	if (t->mtype || (t->bits & (TB_COVERED | TB_NL)) || i == 0)
		return;
	unsigned v = num_at(d->b + t->s, len);
	if (len == 4 ? v < 1900 || v > 2029 : !(v >= 40 || d->b[t->s] == '0'))
		return;
	char nx = byte_at(d, t->e);
	if (nx == '.' && t->e + 1 < d->n && is_digit((unsigned char)d->b[t->e + 1]))
		return; /* a decimal */
	if (nx == '/' || nx == '-' || nx == ':' || nx == '%' || nx == '\'' || is_alpha((unsigned char)nx))
		return;
	enum gap g = gap_after(d, i - 1);
	const struct tok *p = &d->tok[i - 1];
	/* a list of years: "1957, 1971" */
	if (len == 4 && g == GAP_COMMA && p->shape == SH_NUM && p->mtype == SALUS_PHI_DATE + 1 && p->e - p->s == 4) {
		mark(d, i, SALUS_PHI_DATE, 0.7f, RULE_YEAR_HIST);
		return;
	}
	if (g != GAP_SPACE || !tok_alpha(p) || p->e - p->s > 12)
		return;
	/* orientation: "knows it is 2020", "states the year is 1998" */
	if (len == 4 && i >= 2 && tok_is(d, i - 1, "is") && gap_after(d, i - 2) == GAP_SPACE &&
	    tok_in(d, i - 2, (const char *const[]){"it", "year", "yr", NULL}) && v >= 1950) {
		char w[16];
		word_after(d, t->e, w);
		if (!in_list(w, units))
			mark(d, i, SALUS_PHI_DATE, 0.7f, RULE_YEAR_HIST);
		return;
	}
	if (len == 2 &&
	    !(nx == ',' || nx == ';' || nx == ')' || nx == '.' || nx == '\n' || nx == '\r' || t->e == d->n ||
	      (nx == ' ' && i + 1 < nt && ((d->tok[i + 1].bits & TB_NL) || tok_is(d, i + 1, "and")))))
		return;
	if (!tok_in(d, i - 1, hist_words))
		return;
	if (len == 4) {
		mark(d, i, SALUS_PHI_DATE, 0.7f, RULE_YEAR_HIST);
		return;
	}
	/* a history word earlier on the same line (within 12 words) */
	for (size_t k = i - 1, n = 0; k > 0 && n < 12; n++) {
		if (d->tok[k].bits & TB_NL)
			return;
		k--;
		if (tok_in(d, k, hist_ctx) || (byte_at(d, d->tok[k].e) == '/' && k + 1 < i &&
					       (tok_is(d, k, "s") || tok_is(d, k, "h")) &&
					       (tok_is(d, k + 1, "p") || tok_is(d, k + 1, "o")))) {
			mark(d, i, SALUS_PHI_DATE, 0.65f, RULE_YEAR_HIST);
			return;
		}
	}
}

/* Date prepositions before a month alone ("in sept.", "since March"). */
static const char *const month_preps[] = {"in", "since", "until", "till", "during", "early", "late", "mid",
					  "last", "next", "before", "after", "through", "thru", NULL};


/* "Aldermoor Regional", "at Union Memorial", "from Mass General": a hospital
 * named by a word and General/Regional/Memorial without Hospital after it.
 * The word before must be specific (in no English list) or follow a place
 * preposition. */
__attribute__((noinline)) static void loc_generic_inst(struct salus_deid *d, size_t i)
{
	if (!tok_in(d, i, (const char *const[]){"general", "regional", "memorial", NULL}) || d->tok[i].mtype ||
	    (d->tok[i].bits & TB_COVERED) || gap_after(d, i - 1) != GAP_SPACE)
		return;
	size_t k = i - 1;
	struct tok *p = &d->tok[k];
	if (p->shape != d->tok[i].shape || (p->bits & TB_COVERED) || p->mtype == SALUS_PHI_DATE + 1)
		return;
	uint32_t pf = tf(d, k);
	if (pf & (DF_STOP | DF_ABBR | F_FUNC | DF_LABEL | DF_INST | DF_VERB | DF_LOCVERB | DF_MONTH))
		return;
	bool specific = !(pf & (DF_COMMON | DF_VOCAB | DF_MED));
	bool prep = k > 0 && gap_after(d, k - 1) == GAP_SPACE &&
		    tok_in(d, k - 1, (const char *const[]){"at", "from", "to", "in", NULL});
	if (!specific && !prep)
		return;
	mark(d, k, SALUS_PHI_LOCATION, 0.75f, RULE_INST);
	mark(d, i, SALUS_PHI_LOCATION, 0.75f, RULE_INST);
}

/* "Haijaem Health System", "Quorvel Health Network": an institution named by a specific word
 * (in no English or medical list) and Health with System/Network/Alliance/Partners after it
 * (Health alone is a service: "Home Health", "Mental Health", "Public Health"). */
__attribute__((noinline)) static void loc_health_inst(struct salus_deid *d, size_t i)
{
	if (i == 0 || i + 1 >= d->ntok || !tok_is(d, i, "health") || gap_after(d, i) != GAP_SPACE ||
	    gap_after(d, i - 1) != GAP_SPACE || d->tok[i + 1].shape != d->tok[i].shape ||
	    !tok_in(d, i + 1, (const char *const[]){"system", "systems", "network", "alliance", "partners", NULL}))
		return;
	size_t k = i - 1;
	struct tok *p = &d->tok[k];
	if (p->shape != d->tok[i].shape || (p->bits & TB_COVERED) || p->mtype == SALUS_PHI_DATE + 1 ||
	    (tf(d, k) & (DF_STOP | DF_ABBR | F_FUNC | DF_LABEL | DF_INST | DF_VERB | DF_LOCVERB | DF_MONTH | DF_COMMON |
			 DF_VOCAB | DF_MED | DF_CRED)))
		return;
	for (size_t q = k; q <= i + 1; q++)
		mark(d, q, SALUS_PHI_LOCATION, 0.8f, RULE_INST);
}

/* Is the word after token j a hospital unit or department ("GH ER", "gh cath lab")? */
__attribute__((noinline)) static bool unit_after(struct salus_deid *d, size_t j)
{
	return j + 1 < d->ntok && gap_after(d, j) == GAP_SPACE &&
	       ((tf(d, j + 1) & DF_INST) ||
		tok_in(d, j + 1, (const char *const[]){"er", "ed", "ew", "icu", "micu", "ccu", "sicu", "cath", "lab", "ward",
						       "floor", NULL})); /* not "unit": "HD unit" */
}

/* Is token i a verb of moving a patient before to/from: the lexicon's
 * place verbs and their clinical short forms ("tx to", "xfer from", "arrival
 * to")?  Used only before hospital initials.  Not "back to" or "return from":
 * therapies and devices ("back to NC", "return from HD"). */
__attribute__((noinline)) static bool place_verb(struct salus_deid *d, size_t i)
{
	static const char *const moves[] = {"tx", "txd", "tx'd", "txed", "txfr", "xfer", "xferd", "xferred", "xfered",
					    "xfr", "arrival", "come", "comes", "coming", NULL};
	if (tok_is(d, i, "sent"))
		return false; /* specimens are sent: "sent to BB", "sent to lab" */
	return (tf(d, i) & DF_LOCVERB) || tok_in(d, i, moves);
}

static const char *const loc_preps[] = {"in", "at", "to", "near", "from", "on", "outside", "of", NULL};
static const char *const generic_inst[] = {"general", "regional", "community", "memorial", "county", "state",
					   "university", "medical", "health", "city", "national", "central",
					   "the", "a", "an", "our", "this", "children's", "childrens", "women's",
					   "veterans", "va", "rehabilitation", "rehab", "nursing", "care",
					   "hospital", "center", "clinic", NULL};

/* Word endings of drugs, procedures and conditions, which names seldom have. */
static bool medical_suffix(const struct salus_deid *d, const struct tok *t)
{
	static const char *const sfx[] = {"ol", "il", "ine", "ide", "one", "pam", "pril", "artan", "statin", "mycin",
					  "cillin", "azole", "dipine", "fed", "ase", "itis", "osis", "emia", "ectomy",
					  "otomy", "ostomy", "plasty", "scopy", "gram", "line", "xin", "vir", "mab",
					  "nib", "parin", "formin", "zide", "olol", "azepam", "sone", "lone", "phrine",
					  "pine", "trol", "cin", "cef", "oxacin", "tidine", "prazole", "ium", "ate",
					  "ics", "ism", "ia", "al", "ous", "ary", "ive", "ing", "ed", NULL};
	size_t n = t->e - t->s;
	for (const char *const *p = sfx; *p; p++) {
		size_t k = strlen(*p);
		if (k + 2 >= n)
			continue;
		size_t q = 0;
		while (q < k && lower((unsigned char)d->b[t->e - k + q]) == (unsigned char)(*p)[q])
			q++;
		if (q == k)
			return true;
	}
	return false;
}

static bool has_vowel(const char *p, size_t n)
{
	for (size_t k = 0; k < n; k++)
		switch (lowtab[(unsigned char)p[k]]) {
		case 'a': case 'e': case 'i': case 'o': case 'u': case 'y':
			return true;
		default:
			break;
		}
	return false;
}

/* Is a dictionary name written with a capital, or an initial, next to token i ("Adam Vanco")? */
__attribute__((noinline)) static bool name_beside(struct salus_deid *d, size_t i)
{
	if (i > 0 && gap_after(d, i - 1) == GAP_SPACE && d->tok[i - 1].shape == SH_CAP && (tf(d, i - 1) & F_NAME) &&
	    !(tf(d, i - 1) & (DF_COMMON | DF_MED)))
		return true;
	if (i + 1 < d->ntok && gap_after(d, i) == GAP_SPACE && d->tok[i + 1].shape == SH_INIT &&
	    gap_after(d, i + 1) == GAP_DOT)
		return true; /* "Vide A. Persson" */
	return i + 1 < d->ntok && gap_after(d, i) == GAP_SPACE && d->tok[i + 1].shape == SH_CAP &&
	       (tf(d, i + 1) & F_NAME) && !(tf(d, i + 1) & (DF_COMMON | DF_MED));
}

/* In a note without case evidence: is a dictionary name (not a common word)
 * or an initial next to token i? */
__attribute__((noinline)) static bool name_beside_nc(struct salus_deid *d, size_t i)
{
	for (int side = 0; side < 2; side++) {
		size_t k = side ? i + 1 : i - 1;
		if (side ? i + 1 >= d->ntok : i == 0)
			continue;
		enum gap g = gap_after(d, side ? i : i - 1);
		if (g != GAP_SPACE && g != GAP_COMMA) /* "silvana, adam, christopher" */
			continue;
		const struct tok *t = &d->tok[k];
		if (t->mtype == SALUS_PHI_NAME + 1 ||
		    (g == GAP_SPACE && t->e - t->s == 1 && tok_alpha(t) && byte_at(d, t->e) == '.'))
			return true; /* a name, or an initial ("eric g. quell") */
		if (!tok_alpha(t) || t->e - t->s < 3)
			continue;
		uint32_t f = tf(d, k);
		if ((f & F_NAME) && !(f & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR | DF_STOP | F_FUNC)))
			return true;
	}
	return false;
}

/* Head nouns of eponyms and devices: the word before them names a thing
 * ("Zoll pacer", "Mallory-Weiss tear", "Bair hugger", "Fick method"), and
 * the head noun itself is not a name. */
static const char *const eponym_heads[] = {
	"pacer", "pacemaker", "pacers", "catheter", "tube", "drain", "bag", "mask", "lotion", "cream", "ointment",
	"powder", "dressing", "tear", "syndrome", "disease", "sign", "signs", "reflex", "method", "technique",
	"maneuver", "manoeuvre", "procedure", "operation", "repair", "criteria", "classification", "scale",
	"stockings", "boots", "hugger", "pump", "filter", "valve", "shunt", "clamp", "collar", "splint",
	"brace", "warmer", "blanket", "suction", "test", "sutures", "retractor", "forceps", NULL};
/* Modal verbs: the word after one is a verb ("will recheck"), not a person. */
static const char *const modal_verbs[] = {"will", "would", "can", "could", "should", "must", "shall", "might",
					  NULL};

/* Is token i, found only by a dictionary or by its capital, a thing or a
 * verb rather than a person: an eponym head, the word (or two) before one,
 * or the word after a modal verb? */
__attribute__((noinline)) static bool not_a_person(struct salus_deid *d, size_t i)
{
	size_t nt = d->ntok;
	if (tok_in(d, i, eponym_heads))
		return true;
	for (size_t k = i; k + 1 < nt && k < i + 2; k++) {
		enum gap g = gap_after(d, k);
		if (g != GAP_SPACE && g != GAP_HYPHEN)
			break;
		if (tok_in(d, k + 1, eponym_heads))
			return true;
		if (!(tf(d, k + 1) & F_NAME))
			break; /* "Mallory Weiss tear": one more name word before the head */
	}
	return i > 0 && gap_after(d, i - 1) == GAP_SPACE && tok_in(d, i - 1, modal_verbs);
}

/* Words after a hospital service, not a person ("seen by Neurosurg team"). */
static const char *const service[] = {"team", "service", "services", "svc", "dept", "department", "consult",
				      "group", "clinic", "office", NULL};

/* Words before a drug, device or lab name (not before a person). */
static const char *const drug_ctx[] = {"iv", "po", "pr", "sq", "im", "on", "started", "start", "given", "received",
				       "receiving", "dose", "restart", "restarted", "per", "see", "refer", "continue",
				       "continues", "cont", "dc", "bun", "of", "increase", "increased", "decrease",
				       "decreased", "wean", "weaning", "off", "double",
				       "triple", "amps", "mg", "mcg", "units", "tab", "tabs", "gtt", NULL};

/* Is token i an item of a list of drugs or lab tests: a neighbour across a
 * comma, slash or "and" is a medical word and not a name ("Vanco, Ceftaz,
 * Flagyl", "Fent/versed", "BUN and Creat")? */
static bool drug_list(struct salus_deid *d, size_t i)
{
	for (int side = -1; side <= 1; side += 2) {
		size_t j = i;
		for (int step = 0; step < 2; step++) {
			if (side < 0 ? j == 0 : j + 1 >= d->ntok)
				break;
			size_t a = side < 0 ? j - 1 : j, z = a + 1; /* gap between a and z */
			enum gap g = gap_after(d, a);
			bool sep = g == GAP_COMMA ||
				   (g == GAP_OTHER && d->tok[z].s == d->tok[a].e + 1 && d->b[d->tok[a].e] == '/');
			j = side < 0 ? a : z;
			if (!sep && g == GAP_SPACE && (tok_is(d, j, "and") || tok_is(d, j, "or")) && step == 0)
				continue; /* "Vanco and Unasyn" */
			if (!sep && !(step == 1 && g == GAP_SPACE))
				break;
			uint32_t f = tf(d, j);
			/* not a function word ("in Blorvik, at the..."): hunspell-en-med lists some */
			/* "supportive to pt, John.": the patient in lower case is no lab test (PT, INR) */
			if ((f & (DF_MED | DF_MEDPROP | DF_ABBR)) && !(f & (F_NAME | DF_STOP)) && tok_alpha(&d->tok[j]) &&
			    !(d->tok[j].shape == SH_LOWER && tok_is(d, j, "pt")))
				return true;
			break;
		}
	}
	return false;
}

/* "Annapolis, MD", "Middle River, MD": capitalised words before ", ST" (a
 * state code at a word end).  MD, PA, DO are also credentials: then the
 * words must be a known place or follow a place preposition. */
static void loc_city_state(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	if (i < 1 || i + 1 >= nt)
		return;
	struct tok *st = &d->tok[i + 1];
	if (st->e - st->s != 2 || st->shape != SH_UPPER || gap_after(d, i) != GAP_COMMA ||
	    !state_code(d->b + st->s) || (st->e < d->n && is_alnum((unsigned char)d->b[st->e])))
		return;
	size_t j = i, got = 0;
	bool place = false;
	while (got < 3) {
		struct tok *t = &d->tok[j];
		uint32_t f = tf(d, j);
		if ((t->shape != SH_CAP && t->shape != SH_UPPER) || (t->bits & TB_COVERED) ||
		    (f & (F_FUNC | DF_ABBR | DF_LABEL | DF_CRED | DF_STREET)) ||
		    ((f & DF_MED) && !(f & (DF_PLACE | F_NAME))))
			break;
		place |= (f & (DF_PLACE | DF_STATE)) != 0;
		got++;
		if (j == 0 || gap_after(d, j - 1) != GAP_SPACE)
			break;
		j--;
	}
	if (!got)
		return;
	size_t first = i + 1 - got;
	bool prep = first > 0 && tok_in(d, first - 1, loc_preps);
	/* "88 Quarry Hill Road, Brandonville, VT", "Apt 3B, Brandonville, VT", or the
	 * street on the line above: a city after a street address, even when the
	 * state code is also an abbreviation (VT, PA, MD) or the note has no case evidence */
	if (!prep && first > 1) {
		enum gap gb = gap_after(d, first - 1);
		size_t q = first - 1;
		if (gb == GAP_COMMA || gb == GAP_NL)
			prep = ((tf(d, q) & DF_STREET) && tok_alpha(&d->tok[q]) &&
				(d->tok[q - 1].shape == SH_CAP || d->tok[q - 1].shape == SH_UPPER)) ||
			       (d->tok[q].e - d->tok[q].s <= 5 && gap_after(d, q - 1) == GAP_SPACE &&
				tok_in(d, q - 1, (const char *const[]){"apt", "apartment", "unit", "suite", "ste", NULL}));
	}
	bool ambiguous = (tf(d, i + 1) & (DF_CRED | DF_ABBR | DF_STOP | DF_COMMON)) ||
			 tok_in(d, i + 1, (const char *const[]){"in", "or", "me", "hi", "ok", "de", "nd", "pa", "md", NULL});
	if ((ambiguous || !mixed) && !place && !prep)
		return;
	if (d->b[d->tok[i].e + 1] != ' ')
		return; /* "NT,ND": a list, not an address */
	for (size_t q = first; q <= i; q++) {
		struct tok *t = &d->tok[q];
		if ((place || prep) && t->mtype == SALUS_PHI_NAME + 1 && t->mrule == RULE_CRED)
			t->mtype = 0; /* "from Annapolis, MD": a place, not a signature */
		mark(d, q, SALUS_PHI_LOCATION, 0.8f, RULE_CITY_ZIP);
	}
	if ((place || prep) && st->mtype == SALUS_PHI_NAME + 1 && st->mrule == RULE_CRED)
		st->mtype = 0;
}

/* "PT FROM ZORKTON.", "daughter from brellfield in to visit", "WAS AT QUELLMOUTH YESTERDAY": in a
 * note without case evidence (all capitals or all lower case), a word of 5+ letters in no list
 * at all (no English, medical, name or closed-class word, not the start of a medical term or a
 * drug-like ending) after a person or a relation and from / at / near is a place; not before a
 * dose or a number ("from Quellamine 2 mcg"). */
__attribute__((noinline)) static void loc_unknown_after(struct salus_deid *d, size_t i, size_t nt)
{
	static const char *const who[] = {"pt", "patient", "he", "she", "was", "family", "visitors",
					  "visitor", "originally", NULL};
	size_t j = i + 1;
	if (j >= nt || gap_after(d, i) != GAP_SPACE)
		return;
	struct tok *u = &d->tok[j];
	if (u->e - u->s < 5 || !tok_alpha(u) || u->shape == SH_INIT || u->mtype || (u->bits & TB_COVERED))
		return;
	if (tf(d, j) & ~DF_LOOKED)
		return;
	if (med_prefix(d, j) || medical_suffix(d, u) || icu_word(d, u))
		return;
	/* a person before it: "PT FROM X", "DAUGHTER FROM X", "WAS AT X" (not "bleeding from",
	 * "return from", "set at", "aim at": misspelt clinical words are in no list either) */
	if (i == 0 || gap_after(d, i - 1) != GAP_SPACE)
		return;
	if (!(tf(d, i - 1) & DF_REL) && !tok_in(d, i - 1, who))
		return;
	enum gap ga = gap_after(d, j);
	if (j + 1 < nt && ga == GAP_SPACE &&
	    (d->tok[j + 1].shape == SH_NUM || d->tok[j + 1].shape == SH_MIX || tok_in(d, j + 1, units)))
		return;
	mark(d, j, SALUS_PHI_LOCATION, 0.6f, RULE_LOC_CONTEXT);
}

/* "based in KURZENKIRCHEN", "moved here from FEYSVILLE": in a mixed note a
 * word of 6+ capitals in no list (no abbreviation, English or medical word, not
 * the start of a medical term, not an intensive-care unit) after in / from /
 * near is a place written in capitals, as in an address. */
static void loc_caps_after_in(struct salus_deid *d, size_t i, size_t nt)
{
	if (i + 1 >= nt)
		return;
	size_t j = i + 1;
	struct tok *u = &d->tok[j];
	if (u->shape != SH_UPPER || u->e - u->s < 6 || u->mtype || (u->bits & TB_COVERED) || u->s != d->tok[i].e + 1 ||
	    d->tok[i].shape == SH_UPPER || icu_word(d, u))
		return;
	uint32_t f = tf(d, j);
	if ((f & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | DF_STOP | F_FUNC | DF_LABEL | DF_LOCLABEL |
		  DF_INST | DF_STREET | DF_STATE | DF_VERB | DF_LOCVERB | DF_MONTH | DF_CRED | DF_TITLE)) ||
	    med_prefix(d, j))
		return;
	mark(d, j, SALUS_PHI_LOCATION, 0.65f, RULE_LOC_CONTEXT);
}

/* "to Quartermain 3", "from gh": after to/from/at/on/per, a word in no
 * list followed by a ward number, or a short unknown word (a hospital's
 * initials) in a note without case evidence. */
static void loc_after_prep(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	if (i + 1 >= nt)
		return;
	struct tok *p = &d->tok[i];
	size_t pl = p->e - p->s;
	if (pl < 2 || pl > 4 || !tok_alpha(p))
		return; /* the caller checked the word: to, from, at, on, per */
	size_t j = i + 1;
	struct tok *u = &d->tok[j];
	if (u->mtype || (u->bits & TB_COVERED) || !tok_alpha(u) || u->s != p->e + 1)
		return;
	/* "c/o to quellmoor if stable", "call out to X": the ward a patient is called out
	 * to, a word of 5+ letters in no list at all */
	if (u->e - u->s >= 5 && !(tf(d, j) & ~DF_LOOKED) && tok_is(d, i, "to") && i >= 2 && !med_prefix(d, j) &&
	    ((tok_is(d, i - 1, "o") && byte_at(d, d->tok[i - 1].s - 1) == '/' && tok_is(d, i - 2, "c") &&
	      d->tok[i - 2].e + 1 == d->tok[i - 1].s) ||
	     (tok_is(d, i - 1, "out") && tok_is(d, i - 2, "call")))) {
		mark(d, j, SALUS_PHI_LOCATION, 0.7f, RULE_LOC_CONTEXT);
		return;
	}
	if (mixed && u->shape == SH_LOWER &&
	    !(j + 1 < nt && d->tok[j + 1].shape == SH_NUM && d->tok[j + 1].e - d->tok[j + 1].s == 1))
		return; /* lower case in a mixed note: only a ward "to brennermoor 4" */
	uint32_t uf = tf(d, j);
	if (uf & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | DF_STOP | F_FUNC | DF_LABEL |
		  DF_LOCLABEL | DF_INST | DF_STREET | DF_STATE | DF_VERB | DF_LOCVERB))
		return;
	if (mixed && u->shape == SH_LOWER && (uf & ~DF_LOOKED))
		return; /* a lower-case word in a mixed note: only if in no list at all */
	size_t ul = u->e - u->s;
	bool ward = ul >= 4 && j + 1 < nt && d->tok[j + 1].shape == SH_NUM && d->tok[j + 1].e - d->tok[j + 1].s == 1 &&
		    gap_after(d, j) == GAP_SPACE &&
		    /* not a dose: "weaned from levophedd 2 mcg", "from quellamine 2.5" */
		    !(j + 2 < nt && gap_after(d, j + 1) != GAP_NL && tok_in(d, j + 2, units)) &&
		    !(byte_at(d, d->tok[j + 1].e) == '.' && is_digit((unsigned char)byte_at(d, d->tok[j + 1].e + 1)));
	if (mixed && u->shape == SH_LOWER && !ward)
		return;
	bool initials = !mixed && ul >= 2 && ul <= 4 && !(uf & (F_NAME | DF_PROPER | DF_PLACE)) && !tok_is(d, i, "per") &&
			!tok_is(d, i, "on") &&
			((i > 0 && place_verb(d, i - 1) && gap_after(d, i - 1) == GAP_SPACE) || unit_after(d, j));
	if (ward || initials)
		mark(d, j, SALUS_PHI_LOCATION, 0.6f, RULE_LOC_CONTEXT);
}

/* "Z. MILLER AWARE", "grace dudak aware", "Earl Rand notified": the words
 * before "aware" are a person unless they are ordinary words. */
/* In a note with case evidence, token k (lower case, a name or about to be
 * one) follows a lower-case first name: mark that first name ("jane dudek"). */
static bool lower_first_name(struct salus_deid *d, size_t k)
{
	if (k == 0 || gap_after(d, k - 1) != GAP_SPACE)
		return false;
	struct tok *p = &d->tok[k - 1];
	uint32_t pf = tf(d, k - 1);
	if (p->shape != SH_LOWER || p->mtype || (p->bits & TB_COVERED) || !(pf & DF_FIRST) ||
	    (pf & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_CRED | DF_ROLE | DF_REL | DF_MED)))
		return false;
	mark(d, k - 1, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
	return true;
}

static void name_aware(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	(void)nt;
	if (i < 1)
		return;
	struct tok *a = &d->tok[i];
	if (a->e - a->s != 5 || lowtab[(unsigned char)d->b[a->s]] != 'a' || !tok_is(d, i, "aware"))
		return;
	size_t k = i - 1;
	/* "QUELLAN MADE AWARE", "Dr Quill is aware": a verb between the name and "aware" */
	if (k > 0 && gap_after(d, k) == GAP_SPACE && d->tok[k].e - d->tok[k].s <= 4 &&
	    tok_in(d, k, (const char *const[]){"made", "is", "was", "now", NULL}))
		k--;
	struct tok *t = &d->tok[k];
	if (d->nc != CASE_UPPER && t->mtype == SALUS_PHI_NAME + 1 && t->shape == SH_LOWER && gap_after(d, k) == GAP_SPACE) {
		lower_first_name(d, k);
		return;
	}
	if (t->mtype || (t->bits & TB_COVERED) || !tok_alpha(t) || t->shape == SH_INIT || gap_after(d, k) != GAP_SPACE)
		return;
	uint32_t f = tf(d, k);
	bool nd = f & F_NAME;
	if (f & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_CRED | DF_ROLE | DF_REL))
		return;
	bool init = k > 0 && d->tok[k - 1].shape == SH_INIT && gap_after(d, k - 1) == GAP_DOT; /* "Z. MILLER AWARE" */
	if ((f & (DF_COMMON | DF_MED)) && !(nd && (init || !(f & DF_COMMON))))
		return;
	if ((f & DF_VOCAB) && !nd)
		return;
	if (mixed && t->shape == SH_LOWER) {
		/* "jane dudek aware" typed in lower case: a first name and a word in
		 * no English or medical list before "aware" */
		if (k == 0 || gap_after(d, k - 1) != GAP_SPACE || (f & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP)) ||
		    t->e - t->s < 3)
			return;
		if (lower_first_name(d, k))
			mark(d, k, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
		return;
	}
	mark(d, k, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
	if (t->shape == SH_LOWER)
		lower_first_name(d, k);
	if (init && !(tf(d, k - 1) & (DF_STOP | DF_ABBR)))
		mark(d, k - 1, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
	extend_left(d, k, 0.7f, RULE_NEIGHBOUR, 2);
}

static size_t addr_tail(struct salus_deid *d, size_t k, size_t nt);

/* Addresses without a US street suffix ("at 23100 Ilichova 23 Suite 274
 * Ljubljana", "lives at 67952 Hofdagata 39, Keflavik"): after at/to/in/
 * address, a house number, then capitalised words and numbers to the end
 * of the sentence, with a second number or a unit word among them. */
static void loc_address(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	if (i < 1 || i + 1 >= nt || !mixed)
		return;
	struct tok *h = &d->tok[i];
	if (h->shape != SH_NUM || h->e - h->s > 6)
		return;
	if (byte_at(d, h->e) != ' ')
		return;
	bool prep = tok_in(d, i - 1, (const char *const[]){"at", "to", "address", "is", "in", "from", NULL}) &&
		    (d->tok[i - 1].e + 1 == h->s || byte_at(d, d->tok[i - 1].e) == ':');
	/* "User: 5586 Thorunnarstraeti 31, Arnsdorf": after any label, a house number of 3-6 digits
	 * and a proper noun in no list (or a word of another script) */
	if (!prep) {
		struct tok *w = &d->tok[i + 1];
		if (byte_at(d, d->tok[i - 1].e) != ':' || d->tok[i - 1].e + 2 != h->s || h->e - h->s < 3 ||
		    w->s != h->e + 1 || !(w->shape == SH_CAP || (unsigned char)d->b[w->s] >= 0x80) ||
		    (tf(d, i + 1) & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | DF_STOP | DF_MONTH | DF_LABEL |
				     DF_TITLE | DF_VERB)))
			return;
	}
	size_t last = i, caps = 0, nums = 1, unitw = 0;
	for (size_t j = i + 1; j < nt && j < i + 18; j++) {
		struct tok *u = &d->tok[j];
		if (u->bits & TB_NL)
			break;
		size_t a = d->tok[j - 1].e;
		bool stop = a == u->s, dot = false;
		for (size_t q = a; q < u->s && !stop; q++) {
			char c = d->b[q];
			if (c == '.')
				dot = true;
			else if (c != ' ' && c != '\t' && c != ',' && c != '#' && c != '-')
				stop = true;
		}
		if (stop || (dot && (d->tok[j - 1].shape == SH_NUM || byte_at(d, a + 1) != ' ')))
			break;
		if (dot && d->tok[j - 1].e - d->tok[j - 1].s > 3 && u->shape != SH_NUM && !(tf(d, j - 1) & DF_STREET))
			break; /* a sentence ends (not "u. 97", "Str.") */
		uint32_t uf = tf(d, j);
		if (u->shape == SH_NUM || u->shape == SH_MIX) {
			nums++;
		} else if (u->shape == SH_CAP || u->shape == SH_UPPER) {
			if ((uf & (DF_LABEL | DF_TITLE | DF_VERB | DF_MONTH)) || ((uf & DF_STOP) && u->e - u->s < 3))
				break;
			if (tok_in(d, j, (const char *const[]){"suite", "apt", "box", "unit", "floor", NULL}))
				unitw++;
			else if (!(uf & (DF_MED | DF_ABBR)) || (uf & (DF_PLACE | DF_STATE)))
				caps++;
		} else if (u->shape == SH_LOWER && (unsigned char)d->b[u->s] >= 0x80) {
			caps++; /* a word of a script without ASCII capitals: "Megali Ammos" in Greek */
		} else if (u->shape == SH_LOWER) {
			if (!tok_in(d, j, (const char *const[]){"de", "la", "du", "van", "der", "von", "e", "y", "del",
								 "di", "da", "do", "dos", "das", "le", "rue", "u",
								 "ul", "str", "st", "via", NULL}))
				break;
		} else {
			break;
		}
		last = j;
	}
	if (caps == 0 || (nums < 2 && !unitw) || last == i)
		return;
	/* "at 704 1436 Redbud Drive\nCite Essanaouber\n, 32\n 60810": the lines of the block below */
	if (last + 1 < nt && (d->tok[last + 1].bits & TB_NL))
		last = addr_tail(d, last, nt);
	for (size_t q = i; q <= last; q++)
		if (!(d->tok[q].shape == SH_UPPER && d->tok[q].e - d->tok[q].s == 2 && state_code(d->b + d->tok[q].s)))
			mark(d, q, SALUS_PHI_LOCATION, 0.75f, RULE_LOC_CONTEXT); /* a state code is not PHI */
	i = last;
}

/* A list of names: "They had 6: Gaetane, Hannah, Anthony", "Marrero and Quellan":
 * a capitalised word in no English, medical or closed list next to a name
 * written as a name (token i), across a comma or "and" (before it, also at the
 * start of a sentence). */
static bool list_word_ok(struct salus_deid *d, size_t j, bool first)
{
	const struct tok *u = &d->tok[j];
	if (u->shape != SH_CAP || u->mtype || (u->bits & TB_COVERED) || u->e - u->s < 3 ||
	    ((u->bits & TB_SENT) && !first))
		return false;
	uint32_t f = tf(d, j);
	return !(f & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | F_FUNC | DF_LABEL | DF_LOCLABEL | DF_INST |
		      DF_STREET | DF_STATE | DF_PLACE | DF_VERB | DF_LOCVERB | DF_PROPER)) &&
	       !med_prefix(d, j) && !medical_suffix(d, u);
}

static void name_list(struct salus_deid *d, size_t i, size_t nt)
{
	/* after: ", X" or " and X" */
	if (i + 1 < nt) {
		enum gap g = gap_after(d, i);
		size_t j = i + 1;
		if (g == GAP_SPACE && tok_is(d, j, "and") && j + 1 < nt && gap_after(d, j) == GAP_SPACE)
			j++;
		else if (g != GAP_COMMA)
			j = nt;
		if (j < nt && list_word_ok(d, j, false))
			mark(d, j, SALUS_PHI_NAME, 0.65f, RULE_NEIGHBOUR);
	}
	/* before: "X, " or "X and " */
	if (i > 0) {
		size_t j = i - 1;
		if (tok_is(d, j, "and") && j > 0 && gap_after(d, j) == GAP_SPACE && gap_after(d, j - 1) == GAP_SPACE)
			j--;
		else if (gap_after(d, j) != GAP_COMMA)
			return;
		if (list_word_ok(d, j, true))
			mark(d, j, SALUS_PHI_NAME, 0.65f, RULE_NEIGHBOUR);
	}
}

/* Signature lines: "anita morris rn", "Jane Q. Roe RN": one to three
 * words alone on a line before a credential that ends the line. */
static void name_signature(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	if (i < 1)
		return;
	struct tok *c = &d->tok[i];
	if ((c->bits & TB_NL) || !(i + 1 == nt || (d->tok[i + 1].bits & TB_NL)) || !tok_alpha(c) || c->shape == SH_INIT)
		return;
	uint32_t cf = tf(d, i);
	if (!(cf & DF_CRED) || (mixed && c->shape == SH_CAP))
		return;
	size_t k = i, words = 0;
	bool ok = true;
	while (k > 0 && words < 4) {
		struct tok *u = &d->tok[k - 1];
		uint32_t uf = tf(d, k - 1);
		enum gap g = gap_after(d, k - 1);
		if (g != GAP_SPACE && g != GAP_COMMA && g != GAP_DOT)
			break;
		/* an initial ("J QUELLAN RN") is part of the signature whatever the lists say of its letter */
		bool init = u->shape == SH_INIT && words > 0;
		if (!tok_alpha(u) || (u->bits & TB_COVERED) ||
		    (!init && ((uf & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_VERB | DF_LOCVERB)) ||
			       ((uf & (DF_COMMON | DF_MED | DF_VOCAB)) && !((uf & F_NAME) && !(uf & DF_COMMON)))))) {
			ok = false;
			break;
		}
		words++;
		k--;
		if (u->bits & TB_NL)
			break;
	}
	if (!ok || !words || words > 3 || !(d->tok[k].bits & TB_NL) || (words == 1 && d->tok[k].shape == SH_INIT))
		return;
	for (size_t q = k; q < i; q++)
		mark(d, q, SALUS_PHI_NAME, 0.75f, RULE_CRED);
}

/* "RN (Edward)", "wife (Marguerite)": a name in brackets after a role or relation */
static void name_paren(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	(void)nt;
	if (i < 1)
		return;
	struct tok *t = &d->tok[i];
	if (t->s == 0 || d->b[t->s - 1] != '(' || t->mtype || (t->bits & TB_COVERED) || !tok_alpha(t) ||
	    byte_at(d, t->e) != ')' || t->shape == SH_INIT || (mixed && t->shape == SH_LOWER))
		return;
	uint32_t pf = tf(d, i - 1), f = tf(d, i);
	if (!(pf & (DF_REL | DF_ROLE | DF_CRED)) || d->tok[i - 1].e + 2 < t->s)
		return;
	if ((f & (F_FUNC | DF_ABBR | DF_MED | DF_LABEL)) || ((f & (DF_COMMON | DF_VOCAB)) && !(f & F_NAME)))
		return;
	mark(d, i, SALUS_PHI_NAME, 0.75f, RULE_PAREN_ROLE);
}

/* "U Maryland", "Univ of Delmont": a university is a place */
static void loc_university(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	if (i + 1 >= nt)
		return;
	struct tok *t = &d->tok[i];
	bool u1 = t->e - t->s == 1 && lowtab[(unsigned char)d->b[t->s]] == 'u' && t->shape == SH_INIT;
	bool univ = tok_is(d, i, "univ") || tok_is(d, i, "university");
	if (!u1 && !univ)
		return;
	size_t j = i + 1;
	bool of = false;
	if (tok_is(d, j, "of") && j + 1 < nt && gap_after(d, j) == GAP_SPACE) {
		j++;
		of = true;
	}
	struct tok *u = &d->tok[j];
	uint32_t uf = tf(d, j);
	if (gap_after(d, i) != GAP_SPACE || (u->bits & TB_COVERED))
		return;
	/* "U Maryland", "University of Vermont", "U OF VT", "university of ohio" (a state or a city
	 * after "university of", in any case), "University of Quellmark" (a capitalised word in no
	 * list after "university of" in a mixed note) */
	bool place = uf & (DF_STATE | DF_PLACE);
	bool code = of && u->shape == SH_UPPER && u->e - u->s == 2 && state_code(d->b + u->s);
	bool proper = of && univ && mixed && u->shape == SH_CAP &&
		      !(uf & (DF_COMMON | DF_VOCAB | DF_MED | DF_ABBR | DF_MONTH | F_FUNC | DF_INST | DF_LABEL));
	bool shape_ok = u->shape == SH_CAP || u->shape == SH_UPPER || (u->shape == SH_LOWER && univ && of && place);
	if (!shape_ok || !(place || code || proper))
		return;
	/* its hospital: "Medical Center", "Med Center", "Hospital" (the institution's name) */
	size_t k = j;
	while (k + 1 < nt && k < j + 3 && gap_after(d, k) == GAP_SPACE && !(d->tok[k + 1].bits & TB_COVERED) &&
	       ((tf(d, k + 1) & DF_INST) || tok_is(d, k + 1, "med") || tok_is(d, k + 1, "medical")) &&
	       (d->tok[k + 1].shape == u->shape || d->tok[k + 1].shape == SH_CAP || d->tok[k + 1].shape == SH_UPPER))
		k++;
	if (k > j && !((tf(d, k) & DF_INST)))
		k = j; /* "University of Ohio Medical" without its head word: the place only */
	for (size_t q = i; q <= k; q++)
		mark(d, q, SALUS_PHI_LOCATION, 0.7f, RULE_INST);
}

/* Newlines between token i-1 and token i. */
static unsigned newlines_before(const struct salus_deid *d, size_t i)
{
	if (i == 0)
		return 0;
	unsigned c = 0;
	for (size_t k = d->tok[i - 1].e; k < d->tok[i].s; k++)
		c += d->b[k] == '\n';
	return c;
}

/* Token i starts a line that begins with a blank (a continuation line). */
static bool indented_line(const struct salus_deid *d, size_t i)
{
	size_t k = d->tok[i].s;
	return k > 0 && (d->b[k - 1] == ' ' || d->b[k - 1] == '\t');
}

/* The line starting at token i is "Label:" (its first word, or its first two, before a colon). */
static bool line_is_label(const struct salus_deid *d, size_t i)
{
	for (size_t j = i; j < d->ntok && j < i + 2; j++) {
		if (j > i && (d->tok[j].bits & TB_NL))
			return false;
		if (byte_at(d, d->tok[j].e) == ':')
			return true;
	}
	return false;
}

/* Tokens on the line that token i starts. */
static size_t line_tokens(const struct salus_deid *d, size_t i)
{
	size_t j = i + 1;
	while (j < d->ntok && !(d->tok[j].bits & TB_NL))
		j++;
	return j - i;
}

/* The bytes between tokens a and a+1 of an address: blanks, commas, '#', '-',
 * dots and line breaks only; *dot is set when a dot is among them, *nl when a
 * line break is. */
static bool addr_gap(const struct salus_deid *d, size_t a, bool *dot, bool *nl)
{
	*dot = *nl = false;
	for (size_t q = d->tok[a].e; q < d->tok[a + 1].s; q++) {
		char c = d->b[q];
		if (c == '.')
			*dot = true;
		else if (c == '\n' || c == '\r')
			*nl = true;
		else if (c != ' ' && c != '\t' && c != ',' && c != '#' && c != '-' &&
			 /* the marks of a quoted or bulleted line ("> ", "* ") */
			 !(*nl && (c == '>' || c == '|' || c == '*' || c == '?')))
			return false;
	}
	return true;
}

/* A word or number that can be part of an address block: a number of up to 6
 * digits (house, unit or postcode), a short code of letters and digits, a
 * capitalised word that is not a label, title, verb, month or function word,
 * or a lower-case particle of a street name ("de", "u.", "rue"). */
static bool addr_word(struct salus_deid *d, size_t j)
{
	const struct tok *u = &d->tok[j];
	size_t len = u->e - u->s;
	if (u->shape == SH_NUM)
		return len <= 6;
	if (u->shape == SH_MIX)
		return len <= 6 && is_digit((unsigned char)d->b[u->s]);
	if (u->shape == SH_CAP || u->shape == SH_UPPER) {
		uint32_t f = tf(d, j);
		return !(f & (DF_LABEL | DF_TITLE | DF_VERB | DF_LOCVERB | DF_MONTH | DF_CRED | DF_REL | DF_ROLE)) &&
		       !((f & DF_STOP) && !(f & (DF_PLACE | DF_STATE)));
	}
	if (u->shape == SH_LOWER)
		return tok_in(d, j, (const char *const[]){"de", "la", "du", "van", "der", "von", "del", "di", "da",
							  "do", "dos", "das", "le", "rue", "u", "ul", "str", "via", NULL});
	return false;
}

/* The end of an address block that goes on after token k: city, region,
 * country, postcode on this line and up to three more lines of the block; a
 * line that is not all address words is not taken, a word before ':' ends it. */
static size_t addr_tail(struct salus_deid *d, size_t k, size_t nt)
{
	size_t end = k, line_end = k;
	unsigned lines = 0;
	bool dot, nl;
	for (size_t j = k + 1; j < nt && j < k + 11; j++) {
		/* "Toronto , ON 82269": a two-letter region code after a comma */
		bool region = d->tok[j].shape == SH_UPPER && d->tok[j].e - d->tok[j].s == 2 &&
			      memchr(d->b + d->tok[j - 1].e, ',', d->tok[j].s - d->tok[j - 1].e);
		bool ok = addr_gap(d, j - 1, &dot, &nl) && (region || addr_word(d, j)) && byte_at(d, d->tok[j].e) != ':';
		if (ok && nl) {
			if (++lines > 3)
				break;
			line_end = end; /* the lines so far are whole */
		}
		const struct tok *p = &d->tok[j - 1];
		if (ok && dot && !nl && !(tok_alpha(p) && p->e - p->s <= 3))
			break; /* a sentence ends (not after "St." or "u."): the block too */
		if (!ok || d->tok[j].shape == SH_LOWER) {
			/* a line of the block that is not all address words: not taken */
			if (lines && !(d->tok[j].bits & TB_NL))
				end = line_end;
			break;
		}
		end = j;
	}
	return end;
}

/* "William Hughes\n\n20789 Allika 46\n Suite 501\n Riisa\n\n Estonia 62488",
 * "9554 62 Rue Gafsa Apt. 981 Toronto , ON  82269": an Apt / Suite / Unit
 * number (the location.apartment pattern, or "Unit 4") inside a run of
 * numbers and capitalised words is an address block: from the first number
 * of the run before it (the house number; the street between; this line or
 * the one above) to the end of the run after it (city, region, country,
 * postcode; up to three more lines of an address block, a line that is
 * not all address words ends it).  Mixed-case notes only; a US state code
 * alone is not PHI and stays unmarked. */
static void loc_addr_block(struct salus_deid *d, size_t i, size_t nt)
{
	if (i < 2 || i + 1 >= nt)
		return;
	const struct tok *n = &d->tok[i + 1];
	bool dot, nl;
	if ((n->shape != SH_NUM && n->shape != SH_MIX) || n->e - n->s > 6 || !addr_gap(d, i, &dot, &nl) || nl ||
	    !tok_in(d, i, (const char *const[]){"apt", "apartment", "suite", "ste", "unit", "flat", NULL}))
		return;
	/* left: the street and the house number */
	size_t start = i, alpha = 0, seen_alpha = 0;
	unsigned lines = 0;
	for (size_t j = i; j > 0 && i - j < 6; j--) {
		if (!addr_gap(d, j - 1, &dot, &nl) || !addr_word(d, j - 1) || (nl && ++lines > 1))
			break;
		const struct tok *u = &d->tok[j - 1];
		if (dot && u->shape == SH_NUM)
			break; /* "... 12. Suite": a sentence ended */
		if (byte_at(d, u->e) == ':')
			break;
		if (tok_alpha(u)) {
			/* the street: a word written as a name, not an English, medical or
			 * clinical word unless a place or street word ("Gave 2 Units PRBC, Unit 2") */
			uint32_t f = tf(d, j - 1);
			if (u->shape == SH_CAP && u->e - u->s >= 3 &&
			    (!(f & (DF_MED | DF_ABBR | DF_COMMON)) || (f & (DF_PLACE | DF_STATE | DF_STREET))))
				seen_alpha++;
		} else if (is_digit((unsigned char)d->b[u->s])) {
			start = j - 1;
			alpha = seen_alpha;
		}
		if ((u->bits & TB_SENT) && !nl)
			break;
	}
	/* "Apt. 117 5720 Skoanveien 226": without a house number before it the
	 * block starts at the apartment (not "Unit 4": a ward) */
	bool after = start == i;
	if ((after && tok_is(d, i, "unit")) || (!after && alpha == 0))
		return;
	/* right: city, region, country, postcode */
	size_t end = addr_tail(d, i + 1, nt);
	if (after) { /* a street after it: a number and a word written as a name */
		size_t nums = 0, caps = 0;
		for (size_t q = i + 2; q <= end; q++) {
			nums += d->tok[q].shape == SH_NUM;
			caps += d->tok[q].shape == SH_CAP;
		}
		if (!nums || !caps)
			return;
	}
	for (size_t q = start; q <= end; q++)
		if (!(d->tok[q].shape == SH_UPPER && d->tok[q].e - d->tok[q].s == 2 && state_code(d->b + d->tok[q].s)))
			mark(d, q, SALUS_PHI_LOCATION, 0.8f, RULE_ADDR_BLOCK);
}

/* "7415 Klashork St., Quavav Falls after a fall", "22 Dreppel Road, Zorkton": in a mixed note the
 * capitalised word after the comma that ends a street address (token i, the street word inside
 * a location.street span) is its town, with a place word after it ("Falls", "Springs"); not a clinical,
 * English, label or closed-class word unless a place name. */
__attribute__((noinline)) static void loc_city_after_street(struct salus_deid *d, size_t i)
{
	size_t j = i + 1, nt = d->ntok;
	if (j >= nt)
		return;
	const char *b = d->b;
	size_t p = d->tok[i].e, q = d->tok[j].s;
	if (p < q && b[p] == '.')
		p++;
	if (q - p != 2 || b[p] != ',' || b[p + 1] != ' ')
		return;
	struct tok *u = &d->tok[j];
	uint32_t uf = tf(d, j);
	if (u->shape != SH_CAP || u->e - u->s < 3 || (u->bits & TB_COVERED) || u->mtype == SALUS_PHI_DATE + 1 ||
	    (uf & (F_FUNC | DF_ABBR | DF_LABEL | DF_STATE | DF_MONTH | DF_CRED)) ||
	    ((uf & (DF_COMMON | DF_VOCAB | DF_MED)) && !(uf & DF_PLACE)))
		return;
	mark(d, j, SALUS_PHI_LOCATION, 0.8f, RULE_CITY_ZIP);
	if (j + 1 < nt && gap_after(d, j) == GAP_SPACE && d->tok[j + 1].shape == SH_CAP && tok_in(d, j + 1, place_sfx))
		mark(d, j + 1, SALUS_PHI_LOCATION, 0.8f, RULE_CITY_ZIP);
}

/* "a condo on Marigold Crescent", "the corner of Pell Avenue": capitalised
 * words and a street word spelled out, after a place preposition (no house
 * number, so the street pattern did not see it).  Mixed-case notes only. */
static void loc_street_name(struct salus_deid *d, size_t i)
{
	static const char *const preps[] = {"on", "at", "off", "near", "of", "along", "onto", "to", "from", "in", "down",
					    NULL};
	static const char *const short_forms[] = {"st", "dr", "ct", "pl", "ter", "cir", "sq", "way", "row", "run", "loop",
						  "walk", "path", "close", NULL};
	if (!(tf(d, i) & DF_STREET) || tok_in(d, i, short_forms) || i < 2)
		return;
	size_t k = i;
	while (k > 0 && i - k < 3) {
		struct tok *p = &d->tok[k - 1];
		if (p->shape != SH_CAP || gap_after(d, k - 1) != GAP_SPACE || (p->bits & TB_COVERED))
			break;
		uint32_t pf = tf(d, k - 1);
		if (pf & (DF_STOP | DF_TITLE | DF_REL | DF_ROLE | DF_LABEL | DF_VERB | DF_LOCVERB | DF_STREET | DF_INST |
			  DF_MONTH | DF_ABBR))
			break;
		k--;
	}
	if (k == i || k == 0 || gap_after(d, k - 1) != GAP_SPACE || !tok_in(d, k - 1, preps))
		return;
	for (size_t q = k; q <= i; q++)
		mark(d, q, SALUS_PHI_LOCATION, 0.75f, RULE_LOC_CONTEXT);
}

/* "D/W QUELLAN, NP", "d/w Quellan": the person a plan was discussed with.
 * Token i is "w" (after "d/").  (Tried and dropped: the word before "in to
 * see" / "here to evaluate" — services come in to see the patient too, and it
 * cost precision on half b with no recall.) */
__attribute__((noinline)) static void name_visit(struct salus_deid *d, size_t i, size_t nt, bool mixed)
{
	const struct tok *t = &d->tok[i];
	if (t->e - t->s == 1 && i > 0 && i + 1 < nt && t->s >= 2 && d->b[t->s - 1] == '/' && tok_is(d, i - 1, "d") &&
	    d->tok[i - 1].e == t->s - 1 && gap_after(d, i) == GAP_SPACE) {
		size_t j = i + 1;
		uint32_t jf = tf(d, j);
		/* without case evidence: a name of the lists, or a credential after it ("D/W QUELLAN, NP") */
		bool cred = j + 1 < nt && (tf(d, j + 1) & DF_CRED) && (gap_after(d, j) == GAP_COMMA ||
									gap_after(d, j) == GAP_SPACE);
		if (!d->tok[j].mtype && !(jf & DF_TITLE) && ctx_name_ok(d, j, 1) && !med_prefix(d, j) &&
		    (mixed ? d->tok[j].shape == SH_CAP : cred || ((jf & F_NAME) && !(jf & (DF_COMMON | DF_VOCAB)))) &&
		    !(j + 1 < nt && gap_after(d, j) == GAP_SPACE && tok_in(d, j + 1, service))) {
			mark(d, j, SALUS_PHI_NAME, 0.8f, RULE_VERB);
			extend_right(d, j, 0.8f, RULE_VERB, 2);
		}
	}
}

/* "(t. quennell and r. osgood)", "s. ignatio rrt": an initial in lower case, a dot and a
 * lower-case word that is a name, or in no list at all and signed (a credential after it) or
 * one of a pair of such names. */
static void lower_initial(struct salus_deid *d, size_t i, size_t nt)
{
	const struct tok *t = &d->tok[i];
	const char *b = d->b;
	if (t->mtype || (t->bits & TB_COVERED) || gap_after(d, i) != GAP_DOT || t->e + 2 > d->n || b[t->e + 1] != ' ' ||
	    d->tok[i + 1].s != t->e + 2)
		return;
	if (t->s > 0 && b[t->s - 1] != ' ' && b[t->s - 1] != '\n' && b[t->s - 1] != '\t' && b[t->s - 1] != '(')
		return; /* not a letter of a dotted abbreviation ("i.e. ", "a.m. ") */
	const struct tok *u = &d->tok[i + 1];
	if (u->shape != SH_LOWER || u->e - u->s < 3 || u->mtype || (u->bits & TB_COVERED))
		return;
	uint32_t uf = tf(d, i + 1);
	if (uf & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | F_FUNC | DF_LABEL | DF_INST | DF_STREET |
		  DF_STATE | DF_MONTH | DF_VERB | DF_LOCVERB))
		return;
	if (med_prefix(d, i + 1) && !(uf & F_NAME))
		return; /* "c. dif", "k. pneum": the short form of an organism */
	bool name = uf & F_NAME;
	size_t x = i + 2;
	bool cred = x < nt && (gap_after(d, i + 1) == GAP_SPACE || gap_after(d, i + 1) == GAP_COMMA) &&
		    (tf(d, x) & DF_CRED) && !(tf(d, x) & DF_STOP);
	bool pair = x + 2 < nt && gap_after(d, i + 1) == GAP_SPACE && tok_is(d, x, "and") &&
		    d->tok[x + 1].e - d->tok[x + 1].s == 1 && gap_after(d, x + 1) == GAP_DOT &&
		    d->tok[x + 2].shape == SH_LOWER;
	bool after_pair = i >= 3 && tok_is(d, i - 1, "and") && d->tok[i - 2].mtype == SALUS_PHI_NAME + 1 &&
			  d->tok[i - 3].mtype == SALUS_PHI_NAME + 1;
	if (!name && !cred && !pair && !after_pair)
		return;
	mark(d, i, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
	mark(d, i + 1, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
}

/* "J SMITH ORDERED LEVO", "K Brandt aware": an initial without its dot, a surname and a verb
 * of a person acting (ordered, aware, notified...), at the start of a clause. */
static void initial_verb(struct salus_deid *d, size_t i, size_t nt)
{
	static const char *const acts[] = {"ordered", "aware", "notified", "called", "paged", "said", "states",
					   "stated", "agreed", "agrees", "informed", "updated", "saw", "examined",
					   "evaluated", "requested", "wants", "recommended", "recommends", NULL};
	const struct tok *t = &d->tok[i];
	unsigned char c = (unsigned char)d->b[t->s];
	if (i + 2 >= nt || t->mtype || (t->bits & TB_COVERED) || c == 'A' || c == 'I' || c == 'X' || c == 'O')
		return;
	/* at the start of a clause: a line, a sentence, a comma, or "and" before it */
	if (i > 0 && !(t->bits & TB_SENT) && gap_after(d, i - 1) != GAP_COMMA && !tok_is(d, i - 1, "and"))
		return;
	const struct tok *u = &d->tok[i + 1];
	if (u->mtype > 0 && u->mtype != SALUS_PHI_NAME + 1)
		return;
	if ((u->shape != SH_UPPER && u->shape != SH_CAP) || u->e - u->s < 3 || (u->bits & TB_COVERED) ||
	    gap_after(d, i + 1) != GAP_SPACE || !tok_in(d, i + 2, acts))
		return;
	uint32_t uf = tf(d, i + 1);
	if (uf & (F_FUNC | DF_ABBR | DF_MED | DF_LABEL | DF_INST | DF_STREET | DF_VERB | DF_STATE))
		return;
	if (!(uf & F_NAME) && ((uf & (DF_COMMON | DF_VOCAB | DF_MEDPROP)) || med_prefix(d, i + 1)))
		return;
	mark(d, i, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
	mark(d, i + 1, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
}

/* "at quill vorsten's house", "to Brenna's home", "from Ilse Marrow's apartment": one or two
 * words before 's and a home word, after at / to / from (token i), are a person, whatever
 * their case and though they are English words ("at sandy gray's house"); not a relation, a
 * role, a function word or a label ("at her son's house", "at a friend's place"). */
__attribute__((noinline)) static void name_home(struct salus_deid *d, size_t i, size_t nt)
{
	static const char *const homes[] = {"house", "home", "apartment", "apt", "place", "residence", "farm",
					    "condo", "trailer", "cottage", NULL};
	static const char *const people[] = {"family", "families", "parents", "parent", "patient", "pt",
					     "someone", "somebody", "children", "kids", "people", "neighbors", NULL};
	size_t j = i + 1, k = j;
	const char *b = d->b;
	/* first, without a look-up: a possessive at j or j + 1, one blank before the next word */
	for (;; k++) {
		if (k + 1 >= nt || k > j + 1)
			return;
		const struct tok *u = &d->tok[k];
		if (u->e - u->s > 3 && b[u->e - 2] == '\'' && lowtab[(unsigned char)b[u->e - 1]] == 's')
			break;
	}
	if (d->tok[k + 1].s != d->tok[k].e + 1 || b[d->tok[k].e] != ' ' || gap_after(d, i) != GAP_SPACE)
		return;
	for (k = j; k < nt && k <= j + 1; k++) {
		const struct tok *u = &d->tok[k];
		size_t len = u->e - u->s;
		if (!tok_alpha(u) || u->shape == SH_INIT || (u->bits & TB_COVERED) || (k > j && gap_after(d, k - 1) != GAP_SPACE))
			return;
		uint32_t f = tf(d, k);
		if ((f & (F_FUNC | DF_REL | DF_ROLE | DF_LABEL | DF_ABBR | DF_INST | DF_MONTH)) || tok_in(d, k, people))
			return;
		if (len < 4 || d->b[u->e - 2] != '\'' || lower((unsigned char)d->b[u->e - 1]) != 's')
			continue; /* not yet the possessive: the first word of two */
		if (k + 1 >= nt || gap_after(d, k) != GAP_SPACE || !tok_in(d, k + 1, homes))
			return;
		for (size_t q = j; q <= k; q++)
			mark(d, q, SALUS_PHI_NAME, 0.85f, RULE_NAME_HOME);
		return;
	}
}

/* "DOB 052647", "born 031451": six digits after a date word are a date MMDDYY. */
__attribute__((noinline)) static void date_six(struct salus_deid *d, size_t i)
{
	const struct tok *t = &d->tok[i];
	const char *b = d->b;
	if (i == 0 || t->mtype || (t->bits & (TB_COVERED | TB_NL)))
		return;
	unsigned mm = (unsigned)(b[t->s] - '0') * 10 + (unsigned)(b[t->s + 1] - '0');
	unsigned dd = (unsigned)(b[t->s + 2] - '0') * 10 + (unsigned)(b[t->s + 3] - '0');
	if (mm < 1 || mm > 12 || dd < 1 || dd > 31)
		return;
	char nx = byte_at(d, t->e);
	if ((nx == '.' && is_digit((unsigned char)byte_at(d, t->e + 1))) || nx == '/' || nx == '-' || nx == ':' ||
	    nx == '%' || is_alnum((unsigned char)nx))
		return;
	const struct tok *p = &d->tok[i - 1];
	size_t gs = p->e;
	if (gs < t->s && b[gs] == ':')
		gs++;
	while (gs < t->s && (b[gs] == ' ' || b[gs] == '\t'))
		gs++;
	if (gs != t->s || p->e + 3 < t->s || !tok_alpha(p) || !tok_in(d, i - 1, date_ctx))
		return;
	mark(d, i, SALUS_PHI_DATE, 0.7f, RULE_DATE_SIX);
}

/* "TRANSFER QUARTERMAIN 2", "plan: brellhaus 3 when bed available", "transfer to quellmoor2":
 * a ward or building named by a word in no list at all (5+ letters) and a one-digit number,
 * spaced or glued, after a word of moving a patient or a plan.  Token k is the number
 * (the ward word before it) or the glued word. */
static void loc_ward(struct salus_deid *d, size_t k, size_t nt)
{
	static const char *const moves[] = {"transfer", "transferred", "transfering", "transferring", "tx", "txd",
					    "xfer", "to", "from", "plan", "back", "return", "returned", "at", NULL};
	const struct tok *t = &d->tok[k];
	const char *b = d->b;
	size_t j = k, wl;
	if (t->shape == SH_NUM) {
		if (k == 0 || t->e - t->s != 1 || gap_after(d, k - 1) != GAP_SPACE)
			return;
		j = k - 1;
		const struct tok *u = &d->tok[j];
		wl = u->e - u->s;
		if (!tok_alpha(u) || u->shape == SH_INIT || wl < 5 || (tf(d, j) & ~DF_LOOKED) || med_prefix(d, j))
			return;
	} else {
		wl = t->e - t->s - 1;
		if (wl < 5 || !is_digit((unsigned char)b[t->e - 1]))
			return;
		for (size_t q = t->s; q < t->e - 1; q++)
			if (!is_alpha((unsigned char)b[q]))
				return;
		if (dict_lookup(d, deid_hash_lower(b + t->s, wl)))
			return;
	}
	const struct tok *u = &d->tok[j];
	if (u->mtype || ((u->bits | t->bits) & TB_COVERED) || j == 0)
		return;
	/* not a dose or a value: "Quellidex 2 mcg", "Brellamine 2.5", "X 2/3" */
	if (t->e < d->n && (b[t->e] == '.' || b[t->e] == '/' || b[t->e] == ':' || b[t->e] == '-' || b[t->e] == '%') &&
	    t->e + 1 < d->n && is_alnum((unsigned char)b[t->e + 1]))
		return;
	if (k + 1 < nt && gap_after(d, k) != GAP_NL && tok_in(d, k + 1, units))
		return;
	size_t x = j - 1;
	if (x > 0 && gap_after(d, x) == GAP_SPACE && (tok_is(d, x, "to") || tok_is(d, x, "the")) &&
	    !tok_in(d, x - 1, (const char *const[]){"on", NULL}))
		x--;
	/* a long ward word opening a sentence or after a comma needs no moving word
	 * ("... CP. QUELLHAVEN3 DEVELOPED", "plan: increase dose, brellmoorhaus 2") */
	bool alone = wl >= 7 && ((u->bits & TB_SENT) || gap_after(d, j - 1) == GAP_COMMA) &&
		     /* not "Stoolsx2" (twice), "? BASLINE 1 ST DEGREE" (an ordinal), "X 2 3" */
		     !(t->shape != SH_NUM && lower((unsigned char)b[t->e - 2]) == 'x') &&
		     !(k + 1 < nt && gap_after(d, k) == GAP_SPACE &&
		       (d->tok[k + 1].shape == SH_NUM ||
			tok_in(d, k + 1, (const char *const[]){"st", "nd", "rd", "th", NULL})));
	if (!alone && (gap_after(d, x) == GAP_NL || !tok_in(d, x, moves)))
		return;
	mark(d, j, SALUS_PHI_LOCATION, 0.7f, RULE_LOC_CONTEXT);
}

static void rules(struct salus_deid *d)
{
	size_t nt = d->ntok;
	bool mixed = d->nc == CASE_MIXED;
	if (d->nnames)
		memset(d->names, 0, sizeof d->names);
	d->nnames = 0;
	memset(d->names_pre, 0, sizeof d->names_pre);
	/* CS_TRIG: a word with a DF_TRIGGER flag always passes the trigger filter */
	for (size_t i = next_tok(d, CS_TRIG, 0, nt); i < nt; i = next_tok(d, CS_TRIG, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		if (!tok_alpha(t) || (t->bits & TB_COVERED))
			continue;
		if (!(t->f & DF_LOOKED) && !(t->kw & KW_TRIG))
			continue;
		uint32_t f = tf(d, i);
		if (!(f & DF_TRIGGER))
			continue;
		enum gap g = gap_after(d, i);
		/* "Dr. L. Quubrialtley": a title, an initial with its dot (any letter, though L, R, C... are
		 * also abbreviations) and a capitalised word that is no clinical or closed-class word */
		if ((f & DF_TITLE) && (g == GAP_SPACE || g == GAP_DOT) && t->shape != SH_INIT && i + 2 < nt &&
		    d->tok[i + 1].shape == SH_INIT && gap_after(d, i + 1) == GAP_DOT && !d->tok[i + 2].mtype &&
		    !((d->tok[i + 1].bits | d->tok[i + 2].bits) & TB_COVERED) &&
		    (d->tok[i + 2].shape == SH_CAP || (!mixed && d->tok[i + 2].shape == SH_UPPER)) &&
		    d->tok[i + 2].e - d->tok[i + 2].s >= 2 &&
		    !(tf(d, i + 2) & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_MED | DF_MONTH | DF_STREET)) &&
		    !((tf(d, i + 2) & (DF_COMMON | DF_VOCAB)) && !(tf(d, i + 2) & F_NAME))) {
			mark(d, i + 1, SALUS_PHI_NAME, 0.9f, RULE_TITLE);
			mark(d, i + 2, SALUS_PHI_NAME, 0.9f, RULE_TITLE);
			continue;
		}
		/* Titles: Dr. Smith, MR JONES, dr vascuez */
		if ((f & DF_TITLE) && (g == GAP_SPACE || g == GAP_DOT) && t->shape != SH_INIT) {
			uint32_t nf = i + 1 < nt ? tf(d, i + 1) : 0;
			bool weak = (nf & (DF_COMMON | DF_VOCAB)) && !(nf & F_NAME);
			/* "Dr. Roost": after a title and its dot a capitalised word is a surname */
			if (weak && mixed && g == GAP_DOT && d->tok[i + 1].shape == SH_CAP &&
			    !(nf & (F_FUNC | DF_ABBR | DF_MED | DF_LABEL | DF_INST)))
				weak = false;
			if (ctx_name_ok(d, i + 1, weak ? 2 : 3) && !(nf & DF_TITLE)) {
				mark(d, i + 1, SALUS_PHI_NAME, 0.95f, RULE_TITLE);
				extend_right(d, i + 1, 0.9f, RULE_TITLE, 3);
				if (d->tok[i + 1].shape == SH_INIT && i + 2 < nt && !d->tok[i + 2].mtype &&
				    (cont_ok(d, i + 2) || ((tf(d, i + 2) & F_NAME) && tok_alpha(&d->tok[i + 2]) &&
							   !(tf(d, i + 2) & (F_FUNC | DF_ABBR | DF_LABEL)) &&
							   !(d->tok[i + 2].bits & TB_COVERED))))
					mark(d, i + 2, SALUS_PHI_NAME, 0.9f, RULE_TITLE);
				continue;
			}
		}
		/* "Dr Will Cole", "Dr. May Ostrova": after a title a first name that is also a word,
		 * before a capitalised surname (or a word in no list) written the same way */
		if ((f & DF_TITLE) && (g == GAP_SPACE || g == GAP_DOT) && t->shape != SH_INIT && i + 2 < nt &&
		    !d->tok[i + 1].mtype && gap_after(d, i + 1) == GAP_SPACE &&
		    (d->tok[i + 1].shape == SH_CAP || (!mixed && d->tok[i + 1].shape == SH_UPPER)) &&
		    d->tok[i + 2].shape == d->tok[i + 1].shape && !((d->tok[i + 1].bits | d->tok[i + 2].bits) & TB_COVERED)) {
			uint32_t f1 = tf(d, i + 1), f2 = tf(d, i + 2);
			if ((f1 & DF_FIRST) && !(f1 & (DF_TITLE | DF_ABBR | DF_LABEL | DF_INST | DF_MED)) &&
			    (!tok_in(d, i + 1, modal_verbs) || (mixed && (f2 & F_NAME) && !(f2 & DF_COMMON))) &&
			    d->tok[i + 2].e - d->tok[i + 2].s >= 2 &&
			    !(f2 & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_STREET | DF_MED | DF_MEDPROP | DF_VERB)) &&
			    ((f2 & F_NAME) || !(f2 & (DF_COMMON | DF_VOCAB))) && !med_prefix(d, i + 2)) {
				mark(d, i + 1, SALUS_PHI_NAME, 0.85f, RULE_TITLE);
				mark(d, i + 2, SALUS_PHI_NAME, 0.85f, RULE_TITLE);
				continue;
			}
		}
		/* "NP CAROL ORDERED", "report from rn bea": after a role abbreviation (NP, RN, PA, MD)
		 * a first name, though it is also an English word */
		if ((f & DF_ROLE) && (f & DF_CRED) && t->e - t->s == 2 && g == GAP_SPACE && i + 1 < nt &&
		    !d->tok[i + 1].mtype && !(d->tok[i + 1].bits & TB_COVERED) && d->tok[i + 1].e - d->tok[i + 1].s >= 3 &&
		    (mixed ? d->tok[i + 1].shape == SH_CAP || (t->shape == SH_UPPER && d->tok[i + 1].shape == SH_UPPER)
			   : tok_alpha(&d->tok[i + 1]))) {
			uint32_t f1 = tf(d, i + 1);
			if ((f1 & DF_FIRST) && !(f1 & (F_FUNC | DF_MONTH | DF_ABBR | DF_MED | DF_MEDPROP | DF_LABEL | DF_INST | DF_STREET)) &&
			    !tok_in(d, i + 1, modal_verbs) && !med_prefix(d, i + 1)) {
				mark(d, i + 1, SALUS_PHI_NAME, 0.75f, RULE_RELATION);
				extend_right(d, i + 1, 0.7f, RULE_RELATION, 1);
			}
		}
		/* Labels: "Patient: Ferreira, Ombvessar", "Attending: ...", "Dear Quillon," */
		if ((f & DF_LABEL) && (byte_at(d, t->e) == ':' || tok_is(d, i, "dear") ||
				       (t->e + 1 < d->n && d->b[t->e] == ' ' && d->b[t->e + 1] == ':'))) {
			size_t j = i + 1;
			if (j < nt && (tf(d, j) & DF_TITLE))
				j++;
			/* "Name:" alone on its line: the name is the short line below it */
			bool next_line = gap_after(d, j - 1) == GAP_NL && j == i + 1 && byte_at(d, t->e) == ':' &&
					 newlines_before(d, j) == 1 && line_tokens(d, j) <= 4;
			/* "RE: K 3.2": a letter before a number is a lab value, not an initial */
			bool value = j + 1 < nt && d->tok[j].shape == SH_INIT && d->tok[j + 1].shape == SH_NUM &&
				     gap_after(d, j) == GAP_SPACE;
			/* "re: mi/meds": a topic of a list, not a name */
			bool topic = j < nt && byte_at(d, d->tok[j].e) == '/' && d->tok[j].shape != SH_CAP;
			if (ctx_name_ok(d, j, 2) && !value && !topic && (gap_after(d, j - 1) != GAP_NL || next_line)) {
				mark(d, j, SALUS_PHI_NAME, 0.9f, RULE_LABEL);
				extend_right(d, j, 0.85f, RULE_LABEL, 3);
				/* Last, First */
				size_t k = j;
				while (k + 1 < nt && d->tok[k + 1].mtype)
					k++;
				if (gap_after(d, k) == GAP_COMMA && ctx_name_ok(d, k + 1, 2)) {
					mark(d, k + 1, SALUS_PHI_NAME, 0.85f, RULE_LABEL);
					extend_right(d, k + 1, 0.85f, RULE_LABEL, 2);
				}
			}
			continue;
		}
		/* Address: / City: → the rest of the line; a label alone on its line
		 * ("Address:" then the lines of the address) → the lines below it up to
		 * a blank line or the next "Label:"; indented lines continue an address */
		if ((f & DF_LOCLABEL) && byte_at(d, t->e) == ':') {
			bool block = i + 1 < nt && (d->tok[i + 1].bits & TB_NL) && newlines_before(d, i + 1) == 1;
			size_t lines = 0;
			for (size_t j = i + 1; j < nt && j < i + (block ? 30 : 10); j++) {
				if (d->tok[j].bits & TB_NL) {
					if (j > i + 1 || !block) {
						if (!block && !indented_line(d, j))
							break;
						if (newlines_before(d, j) > 1 || ++lines >= 5 || line_is_label(d, j))
							break;
					}
				}
				if (d->tok[j].shape == SH_UPPER && d->tok[j].e - d->tok[j].s == 2)
					continue; /* a state code is not PHI */
				if (d->tok[j].shape == SH_LOWER && d->tok[j].e - d->tok[j].s == 2 && j > i + 1 &&
				    gap_after(d, j - 1) == GAP_COMMA &&
				    state_code((const char[]){(char)(d->b[d->tok[j].s] - 32), (char)(d->b[d->tok[j].s + 1] - 32)}))
					continue; /* "..., natchitoches, la 71457" in a note in lower case */
				mark(d, j, SALUS_PHI_LOCATION, 0.8f, RULE_LABEL_LOC);
			}
			continue;
		}
		/* Relations and roles: wife Luhoka, DTR PHILOMENA, case manager Bartholomew */
		if (f & (DF_REL | DF_ROLE)) {
			size_t j = i + 1;
			if (j < nt && (g == GAP_SPACE || g == GAP_COMMA || g == GAP_OTHER || g == GAP_HYPHEN) &&
			    (tok_is(d, j, "is") || tok_is(d, j, "named")))
				j++;
			enum gap g2 = j > i + 1 ? gap_after(d, j - 1) : g;
			bool gap_ok = g2 == GAP_SPACE || g2 == GAP_COMMA || (g2 == GAP_OTHER && byte_at(d, d->tok[j - 1].e) == ':');
			/* in lower case after a relation: a first name ("dtr jane"), or a word of 4+ letters in
			 * no list at all ("wife quaibraer"): relations are followed by names, verbs and places */
			bool low = mixed && d->tok[j < nt ? j : i].shape == SH_LOWER && gap_ok &&
				   (lower_name_ok(d, j) ||
				    ((f & DF_REL) && j < nt && !(tf(d, j) & ~DF_LOOKED) && d->tok[j].e - d->tok[j].s >= 4 &&
				     !(d->tok[j].bits & TB_COVERED) && !d->tok[j].mtype && !med_prefix(d, j)));
			if (low) {
				mark(d, j, SALUS_PHI_NAME, 0.7f, RULE_RELATION);
				extend_right(d, j, 0.7f, RULE_RELATION, 1);
			} else if (gap_ok && j < nt && !(tf(d, j) & DF_TITLE) && ctx_name_ok(d, j, 2) &&
			    !(t->shape == SH_LOWER && mixed && d->tok[j].shape != SH_CAP)) {
				bool strongrel = f & DF_REL;
				float c = strongrel ? 0.85f : 0.75f;
				/* a role word with a capitalised word after it in a mixed note is weak evidence */
				uint32_t jf = tf(d, j);
				bool ok = strongrel || (mixed ? d->tok[j].shape == SH_CAP : (jf & F_NAME) && !(jf & DF_VOCAB));
				/* "NURSE KESSOP", "RN QUELLA" in capitals: a word of 4+ letters in no list at all */
				if (!ok && t->shape == d->tok[j].shape &&
				    (t->shape == SH_UPPER || (t->shape == SH_LOWER && d->nc == CASE_LOWER && !(f & DF_ABBR))) &&
				    !(jf & ~DF_LOOKED) &&
				    d->tok[j].e - d->tok[j].s >= 4 && !med_prefix(d, j))
					ok = true;
				if (ok) {
					mark(d, j, SALUS_PHI_NAME, c, RULE_RELATION);
					extend_right(d, j, c, RULE_RELATION, 2);
					/* "sons Smokey, Morris and Roger": the list goes on */
					size_t k = j;
					while (k + 1 < nt && d->tok[k + 1].mtype == SALUS_PHI_NAME + 1)
						k++;
					for (int items = 0; mixed && items < 4 && k + 2 < nt; items++) {
						enum gap gk = gap_after(d, k);
						size_t x = k + 1;
						if (gk == GAP_SPACE && tok_is(d, x, "and"))
							x++;
						else if (gk == GAP_COMMA && tok_is(d, x, "and"))
							x++;
						else if (gk != GAP_COMMA)
							break;
						struct tok *u = &d->tok[x];
						uint32_t uf = tf(d, x);
						if (u->shape != SH_CAP || u->mtype || (u->bits & TB_COVERED) ||
						    (uf & (F_FUNC | DF_ABBR | DF_LABEL | DF_INST | DF_MONTH)) ||
						    ((uf & (DF_COMMON | DF_MED)) && !(uf & F_NAME)))
							break;
						mark(d, x, SALUS_PHI_NAME, c - 0.05f, RULE_RELATION);
						k = x;
					}
				}
			}
		}
		/* Verbs: seen by, spoke with, called, per */
		if (f & DF_VERB) {
			size_t j = i + 1;
			if (j < nt && (tok_is(d, j, "by") || tok_is(d, j, "with") || tok_is(d, j, "to")))
				j++;
			/* "paged H.O. Quellan", "notified MD Quill": a role abbreviation before the name */
			if (j + 1 < nt && gap_after(d, j - 1) == GAP_SPACE && d->tok[j].shape != SH_LOWER &&
			    tok_in(d, j, (const char *const[]){"md", "np", "pa", "ho", "rn", "dr", NULL}) &&
			    gap_after(d, j) == GAP_SPACE && !(tf(d, j + 1) & DF_TITLE))
				j++;
			else if (j + 3 < nt && d->tok[j].shape == SH_INIT && tok_is(d, j, "h") && tok_is(d, j + 1, "o") &&
				 d->b[d->tok[j].e] == '.' && d->tok[j + 1].s == d->tok[j].e + 1 && gap_after(d, j + 1) == GAP_DOT)
				j += 2;
			/* "Dr notified. Heparin held": a verb that ends its sentence; "seen by
			 * Neuro team": a service, not a person */
			if (j < nt && gap_after(d, j - 1) != GAP_NL && !(j == i + 1 && g == GAP_DOT) &&
			    !(tf(d, j) & DF_TITLE) && ctx_name_ok(d, j, 1) && (!mixed || d->tok[j].shape == SH_CAP) &&
			    !(j + 1 < nt && gap_after(d, j) == GAP_SPACE && tok_in(d, j + 1, service))) {
				mark(d, j, SALUS_PHI_NAME, 0.8f, RULE_VERB);
				extend_right(d, j, 0.8f, RULE_VERB, 2);
			} else if (mixed && j < nt && gap_after(d, j - 1) == GAP_SPACE && lower_name_ok(d, j) &&
				   !(j + 1 < nt && gap_after(d, j) == GAP_SPACE && tok_in(d, j + 1, service))) {
				mark(d, j, SALUS_PHI_NAME, 0.7f, RULE_VERB);
				extend_right(d, j, 0.7f, RULE_VERB, 1);
			}
		}
		/* Credentials: "Bartholomew Murost, MD" / "Jane Doe RN" */
		if ((f & DF_CRED) && t->shape != SH_LOWER && i > 0 && !(t->e < d->n && d->b[t->e] == '\'') &&
		    (mixed || (tf(d, i - 1) & F_NAME)) &&
		    /* "RADIAL ALINE, PT." "BIL PT/DP": in a note without case evidence PT, OT, PA... are
		     * abbreviations unless they end the line */
		    (mixed || !(f & DF_ABBR) || i + 1 == nt || (d->tok[i + 1].bits & TB_NL)) &&
		    /* "new PA line", "PA catheter", "PT pressures": a device, not a signature */
		    !(i + 1 < nt && gap_after(d, i) == GAP_SPACE &&
		      (tok_in(d, i + 1, eponym_heads) ||
		       tok_in(d, i + 1, (const char *const[]){"line", "lines", "pressure", "pressures", "cath", NULL})))) {
			enum gap gb = gap_after(d, i - 1);
			/* "SEE PT ADMISSION NOTE", "Right DP, PT": in a mixed note a word in capitals that is
			 * also an English word or an abbreviation before PT/OT/PA is not a signature */
			bool caps_word = mixed && (f & DF_ABBR) && d->tok[i - 1].shape == SH_UPPER &&
					 (tf(d, i - 1) & (DF_COMMON | DF_VOCAB | DF_ABBR | DF_MED));
			if ((gb == GAP_COMMA || gb == GAP_SPACE) && !caps_word && cont_ok(d, i - 1) &&
			    !(tf(d, i - 1) & DF_CRED)) {
				bool strong = gb == GAP_COMMA || t->shape == SH_UPPER;
				if (strong) {
					mark(d, i - 1, SALUS_PHI_NAME, 0.85f, RULE_CRED);
					extend_left(d, i - 1, 0.85f, RULE_CRED, 3);
					if (gb == GAP_COMMA) /* "Jane Roe, MD": the signature is one identifier */
						mark(d, i, SALUS_PHI_NAME, 0.6f, RULE_CRED);
				}
			}
		}
		/* "(wife)", "(RESIDENT)" after a name */
		if ((f & (DF_REL | DF_ROLE)) && t->s > 0 && d->b[t->s - 1] == '(' && i > 0) {
			size_t k = i - 1;
			if (d->tok[k].e + 2 >= t->s && cont_ok(d, k)) {
				mark(d, k, SALUS_PHI_NAME, 0.85f, RULE_PAREN_ROLE);
				extend_left(d, k, 0.85f, RULE_PAREN_ROLE, 2);
			}
		}
		/* Places: lives in X, moved to X, transferred from X */
		if (f & DF_LOCVERB) {
			size_t j = i + 1;
			/* "lives alone in X", "lives with her son in X": an adverb, or "with" and a
			 * relation, between the verb and its preposition */
			bool prep0 = j < nt && tok_in(d, j, loc_preps);
			if (!prep0 && j + 1 < nt && gap_after(d, i) == GAP_SPACE &&
			    tok_in(d, j, (const char *const[]){"alone", "independently", "currently", "now", "still",
							       "locally", "nearby", "together", NULL}))
				j++;
			else if (!prep0 && j + 2 < nt && tok_is(d, j, "with")) {
				size_t q = j + 1;
				if (tok_in(d, q, (const char *const[]){"her", "his", "their", "a", "my", NULL}))
					q++;
				if (q + 1 < nt && (tf(d, q) & DF_REL) && gap_after(d, j) == GAP_SPACE &&
				    gap_after(d, q) == GAP_SPACE && tok_in(d, q + 1, (const char *const[]){"in", "at", NULL}))
					j = q + 1;
			}
			size_t j0 = j;
			while (j < nt && j < j0 + 3 && (tok_in(d, j, loc_preps) || (j > j0 && tok_is(d, j, "the"))))
				j++;
			/* "arrived on Milrinone", "adm on Reopro": after a verb of arriving "on" is a drug;
			 * only living is "on" a place ("lives on Elm Street") */
			bool on_drug = j == j0 + 1 && tok_is(d, j0, "on") &&
				       !tok_in(d, i, (const char *const[]){"lives", "live", "living", "resides", "reside",
									 "residing", NULL});
			/* "clot sent to BB", "sent to lab": specimens are sent to short-named departments */
			bool specimen = tok_is(d, i, "sent") && j < nt &&
					tok_in(d, j, (const char *const[]){"bb", "lab", "labs", "path", "micro", "cyto",
									   "blood", NULL});
			if (j > j0 && j < nt && !on_drug && !specimen && !(tf(d, j) & DF_TITLE))
				place_run(d, j, 0.8f, RULE_LOC_CONTEXT);
		}
		/* Institutions: Calloway Community Clinic, WASHINGTON ADVENTIST HOSP */
		if ((f & DF_INST) && (t->shape == SH_CAP || t->shape == SH_UPPER || d->nc == CASE_LOWER) &&
		    !(f & DF_ABBR)) {
			size_t k = i, specific = 0, words = 0;
			while (k > 0 && words < 5) {
				enum gap gb = gap_after(d, k - 1);
				struct tok *p = &d->tok[k - 1];
				uint32_t pf = tf(d, k - 1);
				if (gb != GAP_SPACE && !(gb == GAP_DOT && tok_is(d, k - 1, "st")) && gb != GAP_HYPHEN)
					break;
				if (p->shape != SH_CAP && p->shape != SH_UPPER && !(tok_is(d, k - 1, "of") && words) &&
				    !(d->nc == CASE_LOWER && p->shape == SH_LOWER))
					break;
				if (pf & (DF_STOP | DF_TITLE | DF_REL | DF_VERB | DF_LOCVERB | DF_LABEL | DF_ABBR) &&
				    !tok_is(d, k - 1, "of"))
					break;
				if (!mixed && (pf & (DF_COMMON | DF_MED)) && !(pf & (DF_PLACE | DF_STATE | F_NAME)) &&
				    !tok_in(d, k - 1, generic_inst) && d->nc != CASE_LOWER)
					break;
				if (p->bits & TB_COVERED)
					break;
				if (!tok_in(d, k - 1, generic_inst) && !tok_is(d, k - 1, "of") && !(pf & DF_INST))
					/* a word in no English list is specific even if the medical
					 * list has it (it holds place names: brookhaven) */
					specific += !(pf & (DF_COMMON | DF_VOCAB)) ? 2 : 1;
				k--;
				words++;
			}
			/* forward: "Hospital of Saint Mary", "Medical Center" */
			size_t e = i;
			while (e + 1 < nt && gap_after(d, e) == GAP_SPACE &&
			       ((tf(d, e + 1) & DF_INST) || (tok_is(d, e + 1, "of") && e + 2 < nt &&
							     d->tok[e + 2].shape == SH_CAP)) &&
			       (d->tok[e + 1].shape == SH_CAP || d->tok[e + 1].shape == SH_UPPER || tok_is(d, e + 1, "of")))
				e++;
			/* "taken to Memorial Hospital", "at Union Memorial": after a place
			 * preposition a name of generic words is a specific place too */
			bool prep = k > 0 && (tok_in(d, k - 1, loc_preps) || byte_at(d, d->tok[k].s - 2) == '@' ||
					      (k > 1 && tok_is(d, k - 1, "the") && tok_in(d, k - 2, loc_preps)));
			if (specific >= 2 || (prep && words >= 1)) {
				for (size_t q = k; q <= e; q++)
					if (!(prep && specific < 2 && q > k &&
					      (((tf(d, q) & DF_INST) && !tok_is(d, q, "memorial")) || tok_is(d, q, "medical"))))
						mark(d, q, SALUS_PHI_LOCATION, 0.85f, RULE_INST);
				i = e;
			}
		}
	}

	/* "admitted to GH", "FROM THE GBMC": a short unknown capital-letter word after at/to/from. */
	for (size_t i = next_tok(d, CS_ATF, 0, nt); i + 1 < nt; i = next_tok(d, CS_ATF, i + 1, nt)) {
		if (!(d->tok[i].kw & KW_ATTOFROM) || !(prep_word(d, i) & (PW_AT | PW_TO | PW_FROM)))
			continue;
		name_home(d, i, nt);
		size_t j = i + 1;
		if (tok_is(d, j, "the") && j + 1 < nt)
			j++;
		struct tok *u = &d->tok[j];
		size_t len = u->e - u->s;
		if (u->shape != SH_UPPER || len < 2 || len > 5 || u->mtype || (u->bits & TB_COVERED) || icu_word(d, u))
			continue;
		uint32_t uf = tf(d, j);
		if (uf & (DF_ABBR | DF_COMMON | DF_VOCAB | DF_MED | DF_STOP | F_FUNC | DF_STATE | DF_INST | DF_PROPER))
			continue;
		/* initials are a hospital after a place verb ("transferred to GH") or
		 * before a unit or department ("GH ER", "GH cath lab") */
		bool verb = i > 0 && place_verb(d, i - 1);
		bool unit = unit_after(d, j);
		bool at = tok_is(d, i, "at") && j == i + 1 && (byte_at(d, u->e) == ',' || byte_at(d, u->e) == '.');
		/* in a note without case evidence: "AT GH.", "FROM THE GBMC," (at, or from the, and initials
		 * that end a clause; not "FROM PYXIS."); verbs and units are loc_after_prep's */
		if (!mixed) {
			if (!((prep_word(d, i) & PW_AT) || ((prep_word(d, i) & PW_FROM) && j == i + 2)) ||
			    !(byte_at(d, u->e) == ',' || byte_at(d, u->e) == '.') ||
			    (byte_at(d, u->e) == '.' && is_alnum((unsigned char)byte_at(d, u->e + 1))) ||
			    (uf & (F_NAME | DF_PLACE)) || med_prefix(d, j))
				continue;
		} else if (!verb && !unit && !at)
			continue;
		mark(d, j, SALUS_PHI_LOCATION, 0.6f, RULE_LOC_CONTEXT);
	}

	/* "E. WELSH", "Z. Miller": an initial, a dot and a name-like word. */
	for (size_t i = next_tok(d, CS_INIT, 0, nt); i + 1 < nt; i = next_tok(d, CS_INIT, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		if (t->shape == SH_LOWER) {
			lower_initial(d, i, nt);
			continue;
		}
		if (t->shape == SH_INIT && gap_after(d, i) == GAP_SPACE) {
			initial_verb(d, i, nt);
			continue;
		}
		if (t->shape != SH_INIT || (t->bits & TB_COVERED) || gap_after(d, i) != GAP_DOT)
			continue;
		if (d->b[t->e + 1] != ' ' || d->tok[i + 1].s != t->e + 2)
			continue; /* exactly ". " */
		if (tf(d, i) & (DF_STOP | DF_ABBR))
			continue; /* "A. fib", "I." */
		/* a letter of a dotted abbreviation ("I.V. ZOFRAN", "T.O. RCA") or after a drug or
		 * medical word ("AMPHO B. AWAITING", "vitamin B. Next") is not a name's initial */
		if (t->s > 0 && (d->b[t->s - 1] == '.' || d->b[t->s - 1] == '&' || d->b[t->s - 1] == '/'))
			continue;
		if (i > 0 && gap_after(d, i - 1) == GAP_SPACE && tok_alpha(&d->tok[i - 1]) &&
		    ((tf(d, i - 1) & (DF_MED | DF_ABBR)) || med_prefix(d, i - 1)) &&
		    !(tf(d, i - 1) & (F_NAME | DF_STOP | DF_COMMON)))
			continue;
		struct tok *u = &d->tok[i + 1];
		uint32_t uf = tf(d, i + 1);
		bool surname = (uf & F_NAME) && !(uf & DF_COMMON); /* "Z. Miller", "E. WELSH" */
		/* a surname that is also a word but that the English list capitalises too
		 * ("Z. MILLER", "R. Baker"); not after L./R. (sides) */
		unsigned char ic = (unsigned char)d->b[t->s];
		char pc = t->s > 0 ? d->b[t->s - 1] : ' ';
		if ((uf & DF_LAST) && (uf & DF_PROPER) && is_upper(ic) && ic != 'L' && ic != 'R' &&
		    (pc == ' ' || pc == '\n' || pc == '\t' || pc == '(')) /* not "Y.O. MAN" */
			surname = true;
		if (u->e - u->s < 3 || (!cont_ok(d, i + 1) && !surname) || ((uf & (DF_COMMON | DF_VOCAB)) && !surname) ||
		    (u->shape != SH_CAP && u->shape != SH_UPPER) || (uf & (F_FUNC | DF_ABBR | DF_LABEL)))
			continue;
		if ((uf & DF_MED) && !(uf & F_NAME))
			continue;
		mark(d, i, SALUS_PHI_NAME, 0.75f, RULE_NEIGHBOUR);
		mark(d, i + 1, SALUS_PHI_NAME, 0.75f, RULE_NEIGHBOUR);
	}

	/* Context rules that each look at a token and its neighbours, in one pass;
	 * each is tried only on the tokens that can start it. */
	for (size_t i = 0; i < nt; i++) {
		const struct tok *t = &d->tok[i];
		if (i + 1 < nt && d->tok[i + 1].shape == SH_UPPER && d->tok[i + 1].e - d->tok[i + 1].s == 2)
			loc_city_state(d, i, nt, mixed);
		if (t->e - t->s <= 4) {
			unsigned pw = prep_word(d, i);
			if (pw & (PW_TO | PW_FROM | PW_AT | PW_ON | PW_PER))
				loc_after_prep(d, i, nt, mixed);
			if (pw & (PW_IN | PW_AT | PW_TO | PW_FROM | PW_NEAR))
				loc_prefix_place(d, i, nt, mixed);
			if (pw & (PW_IN | PW_FROM | PW_OF))
				loc_home(d, i, nt, pw);
			if (mixed && (pw & (PW_IN | PW_FROM | PW_NEAR)))
				loc_caps_after_in(d, i, nt);
			if (!mixed && (pw & (PW_FROM | PW_AT | PW_NEAR)))
				loc_unknown_after(d, i, nt);
		}
		if (t->kw & KW_AWARE)
			name_aware(d, i, nt, mixed);
		if (t->shape == SH_MIX)
			loc_ward(d, i, nt);
		if (t->shape == SH_NUM) {
			if (t->e - t->s == 1)
				loc_ward(d, i, nt);
			loc_address(d, i, nt, mixed);
			if ((t->bits & TB_SENT) && t->e - t->s >= 2 && t->e - t->s <= 3)
				age_lead(d, i, nt);
			if (t->e - t->s == 6)
				date_six(d, i);
			if ((t->e - t->s == 2 && d->b[t->s] == '9') ||
			    (t->e - t->s == 3 && d->b[t->s] == '1' && d->b[t->s + 1] <= '2'))
				age_context(d, i, nt);
			if ((t->e - t->s == 4 && (d->b[t->s] == '1' || d->b[t->s] == '2')) || t->e - t->s == 2)
				year_history(d, i, nt);
		}
		if (i + 1 == nt || (d->tok[i + 1].bits & TB_NL))
			name_signature(d, i, nt, mixed);
		if (t->s > 0 && d->b[t->s - 1] == '(')
			name_paren(d, i, nt, mixed);
		if (t->c0 == 'w' && t->e - t->s == 1)
			name_visit(d, i, nt, mixed);
		if (t->kw & KW_UNIV)
			loc_university(d, i, nt, mixed);
		if ((t->kw & KW_GENINST) && i > 0 && t->e - t->s <= 8 && (t->shape == SH_CAP || t->shape == SH_UPPER))
			loc_generic_inst(d, i);
		if (t->c0 == 'h' && t->e - t->s == 6 && (t->shape == SH_CAP || t->shape == SH_UPPER))
			loc_health_inst(d, i);
		if (mixed && (t->bits & TB_COVERED) && (t->shape == SH_CAP || t->shape == SH_UPPER) &&
		    (tf(d, i) & DF_STREET))
			loc_city_after_street(d, i);
		if (mixed && t->shape == SH_CAP && t->e - t->s >= 3) {
			loc_street_name(d, i);
			if (t->e - t->s <= 9 && (t->c0 == 'a' || t->c0 == 's' || t->c0 == 'u' || t->c0 == 'f'))
				loc_addr_block(d, i, nt);
		}
	}

	/* Dictionary and capitalisation (the tokens that can pass the first tests: CS_DICT in a
	 * mixed note, CS_ALPHA in others). */
	int dcs = mixed ? CS_DICT : CS_ALPHA;
	for (size_t i = next_tok(d, dcs, 0, nt); i < nt; i = next_tok(d, dcs, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		if (t->mtype || !tok_alpha(t) || (t->bits & TB_COVERED) || t->shape == SH_INIT)
			continue;
		/* lower-case words of a mixed note: only months after a date preposition
		 * (first two letters and the word before first, no look-up otherwise) */
		if (mixed && t->shape == SH_LOWER &&
		    !(month_start(t->c0, t->c1) && t->e - t->s >= 3 && t->e - t->s <= 9 && i > 0 &&
		      tok_in(d, i - 1, month_preps)))
			continue;
		/* a word of 2-3 capitals in a mixed note (BP, ICU, NS) can only be a month here (JAN,
		 * MAY): no look-up for the others */
		if (mixed && t->shape == SH_UPPER && t->e - t->s <= 3 && !month_start(t->c0, t->c1))
			continue;
		uint32_t f = tf(d, i);
		/* "in sept.", "since March", "early Jan": a month alone after a date
		 * preposition; not "may" (a verb), "march" only capitalised in a mixed note */
		if ((f & DF_MONTH) && i > 0 && gap_after(d, i - 1) == GAP_SPACE && tok_in(d, i - 1, month_preps) &&
		    !tok_is(d, i, "may") && !(tok_is(d, i, "march") && !(mixed && t->shape == SH_CAP))) {
			mark(d, i, SALUS_PHI_DATE, 0.7f, RULE_MONTH_PREP);
			continue;
		}
		if (mixed && t->shape == SH_LOWER)
			continue;
		bool nd = f & F_NAME;
		bool word = f & (DF_COMMON | DF_STOP | DF_ABBR | DF_MONTH | DF_TITLE | DF_REL | DF_ROLE | DF_CRED |
				 DF_INST | DF_STREET | DF_LABEL | DF_LOCLABEL | DF_MED);
		if (nd && (f & DF_MEDPROP)) {
			/* an eponym: "Parkinson's disease", "Bell palsy", "Foley catheter" are not people */
			bool poss = t->e - t->s > 2 && d->b[t->e - 2] == '\'';
			bool medword = i + 1 < nt && d->tok[i + 1].shape == SH_LOWER &&
				       (tf(d, i + 1) & (DF_MED | DF_COMMON | DF_VOCAB));
			if (poss || medword)
				word = true;
		}
		size_t len = t->e - t->s;
		if (f & DF_STATE)
			word = true; /* a state alone is not PHI under Safe Harbor */
		/* "FROM ROME", "@ BALTIMORE VA" in a note without case evidence: a
		 * proper noun or a city after a place preposition */
		if (!mixed && len >= 4 && (f & (DF_PLACE | DF_PROPER)) &&
		    !(f & (DF_COMMON | DF_VOCAB | DF_MED | DF_FIRST | DF_ABBR | DF_STOP | DF_MONTH | DF_STATE | F_FUNC)) &&
		    i > 0 && (tok_in(d, i - 1, (const char *const[]){"in", "from", "to", "at", "near", NULL}) ||
			      byte_at(d, t->s - 2) == '@' || byte_at(d, t->s - 1) == '@')) {
			mark(d, i, SALUS_PHI_LOCATION, 0.65f, RULE_CITY_DICT);
			continue;
		}
		/* "supportive to pt, John.", "in Lochearn.", "his business Genentech": in a
		 * note written in lower case (sentence starts too) a capitalised word inside
		 * a sentence is a proper noun, though it is also an English word ("Baker") */
		/* an eponym that is also a name ("Baker") is a name unless used as an eponym
		 * ("Baker's cyst", "Bell palsy") */
		bool eponym = (f & DF_MEDPROP) &&
			      (!(f & F_NAME) || (len > 2 && d->b[t->e - 2] == '\'') ||
			       (i + 1 < nt && d->tok[i + 1].shape == SH_LOWER && (tf(d, i + 1) & (DF_MED | DF_COMMON | DF_VOCAB))));
		if (d->nc == CASE_LOWER && t->shape == SH_CAP && !(t->bits & TB_SENT) && len >= 3 && !eponym &&
		    !(f & (DF_MED | DF_ABBR | DF_STOP | DF_MONTH | DF_TITLE | DF_CRED | DF_LABEL |
			   DF_LOCLABEL | DF_STATE | DF_INST | DF_STREET | DF_REL | DF_ROLE | DF_VERB | F_FUNC)) &&
		    /* "Chest PT": a common word that is no name, capitalised as the start of a term */
		    !((f & DF_COMMON) && !(f & F_NAME)) &&
		    !medical_suffix(d, t) && !drug_list(d, i) && !(i > 0 && tok_in(d, i - 1, drug_ctx)) &&
		    !tok_in(d, i, (const char *const[]){"monday", "tuesday", "wednesday", "thursday", "friday",
							"saturday", "sunday", "english", "spanish", NULL})) {
			bool place = i > 0 && tok_in(d, i - 1, loc_preps);
			mark(d, i, place ? SALUS_PHI_LOCATION : SALUS_PHI_NAME, 0.6f, place ? RULE_CITY_DICT : RULE_UNKNOWN_CAP);
			continue;
		}
		if (nd && !word && len >= 2) {
			if (not_a_person(d, i))
				continue;
			if (mixed && t->shape == SH_CAP) {
				if (!(t->bits & TB_SENT))
					mark(d, i, SALUS_PHI_NAME, 0.75f, RULE_DICT_NAME);
				else if (!(f & DF_VOCAB))
					mark(d, i, SALUS_PHI_NAME, 0.65f, RULE_DICT_NAME);
			} else if (len >= 4 && !(f & DF_VOCAB) && (mixed || !(f & DF_PROPER) || (f & DF_FIRST)) &&
				   /* "puls", "dopp", "DELINE": in a note without case evidence a rare name
				    * that starts a medical term is a short form, unless a name is beside it */
				   (mixed || len > 6 || !med_prefix(d, i) || name_beside_nc(d, i))) {
				mark(d, i, SALUS_PHI_NAME, 0.6f, RULE_DICT_NAME);
			}
			continue;
		}
		if (mixed && t->shape == SH_CAP && !(t->bits & TB_SENT) && len >= 3 &&
		    !(f & (DF_COMMON | DF_VOCAB | DF_MED | DF_MEDPROP | DF_ABBR | DF_STOP | DF_MONTH | DF_PROPER |
			   DF_PLACE | DF_STATE | DF_INST | DF_STREET | DF_TITLE | DF_REL | DF_ROLE | DF_CRED | DF_LABEL |
			   DF_LOCLABEL | DF_VERB | DF_LOCVERB)) &&
		    !medical_suffix(d, t) && !(i > 0 && tok_in(d, i - 1, drug_ctx)) && !drug_list(d, i) &&
		    /* "U/O's", "I&O's": a letter or two before 's is an abbreviation */
		    !(len <= 4 && d->b[t->e - 2] == '\'') &&
		    /* "Lcx", "Rll": a short word of left/right without a vowel is an abbreviation
		     * (other letters too may start a vowel-less place: "Vrh", "Brno") */
		    !(len <= 5 && (t->c0 == 'l' || t->c0 == 'r') && !has_vowel(d->b + t->s, len)) &&
		    /* "Vanco", "Dobuta", "Creat": the start of a medical term, unless next to a name */
		    !(med_prefix(d, i) && !name_beside(d, i)) &&
		    !(i + 1 < nt && gap_after(d, i) == GAP_SPACE && tok_in(d, i + 1, service)) &&
		    !(i + 1 < nt && d->tok[i + 1].shape == SH_MIX && gap_after(d, i) == GAP_SPACE) &&
		    /* a dose around it: "10U Lenti", "BUN 10 Creat 0.7", "Natricor .01" */
		    !(i > 0 && gap_after(d, i - 1) == GAP_SPACE &&
		      (d->tok[i - 1].shape == SH_MIX ||
		       (d->tok[i - 1].shape == SH_NUM && i > 1 && (tf(d, i - 2) & DF_ABBR) && !(tf(d, i - 2) & DF_STOP) &&
			tok_alpha(&d->tok[i - 2])))) &&
		    !(i + 1 < nt && d->tok[i + 1].shape == SH_NUM &&
		      (byte_at(d, d->tok[i + 1].e) == '.' || byte_at(d, d->tok[i + 1].s - 1) == '.')) &&
		    !not_a_person(d, i))
			mark(d, i, SALUS_PHI_NAME, 0.55f, RULE_UNKNOWN_CAP);
		/* "Brannoch called this am.", "Quellaby is from Ortigo": a capitalised word in no list at
		 * all opening a sentence, before a verb a person does */
		else if (mixed && t->shape == SH_CAP && (t->bits & TB_SENT) && len >= 4 && !(f & ~DF_LOOKED) &&
			 i + 1 < nt && gap_after(d, i) == GAP_SPACE &&
			 tok_in(d, i + 1, (const char *const[]){"called", "visited", "states", "stated", "said", "came",
								"reports", "reported", "phoned", "asked", "agreed",
								"agrees", "wants", "wanted", "lives", "lived", "works",
								"worked", "notified", "aware", "brought", NULL}) &&
			 !med_prefix(d, i) && !medical_suffix(d, t))
			mark(d, i, SALUS_PHI_NAME, 0.6f, RULE_UNKNOWN_CAP);
		else if ((mixed ? t->shape == SH_CAP && !(t->bits & TB_SENT) : len >= 4 && !(f & DF_VOCAB)) &&
			 (f & DF_PLACE) && !(f & (DF_COMMON | DF_MED)) && i > 0 &&
			 (tok_in(d, i - 1, loc_preps) || byte_at(d, t->s - 2) == '@' || byte_at(d, t->s - 1) == '@'))
			mark(d, i, SALUS_PHI_LOCATION, 0.65f, RULE_CITY_DICT);
	}

	/* Places of several words: "Daytona Beach", "Bel Air", "Middle River",
	 * "Eastern Shore": a place word next to a place-name suffix or prefix. */
	for (size_t i = next_marked(d, 0, nt); i < nt; i = next_marked(d, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		if (t->mtype != SALUS_PHI_LOCATION + 1)
			continue;
		if (i + 1 < nt && !d->tok[i + 1].mtype && gap_after(d, i) == GAP_SPACE &&
		    d->tok[i + 1].shape == t->shape && !(d->tok[i + 1].bits & TB_COVERED) && tok_in(d, i + 1, place_sfx))
			mark(d, i + 1, SALUS_PHI_LOCATION, t->mconf, t->mrule);
		if (i > 0 && !d->tok[i - 1].mtype && (gap_after(d, i - 1) == GAP_SPACE || gap_after(d, i - 1) == GAP_DOT) &&
		    d->tok[i - 1].shape == t->shape && !(d->tok[i - 1].bits & TB_COVERED) && tok_in(d, i - 1, place_pfx))
			mark(d, i - 1, SALUS_PHI_LOCATION, t->mconf, t->mrule);
	}
	/* a name read as a place before a suffix: "Daytona Beach", "Quinlan Heights" */
	for (size_t i = next_marked(d, 0, nt); i + 1 < nt; i = next_marked(d, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		/* a dictionary or capitalised-word name (not one from a title or a relation) */
		bool weak = t->mconf <= 0.65f || t->mrule == RULE_DICT_NAME || t->mrule == RULE_UNKNOWN_CAP;
		if (t->mtype != SALUS_PHI_NAME + 1 || !weak || gap_after(d, i) != GAP_SPACE ||
		    d->tok[i + 1].mtype || d->tok[i + 1].shape != t->shape || !tok_in(d, i + 1, place_sfx) ||
		    !tok_in(d, i + 1, (const char *const[]){"beach", "springs", "falls", "heights", "island", "harbor",
							  "valley", "hills", "creek", NULL}))
			continue;
		t->mtype = SALUS_PHI_LOCATION + 1;
		mark(d, i + 1, SALUS_PHI_LOCATION, t->mconf, t->mrule);
	}

	/* Neighbours of names (twice: "Bartholomew X Y"). */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = next_marked(d, 0, nt); i < nt; i = next_marked(d, i + 1, nt)) {
			struct tok *t = &d->tok[i];
			if (t->mtype != SALUS_PHI_NAME + 1 || t->mconf < 0.55f)
				continue;
			/* "Zoe Young", "Isaac Heath": after a first name written as a name, a
			 * capitalised word that is also an English word (extend_right decides) */
			if (i + 1 < nt && !d->tok[i + 1].mtype &&
			    (!(tf(d, i + 1) & (DF_COMMON | DF_VOCAB)) ||
			     (mixed && t->shape == SH_CAP && d->tok[i + 1].shape == SH_CAP && (tf(d, i) & DF_FIRST) &&
			      (tf(d, i + 1) & DF_LAST))))
				extend_right(d, i, 0.7f, RULE_NEIGHBOUR, 1);
			/* "Elita B Desaulniers", "Hanne I. Kreutzmann": a middle initial between a name
			 * written as a name and a capitalised word that can be a surname */
			if (mixed && t->shape == SH_CAP && i + 2 < nt && !d->tok[i + 1].mtype &&
			    (!d->tok[i + 2].mtype || d->tok[i + 2].mtype == SALUS_PHI_NAME + 1) &&
			    d->tok[i + 1].shape == SH_INIT && gap_after(d, i) == GAP_SPACE &&
			    (gap_after(d, i + 1) == GAP_DOT || (gap_after(d, i + 1) == GAP_SPACE && d->b[d->tok[i + 1].s] != 'I')) &&
			    d->tok[i + 2].shape == SH_CAP && d->tok[i + 2].e - d->tok[i + 2].s >= 2 &&
			    !((d->tok[i + 1].bits | d->tok[i + 2].bits) & TB_COVERED)) {
				uint32_t nf = tf(d, i + 2);
				if (!(nf & (DF_MED | DF_MEDPROP | DF_ABBR | F_FUNC | DF_INST | DF_STREET | DF_VERB | DF_LOCVERB |
					    DF_LABEL | DF_LOCLABEL | DF_STATE)) &&
				    (!(nf & (DF_COMMON | DF_VOCAB)) || (nf & DF_LAST)) && !med_prefix(d, i + 2)) {
					mark(d, i + 1, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
					mark(d, i + 2, SALUS_PHI_NAME, 0.7f, RULE_NEIGHBOUR);
				}
			}
			if (i > 0 && !d->tok[i - 1].mtype && !(tf(d, i - 1) & (DF_COMMON | DF_VOCAB)) &&
			    !(d->tok[i - 1].bits & TB_SENT && mixed && (tf(d, i - 1) & DF_PROPER)))
				extend_left(d, i, 0.7f, RULE_NEIGHBOUR, 1);
			if (mixed && t->shape == SH_CAP && t->mconf >= 0.65f)
				name_list(d, i, nt);
		}

	/* The same word elsewhere in the note: names, and places of a specific word
	 * ("to Quellmoor 4" ... "c/o to quellmoor"), not institution or street words. */
	for (size_t i = next_marked(d, 0, nt); i < nt; i = next_marked(d, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		if (t->mtype == SALUS_PHI_NAME + 1 && t->mconf >= 0.7f && t->shape != SH_INIT &&
		    !(tf(d, i) & (DF_COMMON | DF_STOP | DF_ABBR)))
			add_name_hash(d, i, false); /* tf() computed t->h */
		else if (t->mtype == SALUS_PHI_LOCATION + 1 && t->mconf >= 0.8f &&
			 /* not unit names and initials in capitals (MICU, GH): a word written as a name,
			  * or a long one in a note without case evidence */
			 (t->shape == SH_CAP || (t->shape == SH_UPPER && t->e - t->s >= 7 && !mixed) ||
			  (t->shape == SH_LOWER && t->e - t->s >= 7 && d->nc == CASE_LOWER)) &&
			 !(tf(d, i) & (DF_COMMON | DF_VOCAB | DF_STOP | DF_ABBR | DF_MED | DF_INST | DF_STREET | DF_STATE |
				       F_FUNC)))
			add_name_hash(d, i, true);
	}
	if (d->nnames)
		for (size_t i = 0; i < nt; i++) {
			struct tok *t = &d->tok[i];
			if (t->mtype || !tok_alpha(t) || (t->bits & TB_COVERED) ||
			    !(d->names_pre[NAME_PRE(t->c0, t->c1) / 64] & (1ull << (NAME_PRE(t->c0, t->c1) % 64))))
				continue;
			uint64_t h = name_key(tok_hash(d, i));
			for (size_t k = (h >> 1) & (NAMESET - 1); d->names[k]; k = (k + 1) & (NAMESET - 1))
				if ((d->names[k] & ~1ull) == h) {
					uint32_t f = tf(d, i);
					if (!mixed || t->shape != SH_LOWER || !(f & (DF_VOCAB | DF_COMMON | DF_MED)))
						mark(d, i, (d->names[k] & 1) ? SALUS_PHI_LOCATION : SALUS_PHI_NAME, 0.7f,
						     RULE_REPEAT);
					break;
				}
		}
	/* "SINCERELY, QUELLA VORST, MD": a doctor's degree after a comma that ends a name found by any
	 * rule is part of the signature, in any case (the credential rule above needs a name from
	 * the dictionary in a note without case evidence) */
	for (size_t i = next_marked(d, 0, nt); i + 1 < nt; i = next_marked(d, i + 1, nt)) {
		struct tok *t = &d->tok[i];
		struct tok *c = &d->tok[i + 1];
		if (t->mtype != SALUS_PHI_NAME + 1 || c->mtype ||
		    (d->nc != CASE_LOWER && (t->shape == SH_LOWER || c->shape == SH_LOWER)) || c->e - c->s > 5 || (c->bits & TB_COVERED) || gap_after(d, i) != GAP_COMMA)
			continue;
		/* a doctor's degree (the gold of signed letters keeps it; "J. QUELL, RRT" in a
		 * nursing note keeps only the name) */
		if (!(tf(d, i + 1) & DF_CRED) || !tok_in(d, i + 1, (const char *const[]){"md", "do", "phd", "dds", "dmd",
											 "dpm", NULL}))
			continue;
		/* the credential ends the line or its clause */
		enum gap g = gap_after(d, i + 1);
		if (i + 2 < nt && g != GAP_NL && g != GAP_COMMA && g != GAP_DOT && !(d->tok[i + 2].bits & TB_NL))
			continue;
		mark(d, i + 1, SALUS_PHI_NAME, 0.6f, RULE_CRED);
	}
}

/* ---- merge --------------------------------------------------------------- */

static int cmp_cs(const void *a, const void *b)
{
	const struct cspan *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (x->e != y->e)
		return x->e > y->e ? -1 : 1;
	return 0;
}

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->s != y->s)
		return x->s < y->s ? -1 : 1;
	if (x->e != y->e)
		return x->e > y->e ? -1 : 1;
	return x->pat < y->pat ? -1 : x->pat > y->pat;
}

static bool mergeable_gap(const struct salus_deid *d, size_t a, size_t z, uint8_t type)
{
	if (z < a || z - a > 2)
		return false;
	if (type != SALUS_PHI_NAME && type != SALUS_PHI_LOCATION)
		return false;
	for (size_t k = a; k < z; k++) {
		char c = d->b[k];
		if (c != ' ' && c != '-' && c != '.')
			return false;
	}
	return true;
}

static int finish(struct salus_deid *d, const char *text, size_t len, bool mapped)
{
	if (d->ncs > 1)
		qsort(d->cs, d->ncs, sizeof *d->cs, cmp_cs);
	size_t w = 0;
	for (size_t i = 0; i < d->ncs; i++) {
		struct cspan c = d->cs[i];
		if (c.conf < d->threshold)
			continue;
		if (w > 0) {
			struct cspan *p = &d->cs[w - 1];
			if (c.s < p->e) { /* overlap: the longer span names the type */
				if ((c.e - c.s) > (p->e - p->s) || ((c.e - c.s) == (p->e - p->s) && c.conf > p->conf)) {
					p->type = c.type;
					p->rule = c.rule;
				}
				if (c.e > p->e)
					p->e = c.e;
				if (c.conf > p->conf)
					p->conf = c.conf;
				continue;
			}
			if (c.type == p->type && mergeable_gap(d, p->e, c.s, c.type)) {
				p->e = c.e;
				if (c.conf > p->conf)
					p->conf = c.conf;
				continue;
			}
		}
		d->cs[w++] = c;
	}
	if (grow((void **)&d->out, &d->out_cap, w + 1, sizeof *d->out))
		return SALUS_ENOMEM;
	for (size_t i = 0; i < w; i++) {
		struct cspan *c = &d->cs[i];
		size_t s = c->s, e = c->e;
		if (mapped) {
			s = d->map[s];
			size_t last = d->map[e - 1];
			e = last + 1;
			while (e < len && ((unsigned char)text[e] & 0xC0) == 0x80)
				e++;
			if (i > 0 && s < d->out[i - 1].end)
				s = d->out[i - 1].end;
			if (e <= s)
				continue;
		}
		d->out[d->nout++] = (struct salus_span){s, e, (enum salus_phi)c->type, c->conf, c->rule};
	}
	return 0;
}

int salus_deid_scan(struct salus_deid *d, const char *text, size_t len, const struct salus_span **spans, size_t *n,
		    const char **why)
{
	const char *dummy;
	if (!why)
		why = &dummy;
	if (len > SALUS_MAX_NOTE) {
		*why = "text is longer than the note limit";
		return SALUS_ETOOLARGE;
	}
	bool ascii = true;
	size_t i0 = 0;
	for (; i0 + 8 <= len; i0 += 8) { /* eight bytes at a time: any high bit or zero byte? */
		uint64_t x;
		memcpy(&x, text + i0, 8);
		if ((x & 0x8080808080808080ull) || ((x - 0x0101010101010101ull) & ~x & 0x8080808080808080ull))
			break;
	}
	for (size_t i = i0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		if (c == 0) {
			*why = "text contains a NUL byte";
			return SALUS_EINVALID;
		}
		if (c >= 0x80) {
			ascii = false;
			break;
		}
	}
	if (!ascii && !salus_deid_utf8_valid(text, len, why))
		return SALUS_EINVALID;
	d->ncand = d->ntok = d->ncs = d->nout = 0;
	d->oom = 0;
	if (ascii) {
		d->b = text;
		d->n = len;
	} else {
		int rc = normalise(d, text, len);
		if (rc) {
			*why = rc == SALUS_ENOMEM ? "out of memory" : "text is not valid UTF-8";
			return rc;
		}
	}
	if (d->n) {
		hs_error_t hr = hs_scan(d->db, d->b, (unsigned)d->n, 0, d->scratch, on_match, d);
		if (d->oom)
			return SALUS_ENOMEM;
		if (hr != HS_SUCCESS && hr != HS_SCAN_TERMINATED) {
			*why = "pattern scan failed";
			return SALUS_EINTERNAL;
		}
	}
	int rc = find_starts(d);
	if (rc)
		return rc;
	if ((rc = tokenize(d)))
		return rc;
	if ((rc = weak_labels(d)) || (rc = age_sex_spaced(d)) || (rc = street_cands(d)))
		return rc;
	if (d->ncand > 1)
		qsort(d->cand, d->ncand, sizeof *d->cand, cmp_cand);
	for (size_t i = 0; i < d->ncand; i++)
		if ((rc = do_candidate(d, &d->cand[i])))
			return rc;
	if ((rc = numeric_rules(d)))
		return rc;
	/* tokens inside pattern spans are taken */
	if (d->ncs > 1)
		qsort(d->cs, d->ncs, sizeof *d->cs, cmp_cs);
	/* (from each span: a binary search for its first token, not a walk over every token) */
	for (size_t q = 0; q < d->ncs; q++) {
		if (d->cs[q].rule == RULE_CITY_ZIP)
			continue;
		size_t i = tok_at(d, d->cs[q].s);
		if (i > 0 && d->tok[i - 1].e > d->cs[q].s)
			i--; /* a token that starts before the span and ends inside it */
		for (; i < d->ntok && d->tok[i].s < d->cs[q].e; i++)
			if (d->tok[i].e > d->cs[q].s)
				d->tok[i].bits |= TB_COVERED;
	}
	rules(d);
	for (size_t i = next_marked(d, 0, d->ntok); i < d->ntok; i = next_marked(d, i + 1, d->ntok)) {
		struct tok *t = &d->tok[i];
		/* a name's possessive 's is not part of the name ("at Quell Vorst's house") */
		size_t e = t->e;
		if (t->mtype == SALUS_PHI_NAME + 1 && e - t->s > 3 && d->b[e - 2] == '\'' && lowtab[(unsigned char)d->b[e - 1]] == 's')
			e -= 2;
		if (t->mtype && (rc = push(d, t->s, e, (enum salus_phi)(t->mtype - 1), t->mconf, t->mrule)))
			return rc;
	}
	if ((rc = finish(d, text, len, !ascii)))
		return rc;
	*spans = d->out;
	*n = d->nout;
	return 0;
}
