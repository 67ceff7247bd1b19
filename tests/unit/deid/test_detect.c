/* test_detect.c — the PHI detector: formats, context rules, exclusions, all-caps
 * notes, Unicode offsets, bad input and allocation failures.  Every name and
 * place here is invented for the test (none comes from the dev corpora). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/alloc.h"
#include "core/err.h"
#include "core/limits.h"
#include "deid/deid.h"

static struct salus_deid *det;

static int setup(void **state)
{
	(void)state;
	return salus_deid_new(&det);
}

static int teardown(void **state)
{
	(void)state;
	salus_deid_free(det);
	return 0;
}

/* Scan text; return the span covering the first occurrence of `what`, or NULL. */
static const struct salus_span *find(const char *text, const char *what)
{
	const struct salus_span *sp;
	size_t n;
	assert_int_equal(salus_deid_scan(det, text, strlen(text), &sp, &n, NULL), 0);
	const char *at = strstr(text, what);
	assert_non_null(at);
	size_t s = (size_t)(at - text), e = s + strlen(what);
	for (size_t i = 0; i < n; i++) {
		assert_true(i == 0 || sp[i].start >= sp[i - 1].end); /* sorted, disjoint */
		assert_string_not_equal(salus_deid_rule_name(sp[i].rule), "unknown");
		if (sp[i].start <= s && sp[i].end >= e)
			return &sp[i];
	}
	return NULL;
}

static void expect(const char *text, const char *what, enum salus_phi type)
{
	const struct salus_span *s = find(text, what);
	if (!s)
		fail_msg("not found: \"%s\" in \"%s\"", what, text);
	if (s->type != type)
		fail_msg("\"%s\": type %s, want %s", what, salus_phi_label(s->type), salus_phi_label(type));
}

static void expect_none(const char *text, const char *what)
{
	const char *at = strstr(text, what);
	assert_non_null(at);
	const struct salus_span *sp;
	size_t n;
	assert_int_equal(salus_deid_scan(det, text, strlen(text), &sp, &n, NULL), 0);
	size_t s = (size_t)(at - text), e = s + strlen(what);
	for (size_t i = 0; i < n; i++)
		if (sp[i].start < e && sp[i].end > s)
			fail_msg("unexpected span over \"%s\" (%s, rule %s)", what, salus_phi_label(sp[i].type),
				 salus_deid_rule_name(sp[i].rule));
}

static void test_dates(void **state)
{
	(void)state;
	expect("Admitted 03/14/2019 for chest pain.", "03/14/2019", SALUS_PHI_DATE);
	expect("Seen on 2021-07-04 in clinic.", "2021-07-04", SALUS_PHI_DATE);
	expect("Surgery on 3/14, tolerated well.", "3/14", SALUS_PHI_DATE);
	expect("Symptoms began March 2019.", "March 2019", SALUS_PHI_DATE);
	expect("Follow-up 14-Mar-2020 at noon.", "14-Mar-2020", SALUS_PHI_DATE);
	expect("DOB: July 4, 1950.", "July 4, 1950", SALUS_PHI_DATE);
	expect("Biopsy on the 2nd of February 2018.", "2nd of February 2018", SALUS_PHI_DATE);
	expect("s/p CABG '95, doing well.", "95", SALUS_PHI_DATE);
	/* not dates: fractions, ratios, lab runs */
	expect_none("Crackles 1/2 up bilaterally.", "1/2");
	expect_none("ABG 7.38/42/88/24 on 40%.", "42/88");
	expect_none("BP 132/76, HR 88.", "132/76");
}

static void test_contacts_and_ids(void **state)
{
	(void)state;
	expect("Call (617) 555-0199 after 5.", "(617) 555-0199", SALUS_PHI_PHONE);
	expect("Cell +1 415 555 0142 any time.", "415 555 0142", SALUS_PHI_PHONE);
	expect("Pager #40312 overnight.", "40312", SALUS_PHI_PHONE);
	expect("Email q.varnell42@example.org today.", "q.varnell42@example.org", SALUS_PHI_EMAIL);
	expect("Portal at https://portal.example.com/u/7781, ok.", "https://portal.example.com/u/7781", SALUS_PHI_URL);
	expect("Login from 203.0.113.77 noted.", "203.0.113.77", SALUS_PHI_IP);
	expect("Login from 2001:db8::8a2e:370:7334 noted.", "2001:db8::8a2e:370:7334", SALUS_PHI_IP);
	expect("SSN 078-05-1120 on file.", "078-05-1120", SALUS_PHI_SSN);
	expect("MRN: QX4471920 admitted.", "QX4471920", SALUS_PHI_ID);
	expect("Medical record number 00918273 noted.", "00918273", SALUS_PHI_ID);
	expect("Policy # HZ-77-10432 active.", "HZ-77-10432", SALUS_PHI_ID);
	expect("Card 4111 1111 1111 1111 on file.", "4111 1111 1111 1111", SALUS_PHI_ID);
	expect_none("SVR 954-1183, CO 4.6.", "954-1183");
	expect_none("ID: afebrile, WBC 6.8.", "6.8");
}

static void test_locations_and_ages(void **state)
{
	(void)state;
	expect("Home: 4410 Wrenfield Avenue, Pellston, MI 49769.", "4410 Wrenfield Avenue", SALUS_PHI_LOCATION);
	expect("Home: 4410 Wrenfield Avenue, Pellston, MI 49769.", "Pellston", SALUS_PHI_LOCATION);
	expect("Home: 4410 Wrenfield Avenue, Pellston, MI 49769.", "49769", SALUS_PHI_ZIP);
	expect("Transferred from Quillmont Regional Hospital overnight.", "Quillmont Regional Hospital",
	       SALUS_PHI_LOCATION);
	expect("She lives in Darrowby with her son.", "Darrowby", SALUS_PHI_LOCATION);
	expect("A 93-year-old woman with CHF.", "93", SALUS_PHI_AGE);
	expect("102 yo M brought in by EMS.", "102", SALUS_PHI_AGE);
	expect_none("A 67-year-old man with COPD.", "67");
	expect_none("3 WAY FOLEY IN PLACE AND DRAINING.", "3 WAY");
}

static void test_names(void **state)
{
	(void)state;
	expect("Seen by Dr. Orsolya Vantreek this morning.", "Orsolya Vantreek", SALUS_PHI_NAME);
	expect("Wife Marisol at bedside.", "Marisol", SALUS_PHI_NAME);
	expect("Patient: Quernby, Odalys   MRN: 5512093", "Quernby", SALUS_PHI_NAME);
	expect("Patient: Quernby, Odalys   MRN: 5512093", "Odalys", SALUS_PHI_NAME);
	expect("Sincerely,\nTobiah Wrexley, MD\n", "Tobiah Wrexley", SALUS_PHI_NAME);
	{ /* a name found by context is found again elsewhere in the note */
		const char *t = "Case discussed with Dr. Zelinka; she agrees. Later Zelinka will call.";
		const struct salus_span *sp;
		size_t n, at = (size_t)(strstr(t, "Later Zelinka") - t) + 6;
		assert_int_equal(salus_deid_scan(det, t, strlen(t), &sp, &n, NULL), 0);
		bool hit = false;
		for (size_t i = 0; i < n; i++)
			hit = hit || (sp[i].start == at && sp[i].type == SALUS_PHI_NAME);
		assert_true(hit);
	}
	expect("dr vantrees spoke with husband", "vantrees", SALUS_PHI_NAME);
	/* all-caps note */
	expect("PT SEEN BY DR QUARVELL TODAY. DTR ROSALIND AT BEDSIDE. PLAN: CONT LASIX.", "QUARVELL",
	       SALUS_PHI_NAME);
	expect("PT SEEN BY DR QUARVELL TODAY. DTR ROSALIND AT BEDSIDE. PLAN: CONT LASIX.", "ROSALIND",
	       SALUS_PHI_NAME);
	/* exclusions: eponyms, common words, drugs */
	expect_none("Patient with Bell's palsy, improving.", "Bell");
	expect_none("Foley catheter draining clear urine.", "Foley");
	expect_none("There is hope for recovery; will continue lasix.", "hope");
	expect_none("Continue Lopressor 25 mg and Coumadin.", "Lopressor");
}

