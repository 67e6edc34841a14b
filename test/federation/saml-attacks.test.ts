// Attacks on the SAML assertion consumer service, each built from a genuine SimpleSAMLphp
// response (the auto-POST form parsed, the document edited, re-signed where the attack needs a
// "genuine" signature over wrong content). Every one must end on the error page with its own
// error code in the `federation.login_failed` audit event, and make no session.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { alertText, completed } from '../support/federation.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import type { Hop } from '../support/peers/browser.ts';
import { createPeerBrowser } from '../support/peers/browser.ts';
import { createLoopbackInternet } from '../support/peers/internet.ts';
import {
  NS, all, decodeResponse, encodeResponse, finishSamlSignIn, isoIn, one, resign, setAttr, signatureOf, startSamlSignIn, tamper,
} from '../support/peers/saml-flow.ts';
import type { SamlStart } from '../support/peers/saml-flow.ts';
import { NAMEID, generateCertificate, startSamlIdp, walkToSamlPost } from '../support/peers/saml-idp.ts';
import type { SamlIdpPeer } from '../support/peers/saml-idp.ts';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const internet = createLoopbackInternet();
const ALICE = { username: 'alice', password: 'alice-pass' };
const COOKIE_KEY = 'saml-attacks-cookie-key-0123456789abcdef';
let gw: TestGateway;
let idp: SamlIdpPeer;
let attacker: { privateKey: string; certificate: string };
let scratch: string;

const acsOf = (id: string) => `${gw.url}/federation/saml/${id}/acs`;
const idpKey = () => ({ privateKey: idp.privateKey, certificate: idp.certificate });

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'agentgate-saml-attacks-'));
  const other = await generateCertificate(scratch, 'attacker', 'attacker');
  attacker = { privateKey: other.key, certificate: other.cert };
  idp = await startSamlIdp({
    users: [{ username: 'alice', password: 'alice-pass', attributes: { uid: ['00u1alice'], email: ['alice@acme.com'], name: ['Alice'], groups: ['Everyone'] } }],
  });
  gw = await startGateway({
    fetch: internet.fetch,
    config: {
      devLogin: { enabled: false },
      cookies: { keys: [COOKIE_KEY] },
      identityProviders: [
        { id: 'okta-saml', type: 'saml', preset: 'okta', metadata: { url: idp.metadataUrl } },
        { id: 'transient', type: 'saml', preset: 'generic', metadata: { url: idp.metadataUrl } },
        { id: 'assertion-only', type: 'saml', preset: 'generic', metadata: { url: idp.metadataUrl } },
        // Mid-rollover: the metadata lists another certificate first, then the one in use.
        { id: 'rollover', type: 'saml', preset: 'okta', metadata: { xml: withExtraSigningCert(await idp.metadata(), attacker.certificate) } },
      ],
      roles: { admin: { scopes: ['erp:approve'] } },
      roleMappings: [{ idp: 'okta-saml', group: 'Admins', roles: ['admin'] }],
    },
  });
  for (const id of ['okta-saml', 'transient', 'assertion-only', 'rollover']) {
    await idp.registerSp({
      entityId: `${gw.url}/federation/saml/${id}/metadata`, acs: acsOf(id),
      nameIdFormat: id === 'transient' ? NAMEID.transient : NAMEID.persistent, nameIdAttribute: 'uid',
      signResponse: id !== 'assertion-only',
    });
  }
});
afterAll(async () => {
  await gw?.close();
  await idp?.close();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** IdP metadata with one more signing certificate in front of the published ones. */
function withExtraSigningCert(metadata: string, pem: string): string {
  const body = pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, '');
  return metadata.replace('<md:KeyDescriptor use="signing">',
    `<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>${body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:KeyDescriptor use="signing">`);
}

const start = (idpHint = 'okta-saml') => startSamlSignIn(gw, createPeerBrowser(internet), { ...ALICE, idpHint });
const sessionsOfAlice = (idpId = 'okta-saml') => gw.gateway.sessions.findBySubject(`${idpId}|00u1alice`);
const failures = () => gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === 'federation.login_failed');

