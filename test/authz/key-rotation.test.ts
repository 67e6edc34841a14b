// Signing-key rotation without downtime: after a rotation the newest key signs, every key in the
// set is published and verifies, so tokens signed before the rotation stay valid until they
// expire; retiring the old key ends them.
import { randomUUID } from 'node:crypto';

import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';

import { createKeyRing, generateSigningKey } from '../../src/keys/index.ts';
import { freePort } from '../support/redis-server.ts';
import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';

const auth = { authorization: basic('invoice-agent', AGENT_SECRET) };

describe('key rotation', () => {
  it('newest key signs, all keys verify, retired keys stop verifying', async () => {
    const port = await freePort();
    const keyPrefix = `test:${randomUUID()}:`;
    const oldKey = await generateSigningKey('ES256');
    const newKey = await generateSigningKey('EdDSA');

    const before = await startGateway({ port, keyPrefix, keyRing: createKeyRing({ keys: [oldKey] }) });
    const oldToken = String((await postForm(`${before.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, auth)).body.access_token);
    expect(decodeProtectedHeader(oldToken)).toMatchObject({ kid: oldKey.kid, alg: 'ES256' });
    await before.close();

    const rotated = await startGateway({ port, keyPrefix, keyRing: createKeyRing({ keys: [newKey, oldKey] }) });
    try {
      const jwks = (await (await fetch(`${rotated.url}/jwks`)).json()) as { keys: { kid: string; alg: string }[] };
      expect(jwks.keys.map((k) => [k.kid, k.alg])).toEqual([[newKey.kid, 'EdDSA'], [oldKey.kid, 'ES256']]);
      const discovery = (await (await fetch(`${rotated.url}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
      expect(discovery.id_token_signing_alg_values_supported).toEqual(['EdDSA', 'ES256']);

      const newToken = String((await postForm(`${rotated.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, auth)).body.access_token);
      expect(decodeProtectedHeader(newToken)).toMatchObject({ kid: newKey.kid, alg: 'EdDSA', typ: 'at+jwt' });

      const introspectOld = await postForm(`${rotated.url}/token/introspection`, { token: oldToken }, auth);
      expect(introspectOld.body).toMatchObject({ active: true, jti: decodeJwt(oldToken).jti });
      expect((await postForm(`${rotated.url}/token/introspection`, { token: newToken }, auth)).body.active).toBe(true);
    } finally {
      await rotated.close();
    }

    const retired = await startGateway({ port, keyPrefix, keyRing: createKeyRing({ keys: [newKey] }) });
    try {
      expect((await postForm(`${retired.url}/token/introspection`, { token: oldToken }, auth)).body).toEqual({ active: false });
    } finally {
      await retired.close();
    }
  });
});
