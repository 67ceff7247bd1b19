// cond_restricted.test.mjs — conditional interactions with tokens whose scopes carry SMART v2
// restrictions (docs/security.md "The access decision"): the matching of conditional criteria runs
// over every resource of the type (every patient's identifiers), which a restricted grant cannot
// evaluate, so conditional create (If-None-Exist), update, patch and delete, and ifNoneExist /
// conditional references in Bundles, are 403 with an OperationOutcome — and nothing is written.
// The same interactions by an unrestricted token work (the control).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isOutcome, startServer } from './lib/server.mjs';

const CAT = 'http://terminology.hl7.org/CodeSystem/observation-category';
const VS = `${CAT}|vital-signs`;
let s, full, restricted;

const obs = (cat, ident) => ({
  resourceType: 'Observation', status: 'final', identifier: [{ system: 'urn:test', value: ident }],
  category: [{ coding: [{ system: CAT, code: cat }] }], code: { text: 'pulse' },
});
const count = async (ident) => (await s.request('GET', `/fhir/Observation?identifier=urn:test|${ident}&_summary=count`,
  { token: full })).json.total;

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' },
    { id: 'vs', scope: `system/Observation.cruds?category=${VS}` }] });
  full = await s.token('full');
  restricted = await s.token('vs');
  const r = await s.request('POST', '/fhir/Observation', { token: full, body: obs('vital-signs', 'v1') });
  assert.equal(r.status, 201, r.body);
});
after(async () => {
  await s?.stop();
});

describe('a v2-restricted token (system/Observation.cruds?category=vital-signs)', () => {
  test('plain create inside the restriction works; outside it is 403', async () => {
    let r = await s.request('POST', '/fhir/Observation', { token: restricted, body: obs('vital-signs', 'v2') });
    assert.equal(r.status, 201, r.body);
    r = await s.request('POST', '/fhir/Observation', { token: restricted, body: obs('laboratory', 'l1') });
    assert.equal(r.status, 403, r.body);
  });

  test('conditional create (If-None-Exist): 403, nothing created', async () => {
    const r = await s.request('POST', '/fhir/Observation', { token: restricted, body: obs('vital-signs', 'v3'),
      headers: { 'if-none-exist': 'identifier=urn:test|v3', 'content-type': 'application/fhir+json' } });
    assert.equal(r.status, 403, r.body);
    assert.ok(isOutcome(r.json));
    assert.equal(await count('v3'), 0);
  });

  test('conditional update, patch and delete: 403, nothing changed', async () => {
    let r = await s.request('PUT', '/fhir/Observation?identifier=urn:test|v1', { token: restricted, body: obs('vital-signs', 'v1') });
    assert.equal(r.status, 403, r.body);
    assert.ok(isOutcome(r.json));
    r = await s.request('PUT', '/fhir/Observation?identifier=urn:test|v9', { token: restricted, body: obs('vital-signs', 'v9') });
    assert.equal(r.status, 403, 'no match would create: refused too');
    assert.equal(await count('v9'), 0);
    r = await s.request('PATCH', '/fhir/Observation?identifier=urn:test|v1', { token: restricted,
      headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/status', value: 'amended' }]) });
    assert.equal(r.status, 403, r.body);
    r = await s.request('DELETE', '/fhir/Observation?identifier=urn:test|v1', { token: restricted });
    assert.equal(r.status, 403, r.body);
    assert.ok(isOutcome(r.json));
    assert.equal(await count('v1'), 1);
    const cur = await s.request('GET', '/fhir/Observation?identifier=urn:test|v1', { token: full });
    assert.equal(cur.json.entry[0].resource.status, 'final');
  });

  test('Bundles: ifNoneExist and conditional references are refused; a transaction applies nothing', async () => {
    let r = await s.request('POST', '/fhir', { token: restricted, body: { resourceType: 'Bundle', type: 'batch', entry: [
      { resource: obs('vital-signs', 'b1'), request: { method: 'POST', url: 'Observation', ifNoneExist: 'identifier=urn:test|b1' } },
      { request: { method: 'DELETE', url: 'Observation?identifier=urn:test|v1' } },
    ] } });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json.entry.map((e) => e.response.status.slice(0, 3)), ['403', '403']);
    r = await s.request('POST', '/fhir', { token: restricted, body: { resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: 'urn:uuid:5b8f2b5e-2d8e-4a55-9a43-3c2e5f1f2a01', resource: obs('vital-signs', 't1'),
        request: { method: 'POST', url: 'Observation' } },
      { resource: { ...obs('vital-signs', 't2'), hasMember: [{ reference: 'Observation?identifier=urn:test|v1' }] },
        request: { method: 'POST', url: 'Observation' } },
    ] } });
    assert.equal(r.status, 403, r.body);
    assert.equal(await count('t1'), 0);
    assert.equal(await count('b1'), 0);
  });
});

describe('control: the same interactions with system/*.cruds', () => {
  test('conditional create, update and delete work', async () => {
    let r = await s.request('POST', '/fhir/Observation', { token: full, body: obs('vital-signs', 'c1'),
      headers: { 'if-none-exist': 'identifier=urn:test|c1', 'content-type': 'application/fhir+json' } });
    assert.equal(r.status, 201, r.body);
    r = await s.request('PUT', '/fhir/Observation?identifier=urn:test|c1', { token: full, body: obs('vital-signs', 'c1') });
    assert.equal(r.status, 200, r.body);
    r = await s.request('DELETE', '/fhir/Observation?identifier=urn:test|c1', { token: full });
    assert.ok(r.status === 200 || r.status === 204, r.body);
    assert.equal(await count('c1'), 0);
  });
});
