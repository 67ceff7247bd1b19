// crud.test.mjs — FHIR R4 REST driven by a third-party client (fhir-kit-client):
// create / read / update / vread / update-as-create / delete (410), history at
// instance, type and system level with _count paging (no duplicates, no gaps,
// stable while writes continue), _since, If-Match, Prefer, and resources of
// every one of the 146 R4 resource types stored and read back unchanged.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Client } from 'fhir-kit-client';
import { isOutcome, r4ResourceTypes, startServer } from './lib/server.mjs';

let s;
let c; // fhir-kit-client with a system/*.cruds token
let tok;
before(async () => {
  s = await startServer({ clients: [{ id: 'full', scope: 'system/*.cruds' }] });
  tok = await s.token('full');
  c = s.fhirClient(tok);
});
after(async () => {
  await s?.stop();
});

const res = (x) => Client.httpFor(x).response;
const INSTANT = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/;
const strip = ({ id, meta, ...rest }) => rest; // eslint-disable-line no-unused-vars

/** The first valid official R4 example of a type (npm hl7.fhir.r4.examples), or undefined. */
const EXAMPLES = new URL('../../node_modules/hl7.fhir.r4.examples/', import.meta.url);
const KNOWN_BAD = /^(Questionnaire-qs1|ImplementationGuide-fhir)\.json$/;
// the only examples of these types break R4 reference targets (tests/unit/fhir/validate_known_bad.inc)
const FIX = { DeviceMetric: (b) => delete b.parent, DeviceUseStatement: (b) => delete b.reasonReference };
function exampleOf(t) {
  const f = readdirSync(EXAMPLES).filter((n) => n.startsWith(`${t}-`) && !KNOWN_BAD.test(n)).sort()[0];
  if (!f) return undefined;
  const b = JSON.parse(readFileSync(new URL(f, EXAMPLES), 'utf8'));
  FIX[t]?.(b);
  return b;
}

/** Status of a fhir-kit-client call that is expected to fail. */
async function failStatus(p) {
  try {
    await p;
  } catch (e) {
    if (e.response) return { status: e.response.status, data: e.response.data };
    throw e;
  }
  assert.fail('request succeeded but was expected to fail');
}

/** Follow `next` links with fhir-kit-client; returns every page. */
async function allPages(first) {
  const pages = [first];
  for (let b = first; ; ) {
    const n = c.nextPage({ bundle: b });
    if (!n) break;
    b = await n;
    pages.push(b);
    assert.ok(pages.length < 1000, 'runaway paging');
  }
  return pages;
}

