// Redis goes away mid-run: requests that need the store fail fast with an OAuth-shaped 503
// (never a hang, never a skipped check), /readyz turns red, and the gateway heals by itself
// when Redis returns, without a restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startRedis } from '../support/redis-server.ts';
import type { RedisServer } from '../support/redis-server.ts';
import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

let redis: RedisServer;
let gw: TestGateway;

beforeAll(async () => {
  redis = await startRedis();
  gw = await startGateway({ redisUrl: redis.url });
});
afterAll(async () => {
  await gw?.close();
  await redis?.dispose();
});

const auth = { authorization: basic('invoice-agent', AGENT_SECRET) };
const issue = () => postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, auth);
const introspect = (token: string) => postForm(`${gw.url}/token/introspection`, { token }, auth);

async function timed<T>(fn: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = performance.now();
  const result = await fn();
  return { result, ms: performance.now() - start };
}

describe('store outage', () => {
  it('answers 503 temporarily_unavailable within 1 s while Redis is down, and recovers by itself', async () => {
    const token = String((await issue()).body.access_token);
    expect((await introspect(token)).body.active).toBe(true);

    await redis.stop();

    const { result: down, ms } = await timed(() => introspect(token));
    expect(down.status).toBe(503);
    expect(down.headers.get('cache-control')).toBe('no-store');
    expect(down.body).toEqual({
      error: 'temporarily_unavailable',
      error_description: 'the gateway cannot reach its session store; retry shortly',
    });
    expect(ms).toBeLessThan(1000);

    // Through oidc-provider's own pipeline (authorization request → Interaction model).
    const { result: authz, ms: authzMs } = await timed(() => fetch(`${gw.url}/auth?client_id=agent-console&response_type=code&scope=openid&redirect_uri=${encodeURIComponent('http://127.0.0.1/cb')}&code_challenge=${'a'.repeat(43)}&code_challenge_method=S256`, { redirect: 'manual', headers: { accept: 'application/json' } }));
    expect(authzMs).toBeLessThan(1000);
    const location = new URL(authz.headers.get('location') ?? 'http://invalid/');
    expect(location.searchParams.get('error')).toBe('temporarily_unavailable');

    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'unavailable', checks: { store: expect.stringMatching(/^failed/), keys: 'ok' } });

    const errors = (await gw.metrics.storeErrors.get()).values.reduce((sum, v) => sum + v.value, 0);
    expect(errors).toBeGreaterThan(0);

    await redis.restart();

    let healed = false;
    for (let i = 0; i < 100 && !healed; i += 1) {
      const res = await introspect(token);
      healed = res.status === 200;
      if (!healed) await new Promise((r) => setTimeout(r, 100));
    }
    expect(healed).toBe(true);
    // The restarted Redis is empty (no persistence): the token is still valid by signature and
    // has no revocation record, so it is active again.
    expect((await introspect(token)).body.active).toBe(true);
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
  });
});