static void test_unicode_offsets(void **state)
{
	(void)state;
	const char *t = "Seen by Dr. Jos\xc3\xa9 N\xc3\xba\xc3\xb1" "ez \xe2\x80\x93 06/02/2020.";
	const struct salus_span *s = find(t, "N\xc3\xba\xc3\xb1" "ez");
	assert_non_null(s);
	assert_int_equal(s->type, SALUS_PHI_NAME);
	/* byte offsets fall on character boundaries */
	assert_true(((unsigned char)t[s->start] & 0xC0) != 0x80);
	assert_true(s->end == strlen(t) || ((unsigned char)t[s->end] & 0xC0) != 0x80);
	expect(t, "06/02/2020", SALUS_PHI_DATE);
	assert_int_equal(salus_deid_utf8_chars("J\xc3\xa9", 3), 2);
}

static void test_bad_input(void **state)
{
	(void)state;
	const struct salus_span *sp;
	size_t n;
	const char *why = NULL;
	assert_int_equal(salus_deid_scan(det, "ab\xff" "cd", 5, &sp, &n, &why), SALUS_EINVALID);
	assert_non_null(why);
	assert_int_equal(salus_deid_scan(det, "ab\0cd", 5, &sp, &n, &why), SALUS_EINVALID);
	assert_int_equal(salus_deid_scan(det, "\xed\xa0\x80", 3, &sp, &n, &why), SALUS_EINVALID); /* surrogate */
	assert_int_equal(salus_deid_scan(det, "", 0, &sp, &n, NULL), 0);
	assert_int_equal(n, 0);
	assert_int_equal(salus_deid_scan(det, "x", (size_t)SALUS_MAX_NOTE + 1, &sp, &n, &why), SALUS_ETOOLARGE);
	/* the detector still works after errors */
	expect("Call 617-555-0134.", "617-555-0134", SALUS_PHI_PHONE);
}

static void test_alloc_failures(void **state)
{
	(void)state;
	const char *t = "Dr. Orsolya Vantreek saw the 95 yo patient on 3/14/2019; call (617) 555-0199.";
	for (unsigned long k = 1; k < 400; k++) {
		struct salus_deid *d = NULL;
		salus_alloc_fail_at(k, 0);
		int rc = salus_deid_new(&d);
		if (rc == 0) {
			const struct salus_span *sp;
			size_t n;
			rc = salus_deid_scan(d, t, strlen(t), &sp, &n, NULL);
			assert_true(rc == 0 || rc == SALUS_ENOMEM);
			salus_deid_free(d);
		} else {
			assert_true(rc == SALUS_ENOMEM || rc == SALUS_EINTERNAL);
		}
	}
	salus_alloc_fail_at(0, 0);
}

/* Ventilator settings and pain scores are not dates; drugs listed with a known
 * drug are not names (invented examples). */
static void test_clinical_lists(void **state)
{
	(void)state;
	expect_none("Vent settings SIMV 450x12, 50%, & 6/8 this morning.", "6/8");
	expect_none("Mask ventilation, FiO2 60% 9/4 overnight.", "9/4");
	expect_none("Pt c/o 4/10 dull lower back pain.", "4/10");
	expect("Echo done on 4/10 showed good function.", "4/10", SALUS_PHI_DATE);
	expect_none("Antibiotics: Zorbex, Dravomycin, Flagyl continue.", "Zorbex");
	expect_none("Sedated with Pentrax/versed overnight.", "Pentrax");
	expect("Spoke with Mrs Quarvell about the plan.", "Quarvell", SALUS_PHI_NAME);
}

/* Rules of the 2026-12 pass; every name and place is invented. */
static void test_context_rules(void **state)
{
	(void)state;
	/* formats moved from Hyperscan to tokens */
	expect("Claim QX7-55-1234567 filed.", "QX7-55-1234567", SALUS_PHI_ID);
	expect("Device at fe80:0:0:0:202:b3ff:fe1e:8329 logged.", "fe80:0:0:0:202:b3ff:fe1e:8329", SALUS_PHI_IP);
	expect("Mail to Quorvale, WI 53001 please.", "53001", SALUS_PHI_ZIP);
	expect("Mail to Quorvale, WI 53001 please.", "Quorvale", SALUS_PHI_LOCATION);
	expect_none("HR 86, NT, ND, BS present.", "NT");
	/* places */
	expect("Pt transferred to Brennermoor 4 for telemetry.", "Brennermoor", SALUS_PHI_LOCATION);
	expect("Old records from Plessingford, MD reviewed.", "Plessingford", SALUS_PHI_LOCATION);
	expect("Daughter flying in tomorrow from Wexcombe Beach to visit.", "Beach", SALUS_PHI_LOCATION);
	expect("PT WAS TAKEN TO ORLANDO MEMORIAL LAST NIGHT.", "MEMORIAL", SALUS_PHI_LOCATION);
	expect("She lives at 4471 Varnokatu 12 Apt. 3 Helmisto with her son.", "Varnokatu", SALUS_PHI_LOCATION);
	expect("She lives at 4471 Varnokatu 12 Apt. 3 Helmisto with her son.", "Helmisto", SALUS_PHI_LOCATION);
	expect("Forward to PSC 4410, Box 2231 APO AE 09012 now.", "PSC 4410, Box 2231 APO AE 09012", SALUS_PHI_LOCATION);
	expect_none("OGT to LCWS draining bilious fluid, abd soft.", "LCWS");
	expect_none("Started at 20 Dobutamine 5 mcg/kg/min overnight.", "Dobutamine");
	/* names */
	expect("TEE DONE, Q. HARTWELL AWARE AND WILL FOLLOW.", "HARTWELL", SALUS_PHI_NAME);
	expect("Findings d/w Dr. Roost at the bedside.", "Roost", SALUS_PHI_NAME);
	expect("Contact case manager Ignatius Murmur re: placement.", "Murmur", SALUS_PHI_NAME);
	expect("Sons Tobiah, Morven and Roger in to visit.", "Roger", SALUS_PHI_NAME);
	expect("RESP CARE BY EARL N. QUIMBY, RRT", "EARL", SALUS_PHI_NAME);
	expect("Admitted: 3/3  Discharged: 3/9", "3/3", SALUS_PHI_DATE);
	expect_none("Cont on Natrivex at .01 mcg/kg/min.", "Natrivex");
	expect_none("Insulin 10U Lentivar at bedtime.", "Lentivar");
}

