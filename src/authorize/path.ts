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
  const have = path.slice(1).split('/');
  const want = pattern.slice(1).split('/');
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

/** "*" or space-separated method names (registered with casbin as methodMatch). */
export function methodMatch(method: string, methods: string): boolean {
  return methods === '*' || methods.split(' ').includes(method);
}

/** The caller's roles in the target namespace (registered with casbin as roleMatch). */
export function roleMatch(roles: unknown, role: string): boolean {
  return Array.isArray(roles) && roles.includes(role);
}
