// Path patterns: the one place their meaning is written down. casbin calls pathMatch
// through model.conf; the fast path's trie (fast.ts) must agree with it, and the
// differential test checks that it does.
//
// A path and a pattern are split on "/" after their leading "/" into segments; segments
// are compared byte for byte (no decoding, no normalisation: the proxy refuses paths it
// would otherwise have to normalise).
//   literal  matches the same segment exactly
//   *        matches exactly one non-empty segment
//   **       only as the last segment: matches any rest, including nothing, so "/a/**"
//            matches "/a", "/a/", "/a/b" and "/a/b/c" but not "/ab"
// A pattern without wildcards matches only the identical path. A path that does not start
// with "/" (e.g. "*" for OPTIONS, or an absolute URI) matches no pattern.

/** Valid characters of a literal segment: RFC 3986 pchar without "%"-decoding, minus "*". */
const LITERAL_SEGMENT = /^[A-Za-z0-9\-._~!$&'()+,;=:@%]+$/;

/** Returns why a pattern is invalid, or undefined when it is valid. */
export function checkPathPattern(pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return 'must start with "/"';
  if (pattern.length > 1024) return 'is longer than 1,024 characters';
  if (pattern === '/') return undefined;
  const segments = pattern.slice(1).split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    const last = i === segments.length - 1;
    if (s === '**') {
      if (!last) return '"**" is allowed only as the last segment ("/a/**")';
      continue;
    }
    if (s === '*') continue;
    if (s === '') {
      if (last) continue; // a trailing "/" is a literal empty segment: "/v1/" matches only "/v1/"
      return 'has an empty segment ("//")';
    }
    if (s.includes('*')) return `"*" must be a whole segment, got "${s}"`;
    if (s === '.' || s === '..') return `has a "${s}" segment`;
    if (/%(2[fF]|5[cC]|2[eE]|00)/.test(s)) return `has an encoded "/", "\\", "." or NUL in "${s}"`;
    if (!LITERAL_SEGMENT.test(s)) return `has characters not allowed in a path segment: "${s}"`;
  }
  return undefined;
}

/** True when a pattern has no "*" or "**" segment (then it matches only the identical path). */
export function isExactPattern(pattern: string): boolean {
  return !pattern.slice(1).split('/').some((s) => s === '*' || s === '**');
}

/** The meaning of a path pattern (registered with casbin as pathMatch). */
export function pathMatch(path: string, pattern: string): boolean {
  if (!path.startsWith('/') || !pattern.startsWith('/')) return false;
  return segmentsMatch(path.slice(1).split('/'), pattern.slice(1).split('/'));
}

/** Compares segment lists: "*" matches one non-empty segment, a last "**" any rest. */
function segmentsMatch(have: readonly string[], want: readonly string[]): boolean {
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w === '**' && i === want.length - 1) return true;
    const h = have[i];
    if (h === undefined) return false;
    if (w === '*') {
      if (h === '') return false;
    } else if (w !== h) {
      return false;
    }
  }
  return have.length === want.length;
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x61 + 10 : -1;
}

/** Bytes kept as escapes when folded: "/" and "*" would change how a folded segment matches, "%" would make escapes ambiguous. */
function keptEncoded(b: number): boolean {
  return b === 0x2f || b === 0x2a || b === 0x25;
}

const HEX = '0123456789ABCDEF';
const escape = (b: number): string => `%${HEX[b >> 4]!}${HEX[b & 15]!}`;

/** Length of the well-formed UTF-8 sequence at bytes[i] (Unicode table 3-7), or 0. */
function utf8Length(bytes: readonly number[], i: number): number {
  const b = bytes[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean => {
    const c = bytes[i + k];
    return c !== undefined && c >= lo && c <= hi;
  };
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if (b === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b >= 0xe1 && b <= 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * One segment as a case-insensitive, percent-decoding upstream reads it: escapes decoded once
 * (UTF-8; a byte that is not part of a well-formed sequence stays an escape, as do "/", "*" and
 * "%"), then case-folded with Unicode's full mappings (upper, then lower: "ſ" and "K" fold to
 * ASCII "s" and "k"; "İ" to "i"). Folding only ever makes more spellings equal, never fewer.
 */
export function foldSegment(segment: string): string {
  let plain = true;
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25 || c === 0x2a || c > 0x7e) {
      plain = false;
      break;
    }
  }
  if (plain) return segment.toLowerCase();
  const bytes: number[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charCodeAt(i);
    if (c === 0x25) {
      const hi = hex(segment.charCodeAt(i + 1));
      const lo = hex(segment.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        bytes.push(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    if (c < 0x80) bytes.push(c);
    else {
      const cp = segment.codePointAt(i)!;
      if (cp > 0xffff) i++;
      bytes.push(...encoder.encode(String.fromCodePoint(cp)));
    }
  }
  let out = '';
  for (let i = 0; i < bytes.length; ) {
    const b = bytes[i]!;
    if (b < 0x80) {
      out += keptEncoded(b) ? escape(b) : String.fromCharCode(b);
      i++;
      continue;
    }
    const n = utf8Length(bytes, i);
    if (n === 0) {
      out += escape(b);
      i++;
    } else {
      out += decoder.decode(Uint8Array.from(bytes.slice(i, i + n)));
      i += n;
    }
  }
  return out.toUpperCase().toLowerCase().replaceAll('i\u0307', 'i');
}

/** True when foldSegment may change something in the path (the common all-lowercase path needs no copy). */
function needsFolding(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if ((c >= 0x41 && c <= 0x5a) || c === 0x25 || c === 0x2a || c > 0x7e) return true;
  }
  return false;
}

/** A path with every segment folded (foldSegment); the same string when there is nothing to fold. */
export function foldPath(path: string): string {
  return needsFolding(path) ? path.split('/').map(foldSegment).join('/') : path;
}

/** A pattern with its literal segments folded; "*" and a last "**" stay wildcards. */
export function foldPattern(pattern: string): string {
  if (!needsFolding(pattern)) return pattern;
  const segments = pattern.split('/');
  return segments.map((s, i) => (s === '*' || (s === '**' && i === segments.length - 1) ? s : foldSegment(s))).join('/');
}

/** pathMatch over the folded path and pattern (registered with casbin as pathMatchFolded). Every exact match is also a folded one. */
export function pathMatchFolded(path: string, pattern: string): boolean {
  if (!path.startsWith('/') || !pattern.startsWith('/')) return false;
  return segmentsMatch(foldPath(path).slice(1).split('/'), foldPattern(pattern).slice(1).split('/'));
}

/** "*" or space-separated method names (registered with casbin as methodMatch). */
export function methodMatch(method: string, methods: string): boolean {
  return methods === '*' || methods.split(' ').includes(method);
}

/** The caller's roles in the target namespace (registered with casbin as roleMatch). */
export function roleMatch(roles: unknown, role: string): boolean {
  return Array.isArray(roles) && roles.includes(role);
}
