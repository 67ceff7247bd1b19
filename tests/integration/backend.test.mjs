// backend.test.mjs — SMART Backend Services (private_key_jwt, RFC 7523) end to end:
// RS384 and ES384 keys made by the npm `jose` package, the JWK Set written to a file and
// registered with `salus client add --jwks`, client assertions signed with `jose`, tokens
// from POST /auth/token, FHIR reads with them; then every refusal (wrong key, wrong aud,
// expired, exp too far ahead, replayed jti, alg none, HS256 with the public key as the
// secret, unknown kid, removed client, ...) is 400 invalid_client with no other detail,
// registration refuses private keys and unsupported keys, and each issue and refusal is
// in the audit trail.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { freePort, salus, startServer } from './lib/server.mjs';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
let s;
let full; // token of a secret-based client with every scope (writes the test data, reads the audit trail)
let tokenUrl;
const keys = {}; // name -> {alg, kid, privateKey, publicJwk}
let patientId;
let jwksServer, jwksPort;
let served = { keys: [] }; // what the JWKS server answers (an object, or a status number)
let fetches = 0;

async function makeKey(name, alg) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(publicKey);
  const kid = `${name}-${crypto.randomBytes(4).toString('hex')}`;
  keys[name] = { alg, kid, privateKey, publicKey, publicJwk: { ...jwk, kid, alg, use: 'sig' } };
  return keys[name];
}

function writeJwks(name, jwkList) {
  const file = path.join(s.tmp, `${name}.jwks.json`);
  fs.writeFileSync(file, JSON.stringify({ keys: jwkList }));
  return file;
}

async function register(id, scope, jwkList) {
  return salus(['client', 'add', '--data', s.dir, '--id', id, '--scope', scope, '--jwks', writeJwks(id, jwkList)]);
}

/** A client assertion for `id` signed with key k; `claims` and `header` override the defaults. */
async function assertion(id, k, { claims = {}, header = {}, expIn = 240 } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iss: id, sub: id, aud: tokenUrl, exp: now + expIn, jti: crypto.randomUUID(), ...claims };
  for (const [key, v] of Object.entries(body)) if (v === undefined) delete body[key];
  return new SignJWT(body).setProtectedHeader({ alg: k.alg, kid: k.kid, typ: 'JWT', ...header }).sign(k.privateKey);
}

