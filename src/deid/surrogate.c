/*
 * surrogate.c — realistic fake values that keep the shape of the real ones.
 *
 * Every choice is a keyed BLAKE2b hash of (kind, scope, normalised real
 * value), so one real value always gets the same fake within a scope, and the
 * fake is never the real value itself.  Shapes kept: capitalisation, initials,
 * titles and suffixes of names; house numbers, street types and states of
 * addresses; separators and length of phone numbers, SSNs, ZIPs and record
 * numbers (letters stay letters, digits stay digits).  E-mail addresses, URLs
 * and IP addresses become addresses in the ranges reserved for documentation
 * (example.com/.org/.net, RFC 2606; 203.0.113.0/24, RFC 5737; 2001:db8::/32,
 * RFC 3849), and fake SSNs start with 9 (an area never issued), so a
 * surrogate can never be somebody's real contact or number.
 *
 * The name and place lists are short hand-written lists of common US first
 * names, surnames and place-name words (facts, no third-party file).
 */
#include <sodium.h>
#include <string.h>

#include "core/err.h"
#include "deid/transform_int.h"

static const char *const first_names[] = {
	"aaron",   "abigail", "adam",    "adrian",  "alan",    "albert",  "alice",   "amanda",  "amy",
	"andrea",  "andrew",  "angela",  "anna",    "anthony", "arthur",  "barbara", "benjamin", "beth",
	"betty",   "brandon", "brenda",  "brian",   "bruce",   "carl",    "carol",   "caroline", "catherine",
	"charles", "cheryl",  "christina", "claire", "cynthia", "daniel", "deborah", "dennis",  "diana",
	"donald",  "donna",   "dorothy", "douglas", "edward",  "elaine",  "eleanor", "emily",   "eric",
	"eugene",  "evelyn",  "frances", "frank",   "gary",    "george",  "gerald",  "gloria",  "grace",
	"gregory", "hannah",  "harold",  "heather", "helen",   "henry",   "isabel",  "jack",    "jacob",
	"janet",   "janice",  "jason",   "jean",    "jeffrey", "jennifer", "jeremy", "jessica", "joan",
	"joe",     "john",    "jonathan", "joseph", "joshua",  "joyce",   "judith",  "julia",   "julie",
	"justin",  "karen",   "katherine", "keith", "kelly",   "kenneth", "kevin",   "laura",   "lawrence",
	"linda",   "lisa",    "louise",  "margaret", "maria",  "marie",   "mark",    "martha",  "mary",
	"matthew", "megan",   "melissa", "michael", "nancy",   "nathan",  "nicholas", "olivia", "pamela",
	"patricia", "patrick", "paul",   "peter",   "philip",  "rachel",  "ralph",   "raymond", "rebecca",
	"richard", "robert",  "roger",   "ronald",  "rose",    "russell", "ruth",    "samuel",  "sandra",
	"sarah",   "scott",   "sharon",  "shirley", "stephen", "steven",  "susan",   "teresa",  "thomas",
	"timothy", "victoria", "vincent", "virginia", "walter", "wayne",  "william", "zachary",
};

static const char *const surnames[] = {
	"abbott",   "adams",    "alden",    "allen",    "archer",   "bailey",   "baker",    "barnes",
	"bates",    "bennett",  "bishop",   "blake",    "booth",    "bradley",  "brooks",   "burke",
	"burton",   "carter",   "chambers", "chandler", "clarke",   "cole",     "collins",  "conrad",
	"cooper",   "crawford", "cross",    "dalton",   "davies",   "dawson",   "dean",     "dixon",
	"doyle",    "drake",    "dunn",     "easton",   "ellis",    "emerson",  "evans",    "farrell",
	"fischer",  "fleming",  "fletcher", "ford",     "foster",   "fowler",   "fuller",   "garner",
	"gibson",   "gilbert",  "graham",   "grant",    "griffin",  "hale",     "hammond",  "harper",
	"harris",   "hart",     "hayes",    "henson",   "holland",  "holt",     "howard",   "hudson",
	"hughes",   "hunt",     "ingram",   "jacobs",   "jennings", "keller",   "kemp",     "kendall",
	"kirby",    "knight",   "lambert",  "lane",     "lawson",   "lindqvist", "lloyd",   "lowe",
	"lynch",    "mason",    "maxwell",  "mercer",   "miles",    "morgan",   "morrison", "murray",
	"nash",     "newman",   "norris",   "norton",   "oakley",   "osborne",  "owens",    "palmer",
	"parker",   "parsons",  "pearce",   "perry",    "porter",   "preston",  "quinn",    "ramsey",
	"reed",     "reeves",   "rhodes",   "riley",    "rowe",     "russo",    "sawyer",   "shaw",
	"shelton",  "simmons",  "sinclair", "slater",   "spencer",  "stanley",  "steele",   "stone",
	"sutton",   "tanner",   "thornton", "tucker",   "turner",   "vaughn",   "wade",     "walsh",
	"warren",   "watts",    "webb",     "weller",   "wheeler",  "whitman",  "wilkins",  "winslow",
	"wolfe",    "woodward", "wright",   "yates",
};

