// Secrets for the chart tests: what `kubectl create secret` would have put in the cluster before
// `helm install` (the names the ci/ examples reference), and inline values with planted markers.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { exportJWK, generateKeyPair } from 'jose';

import type { ClusterSecrets } from './support.ts';

const run = promisify(execFile);

export async function privateJwks(): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = await exportJWK(privateKey);
  return JSON.stringify({ keys: [{ ...jwk, alg: 'ES256', use: 'sig', kid: 'test-key' }] });
}

/** A self-signed certificate and its key, as a SAML SP has them. */
export async function samlSpKeyPair(): Promise<{ key: string; cert: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'agentgate-helm-sp-'));
  try {
    await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '30', '-subj', '/CN=agentgate-sp',
      '-keyout', join(dir, 'sp.key'), '-out', join(dir, 'sp.crt')]);
    return { key: readFileSync(join(dir, 'sp.key'), 'utf8'), cert: readFileSync(join(dir, 'sp.crt'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const randomSecret = (): string => randomBytes(33).toString('base64url');

/** The Secrets the ci/ examples expect to exist (existingSecret, secretMounts, env). */
export async function clusterSecrets(): Promise<ClusterSecrets> {
  const jwks = await privateJwks();
  const sp = await samlSpKeyPair();
  return {
    'agentgate-keys': { 'jwks.json': `${jwks}\n` },
    'agentgate-signing': { 'jwks-2026.json': jwks },
    'agentgate-cookies': {
      'cookie-key': `${randomSecret()}\n`, 'cookie-key-previous': randomSecret(), current: randomSecret(), previous: randomSecret(),
    },
    redis: { 'redis-password': 'bitnami-style-password' },
    'redis-cluster': { 'redis-password': 'cluster-password' },
    'redis-url': { url: 'rediss://default:s3cret%2Fpass@redis.example.internal:6380/0' },
    'okta-oidc': { 'client-secret': randomSecret() },
    'agentgate-saml-sp': { 'signing.key': sp.key, 'signing.crt': sp.cert },
    'agentgate-clients': { 'reporting-agent': randomSecret(), 'agent-console': randomSecret(), 'it-admin': randomSecret() },
    'erp-api-client': { secret: randomSecret() },
  };
}
