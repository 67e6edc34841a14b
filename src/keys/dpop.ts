// DPoP proof verification (RFC 9449 §4.3) with node:crypto, shared by the gateway's token
// endpoint (token exchange) and the resource-server SDK (src/client). Pure: no store, no clock
// of its own beyond `now`; the caller keeps the jti replay cache (the proof's jti is returned).
// Checks, in order: compact JWS, `typ: dpop+jwt`, an allowed asymmetric alg matching the
// embedded public `jwk`, signature, `jti`, `iat` within the window, no nonce (not offered),
// `htm`, `htu` (query and fragment ignored, §4.3 item 9), `ath` when an access token is
// presented. Messages match oidc-provider's for the same failures, so a client sees the same
// error whichever path served it.
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { JsonWebKey, KeyObject } from 'node:crypto';

export class DpopProofError extends Error {
  override name = 'DpopProofError';
}

export interface DpopProof {
  /** RFC 7638 thumbprint of the proof's public key (what `cnf.jkt` binds to). */
  thumbprint: string;
  jti: string;
  iat: number;
}

export interface VerifyDpopProofOptions {
  /** The HTTP method of the request the proof accompanies. */
  method: string;
  /** The URL the request was sent to (query and fragment are ignored). */
  url: string;
  /** When the proof accompanies an access token: its `ath` must be the token's SHA-256. */
  accessToken?: string;
  /** Seconds since the epoch. */
  now?: number;
  /** How far `iat` may be from now, in seconds (default 300, as oidc-provider). */
  maxAge?: number;
  /** Accepted `alg` values (default ES256, Ed25519, EdDSA, as the gateway advertises). */
  algorithms?: readonly string[];
}

export const DPOP_ALGORITHMS = ['ES256', 'Ed25519', 'EdDSA'] as const;

interface AlgSpec {
  kty: string;
  crv?: string;
  digest: string | null;
  options?: { dsaEncoding?: 'ieee-p1363'; padding?: number; saltLength?: number };
}

const ALGS: Record<string, AlgSpec> = {
  ES256: { kty: 'EC', crv: 'P-256', digest: 'sha256', options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { kty: 'EC', crv: 'P-384', digest: 'sha384', options: { dsaEncoding: 'ieee-p1363' } },
  Ed25519: { kty: 'OKP', crv: 'Ed25519', digest: null },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', digest: null },
  RS256: { kty: 'RSA', digest: 'sha256' },
  // RSA_PKCS1_PSS_PADDING = 6; salt length = digest length (RFC 7518 §3.5).
  PS256: { kty: 'RSA', digest: 'sha256', options: { padding: 6, saltLength: 32 } },
};

/** RFC 7638 members, in lexicographic order, per key type. */
const THUMBPRINT_MEMBERS: Record<string, readonly string[]> = {
  EC: ['crv', 'kty', 'x', 'y'],
  OKP: ['crv', 'kty', 'x'],
  RSA: ['e', 'kty', 'n'],
};

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const B64URL = /^[A-Za-z0-9_-]+$/;

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of a public EC, OKP or RSA key. */
export function jwkThumbprint(jwk: Record<string, unknown>): string {
  const members = THUMBPRINT_MEMBERS[String(jwk.kty)];
  if (!members) throw new DpopProofError(`unsupported key type "${String(jwk.kty)}"`);
  const canonical: Record<string, unknown> = {};
  for (const member of members) {
    if (typeof jwk[member] !== 'string') throw new DpopProofError(`the key lacks "${member}"`);
    canonical[member] = jwk[member];
  }
  return sha256(JSON.stringify(canonical));
}

function decodeJson(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function importKey(jwk: Record<string, unknown>, spec: AlgSpec): KeyObject {
  if (jwk.kty !== spec.kty || (spec.crv !== undefined && jwk.crv !== spec.crv)) throw new DpopProofError('invalid DPoP key binding');
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) throw new DpopProofError('invalid DPoP key binding');
  try {
    return createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch {
    throw new DpopProofError('invalid DPoP key binding');
  }
}

/** Parses and checks the signature; the binding failures all read "invalid DPoP key binding". */
function verifySignature(proof: string, algorithms: readonly string[]): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const fail = () => new DpopProofError('invalid DPoP key binding');
  if (typeof proof !== 'string' || proof.length > 8192) throw fail();
  const parts = proof.split('.');
  if (parts.length !== 3) throw fail();
  const [h, p, s] = parts as [string, string, string];
  if (!B64URL.test(h) || !B64URL.test(p) || !B64URL.test(s)) throw fail();
  const header = decodeJson(h);
  if (!header || 'crit' in header) throw fail();
  if (header.typ !== 'dpop+jwt') throw fail();
  const alg = typeof header.alg === 'string' ? header.alg : '';
  const spec = ALGS[alg];
  if (!spec || !algorithms.includes(alg)) throw fail();
  const jwk = header.jwk;
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) throw fail();
  const key = importKey(jwk as Record<string, unknown>, spec);
  const signature = Buffer.from(s, 'base64url');
  if (signature.toString('base64url') !== s) throw fail();
  const ok = cryptoVerify(spec.digest, Buffer.from(`${h}.${p}`), spec.options ? { key, ...spec.options } : key, signature);
  if (!ok) throw fail();
  const payload = decodeJson(p);
  if (!payload) throw fail();
  return { header, payload };
}

/** Verifies a DPoP proof for one request; throws DpopProofError saying what is wrong. */
export function verifyDpopProof(proof: string, options: VerifyDpopProofOptions): DpopProof {
  const { header, payload } = verifySignature(proof, options.algorithms ?? DPOP_ALGORITHMS);
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (typeof payload.iat !== 'number' || !payload.iat) throw new DpopProofError('DPoP proof must have a iat number property');
  if (typeof payload.jti !== 'string' || !payload.jti) throw new DpopProofError('DPoP proof must have a jti string property');
  if (payload.nonce !== undefined) throw new DpopProofError('DPoP nonces are not supported');
  if (Math.abs(now - payload.iat) > (options.maxAge ?? 300)) throw new DpopProofError('DPoP proof iat is not recent enough');
  if (payload.htm !== options.method) throw new DpopProofError('DPoP proof htm mismatch');
  const htu = typeof payload.htu === 'string' ? URL.parse(payload.htu) : null;
  const expected = URL.parse(options.url);
  if (!htu || !expected) throw new DpopProofError('DPoP proof htu mismatch');
  htu.hash = '';
  htu.search = '';
  expected.hash = '';
  expected.search = '';
  if (htu.href !== expected.href) throw new DpopProofError('DPoP proof htu mismatch');
  if (options.accessToken !== undefined && payload.ath !== sha256(options.accessToken)) throw new DpopProofError('DPoP proof ath mismatch');
  return { thumbprint: jwkThumbprint(header.jwk as Record<string, unknown>), jti: payload.jti, iat: payload.iat };
}
