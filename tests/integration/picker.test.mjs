// picker.test.mjs — the SMART standalone launch with a patient context chosen by a staff user:
// a clinician authorizes an app that asks for launch/patient (and launch/encounter) without an EHR
// launch; after password and TOTP Salus shows its patient picker (search by name, birth date,
// identifier, limited by the clinician's own access decision: the relationship rule and Consent),
// then the encounter picker; the token response carries patient and encounter, and the token
// reaches that patient only. Full authorization code + PKCE flow over real HTTPS.
// Negative cases: a patient outside the clinician's access chosen by a forged form, a wrong CSRF
// cookie, bad search input, cancel; a patient user gets their own record without a picker.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generate } from 'otplib';
import { salus, startServer } from './lib/server.mjs';

const PW = 'correct horse battery staple 42';
const REDIRECT = 'https://app.example/cb';
let s, writer, pid, pid2, otherPid, deniedPid, encId, encOld;
const totp = {};
const used = {};

const form = (o) => new URLSearchParams(o).toString();
const post = (p, body, cookie) => s.request('POST', p, {
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, body: form(body),
});
const txOf = (html) => /name=tx value="([^"]+)"/.exec(html)?.[1];
const nextCode = (user) => {
  const k = used[user] = (used[user] ?? -2) + 1;
  assert.ok(k <= 1, `test bug: ${user} used more than three TOTP steps`);
  return generate({ secret: totp[user], epoch: Math.floor(Date.now() / 1000) + k * 30 });
};
/** The ids offered as buttons on a picker page. */
const offered = (html, name) => [...html.matchAll(new RegExp(`name=${name} value="([^"]+)"`, 'g'))].map((m) => m[1]);

/** /auth/authorize of a standalone app up to the page after sign-in; resolves {page, tx, cookie, verifier}. */
async function signIn(user, scope = 'launch/patient launch/encounter patient/*.rs openid fhirUser') {
  const verifier = crypto.randomBytes(32).toString('base64url');
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ client_id: 'pickapp', redirect_uri: REDIRECT, response_type: 'code', scope, state: 'st-1',
    code_challenge: challenge, code_challenge_method: 'S256', aud: s.fhirBase });
  const g = await s.request('GET', `/auth/authorize?${q}`);
  assert.equal(g.status, 200, g.body);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  const tx = txOf(g.body);
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password: PW }, cookie);
  assert.equal(r.status, 200, r.body);
  if (/name=step value="mfa"/.test(r.body))
    r = await post('/auth/authorize', { tx, step: 'mfa', otp: await nextCode(user) }, cookie);
  assert.equal(r.status, 200, r.body);
  return { page: r.body, tx, cookie, verifier };
}

const exchange = (code, verifier) => post('/auth/token', {
  grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'pickapp',
});

async function approve(f) {
  assert.match(f.page, /Allow access\?/);
  const r = await post('/auth/authorize', { tx: f.tx, step: 'consent', decision: 'approve' }, f.cookie);
  assert.equal(r.status, 302, r.body);
  const cb = new URL(r.headers.location);
  assert.equal(cb.searchParams.get('state'), 'st-1');
  const t = await exchange(cb.searchParams.get('code'), f.verifier);
  assert.equal(t.status, 200, t.body);
  return t.json;
}