/* Rules of the 2026-12-07 second pass; every name is invented. */
static void test_context_rules2(void **state)
{
	(void)state;
	/* month-day with a dash after a date preposition */
	expect("Went back to the OR on 4-12 for a washout.", "4-12", SALUS_PHI_DATE);
	expect("Blood cultures since 11-3 remain negative.", "11-3", SALUS_PHI_DATE);
	expect_none("Sats stable on 2-4 L nasal cannula.", "2-4");
	expect_none("Sleeps on 1-2 pillows at home.", "1-2");
	expect_none("Weaned from 5-10 mcg overnight.", "5-10");
	expect_none("Pain went from 7-8 to 3 after morphine.", "7-8");
	expect_none("Pressure support on 14-5 this morning.", "14-5"); /* not a month */
	/* a lower-case first name before a surname before "aware" */
	expect("Plan reviewed. sharon quondrik aware of the labs.", "sharon", SALUS_PHI_NAME);
	expect("Plan reviewed. sharon quondrik aware of the labs.", "quondrik", SALUS_PHI_NAME);
	expect_none("Plan reviewed. team lead aware of the labs.", "team");
	/* first names that hunspell-en-med also lists in lower case */
	expect("Visitors today were Hannah and Amy from church.", "Hannah", SALUS_PHI_NAME);
	expect("Visitors today were Hannah and Amy from church.", "Amy", SALUS_PHI_NAME);
	expect_none("Neuro: PERLA, moves all extremities.", "PERLA");
	expect_none("Remains on Reg insulin per sliding scale.", "Reg");
	/* form layouts: the value on the line below its label */
	const char *form = "Name:\nTobias Quennell\n\nPhone:\n41-27-93-55\n\nAddress:\nKerbstrasse 12\n Ostwald\n"
			   "Lorvania 80317\n\nDiagnosis:\nCommunity acquired pneumonia\n";
	expect(form, "Tobias", SALUS_PHI_NAME);
	expect(form, "41-27-93-55", SALUS_PHI_PHONE);
	expect(form, "Kerbstrasse", SALUS_PHI_LOCATION);
	expect(form, "Ostwald", SALUS_PHI_LOCATION);
	expect(form, "Lorvania 80317", SALUS_PHI_LOCATION);
	expect_none(form, "Community");
	expect_none("Address:\n\nPlan: diuresis and repeat labs.\n", "Plan");
	expect_none("Address: Larkspur Lane 4\nCommunity acquired pneumonia\n", "Community");
	/* digit groups after a calling verb and at/on */
	expect("Please call me on 318 0472 after six.", "318 0472", SALUS_PHI_PHONE);
	expect("Daughter not answering at 61 730 228 today.", "61 730 228", SALUS_PHI_PHONE);
	expect("Reach her at (47) 5520-1934 for consent.", "(47) 5520-1934", SALUS_PHI_PHONE);
	expect_none("Will call MD at 1400 with the results.", "1400");
	expect_none("Called at 10 30 for pain 8 10.", "10 30");
	/* ages over 89 in more forms */
	expect("The patient, aged ninety-three, lives alone.", "ninety-three", SALUS_PHI_AGE);
	expect("Age: ninety one", "ninety one", SALUS_PHI_AGE);
	expect("Age/Sex: 92/F", "92", SALUS_PHI_AGE);
	expect("He turned 99 last week.", "99", SALUS_PHI_AGE);
	expect("HPI: 96 F with dyspnea.", "96", SALUS_PHI_AGE);
	expect_none("Tmax 101 F overnight, now afebrile.", "101");
	expect_none("Aged care facility visit.", "Aged");
	/* ISO date with a time */
	expect("Collected 2021-07-09T14:05:33Z and sent.", "2021-07-09T14:05:33Z", SALUS_PHI_DATE);
	/* partial SSNs, extensions, certificate numbers */
	expect("Verified last four of SSN: 4417 at check-in.", "4417", SALUS_PHI_SSN);
	expect("SSN on file: XXX-XX-2290.", "2290", SALUS_PHI_SSN);
	expect("Her social security number ends in 8102.", "8102", SALUS_PHI_SSN);
	expect("Office 312-555-0147 ext. 331 weekdays.", "ext. 331", SALUS_PHI_PHONE);
	expect("Birth certificate no. 77-40912 attached.", "77-40912", SALUS_PHI_ID);
	expect_none("Walked the last 4 of 10 laps.", "4");
	/* a letterhead: institution of a word the medical list also holds, street of plain words */
	const char *head = "Department of Cardiology\nBrookhaven Regional Hospital\n1420 Juniper Hollow Rd, Suite 300\n"
			   "Glenmoor, NH 03301\n";
	expect(head, "Brookhaven", SALUS_PHI_LOCATION);
	expect(head, "1420 Juniper Hollow Rd", SALUS_PHI_LOCATION);
	expect_none(head, "Cardiology");
	/* a street without a house number; a practice */
	expect("Lives in a condo on Marigold Crescent with her cat.", "Marigold Crescent", SALUS_PHI_LOCATION);
	expect_none("Moved up to the Emergency Department Friday.", "Emergency");
	expect_none("Dr Parr reviewed the Chest Drain site.", "Chest");
	expect("Follow up at the Westbrook Family Practice in 2 weeks.", "Westbrook Family Practice",
	       SALUS_PHI_LOCATION);
}

