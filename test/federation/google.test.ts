// Federated sign-in through the gateway with a Google peer: the ID token's `hd` must be an allowed
// Workspace domain (consumer accounts and other Workspaces are refused), groups come from the
// Admin SDK Directory API (paged) through a service account with domain-wide delegation, and a
// Directory that refuses leaves the groups incomplete (no group-based roles).
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { alertText, completed, federatedSignIn, warnings } from '../support/federation.ts';
import type { FederatedSignIn } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createServiceAccountKey, startGooglePeer } from '../support/peers/google.ts';
import type { GooglePeer } from '../support/peers/google.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';

const CLIENT = { id: '1234567890-gateway.apps.googleusercontent.com', secret: 'GOCSPX-gateway-secret' };
const READER_EMAIL = 'directory-reader@agentgate-test.iam.gserviceaccount.com';
const UNDELEGATED_EMAIL = 'plain@agentgate-test.iam.gserviceaccount.com';

const internet = createLoopbackInternet();
let google: GooglePeer;
let gw: TestGateway;
let readerKey: string;
let undelegatedKey: string;
const gateways: TestGateway[] = [];

/** Starts a gateway whose Directory look-ups use this service account key; registers its callback at Google. */
async function startGoogleGateway(serviceAccountKey: string): Promise<TestGateway> {
  const started = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      identityProviders: [{
        id: 'google', type: 'oidc', preset: 'google-workspace', displayName: 'Example',
        clientId: CLIENT.id, clientSecret: CLIENT.secret,
        hostedDomains: ['example.com'], domains: ['example.com'],
        directory: { serviceAccountKey, adminEmail: 'admin@example.com', pageSize: 2 },
      }],
      roles: {
        'finance-reader': { scopes: ['erp:read'] },
        'workspace-member': { scopes: ['mail:read'] },
      },
      roleMappings: [
        // Ana's third group: it arrives on the Directory's second page.
        { idp: 'google', group: 'finance@example.com', roles: ['finance-reader'] },
        { idp: 'google', when: 'attributes.hd == "example.com"', roles: ['workspace-member'] },
      ],
    },
  });
  gateways.push(started);
  await google.setClient({
    client_id: CLIENT.id,
    client_secret: CLIENT.secret,
    redirect_uris: gateways.map((g) => `${g.url}/federation/oidc/google/callback`),
    post_logout_redirect_uris: gateways.map((g) => `${g.url}/federation/oidc/google/logged-out`),
  });
  return started;
}

beforeAll(async () => {
  const reader = await createServiceAccountKey({ clientEmail: READER_EMAIL });
  const undelegated = await createServiceAccountKey({ clientEmail: UNDELEGATED_EMAIL, delegation: false });
  readerKey = reader.json;
  undelegatedKey = undelegated.json;
  google = await startGooglePeer({
    internet,
    clients: [],
    users: [
      { username: 'ana@example.com', password: 'pw-ana', email: 'ana@example.com', name: 'Ana Lima', hd: 'example.com' },
      { username: 'admin@example.com', password: 'pw-admin', email: 'admin@example.com', name: 'Workspace Admin', hd: 'example.com', admin: true },
      { username: 'bob@gmail.com', password: 'pw-bob', email: 'bob@gmail.com', name: 'Bob Consumer' },
      { username: 'carol@other.example', password: 'pw-carol', email: 'carol@other.example', name: 'Carol Other', hd: 'other.example' },
    ],
    serviceAccounts: [reader.serviceAccount, undelegated.serviceAccount],
    directoryGroups: [
      { email: 'everyone@example.com', name: 'Everyone', members: ['ana@example.com', 'admin@example.com'] },
      { email: 'engineering@example.com', name: 'Engineering', members: ['ana@example.com'] },
      { email: 'finance@example.com', name: 'Finance', members: ['ana@example.com'] },
      { email: 'admins@example.com', name: 'Admins', members: ['admin@example.com'] },
    ],
  });
  gw = await startGoogleGateway(readerKey);
});

afterEach(() => {
  google.directory.clearFailures();
});

afterAll(async () => {
  for (const g of gateways) await g.close();
  await google?.close();
});


/** The authorization request the gateway sent the browser to Google with. */
const authorizeRequest = (signIn: FederatedSignIn) =>
  new URL(signIn.walk.hops.map((h) => h.location ?? '').find((l) => l.startsWith('https://accounts.google.com/o/oauth2/v2/auth?'))!);

const DIRECTORY_WARNING = 'Google Workspace groups could not be read; group-based roles will not apply';


