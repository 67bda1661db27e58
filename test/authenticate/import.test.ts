// Vendor seed files (PSKC RFC 6030, serial,secret CSV), the totp/user CLI commands on a real
// store, and seeds sealed at rest.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseSeedFile, openSeed } from '../../src/authenticate/index.js';
import { isGatehouseError } from '../../src/errors.js';
import { runCli } from '../../src/cli/index.js';
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
