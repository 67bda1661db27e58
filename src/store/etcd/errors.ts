// Maps gRPC / etcd failures to GatehouseError codes, and says whether a retry is safe.
// etcd's messages are stable API (rpctypes in etcd's source); gRPC codes are numeric.
import { GatehouseError, type ErrorCode } from '../../errors.js';

/** A raw gRPC failure, wrapped so etcd3's own error casting passes it through untouched. */
export class RpcFailure extends Error {
  readonly grpcCode: number | undefined;
  readonly details: string;
  constructor(raw: unknown) {
    const r = raw as { code?: unknown; details?: unknown; message?: unknown };
    const details = typeof r.details === 'string' ? r.details : typeof r.message === 'string' ? r.message : String(raw);
    super(details);
    this.name = 'RpcFailure';
    this.grpcCode = typeof r.code === 'number' ? r.code : undefined;
    this.details = details;
  }
}

/**
 * - `no`: retrying cannot help (compacted, bad argument, conflict...).
 * - `safe`: the request was certainly not applied (never sent, refused, no leader, dropped).
 * - `ambiguous`: it may have been applied (deadline, connection lost mid-call, server timeout).
 */
export type RetryClass = 'no' | 'safe' | 'ambiguous';

export interface Classified {
  error: GatehouseError;
  retry: RetryClass;
  /** The endpoint looks unhealthy: move to the next one before retrying. */
  rotate: boolean;
  /** The auth token expired: fetch a new one, then retry. */
  reauth: boolean;
}

// gRPC status codes.
const CANCELLED = 1;
const UNKNOWN = 2;
const INVALID_ARGUMENT = 3;
const DEADLINE_EXCEEDED = 4;
const NOT_FOUND = 5;
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const FAILED_PRECONDITION = 9;
const OUT_OF_RANGE = 11;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

export type SizeCode = Extract<ErrorCode, 'ERR_STORE_VALUE_TOO_LARGE' | 'ERR_STORE_TXN_TOO_LARGE'>;

function fail(code: ErrorCode, message: string, retry: RetryClass, cause: unknown, rotate = false, reauth = false): Classified {
  return { error: new GatehouseError(code, message, { cause, retryable: retry !== 'no' }), retry, rotate, reauth };
}

/** Classifies a failure of one call; `tooLarge` is the code to use if etcd says the request is too large. */
export function classify(err: unknown, tooLarge: SizeCode): Classified {
  if (err instanceof GatehouseError) return { error: err, retry: err.retryable ? 'ambiguous' : 'no', rotate: false, reauth: false };
  // Anything but an RpcFailure was thrown before our call left (e.g. by etcd3's auth token exchange).
  const beforeSend = !(err instanceof RpcFailure);
  const f = err instanceof RpcFailure ? err : new RpcFailure(err);
  const d = f.details;
  const has = (s: string): boolean => d.includes(s);

  // etcd application errors first: their gRPC codes overlap with transport ones.
  if (has('required revision has been compacted')) return fail('ERR_STORE_COMPACTED', d, 'no', f);
  if (has('required revision is a future revision')) return fail('ERR_STORE_FUTURE_REVISION', d, 'no', f);
  if (has('requested lease not found')) return fail('ERR_STORE_LEASE_NOT_FOUND', d, 'no', f);
  if (has('request is too large') || has('larger than max')) return fail(tooLarge, d, 'no', f);
  if (has('too many operations in txn request')) return fail('ERR_STORE_TXN_TOO_LARGE', d, 'no', f);
  if (has('key is not provided')) return fail('ERR_STORE_KEY_EMPTY', d, 'no', f);
  if (has('duplicate key given in txn request') || has('too large lease TTL') || has('lease already exists') || has('value not provided')) {
    return fail('ERR_STORE_BAD_ARGUMENT', d, 'no', f);
  }
  if (has('invalid auth token') || has('revision of auth store is old')) return fail('ERR_STORE_UNAVAILABLE', d, 'safe', f, false, true);
  if (has('authentication failed') || has('permission denied') || has('user name') || f.grpcCode === PERMISSION_DENIED || f.grpcCode === UNAUTHENTICATED) {
    // Not retryable: a wrong password or missing role does not fix itself. The message is etcd's, never the password.
    return fail('ERR_STORE_UNAVAILABLE', `etcd refused the credentials or the operation: ${d}`, 'no', f);
  }
  // Rejected before anything was proposed to raft.
  if (has('etcdserver: no leader') || has('raft proposal dropped') || has('etcdserver: not capable') || has('too many requests') || has('not supported for learner')) {
    return fail('ERR_STORE_UNAVAILABLE', d, 'safe', f, true);
  }
  // Proposed, outcome unknown.
  if (has('request timed out') || has('leader changed') || has('server stopped') || has('etcdserver: unhealthy cluster')) {
    return fail('ERR_STORE_UNAVAILABLE', d, 'ambiguous', f, true);
  }

  switch (f.grpcCode) {
    case DEADLINE_EXCEEDED:
      return fail('ERR_STORE_UNAVAILABLE', `etcd did not answer in time: ${d}`, 'ambiguous', f, true);
    case UNAVAILABLE:
      // grpc-js says "No connection established" when the call never left this process.
      if (has('No connection established') || has('ECONNREFUSED') || has('Stream refused by server') || has('Name resolution failed')) {
        return fail('ERR_STORE_UNAVAILABLE', `etcd unreachable: ${d}`, 'safe', f, true);
      }
      return fail('ERR_STORE_UNAVAILABLE', `etcd connection lost: ${d}`, 'ambiguous', f, true);
    case CANCELLED:
    case UNKNOWN:
    case INTERNAL:
      return fail('ERR_STORE_UNAVAILABLE', d, 'ambiguous', f, true);
    case RESOURCE_EXHAUSTED:
      return fail('ERR_STORE_UNAVAILABLE', d, 'safe', f);
    case INVALID_ARGUMENT:
    case OUT_OF_RANGE:
    case FAILED_PRECONDITION:
    case NOT_FOUND:
      return fail('ERR_STORE_BAD_ARGUMENT', d, 'no', f);
    default:
      if (beforeSend) return fail('ERR_STORE_UNAVAILABLE', `etcd unreachable: ${d}`, 'safe', f, true);
      return fail('ERR_STORE_UNAVAILABLE', d, 'no', f);
  }
}
