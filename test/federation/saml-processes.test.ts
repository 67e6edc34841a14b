// Replay of one SAML response across two real gateway processes (`agentgate serve`, two replicas
// of one deployment: same issuer, Redis key prefix and cookie keys, each on its own port) sharing
// one Redis, against a real SimpleSAMLphp: posted to both at once, it makes at most one session;
// the loser is refused as a replay, audited as `federation.login_failed`. The config names the
// IdP metadata by a path relative to the config file's directory (not the process's cwd).
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

import { alertText } from '../support/federation.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { startSamlSignIn } from '../support/peers/saml-flow.ts';
import { startSamlIdp } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';
import { startProcess } from '../support/process.ts';
import type { GatewayProcess } from '../support/process.ts';
import { freePort } from '../support/redis-server.ts';
import { openRedis } from '../support/stores.ts';
import type { Opened } from '../support/stores.ts';

const internet = createLoopbackInternet();
const keyPrefix = `test:${randomUUID()}:`;
let dir: string;
let idp: SamlIdpPeer;
let issuer: string;
let replicaOrigin: string;
let first: GatewayProcess | undefined;
let second: GatewayProcess | undefined;
let redis: Opened;

function configYaml(port: number): string {
  return `
mode: development
issuer: ${issuer}
listen: { host: 127.0.0.1, port: ${port} }
store: { driver: redis, url: "\${env:TEST_REDIS_URL}", keyPrefix: "${keyPrefix}" }
keys: { generate: true }
cookies: { keys: ["\${env:TEST_COOKIE_KEY}"] }
logging: { level: info }
devLogin: { enabled: false }
resources:
  - { id: https://erp.example.test, scopes: [erp:read] }
apps:
  - { clientId: agent-console, redirectUris: ["http://127.0.0.1/cb"], audiences: [https://erp.example.test] }
identityProviders:
  - { id: okta-saml, type: saml, preset: okta, metadata: { file: idp/metadata.xml } }
`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-saml-processes-'));
  idp = await startSamlIdp({
    users: [{ username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], groups: ['Everyone'] } }],
  });
  const [port, replicaPort] = [await freePort(), await freePort()];
  issuer = `http://127.0.0.1:${port}`;
  replicaOrigin = `http://127.0.0.1:${replicaPort}`;
  await mkdir(join(dir, 'idp'));
  await writeFile(join(dir, 'idp', 'metadata.xml'), await idp.metadata());
  await writeFile(join(dir, 'gateway.yaml'), configYaml(port));
  await writeFile(join(dir, 'replica.yaml'), configYaml(replicaPort));
  await idp.registerSp({ entityId: `${issuer}/federation/saml/okta-saml/metadata`, acs: `${issuer}/federation/saml/okta-saml/acs` });
  const env = { TEST_REDIS_URL: inject('redisUrl'), TEST_COOKIE_KEY: 'saml-processes-cookie-key-0123456789abcdef' };
  // Started from the repository (cwd), not from the config's directory.
  [first, second] = await Promise.all([
    startProcess(['serve', '--config', join(dir, 'gateway.yaml')], `${issuer}/readyz`, env),
    startProcess(['serve', '--config', join(dir, 'replica.yaml')], `${replicaOrigin}/readyz`, env),
  ]);
  redis = await openRedis(inject('redisUrl'), keyPrefix);
}, 60_000);

afterAll(async () => {
  await Promise.all([first?.stop(), second?.stop()]);
  await redis?.close();
  await idp?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sessionsOfAlice = () => redis.store.setMembers('sess:bySub:okta-saml|00u1alice');
const audit = async () => (await redis.store.readStream('audit', 500)).map((e) => e.fields);

describe('one SAML response, two gateway processes, one Redis', () => {
  it('loads the IdP metadata at start, with a log line saying it is ready (start-up warm-up)', async () => {
    for (const gatewayProcess of [first!, second!]) {
      await expect.poll(() => gatewayProcess.output().split('\n').filter((line) => line.includes('"msg":"SAML IdP metadata loaded"')).length).toBe(1);
      const loaded = JSON.parse(gatewayProcess.output().split('\n').find((line) => line.includes('"msg":"SAML IdP metadata loaded"'))!) as Record<string, unknown>;
      expect(loaded).toMatchObject({ level: 'info', idp: 'okta-saml', source: join(dir, 'idp', 'metadata.xml'), signingCertificates: 1 });
      await expect.poll(() => gatewayProcess.output().includes('"msg":"identity provider ready"')).toBe(true);
    }
  });

  it('makes at most one session when posted to both at once; the other is refused as a replay and audited', async () => {
    const gw = { url: issuer } as TestGateway;
    const s = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-saml' });
    expect(s.post.action).toBe(`${issuer}/federation/saml/okta-saml/acs`);
    const before = (await sessionsOfAlice()).length;
    const results = await Promise.all([
      s.browser.postForm(s.post.action, s.post.fields),
      s.browser.postForm(s.post.action.replace(issuer, replicaOrigin), s.post.fields),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual([303, 400]);
    const loser = results.find((r) => r.status === 400)!;
    expect(alertText(loser.body)).toMatch(/^this sign-in (response was already used|has expired or was already completed)/);
    expect((await sessionsOfAlice()).length).toBe(before + 1);
    const entries = await audit();
    expect(entries.filter((e) => e.event === 'federation.login_succeeded' && e.idp === 'okta-saml')).toHaveLength(1);
    const failed = entries.filter((e) => e.event === 'federation.login_failed' && e.idp === 'okta-saml');
    expect(failed).toHaveLength(1);
    expect(['ERR_SAML_REPLAY', 'ERR_SAML_IN_RESPONSE_TO']).toContain(failed[0]!.errorCode);

    // Posted again later, to either process: still refused, still one session.
    for (const origin of [issuer, replicaOrigin]) {
      const again = await s.browser.postForm(s.post.action.replace(issuer, origin), s.post.fields);
      expect(again.status).toBe(400);
      expect(alertText(again.body)).toBe('this sign-in response was already used; start again from the application');
    }
    expect((await sessionsOfAlice()).length).toBe(before + 1);
  });

  it('signs in through either process alone (the race above was a real one)', async () => {
    for (const origin of [issuer, replicaOrigin]) {
      const gw = { url: issuer } as TestGateway;
      const s = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-saml' });
      const before = (await sessionsOfAlice()).length;
      const res = await s.browser.postForm(s.post.action.replace(issuer, origin), s.post.fields);
      expect(res.status).toBe(303);
      expect((await sessionsOfAlice()).length).toBe(before + 1);
    }
  });
});
