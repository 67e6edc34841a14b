// The admin console (issue 9): server-rendered pages under `{issuer}/admin` for a PERSON signed in
// through the gateway itself whose session holds one of `admin.roles` (a GET without a live
// session is sent to sign in through the gateway's own client and brought back, src/account/
// sign-in.ts; a POST without one gets a 401 page; a person without an admin role a 403 page).
// Read-only pages: identity providers with health, sessions and the agents under each, recent
// audit events with filters, the policy's explain tool as a form. Kill switches (disable /
// enable an agent, end a session) are CSRF-protected POST forms calling the same revocation and
// session services as the admin API, audited the same way with the admin person's id.
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';

import { createCsrf } from '../account/index.ts';
import type { PageSignIn } from '../account/index.ts';
import type { Config } from '../config/index.ts';
import { formatDuration } from '../config/index.ts';
import type { Federation } from '../federation/index.ts';
import { toOAuthBody } from '../http/index.ts';
import type { AuditTrail, Logger } from '../ops/index.ts';
import { AUDIT_STREAM } from '../ops/index.ts';
import { escapeHtml, page, renderProblemPage } from '../pages/index.ts';
import { formatDecision } from '../policy/index.ts';
import type { Policy } from '../policy/index.ts';
import type { RevocationService } from '../revocation/index.ts';
import type { CookieSigner, EnterpriseSession, SessionService } from '../session/index.ts';
import { isSessionCursor, SESSION_COOKIE } from '../session/index.ts';
import type { Store } from '../store/index.ts';
import { idpHealth } from './idp-health.ts';
import type { SignInRecorder } from './idp-health.ts';

export interface AdminConsoleDeps {
  config: Config;
  store: Store;
  sessions: SessionService;
  revocations: RevocationService;
  federation: Federation;
  policy: Policy;
  cookies: CookieSigner;
  cookieKeys: readonly string[];
  audit: AuditTrail;
  signIns: SignInRecorder;
  logger: Logger;
  /** Signs a browser in when it GETs a console page without a live session. */
  signIn: PageSignIn;
  /** Seconds since the epoch. */
  now?: () => number;
}

type Handler = (req: Request, res: Response, admin: EnterpriseSession) => Promise<void>;

/** How many audit entries the console reads (newest first) before filtering. */
const AUDIT_WINDOW = 500;
/** Sessions per page of the sessions list. */
const SESSIONS_PAGE = 50;
const when = (seconds: number) => `${new Date(seconds * 1000).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
const str = (value: unknown) => (typeof value === 'string' ? value.trim() : '');

export function createAdminConsole(deps: AdminConsoleDeps): Router {
  const { config, sessions, revocations, audit } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb' });
  const csrf = createCsrf(deps.cookieKeys);
  const adminRoles = new Set(config.admin.roles);
  const base = `${new URL(config.issuer).pathname.replace(/\/$/, '')}/admin`;
  const agents = new Map(config.agents.map((agent) => [agent.clientId, agent]));

  function problem(req: Request, res: Response, status: number, title: string, message: string): void {
    res.status(status).type('html').set('Cache-Control', 'no-store').send(renderProblemPage({ title, message, correlationId: String(req.id) }));
  }

  /** Admin pages: a person signed in here, holding an admin role; POSTs also carry the session's CSRF token. */
  const admin = (fn: Handler, options: { post?: boolean } = {}) => (req: Request, res: Response, next: NextFunction) => {
    void (async () => {
      const sid = deps.cookies.read(req.headers.cookie, SESSION_COOKIE);
      const session = sid ? await sessions.get(sid) : undefined;
      if (!session && !options.post && (req.method === 'GET' || req.method === 'HEAD')) return deps.signIn.start(req, res);
      if (!session) return problem(req, res, 401, 'Not signed in', 'The admin console is for people signed in at this gateway. Nothing was changed. Open the console again to sign in.');
      if (!session.roles.some((role) => adminRoles.has(role))) {
        return problem(req, res, 403, 'Not an administrator', `You are signed in as ${session.identity.email || session.accountId}, whose roles do not include an admin role (admin.roles).`);
      }
      if (options.post && !csrf.verify(session.sid, (req.body as Record<string, unknown> | undefined)?.csrf)) {
        return problem(req, res, 403, 'Request refused', 'This form was not sent from a page the gateway gave you (its security token is missing or wrong). Nothing was changed. Reload the page and try again.');
      }
      await fn(req, res, session);
    })().catch(next);
  };

  const send = (res: Response, title: string, body: string) => {
    res.type('html').set('Cache-Control', 'no-store').send(page(title, `${nav(base)}\n${body}`));
  };
  const hiddenCsrf = (session: EnterpriseSession) => `<input type="hidden" name="csrf" value="${escapeHtml(csrf.token(session.sid))}">`;

  router.get('/', admin(async (_req, res) => {
    const health = await idpHealth(deps.federation.connectors.values(), deps.signIns);
    const rows = health.map((idp) => {
      const checks = idp.checks.map((c) => `<li>${c.ok ? '✓' : '<strong class="danger">✗</strong>'} ${escapeHtml(c.name)}: ${escapeHtml(c.message)}</li>`).join('');
      const certs = idp.certificates.map((c) => {
        const left = c.notAfter - now();
        return `<li${left < 30 * 86400 ? ' class="danger"' : ''}>expires ${escapeHtml(when(c.notAfter))} (${left > 0 ? `in ${escapeHtml(formatDuration(left))}` : 'expired'})</li>`;
      }).join('');
      return `<tr><th scope="row">${escapeHtml(idp.displayName)}<br><span class="note"><code>${escapeHtml(idp.id)}</code> · ${idp.type.toUpperCase()}</span></th>
