/*
 * test_search.c — FHIR search end to end on a temporary SQLite store:
 * normalisation, date and number ranges, parameter ids, then resources
 * written through the REST handler (indexed by the hook) and searched with
 * every parameter type, modifiers, prefixes, chaining, _has, _include,
 * _revinclude, _sort, paging, _summary and _elements; plus query plans.
 */
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
#include "core/err.h"
#include "fhir/defs.h"
#include "fhir/rest.h"
#include "fhir/search.h"
#include "store/store.h"

static void t_norm(void **state)
{
	(void)state;
	struct salus_buf b;
	salus_buf_init(&b, 1024);
	assert_int_equal(salus_fhir_norm("Ébène SMITH", strlen("Ébène SMITH"), &b), 0);
	assert_string_equal(b.p, "ebene smith");
	assert_int_equal(salus_fhir_norm("Straße", strlen("Straße"), &b), 0);
	assert_string_equal(b.p, "strasse");
	salus_buf_release(&b);
}

static void t_dates(void **state)
{
	(void)state;
	int64_t lo, hi;
	assert_int_equal(salus_fhir_date_range("2013", 4, &lo, &hi), 0);
	assert_int_equal(lo, 1356998400000LL);
	assert_int_equal(hi, 1388534400000LL - 1);
	assert_int_equal(salus_fhir_date_range("2013-02", 7, &lo, &hi), 0);
	assert_int_equal(hi - lo + 1, 28LL * 86400000);
	assert_int_equal(salus_fhir_date_range("2013-01-14T10:00:00Z", 20, &lo, &hi), 0);
	assert_int_equal(hi - lo + 1, 1000);
	assert_int_equal(salus_fhir_date_range("2013-01-14T10:00:00.5+01:00", 27, &lo, &hi), 0);
	assert_int_equal(lo, 1358154000500LL);
	assert_int_equal(hi - lo + 1, 100);
	assert_int_equal(salus_fhir_date_range("2013-13", 7, &lo, &hi), SALUS_EINVALID);
	assert_int_equal(salus_fhir_date_range("2013-02-29", 10, &lo, &hi), SALUS_EINVALID);
	assert_int_equal(salus_fhir_date_range("x", 1, &lo, &hi), SALUS_EINVALID);
}

static void t_numbers(void **state)
{
	(void)state;
	double v, lo, hi;
	assert_int_equal(salus_fhir_number_range("100", 3, &v, &lo, &hi), 0);
	assert_true(lo == 99.5 && hi == 100.5);
	assert_int_equal(salus_fhir_number_range("100.00", 6, &v, &lo, &hi), 0);
	assert_true(hi - lo > 0.0099 && hi - lo < 0.0101);
	assert_int_equal(salus_fhir_number_range("1e2", 3, &v, &lo, &hi), 0);
	assert_true(v == 100 && lo == 95 && hi == 105); /* the specification's example */
	assert_int_equal(salus_fhir_number_range("0.5", 3, &v, &lo, &hi), 0);
	assert_true(lo == 0.45 && hi == 0.55); /* the decimals, not 0.44999999999999996 */
	assert_int_equal(salus_fhir_number_range("5E-1", 4, &v, &lo, &hi), 0);
	assert_true(v == 0.5 && lo == 0.495 && hi == 0.505);
	assert_int_equal(salus_fhir_number_range("1.", 2, &v, &lo, &hi), SALUS_EINVALID);
	assert_int_equal(salus_fhir_number_range("abc", 3, &v, &lo, &hi), SALUS_EINVALID);
}

/* Parameter ids are distinct over all definitions (and composite components). */
static void t_param_ids(void **state)
{
	(void)state;
	size_t cap = 1 << 16, n = 0;
	uint32_t *ids = calloc(cap, sizeof *ids);
	assert_non_null(ids);
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) {
		const char *t = salus_fhir_resource_type_at(i);
		const struct salus_fhir_type *ty = salus_fhir_type_find(t, strlen(t));
		for (size_t k = 0; k < salus_fhir_sp_count(ty); k++) {
			struct salus_fhir_sp_info info;
			salus_fhir_sp_get(salus_fhir_sp_at(ty, k), &info);
			assert_true(n < cap);
			ids[n++] = salus_fhir_search_param_id(t, info.code);
			for (size_t c = 0; c < info.ncomponents; c++) {
				char code[160];
				snprintf(code, sizeof code, "%s#%zu", info.code, c);
				ids[n++] = salus_fhir_search_param_id(t, code);
			}
		}
	}
	ids[n++] = salus_fhir_search_param_id("Location", "near#0"); /* Location.position */
	ids[n++] = salus_fhir_search_param_id("Location", "near#1");
	for (size_t i = 0; i < salus_fhir_resource_type_count(); i++) { /* patient+code pairs */
		assert_true(n < cap);
		ids[n++] = salus_fhir_search_patient_code_id(salus_fhir_resource_type_at(i));
	}
	/* the contained resources' ids and the contained-type marker collide with none */
	size_t base = n;
	for (size_t i = 0; i < base; i++) {
		assert_true(n < cap);
		ids[n++] = salus_fhir_search_contained_id(ids[i]);
	}
	ids[n++] = salus_fhir_search_contained_marker();
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			assert_true(ids[i] != ids[j]);
	free(ids);
}

/* ---- end to end ---- */

struct env {
	char path[128];
	struct salus_store *st;
};

/* DELETE T/id through the FHIR layer (the index rows go with it). */
static void delete_res(struct env *e, const char *type, const char *id)
{
	struct salus_fhir_req rq = {.op = SALUS_FHIR_DELETE, .base = "https://x/fhir"};
	struct salus_fhir_resp rs;
	snprintf(rq.type, sizeof rq.type, "%s", type);
	snprintf(rq.id, sizeof rq.id, "%s", id);
	salus_fhir_resp_init(&rs);
	int st = salus_fhir_handle(e->st, &rq, &rs);
	assert_true(st == 200 || st == 204);
	salus_fhir_resp_release(&rs);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof *e);
	snprintf(e->path, sizeof e->path, "/tmp/salus-test-search-%d.db", (int)getpid());
	unlink(e->path);
	struct salus_store_opts o = {.create = true, .readers = 2};
	if (salus_store_open(e->path, &o, &e->st))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	salus_store_free(e->st);
	char p[160];
	unlink(e->path);
	snprintf(p, sizeof p, "%s-wal", e->path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", e->path);
	unlink(p);
	free(e);
	return 0;
}

static void put(struct env *e, const char *type, const char *id, const char *json0)
{
	json_t *j = json_loads(json0, 0, NULL);
	assert_non_null(j);
	json_object_set_new(j, "id", json_string(id));
	char *json = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct salus_fhir_req rq = {.op = SALUS_FHIR_UPDATE, .base = "https://x/fhir", .body = json,
				    .body_len = strlen(json)};
	struct salus_fhir_resp rs;
	snprintf(rq.type, sizeof rq.type, "%s", type);
	snprintf(rq.id, sizeof rq.id, "%s", id);
	salus_fhir_resp_init(&rs);
	int st = salus_fhir_handle(e->st, &rq, &rs);
	if (st != 201 && st != 200)
		fprintf(stderr, "put %s/%s: %d %s\n", type, id, st, rs.body.p);
	assert_true(st == 201 || st == 200);
	salus_fhir_resp_release(&rs);
	free(json);
}

/* Run a search "name=value&name=value" (values unencoded) and return the
 * sorted comma-joined "Type/id" of the matches ("!400" on a 400). */
