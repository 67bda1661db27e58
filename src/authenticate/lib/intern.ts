// One shared instance per distinct value. 100,000 cached sessions name a few hundred users,
// role maps, hosts and factor lists; each record parsed from the store would otherwise carry
// its own copies. Only values bounded by the number of users and credentials are interned
// (never per-session ones like sid), so the tables stay small without eviction.
import type { RoleMap } from '../types.js';

export class Interner {
  readonly #strings = new Map<string, string>();
  readonly #lists = new Map<string, readonly string[]>();
  readonly #roles = new Map<string, RoleMap>();

  str(s: string): string {
    const cur = this.#strings.get(s);
    if (cur !== undefined) return cur;
    this.#strings.set(s, s);
    return s;
  }

  /** A frozen copy, shared by every equal list (same items, same order). */
  list(items: readonly string[]): readonly string[] {
    const key = JSON.stringify(items);
    let cur = this.#lists.get(key);
    if (cur === undefined) this.#lists.set(key, (cur = Object.freeze(items.map((s) => this.str(s)))));
    return cur;
  }

  /** A deeply frozen copy, shared by every equal map (same namespaces and roles, same order). */
  roles(roles: RoleMap): RoleMap {
    const key = JSON.stringify(roles);
    let cur = this.#roles.get(key);
    if (cur === undefined) {
      // frozen: a caller that tried to change a shared map would change every session's
      const copy: RoleMap = Object.fromEntries(Object.entries(roles).map(([ns, rs]) => [this.str(ns), this.list(rs) as string[]]));
      this.#roles.set(key, (cur = Object.freeze(copy)));
    }
    return cur;
  }
}
