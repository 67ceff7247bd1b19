// oauth.test.mjs — the SMART / OAuth 2.0 authorization server end to end with third-party
// clients: oauth4webapi (discovery, PKCE S256, code exchange, refresh) against Salus, the
// login / TOTP / consent pages driven with plain HTTPS requests, TOTP codes from otplib.
// Negative cases: wrong PKCE verifier, reused code, reused refresh token (family revoked),
// tampered and alg:none tokens, lockout holding while others are served, enumeration timing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { generate } from 'otplib';
import { salus, startServer } from './lib/server.mjs';

const REDIRECT = 'https://app.example/cb';
const PW = 'correct horse battery staple 42';
let s, as, totp;
const otherTotp = {}; // each TOTP time step is accepted once per user: later flows use other users
const client = { client_id: 'smartapp' };

const addUser = (username, role, link) => s.addUser(username, role, link, PW);

before(async () => {
  s = await startServer({ clients: [{ id: 'rs', scope: 'system/Patient.rs' }] });
  const r = await salus(['client', 'add', '--data', s.dir, '--id', 'smartapp', '--scope',
    'user/*.cruds patient/*.rs openid fhirUser profile offline_access launch/patient', '--redirect-uri', REDIRECT, '--public']);
  assert.equal(r.code, 0, r.stderr);
  totp = await addUser('alice', 'clinician', ['--practitioner', 'prac-1']);
  await addUser('bob', 'nurse', ['--practitioner', 'prac-2']);
  otherTotp.carol = await addUser('carol', 'clinician', ['--practitioner', 'prac-3']);
  otherTotp.erin = await addUser('erin', 'clinician', ['--practitioner', 'prac-5']);
  otherTotp.dave = await addUser('dave', 'clinician', ['--practitioner', 'prac-4']);
  const issuer = new URL(s.base);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc' }));
});
after(async () => {
  await s?.stop();
});

const form = (o) => new URLSearchParams(o).toString();
const post = (p, body, cookie) => s.request('POST', p, {
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) }, body: form(body),
});
const txOf = (html) => /name=tx value="([^"]+)"/.exec(html)?.[1];

/** Run the browser part of the flow; resolves the redirect URL (code or error). */
async function authorize({ user = 'alice', password = PW, scope = 'user/Patient.rs user/Observation.rs openid fhirUser offline_access', verifier, secret = totp, step = 0 } = {}) {
  const challenge = await oauth.calculatePKCECodeChallenge(verifier);
  const url = new URL(as.authorization_endpoint);
  for (const [k, v] of Object.entries({ client_id: client.client_id, redirect_uri: REDIRECT, response_type: 'code', scope,
    state: 'st-1', code_challenge: challenge, code_challenge_method: 'S256', aud: `${s.base}/fhir` }))
    url.searchParams.set(k, v);
  const g = await s.request('GET', url.pathname + url.search);
  assert.equal(g.status, 200, g.body);
  assert.match(g.headers['content-security-policy'], /frame-ancestors 'none'/);
  const cookie = g.headers['set-cookie'][0].split(';')[0];
  assert.match(g.headers['set-cookie'][0], /Secure; HttpOnly; SameSite=Strict/);
  const tx = txOf(g.body);
  let r = await post('/auth/authorize', { tx, step: 'login', username: user, password }, cookie);
  if (r.status !== 200 || !/name=step value="mfa"/.test(r.body)) return r;
  const code = await generate({ secret, epoch: Math.floor(Date.now() / 1000) + step * 30 });
  r = await post('/auth/authorize', { tx, step: 'mfa', otp: code }, cookie);
  assert.equal(r.status, 200, r.body);
  assert.match(r.body, /Allow access\?/);
  r = await post('/auth/authorize', { tx, step: 'consent', decision: 'approve' }, cookie);
  assert.equal(r.status, 302, r.body);
  return new URL(r.headers.location);
}

async function exchange(cbUrl, verifier) {
  const params = oauth.validateAuthResponse(as, client, cbUrl, 'st-1');
  const resp = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, REDIRECT, verifier);
  return resp;
}

describe('discovery', () => {
  test('smart-configuration and openid-configuration', async () => {
    const r = await s.request('GET', '/.well-known/smart-configuration');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.code_challenge_methods_supported, ['S256']);
    assert.ok(r.json.capabilities.includes('launch-standalone'));
    assert.ok(r.json.capabilities.includes('permission-patient')); // patient/ scopes: the compartment (policy.test.mjs)
    assert.equal(as.issuer, s.base);
    const j = await s.request('GET', '/auth/jwks');
    assert.equal(j.json.keys[0].alg, 'EdDSA');
  });
});

