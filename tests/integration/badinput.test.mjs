// badinput.test.mjs — hostile and malformed requests.  Each must get the
// right 4xx with an OperationOutcome, the server must keep serving, and a
// resource stored before them must read back byte-for-byte identical after.
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { isOutcome, startServer } from './lib/server.mjs';

let s;
let tok;
let sentinel; // {id, body, etag} of a resource stored before the abuse
before(async () => {
  s = await startServer({
    clients: [{ id: 'full', scope: 'system/*.cruds' }],
    // in an ASan build, freed memory sits in a quarantine (256 MB by default) and would show
    // in the RSS of the 100 MB body test; keep it small so the bound below means the same thing
    env: { ASAN_OPTIONS: [process.env.ASAN_OPTIONS, 'quarantine_size_mb=16'].filter(Boolean).join(':') },
  });
  tok = await s.token('full');
  const r = await s.request('POST', '/fhir/Patient', {
    token: tok,
    body: { resourceType: 'Patient', name: [{ family: 'Sentinel', given: ['Ada'] }], birthDate: '1815-12-10' },
  });
  assert.equal(r.status, 201);
  sentinel = { id: r.json.id, body: r.body, etag: r.headers.etag };
});
after(async () => {
  await s?.stop();
});

const JSON_CT = { 'content-type': 'application/fhir+json' };

/** Send raw bytes as a request body and check the status and the OperationOutcome. */
async function expectError(method, path, body, status, { headers = JSON_CT, code } = {}) {
  const r = await s.request(method, path, { token: tok, headers, body });
  assert.equal(r.status, status, `${method} ${path}: ${r.status} ${r.body.slice(0, 300)}`);
  assert.ok(isOutcome(r.json), `OperationOutcome expected, got ${r.body.slice(0, 200)}`);
  assert.equal(r.json.issue[0].severity, 'error');
  if (code) assert.equal(r.json.issue[0].code, code);
  assert.match(r.headers['content-type'], /^application\/fhir\+json/);
  return r;
}

async function stillServing() {
  assert.ok(s.alive(), 'server process died');
  const r = await s.request('GET', `/fhir/Patient/${sentinel.id}`, { token: tok });
  assert.equal(r.status, 200);
  assert.equal(r.body, sentinel.body);
}

const cases = [
  ['malformed JSON', 'POST', '/fhir/Patient', '{"resourceType": "Patient", name: [}', 400],
  ['truncated JSON', 'POST', '/fhir/Patient', '{"resourceType":"Patient","name":[{"family":"Tr', 400],
  ['empty body', 'POST', '/fhir/Patient', '', 400],
  ['trailing garbage', 'POST', '/fhir/Patient', '{"resourceType":"Patient"} {"x":1}', 400],
  ['duplicate keys', 'POST', '/fhir/Patient', '{"resourceType":"Patient","gender":"male","gender":"female"}', 400],
  ['duplicate resourceType', 'POST', '/fhir/Patient', '{"resourceType":"Patient","resourceType":"Observation"}', 400],
  ['resourceType as a number', 'POST', '/fhir/Patient', '{"resourceType":42}', 400],
  ['resourceType missing', 'POST', '/fhir/Patient', '{"name":[{"family":"X"}]}', 400],
  ['array instead of object', 'POST', '/fhir/Patient', '[{"resourceType":"Patient"}]', 400],
  ['a bare string', 'POST', '/fhir/Patient', '"Patient"', 400],
  ['meta as a string', 'POST', '/fhir/Patient', '{"resourceType":"Patient","meta":"v1"}', 400],
  ['id as a number on update', 'PUT', '/fhir/Patient/abc', '{"resourceType":"Patient","id":7}', 400],
  ['resourceType/URL mismatch on create', 'POST', '/fhir/Patient', '{"resourceType":"Observation","status":"final"}', 400],
  ['resourceType/URL mismatch on update', 'PUT', '/fhir/Patient/abc', '{"resourceType":"Observation","id":"abc"}', 400],
  ['id mismatch on update', 'PUT', '/fhir/Patient/abc', '{"resourceType":"Patient","id":"xyz"}', 400],
  ['id missing on update', 'PUT', '/fhir/Patient/abc', '{"resourceType":"Patient"}', 400],
  ['NUL byte in a string', 'POST', '/fhir/Patient', '{"resourceType":"Patient","gender":"ma\\u0000le"}', 400],
];

