// The storage port and its two implementations.
import type { StoreConfig } from '../config/index.ts';
import { createMemoryStore } from './memory.ts';
import { createRedisClient, createRedisStore } from './redis.ts';
import type { Store, StoreHooks } from './types.ts';

export type { ScoredMember, ScoreRange, SetOptions, Store, StoreHooks, StreamEntry, StreamTrim, SubscribeHandlers, Subscription, WriteOp } from './types.ts';
export { StoreUnavailableError } from './types.ts';
export { createMemoryStore } from './memory.ts';
export { compareStreamIds, isStreamId } from './stream-ids.ts';
export type { MemoryStoreOptions } from './memory.ts';
export { createRedisClient, createRedisStore } from './redis.ts';
export type { RedisStoreConfig } from './redis.ts';

/** Builds the store the config asks for. */
export function createStore(config: StoreConfig, hooks: StoreHooks = {}): Store {
  if (config.driver === 'memory') return createMemoryStore({ keyPrefix: config.keyPrefix });
  return createRedisStore(createRedisClient(config), config, hooks);
}

/**
 * Resolves true once the store answers a ping, false after `timeoutMs`. The Redis client runs
 * without an offline queue (fail fast), so commands sent before the first connect would fail.
 */
export async function waitUntilReachable(store: Store, timeoutMs = 5000, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await store.ping();
      return true;
    } catch {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  }
}
