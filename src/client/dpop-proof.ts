// DPoP proofs an agent sends (RFC 9449 §4.2): to the gateway's token endpoint when it wants a
// sender-constrained token, and to a resource server with every request carrying that token
// (`ath` = base64url SHA-256 of the access token, §4.2). `htu` is the target URI without query
// and fragment (§4.3). Public keys are exported once per key pair.
import { createHash, randomUUID } from 'node:crypto';

import { exportJWK, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

import { algForKey } from './client-auth.ts';
import { epochSeconds } from './http.ts';

/** A DPoP key pair: `generateKeyPair('ES256')` from jose, or WebCrypto's own. */
export interface DpopKeyPair {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
}

export interface DpopProofOptions {
  key: DpopKeyPair;
  /** HTTP method of the request the proof goes with. */
  method: string;
  /** The request's URL; query and fragment are dropped. */
  url: string | URL;
  /** The access token the request carries (sets `ath`); omit for the token endpoint. */
  accessToken?: string;
  /** A server-provided nonce (RFC 9449 §8), when one was asked for. */
  nonce?: string;
  /** Epoch seconds; default now. */
  now?: number;
}

const publicJwks = new WeakMap<CryptoKey, Promise<JWK>>();

function publicJwk(key: CryptoKey): Promise<JWK> {
  let jwk = publicJwks.get(key);
  if (!jwk) {
    jwk = exportJWK(key).then(({ kty, crv, x, y, n, e }) => Object.fromEntries(Object.entries({ kty, crv, x, y, n, e }).filter(([, v]) => v !== undefined)) as JWK);
    publicJwks.set(key, jwk);
  }
  return jwk;
}

/** `htu` of RFC 9449 §4.2: scheme, authority and path of the target, no query or fragment. */
export function htuOf(url: string | URL): string {
  const target = new URL(url);
  target.search = '';
  target.hash = '';
  return target.href;
}

/** `ath` of RFC 9449 §4.2. */
export function athOf(accessToken: string): string {
  return createHash('sha256').update(accessToken).digest('base64url');
}

export async function dpopProof(options: DpopProofOptions): Promise<string> {
  const { key } = options;
  if (!key?.privateKey || !key.publicKey) throw new TypeError('dpopProof: key must be a key pair { privateKey, publicKey }');
  const claims: Record<string, unknown> = {
    htm: options.method.toUpperCase(),
    htu: htuOf(options.url),
    jti: randomUUID(),
    iat: options.now ?? epochSeconds(),
  };
  if (options.accessToken !== undefined) claims.ath = athOf(options.accessToken);
  if (options.nonce !== undefined) claims.nonce = options.nonce;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: algForKey(key.privateKey), typ: 'dpop+jwt', jwk: await publicJwk(key.publicKey) })
    .sign(key.privateKey);
}
