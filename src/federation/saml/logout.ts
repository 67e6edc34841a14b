// SAML Single Logout messages from the IdP (SAML core §3.7; profiles §4.4): LogoutRequest and
// LogoutResponse over HTTP-Redirect (bindings §3.4) and HTTP-POST (§3.5). node-saml accepts an
// unsigned redirect-binding message (it checks a signature only when one is present), so the
// checks live here and a signature is always required:
//   redirect — SigAlg must be RSA-SHA256 (or stronger), the signature verifies over the octets
//              `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as received (§3.4.4.1), with one of
//              the IdP's metadata certificates; the message is inflated with an output cap;
//   post     — an enveloped XML signature over the root element, verified by xml-crypto with a
//              metadata certificate, and the message read only from what that signature covers.
// Then: the Issuer is the IdP, the Destination is our SLO endpoint (required: every message we
// accept is signed, and bindings §3.4.5.2 / §3.5.5.2 require Destination on signed messages),
// NotOnOrAfter has not passed. Matching a LogoutResponse to the LogoutRequest we sent (its
// InResponseTo, this browser, RelayState) is the federation service's job.
import { createPublicKey, verify } from 'node:crypto';
import { createRequire } from 'node:module';

import { FederationError } from '../errors.ts';
import type { Element } from './xml.ts';
import { NS, attr, child, children, decodePostMessage, inflateRedirectMessage, isWeakAlgorithm, parseXml, refuseWeakAlgorithms, text } from './xml.ts';

const SIG_ALGS: Record<string, string> = {
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': 'sha256',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha384': 'sha384',
  'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': 'sha512',
};
const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';

// xml-crypto's declarations pull the DOM lib into the program (see ./xml.ts): loaded untyped.
const { SignedXml } = createRequire(import.meta.url)('xml-crypto') as {
  SignedXml: new (options: { publicCert: string }) => {
    loadSignature(node: unknown): void;
    checkSignature(xml: string): boolean;
    getReferences(): { uri?: string }[];
    getSignedReferences(): string[];
  };
};

export type LogoutMessage =
  | { kind: 'request'; id: string; issuer: string; nameId?: string; sessionIndexes: string[]; notOnOrAfter?: number; relayState?: string }
  | { kind: 'response'; id: string; issuer: string; inResponseTo?: string; success: boolean; status?: string; relayState?: string };

const invalid = (message: string, detail?: string) => new FederationError('ERR_SAML_LOGOUT_INVALID', `invalid SAML logout message: ${message}`, detail);

/** The raw (still URL-encoded) value of each query parameter, as the signature covers them. */
function rawParams(query: string): Map<string, string> {
  const params = new Map<string, string>();
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq);
    if (params.has(name)) throw invalid(`parameter ${name} is repeated`);
    params.set(name, part.slice(eq + 1));
  }
  return params;
}

const decode = (value: string) => decodeURIComponent(value.replace(/\+/g, ' '));

/** HTTP-Redirect binding: verifies the query signature, then inflates the message (capped). */
export function openRedirectMessage(rawQuery: string, certificates: readonly string[]): { xml: string; relayState?: string } {
  const params = rawParams(rawQuery);
  const kind = params.has('SAMLRequest') ? 'SAMLRequest' : params.has('SAMLResponse') ? 'SAMLResponse' : undefined;
  if (!kind) throw invalid('no SAMLRequest or SAMLResponse');
  const sigAlg = params.get('SigAlg');
  const signature = params.get('Signature');
  if (!sigAlg || !signature) throw invalid('it is not signed (the gateway requires signed logout messages)');
  const algorithm = decode(sigAlg);
  if (isWeakAlgorithm(algorithm)) throw new FederationError('ERR_SAML_WEAK_ALGORITHM', 'invalid SAML logout message: it is signed with a weak algorithm (SHA-1)', algorithm);
  const hash = SIG_ALGS[algorithm];
  if (!hash) throw invalid(`unsupported signature algorithm ${algorithm}`);
  const signed = [`${kind}=${params.get(kind)}`, ...(params.has('RelayState') ? [`RelayState=${params.get('RelayState')}`] : []), `SigAlg=${sigAlg}`].join('&');
  const signatureBytes = Buffer.from(decode(signature), 'base64');
  const ok = certificates.some((pem) => {
    try {
      return verify(hash, Buffer.from(signed, 'utf8'), createPublicKey(pem), signatureBytes);
    } catch {
      return false;
    }
  });
  if (!ok) throw invalid('its signature does not verify with any signing certificate of the identity provider');
  const relayState = params.has('RelayState') ? decode(params.get('RelayState')!) : undefined;
  return { xml: inflateRedirectMessage(decode(params.get(kind)!), 'logout message'), ...(relayState !== undefined ? { relayState } : {}) };
}

