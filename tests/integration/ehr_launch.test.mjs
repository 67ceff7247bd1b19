// ehr_launch.test.mjs — the SMART App Launch "EHR launch" with Salus as the EHR, over plain HTTPS
// (the browser run with fhirclient is tests/e2e/ehr_launch.test.mjs): a staff user signs in on
// /auth/launch (password + TOTP), Salus sends the browser to the app's registered launch URI with
// iss and an opaque launch; /auth/authorize with that launch and the `launch` scope gives a token
// response with patient and encounter, and the token reaches that patient's compartment only.
// Negative cases: unknown, reused, other client's, other user's launch; launch scope without a
// launch and the reverse; an app without a launch URI; unknown patient or encounter; a patient user.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { generate } from 'otplib';
import { salus, startServer } from './lib/server.mjs';

const PW = 'correct horse battery staple 42';
const REDIRECT = 'https://app.example/cb';
const LAUNCH_URI = 'https://app.example/launch';
let s, pid, otherPid, encId, otherEncId, obsId, otherObsId;
const totp = {};
const used = {}; // each TOTP time step is accepted once per user: -1, 0, +1 steps, then another user

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

/** Staff sign-in on /auth/launch; resolves the final response (302 to the launch URI, or a page). */
async function ehrLaunch(user, { client = 'ehrapp', patient = pid, encounter, context } = {}) {
  const q = new URLSearchParams({ client_id: client, patient });
  if (encounter) q.set('encounter', encounter);
  if (context) q.set('context', context);
  const g = await s.request('GET', `/auth/launch?${q}`);
  if (g.status !== 200) return g;
  assert.match(g.headers['content-security-policy'], /frame-ancestors 'none'/);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  const tx = txOf(g.body);
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password: PW }, cookie);
  if (r.status !== 200 || !/name=step value="mfa"/.test(r.body)) return r;
  r = await post('/auth/authorize', { tx, step: 'mfa', otp: await nextCode(user) }, cookie);
  return r;
}

/** The app's part: /auth/authorize (with launch) → sign-in → consent; resolves the redirect URL or the response. */
async function authorize(user, { launch, scope = 'launch patient/*.rs openid fhirUser', client = 'ehrapp', verifier, launchCookie }) {
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ client_id: client, redirect_uri: REDIRECT, response_type: 'code', scope, state: 'st-9',
    code_challenge: challenge, code_challenge_method: 'S256', aud: s.fhirBase });
  if (launch) q.set('launch', launch);
  const g = await s.request('GET', `/auth/authorize?${q}`, launchCookie ? { headers: { cookie: launchCookie } } : {});
  if (g.status === 302) return new URL(g.headers.location);
  assert.equal(g.status, 200, g.body);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  const tx = txOf(g.body);
  if (/name=step value="consent"/.test(g.body)) { // the launching browser's sign-in carried over
    const r = await post('/auth/authorize', { tx, step: 'consent', decision: 'approve' }, cookie);
    assert.equal(r.status, 302, r.body);
    return new URL(r.headers.location);
  }
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password: PW }, cookie);
  if (r.status === 302) return new URL(r.headers.location);
  assert.match(r.body, /name=step value="mfa"/);
  r = await post('/auth/authorize', { tx, step: 'mfa', otp: await nextCode(user) }, cookie);
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /Allow access\?/);
  r = await post('/auth/authorize', { tx, step: 'consent', decision: 'approve' }, cookie);
  assert.equal(r.status, 302, r.body);
  return new URL(r.headers.location);
}

const exchange = (code, verifier, client = 'ehrapp') => post('/auth/token', {
  grant_type: 'authorization_code', code, redirect_uri: REDIRECT, code_verifier: verifier, client_id: client,
});