static void test_context_rules3(void **state)
{
	(void)state;
	/* clinical short forms: the start of a drug or medical term is not a name */
	expect_none("Plan reviewed, will titrate Cefep tonight.", "Cefep");
	expect_none("Plan reviewed, will titrate Milri tonight.", "Milri");
	expect_none("Monitor U/O's and I&O's closely.", "O's");
	/* ... unless it stands next to a name or an initial */
	expect("Family met with Orvald Dilt today.", "Dilt", SALUS_PHI_NAME);
	expect("The Labet R. Quondrik report came back.", "Labet", SALUS_PHI_NAME);
	/* a verb that ends its sentence; a service after "seen by" */
	expect_none("Plan: NSR. Ortho notified. Dilt drip off.", "Dilt");
	expect_none("Patient seen by Cardsurg team this am.", "Cardsurg");
	expect("Patient seen by Quillfen this am.", "Quillfen", SALUS_PHI_NAME);
	/* eponyms and devices: a dictionary name before a head noun; a verb after "will" */
	expect_none("Applied Hartley lotion to both heels.", "Hartley");
	expect_none("Endoscopy showed a Foster Kane tear in the fundus.", "Kane");
	expect_none("PT STABLE. WILL HOLT AND RECHECK IN AM.", "HOLT");
	expect("Spoke with Maren Hartley about the plan.", "Maren Hartley", SALUS_PHI_NAME);
	expect("Daughter Hartley will visit tomorrow.", "Hartley", SALUS_PHI_NAME);
	/* hospital initials after the short forms of transfer verbs */
	expect("PT WAS TX TO QH FOR FOLLOW UP CARE. STABLE.", "QH", SALUS_PHI_LOCATION);
	expect("Intubated for 2 days, tx to QH. Stable.", "QH", SALUS_PHI_LOCATION);
	expect_none("BP 90S UPON RETURN FROM HD. ON 2L.", "HD");
	/* an initial and a surname that is also a word, not inside an abbreviation */
	expect("DRAINAGE AROUND SITE. T. BAKER IN TO CHANGE DSG.", "T. BAKER", SALUS_PHI_NAME);
	expect_none("85 Y.O. MAN WITH CP.", "MAN");
	expect_none("FOLLOW I&O. POST PROCEDURE STABLE.", "POST");
	/* a month alone after a date preposition */
	expect("Lived at home until sept. then moved to rehab.", "sept", SALUS_PHI_DATE);
	expect("Symptoms began in March and worsened.", "March", SALUS_PHI_DATE);
	expect_none("She may march in the parade in may.", "march");
	expect_none("Daughter may visit.", "may");
	/* an age over 89 opening a line before a history word */
	expect("Nursing note\n97 s/p fall at home, on RA.", "97", SALUS_PHI_AGE);
	expect("Nursing note\n92 with dementia and CHF.", "92", SALUS_PHI_AGE);
	expect_none("HR 98 with occ PVCs.", "98");
	/* a two-digit year glued to a diagnosis; hospital initials before a unit in a lower-case note */
	expect("pmh: htn, prostate CA'91, gerd.", "91", SALUS_PHI_DATE);
	expect_none("he is 5'11 and 80 kg.", "11");
	expect("line placed, then to qh cath lab for pci. stable.", "qh", SALUS_PHI_LOCATION);
	expect_none("pt to hd unit per renal. stable.", "hd");
	/* ventilator settings and culture bottles are not dates */
	expect_none("Now weaning on 8/5-.35 and doing well.", "8/5");
	expect_none("GPC in 2/4 aerobic bottles so far.", "2/4");
	expect("Cultures drawn on 3/4 are pending.", "3/4", SALUS_PHI_DATE);
	/* a letter of a dotted abbreviation or after a drug is not an initial */
	expect_none("RECEIVED 4MG I.V. KORVEX. STABLE.", "KORVEX");
	expect_none("CATH SHOWED A T.O. LCX, STENTED.", "LCX");
	expect_none("STARTED ON AMPHO B. AWATING CONSULT.", "AWATING");
	expect("Seen by Dr. Quill and M. Peppin today.", "M. Peppin", SALUS_PHI_NAME);
	/* a credential before a device word is the device's abbreviation */
	expect_none("Occ PVCs. New PA line placed, wedge 14.", "New");
	expect("Note by Tova Brennick, PA", "Tova Brennick", SALUS_PHI_NAME);
	/* "arrived on" a drug; a bare institution word */
	expect_none("PT ARRIVED ON NORVATRIX FOR LOW EF.", "NORVATRIX");
	expect("Lives on Quarrel Street with wife.", "Quarrel Street", SALUS_PHI_LOCATION);
	expect_none("pt admitted to hosp on 3/2 with cp.", "hosp");
	/* left/right abbreviations without a vowel; vowel-less places stay */
	expect_none("A: 3VD, s/p stent to Rpl. Labs at 8pm.", "Rpl");
	assert_non_null(find("Moved here from Vrh nad Kolpo last year.", "Vrh")); /* kept (as a name) */
	/* "lives alone in", "lives with her son in"; a place prefix in a lower-case note */
	expect("triage: lives alone in east quellburgh, daughter visits.", "east quellburgh", SALUS_PHI_LOCATION);
	expect("Lives with her son in Quellburgh since 2019.", "Quellburgh", SALUS_PHI_LOCATION);
	expect_none("triage: lives alone in new apartment, daughter visits.", "apartment");
	/* a lower-case name after a title in a note with capitals */
	expect("Seen today. PCP is dr elspeth quarnwick, aware of plan.", "elspeth quarnwick", SALUS_PHI_NAME);
	expect_none("Seen today. Dr brandt called back about the plan.", "called");
	/* a double-barrelled surname whose second part is a word; a lab value after "re:" */
	expect("CALLED DR. OKONKWO-BELL RE: K 3.2, ORDERS RECEIVED.", "OKONKWO-BELL", SALUS_PHI_NAME);
	expect_none("CALLED DR. OKONKWO-BELL RE: K 3.2, ORDERS RECEIVED.", "K 3");
	expect_none("Pain well-controlled, follow-up in 2 weeks.", "controlled");
	/* a hospital named by a word and General/Regional/Memorial */
	expect("Comparison: prior study from Aldermoor Regional on 12/02/2020.", "Aldermoor Regional",
	       SALUS_PHI_LOCATION);
	expect("FAMILY SAYS THAT AT GRANITE MEMORIAL, SHE FELL.", "GRANITE MEMORIAL", SALUS_PHI_LOCATION);
	expect_none("Gave Regional anesthesia for the block.", "Regional");
	/* a dictionary name before a place suffix; inns and hotels */
	expect("Family from Quinlan Heights, staying nearby.", "Quinlan Heights", SALUS_PHI_LOCATION);
	expect("Plan to stay at the Kestrel Inn tonight.", "Kestrel", SALUS_PHI_LOCATION);
	/* a function word across a comma is not a drug of a list */
	assert_non_null(find("I'm in Blorvik, at the conference", "Blorvik"));
	expect_none("On IV Flagyl, Zosyn and Vanco.", "Zosyn");
}

