// The revocation service over both stores: records and their lifetimes (fake clock on the memory
// store, PTTL-free: read back after the clock moves), events in the stream with their cursors,
// trimming by age, and the wake-ups a replica's listeners get when any replica records an event.
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';

import { backends, newPrefix, openRedis } from '../../test/support/stores.ts';
import type { Opened } from '../../test/support/stores.ts';
import { createMemoryStore } from '../store/index.ts';
import { createRevocationService } from './service.ts';

describe.each(backends)('$name revocation service', ({ open }) => {
  let opened: Opened[] = [];
  const openStore = async (prefix: string) => {
    const o = await open(prefix);
    opened.push(o);
    return o.store;
  };
  afterEach(async () => {
    await Promise.all(opened.map((o) => o.close()));
    opened = [];
  });

  it('writes the records, appends one event each, and reads them back after a cursor', async () => {
    const store = await openStore(newPrefix());
    const revocations = createRevocationService({ store, longestTokenLifetime: 600, now: () => 1_700_000_000 });
    expect(revocations.recordTtl).toBe(660);

    const session = await revocations.sessionEnded({ sid: 's1', sub: 'dev|a' }, 'logout');
    expect(session).toEqual({ id: expect.stringMatching(/^\d+-\d+$/), type: 'session', at: 1_700_000_000, until: 1_700_000_660, sid: 's1', sub: 'dev|a', reason: 'logout' });
    const subject = await revocations.revokeSubject('dev|a', 'admin');
    expect(await store.get('revoked:sub:dev|a')).toBe('1700000000');
    const agent = await revocations.disableAgent('agent-a', 'admin');
    expect(await store.getMany(['agent:disabled:agent-a', 'revoked:agent:agent-a'])).toEqual(['1700000000', '1700000000']);
    expect(await revocations.isAgentDisabled('agent-a')).toBe(true);
    const token = await revocations.tokenRevoked({ jti: 'j1', exp: 1_700_000_100, clientId: 'agent-a' }, 'revocation');
    expect(token).toMatchObject({ type: 'token', jti: 'j1', clientId: 'agent-a', until: 1_700_000_160 });

    expect(await revocations.enableAgent('agent-a')).toBe(1_700_000_000);
    expect(await revocations.isAgentDisabled('agent-a')).toBe(false);
    // Enabling does not revive what was issued before.
    expect(await store.get('revoked:agent:agent-a')).toBe('1700000000');

    const all = await revocations.eventsAfter('0-0', 10);
    expect(all.events).toEqual([session, subject, agent, token]);
    expect(all.cursor).toBe(token.id);
    expect(await revocations.eventsAfter(subject.id, 1)).toEqual({ events: [agent], cursor: agent.id });
    expect(await revocations.eventsAfter(token.id, 10)).toEqual({ events: [], cursor: token.id });
  });

  it('coversToken: person and agent records cover tokens issued at or before them', async () => {
    const store = await openStore(newPrefix());
    const revocations = createRevocationService({ store, longestTokenLifetime: 600, now: () => 1_700_000_000 });
    await revocations.revokeSubject('dev|a', 'admin');
    await revocations.disableAgent('agent-a', 'admin');
    expect(await revocations.coversToken({ sub: 'dev|a', clientId: 'app', iat: 1_700_000_000 })).toBe(true);
    expect(await revocations.coversToken({ sub: 'dev|a', clientId: 'app', iat: 1_700_000_001 })).toBe(false);
    expect(await revocations.coversToken({ clientId: 'agent-a', iat: 1_699_999_000 })).toBe(true);
    expect(await revocations.coversToken({ sub: 'dev|b', clientId: 'agent-b', iat: 1 })).toBe(false);
    await store.set('revoked:sid:s-ended', 'logout');
    expect(await revocations.coversToken({ sub: 'dev|b', sid: 's-ended', clientId: 'app', iat: 1_800_000_000 })).toBe(true);
    expect(await revocations.coversToken({ sub: 'dev|b', sid: 's-live', clientId: 'app', iat: 1 })).toBe(false);
  });

  it('wakes its listeners when an event is recorded, until they stop or the service closes', async () => {
    const revocations = createRevocationService({ store: await openStore(newPrefix()), longestTokenLifetime: 600 });
    let stopped = 0;
    let kept = 0;
    const stop = await revocations.listen(() => { stopped += 1; });
    await revocations.listen(() => { kept += 1; });
    await revocations.revokeSubject('dev|x', 'admin');
    await expect.poll(() => [stopped, kept]).toEqual([1, 1]);
    stop();
    await revocations.disableAgent('agent-a', 'admin');
    await expect.poll(() => kept).toBe(2);
    expect(stopped).toBe(1);
    await revocations.close();
    await revocations.tokenRevoked({ jti: 'j', exp: 1, clientId: 'agent-a' }, 'revocation');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(kept).toBe(2);
  });
});

describe('revocation events across replicas (Redis)', () => {
  let opened: Opened[] = [];
  afterEach(async () => {
    await Promise.all(opened.map((o) => o.close()));
    opened = [];
  });

  it('an event recorded by one replica wakes the listeners of another on the same prefix', async () => {
    const prefix = newPrefix();
    opened = [await openRedis(inject('redisUrl'), prefix), await openRedis(inject('redisUrl'), prefix)];
    const here = createRevocationService({ store: opened[0]!.store, longestTokenLifetime: 600 });
    const there = createRevocationService({ store: opened[1]!.store, longestTokenLifetime: 600 });
    let heard = 0;
    await there.listen(() => { heard += 1; });
    const event = await here.revokeSubject('dev|x', 'admin');
    await expect.poll(() => heard).toBe(1);
    expect((await there.eventsAfter('0-0', 10)).events).toEqual([event]);
  });
});

describe('revocation stream lifetime (fake clock)', () => {
  let t = 1_700_000_000;
  const store = createMemoryStore({ keyPrefix: newPrefix(), now: () => t * 1000 });
  const revocations = createRevocationService({ store, longestTokenLifetime: 600, now: () => t });
  beforeEach(() => {
    t = 1_700_000_000;
  });

  it('records live as long as the longest token plus skew; events older than that are trimmed', async () => {
    const old = await revocations.revokeSubject('dev|old', 'admin');
    t += 659;
    expect(await store.get('revoked:sub:dev|old')).toBe('1700000000');
    t += 1;
    expect(await store.get('revoked:sub:dev|old')).toBeNull();
    // The disabled flag has no TTL: an agent stays off until enabled.
    await revocations.disableAgent('agent-a', 'admin');
    t += 10_000;
    expect(await revocations.isAgentDisabled('agent-a')).toBe(true);
    expect(await store.get('revoked:agent:agent-a')).toBeNull();

    const fresh = await revocations.revokeSubject('dev|new', 'admin');
    const { events } = await revocations.eventsAfter('0-0', 10);
    expect(events.map((e) => e.id)).toEqual([fresh.id]);
    expect(events.map((e) => e.id)).not.toContain(old.id);
  });
});

describe('createRevocationService', () => {
  it('refuses a lifetime that is not a positive number of seconds', () => {
    const store = createMemoryStore();
    expect(() => createRevocationService({ store, longestTokenLifetime: 0 })).toThrow(new TypeError('createRevocationService: options.longestTokenLifetime must be a positive number of seconds'));
  });
});
