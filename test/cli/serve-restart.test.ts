// The real command end to end: `keys generate`, `serve` on the shared Redis, a token issued,
// the process stopped with SIGTERM (graceful, exit 0) and started again on the same Redis and
// keys: the token is still valid and still introspects active.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { freePort } from '../support/redis-server.ts';
import { AGENT_SECRET, basic, postForm } from '../support/gateway.ts';
import { runCommand, startProcess } from '../support/process.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-restart-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('serve across a restart', () => {
  it('keeps tokens valid through a graceful restart on the same Redis', async () => {
    const keyFile = join(dir, 'jwks.json');
    const gen = runCommand(['keys', 'generate', '--out', keyFile, '--alg', 'ES256']);
    expect(gen.code).toBe(0);
    expect(gen.stdout).toMatch(/^wrote .*jwks\.json \(kid [\w-]{43}, ES256\)\n$/);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);

    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const configFile = join(dir, 'gateway.yaml');
    await writeFile(configFile, `
mode: development
issuer: ${issuer}
listen: { host: 127.0.0.1, port: ${port} }
store: { driver: redis, url: "\${env:TEST_REDIS_URL}", keyPrefix: "test:${randomUUID()}:" }
keys: { file: ${keyFile} }
cookies: { keys: ["\${env:TEST_COOKIE_KEY}"] }
logging: { level: warn }
resources:
  - { id: https://erp.example.test, scopes: [erp:read] }
agents:
  - clientId: invoice-agent
    auth: { method: client_secret_basic, secret: ${AGENT_SECRET} }
    scopes: [erp:read]
    audiences: [https://erp.example.test]
`);
    const env = { TEST_REDIS_URL: inject('redisUrl'), TEST_COOKIE_KEY: 'c'.repeat(40) };
    expect(runCommand(['check-config', '--config', configFile], env).code).toBe(0);

    const auth = { authorization: basic('invoice-agent', AGENT_SECRET) };
    const first = await startProcess(['serve', '--config', configFile], `${issuer}/readyz`, env);
    const issued = await postForm(`${issuer}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, auth);
    expect(issued.status).toBe(200);
    const token = String(issued.body.access_token);
    // Revoke a second token before the restart: the revocation must survive it too.
    const other = String((await postForm(`${issuer}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, auth)).body.access_token);
    expect((await postForm(`${issuer}/token/revocation`, { token: other }, auth)).status).toBe(200);
    expect(await first.stop()).toBe(0);
    expect(first.output()).not.toContain(AGENT_SECRET);

    const second = await startProcess(['serve', '--config', configFile], `${issuer}/readyz`, env);
    try {
      const res = await postForm(`${issuer}/token/introspection`, { token }, auth);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ active: true, client_id: 'invoice-agent', scope: 'erp:read' });
      expect((await postForm(`${issuer}/token/introspection`, { token: other }, auth)).body).toEqual({ active: false });
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });
});