before(async () => {
  s = await startServer({ clients: [{ id: 'writer', scope: 'system/*.cruds' }],
    serveArgs: ['--policy.relationship', 'practitioner'] });
  writer = await s.token('writer');
  const mk = async (body) => {
    const r = await s.request('POST', `/fhir/${body.resourceType}`, { token: writer, body });
    assert.equal(r.status, 201, r.body);
    return r.json.id;
  };
  const gp = (p) => [{ reference: `Practitioner/${p}` }];
  pid = await mk({ resourceType: 'Patient', name: [{ family: 'Pickme', given: ['Ada'] }], birthDate: '1961-04-12',
    identifier: [{ system: 'urn:mrn', value: 'MRN-4711' }], generalPractitioner: gp('p-a') });
  pid2 = await mk({ resourceType: 'Patient', name: [{ family: 'Pickme', given: ['Bea'] }], birthDate: '1990-01-02',
    generalPractitioner: gp('p-a') });
  otherPid = await mk({ resourceType: 'Patient', name: [{ family: 'Pickme', given: ['Carl'] }], birthDate: '1961-04-12',
    generalPractitioner: gp('p-other') }); // not alice's patient (relationship rule)
  deniedPid = await mk({ resourceType: 'Patient', name: [{ family: 'Pickme', given: ['Dora'] }], generalPractitioner: gp('p-a') });
  await mk({ resourceType: 'Consent', status: 'active',
    scope: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/consentscope', code: 'patient-privacy' }] },
    category: [{ coding: [{ system: 'http://loinc.org', code: '59284-0' }] }], patient: { reference: `Patient/${deniedPid}` },
    provision: { type: 'deny', actor: [{ role: { coding: [{ code: 'PRCP' }] }, reference: { reference: 'Practitioner/p-a' } }] } });
  encOld = await mk({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` },
    period: { start: '2020-01-01' }, participant: [{ individual: { reference: 'Practitioner/p-a' } }] });
  encId = await mk({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP' }, subject: { reference: `Patient/${pid}` },
    period: { start: '2026-12-01' }, participant: [{ individual: { reference: 'Practitioner/p-a' } }] });
  await mk({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${pid}` } });
  await mk({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${pid2}` } });
  const r = await salus(['client', 'add', '--data', s.dir, '--id', 'pickapp', '--scope',
    'patient/*.rs openid fhirUser launch/patient launch/encounter', '--redirect-uri', REDIRECT, '--public']);
  assert.equal(r.code, 0, r.stderr);
  totp.alice = await s.addUser('alice', 'clinician', ['--practitioner', 'p-a'], PW);
  totp.bob = await s.addUser('bob', 'clinician', ['--practitioner', 'p-a'], PW);
  totp.carl = await s.addUser('carl', 'clinician', ['--practitioner', 'p-a'], PW);
  totp.pat = await s.addUser('pat', 'patient', ['--patient', pid2], PW);
});
after(async () => {
  await s?.stop();
});

describe('standalone launch: patient and encounter pickers', () => {
  test('discovery advertises the standalone patient and encounter contexts', async () => {
    const r = await s.request('GET', '/.well-known/smart-configuration');
    assert.ok(r.json.capabilities.includes('context-standalone-patient'));
    assert.ok(r.json.capabilities.includes('context-standalone-encounter'));
  });

  test('clinician: search, pick patient and encounter → token with patient and encounter; compartment enforced', async () => {
    const f = await signIn('alice');
    assert.match(f.page, /Choose a patient/);
    assert.match(f.page, /name=step value="patient"/);
    assert.doesNotMatch(f.page, /Pickme/, 'no patient is shown before a search');
    // search by name: only the patients alice may open (relationship rule; Dora's Consent denies her)
    let r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', name: 'pickme' }, f.cookie);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(offered(r.body, 'patient').sort(), [pid, pid2].sort());
    assert.match(r.body, /Pickme, Ada &middot; 1961-04-12/);
    // by birth date and by identifier
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', birthdate: '1961-04-12' }, f.cookie);
    assert.deepEqual(offered(r.body, 'patient'), [pid], 'Carl has the same birth date but is not alice\'s patient');
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', identifier: 'urn:mrn|MRN-4711' }, f.cookie);
    assert.deepEqual(offered(r.body, 'patient'), [pid]);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', name: 'nobody-has-this-name' }, f.cookie);
    assert.deepEqual(offered(r.body, 'patient'), []);
    assert.match(r.body, /No patient found/);
    // choose: the encounter picker lists this patient's encounters, newest first
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', patient: pid }, f.cookie);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /Choose an encounter/);
    assert.deepEqual(offered(r.body, 'encounter'), [encId, encOld]);
    r = await post('/auth/authorize', { tx: f.tx, step: 'encounter', encounter: encId }, f.cookie);
    assert.equal(r.status, 200, r.body);
    assert.match(r.body, /the record of patient <b>Pickme, Ada, 1961-04-12<\/b>, encounter <b>IMP \(in-progress\), 2026-12-01<\/b>/);
    const t = await approve({ ...f, page: r.body });
    assert.equal(t.patient, pid);
    assert.equal(t.encounter, encId);
    assert.equal(t.need_patient_banner, true);
    assert.match(t.scope, /\blaunch\/patient\b/);
    assert.match(t.scope, /\blaunch\/encounter\b/);
    const tok = t.access_token;
    let g = await s.request('GET', `/fhir/Patient/${pid}`, { token: tok });
    assert.equal(g.status, 200, g.body);
    g = await s.request('GET', `/fhir/Patient/${pid2}`, { token: tok });
    assert.equal(g.status, 404, 'another patient of the same clinician is outside the chosen context');
    g = await s.request('GET', '/fhir/Observation', { token: tok });
    assert.equal(g.json.entry.length, 1);
    assert.equal(g.json.entry[0].resource.subject.reference, `Patient/${pid}`);
    // no PHI from the pickers in the server log
    const log = s.log.join('');
    assert.doesNotMatch(log, /pickme|Pickme|MRN-4711|1961-04-12/);
  });

  test('no encounter chosen: launch/encounter is not granted and no encounter is answered', async () => {
    const f = await signIn('bob');
    let r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', name: 'Pickme' }, f.cookie);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', patient: pid2 }, f.cookie);
    assert.match(r.body, /Choose an encounter/);
    assert.match(r.body, /No encounter of this patient/);
    r = await post('/auth/authorize', { tx: f.tx, step: 'encounter', action: 'skip' }, f.cookie);
    assert.equal(r.status, 200, r.body);
    const t = await approve({ ...f, page: r.body });
    assert.equal(t.patient, pid2);
    assert.equal(t.encounter, undefined);
    assert.doesNotMatch(t.scope, /launch\/encounter/);
  });

  test('launch/patient alone: no encounter picker', async () => {
    const f = await signIn('carl', 'launch/patient patient/Observation.rs');
    const r = await post('/auth/authorize', { tx: f.tx, step: 'patient', patient: pid2 }, f.cookie);
    assert.match(r.body, /Allow access\?/);
    const t = await approve({ ...f, page: r.body });
    assert.equal(t.patient, pid2);
  });

  test('a patient outside the clinician\'s access, an encounter of another patient: refused', async () => {
    const f = await signIn('alice');
    for (const p of [otherPid, deniedPid, 'no-such-patient', 'a/b']) {
      const r = await post('/auth/authorize', { tx: f.tx, step: 'patient', patient: p }, f.cookie);
      assert.equal(r.status, 200, r.body);
      assert.match(r.body, /cannot be opened/);
      assert.match(r.body, /name=step value="patient"/);
    }
    let r = await post('/auth/authorize', { tx: f.tx, step: 'patient', patient: pid2 }, f.cookie);
    assert.match(r.body, /Choose an encounter/);
    r = await post('/auth/authorize', { tx: f.tx, step: 'encounter', encounter: encId }, f.cookie); // pid's, not pid2's
    assert.match(r.body, /Choose an encounter from the list/);
    // the consent step cannot be skipped to
    r = await post('/auth/authorize', { tx: f.tx, step: 'consent', decision: 'approve' }, f.cookie);
    assert.equal(r.status, 400);
  });

  test('bad search input, wrong CSRF cookie, cancel', async () => {
    const f = await signIn('bob');
    let r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', birthdate: '12/04/1961' }, f.cookie);
    assert.equal(r.status, 200);
    assert.match(r.body, /YYYY-MM-DD/);
    assert.deepEqual(offered(r.body, 'patient'), []);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', name: 'x'.repeat(101) }, f.cookie);
    assert.match(r.body, /at most 100/);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search' }, f.cookie);
    assert.match(r.body, /Enter a name/);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'search', name: 'Pickme' },
      '__Host-salus_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    assert.equal(r.status, 400);
    assert.doesNotMatch(r.body, /Pickme/);
    r = await post('/auth/authorize', { tx: f.tx, step: 'patient', action: 'cancel' }, f.cookie);
    assert.equal(r.status, 302);
    const cb = new URL(r.headers.location);
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    assert.equal(cb.searchParams.get('code'), null);
  });

  test('a patient user gets their own record, without a picker', async () => {
    const f = await signIn('pat', 'launch/patient patient/*.rs');
    assert.match(f.page, /Allow access\?/);
    assert.doesNotMatch(f.page, /Choose a patient/);
    const t = await approve(f);
    assert.equal(t.patient, pid2);
  });

  test('every picker search is audited as a search by the user, with the patients it showed', async () => {
    const r = await s.request('GET', `/fhir/AuditEvent?patient=${pid}&_count=200`, { token: writer });
    assert.equal(r.status, 200, r.body);
    const ev = (r.json.entry ?? []).map((e) => e.resource).filter((e) =>
      e.subtype?.some((c) => c.code === 'search-type') && e.agent?.some((a) => a.who?.identifier?.value === 'alice' || a.altId === 'alice'));
    assert.ok(ev.length >= 1, JSON.stringify(r.json.entry?.slice(-3)));
  });
});
