// search_diff.test.mjs — differential check on generated data (salus gen): the results of
// a few hundred searches (every date prefix at three or four precisions on dateTime, date and
// Period values, number precision and prefixes on quantities with and without units, strings,
// tokens, :not, :below, references) are compared with a small independent evaluator of the R4
// rules written here in JavaScript (docs/search.md).  Not copied from the server's output.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { SALUS_BIN, startServer } from './lib/server.mjs';

const BIN = SALUS_BIN;
function range(s) { // [lo, hi] ms inclusive at the written precision; no tz = UTC
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/.exec(s);
  if (!m) throw new Error('bad date ' + s);
  const [, y, mo, d, h, mi, se, fr, tz] = m;
  let off = 0;
  if (tz && tz !== 'Z') off = (tz[0] === '+' ? 1 : -1) * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60000;
  const lo = Date.UTC(Number(y), mo ? Number(mo) - 1 : 0, d ? Number(d) : 1, h ? Number(h) : 0, mi ? Number(mi) : 0, se ? Number(se) : 0, fr ? Number((fr + '00').slice(0, 3)) : 0) - off;
  let hi;
  if (!mo) hi = Date.UTC(Number(y) + 1, 0, 1);
  else if (!d) hi = Date.UTC(Number(y), Number(mo), 1);
  else if (!h) hi = lo + 86400000;
  else if (!se) hi = lo + 60000;
  else if (!fr) hi = lo + 1000;
  else hi = lo + (fr.length >= 3 ? 1 : fr.length === 2 ? 10 : 100);
  return [lo, hi - 1];
}
function dateMatch(op, r, s) {
  const eq = r[0] >= s[0] && r[1] <= s[1];
  switch (op) {
    case 'eq': return eq; case 'ne': return !eq;
    case 'gt': return r[1] > s[1]; case 'lt': return r[0] < s[0];
    case 'ge': return r[1] > s[1] || eq; case 'le': return r[0] < s[0] || eq;
    case 'sa': return r[0] > s[1]; case 'eb': return r[1] < s[0];
  }
}
const fold = (s) => s.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
function numRange(str) {
  const m = /^([+-]?\d+)(?:\.(\d+))?$/.exec(str);
  const dec = m[2] ? m[2].length : 0;
  const half = 0.5 * 10 ** -dec;
  return [Number(str) - half, Number(str) + half];
}
function numMatch(op, v, str) {
  const x = Number(str), [lo, hi] = numRange(str);
  switch (op) {
    case 'eq': return v >= lo - 1e-12 && v < hi - 1e-12; case 'ne': return !(v >= lo - 1e-12 && v < hi - 1e-12);
    case 'gt': return v > x; case 'lt': return v < x; case 'ge': return v >= x; case 'le': return v <= x;
  }
}
const periodRange = (p) => [p.start ? range(p.start)[0] : -Infinity, p.end ? range(p.end)[1] : Infinity];

