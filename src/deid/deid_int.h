/*
 * deid_int.h — internals of the de-identification detector shared by
 * detect.c, dict.c and the build-time generators in tools/ (never included
 * from other modules).
 *
 * It holds the one table of Hyperscan patterns (DEID_PATTERNS), compiled at
 * build time by tools/gen_deid_hsdb.c into a serialized database, the
 * dictionary flag bits and the word hash shared with tools/gen_deid_dict.c.
 */
#ifndef SALUS_DEID_INT_H
#define SALUS_DEID_INT_H
#include <stddef.h>
#include <stdint.h>

/* ---- dictionary -------------------------------------------------------- */

/* Flag bits of a dictionary word (a word may carry several). */
#define DF_FIRST    (1u << 0)  /* first name (@stdlib, propernames) */
#define DF_LAST     (1u << 1)  /* person name, mostly surnames (@cspell/dict-people-names) */
#define DF_COMMON   (1u << 2)  /* common English word (SCOWL english-words <= 35) */
#define DF_VOCAB    (1u << 3)  /* any lower-case English word (wamerican) */
#define DF_MED      (1u << 4)  /* medical term or drug (hunspell-en-med, lower case) */
#define DF_MEDPROP  (1u << 5)  /* medical eponym / brand (hunspell-en-med, capitalised) */
#define DF_PLACE    (1u << 6)  /* city (miscfiles cities.dat) */
#define DF_ABBR     (1u << 7)  /* clinical abbreviation (lexicon) */
#define DF_STOP     (1u << 8)  /* function word (lexicon) */
#define DF_TITLE    (1u << 9)  /* Dr, Mr, Mrs... */
#define DF_REL      (1u << 10) /* wife, son, HCP... */
#define DF_ROLE     (1u << 11) /* attending, resident, RN... */
#define DF_CRED     (1u << 12) /* MD, RN, PhD after a name */
#define DF_VERB     (1u << 13) /* seen, spoke, called, paged... */
#define DF_LOCVERB  (1u << 14) /* lives, resides, moved, born... */
#define DF_INST     (1u << 15) /* Hospital, Clinic, Center... */
#define DF_STREET   (1u << 16) /* Street, Ave, Road... */
#define DF_MONTH    (1u << 17) /* month names */
#define DF_PROPER   (1u << 18) /* capitalised English word (wamerican: places, brands, names) */
#define DF_STATE    (1u << 19) /* US state or Canadian province name (miscfiles) */
#define DF_LABEL    (1u << 20) /* Patient, Attending, Contact... before ":" */
#define DF_LOCLABEL (1u << 21) /* Address, City... before ":" */
#define DF_MEDPFX   (1u << 22) /* a 4-6 letter start of a longer medical term (Vanco, Dobuta, Creat): only in
				* the second table (salus_deid_medpfx, deid_medpfx_lookup) */
#define DF_LOOKED   (1u << 31) /* detect.c: flags of this token were looked up */

/* FNV-1a 64 of a lower-cased word: the dictionary key. */
static inline uint64_t deid_hash_step(uint64_t h, unsigned char c)
{
	return (h ^ c) * 0x100000001b3ull;
}
#define DEID_HASH_INIT 0xcbf29ce484222325ull
static inline uint64_t deid_hash_bytes(const char *s, size_t n)
{
	uint64_t h = DEID_HASH_INIT;
	for (size_t i = 0; i < n; i++)
		h = deid_hash_step(h, (unsigned char)s[i]);
	return h;
}

/* Flags that make a word a context trigger (title, relation, label...): the
 * rules ask every token whether it is one, so a small bit filter on
 * (first, second, last letter, length) answers "no" without hashing. */
#define DF_TRIGGER (DF_TITLE | DF_REL | DF_ROLE | DF_CRED | DF_VERB | DF_LOCVERB | DF_INST | DF_LABEL | DF_LOCLABEL)
#define DEID_TRIGGER_BITS 15
static inline unsigned deid_trigger_key(unsigned char c0, unsigned char c1, unsigned char cl, size_t n)
{
	return (((unsigned)c0 * 131u + (unsigned)c1) * 131u + (unsigned)cl + (unsigned)n * 7919u) &
	       ((1u << DEID_TRIGGER_BITS) - 1);
}
extern const uint64_t salus_deid_trigger_filter[(1u << DEID_TRIGGER_BITS) / 64];

