// Revocation at the resource server, end to end: requireAgentToken with the resource server's own
// client subscribes to the gateway's revocation feed (catch-up, then Server-Sent Events) and
// rejects tokens of an ended session, a disabled agent (and what it delegated onward) or a
// revoked jti within seconds, with no gateway call per request. When the feed has been down past
// `maxFeedOutage` it introspects each request, and when that fails too it answers 503 (fail
// closed). The SDK's calls go through a forwarding fetch that counts them and can cut the feed
// or introspection.
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { basic } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ERP, exchangeAs, keyedAgentAuth, MAIL, post, signInPerson } from '../exchange/fixture.ts';
import type { SignedInPerson } from '../exchange/fixture.ts';
import { call, countingFetch, startClientGateway, startResourceServer, within } from './fixture.ts';
import type { ClientGateway, CountingFetch, TestResourceServer } from './fixture.ts';

const ERP_API = { clientId: 'erp-api', secret: 'erp-api-secret-0123456789abcdefghijkl' };
const ADMIN = { clientId: 'it-admin', secret: 'it-admin-secret-0123456789abcdefghij' };
const MAIL_API_KID = 'mail-api-key-1';

let primary: ClientGateway;
let gw: TestGateway;
let agentKey: CryptoKey;
let mailApiKey: Record<string, unknown>;
let mailApiPublicJwk: Record<string, unknown>;
let adminToken: string;

beforeAll(async () => {
  const mailPair = await generateKeyPair('ES256', { extractable: true });
  mailApiKey = { ...(await exportJWK(mailPair.privateKey)), kid: MAIL_API_KID, alg: 'ES256' };
  mailApiPublicJwk = { ...(await exportJWK(mailPair.publicKey)), kid: MAIL_API_KID, alg: 'ES256', use: 'sig' };
  primary = await startClientGateway({
    erpClient: { clientId: ERP_API.clientId, auth: { method: 'client_secret_basic', secret: ERP_API.secret } },
    mailClient: { clientId: 'mail-api', auth: { method: 'private_key_jwt', jwks: { keys: [mailApiPublicJwk] } } },
    extra: { admin: { clients: [{ clientId: ADMIN.clientId, auth: { method: 'client_secret_basic', secret: ADMIN.secret } }] } },
  });
  ({ gw, agentKey } = primary);
  const res = await post(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'agentgate:admin' }, { authorization: basic(ADMIN.clientId, ADMIN.secret) });
  adminToken = String(res.body.access_token);
});
afterAll(async () => {
  await gw?.close();
});

const admin = (method: string, path: string) =>
  fetch(`${gw.url}/admin${path}`, { method, headers: { authorization: `Bearer ${adminToken}` } });

async function agentToken(person: SignedInPerson, agent = 'agent-a', scope = 'erp:read', audience = ERP): Promise<string> {
  const res = await exchangeAs(gw, agent, { subject_token: person.accessToken, scope, audience });
  if (res.status !== 200) throw new Error(`exchange failed: ${JSON.stringify(res.body)}`);
  return String(res.body.access_token);
}

async function erpServer(counter: CountingFetch, maxFeedOutage = 30): Promise<TestResourceServer> {
  return startResourceServer({
    issuer: gw.url, audience: ERP, fetch: counter.fetch,
    client: { clientId: ERP_API.clientId, clientSecret: ERP_API.secret },
    revocation: { maxFeedOutage, maxReconnectDelay: 1000 },
  });
}

const status = async (rs: TestResourceServer, token: string) => (await call(`${rs.url}/whoami`, { authorization: `Bearer ${token}` })).status;

function expectRevoked(res: { status: number; headers: Headers; body: Record<string, unknown> }, rs: TestResourceServer) {
  expect({ status: res.status, challenge: res.headers.get('www-authenticate'), body: res.body }).toEqual({
    status: 401,
    challenge: `Bearer error="invalid_token", error_description="the access token has been revoked", resource_metadata="${rs.url}/.well-known/oauth-protected-resource"`,
    body: { error: 'invalid_token', error_description: 'the access token has been revoked' },
  });
}

