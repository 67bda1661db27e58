// The people commands as an operator runs them (`runCli`), on each way the CLI reaches the
// store: straight to etcd, straight to an embedded store no gateway holds, and through the
// local API of the gateway that holds it. Whichever the path, each command leaves one audit
// event naming the OS user and host that ran it and the person it acted on, in an audit chain
// that verifies: the CLI's own `cli-<host>` chain on the direct paths, the gateway's otherwise.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { cliReplica } from '../../src/cli/operator-audit.js';
import { openStore } from '../../src/store/index.js';
import { verifyAudit } from '../../src/audit/index.js';
import { initCa } from '../../src/pki/index.js';
import type { AuditEvent } from '../../src/contracts/audit.js';
import { isSkip, startEtcdCluster, type EtcdCluster } from '../helpers/etcd.js';
import { auditEvents } from '../authenticate/harness.js';
import { actor, chainEvents, cli, startHeldStore, type HeldStore } from './harness.js';

const etcdStarted = await startEtcdCluster({ members: 1 });

/** Runs the lifecycle on one config and returns what the commands printed. */
async function lifecycle(file: string): Promise<void> {
  const add = await cli(['user', 'add', 'ann', '--role', 'payments:ops-admin', '--config', file]);
  assert.equal(add.code, 0, add.err.join('\n'));
  const keys = await cli(['user', 'keys', 'ann', '--config', file]);
  assert.equal(keys.code, 0, keys.err.join('\n'));
  assert.match(keys.out.join('\n'), /ann \(pending\): 0 security key\(s\)/);
  assert.equal((await cli(['user', 'roles', 'add', 'ann', 'ops:viewer', '--config', file])).code, 0);
  assert.equal((await cli(['user', 'disable', 'ann', '--config', file])).code, 0);
  const enable = await cli(['user', 'enable', 'ann', '--config', file]);
  assert.match(enable.out.join('\n'), /enabled ann: pending/);
  const missing = await cli(['user', 'key', 'remove', 'ann', 'AAAAAAAAAAAA', '--config', file]);
  assert.equal(missing.code, 1);
  assert.match(missing.err.join('\n'), /ERR_CREDENTIAL_NOT_FOUND/);
  const unassign = await cli(['totp', 'unassign', 'NO-SUCH-TOKEN', '--config', file]);
  assert.match(unassign.err.join('\n'), /ERR_TOTP_TOKEN_UNKNOWN/);
  assert.equal((await cli(['user', 'delete', 'ann', '--config', file])).code, 0);
}

const EXPECTED = [
  ['admin.user.add', 'success'],
  ['admin.user.keys', 'success'],
  ['admin.user.roles', 'success'],
  ['admin.user.disable', 'success'],
  ['admin.user.enable', 'success'],
  ['admin.user.key.remove', 'failure'],
  ['admin.totp.unassign', 'failure'],
  ['admin.user.delete', 'success'],
];

function checkEvents(events: AuditEvent[], channel: string): void {
  const ops = events.filter((e) => String(e['event.action']).startsWith('admin.user.') || String(e['event.action']).startsWith('admin.totp.'));
  assert.deepEqual(ops.map((e) => [e['event.action'], e['event.outcome']]), EXPECTED);
  for (const e of ops) {
    assert.equal(e['gatehouse.actor'], actor, String(e['event.action']));
    assert.equal(e['gatehouse.channel'], channel);
  }
  for (const e of ops.filter((x) => String(x['event.action']).startsWith('admin.user.'))) assert.equal(e['user.id'], 'ann', String(e['event.action']));
  assert.equal(ops.find((e) => e['event.action'] === 'admin.totp.unassign')?.['gatehouse.target'], 'totp:NO-SUCH-TOKEN');
  assert.equal(JSON.stringify(ops).includes('enroll#'), false, 'the enrollment token is never audited');
}

describe('people commands from the CLI, audited on every path', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-cli-people-'));
    await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('on etcd, with no gateway running, each command lands in the cli-<host> chain (actor and target), and the chain verifies', { skip: isSkip(etcdStarted) ? etcdStarted.skip : false }, async () => {
    const cluster = etcdStarted as EtcdCluster;
    try {
      const file = path.join(dir, 'etcd.yaml');
      await writeFile(file, `store: { kind: etcd, endpoints: ["${cluster.endpoints[0]}"] }\npki: { dir: ./certs }\n`);
      await lifecycle(file);
      const store = await openStore({ kind: 'etcd', endpoints: [...cluster.endpoints] });
      try {
        checkEvents(await chainEvents(store, cliReplica()), 'store');
        const report = await verifyAudit(store);
        assert.equal(report.ok, true, JSON.stringify(report.chains));
        const chain = report.chains.find((c) => c.replica === cliReplica());
        assert.ok(chain !== undefined && chain.checkpoints > 0, 'each command closes its writer with a signed checkpoint (the KEK is readable)');
      } finally {
        await store.close();
      }
    } finally {
      await cluster.stop();
    }
  });

  it('on an embedded store no gateway holds, the same chain', async () => {
    const file = path.join(dir, 'embedded.yaml');
    await writeFile(file, 'store: { kind: embedded, path: ./data }\npki: { dir: ./certs }\n');
    await lifecycle(file);
    const store = await openStore({ kind: 'embedded', path: path.join(dir, 'data') });
    try {
      checkEvents(await chainEvents(store, cliReplica()), 'store');
      assert.equal((await verifyAudit(store)).ok, true);
    } finally {
      await store.close();
    }
  });

  describe('through the gateway that holds the embedded store', () => {
    let held: HeldStore;
    before(async () => {
      held = await startHeldStore();
    });
    after(async () => held?.close());

    it("each command lands in the gateway's chain, naming the OS user and host the CLI sent", async () => {
      await lifecycle(held.file);
      checkEvents(await auditEvents(held.env, held.gw), 'local-api');
      assert.deepEqual(await chainEvents(held.env.store, cliReplica()), [], 'no CLI chain: the gateway recorded them');
    });
  });

  it('usage: a roles change without roles, a key removal without a credential, unassign without a serial', async () => {
    for (const args of [['user', 'roles', 'add', 'ann'], ['user', 'key', 'remove', 'ann'], ['totp', 'unassign'], ['user', 'delete']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.err.join('\n'), /ERR_USAGE/);
    }
    const help = await cli(['--help']);
    for (const c of ['user keys', 'user key remove', 'user enable', 'user roles add', 'user roles remove', 'user roles set', 'user delete', 'totp unassign']) assert.match(help.out.join('\n'), new RegExp(c));
  });
});
