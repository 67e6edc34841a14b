// Enterprise sessions over both stores: creation, look-up by the indexes, idle and absolute
// expiry (fake clock), grant links, and ending a session (revocation record, hook, indexes).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { backends, newPrefix } from '../../test/support/stores.ts';
import type { Opened } from '../../test/support/stores.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createMemoryStore } from '../store/index.ts';
import { createCookieSigner } from './cookies.ts';
import { accountIdOf, createSessionService, parseSessionAgents, sessionAgentsKey } from './sessions.ts';
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
});

describe('session agents record', () => {
  it('parses what the exchange writes and skips what does not parse', () => {
    expect(parseSessionAgents(null)).toEqual([]);
    expect(parseSessionAgents({
      'mail-agent': JSON.stringify({ scopes: ['mail:read'], audience: 'https://mail.example.test', lastUsedAt: 10, expiresAt: 20 }),
      'broken': '{not json',
      'partial': JSON.stringify({ scopes: ['x'] }),
      'erp-agent': JSON.stringify({ scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 11, expiresAt: 21 }),
    })).toEqual([
      { clientId: 'erp-agent', scopes: ['erp:read'], audience: 'https://erp.example.test', lastUsedAt: 11, expiresAt: 21 },
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
  const raw = async (sid: string) => JSON.parse((await store.hashGetAll(sessionAgentsKey(sid)))!['agent-a']!) as Record<string, unknown>;

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
