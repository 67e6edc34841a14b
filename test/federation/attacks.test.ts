// Attacks on the federated sign-in, through the gateway against an Okta peer that lies on demand
// (tamperingOf): forged or misdirected ID tokens (nonce, exp, aud, iss, a foreign key, alg none,
// HS256 keyed by the client secret), replayed and cross-browser callbacks, a response delivered
// to the wrong IdP's callback (mix-up, RFC 9700 §4.4) or naming another issuer (RFC 9207), an IdP
// that refuses, and an IdP that is down. Each refusal: the exact status and message, the
// `federation.login_failed` audit line with its code and the page's correlation id, and no
// enterprise session for the person.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JWTPayload } from 'jose';

import { APP_REDIRECT, federatedSignIn, redeem } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, pkcePair } from '../support/peers/browser.ts';
import type { Hop, PeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { tamperingOf } from '../support/peers/oidc-issuer.ts';
import type { PeerTampering, TamperedSigning } from '../support/peers/oidc-issuer.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';

const internet = createLoopbackInternet();
const CLIENT = { client_id: '0oa-gateway', client_secret: 'okta-client-secret-0123456789' };
const GLOBEX_CLIENT = { client_id: '0oa-globex-gateway', client_secret: 'globex-client-secret-0123456789' };
const alice = {
  username: 'alice@acme.com', password: 'alice-password', sub: '00u1alice0000000001', email: 'alice@acme.com',
  name: 'Alice Example', groups: ['Everyone', 'Finance'],
};
const ACCOUNT = `okta|${alice.sub}`;
let gw: TestGateway;
let okta: OktaPeer;
let globex: OktaPeer;
let tamper: PeerTampering;

const oktaIdp = {
  id: 'okta', type: 'oidc', preset: 'okta', issuer: 'https://acme.okta.com/oauth2/default',
  clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, domains: ['acme.com'],
};
const globexIdp = {
  id: 'globex', type: 'oidc', preset: 'okta', issuer: 'https://globex.okta.com',
  clientId: GLOBEX_CLIENT.client_id, clientSecret: GLOBEX_CLIENT.client_secret, domains: ['globex.com'],
};
const oktaClient = (...gateways: TestGateway[]) => ({
  ...CLIENT,
  redirect_uris: gateways.map((g) => `${g.url}/federation/oidc/okta/callback`),
  post_logout_redirect_uris: gateways.map((g) => `${g.url}/federation/oidc/okta/logged-out`),
});

beforeAll(async () => {
  gw = await startGateway({
    fetch: internet.fetch,
    config: { devLogin: { enabled: false }, identityProviders: [oktaIdp, globexIdp] },
  });
  okta = await startOktaPeer({ internet, clients: [oktaClient(gw)], users: [alice] });
  globex = await startOktaPeer({
    internet,
    issuer: 'https://globex.okta.com',
    clients: [{ ...GLOBEX_CLIENT, redirect_uris: [`${gw.url}/federation/oidc/globex/callback`] }],
    users: [{ ...alice, username: 'alice@globex.com', email: 'alice@globex.com' }],
  });
  tamper = tamperingOf(okta);
});
afterAll(async () => {
  await gw?.close();
  await okta?.close();
  await globex?.close();
});

function authUrl(gateway: TestGateway, idp: string): string {
  const { challenge } = pkcePair();
  return `${gateway.url}/auth?${new URLSearchParams({
    client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile',
    code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state', idp_hint: idp,
  })}`;
}

/** Walks a sign-in through the IdP up to its redirect back: the callback URL, not yet delivered. */
async function untilCallback(browser: PeerBrowser, idp = 'okta'): Promise<string> {
  const callback = `${gw.url}/federation/oidc/${idp}/callback`;
  const walk = await browser.followUntil(authUrl(gw, idp), (location) => location.startsWith(callback), {
    username: idp === 'okta' ? alice.username : 'alice@globex.com', password: alice.password,
  });
  return walk.location!;
}

const decode = (html: string) => html.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

interface Refusal { status: number; errorCode: string; message: string; idp?: string }

/**
 * Runs `attempt` and checks the refusal: status, the message on the page, one
 * federation.login_failed line (whose reqId is the page's correlation id), and no new session.
 */
async function expectRefused(attempt: () => Promise<Hop>, refusal: Refusal): Promise<Hop> {
  const sessionsBefore = await gw.gateway.sessions.findBySubject(ACCOUNT);
  const mark = gw.logs.length;
  const res = await attempt();
  expect(res.status).toBe(refusal.status);
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.getSetCookie().some((cookie) => cookie.startsWith('agentgate.sid='))).toBe(false);
  expect(decode(/<p role="alert">([^<]*)<\/p>/.exec(res.body)?.[1] ?? res.body)).toBe(refusal.message);
  const failures = gw.logs.slice(mark).map((line) => JSON.parse(line) as Record<string, unknown>)
    .filter((entry) => entry.event === 'federation.login_failed');
  expect(failures).toHaveLength(1);
  expect(failures[0]).toMatchObject({ errorCode: refusal.errorCode, ...(refusal.idp ? { idp: refusal.idp } : {}) });
  expect(res.body).toContain(`<code>${String(failures[0]!.reqId)}</code>`);
  expect(await gw.gateway.sessions.findBySubject(ACCOUNT)).toEqual(sessionsBefore);
  return res;
}

