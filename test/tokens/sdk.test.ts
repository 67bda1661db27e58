// The SDK verifier against real local servers: the JWKS over HTTPS with mutual TLS (Gatehouse's
// CA, a client certificate), and an upstream that checks cnf against the certificate on the
// very connection the token arrived on.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { initCa, issueCertificate, issueServerCertificate, type IssuedCertificate } from '../../src/pki/index.js';
import { bearerToken, certThumbprint, createVerifier, isTokenVerificationError, TokenVerificationError, type VerifierOptions } from '../../src/sdk/index.js';
import { TOKEN_LIMITS, type MintInput, type TokenService } from '../../src/tokens/index.js';
import { AUDIENCE, CALLER, ISSUER, harness, type Harness } from './helpers.js';

function listen(server: http.Server | https.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}
function close(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

describe('SDK verifier', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gatehouse-sdk-'));
  let h: Harness;
  let t: TokenService;
  let caPem: string;
  let serverCert: IssuedCertificate;
  let clientA: IssuedCertificate;
  let clientB: IssuedCertificate;
  let gateway: https.Server;
  let jwksUrl: string;
  let jwksHits = 0;
  let gatewayDown = false;

  const input = (cert: IssuedCertificate, patch: Partial<MintInput> = {}): MintInput => ({
    subject: CALLER, audience: AUDIENCE, namespace: 'payments', roles: ['reader'], certThumbprint: certThumbprint(cert.certPem), ...patch,
  });
  const verifier = (extra: Partial<VerifierOptions> = {}): ReturnType<typeof createVerifier> =>
    createVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, tls: { ca: caPem, cert: clientA.certPem, key: clientA.keyPem }, now: () => h.clock.now(), ...extra });

  before(async () => {
    h = await harness();
    t = await h.open();
    const ca = await initCa({ dir, trustDomain: 'gatehouse.test' });
    caPem = ca.certPem;
    serverCert = await issueServerCertificate(ca, { hosts: ['127.0.0.1'] });
    clientA = await issueCertificate(ca, { namespace: 'shop', service: 'web' });
    clientB = await issueCertificate(ca, { namespace: 'shop', service: 'other' });
    // Gatehouse's mTLS listener, serving the JWKS.
    gateway = https.createServer({ key: serverCert.keyPem, cert: serverCert.certPem, ca: caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      jwksHits++;
      if (gatewayDown || req.url !== '/.well-known/jwks.json') {
        res.writeHead(gatewayDown ? 503 : 404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': t.jwksCacheControl });
      res.end(JSON.stringify(t.jwks()));
    });
    jwksUrl = `https://127.0.0.1:${await listen(gateway)}/.well-known/jwks.json`;
  });
  after(async () => {
    await close(gateway);
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches the JWKS over mutual TLS once and verifies tokens from its cache', async () => {
    const v = verifier();
    const before = jwksHits;
    for (let i = 0; i < 5; i++) {
      const m = await t.mint(input(clientA, { subject: `svc-${i}` }));
      const claims = await v.verify(m.token, { clientCertificate: clientA.certPem });
      assert.equal(claims.sub, `svc-${i}`);
      assert.deepEqual(claims.roles, ['reader']);
    }
    assert.equal(jwksHits - before, 1);
    assert.equal(v.jwksFetches, 1);
  });

  it('cannot fetch the JWKS without a client certificate, or without trusting the CA', async () => {
    const m = await t.mint(input(clientA));
    for (const tls of [{ ca: caPem }, { cert: clientA.certPem, key: clientA.keyPem }]) {
      const v = createVerifier({ jwksUrl, issuer: ISSUER, audience: AUDIENCE, tls, now: () => h.clock.now() });
      await assert.rejects(v.verify(m.token, { clientCertificate: clientA.certPem }), (err: unknown) => isTokenVerificationError(err, 'ERR_TOKEN_JWKS_UNAVAILABLE') && err.status === 503 && err.retryable);
    }
  });

  it('refetches when Cache-Control max-age has passed', async () => {
    const v = verifier();
    const m = await t.mint(input(clientA));
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    await h.advance(299_000);
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    assert.equal(v.jwksFetches, 1);
    await h.advance(1_000);
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    assert.equal(v.jwksFetches, 2);
  });

  it('refetches for an unknown kid at most once per interval', async () => {
    const v = verifier();
    const m = await t.mint(input(clientA));
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    const [, p, s] = m.token.split('.');
    const forged = (): string => `${Buffer.from(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: randomBytes(16).toString('base64url') })).toString('base64url')}.${p}.${s}`;
    for (let i = 0; i < 20; i++) await assert.rejects(v.verify(forged(), { clientCertificate: clientA.certPem }), (e: unknown) => isTokenVerificationError(e, 'ERR_TOKEN_UNKNOWN_KEY'));
    assert.equal(v.jwksFetches, 1, 'the set was fetched just now: no refetch yet');
    await h.advance(30_000);
    for (let i = 0; i < 20; i++) await assert.rejects(v.verify(forged(), { clientCertificate: clientA.certPem }), (e: unknown) => isTokenVerificationError(e, 'ERR_TOKEN_UNKNOWN_KEY'));
    assert.equal(v.jwksFetches, 2, 'one refetch for twenty unknown kids');
  });

  it('sees a rotated key before it signs, without an unknown-kid fetch', async () => {
    const v = verifier();
    await v.refresh();
    const rotated = await t.rotate();
    // Within one max-age the verifier has refetched; the key activates a prepublish period after creation.
    await h.advance(TOKEN_LIMITS.prepublishMs);
    const m = await t.mint(input(clientA, { subject: 'after-rotation' }));
    assert.equal(m.kid, rotated.kid);
    const fetches = v.jwksFetches;
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    assert.equal(v.jwksFetches, fetches + 1, 'the stale set was refetched on schedule');
  });

  it('keeps verifying on the last good JWKS while Gatehouse is unreachable, for a while', async () => {
    const v = verifier();
    const m = await t.mint(input(clientA, { ttlSeconds: 900 }));
    await v.verify(m.token, { clientCertificate: clientA.certPem });
    gatewayDown = true;
    try {
      await h.advance(400_000);
      await v.verify(m.token, { clientCertificate: clientA.certPem });
      await h.advance(3_600_000);
      await assert.rejects(v.verify(m.token, { clientCertificate: clientA.certPem }), (e: unknown) => isTokenVerificationError(e, 'ERR_TOKEN_JWKS_UNAVAILABLE'));
    } finally {
      gatewayDown = false;
    }
  });

  it('checks cnf against the certificate on the connection the token came in on', async () => {
    const v = verifier({ requireBinding: true });
    const upstream = https.createServer({ key: serverCert.keyPem, cert: serverCert.certPem, ca: caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      v.verify(bearerToken(req.headers.authorization), { clientCertificate: peer.raw }).then(
        (claims) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ sub: claims.sub })),
        (err: unknown) => res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ code: err instanceof TokenVerificationError ? err.code : 'ERR_INTERNAL' })),
      );
    });
    const port = await listen(upstream);
    const call = (cert: IssuedCertificate, token: string): Promise<{ status: number; body: string }> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port, path: '/', ca: caPem, cert: cert.certPem, key: cert.keyPem, agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const boundToA = (await t.mint(input(clientA, { subject: 'bound-a' }))).token;
      const ok = await call(clientA, boundToA);
      assert.equal(ok.status, 200);
      assert.deepEqual(JSON.parse(ok.body), { sub: 'bound-a' });
      // The same token replayed by another service over its own certificate.
      const stolen = await call(clientB, boundToA);
      assert.equal(stolen.status, 401);
      assert.deepEqual(JSON.parse(stolen.body), { code: 'ERR_TOKEN_BINDING' });
      const { certThumbprint: _none, ...unbound } = input(clientA, { subject: 'unbound' });
      const plain = await call(clientA, (await t.mint(unbound)).token);
      assert.deepEqual(JSON.parse(plain.body), { code: 'ERR_TOKEN_BINDING' });
    } finally {
      await close(upstream);
    }
  });

  it('works with the global fetch and a plain HTTP JWKS endpoint', async () => {
    const plain = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': t.jwksCacheControl }).end(JSON.stringify(t.jwks()));
    });
    const port = await listen(plain);
    try {
      const v = createVerifier({ jwksUrl: `http://127.0.0.1:${port}/.well-known/jwks.json`, issuer: ISSUER, audience: AUDIENCE, fetch: globalThis.fetch, now: () => h.clock.now() });
      const m = await t.mint(input(clientA, { subject: 'via-fetch' }));
      assert.equal((await v.verify(m.token, { certThumbprint: certThumbprint(clientA.certPem) })).sub, 'via-fetch');
    } finally {
      await close(plain);
    }
  });

  it('bearerToken takes only a Bearer header', () => {
    assert.equal(bearerToken('Bearer a.b.c'), 'a.b.c');
    for (const bad of [undefined, '', 'Basic abc', 'Bearer', 'Bearer a b']) {
      assert.throws(() => bearerToken(bad), (e: unknown) => isTokenVerificationError(e, 'ERR_TOKEN_INVALID'));
    }
  });

  it('refuses a JWKS that holds no Ed25519 key', async () => {
    const bad = http.createServer((_req, res) => res.writeHead(200).end(JSON.stringify({ keys: [{ kty: 'RSA', kid: 'x', n: 'AQAB', e: 'AQAB' }, { kty: 'oct', k: 'c2VjcmV0' }] })));
    const port = await listen(bad);
    try {
      const v = createVerifier({ jwksUrl: `http://127.0.0.1:${port}/`, issuer: ISSUER, audience: AUDIENCE, now: () => h.clock.now() });
      await assert.rejects(v.refresh(), (e: unknown) => isTokenVerificationError(e, 'ERR_TOKEN_JWKS_UNAVAILABLE'));
    } finally {
      await close(bad);
    }
  });
});
