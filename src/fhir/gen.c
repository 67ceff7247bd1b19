/*
 * gen.c — synthetic demo patients (see gen.h).
 *
 * A seeded splitmix64 stream drives every choice, so output depends only on
 * the seed and the reference "today".  Each patient is planned first (birth,
 * encounter dates, conditions) and then emitted in dependency order.  Numbers
 * are kept to multiples of 0.25 (or integers) so they print exactly with any
 * JSON serializer.  Code lists below are demo seeds: common SNOMED CT, LOINC
 * and RxNorm codes with their display names; name and place lists are
 * everyday words, not a dictionary of real people.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/gen.h"

#define NPRAC 6
#define MAX_ENC 160 /* up to 5 per 3 years over SALUS_GEN_MAX_YEARS (150) */
#define MAX_COND 4
#define ID_LEN 37
#define DAY_MS 86400000LL
#define DEFAULT_TODAY_MS 1751284800000LL /* 2025-06-30T12:00:00Z */
#define MAX_NOTE (64u * 1024)

#define SID "https://salus.example/fhir/sid/"
#define SNOMED "http://snomed.info/sct"
#define LOINC "http://loinc.org"
#define UCUM "http://unitsofmeasure.org"
#define RXNORM "http://www.nlm.nih.gov/research/umls/rxnorm"
#define OBS_CAT "http://terminology.hl7.org/CodeSystem/observation-category"
#define XHTML "<div xmlns=\"http://www.w3.org/1999/xhtml\">"

struct salus_gen {
	uint64_t s;           /* splitmix64 state */
	int64_t today_ms;
	int years;            /* history span (salus_gen_opts.years) */
	bool shared_done;     /* Organization and Practitioners emitted */
	char org_id[ID_LEN];
	char prac_id[NPRAC][ID_LEN];
	const char *prac_name[NPRAC]; /* "Dr. Given Family" display */
	char prac_display[NPRAC][64];
	size_t nres, npat;
	salus_gen_cb cb;
	void *ctx;
};

/* ---- seed lists --------------------------------------------------------- */

static const char *const female[] = {"Mary", "Linda", "Susan", "Karen", "Nancy", "Lisa", "Emily", "Olivia",
				     "Emma", "Sophia", "Grace", "Chloe", "Hannah", "Julia", "Laura", "Rachel",
				     "Anna", "Clara", "Maria", "Elena", "Nora", "Ruth", "Alice", "Helen"};
static const char *const male[] = {"James", "John", "Robert", "Michael", "David", "Daniel", "Thomas", "Paul",
				   "Mark", "Steven", "Andrew", "Kevin", "Brian", "George", "Samuel", "Peter",
				   "Henry", "Oliver", "Lucas", "Adam", "Victor", "Martin", "Leo", "Noah"};
static const char *const family[] = {"Smith", "Johnson", "Brown", "Taylor", "Miller", "Wilson", "Moore",
				     "Clark", "Lewis", "Walker", "Hall", "Allen", "Young", "King", "Wright",
				     "Scott", "Green", "Baker", "Adams", "Nelson", "Carter", "Mitchell", "Turner",
				     "Parker", "Evans", "Edwards", "Collins", "Stewart", "Morris", "Reed",
				     "Cook", "Bell", "Murphy", "Bailey", "Cooper", "Howard", "Ward", "Brooks"};
static const char *const streets[] = {"Maple Street", "Oak Avenue", "Cedar Lane", "Pine Road", "Elm Street",
				      "Birch Court", "Willow Way", "Lake Drive", "Hill Road", "Park Avenue",
				      "River Road", "Meadow Lane", "Sunset Boulevard", "Church Street"};
static const struct place {
	const char *city, *state, *zip3;
} places[] = {
	{"Springfield", "IL", "627"}, {"Madison", "WI", "537"},  {"Salem", "OR", "973"},
	{"Franklin", "TN", "370"},    {"Greenville", "SC", "296"}, {"Fairview", "PA", "165"},
	{"Riverside", "CA", "925"},   {"Georgetown", "TX", "786"}, {"Clinton", "IA", "527"},
	{"Arlington", "VA", "222"},   {"Burlington", "VT", "054"}, {"Dayton", "OH", "454"},
};

