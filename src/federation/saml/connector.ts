// The generic SAML 2.0 connector (Web Browser SSO profile, SAML profiles §4.1), specialized per
// vendor by a SAML preset. The gateway is the service provider:
//   begin      — an AuthnRequest over HTTP-Redirect (signed when the SP has a key), whose ID the
//                caller stores as the pending request (InResponseTo) in Redis;
//   validate   — a posted SAMLResponse (HTTP-POST binding): size cap, no DTD, no SHA-1, then
//                node-saml 5 with its strict options (signed assertion always, signed Response
//                per preset, audience, time with the configured skew, InResponseTo left to us),
//                then our own checks on the signed assertion only (Issuer, Audience, Recipient,
//                time, InResponseTo) and the Response's Destination. Nothing is consumed here:
//                the caller consumes the pending request and the assertion id once all passed.
//   metadata   — the SP metadata the IdP admin imports.
//   logout     — SP-initiated Single Logout (profiles §4.4.3): endSessionUrl hands the session's
//                NameID (value, Format, qualifiers, exactly as the IdP sent them) and SessionIndex
//                to the gateway's own /logout step (a one-time token in Redis), which binds the
//                browser and stores the LogoutRequest ID before sending the browser to the IdP;
//                the IdP's LogoutResponse is then matched to it (federation service).
// IdP metadata is parsed by us (./metadata.ts) and refreshed; every published signing
// certificate verifies (rollover).
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

import { SAML, ValidateInResponseTo } from '@node-saml/node-saml';
import type { CacheProvider } from '@node-saml/node-saml';
import { decrypt } from 'xml-encryption';

import type { SamlIdentityProviderConfig } from '../../config/index.ts';
import type { FederatedIdentity } from '../../identity/index.ts';
import type { Logger } from '../../ops/index.ts';
import type { UpstreamSession } from '../../session/index.ts';
import type { Store } from '../../store/index.ts';
import { FederationError } from '../errors.ts';
import type { PresetContext } from '../presets/preset.ts';
import { NAMEID_PERSISTENT, samlPresetFor } from '../presets/saml.ts';
import type { Connector, ProbeCheck, SignInTransaction } from '../types.ts';
import { checkAssertion, readAssertion } from './assertion.ts';
import { openPostMessage, openRedirectMessage, readLogoutMessage } from './logout.ts';
import type { LogoutMessage } from './logout.ts';
import { authnRequestXml, logoutRequestXml, logoutResponseXml, newMessageId, redirectQuery, spMetadataXml, withQuery } from './messages.ts';
import { createMetadataSource } from './metadata.ts';
import type { IdpCertificate, IdpMetadata, MetadataSource } from './metadata.ts';
import { NS, attr, child, children, decodePostMessage, descendants, parseXml, refuseWeakAlgorithms, refuseWeakEncryption, text } from './xml.ts';

export interface SamlConnectorDeps {
  /** The gateway's issuer (public base URL). */
  issuer: string;
  fetch: typeof fetch;
  /** Seconds since the epoch. */
  now: () => number;
  logger: Logger;
  /** Holds the hand-off from endSessionUrl to the gateway's /logout step (not needed by `idp test`). */
  store?: Store;
}

/** The sign-out endSessionUrl hands to the /logout step (taken once there). */
export interface LogoutHandoff {
  upstream: UpstreamSession;
  /** RelayState: the caller's state, coming back with the LogoutResponse. */
  state: string;
}

const LOGOUT_HANDOFF_TTL = 600;
const logoutHandoffKey = (idp: string, token: string) => `saml:logout:handoff:${idp}:${createHash('sha256').update(token).digest('base64url')}`;

export interface ValidatedSamlResponse {
  identity: FederatedIdentity;
  /** SessionIndex and NameID (with its Format and qualifiers), for SAML Single Logout. */
  upstream: UpstreamSession;
  assertionId: string;
  /** The request this answers (from the signed assertion); absent for unsolicited responses. */
  inResponseTo?: string;
  /** Seconds since the epoch after which the assertion is no longer usable (replay-cache TTL). */
  expiresAt: number;
}

