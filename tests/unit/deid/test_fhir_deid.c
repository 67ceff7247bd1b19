/* test_fhir_deid.c — FHIR de-identification on invented resources: Patient,
 * Bundle and NDJSON roundtrips (names, addresses, identifiers, dates changed;
 * references consistent; structure kept), narrative and text attachments via
 * a fake detector, and bad input (not JSON, not FHIR, invalid UTF-8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "core/alloc.h"
#include "core/buf.h"
#include "core/err.h"
#include "deid/fhir_deid.h"
#include "deid/transform_int.h"

static unsigned char key[SALUS_DEID_KEY_LEN], key2[SALUS_DEID_KEY_LEN];

/* Fake detector: marks every occurrence of a few invented words. */
static const struct {
	const char *w;
	enum salus_phi t;
} fake_words[] = {
	{"Ottilie Brandvold", SALUS_PHI_NAME}, {"Brandvold", SALUS_PHI_NAME}, {"Ottilie", SALUS_PHI_NAME},
	{"Kestrel Hollow", SALUS_PHI_LOCATION}, {"2021-07-04", SALUS_PHI_DATE}, {"555-201-7788", SALUS_PHI_PHONE},
};
static struct salus_span fake_out[64];

static int fake_scan(void *ctx, const char *text, size_t n, const struct salus_span **spans, size_t *ns)
{
	int *calls = ctx;
	if (calls)
		(*calls)++;
	size_t k = 0;
	for (size_t i = 0; i < n && k < 64;) {
		size_t best = 0, bt = 0;
		for (size_t w = 0; w < sizeof fake_words / sizeof fake_words[0]; w++) {
			size_t l = strlen(fake_words[w].w);
			if (l <= n - i && !memcmp(text + i, fake_words[w].w, l) && l > best) {
				best = l;
				bt = w;
			}
		}
		if (best) {
			fake_out[k++] = (struct salus_span){i, i + best, fake_words[bt].t, 1.0f, 0};
			i += best;
		} else {
			i++;
		}
	}
	*spans = fake_out;
	*ns = k;
	return 0;
}

static struct salus_deid_fhir_opts fopts(enum salus_deid_mode m)
{
	struct salus_deid_fhir_opts o = {.scan = fake_scan};
	o.x = (struct salus_deid_xform_opts){.mode = m, .key = key, .key_len = SALUS_DEID_KEY_LEN, .ref_year = 2025};
	return o;
}

static const char patient[] =
	"{\"resourceType\":\"Patient\",\"id\":\"pat-1\","
	"\"meta\":{\"lastUpdated\":\"2023-05-06T07:08:09.123Z\"},"
	"\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><p>Ottilie "
	"<b>Brandvold</b> &amp; family, born 2021-07-04</p><a href=\\\"tel:555-201-7788\\\">phone</a></div>\"},"
	"\"identifier\":[{\"system\":\"urn:oid:1.2.36.146.595.217.0.1\",\"value\":\"MRN-778812\"},"
	"{\"system\":\"http://hl7.org/fhir/sid/us-ssn\",\"value\":\"999-12-3456\"}],"
	"\"name\":[{\"use\":\"official\",\"family\":\"Brandvold\",\"given\":[\"Ottilie\",\"R.\"],\"prefix\":[\"Ms.\"]}],"
	"\"telecom\":[{\"system\":\"phone\",\"value\":\"555-201-7788\"},{\"system\":\"email\",\"value\":"
	"\"ottilie@brandvold.test\"}],"
	"\"gender\":\"female\",\"birthDate\":\"1961-02-17\","
	"\"address\":[{\"line\":[\"41 Kestrel Hollow Road\"],\"city\":\"Thistlebury\",\"district\":\"Marrow County\","
	"\"state\":\"NH\",\"postalCode\":\"03601\",\"country\":\"US\",\"text\":\"41 Kestrel Hollow Road, "
	"Thistlebury NH 03601\",\"extension\":[{\"url\":\"http://hl7.org/fhir/StructureDefinition/geolocation\","
	"\"extension\":[{\"url\":\"latitude\",\"valueDecimal\":43.1}]}]}],"
	"\"photo\":[{\"contentType\":\"image/jpeg\",\"data\":\"/9j/4AAQ\"}],"
	"\"contact\":[{\"name\":{\"text\":\"Ottilie Brandvold\"},\"telecom\":[{\"system\":\"phone\","
	"\"value\":\"555-201-7788\"}]}],"
	"\"managingOrganization\":{\"reference\":\"Organization/org-9\",\"display\":\"Kestrel Hollow Clinic\"}}";

