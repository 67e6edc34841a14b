// Strict validation of a private JWK Set (RFC 7517 §5) as the gateway stores it. Every problem is
// collected and reported at once, each prefixed by its JSON path (`keys[1].kid: missing`), the way
// config errors are. Values of key material are never echoed: the file is a secret.
//
// What is refused, and why:
// - symmetric keys (kty "oct") and `alg: "none"`: anyone who can verify could also forge;
// - public-only keys: the gateway signs with every key it loads (newest first) and would only find
//   out at the first token request;
// - key material that does not fit its alg (RFC 7518 §3.1: ES256 ⇒ EC P-256, EdDSA ⇒ OKP Ed25519
//   per RFC 8037 §3.1, RS256 ⇒ RSA of at least 2048 bits per RFC 7518 §3.3);
// - a private part that does not belong to its public part (checked by signing and verifying).

import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';

import { KeyFileError } from './errors.ts';
import { buildPrivateJwk, isKeyAlg, publicJwk, SUPPORTED_KEY_ALGS_TEXT } from './jwk.ts';
import type { KeyAlg, PrivateJwk, PrivateJwks } from './jwk.ts';

type Kty = 'EC' | 'OKP' | 'RSA';

const COMMON_MEMBERS: readonly string[] = ['kty', 'kid', 'alg', 'use', 'iat'];
const KTY_MEMBERS: Readonly<Record<Kty, readonly string[]>> = {
  EC: ['crv', 'x', 'y', 'd'],
  OKP: ['crv', 'x', 'd'],
  // Multi-prime keys (`oth`) are deliberately absent: WebCrypto cannot import them.
  RSA: ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'],
};
const PRIVATE_MEMBERS: readonly string[] = ['d', 'p', 'q', 'dp', 'dq', 'qi'];

interface AlgRequirements {
  kty: Kty;
  crv?: string;
  /** RFC 7518 §6.2.1.2 / RFC 8037 §2: coordinates and private scalars have a fixed length. */
  bytes?: Readonly<Record<string, number>>;
}

const REQUIREMENTS: Readonly<Record<KeyAlg, AlgRequirements>> = {
  ES256: { kty: 'EC', crv: 'P-256', bytes: { x: 32, y: 32, d: 32 } },
  EdDSA: { kty: 'OKP', crv: 'Ed25519', bytes: { x: 32, d: 32 } },
  RS256: { kty: 'RSA' },
};

const MIN_RSA_MODULUS_BITS = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isKty(value: unknown): value is Kty {
  return value === 'EC' || value === 'OKP' || value === 'RSA';
}

