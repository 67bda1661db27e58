// Names both listener configurations share: the gateway's own paths and cookies.
import { LOGIN_COOKIE, SESSION_COOKIE, STATE_COOKIE } from '../authenticate/types.js';

export const CRL_PATH = '/.gatehouse/crl.pem';
export const JWKS_PATH = '/.well-known/jwks.json';

/** The gateway's own cookies: never sent to an upstream, never set by one, on either listener. */
export const GATEWAY_COOKIES: readonly string[] = [SESSION_COOKIE, LOGIN_COOKIE, STATE_COOKIE];
