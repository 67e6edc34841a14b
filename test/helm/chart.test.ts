// The Helm chart (helm/agentgate), rendered with `helm template` or the shared renderer: every
// example in ci/ renders and every manifest is valid for its Kubernetes API; and the behaviours
// platform teams rely on — replicas vs HPA, PDB, probes, hardened pods, graceful shutdown,
// checksums that roll pods, secrets only in Secrets, values that fail at install.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

import { configSchema } from '../../src/config/schema.ts';
import { CHART, CI_DIR, RenderError, ciValuesFiles, find, podSpec, render, renderRaw, validateManifest } from './support.ts';
import type { Manifest, RenderOptions } from './support.ts';
import { privateJwks, randomSecret } from './secrets.ts';

const FULLNAME = 'gw-agentgate';
const ci = (name: string) => join(CI_DIR, `${name}-values.yaml`);
const rendered = new Map<string, Manifest[]>();
const renderTimes: number[] = [];
let tmp: string;

// Inline values (the chart's own Secret) with planted markers: none may reach a ConfigMap.
const MARK = `MARKER${randomSecret().slice(0, 8)}`;
let inlineValues: string;
let inlineSecrets: string[];

async function timed(options: RenderOptions): Promise<Manifest[]> {
  const started = Date.now();
  const out = await render(options);
  renderTimes.push(Date.now() - started);
  return out;
}

// A setup failure (no renderer, a render error) fails every test with its message; vitest would
// otherwise report the tests as skipped.
let setupError: unknown;
const of = (name: string): Manifest[] => {
  if (setupError) throw setupError;
  const manifests = rendered.get(name);
  if (!manifests) throw new Error(`${name} was not rendered`);
  return manifests;
};
const kinds = (manifests: Manifest[]) => manifests.map((m) => m.kind).sort();
const gatewayConfig = (manifests: Manifest[]): Record<string, unknown> => {
  const cm = find(manifests, 'ConfigMap', FULLNAME) as { data: Record<string, string> } | undefined;
  if (!cm) throw new Error('no gateway ConfigMap');
  return parse(cm.data['config.yaml']!) as Record<string, unknown>;
};
type Pod = {
  replicas?: number;
  strategy: { type: string; rollingUpdate?: Record<string, unknown> };
  template: {
    metadata: { annotations: Record<string, string>; labels: Record<string, string> };
    spec: Record<string, unknown> & {
      containers: Array<Record<string, unknown> & { ports: Array<{ name: string; containerPort: number }> }>;
      volumes: Array<{ name: string; secret?: { secretName: string; items?: Array<{ key: string; path: string }> }; emptyDir?: object }>;
    };
  };
};
const deployment = (manifests: Manifest[]) => (find(manifests, 'Deployment') as unknown as { spec: Pod }).spec;
const rejection = async (options: RenderOptions): Promise<string> => {
  try {
    await renderRaw(options);
  } catch (error) {
    if (error instanceof RenderError) return error.message;
    throw error;
  }
  throw new Error(`rendered, but should have been refused: ${JSON.stringify(options)}`);
};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'agentgate-helm-chart-'));
  try {
    await setup();
  } catch (error) {
    setupError = error;
  }
}, 600_000);

async function setup(): Promise<void> {
  inlineSecrets = [await privateJwks(), `cookie-${MARK}-${randomSecret()}`, `redis-${MARK}-pw`, `sentinel-${MARK}-pw`, `agent-${MARK}-${randomSecret()}`];
  const [jwks, cookie, redisPassword, sentinelPassword, agentSecret] = inlineSecrets as [string, string, string, string, string];
  inlineValues = join(tmp, 'inline-values.yaml');
  writeFileSync(inlineValues, stringify({
    config: {
      issuer: 'https://sso.example.com',
      resources: [{ id: 'https://erp.example.com', scopes: ['erp:read'] }],
      agents: [{
        clientId: 'reporting-agent', scopes: ['erp:read'], audiences: ['https://erp.example.com'],
        auth: { method: 'client_secret_basic', secret: '${file:/etc/agentgate/secrets/agents/reporting-agent}' },
      }],
    },
    redis: {
      mode: 'sentinel', sentinel: { nodes: [{ host: 'sentinel-0', port: 26379 }] },
      auth: { password: redisPassword, sentinelPassword },
    },
    signingKeys: { jwks },
    cookieKeys: { values: [cookie] },
    secretMounts: [{ name: 'agents', stringData: { 'reporting-agent': agentSecret } }],
  }));

  const jobs: Array<[string, RenderOptions]> = [
    ...ciValuesFiles().map((file): [string, RenderOptions] => [basename(file, '-values.yaml'), { values: [file] }]),
    ['inline', { values: [inlineValues] }],
    ['debug-logging', { values: [ci('default')], set: ['config.logging.level=debug'] }],
    ['one-replica', { values: [ci('default')], set: ['replicaCount=1'] }],
    ['old-kubernetes', { values: [ci('default')], kubeVersion: '1.29.0' }],
    ['no-tests', { values: [ci('default')], set: ['tests.enabled=false'] }],
  ];
  // The first call may build the shared renderer (serialized across test files); the rest are ~20 ms each.
  for (const [name, options] of jobs) rendered.set(name, await timed(options));
}

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
  if (renderTimes.length > 0) {
    console.log(`helm chart: ${renderTimes.length} renders, first ${renderTimes[0]} ms, then ${Math.max(...renderTimes.slice(1))} ms at most`);
  }
});

