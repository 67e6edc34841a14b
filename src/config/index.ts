// Public surface of the config module: load once, strictly, at start.
export { loadConfigFile, parseConfig, validateConfig } from './load.ts';
export type { LoadOptions } from './load.ts';
export { ConfigError, formatProblem } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export { parseDuration, formatDuration } from './duration.ts';
export type { AgentConfig, AppConfig, Config, ConfigInput, ResourceConfig, StoreConfig } from './schema.ts';
