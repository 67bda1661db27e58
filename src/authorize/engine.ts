// PolicyEngine holds the current immutable PolicyState and swaps a new one in atomically
// (one assignment): a decision sees either the old state or the new one, never a mix.
import type { AccessRequest, Authorizer, Decision, Principal } from '../contracts/authz.js';
import { canReach } from './reach.js';
import { decide, unavailable } from './decide.js';
import type { PolicyState } from './types.js';

export interface PolicySwap {
  previous: number | undefined;
  version: number;
}

export class PolicyEngine implements Authorizer {
  #state: PolicyState | undefined;
  readonly #listeners = new Set<(swap: PolicySwap) => void>();

  constructor(state?: PolicyState) {
    this.#state = state;
  }

  get state(): PolicyState | undefined {
    return this.#state;
  }

  get version(): number {
    return this.#state?.version ?? 0;
  }

  /** Installs a state; refuses (returns false) one that is not newer than the current state. */
  swap(state: PolicyState): boolean {
    const previous = this.#state?.version;
    if (previous !== undefined && state.version <= previous) return false;
    this.#state = state;
    for (const fn of this.#listeners) fn({ previous, version: state.version });
    return true;
  }

  /** Called after every swap (e.g. to clear a cache kept elsewhere, or to log the reload). */
  onSwap(fn: (swap: PolicySwap) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  canReach(principal: Principal, namespace: string, service: string): boolean {
    return canReach(this.#state, principal, namespace, service);
  }

  decide(request: AccessRequest): Decision {
    const state = this.#state;
    return state === undefined ? unavailable() : decide(state, request);
  }
}
