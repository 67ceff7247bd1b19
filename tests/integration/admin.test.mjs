// admin.test.mjs — the administration REST surface (/admin/users..., docs/auth.md): only a user
// token whose user holds the admin role gets in (checked on every call); create (TOTP enrolment
// shown once, password policy), list without secrets, role change, MFA reset, sessions, disable
// (the user can no longer sign in); every call is an administrative AuditEvent.
// The admin's token comes from the real SMART flow (oauth4webapi + otplib).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { generate } from 'otplib';
import { salus, startServer } from './lib/server.mjs';

const REDIRECT = 'https://app.example/cb';
const PW = 'correct horse battery staple 42';
const client = { client_id: 'adminapp' };
let s, as;
const totps = {};

async function addUser(username, role, link) {
  totps[username] = await s.addUser(username, role, link, PW);
}

const form = (o) => new URLSearchParams(o).toString();
const post = (p, body, cookie) => s.request('POST', p, {
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, body: form(body) });

/** Sign in through the authorization endpoint; the token response, or the page that refused. */
async function signIn(user, password = PW) {
  const verifier = oauth.generateRandomCodeVerifier();
  const url = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: REDIRECT, response_type: 'code',
    scope: 'user/Patient.rs openid fhirUser', state: 'st', code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', aud: `${s.base}/fhir` }))
    url.searchParams.set(k, v);
  const g = await s.request('GET', url.pathname + url.search);
  assert.equal(g.status, 200, g.body);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  const tx = /name=tx value="([^"]+)"/.exec(g.body)[1];
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password }, cookie);
  if (!/name=step value="mfa"/.test(r.body)) return { refused: r };
  r = await post('/auth/authorize', { tx, step: 'mfa', otp: await generate({ secret: totps[user] }) }, cookie);
  r = await post('/auth/authorize', { tx, step: 'consent', decision: 'approve' }, cookie);
  assert.equal(r.status, 302, r.body);
  const params = oauth.validateAuthResponse(as, client, new URL(r.headers.location), 'st');
  const resp = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier);
  const body = await resp.json();
  assert.equal(resp.status, 200, JSON.stringify(body));
  return body;
}

let admin, clinician, system;
before(async () => {
  s = await startServer({ clients: [{ id: 'sys', scope: 'system/*.cruds' }] });
  const r = await salus(['client', 'add', '--data', s.dir, '--id', 'adminapp', '--scope', 'user/*.cruds openid fhirUser',
    '--redirect-uri', REDIRECT, '--public']);
  assert.equal(r.code, 0, r.stderr);
  await addUser('root', 'admin', ['--practitioner', 'prac-admin']);
  await addUser('carl', 'clinician', ['--practitioner', 'prac-carl']);
  const issuer = new URL(s.base);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc' }));
  admin = (await signIn('root')).access_token;
  clinician = (await signIn('carl')).access_token;
  system = await s.token('sys');
});
after(async () => {
  await s?.stop();
});

const api = (method, p, token, body) => s.request(method, `/admin${p}`, {
  token, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });

