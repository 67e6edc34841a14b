// The Redis store and the oidc-provider adapter over it, against a real Sentinel deployment and a
// real 3-master Cluster on loopback. What is proven: the Sentinel client talks to the master the
// sentinel names; in the Cluster, one call may touch keys in different slots on different nodes
// (DEL, mixed writes, revokeByGrantId) and still applies every operation, and the atomic
// primitives (SET NX, guarded HSETNX → one winner of a consume race) hold per key. Values are
// read back with raw clients, TTLs with PTTL on the node that owns the key.
import { randomUUID } from 'node:crypto';

import { Cluster, Redis } from 'ioredis';
import type { AdapterPayload } from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createAdapterFactory } from '../../src/authz/adapter.ts';
import { createRedisClient, createRedisStore, waitUntilReachable } from '../../src/store/index.ts';
import type { Store } from '../../src/store/index.ts';
import { startCluster, startSentinelSetup } from '../support/redis-topologies.ts';
import { newPrefix } from '../support/stores.ts';
import type { ClusterSetup, SentinelSetup } from '../support/redis-topologies.ts';

const SETUP_TIMEOUT = 30_000;

interface Target {
  store: Store;
  keyPrefix: string;
  /** A client that bypasses the store: straight to the master, or a cluster-aware client. */
  raw: Redis | Cluster;
  /** How many nodes hold data (1 for Sentinel, 3 for the Cluster). */
  nodeCount: number;
  /** The node ("host:port") that owns a logical key. */
  nodeOf(key: string): Promise<string>;
}

/**
 * `count` logical keys spread evenly over every node, interleaved so that any `nodeCount`
 * consecutive keys sit on different nodes (hence in different slots).
 */
async function spreadKeys(t: Target, label: string, count: number): Promise<string[]> {
  const perNode = Math.ceil(count / t.nodeCount);
  const byNode = new Map<string, string[]>();
  const full = () => byNode.size === t.nodeCount && [...byNode.values()].every((keys) => keys.length >= perNode);
  for (let i = 0; !full(); i++) {
    if (i > 10_000) throw new Error('could not spread keys over every node');
    const key = `${label}-${i}`;
    const node = await t.nodeOf(key);
    const keys = byNode.get(node) ?? [];
    if (keys.length < perNode) byNode.set(node, [...keys, key]);
  }
  const columns = [...byNode.values()];
  return Array.from({ length: perNode }, (_, row) => columns.map((keys) => keys[row] ?? '')).flat().slice(0, count);
}

/** A fresh id whose key `oidc:{model}:{id}` lives on a node not in `avoid`, when one is left. */
async function pickId(t: Target, model: string, avoid: Set<string>): Promise<{ id: string; node: string }> {
  for (let i = 0; i < 10_000; i++) {
    const id = randomUUID();
    const node = await t.nodeOf(`oidc:${model}:${id}`);
    if (avoid.size >= t.nodeCount || !avoid.has(node)) return { id, node };
  }
  throw new Error(`no ${model} id off ${[...avoid].join(', ')}`);
}