static char *search(struct env *e, const char *type, const char *query)
{
	struct salus_param ps[16];
	size_t np = 0;
	char *q = strdup(query), *save = NULL;
	for (char *tok = strtok_r(q, "&", &save); tok && np < 16; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		*eq = 0;
		ps[np++] = (struct salus_param){tok, eq + 1};
	}
	struct salus_fhir_req rq = {.op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps,
				    .nparams = np};
	struct salus_fhir_resp rs;
	snprintf(rq.type, sizeof rq.type, "%s", type);
	salus_fhir_resp_init(&rs);
	int st = salus_fhir_handle(e->st, &rq, &rs);
	char *out = calloc(1, 8192);
	if (st != 200) {
		snprintf(out, 8192, "!%d", st);
	} else {
		json_t *b = json_loads(rs.body.p, 0, NULL);
		json_t *ent = json_object_get(b, "entry");
		size_t i;
		json_t *x;
		json_array_foreach(ent, i, x)
		{
			json_t *r = json_object_get(x, "resource");
			const char *mode = json_string_value(json_object_get(json_object_get(x, "search"), "mode"));
			char one[200];
			snprintf(one, sizeof one, "%s%s%s/%s", i ? "," : "", mode && !strcmp(mode, "include") ? "+" : "",
				 json_string_value(json_object_get(r, "resourceType")),
				 json_string_value(json_object_get(r, "id")));
			strcat(out, one);
		}
		json_decref(b);
	}
	salus_fhir_resp_release(&rs);
	free(q);
	return out;
}

#define EXPECT(e, type, q, want)                                                                                       \
	do {                                                                                                           \
		char *got_ = search(e, type, q);                                                                       \
		if (strcmp(got_, want))                                                                                \
			fprintf(stderr, "%s?%s\n  got:  %s\n  want: %s\n", type, q, got_, want);                       \
		assert_string_equal(got_, want);                                                                       \
		free(got_);                                                                                            \
	} while (0)

static void load(struct env *e)
{
	put(e, "Patient", "p1",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smith\",\"given\":[\"Élodie\"]}],"
	    "\"gender\":\"female\",\"birthDate\":\"1970-03-25\",\"active\":true,"
	    "\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"A1\",\"type\":{\"coding\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v2-0203\",\"code\":\"MR\"}]}}],"
	    "\"telecom\":[{\"system\":\"phone\",\"value\":\"555-1234\"}],"
	    "\"text\":{\"status\":\"generated\",\"div\":\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">Elodie the gardener</div>\"},"
	    "\"managingOrganization\":{\"reference\":\"Organization/o1\"}}");
	put(e, "Patient", "p2",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Smithers\",\"given\":[\"Bob\"]}],"
	    "\"gender\":\"male\",\"birthDate\":\"1980\",\"identifier\":[{\"system\":\"urn:mrn\",\"value\":\"B2\"}]}");
	put(e, "Patient", "p3",
	    "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Jones\"}],\"meta\":{\"tag\":[{\"system\":\"urn:t\",\"code\":\"vip\"}]}}");
	put(e, "Organization", "o1", "{\"resourceType\":\"Organization\",\"name\":\"Acme Clinic\"}");
	put(e, "Observation", "ob1",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/p1\"},"
	    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\",\"display\":\"Heart rate\"}]},"
	    "\"effectiveDateTime\":\"2020-01-10T10:00:00Z\","
	    "\"valueQuantity\":{\"value\":72,\"unit\":\"/min\",\"system\":\"http://unitsofmeasure.org\",\"code\":\"/min\"}}");
	put(e, "Observation", "ob2",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/p1\"},"
	    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"}]},"
	    "\"effectivePeriod\":{\"start\":\"2020-02-01\",\"end\":\"2020-02-03\"},"
	    "\"valueQuantity\":{\"value\":100.5,\"system\":\"http://unitsofmeasure.org\",\"code\":\"/min\"}}");
	put(e, "Observation", "ob3",
	    "{\"resourceType\":\"Observation\",\"status\":\"preliminary\",\"subject\":{\"reference\":\"Patient/p2\"},"
	    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"29463-7\"}],\"text\":\"Body weight\"},"
	    "\"effectiveDateTime\":\"2021\","
	    "\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}]},"
	    "\"valueQuantity\":{\"value\":120,\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}]}");
}

static void t_e2e(void **state)
{
	struct env *e = *state;
	load(e);
	/* string: prefix, case and accents; :exact; :contains */
	EXPECT(e, "Patient", "name=smi", "Patient/p1,Patient/p2");
	EXPECT(e, "Patient", "name=elodie", "Patient/p1");
	EXPECT(e, "Patient", "name:exact=Smith", "Patient/p1");
	EXPECT(e, "Patient", "name:exact=smith", "");
	EXPECT(e, "Patient", "name:contains=ITHE", "Patient/p2");
	EXPECT(e, "Patient", "family=smith,jones", "Patient/p1,Patient/p2,Patient/p3");
	EXPECT(e, "Patient", "family=smith&given=bob", "Patient/p2");
	/* token */
	EXPECT(e, "Patient", "gender=female", "Patient/p1");
	EXPECT(e, "Patient", "gender:not=female", "Patient/p2,Patient/p3");
	EXPECT(e, "Patient", "identifier=urn:mrn|A1", "Patient/p1");
	EXPECT(e, "Patient", "identifier=|A1", "");
	EXPECT(e, "Patient", "identifier=urn:mrn|", "Patient/p1,Patient/p2");
	EXPECT(e, "Patient", "identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|A1", "Patient/p1");
	EXPECT(e, "Patient", "gender:missing=true", "Patient/p3");
	EXPECT(e, "Patient", "active=true", "Patient/p1");
	EXPECT(e, "Patient", "phone=555-1234", "Patient/p1");
	EXPECT(e, "Observation", "code:text=heart", "Observation/ob1");
	EXPECT(e, "Observation", "code:text=body", "Observation/ob3");
	EXPECT(e, "Patient", "_tag=urn:t|vip", "Patient/p3");
	/* date */
	EXPECT(e, "Patient", "birthdate=1970", "Patient/p1");
	EXPECT(e, "Patient", "birthdate=1970-03-25", "Patient/p1");
	EXPECT(e, "Patient", "birthdate=gt1975", "Patient/p2");
	EXPECT(e, "Patient", "birthdate=lt1980-06-01", "Patient/p1,Patient/p2");
	EXPECT(e, "Patient", "birthdate=eq1980-06", "");
	EXPECT(e, "Patient", "birthdate=ge1980-06-01", "Patient/p2");
	EXPECT(e, "Patient", "birthdate=sa1970", "Patient/p2");
	EXPECT(e, "Patient", "birthdate=eb1980", "Patient/p1");
	EXPECT(e, "Patient", "birthdate=ne1970", "Patient/p2");
	EXPECT(e, "Observation", "date=2020-02-02", "");
	EXPECT(e, "Observation", "date=2020-02", "Observation/ob2");
	EXPECT(e, "Observation", "date=ge2020-01-10T10:00:00Z", "Observation/ob1,Observation/ob2,Observation/ob3");
	EXPECT(e, "Observation", "date=le2020-01-31", "Observation/ob1");
	/* quantity and number */
	EXPECT(e, "Observation", "value-quantity=72", "Observation/ob1");
	EXPECT(e, "Observation", "value-quantity=gt80", "Observation/ob2");
	EXPECT(e, "Observation", "value-quantity=100|http://unitsofmeasure.org|/min", "");
	EXPECT(e, "Observation", "value-quantity=100.5|http://unitsofmeasure.org|/min", "Observation/ob2");
	EXPECT(e, "Observation", "value-quantity=le72||/min", "Observation/ob1");
	EXPECT(e, "Observation", "component-value-quantity=120", "Observation/ob3");
	/* composite */
	EXPECT(e, "Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt100", "Observation/ob3");
	EXPECT(e, "Observation", "component-code-value-quantity=http://loinc.org|8480-6$lt100", "");
	EXPECT(e, "Observation", "code-value-quantity=8867-4$ge100", "Observation/ob2");
	/* reference, chaining, _has */
	EXPECT(e, "Observation", "subject=Patient/p1", "Observation/ob1,Observation/ob2");
	EXPECT(e, "Observation", "patient=p2", "Observation/ob3");
	EXPECT(e, "Observation", "subject:Patient=p2", "Observation/ob3");
	EXPECT(e, "Observation", "subject:Patient.name=smithers", "Observation/ob3");
	EXPECT(e, "Observation", "patient.organization.name=acme", "Observation/ob1,Observation/ob2");
	EXPECT(e, "Patient", "_has:Observation:patient:code=29463-7", "Patient/p2");
	EXPECT(e, "Patient", "_has:Observation:subject:status=final", "Patient/p1");
	/* _id, _text, _content */
	EXPECT(e, "Patient", "_id=p2,p3", "Patient/p2,Patient/p3");
	EXPECT(e, "Patient", "_text=gardener", "Patient/p1");
	EXPECT(e, "Patient", "_content=bob", "Patient/p2");
	/* sort, include, revinclude */
	EXPECT(e, "Observation", "_sort=-date", "Observation/ob3,Observation/ob2,Observation/ob1");
	EXPECT(e, "Observation", "_sort=status,-date", "Observation/ob2,Observation/ob1,Observation/ob3");
	EXPECT(e, "Patient", "_sort=family", "Patient/p3,Patient/p1,Patient/p2");
	EXPECT(e, "Observation", "code=29463-7&_include=Observation:subject", "Observation/ob3,+Patient/p2");
	EXPECT(e, "Patient", "_id=p1&_revinclude=Observation:subject",
	       "Patient/p1,+Observation/ob1,+Observation/ob2");
	EXPECT(e, "Observation", "_id=ob1&_include=Observation:subject&_include:iterate=Patient:organization",
	       "Observation/ob1,+Patient/p1,+Organization/o1");
	/* errors */
	EXPECT(e, "Patient", "nonsense=1", "!400");
	EXPECT(e, "Patient", "birthdate=xyz", "!400");
	EXPECT(e, "Patient", "name:below=x", "!400");
	/* delete removes index rows; update replaces them */
	put(e, "Patient", "p3", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Brown\"}]}");
	EXPECT(e, "Patient", "family=jones", "");
	EXPECT(e, "Patient", "family=brown", "Patient/p3");
}

