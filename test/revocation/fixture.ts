// Shared set-up of the revocation protocol tests (issue 6): two gateway replicas on one Redis
// (same key prefix, signing keys and issuer; each its own process state and Redis connections, so
// anything one learns from the other goes through Redis), agents for the kill switch and
// delegation paths, an admin client, a resource server client for the feed, and small helpers
// speaking RFC 7662, RFC 7009, the admin API and Server-Sent Events. Not a test file itself.
import { expect } from 'vitest';

import type { RevocationEvent } from '../../src/revocation/index.ts';
import { APP, AT, EXCHANGE, post, REDIRECT } from '../exchange/fixture.ts';
import type { HttpResult } from '../exchange/fixture.ts';
import { basic, startGateway } from '../support/gateway.ts';
import type { GatewayOptions, TestGateway } from '../support/gateway.ts';

export { post, signInPerson } from '../exchange/fixture.ts';
export type { HttpResult, SignedInPerson } from '../exchange/fixture.ts';

export const ERP = 'https://erp.example.test';
export const MAIL = 'https://mail.example.test';
export const ADMIN = 'it-admin';
export const RS = 'erp-rs';

export const SECRETS: Record<string, string> = {
  'agent-a': 'agent-a-secret-0123456789abcdefghij',
  'agent-b': 'agent-b-secret-0123456789abcdefghij',
  'agent-c': 'agent-c-secret-0123456789abcdefghij',
  [ADMIN]: 'it-admin-secret-0123456789abcdefghi',
  [RS]: 'erp-rs-secret-0123456789abcdefghijkl',
};

const secretAuth = (id: string) => ({ method: 'client_secret_basic', secret: SECRETS[id] });

/** a delegates to b; c is another agent working for the same people. */
export function revocationConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    resources: [
      { id: ERP, scopes: ['erp:read', 'erp:approve'], tokenTtl: '5m', client: { clientId: RS, auth: secretAuth(RS) } },
      { id: MAIL, scopes: ['mail:read'], tokenTtl: '5m' },
    ],
    roles: { 'finance-reader': { scopes: ['erp:read', 'mail:read'] } },
    roleMappings: [
      { idp: 'dev', group: 'Finance', roles: ['finance-reader'] },
      { idp: 'okta', group: 'Finance', roles: ['finance-reader'] },
    ],
    agents: [
      { clientId: 'agent-a', auth: secretAuth('agent-a'), scopes: ['erp:read', 'mail:read'], audiences: [ERP, MAIL], delegateTo: ['agent-b'], maxTokenTtl: '2m' },
      { clientId: 'agent-b', auth: secretAuth('agent-b'), scopes: ['mail:read'], audiences: [MAIL] },
      { clientId: 'agent-c', auth: secretAuth('agent-c'), scopes: ['erp:read'], audiences: [ERP] },
    ],
    apps: [{ clientId: APP, redirectUris: [REDIRECT], postLogoutRedirectUris: ['http://127.0.0.1/'], audiences: [] }],
    admin: { clients: [{ clientId: ADMIN, auth: secretAuth(ADMIN) }] },
    ...extra,
  };
}

export interface Replicas {
  a: TestGateway;
  b: TestGateway;
  close(): Promise<void>;
}

/** Replica A, and replica B on the same Redis prefix, keys and issuer (A's URL). */
export async function startReplicas(options: { config?: Record<string, unknown>; fetch?: typeof fetch } = {}): Promise<Replicas> {
  const config = options.config ?? revocationConfig();
  const shared: GatewayOptions = options.fetch ? { fetch: options.fetch } : {};
  const a = await startGateway({ ...shared, config });
  const b = await startGateway({
    ...shared, keyRing: a.keyRing, keyPrefix: a.config.store.keyPrefix, config: { ...config, issuer: a.url },
  });
  return { a, b, close: async () => { await Promise.all([a.close(), b.close()]); } };
}

/** client_credentials with client_secret_basic. */
export function clientCredentials(gw: TestGateway, clientId: string, form: Record<string, string> = {}): Promise<HttpResult> {
  return post(`${gw.url}/token`, { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, SECRETS[clientId]!) });
}

