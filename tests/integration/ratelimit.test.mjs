// ratelimit.test.mjs — per-address token buckets: 429 OperationOutcome with Retry-After
// beyond the configured rate, and the server keeps serving.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

let s;
before(async () => {
  s = await startServer({ serveArgs: ['--server.rate_limit', '20'] });
});
after(async () => s && (await s.stop()));

test('requests beyond the per-address rate get 429 with Retry-After', async () => {
  const statuses = [];
  let limited;
  for (let i = 0; i < 30; i++) {
    const r = await s.request('GET', '/fhir/metadata');
    statuses.push(r.status);
    if (r.status === 429 && !limited) limited = r;
  }
  assert.ok(statuses.slice(0, 15).every((x) => x === 200), `first requests: ${statuses}`);
  assert.ok(limited, `no 429 in ${statuses}`);
  assert.equal(limited.json.resourceType, 'OperationOutcome');
  assert.equal(limited.json.issue[0].code, 'throttled');
  assert.ok(Number(limited.headers['retry-after']) >= 1);
});
