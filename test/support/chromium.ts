// Debian's chromium for the browser tests, driven by playwright-core: headless, no sandbox (CI runs
// as root), background networking and its kin off, so the only traffic is to the loopback servers
// under test. Screenshots go to test-artifacts/browser/ (gitignored).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';

import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

export const CHROMIUM = process.env.AGENTGATE_CHROMIUM ?? '/usr/bin/chromium';
export const ARTIFACTS = 'test-artifacts/browser';

/** Launches chromium (and makes the screenshot directory); fails with how to install it when it is missing. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`the browser tests need chromium at ${CHROMIUM} (Debian: apt-get install -y chromium; or set AGENTGATE_CHROMIUM)`);
  await mkdir(ARTIFACTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-default-apps', '--no-first-run', '--disable-domain-reliability', '--disable-features=Translate,OptimizationHints,MediaRouter',
    ],
  });
}
