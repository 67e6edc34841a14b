// The Entra ID peer: tenant and multi-tenant (/common) sign-ins through openid-client, group
// claims and overage, app-only Graph tokens, Graph paging and errors, back-channel logout.
import { createRemoteJWKSet, customFetch, decodeJwt, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createPeerBrowser } from '../support/peers/browser.ts';
import { guid, startEntraPeer } from '../support/peers/entra.ts';
import type { EntraGroup, EntraPeer } from '../support/peers/entra.ts';
import { basicHeader } from '../support/peers/host.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { discover, signIn, startReceiver } from '../support/peers/relying-party.ts';
import type { Receiver } from '../support/peers/relying-party.ts';

const TENANT_A = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const TENANT_B = '9188040d-6c67-4c5b-b112-36a304b66dad';
const GATEWAY = { id: 'a1b2c3d4-0000-4000-8000-00000000aaaa', secret: 'gateway~secret.0123456789' };
const OTHER_APP = { id: 'a1b2c3d4-0000-4000-8000-00000000bbbb', secret: 'other~secret.0123456789' };

const groups = (n: number): EntraGroup[] =>
  Array.from({ length: n }, (_, i) => ({ id: guid('group', String(i)), displayName: `Group ${i}` }));

const internet = createLoopbackInternet();
let entra: EntraPeer;
let receiver: Receiver;
let redirectUri: string;

const jsonOf = async (response: Response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> });

async function appToken(tid: string, auth: 'basic' | 'post' = 'post', overrides: Record<string, string> = {}) {
  const form = new URLSearchParams({ grant_type: 'client_credentials', scope: 'https://graph.microsoft.com/.default', ...overrides });
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'basic') headers.authorization = basicHeader(GATEWAY.id, overrides.client_secret ?? GATEWAY.secret);
  else {
    form.set('client_id', GATEWAY.id);
    form.set('client_secret', overrides.client_secret ?? GATEWAY.secret);
  }
  return jsonOf(await internet.fetch(`https://login.microsoftonline.com/${tid}/oauth2/v2.0/token`, { method: 'POST', headers, body: form }));
}

const graphGet = (url: string, token?: string) =>
  internet.fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(jsonOf);

beforeAll(async () => {
  receiver = await startReceiver();
  redirectUri = `${receiver.url}/callback`;
  entra = await startEntraPeer({
    internet,
    groupsOverageThreshold: 4,
    clients: [
      {
        client_id: GATEWAY.id,
        client_secret: GATEWAY.secret,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [`${receiver.url}/signed-out`],
        backchannel_logout_uri: `${receiver.url}/backchannel`,
        groupMembershipClaims: 'SecurityGroup',
      },
      { client_id: OTHER_APP.id, client_secret: OTHER_APP.secret, redirect_uris: [redirectUri], appPermissions: [] },
    ],
    tenants: [
      {
        tid: TENANT_A,
        domains: ['contoso.com'],
        users: [
          { username: 'adele@contoso.com', password: 'pw-adele', name: 'Adele Vance', email: 'adele@contoso.com', groups: groups(3), roles: ['Gateway.Admin'] },
          { username: 'megan@contoso.com', password: 'pw-megan', name: 'Megan Bowen', groups: groups(5) },
          { username: 'lee@contoso.com', password: 'pw-lee', name: 'Lee Gu', groups: groups(6), overageStyle: 'hasgroups' },
        ],
      },
      {
        tid: TENANT_B,
        domains: ['fabrikam.com'],
        users: [{ username: 'diego@fabrikam.com', password: 'pw-diego', name: 'Diego Siciliani', groups: groups(1) }],
      },
    ],
  });
});

afterEach(() => {
  entra.graph.clearFailures();
  entra.graph.pageSize = undefined;
  entra.graph.setAppPermissions(GATEWAY.id, ['GroupMember.Read.All']);
});

afterAll(async () => {
  await entra?.close();
  await receiver?.close();
});

