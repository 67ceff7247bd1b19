// load.test.mjs — `salus load` (src/cli/cmd_load.c, docs/store.md): NDJSON lines
// written into a stopped server's data directory, then served.  A loaded
// resource comes back as written (decimals such as 1.50, escapes) with the
// store's id and meta, is searchable, and a malformed line stops the load with
// a one-line, PHI-free message naming the line and a non-zero exit.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { salus, startServer } from './lib/server.mjs';

let s;
let tok;
before(async () => {
  s = await startServer();
  await s.halt();
});
after(async () => s && s.stop());

test('loaded resources are served as written, indexed for search', async () => {
  const nd = path.join(s.tmp, 'load.ndjson');
  const lines = [
    '{"resourceType":"Patient","id":"ld-p1","name":[{"family":"Vandermeer\\u00e9","given":["Ana"]}],"birthDate":"1970-01-02"}',
    '{"resourceType":"Observation","id":"ld-o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},' +
      '"subject":{"reference":"Patient/ld-p1"},"valueQuantity":{"value":1.50,"unit":"m"}}',
    '',
    '{"resourceType":"Observation","status":"final","code":{"text":"no id"},"subject":{"reference":"Patient/ld-p1"},"valueInteger":12345678901234}',
  ];
  fs.writeFileSync(nd, lines.join('\n') + '\n');
  const r = await salus(['load', '--data', s.dir, nd]);
  assert.equal(r.code, 0, r.stderr);
  await s.restart();
  tok = await s.token('full');
  const o = await s.request('GET', '/fhir/Observation/ld-o1', { token: tok });
  assert.equal(o.status, 200, o.body);
  assert.match(o.body, /"value":1\.50\b/); // the decimal as written, not 1.5
  assert.equal(o.json.meta.versionId, '1');
  const p = await s.request('GET', '/fhir/Patient/ld-p1', { token: tok });
  assert.equal(p.json.name[0].family, 'Vandermeeré');
  const q = await s.request('GET', '/fhir/Observation?subject=Patient/ld-p1&code=http://loinc.org|8302-2', { token: tok });
  assert.equal(q.status, 200, q.body);
  assert.deepEqual(q.json.entry.map((e) => e.resource.id), ['ld-o1']);
  const all = await s.request('GET', '/fhir/Observation?subject=Patient/ld-p1&_total=accurate', { token: tok });
  assert.equal(all.json.total, 2);
  assert.ok(all.body.includes('"valueInteger":12345678901234'));
  await s.halt();
});

test('a malformed line stops the load: its line number, no content, exit 1', async () => {
  const nd = path.join(s.tmp, 'bad.ndjson');
  fs.writeFileSync(nd, '{"resourceType":"Patient","id":"ok-1"}\n{"resourceType":"Patient","name":[{"family":"Secretname"}],}\n');
  const r = await salus(['load', '--data', s.dir, nd]);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /bad\.ndjson:2: /);
  assert.equal(r.stderr.includes('Secretname'), false);
  const dup = path.join(s.tmp, 'dup.ndjson');
  fs.writeFileSync(dup, '{"resourceType":"Patient","id":"d-1","id":"d-2"}\n');
  const d = await salus(['load', '--data', s.dir, dup]);
  assert.notEqual(d.code, 0);
  assert.match(d.stderr, /dup\.ndjson:1: /);
});