describe('instance lifecycle', () => {
  let v1;
  let v2;
  const patient = {
    resourceType: 'Patient',
    id: 'client-chose-this', // ignored by create: the server assigns ids
    active: true,
    name: [{ use: 'official', family: 'Ndiaye', given: ['Aïssatou', 'Zoë'] }],
    telecom: [{ system: 'phone', value: '+1 555 0100' }],
    gender: 'female',
    birthDate: '1984-02-29',
    extension: [{ url: 'http://example.org/fhir/StructureDefinition/nick', valueString: '李 🙂 "quoted" \\ back' }],
  };

  test('create → 201, Location, ETag W/"1", server id, meta', async () => {
    const t0 = Date.now();
    v1 = await c.create({ resourceType: 'Patient', body: patient });
    const r = res(v1);
    assert.equal(r.status, 201);
    assert.match(r.headers.get('content-type'), /^application\/fhir\+json/);
    assert.ok(v1.id && v1.id !== 'client-chose-this', `server-assigned id, got ${v1.id}`);
    assert.match(v1.id, /^[A-Za-z0-9\-.]{1,64}$/);
    assert.equal(r.headers.get('location'), `${s.fhirBase}/Patient/${v1.id}/_history/1`);
    assert.equal(r.headers.get('etag'), 'W/"1"');
    assert.ok(r.headers.get('last-modified'));
    assert.equal(v1.meta.versionId, '1');
    assert.match(v1.meta.lastUpdated, INSTANT);
    const lu = Date.parse(v1.meta.lastUpdated);
    assert.ok(lu >= t0 - 2000 && lu <= Date.now() + 2000, 'lastUpdated is now');
    assert.ok(Math.abs(Date.parse(r.headers.get('last-modified')) - lu) < 1000, 'Last-Modified matches meta');
    const { id, ...sent } = patient;
    assert.deepEqual(strip(v1), sent);
  });

  test('read returns what create returned', async () => {
    const got = await c.read({ resourceType: 'Patient', id: v1.id });
    assert.deepEqual(got, v1);
    assert.equal(res(got).headers.get('etag'), 'W/"1"');
  });

  test('update → 200, version 2', async () => {
    const body = { ...v1, name: [{ family: 'Ndiaye-Sow', given: ['Aïssatou'] }], meta: { versionId: '77' } };
    v2 = await c.update({ resourceType: 'Patient', id: v1.id, body });
    const r = res(v2);
    assert.equal(r.status, 200);
    assert.equal(v2.meta.versionId, '2', 'server sets versionId, ignoring the client');
    assert.equal(r.headers.get('etag'), 'W/"2"');
    assert.equal(r.headers.get('location'), `${s.fhirBase}/Patient/${v1.id}/_history/2`);
    assert.ok(Date.parse(v2.meta.lastUpdated) >= Date.parse(v1.meta.lastUpdated));
    assert.equal(v2.name[0].family, 'Ndiaye-Sow');
    assert.deepEqual(await c.read({ resourceType: 'Patient', id: v1.id }), v2);
  });

  test('vread of versions 1 and 2; version 3 → 404', async () => {
    const a = await c.vread({ resourceType: 'Patient', id: v1.id, version: '1' });
    const b = await c.vread({ resourceType: 'Patient', id: v1.id, version: '2' });
    assert.deepEqual(a, v1);
    assert.deepEqual(b, v2);
    assert.equal(res(a).headers.get('etag'), 'W/"1"');
    const e = await failStatus(c.vread({ resourceType: 'Patient', id: v1.id, version: '3' }));
    assert.equal(e.status, 404);
    assert.ok(isOutcome(e.data));
  });

  test('If-Match: matching → 200, stale → 412 and nothing changes', async () => {
    const ok = await c.update({
      resourceType: 'Patient',
      id: v1.id,
      body: { ...v2, gender: 'other' },
      options: { headers: { 'If-Match': 'W/"2"' } },
    });
    assert.equal(res(ok).status, 200);
    assert.equal(ok.meta.versionId, '3');
    const stale = await failStatus(
      c.update({ resourceType: 'Patient', id: v1.id, body: { ...v2, gender: 'male' }, options: { headers: { 'If-Match': 'W/"2"' } } }),
    );
    assert.equal(stale.status, 412);
    assert.ok(isOutcome(stale.data));
    const staleDel = await failStatus(c.delete({ resourceType: 'Patient', id: v1.id, options: { headers: { 'If-Match': 'W/"1"' } } }));
    assert.equal(staleDel.status, 412);
    const now = await c.read({ resourceType: 'Patient', id: v1.id });
    assert.equal(now.meta.versionId, '3');
    assert.equal(now.gender, 'other');
    const bad = await failStatus(
      c.update({ resourceType: 'Patient', id: v1.id, body: now, options: { headers: { 'If-Match': 'three' } } }),
    );
    assert.equal(bad.status, 400);
  });

  test('instance history: every version, newest first', async () => {
    const h = await c.resourceHistory({ resourceType: 'Patient', id: v1.id });
    assert.equal(h.resourceType, 'Bundle');
    assert.equal(h.type, 'history');
    assert.equal(h.total, 3);
    assert.deepEqual(
      h.entry.map((e) => e.resource.meta.versionId),
      ['3', '2', '1'],
    );
    assert.equal(h.entry[2].request.method, 'POST');
    assert.equal(h.entry[1].request.method, 'PUT');
    assert.equal(h.entry[0].response.etag, 'W/"3"');
    assert.deepEqual(h.entry[2].resource, v1);
  });

  test('delete → 200; read → 410; history and vread keep every version', async () => {
    const d = await c.delete({ resourceType: 'Patient', id: v1.id });
    assert.ok([200, 204].includes(res(d).status));
    const gone = await failStatus(c.read({ resourceType: 'Patient', id: v1.id }));
    assert.equal(gone.status, 410);
    assert.ok(isOutcome(gone.data));
    const old = await c.vread({ resourceType: 'Patient', id: v1.id, version: '1' });
    assert.deepEqual(old, v1);
    const h = await c.resourceHistory({ resourceType: 'Patient', id: v1.id });
    assert.equal(h.total, 4);
    assert.equal(h.entry[0].request.method, 'DELETE');
    assert.equal(h.entry[0].resource, undefined);
    assert.equal(h.entry.filter((e) => e.resource).length, 3);
    // the tombstone version itself is not readable as a resource
    const vTomb = await failStatus(c.vread({ resourceType: 'Patient', id: v1.id, version: '4' }));
    assert.ok([404, 410].includes(vTomb.status), `vread of the tombstone: ${vTomb.status}`);
  });

  test('update after delete brings the resource back as a new version', async () => {
    const back = await c.update({ resourceType: 'Patient', id: v1.id, body: { resourceType: 'Patient', id: v1.id, active: false } });
    assert.ok([200, 201].includes(res(back).status));
    assert.equal(back.meta.versionId, '5');
    assert.equal((await c.read({ resourceType: 'Patient', id: v1.id })).active, false);
  });

  test('read of an id that never existed → 404 OperationOutcome', async () => {
    const e = await failStatus(c.read({ resourceType: 'Patient', id: 'never-was' }));
    assert.equal(e.status, 404);
    assert.ok(isOutcome(e.data));
  });
});