static json_t *run(const struct salus_deid_fhir_opts *o, const char *in)
{
	struct salus_buf b;
	salus_buf_init(&b, 1 << 22);
	assert_int_equal(salus_deid_fhir_json(o, in, strlen(in), false, &b), 0);
	json_error_t err;
	json_t *j = json_loads(b.p, 0, &err);
	assert_non_null(j);
	salus_buf_release(&b);
	return j;
}

static const char *str(json_t *j, const char *path)
{
	/* tiny path walker: "a.b.0.c" */
	char buf[256];
	snprintf(buf, sizeof buf, "%s", path);
	json_t *cur = j;
	for (char *save = NULL, *tok = strtok_r(buf, ".", &save); tok && cur; tok = strtok_r(NULL, ".", &save)) {
		if (json_is_array(cur)) {
			long i;
			assert_int_equal(salus_parse_long((struct salus_slice){tok, strlen(tok)}, 0, 1000, &i), 0);
			cur = json_array_get(cur, (size_t)i);
		} else {
			cur = json_object_get(cur, tok);
		}
	}
	return json_string_value(cur);
}

static void test_patient(void **state)
{
	(void)state;
	int calls = 0;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SAFE_HARBOR);
	o.scan_ctx = &calls;
	json_t *j = run(&o, patient);
	char *dump = json_dumps(j, JSON_COMPACT);
	/* nothing of the real identity is left anywhere */
	static const char *const leaks[] = {"Brandvold", "Ottilie", "Kestrel", "Thistlebury", "Marrow", "MRN-778812",
					    "999-12-3456", "555-201-7788", "ottilie@", "1961-02-17", "pat-1",
					    "org-9", "03601", "/9j/", "43.1", "2021-07-04"};
	for (size_t i = 0; i < sizeof leaks / sizeof leaks[0]; i++) {
		if (strstr(dump, leaks[i]))
			fail_msg("leak of %s", leaks[i]);
	}
	assert_string_equal(str(j, "resourceType"), "Patient");
	assert_int_equal(strlen(str(j, "id")), 32);
	assert_string_equal(str(j, "gender"), "female");
	assert_string_equal(str(j, "birthDate"), "1961"); /* safe harbor: year */
	assert_string_equal(str(j, "meta.lastUpdated"), "2023-01-01T00:00:00Z"); /* instant stays valid */
	assert_string_equal(str(j, "identifier.0.system"), "urn:oid:1.2.36.146.595.217.0.1");
	assert_true(!strncmp(str(j, "identifier.0.value"), "ID-", 3));
	assert_true(!strncmp(str(j, "identifier.1.value"), "ID-", 3));
	assert_string_equal(str(j, "name.0.use"), "official");
	assert_string_equal(str(j, "name.0.prefix.0"), "Ms.");
	assert_non_null(str(j, "name.0.family"));
	assert_int_equal(strlen(str(j, "name.0.given.1")), 2); /* initial stays an initial */
	assert_int_equal(str(j, "name.0.given.1")[1], '.');
	/* the same real name gets the same surrogate wherever it appears (one patient) */
	char full[128];
	snprintf(full, sizeof full, "%s %s", str(j, "name.0.given.0"), str(j, "name.0.family"));
	assert_string_equal(str(j, "contact.0.name.text"), full);
	assert_string_equal(str(j, "telecom.0.value"), str(j, "contact.0.telecom.0.value"));
	assert_int_equal(strlen(str(j, "telecom.0.value")), 12);
	assert_non_null(strstr(str(j, "telecom.1.value"), "@example."));
	assert_string_equal(str(j, "address.0.state"), "NH");
	assert_string_equal(str(j, "address.0.country"), "US");
	assert_string_equal(str(j, "address.0.postalCode"), "000"); /* 036: restricted */
	assert_non_null(strstr(str(j, "address.0.line.0"), " Road"));
	assert_null(json_object_get(json_array_get(json_object_get(j, "address"), 0), "extension"));
	assert_non_null(strstr(str(j, "address.0.text"), "NH 000"));
	assert_null(json_object_get(j, "photo"));
	assert_true(!strncmp(str(j, "managingOrganization.reference"), "Organization/", 13));
	/* narrative: markup kept, text de-identified, still an XHTML div */
	const char *div = str(j, "text.div");
	static const char open_p[] = "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>";
	assert_true(!strncmp(div, open_p, sizeof open_p - 1));
	/* the phone in the link gets the same surrogate as the telecom value */
	char tel[64];
	snprintf(tel, sizeof tel, "href=\"tel:%s\"", str(j, "telecom.0.value"));
	assert_non_null(strstr(div, tel));
	assert_non_null(strstr(div, "</b> &amp; family, born 2021</p><a href=\"tel:"));
	assert_non_null(strstr(div, "\">phone</a></div>"));
	assert_true(calls > 0);
	assert_string_equal(str(j, "text.status"), "generated");
	salus_free(dump);

	/* deterministic for one key; another key gives other pseudonyms */
	json_t *j2 = run(&o, patient);
	assert_true(json_equal(j, j2));
	json_decref(j2);
	o.x.key = key2;
	j2 = run(&o, patient);
	assert_string_not_equal(str(j, "id"), str(j2, "id"));
	assert_string_not_equal(str(j, "identifier.0.value"), str(j2, "identifier.0.value"));
	json_decref(j2);
	json_decref(j);
}

