// Federated sign-in over SAML 2.0 against a real IdP (SimpleSAMLphp on loopback), one IdP per
// vendor shape: Okta-style attributes (signed Response and assertion, persistent NameID),
// Azure-style claim URIs (only the assertion signed; key tenantid:objectidentifier; app roles;
// group overage through Graph), Google-style (email domain allow-list). Each ends in an enterprise
// session with groups and roles, like the OIDC connectors; and the SP metadata is served.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { loadConfigFile, validateConfig } from '../../src/config/index.ts';
import type { SamlIdentityProviderConfig } from '../../src/config/index.ts';
import { createSamlConnector } from '../../src/federation/saml/index.ts';
import { createLogger } from '../../src/ops/index.ts';
import { APP_REDIRECT, alertText, completed } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, pkcePair } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { all, finishSamlSignIn, reencryptAssertion, resign, startSamlSignIn } from '../support/peers/saml-flow.ts';
import { ATTRNAME_URI, NAMEID, generateCertificate, startSamlIdp, walkToSamlPost } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';

const internet = createLoopbackInternet();
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AZ = {
  tenantId: 'http://schemas.microsoft.com/identity/claims/tenantid',
  objectId: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  displayName: 'http://schemas.microsoft.com/identity/claims/displayname',
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  upn: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  groups: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
  groupsLink: 'http://schemas.microsoft.com/claims/groups.link',
  role: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
};
const FINANCE_OID = 'a1b2c3d4-0000-4000-8000-00000000f1a0';
const APP_LOGIN = 'http://127.0.0.1/login-start';

let gw: TestGateway;
let idp: SamlIdpPeer;
let scratch: string;
let encryption: { key: string; cert: string };

