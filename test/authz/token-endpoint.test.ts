// The token endpoint's front (src/authz/token-endpoint.ts) serves token exchange itself and hands
// every other grant to oidc-provider. Differential: the same client-authentication and parameter
// failures sent once as client_credentials (oidc-provider's pipeline) and once as token exchange
// (the front) must get byte-identical answers — status, body, WWW-Authenticate, Cache-Control.
// And what the front passes on reaches oidc-provider intact (the body is replayed, no warning).
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

import { basic } from '../support/gateway.ts';
import { AT, EXCHANGE, keyedAgentAuth, post, SECRETS, signInPerson, startExchangeGateway } from '../exchange/fixture.ts';
import type { ExchangeFixture, HttpResult } from '../exchange/fixture.ts';

let fx: ExchangeFixture;
beforeAll(async () => {
  fx = await startExchangeGateway();
});
afterAll(async () => {
  await fx?.gw.close();
});

const pick = (r: HttpResult) => ({
  status: r.status,
  body: r.body,
  challenge: r.headers.get('www-authenticate'),
  cacheControl: r.headers.get('cache-control'),
  contentType: r.headers.get('content-type'),
});

/** Sends the same request as client_credentials and as token exchange; returns both answers. */
async function both(form: Record<string, string> | URLSearchParams, headers: Record<string, string> = {}) {
  const as = (grant: string) => {
    const body = new URLSearchParams(form);
    body.set('grant_type', grant);
    return post(`${fx.gw.url}/token`, body, headers).then(pick);
  };
  return { oidcProvider: await as('client_credentials'), front: await as(EXCHANGE) };
}

const A = 'agent-a';
const secretA = SECRETS[A]!;