const now = () => Math.floor(Date.now() / 1000);

describe('forged or misdirected ID tokens', () => {
  it('accepts an ID token re-signed with the peer key and unchanged claims (control for the cases below)', async () => {
    const before = await gw.gateway.sessions.findBySubject(ACCOUNT);
    tamper.tamperNextIdToken();
    const signIn = await federatedSignIn(gw, internet, { username: alice.username, password: alice.password, idpHint: 'okta' });
    expect((await redeem(gw, signIn)).status).toBe(200);
    expect(await gw.gateway.sessions.findBySubject(ACCOUNT)).toHaveLength(before.length + 1);
  });

  it.each<[string, (claims: JWTPayload) => void, TamperedSigning, string]>([
    ['with a wrong nonce', (claims) => { claims.nonce = 'nonce-of-another-sign-in'; }, 'peer',
      'the ID token from "okta" failed validation: unexpected nonce'],
    ['that has expired', (claims) => { claims.iat = now() - 7200; claims.exp = now() - 3600; }, 'peer',
      'the ID token from "okta" failed validation: it has expired'],
    ['issued for another audience', (claims) => { claims.aud = '0oa-someone-else'; }, 'peer',
      'the ID token from "okta" failed validation: unexpected aud'],
    ['from another issuer', (claims) => { claims.iss = 'https://evil.okta.com/oauth2/default'; }, 'peer',
      'the ID token from "okta" failed validation: unexpected iss'],
    ['signed by a foreign key under the peer\'s kid', () => undefined, 'foreign-key',
      'the ID token from "okta" is not signed by one of its published keys'],
    ['with alg none', () => undefined, 'none',
      'the ID token from "okta" is signed with an algorithm it does not publish ("none"; expected RS256)'],
    ['signed HS256 with the client secret (algorithm confusion)', () => undefined, 'hs256-with-client-secret',
      'the ID token from "okta" is signed with an algorithm it does not publish ("HS256"; expected RS256)'],
  ])('refuses an ID token %s', async (_what, change, sign, message) => {
    const browser = createPeerBrowser(internet);
    const callback = await untilCallback(browser);
    tamper.tamperNextIdToken(change, { sign });
    await expectRefused(() => browser.get(callback), { status: 400, errorCode: 'ERR_FEDERATION_ID_TOKEN_INVALID', message, idp: 'okta' });
  });
});

