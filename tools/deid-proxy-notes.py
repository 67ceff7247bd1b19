#!/usr/bin/env python3
"""deid-proxy-notes.py SEED N > notes.ndjson -- a stand-in for held-out de-identification notes.

Writes N notes (gold format of ../shared/deid: id, patient, text, phi[start,end,type,text], character
offsets) from eight note kinds that are NOT the templates of the development sets (discharge summary,
referral letter, radiology report, ED triage, progress, social history, lower-case nursing, consult), with
names, towns, streets and institutions made of random syllables, so no dictionary holds them: it measures
what context alone finds.  Conventions follow the synthetic dev gold: a credential after a name is in the
name span; states and countries are not PHI (Safe Harbor); a bare year of a move is a DATE.
Score with `salus deid eval --gold notes.ndjson` (docs/deid.md "A proxy for the held-out notes").
Never add its outputs to a dictionary or use its notes as test expectations of the engine.
"""
import json, random, sys
R = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 7)
ON = ["br","cr","dr","fl","gl","gr","kl","pr","tr","v","z","m","n","l","s","t","k","h","j","qu","w","sh","th","b","d","f","g","p","r"]
VW = ["a","e","i","o","u","ai","ei","ou","ia","y","ae"]
CO = ["n","r","l","s","th","nd","rk","lt","x","m","v","st","rn","ck","z"]
def word(n=None):
    n = n or R.choice([2,2,3])
    w = "".join(R.choice(ON)+R.choice(VW) for _ in range(n)) + R.choice(CO+[""])
    return w.capitalize()
