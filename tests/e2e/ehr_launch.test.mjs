// ehr_launch.test.mjs — the SMART App Launch "EHR launch" in a real browser, Salus being the EHR:
// headless Debian Chromium (playwright-core) opens Salus's /auth/launch for a patient and an
// encounter → staff sign-in (password, TOTP) → Salus sends the browser to the app's registered
// launch URL with `iss` and an opaque `launch` → the app (npm `fhirclient` browser build) calls
// FHIR.oauth2.authorize(), which reads iss and launch from its own URL and adds the `launch`
// scope → Salus's consent page (the launching browser's sign-in carries over through the
// SameSite=Lax launch cookie) → FHIR.oauth2.ready() exchanges the code
// (PKCE S256) → the client knows the patient and encounter of the launch and reads them, and the
// order the launch named (fhirContext).
// Chromium trusts exactly the data directory's TLS key (as in smart_launch.test.mjs).
// Skips, saying why, when /usr/bin/chromium is absent.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generate } from 'otplib';
import { freePort, salus, startServer } from '../integration/lib/server.mjs';

const CHROMIUM = process.env.SALUS_CHROMIUM || '/usr/bin/chromium';
const HERE = path.dirname(fileURLToPath(import.meta.url));
const FHIRCLIENT = path.join(HERE, '../../node_modules/fhirclient/build/fhir-client.js');
const PW = 'a long and unusual passphrase 8';
const haveChromium = fs.existsSync(CHROMIUM);

let s, app, appPort, browser, patientId, otherId, encounterId, orderId, totpSecret;

const page = (title, script) => `<!doctype html><html lang=en><head><meta charset=utf-8><title>${title}</title>
<script src="/fhir-client.js"></script></head><body><h1>${title}</h1><pre id=out></pre>
<script>${script}</script></body></html>`;

// launch.html is the registered launch URL (no iss: fhirclient takes it, and launch, from the URL);
// app.html is the redirect URI.
const pages = {
  '/launch.html': page('Launch', `
    FHIR.oauth2.authorize({ clientId: 'ehrapp', scope: 'patient/*.rs openid fhirUser', redirectUri: 'app.html' })
      .catch((e) => { document.body.dataset.error = String(e); });`),
  '/app.html': page('App', `
    FHIR.oauth2.ready()
      .then(async (client) => {
        const p = await client.patient.read();
        const enc = await client.encounter.read();
        let other;
        try { await client.request('Patient/__OTHER__'); other = 'read'; } catch (e) { other = String(e.status || e); }
        const fhirContext = client.state.tokenResponse.fhirContext;
        const ctx0 = fhirContext && fhirContext.length ? await client.request(fhirContext[0].reference) : null;
        const out = { patientId: client.patient.id, encounterId: client.encounter.id, patient: p, encounter: enc, other,
          scope: client.state.tokenResponse.scope, serverUrl: client.state.serverUrl, user: client.getUserId(),
          fhirContext, ctx0 };
        document.getElementById('out').textContent = JSON.stringify(out);
        document.body.dataset.done = '1';
      })
      .catch((e) => { document.body.dataset.error = String(e && e.stack || e); });`),
};

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
  otherId = await mk({ resourceType: 'Patient', name: [{ family: 'Babbage' }] });
  encounterId = await mk({ resourceType: 'Encounter', status: 'in-progress', class: { code: 'AMB' },
    subject: { reference: `Patient/${patientId}` } });
  orderId = await mk({ resourceType: 'ServiceRequest', status: 'active', intent: 'order', code: { text: 'chest x-ray' },
    subject: { reference: `Patient/${patientId}` } });

  appPort = await freePort();
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

  let c = await salus(['client', 'add', '--data', s.dir, '--id', 'ehrapp', '--scope', 'patient/*.rs openid fhirUser',
    '--redirect-uri', `https://127.0.0.1:${appPort}/app.html`, '--launch-uri', `https://127.0.0.1:${appPort}/launch.html`,
    '--public']);
  assert.equal(c.code, 0, c.stderr);
  totpSecret = await s.addUser('drlovelace', 'clinician', ['--practitioner', 'prac-lovelace'], PW);

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

