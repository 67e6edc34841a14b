// Federated sign-in through the gateway with the generic preset (claim paths configured by the
// operator) against an Okta peer, and the sign-in page shown when two IdPs are configured and the
// app gives no hint: a button per IdP, home-realm discovery from the email typed, and the same
// page (revealing nothing) for an unknown domain.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { pkcePair } from '../support/browser.ts';
import { APP_REDIRECT, federatedSignIn, redeem } from '../support/federation.ts';
import type { FederatedSignIn } from '../support/federation.ts';
import { postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, parseForms } from '../support/peers/browser.ts';
import type { PeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';

const internet = createLoopbackInternet();
const CORP = { client_id: '0oa-corp-gateway', client_secret: 'corp-client-secret-0123456789' };
const GLOBEX = { client_id: '0oa-globex-gateway', client_secret: 'globex-client-secret-0123456789' };
// The login name differs from the mailbox: the operator chose the login as subject and email.
const jdoe = {
  username: 'jdoe@acme.com', password: 'pw-jdoe', sub: '00u1jdoe000000000001', email: 'john.doe@mail.acme-corp.example',
  name: 'John Doe', givenName: 'John', groups: ['Everyone', 'Engineering'],
};
const hank = { username: 'hank@globex.com', password: 'pw-hank', email: 'hank@globex.com', name: 'Hank Scorpio', groups: ['Everyone'] };

let gw: TestGateway;
let corp: OktaPeer;
let globex: OktaPeer;

beforeAll(async () => {
  corp = await startOktaPeer({ internet, issuer: 'https://acme.okta.com/oauth2/default', clients: [], users: [jdoe] });
  globex = await startOktaPeer({ internet, issuer: 'https://globex.okta.com', clients: [], users: [hank] });
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      identityProviders: [
        {
          id: 'corp', type: 'oidc', preset: 'generic', displayName: 'Acme Corp',
          issuer: 'https://acme.okta.com/oauth2/default',
          clientId: CORP.client_id, clientSecret: CORP.client_secret, domains: ['acme.com'],
          scopes: ['openid', 'email', 'profile', 'groups'],
          claims: { subject: 'preferred_username', email: 'preferred_username', name: 'given_name', groups: 'groups' },
        },
        {
          id: 'globex', type: 'oidc', preset: 'okta', displayName: 'Globex',
          issuer: 'https://globex.okta.com',
          clientId: GLOBEX.client_id, clientSecret: GLOBEX.client_secret, domains: ['globex.com'],
        },
      ],
      roles: { engineer: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'corp', group: 'Engineering', roles: ['engineer'] }],
    },
  });
  for (const [peer, client, id] of [[corp, CORP, 'corp'], [globex, GLOBEX, 'globex']] as const) {
    await peer.setClient({
      ...client,
      redirect_uris: [`${gw.url}/federation/oidc/${id}/callback`],
      post_logout_redirect_uris: [`${gw.url}/federation/oidc/${id}/logged-out`],
    });
  }
});
afterAll(async () => {
  await gw?.close();
  await corp?.close();
  await globex?.close();
});

