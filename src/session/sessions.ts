// Enterprise sessions (DESIGN.md core flow step 1): one per sign-in, holding the normalized
// identity, the roles its groups mapped to, and the upstream session reference. Everything the
// gateway issues from a sign-in is tied to its `sid`, so ending the session (gateway logout,
// upstream back-channel logout, admin) ends all of it.
//
// Keys (under the store prefix), each expiring with the session:
//   sess:{sid}                         JSON record
//   sess:bySub:{accountId}             set of sids of one person
//   sess:byUpstream:{idp}:{upstreamSid} set of sids (IdP logout by sid)
//   sess:byUpstreamSub:{idp}:{sub}     set of sids (IdP logout by sub)
//   sess:grants:{sid}                  set of oidc-provider grant ids issued under the session
//   sess:byGrant:{grantId}             sid
//   sess:live                          sorted set of every session's sid, scored by its absolute
//                                      expiry (the admin's list of all live sessions); lives as long
//                                      as its newest session, trimmed of expired ones on create
//   session:agents:{sid}               hash: `{agent client id} {audience}` -> JSON of what the
//                                      agent holds there (written by the token exchange; read by
//                                      the admin API, the console and "My agents")
//   revoked:sid:{sid}                  marks an ended session for as long as tokens could live
// Ending a session removes it from the person's, the IdP's and the live indexes, so they list live
// sessions; a session that went idle leaves `sess:live` lazily, when a listing comes across it.
import { randomBytes } from 'node:crypto';

import type { FederatedIdentity } from '../identity/index.ts';
import { revokedSessionAgentKey, revokedSidKey } from '../revocation/index.ts';
import type { Store } from '../store/index.ts';

export interface EnterpriseSession {
  sid: string;
  /** Stable key of the person: `${idp}|${subject}` (never the email). */
  accountId: string;
  identity: FederatedIdentity;
  roles: string[];
  /** Seconds since the epoch. */
  createdAt: number;
  expiresAt: number;
  lastSeenAt: number;
  /** The IdP session and subject (its `sid` and `sub` claims) for upstream logout. */
  upstream: { idp: string } & UpstreamSession;
}

/**
 * What upstream logout needs of the sign-in. For SAML, `sid` is the SessionIndex, `sub` the NameID
 * value and `samlNameId` the rest of the NameID as sent (a LogoutRequest must repeat it exactly).
 */
export interface UpstreamSession {
  sid?: string;
  sub?: string;
  idToken?: string;
  samlNameId?: { format?: string; nameQualifier?: string; spNameQualifier?: string };
}

export type EndReason = 'logout' | 'upstream_logout' | 'admin' | 'expired';

export interface SessionService {
  create(input: { identity: FederatedIdentity; roles: string[]; upstream?: UpstreamSession }): Promise<EnterpriseSession>;
  /** The live session, or undefined when unknown, ended, expired or idle too long. */
  get(sid: string): Promise<EnterpriseSession | undefined>;
  /**
   * The live session and other keys in one round trip (e.g. revocation records a token check
   * needs anyway): `extras` holds their values in order.
   */
  lookup(sid: string, extraKeys: readonly string[]): Promise<{ session: EnterpriseSession | undefined; extras: (string | null)[] }>;
  /** Records activity (extends the idle window, never past the absolute expiry). */
  touch(session: EnterpriseSession): Promise<void>;
  /** When the session ends if nothing happens: the earlier of its absolute and idle expiry. */
  endsAt(session: EnterpriseSession): number;
  /** Ties an oidc-provider grant (one per session and client) to the session. */
  linkGrant(sid: string, clientId: string, grantId: string): Promise<void>;
  grantFor(sid: string, clientId: string): Promise<string | undefined>;
  sidForGrant(grantId: string): Promise<string | undefined>;
  findByUpstream(idp: string, upstreamSid: string): Promise<string[]>;
  /** Sessions of the person the IdP calls `sub` (its own subject, which may differ from ours). */
  findByUpstreamSubject(idp: string, upstreamSub: string): Promise<string[]>;
  findBySubject(accountId: string): Promise<string[]>;
  /** The person's live sessions, read in one round trip (oldest first). */
  liveOf(accountId: string): Promise<EnterpriseSession[]>;
  isEnded(sid: string): Promise<boolean>;
  /** Agents holding tokens from the session (not yet expired), as the token exchange recorded them. */
  agentsOf(sid: string): Promise<SessionAgent[]>;
  /** Records that an agent got a token from the session (the token exchange, per grant). */
  recordAgent(session: EnterpriseSession, agent: SessionAgent): Promise<void>;
  /**
   * Every live session, newest first (latest absolute expiry first), `limit` at a time. `total`
   * counts the live sessions; `nextCursor`, when there are more, is what to pass for the next
   * page (it stays right when sessions are added or end in between). A cursor must be one this
   * service gave out: check input with `isSessionCursor`.
   */
  list(page: { limit: number; cursor?: string | undefined }): Promise<SessionPage>;
  /** Ends a session; resolves to it (undefined when it was already gone). */
  end(sid: string, reason: EndReason): Promise<EnterpriseSession | undefined>;
}

