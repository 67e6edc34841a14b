// Both implementations of the storage port, opened the same way for contract suites.
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';

import { inject } from 'vitest';

import { createMemoryStore, createRedisClient, createRedisStore } from '../../src/store/index.ts';
import type { Store, StoreHooks } from '../../src/store/index.ts';

export interface Opened {
  store: Store;
  close(): Promise<void>;
}

export type Backend = { name: 'memory' | 'redis'; open(keyPrefix: string): Promise<Opened> };

export async function openRedis(url: string, keyPrefix: string, hooks: StoreHooks = {}): Promise<Opened> {
  const client = createRedisClient({ url, keyPrefix, connectTimeout: 0.5, commandTimeout: 0.5 });
  // No offline queue (fail fast): a command sent before the first connect would fail.
  if (client.status !== 'ready') await once(client, 'ready');
  const store = createRedisStore(client, { keyPrefix }, hooks);
  return { store, close: () => store.close() };
}

export const backends: Backend[] = [
  {
    name: 'memory',
    async open(keyPrefix) {
      const store = createMemoryStore({ keyPrefix });
      return { store, close: () => store.close() };
    },
  },
  { name: 'redis', open: (keyPrefix) => openRedis(inject('redisUrl'), keyPrefix) },
];

export const newPrefix = () => `test:${randomUUID()}:`;
