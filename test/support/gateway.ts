// Starts the real gateway app (createApp) on a loopback port against the real test Redis (or the
// memory twin), with a config built for the test. Every gateway gets its own key prefix.
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';

import { inject } from 'vitest';

import { createApp } from '../../src/app.ts';
import type { GatewayApp } from '../../src/app.ts';
import { validateConfig } from '../../src/config/index.ts';
import type { Config } from '../../src/config/index.ts';
import { createKeyRing, generateSigningKey } from '../../src/keys/index.ts';
import type { KeyRing } from '../../src/keys/index.ts';
import { createLogger, createMetrics } from '../../src/ops/index.ts';
import type { Metrics } from '../../src/ops/index.ts';
import { createStore, waitUntilReachable } from '../../src/store/index.ts';
import type { Store } from '../../src/store/index.ts';

export const AGENT_SECRET = 'invoice-agent-secret-0123456789abcdef';

export interface TestGateway {
  url: string;
  /** The composed application (sessions, federation, policy) for white-box assertions. */
  gateway: GatewayApp;
  config: Config;
  store: Store;
  keyRing: KeyRing;
  metrics: Metrics;
  /** Everything the gateway logged, one JSON line per entry. */
  logs: string[];
  close(): Promise<void>;
}

export interface GatewayOptions {
  /** Extra/override config (merged shallowly over the defaults). */
  config?: Record<string, unknown>;
  store?: 'redis' | 'memory';
  redisUrl?: string;
  keyRing?: KeyRing;
  keyPrefix?: string;
  /** Fixed port (to restart "the same" gateway, keeping its issuer); default a free one. */
  port?: number;
  /** What the upstream face fetches with (a loopback internet of IdP peers). */
  fetch?: typeof fetch;
}

export function baseConfig(issuer: string, redisUrl: string, keyPrefix: string): Record<string, unknown> {
  return {
    mode: 'development',
    issuer,
    store: { driver: 'redis', url: redisUrl, keyPrefix },
    keys: { generate: true },
    devLogin: { enabled: true },
    logging: { level: 'info' },
    resources: [
      { id: 'https://erp.example.test', scopes: ['erp:read', 'erp:approve'], tokenTtl: '5m' },
      { id: 'https://mail.example.test', scopes: ['mail:read'], tokenTtl: '5m' },
    ],
    agents: [
      {
        clientId: 'invoice-agent',
        auth: { method: 'client_secret_basic', secret: AGENT_SECRET },
        scopes: ['erp:read'],
        audiences: ['https://erp.example.test'],
        maxTokenTtl: '2m',
      },
    ],
    apps: [
      {
        clientId: 'agent-console',
        redirectUris: ['http://127.0.0.1/cb'],
        audiences: ['https://erp.example.test'],
      },
    ],
  };
}

export async function startGateway(options: GatewayOptions = {}): Promise<TestGateway> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  const keyPrefix = options.keyPrefix ?? `test:${randomUUID()}:`;
  const raw = { ...baseConfig(url, options.redisUrl ?? inject('redisUrl'), keyPrefix), ...options.config };
  if (options.store === 'memory') raw.store = { driver: 'memory', keyPrefix };
  const config = validateConfig(raw);
  const logs: string[] = [];
  const logger = createLogger({
    level: 'info',
    destination: new Writable({ write(chunk, _enc, cb) { logs.push(String(chunk)); cb(); } }),
  });
  const metrics = createMetrics({ defaultMetrics: false });
  const keyRing = options.keyRing ?? createKeyRing({ keys: [await generateSigningKey('ES256')] });
  const store = createStore(config.store, { onError: (operation) => metrics.storeErrors.inc({ operation }) });
  if (!(await waitUntilReachable(store))) throw new Error(`test store unreachable (${config.store.driver})`);
  const gateway = createApp(config, { store, keyRing, logger, metrics, ...(options.fetch ? { fetch: options.fetch } : {}) });
  const { handler } = gateway;
  server.on('request', handler);
  return {
    url, gateway, config, store, keyRing, metrics, logs,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await store.close();
    },
  };
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export async function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    body = { raw: text };
  }
  return { status: res.status, headers: res.headers, body };
}
