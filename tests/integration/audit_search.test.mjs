// audit_search.test.mjs — the audit trail through the FHIR API and the
// accounting-of-disclosures report (docs/audit.md, "Searching the trail"):
// a scripted mix of interactions (creates, reads, searches, 401/403/404,
// refused writes to AuditEvent) by clients with different scopes, then an
// auditor client (system/AuditEvent.rs) checks through GET /fhir/AuditEvent
// that exactly the expected events exist (by agent, patient, action,
// outcome), pages through them, reads one, and `salus report access` lists
// the patient's accesses as text, CSV and a FHIR Bundle.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DEFAULT_CLIENTS, salus, startServer } from './lib/server.mjs';

const REST = 'http://terminology.hl7.org/CodeSystem/audit-event-type|rest';
let s, full, ro, auditor;
const ids = {};
let auditorRequests = 0;

before(async () => {
  s = await startServer({ clients: [...DEFAULT_CLIENTS, { id: 'auditor', scope: 'system/AuditEvent.rs' }] });
  full = await s.token('full');
  ro = await s.token('readonly');
  auditor = await s.token('auditor');
});
after(async () => {
  await s?.stop();
});

async function asAuditor(method, p, body) {
  auditorRequests++;
  return s.request(method, p, { token: auditor, body });
}

/** Every AuditEvent of a search, following the next links. */
async function all(query) {
  const out = [];
  let url = `/fhir/AuditEvent?${query}`;
  let total;
  while (url) {
    const r = await asAuditor('GET', url);
    assert.equal(r.status, 200, `${url}: ${r.body}`);
    assert.equal(r.json.type, 'searchset');
    total ??= r.json.total;
    for (const e of r.json.entry ?? []) {
      assert.equal(e.resource.resourceType, 'AuditEvent');
      assert.equal(e.fullUrl, `${s.fhirBase}/AuditEvent/${e.resource.id}`);
      out.push(e.resource);
    }
    const next = r.json.link.find((l) => l.relation === 'next');
    url = next ? next.url.slice(s.base.length) : null;
  }
  assert.equal(out.length, total, `${query}: total`);
  return out;
}

const client = (ev) => ev.agent.find((a) => a.who?.identifier?.system === 'urn:salus:client')?.who.identifier.value;
const sub = (ev) => ev.subtype?.[0]?.code;
// the references of the event's entities (the resource and every patient touched), versions dropped
const what = (ev) =>
  [...new Set((ev.entity || []).map((e) => e.what?.reference?.replace(/\/_history\/\d+$/, '')).filter(Boolean))].sort().join(' ');
const key = (ev) => `${ev.action} ${sub(ev)} ${ev.outcome} ${what(ev)}`.trim();
const sorted = (evs) => evs.map(key).sort();

test('a scripted mix of interactions', async () => {
  const pat = (family) => ({ resourceType: 'Patient', name: [{ family }] });
  let r = await s.request('POST', '/fhir/Patient', { token: full, body: pat('Alpha') });
  assert.equal(r.status, 201);
  ids.pA = r.json.id;
  r = await s.request('POST', '/fhir/Patient', { token: full, body: pat('Beta') });
  assert.equal(r.status, 201);
  ids.pB = r.json.id;
  r = await s.request('POST', '/fhir/Observation', {
    token: full,
    body: {
      resourceType: 'Observation',
      status: 'final',
      code: { text: 'heart rate' },
      subject: { reference: `Patient/${ids.pA}` },
    },
  });
  assert.equal(r.status, 201);
  ids.o1 = r.json.id;
  assert.equal((await s.request('GET', `/fhir/Patient/${ids.pA}`, { token: full })).status, 200);
  assert.equal((await s.request('GET', `/fhir/Observation?subject=Patient/${ids.pA}`, { token: full })).status, 200);
  assert.equal((await s.request('GET', `/fhir/Patient/${ids.pB}`, { token: ro })).status, 200);
  assert.equal((await s.request('GET', `/fhir/Observation/${ids.o1}`, { token: ro })).status, 403);
  assert.equal((await s.request('GET', '/fhir/Patient/no-such-patient', { token: ro })).status, 404);
  assert.equal((await s.request('GET', `/fhir/Patient/${ids.pA}`)).status, 401);
  // the store has no AuditEvent resources, and the readonly client may not search the trail
  assert.equal((await s.request('GET', '/fhir/AuditEvent', { token: ro })).status, 403);
});

