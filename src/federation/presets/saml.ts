// Vendor presets of the SAML connector (src/federation/saml): which attributes carry the person,
// whether the Response itself must be signed, which NameID format to ask for, and how attributes
// become a FederatedIdentity — the same shape the OIDC presets produce.
//   okta             attribute statements `email`, `firstName`/`lastName`, `groups` (names);
//                    persistent NameID as the key (Okta app: Name ID format Persistent).
//   azure-ad         claim URIs; the key is tenantid:objectidentifier, as for Entra over OIDC;
//                    group object ids, app roles, and group overage (groups.link) read from
//                    Microsoft Graph app-only; only the assertion is signed by default.
//   google-workspace the email's domain must be a configured Workspace domain; groups from a
//                    mapped attribute (Google caps it) or the Directory API.
//   generic          attribute names configurable.
// The key is never a transient NameID or an email address: a NameID key must be persistent.
import type { SamlIdentityProviderConfig } from '../../config/index.ts';
import type { FederatedIdentity, IdentityGroup } from '../../identity/index.ts';
import { createGraphClient } from '../directory/graph.ts';
import type { GraphClient } from '../directory/graph.ts';
import { FederationError } from '../errors.ts';
import type { SamlAssertion } from '../saml/assertion.ts';
import type { ProbeCheck } from '../types.ts';
import type { PresetContext } from './preset.ts';
import { googleDirectoryGroups, toGroups } from './preset.ts';

export const NAMEID_PERSISTENT = 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent';
const NAMEID_EMAIL = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';

export const AZURE = {
  tenantId: 'http://schemas.microsoft.com/identity/claims/tenantid',
  objectId: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  displayName: 'http://schemas.microsoft.com/identity/claims/displayname',
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  upn: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name',
  givenName: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname',
  surname: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname',
  groups: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/groups',
  groupsLink: 'http://schemas.microsoft.com/claims/groups.link',
  role: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
  authnMethods: 'http://schemas.microsoft.com/claims/authnmethodsreferences',
} as const;

/** Google sends at most this many groups in a SAML attribute; a list this long may be cut. */
const GOOGLE_GROUP_CAP = 75;

type SamlConfig = SamlIdentityProviderConfig;
type AzureSaml = Extract<SamlConfig, { preset: 'azure-ad' }>;
type GoogleSaml = Extract<SamlConfig, { preset: 'google-workspace' }>;

export interface SamlPreset<C extends SamlConfig = SamlConfig> {
  readonly name: C['preset'];
  /** Attribute names (subject: "nameid" or an attribute) unless the config names others. */
  readonly attributes: { subject: string; email: string; name: string; groups: string };
  readonly wantResponseSigned: boolean;
  readonly nameIdFormat?: string;
  identity(config: C, assertion: SamlAssertion, context: PresetContext): Promise<FederatedIdentity>;
  probe?(config: C, context: PresetContext): Promise<ProbeCheck[]>;
}

const first = (assertion: SamlAssertion, name: string | undefined) => (name ? assertion.attributes[name]?.[0] : undefined);

/** Fields every preset reads the same way. */
function commonIdentity(config: SamlConfig, preset: SamlPreset, assertion: SamlAssertion, subjectOverride?: string): Omit<FederatedIdentity, 'groups' | 'groupsComplete' | 'attributes'> {
  const source = config.attributes.subject ?? preset.attributes.subject;
  let subject = subjectOverride;
  if (!subject && source.toLowerCase() === 'nameid') {
    if (!assertion.nameId) throw new FederationError('ERR_SAML_SUBJECT', `the assertion from "${config.id}" has no NameID`);
    if (assertion.nameIdFormat !== NAMEID_PERSISTENT) {
      throw new FederationError('ERR_SAML_SUBJECT',
        `the assertion from "${config.id}" identifies the person with a ${assertion.nameIdFormat ?? 'unspecified'} NameID; configure the IdP to send a persistent NameID (or set attributes.subject to an immutable attribute)`,
        `NameID format ${assertion.nameIdFormat ?? 'absent'}`);
    }
    subject = assertion.nameId;
  }
  if (!subject) {
    const values = assertion.attributes[source] ?? [];
    if (values.length !== 1) {
      throw new FederationError('ERR_SAML_SUBJECT', `the assertion from "${config.id}" lacks the ${source} attribute that identifies the person (or has several values)`);
    }
    subject = values[0]!;
  }
  const email = first(assertion, config.attributes.email ?? preset.attributes.email)
    ?? (assertion.nameIdFormat === NAMEID_EMAIL ? assertion.nameId : undefined);
  const name = first(assertion, config.attributes.name ?? preset.attributes.name);
  const amr = assertion.authnContextClassRef && /Password/.test(assertion.authnContextClassRef) ? ['pwd'] : [];
  return {
    idp: config.id,
    subject,
    ...(email ? { email } : {}),
    ...(name ? { name } : {}),
    amr,
    ...(assertion.authnContextClassRef ? { acr: assertion.authnContextClassRef } : {}),
    authTime: assertion.authnInstant ?? 0,
  };
}

