// smart_launch.test.mjs — the SMART App Launch "standalone launch" in a real browser:
// headless Debian Chromium driven by playwright-core loads a small SMART app (served by this
// test over HTTPS on another port of 127.0.0.1) that uses the npm `fhirclient` library's
// browser build: FHIR.oauth2.authorize() → Salus's login page (username + password) → the
// TOTP page (code from otplib) → the consent page → back to the app → FHIR.oauth2.ready()
// exchanges the code (PKCE S256) → client.request('Patient/ID') over CORS with the token.
// Chromium trusts exactly the data directory's TLS key (--ignore-certificate-errors-spki-list
// with its SPKI hash): certificate checking stays on for everything else.  A screenshot of
// the login page is written to $SALUS_E2E_SHOTS (default: the OS temp directory).
// Skips, saying why, when /usr/bin/chromium is absent.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from 'otplib';
import { freePort, salus, startServer } from '../integration/lib/server.mjs';

const CHROMIUM = process.env.SALUS_CHROMIUM || '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FHIRCLIENT = path.join(HERE, '../../node_modules/fhirclient/build/fhir-client.js');
const PW = 'a long and unusual passphrase 7';
const haveChromium = fs.existsSync(CHROMIUM);

let s, app, appPort, browser, patientId, totpSecret;

const page = (title, script) => `<!doctype html><html lang=en><head><meta charset=utf-8><title>${title}</title>
<script src="/fhir-client.js"></script></head><body><h1>${title}</h1><pre id=out></pre>
<script>${script}</script></body></html>`;

// The app: launch.html starts the standalone launch, app.html is the redirect URI.
function appPages(fhirBase) {
  return {
    '/launch.html': page('Launch', `
      FHIR.oauth2.authorize({ clientId: 'webapp', scope: 'openid fhirUser user/Patient.rs', redirectUri: 'app.html',
        iss: ${JSON.stringify(fhirBase)} }).catch((e) => { document.body.dataset.error = String(e); });`),
    '/app.html': page('App', `
      FHIR.oauth2.ready()
        .then(async (client) => {
          const p = await client.request('Patient/' + ${JSON.stringify('__PID__')});
          const out = { patient: p, scope: client.state.tokenResponse.scope, tokenType: client.state.tokenResponse.token_type,
            serverUrl: client.state.serverUrl, hasIdToken: !!client.state.tokenResponse.id_token, user: client.getUserId() };
          document.getElementById('out').textContent = JSON.stringify(out);
          document.body.dataset.done = '1';
        })
        .catch((e) => { document.body.dataset.error = String(e && e.stack || e); });`),
  };
}