describe('admin REST surface', () => {
  test('only an admin user gets in', async () => {
    assert.equal((await api('GET', '/users')).status, 401);
    assert.equal((await api('GET', '/users', clinician)).status, 403);
    assert.equal((await api('GET', '/users', system)).status, 403); // a client, not an admin user
    const ok = await api('GET', '/users', admin);
    assert.equal(ok.status, 200, ok.body);
    assert.deepEqual(ok.json.users.map((u) => u.username).sort(), ['carl', 'root']);
    assert.doesNotMatch(ok.body, /argon2|"pw"|"totp"/); // no secrets listed
  });

  let secret;
  test('create a user: enrolment shown once, policy enforced, duplicates refused', async () => {
    const weak = await api('POST', '/users', admin, { username: 'nina', role: 'nurse', password: 'short', practitioner: 'prac-n' });
    assert.equal(weak.status, 400, weak.body);
    assert.doesNotMatch(weak.body, /short/); // never echoes the password
    const bad = await api('POST', '/users', admin, { username: 'nina', role: 'nurse', password: PW, practitioner: 'prac-n', x: '1' });
    assert.equal(bad.status, 400);
    const mt = await s.request('POST', '/admin/users', { token: admin, headers: { 'content-type': 'text/plain' }, body: '{}' });
    assert.equal(mt.status, 415);
    const c = await api('POST', '/users', admin, { username: 'nina', role: 'nurse', password: PW, practitioner: 'prac-n' });
    assert.equal(c.status, 201, c.body);
    assert.match(c.json.totp.secret, /^[A-Z2-7]{32}$/);
    assert.match(c.json.totp.uri, /^otpauth:\/\/totp\//);
    assert.equal(c.json.recoveryCodes.length, 10);
    secret = c.json.totp.secret;
    totps.nina = secret;
    const dup = await api('POST', '/users', admin, { username: 'nina', role: 'nurse', password: PW, practitioner: 'prac-n' });
    assert.equal(dup.status, 409);
    const list = await api('GET', '/users', admin);
    const nina = list.json.users.find((u) => u.username === 'nina');
    assert.equal(nina.role, 'nurse');
    assert.equal(nina.link, 'Practitioner/prac-n');
    assert.equal(nina.mfaEnrolled, false);
  });

  test('role change, MFA reset, sessions', async () => {
    assert.equal((await api('POST', '/users/nina/role', admin, { role: 'front-desk' })).status, 204);
    assert.equal((await api('POST', '/users/nina/role', admin, { role: 'wizard' })).status, 400);
    assert.equal((await api('POST', '/users/ghost/role', admin, { role: 'nurse' })).status, 404);
    const list = await api('GET', '/users', admin);
    assert.equal(list.json.users.find((u) => u.username === 'nina').role, 'front-desk');
    const m = await api('POST', '/users/nina/reset-mfa', admin);
    assert.equal(m.status, 200, m.body);
    assert.notEqual(m.json.totp.secret, secret);
    totps.nina = m.json.totp.secret;
    const ss = await api('GET', '/users/root/sessions', admin);
    assert.equal(ss.status, 200, ss.body);
    assert.ok(Array.isArray(ss.json.sessions));
    assert.equal((await api('DELETE', '/users/nina/sessions', admin)).status, 204);
    assert.equal((await api('DELETE', '/users/nina/sessions/nosuchsession', admin)).status, 404);
    assert.equal((await api('PUT', '/users/nina/disable', admin)).status, 405);
    assert.equal((await api('GET', '/nothing', admin)).status, 404);
  });

  test('disable: the user can no longer sign in; a disabled admin loses access at once', async () => {
    const tok = await signIn('nina');
    assert.ok(tok.access_token);
    assert.equal((await s.request('GET', '/fhir/Patient?_count=1', { token: tok.access_token })).status, 200);
    assert.equal((await api('POST', '/users/nina/disable', admin)).status, 204);
    assert.equal((await s.request('GET', '/fhir/Patient?_count=1', { token: tok.access_token })).status, 401);
    const again = await signIn('nina');
    assert.ok(again.refused, 'a disabled user must not reach the MFA step');
    // demote the admin (through the CLI, as another admin would): the same token is refused at once
    assert.equal((await salus(['user', 'set-role', '--data', s.dir, '--username', 'root', '--role', 'auditor'])).code, 0);
    assert.notEqual((await api('GET', '/users', admin)).status, 200);
  });

  test('every call is an administrative AuditEvent naming the admin', async () => {
    const r = await salus(['audit', 'export', '--data', s.dir]);
    assert.equal(r.code, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type?.code === '110100');
    const decoded = events.map((e) => Buffer.from(e.entity?.find((x) => x.query)?.query ?? '', 'base64').toString());
    for (const a of ['action=user.list', 'action=user.add&user=nina', 'action=user.set-role&user=nina',
      'action=user.reset-mfa&user=nina', 'action=user.disable&user=nina'])
      assert.ok(decoded.includes(a), `missing ${a} in ${JSON.stringify(decoded)}`);
    assert.ok(events.some((e) => JSON.stringify(e.agent).includes('root')));
    assert.ok(events.some((e) => e.outcome === '4')); // the refused clinician call
    assert.doesNotMatch(r.stdout, /correct horse/); // no password in the trail
  });
});