const groupNames = (config: SamlConfig, preset: SamlPreset, assertion: SamlAssertion) =>
  assertion.attributes[config.attributes.groups ?? preset.attributes.groups] ?? [];

export const samlGenericPreset: SamlPreset = {
  name: 'generic',
  attributes: { subject: 'nameid', email: 'email', name: 'name', groups: 'groups' },
  wantResponseSigned: false,
  nameIdFormat: NAMEID_PERSISTENT,
  async identity(config, assertion) {
    return { ...commonIdentity(config, this, assertion), groups: toGroups(config, groupNames(config, this, assertion)), groupsComplete: true, attributes: {} };
  },
};

export const samlOktaPreset: SamlPreset = {
  name: 'okta',
  attributes: { subject: 'nameid', email: 'email', name: 'name', groups: 'groups' },
  wantResponseSigned: true,
  nameIdFormat: NAMEID_PERSISTENT,
  async identity(config, assertion) {
    const base = commonIdentity(config, this, assertion);
    const given = first(assertion, 'firstName');
    const family = first(assertion, 'lastName');
    const name = base.name ?? ([given, family].filter(Boolean).join(' ') || undefined);
    const names = groupNames(config, this, assertion);
    return { ...base, ...(name ? { name } : {}), groups: toGroups(config, names, new Map(names.map((n) => [n, n]))), groupsComplete: true, attributes: {} };
  },
};

const graphClients = new WeakMap<AzureSaml, GraphClient>();
function graphFor(config: AzureSaml, context: PresetContext): GraphClient | undefined {
  if (!config.graph?.enabled) return undefined;
  let client = graphClients.get(config);
  if (!client) {
    client = createGraphClient({
      fetch: context.fetch, now: context.now, authority: config.graph.authority,
      clientId: config.graph.clientId, clientSecret: config.graph.clientSecret,
      baseUrl: config.graph.baseUrl, pageSize: config.graph.pageSize,
    });
    graphClients.set(config, client);
  }
  return client;
}

const ENTRA_AMR: Record<string, string> = {
  'http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/password': 'pwd',
  'http://schemas.microsoft.com/claims/multipleauthn': 'mfa',
  'http://schemas.microsoft.com/ws/2008/06/identity/authenticationmethod/x509': 'x509',
};

