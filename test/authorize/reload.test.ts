// Hot reload through a real embedded store: apply -> watch -> recompile -> atomic swap;
// a stored set that does not compile is refused and the old state stays.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '../../src/store/index.js';
import { isGatehouseError, type GatehouseError } from '../../src/errors.js';
import type { AccessRequest } from '../../src/contracts/authz.js';
import { PolicyEngine } from '../../src/authorize/engine.js';
import { applyPolicies, POLICY_PREFIX, watchPolicies, type PolicyWatch } from '../../src/authorize/store.js';
import type { PolicyState } from '../../src/authorize/types.js';

const web: AccessRequest = {
  principal: { kind: 'service', spiffeId: 'spiffe://example.org/ns/frontend/sa/web', namespace: 'frontend', service: 'web', certSerial: '01' },
  namespace: 'payments', service: 'api', method: 'POST', path: '/v1/charges',
};

const payments = (effect: 'allow' | 'deny'): string =>
  `namespace: payments\nrules:\n  - name: web-${effect}\n    effect: ${effect}\n    from: [{ namespace: frontend, service: web }]\n    to: { service: api, methods: [POST], paths: ["/v1/charges"] }\n`;

/** Collects reloads and errors; next() resolves on the next one of either. */
class Events {
  reloads: PolicyState[] = [];
  errors: GatehouseError[] = [];
  #waiters: (() => void)[] = [];
  onReload = (s: PolicyState): void => { this.reloads.push(s); this.#wake(); };
  onError = (e: GatehouseError): void => { this.errors.push(e); this.#wake(); };
  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
  next(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

describe('policy hot reload (embedded store)', () => {
  let root: string;
  let dir: string;
  let store: Store;
  const engine = new PolicyEngine();
  const events = new Events();
  let watch: PolicyWatch;

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'gh-reload-'));
    dir = path.join(root, 'policies');
    await mkdir(dir);
    store = await openStore({ kind: 'embedded', path: path.join(root, 'data') });
    watch = await watchPolicies(store, engine, events);
  });
  after(async () => {
    await watch.close();
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  it('starts from the empty stored set: default deny', () => {
    assert.notEqual(engine.state, undefined);
    assert.deepEqual(engine.decide(web).reasons, ['no-matching-rule']);
  });

  it('apply writes every namespace in one txn; the watcher swaps the new state in, versioned by that txn', async () => {
    await writeFile(path.join(dir, 'payments.yaml'), payments('allow'));
    await writeFile(path.join(dir, 'frontend.yaml'), 'namespace: frontend\nmode: dry-run\nrules: []\n');
    const reloaded = events.next();
    const r = await applyPolicies(store, dir);
    assert.deepEqual([r.written.sort(), r.deleted, r.unchanged], [['frontend', 'payments'], [], []]);
    await reloaded;
    await watch.settled();
    assert.equal(engine.version, r.revision);
    const d = engine.decide(web);
    assert.deepEqual([d.allow, d.rule, d.policyVersion], [true, 'web-allow', r.revision]);
    // One txn, one state: both namespaces arrived together.
    assert.deepEqual([...events.reloads.at(-1)!.namespaces.keys()].sort(), ['frontend', 'payments']);
  });

  it('a changed policy changes the verdict of the next decision', async () => {
    await writeFile(path.join(dir, 'payments.yaml'), payments('deny'));
    const reloaded = events.next();
    const r = await applyPolicies(store, dir);
    assert.deepEqual([r.written, r.unchanged], [['payments'], ['frontend']]);
    await reloaded;
    await watch.settled();
    const d = engine.decide(web);
    assert.deepEqual([d.allow, d.rule, d.reasons, d.policyVersion], [false, 'web-deny', ['denied-by-rule'], r.revision]);
  });

  it('a stored set that does not compile is refused: the old state stays and the error is reported', async () => {
    const before = engine.version;
    const errored = events.next();
    const bad = { format: 1, namespace: 'payments', file: 'payments.yaml', source: 'namespace: payments\nrules:\n  - name: x\n    to: { service: api }\n', sha256: '' };
    await store.put(`${POLICY_PREFIX}payments`, JSON.stringify(bad));
    await errored;
    await watch.settled();
    const err = events.errors.at(-1)!;
    assert.equal(err.code, 'ERR_POLICY_INVALID');
    assert.match(err.message, /payments\.yaml:3: rules\[0\]\.from is required/);
    assert.equal(engine.version, before);
    assert.equal(engine.decide(web).rule, 'web-deny');
  });

  it('apply refuses an invalid folder and writes nothing', async () => {
    const rev = await store.revision();
    await writeFile(path.join(dir, 'broken.yaml'), 'namespace: broken\nrules: [{ name: x }]\n');
    await assert.rejects(applyPolicies(store, dir), (e) => isGatehouseError(e, 'ERR_POLICY_INVALID') && /broken\.yaml:2: /.test(e.message));
    assert.equal(await store.revision(), rev);
    await unlink(path.join(dir, 'broken.yaml'));
  });

  it('a namespace whose file is gone is deleted; another replica starting now agrees on the version', async () => {
    await unlink(path.join(dir, 'payments.yaml'));
    const reloaded = events.next();
    const r = await applyPolicies(store, dir);
    assert.deepEqual([r.written, r.deleted, r.unchanged], [[], ['payments'], ['frontend']]);
    await reloaded;
    await watch.settled();
    assert.deepEqual([engine.decide(web).reasons, engine.version], [['no-matching-rule'], r.revision]);
    assert.equal((await store.range({ prefix: POLICY_PREFIX })).count, 1);

    const replica = new PolicyEngine();
    const w2 = await watchPolicies(store, replica);
    try {
      assert.equal(replica.version, engine.version);
      assert.deepEqual(replica.decide(web), engine.decide(web));
    } finally {
      await w2.close();
    }
  });

  it('apply retries a transaction another writer beat, and gives up after five with a retryable ERR_STORE_CONFLICT', async () => {
    let races = 2;
    let txns = 0;
    // another writer rewrites a policy between each attempt's read and its transaction
    const contended = new Proxy(store, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        return async (...args: unknown[]) => {
          if (prop === 'txn') {
            txns++;
            if (races-- > 0) {
              const kv = (await target.range({ prefix: POLICY_PREFIX })).kvs[0]!;
              await target.put(kv.key, kv.value);
            }
          }
          return (v as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const r = await applyPolicies(contended, dir);
    assert.equal(txns, 3, 'two lost transactions, then the third commits');
    assert.equal(r.revision, (await store.get(`${POLICY_PREFIX}frontend`))?.modRevision);
    races = Number.POSITIVE_INFINITY;
    txns = 0;
    await assert.rejects(applyPolicies(contended, dir), (e) => isGatehouseError(e, 'ERR_STORE_CONFLICT') && e.retryable && /kept changing during apply/.test(e.message));
    assert.equal(txns, 5);
    await watch.settled();
  });
});