static const char *const places[] = {
	"ashford",    "ashland",    "bayview",    "beacon",     "bellmont",   "birchwood",  "bradford",
	"briarwood",  "brookfield", "cedarville", "chester",    "clayton",    "clearwater", "clifton",
	"covington",  "crestview",  "dover",      "eastwood",   "edgewater",  "elmhurst",   "fairfield",
	"fairview",   "forestdale", "franklin",   "glendale",   "glenwood",   "greenfield", "hamilton",
	"harmony",    "hartwell",   "hazelton",   "highland",   "hillcrest",  "hollister",  "kingsley",
	"lakeside",   "lakewood",   "lancaster",  "linden",     "lockport",   "maple",      "marlow",
	"meadowbrook", "midvale",   "milford",    "millbrook",  "newbury",    "northgate",  "oakdale",
	"oakridge",   "orchard",    "parkside",   "pinecrest",  "pinehurst",  "pleasant",   "prospect",
	"ridgefield", "ridgeway",   "riverside",  "rockport",   "rosedale",   "salem",      "sherwood",
	"silverton",  "southport",  "springdale", "stonebridge", "summit",    "sunnyside",  "thornbury",
	"valleyview", "waverly",    "westbrook",  "westfield",  "whitfield",  "willow",     "winchester",
	"windham",    "woodbury",   "woodland",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Words that carry no identity and stay as they are. */
static const char *const name_keep[] = {"dr", "mr", "mrs", "ms", "mx", "miss", "prof", "sir", "jr", "sr",
					"ii", "iii", "iv", "md", "rn", "phd", "np", "dds", "do", "pa"};
static const char *const place_keep[] = {
	"street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr",
	"court", "ct", "way", "place", "pl", "terrace", "circle", "cir", "highway", "hwy", "parkway", "pkwy",
	"square", "sq", "trail", "apt", "apartment", "suite", "ste", "unit", "floor", "fl", "room", "rm", "po",
	"box", "north", "south", "east", "west", "n", "s", "e", "w", "ne", "nw", "se", "sw", "of", "the",
	"and", "at", "county", "city", "town", "hospital", "medical", "center", "centre", "clinic", "health",
	"general", "memorial", "university", "regional", "community", "children's", "nursing", "home",
	"rehabilitation", "rehab", "care", "usa", "us",
	/* states (Safe Harbor allows the state) */
	"alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut", "delaware",
	"florida", "georgia", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky",
	"louisiana", "maine", "maryland", "massachusetts", "michigan", "minnesota", "mississippi", "missouri",
	"montana", "nebraska", "nevada", "hampshire", "jersey", "mexico", "york", "carolina", "dakota", "ohio",
	"oklahoma", "oregon", "pennsylvania", "rhode", "island", "tennessee", "texas", "utah", "vermont",
	"virginia", "washington", "wisconsin", "wyoming", "new",
	"al", "ak", "az", "ar", "ca", "co", "ct", "de", "fl", "ga", "hi", "id", "il", "in", "ia", "ks", "ky",
	"la", "me", "md", "ma", "mi", "mn", "ms", "mo", "mt", "ne", "nv", "nh", "nj", "nm", "ny", "nc", "nd",
	"oh", "ok", "or", "pa", "ri", "sc", "sd", "tn", "tx", "ut", "vt", "va", "wa", "wv", "wi", "wy", "dc",
};

static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static bool is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
static bool is_lower(unsigned char c) { return c >= 'a' && c <= 'z'; }
static bool is_wordc(unsigned char c) { return is_upper(c) || is_lower(c) || c >= 0x80; }
static char to_lower(char c) { return is_upper((unsigned char)c) ? (char)(c - 'A' + 'a') : c; }
static char to_upper(char c) { return is_lower((unsigned char)c) ? (char)(c - 'a' + 'A') : c; }

static bool word_in(const char *w, size_t n, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(list[i]) == n && !strncmp(list[i], w, n))
			return true;
	return false;
}