/* Keyset paging visits every match once, in order, under a write between pages. */
static void t_paging(void **state)
{
	struct env *e = *state;
	char id[16], body[256];
	for (int i = 0; i < 25; i++) {
		snprintf(id, sizeof id, "q%02d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"birthDate\":\"19%02d-01-01\",\"name\":[{\"family\":\"Page\"}]}",
			 50 + (i * 7) % 25);
		put(e, "Patient", id, body);
	}
	struct salus_fhir_search *s;
	const char *why;
	struct salus_param p[] = {{"family", "page"}, {"_sort", "-birthdate"}, {"_count", "10"}};
	assert_int_equal(salus_fhir_search_parse("Patient", p, 3, false, &s, &why), 0);
	salus_fhir_search_free(s);
	/* through the handler, following next links */
	char cursor[1024] = "";
	int seen = 0, pages = 0;
	for (;;) {
		struct salus_param ps[4] = {{"family", "page"}, {"_sort", "-birthdate"}, {"_count", "10"}};
		size_t np = 3;
		if (cursor[0])
			ps[np++] = (struct salus_param){"_cursor", cursor};
		struct salus_fhir_req rq = {.op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps,
					    .nparams = np};
		snprintf(rq.type, sizeof rq.type, "Patient");
		struct salus_fhir_resp rs;
		salus_fhir_resp_init(&rs);
		assert_int_equal(salus_fhir_handle(e->st, &rq, &rs), 200);
		json_t *b = json_loads(rs.body.p, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(b, "total")), 25);
		seen += (int)json_array_size(json_object_get(b, "entry"));
		pages++;
		if (pages == 1)
			put(e, "Patient", "zz", "{\"resourceType\":\"Patient\",\"name\":[{\"family\":\"Other\"}]}");
		const char *next = NULL;
		size_t i;
		json_t *l;
		json_array_foreach(json_object_get(b, "link"), i, l)
		{
			if (!strcmp(json_string_value(json_object_get(l, "relation")), "next"))
				next = json_string_value(json_object_get(l, "url"));
		}
		if (!next) {
			json_decref(b);
			salus_fhir_resp_release(&rs);
			break;
		}
		const char *c = strstr(next, "_cursor=");
		assert_non_null(c);
		snprintf(cursor, sizeof cursor, "%s", c + 8);
		char *amp = strchr(cursor, '&');
		if (amp)
			*amp = 0;
		json_decref(b);
		salus_fhir_resp_release(&rs);
	}
	assert_int_equal(seen, 25);
	assert_int_equal(pages, 3);
}

/* The Bundle.total of a search (-1: none, -2: not 200). */
static long search_total(struct env *e, const char *type, const char *query)
{
	struct salus_param ps[16];
	size_t np = 0;
	char *q = strdup(query), *save = NULL;
	for (char *tok = strtok_r(q, "&", &save); tok && np < 16; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		*eq = 0;
		ps[np++] = (struct salus_param){tok, eq + 1};
	}
	struct salus_fhir_req rq = {
	    .op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps, .nparams = np};
	struct salus_fhir_resp rs;
	snprintf(rq.type, sizeof rq.type, "%s", type);
	salus_fhir_resp_init(&rs);
	long total = -2;
	if (salus_fhir_handle(e->st, &rq, &rs) == 200) {
		json_t *b = json_loads(rs.body.p, 0, NULL);
		json_t *t = json_object_get(b, "total");
		total = t ? (long)json_integer_value(t) : -1;
		json_decref(b);
	}
	salus_fhir_resp_release(&rs);
	free(q);
	return total;
}

/* The patient+code pairs drive alone (the patient, chain and code clauses they
 * imply are left out, and the matches, their total and sort keys come from
 * the pair rows): the same answers as the searches without pairs (subject=
 * has none), a resource with two matching codes once, paging, a delete. */
/* The _cursor value of Bundle b's next link into cursor (empty when there is none): is there one? */
static bool next_cursor(json_t *b, char *cursor, size_t n)
{
	size_t i;
	json_t *l;
	cursor[0] = 0;
	json_array_foreach(json_object_get(b, "link"), i, l)
	{
		if (strcmp(json_string_value(json_object_get(l, "relation")), "next"))
			continue;
		const char *c = strstr(json_string_value(json_object_get(l, "url")), "_cursor=");
		assert_non_null(c);
		snprintf(cursor, n, "%s", c + 8);
		char *amp = strchr(cursor, '&');
		if (amp)
			*amp = 0;
		return true;
	}
	return false;
}

