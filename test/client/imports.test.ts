// agentgate/client runs inside resource servers and agents, so it must not drag the gateway in:
// the modules it reaches (transitively, from src/client/index.ts) stay in src/client plus the pure
// DPoP verifier, and the packages it loads at run time are jose and Node's built-ins only
// (express appears as types). A server-side import here would fail this test.
import { readFileSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function closure(entry: string): { modules: string[]; packages: Map<string, boolean> } {
  const seen = new Set<string>();
  /** package → whether some module imports it for its values (not `import type`). */
  const packages = new Map<string, boolean>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = readFileSync(file, 'utf8');
    for (const match of source.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^;']*?from\s+)?'([^']+)';/gms)) {
      const [, typeOnly, specifier] = match as unknown as [string, string | undefined, string];
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier));
      else packages.set(specifier, (packages.get(specifier) ?? false) || !typeOnly);
    }
  };
  visit(resolve(ROOT, entry));
  return { modules: [...seen].map((file) => relative(ROOT, file)).sort(), packages };
}

describe('agentgate/client dependencies', () => {
  it('reaches only src/client and the DPoP proof verifier', () => {
    const { modules } = closure('src/client/index.ts');
    expect(modules.filter((file) => !file.startsWith('src/client/'))).toEqual(['src/keys/dpop.ts']);
  });

  it('loads jose and node: built-ins at run time; express only as types', () => {
    const { packages } = closure('src/client/index.ts');
    const runtime = [...packages].filter(([, value]) => value).map(([name]) => name);
    expect(runtime.filter((name) => !name.startsWith('node:')).sort()).toEqual(['jose']);
    expect(packages.get('express')).toBe(false);
  });
});
