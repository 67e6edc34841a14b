// Start-up warm-up (issue 9, "progress where work is long"): every IdP's metadata is fetched in the
// background when the gateway starts, with one log line per IdP — ready and how long it took, or a
// warning naming each failing check — against real IdPs on loopback: the built-in demo IdP (an
// OpenID Provider served by the gateway) and an IdP whose discovery URL nobody answers.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { warmUpIdentityProviders } from '../../src/federation/index.ts';
import { createLogger } from '../../src/ops/index.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

let gw: TestGateway;
let deadPort: number;

beforeAll(async () => {
  // A port that was bound and released: connecting to it is refused.
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  deadPort = (probe.address() as AddressInfo).port;
  await new Promise((resolve) => probe.close(resolve));
  gw = await startGateway({
    config: {
      demoIdp: { enabled: true, people: [{ username: 'dora', name: 'Dora Demo', email: 'dora@demo.example.test', groups: [] }] },
      identityProviders: [{
        id: 'gone', type: 'oidc', preset: 'generic', issuer: `http://127.0.0.1:${deadPort}`, clientId: 'gw', clientSecret: 'not-a-real-secret-0123456789',
      }],
    },
  });
});
afterAll(async () => {
  await gw?.close();
});

describe('warmUpIdentityProviders', () => {
  it('logs each IdP as ready, or not ready with the failing checks, and never throws', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } } });
    await warmUpIdentityProviders(gw.gateway.federation.connectors.values(), logger, 5000);
    const byIdp = new Map(lines.map((line) => [line.idp, line]));
    expect(byIdp.size).toBe(2);
    expect(byIdp.get('demo')).toMatchObject({ level: 'info', msg: 'identity provider ready', type: 'oidc' });
    expect(byIdp.get('gone')).toMatchObject({
      level: 'warn', msg: 'identity provider not ready; sign-ins through it will try again', type: 'oidc',
    });
    const failing = byIdp.get('gone')!.failing as string[];
    expect(failing).toHaveLength(1);
    expect(failing[0]).toMatch(new RegExp(`^discovery: .+ \\(http://127\\.0\\.0\\.1:${deadPort}/\\.well-known/openid-configuration\\)$`));
    for (const line of lines) expect(typeof line.ms).toBe('number');
  });

  it('bounds a probe that does not answer', async () => {
    // A server that accepts the connection and never answers.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const slow = await startGateway({
        config: { identityProviders: [{ id: 'slow', type: 'oidc', preset: 'generic', issuer: `http://127.0.0.1:${port}`, clientId: 'gw', clientSecret: 'not-a-real-secret-0123456789' }] },
      });
      try {
        const lines: Record<string, unknown>[] = [];
        const logger = createLogger({ level: 'info', destination: { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } } });
        await warmUpIdentityProviders(slow.gateway.federation.connectors.values(), logger, 300);
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatchObject({ idp: 'slow', level: 'warn', failing: ['probe: no answer within 0.3s'] });
      } finally {
        await slow.close();
      }
    } finally {
      silent.close();
    }
  });
});