describe('every example in helm/agentgate/ci renders, and each manifest is valid for its Kubernetes API', () => {
  const files = ciValuesFiles().map((f) => basename(f, '-values.yaml'));

  it('has the examples the chart promises', () => {
    expect(files).toEqual(expect.arrayContaining(['default', 'ha-hpa', 'sentinel', 'ingress-tls', 'httproute', 'networkpolicy', 'existing-secrets']));
  });

  it.each([...files, 'inline'])('%s', async (name) => {
    const manifests = of(name);
    expect(manifests.length).toBeGreaterThan(4);
    for (const manifest of manifests) {
      await validateManifest(manifest);
      expect(manifest.metadata.labels?.['app.kubernetes.io/instance']).toBe('gw');
    }
  });

  it('the schema check catches a broken manifest (the validation can fail)', async () => {
    const broken = structuredClone(find(of('default'), 'Deployment')!) as unknown as { spec: { replicas: unknown } };
    broken.spec.replicas = 'two';
    await expect(validateManifest(broken as unknown as Manifest)).rejects.toThrow(/Deployment\/gw-agentgate.*replicas/);
  });
});

describe('default install (ci/default-values.yaml)', () => {
  it('renders the core objects and none of the optional ones', () => {
    expect(kinds(of('default'))).toEqual(['ConfigMap', 'Deployment', 'Pod', 'PodDisruptionBudget', 'Service', 'ServiceAccount']);
  });

  it('is a RollingUpdate Deployment of 2 replicas running `serve` on the mounted config', () => {
    const spec = deployment(of('default'));
    expect(spec.replicas).toBe(2);
    expect(spec.strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } });
    const container = spec.template.spec.containers[0]!;
    expect(container.args).toEqual(['serve', '--config', '/etc/agentgate/config.yaml']);
    expect(container.image).toBe('ghcr.io/agentgate/agentgate:0.1.0');
    expect(container.volumeMounts).toContainEqual({ name: 'config', mountPath: '/etc/agentgate/config.yaml', subPath: 'config.yaml', readOnly: true });
  });

  it('the gateway config is production: https issuer, Redis store, keys file, cookie keys, listening on the container port', () => {
    const config = gatewayConfig(of('default'));
    expect(config).toMatchObject({
      mode: 'production',
      issuer: 'https://sso.example.com',
      trustProxy: true,
      listen: { host: '0.0.0.0', port: 8080 },
      store: {
        driver: 'redis', keyPrefix: 'agentgate:', connectTimeout: '500ms', commandTimeout: '500ms',
        url: 'redis://:${file:/etc/agentgate/secrets/redis/password}@redis-master.redis.svc.cluster.local:6379/0',
      },
      keys: { file: '/etc/agentgate/keys/jwks.json' },
      cookies: { keys: ['${file:/etc/agentgate/secrets/cookies/cookie-key}'] },
    });
    const container = deployment(of('default')).template.spec.containers[0]!;
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
  });

  it('probes: startup and liveness on /healthz, readiness on /readyz, all on the http port', () => {
    const container = deployment(of('default')).template.spec.containers[0]! as Record<string, { httpGet: unknown; failureThreshold: number; periodSeconds: number }>;
    expect(container.livenessProbe!.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(container.readinessProbe!.httpGet).toEqual({ path: '/readyz', port: 'http' });
    expect(container.startupProbe!.httpGet).toEqual({ path: '/healthz', port: 'http' });
    // The gateway waits up to 5 s for Redis before it listens: the startup probe allows far more.
    expect(container.startupProbe!.failureThreshold * container.startupProbe!.periodSeconds).toBeGreaterThanOrEqual(30);
  });

  it('the pod is hardened: non-root 65532, read-only root, no privilege escalation, no capabilities, seccomp, no API token; /tmp is an emptyDir', () => {
    const spec = deployment(of('default')).template.spec;
    expect(spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, fsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } });
    expect(spec.containers[0]!.securityContext).toEqual({
      runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false,
      privileged: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(find(of('default'), 'ServiceAccount')).toMatchObject({ automountServiceAccountToken: false });
    expect(spec.serviceAccountName).toBe(FULLNAME);
    expect(spec.volumes).toContainEqual({ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } });
    expect(spec.containers[0]!.volumeMounts).toContainEqual({ name: 'tmp', mountPath: '/tmp' });
    expect(spec.containers[0]!.resources).toMatchObject({ requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '512Mi' } });
  });

  it('graceful shutdown: preStop sleep, then SIGTERM, within a grace period longer than sleep + shutdown.timeout', () => {
    const spec = deployment(of('default')).template.spec;
    expect(spec.containers[0]!.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    expect(spec.terminationGracePeriodSeconds).toBe(30);
    expect(gatewayConfig(of('default')).shutdown).toEqual({ timeout: '10s' });
    // Before Kubernetes 1.30 there is no sleep action; the distroless image has no sleep binary.
    const old = deployment(of('old-kubernetes')).template.spec.containers[0]!.lifecycle as { preStop: { exec: { command: string[] } } };
    expect(old.preStop.exec.command).toEqual(['/nodejs/bin/node', '-e', 'setTimeout(() => {}, 5000)']);
  });

  it('the Service has named ports http and metrics, both on the one container port the gateway serves /metrics on', () => {
    const service = find(of('default'), 'Service') as unknown as { spec: { ports: unknown[]; selector: Record<string, string> } };
    expect(service.spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
      { name: 'metrics', port: 9090, targetPort: 'http', protocol: 'TCP' },
    ]);
    expect(service.spec.selector).toEqual({ 'app.kubernetes.io/name': 'agentgate', 'app.kubernetes.io/instance': 'gw' });
    expect(deployment(of('default')).template.metadata.labels).toMatchObject(service.spec.selector);
  });

  it('signing keys and cookie keys come from the existing Secrets; the chart makes no Secret', () => {
    const spec = deployment(of('default')).template.spec;
    expect(find(of('default'), 'Secret')).toBeUndefined();
    expect(spec.volumes).toContainEqual({ name: 'signing-keys', secret: { secretName: 'agentgate-keys', defaultMode: 0o440, items: [{ key: 'jwks.json', path: 'jwks.json' }] } });
    expect(spec.volumes).toContainEqual({ name: 'cookie-keys', secret: { secretName: 'agentgate-cookies', defaultMode: 0o440, items: [{ key: 'cookie-key', path: 'cookie-key' }] } });
    expect(spec.volumes).toContainEqual({ name: 'redis-auth', secret: { secretName: 'redis', defaultMode: 0o440, items: [{ key: 'redis-password', path: 'password' }] } });
  });

  it('the helm test pod fetches the discovery document through the Service, hardened too', () => {
    const pod = find(of('default'), 'Pod') as unknown as {
      metadata: { annotations: Record<string, string> };
      spec: { containers: Array<{ image: string; args: string[]; securityContext: Record<string, unknown> }>; securityContext: Record<string, unknown>; restartPolicy: string };
    };
    expect(pod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.containers[0]!.image).toBe('busybox:1.37');
    expect(pod.spec.containers[0]!.args[0]).toContain(`wget -q -T 10 -O /tmp/discovery.json http://${FULLNAME}:80/.well-known/openid-configuration`);
    expect(pod.spec.containers[0]!.args[0]).toContain(`grep -q '"issuer":"https://sso.example.com"'`);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsNonRoot: true,
    });
    expect(find(of('no-tests'), 'Pod')).toBeUndefined();
  });
});

