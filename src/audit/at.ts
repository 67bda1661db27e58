// "Who could reach what at that moment": the store as it was at a revision (MVCC reads), and
// a time mapped to a revision through the checkpoints' {time, storeRevision} pairs.
import { GatehouseError, isGatehouseError } from '../errors.js';
import { rangePages, text, type KeyValue, type Store } from '../store/index.js';
// The records read here belong to other parts; audit reads them as data, through the store's one
// key layout, and imports none of those parts.
import { POLICY_PREFIX, REVOKED_PREFIX, SESSIONS_PREFIX, jsonCodec, keyName } from '../store/keys.js';
import { CHECKPOINT_PREFIX } from './chain.js';
import type { CheckpointPayload } from './checkpoint.js';

export interface TimeMapping {
  revision: number;
  /** When the store was seen at that revision (the checkpoint's time), ≤ the time asked. */
  observedAt: string;
  checkpoint: string;
  /** The next sample after the time asked, if any: the state is exact only up to this window. */
  next?: { revision: number; time: string };
}

function payloadOf(jws: string): CheckpointPayload | undefined {
  const part = jws.split('.')[1];
  if (part === undefined) return undefined;
  try {
    const p = JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Partial<CheckpointPayload>;
    return typeof p.time === 'string' && typeof p.storeRevision === 'number' ? (p as CheckpointPayload) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The newest revision known to be current at or before `timeMs`: the storeRevision of the latest
 * checkpoint (any replica) signed at or before it. Precision: changes between that checkpoint and
 * `timeMs` are not shown; with the default 10 s interval under traffic the window is ≤ 10 s
 * (`next` says how wide it really is). Checkpoints are read, not verified: `audit verify` does that.
 */
export async function revisionAt(store: Store, timeMs: number): Promise<TimeMapping> {
  let best: TimeMapping | undefined;
  let bestT = -Infinity;
  let next: { revision: number; time: string; t: number } | undefined;
  for await (const page of rangePages(store, { prefix: CHECKPOINT_PREFIX }, { limit: 1000 })) {
    for (const kv of page) {
      const p = payloadOf(text(kv.value));
      if (p === undefined) continue;
      const t = Date.parse(p.time);
      if (t <= timeMs && (t > bestT || (t === bestT && p.storeRevision > best!.revision))) {
        bestT = t;
        best = { revision: p.storeRevision, observedAt: p.time, checkpoint: text(kv.key) };
      } else if (t > timeMs && (next === undefined || t < next.t)) next = { revision: p.storeRevision, time: p.time, t };
    }
  }
  if (best === undefined) throw new GatehouseError('ERR_AUDIT_TIME_UNMAPPED', `no audit checkpoint was signed at or before ${new Date(timeMs).toISOString()}; give a store revision instead`);
  return next === undefined ? best : { ...best, next: { revision: next.revision, time: next.time } };
}

export interface SessionThen {
  sid: string;
  user: string;
  roles: unknown;
  created: string;
  lastSeen: string;
  expires: string;
  amr: unknown;
}

export interface StateAt {
  revision: number;
  sessions: SessionThen[];
  policies: { namespace: string; file: string | undefined; sha256: string | undefined; modRevision: number }[];
  revocations: { kind: string; id: string; record: unknown }[];
}

async function rangeAt(store: Store, prefix: string, revision: number): Promise<KeyValue[]> {
  const out: KeyValue[] = [];
  for await (const page of rangePages(store, { prefix }, { limit: 1000, revision })) out.push(...page);
  return out;
}

/** Any JSON object: the fields shown are checked one by one, and a record that is no object is shown as it is stored. */
const anyRecord = jsonCodec<Record<string, unknown>>('record');

function parse(kv: KeyValue): Record<string, unknown> | undefined {
  const v = anyRecord.decode(kv);
  return v instanceof GatehouseError ? undefined : v;
}

const iso = (v: unknown): string => (typeof v === 'number' ? new Date(v).toISOString() : '?');

/** Sessions alive, policies in force and revocations as the store held them at `revision`. Never a session hash. */
export async function stateAt(store: Store, revision: number): Promise<StateAt> {
  try {
    const [sessions, policies, revoked] = [await rangeAt(store, SESSIONS_PREFIX, revision), await rangeAt(store, POLICY_PREFIX, revision), await rangeAt(store, REVOKED_PREFIX, revision)];
    return {
      revision,
      sessions: sessions
        .map(parse)
        .filter((s): s is Record<string, unknown> => s?.kind === 'primary')
        .map((s) => ({ sid: String(s.sid), user: String(s.userId), roles: s.roles, created: iso(s.createdAt), lastSeen: iso(s.lastSeen), expires: iso(s.expiresAt), amr: s.amr })),
      policies: policies.map((kv) => {
        const p = parse(kv);
        return { namespace: keyName(kv, POLICY_PREFIX), file: typeof p?.file === 'string' ? p.file : undefined, sha256: typeof p?.sha256 === 'string' ? p.sha256 : undefined, modRevision: kv.modRevision };
      }),
      revocations: revoked.map((kv) => {
        const rest = keyName(kv, REVOKED_PREFIX);
        const slash = rest.indexOf('/');
        return { kind: slash < 0 ? rest : rest.slice(0, slash), id: slash < 0 ? '' : rest.slice(slash + 1), record: parse(kv) ?? text(kv.value) };
      }),
    };
  } catch (err) {
    if (isGatehouseError(err, 'ERR_STORE_COMPACTED')) {
      throw new GatehouseError('ERR_STORE_COMPACTED', `revision ${revision} has been compacted away: the store no longer keeps history that old (see store compaction in docs/operations.md)`, { cause: err });
    }
    throw err;
  }
}
