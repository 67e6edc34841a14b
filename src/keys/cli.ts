// `agentgate keys generate` and `agentgate keys rotate`, as functions of already-split arguments
// and two line sinks, so src/cli/ owns argv parsing and tests need no process. Exit codes: 0 ok,
// 2 usage or validation error (the operator can fix it), 1 unexpected.

import { KeyFileError } from './errors.ts';
import { generateSigningKey, isKeyAlg, SUPPORTED_KEY_ALGS_TEXT } from './jwk.ts';
import type { KeyAlg } from './jwk.ts';
import { rotateKeyFile, writeKeyFile } from './key-file.ts';

export interface CliIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** A person at a terminal: colours and progress lines (src/cli/style.ts). */
  color?: boolean;
}

export interface KeysCliDeps {
  now?: () => Date;
}

export interface KeysGenerateArgs {
  out: string;
  /** Raw `--alg`; default ES256. */
  alg?: string;
  force?: boolean;
}

export interface KeysRotateArgs {
  file: string;
  /** Raw `--alg`; default: the alg of the current newest key. */
  alg?: string;
  /** Raw `--keep`; default: keep every key. */
  keep?: number | string;
}

const EXIT_OK = 0;
const EXIT_UNEXPECTED = 1;
const EXIT_USAGE = 2;

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

function parseAlg(alg: string | undefined): Parsed<KeyAlg | undefined> {
  if (alg === undefined || isKeyAlg(alg)) return { ok: true, value: alg };
  return { ok: false, message: `unsupported --alg ${JSON.stringify(alg)} (use ${SUPPORTED_KEY_ALGS_TEXT})` };
}

function parseKeep(keep: number | string | undefined): Parsed<number | undefined> {
  if (keep === undefined) return { ok: true, value: undefined };
  const value = typeof keep === 'number' ? keep : /^\d+$/.test(keep) ? Number(keep) : Number.NaN;
  if (Number.isSafeInteger(value) && value >= 2) return { ok: true, value };
  return { ok: false, message: `invalid --keep ${JSON.stringify(String(keep))} (use a whole number of at least 2)` };
}

function report(error: unknown, io: CliIo): number {
  if (error instanceof KeyFileError) {
    for (const line of error.message.split('\n')) io.stderr(line);
    return EXIT_USAGE;
  }
  // Errors reaching here come from the filesystem or the crypto runtime; neither quotes key
  // material (paths at most).
  io.stderr(`unexpected error: ${error instanceof Error ? error.message : String(error)}`);
  return EXIT_UNEXPECTED;
}

export async function keysGenerate(args: KeysGenerateArgs, io: CliIo, deps: KeysCliDeps = {}): Promise<number> {
  if (args.out === '') {
    io.stderr('missing --out <path>');
    return EXIT_USAGE;
  }
  const alg = parseAlg(args.alg);
  if (!alg.ok) {
    io.stderr(alg.message);
    return EXIT_USAGE;
  }
  try {
    const key = await generateSigningKey(alg.value ?? 'ES256', deps.now === undefined ? {} : { now: deps.now });
    await writeKeyFile(args.out, { keys: [key] }, { overwrite: args.force === true });
    io.stdout(`wrote ${args.out} (kid ${key.kid}, ${key.alg})`);
    return EXIT_OK;
  } catch (error) {
    if (error instanceof KeyFileError && error.code === 'ERR_KEYS_EXISTS') {
      io.stderr(`refusing to overwrite ${args.out} (pass --force to replace it)`);
      return EXIT_USAGE;
    }
    return report(error, io);
  }
}

export async function keysRotate(args: KeysRotateArgs, io: CliIo, deps: KeysCliDeps = {}): Promise<number> {
  if (args.file === '') {
    io.stderr('missing key file path');
    return EXIT_USAGE;
  }
  const alg = parseAlg(args.alg);
  const keep = parseKeep(args.keep);
  // Both are reported, like every other validation in the gateway.
  if (!alg.ok) io.stderr(alg.message);
  if (!keep.ok) io.stderr(keep.message);
  if (!alg.ok || !keep.ok) return EXIT_USAGE;
  try {
    const { added, retired } = await rotateKeyFile(args.file, {
      ...(alg.value === undefined ? {} : { alg: alg.value }),
      ...(keep.value === undefined ? {} : { keep: keep.value }),
      ...(deps.now === undefined ? {} : { now: deps.now }),
    });
    io.stdout(`rotated ${args.file}: added kid ${added.kid} (${added.alg})`);
    for (const kid of retired) io.stdout(`retired kid ${kid}`);
    return EXIT_OK;
  } catch (error) {
    return report(error, io);
  }
}
