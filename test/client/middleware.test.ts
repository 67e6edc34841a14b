// requireAgentToken against the real gateway: a resource server on a loopback port accepts the
// agent tokens the gateway issues by token exchange, with exactly `req.agentToken`, and refuses
// every forgery, misdirected, expired or mistyped token with the exact RFC 6750 / RFC 9449
// challenge carrying RFC 9728 `resource_metadata`. DPoP-bound tokens need a fresh proof for this
// request, by their key, used once.
import { createHmac } from 'node:crypto';

import { base64url, decodeJwt, generateKeyPair, SignJWT } from 'jose';
import type { JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createTokenExchanger, dpopProof, protectedResourceMetadata } from '../../src/client/index.ts';
import type { DpopKeyPair } from '../../src/client/index.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ERP, exchangeAs, MAIL, SECRETS, signInPerson, startExchangeGateway } from '../exchange/fixture.ts';
import type { SignedInPerson } from '../exchange/fixture.ts';
import { call, signWithGatewayKey, startResourceServer } from './fixture.ts';
import type { TestResourceServer } from './fixture.ts';

const ALICE = 'dev|alice@example.test';
let gw: TestGateway;
let alice: SignedInPerson;
let rs: TestResourceServer;
/** agent-a's token for the ERP with erp:read. */
let token: string;
let claims: JWTPayload;

const now = () => Math.floor(Date.now() / 1000);
const metadataUrl = () => `${rs.url}/.well-known/oauth-protected-resource`;
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const invalidToken = (description: string) =>
  `Bearer error="invalid_token", error_description="${description}", resource_metadata="${metadataUrl()}"`;
const dpopChallenge = (error: string, description: string) =>
  `DPoP error="${error}", error_description="${description}", algs="ES256 Ed25519 EdDSA", resource_metadata="${metadataUrl()}"`;

async function expectRefused(res: { status: number; headers: Headers; body: Record<string, unknown> }, status: number, challenge: string, body: Record<string, unknown>) {
  expect({ status: res.status, challenge: res.headers.get('www-authenticate'), body: res.body, cacheControl: res.headers.get('cache-control') })
    .toEqual({ status, challenge, body, cacheControl: 'no-store' });
}

beforeAll(async () => {
  ({ gw } = await startExchangeGateway());
  alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance,Approvers' });
  const res = await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP });
  token = String(res.body.access_token);
  claims = decodeJwt(token);
  rs = await startResourceServer({ issuer: gw.url, audience: ERP });
});
afterAll(async () => {
  await rs?.close();
  await gw?.close();
});

describe('requireAgentToken: accepting agent tokens', () => {
  it('accepts an agent token and exposes exactly who acts for whom', async () => {
    const res = await call(`${rs.url}/whoami`, bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      person: ALICE, agent: 'agent-a', actors: ['agent-a'], scopes: ['erp:read'], audience: ERP,
      sid: alice.sid, jti: claims.jti, expiresAt: claims.exp, claims,
    });
  });

  it('exposes the act chain of a re-delegated token, outermost actor first', async () => {
    const parent = String((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    const child = String((await exchangeAs(gw, 'agent-b', { subject_token: parent, scope: 'mail:read', audience: MAIL })).body.access_token);
    const mail = await startResourceServer({ issuer: gw.url, audience: MAIL });
    try {
      const res = await call(`${mail.url}/whoami`, bearer(child));
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ person: ALICE, agent: 'agent-b', actors: ['agent-b', 'agent-a'], scopes: ['mail:read'], audience: MAIL });
    } finally {
      await mail.close();
    }
  });

  it('without a client, warns once that revocation is not enforced', () => {
    expect(rs.logs).toEqual([
      `warn: agentgate: requireAgentToken for ${ERP} has no \`client\`: revoked tokens (ended sessions, disabled agents) are accepted until they expire. Configure resources[].client at the gateway and pass \`client\` to enforce revocation.`,
    ]);
    expect(rs.auth.revocationStatus()).toEqual({ mode: 'disabled', connected: false, outage: 0, introspecting: false });
  });
});

