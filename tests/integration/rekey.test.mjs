// rekey.test.mjs — online `salus key rekey-data` (docs/security.md, "Online rekey"):
// while the server serves a continuous write and read load, the data is moved
// to the data key the server prepared at start-up; nothing fails, everything
// written reads back, `salus key status` shows the new key, and every page of
// the database and of its WAL is under it.  Then a rekey killed with SIGKILL
// in the middle leaves the server serving, and a second run resumes and
// finishes.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { SALUS_BIN, salus, startServer } from './lib/server.mjs';

const PAGE = 4096;
const RES = 48;
let s, tok, patients;

/** Pages of salus.db, salus-audit.db and the frames of their WALs per key id (raw reserved bytes, docs/security.md "Page format"). */
function keyIds(dir) {
  const count = {};
  const add = (buf, off) => {
    if (off + PAGE > buf.length) return;
    const r = off + PAGE - RES;
    // a hole (a page whose frames are not checkpointed yet: zeros) holds nothing
    if (buf.subarray(off, off + PAGE).every((b) => b === 0)) return;
    // format 1: XChaCha20-Poly1305, 2: AES-256-GCM
    const id = buf[r] === 1 || buf[r] === 2 ? buf.readUInt32LE(r + 4) : 'unsealed';
    count[id] = (count[id] ?? 0) + 1;
  };
  // the resource database and the audit database (docs/audit.md "Where the trail is stored")
  for (const name of ['salus.db', 'salus-audit.db']) {
    const db = fs.readFileSync(path.join(dir, name));
    for (let off = 0; off + PAGE <= db.length; off += PAGE) {
      if (off / PAGE + 1 === 0x40000000 / PAGE + 1) continue; // the lock-byte page (never written)
      add(db, off);
    }
    const walPath = path.join(dir, `${name}-wal`);
    if (fs.existsSync(walPath)) {
      const wal = fs.readFileSync(walPath);
      for (let off = 32 + 24; off + PAGE <= wal.length; off += 24 + PAGE) add(wal, off);
    }
  }
  return count;
}

/** Wrapping-key ids of the live patient keys (keys/patient-keys.db is plain SQLite: wrapped keys only), and the keyring's PWK ids. */
function patientKeyWraps(dir) {
  const rows = execFileSync('sqlite3', [path.join(dir, 'keys', 'patient-keys.db'), 'SELECT DISTINCT wrap_id FROM patient_key WHERE state=1']).toString().trim();
  const ring = JSON.parse(fs.readFileSync(path.join(dir, 'keys', 'keyring.json'), 'utf8'));
  return { rows: rows.split('\n').filter(Boolean).map(Number), keyring: (ring.pwks ?? []).map((p) => p.id) };
}

async function status() {
  const r = await salus(['key', 'status', '--data', s.dir]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Writers and readers against the server until stop(); every answer is checked. */
function load() {
  const st = { stop: false, created: [], failures: [], reads: 0 };
  const writer = async (w) => {
    for (let i = 0; !st.stop; i++) {
      const pid = patients[(w * 7 + i) % patients.length];
      const r = await s.request('POST', '/fhir/Observation', {
        token: tok,
        body: { resourceType: 'Observation', status: 'final', code: { text: `load ${w}-${i}` }, subject: { reference: `Patient/${pid}` }, valueQuantity: { value: i, unit: 'kg' } },
      });
      if (r.status === 201) st.created.push(r.json.id);
      else st.failures.push(`POST ${r.status} ${r.body.slice(0, 200)}`);
    }
  };
  const reader = async (k) => {
    for (let i = 0; !st.stop; i++) {
      const useNew = st.created.length && i % 2;
      const p = useNew ? `/fhir/Observation/${st.created[(i * 13 + k) % st.created.length]}` : `/fhir/Patient/${patients[(i + k) % patients.length]}`;
      const r = await s.request('GET', p, { token: tok });
      if (r.status === 200) st.reads++;
      else st.failures.push(`GET ${p} ${r.status} ${r.body.slice(0, 200)}`);
      if (i % 20 === 0) {
        const q = await s.request('GET', `/fhir/Observation?subject=Patient/${patients[i % patients.length]}&_count=5`, { token: tok });
        if (q.status !== 200) st.failures.push(`search ${q.status}`);
      }
    }
  };
  st.done = Promise.all([writer(0), writer(1), reader(0), reader(1)]);
  st.halt = async () => {
    st.stop = true;
    await st.done;
    return st;
  };
  return st;
}

async function allReadBack(ids) {
  for (const id of ids) {
    const r = await s.request('GET', `/fhir/Observation/${id}`, { token: tok });
    assert.equal(r.status, 200, `Observation/${id}: ${r.status}`);
  }
}

before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  tok = await s.token('full');
  // enough data for many batches of 256 pages
  const bundle = execFileSync(SALUS_BIN, ['gen', '--patients', '40', '--seed', '11'], { maxBuffer: 1 << 28 });
  const r = await s.request('POST', '/fhir', { token: tok, body: bundle, headers: { 'content-type': 'application/fhir+json' }, timeoutMs: 120000 });
  assert.equal(r.status, 200, r.body.slice(0, 500));
  const ps = await s.request('GET', '/fhir/Patient?_count=100', { token: tok });
  patients = ps.json.entry.map((e) => e.resource.id);
  assert.equal(patients.length, 40);
});