const sp = (id: string) => ({
  entityId: `${gw.url}/federation/saml/${id}/metadata`,
  acs: `${gw.url}/federation/saml/${id}/acs`,
  slo: `${gw.url}/federation/saml/${id}/slo`,
});

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'agentgate-saml-'));
  encryption = await generateCertificate(scratch, 'sp-enc', 'agentgate-sp-encryption');
  idp = await startSamlIdp({
    users: [
      // Okta-style attribute statements.
      { username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], firstName: ['Alice'], lastName: ['Example'], groups: ['Everyone', 'Finance'] } },
      // One group only: a single-valued attribute must still become a list.
      { username: 'bob', password: 'bob-pass', attributes: { uid: ['00u2bob'], email: ['bob@acme.com'], groups: ['Finance'] } },
      // Azure-style claim URIs.
      { username: 'carol', password: 'carol-pass', attributes: {
        uid: ['carol'], [AZ.tenantId]: [TENANT], [AZ.objectId]: ['0c0c0c0c-1111-4222-8333-444444444444'], [AZ.displayName]: ['Carol Contoso'],
        [AZ.email]: ['carol@contoso.com'], [AZ.upn]: ['carol@contoso.com'], [AZ.groups]: [FINANCE_OID, 'b2b2b2b2-0000-4000-8000-000000000002'], [AZ.role]: ['Approver'],
      } },
      { username: 'mallory', password: 'mallory-pass', attributes: {
        uid: ['mallory'], [AZ.tenantId]: ['99999999-9999-4999-8999-999999999999'], [AZ.objectId]: ['0d0d0d0d-1111-4222-8333-444444444444'], [AZ.email]: ['m@evil.example'],
      } },
      // Google-style.
      { username: 'dave', password: 'dave-pass', attributes: { uid: ['g-1001'], email: ['dave@example.org'], name: ['Dave Example'], groups: ['finance@example.org'] } },
      { username: 'erin', password: 'erin-pass', attributes: { uid: ['g-1002'], email: ['erin@gmail.com'], name: ['Erin'] } },
    ],
  });
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      identityProviders: [
        { id: 'okta-saml', type: 'saml', preset: 'okta', displayName: 'Acme (SAML)', metadata: { url: idp.metadataUrl }, domains: ['acme.com'] },
        { id: 'entra-saml', type: 'saml', preset: 'azure-ad', metadata: { xml: await idp.metadata() }, tenant: TENANT, domains: ['contoso.com'] },
        { id: 'google-saml', type: 'saml', preset: 'google-workspace', metadata: { url: idp.metadataUrl }, hostedDomains: ['example.org'], domains: ['example.org'] },
        { id: 'okta-enc', type: 'saml', preset: 'okta', metadata: { url: idp.metadataUrl }, sp: { decryptionKey: encryption.key, decryptionCert: encryption.cert } },
        {
          id: 'okta-idp-init', type: 'saml', preset: 'okta', metadata: { url: idp.metadataUrl },
          idpInitiated: { enabled: true, app: 'agent-console', initiateLoginUri: APP_LOGIN },
        },
      ],
      roles: { 'finance-reader': { scopes: ['erp:read'] }, approver: { scopes: ['erp:approve'] } },
      roleMappings: [
        { idp: 'okta-saml', group: 'Finance', roles: ['finance-reader'] },
        { idp: 'entra-saml', group: FINANCE_OID, roles: ['finance-reader'] },
        { idp: 'entra-saml', group: 'app-role:Approver', roles: ['approver'] },
        { idp: 'google-saml', group: 'finance@example.org', roles: ['finance-reader'] },
      ],
    },
  });
  await idp.registerSp({ ...sp('okta-saml'), nameIdFormat: NAMEID.persistent, nameIdAttribute: 'uid' });
  await idp.registerSp({ ...sp('entra-saml'), nameIdFormat: NAMEID.email, nameIdAttribute: AZ.email, attributeNameFormat: ATTRNAME_URI, signResponse: false });
  await idp.registerSp({ ...sp('google-saml'), nameIdFormat: NAMEID.persistent, nameIdAttribute: 'uid', signResponse: false });
  await idp.registerSp({ ...sp('okta-enc'), encryptionCertificate: encryption.cert });
  await idp.registerSp(sp('okta-idp-init'));
});
afterAll(async () => {
  await gw?.close();
  await idp?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('SAML sign-in, Okta style', () => {
  it('creates an enterprise session keyed by the persistent NameID, with groups mapped to roles', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-saml' });
    const request = new URL(start.hops.find((h) => h.location?.startsWith(idp.ssoUrl))!.location!);
    expect(request.searchParams.get('SAMLRequest')).toBeTruthy();
    expect(start.post.action).toBe(`${gw.url}/federation/saml/okta-saml/acs`);
    const { acs, signIn } = await finishSamlSignIn(start);
    expect(acs.status).toBe(303);
    expect(signIn!.redirect.searchParams.get('state')).toBe('app-state');
    const { idToken, session } = await completed(gw, signIn!);
    expect(idToken).toMatchObject({ sub: 'okta-saml|00u1alice', email: 'alice@acme.com', name: 'Alice Example', idp: 'okta-saml', roles: ['finance-reader'], groups: ['Everyone', 'Finance'] });
    expect(session).toMatchObject({
      accountId: 'okta-saml|00u1alice',
      roles: ['finance-reader'],
      identity: { idp: 'okta-saml', subject: '00u1alice', email: 'alice@acme.com', groupsComplete: true, groups: [{ idp: 'okta-saml', id: 'Everyone', name: 'Everyone' }, { idp: 'okta-saml', id: 'Finance', name: 'Finance' }] },
      upstream: { idp: 'okta-saml', sub: '00u1alice' },
    });
    expect(session.upstream.sid).toMatch(/^_/);
    expect(gw.logs.join('')).toContain('"event":"federation.login_succeeded"');
  });

  it('normalizes a single-valued groups attribute to a list', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'bob', password: 'bob-pass', loginHint: 'bob@acme.com' });
    const { signIn } = await finishSamlSignIn(start);
    const { session } = await completed(gw, signIn!);
    expect(session.identity.groups).toEqual([{ idp: 'okta-saml', id: 'Finance', name: 'Finance' }]);
    expect(session.roles).toEqual(['finance-reader']);
  });
});

