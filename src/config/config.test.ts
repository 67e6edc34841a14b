// The config contract: strict schema, cross-field rules and production refusals, each problem
// reported with its dotted path and all of them at once; `${env:}`/`${file:}` expansion after
// YAML parsing; durations in seconds.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ConfigError,
  formatDuration,
  loadConfigFile,
  parseConfig,
  parseDuration,
  validateConfig,
} from './index.ts';
import type { ConfigProblem, LoadOptions } from './index.ts';

const SECRET = 'invoice-agent-secret-0123456789abcdef';
const COOKIE_KEY = 'cookie-key-0123456789abcdef0123456789';

/** The problems a ConfigError carries; fails the test when `fn` does not throw one. */
function problemsOf(fn: () => unknown): readonly ConfigProblem[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

const problems = (raw: unknown, options?: LoadOptions) => problemsOf(() => validateConfig(raw, options));

/** A complete production config that passes every rule. */
function productionConfig(): Record<string, unknown> {
  return {
    mode: 'production',
    issuer: 'https://sso.example.test',
    store: { driver: 'redis', url: 'redis://redis.internal:6379/0' },
    keys: { file: '/etc/agentgate/keys.json' },
    cookies: { keys: [COOKIE_KEY] },
    resources: [
      { id: 'https://erp.example.test', scopes: ['erp:read', 'erp:approve'] },
      { id: 'https://mail.example.test', scopes: ['mail:read'] },
    ],
    agents: [
      {
        clientId: 'invoice-agent',
        auth: { method: 'client_secret_basic', secret: SECRET },
        scopes: ['erp:read'],
        audiences: ['https://erp.example.test'],
      },
    ],
    apps: [{ clientId: 'agent-console', redirectUris: ['https://console.example.test/cb'] }],
  };
}

/** A minimal development config. */
function devConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: 'development',
    issuer: 'http://127.0.0.1:8080',
    store: { driver: 'memory' },
    keys: { generate: true },
    ...extra,
  };
}

describe('parseDuration', () => {
  it.each([
    ['90s', 90],
    ['5m', 300],
    ['500ms', 0.5],
    ['1ms', 0.001],
    ['9ms', 0.009],
    ['1001ms', 1.001],
    ['8h', 28_800],
    ['7d', 604_800],
    ['0s', 0],
    [' 10m ', 600],
  ])('%j is %d seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each(['', '5', '3600', '1.5h', '-5m', '5 m', '5M', '5min', 'm', '5s5', '1e3s'])('%j is not a duration', (input) => {
    expect(parseDuration(input)).toBeUndefined();
  });
});

describe('formatDuration', () => {
  it.each([
    [0.5, '500ms'],
    [0.001, '1ms'],
    [1, '1s'],
    [90, '90s'],
    [300, '5m'],
    [3600, '1h'],
    [5400, '90m'],
    [28_800, '8h'],
    [86_400, '1d'],
    [172_800, '2d'],
    [1.5, '1500ms'],
  ])('%d seconds is %j', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });

  it('round-trips through parseDuration', () => {
    for (const text of ['500ms', '90s', '5m', '8h', '7d']) {
      expect(formatDuration(parseDuration(text) ?? Number.NaN)).toBe(text);
    }
  });
});