/* Rules of the 2026-12-07 sixth pass (invented sentences). */
static void test_context_rules4(void **state)
{
	(void)state;
	/* a bare year after a past procedure or diagnosis */
	expect("S/P AVR, CABG 1948, 1977. STABLE.", "1948", SALUS_PHI_DATE);
	expect("Hx: ablation 2011, on coumadin.", "2011", SALUS_PHI_DATE);
	expect("PMH: HTN, DM, MI 94, CVA 03.", "94", SALUS_PHI_DATE);
	expect("PMH: HTN, DM, MI 94, CVA 03.", "03", SALUS_PHI_DATE);
	expect_none("BS 1900 at 1957. HR 92, RR 20.", "1957");
	expect_none("NSR, HR 92, no ectopy; MI 92 rule out.", "92");
	expect_none("SBP 98, MAP 70 after fluids.", "98");
	expect_none("Trop 0.04, s/p MI 1.2 ng.", "1");
	/* a place prefix and a word after a preposition; hospitals named for a devotion */
	expect("Wife started a new job in Bel Quarry last month.", "Bel Quarry", SALUS_PHI_LOCATION);
	expect("FAMILY CAME FROM THE WESTERN SHORE TODAY.", "WESTERN SHORE", SALUS_PHI_LOCATION);
	expect("PT FOUND AT HOME IN QUELTON MILL BY EMS.", "QUELTON MILL", SALUS_PHI_LOCATION);
	expect("will transfer back to holy trinity in am", "holy trinity", SALUS_PHI_LOCATION);
	expect("Went to Sacred Heart with fever.", "Sacred Heart", SALUS_PHI_LOCATION);
	expect_none("SOFT RESTRAINTS TO UPPER EXTREM. RESPONDS TO PAIN.", "EXTREM");
	expect_none("Edema in Lower Extremities improved.", "Lower");
	expect_none("MOVES TO NEW ONSET PAIN.", "ONSET");
	/* a city after a street address, though the state code is also an abbreviation */
	expect("Pt eating well.\nHome: 88 Quarry Hill Road, Brandonville, VT\nNo pain.", "Brandonville",
	       SALUS_PHI_LOCATION);
	expect("PT STABLE.\nHOME: 9 ELM ROAD, QUELLTON, PA\nNO PAIN.", "QUELLTON", SALUS_PHI_LOCATION);
	expect("Pt eating well.\nAddress: 12 Orchard St\nBrandonville, VT\nNo pain.", "Brandonville",
	       SALUS_PHI_LOCATION);
	expect_none("Rhythm: SR, PVCs, VT\nNo pain.", "PVCs");
	/* a lower-case first name after a role or a verb in a note with capitals */
	expect("Pt stable. Report given to nurse jolene at 7pm.", "jolene", SALUS_PHI_NAME);
	expect("Pt stable. Daughter called, spoke with wife marguerite re: plan.", "marguerite", SALUS_PHI_NAME);
	expect_none("PICC patent. RT rad art line placed.", "rad");
	expect_none("Pt stable. Spoke with wife about plan.", "about");
	/* a place found once is a place elsewhere in the note, not a unit in capitals */
	assert_non_null(find("Transferred to Quellmoor 4 at noon. Plan: c/o to quellmoor when stable.",
			     "quellmoor"));
	/* a rare name that starts a medical term, in a note without case evidence */
	expect_none("pulses trace to dopp, dp/pt on right.", "dopp");
	expect_none("PT GOT AGITATED, PULS AND KICKS.", "PULS");
	expect("they had 3 kids: dorota, adam, quentin.", "adam", SALUS_PHI_NAME);
	/* a word in capitals before PT in a mixed note is not a signature */
	expect_none("Stable overnight.\n*** SEE PT ADMISSION NOTE", "SEE");
	expect("Stable overnight.\nMarta Quellfield PT", "Quellfield", SALUS_PHI_NAME);
	/* culture bottles after the organism are not dates */
	expect_none("Micro: gram pos cocci in 1/4 sets so far.", "1/4");
	expect("Blood cx drawn on 1/4 still pending.", "1/4", SALUS_PHI_DATE);
	/* where a person is from or lives, in notes without case evidence */
	expect("PT IS FROM QUELLMOUTH, LIVES WITH WIFE.", "QUELLMOUTH", SALUS_PHI_LOCATION);
	expect("pt's home is in marrowfield, 2 hrs away.", "marrowfield", SALUS_PHI_LOCATION);
	expect("Pt is a resident of Quellmouth, lives alone.", "Quellmouth", SALUS_PHI_LOCATION);
	expect_none("blood which pt states is from hemroids   gu--foley patent", "hemroids");
	expect_none("PT IS FROM OSH, STABLE.", "OSH");
	/* a role abbreviation between a verb and the name; a verb before "aware" */
	expect("Pt stable. Paged H.O. Quellan re: low uo.", "Quellan", SALUS_PHI_NAME);
	expect("Pt stable. Notified MD Quellan of K 3.1.", "Quellan", SALUS_PHI_NAME);
	expect("LOW UO. QUELLAN MADE AWARE OF HCT.", "QUELLAN", SALUS_PHI_NAME);
	expect_none("LOW UO. TEAM MADE AWARE OF HCT.", "TEAM");
	/* the person a plan was discussed with */
	expect("Pt stable. D/W Quellan, plan to increase lasix.", "Quellan", SALUS_PHI_NAME);
	expect("PT STABLE. D/W QUELLAN, NP. PLAN TO INCREASE LASIX.", "QUELLAN", SALUS_PHI_NAME);
	expect_none("PT STABLE. D/W MICU TEAM, PLAN TO INCREASE LASIX.", "MICU");
	/* m/m after a past event; a line and the day it went in */
	expect("Pt was extubated 2/2 and is stable.", "2/2", SALUS_PHI_DATE);
	expect("HCT 30 POST 3/3 TX. STABLE.", "3/3", SALUS_PHI_DATE);
	expect("Lines: PIV #20 RA-10/3, stable.", "10/3", SALUS_PHI_DATE);
	expect_none("Tolerated 1/2 of meal.", "1/2");
	expect_none("Weaned to PS-10/5 this am.", "10/5");
	expect_none("Moves 4/4 extremities.", "4/4");
	/* an initial in a signature line of a note in capitals */
	expect("PT STABLE OVERNIGHT.\nJ QUELLAN RN", "J QUELLAN", SALUS_PHI_NAME);
	expect_none("PT STABLE OVERNIGHT.\nSEE FLOWSHEET RN", "FLOWSHEET");
	/* the year of an orientation check; intensive-care units are not places */
	expect("Orientation: knows it is 2020, not sure of month.", "2020", SALUS_PHI_DATE);
	expect_none("PT STABLE. UO: IT IS 1950 CC POSITIVE.", "1950");
	expect_none("Pt stable. Pt transferred to the NSICU for care.", "NSICU");
	expect_none("PT TRANSFERRED FROM CVICU TO 5 WEST.", "CVICU");
	/* specimens sent to the blood bank; the topics after "re:" */
	expect_none("new clot sent to bb. resp stable.", "bb");
	expect("r/i for mi she was sent to qh for further eval.", "qh", SALUS_PHI_LOCATION);
	expect_none("much teaching re: mi/meds. family in.", "mi");
}

static void test_address_blocks(void **state)
{
	(void)state;
	/* a house number, the street, the apartment, then city, country and postcode */
	const char *block = "Quenna Marlowe\n\n41207 Brellingkatu 17\n Suite 208\n Varrosund\n\n Quelland 59713";
	expect(block, "41207 Brellingkatu 17", SALUS_PHI_LOCATION);
	expect(block, "Varrosund", SALUS_PHI_LOCATION);
	expect(block, "59713", SALUS_PHI_LOCATION);
	const char *one = "Send it to 8812 14 Rue Quellard Apt. 417 Marrowby , QX  60425 please.";
	expect(one, "8812 14 Rue Quellard", SALUS_PHI_LOCATION);
	expect(one, "Marrowby", SALUS_PHI_LOCATION);
	expect(one, "60425", SALUS_PHI_LOCATION);
	/* quoted lines; the apartment before the street */
	const char *quoted = "> Quenna Marlowe\n> 3319 Vellagata 52\n> Apt. 120\n> QUELLSTAD\n> Norland 44120";
	expect(quoted, "3319 Vellagata 52", SALUS_PHI_LOCATION);
	expect(quoted, "QUELLSTAD", SALUS_PHI_LOCATION);
	expect("Dr. Quenna Marlowe Apt. 117 6620 Brellveien 31\nQUELLSTAD", "6620 Brellveien 31", SALUS_PHI_LOCATION);
	/* a line that is not all address words ends the block; a label ends it */
	const char *tail = "9120 Quellweg 4 Apt. 12, Marrowby\nPlease call me soon.";
	expect(tail, "Marrowby", SALUS_PHI_LOCATION);
	expect_none(tail, "Please");
	expect_none("7741 Brellingkatu 9 Suite 30, Marrowby\nMobile: 555", "Mobile");
	/* an address after "at" goes on over the lines of its block */
	const char *lines = "The office is at 5120 2231 Quellmoor Drive\nBrellington\n, 44\n 60810. Come by.";
	expect(lines, "Brellington", SALUS_PHI_LOCATION);
	expect(lines, "60810", SALUS_PHI_LOCATION);
	expect_none(lines, "Come");
	/* military addresses over a line break */
	expect("Mail it to PSC 4417, Box 2290\nAPO AE 09112 today.", "APO AE 09112", SALUS_PHI_LOCATION);
	/* a ward is not an apartment; a unit number without a house number and street */
	expect_none("Pt transferred to Unit 4 Bed 12 at noon.", "Bed");
	expect_none("Gave 2 Units PRBC, Unit 2 hung at 1400.", "PRBC");
	/* after any label: a house number of 3+ digits, a proper noun in no list, a second number */
	const char *label = "Ship to? Client: 7716 Quellarstraeti 41, Marrowby, Norland";
	expect(label, "7716 Quellarstraeti 41", SALUS_PHI_LOCATION);
	expect(label, "Marrowby", SALUS_PHI_LOCATION);
	/* words of a script without ASCII capitals count as the street's words */
	expect("She lives at 10252 \u039c\u03b5\u03b3\u03ac\u03bb\u03b7 184, Quellos today.", "184", SALUS_PHI_LOCATION);
	/* not vitals or doses after a label: an English or medical word follows the number */
	expect_none("Temp: 101 Tmax 102, HR: 110 Sinus 2 PVCs", "101");
	expect_none("Plan: 250 Units Heparin 12 hourly", "250");
}

