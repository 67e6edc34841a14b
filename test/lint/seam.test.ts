// The architecture rule ESLint enforces: oidc-provider internals are reached only through the
// one seam file (STYLE.md). This runs the project's real ESLint config.
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const code = "import instance from 'oidc-provider/lib/helpers/weak_cache.js';\nexport default instance;\n";

describe('no-restricted-imports seam', () => {
  const eslint = new ESLint({ cwd: process.cwd() });

  it('rejects a deep import of oidc-provider outside the seam file', async () => {
    const [result] = await eslint.lintText(code, { filePath: 'src/authz/provider-extra.ts' });
    expect(result?.messages.map((m) => [m.ruleId, m.message])).toEqual([
      ['no-restricted-imports', expect.stringContaining('oidc-provider internals are reached only through src/authz/oidc-provider-internals.ts')],
    ]);
  });

  it('allows it in src/authz/oidc-provider-internals.ts', async () => {
    const [result] = await eslint.lintText(code, { filePath: 'src/authz/oidc-provider-internals.ts' });
    expect(result?.messages).toEqual([]);
  });
});