/** The response must be refused with this status, code and message, audited, and make no session. */
async function expectRefused(s: SamlStart, samlResponse: string, expected: { status?: number; errorCode: string; message: string | RegExp; idp?: string }): Promise<Hop> {
  const idpId = expected.idp ?? 'okta-saml';
  const before = (await sessionsOfAlice(idpId)).length;
  const failuresBefore = failures().length;
  const { acs } = await finishSamlSignIn(s, { ...s.post.fields, SAMLResponse: samlResponse });
  expect(acs.status).toBe(expected.status ?? 400);
  const alert = alertText(acs.body);
  if (typeof expected.message === 'string') expect(alert).toBe(expected.message);
  else expect(alert).toMatch(expected.message);
  expect(acs.body).toMatch(/give your IT team this reference: <code>[^<]+<\/code>/);
  const audited = failures().slice(failuresBefore);
  expect(audited).toHaveLength(1);
  expect(audited[0]).toMatchObject({ idp: idpId, errorCode: expected.errorCode });
  expect((await sessionsOfAlice(idpId)).length).toBe(before);
  // Nothing of the document (or the assertion) reaches the logs.
  expect(gw.logs.join('')).not.toContain(samlResponse.slice(0, 40));
  return acs;
}

const notSigned = (idpId: string) => `the SAML response from "${idpId}" is not signed by the identity provider's certificate`;
const NOT_SIGNED = notSigned('okta-saml');