export interface SamlConnector extends Connector {
  readonly type: 'saml';
  readonly spEntityId: string;
  readonly acsUrl: string;
  readonly sloUrl: string;
  readonly config: SamlIdentityProviderConfig;
  /** SP metadata XML for the IdP admin. */
  spMetadata(): string;
  validateResponse(samlResponse: string): Promise<ValidatedSamlResponse>;
  idpMetadata(): Promise<IdpMetadata>;
  /** The signing certificates of the metadata in use (none before it is first loaded). */
  signingCertificates(): readonly IdpCertificate[];
  /** A signed LogoutRequest or LogoutResponse from the IdP (either binding), verified and read. */
  openLogout(input: { binding: 'redirect'; query: string } | { binding: 'post'; message: string; relayState?: string }): Promise<LogoutMessage>;
  /** The sign-out handed over by endSessionUrl (taken once), if the token is current. */
  takeLogoutHandoff(token: string): Promise<LogoutHandoff | undefined>;
  /** Where to send the browser with our LogoutRequest (HTTP-Redirect, signed when we have a key). */
  logoutRequestUrl(input: { id: string; upstream: UpstreamSession; relayState: string }): Promise<URL | undefined>;
  /** Where to send the browser with our LogoutResponse (HTTP-Redirect, signed when we have a key). */
  logoutResponseUrl(input: { inResponseTo: string; relayState?: string; success: boolean }): Promise<URL | undefined>;
}

const STATUS_SUCCESS = 'urn:oasis:names:tc:SAML:2.0:status:Success';
const decryptXml = promisify(decrypt) as (xml: string, options: { key: string; disallowDecryptionWithInsecureAlgorithm: boolean }) => Promise<string>;

/** node-saml keeps pending request ids in a cache; ours live in Redis, so its cache does nothing. */
const noCache: CacheProvider = {
  saveAsync: async () => null,
  getAsync: async () => null,
  removeAsync: async () => null,
};

/** node-saml's messages, as the stable codes and words the error page and audit use. */
function describeSamlFailure(idp: string, error: unknown): FederationError {
  if (error instanceof FederationError) return error;
  const message = (error as Error)?.message ?? String(error);
  if (/signature|multiple assertions|ID cannot refer|too many transforms|Cannot obtain assertion/i.test(message)) {
    return new FederationError('ERR_SAML_SIGNATURE_INVALID', `the SAML response from "${idp}" is not signed by the identity provider's certificate`, message);
  }
  if (/not yet valid|expired/i.test(message)) {
    return new FederationError('ERR_SAML_TIME', /not yet/i.test(message) ? 'the assertion is not valid yet (check the clocks of the IdP and the gateway)' : 'the assertion has expired; start again from the application', message);
  }
  if (/audience/i.test(message)) return new FederationError('ERR_SAML_AUDIENCE', 'the assertion is meant for another service provider (Audience)', message);
  if (/status code|Responder|Requester/i.test(message)) return new FederationError('ERR_FEDERATION_IDP_ERROR', `the identity provider "${idp}" refused the sign-in`, message);
  if (/InResponseTo/i.test(message)) return new FederationError('ERR_SAML_IN_RESPONSE_TO', 'the SAML response answers a different sign-in request', message);
  return new FederationError('ERR_SAML_MALFORMED', `the SAML response from "${idp}" could not be processed`, message);
}

