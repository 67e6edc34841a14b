// Microsoft Entra ID (Azure AD), v2.0 endpoints. The person is (tid, oid): `sub` is pairwise per
// app and `email`/`preferred_username` can change. Multi-tenant apps (`common`/`organizations`)
// must list the tenants they admit; the token's issuer is bound to its own `tid` (openid-client
// does this for login.microsoftonline.com) and the tid must be on the list. Groups arrive as object
// ids; when a person has too many for a token (group overage) they are read from Microsoft Graph.
// App roles are exposed as groups `app-role:<value>` and as attributes.app_roles. If groups cannot be established, the
// identity says `groupsComplete: false` and group-based grants do not apply (fail closed).
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import type { IdentityGroup } from '../../identity/index.ts';
import { stringClaim, stringListClaim } from '../claims.ts';
import { createGraphClient } from '../directory/graph.ts';
import type { GraphClient } from '../directory/graph.ts';
import { FederationError } from '../errors.ts';
import type { IdTokenClaims, OidcPreset, PresetContext } from './preset.ts';
import { commonIdentity, toGroups } from './preset.ts';

type AzureAd = Extract<OidcIdentityProviderConfig, { preset: 'azure-ad' }>;

export const isMultiTenant = (config: AzureAd) => config.tenant === 'common' || config.tenant === 'organizations';

const graphClients = new WeakMap<AzureAd, GraphClient>();

function graphFor(config: AzureAd, context: PresetContext): GraphClient {
  let client = graphClients.get(config);
  if (!client) {
    client = createGraphClient({
      fetch: context.fetch, now: context.now, authority: config.authority,
      clientId: config.clientId, clientSecret: config.clientSecret,
      baseUrl: config.graph.baseUrl, pageSize: config.graph.pageSize,
    });
    graphClients.set(config, client);
  }
  return client;
}

function hasOverage(claims: IdTokenClaims): boolean {
  const names = claims._claim_names as Record<string, unknown> | undefined;
  return claims.hasgroups === true || claims.hasgroups === 'true' || (typeof names === 'object' && names !== null && 'groups' in names);
}

export const azureAdPreset: OidcPreset<AzureAd> = {
  name: 'azure-ad',
  defaultScopes: ['openid', 'email', 'profile'],
  discoveryUrl: (config) => new URL(`${config.authority}/${config.tenant}/v2.0`),
  authorizationParams(_config, { loginHint }) {
    if (!loginHint) return {};
    const domain = loginHint.includes('@') ? loginHint.split('@').pop() : undefined;
    return { login_hint: loginHint, ...(domain ? { domain_hint: domain } : {}) };
  },

  async identity(config, claims, context) {
    const tid = stringClaim(claims, 'tid');
    const oid = stringClaim(claims, 'oid');
    if (!tid || !oid) {
      throw new FederationError('ERR_FEDERATION_CLAIMS_MISSING', `the ID token from "${config.id}" lacks tid/oid (is the app registered for the v2.0 endpoint?)`);
    }
    if (isMultiTenant(config) ? !config.tenants.includes(tid) : tid !== config.tenant) {
      throw new FederationError('ERR_FEDERATION_TENANT_NOT_ALLOWED',
        `your organization's Microsoft Entra tenant (${tid}) is not allowed to sign in here`, `tid ${tid} not in ${isMultiTenant(config) ? config.tenants.join(',') : config.tenant}`);
    }
    const base = commonIdentity(config, { ...claims, sub: `${tid}:${oid}` }, { email: 'email' });
    const email = base.email ?? stringClaim(claims, 'preferred_username');

    let groupIds = stringListClaim(claims, config.claims.groups ?? 'groups') ?? [];
    let names: Map<string, string> | undefined;
    let groupsComplete = true;
    if (hasOverage(claims)) {
      groupsComplete = false;
      if (config.graph.enabled) {
        try {
          const found = await graphFor(config, context).transitiveGroups(tid, oid);
          groupIds = found.map((g) => g.id);
          names = new Map(found.flatMap((g) => (g.displayName ? [[g.id, g.displayName] as [string, string]] : [])));
          groupsComplete = true;
        } catch (error) {
          context.logger.warn({ idp: config.id, errorCode: (error as FederationError).code, reason: (error as Error).message }, 'group overage could not be resolved through Microsoft Graph; group-based roles will not apply');
        }
      }
    }
    const appRoles: IdentityGroup[] = (stringListClaim(claims, 'roles') ?? []).map((role) => ({ idp: config.id, id: `app-role:${role}`, name: role }));
    const upn = stringClaim(claims, 'preferred_username');
    return {
      ...base,
      ...(email ? { email } : {}),
      groups: [...toGroups(config, groupIds, names), ...appRoles],
      groupsComplete,
      // App roles also as an attribute: the `roles` claim is always complete, so CEL mappings on
      // attributes.app_roles keep working when group overage could not be resolved.
      attributes: { tid, oid, ...(upn ? { upn } : {}), ...(appRoles.length > 0 ? { app_roles: appRoles.map((r) => r.name!) } : {}) },
    };
  },

  expectedIssuer: (config, issuer, claims) =>
    isMultiTenant(config) && typeof claims.tid === 'string' ? issuer.replace('{tenantid}', claims.tid) : issuer,

  async probe(config, context) {
    if (!config.graph.enabled) return [{ name: 'graph', ok: true, message: 'group overage resolution is disabled (graph.enabled: false)' }];
    const tenants = isMultiTenant(config) ? config.tenants : [config.tenant];
    const checks = [];
    for (const tid of tenants) {
      try {
        await graphFor(config, context).token(tid);
        checks.push({ name: `graph token (${tid})`, ok: true, message: 'the app can obtain a Microsoft Graph token (grant GroupMember.Read.All as an application permission, with admin consent)' });
      } catch (error) {
        checks.push({ name: `graph token (${tid})`, ok: false, message: `${(error as Error).message}: check the client secret and that the app exists in this tenant` });
      }
    }
    return checks;
  },
};
