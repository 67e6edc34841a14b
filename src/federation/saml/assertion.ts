// Reading a SAML 2.0 assertion (SAML core §2.3–2.7) — only ever the assertion as its signature
// covers it (the verified, canonical XML node-saml hands back), never the surrounding document —
// and the checks node-saml 5 leaves to its caller (facts in the team notes): the assertion
// Issuer is the IdP's entityID (§2.3.3), a bearer SubjectConfirmationData names our ACS as
// Recipient and this request as InResponseTo (profiles §4.1.4.2), the AudienceRestriction names
// us (§2.5.1.4), and the time conditions hold within the configured skew.
import { FederationError } from '../errors.ts';
import type { Element } from './xml.ts';
import { NS, attr, child, children, descendants, parseXml, text } from './xml.ts';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';

export interface SamlAssertion {
  id: string;
  issuer: string;
  nameId?: string;
  nameIdFormat?: string;
  /** NameQualifier / SPNameQualifier of the NameID (SAML core §2.2.2), echoed in our LogoutRequest. */
  nameQualifier?: string;
  spNameQualifier?: string;
  sessionIndex?: string;
  /** Seconds since the epoch. */
  authnInstant?: number;
  authnContextClassRef?: string;
  /** Bearer subject confirmations. */
  confirmations: { recipient?: string; notBefore?: number; notOnOrAfter?: number; inResponseTo?: string }[];
  notBefore?: number;
  notOnOrAfter?: number;
  /** One list of audiences per AudienceRestriction (each must name us). */
  audienceRestrictions: string[][];
  /** Every attribute as a list of values, however many the IdP sent. */
  attributes: Record<string, string[]>;
}

function instant(value: string | undefined, what: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) throw new FederationError('ERR_SAML_MALFORMED', `the assertion's ${what} is not a valid instant`);
  return Math.floor(ms / 1000);
}

export function readAssertion(signedAssertionXml: string): SamlAssertion {
  const root = parseXml(signedAssertionXml, 'SAML assertion').documentElement!;
  if (root.localName !== 'Assertion' || root.namespaceURI !== NS.assertion) {
    throw new FederationError('ERR_SAML_MALFORMED', 'the signed element is not a SAML assertion');
  }
  const id = attr(root, 'ID');
  const issuer = text(child(root, NS.assertion, 'Issuer'));
  if (!id || !issuer) throw new FederationError('ERR_SAML_MALFORMED', 'the assertion lacks its ID or Issuer');
  const subject = child(root, NS.assertion, 'Subject');
  const nameIdElement = subject ? child(subject, NS.assertion, 'NameID') : undefined;
  const confirmations = (subject ? children(subject, NS.assertion, 'SubjectConfirmation') : [])
    .filter((c) => attr(c, 'Method') === BEARER)
    .map((c) => {
      const data = child(c, NS.assertion, 'SubjectConfirmationData');
      const recipient = attr(data, 'Recipient');
      const notBefore = instant(attr(data, 'NotBefore'), 'SubjectConfirmationData NotBefore');
      const notOnOrAfter = instant(attr(data, 'NotOnOrAfter'), 'SubjectConfirmationData NotOnOrAfter');
      const inResponseTo = attr(data, 'InResponseTo');
      return {
        ...(recipient ? { recipient } : {}),
        ...(notBefore !== undefined ? { notBefore } : {}),
        ...(notOnOrAfter !== undefined ? { notOnOrAfter } : {}),
        ...(inResponseTo ? { inResponseTo } : {}),
      };
    });
  const conditions = child(root, NS.assertion, 'Conditions');
  const authn = child(root, NS.assertion, 'AuthnStatement');
  const attributes: Record<string, string[]> = {};
  for (const statement of children(root, NS.assertion, 'AttributeStatement')) {
    for (const attribute of children(statement, NS.assertion, 'Attribute')) {
      const name = attr(attribute, 'Name');
      if (!name) continue;
      const values = children(attribute, NS.assertion, 'AttributeValue').map((v: Element) => v.textContent?.trim() ?? '').filter((v) => v.length > 0);
      attributes[name] = [...(attributes[name] ?? []), ...values];
    }
  }
  const nameId = text(nameIdElement);
  const nameIdFormat = attr(nameIdElement, 'Format');
  const nameQualifier = attr(nameIdElement, 'NameQualifier');
  const spNameQualifier = attr(nameIdElement, 'SPNameQualifier');
  const sessionIndex = attr(authn, 'SessionIndex');
  const authnInstant = instant(attr(authn, 'AuthnInstant'), 'AuthnInstant');
  const authnContextClassRef = authn ? text(descendants(authn, NS.assertion, 'AuthnContextClassRef')[0]) : undefined;
  const notBefore = instant(attr(conditions, 'NotBefore'), 'NotBefore');
  const notOnOrAfter = instant(attr(conditions, 'NotOnOrAfter'), 'NotOnOrAfter');
  return {
    id,
    issuer,
    ...(nameId ? { nameId } : {}),
    ...(nameIdFormat ? { nameIdFormat } : {}),
    ...(nameQualifier ? { nameQualifier } : {}),
    ...(spNameQualifier ? { spNameQualifier } : {}),
    ...(sessionIndex ? { sessionIndex } : {}),
    ...(authnInstant !== undefined ? { authnInstant } : {}),
    ...(authnContextClassRef ? { authnContextClassRef } : {}),
    confirmations,
    ...(notBefore !== undefined ? { notBefore } : {}),
    ...(notOnOrAfter !== undefined ? { notOnOrAfter } : {}),
    audienceRestrictions: (conditions ? children(conditions, NS.assertion, 'AudienceRestriction') : [])
      .map((r) => children(r, NS.assertion, 'Audience').map((a) => text(a) ?? '')),
    attributes,
  };
}

