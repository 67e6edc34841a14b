// In-memory twin of the Redis store for development mode, the demo and unit tests. Same
// semantics as Redis for what the port promises: TTL expiry, SET NX, HSETNX, set TTL growth,
// sorted-set order (score, then member bytewise), stream ids and trimming, pub/sub between the
// subscribers of one store.
// Single process only: it is refused in production mode by config validation.
import type { ScoredMember, SetOptions, Store, StreamEntry, SubscribeHandlers, WriteOp } from './types.ts';
import { compareStreamIds } from './stream-ids.ts';

/** A sorted set: member → score. */
interface SortedSet { scores: Map<string, number> }
type Value = string | Map<string, string> | Set<string> | SortedSet;

const isSortedSet = (value: Value | undefined): value is SortedSet => typeof value === 'object' && 'scores' in value;

/** Redis order: by score, equal scores by member compared as bytes. */
const byScore = (a: ScoredMember, b: ScoredMember) => a.score - b.score || Buffer.compare(Buffer.from(a.member), Buffer.from(b.member));
interface Entry { value: Value; expiresAt: number }

export interface MemoryStoreOptions {
  keyPrefix?: string;
  /** Milliseconds since the epoch; injectable so tests control expiry. */
  now?: () => number;
  /** How often expired entries are swept (they are also dropped lazily on read). */
  sweepIntervalMs?: number;
}