static const struct cond {
	const char *snomed, *display;
	int min_age;
	int med;       /* index into meds, -1 none */
	const char *assess; /* note phrase */
} conds[] = {
	{"38341003", "Hypertensive disorder, systemic arterial (disorder)", 25, 0, "hypertension, on treatment"},
	{"44054006", "Diabetes mellitus type 2 (disorder)", 30, 1, "type 2 diabetes, diet and metformin"},
	{"55822004", "Hyperlipidemia (disorder)", 30, 2, "hyperlipidemia"},
	{"195967001", "Asthma (disorder)", 3, 3, "asthma, intermittent"},
	{"35489007", "Depressive disorder (disorder)", 16, 4, "depression, stable mood"},
	{"10509002", "Acute bronchitis (disorder)", 1, 5, "acute bronchitis, supportive care"},
	{"162864005", "Body mass index 30+ - obesity (finding)", 18, -1, "obesity, counselled on diet and exercise"},
	{"239873007", "Osteoarthritis of knee (disorder)", 45, 6, "knee osteoarthritis"},
	{"40055000", "Chronic sinusitis (disorder)", 10, -1, "chronic sinusitis"},
	{"271737000", "Anemia (disorder)", 12, -1, "anemia, iron studies pending"},
};
#define NCOND (sizeof conds / sizeof conds[0])

static const struct med {
	const char *rxnorm, *display, *dose;
} meds[] = {
	{"314076", "lisinopril 10 MG Oral Tablet", "1 tablet by mouth once daily"},
	{"860975", "24 HR Metformin hydrochloride 500 MG Extended Release Oral Tablet", "1 tablet by mouth daily with evening meal"},
	{"259255", "Atorvastatin 80 MG Oral Tablet", "1 tablet by mouth at bedtime"},
	{"745679", "200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", "2 puffs every 4 hours as needed"},
	{"312938", "Sertraline 100 MG Oral Tablet", "1 tablet by mouth once daily"},
	{"313782", "Acetaminophen 325 MG Oral Tablet", "2 tablets every 6 hours as needed"},
	{"849574", "Naproxen sodium 220 MG Oral Tablet", "1 tablet twice daily with food as needed"},
};

enum { V_HEIGHT, V_WEIGHT, V_BMI, V_HR, V_RR, V_TEMP, V_BP, NVITALS };
static const struct obs_code {
	const char *loinc, *display, *unit, *ucum;
} vitals[NVITALS] = {
	{"8302-2", "Body height", "cm", "cm"},
	{"29463-7", "Body weight", "kg", "kg"},
	{"39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", "kg/m2"},
	{"8867-4", "Heart rate", "/min", "/min"},
	{"9279-1", "Respiratory rate", "/min", "/min"},
	{"8310-5", "Body temperature", "Cel", "Cel"},
	{"85354-9", "Blood pressure panel with all children optional", NULL, NULL},
};
static const struct obs_code bp_sys = {"8480-6", "Systolic blood pressure", "mm[Hg]", "mm[Hg]"};
static const struct obs_code bp_dia = {"8462-4", "Diastolic blood pressure", "mm[Hg]", "mm[Hg]"};

static const struct lab {
	struct obs_code c;
	double lo, hi, step;
} lab_tests[] = {
	{{"2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", "mg/dL"}, 70, 140, 1},
	{{"4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", "%"}, 4.5, 8.5, 0.25},
	{{"2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"}, 140, 260, 1},
	{{"2571-8", "Triglycerides", "mg/dL", "mg/dL"}, 60, 220, 1},
	{{"2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"}, 35, 80, 1},
	{{"718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", "g/dL"}, 11, 17, 0.25},
	{{"6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", "10*3/uL"}, 4, 11, 0.25},
	{{"2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", "mg/dL"}, 0.5, 1.5, 0.25},
};
#define NLABS (sizeof lab_tests / sizeof lab_tests[0])

/* ---- randomness, ids, dates --------------------------------------------- */