before(async () => {
  if (!haveChromium) return;
  s = await startServer({ clients: [{ id: 'writer', scope: 'system/*.cruds' }], plainTls: true });
  // a patient to read, written by a backend client
  const w = await s.token('writer');
  const r = await s.request('POST', '/fhir/Patient', {
    token: w,
    body: { resourceType: 'Patient', name: [{ family: 'Browser', given: ['Grace'] }], birthDate: '1906-12-09' },
  });
  assert.equal(r.status, 201, r.body);
  patientId = r.json.id;

  // the app's HTTPS server, with the data directory's certificate (one key for Chromium to trust)
  appPort = await freePort();
  const pages = appPages(s.fhirBase);
  const tls = s.tlsPlain; // the data directory's key is sealed: the pair the helper made (plainTls)
  app = https.createServer(tls, (req, res) => {
    const u = new URL(req.url, `https://127.0.0.1:${appPort}`);
    if (u.pathname === '/fhir-client.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      return res.end(fs.readFileSync(FHIRCLIENT));
    }
    const html = pages[u.pathname];
    if (!html) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    return res.end(html.replace('__PID__', patientId));
  });
  await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));

  // the SMART app (public, PKCE) and a clinician with TOTP
  let c = await salus(['client', 'add', '--data', s.dir, '--id', 'webapp', '--scope', 'user/Patient.rs openid fhirUser',
    '--redirect-uri', `https://127.0.0.1:${appPort}/app.html`, '--public']);
  assert.equal(c.code, 0, c.stderr);
  const pw = path.join(s.tmp, 'pw');
  const totpFile = path.join(s.tmp, 'totp');
  fs.writeFileSync(pw, PW, { mode: 0o600 });
  c = await salus(['user', 'add', '--data', s.dir, '--username', 'drhopper', '--role', 'clinician', '--password-file', pw,
    '--practitioner', 'prac-hopper', '--totp-secret-out', totpFile]);
  assert.equal(c.code, 0, c.stderr);
  totpSecret = fs.readFileSync(totpFile, 'utf8').trim();

  const { chromium } = await import('playwright-core');
  const spki = crypto.createHash('sha256')
    .update(new crypto.X509Certificate(tls.cert).publicKey.export({ type: 'spki', format: 'der' }))
    .digest('base64');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spki}`],
  });
});

after(async () => {
  await browser?.close();
  await new Promise((resolve) => (app ? app.close(resolve) : resolve()));
  await s?.stop();
});

test('standalone launch with fhirclient: login, TOTP, consent, token, Patient read', { skip: haveChromium ? false : `${CHROMIUM} is absent: install Debian's chromium to run the browser test` }, async () => {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const consoleErrors = [];
  tab.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const navigations = [];
  tab.on('framenavigated', (f) => f === tab.mainFrame() && navigations.push(f.url()));
  tab.setDefaultTimeout(20000);

  await tab.goto(`https://127.0.0.1:${appPort}/launch.html`);
  // fhirclient discovered the endpoints and sent the browser to Salus's sign-in page
  await tab.waitForURL((u) => u.origin === s.base && u.pathname === '/auth/authorize');
  const authz = new URL(tab.url());
  assert.equal(authz.searchParams.get('client_id'), 'webapp');
  assert.equal(authz.searchParams.get('code_challenge_method'), 'S256');
  assert.equal(authz.searchParams.get('aud'), s.fhirBase);
  await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
  const shotDir = process.env.SALUS_E2E_SHOTS || os.tmpdir();
  const shot = path.join(shotDir, 'salus-login.png');
  await tab.screenshot({ path: shot, fullPage: true });
  assert.ok(fs.statSync(shot).size > 1000, 'a screenshot of the login page');
  console.log(`login page screenshot: ${shot}`);

  // a wrong password first: the same page again, with the notice
  await tab.getByLabel('Username').fill('drhopper');
  await tab.getByLabel('Password').fill('not the password at all');
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByText('Wrong username or password').waitFor();

  await tab.getByLabel('Username').fill('drhopper');
  await tab.getByLabel('Password').fill(PW);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('heading', { name: 'Two-step verification' }).waitFor();
  const code = await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) });
  await tab.getByLabel('Code').fill(code);
  await tab.getByRole('button', { name: 'Verify' }).click();

  await tab.getByRole('heading', { name: 'Allow access?' }).waitFor();
  const consent = await tab.textContent('body');
  assert.match(consent, /drhopper/);
  assert.match(consent, /user\/Patient\.rs/);
  await tab.getByRole('button', { name: 'Allow' }).click();

  // back in the app: fhirclient redeemed the code and read the patient with the token
  await tab.waitForURL((u) => u.origin === `https://127.0.0.1:${appPort}` && u.pathname === '/app.html');
  await tab.waitForFunction(() => document.body.dataset.done === '1' || document.body.dataset.error, null, { timeout: 20000 });
  const err = await tab.evaluate(() => document.body.dataset.error);
  assert.equal(err, undefined, `app error: ${err}; console: ${consoleErrors.join(' | ')}`);
  const out = JSON.parse(await tab.textContent('#out'));
  assert.equal(out.patient.resourceType, 'Patient');
  assert.equal(out.patient.id, patientId);
  assert.equal(out.patient.name[0].family, 'Browser');
  assert.equal(out.tokenType, 'Bearer');
  assert.match(out.scope, /user\/Patient\.rs/);
  assert.equal(out.serverUrl, s.fhirBase);
  assert.ok(out.hasIdToken, 'openid: an id_token');
  // Salus redirected with code, state and iss (RFC 9207); fhirclient then cleaned the address bar
  const cb = navigations.map((u) => new URL(u)).find((u) => u.pathname === '/app.html' && u.searchParams.get('code'));
  assert.ok(cb, `the redirect carried a code: ${navigations.join(' ')}`);
  assert.equal(cb.searchParams.get('iss'), s.base);
  assert.ok(cb.searchParams.get('state'));
  const used = cb.searchParams.get('code');
  const again = await s.request('POST', '/auth/token', {
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: used, client_id: 'webapp',
      redirect_uri: `https://127.0.0.1:${appPort}/app.html`, code_verifier: 'x'.repeat(43) }).toString(),
  });
  assert.equal(again.status, 400, 'a redeemed code cannot be used again');
  await ctx.close();
});

test('CORS: preflight and simple requests from the app origin; none on the login pages', { skip: !haveChromium }, async () => {
  const origin = `https://127.0.0.1:${appPort}`;
  const pre = await s.request('OPTIONS', '/fhir/Patient/x', {
    headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  assert.match(pre.headers['access-control-allow-headers'], /Authorization/);
  assert.equal(pre.headers['access-control-allow-credentials'], undefined);
  const meta = await s.request('GET', '/fhir/metadata', { headers: { origin } });
  assert.equal(meta.headers['access-control-allow-origin'], '*');
  const login = await s.request('GET', '/auth/authorize?client_id=webapp', { headers: { origin } });
  assert.equal(login.headers['access-control-allow-origin'], undefined);
  const opt = await s.request('OPTIONS', '/auth/authorize', { headers: { origin, 'access-control-request-method': 'POST' } });
  assert.notEqual(opt.status, 204);
  assert.equal(opt.headers['access-control-allow-origin'], undefined);
});
