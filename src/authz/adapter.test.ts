// Contract suite for the oidc-provider adapter over both stores: payload round trips, secondary
// lookups, TTLs, grant revocation, and the atomic consume() that makes code/refresh-token reuse
// (sequential or concurrent) fail with invalid_grant and revoke the grant.

import { Redis } from 'ioredis';
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';

import { freePort } from '../../test/support/redis-server.ts';
import { backends, newPrefix, openRedis } from '../../test/support/stores.ts';
import type { Opened } from '../../test/support/stores.ts';
import { createMemoryStore, createRedisClient, createRedisStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import { createAdapterFactory } from './adapter.ts';
import { TemporarilyUnavailable } from './errors.ts';

const NOW = 1_700_000_000;


/** Resolves to what `promise` rejected with; fails the test if it resolved. */
async function rejection(promise: Promise<unknown>): Promise<Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

const codePayload = (grantId: string, extra: AdapterPayload = {}): AdapterPayload => ({
  kind: 'AuthorizationCode',
  jti: 'code-1',
  grantId,
  accountId: 'alice',
  clientId: 'agent-console',
  scope: 'openid erp:read',
  redirectUri: 'http://127.0.0.1/cb',
  codeChallenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  codeChallengeMethod: 'S256',
  iat: NOW,
  exp: NOW + 60,
  ...extra,
});

describe.each(backends)('$name adapter contract', ({ open }) => {
  let opened: Opened;
  let adapter: (model: string) => Adapter;

  beforeEach(async () => {
    opened = await open(newPrefix());
    adapter = createAdapterFactory(opened.store, { now: () => NOW });
  });

  afterEach(async () => {
    await opened.close();
  });

  it('round-trips a payload through upsert and find', async () => {
    const payload = codePayload('grant-1', {
      claims: { id_token: { email: { essential: true } } },
      resource: ['https://erp.example.test'],
    });
    await adapter('AuthorizationCode').upsert('code-1', payload, 60);
    expect(await adapter('AuthorizationCode').find('code-1')).toEqual(payload);
    expect(await adapter('AuthorizationCode').find('unknown')).toBeUndefined();
    // Models are separate namespaces.
    expect(await adapter('AccessToken').find('code-1')).toBeUndefined();
  });

  it('upsert replaces the previous payload', async () => {
    const sessions = adapter('Session');
    await sessions.upsert('s1', { uid: 'u1', accountId: 'alice', exp: NOW + 100 }, 100);
    await sessions.upsert('s1', { uid: 'u1', loginTs: NOW, exp: NOW + 100 }, 100);
    expect(await sessions.find('s1')).toEqual({ uid: 'u1', loginTs: NOW, exp: NOW + 100 });
  });

  it('finds a Session by uid', async () => {
    const payload: AdapterPayload = { uid: 'uid-abc', accountId: 'alice', loginTs: NOW, exp: NOW + 3600 };
    await adapter('Session').upsert('session-1', payload, 3600);
    expect(await adapter('Session').findByUid('uid-abc')).toEqual(payload);
    expect(await adapter('Session').findByUid('uid-other')).toBeUndefined();
  });

  it('finds a DeviceCode by user code', async () => {
    const payload: AdapterPayload = {
      kind: 'DeviceCode', jti: 'dc-1', userCode: 'WDJBMJHT', clientId: 'cli', scope: 'openid', exp: NOW + 600,
    };
    await adapter('DeviceCode').upsert('dc-1', payload, 600);
    expect(await adapter('DeviceCode').findByUserCode('WDJBMJHT')).toEqual(payload);
    expect(await adapter('DeviceCode').findByUserCode('XXXXXXXX')).toBeUndefined();
  });

  it('consume marks the record consumed with the current time', async () => {
    const codes = adapter('AuthorizationCode');
    await codes.upsert('code-1', codePayload('grant-1'), 60);
    await expect(codes.consume('code-1')).resolves.toBeUndefined();
    expect(await codes.find('code-1')).toEqual({ ...codePayload('grant-1'), consumed: NOW });
  });

  it('upsert keeps a consumed mark present in the payload', async () => {
    const codes = adapter('AuthorizationCode');
    await codes.upsert('code-1', codePayload('grant-1', { consumed: NOW - 5 }), 60);
    expect(await codes.find('code-1')).toEqual({ ...codePayload('grant-1'), consumed: NOW - 5 });
    const error = await rejection(codes.consume('code-1'));
    expect(error.error).toBe('invalid_grant');
  });

  it.each([
    ['AuthorizationCode', 'authorization code already consumed'],
    ['RefreshToken', 'refresh token already used'],
  ])('a second consume of a %s fails with invalid_grant and revokes the grant', async (model, detail) => {
    const grantId = 'grant-reused';
    await adapter(model).upsert('t1', { kind: model, jti: 't1', grantId, exp: NOW + 600 }, 600);
    await adapter('AccessToken').upsert('at1', { kind: 'AccessToken', jti: 'at1', grantId, exp: NOW + 600 }, 600);
    await adapter('RefreshToken').upsert('rt-other', { kind: 'RefreshToken', jti: 'rt-other', grantId, exp: NOW + 600 }, 600);
    await adapter('AccessToken').upsert('at-unrelated', { kind: 'AccessToken', jti: 'at-unrelated', grantId: 'grant-other', exp: NOW + 600 }, 600);

    await adapter(model).consume('t1');
    const error = await rejection(adapter(model).consume('t1'));

    // Same shape as oidc-provider's own sequential-reuse error: generic description on the
    // wire, the reason in error_detail (lib/helpers/grant_source.js, grants/refresh_token.js).
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({
      name: 'InvalidGrant',
      error: 'invalid_grant',
      error_description: 'grant request is invalid',
      error_detail: detail,
      statusCode: 400,
    });
    expect(await adapter(model).find('t1')).toBeUndefined();
    expect(await adapter('AccessToken').find('at1')).toBeUndefined();
    expect(await adapter('RefreshToken').find('rt-other')).toBeUndefined();
    expect(await opened.store.setMembers(`oidc:grant:${grantId}`)).toEqual([]);
    expect(await adapter('AccessToken').find('at-unrelated')).toMatchObject({ jti: 'at-unrelated' });
  });

  it('consume of a missing record fails with invalid_grant', async () => {
    const error = await rejection(adapter('AuthorizationCode').consume('never-issued'));
    expect(error).toMatchObject({
      error: 'invalid_grant',
      error_detail: 'authorization code not found or expired',
    });
    expect(await adapter('AuthorizationCode').find('never-issued')).toBeUndefined();
    expect(await opened.store.hashGetAll('oidc:AuthorizationCode:never-issued')).toBeNull();
  });

  it('destroy removes one record', async () => {
    await adapter('AccessToken').upsert('at1', { jti: 'at1', grantId: 'g', exp: NOW + 60 }, 60);
    await adapter('AccessToken').upsert('at2', { jti: 'at2', grantId: 'g', exp: NOW + 60 }, 60);
    await adapter('AccessToken').destroy('at1');
    expect(await adapter('AccessToken').find('at1')).toBeUndefined();
    expect(await adapter('AccessToken').find('at2')).toEqual({ jti: 'at2', grantId: 'g', exp: NOW + 60 });
    await expect(adapter('AccessToken').destroy('at1')).resolves.toBeUndefined();
  });

  it('revokeByGrantId removes every model issued under the grant and nothing else', async () => {
    const grant = (model: string, id: string, grantId: string) =>
      adapter(model).upsert(id, { kind: model, jti: id, grantId, exp: NOW + 600 }, 600);
    await grant('AccessToken', 'at1', 'g1');
    await grant('AccessToken', 'at2', 'g1');
    await grant('RefreshToken', 'rt1', 'g1');
    await grant('AuthorizationCode', 'ac1', 'g1');
    await grant('AccessToken', 'at3', 'g2');
    await grant('RefreshToken', 'rt2', 'g2');
    await adapter('Session').upsert('s1', { uid: 'u1', accountId: 'alice', exp: NOW + 600 }, 600);

    await adapter('AccessToken').revokeByGrantId('g1');

    for (const [model, id] of [['AccessToken', 'at1'], ['AccessToken', 'at2'], ['RefreshToken', 'rt1'], ['AuthorizationCode', 'ac1']] as const) {
      expect(await adapter(model).find(id)).toBeUndefined();
    }
    expect(await adapter('AccessToken').find('at3')).toEqual({ kind: 'AccessToken', jti: 'at3', grantId: 'g2', exp: NOW + 600 });
    expect(await adapter('RefreshToken').find('rt2')).toEqual({ kind: 'RefreshToken', jti: 'rt2', grantId: 'g2', exp: NOW + 600 });
    expect(await adapter('Session').find('s1')).toEqual({ uid: 'u1', accountId: 'alice', exp: NOW + 600 });
    await expect(adapter('AccessToken').revokeByGrantId('g-unknown')).resolves.toBeUndefined();
  });

  it('of 20 concurrent consumes of one authorization code exactly one wins', async () => {
    const codes = adapter('AuthorizationCode');
    await codes.upsert('code-1', codePayload('grant-race'), 60);
    await adapter('AccessToken').upsert('at1', { jti: 'at1', grantId: 'grant-race', exp: NOW + 600 }, 600);

    const results = await Promise.allSettled(Array.from({ length: 20 }, () => codes.consume('code-1')));

    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as Record<string, unknown>] : []));
    expect(reasons).toHaveLength(19);
    for (const reason of reasons) {
      expect(reason).toMatchObject({ error: 'invalid_grant', error_detail: 'authorization code already consumed' });
    }
    // The losers treat the race as reuse: the whole grant is revoked.
    expect(await codes.find('code-1')).toBeUndefined();
    expect(await adapter('AccessToken').find('at1')).toBeUndefined();
  });
});

