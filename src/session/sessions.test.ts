// Enterprise sessions over both stores: creation, look-up by the indexes, idle and absolute
// expiry (fake clock), grant links, and ending a session (revocation record, hook, indexes).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { backends, newPrefix } from '../../test/support/stores.ts';
import type { Opened } from '../../test/support/stores.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createMemoryStore } from '../store/index.ts';
import { createCookieSigner } from './cookies.ts';
import { accountIdOf, createSessionService, isSessionCursor, parseSessionAgents, sessionAgentsKey } from './sessions.ts';
import type { EnterpriseSession, EndReason } from './sessions.ts';

const alice: FederatedIdentity = {
  idp: 'okta', subject: '00u1alice', email: 'alice@example.test', groups: [{ idp: 'okta', id: 'Finance' }],
  groupsComplete: true, amr: ['pwd'], authTime: 1_700_000_000, attributes: {},
};

describe.each(backends)('$name sessions', ({ open }) => {
  let opened: Opened;
  const ended: { sid: string; grants: string[]; reason: EndReason }[] = [];
  beforeEach(async () => {
    opened = await open(newPrefix());
    ended.length = 0;
  });
  afterEach(async () => opened.close());

  const service = () => createSessionService({
    store: opened.store, ttl: 3600, idleTtl: 900,
    onEnded: async (session, grants, reason) => { ended.push({ sid: session.sid, grants, reason }); },
  });

  it('creates a session findable by sid, person, upstream sid and upstream sub', async () => {
    const sessions = service();
    const session = await sessions.create({ identity: alice, roles: ['finance-reader'], upstream: { sid: 'up-1', sub: 'okta-sub' } });
    expect(session.sid).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(session).toMatchObject({ accountId: 'okta|00u1alice', roles: ['finance-reader'], upstream: { idp: 'okta', sid: 'up-1', sub: 'okta-sub' } });
    expect(session.expiresAt - session.createdAt).toBe(3600);
    expect(await sessions.get(session.sid)).toEqual(session);
    expect(await sessions.findBySubject('okta|00u1alice')).toEqual([session.sid]);
    expect(await sessions.findByUpstream('okta', 'up-1')).toEqual([session.sid]);
    expect(await sessions.findByUpstreamSubject('okta', 'okta-sub')).toEqual([session.sid]);
    expect(await sessions.get('not-a-real-session-id-xxxxxxxx')).toBeUndefined();
    expect(await sessions.get('../../etc')).toBeUndefined();
  });

  it('looks a session up together with other keys in one read', async () => {
    const sessions = service();
    const session = await sessions.create({ identity: alice, roles: [] });
    await opened.store.set('revoked:jti:x', '1');
    expect(await sessions.lookup(session.sid, ['revoked:jti:x', 'revoked:jti:y'])).toEqual({ session, extras: ['1', null] });
    expect(await sessions.lookup('bad id', ['revoked:jti:x'])).toEqual({ session: undefined, extras: ['1'] });
    await sessions.end(session.sid, 'admin');
    expect((await sessions.lookup(session.sid, [])).session).toBeUndefined();
  });

  it('links grants per client and ends everything on end()', async () => {
    const sessions = service();
    const session = await sessions.create({ identity: alice, roles: [] });
    await sessions.linkGrant(session.sid, 'agent-console', 'grant-1');
    await sessions.linkGrant(session.sid, 'other-app', 'grant-2');
    expect(await sessions.grantFor(session.sid, 'agent-console')).toBe('grant-1');
    expect(await sessions.sidForGrant('grant-2')).toBe(session.sid);
    expect(await sessions.isEnded(session.sid)).toBe(false);

    expect((await sessions.end(session.sid, 'upstream_logout'))?.sid).toBe(session.sid);
    expect(await sessions.get(session.sid)).toBeUndefined();
    expect(await sessions.isEnded(session.sid)).toBe(true);
    expect(await sessions.sidForGrant('grant-1')).toBeUndefined();
    expect(ended).toEqual([{ sid: session.sid, grants: expect.arrayContaining(['grant-1', 'grant-2']), reason: 'upstream_logout' }]);
    expect(await sessions.end(session.sid, 'logout')).toBeUndefined();
    expect(ended).toHaveLength(1);
  });

  it('of concurrent ends of one session exactly one ends it (one hook call)', async () => {
    const sessions = service();
    const session = await sessions.create({ identity: alice, roles: [] });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sessions.end(session.sid, i % 2 ? 'admin' : 'logout')));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(ended.map((e) => e.sid)).toEqual([session.sid]);
    expect(await sessions.isEnded(session.sid)).toBe(true);
  });

  it('ending a session takes it out of the person and IdP indexes and drops its agents record', async () => {
    const sessions = service();
    const one = await sessions.create({ identity: alice, roles: [], upstream: { sid: 'up-1', sub: 'okta-sub' } });
    const two = await sessions.create({ identity: alice, roles: [], upstream: { sid: 'up-2', sub: 'okta-sub' } });
    await opened.store.write([{ op: 'hash.set', key: sessionAgentsKey(one.sid), fields: { 'agent-a': '{}' }, ttl: 60 }]);
    await sessions.end(one.sid, 'admin');
    expect(await sessions.findBySubject('okta|00u1alice')).toEqual([two.sid]);
    expect(await sessions.findByUpstream('okta', 'up-1')).toEqual([]);
    expect(await sessions.findByUpstreamSubject('okta', 'okta-sub')).toEqual([two.sid]);
    expect(await opened.store.hashGetAll(sessionAgentsKey(one.sid))).toBeNull();
  });

  it("reads a person's live sessions in one go, oldest first, skipping ended ones and stray members", async () => {
    const sessions = service();
    const one = await sessions.create({ identity: alice, roles: ['finance-reader'] });
    const two = await sessions.create({ identity: alice, roles: [] });
    const three = await sessions.create({ identity: alice, roles: [] });
    await sessions.end(two.sid, 'admin');
    // A member whose record is gone (expired, or written half-way on a cluster) is no session.
    await opened.store.write([{ op: 'set.add', key: 'sess:bySub:okta|00u1alice', members: ['x'.repeat(32)], ttl: 60 }]);
    const live = await sessions.liveOf('okta|00u1alice');
    expect(live.map((s) => s.sid).sort()).toEqual([one.sid, three.sid].sort());
    expect(live.find((s) => s.sid === one.sid)).toEqual(one);
    expect(await sessions.liveOf('okta|nobody')).toEqual([]);
  });

  /** Every page of `list`, following the cursors. */
  async function allPages(sessions: ReturnType<typeof service>, limit: number) {
    const pages: { sids: string[]; total: number }[] = [];
    let cursor: string | undefined;
    do {
      const page = await sessions.list({ limit, cursor });
      pages.push({ sids: page.sessions.map((s) => s.sid), total: page.total });
      cursor = page.nextCursor;
    } while (cursor && pages.length < 20);
    return pages;
  }

  it('lists every live session newest first (latest expiry first), a page at a time, with the total', async () => {
    let t = 1_700_000_000;
    const sessions = createSessionService({ store: opened.store, ttl: 3600, idleTtl: 900, now: () => t });
    const bob = { ...alice, subject: '00u2bob', email: 'bob@example.test' };
    const created: EnterpriseSession[] = [];
    for (let i = 0; i < 5; i += 1) {
      created.push(await sessions.create({ identity: i % 2 ? bob : alice, roles: [] }));
      t += 1;
    }
    const newestFirst = created.map((s) => s.sid).reverse();
    const page = await sessions.list({ limit: 10 });
    expect(page).toEqual({ sessions: [...created].reverse(), total: 5 });
    expect(await allPages(sessions, 2)).toEqual([
      { sids: newestFirst.slice(0, 2), total: 5 }, { sids: newestFirst.slice(2, 4), total: 5 }, { sids: newestFirst.slice(4), total: 5 },
    ]);
    // Exactly one page full: no cursor to an empty page.
    expect((await sessions.list({ limit: 5 })).nextCursor).toBeUndefined();

    // An ended session leaves the list at once.
    await sessions.end(created[3]!.sid, 'admin');
    expect(await sessions.list({ limit: 10 })).toMatchObject({ sessions: [created[4], created[2], created[1], created[0]], total: 4 });
  });

  it('a cursor stays right when sessions are added or end between pages', async () => {
    let t = 1_700_000_000;
    const sessions = createSessionService({ store: opened.store, ttl: 3600, idleTtl: 900, now: () => t });
    const created: string[] = [];
    for (let i = 0; i < 6; i += 1) {
      created.push((await sessions.create({ identity: alice, roles: [] })).sid);
      t += 1;
    }
    const first = await sessions.list({ limit: 2 });
    expect(first.sessions.map((s) => s.sid)).toEqual([created[5], created[4]]);
    // A new session (the newest: before the cursor) and one ended just past the cursor.
    const added = await sessions.create({ identity: alice, roles: [] });
    await sessions.end(created[3]!, 'logout');
    const second = await sessions.list({ limit: 2, cursor: first.nextCursor });
    expect(second.sessions.map((s) => s.sid)).toEqual([created[2], created[1]]);
    expect(second.total).toBe(6);
    const third = await sessions.list({ limit: 2, cursor: second.nextCursor });
    expect(third.sessions.map((s) => s.sid)).toEqual([created[0]]);
    expect(third.nextCursor).toBeUndefined();
    expect((await sessions.list({ limit: 1 })).sessions.map((s) => s.sid)).toEqual([added.sid]);
  });

  it('pages through sessions sharing one expiry (signed in the same second) without losing or repeating one', async () => {
    const sessions = createSessionService({ store: opened.store, ttl: 3600, idleTtl: 900, now: () => 1_700_000_000 });
    const sids: string[] = [];
    for (let i = 0; i < 7; i += 1) sids.push((await sessions.create({ identity: alice, roles: [] })).sid);
    // Equal scores come by sid, highest first (Redis ZRANGE … REV).
    const expected = [...sids].sort().reverse();
    for (const limit of [1, 2, 3, 7]) {
      const pages = await allPages(sessions, limit);
      expect(pages.flatMap((p) => p.sids)).toEqual(expected);
      expect(pages).toHaveLength(Math.ceil(7 / limit));
    }
  });

  it('checks its cursor and limit', async () => {
    const sessions = service();
    await sessions.create({ identity: alice, roles: [] });
    await sessions.create({ identity: alice, roles: [] });
    const { nextCursor } = await sessions.list({ limit: 1 });
    expect(nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(isSessionCursor(nextCursor!)).toBe(true);
    for (const bad of ['', 'x', '!!!', Buffer.from('[1,"short"]').toString('base64url'), Buffer.from('{"s":1}').toString('base64url'), nextCursor!.slice(0, -2)]) {
      expect(isSessionCursor(bad)).toBe(false);
    }
    await expect(sessions.list({ limit: 1, cursor: 'x' })).rejects.toBeInstanceOf(TypeError);
    await expect(sessions.list({ limit: 0 })).rejects.toThrow('list: limit must be a positive integer');
    await expect(sessions.list({ limit: 1.5 })).rejects.toBeInstanceOf(TypeError);
  });
});

