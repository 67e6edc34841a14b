// The whole RFC 8693 story over real HTTP, in order: a person signs in, the app's token is the
// subject token, agent A exchanges it, agent B re-delegates A's token, and every way the chain
// must break does break — with the exact status, error body and audit entry. The clock is frozen
// (only Date is faked; the gateway runs in this process) and moved on explicitly.
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import * as oidc from 'openid-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { basic } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import {
  AT, auditEntries, dpopKey, ERP, exchangeAs, EXCHANGE, HR, introspect, MAIL, post, SECRETS, signInPerson, startExchangeGateway,
} from './fixture.ts';
import type { SignedInPerson } from './fixture.ts';

const ALICE = 'dev|alice@example.test';
let gw: TestGateway;
let alice: SignedInPerson;
/** Agent A's tokens for the person: ERP erp:read, and MAIL mail:read. */
let aErp: string;
let aMail: string;

const now = () => Math.floor(Date.now() / 1000);
const advance = (seconds: number) => vi.setSystemTime(Date.now() + seconds * 1000);

beforeAll(async () => {
  vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
  ({ gw } = await startExchangeGateway());
});
afterAll(async () => {
  vi.useRealTimers();
  await gw?.close();
});

describe('token exchange, the full chain', () => {
  it('a person signs in; the app holds the subject token of the enterprise session', async () => {
    alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers' });
    const session = await gw.gateway.sessions.get(alice.sid);
    expect(session).toMatchObject({ sid: alice.sid, accountId: ALICE, roles: ['finance-approver', 'finance-reader'] });
    expect(session?.identity).toMatchObject({ acr: 'dev', amr: ['pwd'], authTime: alice.authTime });
  });

  it('agent A exchanges it for its own token: exact response, exact claims, one audit entry', async () => {
    const res = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    // No refresh_token: an agent comes back with the subject token, not a long-lived credential.
    expect(res.body).toEqual({ access_token: expect.any(String), issued_token_type: AT, token_type: 'Bearer', expires_in: 120, scope: 'erp:read' });
    aErp = String(res.body.access_token);
    expect(decodeProtectedHeader(aErp)).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: gw.keyRing.signingKey.kid });
    const claims = decodeJwt(aErp);
    expect(claims).toEqual({
      iss: gw.url, sub: ALICE, aud: ERP, client_id: 'agent-a', scope: 'erp:read', act: { sub: 'agent-a' },
      sid: alice.sid, acr: 'dev', auth_time: alice.authTime, roles: ['finance-approver', 'finance-reader'],
      jti: expect.stringMatching(/^[\w-]{24}$/), iat: now(), exp: now() + 120,
    });
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchanged', time: String(now()), sub: ALICE, agent: 'agent-a', actors: 'agent-a',
      requested: 'erp:read', granted: 'erp:read', outcome: 'grant', audience: ERP, reasons: '[]', sid: alice.sid, jti: claims.jti,
    }]);
  });

  it('introspection of the agent token answers its claims and the act chain', async () => {
    const res = await introspect(gw, aErp);
    expect(res.status).toBe(200);
    const claims = decodeJwt(aErp);
    expect(res.body).toEqual({
      active: true, iss: gw.url, sub: ALICE, aud: ERP, client_id: 'agent-a', scope: 'erp:read',
      exp: claims.exp, iat: claims.iat, jti: claims.jti, sid: alice.sid, token_type: 'Bearer',
      act: { sub: 'agent-a' }, delegation_depth: 1, roles: ['finance-approver', 'finance-reader'], acr: 'dev', auth_time: alice.authTime,
    });
  });

  it('agent B re-delegates A\'s token: nested act, scopes narrow, lifetime bound by the subject token', async () => {
    const parent = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL });
    expect(parent.status).toBe(200);
    aMail = String(parent.body.access_token);
    advance(30);
    const res = await exchangeAs(gw, 'agent-b', { subject_token: aMail, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), issued_token_type: AT, token_type: 'Bearer', expires_in: 90, scope: 'mail:read' });
    const token = String(res.body.access_token);
    const claims = decodeJwt(token);
    expect(claims).toEqual({
      iss: gw.url, sub: ALICE, aud: MAIL, client_id: 'agent-b', scope: 'mail:read', act: { sub: 'agent-b', act: { sub: 'agent-a' } },
      sid: alice.sid, acr: 'dev', auth_time: alice.authTime, roles: ['finance-approver', 'finance-reader'],
      jti: expect.any(String), iat: now(), exp: decodeJwt(aMail).exp,
    });
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchanged', time: String(now()), sub: ALICE, agent: 'agent-b', actors: 'agent-b agent-a',
      requested: 'mail:read', granted: 'mail:read', outcome: 'grant', audience: MAIL, reasons: '[]', sid: alice.sid, jti: claims.jti,
    }]);
    const info = await introspect(gw, token, 'agent-b');
    expect(info.body).toMatchObject({ active: true, client_id: 'agent-b', act: { sub: 'agent-b', act: { sub: 'agent-a' } }, delegation_depth: 2 });
  });

  it('refuses a chain deeper than the limit', async () => {
    const b = String((await exchangeAs(gw, 'agent-b', { subject_token: aMail, scope: 'mail:read', audience: MAIL })).body.access_token);
    const res = await exchangeAs(gw, 'agent-c', { subject_token: b, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unauthorized_client', error_description: 'delegation depth 3 exceeds the maximum of 2' });
  });

  it('refuses an agent that is not in the delegating agent\'s delegateTo', async () => {
    const res = await exchangeAs(gw, 'agent-c', { subject_token: aMail, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unauthorized_client', error_description: 'agent "agent-a" may not delegate to "agent-c" (its delegateTo: "agent-b")' });
  });

  it('refuses scope escalation on re-delegation, naming the scope, and audits the refusal', async () => {
    const res = await exchangeAs(gw, 'agent-b', { subject_token: aMail, scope: 'mail:read mail:send', audience: MAIL });
    expect(res.status).toBe(400);
    const description = 'scope "mail:send" is not in the subject token (delegation can only narrow)';
    expect(res.body).toEqual({ error: 'invalid_scope', error_description: description });
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchange_refused', time: String(now()), sub: ALICE, agent: 'agent-b', actors: 'agent-b agent-a',
      requested: 'mail:read mail:send', granted: '', outcome: 'deny', error: 'invalid_scope', audience: MAIL,
      reasons: JSON.stringify([description]), sid: alice.sid,
    }]);
  });

  it('refuses an audience the agent may not target, and one that is not a resource', async () => {
    const hr = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'hr:read', audience: HR });
    expect(hr.status).toBe(400);
    expect(hr.body).toEqual({ error: 'invalid_target', error_description: `agent "agent-a" may not request tokens for "${HR}"` });
    const unknown = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', resource: 'https://nowhere.example.test' });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({ error: 'invalid_target', error_description: 'unknown resource "https://nowhere.example.test"' });
  });

  it('refuses two audiences, two resources, and a resource that disagrees with the audience', async () => {
    const form = (pairs: [string, string][]) => new URLSearchParams([
      ['grant_type', EXCHANGE], ['subject_token_type', AT], ['subject_token', alice.accessToken], ['scope', 'erp:read'], ...pairs,
    ]);
    const headers = { authorization: basic('agent-a', SECRETS['agent-a']!) };
    const two = await post(`${gw.url}/token`, form([['audience', ERP], ['audience', MAIL]]), headers);
    expect(two.status).toBe(400);
    expect(two.body).toEqual({ error: 'invalid_target', error_description: 'a token has exactly one audience; 2 were requested' });
    const resources = await post(`${gw.url}/token`, form([['resource', ERP], ['resource', MAIL]]), headers);
    expect(resources.body).toEqual({ error: 'invalid_target', error_description: 'a token has exactly one audience; 2 were requested' });
    const disagree = await post(`${gw.url}/token`, form([['audience', ERP], ['resource', MAIL]]), headers);
    expect(disagree.body).toEqual({ error: 'invalid_target', error_description: 'resource and audience must name the same single target' });
    // The same target twice is one audience (§2.1 allows repeating the parameter).
    const same = await post(`${gw.url}/token`, form([['audience', ERP], ['audience', ERP], ['resource', ERP]]), headers);
    expect(same.status).toBe(200);
  });

  it('refuses an ID token as the subject token', async () => {
    const asAccessToken = await exchangeAs(gw, 'agent-a', { subject_token: alice.idToken, scope: 'erp:read', audience: ERP });
    expect(asAccessToken.status).toBe(400);
    expect(asAccessToken.body).toEqual({
      error: 'invalid_grant',
      error_description: 'the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)',
    });
    // Refused before the policy is asked, and still audited: who tried what, and why not.
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchange_refused', time: String(now()), agent: 'agent-a', actors: 'agent-a',
      requested: 'erp:read', granted: '', outcome: 'deny', error: 'invalid_grant', audience: ERP,
      reasons: JSON.stringify(['the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)']),
    }]);
    const asIdToken = await exchangeAs(gw, 'agent-a', {
      subject_token: alice.idToken, subject_token_type: 'urn:ietf:params:oauth:token-type:id_token', scope: 'erp:read', audience: ERP,
    });
    expect(asIdToken.status).toBe(400);
    expect(asIdToken.body).toEqual({ error: 'invalid_request', error_description: `unsupported subject_token_type (use ${AT})` });
  });

  it('refuses a token from another issuer, and one signed with a foreign key under the gateway\'s name', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const claims = decodeJwt(aErp);
    const forge = (iss: string, kid: string) => new SignJWT({ ...claims, iss })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid })
      .sign(privateKey);
    for (const token of [await forge('https://idp.elsewhere.test', 'elsewhere-1'), await forge(gw.url, gw.keyRing.signingKey.kid!)]) {
      const res = await exchangeAs(gw, 'agent-b', { subject_token: token, scope: 'mail:read', audience: MAIL });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        error: 'invalid_grant',
        error_description: 'the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)',
      });
    }
  });

  it('refuses replaying a subject token once it has expired', async () => {
    const exp = decodeJwt(aMail).exp!;
    advance(exp - now());
    // At exp the token is dead (RFC 7519 §4.1.4: "on or after").
    const res = await exchangeAs(gw, 'agent-b', { subject_token: aMail, scope: 'mail:read', audience: MAIL });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_grant',
      error_description: 'the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)',
    });
  });

  it('refuses a sensitive scope until a stronger, fresher sign-in (RFC 9470 step-up)', async () => {
    const weak = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:approve', audience: ERP });
    expect(weak.status).toBe(400);
    const weakDescription = 'scope "erp:approve" requires a stronger or more recent sign-in: acr "dev" is not one of "mfa"';
    expect(weak.body).toEqual({ error: 'insufficient_user_authentication', error_description: weakDescription, acr_values: 'mfa', max_age: 300 });
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchange_refused', time: String(now()), sub: ALICE, agent: 'agent-a', actors: 'agent-a',
      requested: 'erp:approve', granted: '', outcome: 'step_up', error: 'insufficient_user_authentication', audience: ERP,
      reasons: JSON.stringify([weakDescription]), sid: alice.sid,
    }]);

    const strong = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers', acr: 'mfa' });
    const granted = await exchangeAs(gw, 'agent-a', { subject_token: strong.accessToken, scope: 'erp:approve', audience: ERP });
    expect(granted.status).toBe(200);
    expect(decodeJwt(String(granted.body.access_token))).toMatchObject({ scope: 'erp:approve', acr: 'mfa', sid: strong.sid, auth_time: strong.authTime });

    // Six minutes on, the same sign-in is too old for the 5-minute rule.
    advance(360);
    const stale = await exchangeAs(gw, 'agent-a', { subject_token: strong.accessToken, scope: 'erp:approve', audience: ERP });
    expect(stale.status).toBe(400);
    expect(stale.body).toEqual({
      error: 'insufficient_user_authentication',
      error_description: 'scope "erp:approve" requires a stronger or more recent sign-in: sign-in is 6m old, more than 5m',
      acr_values: 'mfa', max_age: 300,
    });
    // Only the sensitive scope asks for more; the rest of the grant is unaffected.
    const read = await exchangeAs(gw, 'agent-a', { subject_token: strong.accessToken, scope: 'erp:read', audience: ERP });
    expect(read.status).toBe(200);

    const fresh = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers', acr: 'mfa' });
    const again = await exchangeAs(gw, 'agent-a', { subject_token: fresh.accessToken, scope: 'erp:approve', audience: ERP });
    expect(again.status).toBe(200);
    expect(decodeJwt(String(again.body.access_token))).toMatchObject({ acr: 'mfa', auth_time: now() });
    alice = fresh;
  });

  it('refuses a DPoP-required agent without a proof; with one, binds the token to the key (cnf.jkt); refuses a replayed proof', async () => {
    const without = await exchangeAs(gw, 'agent-d', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(without.status).toBe(400);
    expect(without.body).toEqual({ error: 'invalid_request', error_description: 'agent "agent-d" must present a DPoP proof (requireDpop)' });

    const key = await dpopKey(gw);
    const proof = await key.proof();
    const res = await exchangeAs(gw, 'agent-d', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP }, { dpop: proof });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), issued_token_type: AT, token_type: 'DPoP', expires_in: 300, scope: 'erp:read' });
    const token = String(res.body.access_token);
    expect(decodeJwt(token)).toMatchObject({ client_id: 'agent-d', act: { sub: 'agent-d' }, cnf: { jkt: key.thumbprint } });
    const info = await introspect(gw, token, 'agent-d');
    expect(info.body).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: key.thumbprint } });

    const replay = await exchangeAs(gw, 'agent-d', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP }, { dpop: proof });
    expect(replay.status).toBe(400);
    expect(replay.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP proof JWT Replay detected' });
  });

  it('refuses a disabled agent and audits it', async () => {
    const res = await exchangeAs(gw, 'agent-off', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unauthorized_client', error_description: 'agent "agent-off" is disabled' });
    expect(await auditEntries(gw)).toEqual([{
      event: 'token.exchange_refused', time: String(now()), sub: ALICE, agent: 'agent-off', actors: 'agent-off',
      requested: 'erp:read', granted: '', outcome: 'deny', error: 'unauthorized_client',
      reasons: JSON.stringify(['agent "agent-off" is disabled']), sid: alice.sid,
    }]);
  });

  it('accepts a request built by an independent client library (openid-client genericGrantRequest)', async () => {
    const config = await oidc.discovery(new URL(gw.url), 'agent-a', undefined, oidc.ClientSecretBasic(SECRETS['agent-a']), {
      execute: [oidc.allowInsecureRequests],
    });
    expect(config.serverMetadata().grant_types_supported).toContain(EXCHANGE);
    const res = await oidc.genericGrantRequest(config, EXCHANGE, {
      subject_token: alice.accessToken, subject_token_type: AT, audience: ERP, scope: 'erp:read',
    });
    expect(res.token_type).toBe('bearer');
    expect(res.issued_token_type).toBe(AT);
    expect(res.refresh_token).toBeUndefined();
    expect(decodeJwt(res.access_token)).toMatchObject({ sub: ALICE, client_id: 'agent-a', aud: ERP, act: { sub: 'agent-a' } });
  });

  it('refuses duplicate parameters other than audience and resource with invalid_request', async () => {
    const headers = { authorization: basic('agent-a', SECRETS['agent-a']!) };
    const base: [string, string][] = [['grant_type', EXCHANGE], ['subject_token_type', AT], ['audience', ERP]];
    const scope = await post(`${gw.url}/token`, new URLSearchParams([...base, ['subject_token', alice.accessToken], ['scope', 'erp:read'], ['scope', 'erp:approve']]), headers);
    expect(scope.status).toBe(400);
    expect(scope.body).toEqual({ error: 'invalid_request', error_description: "'scope' parameter must not be provided twice" });
    const subject = await post(`${gw.url}/token`, new URLSearchParams([...base, ['subject_token', alice.accessToken], ['subject_token', aErp], ['scope', 'erp:read']]), headers);
    expect(subject.status).toBe(400);
    expect(subject.body).toEqual({ error: 'invalid_request', error_description: "'subject_token' parameter must not be provided twice" });
  });

  it('ends every agent token with the session: introspection inactive, exchanges refused', async () => {
    const a = String((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    expect((await introspect(gw, a)).body.active).toBe(true);
    await gw.gateway.sessions.end(alice.sid, 'admin');
    expect((await introspect(gw, a)).body).toEqual({ active: false });
    const fromApp = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(fromApp.status).toBe(400);
    expect(fromApp.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token is unknown, expired or revoked' });
    const fromAgent = await exchangeAs(gw, 'agent-b', { subject_token: a, scope: 'mail:read', audience: MAIL });
    expect(fromAgent.status).toBe(400);
    expect(fromAgent.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token has been revoked' });
  });
});
