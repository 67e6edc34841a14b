// Messages the gateway sends as a SAML service provider, and its SP metadata:
//   AuthnRequest (SAML core §3.4.1) and LogoutRequest/LogoutResponse (§3.7) over the HTTP-Redirect
//   binding (SAML bindings §3.4: raw DEFLATE, base64, URL-encoded; when signed, the signature covers
//   `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as sent, §3.4.4.1), RSA-SHA256 only;
//   SP metadata (SAML metadata §2.4.4 SPSSODescriptor) with the ACS, SLO endpoints, signing
//   certificates (current and next, for rollover) and the encryption certificate.
import { createPrivateKey, randomBytes, sign } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';

import { certificateBody, escapeXml } from './xml.ts';

export const RSA_SHA256 = 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256';
const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';
const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** A message id: starts with a letter or underscore (xs:ID), 160 random bits. */
export const newMessageId = () => `_${randomBytes(20).toString('hex')}`;

const isoInstant = (seconds: number) => new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

export interface RedirectSigner {
  privateKey: string;
}

/** The query of an HTTP-Redirect binding message (signed when a key is given). */
export function redirectQuery(kind: 'SAMLRequest' | 'SAMLResponse', xml: string, relayState: string | undefined, signer?: RedirectSigner): string {
  const parts = [`${kind}=${encodeURIComponent(deflateRawSync(Buffer.from(xml, 'utf8')).toString('base64'))}`];
  if (relayState !== undefined) parts.push(`RelayState=${encodeURIComponent(relayState)}`);
  if (signer) {
    parts.push(`SigAlg=${encodeURIComponent(RSA_SHA256)}`);
    const signature = sign('sha256', Buffer.from(parts.join('&'), 'utf8'), createPrivateKey(signer.privateKey));
    parts.push(`Signature=${encodeURIComponent(signature.toString('base64'))}`);
  }
  return parts.join('&');
}

export function withQuery(endpoint: string, query: string): URL {
  const url = new URL(endpoint);
  return new URL(`${url.href}${url.search ? '&' : '?'}${query}`);
}

export function authnRequestXml(input: {
  id: string;
  now: number;
  destination: string;
  acsUrl: string;
  spEntityId: string;
  nameIdFormat?: string;
  forceAuthn?: boolean;
}): string {
  return `<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`
    + ` ID="${escapeXml(input.id)}" Version="2.0" IssueInstant="${isoInstant(input.now)}" Destination="${escapeXml(input.destination)}"`
    + ` ProtocolBinding="${BINDING_POST}" AssertionConsumerServiceURL="${escapeXml(input.acsUrl)}"${input.forceAuthn ? ' ForceAuthn="true"' : ''}>`
    + `<saml:Issuer>${escapeXml(input.spEntityId)}</saml:Issuer>`
    + (input.nameIdFormat ? `<samlp:NameIDPolicy Format="${escapeXml(input.nameIdFormat)}" AllowCreate="true"/>` : '')
    + `</samlp:AuthnRequest>`;
}

export function logoutRequestXml(input: {
  id: string;
  now: number;
  destination: string;
  spEntityId: string;
  nameId: string;
  nameIdFormat?: string;
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
}): string {
  return `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`
    + ` ID="${escapeXml(input.id)}" Version="2.0" IssueInstant="${isoInstant(input.now)}" Destination="${escapeXml(input.destination)}">`
    + `<saml:Issuer>${escapeXml(input.spEntityId)}</saml:Issuer>`
    // The NameID exactly as the IdP sent it (SAML core §3.7.1: it must match the principal's).
    + `<saml:NameID${input.nameQualifier ? ` NameQualifier="${escapeXml(input.nameQualifier)}"` : ''}`
    + `${input.spNameQualifier ? ` SPNameQualifier="${escapeXml(input.spNameQualifier)}"` : ''}`
    + `${input.nameIdFormat ? ` Format="${escapeXml(input.nameIdFormat)}"` : ''}>${escapeXml(input.nameId)}</saml:NameID>`
    + (input.sessionIndex ? `<samlp:SessionIndex>${escapeXml(input.sessionIndex)}</samlp:SessionIndex>` : '')
    + `</samlp:LogoutRequest>`;
}

export function logoutResponseXml(input: { id: string; now: number; destination: string; spEntityId: string; inResponseTo: string; success: boolean }): string {
  const status = input.success ? 'urn:oasis:names:tc:SAML:2.0:status:Success' : 'urn:oasis:names:tc:SAML:2.0:status:Responder';
  return `<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"`
    + ` ID="${escapeXml(input.id)}" Version="2.0" IssueInstant="${isoInstant(input.now)}" Destination="${escapeXml(input.destination)}" InResponseTo="${escapeXml(input.inResponseTo)}">`
    + `<saml:Issuer>${escapeXml(input.spEntityId)}</saml:Issuer>`
    + `<samlp:Status><samlp:StatusCode Value="${status}"/></samlp:Status>`
    + `</samlp:LogoutResponse>`;
}

export function spMetadataXml(input: {
  entityId: string;
  acsUrl: string;
  sloUrl: string;
  signingCerts: string[];
  encryptionCert?: string;
  nameIdFormat?: string;
  authnRequestsSigned: boolean;
}): string {
  const keyDescriptor = (use: 'signing' | 'encryption', pem: string) =>
    `<md:KeyDescriptor use="${use}"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certificateBody(pem)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`;
  return `<?xml version="1.0" encoding="UTF-8"?>\n`
    + `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${escapeXml(input.entityId)}">`
    + `<md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="${input.authnRequestsSigned}" WantAssertionsSigned="true">`
    + input.signingCerts.map((pem) => keyDescriptor('signing', pem)).join('')
    + (input.encryptionCert ? keyDescriptor('encryption', input.encryptionCert) : '')
    + `<md:SingleLogoutService Binding="${BINDING_REDIRECT}" Location="${escapeXml(input.sloUrl)}"/>`
    + `<md:SingleLogoutService Binding="${BINDING_POST}" Location="${escapeXml(input.sloUrl)}"/>`
    + (input.nameIdFormat ? `<md:NameIDFormat>${escapeXml(input.nameIdFormat)}</md:NameIDFormat>` : '')
    + `<md:AssertionConsumerService Binding="${BINDING_POST}" Location="${escapeXml(input.acsUrl)}" index="0" isDefault="true"/>`
    + `</md:SPSSODescriptor></md:EntityDescriptor>\n`;
}
