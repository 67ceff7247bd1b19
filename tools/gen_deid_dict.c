/*
 * gen_deid_dict.c — build-time generator of the de-identification dictionary.
 *
 * Reads the pinned word lists (Debian wamerican/scowl/miscfiles/hunspell-en-med,
 * npm @stdlib first names and @cspell/dict-people-names, and tools/deid-lexicon.txt)
 * and writes a C file holding one open-addressing hash table: each slot is
 * (upper 32 bits of the FNV-1a 64 hash of the lower-cased word) << 32 | flag bits.
 * src/deid/dict.c probes it with the same hash (deid_int.h: deid_hash_*).  The
 * table is static data, so nothing is parsed or compiled when salus starts.
 *
 * usage: gen_deid_dict OUT.c SPEC...   SPEC = MODE:FLAGS:PATH
 *   MODE  txt (one word a line, '#' comments), gz (same, gzip), case (lower-case
 *         entries get FLAGS, capitalised ones get the second flag set after '+'),
 *         hun (hunspell .dic: strip /affixes, case split like `case`; the 4-6 letter
 *         starts of lower-case terms go to a second table, salus_deid_medpfx), cities
 *         (miscfiles cities.dat.gz "Name : X"), postal (miscfiles na.postalcodes.gz
 *         "XX:Name"), lex (the lexicon: "@SECTION" headers name the flag).
 *   FLAGS a number (decimal), or A+B for `case` and `hun`.
 * A missing input file is a warning (the build then lacks that list) so a
 * partial machine still builds; scripts/deps.sh installs every package.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/deid/deid_int.h"

#define TBITS 19
#define TSIZE (1u << TBITS)
static uint64_t table[TSIZE];
static size_t nwords;
/* The starts of medical terms: a second, small table, looked up only for
 * capitalised words in no list, so the main table keeps its load. */
#define PBITS 17
#define PSIZE (1u << PBITS)
static uint64_t ptable[PSIZE];
static size_t npfx;
static uint64_t trig[(1u << DEID_TRIGGER_BITS) / 64];

static void add_word(const char *w, size_t n, uint32_t flags)
{
	char low[128];
	size_t m = 0;
	while (n && (w[n - 1] == '.' || w[n - 1] == ',' || isspace((unsigned char)w[n - 1])))
		n--;
	if (n == 0 || n >= sizeof low)
		return;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		if (c >= 0x80 || isalnum(c) || c == '\'')
			low[m++] = (char)tolower(c);
		else
			return; /* multi-part entries are split by the caller */
	}
	if (m >= 2 && low[m - 2] == '\'' && low[m - 1] == 's')
		return; /* possessive forms are looked up without 's */
	if (flags & DF_TRIGGER) {
		unsigned k = deid_trigger_key((unsigned char)low[0], m > 1 ? (unsigned char)low[1] : 0,
					      (unsigned char)low[m - 1], m);
		trig[k / 64] |= 1ull << (k % 64);
	}
	uint64_t h = deid_hash_bytes(low, m);
	uint32_t fp = (uint32_t)(h >> 32);
	if (fp == 0)
		fp = 1;
	for (uint32_t i = (uint32_t)h & (TSIZE - 1);; i = (i + 1) & (TSIZE - 1)) {
		if (table[i] == 0) {
			if (++nwords > TSIZE * 6 / 10) {
				fprintf(stderr, "gen_deid_dict: table full\n");
				exit(1);
			}
			table[i] = ((uint64_t)fp << 32) | flags;
			return;
		}
		if ((uint32_t)(table[i] >> 32) == fp) {
			table[i] |= flags;
			return;
		}
	}
}

/* Split a phrase on spaces and hyphens and add each part. */
static void add_phrase(const char *s, uint32_t flags)
{
	while (*s) {
		while (*s == ' ' || *s == '-' || *s == '\t')
			s++;
		const char *e = s;
		while (*e && *e != ' ' && *e != '-' && *e != '\t' && *e != '\n' && *e != '\r')
			e++;
		if (e > s)
			add_word(s, (size_t)(e - s), flags);
		if (!*e || *e == '\n' || *e == '\r')
			break;
		s = e;
	}
}

/* Add the 4-6 letter starts of a single lower-case word (a strict prefix) to the prefix table. */
static void add_prefixes(const char *w)
{
	size_t n = strlen(w);
	for (size_t i = 0; i < n; i++)
		if (!islower((unsigned char)w[i]))
			return;
	for (size_t k = 4; k <= 6 && k < n; k++) {
		uint64_t h = deid_hash_bytes(w, k);
		uint32_t fp = (uint32_t)(h >> 32);
		if (fp == 0)
			fp = 1;
		for (uint32_t i = (uint32_t)h & (PSIZE - 1);; i = (i + 1) & (PSIZE - 1)) {
			if (ptable[i] == 0) {
				if (++npfx > PSIZE * 6 / 10) {
					fprintf(stderr, "gen_deid_dict: prefix table full\n");
					exit(1);
				}
				ptable[i] = ((uint64_t)fp << 32) | DF_MEDPFX;
				break;
			}
			if ((uint32_t)(ptable[i] >> 32) == fp)
				break;
		}
	}
}

static uint32_t lex_flag(const char *name)
{
	static const struct {
		const char *n;
		uint32_t f;
	} map[] = {{"TITLE", DF_TITLE}, {"REL", DF_REL},   {"ROLE", DF_ROLE},     {"CRED", DF_CRED},
		   {"VERB", DF_VERB},   {"LOCVERB", DF_LOCVERB}, {"INST", DF_INST}, {"STREET", DF_STREET},
		   {"MONTH", DF_MONTH}, {"ABBR", DF_ABBR}, {"STOP", DF_STOP}, {"LABEL", DF_LABEL}, {"LOCLABEL", DF_LOCLABEL}};
	for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(map[i].n, name))
			return map[i].f;
	fprintf(stderr, "gen_deid_dict: unknown lexicon section %s\n", name);
	exit(1);
}

