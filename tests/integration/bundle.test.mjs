// bundle.test.mjs — transactions (all or nothing, urn:uuid rewriting, spec
// order, raw-text fidelity), batch per-entry errors, conditional
// create/update/delete/read and JSON Patch, against the real binary.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isOutcome, startServer } from './lib/server.mjs';

let s;
let tok;
before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }, { id: 'pat', scope: 'system/Patient.cruds' }] });
  tok = await s.token('full');
});
after(async () => {
  await s?.stop();
});

const post = (body, headers = {}, t = tok) =>
  s.request('POST', '/fhir', { token: t, headers: { 'content-type': 'application/fhir+json', ...headers }, body });
const U1 = 'urn:uuid:6b2f4f0e-4d55-4b0e-9d3b-7e1a3d6c0001';

describe('transaction', () => {
  test('urn:uuid references are rewritten and decimals keep their spelling', async () => {
    const text = `{"resourceType":"Bundle","type":"transaction","entry":[
      {"fullUrl":"urn:uuid:6b2f4f0e-4d55-4b0e-9d3b-7e1a3d6c0002","resource":{"resourceType":"Observation","status":"final",
        "code":{"text":"x"},"valueQuantity":{"value":1.50},"subject":{"reference":"${U1}"}},"request":{"method":"POST","url":"Observation"}},
      {"fullUrl":"${U1}","resource":{"resourceType":"Patient","identifier":[{"system":"urn:s","value":"tx-1"}]},"request":{"method":"POST","url":"Patient"}}]}`;
    const r = await post(text);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.type, 'transaction-response');
    assert.equal(r.json.entry[0].response.status, '201 Created');
    const obsLoc = r.json.entry[0].response.location;
    const patLoc = r.json.entry[1].response.location;
    const obs = await s.request('GET', `/fhir/${obsLoc.split('/_history')[0]}`, { token: tok });
    assert.equal(obs.status, 200);
    assert.match(obs.body, /"value":1\.50/);
    assert.equal(obs.json.subject.reference, patLoc.split('/_history')[0]);
    const pat = await s.request('GET', `/fhir/${obs.json.subject.reference}`, { token: tok });
    assert.equal(pat.status, 200);
  });

  test('all or nothing: a failing entry stores nothing', async () => {
    const before1 = await s.request('GET', '/fhir/Patient?_count=0', { token: tok });
    const r = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Patient', active: true }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Patient', id: 'x1' }, request: { method: 'PUT', url: 'Patient/x1' }, },
        { request: { method: 'DELETE', url: 'Patient/nope' } },
        { resource: { resourceType: 'Patient', id: 'x2' }, request: { method: 'PUT', url: 'Patient/x2', ifMatch: 'W/"7"' } },
      ],
    });
    assert.equal(r.status, 412, r.body);
    assert.ok(isOutcome(r.json));
    const after1 = await s.request('GET', '/fhir/Patient?_count=0', { token: tok });
    assert.equal(after1.json.total, before1.json.total);
    assert.equal((await s.request('GET', '/fhir/Patient/x1', { token: tok })).status, 404);
  });

  test('reads after writes see the writes; ifNoneExist', async () => {
    const r = await post({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { request: { method: 'GET', url: 'Patient/ord1' } },
        { resource: { resourceType: 'Patient', id: 'ord1' }, request: { method: 'PUT', url: 'Patient/ord1' } },
        { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient', ifNoneExist: 'identifier=urn:s|tx-1' } },
      ],
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.entry[0].response.status, '200 OK');
    assert.equal(r.json.entry[0].resource.id, 'ord1');
    assert.equal(r.json.entry[2].response.status, '200 OK');
  });

  test('scopes are checked per entry', async () => {
    const pt = await s.token('pat');
    const r = await post({ resourceType: 'Bundle', type: 'transaction', entry: [
      { resource: { resourceType: 'Observation', status: 'final', code: { text: 'x' } }, request: { method: 'POST', url: 'Observation' } }] }, {}, pt);
    assert.equal(r.status, 403);
  });
});

describe('batch', () => {
  test('entries are independent; errors per entry', async () => {
    const r = await post({ resourceType: 'Bundle', type: 'batch', entry: [
      { resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
      { resource: { resourceType: 'Observation' }, request: { method: 'POST', url: 'Patient' } },
      { request: { method: 'GET', url: 'Patient/does-not-exist' } }] });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.type, 'batch-response');
    assert.equal(r.json.entry[0].response.status, '201 Created');
    assert.equal(r.json.entry[1].response.status, '400 Bad Request');
    assert.ok(isOutcome(r.json.entry[1].response.outcome));
    assert.equal(r.json.entry[2].response.status, '404 Not Found');
  });
});

