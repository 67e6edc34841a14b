// IdP metadata (SAML metadata §2.4.3 IDPSSODescriptor), parsed by us — node-saml reads none —
// from a URL (refreshed periodically), a file (re-read periodically) or inline XML. Every signing
// certificate is kept, so an IdP can publish its next certificate ahead of a rollover and both
// verify. When a refresh fails, the last good copy stays in use and the failure is logged.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

import type { SamlIdentityProviderConfig } from '../../config/index.ts';
import type { Logger } from '../../ops/index.ts';
import { FederationError } from '../errors.ts';
import { NS, attr, certificatePem, child, children, descendants, parseXml, text } from './xml.ts';

const BINDING_REDIRECT = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';
const BINDING_POST = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST';

export interface IdpCertificate {
  pem: string;
  /** SHA-256 fingerprint (hex, colon-separated), for operators and metric labels. */
  fingerprint: string;
  /** Seconds since the epoch. */
  notAfter: number;
  subject: string;
}

export interface IdpMetadata {
  entityId: string;
  /** SingleSignOnService, HTTP-Redirect binding. */
  ssoUrl: string;
  /** SingleLogoutService per binding, when published. */
  slo: { redirect?: string; post?: string };
  signingCertificates: IdpCertificate[];
  wantAuthnRequestsSigned: boolean;
}

export function parseIdpMetadata(xml: string, expectedEntityId?: string): IdpMetadata {
  const doc = parseXml(xml, 'IdP metadata');
  const entities = descendants(doc, NS.metadata, 'EntityDescriptor')
    .filter((e) => children(e, NS.metadata, 'IDPSSODescriptor').length > 0);
  const entity = expectedEntityId ? entities.find((e) => attr(e, 'entityID') === expectedEntityId) : entities.length === 1 ? entities[0] : undefined;
  if (!entity) {
    throw new FederationError('ERR_SAML_METADATA', expectedEntityId
      ? `the IdP metadata does not describe an IdP with entityID "${expectedEntityId}"`
      : `the IdP metadata describes ${entities.length} identity providers; set metadata.entityId to choose one`);
  }
  const descriptor = child(entity, NS.metadata, 'IDPSSODescriptor')!;
  const signingCertificates: IdpCertificate[] = [];
  for (const key of children(descriptor, NS.metadata, 'KeyDescriptor')) {
    const use = attr(key, 'use');
    if (use && use !== 'signing') continue;
    for (const certElement of descendants(key, NS.dsig, 'X509Certificate')) {
      const body = text(certElement);
      if (!body) continue;
      const pem = certificatePem(body);
      let parsed: X509Certificate;
      try {
        parsed = new X509Certificate(pem);
      } catch {
        throw new FederationError('ERR_SAML_METADATA', 'the IdP metadata contains a signing certificate that cannot be read');
      }
      if (!signingCertificates.some((c) => c.pem === pem)) {
        signingCertificates.push({ pem, fingerprint: parsed.fingerprint256, notAfter: Math.floor(Date.parse(parsed.validTo) / 1000), subject: parsed.subject.replace(/\n/g, ', ') });
      }
    }
  }
  if (signingCertificates.length === 0) throw new FederationError('ERR_SAML_METADATA', 'the IdP metadata publishes no signing certificate');
  const service = (name: string, binding: string) =>
    children(descriptor, NS.metadata, name).find((s) => attr(s, 'Binding') === binding)?.getAttribute('Location') ?? undefined;
  const ssoUrl = service('SingleSignOnService', BINDING_REDIRECT);
  if (!ssoUrl) throw new FederationError('ERR_SAML_METADATA', 'the IdP metadata has no SingleSignOnService with the HTTP-Redirect binding');
  const sloRedirect = service('SingleLogoutService', BINDING_REDIRECT);
  const sloPost = service('SingleLogoutService', BINDING_POST);
  return {
    entityId: attr(entity, 'entityID')!,
    ssoUrl,
    slo: { ...(sloRedirect ? { redirect: sloRedirect } : {}), ...(sloPost ? { post: sloPost } : {}) },
    signingCertificates,
    wantAuthnRequestsSigned: attr(descriptor, 'WantAuthnRequestsSigned') === 'true',
  };
}

