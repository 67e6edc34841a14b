// Opening the gateway's own pages signs you in (as Keycloak's account console and Okta's dashboard
// do): a GET of /account/* or /admin without a live session is a 303 to the gateway's /auth as the
// reserved first-party client `agentgate-account` (code + PKCE S256, state), through the built-in
// demo IdP over real HTTP, back to /account/signed-in, which redeems the code in-process and
// returns to the page. The callback refuses what is not its own sign-in's answer with a 400 page;
// POSTs without a session stay 401; an ended session (logout, admin kill switch) means a fresh
// sign-in through the IdP — never a silent one into the dead session, never a loop.
import { createHash, randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { safeReturnPath, SIGN_IN_COOKIE } from '../../src/account/index.ts';
import { createCookieSigner } from '../../src/session/index.ts';
import { createBrowser, pkcePair } from '../support/browser.ts';
import type { Browser, Hop } from '../support/browser.ts';
import { postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const COOKIE_KEY = 'sign-in-test-cookie-key-0123456789abcdef';
const APP_REDIRECT = 'http://127.0.0.1/cb';
let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({
    config: {
      cookies: { keys: [COOKIE_KEY] },
      demoIdp: {
        enabled: true,
        people: [
          { username: 'alice', name: 'Alice Finance', email: 'alice@demo.example.test', groups: ['Finance'] },
          { username: 'carol', name: 'Carol IT', email: 'carol@demo.example.test', groups: ['IT'] },
        ],
      },
      roles: { 'gateway-admin': { description: 'runs the gateway' }, finance: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'demo', group: 'IT', roles: ['gateway-admin'] }, { idp: 'demo', group: 'Finance', roles: ['finance'] }],
      admin: { roles: ['gateway-admin'] },
    },
  });
});
afterAll(async () => {
  await gw?.close();
});

interface Walk {
  /** The last answer (not a redirect, or the one `stopAt` matched). */
  hop: Hop;
  /** The URL that answered it. */
  url: string;
  /** Every URL requested, in order. */
  visited: string[];
}

/**
 * Follows redirects like a browser, answering the gateway's sign-in picker ("Sign in with Demo
 * IdP") and the demo IdP's people page (pick `username`; without one, stops at the first page);
 * stops at any other page, or before requesting a URL `stopAt` matches.
 */