describe('replicas, HPA and PodDisruptionBudget', () => {
  it('with the HPA on, the Deployment sets no replicas and the HPA (autoscaling/v2) scales it', () => {
    const manifests = of('ha-hpa');
    expect(deployment(manifests).replicas).toBeUndefined();
    expect(find(manifests, 'HorizontalPodAutoscaler')).toMatchObject({
      apiVersion: 'autoscaling/v2',
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME }, minReplicas: 3, maxReplicas: 10,
        metrics: [
          { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
          { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
        ],
        behavior: { scaleDown: { stabilizationWindowSeconds: 300 } },
      },
    });
    expect(find(of('default'), 'HorizontalPodAutoscaler')).toBeUndefined();
  });

  it('a PDB exists when there is more than one replica (default 2, or the HPA), not with one', () => {
    expect(find(of('default'), 'PodDisruptionBudget')).toMatchObject({ spec: { maxUnavailable: 1, selector: { matchLabels: { 'app.kubernetes.io/instance': 'gw' } } } });
    expect(find(of('ha-hpa'), 'PodDisruptionBudget')).toMatchObject({ spec: { minAvailable: 2 } });
    expect((find(of('ha-hpa'), 'PodDisruptionBudget') as unknown as { spec: object }).spec).not.toHaveProperty('maxUnavailable');
    expect(find(of('one-replica'), 'PodDisruptionBudget')).toBeUndefined();
    expect(deployment(of('one-replica')).replicas).toBe(1);
  });

  it('spreads replicas: hard anti-affinity per node, zone spread with this release as the selector', () => {
    const spec = deployment(of('ha-hpa')).template.spec as Record<string, unknown>;
    const selector = { matchLabels: { 'app.kubernetes.io/name': 'agentgate', 'app.kubernetes.io/instance': 'gw' } };
    expect(spec.affinity).toEqual({ podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'kubernetes.io/hostname', labelSelector: selector }] } });
    expect(spec.topologySpreadConstraints).toEqual([{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: selector }]);
    expect(spec.priorityClassName).toBe('system-cluster-critical');
    expect((deployment(of('default')).template.spec as Record<string, unknown>).affinity).toMatchObject({ podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [expect.objectContaining({ weight: 100 })] } });
  });

  it('the HA example drains longer: 10 s preStop, 20 s shutdown timeout, 40 s grace', () => {
    const spec = deployment(of('ha-hpa')).template.spec;
    expect(spec.terminationGracePeriodSeconds).toBe(40);
    expect(spec.containers[0]!.lifecycle).toEqual({ preStop: { sleep: { seconds: 10 } } });
    expect(gatewayConfig(of('ha-hpa')).shutdown).toEqual({ timeout: '20s' });
  });
});

