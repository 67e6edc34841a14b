// The package's main entry embeds the gateway in another process: config → store → keys → app,
// served on the embedder's own HTTP server (README "Development").
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { createApp, createKeyRing, createLogger, createMetrics, createStore, generateSigningKey, validateConfig } from '../../src/index.ts';

describe('agentgate (main entry)', () => {
  it('builds a working gateway from a config object', async () => {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const config = validateConfig({ mode: 'development', issuer, store: { driver: 'memory' }, keys: { generate: true }, devLogin: { enabled: true } });
    const store = createStore(config.store);
    const { handler } = createApp(config, {
      store,
      keyRing: createKeyRing({ keys: [await generateSigningKey('ES256')] }),
      logger: createLogger({ level: 'silent' }),
      metrics: createMetrics(),
    });
    server.on('request', handler);
    try {
      const discovery = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
      expect(discovery.issuer).toBe(issuer);
      expect(discovery.grant_types_supported).toContain('urn:ietf:params:oauth:grant-type:token-exchange');
    } finally {
      server.closeAllConnections();
      server.close();
      await store.close();
    }
  });
});
