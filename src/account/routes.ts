// The signed-in person's own pages under `{issuer}/account` (issue 9), server-rendered, no script:
//   GET/POST /consent  — approve or deny an agent acting for me with a set of scopes at a resource
//                        (the `consent_uri` of the exchange's `consent_required` error);
//   GET /agents, POST /agents/revoke — "My agents": the agents holding tokens from my sessions,
//                        their scopes in plain words and last use; revoke makes that agent's
//                        tokens from my sessions inactive (a `revoked:sidagent` record per session,
//                        honoured by introspection, the exchange and the SDK's feed) and withdraws
//                        my approvals of it (an agent with consent: required must ask again).
//   GET /signed-in     — the callback of the sign-in into these pages (sign-in.ts).
// Who "me" is: the gateway's enterprise session cookie (set at sign-in, path = the issuer path).
// A GET without a live session is sent to sign in (as the gateway's own client `agentgate-account`)
// and brought back; a POST without one is refused with a 401 page (a form is never replayed).
// Every form carries a synchronizer token bound to that session (an HMAC of the sid under the
// cookie key, OWASP CSRF cheat sheet "synchronizer token pattern", stateless): a POST without it,
// or with another session's, is refused with a 403 page before anything changes.
import { createHmac, timingSafeEqual } from 'node:crypto';

import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';

import type { AgentConfig, Config, ResourceConfig } from '../config/index.ts';
import { formatDuration } from '../config/index.ts';
import type { ConsentService } from '../consent/index.ts';
import { toOAuthBody } from '../http/index.ts';
import type { AuditTrail, Logger } from '../ops/index.ts';
import { escapeHtml, page, renderProblemPage } from '../pages/index.ts';
import type { RevocationService } from '../revocation/index.ts';
import type { CookieSigner, EnterpriseSession, SessionAgent, SessionService } from '../session/index.ts';
import { SESSION_COOKIE } from '../session/index.ts';
import type { PageSignIn } from './sign-in.ts';

export interface AccountDeps {
  config: Config;
  sessions: SessionService;
  cookies: CookieSigner;
  cookieKeys: readonly string[];
  consents: ConsentService;
  revocations: RevocationService;
  audit: AuditTrail;
  logger: Logger;
  /** Signs a browser in when it GETs a page without a live session (sign-in.ts). */
  signIn: PageSignIn;
}

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => { fn(req, res).catch(next); };

/** The synchronizer token of a session under one cookie key. */
const csrfFor = (key: string, sid: string) => createHmac('sha256', key).update(`agentgate csrf\0${sid}`).digest('base64url');

export function createCsrf(keys: readonly string[]) {
  return {
    token: (sid: string) => csrfFor(keys[0]!, sid),
    /** Any current cookie key verifies (keys rotate newest first). */
    verify(sid: string, token: unknown): boolean {
      if (typeof token !== 'string' || token.length === 0) return false;
      const given = Buffer.from(token);
      return keys.some((key) => {
        const expected = Buffer.from(csrfFor(key, sid));
        return expected.length === given.length && timingSafeEqual(expected, given);
      });
    },
  };
}

/** A scope in plain words: the resource's description, else the scope itself. */
export function describeScope(resource: ResourceConfig | undefined, scope: string): string {
  return resource?.scopeDescriptions[scope] ?? scope;
}

