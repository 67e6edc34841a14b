// Federated sign-in through the gateway with a Microsoft Entra ID peer: tenant sign-in (tid:oid
// subject, group object ids with aliases, app roles), roles from groups, app roles and a CEL
// condition on the tenant; group overage resolved through Microsoft Graph (paged), and failing
// closed when Graph refuses; a multi-tenant app (/organizations) admitting only its listed
// tenants; home-realm discovery forwarding `domain_hint`.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { alertText, completed, federatedSignIn, warnings } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { guid, startEntraPeer } from '../support/peers/entra.ts';
import type { EntraGroup, EntraPeer } from '../support/peers/entra.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';

const TENANT_A = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const TENANT_B = '9188040d-6c67-4c5b-b112-36a304b66dad';
const APP = { id: 'a1b2c3d4-0000-4000-8000-00000000aaaa', secret: 'gateway~secret.0123456789' };
const G: EntraGroup[] = Array.from({ length: 6 }, (_, i) => ({ id: guid('group', String(i)), displayName: `Group ${i}` }));

const internet = createLoopbackInternet();
let entra: EntraPeer;
let gw: TestGateway;
const gateways: TestGateway[] = [];

const entraIdp = (overrides: Record<string, unknown> = {}) => ({
  id: 'entra', type: 'oidc', preset: 'azure-ad', displayName: 'Contoso',
  tenant: TENANT_A, clientId: APP.id, clientSecret: APP.secret,
  scopes: ['openid', 'email', 'profile'], domains: ['contoso.com'],
  groupAliases: { [G[0]!.id]: 'Finance' },
  graph: { pageSize: 2 },
  ...overrides,
});

const gatewayConfig = {
  devLogin: { enabled: false },
  identityProviders: [
    entraIdp(),
    entraIdp({ id: 'entra-orgs', displayName: 'Partners', tenant: 'organizations', tenants: [TENANT_A], domains: [], groupAliases: {} }),
  ],
  roles: {
    'finance-reader': { scopes: ['erp:read'] },
    approver: { scopes: ['erp:approve'] },
    'gateway-admin': { scopes: ['erp:approve'] },
    'tenant-member': { scopes: ['mail:read'] },
  },
  roleMappings: [
    { idp: 'entra', group: G[0]!.id, roles: ['finance-reader'] },
    // Only people past the overage threshold have it: it arrives on Graph's last page.
    { idp: 'entra', group: G[4]!.id, roles: ['approver'] },
    { idp: 'entra', group: 'app-role:Gateway.Admin', roles: ['gateway-admin'] },
    { when: `attributes.tid == "${TENANT_A}"`, roles: ['tenant-member'] },
  ],
};

/** Starts a gateway with the Entra config and registers its callbacks with the app in every tenant. */
async function startEntraGateway(): Promise<TestGateway> {
  const started = await startGateway({ fetch: internet.fetch, config: gatewayConfig });
  gateways.push(started);
  const urls = gateways.flatMap((g) => ['entra', 'entra-orgs'].map((id) => `${g.url}/federation/oidc/${id}`));
  await entra.setClient({
    client_id: APP.id,
    client_secret: APP.secret,
    redirect_uris: urls.map((u) => `${u}/callback`),
    post_logout_redirect_uris: urls.map((u) => `${u}/logged-out`),
    groupMembershipClaims: 'SecurityGroup',
  });
  return started;
}

beforeAll(async () => {
  entra = await startEntraPeer({
    internet,
    groupsOverageThreshold: 4,
    clients: [],
    tenants: [
      {
        tid: TENANT_A,
        domains: ['contoso.com'],
        users: [
          { username: 'adele@contoso.com', password: 'pw-adele', name: 'Adele Vance', email: 'adele@contoso.com', groups: G.slice(0, 3), roles: ['Gateway.Admin'] },
          // No mail attribute: the gateway falls back to preferred_username (the UPN).
          { username: 'megan@contoso.com', password: 'pw-megan', name: 'Megan Bowen', groups: G.slice(0, 5) },
          { username: 'lee@contoso.com', password: 'pw-lee', name: 'Lee Gu', email: 'lee@contoso.com', groups: G.slice(0, 6), overageStyle: 'hasgroups' },
        ],
      },
      {
        tid: TENANT_B,
        domains: ['fabrikam.com'],
        users: [{ username: 'diego@fabrikam.com', password: 'pw-diego', name: 'Diego Siciliani', email: 'diego@fabrikam.com', groups: G.slice(0, 1) }],
      },
    ],
  });
  gw = await startEntraGateway();
});

afterEach(() => {
  entra.graph.clearFailures();
  entra.graph.setAppPermissions(APP.id, ['GroupMember.Read.All']);
});

afterAll(async () => {
  for (const g of gateways) await g.close();
  await entra?.close();
});

