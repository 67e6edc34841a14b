// What a subject token IS (RFC 8693 §2.1, issue 5 item 2): route by the token, never by which
// parameters came with it. A token carrying `act` is an agent's token (re-delegation) whatever
// the request says; one without is a person's token issued to an app. Only the gateway's own
// access tokens qualify — JWTs it signed (typ at+jwt, pinned algorithms and issuer) or opaque
// tokens it stored — and only while their enterprise session lives.
import type Provider from 'oidc-provider';

import { chainFromAct } from '../authz/index.ts';
import type { AccessTokenVerifier } from '../authz/index.ts';
import type { EnterpriseSession, SessionService } from '../session/index.ts';

export interface SubjectToken {
  kind: 'user' | 'agent';
  session: EnterpriseSession;
  scopes: string[];
  /** Actors of the subject token, newest first (empty for a person's token). */
  actors: string[];
  /** Seconds since the epoch. */
  expiresAt: number;
  /** The client the subject token was issued to. */
  clientId: string;
}

export class SubjectTokenError extends Error {
  readonly error = 'invalid_grant';
}

export interface SubjectTokenDeps {
  provider: Provider;
  accessTokens: AccessTokenVerifier;
  sessions: SessionService;
  apps: ReadonlySet<string>;
}

const JWT_SHAPE = /^[\w-]+\.[\w-]+\.[\w-]*$/; // an empty signature (alg none) is still a JWT, refused as one

/**
 * Resolves the subject token. `alsoRead` are store keys the caller needs too: they ride in the
 * same round trip as the session (their values come back in `also`, in order).
 */
export async function resolveSubjectToken(
  value: string,
  deps: SubjectTokenDeps,
  alsoRead: readonly string[] = [],
): Promise<{ subject: SubjectToken; also: (string | null)[] }> {
  const fail = (message: string) => new SubjectTokenError(message);
  let sid: string | undefined;
  let sub: string | undefined;
  let partial: Omit<SubjectToken, 'session'>;
  let preloaded: EnterpriseSession | undefined;
  let also: (string | null)[] | undefined;

  if (JWT_SHAPE.test(value)) {
    const claims = await deps.accessTokens.verify(value);
    if (!claims) {
      throw fail('the subject token is not a valid access token of this gateway (expired, altered, from another issuer, or not an access token)');
    }
    sid = typeof claims.sid === 'string' ? claims.sid : undefined;
    // The session and the token's revocation records in one read (one MGET).
    const keys = deps.accessTokens.revocationKeys(claims);
    const { session: live, extras } = await deps.sessions.lookup(sid ?? '', [...keys, ...alsoRead]);
    if (deps.accessTokens.isRevoked(claims, extras.slice(0, keys.length))) throw fail('the subject token has been revoked');
    also = extras.slice(keys.length);
    preloaded = live;
    sub = claims.sub;
    const scopes = (claims.scope ?? '').split(' ').filter(Boolean);
    if (claims.act !== undefined) {
      const actors = chainFromAct(claims.act);
      if (!actors || actors[0] !== claims.client_id) throw fail('the subject token has a malformed actor chain');
      partial = { kind: 'agent', scopes, actors, expiresAt: claims.exp, clientId: claims.client_id };
    } else {
      if (!deps.apps.has(claims.client_id)) throw fail('the subject token was not issued to a person through an app');
      partial = { kind: 'user', scopes, actors: [], expiresAt: claims.exp, clientId: claims.client_id };
    }
  } else {
    const token = await deps.provider.AccessToken.find(value);
    if (!token || !token.isValid) throw fail('the subject token is unknown, expired or revoked');
    if (!token.clientId || !deps.apps.has(token.clientId)) throw fail('the subject token was not issued to a person through an app');
    sid = token.grantId ? await deps.sessions.sidForGrant(token.grantId) : undefined;
    sub = token.accountId;
    partial = {
      kind: 'user', scopes: (token.scope ?? '').split(' ').filter(Boolean), actors: [],
      expiresAt: token.exp ?? 0, clientId: token.clientId,
    };
  }

  if (!sid) throw fail('the subject token is not bound to an enterprise session');
  if (!also) ({ session: preloaded, extras: also } = await deps.sessions.lookup(sid, alsoRead));
  const session = preloaded;
  if (!session) throw fail('the enterprise session of the subject token has ended');
  if (session.accountId !== sub) throw fail('the subject token does not belong to its session');
  return { subject: { ...partial, session }, also };
}
