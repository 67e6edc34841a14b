// The gateway's signing keys as JSON Web Keys (RFC 7517) and how new ones are made. Each key is
// bound to exactly one JWS algorithm (RFC 7518 §3) and named by its RFC 7638 thumbprint, so a
// `kid` is stable, collision-free and recomputable from the public key alone.

import { calculateJwkThumbprint, exportJWK, generateKeyPair } from 'jose';

/**
 * The allow-list, most recommended first. Anything else (HS*, none, PS*, ES384 …) is refused.
 * A tuple, so a zod schema can use it directly (`z.enum(SUPPORTED_KEY_ALGS)`).
 */
export const SUPPORTED_KEY_ALGS = Object.freeze(['ES256', 'EdDSA', 'RS256'] as const);

export type KeyAlg = (typeof SUPPORTED_KEY_ALGS)[number];

export function isKeyAlg(value: unknown): value is KeyAlg {
  return typeof value === 'string' && (SUPPORTED_KEY_ALGS as readonly string[]).includes(value);
}

/** "ES256, EdDSA or RS256", for messages that list the choices. */
export const SUPPORTED_KEY_ALGS_TEXT = `${SUPPORTED_KEY_ALGS.slice(0, -1).join(', ')} or ${SUPPORTED_KEY_ALGS.at(-1)}`;

interface SigningJwkParameters {
  kid: string;
  use: 'sig';
}

export interface EcPublicJwk extends SigningJwkParameters {
  kty: 'EC';
  crv: 'P-256';
  alg: 'ES256';
  x: string;
  y: string;
}

export interface OkpPublicJwk extends SigningJwkParameters {
  kty: 'OKP';
  crv: 'Ed25519';
  alg: 'EdDSA';
  x: string;
}

export interface RsaPublicJwk extends SigningJwkParameters {
  kty: 'RSA';
  alg: 'RS256';
  n: string;
  e: string;
}

export type PublicJwk = EcPublicJwk | OkpPublicJwk | RsaPublicJwk;

/**
 * `iat` is ours, not RFC 7517's: the key's creation time in seconds, kept in the private file to
 * make rotation decisions auditable. It is never published (see `publicJwk`).
 */
interface PrivateParameters {
  iat?: number;
}

export type EcPrivateJwk = EcPublicJwk & PrivateParameters & { d: string };
export type OkpPrivateJwk = OkpPublicJwk & PrivateParameters & { d: string };
export type RsaPrivateJwk = RsaPublicJwk &
  PrivateParameters & { d: string; p: string; q: string; dp: string; dq: string; qi: string };

export type PrivateJwk = EcPrivateJwk | OkpPrivateJwk | RsaPrivateJwk;

/** The key file: newest key first. The first key signs; every key verifies (RFC 7517 §5). */
export interface PrivateJwks {
  keys: PrivateJwk[];
}

export interface PublicJwks {
  keys: PublicJwk[];
}

export interface GenerateSigningKeyOptions {
  now?: () => Date;
}

// 2048 bits is the floor RFC 7518 §3.3 sets and what relying parties universally accept; callers
// who want stronger keys should prefer ES256 or EdDSA, which are also far cheaper to sign with.
const RSA_MODULUS_BITS = 2048;

export async function generateSigningKey(
  alg: KeyAlg = 'ES256',
  opts: GenerateSigningKeyOptions = {},
): Promise<PrivateJwk> {
  if (!isKeyAlg(alg)) {
    throw new TypeError(`generateSigningKey: unsupported alg "${String(alg)}" (use ${SUPPORTED_KEY_ALGS_TEXT})`);
  }
  const now = opts.now ?? (() => new Date());
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    ...(alg === 'RS256' ? { modulusLength: RSA_MODULUS_BITS } : {}),
  });
  const exported = await exportJWK(privateKey);
  // RFC 7638 §3.2: the thumbprint covers only the required public members, so it identifies the
  // key pair regardless of which optional members a file carries.
  const kid = await calculateJwkThumbprint(exported, 'sha256');
  const iat = Math.floor(now().getTime() / 1000);
  const member = (name: string): string => {
    const value = (exported as Record<string, unknown>)[name];
    if (typeof value !== 'string') throw new Error(`generateSigningKey: exported ${alg} key lacks "${name}"`);
    return value;
  };
  return buildPrivateJwk(alg, member, kid, iat);
}

/**
 * Assembles a private JWK of `alg` with exactly the members the key file format allows, taking
 * each member from `member` (which throws when one is missing). Shared by generation and by
 * validation so both produce the same shape.
 */
export function buildPrivateJwk(alg: KeyAlg, member: (name: string) => string, kid: string, iat?: number): PrivateJwk {
  const stamp = iat === undefined ? {} : { iat };
  switch (alg) {
    case 'ES256':
      return { kty: 'EC', crv: 'P-256', kid, alg, use: 'sig', x: member('x'), y: member('y'), d: member('d'), ...stamp };
    case 'EdDSA':
      return { kty: 'OKP', crv: 'Ed25519', kid, alg, use: 'sig', x: member('x'), d: member('d'), ...stamp };
    case 'RS256':
      return {
        kty: 'RSA', kid, alg, use: 'sig',
        n: member('n'), e: member('e'), d: member('d'), p: member('p'), q: member('q'),
        dp: member('dp'), dq: member('dq'), qi: member('qi'),
        ...stamp,
      };
  }
}

/**
 * The public half of a key: members are copied by allow-list (never by deleting private ones), so
 * a member we do not know about can never leak into the published JWKS.
 */
export function publicJwk(jwk: PrivateJwk): PublicJwk {
  const { kid, use } = jwk;
  switch (jwk.kty) {
    case 'EC':
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg: jwk.alg, use };
    case 'OKP':
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid, alg: jwk.alg, use };
    case 'RSA':
      return { kty: jwk.kty, n: jwk.n, e: jwk.e, kid, alg: jwk.alg, use };
  }
}

/** The JWK Set to serve at the jwks_uri (RFC 8414 §2): every key, old ones included, public only. */
export function publicJwks(jwks: PrivateJwks): PublicJwks {
  return { keys: jwks.keys.map(publicJwk) };
}
