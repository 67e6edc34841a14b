// Shared set-up of the token-exchange protocol tests: one gateway config with agents for every
// path (delegation chain a → b → c, DPoP-required, disabled, private_key_jwt), and the small
// HTTP helpers the tests speak RFC 8693, RFC 7662 and RFC 9449 with. Not a test file itself.
import { randomUUID } from 'node:crypto';

import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

import { createBrowser, pkcePair } from '../support/browser.ts';
import type { Browser } from '../support/browser.ts';
import { basic, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

export const ERP = 'https://erp.example.test';
export const MAIL = 'https://mail.example.test';
export const HR = 'https://hr.example.test';
export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const AT = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token';
export const REDIRECT = 'http://127.0.0.1/cb';
export const APP = 'agent-console';

/** Client secrets of the secret-authenticated agents. */
export const SECRETS: Record<string, string> = {
  'agent-a': 'agent-a-secret-0123456789abcdefghij',
  'agent-b': 'agent-b-secret-0123456789abcdefghij',
  'agent-c': 'agent-c-secret-0123456789abcdefghij',
  'agent-d': 'agent-d-secret-0123456789abcdefghij',
  'agent-off': 'agent-off-secret-0123456789abcdefgh',
};

export const KEYED_AGENT = 'agent-k';
const KEYED_KID = 'agent-k-key-1';

export interface ExchangeFixture {
  gw: TestGateway;
  /** agent-k's registered private key (private_key_jwt) and a key nobody registered. */
  agentKey: CryptoKey;
  strangerKey: CryptoKey;
}

export async function startExchangeGateway(): Promise<ExchangeFixture> {
  const pair = await generateKeyPair('ES256');
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KEYED_KID, alg: 'ES256', use: 'sig' };
  const secretAuth = (id: string) => ({ method: 'client_secret_basic', secret: SECRETS[id] });
  const gw = await startGateway({
    config: {
      resources: [
        { id: ERP, scopes: ['erp:read', 'erp:approve'], tokenTtl: '5m' },
        { id: MAIL, scopes: ['mail:read', 'mail:send'], tokenTtl: '5m' },
        { id: HR, scopes: ['hr:read'], tokenTtl: '5m' },
      ],
      roles: {
        'finance-reader': { scopes: ['erp:read', 'mail:read', 'mail:send'] },
        'finance-approver': { scopes: ['erp:approve'] },
        'hr-reader': { scopes: ['hr:read'] },
      },
      roleMappings: [
        { idp: 'dev', group: 'Finance', roles: ['finance-reader'] },
        { idp: 'dev', group: 'Approvers', roles: ['finance-approver'] },
        { idp: 'dev', group: 'HR', roles: ['hr-reader'] },
      ],
      agents: [
        {
          clientId: 'agent-a', auth: secretAuth('agent-a'), scopes: ['erp:read', 'erp:approve', 'mail:read', 'mail:send'],
          audiences: [ERP, MAIL], delegateTo: ['agent-b'], maxTokenTtl: '2m',
        },
        // b keeps chains through it at depth ≤ 2 (a → b may go on to c only if that stays ≤ 2).
        {
          clientId: 'agent-b', auth: secretAuth('agent-b'), scopes: ['mail:read', 'mail:send'], audiences: [MAIL],
          delegateTo: ['agent-c'], maxDelegationDepth: 2,
        },
        { clientId: 'agent-c', auth: secretAuth('agent-c'), scopes: ['mail:read'], audiences: [MAIL] },
        { clientId: 'agent-d', auth: secretAuth('agent-d'), scopes: ['erp:read'], audiences: [ERP], requireDpop: true },
        { clientId: 'agent-off', auth: secretAuth('agent-off'), scopes: ['erp:read'], audiences: [ERP], disabled: true },
        { clientId: KEYED_AGENT, auth: { method: 'private_key_jwt', jwks: { keys: [publicJwk] } }, scopes: ['erp:read'], audiences: [ERP] },
      ],
      apps: [{ clientId: APP, redirectUris: [REDIRECT], postLogoutRedirectUris: ['http://127.0.0.1/'], audiences: [] }],
      stepUp: [{ scopes: ['erp:approve'], acr: 'mfa', maxAge: '5m' }],
    },
  });
  return { gw, agentKey: pair.privateKey, strangerKey: (await generateKeyPair('ES256')).privateKey };
}

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs a form; URLSearchParams keeps repeated parameters. */
export async function post(url: string, form: URLSearchParams | Record<string, string>, headers: Record<string, string> = {}): Promise<HttpResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** A token-exchange request by a secret-authenticated agent (subject_token_type defaults to access_token). */
export function exchangeAs(gw: TestGateway, agent: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<HttpResult> {
  return post(`${gw.url}/token`, { grant_type: EXCHANGE, subject_token_type: AT, ...form }, { authorization: basic(agent, SECRETS[agent]!), ...headers });
}

/** RFC 7662 introspection, the caller authenticating with its secret. */
export function introspect(gw: TestGateway, token: string, as = 'agent-a'): Promise<HttpResult> {
  return post(`${gw.url}/token/introspection`, { token }, { authorization: basic(as, SECRETS[as]!) });
}

export interface SignedInPerson {
  accessToken: string;
  idToken: string;
  /** The enterprise session the sign-in created. */
  sid: string;
  authTime: number;
  /** The browser that signed in (it holds the gateway's session cookies). */
  browser: Browser;
}

/**
 * A person signs in at the development login through the app (code + PKCE) and the app redeems
 * the code: the access token is the subject token. `acr`/`amr` are what the development login
 * records for the sign-in (default "dev" / ["pwd"]).
 */
export async function signInPerson(gw: TestGateway, person: { email: string; groups: string; acr?: string }): Promise<SignedInPerson> {
  const browser = createBrowser();
  const { verifier, challenge } = pkcePair();
  const params = new URLSearchParams({
    client_id: APP, response_type: 'code', redirect_uri: REDIRECT, scope: 'openid email profile',
    code_challenge: challenge, code_challenge_method: 'S256', state: randomUUID(), nonce: randomUUID(),
  });
  let hop = await browser.get(`${gw.url}/auth?${params}`);
  let code: string | null = null;
  for (let i = 0; i < 10 && !code; i += 1) {
    if (!hop.location) throw new Error(`sign-in stopped at status ${hop.status}: ${hop.body.slice(0, 300)}`);
    if (hop.location.startsWith(REDIRECT)) {
      code = new URL(hop.location).searchParams.get('code');
      break;
    }
    const next = await browser.get(hop.location);
    const action = /action="([^"]+)"/.exec(next.body)?.[1];
    hop = next.status === 200 && action
      ? await browser.postForm(new URL(action.replace(/&amp;/g, '&'), hop.location).href, {
        email: person.email, name: 'Test Person', groups: person.groups, ...(person.acr ? { acr: person.acr } : {}),
      })
      : next;
  }
  if (!code) throw new Error('no authorization code');
  const tokens = await post(`${gw.url}/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: APP });
  if (tokens.status !== 200) throw new Error(`code redemption failed: ${JSON.stringify(tokens.body)}`);
  // The app may introspect its own token (public client): that is where it learns the enterprise sid.
  const info = await post(`${gw.url}/token/introspection`, { token: String(tokens.body.access_token), client_id: APP });
  const idToken = String(tokens.body.id_token);
  const authTime = JSON.parse(Buffer.from(idToken.split('.')[1]!, 'base64url').toString()).auth_time as number;
  return { accessToken: String(tokens.body.access_token), idToken, sid: String(info.body.sid), authTime, browser };
}

/** Newest `n` audit stream entries, newest first, as their field maps. */
export async function auditEntries(gw: TestGateway, n = 1): Promise<Record<string, string>[]> {
  return (await gw.store.readStream('audit', n)).map((entry) => entry.fields);
}

export interface DpopKey {
  publicJwk: JWK;
  thumbprint: string;
  proof(overrides?: Record<string, unknown>): Promise<string>;
}

/** A DPoP key pair (RFC 9449) and a proof maker for the gateway's token endpoint. */
export async function dpopKey(gw: TestGateway): Promise<DpopKey> {
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const publicJwk = await exportJWK(publicKey);
  return {
    publicJwk,
    thumbprint: await calculateJwkThumbprint(publicJwk),
    proof: (overrides = {}) => new SignJWT({ htm: 'POST', htu: `${gw.url}/token`, jti: randomUUID(), iat: Math.floor(Date.now() / 1000), ...overrides })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: publicJwk })
      .sign(privateKey),
  };
}

/** agent-k's private_key_jwt client authentication parameters (RFC 7523 §2.2). */
export async function keyedAgentAuth(gw: TestGateway, key: CryptoKey): Promise<Record<string, string>> {
  const assertion = await new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: KEYED_KID })
    .setIssuer(KEYED_AGENT).setSubject(KEYED_AGENT).setAudience(gw.url)
    .setIssuedAt().setExpirationTime('60s')
    .sign(key);
  return { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion };
}

/** A JWT agent-k signs about itself with `key`: an RFC 8693 actor token (type jwt). */
export function selfAssertion(gw: TestGateway, key: CryptoKey, claims: { iss?: string; sub?: string } = {}): Promise<string> {
  return new SignJWT({ jti: randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: KEYED_KID })
    .setIssuer(claims.iss ?? KEYED_AGENT).setSubject(claims.sub ?? KEYED_AGENT).setAudience(gw.url)
    .setIssuedAt().setExpirationTime('60s')
    .sign(key);
}