describe('authorization code + PKCE', () => {
  let tokens;
  test('login, TOTP, consent, code exchange with oauth4webapi, FHIR read', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const cb = await authorize({ verifier });
    assert.equal(cb.searchParams.get('iss'), s.base);
    const resp = await exchange(cb, verifier);
    const clone = resp.clone();
    const body = await clone.json();
    assert.equal(resp.status, 200, JSON.stringify(body));
    assert.ok(body.refresh_token && body.id_token && body.access_token);
    assert.match(body.scope, /user\/Patient\.rs/);
    assert.doesNotMatch(body.scope, /cruds/); // requested rs only
    tokens = body;
    const r = await s.request('GET', '/fhir/Patient?_count=1', { token: body.access_token });
    assert.equal(r.status, 200, r.body);
    const w = await s.request('POST', '/fhir/Patient', { token: body.access_token, body: { resourceType: 'Patient' } });
    assert.equal(w.status, 403); // not granted
  });

  test('wrong verifier, reused code', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const cb = await authorize({ verifier, user: 'erin', secret: otherTotp.erin });
    const bad = await post('/auth/token', { grant_type: 'authorization_code', code: cb.searchParams.get('code'),
      redirect_uri: REDIRECT, code_verifier: oauth.generateRandomCodeVerifier(), client_id: 'smartapp' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, 'invalid_grant');
    // the code was consumed by the failed attempt: the right verifier fails too
    const again = await post('/auth/token', { grant_type: 'authorization_code', code: cb.searchParams.get('code'),
      redirect_uri: REDIRECT, code_verifier: verifier, client_id: 'smartapp' });
    assert.equal(again.json.error, 'invalid_grant');
  });

  test('PKCE is required', async () => {
    const r = await s.request('GET', `/auth/authorize?client_id=smartapp&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&scope=openid&state=x`);
    assert.equal(r.status, 302);
    assert.equal(new URL(r.headers.location).searchParams.get('error'), 'invalid_request');
    const u = await s.request('GET', `/auth/authorize?client_id=smartapp&redirect_uri=${encodeURIComponent('https://evil.example/cb')}&response_type=code`);
    assert.equal(u.status, 400); // never redirected to an unregistered URI
  });

  test('refresh rotation; a reused refresh token revokes the family', async () => {
    const r1 = await oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token);
    const b1 = await r1.json();
    assert.equal(r1.status, 200, JSON.stringify(b1));
    assert.notEqual(b1.refresh_token, tokens.refresh_token);
    const ok = await s.request('GET', '/fhir/Patient?_count=1', { token: b1.access_token });
    assert.equal(ok.status, 200);
    // the old one again: refused, and the whole family dies
    const reuse = await post('/auth/token', { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'smartapp' });
    assert.equal(reuse.json.error, 'invalid_grant');
    const r2 = await post('/auth/token', { grant_type: 'refresh_token', refresh_token: b1.refresh_token, client_id: 'smartapp' });
    assert.equal(r2.json.error, 'invalid_grant');
    const dead = await s.request('GET', '/fhir/Patient?_count=1', { token: b1.access_token });
    assert.equal(dead.status, 401);
  });

  test('tampered and alg:none tokens', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const cb = await authorize({ verifier, user: 'carol', secret: otherTotp.carol });
    const body = await (await exchange(cb, verifier)).json();
    const [h, p, sig] = body.access_token.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    claims.scope = 'user/*.cruds';
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`;
    assert.equal((await s.request('GET', '/fhir/Patient', { token: forged })).status, 401);
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    assert.equal((await s.request('GET', '/fhir/Patient', { token: none })).status, 401);
    // introspection by a confidential client; revocation kills the family's access tokens
    const basic = `Basic ${Buffer.from(`rs:${s.secrets.get('rs')}`).toString('base64')}`;
    const intro = await s.request('POST', '/auth/introspect', { headers: { authorization: basic,
      'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: body.access_token }) });
    assert.equal(intro.json.active, true);
    assert.equal(intro.json.sub, 'carol');
    const rv = await post('/auth/revoke', { token: body.refresh_token, client_id: 'smartapp' });
    assert.equal(rv.status, 200);
    assert.equal((await s.request('GET', '/fhir/Patient', { token: body.access_token })).status, 401);
    const intro2 = await s.request('POST', '/auth/introspect', { headers: { authorization: basic,
      'content-type': 'application/x-www-form-urlencoded' }, body: form({ token: body.access_token }) });
    assert.equal(intro2.json.active, false);
  });

  test('a disabled user: tokens stop at once', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const cb = await authorize({ verifier, user: 'dave', secret: otherTotp.dave });
    const body = await (await exchange(cb, verifier)).json();
    assert.equal((await s.request('GET', '/fhir/Patient', { token: body.access_token })).status, 200);
    const d = await salus(['user', 'disable', '--data', s.dir, '--username', 'dave']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await s.request('GET', '/fhir/Patient', { token: body.access_token })).status, 401);
  });
});

describe('abuse', () => {
  test('lockout holds while others are served; unknown users answer alike', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const start = async () => {
      const challenge = await oauth.calculatePKCECodeChallenge(verifier);
      const g = await s.request('GET', `/auth/authorize?client_id=smartapp&redirect_uri=${encodeURIComponent(REDIRECT)}&response_type=code&scope=user%2FPatient.rs&code_challenge=${challenge}&code_challenge_method=S256`);
      return { tx: txOf(g.body), cookie: g.headers['set-cookie'][0].split(';')[0] };
    };
    const t = await start();
    const timed = async (user) => {
      const t0 = process.hrtime.bigint();
      const r = await post('/auth/authorize', { tx: t.tx, step: 'login', username: user, password: 'wrong password 123' }, t.cookie);
      return { r, ms: Number(process.hrtime.bigint() - t0) / 1e6 };
    };
    const known = [], unknown = [];
    // interleaved, so that a burst of load from elsewhere on the machine slows both alike
    for (let i = 0; i < 5; i++) {
      known.push((await timed('bob')).ms);
      unknown.push((await timed(`nobody${i}`)).ms);
    }
    const med = (a) => a.sort((x, y) => x - y)[2];
    assert.ok(med(unknown) > med(known) / 2 && med(unknown) < med(known) * 2, `known ${med(known)} unknown ${med(unknown)}`);
    // bob is locked now: his right password is refused with the same page
    const locked = await post('/auth/authorize', { tx: t.tx, step: 'login', username: 'bob', password: PW }, t.cookie);
    assert.equal(locked.status, 200);
    assert.match(locked.body, /Wrong username or password/);
    // the server keeps serving others
    assert.equal((await s.request('GET', '/health/live')).status, 200);
    const cc = await s.tokenRequest('rs');
    assert.equal(cc.status, 200);
  });
});
