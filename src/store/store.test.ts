// Contract suite for the storage port: the Redis store and its in-memory twin must behave the
// same for everything callers rely on (SET NX, guarded HSETNX, ordered writes, set TTL growth).
// Expiry is shown with a fake clock on the memory store and read back from Redis with PTTL.

import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';

import { freePort, startRedis } from '../../test/support/redis-server.ts';
import { backends, newPrefix, openRedis } from '../../test/support/stores.ts';
import type { Opened } from '../../test/support/stores.ts';
import { compareStreamIds, createMemoryStore, createRedisClient, createRedisStore, isStreamId, StoreUnavailableError, waitUntilReachable } from './index.ts';
import type { Store } from './index.ts';


describe.each(backends)('$name store contract', ({ open }) => {
  let opened: Opened[] = [];
  let store: Store;

  async function openStore(keyPrefix = newPrefix()): Promise<Store> {
    const o = await open(keyPrefix);
    opened.push(o);
    return o.store;
  }

  beforeEach(async () => {
    store = await openStore();
  });

  afterEach(async () => {
    await Promise.all(opened.map((o) => o.close()));
    opened = [];
  });

  it('gets, sets and deletes strings', async () => {
    expect(await store.get('a')).toBeNull();
    expect(await store.set('a', 'one')).toBe(true);
    expect(await store.get('a')).toBe('one');
    expect(await store.set('a', 'two')).toBe(true);
    expect(await store.get('a')).toBe('two');
    await store.set('b', 'three');
    expect(await store.del('a', 'b', 'never-set')).toBe(2);
    expect(await store.get('a')).toBeNull();
    expect(await store.get('b')).toBeNull();
    expect(await store.del()).toBe(0);
  });

  it('set with ifAbsent writes only the first time', async () => {
    expect(await store.set('nx', 'first', { ifAbsent: true })).toBe(true);
    expect(await store.set('nx', 'second', { ifAbsent: true })).toBe(false);
    expect(await store.get('nx')).toBe('first');
    expect(await store.set('nx-ttl', 'first', { ifAbsent: true, ttl: 60 })).toBe(true);
    expect(await store.set('nx-ttl', 'second', { ifAbsent: true, ttl: 60 })).toBe(false);
    expect(await store.get('nx-ttl')).toBe('first');
  });

  it('hashGetAll returns null for a missing hash and every field otherwise', async () => {
    expect(await store.hashGetAll('h')).toBeNull();
    await store.write([{ op: 'hash.replace', key: 'h', fields: { a: '1', b: '2' } }]);
    expect(await store.hashGetAll('h')).toEqual({ a: '1', b: '2' });
  });

  it('hashClaimField reports set, taken and missing, and never creates a missing hash', async () => {
    await store.write([{ op: 'hash.replace', key: 'h', fields: { payload: 'p' } }]);
    expect(await store.hashClaimField('h', 'consumed', '100')).toBe('set');
    expect(await store.hashClaimField('h', 'consumed', '200')).toBe('taken');
    expect(await store.hashGetAll('h')).toEqual({ payload: 'p', consumed: '100' });

    expect(await store.hashClaimField('gone', 'consumed', '100')).toBe('missing');
    expect(await store.hashGetAll('gone')).toBeNull();
    expect(await store.del('gone')).toBe(0);
  });

  it('write applies mixed operations in order', async () => {
    await store.write([
      { op: 'hash.replace', key: 'h', fields: { old: '1', keep: 'a' } },
      { op: 'set', key: 's', value: 'v1' },
      { op: 'set.add', key: 'members', members: ['m1', 'm2'] },
      { op: 'set', key: 'doomed', value: 'x' },
    ]);
    await store.write([
      { op: 'hash.replace', key: 'h', fields: { keep: 'b', fresh: '2' } },
      { op: 'set.add', key: 'members', members: ['m2', 'm3'] },
      { op: 'set', key: 's', value: 'v2' },
      { op: 'del', key: 'doomed' },
      // Order matters: written, then deleted, then written again within one batch.
      { op: 'set', key: 'again', value: 'first' },
      { op: 'del', key: 'again' },
      { op: 'set', key: 'again', value: 'last' },
    ]);
    expect(await store.hashGetAll('h')).toEqual({ keep: 'b', fresh: '2' });
    expect((await store.setMembers('members')).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(await store.get('s')).toBe('v2');
    expect(await store.get('doomed')).toBeNull();
    expect(await store.get('again')).toBe('last');
    await store.write([]);
  });

  it('setMembers returns an empty list for a missing set', async () => {
    expect(await store.setMembers('none')).toEqual([]);
    await store.write([{ op: 'set.add', key: 'one', members: ['only'] }]);
    expect(await store.setMembers('one')).toEqual(['only']);
  });

  it('of 20 concurrent ifAbsent sets exactly one wins', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.set('race', `writer-${i}`, { ifAbsent: true, ttl: 60 })),
    );
    expect(results.filter((r) => r)).toHaveLength(1);
    expect(await store.get('race')).toBe(`writer-${results.indexOf(true)}`);
  });

  it('getMany reads several keys at once, null for missing ones', async () => {
    await store.set('a', '1');
    await store.set('c', '3', { ttl: 60 });
    expect(await store.getMany(['a', 'b', 'c'])).toEqual(['1', null, '3']);
    expect(await store.getMany([])).toEqual([]);
  });

  it('answers each of many reads and appends issued in one turn with its own result (gathered per turn on Redis)', async () => {
    for (let i = 0; i < 30; i += 1) await store.set(`k${i}`, `v${i}`);
    const reads = Array.from({ length: 30 }, (_, i) => store.getMany([`k${i}`, 'missing', `k${(i + 1) % 30}`]));
    const appends = Array.from({ length: 10 }, (_, i) => store.appendToStream('turn', { n: String(i) }, 1000));
    expect(await Promise.all(reads)).toEqual(Array.from({ length: 30 }, (_, i) => [`v${i}`, null, `v${(i + 1) % 30}`]));
    const ids = await Promise.all(appends);
    // Appended in the order issued: stream ids increase with n.
    expect((await store.readStream('turn', 10)).map((e) => [e.id, e.fields.n])).toEqual(ids.map((id, n) => [id, String(n)]).reverse());
  });

  it('appends to a bounded stream and reads it newest first', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await store.appendToStream('audit', { n: String(i), event: 'token.exchanged' }, 1000));
    expect(new Set(ids).size).toBe(5);
    const entries = await store.readStream('audit', 3);
    expect(entries.map((e) => e.fields)).toEqual([
      { n: '4', event: 'token.exchanged' }, { n: '3', event: 'token.exchanged' }, { n: '2', event: 'token.exchanged' },
    ]);
    expect(entries[0]!.id).toBe(ids[4]);
    expect(await store.readStream('nothing', 3)).toEqual([]);
  });

  it('take reads and deletes; of 20 concurrent takers exactly one gets the value', async () => {
    expect(await store.take('missing')).toBeNull();
    await store.set('once', 'v1', { ttl: 60 });
    const results = await Promise.all(Array.from({ length: 20 }, () => store.take('once')));
    expect(results.filter((r) => r !== null)).toEqual(['v1']);
    expect(await store.get('once')).toBeNull();
  });

  it('of 20 concurrent hashClaimField calls exactly one sets the field', async () => {
    await store.write([{ op: 'hash.replace', key: 'code', fields: { payload: '{}' }, ttl: 60 }]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.hashClaimField('code', 'consumed', String(i))),
    );
    expect(results.filter((r) => r === 'set')).toHaveLength(1);
    expect(results.filter((r) => r === 'taken')).toHaveLength(19);
    expect(await store.hashGetAll('code')).toEqual({ payload: '{}', consumed: String(results.indexOf('set')) });
  });

  it('stores with different key prefixes do not see each other', async () => {
    const other = await openStore();
    await store.set('shared', 'mine');
    await store.write([
      { op: 'hash.replace', key: 'hash', fields: { a: '1' } },
      { op: 'set.add', key: 'set', members: ['x'] },
    ]);
    expect(await other.get('shared')).toBeNull();
    expect(await other.hashGetAll('hash')).toBeNull();
    expect(await other.setMembers('set')).toEqual([]);
    expect(await other.hashClaimField('hash', 'b', '2')).toBe('missing');
    expect(await other.set('shared', 'theirs', { ifAbsent: true })).toBe(true);
    expect(await other.del('hash', 'set')).toBe(0);
    expect(await store.get('shared')).toBe('mine');
    expect(await other.get('shared')).toBe('theirs');
    expect(await store.hashGetAll('hash')).toEqual({ a: '1' });
  });

  it('hash.set adds fields to a hash, creating it, and keeps the others', async () => {
    await store.write([{ op: 'hash.set', key: 'agents', fields: { a: '1' }, ttl: 60 }]);
    await store.write([{ op: 'hash.set', key: 'agents', fields: { b: '2', a: '3' } }]);
    expect(await store.hashGetAll('agents')).toEqual({ a: '3', b: '2' });
  });

  it('set.remove takes members out of a set; an emptied set is gone', async () => {
    await store.write([{ op: 'set.add', key: 'sids', members: ['s1', 's2', 's3'], ttl: 60 }]);
    await store.write([{ op: 'set.remove', key: 'sids', members: ['s2', 'never-there'] }]);
    expect((await store.setMembers('sids')).sort()).toEqual(['s1', 's3']);
    await store.write([{ op: 'set.remove', key: 'sids', members: ['s1', 's3'] }, { op: 'set.remove', key: 'no-such-set', members: ['x'] }]);
    expect(await store.setMembers('sids')).toEqual([]);
    expect(await store.del('sids')).toBe(0);
  });

  it('sorted sets: zset.add scores members (a re-add moves them), rangeByScore slices by score, either way round', async () => {
    await store.write([{ op: 'zset.add', key: 'z', members: [
      { member: 'c', score: 30 }, { member: 'a', score: 10 }, { member: 'b', score: 20 }, { member: 'd', score: 40 },
    ], ttl: 60 }]);
    await store.write([{ op: 'zset.add', key: 'z', members: [{ member: 'a', score: 50 }] }]);
    const all = { min: -Infinity, max: Infinity };
    expect(await store.rangeByScore('z', all)).toEqual([
      { member: 'b', score: 20 }, { member: 'c', score: 30 }, { member: 'd', score: 40 }, { member: 'a', score: 50 },
    ]);
    expect(await store.rangeByScore('z', { ...all, newestFirst: true })).toEqual([
      { member: 'a', score: 50 }, { member: 'd', score: 40 }, { member: 'c', score: 30 }, { member: 'b', score: 20 },
    ]);
    // Bounds are inclusive; offset and count page through the slice.
    expect(await store.rangeByScore('z', { min: 30, max: 40 })).toEqual([{ member: 'c', score: 30 }, { member: 'd', score: 40 }]);
    expect(await store.rangeByScore('z', { min: 20, max: 40, newestFirst: true, offset: 1, count: 1 })).toEqual([{ member: 'c', score: 30 }]);
    expect(await store.rangeByScore('z', { ...all, offset: 2 })).toEqual([{ member: 'd', score: 40 }, { member: 'a', score: 50 }]);
    expect(await store.rangeByScore('z', { ...all, count: 0 })).toEqual([]);
    expect(await store.rangeByScore('z', { min: 41, max: 49 })).toEqual([]);
    expect(await store.rangeByScore('none', all)).toEqual([]);
    expect(await store.countByScore('z', 20, 40)).toBe(3);
    expect(await store.countByScore('z', 31, Infinity)).toBe(2);
    expect(await store.countByScore('none', -Infinity, Infinity)).toBe(0);
  });

  it('sorted sets: equal scores are ordered by member (reversed newest first); fractional and open-ended scores', async () => {
    await store.write([{ op: 'zset.add', key: 'ties', members: [
      { member: 'm2', score: 5 }, { member: 'm10', score: 5 }, { member: 'm1', score: 5 }, { member: 'x', score: 5.5 }, { member: 'y', score: -Infinity },
    ] }]);
    expect((await store.rangeByScore('ties', { min: -Infinity, max: Infinity })).map((e) => e.member)).toEqual(['y', 'm1', 'm10', 'm2', 'x']);
    expect(await store.rangeByScore('ties', { min: 5, max: 5, newestFirst: true })).toEqual([
      { member: 'm2', score: 5 }, { member: 'm10', score: 5 }, { member: 'm1', score: 5 },
    ]);
    expect(await store.rangeByScore('ties', { min: -Infinity, max: 0 })).toEqual([{ member: 'y', score: -Infinity }]);
    expect(await store.rangeByScore('ties', { min: 5.25, max: Infinity })).toEqual([{ member: 'x', score: 5.5 }]);
  });

  it('sorted sets: zset.remove and zset.trim take members out; an emptied sorted set is gone', async () => {
    await store.write([{ op: 'zset.add', key: 'live', members: [
      { member: 's1', score: 100 }, { member: 's2', score: 200 }, { member: 's3', score: 300 }, { member: 's4', score: 400 },
    ], ttl: 60 }]);
    await store.write([
      { op: 'zset.remove', key: 'live', members: ['s3', 'never-there'] },
      { op: 'zset.trim', key: 'live', maxScore: 200 },
      { op: 'zset.remove', key: 'no-such-zset', members: ['x'] },
      { op: 'zset.trim', key: 'no-such-zset', maxScore: 1 },
    ]);
    expect(await store.rangeByScore('live', { min: -Infinity, max: Infinity })).toEqual([{ member: 's4', score: 400 }]);
    await store.write([{ op: 'zset.trim', key: 'live', maxScore: 400 }]);
    expect(await store.countByScore('live', -Infinity, Infinity)).toBe(0);
    expect(await store.del('live')).toBe(0);
    await store.write([{ op: 'zset.add', key: 'other', members: [{ member: 'a', score: 1 }] }, { op: 'zset.remove', key: 'other', members: ['a'] }]);
    expect(await store.del('other')).toBe(0);
    await store.write([{ op: 'zset.add', key: 'none', members: [] }, { op: 'zset.remove', key: 'none', members: [] }]);
    expect(await store.del('none')).toBe(0);
  });

  it('reads a stream after an id, oldest first, and ids increase', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await store.appendToStream('events', { n: String(i) }, 1000));
    expect([...ids].sort(compareStreamIds)).toEqual(ids);
    expect(ids.every(isStreamId)).toBe(true);
    const all = await store.readStreamAfter('events', '0-0', 100);
    expect(all.map((e) => e.fields.n)).toEqual(['0', '1', '2', '3', '4']);
    expect(all.map((e) => e.id)).toEqual(ids);
    expect((await store.readStreamAfter('events', ids[1]!, 2)).map((e) => e.fields.n)).toEqual(['2', '3']);
    expect(await store.readStreamAfter('events', ids[4]!, 10)).toEqual([]);
    expect(await store.readStreamAfter('nothing', '0-0', 10)).toEqual([]);
  });

  it('trims a stream by minimum id (age) on append', async () => {
    const first = await store.appendToStream('aged', { n: '0' }, { minId: '0-0' });
    const second = await store.appendToStream('aged', { n: '1' }, { minId: '0-0' });
    // Entries before the minimum go (Redis MINID ~ may keep a few more); none at or after it.
    const third = await store.appendToStream('aged', { n: '2' }, { minId: second });
    const left = (await store.readStreamAfter('aged', '0-0', 10)).map((e) => e.id);
    expect(left).toEqual(expect.arrayContaining([second, third]));
    if (store.driver === 'memory') expect(left).not.toContain(first);
  });

  it('publishes to the subscribers of a channel until they close', async () => {
    const got: string[] = [];
    const other: string[] = [];
    const sub = await store.subscribe('events:test', { onMessage: (m) => got.push(m) });
    const sub2 = await store.subscribe('events:test', { onMessage: (m) => got.push(`2:${m}`) });
    const elsewhere = await store.subscribe('events:other', { onMessage: (m) => other.push(m) });
    await store.publish('events:test', 'one');
    await expect.poll(() => got.sort()).toEqual(['2:one', 'one']);
    await sub.close();
    await sub.close();
    await store.publish('events:test', 'two');
    await expect.poll(() => got).toContain('2:two');
    expect(got.filter((m) => m === 'two')).toEqual([]);
    await sub2.close();
    await elsewhere.close();
    expect(other).toEqual([]);
  });

  it('channels are under the key prefix', async () => {
    const neighbour = await openStore();
    const got: string[] = [];
    const sub = await neighbour.subscribe('events:test', { onMessage: (m) => got.push(m) });
    const own: string[] = [];
    const mine = await store.subscribe('events:test', { onMessage: (m) => own.push(m) });
    await store.publish('events:test', 'private');
    await expect.poll(() => own).toEqual(['private']);
    expect(got).toEqual([]);
    await sub.close();
    await mine.close();
  });

  it('ping resolves', async () => {
    await expect(store.ping()).resolves.toBeUndefined();
  });
});