static void test_name_lists(void **state)
{
	(void)state;
	/* a capitalised word in no list next to a name, across a comma or "and" */
	const char *list = "They had 6: Quellane, Hannah, Brellon and Thomas.";
	expect(list, "Quellane", SALUS_PHI_NAME);
	expect(list, "Brellon", SALUS_PHI_NAME);
	/* not drugs or English words in a list beside a name */
	const char *meds = "Seen by Dr. Hannah Brown, Lasix and Heparin given, Quiet night.";
	expect_none(meds, "Lasix");
	expect_none(meds, "Quiet");
}

static void test_dates_glued(void **state)
{
	(void)state;
	/* a date after a word and its dot, a two-digit year after a dot, a range of two dates
	 * after a past event, a culture date (not a count of bottles) */
	expect("Pt was transferred to Brellmoor.4/17. Readmitted today.", "4/17", SALUS_PHI_DATE);
	expect("Labs drawn 10/19.97 per team.", "10/19.97", SALUS_PHI_DATE);
	expect("also extubated 4/28-5/3 for pneumonia.", "4/28-5/3", SALUS_PHI_DATE);
	expect("last cx 4/26 in am, no growth.", "4/26", SALUS_PHI_DATE);
	/* still not dates: bottles, decimals, ranges of values, settings */
	expect_none("blood cx 2/4 bottles positive", "2/4");
	expect_none("pH 7.38/42/88 on the last gas", "38/42");
	expect_none("PS 10/5-12/5 tolerated", "10/5");
	expect_none("dose 3.5/4.25 units", "5/4");
	expect_none("weaned 1/2-2/3 of the time", "1/2");
}

static void test_universities(void **state)
{
	(void)state;
	/* a university named for a state or a city, in any case, with its hospital */
	expect("Pt recieved from university of ohio hospital, intubated.", "university of ohio", SALUS_PHI_LOCATION);
	expect("ADMITTED FROM UNIVERSITY OF VERMONT MEDICAL CENTER YESTERDAY.", "UNIVERSITY OF VERMONT",
	       SALUS_PHI_LOCATION);
	expect("PRESENTED TO U OF VT MED CENTER ON 9/14.", "U OF VT", SALUS_PHI_LOCATION);
	expect("She trained at the University of Quellmark.", "University of Quellmark", SALUS_PHI_LOCATION);
	/* not a subject of study or a common word */
	expect_none("He studied at a university of some renown.", "university");
	expect_none("Seen in the University of Medicine clinic.", "University");
}

static void test_names_initials_roles(void **state)
{
	(void)state;
	/* lower-case initials: a pair of them, or signed with a credential */
	const char *pair = "valuables checked by nsg (t. quennell and r. brasko) and locked.";
	expect(pair, "t. quennell", SALUS_PHI_NAME);
	expect(pair, "r. brasko", SALUS_PHI_NAME);
	expect("plan to wean today. s. ignatio rrt", "s. ignatio", SALUS_PHI_NAME);
	/* organisms and abbreviations are not initials */
	expect_none("sputum grew p. aeruginosa and e. coli today.", "aeruginosa");
	expect_none("sputum grew p. aeruginosa and e. coli today.", "coli");
	expect_none("stool sent for c. diff, pending.", "diff");
	/* a first name that is also a word after a title, before a surname */
	expect("Dr. May Ostrova and Dr Bill Jones aware.", "May Ostrova", SALUS_PHI_NAME);
	/* after a role abbreviation, a first name that is also a word; not a month or a modal */
	expect("RN HOPE AWARE OF PLAN.", "HOPE", SALUS_PHI_NAME);
	expect_none("NP WILL FOLLOW UP. MD MAY CALL BACK.", "WILL");
	expect_none("NP WILL FOLLOW UP. MD MAY CALL BACK.", "MAY");
	/* an initial without its dot, a surname and a verb of a person acting */
	expect("PRESSURE DROPPED, J QUARNE ORDERED LEVO.", "J QUARNE", SALUS_PHI_NAME);
	expect("Pressure dropped, K Brandt ordered levo.", "K Brandt", SALUS_PHI_NAME);
	expect_none("K REPLETED, G TUBE ORDERED, X RAY ORDERED.", "TUBE");
	expect_none("K REPLETED, G TUBE ORDERED, X RAY ORDERED.", "RAY");
}

static void test_wards(void **state)
{
	(void)state;
	/* a ward named by a word in no list and a one-digit number, after moving or a plan */
	expect("ASSESS: STABLE DAY.  PLAN: QUELLHAVEN 2 WHEN BED AVAIL.", "QUELLHAVEN", SALUS_PHI_LOCATION);
	expect("Plan to transfer to brellmoor2 tomorrow.", "brellmoor2", SALUS_PHI_LOCATION);
	expect("TRANSFER QUELLHAVEN 2.", "QUELLHAVEN", SALUS_PHI_LOCATION);
	/* not doses */
	expect_none("Started Quellidex 2 mcg/kg, then Brellamine 2.5.", "Quellidex");
	expect_none("Started Quellidex 2 mcg/kg, then Brellamine 2.5.", "Brellamine");
	expect_none("Plan: Lasix 2 doses today.", "Lasix");
	/* hospital initials ending a clause after "at" or "from the" in a note in capitals */
	expect("PT SENT TO ED AT QH. PT WAS SOMEWHAT SLEEPY.", "QH", SALUS_PHI_LOCATION);
	expect("CONSULT CAME FROM THE QBMC. SEEN TODAY.", "QBMC", SALUS_PHI_LOCATION);
	expect_none("MEDS STILL N/A FROM QYXIS. PT RESTING.", "QYXIS");
	expect_none("PT RESTING AT HS. NO COMPLAINTS.", "HS");
}

static void test_clinical_vocab(void **state)
{
	(void)state;
	/* consult services, charting systems and drug classes are clinical words, not names */
	expect_none("Pt was evaluated by Nsurg this morning, no acute intervention.", "Nsurg");
	expect_none("Pt seen by Ctsurg today, plan per team.", "Ctsurg");
	expect_none("Will discuss B Blocker with team in AM.", "Blocker");
	expect_none("Vitals as charted in CareVue, see flowsheet.", "CareVue");
	expect_none("CT TO SUCTION. MIDLEVELS AWARE.", "MIDLEVELS");
	/* pulse sites: DP (dorsalis pedis) before PT (posterior tibial) is no signature */
	expect_none("Right DP, PT, and left PT dopplerable.", "DP");
	expect_none("Pulses: RIGHT DP, PT PALPABLE.", "DP");
	expect("Note by Quennell Brasko, PT", "Quennell Brasko", SALUS_PHI_NAME);
	/* a name after the same verbs is still found */
	expect("Pt was evaluated by Quennell this morning.", "Quennell", SALUS_PHI_NAME);
	expect("Dr. Quennell aware of labs.", "Quennell", SALUS_PHI_NAME);
}

static void test_grades_not_dates(void **state)
{
	(void)state;
	/* a murmur's grade and a muscle's strength are fractions, not dates */
	expect_none("Exam notable for a 2/6 systolic murmur at the apex.", "2/6");
	expect_none("Grade 1/4 diastolic rumble, no gallop.", "1/4");
	expect_none("II/VI SEM, and a 3/6 holosystolic murmur.", "3/6");
	expect_none("Strength 5/5 in the arms, 4/5 left grip.", "4/5");
	expect_none("Deltoids 3/5 bilaterally.", "3/5");
	/* the same fractions with a date word stay dates */
	expect("Seen in clinic on 2/6 for the murmur.", "2/6", SALUS_PHI_DATE);
	expect("Follow up on 4/5 re: weakness.", "4/5", SALUS_PHI_DATE);
}