describe('validateConfig', () => {
  it('accepts a complete production config and applies the defaults', () => {
    expect(validateConfig(productionConfig())).toEqual({
      mode: 'production',
      issuer: 'https://sso.example.test',
      listen: { host: '0.0.0.0', port: 8080 },
      trustProxy: false,
      store: {
        driver: 'redis',
        url: 'redis://redis.internal:6379/0',
        keyPrefix: 'agentgate:',
        connectTimeout: 0.5,
        commandTimeout: 0.5,
      },
      keys: { file: '/etc/agentgate/keys.json', generate: false, alg: 'ES256' },
      cookies: { keys: [COOKIE_KEY] },
      session: { ttl: 28_800, idleTtl: 3600 },
      tokens: {
        accessTokenTtl: 600,
        idTokenTtl: 3600,
        refreshTokenTtl: 28_800,
        authorizationCodeTtl: 60,
        clientCredentialsTtl: 600,
      },
      resources: [
        { id: 'https://erp.example.test', scopes: ['erp:read', 'erp:approve'], tokenTtl: 300, scopeDescriptions: {} },
        { id: 'https://mail.example.test', scopes: ['mail:read'], tokenTtl: 300, scopeDescriptions: {} },
      ],
      agents: [{
        clientId: 'invoice-agent', consent: 'implicit',
        auth: { method: 'client_secret_basic', secret: SECRET },
        scopes: ['erp:read'],
        audiences: ['https://erp.example.test'],
        maxTokenTtl: 600,
        delegateTo: [],
        disabled: false,
        requireDpop: false,
        defaultScopes: {},
      }],
      apps: [{
        clientId: 'agent-console',
        redirectUris: ['https://console.example.test/cb'],
        postLogoutRedirectUris: [],
        audiences: [],
      }],
      identityProviders: [],
      roles: {},
      roleMappings: [],
      stepUp: [],
      policy: { maxDelegationDepth: 3 },
      admin: { clients: [], roles: [] },
      devLogin: { enabled: false },
      demoIdp: { enabled: false, id: 'demo', displayName: 'Demo IdP', domains: [], people: [] },
      logging: { level: 'info' },
      shutdown: { timeout: 10 },
    });
  });

  it('defaults mode to production', () => {
    const { mode: _mode, ...rest } = productionConfig();
    expect(validateConfig(rest).mode).toBe('production');
  });

  it('parses every duration to seconds', () => {
    const config = validateConfig(devConfig({
      session: { ttl: '12h', idleTtl: '90s' },
      tokens: { accessTokenTtl: '5m', authorizationCodeTtl: '500ms' },
      shutdown: { timeout: '1d' },
    }));
    expect(config.session).toEqual({ ttl: 43_200, idleTtl: 90 });
    expect(config.tokens).toEqual({
      accessTokenTtl: 300,
      idTokenTtl: 3600,
      refreshTokenTtl: 28_800,
      authorizationCodeTtl: 0.5,
      clientCredentialsTtl: 600,
    });
    expect(config.shutdown.timeout).toBe(86_400);
  });

  it('reports every schema problem at once, each at its dotted path', () => {
    expect(problems({
      mode: 'staging',
      issuer: 'https://sso.example.test/',
      listen: { hots: '0.0.0.0', port: '8080' },
      store: { driver: 'redis', url: 'http://redis:6379', connectTimeout: 500 },
      keys: { generate: 'yes' },
      session: { ttl: '8 hours' },
      tokens: { accessTokenTtl: '0s' },
      resources: [
        { id: 'https://erp.example.test', scopes: ['erp:read'] },
        { id: 'https://mail.example.test', scopes: ['mail read', 'mail:send'] },
      ],
      agents: [
        { clientId: 'a', auth: { method: 'client_secret_basic', secret: 'too-short' } },
        { clientId: ' ', auth: { method: 'mtls' }, scopes: ['ok', 'bad"quote'] },
      ],
      apps: [{ clientId: 'app', redirectUris: [] }],
      unknownTopLevel: true,
    })).toEqual([
      { path: 'mode', message: 'Invalid option: expected one of "production"|"development"' },
      { path: 'issuer', message: 'must not end with "/"' },
      { path: 'listen.port', message: 'expected number, got string' },
      { path: 'listen.hots', message: 'unknown key' },
      { path: 'store.url', message: 'must start with redis:// or rediss://' },
      { path: 'store.connectTimeout', message: 'expected string, got number' },
      { path: 'keys.generate', message: 'expected boolean, got string' },
      { path: 'session.ttl', message: '"8 hours" is not a duration (use e.g. 500ms, 90s, 5m, 8h, 7d)' },
      { path: 'tokens.accessTokenTtl', message: '"0s" is not a duration (use e.g. 500ms, 90s, 5m, 8h, 7d)' },
      { path: 'resources[1].scopes[0]', message: 'is not a valid scope token (RFC 6749 §3.3)' },
      {
        path: 'agents[0].auth.secret',
        message: 'must be at least 32 characters (generate one with `openssl rand -base64 32`)',
      },
      { path: 'agents[1].clientId', message: 'must not be empty' },
      {
        path: 'agents[1].auth.method',
        message: "must be one of the known kinds ('client_secret_basic' | 'client_secret_post' | 'private_key_jwt')",
      },
      { path: 'agents[1].scopes[1]', message: 'is not a valid scope token (RFC 6749 §3.3)' },
      { path: 'apps[0].redirectUris', message: 'Too small: expected array to have >=1 items' },
      { path: 'unknownTopLevel', message: 'unknown key' },
    ]);
  });

  it('reports missing required settings', () => {
    expect(problems({})).toEqual([
      { path: 'issuer', message: 'required' },
      { path: 'store', message: 'required' },
      { path: 'keys', message: 'required' },
    ]);
  });

  it('reports cross-field problems with their paths', () => {
    const raw = devConfig({
      store: {
        driver: 'redis',
        url: 'redis://127.0.0.1:6379',
        sentinel: { name: 'primary', sentinels: [{ host: '10.0.0.1', port: 26379 }] },
      },
      session: { ttl: '1h', idleTtl: '2h' },
      resources: [
        { id: 'https://erp.example.test', scopes: ['erp:read'] },
        { id: 'https://mail.example.test', scopes: ['mail:read'] },
        { id: 'https://erp.example.test', scopes: ['erp:read', 'erp:write'] },
      ],
      agents: [
        {
          clientId: 'invoice-agent',
          auth: { method: 'client_secret_basic', secret: SECRET },
          scopes: ['erp:read', 'mail:read'],
          audiences: ['https://erp.example.test', 'https://crm.example.test'],
          delegateTo: ['ghost-agent', 'invoice-agent', 'mail-agent'],
        },
        {
          clientId: 'mail-agent',
          auth: { method: 'private_key_jwt' },
        },
        {
          clientId: 'both-agent',
          auth: {
            method: 'private_key_jwt',
            jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }] },
            jwksUri: 'https://both.example.test/jwks',
          },
        },
        {
          clientId: 'leaky-agent',
          auth: {
            method: 'private_key_jwt',
            jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'x', y: 'y' }, { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', d: 'd' }, { kty: 'oct', k: 'c2VjcmV0' }] },
          },
        },
        { clientId: 'mail-agent', auth: { method: 'client_secret_post', secret: SECRET } },
      ],
      apps: [
        {
          clientId: 'invoice-agent',
          redirectUris: ['https://console.example.test/cb'],
          audiences: ['https://mail.example.test', 'https://nowhere.example.test'],
        },
      ],
    });
    expect(problems(raw)).toEqual([
      { path: 'store', message: 'a redis store needs exactly one of url, sentinel or cluster' },
      { path: 'resources[2].id', message: 'duplicate resource "https://erp.example.test"' },
      { path: 'agents[0].audiences[1]', message: 'unknown resource "https://crm.example.test" (not in resources[].id)' },
      { path: 'agents[0].scopes[1]', message: '"mail:read" is not a scope of any of this agent\'s audiences' },
      { path: 'agents[0].delegateTo[0]', message: 'unknown agent "ghost-agent"' },
      { path: 'agents[0].delegateTo[1]', message: 'an agent cannot delegate to itself' },
      { path: 'agents[1].auth', message: 'private_key_jwt needs exactly one of jwks or jwksUri' },
      { path: 'agents[2].auth', message: 'private_key_jwt needs exactly one of jwks or jwksUri' },
      { path: 'agents[3].auth.jwks.keys[1]', message: 'must be a public key (the agent keeps its private key)' },
      { path: 'agents[3].auth.jwks.keys[2]', message: 'must be a public key (the agent keeps its private key)' },
      { path: 'agents[4].clientId', message: 'duplicate client id "mail-agent" (also agents[1].clientId)' },
      { path: 'apps[0].clientId', message: 'duplicate client id "invoice-agent" (also agents[0].clientId)' },
      { path: 'apps[0].audiences[1]', message: 'unknown resource "https://nowhere.example.test" (not in resources[].id)' },
      { path: 'session.idleTtl', message: 'must not exceed session.ttl (1h)' },
    ]);
  });

  it('a redis store needs one of url, sentinel or cluster', () => {
    expect(problems(devConfig({ store: { driver: 'redis' } }))).toEqual([
      { path: 'store', message: 'a redis store needs exactly one of url, sentinel or cluster' },
    ]);
    expect(validateConfig(devConfig({
      store: { driver: 'redis', sentinel: { name: 'primary', sentinels: [{ host: '10.0.0.1', port: 26379 }] } },
    })).store).toEqual({
      driver: 'redis',
      sentinel: { name: 'primary', sentinels: [{ host: '10.0.0.1', port: 26379 }], db: 0, tls: false },
      keyPrefix: 'agentgate:',
      connectTimeout: 0.5,
      commandTimeout: 0.5,
    });
  });

  it('keys need exactly one of file or generate', () => {
    expect(problems(devConfig({ keys: {} }))).toEqual([
      { path: 'keys.file', message: 'required (or keys.generate: true in development mode)' },
    ]);
    expect(problems(devConfig({ keys: { file: 'keys.json', generate: true } }))).toEqual([
      { path: 'keys', message: 'set either keys.file or keys.generate, not both' },
    ]);
  });

  it('an agent whose scopes are within its audiences passes', () => {
    const config = validateConfig(devConfig({
      resources: [{ id: 'https://erp.example.test', scopes: ['erp:read'] }, { id: 'https://mail.example.test', scopes: ['mail:read'] }],
      agents: [
        {
          clientId: 'a',
          auth: { method: 'private_key_jwt', jwksUri: 'https://a.example.test/jwks' },
          scopes: ['erp:read', 'mail:read'],
          audiences: ['https://erp.example.test', 'https://mail.example.test'],
          delegateTo: ['b'],
        },
        { clientId: 'b', auth: { method: 'client_secret_post', secret: SECRET }, scopes: ['mail:read'] },
      ],
    }));
    expect(config.agents.map((a) => a.clientId)).toEqual(['a', 'b']);
  });
});

