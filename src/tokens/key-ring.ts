// The signing keys every replica shares through the store.
//
// Load everything under /gatehouse/keys/signing/, then follow it (the store follower: watch,
// re-read after a lost watch), so a key one replica creates is published and used by all of
// them at once; a record that cannot be decoded is reported and its key dropped, never fatal.
// Rotation is scheduled on the injected clock; replicas race for it with one compare-and-swap
// on the pointer /gatehouse/keys/signing-current, so each rotation creates exactly one key and
// the losers adopt the winner's.
//
// Lifecycle of a key (R = rotateAfterMs, P = prepublishMs, G = 900 s max ttl + 30 s skew):
//   createdAt   published in the JWKS
//   activateAt  = createdAt + P (or createdAt if nothing can sign): the newest active key signs
//   retireAt    = activateAt + 2R at creation, moved to the next key's activateAt when it is rotated
//               in; a key never signs after it
//   expireAt    = retireAt + G: every token it signed has expired; unpublished, and its lease
//               deletes it from the store
// The next rotation is due at newest.activateAt + R - P, so the next key activates exactly R
// after the current one.
import { webcrypto, type KeyObject } from 'node:crypto';
import { GatehouseError, isGatehouseError } from '../errors.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { KeyValue, Store, TxnOp } from '../store/index.js';
import { storeKeys } from '../store/keys.js';
import { PrefixMirror, reporterFor, type FollowPhase, type FollowerReporter } from '../store/mirror.js';
import { CONFLICT, retryOnConflict } from '../store/update.js';
import { createSigningKey } from './create-signing-key.js';
import { RETIRED_GRACE_MS, decodePointer, decodeSigningKey, leaseSeconds } from './lib/key-record.js';
import { openPrivateKey } from './open-private-key.js';
import { SIGNING_KEY_PREFIX, SIGNING_POINTER_KEY, TOKEN_LIMITS, type SigningPointer, type StoredSigningKey } from './types.js';

export type WebCryptoKey = webcrypto.CryptoKey;

export interface KeyRingOptions {
  store: Store;
  clock: Clock;
  kek: KeyObject;
  /** Rotation period (default 24 h). At least 2 × prepublishMs. */
  rotateAfterMs?: number;
  /** How long a new key is published before it signs (default 10 min, or rotateAfterMs / 4 if less). */
  prepublishMs?: number;
  /** Wait before retrying a failed rotation, and the longest wait before re-reading after a lost watch (default 30 s). */
  retryMs?: number;
  /** Problems that do not stop the ring: a key it cannot unseal, a failed rotation; unless `follower` is given, also a corrupt record or a lost watch. */
  onError?: (err: GatehouseError) => void;
  /** Where the store follower reports unreadable records, lost watches and resyncs (the gateway's shared reporter). */
  follower?: FollowerReporter;
  /** Keys were added, changed or removed (caches keyed on keys may need dropping). */
  onChange?: (change: { added: string[]; removed: string[] }) => void;
}

export interface RingKey {
  readonly record: StoredSigningKey;
  readonly modRevision: number;
  readonly verifyKey: WebCryptoKey;
  /** Undefined when this replica cannot unseal it (another KEK): published, never used to sign. */
  readonly signKey: WebCryptoKey | undefined;
}

export interface RotateResult {
  /** True when this call created the key; false when it adopted one another replica created. */
  rotated: boolean;
  kid: string;
}

export interface KeyRingStats {
  published: number;
  signingKid: string | undefined;
  /** Rotations this replica won. */
  rotations: number;
  /** Rotation attempts that found another replica's key already in place, and adopted it. */
  adopted: number;
}

const { subtle } = webcrypto;
/** Rotation attempts before giving up (each makes a key pair and grants leases; #kick retries later). */
const ROTATE_ATTEMPTS = 5;