static void test_patient_modes(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_MASK);
	json_t *j = run(&o, patient);
	assert_string_equal(str(j, "name.0.family"), "[NAME]");
	assert_string_equal(str(j, "address.0.postalCode"), "[ZIP]");
	assert_string_equal(str(j, "birthDate"), "1961"); /* a date element cannot hold [DATE] */
	assert_string_equal(str(j, "identifier.0.value"), "[ID]");
	json_decref(j);

	o = fopts(SALUS_DEID_REDACT);
	j = run(&o, patient);
	json_t *name0 = json_array_get(json_object_get(j, "name"), 0);
	assert_null(json_object_get(name0, "family"));
	assert_null(json_object_get(name0, "given")); /* emptied arrays are pruned */
	assert_string_equal(str(j, "name.0.prefix.0"), "Ms.");
	assert_null(json_object_get(json_array_get(json_object_get(j, "telecom"), 0), "value"));
	assert_string_equal(str(j, "telecom.0.system"), "phone");
	assert_null(json_object_get(json_array_get(json_object_get(j, "contact"), 0), "name"));
	json_decref(j);

	/* shift: birthDate moves by the patient's offset, keeps full precision */
	o = fopts(SALUS_DEID_SURROGATE);
	j = run(&o, patient);
	struct salus_deid_xform_opts x = o.x;
	x.scope = "Patient/pat-1";
	long off;
	assert_int_equal(salus_xf_shift_days(&x, &off), 0);
	int y, m, d;
	salus_xf_civil_from_days(salus_xf_days_from_civil(1961, 2, 17) + off, &y, &m, &d);
	char expect[16];
	snprintf(expect, sizeof expect, "%04d-%02d-%02d", y, m, d);
	assert_string_equal(str(j, "birthDate"), expect);
	assert_int_equal(strlen(str(j, "address.0.postalCode")), 5); /* surrogate: fake digits */
	assert_string_not_equal(str(j, "address.0.postalCode"), "03601");
	json_decref(j);
}

static const char bundle[] =
	"{\"resourceType\":\"Bundle\",\"type\":\"collection\",\"entry\":["
	"{\"fullUrl\":\"urn:uuid:6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11\",\"resource\":{\"resourceType\":\"Patient\","
	"\"id\":\"6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11\",\"name\":[{\"family\":\"Brandvold\"}],"
	"\"birthDate\":\"1930-01-01\"}},"
	"{\"fullUrl\":\"urn:uuid:0b9d3c44-1111-4a2b-8c3d-222233334444\",\"resource\":{\"resourceType\":\"Encounter\","
	"\"id\":\"0b9d3c44-1111-4a2b-8c3d-222233334444\",\"status\":\"finished\","
	"\"subject\":{\"reference\":\"urn:uuid:6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11\",\"display\":\"Ottilie "
	"Brandvold\"},\"period\":{\"start\":\"2020-03-01T10:00:00+01:00\",\"end\":\"2020-03-11T10:00:00+01:00\"}}},"
	"{\"fullUrl\":\"urn:uuid:5a5a5a5a-1111-4a2b-8c3d-222233334444\",\"resource\":{\"resourceType\":"
	"\"Observation\",\"id\":\"5a5a5a5a-1111-4a2b-8c3d-222233334444\",\"status\":\"final\","
	"\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\",\"display\":\"Heart rate\"}]},"
	"\"subject\":{\"reference\":\"Patient/6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11\"},"
	"\"encounter\":{\"reference\":\"urn:uuid:0b9d3c44-1111-4a2b-8c3d-222233334444\"},"
	"\"effectiveDateTime\":\"2020-03-05\",\"valueQuantity\":{\"value\":72,\"unit\":\"/min\"},"
	"\"note\":[{\"text\":\"Brandvold seen at Kestrel Hollow\"}]}},"
	"{\"resource\":{\"resourceType\":\"DocumentReference\",\"status\":\"current\","
	"\"subject\":{\"reference\":\"Patient/6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11\"},"
	"\"content\":[{\"attachment\":{\"contentType\":\"text/plain\",\"data\":\"T3R0aWxpZSBjYWxsZWQgNTU1LTIwMS03Nzg4\","
	"\"size\":26,\"hash\":\"abcd\",\"url\":\"http://docs.test/ottilie.txt\"}},"
	"{\"attachment\":{\"contentType\":\"application/pdf\",\"data\":\"JVBERi0=\",\"size\":5}}]}}]}";