describe('production mode', () => {
  it.each([
    [
      'an http issuer',
      { issuer: 'http://sso.example.test' },
      'issuer',
      'must be an https URL in production mode',
    ],
    [
      'the memory store',
      { store: { driver: 'memory' } },
      'store.driver',
      '"memory" is allowed only in development mode: it loses every session and token on restart and cannot be shared by replicas; use driver: redis',
    ],
    [
      'generated keys',
      { keys: { generate: true } },
      'keys.generate',
      'generated keys are allowed only in development mode: every token dies on restart and replicas would not agree; run `agentgate keys generate --out FILE` and set keys.file',
    ],
    [
      'the development login',
      { devLogin: { enabled: true } },
      'devLogin.enabled',
      'the development test login page is refused in production mode',
    ],
    [
      'missing cookie keys',
      { cookies: undefined },
      'cookies',
      'cookies.keys is required in production mode (at least one random key of 32+ characters, newest first)',
    ],
    [
      'an http redirect URI on a non-loopback host',
      { apps: [{ clientId: 'console', redirectUris: ['http://127.0.0.1:3000/cb', 'http://console.example.test/cb'] }] },
      'apps[0].redirectUris[1]',
      'must be https (or http on a loopback host) in production mode',
    ],
    [
      'an http resource on a non-loopback host',
      {
        resources: [{ id: 'http://erp.example.test', scopes: ['erp:read'] }],
        agents: [],
      },
      'resources[0].id',
      'must be https in production mode',
    ],
  ])('refuses %s, and development mode accepts it', (_what, override, path, message) => {
    const raw = { ...productionConfig(), ...override };
    expect(problems(raw)).toEqual([{ path, message }]);
    expect(validateConfig({ ...raw, mode: 'development' }).mode).toBe('development');
  });

  it('accepts http redirect URIs on loopback hosts and custom schemes', () => {
    const config = validateConfig({
      ...productionConfig(),
      apps: [{
        clientId: 'cli',
        redirectUris: ['http://127.0.0.1:49152/cb', 'http://localhost/cb', 'http://[::1]:8000/cb', 'com.example.app:/cb'],
      }],
    });
    expect(config.apps[0]?.redirectUris).toHaveLength(4);
  });

  it('reports every refusal of one config together', () => {
    expect(problems({
      ...productionConfig(),
      issuer: 'http://sso.example.test',
      store: { driver: 'memory' },
      keys: { generate: true },
      cookies: undefined,
      devLogin: { enabled: true },
    }).map((p) => p.path)).toEqual(['issuer', 'store.driver', 'keys.generate', 'cookies', 'devLogin.enabled']);
  });
});

