// The etcd implementation of the Store (DESIGN.md, "The store"): for more than one replica.
//
// Deadlines and retries: each call has one budget, `timeoutMs` (default 2,000 ms), retries
// included. Failures that prove nothing was applied (unreachable, no leader, proposal
// dropped) are retried on the next member with short jittered pauses; failures that leave the
// outcome unknown (deadline, connection lost mid-call) are retried only for idempotent calls
// (reads, plain put/delete, lease calls, unguarded txns). Compare-and-swap writes and guarded
// txns then fail with ERR_STORE_UNAVAILABLE {retryable, details.ambiguous} so a retry of the
// caller's read-modify-write decides, rather than reporting a conflict with themselves.
//
// Watches run on their own streams and resume from the last delivered revision + 1 (see watch.ts).
import type { EtcdStoreOptions, Store } from '../types.js';
import { EtcdStore } from './store.js';

export async function openEtcdStore(options: EtcdStoreOptions): Promise<Store> {
  return new EtcdStore(options);
}

export { EtcdStore };
