// tls_keys.test.mjs — certificate reload on SIGHUP and mutual TLS
// (docs/security.md "TLS: certificate reload and mutual TLS"):
//  - replace tls/cert.pem and key.pem, send SIGHUP: a new connection gets the
//    new certificate, a connection opened before keeps the old one and keeps
//    working; a broken pair is refused and the current one kept;
//  - [tls] client_cert = require: a client certificate from client_ca is
//    needed for the handshake (none, or one from another CA: refused);
//    optional: none is fine, an untrusted one is refused.
// Certificates are made with the openssl command line.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { httpsRequest, salus, startServer } from './lib/server.mjs';
// (also here: the KEK rotation schedule that `salus serve` checks on SIGHUP)

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'salus-tlskeys-'));
const f = (n) => path.join(dir, n);
const ossl = (...a) => execFileSync('openssl', a, { stdio: ['ignore', 'ignore', 'pipe'] });

/** A CA, and a client certificate it signs. */
function makeCa(name) {
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name} CA`, '-keyout', f(`${name}-ca.key`), '-out', f(`${name}-ca.pem`),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign');
  ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}-backend`,
    '-keyout', f(`${name}-client.key`), '-out', f(`${name}-client.csr`));
  fs.writeFileSync(f('ext.cnf'), 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n');
  ossl('x509', '-req', '-in', f(`${name}-client.csr`), '-CA', f(`${name}-ca.pem`), '-CAkey', f(`${name}-ca.key`),
    '-CAcreateserial', '-days', '2', '-extfile', f('ext.cnf'), '-out', f(`${name}-client.pem`));
  return { key: fs.readFileSync(f(`${name}-client.key`)), cert: fs.readFileSync(f(`${name}-client.pem`)) };
}

/** A self-signed server certificate for 127.0.0.1. */
function makeServerCert(name) {
  ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', f(`${name}.key`),
    '-out', f(`${name}.pem`));
  return { key: fs.readFileSync(f(`${name}.key`)), cert: fs.readFileSync(f(`${name}.pem`)) };
}

/** Connect; resolves {ok, fp, sock} (sock left open) or {ok:false, error}. */
function connect(port, opts) {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port, ...opts });
    sock.setTimeout(15000, () => sock.destroy(new Error('timeout')));
    sock.once('secureConnect', () => resolve({ ok: true, fp: sock.getPeerCertificate().fingerprint256, sock }));
    sock.once('error', (error) => resolve({ ok: false, error }));
  });
}