async function tokenOf(result: Promise<HttpResult>): Promise<string> {
  const res = await result;
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${JSON.stringify(res.body)}`);
  return String(res.body.access_token);
}

export const adminToken = (gw: TestGateway) => tokenOf(clientCredentials(gw, ADMIN, { scope: 'agentgate:admin' }));
export const feedToken = (gw: TestGateway) => tokenOf(clientCredentials(gw, RS, { scope: 'agentgate:revocations' }));

/** A token exchange by an agent (client_secret_basic); resolves to the agent's access token. */
export function exchange(gw: TestGateway, agent: string, subjectToken: string, scope: string, audience: string): Promise<string> {
  return tokenOf(post(`${gw.url}/token`, {
    grant_type: EXCHANGE, subject_token_type: AT, subject_token: subjectToken, scope, audience,
  }, { authorization: basic(agent, SECRETS[agent]!) }));
}

/** RFC 7662 introspection by the resource server's client. */
export async function introspect(gw: TestGateway, token: string, as = RS): Promise<Record<string, unknown>> {
  const res = await post(`${gw.url}/token/introspection`, { token }, { authorization: basic(as, SECRETS[as]!) });
  expect(res.status).toBe(200);
  return res.body;
}

/**
 * Polls introspection until the token is inactive; resolves to the milliseconds that took from
 * `since` (a Date.now() taken when the revocation call returned).
 */
export async function inactiveAfter(gw: TestGateway, token: string, since: number, limitMs = 3000): Promise<number> {
  for (;;) {
    if ((await introspect(gw, token)).active === false) return Date.now() - since;
    if (Date.now() - since > limitMs) throw new Error(`still active ${limitMs} ms after the revocation`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** An admin API call with a bearer token. */
export async function adminCall(gw: TestGateway, method: string, path: string, token: string): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** RP-initiated logout at a gateway, confirmed in the person's browser. */
export async function rpLogout(gw: TestGateway, person: { idToken: string; browser: { get(url: string): Promise<{ body: string }>; postForm(url: string, form: Record<string, string>): Promise<{ status: number }> } }): Promise<void> {
  const params = new URLSearchParams({ id_token_hint: person.idToken, post_logout_redirect_uri: 'http://127.0.0.1/' });
  const confirm = await person.browser.get(`${gw.url}/session/end?${params}`);
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(confirm.body)?.[1];
  const done = await person.browser.postForm(`${gw.url}/session/end/confirm`, { xsrf: xsrf!, logout: 'yes' });
  expect(done.status).toBe(303);
}

/** An event as the feed sends it (JSON of the gateway's RevocationEvent). */
export type FeedEvent = RevocationEvent;

export interface FeedConnection {
  status: number;
  headers: Headers;
  /** Parsed `revocation` events so far, in order. */
  events: FeedEvent[];
  /** The SSE `id` lines so far. */
  ids: string[];
  /** Comment lines (`: keep-alive`). */
  comments: string[];
  retry: number | undefined;
  /** The raw text received. */
  raw(): string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `GET {issuer}/revocations/feed` and parses the stream as it arrives. */
export async function openFeed(gw: TestGateway, token: string, options: { lastEventId?: string; since?: string } = {}): Promise<FeedConnection> {
  const controller = new AbortController();
  const query = options.since !== undefined ? `?${new URLSearchParams({ since: options.since })}` : '';
  const res = await fetch(`${gw.url}/revocations/feed${query}`, {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream', ...(options.lastEventId ? { 'last-event-id': options.lastEventId } : {}) },
    signal: controller.signal,
  });
  let text = '';
  const connection: FeedConnection = {
    status: res.status, headers: res.headers, events: [], ids: [], comments: [], retry: undefined,
    raw: () => text, ended: Promise.resolve(), close: () => controller.abort(),
  };
  if (!res.body) return connection;
  let buffer = '';
  const decoder = new TextDecoder();
  connection.ended = (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        const piece = decoder.decode(chunk, { stream: true });
        text += piece;
        buffer += piece;
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event: string | undefined;
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) connection.comments.push(line);
            else if (line.startsWith('retry: ')) connection.retry = Number(line.slice(7));
            else if (line.startsWith('id: ')) connection.ids.push(line.slice(4));
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (event === 'revocation' && data) connection.events.push(JSON.parse(data) as FeedEvent);
        }
      }
    } catch (error) {
      if ((error as Error).name !== 'AbortError') throw error;
    }
  })();
  return connection;
}
