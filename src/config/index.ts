// Public surface of the config module: load once, strictly, at start.
export { loadConfigFile, parseConfig, validateConfig } from './load.ts';
export type { LoadOptions } from './load.ts';
export { ConfigError, formatProblem } from './errors.ts';
export type { ConfigProblem } from './errors.ts';
export { parseDuration, formatDuration } from './duration.ts';
export { ACCOUNT_CLIENT_ID, DEMO_IDP_PATH } from './schema.ts';
export type { AdminClientConfig, AgentConfig, DemoPersonConfig, AppConfig, Config, ConfigInput, IdentityProviderConfig, OidcIdentityProviderConfig, ResourceClientConfig, SamlIdentityProviderConfig, ResourceConfig, RoleMappingConfig, StepUpConfig, StoreConfig } from './schema.ts';
export { compileCondition, CEL_VARIABLES } from './cel.ts';
export type { CelBindings, CompiledCondition, ConditionResult } from './cel.ts';
export { parseServiceAccountKey } from './service-account.ts';
export type { ServiceAccountKey } from './service-account.ts';
