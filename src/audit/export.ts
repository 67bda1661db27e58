// Exports for SIEMs: JSON lines, ArcSight CEF, and RFC 5424 syslog framed by octet counting
// (RFC 6587 §3.4.1) over TCP or TLS.
import net from 'node:net';
import tls from 'node:tls';
import { GatehouseError } from '../errors.js';
import type { AuditEvent } from '../contracts/audit.js';
import type { AuditHit } from './query.js';

const VERSION = '0.1.0';

/** The line `audit query` prints: the event plus where it sits in its chain. */
export function jsonLine(h: AuditHit): string {
  return JSON.stringify({ ...h.event, 'gatehouse.audit.replica': h.replica, 'gatehouse.audit.seq': h.seq });
}

function severityOf(e: AuditEvent): number {
  const s = e['event.severity'];
  if (typeof s === 'number' && s >= 0 && s <= 10) return Math.round(s);
  if (e['event.kind'] === 'alert') return 9;
  return e['event.outcome'] === 'failure' ? 5 : 3;
}

// CEF header fields escape | and \ ; extension values escape \ and = and encode newlines.
const cefHeader = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]/g, ' ');
const cefValue = (v: string): string => v.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r/g, '\\r').replace(/\n/g, '\\n');

// CEF's custom fields: each carries its value and a label naming it (both only when the event has it).
const CEF_CUSTOM = [
  ['cs1', 'namespace', 'gatehouse.namespace'],
  ['cs2', 'service', 'gatehouse.service'],
  ['cs3', 'subject', 'gatehouse.subject'],
  ['cs4', 'rule', 'gatehouse.rule'],
  ['cs5', 'requestId', 'gatehouse.request_id'],
  ['cs6', 'errorCode', 'gatehouse.error_code'],
  ['cn1', 'status', 'http.response.status_code'],
] as const;

/** One CEF:0 line (ArcSight "Implementing ArcSight CEF", rev. 25). */
export function formatCef(h: AuditHit): string {
  const e = h.event;
  const ext: [string, string | number | undefined][] = [
    ['rt', Date.parse(e['@timestamp'])],
    ['act', e['event.action']],
    ['outcome', e['event.outcome']],
    ['suser', e['user.id']],
    ['src', e['source.ip']],
    ['requestMethod', e['http.request.method']],
    ['request', e['url.path']],
    ['reason', e['event.reason']],
    ['externalId', `${h.replica}/${h.seq}`],
    ['dvchost', h.replica],
    ...CEF_CUSTOM.flatMap(([field, label, value]): [string, string | number | undefined][] => [
      [`${field}Label`, e[value] !== undefined ? label : undefined],
      [field, e[value]],
    ]),
  ];
  const extension = ext
    .filter((kv): kv is [string, string | number] => kv[1] !== undefined)
    .map(([k, v]) => `${k}=${cefValue(String(v))}`)
    .join(' ');
  const head = ['CEF:0', 'Gatehouse', 'Gatehouse', VERSION, e['event.action'], `${e['event.action']} ${e['event.outcome']}`, String(severityOf(e))].map((v, i) => (i === 0 ? v : cefHeader(v)));
  return `${head.join('|')}|${extension}`;
}