describe('optional objects render only when enabled', () => {
  const optional = ['Ingress', 'HTTPRoute', 'NetworkPolicy', 'ServiceMonitor', 'HorizontalPodAutoscaler'];
  it.each([
    ['default', []], ['sentinel', []], ['existing-secrets', []],
    ['ingress-tls', ['Ingress']], ['httproute', ['HTTPRoute']], ['networkpolicy', ['NetworkPolicy']],
    ['ha-hpa', ['HorizontalPodAutoscaler', 'ServiceMonitor']],
  ])('%s: %j', (name, expected) => {
    expect(kinds(of(name)).filter((k) => optional.includes(k))).toEqual(expected);
  });

  it('Ingress: class, host, TLS, backend on the http Service port', () => {
    expect(find(of('ingress-tls'), 'Ingress')).toMatchObject({
      apiVersion: 'networking.k8s.io/v1',
      metadata: { annotations: { 'cert-manager.io/cluster-issuer': 'letsencrypt' } },
      spec: {
        ingressClassName: 'nginx',
        tls: [{ secretName: 'login-example-com-tls', hosts: ['login.example.com'] }],
        rules: [{ host: 'login.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: FULLNAME, port: { name: 'http' } } } }] } }],
      },
    });
  });

  it('HTTPRoute: attached to the Gateway, host from the issuer; the helm test uses the issuer path', () => {
    expect(find(of('httproute'), 'HTTPRoute')).toMatchObject({
      apiVersion: 'gateway.networking.k8s.io/v1',
      spec: {
        parentRefs: [{ name: 'public', namespace: 'gateway-system', sectionName: 'https' }],
        hostnames: ['auth.example.com'],
        rules: [{ matches: [{ path: { type: 'PathPrefix', value: '/' } }], backendRefs: [{ name: FULLNAME, port: 80 }] }],
      },
    });
    const pod = find(of('httproute'), 'Pod') as unknown as { spec: { containers: Array<{ args: string[] }> } };
    expect(pod.spec.containers[0]!.args[0]).toContain(`http://${FULLNAME}:80/sso/.well-known/openid-configuration`);
  });

  it('NetworkPolicy: in only from the ingress controller, Prometheus and the test pod; out only to DNS, Redis and HTTPS', () => {
    const policy = find(of('networkpolicy'), 'NetworkPolicy') as unknown as { spec: Record<string, unknown> };
    expect(policy.spec.podSelector).toEqual({ matchLabels: { 'app.kubernetes.io/name': 'agentgate', 'app.kubernetes.io/instance': 'gw' } });
    expect(policy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(policy.spec.ingress).toEqual([{
      ports: [{ port: 8080, protocol: 'TCP' }],
      from: [
        { podSelector: { matchLabels: { 'agentgate/client': FULLNAME } } },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } },
        { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } },
      ],
    }]);
    expect(policy.spec.egress).toEqual([
      {
        ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }],
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
      },
      { ports: [{ port: 6379, protocol: 'TCP' }], to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'redis' } } }] },
      { ports: [{ port: 443, protocol: 'TCP' }], to: [{ ipBlock: { cidr: '0.0.0.0/0' } }] },
    ]);
    const testPod = find(of('networkpolicy'), 'Pod')!;
    expect(testPod.metadata.labels?.['agentgate/client']).toBe(FULLNAME);
  });

  it('NetworkPolicy Redis ports follow the Redis mode (sentinel: sentinels + data port; URL port)', async () => {
    const sentinel = await render({ values: [ci('sentinel')], set: ['networkPolicy.enabled=true'] });
    const ports = (m: Manifest[]) => ((find(m, 'NetworkPolicy') as unknown as { spec: { egress: Array<{ ports: Array<{ port: number }> }> } }).spec.egress[1]!.ports.map((p) => p.port));
    expect(ports(sentinel)).toEqual([6379, 26379]);
    const url = await render({ values: [ci('ha-hpa')], set: ['networkPolicy.enabled=true'] });
    expect(ports(url)).toEqual([6380]);
  });

  it('ServiceMonitor scrapes /metrics on the metrics port, labelled for Prometheus', () => {
    expect(find(of('ha-hpa'), 'ServiceMonitor')).toMatchObject({
      apiVersion: 'monitoring.coreos.com/v1',
      metadata: { labels: { release: 'prometheus' } },
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/name': 'agentgate', 'app.kubernetes.io/instance': 'gw' } },
        endpoints: [{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '10s' }],
      },
    });
  });
});

