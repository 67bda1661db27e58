// The set of revoked certificate serials, kept current from the store on every replica.
// isRevoked is a synchronous Set lookup: it runs on the TLS handshake path.
import { GatehouseError } from '../errors.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { KeyValue, Store } from '../store/index.js';
import { REVOKED_CERT_PREFIX, jsonCodec } from '../store/keys.js';
import { PrefixMirror, reporterFor, type FollowPhase, type FollowerReporter } from '../store/mirror.js';
import { canonicalSerial } from './lib/serial.js';
import { REVOCATION_REASONS, type CertRevocation } from './types.js';

export interface CertRevocationListOptions {
  /** Times the retry after a lost watch (default: the system clock). */
  clock?: Clock;
  /** Told of a lost watch (the list then reloads) and of records it could not read, unless `follower` is given. */
  onError?: (err: Error) => void;
  /** Where the store follower reports unreadable records, lost watches and resyncs (the gateway's shared reporter). */
  follower?: FollowerReporter;
}

const PREFIX = REVOKED_CERT_PREFIX;
const RETRY = { minMs: 500, maxMs: 30_000 };

type Listener<T> = (value: T) => void;

export class CertRevocationList {
  readonly #clock: Clock;
  readonly #onError: (err: Error) => void;
  readonly #entries = new Map<string, CertRevocation>();
  #mirror: PrefixMirror<CertRevocation> | undefined;
  /** A resync added or removed serials: listeners hear once it is complete. */
  #resyncChanged = false;
  readonly #revokedListeners = new Set<Listener<CertRevocation>>();
  readonly #changeListeners = new Set<Listener<void>>();

  private constructor(options: CertRevocationListOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#onError = options.onError ?? (() => undefined);
  }

  /** Loads the current set and starts watching; resolves once the set is complete. */
  static async open(store: Store, options: CertRevocationListOptions = {}): Promise<CertRevocationList> {
    const list = new CertRevocationList(options);
    list.#mirror = await PrefixMirror.open<CertRevocation>(
      {
        store,
        prefix: PREFIX,
        clock: list.#clock,
        retry: RETRY,
        reporter: options.follower ?? reporterFor(list.#onError),
        decode: (kv, name) => decode(kv, name),
      },
      {
        put: (_name, rec, _kv, phase) => list.#put(rec, phase),
        // A record whose key names a serial counts as revoked even if its value is unreadable: fail closed.
        invalid: (name, _kv, phase) => {
          const serial = canonicalSerial(name);
          if (serial !== undefined) list.#put({ serial, revokedAt: new Date(list.#clock.now()).toISOString(), reason: 'unspecified', notAfter: '' }, phase);
        },
        delete: (name, _rev, phase) => list.#delete(name, phase),
        synced: (_rev, phase) => {
          if (phase === 'resync' && list.#resyncChanged) list.#emit(list.#changeListeners, undefined);
          list.#resyncChanged = false;
        },
      },
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

  #put(rec: CertRevocation, phase: FollowPhase): void {
    const isNew = !this.#entries.has(rec.serial);
    this.#entries.set(rec.serial, rec);
    if (phase === 'load') return;
    if (isNew) this.#emit(this.#revokedListeners, rec);
    if (phase === 'watch') this.#emit(this.#changeListeners, undefined);
    else if (isNew) this.#resyncChanged = true;
  }

  /** The lease ended (the certificate has expired anyway), or the key is gone since a lost watch. */
  #delete(name: string, phase: FollowPhase): void {
    const serial = canonicalSerial(name);
    if (serial === undefined || !this.#entries.delete(serial)) return;
    if (phase === 'watch') this.#emit(this.#changeListeners, undefined);
    else this.#resyncChanged = true;
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

/** The fields read here; reason and notAfter are optional (an unknown reason reads as unspecified). */
const revocationJson = jsonCodec<Partial<CertRevocation> & { revokedAt: string }>('certificate revocation', (v) =>
  typeof v.revokedAt === 'string' && !Number.isNaN(Date.parse(v.revokedAt)) ? undefined : 'revokedAt is not a date');

/** One stored revocation; throws ERR_CERT_REVOCATION_INVALID for a key that names no serial or a value that cannot be read. */
function decode(kv: KeyValue, name: string): CertRevocation {
  const serial = canonicalSerial(name);
  if (serial === undefined) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', `ignoring ${JSON.stringify(PREFIX + name.slice(0, 120))}: not a serial`);
  const v = revocationJson.decode(kv);
  if (v instanceof GatehouseError) throw new GatehouseError('ERR_CERT_REVOCATION_INVALID', `the record for ${serial} is unreadable; treating the serial as revoked`, { cause: v });
  const reason = typeof v.reason === 'string' && Object.hasOwn(REVOCATION_REASONS, v.reason) ? v.reason : 'unspecified';
  return { serial, revokedAt: v.revokedAt, reason, notAfter: typeof v.notAfter === 'string' ? v.notAfter : '' };
}
