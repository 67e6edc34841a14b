// SAML sign-ins through the gateway's /auth against a real SimpleSAMLphp IdP (./saml-idp.ts):
// start at /auth, walk the IdP's login to its auto-POST page, and let the test post (or tamper
// with, then post) the SAMLResponse to the gateway's ACS. Also the tools for tampering: decode
// the Response, edit its DOM, and re-sign it with a key (the IdP's, for "genuinely signed but
// wrong" documents, or another one).
import { createRequire } from 'node:module';

import { APP_REDIRECT, appAuthorization } from '../federation.ts';
import type { FederatedSignIn } from '../federation.ts';
import type { TestGateway } from '../gateway.ts';
import type { Hop, PeerBrowser } from './browser.ts';
import { walkToSamlPost } from './saml-idp.ts';
import type { SamlPost } from './saml-idp.ts';

export interface SamlStart {
  browser: PeerBrowser;
  post: SamlPost;
  verifier: string;
  hops: Hop[];
}

/** /auth → the IdP's login → the auto-POST form (not submitted). */
export async function startSamlSignIn(
  gw: TestGateway,
  browser: PeerBrowser,
  options: { username: string; password: string; idpHint?: string; loginHint?: string; scope?: string },
): Promise<SamlStart> {
  const { params, verifier } = appAuthorization(options);
  const { post, hops } = await walkToSamlPost(browser, `${gw.url}/auth?${params}`, options);
  if (!post) {
    const last = hops.at(-1)!;
    throw new Error(`no SAML auto-POST form: stopped at ${last.status} ${last.url}\n${last.body.slice(0, 600)}`);
  }
  return { browser, post, verifier, hops };
}

/** Posts (possibly altered) fields to the ACS; on success follows on to the app's redirect. */
export async function finishSamlSignIn(start: SamlStart, fields: Record<string, string> = start.post.fields): Promise<{ acs: Hop; signIn?: FederatedSignIn }> {
  const acs = await start.browser.postForm(start.post.action, fields);
  if (acs.status !== 303 || !acs.location) return { acs };
  const walk = await start.browser.followUntil(acs.location, (url) => url.startsWith(APP_REDIRECT), { throwOnStop: false });
  return { acs, signIn: { browser: start.browser, walk, redirect: new URL(walk.location ?? 'http://127.0.0.1/never'), verifier: start.verifier } };
}

// --- tampering -------------------------------------------------------------------------------

interface XmlNode {
  nodeType: number;
  localName: string | null;
  namespaceURI: string | null;
  parentNode: XmlNode | null;
  firstChild: XmlNode | null;
  nextSibling: XmlNode | null;
  textContent: string | null;
  ownerDocument: XmlDocument;
  getAttribute(name: string): string | null;
  setAttribute(name: string, value: string): void;
  removeAttribute(name: string): void;
  getElementsByTagNameNS(ns: string, localName: string): ArrayLike<XmlNode>;
  appendChild(node: XmlNode): XmlNode;
  insertBefore(node: XmlNode, ref: XmlNode | null): XmlNode;
  removeChild(node: XmlNode): XmlNode;
  cloneNode(deep: boolean): XmlNode;
}
interface XmlDocument extends XmlNode {
  documentElement: XmlNode;
  createElementNS(ns: string, name: string): XmlNode;
  createTextNode(text: string): XmlNode;
  createComment(text: string): XmlNode;
}

// Untyped on purpose: @xmldom/xmldom's and xml-crypto's declarations pull the DOM lib into the
// program (see src/federation/saml/xml.ts).
const require = createRequire(import.meta.url);
const xmldom = require('@xmldom/xmldom') as {
  DOMParser: new () => { parseFromString(xml: string, type: string): XmlDocument };
  XMLSerializer: new () => { serializeToString(node: XmlNode): string };
};
const xmlCrypto = require('xml-crypto') as {
  SignedXml: new (options: Record<string, unknown>) => {
    addReference(options: Record<string, unknown>): void;
    computeSignature(xml: string, options?: Record<string, unknown>): void;
    getSignedXml(): string;
  };
};

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
};

export const decodeResponse = (samlResponse: string) => Buffer.from(samlResponse, 'base64').toString('utf8');
export const encodeResponse = (xml: string) => Buffer.from(xml, 'utf8').toString('base64');
export const parse = (xml: string) => new xmldom.DOMParser().parseFromString(xml, 'text/xml');
export const serialize = (node: XmlNode) => new xmldom.XMLSerializer().serializeToString(node);

export const all = (node: XmlNode, ns: string, localName: string): XmlNode[] => Array.from(node.getElementsByTagNameNS(ns, localName));
export const one = (node: XmlNode, ns: string, localName: string): XmlNode => {
  const found = all(node, ns, localName)[0];
  if (!found) throw new Error(`no ${localName}`);
  return found;
};

/** Direct Signature child of an element, if any. */
export function signatureOf(element: XmlNode): XmlNode | undefined {
  for (let n = element.firstChild; n; n = n.nextSibling) if (n.nodeType === 1 && n.localName === 'Signature' && n.namespaceURI === NS.dsig) return n;
  return undefined;
}

