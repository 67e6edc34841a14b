// `${env:NAME}` and `${file:PATH}` expansion inside string values of the parsed YAML.
// Expansion happens after parsing, so a secret containing YAML syntax cannot change the
// document's structure. `${env:NAME:-fallback}` supplies a default; `$${` writes a literal `${`.
// File paths are relative to the config file. One trailing newline of a file is dropped
// (secrets mounted from Kubernetes Secrets or written by `echo` end with one).
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';

import type { ConfigProblem } from './errors.ts';
import { formatPath } from './errors.ts';

export interface ExpandContext {
  env: Readonly<Record<string, string | undefined>>;
  /** Directory relative `${file:…}` paths resolve against. */
  baseDir: string;
  readFile?: (path: string) => string;
}

const REFERENCE = /\$\$\{|\$\{(env|file):([^}]*)\}/g;

export function expandReferences(
  document: unknown,
  context: ExpandContext,
): { value: unknown; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const readFile = context.readFile ?? ((path: string) => readFileSync(path, 'utf8'));

  function expandString(input: string, path: PropertyKey[]): string {
    return input.replace(REFERENCE, (whole, kind: string | undefined, ref: string | undefined) => {
      if (whole === '$${') return '${';
      const where = formatPath(path);
      if (kind === 'env') {
        const [name = '', fallback] = splitFallback(ref ?? '');
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
          problems.push({ path: where, message: `"\${env:${name}}" is not a valid environment variable name` });
          return '';
        }
        const value = context.env[name];
        if (value === undefined || value === '') {
          if (fallback !== undefined) return fallback;
          problems.push({ path: where, message: `environment variable ${name} is not set` });
          return '';
        }
        return value;
      }
      const file = (ref ?? '').trim();
      if (!file) {
        problems.push({ path: where, message: '"${file:}" needs a path' });
        return '';
      }
      const full = isAbsolute(file) ? file : resolve(context.baseDir, file);
      try {
        return readFile(full).replace(/\r?\n$/, '');
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
        problems.push({ path: where, message: `cannot read file ${full} (${code})` });
        return '';
      }
    });
  }

  function walk(node: unknown, path: PropertyKey[]): unknown {
    if (typeof node === 'string') return expandString(node, path);
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) out[key] = walk(item, [...path, key]);
      return out;
    }
    return node;
  }

  return { value: walk(document, []), problems };
}

function splitFallback(ref: string): [string, string | undefined] {
  const at = ref.indexOf(':-');
  return at === -1 ? [ref.trim(), undefined] : [ref.slice(0, at).trim(), ref.slice(at + 2)];
}
