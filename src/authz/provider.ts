// The downstream face: oidc-provider configured from the gateway config (DESIGN.md "The two
// faces"). Discovery, JWKS, authorization code + PKCE (S256, required for every client),
// refresh tokens (always rotated, so reuse is detectable), client credentials, introspection,
// revocation, RP-initiated logout, and RFC 8707 resource indicators issuing RFC 9068 JWTs.
import Provider, { interactionPolicy } from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';

import type { Config } from '../config/index.ts';
import type { KeyRing } from '../keys/index.ts';
import type { Logger, Metrics } from '../ops/index.ts';
import { REVOCATIONS_SCOPE } from '../revocation/index.ts';
import type { RevocationService } from '../revocation/index.ts';
import type { CookieSigner, EnterpriseSession, SessionService } from '../session/index.ts';
import { StoreUnavailableError } from '../store/index.ts';
import { SESSION_COOKIE } from '../session/index.ts';
import type { AccessTokenVerifier } from './access-tokens.ts';
import { InvalidRequest, TemporarilyUnavailable, UnauthorizedClient } from './errors.ts';
import { ACCOUNT_CLIENT_ID, ADMIN_SCOPE, OIDC_SCOPES, staticClients } from './clients.ts';
import { renderErrorPage, renderLogoutPage, renderSignedOutPage } from '../pages/index.ts';
import { createResourceIndicators } from './resource-servers.ts';
import { createStructuredTokenMiddleware } from './structured-tokens.ts';

export interface AuthorizationServerDeps {
  config: Config;
  keyRing: KeyRing;
  sessions: SessionService;
  cookies: CookieSigner;
  /** Keys for oidc-provider's own cookies (the same keys as the gateway's). */
  cookieKeys: readonly string[];
  adapter: Configuration['adapter'];
  accessTokens: AccessTokenVerifier;
  /**
   * Called when RP-initiated logout is confirmed: ends the enterprise session and may send the
   * browser on to the IdP's end_session endpoint (returns that URL).
   */
  onLogout?: (session: EnterpriseSession, continueTo: string) => Promise<string | undefined>;
  /** Runtime kill switches and person revocations; RFC 7009 revocations are published through it. */
  revocations?: RevocationService;
  logger: Logger;
  metrics?: Metrics;
}

/** Path of the issuer URL ("" for an issuer at the host root): where the provider is mounted. */
export function issuerPath(issuer: string): string {
  const path = new URL(issuer).pathname;
  return path === '/' ? '' : path.replace(/\/$/, '');
}

/** Claims of the person, as the ID token and userinfo carry them (scopes filter them). */
function accountClaims(session: EnterpriseSession) {
  const { identity } = session;
  return {
    sub: session.accountId,
    ...(identity.email ? { email: identity.email, email_verified: identity.emailVerified ?? false, preferred_username: identity.email } : {}),
    ...(identity.name ? { name: identity.name } : {}),
    idp: identity.idp,
    roles: session.roles,
    groups: identity.groups.map((g) => g.name ?? g.id),
  };
}

/**
 * oidc-provider's default prompts, plus one login check: its own browser session (`_session`)
 * outlives the enterprise session it was made for when that session ends without the browser
 * signing out (admin kill switch, upstream logout, expiry). findAccount then finds no account for
 * it, and the person must sign in anew through the IdP (OIDC Core §3.1.2.3), never be carried
 * silently into a session that no longer exists.
 */
function signInPolicy(): interactionPolicy.Prompt[] {
  const { Check } = interactionPolicy;
  const policy = interactionPolicy.base();
  policy.get('login')!.checks.add(new Check(
    'enterprise_session_ended',
    'the gateway session has ended; the End-User must sign in again',
    'login_required',
    (ctx) => (ctx.oidc.session?.accountId && !ctx.oidc.account ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT),
  ), 0);
  return policy;
}