describe('the live-session index (fake clock)', () => {
  it('skips sessions gone idle and drops them from the index; create trims the expired ones', async () => {
    let t = 1_700_000_000;
    const store = createMemoryStore({ now: () => t * 1000 });
    const sessions = createSessionService({ store, ttl: 3600, idleTtl: 900, now: () => t });
    const indexed = async () => (await store.rangeByScore('sess:live', { min: -Infinity, max: Infinity })).map((e) => e.member);
    const touch = async (...sids: string[]) => {
      for (const sid of sids) await sessions.touch((await sessions.get(sid))!);
    };
    const old = await sessions.create({ identity: alice, roles: [] });
    t += 600;
    await touch(old.sid);
    const idle = await sessions.create({ identity: alice, roles: [] });
    t += 600;
    await touch(old.sid);
    const active = await sessions.create({ identity: alice, roles: [] });
    t += 600;
    await touch(old.sid, active.sid);
    // idle: 1200 s without activity; its index entry is there until a listing meets it.
    expect(await indexed()).toEqual([old.sid, idle.sid, active.sid]);
    expect(await sessions.list({ limit: 10 })).toEqual({ sessions: [await sessions.get(active.sid), await sessions.get(old.sid)], total: 2 });
    expect(await indexed()).toEqual([old.sid, active.sid]);

    // Past old's absolute expiry (3600 s): not listed, not counted; the next sign-in trims it.
    for (let i = 0; i < 2; i += 1) {
      t += 600;
      await touch(old.sid, active.sid);
    }
    t += 601;
    expect(await sessions.get(old.sid)).toBeUndefined();
    expect(await sessions.list({ limit: 10 })).toMatchObject({ sessions: [{ sid: active.sid }], total: 1 });
    expect(await indexed()).toEqual([old.sid, active.sid]);
    const fresh = await sessions.create({ identity: alice, roles: [] });
    expect(await indexed()).toEqual([active.sid, fresh.sid]);
    await store.close();
  });

  it('keeps a just-created index entry whose record is not there yet (a cluster writes the index first)', async () => {
    const t = 1_700_000_000;
    const store = createMemoryStore({ now: () => t * 1000 });
    const sessions = createSessionService({ store, ttl: 3600, idleTtl: 900, now: () => t });
    const sid = 'A'.repeat(32);
    await store.write([{ op: 'zset.add', key: 'sess:live', members: [{ member: sid, score: t + 3600 }], ttl: 3600 }]);
    expect(await sessions.list({ limit: 10 })).toEqual({ sessions: [], total: 1 });
    expect(await store.countByScore('sess:live', -Infinity, Infinity)).toBe(1);
    await store.close();
  });
});

