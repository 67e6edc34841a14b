// Shared set-up of the SDK tests: a resource server built with agentgate/client on a loopback
// port in front of the real gateway (test/exchange/fixture.ts: agents a → b → c, DPoP agent d,
// private_key_jwt agent k, step-up), a fetch that counts and can cut the SDK's calls to the
// gateway, and forgeries signed with the gateway's own key. Not a test file itself.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import express from 'express';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import type { CryptoKey, JWK, JWTPayload } from 'jose';

import { requireAgentToken } from '../../src/client/index.ts';
import type { AgentTokenMiddleware, FetchLike, RequireAgentTokenOptions } from '../../src/client/index.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { APP, ERP, HR, KEYED_AGENT, MAIL, REDIRECT, SECRETS } from '../exchange/fixture.ts';

export interface ClientGateway {
  gw: TestGateway;
  /** agent-k's private key (private_key_jwt), extractable so tests can pass it as a JWK too. */
  agentKey: CryptoKey;
  agentJwk: JWK;
}

export interface ClientGatewayOptions {
  /** `resources[].client` of the ERP and mail resources (the revocation feed's clients). */
  erpClient?: Record<string, unknown>;
  mailClient?: Record<string, unknown>;
  /** Top-level config merged over the rest (e.g. `admin`). */
  extra?: Record<string, unknown>;
  /**
   * Start a second replica of this gateway: same issuer, signing keys, agent key and Redis key
   * prefix, its own port (so its URL differs from the issuer; tests route to it explicitly).
   */
  replicaOf?: ClientGateway;
}

/**
 * The gateway of the SDK tests: the agents, roles and step-up rule of test/exchange/fixture.ts
 * (a → b delegation, DPoP-required d, private_key_jwt k), plus the resource servers' clients.
 */
export async function startClientGateway(options: ClientGatewayOptions = {}): Promise<ClientGateway> {
  const primary = options.replicaOf;
  const agentKey = primary?.agentKey ?? (await generateKeyPair('ES256', { extractable: true })).privateKey;
  const agentJwk = primary?.agentJwk ?? { ...(await exportJWK(agentKey)), kid: 'agent-k-key-1', alg: 'ES256' };
  const { d: _d, ...publicMembers } = agentJwk;
  const publicJwk = { ...publicMembers, use: 'sig' };
  const secretAuth = (id: string) => ({ method: 'client_secret_basic', secret: SECRETS[id] });
  const gw = await startGateway({
    ...(primary ? { keyRing: primary.gw.keyRing, keyPrefix: primary.gw.config.store.keyPrefix } : {}),
    config: {
      ...(primary ? { issuer: primary.gw.url } : {}),
      resources: [
        { id: ERP, scopes: ['erp:read', 'erp:approve'], tokenTtl: '5m', ...(options.erpClient ? { client: options.erpClient } : {}) },
        { id: MAIL, scopes: ['mail:read', 'mail:send'], tokenTtl: '5m', ...(options.mailClient ? { client: options.mailClient } : {}) },
        { id: HR, scopes: ['hr:read'], tokenTtl: '5m' },
      ],
      roles: {
        'finance-reader': { scopes: ['erp:read', 'mail:read', 'mail:send'] },
        'finance-approver': { scopes: ['erp:approve'] },
      },
      roleMappings: [
        { idp: 'dev', group: 'Finance', roles: ['finance-reader'] },
        { idp: 'dev', group: 'Approvers', roles: ['finance-approver'] },
      ],
      agents: [
        { clientId: 'agent-a', auth: secretAuth('agent-a'), scopes: ['erp:read', 'erp:approve', 'mail:read'], audiences: [ERP, MAIL], delegateTo: ['agent-b'], maxTokenTtl: '2m' },
        { clientId: 'agent-b', auth: secretAuth('agent-b'), scopes: ['mail:read'], audiences: [MAIL] },
        { clientId: 'agent-d', auth: secretAuth('agent-d'), scopes: ['erp:read'], audiences: [ERP], requireDpop: true },
        { clientId: KEYED_AGENT, auth: { method: 'private_key_jwt', jwks: { keys: [publicJwk] } }, scopes: ['erp:read'], audiences: [ERP] },
      ],
      apps: [{ clientId: APP, redirectUris: [REDIRECT], postLogoutRedirectUris: ['http://127.0.0.1/'], audiences: [] }],
      stepUp: [{ scopes: ['erp:approve'], acr: 'mfa', maxAge: '5m' }],
      ...options.extra,
    },
  });
  return { gw, agentKey, agentJwk };
}

