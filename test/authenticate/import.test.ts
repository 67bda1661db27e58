// Vendor seed files (PSKC RFC 6030, serial,secret CSV), the totp/user CLI commands on a real
// store, and seeds sealed at rest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSeedFile, openSeed, verifyTotp } from '../../src/authenticate/index.js';
import { codeAt, matchStep, stepAt } from '../../src/authenticate/totp/codes.js';
import { isGatehouseError } from '../../src/errors.js';
import { runCli } from '../../src/cli/index.js';
import { ManualClock } from '../../src/lib/clock.js';
import { initCa } from '../../src/pki/index.js';
import { openStore, text } from '../../src/store/index.js';
import { loadKek } from '../../src/tokens/index.js';

const SEED_HEX = '3132333435363738393031323334353637383930'; // RFC 6238 test seed "12345678901234567890"
const SEED_B64 = Buffer.from(SEED_HEX, 'hex').toString('base64');
const SEED_B32 = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

const PSKC = `<?xml version="1.0" encoding="UTF-8"?>
<pskc:KeyContainer xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" Version="1.0">
  <pskc:KeyPackage>
    <pskc:DeviceInfo><pskc:Manufacturer>Token2</pskc:Manufacturer><pskc:SerialNo>T2-0001</pskc:SerialNo></pskc:DeviceInfo>
    <pskc:Key Id="T2-0001" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <pskc:AlgorithmParameters><pskc:ResponseFormat Length="6" Encoding="DECIMAL"/></pskc:AlgorithmParameters>
      <pskc:Data>
        <pskc:Secret><pskc:PlainValue>${SEED_B64}</pskc:PlainValue></pskc:Secret>
        <pskc:TimeInterval><pskc:PlainValue>30</pskc:PlainValue></pskc:TimeInterval>
      </pskc:Data>
    </pskc:Key>
  </pskc:KeyPackage>
  <pskc:KeyPackage>
    <pskc:DeviceInfo><pskc:SerialNo>T2-0002</pskc:SerialNo></pskc:DeviceInfo>
    <pskc:Key Id="k2" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <pskc:AlgorithmParameters><pskc:ResponseFormat Length="8" Encoding="DECIMAL"/></pskc:AlgorithmParameters>
      <pskc:Data><pskc:Secret><pskc:PlainValue>${SEED_B64}</pskc:PlainValue></pskc:Secret><pskc:TimeInterval><pskc:PlainValue>60</pskc:PlainValue></pskc:TimeInterval></pskc:Data>
    </pskc:Key>
  </pskc:KeyPackage>
</pskc:KeyContainer>`;

const ENCRYPTED = `<?xml version="1.0"?>
<KeyContainer xmlns="urn:ietf:params:xml:ns:keyprov:pskc" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Version="1.0">
  <EncryptionKey><ds:KeyName xmlns:ds="http://www.w3.org/2000/09/xmldsig#">Pre-shared-key</ds:KeyName></EncryptionKey>
  <KeyPackage><DeviceInfo><SerialNo>E-1</SerialNo></DeviceInfo>
    <Key Id="E-1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><Data><Secret><EncryptedValue><xenc:CipherData><xenc:CipherValue>AAAA</xenc:CipherValue></xenc:CipherData></EncryptedValue></Secret></Data></Key>
  </KeyPackage>
</KeyContainer>`;

const FIXTURES = new URL('./fixtures/', import.meta.url);
const fixture = (name: string): string => readFileSync(new URL(name, FIXTURES), 'utf8');

// RFC 6238 Appendix B: time (s) -> 8-digit code, for its SHA-256 and SHA-512 seeds.
const RFC6238_SHA256: ReadonlyArray<[number, string]> = [
  [59, '46119246'], [1111111109, '68084774'], [1111111111, '67062674'], [1234567890, '91819424'], [2000000000, '90698825'], [20000000000, '77737706'],
];
const RFC6238_SHA512: ReadonlyArray<[number, string]> = [
  [59, '90693936'], [1111111109, '25091201'], [1111111111, '99943326'], [1234567890, '93441116'], [2000000000, '38618901'], [20000000000, '47863826'],
];

function invalidMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isGatehouseError(err, 'ERR_TOTP_IMPORT_INVALID')) return err.message;
    throw err;
  }
  return 'accepted';
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isGatehouseError(err)) return err.code;
    throw err;
  }
  return 'accepted';
}

describe('seed files', () => {
  it('reads plain PSKC: serials, seeds, digits, periods', () => {
    const seeds = parseSeedFile(PSKC);
    assert.deepEqual(seeds.map((s) => [s.serial, s.seed.toString('hex'), s.digits, s.period, s.algorithm]), [
      ['T2-0001', SEED_HEX, 6, 30, 'sha1'],
      ['T2-0002', SEED_HEX, 8, 60, 'sha1'],
    ]);
  });

  it('refuses encrypted PSKC with its own code, and malformed files', () => {
    assert.equal(codeOf(() => parseSeedFile(ENCRYPTED)), 'ERR_TOTP_IMPORT_ENCRYPTED');
    assert.equal(codeOf(() => parseSeedFile('<KeyContainer><KeyPackage><Key Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"/></KeyPackage></KeyContainer>')), 'ERR_TOTP_IMPORT_INVALID');
    assert.equal(codeOf(() => parseSeedFile('<not-xml')), 'ERR_TOTP_IMPORT_INVALID');
    assert.equal(codeOf(() => parseSeedFile('')), 'ERR_TOTP_IMPORT_INVALID');
  });

  it('reads CSV with base32 or hex secrets, a header and comments; refuses short or malformed secrets and duplicate serials', () => {
    const seeds = parseSeedFile(`serial,secret\n# vendor batch 7\nC-1,${SEED_B32}\nC-2,${SEED_HEX}\nC-3,0x${SEED_HEX},8,60\n`);
    assert.deepEqual(seeds.map((s) => [s.serial, s.seed.toString('hex'), s.digits, s.period]), [
      ['C-1', SEED_HEX, 6, 30],
      ['C-2', SEED_HEX, 6, 30],
      ['C-3', SEED_HEX, 8, 60],
    ]);
    assert.equal(codeOf(() => parseSeedFile('C-1,GEZDGNBV\n')), 'ERR_TOTP_IMPORT_INVALID');
    assert.equal(codeOf(() => parseSeedFile('C-1,not*base32!\n')), 'ERR_TOTP_IMPORT_INVALID');
    assert.equal(codeOf(() => parseSeedFile(`C-1,${SEED_B32}\nC-1,${SEED_B32}\n`)), 'ERR_TOTP_IMPORT_INVALID');
    assert.equal(codeOf(() => parseSeedFile(`C 1,${SEED_B32}\n`)), 'ERR_TOTP_IMPORT_INVALID');
  });
});