static void t_pairs(void **state)
{
	struct env *e = *state;
	load(e);
	put(e, "Observation", "ob4",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/"
	    "p1\"},"
	    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8867-4\"},"
	    "{\"system\":\"urn:local\",\"code\":\"hr\"}]},\"effectiveDateTime\":\"2019-05-01\"}");
	put(e, "Observation", "ob5",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":\"Patient/"
	    "p2\"},"
	    "\"code\":{\"coding\":[{\"code\":\"8867-4\"}]},\"effectiveDateTime\":\"2022-05-01\"}");
	const char *same[][2] = {
	    {"patient=p1&code=8867-4", "subject=Patient/p1&code=8867-4"},
	    {"patient=p1&code=8867-4,hr", "subject=Patient/p1&code=8867-4,hr"},
	    {"patient=p1&code=http://loinc.org|8867-4&_sort=-date",
	     "subject=Patient/p1&code=http://loinc.org|8867-4&_sort=-date"},
	    {"patient=p1&code=urn:local|hr", "subject=Patient/p1&code=urn:local|hr"},
	    {"patient=p2&code=|8867-4", "subject=Patient/p2&code=|8867-4"},
	    {"patient=p1&code=8867-4&date=ge2020", "subject=Patient/p1&code=8867-4&date=ge2020"},
	    {"subject:Patient.name=smi&code=8867-4", "subject=Patient/p1,Patient/p2&code=8867-4"},
	    {"patient:Patient.name=smithers&code=8867-4", "subject=Patient/p2&code=8867-4"},
	};
	for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
		char *a = search(e, "Observation", same[i][0]), *b = search(e, "Observation", same[i][1]);
		if (strcmp(a, b))
			fprintf(stderr, "%s: %s\n%s: %s\n", same[i][0], a, same[i][1], b);
		assert_string_equal(a, b);
		assert_int_equal(search_total(e, "Observation", same[i][0]),
		                 search_total(e, "Observation", same[i][1]));
		free(a);
		free(b);
	}
	EXPECT(e, "Observation", "patient=p1&code=8867-4,hr",
	       "Observation/ob1,Observation/ob2,Observation/ob4");
	assert_int_equal(search_total(e, "Observation", "patient=p1&code=8867-4,hr&_count=1"), 3);
	assert_int_equal(search_total(e, "Observation", "patient=p1&code=8867-4,hr&_total=none"), -1);
	EXPECT(e, "Observation", "patient=p1&code=8867-4&_sort=date",
	       "Observation/ob4,Observation/ob1,Observation/ob2");
	EXPECT(e, "Observation", "subject:Patient.name=smi&code=8867-4&_sort=-date",
	       "Observation/ob5,Observation/ob2,Observation/ob1,Observation/ob4");
	/* every page once, in order */
	char cursor[1024] = "", got[512] = "";
	for (int pages = 0; pages < 10; pages++) {
		struct salus_param ps[4] = {
		    {"subject:Patient.name", "smi"}, {"code", "8867-4"}, {"_count", "1"}};
		size_t np = 3;
		if (cursor[0])
			ps[np++] = (struct salus_param){"_cursor", cursor};
		struct salus_fhir_req rq = {
		    .op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps, .nparams = np};
		snprintf(rq.type, sizeof rq.type, "Observation");
		struct salus_fhir_resp rs;
		salus_fhir_resp_init(&rs);
		assert_int_equal(salus_fhir_handle(e->st, &rq, &rs), 200);
		json_t *b = json_loads(rs.body.p, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(b, "total")), 4);
		json_t *r = json_object_get(json_array_get(json_object_get(b, "entry"), 0), "resource");
		strcat(got, json_string_value(json_object_get(r, "id")));
		strcat(got, " ");
		bool next = next_cursor(b, cursor, sizeof cursor);
		json_decref(b);
		salus_fhir_resp_release(&rs);
		if (!next)
			break;
	}
	assert_string_equal(got, "ob1 ob2 ob4 ob5 ");
	/* the count of a chain never reads the matches' resource rows (sx_res r) */
	{
		struct salus_param ps[] = {{"subject:Patient.name", "smi"}, {"code", "8867-4"}};
		struct salus_fhir_search *s;
		const char *why;
		char *plan = NULL;
		assert_int_equal(salus_fhir_search_parse("Observation", ps, 2, false, &s, &why), 0);
		assert_int_equal(salus_store_search_plan(e->st, salus_fhir_search_query(s), true, &plan), 0);
		assert_null(strstr(plan, "SEARCH r "));
		assert_non_null(strstr(plan, "SEARCH x"));
		salus_free(plan);
		salus_fhir_search_free(s);
	}
	/* a deleted match is gone from the answer and its total */
	delete_res(e, "Observation", "ob2");
	EXPECT(e, "Observation", "patient=p1&code=8867-4", "Observation/ob1,Observation/ob4");
	assert_int_equal(search_total(e, "Observation", "patient=p1&code=8867-4&_count=1"), 2);
	/* one_row (no DISTINCT) only where a resource has at most one row for the clause */
	{
		const char *cases[][3] = {
		    {"Observation", "subject=Patient/p1", "1"},
		    {"Observation", "performer=Practitioner/d1", "0"},
		    {"Encounter", "subject:Patient.name=x", "1"},
		    {"Patient", "general-practitioner=d1", "0"},
		    {"Observation", "subject:missing=true", "0"},
		    {"Observation", "subject=Patient/p1,Patient/p2", "1"},
		};
		for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
			char n[64], v[64];
			snprintf(n, sizeof n, "%s", cases[i][1]);
			char *eq = strchr(n, '=');
			*eq = 0;
			snprintf(v, sizeof v, "%s", eq + 1);
			struct salus_param ps = {n, v};
			struct salus_fhir_search *s;
			const char *why;
			assert_int_equal(salus_fhir_search_parse(cases[i][0], &ps, 1, false, &s, &why), 0);
			assert_int_equal(salus_fhir_search_query(s)->clauses[0].one_row,
			                 cases[i][2][0] == '1');
			salus_fhir_search_free(s);
		}
		/* the pair clause (last): one code value only */
		const char *pairs[][2] = {{"8867-4", "1"}, {"8867-4,hr", "0"}};
		for (size_t i = 0; i < 2; i++) {
			struct salus_param ps[] = {{"patient", "p1"},
			                           {"code", (char *)(uintptr_t)pairs[i][0]}};
			struct salus_fhir_search *s;
			const char *why;
			assert_int_equal(salus_fhir_search_parse("Observation", ps, 2, false, &s, &why), 0);
			const struct salus_sq *q = salus_fhir_search_query(s);
			assert_true(q->clauses[q->nclauses - 1].drive);
			assert_int_equal(q->clauses[q->nclauses - 1].one_row, pairs[i][1][0] == '1');
			salus_fhir_search_free(s);
		}
	}
	/* ... so their plans have no DISTINCT; a many-valued reference keeps it */
	{
		const char *plans[][3] = {{"subject:Patient.name", "smi", "0"},
		                          {"performer:Practitioner.name", "dr", "1"}};
		for (size_t i = 0; i < 2; i++) {
			struct salus_param ps[] = {
			    {(char *)(uintptr_t)plans[i][0], (char *)(uintptr_t)plans[i][1]}};
			struct salus_fhir_search *s;
			const char *why;
			char *plan = NULL;
			assert_int_equal(salus_fhir_search_parse("Observation", ps, 1, false, &s, &why), 0);
			struct salus_sq sq = *salus_fhir_search_query(s);
			sq.with_total = true;
			assert_int_equal(salus_store_search_plan(e->st, &sq, false, &plan), 0);
			assert_int_equal(strstr(plan, "FOR DISTINCT") != NULL, plans[i][2][0] == '1');
			salus_free(plan);
			salus_fhir_search_free(s);
		}
	}
	/* the probes and sort keys read a candidate's own rows through the (rid, p)
	 * indexes: without them SQLite plans `USING PRIMARY KEY (p=?)`, no SCAN, but a
	 * range over every row of the parameter per candidate (1,000x slower on 20k
	 * resources, docs/performance.md "Write path, sixth pass") */
	{
		const char *shapes[][4] = {
		    {"patient", "p1", "code", "8867-4"},
		    {"code", "8867-4", "value-quantity", "gt1"},
		    {"code", "8867-4", "_sort", "-date"},
		};
		for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
			struct salus_param ps[] = {{(char *)(uintptr_t)shapes[i][0], (char *)(uintptr_t)shapes[i][1]},
			                           {(char *)(uintptr_t)shapes[i][2], (char *)(uintptr_t)shapes[i][3]},
			                           {"date", "ge2000"}};
			struct salus_fhir_search *s;
			const char *why;
			char *plan = NULL;
			assert_int_equal(salus_fhir_search_parse("Observation", ps, 3, false, &s, &why), 0);
			struct salus_sq sq = *salus_fhir_search_query(s);
			sq.with_total = true;
			assert_int_equal(salus_store_search_plan(e->st, &sq, false, &plan), 0);
			assert_null(strstr(plan, "(p=?)"));
			assert_non_null(strstr(plan, "_rid (rid=? AND p=?"));
			salus_free(plan);
			salus_fhir_search_free(s);
		}
	}
	/* a resource with two matching rows of a many-valued reference is one match */
	put(e, "Practitioner", "d1", "{\"resourceType\":\"Practitioner\",\"name\":[{\"family\":\"Drake\"}]}");
	put(e, "Practitioner", "d2", "{\"resourceType\":\"Practitioner\",\"name\":[{\"family\":\"Drew\"}]}");
	put(e, "Observation", "ob6",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"code\":{\"text\":\"x\"},"
	    "\"performer\":[{\"reference\":\"Practitioner/d1\"},{\"reference\":\"Practitioner/d2\"}]}");
	EXPECT(e, "Observation", "performer:Practitioner.name=dr", "Observation/ob6");
	assert_int_equal(search_total(e, "Observation", "performer:Practitioner.name=dr&_count=1"), 1);
	assert_int_equal(search_total(e, "Observation", "performer:Practitioner.name=dr&_summary=count"), 1);
	/* while the pairs are marked incomplete the store strips them: the implied clauses are back */
	assert_int_equal(salus_store_kv_put(e->st, "store", "index.patient-code.incomplete", "1", 1), 0);
	salus_store_free(e->st);
	struct salus_store_opts o = {.create = false, .readers = 2};
	assert_int_equal(salus_store_open(e->path, &o, &e->st), 0);
	EXPECT(e, "Observation", "patient=p1&code=8867-4,hr", "Observation/ob1,Observation/ob4");
	EXPECT(e, "Observation", "subject:Patient.name=smi&code=8867-4&_sort=-date",
	       "Observation/ob5,Observation/ob1,Observation/ob4");
	EXPECT(e, "Observation", "patient:Patient.name=smithers&code=29463-7", "Observation/ob3");
	assert_int_equal(search_total(e, "Observation", "subject:Patient.name=smi&code=8867-4&_count=1"), 3);
}