describe('memory store expiry (fake clock)', () => {
  let t = 1_700_000_000_000;
  const now = () => t;
  let store: Store;

  beforeEach(() => {
    store = createMemoryStore({ keyPrefix: newPrefix(), now });
  });

  afterEach(async () => {
    await store.close();
  });

  it('expires strings, hashes and sets at their TTL', async () => {
    await store.set('s', 'v', { ttl: 10 });
    await store.set('forever', 'v');
    await store.write([
      { op: 'hash.replace', key: 'h', fields: { a: '1' }, ttl: 10 },
      { op: 'set.add', key: 'm', members: ['x'], ttl: 10 },
    ]);
    t += 9_999;
    expect(await store.get('s')).toBe('v');
    expect(await store.hashGetAll('h')).toEqual({ a: '1' });
    expect(await store.setMembers('m')).toEqual(['x']);
    expect(await store.hashClaimField('h', 'b', '2')).toBe('set');
    t += 1;
    expect(await store.get('s')).toBeNull();
    expect(await store.hashGetAll('h')).toBeNull();
    expect(await store.setMembers('m')).toEqual([]);
    expect(await store.hashClaimField('h', 'b', '2')).toBe('missing');
    expect(await store.set('s', 'again', { ifAbsent: true })).toBe(true);
    expect(await store.get('forever')).toBe('v');
  });

  it('a sub-second TTL is honoured', async () => {
    await store.set('s', 'v', { ttl: 0.5 });
    t += 499;
    expect(await store.get('s')).toBe('v');
    t += 1;
    expect(await store.get('s')).toBeNull();
  });

  it('hash.replace resets the TTL', async () => {
    await store.write([{ op: 'hash.replace', key: 'h', fields: { a: '1' }, ttl: 100 }]);
    t += 50_000;
    await store.write([{ op: 'hash.replace', key: 'h', fields: { b: '2' }, ttl: 10 }]);
    t += 10_000;
    expect(await store.hashGetAll('h')).toBeNull();
  });

  it("a set's TTL grows with a longer one and never shrinks", async () => {
    await store.write([{ op: 'set.add', key: 'grant', members: ['a'], ttl: 100 }]);
    await store.write([{ op: 'set.add', key: 'grant', members: ['b'], ttl: 200 }]);
    await store.write([{ op: 'set.add', key: 'grant', members: ['c'], ttl: 50 }]);
    t += 199_999;
    expect((await store.setMembers('grant')).sort()).toEqual(['a', 'b', 'c']);
    t += 1;
    expect(await store.setMembers('grant')).toEqual([]);
  });

  it('adding to a set without a TTL keeps its TTL, as Redis SADD does', async () => {
    await store.write([{ op: 'set.add', key: 'grant', members: ['a'], ttl: 100 }]);
    await store.write([{ op: 'set.add', key: 'grant', members: ['b'] }]);
    t += 100_000;
    expect(await store.setMembers('grant')).toEqual([]);
  });

  it("a sorted set expires at its TTL, which only ever grows", async () => {
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'a', score: 1 }], ttl: 100 }]);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'b', score: 2 }], ttl: 200 }]);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'c', score: 3 }], ttl: 50 }]);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'd', score: 4 }] }]);
    t += 199_999;
    expect(await store.countByScore('live', -Infinity, Infinity)).toBe(4);
    t += 1;
    expect(await store.rangeByScore('live', { min: -Infinity, max: Infinity })).toEqual([]);
    expect(await store.countByScore('live', -Infinity, Infinity)).toBe(0);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'e', score: 5 }], ttl: 10 }]);
    expect(await store.rangeByScore('live', { min: -Infinity, max: Infinity })).toEqual([{ member: 'e', score: 5 }]);
    t += 10_000;
    expect(await store.countByScore('live', -Infinity, Infinity)).toBe(0);
  });

  it('an expired set starts afresh with the new TTL', async () => {
    await store.write([{ op: 'set.add', key: 'grant', members: ['a'], ttl: 100 }]);
    t += 100_000;
    await store.write([{ op: 'set.add', key: 'grant', members: ['b'], ttl: 10 }]);
    expect(await store.setMembers('grant')).toEqual(['b']);
    t += 10_000;
    expect(await store.setMembers('grant')).toEqual([]);
  });
});

