// Shared by the PKI tests: temp folders, a CA, and a real TLS handshake judged by the server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { isGatehouseError, type ErrorCode } from '../../src/errors.js';

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), `gh-pki-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Asserts fn rejects with a GatehouseError of this code. */
export async function rejectsWith(fn: () => Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.ok(isGatehouseError(err), `expected a GatehouseError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

export function throwsWith(fn: () => unknown, code: ErrorCode): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isGatehouseError(err), `expected a GatehouseError ${code}, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

export type HandshakeResult = { ok: true; peer: tls.DetailedPeerCertificate } | { ok: false; reason: string };

async function handshakeOnce(
  server: tls.SecureContextOptions & { crl?: string },
  client: { cert: string; key: string; ca: string },
  rejectUnauthorized: boolean,
): Promise<{ accepted: boolean; authorizationError?: string; peer?: tls.DetailedPeerCertificate }> {
  const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized });
  const verdict = new Promise<{ accepted: boolean; authorizationError?: string; peer?: tls.DetailedPeerCertificate }>((resolve) => {
    srv.on('secureConnection', (socket) => {
      const reason = socket.authorizationError;
      resolve({ accepted: socket.authorized, peer: socket.getPeerCertificate(true), ...(reason === undefined ? {} : { authorizationError: String(reason) }) });
      socket.end();
    });
    srv.on('tlsClientError', () => resolve({ accepted: false }));
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  const sock = tls.connect({ host: '127.0.0.1', port, ca: [client.ca], cert: client.cert, key: client.key });
  sock.on('error', () => undefined);
  try {
    const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('handshake timed out')), 10_000).unref());
    return await Promise.race([verdict, timeout]);
  } finally {
    sock.destroy();
    await new Promise<void>((resolve) => srv.close(() => resolve()));
  }
}

/**
 * One mTLS handshake against a server that requires a client certificate (requestCert: true,
 * rejectUnauthorized: true). The server decides: with TLS 1.3 the client learns of a refusal
 * only after its own handshake has finished. A refused handshake is repeated with
 * rejectUnauthorized: false only to learn OpenSSL's reason (CERT_HAS_EXPIRED, ...), since a
 * rejecting Node server just drops the connection.
 */
export async function mtlsHandshake(server: tls.SecureContextOptions & { crl?: string }, client: { cert: string; key: string; ca: string }): Promise<HandshakeResult> {
  const strict = await handshakeOnce(server, client, true);
  if (strict.accepted && strict.peer !== undefined) return { ok: true, peer: strict.peer };
  const probe = await handshakeOnce(server, client, false);
  assert.ok(!probe.accepted, 'the strict server refused a certificate the probe accepted');
  return { ok: false, reason: probe.authorizationError ?? 'handshake failed' };
}
