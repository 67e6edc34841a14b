// The config the chart renders is one the gateway accepts: for every example in
// helm/agentgate/ci, the real CLI (`node bin/agentgate.js check-config`) runs on the rendered
// ConfigMap with the files and environment the pod would get from its Secrets — the chart's own,
// or the ones the example expects to exist (test/helm/secrets.ts).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';

import { createServer } from 'node:net';
import { startProcess } from '../support/process.ts';
import { CI_DIR, REPO, checkRenderedConfig, ciValuesFiles, materializePod, podOnDisk, render } from './support.ts';
import type { ClusterSecrets, Manifest } from './support.ts';
import { clusterSecrets, privateJwks, randomSecret } from './secrets.ts';

const rendered = new Map<string, Manifest[]>();
let cluster: ClusterSecrets;

// A setup failure (no renderer, a render error) fails the tests with its message instead of
// leaving them skipped.
let setupError: unknown;
const ready = () => {
  if (setupError) throw setupError;
};

beforeAll(async () => {
  try {
    cluster = await clusterSecrets();
    for (const file of ciValuesFiles()) rendered.set(basename(file, '-values.yaml'), await render({ values: [file] }));
  } catch (error) {
    setupError = error;
  }
}, 600_000);

/** At most two CLI processes at once: the machine has two cores. */
async function inPairs<T, R>(items: T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all([worker(), worker()]);
  return results;
}

describe('agentgate check-config accepts the config the chart renders', () => {
  it('for every example in helm/agentgate/ci', async () => {
    ready();
    const names = [...rendered.keys()];
    expect(names.length).toBeGreaterThanOrEqual(7);
    const results = await inPairs(names, (name) => checkRenderedConfig(rendered.get(name)!, cluster));
    names.forEach((name, i) => {
      const { code, stdout, stderr } = results[i]!;
      expect({ name, code, stderr }).toEqual({ name, code: 0, stderr: '' });
      expect(stdout).toMatch(/: OK \(production mode, issuer https:\/\/.*, store redis,/);
    });
  }, 120_000);

  it('with inline secrets in the chart-made Secrets, and an agent secret from a secretMount', async () => {
    ready();
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-helm-inline-'));
    try {
      const values = join(dir, 'inline-values.yaml');
      writeFileSync(values, stringify({
        config: {
          resources: [{ id: 'https://erp.example.com', scopes: ['erp:read'] }],
          agents: [{
            clientId: 'reporting-agent', scopes: ['erp:read'], audiences: ['https://erp.example.com'],
            auth: { method: 'client_secret_basic', secret: '${file:/etc/agentgate/secrets/agents/reporting-agent}' },
          }],
        },
        signingKeys: { existingSecret: '', jwks: await privateJwks() },
        cookieKeys: { existingSecret: '', values: [randomSecret(), randomSecret()] },
        redis: { auth: { existingSecret: '', password: 'pw', sentinelPassword: 'spw' } },
        secretMounts: [{ name: 'agents', stringData: { 'reporting-agent': randomSecret() } }],
      }));
      const manifests = await render({ values: [`${CI_DIR}/sentinel-values.yaml`, values] });
      expect(manifests.filter((m) => m.kind === 'Secret').map((m) => m.metadata.name)).toEqual(['gw-agentgate', 'gw-agentgate-agents']);
      // No Secret exists in the cluster: everything comes from the chart's own.
      const result = await checkRenderedConfig(manifests, {});
      expect(result).toMatchObject({ code: 0, stderr: '' });
      expect(result.stdout).toMatch(/OK \(production mode.*1 agent\(s\)/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('for the README\'s minimal production values (Okta, external Redis) and their Sentinel variant', async () => {
    ready();
    const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
    const block = (after: string) => {
      const at = readme.indexOf(after);
      expect(at, `README has "${after}"`).toBeGreaterThan(-1);
      return /```yaml\n([\s\S]*?)```/.exec(readme.slice(at))![1]!;
    };
    const dir = mkdtempSync(join(tmpdir(), 'agentgate-helm-readme-'));
    try {
      writeFileSync(join(dir, 'minimal.yaml'), block('A minimal production `sso-values.yaml`'));
      writeFileSync(join(dir, 'sentinel.yaml'), block('The Sentinel variant'));
      const minimal = await render({ values: [join(dir, 'minimal.yaml')], release: 'sso' });
      expect(minimal.map((m) => m.kind)).toContain('Ingress');
      const sentinel = await render({ values: [join(dir, 'minimal.yaml'), join(dir, 'sentinel.yaml')], release: 'sso' });
      for (const manifests of [minimal, sentinel]) {
        const result = await checkRenderedConfig(manifests, cluster);
        expect(result).toMatchObject({ code: 0, stderr: '' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a problem in the rendered config is reported by check-config (the check really runs)', async () => {
    ready();
    const manifests = await render({ values: [`${CI_DIR}/default-values.yaml`], set: ['config.session.idleTtl=9h'] });
    const result = await checkRenderedConfig(manifests, cluster);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/session\.idleTtl: must not exceed session\.ttl/);
  });

  it('a Secret key the chart points at but the Secret lacks keeps the pod from starting', async () => {
    ready();
    const manifests = await render({ values: [`${CI_DIR}/existing-secrets-values.yaml`], set: ['signingKeys.key=jwks.json'] });
    expect(() => materializePod(manifests, cluster, '/nonexistent-root')).toThrow('Secret "agentgate-signing" has no key "jwks.json"');
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

describe('the pod as the chart wires it', () => {
  it('serves: ready on /readyz, discovery where the helm test looks, and exits 0 on SIGTERM', async () => {
    ready();
    // The httproute example puts the issuer under /sso; Redis is the test run's (no password).
    const port = await freePort();
    const manifests = await render({
      values: [`${CI_DIR}/httproute-values.yaml`],
      set: [`redis.url=${inject('redisUrl')}`, 'redis.auth.existingSecret=', `redis.keyPrefix=helm-${port}:`, `containerPort=${port}`],
    });
    const config = manifests.find((m) => m.kind === 'ConfigMap') as unknown as { data: Record<string, string> };
    expect(config.data['config.yaml']).toContain(`port: ${port}`);
    const testPod = manifests.find((m) => m.kind === 'Pod') as unknown as { spec: { containers: Array<{ args: string[] }> } };
    const discoveryPath = /http:\/\/gw-agentgate:80(\S+)/.exec(testPod.spec.containers[0]!.args[0]!)?.[1];
    expect(discoveryPath).toBe('/sso/.well-known/openid-configuration');

    const pod = podOnDisk(manifests, cluster);
    try {
      const base = `http://127.0.0.1:${port}`;
      const gateway = await startProcess(['serve', '--config', pod.configPath], `${base}/readyz`, pod.env);
      try {
        expect((await fetch(`${base}/healthz`)).status).toBe(200);
        // What the helm test pod checks: the document answers through the Service and names the issuer.
        const direct = await fetch(`${base}${discoveryPath}`);
        expect(direct.status).toBe(200);
        expect(await direct.json()).toMatchObject({ issuer: 'https://auth.example.com/sso' });
        // Through the ingress (trustProxy: true by default), endpoints carry the public origin.
        const proxied = await fetch(`${base}${discoveryPath}`, { headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'auth.example.com' } });
        expect(await proxied.json()).toMatchObject({ issuer: 'https://auth.example.com/sso', token_endpoint: 'https://auth.example.com/sso/token' });
        expect((await fetch(`${base}/metrics`)).status).toBe(200);
      } finally {
        expect(await gateway.stop()).toBe(0);
      }
    } finally {
      pod.dispose();
    }
  }, 60_000);
});
