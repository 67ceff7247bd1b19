// consent.test.mjs — security labels and FHIR Consent in the access decision (docs/security.md
// "Consent and security labels"), end to end with user tokens from the real SMART code + PKCE flow.
// A resource a caller may not see is not revealed by any route: read, vread, search with
// _total=accurate, _summary=count, _include, _revinclude, instance/type history, $everything,
// compartment search and batch Bundles.  Lifting a Consent (status inactive) restores access.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generate } from 'otplib';
import { salus, startServer } from './lib/server.mjs';

const REDIRECT = 'https://app.example/cb';
const PW = 'correct horse battery staple 42';
const CONF = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';
const ACT = 'http://terminology.hl7.org/CodeSystem/v3-ActCode';
let s, sys;
const totp = {};
const tok = {};

const form = (o) => new URLSearchParams(o).toString();
const post = (p, body, cookie, srv = s) => srv.request('POST', p, {
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, body: form(body),
});
const steps = {};

/** The SMART standalone flow (with TOTP for staff): the access token. */
async function login(user, scope, srv = s) {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ client_id: 'capp', redirect_uri: REDIRECT, response_type: 'code', scope, state: 'st',
    code_challenge: challenge, code_challenge_method: 'S256', aud: `${srv.base}/fhir` });
  const g = await srv.request('GET', `/auth/authorize?${q}`);
  assert.equal(g.status, 200, g.body);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  const tx = /name=tx value="([^"]+)"/.exec(g.body)[1];
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password: PW }, cookie, srv);
  assert.equal(r.status, 200, r.body);
  if (/name=step value="mfa"/.test(r.body)) {
    const k = steps[user] = (steps[user] ?? -2) + 1;
    const otp = await generate({ secret: totp[user], epoch: Math.floor(Date.now() / 1000) + k * 30 });
    r = await post('/auth/authorize', { tx, step: 'mfa', otp }, cookie, srv);
    assert.equal(r.status, 200, r.body);
  }
  assert.match(r.body, /Allow access\?/);
  r = await post('/auth/authorize', { tx, step: 'consent', decision: 'approve' }, cookie, srv);
  assert.equal(r.status, 302, r.body);
  const code = new URL(r.headers.location).searchParams.get('code');
  const t = await post('/auth/token', { grant_type: 'authorization_code', code, redirect_uri: REDIRECT,
    code_verifier: verifier, client_id: 'capp' }, undefined, srv);
  assert.equal(t.status, 200, t.body);
  return t.json.access_token;
}

const put = (res) => s.request('PUT', `/fhir/${res.resourceType}/${res.id}`, { token: sys, body: res });
const get = (t, p) => s.request('GET', p, { token: t });
const ids = (bundle) => (bundle.entry || []).map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort();
const label = (system, code) => ({ meta: { security: [{ system, code }] } });
const obs = (id, patient, extra = {}) => ({ resourceType: 'Observation', id, status: 'final', code: { text: id || 'new' },
  subject: { reference: `Patient/${patient}` }, ...extra });
const consent = (id, patient, actor, provision = {}, status = 'active') => ({
  resourceType: 'Consent', id, status,
  scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
  category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }],
  patient: { reference: `Patient/${patient}` },
  provision: { type: 'deny', actor: [{ role: { coding: [{ code: 'PRCP' }] }, reference: { reference: actor } }], ...provision },
});

