// Revocation (issue 6): writes the records that kill tokens (records.ts), appends one event per
// revocation to the stream `revocations` (trimmed by age with MINID, so only events that can still
// affect a live token stay) and publishes its id on `events:revocation`, so every replica wakes
// its feed subscribers. Introspection never waits for the event: it reads the records per request.
//
// Each replica holds at most one channel subscription (one subscriber connection in the Redis
// store), opened when the first feed subscriber arrives, fanned out in-process.
import type { Logger } from '../ops/index.ts';
import type { Store, Subscription } from '../store/index.ts';
import { fromStreamEntry, REVOCATION_CHANNEL, REVOCATION_STREAM, toStreamFields } from './events.ts';
import type { NewRevocationEvent, RevocationEvent } from './events.ts';
import { agentDisabledKey, hitsIssuedAt, revokedAgentKey, revokedSessionAgentKey, revokedSidKey, revokedSubKey } from './records.ts';

/** Resource servers' clocks may run this far behind ours (seconds). */
export const CLOCK_SKEW = 60;

export interface RevocationService {
  /** Seconds a subject or agent record lives: the longest token lifetime plus clock skew. */
  readonly recordTtl: number;
  /** A session ended (its `revoked:sid` record is the session service's): one `session` event. */
  sessionEnded(session: { sid: string; sub: string }, reason: string): Promise<RevocationEvent>;
  /** Every token of the person issued until now is dead: `revoked:sub` record and a `subject` event. */
  revokeSubject(sub: string, reason: string): Promise<RevocationEvent>;
  /**
   * Kill switch: the agent gets nothing until enabled, and every token it holds or delegated
   * onward (issued until now) is dead, for good.
   */
  disableAgent(clientId: string, reason: string): Promise<RevocationEvent>;
  /**
   * The person revoked one agent in one session ("My agents"): every token of that session the
   * agent holds or delegated onward, issued until now, is dead (`revoked:sidagent` record and a
   * `session-agent` event). The agent is not disabled: it may be given new tokens later.
   */
  revokeSessionAgent(session: { sid: string; sub: string }, clientId: string, reason: string): Promise<RevocationEvent>;
  /** When each agent was revoked within the session (`revokeSessionAgent`), in order; undefined for never. */
  sessionAgentRevokedAt(sid: string, clientIds: readonly string[]): Promise<(number | undefined)[]>;
  /** Lifts the runtime disable; tokens issued before it stay dead. Resolves to when. */
  enableAgent(clientId: string): Promise<number>;
  /** Whether the agent is disabled at runtime (config `disabled` is separate and static). */
  isAgentDisabled(clientId: string): Promise<boolean>;
  /**
   * Whether an ended session, or a subject or agent revocation, covers a token issued at `iat` to
   * `clientId` for `sub` under `sid` (for tokens without a JWT's claims: opaque tokens, which carry
   * no actor chain).
   */
  coversToken(token: { sub?: string | undefined; sid?: string | undefined; clientId: string; iat: number }): Promise<boolean>;
  /** One token was revoked (RFC 7009; its `revoked:jti` record is written by authz): a `token` event. */
  tokenRevoked(token: { jti: string; exp: number; sub?: string | undefined; clientId: string }, reason: string): Promise<RevocationEvent>;
  /**
   * Up to `limit` stream entries after `cursor` (a stream id; `0-0` = from the oldest kept), as
   * events oldest first, and the cursor after them (an entry this version cannot read is skipped).
   */
  eventsAfter(cursor: string, limit: number): Promise<{ events: RevocationEvent[]; cursor: string }>;
  /**
   * Calls `wake` whenever an event may have been appended (by any replica), and after the
   * subscription recovered from a disconnect (events may have been missed: read from your cursor).
   * Resolves to the function that stops it.
   */
  listen(wake: () => void): Promise<() => void>;
  /** Drops the channel subscription and every listener. */
  close(): Promise<void>;
}

export interface RevocationServiceOptions {
  store: Store;
  /** Longest lifetime of any token the gateway issues, seconds (see `longestTokenLifetime`). */
  longestTokenLifetime: number;
  logger?: Logger;
  /** Seconds since the epoch. */
  now?: () => number;
}

