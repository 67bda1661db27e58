// Query across replicas and exports: CEF escaping, RFC 5424 over TCP and TLS to a real
// rsyslogd on loopback (imtcp, octet-counted framing; TLS through its gtls driver with a
// server certificate from our CA).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isGatehouseError } from '../../src/errors.js';
import { initCa, issueServerCertificate } from '../../src/pki/index.js';
import { connectSyslog, formatCef, formatSyslog, parseTime, queryAudit, type AuditHit } from '../../src/audit/index.js';
import { freePort, requireProgram, waitFor } from '../helpers/programs.js';
import { event, harness, type AuditHarness } from './helpers.js';

describe('audit query', () => {
  let h: AuditHarness;
  before(async () => {
    h = await harness();
    const a = await h.open({ replica: 'a' });
    const b = await h.open({ replica: 'b' });
    // interleaved in time across two replicas: even i on a, odd on b, one second apart
    for (let i = 0; i < 40; i++) {
      (i % 2 === 0 ? a : b).append(event(i, h.clock));
      h.clock.advance(1000);
    }
    await a.flush();
    await b.flush();
  });
  after(async () => {
    await h.close();
  });

  it('merges replicas by @timestamp and pages with an opaque cursor, each event exactly once', async () => {
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await queryAudit(h.store, {}, { limit: 7, ...(cursor !== undefined ? { cursor } : {}) });
      seen.push(...page.events.map((e) => String(e.event['gatehouse.request_id'])));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== undefined);
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => `req-${i}`));
    assert.equal(pages, 6);
  });

  it('filters on time, user, namespace, outcome, action and replica', async () => {
    const t0 = Date.UTC(2026, 0, 1);
    const r = await queryAudit(h.store, { since: t0 + 10_000, until: t0 + 20_000, namespace: 'payments', outcome: 'success' }, { limit: 100 });
    // i in [10, 20), even (payments), not divisible by 3 (success)
    assert.deepEqual(r.events.map((e) => e.event['gatehouse.request_id']), ['req-10', 'req-14', 'req-16']);
    const u = await queryAudit(h.store, { user: 'user-3', replica: 'b', action: 'http.*' }, { limit: 100 });
    assert.deepEqual(u.events.map((e) => e.event['gatehouse.request_id']), ['req-3', 'req-13', 'req-23', 'req-33']);
    assert.ok(u.events.every((e) => e.replica === 'b'));
  });

  it('parses ISO and relative times; refuses anything else and a forged cursor', async () => {
    const now = Date.UTC(2026, 0, 2);
    assert.equal(parseTime('15m', now), now - 15 * 60_000);
    assert.equal(parseTime('2026-01-01T00:00:10Z', now), Date.UTC(2026, 0, 1, 0, 0, 10));
    assert.throws(() => parseTime('yesterday', now), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
    // relative times are lib/duration's grammar, plus weeks
    assert.equal(parseTime(' 500ms ', now), now - 500);
    assert.equal(parseTime('7d', now), now - 7 * 86_400_000);
    assert.equal(parseTime('2w', now), now - 14 * 86_400_000);
    for (const bad of ['0m', '015m', '1.5h', '1h30m', 'w', '1msw', '-5m']) {
      assert.throws(() => parseTime(bad, now), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'), bad);
    }
    await assert.rejects(queryAudit(h.store, {}, { cursor: 'not-a-cursor' }), (e: unknown) => isGatehouseError(e, 'ERR_BAD_REQUEST'));
  });
});

const HIT: AuditHit = {
  replica: 'gw-1',
  seq: 42,
  hash: 'ab'.repeat(32),
  event: {
    '@timestamp': '2026-01-01T00:00:00.000Z',
    'event.action': 'http.request',
    'event.outcome': 'failure',
    'user.id': 'ali=ce',
    'url.path': '/a|b\\c',
    'event.reason': 'line1\nline2',
    'gatehouse.namespace': 'pay]ments',
    'gatehouse.rule': 'deny "all"',
    'gatehouse.request_id': 'req-1',
  },
};

describe('CEF and RFC 5424 formatting', () => {
  it('CEF escapes | and \\ in the header, \\ = and newlines in extensions', () => {
    const line = formatCef({ ...HIT, event: { ...HIT.event, 'event.action': 'pipe|back\\slash' } });
    assert.ok(line.startsWith('CEF:0|Gatehouse|Gatehouse|0.1.0|pipe\\|back\\\\slash|pipe\\|back\\\\slash failure|5|'), line);
    assert.match(line, / suser=ali\\=ce /);
    assert.match(line, / request=\/a\|b\\\\c /);
    assert.match(line, / reason=line1\\nline2 /);
    assert.match(line, /rt=1767225600000 /);
    assert.match(line, /externalId=gw-1\/42/);
  });

  it('RFC 5424: PRI, version, timestamp, host, app, msgid and escaped structured data', () => {
    const msg = formatSyslog(HIT);
    assert.ok(msg.startsWith('<84>1 2026-01-01T00:00:00.000Z gw-1 gatehouse - http.request [gatehouse@32473 action="http.request" outcome="failure" user="ali=ce" namespace="pay\\]ments" rule="deny \\"all\\""'), msg);
    assert.match(msg, / seq="42" hash="(ab){32}"\] \{/);
  });
});

