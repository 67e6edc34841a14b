// The Google peer: sign-in through openid-client (Workspace `hd` vs consumer accounts), service
// account JWT bearer tokens with domain-wide delegation, the Directory API and its paging.
import { createHash, generateKeyPairSync } from 'node:crypto';

import { createRemoteJWKSet, customFetch, jwtVerify } from 'jose';
import * as client from 'openid-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createServiceAccountKey, signServiceAccountAssertion, startGooglePeer } from '../support/peers/google.ts';
import type { GooglePeer, GoogleServiceAccountKeyFile } from '../support/peers/google.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { discover, signIn, startReceiver } from '../support/peers/relying-party.ts';
import type { Receiver } from '../support/peers/relying-party.ts';

const CLIENT = { id: '1234567890-gateway.apps.googleusercontent.com', secret: 'GOCSPX-gateway-secret' };
const READONLY = 'https://www.googleapis.com/auth/admin.directory.group.readonly';

const internet = createLoopbackInternet();
let google: GooglePeer;
let receiver: Receiver;
let redirectUri: string;
let keyFile: GoogleServiceAccountKeyFile;
let noDelegation: GoogleServiceAccountKeyFile;

const jsonOf = async (response: Response) => ({ status: response.status, body: (await response.json()) as Record<string, unknown> });

async function tokenFor(assertion: string) {
  return jsonOf(await internet.fetch('https://oauth2.googleapis.com/token', {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
  }));
}

const listGroups = (query: string, token?: string) =>
  internet.fetch(`https://admin.googleapis.com/admin/directory/v1/groups?${query}`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).then(jsonOf);

beforeAll(async () => {
  receiver = await startReceiver();
  redirectUri = `${receiver.url}/callback`;
  const reader = await createServiceAccountKey();
  const plain = await createServiceAccountKey({ clientEmail: 'plain@agentgate-test.iam.gserviceaccount.com', delegation: false });
  keyFile = reader.keyFile;
  noDelegation = plain.keyFile;
  google = await startGooglePeer({
    internet,
    clients: [{
      client_id: CLIENT.id,
      client_secret: CLIENT.secret,
      redirect_uris: [redirectUri],
      backchannel_logout_uri: `${receiver.url}/backchannel`,
    }],
    users: [
      { username: 'ana@acme.dev', password: 'pw-ana', email: 'ana@acme.dev', name: 'Ana Lima', givenName: 'Ana', familyName: 'Lima', hd: 'acme.dev' },
      { username: 'root@acme.dev', password: 'pw-root', email: 'root@acme.dev', name: 'Workspace Admin', hd: 'acme.dev', admin: true },
      { username: 'bob@gmail.com', password: 'pw-bob', email: 'bob@gmail.com', name: 'Bob Consumer' },
    ],
    // The public key as the JWK a test might hold, and as a KeyObject.
    serviceAccounts: [
      { client_email: keyFile.client_email, publicKey: reader.publicKey.export({ format: 'jwk' }) as never },
      plain.serviceAccount,
    ],
    directoryGroups: Array.from({ length: 5 }, (_, i) => ({
      email: `team-${i}@acme.dev`, name: `Team ${i}`, members: i === 4 ? ['root@acme.dev'] : ['ana@acme.dev', 'root@acme.dev'],
    })),
  });
});

afterEach(() => {
  google.directory.pageSize = undefined;
  google.directory.clearFailures();
});

afterAll(async () => {
  await google?.close();
  await receiver?.close();
});