<td>${idp.checks.every((c) => c.ok) ? 'healthy' : '<strong class="danger">failing</strong>'}<ul>${checks}</ul></td>
<td>${certs ? `<ul>${certs}</ul>` : '<span class="note">n/a</span>'}</td>
<td>${idp.lastSignIn ? escapeHtml(when(idp.lastSignIn)) : '<span class="note">none recorded</span>'}</td></tr>`;
    }).join('\n');
    send(res, 'Admin console', `<h1>Admin console</h1>
<h2>Identity providers</h2>
${rows ? `<table><thead><tr><th scope="col">IdP</th><th scope="col">Health (discovery / metadata)</th><th scope="col">Signing certificates</th><th scope="col">Last successful sign-in</th></tr></thead>
<tbody>
${rows}
</tbody></table>` : '<p>No identity provider is configured.</p>'}`);
  }));

  router.get('/console/sessions', admin(async (req, res, me) => {
    const sub = str(req.query.sub);
    const cursor = str(req.query.cursor);
    let shown: EnterpriseSession[];
    let summary: string;
    let next = '';
    if (sub) {
      shown = await sessions.liveOf(sub);
      summary = `Sessions of ${escapeHtml(sub)}.`;
    } else {
      if (cursor && !isSessionCursor(cursor)) return problem(req, res, 400, 'No such page', 'This page link is not one the console gave out. Open the first page of sessions and follow its links.');
      const page = await sessions.list({ limit: SESSIONS_PAGE, ...(cursor ? { cursor } : {}) });
      shown = page.sessions;
      summary = `${page.total} live session${page.total === 1 ? '' : 's'}, newest first${cursor ? ' (a later page)' : ''}.`;
      if (page.nextCursor) next = `<p><a href="${escapeHtml(`${base}/console/sessions?${new URLSearchParams({ cursor: page.nextCursor })}`)}">Next page</a></p>`;
    }
    const rows: string[] = [];
    for (const session of shown) {
      const { sid } = session;
      const uses = await sessions.agentsOf(sid);
      const agentList = uses.map((u) => `<li><code>${escapeHtml(u.clientId)}</code>: ${escapeHtml(u.scopes.join(' '))} at ${escapeHtml(u.audience)}, last used ${escapeHtml(when(u.lastUsedAt))}</li>`).join('');
      rows.push(`<tr><th scope="row"><code>${escapeHtml(sid)}</code>${sid === me.sid ? ' <span class="note">(you)</span>' : ''}</th>
<td>${escapeHtml(session.identity.email || session.accountId)}<br><span class="note">${escapeHtml(session.accountId)} · ${escapeHtml(session.roles.join(', ') || 'no roles')}</span></td>
<td>${escapeHtml(when(session.createdAt))}</td>
<td>${agentList ? `<ul>${agentList}</ul>` : '<span class="note">none</span>'}</td>
<td><form method="post" action="${escapeHtml(`${base}/console/sessions/end`)}">${hiddenCsrf(me)}<input type="hidden" name="sid" value="${escapeHtml(sid)}">
<button type="submit" aria-label="End session ${escapeHtml(sid)}">End session</button></form></td></tr>`);
    }
    const notice = str(req.query.ended) ? `<p role="status">Session ${escapeHtml(str(req.query.ended))} ended; every token from it is dead.</p>` : '';
    send(res, 'Sessions', `<h1>Active sessions</h1>${notice}
