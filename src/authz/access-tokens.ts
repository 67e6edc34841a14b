// Verification of the gateway's own JWT access tokens (RFC 9068), shared by introspection,
// revocation and the admin API. Always pins the algorithms of the key ring, the issuer, the
// `typ: at+jwt` header and requires exp/iat/jti/client_id/aud, so an ID token or a foreign JWT is
// never taken for an access token (RFC 9068 §4, RFC 8725 §3.11). Revocation records live in the
// store: whoever asks sees the same answer on every replica.
import type { JWTPayload } from 'jose';

import { createJwsVerifier } from '../keys/index.ts';
import type { KeyRing } from '../keys/index.ts';
import { revokedSidKey } from '../session/index.ts';
import type { Store } from '../store/index.ts';

export const revokedJtiKey = (jti: string) => `revoked:jti:${jti}`;

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

export interface AccessTokenVerifier {
  /** The claims of a valid, unexpired token signed by the gateway; undefined otherwise. */
  verify(token: string, options?: { audience?: string }): Promise<AccessTokenClaims | undefined>;
  /**
   * Whether the token itself, or the enterprise session it came from, was revoked. Throws
   * StoreUnavailableError when the store cannot answer (callers fail closed).
   */
  isRevoked(claims: AccessTokenClaims): Promise<boolean>;
  /** The store keys whose presence means the token is revoked (for callers batching reads). */
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
    revocationKeys(claims) {
      return [revokedJtiKey(claims.jti), ...(typeof claims.sid === 'string' ? [revokedSidKey(claims.sid)] : [])];
    },
    async isRevoked(claims) {
      const [jti, sid] = await Promise.all([
        options.store.get(revokedJtiKey(claims.jti)),
        typeof claims.sid === 'string' ? options.store.get(revokedSidKey(claims.sid)) : null,
      ]);
      return jti !== null || sid !== null;
    },
    async revoke(claims) {
      // Keep the record a minute past expiry to cover clock skew at resource servers.
      const ttl = Math.max(1, claims.exp - now() + 60);
      await options.store.set(revokedJtiKey(claims.jti), '1', { ttl });
    },
  };
}