describe('client authentication: the front answers exactly as oidc-provider does', () => {
  const cases: [string, () => Promise<[Record<string, string> | URLSearchParams, Record<string, string>]>][] = [
    ['wrong secret (Basic)', async () => [{}, { authorization: basic(A, 'not-the-secret-0123456789abcdefgh') }]],
    ['unknown client (Basic)', async () => [{}, { authorization: basic('nobody', 'whatever-secret-0123456789abcdefg') }]],
    ['wrong secret (post)', async () => [{ client_id: A, client_secret: 'nope' }, {}]],
    ['two mechanisms', async () => [{ client_secret: secretA }, { authorization: basic(A, secretA) }]],
    ['malformed Basic header', async () => [{}, { authorization: 'Basic !!!' }]],
    ['Basic without a colon', async () => [{}, { authorization: `Basic ${Buffer.from('agent-a').toString('base64')}` }]],
    ['Bearer instead of Basic', async () => [{}, { authorization: 'Bearer abc' }]],
    ['Basic with an empty secret', async () => [{}, { authorization: `Basic ${Buffer.from('agent-a:').toString('base64')}` }]],
    ['client_id mismatch', async () => [{ client_id: 'agent-b' }, { authorization: basic(A, secretA) }]],
    ['no authentication at all', async () => [{}, {}]],
    ['a secret client presenting no secret', async () => [{ client_id: A }, {}]],
    ['repeated client_id', async () => [new URLSearchParams([['client_id', A], ['client_id', A], ['client_secret', secretA]]), {}]],
    ['client_assertion that is not a JWT', async () => [{ client_assertion: 'garbage', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}]],
    ['client_assertion without a type', async () => {
      const { client_assertion } = await keyedAgentAuth(fx.gw, fx.agentKey);
      return [{ client_assertion: client_assertion! }, {}];
    }],
    ['client_assertion with a wrong type', async () => {
      const { client_assertion } = await keyedAgentAuth(fx.gw, fx.agentKey);
      return [{ client_assertion: client_assertion!, client_assertion_type: 'urn:example:saml' }, {}];
    }],
    ['client_assertion signed by a stranger', async () => [await keyedAgentAuth(fx.gw, fx.strangerKey), {}]],
    ['client_assertion for another audience', async () => {
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'agent-k-key-1' })
        .setIssuer('agent-k').setSubject('agent-k').setAudience('https://elsewhere.example').setIssuedAt().setExpirationTime('60s').sign(fx.agentKey);
      return [{ client_assertion: assertion, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}];
    }],
    ['expired client_assertion', async () => {
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'agent-k-key-1' })
        .setIssuer('agent-k').setSubject('agent-k').setAudience(fx.gw.url).setIssuedAt(Math.floor(Date.now() / 1000) - 600)
        .setExpirationTime(Math.floor(Date.now() / 1000) - 300).sign(fx.agentKey);
      return [{ client_assertion: assertion, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}];
    }],
    ['client_assertion without jti', async () => {
      const assertion = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', kid: 'agent-k-key-1' })
        .setIssuer('agent-k').setSubject('agent-k').setAudience(fx.gw.url).setIssuedAt().setExpirationTime('60s').sign(fx.agentKey);
      return [{ client_assertion: assertion, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}];
    }],
    ['client_assertion with iss ≠ sub', async () => {
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'agent-k-key-1' })
        .setIssuer('agent-a').setSubject('agent-k').setAudience(fx.gw.url).setIssuedAt().setExpirationTime('60s').sign(fx.agentKey);
      return [{ client_assertion: assertion, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}];
    }],
    ['a secret client sending a client_assertion', async () => {
      const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256' })
        .setIssuer(A).setSubject(A).setAudience(fx.gw.url).setIssuedAt().setExpirationTime('60s').sign(fx.agentKey);
      return [{ client_assertion: assertion, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer' }, {}];
    }],
    ['a key client sending a secret', async () => [{ client_id: 'agent-k', client_secret: 'x' }, {}]],
    ['scope with invalid characters', async () => [{ scope: 'erp:read "quoted"' }, { authorization: basic(A, secretA) }]],
    ['repeated scope', async () => [new URLSearchParams([['scope', 'erp:read'], ['scope', 'mail:read']]), { authorization: basic(A, secretA) }]],
  ];

  it.each(cases)('%s', async (_name, build) => {
    const [form, headers] = await build();
    const { oidcProvider, front } = await both(form, headers);
    expect(oidcProvider.status).toBeGreaterThanOrEqual(400);
    expect(front).toEqual(oidcProvider);
  });

  it('shows what the clients see for the common failures', async () => {
    const { front: wrong } = await both({}, { authorization: basic(A, 'not-the-secret-0123456789abcdefgh') });
    expect(wrong).toEqual({
      status: 401,
      body: { error: 'invalid_client', error_description: 'client authentication failed' },
      challenge: `Basic realm="${fx.gw.url}", error="invalid_client", error_description="client authentication failed"`,
      cacheControl: 'no-store',
      contentType: 'application/json; charset=utf-8',
    });
    const { front: twice } = await both(new URLSearchParams([['client_id', A], ['client_id', A], ['client_secret', secretA]]));
    expect(twice.body).toEqual({ error: 'invalid_request', error_description: "'client_id' parameter must not be provided twice" });
  });

  it('accepts what oidc-provider accepts: Basic, the secret in the body, and a client assertion (once)', async () => {
    const missing = { error: 'invalid_request', error_description: "missing required parameter 'subject_token'" };
    for (const [form, headers] of [
      [{}, { authorization: basic(A, secretA) }],
      [{ client_id: A, client_secret: secretA }, {}],
    ] as [Record<string, string>, Record<string, string>][]) {
      const { oidcProvider, front } = await both({ ...form, scope: 'erp:read' }, headers);
      expect(oidcProvider.status).toBe(200);
      expect(front).toMatchObject({ status: 400, body: missing });
    }
    const auth = await keyedAgentAuth(fx.gw, fx.agentKey);
    const first = await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE, ...auth });
    expect(first.body).toEqual(missing);
    // RFC 7523 §3 item 7: the same assertion is refused the second time — by the front, and by
    // oidc-provider, which shares the replay registry.
    const again = await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE, ...auth });
    expect(again.status).toBe(401);
    expect(again.body).toEqual({ error: 'invalid_client', error_description: 'client authentication failed' });
    const elsewhere = await post(`${fx.gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read', ...auth });
    expect(elsewhere.status).toBe(401);
    const fresh = await keyedAgentAuth(fx.gw, fx.agentKey);
    expect((await post(`${fx.gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read', ...fresh })).status).toBe(200);
    expect((await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE, ...fresh })).status).toBe(401);
  });

  it('refuses the grant for a client not registered for it, as oidc-provider would', async () => {
    const admin = await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE }, { authorization: basic('agent-console', 'x') });
    // agent-console is a public app: Basic is not its mechanism.
    expect(admin).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const app = await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE, client_id: 'agent-console', subject_token: 'x', subject_token_type: AT });
    expect(app.body).toEqual({ error: 'unauthorized_client', error_description: 'client "agent-console" is not a registered agent; only agents exchange tokens' });
  });
});

