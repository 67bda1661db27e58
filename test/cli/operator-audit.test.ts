// Issue 11 §4 and §5: every operator write from the CLI — policy apply, cert issue, cert revoke,
// user add / disable, revoke (validated, forced), revoke lift, totp import / assign, store
// compact — leaves one event naming the OS user and host that ran it, the action, the target and
// its parameters (never a secret), on whichever store is in use: etcd (the CLI's own
// `cli-<host>` chain) and the embedded store held by a running gateway (the gateway's chain).
// Before, on etcd these wrote straight to the store and left nothing, and `admin.revoke` named
// neither the kind nor the id; `revoke user nosuchuser` and a service of another trust domain
// were stored as permanent revocations, and nothing could lift one but etcdctl.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliReplica } from '../../src/cli/operator-audit.js';
import { openStore, type Store } from '../../src/store/index.js';
import { verifyAudit } from '../../src/audit/index.js';
import { initCa } from '../../src/pki/index.js';
import { isAuditAction, type AuditEvent } from '../../src/contracts/audit.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { auditEvents, POLICY } from '../authenticate/harness.js';
import { actor, chainEvents, cli, startHeldStore, type HeldStore } from './harness.js';

const etcdStarted = await startEtcdCluster({ members: 1 });
/** A base32 OTP seed: it must never appear in an event. */
const SEED = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
const WEB = 'spiffe://example.org/ns/frontend/sa/web';
const FOREIGN = 'spiffe://exmple.org/ns/frontend/sa/web';