static void test_bundle(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SURROGATE);
	json_t *j = run(&o, bundle);
	char *dump = json_dumps(j, JSON_COMPACT);
	assert_null(strstr(dump, "Brandvold"));
	assert_null(strstr(dump, "6f1c1a52"));
	assert_null(strstr(dump, "Kestrel"));
	assert_null(strstr(dump, "docs.test"));
	salus_free(dump);
	assert_string_equal(str(j, "resourceType"), "Bundle");
	assert_int_equal(json_array_size(json_object_get(j, "entry")), 4);
	/* the graph stays linkable: fullUrl == urn:uuid:<id>, references follow */
	const char *pid = str(j, "entry.0.resource.id");
	char urn[64], rel[64];
	snprintf(urn, sizeof urn, "urn:uuid:%s", pid);
	snprintf(rel, sizeof rel, "Patient/%s", pid);
	assert_int_equal(strlen(pid), 36);
	assert_int_equal(pid[14], '4'); /* still a version-4 UUID */
	assert_string_equal(str(j, "entry.0.fullUrl"), urn);
	assert_string_equal(str(j, "entry.1.resource.subject.reference"), urn);
	assert_string_equal(str(j, "entry.2.resource.subject.reference"), rel);
	char enc[64];
	snprintf(enc, sizeof enc, "urn:uuid:%s", str(j, "entry.1.resource.id"));
	assert_string_equal(str(j, "entry.2.resource.encounter.reference"), enc);
	/* birth year 1930 reveals an age over 89 (ref 2025): aggregated to 1935 */
	assert_string_equal(str(j, "entry.0.resource.birthDate"), "1935");
	/* one patient, one offset: the Encounter (urn subject) and the Observation (relative subject) agree */
	struct salus_deid_xform_opts x = o.x;
	x.scope = "Patient/6f1c1a52-2b1e-4c55-9d38-0c5b2f7e9a11";
	long off;
	assert_int_equal(salus_xf_shift_days(&x, &off), 0);
	int y, m, d;
	salus_xf_civil_from_days(salus_xf_days_from_civil(2020, 3, 1) + off, &y, &m, &d);
	char expect[64];
	snprintf(expect, sizeof expect, "%04d-%02d-%02dT10:00:00+01:00", y, m, d);
	assert_string_equal(str(j, "entry.1.resource.period.start"), expect);
	salus_xf_civil_from_days(salus_xf_days_from_civil(2020, 3, 5) + off, &y, &m, &d);
	snprintf(expect, sizeof expect, "%04d-%02d-%02d", y, m, d);
	assert_string_equal(str(j, "entry.2.resource.effectiveDateTime"), expect);
	/* surrogate of the subject display = surrogate of the Patient's family name in the same scope */
	const char *disp = str(j, "entry.1.resource.subject.display");
	assert_non_null(strstr(disp, str(j, "entry.0.resource.name.0.family")));
	/* codes untouched; note de-identified with the same surrogate */
	assert_string_equal(str(j, "entry.2.resource.code.coding.0.display"), "Heart rate");
	assert_string_equal(str(j, "entry.2.resource.code.coding.0.code"), "8867-4");
	assert_true(!strncmp(str(j, "entry.2.resource.note.0.text"), str(j, "entry.0.resource.name.0.family"),
			     strlen(str(j, "entry.0.resource.name.0.family"))));
	/* text attachment: decoded, de-identified, re-encoded; binary one dropped */
	const char *data = str(j, "entry.3.resource.content.0.attachment.data");
	assert_non_null(data);
	unsigned char bin[256];
	size_t bn;
	assert_int_equal(sodium_base642bin(bin, sizeof bin, data, strlen(data), NULL, &bn, NULL,
					   sodium_base64_VARIANT_ORIGINAL),
			 0);
	bin[bn] = 0;
	assert_null(strstr((char *)bin, "Ottilie"));
	assert_null(strstr((char *)bin, "555-201-7788"));
	assert_non_null(strstr((char *)bin, " called "));
	json_t *att = json_object_get(json_array_get(json_object_get(json_object_get(json_array_get(
		json_object_get(j, "entry"), 3), "resource"), "content"), 0), "attachment");
	assert_int_equal(json_integer_value(json_object_get(att, "size")), (json_int_t)bn);
	assert_null(json_object_get(att, "hash"));
	assert_null(json_object_get(att, "url"));
	json_t *att2 = json_object_get(json_array_get(json_object_get(json_object_get(json_array_get(
		json_object_get(j, "entry"), 3), "resource"), "content"), 1), "attachment");
	assert_null(json_object_get(att2, "data"));
	assert_string_equal(json_string_value(json_object_get(att2, "contentType")), "application/pdf");
	json_decref(j);
}