test('AuditEvents are read-only, even with system/*.cruds', async () => {
  const ev = { resourceType: 'AuditEvent', type: { code: 'rest' }, recorded: '2024-01-01T00:00:00Z', agent: [], source: { observer: { display: 'x' } } };
  assert.equal((await s.request('POST', '/fhir/AuditEvent', { token: full, body: ev })).status, 405);
  assert.equal((await s.request('PUT', '/fhir/AuditEvent/0', { token: full, body: { ...ev, id: '0' } })).status, 405);
  assert.equal((await s.request('DELETE', '/fhir/AuditEvent/0', { token: full })).status, 405);
  const patch = await s.request('PATCH', '/fhir/AuditEvent/0', {
    token: full,
    headers: { 'content-type': 'application/json-patch+json' },
    body: JSON.stringify([{ op: 'replace', path: '/outcome', value: '0' }]),
  });
  assert.equal(patch.status, 405);
  const tx = await s.request('POST', '/fhir', {
    token: full,
    body: { resourceType: 'Bundle', type: 'transaction', entry: [{ resource: ev, request: { method: 'POST', url: 'AuditEvent' } }] },
  });
  assert.ok(tx.status >= 400 && tx.status < 500, `transaction: ${tx.status}`);
  const batch = await s.request('POST', '/fhir', {
    token: full,
    body: { resourceType: 'Bundle', type: 'batch', entry: [{ request: { method: 'DELETE', url: 'AuditEvent/0' } }] },
  });
  assert.equal(batch.status, 200);
  assert.doesNotMatch(batch.json.entry[0].response.status, /^2/); // 405: refused when routed
  // nothing was written: event 0 is still the server's own first event
  const r = await asAuditor('GET', '/fhir/AuditEvent/0');
  assert.equal(r.status, 200);
  assert.equal(r.json.id, '0');
});

test('exactly the expected AuditEvents, by agent, patient, action and outcome', async () => {
  const { pA, pB, o1 } = ids;
  assert.deepEqual(
    sorted(await all(`agent=readonly&type=${encodeURIComponent(REST)}`)),
    [`R read 0 Patient/${pB}`, 'R read 4 Patient/no-such-patient', `R read 4 Observation/${o1}`, 'E search-type 4'].sort(),
  );
  const byFull = await all(`agent=full&type=${encodeURIComponent(REST)}`);
  assert.deepEqual(
    sorted(byFull.filter((e) => e.outcome === '0' && e.action !== 'E')),
    [
      `C create 0 Patient/${pA}`,
      `C create 0 Patient/${pB}`,
      `C create 0 Observation/${o1} Patient/${pA}`,
      `R read 0 Patient/${pA}`,
    ].sort(),
  );
  // the refused writes to AuditEvent: create, update, delete, patch, all outcome 4
  assert.deepEqual(
    byFull.filter((e) => e.outcome === "4" && e.action !== "E").map((e) => `${e.action} ${e.outcome}`).sort(),
    ['C 4', 'D 4', 'U 4', 'U 4'],
  );
  // the same through the agent's identifier, and the outcome / action tokens
  assert.equal((await all('agent=urn:salus:client|readonly&outcome=4')).length, 3);
  assert.equal((await all('agent:identifier=urn:salus:client|full&action=C&outcome=0')).length, 3);
  // patient: the full client's accesses to pA (its search found pA's Observation)
  assert.deepEqual(
    sorted(await all(`patient=${pA}&agent=full`)),
    [
      `C create 0 Patient/${pA}`,
      `C create 0 Observation/${o1} Patient/${pA}`,
      `R read 0 Patient/${pA}`,
      `E search-type 0 Patient/${pA}`,
    ].sort(),
  );
  // the read's event: the caller's address as the agent's network address, the version read
  const [readA] = byFull.filter((e) => e.outcome === '0' && e.action === 'R');
  assert.equal(readA.agent[0].network?.address, '127.0.0.1');
  assert.equal(readA.agent[0].network?.type, '2');
  assert.ok(readA.entity.some((e) => e.what?.reference === `Patient/${pA}/_history/1`), JSON.stringify(readA.entity));
  // the 401 without a token: one failed read of pA, by no client
  const denied = await all(`patient=Patient/${pA}&outcome=4`);
  assert.equal(denied.length, 1);
  assert.equal(client(denied[0]), undefined);
  assert.equal(denied[0].outcomeDesc, 'HTTP 401');
  assert.equal((await all(`patient=${pB}&agent=readonly`)).length, 1);
  // entity and date
  assert.equal((await all(`entity=Observation/${o1}&agent=readonly`)).length, 1);
  assert.equal((await all('date=lt2000-01-01')).length, 0);
  const recent = await all(`date=ge${new Date(Date.now() - 3600e3).toISOString()}&agent=readonly&type=${encodeURIComponent(REST)}`);
  assert.equal(recent.length, 4);
  // and its token issue: POST /auth/token is audited too (DCM 110114 User Authentication, outcome 0)
  const login = await all(`agent=readonly&type=${encodeURIComponent('http://dicom.nema.org/resources/ontology/DCM|110114')}`);
  assert.deepEqual(login.map((e) => e.outcome), ['0']);
});

