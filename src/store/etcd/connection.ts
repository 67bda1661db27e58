// One gRPC channel set per etcd endpoint, a sticky "current" endpoint, and the retry policy.
//
// Retry policy:
// - every Store call has one overall budget, `timeoutMs` (default 2,000 ms), retries included;
// - attempts of idempotent calls get a shorter deadline (a quarter of the budget) so a
//   proposal forwarded to a leader that just died (etcd never re-proposes it) is abandoned
//   quickly and retried on another member; after two attempts timed out, the next one gets
//   the rest of the budget, so a call that is merely slow still completes;
// - `safe` failures (never sent, no leader, proposal dropped) are retried for every call;
//   `ambiguous` ones (deadline, connection lost mid-call) only for idempotent calls — a
//   conditional write would otherwise report a conflict caused by its own first attempt. It
//   fails with ERR_STORE_UNAVAILABLE {retryable, details.ambiguous} instead, and since it
//   cannot be retried after a timeout, its one attempt gets the whole budget.
import { Etcd3, type ICallable, type IDuplexStream, type IOptions, type KVClient } from 'etcd3';
import { readFileSync } from 'node:fs';
import { GatehouseError } from '../../errors.js';
import { backoffDelay, systemRandom, type BackoffPolicy } from '../../lib/backoff.js';
import type { EtcdStoreOptions } from '../types.js';
import { classify, RpcFailure, type SizeCode } from './errors.js';

type ConnArgs = Parameters<Parameters<ICallable<unknown>['withConnection']>[1]>[0];
type GrpcMetadata = ConnArgs['metadata'];
export type GrpcCallOptions = NonNullable<Parameters<KVClient['range']>[1]>;
export type Service = 'KV' | 'Lease' | 'Watch' | 'Maintenance';

type UnaryFn = (req: unknown, md: GrpcMetadata, opts: GrpcCallOptions, cb: (err: unknown, res: unknown) => void) => void;
type StreamFn<Req, Res> = (md: GrpcMetadata, opts: GrpcCallOptions) => IDuplexStream<Req, Res>;

/** Which failures a call may be retried after. */
export type Idempotence = 'idempotent' | 'conditional';

export interface CallSpec<Res> {
  idempotence: Idempotence;
  /** Code for etcd's "request is too large". */
  tooLarge?: SizeCode;
  /**
   * After an ambiguous attempt, a later attempt may fail *because* the first one applied
   * (revoke: lease gone; compact: already compacted). Return true to count that as success.
   */
  appliedEarlier?: (err: GatehouseError) => Res | undefined;
}

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;
// Only execute() is called by etcd3's pool; a structural no-op avoids depending on cockatiel.
const NOOP_POLICY = {
  execute: async <T>(fn: (ctx: { signal: AbortSignal }) => T | Promise<T>): Promise<T> => fn({ signal: new AbortController().signal }),
} as unknown as Policy;

/** Exposes the connection pool etcd3 keeps protected, so calls can carry our metadata and deadlines. */
class EndpointClient extends Etcd3 {
  withConnection<R>(service: Service, fn: (args: ConnArgs) => Promise<R> | R): Promise<R> {
    return this.pool.withConnection(service, fn);
  }

  /** Drops the cached auth token so the next call logs in again (etcd3 keeps it private). */
  invalidateAuthToken(): void {
    const pool = this.pool as unknown as { authenticator?: { invalidateMetadata?: () => void } };
    pool.authenticator?.invalidateMetadata?.();
  }
}

function withRequireLeader(md: GrpcMetadata): GrpcMetadata {
  // etcd rejects calls (and cancels watch streams) on a member that has lost its leader,
  // instead of letting them hang, so we fail over to a member that can serve.
  const copy = md.clone();
  copy.set('hasleader', 'true');
  return copy;
}