export const samlAzureAdPreset: SamlPreset<AzureSaml> = {
  name: 'azure-ad',
  attributes: { subject: AZURE.objectId, email: AZURE.email, name: AZURE.displayName, groups: AZURE.groups },
  // Entra signs only the assertion unless the app's signing option says otherwise.
  wantResponseSigned: false,
  async identity(config, assertion, context) {
    const tid = first(assertion, AZURE.tenantId);
    const oid = first(assertion, AZURE.objectId);
    if (!tid || !oid) throw new FederationError('ERR_SAML_SUBJECT', `the assertion from "${config.id}" lacks the tenantid/objectidentifier claims`);
    if (tid !== config.tenant) {
      throw new FederationError('ERR_FEDERATION_TENANT_NOT_ALLOWED', `your organization's Microsoft Entra tenant (${tid}) is not allowed to sign in here`, `tenantid ${tid} is not ${config.tenant}`);
    }
    const base = commonIdentity(config, this as SamlPreset, assertion, config.attributes.subject ? undefined : `${tid}:${oid}`);
    const upn = first(assertion, AZURE.upn);
    const email = base.email ?? upn;
    let groupIds = groupNames(config, this as SamlPreset, assertion);
    let names: Map<string, string> | undefined;
    let groupsComplete = true;
    // Group overage (more than 150 groups in a SAML token): Entra sends a groups.link instead.
    if ((assertion.attributes[AZURE.groupsLink] ?? []).length > 0) {
      groupsComplete = false;
      const graph = graphFor(config, context);
      if (graph) {
        try {
          const found = await graph.transitiveGroups(tid, oid);
          groupIds = found.map((g) => g.id);
          names = new Map(found.flatMap((g) => (g.displayName ? [[g.id, g.displayName] as [string, string]] : [])));
          groupsComplete = true;
        } catch (error) {
          context.logger.warn({ idp: config.id, errorCode: (error as FederationError).code, reason: (error as Error).message }, 'group overage could not be resolved through Microsoft Graph; group-based roles will not apply');
        }
      }
    }
    const roles = assertion.attributes[AZURE.role] ?? [];
    const appRoles: IdentityGroup[] = roles.map((role) => ({ idp: config.id, id: `app-role:${role}`, name: role }));
    const amr = (assertion.attributes[AZURE.authnMethods] ?? []).flatMap((m) => (ENTRA_AMR[m] ? [ENTRA_AMR[m]] : []));
    return {
      ...base,
      ...(email ? { email } : {}),
      ...(amr.length > 0 ? { amr: [...new Set(amr)] } : {}),
      groups: [...toGroups(config, groupIds, names), ...appRoles],
      groupsComplete,
      attributes: { tid, oid, ...(upn ? { upn } : {}), ...(roles.length > 0 ? { app_roles: roles } : {}) },
    };
  },
  async probe(config, context) {
    const graph = graphFor(config, context);
    if (!graph) return [{ name: 'graph', ok: true, message: 'group overage (groups.link) resolution is not configured: people with more than 150 groups get no group-based roles' }];
    try {
      await graph.token(config.tenant);
      return [{ name: 'graph', ok: true, message: 'the app can obtain a Microsoft Graph token (GroupMember.Read.All application permission)' }];
    } catch (error) {
      return [{ name: 'graph', ok: false, message: `${(error as Error).message}: check graph.clientId/clientSecret and admin consent for GroupMember.Read.All` }];
    }
  },
};


export const samlGoogleWorkspacePreset: SamlPreset<GoogleSaml> = {
  name: 'google-workspace',
  attributes: { subject: 'nameid', email: 'email', name: 'name', groups: 'groups' },
  // Google signs only the assertion (or only the response) as the app says; assertion by default.
  wantResponseSigned: false,
  nameIdFormat: NAMEID_PERSISTENT,
  async identity(config, assertion, context) {
    const base = commonIdentity(config, this as SamlPreset, assertion);
    const domain = base.email?.split('@').pop()?.toLowerCase();
    if (!domain || !config.hostedDomains.includes(domain)) {
      throw new FederationError('ERR_FEDERATION_DOMAIN_NOT_ALLOWED',
        `${base.email ?? 'this Google account'} is not part of an allowed Google Workspace domain (${config.hostedDomains.join(', ')})`, `domain ${domain ?? 'absent'}`);
    }
    let groups = toGroups(config, groupNames(config, this as SamlPreset, assertion));
    let groupsComplete = groups.length < GOOGLE_GROUP_CAP;
    // The Directory API, when configured, replaces the attribute (which Google caps).
    const found = await googleDirectoryGroups(config, base.email, context);
    if (found) groups = found;
    if (found !== undefined) groupsComplete = found !== null;
    return { ...base, groups, groupsComplete, attributes: { hd: domain } };
  },
};

export function samlPresetFor(config: SamlConfig): SamlPreset {
  const presets: Record<SamlConfig['preset'], SamlPreset> = {
    generic: samlGenericPreset,
    okta: samlOktaPreset,
    'azure-ad': samlAzureAdPreset as unknown as SamlPreset,
    'google-workspace': samlGoogleWorkspacePreset as unknown as SamlPreset,
  };
  return presets[config.preset];
}
