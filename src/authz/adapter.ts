// oidc-provider persistence over the storage port (one adapter per model name).
//
// Keys (under the store's prefix):
//   oidc:{Model}:{id}     hash { payload: JSON, consumed?: epoch seconds }, TTL = expiresIn
//   oidc:grant:{grantId}  set of "{Model}:{id}" issued under the grant (revokeByGrantId)
//   oidc:uid:{uid}        Session id by uid;  oidc:userCode:{code}  DeviceCode id by user code
//
// consume() is atomic (HSETNX on the `consumed` field): of any number of concurrent
// redemptions of one authorization code or refresh token exactly one wins. oidc-provider checks
// `consumed` after find() and before consume(), which concurrent requests all pass; the loser of
// the HSETNX race is treated exactly as oidc-provider treats a sequential reuse (RFC 6749
// §4.1.2, RFC 9700 §4.14.2): the grant is revoked and the request fails with invalid_grant.
import type { Adapter, AdapterPayload } from 'oidc-provider';

import type { Store, WriteOp } from '../store/index.ts';
import { StoreUnavailableError } from '../store/index.ts';
import { InvalidGrant, TemporarilyUnavailable } from './errors.ts';

const GRANTABLE = new Set([
  'AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest',
]);

const REUSE_MESSAGE: Record<string, string> = {
  AuthorizationCode: 'authorization code already consumed',
  RefreshToken: 'refresh token already used',
  DeviceCode: 'device code already consumed',
};

export interface AdapterOptions {
  /** Seconds since the epoch (injectable for tests). */
  now?: () => number;
}

const modelKey = (model: string, id: string) => `oidc:${model}:${id}`;
const grantKey = (grantId: string) => `oidc:grant:${grantId}`;
const uidKey = (uid: string) => `oidc:uid:${uid}`;
const userCodeKey = (userCode: string) => `oidc:userCode:${userCode}`;

async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof StoreUnavailableError) throw new TemporarilyUnavailable();
    throw error;
  }
}

export function createAdapterFactory(store: Store, options: AdapterOptions = {}): (model: string) => Adapter {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));

  async function find(model: string, id: string): Promise<AdapterPayload | undefined> {
    const stored = await store.hashGetAll(modelKey(model, id));
    if (!stored?.payload) return undefined;
    const payload = JSON.parse(stored.payload) as AdapterPayload;
    if (stored.consumed) payload.consumed = Number(stored.consumed);
    return payload;
  }

  async function revokeByGrantId(grantId: string): Promise<void> {
    const members = await store.setMembers(grantKey(grantId));
    await store.del(grantKey(grantId), ...members.map((member) => `oidc:${member}`));
  }

  return (model: string): Adapter => ({
    upsert: (id, payload, expiresIn) => guarded(async () => {
      const ttl = expiresIn !== undefined && expiresIn > 0 ? expiresIn : undefined;
      const fields: Record<string, string> = { payload: JSON.stringify(payload) };
      if (payload.consumed) fields.consumed = String(payload.consumed);
      // Indexes first, then the record (see Store.write on clusters).
      const ops: WriteOp[] = [];
      if (GRANTABLE.has(model) && payload.grantId) {
        ops.push({ op: 'set.add', key: grantKey(payload.grantId), members: [`${model}:${id}`], ttl });
      }
      if (model === 'Session' && payload.uid) ops.push({ op: 'set', key: uidKey(payload.uid), value: id, ttl });
      if (payload.userCode) ops.push({ op: 'set', key: userCodeKey(payload.userCode), value: id, ttl });
      ops.push({ op: 'hash.replace', key: modelKey(model, id), fields, ttl });
      await store.write(ops);
    }),

    find: (id) => guarded(() => find(model, id)),

    findByUid: (uid) => guarded(async () => {
      const id = await store.get(uidKey(uid));
      return id ? find(model, id) : undefined;
    }),

    findByUserCode: (userCode) => guarded(async () => {
      const id = await store.get(userCodeKey(userCode));
      return id ? find(model, id) : undefined;
    }),

    consume: (id) => guarded(async () => {
      const outcome = await store.hashClaimField(modelKey(model, id), 'consumed', String(now()));
      if (outcome === 'set') return;
      const label = REUSE_MESSAGE[model] ?? `${model} already consumed`;
      if (outcome === 'missing') throw new InvalidGrant(`${label.replace(/ already .*$/, '')} not found or expired`);
      // Lost a concurrent redemption: same treatment as a sequential reuse.
      const payload = await find(model, id);
      if (payload?.grantId) await revokeByGrantId(payload.grantId);
      throw new InvalidGrant(label);
    }),

    destroy: (id) => guarded(async () => {
      await store.del(modelKey(model, id));
    }),

    revokeByGrantId: (grantId) => guarded(() => revokeByGrantId(grantId)),
  });
}
