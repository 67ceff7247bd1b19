// audit_journal.test.mjs — reads are audited through the journal (docs/audit.md "The journal"):
// each read's AuditEvent is written, sealed, to DATA/salus.db-auditj before the answer goes, and
// moved into the Merkle log within [audit] flush_ms.  Here flush_ms is long (5 s) so the events of
// a burst of reads are still only in the journal when the server is killed with SIGKILL: after a
// restart every one of them is in the log (found by an auditor through the FHIR API), once, the
// log verifies, and the journal file never held a readable patient id.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DEFAULT_CLIENTS, grepDir, salus, startServer } from './lib/server.mjs';

let s;
before(async () => {
  s = await startServer({
    clients: [...DEFAULT_CLIENTS, { id: 'auditor', scope: 'system/AuditEvent.rs' }],
    serveArgs: ['--audit.flush_ms', '5000', '--audit.checkpoint_s', '1'],
  });
});
after(async () => {
  await s?.stop();
});

async function readsOf(token, pid) {
  let url = `/fhir/AuditEvent?patient=${pid}&action=R&_count=100`;
  let n = 0;
  while (url) {
    const r = await s.request('GET', url, { token });
    assert.equal(r.status, 200, r.body);
    n += (r.json.entry || []).length;
    const next = r.json.link.find((l) => l.relation === 'next');
    url = next ? next.url.slice(s.base.length) : null;
  }
  return n;
}

test('journaled read events survive SIGKILL and reach the log once', async () => {
  const full = await s.token('full');
  const r = await s.request('POST', '/fhir/Patient', { token: full, body: { resourceType: 'Patient', name: [{ family: 'Journalcase' }] } });
  assert.equal(r.status, 201);
  const pid = r.json.id;
  const N = 40;
  for (let i = 0; i < N; i++) assert.equal((await s.request('GET', `/fhir/Patient/${pid}`, { token: full })).status, 200);
  const journal = path.join(s.dir, 'salus.db-auditj');
  // records follow the 16-byte header; a zero length word is the (preallocated) end
  const firstLen = () => { const b = fs.readFileSync(journal); return b.length >= 20 ? b.readUInt32LE(16) : 0; };
  assert.ok(firstLen() > 0, 'the events are in the journal file');
  assert.equal(grepDir(s.dir, pid).filter((f) => f.endsWith('-auditj')).length, 0, 'no readable id in the journal');
  assert.equal(grepDir(s.dir, 'Journalcase').length, 0, 'no readable name on disk');
  // kill -9: the writer never moved them
  s.proc.kill('SIGKILL');
  await s.exited;
  await s.restart();
  assert.equal(firstLen(), 0, 'moved into the log at open, then emptied');
  const auditor = await s.token('auditor');
  assert.equal(await readsOf(auditor, pid), N, 'every read, once');
  // and a read is visible to the auditor at once (the search settles the journal first)
  assert.equal((await s.request('GET', `/fhir/Patient/${pid}`, { token: full })).status, 200);
  assert.equal(await readsOf(auditor, pid), N + 1);
  await s.halt();
  const v = await salus(['audit', 'verify', '--data', s.dir]);
  assert.equal(v.code, 0, v.stdout + v.stderr);
});

test('[audit] checkpoint_s: the server signs a checkpoint that often while the log grows', async () => {
  await s.restart(['--audit.checkpoint_s', '1']);
  const full = await s.token('full');
  const count = async () => Number(/(\d+) checkpoints verified/.exec((await salus(['audit', 'verify', '--data', s.dir])).stdout)[1]);
  for (let i = 0; i < 3; i++) {
    assert.equal((await s.request('GET', '/fhir/metadata', { token: full })).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
  }
  await s.halt(); // signs a last one if the tree grew
  const periodic = await count();
  await s.restart(['--audit.checkpoint_s', '3600']);
  for (let i = 0; i < 3; i++) {
    assert.equal((await s.request('GET', '/fhir/metadata', { token: full })).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
  }
  await s.halt();
  const hourly = (await count()) - periodic;
  assert.ok(periodic >= 3, `checkpoints every second: ${periodic}`);
  assert.ok(hourly <= 2, `checkpoints with an hour between: ${hourly}`);
});

test('a CLI reading the trail next to the server waits for the events the server has journaled', async () => {
  await s.restart(['--audit.flush_ms', '1000']);
  const full = await s.token('full');
  const r = await s.request('POST', '/fhir/Patient', { token: full, body: { resourceType: 'Patient', name: [{ family: 'Clireader' }] } });
  assert.equal(r.status, 201);
  const pid = r.json.id;
  for (let i = 0; i < 10; i++) assert.equal((await s.request('GET', `/fhir/Patient/${pid}`, { token: full })).status, 200);
  // at once, while the reads are still only in the journal (flush_ms = 1 s): the export waits for them
  const t0 = Date.now();
  const x = await salus(['audit', 'export', '--data', s.dir, '--format', 'ndjson']);
  assert.equal(x.code, 0, x.stderr);
  const reads = x.stdout.split('\n').filter((l) => l.includes(`Patient/${pid}`) && l.includes('"action":"R"'));
  assert.equal(reads.length, 10, `read events in the export (after ${Date.now() - t0} ms)`);
});
