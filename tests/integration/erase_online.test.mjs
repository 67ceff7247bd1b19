// erase_online.test.mjs — `salus patient erase` next to a running server
// (docs/security.md, "Crypto-shredding"): the server has the victim's record
// key cached and serves a read load of other patients; the moment the command
// returns, every route answers nothing of the victim (410 on reads and on a
// write into the compartment), the other patients are intact and the load saw
// no failure; new patients written afterwards are wrapped under the new
// patient-key wrapping key (they read back after a restart, which loads only
// the keyring's keys), and no file of the data directory holds the victim's name.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { grepDir, salus, startServer } from './lib/server.mjs';

const NAME = 'Vrbnikowska'; // appears only in the victim's resources
let s, tok, victim, victimIds, other, otherIds;

const get = (p) => s.request('GET', p, { token: tok });
const bundleIds = (r) => (r.json?.entry ?? []).map((e) => `${e.resource?.resourceType}/${e.resource?.id}`);

async function patientWith(family, tag) {
  const p = await s.request('POST', '/fhir/Patient', {
    token: tok,
    body: { resourceType: 'Patient', name: [{ family, given: ['Ana'] }], birthDate: '1958-02-03', identifier: [{ system: 'urn:mrn', value: `MRN-${tag}` }] },
  });
  assert.equal(p.status, 201, p.body);
  const ids = [`Patient/${p.json.id}`];
  for (const res of [
    { resourceType: 'Observation', status: 'final', code: { text: `${family} weight` }, subject: { reference: `Patient/${p.json.id}` }, valueQuantity: { value: 70, unit: 'kg' } },
    { resourceType: 'Condition', subject: { reference: `Patient/${p.json.id}` }, code: { text: `${family} syndrome` } },
  ]) {
    const c = await s.request('POST', `/fhir/${res.resourceType}`, { token: tok, body: res });
    assert.equal(c.status, 201, c.body);
    ids.push(`${res.resourceType}/${c.json.id}`);
  }
  return { id: p.json.id, ids };
}

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  tok = await s.token('full');
  ({ id: victim, ids: victimIds } = await patientWith(NAME, 'VR-1'));
  ({ id: other, ids: otherIds } = await patientWith('Keptsson', 'KE-1'));
});

after(async () => {
  await s?.stop();
});

test('erase next to the running server: the patient is gone at once, others untouched', async () => {
  // the server has the victim's record key in its cache now
  for (const id of victimIds) assert.equal((await get(`/fhir/${id}`)).status, 200);
  // a read load on the other patient while the erase runs
  let stop = false;
  const failures = [];
  let reads = 0;
  const loader = (async () => {
    for (let i = 0; !stop; i++) {
      const r = await get(`/fhir/${otherIds[i % otherIds.length]}`);
      if (r.status === 200) reads++;
      else failures.push(`${r.status}`);
    }
  })();
  const r = await salus(['patient', 'erase', '--data', s.dir, '--id', victim, '--reason', 'entered-in-error', '--ticket', 'CHG-7']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /a server is running: erasing online/);
  assert.match(r.stdout, /record key destroyed, 3 resources removed; 1 other patient keys re-wrapped; KEK rotated/);
  // at once: no route yields the victim
  for (const id of victimIds) {
    const rd = await get(`/fhir/${id}`);
    assert.equal(rd.status, 410, `${id}: ${rd.status}`);
    assert.doesNotMatch(rd.body, new RegExp(NAME));
    assert.equal((await get(`/fhir/${id}/_history/1`)).status, 410, `vread ${id}`);
  }
  for (const p of [`/fhir/Patient?name=${NAME}`, '/fhir/Patient?identifier=urn:mrn|MRN-VR-1', `/fhir/Observation?subject=Patient/${victim}`,
    `/fhir/Patient/${victim}/$everything`, '/fhir/_history?_count=1000', `/fhir/Condition?_content=${NAME}`]) {
    const x = await get(p);
    assert.ok([200, 404, 410].includes(x.status), `${p}: ${x.status}`);
    const shown = x.status === 200 ? JSON.stringify(x.json.entry ?? []) : x.body;
    assert.doesNotMatch(shown, new RegExp(`${NAME}|${victim}`), `${p} shows the erased patient`);
  }
  // a write into the erased compartment: refused, even though the server had the key cached
  const w = await s.request('POST', '/fhir/Observation', {
    token: tok,
    body: { resourceType: 'Observation', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${victim}` } },
  });
  assert.equal(w.status, 410, w.body);
  const rp = await s.request('PUT', `/fhir/Patient/${victim}`, { token: tok, body: { resourceType: 'Patient', id: victim } });
  assert.equal(rp.status, 410, rp.body);
  stop = true;
  await loader;
  assert.deepEqual(failures, [], 'the other patient was served throughout');
  assert.ok(reads > 0);
  for (const id of otherIds) assert.equal((await get(`/fhir/${id}`)).status, 200, id);
  assert.match(s.log.join(''), /store\.patkey\.cache_wiped/);
});

test('patients created after the online erase survive a restart (new keys under the new wrapping key)', async () => {
  const fresh = await patientWith('Neuhaus', 'NE-1');
  for (const id of fresh.ids) assert.equal((await get(`/fhir/${id}`)).status, 200);
  await s.restart();
  tok = await s.token('full');
  for (const id of [...fresh.ids, ...otherIds]) assert.equal((await get(`/fhir/${id}`)).status, 200, id);
  for (const id of victimIds) assert.equal((await get(`/fhir/${id}`)).status, 410, id);
  // a second online erase with the same server running works as well (the successor of the successor)
  const r = await salus(['patient', 'erase', '--data', s.dir, '--id', fresh.id, '--reason', 'entered-in-error']);
  assert.equal(r.code, 0, r.stderr);
  for (const id of fresh.ids) assert.equal((await get(`/fhir/${id}`)).status, 410, id);
  const again = await patientWith('Drittmann', 'DR-1');
  await s.restart();
  tok = await s.token('full');
  for (const id of [...again.ids, ...otherIds]) assert.equal((await get(`/fhir/${id}`)).status, 200, id);
});

test('no file of the data directory holds the name; the erasure is audited', async () => {
  await s.halt();
  assert.deepEqual(grepDir(s.dir, NAME), []);
  assert.deepEqual(grepDir(s.dir, 'MRN-VR-1'), []);
  const r = await salus(['audit', 'export', '--data', s.dir], { maxBuffer: 1 << 28 });
  assert.equal(r.code, 0, r.stderr);
  const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const erase = events.filter((e) => (e.entity ?? []).some((x) => x.what?.reference === `Patient/${victim}`) &&
    JSON.stringify(e).includes('110100'));
  assert.equal(erase.length, 1);
  const q = Buffer.from(erase[0].entity.find((x) => x.query)?.query ?? '', 'base64').toString();
  assert.match(q, /action=patient-erase&reason=entered-in-error&ticket=CHG-7/);
  await s.restart();
});
