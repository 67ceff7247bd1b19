// audit_proof.test.mjs — the audit trail is checkable end to end over HTTPS, with Node's own SHA-256
// and the RFC 9162 verification algorithms (docs/audit.md, "Verifying independently"): the body of
// GET /fhir/AuditEvent/{i} is the leaf (SHA-256(0x00 || body) is the leafHash of
// /audit/proof/inclusion), every inclusion proof verifies against the root of /audit/checkpoint, a
// consistency proof links two checkpoints, and damaged proofs do not verify.  Events are stored in a
// compact form on disk (src/store/audit_codec.h): this checks that nothing of it shows through.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, test } from 'node:test';
import { DEFAULT_CLIENTS, startServer } from './lib/server.mjs';

let s, full, auditor;
before(async () => {
  s = await startServer({ clients: [...DEFAULT_CLIENTS, { id: 'auditor', scope: 'system/AuditEvent.rs' }] });
  full = await s.token('full');
  auditor = await s.token('auditor');
});
after(async () => {
  await s?.stop();
});

const sha = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const nodeHash = (l, r) => sha(Buffer.from([1]), l, r);
const unb64 = (x) => Buffer.from(x, 'base64');

// RFC 9162 §2.1.3.2
function verifyInclusion(index, size, leaf, proof, root) {
  if (index >= size) return false;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else r = nodeHash(r, p);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

// RFC 9162 §2.1.4.2
function verifyConsistency(size1, size2, root1, root2, proof) {
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (size1 === 0 || size1 > size2 || proof.length === 0) return false;
  let path = [...proof];
  if ((size1 & (size1 - 1)) === 0) path = [root1, ...path];
  let fn = size1 - 1, sn = size2 - 1;
  while (fn % 2 === 1) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) (fn = Math.floor(fn / 2)), (sn = Math.floor(sn / 2));
    } else sr = nodeHash(sr, c);
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(root1) && sr.equals(root2);
}

async function checkpoint() {
  const r = await s.request('GET', '/audit/checkpoint', { token: auditor });
  assert.equal(r.status, 200, r.body);
  return { size: r.json.size, root: unb64(r.json.root) };
}

async function someTraffic(n) {
  const c = await s.request('POST', '/fhir/Patient', {
    token: full,
    body: { resourceType: 'Patient', name: [{ family: 'Proof', given: ['Ada'] }], gender: 'female' },
  });
  assert.equal(c.status, 201, c.body);
  const id = c.json.id;
  for (let i = 0; i < n; i++) {
    const r = await s.request('GET', i % 3 === 2 ? `/fhir/Patient?name=Proof&_count=${i}` : `/fhir/Patient/${id}`, {
      token: full,
    });
    assert.equal(r.status, 200, r.body);
  }
  assert.equal((await s.request('GET', '/fhir/Patient/no-such-one', { token: full })).status, 404);
}

test('every event read through the API is the leaf its inclusion proof commits to', async () => {
  await someTraffic(12);
  const cp = await checkpoint();
  assert.ok(cp.size >= 14, `size ${cp.size}`);
  for (let i = 0; i < cp.size; i++) {
    const ev = await s.request('GET', `/fhir/AuditEvent/${i}`, { token: auditor });
    assert.equal(ev.status, 200, ev.body);
    assert.equal(ev.json.resourceType, 'AuditEvent');
    assert.equal(ev.json.id, String(i));
    assert.ok(ev.raw.toString('utf8').startsWith(`{"resourceType":"AuditEvent","id":"${i}",`));
    assert.ok(!ev.raw.some((b) => b < 0x20), 'no control bytes in the event text');
    const leaf = sha(Buffer.from([0]), ev.raw);
    const p = await s.request('GET', `/audit/proof/inclusion?index=${i}&size=${cp.size}`, { token: auditor });
    assert.equal(p.status, 200, p.body);
    assert.equal(p.json.leafHash, leaf.toString('base64'), `leaf ${i}`);
    assert.equal(p.json.root, cp.root.toString('base64'));
    const proof = (p.json.proof || []).map(unb64);
    assert.ok(verifyInclusion(i, cp.size, leaf, proof, cp.root), `inclusion ${i} in ${cp.size}`);
    // damaged: another leaf, another index, a flipped proof hash
    const other = sha(Buffer.from([0]), Buffer.concat([ev.raw, Buffer.from(' ')]));
    assert.ok(!verifyInclusion(i, cp.size, other, proof, cp.root));
    if (proof.length) {
      const bad = proof.map((h, k) => (k === 0 ? Buffer.from(h.map((x) => x ^ 1)) : h));
      assert.ok(!verifyInclusion(i, cp.size, leaf, bad, cp.root));
    }
  }
  // the search answer carries the same texts
  const page = await s.request('GET', '/fhir/AuditEvent?_count=1000&_sort=date', { token: auditor });
  assert.equal(page.status, 200, page.body);
  for (const e of page.json.entry) {
    const one = await s.request('GET', `/fhir/AuditEvent/${e.resource.id}`, { token: auditor });
    assert.deepEqual(e.resource, one.json);
  }
});

test('a consistency proof links an earlier checkpoint to a later one', async () => {
  const a = await checkpoint();
  await someTraffic(9);
  const b = await checkpoint();
  assert.ok(b.size > a.size);
  const p = await s.request('GET', `/audit/proof/consistency?from=${a.size}&to=${b.size}`, { token: auditor });
  assert.equal(p.status, 200, p.body);
  assert.equal(p.json.root1, a.root.toString('base64'));
  assert.equal(p.json.root2, b.root.toString('base64'));
  const proof = (p.json.proof || []).map(unb64);
  assert.ok(verifyConsistency(a.size, b.size, a.root, b.root, proof));
  assert.ok(!verifyConsistency(a.size, b.size, b.root, a.root, proof));
  assert.ok(!verifyConsistency(a.size, b.size, a.root, b.root, proof.slice(1)));
});
