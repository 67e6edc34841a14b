// Token endpoint benchmark (run on demand: `npm run bench`; not part of `npm test`).
// Starts the real app on a real redis-server (its own, on a free loopback port) and measures,
// with C concurrent clients for D seconds each: client_credentials issuance (JWT, secret_basic),
// JWT introspection (signature + Redis revocation lookup) and discovery. Prints req/s and
// latency percentiles, and the ratio of each to discovery (the cheapest request) as a baseline.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';

import { createApp } from '../src/app.ts';
import { validateConfig } from '../src/config/index.ts';
import { createKeyRing, generateSigningKey } from '../src/keys/index.ts';
import { createLogger, createMetrics } from '../src/ops/index.ts';
import { createStore, waitUntilReachable } from '../src/store/index.ts';
import { startRedis } from '../test/support/redis-server.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SECRET = 'bench-agent-secret-0123456789abcdefgh';

interface Result { name: string; count: number; rps: number; p50: number; p95: number; p99: number; errors: number }

async function run(name: string, fn: () => Promise<boolean>): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < end) {
      const t = performance.now();
      const ok = await fn();
      latencies.push(performance.now() - t);
      if (!ok) errors += 1;
    }
  }));
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return { name, count: latencies.length, rps: latencies.length / SECONDS, p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), errors };
}

const redis = await startRedis();
const server = createServer();
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
const config = validateConfig({
  mode: 'development',
  issuer: url,
  store: { driver: 'redis', url: redis.url },
  keys: { generate: true },
  logging: { level: 'warn' },
  resources: [{ id: 'https://erp.bench.test', scopes: ['erp:read'] }],
  agents: [{ clientId: 'bench-agent', auth: { method: 'client_secret_basic', secret: SECRET }, scopes: ['erp:read'], audiences: ['https://erp.bench.test'] }],
});
const store = createStore(config.store);
await waitUntilReachable(store);
const { app } = createApp(config, {
  store,
  keyRing: createKeyRing({ keys: [await generateSigningKey('ES256')] }),
  logger: createLogger({ level: 'warn', destination: new Writable({ write(_c, _e, cb) { cb(); } }) }),
  metrics: createMetrics({ defaultMetrics: false }),
});
server.on('request', app);

const authorization = `Basic ${Buffer.from(`bench-agent:${SECRET}`).toString('base64')}`;
const post = (path: string, body: string) => fetch(`${url}${path}`, {
  method: 'POST', body, headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
});
const token = ((await (await post('/token', 'grant_type=client_credentials&scope=erp:read')).json()) as { access_token: string }).access_token;

const results = [
  await run('discovery (GET /.well-known/openid-configuration)', async () => (await fetch(`${url}/.well-known/openid-configuration`).then(async (r) => { await r.arrayBuffer(); return r.status; })) === 200),
  await run('client_credentials → JWT (POST /token)', async () => (await post('/token', 'grant_type=client_credentials&scope=erp:read').then(async (r) => { await r.arrayBuffer(); return r.status; })) === 200),
  await run('introspection of a JWT (POST /token/introspection)', async () => (await post('/token/introspection', `token=${token}`).then(async (r) => { await r.arrayBuffer(); return r.status; })) === 200),
];

const base = results[0]!.rps;
console.log(`\nagentgate token endpoint benchmark — ${SECONDS}s per case, ${CONCURRENCY} concurrent clients, Node ${process.version}, ES256\n`);
console.log('case'.padEnd(54), 'req/s'.padStart(8), 'p50 ms'.padStart(8), 'p95 ms'.padStart(8), 'p99 ms'.padStart(8), 'vs discovery'.padStart(13), 'errors'.padStart(7));
for (const r of results) {
  console.log(r.name.padEnd(54), r.rps.toFixed(0).padStart(8), r.p50.toFixed(2).padStart(8), r.p95.toFixed(2).padStart(8), r.p99.toFixed(2).padStart(8), `${(r.rps / base).toFixed(2)}x`.padStart(13), String(r.errors).padStart(7));
}

server.closeAllConnections();
server.close();
await store.close();
await redis.dispose();