describe('signatures', () => {
  it('refuses an assertion whose signatures were removed', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => {
      for (const sig of all(doc, NS.dsig, 'Signature')) sig.parentNode!.removeChild(sig);
    });
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('refuses an attribute changed after signing', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => {
      const value = all(doc, NS.assertion, 'AttributeValue').find((v) => v.textContent === 'Everyone')!;
      while (value.firstChild) value.removeChild(value.firstChild);
      value.appendChild(doc.createTextNode('Admins'));
    });
    expect(decodeResponse(forged)).toContain('>Admins<');
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('refuses a document signed by a key that is not in the IdP metadata (certificate in KeyInfo)', async () => {
    const s = await start();
    const forged = resign(s.post.fields.SAMLResponse!, attacker, () => {});
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('refuses an unsigned Response around a signed assertion when the preset wants the Response signed (Okta)', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => {
      doc.documentElement.removeChild(signatureOf(doc.documentElement)!);
    });
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('refuses SHA-1 signatures, even by the IdP key', async () => {
    const s = await start();
    const forged = resign(s.post.fields.SAMLResponse!, idpKey(), () => {}, { algorithm: 'sha1' });
    await expectRefused(s, forged, {
      errorCode: 'ERR_SAML_WEAK_ALGORITHM',
      message: 'the SAML response is signed with a weak algorithm (SHA-1); the IdP must sign with RSA-SHA256 or stronger',
    });
  });

  it('accepts either certificate during a rollover (every signing certificate in the metadata verifies)', async () => {
    const byCurrent = await start('rollover');
    expect((await finishSamlSignIn(byCurrent)).acs.status).toBe(303);
    // The "next" certificate listed first: a document signed with its key verifies too.
    const byNext = await start('rollover');
    const { acs } = await finishSamlSignIn(byNext, { ...byNext.post.fields, SAMLResponse: resign(byNext.post.fields.SAMLResponse!, attacker, () => {}) });
    expect(acs.status).toBe(303);
  });

  it('accepts the same document re-signed with the IdP key (the forging tool is sound)', async () => {
    const s = await start();
    const { acs } = await finishSamlSignIn(s, { ...s.post.fields, SAMLResponse: resign(s.post.fields.SAMLResponse!, idpKey(), () => {}) });
    expect(acs.status).toBe(303);
  });
});

// The eight XML Signature Wrapping variants of Somorovsky et al., "On Breaking SAML: Be Whoever
// You Want to Be" (USENIX Security 2012), each built from a genuine SimpleSAMLphp response: the
// attacker keeps the genuine signature (and the signed element it references, somewhere) and
// adds an assertion of their own (NameID `admin`) where a careless SP would read it.
type Doc = Parameters<Parameters<typeof tamper>[1]>[0];
type Node = ReturnType<typeof one>;

/** A copy of `assertion` saying what the attacker wants, under another ID; unsigned unless `keepSignature`. */
function evilCopy(assertion: Node, keepSignature = false): Node {
  const evil = assertion.cloneNode(true);
  if (!keepSignature) evil.removeChild(signatureOf(evil)!);
  evil.setAttribute('ID', '_evil');
  one(evil, NS.assertion, 'NameID').textContent = 'admin';
  return evil;
}
/** A copy of `element` without its own signature (the "original" an attacker hides). */
function unsignedCopy(element: Node): Node {
  const copy = element.cloneNode(true);
  const sig = signatureOf(copy);
  if (sig) copy.removeChild(sig);
  return copy;
}
const assertionOf = (doc: Doc) => one(doc, NS.assertion, 'Assertion');

/** XSW1/XSW2: a new root Response (the attacker's) carrying the genuine signature and the genuine Response. */
function wrapResponse(doc: Doc, where: 'inside-signature' | 'before-signature'): void {
  const original = doc.documentElement;
  // The Response's signature; an assertion-only IdP has none, so the assertion's stands in.
  const signature = (signatureOf(original) ?? signatureOf(assertionOf(doc))!).cloneNode(true);
  const evil = original.cloneNode(true);
  for (const sig of all(evil, NS.dsig, 'Signature')) sig.parentNode!.removeChild(sig);
  evil.setAttribute('ID', '_evil-response');
  one(evil, NS.assertion, 'Assertion').setAttribute('ID', '_evil');
  one(evil, NS.assertion, 'NameID').textContent = 'admin';
  evil.insertBefore(signature, one(evil, NS.protocol, 'Status'));
  // XSW1: enveloping (the genuine Response inside the Signature); XSW2: detached (just before it).
  if (where === 'inside-signature') signature.appendChild(original.cloneNode(true));
  else evil.insertBefore(original.cloneNode(true), signature);
  doc.removeChild(original);
  doc.appendChild(evil);
}

const XSW: [string, string, (doc: Doc) => void][] = [
  ['XSW1', 'a new root Response with the genuine Response inside its Signature (enveloping)', (doc) => wrapResponse(doc, 'inside-signature')],
  ['XSW2', 'a new root Response with the genuine Response next to its Signature (detached)', (doc) => wrapResponse(doc, 'before-signature')],
  ['XSW3', 'an unsigned evil Assertion before the signed one, as its sibling', (doc) => {
    const signed = assertionOf(doc);
    doc.documentElement.insertBefore(evilCopy(signed), signed);
  }],
  ['XSW4', 'an unsigned evil Assertion in place, with the signed one as its child', (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(signed);
    doc.documentElement.insertBefore(evil, signed);
    doc.documentElement.removeChild(signed);
    evil.appendChild(signed);
  }],
  ['XSW5', 'the evil Assertion carrying the genuine signature, an unsigned copy of the original appended to the Response', (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(signed, true);
    doc.documentElement.insertBefore(evil, signed);
    doc.documentElement.removeChild(signed);
    doc.documentElement.appendChild(unsignedCopy(signed));
  }],
  ['XSW6', 'the evil Assertion carrying the genuine signature, an unsigned copy of the original inside that Signature', (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(signed, true);
    doc.documentElement.insertBefore(evil, signed);
    doc.documentElement.removeChild(signed);
    signatureOf(evil)!.appendChild(unsignedCopy(signed));
  }],
  ['XSW7', 'an unsigned evil Assertion in a Response Extensions element, the signed one left in place', (doc) => {
    const extensions = doc.createElementNS(NS.protocol, 'samlp:Extensions');
    doc.documentElement.insertBefore(extensions, one(doc, NS.protocol, 'Status'));
    extensions.appendChild(evilCopy(assertionOf(doc)));
  }],
  ['XSW8', 'the evil Assertion carrying the genuine signature, an unsigned copy of the original in a ds:Object inside it', (doc) => {
    const signed = assertionOf(doc);
    const evil = evilCopy(signed, true);
    doc.documentElement.insertBefore(evil, signed);
    doc.documentElement.removeChild(signed);
    const object = doc.createElementNS(NS.dsig, 'ds:Object');
    signatureOf(evil)!.appendChild(object);
    object.appendChild(unsignedCopy(signed));
  }],
  ['XSW7 reversed', 'an unsigned evil Assertion in place, with the signed one hidden in the Response Extensions', (doc) => {
    const signed = assertionOf(doc);
    const extensions = doc.createElementNS(NS.protocol, 'samlp:Extensions');
    doc.documentElement.insertBefore(extensions, one(doc, NS.protocol, 'Status'));
    doc.documentElement.insertBefore(evilCopy(signed), signed);
    doc.documentElement.removeChild(signed);
    extensions.appendChild(signed);
  }],
];

// Okta's preset also wants the Response signed; the assertion-only IdP (Entra's and Google's default)
// leaves the assertion signature as the only defence.
describe.each(['okta-saml', 'assertion-only'])('signature wrapping at %s', (idpId) => {
  it.each(XSW)('refuses %s: %s', async (_name, _what, wrap) => {
    const s = await start(idpId);
    const forged = tamper(s.post.fields.SAMLResponse!, wrap);
    // The genuine signature is still in the document, and so is the attacker's assertion.
    expect(decodeResponse(forged)).toContain('SignatureValue');
    expect(decodeResponse(forged)).toMatch(/>admin</);
    await expectRefused(s, forged, { idp: idpId, errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: notSigned(idpId) });
    // The genuine response still signs the person in as themselves (nothing was burnt).
    const { acs, signIn } = await finishSamlSignIn(s);
    expect(acs.status).toBe(303);
    expect((await completed(gw, signIn!)).session.identity.subject).toBe('00u1alice');
  });
});

describe('signatures over the wrong thing', () => {
  it('refuses an unsigned assertion inside a Response signed by the IdP', async () => {
    const s = await start();
    const forged = resign(s.post.fields.SAMLResponse!, idpKey(), (doc) => { one(doc, NS.assertion, 'NameID').textContent = 'admin'; }, { assertion: false, response: true });
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('refuses an assertion carrying the signature of another element (the Response\'s)', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => {
      const assertion = one(doc, NS.assertion, 'Assertion');
      assertion.removeChild(signatureOf(assertion)!);
      const responseSignature = signatureOf(doc.documentElement)!;
      doc.documentElement.removeChild(responseSignature);
      assertion.insertBefore(responseSignature, one(assertion, NS.assertion, 'Subject'));
    });
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
  });

  it('reads the NameID whole when a comment splits it (comments are not signed)', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => {
      const nameId = one(doc, NS.assertion, 'NameID');
      const value = nameId.textContent!;
      while (nameId.firstChild) nameId.removeChild(nameId.firstChild);
      nameId.appendChild(doc.createTextNode(value.slice(0, 4)));
      nameId.appendChild(doc.createComment('x'));
      nameId.appendChild(doc.createTextNode(value.slice(4)));
    });
    expect(decodeResponse(forged)).toContain('00u1<!--x-->alice');
    const { acs, signIn } = await finishSamlSignIn(s, { ...s.post.fields, SAMLResponse: forged });
    expect(acs.status).toBe(303);
    const { session } = await completed(gw, signIn!);
    expect(session.identity.subject).toBe('00u1alice');
  });
});