for (const [name, m, p, body, status] of cases) {
  test(name, async () => {
    await expectError(m, p, body, status);
    await stillServing();
  });
}

test('the refused updates did not create /fhir/Patient/abc', async () => {
  const r = await s.request('GET', '/fhir/Patient/abc', { token: tok });
  assert.equal(r.status, 404);
});

test('invalid UTF-8 → 400', async () => {
  for (const bad of [
    Buffer.from([0x7b, 0x22, 0x72, 0x65, 0x73, 0x6f, 0x75, 0x72, 0x63, 0x65, 0x54, 0x79, 0x70, 0x65, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
    Buffer.concat([Buffer.from('{"resourceType":"Patient","gender":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]),
    Buffer.concat([Buffer.from('{"resourceType":"Patient","gender":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]), // surrogate
    Buffer.concat([Buffer.from('{"resourceType":"Patient","gender":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]), // overlong
  ]) {
    await expectError('POST', '/fhir/Patient', bad, 400);
  }
  await stillServing();
});

test('10,000-deep nesting → 400, quickly', async () => {
  const deepArr = `{"resourceType":"Patient","extension":${'['.repeat(10000)}${']'.repeat(10000)}}`;
  const deepObj = `{"resourceType":"Patient","x":${'{"a":'.repeat(10000)}1${'}'.repeat(10000)}}`;
  const unclosed = `{"resourceType":"Patient","x":${'['.repeat(10000)}`;
  const t0 = Date.now();
  for (const b of [deepArr, deepObj, unclosed]) await expectError('POST', '/fhir/Patient', b, 400);
  assert.ok(Date.now() - t0 < 20000);
  await stillServing();
});

test('bad ids in the URL → 400', async () => {
  for (const p of ['/fhir/Patient/bad$id', '/fhir/Patient/bad%24id', '/fhir/Patient/' + 'a'.repeat(65), '/fhir/Patient/a_b', '/fhir/Patient/%C3%A9', '/fhir/Patient/a%2Fb']) {
    const r = await s.request('GET', p, { token: tok });
    assert.ok([400, 404].includes(r.status), `${p}: ${r.status}`);
    assert.ok(isOutcome(r.json), p);
  }
  await expectError('GET', '/fhir/Patient/bad$id', undefined, 400);
  await expectError('PUT', '/fhir/Patient/bad$id', '{"resourceType":"Patient","id":"bad$id"}', 400);
  // create ignores or refuses a bad id in the body, never stores it
  const c = await s.request('POST', '/fhir/Patient', { token: tok, headers: JSON_CT, body: '{"resourceType":"Patient","id":"bad$id"}' });
  assert.ok([201, 400].includes(c.status), `create with bad body id: ${c.status}`);
  if (c.status === 201) assert.notEqual(c.json.id, 'bad$id');
  // a 64-character id is the longest allowed
  const id64 = 'a'.repeat(64);
  const ok = await s.request('PUT', `/fhir/Patient/${id64}`, { token: tok, body: { resourceType: 'Patient', id: id64 } });
  assert.equal(ok.status, 201);
  await stillServing();
});

test('a NUL byte in the URL does not truncate it into another request', async () => {
  // libmicrohttpd percent-decodes the path in place, so "/fhir/Patient/%00" reaches the
  // router as "/fhir/Patient/" (a type listing) and "/fhir/Patient/ID%00junk" as Patient/ID.
  const victim = await s.request('PUT', '/fhir/Patient/nul-victim', { token: tok, body: { resourceType: 'Patient', id: 'nul-victim' } });
  assert.equal(victim.status, 201);
  const problems = [];
  for (const [m, p] of [
    ['GET', '/fhir/Patient/%00'],
    ['GET', '/fhir/Patient/nul-victim%00/_history/1'],
    ['GET', '/fhir/Patient%00/x'],
    ['DELETE', '/fhir/Patient/nul-victim%00junk'],
  ]) {
    const r = await s.request(m, p, { token: tok });
    if (r.status !== 400 || !isOutcome(r.json)) problems.push(`${m} ${p} → ${r.status}`);
  }
  const still = await s.request('GET', '/fhir/Patient/nul-victim', { token: tok });
  if (still.status !== 200) problems.push(`Patient/nul-victim was deleted through "nul-victim%00junk" (read → ${still.status})`);
  assert.deepEqual(problems, []);
  await stillServing();
});

test('bad version ids in vread → 4xx', async () => {
  for (const v of ['0', '-1', 'abc', '99999999999999999999999']) {
    const r = await s.request('GET', `/fhir/Patient/${sentinel.id}/_history/${v}`, { token: tok });
    assert.ok([400, 404].includes(r.status), `vid ${v}: ${r.status}`);
    assert.ok(isOutcome(r.json));
  }
});

test('unknown resource type → 404', async () => {
  await expectError('GET', '/fhir/Pateint/1', undefined, 404);
  await expectError('POST', '/fhir/Pateint', '{"resourceType":"Pateint"}', 404);
  await expectError('GET', '/fhir/Pateint/_history', undefined, 404);
  await stillServing();
});

test('XML → 406 (via _format and via Accept)', async () => {
  for (const fmt of ['xml', 'application/fhir%2Bxml', 'text/xml']) {
    await expectError('GET', `/fhir/Patient/${sentinel.id}?_format=${fmt}`, undefined, 406);
  }
  for (const accept of ['application/fhir+xml', 'application/xml', 'text/html']) {
    await expectError('GET', `/fhir/Patient/${sentinel.id}`, undefined, 406, { headers: { accept } });
  }
  // JSON variants are fine
  for (const fmt of ['json', 'application/fhir%2Bjson', 'application/json']) {
    const r = await s.request('GET', `/fhir/Patient/${sentinel.id}?_format=${fmt}`, { token: tok });
    assert.equal(r.status, 200, fmt);
  }
  const r = await s.request('GET', `/fhir/Patient/${sentinel.id}`, { token: tok, headers: { accept: 'application/fhir+json; fhirVersion=4.0' } });
  assert.equal(r.status, 200);
});

test('Content-Type other than JSON on create/update → 415', async () => {
  const body = '{"resourceType":"Patient"}';
  await expectError('POST', '/fhir/Patient', body, 415, { headers: { 'content-type': 'text/plain' } });
  await expectError('POST', '/fhir/Patient', '<Patient xmlns="http://hl7.org/fhir"/>', 415, { headers: { 'content-type': 'application/fhir+xml' } });
  await expectError('POST', '/fhir/Patient', body, 415, { headers: {} });
  await expectError('PUT', '/fhir/Patient/ct', '{"resourceType":"Patient","id":"ct"}', 415, { headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  const ok = await s.request('POST', '/fhir/Patient', { token: tok, headers: { 'content-type': 'application/json; charset=utf-8' }, body });
  assert.equal(ok.status, 201);
});

test('wrong method → 405 with Allow', async () => {
  const r1 = await expectError('PATCH', '/fhir/Patient', '[]', 405, { headers: { 'content-type': 'application/json-patch+json' } });
  await expectError('PATCH', `/fhir/Patient/${sentinel.id}/_history/1`, '[]', 405, { headers: { 'content-type': 'application/json-patch+json' } });
  await expectError('DELETE', '/fhir/Patient', undefined, 405);
  await expectError('PUT', '/fhir/Patient', '{"resourceType":"Patient"}', 405);
  await expectError('POST', `/fhir/Patient/${sentinel.id}`, '{"resourceType":"Patient"}', 405);
  await expectError('DELETE', '/fhir/metadata', undefined, 405);
  await expectError('POST', '/fhir/_history', undefined, 405);
  assert.ok(r1.headers.allow, 'Allow header');
  await stillServing();
});

test('a 100 MB body → 413, without the server holding it in memory', async () => {
  const before = s.memory();
  const chunk = Buffer.alloc(1 << 20, 0x20); // 1 MiB of spaces
  const size = 100 * chunk.length;
  const r = await new Promise((resolve, reject) => {
    const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca }, async () => {
      sock.write(
        `POST /fhir/Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${tok}\r\n` +
          `Content-Type: application/fhir+json\r\nContent-Length: ${size}\r\n\r\n`,
      );
      const prefix = Buffer.from('{"resourceType":"Patient","x":"');
      sock.write(prefix);
      // stream until the server answers or closes; it may answer early
      for (let sent = prefix.length; sent < size && !answered && !sock.destroyed; ) {
        const n = Math.min(chunk.length, size - sent);
        sent += n;
        if (!sock.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          await new Promise((res) => {
            const done = () => {
              sock.off('drain', done);
              sock.off('close', done);
              res();
            };
            sock.on('drain', done);
            sock.on('close', done);
          });
      }
    });
    let answered = false;
    const chunks = [];
    sock.on('data', (d) => {
      answered = true;
      chunks.push(d);
      const text = Buffer.concat(chunks).toString();
      const m = text.match(/\r\n\r\n/);
      const cl = text.match(/content-length:\s*(\d+)/i);
      if (m && cl && text.length - (m.index + 4) >= Number(cl[1])) {
        sock.destroy();
      }
    });
    sock.setTimeout(120000, () => sock.destroy(new Error('timeout')));
    sock.on('error', (e) => (chunks.length ? null : reject(e)));
    sock.on('close', () => resolve(Buffer.concat(chunks).toString()));
  });
  const status = Number((r.match(/^HTTP\/1\.1 (\d{3})/) || [])[1]);
  assert.equal(status, 413, r.slice(0, 200));
  const body = JSON.parse(r.slice(r.indexOf('\r\n\r\n') + 4));
  assert.ok(isOutcome(body));
  const mem = s.memory();
  // the server may buffer up to its body cap, but never the whole 100 MB
  assert.ok(mem.hwm - before.hwm < 90 * 1024, `peak RSS grew by ${mem.hwm - before.hwm} kB`);
  await stillServing();
});

test('oversized headers and URL → 4xx, server keeps serving', async () => {
  const longUrl = `/fhir/Patient?_id=${'a'.repeat(20000)}`;
  const r = await s.request('GET', longUrl, { token: tok });
  assert.ok(r.status >= 400 && r.status < 500, `long URL: ${r.status}`);
  const big = await s.request('GET', `/fhir/Patient/${sentinel.id}`, { token: tok, headers: { 'x-junk': 'j'.repeat(64 * 1024) } }).catch((e) => ({ error: e }));
  if (!big.error) assert.ok(big.status >= 400 && big.status < 500, `big header: ${big.status}`);
  const params = Array.from({ length: 300 }, (_, i) => `_count=${i}`).join('&');
  const many = await s.request('GET', `/fhir/Patient/_history?${params}`, { token: tok });
  assert.equal(many.status, 400);
  await stillServing();
});

test('garbage and half-open connections do not stop the server', async () => {
  // raw non-TLS bytes, a TLS client that never sends a request, and one that stops mid-request
  const junk = net.connect(s.port, '127.0.0.1', () => junk.end(Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0])));
  junk.on('error', () => {});
  const idle = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca });
  idle.on('error', () => {});
  const half = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca }, () =>
    half.write(`POST /fhir/Patient HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tok}\r\nContent-Type: application/fhir+json\r\nContent-Length: 100\r\n\r\n{"resou`),
  );
  half.on('error', () => {});
  await new Promise((r) => setTimeout(r, 200));
  await stillServing();
  half.destroy();
  idle.destroy();
  await stillServing();
});

test('after all of it: the sentinel is unchanged, history intact, writes still work', async () => {
  await stillServing();
  const h = await s.request('GET', `/fhir/Patient/${sentinel.id}/_history`, { token: tok });
  assert.equal(h.json.total, 1);
  const r = await s.request('GET', `/fhir/Patient/${sentinel.id}`, { token: tok });
  assert.equal(r.headers.etag, sentinel.etag);
  const w = await s.request('POST', '/fhir/Patient', { token: tok, body: { resourceType: 'Patient', active: true } });
  assert.equal(w.status, 201);
});
