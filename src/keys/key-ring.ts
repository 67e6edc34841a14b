// The loaded key ring: what the authorization server signs with and what it publishes. The first
// key of the set is the newest and signs; every key verifies, so tokens signed before a rotation
// stay valid until they expire (RFC 7517 §5: a JWK Set may hold several keys, told apart by kid).

import { KeyFileError } from './errors.ts';
import { publicJwks } from './jwk.ts';
import type { KeyAlg, PrivateJwk, PrivateJwks, PublicJwks } from './jwk.ts';

export interface KeyRing {
  /** The newest key: the one to sign with. */
  readonly signingKey: PrivateJwk;
  readonly signingAlg: KeyAlg;
  /** Distinct algs in the ring, newest key's first: what verifiers must accept. */
  readonly algs: readonly KeyAlg[];
  /**
   * Private keys for oidc-provider's `jwks` option, newest first. oidc-provider picks the first
   * key matching an alg, so order matters; our `iat` is dropped since it is not an RFC 7517 member.
   */
  readonly jwks: PrivateJwks;
  /** What the jwks_uri serves: every key, public members only. */
  readonly publicJwks: PublicJwks;
}

export function createKeyRing(jwks: PrivateJwks): KeyRing {
  const [signingKey] = jwks.keys;
  if (signingKey === undefined) {
    throw new KeyFileError('ERR_KEYS_INVALID', 'key set is empty: the gateway needs a key to sign with', [
      'keys: empty',
    ]);
  }
  const keys = jwks.keys.map(({ iat: _iat, ...key }) => key);
  return Object.freeze({
    signingKey,
    signingAlg: signingKey.alg,
    algs: Object.freeze([...new Set(jwks.keys.map((key) => key.alg))]),
    jwks: { keys },
    publicJwks: publicJwks(jwks),
  });
}