/* dict.c: flags of a word hash, 0 when unknown.  Generated table in deid_dict_data.c. */
uint32_t deid_dict_lookup(uint64_t h);
/* DF_MEDPFX when h is the hash of a 4-6 letter start of a medical term, else 0 (a small
 * second table, so the main one keeps its load). */
uint32_t deid_medpfx_lookup(uint64_t h);
extern const unsigned salus_deid_medpfx_bits;
extern const uint64_t salus_deid_medpfx[];
extern const unsigned salus_deid_dict_bits;
extern const size_t salus_deid_dict_words;
extern const uint64_t salus_deid_dict[];

/* ---- patterns ---------------------------------------------------------- */

/* Pattern flags: "c" caseless; "t" found on tokens by detect.c (weak_labels), not
 * in the block database: its short caseless words ("pt", "bed", "#") start the
 * automaton everywhere in nursing notes (13 % of the scan).  Its start-of-match
 * database is still built (unused) so pattern numbers and offsets stay aligned. */

/* What detect.c does with a match. */
enum deid_act {
	ACT_SPAN,      /* the match is the span */
	ACT_PHONE7,    /* 555-1234, not a range of measurements "SVR 954-1183" */
	ACT_NUMID,     /* number-like ID: not inside a run of numbers, at least 7 digits */
	ACT_NUMDATE,   /* numeric date: one separator, not inside a run of numbers */
	ACT_STREET,    /* street address: not "3 WAY FOLEY IN PLACE" */
	ACT_PARTIAL,   /* month/day without year: reject fractions and scores */
	ACT_YEAR_APOS, /* '95 or 95': the two digits, not a foot mark */
	ACT_YEAR_CTX,  /* "in 1998": the year only, not a 24-hour time */
	ACT_YEAR,      /* 1960-1999 alone: not followed by a unit */
	ACT_TAIL,      /* label + value: the span starts at the first value char */
	ACT_LABEL_ID,  /* label only: read the identifier that follows */
	ACT_LAST4,     /* "last four of SSN: 6789": the four digits at the end */
	ACT_AGE,       /* number + "yo": the number */
	ACT_AGE_WORD,  /* "ninety-two year": the number words */
	ACT_AGE_WORD_L, /* "aged ninety-two": the number words after the label */
	ACT_ZIPSTATE,  /* "ST 12345": the ZIP, and the city before ", ST" */
	ACT_CITY,      /* "City, Statename": the city */
	ACT_URL,       /* trim trailing punctuation */
	ACT_IP6,       /* trim a leading non-address char */
	ACT_HASHID,    /* "#rg17": at least 4 chars after '#' */
};

#define RX_SP "[ \\t]"
#define RX_SPNL "[ \\t\\r\\n]" /* a blank or a line break (address lines) */
#define RX_MON "(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sept?(ember)?|oct(ober)?|nov(ember)?|dec(ember)?)"
#define RX_MONC "(Jan(uary)?|JAN(UARY)?|Feb(ruary)?|FEB(RUARY)?|Mar(ch)?|MAR(CH)?|Apr(il)?|APR(IL)?|May|MAY|June?|JUNE?|July?|JULY?|Aug(ust)?|AUG(UST)?|Sept?(ember)?|SEPT?(EMBER)?|Oct(ober)?|OCT(OBER)?|Nov(ember)?|NOV(EMBER)?|Dec(ember)?|DEC(EMBER)?)"
#define RX_DAY "(0?[1-9]|[12][0-9]|3[01])"
#define RX_MM "(0?[1-9]|1[0-2])"
#define RX_Y4 "(1[89][0-9]{2}|20[0-9]{2})"
#define RX_ORD "(st|nd|rd|th|ST|ND|RD|TH)?"
#define RX_STATES "(AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR)"
#define RX_STATENAMES "(Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming)"
#define RX_STREETSFX "(Street|St|Avenue|Ave|Av|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Alley|Row|Loop|Pike|Plaza|Crescent|Close|Path|Run|Walk|Broadway|Turnpike|Expressway|STREET|ST|AVENUE|AVE|ROAD|RD|BOULEVARD|BLVD|LANE|LN|DRIVE|DR|COURT|CT|WAY|PLACE|PL|TERRACE|CIRCLE|PARKWAY|HIGHWAY|HWY)"
#define RX_HEX4 "[0-9A-Fa-f]{1,4}"
#define RX_OCT "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|0?[1-9]?[0-9]|00[0-9])"