static uint64_t rnd(struct salus_gen *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform integer in [lo, hi]. */
static long rint_in(struct salus_gen *g, long lo, long hi)
{
	return lo + (long)(rnd(g) % (uint64_t)(hi - lo + 1));
}

static double runit(struct salus_gen *g)
{
	return (double)(rnd(g) >> 11) * (1.0 / 9007199254740992.0);
}

/* v rounded to the nearest multiple of step (no libm: |v| is small here). */
static double round_to(double v, double step)
{
	double q = v / step;
	long long k = (long long)(q < 0 ? q - 0.5 : q + 0.5);
	return (double)k * step;
}

/* Roughly normal (mean, sd), rounded to a multiple of step, clamped. */
static double rnorm(struct salus_gen *g, double mean, double sd, double step, double lo, double hi)
{
	double u = runit(g) + runit(g) + runit(g) + runit(g) - 2.0; /* var 1/3 */
	double v = mean + sd * u * 1.7320508;
	v = v < lo ? lo : v > hi ? hi : v;
	return round_to(v, step);
}

#define PICK(g, arr) ((arr)[rnd(g) % (sizeof(arr) / sizeof((arr)[0]))])

static void uuid(struct salus_gen *g, char out[ID_LEN])
{
	static const char hex[] = "0123456789abcdef";
	uint64_t a = rnd(g), b = rnd(g);
	unsigned char x[16];
	for (int i = 0; i < 8; i++) {
		x[i] = (unsigned char)(a >> (8 * i));
		x[8 + i] = (unsigned char)(b >> (8 * i));
	}
	x[6] = (unsigned char)((x[6] & 0x0f) | 0x40); /* version 4 shape */
	x[8] = (unsigned char)((x[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	size_t o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[x[i] >> 4];
		out[o++] = hex[x[i] & 15];
	}
	out[o] = 0;
}

/* Howard Hinnant's civil-from-days, for dates without the C library's time zone. */
static void civil(int64_t days, int *y, int *m, int *d)
{
	int64_t z = days + 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = (int)(yoe + era * 400 + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

static void fmt_date(int64_t ms, char out[16])
{
	int y, m, d;
	civil(floor_div(ms, DAY_MS), &y, &m, &d);
	snprintf(out, 16, "%04d-%02d-%02d", y, m, d);
}

static void fmt_datetime(int64_t ms, char out[32])
{
	int y, m, d;
	int64_t day = floor_div(ms, DAY_MS), s = (ms - day * DAY_MS) / 1000;
	civil(day, &y, &m, &d);
	snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(s / 3600), (int)(s / 60 % 60),
		 (int)(s % 60));
}

static json_t *base64(const char *p, size_t n)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t on = 4 * ((n + 2) / 3);
	char *o = salus_malloc(on + 1);
	if (!o)
		return NULL;
	size_t i = 0, k = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)p[i] << 16 | (uint32_t)(unsigned char)p[i + 1] << 8 |
			     (unsigned char)p[i + 2];
		o[k++] = tab[v >> 18];
		o[k++] = tab[(v >> 12) & 63];
		o[k++] = tab[(v >> 6) & 63];
		o[k++] = tab[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)(unsigned char)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)p[i + 1] << 8;
		o[k++] = tab[v >> 18];
		o[k++] = tab[(v >> 12) & 63];
		o[k++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		o[k++] = '=';
	}
	o[k] = 0;
	json_t *s = json_stringn(o, k);
	salus_free(o);
	return s;
}

/* ---- JSON building blocks (NULL propagates: json_pack fails on a NULL "o") -- */

static json_t *ref(const char *type, const char *id, const char *display)
{
	return json_pack("{s:o, s:s*}", "reference", json_sprintf("%s/%s", type, id), "display", display);
}

static json_t *coding(const char *system, const char *code, const char *display)
{
	return json_pack("{s:s, s:s, s:s*}", "system", system, "code", code, "display", display);
}

static json_t *concept(const char *system, const char *code, const char *display)
{
	return json_pack("{s:[o], s:s*}", "coding", coding(system, code, display), "text", display);
}

static json_t *quantity(double v, const char *unit, const char *ucum)
{
	json_t *num = v == (double)(json_int_t)v ? json_integer((json_int_t)v) : json_real(v);
	return json_pack("{s:o, s:s, s:s, s:s}", "value", num, "unit", unit, "system", UCUM, "code", ucum);
}

static json_t *narrative(const char *xhtml_inner)
{
	return json_pack("{s:s, s:o}", "status", "generated", "div", json_sprintf(XHTML "%s</div>", xhtml_inner));
}

/* Emit one resource (stolen): count it, hand it to the callback. */
static int emit(struct salus_gen *g, json_t *r)
{
	if (!r)
		return SALUS_ENOMEM;
	/* every type we make must be a real R4 resource type */
	const char *rt = json_string_value(json_object_get(r, "resourceType"));
	if (!rt || !salus_fhir_is_resource_type(rt, strlen(rt))) {
		json_decref(r);
		return SALUS_EINTERNAL;
	}
	int rc = g->cb(g->ctx, r);
	json_decref(r);
	if (!rc)
		g->nres++;
	return rc;
}

/* ---- shared resources ------------------------------------------------------ */

static int emit_shared(struct salus_gen *g)
{
	int rc;
	uuid(g, g->org_id);
	rc = emit(g, json_pack("{s:s, s:s, s:[{s:s, s:s}], s:b, s:[o], s:s, s:[{s:s, s:s, s:s}], "
			       "s:[{s:[s], s:s, s:s, s:s, s:s}]}",
			       "resourceType", "Organization", "id", g->org_id,
			       "identifier", "system", SID "organization", "value", "DEMO-CLINIC-1",
			       "active", 1,
			       "type", concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov",
					       "Healthcare Provider"),
			       "name", "Salus Demo Clinic",
			       "telecom", "system", "phone", "value", "555-0100", "use", "work",
			       "address", "line", "1 Demo Plaza", "city", "Springfield", "state", "IL",
			       "postalCode", "62701", "country", "US"));
	if (rc)
		return rc;
	for (int i = 0; i < NPRAC; i++) {
		bool f = rnd(g) & 1;
		const char *given = f ? PICK(g, female) : PICK(g, male);
		const char *fam = PICK(g, family);
		char staff[32];
		uuid(g, g->prac_id[i]);
		snprintf(g->prac_display[i], sizeof g->prac_display[i], "Dr. %s %s", given, fam);
		g->prac_name[i] = g->prac_display[i];
		snprintf(staff, sizeof staff, "STAFF-%04d", 1001 + i);
		rc = emit(g, json_pack("{s:s, s:s, s:[{s:s, s:s}], s:b, s:[{s:s, s:s, s:[s], s:[s]}], "
				       "s:[{s:s, s:s, s:s}], s:s, s:[{s:o}]}",
				       "resourceType", "Practitioner", "id", g->prac_id[i],
				       "identifier", "system", SID "staff", "value", staff,
				       "active", 1,
				       "name", "use", "official", "family", fam, "given", given, "prefix", "Dr.",
				       "telecom", "system", "email", "value", "clinician@example.org", "use", "work",
				       "gender", f ? "female" : "male",
				       "qualification", "code",
				       concept("http://terminology.hl7.org/CodeSystem/v2-0360", "MD", "Doctor of Medicine")));
		if (rc)
			return rc;
	}
	g->shared_done = true;
	return SALUS_OK;
}

