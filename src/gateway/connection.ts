// Stage 1, connection: the facts of a connection, computed once at the handshake, and every
// limit on connections. A connection is counted from TCP accept to close; it must finish TLS
// within handshakeTimeout, send its headers within headersTimeout, and not sit idle past
// idleTimeout; one address holds at most maxPerAddress of them; a connection never outlives
// its client certificate. Whatever Gatehouse refuses here is destroyed, never ended politely
// and left to the client (a socket that never finished TLS cannot flush an end(): that was
// the CLOSE-WAIT leak), and is reported once.
//
// Node 20 gives us (measured): a handshake timeout that is absolute (TLS bytes do not reset
// it) but reports through 'clientError', where an end() never completes; a headers timeout
// checked only every connectionsCheckingInterval (30 s by default); a keep-alive timeout only
// after a first response (a connection that never sends a request is held until the headers
// timeout); no per-address limit. The stage keeps Node's headers check (tightened) and adds
// the rest on the injected clock, one timer for all connections (connection-deadlines.ts).
import { randomUUID } from 'node:crypto';
import { STATUS_CODES, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { isIPv6, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { FastifyServerOptions } from 'fastify';
import { GatehouseError, type ErrorCode } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { errorBody } from '../lib/http-errors.js';
import { DeadlineQueue, type Deadlined } from '../lib/deadline-queue.js';
import type { X509Certificate } from 'node:crypto';
import { canonicalSerial } from '../pki/lib/serial.js';
import { spiffeIdOfSubjectAltName, uriSubjectAltNames } from '../pki/spiffe.js';
import { certThumbprint } from '../tokens/cert-thumbprint.js';

// ---- what a connection's verified client certificate says, read once at the handshake

export interface ConnectionFacts {
  readonly remoteAddress: string;
  /** The verified peer certificate (mTLS); undefined without one, or when it did not verify. */
  readonly cert: X509Certificate | undefined;
  /** Lowercase hex, as canonicalSerial gives it. */
  readonly serial: string | undefined;
  /** RFC 8705 x5t#S256 of the certificate. */
  readonly thumbprint: string | undefined;
  /** The SPIFFE ID: the certificate's one URI SAN, when it starts spiffe:// (X509-SVID §4.1). */
  readonly spiffeId: string | undefined;
  /** Milliseconds since the epoch. */
  readonly notAfter: number | undefined;
}

/** The URI SANs in Node's subjectAltName text: pki/spiffe's reader (kept under this name for the gateway's tests). */
export { uriSubjectAltNames as uriSans };

/** The facts of a connection; cert only when the handshake verified it. */
export function connectionFacts(remoteAddress: string, cert: X509Certificate | undefined): ConnectionFacts {
  if (cert === undefined) return { remoteAddress, cert: undefined, serial: undefined, thumbprint: undefined, spiffeId: undefined, notAfter: undefined };
  const notAfter = Date.parse(cert.validTo);
  return {
    remoteAddress,
    cert,
    serial: canonicalSerial(cert.serialNumber),
    thumbprint: certThumbprint(cert),
    spiffeId: spiffeIdOfSubjectAltName(cert.subjectAltName),
    // an unreadable date fails closed: the certificate counts as expired
    notAfter: Number.isNaN(notAfter) ? 0 : notAfter,
  };
}

/** Milliseconds, and a count. */
export interface ConnectionLimits {
  handshakeTimeout: number;
  headersTimeout: number;
  idleTimeout: number;
  maxPerAddress: number;
  /** Open connections this listener holds in all (handshakes included): the descriptor budget. */
  maxConnections: number;
}

export type ConnectionRefusalReason =
  | 'per-address-limit'
  /** The listener's whole budget is in use: the oldest unfinished handshake is shed, or the newcomer refused. */
  | 'listener-limit'
  | 'handshake-timeout'
  /** The handshake failed: no client certificate, one that does not verify, no common protocol. */
  | 'handshake-failed'
  /** The client closed or reset the connection before the handshake finished (scanners, health checks). */
  | 'handshake-abandoned'
  /** TLS finished but the stage refused the connection: admit() said no, or the certificate has expired by the clock. */
  | 'refused-at-handshake'
  | 'malformed-request'
  | 'headers-too-large'
  | 'headers-timeout';

export interface ConnectionRefusal {
  reason: ConnectionRefusalReason;
  code: ErrorCode;
  remoteAddress: string;
  /** OpenSSL's or Node's reason (ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ECONNRESET...). */
  tlsReason?: string;
  /** For refusals after the handshake. */
  facts?: ConnectionFacts;
  /** HTTP-level refusals: the request id in the answer's body. */
  requestId?: string;
}

export interface ConnectionHooks {
  /** Refusals of sockets no installed stage knows (with installConnectionStage, its onRefused gets every refusal). */
  onRefused(r: ConnectionRefusal): void;
  /** Not needed: the stage's clock times everything. Accepted so the listener can pass its clock. */
  now?(): number;
}

export type ConnectionServerOptions = Required<Pick<FastifyServerOptions, 'connectionTimeout' | 'keepAliveTimeout' | 'requestTimeout' | 'clientErrorHandler'>>;

export interface ConnectionStageOptions {
  limits: ConnectionLimits;
  clock: Clock;
  /** At the handshake: a GatehouseError refuses the connection (a revoked certificate); it is destroyed and reported once. */
  admit?(facts: ConnectionFacts): GatehouseError | undefined;
  onRefused(r: ConnectionRefusal): void;
  /** A connection was closed because its certificate reached notAfter (not a refusal; the identity ended). */
  onExpired?(facts: ConnectionFacts): void;
}

export interface ConnectionStage {
  /** O(1). Undefined: not a completed TLS connection of this server. */
  factsOf(socket: Duplex): ConnectionFacts | undefined;
  /** Labels a connection: `session:<sid>`, `user:<id>`, `cert:<serial>`, `service:<spiffe>`. */
  tag(socket: Duplex, tag: string): void;
  /** Destroys every open connection with that label (WebSockets on them included); returns how many. */
  closeTagged(tag: string): number;
  /** Destroys every completed connection the predicate picks; returns how many. */
  closeWhere(pred: (facts: ConnectionFacts, tags: ReadonlySet<string>) => boolean): number;
  /** TCP connections this server holds, handshakes in progress included. */
  readonly openConnections: number;
  /** The connection carries an upgraded (WebSocket) stream: no idle timeout; the caller owns its lifetime (expiry still ends it). */
  markUpgraded(socket: Duplex): void;
  /** The connection ends at this clock time at the latest (a session's absolute lifetime); earlier deadlines stay. */
  endBy(socket: Duplex, at: number): void;
  /**
   * The request in flight is the gateway's own (a logout, a sign-in step): a close asked for while
   * it runs waits for its answer, so the answer (a cookie cleared) is not lost. Proxied requests
   * and WebSockets are cut at once.
   */
  markOwnRequest(socket: Duplex): void;
  /** Destroys every connection and refuses new ones (server shutdown). */
  close(): void;
}

/** How long an answered client error may take to reach the client before the socket is destroyed. */
export const CLOSE_GRACE_MS = 1000;
/** Node checks headersTimeout on an interval: this often at most, so a slow sender lives at most this much past it. */
const MAX_CHECK_INTERVAL_MS = 1000;
const NO_TAGS: ReadonlySet<string> = new Set();

interface Conn extends Deadlined {
  readonly stage: Stage;
  raw: Socket | undefined;
  /** The socket HTTP sees: the TLSSocket (the raw socket on a plain http server). */
  http: Duplex | undefined;
  readonly key: string;
  readonly remoteAddress: string;
  secure: boolean;
  upgraded: boolean;
  /** A gateway-own request is in flight: closes wait for its answer. */
  ownRequest: boolean;
  closeAfterResponse: boolean;
  /** A lifetime the connection may not outlive (endBy). */
  endBy: number | undefined;
  /** Destroyed by the stage, or closed. */
  ending: boolean;
  closed: boolean;
  reported: boolean;
  facts: ConnectionFacts | undefined;
  tags: Set<string> | undefined;
  inFlight: number;
  readonly handshakeBy: number;
  /** Clock time since which no request has been in flight. */
  readySince: number;
  /** Cleartext bytes read by then: Node's headers timeout on a connection that sent nothing is an idle close, not a refusal. */
  readMark: number;
  closeBy: number | undefined;
}

/** Raw and HTTP sockets to their connection: read by the clientErrorHandler, which fastify creates before the stage. */
const connOf = new WeakMap<object, Conn>();

/** The net.Socket a server-side TLSSocket wraps (Node sets `_parent`; the handshake never exposes the TLSSocket otherwise). */
function parentOf(socket: object): object | undefined {
  const parent = (socket as { _parent?: unknown })._parent;
  return typeof parent === 'object' && parent !== null ? parent : undefined;
}

function lookup(socket: object): Conn | undefined {
  const direct = connOf.get(socket);
  if (direct !== undefined) return direct;
  const parent = parentOf(socket);
  return parent === undefined ? undefined : connOf.get(parent);
}

/** An IPv4-mapped address counts as the IPv4 address; IPv6 counts by /64 (one host usually holds a whole /64). */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const groups = expandIPv6(address);
  return groups === undefined ? address : `${groups.slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] | undefined {
  const bare = address.split('%')[0] ?? address;
  const [head = '', tail] = bare.split('::');
  const parts = (s: string): string[] => (s === '' ? [] : s.split(':'));
  const h = parts(head);
  const t = tail === undefined ? [] : parts(tail);
  if (tail === undefined && h.length !== 8) return undefined;
  const groups = [...h, ...Array<string>(Math.max(0, 8 - h.length - t.length)).fill('0'), ...t];
  return groups.map((g) => (g.includes('.') ? g : g.toLowerCase().replace(/^0+(?=.)/, '')));
}

function normalizeAddress(address: string | undefined): string | undefined {
  if (address === undefined) return undefined;
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Server options the stage needs; spread into Fastify({...}). */
export function connectionServerOptions(limits: ConnectionLimits, hooks: ConnectionHooks): ConnectionServerOptions {
  return {
    // Node's socket timeout would fire mid-request too: the stage's idle deadline replaces it
    connectionTimeout: 0,
    // advertised as Keep-Alive: timeout=, so clients stop reusing a connection before it closes;
    // Node's own close follows 1 s later, the stage's at idleTimeout
    keepAliveTimeout: limits.idleTimeout,
    // bodies stream through (100 MB uploads): no deadline on a whole request
    requestTimeout: 0,
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => {
      const conn = lookup(socket);
      if (conn !== undefined) conn.stage.clientError(conn, err, socket);
      else standaloneClientError(err, socket, (r) => hooks.onRefused(r));
    },
  };
}

/**
 * Optional, for the `https` options: Node's own handshake timeout (120 s by default) at the same
 * value, a real-time backstop behind the stage's clock deadline. It reports the same way.
 */
export function connectionTlsOptions(limits: ConnectionLimits): { handshakeTimeout: number } {
  return { handshakeTimeout: limits.handshakeTimeout };
}

/** Installs the stage on the server fastify created; call before listen. */
export function installConnectionStage(server: HttpsServer | HttpServer, o: ConnectionStageOptions): ConnectionStage {
  return new Stage(server, o);
}

type HttpRefusal = { reason: 'malformed-request' | 'headers-too-large' | 'headers-timeout'; error: GatehouseError };

/** An HTTP-level client error, or undefined for a socket error (reset, broken pipe) that deserves no answer. */
function httpRefusal(err: NodeJS.ErrnoException): HttpRefusal | undefined {
  const code = err.code ?? '';
  if (code === 'HPE_HEADER_OVERFLOW') return { reason: 'headers-too-large', error: new GatehouseError('ERR_HEADERS_TOO_LARGE', 'request headers exceed 16 KiB') };
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return { reason: 'headers-timeout', error: new GatehouseError('ERR_HEADERS_TIMEOUT') };
  // llhttp's parse errors; Node adds nothing else with this prefix
  if (code.startsWith('HPE_')) return { reason: 'malformed-request', error: new GatehouseError('ERR_BAD_REQUEST', 'malformed HTTP request') };
  return undefined;
}

const ABANDONED = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED']);

/** What a failed handshake is reported as. */
function tlsRefusal(err: NodeJS.ErrnoException, socket: object): Pick<ConnectionRefusal, 'reason' | 'code' | 'tlsReason'> {
  const code = err.code ?? '';
  // a rejecting server verifies after the handshake, then destroys: the error is a hang-up, the reason is here
  const authorizationError: unknown = (socket as { authorizationError?: unknown }).authorizationError;
  const verify = typeof authorizationError === 'string' ? authorizationError : authorizationError instanceof Error ? ((authorizationError as NodeJS.ErrnoException).code ?? authorizationError.message) : undefined;
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return { reason: 'handshake-timeout', code: 'ERR_TLS_HANDSHAKE_TIMEOUT', tlsReason: code };
  if (verify !== undefined && verify !== '') {
    const mapped: ErrorCode = verify === 'CERT_REVOKED' ? 'ERR_CERT_REVOKED' : verify === 'CERT_HAS_EXPIRED' ? 'ERR_CERT_EXPIRED' : 'ERR_TLS_HANDSHAKE_FAILED';
    return { reason: 'handshake-failed', code: mapped, tlsReason: verify };
  }
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE') return { reason: 'handshake-failed', code: 'ERR_CERT_REQUIRED', tlsReason: code };
  if (ABANDONED.has(code)) return { reason: 'handshake-abandoned', code: 'ERR_TLS_HANDSHAKE_FAILED', tlsReason: code };
  return { reason: 'handshake-failed', code: 'ERR_TLS_HANDSHAKE_FAILED', tlsReason: code !== '' ? code : 'handshake-failed' };
}

/** Writes a coded JSON error and ends the socket, unless a response is already under way. */
function answer(socket: Duplex, error: GatehouseError, requestId: string): void {
  // Node's own rule: never write into a response whose headers are out
  const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
  if (!socket.writable || inFlight?.headersSent === true) return;
  const body = JSON.stringify(errorBody(error, requestId));
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status] ?? 'Error'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}

/** Cleartext bytes read; -1 when the socket cannot say (so the connection never passes for idle). */
function bytesRead(socket: Socket): number {
  try {
    return socket.bytesRead;
  } catch {
    return -1;
  }
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // a failing audit hook must not leave a socket open
  }
}

/** Without the stage: HTTP errors are answered and closed on a real timer; everything else is destroyed. */
function standaloneClientError(err: NodeJS.ErrnoException, socket: Socket, onRefused: (r: ConnectionRefusal) => void): void {
  const refusal = httpRefusal(err);
  if (refusal === undefined) {
    socket.destroy();
    if (!ABANDONED.has(err.code ?? '')) safely(() => onRefused({ ...tlsRefusal(err, socket), remoteAddress: normalizeAddress(socket.remoteAddress) ?? 'unknown' }));
    return;
  }
  const requestId = randomUUID();
  answer(socket, refusal.error, requestId);
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  safely(() => onRefused({ reason: refusal.reason, code: refusal.error.code, remoteAddress: normalizeAddress(socket.remoteAddress) ?? 'unknown', requestId }));
}

class Stage implements ConnectionStage {
  readonly #o: ConnectionStageOptions;
  readonly #secure: boolean;
  readonly #conns = new Set<Conn>();
  readonly #perAddress = new Map<string, number>();
  readonly #byTag = new Map<string, Set<Conn>>();
  readonly #queue: DeadlineQueue<Conn>;
  #closed = false;

  constructor(server: HttpsServer | HttpServer, o: ConnectionStageOptions) {
    this.#o = o;
    this.#secure = server instanceof TlsServer;
    this.#queue = new DeadlineQueue<Conn>(o.clock, (c) => this.#next(c), (c, now) => this.#due(c, now));

    // Node's header deadline stays (it alone sees where a request starts), checked often enough
    // to matter: by default every 30 s. The interval is read at 'listening'.
    server.headersTimeout = o.limits.headersTimeout;
    (server as { connectionsCheckingInterval?: number }).connectionsCheckingInterval = Math.max(50, Math.min(MAX_CHECK_INTERVAL_MS, Math.floor(o.limits.headersTimeout / 4)));

    // The per-address cap runs before any TLS work: this listener stands in front of Node's own
    const inner = server.listeners('connection') as ((socket: Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (raw: Socket) => {
      if (this.#accept(raw)) for (const l of inner) l.call(server, raw);
    });
    // first, so every other listener already finds the facts
    if (this.#secure) server.prependListener('secureConnection', (socket: TLSSocket) => this.#secured(socket));
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res));
    // Node treats an Upgrade header as an upgrade only when 'upgrade' has listeners: the stage
    // listens only once someone else does, ahead of them
    const upgrading = (req: IncomingMessage): void => this.#upgrading(req.socket);
    const follow = (event: string | symbol): void => {
      if (event !== 'upgrade') return;
      server.removeListener('newListener', follow);
      server.prependListener('upgrade', upgrading);
    };
    if (server.listenerCount('upgrade') > 0) follow('upgrade');
    else server.on('newListener', follow);
  }

  get openConnections(): number {
    return this.#conns.size;
  }

  factsOf(socket: Duplex): ConnectionFacts | undefined {
    const conn = connOf.get(socket);
    return conn?.stage === this && conn.secure ? conn.facts : undefined;
  }

  tag(socket: Duplex, tag: string): void {
    const conn = connOf.get(socket);
    if (conn?.stage !== this || conn.closed) return;
    conn.tags ??= new Set();
    if (conn.tags.has(tag)) return;
    conn.tags.add(tag);
    let set = this.#byTag.get(tag);
    if (set === undefined) this.#byTag.set(tag, (set = new Set()));
    set.add(conn);
  }

  closeTagged(tag: string): number {
    const set = this.#byTag.get(tag);
    if (set === undefined) return 0;
    let n = 0;
    for (const conn of [...set]) if (this.#close(conn)) n++;
    return n;
  }

  closeWhere(pred: (facts: ConnectionFacts, tags: ReadonlySet<string>) => boolean): number {
    let n = 0;
    for (const conn of [...this.#conns]) {
      if (!conn.secure || conn.ending || conn.facts === undefined) continue;
      if (pred(conn.facts, conn.tags ?? NO_TAGS) && this.#close(conn)) n++;
    }
    return n;
  }

  markUpgraded(socket: Duplex): void {
    const conn = connOf.get(socket);
    if (conn?.stage === this) conn.upgraded = true;
  }

  endBy(socket: Duplex, at: number): void {
    const conn = connOf.get(socket);
    if (conn?.stage !== this || conn.closed || (conn.endBy !== undefined && conn.endBy <= at)) return;
    conn.endBy = at;
    this.#queue.update(conn);
  }

  markOwnRequest(socket: Duplex): void {
    const conn = connOf.get(socket);
    if (conn?.stage === this && conn.inFlight > 0) conn.ownRequest = true;
  }

  /** An ended identity's close: at once, or right after a gateway-own answer in flight. */
  #close(conn: Conn): boolean {
    if (conn.ending || conn.closed || conn.closeAfterResponse) return false;
    if (conn.ownRequest && conn.inFlight > 0 && !conn.upgraded) {
      conn.closeAfterResponse = true;
      return true;
    }
    return this.#end(conn);
  }

  close(): void {
    this.#closed = true;
    for (const conn of [...this.#conns]) {
      conn.reported = true; // a shutdown refuses nobody
      this.#end(conn);
    }
    this.#queue.clear();
  }

  /** Counts a new TCP connection, or destroys it at once; true when Node's listener may take it. */
  #accept(raw: Socket): boolean {
    const remoteAddress = normalizeAddress(raw.remoteAddress);
    if (this.#closed || remoteAddress === undefined) {
      // shutting down, or the client already left: nothing to hold or to report
      raw.destroy();
      return false;
    }
    if (this.#conns.size >= this.#o.limits.maxConnections) {
      // the budget is spent: an unfinished handshake is the cheapest to give up (an attacker
      // holding half-open connections loses them first); with none, the newcomer is refused
      const oldest = this.#oldestHandshake();
      if (oldest === undefined) {
        raw.destroy();
        safely(() => this.#o.onRefused({ reason: 'listener-limit', code: 'ERR_TOO_MANY_CONNECTIONS', remoteAddress }));
        return false;
      }
      this.#report(oldest, { reason: 'listener-limit', code: 'ERR_TOO_MANY_CONNECTIONS', remoteAddress: oldest.remoteAddress });
      this.#end(oldest);
    }
    const key = addressKey(remoteAddress);
    const held = this.#perAddress.get(key) ?? 0;
    if (held >= this.#o.limits.maxPerAddress) {
      raw.destroy();
      safely(() => this.#o.onRefused({ reason: 'per-address-limit', code: 'ERR_TOO_MANY_CONNECTIONS', remoteAddress }));
      return false;
    }
    this.#perAddress.set(key, held + 1);
    const now = this.#o.clock.now();
    const conn: Conn = {
      stage: this,
      raw,
      http: this.#secure ? undefined : raw,
      key,
      remoteAddress,
      secure: !this.#secure,
      upgraded: false,
      ownRequest: false,
      closeAfterResponse: false,
      endBy: undefined,
      ending: false,
      closed: false,
      reported: false,
      facts: this.#secure ? undefined : connectionFacts(remoteAddress, undefined),
      tags: undefined,
      inFlight: 0,
      handshakeBy: now + this.#o.limits.handshakeTimeout,
      readySince: now,
      readMark: 0,
      closeBy: undefined,
      queuedAt: undefined,
    };
    this.#conns.add(conn);
    connOf.set(raw, conn);
    raw.once('close', () => this.#onClose(conn));
    this.#queue.update(conn);
    return true;
  }

  #secured(socket: TLSSocket): void {
    const conn = lookup(socket);
    if (conn?.stage !== this || conn.secure || conn.ending) return;
    conn.http = socket;
    conn.secure = true;
    connOf.set(socket, conn);
    const now = this.#o.clock.now();
    let refusal: GatehouseError | undefined;
    try {
      // only a certificate the handshake verified is a fact
      conn.facts = connectionFacts(conn.remoteAddress, socket.authorized ? socket.getPeerX509Certificate() : undefined);
      const notAfter = conn.facts.notAfter;
      refusal = notAfter !== undefined && notAfter <= now ? new GatehouseError('ERR_CERT_EXPIRED') : this.#o.admit?.(conn.facts);
    } catch (err) {
      refusal = err instanceof GatehouseError ? err : new GatehouseError('ERR_CERT_INVALID', 'the client certificate cannot be read', { cause: err });
    }
    if (refusal !== undefined) {
      this.#report(conn, { reason: 'refused-at-handshake', code: refusal.code, remoteAddress: conn.remoteAddress, ...(conn.facts !== undefined ? { facts: conn.facts } : {}) });
      this.#end(conn);
      return;
    }
    conn.readySince = now;
    conn.readMark = bytesRead(socket);
    this.#queue.update(conn);
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    // req.socket is null once Node frees the request: keep the socket itself
    const socket = req.socket as Socket | null;
    const conn = socket === null ? undefined : connOf.get(socket);
    if (socket === null || conn?.stage !== this || conn.closed) return;
    conn.inFlight++;
    res.once('close', () => {
      conn.inFlight--;
      if (conn.inFlight > 0 || conn.closed) return;
      conn.ownRequest = false;
      if (conn.closeAfterResponse) {
        this.#end(conn);
        return;
      }
      conn.readySince = this.#o.clock.now();
      conn.readMark = bytesRead(socket);
      this.#queue.update(conn);
    });
  }

  /** An upgrade request is activity: the idle deadline restarts, until markUpgraded (or a refusal's close). */
  #upgrading(socket: Duplex): void {
    const conn = connOf.get(socket);
    if (conn?.stage !== this || conn.closed) return;
    conn.readySince = this.#o.clock.now();
    this.#queue.update(conn);
  }

  /** Node's clientError: a failed handshake (HTTPS re-emits tlsClientError here) or a bad request. */
  clientError(conn: Conn, err: NodeJS.ErrnoException, socket: Socket): void {
    if (!conn.secure) {
      // TLS never finished: nothing HTTP was said, so nothing is written; destroy, never end()
      socket.destroy();
      conn.raw?.destroy();
      this.#report(conn, { ...tlsRefusal(err, socket), remoteAddress: conn.remoteAddress });
      return;
    }
    const refusal = httpRefusal(err);
    if (refusal === undefined || conn.reported || conn.closed) {
      // a reset or a broken pipe; or more garbage after an answer, whose grace deadline is running
      if (!conn.reported) socket.destroy();
      return;
    }
    const read = bytesRead(socket);
    if (refusal.reason === 'headers-timeout' && read >= 0 && read === conn.readMark) {
      // nothing sent since TLS or the last response: an idle connection, not a refused request
      this.#end(conn);
      return;
    }
    const requestId = randomUUID();
    this.#report(conn, { reason: refusal.reason, code: refusal.error.code, remoteAddress: conn.remoteAddress, requestId, ...(conn.facts !== undefined ? { facts: conn.facts } : {}) });
    answer(socket, refusal.error, requestId);
    conn.closeBy = this.#o.clock.now() + CLOSE_GRACE_MS;
    this.#queue.update(conn);
  }

  #report(conn: Conn, r: ConnectionRefusal): void {
    if (conn.reported) return;
    conn.reported = true;
    safely(() => this.#o.onRefused(r));
  }

  /** Destroys the connection once; false if it was already going. */
  #end(conn: Conn): boolean {
    if (conn.ending || conn.closed) return false;
    conn.ending = true;
    // the TLSSocket first (HTTP cleans up), then the raw one, which alone holds the descriptor
    // (during the handshake it is the only one known)
    conn.http?.destroy();
    conn.raw?.destroy();
    return true;
  }

  /** The unfinished handshake held longest (connections are kept in arrival order). */
  #oldestHandshake(): Conn | undefined {
    for (const conn of this.#conns) if (!conn.secure && !conn.ending) return conn;
    return undefined;
  }

  #onClose(conn: Conn): void {
    if (conn.closed) return;
    conn.closed = true;
    conn.ending = true;
    this.#conns.delete(conn);
    const held = (this.#perAddress.get(conn.key) ?? 1) - 1;
    if (held <= 0) this.#perAddress.delete(conn.key);
    else this.#perAddress.set(conn.key, held);
    for (const tag of conn.tags ?? NO_TAGS) {
      const set = this.#byTag.get(tag);
      set?.delete(conn);
      if (set?.size === 0) this.#byTag.delete(tag);
    }
    this.#queue.delete(conn);
    conn.raw = undefined;
    conn.http = undefined;
    if (!conn.secure && !conn.reported) {
      // Node reports every handshake that ends before TLS finishes (tlsClientError), a few ticks
      // after the raw socket closes; should it ever not, the connection is still reported once
      setImmediate(() => this.#report(conn, { reason: 'handshake-abandoned', code: 'ERR_TLS_HANDSHAKE_FAILED', remoteAddress: conn.remoteAddress, tlsReason: 'closed' }));
    }
  }

  #next(conn: Conn): number | undefined {
    if (conn.closed) return undefined;
    if (!conn.secure) return conn.ending ? undefined : conn.handshakeBy;
    let at = conn.facts?.notAfter ?? Infinity;
    if (conn.closeBy !== undefined) at = Math.min(at, conn.closeBy);
    if (conn.endBy !== undefined) at = Math.min(at, conn.endBy);
    if (!conn.upgraded && conn.inFlight === 0) at = Math.min(at, conn.readySince + this.#o.limits.idleTimeout);
    return at === Infinity ? undefined : at;
  }

  #due(conn: Conn, now: number): void {
    if (conn.closed) return;
    if (!conn.secure) {
      this.#report(conn, { reason: 'handshake-timeout', code: 'ERR_TLS_HANDSHAKE_TIMEOUT', remoteAddress: conn.remoteAddress });
      this.#end(conn);
      return;
    }
    const facts = conn.facts;
    if (facts?.notAfter !== undefined && now >= facts.notAfter) {
      if (this.#end(conn)) safely(() => this.#o.onExpired?.(facts));
      return;
    }
    // idle, or the grace after an answered error has passed
    this.#end(conn);
  }
}
