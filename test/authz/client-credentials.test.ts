// Token endpoint, discovery, JWKS, introspection and revocation over real HTTP against the
// real app on a real Redis.
import { randomUUID } from 'node:crypto';

import type { CryptoKey } from 'jose';
import { SignJWT, createRemoteJWKSet, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const ERP = 'https://erp.example.test';
const POST_SECRET = 'mail-agent-secret-0123456789abcdefgh';
// Characters that form-urlencoding changes: "+" (space), "%" (escape), ":" and "/".
const ODD_SECRET = 'p+ss%word:with/odd=chars 0123456789abcdef';

let gw: TestGateway;
let jwtAgentKey: CryptoKey;
let otherKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  jwtAgentKey = pair.privateKey;
  otherKey = (await generateKeyPair('ES256')).privateKey;
  const publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'agent-key-1', alg: 'ES256', use: 'sig' };
  gw = await startGateway({
    config: {
      agents: [
        {
          clientId: 'invoice-agent',
          auth: { method: 'client_secret_basic', secret: AGENT_SECRET },
          scopes: ['erp:read'],
          audiences: [ERP],
          maxTokenTtl: '2m',
        },
        {
          clientId: 'mail-agent',
          auth: { method: 'client_secret_post', secret: POST_SECRET },
          scopes: ['mail:read'],
          audiences: ['https://mail.example.test'],
        },
        {
          clientId: 'odd-agent',
          auth: { method: 'client_secret_basic', secret: ODD_SECRET },
          scopes: ['erp:read'],
          audiences: [ERP],
        },
        {
          clientId: 'approval-agent',
          auth: { method: 'private_key_jwt', jwks: { keys: [publicJwk] } },
          scopes: ['erp:read', 'erp:approve'],
          audiences: [ERP],
        },
      ],
    },
  });
});
afterAll(async () => gw?.close());

const tokenAs = (form: Record<string, string>, secret = AGENT_SECRET, id = 'invoice-agent') =>
  postForm(`${gw.url}/token`, form, { authorization: basic(id, secret) });

async function clientAssertion(key: CryptoKey, overrides: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ jti: randomUUID(), ...overrides })
    .setProtectedHeader({ alg: 'ES256', kid: 'agent-key-1' })
    .setIssuer('approval-agent')
    .setSubject('approval-agent')
    .setAudience(gw.url)
    .setIssuedAt()
    .setExpirationTime('60s')
    .sign(key);
}

describe('discovery', () => {
  it('serves OpenID discovery and RFC 8414 metadata with the same content', async () => {
    const oidc = await fetch(`${gw.url}/.well-known/openid-configuration`);
    const rfc8414 = await fetch(`${gw.url}/.well-known/oauth-authorization-server`);
    expect(oidc.status).toBe(200);
    expect(rfc8414.status).toBe(200);
    const doc = (await oidc.json()) as Record<string, unknown>;
    expect(await rfc8414.json()).toEqual(doc);
    expect(doc).toMatchObject({
      issuer: gw.url,
      authorization_endpoint: `${gw.url}/auth`,
      token_endpoint: `${gw.url}/token`,
      jwks_uri: `${gw.url}/jwks`,
      introspection_endpoint: `${gw.url}/token/introspection`,
      revocation_endpoint: `${gw.url}/token/revocation`,
      end_session_endpoint: `${gw.url}/session/end`,
      code_challenge_methods_supported: ['S256'],
      response_types_supported: ['code'],
      id_token_signing_alg_values_supported: ['ES256'],
      authorization_response_iss_parameter_supported: true,
    });
    expect(doc.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token', 'client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange']));
    expect(doc.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
    expect(doc.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none']),
    );
    expect(doc.token_endpoint_auth_signing_alg_values_supported).not.toContain('HS256');
    expect(doc.scopes_supported).toEqual(expect.arrayContaining(['openid', 'erp:read', 'erp:approve', 'mail:read']));
  });
});

describe('jwks', () => {
  it('publishes every signing key, public members only', async () => {
    const res = await fetch(`${gw.url}/jwks`);
    expect(res.status).toBe(200);
    const { keys } = (await res.json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: gw.keyRing.signingKey.kid, alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });
});

describe('client_credentials', () => {
  it('issues an RFC 9068 JWT for an agent authenticating with client_secret_basic', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read' });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'erp:read', expires_in: 120 });
    const token = String(res.body.access_token);
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256', kid: gw.keyRing.signingKey.kid });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${gw.url}/jwks`)), {
      issuer: gw.url, audience: ERP, typ: 'at+jwt', algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({ sub: 'invoice-agent', client_id: 'invoice-agent', scope: 'erp:read', aud: ERP });
    expect(payload.exp! - payload.iat!).toBe(120);
    expect(typeof payload.jti).toBe('string');
  });

  it('authenticates client_secret_post', async () => {
    const res = await postForm(`${gw.url}/token`, {
      grant_type: 'client_credentials', scope: 'mail:read', client_id: 'mail-agent', client_secret: POST_SECRET,
    });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token))).toMatchObject({ client_id: 'mail-agent', aud: 'https://mail.example.test', scope: 'mail:read' });
  });

  it('authenticates private_key_jwt and refuses a replayed assertion', async () => {
    const assertion = await clientAssertion(jwtAgentKey);
    const form = {
      grant_type: 'client_credentials',
      scope: 'erp:approve',
      resource: ERP,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    };
    const first = await postForm(`${gw.url}/token`, form);
    expect(first.status).toBe(200);
    expect(decodeJwt(String(first.body.access_token))).toMatchObject({ client_id: 'approval-agent', scope: 'erp:approve' });
    const replay = await postForm(`${gw.url}/token`, form);
    expect(replay.status).toBe(401);
    expect(replay.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('refuses a client assertion signed by a key the agent did not register', async () => {
    const res = await postForm(`${gw.url}/token`, {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await clientAssertion(otherKey),
    });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe('invalid_client');
  });

  it('answers a wrong client secret with 401 invalid_client', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials' }, 'wrong-secret-wrong-secret-wrong-secret');
    expect(res.status).toBe(401);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('answers an unknown grant type with unsupported_grant_type', async () => {
    const res = await tokenAs({ grant_type: 'urn:example:made-up' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'unsupported_grant_type', error_description: 'unsupported grant_type requested' });
  });

  it('refuses a scope outside the agent ceiling instead of dropping it', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read erp:approve' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_scope',
      error_description: 'scope "erp:approve" is outside the scopes registered for agent "invoice-agent"',
      scope: 'erp:approve',
    });
  });

  it('refuses a scope the resource does not offer', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:delete' });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ error: 'invalid_scope', error_description: 'scope "erp:delete" is not offered by resource "https://erp.example.test"' });
  });

  it('refuses a resource the agent is not registered for with invalid_target', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials', resource: 'https://mail.example.test' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_target',
      error_description: 'client "invoice-agent" may not request tokens for "https://mail.example.test"',
    });
  });

  it('refuses an unknown resource with invalid_target', async () => {
    const res = await tokenAs({ grant_type: 'client_credentials', resource: 'https://unknown.example.test' });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_target', error_description: 'unknown resource "https://unknown.example.test"' });
  });

  it('counts issued tokens by grant type', async () => {
    const before = (await gw.metrics.tokensIssued.get()).values.find((v) => v.labels.grant_type === 'client_credentials')?.value ?? 0;
    await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read' });
    const after = (await gw.metrics.tokensIssued.get()).values.find((v) => v.labels.grant_type === 'client_credentials')?.value;
    expect(after).toBe(before + 1);
  });
});