/* ---- one patient ----------------------------------------------------------- */

struct enc {
	char id[ID_LEN];
	int64_t start_ms, end_ms;
	int prac;
	bool labs;
	double vit[NVITALS + 1]; /* BP: [V_BP] systolic, [NVITALS] diastolic */
};

struct plan {
	char id[ID_LEN], mrn[16], birth[16];
	const char *given, *family;
	bool female;
	int age;
	int64_t birth_ms;
	int nenc, ncond;
	struct enc enc[MAX_ENC];
	struct {
		char id[ID_LEN], med_id[ID_LEN];
		size_t which;
		int enc;
		int64_t onset_ms;
	} cond[MAX_COND];
};

static void plan_patient(struct salus_gen *g, struct plan *p)
{
	uuid(g, p->id);
	p->female = rnd(g) & 1;
	p->given = p->female ? PICK(g, female) : PICK(g, male);
	p->family = PICK(g, family);
	p->age = rint_in(g, 0, 9) == 0 ? (int)rint_in(g, 1, 17) : (int)rint_in(g, 18, 92);
	p->birth_ms = g->today_ms - (int64_t)p->age * 365 * DAY_MS - rint_in(g, 0, 364) * DAY_MS;
	p->birth_ms = floor_div(p->birth_ms, DAY_MS) * DAY_MS;
	fmt_date(p->birth_ms, p->birth);
	snprintf(p->mrn, sizeof p->mrn, "%08ld", rint_in(g, 10000000, 99999999));

	/* encounters over the last `years` years (never before birth), in date order:
	 * 2..5 per three years of history the patient has lived (at least three) */
	int64_t from = g->today_ms - (int64_t)g->years * 365 * DAY_MS;
	if (from < p->birth_ms + DAY_MS)
		from = p->birth_ms + DAY_MS;
	int64_t span_days = (g->today_ms - DAY_MS - from) / DAY_MS;
	p->nenc = (int)rint_in(g, 2, 5);
	if (g->years > 3) {
		int lived = p->age < g->years ? p->age : g->years;
		if (lived > 3)
			p->nenc = p->nenc * lived / 3;
		if (p->nenc > MAX_ENC)
			p->nenc = MAX_ENC;
	}
	int64_t day0 = floor_div(from, DAY_MS);
	for (int i = 0; i < p->nenc; i++) {
		struct enc *e = &p->enc[i];
		int64_t slot = span_days / p->nenc;
		int64_t day = day0 + slot * i + rint_in(g, 0, slot > 1 ? slot - 1 : 0);
		e->start_ms = day * DAY_MS + rint_in(g, 8 * 4, 16 * 4) * 15 * 60000LL; /* 08:00..16:00 */
		e->end_ms = e->start_ms + rint_in(g, 2, 4) * 10 * 60000LL;
		e->prac = (int)rint_in(g, 0, NPRAC - 1);
		e->labs = p->age >= 18 && (rnd(g) % 2 == 0);
	}
	for (int i = 0; i < p->nenc; i++)
		uuid(g, p->enc[i].id);

	/* vitals: anchored per patient, varying a little per visit */
	double h, bmi;
	if (p->age < 18) {
		h = 75 + 6.0 * p->age + rnorm(g, 0, 4, 0.5, -10, 10);
		bmi = rnorm(g, 17.5, 2, 0.25, 13, 24);
	} else {
		h = p->female ? rnorm(g, 163, 6, 0.5, 145, 185) : rnorm(g, 177, 7, 0.5, 155, 200);
		bmi = rnorm(g, 27, 4, 0.25, 18, 42);
	}
	for (int i = 0; i < p->nenc; i++) {
		double *v = p->enc[i].vit;
		double b = bmi + rnorm(g, 0, 0.5, 0.25, -1.5, 1.5);
		v[V_HEIGHT] = h;
		v[V_WEIGHT] = round_to(b * (h / 100) * (h / 100), 0.25);
		v[V_BMI] = round_to(v[V_WEIGHT] / ((h / 100) * (h / 100)), 0.25);
		v[V_HR] = rnorm(g, p->age < 12 ? 95 : 74, 9, 1, 50, 140);
		v[V_RR] = rnorm(g, p->age < 12 ? 22 : 15, 2, 1, 10, 30);
		v[V_TEMP] = rnorm(g, 36.75, 0.3, 0.25, 35.75, 38.5);
		v[V_BP] = rnorm(g, 110 + p->age / 3.0, 10, 1, 90, 180);
		v[NVITALS] = rnorm(g, 72 + p->age / 10.0, 7, 1, 55, 110);
	}

	/* conditions, distinct, allowed for the age */
	int want = (int)rint_in(g, 1, p->age < 18 ? 2 : MAX_COND - 1);
	p->ncond = 0;
	for (int tries = 0; tries < 40 && p->ncond < want; tries++) {
		size_t c = rnd(g) % NCOND;
		bool dup = false;
		for (int k = 0; k < p->ncond; k++)
			dup |= p->cond[k].which == c;
		if (dup || conds[c].min_age > p->age)
			continue;
		p->cond[p->ncond].which = c;
		p->cond[p->ncond].enc = (int)rint_in(g, 0, p->nenc - 1);
		int64_t onset = p->enc[p->cond[p->ncond].enc].start_ms - rint_in(g, 0, 365) * DAY_MS;
		if (onset < p->birth_ms)
			onset = p->birth_ms;
		p->cond[p->ncond].onset_ms = floor_div(onset, DAY_MS) * DAY_MS;
		p->ncond++;
	}
	for (int k = 0; k < p->ncond; k++) {
		uuid(g, p->cond[k].id);
		uuid(g, p->cond[k].med_id);
	}
}

