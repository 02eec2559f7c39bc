// Headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) driven by npm playwright-core, and the Chrome
// DevTools Protocol's virtual WebAuthn authenticator, which stands in for a platform authenticator (Touch ID,
// Windows Hello): resident keys, user verification, and a real signature counter.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/** Whether the browser is there; tests skip with this reason when it is not. */
export function chromiumMissing() {
  return existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`;
}

/** A headless Chromium with a fresh profile; `close()` ends it and removes the profile. */
export async function launchChromium() {
  const profile = await mkdtemp(join(tmpdir(), 'argus-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * A virtual authenticator attached to `page`: CTAP2 over the internal transport, with resident keys and user
 * verification that succeeds. Returns `{ cdp, authenticatorId }`.
 */
export async function addVirtualAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/** The credentials the authenticator holds (id, rpId, signCount ...). */
export async function credentials({ cdp, authenticatorId }) {
  return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
}