describe('sign-in through Google Workspace', () => {
  it('reads the groups from the Directory (paged) as group emails and maps them to roles', async () => {
    const before = google.directory.requests.length;
    const signIn = await federatedSignIn(gw, internet, { username: 'ana@example.com', password: 'pw-ana' });
    // hd is a hint for Google's account chooser; without a login_hint none is sent.
    const authorize = authorizeRequest(signIn);
    expect(authorize.searchParams.get('hd')).toBe('example.com');
    expect(authorize.searchParams.has('login_hint')).toBe(false);
    const { idToken, session } = await completed(gw, signIn);

    const pageToken = Buffer.from(JSON.stringify({ o: 2, u: 'ana@example.com' })).toString('base64url');
    expect(google.directory.requests.slice(before)).toEqual([
      { method: 'GET', url: '/admin/directory/v1/groups?userKey=ana%40example.com&maxResults=2', status: 200, clientEmail: READER_EMAIL, subject: 'admin@example.com' },
      { method: 'GET', url: `/admin/directory/v1/groups?userKey=ana%40example.com&maxResults=2&pageToken=${pageToken}`, status: 200, clientEmail: READER_EMAIL, subject: 'admin@example.com' },
    ]);
    const sub = google.subjectFor('ana@example.com');
    expect(session.accountId).toBe(`google|${sub}`);
    expect(session.roles).toEqual(['finance-reader', 'workspace-member']);
    expect(session.identity).toEqual({
      idp: 'google',
      subject: sub,
      email: 'ana@example.com',
      emailVerified: true,
      name: 'Ana Lima',
      groups: [
        { idp: 'google', id: 'everyone@example.com', name: 'Everyone' },
        { idp: 'google', id: 'engineering@example.com', name: 'Engineering' },
        { idp: 'google', id: 'finance@example.com', name: 'Finance' },
      ],
      groupsComplete: true,
      amr: [],
      authTime: expect.any(Number) as number,
      attributes: { hd: 'example.com' },
    });
    expect(idToken).toMatchObject({
      iss: gw.url, aud: 'agent-console', nonce: 'app-nonce',
      sub: `google|${sub}`, idp: 'google', email: 'ana@example.com', email_verified: true, name: 'Ana Lima',
      roles: ['finance-reader', 'workspace-member'],
      groups: ['Everyone', 'Engineering', 'Finance'],
    });
  });

  it('forwards the login_hint along with hd', async () => {
    const signIn = await federatedSignIn(gw, internet, { username: 'ana@example.com', password: 'pw-ana', loginHint: 'ana@example.com' });
    const authorize = authorizeRequest(signIn);
    expect(authorize.searchParams.get('hd')).toBe('example.com');
    expect(authorize.searchParams.get('login_hint')).toBe('ana@example.com');
    expect(authorize.searchParams.get('client_id')).toBe(CLIENT.id);
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${gw.url}/federation/oidc/google/callback`);
    const { session } = await completed(gw, signIn);
    expect(session.identity.email).toBe('ana@example.com');
  });

  it.each([
    ['a consumer account (no hd)', 'bob@gmail.com', 'pw-bob'],
    ['an account of another Workspace', 'carol@other.example', 'pw-carol'],
  ])('refuses %s with 403 and makes no session', async (_who, username, password) => {
    const before = google.directory.requests.length;
    const signIn = await federatedSignIn(gw, internet, { username, password });
    expect(signIn.walk.reached).toBe(false);
    const { last } = signIn.walk;
    expect(last.url).toMatch(new RegExp(`^${gw.url}/federation/oidc/google/callback\\?`));
    expect(last.status).toBe(403);
    expect(alertText(last.body)).toBe(`${username} is not part of an allowed Google Workspace domain (example.com)`);
    expect(await gw.gateway.sessions.findBySubject(`google|${google.subjectFor(username)}`)).toEqual([]);
    expect(google.directory.requests.length).toBe(before);
    const failure = gw.logs.map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((entry) => entry.event === 'federation.login_failed').at(-1);
    expect(failure).toMatchObject({ idp: 'google', errorCode: 'ERR_FEDERATION_DOMAIN_NOT_ALLOWED' });
  });
});

describe('when the Directory refuses', () => {
  it('leaves the groups incomplete when the group listing fails: no group roles, the hd role stays', async () => {
    google.directory.failUser('ana@example.com', { status: 500, fromPage: 1 });
    const before = google.directory.requests.length;
    const { idToken, session } = await completed(gw, await federatedSignIn(gw, internet, { username: 'ana@example.com', password: 'pw-ana' }));
    expect(google.directory.requests.slice(before).map((r) => r.status)).toEqual([200, 500]);
    expect(session.identity).toMatchObject({ groupsComplete: false, groups: [], attributes: { hd: 'example.com' } });
    expect(session.roles).toEqual(['workspace-member']);
    expect(idToken).toMatchObject({ roles: ['workspace-member'], groups: [] });
    expect(warnings(gw, DIRECTORY_WARNING)).toEqual([expect.objectContaining({ idp: 'google', reason: 'the Directory API refused the group look-up: 500' })]);
  });

  it('leaves the groups incomplete when the service account has no domain-wide delegation', async () => {
    const undelegated = await startGoogleGateway(undelegatedKey);
    const before = google.directory.requests.length;
    const { session } = await completed(undelegated, await federatedSignIn(undelegated, internet, { username: 'ana@example.com', password: 'pw-ana' }));
    // The token request is refused, so the Directory is never asked.
    expect(google.directory.requests.length).toBe(before);
    expect(session.identity).toMatchObject({ groupsComplete: false, groups: [] });
    expect(session.roles).toEqual(['workspace-member']);
    expect(warnings(undelegated, DIRECTORY_WARNING)).toEqual([expect.objectContaining({ idp: 'google', reason: 'Google refused the service account: unauthorized_client' })]);
  });
});