async function importKeys(record: StoredSigningKey, kek: KeyObject): Promise<{ verifyKey: WebCryptoKey; signKey: WebCryptoKey | undefined; error?: GatehouseError }> {
  const { kty, crv, x } = record.publicJwk;
  const verifyKey = await subtle.importKey('jwk', { kty, crv, x }, { name: 'Ed25519' }, false, ['verify']);
  let privateKey: KeyObject;
  try {
    privateKey = openPrivateKey(kek, record.kid, record.sealedPrivateKey);
  } catch (err) {
    if (isGatehouseError(err)) return { verifyKey, signKey: undefined, error: err };
    throw err;
  }
  const jwk = privateKey.export({ format: 'jwk' });
  // The private key must be the published key's other half, or tokens would not verify.
  if (jwk.x !== x || typeof jwk.d !== 'string') {
    return { verifyKey, signKey: undefined, error: new GatehouseError('ERR_TOKEN_KEY_UNSEALABLE', `signing key ${record.kid}: the sealed private key does not match the public key`) };
  }
  const signKey = await subtle.importKey('jwk', { kty, crv, x, d: jwk.d }, { name: 'Ed25519' }, false, ['sign']);
  return { verifyKey, signKey };
}

export class KeyRing {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #kek: KeyObject;
  readonly #rotateAfterMs: number;
  readonly #prepublishMs: number;
  readonly #retryMs: number;
  readonly #onError: (err: GatehouseError) => void;
  readonly #onChange: (change: { added: string[]; removed: string[] }) => void;
  readonly #follower: FollowerReporter | undefined;

  readonly #keys = new Map<string, RingKey>();
  #mirror: PrefixMirror<StoredSigningKey> | undefined;
  /** Events are applied one after another (importing keys is async), in revision order. */
  #chain: Promise<void> = Promise.resolve();
  #rotation: Promise<RotateResult> | undefined;
  #timer: TimerHandle | undefined;
  #lastKick = Number.NEGATIVE_INFINITY;
  #closed = false;
  #signing: { kid: string; key: WebCryptoKey; validUntil: number } | undefined;
  #rotations = 0;
  #adopted = 0;