describe('reference expansion', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-config-'));
    await mkdir(join(dir, 'secrets'));
    await writeFile(join(dir, 'secrets', 'agent'), `${SECRET}\n`);
    await writeFile(join(dir, 'secrets', 'two-newlines'), 'value\n\n');
    await writeFile(join(dir, 'secrets', 'crlf'), 'value\r\n');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const yaml = (agentSecret: string, extra = '') => `
mode: development
issuer: \${env:ISSUER}
store:
  driver: redis
  url: \${env:REDIS_URL:-redis://127.0.0.1:6379/0}
  keyPrefix: "app:$\${literal}:"
keys: { generate: true }
agents:
  - clientId: invoice-agent
    name: "\${env:AGENT_NAME}"
    auth: { method: client_secret_basic, secret: "${agentSecret}" }
${extra}`;

  it('expands ${env:NAME}, ${env:NAME:-fallback}, $${ and ${file:…} relative to baseDir', () => {
    const config = parseConfig(yaml('${file:secrets/agent}'), {
      env: { ISSUER: 'http://127.0.0.1:9000', AGENT_NAME: 'Invoices' },
      baseDir: dir,
    });
    expect(config.issuer).toBe('http://127.0.0.1:9000');
    expect(config.store).toMatchObject({ url: 'redis://127.0.0.1:6379/0', keyPrefix: 'app:${literal}:' });
    expect(config.agents[0]).toMatchObject({ name: 'Invoices', auth: { method: 'client_secret_basic', secret: SECRET } });
  });

  it('prefers a set variable over the fallback, and treats an empty one as unset', () => {
    const env = { ISSUER: 'http://127.0.0.1:9000', AGENT_NAME: 'x' };
    const text = yaml(SECRET);
    expect(parseConfig(text, { env: { ...env, REDIS_URL: 'rediss://cache:6380' } }).store)
      .toMatchObject({ url: 'rediss://cache:6380' });
    expect(parseConfig(text, { env: { ...env, REDIS_URL: '' } }).store)
      .toMatchObject({ url: 'redis://127.0.0.1:6379/0' });
  });

  it('strips exactly one trailing newline from a file', () => {
    const config = validateConfig(devConfig({
      agents: [{ clientId: 'a', name: '${file:secrets/two-newlines}|${file:secrets/crlf}', auth: { method: 'client_secret_post', secret: SECRET } }],
    }), { baseDir: dir });
    expect(config.agents[0]?.name).toBe('value\n|value');
  });

  it('reads absolute file paths as given', () => {
    const config = validateConfig(devConfig({
      agents: [{ clientId: 'a', auth: { method: 'client_secret_post', secret: `\${file:${join(dir, 'secrets', 'agent')}}` } }],
    }), { baseDir: '/nonexistent' });
    expect(config.agents[0]?.auth).toEqual({ method: 'client_secret_post', secret: SECRET });
  });

  it('reports missing variables and unreadable files at their paths, together', () => {
    const missing = join(dir, 'secrets', 'missing');
    expect(problemsOf(() => parseConfig(yaml('${file:secrets/missing}', 'logging: { level: "${env:LOG_LEVEL}" }'), {
      env: { AGENT_NAME: 'x' },
      baseDir: dir,
    }))).toEqual([
      { path: 'issuer', message: 'environment variable ISSUER is not set' },
      { path: 'agents[0].auth.secret', message: `cannot read file ${missing} (ENOENT)` },
      { path: 'logging.level', message: 'environment variable LOG_LEVEL is not set' },
    ]);
  });

  it('reports malformed references', () => {
    expect(problems(devConfig({ issuer: 'http://127.0.0.1:${env:1PORT}', listen: { host: '${file: }' } }))).toEqual([
      { path: 'issuer', message: '"${env:1PORT}" is not a valid environment variable name' },
      { path: 'listen.host', message: '"${file:}" needs a path' },
    ]);
  });

  it('cannot inject YAML structure through an expanded value', () => {
    const config = parseConfig(yaml(SECRET), {
      env: { ISSUER: 'http://127.0.0.1:9000', AGENT_NAME: 'Invoices\n  evil: true\ndisabled: true' },
    });
    expect(config.agents[0]?.name).toBe('Invoices\n  evil: true\ndisabled: true');
    expect(config.agents[0]?.disabled).toBe(false);
    expect(config.agents[0]).not.toHaveProperty('evil');
  });

  it('expands values only, never mapping keys', () => {
    expect(problems(devConfig({ '${env:KEY}': true }), { env: { KEY: 'trustProxy' } })).toEqual([
      { path: '${env:KEY}', message: 'unknown key' },
    ]);
  });
});

