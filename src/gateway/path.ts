// Path safety: the path policy sees must be exactly the path the upstream gets. Rather than
// normalise (and risk normalising differently from the upstream), anything an upstream could
// read as another path is refused. Canonical form: origin-form, no dot segments, no empty
// segments, no encoded "/", "\", "." or unreserved characters, uppercase percent-encoding,
// no control characters, no ";" path parameters.

export const MAX_TARGET_LENGTH = 8192;
export const MAX_PATH_LENGTH = 4096;

export type PathProblem =
  | 'not-origin-form'
  | 'too-long'
  | 'control-character'
  | 'backslash'
  | 'encoded-separator'
  | 'encoded-unreserved'
  | 'bad-percent-encoding'
  | 'dot-segment'
  | 'empty-segment'
  | 'path-parameter'
  | 'non-ascii';

export type PathCheck = { ok: true; path: string; query: string } | { ok: false; problem: PathProblem };

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1; // lowercase hex is not canonical: refused with the rest
}

/** Splits and checks a raw request target (as it arrived on the wire). */
export function checkRequestTarget(target: string): PathCheck {
  if (target.length > MAX_TARGET_LENGTH) return { ok: false, problem: 'too-long' };
  if (target.charCodeAt(0) !== 0x2f /* / */ || target.startsWith('//')) return { ok: false, problem: 'not-origin-form' };
  const q = target.indexOf('?');
  const path = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  if (path.length > MAX_PATH_LENGTH) return { ok: false, problem: 'too-long' };

  for (let i = 0; i < target.length; i++) {
    const c = target.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return { ok: false, problem: 'control-character' };
    if (c > 0x7e) return { ok: false, problem: 'non-ascii' };
    if (c === 0x23 /* # */) return { ok: false, problem: 'not-origin-form' };
  }

  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c /* \ */) return { ok: false, problem: 'backslash' };
    if (c === 0x3b /* ; */) return { ok: false, problem: 'path-parameter' };
    if (c === 0x25 /* % */) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return { ok: false, problem: 'bad-percent-encoding' };
      const byte = hi * 16 + lo;
      if (byte < 0x20 || byte === 0x7f) return { ok: false, problem: 'control-character' };
      if (byte === 0x2f || byte === 0x5c) return { ok: false, problem: 'encoded-separator' };
      if (isUnreserved(byte)) return { ok: false, problem: 'encoded-unreserved' };
      i += 2;
    }
  }
  // Query strings are not matched by policy but still must not smuggle NUL or broken escapes.
  for (let i = query.indexOf('%'); i !== -1; i = query.indexOf('%', i + 1)) {
    const pair = query.slice(i + 1, i + 3);
    if (!/^[0-9A-Fa-f]{2}$/.test(pair)) return { ok: false, problem: 'bad-percent-encoding' };
    if (pair === '00') return { ok: false, problem: 'control-character' };
  }

  if (path !== '/') {
    const segments = path.slice(1).split('/');
    for (let s = 0; s < segments.length; s++) {
      const seg = segments[s]!;
      if (seg === '.' || seg === '..') return { ok: false, problem: 'dot-segment' };
      // a trailing slash is an empty last segment and is allowed; an inner one ("//") is not
      if (seg === '' && s !== segments.length - 1) return { ok: false, problem: 'empty-segment' };
    }
  }
  return { ok: true, path, query };
}
