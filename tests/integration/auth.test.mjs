// auth.test.mjs — OAuth 2.0 client credentials and SMART scopes end to end:
// the open CapabilityStatement, 401 everywhere else without a valid token,
// forged / tampered / expired tokens, the token endpoint's errors, scope
// subsets, 403 for a read-only client, SMART v1 scopes, and revocation by
// `salus client remove` while the server runs.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, isOutcome, r4ResourceTypes, signJwt, startServer } from './lib/server.mjs';

let s;
let full; // token of the full-access client
before(async () => {
  s = await startServer({
    clients: [
      { id: 'full', scope: 'system/*.cruds' },
      { id: 'readonly', scope: 'system/Patient.rs' },
      { id: 'v1reader', scope: 'system/*.read' },
      { id: 'v1writer', scope: 'system/*.*' },
      { id: 'doomed', scope: 'system/*.cruds' },
    ],
    plainTokenKey: true, // forged tokens below are signed with the server's own key
  });
  full = await s.token('full');
});
after(async () => {
  await s?.stop();
});

const bearer401 = (r, what) => {
  assert.equal(r.status, 401, `${what}: ${r.status} ${r.body}`);
  assert.match(r.headers['www-authenticate'] ?? '', /^Bearer\b/, `${what}: WWW-Authenticate`);
  assert.ok(isOutcome(r.json), `${what}: OperationOutcome body`);
  assert.equal(r.json.issue[0].severity, 'error');
};

describe('CapabilityStatement', () => {
  test('/fhir/metadata needs no token and lists every R4 resource type', async () => {
    const r = await s.request('GET', '/fhir/metadata');
    assert.equal(r.status, 200);
    assert.match(r.headers['content-type'], /^application\/fhir\+json/);
    const cs = r.json;
    assert.equal(cs.resourceType, 'CapabilityStatement');
    assert.equal(cs.fhirVersion, '4.0.1');
    assert.equal(cs.kind, 'instance');
    const types = cs.rest[0].resource.map((x) => x.type);
    const r4 = r4ResourceTypes();
    assert.equal(r4.length, 146);
    assert.equal(new Set(types).size, types.length, 'duplicate types');
    assert.deepEqual([...types].sort(), [...r4].sort(), 'exactly the R4 4.0.1 resource types');
    for (const t of ['Patient', 'Observation', 'Bundle', 'Binary', 'Parameters', 'VerificationResult', 'Account'])
      assert.ok(types.includes(t), t);
    assert.ok(!types.includes('Resource') && !types.includes('DomainResource'), 'abstract types listed');
    // the token endpoint is advertised
    const ext = JSON.stringify(cs.rest[0].security);
    assert.ok(ext.includes(`${s.base}/auth/token`), ext);
  });

  test('fhir-kit-client reads the CapabilityStatement', async () => {
    const cs = await s.fhirClient().capabilityStatement();
    assert.equal(cs.fhirVersion, '4.0.1');
  });
});

describe('no token → 401', () => {
  const endpoints = [
    ['GET', '/fhir/Patient'],
    ['GET', '/fhir/Patient/p1'],
    ['GET', '/fhir/Patient/p1/_history'],
    ['GET', '/fhir/Patient/p1/_history/1'],
    ['GET', '/fhir/Patient/_history'],
    ['GET', '/fhir/_history'],
    ['GET', '/fhir/Observation?_id=x'],
    ['POST', '/fhir/Patient', { resourceType: 'Patient' }],
    ['PUT', '/fhir/Patient/p1', { resourceType: 'Patient', id: 'p1' }],
    ['DELETE', '/fhir/Patient/p1'],
  ];
  for (const [m, p, body] of endpoints) {
    test(`${m} ${p}`, async () => {
      const r = await s.request(m, p, { body });
      bearer401(r, `${m} ${p}`);
      assert.doesNotMatch(r.headers['www-authenticate'], /error=/, 'no error= when no credentials were sent');
    });
  }
  test('nothing was written by the refused requests', async () => {
    const r = await s.request('GET', '/fhir/Patient/p1', { token: full });
    assert.equal(r.status, 404);
    const h = await s.request('GET', '/fhir/_history', { token: full });
    assert.equal(h.json.total, 0, 'system history should be empty');
  });
});