export function createMemoryStore(options: MemoryStoreOptions = {}): Store {
  const prefix = options.keyPrefix ?? '';
  const now = options.now ?? Date.now;
  const data = new Map<string, Entry>();
  const streams = new Map<string, StreamEntry[]>();
  const channels = new Map<string, Set<SubscribeHandlers>>();

  const sweep = setInterval(() => {
    const t = now();
    for (const [key, entry] of data) if (entry.expiresAt <= t) data.delete(key);
  }, options.sweepIntervalMs ?? 60_000);
  sweep.unref();

  const expiry = (ttl?: number) => (ttl === undefined ? Infinity : now() + ttl * 1000);

  function read(key: string): Entry | undefined {
    const k = prefix + key;
    const entry = data.get(k);
    if (entry && entry.expiresAt <= now()) {
      data.delete(k);
      return undefined;
    }
    return entry;
  }

  function apply(op: WriteOp): void {
    const k = prefix + op.key;
    switch (op.op) {
      case 'hash.replace':
        data.set(k, { value: new Map(Object.entries(op.fields)), expiresAt: expiry(op.ttl) });
        return;
      case 'hash.set': {
        const entry = read(op.key);
        const fields = entry?.value instanceof Map ? entry.value : new Map<string, string>();
        for (const [field, value] of Object.entries(op.fields)) fields.set(field, value);
        const expiresAt = op.ttl === undefined ? (entry?.value instanceof Map ? entry.expiresAt : Infinity) : expiry(op.ttl);
        data.set(k, { value: fields, expiresAt });
        return;
      }
      case 'set':
        data.set(k, { value: op.value, expiresAt: expiry(op.ttl) });
        return;
      case 'set.add': {
        const entry = read(op.key);
        const members = entry?.value instanceof Set ? entry.value : new Set<string>();
        for (const m of op.members) members.add(m);
        // As Redis: SADD keeps an existing TTL; a new set without one never expires.
        const existing = entry?.value instanceof Set ? entry.expiresAt : undefined;
        const expiresAt = op.ttl === undefined ? existing ?? Infinity : Math.max(existing ?? -Infinity, expiry(op.ttl));
        data.set(k, { value: members, expiresAt });
        return;
      }
      case 'set.remove': {
        const entry = read(op.key);
        if (!(entry?.value instanceof Set)) return;
        for (const m of op.members) entry.value.delete(m);
        if (entry.value.size === 0) data.delete(k);
        return;
      }
      case 'zset.add': {
        if (op.members.length === 0) return;
        const entry = read(op.key);
        const zset = isSortedSet(entry?.value) ? entry.value : { scores: new Map<string, number>() };
        for (const { member, score } of op.members) zset.scores.set(member, score);
        // As set.add: ZADD keeps an existing TTL, and the TTL given only ever extends it.
        const existing = isSortedSet(entry?.value) ? entry.expiresAt : undefined;
        const expiresAt = op.ttl === undefined ? existing ?? Infinity : Math.max(existing ?? -Infinity, expiry(op.ttl));
        data.set(k, { value: zset, expiresAt });
        return;
      }
      case 'zset.remove':
      case 'zset.trim': {
        const entry = read(op.key);
        if (!isSortedSet(entry?.value)) return;
        const { scores } = entry.value;
        if (op.op === 'zset.remove') for (const m of op.members) scores.delete(m);
        else for (const [member, score] of scores) if (score <= op.maxScore) scores.delete(member);
        if (scores.size === 0) data.delete(k);
        return;
      }
      case 'del':
        data.delete(k);
    }
  }

  function scored(key: string): ScoredMember[] {
    const value = read(key)?.value;
    return isSortedSet(value) ? [...value.scores].map(([member, score]) => ({ member, score })) : [];
  }

  return {
    driver: 'memory',
    async get(key) {
      const value = read(key)?.value;
      return typeof value === 'string' ? value : null;
    },
    async set(key, value, opts: SetOptions = {}) {
      if (opts.ifAbsent && read(key)) return false;
      apply({ op: 'set', key, value, ttl: opts.ttl });
      return true;
    },
    async del(...keys) {
      let removed = 0;
      for (const key of keys) {
        if (read(key)) removed += 1;
        data.delete(prefix + key);
      }
      return removed;
    },
    async getMany(keys) {
      return keys.map((key) => {
        const value = read(key)?.value;
        return typeof value === 'string' ? value : null;
      });
    },
    async appendToStream(key, fields, trim) {
      const k = prefix + key;
      const stream = streams.get(k) ?? [];
      const last = stream.at(-1)?.id.split('-').map(Number) ?? [0, 0];
      const ms = Math.max(now(), last[0] ?? 0);
      const id = `${ms}-${ms === last[0] ? (last[1] ?? 0) + 1 : 0}`;
      stream.push({ id, fields: { ...fields } });
      if (typeof trim === 'number') {
        if (stream.length > trim) stream.splice(0, stream.length - trim);
      } else {
        const keep = stream.findIndex((entry) => compareStreamIds(entry.id, trim.minId) >= 0);
        stream.splice(0, keep === -1 ? stream.length : keep);
      }
      streams.set(k, stream);
      return id;
    },
    async readStream(key, count) {
      return (streams.get(prefix + key) ?? []).slice(-count).reverse().map((e) => ({ id: e.id, fields: { ...e.fields } }));
    },
    async readStreamAfter(key, afterId, count) {
      return (streams.get(prefix + key) ?? [])
        .filter((entry) => compareStreamIds(entry.id, afterId) > 0)
        .slice(0, count)
        .map((e) => ({ id: e.id, fields: { ...e.fields } }));
    },
    async publish(channel, message) {
      // Delivered asynchronously, as Redis does, and to a snapshot of the subscribers.
      for (const handlers of [...(channels.get(prefix + channel) ?? [])]) queueMicrotask(() => handlers.onMessage(message));
    },
    async subscribe(channel, handlers) {
      const k = prefix + channel;
      const own = { ...handlers };
      channels.set(k, (channels.get(k) ?? new Set()).add(own));
      return {
        async close() {
          const set = channels.get(k);
          set?.delete(own);
          if (set?.size === 0) channels.delete(k);
        },
      };
    },
    async take(key) {
      const value = read(key)?.value;
      if (typeof value !== 'string') return null;
      data.delete(prefix + key);
      return value;
    },
    async hashGetAll(key) {
      const value = read(key)?.value;
      return value instanceof Map ? Object.fromEntries(value) : null;
    },
    async hashClaimField(key, field, value) {
      const entry = read(key);
      if (!entry || !(entry.value instanceof Map)) return 'missing';
      if (entry.value.has(field)) return 'taken';
      entry.value.set(field, value);
      return 'set';
    },
    async setMembers(key) {
      const value = read(key)?.value;
      return value instanceof Set ? [...value] : [];
    },
    async rangeByScore(key, { min, max, offset = 0, count, newestFirst = false }) {
      const members = scored(key).filter(({ score }) => score >= min && score <= max).sort(byScore);
      if (newestFirst) members.reverse();
      // As LIMIT: a negative count means all the rest.
      return members.slice(offset, count === undefined || count < 0 ? undefined : offset + count);
    },
    async countByScore(key, min, max) {
      return scored(key).filter(({ score }) => score >= min && score <= max).length;
    },
    async write(ops) {
      for (const op of ops) apply(op);
    },
    async ping() {},
    async close() {
      clearInterval(sweep);
      data.clear();
      streams.clear();
      channels.clear();
    },
  };
}
