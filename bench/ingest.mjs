// ingest.mjs — Synthea transaction-bundle ingest rate over HTTPS.
// Starts a real `salus serve` (tests/integration/lib/server.mjs), unpacks the
// sample bundles (../shared/fhir/synthea-r4-dev.tar.xz, never committed) into a
// temp dir, POSTs every bundle to /fhir as a transaction with N concurrent
// connections and prints resources/s, and the server's CPU time per resource
// (utime+stime from /proc over the timed phase: the figure that survives a busy
// machine).  Usage: node bench/ingest.mjs [concurrency] [rounds]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { startServer } from '../tests/integration/lib/server.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const tarball = process.env.SALUS_SYNTHEA || path.join(here, '../../shared/fhir/synthea-r4-dev.tar.xz');
if (!fs.existsSync(tarball)) {
  console.log(`skip: ${tarball} not found`);
  process.exit(0);
}
const conc = Number(process.argv[2] || 4);
const rounds = Number(process.argv[3] || 1);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'salus-ingest-'));
execFileSync('tar', ['xJf', tarball, '-C', tmp]);
const limit = Number(process.env.SALUS_INGEST_LIMIT || 0); // first N bundles only (0: all)
let files = fs.readdirSync(tmp).filter((f) => f.endsWith('.json')).sort();
if (limit) files = files.slice(0, limit);
const bodies = files.map((f) => fs.readFileSync(path.join(tmp, f)));
fs.rmSync(tmp, { recursive: true, force: true });
const counts = bodies.map((b) => JSON.parse(b).entry.length);

const s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
try {
  const tok = await s.token('full');
  const agent = new https.Agent({ keepAlive: true, maxSockets: conc, ca: s.ca });
  const post = (body) =>
    s.request('POST', '/fhir', {
      token: tok,
      agent,
      timeoutMs: 300000,
      headers: { 'content-type': 'application/fhir+json', prefer: 'return=minimal' },
      body,
    });
  const jobs = [];
  for (let r = 0; r < rounds; r++) for (let i = 0; i < bodies.length; i++) jobs.push(i);
  let next = 0;
  let resources = 0;
  const cpu = () => {
    const f = fs.readFileSync(`/proc/${s.proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, clock ticks (USER_HZ 100)
  };
  const c0 = cpu();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (next < jobs.length) {
        const i = jobs[next++];
        const res = await post(bodies[i]);
        if (res.status !== 200) throw new Error(`bundle ${files[i]}: HTTP ${res.status} ${res.body.slice(0, 300)}`);
        resources += counts[i];
      }
    }),
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuS = cpu() - c0;
  const mb = bodies.reduce((a, b) => a + b.length, 0) * rounds / 1e6;
  console.log(
    `bundles=${jobs.length} resources=${resources} seconds=${secs.toFixed(2)} ` +
      `resources_per_s=${Math.round(resources / secs)} MB_per_s=${(mb / secs).toFixed(1)} concurrency=${conc} ` +
      `server_cpu_s=${cpuS.toFixed(2)} server_cpu_us_per_resource=${Math.round((cpuS * 1e6) / resources)} ` +
      `load=${os.loadavg()[0].toFixed(2)}`,
  );
  agent.destroy();
} finally {
  await s.stop();
}