export function createAccountRouter(deps: AccountDeps): Router {
  const { config, sessions, cookies, consents, audit, logger } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb' });
  const csrf = createCsrf(deps.cookieKeys);
  const agents = new Map(config.agents.map((agent) => [agent.clientId, agent]));
  const resources = new Map(config.resources.map((resource) => [resource.id, resource]));
  const base = new URL(config.issuer).pathname.replace(/\/$/, '');

  function problem(req: Request, res: Response, status: number, title: string, message: string): void {
    res.status(status).type('html').set('Cache-Control', 'no-store').send(renderProblemPage({ title, message, correlationId: String(req.id) }));
  }

  /** The signed-in person; else a GET goes to sign in, and anything else gets a 401 page. */
  async function person(req: Request, res: Response): Promise<EnterpriseSession | undefined> {
    const sid = cookies.read(req.headers.cookie, SESSION_COOKIE);
    const session = sid ? await sessions.get(sid) : undefined;
    if (!session) {
      if (req.method === 'GET' || req.method === 'HEAD') deps.signIn.start(req, res);
      else problem(req, res, 401, 'Not signed in', 'You are not signed in at the gateway (or your session has ended). Nothing was changed. Open this page again to sign in.');
      return undefined;
    }
    return session;
  }

  router.get('/signed-in', deps.signIn.callback);

  function checkCsrf(req: Request, res: Response, session: EnterpriseSession): boolean {
    if (csrf.verify(session.sid, (req.body as Record<string, unknown> | undefined)?.csrf)) return true;
    problem(req, res, 403, 'Request refused', 'This form was not sent from a page the gateway gave you (its security token is missing or wrong). Nothing was changed. Reload the page and try again.');
    return false;
  }

  interface ConsentAsk { agent: AgentConfig; resource: ResourceConfig; scopes: string[] }

  /** The agent, resource and scope set a consent link names, when they make sense together. */
  function parseAsk(source: Record<string, unknown>): ConsentAsk | string {
    const agent = typeof source.agent === 'string' ? agents.get(source.agent) : undefined;
    if (!agent) return 'This link names no agent registered at this gateway.';
    const resource = typeof source.audience === 'string' && agent.audiences.includes(source.audience) ? resources.get(source.audience) : undefined;
    if (!resource) return `This link names no resource the agent "${agent.name ?? agent.clientId}" may use.`;
    const scopes = [...new Set(typeof source.scope === 'string' ? source.scope.split(' ').filter(Boolean) : [])].sort();
    if (scopes.length === 0 || scopes.some((scope) => !resource.scopes.includes(scope) || !agent.scopes.includes(scope))) {
      return 'This link asks for permissions the agent is not registered for.';
    }
    return { agent, resource, scopes };
  }

  router.get('/consent', wrap(async (req, res) => {
    const session = await person(req, res);
    if (!session) return;
    const ask = parseAsk(req.query as Record<string, unknown>);
    if (typeof ask === 'string') return problem(req, res, 400, 'Unknown request', ask);
    const current = await consents.get({ accountId: session.accountId, clientId: ask.agent.clientId, audience: ask.resource.id, scopes: ask.scopes });
    res.type('html').set('Cache-Control', 'no-store').send(renderConsentPage({
      action: `${base}/account/consent`, csrf: csrf.token(session.sid), session, config, ...ask, ...(current ? { current: current.decision } : {}),
    }));
  }));

  router.post('/consent', form, wrap(async (req, res) => {
    const session = await person(req, res);
    if (!session || !checkCsrf(req, res, session)) return;
    const body = (req.body ?? {}) as Record<string, unknown>;
    const ask = parseAsk(body);
    if (typeof ask === 'string') return problem(req, res, 400, 'Unknown request', ask);
    if (body.decision !== 'approve' && body.decision !== 'deny') return problem(req, res, 400, 'Unknown request', 'Choose Allow or Deny.');
    const decision = body.decision === 'approve' ? 'approved' : 'denied';
    await consents.record({ accountId: session.accountId, clientId: ask.agent.clientId, audience: ask.resource.id, scopes: ask.scopes }, decision);
    await audit.record(decision === 'approved' ? 'consent.granted' : 'consent.denied', {
      sub: session.accountId, sid: session.sid, agent: ask.agent.clientId, audience: ask.resource.id, scopes: ask.scopes,
    });
    const agentName = ask.agent.name ?? ask.agent.clientId;
    res.type('html').set('Cache-Control', 'no-store').send(page(decision === 'approved' ? 'Allowed' : 'Denied', decision === 'approved'
      ? `<h1>${escapeHtml(agentName)} may act for you</h1>
<p role="status">You allowed ${escapeHtml(agentName)} to ${escapeHtml(ask.scopes.map((s) => describeScope(ask.resource, s)).join(', '))} at ${escapeHtml(ask.resource.name ?? ask.resource.id)}. You can go back to the application; the agent can now get its token.</p>
<p><a href="${escapeHtml(`${base}/account/agents`)}">See the agents acting for you</a></p>`
      : `<h1>${escapeHtml(agentName)} will not act for you</h1>
<p role="status">You denied ${escapeHtml(agentName)} these permissions. It gets no token for them; you can change your mind by opening the same link again.</p>`));
  }));

  /** My live sessions and, per agent, what it holds from each (revoked uses hidden). */
  async function myAgents(session: EnterpriseSession): Promise<Map<string, { sid: string; use: SessionAgent }[]>> {
    const others = (await sessions.liveOf(session.accountId)).filter((other) => other.sid !== session.sid);
    const byAgent = new Map<string, { sid: string; use: SessionAgent }[]>();
    for (const { sid } of [session, ...others]) {
      const uses = await sessions.agentsOf(sid);
      const revokedAt = await deps.revocations.sessionAgentRevokedAt(sid, uses.map((use) => use.clientId));
      uses.forEach((use, i) => {
        const at = revokedAt[i];
        if (at !== undefined && use.lastUsedAt <= at) return;
        byAgent.set(use.clientId, [...(byAgent.get(use.clientId) ?? []), { sid, use }]);
      });
    }
    return byAgent;
  }

  router.get('/agents', wrap(async (req, res) => {
    const session = await person(req, res);
    if (!session) return;
    const notice = typeof req.query.revoked === 'string' && agents.has(req.query.revoked)
      ? `${agents.get(req.query.revoked)!.name ?? req.query.revoked} no longer holds tokens from your sessions.`
      : undefined;
    res.type('html').set('Cache-Control', 'no-store').send(renderAgentsPage({
      action: `${base}/account/agents/revoke`, csrf: csrf.token(session.sid), session, agents, resources,
      byAgent: await myAgents(session), ...(notice ? { notice } : {}),
    }));
  }));

  router.post('/agents/revoke', form, wrap(async (req, res) => {
    const session = await person(req, res);
    if (!session || !checkCsrf(req, res, session)) return;
    const clientId = (req.body as Record<string, unknown>).agent;
    const held = typeof clientId === 'string' ? (await myAgents(session)).get(clientId) : undefined;
    if (typeof clientId !== 'string' || !held) return problem(req, res, 400, 'Unknown agent', 'This agent holds no tokens from your sessions.');
    for (const sid of new Set(held.map((h) => h.sid))) {
      await deps.revocations.revokeSessionAgent({ sid, sub: session.accountId }, clientId, 'person');
    }
    for (const { use } of held) await consents.forget({ accountId: session.accountId, clientId, audience: use.audience, scopes: use.scopes });
    await audit.record('session_agent.revoked', { sub: session.accountId, sid: session.sid, agent: clientId, sessions: [...new Set(held.map((h) => h.sid))] });
    // Post/redirect/get: a reload does not resubmit.
    res.set('Cache-Control', 'no-store').redirect(303, `${base}/account/agents?${new URLSearchParams({ revoked: clientId })}`);
  }));

  // Errors on these pages are pages too (a store outage is a 503 page), with the correlation id.
  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const { status, body } = toOAuthBody(error);
    if (status >= 500) logger.error({ reqId: req.id, err: { name: (error as Error)?.name, message: (error as Error)?.message } }, 'account page failed');
    problem(req, res, status, status === 503 ? 'Try again shortly' : 'Something went wrong', body.error_description);
  });

  return router;
}