describe('what the signed assertion says', () => {
  const cases: [string, (doc: Parameters<Parameters<typeof resign>[2]>[0]) => void, { errorCode: string; message: string }][] = [
    ['another Destination', (doc) => doc.documentElement.setAttribute('Destination', 'https://evil.example/acs'),
      { errorCode: 'ERR_SAML_DESTINATION', message: 'the SAML response is addressed to another endpoint (Destination)' }],
    ['another Recipient', (doc) => setAttr(doc, NS.assertion, 'SubjectConfirmationData', 'Recipient', 'https://evil.example/acs'),
      { errorCode: 'ERR_SAML_RECIPIENT', message: 'the assertion is addressed to another endpoint (Recipient)' }],
    ['another Audience', (doc) => { one(doc, NS.assertion, 'Audience').textContent = 'https://evil.example/sp'; },
      { errorCode: 'ERR_SAML_AUDIENCE', message: 'the assertion is meant for another service provider (Audience)' }],
    ['another assertion Issuer', (doc) => { one(one(doc, NS.assertion, 'Assertion'), NS.assertion, 'Issuer').textContent = 'https://evil.example/idp'; },
      { errorCode: 'ERR_SAML_ISSUER', message: 'the assertion was not issued by the configured identity provider' }],
    ['an expired assertion (beyond the skew)', (doc) => {
      setAttr(doc, NS.assertion, 'Conditions', 'NotOnOrAfter', isoIn(-120));
      setAttr(doc, NS.assertion, 'SubjectConfirmationData', 'NotOnOrAfter', isoIn(-120));
    }, { errorCode: 'ERR_SAML_TIME', message: 'the assertion has expired; start again from the application' }],
    ['an assertion not valid yet (beyond the skew)', (doc) => setAttr(doc, NS.assertion, 'Conditions', 'NotBefore', isoIn(600)),
      { errorCode: 'ERR_SAML_TIME', message: 'the assertion is not valid yet (check the clocks of the IdP and the gateway)' }],
    ['an unknown InResponseTo', (doc) => {
      doc.documentElement.setAttribute('InResponseTo', '_unknown');
      setAttr(doc, NS.assertion, 'SubjectConfirmationData', 'InResponseTo', '_unknown');
    }, { errorCode: 'ERR_SAML_IN_RESPONSE_TO', message: 'this sign-in has expired or was already completed; start again from the application' }],
    ['InResponseTo differing between Response and assertion', (doc) => doc.documentElement.setAttribute('InResponseTo', '_other'),
      { errorCode: 'ERR_SAML_IN_RESPONSE_TO', message: 'the assertion answers a different sign-in request' }],
    ['a non-Success status', (doc) => setAttr(doc, NS.protocol, 'StatusCode', 'Value', 'urn:oasis:names:tc:SAML:2.0:status:Responder'),
      { errorCode: 'ERR_FEDERATION_IDP_ERROR', message: 'the identity provider "okta-saml" refused the sign-in' }],
  ];
  it.each(cases)('refuses %s, even signed by the IdP', async (_what, edit, expected) => {
    const s = await start();
    await expectRefused(s, resign(s.post.fields.SAMLResponse!, idpKey(), edit), expected);
  });

  it('accepts time conditions within the 60 s skew', async () => {
    const s = await start();
    const shifted = resign(s.post.fields.SAMLResponse!, idpKey(), (doc) => setAttr(doc, NS.assertion, 'Conditions', 'NotBefore', isoIn(30)));
    expect((await finishSamlSignIn(s, { ...s.post.fields, SAMLResponse: shifted })).acs.status).toBe(303);
  });
});

