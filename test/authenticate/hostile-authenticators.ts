// Hostile authenticators at enrollment: software keys that claim a hardware model, attestation
// chains to roots nobody trusts, forged statements. Each case says what the gateway must do
// under an AAGUID allow-list alone (the AAGUID is then only the key's claim) and under
// requireAttestation: refuse it with a code, or enroll it as proven hardware (hwk) or not.
import type { AttestationPki } from './attestation-ca.js';
import { SoftAuthenticator } from './soft-authenticator.js';

/** A YubiKey 5 series AAGUID: the model the allow-list names. */
export const YUBIKEY = 'cb69481e-8ff7-4039-93ec-0a2729a154a8';

export type Outcome = { refused: string } | { enrolled: 'hwk' | 'not-hwk' };

export interface HostileAuthenticator {
  name: string;
  key(pki: { trusted: AttestationPki; other: AttestationPki }): SoftAuthenticator;
  /** webauthn.allowedAAGUIDs: [YUBIKEY], attestation roots configured, requireAttestation false. */
  allowList: Outcome;
  /** The same with requireAttestation: true. */
  required: Outcome;
}

export const HOSTILE_AUTHENTICATORS: readonly HostileAuthenticator[] = [
  {
    name: 'a software key claiming a YubiKey AAGUID with no attestation (fmt none)',
    key: () => new SoftAuthenticator({ aaguid: YUBIKEY, attestation: 'none' }),
    allowList: { enrolled: 'not-hwk' },
    required: { refused: 'ERR_WEBAUTHN_ATTESTATION' },
  },
  {
    name: 'a software key claiming a YubiKey AAGUID with self attestation (packed, no x5c)',
    key: () => new SoftAuthenticator({ aaguid: YUBIKEY, attestation: 'packed-self' }),
    allowList: { enrolled: 'not-hwk' },
    required: { refused: 'ERR_WEBAUTHN_ATTESTATION' },
  },
  {
    name: 'a key claiming a YubiKey AAGUID whose x5c chain ends at a root nobody configured',
    key: ({ other }) => new SoftAuthenticator({ aaguid: YUBIKEY, attestation: 'packed-x5c', x5c: { key: other.leafKey, chain: [other.leafDer] } }),
    allowList: { enrolled: 'not-hwk' },
    required: { refused: 'ERR_WEBAUTHN_ATTESTATION' },
  },
  {
    name: "a trusted vendor's attestation certificate with a statement signed by another key (a copied certificate)",
    key: ({ trusted, other }) => new SoftAuthenticator({ aaguid: YUBIKEY, attestation: 'packed-x5c', x5c: { key: other.leafKey, chain: [trusted.leafDer] } }),
    allowList: { refused: 'ERR_WEBAUTHN_INVALID' },
    required: { refused: 'ERR_WEBAUTHN_INVALID' },
  },
  {
    name: 'a software key with the all-zero AAGUID (not on the allow-list)',
    key: () => new SoftAuthenticator({ attestation: 'none' }),
    allowList: { refused: 'ERR_WEBAUTHN_AAGUID' },
    required: { refused: 'ERR_WEBAUTHN_AAGUID' },
  },
  {
    name: 'a key claiming a YubiKey AAGUID that does not verify the user (UV=0)',
    key: ({ trusted }) => new SoftAuthenticator({ aaguid: YUBIKEY, uv: false, attestation: 'packed-x5c', x5c: { key: trusted.leafKey, chain: [trusted.leafDer] } }),
    allowList: { refused: 'ERR_WEBAUTHN_USER_VERIFICATION' },
    required: { refused: 'ERR_WEBAUTHN_USER_VERIFICATION' },
  },
  {
    name: 'control: a key whose packed attestation chains to the configured root',
    key: ({ trusted }) => new SoftAuthenticator({ aaguid: YUBIKEY, attestation: 'packed-x5c', x5c: { key: trusted.leafKey, chain: [trusted.leafDer] } }),
    allowList: { enrolled: 'hwk' },
    required: { enrolled: 'hwk' },
  },
];