describe('revocation through the feed', () => {
  let counter: CountingFetch;
  let rs: TestResourceServer;

  beforeAll(async () => {
    counter = countingFetch();
    rs = await erpServer(counter);
    await rs.auth.ready();
  });
  afterAll(async () => {
    await rs?.close();
  });

  it('subscribes with its own client: catch-up, then the stream; no warning about revocation', () => {
    expect(rs.auth.revocationStatus()).toEqual({ mode: 'feed', connected: true, outage: 0, introspecting: false });
    expect(counter.count('/revocations')).toBe(1);
    expect(counter.count('/revocations/feed')).toBe(1);
    expect(rs.logs.filter((line) => line.startsWith('warn'))).toEqual([]);
  });

  it('an ended session: its agent tokens are rejected within 5 s, without a gateway call per request', async () => {
    const alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
    const bob = await signInPerson(gw, { email: 'bob@example.test', groups: 'Finance' });
    const aliceToken = await agentToken(alice);
    const bobToken = await agentToken(bob);
    expect(await status(rs, aliceToken)).toBe(200);

    expect((await admin('DELETE', `/sessions/${encodeURIComponent(alice.sid)}`)).status).toBe(204);
    const took = await within(5000, async () => (await status(rs, aliceToken)) === 401);
    expect(took).toBeLessThan(5000);
    expectRevoked(await call(`${rs.url}/whoami`, { authorization: `Bearer ${aliceToken}` }), rs);
    // Only that session: another person's agent goes on working.
    expect(await status(rs, bobToken)).toBe(200);
    expect(counter.count('/token/introspection')).toBe(0);
  });

  it('all sessions of a person end: every agent token of that person is rejected', async () => {
    // Two sign-ins, two sessions.
    const carol = await signInPerson(gw, { email: 'carol@example.test', groups: 'Finance' });
    const again = await signInPerson(gw, { email: 'carol@example.test', groups: 'Finance' });
    expect(again.sid).not.toBe(carol.sid);
    const tokens = [await agentToken(carol), await agentToken(again)];
    for (const token of tokens) expect(await status(rs, token)).toBe(200);
    const res = await admin('DELETE', `/subjects/${encodeURIComponent('dev|carol@example.test')}/sessions`);
    expect(res.status).toBe(200);
    for (const token of tokens) await within(5000, async () => (await status(rs, token)) === 401);
  });

  it('"My agents" revoke (a session-agent event): that agent\'s tokens of that session only', async () => {
    const frank = await signInPerson(gw, { email: 'frank@example.test', groups: 'Finance' });
    const other = await signInPerson(gw, { email: 'frank@example.test', groups: 'Finance' });
    const revoked = await agentToken(frank);
    const otherSession = await agentToken(other);
    expect(await status(rs, revoked)).toBe(200);
    const page = await frank.browser.get(`${gw.url}/account/agents`);
    const csrf = /name="csrf" value="([^"]+)"/.exec(page.body)?.[1];
    // Revoke from the other session's browser: both of frank's sessions hold agent-a.
    expect((await frank.browser.postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-a', csrf: csrf! })).status).toBe(303);
    await within(5000, async () => (await status(rs, revoked)) === 401);
    expectRevoked(await call(`${rs.url}/whoami`, { authorization: `Bearer ${revoked}` }), rs);
    await within(5000, async () => (await status(rs, otherSession)) === 401);
    // Another person's agent-a token is untouched, and the SDK made no introspection call.
    const grace = await signInPerson(gw, { email: 'grace@example.test', groups: 'Finance' });
    expect(await status(rs, await agentToken(grace))).toBe(200);
    expect(counter.count('/token/introspection')).toBe(0);
  });

  it('RFC 7009 revocation of one token: that jti only', async () => {
    const dave = await signInPerson(gw, { email: 'dave@example.test', groups: 'Finance' });
    const revoked = await agentToken(dave);
    const sibling = await agentToken(dave);
    const res = await post(`${gw.url}/token/revocation`, { token: revoked }, { authorization: basic('agent-a', 'agent-a-secret-0123456789abcdefghij') });
    expect(res.status).toBe(200);
    await within(5000, async () => (await status(rs, revoked)) === 401);
    expect(await status(rs, sibling)).toBe(200);
  });

  it('reconnects after a disconnect and applies, by catch-up, what happened meanwhile', async () => {
    const erin = await signInPerson(gw, { email: 'erin@example.test', groups: 'Finance' });
    const token = await agentToken(erin);
    expect(await status(rs, token)).toBe(200);
    const connections = counter.count('/revocations/feed');

    counter.cutFeed();
    await within(5000, async () => !rs.auth.revocationStatus().connected);
    expect((await admin('DELETE', `/sessions/${encodeURIComponent(erin.sid)}`)).status).toBe(204);
    // Down for less than maxFeedOutage (30 s): the lists as last known still decide.
    expect(await status(rs, token)).toBe(200);

    counter.restoreFeed();
    await within(5000, async () => rs.auth.revocationStatus().connected);
    expect(counter.count('/revocations/feed')).toBe(connections + 1);
    expectRevoked(await call(`${rs.url}/whoami`, { authorization: `Bearer ${token}` }), rs);
    expect(counter.count('/token/introspection')).toBe(0);
    expect(rs.logs.some((line) => line.startsWith('warn: agentgate: revocation feed unavailable'))).toBe(true);
  });
});

