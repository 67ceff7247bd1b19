// token_assertions.mjs — SMART Backend Services client assertions for bench/token.sh.
//
//   node bench/token_assertions.mjs keygen DIR           # DIR/key.json (private, 0600) + DIR/jwks.json
//   node bench/token_assertions.mjs sign DIR CLIENT AUD N OUT [LIFETIME_S]
//
// `sign` writes N compact JWTs (one per line), each with its own jti and exp = now + LIFETIME_S
// (default 280: under the server's 5-minute limit), signed RS384 with DIR/key.json, using every
// core through worker threads.  Node's crypto (OpenSSL) signs; `jose`'s key and JWT formats.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

function signMany({ keyJwk, kid, client, aud, n, lifetime }) {
  const key = crypto.createPrivateKey({ key: keyJwk, format: 'jwk' });
  const head = b64({ alg: 'RS384', kid, typ: 'JWT' });
  const exp = Math.floor(Date.now() / 1000) + lifetime;
  const out = [];
  for (let i = 0; i < n; i++) {
    const input = `${head}.${b64({ iss: client, sub: client, aud, exp, jti: crypto.randomUUID() })}`;
    out.push(`${input}.${crypto.sign('sha384', Buffer.from(input), key).toString('base64url')}`);
  }
  return out.join('\n');
}

if (!isMainThread) {
  parentPort.postMessage(signMany(workerData));
} else {
  const [cmd, dir, ...rest] = process.argv.slice(2);
  if (cmd === 'keygen') {
    const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const kid = `bench-${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(path.join(dir, 'key.json'), JSON.stringify({ kid, jwk: privateKey.export({ format: 'jwk' }) }), { mode: 0o600 });
    fs.writeFileSync(path.join(dir, 'jwks.json'), JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS384', use: 'sig' }] }));
  } else if (cmd === 'sign') {
    const [client, aud, nText, out, lifeText] = rest;
    const { kid, jwk } = JSON.parse(fs.readFileSync(path.join(dir, 'key.json'), 'utf8'));
    const n = Number(nText), workers = Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
    const per = Math.ceil(n / workers);
    const parts = await Promise.all(Array.from({ length: workers }, (_, w) => new Promise((resolve, reject) => {
      const wk = new Worker(new URL(import.meta.url), {
        workerData: { keyJwk: jwk, kid, client, aud, n: Math.min(per, n - w * per), lifetime: Number(lifeText || 280) },
      });
      wk.on('message', resolve);
      wk.on('error', reject);
    })));
    fs.writeFileSync(out, `${parts.filter((p) => p).join('\n')}\n`);
  } else {
    console.error('usage: token_assertions.mjs keygen DIR | sign DIR CLIENT AUD N OUT [LIFETIME_S]');
    process.exit(2);
  }
}
