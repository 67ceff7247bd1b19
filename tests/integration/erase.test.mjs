// erase.test.mjs — crypto-shredding (`salus patient erase`, docs/security.md):
// load synthetic patients and one patient with a unique name, copy the data
// directory (a backup, without the KEK as the docs require), erase that
// patient, and check that no route yields their data (read, vread, history,
// search, compartment search, $everything), that the other patients are
// intact, that no file of the data directory contains their name, that the
// erasure is in the audit trail, and that restoring the old database (and,
// separately, the old key files) still yields nothing of them.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { grepDir, salus, startServer } from './lib/server.mjs';

const NAME = 'Quetzalbrookova'; // appears only in the victim's resources
let s, tok, victim, victimIds, others, backup;

const get = (p) => s.request('GET', p, { token: tok });
const bundleIds = (r) => (r.json?.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  tok = await s.token('full');
  // synthetic patients (salus gen: a transaction Bundle)
  const bundle = execFileSync(process.env.SALUS_BIN || '/work/main/build/salus', ['gen', '--patients', '3', '--seed', '7']);
  const r = await s.request('POST', '/fhir', { token: tok, body: bundle, headers: { 'content-type': 'application/fhir+json' } });
  assert.equal(r.status, 200, r.body);
  // the victim: a Patient, an update (history), an Observation, an Encounter, a Condition
  const p = await s.request('POST', '/fhir/Patient', {
    token: tok,
    body: { resourceType: 'Patient', name: [{ family: NAME, given: ['Ilse'] }], birthDate: '1961-04-17', identifier: [{ system: 'urn:mrn', value: 'MRN-QZ-1' }] },
  });
  assert.equal(p.status, 201, p.body);
  victim = p.json.id;
  const up = await s.request('PUT', `/fhir/Patient/${victim}`, {
    token: tok,
    body: { ...p.json, gender: 'female', meta: undefined },
  });
  assert.equal(up.status, 200, up.body);
  victimIds = [`Patient/${victim}`];
  for (const res of [
    { resourceType: 'Observation', status: 'final', code: { text: `${NAME} weight` }, subject: { reference: `Patient/${victim}` }, valueQuantity: { value: 71.5, unit: 'kg' }, note: [{ text: `${NAME} said hello` }] },
    { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' }, subject: { reference: `Patient/${victim}` } },
    { resourceType: 'Condition', subject: { reference: `Patient/${victim}` }, code: { text: `${NAME} syndrome` } },
  ]) {
    const c = await s.request('POST', `/fhir/${res.resourceType}`, { token: tok, body: res });
    assert.equal(c.status, 201, c.body);
    victimIds.push(`${res.resourceType}/${c.json.id}`);
  }
  // the others, and what $everything gives for each
  const ps = await get('/fhir/Patient?_count=100');
  others = [];
  for (const id of bundleIds(ps).filter((x) => x !== `Patient/${victim}`)) {
    const ev = await get(`/fhir/${id}/$everything?_count=1000`);
    assert.equal(ev.status, 200);
    others.push({ id, everything: bundleIds(ev).sort() });
  }
  assert.equal(others.length, 3);
  const ev = await get(`/fhir/Patient/${victim}/$everything?_count=1000`);
  assert.deepEqual(bundleIds(ev).sort(), [...victimIds].sort());
});

after(async () => {
  await s?.stop();
});

test('erase refuses without a reason code (erasing next to a running server: erase_online.test.mjs)', async () => {
  let r = await salus(['patient', 'erase', '--data', s.dir, '--id', victim]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--reason is required/);
  r = await salus(['patient', 'erase', '--data', s.dir, '--id', victim, '--reason', 'because I said so']);
  assert.equal(r.code, 2);
  assert.equal((await get(`/fhir/Patient/${victim}`)).status, 200, 'nothing was erased');
});

