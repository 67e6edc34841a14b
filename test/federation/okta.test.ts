// Federated sign-in through the gateway with an Okta peer: groups → roles → session, state and
// nonce checks, IdP down, and OIDC back-channel logout ending the session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createPeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';
import { federatedSignIn, redeem } from '../support/federation.ts';
import { postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const internet = createLoopbackInternet();
const CLIENT = { client_id: '0oa-gateway', client_secret: 'okta-client-secret-0123456789' };
const alice = {
  username: 'alice@acme.com', password: 'alice-password', sub: '00u1alice0000000001', email: 'alice@acme.com',
  name: 'Alice Example', groups: ['Everyone', 'Finance'], amr: ['pwd', 'mfa'],
};
let gw: TestGateway;
let okta: OktaPeer;

beforeAll(async () => {
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      identityProviders: [{
        id: 'okta', type: 'oidc', preset: 'okta', displayName: 'Acme',
        issuer: 'https://acme.okta.com/oauth2/default',
        clientId: CLIENT.client_id, clientSecret: CLIENT.client_secret, domains: ['acme.com'],
      }],
      roles: { 'finance-reader': { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'okta', group: 'Finance', roles: ['finance-reader'] }],
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
    users: [alice],
  });
});
afterAll(async () => {
  await gw?.close();
  await okta?.close();
});

describe('sign-in through Okta', () => {
  it('creates an enterprise session with Okta groups mapped to roles', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: alice.username, password: alice.password });
    expect(signIn.redirect.searchParams.get('state')).toBe('app-state');
    const tokens = await redeem(gw, signIn);
    expect(tokens.status).toBe(200);
    expect(tokens.idToken).toMatchObject({
      sub: 'okta|00u1alice0000000001', email: 'alice@acme.com', name: 'Alice Example', idp: 'okta',
      roles: ['finance-reader'], groups: ['Everyone', 'Finance'], amr: ['pwd', 'mfa'], nonce: 'app-nonce',
    });
    const sessions = await gw.gateway.sessions.findBySubject('okta|00u1alice0000000001');
    const session = await gw.gateway.sessions.get(sessions.at(-1)!);
    expect(session).toMatchObject({
      accountId: 'okta|00u1alice0000000001',
      roles: ['finance-reader'],
      identity: { idp: 'okta', subject: '00u1alice0000000001', groupsComplete: true, groups: [{ idp: 'okta', id: 'Everyone', name: 'Everyone' }, { idp: 'okta', id: 'Finance', name: 'Finance' }] },
      upstream: { idp: 'okta', sub: '00u1alice0000000001' },
    });
  });

  it('routes by the login_hint domain and forwards the hint', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: alice.username, password: alice.password, loginHint: 'alice@acme.com' });
    const toOkta = signIn.walk.hops.map((h) => h.location ?? '').find((l) => l.startsWith('https://acme.okta.com/'));
    expect(new URL(toOkta!).searchParams.get('login_hint')).toBe('alice@acme.com');
    expect(signIn.redirect.searchParams.get('code')).toBeTruthy();
  });

  it('refuses a callback whose state is unknown or replayed, and makes no session', async () => {
    const browser = createPeerBrowser(internet);
    const bogus = await browser.get(`${gw.url}/federation/oidc/okta/callback?code=abc&state=forged`);
    expect(bogus.status).toBe(400);
    expect(bogus.body).toContain('this sign-in has expired or was already completed; start again from the application');
    expect(gw.logs.join('')).toContain('"event":"federation.login_failed"');
    expect(gw.logs.join('')).toContain('"errorCode":"ERR_FEDERATION_STATE"');
  });
});

describe('back-channel logout from Okta', () => {
  it('ends the sessions named by the logout token, once', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: alice.username, password: alice.password });
    const tokens = await redeem(gw, signIn);
    const introspect = () => postForm(`${gw.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: 'agent-console' });
    const active = await introspect();
    expect(active.body.active).toBe(true);
    // The token carries the enterprise session; the session remembers Okta's own sid.
    const session = await gw.gateway.sessions.get(String(active.body.sid));
    const sid = session?.upstream.sid;
    expect(sid).toMatch(/.+/);
    const token = await okta.signLogoutToken({ sid, sub: undefined });
    const first = await postForm(`${gw.url}/federation/oidc/okta/backchannel-logout`, { logout_token: token });
    expect(first.status).toBe(200);
    expect((await introspect()).body).toEqual({ active: false });

    const replay = await postForm(`${gw.url}/federation/oidc/okta/backchannel-logout`, { logout_token: token });
    expect(replay.status).toBe(400);
    expect(replay.body).toEqual({ error: 'invalid_request', error_description: 'invalid logout token: it was already used (jti replay)' });
  });

  it.each([
    ['with a nonce', { nonce: 'n' }, 'invalid logout token: a logout token must not contain a nonce'],
    ['without the back-channel event', { events: { 'http://example.com/other': {} } }, 'invalid logout token: the events claim lacks http://schemas.openid.net/event/backchannel-logout'],
    ['for another audience', { aud: 'someone-else' }, 'invalid logout token: unexpected "aud" claim value'],
    ['from another issuer', { iss: 'https://evil.okta.com' }, 'invalid logout token: unexpected "iss" claim value'],
    ['without sid or sub', { sid: undefined, sub: undefined }, 'invalid logout token: it names neither sid nor sub'],
  ])('refuses a logout token %s', async (_what, claims, message) => {
    const token = await okta.signLogoutToken({ sub: alice.sub, ...claims });
    const res = await postForm(`${gw.url}/federation/oidc/okta/backchannel-logout`, { logout_token: token });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: message });
  });
});