function storeOnTopology(target: () => Target): void {
  const t = () => target();
  const rawKey = (key: string) => t().keyPrefix + key;

  // Elapsed time between the write and the PTTL read is a few ms; allow up to one second.
  const expectTtl = async (key: string, seconds: number) => {
    const ms = await t().raw.pttl(rawKey(key));
    expect(ms).toBeGreaterThan(seconds * 1000 - 1000);
    expect(ms).toBeLessThanOrEqual(seconds * 1000);
  };

  it('sets, gets and deletes 12 keys spread over every node; one DEL counts keys in every slot', async () => {
    const { store, raw } = t();
    const keys = await spreadKeys(t(), 'plain', 12);
    const nodes = new Set(await Promise.all(keys.map((key) => t().nodeOf(key))));
    expect(nodes.size).toBe(t().nodeCount);
    expect(new Set(keys).size).toBe(12);

    for (const [i, key] of keys.entries()) expect(await store.set(key, `value-${i}`)).toBe(true);
    expect(await Promise.all(keys.map((key) => store.get(key)))).toEqual(keys.map((_, i) => `value-${i}`));
    expect(await Promise.all(keys.map((key) => raw.get(rawKey(key))))).toEqual(keys.map((_, i) => `value-${i}`));

    expect(await store.del(...keys, 'never-set')).toBe(12);
    expect(await Promise.all(keys.map((key) => store.get(key)))).toEqual(keys.map(() => null));
    expect(await Promise.all(keys.map((key) => raw.exists(rawKey(key))))).toEqual(keys.map(() => 0));
    expect(await store.del(...keys)).toBe(0);
    expect(await store.del()).toBe(0);
  });

  it('set with ifAbsent writes only the first time, with and without a TTL', async () => {
    const { store } = t();
    expect(await store.set('nx', 'first', { ifAbsent: true })).toBe(true);
    expect(await store.set('nx', 'second', { ifAbsent: true })).toBe(false);
    expect(await store.get('nx')).toBe('first');
    expect(await t().raw.pttl(rawKey('nx'))).toBe(-1);

    expect(await store.set('nx-ttl', 'first', { ifAbsent: true, ttl: 30 })).toBe(true);
    expect(await store.set('nx-ttl', 'second', { ifAbsent: true, ttl: 90 })).toBe(false);
    expect(await store.get('nx-ttl')).toBe('first');
    await expectTtl('nx-ttl', 30);
  });

  it('hashClaimField reports set, taken and missing, and never creates a missing hash', async () => {
    const { store, raw } = t();
    await store.write([{ op: 'hash.replace', key: 'claim', fields: { payload: 'p' }, ttl: 60 }]);
    expect(await store.hashClaimField('claim', 'consumed', '100')).toBe('set');
    expect(await store.hashClaimField('claim', 'consumed', '200')).toBe('taken');
    expect(await raw.hgetall(rawKey('claim'))).toEqual({ payload: 'p', consumed: '100' });
    await expectTtl('claim', 60);

    expect(await store.hashClaimField('claim-gone', 'consumed', '100')).toBe('missing');
    expect(await raw.exists(rawKey('claim-gone'))).toBe(0);
  });

  it('write applies mixed operations on keys in different slots, each in order', async () => {
    const { store, raw } = t();
    const [h, s, m, doomed, again] = await spreadKeys(t(), 'mixed', 5) as [string, string, string, string, string];
    const nodes = new Set(await Promise.all([h, s, m].map((key) => t().nodeOf(key))));
    expect(nodes.size).toBe(Math.min(3, t().nodeCount));

    await store.write([
      { op: 'hash.replace', key: h, fields: { old: '1', keep: 'a' } },
      { op: 'set', key: s, value: 'v1' },
      { op: 'set.add', key: m, members: ['m1', 'm2'] },
      { op: 'set', key: doomed, value: 'x' },
    ]);
    expect(await raw.get(rawKey(doomed))).toBe('x');
    await store.write([
      { op: 'hash.replace', key: h, fields: { keep: 'b', fresh: '2' }, ttl: 300 },
      { op: 'set.add', key: m, members: ['m2', 'm3'], ttl: 120 },
      { op: 'set', key: s, value: 'v2', ttl: 60 },
      { op: 'del', key: doomed },
      // Order matters: written, then deleted, then written again within one batch.
      { op: 'set', key: again, value: 'first' },
      { op: 'del', key: again },
      { op: 'set', key: again, value: 'last' },
    ]);

    expect(await raw.hgetall(rawKey(h))).toEqual({ keep: 'b', fresh: '2' });
    expect((await raw.smembers(rawKey(m))).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(await raw.get(rawKey(s))).toBe('v2');
    expect(await raw.exists(rawKey(doomed))).toBe(0);
    expect(await raw.get(rawKey(again))).toBe('last');
    expect(await store.hashGetAll(h)).toEqual({ keep: 'b', fresh: '2' });
    expect((await store.setMembers(m)).sort()).toEqual(['m1', 'm2', 'm3']);
    expect(await store.get(s)).toBe('v2');
    expect(await store.get(again)).toBe('last');
    await expectTtl(h, 300);
    await expectTtl(m, 120);
    await expectTtl(s, 60);
    expect(await raw.pttl(rawKey(again))).toBe(-1);
  });

  it("a set's TTL starts with its first TTL, grows with a longer one and never shrinks", async () => {
    const { store, raw } = t();
    await store.write([{ op: 'set.add', key: 'grant', members: ['a'], ttl: 100 }]);
    await expectTtl('grant', 100);
    await store.write([{ op: 'set.add', key: 'grant', members: ['b'], ttl: 200 }]);
    await expectTtl('grant', 200);
    await store.write([{ op: 'set.add', key: 'grant', members: ['c'], ttl: 50 }]);
    await expectTtl('grant', 200);
    // Adding without a TTL keeps the TTL, as SADD does.
    await store.write([{ op: 'set.add', key: 'grant', members: ['d'] }]);
    await expectTtl('grant', 200);
    expect((await raw.smembers(rawKey('grant'))).sort()).toEqual(['a', 'b', 'c', 'd']);

    await store.write([{ op: 'set.add', key: 'grant-forever', members: ['a'] }]);
    expect(await raw.pttl(rawKey('grant-forever'))).toBe(-1);
  });

  it('sorted sets: add, trim, remove and read by score, in one write with a record in another slot', async () => {
    const { store, raw } = t();
    const [index, record] = await spreadKeys(t(), 'zset', 2) as [string, string];
    expect(new Set(await Promise.all([index, record].map((key) => t().nodeOf(key)))).size).toBe(Math.min(2, t().nodeCount));
    await store.write([
      { op: 'zset.add', key: index, members: [{ member: 's1', score: 100 }, { member: 's2', score: 200 }, { member: 's3', score: 300 }], ttl: 120 },
      { op: 'set', key: record, value: 'r', ttl: 60 },
    ]);
    await store.write([
      { op: 'zset.add', key: index, members: [{ member: 's4', score: 300 }], ttl: 60 },
      { op: 'zset.trim', key: index, maxScore: 100 },
      { op: 'zset.remove', key: index, members: ['s2'] },
    ]);
    expect(await raw.zrange(rawKey(index), 0, -1, 'WITHSCORES')).toEqual(['s3', '300', 's4', '300']);
    expect(await store.rangeByScore(index, { min: 150, max: Infinity, newestFirst: true, count: 1 })).toEqual([{ member: 's4', score: 300 }]);
    expect(await store.rangeByScore(index, { min: 150, max: Infinity, newestFirst: true, offset: 1 })).toEqual([{ member: 's3', score: 300 }]);
    expect(await store.countByScore(index, 300, 300)).toBe(2);
    expect(await store.get(record)).toBe('r');
    await expectTtl(index, 120);
    await store.write([{ op: 'zset.remove', key: index, members: ['s3', 's4'] }]);
    expect(await raw.exists(rawKey(index))).toBe(0);
  });

  it('of 20 concurrent hashClaimField calls exactly one sets the field', async () => {
    const { store, raw } = t();
    await store.write([{ op: 'hash.replace', key: 'race', fields: { payload: '{}' }, ttl: 60 }]);
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.hashClaimField('race', 'consumed', String(i))),
    );
    expect(results.filter((r) => r === 'set')).toHaveLength(1);
    expect(results.filter((r) => r === 'taken')).toHaveLength(19);
    expect(await raw.hgetall(rawKey('race'))).toEqual({ payload: '{}', consumed: String(results.indexOf('set')) });
  });

  it('the adapter revokes a grant whose tokens live in different slots', async () => {
    const { store, raw } = t();
    const adapter = createAdapterFactory(store);
    const grantId = randomUUID();
    const grantNode = await t().nodeOf(`oidc:grant:${grantId}`);
    const at = await pickId(t(), 'AccessToken', new Set([grantNode]));
    const rt = await pickId(t(), 'RefreshToken', new Set([grantNode, at.node]));
    const code = await pickId(t(), 'AuthorizationCode', new Set());
    expect(new Set([grantNode, at.node, rt.node, code.node]).size).toBe(t().nodeCount);

    const payload = (kind: string, jti: string): AdapterPayload => ({
      kind, jti, grantId, accountId: 'alice', clientId: 'agent-console', scope: 'openid',
    });
    await adapter('AccessToken').upsert(at.id, payload('AccessToken', at.id), 600);
    await adapter('RefreshToken').upsert(rt.id, payload('RefreshToken', rt.id), 3600);
    await adapter('AuthorizationCode').upsert(code.id, payload('AuthorizationCode', code.id), 60);

    expect(await adapter('AccessToken').find(at.id)).toEqual(payload('AccessToken', at.id));
    expect(await adapter('RefreshToken').find(rt.id)).toEqual(payload('RefreshToken', rt.id));
    expect(await adapter('AuthorizationCode').find(code.id)).toEqual(payload('AuthorizationCode', code.id));
    expect((await raw.smembers(rawKey(`oidc:grant:${grantId}`))).sort()).toEqual([
      `AccessToken:${at.id}`, `AuthorizationCode:${code.id}`, `RefreshToken:${rt.id}`,
    ].sort());
    // The grant outlives its longest-lived member.
    await expectTtl(`oidc:grant:${grantId}`, 3600);
    await expectTtl(`oidc:AccessToken:${at.id}`, 600);

    await adapter('AccessToken').revokeByGrantId(grantId);

    expect(await adapter('AccessToken').find(at.id)).toBeUndefined();
    expect(await adapter('RefreshToken').find(rt.id)).toBeUndefined();
    expect(await adapter('AuthorizationCode').find(code.id)).toBeUndefined();
    const keys = [`oidc:grant:${grantId}`, `oidc:AccessToken:${at.id}`, `oidc:RefreshToken:${rt.id}`,
      `oidc:AuthorizationCode:${code.id}`];
    expect(await Promise.all(keys.map((key) => raw.exists(rawKey(key))))).toEqual([0, 0, 0, 0]);
  });

  it('of 20 concurrent consume() calls on one code exactly one wins; the rest fail invalid_grant and revoke the grant', async () => {
    const { store, raw } = t();
    const adapter = createAdapterFactory(store, { now: () => 1_700_000_000 });
    const grantId = randomUUID();
    const code = randomUUID();
    const token = randomUUID();
    await adapter('AuthorizationCode').upsert(code, { kind: 'AuthorizationCode', jti: code, grantId }, 60);
    await adapter('AccessToken').upsert(token, { kind: 'AccessToken', jti: token, grantId }, 600);

    const settled = await Promise.allSettled(
      Array.from({ length: 20 }, () => adapter('AuthorizationCode').consume(code)),
    );

    expect(settled.filter((s) => s.status === 'fulfilled')).toEqual([{ status: 'fulfilled', value: undefined }]);
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused).toHaveLength(19);
    for (const r of refused) {
      expect(r.reason).toMatchObject({ error: 'invalid_grant', error_detail: 'authorization code already consumed' });
    }
    // A lost race is treated as reuse (RFC 9700 §4.14.2): the whole grant is gone.
    expect(await adapter('AuthorizationCode').find(code)).toBeUndefined();
    expect(await adapter('AccessToken').find(token)).toBeUndefined();
    expect(await raw.exists(rawKey(`oidc:grant:${grantId}`))).toBe(0);
  });

  it('ping resolves', async () => {
    await expect(t().store.ping()).resolves.toBeUndefined();
  });

  it('publishes to subscribers and reads a stream after an id (the revocation feed)', async () => {
    const got: string[] = [];
    const subscription = await t().store.subscribe('events:revocation', { onMessage: (m) => got.push(m) });
    try {
      const first = await t().store.appendToStream('revocations', { n: '1' }, { minId: '0-0' });
      const second = await t().store.appendToStream('revocations', { n: '2' }, { minId: '0-0' });
      await t().store.publish('events:revocation', second);
      await expect.poll(() => got).toEqual([second]);
      expect(await t().store.readStreamAfter('revocations', first, 10)).toEqual([{ id: second, fields: { n: '2' } }]);
    } finally {
      await subscription.close();
    }
  });
}

