// The agent kill switch and RFC 7009 revocation across replicas (issue 6). Disabling an agent at A
// makes B answer inactive within a second for every token the agent holds (exchanged JWTs, client
// credentials JWTs and opaque tokens) and every token it delegated onward, while another agent of
// the same session keeps working; the gateway issues it nothing while disabled; enabling it lets
// new tokens work and leaves the old ones dead. Revoking one token emits a `token` event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { basic } from '../support/gateway.ts';
import {
  ADMIN, adminCall, adminToken, clientCredentials, ERP, exchange, feedToken, inactiveAfter, introspect, MAIL, openFeed, post, SECRETS,
  signInPerson, startReplicas,
} from './fixture.ts';
import type { FeedConnection, Replicas } from './fixture.ts';

let replicas: Replicas;
let feed: FeedConnection;

beforeAll(async () => {
  replicas = await startReplicas();
  feed = await openFeed(replicas.b, await feedToken(replicas.b));
});
afterAll(async () => {
  feed?.close();
  await replicas?.close();
});

async function nextSecond(after: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= after) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('agent kill switch', () => {
  it('kills what the agent holds and delegated onward, on every replica; spares other agents; refuses it new tokens', async () => {
    const { a, b } = replicas;
    const alice = await signInPerson(a, { email: 'alice@example.test', groups: 'Finance' });
    const held = await exchange(b, 'agent-a', alice.accessToken, 'erp:read', ERP);
    const mail = await exchange(b, 'agent-a', alice.accessToken, 'mail:read', MAIL);
    const delegated = await exchange(b, 'agent-b', mail, 'mail:read', MAIL);
    const other = await exchange(b, 'agent-c', alice.accessToken, 'erp:read', ERP);
    const ccJwt = String((await clientCredentials(b, 'agent-a', { resource: ERP, scope: 'erp:read' })).body.access_token);
    // Two audiences and no resource: an opaque token.
    const ccOpaque = String((await clientCredentials(b, 'agent-a')).body.access_token);
    expect(ccOpaque.split('.')).toHaveLength(1);
    for (const token of [held, delegated, other, ccJwt, ccOpaque]) expect((await introspect(b, token)).active).toBe(true);

    const admin = await adminToken(a);
    const res = await adminCall(a, 'POST', '/agents/agent-a/disable', admin);
    const disabled = Date.now();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({ clientId: 'agent-a', disabled: true, at: expect.any(Number) });
    const at = res.body.at as number;
    expect(Math.abs(at - Math.floor(disabled / 1000))).toBeLessThanOrEqual(1);

    expect(await inactiveAfter(b, held, disabled)).toBeLessThanOrEqual(1000);
    expect(await inactiveAfter(b, delegated, disabled)).toBeLessThanOrEqual(1000);
    expect(await inactiveAfter(b, ccJwt, disabled)).toBeLessThanOrEqual(1000);
    expect(await inactiveAfter(b, ccOpaque, disabled)).toBeLessThanOrEqual(1000);
    expect(await introspect(b, other)).toMatchObject({ active: true, client_id: 'agent-c', sid: alice.sid });

    await expect.poll(() => feed.events.find((e) => e.type === 'agent' && e.clientId === 'agent-a')).toEqual({
      id: expect.any(String), type: 'agent', at, until: at + 8 * 3600 + 60, clientId: 'agent-a', reason: 'admin',
    });
    const audit = (await a.store.readStream('audit', 10)).map((e) => e.fields).find((f) => f.event === 'agent.disabled');
    expect(audit).toMatchObject({ event: 'agent.disabled', adminClient: ADMIN, agent: 'agent-a', at: String(at) });

    // While disabled, nothing is issued to it, on any replica, by any grant.
    for (const gw of [a, b]) {
      for (const form of [{}, { resource: ERP, scope: 'erp:read' }] as Record<string, string>[]) {
        const refused = await clientCredentials(gw, 'agent-a', form);
        expect(refused.status).toBe(400);
        expect(refused.body).toEqual({ error: 'unauthorized_client', error_description: 'agent "agent-a" is disabled' });
      }
    }
    const exchanged = await post(`${b.url}/token`, {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: alice.accessToken, scope: 'erp:read', audience: ERP,
    }, { authorization: basic('agent-a', SECRETS['agent-a']!) });
    expect(exchanged.status).toBe(400);
    expect(exchanged.body.error).toBe('unauthorized_client');
    // Other agents are not affected.
    expect((await clientCredentials(b, 'agent-c', { scope: 'erp:read' })).status).toBe(200);

    // Enabled again: new tokens work (from the next second on), the old ones stay dead.
    const enabled = await adminCall(b, 'POST', '/agents/agent-a/enable', admin);
    expect(enabled.status).toBe(200);
    expect(enabled.body).toEqual({ clientId: 'agent-a', disabled: false, at: expect.any(Number) });
    expect((await a.store.readStream('audit', 10)).map((e) => e.fields).find((f) => f.event === 'agent.enabled'))
      .toMatchObject({ adminClient: ADMIN, agent: 'agent-a' });
    await nextSecond(at);
    const fresh = String((await clientCredentials(a, 'agent-a', { resource: ERP, scope: 'erp:read' })).body.access_token);
    expect(await introspect(b, fresh)).toMatchObject({ active: true, client_id: 'agent-a' });
    const freshMail = await exchange(b, 'agent-a', alice.accessToken, 'mail:read', MAIL);
    expect((await introspect(b, freshMail)).active).toBe(true);
    const freshDelegated = await exchange(b, 'agent-b', freshMail, 'mail:read', MAIL);
    expect((await introspect(b, freshDelegated)).active).toBe(true);
    for (const token of [held, delegated, ccJwt, ccOpaque]) expect(await introspect(b, token)).toEqual({ active: false });
  });

  it('disable and enable answer 404 for an agent the config does not have', async () => {
    const admin = await adminToken(replicas.a);
    for (const action of ['disable', 'enable']) {
      const res = await adminCall(replicas.a, 'POST', `/agents/no-such-agent/${action}`, admin);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({ error: 'not_found', error_description: 'no agent "no-such-agent" is configured' });
    }
  });
});

describe('RFC 7009 revocation of one token', () => {
  it('kills that jti on every replica and emits a token event; the agent\'s other tokens live on', async () => {
    const { a, b } = replicas;
    const bob = await signInPerson(a, { email: 'bob@example.test', groups: 'Finance' });
    const doomed = await exchange(b, 'agent-c', bob.accessToken, 'erp:read', ERP);
    const kept = await exchange(b, 'agent-c', bob.accessToken, 'erp:read', ERP);
    const { jti, exp } = (await introspect(b, doomed)) as { jti: string; exp: number };

    const res = await post(`${a.url}/token/revocation`, { token: doomed }, { authorization: basic('agent-c', SECRETS['agent-c']!) });
    const revoked = Date.now();
    expect(res.status).toBe(200);
    expect(await inactiveAfter(b, doomed, revoked)).toBeLessThanOrEqual(1000);
    expect((await introspect(b, kept)).active).toBe(true);
    await expect.poll(() => feed.events.find((e) => e.type === 'token' && e.jti === jti)).toEqual({
      id: expect.any(String), type: 'token', at: expect.any(Number), until: exp + 60,
      sub: 'dev|bob@example.test', clientId: 'agent-c', jti, reason: 'revocation',
    });
  });
});