export interface MetadataSource {
  /** The current metadata: loaded on first use, refreshed when older than `refresh`. */
  get(): Promise<IdpMetadata>;
  /** When the copy in use was loaded, and the last refresh error, for diagnostics. */
  status(): { loadedAt?: number; lastError?: string };
  /** The copy in use, without loading (metrics). */
  current(): IdpMetadata | undefined;
}

export function createMetadataSource(
  config: SamlIdentityProviderConfig,
  deps: { fetch: typeof fetch; now: () => number; logger: Logger },
): MetadataSource {
  const { metadata } = config;
  /** `at`: the last load attempt (a failed refresh waits `refresh` again); `loadedAt`: the copy's load. */
  let current: { value: IdpMetadata; at: number; loadedAt: number } | undefined;
  let pending: Promise<IdpMetadata> | undefined;
  let lastError: string | undefined;

  async function load(): Promise<IdpMetadata> {
    let xml: string;
    if (metadata.xml !== undefined) {
      xml = metadata.xml;
    } else if (metadata.file !== undefined) {
      try {
        xml = await readFile(metadata.file, 'utf8');
      } catch (error) {
        throw new FederationError('ERR_SAML_METADATA', `the IdP metadata file ${metadata.file} cannot be read`, (error as Error).message);
      }
    } else {
      let res: Response;
      try {
        res = await deps.fetch(metadata.url!, { headers: { accept: 'application/samlmetadata+xml, application/xml, text/xml' }, signal: AbortSignal.timeout(10_000) });
      } catch (error) {
        throw new FederationError('ERR_FEDERATION_IDP_UNREACHABLE', `the IdP metadata at ${metadata.url} could not be fetched`, (error as Error).message);
      }
      if (!res.ok) throw new FederationError('ERR_FEDERATION_IDP_UNREACHABLE', `the IdP metadata at ${metadata.url} answered ${res.status}`);
      xml = await res.text();
    }
    return parseIdpMetadata(xml, metadata.entityId);
  }

  const source = metadata.url ?? metadata.file ?? 'inline xml';

  /** One line per (re)load, so an operator sees it happen and how long it took; rollovers named. */
  function logLoaded(value: IdpMetadata, previous: IdpMetadata | undefined, ms: number): void {
    const before = new Set(previous?.signingCertificates.map((c) => c.fingerprint));
    const after = new Set(value.signingCertificates.map((c) => c.fingerprint));
    const added = [...after].filter((f) => !before.has(f));
    const removed = [...before].filter((f) => !after.has(f));
    const fields = { idp: config.id, source, entityId: value.entityId, signingCertificates: value.signingCertificates.length, ms };
    if (!previous) deps.logger.info(fields, 'SAML IdP metadata loaded');
    else if (added.length > 0 || removed.length > 0) deps.logger.info({ ...fields, added, removed }, 'SAML IdP metadata refreshed: signing certificates changed');
    else deps.logger.debug(fields, 'SAML IdP metadata refreshed, unchanged');
  }

  function refresh(): Promise<IdpMetadata> {
    const started = performance.now();
    pending ??= load().then((value) => {
      logLoaded(value, current?.value, Math.round(performance.now() - started));
      current = { value, at: deps.now(), loadedAt: deps.now() };
      lastError = undefined;
      return value;
    }).finally(() => {
      pending = undefined;
    });
    return pending;
  }

  // Inline or file metadata is read at once (a file again every `refresh`): what it says — the
  // single sign-on origin the sign-in pages' CSP must allow — is known before the first sign-in.
  // A failure here is left to the first use, which reports it like any load.
  if (metadata.url === undefined) {
    try {
      const value = parseIdpMetadata(metadata.xml ?? readFileSync(metadata.file!, 'utf8'), metadata.entityId);
      logLoaded(value, undefined, 0);
      current = { value, at: deps.now(), loadedAt: deps.now() };
    } catch {
      // reported by get()
    }
  }

  return {
    async get() {
      if (!current) return refresh();
      if (metadata.xml === undefined && deps.now() - current.at >= metadata.refresh) {
        // Refresh in the background; keep serving the last good copy if it fails.
        refresh().catch((error: unknown) => {
          lastError = (error as Error).message;
          if (current) current.at = deps.now();
          deps.logger.warn({ idp: config.id, reason: lastError }, 'SAML IdP metadata refresh failed; keeping the last good copy');
        });
      }
      return current.value;
    },
    status: () => ({ ...(current ? { loadedAt: current.loadedAt } : {}), ...(lastError ? { lastError } : {}) }),
    current: () => current?.value,
  };
}
