/*
 * test_launch.c — the SMART EHR launch in the authorization server (auth/oauth.h
 * salus_oauth_launch) against an in-memory key/value store (fake_kv.c): launch
 * URI registration rules, the /auth/launch page, the staff sign-in that makes
 * the launch context (password, TOTP), the launch parameter and scope at
 * /auth/authorize, the token response's patient and encounter and the
 * token's patient claim; refusals: unknown, reused and other client's launch,
 * another user, a patient user, a missing patient, a store that fails; the
 * standalone launch's patient and encounter pickers (with a fake picker) and
 * an EHR launch's fhirContext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "auth/user.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/err.h"
#include "crypto/crypto.h"
#include "fake_kv.h"
#include "store/store.h"

#define ISS "https://ehr.test"
#define PW "correct horse battery staple 42"
#define FORM "application/x-www-form-urlencoded"
#define REDIRECT "https://app.example/cb"
#define LAUNCH_URI "https://app.example/launch"

static struct salus_store *const ST = (struct salus_store *)1; /* the fake ignores it */
static char dir[] = "/tmp/salus-launch-XXXXXX";
static char keypath[128], pepper[128];
static struct salus_auth *A;
static struct salus_users *U;
static struct salus_mfa_enrolment M_ALICE, M_BOB;
static int totp_step; /* each sign-in uses another time step (codes are single use) */
static char last_launch_cookie[128]; /* the Cookie header value the last launch set */

/* The launch targets: Patient p1 with Encounter e1; nothing else exists. */
static int targets(void *ctx, const char *patient, const char *encounter)
{
	(void)ctx;
	if (strcmp(patient, "p1") || (*encounter && strcmp(encounter, "e1")))
		return SALUS_ENOTFOUND;
	return 0;
}

/* Request parameters for the GET handlers: a NULL-terminated name/value list. */
static const char *param(void *ctx, const char *name)
{
	const char *const *kv = ctx;
	for (; kv[0]; kv += 2)
		if (!strcmp(kv[0], name))
			return kv[1];
	return NULL;
}

static int group_setup(void **state)
{
	(void)state;
	salus_alloc_install();
	if (!mkdtemp(dir))
		return -1;
	snprintf(keypath, sizeof keypath, "%s/token.key", dir);
	snprintf(pepper, sizeof pepper, "%s/pepper.key", dir);
	if (salus_signkey_create(keypath) || salus_pepper_create(pepper) || salus_auth_new(ST, keypath, ISS, NULL, 900, &A) ||
	    salus_users_new(ST, pepper, NULL, &U))
		return -1;
	salus_auth_set_users(A, U);
	salus_auth_set_launch_check(A, targets, NULL);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	salus_users_free(U);
	salus_auth_free(A);
	fake_kv_clear();
	unlink(keypath);
	unlink(pepper);
	rmdir(dir);
	return 0;
}

static void add_user(const char *name, enum salus_role role, struct salus_mfa_enrolment *m)
{
	struct salus_user_new nu = {.username = name, .role = role, .password = PW, .password_n = strlen(PW)};
	if (role == SALUS_ROLE_PATIENT)
		nu.patient = "p1";
	else
		nu.practitioner = name;
	struct salus_mfa_enrolment tmp;
	const char *why = NULL;
	if (salus_user_add(U, &nu, m ? m : &tmp, &why))
		fail_msg("user add %s: %s", name, why ? why : "?");
}

static int setup(void **state)
{
	(void)state;
	fake_kv_clear();
	totp_step = -1;
	const char *why = NULL;
	assert_int_equal(salus_auth_app_add(ST, "ehrapp", "patient/*.rs openid fhirUser launch/encounter", REDIRECT,
					    LAUNCH_URI, true, NULL, 0, &why),
			 0);
	assert_int_equal(salus_auth_app_add(ST, "other", "patient/*.rs", REDIRECT, LAUNCH_URI, true, NULL, 0, &why), 0);
	assert_int_equal(salus_auth_app_add(ST, "plain", "patient/*.rs", REDIRECT, NULL, true, NULL, 0, &why), 0);
	add_user("alice", SALUS_ROLE_CLINICIAN, &M_ALICE);
	add_user("bob", SALUS_ROLE_CLINICIAN, &M_BOB);
	add_user("pat", SALUS_ROLE_PATIENT, NULL);
	return 0;
}

