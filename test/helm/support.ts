// What the Helm chart tests share: find a renderer (`helm template`, or the shared
// `helm-template` that builds a Go renderer from Debian packages), render the chart, validate
// every manifest against the Kubernetes API schemas (kubernetes-models, plus the Gateway API and
// prometheus-operator models for the CRDs), and "start" the pod on disk: write the files its
// volumes would hold and the environment it would get, so the real `agentgate check-config`
// can run against exactly the config and secrets the chart wires up.
import { execFile } from 'node:child_process';
import { constants, accessSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CHART = join(REPO, 'helm/agentgate');
export const CI_DIR = join(CHART, 'ci');

export type Manifest = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
};

interface Renderer {
  /** How it was found, for messages. */
  description: string;
  command: string;
  args: (release: string, flags: string[]) => string[];
  /** The shared script builds a Go binary on first use: serialize that first call across test files. */
  buildsOnFirstUse: boolean;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** HELM_TEMPLATE, helm on PATH, <repo>/../shared/tools/helm-template, /work/shared/tools/helm-template. */
export function locateRenderer(env: NodeJS.ProcessEnv = process.env): Renderer {
  const shared = (command: string, description: string): Renderer => ({
    description, command, buildsOnFirstUse: true,
    args: (release, flags) => ['--name', release, ...flags, CHART],
  });
  if (env.HELM_TEMPLATE) {
    if (!isExecutable(env.HELM_TEMPLATE)) throw new Error(`HELM_TEMPLATE=${env.HELM_TEMPLATE} is not an executable file`);
    return shared(env.HELM_TEMPLATE, `HELM_TEMPLATE (${env.HELM_TEMPLATE})`);
  }
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const helm = join(dir, 'helm');
    if (isExecutable(helm)) {
      return {
        description: `helm (${helm})`, command: helm, buildsOnFirstUse: false,
        args: (release, flags) => ['template', release, CHART, ...flags],
      };
    }
  }
  for (const candidate of [resolve(REPO, '../shared/tools/helm-template'), '/work/shared/tools/helm-template']) {
    if (isExecutable(candidate)) return shared(candidate, `shared renderer (${candidate})`);
  }
  throw new Error(
    'no Helm renderer: install helm (https://helm.sh), or set HELM_TEMPLATE to a `helm-template`-compatible script, ' +
    'or provide ../shared/tools/helm-template beside the repository (it needs golang-go and the sprig, yaml.v2 and ' +
    'gojsonschema Debian packages; .ci/run installs them)',
  );
}

let firstCall: Promise<void> | undefined;

/** A cross-process lock (mkdir is atomic), held while the shared renderer may be building itself. */
async function withBuildLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = join(tmpdir(), 'agentgate-helm-render.lock');
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock older than 10 minutes belongs to a process that died.
      try {
        if (Date.now() - statSync(lock).mtimeMs > 10 * 60_000) rmSync(lock, { recursive: true, force: true });
      } catch { /* gone meanwhile */ }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export class RenderError extends Error {}

export interface RenderOptions {
  values?: string[];
  set?: string[];
  release?: string;
  /** Kubernetes version the chart sees (.Capabilities.KubeVersion). */
  kubeVersion?: string;
}

/** Renders the chart; resolves to the raw output, rejects with RenderError carrying helm's message. */
export async function renderRaw(options: RenderOptions = {}): Promise<string> {
  const renderer = locateRenderer();
  const flags = [
    ...(options.values ?? []).flatMap((file) => ['-f', file]),
    ...(options.set ?? []).flatMap((expr) => ['--set', expr]),
    ...(options.kubeVersion ? ['--kube-version', options.kubeVersion] : []),
  ];
  const call = async () => {
    try {
      const { stdout } = await run(renderer.command, renderer.args(options.release ?? 'gw', flags), {
        maxBuffer: 16 * 1024 * 1024, timeout: 9 * 60_000,
      });
      return stdout;
    } catch (error) {
      const { stderr, code } = error as { stderr?: string; code?: unknown };
      if (typeof code === 'string') throw new Error(`cannot run ${renderer.description}: ${code}`, { cause: error });
      throw new RenderError((stderr ?? String(error)).trim(), { cause: error });
    }
  };
  if (!renderer.buildsOnFirstUse) return call();
  if (!firstCall) {
    const first = withBuildLock(call);
    firstCall = first.then(() => undefined, () => undefined);
    return first;
  }
  await firstCall;
  return call();
}

export async function render(options: RenderOptions = {}): Promise<Manifest[]> {
  const out = await renderRaw(options);
  const manifests: Manifest[] = [];
  for (const doc of parseAllDocuments(out)) {
    if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}\n${out}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) continue;
    manifests.push(value as Manifest);
  }
  return manifests;
}

export const ciValuesFiles = (): string[] =>
  readdirSync(CI_DIR).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(CI_DIR, f));

// ---- Kubernetes API schemas ----------------------------------------------------------------

type Model = new (data: unknown) => { validate(): void };

function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('gateway.networking.k8s.io/')) return `@kubernetes-models/gateway-api/${apiVersion}/${kind}`;
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Validates one manifest against its API schema; throws naming the object and the field. */
export async function validateManifest(manifest: Manifest): Promise<void> {
  const where = `${manifest.kind}/${manifest.metadata?.name} (${manifest.apiVersion})`;
  let model: Model | undefined;
  try {
    const mod = await import(modelModule(manifest.apiVersion, manifest.kind)) as Record<string, Model>;
    model = mod[manifest.kind];
  } catch {
    model = undefined;
  }
  if (!model) throw new Error(`${where}: no schema for this apiVersion/kind`);
  try {
    new model(manifest).validate();
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
  }
}

