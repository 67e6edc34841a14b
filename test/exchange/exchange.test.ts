// RFC 8693 token exchange end to end: a person signs in (development login, roles from groups),
// the app's token is the subject token, agents exchange it for their own narrowed tokens.
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signIn } from '../support/browser.ts';
import { basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

const ERP = 'https://erp.example.test';
const MAIL = 'https://mail.example.test';
const SECRET_A = 'agent-a-secret-0123456789abcdefghij';
const SECRET_B = 'agent-b-secret-0123456789abcdefghij';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const AT = 'urn:ietf:params:oauth:token-type:access_token';
const REDIRECT = 'http://127.0.0.1/cb';

let gw: TestGateway;
let userToken: string;

beforeAll(async () => {
  gw = await startGateway({
    config: {
      resources: [
        { id: ERP, scopes: ['erp:read', 'erp:approve'], tokenTtl: '5m' },
        { id: MAIL, scopes: ['mail:read', 'mail:send'], tokenTtl: '5m' },
      ],
      roles: { 'finance-reader': { scopes: ['erp:read', 'mail:read'] } },
      roleMappings: [{ idp: 'dev', group: 'Finance', roles: ['finance-reader'] }],
      agents: [
        { clientId: 'agent-a', auth: { method: 'client_secret_basic', secret: SECRET_A }, scopes: ['erp:read', 'erp:approve', 'mail:read'], audiences: [ERP, MAIL], delegateTo: ['agent-b'], maxTokenTtl: '2m' },
        { clientId: 'agent-b', auth: { method: 'client_secret_basic', secret: SECRET_B }, scopes: ['mail:read'], audiences: [MAIL] },
      ],
      apps: [{ clientId: 'agent-console', redirectUris: [REDIRECT], audiences: [] }],
    },
  });
  const { code, verifier } = await signIn(gw.url, { clientId: 'agent-console', redirectUri: REDIRECT, email: 'alice@example.test', groups: 'Finance' });
  const tokens = await postForm(`${gw.url}/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: REDIRECT, client_id: 'agent-console' });
  userToken = String(tokens.body.access_token);
});
afterAll(async () => {
  if (process.env.DEBUG_LOGS) console.log(gw.logs.filter((l) => l.includes('error')).join(''));
  await gw?.close();
});

const exchange = (form: Record<string, string>, id = 'agent-a', secret = SECRET_A) =>
  postForm(`${gw.url}/token`, { grant_type: EXCHANGE, subject_token_type: AT, ...form }, { authorization: basic(id, secret) });

describe('token exchange', () => {
  it('gives an agent its own narrowed token for the person', async () => {
    const res = await exchange({ subject_token: userToken, scope: 'erp:read', audience: ERP });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ access_token: expect.any(String), issued_token_type: AT, token_type: 'Bearer', expires_in: 120, scope: 'erp:read' });
    const token = String(res.body.access_token);
    expect(decodeProtectedHeader(token)).toMatchObject({ typ: 'at+jwt', alg: 'ES256', kid: gw.keyRing.signingKey.kid });
    const claims = decodeJwt(token);
    expect(claims).toMatchObject({
      iss: gw.url, sub: 'dev|alice@example.test', aud: ERP, client_id: 'agent-a', scope: 'erp:read',
      act: { sub: 'agent-a' }, roles: ['finance-reader'], acr: 'dev',
    });
    expect(claims.exp! - claims.iat!).toBe(120);
  });

  it('re-delegates to a sub-agent with a nested act chain, scopes only narrowing', async () => {
    const parent = String((await exchange({ subject_token: userToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    const res = await exchange({ subject_token: parent, scope: 'mail:read', audience: MAIL }, 'agent-b', SECRET_B);
    expect(res.status).toBe(200);
    expect(decodeJwt(String(res.body.access_token))).toMatchObject({
      sub: 'dev|alice@example.test', client_id: 'agent-b', act: { sub: 'agent-b', act: { sub: 'agent-a' } }, scope: 'mail:read',
    });
  });

  it('refuses a scope beyond the person\'s roles, naming it', async () => {
    const res = await exchange({ subject_token: userToken, scope: 'erp:read erp:approve', audience: ERP });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ error: 'invalid_scope', error_description: 'scope "erp:approve" is not granted to this person by any role (roles: "finance-reader")' });
  });

  it('refuses two audiences and disagreeing resource/audience', async () => {
    const two = await postForm(`${gw.url}/token`, new URLSearchParams([
      ['grant_type', EXCHANGE], ['subject_token_type', AT], ['subject_token', userToken], ['audience', ERP], ['audience', MAIL],
    ]) as unknown as Record<string, string>, { authorization: basic('agent-a', SECRET_A) });
    expect(two.status).toBe(400);
    expect(two.body).toEqual({ error: 'invalid_target', error_description: 'a token has exactly one audience; 2 were requested' });
  });
});