static uint64_t u64(const unsigned char *h)
{
	uint64_t x = 0;
	for (int i = 0; i < 8; i++)
		x = (x << 8) | h[i];
	return x;
}

enum wcase { WC_TITLE, WC_UPPER, WC_LOWER };

static enum wcase case_of(const char *w, size_t n)
{
	bool up = true, low = true;
	size_t letters = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)w[i];
		if (is_upper(c)) {
			low = false;
			letters++;
		} else if (is_lower(c)) {
			up = false;
			letters++;
		}
	}
	if (letters > 1 && up)
		return WC_UPPER;
	if (letters && low)
		return WC_LOWER;
	return WC_TITLE;
}

static int add_cased(struct salus_buf *out, const char *w, enum wcase c)
{
	int rc = 0;
	for (size_t i = 0; w[i] && !rc; i++) {
		char ch = w[i];
		if (c == WC_UPPER || (c == WC_TITLE && (i == 0 || w[i - 1] == '\'' || w[i - 1] == '-')))
			ch = to_upper(ch);
		rc = salus_buf_addc(out, ch);
	}
	return rc;
}

/* Pick list[hash(kind, scope, lower(w))], never equal to lower(w). */
static int pick(const struct salus_deid_xform_opts *o, const char *kind, const char *w, size_t n,
		const char *const *list, size_t count, const char **res /* OUT */)
{
	char low[128];
	unsigned char h[16];
	if (n >= sizeof low)
		n = sizeof low - 1;
	for (size_t i = 0; i < n; i++)
		low[i] = to_lower(w[i]);
	low[n] = 0;
	int rc = salus_xf_hash(o, kind, o->scope ? o->scope : "", low, n, h, sizeof h);
	if (rc)
		return rc;
	size_t k = (size_t)(u64(h) % count);
	if (!strcmp(list[k], low))
		k = (k + 1) % count;
	*res = list[k];
	return 0;
}

/* Fake letters/digits with the same layout as v; digit and letter streams come
 * from the hash of the whole normalised value so that "123-45-6789" and
 * "123 45 6789" share their fake digits. */
static int fake_chars(const struct salus_deid_xform_opts *o, const char *kind, const char *v, size_t n,
		      bool ssn, struct salus_buf *out)
{
	unsigned char h[64];
	char norm[256];
	size_t nn = 0;
	for (size_t i = 0; i < n && nn < sizeof norm; i++)
		if (is_digit((unsigned char)v[i]) || is_upper((unsigned char)v[i]) || is_lower((unsigned char)v[i]))
			norm[nn++] = to_upper(v[i]);
	int rc = salus_xf_hash(o, kind, o->scope ? o->scope : "", norm, nn, h, sizeof h);
	if (rc)
		return rc;
	size_t start = out->n, k = 0, first_digit = (size_t)-1;
	bool same = true;
	for (size_t i = 0; i < n && !rc; i++) {
		unsigned char c = (unsigned char)v[i];
		char f = (char)c;
		if (is_digit(c) || is_upper(c) || is_lower(c)) {
			unsigned char r = h[k % sizeof h];
			if (k >= sizeof h) /* long values: mix in the position */
				r = (unsigned char)(r * 31u + (unsigned char)k);
			k++;
			if (is_digit(c)) {
				f = (char)('0' + r % 10);
				if (first_digit == (size_t)-1) {
					first_digit = out->n;
					if (ssn)
						f = '9';
				}
			} else if (is_upper(c)) {
				f = (char)('A' + r % 26);
			} else {
				f = (char)('a' + r % 26);
			}
			if (f != (char)c)
				same = false;
		}
		rc = salus_buf_addc(out, f);
	}
	if (!rc && same && out->n > start) { /* never hand back the real value */
		for (size_t i = out->n; i-- > start;) {
			char *c = &out->p[i];
			if (is_digit((unsigned char)*c)) {
				*c = (char)('0' + (*c - '0' + 1) % 10);
				break;
			}
			if (is_upper((unsigned char)*c) || is_lower((unsigned char)*c)) {
				*c = (char)(*c == 'z' ? 'a' : *c == 'Z' ? 'A' : *c + 1);
				break;
			}
		}
	}
	return rc;
}