describe('SAML sign-in, Azure style', () => {
  it('keys the person by tenantid:objectidentifier and maps group ids and app roles', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'carol', password: 'carol-pass', loginHint: 'carol@contoso.com' });
    const { signIn } = await finishSamlSignIn(start);
    const { session } = await completed(gw, signIn!);
    expect(session).toMatchObject({
      accountId: `entra-saml|${TENANT}:0c0c0c0c-1111-4222-8333-444444444444`,
      roles: ['approver', 'finance-reader'],
      identity: {
        email: 'carol@contoso.com', name: 'Carol Contoso', groupsComplete: true,
        attributes: { tid: TENANT, oid: '0c0c0c0c-1111-4222-8333-444444444444', upn: 'carol@contoso.com', app_roles: ['Approver'] },
      },
    });
    expect(session.identity.groups.map((g) => g.id)).toEqual([FINANCE_OID, 'b2b2b2b2-0000-4000-8000-000000000002', 'app-role:Approver']);
  });

  it('refuses a person from another tenant', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'mallory', password: 'mallory-pass', idpHint: 'entra-saml' });
    const { acs } = await finishSamlSignIn(start);
    expect(acs.status).toBe(403);
    expect(acs.body).toContain('is not allowed to sign in here');
  });
});

describe('SAML sign-in, Google style', () => {
  it('admits a Workspace domain and takes groups from the mapped attribute', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'dave', password: 'dave-pass', idpHint: 'google-saml' });
    const { signIn } = await finishSamlSignIn(start);
    const { session } = await completed(gw, signIn!);
    expect(session).toMatchObject({ accountId: 'google-saml|g-1001', roles: ['finance-reader'], identity: { email: 'dave@example.org', attributes: { hd: 'example.org' } } });
  });

  it('refuses an account outside the Workspace domains', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'erin', password: 'erin-pass', idpHint: 'google-saml' });
    const { acs } = await finishSamlSignIn(start);
    expect(acs.status).toBe(403);
    expect(acs.body).toContain('erin@gmail.com is not part of an allowed Google Workspace domain (example.org)');
  });
});

describe('encrypted assertions', () => {
  it('decrypts an EncryptedAssertion with the SP key and signs the person in', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-enc' });
    const xml = Buffer.from(start.post.fields.SAMLResponse!, 'base64').toString('utf8');
    expect(xml).toContain('EncryptedAssertion');
    expect(xml).not.toContain('alice@acme.com');
    const { signIn } = await finishSamlSignIn(start);
    const { session } = await completed(gw, signIn!);
    expect(session).toMatchObject({ accountId: 'okta-enc|00u1alice', identity: { email: 'alice@acme.com' } });
  });

  it('accepts an assertion re-encrypted and re-signed with the IdP key (the forging tool is sound)', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-enc' });
    const forged = await reencryptAssertion(start.post.fields.SAMLResponse!, encryption, { privateKey: idp.privateKey, certificate: idp.certificate });
    expect((await finishSamlSignIn(start, { ...start.post.fields, SAMLResponse: forged })).acs.status).toBe(303);
  });

  it('refuses a SHA-1 signature inside an encrypted assertion', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-enc' });
    const forged = await reencryptAssertion(start.post.fields.SAMLResponse!, encryption, { privateKey: idp.privateKey, certificate: idp.certificate }, { algorithm: 'sha1' });
    const { acs } = await finishSamlSignIn(start, { ...start.post.fields, SAMLResponse: forged });
    expect(acs.status).toBe(400);
    expect(alertText(acs.body)).toBe('the SAML assertion is signed with a weak algorithm (SHA-1); the IdP must sign with RSA-SHA256 or stronger');
  });

  it('refuses RSA PKCS#1 v1.5 key transport without decrypting', async () => {
    const start = await startSamlSignIn(gw, createPeerBrowser(internet), { username: 'alice', password: 'alice-pass', idpHint: 'okta-enc' });
    const forged = resign(start.post.fields.SAMLResponse!, { privateKey: idp.privateKey, certificate: idp.certificate }, (doc) => {
      for (const method of all(doc, 'http://www.w3.org/2001/04/xmlenc#', 'EncryptionMethod')) {
        if (method.getAttribute('Algorithm')!.includes('rsa-oaep')) method.setAttribute('Algorithm', 'http://www.w3.org/2001/04/xmlenc#rsa-1_5');
      }
    }, { assertion: false, response: true });
    const { acs } = await finishSamlSignIn(start, { ...start.post.fields, SAMLResponse: forged });
    expect(acs.status).toBe(400);
    expect(alertText(acs.body)).toBe('the SAML response is encrypted with a weak algorithm (RSA PKCS#1 v1.5 or 3DES); the IdP must use RSA-OAEP and AES');
  });

  it('publishes the encryption certificate in the SP metadata', async () => {
    const xml = await (await fetch(`${gw.url}/federation/saml/okta-enc/metadata`)).text();
    expect(xml).toContain('<md:KeyDescriptor use="encryption">');
    expect(xml).toContain(encryption.cert.split('\n')[1]!);
  });
});