describe('session agents record', () => {
  it('parses what the exchange writes (one entry per agent and audience) and skips what does not parse', () => {
    expect(parseSessionAgents(null)).toEqual([]);
    expect(parseSessionAgents({
      'mail-agent https://mail.example.test': JSON.stringify({ scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 10, expiresAt: 20 }),
      'broken': '{not json',
      'partial': JSON.stringify({ scopes: ['x'] }),
      'null': 'null',
      'erp-agent https://mail.example.test': JSON.stringify({ scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 12, expiresAt: 22 }),
      'erp-agent https://erp.example.test': JSON.stringify({ scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 11, expiresAt: 21 }),
      // Client ids may hold spaces: the audience the value names is what ends the field.
      'night shift https://erp.example.test': JSON.stringify({ scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 1, expiresAt: 2 }),
    })).toEqual([
      { clientId: 'erp-agent', scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 11, expiresAt: 21 },
      { clientId: 'erp-agent', scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 12, expiresAt: 22 },
      { clientId: 'mail-agent', scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 10, expiresAt: 20 },
      { clientId: 'night shift', scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 1, expiresAt: 2 },
    ]);
  });

  it('reads a record of the earlier shape (field = client id) and merges it with its newer twin', () => {
    expect(parseSessionAgents({
      'erp-agent': JSON.stringify({ scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 11, expiresAt: 40 }),
      'erp-agent https://erp.example.test': JSON.stringify({ scopes: ['erp:approve'], audience: 'https://erp.example.test', lastUsedAt: 30, expiresAt: 35 }),
      'mail-agent': JSON.stringify({ scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 10, expiresAt: 20 }),
    })).toEqual([
      { clientId: 'erp-agent', scopes: ['erp:read', 'erp:approve'], audience: 'https://erp.example.test', lastUsedAt: 30, expiresAt: 40 },
      { clientId: 'mail-agent', scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 10, expiresAt: 20 },
    ]);
  });
});

