// Sign-ins through the built-in demo IdP (demoIdp in the gateway config): /auth with idp_hint,
// the demo IdP's people page (pick a username), back through the OIDC connector, all over real
// HTTP with a cookie browser. The app's code is redeemed like any app would.
import { randomUUID } from 'node:crypto';

import { createBrowser, pkcePair } from './browser.ts';
import type { Browser } from './browser.ts';
import { postForm } from './gateway.ts';
import type { TestGateway } from './gateway.ts';

export const DEMO_REDIRECT = 'http://127.0.0.1/cb';

export interface DemoSignIn {
  browser: Browser;
  accessToken: string;
  sid: string;
}

export async function demoSignIn(gw: TestGateway, username: string, options: { clientId?: string; redirectUri?: string } = {}): Promise<DemoSignIn> {
  const clientId = options.clientId ?? 'agent-console';
  const redirectUri = options.redirectUri ?? DEMO_REDIRECT;
  const browser = createBrowser();
  const { verifier, challenge } = pkcePair();
  const params = new URLSearchParams({
    client_id: clientId, response_type: 'code', redirect_uri: redirectUri, scope: 'openid email profile groups',
    code_challenge: challenge, code_challenge_method: 'S256', state: randomUUID(), nonce: randomUUID(), idp_hint: gw.config.demoIdp.id,
  });
  let hop = await browser.get(`${gw.url}/auth?${params}`);
  let url = `${gw.url}/auth`;
  for (let i = 0; i < 20; i += 1) {
    if (hop.location?.startsWith(redirectUri)) break;
    if (hop.location) {
      url = hop.location;
      hop = await browser.get(url);
      continue;
    }
    const action = /<form method="post" action="([^"]+)"/.exec(hop.body)?.[1];
    if (hop.status !== 200 || !action || !hop.body.includes('name="username"')) throw new Error(`demo sign-in stopped at ${url}: ${hop.status} ${hop.body.slice(0, 300)}`);
    url = new URL(action.replace(/&amp;/g, '&'), url).href;
    hop = await browser.postForm(url, { username });
  }
  const code = hop.location ? new URL(hop.location).searchParams.get('code') : null;
  if (!code) throw new Error(`no code: ${hop.location ?? hop.body.slice(0, 300)}`);
  const tokens = await postForm(`${gw.url}/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri, client_id: clientId });
  if (tokens.status !== 200) throw new Error(`code redemption failed: ${JSON.stringify(tokens.body)}`);
  const info = await postForm(`${gw.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: clientId });
  return { browser, accessToken: String(tokens.body.access_token), sid: String(info.body.sid) };
}