function renderConsentPage(input: {
  action: string; csrf: string; session: EnterpriseSession; config: Config; agent: AgentConfig; resource: ResourceConfig; scopes: string[]; current?: 'approved' | 'denied';
}): string {
  const { agent, resource, scopes, session } = input;
  const agentName = agent.name ?? agent.clientId;
  const tokenLife = Math.min(resource.tokenTtl, agent.maxTokenTtl);
  const items = scopes.map((scope) => {
    const words = describeScope(resource, scope);
    return `<li>${escapeHtml(words)}${words === scope ? '' : ` <span class="note">(<code>${escapeHtml(scope)}</code>)</span>`}</li>`;
  }).join('\n');
  const hidden = (name: string, value: string) => `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
  return page(`Allow ${agentName}?`, `<h1>Allow ${escapeHtml(agentName)} to act for you?</h1>
<p>Signed in as <strong>${escapeHtml(session.identity.name || session.identity.email || session.accountId)}</strong>${session.identity.email ? ` (${escapeHtml(session.identity.email)})` : ''}.</p>
<p>The agent <strong>${escapeHtml(agentName)}</strong> <span class="note">(<code>${escapeHtml(agent.clientId)}</code>)</span> asks to use <strong>${escapeHtml(resource.name ?? resource.id)}</strong> on your behalf, to:</p>
<ul class="scopes">
${items}
</ul>
<p>For how long: each token it gets lasts at most ${escapeHtml(formatDuration(tokenLife))}; it can get new ones while you stay signed in (at most ${escapeHtml(formatDuration(input.config.session.ttl))}), until you sign out or revoke it under My agents. Your answer is remembered for this agent and these permissions.</p>
${input.current ? `<p class="note" role="status">You ${input.current === 'approved' ? 'allowed' : 'denied'} this before; your new answer replaces it.</p>` : ''}
<form method="post" action="${escapeHtml(input.action)}">
${hidden('csrf', input.csrf)}
${hidden('agent', agent.clientId)}
${hidden('audience', resource.id)}
${hidden('scope', scopes.join(' '))}
<button type="submit" name="decision" value="approve">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button>
</form>`);
}

const when = (seconds: number) => `${new Date(seconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;

function renderAgentsPage(input: {
  action: string; csrf: string; session: EnterpriseSession; agents: ReadonlyMap<string, AgentConfig>; resources: ReadonlyMap<string, ResourceConfig>;
  byAgent: ReadonlyMap<string, { sid: string; use: SessionAgent }[]>; notice?: string;
}): string {
  const { session } = input;
  const rows = [...input.byAgent].map(([clientId, held]) => {
    const agent = input.agents.get(clientId);
    const name = agent?.name ?? clientId;
    const uses = held.map(({ sid, use }) => {
      const resource = input.resources.get(use.audience);
      return `<li>${escapeHtml(use.scopes.map((scope) => describeScope(resource, scope)).join(', '))} at ${escapeHtml(resource?.name ?? use.audience)}${sid === session.sid ? ' <span class="note">(this session)</span>' : ' <span class="note">(another session)</span>'}</li>`;
    }).join('');
    const lastUsed = Math.max(...held.map((h) => h.use.lastUsedAt));
    return `<tr><th scope="row">${escapeHtml(name)}<br><span class="note"><code>${escapeHtml(clientId)}</code></span></th>
<td><ul class="scopes">${uses}</ul></td>
<td>${escapeHtml(when(lastUsed))}</td>
<td><form method="post" action="${escapeHtml(input.action)}" class="inline">
<input type="hidden" name="csrf" value="${escapeHtml(input.csrf)}">
<input type="hidden" name="agent" value="${escapeHtml(clientId)}">
<button type="submit" aria-label="Revoke ${escapeHtml(name)}">Revoke</button>
</form></td></tr>`;
  }).join('\n');
  return page('My agents', `<h1>Agents acting for you</h1>
<p>Signed in as <strong>${escapeHtml(session.identity.name || session.identity.email || session.accountId)}</strong>. These agents hold tokens from your sessions at this gateway. Revoking one makes its tokens (and those it passed on to sub-agents) stop working at once.</p>
${input.notice ? `<p role="status">${escapeHtml(input.notice)}</p>` : ''}
${rows ? `<table>
<caption class="note">Agents with live tokens from your sessions</caption>
<thead><tr><th scope="col">Agent</th><th scope="col">May</th><th scope="col">Last used</th><th scope="col"><span class="note">Action</span></th></tr></thead>
<tbody>
${rows}
</tbody>
</table>` : '<p role="status">No agent holds a token from your sessions right now.</p>'}`);
}