static void test_ndjson(void **state)
{
	(void)state;
	const char *in = "{\"resourceType\":\"Patient\",\"id\":\"p7\",\"name\":[{\"family\":\"Brandvold\"}]}\n"
			 "\n"
			 "{\"resourceType\":\"Observation\",\"id\":\"o1\",\"status\":\"final\",\"code\":{\"text\":"
			 "\"pulse\"},\"subject\":{\"reference\":\"Patient/p7\"},\"effectiveDateTime\":\"2022-01-02\"}\n";
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SAFE_HARBOR);
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	size_t bad = 99;
	assert_int_equal(salus_deid_fhir_text(&o, in, strlen(in), &b, &bad), 0);
	assert_int_equal(bad, 0);
	/* two compact lines */
	char *nl = strchr(b.p, '\n');
	assert_non_null(nl);
	assert_non_null(strchr(nl + 1, '\n'));
	assert_int_equal(strchr(nl + 1, '\n')[1], 0);
	json_error_t err;
	json_t *p = json_loadb(b.p, (size_t)(nl - b.p), 0, &err);
	json_t *ob = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, &err);
	assert_non_null(p);
	assert_non_null(ob);
	char ref[64];
	snprintf(ref, sizeof ref, "Patient/%s", str(p, "id"));
	assert_string_equal(str(ob, "subject.reference"), ref);
	assert_string_equal(str(ob, "effectiveDateTime"), "2022");
	assert_string_equal(str(ob, "resourceType"), "Observation");
	assert_null(strstr(b.p, "Brandvold"));
	json_decref(p);
	json_decref(ob);

	/* a bad second line is reported by number and leaves nothing behind */
	salus_buf_reset(&b);
	const char *in2 = "{\"resourceType\":\"Patient\",\"id\":\"p7\"}\n{\"resourceType\": oops}\n";
	assert_int_equal(salus_deid_fhir_text(&o, in2, strlen(in2), &b, &bad), SALUS_EINVALID);
	assert_int_equal(bad, 2);
	assert_int_equal(b.n, 0);
	/* pretty-printed single document: one document out */
	salus_buf_reset(&b);
	const char *in3 = "{\n  \"resourceType\": \"Patient\",\n  \"id\": \"p7\"\n}\n";
	assert_int_equal(salus_deid_fhir_text(&o, in3, strlen(in3), &b, &bad), 0);
	assert_non_null(strstr(b.p, "\n  \"id\": \""));
	salus_buf_release(&b);
}

static void test_no_detector(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SAFE_HARBOR);
	o.scan = NULL; /* free text cannot be checked: it goes whole */
	json_t *j = run(&o, patient);
	assert_string_equal(str(j, "text.div"),
			    "<div xmlns=\"http://www.w3.org/1999/xhtml\">[narrative removed]</div>");
	json_decref(j);
	j = run(&o, bundle);
	assert_string_equal(str(j, "entry.2.resource.note.0.text"), "[REDACTED]");
	json_decref(j);
}