/** HTTP-POST binding: verifies the enveloped signature over the root; returns only the signed XML. */
export function openPostMessage(message: string, certificates: readonly string[]): string {
  const xml = decodePostMessage(message, 'logout message');
  const doc = parseXml(xml, 'logout message');
  refuseWeakAlgorithms(doc, 'logout message');
  const root = doc.documentElement!;
  const signatures = children(root, NS.dsig, 'Signature');
  if (signatures.length !== 1) throw invalid('it is not signed (the gateway requires signed logout messages)');
  const id = attr(root, 'ID');
  for (const pem of certificates) {
    const sig = new SignedXml({ publicCert: pem });
    sig.loadSignature(signatures[0]);
    const references = sig.getReferences();
    // Enveloped, over the root itself: one reference, to the root's ID.
    if (!id || references.length !== 1 || references[0]!.uri !== `#${id}`) throw invalid('its signature does not cover the message');
    let ok: boolean;
    try {
      ok = sig.checkSignature(xml);
    } catch {
      ok = false;
    }
    if (ok) {
      const signedXml = sig.getSignedReferences()[0];
      if (signedXml) return signedXml;
    }
  }
  throw invalid('its signature does not verify with any signing certificate of the identity provider');
}

function instant(value: string | undefined): number | undefined {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/** Reads a (verified) logout message and checks Issuer, Destination and NotOnOrAfter. */
export function readLogoutMessage(xml: string, expected: { idpEntityId: string; sloUrl: string; now: number; skew: number }): LogoutMessage {
  const root: Element = parseXml(xml, 'logout message').documentElement!;
  if (root.namespaceURI !== NS.protocol || (root.localName !== 'LogoutRequest' && root.localName !== 'LogoutResponse')) {
    throw invalid('it is neither a LogoutRequest nor a LogoutResponse');
  }
  const id = attr(root, 'ID');
  const issuer = text(child(root, NS.assertion, 'Issuer'));
  if (!id || !issuer) throw invalid('it lacks its ID or Issuer');
  if (issuer !== expected.idpEntityId) {
    throw new FederationError('ERR_SAML_ISSUER', 'invalid SAML logout message: it was not issued by the configured identity provider', `Issuer ${issuer}`);
  }
  const destination = attr(root, 'Destination');
  if (destination !== expected.sloUrl) {
    throw new FederationError('ERR_SAML_DESTINATION', 'invalid SAML logout message: it is addressed to another endpoint (Destination)', `Destination ${destination ?? 'absent'}`);
  }
  if (root.localName === 'LogoutRequest') {
    const notOnOrAfter = instant(attr(root, 'NotOnOrAfter'));
    if (notOnOrAfter !== undefined && notOnOrAfter <= expected.now - expected.skew) throw invalid('it has expired');
    const nameId = text(child(root, NS.assertion, 'NameID'));
    return {
      kind: 'request', id, issuer,
      ...(nameId ? { nameId } : {}),
      sessionIndexes: children(root, NS.protocol, 'SessionIndex').map((s) => text(s) ?? '').filter(Boolean),
      ...(notOnOrAfter !== undefined ? { notOnOrAfter } : {}),
    };
  }
  const status = attr(child(child(root, NS.protocol, 'Status') ?? root, NS.protocol, 'StatusCode'), 'Value');
  const inResponseTo = attr(root, 'InResponseTo');
  return { kind: 'response', id, issuer, ...(inResponseTo ? { inResponseTo } : {}), success: status === STATUS_SUCCESS, ...(status ? { status } : {}) };
}