describe('sentinel', () => {
  const keyPrefix = newPrefix();
  let setup: SentinelSetup | undefined;
  let store: Store | undefined;
  let master: Redis | undefined;
  let target: Target;

  beforeAll(async () => {
    setup = await startSentinelSetup();
    store = createRedisStore(createRedisClient({
      keyPrefix, connectTimeout: 0.5, commandTimeout: 0.5,
      sentinel: { name: setup.name, sentinels: setup.sentinels, db: 0, tls: false },
    }), { keyPrefix });
    expect(await waitUntilReachable(store)).toBe(true);
    master = new Redis({ host: '127.0.0.1', port: setup.masterPort, lazyConnect: true });
    await master.connect();
    const address = `127.0.0.1:${setup.masterPort}`;
    target = { store, keyPrefix, raw: master, nodeCount: 1, nodeOf: async () => address };
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    await store?.close();
    master?.disconnect();
    await setup?.dispose();
  });

  it('talks to the master the sentinel names', async () => {
    const sentinel = new Redis({ ...setup?.sentinels[0], lazyConnect: true });
    try {
      await sentinel.connect();
      expect(await sentinel.call('SENTINEL', 'get-master-addr-by-name', 'agentgate-test'))
        .toEqual(['127.0.0.1', String(setup?.masterPort)]);
    } finally {
      sentinel.disconnect();
    }
    await target.store.set('via-store', 'written-through-sentinel');
    expect(await master?.get(`${keyPrefix}via-store`)).toBe('written-through-sentinel');
    await master?.set(`${keyPrefix}via-master`, 'written-on-master');
    expect(await target.store.get('via-master')).toBe('written-on-master');
  });

  storeOnTopology(() => target);
});

