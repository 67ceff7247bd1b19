// tls.test.mjs — HTTPS only: TLS 1.2 and 1.3 with AEAD ciphers, older
// versions and CBC suites refused, no plaintext HTTP on the port, the
// certificate really verified, security headers on every kind of answer,
// keep-alive.
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { startServer } from './lib/server.mjs';

let s;
before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
});
after(async () => {
  await s?.stop();
});

/** Try a TLS handshake; resolves {ok, protocol, cipher, authorized} or {ok:false, error}. */
function handshake(opts) {
  return new Promise((resolve) => {
    const sock = tls.connect({ host: '127.0.0.1', port: s.port, ca: s.ca, ...opts });
    sock.setTimeout(15000, () => sock.destroy(new Error('handshake timeout')));
    sock.once('secureConnect', () => {
      const r = {
        ok: true,
        protocol: sock.getProtocol(),
        cipher: sock.getCipher().standardName,
        authorized: sock.authorized,
      };
      sock.end();
      resolve(r);
    });
    sock.once('error', (error) => resolve({ ok: false, error }));
  });
}

// An error raised by the *server's* refusal (an alert, or a ServerHello the client
// cannot accept), as opposed to the client declining to even try.
const SERVER_REFUSAL = /ALERT|UNSUPPORTED_PROTOCOL|WRONG_VERSION|HANDSHAKE_FAILURE|NO_SHARED|ECONNRESET|socket disconnected/i;
const errText = (e) => `${e?.code ?? ''} ${e?.message ?? ''}`;

test('TLS 1.3 is accepted with a verified certificate', async () => {
  const r = await handshake({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' });
  assert.ok(r.ok, errText(r.error));
  assert.equal(r.protocol, 'TLSv1.3');
  assert.equal(r.authorized, true);
});

test('TLS 1.2 is accepted, with an AEAD cipher suite', async () => {
  const r = await handshake({ minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' });
  assert.ok(r.ok, errText(r.error));
  assert.equal(r.protocol, 'TLSv1.2');
  assert.match(r.cipher, /GCM|CHACHA20/);
});

test('TLS 1.1 and 1.0 are refused by the server', async () => {
  for (const v of ['TLSv1.1', 'TLSv1']) {
    // SECLEVEL=0 so that the *client* is willing to offer the old version
    const r = await handshake({ minVersion: v, maxVersion: v, ciphers: 'DEFAULT@SECLEVEL=0' });
    assert.equal(r.ok, false, `${v} handshake succeeded (${r.protocol})`);
    assert.doesNotMatch(errText(r.error), /NO_PROTOCOLS_AVAILABLE|NO_CIPHERS_AVAILABLE/, 'client refused to try');
    assert.match(errText(r.error), SERVER_REFUSAL);
  }
});

test('TLS 1.2 CBC (non-AEAD) cipher suites are refused', async () => {
  const r = await handshake({
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256',
  });
  assert.equal(r.ok, false, `CBC suite negotiated: ${r.cipher}`);
  assert.match(errText(r.error), SERVER_REFUSAL);
});

test('the certificate is really verified (no CA → refused by the client)', async () => {
  const r = await handshake({ ca: undefined });
  assert.equal(r.ok, false);
  assert.match(errText(r.error), /SELF_SIGNED|UNABLE_TO_VERIFY|unable to verify|self.signed/i);
});

test('no plaintext HTTP on the port', async () => {
  const data = await new Promise((resolve) => {
    const chunks = [];
    const sock = net.connect(s.port, '127.0.0.1', () => {
      sock.write('GET /fhir/metadata HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    });
    sock.setTimeout(5000, () => sock.destroy());
    sock.on('data', (c) => chunks.push(c));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(chunks)));
  });
  assert.ok(!data.toString('latin1').startsWith('HTTP/'), `plaintext answer: ${data.toString('latin1', 0, 80)}`);
  assert.ok(!data.toString('latin1').includes('CapabilityStatement'));
  // and the server still serves HTTPS afterwards
  const r = await s.request('GET', '/fhir/metadata');
  assert.equal(r.status, 200);
});

const SECURITY_HEADERS = (h) => {
  const hsts = h['strict-transport-security'];
  assert.ok(hsts, 'HSTS missing');
  const maxAge = Number((hsts.match(/max-age=(\d+)/) || [])[1]);
  assert.ok(maxAge >= 31536000, `HSTS max-age too short: ${hsts}`);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.ok(/DENY|SAMEORIGIN/i.test(h['x-frame-options'] ?? ''), 'X-Frame-Options missing');
  assert.ok(h['referrer-policy'], 'Referrer-Policy missing');
  assert.match(h['cache-control'] ?? '', /no-store/);
  assert.ok(h['content-security-policy'], 'Content-Security-Policy missing');
};

test('security headers on success, 401, 404 and token answers', async () => {
  const tok = await s.token('full');
  const answers = [
    await s.request('GET', '/fhir/metadata'),
    await s.request('GET', '/fhir/Patient/x'),
    await s.request('GET', '/fhir/Patient/nope', { token: tok }),
    await s.request('GET', '/no/such/path'),
    await s.tokenRequest('full'),
    await s.request('POST', '/fhir/Patient', { token: tok, body: { resourceType: 'Patient' } }),
  ];
  assert.deepEqual(
    answers.map((a) => a.status),
    [200, 401, 404, 404, 200, 201],
  );
  for (const a of answers) SECURITY_HEADERS(a.headers);
});

test('keep-alive: several requests share one TLS connection', async () => {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: s.ca });
  const reused = [];
  for (let i = 0; i < 5; i++) {
    const r = await new Promise((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port: s.port, path: '/fhir/metadata', agent, ca: s.ca },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode, reused: req.reusedSocket }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 200);
    reused.push(r.reused);
  }
  agent.destroy();
  assert.deepEqual(reused, [false, true, true, true, true]);
});