/* Every SCAN in a plan is of a materialized subquery or co-routine (the page
 * "m", the matches "m0", "(subquery-N)"), never of a table or an index
 * walked whole. */
static bool plan_scans_only_m(const char *plan)
{
	for (const char *l = plan; l && *l;) {
		const char *e = strchr(l, '\n');
		size_t n = e ? (size_t)(e - l) : strlen(l);
		const char *sc = memmem(l, n, "SCAN ", 5);
		if (sc) {
			const char *what = sc + 5;
			size_t k = n - (size_t)(what - l);
			bool ok = (k == 1 && (what[0] == 'm' || what[0] == 'd')) ||
			          (k == 2 && !memcmp(what, "m0", 2)) ||
			          (k > 10 && !memcmp(what, "(subquery-", 10)) ||
			          (k > 13 && !memcmp(what + k - 13, "CONSTANT ROWS", 13)); /* a VALUES list */
			if (!ok)
				return false;
		}
		l = e ? e + 1 : NULL;
	}
	return true;
}

/* The page m is read as the outer loop and nothing sorts its rows again
 * (store_index.c compile): after the line "SCAN m" no temporary b-tree. */
static bool page_not_sorted_again(const char *plan)
{
	const char *m = strstr(plan, "\nSCAN m\n");
	return m && !strstr(m, "USE TEMP B-TREE");
}

/* The hot paths use indexes only (no full scans): the page query (with and
 * without its window total) and the count query of each shape, including
 * those of the benchmark (docs/search.md) and the query an _revinclude runs. */
static void t_plans(void **state)
{
	struct env *e = *state;
	load(e);
	const char *queries[][2] = {
	    {"Observation", "patient=p1&code=http://loinc.org|8867-4&date=ge2020-01-01&_sort=-date"},
	    {"Observation", "patient=p1&code=8302-2&date=ge2000-01-01&_sort=-date"},
	    {"Observation", "subject:Patient.name=smith&code=8302-2&_count=2"},
	    {"Observation", "patient:Patient.family=smi&code=http://loinc.org|8302-2"},
	    {"Observation", "patient=p1&code=8302-2,|x1&_sort=date"},
	    {"Encounter", "subject=Patient/p1"},
	    {"Observation", "patient=Patient/p1&_sort=date&_count=1"},
	    {"Patient", "name=Ste"},
	    {"Patient", "family=smi&gender=male"},
	    {"Patient", "name=smi"},
	    {"Patient", "identifier=urn:mrn|A1"},
	    {"Observation", "subject:Patient.name=smith"},
	    {"Patient", "_id=p1&_revinclude=Observation:subject"},
	    {"Patient", "gender:in=http://hl7.org/fhir/ValueSet/administrative-gender"},
	    {"Encounter", "class:below=http://terminology.hl7.org/CodeSystem/v3-ActCode|_ActEncounterCode"},
	    {"Observation", "patient=p1&status:not-in=http://hl7.org/fhir/ValueSet/observation-status"},
	    {"Medication", "_contained=true&code=http://rxnorm|1&form=tablet"},
	    {"Medication", "_contained=both&code=http://rxnorm|1"},
	    /* answered from the index rows (typed_rows): with a parameter sort, a chain alone */
	    {"Patient", "name=smi&_sort=family,-birthdate"},
	    {"Observation", "code=8302-2&status=final&_sort=-date&_count=5"},
	    {"Observation", "patient:Patient.name=smi&code=8302-2,8867-4&_sort=date"},
	    {"Encounter", "subject:Patient.family=smi"},
	    /* derived parameters (t_derived): subject rows to a Patient, the resource's own composite */
	    {"Observation", "patient=p1&_sort=-date"},
	    {"Encounter", "patient=p1&_sort=date"},
	    {"Observation", "patient=p1&code-value-quantity=8867-4$gt70"},
	    {"Observation", "combo-code=8480-6&_sort=patient"},
	    {"Patient", "_has:Observation:patient:code=8867-4"},
	    {NULL, "patient=p1"},
	    {NULL, "patient=Patient/p1&_type=Observation,Encounter,Condition"},
	};
	for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
		struct salus_param ps[8];
		size_t np = 0;
		char *q = strdup(queries[i][1]), *save = NULL;
		for (char *tok = strtok_r(q, "&", &save); tok; tok = strtok_r(NULL, "&", &save)) {
			char *eq = strchr(tok, '=');
			*eq = 0;
			ps[np++] = (struct salus_param){tok, eq + 1};
		}
		struct salus_fhir_search *s;
		const char *why;
		assert_int_equal(salus_fhir_search_parse(queries[i][0], ps, np, false, &s, &why), 0);
		for (int v = 0; v < 3; v++) {
			struct salus_sq sq = *salus_fhir_search_query(s);
			sq.with_total = v == 1;
			char *plan = NULL;
			assert_int_equal(salus_store_search_plan(e->st, &sq, v == 2, &plan), 0);
			if (!plan_scans_only_m(plan) || (getenv("SALUS_TEST_VERBOSE") && v == 0))
				fprintf(stderr, "%s?%s (%s)\n%s\n", queries[i][0] ? queries[i][0] : "(system)", queries[i][1],
					v == 2 ? "count" : v ? "page with total" : "page", plan);
			assert_true(plan_scans_only_m(plan));
			assert_non_null(strstr(plan, "SEARCH "));
			if (v != 2) /* the page's rows come out of m in its order: no sort after it */
				assert_true(page_not_sorted_again(plan));
			salus_free(plan);
		}
		salus_fhir_search_free(s);
		free(q);
	}
}

/* A token equality driving alone (system|code, |code; store_index.c
 * compile_ordered): its page is read in the primary key's rid order with no
 * materialized matches and no sort, its total counted on the index range.
 * The same answers, order, totals and pages as before: a resource with the
 * token twice is one match, paging by cursor sees each once, a delete. */