describe('revocation record lifetime (fake clock)', () => {
  it('lives at least revocationTtl, and as long as the session would have', async () => {
    let t = 1_700_000_000;
    const store = createMemoryStore({ now: () => t * 1000 });
    const sessions = createSessionService({ store, ttl: 3600, idleTtl: 900, revocationTtl: 660, now: () => t });
    const late = await sessions.create({ identity: alice, roles: [] });
    const early = await sessions.create({ identity: alice, roles: [] });
    await sessions.end(early.sid, 'logout');
    t += 3500;
    await sessions.touch((await sessions.get(late.sid)) ?? late);
    // 100 s of session left: the record still lives revocationTtl.
    await sessions.end(late.sid, 'admin');
    t += 659;
    expect(await sessions.isEnded(late.sid)).toBe(true);
    t += 1;
    expect(await sessions.isEnded(late.sid)).toBe(false);
    expect(await sessions.isEnded(early.sid)).toBe(false);
    await store.close();
  });
});

describe('session expiry (fake clock)', () => {
  let t = 1_700_000_000;
  const now = () => t;
  const store = createMemoryStore({ now: () => t * 1000 });
  const sessions = createSessionService({ store, ttl: 3600, idleTtl: 900, now });

  it('ends an idle session after idleTtl, and extends it on activity up to the absolute ttl', async () => {
    const idle = await sessions.create({ identity: alice, roles: [] });
    t += 899;
    expect(await sessions.get(idle.sid)).toBeDefined();
    t += 2;
    expect(await sessions.get(idle.sid)).toBeUndefined();

    const active = await sessions.create({ identity: alice, roles: [] });
    for (let i = 0; i < 5; i += 1) {
      t += 600;
      const current: EnterpriseSession | undefined = await sessions.get(active.sid);
      expect(current).toBeDefined();
      await sessions.touch(current!);
    }
    t += 601; // 3601 s after creation: past the absolute lifetime whatever the activity
    expect(await sessions.get(active.sid)).toBeUndefined();
  });
});

