// Revocation events (issue 6): one entry per revocation in the Redis stream `revocations`, whose
// entry id is the feed cursor, and a wake-up on channel `events:revocation` carrying that id.
// The JSON form below is what the feed sends to resource servers; in the stream each member is a
// string field.
import type { StreamEntry } from '../store/index.ts';

export const REVOCATION_STREAM = 'revocations';
export const REVOCATION_CHANNEL = 'events:revocation';

/** `session-agent`: one agent in one session (the person's "My agents" revoke; carries sid and clientId). */
export type RevocationEventType = 'session' | 'subject' | 'agent' | 'token' | 'session-agent';

export interface RevocationEvent {
  /** The stream entry id: the cursor to resume after this event. */
  id: string;
  type: RevocationEventType;
  /** Seconds since the epoch: when the revocation happened. */
  at: number;
  /** Seconds since the epoch: after this the revocation can affect no token (forget it then). */
  until: number;
  sid?: string;
  sub?: string;
  clientId?: string;
  jti?: string;
  /** Why: logout, upstream_logout, admin, revocation, … */
  reason: string;
}

export type NewRevocationEvent = Omit<RevocationEvent, 'id'>;

const TYPES: ReadonlySet<string> = new Set<RevocationEventType>(['session', 'subject', 'agent', 'token', 'session-agent']);
const OPTIONAL = ['sid', 'sub', 'clientId', 'jti'] as const;

export function toStreamFields(event: NewRevocationEvent): Record<string, string> {
  const fields: Record<string, string> = { type: event.type, at: String(event.at), until: String(event.until), reason: event.reason };
  for (const name of OPTIONAL) if (event[name] !== undefined) fields[name] = event[name];
  return fields;
}

/** The event an entry holds; undefined for an entry this version cannot read (skipped, never guessed). */
export function fromStreamEntry(entry: StreamEntry): RevocationEvent | undefined {
  const { type, at, until, reason } = entry.fields;
  if (!type || !TYPES.has(type) || !reason) return undefined;
  const times = { at: Number(at), until: Number(until) };
  if (!Number.isSafeInteger(times.at) || !Number.isSafeInteger(times.until)) return undefined;
  const event: RevocationEvent = { id: entry.id, type: type as RevocationEventType, ...times, reason };
  const named: Partial<Record<(typeof OPTIONAL)[number], string>> = {};
  for (const name of OPTIONAL) if (entry.fields[name] !== undefined) named[name] = entry.fields[name];
  // The contract's order: id, type, at, until, the ids, reason.
  return { id: event.id, type: event.type, at: event.at, until: event.until, ...named, reason };
}
