import { mkdtemp, readdir, readFile, rm, stat, chmod, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { calculateJwkThumbprint, compactVerify, CompactSign, importJWK } from 'jose';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import {
  createKeyRing,
  generateSigningKey,
  KeyFileError,
  keysGenerate,
  keysRotate,
  parsePrivateJwks,
  publicJwk,
  publicJwks,
  readKeyFile,
  rotateKeyFile,
  SUPPORTED_KEY_ALGS,
  writeKeyFile,
} from './index.ts';
import type { CliIo, KeyAlg, PrivateJwk, PrivateJwks } from './index.ts';

const NOW = new Date('2025-01-02T03:04:05Z');
const NOW_SECONDS = 1735787045;
const now = (): Date => NOW;

const PUBLIC_MEMBERS: Record<PrivateJwk['kty'], string[]> = {
  EC: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
  OKP: ['alg', 'crv', 'kid', 'kty', 'use', 'x'],
  RSA: ['alg', 'e', 'kid', 'kty', 'n', 'use'],
};

// RSA generation is the slow part of this file: one key, shared by every test that needs it.
let rsaKey: PrivateJwk;
beforeAll(async () => {
  rsaKey = await generateSigningKey('RS256', { now });
});

async function keyFor(alg: KeyAlg): Promise<PrivateJwk> {
  return alg === 'RS256' ? rsaKey : generateSigningKey(alg, { now });
}

function captureIo(): CliIo & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (line) => out.push(line), stderr: (line) => err.push(line) };
}

function thrown(fn: () => unknown): KeyFileError {
  try {
    fn();
  } catch (error) {
    if (error instanceof KeyFileError) return error;
    throw error;
  }
  throw new Error('expected a KeyFileError');
}

async function rejected(promise: Promise<unknown>): Promise<KeyFileError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KeyFileError) return error;
    throw error;
  }
  throw new Error('expected a KeyFileError');
}

async function fileMode(path: string): Promise<number> {
  return (await stat(path)).mode & 0o777;
}

