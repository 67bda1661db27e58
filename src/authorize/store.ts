// Policies in the store: `policy apply` writes every namespace's YAML to
// /gatehouse/policy/<namespace> in one transaction; every replica follows the prefix and
// swaps in the recompiled state. A set that does not compile is refused: the old state stays
// and the error goes to onError (for the log and audit). A record that is not a policy at all
// is the follower's to report, and its namespace is left out (no rules: default deny).
import { createHash } from 'node:crypto';
import path from 'node:path';
import { GatehouseError, isGatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { text, type Compare, type KeyValue, type Store, type TxnOp } from '../store/index.js';
import { POLICY_PREFIX, jsonCodec, keyName, storeKeys } from '../store/keys.js';
import { PrefixMirror, reporterFor, type FollowPhase, type FollowerReporter } from '../store/mirror.js';
import { CONFLICT, retryOnConflict } from '../store/update.js';
import { compilePolicies, formatIssue } from './compile.js';
import { readPolicyDir } from './dir.js';
import type { PolicyEngine } from './engine.js';
import { DNS_LABEL, namespaceOfFile } from './parse.js';
import type { PolicySource, PolicyState } from './types.js';

// Where policies live: the store's one key layout (src/store/keys.ts).
export { POLICY_PREFIX };

/** The value at /gatehouse/policy/<namespace>. */
export interface StoredPolicy {
  format: 1;
  namespace: string;
  /** The file's base name, e.g. "payments.yaml": messages on every replica name it. */
  file: string;
  /** The YAML text exactly as applied. */
  source: string;
  sha256: string;
}

export interface ApplyResult {
  /** Store revision of the transaction: the policyVersion every replica will report. */
  revision: number;
  written: string[];
  deleted: string[];
  /** Namespaces whose text did not change (still rewritten, so the version moves as one). */
  unchanged: string[];
}

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

const NOT_A_POLICY = 'not a policy written by `gatehouse policy apply`';
const policyCodec = jsonCodec<StoredPolicy>('policy', (v) => (v.format === 1 && typeof v.source === 'string' && typeof v.file === 'string' ? undefined : NOT_A_POLICY));

/** The namespace a key names, and its policy: undefined when the value is not one, or names another namespace (reported by the callers). */
function decode(kv: KeyValue): { namespace: string; stored: StoredPolicy | undefined } {
  const namespace = keyName(kv, POLICY_PREFIX);
  const v = policyCodec.decode(kv);
  return { namespace, stored: v instanceof GatehouseError || v.namespace !== namespace ? undefined : v };
}

/** The store kept changing under every attempt: the caller (an operator) applies again. */
const APPLY_ATTEMPTS = 5;

/**
 * Compiles the sources (refusing a set with any problem) and writes them in one txn,
 * deleting namespaces that no longer have a file. Retries if another apply raced it.
 */
export async function applyPolicySources(store: Store, sources: readonly PolicySource[]): Promise<ApplyResult> {
  compilePolicies(sources, 1); // throws ERR_POLICY_INVALID before anything is written
  const wanted = new Map(sources.map((s) => [namespaceOfFile(s.file), s]));
  const exhausted = (): GatehouseError => new GatehouseError('ERR_STORE_CONFLICT', 'the policies in the store kept changing during apply; try again', { retryable: true });
  return retryOnConflict('policy apply', async () => {
    const current = await store.range({ prefix: POLICY_PREFIX });
    const seen = new Map(current.kvs.map((kv) => [keyName(kv, POLICY_PREFIX), kv]));
    const compares: Compare[] = [];
    const ops: TxnOp[] = [];
    const result: Omit<ApplyResult, 'revision'> = { written: [], deleted: [], unchanged: [] };
    for (const [ns, kv] of seen) {
      compares.push({ key: kv.key, target: 'modRevision', op: '==', value: kv.modRevision });
      if (!wanted.has(ns)) {
        ops.push({ op: 'delete', key: kv.key });
        result.deleted.push(ns);
      }
    }
    for (const [ns, s] of wanted) {
      const value: StoredPolicy = { format: 1, namespace: ns, file: path.basename(s.file), source: s.text, sha256: sha256(s.text) };
      const before = seen.get(ns);
      if (before === undefined) compares.push({ key: storeKeys.policy(ns), target: 'version', op: '==', value: 0 });
      const old = before === undefined ? undefined : decode(before).stored;
      (old?.sha256 === value.sha256 && old.file === value.file ? result.unchanged : result.written).push(ns);
      ops.push({ op: 'put', key: storeKeys.policy(ns), value: policyCodec.encode(value) });
    }
    if (ops.length === 0) return { revision: current.revision, ...result };
    const txn = await store.txn(compares, ops);
    return txn.succeeded ? { revision: txn.revision, ...result } : CONFLICT;
  }, { attempts: APPLY_ATTEMPTS, exhausted });
}

/** Reads a policies folder and applies it (see applyPolicySources). */
export async function applyPolicies(store: Store, dir: string): Promise<ApplyResult> {
  const { sources, issues } = await readPolicyDir(dir);
  if (issues.length > 0) throw new GatehouseError('ERR_POLICY_INVALID', issues.map(formatIssue).join('\n'), { details: { issues: issues.map(formatIssue) } });
  return applyPolicySources(store, sources);
}

/** Reads the stored set and compiles it. Version: the newest key's modRevision (the apply's txn), so every replica agrees. */
export async function loadStoredPolicies(store: Store): Promise<PolicyState> {
  const r = await store.range({ prefix: POLICY_PREFIX });
  const sources: PolicySource[] = [];
  const bad: string[] = [];
  let version = 0;
  for (const kv of r.kvs) {
    version = Math.max(version, kv.modRevision);
    const { namespace, stored } = decode(kv);
    if (stored === undefined || !DNS_LABEL.test(namespace)) bad.push(`${text(kv.key)}: ${NOT_A_POLICY}`);
    else sources.push({ file: stored.file, text: stored.source });
  }
  // An empty set (every namespace deleted) has no key to date it: use the read's revision.
  if (r.kvs.length === 0) version = r.revision;
  if (bad.length > 0) throw new GatehouseError('ERR_POLICY_INVALID', bad.join('\n'), { details: { issues: bad, version } });
  try {
    return compilePolicies(sources, version);
  } catch (err) {
    if (isGatehouseError(err, 'ERR_POLICY_INVALID')) throw new GatehouseError('ERR_POLICY_INVALID', err.message, { details: { ...err.details, version } });
    throw err;
  }
}

export interface PolicyWatchOptions {
  /** A stored set that does not compile (the old state stays); unless `follower` is given, also unreadable records and lost watches. */
  onError?: (err: GatehouseError) => void;
  /** A new state was swapped in. */
  onReload?: (state: PolicyState) => void;
  /** Where the store follower reports unreadable records, lost watches and resyncs (the gateway's shared reporter). */
  follower?: FollowerReporter;
  /** Times re-reads after a lost watch (default: the system clock). */
  clock?: Clock;
}

export interface PolicyWatch {
  /** Resolves when every reload started so far has finished (tests use it). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

function asGatehouseError(err: unknown): GatehouseError {
  return err instanceof GatehouseError ? err : new GatehouseError('ERR_INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
}

/** A stored policy record, or why it is not one. */
function decodePolicy(kv: KeyValue, namespace: string): StoredPolicy {
  const { stored } = decode(kv);
  if (stored === undefined || !DNS_LABEL.test(namespace)) {
    throw new GatehouseError('ERR_STORE_CORRUPT', `${POLICY_PREFIX}${namespace.slice(0, 80)}: ${NOT_A_POLICY}`);
  }
  return stored;
}

/** What the follower holds per namespace key: the policy, or undefined for a record it could not read. */
interface Held {
  stored: StoredPolicy | undefined;
  modRevision: number;
}

/**
 * Loads the stored policies into the engine, then follows the prefix (the store follower: paged
 * read, watch, re-read after a lost watch). After each change the held set is recompiled: a
 * transaction's events arrive together, so the recompile (queued behind them) never sees one
 * half done; recompiles never overlap and changes during one coalesce into the next.
 * Resolves after the first load was attempted (an invalid stored set is reported, not thrown).
 */
export async function watchPolicies(store: Store, engine: PolicyEngine, options: PolicyWatchOptions = {}): Promise<PolicyWatch> {
  const held = new Map<string, Held>();
  /** The revision the held set reflects: dates an empty set. */
  let revision = 0;
  let running: Promise<void> = Promise.resolve();
  let queued = false;
  let lastRefused = -1;
  const compile = (): void => {
    // Version: the newest key's modRevision (the apply's txn), so every replica agrees; an empty
    // set (every namespace deleted) has no key to date it: the revision the follower reached.
    let version = 0;
    const sources: PolicySource[] = [];
    for (const h of held.values()) {
      version = Math.max(version, h.modRevision);
      if (h.stored !== undefined) sources.push({ file: h.stored.file, text: h.stored.source });
    }
    if (held.size === 0) version = revision;
    try {
      const state = compilePolicies(sources, version);
      if (engine.state !== undefined && state.version <= engine.version) return;
      if (engine.swap(state)) options.onReload?.(state);
    } catch (err) {
      const e = asGatehouseError(err);
      // The same refused revision is reported once, not on every unrelated event.
      if (version === lastRefused) return;
      lastRefused = version;
      options.onError?.(isGatehouseError(e, 'ERR_POLICY_INVALID') ? new GatehouseError('ERR_POLICY_INVALID', e.message, { details: { ...e.details, version } }) : e);
    }
  };
  const schedule = (): void => {
    if (queued) return;
    queued = true;
    running = running.then(() => {
      queued = false;
      compile();
    });
  };
  const hold = (namespace: string, h: Held, phase: FollowPhase): void => {
    held.set(namespace, h);
    revision = Math.max(revision, h.modRevision);
    if (phase === 'watch') schedule();
  };
  const mirror = await PrefixMirror.open<StoredPolicy>(
    {
      store,
      prefix: POLICY_PREFIX,
      clock: options.clock ?? systemClock,
      reporter: options.follower ?? reporterFor((e) => options.onError?.(asGatehouseError(e))),
      decode: decodePolicy,
    },
    {
      put: (ns, stored, kv, phase) => hold(ns, { stored, modRevision: kv.modRevision }, phase),
      // left out of the compiled set, but its revision still dates the set
      invalid: (ns, kv, phase) => hold(ns, { stored: undefined, modRevision: kv.modRevision }, phase),
      delete: (ns, rev, phase) => {
        held.delete(ns);
        revision = Math.max(revision, rev);
        if (phase === 'watch') schedule();
      },
      synced: (rev) => {
        revision = Math.max(revision, rev);
        schedule();
      },
    },
  );
  await running;
  return {
    settled: async () => {
      // A reload may queue another; wait until the chain stops growing.
      for (;;) {
        const current = running;
        await current;
        if (current === running) return;
      }
    },
    close: () => mirror.close(),
  };
}