describe('Google peer: sign-in', () => {
  it('serves discovery like Google: token endpoint on oauth2.googleapis.com, keys on www.googleapis.com', async () => {
    const config = await discover(internet, 'https://accounts.google.com', CLIENT.id, CLIENT.secret);
    const metadata = config.serverMetadata();
    expect(metadata.issuer).toBe('https://accounts.google.com');
    expect(metadata.authorization_endpoint).toBe('https://accounts.google.com/o/oauth2/v2/auth');
    expect(metadata.token_endpoint).toBe('https://oauth2.googleapis.com/token');
    expect(metadata.jwks_uri).toBe('https://www.googleapis.com/oauth2/v3/certs');
    expect(metadata.userinfo_endpoint).toBe('https://openidconnect.googleapis.com/v1/userinfo');
  });

  it('issues Workspace ID tokens with hd, azp and at_hash; the hd parameter is only a hint', async () => {
    const config = await discover(internet, 'https://accounts.google.com', CLIENT.id, CLIENT.secret);
    const { claims, tokens } = await signIn(internet, config, {
      redirectUri, username: 'ana@acme.dev', password: 'pw-ana', extra: { hd: 'acme.dev', prompt: 'select_account', access_type: 'online' },
    });
    expect(claims).toMatchObject({
      iss: 'https://accounts.google.com',
      aud: CLIENT.id,
      azp: CLIENT.id,
      email: 'ana@acme.dev',
      email_verified: true,
      name: 'Ana Lima',
      given_name: 'Ana',
      family_name: 'Lima',
      hd: 'acme.dev',
    });
    expect(claims.sub).toMatch(/^\d{21}$/);
    expect(claims.sub).toBe(google.subjectFor('ana@acme.dev'));
    const expectedHash = createHash('sha256').update(tokens.access_token).digest().subarray(0, 16).toString('base64url');
    expect(claims.at_hash).toBe(expectedHash);

    const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
    expect(userinfo).toMatchObject({ sub: claims.sub, email: 'ana@acme.dev', hd: 'acme.dev' });

    // A consumer account signs in even when hd=acme.dev is asked for: Google does not enforce it.
    const consumer = await signIn(internet, config, { redirectUri, username: 'bob@gmail.com', password: 'pw-bob', extra: { hd: 'acme.dev' } });
    expect(consumer.claims.email).toBe('bob@gmail.com');
    expect(consumer.claims.hd).toBeUndefined();
  });

  it('signs logout tokens verifiable with the published JWKS and posts them to the client', async () => {
    const jwks = createRemoteJWKSet(new URL('https://www.googleapis.com/oauth2/v3/certs'), { [customFetch]: internet.fetch });
    const token = await google.signLogoutToken({ sub: google.subjectFor('ana@acme.dev') });
    const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: 'https://accounts.google.com', audience: CLIENT.id, typ: 'logout+jwt' });
    expect(protectedHeader.alg).toBe('RS256');
    expect(payload.events).toEqual({ 'http://schemas.openid.net/event/backchannel-logout': {} });
    const before = receiver.requests.length;
    const { status } = await google.backchannelLogout({ sub: google.subjectFor('ana@acme.dev') });
    expect(status).toBe(200);
    expect(receiver.requests.slice(before).map((request) => request.path)).toEqual(['/backchannel']);
  });
});