describe('bad tokens → 401 invalid_token', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const cases = {
    'garbage': () => 'garbage',
    'three junk segments': () => 'a.b.c',
    'alg none': () => {
      const { header, payload } = decodeJwt(full);
      return signJwt({ ...header, alg: 'none' }, payload, null);
    },
    'signed by another key': () => {
      const { header, payload } = decodeJwt(full);
      const { privateKey } = crypto.generateKeyPairSync('ed25519');
      return signJwt(header, payload, privateKey);
    },
    'payload tampered (scope widened)': () => {
      const [h, , sig] = full.split('.');
      const { payload } = decodeJwt(full);
      const p = Buffer.from(JSON.stringify({ ...payload, scope: 'system/*.*' })).toString('base64url');
      return `${h}.${p}.${sig}`;
    },
    'signature truncated': () => full.slice(0, -4),
    'expired an hour ago (server key)': () => {
      const { header, payload } = decodeJwt(full);
      return signJwt(header, { ...payload, iat: now() - 7200, exp: now() - 3600, jti: crypto.randomUUID() }, s.signingKey());
    },
    'wrong audience (server key)': () => {
      const { header, payload } = decodeJwt(full);
      return signJwt(header, { ...payload, aud: 'https://evil.example/fhir', jti: crypto.randomUUID() }, s.signingKey());
    },
    'unknown client (server key)': () => {
      const { header, payload } = decodeJwt(full);
      return signJwt(header, { ...payload, sub: 'ghost', client_id: 'ghost', jti: crypto.randomUUID() }, s.signingKey());
    },
  };
  for (const [name, make] of Object.entries(cases)) {
    test(name, async () => {
      const r = await s.request('GET', '/fhir/Patient/_history', { token: make() });
      bearer401(r, name);
      assert.match(r.headers['www-authenticate'], /error="invalid_token"/);
    });
  }
  test('control: a fresh token re-signed with the server key is accepted', async () => {
    // proves the forging above is well-formed, so the 401s are for the stated reasons
    const { header, payload } = decodeJwt(full);
    const tok = signJwt(header, { ...payload, jti: crypto.randomUUID() }, s.signingKey());
    const r = await s.request('GET', '/fhir/Patient/_history', { token: tok });
    assert.equal(r.status, 200, r.body);
  });
  test('Basic credentials on a FHIR endpoint are not a bearer token', async () => {
    const b = Buffer.from(`full:${s.secrets.get('full')}`).toString('base64');
    const r = await s.request('GET', '/fhir/Patient/_history', { headers: { authorization: `Basic ${b}` } });
    bearer401(r, 'basic');
  });
});

describe('token endpoint', () => {
  test('issues a signed EdDSA JWT with scope, exp and jti', async () => {
    const r = await s.tokenRequest('full');
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.token_type, 'Bearer');
    assert.match(r.headers['cache-control'], /no-store/);
    assert.equal(r.headers.pragma, 'no-cache');
    assert.equal(r.json.scope, 'system/*.cruds');
    const { header, payload } = decodeJwt(r.json.access_token);
    assert.equal(header.alg, 'EdDSA');
    assert.equal(payload.scope, 'system/*.cruds');
    assert.ok(payload.jti && payload.jti.length >= 16, 'jti');
    const life = payload.exp - payload.iat;
    assert.ok(life >= 300 && life <= 3600, `lifetime ${life}`);
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 120, 'iat is now');
    assert.equal(r.json.expires_in, life);
    // two tokens never share a jti
    const again = decodeJwt(await s.token('full')).payload;
    assert.notEqual(again.jti, payload.jti);
  });

  test('wrong secret → 401 invalid_client with WWW-Authenticate: Basic', async () => {
    const r = await s.tokenRequest('full', { secret: 'x'.repeat(48) });
    assert.equal(r.status, 401);
    assert.equal(r.json.error, 'invalid_client');
    assert.match(r.headers['www-authenticate'] ?? '', /^Basic\b/);
    assert.equal(r.json.access_token, undefined);
  });

  test('unknown client → 401 invalid_client', async () => {
    const r = await s.tokenRequest('nobody', { secret: 'y'.repeat(48) });
    assert.equal(r.status, 401);
    assert.equal(r.json.error, 'invalid_client');
  });

  test('bad grant_type → 400 unsupported_grant_type', async () => {
    const r = await s.tokenRequest('full', { grantType: 'password' });
    assert.equal(r.status, 400);
    assert.equal(r.json.error, 'unsupported_grant_type');
  });

  test('missing grant_type, wrong media type, secret in the body → 400/401, no token', async () => {
    const basic = `Basic ${Buffer.from(`full:${s.secrets.get('full')}`).toString('base64')}`;
    const form = 'application/x-www-form-urlencoded';
    const noGrant = await s.request('POST', '/auth/token', { headers: { authorization: basic, 'content-type': form }, body: 'scope=system%2F*.rs' });
    assert.equal(noGrant.status, 400);
    assert.equal(noGrant.json.error, 'invalid_request');
    const json = await s.request('POST', '/auth/token', {
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: '{"grant_type":"client_credentials"}',
    });
    assert.equal(json.status, 400);
    const inBody = await s.request('POST', '/auth/token', {
      headers: { 'content-type': form },
      body: `grant_type=client_credentials&client_id=full&client_secret=${s.secrets.get('full')}`,
    });
    assert.ok([400, 401].includes(inBody.status), `client_secret_post: ${inBody.status}`);
    assert.equal(inBody.json?.access_token, undefined);
    for (const r of [noGrant, json, inBody]) assert.equal(r.json?.access_token, undefined);
  });

  test('GET /auth/token → 405', async () => {
    const r = await s.request('GET', '/auth/token');
    assert.equal(r.status, 405);
  });

  test('a requested scope subset is granted as asked, and enforced', async () => {
    const r = await s.tokenRequest('full', { scope: 'system/Patient.rs' });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.scope, 'system/Patient.rs');
    const tok = r.json.access_token;
    assert.equal(decodeJwt(tok).payload.scope, 'system/Patient.rs');
    const read = await s.request('GET', '/fhir/Patient/_history', { token: tok });
    assert.equal(read.status, 200);
    const create = await s.request('POST', '/fhir/Patient', { token: tok, body: { resourceType: 'Patient' } });
    assert.equal(create.status, 403);
    assert.ok(isOutcome(create.json));
    const other = await s.request('GET', '/fhir/Observation/_history', { token: tok });
    assert.equal(other.status, 403);
  });

  test('a scope beyond the registration is narrowed or refused, never widened', async () => {
    const wider = await s.tokenRequest('readonly', { scope: 'system/Patient.cruds' });
    if (wider.status === 200) assert.equal(wider.json.scope, 'system/Patient.rs');
    else assert.equal(wider.json.error, 'invalid_scope');
    const other = await s.tokenRequest('readonly', { scope: 'system/Observation.rs' });
    assert.equal(other.status, 400);
    assert.equal(other.json.error, 'invalid_scope');
    const junk = await s.tokenRequest('full', { scope: 'not a scope' });
    assert.equal(junk.status, 400);
    assert.equal(junk.json.error, 'invalid_scope');
  });
});

