// Redis implementation of the storage port (ioredis): standalone by URL, Sentinel, or Cluster.
// Fail fast is a feature: with Redis gone a request must get 503 within a second, not hang for
// ioredis' default ~73 s of retries. So: no offline queue (commands fail at once while
// disconnected), one retry per request, bounded connect and command timeouts, and a reconnect
// loop that brings the gateway back by itself when Redis returns.
import { Cluster, Command, Redis } from 'ioredis';
import type { ChainableCommander, ClusterOptions, RedisOptions } from 'ioredis';

import type { ScoredMember, SetOptions, Store, StoreHooks, StreamEntry, SubscribeHandlers, WriteOp } from './types.ts';
import { StoreUnavailableError } from './types.ts';

export interface RedisStoreConfig {
  url?: string;
  sentinel?: {
    name: string;
    sentinels: { host: string; port: number }[];
    password?: string;
    username?: string;
    sentinelPassword?: string;
    db: number;
    tls: boolean;
  };
  cluster?: {
    nodes: { host: string; port: number }[];
    password?: string;
    username?: string;
    tls: boolean;
  };
  keyPrefix: string;
  /** Seconds. */
  connectTimeout: number;
  /** Seconds. */
  commandTimeout: number;
}

// EXISTS guard: HSETNX on a missing key would create a hash without a TTL that lives forever.
const CLAIM_FIELD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])`;

/** HSET with the hash's TTL in one atomic command: unlike MULTI, it rides the auto-pipeline. */
const HASH_SET_EX = `
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return redis.call('EXPIRE', KEYS[1], ARGV[1])`;

type Client = Redis | Cluster;

/** A score as Redis reads it: `+inf` / `-inf` for the open ends. */
const scoreArg = (score: number) => (score === Infinity ? '+inf' : score === -Infinity ? '-inf' : String(score));
const scoreOf = (reply: string) => (reply === 'inf' || reply === '+inf' ? Infinity : reply === '-inf' ? -Infinity : Number(reply));

/** How long `subscribe` waits for a subscriber connection that is still connecting. */
const SUBSCRIBE_WAIT_MS = 2000;

/**
 * Per client, how long a store operation may wait for Redis (config `commandTimeout`). Enforced by
 * the store, once per operation, rather than by ioredis's `commandTimeout`: that arms a timer per
 * command whose closure holds the whole command, so every command of the hot path outlived two
 * young-generation collections and was promoted (measured: twice the promoted bytes and longer
 * minor GC pauses).
 */
const operationTimeouts = new WeakMap<Client, number>();

export function createRedisClient(config: RedisStoreConfig): Client {
  const base: RedisOptions = {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: Math.ceil(config.connectTimeout * 1000),
    // Reconnect forever, backing off to 1 s, so the gateway heals when Redis returns.
    retryStrategy: (attempt) => Math.min(attempt * 50, 1000),
    lazyConnect: false,
    // Commands issued in the same tick share one write (the exchange's look-ups run concurrently).
    enableAutoPipelining: true,
  };
  if (config.cluster) {
    const { nodes, password, username, tls } = config.cluster;
    const options: ClusterOptions = {
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      clusterRetryStrategy: (attempt) => Math.min(attempt * 50, 1000),
      redisOptions: { ...base, password, username, ...(tls ? { tls: {} } : {}) },
    };
    return withTimeout(new Cluster(nodes, options), config);
  }
  if (config.sentinel) {
    const { name, sentinels, password, username, sentinelPassword, db, tls } = config.sentinel;
    return withTimeout(new Redis({
      ...base, name, sentinels, password, username, sentinelPassword, db,
      sentinelMaxConnections: 10,
      ...(tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    }), config);
  }
  if (!config.url) throw new TypeError('createRedisClient: one of url, sentinel or cluster is required');
  return withTimeout(new Redis(config.url, base), config);
}

function withTimeout<C extends Client>(client: C, config: RedisStoreConfig): C {
  operationTimeouts.set(client, Math.ceil(config.commandTimeout * 1000));
  return client;
}

class OperationTimeout extends Error {
  constructor(ms: number) {
    super(`no answer from Redis within ${ms} ms`);
    this.name = 'OperationTimeout';
  }
}

export function createRedisStore(client: Client, config: { keyPrefix: string }, hooks: StoreHooks = {}): Store {
  const prefix = config.keyPrefix;
  const isCluster = client instanceof Cluster;
  // Swallow connection-level errors here: they surface as failed commands (503) and in /readyz.
  client.on('error', () => {});

  // The hot path's reads and appends (the token exchange's MGET, its audit XADD) are gathered per
  // event-loop turn, not per tick as ioredis's auto-pipelining does: requests parsed in the same
  // I/O phase then share one write to Redis and one read back (on a single node; a cluster keeps
  // auto-pipelining, which groups by slot). The commands go straight to the connection with its
  // socket corked — no ioredis Pipeline per turn: a Pipeline copies every defined script onto
  // itself and lived long enough to be promoted, a third of what the minor GCs copied.
  let turn: Command[] = [];
  const flushTurn = () => {
    const batch = turn;
    turn = [];
    const socket = (client as Redis).stream as { cork?: () => void; uncork?: () => void } | undefined;
    socket?.cork?.();
    try {
      for (const command of batch) void (client as Redis).sendCommand(command);
    } finally {
      socket?.uncork?.();
    }
  };
  function inTurn<T>(name: string, args: (string | number)[]): Promise<T> {
    const command = new Command(name, args, { replyEncoding: 'utf8' });
    if (turn.length === 0) setImmediate(flushTurn);
    turn.push(command);
    return command.promise as Promise<T>;
  }

  const timeoutMs = operationTimeouts.get(client);
  async function run<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      if (timeoutMs === undefined) return await fn();
      return await Promise.race([
        fn(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new OperationTimeout(timeoutMs)), timeoutMs);
        }),
      ]);
    } catch (error) {
      hooks.onError?.(operation, error);
      throw new StoreUnavailableError(operation, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }

  function queue(tx: ChainableCommander, op: WriteOp): void {
    const key = prefix + op.key;
    switch (op.op) {
      case 'hash.replace':
        tx.del(key);
        tx.hset(key, op.fields);
        if (op.ttl !== undefined) tx.expire(key, Math.ceil(op.ttl));
        return;
      case 'hash.set':
        tx.hset(key, op.fields);
        if (op.ttl !== undefined) tx.expire(key, Math.ceil(op.ttl));
        return;
      case 'set':
        if (op.ttl !== undefined) tx.set(key, op.value, 'EX', Math.ceil(op.ttl));
        else tx.set(key, op.value);
        return;
      case 'set.add':
        tx.sadd(key, ...op.members);
        if (op.ttl !== undefined) {
          // NX sets a TTL on a fresh set; GT only ever extends it (Redis ≥ 7).
          tx.expire(key, Math.ceil(op.ttl), 'NX');
          tx.expire(key, Math.ceil(op.ttl), 'GT');
        }
        return;
      case 'set.remove':
        tx.srem(key, ...op.members);
        return;
      case 'zset.add':
        if (op.members.length === 0) return;
        tx.zadd(key, ...op.members.flatMap(({ member, score }) => [scoreArg(score), member]));
        if (op.ttl !== undefined) {
          tx.expire(key, Math.ceil(op.ttl), 'NX');
          tx.expire(key, Math.ceil(op.ttl), 'GT');
        }
        return;
      case 'zset.remove':
        if (op.members.length > 0) tx.zrem(key, ...op.members);
        return;
      case 'zset.trim':
        tx.zremrangebyscore(key, '-inf', scoreArg(op.maxScore));
        return;
      case 'del':
        tx.del(key);
    }
  }

  const entries = (raw: [string, string[]][]): StreamEntry[] => raw.map(([id, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
    return { id, fields };
  });

  async function exec(tx: ChainableCommander): Promise<void> {
    const results = await tx.exec();
    for (const [error] of results ?? []) if (error) throw error;
  }

  // Pub/sub: a connection in subscriber mode can run no other command, so subscriptions share one
  // extra connection, opened on first use. It reconnects like the main one; on every (re)connect
  // it subscribes to the channels wanted at that moment and tells their subscribers they may have
  // missed messages (autoResubscribe is off: ioredis would only restore channels it had confirmed).
  interface Subscriber extends SubscribeHandlers { live: boolean }
  const channels = new Map<string, Set<Subscriber>>();
  let subscriber: Client | undefined;
  let waiting: (() => void)[] = [];

  function openSubscriber(): Client {
    const connection = client instanceof Cluster
      ? client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, autoResubscribe: false } })
      : client.duplicate({ autoResubscribe: false, connectionName: `${prefix}subscriber` });
    connection.on('error', () => {});
    connection.on('message', (channel: string, message: string) => {
      for (const handlers of [...(channels.get(channel) ?? [])]) handlers.onMessage(message);
    });
    connection.on('ready', () => {
      const wanted = [...channels.keys()];
      const settled = waiting;
      waiting = [];
      if (wanted.length === 0) {
        for (const resolve of settled) resolve();
        return;
      }
      connection.subscribe(...wanted).then(() => {
        for (const channel of wanted) {
          for (const handlers of [...(channels.get(channel) ?? [])]) {
            if (handlers.live) handlers.onResubscribed?.();
            handlers.live = true;
          }
        }
      }, (error: unknown) => hooks.onError?.('subscribe', error)).finally(() => {
        for (const resolve of settled) resolve();
      });
    });
    return connection;
  }

  return {
    driver: 'redis',
    get: (key) => run('get', () => client.get(prefix + key)),
    set: (key, value, options: SetOptions = {}) => run('set', async () => {
      const k = prefix + key;
      const ttl = options.ttl === undefined ? undefined : Math.ceil(options.ttl);
      let reply: string | null;
      if (ttl !== undefined && options.ifAbsent) reply = await client.set(k, value, 'EX', ttl, 'NX');
      else if (ttl !== undefined) reply = await client.set(k, value, 'EX', ttl);
      else if (options.ifAbsent) reply = await client.set(k, value, 'NX');
      else reply = await client.set(k, value);
      return reply === 'OK';
    }),
    del: (...keys) => run('del', async () => {
      if (keys.length === 0) return 0;
      if (!isCluster) return client.del(...keys.map((k) => prefix + k));
      // Keys of one call may live in different cluster slots.
      const counts = await Promise.all(keys.map((k) => client.del(prefix + k)));
      return counts.reduce((a, b) => a + b, 0);
    }),
    take: (key) => run('take', () => client.getdel(prefix + key)),
    getMany: (keys) => run('getMany', async () => {
      if (keys.length === 0) return [];
      // One MGET on a single node; a cluster answers per slot.
      if (!isCluster) return inTurn<(string | null)[]>('mget', keys.map((k) => prefix + k));
      return Promise.all(keys.map((k) => client.get(prefix + k)));
    }),
    appendToStream: (key, fields, trim) => run('appendToStream', async () => {
      const flat = Object.entries(fields).flat();
      const k = prefix + key;
      const args = typeof trim === 'number' ? ['MAXLEN', '~', trim] : ['MINID', '~', trim.minId];
      const id = isCluster
        ? await client.xadd(k, ...args, '*', ...flat)
        : await inTurn<string | null>('xadd', [k, ...args, '*', ...flat]);
      return id ?? '';
    }),
    readStream: (key, count) => run('readStream', async () => entries(await client.xrevrange(prefix + key, '+', '-', 'COUNT', count))),
    readStreamAfter: (key, afterId, count) => run('readStreamAfter', async () =>
      entries(await client.xrange(prefix + key, `(${afterId}`, '+', 'COUNT', count))),
    publish: (channel, message) => run('publish', async () => {
      await client.publish(prefix + channel, message);
    }),
    async subscribe(channel, handlers) {
      const name = prefix + channel;
      const own: Subscriber = { ...handlers, live: false };
      const first = !channels.has(name);
      channels.set(name, (channels.get(name) ?? new Set()).add(own));
      subscriber ??= openSubscriber();
      if (subscriber.status === 'ready') {
        // A failure here means the connection is going down; its next 'ready' subscribes again.
        if (first) await subscriber.subscribe(name).catch((error: unknown) => hooks.onError?.('subscribe', error));
        own.live = true;
      } else {
        // Connecting: the 'ready' handler subscribes to every wanted channel. Wait for that a
        // little, so a caller that publishes next is heard; never block on an absent Redis.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS);
          waiting.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return {
        async close() {
          const set = channels.get(name);
          if (!set?.delete(own) || set.size > 0) return;
          channels.delete(name);
          if (subscriber?.status === 'ready') await subscriber.unsubscribe(name).catch(() => {});
        },
      };
    },
    hashGetAll: (key) => run('hashGetAll', async () => {
      const fields = await client.hgetall(prefix + key);
      return Object.keys(fields).length === 0 ? null : fields;
    }),
    hashClaimField: (key, field, value) => run('hashClaimField', async () => {
      const reply = await client.eval(CLAIM_FIELD, 1, prefix + key, field, value);
      return reply === -1 ? 'missing' : reply === 1 ? 'set' : 'taken';
    }),
    setMembers: (key) => run('setMembers', () => client.smembers(prefix + key)),
    rangeByScore: (key, range) => run('rangeByScore', async () => {
      const { min, max, offset = 0, count, newestFirst = false } = range;
      // ZRANGE … BYSCORE (Redis ≥ 6.2); with REV the bounds come highest first.
      const bounds = newestFirst ? [scoreArg(max), scoreArg(min), 'BYSCORE', 'REV'] : [scoreArg(min), scoreArg(max), 'BYSCORE'];
      const limit = offset > 0 || count !== undefined ? ['LIMIT', offset, count ?? -1] : [];
      const flat = await client.call('zrange', prefix + key, ...bounds, ...limit, 'WITHSCORES') as string[];
      const members: ScoredMember[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) members.push({ member: flat[i]!, score: scoreOf(flat[i + 1]!) });
      return members;
    }),
    countByScore: (key, min, max) => run('countByScore', () => client.zcount(prefix + key, scoreArg(min), scoreArg(max))),
    write: (ops) => run('write', async () => {
      if (ops.length === 0) return;
      const [only] = ops;
      // The token exchange's per-grant write (session agents): one script call, no transaction.
      if (ops.length === 1 && only!.op === 'hash.set' && only!.ttl !== undefined) {
        await client.eval(HASH_SET_EX, 1, prefix + only!.key, Math.ceil(only!.ttl), ...Object.entries(only!.fields).flat());
        return;
      }
      if (!isCluster) {
        const tx = client.multi();
        for (const op of ops) queue(tx, op);
        await exec(tx);
        return;
      }
      // A cluster MULTI must stay within one slot: group the operations per key (keeping their
      // order within a key) and run one transaction per key, in the order the keys first appear.
      // Not atomic across keys, so callers write indexes before the record they point at: a
      // failure half-way then leaves at most a dangling index entry, never an unindexed record.
      const byKey = new Map<string, WriteOp[]>();
      for (const op of ops) byKey.set(op.key, [...(byKey.get(op.key) ?? []), op]);
      for (const keyOps of byKey.values()) {
        const tx = client.multi();
        for (const op of keyOps) queue(tx, op);
        await exec(tx);
      }
    }),
    ping: () => run('ping', async () => {
      await client.ping();
    }),
    async close() {
      channels.clear();
      const connections = subscriber ? [client, subscriber] : [client];
      subscriber = undefined;
      await Promise.all(connections.map(async (connection) => {
        try {
          await connection.quit();
        } catch {
          connection.disconnect();
        }
      }));
    },
  };
}
