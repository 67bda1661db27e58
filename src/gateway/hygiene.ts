// Stage 4, request hygiene the route decides: what the upstream could read differently from the
// gateway is refused (400, audited) before any credential is minted for it.
//  - a header name with an underscore: CGI, WSGI and Rack read X_Foo and X-Foo as one variable
//    (refused, or dropped on a route with headersWithUnderscores: drop);
//  - an Upgrade to anything but WebSocket (h2c smuggling: the upstream would switch protocols
//    on a connection the gateway then only pipes), or a WebSocket opened with another method
//    than the GET it is forwarded as.
import { GatehouseError } from '../errors.js';
import type { Refusal } from './audit.js';
import type { Exchange } from './exchange.js';
import { underscoredHeader } from './headers.js';

export function requestHygiene(ex: Exchange): Refusal | undefined {
  const upgrade = ex.req.headers.upgrade;
  if (upgrade !== undefined && upgrade.trim().toLowerCase() !== 'websocket') {
    const error = new GatehouseError('ERR_UPGRADE_REFUSED', `upgrade to ${JSON.stringify(upgrade.slice(0, 32))} refused: only WebSocket`);
    return { error, reasons: ['bad-header'], extra: { 'event.reason': 'upgrade-not-websocket' } };
  }
  // a WebSocket opens with GET (RFC 6455 §4.1) and is forwarded as one: a POST-only caller must
  // not reach the upstream's GET handler through an upgrade policy decided as POST
  if (ex.upgrade && ex.method !== 'GET') {
    const error = new GatehouseError('ERR_UPGRADE_REFUSED', `a WebSocket opens with GET, not ${ex.method.slice(0, 16)}`);
    return { error, reasons: ['bad-header'], extra: { 'event.reason': 'upgrade-method' } };
  }
  const name = underscoredHeader(ex.req.headers);
  if (name === undefined || ex.route?.headersWithUnderscores === 'drop') return undefined;
  const error = new GatehouseError('ERR_HEADER_REJECTED', `header ${JSON.stringify(name.slice(0, 64))} has an underscore in its name`);
  return { error, reasons: ['bad-header'], extra: { 'event.reason': 'underscore-in-header-name' } };
}
