// Ending a federated session: RP-initiated logout at the gateway (OIDC RP-Initiated Logout 1.0)
// ends the enterprise session and, unless `upstreamLogout: false`, follows the person to the
// IdP's end_session_endpoint and back to the app; OIDC Back-Channel Logout 1.0 by `sub` (no
// `sid`) ends every session of that person.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { federatedSignIn, redeem } from '../support/federation.ts';
import { postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, parseForms } from '../support/peers/browser.ts';
import type { PeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';

const internet = createLoopbackInternet();
const SIGNED_OUT = 'http://127.0.0.1/signed-out';
const CLIENT = { client_id: '0oa-gateway', client_secret: 'okta-client-secret-0123456789' };
const GLOBEX_CLIENT = { client_id: '0oa-globex-gateway', client_secret: 'globex-client-secret-0123456789' };
const alice = { username: 'alice@acme.com', password: 'alice-password', sub: '00u1alice0000000001', email: 'alice@acme.com', name: 'Alice Example' };
const bob = { username: 'bob@acme.com', password: 'bob-password', sub: '00u1bob000000000001', email: 'bob@acme.com', name: 'Bob Example' };
let gw: TestGateway;
let okta: OktaPeer;
let globex: OktaPeer;

beforeAll(async () => {
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      apps: [{
        clientId: 'agent-console', redirectUris: ['http://127.0.0.1/cb'], postLogoutRedirectUris: [SIGNED_OUT],
        audiences: ['https://erp.example.test'],
      }],
      identityProviders: [
        {
          id: 'okta', type: 'oidc', preset: 'okta', issuer: 'https://acme.okta.com/oauth2/default',
          clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret,
        },
        {
          id: 'globex', type: 'oidc', preset: 'okta', issuer: 'https://globex.okta.com', upstreamLogout: false,
          clientId: GLOBEX_CLIENT.client_id, clientSecret: GLOBEX_CLIENT.client_secret,
        },
      ],
    },
  });
  okta = await startOktaPeer({
    internet,
    clients: [{
      ...CLIENT,
      redirect_uris: [`${gw.url}/federation/oidc/okta/callback`],
      post_logout_redirect_uris: [`${gw.url}/federation/oidc/okta/logged-out`],
      backchannel_logout_uri: `${gw.url}/federation/oidc/okta/backchannel-logout`,
    }],
    users: [alice, bob],
  });
  globex = await startOktaPeer({
    internet,
    issuer: 'https://globex.okta.com',
    clients: [{
      ...GLOBEX_CLIENT,
      redirect_uris: [`${gw.url}/federation/oidc/globex/callback`],
      post_logout_redirect_uris: [`${gw.url}/federation/oidc/globex/logged-out`],
    }],
    users: [alice],
  });
});
afterAll(async () => {
  await gw?.close();
  await okta?.close();
  await globex?.close();
});

async function signedIn(idp: string, user: { username: string; password: string }, browser?: PeerBrowser) {
  const signIn = await federatedSignIn(gw, internet, { ...user, idpHint: idp, ...(browser ? { browser } : {}) });
  const tokens = await redeem(gw, signIn);
  expect(tokens.status).toBe(200);
  const accessToken = String(tokens.body.access_token);
  const introspect = async () => (await postForm(`${gw.url}/token/introspection`, { token: accessToken, client_id: 'agent-console' })).body;
  const { sid } = await introspect();
  expect(sid).toMatch(/.+/);
  return { browser: signIn.browser, idToken: String(tokens.body.id_token), sid: String(sid), introspect };
}

/** Asks the gateway to sign out (RP-initiated logout) and confirms on its page, as the person would. */
async function confirmLogout(browser: PeerBrowser, idToken: string) {
  const params = new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: SIGNED_OUT, state: 'bye' });
  const page = await browser.get(`${gw.url}/session/end?${params}`);
  expect(page.status).toBe(200);
  const [form] = parseForms(page.body, page.url);
  expect(form!.action).toBe(`${gw.url}/session/end/confirm`);
  return browser.postForm(form!.action, { ...form!.fields, logout: 'yes' });
}