/** One HTTP/1.1 request on an open TLS socket; resolves the status code. */
function requestOn(sock) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const onData = (d) => {
      buf += d.toString();
      const m = buf.match(/^HTTP\/1\.1 (\d{3})/);
      if (m && buf.includes('\r\n\r\n')) {
        sock.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
    sock.once('close', () => reject(new Error('connection closed without an answer')));
    sock.write('GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  });
}

let good, rogue;
before(() => {
  good = makeCa('good');
  rogue = makeCa('rogue');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

test('SIGHUP reloads the certificate: new connections get it, old ones keep theirs', async () => {
  const s = await startServer({ clients: [] });
  try {
    const first = await connect(s.port, { ca: s.ca });
    assert.ok(first.ok, String(first.error));
    const next = makeServerCert('next');
    fs.writeFileSync(path.join(s.dir, 'tls', 'cert.pem'), next.cert);
    fs.writeFileSync(path.join(s.dir, 'tls', 'key.pem'), next.key, { mode: 0o600 });
    process.kill(s.proc.pid, 'SIGHUP');
    let again;
    for (let i = 0; i < 100; i++) {
      again = await connect(s.port, { ca: next.cert });
      if (again.ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(again.ok, `new certificate not served: ${again.error}`);
    assert.notEqual(again.fp, first.fp);
    assert.equal(await requestOn(again.sock), 200);
    again.sock.destroy();
    // the connection made before the reload still has the old certificate, and still works
    assert.equal(first.sock.getPeerCertificate().fingerprint256, first.fp);
    assert.equal(await requestOn(first.sock), 200);
    first.sock.destroy();
    // the old certificate is no longer trusted for new connections
    assert.equal((await connect(s.port, { ca: s.ca })).ok, false);

    // a broken pair (key of another certificate) is refused; the current one stays
    const other = makeServerCert('other');
    fs.writeFileSync(path.join(s.dir, 'tls', 'cert.pem'), other.cert);
    process.kill(s.proc.pid, 'SIGHUP');
    for (let i = 0; i < 100 && !s.log.join('').includes('tls.reload ok=0'); i++)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(s.log.join(''), /event=tls\.reload ok=0/);
    const still = await connect(s.port, { ca: next.cert });
    assert.ok(still.ok, String(still.error));
    assert.equal(still.fp, again.fp);
    still.sock.destroy();
    assert.ok(s.alive());
  } finally {
    await s.stop();
  }
});

test('the TLS private key is sealed at rest; a plain replacement loads, and seal-files seals it', async () => {
  const s = await startServer({ clients: [] });
  try {
    const keyFile = path.join(s.dir, 'tls', 'key.pem');
    let text = fs.readFileSync(keyFile, 'utf8');
    assert.match(text, /^salus-sealed-v1\n/);
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.match((await salus(['key', 'status', '--data', s.dir])).stdout, /TLS key .*key\.pem: sealed/);
    // a certificate tool writes a plain pair: it loads on SIGHUP as before
    const next = makeServerCert('sealme');
    fs.writeFileSync(path.join(s.dir, 'tls', 'cert.pem'), next.cert);
    fs.writeFileSync(keyFile, next.key, { mode: 0o600 });
    process.kill(s.proc.pid, 'SIGHUP');
    let c;
    for (let i = 0; i < 100; i++) {
      c = await connect(s.port, { ca: next.cert });
      if (c.ok) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(c.ok, String(c.error));
    c.sock.destroy();
    assert.match((await salus(['key', 'status', '--data', s.dir])).stdout, /TLS key .*: NOT sealed/);
    // seal-files seals it in place (next to the running server), and the sealed key loads
    const r = await salus(['key', 'seal-files', '--data', s.dir]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /TLS key: sealed/);
    text = fs.readFileSync(keyFile, 'utf8');
    assert.doesNotMatch(text, /PRIVATE KEY/);
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    const before = s.log.join('').split('tls.reload ok=1').length;
    process.kill(s.proc.pid, 'SIGHUP');
    for (let i = 0; i < 100 && s.log.join('').split('tls.reload ok=1').length === before; i++)
      await new Promise((res) => setTimeout(res, 50));
    assert.equal(s.log.join('').split('tls.reload ok=1').length, before + 1, s.log.join(''));
    const d = await connect(s.port, { ca: next.cert });
    assert.ok(d.ok, String(d.error));
    d.sock.destroy();
    // and after a restart too (the helper's health check trusts the new certificate)
    s.ca = next.cert;
    await s.restart();
    const e = await connect(s.port, { ca: next.cert });
    assert.ok(e.ok, String(e.error));
    e.sock.destroy();
    // a sealed key moved in from another data directory does not open: the server keeps its key
    const other = await startServer({ clients: [] });
    try {
      fs.copyFileSync(path.join(other.dir, 'tls', 'key.pem'), keyFile);
      fs.copyFileSync(path.join(other.dir, 'tls', 'cert.pem'), path.join(s.dir, 'tls', 'cert.pem'));
      process.kill(s.proc.pid, 'SIGHUP');
      for (let i = 0; i < 100 && !s.log.join('').includes('tls.reload ok=0'); i++)
        await new Promise((res) => setTimeout(res, 50));
      assert.match(s.log.join(''), /event=tls\.reload ok=0/);
      const still = await connect(s.port, { ca: next.cert });
      assert.ok(still.ok, String(still.error));
      still.sock.destroy();
    } finally {
      await other.stop();
    }
  } finally {
    await s.stop();
  }
});

test('client_cert = require: only clients with a certificate from client_ca get in', async () => {
  const s = await startServer({
    clients: [],
    serveArgs: ['--tls.client_ca', f('good-ca.pem'), '--tls.client_cert', 'require'],
    clientTls: { key: good.key, cert: good.cert },
  });
  try {
    const ok = await httpsRequest({ port: s.port, ca: s.ca, method: 'GET', path: '/fhir/metadata', tls: good });
    assert.equal(ok.status, 200);
    await assert.rejects(httpsRequest({ port: s.port, ca: s.ca, method: 'GET', path: '/health/live' }));
    await assert.rejects(httpsRequest({ port: s.port, ca: s.ca, method: 'GET', path: '/health/live', tls: rogue }));
    const none = await connect(s.port, { ca: s.ca });
    if (none.ok) {
      // TLS 1.3: the server's refusal arrives after the client's Finished; no request gets through
      await assert.rejects(requestOn(none.sock).then((st) => assert.fail(`answered ${st}`)));
      none.sock.destroy();
    }
  } finally {
    await s.stop();
  }
});

test('client_cert = optional: no certificate is fine, an untrusted one is not', async () => {
  const s = await startServer({
    clients: [],
    serveArgs: ['--tls.client_ca', f('good-ca.pem'), '--tls.client_cert', 'optional'],
  });
  try {
    assert.equal((await s.request('GET', '/health/live', { agent: false })).status, 200);
    assert.equal((await s.request('GET', '/health/live', { agent: false, tls: good })).status, 200);
    await assert.rejects(s.request('GET', '/health/live', { agent: false, tls: rogue }));
  } finally {
    await s.stop();
  }
});

test('client_cert without client_ca refuses to start', async () => {
  await assert.rejects(startServer({ clients: [], serveArgs: ['--tls.client_cert', 'require'] }), /exited/);
});

test('serve warns when the KEK is older than [keys] rotation_days (checked on SIGHUP)', async () => {
  const s = await startServer({ clients: [], serveArgs: ['--keys.rotation_days', '30'] });
  try {
    assert.doesNotMatch(s.log.join(''), /keys\.rotation_due/, 'a fresh KEK is not due');
    // the server read the keyring at start; its public "created" field is what the check looks at
    const ring = path.join(s.dir, 'keys', 'keyring.json');
    const doc = JSON.parse(fs.readFileSync(ring, 'utf8'));
    doc.kek.created = '2020-01-01T00:00:00.000Z';
    fs.writeFileSync(ring, JSON.stringify(doc));
    process.kill(s.proc.pid, 'SIGHUP');
    for (let i = 0; i < 100 && !/keys\.rotation_due/.test(s.log.join('')); i++) await new Promise((r) => setTimeout(r, 50));
    assert.match(s.log.join(''), /event=keys\.rotation_due kek_age_days=\d{4,} rotation_days=30/);
  } finally {
    await s.stop();
  }
});