export interface AssertionExpectations {
  idpEntityId: string;
  spEntityId: string;
  acsUrl: string;
  /** The Response's InResponseTo (envelope), if any. */
  inResponseTo?: string;
  /** Seconds since the epoch. */
  now: number;
  skew: number;
}

/** The checks node-saml does not do (or does not do the way we need); throws the first failure. */
export function checkAssertion(assertion: SamlAssertion, expected: AssertionExpectations): { inResponseTo?: string; expiresAt: number } {
  const { now, skew } = expected;
  if (assertion.issuer !== expected.idpEntityId) {
    throw new FederationError('ERR_SAML_ISSUER', 'the assertion was not issued by the configured identity provider', `Issuer ${assertion.issuer}`);
  }
  if (assertion.audienceRestrictions.length === 0 || !assertion.audienceRestrictions.every((list) => list.includes(expected.spEntityId))) {
    throw new FederationError('ERR_SAML_AUDIENCE', 'the assertion is meant for another service provider (Audience)', `audiences ${assertion.audienceRestrictions.flat().join(',')}`);
  }
  if (assertion.notBefore !== undefined && assertion.notBefore > now + skew) {
    throw new FederationError('ERR_SAML_TIME', 'the assertion is not valid yet (check the clocks of the IdP and the gateway)');
  }
  if (assertion.notOnOrAfter !== undefined && assertion.notOnOrAfter <= now - skew) {
    throw new FederationError('ERR_SAML_TIME', 'the assertion has expired; start again from the application');
  }
  // Profiles §4.1.4.3: at least one bearer confirmation that is valid for us, now.
  const forUs = assertion.confirmations.filter((c) => c.recipient === expected.acsUrl);
  if (forUs.length === 0) {
    throw new FederationError('ERR_SAML_RECIPIENT', 'the assertion is addressed to another endpoint (Recipient)', `recipients ${assertion.confirmations.map((c) => c.recipient ?? '-').join(',')}`);
  }
  const current = forUs.filter((c) => c.notOnOrAfter !== undefined && c.notOnOrAfter > now - skew && (c.notBefore === undefined || c.notBefore <= now + skew));
  if (current.length === 0) throw new FederationError('ERR_SAML_TIME', 'the assertion has expired; start again from the application', 'SubjectConfirmationData NotOnOrAfter');
  const confirmation = current[0]!;
  // Only the signed InResponseTo counts; an envelope (maybe unsigned) claiming another is refused.
  if (expected.inResponseTo !== undefined && confirmation.inResponseTo !== expected.inResponseTo) {
    throw new FederationError('ERR_SAML_IN_RESPONSE_TO', 'the assertion answers a different sign-in request', 'InResponseTo mismatch between Response and assertion');
  }
  const { inResponseTo } = confirmation;
  const expiresAt = Math.min(confirmation.notOnOrAfter!, assertion.notOnOrAfter ?? Number.POSITIVE_INFINITY) + skew;
  return { ...(inResponseTo ? { inResponseTo } : {}), expiresAt };
}