describe('generateSigningKey', () => {
  it('supports exactly ES256, EdDSA and RS256', () => {
    expect(SUPPORTED_KEY_ALGS).toEqual(['ES256', 'EdDSA', 'RS256']);
  });

  it.each(['ES256', 'EdDSA', 'RS256'] as const)('%s: signs, and the public JWK verifies', async (alg) => {
    const key = await keyFor(alg);
    expect(key.alg).toBe(alg);
    expect(key.use).toBe('sig');
    expect(key.iat).toBe(NOW_SECONDS);

    const payload = new TextEncoder().encode('hello');
    const jws = await new CompactSign(payload)
      .setProtectedHeader({ alg, kid: key.kid })
      .sign(await importJWK(key, alg));
    const { payload: verified, protectedHeader } = await compactVerify(jws, await importJWK(publicJwk(key), alg));
    expect(new TextDecoder().decode(verified)).toBe('hello');
    expect(protectedHeader).toEqual({ alg, kid: key.kid });

    // A different key of the same alg must not verify it.
    const other = await generateSigningKey(alg);
    await expect(compactVerify(jws, await importJWK(publicJwk(other), alg))).rejects.toThrow(
      'signature verification failed',
    );
  });

  it.each(['ES256', 'EdDSA', 'RS256'] as const)('%s: kid is the RFC 7638 SHA-256 thumbprint', async (alg) => {
    const key = await keyFor(alg);
    expect(key.kid).toBe(await calculateJwkThumbprint(publicJwk(key), 'sha256'));
    expect(key.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('uses the expected key types and sizes', async () => {
    const ec = await generateSigningKey('ES256');
    const ed = await generateSigningKey('EdDSA');
    expect({ kty: ec.kty, crv: ec.kty === 'EC' ? ec.crv : undefined }).toEqual({ kty: 'EC', crv: 'P-256' });
    expect({ kty: ed.kty, crv: ed.kty === 'OKP' ? ed.crv : undefined }).toEqual({ kty: 'OKP', crv: 'Ed25519' });
    expect(rsaKey.kty === 'RSA' && Buffer.from(rsaKey.n, 'base64url').length * 8).toBe(2048);
  });

  it('defaults to ES256 and the real clock', async () => {
    const before = Math.floor(Date.now() / 1000);
    const key = await generateSigningKey();
    expect(key.alg).toBe('ES256');
    expect(key.iat).toBeGreaterThanOrEqual(before);
    expect(key.iat).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
  });

  it('rejects an unsupported alg from an untyped caller', async () => {
    await expect(generateSigningKey('HS256' as KeyAlg)).rejects.toThrow(
      new TypeError('generateSigningKey: unsupported alg "HS256" (use ES256, EdDSA or RS256)'),
    );
  });
});

describe('publicJwks', () => {
  it('keeps only public members, for every key type', async () => {
    const jwks: PrivateJwks = { keys: [await keyFor('ES256'), await keyFor('EdDSA'), rsaKey] };
    const published = publicJwks(jwks);
    expect(published.keys.map((key) => Object.keys(key).sort())).toEqual([
      PUBLIC_MEMBERS.EC,
      PUBLIC_MEMBERS.OKP,
      PUBLIC_MEMBERS.RSA,
    ]);
    const text = JSON.stringify(published);
    for (const member of ['"d"', '"p"', '"q"', '"dp"', '"dq"', '"qi"', '"iat"']) expect(text).not.toContain(member);
    expect(published.keys.map((key) => key.kid)).toEqual(jwks.keys.map((key) => key.kid));
  });
});

describe('parsePrivateJwks', () => {
  it('accepts generated keys and fills in a missing use', async () => {
    const ec = await keyFor('ES256');
    const { use: _use, ...withoutUse } = ec;
    expect(parsePrivateJwks({ keys: [withoutUse, rsaKey] }, 'test')).toEqual({ keys: [ec, rsaKey] });
  });

  it('reports every problem at once, each with its path', async () => {
    const ec = await keyFor('ES256');
    const ed = await keyFor('EdDSA');
    const error = thrown(() =>
      parsePrivateJwks(
        {
          extra: true,
          keys: [
            { ...ec, alg: 'HS256', use: 'enc' },
            { ...ed, kid: undefined, iat: -1 },
            'nope',
            { ...ec, kty: 'EC', y: undefined, d: 42, x5c: ['MII'] },
            { ...ed, kty: undefined },
            { ...ed, kid: ec.kid },
          ],
        },
        '/etc/agentgate/jwks.json',
      ),
    );
    expect(error.code).toBe('ERR_KEYS_INVALID');
    const problems = [
      'extra: unknown member',
      'keys[0].alg: unsupported "HS256" (use ES256, EdDSA or RS256)',
      'keys[0].use: must be "sig"',
      'keys[1].kid: missing',
      'keys[1].iat: expected whole seconds since the epoch',
      'keys[2]: expected an object',
      'keys[3].x5c: not a member of kty "EC" keys',
      'keys[3].y: missing',
      'keys[3].d: expected a base64url string',
      'keys[4].kty: missing',
      `keys: duplicate kid "${ec.kid}"`,
    ];
    expect(error.problems).toEqual(problems);
    expect(error.message).toBe(
      `invalid key set in /etc/agentgate/jwks.json:\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
  });

  it.each([
    [null, 'expected a JSON object with a "keys" array'],
    [[], 'expected a JSON object with a "keys" array'],
    [{}, 'keys: missing'],
    [{ keys: {} }, 'keys: expected an array'],
    [{ keys: [] }, 'keys: empty'],
  ])('rejects the set shape %j', (json, problem) => {
    const error = thrown(() => parsePrivateJwks(json, 'f.json'));
    expect(error.code).toBe('ERR_KEYS_INVALID');
    expect(error.problems).toEqual([problem]);
    expect(error.message).toBe(`invalid key set in f.json:\n  ${problem}`);
  });
});

describe('createKeyRing', () => {
  it('signs with the newest key and publishes every key', async () => {
    const newest = await keyFor('EdDSA');
    const older = await keyFor('ES256');
    const oldest = await keyFor('ES256');
    const ring = createKeyRing({ keys: [newest, older, oldest] });
    expect(ring.signingKey).toBe(newest);
    expect(ring.signingAlg).toBe('EdDSA');
    expect(ring.algs).toEqual(['EdDSA', 'ES256']);
    expect(ring.publicJwks).toEqual(publicJwks({ keys: [newest, older, oldest] }));
    // oidc-provider gets RFC 7517 members only, order preserved.
    expect(ring.jwks.keys.map((key) => key.kid)).toEqual([newest.kid, older.kid, oldest.kid]);
    expect(ring.jwks.keys.every((key) => !('iat' in key))).toBe(true);
    expect(ring.jwks.keys[0]).toEqual({ ...newest, iat: undefined });
  });

  it('refuses an empty set', () => {
    const error = thrown(() => createKeyRing({ keys: [] }));
    expect(error.code).toBe('ERR_KEYS_INVALID');
    expect(error.message).toBe('key set is empty: the gateway needs a key to sign with');
    expect(error.problems).toEqual(['keys: empty']);
  });
});

describe('key file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes atomically with mode 0600, creating the directory, and reads back', async () => {
    const path = join(dir, 'nested', 'deeper', 'jwks.json');
    const jwks: PrivateJwks = { keys: [await keyFor('ES256'), await keyFor('EdDSA')] };
    await writeKeyFile(path, jwks);
    expect(await fileMode(path)).toBe(0o600);
    expect(await readdir(join(dir, 'nested', 'deeper'))).toEqual(['jwks.json']);
    expect(await readKeyFile(path)).toEqual(jwks);
    expect(JSON.parse(await readFile(path, 'utf8'))).toEqual(jwks);
  });

  it('replaces an existing file and resets a loose mode to 0600', async () => {
    const path = join(dir, 'jwks.json');
    await writeFile(path, '{}', { mode: 0o644 });
    await chmod(path, 0o644);
    const jwks: PrivateJwks = { keys: [await keyFor('ES256')] };
    await writeKeyFile(path, jwks);
    expect(await fileMode(path)).toBe(0o600);
    expect(await readKeyFile(path)).toEqual(jwks);
  });

  it('with overwrite: false, refuses to replace an existing file and leaves no temp file', async () => {
    const path = join(dir, 'jwks.json');
    await writeFile(path, 'original');
    const error = await rejected(writeKeyFile(path, { keys: [await keyFor('ES256')] }, { overwrite: false }));
    expect(error.code).toBe('ERR_KEYS_EXISTS');
    expect(error.message).toBe(`key file ${path} already exists`);
    expect(await readFile(path, 'utf8')).toBe('original');
    expect(await readdir(dir)).toEqual(['jwks.json']);
  });

  it('explains how to create a missing file', async () => {
    const path = join(dir, 'missing.json');
    const error = await rejected(readKeyFile(path));
    expect(error.code).toBe('ERR_KEYS_NOT_FOUND');
    expect(error.message).toBe(
      `key file ${path} not found; create one with: agentgate keys generate --out ${path}`,
    );
  });

  it('names the file when it is not JSON', async () => {
    const path = join(dir, 'jwks.json');
    await writeFile(path, '{"keys": [');
    const error = await rejected(readKeyFile(path));
    expect(error.code).toBe('ERR_KEYS_INVALID');
    expect(error.message).toBe(`key file ${path} is not valid JSON`);
    expect(error.problems).toEqual(['not valid JSON']);
  });

  it('names the file in validation errors', async () => {
    const path = join(dir, 'jwks.json');
    await writeFile(path, '{"keys": []}');
    const error = await rejected(readKeyFile(path));
    expect(error.message).toBe(`invalid key set in ${path}:\n  keys: empty`);
  });
});

describe('rotateKeyFile', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-keys-'));
    path = join(dir, 'jwks.json');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('puts a new key of the newest key\'s alg first and keeps the rest', async () => {
    const old = [await keyFor('EdDSA'), await keyFor('ES256')];
    await writeKeyFile(path, { keys: old });
    await chmod(path, 0o644);
    const later = new Date('2025-02-01T00:00:00Z');
    const { added, retired } = await rotateKeyFile(path, { now: () => later });
    expect(added.alg).toBe('EdDSA');
    expect(Object.keys(added).sort()).toEqual(PUBLIC_MEMBERS.OKP);
    expect(retired).toEqual([]);
    const after = await readKeyFile(path);
    expect(after.keys.map((key) => key.kid)).toEqual([added.kid, old[0]?.kid, old[1]?.kid]);
    expect(after.keys[0]?.iat).toBe(later.getTime() / 1000);
    expect(await fileMode(path)).toBe(0o600);
    expect(await readdir(dir)).toEqual(['jwks.json']);
  });

  it('honours alg and retires the oldest keys beyond keep', async () => {
    const old = [await keyFor('ES256'), await keyFor('ES256'), await keyFor('ES256')];
    await writeKeyFile(path, { keys: old });
    const { added, retired } = await rotateKeyFile(path, { alg: 'EdDSA', keep: 2 });
    expect(added.alg).toBe('EdDSA');
    expect(retired).toEqual([old[1]?.kid, old[2]?.kid]);
    expect((await readKeyFile(path)).keys.map((key) => key.kid)).toEqual([added.kid, old[0]?.kid]);
    expect(await fileMode(path)).toBe(0o600);
  });

  it.each([1, 0, 2.5])('rejects keep %s (the previous key must keep verifying)', async (keep) => {
    await writeKeyFile(path, { keys: [await keyFor('ES256')] });
    await expect(rotateKeyFile(path, { keep })).rejects.toThrow(
      new TypeError(`rotateKeyFile: keep must be a whole number of at least 2 (got ${keep})`),
    );
  });

  it('fails with ERR_KEYS_NOT_FOUND when there is no file to rotate', async () => {
    const error = await rejected(rotateKeyFile(path));
    expect(error.code).toBe('ERR_KEYS_NOT_FOUND');
    await expect(stat(path)).rejects.toThrow('ENOENT');
  });
});

describe('keys CLI', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-keys-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generate writes an ES256 key with mode 0600 and says so', async () => {
    const out = join(dir, 'keys', 'jwks.json');
    const io = captureIo();
    expect(await keysGenerate({ out }, io, { now })).toBe(0);
    const { keys } = await readKeyFile(out);
    expect(keys).toHaveLength(1);
    expect(keys[0]?.alg).toBe('ES256');
    expect(keys[0]?.iat).toBe(NOW_SECONDS);
    expect(io.out).toEqual([`wrote ${out} (kid ${keys[0]?.kid}, ES256)`]);
    expect(io.err).toEqual([]);
    expect(await fileMode(out)).toBe(0o600);
  });

  it('generate refuses to overwrite without --force, and overwrites with it', async () => {
    const out = join(dir, 'jwks.json');
    await writeFile(out, 'precious');
    const io = captureIo();
    expect(await keysGenerate({ out, alg: 'EdDSA' }, io)).toBe(2);
    expect(io.err).toEqual([`refusing to overwrite ${out} (pass --force to replace it)`]);
    expect(io.out).toEqual([]);
    expect(await readFile(out, 'utf8')).toBe('precious');

    const forced = captureIo();
    expect(await keysGenerate({ out, alg: 'EdDSA', force: true }, forced)).toBe(0);
    const { keys } = await readKeyFile(out);
    expect(forced.out).toEqual([`wrote ${out} (kid ${keys[0]?.kid}, EdDSA)`]);
    expect(await fileMode(out)).toBe(0o600);
  });

  it.each(['HS256', 'none', 'es256', ''])('generate rejects --alg %j with exit 2', async (alg) => {
    const out = join(dir, 'jwks.json');
    const io = captureIo();
    expect(await keysGenerate({ out, alg }, io)).toBe(2);
    expect(io.err).toEqual([`unsupported --alg ${JSON.stringify(alg)} (use ES256, EdDSA or RS256)`]);
    await expect(stat(out)).rejects.toThrow('ENOENT');
  });

  it('rotate prints the added and the retired kids', async () => {
    const file = join(dir, 'jwks.json');
    const old = [await keyFor('ES256'), await keyFor('ES256')];
    await writeKeyFile(file, { keys: old });
    const io = captureIo();
    expect(await keysRotate({ file, keep: '2' }, io)).toBe(0);
    const { keys } = await readKeyFile(file);
    expect(io.out).toEqual([`rotated ${file}: added kid ${keys[0]?.kid} (ES256)`, `retired kid ${old[1]?.kid}`]);
    expect(keys.map((key) => key.kid)).toEqual([keys[0]?.kid, old[0]?.kid]);
    expect(await fileMode(file)).toBe(0o600);
  });

  it('rotate reports bad --alg and --keep together with exit 2', async () => {
    const file = join(dir, 'jwks.json');
    const io = captureIo();
    expect(await keysRotate({ file, alg: 'PS256', keep: '1' }, io)).toBe(2);
    expect(io.err).toEqual([
      'unsupported --alg "PS256" (use ES256, EdDSA or RS256)',
      'invalid --keep "1" (use a whole number of at least 2)',
    ]);
  });

  it('rotate of a missing file exits 2 and says how to create it', async () => {
    const file = join(dir, 'jwks.json');
    const io = captureIo();
    expect(await keysRotate({ file }, io)).toBe(2);
    expect(io.err).toEqual([`key file ${file} not found; create one with: agentgate keys generate --out ${file}`]);
  });

  it('rotate of an invalid file exits 2 with one line per problem', async () => {
    const file = join(dir, 'jwks.json');
    await writeFile(file, JSON.stringify({ keys: [{ kty: 'EC' }] }));
    const io = captureIo();
    expect(await keysRotate({ file }, io)).toBe(2);
    expect(io.err).toEqual([
      `invalid key set in ${file}:`,
      '  keys[0].kid: missing',
      '  keys[0].alg: missing',
      '  keys[0]: not a private key (no "d")',
      '  keys[0].crv: missing',
      '  keys[0].x: missing',
      '  keys[0].y: missing',
    ]);
  });

  it('exits 1 on an unexpected failure', async () => {
    // The key file path is a directory: neither missing nor invalid, just unreadable as a file.
    const io = captureIo();
    expect(await keysRotate({ file: dir }, io)).toBe(1);
    expect(io.err).toEqual(['unexpected error: EISDIR: illegal operation on a directory, read']);
  });
});