describe('redis store TTLs', () => {
  const keyPrefix = newPrefix();
  let opened: Opened;
  let store: Store;
  let raw: Redis;

  beforeAll(async () => {
    opened = await openRedis(inject('redisUrl'), keyPrefix);
    store = opened.store;
    raw = new Redis(inject('redisUrl'), { lazyConnect: true });
    await raw.connect();
  });

  afterAll(async () => {
    await opened.close();
    await raw.quit();
  });

  it('a command that fails fails only its own caller, not the others gathered in its turn', async () => {
    await store.set('plain', 'x');
    const [append, read] = await Promise.allSettled([store.appendToStream('plain', { n: '1' }, 10), store.getMany(['plain'])]);
    expect(append.status).toBe('rejected');
    expect(read).toEqual({ status: 'fulfilled', value: ['x'] });
  });

  /** Milliseconds left on a key, read straight from Redis. */
  const pttl = (key: string) => raw.pttl(keyPrefix + key);

  // Elapsed time between the write and the PTTL read is a few ms; allow up to one second.
  const expectTtl = async (key: string, seconds: number) => {
    const ms = await pttl(key);
    expect(ms).toBeGreaterThan(seconds * 1000 - 1000);
    expect(ms).toBeLessThanOrEqual(seconds * 1000);
  };

  it('set with a ttl expires; without one it persists', async () => {
    await store.set('s', 'v', { ttl: 60 });
    await expectTtl('s', 60);
    await store.set('nx', 'v', { ttl: 30, ifAbsent: true });
    await expectTtl('nx', 30);
    await store.set('forever', 'v');
    expect(await pttl('forever')).toBe(-1);
    // Redis TTLs are whole seconds: a fraction is rounded up, never down to "no expiry".
    await store.set('half', 'v', { ttl: 0.5 });
    await expectTtl('half', 1);
  });

  it('hash.replace sets the TTL of the new hash', async () => {
    await store.write([{ op: 'hash.replace', key: 'h', fields: { a: '1' }, ttl: 300 }]);
    await expectTtl('h', 300);
    await store.write([{ op: 'hash.replace', key: 'h', fields: { b: '2' }, ttl: 20 }]);
    await expectTtl('h', 20);
    await store.write([{ op: 'hash.replace', key: 'h', fields: { c: '3' } }]);
    expect(await pttl('h')).toBe(-1);
  });

  it("a set's TTL grows with a longer one and never shrinks", async () => {
    await store.write([{ op: 'set.add', key: 'grant', members: ['a'], ttl: 100 }]);
    await expectTtl('grant', 100);
    await store.write([{ op: 'set.add', key: 'grant', members: ['b'], ttl: 200 }]);
    await expectTtl('grant', 200);
    await store.write([{ op: 'set.add', key: 'grant', members: ['c'], ttl: 50 }]);
    await expectTtl('grant', 200);
    expect((await store.setMembers('grant')).sort()).toEqual(['a', 'b', 'c']);
  });

  it("a sorted set's TTL grows with a longer one and never shrinks; without one it persists", async () => {
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'a', score: 1 }], ttl: 100 }]);
    await expectTtl('live', 100);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'b', score: 2 }], ttl: 200 }]);
    await expectTtl('live', 200);
    await store.write([{ op: 'zset.add', key: 'live', members: [{ member: 'c', score: 3 }], ttl: 50 }, { op: 'zset.trim', key: 'live', maxScore: 1 }]);
    await expectTtl('live', 200);
    expect(await raw.zrange(keyPrefix + 'live', 0, -1, 'WITHSCORES')).toEqual(['b', '2', 'c', '3']);
    await store.write([{ op: 'zset.add', key: 'live-forever', members: [{ member: 'a', score: 1 }] }]);
    expect(await pttl('live-forever')).toBe(-1);
  });
});

