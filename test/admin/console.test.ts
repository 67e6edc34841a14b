// The admin console (issue 9): HTML pages for a person signed in through the gateway (here through
// the built-in demo IdP, federated over real HTTP) whose roles include one of admin.roles; a browser
// without a session is sent to sign in, a non-admin gets a 403 page. IdP health (the connector's probe, last successful sign-in), sessions
// with their agents, audit events with filters, the explain form, and the kill switches as
// CSRF-protected forms calling the same revocation and session services as the admin API.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBrowser } from '../support/browser.ts';
import { demoSignIn } from '../support/demo.ts';
import type { DemoSignIn } from '../support/demo.ts';
import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const ERP = 'https://erp.example.test';
let gw: TestGateway;
let carol: DemoSignIn;
let bob: DemoSignIn;

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1];
const exchange = (subject: string) => postForm(`${gw.url}/token`, {
  grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: subject,
  subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', scope: 'erp:read', audience: ERP,
}, { authorization: basic('invoice-agent', AGENT_SECRET) });

beforeAll(async () => {
  gw = await startGateway({
    config: {
      demoIdp: {
        enabled: true,
        people: [
          { username: 'carol', name: 'Carol IT', email: 'carol@demo.example.test', groups: ['IT', 'Finance'] },
          { username: 'bob', name: 'Bob Support', email: 'bob@demo.example.test', groups: ['Finance'] },
        ],
      },
      roles: { 'gateway-admin': { description: 'runs the gateway' }, finance: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'demo', group: 'IT', roles: ['gateway-admin'] }, { idp: 'demo', group: 'Finance', roles: ['finance'] }],
      admin: { roles: ['gateway-admin'] },
    },
  });
  carol = await demoSignIn(gw, 'carol');
  bob = await demoSignIn(gw, 'bob');
  expect((await exchange(bob.accessToken)).status).toBe(200);
});
afterAll(async () => {
  await gw?.close();
});

