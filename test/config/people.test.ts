// Config of what sessions must prove (issue 11 §3): totp.allowSoftware (off unless asked for),
// routes[].acr, and the start-up warnings for settings that promise more than anything checks.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configWarnings, parseConfig } from '../../src/config/index.js';
import { GatehouseError } from '../../src/errors.js';

const FILE = '/etc/gatehouse/gatehouse.yaml';
const YUBIKEY = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';
const HUMAN = 'listeners: { human: { port: 8443 } }\n';
const route = (extra: string): string => `routes:\n  - { host: app.example.org, namespace: payments, service: api, upstream: "http://10.0.0.1:80"${extra} }\n`;

function refusal(text: string): string {
  try {
    parseConfig(text, FILE);
  } catch (err) {
    assert.ok(err instanceof GatehouseError && err.code === 'ERR_CONFIG_INVALID');
    return err.message;
  }
  return assert.fail('config was accepted');
}

describe('config: what sessions must prove', () => {
  it('phone-app OTP seeds are off unless totp.allowSoftware says so', () => {
    assert.equal(parseConfig('', FILE).totp.allowSoftware, false);
    assert.equal(parseConfig('totp: { allowSoftware: true }\n', FILE).totp.allowSoftware, true);
    assert.match(refusal('totp: { allowSoftware: sometimes }\n'), /totp\.allowSoftware/);
    assert.match(refusal('totp: { software: true }\n'), /totp\.software unknown key/);
  });

  it('a route may demand aal1, aal2 or aal3, nothing else', () => {
    assert.equal(parseConfig(route(''), FILE).routes[0]!.acr, undefined);
    for (const level of ['aal1', 'aal2', 'aal3'] as const) assert.equal(parseConfig(route(`, acr: ${level}`), FILE).routes[0]!.acr, level);
    for (const bad of ['aal4', 'AAL3', '3', 'urn:aal3']) assert.match(refusal(route(`, acr: "${bad}"`)), /routes\[0\]\.acr/, bad);
  });

  it('start-up warns about an AAGUID allow-list that nothing verifies (a software key can claim a YubiKey)', () => {
    const claimed = parseConfig(`${HUMAN}webauthn: { rpId: example.org, origins: ["https://login.example.org"], allowedAAGUIDs: ["${YUBIKEY}"] }\n`, FILE);
    assert.match(configWarnings(claimed).join('\n'), /webauthn\.allowedAAGUIDs .*webauthn\.requireAttestation: true/);
    const verified = parseConfig(`${HUMAN}webauthn: { rpId: example.org, origins: ["https://login.example.org"], allowedAAGUIDs: ["${YUBIKEY}"], requireAttestation: true, attestationRoots: [./roots.pem] }\n`, FILE);
    assert.deepEqual(configWarnings(verified), []);
  });

  it('start-up warns about an aal3 route no session can reach (no attestation roots, or no OTP factor)', () => {
    const noRoots = parseConfig(`${HUMAN}${route(', acr: aal3')}`, FILE);
    assert.match(configWarnings(noRoots).join('\n'), /app\.example\.org demand acr aal3.*attestationRoots is empty/);
    const noOtp = parseConfig(`${HUMAN}webauthn: { rpId: example.org, origins: ["https://login.example.org"], attestationRoots: [./roots.pem] }\nmfa: { require: [webauthn-uv] }\n${route(', acr: aal3')}`, FILE);
    assert.match(configWarnings(noOtp).join('\n'), /no mfa list requires totp/);
    const reachable = parseConfig(`${HUMAN}webauthn: { rpId: example.org, origins: ["https://login.example.org"], attestationRoots: [./roots.pem] }\n${route(', acr: aal3')}`, FILE);
    assert.deepEqual(configWarnings(reachable), []);
  });
});
