// Canonical JSON for hashing audit events, after RFC 8785 (JCS): object keys sorted by their
// UTF-16 code units, no whitespace, strings and numbers exactly as JSON.stringify prints them.
// Properties whose value is undefined are left out (as JSON.stringify does), so an event built
// with optional fields hashes the same before and after a store round trip.
import { GatehouseError } from '../../errors.js';

function write(value: unknown, out: string[]): void {
  switch (typeof value) {
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'number':
      // JCS forbids NaN and the infinities; JSON.stringify would silently print null.
      if (!Number.isFinite(value)) throw new GatehouseError('ERR_BAD_REQUEST', 'canonical JSON: non-finite number');
      out.push(JSON.stringify(value));
      return;
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'object': {
      if (value === null) {
        out.push('null');
        return;
      }
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          const v: unknown = value[i];
          if (v === undefined) out.push('null');
          else write(v, out);
        }
        out.push(']');
        return;
      }
      const obj = value as Record<string, unknown>;
      // Default sort compares UTF-16 code units, which is what RFC 8785 §3.2.3 asks for.
      const keys = Object.keys(obj).sort();
      out.push('{');
      let first = true;
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(k), ':');
        write(v, out);
      }
      out.push('}');
      return;
    }
    default:
      throw new GatehouseError('ERR_BAD_REQUEST', `canonical JSON: cannot encode a ${typeof value}`);
  }
}

export function canonicalJson(value: unknown): string {
  const out: string[] = [];
  write(value, out);
  return out.join('');
}
