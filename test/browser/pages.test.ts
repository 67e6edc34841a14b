// The pages people see, in a real browser (issue 9): Debian's chromium, headless, driven by
// playwright-core. The demo sign-in through the gateway's picker and the built-in demo IdP;
// consent approve and deny; "My agents" revoke making that agent's token inactive; the admin
// console for an admin and refused to a non-admin; a form without its CSRF token refused; a fresh
// browser opening "My agents" is taken through the sign-in and brought back to it.
// Screenshots of each page go to test-artifacts/browser/ (gitignored); each page must also pass
// axe-core's WCAG 2.1 A/AA checks.
import { randomUUID } from 'node:crypto';

import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { accessibilityViolations } from '../support/axe.ts';
import { pkcePair } from '../support/browser.ts';
import { ARTIFACTS, launchChromium } from '../support/chromium.ts';
import { basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const REDIRECT = 'http://127.0.0.1/cb';
const ERP = 'https://erp.example.test';
const MAIL = 'https://mail.example.test';
const SECRETS = { 'invoice-agent': 'invoice-agent-secret-0123456789abcdef', 'mail-agent': 'mail-agent-secret-0123456789abcdefgh' };

let gw: TestGateway;
let browser: Browser;

/** Saves a screenshot of the page and requires it to pass the WCAG 2.1 A/AA checks of axe-core. */
async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
  expect({ page: name, violations: await accessibilityViolations(page) }).toEqual({ page: name, violations: [] });
}

/** A fresh browser profile whose app redirect (nothing listens there) answers a tiny page. */
async function newContext(): Promise<BrowserContext> {
  const context = await browser.newContext();
  await context.route(`${REDIRECT}**`, (route) => route.fulfill({ status: 200, contentType: 'text/html', body: '<!doctype html><title>app</title><p>back at the app</p>' }));
  return context;
}