export function createRevocationService(options: RevocationServiceOptions): RevocationService {
  const { store, logger } = options;
  if (!Number.isFinite(options.longestTokenLifetime) || options.longestTokenLifetime <= 0) {
    throw new TypeError('createRevocationService: options.longestTokenLifetime must be a positive number of seconds');
  }
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const recordTtl = Math.ceil(options.longestTokenLifetime) + CLOCK_SKEW;
  const listeners = new Set<() => void>();
  let subscription: Promise<Subscription> | undefined;

  async function append(event: NewRevocationEvent): Promise<RevocationEvent> {
    // Stream ids start with the append time in ms: MINID drops what no live token can need.
    const minId = `${Math.max(0, (now() - recordTtl) * 1000)}-0`;
    const id = await store.appendToStream(REVOCATION_STREAM, toStreamFields(event), { minId });
    try {
      await store.publish(REVOCATION_CHANNEL, id);
    } catch (error) {
      // The event is durable; subscribers also poll the stream, so a lost wake-up only delays it.
      logger?.warn({ err: { name: (error as Error).name, message: (error as Error).message }, eventId: id }, 'revocation event recorded but not published');
    }
    return fromStreamEntry({ id, fields: toStreamFields(event) })!;
  }

  const wakeAll = () => {
    for (const wake of [...listeners]) wake();
  };

  return {
    recordTtl,

    sessionEnded(session, reason) {
      const at = now();
      return append({ type: 'session', at, until: at + recordTtl, sid: session.sid, sub: session.sub, reason });
    },

    async revokeSubject(sub, reason) {
      const at = now();
      await store.set(revokedSubKey(sub), String(at), { ttl: recordTtl });
      return append({ type: 'subject', at, until: at + recordTtl, sub, reason });
    },

    async disableAgent(clientId, reason) {
      const at = now();
      await store.write([
        // The disabled flag first: from here on nothing more is issued, then the old tokens die.
        { op: 'set', key: agentDisabledKey(clientId), value: String(at) },
        { op: 'set', key: revokedAgentKey(clientId), value: String(at), ttl: recordTtl },
      ]);
      return append({ type: 'agent', at, until: at + recordTtl, clientId, reason });
    },

    async revokeSessionAgent(session, clientId, reason) {
      const at = now();
      await store.set(revokedSessionAgentKey(session.sid, clientId), String(at), { ttl: recordTtl });
      return append({ type: 'session-agent', at, until: at + recordTtl, sid: session.sid, sub: session.sub, clientId, reason });
    },

    async sessionAgentRevokedAt(sid, clientIds) {
      if (clientIds.length === 0) return [];
      const values = await store.getMany(clientIds.map((clientId) => revokedSessionAgentKey(sid, clientId)));
      return values.map((value) => (value === null ? undefined : Number(value)));
    },

    async enableAgent(clientId) {
      await store.del(agentDisabledKey(clientId));
      return now();
    },

    async isAgentDisabled(clientId) {
      return (await store.get(agentDisabledKey(clientId))) !== null;
    },

    async coversToken({ sub, sid, clientId, iat }) {
      const timed = [
        revokedAgentKey(clientId),
        ...(sub !== undefined ? [revokedSubKey(sub)] : []),
        ...(sid !== undefined ? [revokedSessionAgentKey(sid, clientId)] : []),
      ];
      const values = await store.getMany([...timed, ...(sid !== undefined ? [revokedSidKey(sid)] : [])]);
      const ended = sid !== undefined && values[timed.length] !== null;
      return ended || values.slice(0, timed.length).some((value) => value !== null && hitsIssuedAt(value!, iat));
    },

    tokenRevoked(token, reason) {
      return append({
        type: 'token', at: now(), until: token.exp + CLOCK_SKEW, jti: token.jti, clientId: token.clientId,
        ...(token.sub !== undefined ? { sub: token.sub } : {}), reason,
      });
    },

    async eventsAfter(cursor, limit) {
      const entries = await store.readStreamAfter(REVOCATION_STREAM, cursor, limit);
      return {
        events: entries.map(fromStreamEntry).filter((event): event is RevocationEvent => event !== undefined),
        cursor: entries.at(-1)?.id ?? cursor,
      };
    },

    async listen(wake) {
      listeners.add(wake);
      subscription ??= store.subscribe(REVOCATION_CHANNEL, { onMessage: wakeAll, onResubscribed: wakeAll });
      await subscription;
      return () => {
        listeners.delete(wake);
      };
    },

    async close() {
      listeners.clear();
      const current = subscription;
      subscription = undefined;
      await (await current)?.close();
    },
  };
}
