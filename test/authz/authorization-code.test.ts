// Authorization code + PKCE through the development login, refresh rotation, and the atomic
// single use of codes and refresh tokens under concurrency (real Redis).
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBrowser, pkcePair, signIn } from '../support/browser.ts';
import { postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const REDIRECT = 'http://127.0.0.1/cb';
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({
    config: {
      apps: [{
        clientId: 'agent-console',
        redirectUris: [REDIRECT],
        postLogoutRedirectUris: ['http://127.0.0.1/signed-out'],
        audiences: ['https://erp.example.test'],
      }],
    },
  });
});
afterAll(async () => gw?.close());

const redeem = (code: string, verifier: string) =>
  postForm(`${gw.url}/token`, {
    grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: 'agent-console',
  });

describe('authorization code + PKCE', () => {
  it('signs a person in and issues ID, access and refresh tokens', async () => {
    const { code, verifier, redirect } = await signIn(gw.url, {
      clientId: 'agent-console', redirectUri: REDIRECT, email: 'Alice@Example.test', scope: 'openid email profile offline_access', prompt: 'consent',
    });
    // RFC 9207: the issuer is in the authorization response.
    expect(redirect.searchParams.get('iss')).toBe(gw.url);
    const res = await redeem(code, verifier);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'openid email profile offline_access' });
    expect(typeof res.body.refresh_token).toBe('string');
    const idToken = decodeJwt(String(res.body.id_token));
    expect(idToken).toMatchObject({
      iss: gw.url, aud: 'agent-console', sub: 'dev|alice@example.test', acr: 'dev', amr: ['pwd'],
    });

    const userinfo = await fetch(`${gw.url}/me`, { headers: { authorization: `Bearer ${String(res.body.access_token)}` } });
    expect(userinfo.status).toBe(200);
    expect(await userinfo.json()).toEqual({
      sub: 'dev|alice@example.test', email: 'alice@example.test', email_verified: false, name: 'Test Person', preferred_username: 'alice@example.test',
      idp: 'dev', roles: [],
    });
  });

  it('issues a JWT access token for a resource the app is registered for', async () => {
    const { code, verifier } = await signIn(gw.url, {
      clientId: 'agent-console', redirectUri: REDIRECT, email: 'bob@example.test', scope: 'openid erp:read', resource: 'https://erp.example.test',
    });
    const res = await redeem(code, verifier);
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token))).toMatchObject({
      sub: 'dev|bob@example.test', aud: 'https://erp.example.test', client_id: 'agent-console', scope: 'erp:read',
    });
  });

  it('requires PKCE (S256) from every client', async () => {
    const browser = createBrowser();
    const params = new URLSearchParams({ client_id: 'agent-console', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid' });
    const hop = await browser.get(`${gw.url}/auth?${params}`);
    expect(hop.status).toBe(303);
    const location = new URL(hop.location!);
    expect(location.origin + location.pathname).toBe(REDIRECT);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('error_description')).toBe('Authorization Server policy requires PKCE to be used for this request');

    const plain = new URLSearchParams({ ...Object.fromEntries(params), code_challenge: 'abc'.repeat(15), code_challenge_method: 'plain' });
    const plainHop = await browser.get(`${gw.url}/auth?${plain}`);
    expect(new URL(plainHop.location!).searchParams.get('error')).toBe('invalid_request');
  });

  it('refuses a code redeemed with the wrong verifier', async () => {
    const { code } = await signIn(gw.url, { clientId: 'agent-console', redirectUri: REDIRECT, email: 'carol@example.test' });
    const res = await redeem(code, pkcePair().verifier);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'grant request is invalid' });
  });
});