describe('memory adapter expiry (fake clock)', () => {
  let t = 1_700_000_000_000;
  let store: Store;
  let adapter: (model: string) => Adapter;

  beforeEach(() => {
    store = createMemoryStore({ keyPrefix: newPrefix(), now: () => t });
    adapter = createAdapterFactory(store, { now: () => Math.floor(t / 1000) });
  });

  afterEach(async () => {
    await store.close();
  });

  it('records, uid and user-code lookups and grant sets expire after expiresIn', async () => {
    await adapter('Session').upsert('s1', { uid: 'u1', exp: 0 }, 30);
    await adapter('DeviceCode').upsert('dc1', { userCode: 'ABCD', grantId: 'g', exp: 0 }, 30);
    await adapter('AccessToken').upsert('at1', { jti: 'at1', grantId: 'g', exp: 0 }, 30);
    t += 29_999;
    expect(await adapter('Session').findByUid('u1')).toEqual({ uid: 'u1', exp: 0 });
    expect(await adapter('DeviceCode').findByUserCode('ABCD')).toEqual({ userCode: 'ABCD', grantId: 'g', exp: 0 });
    expect(await adapter('AccessToken').find('at1')).toEqual({ jti: 'at1', grantId: 'g', exp: 0 });
    t += 1;
    expect(await adapter('Session').find('s1')).toBeUndefined();
    expect(await adapter('Session').findByUid('u1')).toBeUndefined();
    expect(await adapter('DeviceCode').findByUserCode('ABCD')).toBeUndefined();
    expect(await adapter('AccessToken').find('at1')).toBeUndefined();
    expect(await store.get('oidc:uid:u1')).toBeNull();
    expect(await store.setMembers('oidc:grant:g')).toEqual([]);
  });

  it('an expired authorization code cannot be consumed', async () => {
    await adapter('AuthorizationCode').upsert('c1', { jti: 'c1', exp: 0 }, 60);
    t += 60_000;
    const error = await rejection(adapter('AuthorizationCode').consume('c1'));
    expect(error).toMatchObject({ error: 'invalid_grant', error_detail: 'authorization code not found or expired' });
  });
});