static int sur_name(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	int rc = 0;
	size_t i = 0;
	while (i < n && !rc) {
		unsigned char c = (unsigned char)v[i];
		if (!is_wordc(c)) {
			rc = salus_buf_addc(out, (char)c);
			i++;
			continue;
		}
		size_t s = i;
		while (i < n && (is_wordc((unsigned char)v[i]) ||
				 (v[i] == '\'' && i + 1 < n && is_wordc((unsigned char)v[i + 1]) && i > s)))
			i++;
		size_t len = i - s;
		char low[32];
		size_t ln = len < sizeof low ? len : sizeof low - 1;
		for (size_t k = 0; k < ln; k++)
			low[k] = to_lower(v[s + k]);
		if (len > 1 && len < sizeof low && word_in(low, ln, name_keep, COUNT(name_keep)) &&
		    (i < n && v[i] == '.' ? true : is_upper((unsigned char)v[s]))) {
			rc = salus_buf_add(out, v + s, len);
			continue;
		}
		if (len == 1 && (is_upper(c) || is_lower(c))) { /* an initial */
			unsigned char h[16];
			rc = salus_xf_hash(o, "initial", o->scope ? o->scope : "", low, 1, h, sizeof h);
			if (rc)
				break;
			char f = (char)('a' + h[0] % 25);
			if (f >= low[0])
				f++;
			rc = salus_buf_addc(out, is_upper(c) ? to_upper(f) : f);
			continue;
		}
		const char *fake;
		bool first = word_in(low, ln, first_names, COUNT(first_names));
		rc = pick(o, "name", v + s, len, first ? first_names : surnames,
			  first ? COUNT(first_names) : COUNT(surnames), &fake);
		if (!rc)
			rc = add_cased(out, fake, case_of(v + s, len));
	}
	return rc;
}

static int sur_place(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	int rc = 0;
	size_t i = 0;
	while (i < n && !rc) {
		unsigned char c = (unsigned char)v[i];
		if (is_digit(c)) {
			size_t s = i;
			while (i < n && is_digit((unsigned char)v[i]))
				i++;
			rc = fake_chars(o, "house", v + s, i - s, false, out);
			continue;
		}
		if (!is_wordc(c)) {
			rc = salus_buf_addc(out, (char)c);
			i++;
			continue;
		}
		/* a run of words that are not kept: one fake place word */
		size_t s = i, e = i, last_end = i;
		char key[256];
		size_t kn = 0;
		while (e < n) {
			size_t ws = e;
			while (e < n && (is_wordc((unsigned char)v[e]) || v[e] == '\'' || v[e] == '.'))
				e++;
			size_t wn = e - ws;
			while (wn && v[ws + wn - 1] == '.')
				wn--;
			char low[32];
			size_t ln = wn < sizeof low ? wn : sizeof low - 1;
			for (size_t k = 0; k < ln; k++)
				low[k] = to_lower(v[ws + k]);
			if (wn == 0 || word_in(low, ln, place_keep, COUNT(place_keep)))
				break;
			for (size_t k = 0; k < ln && kn < sizeof key - 1; k++)
				key[kn++] = low[k];
			if (kn < sizeof key - 1)
				key[kn++] = ' ';
			last_end = ws + wn;
			size_t sp = e;
			while (sp < n && v[sp] == ' ')
				sp++;
			if (sp == e || sp >= n || !is_wordc((unsigned char)v[sp]))
				break;
			e = sp;
		}
		if (last_end == s) { /* a kept word (street type, state...) */
			e = s;
			while (e < n && (is_wordc((unsigned char)v[e]) || v[e] == '\''))
				e++;
			rc = salus_buf_add(out, v + s, e - s);
			i = e;
			continue;
		}
		const char *fake;
		rc = pick(o, "place", key, kn, places, COUNT(places), &fake);
		if (!rc)
			rc = add_cased(out, fake, case_of(v + s, last_end - s));
		i = last_end;
	}
	return rc;
}

static int sur_email(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	static const char *const dom[] = {"example.com", "example.org", "example.net"};
	unsigned char h[16];
	int rc = salus_xf_hash(o, "email", o->scope ? o->scope : "", v, n, h, sizeof h);
	if (rc)
		return rc;
	const char *f = first_names[u64(h) % COUNT(first_names)];
	const char *s = surnames[u64(h + 8) % COUNT(surnames)];
	bool dotted = memchr(v, '.', n) && (const char *)memchr(v, '.', n) < (const char *)memchr(v, '@', n);
	if (dotted)
		return salus_buf_addf(out, "%s.%s@%s", f, s, dom[h[15] % 3]);
	return salus_buf_addf(out, "%c%s@%s", f[0], s, dom[h[15] % 3]);
}