export function createAuthorizationServer(deps: AuthorizationServerDeps): Provider {
  const { config, keyRing, sessions, cookies, logger } = deps;
  const base = issuerPath(config.issuer);
  const resourceIndicators = createResourceIndicators(config, keyRing);
  const resourceScopes = [...new Set(config.resources.flatMap((res) => res.scopes))];
  const agentsById = new Map(config.agents.map((agent) => [agent.clientId, agent]));
  const clientCredentialsTtl = (_ctx: KoaContextWithOIDC, token: { resourceServer?: { accessTokenTTL?: number } }) =>
    token.resourceServer?.accessTokenTTL ?? config.tokens.clientCredentialsTtl;

  const configuration: Configuration = {
    adapter: deps.adapter,
    clients: staticClients(config),
    jwks: keyRing.jwks as Configuration['jwks'],
    cookies: { keys: [...deps.cookieKeys] },
    pkce: { required: () => true },
    responseTypes: ['code'],
    // oidc-provider drops authorization parameters it does not know; the login interaction
    // picks the IdP from `idp_hint` (README "Signing people in").
    extraParams: ['idp_hint'],
    scopes: [
      ...OIDC_SCOPES, ...resourceScopes,
      ...(config.admin.clients.length > 0 ? [ADMIN_SCOPE] : []),
      ...(config.resources.some((res) => res.client) ? [REVOCATIONS_SCOPE] : []),
    ],
    // acr/amr/auth_time ride on the openid scope so every ID token carries how and when the
    // person signed in (DESIGN.md core flow step 2); oidc-provider drops acr unless acrValues
    // lists the values the gateway can assert.
    acrValues: [...new Set([...(config.devLogin.enabled ? ['dev'] : []), 'pwd', 'mfa', ...config.stepUp.flatMap((rule) => rule.acr ?? [])])],
    claims: {
      acr: null,
      sid: null,
      openid: ['sub', 'acr', 'amr', 'auth_time', 'idp', 'roles'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
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
    // The ID token carries the person's claims (email, name, idp, roles, groups) directly.
    conformIdTokenClaims: false,
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
      // RFC 9449 proofs: validated for every grant, the token exchange binds agent tokens to them.
      dPoP: { enabled: true },
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
        // Last guard for a disabled agent asking without a resource (no resource check ran).
        if (agent?.disabled) throw new UnauthorizedClient(`agent "${agent.clientId}" is disabled`);
        const ttl = clientCredentialsTtl(ctx, token);
        return Math.floor(agent ? Math.min(ttl, agent.maxTokenTtl) : ttl);
      },
      IdToken: config.tokens.idTokenTtl,
      RefreshToken: config.tokens.refreshTokenTtl,
      Interaction: 600,
      Session: config.session.ttl,
      Grant: config.session.ttl,
    },
    // An account exists only inside a live enterprise session: in the browser (the session
    // cookie) or for a token (the grant it was issued under). No session, no account — so an
    // ended session forces a new sign-in and its codes and refresh tokens stop working.
    findAccount: async (ctx, sub, token) => {
      // The account client's codes are redeemed in-process by the account pages' callback
      // (account-code.ts); at the token endpoint they yield no account, hence no token.
      if ((token as { clientId?: string } | undefined)?.clientId === ACCOUNT_CLIENT_ID) return undefined;
      const grantId = (token as { grantId?: string } | undefined)?.grantId;
      const sid = grantId ? await sessions.sidForGrant(grantId) : cookies.read(ctx.req.headers.cookie, SESSION_COOKIE);
      const session = sid ? await sessions.get(sid) : undefined;
      if (!session || session.accountId !== sub) return undefined;
      return { accountId: sub, claims: async () => accountClaims(session) };
    },
    loadExistingGrant: async (ctx) => {
      const sid = cookies.read(ctx.req.headers.cookie, SESSION_COOKIE);
      const clientId = ctx.oidc.client?.clientId;
      const grantId = sid && clientId ? await sessions.grantFor(sid, clientId) : undefined;
      return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
    },
    extraTokenClaims: async (_ctx, token) => {
      // Client credentials for an agent disabled at runtime (kill switch): refused, whatever the
      // resource or format (this runs for every token oidc-provider issues to a client).
      if (token.kind === 'ClientCredentials' && token.clientId && agentsById.has(token.clientId) && deps.revocations) {
        let off: boolean;
        try {
          off = await deps.revocations.isAgentDisabled(token.clientId);
        } catch (error) {
          if (error instanceof StoreUnavailableError) throw new TemporarilyUnavailable();
          throw error;
        }
        if (off) throw new UnauthorizedClient(`agent "${token.clientId}" is disabled`);
      }
      const grantId = (token as { grantId?: string }).grantId;
      const sid = grantId ? await sessions.sidForGrant(grantId) : undefined;
      return sid ? { sid } : undefined;
    },
    interactions: {
      policy: signInPolicy(),
      url: (_ctx, interaction) => `${base}/interaction/${interaction.uid}`,
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      // The request id the request log carries (src/ops/logger.ts), for the person to quote.
      const correlationId = (ctx.req as { id?: unknown }).id;
      ctx.body = renderErrorPage(out, typeof correlationId === 'string' ? correlationId : undefined);
    },
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = config.trustProxy;
  const { revocations } = deps;
  provider.use(createStructuredTokenMiddleware(deps.accessTokens, {
    disabledAgents: new Set(config.agents.filter((agent) => agent.disabled).map((agent) => agent.clientId)),
    ...(revocations ? {
      coversToken: (token) => revocations.coversToken(token),
      onRevoked: async (claims) => {
        await revocations.tokenRevoked({ jti: claims.jti, exp: claims.exp, sub: claims.sub, clientId: claims.client_id }, 'revocation');
      },
    } : {}),
  }));
  provider.use(async (ctx, next) => {
    await next();
    // RP-initiated logout confirmed: end the enterprise session too (and maybe the IdP's).
    if (ctx.oidc?.route !== 'end_session_confirm' || ctx.status !== 303 || !ctx.oidc.params?.logout) return;
    const sid = cookies.read(ctx.req.headers.cookie, SESSION_COOKIE);
    const session = sid ? await sessions.end(sid, 'logout') : undefined;
    ctx.append('Set-Cookie', cookies.clear(SESSION_COOKIE, { path: base || '/', secure: new URL(config.issuer).protocol === 'https:' }));
    const next303 = ctx.response.get('Location');
    const upstream = session && deps.onLogout ? await deps.onLogout(session, next303) : undefined;
    if (upstream) ctx.redirect(upstream);
  });

  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    deps.metrics?.tokensIssued.inc({ grant_type: String(ctx.oidc.params?.grant_type ?? 'unknown') });
  });
  provider.on('server_error', (_ctx: KoaContextWithOIDC, error: Error) => {
    logger.error({ err: { name: error.name, message: error.message } }, 'authorization server error');
  });
  return provider;
}