describe('recording the agents of a session (fake clock)', () => {
  let t = 1_700_000_000;
  const store = createMemoryStore({ now: () => t * 1000 });
  const sessions = createSessionService({ store, ttl: 3600, idleTtl: 900, now: () => t });
  const raw = async (sid: string, field = 'agent-a https://erp') => JSON.parse((await store.hashGetAll(sessionAgentsKey(sid)))![field]!) as Record<string, unknown>;

  it('writes at most once a minute per agent and session, unless what the agent holds changes', async () => {
    const session = await sessions.create({ identity: alice, roles: [] });
    const use = (scopes: string[], ttl = 300) => ({ clientId: 'agent-a', scopes, audience: 'https://erp', lastUsedAt: t, expiresAt: t + ttl });
    await sessions.recordAgent(session, use(['erp:read']));
    // The expiry is stretched by the minute in which repeats are not written.
    expect(await raw(session.sid)).toEqual({ scopes: ['erp:read'], audience: 'https://erp', lastUsedAt: t, expiresAt: t + 360 });
    const first = t;
    t += 30;
    await sessions.recordAgent(session, use(['erp:read']));
    expect((await raw(session.sid)).lastUsedAt).toBe(first);
    await sessions.recordAgent(session, use(['erp:read', 'erp:approve']));
    expect(await raw(session.sid)).toMatchObject({ scopes: ['erp:read', 'erp:approve'], lastUsedAt: t });
    t += 10;
    await sessions.recordAgent(session, use(['erp:read', 'erp:approve'], 3000));
    expect((await raw(session.sid)).expiresAt).toBe(t + 3060);
    t += 61;
    // A later, shorter-lived token does not hide the longer-lived one still held.
    await sessions.recordAgent(session, use(['erp:read', 'erp:approve'], 60));
    expect(await raw(session.sid)).toMatchObject({ lastUsedAt: t, expiresAt: t - 61 + 3060 });
    expect((await sessions.agentsOf(session.sid)).map((a) => a.clientId)).toEqual(['agent-a']);
  });

  const use = (clientId: string, audience: string, scopes: string[], ttl = 300) => ({ clientId, scopes, audience, lastUsedAt: t, expiresAt: t + ttl });

  it('keeps one entry per agent and audience: two audiences are two entries', async () => {
    const session = await sessions.create({ identity: alice, roles: [] });
    await sessions.recordAgent(session, use('agent-a', 'https://mail', ['mail:read']));
    await sessions.recordAgent(session, use('agent-a', 'https://erp', ['erp:read'], 120));
    await sessions.recordAgent(session, use('agent-0', 'https://erp', ['erp:read']));
    expect(await sessions.agentsOf(session.sid)).toEqual([
      { clientId: 'agent-0', scopes: ['erp:read'], audience: 'https://erp', lastUsedAt: t, expiresAt: t + 360 },
      { clientId: 'agent-a', scopes: ['erp:read'], audience: 'https://erp', lastUsedAt: t, expiresAt: t + 180 },
      { clientId: 'agent-a', scopes: ['mail:read'], audience: 'https://mail', lastUsedAt: t, expiresAt: t + 360 },
    ]);
    expect(Object.keys((await store.hashGetAll(sessionAgentsKey(session.sid)))!).sort()).toEqual(['agent-0 https://erp', 'agent-a https://erp', 'agent-a https://mail']);
    // The erp token expires first: the mail one is still listed.
    t += 181;
    expect((await sessions.agentsOf(session.sid)).map((a) => `${a.clientId} ${a.audience}`)).toEqual(['agent-0 https://erp', 'agent-a https://mail']);
  });

  it('unites the scopes of the live tokens at one audience (erp:read then erp:write), across replicas', async () => {
    const session = await sessions.create({ identity: alice, roles: [] });
    await sessions.recordAgent(session, use('agent-a', 'https://erp', ['erp:read'], 600));
    const first = t;
    t += 5;
    await sessions.recordAgent(session, use('agent-a', 'https://erp', ['erp:write']));
    expect(await raw(session.sid)).toEqual({ scopes: ['erp:read', 'erp:write'], audience: 'https://erp', lastUsedAt: t, expiresAt: first + 660 });
    // Another replica (its own memory) reads what is stored and adds to it.
    const replica = createSessionService({ store, ttl: 3600, idleTtl: 900, now: () => t });
    t += 5;
    await replica.recordAgent(session, use('agent-a', 'https://erp', ['erp:approve']));
    expect((await raw(session.sid)).scopes).toEqual(['erp:read', 'erp:write', 'erp:approve']);
    // A subset of what this replica wrote within the minute is no change: not written.
    t += 5;
    await replica.recordAgent(session, use('agent-a', 'https://erp', ['erp:read', 'erp:write']));
    expect((await raw(session.sid)).lastUsedAt).toBe(t - 5);
    expect(await sessions.agentsOf(session.sid)).toEqual([
      { clientId: 'agent-a', scopes: ['erp:read', 'erp:write', 'erp:approve'], audience: 'https://erp', lastUsedAt: t - 5, expiresAt: first + 660 },
    ]);
  });

  it('does not merge an expired entry, nor one the person revoked since', async () => {
    const session = await sessions.create({ identity: alice, roles: [] });
    await sessions.recordAgent(session, use('agent-a', 'https://erp', ['erp:write'], 60));
    t += 121;
    // The erp:write token (and the minute of slack) is over: only the new token's scopes.
    await sessions.recordAgent(session, use('agent-a', 'https://erp', ['erp:read']));
    expect(await raw(session.sid)).toEqual({ scopes: ['erp:read'], audience: 'https://erp', lastUsedAt: t, expiresAt: t + 360 });

    const other = await sessions.create({ identity: alice, roles: [] });
    await sessions.recordAgent(other, use('agent-a', 'https://erp', ['erp:write']));
    await store.set(`revoked:sidagent:${other.sid}:agent-a`, String(t));
    t += 61;
    await sessions.recordAgent(other, use('agent-a', 'https://erp', ['erp:read']));
    expect((await raw(other.sid)).scopes).toEqual(['erp:read']);
  });
});

