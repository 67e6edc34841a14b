// createApp(config, deps): the composition root of the HTTP application. It wires the
// authorization server, federation, sessions, policy, health and metrics into one express app.
// It opens no sockets and reads no environment: main.ts does that and hands in the store, keys
// and (for tests) the fetch the upstream face uses.
import { randomBytes } from 'node:crypto';

import type { IncomingMessage, ServerResponse } from 'node:http';

import express from 'express';
import type { Express, NextFunction, Request, RequestHandler, Response } from 'express';
import type Provider from 'oidc-provider';

import { createAccountRouter, createPageSignIn } from './account/index.ts';
import { createAdminConsole, createAdminRouter, createSignInRecorder } from './admin/index.ts';
import {
  createAccessTokenVerifier, createAccountCodeRedeemer, createAuthorizationServer, createClientAuthenticator, createInteractionRouter,
  createOidcAdapter, createTokenEndpoint, issuerPath, staticClients,
} from './authz/index.ts';
import { DEMO_IDP_PATH } from './config/index.ts';
import type { Config } from './config/index.ts';
import { createConsentService } from './consent/index.ts';
import { createDemoIdp, createDemoPages } from './demo/index.ts';
import { createAuditLog, createTokenExchange, TOKEN_EXCHANGE } from './exchange/index.ts';
import { createFederation, createFederationRouter } from './federation/index.ts';
import type { Federation } from './federation/index.ts';
import { logoutReturnKey } from './federation/routes.ts';
import { createBasicAuthNormalizer, createRouteLabeler, errorHandler, notFound, pageCsp, pageCspFor, securityHeaders, toOAuthBody } from './http/index.ts';
import type { KeyRing } from './keys/index.ts';
import { createAuditTrail, createHealthHandlers, requestLogger } from './ops/index.ts';
import type { Logger, Metrics } from './ops/index.ts';
import { createPolicy } from './policy/index.ts';
import type { Policy } from './policy/index.ts';
import { createRevocationFeed, createRevocationService, longestTokenLifetime } from './revocation/index.ts';
import type { RevocationFeed, RevocationService } from './revocation/index.ts';
import { createCookieSigner, createSessionService } from './session/index.ts';
import type { SessionService } from './session/index.ts';
import type { Store } from './store/index.ts';

export interface AppDeps {
  store: Store;
  keyRing: KeyRing;
  logger: Logger;
  metrics: Metrics;
  /** What the upstream face (IdPs, Graph, Directory) fetches with; tests route it to loopback peers. */
  fetch?: typeof fetch;
  /** Tells /readyz the process is draining (graceful shutdown). */
  draining?: () => boolean;
}

export interface GatewayApp {
  app: Express;
  /**
   * The request listener to serve: the express app, except that POST {issuer}/token goes to
   * the token endpoint's front through the same middleware without express's router (the token
   * endpoint is the hot path; express's routing costs more per request than an exchange's work).
   */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  provider: Provider;
  policy: Policy;
  sessions: SessionService;
  federation: Federation;
  /** Revocation records and events; `close()` drops this replica's channel subscription. */
  revocations: RevocationService;
  /** The revocation feed; `close()` ends its open streams (graceful shutdown). */
  revocationFeed: RevocationFeed;
}

