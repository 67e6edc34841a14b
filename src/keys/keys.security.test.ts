// Attacks on and mistakes with the key file: keys that would let a verifier forge (oct, none),
// keys that cannot sign, weak or mislabelled keys, and leaks of private members through errors.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  generateSigningKey,
  KeyFileError,
  parsePrivateJwks,
  publicJwk,
  publicJwks,
  readKeyFile,
  writeKeyFile,
} from './index.ts';
import type { PrivateJwk, PrivateJwks } from './index.ts';

const SECRET_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'];

let ec: PrivateJwk;
let ec2: PrivateJwk;
let ed: PrivateJwk;
let ed2: PrivateJwk;
let rsa: PrivateJwk;
let rsa2: PrivateJwk;
beforeAll(async () => {
  [ec, ec2, ed, ed2, rsa, rsa2] = await Promise.all([
    generateSigningKey('ES256'),
    generateSigningKey('ES256'),
    generateSigningKey('EdDSA'),
    generateSigningKey('EdDSA'),
    generateSigningKey('RS256'),
    generateSigningKey('RS256'),
  ]);
});

function secretsIn(json: unknown): string[] {
  const keys = typeof json === 'object' && json !== null && 'keys' in json && Array.isArray(json.keys) ? json.keys : [];
  const secrets: string[] = [];
  for (const key of keys) {
    if (typeof key !== 'object' || key === null) continue;
    for (const [name, value] of Object.entries(key)) {
      if (SECRET_MEMBERS.includes(name) && typeof value === 'string') secrets.push(value);
    }
  }
  return secrets;
}

function expectNoSecrets(error: KeyFileError, secrets: string[]): void {
  const everything = [error.message, ...error.problems, JSON.stringify(error), String(error.stack)].join('\n');
  for (const secret of secrets) {
    expect(secret.length).toBeGreaterThanOrEqual(8);
    expect(everything).not.toContain(secret);
  }
  expect(error.cause).toBeUndefined();
}