function tokenPost(form, headers = {}) {
  return s.request('POST', '/auth/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

function withAssertion(jwt, extra = {}) {
  return tokenPost({
    grant_type: 'client_credentials',
    client_assertion_type: ASSERTION_TYPE,
    client_assertion: jwt,
    ...extra,
  });
}

/** The refusal every failed assertion gets: 400 invalid_client and nothing that says which check failed. */
function refused(r, what) {
  assert.equal(r.status, 400, `${what}: ${r.status} ${r.body}`);
  assert.deepEqual(r.json, { error: 'invalid_client' }, `${what}: body`);
  assert.equal(r.headers['cache-control'], 'no-store', `${what}: no-store`);
}

before(async () => {
  // JWK Set URLs: trust the test's JWKS server (it uses the data directory's own certificate),
  // and keep fetched sets 2 s so that rotation can be tested quickly
  s = await startServer({
    clients: [{ id: 'full', scope: 'system/*.cruds' }],
    serveArgs: ['--auth.jwks_ca_file', 'tls/cert.pem', '--auth.jwks_cache_s', '2'],
    plainTls: true,
  });
  full = await s.token('full');
  tokenUrl = `${s.base}/auth/token`;
  await makeKey('rsa', 'RS384');
  await makeKey('ec', 'ES384');
  await makeKey('rsa2', 'RS384'); // a second key of the RSA client (rotation)
  await makeKey('other', 'RS384'); // nobody registered this one
  let r = await register('bk-rsa', 'system/Patient.rs system/Observation.rs', [keys.rsa.publicJwk, keys.rsa2.publicJwk]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /backend client bk-rsa registered/);
  r = await register('bk-ec', 'system/*.rs', [keys.ec.publicJwk]);
  assert.equal(r.code, 0, r.stderr);
  const p = await s.request('POST', '/fhir/Patient', {
    token: full,
    body: { resourceType: 'Patient', name: [{ family: 'Backend', given: ['Ada'] }], birthDate: '1970-01-01' },
  });
  assert.equal(p.status, 201, p.body);
  patientId = p.json.id;
});
after(async () => {
  await new Promise((resolve) => (jwksServer ? jwksServer.close(resolve) : resolve()));
  await s?.stop();
});

describe('discovery', () => {
  test('smart-configuration advertises private_key_jwt with RS384 and ES384', async () => {
    const r = await s.request('GET', '/.well-known/smart-configuration');
    assert.equal(r.status, 200);
    assert.ok(r.json.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
    assert.deepEqual(r.json.token_endpoint_auth_signing_alg_values_supported, ['RS384', 'ES384']);
    assert.ok(r.json.capabilities.includes('client-confidential-asymmetric'));
    assert.equal(r.json.token_endpoint, tokenUrl);
  });
});

describe('tokens from signed assertions', () => {
  for (const [name, id] of [
    ['rsa', 'bk-rsa'],
    ['ec', 'bk-ec'],
    ['rsa2', 'bk-rsa'],
  ]) {
    test(`${keys[name]?.alg ?? name} (${name}) assertion → token → FHIR read`, async () => {
      const r = await withAssertion(await assertion(id, keys[name]));
      assert.equal(r.status, 200, r.body);
      assert.equal(r.json.token_type, 'Bearer');
      assert.ok(r.json.expires_in >= 300);
      const read = await s.request('GET', `/fhir/Patient/${patientId}`, { token: r.json.access_token });
      assert.equal(read.status, 200, read.body);
      assert.equal(read.json.name[0].family, 'Backend');
      // fhir-kit-client with the token
      const bundle = await s.fhirClient(r.json.access_token).search({ resourceType: 'Patient', searchParams: { family: 'Backend' } });
      assert.equal(bundle.resourceType, 'Bundle');
      assert.ok(bundle.entry.some((e) => e.resource.id === patientId));
    });
  }

  test('the granted scopes are the registered ones, a narrower request narrows them, and no write', async () => {
    let r = await withAssertion(await assertion('bk-rsa', keys.rsa));
    assert.equal(r.json.scope, 'system/Patient.rs system/Observation.rs');
    const tok = r.json.access_token;
    const w = await s.request('POST', '/fhir/Patient', { token: tok, body: { resourceType: 'Patient' } });
    assert.equal(w.status, 403, 'a read-only backend client cannot create');
    r = await withAssertion(await assertion('bk-rsa', keys.rsa), { scope: 'system/Patient.r' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.scope, 'system/Patient.r');
    r = await withAssertion(await assertion('bk-rsa', keys.rsa), { scope: 'system/Encounter.rs' });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: 'invalid_scope' });
  });

  test('client_id in the form must match the assertion; aud may be an array holding the token URL', async () => {
    let r = await withAssertion(await assertion('bk-ec', keys.ec), { client_id: 'bk-ec' });
    assert.equal(r.status, 200, r.body);
    r = await withAssertion(await assertion('bk-ec', keys.ec), { client_id: 'bk-rsa' });
    refused(r, 'client_id mismatch');
    r = await withAssertion(await assertion('bk-ec', keys.ec, { claims: { aud: ['https://elsewhere/token', tokenUrl] } }));
    assert.equal(r.status, 200, r.body);
  });

  test('a key without kid in the header is found among the keys that fit the algorithm', async () => {
    const k = keys.rsa2;
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ iss: 'bk-rsa', sub: 'bk-rsa', aud: tokenUrl, exp: now + 60, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'RS384' })
      .sign(k.privateKey);
    const r = await withAssertion(jwt);
    assert.equal(r.status, 200, r.body);
  });
});