static int sur_url(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	static const char *const dom[] = {"example.com", "example.org", "example.net"};
	unsigned char h[16];
	int rc = salus_xf_hash(o, "url", o->scope ? o->scope : "", v, n, h, sizeof h);
	if (rc)
		return rc;
	size_t i = 0;
	const char *colon = memchr(v, ':', n);
	if (colon && (size_t)(colon - v) + 2 < n && colon[1] == '/' && colon[2] == '/') {
		i = (size_t)(colon - v) + 3;
		rc = salus_buf_add(out, v, i);
	}
	bool www = n - i >= 4 && !strncmp(v + i, "www.", 4);
	size_t host_end = i;
	while (host_end < n && v[host_end] != '/' && v[host_end] != '?' && v[host_end] != '#')
		host_end++;
	if (!rc)
		rc = salus_buf_addf(out, "%s%s", www ? "www." : "", dom[h[0] % 3]);
	if (!rc && host_end + 1 < n)
		rc = salus_buf_addf(out, "/%02x%02x%02x%02x", h[1], h[2], h[3], h[4]);
	return rc;
}

static int sur_ip(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	unsigned char h[16];
	int rc = salus_xf_hash(o, "ip", o->scope ? o->scope : "", v, n, h, sizeof h);
	if (rc)
		return rc;
	if (memchr(v, ':', n))
		return salus_buf_addf(out, "2001:db8::%x", (unsigned)((h[0] << 8) | h[1]) | 1u);
	return salus_buf_addf(out, "203.0.113.%u", 1u + h[0] % 254u);
}

int salus_xf_surrogate(const struct salus_deid_xform_opts *o, enum salus_phi t, const char *v, size_t n,
		       struct salus_buf *out)
{
	switch (t) {
	case SALUS_PHI_NAME:
		return sur_name(o, v, n, out);
	case SALUS_PHI_LOCATION:
		return sur_place(o, v, n, out);
	case SALUS_PHI_EMAIL:
		if (!memchr(v, '@', n))
			break;
		return sur_email(o, v, n, out);
	case SALUS_PHI_URL:
		return sur_url(o, v, n, out);
	case SALUS_PHI_IP:
		return sur_ip(o, v, n, out);
	case SALUS_PHI_SSN:
		return fake_chars(o, "ssn", v, n, true, out);
	case SALUS_PHI_PHONE:
		return fake_chars(o, "phone", v, n, false, out);
	case SALUS_PHI_ZIP:
		return fake_chars(o, "zip", v, n, false, out);
	case SALUS_PHI_ID:
		return fake_chars(o, "id", v, n, false, out);
	default:
		break;
	}
	return SALUS_EINVALID;
}

int salus_xf_pseudonym(const struct salus_deid_xform_opts *o, const char *v, size_t n, struct salus_buf *out)
{
	char norm[256];
	size_t nn = 0;
	unsigned char h[16];
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (is_digit(c) || is_upper(c) || is_lower(c) || c >= 0x80) {
			if (nn == sizeof norm) { /* long values: fold the rest in */
				break;
			}
			norm[nn++] = to_upper((char)c);
		}
	}
	int rc;
	if (nn == sizeof norm) /* rare: hash the raw value so long ids stay distinct */
		rc = salus_xf_hash(o, "pseudonym", NULL, v, n, h, sizeof h);
	else
		rc = salus_xf_hash(o, "pseudonym", NULL, norm, nn, h, sizeof h);
	if (rc)
		return rc;
	return salus_buf_addf(out, "ID-%02x%02x%02x%02x%02x", h[0], h[1], h[2], h[3], h[4]);
}

/* 45 CFR 164.514(b)(2)(i)(B) and HHS OCR, "Guidance Regarding Methods for
 * De-identification of PHI" (2012, Safe Harbor section): the 17 three-digit
 * ZIP prefixes whose areas held 20,000 people or fewer in the 2000 Census;
 * their ZIP3 becomes 000.  See docs/deid-transforms.md. */
static const char restricted_zip3[][4] = {"036", "059", "063", "102", "203", "556", "692", "790", "821",
					  "823", "830", "831", "878", "879", "884", "890", "893"};

bool salus_xf_zip3_restricted(const char *zip3)
{
	for (size_t i = 0; i < COUNT(restricted_zip3); i++)
		if (!strncmp(zip3, restricted_zip3[i], 3))
			return true;
	return false;
}

int salus_xf_zip3(const char *v, size_t n, struct salus_buf *out)
{
	if (n < 5)
		return SALUS_EINVALID;
	for (size_t i = 0; i < 5; i++)
		if (!is_digit((unsigned char)v[i]))
			return SALUS_EINVALID;
	if (n > 5 && is_digit((unsigned char)v[5]))
		return SALUS_EINVALID;
	if (salus_xf_zip3_restricted(v))
		return salus_buf_adds(out, "000");
	return salus_buf_add(out, v, 3);
}