// ---- Running the pod's config on disk -----------------------------------------------------

/** Secrets that exist in the cluster before the install (existingSecret), by name → key → value. */
export type ClusterSecrets = Record<string, Record<string, string>>;

export const find = (manifests: Manifest[], kind: string, name?: string): Manifest | undefined =>
  manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name));

type Container = {
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }>;
  envFrom?: Array<{ secretRef?: { name: string } }>;
  volumeMounts?: Array<{ name: string; mountPath: string; subPath?: string }>;
};
type Volume = {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
  emptyDir?: object;
};

export function podSpec(manifests: Manifest[]): { container: Container; volumes: Volume[] } {
  const deployment = find(manifests, 'Deployment') as unknown as {
    spec: { template: { spec: { containers: Container[]; volumes?: Volume[] } } };
  } | undefined;
  if (!deployment) throw new Error('no Deployment rendered');
  const spec = deployment.spec.template.spec;
  return { container: spec.containers[0]!, volumes: spec.volumes ?? [] };
}

/**
 * Writes what the pod would see under `root` (config map and secret volumes at their mount
 * paths) and returns its environment. Throws like the kubelet would refuse to start the pod:
 * a Secret or a key that does not exist.
 */
export function materializePod(manifests: Manifest[], cluster: ClusterSecrets, root: string): Record<string, string> {
  const { container, volumes } = podSpec(manifests);
  const secretData = (name: string): Record<string, string> => {
    const made = find(manifests, 'Secret', name) as { data?: Record<string, string> } | undefined;
    if (made) {
      return Object.fromEntries(Object.entries(made.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
    }
    const existing = cluster[name];
    if (!existing) throw new Error(`the pod would not start: Secret "${name}" does not exist`);
    return existing;
  };
  const secretKey = (name: string, key: string): string => {
    const value = secretData(name)[key];
    if (value === undefined) throw new Error(`the pod would not start: Secret "${name}" has no key "${key}"`);
    return value;
  };
  const write = (path: string, content: string) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  };

  for (const mount of container.volumeMounts ?? []) {
    const volume = volumes.find((v) => v.name === mount.name);
    if (!volume) throw new Error(`volumeMount ${mount.name} has no volume`);
    const target = join(root, mount.mountPath);
    let files: Record<string, string>;
    if (volume.configMap) {
      const cm = find(manifests, 'ConfigMap', volume.configMap.name) as { data?: Record<string, string> } | undefined;
      if (!cm) throw new Error(`the pod would not start: ConfigMap "${volume.configMap.name}" is not rendered`);
      files = cm.data ?? {};
    } else if (volume.secret) {
      const { secretName, items } = volume.secret;
      files = items
        ? Object.fromEntries(items.map((item) => [item.path, secretKey(secretName, item.key)]))
        : secretData(secretName);
    } else if (volume.emptyDir) {
      mkdirSync(target, { recursive: true });
      continue;
    } else {
      throw new Error(`volume ${volume.name}: kind not simulated`);
    }
    if (mount.subPath !== undefined) {
      const content = files[mount.subPath];
      if (content === undefined) throw new Error(`subPath ${mount.subPath} not in volume ${volume.name}`);
      write(target, content);
    } else {
      for (const [file, content] of Object.entries(files)) write(join(target, file), content);
    }
  }

  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.secretRef) Object.assign(env, secretData(source.secretRef.name));
  }
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    else if (variable.valueFrom?.secretKeyRef) {
      env[variable.name] = secretKey(variable.valueFrom.secretKeyRef.name, variable.valueFrom.secretKeyRef.key);
    }
  }
  return env;
}

export interface CheckConfigResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The pod's files under a temporary root, its config with absolute /etc/agentgate paths mapped there, and its env. */
export interface PodOnDisk {
  configPath: string;
  env: Record<string, string>;
  dispose(): void;
}

export function podOnDisk(manifests: Manifest[], cluster: ClusterSecrets): PodOnDisk {
  const root = join(tmpdir(), `agentgate-helm-pod-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const dispose = () => rmSync(root, { recursive: true, force: true });
  try {
    const env = materializePod(manifests, cluster, root);
    const configPath = join(root, 'etc/agentgate/config.yaml');
    if (!existsSync(configPath)) throw new Error('the Deployment mounts no /etc/agentgate/config.yaml');
    writeFileSync(configPath, readFileSync(configPath, 'utf8').replaceAll('/etc/agentgate/', `${root}/etc/agentgate/`));
    return { configPath, env, dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}

/**
 * Runs the real CLI, `node bin/agentgate.js check-config`, on the config the chart renders, with
 * the pod's files and the pod's environment only.
 */
export async function checkRenderedConfig(manifests: Manifest[], cluster: ClusterSecrets): Promise<CheckConfigResult> {
  const pod = podOnDisk(manifests, cluster);
  try {
    const { stdout, stderr } = await run(process.execPath, [join(REPO, 'bin/agentgate.js'), 'check-config', '--config', pod.configPath], {
      env: { PATH: process.env.PATH ?? '', ...pod.env }, timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { stdout = '', stderr = '', code } = error as { stdout?: string; stderr?: string; code?: unknown };
    return { code: typeof code === 'number' ? code : 1, stdout, stderr };
  } finally {
    pod.dispose();
  }
}
