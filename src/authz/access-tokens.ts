// Verification of the gateway's own JWT access tokens (RFC 9068), shared by introspection,
// revocation and the admin API. Always pins the algorithms of the key ring, the issuer, the
// `typ: at+jwt` header and requires exp/iat/jti/client_id/aud, so an ID token or a foreign JWT is
// never taken for an access token (RFC 9068 §4, RFC 8725 §3.11). Revocation records live in the
// store (src/revocation/records.ts: the token, its session, its person, its agent and every actor
// of its chain): whoever asks sees the same answer on every replica, read per request, no cache.
import type { JWTPayload } from 'jose';

import { createJwsVerifier } from '../keys/index.ts';
import type { KeyRing } from '../keys/index.ts';
import { isRevokedBy, revocationKeys as recordKeys, revokedJtiKey } from '../revocation/index.ts';
import type { RevocableClaims } from '../revocation/index.ts';
import type { Store } from '../store/index.ts';

export { revokedJtiKey };

/**
 * The actors of an `act` claim (RFC 8693 §4.1), newest first; undefined when it is malformed or
 * nested deeper than `maxDepth` (so a hostile nesting stays cheap).
 */
export function chainFromAct(act: unknown, maxDepth = 16): string[] | undefined {
  const chain: string[] = [];
  let node = act;
  while (node !== undefined) {
    const actor = node as { sub?: unknown; act?: unknown } | null;
    if (typeof actor !== 'object' || actor === null || typeof actor.sub !== 'string' || chain.length >= maxDepth) return undefined;
    chain.push(actor.sub);
    node = actor.act;
  }
  return chain;
}

export interface AccessTokenClaims extends JWTPayload {
  jti: string;
  exp: number;
  iat: number;
  client_id: string;
  scope?: string;
  sid?: string;
  cnf?: { jkt?: string };
  /** Agent tokens: RFC 8693 §4.1 actor chain, the roles used, how the person signed in. */
  act?: unknown;
  roles?: string[];
  acr?: string;
  auth_time?: number;
}

/**
 * What revocation looks at. A malformed `act` names no actor here: such a token is refused as
 * malformed wherever chains matter (introspection, the exchange).
 */
function revocable(claims: AccessTokenClaims): RevocableClaims {
  return {
    jti: claims.jti,
    iat: claims.iat,
    client_id: claims.client_id,
    sub: typeof claims.sub === 'string' ? claims.sub : undefined,
    sid: typeof claims.sid === 'string' ? claims.sid : undefined,
    actors: claims.act === undefined ? [] : chainFromAct(claims.act) ?? [],
  };
}

export interface AccessTokenVerifier {
  /** The claims of a valid, unexpired token signed by the gateway; undefined otherwise. */
  verify(token: string, options?: { audience?: string }): Promise<AccessTokenClaims | undefined>;
  /**
   * Whether the token was revoked: itself (RFC 7009), its enterprise session, every session of its
   * person, or its agent or any actor of its chain (kill switch), reading the records in one
   * round trip. Throws StoreUnavailableError when the store cannot answer (callers fail closed).
   */
  isRevoked(claims: AccessTokenClaims): Promise<boolean>;
  /**
   * The same decision from values the caller read itself for `revocationKeys(claims)` (same
   * order, null for a missing key): pure, for callers batching the reads with their own.
   */
  isRevoked(claims: AccessTokenClaims, values: readonly (string | null)[]): boolean;
  /** The store keys whose records decide whether the token is revoked (pure; for batched reads). */
  revocationKeys(claims: AccessTokenClaims): string[];
  /** Records a revocation until the token would have expired. */
  revoke(claims: AccessTokenClaims): Promise<void>;
}

export function createAccessTokenVerifier(options: {
  issuer: string;
  keyRing: KeyRing;
  store: Store;
  /** Seconds since the epoch. */
  now?: () => number;
}): AccessTokenVerifier {
  // node:crypto, keys imported once (src/keys/jws.ts): the exchange verifies one per request.
  const jws = createJwsVerifier(options.keyRing.publicJwks.keys);
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));

  function revocationKeys(claims: AccessTokenClaims): string[] {
    return recordKeys(revocable(claims));
  }

  function isRevoked(claims: AccessTokenClaims): Promise<boolean>;
  function isRevoked(claims: AccessTokenClaims, values: readonly (string | null)[]): boolean;
  function isRevoked(claims: AccessTokenClaims, values?: readonly (string | null)[]): boolean | Promise<boolean> {
    const subject = revocable(claims);
    if (values) return isRevokedBy(subject, values);
    return options.store.getMany(recordKeys(subject)).then((read) => isRevokedBy(subject, read));
  }

  return {
    async verify(token, { audience } = {}) {
      const verified = jws.verify(token);
      if (!verified) return undefined;
      const { header, payload } = verified;
      // RFC 9068 §2.1 / RFC 8725 §3.11: the type says what it is; media type prefix optional.
      const typ = typeof header.typ === 'string' ? header.typ.toLowerCase().replace(/^application\//, '') : '';
      if (typ !== 'at+jwt') return undefined;
      const t = now();
      const { iss, exp, iat, nbf, jti, aud } = payload;
      if (iss !== options.issuer) return undefined;
      if (typeof exp !== 'number' || exp <= t) return undefined;
      if (typeof iat !== 'number' || (nbf !== undefined && (typeof nbf !== 'number' || nbf > t))) return undefined;
      if (typeof jti !== 'string' || typeof payload.client_id !== 'string') return undefined;
      const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined;
      if (!audiences || audiences.length === 0 || (audience !== undefined && !audiences.includes(audience))) return undefined;
      return payload as AccessTokenClaims;
    },
    revocationKeys,
    isRevoked,
    async revoke(claims) {
      // Keep the record a minute past expiry to cover clock skew at resource servers.
      const ttl = Math.max(1, claims.exp - now() + 60);
      await options.store.set(revokedJtiKey(claims.jti), '1', { ttl });
    },
  };
}
