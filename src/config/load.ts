// Loads the gateway config: read YAML (duplicate keys are errors), expand `${env:}`/`${file:}`,
// validate against the schema, then the cross-field rules. Either returns a complete, typed
// Config or throws one ConfigError listing every problem with its path.
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';

import { ConfigError, formatPath } from './errors.ts';
import type { ConfigProblem } from './errors.ts';
import { expandReferences } from './expand.ts';
import { checkConfig, configSchema, DEMO_IDP_PATH, oidcIdentityProviderSchema } from './schema.ts';
import type { Config, OidcIdentityProviderConfig } from './schema.ts';

export interface LoadOptions {
  env?: Readonly<Record<string, string | undefined>>;
  /** Directory `${file:}` paths resolve against (defaults to the config file's directory). */
  baseDir?: string;
  /** Top-level keys replacing the file's (the demo walkthrough serves on a free loopback port). */
  overrides?: Record<string, unknown>;
}

export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<Config> {
  const full = resolve(path);
  let text: string;
  try {
    text = await readFile(full, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(full, [{ path: '', message: `cannot read config file (${code})` }]);
  }
  return parseConfig(text, { baseDir: dirname(full), ...options, source: full });
}

export function parseConfig(text: string, options: LoadOptions & { source?: string } = {}): Config {
  const source = options.source ?? 'config';
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter });
  if (doc.errors.length > 0) {
    throw new ConfigError(source, doc.errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return { path: '', message: `YAML line ${line} column ${col}: ${e.message.split('\n')[0]}` };
    }));
  }
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, [{ path: '', message: 'the config must be a YAML mapping' }]);
  }
  return validateConfig(raw, { ...options, source });
}

export function validateConfig(raw: unknown, options: LoadOptions & { source?: string } = {}): Config {
  const source = options.source ?? 'config';
  const merged = options.overrides && raw !== null && typeof raw === 'object' && !Array.isArray(raw)
    ? { ...(raw as Record<string, unknown>), ...options.overrides }
    : raw;
  const expanded = expandReferences(merged, {
    env: options.env ?? {},
    baseDir: options.baseDir ?? process.cwd(),
  });
  const problems: ConfigProblem[] = [...expanded.problems];
  const result = configSchema.safeParse(expanded.value);
  if (!result.success) {
    const failedPaths = new Set(problems.map((p) => p.path));
    for (const issue of result.error.issues) {
      for (const problem of describeIssue(issue)) {
        if (!failedPaths.has(problem.path)) problems.push(problem);
      }
    }
    throw new ConfigError(source, problems);
  }
  const config = result.data;
  // File paths in the config resolve like `${file:}` references: against the config file's directory.
  for (const idp of config.identityProviders) {
    if (idp.type === 'saml' && idp.metadata.file !== undefined) idp.metadata.file = resolve(options.baseDir ?? process.cwd(), idp.metadata.file);
  }
  if (config.demoIdp.enabled && config.mode === 'development') {
    if (config.identityProviders.some((idp) => idp.id === config.demoIdp.id)) {
      problems.push({ path: 'demoIdp.id', message: `"${config.demoIdp.id}" is already the id of a configured identity provider` });
    } else {
      config.identityProviders.push(demoIdentityProvider(config));
    }
  }
  problems.push(...checkConfig(config));
  if (problems.length > 0) throw new ConfigError(source, problems);
  return config;
}

/**
 * The demo IdP as an ordinary OIDC identity provider (generic preset): the gateway federates it
 * over real HTTP like any other. The client secret is made per load; the in-process provider
 * registers the client with the same config object.
 */
function demoIdentityProvider(config: Config): OidcIdentityProviderConfig {
  return oidcIdentityProviderSchema.parse({
    id: config.demoIdp.id,
    type: 'oidc',
    preset: 'generic',
    displayName: config.demoIdp.displayName,
    issuer: `${config.issuer}${DEMO_IDP_PATH}`,
    clientId: 'agentgate',
    clientSecret: randomBytes(24).toString('base64url'),
    scopes: ['openid', 'email', 'profile', 'groups'],
    domains: config.demoIdp.domains,
    // The people list every time (the demo IdP's own session would otherwise skip it), and no
    // upstream logout page: signing out of the gateway is the story.
    authorizationParams: { prompt: 'login' },
    upstreamLogout: false,
    claims: { groups: 'groups' },
  }) as OidcIdentityProviderConfig;
}

function describeIssue(issue: z.core.$ZodIssue): ConfigProblem[] {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown key' }));
    case 'invalid_type':
      // zod does not keep the input on issues; its message says what was received.
      return [{
        path,
        message: /received undefined$/.test(issue.message)
          ? 'required'
          : issue.message.replace(/^Invalid input: /, '').replace('received', 'got'),
      }];
    case 'invalid_key':
      // A record key (e.g. a role name) failed its own schema: say why, not just "invalid key".
      return [{ path, message: issue.issues[0]?.message ?? issue.message }];
    case 'invalid_union':
      return [{ path, message: issue.discriminator ? `must be one of the known kinds (${issue.message.replace(/^.*Expected /, '')})` : issue.message }];
    default:
      return [{ path, message: issue.message }];
  }
}