/* X(ENUM, "name", type, act, confidence, "flags", "regex")
 * flags: "c" caseless.  Every pattern is compiled with start-of-match.
 * The order is the rule id shown by --explain (append, never reorder). */
#define DEID_PATTERNS(X)                                                                                      \
	X(DATE_NUM, "date.m/d/y", DATE, ACT_NUMDATE, 0.95f, "", "\\b" RX_MM "[/.-]" RX_DAY "[/.-](" RX_Y4 "|[0-9]{2})\\b") \
	X(DATE_DMY, "date.d/m/yyyy", DATE, ACT_NUMDATE, 0.9f, "", "\\b" RX_DAY "[/.-]" RX_MM "[/.-]" RX_Y4 "\\b")         \
	X(DATE_ISO, "date.iso", DATE, ACT_NUMDATE, 0.97f, "", "\\b" RX_Y4 "[-/.]" RX_MM "[-/.]" RX_DAY "\\b")             \
	X(DATE_ISO_T, "date.iso-time", DATE, ACT_SPAN, 0.97f, "",                                                    \
	  "\\b" RX_Y4 "-" RX_MM "-" RX_DAY "T[0-2][0-9](:[0-5][0-9]){1,2}(\\.[0-9]+)?(Z|[+-][0-9]{2}:?[0-9]{2})?")          \
	X(DATE_MD, "date.m/d", DATE, ACT_PARTIAL, 0.8f, "", "\\b" RX_MM "/" RX_DAY "\\b")                               \
	X(DATE_MY, "date.m/yyyy", DATE, ACT_NUMDATE, 0.9f, "", "\\b" RX_MM "[/-]" RX_Y4 "\\b")                         \
	X(DATE_MY2, "date.m/yy", DATE, ACT_PARTIAL, 0.7f, "", "\\b" RX_MM "/(3[2-9]|[4-9][0-9]|0[0-9])\\b")              \
	X(DATE_MON_D, "date.month-day", DATE, ACT_SPAN, 0.92f, "c",                                                  \
	  "\\b" RX_MON "\\.?" RX_SP "{0,2}" RX_DAY RX_ORD "\\b(,?" RX_SP "{0,2}(" RX_Y4 "|'[0-9]{2}))?")              \
	X(DATE_MON_Y, "date.month-year", DATE, ACT_SPAN, 0.9f, "c",                                                  \
	  "\\b" RX_MON "\\.?,?" RX_SP "{0,2}(of" RX_SP "{1,2})?(" RX_Y4 "|'[0-9]{2})\\b")                              \
	X(DATE_D_MON, "date.day-month", DATE, ACT_SPAN, 0.9f, "",                                                   \
	  "\\b" RX_DAY RX_ORD RX_SP "{0,2}(of" RX_SP "{1,2})?(" RX_MONC "\\b\\.?(,?" RX_SP "{0,2}" RX_Y4 "\\b)?|"      \
	  RX_MON "\\.?,?" RX_SP "{1,2}" RX_Y4 "\\b)")                                                                  \
	X(DATE_D_MON_DASH, "date.dd-mon", DATE, ACT_SPAN, 0.9f, "c",                                                \
	  "\\b" RX_DAY "[-/]" RX_MON "([-/](" RX_Y4 "|[0-9]{2}))?\\b")                                                \
	X(DATE_MON_DASH_Y, "date.mon-yy", DATE, ACT_SPAN, 0.85f, "c", "\\b" RX_MON "[-/](" RX_DAY "[-/])?(" RX_Y4 "|[0-9]{2})\\b")     \
	X(YEAR_APOS, "date.'yy", DATE, ACT_YEAR_APOS, 0.7f, "", "'[0-9]{2}\\b")                                        \
	X(YEAR_APOS2, "date.yy'", DATE, ACT_YEAR_APOS, 0.6f, "", "\\b[0-9]{2}'")                                       \
	X(YEAR_CTX, "date.year-in-context", DATE, ACT_YEAR_CTX, 0.75f, "c",                                          \
	  "\\b(in|since|during|of|year|yr|circa|early|late|mid|spring|summer|fall|autumn|winter|until|by|from|to|"   \
	  "and|born|dated|class)" RX_SP "{1,2}" RX_Y4 "\\b")                                                         \
	X(YEAR, "date.year", DATE, ACT_YEAR, 0.6f, "", "\\b19[6-9][0-9]\\b")                                           \
	X(PHONE_US, "phone.nanp", PHONE, ACT_SPAN, 0.95f, "",                                                        \
	  "(\\+?1[ .-]?)?(\\([0-9]{3}\\)|\\b[0-9]{3})[ ./-]{0,2}[0-9]{3}[ ./-]{0,2}[0-9]{4}(" RX_SP "?(x|ext\\.?|extension)" \
	  RX_SP "?[0-9]{1,5})?\\b")                         \
	X(PHONE_7, "phone.local", PHONE, ACT_PHONE7, 0.8f, "", "\\b[0-9]{3}[-.][0-9]{4}\\b")                            \
	X(PHONE_INTL, "phone.intl", PHONE, ACT_SPAN, 0.9f, "",                                                       \
	  "\\+[0-9]{1,3}[ .-]?(\\([0-9]{1,4}\\)[ .-]?)?[0-9]{1,4}([ .-]?[0-9]{2,5}){1,5}(x[0-9]{1,5})?\\b")                          \
	X(PHONE_LABEL, "phone.labelled", PHONE, ACT_TAIL, 0.9f, "c",                                                 \
	  "\\b(phone|tel|telephone|cell|cellular|mobile|pager|beeper|bpr|pgr|pg|beep|fax|ext|extension)" RX_SP       \
	  "{0,2}(#|no\\.?|number|num|:|=)?(" RX_SP "{0,3}|" RX_SP "{0,3}\\r?\\n" RX_SP "{0,3})[0-9(+][0-9 ().-]{3,20}[0-9]")                                 \
	X(EMAIL, "email", EMAIL, ACT_SPAN, 0.99f, "",                                                                \
	  "[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\\.[A-Za-z0-9-]+)*\\.[A-Za-z]{2,}\\b")                                      \
	X(URL_SCHEME, "url.scheme", URL, ACT_URL, 0.99f, "c", "\\b(https?|ftp)://[^\\s<>\"']+")                         \
	X(URL_WWW, "url.www", URL, ACT_URL, 0.95f, "c", "\\bwww\\.[^\\s<>\"']+")                                        \
	X(URL_DOMAIN, "url.domain", URL, ACT_URL, 0.85f, "c",                                                        \
	  "\\b[A-Za-z0-9][A-Za-z0-9-]*(\\.[A-Za-z0-9-]+)*\\.(com|org|net|edu|gov|mil|io|co|us|uk|de|fr|info|biz|"     \
	  "health|me|ca|au|nl|es|it|ch|ly|app|dev|ai)\\b(/[^\\s<>\"']*)?")                                             \
	X(IPV4, "ip.v4", IP, ACT_SPAN, 0.97f, "", "\\b" RX_OCT "(\\." RX_OCT "){3}\\b")                                \
	X(IPV6_COMP, "ip.v6-compressed", IP, ACT_IP6, 0.9f, "",                                                      \
	  "\\b(" RX_HEX4 ":){1,6}(:" RX_HEX4 "){1,6}\\b")                                                              \
	X(IPV6_LEAD, "ip.v6-leading", IP, ACT_IP6, 0.85f, "", "(^|[^:0-9A-Fa-f])::" RX_HEX4 "(:" RX_HEX4 "){0,6}\\b")   \
	X(SSN, "ssn.dashed", SSN, ACT_SPAN, 0.97f, "", "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b")                              \
	X(SSN_LABEL, "ssn.labelled", SSN, ACT_TAIL, 0.97f, "c",                                                      \
	  "\\b(ssn|ss#|ss" RX_SP "?no|social" RX_SP "+security(" RX_SP "+(number|no|#))?)\\.?" RX_SP "{0,2}[:#]?" RX_SP \
	  "{0,3}[0-9]{3}[ -]?[0-9]{2}[ -]?[0-9]{4}\\b")                                                               \
	X(SSN_MASKED, "ssn.masked", SSN, ACT_TAIL, 0.95f, "", "[xX*#]{3}-[xX*#]{2}-[0-9]{4}\\b")                        \
	X(SSN_LAST4, "ssn.last-four", SSN, ACT_LAST4, 0.9f, "c",                                                     \
	  "\\b(last" RX_SP "+(4|four)" RX_SP "+(digits" RX_SP "+)?(of" RX_SP "+)?((the|his|her|their|your|my)" RX_SP  \
	  "+)?(ssn|ss#|social" RX_SP "+security(" RX_SP "+(number|no|#))?|social)|(ssn|social" RX_SP "+security("     \
	  RX_SP "+number)?)" RX_SP "+(ending|ends)" RX_SP "+(in|with))" RX_SP "{0,2}(is|:|=|#)?" RX_SP               \
	  "{0,3}[0-9]{4}\\b")                                                                                         \
	X(CARD_AMEX, "id.card-amex", ID, ACT_SPAN, 0.9f, "", "\\b3[47][0-9]{2}[ -]?[0-9]{6}[ -]?[0-9]{5}\\b")          \
	X(HASH_ID, "id.hash-number", ID, ACT_HASHID, 0.6f, "", "#" RX_SP "?[A-Za-z0-9-]*[0-9][A-Za-z0-9-]*")           \
	X(ID_LABEL, "id.labelled", ID, ACT_LABEL_ID, 0.9f, "c",                                                      \
	  "\\b(mr#|(mrn|mr" RX_SP "?no|medical" RX_SP "+record|acct|account|member" RX_SP "?id|member|subscriber|"    \
	  "policy|insurance|insurer|beneficiary|medicare|medicaid|claim|licen[cs]e|lic|dl|driver'?s" RX_SP           \
	  "+licen[cs]e|plate|vin|vehicle|serial|sn|device|implant|pacemaker|npi|dea|passport|badge|employee|"        \
	  "identifier|ref|reference|confirmation|accession|specimen|tracking|invoice|chart|id|uid|pid|certificate|cert|"              \
	  "health" RX_SP "+plan)\\b)(" RX_SP "+(id|identification|number|num|no|nbr|#|code))?\\.?" RX_SP "{0,2}[:#=]?")    \
	X(ID_LABEL_WEAK, "id.labelled-weak", ID, ACT_LABEL_ID, 0.85f, "ct",                                           \
	  "\\b(case|unit|visit|encounter|record|patient|pt|lot|model|order|group|plan|room|bed|account)" RX_SP         \
	  "{0,2}(id|identification|number|num|no\\.|nbr|#)" RX_SP "{0,2}[:#=]?")                                     \
	X(AGE_YO, "age.years-old", AGE, ACT_AGE, 0.95f, "c",                                                         \
	  "\\b(9[0-9]|1[0-2][0-9])" RX_SP "{0,2}-?" RX_SP "{0,2}(y/o|y\\.o\\.?|yo|yrs?\\.?|years?|yr)(" RX_SP          \
	  "{0,2}-?" RX_SP "{0,2}old)?\\b")                                                                            \
	X(AGE_LABEL, "age.labelled", AGE, ACT_AGE, 0.95f, "c",                                                       \
	  "\\b(age|aged|ages|age/sex|age/gender|turned|turns|turning)" RX_SP "{0,2}:?" RX_SP "{0,2}(9[0-9]|1[0-2][0-9])\\b") \
	X(AGE_SEX, "age.number-sex", AGE, ACT_AGE, 0.9f, "", "\\b(9[0-9]|1[0-2][0-9])(M|F|y|Y|yom|yof|YOM|YOF|yo[mf]|YO[MF])\\b") \
	X(AGE_SEX_SP, "age.number-sex-spaced", AGE, ACT_AGE, 0.85f, "ct",                                              \
	  "\\b(9[0-9]|1[0-2][0-9])" RX_SP "{1,2}(m|f|male|female|man|woman|gentleman|lady|yo)" RX_SP                 \
	  "{1,2}(with|w/|who|presenting|presents|s/p|h/o|hx|admitted|transferred|brought|here)\\b")                   \
	X(AGE_WORD_LABEL, "age.words-labelled", AGE, ACT_AGE_WORD_L, 0.9f, "c",                                      \
	  "\\b(age|aged|age/sex|turned|turns)" RX_SP "{0,2}:?" RX_SP "{0,2}(ninety|one" RX_SP "hundred(" RX_SP "and)?)" \
	  "([- ](one|two|three|four|five|six|seven|eight|nine))?\\b")                                                 \
	X(AGE_WORD, "age.words", AGE, ACT_AGE_WORD, 0.9f, "c",                                                       \
	  "\\b(ninety|one" RX_SP "hundred(" RX_SP "and)?)([- ](one|two|three|four|five|six|seven|eight|nine))?[- ]"   \
	  "(years?|yrs?|y/o)")                                                                                        \
	X(ZIP_STATENAME, "zip.after-state-name", ZIP, ACT_ZIPSTATE, 0.95f, "",                                       \
	  "\\b" RX_STATENAMES ",?" RX_SP "{1,2}[0-9]{5}(-[0-9]{4})?\\b")                                               \
	X(ZIP4, "zip.plus4", ZIP, ACT_SPAN, 0.85f, "", "\\b[0-9]{5}-[0-9]{4}\\b")                                       \
	X(ZIP_LABEL, "zip.labelled", ZIP, ACT_TAIL, 0.95f, "c",                                                      \
	  "\\b(zip|zip" RX_SP "?code|zipcode|postal" RX_SP "+code)" RX_SP "{0,2}(:|#|is)?" RX_SP "{0,2}[0-9]{3,5}([ -]?[0-9]{2,4})?\\b") \
	X(CITY_STATE, "location.city-state", LOCATION, ACT_CITY, 0.85f, "",                                          \
	  "\\b[A-Z][a-z]+(" RX_SP "[A-Z][a-z]+){0,2}," RX_SP "?" RX_STATENAMES "\\b")                                  \
	X(STREET, "location.street", LOCATION, ACT_STREET, 0.9f, "t",                                                   \
	  "\\b[0-9]{1,6}[A-Za-z]?" RX_SP "{1,2}(([NSEW]|North|South|East|West|NE|NW|SE|SW)\\.?" RX_SP "{1,2})?"      \
	  "(([A-Z][A-Za-z'-]*|[0-9]{1,3}(st|nd|rd|th))\\.?" RX_SP "{1,2}){1,4}" RX_STREETSFX "\\b\\.?"                 \
	  "(,?" RX_SP "{1,2}(Apt|Apartment|Suite|Ste|Unit|APT|SUITE|#)\\.?" RX_SP "{0,2}#?[A-Za-z0-9-]+)?")           \
	X(PO_BOX, "location.po-box", LOCATION, ACT_SPAN, 0.95f, "c", "\\bp\\.?" RX_SP "?o\\.?" RX_SP "{0,2}box" RX_SP "{0,2}[0-9]+\\b") \
	X(APT, "location.apartment", LOCATION, ACT_SPAN, 0.8f, "",                                                   \
	  "\\b(Apt|Apartment|Suite|Ste|APT|SUITE)\\.?" RX_SP "{0,2}#?" RX_SP "{0,2}[A-Za-z]?[0-9]+[A-Za-z]?\\b") \
	X(MILITARY, "location.military-address", LOCATION, ACT_SPAN, 0.9f, "c",                                      \
	  "\\b((psc|unit|cmr)" RX_SP "{1,2}[0-9]{3,5},?" RX_SPNL "{1,2}box" RX_SP "{1,2}[0-9]{3,5}|"                     \
	  "(uss|usns|usnv|uscgc)" RX_SP "{1,2}[a-z]+(" RX_SP "[a-z]+)?),?" RX_SPNL "{1,2}(apo|fpo|dpo)" RX_SP "{1,2}" \
	  "(aa|ae|ap)" RX_SP "{1,2}[0-9]{5}\\b")