describe('accountIdOf', () => {
  it('keys a person by idp and immutable subject, never by email', () => {
    expect(accountIdOf({ idp: 'entra', subject: 'tid:oid' })).toBe('entra|tid:oid');
  });
});

describe('signed cookies', () => {
  const signer = createCookieSigner(['new-key-0123456789abcdef0123456789', 'old-key-0123456789abcdef0123456789']);
  const old = createCookieSigner(['old-key-0123456789abcdef0123456789']);

  it('round-trips, verifies with any configured key and rejects tampering', () => {
    const header = signer.serialize('agentgate.sid', 'abc', { path: '/', maxAge: 60, secure: true });
    expect(header).toMatch(/^agentgate\.sid=abc\.[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=60$/);
    const cookie = header.split(';')[0]!;
    expect(signer.read(`other=1; ${cookie}`, 'agentgate.sid')).toBe('abc');
    const fromOldKey = old.serialize('agentgate.sid', 'xyz', { path: '/', secure: false }).split(';')[0]!;
    expect(signer.read(fromOldKey, 'agentgate.sid')).toBe('xyz');
    expect(signer.read(cookie.replace('abc.', 'abd.'), 'agentgate.sid')).toBeUndefined();
    expect(signer.read(cookie, 'agentgate.fed')).toBeUndefined();
    // A value signed for one cookie name is not valid under another.
    expect(signer.read(cookie.replace('agentgate.sid', 'agentgate.fed'), 'agentgate.fed')).toBeUndefined();
    expect(signer.read(undefined, 'agentgate.sid')).toBeUndefined();
  });
});
