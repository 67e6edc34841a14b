// POST /admin/explain over real HTTP: admin clients get an admin-audience JWT through
// client_credentials and ask what an agent would get for a person; everything else is refused
// with RFC 6750 errors.
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const ADMIN_SECRET = 'it-admin-secret-0123456789abcdefghij';
const ERP = 'https://erp.example.test';

let gw: TestGateway;
let adminToken: string;

const alice = {
  idp: 'okta', subject: '00u1alice', email: 'alice@example.test',
  groups: [{ idp: 'okta', id: 'Finance' }], groupsComplete: true, amr: ['pwd'], acr: 'pwd', authTime: 1_800_000_000,
};

beforeAll(async () => {
  gw = await startGateway({
    config: {
      roles: { 'finance-reader': { scopes: ['erp:read'] }, 'finance-approver': { scopes: ['erp:read', 'erp:approve'] } },
      roleMappings: [
        { idp: 'okta', group: 'Finance', roles: ['finance-reader'] },
        { idp: 'okta', group: 'Approvers', roles: ['finance-approver'] },
      ],
      stepUp: [{ scopes: ['erp:approve'], acr: 'mfa', maxAge: '5m' }],
      admin: { clients: [{ clientId: 'it-admin', auth: { method: 'client_secret_basic', secret: ADMIN_SECRET } }] },
    },
  });
  const res = await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'agentgate:admin' }, {
    authorization: basic('it-admin', ADMIN_SECRET),
  });
  expect(res.status).toBe(200);
  adminToken = String(res.body.access_token);
});
afterAll(async () => gw?.close());

const explain = (body: unknown, token = adminToken) => fetch(`${gw.url}/admin/explain`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});

describe('admin token', () => {
  it('is a JWT for the admin audience with the agentgate:admin scope', () => {
    expect(decodeJwt(adminToken)).toMatchObject({ aud: `${gw.url}/admin`, scope: 'agentgate:admin', client_id: 'it-admin', sub: 'it-admin' });
  });

  it('cannot be obtained by an agent', async () => {
    const res = await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', resource: `${gw.url}/admin`, scope: 'agentgate:admin' }, {
      authorization: basic('invoice-agent', AGENT_SECRET),
    });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_target', error_description: `client "invoice-agent" may not request tokens for "${gw.url}/admin"` });
  });

  it('is refused for another resource or scope', async () => {
    const wrongResource = await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', resource: ERP }, { authorization: basic('it-admin', ADMIN_SECRET) });
    expect(wrongResource.body).toEqual({ error: 'invalid_target', error_description: `client "it-admin" may not request tokens for "${ERP}"` });
    const wrongScope = await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, { authorization: basic('it-admin', ADMIN_SECRET) });
    expect(wrongScope.status).toBe(400);
    expect(wrongScope.body.error).toBe('invalid_scope');
  });
});

describe('POST /admin/explain', () => {
  it('explains a grant', async () => {
    const res = await explain({ identity: alice, agent: 'invoice-agent', scope: 'erp:read', now: 1_800_000_100 });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown> & { trace: Record<string, unknown> };
    expect(body).toMatchObject({
      outcome: 'grant', scope: 'erp:read', audience: ERP, expires_in: 120, roles: ['finance-reader'], actors: ['invoice-agent'], dpop_required: false,
    });
    expect(body.trace.roles).toEqual({
      source: 'mappings',
      groupsComplete: true,
      mappings: [{ index: 0, roles: ['finance-reader'], deny: [], matched: true, effect: 'full', reason: 'member of group id "Finance"' }],
      notConsidered: 1,
      granted: ['finance-reader'],
      denied: [],
    });
    expect(body.trace.ttl).toEqual({ seconds: 120, limits: [{ limit: 'agent', seconds: 120 }, { limit: 'resource', seconds: 300 }], boundBy: 'agent' });
  });

  it('explains a refusal with the exact error the exchange would give', async () => {
    const res = await explain({ identity: alice, agent: 'invoice-agent', scope: ['erp:read', 'erp:approve'], now: 1_800_000_100 });
    expect(await res.json()).toMatchObject({
      outcome: 'deny',
      error: 'invalid_scope',
      error_description: 'scope "erp:approve" is outside the scopes registered for agent "invoice-agent"',
    });
  });

  it('lists every mapping with all: true', async () => {
    const res = await explain({ identity: alice, agent: 'invoice-agent', scope: 'erp:read', now: 1_800_000_100, all: true });
    const body = (await res.json()) as { trace: { roles: { mappings: { index: number; matched: boolean; reason: string }[]; notConsidered: number } } };
    expect(body.trace.roles.notConsidered).toBe(0);
    expect(body.trace.roles.mappings.map((m) => [m.index, m.matched, m.reason])).toEqual([
      [0, true, 'member of group id "Finance"'],
      [1, false, 'not a member of group id "Approvers"'],
    ]);
  });

  it('answers a malformed request with 400 invalid_request naming the field', async () => {
    const res = await explain({ identity: { ...alice, groups: [{ idp: 'okta' }] }, agent: 'invoice-agent' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'identity.groups.0.id: Invalid input: expected string, received undefined' });
  });

  it('requires a bearer token (401 invalid_token with a challenge)', async () => {
    const res = await explain({ identity: alice, agent: 'invoice-agent' }, '');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="agentgate-admin", error="invalid_token", error_description="a bearer access token for the admin API is required"');
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'a bearer access token for the admin API is required' });
  });

  it('refuses an agent token (wrong audience) and a garbage token', async () => {
    const agentToken = String((await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, {
      authorization: basic('invoice-agent', AGENT_SECRET),
    })).body.access_token);
    for (const token of [agentToken, 'abc.def.ghi']) {
      const res = await explain({ identity: alice, agent: 'invoice-agent' }, token);
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'the access token is invalid, expired, revoked or not meant for the admin API' });
    }
  });

  it('refuses a revoked admin token', async () => {
    const token = String((await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'agentgate:admin' }, {
      authorization: basic('it-admin', ADMIN_SECRET),
    })).body.access_token);
    expect((await explain({ identity: alice, agent: 'invoice-agent', scope: 'erp:read' }, token)).status).toBe(200);
    await postForm(`${gw.url}/token/revocation`, { token }, { authorization: basic('it-admin', ADMIN_SECRET) });
    expect((await explain({ identity: alice, agent: 'invoice-agent', scope: 'erp:read' }, token)).status).toBe(401);
  });

  it('refuses an admin token without the agentgate:admin scope (403 insufficient_scope)', async () => {
    const token = String((await postForm(`${gw.url}/token`, { grant_type: 'client_credentials' }, {
      authorization: basic('it-admin', ADMIN_SECRET),
    })).body.access_token);
    expect(decodeJwt(token).scope).toBeUndefined();
    const res = await explain({ identity: alice, agent: 'invoice-agent' }, token);
    expect(res.status).toBe(403);
    expect(await res.json()).toEqual({ error: 'insufficient_scope', error_description: 'the admin API needs the agentgate:admin scope of an admin client' });
  });
});
