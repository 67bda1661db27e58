// `gatehouse serve` as a separate process, driven as an operator would: a 100 MB upload
// streams through with the gateway's memory flat, and `policy apply` / `cert revoke` reach
// the running gateway's locked embedded store through its local operator API.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { promisify } from 'node:util';
import { makeFixture, disposeFixture, call, PAYMENTS_POLICY, type Fixture } from './fixture.js';
import { freePort, waitFor } from '../helpers/programs.js';

const run = promisify(execFile);
const BIN = path.join(import.meta.dirname, '../../bin/gatehouse.js');
const MB = 1024 * 1024;

/** Peak and current resident memory of a process, in bytes (Linux /proc). */
function memory(pid: number): { hwm: number; rss: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) * 1024;
  return { hwm: kb('VmHWM'), rss: kb('VmRSS') };
}

describe('gatehouse serve (separate process)', () => {
  let f: Fixture;
  let child: ChildProcess;
  let port: number;
  let output = '';

  before(async () => {
    f = await makeFixture();
    port = await freePort();
    const adminPort = await freePort();
    const config = f.configText.replace('service: { address: 127.0.0.1, port: 0 }', `service: { address: 127.0.0.1, port: ${port} }`).replace('admin: { address: 127.0.0.1, port: 0 }', `admin: { address: 127.0.0.1, port: ${adminPort} }`);
    await writeFile(f.configFile, config);
    child = spawn(process.execPath, [BIN, 'serve', '--config', f.configFile, '--log-level', 'warn'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    await waitFor('gateway ready', async () => ((await fetch(`http://127.0.0.1:${adminPort}/readyz`).catch(() => undefined))?.ok ? true : undefined), 30_000);
  });

  after(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await disposeFixture(f);
  });

  it('streams a 100 MB upload through without buffering it', async () => {
    const pid = child.pid!;
    // warm up so one-off allocations (TLS, JIT) are not counted against the upload
    for (let i = 0; i < 5; i++) assert.equal((await call(port, f.ca, { cert: f.certs.web, method: 'POST', path: '/upload', body: Buffer.alloc(MB) })).status, 200);
    const before = memory(pid);
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const total = 100 * MB;
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = https.request(
        { host: '127.0.0.1', port, method: 'POST', path: '/upload', ca: f.ca.certPem, cert: f.certs.web.certPem, key: f.certs.web.keyPem, headers: { host: 'api.payments', 'content-type': 'application/octet-stream', 'content-length': String(total) }, agent: false },
        (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      let sent = 0;
      const pump = (): void => {
        while (sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(res.status, 200, res.body);
    assert.equal((JSON.parse(res.body) as { bytes: number }).bytes, total, 'upstream got every byte');
    const afterUpload = memory(pid);
    const growth = afterUpload.hwm - before.hwm;
    console.log(JSON.stringify({ test: 'upload-100MB', rssBeforeMB: +(before.rss / MB).toFixed(1), peakBeforeMB: +(before.hwm / MB).toFixed(1), peakAfterMB: +(afterUpload.hwm / MB).toFixed(1), peakGrowthMB: +(growth / MB).toFixed(1) }));
    // Buffering would grow the peak by at least the 100 MB body; streaming leaves GC slack only
    // (14 MB on a quiet machine, up to ~45 MB under load).
    assert.ok(growth < 64 * MB, `gateway peak memory grew by ${(growth / MB).toFixed(1)} MB for a 100 MB upload`);
  });

  it('policy apply reaches the running gateway and changes the next verdict', async () => {
    const policyFile = path.join(f.dir, 'policies', 'payments.yaml');
    const post = () => call(port, f.ca, { cert: f.certs.web, method: 'POST', path: '/v1/charges', body: '{}' });
    assert.equal((await post()).status, 200);
    await writeFile(policyFile, PAYMENTS_POLICY.replace('methods: [POST]', 'methods: [PUT]'));
    const applied = await run(process.execPath, [BIN, 'policy', 'apply', '--config', f.configFile]);
    assert.equal((JSON.parse(applied.stdout) as { via: string }).via, 'gateway');
    await waitFor('new verdict', async () => ((await post()).status === 403 ? true : undefined), 5_000, 20);
    await writeFile(policyFile, PAYMENTS_POLICY);
    await run(process.execPath, [BIN, 'policy', 'apply', '--config', f.configFile]);
    await waitFor('old verdict', async () => ((await post()).status === 200 ? true : undefined), 5_000, 20);
  });

  it('cert revoke reaches the running gateway and the certificate is refused at once', async () => {
    assert.equal((await call(port, f.ca, { cert: f.certs.revoked, path: '/v1/charges/1' })).status, 200);
    const out = await run(process.execPath, [BIN, 'cert', 'revoke', f.certs.revoked.serial, '--not-after', f.certs.revoked.notAfter.toISOString(), '--config', f.configFile]);
    assert.equal((JSON.parse(out.stdout) as { via: string }).via, 'gateway');
    await assert.rejects(call(port, f.ca, { cert: f.certs.revoked, path: '/v1/charges/1' }));
    assert.equal((await call(port, f.ca, { cert: f.certs.web, path: '/v1/charges/1' })).status, 200);
  });

  it('refuses the local operator API without the token', async () => {
    const adminPort = Number(/admin: \{ address: 127\.0\.0\.1, port: (\d+) \}/.exec(readFileSync(f.configFile, 'utf8'))?.[1]);
    const res = await fetch(`http://127.0.0.1:${adminPort}/admin/v1/ops/cert.revoke`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer nope' }, body: '{"serial":"ab"}' });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'ERR_ADMIN_UNAUTHORIZED');
    assert.doesNotMatch(output, /Bearer|BEGIN (RSA )?PRIVATE KEY/);
  });
});
