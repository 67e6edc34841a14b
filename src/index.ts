// The package's main entry (`import … from 'agentgate'`): what it takes to embed the gateway in
// your own Node process instead of running `agentgate serve` — load and validate a config, open
// the store, load the keys, and mount the app on your own HTTP server. The SDK for resource
// servers and agents is `agentgate/client`.
export { createApp } from './app.ts';
export type { AppDeps, GatewayApp } from './app.ts';
export { ConfigError, loadConfigFile, parseConfig, validateConfig } from './config/index.ts';
export type { Config } from './config/index.ts';
export { createKeyRing, generateSigningKey, readKeyFile } from './keys/index.ts';
export type { KeyRing } from './keys/index.ts';
export { createLogger, createMetrics } from './ops/index.ts';
export type { Logger, Metrics } from './ops/index.ts';
export { createStore, waitUntilReachable } from './store/index.ts';
export type { Store } from './store/index.ts';