describe('client_secret_basic encodings (RFC 6749 §2.3.1 and what clients really send)', () => {
  const raw = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  const form = { grant_type: 'client_credentials', scope: 'erp:read' };

  it('accepts the form-urlencoded id and secret', async () => {
    const res = await postForm(`${gw.url}/token`, form, { authorization: basic('odd-agent', ODD_SECRET) });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token)).client_id).toBe('odd-agent');
  });

  it('accepts the raw, unencoded id and secret', async () => {
    const res = await postForm(`${gw.url}/token`, form, { authorization: raw('odd-agent', ODD_SECRET) });
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token)).client_id).toBe('odd-agent');
  });

  it('still refuses a wrong secret in either encoding', async () => {
    for (const authorization of [raw('odd-agent', `${ODD_SECRET}x`), basic('odd-agent', `${ODD_SECRET}x`), raw('odd-agent', ODD_SECRET.replace('+', ' '))]) {
      const res = await postForm(`${gw.url}/token`, form, { authorization });
      expect(res.status).toBe(401);
      expect(res.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    }
  });
});

describe('introspection and revocation of JWT access tokens', () => {
  const introspect = (token: string, id = 'invoice-agent', secret = AGENT_SECRET) =>
    postForm(`${gw.url}/token/introspection`, { token }, { authorization: basic(id, secret) });

  it('active → revoke → inactive', async () => {
    const issued = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read' });
    const token = String(issued.body.access_token);
    const claims = decodeJwt(token);

    const active = await introspect(token);
    expect(active.status).toBe(200);
    expect(active.headers.get('cache-control')).toBe('no-store');
    expect(active.body).toEqual({
      active: true,
      iss: gw.url,
      sub: 'invoice-agent',
      aud: ERP,
      client_id: 'invoice-agent',
      scope: 'erp:read',
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
    });

    const revoked = await postForm(`${gw.url}/token/revocation`, { token }, { authorization: basic('invoice-agent', AGENT_SECRET) });
    expect(revoked.status).toBe(200);

    expect((await introspect(token)).body).toEqual({ active: false });
  });

  it('reports a token signed by a foreign key, a tampered token and garbage as inactive', async () => {
    const issued = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read' });
    const token = String(issued.body.access_token);
    const [h, p, s] = token.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...payload, scope: 'erp:read erp:approve' })).toString('base64url')}.${s}`;
    const foreign = await new SignJWT({ client_id: 'invoice-agent', scope: 'erp:read', jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: gw.keyRing.signingKey.kid })
      .setIssuer(gw.url).setAudience(ERP).setSubject('invoice-agent').setIssuedAt().setExpirationTime('5m')
      .sign(otherKey);
    expect((await introspect(tampered)).body).toEqual({ active: false });
    expect((await introspect(foreign)).body).toEqual({ active: false });
    expect((await introspect('not-a-token')).body).toEqual({ active: false });
  });

  it('refuses to let one agent revoke another agent\'s token', async () => {
    const issued = await tokenAs({ grant_type: 'client_credentials', scope: 'erp:read' });
    const token = String(issued.body.access_token);
    const res = await postForm(`${gw.url}/token/revocation`, { token, client_id: 'mail-agent', client_secret: POST_SECRET });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_request', error_description: 'client is not authorized to revoke the presented token' });
    expect((await introspect(token)).body.active).toBe(true);
  });

  it('requires client authentication at introspection', async () => {
    const res = await postForm(`${gw.url}/token/introspection`, { token: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('invalid_request');
  });
});
