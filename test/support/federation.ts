// Sign-ins through the gateway's /auth, federated to a peer IdP over the loopback internet, with
// a cookie-carrying browser; and the app's code redeemed at the gateway's token endpoint.
import { decodeJwt } from 'jose';

import { pkcePair } from './browser.ts';
import { postForm } from './gateway.ts';
import type { TestGateway } from './gateway.ts';
import { createPeerBrowser } from './peers/browser.ts';
import type { FollowResult, PeerBrowser } from './peers/browser.ts';
import type { LoopbackInternet } from './peers/internet.ts';

export const APP_REDIRECT = 'http://127.0.0.1/cb';

export interface FederatedSignIn {
  browser: PeerBrowser;
  walk: FollowResult;
  /** The app's redirect (code or error). */
  redirect: URL;
  verifier: string;
}

/** The app's /auth parameters (agent-console, code + PKCE S256) and the verifier that redeems its code. */
export function appAuthorization(options: { idpHint?: string; loginHint?: string; scope?: string; extra?: Record<string, string> }): { params: URLSearchParams; verifier: string } {
  const { verifier, challenge } = pkcePair();
  const params = new URLSearchParams({
    client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT,
    scope: options.scope ?? 'openid email profile groups', code_challenge: challenge, code_challenge_method: 'S256',
    state: 'app-state', nonce: 'app-nonce',
    ...(options.idpHint ? { idp_hint: options.idpHint } : {}),
    ...(options.loginHint ? { login_hint: options.loginHint } : {}),
    ...options.extra,
  });
  return { params, verifier };
}

export async function federatedSignIn(
  gw: TestGateway,
  internet: LoopbackInternet,
  options: { username: string; password: string; idpHint?: string; loginHint?: string; scope?: string; browser?: PeerBrowser; extra?: Record<string, string> },
): Promise<FederatedSignIn> {
  const browser = options.browser ?? createPeerBrowser(internet);
  const { params, verifier } = appAuthorization(options);
  const walk = await browser.followUntil(`${gw.url}/auth?${params}`, (url) => url.startsWith(APP_REDIRECT), {
    username: options.username, password: options.password, throwOnStop: false,
  });
  return { browser, walk, redirect: new URL(walk.location ?? 'http://127.0.0.1/never'), verifier };
}

export async function redeem(gw: TestGateway, signIn: FederatedSignIn) {
  const code = signIn.redirect.searchParams.get('code');
  if (!code) throw new Error(`no code: ${signIn.redirect.href} (last hop ${signIn.walk.last.status} ${signIn.walk.last.body.slice(0, 300)})`);
  const res = await postForm(`${gw.url}/token`, {
    grant_type: 'authorization_code', code, code_verifier: signIn.verifier, redirect_uri: APP_REDIRECT, client_id: 'agent-console',
  });
  return { ...res, idToken: typeof res.body.id_token === 'string' ? decodeJwt(res.body.id_token) : undefined };
}

/** Redeems the code and returns the gateway's tokens with the enterprise session they belong to. */
export async function completed(gateway: TestGateway, signIn: FederatedSignIn) {
  const tokens = await redeem(gateway, signIn);
  if (tokens.status !== 200) throw new Error(`token request failed: ${tokens.status} ${JSON.stringify(tokens.body)}`);
  const introspection = await postForm(`${gateway.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: 'agent-console' });
  const session = await gateway.gateway.sessions.get(String(introspection.body.sid));
  if (!session) throw new Error('no enterprise session behind the access token');
  return { idToken: tokens.idToken!, session };
}

/** The gateway's log entries at warn level with this message. */
export const warnings = (gateway: TestGateway, msg: string) =>
  gateway.logs.map((line) => JSON.parse(line) as Record<string, unknown>).filter((entry) => entry.level === 'warn' && entry.msg === msg);

/** The text of the failure page's alert, entities decoded. */
export function alertText(html: string): string | undefined {
  const match = /<p role="alert">([\s\S]*?)<\/p>/.exec(html);
  return match?.[1]!.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}