export interface TestResourceServer {
  url: string;
  auth: AgentTokenMiddleware;
  /** What the SDK logged (warn and info), in order. */
  logs: string[];
  close(): Promise<void>;
}

/**
 * An express API protected by requireAgentToken: `GET /whoami` answers `req.agentToken`,
 * `GET /approve` needs erp:approve on top, `POST /whoami` exists for htm checks.
 */
export async function startResourceServer(options: RequireAgentTokenOptions, configure?: (app: express.Express) => void): Promise<TestResourceServer> {
  const logs: string[] = [];
  const auth = requireAgentToken({ logger: { warn: (m) => logs.push(`warn: ${m}`), info: (m) => logs.push(`info: ${m}`) }, ...options });
  const app = express();
  configure?.(app);
  app.get('/whoami', auth, (req, res) => { res.json(req.agentToken); });
  app.post('/whoami', auth, (req, res) => { res.json(req.agentToken); });
  app.get('/approve', auth.scopes('erp:approve'), (req, res) => { res.json({ approvedBy: req.agentToken?.person }); });
  const server: Server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    auth,
    logs,
    async close() {
      await auth.close();
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export interface CountingFetch {
  fetch: FetchLike;
  /** Requests per path (e.g. "/token"), for every request that reached the gateway. */
  count(path: string): number;
  /** Cuts the revocation feed (open streams and new connections) until restored. */
  cutFeed(): void;
  restoreFeed(): void;
  /** Makes the introspection endpoint unreachable until restored. */
  cutIntrospection(): void;
  restoreIntrospection(): void;
}

/** A fetch that forwards to the real gateway, counting by path, with switches to cut parts of it. */
export function countingFetch(): CountingFetch {
  const counts = new Map<string, number>();
  const streams = new Set<AbortController>();
  let feedCut = false;
  let introspectionCut = false;
  const fetchImpl: FetchLike = async (input, init = {}) => {
    const path = new URL(String(input)).pathname;
    if (feedCut && path.endsWith('/revocations') || feedCut && path.endsWith('/revocations/feed')) throw new TypeError('fetch failed (feed cut by the test)');
    if (introspectionCut && path.endsWith('/token/introspection')) throw new TypeError('fetch failed (introspection cut by the test)');
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (!path.endsWith('/revocations/feed')) return fetch(input, init);
    const controller = new AbortController();
    streams.add(controller);
    const signals = init.signal ? [init.signal, controller.signal] : [controller.signal];
    return fetch(input, { ...init, signal: AbortSignal.any(signals) });
  };
  return {
    fetch: fetchImpl,
    count: (path) => counts.get(path) ?? 0,
    cutFeed() {
      feedCut = true;
      for (const controller of streams) controller.abort(new Error('feed cut by the test'));
      streams.clear();
    },
    restoreFeed() { feedCut = false; },
    cutIntrospection() { introspectionCut = true; },
    restoreIntrospection() { introspectionCut = false; },
  };
}

/** A JWT signed with the gateway's own signing key: what only a forger holding the key could make. */
export async function signWithGatewayKey(gw: TestGateway, payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = gw.keyRing.signingKey;
  const key = await importJWK(jwk, jwk.alg);
  return new SignJWT(payload).setProtectedHeader({ alg: jwk.alg, typ: 'at+jwt', kid: jwk.kid, ...header }).sign(key);
}

export interface CallResult {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

export async function call(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<CallResult> {
  const res = await fetch(url, { method, headers });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** Polls `probe` every 50 ms until it returns true or `ms` pass; resolves with the time it took. */
export async function within(ms: number, probe: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - start;
    if (Date.now() - start > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