static int emit_patient(struct salus_gen *g, const struct plan *p)
{
	const struct place *pl = &places[rnd(g) % (sizeof places / sizeof places[0])];
	char line[64], zip[8], phone[16], div[512];
	snprintf(line, sizeof line, "%ld %s", rint_in(g, 1, 9999), PICK(g, streets));
	snprintf(zip, sizeof zip, "%s%02ld", pl->zip3, rint_in(g, 1, 99));
	snprintf(phone, sizeof phone, "555-01%02ld", rint_in(g, 0, 99));
	snprintf(div, sizeof div, "<p>%s %s, %s, born %s. MRN %s.</p>", p->given, p->family,
		 p->female ? "female" : "male", p->birth, p->mrn);
	bool married = p->age >= 25 && (rnd(g) & 1);
	int gp = (int)rint_in(g, 0, NPRAC - 1);
	return emit(g, json_pack(
		"{s:s, s:s, s:o, s:[{s:s, s:o, s:s, s:s}], s:b, s:[{s:s, s:s, s:[s]}], "
		"s:[{s:s, s:s, s:s}, {s:s, s:o, s:s}], s:s, s:s, s:[{s:s, s:s, s:[s], s:s, s:s, s:s, s:s}], "
		"s:o, s:[{s:o, s:b}], s:[o], s:o}",
		"resourceType", "Patient", "id", p->id, "text", narrative(div),
		"identifier", "use", "usual",
		"type", concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number"),
		"system", SID "mrn", "value", p->mrn,
		"active", 1,
		"name", "use", "official", "family", p->family, "given", p->given,
		"telecom", "system", "phone", "value", phone, "use", "home",
		"system", "email", "value", json_sprintf("%s.%s@example.org", p->given, p->family), "use", "home",
		"gender", p->female ? "female" : "male",
		"birthDate", p->birth,
		"address", "use", "home", "type", "physical", "line", line, "city", pl->city, "state", pl->state,
		"postalCode", zip, "country", "US",
		"maritalStatus",
		married ? concept("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married")
			: concept("http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "S", "Never Married"),
		"communication", "language", concept("urn:ietf:bcp:47", "en-US", "English (United States)"),
		"preferred", 1,
		"generalPractitioner", ref("Practitioner", g->prac_id[gp], g->prac_name[gp]),
		"managingOrganization", ref("Organization", g->org_id, "Salus Demo Clinic")));
}

static int emit_encounter(struct salus_gen *g, const struct plan *p, const struct enc *e)
{
	char s[32], t[32];
	fmt_datetime(e->start_ms, s);
	fmt_datetime(e->end_ms, t);
	return emit(g, json_pack(
		"{s:s, s:s, s:s, s:o, s:[o], s:o, s:[{s:[o], s:o, s:{s:s, s:s}}], s:{s:s, s:s}, s:o}",
		"resourceType", "Encounter", "id", e->id, "status", "finished",
		"class", coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB", "ambulatory"),
		"type", concept(SNOMED, "185349003", "Encounter for check up (procedure)"),
		"subject", ref("Patient", p->id, NULL),
		"participant", "type",
		concept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PPRF", "primary performer"),
		"individual", ref("Practitioner", g->prac_id[e->prac], g->prac_name[e->prac]),
		"period", "start", s, "end", t,
		"period", "start", s, "end", t,
		"serviceProvider", ref("Organization", g->org_id, "Salus Demo Clinic")));
}

static int emit_condition(struct salus_gen *g, const struct plan *p, int k)
{
	const struct cond *c = &conds[p->cond[k].which];
	const struct enc *e = &p->enc[p->cond[k].enc];
	char onset[32], rec[32];
	fmt_datetime(p->cond[k].onset_ms, onset);
	fmt_datetime(e->start_ms, rec);
	bool resolved = p->cond[k].which == 5; /* acute bronchitis */
	return emit(g, json_pack(
		"{s:s, s:s, s:o, s:o, s:[o], s:o, s:o, s:o, s:s, s:s, s:o}",
		"resourceType", "Condition", "id", p->cond[k].id,
		"clinicalStatus",
		concept("http://terminology.hl7.org/CodeSystem/condition-clinical", resolved ? "resolved" : "active",
			resolved ? "Resolved" : "Active"),
		"verificationStatus",
		concept("http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed", "Confirmed"),
		"category",
		concept("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis",
			"Encounter Diagnosis"),
		"code", concept(SNOMED, c->snomed, c->display),
		"subject", ref("Patient", p->id, NULL),
		"encounter", ref("Encounter", e->id, NULL),
		"onsetDateTime", onset, "recordedDate", rec,
		"recorder", ref("Practitioner", g->prac_id[e->prac], g->prac_name[e->prac])));
}

static json_t *category(const char *code, const char *display)
{
	return json_pack("[o]", concept(OBS_CAT, code, display));
}

/* An Observation (new reference) with everything but its value, under a new id. */
static json_t *observation(struct salus_gen *g, const struct plan *p, const struct enc *e, const char *cat,
			   const char *cat_display, const struct obs_code *c, int64_t at_ms)
{
	char id[ID_LEN], eff[32], issued[32];
	uuid(g, id);
	fmt_datetime(at_ms, eff);
	fmt_datetime(at_ms + 3600000, issued);
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:[o]}",
			 "resourceType", "Observation", "id", id, "status", "final",
			 "category", category(cat, cat_display),
			 "code", concept(LOINC, c->loinc, c->display),
			 "subject", ref("Patient", p->id, NULL),
			 "encounter", ref("Encounter", e->id, NULL),
			 "effectiveDateTime", eff, "issued", issued,
			 "performer", ref("Practitioner", g->prac_id[e->prac], g->prac_name[e->prac]));
}

