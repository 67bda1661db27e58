// A Store watch on its own etcd watch stream.
//
// etcd3's WatchManager is not used: it resumes from the last *header* revision + 1 (which
// skips events still being replayed when a reconnect happens), reports a compacted start
// only after create() resolved, and throws on responses it cannot match. Here:
// - `#next` is the first revision not yet delivered; a reconnect asks for exactly that, and
//   anything older that the server replays is dropped, so there are no gaps or duplicates;
// - etcd never splits one revision's events across responses (fragment is off), so the
//   de-duplication floor is taken per response;
// - a compacted resume point ends the watch with ERR_STORE_COMPACTED through onError.
import type { IDuplexStream, IWatchRequest, IWatchResponse } from 'etcd3';
import { GatehouseError } from '../../errors.js';
import type { Watch, WatchEvent, WatchHandler, WatchOptions } from '../types.js';
import { toKeyValue, num } from './codec.js';
import { classify } from './errors.js';
import type { Connection } from './connection.js';

type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 1000;

export class EtcdWatch implements Watch {
  readonly #conn: Connection;
  readonly #range: { key: Buffer; range_end?: Buffer };
  readonly #handler: WatchHandler;
  readonly #onError: ((err: Error) => void) | undefined;
  readonly #onEnd: (w: EtcdWatch) => void;
  #startRevision = 0;
  #next = 0;
  #stream: WatchStream | undefined;
  #closed = false;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(conn: Connection, range: { key: Buffer; range_end?: Buffer }, handler: WatchHandler, options: WatchOptions, onEnd: (w: EtcdWatch) => void) {
    this.#conn = conn;
    this.#range = range;
    this.#handler = handler;
    this.#onError = options.onError;
    this.#onEnd = onEnd;
    this.#next = options.fromRevision ?? 0;
  }

  get startRevision(): number {
    return this.#startRevision;
  }

  /** Opens the stream; retries on other members until the overall deadline. */
  async start(): Promise<void> {
    const deadline = Date.now() + this.#conn.timeoutMs;
    let lastErr: GatehouseError | undefined;
    while (Date.now() < deadline) {
      try {
        await this.#connect(deadline);
        return;
      } catch (err) {
        const e = err instanceof GatehouseError ? err : classify(err, 'ERR_STORE_VALUE_TOO_LARGE').error;
        if (!e.retryable || this.#closed) throw e;
        lastErr = e;
        await new Promise((r) => setTimeout(r, 25 + Math.random() * 50));
      }
    }
    throw new GatehouseError('ERR_STORE_UNAVAILABLE', `etcd: could not open a watch in ${this.#conn.timeoutMs} ms${lastErr ? `: ${lastErr.message}` : ''}`, {
      cause: lastErr,
      retryable: true,
    });
  }

  /** Resolves once etcd confirmed the watch (created), rejects if it refused or timed out. */
  async #connect(deadline: number): Promise<void> {
    const { stream, endpoint } = await this.#conn.stream<IWatchRequest, IWatchResponse>('Watch', 'watch', {});
    await new Promise<void>((resolve, reject) => {
      let created = false;
      // Once this stream's fate is decided (failed, canceled, replaced), later signals from it are noise.
      let done = false;
      const finish = (): void => {
        done = true;
        clearTimeout(timer);
        if (this.#stream === stream) this.#stream = undefined;
        try {
          stream.cancel();
        } catch {
          // already closed
        }
      };
      /** The stream failed: before confirmation the caller retries; after, we reconnect (or end). */
      const fail = (err: GatehouseError, retry: boolean): void => {
        finish();
        if (this.#closed) return;
        if (!created) return reject(err);
        if (retry) this.#scheduleReconnect();
        else this.#end(err);
      };
      const timer = setTimeout(() => {
        if (done) return;
        this.#conn.rotateFrom(endpoint);
        fail(new GatehouseError('ERR_STORE_UNAVAILABLE', 'etcd: watch was not confirmed in time', { retryable: true }), true);
      }, Math.max(1, deadline - Date.now()));
      const lost = (err: unknown): void => {
        if (done) return;
        const c = classify(err, 'ERR_STORE_VALUE_TOO_LARGE');
        if (c.rotate) this.#conn.rotateFrom(endpoint);
        if (c.reauth) this.#conn.invalidateAuth(endpoint);
        fail(c.error, c.retry !== 'no');
      };
      stream.on('error', lost);
      stream.on('end', () => lost(new GatehouseError('ERR_STORE_UNAVAILABLE', 'etcd: watch stream ended', { retryable: true })));
      stream.on('data', (res: IWatchResponse) => {
        if (done || this.#closed) return;
        if (res.canceled) {
          const compactRevision = num(res.compact_revision);
          const err = compactRevision > 0
            ? new GatehouseError('ERR_STORE_COMPACTED', `revision ${this.#next} is compacted (etcd keeps from ${compactRevision})`, { details: { compactRevision } })
            : classify(new Error(res.cancel_reason || 'etcd canceled the watch'), 'ERR_STORE_VALUE_TOO_LARGE').error;
          fail(err, err.code !== 'ERR_STORE_COMPACTED' && err.retryable);
          return;
        }
        if (res.created && !created) {
          created = true;
          clearTimeout(timer);
          // No start given: etcd starts at (its revision when it registered the watch) + 1.
          if (this.#next === 0) this.#next = num(res.header.revision) + 1;
          // Set here, not after start() resumes: events may arrive in the same tick.
          if (this.#startRevision === 0) this.#startRevision = this.#next;
          this.#failures = 0;
          resolve();
        }
        this.#deliver(res);
      });
      this.#stream = stream;
      const create: IWatchRequest['create_request'] = { ...this.#range, start_revision: this.#next };
      stream.write({ create_request: create });
    });
  }

  #deliver(res: IWatchResponse): void {
    if (res.events.length === 0) return;
    const floor = this.#next;
    let last = floor - 1;
    for (const ev of res.events) {
      const rev = num(ev.kv.mod_revision);
      if (rev < floor) continue; // replayed after a reconnect: already delivered
      const event: WatchEvent = { type: String(ev.type).toLowerCase() === 'delete' ? 'delete' : 'put', kv: toKeyValue(ev.kv) };
      if (event.type === 'delete') {
        event.kv = { key: event.kv.key, value: new Uint8Array(0), createRevision: 0, modRevision: rev, version: 0 };
      }
      if (this.#closed) return;
      last = Math.max(last, rev);
      try {
        this.#handler(event);
      } catch (err) {
        // A handler that throws ends its watch rather than silently losing events.
        this.#next = last + 1;
        this.#end(err instanceof Error ? err : new Error(String(err)));
        return;
      }
    }
    this.#next = Math.max(this.#next, last + 1);
  }

  #scheduleReconnect(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.#failures) * (0.5 + Math.random() / 2);
    this.#failures++;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#closed) return;
      this.#connect(Date.now() + this.#conn.timeoutMs).catch((err: unknown) => {
        const e = err instanceof GatehouseError ? err : classify(err, 'ERR_STORE_VALUE_TOO_LARGE').error;
        if (this.#closed) return;
        if (e.retryable) this.#scheduleReconnect();
        else this.#end(e);
      });
    }, delay);
  }

  /** Ends the watch on its own and tells the owner. */
  #end(err: Error): void {
    if (this.#closed) return;
    this.#shutdown();
    this.#onError?.(err);
  }

  /** Called by the store when it closes. */
  endWithStoreClosed(): void {
    this.#end(new GatehouseError('ERR_STORE_CLOSED'));
  }

  #shutdown(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const s = this.#stream;
    this.#stream = undefined;
    if (s !== undefined) {
      try {
        s.cancel();
      } catch {
        // already closed
      }
    }
    this.#onEnd(this);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#shutdown();
  }
}
