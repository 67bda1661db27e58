// Headless Chromium (Debian's, never a downloaded browser) driven by playwright-core, trusting
// the Gatehouse CA through an NSS database in a throwaway HOME (Chromium disables WebAuthn on
// pages with certificate errors), with a CDP virtual authenticator.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { requireProgram } from '../helpers/programs.js';

export interface VirtualAuthenticatorOptions {
  hasUserVerification?: boolean;
  isUserVerified?: boolean;
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  cdp: CDPSession;
  /** Adds a CTAP2 USB authenticator (user verification on by default); returns its id. */
  addAuthenticator(o?: VirtualAuthenticatorOptions): Promise<string>;
  removeAuthenticator(id: string): Promise<void>;
  close(): Promise<void>;
}

export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Skips (outside CI) or fails (under CI=true) when chromium or certutil is missing. */
export function browserPrograms(): { skip: string } | { chromium: string } {
  const c = requireProgram('chromium', 'chromium');
  if (c.skip !== false) return { skip: c.skip };
  const nss = requireProgram('certutil', 'libnss3-tools');
  if (nss.skip !== false) return { skip: nss.skip };
  return { chromium: c.path };
}

/** Launches Chromium that resolves every `*.<domain>` to 127.0.0.1 and trusts caPem. */
export async function launchBrowser(o: { executablePath: string; caPem: string; domain: string }): Promise<Browser> {
  const dir = mkdtempSync(path.join(tmpdir(), 'gh-chromium-'));
  const home = path.join(dir, 'home');
  const nssdb = `sql:${path.join(home, '.pki', 'nssdb')}`;
  mkdirSync(path.join(home, '.pki', 'nssdb'), { recursive: true });
  writeFileSync(path.join(dir, 'ca.pem'), o.caPem);
  execFileSync('certutil', ['-N', '-d', nssdb, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', nssdb, '-t', 'C,,', '-n', 'gatehouse-test-ca', '-i', path.join(dir, 'ca.pem')]);
  const context = await chromium.launchPersistentContext(path.join(dir, 'profile'), {
    executablePath: o.executablePath,
    headless: true,
    args: [...CHROMIUM_FLAGS, `--host-resolver-rules=MAP *.${o.domain} 127.0.0.1, MAP ${o.domain} 127.0.0.1`],
    env: { ...process.env, HOME: home },
    viewport: { width: 1000, height: 800 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  return {
    context,
    page,
    cdp,
    async addAuthenticator(a = {}) {
      const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
        options: {
          protocol: 'ctap2',
          transport: 'usb',
          hasResidentKey: true,
          hasUserVerification: a.hasUserVerification ?? true,
          isUserVerified: a.isUserVerified ?? true,
          automaticPresenceSimulation: true,
        },
      });
      return authenticatorId;
    },
    async removeAuthenticator(id) {
      await cdp.send('WebAuthn.removeVirtualAuthenticator', { authenticatorId: id });
    },
    async close() {
      await context.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
