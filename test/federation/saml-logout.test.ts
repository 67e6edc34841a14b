// SAML Single Logout against SimpleSAMLphp, with the gateway signing its AuthnRequests and
// logout messages (the IdP requires it: validate.authnrequest / validate.logout):
//   SP-initiated — sign-out at the gateway ends the enterprise session (its tokens introspect
//                  inactive), passes the browser through the gateway's /logout step (binding it),
//                  sends a signed LogoutRequest carrying the NameID exactly as the IdP sent it
//                  (Format and SPNameQualifier too, Entra-style unspecified NameID included), and
//                  the IdP's LogoutResponse — matched to that request — brings the person back;
//   IdP-initiated — a signed LogoutRequest (HTTP-Redirect or HTTP-POST) ends the session found by
//                  NameID + SessionIndex, answered with a LogoutResponse;
//   refused       — unsigned, wrongly signed, SHA-1, replayed, mismatched or deflate-bomb logout
//                  requests, and LogoutResponses that answer no request of this browser (unknown
//                  or foreign InResponseTo, another browser, another RelayState, replayed, wrong
//                  Issuer or Destination, non-Success): each with its error code and a
//                  `session.upstream_logout_refused` audit entry, and nothing ended or followed.
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync, inflateRawSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { completed } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, parseForms } from '../support/peers/browser.ts';
import type { Hop, PeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { NS, decodeResponse, finishSamlSignIn, one, parse, startSamlSignIn } from '../support/peers/saml-flow.ts';
import { ATTRNAME_URI, NAMEID, generateCertificate, startSamlIdp } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';

const internet = createLoopbackInternet();
const SIGNED_OUT = 'http://127.0.0.1/signed-out';
const BYE = 'http://127.0.0.1/bye';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const AZ = {
  tenantId: 'http://schemas.microsoft.com/identity/claims/tenantid',
  objectId: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
};
let gw: TestGateway;
let idp: SamlIdpPeer;
let scratch: string;
let spKey: { key: string; cert: string };
let nextKey: { key: string; cert: string };

const sloOf = (id: string) => `${gw.url}/federation/saml/${id}/slo`;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'agentgate-saml-slo-'));
  spKey = await generateCertificate(scratch, 'sp', 'agentgate-sp');
  nextKey = await generateCertificate(scratch, 'sp-next', 'agentgate-sp-next');
  idp = await startSamlIdp({
    users: [
      { username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], groups: ['Everyone'] } },
      // Entra-style: claim URIs, keyed by tenantid:objectidentifier; the NameID is the UPN, unspecified format.
      { username: 'carol', password: 'carol-pass', attributes: {
        uid: ['carol@contoso.com'], [AZ.tenantId]: [TENANT], [AZ.objectId]: ['0c0c0c0c-1111-4222-8333-444444444444'], [AZ.email]: ['carol@contoso.com'],
      } },
    ],
  });
  const saml = (id: string) => ({
    id, type: 'saml', metadata: { url: idp.metadataUrl },
    ...(id === 'entra-saml' ? { preset: 'azure-ad', tenant: TENANT } : { preset: 'okta' }),
    sp: { signingKey: spKey.key, signingCert: spKey.cert, ...(id === 'okta-post' ? { nextSigningCert: nextKey.cert } : {}) },
  });
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      apps: [{ clientId: 'agent-console', redirectUris: ['http://127.0.0.1/cb'], postLogoutRedirectUris: [SIGNED_OUT], audiences: ['https://erp.example.test'] }],
      identityProviders: [saml('okta-saml'), saml('okta-post'), saml('entra-saml')],
    },
  });
  for (const id of ['okta-saml', 'okta-post', 'entra-saml']) {
    await idp.registerSp({
      entityId: `${gw.url}/federation/saml/${id}/metadata`, acs: `${gw.url}/federation/saml/${id}/acs`, slo: sloOf(id),
      sloBindings: id === 'okta-post' ? ['post'] : ['redirect'],
      certificate: spKey.cert, validateAuthnRequest: true,
      ...(id === 'entra-saml' ? { nameIdFormat: NAMEID.unspecified, attributeNameFormat: ATTRNAME_URI, signResponse: false } : {}),
    });
  }
});
afterAll(async () => {
  await gw?.close();
  await idp?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function signedIn(idpId = 'okta-saml', browser: PeerBrowser = createPeerBrowser(internet)) {
  const person = idpId === 'entra-saml' ? { username: 'carol', password: 'carol-pass' } : { username: 'alice', password: 'alice-pass' };
  const start = await startSamlSignIn(gw, browser, { ...person, idpHint: idpId });
  const signedRequest = new URL(start.hops.find((h) => h.location?.startsWith(idp.ssoUrl))!.location!);
  const { signIn } = await finishSamlSignIn(start);
  const { session } = await completed(gw, signIn!);
  return { browser, session, signedRequest, samlResponse: start.post.fields.SAMLResponse! };
}

/** RP-initiated logout at the gateway, confirmed as the person would: the 303 it ends with. */
async function confirmSignOut(browser: PeerBrowser): Promise<Hop> {
  const page = await browser.get(`${gw.url}/session/end?${new URLSearchParams({ client_id: 'agent-console', post_logout_redirect_uri: SIGNED_OUT, state: 'bye' })}`);
  const [form] = parseForms(page.body, page.url);
  return browser.postForm(form!.action, { ...form!.fields, logout: 'yes' });
}

/** Signed in, signed out at the gateway, through its /logout step: the LogoutRequest on its way to the IdP. */
async function pendingLogout(idpId = 'okta-saml', browser: PeerBrowser = createPeerBrowser(internet)) {
  const signed = await signedIn(idpId, browser);
  const done = await confirmSignOut(browser);
  expect(done.status).toBe(303);
  const step = new URL(done.location!);
  expect(`${step.origin}${step.pathname}`).toBe(`${gw.url}/federation/saml/${idpId}/logout`);
  const toIdp = await browser.get(done.location!);
  expect(toIdp.status).toBe(303);
  const url = new URL(toIdp.location!);
  const requestXml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLRequest')!, 'base64')).toString('utf8');
  const requestId = /\bID="([^"]+)"/.exec(requestXml)![1]!;
  return { ...signed, toIdp: url, requestXml, requestId, relayState: url.searchParams.get('RelayState')! };
}

