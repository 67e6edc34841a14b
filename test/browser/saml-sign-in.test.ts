// A SAML sign-in in a real browser (Debian's chromium, headless, through playwright-core) against
// a real SAML IdP on another origin (SimpleSAMLphp served by `php -S`), started from the gateway's
// picker. The picker is a form, and CSP `form-action` also governs where a submitted form is
// redirected (Chromium enforces it on every hop): the 303 to the IdP's single sign-on endpoint
// must be allowed. Here the IdP's metadata is inline (`metadata.xml`), so no origin of it is in the
// config: the gateway lists the endpoints of the metadata in use.
import { randomUUID } from 'node:crypto';

import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { pkcePair } from '../support/browser.ts';
import { ARTIFACTS, launchChromium } from '../support/chromium.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { NAMEID, startSamlIdp } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';

const REDIRECT = 'http://127.0.0.1/cb';

let gw: TestGateway;
let idp: SamlIdpPeer;
let browser: Browser;

beforeAll(async () => {
  idp = await startSamlIdp({
    users: [{ username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], firstName: ['Alice'], lastName: ['Example'], groups: ['Finance'] } }],
  });
  gw = await startGateway({
    config: {
      devLogin: { enabled: false },
      // Two IdPs, so the sign-in starts at the picker (a form) rather than a plain redirect.
      demoIdp: { enabled: true, people: [{ username: 'dora', name: 'Dora Demo', email: 'dora@demo.example.test', groups: [] }] },
      identityProviders: [{ id: 'okta-saml', type: 'saml', preset: 'okta', displayName: 'Acme (SAML)', metadata: { xml: await idp.metadata() } }],
      roles: { 'finance-reader': { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'okta-saml', group: 'Finance', roles: ['finance-reader'] }],
    },
  });
  await idp.registerSp({
    entityId: `${gw.url}/federation/saml/okta-saml/metadata`, acs: `${gw.url}/federation/saml/okta-saml/acs`,
    nameIdFormat: NAMEID.persistent, nameIdAttribute: 'uid',
  });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await gw?.close();
  await idp?.close();
});

describe('SAML sign-in in a real browser', () => {
  it('goes from the picker to the IdP on another origin and back to the app', async () => {
    const context = await browser.newContext();
    const page: Page = await context.newPage();
    const blocked: string[] = [];
    page.on('console', (message) => { if (/Content Security Policy/i.test(message.text())) blocked.push(message.text()); });
    try {
      const { challenge } = pkcePair();
      const params = new URLSearchParams({
        client_id: 'agent-console', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email',
        code_challenge: challenge, code_challenge_method: 'S256', state: randomUUID(),
      });
      const picker = await page.goto(`${gw.url}/auth?${params}`);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Sign in');
      // The IdP's single sign-on origin, known only from its (inline) metadata, is a form target.
      await expect.poll(async () => (await picker!.allHeaders())['content-security-policy']).toBeDefined();
      const csp = (await picker!.allHeaders())['content-security-policy']!;
      expect(csp.split('; ').find((d) => d.startsWith('form-action'))!.split(' ')).toContain(idp.origin);

      await page.getByRole('button', { name: 'Sign in with Acme (SAML)' }).click();
      await page.waitForURL((url) => url.origin === idp.origin);
      await page.locator('input[name="username"]').fill('alice');
      await page.locator('input[name="password"]').fill('alice-pass');
      await page.screenshot({ path: `${ARTIFACTS}/saml-idp-login.png`, fullPage: true });
      // Nothing listens at the app's redirect URI: the browser's request to it is the arrival.
      const arrival = page.waitForRequest((request) => request.url().startsWith(REDIRECT), { timeout: 20_000 });
      await page.locator('input[name="password"]').press('Enter');
      const back = new URL((await arrival).url());
      expect(back.searchParams.get('code')).toMatch(/^[\w-]{20,}$/);
      expect(back.searchParams.get('iss')).toBe(gw.url);
      expect(blocked).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
