// The `agentgate` command: argv parsing and the commands that need no server (check-config,
// keys). `serve` is handed in by main.ts, the only place that opens sockets and Redis.
import { parseArgs } from 'node:util';

import { ConfigError, formatDuration, loadConfigFile } from '../config/index.ts';
import { keysGenerate, keysRotate } from '../keys/index.ts';
import type { CliIo } from '../keys/index.ts';

export interface CliDeps extends CliIo {
  env: Readonly<Record<string, string | undefined>>;
  serve: (configPath: string) => Promise<number>;
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
          return await keysGenerate({ out: values.out, alg: values.alg, force: values.force ?? false }, deps);
        }
        if (sub === 'rotate') {
          const { values } = parseArgs({
            args, strict: true,
            options: { file: { type: 'string', short: 'f' }, alg: { type: 'string' }, keep: { type: 'string' } },
          });
          if (!values.file) return usage(deps, 'keys rotate needs --file FILE');
          return await keysRotate({ file: values.file, alg: values.alg, keep: values.keep }, deps);
        }
        return usage(deps, sub ? `unknown keys command "${sub}"` : 'keys needs a command: generate or rotate');
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
  try {
    const config = await loadConfigFile(path, { env: deps.env });
    deps.stdout(`${path}: OK (${config.mode} mode, issuer ${config.issuer}, store ${config.store.driver}, ` +
      `${config.apps.length} app(s), ${config.agents.length} agent(s), ${config.resources.length} resource(s), ` +
      `session ${formatDuration(config.session.ttl)})`);
    return 0;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split('\n')) deps.stderr(line);
    return EXIT_USAGE;
  }
}