describe('the feed down past its bound: introspection, failing closed', () => {
  it('introspects until the feed is first caught up', async () => {
    const counter = countingFetch();
    counter.cutFeed();
    const rs = await erpServer(counter, 1);
    try {
      expect(rs.auth.revocationStatus()).toMatchObject({ mode: 'feed', connected: false, outage: Infinity, introspecting: true });
      const grace = await signInPerson(gw, { email: 'grace@example.test', groups: 'Finance' });
      expect(await status(rs, await agentToken(grace))).toBe(200);
      expect(counter.count('/token/introspection')).toBe(1);
    } finally {
      await rs.close();
    }
  });

  it('falls back to introspection per request, answers 503 when that fails too, and returns to the feed', async () => {
    const counter = countingFetch();
    const rs = await erpServer(counter, 1);
    try {
      await rs.auth.ready();
      const heidi = await signInPerson(gw, { email: 'heidi@example.test', groups: 'Finance' });
      const ivan = await signInPerson(gw, { email: 'ivan@example.test', groups: 'Finance' });
      const heidiToken = await agentToken(heidi);
      const ivanToken = await agentToken(ivan);
      expect(await status(rs, heidiToken)).toBe(200);
      expect(counter.count('/token/introspection')).toBe(0);

      counter.cutFeed();
      await within(5000, async () => rs.auth.revocationStatus().introspecting);
      expect(await status(rs, heidiToken)).toBe(200);
      expect(counter.count('/token/introspection')).toBe(1);
      // A revocation the feed cannot deliver is seen at once through introspection.
      expect((await admin('DELETE', `/sessions/${encodeURIComponent(heidi.sid)}`)).status).toBe(204);
      expectRevoked(await call(`${rs.url}/whoami`, { authorization: `Bearer ${heidiToken}` }), rs);

      counter.cutIntrospection();
      const res = await call(`${rs.url}/whoami`, { authorization: `Bearer ${ivanToken}` });
      expect({ status: res.status, retryAfter: res.headers.get('retry-after'), cacheControl: res.headers.get('cache-control'), body: res.body }).toEqual({
        status: 503, retryAfter: '5', cacheControl: 'no-store',
        body: { error: 'temporarily_unavailable', error_description: 'the revocation status of the access token cannot be established; retry shortly' },
      });

      counter.restoreIntrospection();
      counter.restoreFeed();
      await within(5000, async () => rs.auth.revocationStatus().connected);
      const before = counter.count('/token/introspection');
      expect(await status(rs, ivanToken)).toBe(200);
      expect(counter.count('/token/introspection')).toBe(before);
      expect(rs.logs.join('\n')).not.toContain(ivanToken.split('.')[2]!);
    } finally {
      await rs.close();
    }
  });
});