describe('single use under concurrency (atomic consume)', () => {
  it('redeems one authorization code exactly once out of 20 concurrent requests', async () => {
    const { code, verifier } = await signIn(gw.url, { clientId: 'agent-console', redirectUri: REDIRECT, email: 'dave@example.test' });
    const results = await Promise.all(Array.from({ length: 20 }, () => redeem(code, verifier)));
    const ok = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 400);
    expect(ok).toHaveLength(1);
    expect(refused).toHaveLength(19);
    for (const r of refused) expect(r.body.error).toBe('invalid_grant');
    // Reuse revokes the grant (RFC 6749 §4.1.2), so even the winner's token no longer works.
    const me = await fetch(`${gw.url}/me`, { headers: { authorization: `Bearer ${String(ok[0]!.body.access_token)}` } });
    expect(me.status).toBe(401);
  });

  it('rotates a refresh token exactly once out of 20 concurrent requests', async () => {
    const { code, verifier } = await signIn(gw.url, {
      clientId: 'agent-console', redirectUri: REDIRECT, email: 'erin@example.test', scope: 'openid offline_access', prompt: 'consent',
    });
    const tokens = await redeem(code, verifier);
    const refreshToken = String(tokens.body.refresh_token);
    const results = await Promise.all(Array.from({ length: 20 }, () =>
      postForm(`${gw.url}/token`, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'agent-console' })));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    const refused = results.filter((r) => r.status === 400);
    expect(refused).toHaveLength(19);
    for (const r of refused) expect(r.body.error).toBe('invalid_grant');
  });

  it('rotates refresh tokens sequentially and detects reuse of a rotated one', async () => {
    const { code, verifier } = await signIn(gw.url, {
      clientId: 'agent-console', redirectUri: REDIRECT, email: 'frank@example.test', scope: 'openid offline_access', prompt: 'consent',
    });
    const first = String((await redeem(code, verifier)).body.refresh_token);
    const refresh = (token: string) => postForm(`${gw.url}/token`, { grant_type: 'refresh_token', refresh_token: token, client_id: 'agent-console' });
    const rotated = await refresh(first);
    expect(rotated.status).toBe(200);
    expect(rotated.body.refresh_token).not.toBe(first);
    const reuse = await refresh(first);
    expect(reuse.status).toBe(400);
    expect(reuse.body).toEqual({ error: 'invalid_grant', error_description: 'grant request is invalid' });
    // The whole grant is gone: the rotated token is dead too.
    expect((await refresh(String(rotated.body.refresh_token))).status).toBe(400);
  });
});

describe('RP-initiated logout', () => {
  it('ends the session and the tokens issued from it', async () => {
    const browser = createBrowser();
    const { code, verifier } = await signIn(gw.url, { clientId: 'agent-console', redirectUri: REDIRECT, email: 'gina@example.test' }, browser);
    const tokens = await redeem(code, verifier);
    const accessToken = String(tokens.body.access_token);
    const introspect = () => postForm(`${gw.url}/token/introspection`, { token: accessToken, client_id: 'agent-console' });
    expect((await introspect()).body).toMatchObject({ active: true, sub: 'dev|gina@example.test' });

    const params = new URLSearchParams({
      id_token_hint: String(tokens.body.id_token), post_logout_redirect_uri: 'http://127.0.0.1/signed-out', state: 'bye',
    });
    const confirm = await browser.get(`${gw.url}/session/end?${params}`);
    expect(confirm.status).toBe(200);
    expect(confirm.body).not.toContain('googleapis');
    const action = /<form[^>]*action="([^"]+)"/.exec(confirm.body)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
    expect(action).toBe(`${gw.url}/session/end/confirm`);
    const done = await browser.postForm(action!, { xsrf: xsrf!, logout: 'yes' });
    expect(done.status).toBe(303);
    expect(done.location).toBe('http://127.0.0.1/signed-out?state=bye');

    expect((await introspect()).body).toEqual({ active: false });
  });
});

describe('interactive login without a sign-in method', () => {
  it('ends the authorization request with login_required when the test login is disabled', async () => {
    const locked = await startGateway({ config: { devLogin: { enabled: false } } });
    try {
      const browser = createBrowser();
      const { challenge } = pkcePair();
      const params = new URLSearchParams({
        client_id: 'agent-console', response_type: 'code', redirect_uri: REDIRECT, scope: 'openid', code_challenge: challenge, code_challenge_method: 'S256', state: 's1',
      });
      let hop = await browser.get(`${locked.url}/auth?${params}`);
      hop = await browser.get(hop.location!);   // /interaction/:uid
      hop = await browser.get(hop.location!);   // resume at /auth/:uid
      const final = new URL(hop.location!);
      expect(final.origin + final.pathname).toBe(REDIRECT);
      expect(final.searchParams.get('error')).toBe('login_required');
      expect(final.searchParams.get('error_description')).toBe('no sign-in method is configured at this gateway');
      expect(final.searchParams.get('state')).toBe('s1');
      const post = await postForm(`${locked.url}/interaction/whatever/login`, { email: 'x@example.test' });
      expect(post.status).toBe(404);
      expect(post.body).toEqual({ error: 'invalid_request', error_description: 'the development login is disabled' });
    } finally {
      await locked.close();
    }
  });
});
