// The admin surface of revocation (issue 6): end one session, end every session of a person, the
// agent kill switch, and the list of live sessions (all of them, a page at a time, or a person's)
// with the agents holding tokens from each.
// Each change is audited (`session.revoked`, `subject.revoked`, `agent.disabled`, `agent.enabled`)
// with the admin client that made it; errors are OAuth-shaped (404 `not_found` for an unknown
// session or agent).
import express from 'express';
import type { Router } from 'express';

import { OAuthError } from '../http/index.ts';
import type { AuditTrail } from '../ops/index.ts';
import type { RevocationService } from '../revocation/index.ts';
import { isSessionCursor } from '../session/index.ts';
import type { EnterpriseSession, SessionService } from '../session/index.ts';

export interface AdminRevocationDeps {
  sessions: SessionService;
  revocations: RevocationService;
  audit: AuditTrail;
  /** Configured agents: client id → statically disabled (config `disabled`). */
  agents: ReadonlyMap<string, { disabled: boolean }>;
}

/** Sessions per page of `GET /admin/sessions` without `sub`: the default and the most. */
const PAGE_DEFAULT = 50;
const PAGE_MAX = 200;

/** One query parameter given at most once: its value, or undefined when absent. */
function single(query: Record<string, unknown>, name: string, what: string): string | undefined {
  const value = query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new OAuthError(400, 'invalid_request', `the '${name}' query parameter must be ${what}, given once`);
  return value;
}

export function createRevocationAdminRouter(deps: AdminRevocationDeps): Router {
  const { sessions, revocations, audit } = deps;
  const router = express.Router();

  function knownAgent(clientId: string): { disabled: boolean } {
    const agent = deps.agents.get(clientId);
    if (!agent) throw new OAuthError(404, 'not_found', `no agent "${clientId}" is configured`);
    return agent;
  }

  const describe = async (session: EnterpriseSession) => ({
    sid: session.sid,
    sub: session.accountId,
    idp: session.identity.idp,
    createdAt: session.createdAt,
    expiresAt: session.expiresAt,
    lastSeenAt: session.lastSeenAt,
    agents: (await sessions.agentsOf(session.sid)).map(({ clientId, scopes, audience, lastUsedAt, expiresAt }) => ({ clientId, scopes, audience, lastUsedAt, expiresAt })),
  });

  router.get('/sessions', async (req, res) => {
    const query = req.query as Record<string, unknown>;
    const sub = single(query, 'sub', "a person's subject (as in their tokens' sub claim)");
    const limit = single(query, 'limit', `a whole number from 1 to ${PAGE_MAX}`);
    const cursor = single(query, 'cursor', 'the next_cursor of a previous page');
    res.set('Cache-Control', 'no-store');
    if (sub !== undefined) {
      if (limit !== undefined || cursor !== undefined) {
        throw new OAuthError(400, 'invalid_request', "the 'limit' and 'cursor' query parameters page through all live sessions; they do not go with 'sub'");
      }
      const listed = await Promise.all((await sessions.liveOf(sub)).map(describe));
      res.json({ sessions: listed, total: listed.length });
      return;
    }
    if (limit !== undefined && !(/^[1-9]\d{0,2}$/.test(limit) && Number(limit) <= PAGE_MAX)) {
      throw new OAuthError(400, 'invalid_request', `the 'limit' query parameter must be a whole number from 1 to ${PAGE_MAX}`);
    }
    if (cursor !== undefined && !isSessionCursor(cursor)) {
      throw new OAuthError(400, 'invalid_request', "the 'cursor' query parameter is not a next_cursor this gateway gave out");
    }
    const page = await sessions.list({ limit: limit === undefined ? PAGE_DEFAULT : Number(limit), cursor });
    const listed = await Promise.all(page.sessions.map(describe));
    res.json({ sessions: listed, total: page.total, ...(page.nextCursor ? { next_cursor: page.nextCursor } : {}) });
  });

  router.delete('/sessions/:sid', async (req, res) => {
    const { sid } = req.params;
    if (!(await sessions.get(sid))) throw new OAuthError(404, 'not_found', `no live session "${sid}"`);
    const ended = await sessions.end(sid, 'admin');
    // Ended meanwhile by someone else: it is over all the same.
    await audit.record('session.revoked', { adminClient: res.locals.adminClient as string, sid, sub: ended?.accountId, reason: 'admin' });
    res.set('Cache-Control', 'no-store').status(204).end();
  });

  router.delete('/subjects/:sub/sessions', async (req, res) => {
    const { sub } = req.params;
    // The person's record first: from here on no token of theirs issued until now is valid, even
    // one whose session has already gone; then each session ends (one event each).
    await revocations.revokeSubject(sub, 'admin');
    const ended: string[] = [];
    for (const sid of await sessions.findBySubject(sub)) {
      if (await sessions.end(sid, 'admin')) ended.push(sid);
    }
    await audit.record('subject.revoked', { adminClient: res.locals.adminClient as string, sub, sids: ended, reason: 'admin' });
    res.set('Cache-Control', 'no-store').json({ ended });
  });

  router.post('/agents/:clientId/disable', async (req, res) => {
    const { clientId } = req.params;
    knownAgent(clientId);
    const event = await revocations.disableAgent(clientId, 'admin');
    await audit.record('agent.disabled', { adminClient: res.locals.adminClient as string, agent: clientId, at: event.at });
    res.set('Cache-Control', 'no-store').json({ clientId, disabled: true, at: event.at });
  });

  router.post('/agents/:clientId/enable', async (req, res) => {
    const { clientId } = req.params;
    const agent = knownAgent(clientId);
    const at = await revocations.enableAgent(clientId);
    await audit.record('agent.enabled', { adminClient: res.locals.adminClient as string, agent: clientId, at });
    // An agent disabled in the config stays disabled: only the runtime switch is lifted.
    res.set('Cache-Control', 'no-store').json({ clientId, disabled: agent.disabled, at });
  });

  return router;
}
