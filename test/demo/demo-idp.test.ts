// The built-in demo IdP and the demo's pages (issue 9), over real HTTP: the IdP is an ordinary
// OpenID Provider at {issuer}/demo-idp (discovery, JWKS), federated through the OIDC connector;
// its sign-in page lists the demo people and refuses anyone else; the demo home and callback
// pages; the authorization server's error page carries the request's correlation id.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createBrowser } from '../support/browser.ts';
import { demoSignIn } from '../support/demo.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway({
    config: {
      demoIdp: {
        enabled: true,
        displayName: 'Acme demo',
        people: [{ username: 'dora', name: 'Dora Demo', email: 'dora@demo.example.test', groups: ['Finance'], acr: 'mfa' }],
      },
      roles: { finance: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'demo', group: 'Finance', roles: ['finance'] }],
    },
  });
});
afterAll(async () => {
  await gw?.close();
});

describe('the demo IdP', () => {
  it('is an OpenID Provider at {issuer}/demo-idp', async () => {
    const res = await fetch(`${gw.url}/demo-idp/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const metadata = await res.json() as Record<string, unknown>;
    expect(metadata).toMatchObject({
      issuer: `${gw.url}/demo-idp`, jwks_uri: `${gw.url}/demo-idp/jwks`, id_token_signing_alg_values_supported: ['RS256'],
      code_challenge_methods_supported: ['S256'],
    });
  });

  it('signs a demo person in through the OIDC connector: groups become roles, acr passes through', async () => {
    const { sid } = await demoSignIn(gw, 'dora');
    const session = await gw.gateway.sessions.get(sid);
    expect(session).toMatchObject({ accountId: 'demo|dora', roles: ['finance'] });
    expect(session?.identity).toMatchObject({ idp: 'demo', email: 'dora@demo.example.test', name: 'Dora Demo', acr: 'mfa' });
    expect(session?.identity.groups.map((g) => g.id)).toEqual(['Finance']);
  });

  it('lists its people on its sign-in page and refuses anyone else', async () => {
    const browser = createBrowser();
    const params = new URLSearchParams({
      client_id: 'agent-console', response_type: 'code', redirect_uri: 'http://127.0.0.1/cb', scope: 'openid',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256', idp_hint: 'demo',
    });
    let hop = await browser.get(`${gw.url}/auth?${params}`);
    while (hop.location) hop = await browser.get(hop.location);
    expect(hop.status).toBe(200);
    expect(hop.body).toContain('<h1>Sign in to Acme demo</h1>');
    expect(hop.body).toContain('<button type="submit" name="username" value="dora">Dora Demo</button>');
    const action = /<form method="post" action="([^"]+)"/.exec(hop.body)![1]!;
    const refused = await browser.postForm(new URL(action, gw.url).href, { username: 'mallory' });
    expect(refused.status).toBe(400);
    expect(refused.body).toContain('Choose one of the demo people.');
  });
});

describe('the demo pages', () => {
  it('home: the people and the way in', async () => {
    const res = await fetch(`${gw.url}/demo`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('<li>Dora Demo <span class="note">(dora@demo.example.test; groups: Finance)</span></li>');
    expect(html).toContain(`<a href="${gw.url}/auth?client_id=agent-console&amp;response_type=code`);
  });

  it('callback: signed in, or what went wrong', async () => {
    expect(await (await fetch(`${gw.url}/demo/callback?code=abc`)).text()).toContain('<h1>You are signed in</h1>');
    const failed = await fetch(`${gw.url}/demo/callback?error=access_denied&error_description=nope`);
    expect(failed.status).toBe(400);
    expect(await failed.text()).toContain('<p role="alert">access_denied: nope</p>');
  });

  it('the authorization server\'s error page carries the correlation id', async () => {
    const res = await fetch(`${gw.url}/auth?client_id=nobody&response_type=code`, { headers: { accept: 'text/html' } });
    expect(res.status).toBe(400);
    const id = res.headers.get('x-request-id');
    expect(id).toBeTruthy();
    expect(await res.text()).toContain(`give your IT team this reference: <code>${id}</code>`);
  });
});

describe('demo mode is development only', () => {
  it('a production config with the demo IdP is refused, naming the path', async () => {
    const { validateConfig } = await import('../../src/config/index.ts');
    expect(() => validateConfig({
      mode: 'production', issuer: 'https://sso.example.test', store: { driver: 'redis', url: 'redis://127.0.0.1:6379' },
      keys: { file: '/k.json' }, cookies: { keys: ['k'.repeat(32)] },
      demoIdp: { enabled: true, people: [{ username: 'a', name: 'A', email: 'a@x.test' }] },
    })).toThrow(/demoIdp\.enabled: the built-in demo identity provider is refused in production mode/);
  });
});