describe('extension points', () => {
  it('env, envFrom, extraVolumes, extraVolumeMounts and extraObjects are tpl-rendered; lifecycle and /tmp can be replaced', async () => {
    const file = join(tmp, 'extensions.yaml');
    writeFileSync(file, stringify({
      env: [{ name: 'RELEASE', value: '{{ .Release.Name }}' }],
      envFrom: [{ secretRef: { name: '{{ .Release.Name }}-env' } }],
      extraVolumes: [{ name: 'ca', configMap: { name: '{{ .Release.Name }}-ca' } }],
      extraVolumeMounts: [{ name: 'ca', mountPath: '/etc/ssl/extra', readOnly: true }],
      extraObjects: [
        { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: '{{ .Release.Name }}-ca' }, data: { 'ca.crt': 'x' } },
        'apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-env\nstringData:\n  A: b\n',
      ],
      lifecycle: { preStop: { exec: { command: ['/nodejs/bin/node', '-e', '1'] } } },
      tmpVolume: { enabled: false },
      nodeSelector: { 'kubernetes.io/arch': 'amd64' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'sso', effect: 'NoSchedule' }],
      image: { digest: `sha256:${'a'.repeat(64)}` },
    }));
    const manifests = await render({ values: [ci('default'), file] });
    for (const manifest of manifests) await validateManifest(manifest);
    const spec = deployment(manifests).template.spec;
    const container = spec.containers[0]!;
    expect(container.env).toEqual([{ name: 'RELEASE', value: 'gw' }]);
    expect(container.envFrom).toEqual([{ secretRef: { name: 'gw-env' } }]);
    expect(container.volumeMounts).toContainEqual({ name: 'ca', mountPath: '/etc/ssl/extra', readOnly: true });
    expect(container.volumeMounts).not.toContainEqual(expect.objectContaining({ name: 'tmp' }));
    expect(container.lifecycle).toEqual({ preStop: { exec: { command: ['/nodejs/bin/node', '-e', '1'] } } });
    expect(container.image).toBe(`ghcr.io/agentgate/agentgate@sha256:${'a'.repeat(64)}`);
    expect(spec.volumes).toContainEqual({ name: 'ca', configMap: { name: 'gw-ca' } });
    expect(spec.nodeSelector).toEqual({ 'kubernetes.io/arch': 'amd64' });
    expect(spec.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'sso', effect: 'NoSchedule' }]);
    expect(find(manifests, 'ConfigMap', 'gw-ca')).toMatchObject({ data: { 'ca.crt': 'x' } });
    expect(find(manifests, 'Secret', 'gw-env')).toMatchObject({ stringData: { A: 'b' } });
  });
});

