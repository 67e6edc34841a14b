// The container image and the chart agree (no Docker engine runs here, so the Dockerfile is
// checked as text): same node binary path, same command, a non-root user that matches the pod's
// securityContext, production dependencies only, and a build context that holds what the build
// copies. The image layout itself (dist/ + bin/ + package.json + production node_modules) is what
// `bin/agentgate.js` runs when src/ is absent.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { CHART, REPO } from './support.ts';

const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(REPO, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const instructions = dockerfile.split('\n').filter((l) => /^[A-Z]+\s/.test(l));
const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8')) as { securityContext: { runAsUser: number; runAsGroup: number } };

describe('Dockerfile', () => {
  it('is multi-stage: build with the dev toolchain, production dependencies alone, a distroless Node 22 runtime', () => {
    const stages = instructions.filter((l) => l.startsWith('FROM '));
    expect(stages).toEqual([
      'FROM node:${NODE_VERSION}-bookworm-slim AS build',
      'FROM node:${NODE_VERSION}-bookworm-slim AS deps',
      'FROM gcr.io/distroless/nodejs22-debian12:nonroot AS runtime',
    ]);
    expect(instructions).toContain('RUN npm run build');
    expect(instructions).toContain('RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force');
    // The runtime gets the compiled output, never src/ (bin/agentgate.js would run the TypeScript then).
    const copies = instructions.filter((l) => l.startsWith('COPY') && instructions.indexOf(l) > instructions.indexOf(stages[2]!));
    expect(copies.join('\n')).not.toMatch(/\bsrc\b(?!\/)/);
    expect(copies.join('\n')).toMatch(/--from=deps .*node_modules/);
    expect(copies.join('\n')).toMatch(/--from=build .*\/src\/dist \.\/dist/);
  });

  it('runs as the non-root user the chart expects, node as PID 1, serve on the chart\'s config path', () => {
    expect(instructions).toContain(`USER ${values.securityContext.runAsUser}:${values.securityContext.runAsGroup}`);
    expect(instructions).toContain('ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=8", "/app/bin/agentgate.js"]');
    expect(instructions).toContain('CMD ["serve", "--config", "/etc/agentgate/config.yaml"]');
    const deployment = readFileSync(join(CHART, 'templates/deployment.yaml'), 'utf8');
    expect(deployment).toContain('args: ["serve", "--config", "/etc/agentgate/config.yaml"]');
    // The preStop fallback (Kubernetes < 1.30) uses the image's node: there is no shell or sleep.
    expect(deployment).toContain('command: ["/nodejs/bin/node", "-e"');
  });

  it('the image, npm start and the exchange benchmark run node with the same V8 flags', () => {
    const entrypoint = JSON.parse(instructions.find((l) => l.startsWith('ENTRYPOINT'))!.slice('ENTRYPOINT'.length)) as string[];
    const flags = entrypoint.filter((arg) => arg.startsWith('--'));
    expect(flags).toEqual(['--max-semi-space-size=8']);
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${flags.join(' ')} bin/agentgate.js serve --config config/demo.yaml`);
    expect(readFileSync(join(REPO, 'bench/exchange.ts'), 'utf8')).toContain(`const GATEWAY_NODE_FLAGS = ${JSON.stringify(flags).replace(/"/g, "'")};`);
  });

  it('.dockerignore lets in exactly what the build copies', () => {
    expect(dockerignore[0]).toBe('*');
    const allowed = dockerignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    const fromContext = instructions
      .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
      .flatMap((l) => l.replace(/--chown=\S+\s*/, '').split(/\s+/).slice(1, -1));
    for (const path of fromContext) expect(allowed, `${path} is copied from the build context`).toContain(path.replace(/\/$/, ''));
  });

  it('the chart deploys the package version', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8')) as { apiVersion: string; appVersion: string };
    expect(chart.apiVersion).toBe('v2');
    expect(chart.appVersion).toBe(pkg.version);
  });
});