describe('scopes on FHIR interactions', () => {
  test('read-only client (system/Patient.rs): reads Patient, 403 on writes and other types', async () => {
    const created = await s.request('POST', '/fhir/Patient', {
      token: full,
      body: { resourceType: 'Patient', name: [{ family: 'Readable' }] },
    });
    assert.equal(created.status, 201);
    const id = created.json.id;
    const ro = await s.token('readonly');
    const read = await s.request('GET', `/fhir/Patient/${id}`, { token: ro });
    assert.equal(read.status, 200);
    assert.equal(read.json.name[0].family, 'Readable');
    const attempts = [
      await s.request('POST', '/fhir/Patient', { token: ro, body: { resourceType: 'Patient' } }),
      await s.request('PUT', `/fhir/Patient/${id}`, { token: ro, body: { resourceType: 'Patient', id } }),
      await s.request('DELETE', `/fhir/Patient/${id}`, { token: ro }),
      await s.request('GET', '/fhir/Observation/x', { token: ro }),
    ];
    for (const a of attempts) {
      assert.equal(a.status, 403, a.body);
      assert.ok(isOutcome(a.json));
      assert.equal(a.json.issue[0].code, 'forbidden');
    }
    // the refused update and delete changed nothing
    const still = await s.request('GET', `/fhir/Patient/${id}`, { token: full });
    assert.equal(still.status, 200);
    assert.equal(still.json.meta.versionId, '1');
  });

  test('SMART v1 system/*.read: reads any type, cannot write', async () => {
    const obs = await s.request('POST', '/fhir/Observation', {
      token: full,
      body: { resourceType: 'Observation', status: 'final', code: { text: 'v1' } },
    });
    assert.equal(obs.status, 201);
    const v1 = await s.token('v1reader');
    assert.equal((await s.request('GET', `/fhir/Observation/${obs.json.id}`, { token: v1 })).status, 200);
    assert.equal((await s.request('GET', '/fhir/Observation/_history', { token: v1 })).status, 200);
    assert.equal((await s.request('GET', '/fhir/_history', { token: v1 })).status, 200);
    const w = await s.request('POST', '/fhir/Observation', { token: v1, body: { resourceType: 'Observation', status: 'final', code: {} } });
    assert.equal(w.status, 403);
  });

  test('SMART v1 system/*.*: reads and writes', async () => {
    const v1 = await s.token('v1writer');
    const c = await s.request('POST', '/fhir/Patient', { token: v1, body: { resourceType: 'Patient' } });
    assert.equal(c.status, 201, c.body);
    const d = await s.request('DELETE', `/fhir/Patient/${c.json.id}`, { token: v1 });
    assert.equal(d.status, 200);
  });
});

describe('revocation', () => {
  test('`salus client remove` while serving: the existing token gets 401 at once', async () => {
    const tok = await s.token('doomed');
    const ok = await s.request('GET', '/fhir/Patient/_history', { token: tok });
    assert.equal(ok.status, 200); // now cached as verified
    const rm = await s.removeClient('doomed');
    assert.equal(rm.code, 0, rm.stderr);
    const after = await s.request('GET', '/fhir/Patient/_history', { token: tok });
    bearer401(after, 'revoked');
    const again = await s.tokenRequest('doomed');
    assert.equal(again.status, 401);
    // re-registering the same id does not revive the old token
    await s.addClient('doomed', 'system/*.cruds');
    const revived = await s.request('GET', '/fhir/Patient/_history', { token: tok });
    assert.equal(revived.status, 401);
    const fresh = await s.token('doomed');
    assert.equal((await s.request('GET', '/fhir/Patient/_history', { token: fresh })).status, 200);
    // other clients were not affected
    assert.equal((await s.request('GET', '/fhir/Patient/_history', { token: full })).status, 200);
  });
});
