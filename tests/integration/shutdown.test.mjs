// shutdown.test.mjs — SIGTERM while durable creates are in flight (docs/operations.md): the server
// exits 0 (libmicrohttpd aborts the process if it is stopped with a connection still suspended,
// and a create waiting for its group commit is one), and every create it answered 201 is there
// after a restart.  32 keep-alive connections keep creates queued; the signal goes when the
// first answers have come back, so others are waiting on the writer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startServer } from './lib/server.mjs';

let s;
before(async () => {
  s = await startServer();
});
after(async () => {
  await s?.stop();
});

test('SIGTERM under a create load: exit 0, nothing acknowledged lost', async () => {
  const tok = await s.token('full');
  const made = [];
  let answered = 0;
  let stopping = false;
  const worker = async (w) => {
    for (let i = 0; !stopping || i < 2; i++) {
      const body = { resourceType: 'Patient', name: [{ family: 'Shutdowncase', given: [`W${w}-${i}`] }] };
      try {
        const r = await s.request('POST', '/fhir/Patient', { token: tok, body, timeoutMs: 20000 });
        answered++;
        if (r.status === 201) made.push(r.json.id);
        else assert.ok([503].includes(r.status), `refused while stopping with ${r.status}: ${r.body}`);
      } catch {
        return; // the connection closed under it: the server is going away
      }
      if (stopping && i > 200) return;
    }
  };
  const workers = Array.from({ length: 32 }, (_, w) => worker(w));
  while (answered < 64) await new Promise((r) => setTimeout(r, 5));
  s.proc.kill('SIGTERM');
  stopping = true;
  const e = await s.exited;
  await Promise.all(workers);
  assert.deepEqual(e, { code: 0, sig: null }, `salus serve exit: ${s.log.join('')}`);
  assert.ok(made.length >= 64, `${made.length} created`);
  await s.restart();
  for (const id of made) assert.equal((await s.request('GET', `/fhir/Patient/${id}`, { token: tok })).status, 200, id);
});
