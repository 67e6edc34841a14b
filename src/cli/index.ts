// The `agentgate` command: argv parsing and the commands that need no server (check-config,
// keys). `serve` is handed in by main.ts, the only place that opens sockets and Redis.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { explainInput, explainRequestSchema } from '../admin/index.ts';
import { ConfigError, formatDuration, loadConfigFile } from '../config/index.ts';
import { createOidcConnector, createSamlConnector } from '../federation/index.ts';
import type { ProbeCheck } from '../federation/index.ts';
import { createLogger } from '../ops/index.ts';
import { createPolicy, decisionToJson, formatDecision } from '../policy/index.ts';
import { keysGenerate, keysRotate } from '../keys/index.ts';
import type { CliIo } from '../keys/index.ts';
import { runAdminCommand } from './admin.ts';
import { createStyle, withProgress } from './style.ts';

export interface CliDeps extends CliIo {
  env: Readonly<Record<string, string | undefined>>;
  /** What `idp test` and the admin commands fetch with (tests route it to loopback peers). */
  fetch?: typeof fetch;
  serve: (configPath: string) => Promise<number>;
  /** `demo walkthrough`: starts the demo gateway in-process on a free loopback port and runs the story. */
  walkthrough?: (configPath: string) => Promise<number>;
  version: string;
}

export const USAGE = `usage: agentgate <command> [options]

commands:
  serve --config FILE                 start the gateway
  check-config --config FILE          validate a config; print every problem with its path (exit 2)
  keys generate --out FILE [--alg ES256|EdDSA|RS256] [--force]
                                      write a new private JWKS (mode 0600)
  keys rotate --file FILE [--alg ALG] [--keep N]
                                      add a new signing key (newest signs, all verify);
                                      --keep retires all but the N newest
  explain --config FILE --identity FILE --agent ID [--scope "a b"] [--audience URL]
          [--subject-scope "a b" --actors a,b --subject-exp EPOCH] [--now EPOCH] [--all] [--json]
                                      what would this agent get for this person, and why;
                                      exit 0 grant, 3 refused or step-up
  idp test --config FILE [ID]         check each identity provider: discovery, issuer, JWKS,
                                      redirect URI, Graph / Directory credentials; exit 3 if any fails
  sessions list [--limit N] [--cursor C]
                                      every live session, newest first, N a page (default 50, at
                                      most 200), with the agents holding tokens from each
  sessions list --sub SUBJECT         a person's live sessions and the agents holding tokens from each
  sessions revoke SID | --sub SUBJECT end one session, or every session of a person (their tokens die)
  agents disable CLIENT_ID            kill switch: no new tokens; its tokens and those it delegated die
  agents enable CLIENT_ID             new tokens work again (old ones stay revoked)
                                      these talk to a running gateway's admin API:
                                      --url ISSUER (or $AGENTGATE_URL), --client-id ID --client-secret S
                                      (or $AGENTGATE_ADMIN_CLIENT_ID, $AGENTGATE_ADMIN_CLIENT_SECRET),
                                      --json; exit 3 when the gateway refuses (unknown session or agent)
  demo walkthrough [--config FILE]    the whole story against a demo gateway started in-process:
                                      sign-in through the demo IdP, two agents, a sub-agent, a refused
                                      escalation explained, logout, every token rejected
                                      (--config defaults to config/demo.yaml); exit 3 if a step fails
  help, --help                        this text
  version, --version                  print the version

--config defaults to $AGENTGATE_CONFIG, else config/gateway.yaml.`;

const EXIT_USAGE = 2;