static int emit_observations(struct salus_gen *g, const struct plan *p, const struct enc *e, bool diabetic)
{
	int rc;
	int64_t at = e->start_ms + 5 * 60000;
	for (int v = 0; v < NVITALS; v++) {
		json_t *o = observation(g, p, e, "vital-signs", "Vital Signs", &vitals[v], at);
		if (o && v == V_BP) {
			json_t *comp = json_pack(
				"[{s:o, s:o}, {s:o, s:o}]",
				"code", concept(LOINC, bp_sys.loinc, bp_sys.display),
				"valueQuantity", quantity(e->vit[V_BP], bp_sys.unit, bp_sys.ucum),
				"code", concept(LOINC, bp_dia.loinc, bp_dia.display),
				"valueQuantity", quantity(e->vit[NVITALS], bp_dia.unit, bp_dia.ucum));
			if (!comp || json_object_set_new(o, "component", comp)) {
				json_decref(o);
				o = NULL;
			}
		} else if (o && json_object_set_new(o, "valueQuantity",
						    quantity(e->vit[v], vitals[v].unit, vitals[v].ucum))) {
			json_decref(o);
			o = NULL;
		}
		if ((rc = emit(g, o)))
			return rc;
	}
	if (!e->labs)
		return SALUS_OK;
	for (size_t l = 0; l < NLABS; l++) {
		const struct lab *lb = &lab_tests[l];
		double mid = (lb->lo + lb->hi) / 2, sd = (lb->hi - lb->lo) / 4;
		if (diabetic && l <= 1) /* glucose, HbA1c */
			mid = lb->hi - sd;
		double v = rnorm(g, mid, sd, lb->step, lb->lo * 0.8, lb->hi * 1.3);
		json_t *o = observation(g, p, e, "laboratory", "Laboratory", &lb->c, at + 20 * 60000);
		if (o && json_object_set_new(o, "valueQuantity", quantity(v, lb->c.unit, lb->c.ucum))) {
			json_decref(o);
			o = NULL;
		}
		if ((rc = emit(g, o)))
			return rc;
	}
	return SALUS_OK;
}