describe('conditional operations', () => {
  const h = { 'content-type': 'application/fhir+json' };
  test('create, update, delete, read', async () => {
    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:c', value: 'c-1' }] };
    const c1 = await s.request('POST', '/fhir/Patient', { token: tok, body, headers: { ...h, 'if-none-exist': 'identifier=urn:c|c-1' } });
    assert.equal(c1.status, 201);
    const c2 = await s.request('POST', '/fhir/Patient', { token: tok, body, headers: { ...h, 'if-none-exist': 'identifier=urn:c|c-1' } });
    assert.equal(c2.status, 200);
    assert.equal(c2.json.id, c1.json.id);
    const u = await s.request('PUT', '/fhir/Patient?identifier=urn:c|c-1', { token: tok, body: { ...body, active: true }, headers: h });
    assert.equal(u.status, 200, u.body);
    assert.equal(u.json.id, c1.json.id);
    const rd = await s.request('GET', `/fhir/Patient/${c1.json.id}`, { token: tok, headers: { 'if-none-match': 'W/"2"' } });
    assert.equal(rd.status, 304);
    const rd2 = await s.request('GET', `/fhir/Patient/${c1.json.id}`, { token: tok, headers: { 'if-modified-since': u.headers['last-modified'] } });
    assert.equal(rd2.status, 304);
    await s.request('POST', '/fhir/Patient', { token: tok, body, headers: h });
    const d = await s.request('DELETE', '/fhir/Patient?identifier=urn:c|c-1', { token: tok });
    assert.equal(d.status, 412);
    const d0 = await s.request('DELETE', '/fhir/Patient?identifier=urn:c|none', { token: tok });
    assert.equal(d0.status, 200);
  });
});