/** Edits the decoded Response with `edit` and returns it re-encoded (no re-signing). */
export function tamper(samlResponse: string, edit: (doc: XmlDocument) => void): string {
  const doc = parse(decodeResponse(samlResponse));
  edit(doc);
  return encodeResponse(serialize(doc));
}

/**
 * Removes every signature, applies `edit`, and signs the assertion (and the Response, when
 * `response`) again with `key`, RSA-SHA256 unless `algorithm` says otherwise.
 */
export function resign(
  samlResponse: string,
  key: { privateKey: string; certificate: string },
  edit: (doc: XmlDocument) => void,
  options: { response?: boolean; assertion?: boolean; algorithm?: 'sha256' | 'sha1' } = {},
): string {
  const doc = parse(decodeResponse(samlResponse));
  for (const sig of all(doc, NS.dsig, 'Signature')) sig.parentNode?.removeChild(sig);
  edit(doc);
  let xml = serialize(doc);
  const sha1 = options.algorithm === 'sha1';
  const sign = (input: string, localName: 'Assertion' | 'Response') => {
    const sig = new xmlCrypto.SignedXml({
      privateKey: key.privateKey,
      publicCert: key.certificate,
      signatureAlgorithm: sha1 ? 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' : 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
      canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
    });
    sig.addReference({
      xpath: localName === 'Response' ? "/*[local-name()='Response']" : "//*[local-name()='Assertion']",
      transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
      digestAlgorithm: sha1 ? 'http://www.w3.org/2000/09/xmldsig#sha1' : 'http://www.w3.org/2001/04/xmlenc#sha256',
    });
    // SAML puts the signature right after the Issuer.
    sig.computeSignature(input, {
      location: { reference: `${localName === 'Response' ? '/' : '//'}*[local-name()='${localName}']/*[local-name()='Issuer']`, action: 'after' },
    });
    return sig.getSignedXml();
  };
  if (options.assertion ?? true) xml = sign(xml, 'Assertion');
  if (options.response ?? true) xml = sign(xml, 'Response');
  return encodeResponse(xml);
}

/** Sets an attribute on the first element of that name (namespace, local name). */
export function setAttr(doc: XmlDocument, ns: string, localName: string, name: string, value: string): void {
  one(doc, ns, localName).setAttribute(name, value);
}

const xmlEnc = require('xml-encryption') as {
  decrypt(xml: string, options: { key: string }, cb: (error: Error | null, result?: string) => void): void;
  encrypt(xml: string, options: Record<string, unknown>, cb: (error: Error | null, result?: string) => void): void;
};

/**
 * Decrypts the EncryptedAssertion with the SP key, signs the assertion again with `key` (SHA-1
 * when asked), encrypts it again to the SP certificate (with `encryption` algorithms), and
 * re-signs the Response with `key`.
 */
export async function reencryptAssertion(
  samlResponse: string,
  sp: { key: string; cert: string },
  key: { privateKey: string; certificate: string },
  options: { algorithm?: 'sha256' | 'sha1'; keyEncryptionAlgorithm?: string } = {},
): Promise<string> {
  const doc = parse(decodeResponse(samlResponse));
  const encrypted = one(doc, NS.assertion, 'EncryptedAssertion');
  const plain = await new Promise<string>((resolve, reject) => xmlEnc.decrypt(serialize(encrypted), { key: sp.key }, (e, r) => (e ? reject(e) : resolve(r!))));
  const assertionDoc = parse(plain);
  for (const sig of all(assertionDoc, NS.dsig, 'Signature')) sig.parentNode!.removeChild(sig);
  const sha1 = options.algorithm === 'sha1';
  const signer = new xmlCrypto.SignedXml({
    privateKey: key.privateKey, publicCert: key.certificate,
    signatureAlgorithm: sha1 ? 'http://www.w3.org/2000/09/xmldsig#rsa-sha1' : 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  signer.addReference({
    xpath: "/*[local-name()='Assertion']",
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: sha1 ? 'http://www.w3.org/2000/09/xmldsig#sha1' : 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  signer.computeSignature(serialize(assertionDoc), { location: { reference: "/*[local-name()='Assertion']/*[local-name()='Issuer']", action: 'after' } });
  const reencrypted = await new Promise<string>((resolve, reject) => xmlEnc.encrypt(signer.getSignedXml(), {
    rsa_pub: sp.cert, pem: sp.cert,
    encryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
    keyEncryptionAlgorithm: options.keyEncryptionAlgorithm ?? 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
  }, (e, r) => (e ? reject(e) : resolve(r!))));
  while (encrypted.firstChild) encrypted.removeChild(encrypted.firstChild);
  encrypted.appendChild(parse(reencrypted).documentElement);
  return resign(encodeResponse(serialize(doc)), key, () => {}, { assertion: false, response: true });
}

export const isoIn = (seconds: number) => new Date(Date.now() + seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