describe('IdP-initiated sign-in (opted in, one app)', () => {
  it('makes the session, sends the person to the app, whose sign-in then completes without the IdP', async () => {
    const browser = createPeerBrowser(internet);
    const { post } = await walkToSamlPost(browser, `${idp.ssoUrl}?spentityid=${encodeURIComponent(sp('okta-idp-init').entityId)}`, { username: 'alice', password: 'alice-pass' });
    expect(post!.fields.SAMLResponse).toBeTruthy();
    const acs = await browser.postForm(post!.action, post!.fields);
    expect(acs.status).toBe(303);
    expect(acs.location).toBe(`${APP_LOGIN}?iss=${encodeURIComponent(gw.url)}`);
    expect(gw.logs.join('')).toContain('"event":"federation.idp_initiated_login"');

    // The app starts an ordinary sign-in (its own PKCE and state): it completes at once.
    const { verifier, challenge } = pkcePair();
    const walk = await browser.followUntil(`${gw.url}/auth?${new URLSearchParams({
      client_id: 'agent-console', response_type: 'code', redirect_uri: APP_REDIRECT, scope: 'openid email profile groups',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'app-state', nonce: 'app-nonce',
    })}`, (url) => url.startsWith(APP_REDIRECT), { throwOnStop: false });
    expect(walk.reached).toBe(true);
    expect(walk.hops.some((hop) => hop.url.startsWith(idp.origin))).toBe(false);
    const { session } = await completed(gw, { browser, walk, redirect: new URL(walk.location!), verifier });
    expect(session).toMatchObject({ accountId: 'okta-idp-init|00u1alice', identity: { email: 'alice@acme.com' } });

    // The same response cannot be used again.
    const replay = await browser.postForm(post!.action, post!.fields);
    expect(replay.status).toBe(400);
    expect(replay.body).toContain('this sign-in response was already used; start again from the application');
  });
});