describe('PATCH', () => {
  test('ops, If-Match, failures', async () => {
    const c = await s.request('POST', '/fhir/Observation', { token: tok, headers: { 'content-type': 'application/fhir+json' },
      body: '{"resourceType":"Observation","status":"preliminary","code":{"text":"t"},"valueQuantity":{"value":2.50}}' });
    const url = `/fhir/Observation/${c.json.id}`;
    const ph = { 'content-type': 'application/json-patch+json' };
    const p = await s.request('PATCH', url, { token: tok, headers: { ...ph, 'if-match': 'W/"1"' }, body: JSON.stringify([
      { op: 'test', path: '/status', value: 'preliminary' },
      { op: 'replace', path: '/status', value: 'final' },
      { op: 'add', path: '/category', value: [{ text: 'a' }] },
      { op: 'add', path: '/category/-', value: { text: 'b' } },
      { op: 'copy', from: '/code', path: '/note' }, { op: 'remove', path: '/note' }]) });
    assert.equal(p.status, 200, p.body);
    assert.equal(p.json.status, 'final');
    assert.deepEqual(p.json.category.map((x) => x.text), ['a', 'b']);
    assert.match(p.body, /"value":2\.50/); // untouched members keep their text
    const bad = await s.request('PATCH', url, { token: tok, headers: ph, body: '[{"op":"test","path":"/status","value":"x"}]' });
    assert.equal(bad.status, 422);
    const stale = await s.request('PATCH', url, { token: tok, headers: { ...ph, 'if-match': 'W/"1"' }, body: '[]' });
    assert.equal(stale.status, 412);
    const idp = await s.request('PATCH', url, { token: tok, headers: ph, body: '[{"op":"replace","path":"/id","value":"zz"}]' });
    assert.equal(idp.status, 422);
    const mal = await s.request('PATCH', url, { token: tok, headers: ph, body: '{"op":"add"}' });
    assert.equal(mal.status, 400);
  });

  // FHIRPath Patch (R4 fhirpatch.html): a Parameters body with Content-Type application/fhir+json
  const op = (type, path, more = []) => ({ name: 'operation', part: [
    { name: 'type', valueCode: type }, { name: 'path', valueString: path }, ...more] });
  const params = (...ops) => JSON.stringify({ resourceType: 'Parameters', parameter: ops });
  const fh = { 'content-type': 'application/fhir+json' };

  test('FHIRPath Patch: every operation type, validated, untouched decimals keep their text', async () => {
    const c = await s.request('POST', '/fhir/Observation', { token: tok, headers: fh,
      body: '{"resourceType":"Observation","status":"preliminary","code":{"text":"t"},"valueQuantity":{"value":2.50},' +
        '"category":[{"text":"a"},{"text":"b"}],"note":[{"text":"n1"}]}' });
    assert.equal(c.status, 201, c.body);
    const url = `/fhir/Observation/${c.json.id}`;
    const p = await s.request('PATCH', url, { token: tok, headers: { ...fh, 'if-match': 'W/"1"' }, body: params(
      op('replace', 'Observation.status', [{ name: 'value', valueCode: 'final' }]),
      op('add', 'Observation', [{ name: 'name', valueString: 'category' }, { name: 'value', valueCodeableConcept: { text: 'c' } }]),
      op('insert', 'Observation.category', [{ name: 'index', valueInteger: 0 }, { name: 'value', valueCodeableConcept: { text: 'z' } }]),
      op('move', 'Observation.category', [{ name: 'source', valueInteger: 0 }, { name: 'destination', valueInteger: 3 }]),
      op('delete', 'Observation.note'),
      op('add', 'Observation', [{ name: 'name', valueString: 'interpretation' }, { name: 'value', part: [
        { name: 'text', valueString: 'high' }] }])) });
    assert.equal(p.status, 200, p.body);
    assert.equal(p.json.status, 'final');
    assert.deepEqual(p.json.category.map((x) => x.text), ['a', 'b', 'c', 'z']);
    assert.equal(p.json.note, undefined);
    assert.deepEqual(p.json.interpretation, [{ text: 'high' }]);
    assert.match(p.body, /"value":2\.50/);
    assert.equal(p.json.meta.versionId, '2');
    // a choice element changes type
    const q = await s.request('PATCH', url, { token: tok, headers: fh, body: params(
      op('replace', 'Observation.value', [{ name: 'value', valueString: 'positive' }])) });
    assert.equal(q.status, 200, q.body);
    assert.equal(q.json.valueString, 'positive');
    assert.equal(q.json.valueQuantity, undefined);
    // the result is validated as an update: a wrong type is refused and nothing changes
    const bad = await s.request('PATCH', url, { token: tok, headers: fh, body: params(
      op('replace', 'Observation.status', [{ name: 'value', valueBoolean: true }])) });
    assert.equal(bad.status, 400, bad.body);
    assert.ok(isOutcome(bad.json));
    // cannot apply: 422; malformed: 400; a JSON Patch array sent as fhir+json: 400
    const two = await s.request('PATCH', url, { token: tok, headers: fh, body: params(op('delete', 'Observation.category')) });
    assert.equal(two.status, 422, two.body);
    const mal = await s.request('PATCH', url, { token: tok, headers: fh, body: params(op('frob', 'Observation')) });
    assert.equal(mal.status, 400, mal.body);
    const arr = await s.request('PATCH', url, { token: tok, headers: fh, body: '[{"op":"remove","path":"/note"}]' });
    assert.equal(arr.status, 400, arr.body);
    const now = await s.request('GET', url, { token: tok });
    assert.equal(now.json.meta.versionId, '3');
    assert.equal(now.json.status, 'final');
  });

  test('FHIRPath Patch in a transaction (Parameters entry) and in a batch', async () => {
    const c = await s.request('POST', '/fhir/Patient', { token: tok, headers: fh, body: '{"resourceType":"Patient","active":true}' });
    const id = c.json.id;
    const entry = (ops) => ({ resource: JSON.parse(params(...ops)), request: { method: 'PATCH', url: `Patient/${id}` } });
    const t = await post({ resourceType: 'Bundle', type: 'transaction', entry: [
      entry([op('replace', 'Patient.active', [{ name: 'value', valueBoolean: false }])]),
      { resource: { resourceType: 'Patient', active: true }, request: { method: 'POST', url: 'Patient' } }] });
    assert.equal(t.status, 200, t.body);
    assert.equal((await s.request('GET', `/fhir/Patient/${id}`, { token: tok })).json.active, false);
    const b = await post({ resourceType: 'Bundle', type: 'batch', entry: [
      entry([op('add', 'Patient', [{ name: 'name', valueString: 'gender' }, { name: 'value', valueCode: 'female' }])]),
      entry([op('delete', 'Patient.name.given')]),
      entry([op('frob', 'Patient')])] });
    assert.equal(b.status, 200, b.body);
    assert.match(b.json.entry[0].response.status, /^200/);
    assert.match(b.json.entry[1].response.status, /^200/);
    assert.match(b.json.entry[2].response.status, /^400/);
    assert.equal((await s.request('GET', `/fhir/Patient/${id}`, { token: tok })).json.gender, 'female');
  });
});