static int emit_medication(struct salus_gen *g, const struct plan *p, int k)
{
	const struct cond *c = &conds[p->cond[k].which];
	if (c->med < 0)
		return SALUS_OK;
	const struct med *m = &meds[c->med];
	const struct enc *e = &p->enc[p->cond[k].enc];
	char authored[32];
	fmt_datetime(e->end_ms, authored);
	bool prn = strstr(m->dose, "as needed") != NULL;
	return emit(g, json_pack(
		"{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:o, s:[o], s:[{s:s, s:b}]}",
		"resourceType", "MedicationRequest", "id", p->cond[k].med_id, "status", "active", "intent", "order",
		"medicationCodeableConcept", concept(RXNORM, m->rxnorm, m->display),
		"subject", ref("Patient", p->id, NULL),
		"encounter", ref("Encounter", e->id, NULL),
		"authoredOn", authored,
		"requester", ref("Practitioner", g->prac_id[e->prac], g->prac_name[e->prac]),
		"reasonReference", ref("Condition", p->cond[k].id, c->display),
		"dosageInstruction", "text", m->dose, "asNeededBoolean", prn));
}

/* A plain-text progress note for one encounter, with narrative. */
static int emit_note(struct salus_gen *g, const struct plan *p, int ei)
{
	const struct enc *e = &p->enc[ei];
	struct salus_buf b;
	char when[32], day[16], id[ID_LEN];
	int rc = SALUS_OK;
	uuid(g, id);
	fmt_datetime(e->end_ms, when);
	fmt_date(e->start_ms, day);
	salus_buf_init(&b, MAX_NOTE);
	rc = salus_buf_addf(&b,
			    "PROGRESS NOTE\nDate of service: %s\nPatient: %s %s   DOB: %s   MRN: %s\n"
			    "Clinician: %s, Salus Demo Clinic\n\n"
			    "Subjective: %d-year-old %s seen for a routine follow-up visit. Reports feeling %s.\n\n"
			    "Objective: BP %.0f/%.0f mmHg, HR %.0f/min, RR %.0f/min, Temp %.2f C, "
			    "Wt %.2f kg, BMI %.2f kg/m2.\n\nAssessment:\n",
			    day, p->given, p->family, p->birth, p->mrn, g->prac_name[e->prac], p->age,
			    p->female ? "woman" : "man", PICK(g, ((const char *const[]){"well", "tired", "better",
											"about the same"})),
			    e->vit[V_BP], e->vit[NVITALS], e->vit[V_HR], e->vit[V_RR], e->vit[V_TEMP],
			    e->vit[V_WEIGHT], e->vit[V_BMI]);
	int listed = 0;
	for (int k = 0; !rc && k < p->ncond; k++) {
		if (p->cond[k].onset_ms > e->start_ms)
			continue;
		const struct cond *c = &conds[p->cond[k].which];
		rc = salus_buf_addf(&b, "- %s.%s%s\n", c->assess, c->med >= 0 ? " Continue " : "",
				    c->med >= 0 ? meds[c->med].display : "");
		listed++;
	}
	if (!rc && !listed)
		rc = salus_buf_adds(&b, "- healthy visit, no active problems.\n");
	if (!rc)
		rc = salus_buf_addf(&b, "\nPlan: follow up in %ld months or sooner as needed.\n", rint_in(g, 3, 12));
	if (rc) {
		salus_buf_release(&b);
		return rc;
	}
	char div[256];
	snprintf(div, sizeof div, "<p>Progress note, %s, %s.</p>", day, g->prac_name[e->prac]);
	json_t *data = base64(b.p, b.n);
	salus_buf_release(&b);
	return emit(g, json_pack(
		"{s:s, s:s, s:o, s:s, s:s, s:o, s:[o], s:o, s:s, s:[o], s:o, "
		"s:[{s:{s:s, s:s, s:o, s:s, s:s}}], s:{s:[o], s:{s:s, s:s}}}",
		"resourceType", "DocumentReference", "id", id, "text", narrative(div),
		"status", "current", "docStatus", "final",
		"type", concept(LOINC, "11506-3", "Progress note"),
		"category",
		concept("http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category", "clinical-note",
			"Clinical Note"),
		"subject", ref("Patient", p->id, NULL),
		"date", when,
		"author", ref("Practitioner", g->prac_id[e->prac], g->prac_name[e->prac]),
		"custodian", ref("Organization", g->org_id, "Salus Demo Clinic"),
		"content", "attachment", "contentType", "text/plain; charset=utf-8", "language", "en-US", "data", data,
		"title", "Progress note", "creation", when,
		"context", "encounter", ref("Encounter", e->id, NULL), "period", "start", when, "end", when));
}