describe('update-as-create and Prefer', () => {
  test('PUT with a client id creates it: 201, version 1', async () => {
    const body = { resourceType: 'Observation', id: 'bp-2024.01-a', status: 'final', code: { text: 'BP' } };
    const o = await c.update({ resourceType: 'Observation', id: 'bp-2024.01-a', body });
    const r = res(o);
    assert.equal(r.status, 201);
    assert.equal(o.id, 'bp-2024.01-a');
    assert.equal(o.meta.versionId, '1');
    assert.equal(r.headers.get('location'), `${s.fhirBase}/Observation/bp-2024.01-a/_history/1`);
    const again = await c.update({ resourceType: 'Observation', id: 'bp-2024.01-a', body });
    assert.equal(res(again).status, 200);
    assert.equal(again.meta.versionId, '2');
  });

  test('Prefer: return=minimal → empty body with Location and ETag', async () => {
    for (const [m, p, body, want] of [
      ['POST', '/fhir/Patient', { resourceType: 'Patient', active: true }, 201],
      ['PUT', '/fhir/Patient/minimal-1', { resourceType: 'Patient', id: 'minimal-1' }, 201],
      ['PUT', '/fhir/Patient/minimal-1', { resourceType: 'Patient', id: 'minimal-1', active: true }, 200],
    ]) {
      const r = await s.request(m, p, { token: tok, body, headers: { prefer: 'return=minimal' } });
      assert.equal(r.status, want, r.body);
      assert.equal(r.body, '', 'minimal means no body');
      assert.match(r.headers.location, /\/_history\/\d+$/);
      assert.match(r.headers.etag, /^W\/"\d+"$/);
    }
    const read = await s.request('GET', '/fhir/Patient/minimal-1', { token: tok });
    assert.equal(read.json.active, true);
  });

  test('Prefer: return=OperationOutcome and return=representation', async () => {
    const oo = await s.request('POST', '/fhir/Patient', {
      token: tok,
      body: { resourceType: 'Patient' },
      headers: { prefer: 'return=OperationOutcome' },
    });
    assert.equal(oo.status, 201);
    assert.equal(oo.json.resourceType, 'OperationOutcome');
    assert.ok(oo.headers.location);
    const rep = await s.request('POST', '/fhir/Patient', {
      token: tok,
      body: { resourceType: 'Patient', gender: 'unknown' },
      headers: { prefer: 'return=representation' },
    });
    assert.equal(rep.status, 201);
    assert.equal(rep.json.resourceType, 'Patient');
    assert.equal(rep.json.gender, 'unknown');
  });

  test('50 concurrent creates: all 201, distinct ids, all readable', async () => {
    const made = await Promise.all(
      Array.from({ length: 50 }, (_, i) => c.create({ resourceType: 'Basic', body: { resourceType: 'Basic', code: { text: `n${i}` } } })),
    );
    const ids = new Set(made.map((m) => m.id));
    assert.equal(ids.size, 50);
    const back = await Promise.all(made.map((m) => c.read({ resourceType: 'Basic', id: m.id })));
    assert.deepEqual(
      back.map((b) => b.code.text).sort(),
      made.map((m) => m.code.text).sort(),
    );
  });
});

