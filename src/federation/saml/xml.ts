// Safe handling of SAML XML before and after node-saml sees it: size caps, no DTDs (no
// DOCTYPE, hence no entity expansion or external entities — SAML core §1.3 forbids DTDs in SAML
// messages: "SAML messages … MUST NOT contain a DTD"), no SHA-1 signature or digest algorithms,
// the HTTP-Redirect binding's DEFLATE inflated with an output cap (SAML bindings §3.4.4.1), and
// small DOM helpers that read elements by namespace and local name (never by prefix).
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';

import { FederationError } from '../errors.ts';

// @xmldom/xmldom 0.8's type declarations pull the whole DOM lib into the program (`/// <reference
// lib="dom" />`), which changes the types of fetch and streams everywhere; so it is loaded
// untyped and described by the few members used here.
export interface Element {
  readonly nodeType: number;
  readonly localName: string | null;
  readonly namespaceURI: string | null;
  readonly parentNode: Element | null;
  readonly firstChild: Element | null;
  readonly nextSibling: Element | null;
  readonly textContent: string | null;
  getAttribute(name: string): string | null;
  getElementsByTagNameNS(ns: string, localName: string): ArrayLike<Element>;
}
export interface Document {
  readonly documentElement: Element | null;
  getElementsByTagNameNS(ns: string, localName: string): ArrayLike<Element>;
}
interface DomParserOptions {
  locator: object;
  errorHandler: { warning(msg: string): void; error(msg: string): void; fatalError(msg: string): void };
}
const { DOMParser } = createRequire(import.meta.url)('@xmldom/xmldom') as {
  DOMParser: new (options: DomParserOptions) => { parseFromString(xml: string, mimeType: string): Document | undefined };
};

export const NS = {
  protocol: 'urn:oasis:names:tc:SAML:2.0:protocol',
  assertion: 'urn:oasis:names:tc:SAML:2.0:assertion',
  metadata: 'urn:oasis:names:tc:SAML:2.0:metadata',
  dsig: 'http://www.w3.org/2000/09/xmldsig#',
  xenc: 'http://www.w3.org/2001/04/xmlenc#',
} as const;

/** Largest SAML message accepted (decoded XML); real responses with many groups stay well under. */
export const MAX_MESSAGE_BYTES = 256 * 1024;

const WEAK_ALGORITHMS = new Set([
  'http://www.w3.org/2000/09/xmldsig#rsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#dsa-sha1',
  'http://www.w3.org/2000/09/xmldsig#hmac-sha1',
  'http://www.w3.org/2000/09/xmldsig#sha1',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-md5',
  'http://www.w3.org/2001/04/xmldsig-more#md5',
]);

export const isWeakAlgorithm = (uri: string) => WEAK_ALGORITHMS.has(uri.trim());

/** Base64 (the HTTP-POST binding) to XML text, refusing what is not base64 or too large. */
export function decodePostMessage(value: string, what: string): string {
  // 4 base64 characters carry 3 bytes; whitespace is allowed by the binding.
  if (value.length > (MAX_MESSAGE_BYTES * 4) / 3 + 4096) {
    throw new FederationError('ERR_SAML_TOO_LARGE', `the ${what} is larger than the gateway accepts`, `over ${MAX_MESSAGE_BYTES} bytes`);
  }
  const compact = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) {
    throw new FederationError('ERR_SAML_MALFORMED', `the ${what} is not valid base64`);
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}

/** The HTTP-Redirect binding: base64 of raw DEFLATE; inflated with an output cap (no deflate bombs). */
export function inflateRedirectMessage(value: string, what: string): string {
  const compressed = Buffer.from(value, 'base64');
  if (compressed.length > MAX_MESSAGE_BYTES) {
    throw new FederationError('ERR_SAML_TOO_LARGE', `the ${what} is larger than the gateway accepts`, `compressed ${compressed.length} bytes`);
  }
  try {
    return inflateRawSync(compressed, { maxOutputLength: MAX_MESSAGE_BYTES }).toString('utf8');
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE' || error instanceof RangeError) {
      throw new FederationError('ERR_SAML_TOO_LARGE', `the ${what} inflates to more than the gateway accepts`, `inflated over ${MAX_MESSAGE_BYTES} bytes`);
    }
    throw new FederationError('ERR_SAML_MALFORMED', `the ${what} is not valid DEFLATE data`);
  }
}

/**
 * Parses XML after refusing DTDs outright (a DOCTYPE is where entity expansion and external
 * entities live; SAML never needs one). Parser warnings and errors are failures, not repairs.
 */