/* A value between `key="` (or `key=`) and the next quote, ampersand or end, into out. */
static const char *between(const char *s, const char *key, char *out, size_t cap)
{
	const char *p = s ? strstr(s, key) : NULL;
	if (!p)
		return NULL;
	p += strlen(key);
	size_t n = strcspn(p, "\"&");
	if (n >= cap)
		return NULL;
	memcpy(out, p, n);
	out[n] = 0;
	return out;
}

struct page {
	char tx[64], cookie[256];
};

static void page_of(const struct salus_authz_response *r, struct page *pg)
{
	assert_int_equal(r->status, 200);
	assert_non_null(between(r->body, "name=tx value=\"", pg->tx, sizeof pg->tx));
	assert_non_null(between(r->set_cookie, "", pg->cookie, sizeof pg->cookie));
	pg->cookie[strcspn(pg->cookie, ";")] = 0;
}

static void post(const struct page *pg, const char *form, struct salus_authz_response *out)
{
	char body[512];
	snprintf(body, sizeof body, "tx=%s&%s", pg->tx, form);
	assert_int_equal(salus_oauth_authorize(A, "POST", param, NULL, FORM, body, strlen(body), pg->cookie, "10.0.0.1", out),
			 0);
}

/* Password, then TOTP of `user`: the final answer. */
static void sign_in(const struct page *pg, const char *user, const struct salus_mfa_enrolment *m,
		    struct salus_authz_response *out)
{
	char form[256], code[7];
	snprintf(form, sizeof form, "step=login&username=%s&password=%s", user, "correct+horse+battery+staple+42");
	post(pg, form, out);
	if (out->status != 200 || !strstr(out->body, "value=\"mfa\""))
		return;
	salus_authz_response_release(out);
	assert_int_equal(salus_totp_code(m->secret_b32, salus_now_ms() / 1000 + 30 * totp_step++, code), 0);
	snprintf(form, sizeof form, "step=mfa&otp=%s", code);
	post(pg, form, out);
}

/* /auth/launch for ehrapp, patient p1 [encounter e1], signed in by user: the launch value ("" if refused). */
static void launch(const char *client, const char *user, const struct salus_mfa_enrolment *m, const char *encounter,
		   char out[128], int *status)
{
	const char *kv[] = {"client_id", client, "patient", "p1", encounter ? "encounter" : NULL, encounter, NULL};
	struct salus_authz_response r;
	struct page pg;
	out[0] = 0;
	assert_int_equal(salus_oauth_launch(A, param, (void *)kv, &r), 0);
	page_of(&r, &pg);
	assert_non_null(strstr(r.body, "for patient <b>p1</b>"));
	salus_authz_response_release(&r);
	sign_in(&pg, user, m, &r);
	*status = r.status;
	if (r.status == 302) {
		assert_int_equal(r.event, SALUS_AUTHZ_EV_LAUNCH);
		assert_int_equal(strncmp(r.location, LAUNCH_URI "?launch=", strlen(LAUNCH_URI "?launch=")), 0);
		assert_non_null(strstr(r.location, "&iss=https%3A%2F%2Fehr.test%2Ffhir"));
		assert_non_null(between(r.location, "launch=", out, 128));
		assert_int_equal(strncmp(r.set_cookie, "__Host-salus_launch=", 20), 0);
		assert_non_null(strstr(r.set_cookie, "; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=300"));
		snprintf(last_launch_cookie, sizeof last_launch_cookie, "%.*s", (int)strcspn(r.set_cookie, ";"), r.set_cookie);
	}
	salus_authz_response_release(&r);
}

