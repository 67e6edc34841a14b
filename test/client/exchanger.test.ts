// createTokenExchanger against the real gateway: RFC 8693 requests with either client
// authentication, results cached until 30 s before they expire (counted at the gateway's token
// endpoint through a forwarding fetch), concurrent identical calls sharing one request, DPoP
// binding, and refusals as typed errors — step-up with the acr_values/max_age to sign in again.
import { decodeJwt, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTokenExchanger, dpopProof, InsufficientUserAuthenticationError, JWT_TOKEN_TYPE, TokenExchangeError } from '../../src/client/index.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ERP, KEYED_AGENT, MAIL, SECRETS, selfAssertion, signInPerson } from '../exchange/fixture.ts';
import type { SignedInPerson } from '../exchange/fixture.ts';
import { call, countingFetch, startClientGateway, startResourceServer } from './fixture.ts';

const ALICE = 'dev|alice@example.test';
let gw: TestGateway;
let alice: SignedInPerson;
let agentKey: CryptoKey;
let agentJwk: JWK;

beforeAll(async () => {
  ({ gw, agentKey, agentJwk } = await startClientGateway());
  alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers' });
});
afterAll(async () => {
  await gw?.close();
});

function exchangerFor(agent: string, options: { now?: () => number } = {}) {
  const counter = countingFetch();
  const exchanger = createTokenExchanger({ issuer: gw.url, clientId: agent, clientSecret: SECRETS[agent]!, fetch: counter.fetch, ...options });
  return { exchanger, tokenRequests: () => counter.count('/token'), counter };
}

