// Verification of the gateway's own JWT access tokens (RFC 9068), shared by introspection,
// revocation and the admin API. Always pins the algorithms of the key ring, the issuer, the
// `typ: at+jwt` header and requires exp/iat/jti/client_id/aud, so an ID token or a foreign JWT is
// never taken for an access token (RFC 9068 §4, RFC 8725 §3.11). Revocation records live in the
// store: whoever asks sees the same answer on every replica.
import { createLocalJWKSet, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';

import type { KeyRing } from '../keys/index.ts';
import { revokedSidKey } from '../session/index.ts';
import type { Store } from '../store/index.ts';

export const revokedJtiKey = (jti: string) => `revoked:jti:${jti}`;

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
  const keys = createLocalJWKSet(options.keyRing.publicJwks);
  const algorithms = [...options.keyRing.algs];
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));

  return {
    async verify(token, { audience } = {}) {
      try {
        const { payload } = await jwtVerify<AccessTokenClaims>(token, keys, {
          issuer: options.issuer,
          ...(audience ? { audience } : {}),
          algorithms,
          typ: 'at+jwt',
          requiredClaims: ['exp', 'iat', 'jti', 'client_id', 'aud'],
          currentDate: new Date(now() * 1000),
        });
        return typeof payload.client_id === 'string' && typeof payload.jti === 'string' ? payload : undefined;
      } catch {
        return undefined;
      }
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
