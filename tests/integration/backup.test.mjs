// backup.test.mjs — `salus backup` (docs/backup.md): an online backup taken while the server
// serves and writes is a complete, encrypted, verifiable copy; `backup verify` catches a flipped
// byte, a missing file and an added one; a restore needs the KEK, yields every resource written
// before the backup and none written after, and keeps the audit trail verifiable; after a patient
// erasure an older backup restored with the newer keys yields nothing of that patient.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { grepDir, salus, startServer } from './lib/server.mjs';

const KEEP = 'Vorblinskaya'; // only in the kept patient's resources
const VICTIM = 'Zwetschkenbaumer'; // only in the erased patient's resources
let s, tok, live, tmp, kept, victim;
const before_ids = [];

const get = (p) => s.request('GET', p, { token: tok });

async function create(body) {
  const r = await s.request('POST', `/fhir/${body.resourceType}`, { token: tok, body });
  assert.equal(r.status, 201, r.body);
  return r.json;
}

/** Serve another data directory in place of the current one (same port, TLS cert and keys). */
async function serveDir(dir) {
  await s.halt();
  s.dir = dir;
  await s.restart();
  tok = await s.token('full');
}

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  live = s.dir;
  tmp = s.tmp;
  tok = await s.token('full');
  const p = await create({ resourceType: 'Patient', name: [{ family: KEEP, given: ['Ottilie'] }], birthDate: '1953-09-21', identifier: [{ system: 'urn:mrn', value: 'MRN-VB-77' }] });
  kept = p.id;
  const v = await create({ resourceType: 'Patient', name: [{ family: VICTIM, given: ['Ruprecht'] }], birthDate: '1949-02-03' });
  victim = v.id;
  for (const [pid, name] of [[kept, KEEP], [victim, VICTIM]]) {
    const o = await create({ resourceType: 'Observation', status: 'final', code: { text: `${name} weight` }, subject: { reference: `Patient/${pid}` }, valueQuantity: { value: 70.25, unit: 'kg' } });
    before_ids.push(`Observation/${o.id}`);
  }
  before_ids.push(`Patient/${kept}`, `Patient/${victim}`);
});

after(async () => {
  if (s) {
    s.dir = live;
    await s.stop();
  }
});