export function createApp(config: Config, deps: AppDeps): GatewayApp {
  const { store, keyRing, logger, metrics } = deps;
  const base = issuerPath(config.issuer);
  const adapter = createOidcAdapter(store);
  const grants = adapter('Grant');
  const revocations = createRevocationService({ store, longestTokenLifetime: longestTokenLifetime(config), logger });
  const sessions = createSessionService({
    store,
    ttl: config.session.ttl,
    idleTtl: config.session.idleTtl,
    revocationTtl: revocations.recordTtl,
    // Everything issued under the session goes with it (DESIGN.md core flow step 6), and every
    // replica and resource server hears of it (one `session` event, whoever ended it).
    onEnded: async (session, grantIds, reason) => {
      await revocations.sessionEnded({ sid: session.sid, sub: session.accountId }, reason);
      for (const grantId of grantIds) {
        await grants.revokeByGrantId?.(grantId);
        await grants.destroy(grantId);
      }
    },
  });
  // Development without configured keys: random per process (sessions die on restart).
  const cookieKeys = config.cookies?.keys ?? [randomBytes(32).toString('base64url')];
  const cookies = createCookieSigner(cookieKeys);
  const accessTokens = createAccessTokenVerifier({ issuer: config.issuer, keyRing, store });
  const policy = createPolicy(config);
  const federation = createFederation({ config, store, sessions, policy, cookies, logger, metrics, fetch: deps.fetch ?? fetch });
  const provider = createAuthorizationServer({
    config, keyRing, sessions, cookies, cookieKeys, adapter, accessTokens, logger, metrics, revocations,
    onLogout: async (session, continueTo) => {
      const connector = federation.connectors.get(session.upstream.idp);
      if (!connector) return undefined;
      const state = randomBytes(16).toString('base64url');
      try {
        const url = await connector.endSessionUrl({
          ...(session.upstream.idToken ? { idToken: session.upstream.idToken } : {}),
          upstream: session.upstream,
          postLogoutRedirectUri: `${config.issuer}/federation/oidc/${connector.id}/logged-out`,
          state,
        });
        if (!url) return undefined;
        await store.set(logoutReturnKey(state), continueTo, { ttl: 600 });
        return url.href;
      } catch (error) {
        logger.warn({ idp: connector.id, reason: (error as Error).message }, 'upstream logout skipped: the IdP could not be reached');
        return undefined;
      }
    },
  });
  // The token endpoint's front authenticates clients and serves RFC 8693 itself (the hot path);
  // every other grant goes on to oidc-provider (src/authz/token-endpoint.ts).
  const clients = createClientAuthenticator({
    issuer: config.issuer,
    clients: staticClients(config),
    unique: (iss, jti, expiresAt) => provider.ReplayDetection.unique(iss, jti, expiresAt),
    fetch: deps.fetch ?? fetch,
  });
  const consents = createConsentService({ store, issuer: config.issuer });
  const tokenExchange = createTokenExchange({
    config, provider, policy, sessions, accessTokens, keyRing, consents,
    audit: createAuditLog(store, logger),
    keysFor: clients.keysFor,
  });
  // Registered with oidc-provider too, so discovery advertises it and clients may list it; the
  // front answers every token-exchange request before oidc-provider would see one.
  provider.registerGrantType(TOKEN_EXCHANGE, () => {
    throw new Error('token exchange requests are served by the token endpoint front (src/authz/token-endpoint.ts)');
  }, [...tokenExchange.parameters], [...tokenExchange.allowedDuplicates]);
  const health = createHealthHandlers({
    checks: {
      store: () => store.ping(),
      keys: async () => {
        if (keyRing.jwks.keys.length === 0) throw new Error('no signing key');
      },
    },
    timeoutMs: 1000,
    draining: () => deps.draining?.() ?? false,
    logger,
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  const logRequests = requestLogger(logger);
  const measure = metrics.middleware(createRouteLabeler(base));
  app.use(logRequests);
  app.use(measure);
  app.use(securityHeaders);

  app.get('/healthz', health.healthz);
  app.get('/readyz', health.readyz);
  app.get('/metrics', metrics.handler);

  const callback = provider.callback();
  const tokenEndpoint = createTokenEndpoint({
    issuer: config.issuer, trustProxy: config.trustProxy, provider, clients, fallback: callback,
    grants: new Map([[TOKEN_EXCHANGE, tokenExchange]]), logger, metrics,
  });
  const tokenPath = `${base}/token`;
  // RFC 8414 §3: the metadata of an issuer with a path lives at
  // /.well-known/oauth-authorization-server{path}; same document as OpenID discovery.
  app.get(`/.well-known/oauth-authorization-server${base}`, (req, res) => {
    req.url = '/.well-known/openid-configuration';
    callback(req, res);
  });
  const signIns = createSignInRecorder(store);
  // Where a sign-in form's redirects may lead (see pageCspFor): the IdPs and the apps.
  const signInCsp = pageCspFor([
    ...config.identityProviders.flatMap((idp) => (idp.type === 'oidc' ? ['issuer' in idp ? idp.issuer : idp.authority] : idp.metadata.url ? [idp.metadata.url] : [])),
    ...config.apps.flatMap((client) => [...client.redirectUris, ...client.postLogoutRedirectUris]),
  ], () => [...federation.connectors.values()].flatMap((connector) => connector.browserEndpoints()));
  app.use(`${base}/interaction`, signInCsp, createInteractionRouter({
    provider, config, federation, sessions, policy, cookies, logger, onSignedIn: (idp) => signIns.record(idp),
  }));
  // The account pages and the admin console sign a browser in through the gateway's own client.
  const pageSignIn = createPageSignIn({ config, sessions, cookies, redeem: createAccountCodeRedeemer(provider, config.issuer), logger });
  app.use(`${base}/account`, pageCsp, createAccountRouter({
    config, sessions, cookies, cookieKeys, consents, revocations, audit: createAuditTrail(store, logger), logger, signIn: pageSignIn,
  }));
  app.use(`${base}/federation`, signInCsp, createFederationRouter({ federation, logger, store, basePath: base }));
  // The console's pages (a person with an admin role); the rest of /admin is the bearer API.
  app.use(`${base}/admin`, pageCsp, createAdminConsole({
    config, store, sessions, revocations, federation, policy, cookies, cookieKeys, signIns, logger, signIn: pageSignIn,
    audit: createAuditTrail(store, logger),
  }));
  app.use(`${base}/admin`, createAdminRouter({
    issuer: config.issuer,
    tokens: accessTokens,
    adminClients: config.admin.clients.map((client) => client.clientId),
    policy,
    logger,
    sessions,
    revocations,
    audit: createAuditTrail(store, logger),
    agents: new Map(config.agents.map((agent) => [agent.clientId, { disabled: agent.disabled }])),
  }));
  // Not through oidc-provider: resource servers follow revocations here (issue 6).
  const revocationFeed = createRevocationFeed({
    issuer: config.issuer,
    revocations,
    tokens: accessTokens,
    clients: config.resources.flatMap((res) => (res.client ? [res.client.clientId] : [])),
    logger,
  });
  app.use(`${base}/revocations`, revocationFeed.router);
  // Development only (config refuses it in production): the demo IdP on this origin, federated
  // over HTTP through the OIDC connector like any other IdP.
  if (config.demoIdp.enabled) {
    app.use(`${base}${DEMO_IDP_PATH}`, signInCsp, createDemoIdp(config).router);
    app.use(`${base}/demo`, pageCsp, createDemoPages(config));
  }
  const clientSecrets = new Map<string, string>();
  for (const agent of config.agents) if (agent.auth.method !== 'private_key_jwt') clientSecrets.set(agent.clientId, agent.auth.secret);
  for (const client of config.apps) if (client.clientSecret) clientSecrets.set(client.clientId, client.clientSecret);
  for (const client of config.admin.clients) if (client.auth.method !== 'private_key_jwt') clientSecrets.set(client.clientId, client.auth.secret);
  for (const { client } of config.resources) if (client && client.auth.method !== 'private_key_jwt') clientSecrets.set(client.clientId, client.auth.secret);
  // Everything else under the issuer belongs to oidc-provider (it answers unknown paths with
  // an OAuth-shaped 404 itself); notFound catches what lies outside the issuer path.
  const normalizeBasicAuth = createBasicAuthNormalizer(clientSecrets);
  app.post(tokenPath, normalizeBasicAuth, (req, res) => tokenEndpoint(req, res));
  app.use(base || '/', normalizeBasicAuth, callback);
  app.use(notFound);
  app.use(errorHandler(logger));

  const tokenChain: RequestHandler[] = [logRequests, measure, securityHeaders, normalizeBasicAuth];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method !== 'POST' || (req.url !== tokenPath && !req.url?.startsWith(`${tokenPath}?`))) {
      app(req, res);
      return;
    }
    // What express would have set, for the request log and the route label.
    const request = Object.assign(req, { originalUrl: req.url }) as unknown as Request;
    const response = res as unknown as Response;
    let step = 0;
    const fail = (error: unknown) => {
      const { status, body } = toOAuthBody(error);
      logger.error({ reqId: request.id, err: { name: (error as Error)?.name, message: (error as Error)?.message } }, 'token endpoint middleware failed');
      if (res.headersSent) return;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
      res.end(JSON.stringify(body));
    };
    const next: NextFunction = (error?: unknown) => {
      if (error) return fail(error);
      const middleware = tokenChain[step++];
      try {
        if (middleware) middleware(request, response, next);
        else tokenEndpoint(req, res);
      } catch (thrown) {
        fail(thrown);
      }
    };
    next();
  };
  return { app, handler, provider, policy, sessions, federation, revocations, revocationFeed };
}