static void t_ordered(void **state)
{
	struct env *e = *state;
	char id[16], body[320];
	for (int i = 0; i < 12; i++) {
		snprintf(id, sizeof id, "o%02d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:ord\",\"value\":\"X\"}%s%s]}",
			 i == 3 ? ",{\"system\":\"urn:ord\",\"value\":\"X\",\"use\":\"old\"}" : "",
			 i % 4 == 1 ? ",{\"value\":\"Y\"}" : "");
		put(e, "Patient", id, body);
	}
	put(e, "Patient", "other", "{\"resourceType\":\"Patient\",\"identifier\":[{\"system\":\"urn:ord\",\"value\":\"Z\"}]}");
	EXPECT(e, "Patient", "identifier=urn:ord|X",
	       "Patient/o00,Patient/o01,Patient/o02,Patient/o03,Patient/o04,Patient/o05,Patient/o06,Patient/o07,"
	       "Patient/o08,Patient/o09,Patient/o10,Patient/o11");
	EXPECT(e, "Patient", "identifier=urn:ord|X&_count=4", "Patient/o00,Patient/o01,Patient/o02,Patient/o03");
	EXPECT(e, "Patient", "identifier=|Y", "Patient/o01,Patient/o05,Patient/o09");
	EXPECT(e, "Patient", "identifier=urn:ord|W", "");
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|X"), 12);
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|X&_count=4"), 12);
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|X&_count=4&_total=none"), -1);
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|X&_summary=count"), 12);
	assert_int_equal(search_total(e, "Patient", "identifier=|Y&_count=1"), 3);
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|W"), 0);
	/* through the handler, following next links: each match once, in rid order */
	char cursor[1024] = "", seen[512] = "";
	int pages = 0;
	for (;;) {
		struct salus_param ps[3] = {{"identifier", "urn:ord|X"}, {"_count", "5"}};
		size_t np = 2;
		if (cursor[0])
			ps[np++] = (struct salus_param){"_cursor", cursor};
		struct salus_fhir_req rq = {.op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps,
					    .nparams = np};
		snprintf(rq.type, sizeof rq.type, "Patient");
		struct salus_fhir_resp rs;
		salus_fhir_resp_init(&rs);
		assert_int_equal(salus_fhir_handle(e->st, &rq, &rs), 200);
		json_t *b = json_loads(rs.body.p, 0, NULL);
		assert_int_equal(json_integer_value(json_object_get(b, "total")), 12);
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(b, "entry"), i, x)
		{
			strcat(seen, json_string_value(json_object_get(json_object_get(x, "resource"), "id")));
			strcat(seen, ",");
		}
		pages++;
		bool next = next_cursor(b, cursor, sizeof cursor);
		json_decref(b);
		salus_fhir_resp_release(&rs);
		if (!next)
			break;
	}
	assert_int_equal(pages, 3);
	assert_string_equal(seen, "o00,o01,o02,o03,o04,o05,o06,o07,o08,o09,o10,o11,");
	/* the plans: the driver's primary key in order, no materialized matches, no temporary b-tree */
	{
		struct salus_param ps[] = {{"identifier", "urn:ord|X"}};
		struct salus_fhir_search *s;
		const char *why;
		assert_int_equal(salus_fhir_search_parse("Patient", ps, 1, false, &s, &why), 0);
		for (int v = 0; v < 3; v++) {
			struct salus_sq sq = *salus_fhir_search_query(s);
			sq.with_total = v >= 1;
			if (v == 2)
				sq.after = "i2"; /* a page after a cursor */
			char *plan = NULL;
			assert_int_equal(salus_store_search_plan(e->st, &sq, false, &plan), 0);
			if (strstr(plan, "TEMP B-TREE") || strstr(plan, "MATERIALIZE"))
				fprintf(stderr, "%s\n", plan);
			assert_null(strstr(plan, "TEMP B-TREE"));
			assert_null(strstr(plan, "MATERIALIZE"));
			assert_non_null(strstr(plan, "USING PRIMARY KEY (p=? AND code=? AND sys=?)"));
			assert_true(plan_scans_only_m(plan));
			assert_true(page_not_sorted_again(plan));
			salus_free(plan);
		}
		salus_fhir_search_free(s);
	}
	/* a local reference with its type: (p, tid, ttype, rid, ...) */
	for (int i = 0; i < 4; i++) {
		snprintf(id, sizeof id, "e%d", i);
		snprintf(body, sizeof body,
			 "{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
			 "\"subject\":{\"reference\":\"Patient/%s\"}}",
			 i == 2 ? "o02" : "o01");
		put(e, "Encounter", id, body);
	}
	EXPECT(e, "Encounter", "subject=Patient/o01", "Encounter/e0,Encounter/e1,Encounter/e3");
	EXPECT(e, "Encounter", "patient=o01&_count=2", "Encounter/e0,Encounter/e1");
	assert_int_equal(search_total(e, "Encounter", "subject=Patient/o01&_count=2"), 3);
	assert_int_equal(search_total(e, "Encounter", "subject=o02"), 1);
	{
		struct salus_param ps[] = {{"subject", "Patient/o01"}};
		struct salus_fhir_search *s;
		const char *why;
		char *plan = NULL;
		assert_int_equal(salus_fhir_search_parse("Encounter", ps, 1, false, &s, &why), 0);
		struct salus_sq sq = *salus_fhir_search_query(s);
		sq.with_total = true;
		assert_int_equal(salus_store_search_plan(e->st, &sq, false, &plan), 0);
		assert_null(strstr(plan, "TEMP B-TREE"));
		assert_null(strstr(plan, "MATERIALIZE"));
		assert_non_null(strstr(plan, "USING PRIMARY KEY (p=? AND tid=? AND ttype=?)"));
		salus_free(plan);
		salus_fhir_search_free(s);
	}
	/* a deleted match is gone from the answer and its total */
	delete_res(e, "Patient", "o03");
	EXPECT(e, "Patient", "identifier=urn:ord|X&_count=4", "Patient/o00,Patient/o01,Patient/o02,Patient/o04");
	assert_int_equal(search_total(e, "Patient", "identifier=urn:ord|X&_count=4"), 11);
}

/* Parsing of the set modifiers and of values with separators in them:
 * expected clause contents worked out from the R4 definitions. */
static const struct salus_sq_clause *parse1(const char *type, const char *base, const char *name, const char *value,
					    struct salus_fhir_search **s, const char **why)
{
	char n[128], v[256]; /* the parser copies what it keeps */
	snprintf(n, sizeof n, "%s", name);
	snprintf(v, sizeof v, "%s", value);
	struct salus_param p = {n, v};
	if (salus_fhir_search_parse_at(type, base, &p, 1, false, s, why))
		return NULL;
	return &salus_fhir_search_query(*s)->clauses[0];
}