// Short, growing, jittered pauses: an etcd election takes about one election timeout.
// Wall-clock, like the gRPC deadlines they sit between; a ref'd timer, so a CLI command waiting
// out a pause is not ended by an empty event loop.
const RETRY_PAUSE: BackoffPolicy = { minMs: 20, maxMs: 250, jitter: { fraction: 0.5, random: systemRandom } };

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Connection {
  readonly timeoutMs: number;
  readonly #attemptMs: number;
  readonly #endpoints: { url: string; client: EndpointClient }[];
  #current = 0;
  #closed = false;

  constructor(options: EtcdStoreOptions) {
    if (options.endpoints.length === 0) throw new GatehouseError('ERR_STORE_BAD_ARGUMENT', 'etcd: no endpoints given');
    this.timeoutMs = options.timeoutMs ?? 2000;
    if (!Number.isFinite(this.timeoutMs) || this.timeoutMs <= 0) throw new GatehouseError('ERR_STORE_BAD_ARGUMENT', 'etcd: timeoutMs must be positive');
    this.#attemptMs = Math.max(100, Math.floor(this.timeoutMs / 4));
    const base = clientOptions(options, this.#attemptMs);
    this.#endpoints = options.endpoints.map((url) => ({ url, client: new EndpointClient({ ...base, hosts: url }) }));
    // Spread load: each process starts on a different member.
    this.#current = Math.floor(Math.random() * this.#endpoints.length);
  }

  get closed(): boolean {
    return this.#closed;
  }

  closedError(): GatehouseError {
    return new GatehouseError('ERR_STORE_CLOSED');
  }

  /** Calls a unary RPC with the retry policy above. */
  unary<Res>(service: Service, method: string, request: unknown, spec: CallSpec<Res>): Promise<Res> {
    return this.retrying(spec, (endpoint, deadline) =>
      endpoint.withConnection(service, ({ client, metadata }) =>
        new Promise<Res>((resolve, reject) => {
          const fn = (client as unknown as Record<string, UnaryFn>)[method];
          if (fn === undefined) return reject(new Error(`etcd3 has no ${service}.${method}`));
          fn.call(client, request, withRequireLeader(metadata), { deadline }, (err, res) => {
            if (err) reject(new RpcFailure(err));
            else resolve(res as Res);
          });
        }),
      ),
    );
  }

  /** Sends one request on a fresh bidirectional stream and resolves with the first reply. */
  exchange<Req, Res>(service: Service, method: string, request: Req, spec: CallSpec<Res>): Promise<Res> {
    return this.retrying(spec, (endpoint, deadline) =>
      endpoint.withConnection(service, ({ client, metadata }) =>
        new Promise<Res>((resolve, reject) => {
          const fn = (client as unknown as Record<string, StreamFn<Req, Res>>)[method];
          if (fn === undefined) return reject(new Error(`etcd3 has no ${service}.${method}`));
          const stream = fn.call(client, withRequireLeader(metadata), { deadline });
          let settled = false;
          stream.on('data', (res) => {
            if (settled) return;
            settled = true;
            resolve(res);
            stream.end();
          });
          // After the reply, the stream's own end/cancel is of no interest.
          stream.on('error', (err) => {
            if (!settled) reject(new RpcFailure(err));
            settled = true;
          });
          stream.on('end', () => {
            if (!settled) reject(new RpcFailure({ code: 14, details: `etcd ended ${method} without a reply` }));
            settled = true;
          });
          stream.write(request);
        }),
      ),
    );
  }

  /** Runs attempt() until it succeeds, fails for good, or the call's budget is spent. */
  async retrying<Res>(spec: CallSpec<Res>, attempt: (endpoint: EndpointClient, deadline: number) => Promise<Res>): Promise<Res> {
    const deadline = Date.now() + this.timeoutMs;
    let failures = 0;
    let timeouts = 0;
    let ambiguous = false;
    for (;;) {
      if (this.#closed) throw this.closedError();
      const index = this.#current;
      const endpoint = this.#endpoints[index]!.client;
      const now = Date.now();
      // Two short attempts ride out a leader loss; after that the rest of the budget goes to one
      // attempt, so a call that is merely slow still completes.
      // A conditional write cannot be retried after a timeout anyway, so it gets the whole budget.
      const short = spec.idempotence === 'idempotent' && timeouts < 2;
      const attemptDeadline = short ? Math.min(deadline, now + this.#attemptMs) : deadline;
      try {
        return await attempt(endpoint, attemptDeadline);
      } catch (err) {
        if (this.#closed) throw this.closedError();
        const c = classify(err, spec.tooLarge ?? 'ERR_STORE_VALUE_TOO_LARGE');
        if (c.retry === 'no') {
          const earlier = ambiguous ? spec.appliedEarlier?.(c.error) : undefined;
          if (earlier !== undefined) return earlier;
          throw c.error;
        }
        if (c.reauth) endpoint.invalidateAuthToken();
        if (c.rotate) this.#rotate(index);
        if (c.retry === 'ambiguous') {
          if (spec.idempotence === 'conditional') {
            throw new GatehouseError('ERR_STORE_UNAVAILABLE', `etcd: outcome unknown, not retried: ${c.error.message}`, {
              cause: c.error,
              retryable: true,
              details: { ambiguous: true },
            });
          }
          ambiguous = true;
        }
        if (Date.now() >= attemptDeadline - 5) timeouts++;
        failures++;
        // Moving to another member for the first time needs no pause.
        const pause = c.rotate && failures === 1 ? 0 : backoffDelay(RETRY_PAUSE, failures - 1);
        if (Date.now() + pause >= deadline) {
          throw new GatehouseError('ERR_STORE_UNAVAILABLE', `etcd: gave up after ${failures} attempts in ${this.timeoutMs} ms: ${c.error.message}`, {
            cause: c.error,
            retryable: true,
          });
        }
        await sleep(pause);
      }
    }
  }

  /**
   * Opens a bidirectional stream on the current endpoint. Failures to open are classified
   * like unary ones; the caller retries (streams are per-attempt).
   */
  async stream<Req, Res>(service: Service, method: string, opts: GrpcCallOptions): Promise<{ stream: IDuplexStream<Req, Res>; endpoint: number }> {
    if (this.#closed) throw this.closedError();
    const index = this.#current;
    const endpoint = this.#endpoints[index]!;
    const stream = await endpoint.client.withConnection(service, ({ client, metadata }) => {
      const fn = (client as unknown as Record<string, StreamFn<Req, Res>>)[method];
      if (fn === undefined) throw new Error(`etcd3 has no ${service}.${method}`);
      return fn.call(client, withRequireLeader(metadata), opts);
    });
    return { stream, endpoint: index };
  }

  /** Moves off endpoint `index` unless another caller already did. */
  rotateFrom(index: number): void {
    this.#rotate(index);
  }

  invalidateAuth(index: number): void {
    this.#endpoints[index]?.client.invalidateAuthToken();
  }

  #rotate(index: number): void {
    if (this.#current === index) this.#current = (index + 1) % this.#endpoints.length;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const e of this.#endpoints) e.client.close();
  }
}

function clientOptions(options: EtcdStoreOptions, attemptMs: number): Omit<IOptions, 'hosts'> {
  const out: Omit<IOptions, 'hosts'> = {
    // Our own retry loop decides; etcd3's default retry (3x) and per-host circuit breaker
    // (open 5 s after 3 failures) would hide failures and stretch a 1 s election into 5 s.
    faultHandling: { host: () => NOOP_POLICY, global: NOOP_POLICY },
    grpcOptions: {
      // Reconnect quickly to a restarted member (gRPC's default backoff grows to 120 s).
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      // Notice a silently dead peer; etcd accepts pings every 5 s or more (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      // Ranges may return many 1.25 MiB values; gRPC's default receive cap is 4 MiB.
      'grpc.max_receive_message_length': 256 * 1024 * 1024,
    },
  };
  if (options.tls !== undefined) {
    const { caFile, certFile, keyFile } = options.tls;
    if ((certFile === undefined) !== (keyFile === undefined)) {
      throw new GatehouseError('ERR_STORE_BAD_ARGUMENT', 'etcd: tls.certFile and tls.keyFile go together');
    }
    out.credentials = {
      // Without caFile, gRPC uses the system roots.
      rootCertificate: caFile === undefined ? (undefined as unknown as Buffer) : readFileSync(caFile),
      ...(keyFile === undefined ? {} : { privateKey: readFileSync(keyFile) }),
      ...(certFile === undefined ? {} : { certChain: readFileSync(certFile) }),
    };
  }
  if (options.auth !== undefined) {
    out.auth = {
      username: options.auth.username,
      password: options.auth.password,
      // Bound the token exchange too; etcd3 sets no deadline on it by default.
      callOptions: () => ({ deadline: Date.now() + attemptMs }),
    };
  }
  return out;
}
