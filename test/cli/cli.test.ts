// The `agentgate` command: check-config reports every problem with its path (exit 2),
// production mode refuses development-only settings before listening, usage errors exit 2.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli, USAGE } from '../../src/cli/index.ts';
import { runCommand } from '../support/process.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-cli-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], env: Record<string, string> = {}) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const served: string[] = [];
  const code = await runCli(args, {
    env,
    stdout: (l) => stdout.push(l),
    stderr: (l) => stderr.push(l),
    serve: async (path) => { served.push(path); return 0; },
    version: '9.9.9',
  });
  return { code, stdout, stderr, served };
}

const PRODUCTION_WITH_DEV_SETTINGS = `
mode: production
issuer: http://sso.example.test
store: { driver: memory }
keys: { generate: true }
devLogin: { enabled: true }
`;

describe('check-config', () => {
  it('accepts the demo config', async () => {
    const res = await cli(['check-config', '--config', 'config/demo.yaml']);
    expect(res.code).toBe(0);
    expect(res.stdout).toEqual([
      'config/demo.yaml: OK (development mode, issuer http://localhost:8080, store memory, 1 app(s), 3 agent(s), 2 resource(s), 3 role(s), 3 role mapping(s), session 8h)',
    ]);
  });

  it('prints every problem with its dotted path and exits 2', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, `
issuer: https://sso.example.test
listen: { prot: 8080 }
store: { driver: redis, url: "\${env:REDIS_URL}" }
keys: { file: /etc/agentgate/jwks.json }
cookies: { keys: [short] }
agents:
  - clientId: a
    auth: { method: client_secret_basic, secret: "x" }
    maxTokenTtl: soon
`);
    const res = await cli(['check-config', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toEqual([
      `${file}: 5 problems`,
      '  store.url: environment variable REDIS_URL is not set',
      '  listen.prot: unknown key',
      '  cookies.keys[0]: must be at least 32 characters',
      '  agents[0].auth.secret: must be at least 32 characters (generate one with `openssl rand -base64 32`)',
      '  agents[0].maxTokenTtl: "soon" is not a duration (use e.g. 500ms, 90s, 5m, 8h, 7d)',
    ]);
  });

  it('reports a missing config file', async () => {
    const res = await cli(['check-config', '--config', join(dir, 'nope.yaml')]);
    expect(res.code).toBe(2);
    expect(res.stderr[1]).toBe('  cannot read config file (ENOENT)');
  });

  it('refuses development-only settings in production mode, naming each', async () => {
    const file = join(dir, 'prod.yaml');
    await writeFile(file, PRODUCTION_WITH_DEV_SETTINGS);
    const res = await cli(['check-config', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr.slice(1).map((l) => l.split(':')[0]?.trim())).toEqual([
      'issuer', 'store.driver', 'keys.generate', 'cookies', 'devLogin.enabled',
    ]);
  });
});

describe('serve', () => {
  it('refuses to start in production mode with development settings, before listening', async () => {
    const file = join(dir, 'prod-serve.yaml');
    await writeFile(file, PRODUCTION_WITH_DEV_SETTINGS);
    const res = runCommand(['serve', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('store.driver: "memory" is allowed only in development mode');
    expect(res.stderr).toContain('keys.generate: generated keys are allowed only in development mode');
    expect(res.stderr).toContain('devLogin.enabled: the development test login page is refused in production mode');
    expect(res.stderr).toContain('agentgate: refusing to start with an invalid config');
    expect(res.stdout).not.toContain('listening');
  });

  it('takes the config path from --config, else $AGENTGATE_CONFIG, else config/gateway.yaml', async () => {
    expect((await cli(['serve', '--config', 'a.yaml'])).served).toEqual(['a.yaml']);
    expect((await cli(['serve'], { AGENTGATE_CONFIG: 'b.yaml' })).served).toEqual(['b.yaml']);
    expect((await cli(['serve'])).served).toEqual(['config/gateway.yaml']);
  });
});

describe('keys', () => {
  it('generates and rotates a key file through the command', async () => {
    const file = join(dir, 'keys', 'jwks.json');
    expect((await cli(['keys', 'generate', '--out', file, '--alg', 'EdDSA'])).code).toBe(0);
    const again = await cli(['keys', 'generate', '--out', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toEqual([`refusing to overwrite ${file} (pass --force to replace it)`]);
    const rotated = await cli(['keys', 'rotate', '--file', file, '--alg', 'ES256']);
    expect(rotated.code).toBe(0);
    const jwks = JSON.parse(await readFile(file, 'utf8')) as { keys: { alg: string }[] };
    expect(jwks.keys.map((k) => k.alg)).toEqual(['ES256', 'EdDSA']);
  });

  it('rejects an unsupported algorithm with exit 2', async () => {
    const res = await cli(['keys', 'generate', '--out', join(dir, 'x.json'), '--alg', 'HS256']);
    expect(res.code).toBe(2);
    expect(res.stderr).toEqual(['unsupported --alg "HS256" (use ES256, EdDSA or RS256)']);
  });
});

describe('usage', () => {
  it('exits 2 with usage on an unknown command or option', async () => {
    const unknown = await cli(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toEqual(['agentgate: unknown command "frobnicate"', USAGE]);
    const badOption = await cli(['check-config', '--confg', 'x']);
    expect(badOption.code).toBe(2);
    expect(badOption.stderr[0]).toMatch(/^agentgate: Unknown option '--confg'/);
  });

  it('prints help and version', async () => {
    expect((await cli(['--help'])).stdout).toEqual([USAGE]);
    expect((await cli(['--version'])).stdout).toEqual(['9.9.9']);
  });
});
