// Ending a session kills every token derived from it on every replica (issue 6): two gateway
// replicas on one Redis; a person signs in through A, an agent exchanges through B; the session
// ends through A (RP-initiated logout, the admin API, or all of a person's sessions at once) and
// introspection on B answers inactive within a second; B's revocation feed carries the event.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ADMIN, adminCall, adminToken, ERP, exchange, feedToken, inactiveAfter, introspect, MAIL, openFeed, rpLogout, signInPerson, startReplicas,
} from './fixture.ts';
import type { FeedConnection, Replicas } from './fixture.ts';

let replicas: Replicas;
let feed: FeedConnection;

beforeAll(async () => {
  replicas = await startReplicas();
  // B's feed, from the start of the stream: it sees every event any replica records.
  feed = await openFeed(replicas.b, await feedToken(replicas.b));
  expect(feed.status).toBe(200);
});
afterAll(async () => {
  feed?.close();
  await replicas?.close();
});

const person = (email: string) => signInPerson(replicas.a, { email, groups: 'Finance' });
const sub = (email: string) => `dev|${email}`;

/** Waits for B's feed to carry an event matching `match`. */
async function feedEvent(match: Record<string, unknown>) {
  await expect.poll(() => feed.events.find((e) => Object.entries(match).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v)), { timeout: 3000 }).toBeDefined();
  return feed.events.find((e) => Object.entries(match).every(([k, v]) => (e as unknown as Record<string, unknown>)[k] === v))!;
}

