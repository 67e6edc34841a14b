// Attack cases of the token exchange over real HTTP: actor tokens that name someone else, subject
// tokens that are not what they claim (unknown, revoked, an agent's own credential, forged with
// the gateway's own key but lying about their session or chain, unsigned), sessions ended by
// RP-initiated logout, malformed requests and bad DPoP proofs. Each answer is exact.
import { randomUUID } from 'node:crypto';

import { decodeJwt, importJWK, SignJWT, UnsecuredJWT } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { basic } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import {
  APP, AT, auditEntries, dpopKey, ERP, exchangeAs, EXCHANGE, introspect, JWT_TYPE, KEYED_AGENT, keyedAgentAuth, MAIL, post, SECRETS,
  selfAssertion, signInPerson, startExchangeGateway,
} from './fixture.ts';
import type { SignedInPerson } from './fixture.ts';

const INVALID_ACCESS_TOKEN = 'the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)';

let gw: TestGateway;
let agentKey: CryptoKey;
let strangerKey: CryptoKey;
let alice: SignedInPerson;

beforeAll(async () => {
  ({ gw, agentKey, strangerKey } = await startExchangeGateway());
  alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
});
afterAll(async () => gw?.close());

const now = () => Math.floor(Date.now() / 1000);

async function clientCredentials(agent: string, resource: string, scope: string): Promise<string> {
  const res = await post(`${gw.url}/token`, { grant_type: 'client_credentials', resource, scope }, { authorization: basic(agent, SECRETS[agent]!) });
  expect(res.status).toBe(200);
  return String(res.body.access_token);
}

/** Signs claims with the gateway's own signing key: what only a key compromise (or a bug) could produce. */
async function signWithGatewayKey(claims: Record<string, unknown>, typ = 'at+jwt'): Promise<string> {
  const { signingKey } = gw.keyRing;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: signingKey.alg, typ, kid: signingKey.kid })
    .sign(await importJWK(signingKey, signingKey.alg));
}

const personToken = (overrides: Record<string, unknown> = {}) => ({
  iss: gw.url, sub: 'dev|alice@example.test', aud: ERP, client_id: APP, scope: 'erp:read', sid: alice.sid,
  jti: randomUUID(), iat: now(), exp: now() + 60, ...overrides,
});