export async function runCli(argv: readonly string[], deps: CliDeps): Promise<number> {
  const [command, ...rest] = argv;
  const configPath = (values: { config?: string }) =>
    values.config ?? deps.env.AGENTGATE_CONFIG ?? 'config/gateway.yaml';

  try {
    switch (command) {
      case 'serve': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
        return await deps.serve(configPath(values));
      }
      case 'check-config': {
        const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } }, strict: true });
        return await checkConfig(configPath(values), deps);
      }
      case 'keys': {
        const [sub, ...args] = rest;
        if (sub === 'generate') {
          const { values } = parseArgs({
            args, strict: true,
            options: { out: { type: 'string', short: 'o' }, alg: { type: 'string' }, force: { type: 'boolean' } },
          });
          if (!values.out) return usage(deps, 'keys generate needs --out FILE');
          return await withProgress(`generating a ${values.alg ?? 'ES256'} signing key`, deps,
            () => keysGenerate({ out: values.out!, alg: values.alg, force: values.force ?? false }, deps));
        }
        if (sub === 'rotate') {
          const { values } = parseArgs({
            args, strict: true,
            options: { file: { type: 'string', short: 'f' }, alg: { type: 'string' }, keep: { type: 'string' } },
          });
          if (!values.file) return usage(deps, 'keys rotate needs --file FILE');
          return await withProgress(`rotating ${values.file}`, deps, () => keysRotate({ file: values.file!, alg: values.alg, keep: values.keep }, deps));
        }
        return usage(deps, sub ? `unknown keys command "${sub}"` : 'keys needs a command: generate or rotate');
      }
      case 'explain':
        return await explain(rest, deps, configPath);
      case 'idp': {
        const [sub, ...args] = rest;
        if (sub !== 'test') return usage(deps, sub ? `unknown idp command "${sub}"` : 'idp needs a command: test');
        const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { config: { type: 'string', short: 'c' } } });
        return await idpTest(configPath(values), positionals[0], deps);
      }
      case 'sessions':
      case 'agents':
        return await runAdminCommand(command, rest, deps, (problem) => usage(deps, problem));
      case 'demo': {
        const [sub, ...args] = rest;
        if (sub !== 'walkthrough') return usage(deps, sub ? `unknown demo command "${sub}"` : 'demo needs a command: walkthrough');
        const { values } = parseArgs({ args, strict: true, options: { config: { type: 'string', short: 'c' } } });
        if (!deps.walkthrough) return usage(deps, 'demo walkthrough is not available here');
        return await deps.walkthrough(values.config ?? 'config/demo.yaml');
      }
      case 'version':
      case '--version':
        deps.stdout(deps.version);
        return 0;
      case 'help':
      case '--help':
      case '-h':
        deps.stdout(USAGE);
        return 0;
      default:
        return usage(deps, command ? `unknown command "${command}"` : 'a command is required');
    }
  } catch (error) {
    // parseArgs rejects unknown options and missing values with a TypeError.
    if ((error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) return usage(deps, (error as Error).message);
    throw error;
  }
}

function usage(io: CliIo, problem: string): number {
  io.stderr(`agentgate: ${problem}`);
  io.stderr(USAGE);
  return EXIT_USAGE;
}

async function checkConfig(path: string, deps: CliDeps): Promise<number> {
  const config = await loadConfigOrReport(path, deps);
  if (!config) return EXIT_USAGE;
  deps.stdout(`${path}: OK (${config.mode} mode, issuer ${config.issuer}, store ${config.store.driver}, ` +
    `${config.apps.length} app(s), ${config.agents.length} agent(s), ${config.resources.length} resource(s), ` +
    `${Object.keys(config.roles).length} role(s), ${config.roleMappings.length} role mapping(s), ` +
    `session ${formatDuration(config.session.ttl)})`);
  return 0;
}

const EXIT_REFUSED = 3;

