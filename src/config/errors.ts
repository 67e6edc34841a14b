// Config problems: every one carries the dotted path it is about, and all of them are
// reported together so an operator fixes a file in one pass, not one error per restart.

export interface ConfigProblem {
  /** Dotted path into the config document, e.g. `agents[2].scopes[0]`; empty for the root. */
  path: string;
  message: string;
}

export class ConfigError extends Error {
  readonly code = 'ERR_CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];
  readonly source: string;

  constructor(source: string, problems: ConfigProblem[]) {
    super(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${problems.map(formatProblem).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
    this.source = source;
  }
}

export function formatProblem({ path, message }: ConfigProblem): string {
  return path ? `  ${path}: ${message}` : `  ${message}`;
}

/** `['agents', 2, 'scopes', 0]` → `agents[2].scopes[0]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}