/** The next whole second: a token issued then is newer than a revocation made now. */
async function nextSecond(after: number): Promise<void> {
  while (Math.floor(Date.now() / 1000) <= after) await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('ending a session across replicas', () => {
  it('RP-initiated logout at A: the agent tokens exchanged at B are inactive on B within 1 s', async () => {
    const { a, b } = replicas;
    const alice = await person('alice@example.test');
    const erp = await exchange(b, 'agent-a', alice.accessToken, 'erp:read', ERP);
    const mail = await exchange(b, 'agent-a', alice.accessToken, 'mail:read', MAIL);
    const delegated = await exchange(b, 'agent-b', mail, 'mail:read', MAIL);
    expect(await introspect(b, erp)).toMatchObject({ active: true, sid: alice.sid, client_id: 'agent-a', sub: sub('alice@example.test') });
    expect(await introspect(b, delegated)).toMatchObject({ active: true, act: { sub: 'agent-b', act: { sub: 'agent-a' } } });

    await rpLogout(a, alice);
    const ended = Date.now();
    expect(await inactiveAfter(b, erp, ended)).toBeLessThanOrEqual(1000);
    expect(await introspect(b, delegated)).toEqual({ active: false });
    expect(await introspect(a, erp)).toEqual({ active: false });

    const event = await feedEvent({ type: 'session', sid: alice.sid });
    expect(event).toEqual({
      id: expect.stringMatching(/^\d+-\d+$/), type: 'session', at: expect.any(Number), until: expect.any(Number),
      sid: alice.sid, sub: sub('alice@example.test'), reason: 'logout',
    });
    // A record lives as long as the longest token it can affect, plus a minute of clock skew.
    expect(event.until - event.at).toBe(8 * 3600 + 60);
    expect(Math.abs(event.at - Math.floor(ended / 1000))).toBeLessThanOrEqual(1);
  });

  it('admin DELETE /admin/sessions/{sid} at A: 204, inactive on B within 1 s, audited; unknown → 404', async () => {
    const { a, b } = replicas;
    const bob = await person('bob@example.test');
    const token = await exchange(b, 'agent-c', bob.accessToken, 'erp:read', ERP);
    expect((await introspect(b, token)).active).toBe(true);
    const admin = await adminToken(a);

    const res = await adminCall(a, 'DELETE', `/sessions/${bob.sid}`, admin);
    const ended = Date.now();
    expect(res.status).toBe(204);
    expect(res.body).toEqual({});
    expect(await inactiveAfter(b, token, ended)).toBeLessThanOrEqual(1000);
    // The person's own app token went with the session's grant.
    expect((await introspect(b, bob.accessToken)).active).toBe(false);
    expect(await feedEvent({ type: 'session', sid: bob.sid })).toMatchObject({ sub: sub('bob@example.test'), reason: 'admin' });
    const audit = (await a.store.readStream('audit', 20)).map((e) => e.fields).find((f) => f.event === 'session.revoked' && f.sid === bob.sid);
    expect(audit).toMatchObject({ event: 'session.revoked', adminClient: ADMIN, sid: bob.sid, sub: sub('bob@example.test'), reason: 'admin' });

    const again = await adminCall(b, 'DELETE', `/sessions/${bob.sid}`, admin);
    expect(again.status).toBe(404);
    expect(again.headers.get('cache-control')).toBe('no-store');
    expect(again.body).toEqual({ error: 'not_found', error_description: `no live session "${bob.sid}"` });
    const unknown = await adminCall(b, 'DELETE', '/sessions/not-a-session', admin);
    expect(unknown.body).toEqual({ error: 'not_found', error_description: 'no live session "not-a-session"' });
  });

  it('DELETE /admin/subjects/{sub}/sessions ends every session of the person, and only theirs', async () => {
    const { a, b } = replicas;
    const laptop = await person('carol@example.test');
    const phone = await person('carol@example.test');
    const dave = await person('dave@example.test');
    const onLaptop = await exchange(b, 'agent-a', laptop.accessToken, 'erp:read', ERP);
    const onPhone = await exchange(b, 'agent-c', phone.accessToken, 'erp:read', ERP);
    const daves = await exchange(b, 'agent-c', dave.accessToken, 'erp:read', ERP);
    const admin = await adminToken(a);

    const res = await adminCall(a, 'DELETE', `/subjects/${encodeURIComponent(sub('carol@example.test'))}/sessions`, admin);
    const ended = Date.now();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((res.body.ended as string[]).sort()).toEqual([laptop.sid, phone.sid].sort());
    expect(await inactiveAfter(b, onLaptop, ended)).toBeLessThanOrEqual(1000);
    expect(await inactiveAfter(b, onPhone, ended)).toBeLessThanOrEqual(1000);
    expect((await introspect(b, daves)).active).toBe(true);

    const subject = await feedEvent({ type: 'subject', sub: sub('carol@example.test') });
    expect(subject).toEqual({ id: expect.any(String), type: 'subject', at: expect.any(Number), until: subject.at + 8 * 3600 + 60, sub: sub('carol@example.test'), reason: 'admin' });
    expect(await feedEvent({ type: 'session', sid: laptop.sid })).toMatchObject({ reason: 'admin' });
    expect(await feedEvent({ type: 'session', sid: phone.sid })).toMatchObject({ reason: 'admin' });
    const audit = (await a.store.readStream('audit', 20)).map((e) => e.fields).find((f) => f.event === 'subject.revoked');
    expect(audit).toMatchObject({ adminClient: ADMIN, sub: sub('carol@example.test') });
    expect(audit!.sids!.split(' ').sort()).toEqual([laptop.sid, phone.sid].sort());

    // Nothing left to end; a fresh sign-in afterwards works again.
    const none = await adminCall(b, 'DELETE', `/subjects/${encodeURIComponent(sub('carol@example.test'))}/sessions`, admin);
    expect(none.body).toEqual({ ended: [] });
    await nextSecond(subject.at + 0);
    const later = await person('carol@example.test');
    const fresh = await exchange(b, 'agent-c', later.accessToken, 'erp:read', ERP);
    expect(await introspect(b, fresh)).toMatchObject({ active: true, sid: later.sid });
  });

  it('GET /admin/sessions?sub= lists the live sessions with the agents holding tokens from each', async () => {
    const { a, b } = replicas;
    const first = await person('erin@example.test');
    const second = await person('erin@example.test');
    await exchange(b, 'agent-a', first.accessToken, 'erp:read', ERP);
    await exchange(b, 'agent-c', first.accessToken, 'erp:read', ERP);
    const admin = await adminToken(a);

    const res = await adminCall(b, 'GET', `/sessions?sub=${encodeURIComponent(sub('erin@example.test'))}`, admin);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const sessions = res.body.sessions as Record<string, unknown>[];
    expect(sessions.map((s) => s.sid).sort()).toEqual([first.sid, second.sid].sort());
    const withAgents = sessions.find((s) => s.sid === first.sid)!;
    expect(withAgents).toMatchObject({ sub: sub('erin@example.test'), idp: 'dev', createdAt: expect.any(Number), expiresAt: expect.any(Number) });
    expect(withAgents.expiresAt).toBe((withAgents.createdAt as number) + 8 * 3600);
    expect(withAgents.agents).toEqual([
      { clientId: 'agent-a', scopes: ['erp:read'], audience: ERP, lastUsedAt: expect.any(Number), expiresAt: expect.any(Number) },
      { clientId: 'agent-c', scopes: ['erp:read'], audience: ERP, lastUsedAt: expect.any(Number), expiresAt: expect.any(Number) },
    ]);
    expect(sessions.find((s) => s.sid === second.sid)!.agents).toEqual([]);

    // An ended session leaves the list.
    await adminCall(a, 'DELETE', `/sessions/${first.sid}`, admin);
    const after = await adminCall(b, 'GET', `/sessions?sub=${encodeURIComponent(sub('erin@example.test'))}`, admin);
    expect((after.body.sessions as { sid: string }[]).map((s) => s.sid)).toEqual([second.sid]);

    expect((await adminCall(b, 'GET', '/sessions?sub=nobody', admin)).body).toEqual({ sessions: [], total: 0 });
    expect(after.body.total).toBe(1);
    const subject = "the 'sub' query parameter must be a person's subject (as in their tokens' sub claim), given once";
    for (const query of ['sub=', 'sub=a&sub=b']) {
      const bad = await adminCall(b, 'GET', `/sessions?${query}`, admin);
      expect(bad.status).toBe(400);
      expect(bad.body).toEqual({ error: 'invalid_request', error_description: subject });
    }
    const paged = await adminCall(b, 'GET', `/sessions?sub=${encodeURIComponent(sub('erin@example.test'))}&limit=5`, admin);
    expect(paged.status).toBe(400);
    expect(paged.body).toEqual({ error: 'invalid_request', error_description: "the 'limit' and 'cursor' query parameters page through all live sessions; they do not go with 'sub'" });
  });

  it('GET /admin/sessions without sub lists every live session, newest first, a page at a time', async () => {
    const { a, b } = replicas;
    const admin = await adminToken(a);
    type Listed = { sid: string; sub: string; expiresAt: number; agents: { clientId: string; scopes: string[]; audience: string }[] };
    /** Every page at `limit`, following next_cursor; the sessions and each page's total. */
    const walk = async (limit: number) => {
      const seen: Listed[] = [];
      const totals: number[] = [];
      let cursor: string | undefined;
      do {
        const res = await adminCall(b, 'GET', `/sessions?${new URLSearchParams({ limit: String(limit), ...(cursor ? { cursor } : {}) })}`, admin);
        expect(res.status).toBe(200);
        expect(res.headers.get('cache-control')).toBe('no-store');
        const page = res.body.sessions as Listed[];
        expect(page.length).toBeLessThanOrEqual(limit);
        seen.push(...page);
        totals.push(res.body.total as number);
        cursor = res.body.next_cursor as string | undefined;
        if (cursor !== undefined) expect(page).toHaveLength(limit);
      } while (cursor !== undefined && totals.length < 100);
      return { seen, totals };
    };

    const before = await adminCall(b, 'GET', '/sessions', admin);
    expect(before.status).toBe(200);
    const baseline = (before.body.sessions as Listed[]).map((s) => s.sid);
    expect(before.body).toEqual({ sessions: expect.any(Array), total: baseline.length });

    const frank = await person('frank@example.test');
    const gina = await person('gina@example.test');
    // One agent at two audiences: two entries.
    await exchange(b, 'agent-a', frank.accessToken, 'erp:read', ERP);
    await exchange(b, 'agent-a', frank.accessToken, 'mail:read', MAIL);

    const { seen, totals } = await walk(1);
    expect(totals.every((total) => total === baseline.length + 2)).toBe(true);
    expect(seen.map((s) => s.sid).sort()).toEqual([...baseline, frank.sid, gina.sid].sort());
    // Newest first: latest expiry first, equal ones by sid (highest first).
    const order = seen.map((s) => [s.expiresAt, s.sid] as const);
    expect(order).toEqual([...order].sort(([e1, s1], [e2, s2]) => e2 - e1 || (s2 < s1 ? -1 : s2 > s1 ? 1 : 0)));
    expect(seen.find((s) => s.sid === frank.sid)).toMatchObject({
      sub: sub('frank@example.test'),
      agents: [
        { clientId: 'agent-a', scopes: ['erp:read'], audience: ERP, lastUsedAt: expect.any(Number), expiresAt: expect.any(Number) },
        { clientId: 'agent-a', scopes: ['mail:read'], audience: MAIL, lastUsedAt: expect.any(Number), expiresAt: expect.any(Number) },
      ],
    });
    expect((await walk(200)).seen.map((s) => s.sid)).toEqual(seen.map((s) => s.sid));

    // An ended session leaves the list.
    await adminCall(a, 'DELETE', `/sessions/${gina.sid}`, admin);
    const after = await adminCall(b, 'GET', '/sessions?limit=200', admin);
    expect((after.body.sessions as Listed[]).map((s) => s.sid)).not.toContain(gina.sid);
    expect(after.body.total).toBe(baseline.length + 1);
    expect(after.body.next_cursor).toBeUndefined();
  });

  it('GET /admin/sessions refuses a bad limit or cursor (400 invalid_request naming it)', async () => {
    const { b } = replicas;
    const admin = await adminToken(b);
    const limit = "the 'limit' query parameter must be a whole number from 1 to 200";
    for (const query of ['limit=0', 'limit=201', 'limit=abc', 'limit=1.5', 'limit=-1', 'limit=01', 'limit=1e2', 'limit=']) {
      const res = await adminCall(b, 'GET', `/sessions?${query}`, admin);
      expect(res.status).toBe(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(res.body).toEqual({ error: 'invalid_request', error_description: query === 'limit=' ? `${limit}, given once` : limit });
    }
    expect((await adminCall(b, 'GET', '/sessions?limit=1&limit=2', admin)).body).toEqual({ error: 'invalid_request', error_description: `${limit}, given once` });
    const cursor = "the 'cursor' query parameter is not a next_cursor this gateway gave out";
    for (const value of ['nope', Buffer.from('[1,"x"]').toString('base64url'), 'a/b']) {
      const res = await adminCall(b, 'GET', `/sessions?${new URLSearchParams({ cursor: value })}`, admin);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({ error: 'invalid_request', error_description: cursor });
    }
    expect((await adminCall(b, 'GET', '/sessions?cursor=', admin)).body).toEqual({
      error: 'invalid_request', error_description: "the 'cursor' query parameter must be the next_cursor of a previous page, given once",
    });
  });

  it('the revocation admin endpoints need an admin token (401 with a Bearer challenge)', async () => {
    const { a } = replicas;
    const none = await fetch(`${a.url}/admin/sessions/x`, { method: 'DELETE' });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="agentgate-admin", error="invalid_token", error_description="a bearer access token for the admin API is required"');
    expect(await none.json()).toEqual({ error: 'invalid_token', error_description: 'a bearer access token for the admin API is required' });
    // The resource server's feed token is not an admin token.
    const rs = await adminCall(a, 'POST', '/agents/agent-a/disable', await feedToken(a));
    expect(rs.status).toBe(401);
    expect(rs.body).toEqual({ error: 'invalid_token', error_description: 'the access token is invalid, expired, revoked or not meant for the admin API' });
    expect(await a.store.get('agent:disabled:agent-a')).toBeNull();
  });
});