describe('createTokenExchanger', () => {
  it('exchanges the person\'s token for the agent\'s own, and serves repeats from the cache', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const { exchanger, tokenRequests, counter } = exchangerFor('agent-a');
    const first = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(first).toEqual({ accessToken: expect.any(String), tokenType: 'Bearer', expiresAt: expect.any(Number), scope: 'erp:read' });
    expect(first.expiresAt - t0).toBeGreaterThanOrEqual(120);
    expect(first.expiresAt - t0).toBeLessThanOrEqual(121);
    expect(decodeJwt(first.accessToken)).toMatchObject({ sub: ALICE, client_id: 'agent-a', aud: ERP, scope: 'erp:read', act: { sub: 'agent-a' }, sid: alice.sid });
    expect(tokenRequests()).toBe(1);
    // Discovery once, then only the token endpoint.
    expect(counter.count('/.well-known/openid-configuration')).toBe(1);

    const second = await exchanger.exchange({ subjectToken: alice.accessToken, scope: ['erp:read'], audience: ERP });
    expect(second).toBe(first);
    expect(tokenRequests()).toBe(1);

    // Another audience is another token.
    const mail = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'mail:read', audience: MAIL });
    expect(decodeJwt(mail.accessToken).aud).toBe(MAIL);
    expect(tokenRequests()).toBe(2);
  });

  it('shares one request among concurrent identical calls', async () => {
    const { exchanger, tokenRequests } = exchangerFor('agent-a');
    const results = await Promise.all(Array.from({ length: 5 }, () => exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP })));
    expect(new Set(results).size).toBe(1);
    expect(tokenRequests()).toBe(1);
  });

  it('exchanges anew 30 s before expiry (configurable)', async () => {
    let clock = Math.floor(Date.now() / 1000);
    const { exchanger, tokenRequests } = exchangerFor('agent-a', { now: () => clock });
    const first = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(first.expiresAt).toBe(clock + 120);
    clock += 89;
    expect(await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP })).toBe(first);
    expect(tokenRequests()).toBe(1);
    clock += 1;
    const second = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(tokenRequests()).toBe(2);
    expect(second.accessToken).not.toBe(first.accessToken);

    let clock2 = Math.floor(Date.now() / 1000);
    const counter = countingFetch();
    const eager = createTokenExchanger({ issuer: gw.url, clientId: 'agent-a', clientSecret: SECRETS['agent-a']!, fetch: counter.fetch, refreshBefore: 100, now: () => clock2 });
    await eager.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    clock2 += 20;
    await eager.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(counter.count('/token')).toBe(2);
  });

  it('re-delegates with the parent agent\'s token as subject (nested act)', async () => {
    const { exchanger: a } = exchangerFor('agent-a');
    const { exchanger: b } = exchangerFor('agent-b');
    const parent = await a.exchange({ subjectToken: alice.accessToken, scope: 'mail:read', audience: MAIL });
    const child = await b.exchange({ subjectToken: parent.accessToken, scope: 'mail:read', audience: MAIL });
    expect(decodeJwt(child.accessToken)).toMatchObject({ client_id: 'agent-b', act: { sub: 'agent-b', act: { sub: 'agent-a' } } });
  });

  it('authenticates with private_key_jwt, a fresh assertion each time (CryptoKey or private JWK)', async () => {
    const exchanger = createTokenExchanger({ issuer: gw.url, clientId: KEYED_AGENT, privateKey: agentKey, kid: 'agent-k-key-1' });
    const one = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(decodeJwt(one.accessToken)).toMatchObject({ client_id: KEYED_AGENT });
    // A second request right away: the gateway refuses replayed assertions, so it must be new.
    exchanger.clear();
    const two = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(two.accessToken).not.toBe(one.accessToken);

    const fromJwk = createTokenExchanger({ issuer: gw.url, clientId: KEYED_AGENT, privateKey: agentJwk });
    expect((await fromJwk.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP })).scope).toBe('erp:read');
    // With an actor token the agent signed itself (RFC 8693 §2.1, type jwt).
    const withActor = await fromJwk.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP, actorToken: await selfAssertion(gw, agentKey), actorTokenType: JWT_TOKEN_TYPE });
    expect(decodeJwt(withActor.accessToken)).toMatchObject({ client_id: KEYED_AGENT, act: { sub: KEYED_AGENT } });
  });

  it('binds the token to a DPoP key, and the proof helper calls the resource server with it', async () => {
    const key = await generateKeyPair('ES256');
    const exchanger = createTokenExchanger({ issuer: gw.url, clientId: 'agent-d', clientSecret: SECRETS['agent-d']!, dpopKey: key });
    const result = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(result.tokenType).toBe('DPoP');
    expect(decodeJwt(result.accessToken).cnf).toEqual({ jkt: expect.any(String) });
    const rs = await startResourceServer({ issuer: gw.url, audience: ERP });
    try {
      const url = `${rs.url}/whoami`;
      const res = await call(url, { authorization: `DPoP ${result.accessToken}`, dpop: await dpopProof({ key, method: 'GET', url, accessToken: result.accessToken }) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ agent: 'agent-d', person: ALICE });
    } finally {
      await rs.close();
    }
  });

  it('surfaces a step-up as InsufficientUserAuthenticationError with acr_values and max_age', async () => {
    const { exchanger } = exchangerFor('agent-a');
    const error = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:approve', audience: ERP }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InsufficientUserAuthenticationError);
    expect(error).toBeInstanceOf(TokenExchangeError);
    expect({ ...(error as InsufficientUserAuthenticationError) }).toEqual({
      name: 'InsufficientUserAuthenticationError',
      code: 'ERR_INSUFFICIENT_USER_AUTHENTICATION',
      error: 'insufficient_user_authentication',
      error_description: 'scope "erp:approve" requires a stronger or more recent sign-in: acr "dev" is not one of "mfa"',
      status: 400,
      acrValues: 'mfa',
      maxAge: 300,
    });
    // After signing in again as asked, the same call succeeds.
    const strong = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers', acr: 'mfa' });
    expect((await exchanger.exchange({ subjectToken: strong.accessToken, scope: 'erp:approve', audience: ERP })).scope).toBe('erp:approve');
  });

  it('surfaces other refusals as TokenExchangeError, never cached', async () => {
    const { exchanger, tokenRequests } = exchangerFor('agent-a');
    const request = { subjectToken: alice.accessToken, scope: 'hr:read', audience: 'https://hr.example.test' };
    for (let i = 1; i <= 2; i += 1) {
      const error = await exchanger.exchange(request).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TokenExchangeError);
      expect(error).not.toBeInstanceOf(InsufficientUserAuthenticationError);
      expect(error).toMatchObject({ error: 'invalid_target', error_description: 'agent "agent-a" may not request tokens for "https://hr.example.test"', status: 400 });
      expect(tokenRequests()).toBe(i);
    }
    const wrongSecret = createTokenExchanger({ issuer: gw.url, clientId: 'agent-a', clientSecret: 'not-the-secret' });
    await expect(wrongSecret.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP })).rejects.toMatchObject({ error: 'invalid_client', status: 401 });
  });

  it('reports an unreachable gateway as temporarily_unavailable with status 0', async () => {
    const exchanger = createTokenExchanger({ issuer: 'http://127.0.0.1:9', clientId: 'agent-a', clientSecret: SECRETS['agent-a']! });
    await expect(exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP })).rejects.toMatchObject({
      name: 'TokenExchangeError', error: 'temporarily_unavailable', status: 0,
    });
  });

  it('refuses bad options at construction, naming them', () => {
    expect(() => createTokenExchanger({ issuer: gw.url, clientId: 'agent-a' })).toThrow(new TypeError('createTokenExchanger: give exactly one of clientSecret and privateKey'));
    expect(() => createTokenExchanger({ issuer: 'x', clientId: 'agent-a', clientSecret: 's' })).toThrow(new TypeError('issuer must be an absolute URL'));
    expect(() => createTokenExchanger({ issuer: gw.url, clientId: 'agent-a', privateKey: { kty: 'EC', crv: 'P-256', x: 'a', y: 'b' } })).toThrow(
      new TypeError('createTokenExchanger.privateKey must be a private key (the JWK has no "d")'),
    );
  });
});