describe('RP-initiated logout of a federated session', () => {
  it('ends the enterprise session, signs out at Okta (id_token_hint, logged-out, state) and lands on the app', async () => {
    const { browser, sid, idToken, introspect } = await signedIn('okta', alice);
    expect(await introspect()).toMatchObject({ active: true, sub: `okta|${alice.sub}` });
    const upstreamIdToken = (await gw.gateway.sessions.get(sid))!.upstream.idToken!;
    const oktaSid = okta.sessionSid(alice.username, CLIENT.client_id);
    expect(oktaSid).toMatch(/.+/);
    expect(browser.cookies(gw.url).map((cookie) => cookie.name)).toContain('agentgate.sid');

    const done = await confirmLogout(browser, idToken);
    expect(done.status).toBe(303);
    expect(done.headers.getSetCookie().some((cookie) => /^agentgate\.sid=;.*Max-Age=0/.test(cookie))).toBe(true);
    expect(browser.cookies(gw.url).map((cookie) => cookie.name)).not.toContain('agentgate.sid');
    // The enterprise session is over before the browser even leaves for Okta.
    expect(await introspect()).toEqual({ active: false });
    expect(await gw.gateway.sessions.get(sid)).toBeUndefined();
    expect(await gw.gateway.sessions.isEnded(sid)).toBe(true);

    const toOkta = new URL(done.location!);
    expect(`${toOkta.origin}${toOkta.pathname}`).toBe('https://acme.okta.com/oauth2/default/v1/logout');
    expect(toOkta.searchParams.get('id_token_hint')).toBe(upstreamIdToken);
    expect(decodeJwt(upstreamIdToken)).toMatchObject({ iss: 'https://acme.okta.com/oauth2/default', aud: CLIENT.client_id, sub: alice.sub });
    expect(toOkta.searchParams.get('post_logout_redirect_uri')).toBe(`${gw.url}/federation/oidc/okta/logged-out`);
    const state = toOkta.searchParams.get('state');
    expect(state).toMatch(/^[\w-]{16,}$/);

    const walk = await browser.followUntil(done.location!, (location) => location.startsWith(SIGNED_OUT));
    expect(walk.location).toBe(`${SIGNED_OUT}?state=bye`);
    const loggedOut = walk.hops.find((hop) => hop.url.startsWith(`${gw.url}/federation/oidc/okta/logged-out`));
    expect(new URL(loggedOut!.url).searchParams.get('state')).toBe(state);
    expect(loggedOut!.status).toBe(303);
    // Okta's session is over too.
    expect(okta.sessionSid(alice.username, CLIENT.client_id)).not.toBe(oktaSid);

    // The way back is used once: the same state no longer redirects anywhere.
    const again = await browser.get(loggedOut!.url);
    expect(again.status).toBe(200);
    expect(again.location).toBeNull();
    expect(again.body).toContain('You are signed out');
  });

  it('never redirects from logged-out without a state it issued', async () => {
    const browser = createPeerBrowser(internet);
    for (const query of ['', '?state=forged']) {
      const res = await browser.get(`${gw.url}/federation/oidc/okta/logged-out${query}`);
      expect(res.status).toBe(200);
      expect(res.location).toBeNull();
      expect(res.body).toContain('You are signed out');
    }
  });

  it('with upstreamLogout: false, goes straight back to the app and leaves the IdP alone', async () => {
    const { browser, idToken, introspect } = await signedIn('globex', alice);
    const logoutRequests = () => globex.host.requests.filter((request) => request.url.startsWith('https://globex.okta.com/oauth2/v1/logout')).length;
    const before = logoutRequests();
    const done = await confirmLogout(browser, idToken);
    expect(done.status).toBe(303);
    expect(done.location).toBe(`${SIGNED_OUT}?state=bye`);
    expect(done.headers.getSetCookie().some((cookie) => /^agentgate\.sid=;.*Max-Age=0/.test(cookie))).toBe(true);
    expect(await introspect()).toEqual({ active: false });
    expect(logoutRequests()).toBe(before);
    expect(globex.sessionSid(alice.username, GLOBEX_CLIENT.client_id)).toMatch(/.+/);
  });
});

describe('back-channel logout by sub', () => {
  it('ends every session of the person the logout token names, and no one else\'s', async () => {
    const laptop = await signedIn('okta', alice);
    const phone = await signedIn('okta', alice, createPeerBrowser(internet));
    const other = await signedIn('okta', bob);
    expect(laptop.sid).not.toBe(phone.sid);

    const delivery = await okta.backchannelLogout({ sub: alice.sub });
    expect(decodeJwt(delivery.logoutToken)).not.toHaveProperty('sid');
    expect(delivery.status).toBe(200);
    expect(await laptop.introspect()).toEqual({ active: false });
    expect(await phone.introspect()).toEqual({ active: false });
    expect(await gw.gateway.sessions.isEnded(laptop.sid)).toBe(true);
    expect(await gw.gateway.sessions.isEnded(phone.sid)).toBe(true);
    expect(await other.introspect()).toMatchObject({ active: true, sub: `okta|${bob.sub}` });
    const ended = gw.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.event === 'session.upstream_logout');
    expect(ended.at(-1)).toMatchObject({ idp: 'okta', ended: 2 });
  });
});