describe('audit export: a collector that dies mid-export', () => {
  it('a collector killed while the socket buffer is full: the waiting send fails with ERR_AUDIT_EXPORT_FAILED instead of waiting for drain forever', { timeout: 15_000 }, async () => {
    let collector: net.Socket | undefined;
    // it accepts and never reads, so our buffers fill and every further send waits for drain
    const server = net.createServer((s) => {
      collector = s;
      s.pause();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const conn = await connectSyslog({ url: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}` });
      await waitFor('the collector to accept', async () => collector);
      // 32 MiB: far more than loopback's socket buffers hold, so the last sends cannot drain
      const chunk = 'x'.repeat(4 * 1024 * 1024);
      const sends = Array.from({ length: 8 }, () => conn.send(chunk));
      collector!.destroy(); // unread data: the kernel resets the connection
      const settled = await Promise.allSettled(sends);
      const last = settled.at(-1);
      assert.ok(last?.status === 'rejected', 'the last send cannot have drained');
      assert.ok(isGatehouseError(last.reason, 'ERR_AUDIT_EXPORT_FAILED'), String(last.reason));
      await assert.rejects(conn.send('after'), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_EXPORT_FAILED'));
      await assert.rejects(conn.close(), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_EXPORT_FAILED'));
    } finally {
      server.close();
    }
  });
});

describe('audit export to a real rsyslogd (TCP and TLS)', () => {
  const program = requireProgram('rsyslogd', 'rsyslog');
  let dir: string;
  let child: ChildProcess | undefined;
  let tcpPort = 0;
  let tlsPort = 0;
  let caPem = '';
  const out = (): string => (existsSync(path.join(dir, 'out.log')) ? readFileSync(path.join(dir, 'out.log'), 'utf8') : '');

  before(async () => {
    if (program.skip !== false) return;
    dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-rsyslog-'));
    const ca = await initCa({ dir: path.join(dir, 'ca'), trustDomain: 'gatehouse.test' });
    const server = await issueServerCertificate(ca, { hosts: ['127.0.0.1', 'localhost'] });
    caPem = ca.certPem;
    writeFileSync(path.join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(path.join(dir, 'cert.pem'), server.certPem);
    writeFileSync(path.join(dir, 'key.pem'), server.keyPem, { mode: 0o600 });
    tcpPort = await freePort();
    tlsPort = await freePort();
    const conf = `
global(workDirectory="${dir}" defaultNetstreamDriverCAFile="${dir}/ca.pem" defaultNetstreamDriverCertFile="${dir}/cert.pem" defaultNetstreamDriverKeyFile="${dir}/key.pem")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="${tcpPort}" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="${tlsPort}" ruleset="out" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="fields" type="string" string="%hostname%^^%app-name%^^%msgid%^^%pri%^^%structured-data%^^%msg%\\n")
ruleset(name="out") { action(type="omfile" file="${dir}/out.log" template="fields") }
`;
    writeFileSync(path.join(dir, 'rsyslog.conf'), conf);
    child = spawn(program.path, ['-n', '-f', path.join(dir, 'rsyslog.conf'), '-i', path.join(dir, 'rsyslog.pid')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    await waitFor('rsyslogd to listen', async () => {
      if (child?.exitCode !== null) throw new Error(`rsyslogd exited: ${stderr}`);
      const c = await connectSyslog({ url: `tcp://127.0.0.1:${tcpPort}`, timeoutMs: 500 }).catch(() => undefined);
      if (c === undefined) return undefined;
      await c.close();
      return true;
    });
  });
  after(async () => {
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      process.kill(child.pid, 'SIGTERM');
      await exited;
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('delivers octet-counted RFC 5424 messages over TCP, parsed field by field', async (t) => {
    if (program.skip !== false) return t.skip(program.skip);
    const conn = await connectSyslog({ url: `tcp://127.0.0.1:${tcpPort}` });
    for (let i = 0; i < 50; i++) await conn.send(formatSyslog({ ...HIT, seq: i, event: { ...HIT.event, 'gatehouse.request_id': `tcp-${i}`, 'event.reason': `multi\nline ${i}` } }));
    await conn.close();
    const lines = await waitFor('50 messages in rsyslog output', async () => {
      const l = out().split('\n').filter((x) => x.includes('"tcp-'));
      return l.length >= 50 ? l : undefined;
    });
    assert.equal(lines.length, 50, 'one record per message: without octet counting (no LF is sent) rsyslog would see one run-on message');
    const [host, app, msgid, pri, sd, msg] = lines[0]!.split('^^');
    assert.deepEqual([host, app, msgid, pri], ['gw-1', 'gatehouse', 'http.request', '84']);
    assert.match(sd!, /^\[gatehouse@32473 action="http.request" outcome="failure" user="ali=ce"/);
    assert.match(msg!, /"gatehouse.request_id":"tcp-0"/);
  });

  it('delivers over TLS to rsyslog gtls, trusting its certificate through --ca; refuses an untrusted one', async (t) => {
    if (program.skip !== false) return t.skip(program.skip);
    const conn = await connectSyslog({ url: `tls://127.0.0.1:${tlsPort}`, ca: caPem });
    await conn.send(formatSyslog({ ...HIT, event: { ...HIT.event, 'gatehouse.request_id': 'tls-1' } }));
    await conn.close();
    await waitFor('the TLS message', async () => (out().includes('"tls-1"') ? true : undefined));
    await assert.rejects(connectSyslog({ url: `tls://127.0.0.1:${tlsPort}` }), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_EXPORT_FAILED'));
    await assert.rejects(connectSyslog({ url: `tcp://127.0.0.1:${await freePort()}`, timeoutMs: 1000 }), (e: unknown) => isGatehouseError(e, 'ERR_AUDIT_EXPORT_FAILED'));
  });
});