/** Every operator write, as an operator types it; the seed file and certificate go to `dir`. */
async function commands(file: string, dir: string): Promise<{ serial: string }> {
  const ok = async (args: string[]): Promise<string[]> => {
    const r = await cli([...args, '--config', file]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.err.join('\n')}`);
    return r.out;
  };
  const fails = async (args: string[], code: RegExp): Promise<void> => {
    const r = await cli([...args, '--config', file]);
    assert.equal(r.code, 1, `${args.join(' ')} must fail`);
    assert.match(r.err.join('\n'), code);
  };
  await ok(['policy', 'apply']);
  const issued = JSON.parse((await ok(['cert', 'issue', '--namespace', 'frontend', '--service', 'web', '--out', path.join(dir, 'web')]))[0]!) as { serial: string; indexed: boolean };
  assert.equal(issued.indexed, true);
  await ok(['cert', 'revoke', issued.serial, '--reason', 'keyCompromise']);
  await ok(['user', 'add', 'ann', '--role', 'payments:ops-admin']);
  // §5: a typo is refused, not stored as a permanent revocation; --force revokes ahead of time
  await fails(['revoke', 'user', 'nosuchuser'], /ERR_USER_NOT_FOUND: no user nosuchuser; .*--force/);
  await ok(['revoke', 'user', 'nosuchuser', '--force', '--reason', 'joins monday, must not sign in yet']);
  await fails(['revoke', 'service', FOREIGN], /ERR_REVOCATION_INVALID: service: .* trust domain exmple\.org, not this gateway's example\.org/);
  await ok(['revoke', 'service', WEB, '--reason', 'retired']);
  await ok(['revoke', 'user', 'ann', '--reason', 'laptop stolen']);
  const listed = JSON.parse((await ok(['revoke', 'list', '--json'])).join('\n')) as { revocations: { kind: string; id: string; by: string; reason: string }[] };
  assert.deepEqual(listed.revocations.map((r) => `${r.kind} ${r.id}`), [`cert ${issued.serial}`, `service ${WEB}`, 'user ann', 'user nosuchuser']);
  assert.equal(listed.revocations.find((r) => r.id === 'ann')?.reason, 'laptop stolen');
  await ok(['revoke', 'lift', 'user', 'ann', '--reason', 'laptop found']);
  await fails(['revoke', 'lift', 'user', 'ghost'], /ERR_REVOCATION_NOT_FOUND/);
  const cert = await cli(['revoke', 'lift', 'cert', issued.serial, '--config', file]);
  assert.equal(cert.code, 2, 'a certificate revocation is final');
  const users = await ok(['revoke', 'list', '--kind', 'user']);
  assert.match(users.join('\n'), /^user +nosuchuser .* reason: joins monday/);
  assert.equal(users.length, 1, 'ann is lifted');
  await writeFile(path.join(dir, 'seeds.csv'), `serial,secret\nT-1,${SEED}\n`);
  await ok(['totp', 'import', path.join(dir, 'seeds.csv')]);
  await ok(['totp', 'assign', 'T-1', 'ann']);
  await ok(['user', 'disable', 'ann']);
  await ok(['store', 'compact', '2']);
  return { serial: issued.serial };
}

const EXPECTED: [string, string][] = [
  ['admin.policy.apply', 'success'],
  ['admin.cert.issue', 'success'],
  ['admin.cert.revoke', 'success'],
  ['admin.user.add', 'success'],
  ['admin.revoke', 'failure'],
  ['admin.revoke', 'success'],
  ['admin.revoke', 'failure'],
  ['admin.revoke', 'success'],
  ['admin.revoke', 'success'],
  ['admin.revoke.lift', 'success'],
  ['admin.revoke.lift', 'failure'],
  ['admin.totp.import', 'success'],
  ['admin.totp.assign', 'success'],
  ['admin.user.disable', 'success'],
  ['admin.store.compact', 'success'],
];

function checkEvents(all: AuditEvent[], channel: string, serial: string): void {
  for (const e of all) assert.ok(isAuditAction(e['event.action']), `${String(e['event.action'])} is on the closed list`);
  // reads (revoke list) are audited through the gateway only; every write on both paths
  const ops = all.filter((e) => String(e['event.action']).startsWith('admin.') && !String(e['event.action']).endsWith('.list'));
  assert.deepEqual(ops.map((e) => [e['event.action'], e['event.outcome']]), EXPECTED);
  for (const e of ops) {
    assert.equal(e['gatehouse.actor'], actor, String(e['event.action']));
    assert.equal(e['gatehouse.actor_kind'], 'cli');
    assert.equal(e['gatehouse.channel'], channel);
    assert.equal(typeof e['gatehouse.target'], 'string', `${String(e['event.action'])} names its target`);
  }
  // in EXPECTED's order (checked above)
  const [apply, issue, certRevoke, add, unknownUser, forced, foreign, service, ann, lift, ghost, totpImport, assign, disable, compact] = ops;
  assert.match(JSON.stringify(apply!['gatehouse.policy_files']), /^\["payments\.yaml@[0-9a-f]{12}"\]$/, 'the file by name and hash');
  assert.equal(typeof apply!['gatehouse.policy_version'], 'number');
  assert.deepEqual([issue!['gatehouse.target'], issue!['gatehouse.spiffe_id']], [`cert:${serial}`, WEB]);
  assert.deepEqual([certRevoke!['gatehouse.target'], certRevoke!['gatehouse.revocation_reason']], [`cert:${serial}`, 'keyCompromise']);
  assert.deepEqual([add!['user.id'], add!['gatehouse.roles']], ['ann', ['payments:ops-admin']]);
  assert.deepEqual([unknownUser!['gatehouse.target'], unknownUser!['gatehouse.revocation_kind'], unknownUser!['gatehouse.revocation_id'], unknownUser!['gatehouse.error_code']], ['user:nosuchuser', 'user', 'nosuchuser', 'ERR_USER_NOT_FOUND']);
  assert.deepEqual([forced!['gatehouse.revocation_force'], forced!['gatehouse.revocation_forced'], forced!['gatehouse.revocation_reason']], [true, 'user-not-found', 'joins monday, must not sign in yet']);
  assert.deepEqual([foreign!['gatehouse.target'], foreign!['gatehouse.error_code'], foreign!['gatehouse.revocation_force']], [`service:${FOREIGN}`, 'ERR_REVOCATION_INVALID', false]);
  assert.deepEqual([service!['gatehouse.revocation_kind'], service!['gatehouse.revocation_id'], service!['gatehouse.revocation_created']], ['service', WEB, true]);
  assert.deepEqual([ann!['user.id'], ann!['gatehouse.revocation_reason']], ['ann', 'laptop stolen']);
  assert.deepEqual([lift!['user.id'], lift!['gatehouse.target'], lift!['gatehouse.lift_reason']], ['ann', 'user:ann', 'laptop found']);
  assert.equal(ghost!['gatehouse.error_code'], 'ERR_REVOCATION_NOT_FOUND');
  assert.deepEqual(totpImport!['gatehouse.totp_serials'], ['T-1']);
  assert.deepEqual([assign!['user.id'], assign!['gatehouse.totp_serial']], ['ann', 'T-1']);
  assert.equal(disable!['user.id'], 'ann');
  assert.equal(compact!['gatehouse.store_revision'], 2);
  const json = JSON.stringify(all);
  assert.equal(json.includes(SEED), false, 'the seed is never audited');
  assert.equal(/"v1\.[A-Za-z0-9_-]{20,}/.test(json), false, 'nor the sealed seed');
  assert.equal(json.includes('enroll#'), false, 'nor the enrollment link');
}

async function checkStore(store: Store): Promise<void> {
  assert.notEqual(await store.get('/gatehouse/revoked/user/nosuchuser'), undefined, 'forced: stored');
  assert.equal(await store.get(`/gatehouse/revoked/service/${encodeURIComponent(FOREIGN)}`), undefined, 'the foreign ID was not stored');
  assert.equal(await store.get('/gatehouse/revoked/user/ann'), undefined, 'lifted');
}

describe('operator writes from the CLI are audited on every store, and revocations are validated, listed and liftable', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-cli-ops-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('on etcd (no gateway), each write lands in the cli-<host> chain with actor, target and parameters, and the chain verifies', { skip: isSkip(etcdStarted) ? etcdStarted.skip : false }, async () => {
    const cluster = etcdStarted as EtcdCluster;
    try {
      const home = path.join(dir, 'etcd');
      await mkdir(path.join(home, 'policies'), { recursive: true });
      await writeFile(path.join(home, 'policies', 'payments.yaml'), POLICY);
      await initCa({ dir: path.join(home, 'certs'), trustDomain: 'example.org' });
      const file = path.join(home, 'gatehouse.yaml');
      await writeFile(file, `trustDomain: example.org\nstore: { kind: etcd, endpoints: ["${cluster.endpoints[0]}"] }\npki: { dir: ./certs }\npolicies: { dir: ./policies }\n`);
      const { serial } = await commands(file, home);
      const store = await openStore({ kind: 'etcd', endpoints: [...cluster.endpoints] });
      try {
        checkEvents(await chainEvents(store, cliReplica()), 'store', serial);
        await checkStore(store);
        const report = await verifyAudit(store);
        assert.equal(report.ok, true, JSON.stringify(report.chains));
      } finally {
        await store.close();
      }
    } finally {
      await cluster.stop();
    }
  });

  describe('on the embedded store a running gateway holds', () => {
    let held: HeldStore;
    before(async () => {
      held = await startHeldStore();
    });
    after(async () => held?.close());

    it("each write lands in the gateway's chain through its local API, naming the OS user and host the CLI sent", async () => {
      const { env, gw } = held;
      const { serial } = await commands(held.file, env.dir);
      const events = await auditEvents(env, gw);
      checkEvents(events, 'local-api', serial);
      assert.ok(events.some((e) => e['event.action'] === 'admin.revoke.list' && e['gatehouse.actor'] === actor), 'the list, a read, is audited by the gateway');
      assert.deepEqual(await chainEvents(env.store, cliReplica()), [], 'no CLI chain: the gateway recorded them');
      await checkStore(env.store);
      assert.equal(gw.app.revocationSet!.has('user', 'ann'), false, "the gateway's set dropped the lifted user");
      assert.equal(gw.app.revocationSet!.has('user', 'nosuchuser'), true);
    });
  });
});