export interface SessionPage {
  sessions: EnterpriseSession[];
  total: number;
  nextCursor?: string;
}

export interface SessionServiceOptions {
  store: Store;
  /** Absolute lifetime, seconds. */
  ttl: number;
  /** Idle lifetime, seconds. */
  idleTtl: number;
  /** Seconds since the epoch. */
  now?: () => number;
  /**
   * Seconds the `revoked:sid` record lives at least: the longest lifetime of a token issued under
   * the session (default 60; it also lives as long as the session would have).
   */
  revocationTtl?: number;
  /**
   * Called once after a session ended (of concurrent ends, only the one that ended it), with the
   * grants issued under it (revoke them) and why.
   */
  onEnded?: (session: EnterpriseSession, grantIds: string[], reason: EndReason) => Promise<void>;
}

export { revokedSidKey };

/**
 * Agents holding tokens from a session: a hash, one field per agent and audience,
 * `{clientId} {audience}`, value = JSON `{ scopes, audience, lastUsedAt, expiresAt }` (the scopes
 * of the agent's live tokens there); written by the token exchange with the key's TTL running to
 * the session's end, deleted when the session ends.
 */
export const sessionAgentsKey = (sid: string) => `session:agents:${sid}`;

/** The field of one agent at one audience in a `session:agents` hash. */
export const sessionAgentField = (clientId: string, audience: string) => `${clientId} ${audience}`;

export interface SessionAgent {
  clientId: string;
  scopes: string[];
  audience: string;
  /** Seconds since the epoch. */
  lastUsedAt: number;
  expiresAt: number;
}

/**
 * The entries of a `session:agents` hash, one per agent and audience, sorted by client id then
 * audience; entries that do not parse are skipped. The client id is the field less the audience
 * the value names (client ids may hold spaces); a field that is a bare client id is the record of
 * an earlier version (latest exchange only), read as such and merged with its newer twin.
 */
export function parseSessionAgents(fields: Record<string, string> | null): SessionAgent[] {
  const agents = new Map<string, SessionAgent>();
  for (const [field, raw] of Object.entries(fields ?? {})) {
    let value: Partial<SessionAgent>;
    try {
      value = JSON.parse(raw) as Partial<SessionAgent>;
    } catch {
      // A malformed entry says nothing reliable; leave it out.
      continue;
    }
    if (!value || !Array.isArray(value.scopes) || typeof value.audience !== 'string' || typeof value.lastUsedAt !== 'number' || typeof value.expiresAt !== 'number') continue;
    const suffix = ` ${value.audience}`;
    const clientId = field.endsWith(suffix) && field.length > suffix.length ? field.slice(0, -suffix.length) : field;
    const agent: SessionAgent = {
      clientId, scopes: value.scopes.filter((s) => typeof s === 'string'), audience: value.audience, lastUsedAt: value.lastUsedAt, expiresAt: value.expiresAt,
    };
    const id = sessionAgentField(clientId, agent.audience);
    const twin = agents.get(id);
    agents.set(id, twin ? merge(twin, agent) : agent);
  }
  return [...agents.values()].sort((a, b) => a.clientId.localeCompare(b.clientId) || a.audience.localeCompare(b.audience));
}

/** One agent at one audience from two records: the union of the scopes, the latest times. */
function merge(a: SessionAgent, b: SessionAgent): SessionAgent {
  return {
    ...a, scopes: [...new Set([...a.scopes, ...b.scopes])], lastUsedAt: Math.max(a.lastUsedAt, b.lastUsedAt), expiresAt: Math.max(a.expiresAt, b.expiresAt),
  };
}

