// `agentgate idp test`: checks each identity provider's wiring (discovery, issuer, algorithms,
// JWKS, the redirect URI to register) against an Okta peer on the loopback internet, in lines an
// IT admin can act on; exit 0 when all pass, 3 when any fails, 2 for an unknown IdP id.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startOktaPeer } from '../support/peers/okta.ts';
import type { OktaPeer } from '../support/peers/okta.ts';

const internet = createLoopbackInternet();
const SECRET = 'okta-client-secret-0123456789';
const ISSUER = 'https://sso.example.test';
let dir: string;
let okta: OktaPeer;
let oktaOnly: string;
let twoIdps: string;

const oktaIdp = `
  - id: okta
    type: oidc
    preset: okta
    issuer: https://acme.okta.com/oauth2/default
    clientId: 0oa-gateway
    clientSecret: "\${env:OKTA_CLIENT_SECRET}"
`;
const config = (idps: string) => `mode: development
issuer: ${ISSUER}
store: { driver: memory }
keys: { generate: true }
identityProviders:${idps}`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-idp-test-'));
  oktaOnly = join(dir, 'okta.yaml');
  twoIdps = join(dir, 'two.yaml');
  await writeFile(oktaOnly, config(oktaIdp));
  // globex.okta.com is not on the loopback internet: unreachable.
  await writeFile(twoIdps, config(`${oktaIdp}
  - id: globex
    type: oidc
    preset: okta
    issuer: https://globex.okta.com
    clientId: 0oa-globex
    clientSecret: globex-client-secret-0123456789
`));
  okta = await startOktaPeer({
    internet,
    clients: [{ client_id: '0oa-gateway', client_secret: SECRET, redirect_uris: [`${ISSUER}/federation/oidc/okta/callback`] }],
  });
});
afterAll(async () => {
  await okta?.close();
  await rm(dir, { recursive: true, force: true });
});

async function idpTest(...args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(['idp', 'test', ...args], {
    env: { OKTA_CLIENT_SECRET: SECRET },
    stdout: (line) => stdout.push(line),
    stderr: (line) => stderr.push(line),
    serve: async () => 0,
    version: 'test',
    fetch: internet.fetch,
  });
  return { code, stdout, stderr };
}

const OKTA_OK = [
  'okta (okta)',
  '  ✓ discovery: issuer https://acme.okta.com/oauth2/default',
  '  ✓ id token algorithms: RS256',
  '  ✓ jwks: 1 signing key(s) at https://acme.okta.com/oauth2/default/v1/keys',
  `  ✓ redirect uri: register ${ISSUER}/federation/oidc/okta/callback as a redirect URI of client 0oa-gateway at the IdP`,
];

describe('agentgate idp test', () => {
  it('passes every check against a reachable Okta and exits 0', async () => {
    const res = await idpTest('--config', oktaOnly);
    expect(res).toEqual({ code: 0, stdout: [...OKTA_OK, 'all checks passed (1 identity provider)'], stderr: [] });
    expect(okta.host.requests.map((request) => request.url)).toEqual(expect.arrayContaining([
      'https://acme.okta.com/oauth2/default/.well-known/openid-configuration',
      'https://acme.okta.com/oauth2/default/v1/keys',
    ]));
  });

  it('names the discovery URL it could not reach and exits 3 when Okta is down', async () => {
    await okta.stop();
    try {
      const res = await idpTest('--config', oktaOnly);
      expect(res).toEqual({
        code: 3,
        stdout: [
          'okta (okta)',
          '  ✗ discovery: the identity provider "okta" could not be reached; try again shortly (https://acme.okta.com/oauth2/default/.well-known/openid-configuration)',
          '1 check failed',
        ],
        stderr: [],
      });
    } finally {
      await okta.start();
    }
    // Nothing is cached between runs: up again, all checks pass.
    expect((await idpTest('--config', oktaOnly)).code).toBe(0);
  });

  it('checks only the IdP named, else all of them (exit 3 if any fails)', async () => {
    expect(await idpTest('--config', twoIdps, 'okta')).toEqual({ code: 0, stdout: [...OKTA_OK, 'all checks passed (1 identity provider)'], stderr: [] });
    expect(await idpTest('--config', twoIdps)).toEqual({
      code: 3,
      stdout: [
        ...OKTA_OK,
        'globex (okta)',
        '  ✗ discovery: the identity provider "globex" could not be reached; try again shortly (https://globex.okta.com/.well-known/openid-configuration)',
        '1 check failed',
      ],
      stderr: [],
    });
  });

  it('colours the result and shows progress on stderr only for a person at a terminal', async () => {
    const stdout: string[] = [];
    const stderr: string[] = [];
    const code = await runCli(['idp', 'test', '--config', oktaOnly], {
      env: { OKTA_CLIENT_SECRET: SECRET }, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line),
      serve: async () => 0, version: 'test', fetch: internet.fetch, color: true,
    });
    expect(code).toBe(0);
    expect(stdout[0]).toBe('\x1b[1mokta (okta)\x1b[22m');
    expect(stdout[1]).toBe('  \x1b[32m✓\x1b[39m discovery: issuer https://acme.okta.com/oauth2/default');
    expect(stdout.at(-1)).toBe('\x1b[32mall checks passed (1 identity provider)\x1b[39m');
    expect(stderr[0]).toBe('\x1b[2mchecking okta …\x1b[22m');
    expect(stderr[1]!.replace(/\d+\.\d s/, 'N s')).toBe('\x1b[2mchecking okta … done in N s\x1b[22m');
    // Without a terminal (the tests above): no escape codes, no progress lines.
    expect((await idpTest('--config', oktaOnly)).stdout.join('\n')).not.toContain('\x1b[');
  });

  it('exits 2 for an IdP id the config does not have', async () => {
    expect(await idpTest('--config', oktaOnly, 'x')).toEqual({
      code: 2, stdout: [], stderr: [`agentgate: no identity provider "x" in ${oktaOnly}`],
    });
  });
});
