import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createGracefulShutdown, createLogger } from './index.ts';
import type { GracefulShutdown, Logger } from './index.ts';

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

interface Reply {
  status: number | undefined;
  connection: string | undefined;
  body: string;
}

function get(port: number, path: string, agent: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode, connection: res.headers.connection, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

function connect(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

interface Harness {
  port: number;
  server: http.Server;
  agent: http.Agent;
  logs: Array<Record<string, unknown>>;
  logger: Logger;
  /** Resolves once /slow has been entered; the handler answers when `release` is resolved. */
  entered: Deferred<void>;
  release: Deferred<void>;
}

const servers: http.Server[] = [];
const agents: http.Agent[] = [];
const releases: Array<Deferred<void>> = [];
const streams = new Set<() => void>();

afterEach(async () => {
  for (const r of releases.splice(0)) r.resolve();
  for (const a of agents.splice(0)) a.destroy();
  for (const s of servers.splice(0)) {
    if (s.listening) {
      s.closeAllConnections();
      s.close();
      await once(s, 'close');
    }
  }
});

async function start(): Promise<Harness> {
  const logs: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: 'info',
    destination: { write: (m: string) => void logs.push(JSON.parse(m) as Record<string, unknown>) },
  });
  const entered = deferred();
  const release = deferred();
  releases.push(release);
  const app = express();
  app.get('/slow', async (_req, res) => {
    entered.resolve();
    await release.promise;
    res.json({ done: true });
  });
  app.get('/fast', (_req, res) => {
    res.json({ fast: true });
  });
  // A long-lived response (an event stream): it ends only when `streams` says so.
  app.get('/stream', (_req, res) => {
    res.status(200).set('Content-Type', 'text/event-stream');
    res.flushHeaders();
    res.write(': open\n\n');
    streams.add(() => res.end());
  });
  const server = http.createServer(app);
  // Long enough that an idle keep-alive connection left open would outlast the test.
  server.keepAliveTimeout = 60_000;
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const agent = new http.Agent({ keepAlive: true });
  agents.push(agent);
  return { port: (server.address() as AddressInfo).port, server, agent, logs, logger, entered, release };
}

function messages(logs: Array<Record<string, unknown>>, msg: string): Array<Record<string, unknown>> {
  return logs.filter((l) => l['msg'] === msg);
}