async function signIn(tab, step) {
  await tab.getByRole('heading', { name: 'Sign in' }).waitFor();
  await tab.getByLabel('Username').fill('drlovelace');
  await tab.getByLabel('Password').fill(PW);
  await tab.getByRole('button', { name: 'Sign in' }).click();
  await tab.getByRole('heading', { name: 'Two-step verification' }).waitFor();
  // each TOTP time step is accepted once: the second sign-in uses the next step
  const code = await generate({ secret: totpSecret, epoch: Math.floor(Date.now() / 1000) + step * 30 });
  await tab.getByLabel('Code').fill(code);
  await tab.getByRole('button', { name: 'Verify' }).click();
}

test('EHR launch with fhirclient: /auth/launch, launch URL with iss + launch, authorize, patient and encounter context', { skip: haveChromium ? false : `${CHROMIUM} is absent: install Debian's chromium to run the browser test` }, async () => {
  const ctx = await browser.newContext();
  const tab = await ctx.newPage();
  const consoleErrors = [];
  tab.on('console', (m) => m.type() === 'error' && consoleErrors.push(m.text()));
  const navigations = [];
  tab.on('framenavigated', (f) => f === tab.mainFrame() && navigations.push(f.url()));
  tab.setDefaultTimeout(20000);

  // the EHR side: a clinician opens the app for a patient and an encounter
  await tab.goto(`${s.base}/auth/launch?client_id=ehrapp&patient=${patientId}&encounter=${encounterId}&context=ServiceRequest/${orderId}`);
  assert.match(await tab.textContent('body'), new RegExp(`for patient ${patientId}`));
  await signIn(tab, -1);

  // the app's launch URL, then fhirclient sends the browser to Salus's authorization endpoint
  await tab.waitForURL((u) => u.origin === s.base && u.pathname === '/auth/authorize');
  const launchUrl = navigations.map((u) => new URL(u)).find((u) => u.pathname === '/launch.html');
  assert.ok(launchUrl, `the browser went to the launch URL: ${navigations.join(' ')}`);
  assert.equal(launchUrl.searchParams.get('iss'), s.fhirBase);
  const launch = launchUrl.searchParams.get('launch');
  assert.ok(launch && !launch.includes(patientId), 'an opaque launch value');
  const authz = new URL(tab.url());
  assert.equal(authz.searchParams.get('launch'), launch);
  assert.match(authz.searchParams.get('scope'), /(^| )launch( |$)/, 'fhirclient added the launch scope');
  assert.equal(authz.searchParams.get('aud'), s.fhirBase);

  // the browser that launched carries its sign-in over (the launch cookie): consent comes next
  await tab.getByRole('heading', { name: 'Allow access?' }).waitFor();
  assert.match(await tab.textContent('body'), /Signed in as drlovelace/);
  await tab.getByRole('button', { name: 'Allow' }).click();

  await tab.waitForURL((u) => u.origin === `https://127.0.0.1:${appPort}` && u.pathname === '/app.html');
  await tab.waitForFunction(() => document.body.dataset.done === '1' || document.body.dataset.error, null, { timeout: 20000 });
  const err = await tab.evaluate(() => document.body.dataset.error);
  assert.equal(err, undefined, `app error: ${err}; console: ${consoleErrors.join(' | ')}`);
  const out = JSON.parse(await tab.textContent('#out'));
  assert.equal(out.patientId, patientId);
  assert.equal(out.encounterId, encounterId);
  assert.equal(out.patient.name[0].family, 'Lovelace');
  assert.equal(out.encounter.subject.reference, `Patient/${patientId}`);
  assert.equal(out.other, '404', 'another patient is outside the launch context');
  assert.match(out.scope, /patient\/\*\.rs/);
  assert.equal(out.serverUrl, s.fhirBase);
  assert.equal(out.user, 'prac-lovelace');
  // SMART 2.x fhirContext: the launch's order, readable with the token
  assert.deepEqual(out.fhirContext, [{ reference: `ServiceRequest/${orderId}` }]);
  assert.equal(out.ctx0.id, orderId);

  // the launch value was single use
  const again = await s.request('GET', `/auth/authorize?${new URLSearchParams({ client_id: 'ehrapp', response_type: 'code',
    redirect_uri: `https://127.0.0.1:${appPort}/app.html`, scope: 'launch patient/*.rs', launch, state: 'x',
    code_challenge: 'a'.repeat(43), code_challenge_method: 'S256' })}`);
  assert.equal(again.status, 302);
  assert.equal(new URL(again.headers.location).searchParams.get('error'), 'invalid_request');
  await ctx.close();
});