describe('PSKC hash algorithm: the Algorithm URI or AlgorithmParameters/Suite', () => {
  it('a token whose hash is only in AlgorithmParameters/Suite (HMAC-SHA256, hmac-sha512) is imported with that hash', () => {
    const seeds = parseSeedFile(fixture('pskc-suite-sha256.xml'));
    assert.deepEqual(seeds.map((s) => [s.serial, s.algorithm, s.digits, s.seed.length]), [
      ['S256-0001', 'sha256', 8, 32],
      ['S512-0001', 'sha512', 8, 64],
    ]);
  });

  it("an imported SHA-256 token's codes verify against RFC 6238's SHA-256 vectors (and SHA-512 against SHA-512's)", () => {
    const [s256, s512] = parseSeedFile(fixture('pskc-suite-sha256.xml'));
    for (const [token, vectors] of [[s256!, RFC6238_SHA256], [s512!, RFC6238_SHA512]] as const) {
      for (const [t, code] of vectors) {
        const now = t * 1000;
        assert.equal(codeAt(token.seed, stepAt(now, token.period), token), code, `${token.serial} at T=${t}`);
        assert.equal(matchStep(token.seed, code, now, token), stepAt(now, token.period), `${token.serial} verifies ${code} at T=${t}`);
      }
    }
  });

  it('a token whose hash is in the Algorithm URI is imported with it, alone or with an agreeing Suite', () => {
    const seeds = parseSeedFile(fixture('pskc-uri-sha256.xml'));
    assert.deepEqual(seeds.map((s) => [s.serial, s.algorithm]), [['U256-0001', 'sha256'], ['U256-0002', 'sha256']]);
    assert.equal(matchStep(seeds[0]!.seed, '46119246', 59_000, seeds[0]!), 1);
  });

  it('a key package whose Algorithm URI and Suite name different hashes is refused, naming its serial', () => {
    assert.match(invalidMessage(() => parseSeedFile(fixture('pskc-hash-mismatch.xml'))), /serial M-0001.*sha256.*sha1/);
  });

  it('a Suite naming another hash (HMAC-MD5, HMAC-SHA384) is refused, never read as SHA-1', () => {
    for (const suite of ['HMAC-MD5', 'HMAC-SHA384', 'SHA-3']) {
      const xml = fixture('pskc-suite-sha256.xml').replace('HMAC-SHA256', suite);
      assert.match(invalidMessage(() => parseSeedFile(xml)), new RegExp(`serial S256-0001.*Suite ${suite}`), suite);
    }
  });
});