  private constructor(options: KeyRingOptions) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#kek = options.kek;
    this.#rotateAfterMs = options.rotateAfterMs ?? TOKEN_LIMITS.rotateAfterMs;
    // Short rotation periods (tests, drills) get a proportionally short prepublish time.
    this.#prepublishMs = options.prepublishMs ?? Math.min(TOKEN_LIMITS.prepublishMs, Math.floor(this.#rotateAfterMs / 4));
    this.#retryMs = options.retryMs ?? 30_000;
    this.#onError = options.onError ?? (() => undefined);
    this.#onChange = options.onChange ?? (() => undefined);
    this.#follower = options.follower;
    for (const [name, v] of [['rotateAfterMs', this.#rotateAfterMs], ['prepublishMs', this.#prepublishMs], ['retryMs', this.#retryMs]] as const) {
      if (!Number.isSafeInteger(v) || v < (name === 'prepublishMs' ? 0 : 1)) throw new GatehouseError('ERR_CONFIG_INVALID', `tokens: ${name} must be a whole number of ms, got ${String(v)}`);
    }
    if (this.#rotateAfterMs < 2 * this.#prepublishMs) {
      throw new GatehouseError('ERR_CONFIG_INVALID', `tokens: rotateAfterMs (${this.#rotateAfterMs}) must be at least twice prepublishMs (${this.#prepublishMs})`);
    }
  }

  /** Loads the keys, starts following them, and rotates at once if a rotation is due (first start: creates the first key). */
  static async open(options: KeyRingOptions): Promise<KeyRing> {
    const ring = new KeyRing(options);
    try {
      await ring.#load();
      if (ring.#dueAt() <= ring.#clock.now()) await ring.rotate();
      ring.#schedule();
    } catch (err) {
      await ring.close();
      throw err;
    }
    return ring;
  }

  get prepublishMs(): number {
    return this.#prepublishMs;
  }

  get rotateAfterMs(): number {
    return this.#rotateAfterMs;
  }

  /** The key to sign with now: the newest key this replica can unseal with activateAt <= now < retireAt. */
  signingKey(): { kid: string; key: WebCryptoKey } {
    if (this.#closed) throw new GatehouseError('ERR_TOKEN_UNAVAILABLE', 'the token service is closed');
    const now = this.#clock.now();
    if (this.#signing === undefined || now >= this.#signing.validUntil) this.#signing = this.#pickSigning(now);
    if (this.#signing === undefined) {
      // Nothing can sign: a rotation was missed (store down) or every key is sealed under another KEK.
      this.#kick();
      throw new GatehouseError('ERR_TOKEN_UNAVAILABLE', 'no signing key is active on this replica', { retryable: true });
    }
    return this.#signing;
  }

  /** A published key (not past its expireAt) by kid, for verification. */
  publishedKey(kid: string): RingKey | undefined {
    const k = this.#keys.get(kid);
    return k !== undefined && this.#clock.now() < k.record.expireAt ? k : undefined;
  }

  /** Every published key, newest first. */
  published(): StoredSigningKey[] {
    const now = this.#clock.now();
    return [...this.#keys.values()]
      .map((k) => k.record)
      .filter((r) => now < r.expireAt)
      .sort((a, b) => b.activateAt - a.activateAt || (a.kid < b.kid ? -1 : 1));
  }

  stats(): KeyRingStats {
    const signingKid = this.#closed ? undefined : this.#pickSigning(this.#clock.now())?.kid;
    return { published: this.published().length, signingKid, rotations: this.#rotations, adopted: this.#adopted };
  }

  /**
   * Rotates if due (or always, with force): creates one new key and moves the pointer to it in
   * one transaction that succeeds only if the pointer has not moved since it was read. A replica
   * that loses adopts the winner's key. Concurrent calls on one ring share one attempt.
   */
  rotate(options: { force?: boolean } = {}): Promise<RotateResult> {
    this.#rotation ??= this.#rotate(options.force === true).finally(() => {
      this.#rotation = undefined;
    });
    return this.#rotation;
  }

  /** Resolves when every event received so far is applied and no rotation is running (tests). */
  async idle(): Promise<void> {
    for (;;) {
      const chain = this.#chain;
      const rotation = this.#rotation;
      await chain;
      await rotation?.catch(() => undefined);
      if (chain === this.#chain && rotation === this.#rotation) return;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    this.#timer = undefined;
    await this.#mirror?.close();
    await this.idle();
    this.#keys.clear();
    this.#signing = undefined;
  }

  // --- loading and following ---

  async #load(): Promise<void> {
    this.#mirror = await PrefixMirror.open<StoredSigningKey>(
      {
        store: this.#store,
        prefix: SIGNING_KEY_PREFIX,
        clock: this.#clock,
        retry: { minMs: Math.min(500, this.#retryMs), maxMs: this.#retryMs },
        reporter: this.#follower ?? reporterFor((e) => this.#report(e)),
        decode: (kv) => decodeSigningKey(kv),
      },
      {
        put: (_kid, record, kv, phase) => this.#enqueue(() => this.#putRecord(record, kv), phase),
        // deleted by its lease, or unreadable: no longer published nor used
        delete: (kid, _rev, phase) =>
          this.#enqueue(async () => {
            if (this.#keys.delete(kid)) this.#changed([], [kid]);
          }, phase),
      },
    );
    // importing keys is async: the ring is loaded once the queue has run
    await this.#chain;
  }

  /** Applies changes one after another, in revision order; a change after the first load may move the next rotation. */
  #enqueue(apply: () => Promise<void>, phase: FollowPhase): void {
    this.#chain = this.#chain.then(async () => {
      if (this.#closed) return;
      await apply();
      if (phase !== 'load') this.#schedule();
    }).catch((err: unknown) => this.#report(err));
  }

  /** Adds or updates a key from its stored record (older or equal revisions are ignored). */
  async #put(kv: KeyValue): Promise<void> {
    let record: StoredSigningKey;
    try {
      record = decodeSigningKey(kv);
    } catch (err) {
      this.#report(err);
      return;
    }
    await this.#putRecord(record, kv);
  }

  async #putRecord(record: StoredSigningKey, kv: KeyValue): Promise<void> {
    const had = this.#keys.get(record.kid);
    if (had !== undefined && had.modRevision >= kv.modRevision) return;
    // A rewrite only moves the times: keep the imported keys.
    if (had !== undefined && had.record.publicJwk.x === record.publicJwk.x && had.record.sealedPrivateKey === record.sealedPrivateKey) {
      this.#keys.set(record.kid, { ...had, record, modRevision: kv.modRevision });
      this.#changed([record.kid], []);
      return;
    }
    const { verifyKey, signKey, error } = await importKeys(record, this.#kek);
    if (error !== undefined) this.#report(error);
    // An event may have overtaken this one while importing.
    const now = this.#keys.get(record.kid);
    if (now !== undefined && now.modRevision >= kv.modRevision) return;
    this.#keys.set(record.kid, { record, modRevision: kv.modRevision, verifyKey, signKey });
    this.#changed([record.kid], []);
  }

  #changed(added: string[], removed: string[]): void {
    this.#signing = undefined;
    this.#onChange({ added, removed });
  }

  #report(err: unknown): void {
    this.#onError(isGatehouseError(err) ? err : new GatehouseError('ERR_INTERNAL', 'token key ring failure', { cause: err }));
  }

  // --- choosing ---

  #pickSigning(now: number): { kid: string; key: WebCryptoKey; validUntil: number } | undefined {
    let best: RingKey | undefined;
    let nextActivation = Number.POSITIVE_INFINITY;
    for (const k of this.#keys.values()) {
      const r = k.record;
      if (r.activateAt > now) nextActivation = Math.min(nextActivation, r.activateAt);
      if (k.signKey === undefined || r.activateAt > now || now >= r.retireAt || now >= r.expireAt) continue;
      if (best === undefined || r.activateAt > best.record.activateAt || (r.activateAt === best.record.activateAt && r.kid < best.record.kid)) best = k;
    }
    if (best?.signKey === undefined) return undefined;
    return { kid: best.record.kid, key: best.signKey, validUntil: Math.min(best.record.retireAt, nextActivation) };
  }