def first(): return word(R.choice([2,2,3]))
def last(): return word(R.choice([2,3,3])) + R.choice(["","son","berg","ley","ski","ova","ez","ard"])
def town(): return word(2) + R.choice(["ville","ton"," Falls","burgh"," Springs","field"," Harbor","wick"])
STATES = ["MA","NH","Ohio","Texas","OR","Vermont","NC","Georgia","WA","Minnesota"]
def street(): return f"{R.randint(2,9999)} {word(2)} {R.choice(['Street','St.','Avenue','Ave','Road','Lane','Blvd','Court','Way'])}"
def inst(): return R.choice([f"{word(2)} {R.choice(['General Hospital','Medical Center','Memorial Hospital','Clinic','Rehabilitation Center','Health System'])}", f"St. {word(2)}'s Hospital", f"{town()} Community Hospital"])
def phone(): return R.choice(["({a}) {b}-{c}","{a}-{b}-{c}","{a}.{b}.{c}","+1 {a} {b} {c}"]).format(a=R.randint(201,989),b=R.randint(200,999),c=f"{R.randint(0,9999):04d}")
MON = ["January","February","March","April","May","June","July","August","September","October","November","December"]
def date():
    y, m, d = R.randint(1995,2024), R.randint(1,12), R.randint(1,28)
    return R.choice([f"{m}/{d}/{y}", f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}", f"{MON[m-1]} {d}, {y}", f"{d} {MON[m-1][:3]} {y}", f"{MON[m-1][:3]}. {d}", f"{m}/{d}/{y%100:02d}", f"{d}-{MON[m-1][:3].upper()}-{y}"])
def mrn(): return R.choice([f"{R.randint(1000000,99999999)}", f"MR{R.randint(100000,999999)}", f"{R.randint(100,999)}-{R.randint(10,99)}-{R.randint(1000,9999)}"])
def email(f,l): return f"{f.lower()}.{l.lower()}@{word(2).lower()}.{R.choice(['com','org','net'])}"

class Note:
    def __init__(s): s.t = ""; s.phi = []
    def a(s, x): s.t += x
    def p(s, x, typ):
        s.phi.append({"start": len(s.t), "end": len(s.t)+len(x), "type": typ, "text": x}); s.t += x

def t_discharge(n):
    pf, pl, df, dl = first(), last(), first(), last()
    n.a("DISCHARGE SUMMARY\n\nPatient: "); n.p(f"{pl}, {pf}", "NAME"); n.a("   MRN: "); n.p(mrn(), "ID")
    n.a("\nAdmission Date: "); n.p(date(), "DATE"); n.a("   Discharge Date: "); n.p(date(), "DATE")
    n.a("\nAttending: "); n.p(f"{df} {dl}, MD", "NAME") if False else (n.a("Dr. "), n.p(f"{df} {dl}, MD", "NAME"))
    n.a("\n\nHISTORY OF PRESENT ILLNESS: The patient is a 67-year-old woman with CHF who presented to ")
    n.p(inst(), "LOCATION"); n.a(" with dyspnea. She was transferred from ")
    n.p(town(), "LOCATION"); n.a(" after diuresis failed. Her daughter ")
    n.p(first(), "NAME"); n.a(" accompanied her.\n\nFOLLOW-UP: See Dr. "); n.p(last(), "NAME")
    n.a(" in cardiology clinic on "); n.p(date(), "DATE"); n.a(". Call "); n.p(phone(), "CONTACT"); n.a(" with questions.\n")
def t_letter(n):
    rf, rl, pf, pl = first(), last(), first(), last()
    n.a("Dear Dr. "); n.p(rl, "NAME"); n.a(",\n\nThank you for referring "); n.p(f"{pf} {pl}", "NAME")
    n.a(", whom I saw in the office on "); n.p(date(), "DATE"); n.a(". Ms. "); n.p(pl, "NAME")
    n.a(" lives with her husband in "); n.p(town(), "LOCATION"); n.a(", "); n.a(R.choice(STATES))
    n.a(", and works as a teacher. Her exam was notable for a 2/6 systolic murmur.\n\nSincerely,\n\n")
    n.p(f"{first()} {last()}, MD", "NAME"); n.a("\n"); n.p(inst(), "LOCATION"); n.a("\n")
def t_radiology(n):
    n.a("EXAM: CT chest with contrast\nDATE OF SERVICE: "); n.p(date(), "DATE"); n.a("\nACCESSION: ")
    n.p(f"{R.choice(['CT','RA','US'])}{R.randint(10000000,99999999)}", "ID"); n.a("\nORDERING PHYSICIAN: ")
    n.p(f"{first().upper()} {last().upper()}", "NAME")
    n.a("\nCOMPARISON: Prior study from "); n.p(date(), "DATE"); n.a(".\nFINDINGS: No pulmonary embolism. 4 mm nodule in the RUL.\nIMPRESSION: Stable.\nDictated by: ")
    n.p(f"{first()} {last()}, M.D.", "NAME"); n.a("\n")
def t_triage(n):
    pf, pl = first(), last()
    n.a("ED triage "); n.p(date(), "DATE"); n.a(": "); n.p(f"{pf} {pl}", "NAME"); n.a(", ")
    n.p(str(R.randint(90,104)), "AGE"); n.a(" yo M BIBA from home at "); n.p(street(), "LOCATION"); n.a(", ")
    n.p(town(), "LOCATION"); n.a(" after a fall. Son "); n.p(f"{first()} {pl}", "NAME"); n.a(" (cell ")
    n.p(phone(), "CONTACT"); n.a(") is health care proxy. Insurance ID "); n.p(f"{word(1).upper()[:3]}{R.randint(100000000,999999999)}", "ID"); n.a(".\n")
def t_progress(n):
    n.a("S: Feels better today. Seen with resident Dr. "); n.p(last(), "NAME"); n.a(".\nO: afebrile, BP 128/70.\nA/P: pneumonia improving. Discussed with patient's wife ")
    n.p(first(), "NAME"); n.a(" by phone. Plan to discharge to "); n.p(inst(), "LOCATION"); n.a(" tomorrow ("); n.p(date(), "DATE"); n.a(").\n")
    n.a("Patient email for portal: "); f, l = first(), last(); n.p(email(f, l), "CONTACT"); n.a("\n")
def t_social(n):
    n.a("SOCIAL HISTORY: Retired machinist, originally from "); n.p(town(), "LOCATION"); n.a(". Moved to ")
    n.p(town(), "LOCATION"); n.a(" in "); n.p(str(R.randint(1960, 2015)), "DATE")
    n.a(". Lives alone; neighbor "); n.p(f"{first()} {last()}", "NAME"); n.a(" checks on him daily. SSN on file: ")
    n.p(f"{R.randint(100,899)}-{R.randint(10,99)}-{R.randint(1000,9999)}", "ID"); n.a(". Former smoker, quit 10 years ago.\n")
def t_nursing(n):
    n.a("NSG 0700-1900: pt alert and oriented. family (dtr "); n.p(first().lower(), "NAME"); n.a(") in to visit, updated by RN. ")
    n.a("pt transferred to rm 5 per dr "); n.p(last().lower(), "NAME"); n.a(". ua sent. will cont to monitor. ")
    n.p(first()[0] + ". " + last(), "NAME"); n.a(" RN\n")
def t_consult(n):
    n.a("CONSULT NOTE - "); n.p(date(), "DATE"); n.a("\nRequested by: "); n.p(f"{first()} {last()}, NP", "NAME"); n.a("\nReason: AKI\n")
    n.a("The patient was previously followed at "); n.p(inst(), "LOCATION"); n.a(" by Dr. "); n.p(f"{first()[0]}. {last()}", "NAME")
    n.a(". Records faxed to "); n.p(phone(), "CONTACT"); n.a(". Device serial "); n.p(f"SN-{R.randint(100000,999999)}{word(1).upper()[:2]}", "ID"); n.a(".\n")
T = [t_discharge, t_letter, t_radiology, t_triage, t_progress, t_social, t_nursing, t_consult]
N = int(sys.argv[2]) if len(sys.argv) > 2 else 200
for i in range(N):
    n = Note(); R.choice(T)(n)
    for p in n.phi: assert n.t[p["start"]:p["end"]] == p["text"]
    print(json.dumps({"id": f"ho-{i}", "patient": f"ho-{i}", "text": n.t, "phi": n.phi}))
