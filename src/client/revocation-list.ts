// What a resource server knows about revocations (issue 6 contract, "Events"): the sessions, people,
// agents and single tokens the gateway has revoked, each kept until its `until` (after which it can
// affect no live token), so memory holds only what still matters. Pure: the feed feeds it,
// the middleware asks it; the clock is injected.
import type { AgentToken } from './access-token.ts';

/** `session-agent`: one agent's tokens within one session (carries sid and clientId). */
export type RevocationType = 'session' | 'subject' | 'agent' | 'token' | 'session-agent';

export interface RevocationEvent {
  /** The stream id: the cursor to resume after. */
  id: string;
  type: RevocationType;
  /** Epoch seconds: when it was revoked. Tokens of a subject/agent issued at or before it are dead. */
  at: number;
  /** Epoch seconds: after this the record can affect no token. */
  until: number;
  sid?: string;
  sub?: string;
  clientId?: string;
  jti?: string;
  reason?: string;
}

const TARGET: Record<RevocationType, 'sid' | 'sub' | 'clientId' | 'jti'> = { session: 'sid', subject: 'sub', agent: 'clientId', token: 'jti', 'session-agent': 'sid' };

/** The map key of an event: its target, and for `session-agent` the agent within the session too. */
const keyOf = (event: Pick<RevocationEvent, 'type' | 'sid' | 'sub' | 'clientId' | 'jti'>): string =>
  (event.type === 'session-agent' ? `${event.sid}\n${event.clientId}` : event[TARGET[event.type]]!);

/** The event, if it is one this SDK can apply; undefined for anything malformed or unknown. */
export function parseRevocationEvent(value: unknown): RevocationEvent | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const event = value as Record<string, unknown>;
  const type = event.type;
  if (typeof type !== 'string' || !Object.hasOwn(TARGET, type)) return undefined;
  const target = TARGET[type as RevocationType];
  if (typeof event.id !== 'string' || typeof event.at !== 'number' || typeof event.until !== 'number') return undefined;
  if (typeof event[target] !== 'string' || !event[target]) return undefined;
  if (type === 'session-agent' && (typeof event.clientId !== 'string' || !event.clientId)) return undefined;
  return event as unknown as RevocationEvent;
}

export interface RevocationList {
  apply(event: RevocationEvent): void;
  /** Why the token is revoked ("session", "subject", "agent", "token", "session-agent"), or undefined. */
  check(token: AgentToken): RevocationType | undefined;
  /** Drops every entry whose `until` has passed. */
  sweep(): void;
  readonly size: number;
}

interface Entry {
  at: number;
  until: number;
}

export function createRevocationList(now: () => number): RevocationList {
  const maps: Record<RevocationType, Map<string, Entry>> = {
    session: new Map(), subject: new Map(), agent: new Map(), token: new Map(), 'session-agent': new Map(),
  };

  /** The live entry for `key`, dropping it when it has run out. */
  function live(type: RevocationType, key: string | undefined): Entry | undefined {
    if (key === undefined) return undefined;
    const entry = maps[type].get(key);
    if (entry && entry.until < now()) {
      maps[type].delete(key);
      return undefined;
    }
    return entry;
  }

  return {
    apply(event) {
      const key = keyOf(event);
      const map = maps[event.type];
      const previous = map.get(key);
      // Several events for one person or agent: the latest cut-off and the longest reach win.
      map.set(key, previous
        ? { at: Math.max(previous.at, event.at), until: Math.max(previous.until, event.until) }
        : { at: event.at, until: event.until });
    },
    check(token) {
      const { iat } = token.claims;
      if (live('token', token.jti)) return 'token';
      if (live('session', token.sid)) return 'session';
      const subject = live('subject', token.person);
      if (subject && iat <= subject.at) return 'subject';
      for (const clientId of new Set([token.agent, ...token.actors])) {
        const agent = live('agent', clientId);
        if (agent && iat <= agent.at) return 'agent';
        const inSession = token.sid === undefined ? undefined : live('session-agent', `${token.sid}\n${clientId}`);
        if (inSession && iat <= inSession.at) return 'session-agent';
      }
      return undefined;
    },
    sweep() {
      const t = now();
      for (const map of Object.values(maps)) for (const [key, entry] of map) if (entry.until < t) map.delete(key);
    },
    get size() {
      return Object.values(maps).reduce((n, map) => n + map.size, 0);
    },
  };
}
