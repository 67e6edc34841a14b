// The storage port and its two implementations.
import type { StoreConfig } from '../config/index.ts';
import { createMemoryStore } from './memory.ts';
import { createRedisClient, createRedisStore } from './redis.ts';
import type { Store, StoreHooks } from './types.ts';

export type { SetOptions, Store, StoreHooks, WriteOp } from './types.ts';
export { StoreUnavailableError } from './types.ts';
export { createMemoryStore } from './memory.ts';
export type { MemoryStoreOptions } from './memory.ts';
export { createRedisClient, createRedisStore } from './redis.ts';
export type { RedisStoreConfig } from './redis.ts';

/** Builds the store the config asks for. */
export function createStore(config: StoreConfig, hooks: StoreHooks = {}): Store {
  if (config.driver === 'memory') return createMemoryStore({ keyPrefix: config.keyPrefix });
  return createRedisStore(createRedisClient(config), config, hooks);
}
