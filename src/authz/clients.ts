// Static client registrations derived from config: `apps` sign people in (authorization code +
// PKCE S256, public unless they have a secret), `agents` are confidential clients that
// authenticate as themselves (client_secret_basic/post or private_key_jwt, RFC 7523 §2.2);
// admin clients and resource servers' clients (`resources[].client`) use client_credentials only.
// One client is the gateway's own (`agentgate-account`, reserved in config): it signs a browser
// into the account pages and the admin console (src/account/sign-in.ts).
import type { ClientMetadata } from 'oidc-provider';

import { ACCOUNT_CLIENT_ID } from '../config/index.ts';
import type { AdminClientConfig, AgentConfig, AppConfig, Config, ResourceClientConfig } from '../config/index.ts';
import { REVOCATIONS_SCOPE, revocationsAudience } from '../revocation/index.ts';

export { REVOCATIONS_SCOPE, revocationsAudience };

/** RFC 8693 token exchange (src/exchange), registered on the token endpoint. */
export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';

export const OIDC_SCOPES = ['openid', 'offline_access', 'profile', 'email', 'groups'] as const;

/** The scope of the admin API (explain, kill switches); only `admin.clients` may hold it. */
export const ADMIN_SCOPE = 'agentgate:admin';

/** The admin API is a resource of its own: admin tokens are JWTs with this audience. */
export const adminAudience = (issuer: string) => `${issuer}/admin`;

export { ACCOUNT_CLIENT_ID };

/** Where the account client's authorization responses go: the gateway's own callback. */
export const accountRedirectUri = (issuer: string) => `${issuer}/account/signed-in`;

/**
 * The gateway's own pages as an OAuth client (RFC 6749 §2.1 public client, PKCE S256 as for every
 * client): `openid` only, its one redirect URI on the gateway itself, no refresh tokens, no logout
 * URIs. Its codes are redeemed in-process by that callback (account-code.ts), never at the token
 * endpoint (findAccount refuses them there), so it yields nothing but a signed-in browser.
 */
export function accountClient(issuer: string): ClientMetadata {
  return {
    client_id: ACCOUNT_CLIENT_ID,
    client_name: 'agentgate account pages',
    token_endpoint_auth_method: 'none',
    redirect_uris: [accountRedirectUri(issuer)],
    post_logout_redirect_uris: [],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    scope: 'openid',
  };
}

export function appClient(app: AppConfig, config: Config): ClientMetadata {
  const resourceScopes = config.resources
    .filter((res) => app.audiences.includes(res.id))
    .flatMap((res) => res.scopes);
  return {
    client_id: app.clientId,
    ...(app.name ? { client_name: app.name } : {}),
    ...(app.clientSecret
      ? { client_secret: app.clientSecret, token_endpoint_auth_method: 'client_secret_basic' }
      : { token_endpoint_auth_method: 'none' }),
    redirect_uris: app.redirectUris,
    post_logout_redirect_uris: app.postLogoutRedirectUris,
    // Token exchange is listed so an app that tries it is told it is no agent (unauthorized_client,
    // RFC 6749 §5.2) by the exchange itself rather than a generic "grant type not allowed".
    grant_types: ['authorization_code', 'refresh_token', TOKEN_EXCHANGE_GRANT],
    response_types: ['code'],
    scope: [...OIDC_SCOPES, ...new Set(resourceScopes)].join(' '),
  };
}

/** A confidential client_credentials client (agents, admin clients, resource servers). */
function machineClient(client: AgentConfig | AdminClientConfig | ResourceClientConfig, scopes: readonly string[], grantTypes: string[]): ClientMetadata {
  const auth = client.auth.method === 'private_key_jwt'
    ? {
      token_endpoint_auth_method: 'private_key_jwt',
      ...(client.auth.jwks ? { jwks: client.auth.jwks } : { jwks_uri: client.auth.jwksUri }),
    }
    : { token_endpoint_auth_method: client.auth.method, client_secret: client.auth.secret };
  return {
    client_id: client.clientId,
    ...(client.name ? { client_name: client.name } : {}),
    ...auth,
    grant_types: grantTypes,
    response_types: [],
    redirect_uris: [],
    // The ceiling is enforced by the resource check (resource-servers.ts); this mirrors it for
    // oidc-provider's own scope filter.
    ...(scopes.length > 0 ? { scope: scopes.join(' ') } : {}),
  } as ClientMetadata;
}

export const agentClient = (agent: AgentConfig) => machineClient(agent, agent.scopes, ['client_credentials', TOKEN_EXCHANGE_GRANT]);

export function staticClients(config: Config): ClientMetadata[] {
  return [
    accountClient(config.issuer),
    ...config.apps.map((app) => appClient(app, config)),
    // A disabled agent still authenticates, so it learns why it is refused (unauthorized_client).
    ...config.agents.map(agentClient),
    ...config.admin.clients.map((client) => machineClient(client, [ADMIN_SCOPE], ['client_credentials'])),
    // A resource server reads the revocation feed (and may introspect, as any confidential client).
    ...config.resources.flatMap((res) => (res.client ? [machineClient(res.client, [REVOCATIONS_SCOPE], ['client_credentials'])] : [])),
  ];
}