// Everything a token can learn about patient pa's Observations, by every route.
async function seen(t, patient = 'pa') {
  const out = {};
  const search = await get(t, `/fhir/Observation?subject=Patient/${patient}&_total=accurate&_count=2`);
  assert.equal(search.status, 200, search.body);
  out.total = search.json.total;
  // follow the pages: keyset paging must only ever see visible rows
  let page = search.json;
  const found = [...ids(page)];
  for (let n = 0; n < 10; n++) {
    const next = (page.link || []).find((l) => l.relation === 'next');
    if (!next) break;
    const u = new URL(next.url);
    const r = await get(t, u.pathname + u.search);
    assert.equal(r.status, 200, r.body);
    page = r.json;
    found.push(...ids(page));
  }
  out.search = found.sort();
  const cnt = await get(t, `/fhir/Observation?subject=Patient/${patient}&_summary=count`);
  out.count = cnt.json.total;
  const rev = await get(t, `/fhir/Patient?_id=${patient}&_revinclude=Observation:subject`);
  out.revinclude = ids(rev.json).filter((x) => x.startsWith('Observation/'));
  const inc = await get(t, `/fhir/Observation?code:text=ox&_include=Observation:subject`);
  out.include = ids(inc.json);
  const ev = await get(t, `/fhir/Patient/${patient}/$everything`);
  out.everything = ev.status === 200 ? ids(ev.json).filter((x) => x.startsWith('Observation/')) : ev.status;
  const comp = await get(t, `/fhir/Patient/${patient}/Observation`);
  out.compartment = ids(comp.json);
  const hist = await get(t, '/fhir/Observation/_history');
  out.history = [...new Set(ids(hist.json))].filter((x) => ALL.includes(x)).sort();
  out.reads = {};
  for (const id of ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv']) {
    const r = await get(t, `/fhir/Observation/${id}`);
    const v = await get(t, `/fhir/Observation/${id}/_history/1`);
    const h = await get(t, `/fhir/Observation/${id}/_history`);
    assert.equal(r.status === 200, v.status === 200, `read and vread agree on ${id}`);
    assert.equal(r.status === 200, (h.json.entry || []).length > 0, `read and history agree on ${id}`);
    out.reads[id] = r.status;
  }
  const batch = await s.request('POST', '/fhir', { token: t, body: { resourceType: 'Bundle', type: 'batch', entry:
    ['ox-plain', 'ox-v'].map((id) => ({ request: { method: 'GET', url: `Observation/${id}` } })) } });
  assert.equal(batch.status, 200, batch.body);
  out.batch = batch.json.entry.map((e) => e.response.status.slice(0, 3));
  return out;
}

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  sys = await s.token('full');
  const r = await salus(['client', 'add', '--data', s.dir, '--id', 'capp', '--scope',
    'user/*.cruds patient/*.rs openid fhirUser', '--redirect-uri', REDIRECT, '--public']);
  assert.equal(r.code, 0, r.stderr);
  for (const res of [
    { resourceType: 'Patient', id: 'pa', name: [{ family: 'Alpha' }] },
    { resourceType: 'Patient', id: 'pb', name: [{ family: 'Bravo' }] },
    obs('ox-plain', 'pa'),
    obs('ox-r', 'pa', label(CONF, 'R')),
    obs('ox-v', 'pa', label(CONF, 'V')),
    obs('ox-psy', 'pa', label(ACT, 'PSY')),
    obs('ox-hiv', 'pa', label(ACT, 'HIV')),
    obs('ox-b', 'pb'),
    { resourceType: 'RelatedPerson', id: 'rpa', active: true, patient: { reference: 'Patient/pa' } },
  ]) {
    const w = await put(res);
    assert.ok(w.status === 201 || w.status === 200, w.body);
  }
  totp.doc = await s.addUser('doc', 'clinician', ['--practitioner', 'prac-doc'], PW);
  totp.nurse = await s.addUser('nurse', 'nurse', ['--practitioner', 'prac-nurse'], PW);
  totp.adm = await s.addUser('adm', 'admin', ['--practitioner', 'prac-adm'], PW);
  totp.doc2 = await s.addUser('doc2', 'clinician', ['--practitioner', 'prac-doc2'], PW);
  await s.addUser('pat', 'patient', ['--patient', 'pa'], PW);
  await s.addUser('proxy', 'related-person', ['--related-person', 'rpa'], PW);
  tok.doc = await login('doc', 'user/*.rs');
  tok.nurse = await login('nurse', 'user/*.rs');
  tok.adm = await login('adm', 'user/*.rs');
  tok.doc2 = await login('doc2', 'user/*.rs');
  tok.pat = await login('pat', 'patient/*.rs');
  tok.proxy = await login('proxy', 'patient/*.rs');
});
after(async () => {
  await s?.stop();
});

