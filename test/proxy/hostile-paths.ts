// The hostile-path corpus, shared by the unit test and the over-the-wire test. Grow it.
import { MAX_PATH_LENGTH, type PathProblem } from '../../src/gateway/path.js';

// Entries whose problem is one of PATH_FORMS are refused by default and accepted, unchanged, on a
// route that allows that form; every other entry is refused on every route.

export const HOSTILE_PATHS: [string, PathProblem][] = [
  ['/v1/charges/..', 'dot-segment'],
  ['/v1/../admin/users', 'dot-segment'],
  ['/v1/./charges', 'dot-segment'],
  ['/..', 'dot-segment'],
  ['/v1/%2e%2e/admin', 'bad-percent-encoding'],
  ['/v1/%2E%2E/admin', 'encoded-unreserved'],
  ['/v1/%2E/admin', 'encoded-unreserved'],
  ['/v1%2Fadmin', 'encoded-separator'],
  ['/v1%2fadmin', 'bad-percent-encoding'],
  ['/v1%5Cadmin', 'encoded-separator'],
  ['/v1\\admin', 'backslash'],
  ['/v1/\\..\\admin', 'backslash'],
  ['/%61dmin/users', 'encoded-unreserved'],
  ['/admin%00.json', 'control-character'],
  ['/admin\u0000', 'control-character'],
  ['/admin%0A', 'control-character'],
  ['/admin%0d%0aSet-Cookie:x', 'bad-percent-encoding'],
  ['/admin\t', 'control-character'],
  ['/admin\u007f', 'control-character'],
  ['/admin%7F', 'control-character'],
  ['/admin;jsessionid=1', 'path-parameter'],
  ['/v1/charges;/../admin', 'path-parameter'],
  ['//evil.example/x', 'not-origin-form'],
  ['http://evil.example/x', 'not-origin-form'],
  ['*', 'not-origin-form'],
  ['', 'not-origin-form'],
  ['/a#frag', 'not-origin-form'],
  ['/v1//charges', 'empty-segment'],
  ['/%', 'bad-percent-encoding'],
  ['/%G0', 'bad-percent-encoding'],
  ['/%4', 'bad-percent-encoding'],
  ['/caf\u00e9', 'non-ascii'],
  ['/\u2025/admin', 'non-ascii'],
  ['/q?x=%00', 'control-character'],
  ['/q?x=%zz', 'bad-percent-encoding'],
  ['/' + 'a'.repeat(MAX_PATH_LENGTH), 'too-long'],
  // Issue 11 §1: spellings refused unless the route allows them (routes[].allowPathForms)
  ['/v1/charges/%252e%252e%252fadmin', 'double-encoding'], // "../admin" to an upstream that decodes twice
  ['/v1/charges/%252E%252E/admin', 'double-encoding'],
  ['/v1/%25252e%25252e/admin', 'double-encoding'], // three times
  ['/v1/%C0%AE%C0%AE/admin', 'overlong-utf8'], // ".." in over-long UTF-8
  ['/v1/%C0%AF..', 'overlong-utf8'], // "/" (and a trailing dot after it)
  ['/v1/%C1%9Cadmin', 'overlong-utf8'], // "\"
  ['/v1/%E0%80%AE%E0%80%AE/admin', 'overlong-utf8'],
  ['/v1/%F0%80%80%AE/admin', 'overlong-utf8'],
  ['/v1/%F8%80%80%80%AE/admin', 'overlong-utf8'],
  ['/v1/internal./keys', 'trailing-dot'], // "internal" on Windows and IIS
  ['/v1/internal.../keys', 'trailing-dot'],
  ['/admin.', 'trailing-dot'],
  ['/v1/internal%20/keys', 'encoded-space'], // trimmed at a segment's end by the same servers
  ['/admin%20', 'encoded-space'],
  ['/admin%3Bjsessionid=1', 'encoded-semicolon'], // a path parameter to an upstream that decodes first
  ['/v1/charges/1%3B/admin', 'encoded-semicolon'],
];
