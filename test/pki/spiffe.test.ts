import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, spiffeId, trustDomainId } from '../../src/pki/index.js';
import { throwsWith } from './helpers.js';

describe('SPIFFE IDs', () => {
  it('builds and parses spiffe://<td>/ns/<ns>/sa/<sa>', () => {
    const id = spiffeId('example.org', 'payments', 'api');
    assert.equal(id, 'spiffe://example.org/ns/payments/sa/api');
    assert.deepEqual(parseSpiffeId(id), { trustDomain: 'example.org', namespace: 'payments', service: 'api' });
    assert.deepEqual(parseSpiffeId('spiffe://td/ns/a-1/sa/0'), { trustDomain: 'td', namespace: 'a-1', service: '0' });
    assert.equal(trustDomainId('example.org'), 'spiffe://example.org');
  });

  it('refuses malformed parts when building', () => {
    throwsWith(() => spiffeId('Example.org', 'payments', 'api'), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example..org', 'payments', 'api'), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example.org', 'Payments', 'api'), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example.org', 'payments', 'a.pi'), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example.org', 'payments', '-api'), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example.org', 'payments', 'a'.repeat(64)), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => spiffeId('example.org', '', 'api'), 'ERR_SPIFFE_ID_INVALID');
  });

  const hostile = [
    '',
    'spiffe://',
    'spiffe://example.org',
    'spiffe://example.org/',
    'SPIFFE://example.org/ns/payments/sa/api',
    'Spiffe://example.org/ns/payments/sa/api',
    'https://example.org/ns/payments/sa/api',
    'spiffe:/example.org/ns/payments/sa/api',
    'spiffe://Example.org/ns/payments/sa/api',
    'spiffe://example.org:443/ns/payments/sa/api',
    'spiffe://user@example.org/ns/payments/sa/api',
    'spiffe://user:pw@example.org/ns/payments/sa/api',
    'spiffe://example.org/ns/payments/sa/api?x=1',
    'spiffe://example.org/ns/payments/sa/api#frag',
    'spiffe://example.org/ns/payments/sa/api/',
    'spiffe://example.org/ns/payments/sa/api/extra',
    'spiffe://example.org/ns/payments/sa/',
    'spiffe://example.org/ns//sa/api',
    'spiffe://example.org/ns/payments/sa',
    'spiffe://example.org/ns/./sa/api',
    'spiffe://example.org/ns/../sa/api',
    'spiffe://example.org/ns/payments/sa/..',
    'spiffe://example.org/ns/payments/../frontend/sa/api',
    'spiffe://example.org/ns/pay%6dents/sa/api',
    'spiffe://example.org/ns/payments/sa/api%2f..',
    'spiffe://example.org/ns/Payments/sa/api',
    'spiffe://example.org/ns/payments/sa/API',
    'spiffe://example.org//ns/payments/sa/api',
    'spiffe://example.org/sa/api/ns/payments',
    'spiffe://example.org/NS/payments/sa/api',
    'spiffe://example.org/ns/pay_ments/sa/api',
    'spiffe://example.org/ns/payments/sa/api\u0000',
    'spiffe://example.org/ns/payments/sa/api\n',
    ' spiffe://example.org/ns/payments/sa/api',
    'spiffe://example.org/ns/payments/sa/аpi', // Cyrillic а
    'spiffe://example.org\\ns\\payments\\sa\\api',
    'spiffe://example..org/ns/payments/sa/api',
    'spiffe://.example.org/ns/payments/sa/api',
    'spiffe://example.org./ns/payments/sa/api',
    'spiffe://[::1]/ns/payments/sa/api',
    'spiffe://example.org/ns/-payments/sa/api',
    `spiffe://example.org/ns/${'a'.repeat(64)}/sa/api`,
    `spiffe://${'a.'.repeat(1100)}org/ns/payments/sa/api`,
  ];
  for (const input of hostile) {
    it(`refuses ${JSON.stringify(input.length > 60 ? `${input.slice(0, 60)}…` : input)}`, () => {
      throwsWith(() => parseSpiffeId(input), 'ERR_SPIFFE_ID_INVALID');
    });
  }

  it('refuses non-strings', () => {
    throwsWith(() => parseSpiffeId(undefined as unknown as string), 'ERR_SPIFFE_ID_INVALID');
    throwsWith(() => parseSpiffeId(42 as unknown as string), 'ERR_SPIFFE_ID_INVALID');
  });

  it('does not echo a long hostile input whole', () => {
    try {
      parseSpiffeId(`spiffe://example.org/ns/${'x'.repeat(5000)}?`);
      assert.fail('should throw');
    } catch (err) {
      assert.ok((err as Error).message.length < 400);
    }
  });
});

describe('SPIFFE IDs on certificates', () => {
  it('reads the one SAN of a workload certificate as Node prints it', async () => {
    const { spiffeIdOfSubjectAltName } = await import('../../src/pki/index.js');
    assert.equal(spiffeIdOfSubjectAltName('URI:spiffe://example.org/ns/a/sa/b'), 'spiffe://example.org/ns/a/sa/b');
    // other SAN types may sit beside the one URI SAN (X509-SVID)
    assert.equal(spiffeIdOfSubjectAltName('DNS:x, URI:spiffe://example.org/ns/a/sa/b'), 'spiffe://example.org/ns/a/sa/b');
    for (const none of [undefined, '', 'DNS:a.example.org', 'URI:https://example.org/', 'URI:spiffe://example.org/ns/a/sa/b, URI:spiffe://example.org/ns/a/sa/c']) {
      assert.equal(spiffeIdOfSubjectAltName(none), undefined, String(none));
    }
  });

  it('lists the URI SANs of a server certificate', async () => {
    const { uriSubjectAltNames } = await import('../../src/pki/index.js');
    assert.deepEqual(uriSubjectAltNames('DNS:localhost, IP Address:127.0.0.1, URI:spiffe://example.org/ns/a/sa/b'), ['spiffe://example.org/ns/a/sa/b']);
    assert.deepEqual(uriSubjectAltNames(undefined), []);
    assert.deepEqual(uriSubjectAltNames('DNS:a, DNS:b'), []);
    // a quoted value (it holds a separator) stays one entry, quoted, and is no SPIFFE ID
    assert.deepEqual(uriSubjectAltNames('URI:"spiffe://example.org/ns/a/sa/b, DNS:x", DNS:y'), ['"spiffe://example.org/ns/a/sa/b, DNS:x"']);
  });

  it('reads the trust domain of a CA ID and parses without throwing on request', async () => {
    const { trustDomainOfId, tryParseSpiffeId } = await import('../../src/pki/index.js');
    assert.equal(trustDomainOfId('spiffe://example.org'), 'example.org');
    for (const bad of ['spiffe://', 'spiffe://Example.org', 'spiffe://example.org/', 'https://example.org']) assert.equal(trustDomainOfId(bad), undefined, bad);
    assert.deepEqual(tryParseSpiffeId('spiffe://td/ns/a/sa/b'), { trustDomain: 'td', namespace: 'a', service: 'b' });
    assert.equal(tryParseSpiffeId('spiffe://td/ns/a/sa/b/'), undefined);
  });
});