export function parseXml(xml: string, what: string): Document {
  if (Buffer.byteLength(xml, 'utf8') > MAX_MESSAGE_BYTES) {
    throw new FederationError('ERR_SAML_TOO_LARGE', `the ${what} is larger than the gateway accepts`);
  }
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) {
    throw new FederationError('ERR_SAML_DOCTYPE', `the ${what} contains a DTD (DOCTYPE or ENTITY), which SAML forbids`);
  }
  const problems: string[] = [];
  const doc = new DOMParser({
    locator: {},
    errorHandler: {
      warning: (msg: string) => problems.push(msg),
      error: (msg: string) => problems.push(msg),
      fatalError: (msg: string) => problems.push(msg),
    },
  }).parseFromString(xml, 'text/xml');
  if (problems.length > 0 || !doc?.documentElement) {
    throw new FederationError('ERR_SAML_MALFORMED', `the ${what} is not well-formed XML`, problems[0]?.slice(0, 200));
  }
  return doc;
}

/** Child elements (direct children only) with this namespace and local name. */
export function children(parent: Element, ns: string, localName: string): Element[] {
  const found: Element[] = [];
  for (let node = parent.firstChild; node; node = node.nextSibling) {
    if (node.nodeType === 1 && (node as Element).localName === localName && (node as Element).namespaceURI === ns) found.push(node as Element);
  }
  return found;
}

export function child(parent: Element, ns: string, localName: string): Element | undefined {
  return children(parent, ns, localName)[0];
}

/** All descendant elements with this namespace and local name. */
export function descendants(root: Element | Document, ns: string, localName: string): Element[] {
  return Array.from(root.getElementsByTagNameNS(ns, localName));
}

/** Text of an element as a DOM reads it (every text node, comments excluded), trimmed. */
export function text(element: Element | undefined): string | undefined {
  const value = element?.textContent?.trim();
  return value ? value : undefined;
}

export function attr(element: Element | undefined, name: string): string | undefined {
  const value = element?.getAttribute(name);
  return value ? value : undefined;
}

/**
 * Refuses signatures or reference digests with SHA-1 (or MD5) anywhere in the document. (A
 * DigestMethod inside an xenc:EncryptionMethod is RSA-OAEP's hash parameter, not a signature.)
 */
export function refuseWeakAlgorithms(doc: Document | Element, what: string): void {
  for (const localName of ['SignatureMethod', 'DigestMethod']) {
    for (const element of descendants(doc, NS.dsig, localName)) {
      const parent = element.parentNode;
      if (parent?.namespaceURI !== NS.dsig || (parent.localName !== 'SignedInfo' && parent.localName !== 'Reference')) continue;
      const algorithm = attr(element, 'Algorithm') ?? '';
      if (isWeakAlgorithm(algorithm)) {
        throw new FederationError('ERR_SAML_WEAK_ALGORITHM', `the ${what} is signed with a weak algorithm (SHA-1); the IdP must sign with RSA-SHA256 or stronger`, algorithm);
      }
    }
  }
}

// XML Encryption 1.1 §5.4.1: RSA PKCS#1 v1.5 key transport invites padding-oracle attacks;
// 3DES is withdrawn (NIST SP 800-131A).
const WEAK_ENCRYPTION = new Set([
  'http://www.w3.org/2001/04/xmlenc#rsa-1_5',
  'http://www.w3.org/2001/04/xmlenc#tripledes-cbc',
]);

/** Refuses an EncryptedAssertion whose key transport or content cipher is weak (before decrypting). */
export function refuseWeakEncryption(doc: Document, what: string): void {
  for (const method of descendants(doc, NS.xenc, 'EncryptionMethod')) {
    const algorithm = attr(method, 'Algorithm') ?? '';
    if (WEAK_ENCRYPTION.has(algorithm.trim())) {
      throw new FederationError('ERR_SAML_WEAK_ALGORITHM', `the ${what} is encrypted with a weak algorithm (RSA PKCS#1 v1.5 or 3DES); the IdP must use RSA-OAEP and AES`, algorithm);
    }
  }
}

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
export const escapeXml = (value: string) => value.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);

/** The base64 body of a PEM certificate (as metadata carries it). */
export const certificateBody = (pem: string) => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

/** A certificate from metadata (base64 DER) as PEM. */
export function certificatePem(body: string): string {
  const compact = body.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE-----\n${compact.match(/.{1,64}/g)?.join('\n') ?? ''}\n-----END CERTIFICATE-----\n`;
}