static void test_narrative_edge(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_MASK);
	/* an entity split by the detector's span and a name across tags */
	const char *in = "{\"resourceType\":\"Basic\",\"text\":{\"status\":\"additional\",\"div\":\"<div "
			 "xmlns=\\\"http://www.w3.org/1999/xhtml\\\"><!-- Ottilie --><span title=\\\"Ottilie\\\">"
			 "&#79;ttilie</span> &lt;Brandvold&gt;<br/></div>\"}}";
	json_t *j = run(&o, in);
	const char *div = str(j, "text.div");
	assert_string_equal(div, "<div xmlns=\"http://www.w3.org/1999/xhtml\"><span title=\"[NAME]\">[NAME]</span> "
				 "&lt;[NAME]&gt;<br/></div>");
	json_decref(j);
	/* malformed markup is replaced by a generated div */
	const char *bad = "{\"resourceType\":\"Basic\",\"text\":{\"status\":\"additional\",\"div\":\"<div>Ottilie "
			  "<![CDATA[x]]></div>\"}}";
	j = run(&o, bad);
	assert_string_equal(str(j, "text.div"), "<div xmlns=\"http://www.w3.org/1999/xhtml\">[narrative removed]</div>");
	json_decref(j);
	const char *bad2 = "{\"resourceType\":\"Basic\",\"text\":{\"status\":\"additional\",\"div\":\"<div>&bogus; "
			   "Ottilie</div>\"}}";
	j = run(&o, bad2);
	assert_null(strstr(str(j, "text.div"), "Ottilie"));
	json_decref(j);
}

static void test_bad_input(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SAFE_HARBOR);
	struct salus_buf b;
	salus_buf_init(&b, 1 << 20);
	static const char *const bad[] = {
		"", "not json", "{", "[1,2]", "{\"a\":1}", "{\"resourceType\":5}", "{\"resourceType\":\"\"}",
		"{\"resourceType\":\"Patient\",\"id\":\"a\",\"id\":\"b\"}", "\"Patient\"",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(salus_deid_fhir_json(&o, bad[i], strlen(bad[i]), true, &b), SALUS_EINVALID);
		assert_int_equal(b.n, 0);
	}
	const char utf8[] = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Br\xff\xfe\"}]}";
	assert_int_equal(salus_deid_fhir_json(&o, utf8, sizeof utf8 - 1, true, &b), SALUS_EINVALID);
	const char nul[] = "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"A\\u0000B\"}]}";
	assert_int_equal(salus_deid_fhir_json(&o, nul, sizeof nul - 1, true, &b), SALUS_EINVALID);
	/* too deep */
	struct salus_buf deep;
	salus_buf_init(&deep, 1 << 20);
	assert_int_equal(salus_buf_adds(&deep, "{\"resourceType\":\"Basic\",\"x\":"), 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(salus_buf_adds(&deep, "{\"x\":"), 0);
	assert_int_equal(salus_buf_adds(&deep, "1"), 0);
	for (int i = 0; i < 101; i++)
		assert_int_equal(salus_buf_addc(&deep, '}'), 0);
	assert_int_equal(salus_deid_fhir_json(&o, deep.p, deep.n, true, &b), SALUS_EINVALID);
	salus_buf_release(&deep);
	/* no key */
	o.x.key = NULL;
	const char *ok = "{\"resourceType\":\"Patient\"}";
	assert_int_equal(salus_deid_fhir_json(&o, ok, strlen(ok), true, &b), SALUS_EUSAGE);
	salus_buf_release(&b);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	struct salus_deid_fhir_opts o = fopts(SALUS_DEID_SAFE_HARBOR);
	for (unsigned long n = 1; n < 5000; n++) {
		struct salus_buf b;
		salus_buf_init(&b, 1 << 22);
		salus_alloc_fail_at(n, 1);
		int rc = salus_deid_fhir_json(&o, bundle, strlen(bundle), true, &b);
		salus_alloc_fail_at(0, 0);
		salus_buf_release(&b);
		if (rc == 0)
			return;
		assert_true(rc == SALUS_ENOMEM || rc == SALUS_EINVALID); /* jansson reports OOM while parsing as a parse error */
	}
	fail_msg("never succeeded");
}

static int setup(void **state)
{
	(void)state;
	salus_alloc_install();
	for (int i = 0; i < SALUS_DEID_KEY_LEN; i++) {
		key[i] = (unsigned char)(i + 100);
		key2[i] = (unsigned char)(200 - i);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_patient),    cmocka_unit_test(test_patient_modes),
		cmocka_unit_test(test_bundle),     cmocka_unit_test(test_ndjson),
		cmocka_unit_test(test_no_detector), cmocka_unit_test(test_narrative_edge),
		cmocka_unit_test(test_bad_input),  cmocka_unit_test(test_alloc_failures),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
