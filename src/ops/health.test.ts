import express from 'express';
import { describe, expect, it } from 'vitest';
import { createHealthHandlers, createLogger } from './index.ts';
import { useTestServer } from '../../test/support/http.ts';
import type { HealthOptions } from './index.ts';

describe('createHealthHandlers', () => {
  const testServer = useTestServer();

  async function start(options: HealthOptions): Promise<string> {
    const { healthz, readyz } = createHealthHandlers(options);
    const app = express();
    app.get('/healthz', healthz);
    app.get('/readyz', readyz);
    const base = await testServer.listen(app);
    return `${base}`;
  }

  async function get(url: string): Promise<{ status: number; cacheControl: string | null; body: unknown }> {
    const res = await fetch(url);
    return { status: res.status, cacheControl: res.headers.get('cache-control'), body: await res.json() };
  }

  const ok = async (): Promise<void> => {};

  it('healthz answers 200 even when a readiness check fails', async () => {
    const base = await start({
      checks: {
        store: async () => {
          throw new Error('down');
        },
      },
    });
    expect(await get(`${base}/healthz`)).toEqual({ status: 200, cacheControl: 'no-store', body: { status: 'ok' } });
  });

  it('readyz answers 200 when every check passes', async () => {
    const base = await start({ checks: { store: ok, keys: ok } });
    expect(await get(`${base}/readyz`)).toEqual({
      status: 200,
      cacheControl: 'no-store',
      body: { status: 'ok', checks: { store: 'ok', keys: 'ok' } },
    });
  });

  it('readyz answers 503 naming the failed check with a safe reason only', async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (m: string) => void lines.push(m) } });
    const base = await start({
      logger,
      checks: {
        store: async () => {
          throw Object.assign(new Error('connect ECONNREFUSED redis://:hunter2@10.0.0.5:6379'), { code: 'ECONNREFUSED' });
        },
        directory: () => Promise.reject(new Error('upstream said: password=hunter2')),
        keys: ok,
      },
    });
    const res = await get(`${base}/readyz`);
    expect(res).toEqual({
      status: 503,
      cacheControl: 'no-store',
      body: {
        status: 'unavailable',
        checks: { store: 'failed: ECONNREFUSED', directory: 'failed: error', keys: 'ok' },
      },
    });
    expect(JSON.stringify(res.body)).not.toContain('hunter2');
    // The operator still gets the detail, in the log.
    expect(lines.map((l) => JSON.parse(l) as { check?: string }).map((l) => l.check).sort()).toEqual(['directory', 'store']);
  });

  it('a check that throws synchronously fails instead of crashing the probe', async () => {
    const base = await start({
      checks: {
        broken: (() => {
          throw new TypeError('not a promise');
        }) as () => Promise<void>,
      },
    });
    expect(await get(`${base}/readyz`)).toEqual({
      status: 503,
      cacheControl: 'no-store',
      body: { status: 'unavailable', checks: { broken: 'failed: error' } },
    });
  });

  it('a check that hangs fails after timeoutMs', async () => {
    const base = await start({
      timeoutMs: 50,
      checks: { store: () => new Promise<void>(() => {}), keys: ok },
    });
    expect(await get(`${base}/readyz`)).toEqual({
      status: 503,
      cacheControl: 'no-store',
      body: { status: 'unavailable', checks: { store: 'failed: timeout', keys: 'ok' } },
    });
  });

  it('readyz answers 503 while draining, without running checks', async () => {
    let draining = false;
    let calls = 0;
    const base = await start({
      draining: () => draining,
      checks: {
        store: async () => {
          calls += 1;
        },
      },
    });
    expect((await get(`${base}/readyz`)).status).toBe(200);
    draining = true;
    expect(await get(`${base}/readyz`)).toEqual({
      status: 503,
      cacheControl: 'no-store',
      body: { status: 'unavailable', reason: 'draining', checks: {} },
    });
    expect(calls).toBe(1);
  });

  it('rejects bad options at construction, naming the option', () => {
    expect(() => createHealthHandlers({ checks: {}, timeoutMs: 0 })).toThrow(/options\.timeoutMs/);
    expect(() => createHealthHandlers({ checks: { store: 'yes' as unknown as () => Promise<void> } })).toThrow(
      /options\.checks\.store/,
    );
  });
});