describe('requireAgentToken: refusals', () => {
  it('no token: 401 with a bare challenge (RFC 6750 §3.1) pointing at the metadata', async () => {
    const expected = { error: 'invalid_token', error_description: 'an access token is required' };
    await expectRefused(await call(`${rs.url}/whoami`), 401, `Bearer resource_metadata="${metadataUrl()}"`, expected);
    // Another scheme is no authentication information for this resource either.
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `Basic ${btoa('a:b')}` }), 401, `Bearer resource_metadata="${metadataUrl()}"`, expected);
  });

  it('a malformed bearer credential', async () => {
    const description = 'the access token is malformed';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: 'Bearer' }), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    await expectRefused(await call(`${rs.url}/whoami`, bearer('not-a-jwt')), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
  });

  it('a bad signature: another key under the gateway key id, and an unknown key id', async () => {
    const stranger = await generateKeyPair('ES256');
    const payload = { ...claims };
    const description = 'the access token signature is invalid';
    const sameKid = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: gw.keyRing.signingKey.kid }).sign(stranger.privateKey);
    await expectRefused(await call(`${rs.url}/whoami`, bearer(sameKid)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    const otherKid = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'stranger' }).sign(stranger.privateKey);
    await expectRefused(await call(`${rs.url}/whoami`, bearer(otherKid)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    // A flipped signature byte of a genuine token.
    const [h, p, s] = token.split('.') as [string, string, string];
    const flipped = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
    await expectRefused(await call(`${rs.url}/whoami`, bearer(flipped)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
  });

  it('a genuine token for another audience', async () => {
    const mailToken = String((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'mail:read', audience: MAIL })).body.access_token);
    const description = 'the access token is not meant for this resource (aud)';
    await expectRefused(await call(`${rs.url}/whoami`, bearer(mailToken)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
  });

  it('a token naming another issuer, even signed with the gateway key', async () => {
    const forged = await signWithGatewayKey(gw, { ...claims, iss: 'https://evil.example.test' });
    const description = 'the access token was not issued by the expected issuer (iss)';
    await expectRefused(await call(`${rs.url}/whoami`, bearer(forged)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
  });

  it('an expired token, one not valid yet, one issued in the future, one without exp', async () => {
    const cases: [JWTPayload, string][] = [
      [{ ...claims, iat: now() - 300, exp: now() - 60 }, 'the access token has expired'],
      [{ ...claims, nbf: now() + 60 }, 'the access token is not valid yet (nbf)'],
      [{ ...claims, iat: now() + 60 }, 'the access token was issued in the future (iat)'],
      [{ ...claims, exp: undefined }, 'the access token lacks the exp claim'],
      [{ ...claims, client_id: undefined }, 'the access token lacks the client_id claim'],
      [{ ...claims, act: { sub: 42 } }, "the access token's act claim is malformed"],
    ];
    for (const [payload, description] of cases) {
      await expectRefused(await call(`${rs.url}/whoami`, bearer(await signWithGatewayKey(gw, payload))), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    }
  });

  it('a JWT that is not an access token: typ JWT, and the person\'s ID token', async () => {
    const description = 'the token is not an access token (typ must be at+jwt, RFC 9068)';
    const typJwt = await signWithGatewayKey(gw, claims, { typ: 'JWT' });
    await expectRefused(await call(`${rs.url}/whoami`, bearer(typJwt)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    await expectRefused(await call(`${rs.url}/whoami`, bearer(alice.idToken)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
  });

  it('alg none and HS256 keyed with the public key (RFC 8725 §2.1)', async () => {
    const description = 'the access token is signed with an algorithm this resource does not accept';
    const payload = base64url.encode(JSON.stringify(claims));
    const none = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'at+jwt' }))}.${payload}.`;
    await expectRefused(await call(`${rs.url}/whoami`, bearer(none)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    const { d: _d, ...publicJwk } = gw.keyRing.signingKey;
    for (const secret of [JSON.stringify(publicJwk), JSON.stringify(gw.keyRing.publicJwks.keys[0])]) {
      const header = base64url.encode(JSON.stringify({ alg: 'HS256', typ: 'at+jwt', kid: gw.keyRing.signingKey.kid }));
      const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      await expectRefused(await call(`${rs.url}/whoami`, bearer(`${header}.${payload}.${mac}`)), 401, invalidToken(description), { error: 'invalid_token', error_description: description });
    }
  });

  it('insufficient scope: 403 with the scope the route needs', async () => {
    const res = await call(`${rs.url}/approve`, bearer(token));
    const description = 'the access token lacks the scope erp:approve';
    await expectRefused(res, 403, `Bearer error="insufficient_scope", error_description="${description}", scope="erp:approve", resource_metadata="${metadataUrl()}"`, {
      error: 'insufficient_scope', error_description: description,
    });
  });

  it('the gateway unreachable: 503 temporarily_unavailable with Retry-After, never a pass', async () => {
    const down = await startResourceServer({ issuer: 'http://127.0.0.1:9', audience: ERP });
    try {
      const res = await call(`${down.url}/whoami`, bearer(token));
      expect({ status: res.status, retryAfter: res.headers.get('retry-after'), body: res.body }).toEqual({
        status: 503, retryAfter: '5',
        body: { error: 'temporarily_unavailable', error_description: "the authorization server's keys cannot be fetched; retry shortly" },
      });
      expect(down.logs.filter((line) => line.includes('cannot verify'))).toHaveLength(1);
      expect(down.logs.join('\n')).not.toContain(token);
    } finally {
      await down.close();
    }
  });
});

describe('requireAgentToken: DPoP-bound tokens (RFC 9449)', () => {
  let key: DpopKeyPair;
  let bound: string;
  let jkt: string;

  beforeAll(async () => {
    key = await generateKeyPair('ES256');
    const exchanger = createTokenExchanger({ issuer: gw.url, clientId: 'agent-d', clientSecret: SECRETS['agent-d']!, dpopKey: key });
    const result = await exchanger.exchange({ subjectToken: alice.accessToken, scope: 'erp:read', audience: ERP });
    expect(result.tokenType).toBe('DPoP');
    bound = result.accessToken;
    jkt = String((decodeJwt(bound).cnf as { jkt: string }).jkt);
  });

  const proofFor = (overrides: Partial<Parameters<typeof dpopProof>[0]> = {}) =>
    dpopProof({ key, method: 'GET', url: `${rs.url}/whoami`, accessToken: bound, ...overrides });

  it('accepts the token with a proof for this request, by its key', async () => {
    const res = await call(`${rs.url}/whoami?x=1`, { authorization: `DPoP ${bound}`, dpop: await proofFor() });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ agent: 'agent-d', actors: ['agent-d'], claims: { cnf: { jkt } } });
  });

  it('refuses it under the Bearer scheme, and without a proof', async () => {
    const asBearer = 'the access token is DPoP-bound; present it with the DPoP scheme and a DPoP proof';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `Bearer ${bound}`, dpop: await proofFor() }), 401, dpopChallenge('invalid_token', asBearer), {
      error: 'invalid_token', error_description: asBearer,
    });
    const noProof = 'a DPoP proof (DPoP header) is required';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}` }), 401, dpopChallenge('invalid_dpop_proof', noProof), {
      error: 'invalid_dpop_proof', error_description: noProof,
    });
  });

  it('refuses a proof signed by another key', async () => {
    const other = await generateKeyPair('ES256');
    const description = 'the DPoP proof is not signed by the key the access token is bound to (cnf.jkt)';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: await proofFor({ key: other }) }), 401, dpopChallenge('invalid_token', description), {
      error: 'invalid_token', error_description: description,
    });
  });

  it('refuses a replayed proof', async () => {
    const proof = await proofFor();
    expect((await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: proof })).status).toBe(200);
    const description = 'the DPoP proof has been used before (jti)';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: proof }), 401, dpopChallenge('invalid_dpop_proof', description), {
      error: 'invalid_dpop_proof', error_description: description,
    });
  });

  it('refuses a proof for another URL, another method, another token, or too old', async () => {
    const cases: [Partial<Parameters<typeof dpopProof>[0]>, string][] = [
      [{ url: `${rs.url}/other` }, 'DPoP proof htu mismatch'],
      [{ url: `http://localhost:${new URL(rs.url).port}/whoami` }, 'DPoP proof htu mismatch'],
      [{ method: 'POST' }, 'DPoP proof htm mismatch'],
      [{ accessToken: token }, 'DPoP proof ath mismatch'],
      [{ now: now() - 301 }, 'DPoP proof iat is not recent enough'],
    ];
    for (const [overrides, description] of cases) {
      await expectRefused(await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: await proofFor(overrides) }), 401, dpopChallenge('invalid_dpop_proof', description), {
        error: 'invalid_dpop_proof', error_description: description,
      });
    }
    // A proof without ath (the token endpoint's kind) does not go with an access token.
    const withoutAth = await dpopProof({ key, method: 'GET', url: `${rs.url}/whoami` });
    expect((await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: withoutAth })).body).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP proof ath mismatch' });
  });

  it('refuses an unbound token under the DPoP scheme', async () => {
    const description = 'the access token is not DPoP-bound; present it with the Bearer scheme';
    await expectRefused(await call(`${rs.url}/whoami`, { authorization: `DPoP ${token}`, dpop: await proofFor({ accessToken: token }) }), 401, dpopChallenge('invalid_token', description), {
      error: 'invalid_token', error_description: description,
    });
  });

  it('dpop: required refuses unbound tokens and challenges with DPoP', async () => {
    const strict = await startResourceServer({ issuer: gw.url, audience: ERP, dpop: 'required' });
    try {
      const meta = `${strict.url}/.well-known/oauth-protected-resource`;
      const bare = await call(`${strict.url}/whoami`);
      expect([bare.status, bare.headers.get('www-authenticate')]).toEqual([401, `DPoP algs="ES256 Ed25519 EdDSA", resource_metadata="${meta}"`]);
      const unbound = await call(`${strict.url}/whoami`, bearer(token));
      const description = 'this resource accepts DPoP-bound access tokens only';
      expect([unbound.status, unbound.headers.get('www-authenticate'), unbound.body]).toEqual([
        401, `DPoP error="invalid_token", error_description="${description}", algs="ES256 Ed25519 EdDSA", resource_metadata="${meta}"`,
        { error: 'invalid_token', error_description: description },
      ]);
      const ok = await call(`${strict.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: await dpopProof({ key, method: 'GET', url: `${strict.url}/whoami`, accessToken: bound }) });
      expect(ok.status).toBe(200);
    } finally {
      await strict.close();
    }
  });

  it('behind a trusted proxy, htu and resource_metadata are the public URL', async () => {
    const proxied = await startResourceServer({ issuer: gw.url, audience: ERP }, (app) => app.set('trust proxy', 'loopback'));
    try {
      const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'api.example.test' };
      const publicProof = await dpopProof({ key, method: 'GET', url: 'https://api.example.test/whoami', accessToken: bound });
      expect((await call(`${proxied.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: publicProof, ...forwarded })).status).toBe(200);
      const bare = await call(`${proxied.url}/whoami`, forwarded);
      expect(bare.headers.get('www-authenticate')).toBe('Bearer resource_metadata="https://api.example.test/.well-known/oauth-protected-resource"');
      // Without trust, forwarded headers are ignored: the proof for the public URL does not fit.
      const direct = await call(`${rs.url}/whoami`, { authorization: `DPoP ${bound}`, dpop: await dpopProof({ key, method: 'GET', url: 'https://api.example.test/whoami', accessToken: bound }), ...forwarded });
      expect(direct.body).toEqual({ error: 'invalid_dpop_proof', error_description: 'DPoP proof htu mismatch' });
    } finally {
      await proxied.close();
    }
  });
});

