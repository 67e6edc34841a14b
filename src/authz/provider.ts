// The downstream face: oidc-provider configured from the gateway config (DESIGN.md "The two
// faces"). Discovery, JWKS, authorization code + PKCE (S256, required for every client),
// refresh tokens (always rotated, so reuse is detectable), client credentials, introspection,
// revocation, RP-initiated logout, and RFC 8707 resource indicators issuing RFC 9068 JWTs.
import { randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';

import type { Config } from '../config/index.ts';
import type { KeyRing } from '../keys/index.ts';
import type { Logger, Metrics } from '../ops/index.ts';
import type { Store } from '../store/index.ts';
import type { AccessTokenVerifier } from './access-tokens.ts';
import type { AccountStore } from './accounts.ts';
import { createAdapterFactory } from './adapter.ts';
import { InvalidRequest } from './errors.ts';
import { ADMIN_SCOPE, OIDC_SCOPES, staticClients } from './clients.ts';
import { renderErrorPage, renderLogoutPage, renderSignedOutPage } from './pages.ts';
import { createResourceIndicators } from './resource-servers.ts';
import { createStructuredTokenMiddleware } from './structured-tokens.ts';

export interface AuthorizationServerDeps {
  config: Config;
  store: Store;
  keyRing: KeyRing;
  accounts: AccountStore;
  accessTokens: AccessTokenVerifier;
  logger: Logger;
  metrics?: Metrics;
}

/** Path of the issuer URL ("" for an issuer at the host root): where the provider is mounted. */
export function issuerPath(issuer: string): string {
  const path = new URL(issuer).pathname;
  return path === '/' ? '' : path.replace(/\/$/, '');
}

export function createAuthorizationServer(deps: AuthorizationServerDeps): Provider {
  const { config, store, keyRing, accounts, logger } = deps;
  const base = issuerPath(config.issuer);
  const resourceIndicators = createResourceIndicators(config, keyRing);
  const resourceScopes = [...new Set(config.resources.flatMap((res) => res.scopes))];
  const agentsById = new Map(config.agents.map((agent) => [agent.clientId, agent]));
  const clientCredentialsTtl = (_ctx: KoaContextWithOIDC, token: { resourceServer?: { accessTokenTTL?: number } }) =>
    token.resourceServer?.accessTokenTTL ?? config.tokens.clientCredentialsTtl;

  const configuration: Configuration = {
    adapter: createAdapterFactory(store),
    clients: staticClients(config),
    jwks: keyRing.jwks as Configuration['jwks'],
    cookies: {
      // Development without configured keys: random per process (sessions die on restart).
      keys: config.cookies?.keys ?? [randomBytes(32).toString('base64url')],
    },
    pkce: { required: () => true },
    responseTypes: ['code'],
    scopes: [...OIDC_SCOPES, ...resourceScopes, ...(config.admin.clients.length > 0 ? [ADMIN_SCOPE] : [])],
    // acr/amr/auth_time ride on the openid scope so every ID token carries how and when the
    // person signed in (DESIGN.md core flow step 2); oidc-provider drops acr unless acrValues
    // lists the values the gateway can assert.
    acrValues: config.devLogin.enabled ? ['dev'] : [],
    claims: {
      acr: null,
      sid: null,
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
    },
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
    clientDefaults: {
      id_token_signed_response_alg: keyRing.signingAlg,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    enabledJWA: {
      idTokenSigningAlgValues: [...keyRing.algs],
      // Asymmetric only: private_key_jwt client assertions, never HMAC over a shared secret.
      clientAuthSigningAlgValues: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
    },
    conformIdTokenClaims: true,
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client, token) =>
          !(client.clientAuthMethod === 'none' && token.clientId !== ctx.oidc.client?.clientId),
      },
      revocation: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => {
          if (token.clientId === client.clientId) return true;
          if (client.clientAuthMethod === 'none') return false;
          throw new InvalidRequest('client is not authorized to revoke the presented token');
        },
      },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.type = 'html';
          ctx.body = renderLogoutPage(form);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.type = 'html';
          ctx.body = renderSignedOutPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx) => resourceIndicators.defaultResource(ctx),
        getResourceServerInfo: async (ctx, resource, client) =>
          resourceIndicators.getResourceServerInfo(ctx, resource, client),
        useGrantedResource: async () => true,
      },
    },
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? config.tokens.accessTokenTtl,
      AuthorizationCode: config.tokens.authorizationCodeTtl,
      ClientCredentials: (ctx, token) => {
        const agent = token.clientId ? agentsById.get(token.clientId) : undefined;
        const ttl = clientCredentialsTtl(ctx, token);
        return Math.floor(agent ? Math.min(ttl, agent.maxTokenTtl) : ttl);
      },
      IdToken: config.tokens.idTokenTtl,
      RefreshToken: config.tokens.refreshTokenTtl,
      Interaction: 600,
      Session: config.session.ttl,
      Grant: config.session.ttl,
    },
    findAccount: async (_ctx, sub) => {
      const claims = await accounts.find(sub);
      if (!claims) return undefined;
      return { accountId: sub, claims: async () => ({ ...claims }) };
    },
    interactions: {
      url: (_ctx, interaction) => `${base}/interaction/${interaction.uid}`,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = renderErrorPage(out);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  provider.use(createStructuredTokenMiddleware(deps.accessTokens));

  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    deps.metrics?.tokensIssued.inc({ grant_type: String(ctx.oidc.params?.grant_type ?? 'unknown') });
  });
  provider.on('server_error', (_ctx: KoaContextWithOIDC, error: Error) => {
    logger.error({ err: { name: error.name, message: error.message } }, 'authorization server error');
  });
  return provider;
}