describe('history paging', () => {
  const N = 23;
  let created = [];
  before(async () => {
    for (let i = 0; i < N; i++) {
      created.push(await c.create({ resourceType: 'Condition', body: { resourceType: 'Condition', subject: { reference: 'Patient/x' }, note: [{ text: `c${i}` }] } }));
    }
    // give some a second version
    for (const x of created.slice(0, 4)) await c.update({ resourceType: 'Condition', id: x.id, body: { ...x, clinicalStatus: { text: 'active' } } });
  });

  const key = (e) => `${e.resource?.id ?? e.fullUrl}@${e.response?.etag ?? e.resource?.meta?.versionId}`;

  test('type history with _count=5: next links until exhausted, no duplicates, no gaps', async () => {
    const first = await c.request('Condition/_history?_count=5');
    assert.equal(first.total, N + 4);
    const pages = await allPages(first);
    assert.equal(pages.length, Math.ceil((N + 4) / 5));
    for (const p of pages.slice(0, -1)) assert.equal(p.entry.length, 5);
    const keys = pages.flatMap((p) => p.entry.map(key));
    assert.equal(new Set(keys).size, keys.length, 'duplicate entries across pages');
    assert.equal(keys.length, N + 4, 'gaps across pages');
    for (const x of created) {
      assert.ok(keys.includes(`${x.id}@W/"1"`), `missing ${x.id} v1`);
    }
    assert.equal(pages.at(-1).link.find((l) => l.relation === 'next'), undefined);
    // newest first across page boundaries
    const times = pages.flatMap((p) => p.entry.map((e) => Date.parse(e.response.lastModified)));
    for (let i = 1; i < times.length; i++) assert.ok(times[i] <= times[i - 1], 'history must be newest first');
  });

  test('paging is a stable snapshot while writes continue', async () => {
    const first = await c.request('Condition/_history?_count=4');
    const seen = first.entry.map(key);
    let b = first;
    let extra = 0;
    for (;;) {
      // write between page fetches: these must not shift or repeat entries
      await c.create({ resourceType: 'Condition', body: { resourceType: 'Condition', subject: { reference: 'Patient/y' } } });
      extra++;
      const n = c.nextPage({ bundle: b });
      if (!n) break;
      b = await n;
      seen.push(...b.entry.map(key));
    }
    assert.equal(new Set(seen).size, seen.length, 'duplicates');
    assert.equal(seen.length, first.total, 'entry count equals the total of the first page');
    const now = await c.request('Condition/_history?_count=0');
    assert.equal(now.total, first.total + extra);
    assert.deepEqual(now.entry ?? [], []);
  });

  test('system history with paging covers every version of every type', async () => {
    const first = await c.request('_history?_count=7');
    const pages = await allPages(first);
    const entries = pages.flatMap((p) => p.entry);
    assert.equal(entries.length, first.total);
    const keys = entries.map((e) => `${e.fullUrl}@${e.response.etag}`);
    assert.equal(new Set(keys).size, keys.length);
    const types = new Set(entries.map((e) => e.fullUrl.split('/').at(-2)));
    for (const t of ['Patient', 'Observation', 'Condition', 'Basic']) assert.ok(types.has(t), t);
  });

  test('instance history paging with _count=1', async () => {
    const x = created[0];
    const pages = await allPages(await c.request(`Condition/${x.id}/_history?_count=1`));
    assert.deepEqual(
      pages.map((p) => p.entry[0].resource.meta.versionId),
      ['2', '1'],
    );
  });

  test('_since keeps only versions at or after the instant', async () => {
    const a = await c.create({ resourceType: 'Flag', body: { resourceType: 'Flag', status: 'active', code: { text: 'a' }, subject: { reference: 'Patient/x' } } });
    // the next write must get a later lastUpdated than `a`
    while (Date.now() <= Date.parse(a.meta.lastUpdated) + 2) await new Promise((r) => setTimeout(r, 2));
    const b = await c.create({ resourceType: 'Flag', body: { resourceType: 'Flag', status: 'active', code: { text: 'b' }, subject: { reference: 'Patient/x' } } });
    const since = encodeURIComponent(b.meta.lastUpdated);
    const h = await c.request(`Flag/_history?_since=${since}`);
    const ids = h.entry.map((e) => e.resource.id);
    assert.deepEqual(ids, [b.id]);
    assert.equal(h.total, 1);
    const all = await c.request(`Flag/_history?_since=2000-01-01T00:00:00Z`);
    assert.equal(all.total, 2);
    const future = await c.request(`Flag/_history?_since=2999-01-01T00:00:00Z`);
    assert.equal(future.total, 0);
    for (const bad of ['yesterday', '2024-13-01T00:00:00Z', '']) {
      const e = await failStatus(c.request(`Flag/_history?_since=${encodeURIComponent(bad)}`));
      assert.equal(e.status, 400, `_since=${bad}`);
    }
  });

  test('bad _count → 400', async () => {
    for (const v of ['-1', 'ten', '1000000']) {
      const e = await failStatus(c.request(`Condition/_history?_count=${v}`));
      assert.equal(e.status, 400, `_count=${v}`);
      assert.ok(isOutcome(e.data));
    }
  });
});