/** Where a page of `list` ends: the last session's score (absolute expiry) and sid. */
interface Position { score: number; sid: string }

const encodeCursor = (position: Position) => Buffer.from(JSON.stringify([position.score, position.sid])).toString('base64url');

function decodeCursor(cursor: string): Position | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [score, sid] = value as unknown[];
    return typeof score === 'number' && Number.isFinite(score) && typeof sid === 'string' && SID.test(sid) ? { score, sid } : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a string is a cursor `SessionService.list` gave out (input from the network is checked with this). */
export const isSessionCursor = (cursor: string) => decodeCursor(cursor) !== undefined;

const SID = /^[A-Za-z0-9_-]{20,64}$/;

export const accountIdOf = (identity: Pick<FederatedIdentity, 'idp' | 'subject'>) => `${identity.idp}|${identity.subject}`;

const key = {
  session: (sid: string) => `sess:${sid}`,
  bySub: (accountId: string) => `sess:bySub:${accountId}`,
  byUpstream: (idp: string, upstreamSid: string) => `sess:byUpstream:${idp}:${upstreamSid}`,
  byUpstreamSub: (idp: string, sub: string) => `sess:byUpstreamSub:${idp}:${sub}`,
  grants: (sid: string) => `sess:grants:${sid}`,
  byGrant: (grantId: string) => `sess:byGrant:${grantId}`,
  clientGrant: (sid: string, clientId: string) => `sess:clientGrant:${sid}:${clientId}`,
  live: 'sess:live',
  revoked: revokedSidKey,
};

/** Idle extension is written at most this often (seconds) to keep reads cheap. */
const TOUCH_EVERY = 60;
/** Seconds a new session's index entry is kept by `list` although its record is not there (yet). */
const RECORD_GRACE = 10;
/** Bound of the per-replica memory of recently recorded session agents (oldest forgotten first). */
const RECENT_AGENTS_MAX = 50_000;