/** Redeems the code and returns the gateway's tokens with the enterprise session they belong to. */
async function completed(signIn: FederatedSignIn) {
  const tokens = await redeem(gw, signIn);
  expect(tokens.status).toBe(200);
  const introspection = await postForm(`${gw.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: 'agent-console' });
  const session = await gw.gateway.sessions.get(String(introspection.body.sid));
  expect(session).toBeDefined();
  return { idToken: tokens.idToken!, session: session! };
}

describe('the generic preset', () => {
  it('builds the identity from the configured claim paths', async () => {
    const { idToken, session } = await completed(await federatedSignIn(gw, internet, { username: jdoe.username, password: jdoe.password, idpHint: 'corp' }));
    expect(session.accountId).toBe('corp|jdoe@acme.com');
    expect(session.roles).toEqual(['engineer']);
    expect(session.identity).toEqual({
      idp: 'corp',
      subject: 'jdoe@acme.com',
      email: 'jdoe@acme.com',
      emailVerified: true,
      name: 'John',
      groups: [{ idp: 'corp', id: 'Everyone' }, { idp: 'corp', id: 'Engineering' }],
      groupsComplete: true,
      amr: ['pwd'],
      authTime: expect.any(Number) as number,
      attributes: {},
    });
    // Upstream logout still keys on the IdP's own sub.
    expect(session.upstream).toMatchObject({ idp: 'corp', sub: jdoe.sub });
    expect(idToken).toMatchObject({
      sub: 'corp|jdoe@acme.com', idp: 'corp', email: 'jdoe@acme.com', name: 'John',
      roles: ['engineer'], groups: ['Everyone', 'Engineering'],
    });
  });
});

describe('the sign-in page with two identity providers', () => {
  /** Starts a sign-in without hints; returns the browser at the sign-in page. */
  async function openPicker(): Promise<{ browser: PeerBrowser; verifier: string; page: Awaited<ReturnType<PeerBrowser['get']>> }> {
    const browser = createPeerBrowser(internet);
    const { verifier, challenge } = pkcePair();
    const auth = await browser.get(`${gw.url}/auth?${new URLSearchParams({
      client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile groups',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state', nonce: 'app-nonce',
    })}`);
    expect(auth.status).toBe(303);
    expect(auth.location).toMatch(new RegExp(`^${gw.url}/interaction/[A-Za-z0-9_-]+$`));
    const page = await browser.get(auth.location!);
    return { browser, verifier, page };
  }

  it('offers a button per IdP and an email field', async () => {
    const { page } = await openPicker();
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.body).toContain('<button type="submit" name="idp" value="corp">Sign in with Acme Corp</button>');
    expect(page.body).toContain('<button type="submit" name="idp" value="globex">Sign in with Globex</button>');
    expect(page.body.match(/Sign in with /g)).toHaveLength(2);
    const [form] = parseForms(page.body, page.url);
    expect(form).toMatchObject({ method: 'POST', action: `${page.url}/choose`, inputs: ['email'] });
  });

  it('routes a known email domain to its IdP, forwarding the email as login_hint, and completes', async () => {
    const { browser, verifier, page } = await openPicker();
    const [form] = parseForms(page.body, page.url);
    const chosen = await browser.postForm(form!.action, { email: 'jdoe@acme.com' });
    expect(chosen.status).toBe(303);
    const authorize = new URL(chosen.location!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe('https://acme.okta.com/oauth2/default/v1/authorize');
    expect(authorize.searchParams.get('login_hint')).toBe('jdoe@acme.com');
    expect(authorize.searchParams.get('client_id')).toBe(CORP.client_id);

    const walk = await browser.followUntil(chosen.location!, (url) => url.startsWith(APP_REDIRECT), { username: jdoe.username, password: jdoe.password });
    const { session } = await completed({ browser, walk, redirect: new URL(walk.location!), verifier });
    expect(session.accountId).toBe('corp|jdoe@acme.com');
  });

  it('routes a button press to that IdP', async () => {
    const { browser, page } = await openPicker();
    const [form] = parseForms(page.body, page.url);
    const chosen = await browser.postForm(form!.action, { email: '', idp: 'globex' });
    expect(chosen.status).toBe(303);
    const authorize = new URL(chosen.location!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe('https://globex.okta.com/oauth2/v1/authorize');
    expect(authorize.searchParams.get('client_id')).toBe(GLOBEX.client_id);
    expect(authorize.searchParams.has('login_hint')).toBe(false);
  });

  it('answers an unknown domain with the same page and a notice, revealing no configured domain', async () => {
    const { browser, page } = await openPicker();
    const [form] = parseForms(page.body, page.url);
    const again = await browser.postForm(form!.action, { email: 'someone@unknown.example' });
    expect(again.status).toBe(200);
    expect(again.headers.get('cache-control')).toBe('no-store');
    expect(again.body).toContain('<p role="status">Choose how your organization signs in.</p>');
    expect(again.body).toContain('value="someone@unknown.example"');
    expect(again.body).toContain('Sign in with Acme Corp');
    expect(again.body).toContain('Sign in with Globex');
    for (const domain of ['acme.com', 'globex.com', 'okta.com']) expect(again.body).not.toContain(domain);
    // Nothing left the gateway: the page is the same interaction's sign-in page.
    expect(again.location).toBeNull();
    expect(parseForms(again.body, again.url)[0]?.action).toBe(form!.action);
  });
});