const ALL = ['Observation/ox-hiv', 'Observation/ox-plain', 'Observation/ox-psy', 'Observation/ox-r', 'Observation/ox-v'];

function expectOnly(o, visible, { patientHidden = false } = {}) {
  const v = visible.map((x) => `Observation/${x}`).sort();
  assert.deepEqual(o.search, v, 'search pages');
  assert.equal(o.total, v.length, '_total=accurate');
  assert.equal(o.count, v.length, '_summary=count');
  assert.deepEqual(o.revinclude.sort(), patientHidden ? [] : v, '_revinclude (from the Patient)');
  assert.deepEqual(o.include.filter((x) => x.startsWith('Observation/') && x !== 'Observation/ox-b'), v, '_include');
  if (Array.isArray(o.everything)) assert.deepEqual(o.everything.sort(), v, '$everything');
  assert.deepEqual(o.compartment, v, 'compartment search');
  assert.deepEqual(o.history, v, 'type history');
  for (const id of ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv'])
    assert.equal(o.reads[id], visible.includes(id) ? 200 : 404, `read ${id}`);
  assert.deepEqual(o.batch, [visible.includes('ox-plain') ? '200' : '404', visible.includes('ox-v') ? '200' : '404'], 'batch');
}

describe('security labels', () => {
  test('system client and the patient: everything', async () => {
    expectOnly(await seen(sys), ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv']);
    expectOnly(await seen(tok.pat), ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv']);
  });
  test('clinician and nurse (label_roles): R and sensitive, not V', async () => {
    expectOnly(await seen(tok.doc), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
    expectOnly(await seen(tok.nurse), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
  });
  test('admin (not a label role) and a proxy: no labelled resource', async () => {
    expectOnly(await seen(tok.adm), ['ox-plain']);
    expectOnly(await seen(tok.proxy), ['ox-plain']);
  });
  test('a hidden resource cannot be updated or deleted (404), nor created with a hidden label (403)', async () => {
    let r = await s.request('PUT', '/fhir/Observation/ox-v', { token: tok.doc, body: obs('ox-v', 'pa') });
    assert.equal(r.status, 403, 'user/*.rs does not write'); // scope first
    const w = await login('doc2', 'user/*.cruds');
    r = await s.request('PUT', '/fhir/Observation/ox-v', { token: w, body: obs('ox-v', 'pa') });
    assert.equal(r.status, 404, r.body);
    r = await s.request('DELETE', '/fhir/Observation/ox-v', { token: w });
    assert.equal(r.status, 404, r.body);
    r = await s.request('POST', '/fhir/Observation', { token: w, body: obs(undefined, 'pa', label(CONF, 'V')) });
    assert.equal(r.status, 403, r.body);
    r = await s.request('POST', '/fhir/Observation', { token: w, body: obs(undefined, 'pa', label(CONF, 'R')) });
    assert.equal(r.status, 201, r.body);
    r = await s.request('DELETE', `/fhir/Observation/${r.json.id}`, { token: sys });
    assert.ok(r.status === 200 || r.status === 204, r.body);
  });
});

describe('Consent', () => {
  test('a deny for the clinician hides the patient\'s whole compartment; lifting it restores access', async () => {
    let w = await put(consent('c-doc', 'pa', 'Practitioner/prac-doc'));
    assert.equal(w.status, 201, w.body);
    const o = await seen(tok.doc);
    expectOnly(o, []);
    assert.equal(o.everything, 404);
    assert.equal((await get(tok.doc, '/fhir/Patient/pa')).status, 404);
    const pats = await get(tok.doc, '/fhir/Patient?_total=accurate');
    assert.deepEqual(ids(pats.json), ['Patient/pb']);
    assert.equal(pats.json.total, 1);
    assert.equal((await get(tok.doc, '/fhir/Observation/ox-b')).status, 200, 'another patient is untouched');
    // another clinician is not named by the Consent
    expectOnly(await seen(tok.doc2), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
    // lifted: status inactive
    w = await put(consent('c-doc', 'pa', 'Practitioner/prac-doc', {}, 'inactive'));
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.doc), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
    assert.equal((await get(tok.doc, '/fhir/Patient/pa')).status, 200);
  });

  test('a deny limited by securityLabel or class hides only that part', async () => {
    let w = await put(consent('c-nurse', 'pa', 'Practitioner/prac-nurse', { securityLabel: [{ system: ACT, code: 'PSY' }] }));
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.nurse), ['ox-plain', 'ox-r', 'ox-hiv']);
    assert.equal((await get(tok.nurse, '/fhir/Patient/pa')).status, 200);
    w = await put(consent('c-nurse', 'pa', 'Practitioner/prac-nurse',
      { class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }));
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.nurse), []);
    assert.equal((await get(tok.nurse, '/fhir/Patient/pa')).status, 200, 'only Observations are denied');
    w = await s.request('DELETE', '/fhir/Consent/c-nurse', { token: sys });
    assert.ok(w.status === 200 || w.status === 204, w.body);
    expectOnly(await seen(tok.nurse), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
  });

  test('period: a deny not yet in force or over is not applied', async () => {
    let w = await put(consent('c-adm', 'pa', 'Practitioner/prac-adm', { period: { start: '2999-01-01' } }));
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.adm), ['ox-plain']);
    w = await put(consent('c-adm', 'pa', 'Practitioner/prac-adm', { period: { start: '2000-01-01', end: '2001-01-01' } }));
    expectOnly(await seen(tok.adm), ['ox-plain']);
    w = await put(consent('c-adm', 'pa', 'Practitioner/prac-adm', { period: { start: '2000-01-01', end: '2999-01-01' } }));
    expectOnly(await seen(tok.adm), []);
    await s.request('DELETE', '/fhir/Consent/c-adm', { token: sys });
  });

  test('a proxy can be denied; the patient is never denied their own record', async () => {
    let w = await put(consent('c-proxy', 'pa', 'RelatedPerson/rpa'));
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.proxy), []);
    w = await put(consent('c-self', 'pa', 'Patient/pa'));
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.pat), ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv']);
    await s.request('DELETE', '/fhir/Consent/c-proxy', { token: sys });
    await s.request('DELETE', '/fhir/Consent/c-self', { token: sys });
    expectOnly(await seen(tok.proxy), ['ox-plain']);
  });

  test('deny everyone but permit one actor (nested permit): only that actor keeps access', async () => {
    const c = consent('c-all', 'pa', 'x', { provision: [{ type: 'permit', actor: [{ role: { text: 'x' }, reference: { reference: 'Practitioner/prac-doc2' } }] }] });
    delete c.provision.actor; // a deny of everyone
    let w = await put(c);
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.doc), []);
    assert.equal((await get(tok.doc, '/fhir/Patient/pa')).status, 404);
    expectOnly(await seen(tok.proxy), []);
    expectOnly(await seen(tok.doc2), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
    expectOnly(await seen(tok.pat), ['ox-plain', 'ox-r', 'ox-v', 'ox-psy', 'ox-hiv']); // never the patient
    w = await s.request('DELETE', '/fhir/Consent/c-all', { token: sys });
    assert.ok(w.status === 200 || w.status === 204, w.body);
    expectOnly(await seen(tok.doc), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
  });

  test('deny with permit exceptions by securityLabel or class: the exception stays visible', async () => {
    let w = await put(consent('c-exc', 'pa', 'Practitioner/prac-nurse',
      { provision: [{ type: 'permit', securityLabel: [{ system: ACT, code: 'PSY' }] }] }));
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.nurse), ['ox-psy'], { patientHidden: true });
    assert.equal((await get(tok.nurse, '/fhir/Patient/pa')).status, 404, 'the Patient carries no PSY label');
    w = await put(consent('c-exc', 'pa', 'Practitioner/prac-nurse',
      { provision: [{ type: 'permit', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }] }));
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.nurse), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv'], { patientHidden: true });
    assert.equal((await get(tok.nurse, '/fhir/Patient/pa')).status, 404, 'only Observations are excepted');
    // an exception for another actor, or one whose period is over, excepts nothing
    w = await put(consent('c-exc', 'pa', 'Practitioner/prac-nurse', { provision: [
      { type: 'permit', actor: [{ role: { text: 'x' }, reference: { reference: 'Practitioner/prac-doc' } }] },
      { type: 'permit', period: { end: '2001-01-01' } }] }));
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.nurse), []);
    // a permit exception limited to ordinary purposes is not applied (Salus cannot tell them apart)
    w = await put(consent('c-exc', 'pa', 'Practitioner/prac-nurse',
      { provision: [{ type: 'permit', purpose: [{ system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' }] }] }));
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.nurse), []);
    await s.request('DELETE', '/fhir/Consent/c-exc', { token: sys });
    expectOnly(await seen(tok.nurse), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
  });

  test('permit with nested denials: only the denied class or label (in its period) is hidden', async () => {
    const permit = (nested) => {
      const c = consent('c-pd', 'pa', 'Practitioner/prac-doc', { type: 'permit', provision: nested });
      return put(c);
    };
    let w = await permit([{ type: 'deny', class: [{ system: 'http://hl7.org/fhir/resource-types', code: 'Observation' }] }]);
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.doc), []);
    assert.equal((await get(tok.doc, '/fhir/Patient/pa')).status, 200, 'the rest of the record stays open');
    w = await permit([{ type: 'deny', securityLabel: [{ system: ACT, code: 'HIV' }] },
      { type: 'deny', securityLabel: [{ system: ACT, code: 'PSY' }], period: { start: '2999-01-01' } }]);
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.doc), ['ox-plain', 'ox-r', 'ox-psy']);
    // a nested denial naming another actor does not apply
    w = await permit([{ type: 'deny', actor: [{ role: { text: 'x' }, reference: { reference: 'Practitioner/prac-doc2' } }] }]);
    assert.equal(w.status, 200, w.body);
    expectOnly(await seen(tok.doc), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
    await s.request('DELETE', '/fhir/Consent/c-pd', { token: sys });
  });

  test('Consents that are not patient-privacy denies are not interpreted', async () => {
    const c = consent('c-other', 'pa', 'Practitioner/prac-doc2');
    c.scope.coding[0].code = 'research';
    let w = await put(c);
    assert.equal(w.status, 201, w.body);
    const permit = consent('c-permit', 'pa', 'Practitioner/prac-doc2', { type: 'permit' });
    w = await put(permit);
    assert.equal(w.status, 201, w.body);
    expectOnly(await seen(tok.doc2), ['ox-plain', 'ox-r', 'ox-psy', 'ox-hiv']);
  });
});