static void t_modifiers(void **state)
{
	(void)state;
	struct salus_fhir_search *s = NULL;
	const char *why;
	const struct salus_sq_clause *c;

	/* administrative-gender: male female other unknown, one system */
	c = parse1("Patient", NULL, "gender:in", "http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->nvals, 4);
	assert_false(c->negate);
	for (size_t i = 0; i < c->nvals; i++) {
		assert_int_equal(c->vals[i].op, SALUS_SQ_TOK_SYS_CODE);
		assert_string_equal(c->vals[i].a, "http://hl7.org/fhir/administrative-gender");
	}
	salus_fhir_search_free(s);
	c = parse1("Patient", NULL, "gender:not-in", "http://hl7.org/fhir/ValueSet/administrative-gender", &s, &why);
	assert_non_null(c);
	assert_true(c->negate);
	salus_fhir_search_free(s);
	/* condition-clinical: active > recurrence, relapse; inactive > remission, resolved */
	c = parse1("Condition", NULL, "clinical-status:below", "http://terminology.hl7.org/CodeSystem/condition-clinical|active",
		   &s, &why);
	assert_non_null(c);
	assert_int_equal(c->nvals, 3);
	salus_fhir_search_free(s);
	c = parse1("Condition", NULL, "clinical-status:above",
		   "http://terminology.hl7.org/CodeSystem/condition-clinical|resolved", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->nvals, 2); /* resolved, inactive */
	salus_fhir_search_free(s);
	/* 400s: unknown value set, one that needs a terminology server, no system, no hierarchy */
	assert_null(parse1("Patient", NULL, "gender:in", "http://example.org/vs", &s, &why));
	assert_null(parse1("Observation", NULL, "code:in", "http://hl7.org/fhir/ValueSet/observation-codes", &s, &why));
	assert_null(parse1("Condition", NULL, "clinical-status:below", "active", &s, &why));
	assert_null(parse1("Observation", NULL, "code:below", "http://loinc.org|1234-5", &s, &why));
	assert_null(parse1("Patient", NULL, "gender:exact", "male", &s, &why));

	/* a string value keeps '|' and '$'; "\," is a comma inside the value */
	c = parse1("Patient", NULL, "family", "a|b$c,d\\,e", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->nvals, 2);
	assert_string_equal(c->vals[0].a, "a|b$c");
	assert_string_equal(c->vals[1].a, "d,e");
	salus_fhir_search_free(s);
	/* composite: "\\$" and "\\|" survive the '$' split for the component's own parsing */
	c = parse1("Observation", NULL, "code-value-quantity", "urn:a\\|b|c\\$1$5.4", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->vals[0].ncomp, 2);
	assert_string_equal(c->vals[0].comp[0].vals[0].a, "urn:a|b");
	assert_string_equal(c->vals[0].comp[0].vals[0].b, "c$1");
	assert_true(c->vals[0].comp[1].vals[0].v == 5.4);
	salus_fhir_search_free(s);
	/* a reference on this server's base is local; _history is dropped */
	c = parse1("Observation", "https://h:1/fhir", "subject", "https://h:1/fhir/Patient/p1/_history/3", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->vals[0].op, SALUS_SQ_REF_LOCAL);
	assert_string_equal(c->vals[0].a, "Patient");
	assert_string_equal(c->vals[0].b, "p1");
	salus_fhir_search_free(s);
	c = parse1("Observation", "https://h:1/fhir", "subject", "https://other/fhir/Patient/p1", &s, &why);
	assert_non_null(c);
	assert_int_equal(c->vals[0].op, SALUS_SQ_REF_URL);
	salus_fhir_search_free(s);
	/* _elements: a type prefix is dropped, a nested path kept */
	struct salus_param pe = {"_elements", "Patient.name.family,identifier"};
	assert_int_equal(salus_fhir_search_parse("Patient", &pe, 1, false, &s, &why), 0);
	salus_fhir_search_free(s);
	pe.value = "name..family";
	assert_int_equal(salus_fhir_search_parse("Patient", &pe, 1, false, &s, &why), SALUS_EINVALID);
}

/* ---- derived parameters (fhir/search.h salus_fhir_search_aliases) ---- */

/* A search by op (type, compartment "Patient/id/T", system): the matches'
 * "[+]Type/id" in order, then "#total". */
static char *search_any(struct env *e, const char *what, const char *query)
{
	struct salus_param ps[16];
	size_t np = 0;
	char *q = strdup(query), *save = NULL;
	for (char *tok = strtok_r(q, "&", &save); tok && np < 16; tok = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(tok, '=');
		*eq = 0;
		ps[np++] = (struct salus_param){tok, eq + 1};
	}
	struct salus_fhir_req rq = {.op = SALUS_FHIR_SEARCH_TYPE, .base = "https://x/fhir", .params = ps, .nparams = np};
	const char *sl = strchr(what, '/');
	if (!*what) {
		rq.op = SALUS_FHIR_SEARCH_SYSTEM;
	} else if (sl) { /* Patient/id/T */
		const char *sl2 = strchr(sl + 1, '/');
		rq.op = SALUS_FHIR_SEARCH_COMPARTMENT;
		snprintf(rq.type, sizeof rq.type, "%.*s", (int)(sl - what), what);
		snprintf(rq.id, sizeof rq.id, "%.*s", (int)(sl2 - sl - 1), sl + 1);
		snprintf(rq.ctype, sizeof rq.ctype, "%s", strcmp(sl2 + 1, "*") ? sl2 + 1 : "");
	} else {
		snprintf(rq.type, sizeof rq.type, "%s", what);
	}
	struct salus_fhir_resp rs;
	salus_fhir_resp_init(&rs);
	int st = salus_fhir_handle(e->st, &rq, &rs);
	char *out = calloc(1, 16384);
	if (st != 200) {
		snprintf(out, 16384, "!%d", st);
	} else {
		json_t *b = json_loads(rs.body.p, 0, NULL);
		size_t i;
		json_t *x;
		json_array_foreach(json_object_get(b, "entry"), i, x)
		{
			json_t *r = json_object_get(x, "resource");
			const char *mode = json_string_value(json_object_get(json_object_get(x, "search"), "mode"));
			char one[200];
			snprintf(one, sizeof one, "%s%s/%s,", mode && !strcmp(mode, "include") ? "+" : "",
				 json_string_value(json_object_get(r, "resourceType")),
				 json_string_value(json_object_get(r, "id")));
			strcat(out, one);
		}
		json_t *t = json_object_get(b, "total");
		char tot[32];
		snprintf(tot, sizeof tot, "#%lld", t ? (long long)json_integer_value(t) : -1LL);
		strcat(out, tot);
		json_decref(b);
	}
	salus_fhir_resp_release(&rs);
	free(q);
	return out;
}

static void load_derived(struct env *e)
{
	load(e);
	put(e, "Group", "g1", "{\"resourceType\":\"Group\",\"type\":\"person\",\"actual\":true}");
	/* subject a Group: in subject, never in patient */
	put(e, "Observation", "ob6",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":\"Group/g1\"},"
	    "\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"85354-9\",\"display\":\"Blood pressure\"}]},"
	    "\"component\":[{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8480-6\"}],"
	    "\"text\":\"Systolic\"},\"valueQuantity\":{\"value\":130,\"system\":\"http://unitsofmeasure.org\","
	    "\"code\":\"mm[Hg]\"}},{\"code\":{\"coding\":[{\"system\":\"http://loinc.org\",\"code\":\"8462-4\"}]},"
	    "\"valueQuantity\":{\"value\":85,\"system\":\"http://unitsofmeasure.org\",\"code\":\"mm[Hg]\"}}]}");
	/* subject by identifier only; an absolute Patient URL elsewhere; a contained reference */
	put(e, "Observation", "ob7",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"identifier\":{\"system\":\"urn:mrn\","
	    "\"value\":\"A1\"}},\"code\":{\"coding\":[{\"code\":\"8867-4\"}]},\"valueQuantity\":{\"value\":60}}");
	put(e, "Observation", "ob8",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"subject\":{\"reference\":"
	    "\"https://other.example/fhir/Patient/p9\"},\"code\":{\"coding\":[{\"code\":\"8867-4\"}]}}");
	put(e, "Observation", "ob9",
	    "{\"resourceType\":\"Observation\",\"status\":\"final\",\"contained\":[{\"resourceType\":\"Patient\","
	    "\"id\":\"c\"}],\"subject\":{\"reference\":\"#c\"},\"code\":{\"coding\":[{\"code\":\"8867-4\"}]}}");
	/* an Observation inside a DiagnosticReport (_contained) */
	put(e, "DiagnosticReport", "dr1",
	    "{\"resourceType\":\"DiagnosticReport\",\"status\":\"final\",\"code\":{\"text\":\"panel\"},"
	    "\"contained\":[{\"resourceType\":\"Observation\",\"id\":\"o\",\"status\":\"final\",\"subject\":"
	    "{\"reference\":\"Patient/p2\"},\"code\":{\"coding\":[{\"code\":\"8867-4\"}]},"
	    "\"valueQuantity\":{\"value\":88}}],"
	    "\"subject\":{\"reference\":\"Patient/p2\"},\"result\":[{\"reference\":\"#o\"}]}");
	put(e, "Encounter", "en1",
	    "{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
	    "\"subject\":{\"reference\":\"Patient/p1\"},\"period\":{\"start\":\"2020-01-10\"}}");
	put(e, "Encounter", "en2",
	    "{\"resourceType\":\"Encounter\",\"status\":\"finished\",\"class\":{\"code\":\"AMB\"},"
	    "\"subject\":{\"reference\":\"Group/g1\"}}");
	put(e, "Condition", "c1",
	    "{\"resourceType\":\"Condition\",\"subject\":{\"reference\":\"Patient/p2\"},\"encounter\":{\"reference\":"
	    "\"Encounter/en1\"},\"code\":{\"coding\":[{\"system\":\"http://snomed.info/sct\",\"code\":\"44054006\"}]}}");
}

/* Searches on the derived parameters (patient, combo-*), their modifiers,
 * :missing, :not, sort, chains, _has, includes, compartments, system-wide
 * and _contained: the same answers and totals from the data written with
 * every parameter's own rows (aliases off) as with the derived ones, and from
 * the former read through the derivation (data written before: no reindex). */
static void t_derived(void **state)
{
	struct env *e = *state;
	static const char *const qs[][2] = {
	    {"Observation", "patient=p1"},
	    {"Observation", "patient=Patient/p1"},
	    {"Observation", "patient=p1,p2&_sort=date"},
	    {"Observation", "patient:Patient=p2"},
	    {"Observation", "patient=Group/g1"},
	    {"Observation", "patient=https://other.example/fhir/Patient/p9"},
	    {"Observation", "patient:identifier=urn:mrn|A1"},
	    {"Observation", "subject:identifier=urn:mrn|A1"},
	    {"Observation", "patient:missing=true"},
	    {"Observation", "patient:missing=false"},
	    {"Observation", "subject:missing=false"},
	    {"Observation", "patient.name=smi"},
	    {"Observation", "patient:Patient.name=smithers"},
	    {"Observation", "patient=p1&code=8867-4"},
	    {"Observation", "patient=p1&code=http://loinc.org|8867-4&date=ge2020-01-01&_sort=-date"},
	    {"Observation", "_sort=patient"},
	    {"Observation", "_sort=-patient,date"},
	    {"Observation", "code=8867-4&_include=Observation:patient"},
	    {"Observation", "code=8867-4&_include=Observation:patient:Patient"},
	    {"Observation", "_include=*"},
	    {"Observation", "combo-code=8480-6"},
	    {"Observation", "combo-code=http://loinc.org|8867-4"},
	    {"Observation", "combo-code=85354-9,29463-7"},
	    {"Observation", "combo-code:text=systolic"},
	    {"Observation", "combo-code:text=heart"},
	    {"Observation", "combo-code:missing=true"},
	    {"Observation", "combo-code:not=8867-4"},
	    {"Observation", "combo-value-quantity=gt100"},
	    {"Observation", "combo-value-quantity=130|http://unitsofmeasure.org|mm[Hg]"},
	    {"Observation", "combo-value-quantity:missing=true"},
	    {"Observation", "_sort=combo-value-quantity"},
	    {"Observation", "_sort=-combo-code"},
	    {"Observation", "combo-code-value-quantity=8480-6$130"},
	    {"Observation", "combo-code-value-quantity=8480-6$gt200"},
	    {"Observation", "component-code-value-quantity=8462-4$85"},
	    {"Observation", "combo-code-value-quantity=8867-4$72"},
	    {"Observation", "code-value-quantity=8867-4$72"},
	    {"Observation", "code-value-quantity=http://loinc.org|8867-4$gt70"},
	    {"Observation", "code-value-quantity=8867-4$gt70,29463-7$gt0"},
	    {"Observation", "code-value-quantity=85354-9$130"},
	    {"Observation", "code-value-quantity=8867-4$60&patient:missing=true"},
	    {"Observation", "code-value-quantity=8867-4$lt1000&_sort=-value-quantity"},
	    {"Observation", "_contained=true&code-value-quantity=8867-4$88"},
	    {"Observation", "_contained=true&code-value-quantity=8867-4$72"},
	    {"Observation", "code-value-concept=8867-4$x"},
	    {"Observation", "_contained=true&patient=p2"},
	    {"Observation", "_contained=both&patient=p2"},
	    {"Patient", "_has:Observation:patient:code=8867-4"},
	    {"Patient", "_has:Observation:patient:combo-code=8480-6"},
	    {"Patient", "_has:Encounter:patient:status=finished"},
	    {"Patient", "_revinclude=Observation:patient"},
	    {"Patient", "_revinclude=Encounter:patient&_revinclude=Condition:patient"},
	    {"Patient", "name=smi&_revinclude=Observation:patient"},
	    {"Encounter", "patient=p1"},
	    {"Encounter", "patient:missing=true"},
	    {"Condition", "patient=p2&encounter.patient=p1"},
	    {"Condition", "encounter.patient.name=smi"},
	    {"Patient/p1/Observation", ""},
	    {"Patient/p1/Encounter", ""},
	    {"Patient/p2/*", ""},
	    {"Patient/p2/Condition", "code=44054006"},
	    {"", "patient=p1&_type=Observation,Encounter"},
	    {"", "patient=p2"},
	};
	size_t n = sizeof qs / sizeof *qs;
	char **off = calloc(n, sizeof *off);
	assert_non_null(off);
	/* the stored-row version: every parameter's own rows, read as such */
	salus_fhir_index_aliases(false);
	load_derived(e);
	for (size_t i = 0; i < n; i++)
		off[i] = search_any(e, qs[i][0], qs[i][1]);
	/* the same data in a fresh store with the derived parameters */
	salus_fhir_index_aliases(true);
	assert_non_null(salus_fhir_search_aliases());
	struct env e2 = {0};
	snprintf(e2.path, sizeof e2.path, "/tmp/salus-test-search-%d-2.db", (int)getpid());
	unlink(e2.path);
	struct salus_store_opts o = {.create = true, .readers = 2};
	assert_int_equal(salus_store_open(e2.path, &o, &e2.st), 0);
	load_derived(&e2);
	size_t nonempty = 0;
	for (size_t i = 0; i < n; i++) {
		char *on = search_any(&e2, qs[i][0], qs[i][1]);
		if (strcmp(off[i], on))
			fprintf(stderr, "%s?%s\n  own rows: %s\n  derived:  %s\n", qs[i][0], qs[i][1], off[i], on);
		assert_string_equal(off[i], on);
		nonempty += on[0] != '#' && on[0] != '!';
		if (getenv("SALUS_TEST_VERBOSE"))
			fprintf(stderr, "%s?%s -> %s\n", qs[i][0], qs[i][1], on);
		/* and the first store (data written before: every parameter's own rows) read
		 * through the derivation: its old rows stay unread, the answers the same, so
		 * existing data needs no reindex */
		char *old = search_any(e, qs[i][0], qs[i][1]);
		if (strcmp(old, on))
			fprintf(stderr, "%s?%s\n  old data: %s\n  derived:  %s\n", qs[i][0], qs[i][1], old, on);
		assert_string_equal(old, on);
		free(old);
		free(on);
		free(off[i]);
	}
	free(off);
	assert_true(nonempty > n * 3 / 4); /* the searches find something */
	salus_store_free(e2.st);
	char p[160];
	unlink(e2.path);
	snprintf(p, sizeof p, "%s-wal", e2.path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", e2.path);
	unlink(p);
}

int main(void)
{
	salus_alloc_install();
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_norm),
	    cmocka_unit_test(t_dates),
	    cmocka_unit_test(t_numbers),
	    cmocka_unit_test(t_param_ids),
	    cmocka_unit_test(t_modifiers),
	    cmocka_unit_test_setup_teardown(t_e2e, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_paging, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_plans, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_pairs, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_derived, setup, teardown),
	    cmocka_unit_test_setup_teardown(t_ordered, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
