// Signed evidence of how far a chain had got, kept where deleting the chain does not delete it:
// the heads registry (/gatehouse/audit-heads/<replica>: the latest checkpoint of the chain that
// replica writes, signed without its witness list) and each chain's latest checkpoint. The writer reads them to witness
// the other chains and, at start, to notice a chain that no longer holds what was signed; verify
// reads the registry as more checkpoints. Only what verifies against the given keys counts.
import type { KeyObject } from 'node:crypto';
import { rangePages, text, type Store } from '../store/index.js';
import { AUDIT_HEAD_PREFIX, CHECKPOINT_PREFIX, chainRange, isChainOf, parseChainKey } from './chain.js';
import { verifyCheckpoint, type CheckpointPayload } from './checkpoint.js';

export interface SignedHead {
  /** The registry key's name: the replica whose writer stored it. */
  replica: string;
  payload: CheckpointPayload;
  jws: string;
}

export interface BadHead {
  replica: string;
  why: string;
}

/** One record of the registry, checked: the checkpoint must verify and sign a chain of that replica. */
export async function checkHead(replica: string, jws: string, keys: ReadonlyMap<string, KeyObject>): Promise<SignedHead | BadHead> {
  const check = await verifyCheckpoint(jws, keys);
  if (!check.ok) return { replica, why: check.why };
  if (!isChainOf(check.payload.replica, replica)) return { replica, why: `it signs chain ${check.payload.replica}, not one of replica ${replica}` };
  return { replica, payload: check.payload, jws };
}

export const isSigned = (h: SignedHead | BadHead): h is SignedHead => 'payload' in h;

/** Reads the whole registry; a record is verified again only when it changed (the writer reads it at every checkpoint). */
export class HeadReader {
  readonly #keys: ReadonlyMap<string, KeyObject>;
  readonly #seen = new Map<string, { modRevision: number; head: SignedHead | BadHead }>();

  constructor(keys: ReadonlyMap<string, KeyObject>) {
    this.#keys = keys;
  }

  async read(store: Store): Promise<(SignedHead | BadHead)[]> {
    const out: (SignedHead | BadHead)[] = [];
    const present = new Set<string>();
    for await (const page of rangePages(store, { prefix: AUDIT_HEAD_PREFIX }, { limit: 500 })) {
      for (const kv of page) {
        const replica = text(kv.key).slice(AUDIT_HEAD_PREFIX.length);
        present.add(replica);
        const cached = this.#seen.get(replica);
        if (cached?.modRevision === kv.modRevision) {
          out.push(cached.head);
          continue;
        }
        const head = await checkHead(replica, text(kv.value), this.#keys);
        this.#seen.set(replica, { modRevision: kv.modRevision, head });
        out.push(head);
      }
    }
    for (const r of this.#seen.keys()) if (!present.has(r)) this.#seen.delete(r);
    return out;
  }
}

/** The newest checkpoint of a chain that verifies and signs that chain at its own seq (a few bad ones on top are skipped). */
export async function latestSignedCheckpoint(store: Store, chain: string, keys: ReadonlyMap<string, KeyObject>): Promise<CheckpointPayload | undefined> {
  const r = await store.range(chainRange(CHECKPOINT_PREFIX, chain), { reverse: true, limit: 16 });
  for (const kv of r.kvs) {
    const k = parseChainKey(text(kv.key), CHECKPOINT_PREFIX);
    const check = await verifyCheckpoint(text(kv.value), keys);
    if (check.ok && k !== undefined && check.payload.replica === chain && check.payload.seq === k.seq) return check.payload;
  }
  return undefined;
}