#define VERIFIER "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"

/* /auth/authorize by client with launch and scope, signed in by user: the redirect (code or error). */
static void authorize(const char *client, const char *launch_value, const char *scope, const char *user,
		      const struct salus_mfa_enrolment *m, char location[2048])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char challenge[SALUS_B64URL_LEN(crypto_hash_sha256_BYTES)];
	crypto_hash_sha256(h, (const unsigned char *)VERIFIER, strlen(VERIFIER));
	salus_b64url_encode(h, sizeof h, challenge, sizeof challenge);
	const char *kv[] = {"client_id", client, "redirect_uri", REDIRECT, "response_type", "code", "scope", scope,
			    "code_challenge", challenge, "code_challenge_method", "S256", "state", "s1",
			    launch_value ? "launch" : NULL, launch_value, NULL};
	struct salus_authz_response r;
	struct page pg;
	assert_int_equal(salus_oauth_authorize(A, "GET", param, (void *)kv, NULL, NULL, 0, NULL, NULL, &r), 0);
	if (r.status == 302) {
		snprintf(location, 2048, "%s", r.location);
		salus_authz_response_release(&r);
		return;
	}
	page_of(&r, &pg);
	salus_authz_response_release(&r);
	sign_in(&pg, user, m, &r);
	if (r.status == 200 && strstr(r.body, "value=\"consent\"")) {
		salus_authz_response_release(&r);
		post(&pg, "step=consent&decision=approve", &r);
	}
	assert_int_equal(r.status, 302);
	snprintf(location, 2048, "%s", r.location);
	salus_authz_response_release(&r);
}

/* The token response of a code. */
static json_t *redeem(const char *client, const char *location)
{
	char code[128], body[512];
	assert_non_null(between(location, "code=", code, sizeof code));
	snprintf(body, sizeof body,
		 "grant_type=authorization_code&code=%s&redirect_uri=https%%3A%%2F%%2Fapp.example%%2Fcb&code_verifier=%s"
		 "&client_id=%s",
		 code, VERIFIER, client);
	struct salus_token_response tr = {0};
	assert_int_equal(salus_auth_token(A, NULL, FORM, body, strlen(body), &tr), 0);
	assert_int_equal(tr.status, 200);
	json_t *j = json_loadb(tr.body, tr.body_len, 0, NULL);
	salus_token_response_release(&tr);
	assert_non_null(j);
	return j;
}

static void test_registration(void **state)
{
	(void)state;
	const char *why = NULL;
	static const char *const bad[] = {"http://app.example/launch", "https://app.example/launch?x=1",
					  "https://app.example/l#f", "https://app.example/a b", "javascript:alert(1)"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why = NULL;
		assert_int_equal(salus_auth_app_add(ST, "bad", "patient/*.rs", REDIRECT, bad[i], true, NULL, 0, &why),
				 SALUS_EINVALID);
		assert_non_null(strstr(why, "launch URI"));
	}
	assert_int_equal(salus_auth_app_add(ST, "local", "launch patient/*.rs", REDIRECT, "http://127.0.0.1:9/l", true,
					    NULL, 0, &why),
			 0);
}

static void test_launch_flow(void **state)
{
	(void)state;
	char l[128], loc[2048];
	int status;
	launch("ehrapp", "alice", &M_ALICE, "e1", l, &status);
	assert_int_equal(status, 302);
	assert_true(strlen(l) >= 43);
	authorize("ehrapp", l, "launch patient/*.rs openid fhirUser", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "code="));
	json_t *t = redeem("ehrapp", loc);
	assert_string_equal(json_string_value(json_object_get(t, "patient")), "p1");
	assert_string_equal(json_string_value(json_object_get(t, "encounter")), "e1");
	assert_non_null(strstr(json_string_value(json_object_get(t, "scope")), "launch"));
	/* the access token carries the patient context, the user's fhirUser and role */
	struct salus_principal who;
	char authz[4096];
	snprintf(authz, sizeof authz, "Bearer %s", json_string_value(json_object_get(t, "access_token")));
	assert_int_equal(salus_auth_check(A, authz, &who), 0);
	assert_string_equal(who.patient, "p1");
	assert_string_equal(who.fhir_user, "Practitioner/alice");
	assert_string_equal(who.role, "clinician");
	salus_principal_release(&who);
	json_decref(t);
	/* used: a second authorization with it is refused */
	authorize("ehrapp", l, "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
}