describe('SP metadata', () => {
  it('publishes the entity id, ACS and SLO endpoints', async () => {
    const res = await fetch(`${gw.url}/federation/saml/okta-saml/metadata`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/samlmetadata+xml');
    const xml = await res.text();
    expect(xml).toContain(`entityID="${gw.url}/federation/saml/okta-saml/metadata"`);
    expect(xml).toContain(`Location="${gw.url}/federation/saml/okta-saml/acs"`);
    expect(xml).toContain(`Location="${gw.url}/federation/saml/okta-saml/slo"`);
    expect((await fetch(`${gw.url}/federation/saml/nope/metadata`)).status).toBe(404);
  });

  it('exports when each IdP signing certificate expires', async () => {
    const text = await (await fetch(`${gw.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith('agentgate_saml_idp_certificate_expiry_timestamp_seconds{idp="okta-saml"'));
    expect(line).toMatch(/fingerprint="([0-9A-F]{2}:){31}[0-9A-F]{2}"} \d+$/);
    const expiresAt = Number(line!.split(' ').pop());
    // The peer's certificate is made for 30 days.
    expect(expiresAt - Date.now() / 1000).toBeGreaterThan(29 * 86400);
    expect(expiresAt - Date.now() / 1000).toBeLessThan(31 * 86400);
  });
});

describe('IdP metadata from a file', () => {
  it('resolves metadata.file against the config file\'s directory (like ${file:}), not the working directory', async () => {
    const configDir = join(scratch, 'etc-agentgate');
    await mkdir(join(configDir, 'saml'), { recursive: true });
    await writeFile(join(configDir, 'saml', 'okta-metadata.xml'), await idp.metadata());
    const configFile = join(configDir, 'gateway.yaml');
    await writeFile(configFile, [
      'mode: development',
      'issuer: http://127.0.0.1:4000',
      'store: { driver: memory }',
      'keys: { generate: true }',
      'identityProviders:',
      '  - { id: okta-file, type: saml, preset: okta, metadata: { file: saml/okta-metadata.xml } }',
      '  - { id: okta-abs, type: saml, preset: okta, metadata: { file: "${file:abs-path.txt}" } }',
    ].join('\n'));
    await writeFile(join(configDir, 'abs-path.txt'), join(configDir, 'saml', 'okta-metadata.xml'));
    expect(process.cwd()).not.toBe(configDir);
    const config = await loadConfigFile(configFile);
    const [relative, absolute] = config.identityProviders;
    expect(relative!.type === 'saml' && relative!.metadata.file).toBe(join(configDir, 'saml', 'okta-metadata.xml'));
    expect(absolute!.type === 'saml' && absolute!.metadata.file).toBe(join(configDir, 'saml', 'okta-metadata.xml'));
    // And the connector reads it from there.
    const connector = createSamlConnector(relative as SamlIdentityProviderConfig, {
      issuer: config.issuer, fetch, now: () => Math.floor(Date.now() / 1000), logger: createLogger({ level: 'silent' }),
    });
    expect((await connector.idpMetadata()).entityId).toBe(idp.entityId);
  });

  it('keeps the last good copy when a refresh fails, and its probe says so (idp test, admin console)', async () => {
    const file = join(scratch, 'refresh-metadata.xml');
    await writeFile(file, await idp.metadata());
    const config = validateConfig({
      mode: 'development', issuer: 'http://127.0.0.1:4000', store: { driver: 'memory' }, keys: { generate: true },
      identityProviders: [{ id: 'okta-refresh', type: 'saml', preset: 'okta', metadata: { file, refresh: '1h' } }],
    });
    const loaded = Math.floor(Date.now() / 1000);
    let t = loaded;
    const connector = createSamlConnector(config.identityProviders[0] as SamlIdentityProviderConfig, {
      issuer: config.issuer, fetch, now: () => t, logger: createLogger({ level: 'silent' }),
    });
    expect((await connector.probe()).filter((c) => !c.ok)).toEqual([]);
    await rm(file);
    t += 3601;
    await connector.idpMetadata(); // the copy in use answers; the refresh runs behind it and fails
    await expect.poll(async () => (await connector.probe()).filter((c) => !c.ok)).toEqual([{
      name: 'metadata refresh', ok: false,
      message: `the IdP metadata file ${file} cannot be read; still using the copy loaded ${new Date(loaded * 1000).toISOString()}`,
    }]);
    expect((await connector.idpMetadata()).entityId).toBe(idp.entityId);
  });
});
