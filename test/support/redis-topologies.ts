// Real Redis Sentinel and Redis Cluster deployments for tests, on free loopback ports, owned by
// the test run. Never touches the Redis a machine may already run on 6379. Each deployment lives
// in its own scratch directory; a setup that fails halfway stops what it had already started.
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { freePort, REDIS_MISSING } from './redis-server.ts';

export interface HostPort {
  host: string;
  port: number;
}

export interface SentinelSetup {
  /** The one sentinel watching the master. */
  readonly sentinels: HostPort[];
  /** The master name the sentinel monitors. */
  readonly name: 'agentgate-test';
  readonly masterPort: number;
  /** Kills the master and the sentinel and removes their scratch directory. */
  dispose(): Promise<void>;
}

export interface ClusterSetup {
  /** The three masters; the 16384 slots are split between them. */
  readonly nodes: HostPort[];
  /** Kills every node and removes the scratch directory. */
  dispose(): Promise<void>;
}

const HOST = '127.0.0.1';
const MASTER_NAME = 'agentgate-test';
// Redis Cluster's bus listens on the data port + 10000 (cluster spec, "Cluster bus").
const BUS_OFFSET = 10_000;

/** Runs redis-cli against a loopback port; resolves with its stdout, or '' when it fails. */
function cli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile('redis-cli', ['-h', HOST, '-p', String(port), ...args], { timeout: 2000 }, (error, stdout) => {
      resolve(error ? '' : stdout);
    });
  });
}

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, HOST, () => srv.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (+10000) is a valid port and free as well. */
async function freeClusterPort(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (taken.has(port) || port + BUS_OFFSET > 65_535) continue;
    if (await canListen(port + BUS_OFFSET)) return port;
  }
  throw new Error('no free port pair (port, port + 10000) on 127.0.0.1');
}

/**
 * The processes of one deployment. Each is killed by dispose(), and by a synchronous exit hook
 * as a last resort, so a crashed or timed-out test run leaves no redis-server behind.
 */
function processGroup() {
  const children = new Set<ChildProcess>();
  const killAllSync = () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killAllSync);

  /** Spawns redis-server; resolves once it answers PING, rejects with its output if it exits. */
  async function start(args: string[], port: number, what: string): Promise<ChildProcess> {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let output = '';
    const collect = (data: Buffer) => {
      output = (output + data.toString()).slice(-4000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err: NodeJS.ErrnoException) => reject(err.code === 'ENOENT' ? new Error(REDIS_MISSING) : err));
    });
    const deadline = Date.now() + 5000;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`${what} on ${HOST}:${port} exited (${child.exitCode ?? child.signalCode}):\n${output}`);
      }
      if ((await cli(port, 'PING')).trim() === 'PONG') return child;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} on ${HOST}:${port}:\n${output}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function killAll(): Promise<void> {
    await Promise.all([...children].map(async (child) => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        await exited;
      }
      children.delete(child);
    }));
    process.removeListener('exit', killAllSync);
  }

  return { start, killAll };
}

/** Polls `check` every 50 ms until it holds; throws naming `what` after `ms`. */
async function waitFor(check: () => Promise<boolean>, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs `build`; if it throws, stops every process it started and removes the scratch dir. */
async function buildOrCleanUp<T>(
  prefix: string,
  build: (dir: string, group: ReturnType<typeof processGroup>) => Promise<T>,
): Promise<T & { dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const group = processGroup();
  const dispose = async () => {
    await group.killAll();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    return { ...(await build(dir, group)), dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** One master and one sentinel monitoring it (quorum 1) under the name `agentgate-test`. */
export function startSentinelSetup(): Promise<SentinelSetup> {
  return buildOrCleanUp('agentgate-sentinel-', async (dir, group) => {
    const masterPort = await freePort();
    await group.start([
      '--port', String(masterPort), '--bind', HOST, '--save', '', '--appendonly', 'no',
      '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning',
    ], masterPort, 'redis master');

    const sentinelPort = await freePort();
    // Sentinel rewrites its config file at runtime, so it must be a writable file of our own.
    const conf = join(dir, 'sentinel.conf');
    await writeFile(conf, [
      `port ${sentinelPort}`,
      `bind ${HOST}`,
      'protected-mode no',
      'daemonize no',
      `dir ${dir}`,
      'loglevel warning',
      'sentinel resolve-hostnames no',
      `sentinel monitor ${MASTER_NAME} ${HOST} ${masterPort} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
      '',
    ].join('\n'));
    await group.start([conf, '--sentinel'], sentinelPort, 'redis sentinel');

    await waitFor(async () => {
      const reply = await cli(sentinelPort, 'SENTINEL', 'get-master-addr-by-name', MASTER_NAME);
      return reply.split('\n').map((line) => line.trim()).join(' ').trim() === `${HOST} ${masterPort}`;
    }, `the sentinel on ${HOST}:${sentinelPort} to name the master ${HOST}:${masterPort}`, 5000);

    return { sentinels: [{ host: HOST, port: sentinelPort }], name: MASTER_NAME, masterPort } as const;
  });
}

/** Three cluster masters (no replicas) sharing the 16384 slots, once every node reports ok. */
export function startCluster(): Promise<ClusterSetup> {
  return buildOrCleanUp('agentgate-cluster-', async (dir, group) => {
    const ports: number[] = [];
    for (let i = 0; i < 3; i++) {
      // A port picked free may be taken before redis-server binds it; pick again then.
      for (let attempt = 1; ; attempt++) {
        const port = await freeClusterPort(new Set(ports));
        try {
          await group.start([
            '--port', String(port), '--bind', HOST, '--cluster-enabled', 'yes',
            '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '2000',
            '--appendonly', 'no', '--save', '', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning',
          ], port, 'redis cluster node');
          ports.push(port);
          break;
        } catch (error) {
          if (attempt >= 3 || !String(error).includes('in use')) throw error;
        }
      }
    }

    const created = await new Promise<{ ok: boolean; output: string }>((resolve) => {
      execFile('redis-cli', [
        '--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`),
        '--cluster-replicas', '0', '--cluster-yes',
      ], { timeout: 15_000 }, (error, stdout, stderr) => resolve({ ok: !error, output: stdout + stderr }));
    });
    if (!created.ok) throw new Error(`redis-cli --cluster create failed:\n${created.output}`);

    // Every node, not just the first: a client may fetch the slot map from any of them.
    await waitFor(async () => {
      const infos = await Promise.all(ports.map((port) => cli(port, 'CLUSTER', 'INFO')));
      return infos.every((info) => /^cluster_state:ok\r?$/m.test(info));
    }, `cluster_state:ok on ${ports.map((port) => `${HOST}:${port}`).join(', ')}`, 15_000);

    return { nodes: ports.map((port) => ({ host: HOST, port })) };
  });
}