describe('replay and the pending request', () => {
  it('accepts a response once', async () => {
    const s = await start();
    expect((await finishSamlSignIn(s)).acs.status).toBe(303);
    await expectRefused(s, s.post.fields.SAMLResponse!, { errorCode: 'ERR_SAML_REPLAY', message: 'this sign-in response was already used; start again from the application' });
  });

  it('makes at most one session from two concurrent posts of one response', async () => {
    const s = await start();
    const before = (await sessionsOfAlice()).length;
    const results = await Promise.all([s.browser.postForm(s.post.action, s.post.fields), s.browser.postForm(s.post.action, s.post.fields)]);
    expect(results.map((r) => r.status).sort()).toEqual([303, 400]);
    expect((await sessionsOfAlice()).length).toBe(before + 1);
  });

  it('makes at most one session when one response is posted to two gateway replicas at once', async () => {
    // A second replica: same issuer, Redis key prefix, cookie keys and IdPs; another process port.
    const replica = await startGateway({ fetch: internet.fetch, keyPrefix: (gw.config.store as { keyPrefix: string }).keyPrefix, config: {
      issuer: gw.url, devLogin: { enabled: false }, cookies: { keys: [COOKIE_KEY] },
      identityProviders: gw.config.identityProviders.map(({ id, type, preset }) => ({ id, type, preset, metadata: { url: idp.metadataUrl } })),
    } });
    try {
      const s = await start();
      const before = (await sessionsOfAlice()).length;
      const results = await Promise.all([
        s.browser.postForm(s.post.action, s.post.fields),
        s.browser.postForm(s.post.action.replace(gw.url, replica.url), s.post.fields),
      ]);
      expect(results.map((r) => r.status).sort()).toEqual([303, 400]);
      // The loser lost the race in Redis (a replay), not for another reason.
      expect(alertText(results.find((r) => r.status === 400)!.body)).toMatch(/^this sign-in (response was already used|has expired or was already completed)/);
      expect((await sessionsOfAlice()).length).toBe(before + 1);
      // Either replica alone accepts a fresh response (so the race above was a real one).
      const fresh = await start();
      expect((await fresh.browser.postForm(fresh.post.action.replace(gw.url, replica.url), fresh.post.fields)).status).toBe(303);
    } finally {
      await replica.close();
    }
  });

  it('does not let a forged post burn the genuine pending request', async () => {
    const s = await start();
    const forged = tamper(s.post.fields.SAMLResponse!, (doc) => { one(doc, NS.assertion, 'NameID').textContent = 'admin'; });
    await expectRefused(s, forged, { errorCode: 'ERR_SAML_SIGNATURE_INVALID', message: NOT_SIGNED });
    const { acs, signIn } = await finishSamlSignIn(s);
    expect(acs.status).toBe(303);
    expect((await completed(gw, signIn!)).session.identity.subject).toBe('00u1alice');
  });

  it('refuses an unsolicited (IdP-initiated) response when that is not enabled', async () => {
    const browser = createPeerBrowser(internet);
    const { post } = await walkToSamlPost(browser, `${idp.ssoUrl}?spentityid=${encodeURIComponent(`${gw.url}/federation/saml/okta-saml/metadata`)}`, ALICE);
    expect(post).toBeDefined();
    await expectRefused({ browser, post: post!, verifier: '', hops: [] }, post!.fields.SAMLResponse!, {
      errorCode: 'ERR_SAML_UNSOLICITED', message: 'this identity provider may not start sign-ins here; start from the application',
    });
  });

  it('refuses a response posted from another browser', async () => {
    const s = await start();
    await expectRefused({ ...s, browser: createPeerBrowser(internet) }, s.post.fields.SAMLResponse!, {
      errorCode: 'ERR_FEDERATION_STATE', message: 'this sign-in was started in another browser; start again from the application',
    });
    expect((await finishSamlSignIn(s)).acs.status).toBe(303);
  });
});