test('differential', { timeout: 600000 }, async () => {
  const bundleText = execFileSync(BIN, ['gen', '--patients', process.env.NP || '12', '--seed', process.env.SEED || '7'], { maxBuffer: 1 << 28 }).toString();
  const bundle = JSON.parse(bundleText);
  const res = bundle.entry.map((e) => e.resource);
  const s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  try {
    const tok = await s.token('full');
    const r = await s.request('POST', '/fhir', { token: tok, headers: { 'content-type': 'application/fhir+json' }, body: bundleText });
    assert.equal(r.status, 200, r.body.slice(0, 500));
    // ids assigned by the server (transaction with fullUrl urn:uuid / PUT?)
    const loc = new Map();
    r.json.entry.forEach((e, i) => loc.set(i, e.response.location.split('/_history')[0]));
    res.forEach((x, i) => { x.id = loc.get(i).split('/')[1]; });
    const fullToId = new Map(bundle.entry.map((e, i) => [e.fullUrl, loc.get(i)]));
    const refOf = (ref) => fullToId.get(ref) ?? ref;
    const of = (t) => res.filter((x) => x.resourceType === t);
    let n = 0, bad = 0;
    async function check(q, want) {
      n++;
      let got = [], url = `/fhir/${q}${q.includes('?') ? '&' : '?'}_count=500`;
      while (url) { // every page
        const rr = await s.request('GET', url, { token: tok });
        if (rr.status !== 200) { bad++; console.log('HTTP', rr.status, q, rr.body.slice(0, 200)); return; }
        got.push(...(rr.json.entry ?? []).filter((e) => e.search.mode === 'match').map((e) => e.resource.id));
        const next = rr.json.link?.find((l) => l.relation === 'next')?.url;
        url = next ? next.slice(next.indexOf('/fhir/')) : null;
      }
      got.sort();
      want = [...new Set(want.map((x) => x.id))].sort();
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        bad++;
        console.log('DIFF', q, 'got', got.length, 'want', want.length, 'extra', got.filter((x) => !want.includes(x)).slice(0, 3), 'missing', want.filter((x) => !got.includes(x)).slice(0, 3));
      }
    }
    const ops = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'];
    // Patient birthdate at three precisions, every prefix
    const pats = of('Patient');
    for (const p of pats.slice(0, 3)) {
      for (const v of [p.birthDate.slice(0, 4), p.birthDate.slice(0, 7), p.birthDate]) {
        for (const op of ops) await check(`Patient?birthdate=${op}${v}`, pats.filter((x) => x.birthDate && dateMatch(op, range(x.birthDate), range(v))));
      }
      const fam = p.name[0].family;
      await check(`Patient?family=${encodeURIComponent(fam.slice(0, 3))}`, pats.filter((x) => x.name.some((n) => fold(n.family ?? '').startsWith(fold(fam.slice(0, 3))))));
      await check(`Patient?name=${encodeURIComponent(fam.slice(0, 2).toUpperCase())}`, pats.filter((x) => x.name.some((n) => [n.family, ...(n.given ?? []), ...(n.prefix ?? []), ...(n.suffix ?? []), n.text].filter(Boolean).some((w) => fold(w).startsWith(fold(fam.slice(0, 2)))))));
      await check(`Patient?gender=${p.gender}`, pats.filter((x) => x.gender === p.gender));
      await check(`Patient?gender:not=${p.gender}`, pats.filter((x) => x.gender !== p.gender));
      await check(`Patient?address-city=${encodeURIComponent(p.address?.[0]?.city ?? 'x')}`, pats.filter((x) => (x.address ?? []).some((a) => fold(a.city ?? '').startsWith(fold(p.address?.[0]?.city ?? 'x')))));
    }
    // Observation: code, date prefixes at several precisions, value-quantity prefixes
    const obs = of('Observation');
    const codes = [...new Set(obs.map((o) => o.code.coding[0].code))];
    for (const c of codes.slice(0, 6)) await check(`Observation?code=http://loinc.org|${c}`, obs.filter((o) => o.code.coding.some((k) => k.system === 'http://loinc.org' && k.code === c)));
    const effR = (o) => o.effectiveDateTime ? [range(o.effectiveDateTime)] : o.effectivePeriod ? [periodRange(o.effectivePeriod)] : o.effectiveInstant ? [range(o.effectiveInstant)] : [];
    for (const o of obs.slice(0, 4)) {
      const d = o.effectiveDateTime ?? o.effectivePeriod?.start;
      if (!d) continue;
      for (const v of [d.slice(0, 4), d.slice(0, 7), d.slice(0, 10), d.slice(0, 16) + 'Z']) {
        for (const op of ops) await check(`Observation?date=${op}${encodeURIComponent(v)}`, obs.filter((x) => effR(x).some((rr) => dateMatch(op, rr, range(v)))));
      }
    }
    const withQ = obs.filter((o) => o.valueQuantity);
    for (const o of withQ.slice(0, 5)) {
      const v = String(o.valueQuantity.value);
      for (const op of ['eq', 'ne', 'gt', 'lt', 'ge', 'le']) {
        await check(`Observation?value-quantity=${op}${v}`, withQ.filter((x) => numMatch(op, x.valueQuantity.value, v)));
        await check(`Observation?value-quantity=${op}${v}|http://unitsofmeasure.org|${encodeURIComponent(o.valueQuantity.code)}`, withQ.filter((x) => x.valueQuantity.system === 'http://unitsofmeasure.org' && x.valueQuantity.code === o.valueQuantity.code && numMatch(op, x.valueQuantity.value, v)));
      }
      const pid = refOf(o.subject.reference).split('/')[1];
      await check(`Observation?patient=${pid}&code=${o.code.coding[0].code}`, obs.filter((x) => refOf(x.subject.reference) === `Patient/${pid}` && x.code.coding.some((k) => k.code === o.code.coding[0].code)));
      await check(`Observation?subject=Patient/${pid}&_sort=-date`, obs.filter((x) => refOf(x.subject.reference) === `Patient/${pid}`));
      // the patient+code pair rows (docs/search.md "Query planning"): every form of the two clauses
      const c0 = o.code.coding[0], other = codes.find((k) => k !== c0.code) ?? 'x';
      const ofPat = (x, id) => refOf(x.subject.reference) === `Patient/${id}`;
      const hasCode = (x, sys, code) => x.code.coding.some((k) => k.code === code && (sys === undefined || (k.system ?? '') === sys));
      await check(`Observation?patient=Patient/${pid}&code=${encodeURIComponent(c0.system)}|${c0.code}`, obs.filter((x) => ofPat(x, pid) && hasCode(x, c0.system, c0.code)));
      await check(`Observation?patient=${pid}&code=|${c0.code}`, obs.filter((x) => ofPat(x, pid) && hasCode(x, '', c0.code)));
      await check(`Observation?code=${c0.code},${other}&patient=${pid}&date=ge2000`, obs.filter((x) => ofPat(x, pid) && (hasCode(x, undefined, c0.code) || hasCode(x, undefined, other)) && effR(x).some((rr) => dateMatch('ge', rr, range('2000')))));
      await check(`Observation?patient=${pid}&code:not=${c0.code}`, obs.filter((x) => ofPat(x, pid) && !hasCode(x, undefined, c0.code)));
      const pat = pats.find((x) => x.id === pid), fam = pat?.name?.[0]?.family;
      if (fam) {
        const famIds = new Set(pats.filter((x) => x.name.some((n) => fold(n.family ?? '').startsWith(fold(fam)))).map((x) => x.id));
        const byFam = (x) => { const r = refOf(x.subject.reference); return r.startsWith('Patient/') && famIds.has(r.slice(8)); };
        await check(`Observation?subject:Patient.family=${encodeURIComponent(fam)}&code=${c0.code}`, obs.filter((x) => byFam(x) && hasCode(x, undefined, c0.code)));
        await check(`Observation?patient:Patient.family=${encodeURIComponent(fam)}&code=${encodeURIComponent(c0.system)}|${c0.code}`, obs.filter((x) => byFam(x) && hasCode(x, c0.system, c0.code)));
      }
    }
    // Encounter date (Period) and class
    const encs = of('Encounter');
    for (const e of encs.slice(0, 3)) {
      const d = e.period?.start;
      if (!d) continue;
      for (const v of [d.slice(0, 7), d.slice(0, 10)]) for (const op of ops) await check(`Encounter?date=${op}${v}`, encs.filter((x) => x.period && dateMatch(op, periodRange(x.period), range(v))));
    }
    await check('Encounter?class=AMB', encs.filter((e) => e.class?.code === 'AMB'));
    // Condition clinical status, onset
    const conds = of('Condition');
    for (const st of ['active', 'resolved', 'inactive']) await check(`Condition?clinical-status=${st}`, conds.filter((c) => c.clinicalStatus?.coding?.some((k) => k.code === st)));
    await check('Condition?clinical-status:below=http://terminology.hl7.org/CodeSystem/condition-clinical|active', conds.filter((c) => c.clinicalStatus?.coding?.some((k) => ['active', 'recurrence', 'relapse'].includes(k.code))));
    for (const c of conds.slice(0, 2)) {
      const d = c.onsetDateTime;
      if (!d) continue;
      for (const op of ops) await check(`Condition?onset-date=${op}${d.slice(0, 7)}`, conds.filter((x) => x.onsetDateTime && dateMatch(op, range(x.onsetDateTime), range(d.slice(0, 7)))));
    }
    // MedicationRequest status / code / authoredon
    const mrs = of('MedicationRequest');
    for (const st of ['active', 'completed', 'stopped']) await check(`MedicationRequest?status=${st}`, mrs.filter((m) => m.status === st));
    for (const m of mrs.slice(0, 2)) {
      const c = m.medicationCodeableConcept?.coding?.[0]?.code;
      if (c) await check(`MedicationRequest?code=${c}`, mrs.filter((x) => x.medicationCodeableConcept?.coding?.some((k) => k.code === c)));
      for (const op of ops) await check(`MedicationRequest?authoredon=${op}${m.authoredOn.slice(0, 10)}`, mrs.filter((x) => x.authoredOn && dateMatch(op, range(x.authoredOn), range(m.authoredOn.slice(0, 10)))));
    }
    // chains, _has, :missing, :not with AND
    const patById = new Map(pats.map((p) => [`Patient/${p.id}`, p]));
    for (const g of ['female', 'male']) {
      await check(`Observation?patient.gender=${g}`, obs.filter((o) => patById.get(refOf(o.subject?.reference))?.gender === g));
    }
    for (const c of codes.slice(0, 3)) {
      await check(`Patient?_has:Observation:patient:code=${c}`, pats.filter((p) => obs.some((o) => refOf(o.subject?.reference) === `Patient/${p.id}` && o.code.coding.some((k) => k.code === c))));
    }
    await check('Encounter?date:missing=true', encs.filter((e) => !e.period?.start && !e.period?.end));
    await check('Encounter?date:missing=false', encs.filter((e) => e.period?.start || e.period?.end));
    await check('MedicationRequest?intent=order&status:not=active', mrs.filter((m) => m.intent === 'order' && m.status !== 'active'));
    console.log(`checked ${n}, differences ${bad}`);
    assert.equal(bad, 0);
  } finally {
    await s.stop();
  }
});