describe('/admin console', () => {
  it('sends people not signed in to sign in (GET) or refuses them (POST, 401), and refuses non-admins (403), as pages', async () => {
    const anonymous = await createBrowser().get(`${gw.url}/admin`);
    expect(anonymous.status).toBe(303);
    expect(anonymous.location).toMatch(new RegExp(`^${gw.url}/auth\\?client_id=agentgate-account&response_type=code&scope=openid&`));
    const post = await createBrowser().postForm(`${gw.url}/admin/console/sessions/end`, { sid: 'x' });
    expect(post.status).toBe(401);
    expect(post.headers.get('content-type')).toMatch(/^text\/html/);
    const nonAdmin = await bob.browser.get(`${gw.url}/admin/console/sessions`);
    expect(nonAdmin.status).toBe(403);
    expect(nonAdmin.body).toContain('<h1>Not an administrator</h1>');
    expect(nonAdmin.body).toMatch(/<code>[\w-]+<\/code>/);
    // The bearer admin API is untouched: JSON challenge for a browser without a token.
    const api = await createBrowser().get(`${gw.url}/admin/sessions?sub=x`);
    expect(api.status).toBe(401);
    expect(JSON.parse(api.body)).toEqual({ error: 'invalid_token', error_description: 'a bearer access token for the admin API is required' });
  });

  it('shows each IdP with its health and last successful sign-in', async () => {
    const res = await carol.browser.get(`${gw.url}/admin`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(res.body).toContain('<html lang="en">');
    expect(res.body).toContain('<h2>Identity providers</h2>');
    expect(res.body).toMatch(/<th scope="row">Demo IdP<br><span class="note"><code>demo<\/code> · OIDC<\/span><\/th>\s*<td>healthy<ul><li>✓ discovery/);
    expect(res.body).toMatch(/<td>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC<\/td><\/tr>/);
  });

  it('lists sessions with their agents, and ends one with the CSRF-protected kill switch', async () => {
    const list = await carol.browser.get(`${gw.url}/admin/console/sessions?${new URLSearchParams({ sub: 'demo|bob' })}`);
    expect(list.status).toBe(200);
    expect(list.body).toContain(`<code>${bob.sid}</code>`);
    expect(list.body).toContain('<li><code>invoice-agent</code>: erp:read at https://erp.example.test');
    const missing = await carol.browser.postForm(`${gw.url}/admin/console/sessions/end`, { sid: bob.sid });
    expect(missing.status).toBe(403);
    expect(await gw.gateway.sessions.get(bob.sid)).toBeDefined();
    const ended = await carol.browser.postForm(`${gw.url}/admin/console/sessions/end`, { sid: bob.sid, csrf: csrfOf(list.body)! });
    expect(ended.status).toBe(303);
    expect(ended.location).toBe(`${gw.url}/admin/console/sessions?ended=${bob.sid}`);
    expect(await gw.gateway.sessions.get(bob.sid)).toBeUndefined();
    expect((await exchange(bob.accessToken)).status).toBe(400);
  });

  it('disables and enables an agent with the kill switch forms', async () => {
    const page = await carol.browser.get(`${gw.url}/admin/console/agents`);
    expect(page.body).toContain('<button type="submit" aria-label="Disable invoice-agent">Disable</button>');
    const off = await carol.browser.postForm(`${gw.url}/admin/console/agents/disable`, { agent: 'invoice-agent', csrf: csrfOf(page.body)! });
    expect(off.status).toBe(303);
    expect(await gw.gateway.revocations.isAgentDisabled('invoice-agent')).toBe(true);
    expect((await exchange(carol.accessToken)).body).toEqual({ error: 'unauthorized_client', error_description: 'agent "invoice-agent" is disabled' });
    const after = await carol.browser.get(`${gw.url}/admin/console/agents`);
    expect(after.body).toContain('<strong class="danger">disabled</strong> (kill switch)');
    const on = await carol.browser.postForm(`${gw.url}/admin/console/agents/enable`, { agent: 'invoice-agent', csrf: csrfOf(after.body)! });
    expect(on.status).toBe(303);
    expect(await gw.gateway.revocations.isAgentDisabled('invoice-agent')).toBe(false);
  });

  it('shows recent audit events, filtered', async () => {
    const res = await carol.browser.get(`${gw.url}/admin/console/audit?event=agent.disabled`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('<code>agent.disabled</code>');
    expect(res.body).toContain('agent=invoice-agent<br>adminPerson=demo|carol');
    expect(res.body).not.toContain('<code>token.exchanged</code>');
    const byAgent = await carol.browser.get(`${gw.url}/admin/console/audit?${new URLSearchParams({ event: 'token.exchanged', sub: 'demo|bob' })}`);
    expect(byAgent.body).toContain('<code>token.exchanged</code>');
  });

  it('explains a decision for a live session\'s person', async () => {
    const res = await carol.browser.get(`${gw.url}/admin/console/explain?${new URLSearchParams({ sid: carol.sid, agent: 'invoice-agent', scope: 'erp:approve', audience: ERP })}`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('<label for="sid">');
    expect(res.body).toMatch(/<pre>DENY {3}invalid_scope: scope &quot;erp:approve&quot;/);
  });
});

describe('/admin/console/sessions without a person', () => {
  const person = (subject: string) => ({
    idp: 'demo', subject, email: `${subject}@demo.example.test`, groups: [], groupsComplete: true, amr: ['pwd'], authTime: Math.floor(Date.now() / 1000), attributes: {},
  });
  const sidsOn = (html: string) => [...html.matchAll(/<th scope="row"><code>([\w-]+)<\/code>/g)].map((m) => m[1]!);
  const nextLink = (html: string) => /<p><a href="([^"]+)">Next page<\/a><\/p>/.exec(html)?.[1]?.replace(/&amp;/g, '&');

  it('lists every live session, including ones never seen in an audit event, and says how many', async () => {
    // Bob's session ended above; Dave signed in but never did anything audited.
    const dave = await gw.gateway.sessions.create({ identity: person('dave'), roles: [] });
    expect((await gw.store.readStream('audit', 500)).some((e) => e.fields.sid === dave.sid)).toBe(false);
    const res = await carol.browser.get(`${gw.url}/admin/console/sessions`);
    expect(res.status).toBe(200);
    expect(res.body).toContain('<p class="note">2 live sessions, newest first.</p>');
    expect(sidsOn(res.body).sort()).toEqual([dave.sid, carol.sid].sort());
    expect(res.body).toContain(`<th scope="row"><code>${carol.sid}</code> <span class="note">(you)</span></th>`);
    expect(res.body).toContain('<td>dave@demo.example.test<br><span class="note">demo|dave · no roles</span></td>');
    expect(res.body).not.toContain(bob.sid);
    expect(nextLink(res.body)).toBeUndefined();
    await gw.gateway.sessions.end(dave.sid, 'admin');
  });

  it('pages 50 at a time with a "Next page" link; a page link the console did not give out is a 400 page', async () => {
    const extra = [];
    for (let i = 0; i < 55; i += 1) extra.push((await gw.gateway.sessions.create({ identity: person(`p${i}`), roles: [] })).sid);
    const first = await carol.browser.get(`${gw.url}/admin/console/sessions`);
    expect(first.body).toContain('<p class="note">56 live sessions, newest first.</p>');
    const onFirst = sidsOn(first.body);
    expect(onFirst).toHaveLength(50);
    const link = nextLink(first.body);
    expect(link).toMatch(/^\/admin\/console\/sessions\?cursor=[\w-]+$/);
    const second = await carol.browser.get(`${gw.url}${link}`);
    expect(second.status).toBe(200);
    expect(second.body).toContain('<p class="note">56 live sessions, newest first (a later page).</p>');
    const onSecond = sidsOn(second.body);
    expect(onSecond).toHaveLength(6);
    expect(nextLink(second.body)).toBeUndefined();
    expect([...onFirst, ...onSecond].sort()).toEqual([...extra, carol.sid].sort());

    const bad = await carol.browser.get(`${gw.url}/admin/console/sessions?cursor=not-a-cursor`);
    expect(bad.status).toBe(400);
    expect(bad.body).toContain('<h1>No such page</h1>');
    // With a person, the person's sessions as before (no paging).
    const byPerson = await carol.browser.get(`${gw.url}/admin/console/sessions?${new URLSearchParams({ sub: 'demo|p3' })}`);
    expect(sidsOn(byPerson.body)).toEqual([extra[3]]);
    expect(byPerson.body).toContain('<p class="note">Sessions of demo|p3.</p>');
    for (const sid of extra) await gw.gateway.sessions.end(sid, 'admin');
  });
});