describe('createGracefulShutdown', () => {
  it('lets an in-flight request finish with Connection: close while refusing new connections', async () => {
    const h = await start();
    const events: string[] = [];
    const sd: GracefulShutdown = createGracefulShutdown({
      server: h.server,
      timeoutMs: 10_000,
      logger: h.logger,
      onClosed: [
        async () => {
          events.push(`hook listening=${h.server.listening} inFlight=${sd.inFlight()}`);
        },
      ],
    });

    const slow = get(h.port, '/slow', h.agent);
    await h.entered.promise;
    expect(sd.inFlight()).toBe(1);
    expect(sd.draining()).toBe(false);

    const done = sd.shutdown('SIGTERM');
    expect(sd.draining()).toBe(true);
    await expect(connect(h.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(events).toEqual([]);

    h.release.resolve();
    expect(await slow).toEqual({ status: 200, connection: 'close', body: '{"done":true}' });
    await done;
    expect(events).toEqual(['hook listening=false inFlight=0']);
    expect(messages(h.logs, 'shutdown started')).toMatchObject([{ signal: 'SIGTERM', inFlight: 1 }]);
    expect(messages(h.logs, 'shutdown complete')).toMatchObject([{ signal: 'SIGTERM', forced: false, hookFailures: 0 }]);
  });

  it('closes idle keep-alive connections at once instead of waiting for them', async () => {
    const h = await start();
    const sd = createGracefulShutdown({ server: h.server, timeoutMs: 60_000, logger: h.logger });

    // One keep-alive connection left idle in the agent's pool, one busy with /slow.
    const idleAgent = new http.Agent({ keepAlive: true });
    agents.push(idleAgent);
    expect(await get(h.port, '/fast', idleAgent)).toMatchObject({ status: 200, connection: 'keep-alive' });
    const idle = Object.values(idleAgent.freeSockets).flat();
    expect(idle).toHaveLength(1);
    const idleClosed = once(idle[0] as net.Socket, 'close');

    const slow = get(h.port, '/slow', h.agent);
    await h.entered.promise;
    const done = sd.shutdown('SIGTERM');

    // Closed while /slow is still running, so nothing but closeIdleConnections did it.
    await idleClosed;
    expect(sd.inFlight()).toBe(1);

    h.release.resolve();
    expect(await slow).toMatchObject({ status: 200, connection: 'close' });
    await done;
    expect(messages(h.logs, 'shutdown complete')).toMatchObject([{ forced: false }]);
  });

  it('does not wait for an idle keep-alive connection when nothing is in flight', async () => {
    const h = await start();
    const sd = createGracefulShutdown({ server: h.server, timeoutMs: 60_000, logger: h.logger });
    expect(await get(h.port, '/fast', h.agent)).toMatchObject({ status: 200, connection: 'keep-alive' });
    expect(Object.values(h.agent.freeSockets).flat()).toHaveLength(1);

    await sd.shutdown('SIGTERM');
    expect(h.server.listening).toBe(false);
    expect(messages(h.logs, 'shutdown complete')).toMatchObject([{ forced: false, hookFailures: 0 }]);
  });

  it('cuts a request that outlives timeoutMs, then still runs every hook', async () => {
    const h = await start();
    const ran: string[] = [];
    const sd = createGracefulShutdown({
      server: h.server,
      timeoutMs: 50,
      logger: h.logger,
      onClosed: [
        async () => {
          ran.push('audit');
          throw new Error('flush failed');
        },
        async () => {
          ran.push('redis');
        },
      ],
    });

    const slow = get(h.port, '/slow', h.agent);
    await h.entered.promise;
    await sd.shutdown('SIGTERM');

    await expect(slow).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(sd.inFlight()).toBe(0);
    expect(ran).toEqual(['audit', 'redis']);
    expect(messages(h.logs, 'shutdown deadline reached; cut in-flight requests')).toMatchObject([{ cut: 1 }]);
    expect(messages(h.logs, 'shutdown hook failed')).toMatchObject([{ hook: 0, err: { message: 'flush failed' } }]);
    expect(messages(h.logs, 'shutdown complete')).toMatchObject([{ forced: true, hookFailures: 1 }]);
  });

  it('is idempotent: later calls return the same promise and hooks run once', async () => {
    const h = await start();
    let hookRuns = 0;
    const sd = createGracefulShutdown({
      server: h.server,
      timeoutMs: 1000,
      logger: h.logger,
      onClosed: [
        async () => {
          hookRuns += 1;
        },
      ],
    });
    const first = sd.shutdown('SIGTERM');
    const second = sd.shutdown('SIGINT');
    expect(second).toBe(first);
    await first;
    expect(sd.shutdown('SIGTERM')).toBe(first);
    await first;
    expect(hookRuns).toBe(1);
    expect(messages(h.logs, 'shutdown started')).toHaveLength(1);
    expect(messages(h.logs, 'shutdown started')[0]).toMatchObject({ signal: 'SIGTERM' });
  });

  it('runs the draining hooks first, so long-lived streams end and the drain does not wait for its deadline', async () => {
    const h = await start();
    const order: string[] = [];
    const sd = createGracefulShutdown({
      server: h.server,
      timeoutMs: 60_000,
      logger: h.logger,
      onDraining: [
        () => {
          order.push(`draining inFlight=${sd.inFlight()}`);
          for (const end of streams) end();
          streams.clear();
        },
        () => {
          throw new Error('already closed');
        },
      ],
      onClosed: [async () => { order.push('closed'); }],
    });
    const stream = get(h.port, '/stream', h.agent);
    await expect.poll(() => streams.size).toBe(1);
    const started = Date.now();
    await sd.shutdown('SIGTERM');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await stream).toMatchObject({ status: 200, body: ': open\n\n' });
    expect(order).toEqual(['draining inFlight=1', 'closed']);
    expect(messages(h.logs, 'shutdown draining hook failed')).toMatchObject([{ hook: 1, err: { message: 'already closed' } }]);
    expect(messages(h.logs, 'shutdown complete')).toMatchObject([{ forced: false }]);
  });

  it('rejects a bad timeoutMs at construction', async () => {
    const h = await start();
    expect(() => createGracefulShutdown({ server: h.server, timeoutMs: Number.NaN, logger: h.logger })).toThrow(
      /options\.timeoutMs/,
    );
  });
});