describe('parser and size defences', () => {
  it('refuses a DOCTYPE (entity expansion)', async () => {
    const s = await start();
    const xml = decodeResponse(s.post.fields.SAMLResponse!);
    const bomb = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${xml.replace(/^<\?xml[^>]*\?>/, '').replace('00u1alice', '&b;')}`;
    await expectRefused(s, encodeResponse(bomb), { errorCode: 'ERR_SAML_DOCTYPE', message: 'the SAML response contains a DTD (DOCTYPE or ENTITY), which SAML forbids' });
  });

  it('refuses a body over the size cap', async () => {
    const s = await start();
    await expectRefused(s, 'A'.repeat(600 * 1024), { status: 413, errorCode: 'ERR_SAML_TOO_LARGE', message: 'the SAML response is larger than the gateway accepts' });
  });

  it('refuses a message that is not base64 XML', async () => {
    const s = await start();
    await expectRefused(s, encodeResponse('<not-closed'), { errorCode: 'ERR_SAML_MALFORMED', message: 'the SAML response is not well-formed XML' });
  });
});

describe('the person is never keyed by a transient NameID', () => {
  it('refuses a transient NameID', async () => {
    const s = await start('transient');
    const { acs } = await finishSamlSignIn(s);
    expect(acs.status).toBe(400);
    expect(alertText(acs.body)).toBe('the assertion from "transient" identifies the person with a urn:oasis:names:tc:SAML:2.0:nameid-format:transient NameID; configure the IdP to send a persistent NameID (or set attributes.subject to an immutable attribute)');
    expect(failures().at(-1)).toMatchObject({ idp: 'transient', errorCode: 'ERR_SAML_SUBJECT' });
  });
});
