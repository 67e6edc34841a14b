// The process entry: the only file that reads process.env and argv, opens Redis, listens and
// handles SIGTERM/SIGINT. Everything else receives what it needs as arguments.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { createApp } from './app.ts';
import { runWalkthrough } from './demo/index.ts';
import { runCli } from './cli/index.ts';
import { colorFor } from './cli/style.ts';
import { ConfigError, loadConfigFile } from './config/index.ts';
import type { Config } from './config/index.ts';
import { warmUpIdentityProviders } from './federation/index.ts';
import { createKeyRing, generateSigningKey, KeyFileError, readKeyFile } from './keys/index.ts';
import type { KeyRing } from './keys/index.ts';
import { createGracefulShutdown, createLogger, createMetrics } from './ops/index.ts';
import type { Logger } from './ops/index.ts';
import { createStore, waitUntilReachable } from './store/index.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function loadKeys(config: Config, logger: Logger): Promise<KeyRing> {
  if (config.keys.file) return createKeyRing(await readKeyFile(config.keys.file));
  logger.warn({ alg: config.keys.alg }, 'development mode: generated an in-memory signing key; tokens die with this process');
  return createKeyRing({ keys: [await generateSigningKey(config.keys.alg)] });
}


export async function serve(configPath: string): Promise<number> {
  let config: Config;
  try {
    config = await loadConfigFile(configPath, { env: process.env });
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const line of error.message.split('\n')) err(line);
    err('agentgate: refusing to start with an invalid config');
    return 2;
  }

  const logger = createLogger({ level: config.logging.level });
  const metrics = createMetrics();
  let keyRing: KeyRing;
  try {
    keyRing = await loadKeys(config, logger);
  } catch (error) {
    if (!(error instanceof KeyFileError)) throw error;
    for (const line of error.message.split('\n')) err(line);
    return 2;
  }
  const store = createStore(config.store, {
    onError: (operation) => metrics.storeErrors.inc({ operation }),
  });
  // Wait briefly so the first requests do not fail; never block start for long (Kubernetes
  // keeps the pod unready through /readyz meanwhile, and the client keeps reconnecting).
  if (!(await waitUntilReachable(store, 5000))) {
    logger.error('store unreachable at start; answering 503 until it is (see /readyz)');
  }

  const server = createServer();
  // Created before the app is attached, so it sees every request first (in-flight tracking).
  const graceful = createGracefulShutdown({
    server,
    timeoutMs: config.shutdown.timeout * 1000,
    logger,
    // Revocation feed streams end at once (their clients reconnect to another replica).
    onDraining: [() => gateway.revocationFeed.close()],
    onClosed: [() => gateway.revocations.close(), () => store.close()],
  });
  const gateway = createApp(config, { store, keyRing, logger, metrics, draining: () => graceful.draining() });
  const { handler } = gateway;
  server.on('request', handler);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  logger.info({ issuer: config.issuer, host: config.listen.host, port, mode: config.mode, keyId: keyRing.signingKey.kid }, 'agentgate listening');
  if (config.mode === 'development') printDevelopmentBanner(config, configPath, port);
  // In the background: metadata and keys are fetched now rather than at the first sign-in.
  void warmUpIdentityProviders(gateway.federation.connectors.values(), logger);

  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      void graceful.shutdown(signal).then(() => resolve(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

function printDevelopmentBanner(config: Config, configPath: string, port: number): void {
  const agent = config.agents.find((a) => a.auth.method !== 'private_key_jwt' && a.audiences.length > 0);
  const lines = [
    '',
    `agentgate is running in DEVELOPMENT mode (listening on ${config.listen.host}:${port})`,
    `  issuer:     ${config.issuer}`,
    `  discovery:  ${config.issuer}/.well-known/openid-configuration`,
    `  JWKS:       ${config.issuer}/jwks`,
  ];
  if (agent) {
    const index = config.agents.indexOf(agent);
    // Secrets are never printed, not even the demo's: the banner says where to find it.
    lines.push(
      '',
      'Try it: get a token for an agent, then introspect it',
      `  export AGENT_SECRET=...   # agents[${index}].auth.secret in ${configPath}`,
      `  curl -s -u ${agent.clientId}:$AGENT_SECRET -d grant_type=client_credentials -d scope=${agent.scopes[0] ?? ''} ${config.issuer}/token`,
      `  curl -s -u ${agent.clientId}:$AGENT_SECRET -d token=ACCESS_TOKEN ${config.issuer}/token/introspection`,
    );
  }
  const app = config.apps[0];
  const signIn = app ? `${config.issuer}/auth?client_id=${app.clientId}&response_type=code&scope=openid%20email&redirect_uri=${encodeURIComponent(app.redirectUris[0] ?? '')}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256` : undefined;
  if (config.demoIdp.enabled && signIn) {
    const person = config.demoIdp.people[0];
    const admin = config.demoIdp.people.find((p) => config.roleMappings.some((m) => m.idp === config.demoIdp.id && m.group !== undefined
      && p.groups.includes(m.group) && m.roles.some((role) => config.admin.roles.includes(role))));
    lines.push(
      '',
      `Demo:         ${config.issuer}/demo`,
      `Demo IdP:     ${config.issuer}/demo-idp (people: ${config.demoIdp.people.map((p) => p.username).join(', ')})`,
      `My agents:    ${config.issuer}/account/agents`,
      `Admin:        ${config.issuer}/admin${admin ? ` (sign in as ${admin.name})` : ''}`,
      '',
      'Walkthrough, in three steps:',
      `  1. Sign in: open ${config.issuer}/demo and follow "Sign in to the agent console";`,
      `     choose "Sign in with ${config.demoIdp.displayName}" (or type ${person?.email ?? 'a demo email'}) and pick ${person?.name ?? 'a person'}.`,
      `  2. Watch agents get narrow tokens: npx agentgate demo walkthrough --config ${configPath}`,
      '     runs the whole story over HTTP: two agents (one asks for consent), a sub-agent, a refused',
      '     escalation and why.',
      `  3. Sign out (${config.issuer}/session/end) and every agent token of that session is rejected`,
      '     at introspection (the walkthrough\'s last step shows it); My agents revokes one agent alone.',
    );
  } else if (signIn && config.devLogin.enabled) {
    lines.push('', `Sign in (test login page): open ${signIn}`);
  }
  out(lines.join('\n'));
}

/**
 * `agentgate demo walkthrough`: the demo config served in-process on a free loopback port (its
 * issuer, and so the demo IdP's, follow the port), the story run against it over HTTP, then closed.
 */
export async function walkthrough(configPath: string, io: { stdout: (line: string) => void; stderr: (line: string) => void; color: boolean; env: Readonly<Record<string, string | undefined>> } = { stdout: out, stderr: err, color: colorFor(process.stdout, process.env), env: process.env }): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}`;
  try {
    let config: Config;
    try {
      config = await loadConfigFile(configPath, { env: io.env, overrides: { issuer, listen: { host: '127.0.0.1', port }, logging: { level: 'silent' } } });
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const line of error.message.split('\n')) io.stderr(line);
      io.stderr('agentgate: the walkthrough needs a valid development-mode demo config');
      return 2;
    }
    if (!config.demoIdp.enabled) {
      io.stderr(`agentgate: ${configPath} has no demo IdP (demoIdp.enabled); the walkthrough runs against the demo config`);
      return 2;
    }
    const logger = createLogger({ level: 'silent' });
    const keyRing = createKeyRing({ keys: [await generateSigningKey(config.keys.alg)] });
    const store = createStore(config.store, {});
    const gateway = createApp(config, { store, keyRing, logger, metrics: createMetrics({ defaultMetrics: false }) });
    server.on('request', gateway.handler);
    try {
      const result = await runWalkthrough({
        issuer, config, policy: gateway.policy, stdout: io.stdout, color: io.color,
        identityOf: async (sid) => (await gateway.sessions.get(sid))?.identity,
      });
      return result.ok ? 0 : 3;
    } finally {
      await gateway.revocations.close();
      await store.close();
    }
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export async function main(): Promise<void> {
  const code = await runCli(process.argv.slice(2), {
    env: process.env,
    stdout: out,
    stderr: err,
    color: colorFor(process.stdout, process.env),
    serve,
    walkthrough: (configPath) => walkthrough(configPath),
    version: packageVersion(),
  });
  process.exitCode = code;
}