enum deid_pat {
#define DEID_PAT_ENUM(e, n, t, a, c, f, r) PAT_##e,
	DEID_PATTERNS(DEID_PAT_ENUM)
#undef DEID_PAT_ENUM
	PAT__COUNT
};

/* Context and dictionary rules, numbered after the patterns (span.rule). */
#define DEID_RULES(X)                                                         \
	X(TITLE, "name.after-title", "a title (Dr, Mr, Mrs...) precedes it")        \
	X(RELATION, "name.after-relation", "a relation or role word precedes it")   \
	X(VERB, "name.after-verb", "seen by / spoke with / called... precedes it")  \
	X(LABEL, "name.after-label", "a field label (Patient:, Attending:...)")     \
	X(CRED, "name.before-credential", "followed by a credential (MD, RN...)")   \
	X(PAREN_ROLE, "name.before-role", "followed by (wife), (resident)...")      \
	X(DICT_NAME, "name.dictionary", "a first name or surname, not a common word") \
	X(NEIGHBOUR, "name.neighbour", "capitalised word next to a name")           \
	X(UNKNOWN_CAP, "name.unknown-capitalised", "capitalised, in no English or medical list") \
	X(REPEAT, "name.repeated", "the same word was found as a name (or a specific place) elsewhere in the note") \
	X(LOC_CONTEXT, "location.after-context", "lives in / moved to / from...")   \
	X(INST, "location.institution", "capitalised words ending in Hospital, Clinic...") \
	X(CITY_DICT, "location.city-dictionary", "a city name in context")          \
	X(CITY_ZIP, "location.city-before-state", "the city of City, ST 12345")     \
	X(LABEL_ID, "id.after-label", "the value after MRN:, Account #...")         \
	X(LABEL_LOC, "location.after-label", "the value after Address:, City:...")   \
	X(NUM_GROUPS, "phone.digit-groups", "9-15 digits in groups of 2-4 (51 516 33 75)") \
	X(NUM_SSN, "ssn.spaced", "123 45 6789")                                       \
	X(NUM_CARD, "id.card-number", "four groups of four digits")                   \
	X(NUM_LONG, "id.long-number", "a number of 7 or more digits")                 \
	X(NUM_ALNUM, "id.letters-digits", "up to 4 letters then 5 or more digits (AB12345, AB-12345)") \
	X(NUM_MIXED, "id.mixed", "digits, letters, digits (12AB3456)")                \
	X(NUM_VIN, "id.vin", "17 capital letters and digits with 3+ digits")          \
	X(NUM_IBAN, "id.iban", "2 letters, 2 digits, then groups of 4") \
	X(ID_DASHED, "id.dashed", "AB12-34-5678: 2-5 capitals/digits, then two dashed digit groups, 7+ digits") \
	X(IPV6_FULL, "ip.v6", "eight groups of 1-4 hex digits separated by ':'")     \
	X(ZIP_STATE, "zip.after-state", "a ZIP after a state code (MA 02118), and the city before it") \
	X(DATE_DASH, "date.m-d-after-prep", "m-d after on/since/until/from (on 4-12), not a range of a unit") \
	X(PHONE_CALL, "phone.after-call", "digit groups after call/reach/answering... at/on (call me on 450 0840)") \
	X(MONTH_PREP, "date.month-after-prep", "a month alone after in/since/until/early/late... (in Sept.)") \
	X(AGE_LEAD, "age.sentence-start", "90-119 opening a sentence before s/p, h/o, w/, with, who... (93 s/p fall)") \
	X(YEAR_HIST, "date.year-after-history", "a year after a past procedure or diagnosis (s/p CABG 1957, PMH MI 92)") \
	X(DATE_GLUED, "date.m/yy-glued", "a month/year glued to the word before it (fx4/97)") \
	X(ADDR_BLOCK, "location.address-block", "house number, street, city and postcode around an Apt/Suite/Unit number") \
	X(AGE_CTX, "age.in-context", "90-125 as a person's age: he is 102, died at 94, age of 97, (M, 93), Name (95)") \
	X(NAME_HOME, "name.possessive-home", "one or two words before 's house/home/apartment after at/to/from") \
	X(DATE_SIX, "date.mmddyy-after-word", "six digits MMDDYY after a date word (DOB 052647)")

