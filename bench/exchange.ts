// Token exchange benchmark (issue 5; run on demand: `npm run bench:exchange`, not part of npm test).
// Drives the real HTTP token endpoint — client authentication, subject-token verification, the
// enterprise session and revocation look-ups in Redis, the policy, signing, the audit stream —
// with wrk. One gateway process is pinned to core 0 (taskset); wrk and Redis run on core 1.
// 1,000 distinct subject tokens (each bound to its own session) are rotated.
// Interleaved with two references measured on the same setup:
//   (a) oidc-provider's own client_credentials grant issuing JWT access tokens, same process;
//   (b) bench/reference-server.ts: a bare node:http round trip doing one JWT verify + one sign.
// Prints a table (medians with min/max over BENCH_RUNS runs), server CPU µs per request, p50/p99
// at one connection, and writes bench/results/exchange-<date>.json.
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { importJWK, SignJWT } from 'jose';

import { generateSigningKey, writeKeyFile } from '../src/keys/index.ts';
import { createSessionService } from '../src/session/index.ts';
import { createRedisClient, createRedisStore, waitUntilReachable } from '../src/store/index.ts';
import { freePort } from '../test/support/redis-server.ts';

/** As the Dockerfile's ENTRYPOINT and `npm start` (test/helm/image.test.ts keeps them equal). */
const GATEWAY_NODE_FLAGS = ['--max-semi-space-size=8'];
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64);
const TOKENS = 1000;
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECRET = 'bench-agent-secret-0123456789abcdefgh';
const ERP = 'https://erp.bench.test';