describe('actor tokens', () => {
  it('accepts the agent\'s own access token as the actor token', async () => {
    const own = await clientCredentials('agent-a', ERP, 'erp:read');
    const res = await exchangeAs(gw, 'agent-a', {
      subject_token: alice.accessToken, scope: 'erp:read', audience: ERP, actor_token: own, actor_token_type: AT,
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token))).toMatchObject({ client_id: 'agent-a', act: { sub: 'agent-a' } });
  });

  it('refuses another agent\'s access token as the actor token', async () => {
    const other = await clientCredentials('agent-b', MAIL, 'mail:read');
    const res = await exchangeAs(gw, 'agent-a', {
      subject_token: alice.accessToken, scope: 'erp:read', audience: ERP, actor_token: other, actor_token_type: AT,
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'actor_token does not identify the authenticated agent "agent-a"' });
    const [entry] = await auditEntries(gw);
    expect(entry).toEqual({
      event: 'token.exchange_refused', time: expect.stringMatching(/^\d+$/), sub: 'dev|alice@example.test', agent: 'agent-a', actors: 'agent-a',
      requested: 'erp:read', granted: '', outcome: 'deny', error: 'invalid_request', audience: ERP,
      reasons: JSON.stringify(['actor_token does not identify the authenticated agent "agent-a"']), sid: alice.sid,
    });
    expect(Math.abs(Number(entry!.time) - now())).toBeLessThanOrEqual(2);
  });

  it('refuses the agent\'s own access token once revoked', async () => {
    const own = await clientCredentials('agent-a', ERP, 'erp:read');
    const revoked = await post(`${gw.url}/token/revocation`, { token: own }, { authorization: basic('agent-a', SECRETS['agent-a']!) });
    expect(revoked.status).toBe(200);
    const res = await exchangeAs(gw, 'agent-a', {
      subject_token: alice.accessToken, scope: 'erp:read', audience: ERP, actor_token: own, actor_token_type: AT,
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'actor_token does not identify the authenticated agent "agent-a"' });
  });

  it('accepts a JWT the private_key_jwt agent signed with its registered key; refuses one signed by another key or naming another agent', async () => {
    const exchange = async (actorToken: string) => post(`${gw.url}/token`, {
      grant_type: EXCHANGE, subject_token_type: AT, subject_token: alice.accessToken, scope: 'erp:read', audience: ERP,
      actor_token: actorToken, actor_token_type: JWT_TYPE, ...(await keyedAgentAuth(gw, agentKey)),
    });
    const ok = await exchange(await selfAssertion(gw, agentKey));
    expect(ok.status).toBe(200);
    expect(decodeJwt(String(ok.body.access_token))).toMatchObject({ client_id: KEYED_AGENT, act: { sub: KEYED_AGENT } });

    const refusal = { error: 'invalid_request', error_description: `actor_token does not identify the authenticated agent "${KEYED_AGENT}"` };
    const stranger = await exchange(await selfAssertion(gw, strangerKey));
    expect(stranger.status).toBe(400);
    expect(stranger.body).toEqual(refusal);
    const someoneElse = await exchange(await selfAssertion(gw, agentKey, { iss: 'agent-a', sub: 'agent-a' }));
    expect(someoneElse.status).toBe(400);
    expect(someoneElse.body).toEqual(refusal);
  });

  it('refuses a JWT actor token from an agent that has no registered key, and an actor token without its type', async () => {
    const keyless = await exchangeAs(gw, 'agent-a', {
      subject_token: alice.accessToken, scope: 'erp:read', audience: ERP, actor_token: await selfAssertion(gw, strangerKey, { iss: 'agent-a', sub: 'agent-a' }), actor_token_type: JWT_TYPE,
    });
    expect(keyless.status).toBe(400);
    expect(keyless.body).toEqual({ error: 'invalid_request', error_description: 'actor_token does not identify the authenticated agent "agent-a"' });
    const untyped = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP, actor_token: alice.accessToken });
    expect(untyped.status).toBe(400);
    expect(untyped.body).toEqual({ error: 'invalid_request', error_description: 'actor_token and actor_token_type go together' });
  });
});