/** Signs in through the picker ("Sign in with Demo IdP") and the demo IdP; returns the app's tokens. */
async function signIn(page: Page, person: string, screenshots = false): Promise<{ accessToken: string; sid: string }> {
  const { verifier, challenge } = pkcePair();
  const params = new URLSearchParams({
    client_id: 'agent-console', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email profile groups',
    code_challenge: challenge, code_challenge_method: 'S256', state: randomUUID(), nonce: randomUUID(),
  });
  await page.goto(`${gw.url}/auth?${params}`);
  await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
  if (screenshots) await shot(page, '01-picker');
  await page.getByRole('button', { name: 'Sign in with Demo IdP' }).click();
  await page.waitForURL(/\/demo-idp\/interaction\//);
  if (screenshots) await shot(page, '02-demo-idp');
  await page.getByRole('button', { name: person }).click();
  await page.waitForURL((url) => url.href.startsWith(REDIRECT));
  const code = new URL(page.url()).searchParams.get('code');
  expect(code).toBeTruthy();
  const tokens = await postForm(`${gw.url}/token`, { grant_type: 'authorization_code', code: code!, code_verifier: verifier, redirect_uri: REDIRECT, client_id: 'agent-console' });
  expect(tokens.status).toBe(200);
  const info = await postForm(`${gw.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: 'agent-console' });
  return { accessToken: String(tokens.body.access_token), sid: String(info.body.sid) };
}

const exchange = (agent: keyof typeof SECRETS, subject: string, scope: string, audience: string) => postForm(`${gw.url}/token`, {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subject,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope, audience,
}, { authorization: basic(agent, SECRETS[agent]) });
const isActive = async (token: string) => (await postForm(`${gw.url}/token/introspection`, { token }, { authorization: basic('invoice-agent', SECRETS['invoice-agent']) })).body.active;

beforeAll(async () => {
  gw = await startGateway({
    config: {
      demoIdp: {
        enabled: true,
        people: [
          { username: 'alice', name: 'Alice Finance', email: 'alice@demo.example.test', groups: ['Finance'] },
          { username: 'carol', name: 'Carol IT', email: 'carol@demo.example.test', groups: ['IT', 'Finance'] },
        ],
      },
      resources: [
        { id: ERP, name: 'Acme ERP', tokenTtl: '5m', scopes: [{ name: 'erp:read', description: 'read invoices and orders' }] },
        { id: MAIL, name: 'Acme mail', tokenTtl: '5m', scopes: [{ name: 'mail:read', description: 'read your mail' }] },
      ],
      roles: { finance: { scopes: ['erp:read', 'mail:read'] }, 'gateway-admin': {} },
      roleMappings: [{ idp: 'demo', group: 'Finance', roles: ['finance'] }, { idp: 'demo', group: 'IT', roles: ['gateway-admin'] }],
      admin: { roles: ['gateway-admin'] },
      agents: [
        { clientId: 'invoice-agent', name: 'Invoice agent', auth: { method: 'client_secret_basic', secret: SECRETS['invoice-agent'] }, scopes: ['erp:read'], audiences: [ERP] },
        { clientId: 'mail-agent', name: 'Mail agent', consent: 'required', auth: { method: 'client_secret_basic', secret: SECRETS['mail-agent'] }, scopes: ['mail:read'], audiences: [MAIL] },
      ],
    },
  });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await gw?.close();
});

describe('pages in a real browser', () => {
  it('the accessibility check finds what is wrong on a page that is (control)', async () => {
    const context = await browser.newContext();
    try {
      const control = await context.newPage();
      await control.setContent('<!doctype html><html><head><title>x</title></head><body><img src="a.png"><form><input name="q"></form></body></html>');
      const found = (await accessibilityViolations(control)).map((v) => v.split(' ')[0]);
      expect(found).toEqual(expect.arrayContaining(['html-has-lang', 'image-alt', 'label']));
    } finally {
      await context.close();
    }
  });

  let alice: BrowserContext;
  let page: Page;
  let subject = '';
  let mailToken = '';
  let invoiceToken = '';
  let consentUri = '';

  it('the demo sign-in goes through the picker and the demo IdP', async () => {
    alice = await newContext();
    page = await alice.newPage();
    ({ accessToken: subject } = await signIn(page, 'Alice Finance', true));
    expect(subject).toBeTruthy();
  });

  it('consent: deny is recorded, then approve lets the agent exchange', async () => {
    const first = await exchange('mail-agent', subject, 'mail:read', MAIL);
    expect(first.status).toBe(400);
    expect(first.body.error).toBe('consent_required');
    consentUri = String(first.body.consent_uri);
    await page.goto(consentUri);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Allow Mail agent to act for you?');
    await expect(page.locator('ul.scopes li').first().textContent()).resolves.toBe('read your mail (mail:read)');
    await shot(page, '03-consent');
    await page.getByRole('button', { name: 'Deny' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Mail agent will not act for you');
    await shot(page, '04-consent-denied');
    expect((await exchange('mail-agent', subject, 'mail:read', MAIL)).body.error).toBe('access_denied');

    await page.goto(consentUri);
    await page.getByRole('button', { name: 'Allow' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Mail agent may act for you');
    await shot(page, '05-consent-allowed');
    const granted = await exchange('mail-agent', subject, 'mail:read', MAIL);
    expect(granted.status).toBe(200);
    mailToken = String(granted.body.access_token);
  });

  it('My agents: revoke makes that agent\'s token inactive, and only that agent\'s', async () => {
    const invoice = await exchange('invoice-agent', subject, 'erp:read', ERP);
    expect(invoice.status).toBe(200);
    invoiceToken = String(invoice.body.access_token);
    await page.goto(`${gw.url}/account/agents`);
    await expect(page.getByRole('row', { name: /Mail agent/ }).textContent()).resolves.toContain('read your mail at Acme mail');
    await shot(page, '06-my-agents');
    expect(await isActive(mailToken)).toBe(true);
    await page.getByRole('button', { name: 'Revoke Mail agent' }).click();
    await expect(page.getByRole('status').first().textContent()).resolves.toBe('Mail agent no longer holds tokens from your sessions.');
    await shot(page, '07-my-agents-revoked');
    expect(await isActive(mailToken)).toBe(false);
    expect(await isActive(invoiceToken)).toBe(true);
  });

  it('a form whose CSRF token is missing is refused', async () => {
    await page.goto(`${gw.url}/account/agents`);
    await page.locator('input[name="csrf"]').evaluateAll((inputs) => { for (const input of inputs) input.remove(); });
    await page.getByRole('button', { name: 'Revoke Invoice agent' }).click();
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Request refused');
    await shot(page, '08-csrf-refused');
    expect(await isActive(invoiceToken)).toBe(true);
  });

  it('the admin console is refused to a non-admin', async () => {
    const res = await page.goto(`${gw.url}/admin`);
    expect(res?.status()).toBe(403);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Not an administrator');
    await shot(page, '09-admin-refused');
  });

  it('the admin console renders for an admin: IdPs, sessions, agents, audit, explain', async () => {
    const carol = await newContext();
    const admin = await carol.newPage();
    const { sid } = await signIn(admin, 'Carol IT');
    const consoleErrors: string[] = [];
    admin.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
    await admin.goto(`${gw.url}/admin`);
    await expect(admin.getByRole('row', { name: /Demo IdP/ }).textContent()).resolves.toContain('healthy');
    await shot(admin, '10-admin-idps');
    await admin.getByRole('link', { name: 'Sessions' }).click();
    await expect(admin.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Active sessions');
    await shot(admin, '11-admin-sessions');
    await admin.getByRole('link', { name: 'Agents' }).click();
    await admin.getByRole('button', { name: 'Disable invoice-agent' }).click();
    await expect(admin.getByRole('status').first().textContent()).resolves.toBe('invoice-agent disabled.');
    expect(await isActive(invoiceToken)).toBe(false);
    await shot(admin, '12-admin-agents');
    await admin.getByRole('button', { name: 'Enable invoice-agent' }).click();
    await admin.getByRole('link', { name: 'Audit' }).click();
    await admin.getByLabel(/^Event/).fill('agent.disabled');
    await admin.getByRole('button', { name: 'Filter' }).click();
    await expect(admin.locator('tbody tr').count()).resolves.toBe(1);
    await shot(admin, '13-admin-audit');
    await admin.getByRole('link', { name: 'Explain' }).click();
    await admin.getByLabel(/^Session/).fill(sid);
    await admin.getByLabel('Agent', { exact: true }).selectOption('mail-agent');
    await admin.getByLabel(/^Scopes/).fill('mail:read');
    await admin.getByRole('button', { name: 'Explain' }).click();
    await expect(admin.locator('pre').textContent()).resolves.toMatch(/^GRANT {2}mail:read for https:\/\/mail\.example\.test/);
    await shot(admin, '14-admin-explain');
    // No CSP violation or script error on any page.
    expect(consoleErrors).toEqual([]);
    await carol.close();
  });

  it('a fresh browser opening My agents is taken through the sign-in (picker, demo IdP) and ends on My agents', async () => {
    const fresh = await newContext();
    const tab = await fresh.newPage();
    const consoleErrors: string[] = [];
    tab.on('console', (message) => { if (message.type() === 'error') consoleErrors.push(message.text()); });
    await tab.goto(`${gw.url}/account/agents`);
    // Sent to the gateway's own sign-in as its account client, and to the sign-in page.
    await tab.waitForURL(/\/interaction\/[\w-]+$/);
    await expect(tab.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Sign in');
    await shot(tab, '15-account-sign-in-picker');
    await tab.getByRole('button', { name: 'Sign in with Demo IdP' }).click();
    await tab.waitForURL(/\/demo-idp\/interaction\//);
    await tab.getByRole('button', { name: 'Alice Finance' }).click();
    await tab.waitForURL(`${gw.url}/account/agents`);
    await expect(tab.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Agents acting for you');
    await expect(tab.locator('main > p').first().textContent()).resolves.toContain('Signed in as Alice Finance');
    await shot(tab, '16-account-signed-in');
    expect((await fresh.cookies()).map((cookie) => cookie.name)).not.toContain('agentgate.signin');
    expect(consoleErrors).toEqual([]);
    await fresh.close();
  });
});
