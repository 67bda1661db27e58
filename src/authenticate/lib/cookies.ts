// The few cookies Gatehouse sets, all `__Host-` (Secure, Path=/, no Domain: bound to one host).
import type { IncomingHttpHeaders } from 'node:http';

/** The value of one cookie in a Cookie header (first occurrence), without a parser library. */
export function readCookie(headers: IncomingHttpHeaders, name: string): string | undefined {
  const header = headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The Cookie header without Gatehouse's own cookies (upstreams never see them). */
export function withoutCookies(header: string, names: readonly string[]): string {
  return header
    .split(';')
    .filter((part) => {
      const eq = part.indexOf('=');
      return !names.includes((eq < 0 ? part : part.slice(0, eq)).trim());
    })
    .map((p) => p.trim())
    .filter((p) => p !== '')
    .join('; ');
}

export interface CookieOptions {
  /** Seconds; 0 deletes. Absent: a browser-session cookie. */
  maxAge?: number;
  sameSite?: 'Strict' | 'Lax';
}

export function serializeCookie(name: string, value: string, o: CookieOptions = {}): string {
  const parts = [`${name}=${value}`, 'Path=/', 'Secure', 'HttpOnly', `SameSite=${o.sameSite ?? 'Strict'}`];
  if (o.maxAge !== undefined) parts.push(`Max-Age=${Math.max(0, Math.floor(o.maxAge))}`);
  return parts.join('; ');
}

export function clearCookie(name: string): string {
  return serializeCookie(name, '', { maxAge: 0 });
}