before(async () => {
  s = await startServer({ clients: [{ id: 'writer', scope: 'system/*.cruds' }] });
  const w = await s.token('writer');
  const mk = async (body) => {
    const r = await s.request('POST', `/fhir/${body.resourceType}`, { token: w, body });
    assert.equal(r.status, 201, r.body);
    return r.json.id;
  };
  pid = await mk({ resourceType: 'Patient', name: [{ family: 'Launched' }] });
  otherPid = await mk({ resourceType: 'Patient', name: [{ family: 'Elsewhere' }] });
  encId = await mk({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: `Patient/${pid}` } });
  otherEncId = await mk({ resourceType: 'Encounter', status: 'finished', class: { code: 'AMB' }, subject: { reference: `Patient/${otherPid}` } });
  obsId = await mk({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${pid}` } });
  otherObsId = await mk({ resourceType: 'Observation', status: 'final', code: { text: 'pulse' }, subject: { reference: `Patient/${otherPid}` } });
  let r = await salus(['client', 'add', '--data', s.dir, '--id', 'ehrapp', '--scope',
    'patient/*.rs user/Patient.rs openid fhirUser launch/patient launch/encounter', '--redirect-uri', REDIRECT,
    '--launch-uri', LAUNCH_URI, '--public']);
  assert.equal(r.code, 0, r.stderr);
  r = await salus(['client', 'add', '--data', s.dir, '--id', 'otherapp', '--scope', 'patient/*.rs openid fhirUser',
    '--redirect-uri', REDIRECT, '--launch-uri', LAUNCH_URI, '--public']);
  assert.equal(r.code, 0, r.stderr);
  r = await salus(['client', 'add', '--data', s.dir, '--id', 'standalone', '--scope', 'patient/*.rs user/*.rs',
    '--redirect-uri', REDIRECT, '--public']);
  assert.equal(r.code, 0, r.stderr);
  for (const [u, prac] of [['alice', 'p-a'], ['bob', 'p-b'], ['carol', 'p-c'], ['dave', 'p-d'], ['erin', 'p-e'], ['frank', 'p-f'], ['hank', 'p-h'], ['ivan', 'p-h'], ['judy', 'p-h'], ['kim', 'p-h']])
    totp[u] = await s.addUser(u, 'clinician', ['--practitioner', prac], PW);
  totp.gina = await s.addUser('gina', 'clinician', ['--practitioner', 'p-g'], PW);
  totp.pat = await s.addUser('pat', 'patient', ['--patient', pid], PW);
});
after(async () => {
  await s?.stop();
});

describe('registration and discovery', () => {
  test('launch-ehr is advertised', async () => {
    const r = await s.request('GET', '/.well-known/smart-configuration');
    assert.ok(r.json.capabilities.includes('launch-ehr'));
    assert.ok(r.json.capabilities.includes('context-ehr-patient'));
    assert.ok(r.json.capabilities.includes('context-ehr-encounter'));
    assert.ok(r.json.scopes_supported.includes('launch'));
  });
  test('--launch-uri is checked; only for SMART apps', async () => {
    let r = await salus(['client', 'add', '--data', s.dir, '--id', 'bad1', '--scope', 'patient/*.rs', '--redirect-uri', REDIRECT,
      '--launch-uri', 'http://evil.example/launch', '--public']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /launch URI/);
    r = await salus(['client', 'add', '--data', s.dir, '--id', 'bad2', '--scope', 'patient/*.rs', '--redirect-uri', REDIRECT,
      '--launch-uri', 'https://app.example/launch?x=1', '--public']);
    assert.notEqual(r.code, 0);
    r = await salus(['client', 'add', '--data', s.dir, '--id', 'bad3', '--scope', 'system/*.rs', '--launch-uri', LAUNCH_URI]);
    assert.equal(r.code, 2);
  });
});

describe('EHR launch', () => {
  test('staff launch with patient and encounter → token response with the context; compartment enforced', async () => {
    const r = await ehrLaunch('alice', { encounter: encId });
    assert.equal(r.status, 302, r.body);
    const loc = new URL(r.headers.location);
    assert.equal(`${loc.origin}${loc.pathname}`, LAUNCH_URI);
    assert.equal(loc.searchParams.get('iss'), s.fhirBase);
    const launch = loc.searchParams.get('launch');
    assert.match(launch, /^[A-Za-z0-9_-]{40,}$/);
    assert.ok(!launch.includes(pid), 'the launch value is opaque');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const cb = await authorize('alice', { launch, verifier, scope: 'launch patient/*.rs openid fhirUser' });
    assert.ok(cb.searchParams.get('code'), cb.toString());
    const t = await exchange(cb.searchParams.get('code'), verifier);
    assert.equal(t.status, 200, t.body);
    assert.equal(t.json.patient, pid);
    assert.equal(t.json.encounter, encId);
    assert.equal(t.json.need_patient_banner, true);
    assert.equal(t.json.fhirContext, undefined, 'no other context resources: no fhirContext');
    assert.match(t.json.scope, /\blaunch\b/);
    assert.match(t.json.scope, /patient\/\*\.rs/);
    const tok = t.json.access_token;
    let f = await s.request('GET', `/fhir/Patient/${pid}`, { token: tok });
    assert.equal(f.status, 200, f.body);
    f = await s.request('GET', `/fhir/Patient/${otherPid}`, { token: tok });
    assert.equal(f.status, 404, 'another patient is outside the launch context');
    f = await s.request('GET', '/fhir/Observation', { token: tok });
    assert.equal(f.status, 200);
    assert.equal(f.json.entry.length, 1);
    assert.equal(f.json.entry[0].resource.subject.reference, `Patient/${pid}`);
    f = await s.request('GET', `/fhir/Encounter/${encId}`, { token: tok });
    assert.equal(f.status, 200);
    // the launch was used: presenting it again is refused
    const again = await authorize('alice', { launch, verifier });
    assert.equal(again.searchParams.get('error'), 'invalid_request');
    assert.equal(again.searchParams.get('code'), null);
  });

  test('launch without encounter; launch/patient too; no encounter in the answer', async () => {
    const r = await ehrLaunch('bob');
    assert.equal(r.status, 302, r.body);
    const launch = new URL(r.headers.location).searchParams.get('launch');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const cb = await authorize('bob', { launch, verifier, scope: 'launch launch/patient launch/encounter patient/Observation.rs' });
    const t = await exchange(cb.searchParams.get('code'), verifier);
    assert.equal(t.status, 200, t.body);
    assert.equal(t.json.patient, pid);
    assert.equal(t.json.encounter, undefined);
    assert.doesNotMatch(t.json.scope, /launch\/encounter/);
  });

  test('unknown launch, launch of another client, launch for another user: refused', async () => {
    const verifier = crypto.randomBytes(32).toString('base64url');
    let cb = await authorize('carol', { launch: crypto.randomBytes(32).toString('base64url'), verifier });
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    // made for ehrapp, presented by otherapp
    let r = await ehrLaunch('carol');
    assert.equal(r.status, 302, r.body);
    let launch = new URL(r.headers.location).searchParams.get('launch');
    cb = await authorize('carol', { launch, verifier, client: 'otherapp', scope: 'launch patient/*.rs' });
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    // ...and it is gone for ehrapp too (single use)
    cb = await authorize('carol', { launch, verifier });
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    // made by dave, signed in by erin at the app
    r = await ehrLaunch('dave');
    assert.equal(r.status, 302, r.body);
    launch = new URL(r.headers.location).searchParams.get('launch');
    cb = await authorize('erin', { launch, verifier });
    assert.equal(cb.searchParams.get('error'), 'access_denied');
    assert.equal(cb.searchParams.get('code'), null);
  });

  test('launch scope and launch parameter go together; app registered for launch', async () => {
    const verifier = crypto.randomBytes(32).toString('base64url');
    let cb = await authorize('frank', { verifier, scope: 'launch patient/*.rs' }); // no launch parameter
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    cb = await authorize('frank', { verifier, launch: 'abc', scope: 'patient/*.rs' }); // no launch scope
    assert.equal(cb.searchParams.get('error'), 'invalid_request');
    cb = await authorize('frank', { verifier, launch: 'abc', client: 'standalone', scope: 'launch patient/*.rs' });
    assert.equal(cb.searchParams.get('error'), 'invalid_scope');
  });

  test('the browser that launched (launch cookie) goes straight to consent; another cookie signs in again', async () => {
    let r = await ehrLaunch('gina');
    assert.equal(r.status, 302, r.body);
    const sc = r.headers['set-cookie'][0];
    assert.match(sc, /^__Host-salus_launch=[A-Za-z0-9_-]+; Path=\/; Secure; HttpOnly; SameSite=Lax; Max-Age=300$/);
    const launchCookie = sc.split(';')[0];
    let launch = new URL(r.headers.location).searchParams.get('launch');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const q = (l) => new URLSearchParams({ client_id: 'ehrapp', redirect_uri: REDIRECT, response_type: 'code',
      scope: 'launch patient/*.rs', state: 's', code_challenge: challenge, code_challenge_method: 'S256', launch: l });
    const g = await s.request('GET', `/auth/authorize?${q(launch)}`, { headers: { cookie: launchCookie } });
    assert.equal(g.status, 200, g.body);
    assert.match(g.body, /Allow access\?/);
    assert.match(g.body, /Signed in as <b>gina<\/b>/);
    const cookie = g.headers['set-cookie'][0].split(';')[0];
    r = await post('/auth/authorize', { tx: txOf(g.body), step: 'consent', decision: 'approve' }, cookie);
    assert.equal(r.status, 302, r.body);
    const t = await exchange(new URL(r.headers.location).searchParams.get('code'), verifier);
    assert.equal(t.status, 200, t.body);
    assert.equal(t.json.patient, pid);
    // a cookie that is not this launch's: the sign-in page
    r = await ehrLaunch('gina');
    launch = new URL(r.headers.location).searchParams.get('launch');
    const other = await s.request('GET', `/auth/authorize?${q(launch)}`, { headers: { cookie: '__Host-salus_launch=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
    assert.equal(other.status, 200);
    assert.match(other.body, /name=step value="login"/);
  });

  test('the launch page: unknown app, app without launch URI, bad ids, unknown patient or encounter, patient user', async () => {
    let r = await s.request('GET', `/auth/launch?client_id=nosuch&patient=${pid}`);
    assert.equal(r.status, 400);
    r = await s.request('GET', `/auth/launch?client_id=standalone&patient=${pid}`);
    assert.equal(r.status, 400);
    assert.match(r.body, /no launch URI/);
    r = await s.request('GET', '/auth/launch?client_id=ehrapp&patient=a%2Fb');
    assert.equal(r.status, 400);
    r = await s.request('POST', `/auth/launch?client_id=ehrapp&patient=${pid}`);
    assert.equal(r.status, 405);
    r = await ehrLaunch('erin', { patient: 'no-such-patient' });
    assert.equal(r.status, 404, r.body);
    assert.equal(r.headers.location, undefined);
    r = await ehrLaunch('frank', { encounter: otherEncId }); // an encounter of another patient
    assert.equal(r.status, 404, r.body);
    r = await ehrLaunch('pat');
    assert.equal(r.status, 403, r.body);
    assert.match(r.body, /only staff/);
  });

  test('fhirContext: the other resources of a launch, in the patient record only', async () => {
    let r = await ehrLaunch('kim', { encounter: encId, context: `Observation/${obsId}` });
    assert.equal(r.status, 302, r.body);
    const launch = new URL(r.headers.location).searchParams.get('launch');
    const verifier = crypto.randomBytes(32).toString('base64url');
    const cb = await authorize('kim', { launch, verifier, scope: 'launch patient/*.rs' });
    const t = await exchange(cb.searchParams.get('code'), verifier);
    assert.equal(t.status, 200, t.body);
    assert.equal(t.json.patient, pid);
    assert.equal(t.json.encounter, encId, 'the encounter stays in `encounter` (SMART 2.x: not in fhirContext)');
    assert.deepEqual(t.json.fhirContext, [{ reference: `Observation/${obsId}` }]);
    // an Observation of another patient, one that does not exist, a type outside the compartment: no launch
    for (const [user, context] of [['hank', `Observation/${otherObsId}`], ['ivan', 'Observation/no-such-obs'], ['judy', 'Practitioner/p-h']]) {
      r = await ehrLaunch(user, { context });
      assert.equal(r.status, 404, `${context}: ${r.body}`);
      assert.equal(r.headers.location, undefined);
    }
    // not references, Patient or Encounter, too many: the launch page refuses
    for (const context of ['Observation', `Patient/${pid}`, `Encounter/${encId}`, 'observation/x', `Observation/${obsId},`,
      Array(5).fill(`Observation/${obsId}`).join(',')]) {
      r = await s.request('GET', `/auth/launch?${new URLSearchParams({ client_id: 'ehrapp', patient: pid, context })}`);
      assert.equal(r.status, 400, context);
      assert.match(r.body, /context must be/);
    }
  });
});
