// Where a browser may be sent after signing in: a path on the same host, or (when a login
// origin serves several hosts) an https URL on a configured route host at the public port.
// Anything else is refused: no open redirects, no scheme-relative or backslash tricks.
import { GatehouseError } from '../errors.js';

export interface ReturnPolicy {
  /** The host (lowercase, no port) the request came to. */
  thisHost: string;
  /** Hosts an absolute return address may name (route hosts and the login host); empty: same host only. */
  otherHosts: ReadonlySet<string>;
  /** Port of the public https origins ('' for 443). */
  publicPort: string;
}

export interface ReturnTo {
  host: string;
  /** Absolute path and query. */
  path: string;
}

const MAX = 2048;

function refused(why: string): GatehouseError {
  return new GatehouseError('ERR_REDIRECT_REFUSED', `return address refused: ${why}`);
}

export function safeReturnTo(rd: unknown, p: ReturnPolicy): ReturnTo {
  if (rd === undefined || rd === null || rd === '') return { host: p.thisHost, path: '/' };
  if (typeof rd !== 'string' || rd.length > MAX) throw refused('expected a string of at most 2048 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\]/.test(rd)) throw refused('control characters, spaces or backslashes');
  if (rd.startsWith('/')) {
    if (rd.startsWith('//')) throw refused('expected a path, got a scheme-relative URL');
    if (rd.startsWith('/.gatehouse/')) throw refused("expected an application path, got one of the gateway's own");
    return { host: p.thisHost, path: rd };
  }
  let url: URL;
  try {
    url = new URL(rd);
  } catch {
    throw refused('expected an absolute path or an https URL');
  }
  if (url.protocol !== 'https:') throw refused(`expected https, got ${url.protocol}`);
  if (url.username !== '' || url.password !== '') throw refused('credentials in the URL');
  const host = url.hostname.toLowerCase();
  if (host !== p.thisHost && !p.otherHosts.has(host)) throw refused(`${host} is not a configured route host`);
  if (url.port !== p.publicPort) throw refused(`expected port ${p.publicPort || '443'}, got ${url.port || '443'}`);
  if (url.pathname.startsWith('/.gatehouse/')) throw refused("expected an application path, got one of the gateway's own");
  return { host, path: url.pathname + url.search };
}
