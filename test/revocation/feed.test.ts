// The revocation feed for resource servers (issue 6): `GET {issuer}/revocations` (catch-up after a
// `since` cursor) and `GET {issuer}/revocations/feed` (Server-Sent Events), authenticated by the
// resource server's own client (config resources[].client, scope agentgate:revocations). Events
// recorded on replica A reach a feed connected to replica B; a reconnect with Last-Event-ID gets
// what it missed; bad tokens, scopes and cursors are refused with exact RFC 6750 / OAuth answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { basic } from '../support/gateway.ts';
import {
  ADMIN, adminCall, adminToken, clientCredentials, feedToken, introspect, openFeed, post, RS, SECRETS, startReplicas,
} from './fixture.ts';
import type { FeedEvent, Replicas } from './fixture.ts';

let replicas: Replicas;
let admin: string;

beforeAll(async () => {
  replicas = await startReplicas();
  admin = await adminToken(replicas.a);
});
afterAll(async () => {
  await replicas?.close();
});

/** Records a `subject` event through A's admin API (a person with no sessions: only the event). */
async function subjectEvent(name: string): Promise<void> {
  const res = await adminCall(replicas.a, 'DELETE', `/subjects/${encodeURIComponent(`dev|${name}@example.test`)}/sessions`, admin);
  expect(res.status).toBe(200);
}

async function catchUp(since?: string, token?: string): Promise<{ status: number; headers: Headers; body: { events: FeedEvent[]; cursor: string } & Record<string, unknown> }> {
  const query = since !== undefined ? `?${new URLSearchParams({ since })}` : '';
  const res = await fetch(`${replicas.b.url}/revocations${query}`, { headers: { authorization: `Bearer ${token ?? (await feedToken(replicas.b))}` } });
  return { status: res.status, headers: res.headers, body: (await res.json()) as { events: FeedEvent[]; cursor: string } };
}

describe('catch-up: GET {issuer}/revocations', () => {
  it('answers every event after the cursor, oldest first, with the cursor to resume from', async () => {
    const start = await catchUp();
    expect(start.status).toBe(200);
    expect(start.headers.get('cache-control')).toBe('no-store');
    const cursor = start.body.cursor;

    await subjectEvent('one');
    await subjectEvent('two');
    await adminCall(replicas.a, 'POST', '/agents/agent-b/disable', admin);
    const after = await catchUp(cursor);
    expect(after.body.events.map((e) => [e.type, e.sub ?? e.clientId])).toEqual([
      ['subject', 'dev|one@example.test'], ['subject', 'dev|two@example.test'], ['agent', 'agent-b'],
    ]);
    expect(after.body.cursor).toBe(after.body.events.at(-1)!.id);
    const ids = after.body.events.map((e) => e.id);
    expect(ids.every((id) => /^\d+-\d+$/.test(id))).toBe(true);
    // Nothing newer: no events, and the same cursor back.
    expect((await catchUp(after.body.cursor)).body).toEqual({ events: [], cursor: after.body.cursor });
    // From the middle.
    expect((await catchUp(ids[0]!)).body.events.map((e) => e.id)).toEqual(ids.slice(1));
    // Without a cursor: everything still in the stream, which includes these.
    expect((await catchUp()).body.events.map((e) => e.id)).toEqual(expect.arrayContaining(ids));
    await adminCall(replicas.a, 'POST', '/agents/agent-b/enable', admin);
  });

  it('on an empty stream the cursor is "0-0" (or the one given)', async () => {
    const fresh = await startReplicas();
    try {
      const token = await feedToken(fresh.b);
      const res = await fetch(`${fresh.b.url}/revocations`, { headers: { authorization: `Bearer ${token}` } });
      expect(await res.json()).toEqual({ events: [], cursor: '0-0' });
      const since = await fetch(`${fresh.b.url}/revocations?since=1700000000000-5`, { headers: { authorization: `Bearer ${token}` } });
      expect(await since.json()).toEqual({ events: [], cursor: '1700000000000-5' });
    } finally {
      await fresh.close();
    }
  });
});