describe('user and totp commands', () => {
  let dir: string;
  let config: string;
  const out: string[] = [];
  const io = { out: (l: string) => out.push(l), err: (l: string) => out.push(`ERR ${l}`), env: {}, stopSignal: new Promise<string>(() => undefined) };

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gh-cli-human-'));
    await initCa({ dir: path.join(dir, 'certs'), trustDomain: 'example.org' });
    config = path.join(dir, 'gatehouse.yaml');
    await writeFile(config, ['store: { kind: embedded, path: ./data }', 'pki: { dir: ./certs }', 'webauthn: { rpId: example.org, origins: ["https://login.example.org"] }', ''].join('\n'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it('user add prints a one-time link; list; disable; bad roles are ERR_USER_INVALID', async () => {
    out.length = 0;
    assert.equal(await runCli(['user', 'add', 'alice', '--role', 'payments:ops-admin', '--role', 'ops:viewer', '--config', config], io), 0, out.join('\n'));
    const link = out.find((l) => l.includes('/.gatehouse/enroll#'))!;
    assert.match(link, /https:\/\/login\.example\.org\/\.gatehouse\/enroll#[A-Za-z0-9_-]{43}$/);
    assert.equal(await runCli(['user', 'add', 'alice', '--config', config], io), 1);
    assert.match(out.at(-1)!, /ERR_USER_EXISTS/);
    assert.equal(await runCli(['user', 'add', 'bob', '--role', 'ops-admin', '--config', config], io), 1);
    assert.match(out.at(-1)!, /ERR_USER_INVALID/);
    out.length = 0;
    assert.equal(await runCli(['user', 'list', '--config', config], io), 0);
    assert.match(out.join('\n'), /alice\s+pending .*payments:ops-admin ops:viewer/);
    assert.equal(await runCli(['user', 'disable', 'alice', '--config', config], io), 0);
    out.length = 0;
    await runCli(['user', 'list', '--config', config], io);
    assert.match(out.join('\n'), /alice\s+disabled/);
    const token = link.split('#')[1]!;
    const store = await openStore({ kind: 'embedded', path: path.join(dir, 'data') });
    try {
      const dump = (await store.range({ prefix: '' })).kvs.map((kv) => text(kv.key) + text(kv.value)).join('\n');
      assert.equal(dump.includes(token), false, 'the enrollment token is stored only as its hash');
    } finally {
      await store.close();
    }
  });

  it('a SHA-256 token imported from a Suite-shaped PSKC file signs its holder in with RFC 6238 SHA-256 codes', async () => {
    await copyFile(new URL('pskc-suite-sha256.xml', FIXTURES), path.join(dir, 'suite.xml'));
    out.length = 0;
    assert.equal(await runCli(['totp', 'import', path.join(dir, 'suite.xml'), '--config', config], io), 0, out.join('\n'));
    await runCli(['user', 'add', 'dave', '--role', 'payments:ops-admin', '--config', config], io);
    assert.equal(await runCli(['totp', 'assign', 'S256-0001', 'dave', '--config', config], io), 0, out.join('\n'));
    const kek = await loadKek({ file: path.join(dir, 'certs', 'kek'), env: {} });
    const store = await openStore({ kind: 'embedded', path: path.join(dir, 'data') });
    try {
      for (const [t, code] of RFC6238_SHA256) {
        const clock = new ManualClock(t * 1000);
        assert.deepEqual(await verifyTotp({ store, kek, clock, userId: 'dave', code }), { step: Math.floor(t / 30), serial: 'S256-0001' }, `T=${t}`);
      }
    } finally {
      await store.close();
    }
  });

  it('totp import seals seeds under the KEK (none in the store in any encoding); assign gives one to a user once', async () => {
    await writeFile(path.join(dir, 'seeds.xml'), PSKC);
    out.length = 0;
    assert.equal(await runCli(['totp', 'import', path.join(dir, 'seeds.xml'), '--config', config], io), 0, out.join('\n'));
    assert.match(out.join('\n'), /imported 2 token\(s\): T2-0001 T2-0002/);
    assert.equal(await runCli(['totp', 'import', path.join(dir, 'seeds.xml'), '--config', config], io), 1, 'the same serials twice');
    await writeFile(path.join(dir, 'enc.xml'), ENCRYPTED);
    assert.equal(await runCli(['totp', 'import', path.join(dir, 'enc.xml'), '--config', config], io), 1);
    assert.match(out.at(-1)!, /ERR_TOTP_IMPORT_ENCRYPTED/);
    await runCli(['user', 'add', 'carol', '--role', 'payments:ops-admin', '--config', config], io);
    assert.equal(await runCli(['totp', 'assign', 'T2-0001', 'carol', '--config', config], io), 0, out.join('\n'));
    assert.equal(await runCli(['totp', 'assign', 'T2-0001', 'carol', '--config', config], io), 1);
    assert.match(out.at(-1)!, /ERR_TOTP_TOKEN_ASSIGNED/);
    assert.equal(await runCli(['totp', 'assign', 'NOPE', 'carol', '--config', config], io), 1);
    assert.match(out.at(-1)!, /ERR_TOTP_TOKEN_UNKNOWN/);
    const store = await openStore({ kind: 'embedded', path: path.join(dir, 'data') });
    try {
      const kvs = (await store.range({ prefix: '' })).kvs;
      const dump = kvs.map((kv) => text(kv.key) + text(kv.value)).join('\n');
      for (const form of [SEED_HEX, SEED_B64, SEED_B32, '12345678901234567890']) assert.equal(dump.includes(form), false, `seed found in the store as ${form}`);
      const rec = JSON.parse(text(kvs.find((kv) => text(kv.key) === '/gatehouse/totp/carol')!.value)) as { serial: string; sealedSeed: string };
      const kek = await loadKek({ file: path.join(dir, 'certs', 'kek'), env: {} });
      assert.equal(openSeed(kek, rec.serial, rec.sealedSeed).toString('hex'), SEED_HEX);
      assert.throws(() => openSeed(kek, 'T2-0002', rec.sealedSeed), (e: unknown) => isGatehouseError(e, 'ERR_TOTP_SEED_UNSEALABLE'), 'a sealed seed moved to another serial does not open');
    } finally {
      await store.close();
    }
  });
});
