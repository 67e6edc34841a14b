// The private key file: one JSON JWK Set (RFC 7517 §5), newest key first, mode 0600. This is the
// only I/O the keys context does. Writes are atomic (temp file in the same directory, fsync,
// rename) so a crash or a full disk never leaves a half-written key file behind, and a reader
// sees either the old set or the new one. Contents are never quoted in errors: they are secret.

import { randomUUID } from 'node:crypto';
import { link, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

import { KeyFileError } from './errors.ts';
import { generateSigningKey, isKeyAlg, publicJwk, SUPPORTED_KEY_ALGS_TEXT } from './jwk.ts';
import type { KeyAlg, PrivateJwks, PublicJwk } from './jwk.ts';
import { parsePrivateJwks } from './validate.ts';

const FILE_MODE = 0o600;
const DIR_MODE = 0o700;

function errnoCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') {
    return error.code;
  }
  return undefined;
}

export async function readKeyFile(path: string): Promise<PrivateJwks> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new KeyFileError(
        'ERR_KEYS_NOT_FOUND',
        `key file ${path} not found; create one with: agentgate keys generate --out ${path}`,
      );
    }
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // V8's SyntaxError quotes the text around the error, i.e. key material: it is dropped, not
    // wrapped as `cause`, so no logger can print it.
    throw new KeyFileError('ERR_KEYS_INVALID', `key file ${path} is not valid JSON`, ['not valid JSON']);
  }
  return parsePrivateJwks(json, path);
}

export interface WriteKeyFileOptions {
  /** When false, fail with `ERR_KEYS_EXISTS` instead of replacing an existing file. Default true. */
  overwrite?: boolean;
}

/**
 * Validates `jwks` (a file the gateway would refuse to load is never written), then replaces the
 * file at `path` atomically with mode 0600, creating its directory (0700) if needed.
 */
export async function writeKeyFile(path: string, jwks: PrivateJwks, opts: WriteKeyFileOptions = {}): Promise<void> {
  const valid = parsePrivateJwks(jwks, path);
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: DIR_MODE });

  // Same directory as the target so rename(2) stays on one filesystem and is atomic; 'wx' so a
  // pre-planted file or symlink at the temp name is never written through.
  const temp = join(dir, `.${basename(path)}.${randomUUID()}.tmp`);
  try {
    const handle = await open(temp, 'wx', FILE_MODE);
    try {
      // The open mode is filtered by the umask; set it exactly.
      await handle.chmod(FILE_MODE);
      await handle.writeFile(`${JSON.stringify(valid, null, 2)}\n`, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    if (opts.overwrite === false) {
      // link(2) fails with EEXIST instead of replacing: no window between "check" and "write".
      try {
        await link(temp, path);
      } catch (error) {
        if (errnoCode(error) === 'EEXIST') {
          throw new KeyFileError('ERR_KEYS_EXISTS', `key file ${path} already exists`);
        }
        throw error;
      }
    } else {
      await rename(temp, path);
    }
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(dir);
}

/** Makes the rename itself durable. Best effort: not every platform can fsync a directory. */
async function syncDirectory(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Windows and some network filesystems refuse; the data itself was already fsynced.
  } finally {
    await handle?.close();
  }
}

export interface RotateKeyFileOptions {
  /** Algorithm of the new key; defaults to that of the current newest key. */
  alg?: KeyAlg;
  /**
   * How many keys to keep, the new one included (at least 2, so the key that signed the tokens
   * still in flight keeps verifying them). Keys beyond it, oldest first, are retired. Default: all.
   */
  keep?: number;
  now?: () => Date;
}

export interface RotateKeyFileResult {
  added: PublicJwk;
  /** kids of the keys removed from the file. */
  retired: string[];
}

/**
 * Puts a freshly generated key first in the file (so it signs from the next load on) and keeps
 * the others for verification. Retiring a key makes every token it signed unverifiable: choose
 * `keep` so retired keys are older than the longest token lifetime.
 */
export async function rotateKeyFile(path: string, opts: RotateKeyFileOptions = {}): Promise<RotateKeyFileResult> {
  const { alg, keep, now } = opts;
  if (alg !== undefined && !isKeyAlg(alg)) {
    throw new TypeError(`rotateKeyFile: unsupported alg "${String(alg)}" (use ${SUPPORTED_KEY_ALGS_TEXT})`);
  }
  if (keep !== undefined && !(Number.isSafeInteger(keep) && keep >= 2)) {
    throw new TypeError(`rotateKeyFile: keep must be a whole number of at least 2 (got ${String(keep)})`);
  }
  const current = await readKeyFile(path);
  // parsePrivateJwks guarantees at least one key.
  const newestAlg = current.keys[0]?.alg ?? 'ES256';
  const added = await generateSigningKey(alg ?? newestAlg, now === undefined ? {} : { now });
  const keys = [added, ...current.keys];
  const kept = keep === undefined ? keys : keys.slice(0, keep);
  const retired = keys.slice(kept.length).map((key) => key.kid);
  await writeKeyFile(path, { keys: kept });
  return { added: publicJwk(added), retired };
}