describe('redis store pub/sub across connections', () => {
  let opened: Opened[] = [];
  let raw: Redis;

  beforeAll(async () => {
    raw = new Redis(inject('redisUrl'), { lazyConnect: true });
    await raw.connect();
  });
  afterAll(async () => {
    await raw.quit();
  });
  afterEach(async () => {
    await Promise.all(opened.map((o) => o.close()));
    opened = [];
  });

  async function twoStores() {
    const keyPrefix = newPrefix();
    const a = await openRedis(inject('redisUrl'), keyPrefix);
    const b = await openRedis(inject('redisUrl'), keyPrefix);
    opened.push(a, b);
    return { a: a.store, b: b.store, keyPrefix };
  }

  it('a message published by one store reaches the subscribers of another on the same prefix', async () => {
    const { a, b } = await twoStores();
    const got: string[] = [];
    await b.subscribe('events:revocation', { onMessage: (m) => got.push(m) });
    // Subscribing before the subscriber connection is up is fine: it subscribes once it is.
    await expect.poll(async () => {
      await a.publish('events:revocation', 'ping');
      return got.length > 0;
    }).toBe(true);
    await a.publish('events:revocation', '1700000000000-0');
    await expect.poll(() => got).toContain('1700000000000-0');
  });

  it('after its connection drops, the subscriber resubscribes and says so (messages meanwhile are lost)', async () => {
    const { a, b, keyPrefix } = await twoStores();
    const got: string[] = [];
    let resubscribed = 0;
    await b.subscribe('events:revocation', { onMessage: (m) => got.push(m), onResubscribed: () => { resubscribed += 1; } });
    await expect.poll(async () => {
      await a.publish('events:revocation', 'up');
      return got.includes('up');
    }).toBe(true);
    const before = resubscribed;
    const clients = String(await raw.call('CLIENT', 'LIST', 'TYPE', 'pubsub'));
    const id = clients.split('\n').find((line) => line.includes(`name=${keyPrefix}subscriber`))?.match(/id=(\d+)/)?.[1];
    expect(id).toBeDefined();
    await raw.call('CLIENT', 'KILL', 'ID', id!);
    await expect.poll(() => resubscribed, { timeout: 5000 }).toBeGreaterThan(before);
    await a.publish('events:revocation', 'again');
    await expect.poll(() => got).toContain('again');
  });

  it('close() ends the subscriber connection too', async () => {
    const { b, keyPrefix } = await twoStores();
    await b.subscribe('events:revocation', { onMessage: () => {} });
    const named = async () => String(await raw.call('CLIENT', 'LIST', 'TYPE', 'pubsub')).includes(`name=${keyPrefix}subscriber`);
    await expect.poll(named).toBe(true);
    await b.close();
    await expect.poll(named).toBe(false);
  });
});

