// openid-client v6 as a relying party of a test peer, over the loopback internet: what the peer
// self-tests sign in with (and a reference for how the gateway's federation is expected to talk
// to the peers). Also a tiny loopback receiver for redirect_uri / backchannel_logout_uri.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import * as client from 'openid-client';

import { createPeerBrowser } from './browser.ts';
import type { FollowResult, PeerBrowser } from './browser.ts';
import { readForm } from './host.ts';
import type { LoopbackInternet } from './internet.ts';

export interface Receiver {
  /** http://127.0.0.1:PORT */
  url: string;
  /** Every request received: method, path, form body. */
  requests: Array<{ method: string; path: string; form: URLSearchParams }>;
  /** Status answered to POSTs (default 200). */
  status: number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const requests: Receiver['requests'] = [];
  const receiver = { status: 200 };
  const server = createServer((req, res) => {
    readForm(req).then((form) => {
      requests.push({ method: req.method ?? 'GET', path: req.url ?? '/', form });
      res.writeHead(req.method === 'POST' ? receiver.status : 200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end('ok');
    }, () => res.writeHead(400).end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(receiver, {
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      const closed = new Promise((resolve) => server.close(resolve));
      server.closeAllConnections();
      await closed;
    },
  });
}

export async function discover(
  internet: LoopbackInternet,
  issuer: string,
  clientId: string,
  clientSecret: string,
  auth?: client.ClientAuth,
): Promise<client.Configuration> {
  return client.discovery(new URL(issuer), clientId, clientSecret, auth, { [client.customFetch]: internet.fetch });
}

export interface SignInOptions {
  redirectUri: string;
  username: string;
  password: string;
  scope?: string;
  extra?: Record<string, string>;
  browser?: PeerBrowser;
}

export interface SignInResult {
  tokens: client.TokenEndpointResponse & client.TokenEndpointResponseHelpers;
  claims: client.IDToken;
  walk: FollowResult;
  browser: PeerBrowser;
}

/** Authorization code + PKCE through the peer's login form, then the code exchange. */
export async function signIn(internet: LoopbackInternet, config: client.Configuration, options: SignInOptions): Promise<SignInResult> {
  const browser = options.browser ?? createPeerBrowser(internet);
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: options.redirectUri,
    scope: options.scope ?? 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
    ...options.extra,
  });
  const walk = await browser.followUntil(url.href, (location) => location.startsWith(options.redirectUri), {
    username: options.username,
    password: options.password,
  });
  const tokens = await client.authorizationCodeGrant(config, new URL(walk.location!), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
  const claims = tokens.claims();
  if (!claims) throw new Error('no ID token in the token response');
  return { tokens, claims, walk, browser };
}