describe('Google peer: service accounts and the Directory API', () => {
  it('issues a key file like Google’s', () => {
    expect(keyFile).toMatchObject({ type: 'service_account', token_uri: 'https://oauth2.googleapis.com/token' });
    expect(keyFile.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(keyFile.private_key_id).toMatch(/^[0-9a-f]{40}$/);
  });

  it('trades a delegated assertion for a token and pages the user’s groups', async () => {
    google.directory.pageSize = 2;
    const { status, body } = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'root@acme.dev' }));
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 3599 });
    const token = String(body.access_token);

    const names: string[] = [];
    let pageToken: string | undefined;
    let pages = 0;
    do {
      const page = await listGroups(`userKey=${encodeURIComponent('ana@acme.dev')}&maxResults=200${pageToken ? `&pageToken=${pageToken}` : ''}`, token);
      expect(page.status).toBe(200);
      expect(page.body.kind).toBe('admin#directory#groups');
      for (const group of page.body.groups as Array<{ kind: string; email: string; name: string; id: string }>) {
        expect(group.kind).toBe('admin#directory#group');
        names.push(group.name);
      }
      pageToken = page.body.nextPageToken as string | undefined;
      pages += 1;
    } while (pageToken);
    expect(names).toEqual(['Team 0', 'Team 1', 'Team 2', 'Team 3']);
    expect(pages).toBe(2);
    expect(google.directory.requests.at(-1)).toMatchObject({ status: 200, subject: 'root@acme.dev', clientEmail: keyFile.client_email });

    const none = await listGroups('userKey=bob@gmail.com', token);
    expect(none.status).toBe(200);
    expect(none.body.groups).toBeUndefined();
  });

  it('refuses a bad signature, a stale or too-long assertion, the wrong audience (invalid_grant)', async () => {
    const { privateKey: stranger } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forged = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'root@acme.dev' }, { key: stranger }));
    expect(forged).toEqual({ status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } });

    const tooLong = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'root@acme.dev' }, { lifetime: 7200 }));
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.error).toBe('invalid_grant');

    const now = Math.floor(Date.now() / 1000);
    const expired = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'root@acme.dev', iat: now - 7200, exp: now - 3600 }));
    expect(expired.body.error).toBe('invalid_grant');

    const audience = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, aud: 'https://accounts.google.com/o/oauth2/token' }));
    expect(audience.body.error).toBe('invalid_grant');

    const unknown = await tokenFor(await signServiceAccountAssertion({ ...keyFile, client_email: 'who@x.iam.gserviceaccount.com' }, { scope: READONLY }));
    expect(unknown.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid grant: account not found' });
  });

  it('refuses impersonation without domain-wide delegation or outside its scopes (unauthorized_client)', async () => {
    const undelegated = await tokenFor(await signServiceAccountAssertion(noDelegation, { scope: READONLY, sub: 'root@acme.dev' }));
    expect(undelegated.status).toBe(401);
    expect(undelegated.body.error).toBe('unauthorized_client');
    const widerScope = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: `${READONLY} https://www.googleapis.com/auth/admin.directory.user`, sub: 'root@acme.dev' }));
    expect(widerScope.body.error).toBe('unauthorized_client');
    const nobody = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'ghost@acme.dev' }));
    expect(nobody.body).toEqual({ error: 'invalid_grant', error_description: 'Invalid email or User ID' });
  });

  it('answers the Directory with Google error JSON: 401 bad token, 403 without sub or admin, 403 wrong scope', async () => {
    const bad = await listGroups('userKey=ana@acme.dev', 'ya29.not-a-token');
    expect(bad.status).toBe(401);
    expect(bad.body.error).toMatchObject({ code: 401, status: 'UNAUTHENTICATED', errors: [{ reason: 'authError', domain: 'global' }] });

    const asItself = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY }));
    expect(asItself.status).toBe(200);
    const refused = await listGroups('userKey=ana@acme.dev', String(asItself.body.access_token));
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 403, message: 'Not Authorized to access this resource/api', errors: [{ reason: 'forbidden' }] });

    const notAdmin = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'ana@acme.dev' }));
    expect((await listGroups('userKey=ana@acme.dev', String(notAdmin.body.access_token))).status).toBe(403);

    const otherScope = await tokenFor(await signServiceAccountAssertion(noDelegation, { scope: 'https://www.googleapis.com/auth/cloud-platform' }));
    const insufficient = await listGroups('userKey=ana@acme.dev', String(otherScope.body.access_token));
    expect(insufficient.status).toBe(403);
    expect(insufficient.body.error).toMatchObject({ message: 'Request had insufficient authentication scopes.', errors: [{ reason: 'insufficientPermissions' }] });
  });

  it('fails on demand and when the Directory is down', async () => {
    const { body } = await tokenFor(await signServiceAccountAssertion(keyFile, { scope: READONLY, sub: 'root@acme.dev' }));
    google.directory.failUser('ana@acme.dev', { status: 503 });
    const failed = await listGroups('userKey=ana@acme.dev', String(body.access_token));
    expect(failed.status).toBe(503);
    expect(failed.body.error).toMatchObject({ code: 503, errors: [{ reason: 'backendError' }] });
    const unknown = await listGroups('userKey=nobody@acme.dev', String(body.access_token));
    expect(unknown.status).toBe(404);

    await google.directory.stop();
    const error = await internet.fetch('https://admin.googleapis.com/admin/directory/v1/groups').catch((caught: unknown) => caught);
    expect(((error as TypeError).cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await google.directory.start();
    expect((await listGroups('userKey=ana@acme.dev', String(body.access_token))).status).toBe(503);
  });
});