static void test_relation_lower(void **state)
{
	(void)state;
	/* in a note with capitals, a lower-case name after a relation, also a 3-letter one */
	expect("NSG 0700-1900: pt alert. family (dtr quaibraer) in to visit, updated by RN.", "quaibraer",
	       SALUS_PHI_NAME);
	expect("Pt resting. Spoke with dtr mary about the plan.", "mary", SALUS_PHI_NAME);
	/* verbs, clinical words and places after a relation are not names */
	expect_none("Pt resting. dtr updated by RN at bedside.", "updated");
	expect_none("Wife aware of plan, son in to visit.", "aware");
	expect_none("Pt resting. Wife bedside, dtr called and updated.", "called");
}

static void test_town_and_system(void **state)
{
	(void)state;
	/* the town after the comma that ends a street address, with its place word */
	const char *a = "BIBA from home at 7415 Klashork St., Quavav Falls after a fall.";
	expect(a, "Quavav", SALUS_PHI_LOCATION);
	expect(a, "Falls", SALUS_PHI_LOCATION);
	expect("Lives at 22 Dreppel Road, Zorkton with wife.", "Zorkton", SALUS_PHI_LOCATION);
	expect_none("Pt lives at 4 Elm Street, Denies pain.", "Denies");
	expect_none("Found at 9 Oak Ave, Lasix given.", "Lasix");
	/* an institution named by a word in no list and Health System / Network */
	expect("Transferred to Quorvel Health Network today.", "Quorvel Health Network", SALUS_PHI_LOCATION);
	expect("Records from Haijaem Health System were reviewed.", "Haijaem Health System", SALUS_PHI_LOCATION);
	expect_none("Followed by Mental Health services.", "Health");
	expect_none("Public Health System notified.", "Health");
	/* a title, an initial that is also an abbreviation (L, R) and a surname */
	expect("Followed by Dr. L. Quubrialtley. Records faxed.", "L. Quubrialtley", SALUS_PHI_NAME);
	expect("Dr. R. Vantrelle aware of labs.", "R. Vantrelle", SALUS_PHI_NAME);
	expect_none("Dr. L. Hip pain noted.", "Hip");
}

static void test_lower_case_notes(void **state)
{
	(void)state;
	/* in a note written in lower case a capitalised word inside a sentence is a proper noun */
	const char *note = "pt resting comfortably overnight, vs stable. wife came in from Marrowby today, "
			   "supportive to pt, Quellan. works for Brellcorp. did Chest PT with good effect, "
			   "on Lasix iv. family aware of plan.";
	expect(note, "Marrowby", SALUS_PHI_LOCATION);
	expect(note, "Quellan", SALUS_PHI_NAME);
	expect(note, "Brellcorp", SALUS_PHI_NAME);
	expect_none(note, "Chest");
	expect_none(note, "Lasix");
	/* an eponym that is also a surname: a name unless used as an eponym */
	const char *epo = "pt resting comfortably overnight, vs stable, no complaints. dtr Frances Baker- "
			  "will call back. has a Baker cyst on the left, and Bell palsy.";
	expect(epo, "Frances Baker", SALUS_PHI_NAME);
	expect_none(epo, "Baker cyst");
	expect_none(epo, "Bell");
	/* a month/year glued to the word before it; not blood gases */
	expect("PMH: GERD, s/p pelvic fx4/97, stable.", "4/97", SALUS_PHI_DATE);
	expect("Hx: cabg3/2004, htn.", "3/2004", SALUS_PHI_DATE);
	expect_none("ABG 7.31 pco2/45 po2/80 on 50%.", "2/45");
	expect_none("ABG 7.31 pco2/45 po2/80 on 50%.", "2/80");
	expect_none("Lumbar fusion L4/5 done.", "4/5");
	/* a place in capitals after in/from in a mixed note; not units, rhythms or drugs */
	expect("She moved here from QUELLMOUTH last year.", "QUELLMOUTH", SALUS_PHI_LOCATION);
	expect_none("Pt remains in VTACH, transferred from CVICU.", "VTACH");
	expect_none("Pt remains in VTACH, transferred from CVICU.", "CVICU");
	expect_none("Pt was started in HEPARIN drip.", "HEPARIN");
	/* a surname that is also a word after a first name; a middle initial */
	expect("The talk was given by our host Zoe Young yesterday.", "Zoe Young", SALUS_PHI_NAME);
	expect("Maybe it is under Elita B Quellanders now.", "Elita B Quellanders", SALUS_PHI_NAME);
	expect("Ask for Hanne T. Quellanders at the desk.", "Hanne T. Quellanders", SALUS_PHI_NAME);
	expect_none("Spoke with Maria. I Told her to call.", "Told");
	/* the ward a patient is called out to */
	const char *co = "Pt stable. Plan: c/o to quellmoor if stable, c/o to floor, c/o to micu.";
	expect(co, "quellmoor", SALUS_PHI_LOCATION);
	expect_none(co, "floor");
	expect_none(co, "micu");
}

static void test_ages_in_context(void **state)
{
	(void)state;
	/* a number of 90-125 that its context makes a person's age */
	expect("His mother died at 96 of a stroke.", "96", SALUS_PHI_AGE);
	expect("Lives with her husband, who passed away at 101.", "101", SALUS_PHI_AGE);
	expect("She is 93 and still drives.", "93", SALUS_PHI_AGE);
	expect("Pt is 97, lives with grandson.", "97", SALUS_PHI_AGE);
	expect("Diagnosed at the age of 92 with CLL.", "92", SALUS_PHI_AGE);
	expect("DEMOGRAPHICS: AGE-94 SEX-F", "94", SALUS_PHI_AGE);
	expect("Mrs. Quellaby (98) was seen in clinic.", "98", SALUS_PHI_AGE);
	expect("The patient (F, 91) was seen today.", "91", SALUS_PHI_AGE);
	expect("Index case (104 male) reviewed.", "104", SALUS_PHI_AGE);
	expect("Pt, 99, is alert and oriented.", "99", SALUS_PHI_AGE);
	expect("A 95 y old woman fell at home.", "95", SALUS_PHI_AGE);
	expect("Triage: 96y F, fall.", "96", SALUS_PHI_AGE);
	/* measurements after their label are not ages */
	expect_none("HR is 102 and regular.", "102");
	expect_none("O2 sat: she is 95% on RA.", "95");
	expect_none("He is 95 kg today.", "95");
	expect_none("Temp was 99.1 overnight.", "99");
	expect_none("SBP 95, HR 110, RR 22.", "95");
	expect_none("Flow (95) unchanged.", "95");
	expect_none("Pt is 98 on 2L NC.", "98");
}

static void test_homes_wards_six_digit_dates(void **state)
{
	(void)state;
	/* the person whose house: one or two words before 's and a home word after at/to/from */
	expect("He said he was \"at ondine vasquell's house\" last night.", "ondine vasquell", SALUS_PHI_NAME);
	expect("Pt was found at Brannoch's home by EMS.", "Brannoch", SALUS_PHI_NAME);
	expect("WENT TO TESSALY GRAY'S APARTMENT AFTER.", "TESSALY GRAY", SALUS_PHI_NAME);
	expect_none("She stays at her son's house on weekends.", "son");
	expect_none("Will go to a friend's place tonight.", "friend");
	expect_none("Plans to return to the patient's home with VNA.", "patient");
	/* a name's possessive 's is not part of the span */
	const struct salus_span *sp = find("Pt was found at Brannoch's home by EMS.", "Brannoch");
	assert_non_null(sp);
	assert_int_equal(sp->end - sp->start, strlen("Brannoch"));
	/* six digits MMDDYY after a date word; not other six-digit numbers */
	expect("DOB 071244, allergies NKDA.", "071244", SALUS_PHI_DATE);
	expect("Pt born 110539 per old chart.", "110539", SALUS_PHI_DATE);
	expect_none("Bag count 071244 at noon.", "071244");
	expect_none("Admitted on 134455 units.", "134455");
	/* a long ward word with a one-digit number opening a sentence or after a comma */
	expect("Cath done, CP resolved. QUELLHAVEN3 NOTIFIED OF BED.", "QUELLHAVEN3", SALUS_PHI_LOCATION);
	expect("Plan: wean drips, brellmoorhaus 2", "brellmoorhaus", SALUS_PHI_LOCATION);
	expect_none("Abd soft. Vomitusx2 today, small.", "Vomitusx2");
	expect_none("EKG: ? BASELINED 1 ST DEGREE AVB.", "BASELINED");
}

