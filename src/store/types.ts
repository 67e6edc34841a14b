// The one storage port (DESIGN.md "Store key schema"). Callers use logical keys
// (`oidc:AccessToken:abc`); the implementation adds the configured prefix. Every write that can
// expire takes a TTL in seconds, so nothing grows forever. Implementations: Redis (production,
// shared by all replicas) and an in-memory twin (development, demo, unit tests) that keeps the
// same semantics, including expiry and the atomic primitives the callers rely on.

export type WriteOp =
  /** Replace a hash with these fields (the old fields are dropped). */
  | { op: 'hash.replace'; key: string; fields: Record<string, string>; ttl?: number }
  | { op: 'set'; key: string; value: string; ttl?: number }
  /** Set some fields of a hash, creating it if needed; a TTL, when given, replaces the hash's. */
  | { op: 'hash.set'; key: string; fields: Record<string, string>; ttl?: number }
  /** Add members to a set; its TTL only ever grows (it outlives its longest-lived member). */
  | { op: 'set.add'; key: string; members: string[]; ttl?: number }
  /** Remove members from a set (an emptied set is gone, as in Redis). */
  | { op: 'set.remove'; key: string; members: string[] }
  /**
   * Add members to a sorted set, or change their scores (Redis ZADD); like `set.add`, its TTL only
   * ever grows.
   */
  | { op: 'zset.add'; key: string; members: ScoredMember[]; ttl?: number }
  /** Remove members from a sorted set (ZREM; an emptied sorted set is gone, as in Redis). */
  | { op: 'zset.remove'; key: string; members: string[] }
  /** Remove the members scored at most `maxScore` (ZREMRANGEBYSCORE key -inf maxScore). */
  | { op: 'zset.trim'; key: string; maxScore: number }
  | { op: 'del'; key: string };

/** A member of a sorted set with its score. */
export interface ScoredMember {
  member: string;
  score: number;
}

/**
 * A slice of a sorted set by score (Redis `ZRANGE key min max BYSCORE [REV] LIMIT offset count`).
 * Bounds are inclusive (±Infinity for open ends). Members are ordered by score, equal scores by
 * member (bytewise); `newestFirst` reverses both (highest score first, as `REV`).
 */
export interface ScoreRange {
  min: number;
  max: number;
  /** Members skipped first (default 0). */
  offset?: number;
  /** At most this many (default all). */
  count?: number;
  newestFirst?: boolean;
}

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
}

/**
 * How a stream is bounded on append: a number keeps about that many newest entries (Redis
 * `MAXLEN ~ n`); `minId` drops entries with a smaller id (Redis `MINID ~ id`: by age, since ids
 * start with the append time in milliseconds).
 */
export type StreamTrim = number | { minId: string };

/** A live subscription to a channel; `close` ends it (idempotent). */
export interface Subscription {
  close(): Promise<void>;
}

export interface SubscribeHandlers {
  /** A message published on the channel (at most once; none while disconnected). */
  onMessage(message: string): void;
  /**
   * The subscription is (again) in place after a disconnect: messages published meanwhile were
   * lost, so a subscriber that must miss nothing catches up from a durable source here.
   */
  onResubscribed?(): void;
}

export interface SetOptions {
  /** Seconds until the key expires. */
  ttl?: number;
  /** Only write when the key does not exist (Redis `SET NX`); the result says whether it did. */
  ifAbsent?: boolean;
}

export interface Store {
  readonly driver: 'redis' | 'memory';
  get(key: string): Promise<string | null>;
  /** Returns false only when `ifAbsent` was set and the key already existed. */
  set(key: string, value: string, options?: SetOptions): Promise<boolean>;
  del(...keys: string[]): Promise<number>;
  /** Reads several keys in one round trip (Redis MGET; one per key on a cluster). */
  getMany(keys: readonly string[]): Promise<(string | null)[]>;
  /**
   * Appends an entry to a bounded stream (Redis XADD … MAXLEN ~ n, or MINID ~ id); resolves to
   * the entry id (`<ms>-<seq>`, increasing). Old entries are trimmed, so the stream never grows
   * forever.
   */
  appendToStream(key: string, fields: Record<string, string>, trim: StreamTrim): Promise<string>;
  /** The newest entries of a stream, newest first (Redis XREVRANGE … COUNT n). */
  readStream(key: string, count: number): Promise<StreamEntry[]>;
  /**
   * Up to `count` entries with an id greater than `afterId`, oldest first (Redis XRANGE with an
   * exclusive start); `0-0` reads from the beginning.
   */
  readStreamAfter(key: string, afterId: string, count: number): Promise<StreamEntry[]>;
  /** Publishes a message to every current subscriber of a channel, in every process (Redis PUBLISH). */
  publish(channel: string, message: string): Promise<void>;
  /**
   * Subscribes to a channel. The Redis store multiplexes every subscription of the store over one
   * extra connection (a connection in subscriber mode can do nothing else), opened on the first
   * call and closed by `close()`. Channels are under the key prefix, like keys.
   */
  subscribe(channel: string, handlers: SubscribeHandlers): Promise<Subscription>;
  /** Reads and deletes a key atomically (Redis GETDEL): of concurrent takers only one gets it. */
  take(key: string): Promise<string | null>;
  hashGetAll(key: string): Promise<Record<string, string> | null>;
  /**
   * Atomically sets one field of an existing hash unless the field is already there (Redis
   * `HSETNX`, guarded so a missing hash is never created without a TTL). `set` means this call
   * won; `taken` that the field was already set; `missing` that the hash does not exist.
   */
  hashClaimField(key: string, field: string, value: string): Promise<'set' | 'taken' | 'missing'>;
  setMembers(key: string): Promise<string[]>;
  /** Members of a sorted set within a score range, with their scores; [] for a missing key. */
  rangeByScore(key: string, range: ScoreRange): Promise<ScoredMember[]>;
  /** How many members of a sorted set score within [min, max] (Redis ZCOUNT); 0 for a missing key. */
  countByScore(key: string, min: number, max: number): Promise<number>;
  /**
   * Applies the operations in order, atomically where the backend allows (MULTI on one node).
   * On a Redis Cluster only the operations on one key are atomic; keys are written in the order
   * they first appear, so put index entries before the record they index.
   */
  write(ops: WriteOp[]): Promise<void>;
  /** Resolves when the store answers; rejects with StoreUnavailableError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Raised for every failure to reach or use the store; mapped to 503 temporarily_unavailable. */
export class StoreUnavailableError extends Error {
  readonly code = 'ERR_STORE_UNAVAILABLE';
  readonly operation: string;

  constructor(operation: string, options?: { cause?: unknown }) {
    super(`store unavailable during ${operation}`, options);
    this.name = 'StoreUnavailableError';
    this.operation = operation;
  }
}

export interface StoreHooks {
  /** Called once per failed store operation (metrics, logs). */
  onError?: (operation: string, error: unknown) => void;
}
