// Consent (issue 9): an agent registered with `consent: required` gets no token for a person until
// the person approved exactly that scope set at that resource on the consent page; the exchange
// (RFC 8693, no user interaction) answers `consent_required` with the page's URL. A denial is
// recorded and answered as access_denied. The page's form is CSRF-protected (synchronizer token
// bound to the session cookie) and needs no script; the CSP allows no inline script or style.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBrowser } from '../support/browser.ts';
import { basic, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { AT, EXCHANGE, post, signInPerson } from '../exchange/fixture.ts';
import type { SignedInPerson } from '../exchange/fixture.ts';

const ERP = 'https://erp.example.test';
const SECRET = 'careful-agent-secret-0123456789abcdef';
const OTHER_SECRET = 'other-agent-secret-0123456789abcdefgh';
let gw: TestGateway;
let alice: SignedInPerson;
let bob: SignedInPerson;

const exchange = (person: SignedInPerson, scope: string, agent = 'careful-agent', secret = SECRET) => post(`${gw.url}/token`, {
  grant_type: EXCHANGE, subject_token_type: AT, subject_token: person.accessToken, scope, audience: ERP,
}, { authorization: basic(agent, secret) });

const hidden = (html: string, name: string) => new RegExp(`name="${name}" value="([^"]*)"`).exec(html)?.[1]?.replace(/&amp;/g, '&');

beforeAll(async () => {
  gw = await startGateway({
    config: {
      resources: [{
        id: ERP, name: 'Acme ERP', tokenTtl: '5m',
        scopes: [{ name: 'erp:read', description: 'read invoices and orders' }, 'erp:approve'],
      }],
      roles: { finance: { scopes: ['erp:read', 'erp:approve'] } },
      roleMappings: [{ idp: 'dev', group: 'Finance', roles: ['finance'] }],
      agents: [
        { clientId: 'careful-agent', name: 'Careful agent', consent: 'required', auth: { method: 'client_secret_basic', secret: SECRET }, scopes: ['erp:read', 'erp:approve'], audiences: [ERP], maxTokenTtl: '2m' },
        { clientId: 'other-agent', auth: { method: 'client_secret_basic', secret: OTHER_SECRET }, scopes: ['erp:read'], audiences: [ERP] },
      ],
      apps: [{ clientId: 'agent-console', redirectUris: ['http://127.0.0.1/cb'], audiences: [] }],
    },
  });
  alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
  bob = await signInPerson(gw, { email: 'bob@example.test', groups: 'Finance' });
});
afterAll(async () => {
  await gw?.close();
});

describe('consent: required', () => {
  let consentUri = '';

  it('the exchange answers consent_required with the consent page URL, and audits it', async () => {
    const res = await exchange(alice, 'erp:read');
    expect(res.status).toBe(400);
    expect(res.headers.get('cache-control')).toBe('no-store');
    consentUri = `${gw.url}/account/consent?${new URLSearchParams({ agent: 'careful-agent', audience: ERP, scope: 'erp:read' })}`;
    expect(res.body).toEqual({
      error: 'consent_required',
      error_description: `the person has not yet approved agent "careful-agent" for erp:read at ${ERP}; send them to consent_uri, then retry`,
      consent_uri: consentUri,
    });
    const [entry] = (await gw.store.readStream('audit', 1)).map((e) => e.fields);
    expect(entry).toMatchObject({ event: 'token.exchange_refused', agent: 'careful-agent', error: 'consent_required', outcome: 'deny', sub: 'dev|alice@example.test' });
  });

  it('an agent without consent: required is not asked (implicit, the default)', async () => {
    expect((await exchange(alice, 'erp:read', 'other-agent', OTHER_SECRET)).status).toBe(200);
  });

  it('the consent page needs a signed-in person: a GET is sent to sign in and back to this link, a POST refused', async () => {
    const browser = createBrowser();
    const res = await browser.get(consentUri);
    expect(res.status).toBe(303);
    expect(res.location).toMatch(new RegExp(`^${gw.url}/auth\\?client_id=agentgate-account&`));
    const flight = browser.jar.get('agentgate.signin')!;
    expect(JSON.parse(decodeURIComponent(flight.slice(0, flight.lastIndexOf('.')))).returnTo).toBe(consentUri.slice(gw.url.length));
    const post = await createBrowser().postForm(`${gw.url}/account/consent`, { agent: 'careful-agent', audience: ERP, scope: 'erp:read', decision: 'approve' });
    expect(post.status).toBe(401);
    expect(post.body).toContain('You are not signed in at the gateway');
    expect(post.body).toMatch(/<code>[\w-]+<\/code>/);
  });

  it('shows which agent, which scopes in plain words, for how long — with a CSRF token and a strict CSP', async () => {
    const res = await alice.browser.get(consentUri);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'none'; style-src 'sha256-[\w+/=]+'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'$/);
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(res.body).toContain('<html lang="en">');
    expect(res.body).not.toContain('<script');
    expect(res.body).toContain('<h1>Allow Careful agent to act for you?</h1>');
    expect(res.body).toContain('<strong>Acme ERP</strong>');
    expect(res.body).toContain('<li>read invoices and orders <span class="note">(<code>erp:read</code>)</span></li>');
    expect(res.body).toContain('each token it gets lasts at most 2m');
    expect(hidden(res.body, 'csrf')).toMatch(/^[\w-]{43}$/);
    expect(hidden(res.body, 'scope')).toBe('erp:read');
  });

  it('refuses a POST without the CSRF token, or with another session\'s, and changes nothing', async () => {
    const form = { agent: 'careful-agent', audience: ERP, scope: 'erp:read', decision: 'approve' };
    const missing = await alice.browser.postForm(`${gw.url}/account/consent`, form);
    expect(missing.status).toBe(403);
    expect(missing.body).toContain('its security token is missing or wrong');
    expect(missing.body).toMatch(/<code>[\w-]+<\/code>/);
    const bobsToken = hidden((await bob.browser.get(consentUri)).body, 'csrf')!;
    const foreign = await alice.browser.postForm(`${gw.url}/account/consent`, { ...form, csrf: bobsToken });
    expect(foreign.status).toBe(403);
    expect((await exchange(alice, 'erp:read')).body.error).toBe('consent_required');
  });

  it('approving lets the agent exchange; the decision is audited and remembered per scope set', async () => {
    const csrf = hidden((await alice.browser.get(consentUri)).body, 'csrf')!;
    const res = await alice.browser.postForm(`${gw.url}/account/consent`, { csrf, agent: 'careful-agent', audience: ERP, scope: 'erp:read', decision: 'approve' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('<h1>Careful agent may act for you</h1>');
    const [entry] = (await gw.store.readStream('audit', 1)).map((e) => e.fields);
    expect(entry).toMatchObject({ event: 'consent.granted', agent: 'careful-agent', audience: ERP, scopes: 'erp:read', sub: 'dev|alice@example.test' });
    const granted = await exchange(alice, 'erp:read');
    expect(granted.status).toBe(200);
    expect(granted.body.scope).toBe('erp:read');
    // Another scope set is another question; another person is asked themselves.
    expect((await exchange(alice, 'erp:read erp:approve')).body.consent_uri).toBe(`${gw.url}/account/consent?${new URLSearchParams({ agent: 'careful-agent', audience: ERP, scope: 'erp:approve erp:read' })}`);
    expect((await exchange(bob, 'erp:read')).body.error).toBe('consent_required');
    // The page now says what was decided before.
    expect((await alice.browser.get(consentUri)).body).toContain('You allowed this before');
  });

  it('denying is recorded: the exchange answers access_denied with where to change one\'s mind', async () => {
    const csrf = hidden((await bob.browser.get(consentUri)).body, 'csrf')!;
    const res = await bob.browser.postForm(`${gw.url}/account/consent`, { csrf, agent: 'careful-agent', audience: ERP, scope: 'erp:read', decision: 'deny' });
    expect(res.status).toBe(200);
    expect(res.body).toContain('<h1>Careful agent will not act for you</h1>');
    const refused = await exchange(bob, 'erp:read');
    expect(refused.status).toBe(403);
    expect(refused.body).toEqual({
      error: 'access_denied',
      error_description: `the person declined agent "careful-agent" for erp:read at ${ERP}; they can change their mind at consent_uri`,
      consent_uri: consentUri,
    });
    const [entry] = (await gw.store.readStream('audit', 2)).map((e) => e.fields);
    expect(entry).toMatchObject({ event: 'token.exchange_refused', error: 'access_denied' });
  });

  it('refuses links that name an unknown agent, a foreign resource or scopes the agent lacks', async () => {
    for (const query of [
      { agent: 'nobody', audience: ERP, scope: 'erp:read' },
      { agent: 'careful-agent', audience: 'https://elsewhere.example.test', scope: 'erp:read' },
      { agent: 'other-agent', audience: ERP, scope: 'erp:approve' },
      { agent: 'careful-agent', audience: ERP, scope: '' },
    ]) {
      const res = await alice.browser.get(`${gw.url}/account/consent?${new URLSearchParams(query)}`);
      expect(res.status).toBe(400);
    }
  });
});
