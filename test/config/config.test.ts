import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { parseConfig, loadConfig } from '../../src/config/index.js';
import { GatehouseError } from '../../src/errors.js';

function invalid(text: string, env: Record<string, string> = {}): string {
  try {
    parseConfig(text, '/etc/gatehouse/gatehouse.yaml', env);
  } catch (err) {
    assert.ok(err instanceof GatehouseError);
    assert.equal(err.code, 'ERR_CONFIG_INVALID');
    return err.message;
  }
  assert.fail('config was accepted');
}

describe('config', () => {
  it('fills defaults and resolves paths against the file', () => {
    const c = parseConfig('trustDomain: example.org\n', '/etc/gatehouse/gatehouse.yaml');
    assert.equal(c.trustDomain, 'example.org');
    assert.deepEqual(c.store, { kind: 'embedded', path: '/etc/gatehouse/data' });
    assert.deepEqual(c.bus, { kind: 'memory' });
    assert.deepEqual(c.listeners.admin, { address: '127.0.0.1', port: 9090, connections: { handshakeTimeout: 10_000, headersTimeout: 15_000, idleTimeout: 30_000, maxPerAddress: 256 } });
    assert.equal(c.pki.dir, '/etc/gatehouse/certs');
    assert.deepEqual(c.routes, []);
  });

  it('accepts the documented contract', () => {
    const c = parseConfig(
      [
        'trustDomain: example.org',
        'store: { kind: etcd, endpoints: ["http://127.0.0.1:2379", "http://127.0.0.1:22379"] }',
        'bus:   { kind: nats, servers: ["nats://127.0.0.1:4222"] }',
        'pki:   { dir: ./certs }',
        'policies: { dir: ./policies }',
        'listeners:',
        '  service: { address: 127.0.0.1, port: 9443 }',
        '  human:   { address: 127.0.0.1, port: 8443 }',
        '  admin:   { address: 127.0.0.1, port: 9090 }',
        'routes:',
        '  - { host: api.payments, namespace: payments, service: api, upstream: "https://127.0.0.1:7001" }',
      ].join('\n'),
      '/srv/gh.yaml',
    );
    assert.equal(c.store.kind, 'etcd');
    assert.equal(c.bus.kind, 'nats');
    assert.equal(c.listeners.service?.port, 9443);
    assert.equal(c.routes[0]?.upstream, 'https://127.0.0.1:7001');
  });

  it('refuses an unknown key, naming it and its line', () => {
    const msg = invalid('trustDomain: example.org\nstore: { kind: embedded, path: ./d, colour: red }\n');
    assert.match(msg, /gatehouse\.yaml:2: store\.colour unknown key/);
  });

  it('refuses a wrong type, naming the key', () => {
    const msg = invalid('listeners:\n  admin: { port: "ninety" }\n');
    assert.match(msg, /listeners\.admin\.port must be an integer/);
  });

  it('refuses an unknown store kind and a missing required key', () => {
    assert.match(invalid('store: { kind: redis }\n'), /store\.kind must be one of embedded, etcd/);
    assert.match(invalid('store: { kind: etcd }\n'), /store\.endpoints is required/);
    assert.match(invalid('store: { kind: etcd, endpoints: [] }\n'), /store\.endpoints must have at least 1/);
  });

  it('reports every problem at once', () => {
    const msg = invalid('nope: 1\nbus: { kind: nats, servers: ["bad url"] }\n');
    assert.match(msg, /nope unknown key/);
    assert.match(msg, /bus\.servers\[0\] must be a server/);
  });

  it('takes the embedded store map size in bytes and refuses anything else, naming its line', () => {
    const c = parseConfig('store: { kind: embedded, path: ./d, mapSize: 34359738368 }\n', '/x/g.yaml');
    assert.deepEqual(c.store, { kind: 'embedded', path: '/x/d', mapSize: 34_359_738_368 });
    assert.match(invalid('trustDomain: example.org\nstore: { kind: embedded, path: ./d, mapSize: 16GiB }\n'), /gatehouse\.yaml:2: store\.mapSize must be an integer/);
    assert.match(invalid('store: { kind: embedded, path: ./d, mapSize: 4096 }\n'), /store\.mapSize must be at least 1048576/);
    assert.match(invalid('store: { kind: etcd, endpoints: ["http://127.0.0.1:2379"], mapSize: 1048576 }\n'), /store\.mapSize unknown key/);
  });

  it('refuses YAML syntax errors and duplicate keys', () => {
    assert.match(invalid('store: [\n'), /gatehouse\.yaml/);
    assert.match(invalid('trustDomain: a.org\ntrustDomain: b.org\n'), /unique|duplicate/i);
  });

  it('applies GATEHOUSE_* overrides and validates them too', () => {
    const c = parseConfig('store: { kind: embedded, path: ./d }\n', '/x/g.yaml', {
      GATEHOUSE_STORE_KIND: 'etcd',
      GATEHOUSE_STORE_ENDPOINTS: 'http://127.0.0.1:2379, http://127.0.0.1:2380',
      GATEHOUSE_ADMIN_PORT: '9191',
    });
    assert.deepEqual(c.store, { kind: 'etcd', endpoints: ['http://127.0.0.1:2379', 'http://127.0.0.1:2380'] });
    assert.equal(c.listeners.admin.port, 9191);
    // a kind switch without the new kind's keys is refused by name
    assert.match(invalid('store: { kind: embedded, path: ./d }\n', { GATEHOUSE_STORE_KIND: 'etcd' }), /store\.endpoints is required/);
    assert.match(invalid('{}\n', { GATEHOUSE_ADMIN_PORT: 'abc' }), /listeners\.admin\.port must be an integer/);
  });

  it('parses token durations and refuses a ttl above 900 s', () => {
    const c = parseConfig('tokens: { ttl: 2m, rotateAfter: 12h, kekFile: ./k }\n', '/etc/gh/g.yaml');
    assert.deepEqual(c.tokens, { ttl: 120_000, rotateAfter: 43_200_000, kekFile: '/etc/gh/k' });
    assert.deepEqual(parseConfig('{}', '/x.yaml').tokens, { ttl: 300_000, rotateAfter: 86_400_000 });
    assert.match(invalid('tokens: { ttl: 16m }\n'), /tokens\.ttl must be at most 900s/);
    assert.match(invalid('tokens: { ttl: soon }\n'), /tokens\.ttl must be a duration/);
  });

  it('refuses passAuthorization without another token header', () => {
    const route = '{ host: a.b, namespace: ns, service: svc, upstream: "http://127.0.0.1:1", passAuthorization: true }';
    assert.match(invalid(`routes:\n  - ${route}\n`), /routes\[0\]\.tokenHeader must name another header/);
    const ok = parseConfig(`routes:\n  - ${route.replace('}', ', tokenHeader: x-gatehouse-token }')}\n`, '/x.yaml');
    assert.equal(ok.routes[0]?.tokenHeader, 'x-gatehouse-token');
  });

  it('reads durations in the one grammar (and a bare number as seconds), naming the line of a bad one', () => {
    const c = parseConfig('sessions: { idleTimeout: 90s, absoluteTimeout: 1d }\nlogin: { lockout: { window: 600 } }\n', '/x.yaml');
    assert.equal(c.sessions.idleTimeout, 90_000);
    assert.equal(c.sessions.absoluteTimeout, 86_400_000);
    assert.equal(c.login.lockout.window, 600_000);
    assert.equal(c.login.lockout.duration, 900_000);
    for (const bad of ['1.5h', '1h30m', '15 m', '0s', 'soon']) {
      assert.match(invalid(`trustDomain: a.org\nsessions: { idleTimeout: "${bad}" }\n`), /gatehouse\.yaml:2: sessions\.idleTimeout must be a duration like 300s, 15m or 24h/, bad);
    }
    assert.match(invalid('sessions: { idleTimeout: 10s }\n'), /sessions\.idleTimeout must be at least 60s/);
  });

  it('listener connection limits and route header policy have defaults and are checked', () => {
    const c = parseConfig('listeners:\n  service: { port: 9443, connections: { idleTimeout: 5s, maxPerAddress: 8 } }\nroutes:\n  - { host: a.b, namespace: ns, service: svc, upstream: "http://127.0.0.1:1" }\n  - { host: c.d, namespace: ns, service: svc, upstream: "http://127.0.0.1:1", headersWithUnderscores: drop }\n', '/x.yaml');
    assert.deepEqual(c.listeners.service?.connections, { handshakeTimeout: 10_000, headersTimeout: 15_000, idleTimeout: 5_000, maxPerAddress: 8 });
    assert.equal(c.routes[0]?.headersWithUnderscores, 'reject');
    assert.equal(c.routes[1]?.headersWithUnderscores, 'drop');
    assert.match(invalid('routes:\n  - { host: a.b, namespace: ns, service: svc, upstream: "http://127.0.0.1:1", headersWithUnderscores: keep }\n'), /gatehouse\.yaml:2: routes\[0\]\.headersWithUnderscores must be one of reject, drop, got string "keep"/);
    assert.match(invalid('listeners:\n  admin: { port: 9090, connections: { maxPerAddress: 0, idle: 1s } }\n'), /listeners\.admin\.connections\.maxPerAddress must be at least 1/);
    assert.match(invalid('listeners:\n  admin: { port: 9090, connections: { idle: 1s } }\n'), /gatehouse\.yaml:2: listeners\.admin\.connections\.idle unknown key \(allowed here: handshakeTimeout, headersTimeout, idleTimeout, maxPerAddress, maxConnections\)/);
  });

  it('a section given is taken as given: defaults fill only its absent keys, and an empty key is absent', () => {
    // the default store is embedded; an etcd section must not inherit its path
    const c = parseConfig('store: { kind: etcd, endpoints: ["http://127.0.0.1:2379"] }\naudit:\nlisteners:\n  admin: { port: 9191 }\n', '/x.yaml');
    assert.deepEqual(c.store, { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'] });
    assert.deepEqual(c.audit, { checkpointEvery: 1_000, checkpointInterval: 10_000 });
    assert.equal(c.listeners.admin.address, '127.0.0.1');
    assert.match(invalid('listeners:\n  admin: { address: 127.0.0.1 }\n'), /listeners\.admin\.port is required/);
    assert.match(invalid('store: nope\n'), /store must be a map, got string "nope"/);
    assert.match(invalid('routes:\n  - { host: "", namespace: ns, service: svc, upstream: "http://x" }\n'), /routes\[0\]\.host must not be empty/);
    assert.match(invalid('mfa: { require: [webauthn-uv, sms] }\n'), /mfa\.require\[1\] must be one of webauthn-uv, totp, got string "sms"/);
    assert.match(invalid('webauthn: { rpId: example.org }\n'), /webauthn\.origins is required/);
    assert.match(invalid('tokens: { ttl: 1m, issuer: ftp://x }\n'), /tokens\.issuer must be an https:\/\/ URL without query or fragment/);
  });

  it('the shipped gatehouse.yaml is valid', async () => {
    const c = await loadConfig(path.join(import.meta.dirname, '../../gatehouse.yaml'));
    assert.equal(c.store.kind, 'embedded');
  });

  it('a missing file is ERR_CONFIG_NOT_FOUND', async () => {
    await assert.rejects(loadConfig('/nonexistent/gatehouse.yaml'), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_CONFIG_NOT_FOUND');
  });
});
