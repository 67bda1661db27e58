// The PKI commands, run through the CLI's own dispatcher (exit codes and output as a user sees them).
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runCli } from '../../src/cli/index.js';
import { parseDuration } from '../../src/cli/pki.js';
import { openStore } from '../../src/store/index.js';
import { CertRevocationList } from '../../src/pki/index.js';
import { tempDir } from './helpers.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (l) => out.push(l), err: (l) => err.push(l), env: {}, stopSignal: new Promise(() => undefined) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('gatehouse ca / cert commands', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let certs: string;
  let config: string;

  before(async () => {
    tmp = await tempDir('cli');
    certs = path.join(tmp.dir, 'certs');
    config = path.join(tmp.dir, 'gatehouse.yaml');
    await writeFile(config, 'trustDomain: example.org\nstore: { kind: embedded, path: ./data }\npki: { dir: ./certs }\n');
  });
  after(() => tmp.cleanup());

  it('help lists the commands', async () => {
    const r = await cli(['--help']);
    assert.match(r.out, /ca init/);
    assert.match(r.out, /cert issue/);
    assert.match(r.out, /cert revoke/);
  });

  it('ca init creates the CA from --config defaults and refuses to run twice', async () => {
    const r = await cli(['ca', 'init', '--config', config]);
    assert.equal(r.code, 0, r.err);
    const out = JSON.parse(r.out) as { ca: string; trustDomain: string };
    assert.equal(out.ca, path.join(certs, 'ca.pem'));
    assert.equal(out.trustDomain, 'example.org');
    assert.equal((await stat(path.join(certs, 'ca.key'))).mode & 0o777, 0o600);
    const again = await cli(['ca', 'init', '--config', config]);
    assert.equal(again.code, 1);
    assert.match(again.err, /^gatehouse: ERR_PKI_CA_EXISTS: /);
  });

  it('ca init: usage errors exit 2', async () => {
    const noTd = await cli(['ca', 'init', '--dir', path.join(tmp.dir, 'x')]);
    assert.equal(noTd.code, 2);
    assert.match(noTd.err, /ERR_USAGE: --trust-domain is required/);
    const badTd = await cli(['ca', 'init', '--dir', path.join(tmp.dir, 'x'), '--trust-domain', 'Bad_Domain']);
    assert.equal(badTd.code, 2);
    const badDays = await cli(['ca', 'init', '--dir', path.join(tmp.dir, 'x'), '--trust-domain', 'a.org', '--validity-days', '10y']);
    assert.equal(badDays.code, 2);
  });

  it('cert issue writes key.pem (0600), cert.pem and ca.pem and prints serial, SPIFFE ID and expiry', async () => {
    const out = path.join(tmp.dir, 'api');
    const before = Date.now();
    const r = await cli(['cert', 'issue', '--dir', certs, '--namespace', 'payments', '--service', 'api', '--out', out, '--ttl', '90s']);
    assert.equal(r.code, 0, r.err);
    const printed = JSON.parse(r.out) as { serial: string; spiffeId: string; notAfter: string; indexed: boolean };
    assert.equal(printed.spiffeId, 'spiffe://example.org/ns/payments/sa/api');
    assert.equal(printed.indexed, false);
    assert.equal((await stat(path.join(out, 'key.pem'))).mode & 0o777, 0o600);
    const cert = new X509Certificate(await readFile(path.join(out, 'cert.pem')));
    const ca = new X509Certificate(await readFile(path.join(out, 'ca.pem')));
    assert.ok(cert.verify(ca.publicKey));
    assert.equal(cert.serialNumber.toLowerCase(), printed.serial);
    assert.equal(new Date(cert.validTo).toISOString(), printed.notAfter);
    const life = Date.parse(printed.notAfter) - before;
    assert.ok(life > 85_000 && life <= 91_000, `lifetime ${life} ms`);
    assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(await readFile(path.join(out, 'key.pem')))));
    // issuing again into the same folder replaces the pair
    const r2 = await cli(['cert', 'issue', '--dir', certs, '--namespace', 'payments', '--service', 'api', '--out', out]);
    assert.equal(r2.code, 0, r2.err);
    assert.notEqual((JSON.parse(r2.out) as { serial: string }).serial, printed.serial);
  });

  it('cert issue: bad input exits 2 with ERR_USAGE, a missing CA 1', async () => {
    const base = ['cert', 'issue', '--dir', certs, '--namespace', 'payments', '--service', 'api', '--out', path.join(tmp.dir, 'bad')];
    for (const ttl of ['0s', '1.5h', '24', '1w', '', '-1h', '24H', '99999999999s', '36500d']) {
      const r = await cli([...base, '--ttl', ttl]);
      assert.equal(r.code, 2, `--ttl ${JSON.stringify(ttl)}: ${r.err}`);
      assert.match(r.err, /ERR_USAGE/);
    }
    assert.match((await cli([...base, '--ttl', '36500d'])).err, /outlives the CA/);
    assert.equal((await cli(['cert', 'issue', '--dir', certs, '--namespace', 'payments', '--service', 'api'])).code, 2);
    assert.equal((await cli(['cert', 'issue', '--dir', certs, '--namespace', 'Payments', '--service', 'api', '--out', 'x'])).code, 2);
    assert.equal((await cli(['cert', 'issue', '--dir', certs, '--namespace', 'payments', '--service', 'a/b', '--out', 'x'])).code, 2);
    const noCa = await cli(['cert', 'issue', '--dir', path.join(tmp.dir, 'none'), '--namespace', 'payments', '--service', 'api', '--out', path.join(tmp.dir, 'o')]);
    assert.equal(noCa.code, 1);
    assert.match(noCa.err, /ERR_PKI_CA_NOT_FOUND/);
  });

  it('cert issue --config indexes the certificate; cert revoke <serial> records it in the store', async () => {
    const issued = await cli(['cert', 'issue', '--config', config, '--namespace', 'frontend', '--service', 'web', '--out', path.join(tmp.dir, 'web')]);
    assert.equal(issued.code, 0, issued.err);
    const { serial, notAfter, indexed } = JSON.parse(issued.out) as { serial: string; notAfter: string; indexed: boolean };
    assert.equal(indexed, true);

    const r = await cli(['cert', 'revoke', serial.toUpperCase(), '--reason', 'keyCompromise', '--config', config]);
    assert.equal(r.code, 0, r.err);
    const rec = JSON.parse(r.out) as { serial: string; reason: string; notAfter: string; created: boolean };
    assert.deepEqual([rec.serial, rec.reason, rec.notAfter, rec.created], [serial, 'keyCompromise', notAfter, true]);
    const again = await cli(['cert', 'revoke', serial, '--config', config]);
    assert.equal(again.code, 0, again.err);
    assert.equal((JSON.parse(again.out) as { created: boolean }).created, false);

    // a replica starting now sees it
    const store = await openStore({ kind: 'embedded', path: path.join(tmp.dir, 'data') });
    try {
      const list = await CertRevocationList.open(store);
      assert.ok(list.isRevoked(serial));
      await list.close();
    } finally {
      await store.close();
    }
  });

  it('cert revoke: an unknown serial needs --not-after; bad input exits 2', async () => {
    const unknown = '7abcdef0123456789abcdef012345678';
    const r = await cli(['cert', 'revoke', unknown, '--config', config]);
    assert.equal(r.code, 1);
    assert.match(r.err, /ERR_CERT_UNKNOWN_SERIAL/);
    const forced = await cli(['cert', 'revoke', unknown, '--not-after', '2036-01-01T00:00:00Z', '--config', config]);
    assert.equal(forced.code, 0, forced.err);
    assert.equal((JSON.parse(forced.out) as { notAfter: string }).notAfter, '2036-01-01T00:00:00.000Z');
    assert.equal((await cli(['cert', 'revoke', 'xyz', '--config', config])).code, 2);
    assert.equal((await cli(['cert', 'revoke', '--config', config])).code, 2);
    assert.equal((await cli(['cert', 'revoke', unknown, unknown, '--config', config])).code, 2);
    assert.equal((await cli(['cert', 'revoke', unknown, '--reason', 'whim', '--config', config])).code, 2);
    assert.equal((await cli(['cert', 'revoke', unknown, '--not-after', 'tomorrow', '--config', config])).code, 2);
    const noConfig = await cli(['cert', 'revoke', unknown, '--config', path.join(tmp.dir, 'missing.yaml')]);
    assert.equal(noConfig.code, 1);
    assert.match(noConfig.err, /ERR_CONFIG_NOT_FOUND/);
  });

  it('parseDuration accepts 90s, 15m, 24h, 7d and nothing else', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('15m'), 900_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    for (const bad of ['', '0s', '01h', '1.5h', '1h30m', ' 1h', '1h ', '1', 'h', '1y', '-1h', '1e3s', '1000000000s']) {
      assert.equal(parseDuration(bad), undefined, bad);
    }
  });
});