const mark = async () => (await gw.store.readStream('audit', 1))[0]?.id ?? '0-0';
const auditSince = async (since: string) => (await gw.store.readStreamAfter('audit', since, 200)).map((e) => e.fields);
const pageText = (html: string) => html.replace(/&#39;/g, "'").replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Refused with this status, code and message, and exactly one `session.upstream_logout_refused` audit entry. */
async function expectLogoutRefused(res: { status: number; body: string }, since: string, expected: { status?: number; errorCode: string; message: string; idp?: string }) {
  expect(res.status).toBe(expected.status ?? 400);
  expect(pageText(res.body)).toContain(expected.message);
  const entries = (await auditSince(since)).filter((f) => f.event === 'session.upstream_logout_refused');
  expect(entries).toHaveLength(1);
  expect(entries[0]).toMatchObject({ idp: expected.idp ?? 'okta-saml', protocol: 'saml', errorCode: expected.errorCode });
}

const fetched = async (url: string, init: RequestInit = {}) => {
  const res = await fetch(url, { redirect: 'manual', ...init });
  return { status: res.status, body: await res.text(), location: res.headers.get('location') };
};

const autoPost = (_html: string, _url: string, form: { fields: Record<string, string> }) =>
  ('SAMLRequest' in form.fields || 'SAMLResponse' in form.fields ? {} : undefined);

describe('SP metadata with request signing', () => {
  it('publishes the signing certificate, and the next one ahead of a rollover', async () => {
    const body = (pem: string) => pem.split('\n').slice(1, -2).join('');
    const current = await (await fetch(`${gw.url}/federation/saml/okta-saml/metadata`)).text();
    expect(current).toContain('AuthnRequestsSigned="true"');
    expect(current.match(/<md:KeyDescriptor use="signing">/g)).toHaveLength(1);
    expect(current).toContain(body(spKey.cert));
    const rolling = await (await fetch(`${gw.url}/federation/saml/okta-post/metadata`)).text();
    expect(rolling.match(/<md:KeyDescriptor use="signing">/g)).toHaveLength(2);
    expect(rolling).toContain(body(nextKey.cert));
  });
});

describe('SP-initiated single logout', () => {
  it.each([['HTTP-Redirect', 'okta-saml'], ['HTTP-POST', 'okta-post']])('signs the AuthnRequest, ends the session, sends a signed LogoutRequest and returns to the app (LogoutResponse over %s)', async (binding, idpId) => {
    const { browser, session, signedRequest } = await signedIn(idpId);
    expect(signedRequest.searchParams.get('SigAlg')).toBe(RSA_SHA256);
    expect(signedRequest.searchParams.get('Signature')).toBeTruthy();
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();

    // RP-initiated logout at the gateway, confirmed as the person would; then the gateway's own
    // /logout step, which binds this browser to the LogoutRequest it sends on.
    const done = await confirmSignOut(browser);
    expect(done.status).toBe(303);
    expect(await gw.gateway.sessions.isEnded(session.sid)).toBe(true);
    expect(new URL(done.location!).pathname).toBe(`/federation/saml/${idpId}/logout`);
    const step = await browser.get(done.location!);
    expect(step.status).toBe(303);
    // The SAML browser-binding cookie, (re)set to last as long as the pending LogoutRequest.
    const bindingCookie = step.headers.get('set-cookie') ?? '';
    expect(bindingCookie).toMatch(/^agentgate\.saml=/);
    expect(bindingCookie).toContain('Path=/federation/saml;');
    expect(bindingCookie).toContain('Max-Age=600');
    const toIdp = new URL(step.location!);
    expect(`${toIdp.origin}${toIdp.pathname}`).toBe(idp.sloUrl);
    expect(toIdp.searchParams.get('SAMLRequest')).toBeTruthy();
    expect(toIdp.searchParams.get('Signature')).toBeTruthy();
    // The hand-off is used once.
    expect((await fetched(`${gw.url}${new URL(done.location!).pathname}${new URL(done.location!).search}`)).status).toBe(400);

    const walk = await browser.followUntil(step.location!, (location) => location.startsWith(SIGNED_OUT), { onLoginForm: autoPost });
    expect(walk.location).toBe(`${SIGNED_OUT}?state=bye`);
    const response = walk.hops.find((hop) => hop.url.startsWith(sloOf(idpId)));
    expect(binding === 'HTTP-POST' ? response?.method === 'POST' && 'SAMLResponse' in (response.form ?? {}) : response?.url.includes('?SAMLResponse=')).toBe(true);
    // The IdP session is over too: signing in again asks for the password.
    const again = await browser.followUntil(`${gw.url}/auth?${new URLSearchParams({ client_id: 'agent-console', response_type: 'code', redirect_uri: 'http://127.0.0.1/cb', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', idp_hint: idpId })}`,
      () => false, { throwOnStop: false, onLoginForm: () => undefined });
    expect(again.last.body).toContain('name="password"');
  });
});

describe('the LogoutRequest names the person exactly as the IdP did', () => {
  it('repeats an Entra-style unspecified NameID with its Format and SPNameQualifier, and the IdP ends its session', async () => {
    const browser = createPeerBrowser(internet);
    const { session, samlResponse, requestXml, toIdp } = await pendingLogout('entra-saml', browser);
    // What the IdP sent at sign-in (the assertion's NameID) …
    const sent = one(parse(decodeResponse(samlResponse)), NS.assertion, 'NameID');
    expect(sent.getAttribute('Format')).toBe(NAMEID.unspecified);
    const spNameQualifier = sent.getAttribute('SPNameQualifier');
    expect(spNameQualifier).toBe(`${gw.url}/federation/saml/entra-saml/metadata`);
    expect(session.identity.subject).toBe(`${TENANT}:0c0c0c0c-1111-4222-8333-444444444444`);
    expect(session.upstream).toMatchObject({ sub: 'carol@contoso.com', samlNameId: { format: NAMEID.unspecified, spNameQualifier } });
    // … is what the LogoutRequest carries: same value, same Format, same qualifier, no other.
    const named = one(parse(requestXml), NS.assertion, 'NameID');
    expect(named.textContent).toBe('carol@contoso.com');
    expect(named.getAttribute('Format')).toBe(NAMEID.unspecified);
    expect(named.getAttribute('SPNameQualifier')).toBe(spNameQualifier);
    expect(requestXml).not.toMatch(/\sNameQualifier=/);
    expect(requestXml).toContain(`<samlp:SessionIndex>${session.upstream.sid}</samlp:SessionIndex>`);
    // SimpleSAMLphp accepts it and answers; the person lands back at the app.
    const walk = await browser.followUntil(toIdp.href, (location) => location.startsWith(SIGNED_OUT), { onLoginForm: autoPost });
    expect(walk.location).toBe(`${SIGNED_OUT}?state=bye`);
  });

  it('repeats a persistent NameID with its Format (Okta style)', async () => {
    const { requestXml } = await pendingLogout('okta-saml');
    const named = one(parse(requestXml), NS.assertion, 'NameID');
    expect(named.textContent).toBe('00u1alice');
    expect(named.getAttribute('Format')).toBe(NAMEID.persistent);
    expect(named.getAttribute('SPNameQualifier')).toBe(`${gw.url}/federation/saml/okta-saml/metadata`);
  });
});

/** A LogoutResponse over HTTP-Redirect, signed with `key` (the IdP's unless said otherwise). */
function logoutResponseQuery(input: { inResponseTo?: string; relayState?: string; issuer?: string; destination?: string; status?: string; key?: string; idpId?: string }): string {
  const xml = `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${Math.random().toString(16).slice(2)}" Version="2.0" IssueInstant="${new Date().toISOString()}"`
    + ` Destination="${input.destination ?? sloOf(input.idpId ?? 'okta-saml')}"${input.inResponseTo ? ` InResponseTo="${input.inResponseTo}"` : ''}>`
    + `<saml:Issuer>${input.issuer ?? idp.entityId}</saml:Issuer><samlp:Status><samlp:StatusCode Value="${input.status ?? 'urn:oasis:names:tc:SAML:2.0:status:Success'}"/></samlp:Status></samlp:LogoutResponse>`;
  const parts = [`SAMLResponse=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`];
  if (input.relayState !== undefined) parts.push(`RelayState=${encodeURIComponent(input.relayState)}`);
  parts.push(`SigAlg=${encodeURIComponent(RSA_SHA256)}`);
  parts.push(`Signature=${encodeURIComponent(sign('sha256', Buffer.from(parts.join('&')), createPrivateKey(input.key ?? idp.privateKey)).toString('base64'))}`);
  return parts.join('&');
}

describe('the LogoutResponse must answer the LogoutRequest this browser carried', () => {
  /** The IdP's genuine LogoutResponse, stopped on its way to the gateway (HTTP-Redirect). */
  async function genuineLogoutResponse() {
    const pending = await pendingLogout('okta-saml');
    const walk = await pending.browser.followUntil(pending.toIdp.href, (location) => location.startsWith(sloOf('okta-saml')), { onLoginForm: autoPost });
    const url = new URL(walk.location!);
    const xml = inflateRawSync(Buffer.from(url.searchParams.get('SAMLResponse')!, 'base64')).toString('utf8');
    expect(xml).toContain(`InResponseTo="${pending.requestId}"`);
    return { ...pending, responseUrl: url.href };
  }

  it('refuses the genuine response from another browser, and still accepts it from the right one', async () => {
    const { browser, responseUrl } = await genuineLogoutResponse();
    const since = await mark();
    await expectLogoutRefused(await createPeerBrowser(internet).get(responseUrl), since, {
      errorCode: 'ERR_FEDERATION_STATE', message: 'invalid SAML logout message: this sign-out was started in another browser',
    });
    const back = await browser.get(responseUrl);
    expect(back.status).toBe(303);
    expect(back.location).toBe(`${SIGNED_OUT}?state=bye`);
  });

  it('takes the request once: the same response again is a replay', async () => {
    const { browser, responseUrl } = await genuineLogoutResponse();
    expect((await browser.get(responseUrl)).location).toBe(`${SIGNED_OUT}?state=bye`);
    const since = await mark();
    const again = await browser.get(responseUrl);
    await expectLogoutRefused(again, since, { errorCode: 'ERR_SAML_REPLAY', message: 'invalid SAML logout message: it was already used (replay)' });
    expect(again.location).toBeNull();
  });

  const forged: [string, (p: { requestId: string; relayState: string; otherRequestId?: string }) => Parameters<typeof logoutResponseQuery>[0], { errorCode: string; message: string }][] = [
    ['an unknown InResponseTo', (p) => ({ inResponseTo: '_never-sent', relayState: p.relayState }),
      { errorCode: 'ERR_SAML_IN_RESPONSE_TO', message: 'invalid SAML logout message: it answers no sign-out in progress here (unknown, expired or already used)' }],
    ['no InResponseTo', (p) => ({ relayState: p.relayState }),
      { errorCode: 'ERR_SAML_IN_RESPONSE_TO', message: 'invalid SAML logout message: it answers no sign-out in progress here (unknown, expired or already used)' }],
    ['the InResponseTo of a request sent to another IdP', (p) => ({ inResponseTo: p.otherRequestId!, relayState: p.relayState }),
      { errorCode: 'ERR_SAML_IN_RESPONSE_TO', message: 'invalid SAML logout message: it answers a sign-out sent to another identity provider' }],
    ['another RelayState', (p) => ({ inResponseTo: p.requestId, relayState: 'not-the-state' }),
      { errorCode: 'ERR_FEDERATION_STATE', message: 'invalid SAML logout message: it does not belong to the sign-out in progress (RelayState)' }],
    ['another Issuer', (p) => ({ inResponseTo: p.requestId, relayState: p.relayState, issuer: 'https://evil.example/idp' }),
      { errorCode: 'ERR_SAML_ISSUER', message: 'invalid SAML logout message: it was not issued by the configured identity provider' }],
    ['another Destination', (p) => ({ inResponseTo: p.requestId, relayState: p.relayState, destination: 'https://evil.example/slo' }),
      { errorCode: 'ERR_SAML_DESTINATION', message: 'invalid SAML logout message: it is addressed to another endpoint (Destination)' }],
    ['a non-Success status', (p) => ({ inResponseTo: p.requestId, relayState: p.relayState, status: 'urn:oasis:names:tc:SAML:2.0:status:Responder' }),
      { errorCode: 'ERR_FEDERATION_IDP_ERROR', message: 'you are signed out of the gateway, but the identity provider "okta-saml" reports that it could not end your session everywhere; close the browser to be sure' }],
  ];
  it.each(forged)('refuses a LogoutResponse with %s, even signed by the IdP, and does not follow its RelayState', async (_what, build, expected) => {
    const pending = await pendingLogout('okta-saml');
    // A request pending for another IdP, in another browser.
    const other = await pendingLogout('okta-post');
    const since = await mark();
    const res = await pending.browser.get(`${sloOf('okta-saml')}?${logoutResponseQuery(build({ ...pending, otherRequestId: other.requestId }))}`);
    await expectLogoutRefused(res, since, expected);
    expect(res.location).toBeNull();
  });

  it('accepts a LogoutResponse built the same way when it matches (the forging tool is sound)', async () => {
    const pending = await pendingLogout('okta-saml');
    const res = await pending.browser.get(`${sloOf('okta-saml')}?${logoutResponseQuery({ inResponseTo: pending.requestId, relayState: pending.relayState })}`);
    expect(res.status).toBe(303);
    expect(res.location).toBe(`${SIGNED_OUT}?state=bye`);
  });
});

describe('IdP-initiated single logout', () => {
  it.each([['HTTP-Redirect', 'okta-saml'], ['HTTP-POST', 'okta-post']])('ends the session named by NameID + SessionIndex (%s)', async (_binding, idpId) => {
    const { browser, session } = await signedIn(idpId);
    const other = await signedIn(idpId); // another browser, another IdP session: stays
    const walk = await browser.followUntil(`${idp.sloUrl}?ReturnTo=${encodeURIComponent(BYE)}`, (location) => location.startsWith(BYE), { onLoginForm: autoPost });
    expect(walk.reached).toBe(true);
    const atGateway = walk.hops.find((hop) => hop.url.startsWith(sloOf(idpId)));
    expect(atGateway).toBeDefined();
    expect(atGateway!.status).toBe(303);
    expect(await gw.gateway.sessions.isEnded(session.sid)).toBe(true);
    expect(await gw.gateway.sessions.get(other.session.sid)).toBeDefined();
    expect(gw.logs.join('')).toContain('"event":"session.upstream_logout"');
  });
});

/** A LogoutRequest for this session, sent over HTTP-Redirect, signed as asked. */
function logoutRequestQuery(input: { nameId: string; sessionIndex?: string; key?: string; algorithm?: 'sha256' | 'sha1'; id?: string; xml?: string; issuer?: string; destination?: string }): string {
  const xml = input.xml ?? `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${input.id ?? `_${Math.random().toString(16).slice(2)}`}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${input.destination ?? sloOf('okta-saml')}"><saml:Issuer>${input.issuer ?? idp.entityId}</saml:Issuer><saml:NameID>${input.nameId}</saml:NameID>${input.sessionIndex ? `<samlp:SessionIndex>${input.sessionIndex}</samlp:SessionIndex>` : ''}</samlp:LogoutRequest>`;
  const parts = [`SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`];
  if (input.key) {
    const sha1 = input.algorithm === 'sha1';
    parts.push(`SigAlg=${encodeURIComponent(sha1 ? 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' : RSA_SHA256)}`);
    parts.push(`Signature=${encodeURIComponent(sign(sha1 ? 'sha1' : 'sha256', Buffer.from(parts.join('&')), createPrivateKey(input.key)).toString('base64'))}`);
  }
  return parts.join('&');
}

describe('refused logout requests (each audited as session.upstream_logout_refused)', () => {
  it.each([
    ['unsigned', () => ({}), 'ERR_SAML_LOGOUT_INVALID', 'invalid SAML logout message: it is not signed (the gateway requires signed logout messages)'],
    ['signed by another key', () => ({ key: spKey.key }), 'ERR_SAML_LOGOUT_INVALID', 'invalid SAML logout message: its signature does not verify with any signing certificate of the identity provider'],
    ['signed with SHA-1, even by the IdP', () => ({ key: idp.privateKey, algorithm: 'sha1' as const }), 'ERR_SAML_WEAK_ALGORITHM', 'invalid SAML logout message: it is signed with a weak algorithm (SHA-1)'],
    ['from another Issuer, signed by the IdP', () => ({ key: idp.privateKey, issuer: 'https://evil.example/idp' }), 'ERR_SAML_ISSUER', 'invalid SAML logout message: it was not issued by the configured identity provider'],
    ['for another Destination, signed by the IdP', () => ({ key: idp.privateKey, destination: 'https://evil.example/slo' }), 'ERR_SAML_DESTINATION', 'invalid SAML logout message: it is addressed to another endpoint (Destination)'],
  ])('refuses one %s and ends nothing', async (_what, options, errorCode, message) => {
    const { session } = await signedIn();
    const since = await mark();
    const res = await fetched(`${sloOf('okta-saml')}?${logoutRequestQuery({ nameId: session.upstream.sub!, sessionIndex: session.upstream.sid!, ...options() })}`);
    await expectLogoutRefused(res, since, { errorCode, message });
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();
  });

  it('refuses an unsigned LogoutRequest over HTTP-POST', async () => {
    const { session } = await signedIn();
    const xml = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_p1" Version="2.0" IssueInstant="${new Date().toISOString()}"><saml:Issuer>${idp.entityId}</saml:Issuer><saml:NameID>${session.upstream.sub}</saml:NameID></samlp:LogoutRequest>`;
    const since = await mark();
    const res = await fetched(sloOf('okta-saml'), { method: 'POST', body: new URLSearchParams({ SAMLRequest: Buffer.from(xml).toString('base64') }) });
    await expectLogoutRefused(res, since, { errorCode: 'ERR_SAML_LOGOUT_INVALID', message: 'invalid SAML logout message: it is not signed (the gateway requires signed logout messages)' });
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();
  });

  it('acts on a signed request once, and only for the NameID it names', async () => {
    const { session } = await signedIn();
    const wrongPerson = logoutRequestQuery({ nameId: 'someone-else', sessionIndex: session.upstream.sid!, key: idp.privateKey });
    expect((await fetch(`${sloOf('okta-saml')}?${wrongPerson}`, { redirect: 'manual' })).status).toBe(303);
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();

    const query = logoutRequestQuery({ nameId: session.upstream.sub!, sessionIndex: session.upstream.sid!, key: idp.privateKey });
    const first = await fetch(`${sloOf('okta-saml')}?${query}`, { redirect: 'manual' });
    expect(first.status).toBe(303);
    const response = new URL(first.headers.get('location')!);
    expect(`${response.origin}${response.pathname}`).toBe(idp.sloUrl);
    expect(response.searchParams.get('SAMLResponse')).toBeTruthy();
    expect(response.searchParams.get('Signature')).toBeTruthy();
    expect(await gw.gateway.sessions.isEnded(session.sid)).toBe(true);
    const since = await mark();
    await expectLogoutRefused(await fetched(`${sloOf('okta-saml')}?${query}`), since, { errorCode: 'ERR_SAML_REPLAY', message: 'invalid SAML logout message: it was already used (replay)' });
  });

  it('refuses a deflate bomb before inflating it all', async () => {
    const bomb = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_b">${' '.repeat(2 * 1024 * 1024)}</samlp:LogoutRequest>`;
    const since = await mark();
    const res = await fetched(`${sloOf('okta-saml')}?${logoutRequestQuery({ nameId: 'x', key: idp.privateKey, xml: bomb })}`);
    await expectLogoutRefused(res, since, { status: 413, errorCode: 'ERR_SAML_TOO_LARGE', message: 'the logout message inflates to more than the gateway accepts' });
  });

  it('refuses a POSTed logout message over the form limit', async () => {
    const since = await mark();
    const res = await fetched(sloOf('okta-saml'), { method: 'POST', body: new URLSearchParams({ SAMLRequest: 'A'.repeat(600 * 1024) }) });
    await expectLogoutRefused(res, since, { status: 413, errorCode: 'ERR_SAML_TOO_LARGE', message: 'the SAML logout message is larger than the gateway accepts' });
  });
});