<form method="get" action="${escapeHtml(`${base}/console/sessions`)}">
<label for="sub">Person (account id, e.g. <code>okta|00u1…</code>)</label><input id="sub" name="sub" value="${escapeHtml(sub)}">
<button type="submit">Find sessions</button></form>
<p class="note">${summary}</p>
${rows.length ? `<table><thead><tr><th scope="col">Session</th><th scope="col">Person</th><th scope="col">Signed in</th><th scope="col">Agents</th><th scope="col">Kill switch</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>` : '<p role="status">No live session found.</p>'}
${next}`);
  }));

  router.post('/console/sessions/end', form, admin(async (req, res, me) => {
    const sid = str((req.body as Record<string, unknown>).sid);
    if (!sid || !(await sessions.get(sid))) return problem(req, res, 404, 'No such session', `There is no live session "${sid}".`);
    const ended = await sessions.end(sid, 'admin');
    await audit.record('session.revoked', { adminPerson: me.accountId, sid, sub: ended?.accountId, reason: 'admin' });
    res.set('Cache-Control', 'no-store').redirect(303, `${base}/console/sessions?${new URLSearchParams({ ended: sid })}`);
  }, { post: true }));

  router.get('/console/agents', admin(async (req, res, me) => {
    const rows: string[] = [];
    for (const agent of config.agents) {
      const runtime = await revocations.isAgentDisabled(agent.clientId);
      const state = agent.disabled ? 'disabled in the config' : runtime ? '<strong class="danger">disabled</strong> (kill switch)' : 'enabled';
      const action = runtime ? 'enable' : 'disable';
      rows.push(`<tr><th scope="row">${escapeHtml(agent.name ?? agent.clientId)}<br><span class="note"><code>${escapeHtml(agent.clientId)}</code></span></th>
<td>${escapeHtml(agent.scopes.join(' '))}</td><td>${escapeHtml(agent.audiences.join(' '))}</td><td>${state}</td>
<td><form method="post" action="${escapeHtml(`${base}/console/agents/${action}`)}">${hiddenCsrf(me)}<input type="hidden" name="agent" value="${escapeHtml(agent.clientId)}">
<button type="submit" aria-label="${action === 'disable' ? 'Disable' : 'Enable'} ${escapeHtml(agent.clientId)}">${action === 'disable' ? 'Disable' : 'Enable'}</button></form></td></tr>`);
    }
    const changed = str(req.query.changed);
    send(res, 'Agents', `<h1>Agents</h1>
${changed ? `<p role="status">${escapeHtml(changed)}</p>` : ''}
<p class="note">Disable is the kill switch: the agent gets no new token, and every token it holds or passed on dies at once.</p>
<table><thead><tr><th scope="col">Agent</th><th scope="col">Scopes</th><th scope="col">Audiences</th><th scope="col">State</th><th scope="col">Kill switch</th></tr></thead>
<tbody>
${rows.join('\n')}
</tbody></table>`);
  }));

  router.post('/console/agents/:action', form, admin(async (req, res, me) => {
    const clientId = str((req.body as Record<string, unknown>).agent);
    const action = req.params.action;
    if (!agents.has(clientId) || (action !== 'disable' && action !== 'enable')) return problem(req, res, 404, 'No such agent', `No agent "${clientId}" is configured.`);
    if (action === 'disable') {
      const event = await revocations.disableAgent(clientId, 'admin');
      await audit.record('agent.disabled', { adminPerson: me.accountId, agent: clientId, at: event.at });
    } else {
      const at = await revocations.enableAgent(clientId);
      await audit.record('agent.enabled', { adminPerson: me.accountId, agent: clientId, at });
    }
    res.set('Cache-Control', 'no-store').redirect(303, `${base}/console/agents?${new URLSearchParams({ changed: `${clientId} ${action}d.` })}`);
  }, { post: true }));

  router.get('/console/audit', admin(async (req, res) => {
    const filters = { event: str(req.query.event), sub: str(req.query.sub), agent: str(req.query.agent), outcome: str(req.query.outcome) };
    const entries = (await deps.store.readStream(AUDIT_STREAM, AUDIT_WINDOW))
      .filter(({ fields }) => (!filters.event || fields.event === filters.event)
        && (!filters.sub || fields.sub === filters.sub)
        && (!filters.agent || fields.agent === filters.agent)
        && (!filters.outcome || fields.outcome === filters.outcome))
      .slice(0, 100);
    const shown = ['sub', 'agent', 'outcome', 'error', 'audience', 'granted', 'requested', 'scopes', 'sid', 'idp', 'adminClient', 'adminPerson', 'reason'];
    const rows = entries.map(({ id, fields }) => `<tr><td>${escapeHtml(when(Number(fields.time)))}</td><td><code>${escapeHtml(fields.event)}</code></td>
