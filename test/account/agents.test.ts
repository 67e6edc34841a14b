// "My agents" (issue 9): the signed-in person sees the agents holding tokens from their sessions,
// with scopes and last use, and revokes one with a CSRF-protected form. The revocation is a
// `revoked:sidagent:{sid}:{clientId}` record (pure, batched like the others): introspection, the
// exchange's single MGET and the SDK's feed (a `session-agent` event) all honour it — for the
// agent's own tokens and those it delegated onward, and for no other agent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBrowser } from '../support/browser.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ERP, exchangeAs, introspect, MAIL, signInPerson, startExchangeGateway } from '../exchange/fixture.ts';
import type { SignedInPerson } from '../exchange/fixture.ts';

let gw: TestGateway;
let alice: SignedInPerson;
let bob: SignedInPerson;
const tokens: Record<string, string> = {};

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1];

beforeAll(async () => {
  ({ gw } = await startExchangeGateway());
  alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
  bob = await signInPerson(gw, { email: 'bob@example.test', groups: 'Finance' });
  const take = async (name: string, agent: string, form: Record<string, string>) => {
    const res = await exchangeAs(gw, agent, form);
    if (res.status !== 200) throw new Error(`${name}: ${JSON.stringify(res.body)}`);
    tokens[name] = String(res.body.access_token);
  };
  await take('aErp', 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
  await take('aMail', 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL });
  // agent-b twice: delegated by agent-a, and straight from the person.
  await take('bDelegated', 'agent-b', { subject_token: tokens.aMail!, scope: 'mail:read', audience: MAIL });
  await take('bDirect', 'agent-b', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL });
  await take('bobA', 'agent-a', { subject_token: bob.accessToken, scope: 'erp:read', audience: ERP });
});
afterAll(async () => {
  await gw?.close();
});

const active = async (name: string) => (await introspect(gw, tokens[name]!)).body.active;

describe('/account/agents', () => {
  it('needs a signed-in person: a GET is sent to sign in (test/account/sign-in.test.ts), a POST refused', async () => {
    const res = await createBrowser().get(`${gw.url}/account/agents`);
    expect(res.status).toBe(303);
    expect(res.location).toMatch(new RegExp(`^${gw.url}/auth\\?client_id=agentgate-account&`));
    const post = await createBrowser().postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-a' });
    expect(post.status).toBe(401);
    expect(post.body).toContain('You are not signed in at the gateway');
  });

  it('lists the agents holding tokens from my sessions, their scopes and last use, with revoke buttons', async () => {
    const res = await alice.browser.get(`${gw.url}/account/agents`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    expect(res.body).toContain('<h1>Agents acting for you</h1>');
    // One line per agent and audience (src/session): agent-a holds an ERP and a mail token.
    expect(res.body).toMatch(/<th scope="row">agent-a<br>[\s\S]*?<li>erp:read at https:\/\/erp\.example\.test <span class="note">\(this session\)<\/span><\/li><li>mail:read at https:\/\/mail\.example\.test <span class="note">\(this session\)<\/span><\/li>/);
    expect(res.body).toMatch(/<th scope="row">agent-b<br>/);
    expect(res.body).toMatch(/<td>\d{4}-\d\d-\d\d \d\d:\d\d UTC<\/td>/);
    expect(res.body).toContain('<button type="submit" aria-label="Revoke agent-a">Revoke</button>');
    expect(res.body).not.toContain('<script');
  });

  it('refuses a revoke without the CSRF token, or with another person\'s, and nothing dies', async () => {
    const missing = await alice.browser.postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-a' });
    expect(missing.status).toBe(403);
    expect(missing.body).toContain('its security token is missing or wrong');
    const bobs = csrfOf((await bob.browser.get(`${gw.url}/account/agents`)).body)!;
    expect((await alice.browser.postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-a', csrf: bobs })).status).toBe(403);
    expect(await active('aErp')).toBe(true);
  });

  it('revoke makes that agent\'s tokens from my sessions inactive — and what it delegated — but no one else\'s', async () => {
    const csrf = csrfOf((await alice.browser.get(`${gw.url}/account/agents`)).body)!;
    const res = await alice.browser.postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-a', csrf });
    expect(res.status).toBe(303);
    expect(res.location).toBe(`${gw.url}/account/agents?revoked=agent-a`);
    expect(await active('aErp')).toBe(false);
    expect(await active('aMail')).toBe(false);
    expect(await active('bDelegated')).toBe(false);
    // Another agent of the same session, and the same agent for another person, live on.
    expect(await active('bDirect')).toBe(true);
    expect(await active('bobA')).toBe(true);
    // The exchange's own read of the records: a revoked token is no subject token.
    const again = await exchangeAs(gw, 'agent-b', { subject_token: tokens.aMail!, scope: 'mail:read', audience: MAIL });
    expect(again.status).toBe(400);
    expect(again.body).toEqual({ error: 'invalid_grant', error_description: 'the subject token has been revoked' });
  });

  it('records a session-agent event for resource servers\' feed, and an audit entry', async () => {
    const { events } = await gw.gateway.revocations.eventsAfter('0-0', 100);
    expect(events.at(-1)).toEqual({
      id: expect.any(String), type: 'session-agent', at: expect.any(Number), until: expect.any(Number),
      sid: alice.sid, sub: 'dev|alice@example.test', clientId: 'agent-a', reason: 'person',
    });
    const entry = (await gw.store.readStream('audit', 10)).map((e) => e.fields).find((fields) => fields.event === 'session_agent.revoked');
    expect(entry).toMatchObject({ event: 'session_agent.revoked', agent: 'agent-a', sub: 'dev|alice@example.test', sessions: alice.sid });
  });

  it('the page no longer lists the revoked agent and says so', async () => {
    const res = await alice.browser.get(`${gw.url}/account/agents?revoked=agent-a`);
    expect(res.body).toContain('<p role="status">agent-a no longer holds tokens from your sessions.</p>');
    expect(res.body).not.toMatch(/<th scope="row">agent-a<br>/);
    expect(res.body).toMatch(/<th scope="row">agent-b<br>/);
  });

  it('refuses to revoke an agent that holds nothing from my sessions', async () => {
    const csrf = csrfOf((await alice.browser.get(`${gw.url}/account/agents`)).body)!;
    const res = await alice.browser.postForm(`${gw.url}/account/agents/revoke`, { agent: 'agent-c', csrf });
    expect(res.status).toBe(400);
    expect(res.body).toContain('This agent holds no tokens from your sessions.');
  });
});