test('erase: every route answers nothing for the patient, others intact', async () => {
  await s.halt();
  // a backup of the data directory taken before the erase (without the KEK: docs/security.md)
  backup = path.join(s.tmp, 'backup');
  fs.cpSync(s.dir, backup, { recursive: true, filter: (src) => path.basename(src) !== 'kek.key' });
  const r = await salus(['patient', 'erase', '--data', s.dir, '--id', victim, '--reason', 'entered-in-error', '--ticket', 'CHG-42']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /record key destroyed, 4 resources removed/);
  await s.restart();
  tok = await s.token('full');

  for (const id of victimIds) {
    const rd = await get(`/fhir/${id}`);
    assert.equal(rd.status, 410, `${id}: ${rd.status}`);
    assert.doesNotMatch(rd.body, new RegExp(NAME));
    const vr = await get(`/fhir/${id}/_history/1`);
    assert.equal(vr.status, 410, `vread ${id}: ${vr.status}`);
    const hi = await get(`/fhir/${id}/_history`);
    assert.ok(hi.status === 410 || (hi.status === 200 && bundleIds(hi).length === 0), `history ${id}: ${hi.status} ${hi.body}`);
  }
  const routes = [
    `/fhir/Patient?name=${NAME}`,
    `/fhir/Patient?_id=${victim}`,
    `/fhir/Patient?identifier=urn:mrn|MRN-QZ-1`,
    `/fhir/Patient?birthdate=1961-04-17`,
    `/fhir/Observation?subject=Patient/${victim}`,
    `/fhir/Observation?_content=${NAME}`,
    `/fhir/Condition?patient=${victim}`,
    `/fhir/Patient/${victim}/Observation`,
    `/fhir/Patient/${victim}/$everything`,
    '/fhir/_history?_count=1000',
    '/fhir/Patient/_history?_count=1000',
    '/fhir/Observation/_history?_count=1000',
    '/fhir/Observation?_count=1000',
    '/fhir/Patient?_count=1000',
  ];
  for (const p of routes) {
    const x = await get(p);
    assert.ok([200, 404, 410].includes(x.status), `${p}: ${x.status}`);
    const shown = x.status === 200 ? JSON.stringify(x.json.entry ?? []) : x.body; // not the self link
    assert.doesNotMatch(shown, new RegExp(`${NAME}|${victim}`), `${p} shows the erased patient`);
    if (x.status === 200 && x.json.total !== undefined) assert.equal(x.json.total, bundleIds(x).length, `${p} total`);
    if (x.status === 200) for (const id of victimIds) assert.ok(!bundleIds(x).includes(id), `${p} lists ${id}`);
  }
  for (const o of others) {
    const ev = await get(`/fhir/${o.id}/$everything?_count=1000`);
    assert.equal(ev.status, 200);
    assert.deepEqual(bundleIds(ev).sort(), o.everything, `${o.id} changed`);
    assert.equal((await get(`/fhir/${o.id}`)).status, 200);
  }
  // a write into the erased compartment is refused
  const w = await s.request('POST', '/fhir/Observation', {
    token: tok,
    body: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${victim}` } },
  });
  assert.equal(w.status, 410, w.body);
});

test('no file of the data directory contains the name; the erasure is audited', async () => {
  await s.halt();
  assert.deepEqual(grepDir(s.dir, NAME), []);
  assert.deepEqual(grepDir(s.dir, 'MRN-QZ-1'), []);
  const r = await salus(['audit', 'export', '--data', s.dir], { maxBuffer: 1 << 28 });
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const erase = events.filter((e) => (e.entity ?? []).some((x) => x.what?.reference === `Patient/${victim}`) &&
    JSON.stringify(e).includes('110100'));
  assert.equal(erase.length, 1, 'one Application Activity event for the erasure');
  const q = Buffer.from(erase[0].entity.find((x) => x.query)?.query ?? '', 'base64').toString();
  assert.match(q, /action=patient-erase&reason=entered-in-error&ticket=CHG-42/);
  assert.doesNotMatch(JSON.stringify(erase[0]), new RegExp(NAME));
  await s.restart();
});

test('a database backup from before the erase, restored, yields nothing of the patient', async () => {
  await s.halt();
  for (const f of fs.readdirSync(s.dir).filter((f) => f.startsWith('salus.db'))) fs.rmSync(path.join(s.dir, f));
  for (const f of fs.readdirSync(backup).filter((f) => f.startsWith('salus.db')))
    fs.copyFileSync(path.join(backup, f), path.join(s.dir, f));
  await s.restart();
  tok = await s.token('full');
  for (const id of victimIds) assert.equal((await get(`/fhir/${id}`)).status, 410, id);
  const x = await get(`/fhir/Patient?name=${NAME}`);
  assert.equal(x.status, 200);
  assert.equal(bundleIds(x).length, 0);
  assert.doesNotMatch(JSON.stringify((await get('/fhir/_history?_count=1000')).json.entry), new RegExp(`${NAME}|${victim}`));
  for (const o of others) {
    const ev = await get(`/fhir/${o.id}/$everything?_count=1000`);
    assert.deepEqual(bundleIds(ev).sort(), o.everything, `${o.id} not restored`);
  }
});

test('the key files of the backup do not unlock with the current KEK', async () => {
  await s.halt();
  // the whole old directory, with today's KEK file (the only key kept apart from backups)
  const kek = fs.readFileSync(path.join(s.dir, 'keys', 'kek.key'), 'utf8');
  fs.writeFileSync(path.join(backup, 'keys', 'kek.key'), kek, { mode: 0o600 });
  let r = await salus(['reindex', '--data', backup]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /no key of the keyring's KEK version/);
  // and today's KEK bytes offered as the old version do not unwrap the old keyring
  const [magic, line] = kek.trim().split('\n');
  fs.writeFileSync(path.join(backup, 'keys', 'kek.key'), `${magic}\n1 ${line.split(' ')[1]}\n`, { mode: 0o600 });
  r = await salus(['reindex', '--data', backup]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /wrong key/);
  await s.restart();
});
