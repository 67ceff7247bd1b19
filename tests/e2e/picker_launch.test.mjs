// picker_launch.test.mjs — the SMART standalone launch with a patient context chosen by a staff
// user, in a real browser: headless Debian Chromium (playwright-core) loads a small SMART app that
// uses the npm `fhirclient` browser build and asks for launch/patient launch/encounter patient/*.rs;
// the clinician signs in on Salus's pages (password, TOTP from otplib), searches the patient picker
// by name, picks the patient, then the encounter, approves; back in the app, FHIR.oauth2.ready()
// redeems the code (PKCE S256) and client.patient.read() / client.encounter.read() return the
// chosen context, while another patient is not readable with the token.  Chromium trusts exactly
// the data directory's TLS key.  A screenshot of the picker is written to $SALUS_E2E_SHOTS.
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

let s, app, appPort, browser, patientId, otherId, encId, totpSecret;

const page = (title, script) => `<!doctype html><html lang=en><head><meta charset=utf-8><title>${title}</title>
<script src="/fhir-client.js"></script></head><body><h1>${title}</h1><pre id=out></pre>
<script>${script}</script></body></html>`;

// The app: launch.html starts the standalone launch, app.html is the redirect URI.
function appPages(fhirBase) {
  return {
    '/launch.html': page('Launch', `
      FHIR.oauth2.authorize({ clientId: 'pickerapp', scope: 'launch/patient launch/encounter openid fhirUser patient/*.rs',
        redirectUri: 'app.html', iss: ${JSON.stringify(fhirBase)} }).catch((e) => { document.body.dataset.error = String(e); });`),
    '/app.html': page('App', `
      FHIR.oauth2.ready()
        .then(async (client) => {
          const p = await client.patient.read();
          const e = await client.encounter.read();
          let other;
          try { await client.request('Patient/__OTHER__'); other = 'readable'; } catch (x) { other = x.status || String(x); }
          const t = client.state.tokenResponse;
          const out = { patient: p, encounter: e, patientId: client.patient.id, other, scope: t.scope,
            banner: t.need_patient_banner };
          document.getElementById('out').textContent = JSON.stringify(out);
          document.body.dataset.done = '1';
        })
        .catch((e) => { document.body.dataset.error = String(e && e.stack || e); });`),
  };
}

before(async () => {
  if (!haveChromium) return;
  s = await startServer({ clients: [{ id: 'writer', scope: 'system/*.cruds' }], plainTls: true });
  const w = await s.token('writer');
  const mk = async (body) => {
    const r = await s.request('POST', `/fhir/${body.resourceType}`, { token: w, body });
    assert.equal(r.status, 201, r.body);
    return r.json.id;
  };
  patientId = await mk({ resourceType: 'Patient', name: [{ family: 'Lovelace', given: ['Ada'] }], birthDate: '1815-12-10' });
  otherId = await mk({ resourceType: 'Patient', name: [{ family: 'Babbage', given: ['Charles'] }], birthDate: '1791-12-26' });
  encId = await mk({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' },
    subject: { reference: `Patient/${patientId}` }, period: { start: '2026-12-07' } });

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
    return res.end(html.replace('__OTHER__', otherId));
  });
  await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));

  let c = await salus(['client', 'add', '--data', s.dir, '--id', 'pickerapp', '--scope',
    'patient/*.rs openid fhirUser launch/patient launch/encounter', '--redirect-uri', `https://127.0.0.1:${appPort}/app.html`, '--public']);
  assert.equal(c.code, 0, c.stderr);
  const pw = path.join(s.tmp, 'pw');
  const totpFile = path.join(s.tmp, 'totp');
  fs.writeFileSync(pw, PW, { mode: 0o600 });
  c = await salus(['user', 'add', '--data', s.dir, '--username', 'drpicker', '--role', 'clinician', '--password-file', pw,
    '--practitioner', 'prac-picker', '--totp-secret-out', totpFile]);
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

test('standalone launch/patient with fhirclient: sign-in, patient picker, encounter picker, consent, context', { skip: haveChromium ? false : `${CHROMIUM} is absent: install Debian's chromium to run the browser test` }, async () => {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const consoleErrors = [];
  tab.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  tab.setDefaultTimeout(20000);

  await tab.goto(`https://127.0.0.1:${appPort}/launch.html`);
  await tab.waitForURL((u) => u.origin === s.base && u.pathname === '/auth/authorize');
  const authz = new URL(tab.url());
  assert.equal(authz.searchParams.get('launch'), null, 'a standalone launch: no launch parameter');
  assert.match(authz.searchParams.get('scope'), /launch\/patient/);
  await tab.getByLabel('Username').fill('drpicker');
  await tab.getByLabel('Password').fill(PW);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('heading', { name: 'Two-step verification' }).waitFor();
  await tab.getByLabel('Code').fill(await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) }));
  await tab.getByRole('button', { name: 'Verify' }).click();

  // the patient picker: search by name, then by birth date; pick from the hits
  await tab.getByRole('heading', { name: 'Choose a patient' }).waitFor();
  await tab.getByLabel('Name').fill('lovelace');
  await tab.getByRole('button', { name: 'Search' }).click();
  await tab.getByRole('button', { name: /Lovelace, Ada/ }).waitFor();
  assert.equal(await tab.getByRole('button', { name: /Babbage/ }).count(), 0);
  await tab.getByLabel('Birth date').fill('1791-12-26');
  await tab.getByRole('button', { name: 'Search' }).click();
  await tab.getByRole('button', { name: /Babbage, Charles/ }).waitFor();
  await tab.getByLabel('Name').fill('Ada');
  await tab.getByLabel('Birth date').fill('1815-12-10');
  await tab.getByRole('button', { name: 'Search' }).click();
  const shot = path.join(process.env.SALUS_E2E_SHOTS || os.tmpdir(), 'salus-picker.png');
  await tab.getByRole('button', { name: /Lovelace, Ada/ }).waitFor();
  await tab.screenshot({ path: shot, fullPage: true });
  console.log(`patient picker screenshot: ${shot}`);
  await tab.getByRole('button', { name: /Lovelace, Ada/ }).click();

  // the encounter picker, then the consent page naming the chosen context
  await tab.getByRole('heading', { name: 'Choose an encounter' }).waitFor();
  await tab.getByRole('button', { name: /AMB \(in-progress\)/ }).click();
  await tab.getByRole('heading', { name: 'Allow access?' }).waitFor();
  assert.match(await tab.textContent('body'), /patient Lovelace, Ada, 1815-12-10, encounter AMB \(in-progress\)/);
  await tab.getByRole('button', { name: 'Allow' }).click();

  await tab.waitForURL((u) => u.origin === `https://127.0.0.1:${appPort}` && u.pathname === '/app.html');
  await tab.waitForFunction(() => document.body.dataset.done === '1' || document.body.dataset.error, null, { timeout: 20000 });
  const err = await tab.evaluate(() => document.body.dataset.error);
  assert.equal(err, undefined, `app error: ${err}; console: ${consoleErrors.join(' | ')}`);
  const out = JSON.parse(await tab.textContent('#out'));
  assert.equal(out.patientId, patientId);
  assert.equal(out.patient.id, patientId);
  assert.equal(out.patient.name[0].family, 'Lovelace');
  assert.equal(out.encounter.id, encId);
  assert.equal(out.other, 404, 'another patient is outside the chosen context');
  assert.match(out.scope, /launch\/patient/);
  assert.match(out.scope, /launch\/encounter/);
  assert.equal(out.banner, true);
  await ctx.close();
});