describe('protectedResourceMetadata (RFC 9728)', () => {
  it('serves the metadata document', async () => {
    const meta = await startResourceServer({ issuer: gw.url, audience: ERP }, (app) => {
      app.get('/.well-known/oauth-protected-resource', protectedResourceMetadata({ resource: ERP, issuer: gw.url, scopes: ['erp:read', 'erp:approve'], resourceName: 'ERP' }));
    });
    try {
      const res = await call(`${meta.url}/.well-known/oauth-protected-resource`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(res.body).toEqual({
        resource: ERP,
        authorization_servers: [gw.url],
        scopes_supported: ['erp:read', 'erp:approve'],
        bearer_methods_supported: ['header'],
        dpop_signing_alg_values_supported: ['ES256', 'Ed25519', 'EdDSA'],
        dpop_bound_access_tokens_required: false,
        resource_name: 'ERP',
      });
      // The authorization server it names is the gateway: its metadata is where a client goes next.
      const as = await call(`${String((res.body.authorization_servers as string[])[0])}/.well-known/openid-configuration`);
      expect(as.body.issuer).toBe(gw.url);
    } finally {
      await meta.close();
    }
  });

  it('refuses bad options at construction', () => {
    expect(() => protectedResourceMetadata({ resource: 'erp', issuer: gw.url, scopes: [] })).toThrow(new TypeError('resource must be an absolute URL'));
    expect(() => protectedResourceMetadata({ resource: ERP, issuer: gw.url, scopes: 'erp:read' as unknown as string[] })).toThrow(new TypeError('scopes must be an array of strings'));
  });
});

describe('requireAgentToken: construction', () => {
  it('throws TypeError naming the option', async () => {
    const { requireAgentToken } = await import('../../src/client/index.ts');
    expect(() => requireAgentToken({ issuer: 'nope', audience: ERP })).toThrow(new TypeError('issuer must be an absolute URL'));
    expect(() => requireAgentToken({ issuer: gw.url, audience: '' })).toThrow(new TypeError('audience is required'));
    expect(() => requireAgentToken({ issuer: gw.url, audience: ERP, dpop: 'sometimes' as 'required' })).toThrow(new TypeError('dpop must be "required" or "allowed"'));
    expect(() => requireAgentToken({ issuer: gw.url, audience: ERP, client: { clientId: 'erp-api' } })).toThrow(new TypeError('client: give exactly one of clientSecret and privateKey'));
  });

  it('never logs a token', () => {
    expect(rs.logs.join('\n')).not.toContain(token.split('.')[2]!);
  });
});