after(async () => {
  await s?.stop();
});

test('serve prepares the next data key; rekey-data runs online under a read/write load', async () => {
  let st = await status();
  assert.match(st, /id 1 {2}active/);
  assert.match(st, /id 2 {2}pending/, st);
  const before = keyIds(s.dir);
  assert.ok(before[1] > 1000, `a database of many pages: ${JSON.stringify(before)}`);
  assert.equal(before[2], undefined);

  const l = load();
  await new Promise((r) => setTimeout(r, 500));
  const r = await salus(['key', 'rekey-data', '--data', s.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /a server is running: rekeying online to data key 2/);
  assert.match(r.stdout, /every page is under data key 2/);
  assert.match(r.stdout, /\d+ patient keys re-wrapped under a new wrapping key/);
  await new Promise((res) => setTimeout(res, 500)); // the server keeps writing, under key 2
  const res = await l.halt();
  assert.deepEqual(res.failures, [], 'no request failed during the rekey');
  assert.ok(res.created.length > 10 && res.reads > 10, `load ran: ${res.created.length} writes, ${res.reads} reads`);
  await allReadBack(res.created);
  assert.match(s.log.join(''), /store\.crypt\.write_key id=2 from=1/);

  st = await status();
  assert.match(st, /data keys \(active 2\)/);
  assert.match(st, /id 1 {2}retired/);
  assert.match(st, /id 2 {2}active/);
  assert.doesNotMatch(st, /rekey in progress/);
  // the patient key database moved too: one wrapping key left, every live key under it
  assert.deepEqual(patientKeyWraps(s.dir), { rows: [2], keyring: [2] });
  // every page and WAL frame is under key 2, now and after the server checkpointed on exit
  assert.deepEqual(Object.keys(keyIds(s.dir)), ['2'], JSON.stringify(keyIds(s.dir)));
  await s.halt();
  assert.deepEqual(Object.keys(keyIds(s.dir)), ['2'], JSON.stringify(keyIds(s.dir)));
  await s.restart();
  tok = await s.token('full');
  await allReadBack(res.created.slice(0, 50));
});

test('kill -9 in the middle of an online rekey: the server keeps serving, a new run resumes', async () => {
  assert.match(await status(), /id 3 {2}pending/, 'the restart prepared the next key');
  const l = load();
  await new Promise((r) => setTimeout(r, 300));
  const child = spawn(SALUS_BIN, ['key', 'rekey-data', '--data', s.dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise((res) => child.on('exit', (code, sig) => res({ code, sig })));
  await new Promise((res) => {
    child.stdout.on('data', (d) => {
      out += d.toString();
      // the first progress line: a batch is synced and recorded, many remain
      if (/rekey \d+ \/ \d+ pages/.test(out)) {
        child.kill('SIGKILL');
        res();
      }
    });
    exited.then(res);
  });
  const e = await exited;
  assert.equal(e.sig, 'SIGKILL', `killed mid-run (it printed: ${out})`);
  let st = await status();
  assert.match(st, /rekey in progress: data key 2 -> 3/, st);
  // the server went on serving meanwhile, and still does
  await new Promise((r) => setTimeout(r, 300));
  const ids = keyIds(s.dir);
  assert.ok(ids[2] > 0 && ids[3] > 0, `pages under both keys: ${JSON.stringify(ids)}`);
  const r = await salus(['key', 'rekey-data', '--data', s.dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /resuming the rekey at page \d+/);
  assert.match(r.stdout, /every page is under data key 3/);
  const res = await l.halt();
  assert.deepEqual(res.failures, []);
  await allReadBack(res.created);
  st = await status();
  assert.match(st, /data keys \(active 3\)/);
  assert.doesNotMatch(st, /rekey in progress/);
  assert.deepEqual(Object.keys(keyIds(s.dir)), ['3'], JSON.stringify(keyIds(s.dir)));
  assert.deepEqual(patientKeyWraps(s.dir), { rows: [3], keyring: [3] });
  // a third run while this server is up has no key it holds to move to
  const again = await salus(['key', 'rekey-data', '--data', s.dir]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /holds no next data key/);
});