<td>${shown.filter((name) => fields[name]).map((name) => `${name}=${escapeHtml(fields[name])}`).join('<br>')}</td><td class="note">${escapeHtml(id)}</td></tr>`).join('\n');
    const input = (name: keyof typeof filters, label: string) => `<label for="${name}">${label}</label><input id="${name}" name="${name}" value="${escapeHtml(filters[name])}">`;
    send(res, 'Audit', `<h1>Recent audit events</h1>
<form method="get" action="${escapeHtml(`${base}/console/audit`)}">
${input('event', 'Event (e.g. token.exchanged, token.exchange_refused, consent.granted)')}
${input('sub', 'Person (account id)')}
${input('agent', 'Agent (client id)')}
${input('outcome', 'Outcome (grant, deny, step_up)')}
<button type="submit">Filter</button></form>
<p class="note">The newest ${AUDIT_WINDOW} entries of the <code>${AUDIT_STREAM}</code> stream, filtered; at most 100 shown.</p>
${rows ? `<table><thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">Details</th><th scope="col">Id</th></tr></thead>
<tbody>
${rows}
</tbody></table>` : '<p role="status">No matching event.</p>'}`);
  }));

  router.get('/console/explain', admin(async (req, res) => {
    const q = { sid: str(req.query.sid), agent: str(req.query.agent), scope: str(req.query.scope), audience: str(req.query.audience) };
    let result = '';
    if (q.sid || q.agent) {
      const session = q.sid ? await sessions.get(q.sid) : undefined;
      if (!session) result = '<p role="alert">No live session with that id (explain takes the person from a live session).</p>';
      else if (!agents.has(q.agent)) result = '<p role="alert">Choose a configured agent.</p>';
      else {
        const decision = deps.policy.decide({
          identity: session.identity, agent: q.agent, now: now(), explainAll: false,
          ...(q.scope ? { scopes: q.scope.split(' ').filter(Boolean) } : {}),
          ...(q.audience ? { audience: q.audience } : {}),
        });
        result = `<h2>Decision</h2><pre>${escapeHtml(formatDecision(decision))}</pre>`;
      }
    }
    const options = config.agents.map((a) => `<option value="${escapeHtml(a.clientId)}"${a.clientId === q.agent ? ' selected' : ''}>${escapeHtml(a.name ?? a.clientId)}</option>`).join('');
    send(res, 'Explain', `<h1>Explain a decision</h1>
<p class="note">What would this agent get for this person, and why — the policy's trace, as <code>agentgate explain</code> prints it. Read-only.</p>
<form method="get" action="${escapeHtml(`${base}/console/explain`)}">
<label for="sid">Session (the person: see Sessions)</label><input id="sid" name="sid" value="${escapeHtml(q.sid)}" required>
<label for="agent">Agent</label><select id="agent" name="agent">${options}</select>
<label for="scope">Scopes (space-separated; empty for the agent's defaults)</label><input id="scope" name="scope" value="${escapeHtml(q.scope)}">
<label for="audience">Audience (empty for the agent's default)</label><input id="audience" name="audience" value="${escapeHtml(q.audience)}">
<button type="submit">Explain</button></form>
${result}`);
  }));

  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error);
    const { status, body } = toOAuthBody(error);
    if (status >= 500) deps.logger.error({ reqId: req.id, err: { name: (error as Error)?.name, message: (error as Error)?.message } }, 'admin console page failed');
    problem(req, res, status, status === 503 ? 'Try again shortly' : 'Something went wrong', body.error_description);
  });
  return router;
}

function nav(base: string): string {
  const link = (path: string, text: string) => `<a href="${escapeHtml(`${base}${path}`)}">${text}</a>`;
  return `<nav aria-label="Admin console">${[link('', 'Identity providers'), link('/console/sessions', 'Sessions'), link('/console/agents', 'Agents'), link('/console/audit', 'Audit'), link('/console/explain', 'Explain')].join(' · ')}</nav>`;
}