// RFC 5424 §6.3.3: inside PARAM-VALUE, '"', '\' and ']' are escaped with '\'.
const sdValue = (v: string): string => v.replace(/[\\"\]]/g, (c) => `\\${c}`);
// PRINTUSASCII only, no spaces, bounded length (HOSTNAME 255, MSGID 32).
const printable = (v: string, max: number): string => (v.replace(/[^\x21-\x7e]/g, '_').slice(0, max) || '-');

/** Private enterprise number 32473 is IANA's example number (RFC 5612): replace with your own if your SIEM keys on it. */
export const SD_ID = 'gatehouse@32473';
const FACILITY_AUTHPRIV = 10;

function syslogSeverity(e: AuditEvent): number {
  if (e['event.kind'] === 'alert') return 1; // alert
  return e['event.outcome'] === 'failure' ? 4 : 6; // warning : informational
}

/** One RFC 5424 message (without framing); structured data carries the gatehouse fields, MSG the whole event as JSON. */
export function formatSyslog(h: AuditHit): string {
  const e = h.event;
  const params: [string, unknown][] = [
    ['action', e['event.action']],
    ['outcome', e['event.outcome']],
    ['user', e['user.id']],
    ['subject', e['gatehouse.subject']],
    ['namespace', e['gatehouse.namespace']],
    ['service', e['gatehouse.service']],
    ['rule', e['gatehouse.rule']],
    ['requestId', e['gatehouse.request_id']],
    ['sourceIp', e['source.ip']],
    ['method', e['http.request.method']],
    ['path', e['url.path']],
    ['status', e['http.response.status_code']],
    ['errorCode', e['gatehouse.error_code']],
    ['reasons', Array.isArray(e['gatehouse.reasons']) ? e['gatehouse.reasons'].join(',') : undefined],
    ['replica', h.replica],
    ['seq', h.seq],
    ['hash', h.hash],
  ];
  const sd = `[${SD_ID}${params
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${sdValue(String(v))}"`)
    .join('')}]`;
  const pri = FACILITY_AUTHPRIV * 8 + syslogSeverity(e);
  const ts = new Date(Date.parse(e['@timestamp'])).toISOString();
  return `<${pri}>1 ${ts} ${printable(h.replica, 255)} gatehouse - ${printable(e['event.action'], 32)} ${sd} ${JSON.stringify(e)}`;
}

/** RFC 6587 octet counting: "<length in bytes> <message>". */
export function octetFrame(msg: string): Buffer {
  const body = Buffer.from(msg, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export interface SyslogTarget {
  /** tcp://host:port or tls://host:port */
  url: string;
  /** PEM of the CA(s) that sign the collector's certificate (tls only; default: the system's). */
  ca?: string;
  timeoutMs?: number;
}

export interface SyslogConnection {
  send(msg: string): Promise<void>;
  close(): Promise<void>;
}

/** Connects to a collector; every failure to connect is ERR_AUDIT_EXPORT_FAILED. */
export async function connectSyslog(target: SyslogTarget): Promise<SyslogConnection> {
  let u: URL;
  try {
    u = new URL(target.url);
  } catch (cause) {
    throw new GatehouseError('ERR_USAGE', `--to ${target.url}: expected tcp://host:port or tls://host:port`, { cause });
  }
  if ((u.protocol !== 'tcp:' && u.protocol !== 'tls:') || u.port === '' || u.hostname === '') throw new GatehouseError('ERR_USAGE', `--to ${target.url}: expected tcp://host:port or tls://host:port`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port);
  const timeoutMs = target.timeoutMs ?? 10_000;
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const fail = (err: Error): void => {
      s.destroy();
      reject(new GatehouseError('ERR_AUDIT_EXPORT_FAILED', `${target.url}: ${err.message}`, { cause: err }));
    };
    const s: net.Socket =
      u.protocol === 'tls:'
        ? tls.connect({ host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}), ...(target.ca !== undefined ? { ca: target.ca } : {}) }, () => resolve(s))
        : net.connect({ host, port }, () => resolve(s));
    s.setTimeout(timeoutMs, () => fail(new Error('timed out')));
    s.once('error', fail);
  });
  socket.setTimeout(0);
  let failure: Error | undefined;
  let closing = false;
  socket.on('error', (err) => {
    failure ??= err;
  });
  socket.on('close', () => {
    if (!closing) failure ??= new Error('the collector closed the connection');
  });
  const failed = (): GatehouseError => new GatehouseError('ERR_AUDIT_EXPORT_FAILED', `${target.url}: ${failure?.message ?? 'connection lost'}`, ...(failure !== undefined ? [{ cause: failure }] : []));
  /**
   * Resolves on `done`, rejects when the connection fails or closes first, or when nothing moves
   * for timeoutMs: a collector that died while our buffer was full must not hang the export.
   */
  const until = (done: 'drain' | 'finish'): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const settle = (err?: GatehouseError): void => {
        socket.off(done, onDone).off('error', onEnd).off('close', onEnd).off('timeout', onStall);
        socket.setTimeout(0);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onDone = (): void => settle();
      const onEnd = (): void => settle(failed());
      const onStall = (): void => {
        failure ??= new Error(`no progress for ${timeoutMs} ms`);
        socket.destroy();
        settle(failed());
      };
      if (socket.destroyed) return settle(failed());
      socket.once(done, onDone).once('error', onEnd).once('close', onEnd).once('timeout', onStall);
      socket.setTimeout(timeoutMs);
    });
  return {
    async send(msg) {
      if (failure !== undefined || socket.destroyed) throw failed();
      if (!socket.write(octetFrame(msg))) await until('drain');
    },
    async close() {
      closing = true;
      let err = failure !== undefined || socket.destroyed ? failed() : undefined;
      if (err === undefined) {
        // what is still buffered must reach the collector, or close() says it did not
        const finished = until('finish');
        socket.end();
        err = await finished.then(
          () => undefined,
          (e: unknown) => e as GatehouseError,
        );
      }
      socket.destroy();
      if (err !== undefined) throw err;
    },
  };
}