/* ---- public API --------------------------------------------------------------- */

int salus_gen_new(const struct salus_gen_opts *opts, struct salus_gen **out)
{
	struct salus_gen *g = salus_calloc(1, sizeof *g);
	if (!g)
		return SALUS_ENOMEM;
	g->s = opts ? opts->seed : 0;
	g->today_ms = opts && opts->today_ms ? opts->today_ms : DEFAULT_TODAY_MS;
	g->years = opts && opts->years ? opts->years : 3;
	if (g->years < 1 || g->years > SALUS_GEN_MAX_YEARS) {
		salus_free(g);
		return SALUS_EINVALID;
	}
	*out = g;
	return SALUS_OK;
}

void salus_gen_free(struct salus_gen *g)
{
	salus_free(g);
}

size_t salus_gen_resource_count(const struct salus_gen *g)
{
	return g->nres;
}

size_t salus_gen_patient_count(const struct salus_gen *g)
{
	return g->npat;
}

int salus_gen_patient(struct salus_gen *g, salus_gen_cb cb, void *ctx)
{
	struct plan p;
	int rc;
	g->cb = cb;
	g->ctx = ctx;
	if (!g->shared_done && (rc = emit_shared(g)))
		return rc;
	memset(&p, 0, sizeof p);
	plan_patient(g, &p);
	if ((rc = emit_patient(g, &p)))
		return rc;
	for (int i = 0; i < p.nenc; i++)
		if ((rc = emit_encounter(g, &p, &p.enc[i])))
			return rc;
	bool diabetic = false;
	for (int k = 0; k < p.ncond; k++) {
		diabetic |= p.cond[k].which == 1;
		if ((rc = emit_condition(g, &p, k)))
			return rc;
	}
	for (int i = 0; i < p.nenc; i++)
		if ((rc = emit_observations(g, &p, &p.enc[i], diabetic)))
			return rc;
	for (int k = 0; k < p.ncond; k++)
		if ((rc = emit_medication(g, &p, k)))
			return rc;
	for (int i = 0; i < p.nenc; i++)
		if ((rc = emit_note(g, &p, i)))
			return rc;
	g->npat++;
	return SALUS_OK;
}

int salus_gen_run(struct salus_gen *g, size_t n, salus_gen_cb cb, void *ctx)
{
	if (n > SALUS_GEN_MAX_PATIENTS)
		return SALUS_EINVALID;
	for (size_t i = 0; i < n; i++) {
		int rc = salus_gen_patient(g, cb, ctx);
		if (rc)
			return rc;
	}
	return SALUS_OK;
}

json_t *salus_gen_bundle_entry(json_t *resource)
{
	const char *rt = json_string_value(json_object_get(resource, "resourceType"));
	const char *id = json_string_value(json_object_get(resource, "id"));
	if (!rt || !id)
		return NULL;
	return json_pack("{s:o, s:O, s:{s:s, s:o}}", "fullUrl", json_sprintf("urn:uuid:%s", id), "resource", resource,
			 "request", "method", "PUT", "url", json_sprintf("%s/%s", rt, id));
}

static int add_entry(void *ctx, json_t *resource)
{
	json_t *e = salus_gen_bundle_entry(resource);
	if (!e || json_array_append_new(ctx, e))
		return SALUS_ENOMEM;
	return 0;
}

int salus_gen_bundle(struct salus_gen *g, size_t n, json_t **out)
{
	json_t *entries = json_array();
	if (!entries)
		return SALUS_ENOMEM;
	int rc = salus_gen_run(g, n, add_entry, entries);
	if (rc) {
		json_decref(entries);
		return rc;
	}
	json_t *b = json_pack("{s:s, s:s, s:o}", "resourceType", "Bundle", "type", "transaction", "entry", entries);
	if (!b)
		return SALUS_ENOMEM;
	*out = b;
	return SALUS_OK;
}