describe('break-glass ([policy] relationship = practitioner) overrides a Consent denial and opens V', () => {
  let r2, sys2, t;
  const get2 = (p) => r2.request('GET', p, { token: t });
  before(async () => {
    r2 = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }],
      serveArgs: ['--policy.relationship', 'practitioner', '--policy.break_glass_max_minutes', '30'] });
    sys2 = await r2.token('full');
    const c = await salus(['client', 'add', '--data', r2.dir, '--id', 'capp', '--scope', 'user/*.cruds openid fhirUser',
      '--redirect-uri', REDIRECT, '--public']);
    assert.equal(c.code, 0, c.stderr);
    for (const res of [
      { resourceType: 'Patient', id: 'pa', name: [{ family: 'Alpha' }], generalPractitioner: [{ reference: 'Practitioner/prac-bg' }] },
      obs('ox-plain', 'pa'),
      obs('ox-v', 'pa', label(CONF, 'V')),
      consent('c-bg', 'pa', 'Practitioner/prac-bg'),
    ]) {
      const w = await r2.request('PUT', `/fhir/${res.resourceType}/${res.id}`, { token: sys2, body: res });
      assert.ok(w.status === 201 || w.status === 200, w.body);
    }
    totp.bg = await r2.addUser('bg', 'clinician', ['--practitioner', 'prac-bg'], PW);
    t = await login('bg', 'user/*.rs', r2);
  });
  after(async () => {
    await r2?.stop();
  });
  test('denied although related; break-glass opens the record, V included; conditional interactions stay refused', async () => {
    assert.equal((await get2('/fhir/Observation/ox-plain')).status, 404, 'the Consent denies a related patient too');
    assert.equal((await get2('/fhir/Patient/pa')).status, 404);
    const g = await r2.request('POST', '/auth/break-glass', { token: t,
      body: { patient: 'pa', reason: 'unconscious in the ED, no relative reachable', minutes: 10 } });
    assert.equal(g.status, 201, g.body);
    assert.equal((await get2('/fhir/Observation/ox-plain')).status, 200);
    assert.equal((await get2('/fhir/Observation/ox-v')).status, 200, 'V inside the break-glass compartment');
    const b = await get2('/fhir/Observation?subject=Patient/pa&_total=accurate');
    assert.equal(b.json.total, 2);
    // a label-restricted staff token cannot run conditional matching (it would reach hidden rows)
    const w = await r2.request('PUT', '/fhir/Observation?code:text=ox-plain', { token: t, body: obs('ox-plain', 'pa') });
    assert.equal(w.status, 403, w.body);
  });

  test('purpose: a denial naming BTG binds break-glass access too; one naming only BTG binds nothing else', async () => {
    const BTG = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'BTG' };
    const TREAT = { system: 'http://terminology.hl7.org/CodeSystem/v3-ActReason', code: 'TREAT' };
    const put2 = (res) => r2.request('PUT', `/fhir/${res.resourceType}/${res.id}`, { token: sys2, body: res });
    for (const res of [
      { resourceType: 'Patient', id: 'pc', name: [{ family: 'Charlie' }], generalPractitioner: [{ reference: 'Practitioner/prac-bg' }] },
      obs('oc', 'pc'),
      { resourceType: 'Patient', id: 'pd', name: [{ family: 'Delta' }] },
      obs('od', 'pd'),
      consent('c-pc', 'pc', 'Practitioner/prac-bg', { purpose: [BTG] }), // only in emergencies
      consent('c-pd', 'pd', 'Practitioner/prac-bg', { purpose: [TREAT, BTG] }), // not even in an emergency
    ]) {
      const w = await put2(res);
      assert.ok(w.status === 201 || w.status === 200, w.body);
    }
    assert.equal((await get2('/fhir/Observation/oc')).status, 200, 'a BTG-only denial does not bind ordinary access');
    assert.equal((await get2('/fhir/Observation/od')).status, 404, 'unrelated and denied');
    for (const patient of ['pc', 'pd']) {
      const g = await r2.request('POST', '/auth/break-glass', { token: t,
        body: { patient, reason: 'unconscious in the ED, no relative reachable', minutes: 10 } });
      assert.equal(g.status, 201, g.body);
    }
    assert.equal((await get2('/fhir/Observation/oc')).status, 404, 'under break-glass the BTG denial binds');
    assert.equal((await get2('/fhir/Observation/od')).status, 404, 'break-glass does not override a denial naming BTG');
    assert.equal((await get2('/fhir/Patient/pd')).status, 404);
  });
});
