// The feed's stream mechanics with a controlled verifier and the memory store: keep-alive
// comments, the end of the stream when the caller's token expires, close() for graceful shutdown,
// and a store outage ending the stream (the client reconnects and learns of the outage).
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';

import type { AccessTokenClaims, AccessTokenVerifier } from '../authz/index.ts';
import { createLogger } from '../ops/index.ts';
import { createMemoryStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import { createRevocationFeed, REVOCATIONS_SCOPE } from './feed.ts';
import { createRevocationService } from './service.ts';

const ISSUER = 'https://sso.example.test';

function verifier(exp: () => number): AccessTokenVerifier {
  const claims = (): AccessTokenClaims => ({
    jti: 'feed-token', iat: 1, exp: exp(), client_id: 'erp-rs', scope: REVOCATIONS_SCOPE, aud: `${ISSUER}/revocations`,
  });
  return {
    verify: async (token: string, options?: { audience?: string }) => (token === 'good' && options?.audience === `${ISSUER}/revocations` ? claims() : undefined),
    isRevoked: ((_claims: AccessTokenClaims, values?: readonly unknown[]) => (values ? false : Promise.resolve(false))) as AccessTokenVerifier['isRevoked'],
    revocationKeys: () => [],
    revoke: async () => {},
  };
}

let servers: Server[] = [];
afterEach(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  servers = [];
});

async function serve(options: { store?: Store; exp?: () => number; keepAliveMs?: number } = {}) {
  const store = options.store ?? createMemoryStore();
  const revocations = createRevocationService({ store, longestTokenLifetime: 600 });
  const feed = createRevocationFeed({
    issuer: ISSUER, revocations, tokens: verifier(options.exp ?? (() => Math.floor(Date.now() / 1000) + 300)),
    clients: ['erp-rs'], logger: createLogger({ level: 'silent' }), keepAliveMs: options.keepAliveMs ?? 60_000,
  });
  const app = express();
  app.use('/revocations', feed.router);
  const server = createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/revocations/feed`;
  return { feed, revocations, url };
}

/** Reads the stream until it ends (or `stop` is aborted); resolves to everything received. */
async function read(url: string, stop?: AbortSignal): Promise<string> {
  const res = await fetch(url, { headers: { authorization: 'Bearer good' }, ...(stop ? { signal: stop } : {}) });
  expect(res.status).toBe(200);
  let text = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
  } catch (error) {
    if ((error as Error).name !== 'AbortError') throw error;
  }
  return text;
}

describe('revocation feed stream', () => {
  it('sends a keep-alive comment at the interval', async () => {
    const { url } = await serve({ keepAliveMs: 40 });
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 200);
    const text = await read(url, stop.signal);
    expect(text.startsWith('retry: 2000\n\n: keep-alive\n\n')).toBe(true);
    expect(text.split(': keep-alive\n\n').length - 1).toBeGreaterThanOrEqual(2);
  });

  it('ends when the token that opened it expires', async () => {
    const { url, feed } = await serve({ exp: () => Math.floor(Date.now() / 1000) + 1 });
    const started = Date.now();
    const text = await read(url);
    expect(Date.now() - started).toBeLessThan(2100);
    expect(text).toBe('retry: 2000\n\n');
    expect(feed.connections()).toBe(0);
  });

  it('close() ends every open stream (graceful shutdown)', async () => {
    const { url, feed, revocations } = await serve();
    const reading = [read(url), read(url)];
    await expect.poll(() => feed.connections()).toBe(2);
    const event = await revocations.revokeSubject('dev|x', 'admin');
    feed.close();
    const texts = await Promise.all(reading);
    for (const text of texts) expect(text).toBe(`retry: 2000\n\nid: ${event.id}\nevent: revocation\ndata: ${JSON.stringify(event)}\n\n`);
    expect(feed.connections()).toBe(0);
  });

  it('a store that stops answering ends the stream at the next read', async () => {
    const store = createMemoryStore();
    let down = false;
    const flaky: Store = {
      ...store,
      readStreamAfter: (...args) => (down ? Promise.reject(new Error('down')) : store.readStreamAfter(...args)),
    };
    const { url, feed } = await serve({ store: flaky, keepAliveMs: 30 });
    const reading = read(url);
    await expect.poll(() => feed.connections()).toBe(1);
    down = true;
    expect(await reading).toMatch(/^retry: 2000\n\n(: keep-alive\n\n)+$/);
    expect(feed.connections()).toBe(0);
  });
});
