// page_cipher.test.mjs — the cipher of each sealed page (docs/security.md, "Page format"):
// a data directory written with XChaCha20-Poly1305 only (what every version before
// AES-256-GCM wrote; SALUS_PAGE_CIPHER=xchacha20-poly1305 here) keeps working under
// the default setting, which seals new pages with AES-256-GCM where the CPU has AES-NI;
// an offline `salus key rekey-data` moves every page to the new key and cipher; and a
// server forced back to XChaCha20-Poly1305 still reads the AES-256-GCM pages.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { salus, startServer } from './lib/server.mjs';

const PAGE = 4096;
const RES = 48;
// what libsodium's crypto_aead_aes256gcm_is_available() checks on x86-64
const flags = fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1].split(/\s+/) ?? [];
const AES_NI = flags.includes('aes') && flags.includes('pclmulqdq');

let s;

/** Pages of salus.db and frames of salus.db-wal per format byte (raw reserved bytes; zero pages skipped). */
function formats(dir) {
  const count = {};
  const add = (buf, off) => {
    if (off + PAGE > buf.length || buf.subarray(off, off + PAGE).every((b) => b === 0)) return;
    const f = buf[off + PAGE - RES];
    count[f] = (count[f] ?? 0) + 1;
  };
  const db = fs.readFileSync(path.join(dir, 'salus.db'));
  for (let off = 0; off + PAGE <= db.length; off += PAGE) add(db, off);
  const walPath = path.join(dir, 'salus.db-wal');
  if (fs.existsSync(walPath)) {
    const wal = fs.readFileSync(walPath);
    for (let off = 32 + 24; off + PAGE <= wal.length; off += 24 + PAGE) add(wal, off);
  }
  return count;
}

async function createPatients(tok, n, family) {
  const ids = [];
  for (let i = 0; i < n; i++) {
    const r = await s.request('POST', '/fhir/Patient', {
      token: tok,
      body: { resourceType: 'Patient', name: [{ family, given: [`G${i}`] }], birthDate: '1970-01-01' },
    });
    assert.equal(r.status, 201, r.body);
    ids.push(r.json.id);
  }
  return ids;
}

async function readAll(ids) {
  const tok = await s.token('full');
  for (const id of ids) {
    const r = await s.request('GET', `/fhir/Patient/${id}`, { token: tok });
    assert.equal(r.status, 200, `Patient/${id}: ${r.status} ${r.body.slice(0, 200)}`);
  }
  const q = await s.request('GET', '/fhir/Patient?_count=1&_total=accurate', { token: tok });
  assert.equal(q.status, 200, q.body);
  assert.equal(q.json.total, ids.length);
}

after(async () => {
  await s?.stop();
});

test('an XChaCha20-Poly1305 data directory keeps working; new pages and a rekey use the default cipher', async () => {
  process.env.SALUS_PAGE_CIPHER = 'xchacha20-poly1305';
  let ids;
  try {
    s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
    ids = await createPatients(await s.token('full'), 60, 'Older');
    await s.halt();
  } finally {
    delete process.env.SALUS_PAGE_CIPHER;
  }
  let f = formats(s.dir);
  assert.ok(f[1] > 10, JSON.stringify(f));
  assert.equal(f[2], undefined, JSON.stringify(f));

  // the default setting: old pages open, new ones are AES-256-GCM where the CPU has AES-NI
  await s.restart();
  await readAll(ids);
  ids = ids.concat(await createPatients(await s.token('full'), 60, 'Newer'));
  await readAll(ids);
  await s.halt();
  f = formats(s.dir);
  assert.ok(f[1] > 0, JSON.stringify(f));
  if (AES_NI) assert.ok(f[2] > 0, JSON.stringify(f));
  else assert.equal(f[2], undefined, JSON.stringify(f));

  // offline rekey: every page re-sealed under the new key, with this binary's cipher
  const r = await salus(['key', 'rekey-data', '--data', s.dir]);
  assert.equal(r.code, 0, r.stderr);
  f = formats(s.dir);
  if (AES_NI) assert.deepEqual(Object.keys(f), ['2'], JSON.stringify(f));
  else assert.deepEqual(Object.keys(f), ['1'], JSON.stringify(f));

  // forced back to XChaCha20-Poly1305: every page still opens
  s.env = { SALUS_PAGE_CIPHER: 'xchacha20-poly1305' };
  await s.restart();
  await readAll(ids);
  ids = ids.concat(await createPatients(await s.token('full'), 10, 'Forced'));
  await readAll(ids);
  await s.halt();
  assert.ok(formats(s.dir)[1] > 0);

  // an unknown setting stops the server from starting, with the reason in its log
  s.env = { SALUS_PAGE_CIPHER: 'des' };
  await assert.rejects(s.restart(), /SALUS_PAGE_CIPHER unknown/);
  s.env = {};
});