describe('what the front passes on', () => {
  it('hands non-form bodies and other grants to oidc-provider with the body intact, without its parsed-body warning', async () => {
    const warn = vi.spyOn(console, 'warn');
    try {
      const json = await fetch(`${fx.gw.url}/token`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: basic(A, secretA) },
        body: JSON.stringify({ grant_type: EXCHANGE }),
      });
      expect(json.status).toBe(400);
      expect(await json.json()).toEqual({ error: 'invalid_request', error_description: 'only application/x-www-form-urlencoded content-type bodies are supported on POST /token' });
      const cc = await post(`${fx.gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read', resource: 'https://erp.example.test' }, { authorization: basic(A, secretA) });
      expect(cc.status).toBe(200);
      expect(cc.body.scope).toBe('erp:read');
      const twice = await post(`${fx.gw.url}/token`, new URLSearchParams([['grant_type', EXCHANGE], ['grant_type', EXCHANGE]]), { authorization: basic(A, secretA) });
      expect(twice.body).toEqual({ error: 'invalid_request', error_description: "'grant_type' parameter must not be provided twice" });
      expect(warn.mock.calls.flat().join(' ')).not.toMatch(/already parsed request body/);
    } finally {
      warn.mockRestore();
    }
  });

  it('refuses an oversized body before reading all of it', async () => {
    const big = `grant_type=${encodeURIComponent(EXCHANGE)}&subject_token=${'a'.repeat(60 * 1024)}`;
    const res = await fetch(`${fx.gw.url}/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(A, secretA) }, body: big,
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'failed to parse the request body' });
  });

  it('serves the exchange on the express app too (createApp().app, for embedding)', async () => {
    const person = await signInPerson(fx.gw, { email: 'embed@example.test', groups: 'Finance' });
    const server = createServer(fx.gw.gateway.app);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const base = new URL(fx.gw.url);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${base.pathname.replace(/\/$/, '')}/token`;
      const res = await post(url, { grant_type: EXCHANGE, subject_token: person.accessToken, subject_token_type: AT, scope: 'erp:read', audience: 'https://erp.example.test' }, { authorization: basic(A, secretA) });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ token_type: 'Bearer', scope: 'erp:read', issued_token_type: AT });
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('counts issued exchange tokens in the metrics', async () => {
    const person = await signInPerson(fx.gw, { email: 'metrics@example.test', groups: 'Finance' });
    const count = async () => {
      const text = await (await fetch(`${new URL(fx.gw.url).origin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.includes('grant_type="urn:ietf:params:oauth:grant-type:token-exchange"') && !l.startsWith('#'));
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const before = await count();
    const res = await post(`${fx.gw.url}/token`, { grant_type: EXCHANGE, subject_token: person.accessToken, subject_token_type: AT, scope: 'erp:read', audience: 'https://erp.example.test' }, { authorization: basic(A, secretA) });
    expect(res.status).toBe(200);
    expect(await count()).toBe(before + 1);
  });
});
