// Names both listener configurations share: the gateway's own paths and cookies.
import { LOGIN_COOKIE, SESSION_COOKIE, STATE_COOKIE } from '../authenticate/types.js';

export const CRL_PATH = '/.gatehouse/crl.pem';
export const JWKS_PATH = '/.well-known/jwks.json';

/** The gateway's own cookies: never sent to an upstream, never set by one, on either listener. */
export const GATEWAY_COOKIES: readonly string[] = [SESSION_COOKIE, LOGIN_COOKIE, STATE_COOKIE];

/** A request to the gateway's own routes (sign-in steps, token exchange: small bodies) must arrive within these. */
export const OWN_ROUTE_DEADLINES = { requestTimeout: 60_000, bodyIdleTimeout: 15_000 } as const;

/**
 * On the human listener the gateway answers for HSTS (an upstream's `max-age=0` would switch it
 * off for the gateway's host) and Clear-Site-Data (an upstream could wipe the gateway's cookies).
 */
export const HUMAN_GATEWAY_HEADERS: Readonly<Record<string, string>> = { 'strict-transport-security': 'max-age=31536000', 'clear-site-data': '' };