describe('subject tokens that are not what they claim', () => {
  it('refuses an unknown opaque token', async () => {
    const res = await exchangeAs(gw, 'agent-a', { subject_token: 'x'.repeat(43), scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token is unknown, expired or revoked' });
  });

  it('refuses an agent\'s own client-credentials token: no person stands behind it', async () => {
    const own = await clientCredentials('agent-a', ERP, 'erp:read');
    const res = await exchangeAs(gw, 'agent-a', { subject_token: own, scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token was not issued to a person through an app' });
  });

  it('refuses a revoked agent token as the subject, and introspection says inactive', async () => {
    const a = String((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    const revoked = await post(`${gw.url}/token/revocation`, { token: a }, { authorization: basic('agent-a', SECRETS['agent-a']!) });
    expect(revoked.status).toBe(200);
    expect((await introspect(gw, a)).body).toEqual({ active: false });
    const res = await exchangeAs(gw, 'agent-b', { subject_token: a, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token has been revoked' });
  });

  it('refuses an expired token even when signed with the gateway\'s own key', async () => {
    const res = await exchangeAs(gw, 'agent-a', {
      subject_token: await signWithGatewayKey(personToken({ iat: now() - 120, exp: now() - 60 })), scope: 'erp:read', audience: ERP,
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: INVALID_ACCESS_TOKEN });
  });

  it('refuses a gateway-signed JWT that is not typed as an access token, and an unsigned one', async () => {
    const untyped = await exchangeAs(gw, 'agent-a', { subject_token: await signWithGatewayKey(personToken(), 'JWT'), scope: 'erp:read', audience: ERP });
    expect(untyped.status).toBe(400);
    expect(untyped.body).toEqual({ error: 'invalid_grant', error_description: INVALID_ACCESS_TOKEN });
    // alg "none" has no signature part, so it is not even JWT-shaped: looked up as an opaque token.
    const unsigned = await exchangeAs(gw, 'agent-a', { subject_token: new UnsecuredJWT(personToken()).encode(), scope: 'erp:read', audience: ERP });
    expect(unsigned.status).toBe(400);
    expect(unsigned.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)' });
  });

  it('refuses a token naming someone else\'s session', async () => {
    const mallory = await signWithGatewayKey(personToken({ sub: 'dev|mallory@example.test' }));
    const res = await exchangeAs(gw, 'agent-a', { subject_token: mallory, scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token does not belong to its session' });
  });

  it('routes by the token: an act chain that does not end at the token\'s client is refused', async () => {
    const forged = await signWithGatewayKey(personToken({ aud: MAIL, scope: 'mail:read', client_id: 'agent-b', act: { sub: 'agent-a' } }));
    const res = await exchangeAs(gw, 'agent-c', { subject_token: forged, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token has a malformed actor chain' });
  });

  it('refuses every token of a session ended by RP-initiated logout', async () => {
    const bob = await signInPerson(gw, { email: 'bob@example.test', groups: 'Finance' });
    const a = String((await exchangeAs(gw, 'agent-a', { subject_token: bob.accessToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    const params = new URLSearchParams({ id_token_hint: bob.idToken, post_logout_redirect_uri: 'http://127.0.0.1/' });
    const confirm = await bob.browser.get(`${gw.url}/session/end?${params}`);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
    const done = await bob.browser.postForm(`${gw.url}/session/end/confirm`, { xsrf: xsrf!, logout: 'yes' });
    expect(done.status).toBe(303);
    expect(await gw.gateway.sessions.get(bob.sid)).toBeUndefined();

    expect((await introspect(gw, a)).body).toEqual({ active: false });
    const fromApp = await exchangeAs(gw, 'agent-a', { subject_token: bob.accessToken, scope: 'erp:read', audience: ERP });
    expect(fromApp.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token is unknown, expired or revoked' });
    const fromAgent = await exchangeAs(gw, 'agent-b', { subject_token: a, scope: 'mail:read', audience: MAIL });
    expect(fromAgent.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token has been revoked' });
    // Alice's session is untouched.
    expect((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP })).status).toBe(200);
  });
});

describe('malformed requests', () => {
  it('names what is missing or unsupported', async () => {
    const cases: [Record<string, string>, string][] = [
      [{ scope: 'erp:read', audience: ERP }, "missing required parameter 'subject_token'"],
      [{ subject_token: alice.accessToken, subject_token_type: '' }, "missing required parameter 'subject_token_type'"],
      [{ subject_token: alice.accessToken, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, `unsupported requested_token_type (this gateway issues ${AT})`],
    ];
    for (const [form, description] of cases) {
      const res = await exchangeAs(gw, 'agent-a', form);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_request', error_description: description });
    }
  });

  it('lets only agents exchange: an app is unauthorized_client, a wrong secret is invalid_client', async () => {
    const app = await post(`${gw.url}/token`, { grant_type: EXCHANGE, subject_token_type: AT, subject_token: alice.accessToken, client_id: APP });
    expect(app.status).toBe(400);
    expect(app.body).toEqual({ error: 'unauthorized_client', error_description: `client "${APP}" is not a registered agent; only agents exchange tokens` });
    const wrong = await post(`${gw.url}/token`, { grant_type: EXCHANGE, subject_token_type: AT, subject_token: alice.accessToken }, {
      authorization: basic('agent-a', 'not-the-secret-0123456789abcdefghijk'),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });
});

describe('DPoP proofs', () => {
  it('refuses a proof for another URL, another method, or too old', async () => {
    const key = await dpopKey(gw);
    const cases: [Record<string, unknown>, string][] = [
      [{ htu: `${gw.url}/token/introspection` }, 'DPoP proof htu mismatch'],
      [{ htm: 'GET' }, 'DPoP proof htm mismatch'],
      [{ iat: now() - 600 }, 'DPoP proof iat is not recent enough'],
    ];
    for (const [overrides, description] of cases) {
      const res = await exchangeAs(gw, 'agent-d', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP }, { dpop: await key.proof(overrides) });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_dpop_proof', error_description: description });
    }
  });

  it('binds the token of an agent that sends a proof without being required to', async () => {
    const key = await dpopKey(gw);
    const res = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP }, { dpop: await key.proof() });
    expect(res.status).toBe(200);
    expect(res.body.token_type).toBe('DPoP');
    expect(decodeJwt(String(res.body.access_token)).cnf).toEqual({ jkt: key.thumbprint });
  });
});