describe('parseConfig', () => {
  const valid = 'mode: development\nissuer: http://127.0.0.1:8080\nstore: { driver: memory }\nkeys: { generate: true }\n';

  it('parses a YAML document', () => {
    expect(parseConfig(valid).store).toEqual({ driver: 'memory', keyPrefix: 'agentgate:' });
  });

  it('reports duplicate keys', () => {
    const error = (() => {
      try {
        parseConfig(`${valid}issuer: https://evil.example.test\n`, { source: 'gateway.yaml' });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      source: 'gateway.yaml',
      problems: [{ path: '', message: `YAML line ${valid.split('\n').length} column 1: Map keys must be unique` }],
      message: `gateway.yaml: 1 problem\n  YAML line ${valid.split('\n').length} column 1: Map keys must be unique`,
    });
  });

  it('reports YAML syntax errors', () => {
    expect(problemsOf(() => parseConfig('issuer: [http://x\nkeys: {}\n'))).toEqual([
      { path: '', message: 'YAML line 2 column 1: Flow sequence in block collection must be sufficiently indented and end with a ]' },
    ]);
  });

  it('refuses a document that is not a mapping', () => {
    for (const text of ['- a\n- b\n', 'just a string\n', '']) {
      expect(problemsOf(() => parseConfig(text))).toEqual([{ path: '', message: 'the config must be a YAML mapping' }]);
    }
  });

  it('names the source and counts the problems in the message', () => {
    const error = (() => {
      try {
        parseConfig('mode: development\n', { source: '/etc/agentgate.yaml' });
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(error.message).toBe([
      '/etc/agentgate.yaml: 3 problems',
      '  issuer: required',
      '  store: required',
      '  keys: required',
    ].join('\n'));
  });
});

describe('loadConfigFile', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'agentgate-config-file-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a file and resolves ${file:} next to it', async () => {
    await writeFile(join(dir, 'cookie.key'), `${COOKIE_KEY}\n`);
    await writeFile(join(dir, 'gateway.yaml'), [
      'mode: development',
      'issuer: ${env:ISSUER}',
      'store: { driver: memory, keyPrefix: "t:" }',
      'keys: { generate: true }',
      'cookies: { keys: ["${file:cookie.key}"] }',
      '',
    ].join('\n'));
    const config = await loadConfigFile(join(dir, 'gateway.yaml'), { env: { ISSUER: 'http://localhost:1' } });
    expect(config.issuer).toBe('http://localhost:1');
    expect(config.cookies).toEqual({ keys: [COOKIE_KEY] });
  });

  it('names the file in problems found inside it', async () => {
    const file = join(dir, 'broken.yaml');
    await writeFile(file, 'mode: development\nissuer: http://127.0.0.1\nstore: { driver: memory }\nkeys: { generate: true }\nlisten: { hots: x }\n');
    await expect(loadConfigFile(file)).rejects.toMatchObject({
      source: file,
      problems: [{ path: 'listen.hots', message: 'unknown key' }],
    });
  });

  it('reports a missing file as a ConfigError mentioning ENOENT', async () => {
    const file = join(dir, 'missing.yaml');
    const error = await loadConfigFile(file).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect(error).toMatchObject({
      code: 'ERR_CONFIG_INVALID',
      source: file,
      problems: [{ path: '', message: 'cannot read config file (ENOENT)' }],
      message: `${file}: 1 problem\n  cannot read config file (ENOENT)`,
    });
  });
});

describe('roles, role mappings, step-up and agents (policy sections)', () => {
  const resources = [
    { id: 'https://erp.example.test', scopes: ['erp:read', 'erp:approve'] },
    { id: 'https://mail.example.test', scopes: ['mail:read'] },
  ];

  it('compiles CEL conditions and applies defaults', () => {
    const config = validateConfig(devConfig({
      resources,
      roles: { reader: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'okta', group: 'Finance', when: 'email.endsWith("@example.test")', roles: ['reader'] }],
      stepUp: [{ scopes: ['erp:approve'], acr: 'mfa', maxAge: '5m' }],
    }));
    const when = config.roleMappings[0]!.when!;
    expect(when.source).toBe('email.endsWith("@example.test")');
    expect(config.stepUp[0]).toEqual({ scopes: ['erp:approve'], acr: ['mfa'], maxAge: 300 });
    expect(config.policy).toEqual({ maxDelegationDepth: 3 });
    expect(config.roleMappings[0]).toMatchObject({ deny: [], roles: ['reader'] });
  });

  it.each([
    ['a syntax error', 'email ==', /^invalid CEL expression: /],
    ['an unknown variable', 'emial == "x"', /^invalid CEL expression: unresolved attribute/],
    ['an unknown function', 'email.shout()', /^invalid CEL expression: unbound function: shout/],
    ['a type mismatch', 'email + 1 == 2', /^invalid CEL expression: found no matching overload/],
    ['a non-boolean result', 'email', /^invalid CEL expression: evaluated to string, not a boolean/],
  ])('reports %s in a condition at its path', (_what, when, message) => {
    const found = problems(devConfig({
      resources,
      roles: { reader: { scopes: ['erp:read'] } },
      roleMappings: [{ idp: 'okta', group: 'Finance', roles: ['reader'] }, { idp: 'okta', when, roles: ['reader'] }],
    }));
    expect(found).toHaveLength(1);
    expect(found[0]!.path).toBe('roleMappings[1].when');
    expect(found[0]!.message).toMatch(message);
  });

  it('accepts a condition that only fails on some identities (missing attribute)', () => {
    expect(() => validateConfig(devConfig({
      resources,
      roles: { reader: { scopes: ['erp:read'] } },
      roleMappings: [{ when: 'attributes.tid == "t1"', roles: ['reader'] }],
    }))).not.toThrow();
  });

  it('reports an invalid role name as the reason, at its path', () => {
    expect(problems(devConfig({ resources, roles: { 'bad role!': { scopes: [] } } }))).toEqual([
      { path: 'roles.bad role!', message: 'is not a valid role name (letters, digits, ".", "_", ":", "-")' },
    ]);
  });

  it('cross-checks references between roles, mappings, step-up rules and agents', () => {
    expect(problems(devConfig({
      resources,
      roles: { reader: { scopes: ['erp:read', 'erp:wrte'] } },
      roleMappings: [
        { roles: ['reader'] },
        { group: 'Finance', roles: ['reader'] },
        { idp: 'okta', group: 'A', groupName: 'B', roles: ['reader'] },
        { idp: 'okta', group: 'C' },
        { idp: 'okta', group: 'D', roles: ['ghost'], deny: ['phantom'] },
      ],
      stepUp: [{ scopes: ['erp:approve'] }, { scopes: ['erp:delete'], acr: 'mfa' }],
      agents: [{
        clientId: 'invoice-agent',
        auth: { method: 'client_secret_basic', secret: SECRET },
        scopes: ['erp:read'],
        audiences: ['https://erp.example.test'],
        actsFor: ['ghost'],
        defaultScopes: { 'https://erp.example.test': ['erp:approve'], 'https://mail.example.test': ['mail:read'] },
      }],
    }))).toEqual([
      { path: 'agents[0].actsFor[0]', message: 'unknown role "ghost" (not in roles)' },
      { path: 'agents[0].defaultScopes.https://erp.example.test[0]', message: '"erp:approve" is outside this agent\'s scopes' },
      { path: 'agents[0].defaultScopes.https://mail.example.test', message: '"https://mail.example.test" is not one of this agent\'s audiences' },
      { path: 'roles.reader.scopes[1]', message: '"erp:wrte" is not a scope of any resource' },
      { path: 'roleMappings[0]', message: 'needs at least one of idp, group, groupName or when (a mapping must not match everyone by accident)' },
      { path: 'roleMappings[1].idp', message: 'required with group/groupName: group ids and names are only meaningful within one identity provider' },
      { path: 'roleMappings[2]', message: 'set group or groupName, not both' },
      { path: 'roleMappings[3]', message: 'needs roles or deny' },
      { path: 'roleMappings[4].roles[0]', message: 'unknown role "ghost" (not in roles)' },
      { path: 'roleMappings[4].deny[0]', message: 'unknown role "phantom" (not in roles)' },
      { path: 'stepUp[0]', message: 'needs at least one of acr, amr or maxAge' },
      { path: 'stepUp[1].scopes[0]', message: '"erp:delete" is not a scope of any resource' },
    ]);
  });

  it('refuses agent scopes no resource defines, even without audiences', () => {
    expect(problems(devConfig({
      resources,
      agents: [{ clientId: 'a', auth: { method: 'client_secret_basic', secret: SECRET }, scopes: ['anything'] }],
    }))).toEqual([{ path: 'agents[0].scopes[0]', message: '"anything" is not a scope of any resource' }]);
  });

  it('reserves the gateway\'s own account client id for every kind of client', () => {
    const secretAuth = { method: 'client_secret_basic', secret: SECRET };
    expect(problems(devConfig({
      resources: [{ id: 'https://x.example.test', scopes: ['x:read'], client: { clientId: 'agentgate-account', auth: secretAuth } }],
      agents: [{ clientId: 'agentgate-account', auth: secretAuth }],
      apps: [{ clientId: 'agentgate-account', redirectUris: ['https://console.example.test/cb'] }],
      admin: { clients: [{ clientId: 'agentgate-account', auth: secretAuth }] },
    }))).toEqual(['agents[0].clientId', 'admin.clients[0].clientId', 'resources[0].client.clientId', 'apps[0].clientId'].map((path) => ({
      path, message: 'client id "agentgate-account" is reserved for the gateway\'s own sign-in to its account pages and admin console',
    })));
  });

  it('registers admin clients under unique client ids', () => {
    expect(problems(devConfig({
      agents: [{ clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }],
      admin: { clients: [{ clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }] },
    }))).toEqual([{ path: 'admin.clients[0].clientId', message: 'duplicate client id "shared" (also agents[0].clientId)' }]);
  });

  it('registers resource server clients like agents: unique ids, public keys only, one key source', () => {
    const rs = (id: string, client: Record<string, unknown>) => ({ id, scopes: ['x:read'], client });
    const config = validateConfig(devConfig({
      resources: [rs('https://x.example.test', { clientId: 'x-rs', auth: { method: 'client_secret_post', secret: SECRET } })],
    }));
    expect(config.resources[0]!.client).toEqual({ clientId: 'x-rs', auth: { method: 'client_secret_post', secret: SECRET } });
    expect(problems(devConfig({
      agents: [{ clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }],
      resources: [
        rs('https://a.example.test', { clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }),
        rs('https://b.example.test', { clientId: 'b-rs', auth: { method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', d: 'secret-part' }] } } }),
        rs('https://c.example.test', { clientId: 'c-rs', auth: { method: 'private_key_jwt' } }),
        rs('https://d.example.test', { clientId: 'd-rs', auth: { method: 'client_secret_basic', secret: 'short' }, extra: true }),
      ],
    }))).toEqual([
      { path: 'resources[3].client.auth.secret', message: 'must be at least 32 characters (generate one with `openssl rand -base64 32`)' },
      { path: 'resources[3].client.extra', message: 'unknown key' },
    ]);
    expect(problems(devConfig({
      agents: [{ clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }],
      resources: [
        rs('https://a.example.test', { clientId: 'shared', auth: { method: 'client_secret_basic', secret: SECRET } }),
        rs('https://b.example.test', { clientId: 'b-rs', auth: { method: 'private_key_jwt', jwks: { keys: [{ kty: 'EC', d: 'secret-part' }] } } }),
        rs('https://c.example.test', { clientId: 'c-rs', auth: { method: 'private_key_jwt' } }),
      ],
    }))).toEqual([
      { path: 'resources[0].client.clientId', message: 'duplicate client id "shared" (also agents[0].clientId)' },
      { path: 'resources[1].client.auth.jwks.keys[0]', message: 'must be a public key (the resource server keeps its private key)' },
      { path: 'resources[2].client.auth', message: 'private_key_jwt needs exactly one of jwks or jwksUri' },
    ]);
  });
});

describe('identity providers', () => {
  const okta = { id: 'okta', type: 'oidc', preset: 'okta', issuer: 'https://acme.okta.com/oauth2/default', clientId: 'c', clientSecret: 's', domains: ['Acme.com'] };

  it('applies preset defaults', () => {
    const config = validateConfig(devConfig({ identityProviders: [okta] }));
    expect(config.identityProviders[0]).toMatchObject({
      id: 'okta', preset: 'okta', domains: ['acme.com'], clientAuthMethod: 'client_secret_post', upstreamLogout: true,
      clockTolerance: 60, authorizationParams: {}, groupAliases: {}, claims: {},
    });
    const entra = validateConfig(devConfig({ identityProviders: [{ id: 'entra', type: 'oidc', preset: 'azure-ad', tenant: 't1', clientId: 'c', clientSecret: 's' }] }));
    expect(entra.identityProviders[0]).toMatchObject({ authority: 'https://login.microsoftonline.com', graph: { enabled: true, baseUrl: 'https://graph.microsoft.com', pageSize: 999 } });
  });

  it('validates SAML identity providers', () => {
    const metadata = { url: 'https://idp.example.com/metadata' };
    const config = validateConfig(devConfig({ identityProviders: [{ id: 'okta-saml', type: 'saml', preset: 'okta', metadata }] }));
    expect(config.identityProviders[0]).toMatchObject({
      id: 'okta-saml', type: 'saml', preset: 'okta', metadata: { url: metadata.url, refresh: 6 * 3600 }, clockSkew: 60,
      upstreamLogout: true, idpInitiated: { enabled: false }, attributes: {}, sp: {}, groupAliases: {},
    });
    expect(problems(devConfig({
      apps: [{ clientId: 'console', redirectUris: ['http://127.0.0.1/cb'] }],
      identityProviders: [
        { id: 'a', type: 'saml', preset: 'generic', metadata: {}, clockSkew: '10m' },
        { id: 'b', type: 'saml', preset: 'generic', metadata: { ...metadata, xml: '<x/>' }, sp: { signingKey: 'not a key' } },
        { id: 'c', type: 'saml', preset: 'okta', metadata, attributes: { subject: 'email' }, signAuthnRequests: true, idpInitiated: { enabled: true, app: 'nope' } },
        { id: 'd', type: 'saml', preset: 'azure-ad', metadata },
        { id: 'e', type: 'saml', preset: 'generic', metadata, idpInitiated: { enabled: true } },
        { id: 'f', type: 'saml', preset: 'generic', metadata, idpInitiated: { enabled: true, app: 'console', initiateLoginUri: 'https://console.example/login' } },
      ],
    }))).toEqual([
      { path: 'identityProviders[0].clockSkew', message: 'must be at most 5m' },
      { path: 'identityProviders[1].sp.signingKey', message: 'must be a PEM private key (use ${file:/path/to/file.pem})' },
      { path: 'identityProviders[3].tenant', message: 'required' },
    ]);
    expect(problems(devConfig({
      apps: [{ clientId: 'console', redirectUris: ['http://127.0.0.1/cb'] }],
      identityProviders: [
        { id: 'a', type: 'saml', preset: 'generic', metadata: {} },
        { id: 'b', type: 'saml', preset: 'generic', metadata: { ...metadata, xml: '<x/>' } },
        { id: 'c', type: 'saml', preset: 'okta', metadata, attributes: { subject: 'email' }, signAuthnRequests: true, idpInitiated: { enabled: true, app: 'nope', initiateLoginUri: 'https://console.example/login' } },
        { id: 'e', type: 'saml', preset: 'generic', metadata, idpInitiated: { enabled: true } },
        { id: 'f', type: 'saml', preset: 'generic', metadata, idpInitiated: { enabled: true, app: 'console', initiateLoginUri: 'https://console.example/login' } },
      ],
    }))).toEqual([
      { path: 'identityProviders[0].metadata', message: 'needs exactly one of url, file or xml' },
      { path: 'identityProviders[1].metadata', message: 'needs exactly one of url, file or xml' },
      { path: 'identityProviders[2].signAuthnRequests', message: 'needs sp.signingKey and sp.signingCert' },
      { path: 'identityProviders[2].attributes.subject', message: 'must be an immutable identifier (a persistent NameID or an id attribute), never an email address' },
      { path: 'identityProviders[2].idpInitiated.app', message: 'unknown app "nope" (not in apps)' },
      { path: 'identityProviders[3].idpInitiated.app', message: 'required when IdP-initiated sign-in is enabled: the one app people land in' },
      { path: 'identityProviders[3].idpInitiated.initiateLoginUri', message: 'required when IdP-initiated sign-in is enabled: the app URL that starts a sign-in (OIDC Core §4)' },
    ]);
    expect(problems({ ...productionConfig(), identityProviders: [{ id: 's', type: 'saml', preset: 'generic', metadata: { url: 'http://idp.example.com/md' } }] }))
      .toEqual([{ path: 'identityProviders[0].metadata.url', message: 'must be https in production mode' }]);
  });

  it('reports every problem with its path', () => {
    expect(problems(devConfig({
      identityProviders: [
        okta,
        { ...okta, id: 'okta', domains: ['acme.com'] },
        { id: 'Bad Id', type: 'oidc', preset: 'okta', issuer: 'https://x.example', clientId: 'c', clientSecret: 's' },
        { id: 'entra', type: 'oidc', preset: 'azure-ad', tenant: 'organizations', clientId: 'c', clientSecret: 's', authority: 'https://login.microsoftonline.us' },
        { id: 'google', type: 'oidc', preset: 'google-workspace', clientId: 'c', clientSecret: 's', hostedDomains: [] },
        { id: 'saml', type: 'saml', preset: 'okta' },
      ],
    }))).toEqual([
      { path: 'identityProviders[2].id', message: 'must be lowercase letters, digits and "-" (it appears in URLs)' },
      { path: 'identityProviders[4].hostedDomains', message: 'Too small: expected array to have >=1 items' },
      { path: 'identityProviders[5].metadata', message: 'required' },
    ]);
    expect(problems(devConfig({
      identityProviders: [
        okta,
        { ...okta, id: 'okta', domains: ['acme.com'] },
        { id: 'entra', type: 'oidc', preset: 'azure-ad', tenant: 'organizations', clientId: 'c', clientSecret: 's', authority: 'https://login.microsoftonline.us' },
        { id: 'google', type: 'oidc', preset: 'google-workspace', clientId: 'c', clientSecret: 's', hostedDomains: ['example.com'], directory: { serviceAccountKey: '{"client_email":"x"}', adminEmail: 'admin@example.com' } },
      ],
      roles: { reader: { scopes: [] } },
      roleMappings: [{ idp: 'octa', group: 'Finance', roles: ['reader'] }],
    }))).toEqual([
      { path: 'identityProviders[1].id', message: 'duplicate identity provider "okta"' },
      { path: 'identityProviders[1].domains[0]', message: '"acme.com" already routes to identity provider "okta"' },
      { path: 'identityProviders[2].tenants', message: 'required when tenant is "organizations": list the tenant ids allowed to sign in (a multi-tenant app otherwise admits every Entra tenant in the world)' },
      { path: 'identityProviders[2].authority', message: 'multi-tenant apps are supported on https://login.microsoftonline.com only; use a tenant id elsewhere' },
      { path: 'identityProviders[3].directory.serviceAccountKey', message: 'is not a Google service account key (the JSON file Google issues, with client_email and private_key); use ${file:/path/to/key.json}' },
      { path: 'roleMappings[0].idp', message: 'unknown identity provider "octa" (not in identityProviders)' },
    ]);
  });

  it('refuses http issuers in production mode', () => {
    const found = problems({ ...productionConfig(), identityProviders: [{ ...okta, issuer: 'http://acme.okta.com' }] });
    expect(found).toEqual([{ path: 'identityProviders[0].issuer', message: 'must be https in production mode' }]);
  });
});
