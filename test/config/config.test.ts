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
    assert.deepEqual(c.listeners.admin, { address: '127.0.0.1', port: 9090 });
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

  it('the shipped gatehouse.yaml is valid', async () => {
    const c = await loadConfig(path.join(import.meta.dirname, '../../gatehouse.yaml'));
    assert.equal(c.store.kind, 'embedded');
  });

  it('a missing file is ERR_CONFIG_NOT_FOUND', async () => {
    await assert.rejects(loadConfig('/nonexistent/gatehouse.yaml'), (e: unknown) => e instanceof GatehouseError && e.code === 'ERR_CONFIG_NOT_FOUND');
  });
});