  /** The newest key by activateAt, whether or not this replica can unseal it. */
  #newest(): StoredSigningKey | undefined {
    let newest: StoredSigningKey | undefined;
    const now = this.#clock.now();
    for (const { record } of this.#keys.values()) {
      if (now >= record.expireAt) continue;
      if (newest === undefined || record.activateAt > newest.activateAt) newest = record;
    }
    return newest;
  }

  #dueAt(): number {
    const newest = this.#newest();
    if (newest === undefined || this.#clock.now() >= newest.retireAt) return this.#clock.now();
    return Math.min(newest.activateAt + this.#rotateAfterMs - this.#prepublishMs, newest.retireAt);
  }

  // --- rotating ---

  #schedule(): void {
    if (this.#closed) return;
    this.#timer?.cancel();
    const wait = Math.max(0, this.#dueAt() - this.#clock.now());
    this.#timer = this.#clock.setTimer(() => {
      this.#lastKick = Number.NEGATIVE_INFINITY; // a scheduled rotation is never rate-limited
      this.#kick();
    }, wait);
  }

  /**
   * Starts a rotation if none is running and none started within retryMs (a replica that cannot
   * sign must not turn every mint into store reads). Retries after retryMs on failure, or when
   * the store's view still leaves this replica without a key to sign with.
   */
  #kick(): void {
    const now = this.#clock.now();
    if (this.#closed || this.#rotation !== undefined || now - this.#lastKick < this.#retryMs) return;
    this.#lastKick = now;
    const retryLater = (): void => {
      if (this.#closed) return;
      this.#timer?.cancel();
      this.#timer = this.#clock.setTimer(() => {
        this.#lastKick = Number.NEGATIVE_INFINITY;
        this.#kick();
      }, this.#retryMs);
    };
    this.rotate().then(
      (r) => (!r.rotated && this.#dueAt() <= this.#clock.now() ? retryLater() : this.#schedule()),
      (err: unknown) => {
        this.#report(err);
        retryLater();
      },
    );
  }

  async #rotate(force: boolean): Promise<RotateResult> {
    if (this.#closed) throw new GatehouseError('ERR_TOKEN_UNAVAILABLE', 'the token service is closed');
    const exhausted = (): GatehouseError => new GatehouseError('ERR_STORE_CONFLICT', 'the signing key pointer kept changing during rotation; will retry', { retryable: true });
    return retryOnConflict('signing key rotation', async (attempt) => {
      // a forced rotation that lost the race adopts the winner's key instead of rotating again
      const forced = force && attempt === 0;
      const now = this.#clock.now();
      const pointerKv = await this.#store.get(SIGNING_POINTER_KEY);
      const pointer = decodePointer(pointerKv);
      const currentKv = pointer === undefined ? undefined : await this.#store.get(storeKeys.signingKey(pointer.kid));
      let current: StoredSigningKey | undefined;
      try {
        current = currentKv === undefined ? undefined : decodeSigningKey(currentKv);
      } catch (err) {
        this.#report(err); // a corrupt current key is replaced
      }
      if (current !== undefined && now >= current.expireAt) current = undefined;

      // Another replica rotated already (or it is not due yet): adopt its key.
      const dueAt = current === undefined || now >= current.retireAt ? now : Math.min(current.activateAt + this.#rotateAfterMs - this.#prepublishMs, current.retireAt);
      if (current !== undefined && currentKv !== undefined && !forced && now < dueAt) {
        await this.#put(currentKv);
        this.#adopted++;
        return { rotated: false, kid: current.kid };
      }

      // Publish before signing, unless nothing can sign now (first key, or a rotation missed by far).
      const somethingSigns = this.#pickSigning(now) !== undefined || (current !== undefined && current.activateAt <= now && now < current.retireAt);
      const activateAt = somethingSigns ? Math.max(now + this.#prepublishMs, current?.activateAt ?? 0) : now;
      const { record } = createSigningKey({ kek: this.#kek, createdAt: now, activateAt, retireAt: activateAt + 2 * this.#rotateAfterMs });
      const pointerValue: SigningPointer = { kid: record.kid };

      const leases: string[] = [];
      // TTLs from the clock as late as possible: the lease must not outlive expireAt by more than rounding.
      const lease = await this.#store.grant(leaseSeconds(record.expireAt, this.#clock.now()));
      leases.push(lease.id);
      const compares: Parameters<Store['txn']>[0] = [{ key: SIGNING_POINTER_KEY, target: 'modRevision', op: '==', value: pointerKv?.modRevision ?? 0 }];
      const ops: TxnOp[] = [
        { op: 'put', key: storeKeys.signingKey(record.kid), value: JSON.stringify(record), lease: lease.id },
        { op: 'put', key: SIGNING_POINTER_KEY, value: JSON.stringify(pointerValue) },
      ];
      // The key it replaces stops signing when the new one starts, and is unpublished a grace later.
      if (current !== undefined && currentKv !== undefined && current.retireAt > activateAt) {
        const shortened: StoredSigningKey = { ...current, retireAt: Math.max(activateAt, current.activateAt), expireAt: Math.max(activateAt, current.activateAt) + RETIRED_GRACE_MS };
        const oldLease = await this.#store.grant(leaseSeconds(shortened.expireAt, this.#clock.now()));
        leases.push(oldLease.id);
        compares.push({ key: currentKv.key, target: 'modRevision', op: '==', value: currentKv.modRevision });
        ops.push({ op: 'put', key: currentKv.key, value: JSON.stringify(shortened), lease: oldLease.id });
      }
      const txn = await this.#store.txn(compares, ops);
      if (txn.succeeded) {
        this.#rotations++;
        // The replaced key now lives on its shorter lease; its first lease holds nothing any more.
        if (leases.length === 2 && currentKv?.lease !== undefined) await this.#store.revoke(currentKv.lease).catch(() => undefined);
        // Apply at once; the watch delivers the same revisions later and they are ignored.
        for (const op of ops) {
          if (op.op !== 'put' || op.key === SIGNING_POINTER_KEY) continue;
          const kv = await this.#store.get(op.key);
          if (kv !== undefined) await this.#put(kv);
        }
        this.#schedule();
        return { rotated: true, kid: record.kid };
      }
      // Lost the race: the leases hold nothing; drop them and look again (next turn adopts).
      await Promise.all(leases.map((id) => this.#store.revoke(id).catch(() => undefined)));
      return CONFLICT;
    }, { attempts: ROTATE_ATTEMPTS, exhausted });
  }
}
