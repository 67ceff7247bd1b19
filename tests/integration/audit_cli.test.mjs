// audit_cli.test.mjs — `salus audit check-proof` exit codes (0 valid, 1 invalid,
// 2 unreadable) on proofs built here, independently of Salus, with Node's own
// SHA-256 and the RFC 6962 algorithms; and `salus audit verify` / `checkpoint`
// / offline verification on a fresh data directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';

const BIN = process.env.SALUS_BIN || '/work/main/build/salus';
let tmp;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'salus-audit-it-'));
});
after(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sha = (...parts) => crypto.createHash('sha256').update(Buffer.concat(parts)).digest();
const leafHash = (d) => sha(Buffer.from([0]), d);
const nodeHash = (l, r) => sha(Buffer.from([1]), l, r);
const split = (n) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
const mth = (L) => (L.length === 1 ? L[0] : nodeHash(mth(L.slice(0, split(L.length))), mth(L.slice(split(L.length)))));
function path_(m, L) {
  if (L.length <= 1) return [];
  const k = split(L.length);
  return m < k ? [...path_(m, L.slice(0, k)), mth(L.slice(k))] : [...path_(m - k, L.slice(k)), mth(L.slice(0, k))];
}
function subproof(m, L, b) {
  if (m === L.length) return b ? [] : [mth(L)];
  const k = split(L.length);
  return m <= k
    ? [...subproof(m, L.slice(0, k), b), mth(L.slice(k))]
    : [...subproof(m - k, L.slice(k), false), mth(L.slice(0, k))];
}
const b64 = (h) => h.toString('base64');
const leaves = Array.from({ length: 13 }, (_, i) => leafHash(Buffer.from(`event ${i}`)));

function run(args) {
  return spawnSync(BIN, args, { encoding: 'utf8', timeout: 60000 });
}
function checkProof(obj, name) {
  const f = path.join(tmp, name);
  fs.writeFileSync(f, typeof obj === 'string' ? obj : JSON.stringify(obj));
  return run(['audit', 'check-proof', f]).status;
}

test('check-proof: valid inclusion proofs exit 0, damaged ones 1', () => {
  for (const [m, n] of [[0, 1], [0, 13], [5, 13], [12, 13], [7, 8], [3, 4]]) {
    const L = leaves.slice(0, n);
    const p = { leafIdx: m, treeSize: n, root: b64(mth(L)), leafHash: b64(L[m]), proof: path_(m, L).map(b64) };
    assert.equal(checkProof(p, `inc-${m}-${n}.json`), 0, `inclusion ${m} in ${n}`);
    assert.equal(checkProof({ ...p, leafIdx: (m + 1) % n === m ? m + 1 : (m + 1) % n }, 'inc-bad-idx.json'), 1);
    assert.equal(checkProof({ ...p, root: b64(leaves[0].map((x) => x ^ 1)) }, 'inc-bad-root.json'), 1);
    assert.equal(checkProof({ ...p, proof: [...p.proof, b64(leaves[1])] }, 'inc-extra.json'), 1);
  }
});

test('check-proof: valid consistency proofs exit 0, damaged ones 1', () => {
  for (const [m, n] of [[1, 1], [1, 13], [4, 13], [6, 8], [7, 13], [13, 13], [8, 12]]) {
    const p = {
      size1: m,
      size2: n,
      root1: b64(mth(leaves.slice(0, m))),
      root2: b64(mth(leaves.slice(0, n))),
      proof: m === n ? [] : subproof(m, leaves.slice(0, n), true).map(b64),
    };
    assert.equal(checkProof(p, `con-${m}-${n}.json`), 0, `consistency ${m} → ${n}`);
    assert.equal(checkProof({ ...p, root1: p.root2, root2: p.root1 }, 'con-swapped.json'), m === n ? 0 : 1);
    if (p.proof.length) assert.equal(checkProof({ ...p, proof: p.proof.slice(1) }, "con-short.json"), 1, `short ${m} → ${n}`);
    // (a size2 with the same tree height gives the same path: RFC 9162 cannot tell, so double it)
    assert.equal(checkProof({ ...p, size2: n * 2 }, 'con-size.json'), 1, `size ${m} → ${n}`);
  }
});

test('check-proof: unreadable input exits 2', () => {
  assert.equal(checkProof('not json at all', 'garbage.json'), 2);
  assert.equal(checkProof('[1,2,3]', 'array.json'), 2);
  assert.equal(checkProof({ hello: 'world' }, 'other.json'), 2);
  assert.equal(checkProof({ leafIdx: 'zero', treeSize: 1, root: '', leafHash: '', proof: [] }, 'types.json'), 2);
  assert.equal(run(['audit', 'check-proof', path.join(tmp, 'does-not-exist.json')]).status, 2);
  // readable but malformed hashes are invalid, not unreadable
  assert.equal(checkProof({ leafIdx: 0, treeSize: 1, root: 'AAAA', leafHash: 'AAAA', proof: null }, 'short.json'), 1);
});

test('verify, checkpoint and offline verification of a fresh data directory', () => {
  const dir = path.join(tmp, 'data');
  assert.equal(run(['init', '--data', dir]).status, 0);
  assert.ok(fs.existsSync(path.join(dir, 'keys', 'audit.key')));
  const pub = path.join(dir, 'keys', 'audit.key.pub');
  assert.match(fs.readFileSync(pub, 'utf8'), /^salus\.audit\/[A-Za-z0-9_-]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\n$/);
  let r = run(['audit', 'verify', '--data', dir]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  r = run(['audit', 'checkpoint', '--data', dir]);
  assert.equal(r.status, 0, r.stderr);
  const note = r.stdout;
  // one event: `salus init` records the directory's creation (DCM 110100)
  assert.match(note, /^salus\.audit\/\S+\n1\n[A-Za-z0-9+/]{43}=\n\n\u2014 salus\.audit\/\S+ [A-Za-z0-9+/=]+\n$/);
  const cp = path.join(tmp, 'checkpoint.txt');
  fs.writeFileSync(cp, note);
  const log = path.join(tmp, 'log.ndjson');
  fs.writeFileSync(log, run(['audit', 'export', '--data', dir]).stdout);
  r = run(['audit', 'verify', '--log', log, '--checkpoint', cp, '--pubkey', pub]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // a forged note (size changed) fails the signature
  fs.writeFileSync(cp, note.replace('\n1\n', '\n2\n'));
  r = run(['audit', 'verify', '--log', log, '--checkpoint', cp, '--pubkey', pub]);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  r = run(['audit', 'verify', '--data', dir]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('administrative CLI commands are audited: clients, users, keys (DCM 110100, client salus-cli)', () => {
  const dir = path.join(tmp, 'admin');
  assert.equal(run(['init', '--data', dir]).status, 0);
  const secret = path.join(tmp, 'admin-secret');
  fs.writeFileSync(secret, 'a'.repeat(40) + '\n');
  const pw = path.join(tmp, 'admin-pw');
  fs.writeFileSync(pw, 'correct horse battery staple 42\n');
  const ok = (args) => {
    const r = run(args);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  };
  ok(['client', 'add', '--data', dir, '--id', 'cli-app', '--scope', 'system/*.rs', '--secret-file', secret]);
  ok(['user', 'add', '--data', dir, '--username', 'dr.adm', '--role', 'clinician', '--password-file', pw]);
  ok(['user', 'set-role', '--data', dir, '--username', 'dr.adm', '--role', 'nurse']);
  ok(['user', 'disable', '--data', dir, '--username', 'dr.adm']);
  ok(['client', 'remove', '--data', dir, '--id', 'cli-app']);
  ok(['key', 'rotate', '--data', dir]);
  ok(['key', 'rekey-data', '--data', dir]);
  ok(['key', 'seal-files', '--data', dir]);
  const nd = path.join(tmp, 'two.ndjson');
  fs.writeFileSync(nd, '{"resourceType":"Patient","id":"ld-1","name":[{"family":"Loaded"}]}\n' +
    '{"resourceType":"Patient","id":"ld-2","name":[{"family":"Loaded"}]}\n');
  ok(['load', '--data', dir, nd]);
  // a refused action is audited too, with its failure
  assert.equal(run(['client', 'remove', '--data', dir, '--id', 'no-such-app']).status, 1);
  const events = run(['audit', 'export', '--data', dir]).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const admin = events.filter((e) => e.type?.code === '110100');
  const actions = admin.map((e) => {
    const q = (e.entity || []).find((x) => x.query)?.query;
    return `${Buffer.from(q, 'base64').toString()} ${e.outcome}`;
  });
  assert.deepEqual(actions, [
    'action=init 0',
    'action=client-add&client=cli-app 0',
    'action=user-add&user=dr.adm&role=clinician 0',
    'action=user-set-role&user=dr.adm&role=nurse 0',
    'action=user-disable&user=dr.adm 0',
    'action=client-remove&client=cli-app 0',
    'action=key-rotate-kek 0',
    'action=key-rekey-data 0',
    'action=key-seal-files 0',
    'action=load&resources=2 0',
    'action=client-remove&client=no-such-app 4',
  ]);
  for (const e of admin) {
    assert.equal(e.agent[0].who.identifier.value, 'salus-cli');
    assert.equal(JSON.stringify(e).includes('correct horse'), false); // never the password
    assert.equal(JSON.stringify(e).includes('Loaded'), false); // never a loaded resource's content
  }
  const r = run(['audit', 'verify', '--data', dir]);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  // salus init --demo records the directory, the demo load (a count) and the demo client
  const demo = path.join(tmp, 'admin-demo');
  assert.equal(run(['init', '--data', demo, '--demo', '--patients', '2']).status, 0);
  const dev = run(['audit', 'export', '--data', demo]).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const dact = dev.filter((e) => e.type?.code === '110100')
    .map((e) => Buffer.from((e.entity || []).find((x) => x.query)?.query, 'base64').toString());
  assert.equal(dact.length, 3, dact.join(' | '));
  assert.equal(dact[0], 'action=init');
  assert.match(dact[1], /^action=demo-load&resources=[1-9][0-9]*&patients=2$/);
  assert.equal(dact[2], 'action=client-add&client=demo');
});