/** Parses `keys`, expects exactly `problems`, and checks no private member leaked into the error. */
function expectProblems(keys: unknown[], problems: string[]): void {
  const json = { keys };
  let error: unknown;
  try {
    parsePrivateJwks(json, 'jwks.json');
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(KeyFileError);
  if (!(error instanceof KeyFileError)) return;
  expect(error.code).toBe('ERR_KEYS_INVALID');
  expect(error.problems).toEqual(problems);
  expect(secretsIn(json).length).toBeGreaterThan(0);
  expectNoSecrets(error, secretsIn(json));
}

function nodeJwk(jwk: JsonWebKey): Record<string, unknown> {
  return { ...jwk };
}

describe('keys that would let a verifier forge tokens', () => {
  it('rejects a symmetric (kty oct) HS256 key', () => {
    const hmac = { kty: 'oct', k: randomBytes(32).toString('base64url'), alg: 'HS256', kid: 'hmac' };
    expectProblems(
      [hmac],
      ['keys[0]: symmetric keys (kty "oct") are not allowed', 'keys[0].alg: unsupported "HS256" (use ES256, EdDSA or RS256)'],
    );
  });

  it('rejects a symmetric key even when labelled with an allowed alg', () => {
    const hmac = { kty: 'oct', k: randomBytes(32).toString('base64url'), alg: 'ES256', kid: 'hmac' };
    expectProblems([ec, hmac], ['keys[1]: symmetric keys (kty "oct") are not allowed']);
  });

  it.each(['none', 'None', 'HS256', 'PS256', 'ES384', 'Ed25519'])('rejects alg %j on a valid key', (alg) => {
    expectProblems([{ ...ec, alg }], [`keys[0].alg: unsupported ${JSON.stringify(alg)} (use ES256, EdDSA or RS256)`]);
  });

  it('rejects two keys sharing a kid (a kid must select exactly one key)', () => {
    expectProblems([ec, { ...ec2, kid: ec.kid }], [`keys: duplicate kid "${ec.kid}"`]);
  });
});

describe('keys that cannot sign', () => {
  it.each([
    ['ES256', () => ec],
    ['EdDSA', () => ed],
    ['RS256', () => rsa],
  ])('rejects a public-only %s key, once, not per missing member', (_alg, key) => {
    expectProblems([rsa2, publicJwk(key())], ['keys[1]: not a private key (no "d")']);
  });

  it('rejects a published JWKS fed back as the key file', () => {
    const published = publicJwks({ keys: [ec, ed] });
    const error = (() => {
      try {
        parsePrivateJwks(published, 'jwks.json');
      } catch (caught) {
        return caught;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(KeyFileError);
    expect(error instanceof KeyFileError && error.problems).toEqual([
      'keys[0]: not a private key (no "d")',
      'keys[1]: not a private key (no "d")',
    ]);
  });
});

describe('weak or mislabelled key material', () => {
  it('rejects a 1024-bit RSA key', () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const weak = { ...nodeJwk(privateKey.export({ format: 'jwk' })), kid: 'weak', alg: 'RS256', use: 'sig' };
    expectProblems([weak], ['keys[0].n: RSA modulus is 1024 bits (RS256 needs at least 2048)']);
  });

  it.each([
    ['an EC key as EdDSA', () => ({ ...ec, alg: 'EdDSA' }), 'keys[0].kty: "EC" does not match alg EdDSA (expected "OKP")'],
    ['an Ed25519 key as ES256', () => ({ ...ed, alg: 'ES256' }), 'keys[0].kty: "OKP" does not match alg ES256 (expected "EC")'],
    ['an RSA key as ES256', () => ({ ...rsa, alg: 'ES256' }), 'keys[0].kty: "RSA" does not match alg ES256 (expected "EC")'],
    ['an EC key as RS256', () => ({ ...ec, alg: 'RS256' }), 'keys[0].kty: "EC" does not match alg RS256 (expected "RSA")'],
  ])('rejects %s', (_name, key, problem) => {
    expectProblems([key()], [problem]);
  });

  it('rejects a P-384 key labelled ES256', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const p384 = { ...nodeJwk(privateKey.export({ format: 'jwk' })), kid: 'p384', alg: 'ES256' };
    expectProblems([p384], ['keys[0].crv: "P-384" does not match alg ES256 (expected "P-256")']);
  });

  it('rejects an X25519 (key agreement) key labelled EdDSA', () => {
    const { privateKey } = generateKeyPairSync('x25519');
    const x25519 = { ...nodeJwk(privateKey.export({ format: 'jwk' })), kid: 'x25519', alg: 'EdDSA' };
    expectProblems([x25519], ['keys[0].crv: "X25519" does not match alg EdDSA (expected "Ed25519")']);
  });

  it('rejects a truncated private scalar', () => {
    const d = Buffer.from((ec as { d: string }).d, 'base64url').subarray(1).toString('base64url');
    expectProblems([{ ...ec, d }], ['keys[0].d: expected 32 bytes for P-256 (got 31)']);
  });

  it.each([
    ['ES256', () => ({ ...ec, d: (ec2 as { d: string }).d })],
    ['EdDSA', () => ({ ...ed, d: (ed2 as { d: string }).d })],
    ['EdDSA public half', () => ({ ...ed, x: (ed2 as { x: string }).x })],
    ['RS256', () => ({ ...rsa, n: (rsa2 as { n: string }).n })],
  ])('rejects a %s key whose private and public parts belong to different keys', (_alg, key) => {
    expectProblems([key()], ['keys[0]: private key does not match its public key']);
  });

  it('rejects an EC public point that is not on the curve', () => {
    const x = Buffer.alloc(32, 1).toString('base64url');
    expectProblems([{ ...ec, x }], ['keys[0]: not a valid ES256 key']);
  });

  it('rejects members that do not belong to the key type', () => {
    expectProblems(
      [{ ...ec, k: randomBytes(32).toString('base64url') }, { ...rsa, oth: [] }],
      ['keys[0].k: not a member of kty "EC" keys', 'keys[1].oth: not a member of kty "RSA" keys'],
    );
  });
});

describe('secrecy of the key file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-keys-sec-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('does not echo file contents when the file is not JSON', async () => {
    const secret = (ec as { d: string }).d;
    // The secret left unquoted (behind a letter, so a leading digit or "-" does not parse as a
    // number): V8's SyntaxError then quotes the text around it, which must not reach our message.
    const text = `{"keys":[{"kty":"EC","d": x${secret}}]}`;
    expect(() => JSON.parse(text)).toThrow(secret.slice(0, 8));
    const path = join(dir, 'jwks.json');
    await writeFile(path, text);
    const error = await readKeyFile(path).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(KeyFileError);
    if (!(error instanceof KeyFileError)) return;
    expect(error.message).toBe(`key file ${path} is not valid JSON`);
    expectNoSecrets(error, [secret, secret.slice(0, 8)]);
  });

  it('never writes a key set it would refuse to load', async () => {
    const path = join(dir, 'jwks.json');
    const hmac = { kty: 'oct', k: randomBytes(32).toString('base64url'), alg: 'HS256', kid: 'hmac' };
    const error = await writeKeyFile(path, { keys: [hmac] } as unknown as PrivateJwks).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(error instanceof KeyFileError && error.code).toBe('ERR_KEYS_INVALID');
    expect(await readdir(dir)).toEqual([]);
  });

  it('publishes by allow-list: an unexpected member on a private key never reaches the JWKS', () => {
    const tainted: PrivateJwk = Object.assign({ secret: 'do-not-publish' }, ec);
    const published = JSON.stringify(publicJwks({ keys: [tainted, rsa] }));
    expect(published).not.toContain('do-not-publish');
    for (const secret of secretsIn({ keys: [ec, rsa] })) expect(published).not.toContain(secret);
  });
});