test('an online backup while writes go on: complete, encrypted, audited', async () => {
  const b1 = path.join(tmp, 'b1');
  // writes keep going while the backup runs
  let writing = true;
  let written = 0;
  const writer = (async () => {
    while (writing) {
      await create({ resourceType: 'Observation', status: 'final', code: { text: 'load' }, subject: { reference: `Patient/${kept}` }, valueInteger: written });
      written++;
    }
  })();
  while (written < 20) await new Promise((r) => setTimeout(r, 10));
  const r = await salus(['backup', '--data', live, '--out', b1]);
  writing = false;
  await writer;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /KEK is not in it/);
  // the KEK never, everything else there
  assert.ok(!fs.existsSync(path.join(b1, 'keys', 'kek.key')));
  for (const f of ['salus.db', 'salus-audit.db', 'salus.ini', 'MANIFEST.json', 'keys/keyring.json', 'keys/patient-keys.db', 'keys/audit.key', 'keys/token.key', 'tls/cert.pem']) {
    assert.ok(fs.existsSync(path.join(b1, f)), f);
    assert.equal(fs.statSync(path.join(b1, f)).mode & 0o777, 0o600, f);
  }
  assert.equal(fs.statSync(b1).mode & 0o777, 0o700);
  // no readable PHI, not even the SQLite header
  for (const needle of [KEEP, VICTIM, '1953-09-21', 'MRN-VB-77']) assert.deepEqual(grepDir(b1, needle), [], needle);
  // the database copy is sealed page by page (the key database holds only wrapped keys, by design)
  assert.ok(!fs.readFileSync(path.join(b1, 'salus.db')).includes(Buffer.from('SQLite format 3')));
  assert.ok(!fs.readFileSync(path.join(b1, 'salus-audit.db')).includes(Buffer.from('SQLite format 3')));
  // the key files travel sealed under the keyring's file key, so a backup does not let anyone sign tokens
  for (const f of ['keys/token.key', 'keys/audit.key', 'keys/pepper.key']) {
    const text = fs.readFileSync(path.join(b1, f), 'utf8');
    assert.match(text, /^salus-sealed-v1\n/, f);
    assert.doesNotMatch(text, /salus-ed25519-seed-v1|salus-pepper-v1/, f);
  }
  // a backup never overwrites
  const again = await salus(['backup', '--data', live, '--out', b1]);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists/);
  // recorded in the audit trail, which still verifies (the CLI appended next to the server)
  const ex = await salus(['audit', 'export', '--data', live], { maxBuffer: 1 << 28 });
  assert.equal(ex.code, 0, ex.stderr);
  const queries = ex.stdout.trim().split('\n').map((l) => JSON.parse(l))
    .filter((e) => JSON.stringify(e).includes('110100'))
    .map((e) => Buffer.from(e.entity?.find((x) => x.query)?.query ?? '', 'base64').toString());
  assert.equal(queries.filter((q) => /^action=backup&files=\d+$/.test(q)).length, 1, `backup events: ${queries}`);
  const ver = await salus(['audit', 'verify', '--data', live]);
  assert.equal(ver.code, 0, ver.stdout + ver.stderr);
  const ok = await salus(['backup', 'verify', b1]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('backup verify names a flipped byte, a missing file and an added file', async () => {
  const b1 = path.join(tmp, 'b1');
  const bad = path.join(tmp, 'bad');
  fs.cpSync(b1, bad, { recursive: true });
  const db = path.join(bad, 'salus.db');
  const buf = fs.readFileSync(db);
  buf[5000] ^= 0x01;
  fs.writeFileSync(db, buf);
  let r = await salus(['backup', 'verify', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /salus\.db does not match/);
  buf[5000] ^= 0x01;
  fs.writeFileSync(db, buf);
  fs.renameSync(path.join(bad, 'keys', 'token.key'), path.join(tmp, 'token.key.moved'));
  r = await salus(['backup', 'verify', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /keys\/token\.key is missing/);
  fs.renameSync(path.join(tmp, 'token.key.moved'), path.join(bad, 'keys', 'token.key'));
  fs.writeFileSync(path.join(bad, 'extra.txt'), 'x');
  r = await salus(['backup', 'verify', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /extra\.txt is not in the manifest/);
  fs.rmSync(path.join(bad, 'MANIFEST.json'));
  r = await salus(['backup', 'verify', bad]);
  assert.equal(r.code, 2);
  // a damaged backup is not restored
  r = await salus(['backup', 'restore', bad, '--data', path.join(tmp, 'never')]);
  assert.equal(r.code, 2);
  assert.ok(!fs.existsSync(path.join(tmp, 'never')));
});

test('restore needs the KEK and yields what was written before the backup, not after', async () => {
  const b1 = path.join(tmp, 'b1');
  const after1 = await create({ resourceType: 'Patient', name: [{ family: 'Afterwards' }] });
  const snapshot = {};
  for (const id of before_ids) {
    const r = await get(`/fhir/${id}`);
    assert.equal(r.status, 200);
    snapshot[id] = r.json;
  }
  const r1 = path.join(tmp, 'r1');
  let r = await salus(['backup', 'restore', b1, '--data', r1]);
  assert.equal(r.code, 1, 'no KEK: refused');
  assert.match(r.stderr, /KEK/);
  assert.ok(!fs.existsSync(r1), 'a failed restore leaves nothing');
  r = await salus(['backup', 'restore', b1, '--data', r1, '--kek-file', path.join(live, 'keys', 'kek.key')]);
  assert.equal(r.code, 0, r.stderr);
  await serveDir(r1);
  for (const id of before_ids) {
    const g = await get(`/fhir/${id}`);
    assert.equal(g.status, 200, id);
    assert.deepEqual(g.json, snapshot[id], id);
  }
  assert.equal((await get(`/fhir/Patient/${after1.id}`)).status, 404);
  const ver = await salus(['audit', 'verify', '--data', r1]);
  assert.equal(ver.code, 0, ver.stdout + ver.stderr);
  await serveDir(live);
});

test('after an erasure an older backup restored with the newer keys yields nothing of the patient', async () => {
  const b1 = path.join(tmp, 'b1');
  await s.halt();
  const er = await salus(['patient', 'erase', '--data', live, '--id', victim, '--reason', 'right-to-erasure']);
  assert.equal(er.code, 0, er.stderr);
  const b2 = path.join(tmp, 'b2');
  let r = await salus(['backup', '--data', live, '--out', b2]);
  assert.equal(r.code, 0, r.stderr);
  const kek = path.join(live, 'keys', 'kek.key');
  // the old keyring does not open with the rotated KEK
  r = await salus(['backup', 'restore', b1, '--data', path.join(tmp, 'r2'), '--kek-file', kek]);
  assert.equal(r.code, 1);
  assert.ok(!fs.existsSync(path.join(tmp, 'r2')));
  // the old database with the keys of the newer backup: the erasure is applied again
  r = await salus(['backup', 'restore', b1, '--data', path.join(tmp, 'r2'), '--kek-file', kek, '--keys-from', b2]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /1 erased patients recorded, [1-9]\d* resources removed again/);
  await serveDir(path.join(tmp, 'r2'));
  assert.equal((await get(`/fhir/Patient/${victim}`)).status, 410);
  const search = await get(`/fhir/Observation?subject=Patient/${victim}`);
  assert.equal(search.status, 200);
  assert.equal((search.json.entry ?? []).length, 0);
  assert.equal((await get(`/fhir/Patient/${kept}`)).status, 200);
  assert.deepEqual(grepDir(path.join(tmp, 'r2'), VICTIM), []);
});

test('key files of an older data directory: accepted plain, sealed by salus key seal-files', async () => {
  await s.halt();
  s.dir = live;
  const keyFile = path.join(live, 'keys', 'token.key');
  fs.rmSync(keyFile);
  fs.writeFileSync(keyFile, `salus-ed25519-seed-v1\n${Buffer.alloc(32, 7).toString('base64url')}\n`, { mode: 0o600 });
  let st = await salus(['key', 'status', '--data', live]);
  assert.match(st.stdout, /token\.key: NOT sealed/);
  await s.restart();
  tok = await s.token('full');
  assert.equal((await get(`/fhir/Patient/${kept}`)).status, 200);
  await s.halt();
  const r = await salus(['key', 'seal-files', '--data', live]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /token\.key: sealed/);
  assert.match(r.stdout, /audit\.key: already sealed/);
  assert.match(fs.readFileSync(keyFile, 'utf8'), /^salus-sealed-v1\n/);
  st = await salus(['key', 'status', '--data', live]);
  assert.doesNotMatch(st.stdout, /NOT sealed/);
  await s.restart();
  const t2 = await s.token('full');
  // the same key, now sealed: a token issued before still verifies
  assert.equal((await s.request('GET', `/fhir/Patient/${kept}`, { token: tok })).status, 200);
  assert.equal((await s.request('GET', `/fhir/Patient/${kept}`, { token: t2 })).status, 200);
  // a sealed key file moved onto another name does not open: the server refuses to start
  await s.halt();
  fs.copyFileSync(path.join(live, 'keys', 'audit.key'), keyFile);
  await assert.rejects(s.restart(), /token key/);
});