export function createSessionService(options: SessionServiceOptions): SessionService {
  const { store } = options;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const recentAgents = new Map<string, { at: number; scopes: ReadonlySet<string>; expiresAt: number }>();
  const remaining = (session: EnterpriseSession) =>
    Math.min(session.expiresAt - now(), session.lastSeenAt + options.idleTtl - now());

  function live(raw: string | null): EnterpriseSession | undefined {
    if (!raw) return undefined;
    const session = JSON.parse(raw) as EnterpriseSession;
    return remaining(session) > 0 ? session : undefined;
  }

  async function get(sid: string): Promise<EnterpriseSession | undefined> {
    return SID.test(sid) ? live(await store.get(key.session(sid))) : undefined;
  }

  return {
    async create({ identity, roles, upstream = {} }) {
      const t = now();
      const session: EnterpriseSession = {
        sid: randomBytes(24).toString('base64url'),
        accountId: accountIdOf(identity),
        identity,
        roles,
        createdAt: t,
        expiresAt: t + options.ttl,
        lastSeenAt: t,
        upstream: { idp: identity.idp, ...upstream },
      };
      const ttl = Math.min(options.ttl, options.idleTtl);
      // Indexes before the record (on a cluster a failure half-way leaves a dangling index entry,
      // never an unindexed session); the live index sheds the sessions past their absolute expiry.
      await store.write([
        { op: 'zset.trim', key: key.live, maxScore: t },
        { op: 'zset.add', key: key.live, members: [{ member: session.sid, score: session.expiresAt }], ttl: options.ttl },
        { op: 'set.add', key: key.bySub(session.accountId), members: [session.sid], ttl: options.ttl },
        ...(upstream.sid ? [{ op: 'set.add' as const, key: key.byUpstream(identity.idp, upstream.sid), members: [session.sid], ttl: options.ttl }] : []),
        ...(upstream.sub ? [{ op: 'set.add' as const, key: key.byUpstreamSub(identity.idp, upstream.sub), members: [session.sid], ttl: options.ttl }] : []),
        { op: 'set', key: key.session(session.sid), value: JSON.stringify(session), ttl },
      ]);
      return session;
    },

    get,

    async lookup(sid, extraKeys) {
      if (!SID.test(sid)) return { session: undefined, extras: extraKeys.length ? await store.getMany(extraKeys) : [] };
      const [raw = null, ...extras] = await store.getMany([key.session(sid), ...extraKeys]);
      return { session: live(raw), extras };
    },

    endsAt: (session) => Math.min(session.expiresAt, session.lastSeenAt + options.idleTtl),

    async touch(session) {
      if (now() - session.lastSeenAt < TOUCH_EVERY) return;
      session.lastSeenAt = now();
      const ttl = remaining(session);
      if (ttl > 0) await store.set(key.session(session.sid), JSON.stringify(session), { ttl });
    },

    async linkGrant(sid, clientId, grantId) {
      const session = await get(sid);
      const ttl = session ? session.expiresAt - now() : options.ttl;
      await store.write([
        { op: 'set.add', key: key.grants(sid), members: [grantId], ttl },
        { op: 'set', key: key.byGrant(grantId), value: sid, ttl },
        { op: 'set', key: key.clientGrant(sid, clientId), value: grantId, ttl },
      ]);
    },

    async grantFor(sid, clientId) {
      return (await store.get(key.clientGrant(sid, clientId))) ?? undefined;
    },

    async sidForGrant(grantId) {
      return (await store.get(key.byGrant(grantId))) ?? undefined;
    },

    findByUpstream: (idp, upstreamSid) => store.setMembers(key.byUpstream(idp, upstreamSid)),
    findBySubject: (accountId) => store.setMembers(key.bySub(accountId)),

    async liveOf(accountId) {
      const sids = (await store.setMembers(key.bySub(accountId))).filter((sid) => SID.test(sid));
      if (sids.length === 0) return [];
      const records = await store.getMany(sids.map(key.session));
      return records.map(live)
        .filter((session): session is EnterpriseSession => session?.accountId === accountId)
        .sort((a, b) => a.createdAt - b.createdAt || a.sid.localeCompare(b.sid));
    },
    findByUpstreamSubject: (idp, sub) => store.setMembers(key.byUpstreamSub(idp, sub)),

    async isEnded(sid) {
      return (await store.get(key.revoked(sid))) !== null;
    },

    async agentsOf(sid) {
      if (!SID.test(sid)) return [];
      const t = now();
      return parseSessionAgents(await store.hashGetAll(sessionAgentsKey(sid))).filter((agent) => agent.expiresAt > t);
    },

    async recordAgent(session, agent) {
      const { clientId, audience } = agent;
      const t = now();
      const ttl = session.expiresAt - t;
      if (ttl <= 0) return;
      // Like touch: an agent exchanging again and again for the same session and audience is
      // written at most once a minute per replica (unless it gets a scope not yet written), its
      // expiry stretched by that minute so the list never drops an agent that still holds a token.
      const field = sessionAgentField(clientId, audience);
      const recent = `${session.sid}\n${field}`;
      const last = recentAgents.get(recent);
      if (last && t - last.at < TOUCH_EVERY && last.expiresAt >= agent.expiresAt && agent.scopes.every((scope) => last.scopes.has(scope))) return;
      // The entry holds the scopes of all the agent's live tokens there: merge with what is stored
      // (any replica may have written it) unless that has expired, or the person revoked the agent
      // in this session since (those tokens are dead; "My agents" hides uses up to the revocation).
      const [fields, revokedAt] = await Promise.all([
        store.hashGetAll(sessionAgentsKey(session.sid)),
        store.get(revokedSessionAgentKey(session.sid, clientId)),
      ]);
      const stored = parseSessionAgents(fields).find((held) => held.clientId === clientId && held.audience === audience);
      const alive = stored && stored.expiresAt > t && !(revokedAt !== null && stored.lastUsedAt <= Number(revokedAt)) ? stored : undefined;
      const record = {
        scopes: [...new Set([...(alive?.scopes ?? []), ...agent.scopes])],
        audience,
        lastUsedAt: agent.lastUsedAt,
        // A shorter-lived token does not hide a longer-lived one given out before.
        expiresAt: Math.max(agent.expiresAt + TOUCH_EVERY, alive?.expiresAt ?? 0),
      };
      await store.write([{ op: 'hash.set', key: sessionAgentsKey(session.sid), fields: { [field]: JSON.stringify(record) }, ttl }]);
      recentAgents.delete(recent);
      recentAgents.set(recent, { at: t, scopes: new Set(record.scopes), expiresAt: record.expiresAt });
      if (recentAgents.size > RECENT_AGENTS_MAX) recentAgents.delete(recentAgents.keys().next().value!);
    },

    async list({ limit, cursor }) {
      if (!Number.isInteger(limit) || limit < 1) throw new TypeError('list: limit must be a positive integer');
      const from = cursor === undefined ? undefined : decodeCursor(cursor);
      if (cursor !== undefined && !from) throw new TypeError('list: cursor is not one list gave out (check it with isSessionCursor)');
      const t = now();
      // Live means a later absolute expiry than now (scores are whole seconds).
      const min = Math.floor(t) + 1;
      const found: { session: EnterpriseSession; score: number }[] = [];
      const gone: string[] = [];
      // Keyset paging, newest first: each read starts at the last position seen (its score,
      // inclusive), skipping the members at that score already seen (ordered before it: same
      // score, sid not lower). Reads one session more than asked, to know whether more follow.
      let position = from;
      let seenAtScore = 0;
      while (found.length <= limit) {
        const count = limit + 1 - found.length + seenAtScore;
        const batch = await store.rangeByScore(key.live, { min, max: position?.score ?? Infinity, newestFirst: true, count });
        const after = position;
        const fresh = after ? batch.filter(({ score, member }) => score < after.score || member < after.sid) : batch;
        if (fresh.length > 0) {
          const records = await store.getMany(fresh.map(({ member }) => key.session(member)));
          fresh.forEach(({ member, score }, i) => {
            const session = live(records[i] ?? null);
            if (session) found.push({ session, score });
            // On a cluster the index is written just before the record: leave a session created
            // in the last seconds alone, its record may be on its way.
            else if (score <= t + options.ttl - RECORD_GRACE) gone.push(member);
          });
          const last = fresh.at(-1)!;
          position = { score: last.score, sid: last.member };
          seenAtScore = batch.filter(({ score }) => score === last.score).length;
        } else {
          // Only members already seen at this score: read further past them.
          seenAtScore = batch.length;
        }
        if (batch.length < count) break;
      }
      // Ended sessions leave the index when they end; idle-expired ones (or records gone) here.
      if (gone.length > 0) await store.write([{ op: 'zset.remove', key: key.live, members: gone }]);
      const page = found.slice(0, limit);
      const total = await store.countByScore(key.live, min, Infinity);
      const end = page.at(-1);
      return {
        sessions: page.map((row) => row.session),
        total,
        ...(found.length > limit && end ? { nextCursor: encodeCursor({ score: end.score, sid: end.session.sid }) } : {}),
      };
    },

    async end(sid, reason) {
      const raw = await store.get(key.session(sid));
      const known = raw ? (JSON.parse(raw) as EnterpriseSession) : undefined;
      const grantIds = await store.setMembers(key.grants(sid));
      // The revocation record outlives every token the session could have produced; it is written
      // before the session goes, so no token of it is ever seen alive without its session.
      const ttl = Math.max(options.revocationTtl ?? 60, (known?.expiresAt ?? now() + options.ttl) - now());
      await store.set(key.revoked(sid), reason, { ttl });
      // Of concurrent ends (logout racing an admin), only the one that takes the record goes on.
      const taken = known ? await store.take(key.session(sid)) : null;
      const session = taken ? (JSON.parse(taken) as EnterpriseSession) : undefined;
      await store.del(key.grants(sid), sessionAgentsKey(sid), ...grantIds.map(key.byGrant));
      if (!session) return undefined;
      const { idp, sid: upstreamSid, sub: upstreamSub } = session.upstream;
      await store.write([
        { op: 'zset.remove', key: key.live, members: [sid] },
        { op: 'set.remove', key: key.bySub(session.accountId), members: [sid] },
        ...(upstreamSid ? [{ op: 'set.remove' as const, key: key.byUpstream(idp, upstreamSid), members: [sid] }] : []),
        ...(upstreamSub ? [{ op: 'set.remove' as const, key: key.byUpstreamSub(idp, upstreamSub), members: [sid] }] : []),
      ]);
      await options.onEnded?.(session, grantIds, reason);
      return session;
    },
  };
}