describe('redis store outage', () => {
  let opened: Opened | undefined;

  afterEach(async () => {
    await opened?.close();
    opened = undefined;
  });

  it('rejects with StoreUnavailableError and reports the operation to onError', async () => {
    const port = await freePort();
    const keyPrefix = newPrefix();
    const errors: { operation: string; error: unknown }[] = [];
    const client = createRedisClient({
      url: `redis://127.0.0.1:${port}/0`, keyPrefix, connectTimeout: 0.5, commandTimeout: 0.5,
    });
    const store = createRedisStore(client, { keyPrefix }, {
      onError: (operation, error) => errors.push({ operation, error }),
    });
    opened = { store, close: () => store.close() };

    const getError = await store.get('k').then(() => undefined, (e: unknown) => e);
    expect(getError).toBeInstanceOf(StoreUnavailableError);
    expect(getError).toMatchObject({
      code: 'ERR_STORE_UNAVAILABLE',
      operation: 'get',
      message: 'store unavailable during get',
    });
    expect((getError as Error).cause).toBeInstanceOf(Error);

    await expect(store.ping()).rejects.toMatchObject({
      name: 'StoreUnavailableError',
      code: 'ERR_STORE_UNAVAILABLE',
      operation: 'ping',
    });
    await expect(store.write([{ op: 'set', key: 'k', value: 'v' }])).rejects.toBeInstanceOf(StoreUnavailableError);

    expect(errors.map((e) => e.operation)).toEqual(['get', 'ping', 'write']);
    expect(errors[0]?.error).toBe((getError as Error).cause);
  });

  it('gives up on a Redis that does not answer after commandTimeout (a busy server), and recovers', async () => {
    const server = await startRedis();
    const keyPrefix = newPrefix();
    const client = createRedisClient({ url: server.url, keyPrefix, connectTimeout: 0.5, commandTimeout: 0.3 });
    const store = createRedisStore(client, { keyPrefix });
    const blocker = new Redis(server.url);
    try {
      expect(await waitUntilReachable(store, 3000)).toBe(true);
      await store.set('k', 'v');
      // A script busy for 1.5 s: the real server answers nobody meanwhile.
      const busy = blocker.eval(`local s = redis.call('TIME')
        while true do
          local n = redis.call('TIME')
          if (n[1] - s[1]) * 1000000 + (n[2] - s[2]) > 1500000 then break end
        end
        return 1`, 0);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const started = Date.now();
      const [read, many] = await Promise.allSettled([store.get('k'), store.getMany(['k'])]);
      const waited = Date.now() - started;
      expect(read).toMatchObject({ status: 'rejected', reason: { name: 'StoreUnavailableError', operation: 'get' } });
      expect(many).toMatchObject({ status: 'rejected', reason: { name: 'StoreUnavailableError', operation: 'getMany' } });
      expect(((read as PromiseRejectedResult).reason as Error).cause).toMatchObject({ message: 'no answer from Redis within 300 ms' });
      expect(waited).toBeLessThan(1000);
      await busy;
      expect(await store.get('k')).toBe('v');
    } finally {
      blocker.disconnect();
      await store.close();
      await server.dispose();
    }
  });
});
