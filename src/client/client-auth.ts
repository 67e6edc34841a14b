// How the SDK authenticates to the gateway's token and introspection endpoints as a client of its
// own: `client_secret_basic` (RFC 6749 §2.3.1; `client_secret_post` on request) or
// `private_key_jwt` (RFC 7523 §2.2, OIDC Core §9) with a fresh assertion per request
// (iss = sub = client id, aud = issuer, unique jti, short exp), so an assertion is never replayed.
import { randomUUID } from 'node:crypto';

import { importJWK, SignJWT } from 'jose';
import type { CryptoKey, JWK } from 'jose';

import { basicAuthorization, epochSeconds } from './http.ts';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const ASSERTION_TTL = 60;

export interface ClientCredentials {
  clientId: string;
  /** `client_secret_basic` (default) or `client_secret_post` with this secret. */
  clientSecret?: string;
  /** `private_key_jwt` with this private key: a CryptoKey, or a private JWK (its `kid` and `alg` are used). */
  privateKey?: CryptoKey | JWK;
  /** JWS algorithm of the assertion; default the JWK's `alg`, else derived from the key (ES256, EdDSA, RS256 …). */
  alg?: string;
  /** `kid` header of the assertion; default the JWK's `kid`. */
  kid?: string;
  /** For secrets: how they are sent (must match the client's registration). Default client_secret_basic. */
  authMethod?: 'client_secret_basic' | 'client_secret_post';
}

export interface ClientAuthentication {
  readonly clientId: string;
  /** Headers and form parameters that authenticate one request to `audience` (the issuer). */
  apply(form: URLSearchParams, headers: Record<string, string>): Promise<void>;
}

/** The JWS alg a private key signs with when none is named (RFC 7518 §3.1, RFC 8037). */
export function algForKey(key: CryptoKey): string {
  const algorithm = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
  switch (algorithm.name) {
    case 'ECDSA':
      return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[algorithm.namedCurve ?? ''] ?? 'ES256';
    case 'Ed25519':
      return 'EdDSA';
    case 'RSA-PSS':
      return `PS${(algorithm.hash?.name ?? 'SHA-256').replace('SHA-', '')}`;
    case 'RSASSA-PKCS1-v1_5':
      return `RS${(algorithm.hash?.name ?? 'SHA-256').replace('SHA-', '')}`;
    default:
      throw new TypeError(`unsupported key algorithm ${algorithm.name}`);
  }
}

function algForJwk(jwk: JWK): string {
  if (jwk.alg) return jwk.alg;
  if (jwk.kty === 'EC') return { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' }[jwk.crv ?? ''] ?? 'ES256';
  if (jwk.kty === 'OKP') return 'EdDSA';
  if (jwk.kty === 'RSA') return 'RS256';
  throw new TypeError(`privateKey: unsupported JWK kty ${String(jwk.kty)}`);
}

const isCryptoKey = (key: unknown): key is CryptoKey =>
  typeof key === 'object' && key !== null && typeof (key as CryptoKey).algorithm === 'object' && typeof (key as CryptoKey).type === 'string';

/**
 * Client authentication for `credentials` toward the authorization server `issuer`. Misuse
 * (no credential, both, a public key) is a TypeError at construction, naming the option.
 */
export function createClientAuthentication(credentials: ClientCredentials, issuer: string, now: () => number = epochSeconds, option = 'client'): ClientAuthentication {
  const { clientId, clientSecret, privateKey } = credentials;
  if (typeof clientId !== 'string' || !clientId) throw new TypeError(`${option}.clientId is required`);
  if ((clientSecret === undefined) === (privateKey === undefined)) {
    throw new TypeError(`${option}: give exactly one of clientSecret and privateKey`);
  }
  if (clientSecret !== undefined) {
    if (typeof clientSecret !== 'string' || !clientSecret) throw new TypeError(`${option}.clientSecret must be a non-empty string`);
    const post = credentials.authMethod === 'client_secret_post';
    return {
      clientId,
      async apply(form, headers) {
        if (post) {
          form.set('client_id', clientId);
          form.set('client_secret', clientSecret);
        } else {
          headers.authorization = basicAuthorization(clientId, clientSecret);
        }
      },
    };
  }
  let alg: string;
  let kid: string | undefined;
  let key: Promise<CryptoKey>;
  if (isCryptoKey(privateKey)) {
    if (privateKey.type !== 'private') throw new TypeError(`${option}.privateKey must be a private key`);
    alg = credentials.alg ?? algForKey(privateKey);
    kid = credentials.kid;
    key = Promise.resolve(privateKey);
  } else {
    const jwk = privateKey as JWK;
    if (typeof jwk !== 'object' || jwk === null || typeof jwk.kty !== 'string') throw new TypeError(`${option}.privateKey must be a CryptoKey or a private JWK`);
    if (jwk.d === undefined) throw new TypeError(`${option}.privateKey must be a private key (the JWK has no "d")`);
    alg = credentials.alg ?? algForJwk(jwk);
    kid = credentials.kid ?? jwk.kid;
    // Imported once; every assertion reuses the key.
    key = importJWK(jwk, alg, { extractable: false }) as Promise<CryptoKey>;
    key.catch(() => undefined);
  }
  return {
    clientId,
    async apply(form) {
      const t = now();
      const assertion = await new SignJWT({ jti: randomUUID() })
        .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience(issuer)
        .setIssuedAt(t)
        .setExpirationTime(t + ASSERTION_TTL)
        .sign(await key);
      form.set('client_id', clientId);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set('client_assertion', assertion);
    },
  };
}
