// Introspection (RFC 7662) and revocation (RFC 7009) of the gateway's own JWT access tokens
// (RFC 9068). oidc-provider refuses structured tokens at both endpoints (unsupported_token_type)
// because it does not store them; the gateway does answer for them: it verifies the JWT against
// its own keys (pinned algorithms, issuer, `typ: at+jwt`, exp) and consults the store's
// revocation records, so a revoked JWT is inactive on every replica at once.
//
// This runs as Koa middleware around oidc-provider's endpoints and takes over only when
// oidc-provider answered unsupported_token_type; by then oidc-provider has already parsed the
// request and authenticated the client, so both endpoints keep its client authentication.
// Opaque tokens oidc-provider found active are checked against the person and agent revocations
// too (issue 6: a kill switch covers every token the agent holds, whatever its format).
import type { KoaContextWithOIDC } from 'oidc-provider';

import { StoreUnavailableError } from '../store/index.ts';
import { chainFromAct } from './access-tokens.ts';
import type { AccessTokenClaims, AccessTokenVerifier } from './access-tokens.ts';

export interface StructuredTokenOptions {
  /** Agents disabled in config: their tokens and those they are an actor of introspect inactive. */
  disabledAgents?: ReadonlySet<string>;
  /** Whether an ended session, or a person or agent revocation, covers an opaque token (src/revocation). */
  coversToken?: (token: { sub?: string | undefined; sid?: string | undefined; clientId: string; iat: number }) => Promise<boolean>;
  /** Called after a JWT access token was revoked (RFC 7009), e.g. to publish the event. */
  onRevoked?: (claims: AccessTokenClaims) => Promise<void>;
}

const UNAVAILABLE = { error: 'temporarily_unavailable', error_description: 'the gateway cannot reach its session store; retry shortly' };

export function createStructuredTokenMiddleware(tokens: AccessTokenVerifier, options: StructuredTokenOptions = {}) {
  const disabled = options.disabledAgents ?? new Set<string>();
  async function introspect(ctx: KoaContextWithOIDC, token: string): Promise<void> {
    const claims = await tokens.verify(token);
    const caller = ctx.oidc.client;
    ctx.status = 200;
    ctx.body = { active: false };
    if (!claims || !caller) return;
    // Same rule as oidc-provider's default policy for opaque tokens: a public client may only
    // introspect its own tokens.
    if (caller.clientAuthMethod === 'none' && claims.client_id !== caller.clientId) return;
    if (await tokens.isRevoked(claims)) return;
    // A disabled agent's tokens, and every token it is an actor of, are dead.
    // A malformed actor chain is no valid agent token (fail closed).
    const chain = claims.act === undefined ? [] : chainFromAct(claims.act);
    if (!chain || disabled.has(claims.client_id) || chain.some((actor) => disabled.has(actor))) return;
    ctx.body = {
      active: true,
      iss: claims.iss,
      sub: claims.sub,
      aud: claims.aud,
      client_id: claims.client_id,
      scope: claims.scope,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      sid: claims.sid,
      token_type: claims.cnf?.jkt ? 'DPoP' : 'Bearer',
      cnf: claims.cnf,
      // Agent tokens (token exchange): who acts, how deep, and for whom.
      ...(claims.act !== undefined ? { act: claims.act, delegation_depth: chain.length } : {}),
      ...(claims.roles !== undefined ? { roles: claims.roles } : {}),
      ...(claims.acr !== undefined ? { acr: claims.acr } : {}),
      ...(claims.auth_time !== undefined ? { auth_time: claims.auth_time } : {}),
    };
  }

  async function revoke(ctx: KoaContextWithOIDC, token: string): Promise<void> {
    const claims = await tokens.verify(token);
    const caller = ctx.oidc.client;
    ctx.status = 200;
    ctx.body = '';
    // RFC 7009 §2.2: an invalid or unknown token is not an error.
    if (!claims || !caller) return;
    if (claims.client_id !== caller.clientId) {
      if (caller.clientAuthMethod === 'none') return;
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' };
      return;
    }
    await tokens.revoke(claims);
    await options.onRevoked?.(claims);
  }

  /**
   * An opaque token oidc-provider found active, whose session ended (even if revoking its grant
   * failed half-way) or that a person or agent revocation covers, is not.
   */
  async function checkOpaque(ctx: KoaContextWithOIDC, introspected: { active?: boolean; sub?: unknown; client_id?: unknown; iat?: unknown }, sid: string | undefined): Promise<void> {
    const { sub, client_id: clientId, iat } = introspected;
    if (!options.coversToken || typeof clientId !== 'string' || typeof iat !== 'number') return;
    const token = { sub: typeof sub === 'string' ? sub : undefined, sid, clientId, iat };
    try {
      if (await options.coversToken(token)) ctx.body = { active: false };
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      ctx.status = 503;
      ctx.body = UNAVAILABLE;
    }
  }

  return async function structuredTokens(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
    await next();
    const route = ctx.oidc?.route;
    if (route !== 'introspection' && route !== 'revocation') return;
    // Opaque tokens: oidc-provider reports its own per-client session id as `sid`; the gateway's
    // access tokens mean the enterprise session (as in its JWTs), kept in the token's extra claims.
    const introspected = ctx.body as { active?: boolean; sid?: string } | undefined;
    const extraSid = (ctx.oidc.entities?.AccessToken as { extra?: { sid?: unknown } } | undefined)?.extra?.sid;
    if (route === 'introspection' && introspected?.active && typeof extraSid === 'string') introspected.sid = extraSid;
    if (route === 'introspection' && introspected?.active) {
      await checkOpaque(ctx, introspected, typeof extraSid === 'string' ? extraSid : undefined);
      ctx.set('Cache-Control', 'no-store');
    }
    const body = ctx.body as { error?: string } | undefined;
    if (ctx.status !== 400 || body?.error !== 'unsupported_token_type') return;
    const token = ctx.oidc.params?.token;
    if (typeof token !== 'string') return;
    try {
      if (route === 'introspection') await introspect(ctx, token);
      else await revoke(ctx, token);
    } catch (error) {
      // Fail closed: without the revocation records there is no answer but "try again".
      if (!(error instanceof StoreUnavailableError)) throw error;
      ctx.status = 503;
      ctx.body = UNAVAILABLE;
    }
    ctx.set('Cache-Control', 'no-store');
  };
}
