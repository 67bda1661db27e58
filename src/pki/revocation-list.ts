// The set of revoked certificate serials, kept current from the store on every replica.
// isRevoked is a synchronous Set lookup: it runs on the TLS handshake path.
import { GatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import { PrefixMirror, text, type KeyValue, type Store, type WatchEvent } from '../store/index.js';
import { canonicalSerial } from './lib/serial.js';
import { REVOCATION_REASONS, STORE_KEYS, type CertRevocation } from './types.js';

export interface CertRevocationListOptions {
  /** Times the retry after a lost watch (default: the system clock). */
  clock?: Clock;
  /** Told of a lost watch (the list then reloads) and of records it could not read. */
  onError?: (err: Error) => void;
}

const PREFIX = STORE_KEYS.revokedCertPrefix;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 30_000;

type Listener<T> = (value: T) => void;

export class CertRevocationList {
  readonly #clock: Clock;
  readonly #onError: (err: Error) => void;
  #entries = new Map<string, CertRevocation>();
  #mirror: PrefixMirror | undefined;
  readonly #revokedListeners = new Set<Listener<CertRevocation>>();
  readonly #changeListeners = new Set<Listener<void>>();

  private constructor(options: CertRevocationListOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Loads the current set and starts watching; resolves once the set is complete. */
  static async open(store: Store, options: CertRevocationListOptions = {}): Promise<CertRevocationList> {
    const list = new CertRevocationList(options);
    list.#mirror = await PrefixMirror.open(
      { store, prefix: PREFIX, clock: list.#clock, retryMinMs: RETRY_MIN_MS, retryMaxMs: RETRY_MAX_MS },
      { snapshot: (kvs, _rev, firstLoad) => list.#load(kvs, firstLoad), event: (e) => list.#apply(e), onError: (e) => list.#onError(e) },
    );
    return list;
  }

  /** True if the serial (any hex spelling, e.g. Node's upper-case X509Certificate.serialNumber) is revoked. */
  isRevoked(serial: string): boolean {
    const s = canonicalSerial(serial);
    return s !== undefined && this.#entries.has(s);
  }

  get(serial: string): CertRevocation | undefined {
    const s = canonicalSerial(serial);
    return s === undefined ? undefined : this.#entries.get(s);
  }

  entries(): CertRevocation[] {
    return [...this.#entries.values()];
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The store revision the set reflects. */
  get revision(): number {
    return this.#mirror?.revision ?? 0;
  }

  /** Called once for each newly revoked serial (not for those loaded at open): close its open connections. */
  onRevoked(fn: Listener<CertRevocation>): () => void {
    this.#revokedListeners.add(fn);
    return () => this.#revokedListeners.delete(fn);
  }

  /** Called after any change of the set (a revocation, an expiry, a reload): rebuild what depends on it (the CRL). */
  onChange(fn: Listener<void>): () => void {
    this.#changeListeners.add(fn);
    return () => this.#changeListeners.delete(fn);
  }

  async close(): Promise<void> {
    await this.#mirror?.close();
  }

  /** The whole set at one revision (at open, and after a lost watch): swapped in. */
  #load(kvs: readonly KeyValue[], firstLoad: boolean): void {
    const next = new Map<string, CertRevocation>();
    for (const kv of kvs) {
      const rec = this.#decode(kv);
      if (rec !== undefined) next.set(rec.serial, rec);
    }
    const added = [...next.values()].filter((rec) => !this.#entries.has(rec.serial));
    const changed = added.length > 0 || next.size !== this.#entries.size;
    this.#entries = next;
    if (!firstLoad) {
      for (const rec of added) this.#emit(this.#revokedListeners, rec);
      if (changed) this.#emit(this.#changeListeners, undefined);
    }
  }

  #apply(event: WatchEvent): void {
    if (event.type === 'delete') {
      // The lease ended: the certificate has expired anyway.
      const serial = canonicalSerial(text(event.kv.key).slice(PREFIX.length));
      if (serial !== undefined && this.#entries.delete(serial)) this.#emit(this.#changeListeners, undefined);
      return;
    }
    const rec = this.#decode(event.kv);
    if (rec === undefined) return;
    const isNew = !this.#entries.has(rec.serial);
    this.#entries.set(rec.serial, rec);
    if (isNew) this.#emit(this.#revokedListeners, rec);
    this.#emit(this.#changeListeners, undefined);
  }

  /** A record whose key names a serial counts as revoked even if its value is unreadable: fail closed. */
  #decode(kv: KeyValue): CertRevocation | undefined {
    const key = text(kv.key);
    const serial = canonicalSerial(key.slice(PREFIX.length));
    if (serial === undefined) {
      this.#onError(new GatehouseError('ERR_CERT_REVOCATION_INVALID', `ignoring ${JSON.stringify(key.slice(0, 120))}: not a serial`));
      return undefined;
    }
    try {
      const v = JSON.parse(text(kv.value)) as Partial<CertRevocation>;
      if (typeof v.revokedAt !== 'string' || Number.isNaN(Date.parse(v.revokedAt))) throw new Error('revokedAt is not a date');
      const reason = typeof v.reason === 'string' && Object.hasOwn(REVOCATION_REASONS, v.reason) ? v.reason : 'unspecified';
      return { serial, revokedAt: v.revokedAt, reason, notAfter: typeof v.notAfter === 'string' ? v.notAfter : '' };
    } catch (cause) {
      this.#onError(new GatehouseError('ERR_CERT_REVOCATION_INVALID', `the record for ${serial} is unreadable; treating the serial as revoked`, { cause }));
      return { serial, revokedAt: new Date(this.#clock.now()).toISOString(), reason: 'unspecified', notAfter: '' };
    }
  }

  #emit<T>(listeners: Set<Listener<T>>, value: T): void {
    for (const fn of listeners) {
      try {
        fn(value);
      } catch (err) {
        this.#onError(err instanceof Error ? err : new Error(String(err)));
      }
    }
  }
}