// Minimal valid R4 resources of many types, each read back unchanged.
const SAMPLES = [
  { resourceType: 'Patient', name: [{ family: 'Smith', given: ['Ann'] }], birthDate: '1970-01-01' },
  {
    resourceType: 'Observation',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8867-4', display: 'Heart rate' }] },
    subject: { reference: 'Patient/example' },
    effectiveDateTime: '2024-05-01T10:30:00+02:00',
    valueQuantity: { value: 72, unit: 'beats/minute', system: 'http://unitsofmeasure.org', code: '/min' },
  },
  {
    resourceType: 'Bundle',
    type: 'collection',
    entry: [{ fullUrl: 'urn:uuid:2b4c0f32-6b5b-4e0a-9d3f-000000000001', resource: { resourceType: 'Patient', active: true } }],
  },
  { resourceType: 'Binary', contentType: 'application/pdf', data: Buffer.from('%PDF-1.4 hello').toString('base64') },
  { resourceType: 'Parameters', parameter: [{ name: 'a', valueString: 'x' }, { name: 'b', valueBoolean: false }, { name: 'n', valueInteger: -3 }] },
  { resourceType: 'Organization', name: 'Clinique du Lac', active: true },
  { resourceType: 'Practitioner', name: [{ family: 'Okafor', prefix: ['Dr.'] }] },
  { resourceType: 'Encounter', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' } },
  { resourceType: 'Condition', subject: { reference: 'Patient/example' }, code: { text: 'Asthma' } },
  { resourceType: 'MedicationRequest', status: 'active', intent: 'order', subject: { reference: 'Patient/example' }, medicationCodeableConcept: { text: 'Salbutamol' } },
  { resourceType: 'AllergyIntolerance', patient: { reference: 'Patient/example' }, code: { text: 'Peanut' } },
  { resourceType: 'DocumentReference', status: 'current', content: [{ attachment: { contentType: 'text/plain', data: 'aGVsbG8=' } }] },
  { resourceType: 'Questionnaire', status: 'draft', item: [{ linkId: '1', text: 'How are you?', type: 'string' }] },
  { resourceType: 'CodeSystem', status: 'draft', content: 'not-present', url: 'http://example.org/cs' },
  { resourceType: 'ValueSet', status: 'draft', compose: { include: [{ system: 'http://loinc.org' }] } },
  { resourceType: 'Consent', status: 'active', scope: { text: 'x' }, category: [{ text: 'y' }] },
  { resourceType: 'VerificationResult', status: 'attested' },
  { resourceType: 'SubstanceSpecification', description: 'R4-only type' },
  {
    resourceType: 'Observation',
    status: 'final',
    code: { text: 'numbers' },
    component: [
      { code: { text: 'big' }, valueInteger: 2147483647 },
      { code: { text: 'neg' }, valueQuantity: { value: -0.25 } },
      { code: { text: 'exp' }, valueQuantity: { value: 12345.678 } },
    ],
  },
];

describe('resource types', () => {
  for (const body of SAMPLES) {
    test(`${body.resourceType} round-trips unchanged`, async () => {
      const made = await c.create({ resourceType: body.resourceType, body });
      assert.equal(res(made).status, 201);
      const got = await c.read({ resourceType: body.resourceType, id: made.id });
      assert.deepEqual(strip(got), body);
      assert.equal(got.id, made.id);
    });
  }

  test('every R4 resource type (146): update-as-create, read, type history', async () => {
    const types = r4ResourceTypes();
    for (let i = 0; i < types.length; i += 16) {
      await Promise.all(
        types.slice(i, i + 16).map(async (t) => {
          const id = `all-${t}`;
          // Writes are validated against the R4 definitions (docs/validation.md): most types have
          // required elements, so an official example of the type is the body when there is one.
          const narrative = t === 'Parameters' ? {} : { text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${t}</div>` } };
          const body = exampleOf(t) ?? { resourceType: t, ...narrative }; // Parameters is no DomainResource
          body.id = id;
          const put = await s.request('PUT', `/fhir/${t}/${id}`, { token: tok, body });
          if (t === 'AuditEvent') {
            // the audit trail: read-only through the API, searched from the log (docs/audit.md)
            assert.equal(put.status, 405, `${t}: ${put.body}`);
            return;
          }
          assert.equal(put.status, 201, `${t}: ${put.body}`);
          const get = await s.request('GET', `/fhir/${t}/${id}`, { token: tok });
          assert.equal(get.status, 200, t);
          assert.deepEqual(strip(get.json), strip(body));
          const h = await s.request('GET', `/fhir/${t}/_history?_count=1`, { token: tok });
          assert.equal(h.status, 200, t);
          assert.ok(h.json.total >= 1, t);
        }),
      );
    }
  });

  test('the type in the body must be a real type: abstract names → 404', async () => {
    for (const t of ['Resource', 'DomainResource', 'patient', 'MedicinalProductX']) {
      const r = await s.request('GET', `/fhir/${t}/x`, { token: tok });
      assert.equal(r.status, 404, t);
    }
  });
});