describe('refusals: 400 invalid_client, whatever the reason', () => {
  test('signed by a key that is not registered (same kid)', async () => {
    refused(await withAssertion(await assertion('bk-rsa', { ...keys.other, kid: keys.rsa.kid })), 'wrong key');
  });
  test('signed by the other client’s key', async () => {
    refused(await withAssertion(await assertion('bk-rsa', keys.ec)), 'EC key of bk-ec for bk-rsa');
  });
  test('unknown kid', async () => {
    refused(await withAssertion(await assertion('bk-rsa', { ...keys.rsa, kid: 'no-such-kid' })), 'unknown kid');
  });
  test('wrong aud', async () => {
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { aud: `${s.base}/fhir` } })), 'aud = FHIR base');
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { aud: 'https://127.0.0.1:1/auth/token' } })), 'other host');
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { aud: undefined } })), 'no aud');
  });
  test('expired, exp too far ahead, no exp, not yet valid', async () => {
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { expIn: -120 })), 'expired');
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { expIn: 600 })), 'exp 10 min ahead');
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { exp: undefined } })), 'no exp');
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { exp: 'soon' } })), 'exp a string');
    const now = Math.floor(Date.now() / 1000);
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { nbf: now + 200 } })), 'nbf ahead');
  });
  test('replayed jti (also under concurrency: exactly one of ten wins)', async () => {
    const jwt = await assertion('bk-ec', keys.ec);
    assert.equal((await withAssertion(jwt)).status, 200);
    refused(await withAssertion(jwt), 'replay');
    const jti = crypto.randomUUID();
    const again = await assertion('bk-ec', keys.ec, { claims: { jti } });
    refused(await withAssertion(await assertion('bk-ec', keys.ec, { claims: { jti: undefined } })), 'no jti');
    // ten concurrent requests with the same assertion, over separate connections
    const rs = await Promise.all(Array.from({ length: 10 }, () =>
      s.request('POST', '/auth/token', {
        agent: false,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: again }).toString(),
      })));
    assert.deepEqual(rs.map((r) => r.status).sort(), [200, 400, 400, 400, 400, 400, 400, 400, 400, 400]);
  });
  test('alg none, HS256 keyed with the public key, RS256, PS384 are refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: 'bk-rsa', sub: 'bk-rsa', aud: tokenUrl, exp: now + 60 };
    const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const none = `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ ...claims, jti: crypto.randomUUID() })}.`;
    refused(await withAssertion(none), 'alg none');
    // HS256 with every plausible text of the public key as the HMAC secret
    const pem = crypto.createPublicKey({ key: keys.rsa.publicJwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [pem, JSON.stringify(keys.rsa.publicJwk), keys.rsa.publicJwk.n]) {
      const input = `${enc({ alg: 'HS256', kid: keys.rsa.kid, typ: 'JWT' })}.${enc({ ...claims, jti: crypto.randomUUID() })}`;
      const mac = crypto.createHmac('sha256', secret).update(input).digest('base64url');
      refused(await withAssertion(`${input}.${mac}`), 'HS256');
    }
    // a correct RS256 / PS384 signature with the registered key: only RS384 and ES384 are accepted
    for (const alg of ['RS256', 'PS384']) {
      const jwt = await new SignJWT({ ...claims, jti: crypto.randomUUID() })
        .setProtectedHeader({ alg, kid: keys.rsa.kid })
        .sign(crypto.createPrivateKey({ key: await exportJWK(keys.rsa.privateKey), format: 'jwk' }));
      refused(await withAssertion(jwt), alg);
    }
  });
  test('header members that point at other keys (jku, jwk, x5u) are refused', async () => {
    for (const extra of [{ jku: 'https://attacker/jwks' }, { jwk: keys.other.publicJwk }, { x5u: 'https://attacker/x5' }]) {
      refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { header: extra })), JSON.stringify(Object.keys(extra)));
    }
  });
  test('iss and sub must both be the client', async () => {
    refused(await withAssertion(await assertion('bk-rsa', keys.rsa, { claims: { sub: 'bk-ec' } })), 'sub differs');
    refused(await withAssertion(await assertion('nobody', keys.rsa)), 'unknown client');
    // a secret-based client cannot use an assertion at all
    refused(await withAssertion(await assertion('full', keys.rsa)), 'secret-based client');
  });
  test('a tampered payload fails the signature', async () => {
    const jwt = await assertion('bk-rsa', keys.rsa);
    const [h, p, sig] = jwt.split('.');
    const claims = JSON.parse(Buffer.from(p, 'base64url'));
    claims.exp += 1;
    refused(await withAssertion(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`), 'tampered');
  });
  test('malformed requests', async () => {
    const jwt = await assertion('bk-rsa', keys.rsa);
    refused(await tokenPost({ grant_type: 'client_credentials', client_assertion: jwt }), 'no assertion type');
    refused(await tokenPost({ grant_type: 'client_credentials', client_assertion_type: 'urn:x', client_assertion: jwt }), 'wrong type');
    refused(await withAssertion('a.b'), 'two parts');
    refused(await withAssertion('x'.repeat(9000)), 'oversized');
    // Basic and an assertion at once: two methods (RFC 6749 §2.3)
    const r = await tokenPost(
      { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt },
      { authorization: `Basic ${Buffer.from(`full:${s.secrets.get('full')}`).toString('base64')}` },
    );
    assert.equal(r.status, 400);
    assert.deepEqual(r.json, { error: 'invalid_request' });
  });
  test('a removed client: no new token, and its live token stops at once', async () => {
    const k = await makeKey('doomed', 'ES384');
    assert.equal((await register('bk-doomed', 'system/Patient.rs', [k.publicJwk])).code, 0);
    const r = await withAssertion(await assertion('bk-doomed', k));
    assert.equal(r.status, 200, r.body);
    const tok = r.json.access_token;
    assert.equal((await s.request('GET', `/fhir/Patient/${patientId}`, { token: tok })).status, 200);
    assert.equal((await s.removeClient('bk-doomed')).code, 0);
    refused(await withAssertion(await assertion('bk-doomed', k)), 'removed client');
    assert.equal((await s.request('GET', `/fhir/Patient/${patientId}`, { token: tok })).status, 401);
  });
});

describe('registration', () => {
  test('private keys, symmetric keys, small RSA, other curves and bad sets are refused', async () => {
    const priv = await exportJWK(keys.rsa.privateKey);
    const { publicKey: p256 } = await generateKeyPair('ES256');
    const p256pub = await exportJWK(p256);
    const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const cases = [
      [[priv], /private/],
      [[{ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQ' }], /private or symmetric/],
      [[p256pub], /P-384/],
      [[{ ...small, alg: 'RS384' }], /2048/],
      [[{ ...keys.rsa.publicJwk, alg: 'RS256' }], /RS384/],
      [[{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }], /unsupported key type/],
      [[keys.rsa.publicJwk, { ...keys.ec.publicJwk, kid: keys.rsa.kid }], /same kid/],
      [[], /1 to 16 keys/],
      [[{ ...keys.ec.publicJwk, x: keys.ec.publicJwk.y.slice(0, 10) }], /48 bytes/],
    ];
    for (const [set, why] of cases) {
      const r = await register(`bad-${crypto.randomBytes(3).toString('hex')}`, 'system/Patient.rs', set);
      assert.equal(r.code, 1, `${JSON.stringify(set).slice(0, 80)}: ${r.stdout}`);
      assert.match(r.stderr, why);
    }
    const notJson = path.join(s.tmp, 'junk.json');
    fs.writeFileSync(notJson, 'not json');
    const r = await salus(['client', 'add', '--data', s.dir, '--id', 'junk', '--scope', 'system/Patient.rs', '--jwks', notJson]);
    assert.equal(r.code, 1);
    // a duplicate id
    const d = await register('bk-rsa', 'system/Patient.rs', [keys.rsa.publicJwk]);
    assert.equal(d.code, 1);
    assert.match(d.stderr, /already exists/);
    // the stored record keeps public members only (no "use", no private material): list shows the client
    const list = await salus(['client', 'list', '--data', s.dir]);
    assert.match(list.stdout, /^bk-rsa\tsystem\/Patient\.rs system\/Observation\.rs\t/m);
  });
  test('a backend client cannot authenticate with a secret (client_secret_basic)', async () => {
    const r = await s.tokenRequest('bk-rsa', { secret: 'any-secret-at-all-0123456789' });
    assert.equal(r.status, 401);
    assert.deepEqual(r.json, { error: 'invalid_client' });
  });
});

describe('audit', () => {
  test('every issue and refusal is an AuditEvent naming the client', async () => {
    const type = encodeURIComponent('http://dicom.nema.org/resources/ontology/DCM|110114');
    const events = [];
    let url = `/fhir/AuditEvent?agent=bk-rsa&type=${type}&_count=100`;
    while (url) {
      const r = await s.request('GET', url, { token: full });
      assert.equal(r.status, 200, r.body);
      events.push(...(r.json.entry ?? []).map((e) => e.resource));
      const next = r.json.link?.find((l) => l.rel === 'next')?.url;
      url = next ? next.slice(s.base.length) : null;
    }
    const ok = events.filter((e) => e.outcome === '0').length;
    const bad = events.filter((e) => e.outcome !== '0').length;
    // issued to bk-rsa above: rsa, rsa2, scopes (2 ok of 3), kid-less; refused: many
    assert.ok(ok >= 5, `issued events: ${ok}`);
    assert.ok(bad >= 10, `refusal events: ${bad}`);
    for (const e of events) assert.ok(!JSON.stringify(e).includes('eyJ'), 'no assertion or token text in the event');
  });
});

describe('JWK Set URL (--jwks-url)', () => {
  before(async () => {
    jwksPort = await freePort();
    const tls = s.tlsPlain; // the data directory's key is sealed: the pair the helper made (plainTls)
    jwksServer = https.createServer(tls, (req, res) => {
      fetches++;
      if (typeof served === 'number') {
        res.writeHead(served);
        return res.end();
      }
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      return res.end(JSON.stringify(served));
    });
    await new Promise((resolve) => jwksServer.listen(jwksPort, '127.0.0.1', resolve));
    await makeKey('url1', 'ES384');
    await makeKey('url2', 'RS384');
  });
  const url = () => `https://127.0.0.1:${jwksPort}/jwks.json`;

  test('registration: https only, not both --jwks and --jwks-url', async () => {
    let r = await salus(['client', 'add', '--data', s.dir, '--id', 'bk-http', '--scope', 'system/Patient.rs', '--jwks-url', 'http://127.0.0.1/jwks']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /https URL/);
    r = await salus(['client', 'add', '--data', s.dir, '--id', 'bk-both', '--scope', 'system/Patient.rs', '--jwks-url', url(), '--jwks', writeJwks('x', [keys.ec.publicJwk])]);
    assert.equal(r.code, 2);
    r = await salus(['client', 'add', '--data', s.dir, '--id', 'bk-url', '--scope', 'system/Patient.rs', '--jwks-url', url()]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('the set is fetched, cached for the cache time, then fetched again (rotation)', async () => {
    served = { keys: [keys.url1.publicJwk] };
    fetches = 0;
    let r = await withAssertion(await assertion('bk-url', keys.url1));
    assert.equal(r.status, 200, r.body);
    const read = await s.request('GET', `/fhir/Patient/${patientId}`, { token: r.json.access_token });
    assert.equal(read.status, 200);
    r = await withAssertion(await assertion('bk-url', keys.url1));
    assert.equal(r.status, 200);
    assert.equal(fetches, 1, 'the second request used the cached set');
    // jku naming the registered URL is accepted; any other jku is not
    r = await withAssertion(await assertion('bk-url', keys.url1, { header: { jku: url() } }));
    assert.equal(r.status, 200, r.body);
    refused(await withAssertion(await assertion('bk-url', keys.url1, { header: { jku: `${url()}?other` } })), 'other jku');
    // rotation: the client publishes a new key and drops the old one
    served = { keys: [keys.url2.publicJwk] };
    await new Promise((res) => setTimeout(res, 2100)); // past the 2 s cache time
    r = await withAssertion(await assertion('bk-url', keys.url2));
    assert.equal(r.status, 200, r.body);
    refused(await withAssertion(await assertion('bk-url', keys.url1)), 'the dropped key');
  });

  test('a set that cannot be had, or is not acceptable, refuses the request', async () => {
    await new Promise((res) => setTimeout(res, 2100));
    served = 404;
    refused(await withAssertion(await assertion('bk-url', keys.url2)), 'JWKS 404');
    served = { keys: [await exportJWK(keys.url2.privateKey)] };
    refused(await withAssertion(await assertion('bk-url', keys.url2)), 'JWKS with a private key');
    served = { keys: [keys.url2.publicJwk] };
    jwksServer.closeAllConnections?.();
    const r = await withAssertion(await assertion('bk-url', keys.url2));
    assert.equal(r.status, 200, r.body);
    // an unreachable URL
    const dead = await freePort();
    assert.equal((await salus(['client', 'add', '--data', s.dir, '--id', 'bk-dead', '--scope', 'system/Patient.rs', '--jwks-url', `https://127.0.0.1:${dead}/jwks`])).code, 0);
    refused(await withAssertion(await assertion('bk-dead', keys.url2)), 'unreachable');
  });
});