test('paging, sorting, read by id, and every access to the trail audited', async () => {
  const whole = await all('agent=full');
  const pages = await all('agent=full&_count=2');
  assert.deepEqual(pages.map((e) => e.id), whole.map((e) => e.id));
  const ts = whole.map((e) => Date.parse(e.recorded));
  assert.deepEqual(ts, [...ts].sort((a, b) => b - a), 'newest first by default');
  const asc = await all('agent=full&_sort=date');
  assert.deepEqual(asc.map((e) => e.id), [...whole].reverse().map((e) => e.id));
  const one = await asAuditor('GET', `/fhir/AuditEvent/${whole[0].id}`);
  assert.equal(one.status, 200);
  assert.deepEqual(one.json, whole[0]);
  assert.equal((await asAuditor('GET', '/fhir/AuditEvent/999999')).status, 404);
  assert.equal((await asAuditor('GET', '/fhir/AuditEvent?unknown=1')).status, 400);
  const before = auditorRequests;
  const mine = await all(`agent=auditor&type=${encodeURIComponent(REST)}`);
  // every earlier auditor request is in the trail (this search's own pages are recorded after they answer)
  assert.ok(mine.length >= before, `${mine.length} audited of ${before}`);
  assert.ok(mine.every((e) => ['R', 'E'].includes(e.action)));
});

test('salus report access: text, CSV and a FHIR Bundle', async () => {
  const { pA } = ids;
  const text = await salus(['report', 'access', '--data', s.dir, '--patient', pA]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`Accounting of disclosures for Patient/${pA}`));
  assert.match(text.stdout, /full\s/);

  const csv = await salus(['report', 'access', '--data', s.dir, '--patient', pA, '--format', 'csv']);
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.split('\r\n').filter(Boolean);
  assert.equal(lines[0], 'time,event,client,user,action,outcome,resource,purpose,address');
  const rows = lines.slice(1).map((l) => l.split(','));
  assert.ok(rows.every((r) => r.length === 9), 'nine columns, no unquoted commas');
  const fullRows = rows.filter((r) => r[2] === 'full').map((r) => r[4]).sort();
  assert.deepEqual(fullRows, ['C create', 'C create', 'E search-type', 'R read']);
  assert.ok(rows.some((r) => r[2] === '' && r[5] === '4 (HTTP 401)'));
  assert.ok(rows.every((r) => r[8] === '' || r[8] === '127.0.0.1'));

  const fhir = await salus(['report', 'access', '--data', s.dir, '--patient', pA, '--format', 'fhir', '--since', '2020-01-01']);
  assert.equal(fhir.code, 0, fhir.stderr);
  const b = JSON.parse(fhir.stdout);
  assert.equal(b.resourceType, 'Bundle');
  assert.equal(b.entry.length, b.total);
  // the CSV report run in between is itself an access to the patient's trail
  assert.equal(b.total, rows.length + 1);
  assert.ok(b.entry.every((e) => e.resource.resourceType === 'AuditEvent'));
  assert.ok(b.entry.some((e) => e.resource.type.code === '110101'), 'the report run is audited');

  const none = await salus(['report', 'access', '--data', s.dir, '--patient', pA, '--since', '2999-01-01', '--format', 'csv']);
  assert.equal(none.code, 0);
  assert.equal(none.stdout, 'time,event,client,user,action,outcome,resource,purpose,address\r\n');
  assert.equal((await salus(['report', 'access', '--data', s.dir])).code, 2);
  assert.equal((await salus(['report', 'access', '--data', s.dir, '--patient', 'a/b'])).code, 2);
});

test('Patient/X/AuditEvent is the compartment search of the trail (AuditEvent?patient=X)', async () => {
  const comp = await all_(`/fhir/Patient/${ids.pA}/AuditEvent?_count=500`);
  const byType = await all_(`/fhir/AuditEvent?patient=${ids.pA}&_count=500`);
  assert.ok(comp.length > 0);
  const t = new Set(byType.map((e) => e.id));
  for (const e of comp) {
    assert.ok(t.has(e.id), `event ${e.id} of the compartment search is in the type search`);
    assert.ok(what(e).includes(`Patient/${ids.pA}`));
  }
  assert.ok(byType.length - comp.length <= 1, 'at most the compartment search\'s own event more');
  // a patient-context or restricted grant is refused, never widened
  const r = await s.request('GET', `/fhir/Patient/${ids.pA}/AuditEvent`, { token: ro });
  assert.equal(r.status, 403);
});

/** Every entry of a search URL as the auditor, following next links. */
async function all_(first) {
  const out = [];
  let url = first;
  while (url) {
    const r = await asAuditor('GET', url);
    assert.equal(r.status, 200, `${url}: ${r.body}`);
    for (const e of r.json.entry || []) out.push(e.resource);
    const next = r.json.link.find((l) => l.relation === 'next');
    url = next ? next.url.slice(s.base.length) : null;
  }
  return out;
}
