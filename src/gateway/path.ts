// Path safety: the path policy sees must be exactly the path the upstream gets. Rather than
// normalise (and risk normalising differently from the upstream), anything an upstream could
// read as another path is refused. Canonical form: origin-form, no dot segments, no empty
// segments, no encoded "/", "\", "." or unreserved characters, uppercase percent-encoding,
// no control characters, no ";" path parameters.
//
// Some spellings are refused by default but a route may allow them (routes[].allowPathForms)
// for an upstream known to read them literally: PATH_FORMS below. checkRequestTarget finds
// them in the same pass; the admit stage refuses the ones the route does not allow.

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
  | 'non-ascii'
  | PathForm;

/**
 * Spellings an upstream may read as another path, refused unless the route allows them:
 *   double-encoding    "%25" before two hex digits: "%252e%252e%252f" is "../" to an upstream that decodes twice
 *   overlong-utf8      an over-long (or 5-6 byte) UTF-8 escape: "%C0%AE" is "." to a lenient decoder
 *   trailing-dot       a segment ending in ".": Windows and IIS drop it ("internal." is "internal")
 *   encoded-space      "%20": trimmed or ignored at a segment's end by the same servers
 *   encoded-semicolon  "%3B": a path parameter (";jsessionid=") to an upstream that decodes first
 */
export const PATH_FORMS = ['double-encoding', 'overlong-utf8', 'trailing-dot', 'encoded-space', 'encoded-semicolon'] as const;
export type PathForm = (typeof PATH_FORMS)[number];

/** The route-dependent forms a target holds (empty for nearly every request). */
export type PathCheck = { ok: true; path: string; query: string; forms: readonly PathForm[] } | { ok: false; problem: PathProblem };

const NO_FORMS: readonly PathForm[] = Object.freeze([]);

function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
}
function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1; // lowercase hex is not canonical: refused with the rest
}
function isHexDigit(c: number): boolean {
  return hexValue(c) >= 0 || (c >= 0x61 && c <= 0x66);
}

/** The byte escaped at path[i] ("%XX", uppercase hex), or -1. */
function escapedByte(path: string, i: number): number {
  if (path.charCodeAt(i) !== 0x25) return -1;
  const hi = hexValue(path.charCodeAt(i + 1));
  const lo = hexValue(path.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/** An escaped lead byte followed by an escaped continuation byte that makes the sequence over-long (or a 5-6 byte form). */
function isOverlong(lead: number, next: number): boolean {
  if (next < 0x80 || next > 0xbf) return false;
  if (lead === 0xc0 || lead === 0xc1) return true; // 2 bytes for U+0000-U+007F
  if (lead === 0xe0) return next < 0xa0; // 3 bytes for less than U+0800
  if (lead === 0xf0) return next < 0x90; // 4 bytes for less than U+10000
  return lead >= 0xf8 && lead <= 0xfd; // 5 and 6 byte forms exist only to be over-long
}

/** The first form in `found` that `allowed` does not list. */
export function refusedForm(found: readonly PathForm[], allowed: readonly PathForm[]): PathForm | undefined {
  for (const f of found) if (!allowed.includes(f)) return f;
  return undefined;
}

/**
 * Splits and checks a raw request target (as it arrived on the wire). Forms `allow` does not list
 * are refused like any other problem, after them; the ones it lists come back in `forms`.
 */
export function checkRequestTarget(target: string, allow: readonly PathForm[] = NO_FORMS): PathCheck {
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

  let forms = NO_FORMS;
  const found = (f: PathForm): void => {
    if (!forms.includes(f)) forms = [...forms, f];
  };
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x5c /* \ */) return { ok: false, problem: 'backslash' };
    if (c === 0x3b /* ; */) return { ok: false, problem: 'path-parameter' };
    if (c === 0x25 /* % */) {
      const byte = escapedByte(path, i);
      if (byte < 0) return { ok: false, problem: 'bad-percent-encoding' };
      if (byte < 0x20 || byte === 0x7f) return { ok: false, problem: 'control-character' };
      if (byte === 0x2f || byte === 0x5c) return { ok: false, problem: 'encoded-separator' };
      if (isUnreserved(byte)) return { ok: false, problem: 'encoded-unreserved' };
      if (byte === 0x25 && isHexDigit(path.charCodeAt(i + 3)) && isHexDigit(path.charCodeAt(i + 4))) found('double-encoding');
      else if (byte === 0x20) found('encoded-space');
      else if (byte === 0x3b) found('encoded-semicolon');
      else if (byte >= 0xc0 && isOverlong(byte, escapedByte(path, i + 3))) found('overlong-utf8');
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
      if (seg.endsWith('.')) found('trailing-dot');
    }
  }
  const refused = refusedForm(forms, allow);
  if (refused !== undefined) return { ok: false, problem: refused };
  return { ok: true, path, query, forms };
}