describe('Entra ID peer: tenant sign-in', () => {
  it('serves tenant discovery with Entra endpoint paths and no authorization-response iss', async () => {
    const config = await discover(internet, entra.tenant(TENANT_A).issuer, GATEWAY.id, GATEWAY.secret);
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe(`https://login.microsoftonline.com/${TENANT_A}/v2.0`);
    expect(metadata.authorization_endpoint).toBe(`https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/authorize`);
    expect(metadata.token_endpoint).toBe(`https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/token`);
    expect(metadata.jwks_uri).toBe(`https://login.microsoftonline.com/${TENANT_A}/discovery/v2.0/keys`);
    expect(metadata.end_session_endpoint).toBe(`https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/logout`);
    expect(metadata.authorization_response_iss_parameter_supported).toBeUndefined();
    expect(metadata.msgraph_host).toBe('graph.microsoft.com');
    const byDomain = await internet.fetch('https://login.microsoftonline.com/contoso.com/v2.0/.well-known/openid-configuration').then(jsonOf);
    expect(byDomain.body.issuer).toBe(metadata.issuer);
  });

  it('issues Entra v2.0 ID tokens: tid, oid, pairwise sub, groups (object ids) and roles for a groups-enabled app', async () => {
    const config = await discover(internet, entra.tenant(TENANT_A).issuer, GATEWAY.id, GATEWAY.secret);
    const { claims, walk } = await signIn(internet, config, { redirectUri, username: 'adele@contoso.com', password: 'pw-adele' });
    expect(new URL(walk.location!).searchParams.has('iss')).toBe(false);
    const oid = entra.tenant(TENANT_A).oidOf('adele@contoso.com');
    expect(oid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(claims).toMatchObject({
      iss: `https://login.microsoftonline.com/${TENANT_A}/v2.0`,
      aud: GATEWAY.id,
      tid: TENANT_A,
      oid,
      ver: '2.0',
      preferred_username: 'adele@contoso.com',
      name: 'Adele Vance',
      email: 'adele@contoso.com',
      groups: groups(3).map((group) => group.id),
      roles: ['Gateway.Admin'],
    });
    expect(claims.sub).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(claims.sub).not.toBe(oid);
    expect(claims.sub).toBe(entra.tenant(TENANT_A).subjectFor('adele@contoso.com', GATEWAY.id));
    expect(claims.azp).toBeUndefined();
    expect(claims.amr).toBeUndefined();
    expect(claims.sid).toBe(entra.tenant(TENANT_A).sessionSid('adele@contoso.com', GATEWAY.id));
  });

  it('gives another app another sub and no groups without groupMembershipClaims; oid needs the profile scope', async () => {
    const config = await discover(internet, entra.tenant(TENANT_A).issuer, OTHER_APP.id, OTHER_APP.secret);
    const { claims } = await signIn(internet, config, { redirectUri, username: 'adele@contoso.com', password: 'pw-adele', scope: 'openid' });
    expect(claims.tid).toBe(TENANT_A);
    expect(claims.groups).toBeUndefined();
    expect(claims.oid).toBeUndefined();
    expect(claims.preferred_username).toBeUndefined();
    expect(claims.sub).toBe(entra.tenant(TENANT_A).subjectFor('adele@contoso.com', OTHER_APP.id));
    expect(claims.sub).not.toBe(entra.tenant(TENANT_A).subjectFor('adele@contoso.com', GATEWAY.id));
  });

  it('registers a late app in every tenant, with its groupMembershipClaims', async () => {
    const late = { client_id: 'late-app', client_secret: 'late~secret', redirect_uris: [redirectUri], groupMembershipClaims: 'All' as const };
    await entra.setClient(late);
    for (const [tid, user, password] of [[TENANT_A, 'adele@contoso.com', 'pw-adele'], [TENANT_B, 'diego@fabrikam.com', 'pw-diego']] as const) {
      const config = await discover(internet, entra.tenant(tid).issuer, late.client_id, late.client_secret);
      const { claims } = await signIn(internet, config, { redirectUri, username: user, password });
      expect(claims).toMatchObject({ aud: 'late-app', tid });
      expect(claims.groups).toHaveLength(tid === TENANT_A ? 3 : 1);
    }
    const lateToken = () => internet.fetch(`https://login.microsoftonline.com/${TENANT_B}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'late-app', client_secret: 'late~secret', scope: 'https://graph.microsoft.com/.default' }),
    }).then(jsonOf);
    expect((await lateToken()).status).toBe(200);
    await entra.removeClient('late-app');
    expect(await lateToken()).toMatchObject({ status: 400, body: { error: 'unauthorized_client' } });
  });

  it('signals group overage with _claim_names/_claim_sources, or hasgroups', async () => {
    const config = await discover(internet, entra.tenant(TENANT_A).issuer, GATEWAY.id, GATEWAY.secret);
    const megan = await signIn(internet, config, { redirectUri, username: 'megan@contoso.com', password: 'pw-megan' });
    const oid = entra.tenant(TENANT_A).oidOf('megan@contoso.com');
    expect(megan.claims.groups).toBeUndefined();
    expect(megan.claims._claim_names).toEqual({ groups: 'src1' });
    expect(megan.claims._claim_sources).toEqual({ src1: { endpoint: `https://graph.microsoft.com/v1.0/users/${oid}/getMemberObjects` } });
    const lee = await signIn(internet, config, { redirectUri, username: 'lee@contoso.com', password: 'pw-lee' });
    expect(lee.claims.groups).toBeUndefined();
    expect(lee.claims._claim_names).toBeUndefined();
    expect(lee.claims.hasgroups).toBe(true);
  });
});

describe('Entra ID peer: multi-tenant (/common)', () => {
  it('serves /common and /organizations discovery with the {tenantid} issuer template and every tenant key', async () => {
    for (const authority of ['common', 'organizations']) {
      const { body } = await internet.fetch(`https://login.microsoftonline.com/${authority}/v2.0/.well-known/openid-configuration`).then(jsonOf);
      expect(body.issuer).toBe('https://login.microsoftonline.com/{tenantid}/v2.0');
      expect(body.authorization_endpoint).toBe(`https://login.microsoftonline.com/${authority}/oauth2/v2.0/authorize`);
      expect(body.token_endpoint).toBe(`https://login.microsoftonline.com/${authority}/oauth2/v2.0/token`);
      const keys = await internet.fetch(String(body.jwks_uri)).then(jsonOf);
      expect((keys.body.keys as Array<{ kid: string }>).map((key) => key.kid).sort())
        .toEqual([entra.tenant(TENANT_A).key.kid, entra.tenant(TENANT_B).key.kid].sort());
    }
  });

  it('signs in through /common with a login_hint; the ID token has the home tenant issuer', async () => {
    const config = await discover(internet, entra.commonAuthority, GATEWAY.id, GATEWAY.secret);
    const { claims, walk } = await signIn(internet, config, {
      redirectUri, username: 'diego@fabrikam.com', password: 'pw-diego', extra: { login_hint: 'diego@fabrikam.com' },
    });
    expect(walk.hops[0]!.url).toMatch(/^https:\/\/login\.microsoftonline\.com\/common\/oauth2\/v2\.0\/authorize\?/);
    expect(walk.hops[0]!.location).toMatch(new RegExp(`^https://login\\.microsoftonline\\.com/${TENANT_B}/oauth2/v2\\.0/authorize\\?`));
    expect(claims.iss).toBe(`https://login.microsoftonline.com/${TENANT_B}/v2.0`);
    expect(claims.tid).toBe(TENANT_B);
  });

  it('asks for the username without a hint, and picks the tenant by domain_hint', async () => {
    const config = await discover(internet, entra.organizationsAuthority, GATEWAY.id, GATEWAY.secret);
    const { claims, walk } = await signIn(internet, config, { redirectUri, username: 'adele@contoso.com', password: 'pw-adele' });
    expect(walk.hops[0]!.status).toBe(200);
    expect(walk.hops[0]!.body).toContain('name="username"');
    expect(walk.hops[0]!.body).not.toContain('name="password"');
    expect(claims.iss).toBe(`https://login.microsoftonline.com/${TENANT_A}/v2.0`);

    const byDomain = await signIn(internet, config, { redirectUri, username: 'diego@fabrikam.com', password: 'pw-diego', extra: { domain_hint: 'fabrikam.com' } });
    expect(byDomain.claims.tid).toBe(TENANT_B);
  });

  it('answers an unknown username at /common with the form again (400)', async () => {
    const browser = createPeerBrowser(internet);
    const walk = await browser.followUntil('https://login.microsoftonline.com/common/oauth2/v2.0/authorize?client_id=x&response_type=code', () => false, {
      username: 'nobody@nowhere.example', throwOnStop: false,
    });
    expect(walk.last.status).toBe(400);
    expect(walk.last.body).toContain('find an account with that username');
  });
});

describe('Entra ID peer: Microsoft Graph', () => {
  it('issues app-only Graph tokens (client_secret_post or _basic) signed by the tenant key', async () => {
    for (const auth of ['post', 'basic'] as const) {
      const { status, body } = await appToken(TENANT_A, auth);
      expect(status).toBe(200);
      expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3599 });
      const jwks = createRemoteJWKSet(new URL(`https://login.microsoftonline.com/${TENANT_A}/discovery/v2.0/keys`), { [customFetch]: internet.fetch });
      const { payload } = await jwtVerify(String(body.access_token), jwks, { audience: 'https://graph.microsoft.com' });
      expect(payload).toMatchObject({ tid: TENANT_A, roles: ['GroupMember.Read.All'], appid: GATEWAY.id, idtyp: 'app' });
      expect(payload.exp! - payload.iat!).toBe(3599);
    }
  });

  it('refuses a wrong secret (401 invalid_client), an unknown app, and a scope without /.default', async () => {
    const wrong = await appToken(TENANT_A, 'post', { client_secret: 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
    expect(wrong.body.error_codes).toEqual([7000215]);
    const badScope = await appToken(TENANT_A, 'basic', { scope: 'GroupMember.Read.All' });
    expect(badScope.status).toBe(400);
    expect(badScope.body.error).toBe('invalid_scope');
    const unknown = await jsonOf(await internet.fetch(`https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'nobody', client_secret: 'x', scope: 'https://graph.microsoft.com/.default' }),
    }));
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toBe('unauthorized_client');
  });

  it('pages transitiveMemberOf through full https @odata.nextLink URLs', async () => {
    entra.graph.pageSize = 2;
    const { body: token } = await appToken(TENANT_A);
    const oid = entra.tenant(TENANT_A).oidOf('megan@contoso.com');
    let next: string | undefined = `https://graph.microsoft.com/v1.0/users/${oid}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=999`;
    const seen: Array<Record<string, unknown>> = [];
    const links: string[] = [];
    while (next) {
      const { status, body } = await graphGet(next, String(token.access_token));
      expect(status).toBe(200);
      expect(body['@odata.context']).toMatch(/^https:\/\/graph\.microsoft\.com\/v1\.0\/\$metadata#/);
      seen.push(...(body.value as Array<Record<string, unknown>>));
      next = body['@odata.nextLink'] as string | undefined;
      if (next) links.push(next);
    }
    expect(seen).toEqual(groups(5).map((group) => ({ '@odata.type': '#microsoft.graph.group', id: group.id, displayName: group.displayName })));
    expect(links).toHaveLength(2);
    expect(links[0]).toMatch(new RegExp(`^https://graph\\.microsoft\\.com/v1\\.0/users/${oid}/transitiveMemberOf/microsoft\\.graph\\.group\\?\\$select=id,displayName&\\$top=999&\\$skiptoken=`));
    expect(entra.graph.requests.slice(-3).map((request) => request.status)).toEqual([200, 200, 200]);

    entra.graph.pageSize = undefined;
    const byUpn = await graphGet('https://graph.microsoft.com/v1.0/users/megan@contoso.com/transitiveMemberOf?$top=3', String(token.access_token));
    expect((byUpn.body.value as unknown[]).length).toBe(3);
    const objects = await jsonOf(await internet.fetch(`https://graph.microsoft.com/v1.0/users/${oid}/getMemberObjects`, {
      method: 'POST',
      headers: { authorization: `Bearer ${String(token.access_token)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ securityEnabledOnly: false }),
    }));
    expect(objects.body.value).toEqual(groups(5).map((group) => group.id));
  });

  it('answers 401 InvalidAuthenticationToken for no, forged or expired tokens', async () => {
    const url = 'https://graph.microsoft.com/v1.0/users/adele@contoso.com/transitiveMemberOf/microsoft.graph.group';
    const none = await graphGet(url);
    expect(none.status).toBe(401);
    expect((none.body.error as { code: string }).code).toBe('InvalidAuthenticationToken');

    // Tenant B's key, claiming tenant A.
    const { body: tokenB } = await appToken(TENANT_B);
    const parts = String(tokenB.access_token).split('.');
    const claims = { ...decodeJwt(String(tokenB.access_token)), tid: TENANT_A, iss: `https://sts.windows.net/${TENANT_A}/` };
    const forged = `${parts[0]}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${parts[2]}`;
    expect((await graphGet(url, forged)).status).toBe(401);

    const expired = await entra.graph.appToken(TENANT_A, GATEWAY.id, { expiresIn: -60 });
    const answer = await graphGet(url, expired);
    expect(answer.status).toBe(401);
    expect((answer.body.error as { message: string }).message).toContain('expired');

    const wrongAudience = await entra.graph.appToken(TENANT_A, GATEWAY.id, { audience: 'api://something-else' });
    expect((await graphGet(url, wrongAudience)).status).toBe(401);
  });

  it('answers 403 Authorization_RequestDenied without a membership permission, 404 for a user of another tenant', async () => {
    entra.graph.setAppPermissions(GATEWAY.id, []);
    const { body: token } = await appToken(TENANT_A);
    expect(decodeJwt(String(token.access_token)).roles).toBeUndefined();
    const denied = await graphGet('https://graph.microsoft.com/v1.0/users/adele@contoso.com/transitiveMemberOf/microsoft.graph.group', String(token.access_token));
    expect(denied.status).toBe(403);
    expect(denied.body.error).toMatchObject({ code: 'Authorization_RequestDenied', message: 'Insufficient privileges to complete the operation.' });

    entra.graph.setAppPermissions(GATEWAY.id, ['Directory.Read.All']);
    const { body: tokenA } = await appToken(TENANT_A);
    const foreign = await graphGet('https://graph.microsoft.com/v1.0/users/diego@fabrikam.com/transitiveMemberOf', String(tokenA.access_token));
    expect(foreign.status).toBe(404);
    expect((foreign.body.error as { code: string }).code).toBe('Request_ResourceNotFound');
  });

  it('fails for a user on demand (from a given page) and when stopped', async () => {
    entra.graph.pageSize = 2;
    const { body: token } = await appToken(TENANT_A);
    const url = 'https://graph.microsoft.com/v1.0/users/megan@contoso.com/transitiveMemberOf/microsoft.graph.group';
    entra.graph.failUser('megan@contoso.com', { fromPage: 1 });
    const first = await graphGet(url, String(token.access_token));
    expect(first.status).toBe(200);
    const second = await graphGet(String(first.body['@odata.nextLink']), String(token.access_token));
    expect(second.status).toBe(500);
    expect((second.body.error as { code: string }).code).toBe('generalException');

    await entra.graph.stop();
    await expect(internet.fetch(url)).rejects.toThrow(TypeError);
    await entra.graph.start();
    expect((await graphGet(String(first.body['@odata.nextLink']), String(token.access_token))).status).toBe(500);
    entra.graph.clearFailures();
    expect((await graphGet(String(first.body['@odata.nextLink']), String(token.access_token))).status).toBe(200);
    entra.graph.failUser('megan@contoso.com', { status: 503 });
    expect((await graphGet(url, String(token.access_token))).status).toBe(503);
  });
});

describe('Entra ID peer: logout', () => {
  it('posts logout tokens with the pairwise sub and the session sid', async () => {
    const tenant = entra.tenant(TENANT_A);
    const config = await discover(internet, tenant.issuer, GATEWAY.id, GATEWAY.secret);
    const { claims, tokens, browser } = await signIn(internet, config, { redirectUri, username: 'adele@contoso.com', password: 'pw-adele' });
    const before = receiver.requests.length;
    const result = await tenant.backchannelLogout({ username: 'adele@contoso.com' });
    expect(result.status).toBe(200);
    const jwks = createRemoteJWKSet(new URL(`https://login.microsoftonline.com/${TENANT_A}/discovery/v2.0/keys`), { [customFetch]: internet.fetch });
    const { payload } = await jwtVerify(receiver.requests[before]!.form.get('logout_token')!, jwks, {
      issuer: tenant.issuer, audience: GATEWAY.id, typ: 'logout+jwt', algorithms: ['RS256'],
    });
    expect(payload).toMatchObject({ sub: claims.sub, sid: claims.sid, events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });

    // RP-initiated logout at the tenant: oidc-provider's own logout token, with the pairwise sub too.
    const deliveries = tenant.logoutDeliveries.length;
    const logout = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: `${receiver.url}/signed-out` });
    await browser.followUntil(logout.href, (location) => location.startsWith(`${receiver.url}/signed-out`));
    const sent = tenant.logoutDeliveries.slice(deliveries);
    expect(sent).toHaveLength(1);
    expect(decodeJwt(sent[0]!.logoutToken)).toMatchObject({ sub: claims.sub, sid: claims.sid, aud: GATEWAY.id });
  });

  it('refuses connections to login.microsoftonline.com after stop()', async () => {
    await entra.stop();
    const error = await internet.fetch(`${entra.commonAuthority}/.well-known/openid-configuration`).catch((caught: unknown) => caught);
    expect(((error as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await entra.start();
    expect((await internet.fetch(`${entra.commonAuthority}/.well-known/openid-configuration`)).status).toBe(200);
  });
});