enum deid_rule {
	RULE__FIRST = PAT__COUNT - 1,
#define DEID_RULE_ENUM(e, n, d) RULE_##e,
	DEID_RULES(DEID_RULE_ENUM)
#undef DEID_RULE_ENUM
	RULE__END
};

/* Checksum of the pattern table, so a stale serialized database is never used. */
static inline uint64_t deid_patterns_hash(void)
{
	uint64_t h = DEID_HASH_INIT;
#define DEID_PAT_HASH(e, n, t, a, c, f, r)                 \
	{                                                  \
		const char *s_ = r f;                      \
		while (*s_)                                \
			h = deid_hash_step(h, (unsigned char)*s_++); \
		h = deid_hash_step(h, 0);                  \
	}
	DEID_PATTERNS(DEID_PAT_HASH)
#undef DEID_PAT_HASH
	return h;
}

/* Generated by tools/gen_deid_hsdb.c: the serialized Hyperscan databases. */
extern const unsigned char salus_deid_hsdb[];
extern const size_t salus_deid_hsdb_len;
extern const size_t salus_deid_hsdb_off[PAT__COUNT + 2]; /* [0] all patterns, [1+i] pattern i with SOM */
extern const uint32_t salus_deid_hs_width[PAT__COUNT];    /* max match width (UINT32_MAX: unbounded) */
extern const uint64_t salus_deid_hsdb_patterns_hash;

#endif
