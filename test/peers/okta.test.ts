// The Okta peer, driven by openid-client as a real relying party over the loopback internet.
import { createRemoteJWKSet, customFetch, importJWK, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createPeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';
import { discover, signIn, startReceiver } from '../support/peers/relying-party.ts';
import type { Receiver } from '../support/peers/relying-party.ts';

const internet = createLoopbackInternet();
let okta: OktaPeer;
let org: OktaPeer;
let receiver: Receiver;
let redirectUri: string;

const alice = {
  username: 'alice@acme.com',
  password: 'correct horse battery staple',
  sub: '00u1a2b3c4d5e6f7g8h9',
  email: 'alice@acme.com',
  name: 'Alice Example',
  givenName: 'Alice',
  familyName: 'Example',
  groups: ['Everyone', 'Finance'],
  amr: ['pwd', 'mfa', 'otp'],
};

beforeAll(async () => {
  receiver = await startReceiver();
  redirectUri = `${receiver.url}/callback`;
  const clients = [{
    client_id: '0oa-gateway',
    client_secret: 'gateway-secret-0123456789',
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [`${receiver.url}/signed-out`],
    backchannel_logout_uri: `${receiver.url}/backchannel`,
  }];
  okta = await startOktaPeer({ internet, clients, users: [alice] });
  // The org authorization server lives on another Okta org here (one peer per origin).
  org = await startOktaPeer({
    internet,
    issuer: 'https://globex.okta.com',
    clients: [{ ...clients[0]!, token_endpoint_auth_method: 'client_secret_basic' }],
    users: [{ ...alice, sub: undefined, amr: undefined }],
  });
});

afterAll(async () => {
  await okta?.close();
  await org?.close();
  await receiver?.close();
});

describe('Okta peer', () => {
  it('serves discovery for the public https issuer, with Okta endpoint paths', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe('https://acme.okta.com/oauth2/default');
    expect(metadata.authorization_endpoint).toBe('https://acme.okta.com/oauth2/default/v1/authorize');
    expect(metadata.token_endpoint).toBe('https://acme.okta.com/oauth2/default/v1/token');
    expect(metadata.jwks_uri).toBe('https://acme.okta.com/oauth2/default/v1/keys');
    expect(metadata.end_session_endpoint).toBe('https://acme.okta.com/oauth2/default/v1/logout');
    expect(metadata.code_challenge_methods_supported).toEqual(['S256']);
    expect(metadata.backchannel_logout_supported).toBe(true);
  });

  it('signs in with code + PKCE through the login form; the ID token carries Okta claims, groups with the groups scope', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const { claims, walk } = await signIn(internet, config, {
      redirectUri, username: alice.username, password: alice.password, scope: 'openid profile email groups',
    });
    expect(walk.hops[0]!.url).toMatch(/^https:\/\/acme\.okta\.com\/oauth2\/default\/v1\/authorize\?/);
    expect(walk.hops.some((hop) => hop.method === 'POST' && hop.form?.username === alice.username)).toBe(true);
    expect(claims).toMatchObject({
      iss: 'https://acme.okta.com/oauth2/default',
      aud: '0oa-gateway',
      sub: alice.sub,
      ver: 1,
      email: 'alice@acme.com',
      email_verified: true,
      name: 'Alice Example',
      preferred_username: 'alice@acme.com',
      given_name: 'Alice',
      family_name: 'Example',
      groups: ['Everyone', 'Finance'],
      amr: ['pwd', 'mfa', 'otp'],
    });
    expect(claims.idp).toMatch(/^00o[0-9A-Za-z]{17}$/);
    expect(claims.jti).toMatch(/^ID\./);
    expect(typeof claims.auth_time).toBe('number');
    expect(claims.sid).toBe(okta.sessionSid(alice.username, '0oa-gateway'));
    expect(claims.azp).toBeUndefined();
  });

  it('leaves groups out without the groups scope; a second sign-in reuses the peer session (no form)', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const browser = createPeerBrowser(internet);
    const first = await signIn(internet, config, { redirectUri, username: alice.username, password: alice.password, scope: 'openid email', browser });
    expect(first.claims.groups).toBeUndefined();
    expect(first.claims.name).toBeUndefined();
    const second = await signIn(internet, config, { redirectUri, username: alice.username, password: 'not used', scope: 'openid', browser });
    expect(second.walk.hops.every((hop) => hop.method === 'GET')).toBe(true);
    expect(second.claims.sid).toBe(first.claims.sid);
  });

  it('re-renders the form with 401 on a wrong password, pre-filled from login_hint', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri, scope: 'openid', code_challenge: await client.calculatePKCECodeChallenge('x'.repeat(43)),
      code_challenge_method: 'S256', login_hint: alice.username,
    });
    const browser = createPeerBrowser(internet);
    const walk = await browser.followUntil(url.href, (location) => location.startsWith(redirectUri), {
      onLoginForm: (html, _url, form) => {
        expect(html).toContain(`value="${alice.username}"`);
        expect(form.inputs).toEqual(['username', 'password']);
        return { password: 'wrong' };
      },
      throwOnStop: false,
    });
    expect(walk.reached).toBe(false);
    expect(walk.last.status).toBe(401);
    expect(walk.last.body).toContain('incorrect');
  });

  it('requires PKCE (S256)', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const browser = createPeerBrowser(internet);
    const without = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state: 's1' });
    const refused = await browser.followUntil(without.href, (location) => location.startsWith(redirectUri));
    expect(new URL(refused.location!).searchParams.get('error')).toBe('invalid_request');
    expect(new URL(refused.location!).searchParams.get('error_description')).toMatch(/PKCE/);
    const plain = client.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state: 's2', code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' });
    const refusedPlain = await browser.followUntil(plain.href, (location) => location.startsWith(redirectUri));
    expect(new URL(refusedPlain.location!).searchParams.get('error')).toBe('invalid_request');
  });

  it('accepts client_secret_basic from a client registered for client_secret_post, and the reverse', async () => {
    const basic = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789', client.ClientSecretBasic('gateway-secret-0123456789'));
    await expect(signIn(internet, basic, { redirectUri, username: alice.username, password: alice.password })).resolves.toBeTruthy();
    const exchange = okta.host.requests.filter((request) => !request.internal && request.url === 'https://acme.okta.com/oauth2/default/v1/token').at(-1);
    expect(exchange).toMatchObject({ method: 'POST', status: 200 });
    expect(exchange!.headers.authorization).toMatch(/^Basic /);
    const post = await discover(internet, org.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const { claims } = await signIn(internet, post, { redirectUri, username: alice.username, password: alice.password });
    expect(claims.iss).toBe('https://globex.okta.com');
    expect(claims.sub).toMatch(/^00u[0-9A-Za-z]{17}$/);
    expect(claims.amr).toEqual(['pwd']);
  });

  it('registers, changes and removes clients after start', async () => {
    const late = { client_id: '0oa-late', client_secret: 'late-secret-0123456789', redirect_uris: [`${receiver.url}/late`] };
    const config = await discover(internet, okta.issuer, late.client_id, late.client_secret);
    const browser = createPeerBrowser(internet);
    const url = client.buildAuthorizationUrl(config, { redirect_uri: late.redirect_uris[0]!, scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const unknown = await browser.get(url.href);
    expect(unknown.status).toBe(400);
    expect(unknown.body).toContain('invalid_client');

    await okta.setClient(late);
    const { claims } = await signIn(internet, config, { redirectUri: late.redirect_uris[0]!, username: alice.username, password: alice.password });
    expect(claims.aud).toBe('0oa-late');
    await okta.setClient({ ...late, redirect_uris: [`${receiver.url}/moved`] });
    expect((await browser.get(url.href)).body).toContain('redirect_uri did not match');
    await okta.removeClient('0oa-late');
    expect((await browser.get(url.href)).body).toContain('invalid_client');
  });

  it('serves the org authorization server at /oauth2/v1/…', async () => {
    const config = await discover(internet, org.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    expect(config.serverMetadata().authorization_endpoint).toBe('https://globex.okta.com/oauth2/v1/authorize');
    expect(config.serverMetadata().jwks_uri).toBe('https://globex.okta.com/oauth2/v1/keys');
  });

  it('signs logout tokens with its own key and delivers them to the backchannel_logout_uri', async () => {
    const jwks = createRemoteJWKSet(new URL('https://acme.okta.com/oauth2/default/v1/keys'), { [customFetch]: internet.fetch });
    const token = await okta.signLogoutToken({ sub: alice.sub, sid: 'abc' });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: okta.issuer, audience: '0oa-gateway', typ: 'logout+jwt', algorithms: ['RS256'],
    });
    expect(protectedHeader.kid).toBe(okta.key.kid);
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    expect(payload).toMatchObject({ sub: alice.sub, sid: 'abc' });
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp).toBeGreaterThan(payload.iat!);

    const overridden = await okta.signLogoutToken({ events: undefined, nonce: 'n' }, { typ: 'JWT' });
    const decoded = await jwtVerify(overridden, jwks, { issuer: okta.issuer });
    expect(decoded.payload.events).toBeUndefined();
    expect(decoded.protectedHeader.typ).toBe('JWT');

    const before = receiver.requests.length;
    const result = await okta.backchannelLogout({ sub: alice.sub, sid: 'sid-1' });
    expect(result.status).toBe(200);
    const delivered = receiver.requests.slice(before);
    expect(delivered).toHaveLength(1);
    expect(delivered[0]!.path).toBe('/backchannel');
    expect(delivered[0]!.form.get('logout_token')).toBe(result.logoutToken);
  });

  it('sends logout tokens itself at RP-initiated logout', async () => {
    const config = await discover(internet, okta.issuer, '0oa-gateway', 'gateway-secret-0123456789');
    const { tokens, browser, claims } = await signIn(internet, config, { redirectUri, username: alice.username, password: alice.password });
    const logout = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${receiver.url}/signed-out` });
    const before = okta.logoutDeliveries.length;
    const walk = await browser.followUntil(logout.href, (location) => location.startsWith(`${receiver.url}/signed-out`));
    expect(walk.reached).toBe(true);
    const deliveries = okta.logoutDeliveries.slice(before);
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]!.status).toBe(200);
    const { payload } = await jwtVerify(deliveries[0]!.logoutToken, await importJWK(okta.key.publicJwk, 'RS256'), { issuer: okta.issuer, typ: 'logout+jwt' });
    expect(payload).toMatchObject({ sub: alice.sub, sid: claims.sid, aud: '0oa-gateway' });
    expect(okta.sessionSid(alice.username, '0oa-gateway')).not.toBe(claims.sid);
  });

  it('refuses connections after stop() and serves again after start()', async () => {
    await okta.stop();
    const failure = await internet.fetch(`${okta.issuer}/.well-known/openid-configuration`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(TypeError);
    expect(((failure as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await okta.start();
    const response = await internet.fetch(`${okta.issuer}/.well-known/openid-configuration`);
    expect(response.status).toBe(200);
  });
});