const oid = (tid: string, username: string) => entra.tenant(tid).oidOf(username);


const OVERAGE_WARNING = 'group overage could not be resolved through Microsoft Graph; group-based roles will not apply';


describe('sign-in through an Entra tenant', () => {
  it('keys the person by tid:oid and maps group ids (aliased), app roles and the tenant to roles', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: 'adele@contoso.com', password: 'pw-adele', idpHint: 'entra' });
    expect(signIn.walk.hops[1]!.location).toMatch(new RegExp(`^https://login\\.microsoftonline\\.com/${TENANT_A}/oauth2/v2\\.0/authorize\\?`));
    const { idToken, session } = await completed(gw, signIn);
    const adele = oid(TENANT_A, 'adele@contoso.com');
    expect(session.accountId).toBe(`entra|${TENANT_A}:${adele}`);
    expect(session.roles).toEqual(['finance-reader', 'gateway-admin', 'tenant-member']);
    expect(session.identity).toEqual({
      idp: 'entra',
      subject: `${TENANT_A}:${adele}`,
      email: 'adele@contoso.com',
      name: 'Adele Vance',
      groups: [
        { idp: 'entra', id: G[0]!.id, name: 'Finance' },
        { idp: 'entra', id: G[1]!.id },
        { idp: 'entra', id: G[2]!.id },
        { idp: 'entra', id: 'app-role:Gateway.Admin', name: 'Gateway.Admin' },
      ],
      groupsComplete: true,
      amr: [],
      authTime: expect.any(Number) as number,
      attributes: { tid: TENANT_A, oid: adele, upn: 'adele@contoso.com', app_roles: ['Gateway.Admin'] },
    });
    // The upstream subject is Entra's pairwise sub, not ours.
    expect(session.upstream).toMatchObject({ idp: 'entra', sub: entra.tenant(TENANT_A).subjectFor('adele@contoso.com', APP.id) });
    expect(idToken).toMatchObject({
      iss: gw.url, aud: 'agent-console', nonce: 'app-nonce',
      sub: `entra|${TENANT_A}:${adele}`, idp: 'entra', email: 'adele@contoso.com', name: 'Adele Vance',
      roles: ['finance-reader', 'gateway-admin', 'tenant-member'],
      groups: ['Finance', G[1]!.id, G[2]!.id, 'Gateway.Admin'],
    });
  });

  it('routes by the login_hint domain and forwards it as domain_hint', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: 'adele@contoso.com', password: 'pw-adele', loginHint: 'adele@contoso.com' });
    const authorize = new URL(signIn.walk.hops.map((h) => h.location ?? '').find((l) => l.includes('/oauth2/v2.0/authorize'))!);
    expect(`${authorize.origin}${authorize.pathname}`).toBe(`https://login.microsoftonline.com/${TENANT_A}/oauth2/v2.0/authorize`);
    expect(authorize.searchParams.get('login_hint')).toBe('adele@contoso.com');
    expect(authorize.searchParams.get('domain_hint')).toBe('contoso.com');
    expect(authorize.searchParams.get('client_id')).toBe(APP.id);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${gw.url}/federation/oidc/entra/callback`);
    const { session } = await completed(gw, signIn);
    expect(session.identity.idp).toBe('entra');
  });
});

describe('group overage', () => {
  it.each([
    ['_claim_names/_claim_sources', 'megan@contoso.com', 'pw-megan', 5],
    ['hasgroups', 'lee@contoso.com', 'pw-lee', 6],
  ])('resolves %s through Microsoft Graph, following @odata.nextLink', async (_style, username, password, count) => {
    const before = entra.graph.requests.length;
    const { idToken, session } = await completed(gw, await federatedSignIn(gw, internet, { username, password, idpHint: 'entra' }));
    const person = oid(TENANT_A, username);
    const first = `/v1.0/users/${person}/transitiveMemberOf/microsoft.graph.group?$select=id,displayName&$top=2`;
    const skip = (offset: number) => Buffer.from(JSON.stringify({ o: offset, u: person })).toString('base64url');
    expect(entra.graph.requests.slice(before).map(({ method, url, status, tid, appId }) => ({ method, url, status, tid, appId }))).toEqual(
      [first, `${first}&$skiptoken=${skip(2)}`, `${first}&$skiptoken=${skip(4)}`]
        .map((url) => ({ method: 'GET', url, status: 200, tid: TENANT_A, appId: APP.id })),
    );
    expect(session.identity.groupsComplete).toBe(true);
    expect(session.identity.groups).toEqual(G.slice(0, count).map((g, i) => ({ idp: 'entra', id: g.id, name: i === 0 ? 'Finance' : g.displayName })));
    expect(session.identity.email).toBe(username);
    expect(session.roles).toEqual(['approver', 'finance-reader', 'tenant-member']);
    expect(idToken).toMatchObject({
      roles: ['approver', 'finance-reader', 'tenant-member'],
      groups: G.slice(0, count).map((g, i) => (i === 0 ? 'Finance' : g.displayName)),
    });
    expect(warnings(gw, OVERAGE_WARNING)).toEqual([]);
  });

  it('fails closed when Graph fails mid-paging: groups incomplete, no group roles, the tenant role stays', async () => {
    entra.graph.failUser('megan@contoso.com', { status: 500, fromPage: 1 });
    const before = entra.graph.requests.length;
    const { idToken, session } = await completed(gw, await federatedSignIn(gw, internet, { username: 'megan@contoso.com', password: 'pw-megan', idpHint: 'entra' }));
    expect(entra.graph.requests.slice(before).map((r) => r.status)).toEqual([200, 500]);
    expect(session.identity).toMatchObject({ groupsComplete: false, groups: [], email: 'megan@contoso.com' });
    expect(session.roles).toEqual(['tenant-member']);
    expect(idToken).toMatchObject({ roles: ['tenant-member'], groups: [] });
    expect(warnings(gw, OVERAGE_WARNING)).toEqual([expect.objectContaining({
      idp: 'entra', errorCode: 'ERR_FEDERATION_IDP_ERROR', reason: 'Microsoft Graph refused the group look-up: generalException',
    })]);
  });

  it('fails closed when the app lost its Graph permission (403)', async () => {
    entra.graph.setAppPermissions(APP.id, []);
    // A gateway that has not cached a Graph token from before the permission was removed.
    const fresh = await startEntraGateway();
    const before = entra.graph.requests.length;
    const { session } = await completed(fresh, await federatedSignIn(fresh, internet, { username: 'lee@contoso.com', password: 'pw-lee', idpHint: 'entra' }));
    expect(entra.graph.requests.slice(before).map((r) => r.status)).toEqual([403]);
    expect(session.identity).toMatchObject({ groupsComplete: false, groups: [], attributes: { tid: TENANT_A } });
    expect(session.roles).toEqual(['tenant-member']);
    expect(warnings(fresh, OVERAGE_WARNING)).toEqual([expect.objectContaining({
      idp: 'entra', errorCode: 'ERR_FEDERATION_IDP_ERROR', reason: 'Microsoft Graph refused the group look-up: Authorization_RequestDenied',
    })]);
  });
});

describe('a multi-tenant app (/organizations) with a tenant allow-list', () => {
  it('admits a person of a listed tenant, bound to their home tenant', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: 'adele@contoso.com', password: 'pw-adele', idpHint: 'entra-orgs' });
    const authorize = signIn.walk.hops.map((h) => h.location ?? '').filter((l) => l.includes('/oauth2/v2.0/authorize'));
    expect(authorize[0]).toMatch(/^https:\/\/login\.microsoftonline\.com\/organizations\/oauth2\/v2\.0\/authorize\?/);
    expect(authorize[1]).toMatch(new RegExp(`^https://login\\.microsoftonline\\.com/${TENANT_A}/oauth2/v2\\.0/authorize\\?`));
    const { idToken, session } = await completed(gw, signIn);
    const adele = oid(TENANT_A, 'adele@contoso.com');
    expect(session.accountId).toBe(`entra-orgs|${TENANT_A}:${adele}`);
    expect(session.identity.attributes).toEqual({ tid: TENANT_A, oid: adele, upn: 'adele@contoso.com', app_roles: ['Gateway.Admin'] });
    // Group mappings are per IdP; the tenant condition is not.
    expect(session.roles).toEqual(['tenant-member']);
    expect(idToken).toMatchObject({ sub: `entra-orgs|${TENANT_A}:${adele}`, idp: 'entra-orgs', roles: ['tenant-member'] });
  });

  it('refuses a person of a tenant not on the list (403) and makes no session', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: 'diego@fabrikam.com', password: 'pw-diego', idpHint: 'entra-orgs' });
    expect(signIn.walk.reached).toBe(false);
    const { last } = signIn.walk;
    expect(last.url).toMatch(new RegExp(`^${gw.url}/federation/oidc/entra-orgs/callback\\?`));
    expect(last.status).toBe(403);
    expect(alertText(last.body)).toBe(`your organization's Microsoft Entra tenant (${TENANT_B}) is not allowed to sign in here`);
    const diego = oid(TENANT_B, 'diego@fabrikam.com');
    expect(await gw.gateway.sessions.findBySubject(`entra-orgs|${TENANT_B}:${diego}`)).toEqual([]);
    const failure = gw.logs.map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => entry.event === 'federation.login_failed');
    expect(failure).toMatchObject({ idp: 'entra-orgs', errorCode: 'ERR_FEDERATION_TENANT_NOT_ALLOWED', reason: `tid ${TENANT_B} not in ${TENANT_A}` });
  });
});