for (const tool of ['wrk', 'taskset', 'redis-server']) {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench/exchange: ${tool} is required (Debian: apt-get install -y wrk util-linux redis-server)`);
    process.exit(2);
  }
}

const children: ChildProcess[] = [];
const cleanup = () => { for (const c of children) c.kill('SIGKILL'); };
process.on('exit', cleanup);

async function waitHttp(url: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`not ready: ${url}`);
}

function cpuTicks(pid: number): Promise<number> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((stat) => {
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
  });
}
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

interface WrkResult { rps: number; requests: number; non2xx: number; p50: number; p99: number }

function parseLatency(text: string, pct: string): number {
  const m = new RegExp(`\\s${pct}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

function wrk(url: string, script: string, connections: number, seconds: number, args: string[] = []): WrkResult {
  const out = execFileSync('taskset', ['-c', '1', 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, url, '--', ...args], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? Number.NaN);
  const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0);
  return { rps, requests, non2xx, p50: parseLatency(out, '50'), p99: parseLatency(out, '99') };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const dir = await mkdtemp(join(tmpdir(), 'agentgate-bench-'));
try {
  // Redis on core 1.
  const redisPort = await freePort();
  const redis = spawn('taskset', ['-c', '1', 'redis-server', '--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  children.push(redis);
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;
  const keyPrefix = 'bench:';
  const store = createRedisStore(createRedisClient({ url: redisUrl, keyPrefix, connectTimeout: 1, commandTimeout: 1 }), { keyPrefix });
  if (!(await waitUntilReachable(store))) throw new Error('redis did not start');

  // Keys, config, gateway on core 0.
  const keyFile = join(dir, 'jwks.json');
  const key = await generateSigningKey('ES256');
  await writeKeyFile(keyFile, { keys: [key] });
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const configFile = join(dir, 'gateway.yaml');
  await writeFile(configFile, `
mode: development
issuer: ${issuer}
listen: { host: 127.0.0.1, port: ${port} }
store: { driver: redis, url: "${redisUrl}", keyPrefix: "${keyPrefix}" }
keys: { file: ${keyFile} }
cookies: { keys: ["bench-cookie-key-0123456789abcdefghijkl"] }
logging: { level: ${process.env.BENCH_LOG_LEVEL ?? 'info'} }
resources: [{ id: ${ERP}, scopes: [erp:read, erp:write], tokenTtl: 5m }]
roles: { reader: { scopes: [erp:read] } }
agents:
  - { clientId: bench-agent, auth: { method: client_secret_basic, secret: ${SECRET} }, scopes: [erp:read], audiences: [${ERP}] }
apps:
  - { clientId: bench-app, redirectUris: [http://127.0.0.1/cb], audiences: [${ERP}] }
`);
  // BENCH_PROFILE_DIR=dir writes a V8 CPU profile of the gateway (inspect with Chrome DevTools).
  const profile = process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`] : [];
  // The gateway runs with the V8 flags the image runs it with; BENCH_NODE_FLAGS adds or overrides
  // (e.g. "--trace-gc", or "--max-semi-space-size=16" for V8's default young generation).
  profile.push(...GATEWAY_NODE_FLAGS, ...(process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean));
  // BENCH_GATEWAY_LOG=file keeps the gateway's output (logs, --trace-gc) for inspection.
  const gatewayLog = process.env.BENCH_GATEWAY_LOG ? openSync(process.env.BENCH_GATEWAY_LOG, 'w') : 'ignore';
  const gateway = spawn('taskset', ['-c', '0', process.execPath, ...profile, join(ROOT, 'bin/agentgate.js'), 'serve', '--config', configFile], { stdio: ['ignore', gatewayLog, gatewayLog], cwd: ROOT });
  children.push(gateway);
  const refPort = await freePort();
  const reference = spawn('taskset', ['-c', '0', process.execPath, join(ROOT, 'bench/reference-server.ts'), String(refPort), keyFile], { stdio: 'ignore', cwd: ROOT });
  children.push(reference);
  await waitHttp(`${issuer}/readyz`);

  // 1,000 people, each with an enterprise session and an app token bound to it.
  const sessions = createSessionService({ store, ttl: 8 * 3600, idleTtl: 3600 });
  const signingKey = await importJWK(key, key.alg);
  const now = Math.floor(Date.now() / 1000);
  const tokens: string[] = [];
  for (let i = 0; i < TOKENS; i += 1) {
    const identity = { idp: 'dev', subject: `person${i}@bench.test`, email: `person${i}@bench.test`, groups: [], groupsComplete: true, amr: ['pwd'], acr: 'dev', authTime: now, attributes: {} };
    const session = await sessions.create({ identity, roles: ['reader'] });
    tokens.push(await new SignJWT({ client_id: 'bench-app', scope: 'openid erp:read', sid: session.sid, jti: `bench-${i}` })
      .setProtectedHeader({ alg: key.alg, typ: 'at+jwt', kid: key.kid })
      .setIssuer(issuer).setSubject(session.accountId).setAudience(ERP).setIssuedAt(now).setExpirationTime(now + 3 * 3600)
      .sign(signingKey));
  }
  await store.close();
  const tokenFile = join(dir, 'tokens.txt');
  await writeFile(tokenFile, `${tokens.join('\n')}\n`);

  const auth = `Basic ${Buffer.from(`bench-agent:${SECRET}`).toString('base64')}`;
  const script = (name: string, body: string) => {
    const file = join(dir, `${name}.lua`);
    return writeFile(file, `
local tokens = {}
local i = 0
init = function(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
request = function()
  i = i + 1
  local token = tokens[(i % #tokens) + 1]
  return wrk.format("POST", "/token", { ["Content-Type"] = "application/x-www-form-urlencoded", ["Authorization"] = "${auth}" }, ${body})
end
`).then(() => file);
  };
  const scenarios = [
    { name: 'token exchange', url: issuer, pid: gateway.pid!, script: await script('exchange', '"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aaccess_token&scope=erp%3Aread&subject_token=" .. token') },
    { name: '(a) client_credentials', url: issuer, pid: gateway.pid!, script: await script('cc', '"grant_type=client_credentials&scope=erp%3Aread"') },
    { name: '(b) node:http + verify + sign', url: `http://127.0.0.1:${refPort}`, pid: reference.pid!, script: await script('ref', '"subject_token=" .. token') },
  ];

  // BENCH_ONLY=exchange|cc|ref measures one scenario alone (e.g. for a clean CPU profile).
  const only = { exchange: 0, cc: 1, ref: 2 }[process.env.BENCH_ONLY ?? ''];
  if (only !== undefined) scenarios.splice(0, scenarios.length, scenarios[only]!);
  // Sanity: every scenario answers 200.
  for (const s of scenarios) {
    const probe = wrk(s.url, s.script, 1, 1, [tokenFile]);
    if (probe.non2xx > 0 || probe.requests === 0) throw new Error(`${s.name}: ${probe.non2xx} non-2xx of ${probe.requests}`);
  }
  for (const s of scenarios) wrk(s.url, s.script, CONNECTIONS, 3, [tokenFile]); // warm-up

  const runs: Record<string, { rps: number[]; cpuUs: number[]; non2xx: number }> = {};
  for (let r = 0; r < RUNS; r += 1) {
    for (const s of scenarios) { // interleaved A/B
      const before = await cpuTicks(s.pid);
      const res = wrk(s.url, s.script, CONNECTIONS, SECONDS, [tokenFile]);
      const cpu = ((await cpuTicks(s.pid)) - before) / CLK_TCK;
      const entry = (runs[s.name] ??= { rps: [], cpuUs: [], non2xx: 0 });
      entry.rps.push(res.rps);
      entry.cpuUs.push((cpu * 1e6) / res.requests);
      entry.non2xx += res.non2xx;
    }
  }
  // Latency at one connection: as many interleaved runs, medians of their p50 and p99.
  const latencyRuns: Record<string, { p50: number[]; p99: number[] }> = {};
  for (let r = 0; r < RUNS; r += 1) {
    for (const s of scenarios) {
      const res = wrk(s.url, s.script, 1, SECONDS, [tokenFile]);
      const entry = (latencyRuns[s.name] ??= { p50: [], p99: [] });
      entry.p50.push(res.p50);
      entry.p99.push(res.p99);
    }
  }
  const latency: Record<string, { p50: number; p99: number; p99Runs: number[] }> = {};
  for (const [name, e] of Object.entries(latencyRuns)) latency[name] = { p50: median(e.p50), p99: median(e.p99), p99Runs: e.p99 };

  const exchange = runs['token exchange'] ? median(runs['token exchange'].rps) : Number.NaN;
  const a = runs['(a) client_credentials'] ? median(runs['(a) client_credentials'].rps) : Number.NaN;
  const b = runs['(b) node:http + verify + sign'] ? median(runs['(b) node:http + verify + sign'].rps) : Number.NaN;
  const pad = (v: string, n: number) => v.padStart(n);
  console.log(`\ntoken exchange benchmark — ${RUNS} interleaved runs × ${SECONDS}s at ${CONNECTIONS} connections, then ${RUNS} × ${SECONDS}s at 1 connection (medians); server on 1 core, Node ${process.version}, ES256\n`);
  console.log(`${'scenario'.padEnd(32)}${pad('req/s median', 14)}${pad('(min–max)', 18)}${pad('CPU µs/req', 12)}${pad('p50 ms @1', 11)}${pad('p99 ms @1', 11)}${pad('non-2xx', 9)}`);
  for (const s of scenarios) {
    const e = runs[s.name]!;
    console.log(`${s.name.padEnd(32)}${pad(median(e.rps).toFixed(0), 14)}${pad(`${Math.min(...e.rps).toFixed(0)}–${Math.max(...e.rps).toFixed(0)}`, 18)}${pad(median(e.cpuUs).toFixed(0), 12)}${pad(latency[s.name]!.p50.toFixed(2), 11)}${pad(latency[s.name]!.p99.toFixed(2), 11)}${pad(String(e.non2xx), 9)}`);
  }
  const targets = only !== undefined ? {} : {
    'exchange ≥ 0.8 × (a)': exchange >= 0.8 * a,
    'exchange ≥ 0.7 × (b)': exchange >= 0.7 * b,
    'p99 ≤ 5 ms at 1 connection': latency['token exchange']!.p99 <= 5,
  };
  if (only === undefined) console.log(`\nexchange/(a) = ${(exchange / a).toFixed(2)}, exchange/(b) = ${(exchange / b).toFixed(2)}`);
  for (const [name, ok] of Object.entries(targets)) console.log(`  ${ok ? 'PASS' : 'FAIL'}  ${name}`);

  const date = new Date().toISOString().slice(0, 10);
  const result = { date, node: process.version, runs: RUNS, seconds: SECONDS, connections: CONNECTIONS, scenarios: runs, latency, ratios: { a: exchange / a, b: exchange / b }, targets };
  // A partial run (BENCH_ONLY) is for profiling; only full runs are recorded.
  if (only === undefined) {
    const out = join(ROOT, 'bench', 'results', `exchange-${date}.json`);
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${out}`);
  }
  if (profile.length > 0) {
    gateway.kill('SIGTERM');
    await new Promise((resolve) => gateway.once('exit', resolve));
  }
} finally {
  cleanup();
  await rm(dir, { recursive: true, force: true });
}