describe('replayed and misdelivered responses', () => {
  it('refuses the same callback a second time (state used once); the first one signed in', async () => {
    const browser = createPeerBrowser(internet);
    const callback = await untilCallback(browser);
    const before = await gw.gateway.sessions.findBySubject(ACCOUNT);
    const first = await browser.followUntil(callback, (location) => location.startsWith(APP_REDIRECT));
    expect(new URL(first.location!).searchParams.get('code')).toBeTruthy();
    expect(await gw.gateway.sessions.findBySubject(ACCOUNT)).toHaveLength(before.length + 1);

    await expectRefused(() => browser.get(callback), {
      status: 400, errorCode: 'ERR_FEDERATION_STATE', idp: 'okta',
      message: 'this sign-in has expired or was already completed; start again from the application',
    });
  });

  it('refuses a callback delivered in another browser (no binding cookie)', async () => {
    const callback = await untilCallback(createPeerBrowser(internet));
    const other = createPeerBrowser(internet);
    await expectRefused(() => other.get(callback), {
      status: 400, errorCode: 'ERR_FEDERATION_STATE', idp: 'okta',
      message: 'this sign-in was started in another browser; start again from the application',
    });
  });

  it('refuses a response for the Okta sign-in delivered to the globex callback (mix-up), and never redeems the code there', async () => {
    const browser = createPeerBrowser(internet);
    const callback = new URL(await untilCallback(browser));
    const misdelivered = `${gw.url}/federation/oidc/globex/callback${callback.search}`;
    const globexTokenRequests = () => globex.host.requests.filter((request) => request.url.startsWith('https://globex.okta.com/oauth2/v1/token')).length;
    const tokenRequestsBefore = globexTokenRequests();
    await expectRefused(() => browser.get(misdelivered), {
      status: 400, errorCode: 'ERR_FEDERATION_STATE', idp: 'globex',
      message: 'this sign-in response arrived at the wrong identity provider callback',
    });
    expect(globexTokenRequests()).toBe(tokenRequestsBefore);
  });

  it('refuses an authorization response naming another issuer (RFC 9207 iss)', async () => {
    const browser = createPeerBrowser(internet);
    tamper.tamperNextAuthorizationResponse((params) => { params.set('iss', 'https://globex.okta.com'); });
    const callback = await untilCallback(browser);
    expect(new URL(callback).searchParams.get('iss')).toBe('https://globex.okta.com');
    await expectRefused(() => browser.get(callback), {
      status: 400, errorCode: 'ERR_FEDERATION_ID_TOKEN_INVALID', idp: 'okta',
      message: 'the response claims to come from a different issuer than "okta" (mix-up defence, RFC 9207)',
    });
  });
});

describe('an IdP that refuses or is down', () => {
  it('shows the IdP\'s own error when it refuses the sign-in (error=access_denied)', async () => {
    const browser = createPeerBrowser(internet);
    tamper.tamperNextAuthorizationResponse((params) => {
      params.delete('code');
      params.set('error', 'access_denied');
      params.set('error_description', 'the user cancelled the sign-in');
    });
    const callback = await untilCallback(browser);
    await expectRefused(() => browser.get(callback), {
      status: 400, errorCode: 'ERR_FEDERATION_IDP_ERROR', idp: 'okta',
      message: 'the identity provider "okta" refused the sign-in: access_denied (the user cancelled the sign-in)',
    });
  });

  it('answers 502 when the IdP goes down between the redirect and the code exchange', async () => {
    const browser = createPeerBrowser(internet);
    const callback = await untilCallback(browser);
    await okta.stop();
    try {
      await expectRefused(() => browser.get(callback), {
        status: 502, errorCode: 'ERR_FEDERATION_IDP_UNREACHABLE', idp: 'okta',
        message: 'the identity provider "okta" could not be reached; try again shortly',
      });
    } finally {
      await okta.start();
    }
  });

  it('answers 502 when the IdP cannot be reached at sign-in, and signs in once it is back (the failed discovery is not cached)', async () => {
    // A gateway that has not discovered Okta yet.
    const fresh = await startGateway({ fetch: internet.fetch, config: { devLogin: { enabled: false }, identityProviders: [oktaIdp] } });
    try {
      await okta.setClient(oktaClient(gw, fresh));
      const before = await fresh.gateway.sessions.findBySubject(ACCOUNT);
      await okta.stop();
      const browser = createPeerBrowser(internet);
      let down: Hop;
      try {
        const mark = fresh.logs.length;
        down = (await browser.followUntil(authUrl(fresh, 'okta'), () => false, { throwOnStop: false })).last;
        const failures = fresh.logs.slice(mark).map((line) => JSON.parse(line) as Record<string, unknown>)
          .filter((entry) => entry.event === 'federation.login_failed');
        expect(failures).toMatchObject([{ errorCode: 'ERR_FEDERATION_IDP_UNREACHABLE' }]);
        expect(down.body).toContain(`<code>${String(failures[0]!.reqId)}</code>`);
      } finally {
        await okta.start();
      }
      expect(down.status).toBe(502);
      expect(decode(/<p role="alert">([^<]*)<\/p>/.exec(down.body)?.[1] ?? '')).toBe('the identity provider "okta" could not be reached; try again shortly');
      expect(await fresh.gateway.sessions.findBySubject(ACCOUNT)).toEqual(before);

      const again = await browser.followUntil(authUrl(fresh, 'okta'), (location) => location.startsWith(APP_REDIRECT), {
        username: alice.username, password: alice.password,
      });
      expect(new URL(again.location!).searchParams.get('code')).toBeTruthy();
      expect(await fresh.gateway.sessions.findBySubject(ACCOUNT)).toHaveLength(before.length + 1);
    } finally {
      await okta.setClient(oktaClient(gw));
      await fresh.close();
    }
  });
});
