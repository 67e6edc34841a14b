// SAML Single Logout against SimpleSAMLphp, with the gateway signing its AuthnRequests and
// logout messages (the IdP requires it: validate.authnrequest / validate.logout):
//   SP-initiated — sign-out at the gateway ends the enterprise session (its tokens introspect
//                  inactive), sends a signed LogoutRequest, and the IdP's LogoutResponse brings
//                  the person back to the app;
//   IdP-initiated — a signed LogoutRequest (HTTP-Redirect or HTTP-POST) ends the session found by
//                  NameID + SessionIndex, answered with a LogoutResponse;
//   refused       — unsigned, wrongly signed, SHA-1, replayed, or deflate-bomb logout requests.
import { createPrivateKey, sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { completed } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { createPeerBrowser, parseForms } from '../support/peers/browser.ts';
import type { PeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import { finishSamlSignIn, startSamlSignIn } from '../support/peers/saml-flow.ts';
import { generateCertificate, startSamlIdp } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';

const internet = createLoopbackInternet();
const SIGNED_OUT = 'http://127.0.0.1/signed-out';
const BYE = 'http://127.0.0.1/bye';
const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
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
    users: [{ username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], groups: ['Everyone'] } }],
  });
  const saml = (id: string) => ({
    id, type: 'saml', preset: 'okta', metadata: { url: idp.metadataUrl },
    sp: { signingKey: spKey.key, signingCert: spKey.cert, ...(id === 'okta-post' ? { nextSigningCert: nextKey.cert } : {}) },
  });
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      apps: [{ clientId: 'agent-console', redirectUris: ['http://127.0.0.1/cb'], postLogoutRedirectUris: [SIGNED_OUT], audiences: ['https://erp.example.test'] }],
      identityProviders: [saml('okta-saml'), saml('okta-post')],
    },
  });
  for (const id of ['okta-saml', 'okta-post']) {
    await idp.registerSp({
      entityId: `${gw.url}/federation/saml/${id}/metadata`, acs: `${gw.url}/federation/saml/${id}/acs`, slo: sloOf(id),
      sloBindings: id === 'okta-post' ? ['post'] : ['redirect'],
      certificate: spKey.cert, validateAuthnRequest: true,
    });
  }
});
afterAll(async () => {
  await gw?.close();
  await idp?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

async function signedIn(idpId = 'okta-saml', browser: PeerBrowser = createPeerBrowser(internet)) {
  const start = await startSamlSignIn(gw, browser, { username: 'alice', password: 'alice-pass', idpHint: idpId });
  const signedRequest = new URL(start.hops.find((h) => h.location?.startsWith(idp.ssoUrl))!.location!);
  const { signIn } = await finishSamlSignIn(start);
  const { session } = await completed(gw, signIn!);
  return { browser, session, signedRequest };
}

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

    // RP-initiated logout at the gateway, confirmed as the person would.
    const page = await browser.get(`${gw.url}/session/end?${new URLSearchParams({ client_id: 'agent-console', post_logout_redirect_uri: SIGNED_OUT, state: 'bye' })}`);
    const [form] = parseForms(page.body, page.url);
    const done = await browser.postForm(form!.action, { ...form!.fields, logout: 'yes' });
    expect(done.status).toBe(303);
    expect(await gw.gateway.sessions.isEnded(session.sid)).toBe(true);
    const toIdp = new URL(done.location!);
    expect(`${toIdp.origin}${toIdp.pathname}`).toBe(idp.sloUrl);
    expect(toIdp.searchParams.get('SAMLRequest')).toBeTruthy();
    expect(toIdp.searchParams.get('Signature')).toBeTruthy();

    const walk = await browser.followUntil(done.location!, (location) => location.startsWith(SIGNED_OUT), { onLoginForm: autoPost });
    expect(walk.location).toBe(`${SIGNED_OUT}?state=bye`);
    const response = walk.hops.find((hop) => hop.url.startsWith(sloOf(idpId)));
    expect(binding === 'HTTP-POST' ? response?.method === 'POST' && 'SAMLResponse' in (response.form ?? {}) : response?.url.includes('?SAMLResponse=')).toBe(true);
    // The IdP session is over too: signing in again asks for the password.
    const again = await browser.followUntil(`${gw.url}/auth?${new URLSearchParams({ client_id: 'agent-console', response_type: 'code', redirect_uri: 'http://127.0.0.1/cb', scope: 'openid', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256', idp_hint: idpId })}`,
      () => false, { throwOnStop: false, onLoginForm: () => undefined });
    expect(again.last.body).toContain('name="password"');
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
function logoutRequestQuery(input: { nameId: string; sessionIndex?: string; key?: string; algorithm?: 'sha256' | 'sha1'; id?: string; xml?: string }): string {
  const xml = input.xml ?? `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${input.id ?? `_${Math.random().toString(16).slice(2)}`}" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${sloOf('okta-saml')}"><saml:Issuer>${idp.entityId}</saml:Issuer><saml:NameID>${input.nameId}</saml:NameID>${input.sessionIndex ? `<samlp:SessionIndex>${input.sessionIndex}</samlp:SessionIndex>` : ''}</samlp:LogoutRequest>`;
  const parts = [`SAMLRequest=${encodeURIComponent(deflateRawSync(Buffer.from(xml)).toString('base64'))}`];
  if (input.key) {
    const sha1 = input.algorithm === 'sha1';
    parts.push(`SigAlg=${encodeURIComponent(sha1 ? 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' : RSA_SHA256)}`);
    parts.push(`Signature=${encodeURIComponent(sign(sha1 ? 'sha1' : 'sha256', Buffer.from(parts.join('&')), createPrivateKey(input.key)).toString('base64'))}`);
  }
  return parts.join('&');
}

describe('refused logout requests', () => {
  it.each([
    ['unsigned', () => undefined, 'invalid SAML logout message: it is not signed (the gateway requires signed logout messages)'],
    ['signed by another key', () => spKey.key, 'invalid SAML logout message: its signature does not verify with any signing certificate of the identity provider'],
  ])('refuses one %s and ends nothing', async (_what, key, message) => {
    const { session } = await signedIn();
    const signer = key();
    const res = await fetch(`${sloOf('okta-saml')}?${logoutRequestQuery({ nameId: session.upstream.sub!, sessionIndex: session.upstream.sid!, ...(signer ? { key: signer } : {}) })}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain(message);
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();
  });

  it('refuses an unsigned LogoutRequest over HTTP-POST', async () => {
    const { session } = await signedIn();
    const xml = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_p1" Version="2.0" IssueInstant="${new Date().toISOString()}"><saml:Issuer>${idp.entityId}</saml:Issuer><saml:NameID>${session.upstream.sub}</saml:NameID></samlp:LogoutRequest>`;
    const res = await fetch(sloOf('okta-saml'), { method: 'POST', redirect: 'manual', body: new URLSearchParams({ SAMLRequest: Buffer.from(xml).toString('base64') }) });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('invalid SAML logout message: it is not signed (the gateway requires signed logout messages)');
    expect(await gw.gateway.sessions.get(session.sid)).toBeDefined();
  });

  it('refuses SHA-1, even signed by the IdP', async () => {
    const { session } = await signedIn();
    const res = await fetch(`${sloOf('okta-saml')}?${logoutRequestQuery({ nameId: session.upstream.sub!, sessionIndex: session.upstream.sid!, key: idp.privateKey, algorithm: 'sha1' })}`, { redirect: 'manual' });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('invalid SAML logout message: it is signed with a weak algorithm (SHA-1)');
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
    const replay = await fetch(`${sloOf('okta-saml')}?${query}`, { redirect: 'manual' });
    expect(replay.status).toBe(400);
    expect(await replay.text()).toContain('invalid SAML logout message: it was already used (replay)');
  });

  it('refuses a deflate bomb before inflating it all', async () => {
    const bomb = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_b">${' '.repeat(2 * 1024 * 1024)}</samlp:LogoutRequest>`;
    const res = await fetch(`${sloOf('okta-saml')}?${logoutRequestQuery({ nameId: 'x', key: idp.privateKey, xml: bomb })}`, { redirect: 'manual' });
    expect(res.status).toBe(413);
    expect(await res.text()).toContain('the logout message inflates to more than the gateway accepts');
  });
});