describe('live: GET {issuer}/revocations/feed (Server-Sent Events)', () => {
  it('streams events recorded on A to a feed connected to B, in the SSE format', async () => {
    const { cursor } = (await catchUp()).body;
    const feed = await openFeed(replicas.b, await feedToken(replicas.b), { since: cursor });
    try {
      expect(feed.status).toBe(200);
      expect(feed.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
      expect(feed.headers.get('cache-control')).toBe('no-store');
      await expect.poll(() => feed.retry).toBe(2000);
      expect(feed.events).toEqual([]);

      const recorded = Date.now();
      await subjectEvent('live');
      await expect.poll(() => feed.events.length, { timeout: 2000 }).toBe(1);
      // Pub/sub wakes B at once: well within the SDK's 5 s budget.
      expect(Date.now() - recorded).toBeLessThan(1000);
      const [event] = feed.events;
      expect(event).toEqual({ id: expect.any(String), type: 'subject', at: expect.any(Number), until: expect.any(Number), sub: 'dev|live@example.test', reason: 'admin' });
      expect(feed.ids).toEqual([event!.id]);
      expect(feed.raw()).toBe(`retry: 2000\n\nid: ${event!.id}\nevent: revocation\ndata: ${JSON.stringify(event)}\n\n`);
    } finally {
      feed.close();
    }
  });

  it('a reconnect with Last-Event-ID gets the events it missed, then live ones', async () => {
    const { cursor } = (await catchUp()).body;
    const first = await openFeed(replicas.b, await feedToken(replicas.b), { since: cursor });
    await subjectEvent('before');
    await expect.poll(() => first.events.length).toBe(1);
    const lastSeen = first.ids.at(-1)!;
    first.close();

    // While disconnected (events recorded on either replica).
    await subjectEvent('missed-1');
    await adminCall(replicas.b, 'DELETE', `/subjects/${encodeURIComponent('dev|missed-2@example.test')}/sessions`, admin);

    // Last-Event-ID wins over since (the browser EventSource sends the header on reconnect).
    const second = await openFeed(replicas.a, await feedToken(replicas.a), { lastEventId: lastSeen, since: cursor });
    try {
      await expect.poll(() => second.events.map((e) => e.sub)).toEqual(['dev|missed-1@example.test', 'dev|missed-2@example.test']);
      await subjectEvent('after');
      await expect.poll(() => second.events.map((e) => e.sub)).toEqual(['dev|missed-1@example.test', 'dev|missed-2@example.test', 'dev|after@example.test']);
      expect(second.ids).toEqual(second.events.map((e) => e.id));
    } finally {
      second.close();
    }
  });

  it('many events in a burst arrive once each, in order, on every connected replica', async () => {
    const { cursor } = (await catchUp()).body;
    const onA = await openFeed(replicas.a, await feedToken(replicas.a), { since: cursor });
    const onB = await openFeed(replicas.b, await feedToken(replicas.b), { since: cursor });
    try {
      await Promise.all(Array.from({ length: 20 }, (_, i) => subjectEvent(`burst-${i}`)));
      await expect.poll(() => onB.events.length, { timeout: 3000 }).toBe(20);
      await expect.poll(() => onA.events.length, { timeout: 3000 }).toBe(20);
      const ids = onB.events.map((e) => e.id);
      expect(new Set(ids).size).toBe(20);
      expect(onA.events.map((e) => e.id)).toEqual(ids);
      expect([...ids].sort((x, y) => {
        const [xm, xs] = x.split('-').map(Number);
        const [ym, ys] = y.split('-').map(Number);
        return xm! - ym! || xs! - ys!;
      })).toEqual(ids);
    } finally {
      onA.close();
      onB.close();
    }
  });
});

describe('who may read the feed', () => {
  const endpoints = ['/revocations', '/revocations/feed'];

  async function get(path: string, headers: Record<string, string>) {
    const res = await fetch(`${replicas.b.url}${path}`, { headers });
    return { status: res.status, challenge: res.headers.get('www-authenticate'), cacheControl: res.headers.get('cache-control'), body: await res.json() as unknown };
  }

  it('401 invalid_token without a token, with a bad one, or with a token for another audience', async () => {
    const agentToken = String((await clientCredentials(replicas.b, 'agent-c', { scope: 'erp:read' })).body.access_token);
    for (const path of endpoints) {
      expect(await get(path, {})).toEqual({
        status: 401, cacheControl: 'no-store',
        challenge: 'Bearer error="invalid_token", error_description="a bearer access token for the revocation feed is required"',
        body: { error: 'invalid_token', error_description: 'a bearer access token for the revocation feed is required' },
      });
      for (const token of ['not-a-jwt', admin, agentToken]) {
        expect(await get(path, { authorization: `Bearer ${token}` })).toEqual({
          status: 401, cacheControl: 'no-store',
          challenge: 'Bearer error="invalid_token", error_description="the access token is invalid, expired, revoked or not meant for the revocation feed"',
          body: { error: 'invalid_token', error_description: 'the access token is invalid, expired, revoked or not meant for the revocation feed' },
        });
      }
    }
  });

  it('401 once the feed token is revoked (RFC 7009)', async () => {
    const token = await feedToken(replicas.b);
    expect((await post(`${replicas.a.url}/token/revocation`, { token }, { authorization: basic(RS, SECRETS[RS]!) })).status).toBe(200);
    expect((await get('/revocations', { authorization: `Bearer ${token}` })).status).toBe(401);
  });

  it('403 insufficient_scope for a feed-audience token without the scope', async () => {
    const res = await clientCredentials(replicas.b, RS);
    expect(res.status).toBe(200);
    const token = String(res.body.access_token);
    expect(res.body.scope).toBeUndefined();
    for (const path of endpoints) {
      expect(await get(path, { authorization: `Bearer ${token}` })).toEqual({
        status: 403, cacheControl: 'no-store',
        challenge: 'Bearer error="insufficient_scope", error_description="the revocation feed needs the agentgate:revocations scope of a resource server client", scope="agentgate:revocations"',
        body: { error: 'insufficient_scope', error_description: 'the revocation feed needs the agentgate:revocations scope of a resource server client' },
      });
    }
  });

  it('only resource server clients get feed tokens, and only for the feed', async () => {
    const { b } = replicas;
    const feedAudience = `${replicas.a.url}/revocations`;
    const issued = await clientCredentials(b, RS, { scope: 'agentgate:revocations' });
    expect(issued.body).toMatchObject({ token_type: 'Bearer', scope: 'agentgate:revocations', expires_in: 300 });
    const claims = JSON.parse(Buffer.from(String(issued.body.access_token).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims).toMatchObject({ aud: feedAudience, client_id: RS, scope: 'agentgate:revocations' });

    expect((await clientCredentials(b, ADMIN, { resource: feedAudience, scope: 'agentgate:revocations' })).body)
      .toEqual({ error: 'invalid_target', error_description: `client "${ADMIN}" may not request tokens for "${feedAudience}"` });
    expect((await clientCredentials(b, 'agent-c', { resource: feedAudience })).body)
      .toEqual({ error: 'invalid_target', error_description: `client "agent-c" may not request tokens for "${feedAudience}"` });
    expect((await clientCredentials(b, RS, { scope: 'agentgate:admin' })).body)
      .toEqual({ error: 'invalid_scope', error_description: `scope "agentgate:admin" is not offered by resource "${feedAudience}"`, scope: 'agentgate:admin' });
    expect((await clientCredentials(b, RS, { resource: 'https://erp.example.test' })).body)
      .toEqual({ error: 'invalid_target', error_description: `client "${RS}" may not request tokens for "https://erp.example.test"` });
    expect((await post(`${b.url}/token`, { grant_type: 'client_credentials' }, { authorization: basic(RS, 'wrong-secret-0123456789abcdefghijkl') })).status).toBe(401);
  });

  it('the resource server client may introspect agent tokens', async () => {
    const token = String((await clientCredentials(replicas.b, 'agent-c', { scope: 'erp:read' })).body.access_token);
    expect(await introspect(replicas.a, token, RS)).toMatchObject({ active: true, client_id: 'agent-c', scope: 'erp:read' });
  });

  it('400 invalid_request for a malformed cursor (since or Last-Event-ID)', async () => {
    const token = await feedToken(replicas.b);
    const description = 'the cursor must be an event id from this feed, such as 1700000000000-0';
    for (const bad of ['abc', '12', '1-2-3', '-1-0', '']) {
      for (const path of endpoints) {
        const res = await get(`${path}?since=${encodeURIComponent(bad)}`, { authorization: `Bearer ${token}` });
        expect([res.status, res.cacheControl, res.body]).toEqual([400, 'no-store', { error: 'invalid_request', error_description: description }]);
      }
    }
    const header = await get('/revocations/feed', { authorization: `Bearer ${token}`, 'last-event-id': 'zzz' });
    expect([header.status, header.body]).toEqual([400, { error: 'invalid_request', error_description: description }]);
    const twice = await get('/revocations?since=1-0&since=2-0', { authorization: `Bearer ${token}` });
    expect([twice.status, twice.body]).toEqual([400, { error: 'invalid_request', error_description: description }]);
  });
});