async function walk(browser: Browser, start: string, username: string | undefined, stopAt?: (url: string) => boolean): Promise<Walk> {
  let url = start;
  const visited = [url];
  let hop = await browser.get(url);
  for (let i = 0; i < 30; i += 1) {
    if (hop.location) {
      if (stopAt?.(hop.location)) break;
      url = hop.location;
      visited.push(url);
      hop = await browser.get(url);
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(hop.body)?.[1]?.replace(/&amp;/g, '&');
    if (hop.status !== 200 || !action || username === undefined) break;
    const target = new URL(action, url).href;
    if (action.endsWith('/choose')) hop = await browser.postForm(target, { idp: 'demo' });
    else if (hop.body.includes('name="username"')) hop = await browser.postForm(target, { username });
    else break;
    visited.push(`POST ${target}`);
  }
  return { hop, url, visited };
}

const cookieValue = (browser: Browser, name: string) => {
  const raw = browser.jar.get(name);
  return raw === undefined ? undefined : decodeURIComponent(raw.slice(0, raw.lastIndexOf('.')));
};
const sidOf = (browser: Browser) => cookieValue(browser, 'agentgate.sid');
const inFlight = (browser: Browser) => JSON.parse(cookieValue(browser, SIGN_IN_COOKIE)!) as { state: string; verifier: string; returnTo: string; startedAt: number };
const correlated = (body: string) => expect(body).toMatch(/reference: <code>[\w-]+<\/code>/);

/** A browser that has opened `path` without a session: its state cookie set, the /auth URL returned. */
async function startAt(path: string, browser = createBrowser()): Promise<{ browser: Browser; auth: URL }> {
  const res = await browser.get(`${gw.url}${path}`);
  expect(res.status).toBe(303);
  return { browser, auth: new URL(res.location!) };
}

/** Runs the sign-in of `auth` as `username` up to (not into) the callback; returns the callback URL. */
async function callbackUrl(browser: Browser, auth: URL | string, username = 'alice'): Promise<string> {
  const done = await walk(browser, String(auth), username, (url) => url.startsWith(`${gw.url}/account/signed-in`));
  expect(done.hop.status).toBe(303);
  return done.hop.location!;
}

describe('opening a page without a session signs you in', () => {
  it('GET /account/agents → 303 to /auth as agentgate-account with exactly code, openid, PKCE S256 and state; the state cookie is signed, HttpOnly, Lax, on the callback path, 10 minutes', async () => {
    const browser = createBrowser();
    const res = await browser.get(`${gw.url}/account/agents`);
    expect(res.status).toBe(303);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const auth = new URL(res.location!);
    expect(`${auth.origin}${auth.pathname}`).toBe(`${gw.url}/auth`);
    expect([...auth.searchParams.keys()]).toEqual(['client_id', 'response_type', 'scope', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method']);
    expect(Object.fromEntries(auth.searchParams)).toMatchObject({
      client_id: 'agentgate-account', response_type: 'code', scope: 'openid', redirect_uri: `${gw.url}/account/signed-in`, code_challenge_method: 'S256',
    });
    expect(auth.searchParams.get('state')).toMatch(/^[\w-]{43}$/);
    const cookie = res.headers.getSetCookie().find((line) => line.startsWith(`${SIGN_IN_COOKIE}=`))!;
    expect(cookie).toMatch(/; Path=\/account\/signed-in; HttpOnly; SameSite=Lax; Max-Age=600$/);
    expect(cookie).not.toContain('Secure'); // the test issuer is http on loopback
    const flight = inFlight(browser);
    expect(flight.state).toBe(auth.searchParams.get('state'));
    expect(auth.searchParams.get('code_challenge')).toBe(createHash('sha256').update(flight.verifier).digest('base64url'));
    expect(flight.returnTo).toBe('/account/agents');
    // Signed: the same cookie with a changed value is not read back.
    expect(createCookieSigner(['another-key-0123456789abcdef0123456789']).read(`${SIGN_IN_COOKIE}=${browser.jar.get(SIGN_IN_COOKIE)}`, SIGN_IN_COOKIE)).toBeUndefined();
  });

  it('forwards login_hint and idp_hint to /auth, and keeps the rest of the page\'s query for the way back', async () => {
    const browser = createBrowser();
    const consent = `/account/consent?agent=invoice-agent&audience=${encodeURIComponent('https://erp.example.test')}&scope=erp%3Aread`;
    const { auth } = await startAt(`${consent}&login_hint=alice%40demo.example.test&idp_hint=demo`, browser);
    expect(auth.searchParams.get('login_hint')).toBe('alice@demo.example.test');
    expect(auth.searchParams.get('idp_hint')).toBe('demo');
    expect(inFlight(browser).returnTo).toBe(consent);
    // idp_hint skips the picker: straight to the demo IdP.
    const done = await walk(browser, String(auth), 'alice');
    expect(done.url).toBe(`${gw.url}${consent}`);
    expect(done.hop.status).toBe(200);
    expect(done.hop.body).toContain('<h1>Allow invoice-agent to act for you?</h1>');
    expect(done.visited.some((url) => url.startsWith('POST') && url.includes('/choose'))).toBe(false);
  });

  it('follows the redirects through the picker and the demo IdP back to My agents, with the person\'s page', async () => {
    const browser = createBrowser();
    const done = await walk(browser, `${gw.url}/account/agents`, 'alice');
    expect(done.url).toBe(`${gw.url}/account/agents`);
    expect(done.hop.status).toBe(200);
    expect(done.hop.body).toContain('<h1>Agents acting for you</h1>');
    expect(done.hop.body).toContain('Signed in as <strong>Alice Finance</strong>');
    expect(done.visited.filter((url) => url.startsWith(`${gw.url}/account/signed-in?`))).toHaveLength(1);
    expect(done.visited.some((url) => url.startsWith(`${gw.url}/demo-idp/auth?`))).toBe(true);
    // The state cookie is spent; the enterprise session is Alice's, and the sign-in's grant is tied to it.
    expect(browser.jar.has(SIGN_IN_COOKIE)).toBe(false);
    const session = await gw.gateway.sessions.get(sidOf(browser)!);
    expect(session?.accountId).toBe('demo|alice');
    expect(await gw.gateway.sessions.grantFor(session!.sid, 'agentgate-account')).toMatch(/.+/);
    // Signed in now: the page answers at once.
    expect((await browser.get(`${gw.url}/account/agents`)).status).toBe(200);
  });

  it('signs an admin into /admin the same way; a person without an admin role gets the 403 page, not a loop', async () => {
    const carol = await walk(createBrowser(), `${gw.url}/admin`, 'carol');
    expect(carol.url).toBe(`${gw.url}/admin`);
    expect(carol.hop.status).toBe(200);
    expect(carol.hop.body).toContain('<h2>Identity providers</h2>');
    const sessions = await walk(createBrowser(), `${gw.url}/admin/console/sessions?sub=demo%7Calice`, 'carol');
    expect(sessions.url).toBe(`${gw.url}/admin/console/sessions?sub=demo%7Calice`);
    expect(sessions.hop.body).toContain('<h1>Active sessions</h1>');
    const alice = await walk(createBrowser(), `${gw.url}/admin`, 'alice');
    expect(alice.url).toBe(`${gw.url}/admin`);
    expect(alice.hop.status).toBe(403);
    expect(alice.hop.body).toContain('<h1>Not an administrator</h1>');
  });

  it('leaves the bearer admin API alone: a JSON 401 challenge, no redirect', async () => {
    const api = await createBrowser().get(`${gw.url}/admin/sessions?sub=x`);
    expect(api.status).toBe(401);
    expect(api.location).toBeNull();
    expect(JSON.parse(api.body)).toEqual({ error: 'invalid_token', error_description: 'a bearer access token for the admin API is required' });
  });

  it('keeps POSTs without a session at their 401 page (nothing replayed, no redirect)', async () => {
    for (const path of ['/account/agents/revoke', '/account/consent', '/admin/console/sessions/end', '/admin/console/agents/disable']) {
      const res = await createBrowser().postForm(`${gw.url}${path}`, { agent: 'invoice-agent', sid: 'x', csrf: 'x' });
      expect(res.status, path).toBe(401);
      expect(res.location, path).toBeNull();
      expect(res.body, path).toContain('<h1>Not signed in</h1>');
      correlated(res.body);
    }
  });
});

describe('the callback /account/signed-in refuses what is not its own sign-in\'s answer', () => {
  const refused = (res: Hop, text: string) => {
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toContain(text);
    correlated(res.body);
  };

  it('without the state cookie (another browser, or too late): 400', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const callback = await callbackUrl(browser, auth);
    refused(await createBrowser().get(callback), 'This sign-in was not started in this browser');
  });

  it('with a missing or wrong state: 400, and the code is not spent', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const callback = new URL(await callbackUrl(browser, auth));
    const cookie = browser.jar.get(SIGN_IN_COOKIE)!;
    const wrong = new URL(callback);
    wrong.searchParams.set('state', randomBytes(32).toString('base64url'));
    refused(await browser.get(String(wrong)), 'does not belong to the sign-in this browser started');
    browser.jar.set(SIGN_IN_COOKIE, cookie);
    const missing = new URL(callback);
    missing.searchParams.delete('state');
    refused(await browser.get(String(missing)), 'does not belong to the sign-in this browser started');
    // The real answer still works (the refusals spent nothing but the cookie, restored here).
    browser.jar.set(SIGN_IN_COOKIE, cookie);
    const ok = await browser.get(String(callback));
    expect(ok.status).toBe(303);
    expect(ok.location).toBe(`${gw.url}/account/agents`);
  });

  it('with an iss other than this gateway (RFC 9207): 400', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const callback = new URL(await callbackUrl(browser, auth));
    expect(callback.searchParams.get('iss')).toBe(gw.url);
    callback.searchParams.set('iss', 'https://elsewhere.example.test');
    refused(await browser.get(String(callback)), 'did not come from this gateway');
  });

  it('a code issued to another client (an app): 400, and the app can still redeem its code', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const state = auth.searchParams.get('state')!;
    const { verifier, challenge } = pkcePair();
    const params = new URLSearchParams({
      client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state', idp_hint: 'demo',
    });
    const appRedirect = new URL((await walk(browser, `${gw.url}/auth?${params}`, 'alice', (url) => url.startsWith(APP_REDIRECT))).hop.location!);
    const code = appRedirect.searchParams.get('code')!;
    const res = await browser.get(`${gw.url}/account/signed-in?${new URLSearchParams({ code, state, iss: gw.url })}`);
    refused(res, 'The sign-in code was not issued for these pages.');
    const tokens = await postForm(`${gw.url}/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: APP_REDIRECT, client_id: 'agent-console' });
    expect(tokens.status).toBe(200);
  });

  it('a replayed code (the same answer twice): the second use is refused', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const callback = await callbackUrl(browser, auth);
    const cookie = browser.jar.get(SIGN_IN_COOKIE)!;
    const first = await browser.get(callback);
    expect(first.status).toBe(303);
    expect(first.location).toBe(`${gw.url}/account/agents`);
    browser.jar.set(SIGN_IN_COOKIE, cookie);
    refused(await browser.get(callback), 'The sign-in code was already used.');
  });

  it('a code whose PKCE challenge is not this browser\'s verifier\'s: 400, and the code is not spent', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const other = pkcePair();
    auth.searchParams.set('code_challenge', other.challenge);
    const callback = new URL(await callbackUrl(browser, auth));
    refused(await browser.get(String(callback)), 'The sign-in code was issued to another sign-in attempt.');
  });

  it('an account-client code is worth nothing at the token endpoint, even with its verifier', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const mine = pkcePair();
    auth.searchParams.set('code_challenge', mine.challenge);
    const code = new URL(await callbackUrl(browser, auth)).searchParams.get('code')!;
    const tokens = await postForm(`${gw.url}/token`, {
      grant_type: 'authorization_code', code, code_verifier: mine.verifier, redirect_uri: `${gw.url}/account/signed-in`, client_id: 'agentgate-account',
    });
    expect(tokens.status).toBe(400);
    expect(tokens.body.error).toBe('invalid_grant');
    expect(tokens.body.access_token).toBeUndefined();
  });

  it('error=access_denied from the authorization server (the person cancelled): a page saying sign-in did not complete', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const picker = await walk(browser, String(auth), undefined);
    expect(picker.url).toMatch(/\/interaction\/[\w-]+$/);
    const cancelled = await walk(browser, `${picker.url}/abort`, 'alice', (url) => url.startsWith(`${gw.url}/account/signed-in`));
    const callback = new URL(cancelled.hop.location!);
    expect(callback.searchParams.get('error')).toBe('access_denied');
    const res = await browser.get(String(callback));
    refused(res, '<h1>Sign-in did not complete</h1>');
    expect(res.body).toContain('The sign-in was cancelled or refused');
    expect(res.body).toContain('<a href="/account/agents">Sign in again</a>');
    expect(sidOf(browser)).toBeUndefined();
  });

  it('never follows a return path that is an absolute URL or outside the issuer: falls back to /account/agents', async () => {
    for (const returnTo of ['https://evil.example.test/x', '//evil.example.test/x', '/\\evil.example.test', 'javascript:alert(1)']) {
      const { browser, auth } = await startAt('/account/agents');
      const flight = inFlight(browser);
      // A state cookie as only someone holding the cookie key could make it.
      const forged = createCookieSigner([COOKIE_KEY]).serialize(SIGN_IN_COOKIE, JSON.stringify({ ...flight, returnTo }), { path: '/account/signed-in', secure: false });
      browser.jar.set(SIGN_IN_COOKIE, forged.slice(SIGN_IN_COOKIE.length + 1, forged.indexOf(';')));
      const res = await browser.get(await callbackUrl(browser, auth));
      expect(res.status, returnTo).toBe(303);
      expect(res.location, returnTo).toBe(`${gw.url}/account/agents`);
    }
  });

  it('safeReturnPath keeps paths under the issuer path only', () => {
    const issuer = 'https://sso.example.test/gw';
    expect(safeReturnPath('/gw/account/agents?revoked=a', issuer)).toBe('/gw/account/agents?revoked=a');
    expect(safeReturnPath('/gw/account/consent?agent=a&login_hint=x%40y&idp_hint=okta', issuer)).toBe('/gw/account/consent?agent=a');
    for (const raw of ['/other', '/gw', '/gwx/account', '/gw/../other', '/gw/%2e%2e/other', 'https://sso.example.test/gw/account', '//evil.example.test/gw/', '/\\evil', '/gw/a\nb', 'gw/account', undefined, 42]) {
      expect(safeReturnPath(raw, issuer), String(raw)).toBeUndefined();
    }
  });
});

describe('ended sessions sign in anew through the IdP', () => {
  it('after RP-initiated logout, /account/agents sends the person to sign in again and a new session begins', async () => {
    const browser = createBrowser();
    const first = await walk(browser, `${gw.url}/account/agents`, 'alice');
    expect(first.hop.status).toBe(200);
    const oldSid = sidOf(browser)!;
    const logout = await browser.get(`${gw.url}/session/end`);
    expect(logout.status).toBe(200);
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(logout.body)?.[1];
    const confirmed = await browser.postForm(`${gw.url}/session/end/confirm`, { xsrf: xsrf!, logout: 'yes' });
    expect(confirmed.status).toBe(303);
    expect(await gw.gateway.sessions.get(oldSid)).toBeUndefined();

    const again = await browser.get(`${gw.url}/account/agents`);
    expect(again.status).toBe(303);
    expect(again.location).toMatch(new RegExp(`^${gw.url}/auth\\?client_id=agentgate-account&`));
    const done = await walk(browser, again.location!, 'alice');
    expect(done.url).toBe(`${gw.url}/account/agents`);
    expect(done.hop.status).toBe(200);
    // Through the gateway's sign-in (the picker) and the IdP, into a new session.
    expect(done.visited.some((url) => /\/interaction\/[\w-]+\/choose$/.test(url))).toBe(true);
    expect(done.visited.some((url) => url.startsWith(`${gw.url}/demo-idp/auth?`))).toBe(true);
    expect(sidOf(browser)).not.toBe(oldSid);
    expect((await gw.gateway.sessions.get(sidOf(browser)!))?.accountId).toBe('demo|alice');
    expect(await gw.gateway.sessions.get(oldSid)).toBeUndefined();
  });

  it('after the session is revoked (kill switch), the next visit signs in anew through the IdP — no silent SSO into the dead session, no loop', async () => {
    const browser = createBrowser();
    expect((await walk(browser, `${gw.url}/account/agents`, 'carol')).hop.status).toBe(200);
    const oldSid = sidOf(browser)!;
    await gw.gateway.sessions.end(oldSid, 'admin');

    const done = await walk(browser, `${gw.url}/account/agents`, 'carol');
    expect(done.url).toBe(`${gw.url}/account/agents`);
    expect(done.hop.status).toBe(200);
    expect(done.hop.body).toContain('Signed in as <strong>Carol IT</strong>');
    expect(done.visited.some((url) => /\/interaction\/[\w-]+\/choose$/.test(url))).toBe(true);
    expect(done.visited.filter((url) => url.startsWith(`${gw.url}/account/signed-in?`))).toHaveLength(1);
    const newSid = sidOf(browser)!;
    expect(newSid).not.toBe(oldSid);
    expect(await gw.gateway.sessions.get(oldSid)).toBeUndefined();
    expect((await gw.gateway.sessions.get(newSid))?.accountId).toBe('demo|carol');
  });

  it('the same holds for an app\'s /auth after the kill switch: prompt=none gets login_required, otherwise the sign-in page', async () => {
    const browser = createBrowser();
    expect((await walk(browser, `${gw.url}/account/agents`, 'alice')).hop.status).toBe(200);
    await gw.gateway.sessions.end(sidOf(browser)!, 'admin');
    const params = (extra: Record<string, string>) => new URLSearchParams({
      client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid',
      code_challenge: pkcePair().challenge, code_challenge_method: 'S256', state: 'app-state', ...extra,
    });
    const silent = await walk(browser, `${gw.url}/auth?${params({ prompt: 'none' })}`, undefined, (url) => url.startsWith(APP_REDIRECT));
    expect(Object.fromEntries(new URL(silent.hop.location!).searchParams)).toMatchObject({ error: 'login_required', state: 'app-state' });
    const page = await walk(browser, `${gw.url}/auth?${params({})}`, undefined);
    expect(page.url).toMatch(/\/interaction\/[\w-]+$/);
    expect(page.hop.status).toBe(200);
    expect(page.hop.body).toContain('<h1>Sign in</h1>');
  });

  it('a sign-in that finishes without a session cookie at the callback shows a page, not another redirect', async () => {
    const { browser, auth } = await startAt('/account/agents');
    const callback = await callbackUrl(browser, auth);
    browser.jar.delete('agentgate.sid');
    const res = await browser.get(callback);
    expect(res.status).toBe(400);
    expect(res.location).toBeNull();
    expect(res.body).toContain('<h1>Signed in, but no session here</h1>');
  });
});