describe('two gateway replicas on one Redis', () => {
  it('a session ended at replica A reaches a resource server subscribed to replica B', async () => {
    const { gw: b } = await startClientGateway({
      replicaOf: primary,
      erpClient: { clientId: ERP_API.clientId, auth: { method: 'client_secret_basic', secret: ERP_API.secret } },
      mailClient: { clientId: 'mail-api', auth: { method: 'private_key_jwt', jwks: { keys: [mailApiPublicJwk] } } },
      extra: { admin: { clients: [{ clientId: ADMIN.clientId, auth: { method: 'client_secret_basic', secret: ADMIN.secret } }] } },
    });
    // Everything the SDK asks of "the issuer" goes to replica B.
    const counter = countingFetch();
    const viaB: typeof counter.fetch = (input, init) => counter.fetch(String(input).replace(gw.url, b.url), init);
    const rs = await startResourceServer({
      issuer: gw.url, audience: ERP, fetch: viaB,
      client: { clientId: ERP_API.clientId, clientSecret: ERP_API.secret },
    });
    try {
      await rs.auth.ready();
      expect(counter.count('/revocations/feed')).toBe(1);
      const judy = await signInPerson(gw, { email: 'judy@example.test', groups: 'Finance' });
      // Signed in at A, exchanged at B.
      const exchanged = await exchangeAs(b, 'agent-a', { subject_token: judy.accessToken, scope: 'erp:read', audience: ERP });
      expect(exchanged.status).toBe(200);
      const token = String(exchanged.body.access_token);
      expect(await status(rs, token)).toBe(200);

      expect((await admin('DELETE', `/sessions/${encodeURIComponent(judy.sid)}`)).status).toBe(204);
      const introspected = await within(1000, async () => (await post(`${b.url}/token/introspection`, { token }, { authorization: basic(ERP_API.clientId, ERP_API.secret) })).body.active === false);
      expect(introspected).toBeLessThanOrEqual(1000);
      expect(await within(5000, async () => (await status(rs, token)) === 401)).toBeLessThan(5000);
    } finally {
      await rs.close();
      await b.close();
    }
  });
});

// Last: a disabled agent's tokens stay dead after it is enabled again (issued at or before the disable).
describe('the agent kill switch', () => {
  let rs: TestResourceServer;
  beforeAll(async () => {
    rs = await erpServer(countingFetch());
    await rs.auth.ready();
  });
  afterAll(async () => {
    await rs?.close();
  });

  it('rejects that agent\'s tokens and those it delegated onward; other agents keep working', async () => {
    const frank = await signInPerson(gw, { email: 'frank@example.test', groups: 'Finance' });
    const aToken = await agentToken(frank);
    const aMail = await agentToken(frank, 'agent-a', 'mail:read', MAIL);
    const delegated = String((await exchangeAs(gw, 'agent-b', { subject_token: aMail, scope: 'mail:read', audience: MAIL })).body.access_token);
    const keyed = await post(`${gw.url}/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: frank.accessToken, scope: 'erp:read', audience: ERP, ...(await keyedAgentAuth(gw, agentKey)),
    });
    const other = String(keyed.body.access_token);
    // The mail resource server authenticates with private_key_jwt.
    const mail = await startResourceServer({ issuer: gw.url, audience: MAIL, client: { clientId: 'mail-api', privateKey: mailApiKey } });
    try {
      await mail.auth.ready();
      expect(await status(mail, delegated)).toBe(200);
      expect(await status(rs, aToken)).toBe(200);
      expect(decodeJwt(delegated).act).toEqual({ sub: 'agent-b', act: { sub: 'agent-a' } });

      const res = await admin('POST', '/agents/agent-a/disable');
      expect(res.status).toBe(200);
      await within(5000, async () => (await status(rs, aToken)) === 401);
      await within(5000, async () => (await status(mail, delegated)) === 401);
      expect(await status(rs, other)).toBe(200);
    } finally {
      await mail.close();
      await admin('POST', '/agents/agent-a/enable');
    }
  });
});