describe('ServiceAccount', () => {
  it('created with annotations (e.g. workload identity), or an existing one used', async () => {
    const created = await render({ values: [ci('default')], set: ['serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/sso'] });
    expect(find(created, 'ServiceAccount')).toMatchObject({ metadata: { name: FULLNAME, annotations: { 'eks.amazonaws.com/role-arn': 'arn:aws:iam::1:role/sso' } } });
    const existing = await render({ values: [ci('default')], set: ['serviceAccount.create=false', 'serviceAccount.name=sso-runner'] });
    expect(find(existing, 'ServiceAccount')).toBeUndefined();
    expect(deployment(existing).template.spec.serviceAccountName).toBe('sso-runner');
  });
});

describe('Redis modes map onto the gateway store', () => {
  it('sentinel: master name, sentinels, the data and sentinel passwords as files', () => {
    expect(gatewayConfig(of('sentinel')).store).toEqual({
      driver: 'redis', keyPrefix: 'agentgate:', connectTimeout: '500ms', commandTimeout: '500ms',
      sentinel: {
        name: 'mymaster', db: 0, tls: false,
        sentinels: [0, 1, 2].map((i) => ({ host: `redis-node-${i}.redis-headless.redis.svc.cluster.local`, port: 26379 })),
        password: '${file:/etc/agentgate/secrets/redis/password}',
        sentinelPassword: '${file:/etc/agentgate/secrets/redis/sentinel-password}',
      },
    });
    expect(deployment(of('sentinel')).template.spec.volumes).toContainEqual({
      name: 'redis-auth',
      secret: { secretName: 'redis', defaultMode: 0o440, items: [{ key: 'redis-password', path: 'password' }, { key: 'redis-password', path: 'sentinel-password' }] },
    });
  });

  it('cluster: seed nodes and the password', () => {
    expect(gatewayConfig(of('networkpolicy')).store).toMatchObject({
      cluster: {
        nodes: [0, 1, 2].map((i) => ({ host: `redis-cluster-${i}.redis-cluster-headless.redis.svc.cluster.local`, port: 6379 })),
        password: '${file:/etc/agentgate/secrets/redis/password}', tls: false,
      },
    });
  });

  it('standalone by URL: the password goes in from the Secret; by urlKey: the whole URL is a file', () => {
    expect(gatewayConfig(of('ha-hpa')).store).toMatchObject({ url: 'rediss://:${file:/etc/agentgate/secrets/redis/password}@redis.example.internal:6380/2' });
    expect(gatewayConfig(of('existing-secrets')).store).toMatchObject({ url: '${file:/etc/agentgate/secrets/redis/url}' });
  });

  it('a URL with credentials is refused (it would land in the ConfigMap)', async () => {
    expect(await rejection({ values: [ci('default')], set: ['redis.url=redis://:hunter2@redis:6379/0'] }))
      .toMatch(/redis.url must not carry credentials/);
  });

  it('sentinel and cluster modes need their nodes', async () => {
    expect(await rejection({ values: [ci('default')], set: ['redis.mode=sentinel'] })).toMatch(/redis.sentinel.nodes is required/);
    expect(await rejection({ values: [ci('default')], set: ['redis.mode=cluster'] })).toMatch(/redis.cluster.nodes is required/);
  });
});

