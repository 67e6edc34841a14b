// createApp(config, deps): the composition root of the HTTP application. It wires the
// authorization server, interactions, health and metrics into one express app. It opens no
// sockets and reads no environment: main.ts does that and hands in the store and keys.
import express from 'express';
import type { Express } from 'express';
import type Provider from 'oidc-provider';

import { createAdminRouter } from './admin/index.ts';
import { createAccessTokenVerifier, createAccountStore, createAuthorizationServer, createInteractionRouter, issuerPath } from './authz/index.ts';
import type { Config } from './config/index.ts';
import { createBasicAuthNormalizer, createRouteLabeler, errorHandler, notFound, pageCsp, securityHeaders } from './http/index.ts';
import type { KeyRing } from './keys/index.ts';
import { createPolicy } from './policy/index.ts';
import type { Policy } from './policy/index.ts';
import { createHealthHandlers, requestLogger } from './ops/index.ts';
import type { Logger, Metrics } from './ops/index.ts';
import type { Store } from './store/index.ts';

export interface AppDeps {
  store: Store;
  keyRing: KeyRing;
  logger: Logger;
  metrics: Metrics;
  /** Tells /readyz the process is draining (graceful shutdown). */
  draining?: () => boolean;
}

export interface GatewayApp {
  app: Express;
  provider: Provider;
  policy: Policy;
}

export function createApp(config: Config, deps: AppDeps): GatewayApp {
  const { store, keyRing, logger, metrics } = deps;
  const base = issuerPath(config.issuer);
  const accounts = createAccountStore(store);
  const accessTokens = createAccessTokenVerifier({ issuer: config.issuer, keyRing, store });
  const policy = createPolicy(config);
  const provider = createAuthorizationServer({ config, store, keyRing, accounts, accessTokens, logger, metrics });
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
  app.use(requestLogger(logger));
  app.use(metrics.middleware(createRouteLabeler(base)));
  app.use(securityHeaders);

  app.get('/healthz', health.healthz);
  app.get('/readyz', health.readyz);
  app.get('/metrics', metrics.handler);

  const callback = provider.callback();
  // RFC 8414 §3: the metadata of an issuer with a path lives at
  // /.well-known/oauth-authorization-server{path}; same document as OpenID discovery.
  app.get(`/.well-known/oauth-authorization-server${base}`, (req, res) => {
    req.url = '/.well-known/openid-configuration';
    callback(req, res);
  });
  app.use(`${base}/interaction`, pageCsp, createInteractionRouter({ provider, accounts, config }));
  app.use(`${base}/admin`, createAdminRouter({
    issuer: config.issuer,
    tokens: accessTokens,
    adminClients: config.admin.clients.map((client) => client.clientId),
    policy,
    logger,
  }));
  const clientSecrets = new Map<string, string>();
  for (const agent of config.agents) if (agent.auth.method !== 'private_key_jwt') clientSecrets.set(agent.clientId, agent.auth.secret);
  for (const client of config.apps) if (client.clientSecret) clientSecrets.set(client.clientId, client.clientSecret);
  for (const client of config.admin.clients) if (client.auth.method !== 'private_key_jwt') clientSecrets.set(client.clientId, client.auth.secret);
  // Everything else under the issuer belongs to oidc-provider (it answers unknown paths with
  // an OAuth-shaped 404 itself); notFound catches what lies outside the issuer path.
  app.use(base || '/', createBasicAuthNormalizer(clientSecrets), callback);
  app.use(notFound);
  app.use(errorHandler(logger));
  return { app, provider, policy };
}