static void load(const char *mode, const char *flagspec, const char *path)
{
	char cmd[4200];
	FILE *f;
	int piped = !strcmp(mode, "gz") || !strcmp(mode, "cities") || !strcmp(mode, "postal");
	uint32_t f1 = (uint32_t)strtoul(flagspec, NULL, 10), f2 = 0;
	const char *plus = strchr(flagspec, '+');
	if (plus)
		f2 = (uint32_t)strtoul(plus + 1, NULL, 10);
	if (piped) {
		snprintf(cmd, sizeof cmd, "gzip -dc '%s'", path);
		f = fopen(path, "rb");
		if (f) {
			fclose(f);
			f = popen(cmd, "r");
		}
	} else {
		f = fopen(path, "r");
	}
	if (!f) {
		fprintf(stderr, "gen_deid_dict: warning: %s missing, list skipped\n", path);
		return;
	}
	char line[4096];
	uint32_t lexf = 0;
	int first = 1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!strcmp(mode, "lex")) {
			if (line[0] == '#' || !line[0])
				continue;
			if (line[0] == '@') {
				lexf = lex_flag(line + 1);
				continue;
			}
			add_phrase(line, lexf);
			continue;
		}
		if (!strcmp(mode, "cities")) {
			if (!strncmp(line, "Name", 4) && strchr(line, ':'))
				add_phrase(strchr(line, ':') + 1, f1);
			continue;
		}
		if (!strcmp(mode, "postal")) {
			char *c = strchr(line, ':');
			if (line[0] != '#' && c)
				add_phrase(c + 1, f1);
			continue;
		}
		if (line[0] == '#' || !line[0])
			continue;
		if (!strcmp(mode, "hun")) {
			if (first) { /* the word count, or a header line */
				first = 0;
				continue;
			}
			if (line[0] == ' ' || line[0] == '\t')
				continue;
			line[strcspn(line, "/")] = 0;
		}
		uint32_t fl = f1;
		if ((!strcmp(mode, "case") || !strcmp(mode, "hun")) && isupper((unsigned char)line[0]))
			fl = f2;
		if (fl)
			add_phrase(line, fl);
		/* clinical short forms are the start of a medical term or drug
		 * (vanco, dobuta, creat): the lower-case terms' 4-6 letter starts */
		if (!strcmp(mode, "hun") && fl == f1 && (fl & DF_MED))
			add_prefixes(line);
	}
	if (piped)
		pclose(f);
	else
		fclose(f);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: gen_deid_dict OUT.c MODE:FLAGS:PATH...\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		char spec[4200];
		snprintf(spec, sizeof spec, "%s", argv[i]);
		char *a = strchr(spec, ':');
		char *b = a ? strchr(a + 1, ':') : NULL;
		if (!b) {
			fprintf(stderr, "gen_deid_dict: bad spec %s\n", argv[i]);
			return 2;
		}
		*a = 0;
		*b = 0;
		load(spec, a + 1, b + 1);
	}
	/* hunspell-en-med lists many personal names in lower case (amy, andrew,
	 * lisa...), which would make them medical terms: a first name that is in no
	 * English word list keeps its name flags only */
	size_t unmed = 0;
	for (uint32_t i = 0; i < TSIZE; i++) {
		uint32_t fl = (uint32_t)table[i];
		if (table[i] && (fl & DF_FIRST) && (fl & DF_MED) && !(fl & (DF_COMMON | DF_VOCAB | DF_ABBR))) {
			table[i] &= ~(uint64_t)DF_MED;
			unmed++;
		}
	}
	FILE *o = fopen(argv[1], "w");
	if (!o) {
		perror(argv[1]);
		return 1;
	}
	fprintf(o, "/* Generated by tools/gen_deid_dict.c from pinned word lists; do not edit. */\n"
		   "#include <stdint.h>\n#include \"deid/deid_int.h\"\n"
		   "const unsigned salus_deid_dict_bits = %u;\nconst size_t salus_deid_dict_words = %zu;\n"
		   "const uint64_t salus_deid_dict[%uu] = {\n",
		TBITS, nwords, TSIZE);
	for (uint32_t i = 0; i < TSIZE; i++)
		if (table[i])
			fprintf(o, "[%u]=0x%llxull,\n", i, (unsigned long long)table[i]);
	fprintf(o, "};\nconst unsigned salus_deid_medpfx_bits = %u;\nconst uint64_t salus_deid_medpfx[%uu] = {\n", PBITS,
		PSIZE);
	for (uint32_t i = 0; i < PSIZE; i++)
		if (ptable[i])
			fprintf(o, "[%u]=0x%llxull,\n", i, (unsigned long long)ptable[i]);
	fprintf(o, "};\nconst uint64_t salus_deid_trigger_filter[%u] = {", (1u << DEID_TRIGGER_BITS) / 64);
	for (unsigned i = 0; i < (1u << DEID_TRIGGER_BITS) / 64; i++)
		fprintf(o, "0x%llxull,%s", (unsigned long long)trig[i], i % 8 == 7 ? "\n" : "");
	fprintf(o, "};\n");
	if (fclose(o)) {
		perror(argv[1]);
		return 1;
	}
	fprintf(stderr, "gen_deid_dict: %zu words (%zu first names not medical terms), %zu starts of medical terms\n",
		nwords, unmed, npfx);
	return 0;
}