describe('secrets', () => {
  it('existing secrets everywhere: no chart Secret; each volume and env var names the right Secret and key', () => {
    const manifests = of('existing-secrets');
    expect(find(manifests, 'Secret')).toBeUndefined();
    const { container, volumes } = podSpec(manifests);
    const secretVolume = (name: string) => volumes.find((v) => v.name === name)?.secret;
    expect(secretVolume('signing-keys')).toEqual({ secretName: 'agentgate-signing', defaultMode: 0o440, items: [{ key: 'jwks-2026.json', path: 'jwks.json' }] });
    expect(secretVolume('cookie-keys')).toEqual({ secretName: 'agentgate-cookies', defaultMode: 0o440, items: [{ key: 'current', path: 'current' }, { key: 'previous', path: 'previous' }] });
    expect(secretVolume('redis-auth')).toEqual({ secretName: 'redis-url', defaultMode: 0o440, items: [{ key: 'url', path: 'url' }] });
    expect(secretVolume('secret-okta')).toEqual({ secretName: 'okta-oidc', defaultMode: 0o440 });
    expect(secretVolume('secret-saml-sp')).toEqual({ secretName: 'agentgate-saml-sp', defaultMode: 0o440 });
    expect(secretVolume('secret-clients')).toEqual({ secretName: 'agentgate-clients', defaultMode: 0o440 });
    expect(container.volumeMounts).toEqual(expect.arrayContaining([
      { name: 'signing-keys', mountPath: '/etc/agentgate/keys', readOnly: true },
      { name: 'cookie-keys', mountPath: '/etc/agentgate/secrets/cookies', readOnly: true },
      { name: 'redis-auth', mountPath: '/etc/agentgate/secrets/redis', readOnly: true },
      { name: 'secret-okta', mountPath: '/etc/agentgate/secrets/okta', readOnly: true },
      { name: 'secret-saml-sp', mountPath: '/etc/agentgate/secrets/saml-sp', readOnly: true },
      { name: 'secret-clients', mountPath: '/etc/agentgate/secrets/clients', readOnly: true },
    ]));
    expect(container.env).toEqual([{ name: 'ERP_API_SECRET', valueFrom: { secretKeyRef: { name: 'erp-api-client', key: 'secret' } } }]);
    const config = gatewayConfig(manifests) as { cookies: unknown; identityProviders: Array<Record<string, unknown>> };
    expect(config.cookies).toEqual({ keys: ['${file:/etc/agentgate/secrets/cookies/current}', '${file:/etc/agentgate/secrets/cookies/previous}'] });
    expect(config.identityProviders[0]!.clientSecret).toBe('${file:/etc/agentgate/secrets/okta/client-secret}');
  });

  it('inline values go into the chart-made Secrets, and no ConfigMap holds any of them', () => {
    const manifests = of('inline');
    const secret = find(manifests, 'Secret', FULLNAME) as unknown as { data: Record<string, string> };
    const decoded = Object.fromEntries(Object.entries(secret.data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    const [jwks, cookie, redisPassword, sentinelPassword, agentSecret] = inlineSecrets;
    expect(decoded).toEqual({ 'jwks.json': jwks, 'cookie-key-0': cookie, 'redis-password': redisPassword, 'redis-sentinel-password': sentinelPassword });
    const agents = find(manifests, 'Secret', `${FULLNAME}-agents`) as unknown as { data: Record<string, string> };
    expect(Buffer.from(agents.data['reporting-agent']!, 'base64').toString('utf8')).toBe(agentSecret);

    const { volumes } = podSpec(manifests);
    expect(volumes.find((v) => v.name === 'signing-keys')?.secret).toMatchObject({ secretName: FULLNAME, items: [{ key: 'jwks.json', path: 'jwks.json' }] });
    expect(volumes.find((v) => v.name === 'secret-agents')?.secret).toMatchObject({ secretName: `${FULLNAME}-agents` });

    // Every ConfigMap of every render: no marker, no secret value, raw or base64.
    const needles = [MARK, ...inlineSecrets, ...inlineSecrets.map((s) => Buffer.from(s).toString('base64'))];
    for (const [name, all] of rendered) {
      for (const cm of all.filter((m) => m.kind === 'ConfigMap')) {
        const text = JSON.stringify(cm);
        for (const needle of needles) expect(text.includes(needle), `${name}: ConfigMap ${cm.metadata.name} holds a secret`).toBe(false);
      }
    }
    expect(JSON.stringify(find(manifests, 'ConfigMap'))).toContain('${file:/etc/agentgate/secrets/agents/reporting-agent}');
  });

  it('an inline secret in the gateway config is refused, naming its path', async () => {
    const file = join(tmp, 'inline-in-config.yaml');
    writeFileSync(file, stringify({
      config: {
        identityProviders: [{ id: 'okta', type: 'oidc', preset: 'okta', issuer: 'https://acme.okta.com', clientId: 'x', clientSecret: 'plain-text-secret' }],
      },
    }));
    expect(await rejection({ values: [ci('default'), file] })).toMatch(/config\.identityProviders\[0\]\.clientSecret: put the secret in a Secret/);
    const agent = join(tmp, 'inline-agent.yaml');
    writeFileSync(agent, stringify({ config: { agents: [{ clientId: 'a', auth: { method: 'client_secret_basic', secret: 'x'.repeat(40) } }] } }));
    expect(await rejection({ values: [ci('default'), agent] })).toMatch(/config\.agents\[0\]\.auth\.secret/);
  });

  it('secret inputs are either existing or inline, not both', async () => {
    expect(await rejection({ values: [ci('default')], set: ['signingKeys.jwks=abc'] })).toMatch(/signingKeys: set existingSecret or inline jwks, not both/);
    expect(await rejection({ values: [ci('default')], set: ['redis.auth.password=x'] })).toMatch(/redis.auth: set existingSecret or the inline/);
  });
});

describe('checksums roll the pods', () => {
  const annotations = (name: string) => deployment(of(name)).template.metadata.annotations;

  it('checksum/config changes with the config, checksum/secret does not', () => {
    expect(annotations('default')['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    expect(annotations('debug-logging')['checksum/config']).not.toBe(annotations('default')['checksum/config']);
    expect(annotations('debug-logging')['checksum/secret']).toBe(annotations('default')['checksum/secret']);
    expect(annotations('one-replica')['checksum/config']).toBe(annotations('default')['checksum/config']);
  });

  it('checksum/secret changes with an inline secret', async () => {
    const rotated = await render({ values: [inlineValues], set: [`cookieKeys.values={${randomSecret()}}`] });
    const annotation = (m: Manifest[]) => deployment(m).template.metadata.annotations;
    expect(annotation(rotated)['checksum/secret']).not.toBe(annotations('inline')['checksum/secret']);
    expect(annotation(rotated)['checksum/config']).toBe(annotations('inline')['checksum/config']);
  });
});

describe('values that fail at install, not at 3 am', () => {
  it.each([
    ['replicaCount: "three"', ['replicaCount=three'], /replicaCount: Invalid type\. Expected: integer, given: string|replicaCount.*(integer|string)/],
    ['an unknown top-level key', ['replicaCont=3'], /[Aa]dditional propert(y|ies).*replicaCont|replicaCont.*not allowed/],
    ['an unknown key in a main object', ['service.prot=80'], /prot/],
    ['the chart-owned store in config', ['config.store.driver=memory'], /store/],
    ['a bad Redis mode', ['redis.mode=replicated'], /redis.mode/],
    ['a service port of the wrong type', ['service.port=eighty'], /service.port|port/],
    ['an unknown pull policy', ['image.pullPolicy=Sometimes'], /pullPolicy/],
  ])('the values schema rejects %s', async (_what, set, message) => {
    const error = await rejection({ values: [ci('default')], set });
    expect(error).toMatch(/schema/);
    expect(error).toMatch(message);
  });

  it('the values schema knows every top-level key of the gateway config (the chart writes listen, store, keys, cookies)', () => {
    // The gateway schema is the source of truth (src/config/schema.ts); a key it gains must be
    // allowed under `config` here, or `helm install` would refuse a valid config.
    const values = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as {
      properties: { config: { properties: Record<string, unknown>; additionalProperties: boolean } };
    };
    const chartKeys = Object.keys(values.properties.config.properties);
    expect(values.properties.config.additionalProperties).toBe(false);
    expect([...chartKeys, 'listen', 'store', 'keys', 'cookies'].sort()).toEqual(Object.keys(configSchema.shape).sort());
  });

  it.each([
    ['no issuer', ['config.issuer='], /config.issuer is required: the public https URL/],
    ['an http issuer', ['config.issuer=http://sso.example.com'], /must be https in production mode/],
    ['an issuer ending in /', ['config.issuer=https://sso.example.com/'], /must not end with/],
    ['no signing keys', ['signingKeys.existingSecret='], /signingKeys is required in production.*agentgate keys generate/s],
    ['no cookie keys', ['cookieKeys.existingSecret='], /cookieKeys is required in production.*openssl rand/s],
    ['no Redis', ['redis.host='], /redis.host \(or redis.url\) is required/],
    ['a grace period shorter than preStop + shutdown timeout', ['terminationGracePeriodSeconds=12'], /terminationGracePeriodSeconds \(12\) must exceed preStopSleepSeconds \(5\) \+ config.shutdown.timeout \(10s\)/],
    ['a short inline cookie key', ['cookieKeys.existingSecret=', 'cookieKeys.values={short}'], /32/],
    ['an HTTPRoute without a Gateway', ['httpRoute.enabled=true'], /httpRoute.parentRefs is required/],
  ])('the chart refuses %s with a message that says what to do', async (_what, set, message) => {
    expect(await rejection({ values: [ci('default')], set })).toMatch(message);
  });

  it('refuses a secret mount that takes a directory the chart uses', async () => {
    const file = join(tmp, 'secret-mount-redis.yaml');
    writeFileSync(file, stringify({ secretMounts: [{ name: 'redis', existingSecret: 'x' }] }));
    expect(await rejection({ values: [ci('default'), file] })).toMatch(/secretMounts\[0\]\.name "redis" is used by the chart/);
    writeFileSync(file, stringify({ secretMounts: [{ name: 'okta' }] }));
    expect(await rejection({ values: [ci('default'), file] })).toMatch(/secretMounts\[0\] \(okta\): set exactly one of existingSecret or stringData/);
  });
});