async function explain(args: readonly string[], deps: CliDeps, configPath: (v: { config?: string }) => string): Promise<number> {
  const { values } = parseArgs({
    args: [...args], strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      identity: { type: 'string' },
      agent: { type: 'string' },
      scope: { type: 'string' },
      audience: { type: 'string' },
      'subject-scope': { type: 'string' },
      actors: { type: 'string' },
      'subject-exp': { type: 'string' },
      'session-exp': { type: 'string' },
      dpop: { type: 'boolean' },
      now: { type: 'string' },
      all: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  if (!values.identity || !values.agent) return usage(deps, 'explain needs --identity FILE and --agent ID');
  const config = await loadConfigOrReport(configPath(values), deps);
  if (!config) return EXIT_USAGE;

  let identity: unknown;
  try {
    identity = JSON.parse(await readFile(values.identity, 'utf8'));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    deps.stderr(`agentgate: cannot read identity ${values.identity} (${code ?? 'not valid JSON'})`);
    return EXIT_USAGE;
  }
  const int = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const parsed = explainRequestSchema.safeParse({
    identity,
    agent: values.agent,
    ...(values.scope !== undefined ? { scope: values.scope } : {}),
    ...(values.audience !== undefined ? { audience: values.audience } : {}),
    ...(values['subject-scope'] !== undefined || values.actors !== undefined ? {
      subjectToken: {
        scopes: values['subject-scope'] ?? '',
        actors: (values.actors ?? '').split(',').map((a) => a.trim()).filter(Boolean),
        expiresAt: int(values['subject-exp']) ?? Number.MAX_SAFE_INTEGER,
      },
    } : {}),
    ...(values['session-exp'] !== undefined ? { sessionExpiresAt: int(values['session-exp']) } : {}),
    ...(values.dpop !== undefined ? { dpop: values.dpop } : {}),
    ...(values.now !== undefined ? { now: int(values.now) } : {}),
    all: values.all ?? false,
  });
  if (!parsed.success) {
    for (const issue of parsed.error.issues) deps.stderr(`  ${issue.path.join('.')}: ${issue.message}`);
    return EXIT_USAGE;
  }
  const decision = createPolicy(config).decide(explainInput(parsed.data, Math.floor(Date.now() / 1000)));
  deps.stdout(values.json ? JSON.stringify(decisionToJson(decision), null, 2) : formatDecision(decision));
  return decision.outcome === 'grant' ? 0 : EXIT_REFUSED;
}

async function loadConfigOrReport(path: string, deps: CliDeps) {
  try {
    return await loadConfigFile(path, { env: deps.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split('\n')) deps.stderr(line);
    return undefined;
  }
}

async function idpTest(path: string, only: string | undefined, deps: CliDeps): Promise<number> {
  const config = await loadConfigOrReport(path, deps);
  if (!config) return EXIT_USAGE;
  const idps = config.identityProviders.filter((idp) => !only || idp.id === only);
  if (idps.length === 0) {
    deps.stderr(only ? `agentgate: no identity provider "${only}" in ${path}` : `agentgate: ${path} configures no identity providers`);
    return EXIT_USAGE;
  }
  const style = createStyle(deps.color === true);
  let failed = 0;
  for (const idp of idps) {
    const common = { fetch: deps.fetch ?? fetch, now: () => Math.floor(Date.now() / 1000), logger: createLogger({ level: 'silent' }) };
    const connector = idp.type === 'saml'
      ? createSamlConnector(idp, { ...common, issuer: config.issuer })
      : createOidcConnector(idp, {
        ...common,
        redirectUri: `${config.issuer}/federation/oidc/${idp.id}/callback`,
        allowInsecureLoopback: config.mode === 'development',
      });
    // Discovery, JWKS, metadata and directory look-ups can take seconds: say so at a terminal.
    const checks: ProbeCheck[] = await withProgress(`checking ${idp.id}`, deps, () => connector.probe());
    deps.stdout(style.bold(`${idp.id} (${idp.preset})`));
    for (const check of checks) {
      if (!check.ok) failed += 1;
      deps.stdout(`  ${check.ok ? style.ok('✓') : style.fail('✗')} ${check.name}: ${check.ok ? check.message : style.fail(check.message)}`);
    }
  }
  deps.stdout(failed === 0
    ? style.ok(`all checks passed (${idps.length} identity ${idps.length === 1 ? 'provider' : 'providers'})`)
    : style.fail(`${failed} ${failed === 1 ? 'check' : 'checks'} failed`));
  return failed === 0 ? 0 : EXIT_REFUSED;
}