export function createSamlConnector(config: SamlIdentityProviderConfig, deps: SamlConnectorDeps): SamlConnector {
  const preset = samlPresetFor(config);
  const context: PresetContext = { fetch: deps.fetch, now: deps.now, logger: deps.logger };
  const base = `${deps.issuer}/federation/saml/${config.id}`;
  const acsUrl = `${base}/acs`;
  const sloUrl = `${base}/slo`;
  const spEntityId = config.sp.entityId ?? `${base}/metadata`;
  const wantResponseSigned = config.wantResponseSigned ?? preset.wantResponseSigned;
  const nameIdFormat = config.nameIdFormat ?? preset.nameIdFormat;
  const signRequests = config.signAuthnRequests ?? Boolean(config.sp.signingKey);
  const metadata: MetadataSource = createMetadataSource(config, deps);

  const saml = new SAML({
    callbackUrl: acsUrl,
    issuer: spEntityId,
    audience: spEntityId,
    idpCert: (callback) => {
      metadata.get().then((m) => callback(null, m.signingCertificates.map((c) => c.pem)), (error: unknown) => callback(error as Error));
    },
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: wantResponseSigned,
    acceptedClockSkewMs: config.clockSkew * 1000,
    validateInResponseTo: ValidateInResponseTo.never,
    cacheProvider: noCache,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'sha256',
    ...(config.sp.decryptionKey ? { decryptionPvk: config.sp.decryptionKey } : {}),
  });

  const keyedByNameId = (config.attributes.subject ?? preset.attributes.subject).toLowerCase() === 'nameid';
  const signer = () => (config.sp.signingKey ? { privateKey: config.sp.signingKey } : undefined);
  const store = (): Store => {
    if (!deps.store) throw new TypeError('createSamlConnector: single logout needs deps.store');
    return deps.store;
  };

  async function loadMetadata(): Promise<IdpMetadata> {
    try {
      return await metadata.get();
    } catch (error) {
      if (error instanceof FederationError) throw error;
      throw new FederationError('ERR_SAML_METADATA', `the metadata of "${config.id}" cannot be loaded`, (error as Error).message);
    }
  }

  return {
    type: 'saml',
    id: config.id,
    displayName: config.displayName ?? config.id,
    preset: config.preset,
    domains: config.domains,
    browserEndpoints() {
      const idp = metadata.current();
      if (!idp) return config.metadata.url ? [config.metadata.url] : [];
      return [idp.ssoUrl, idp.slo.redirect, idp.slo.post].filter((url): url is string => url !== undefined);
    },
    spEntityId,
    acsUrl,
    sloUrl,
    config,

    async begin(tx: SignInTransaction, hints) {
      if (!tx.requestId) throw new TypeError('a SAML sign-in transaction needs requestId');
      const idp = await loadMetadata();
      const xml = authnRequestXml({
        id: tx.requestId, now: deps.now(), destination: idp.ssoUrl, acsUrl, spEntityId,
        ...(nameIdFormat ? { nameIdFormat } : {}),
        ...(hints.maxAge === 0 ? { forceAuthn: true } : {}),
      });
      const query = redirectQuery('SAMLRequest', xml, tx.state, signRequests && config.sp.signingKey ? { privateKey: config.sp.signingKey } : undefined);
      return withQuery(idp.ssoUrl, query);
    },

    async complete() {
      throw new FederationError('ERR_FEDERATION_STATE', 'a SAML sign-in completes at its assertion consumer service');
    },

    async verifyLogoutToken() {
      throw new FederationError('ERR_LOGOUT_TOKEN_INVALID', 'invalid logout token: this identity provider uses SAML Single Logout');
    },

    // SP-initiated Single Logout (profiles §4.4.3). The browser first passes through our own
    // /logout step (which binds it with the SAML cookie, as for an AuthnRequest, and records the
    // LogoutRequest ID the LogoutResponse must answer); only then is it sent to the IdP.
    async endSessionUrl({ state, upstream }) {
      if (!config.upstreamLogout || !upstream?.sub) return undefined;
      const idp = await loadMetadata();
      if (!idp.slo.redirect) return undefined;
      const token = randomBytes(24).toString('base64url');
      const handoff: LogoutHandoff = { upstream, state };
      await store().set(logoutHandoffKey(config.id, token), JSON.stringify(handoff), { ttl: LOGOUT_HANDOFF_TTL });
      return new URL(`${base}/logout?${new URLSearchParams({ token })}`);
    },

    async takeLogoutHandoff(token) {
      const raw = await store().take(logoutHandoffKey(config.id, token));
      return raw ? (JSON.parse(raw) as LogoutHandoff) : undefined;
    },

    async logoutRequestUrl({ id, upstream, relayState }) {
      const idp = await loadMetadata();
      if (!idp.slo.redirect || !upstream.sub) return undefined;
      const nameId = upstream.samlNameId;
      // Sessions made before the Format was kept: keyed by NameID, it was persistent (anything
      // else is refused at sign-in); otherwise it is left out (unspecified).
      const format = nameId ? nameId.format : keyedByNameId ? NAMEID_PERSISTENT : undefined;
      const xml = logoutRequestXml({
        id, now: deps.now(), destination: idp.slo.redirect, spEntityId, nameId: upstream.sub,
        ...(format ? { nameIdFormat: format } : {}),
        ...(nameId?.nameQualifier ? { nameQualifier: nameId.nameQualifier } : {}),
        ...(nameId?.spNameQualifier ? { spNameQualifier: nameId.spNameQualifier } : {}),
        ...(upstream.sid ? { sessionIndex: upstream.sid } : {}),
      });
      return withQuery(idp.slo.redirect, redirectQuery('SAMLRequest', xml, relayState, signer()));
    },

    async openLogout(input) {
      const idp = await loadMetadata();
      const certificates = idp.signingCertificates.map((c) => c.pem);
      let xml: string;
      let relayState: string | undefined;
      if (input.binding === 'redirect') {
        ({ xml, relayState } = openRedirectMessage(input.query, certificates));
      } else {
        xml = openPostMessage(input.message, certificates);
        relayState = input.relayState;
      }
      const message = readLogoutMessage(xml, { idpEntityId: idp.entityId, sloUrl, now: deps.now(), skew: config.clockSkew });
      return { ...message, ...(relayState !== undefined ? { relayState } : {}) };
    },

    async logoutResponseUrl({ inResponseTo, relayState, success }) {
      const idp = await loadMetadata();
      const endpoint = idp.slo.redirect;
      if (!endpoint) return undefined;
      const xml = logoutResponseXml({ id: newMessageId(), now: deps.now(), destination: endpoint, spEntityId, inResponseTo, success });
      return withQuery(endpoint, redirectQuery('SAMLResponse', xml, relayState, signer()));
    },

    spMetadata() {
      return spMetadataXml({
        entityId: spEntityId, acsUrl, sloUrl,
        signingCerts: [config.sp.signingCert, config.sp.nextSigningCert].filter((c): c is string => Boolean(c)),
        ...(config.sp.decryptionCert ? { encryptionCert: config.sp.decryptionCert } : {}),
        ...(nameIdFormat ? { nameIdFormat } : {}),
        authnRequestsSigned: signRequests,
      });
    },

    idpMetadata: loadMetadata,
    signingCertificates: () => metadata.current()?.signingCertificates ?? [],

    async validateResponse(samlResponse) {
      const xml = decodePostMessage(samlResponse, 'SAML response');
      const doc = parseXml(xml, 'SAML response');
      const root = doc.documentElement!;
      if (root.localName !== 'Response' || root.namespaceURI !== NS.protocol) {
        throw new FederationError('ERR_SAML_MALFORMED', 'the message posted is not a SAML Response');
      }
      refuseWeakAlgorithms(doc, 'SAML response');
      refuseWeakEncryption(doc, 'SAML response');
      // Signature wrapping (XSW1–8) moves a signed element and adds the attacker's: one Response,
      // one assertion (plain or encrypted) and that one a child of the Response, or nothing is read.
      const assertions = [...descendants(doc, NS.assertion, 'Assertion'), ...descendants(doc, NS.assertion, 'EncryptedAssertion')];
      const responses = descendants(doc, NS.protocol, 'Response');
      if (responses.length !== 1 || assertions.length > 1 || (assertions.length === 1 && assertions[0]!.parentNode !== root)) {
        throw new FederationError('ERR_SAML_SIGNATURE_INVALID', `the SAML response from "${config.id}" is not signed by the identity provider's certificate`,
          `signature wrapping: ${responses.length} Response and ${assertions.length} assertion element(s), ${assertions.length === 1 ? 'not a child of the Response' : 'one expected'}`);
      }
      const encrypted = children(root, NS.assertion, 'EncryptedAssertion');
      if (encrypted.length > 0) {
        if (!config.sp.decryptionKey) {
          throw new FederationError('ERR_SAML_MALFORMED', `the assertion from "${config.id}" is encrypted but the gateway has no decryption key (sp.decryptionKey)`);
        }
        // What is inside gets the same DTD and algorithm rules as what is not (node-saml then
        // decrypts again for its own checks).
        for (const element of encrypted) {
          let plain: string;
          try {
            plain = await decryptXml(xmlOf(element), { key: config.sp.decryptionKey, disallowDecryptionWithInsecureAlgorithm: true });
          } catch (error) {
            throw new FederationError('ERR_SAML_MALFORMED', `the encrypted assertion from "${config.id}" cannot be decrypted with the gateway's key`, (error as Error).message);
          }
          refuseWeakAlgorithms(parseXml(plain, 'SAML assertion'), 'SAML assertion');
        }
      }
      const idp = await loadMetadata();
      // Status first: a refusal from the IdP is reported as such (SAML core §3.2.2.2).
      const status = attr(child(child(root, NS.protocol, 'Status') ?? root, NS.protocol, 'StatusCode'), 'Value');
      if (status !== STATUS_SUCCESS) {
        const message = text(child(child(root, NS.protocol, 'Status') ?? root, NS.protocol, 'StatusMessage'));
        throw new FederationError('ERR_FEDERATION_IDP_ERROR', `the identity provider "${config.id}" refused the sign-in${message ? ` (${message.slice(0, 200)})` : ''}`, `status ${status ?? 'absent'}`);
      }
      // Destination (SAML core §3.2.2; required when the Response is signed, bindings §3.5.5.2).
      const destination = attr(root, 'Destination');
      const responseSigned = Boolean(child(root, NS.dsig, 'Signature'));
      if ((destination ?? (responseSigned ? '' : acsUrl)) !== acsUrl) {
        throw new FederationError('ERR_SAML_DESTINATION', 'the SAML response is addressed to another endpoint (Destination)', `Destination ${destination ?? 'absent'}`);
      }
      let assertionXml: string;
      try {
        const { profile } = await saml.validatePostResponseAsync({ SAMLResponse: Buffer.from(xml, 'utf8').toString('base64') });
        if (!profile) throw new Error('no assertion in the response');
        assertionXml = profile.getAssertionXml?.() ?? '';
      } catch (error) {
        throw describeSamlFailure(config.id, error);
      }
      const assertion = readAssertion(assertionXml);
      const envelopeInResponseTo = attr(root, 'InResponseTo');
      const { inResponseTo, expiresAt } = checkAssertion(assertion, {
        idpEntityId: idp.entityId, spEntityId, acsUrl, now: deps.now(), skew: config.clockSkew,
        ...(envelopeInResponseTo ? { inResponseTo: envelopeInResponseTo } : {}),
      });
      const identity = await preset.identity(config, assertion, context);
      return {
        identity,
        upstream: {
          ...(assertion.sessionIndex ? { sid: assertion.sessionIndex } : {}),
          ...(assertion.nameId ? {
            sub: assertion.nameId,
            samlNameId: {
              ...(assertion.nameIdFormat ? { format: assertion.nameIdFormat } : {}),
              ...(assertion.nameQualifier ? { nameQualifier: assertion.nameQualifier } : {}),
              ...(assertion.spNameQualifier ? { spNameQualifier: assertion.spNameQualifier } : {}),
            },
          } : {}),
        },
        assertionId: assertion.id,
        ...(inResponseTo ? { inResponseTo } : {}),
        expiresAt,
      };
    },

    async probe() {
      const checks: ProbeCheck[] = [];
      let idp: IdpMetadata;
      try {
        idp = await loadMetadata();
      } catch (error) {
        const source = config.metadata.url ?? config.metadata.file ?? 'inline xml';
        return [{ name: 'metadata', ok: false, message: `${(error as Error).message} (${source})` }];
      }
      checks.push({ name: 'metadata', ok: true, message: `entityID ${idp.entityId}, single sign-on at ${idp.ssoUrl}` });
      // A failed refresh leaves the last good copy in use: healthy for now, but someone should look.
      const { loadedAt, lastError } = metadata.status();
      if (lastError) {
        checks.push({ name: 'metadata refresh', ok: false, message: `${lastError}; still using the copy loaded ${loadedAt !== undefined ? new Date(loadedAt * 1000).toISOString() : 'earlier'}` });
      }
      const now = deps.now();
      for (const cert of idp.signingCertificates) {
        const days = Math.floor((cert.notAfter - now) / 86400);
        checks.push({
          name: `signing certificate ${cert.fingerprint.slice(0, 11)}`,
          ok: days >= 0,
          message: days < 0
            ? `${cert.subject} expired ${-days} day(s) ago: the IdP must publish a new one`
            : `${cert.subject} valid for ${days} more day(s)${days < 30 ? ' — renew it soon (publish the next certificate in the IdP metadata)' : ''}`,
        });
      }
      if (idp.wantAuthnRequestsSigned && !signRequests) {
        checks.push({ name: 'request signing', ok: false, message: 'the IdP wants signed AuthnRequests: set sp.signingKey and sp.signingCert' });
      }
      for (const [name, pem] of [['sp signing certificate', config.sp.signingCert], ['sp encryption certificate', config.sp.decryptionCert]] as const) {
        if (!pem) continue;
        const cert = new X509Certificate(pem);
        const days = Math.floor((Date.parse(cert.validTo) / 1000 - now) / 86400);
        checks.push({ name, ok: days >= 0, message: days < 0 ? `expired ${-days} day(s) ago` : `valid for ${days} more day(s)` });
      }
      checks.push({ name: 'service provider', ok: true, message: `register entity id ${spEntityId} and ACS URL ${acsUrl} (HTTP-POST) at the IdP, or import ${base}/metadata` });
      checks.push(...(await preset.probe?.(config, context) ?? []));
      return checks;
    },
  };
}

/** An element as XML text (xmldom elements serialize with toString()). */
const xmlOf = (element: unknown) => String(element);

export const isSamlConnector = (connector: Connector): connector is SamlConnector => connector.type === 'saml';