/** Quotes a non-secret string for a message, cut short so a pasted blob cannot flood the output. */
function quote(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}…` : value);
}

function modulusBits(n: string): number {
  const bytes = Buffer.from(n, 'base64url');
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i += 1;
  const first = bytes[i];
  if (first === undefined) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(first));
}

/** Proves `d` belongs to the public members by a sign/verify round trip. */
function privateMatchesPublic(jwk: PrivateJwk): 'ok' | 'invalid' | 'mismatch' {
  let privateKey;
  let publicKey;
  try {
    privateKey = createPrivateKey({ key: { ...jwk }, format: 'jwk' });
    publicKey = createPublicKey({ key: { ...publicJwk(jwk) }, format: 'jwk' });
  } catch {
    // The crypto error text is not surfaced: it could quote the offending member.
    return 'invalid';
  }
  const data = Buffer.from('agentgate key check');
  const digest = jwk.kty === 'OKP' ? null : 'sha256';
  try {
    return verify(digest, data, publicKey, sign(digest, data, privateKey)) ? 'ok' : 'mismatch';
  } catch {
    return 'mismatch';
  }
}

function stringMember(value: Record<string, unknown>, name: string): string {
  const member = value[name];
  // Only reached after validation; a failure here is a bug in this file, not bad input.
  if (typeof member !== 'string') throw new Error(`parsePrivateJwks: "${name}" unexpectedly not a string`);
  return member;
}

function buildKey(value: Record<string, unknown>, alg: KeyAlg): PrivateJwk {
  const member = (name: string): string => stringMember(value, name);
  return buildPrivateJwk(alg, member, member('kid'), typeof value.iat === 'number' ? value.iat : undefined);
}

function checkKey(value: unknown, at: string, problems: string[]): PrivateJwk | undefined {
  if (!isRecord(value)) {
    problems.push(`${at}: expected an object`);
    return undefined;
  }
  const before = problems.length;
  const problem = (text: string): void => {
    problems.push(text);
  };

  let kty: Kty | undefined;
  if (value.kty === undefined) problem(`${at}.kty: missing`);
  else if (value.kty === 'oct') problem(`${at}: symmetric keys (kty "oct") are not allowed`);
  else if (isKty(value.kty)) kty = value.kty;
  else if (typeof value.kty === 'string') problem(`${at}.kty: unsupported ${quote(value.kty)} (use EC, OKP or RSA)`);
  else problem(`${at}.kty: expected a string`);

  if (value.kid === undefined) problem(`${at}.kid: missing`);
  else if (typeof value.kid !== 'string' || value.kid === '') problem(`${at}.kid: expected a non-empty string`);

  let alg: KeyAlg | undefined;
  if (value.alg === undefined) problem(`${at}.alg: missing`);
  else if (isKeyAlg(value.alg)) alg = value.alg;
  else if (typeof value.alg === 'string') {
    problem(`${at}.alg: unsupported ${quote(value.alg)} (use ${SUPPORTED_KEY_ALGS_TEXT})`);
  } else problem(`${at}.alg: expected a string`);

  // `use` may be omitted (RFC 7517 §4.2); when present it must say what the key is for.
  if (value.use !== undefined && value.use !== 'sig') problem(`${at}.use: must be "sig"`);

  if (value.iat !== undefined && !(Number.isSafeInteger(value.iat) && Number(value.iat) >= 0)) {
    problem(`${at}.iat: expected whole seconds since the epoch`);
  }

  if (kty !== undefined) {
    const allowed = KTY_MEMBERS[kty];
    for (const name of Object.keys(value)) {
      if (!COMMON_MEMBERS.includes(name) && !allowed.includes(name)) {
        problem(`${at}.${name}: not a member of kty "${kty}" keys`);
      }
    }
    const isPrivate = value.d !== undefined;
    if (!isPrivate) problem(`${at}: not a private key (no "d")`);
    for (const name of allowed) {
      const member = value[name];
      if (member === undefined) {
        // A public key is reported once, above, not once per missing private member.
        if (isPrivate || !PRIVATE_MEMBERS.includes(name)) problem(`${at}.${name}: missing`);
      } else if (name === 'crv') {
        if (typeof member !== 'string') problem(`${at}.crv: expected a string`);
      } else if (typeof member !== 'string' || !BASE64URL.test(member) || member.length % 4 === 1) {
        problem(`${at}.${name}: expected a base64url string`);
      }
    }
  }

  if (kty !== undefined && alg !== undefined && problems.length === before) {
    const want = REQUIREMENTS[alg];
    if (kty !== want.kty) {
      problem(`${at}.kty: "${kty}" does not match alg ${alg} (expected "${want.kty}")`);
    } else if (want.crv !== undefined && value.crv !== want.crv) {
      problem(`${at}.crv: ${quote(String(value.crv))} does not match alg ${alg} (expected "${want.crv}")`);
    } else {
      for (const [name, size] of Object.entries(want.bytes ?? {})) {
        const length = Buffer.from(stringMember(value, name), 'base64url').length;
        if (length !== size) problem(`${at}.${name}: expected ${size} bytes for ${want.crv} (got ${length})`);
      }
      if (kty === 'RSA') {
        const bits = modulusBits(stringMember(value, 'n'));
        if (bits < MIN_RSA_MODULUS_BITS) {
          problem(`${at}.n: RSA modulus is ${bits} bits (${alg} needs at least ${MIN_RSA_MODULUS_BITS})`);
        }
      }
    }
  }

  if (alg === undefined || problems.length > before) return undefined;
  const jwk = buildKey(value, alg);
  const match = privateMatchesPublic(jwk);
  if (match === 'invalid') problem(`${at}: not a valid ${alg} key`);
  else if (match === 'mismatch') problem(`${at}: private key does not match its public key`);
  return match === 'ok' ? jwk : undefined;
}

/**
 * Validates a parsed key file. `source` names where it came from (a path) for the message.
 * Throws `KeyFileError` (`ERR_KEYS_INVALID`) listing every problem; returns a normalized copy
 * holding only the members we know (and `use: "sig"` filled in).
 */
export function parsePrivateJwks(json: unknown, source: string): PrivateJwks {
  const problems: string[] = [];
  const keys: PrivateJwk[] = [];

  if (!isRecord(json)) {
    problems.push('expected a JSON object with a "keys" array');
  } else {
    for (const name of Object.keys(json)) {
      if (name !== 'keys') problems.push(`${name}: unknown member`);
    }
    if (json.keys === undefined) problems.push('keys: missing');
    else if (!Array.isArray(json.keys)) problems.push('keys: expected an array');
    else if (json.keys.length === 0) problems.push('keys: empty');
    else {
      const seen = new Set<string>();
      const duplicates = new Set<string>();
      json.keys.forEach((value: unknown, i) => {
        const key = checkKey(value, `keys[${i}]`, problems);
        if (key !== undefined) keys.push(key);
        // Checked on the raw kid so duplicates are reported even beside other problems: a kid
        // must pick exactly one key, or a verifier could be steered to the wrong one.
        const kid = isRecord(value) ? value.kid : undefined;
        if (typeof kid === 'string' && kid !== '') {
          if (seen.has(kid)) duplicates.add(kid);
          seen.add(kid);
        }
      });
      for (const kid of duplicates) problems.push(`keys: duplicate kid ${quote(kid)}`);
    }
  }

  if (problems.length > 0) {
    throw new KeyFileError(
      'ERR_KEYS_INVALID',
      `invalid key set in ${source}:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      problems,
    );
  }
  return { keys };
}