/* The browser that made the launch (its launch cookie) is not asked to sign in again. */
static void test_launch_cookie(void **state)
{
	(void)state;
	char l[128], cookie[160], ch[SALUS_B64URL_LEN(crypto_hash_sha256_BYTES)];
	int status;
	unsigned char h[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(h, (const unsigned char *)VERIFIER, strlen(VERIFIER));
	salus_b64url_encode(h, sizeof h, ch, sizeof ch);
	launch("ehrapp", "alice", &M_ALICE, NULL, l, &status);
	assert_int_equal(status, 302);
	snprintf(cookie, sizeof cookie, "a=b; %s", last_launch_cookie);
	const char *kv[] = {"client_id", "ehrapp", "redirect_uri", REDIRECT, "response_type", "code", "scope",
			    "launch patient/*.rs", "code_challenge", ch, "code_challenge_method", "S256", "launch", l, NULL};
	struct salus_authz_response r;
	assert_int_equal(salus_oauth_authorize(A, "GET", param, (void *)kv, NULL, NULL, 0, cookie, NULL, &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "value=\"consent\""));
	assert_non_null(strstr(r.body, "Signed in as <b>alice</b>"));
	assert_int_equal(r.event, SALUS_AUTHZ_EV_LOGIN_OK);
	assert_string_equal(r.user, "alice");
	salus_authz_response_release(&r);
	/* another launch, a cookie of the wrong value: the sign-in page */
	launch("ehrapp", "alice", &M_ALICE, NULL, l, &status);
	kv[13] = l;
	assert_int_equal(salus_oauth_authorize(A, "GET", param, (void *)kv, NULL, NULL, 0,
					       "__Host-salus_launch=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &r),
			 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "value=\"login\""));
	salus_authz_response_release(&r);
}

static void test_launch_refusals(void **state)
{
	(void)state;
	char l[128], loc[2048];
	int status;
	/* unknown */
	authorize("ehrapp", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
	/* another client's (and then gone) */
	launch("ehrapp", "alice", &M_ALICE, NULL, l, &status);
	assert_int_equal(status, 302);
	authorize("other", l, "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
	authorize("ehrapp", l, "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
	/* another user signs in at the app */
	launch("ehrapp", "alice", &M_ALICE, NULL, l, &status);
	authorize("ehrapp", l, "launch patient/*.rs", "bob", &M_BOB, loc);
	assert_non_null(strstr(loc, "error=access_denied"));
	assert_null(strstr(loc, "code="));
	/* launch scope without launch, launch without scope, an app not registered for launches */
	authorize("ehrapp", NULL, "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
	authorize("ehrapp", "x", "patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_request"));
	authorize("plain", "x", "launch patient/*.rs", "alice", &M_ALICE, loc);
	assert_non_null(strstr(loc, "error=invalid_scope"));
}

static void test_launch_page_refusals(void **state)
{
	(void)state;
	struct salus_authz_response r;
	const char *unknown[] = {"client_id", "nosuch", "patient", "p1", NULL};
	const char *plain[] = {"client_id", "plain", "patient", "p1", NULL};
	const char *badid[] = {"client_id", "ehrapp", "patient", "../x", NULL};
	const char *nopat[] = {"client_id", "ehrapp", NULL};
	const char **cases[] = {unknown, plain, badid, nopat};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(salus_oauth_launch(A, param, (void *)cases[i], &r), 0);
		assert_int_equal(r.status, 400);
		assert_int_equal(r.event, SALUS_AUTHZ_EV_NONE);
		salus_authz_response_release(&r);
	}
	/* a patient cannot launch; a missing encounter makes no launch */
	char l[128];
	int status;
	launch("ehrapp", "pat", NULL, NULL, l, &status);
	assert_int_equal(status, 403);
	assert_string_equal(l, "");
	launch("ehrapp", "alice", &M_ALICE, "e2", l, &status);
	assert_int_equal(status, 404);
	assert_string_equal(l, "");
	/* a store failure is an error, not a launch */
	const char *ok[] = {"client_id", "ehrapp", "patient", "p1", NULL};
	fake_kv_fail(1);
	assert_int_not_equal(salus_oauth_launch(A, param, (void *)ok, &r), 0);
	salus_authz_response_release(&r);
	fake_kv_fail(0);
}

/* ---- standalone launch: the pickers; fhirContext ---- */

static char pick_last[256]; /* "user role fhirUser type compartment k=v..." of the last picker call */

/* A fake picker: Patients p1 ("Doe, Jane") and p2 found by name; Encounter e1 of p1; Observation o1 in
 * p1's compartment.  An _id search finds that id only. */
static int picker(void *ctx, const struct salus_pick_user *u, const char *type, const char *const *kv, size_t npairs,
		  const char *compartment, struct salus_pick_hit *hits, size_t max, size_t *n)
{
	(void)ctx;
	int len = snprintf(pick_last, sizeof pick_last, "%s %s %s %s %s", u->username, u->role, u->fhir_user, type,
			   compartment ? compartment : "-");
	for (size_t i = 0; i < npairs && len > 0 && (size_t)len < sizeof pick_last; i++)
		len += snprintf(pick_last + len, sizeof pick_last - (size_t)len, " %s=%s", kv[2 * i], kv[2 * i + 1]);
	static const char *const all[][4] = {{"Patient", "p1", "Doe, Jane", "1970-01-01"},
					     {"Patient", "p2", "Doe, <b>John</b>", ""},
					     {"Encounter", "e1", "AMB (finished)", "2026-01-01"},
					     {"Observation", "o1", "", ""}};
	*n = 0;
	const char *id = npairs && !strcmp(kv[0], "_id") ? kv[1] : NULL;
	for (size_t i = 0; i < 4 && *n < max; i++) {
		if (strcmp(all[i][0], type) || (id && strcmp(all[i][1], id)))
			continue;
		if (!strcmp(type, "Observation") && (!compartment || strcmp(compartment, "p1")))
			continue;
		struct salus_pick_hit *h = &hits[(*n)++];
		snprintf(h->id, sizeof h->id, "%s", all[i][1]);
		snprintf(h->label, sizeof h->label, "%s", all[i][2]);
		snprintf(h->detail, sizeof h->detail, "%s", all[i][3]);
	}
	return 0;
}

/* /auth/authorize of pickapp (standalone) signed in by user: the page after the sign-in. */
static void pick_start(const char *user, const struct salus_mfa_enrolment *m, const char *scope, struct page *pg,
		       struct salus_authz_response *r)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char challenge[SALUS_B64URL_LEN(crypto_hash_sha256_BYTES)];
	crypto_hash_sha256(h, (const unsigned char *)VERIFIER, strlen(VERIFIER));
	salus_b64url_encode(h, sizeof h, challenge, sizeof challenge);
	const char *kv[] = {"client_id", "pickapp", "redirect_uri", REDIRECT, "response_type", "code", "scope", scope,
			    "code_challenge", challenge, "code_challenge_method", "S256", "state", "s1", NULL};
	assert_int_equal(salus_oauth_authorize(A, "GET", param, (void *)kv, NULL, NULL, 0, NULL, NULL, r), 0);
	page_of(r, pg);
	salus_authz_response_release(r);
	sign_in(pg, user, m, r);
	assert_int_equal(r->status, 200);
}

static void test_picker_flow(void **state)
{
	(void)state;
	const char *why = NULL;
	struct salus_authz_response r;
	struct page pg;
	char loc[2048];
	assert_int_equal(salus_auth_app_add(ST, "pickapp", "patient/*.rs launch/patient launch/encounter", REDIRECT, NULL,
					    true, NULL, 0, &why),
			 0);
	salus_auth_set_picker(A, picker, NULL);
	pick_start("alice", &M_ALICE, "launch/patient launch/encounter patient/*.rs", &pg, &r);
	assert_non_null(strstr(r.body, "Choose a patient"));
	assert_non_null(strstr(r.body, "value=\"patient\""));
	salus_authz_response_release(&r);
	/* search: the picker runs as alice, the hits are buttons (escaped), audited as a Patient search */
	post(&pg, "step=patient&action=search&name=doe&birthdate=1970", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(pick_last, "alice clinician Practitioner/alice Patient - name=doe birthdate=1970");
	assert_non_null(strstr(r.body, "name=patient value=\"p1\">Doe, Jane &middot; 1970-01-01</button>"));
	assert_non_null(strstr(r.body, "Doe, &lt;b&gt;John&lt;/b&gt;"));
	assert_int_equal(r.event, SALUS_AUTHZ_EV_PICK);
	assert_string_equal(r.pick_type, "Patient");
	assert_int_equal(r.npick, 2);
	salus_authz_response_release(&r);
	/* bad input: nothing searched */
	pick_last[0] = 0;
	post(&pg, "step=patient&action=search&birthdate=01%2F02%2F1970", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(pick_last, "");
	assert_int_equal(r.event, SALUS_AUTHZ_EV_NONE);
	salus_authz_response_release(&r);
	/* an id the picker does not find */
	post(&pg, "step=patient&patient=p9", &r);
	assert_non_null(strstr(r.body, "cannot be opened"));
	salus_authz_response_release(&r);
	/* the consent cannot be skipped to */
	post(&pg, "step=consent&decision=approve", &r);
	assert_int_equal(r.status, 400);
	salus_authz_response_release(&r);
	/* pick p1: its encounters; pick e1: the consent page names both */
	post(&pg, "step=patient&patient=p1", &r);
	assert_non_null(strstr(r.body, "Choose an encounter"));
	assert_non_null(strstr(r.body, "name=encounter value=\"e1\""));
	assert_string_equal(pick_last, "alice clinician Practitioner/alice Encounter - patient=p1 _sort=-date");
	salus_authz_response_release(&r);
	post(&pg, "step=encounter&encounter=e1", &r);
	assert_non_null(strstr(r.body, "the record of patient <b>Doe, Jane, 1970-01-01</b>, encounter <b>AMB (finished), 2026-01-01</b>"));
	salus_authz_response_release(&r);
	post(&pg, "step=consent&decision=approve", &r);
	assert_int_equal(r.status, 302);
	snprintf(loc, sizeof loc, "%s", r.location);
	salus_authz_response_release(&r);
	json_t *t = redeem("pickapp", loc);
	assert_string_equal(json_string_value(json_object_get(t, "patient")), "p1");
	assert_string_equal(json_string_value(json_object_get(t, "encounter")), "e1");
	assert_true(json_is_true(json_object_get(t, "need_patient_banner")));
	assert_null(json_object_get(t, "fhirContext"));
	json_decref(t);
	/* skip the encounter: launch/encounter is not granted */
	pick_start("bob", &M_BOB, "launch/patient launch/encounter patient/*.rs", &pg, &r);
	salus_authz_response_release(&r);
	post(&pg, "step=patient&patient=p2", &r);
	salus_authz_response_release(&r);
	post(&pg, "step=encounter&action=skip", &r);
	assert_non_null(strstr(r.body, "Allow access?"));
	salus_authz_response_release(&r);
	post(&pg, "step=consent&decision=approve", &r);
	snprintf(loc, sizeof loc, "%s", r.location);
	salus_authz_response_release(&r);
	t = redeem("pickapp", loc);
	assert_string_equal(json_string_value(json_object_get(t, "patient")), "p2");
	assert_null(json_object_get(t, "encounter"));
	assert_null(strstr(json_string_value(json_object_get(t, "scope")), "launch/encounter"));
	json_decref(t);
	/* cancel */
	pick_start("alice", &M_ALICE, "launch/patient patient/*.rs", &pg, &r);
	salus_authz_response_release(&r);
	post(&pg, "step=patient&action=cancel", &r);
	assert_int_equal(r.status, 302);
	assert_non_null(strstr(r.location, "error=access_denied"));
	salus_authz_response_release(&r);
	/* a patient user: their own record, no picker */
	pick_start("pat", NULL, "launch/patient patient/*.rs", &pg, &r);
	assert_non_null(strstr(r.body, "Allow access?"));
	salus_authz_response_release(&r);
	/* without a picker: staff get no patient context (launch/patient dropped, patient/ scopes not granted) */
	salus_auth_set_picker(A, NULL, NULL);
	char loc2[2048];
	authorize("pickapp", NULL, "launch/patient patient/*.rs", "bob", &M_BOB, loc2);
	assert_non_null(strstr(loc2, "error=invalid_scope"));
}

static void test_fhir_context(void **state)
{
	(void)state;
	struct salus_authz_response r;
	struct page pg;
	char l[128], loc[2048];
	salus_auth_set_picker(A, picker, NULL);
	/* bad context values: the launch page refuses */
	static const char *const bad[] = {"Observation", "Patient/p1", "Encounter/e1", "observation/o1", "Observation/o1,",
					  "Observation/o1,Observation/o1,Observation/o1,Observation/o1,Observation/o1",
					  "Observation/a b"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *kv[] = {"client_id", "ehrapp", "patient", "p1", "context", bad[i], NULL};
		assert_int_equal(salus_oauth_launch(A, param, (void *)kv, &r), 0);
		assert_int_equal(r.status, 400);
		salus_authz_response_release(&r);
	}
	/* a resource outside p1's record: no launch */
	const char *kv2[] = {"client_id", "ehrapp", "patient", "p1", "context", "Observation/o2", NULL};
	assert_int_equal(salus_oauth_launch(A, param, (void *)kv2, &r), 0);
	page_of(&r, &pg);
	salus_authz_response_release(&r);
	sign_in(&pg, "alice", &M_ALICE, &r);
	assert_int_equal(r.status, 404);
	assert_string_equal(pick_last, "alice clinician Practitioner/alice Observation p1 _id=o2");
	salus_authz_response_release(&r);
	/* Observation/o1: in the token response as fhirContext */
	const char *kv[] = {"client_id", "ehrapp", "patient", "p1", "context", "Observation/o1", NULL};
	assert_int_equal(salus_oauth_launch(A, param, (void *)kv, &r), 0);
	page_of(&r, &pg);
	salus_authz_response_release(&r);
	sign_in(&pg, "bob", &M_BOB, &r);
	assert_int_equal(r.status, 302);
	assert_non_null(between(r.location, "launch=", l, sizeof l));
	salus_authz_response_release(&r);
	authorize("ehrapp", l, "launch patient/*.rs", "bob", &M_BOB, loc);
	json_t *t = redeem("ehrapp", loc);
	json_t *fc = json_object_get(t, "fhirContext");
	assert_int_equal(json_array_size(fc), 1);
	assert_string_equal(json_string_value(json_object_get(json_array_get(fc, 0), "reference")), "Observation/o1");
	json_decref(t);
	salus_auth_set_picker(A, NULL, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_registration, setup),
		cmocka_unit_test_setup(test_launch_flow, setup),
		cmocka_unit_test_setup(test_launch_refusals, setup),
		cmocka_unit_test_setup(test_launch_cookie, setup),
		cmocka_unit_test_setup(test_launch_page_refusals, setup),
		cmocka_unit_test_setup(test_picker_flow, setup),
		cmocka_unit_test_setup(test_fhir_context, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