describe('redis adapter TTLs', () => {
  const keyPrefix = newPrefix();
  let opened: Opened;
  let adapter: (model: string) => Adapter;
  let raw: Redis;

  beforeAll(async () => {
    opened = await openRedis(inject('redisUrl'), keyPrefix);
    adapter = createAdapterFactory(opened.store);
    raw = new Redis(inject('redisUrl'), { lazyConnect: true });
    await raw.connect();
  });

  afterAll(async () => {
    await opened.close();
    await raw.quit();
  });

  const pttl = (key: string) => raw.pttl(keyPrefix + key);

  it('every key an upsert writes expires within expiresIn', async () => {
    await adapter('Session').upsert('s1', { uid: 'u1' }, 120);
    await adapter('DeviceCode').upsert('dc1', { userCode: 'ABCD', grantId: 'g1' }, 45);
    for (const [key, expiresIn] of [
      ['oidc:Session:s1', 120],
      ['oidc:uid:u1', 120],
      ['oidc:DeviceCode:dc1', 45],
      ['oidc:userCode:ABCD', 45],
      ['oidc:grant:g1', 45],
    ] as const) {
      const ms = await pttl(key);
      expect(ms, key).toBeGreaterThan(0);
      expect(ms, key).toBeLessThanOrEqual(expiresIn * 1000);
    }
  });
});

describe('adapter during a store outage', () => {
  it('find rejects with 503 temporarily_unavailable', async () => {
    const port = await freePort();
    const keyPrefix = newPrefix();
    const store = createRedisStore(
      createRedisClient({ url: `redis://127.0.0.1:${port}/0`, keyPrefix, connectTimeout: 0.5, commandTimeout: 0.5 }),
      { keyPrefix },
    );
    try {
      const adapter = createAdapterFactory(store)('AccessToken');
      const error = await rejection(adapter.find('at1'));
      expect(error).toBeInstanceOf(TemporarilyUnavailable);
      expect(error).toMatchObject({
        error: 'temporarily_unavailable',
        error_description: 'the gateway cannot reach its session store; retry shortly',
        statusCode: 503,
        expose: true,
      });
      expect(await rejection(adapter.consume('at1'))).toBeInstanceOf(TemporarilyUnavailable);
    } finally {
      await store.close();
    }
  });
});
