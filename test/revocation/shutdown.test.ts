// The real `agentgate serve` with a revocation feed stream open: SIGTERM ends the stream at once
// (the client reconnects elsewhere) and the process exits 0 well before shutdown.timeout, with
// its Redis connections (including the subscriber) closed.
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { freePort } from '../support/redis-server.ts';
import { basic, postForm } from '../support/gateway.ts';
import { startProcess } from '../support/process.ts';

const RS_SECRET = 'erp-rs-secret-0123456789abcdefghijkl';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-feed-shutdown-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('graceful shutdown with a feed subscriber', () => {
  it('ends open feed streams and exits 0 promptly on SIGTERM', async () => {
    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const configFile = join(dir, 'gateway.yaml');
    await writeFile(configFile, `
mode: development
issuer: ${issuer}
listen: { host: 127.0.0.1, port: ${port} }
store: { driver: redis, url: "\${env:TEST_REDIS_URL}", keyPrefix: "test:${randomUUID()}:" }
keys: { generate: true }
logging: { level: warn }
shutdown: { timeout: 20s }
resources:
  - id: https://erp.example.test
    scopes: [erp:read]
    client: { clientId: erp-rs, auth: { method: client_secret_basic, secret: ${RS_SECRET} } }
`);
    const gateway = await startProcess(['serve', '--config', configFile], `${issuer}/readyz`, { TEST_REDIS_URL: inject('redisUrl') });
    let exited = false;
    try {
      const issued = await postForm(`${issuer}/token`, { grant_type: 'client_credentials', scope: 'agentgate:revocations' }, { authorization: basic('erp-rs', RS_SECRET) });
      expect(issued.status).toBe(200);
      const res = await fetch(`${issuer}/revocations/feed`, { headers: { authorization: `Bearer ${String(issued.body.access_token)}` } });
      expect(res.status).toBe(200);
      let text = '';
      const reading = (async () => {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
      })();
      await expect.poll(() => text).toBe('retry: 2000\n\n');

      const stopping = Date.now();
      const code = await gateway.stop();
      exited = true;
      expect(code).toBe(0);
      expect(Date.now() - stopping).toBeLessThan(5000);
      // The stream ended cleanly (not cut): the server closed it before going away.
      await reading;
      expect(gateway.output()).not.toContain(RS_SECRET);
    } finally {
      if (!exited) gateway.child.kill('SIGKILL');
    }
  });
});
