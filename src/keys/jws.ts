// Compact JWS (RFC 7515) signing and verification with node:crypto, for the hot paths (the token
// exchange signs one JWT and verifies one per request). jose does the same through WebCrypto,
// whose per-call job queue costs several times the signature itself on Node; here keys are
// imported once as KeyObjects and each operation is one synchronous node:crypto call.
// Verification is strict and fails closed: the algorithm must be one the key ring holds and the
// key's own; the kid must name a known key; `crit` is refused (RFC 7515 §4.1.11: we understand
// no extensions); segments must be canonical base64url; "none" and HMAC never verify.
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';

import type { KeyAlg, PrivateJwk, PublicJwk } from './jwk.ts';

const B64URL = /^[A-Za-z0-9_-]*$/;
const enc = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

function digestFor(alg: KeyAlg): string | null {
  return alg === 'EdDSA' ? null : 'sha256';
}

function signatureOptions(alg: KeyAlg, key: KeyObject) {
  return alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' as const } : key;
}

export interface JwsSigner {
  readonly kid: string;
  readonly alg: KeyAlg;
  /** Signs `payload` with header { alg, kid, ...header }; synchronous, one node:crypto call. */
  sign(payload: Record<string, unknown>, header?: Record<string, unknown>): string;
}

export function createJwsSigner(jwk: PrivateJwk): JwsSigner {
  const { iat: _iat, ...material } = jwk as PrivateJwk & { iat?: number };
  const key = createPrivateKey({ key: material as unknown as JsonWebKey, format: 'jwk' });
  return {
    kid: jwk.kid,
    alg: jwk.alg,
    sign(payload, header = {}) {
      const input = `${enc({ ...header, alg: jwk.alg, kid: jwk.kid })}.${enc(payload)}`;
      const signature = cryptoSign(digestFor(jwk.alg), Buffer.from(input), signatureOptions(jwk.alg, key));
      return `${input}.${signature.toString('base64url')}`;
    },
  };
}

export interface VerifiedJws {
  header: Record<string, unknown>;
  payload: Record<string, unknown>;
}

export interface JwsVerifier {
  /** The header and payload of a token signed by one of the keys; undefined otherwise. */
  verify(token: string): VerifiedJws | undefined;
}

export function createJwsVerifier(keys: readonly PublicJwk[]): JwsVerifier {
  const byKid = new Map<string, { alg: KeyAlg; key: KeyObject }>();
  for (const jwk of keys) {
    byKid.set(jwk.kid, { alg: jwk.alg, key: createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' }) });
  }
  const decode = (segment: string): Record<string, unknown> | undefined => {
    try {
      const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
      return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    verify(token) {
      if (typeof token !== 'string' || token.length > 16_384) return undefined;
      const parts = token.split('.');
      if (parts.length !== 3) return undefined;
      const [h, p, s] = parts as [string, string, string];
      if (!h || !p || !s || !B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s)) return undefined;
      const header = decode(h);
      if (!header || typeof header.kid !== 'string' || typeof header.alg !== 'string' || 'crit' in header) return undefined;
      const entry = byKid.get(header.kid);
      if (!entry || entry.alg !== header.alg) return undefined;
      const signature = Buffer.from(s, 'base64url');
      // Canonical encoding only: a signature that does not re-encode to itself is malleated.
      if (signature.toString('base64url') !== s) return undefined;
      const ok = cryptoVerify(digestFor(entry.alg), Buffer.from(`${h}.${p}`), signatureOptions(entry.alg, entry.key), signature);
      if (!ok) return undefined;
      const payload = decode(p);
      return payload ? { header, payload } : undefined;
    },
  };
}