static void test_places_without_case(void **state)
{
	(void)state;
	/* in a note in capitals (or lower case), a word in no list after a person and from/at/near */
	const char *up = "PT RESTING COMFORTABLY IN BED, NO COMPLAINTS OVERNIGHT. PT FROM ZORKTON, "
			 "DAUGHTER FROM BRELLINGFORD IN TO VISIT. WIFE WAS AT QUENDALE TODAY. "
			 "BLEEDING FROM HEMRODS. PACER SET AT ADEMND OF 50. PT STATES IS FROM HEMRODS.";
	expect(up, "ZORKTON", SALUS_PHI_LOCATION);
	expect(up, "BRELLINGFORD", SALUS_PHI_LOCATION);
	expect(up, "QUENDALE", SALUS_PHI_LOCATION);
	expect_none(up, "HEMRODS");
	expect_none(up, "ADEMND");
	const char *lo = "pt resting comfortably in bed, no complaints overnight. son from quellbury called, "
			 "pt weaned from levophedd 2 mcg. pt from brannockville.";
	expect(lo, "quellbury", SALUS_PHI_LOCATION);
	expect(lo, "brannockville", SALUS_PHI_LOCATION);
	expect_none(lo, "levophedd");
	/* a role word in capitals before a word in no list at all */
	expect("Pt resting comfortably overnight, vitals stable and no complaints of pain.\n"
	       "SOCIAL: SPOKE W/ NURSE KESSOP. CODE: FULL.", "KESSOP", SALUS_PHI_NAME);
	expect(up, "ZORKTON", SALUS_PHI_LOCATION);
	expect("PLAN: DIURESE, ADVANCE DIET. CONTACT CASE MANAGER QUELMIRA VOSTRAND RE: SNF PLACEMENT.",
	       "QUELMIRA VOSTRAND", SALUS_PHI_NAME);
	expect_none("PT RESTING, VSS, NO COMPLAINTS OVERNIGHT. NURSE AWARE OF PLAN.", "AWARE");
	/* the credential of a signature in capitals */
	const char *sig = "THANK YOU FOR THIS REFERRAL.\n\nSINCERELY,\nQUELMIRA VOSTRAND, MD\n";
	expect(sig, "QUELMIRA VOSTRAND", SALUS_PHI_NAME);
	expect(sig, "MD", SALUS_PHI_NAME);
	expect_none("PT RESTING IN BED, NO COMPLAINTS. SEEN BY MD, PA AND RN.", "PA");
	/* not a nursing credential: "J. QUELL, RRT" keeps only the name */
	expect_none("SPUTUM THICK, SUCTIONED X2.\n QUENNA T. VORSTAD, RRT\n", "RRT");
	/* a note in lower case: a role word (not an abbreviation) before a word in no list */
	const char *lo2 = "pt resting comfortably, no complaints overnight. contact case manager quelmira "
			  "vostrand re: placement. see rt flowsheeet for settings.\n\nsincerely,\nbrannoch "
			  "quellaby, md\n";
	expect(lo2, "quelmira vostrand", SALUS_PHI_NAME);
	expect(lo2, "md", SALUS_PHI_NAME);
	expect_none(lo2, "flowsheeet");
	/* dates with a month in lower case need the year; a state code in lower case is not PHI */
	const char *lo3 = "referral letter. dob 5 oct 1931, seen 14 dec 2029. will see her in 2 may visits.\n"
			  "home address: 17 quellmoor lane, brannockville, nj 07601\n";
	expect(lo3, "5 oct 1931", SALUS_PHI_DATE);
	expect(lo3, "14 dec 2029", SALUS_PHI_DATE);
	expect_none(lo3, "2 may");
	expect(lo3, "brannockville", SALUS_PHI_LOCATION);
	expect(lo3, "07601", SALUS_PHI_LOCATION);
	expect_none(lo3, "nj");
	/* a capitalised word in no list opening a sentence before a verb a person does */
	const char *st = "Pt resting comfortably overnight, vitals stable. Brannoch called this am. "
			 "Quellaby lives nearby. Vancomax started at noon.";
	expect(st, "Brannoch", SALUS_PHI_NAME);
	expect(st, "Quellaby", SALUS_PHI_NAME);
	expect_none(st, "Vancomax");
	/* an IPv4 address written with zero-padded octets */
	expect("Remote login from 192.168.001.010 at night.", "192.168.001.010", SALUS_PHI_IP);
	/* month-day-year with dashes or slashes */
	expect("CT scan Mar-14-2031 showed no change.", "Mar-14-2031", SALUS_PHI_DATE);
	expect("SEEN SEP/3/2029 IN CLINIC.", "SEP/3/2029", SALUS_PHI_DATE);
	/* more field labels before a name, in any case */
	expect("ACCOUNT SUMMARY FOR THIS VISIT\nGUARANTOR: QUELMIRA VOSTRAND\n", "QUELMIRA VOSTRAND", SALUS_PHI_NAME);
	expect("operative note, left knee arthroscopy.\nassistant: brannoch quellaby\n", "brannoch quellaby",
	       SALUS_PHI_NAME);
	expect_none("OPERATIVE NOTE, LEFT KNEE ARTHROSCOPY.\nANESTHESIA: GENERAL\n", "GENERAL");
	/* a relation written with "-in-law" */
	const char *law = "Patient reports her daughter-in-law, Siv Quellaby, will help at home. By law we must "
			  "report this. Law enforcement was called.";
	expect(law, "Siv Quellaby", SALUS_PHI_NAME);
	expect_none(law, "enforcement");
	expect_none(law, "report");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dates),     cmocka_unit_test(test_contacts_and_ids),
		cmocka_unit_test(test_locations_and_ages), cmocka_unit_test(test_names),
		cmocka_unit_test(test_unicode_offsets), cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_alloc_failures), cmocka_unit_test(test_clinical_lists),
		cmocka_unit_test(test_context_rules), cmocka_unit_test(test_context_rules2),
		cmocka_unit_test(test_context_rules3), cmocka_unit_test(test_context_rules4),
		cmocka_unit_test(test_address_blocks), cmocka_unit_test(test_lower_case_notes),
		cmocka_unit_test(test_name_lists), cmocka_unit_test(test_dates_glued),
		cmocka_unit_test(test_universities), cmocka_unit_test(test_names_initials_roles),
		cmocka_unit_test(test_wards), cmocka_unit_test(test_clinical_vocab), cmocka_unit_test(test_grades_not_dates), cmocka_unit_test(test_relation_lower), cmocka_unit_test(test_town_and_system),
		cmocka_unit_test(test_ages_in_context),
		cmocka_unit_test(test_homes_wards_six_digit_dates),
		cmocka_unit_test(test_places_without_case),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