describe('cluster', () => {
  const keyPrefix = newPrefix();
  let setup: ClusterSetup | undefined;
  let store: Store | undefined;
  let raw: Cluster | undefined;
  let target: Target;

  beforeAll(async () => {
    setup = await startCluster();
    store = createRedisStore(createRedisClient({
      keyPrefix, connectTimeout: 0.5, commandTimeout: 0.5,
      cluster: { nodes: setup.nodes, tls: false },
    }), { keyPrefix });
    expect(await waitUntilReachable(store)).toBe(true);
    raw = new Cluster(setup.nodes);
    const slots = await raw.cluster('SLOTS');
    const cluster = raw;
    target = {
      store, keyPrefix, raw: cluster, nodeCount: 3,
      async nodeOf(key) {
        const slot = await cluster.cluster('KEYSLOT', keyPrefix + key);
        const range = slots.find(([start, end]) => slot >= start && slot <= end);
        const owner = range?.[2];
        if (!owner) throw new Error(`slot ${slot} has no owner`);
        return `${owner[0]}:${owner[1]}`;
      },
    };
  }, SETUP_TIMEOUT);

  afterAll(async () => {
    await store?.close();
    raw?.disconnect();
    await setup?.dispose();
  });

  it('the three nodes share every slot', async () => {
    const slots = await raw?.cluster('SLOTS') ?? [];
    const owners = new Set(slots.map((range) => range[2]?.[1]));
    expect([...owners].sort()).toEqual(setup?.nodes.map((node) => node.port).sort());
    expect(slots.reduce((sum, [start, end]) => sum + end - start + 1, 0)).toBe(16_384);
  });

  storeOnTopology(() => target);
});
