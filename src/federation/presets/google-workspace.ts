// Google Workspace. Any Google account can sign in to a Google OAuth client, so the ID token's
// `hd` (hosted domain) must be one of the configured Workspace domains — the `hd` authorization
// parameter is only a hint and proves nothing. Google ID tokens carry no groups: they come from
// the Admin SDK Directory API through a service account with domain-wide delegation.
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import { stringClaim } from '../claims.ts';
import { directoryFor } from '../directory/google.ts';
import { FederationError } from '../errors.ts';
import type { OidcPreset } from './preset.ts';
import { commonIdentity, googleDirectoryGroups } from './preset.ts';

type Google = Extract<OidcIdentityProviderConfig, { preset: 'google-workspace' }>;


export const googleWorkspacePreset: OidcPreset<Google> = {
  name: 'google-workspace',
  defaultScopes: ['openid', 'email', 'profile'],
  discoveryUrl: (config) => new URL(config.issuer),
  authorizationParams(config, { loginHint }) {
    const domain = loginHint?.includes('@') ? loginHint.split('@').pop()?.toLowerCase() : undefined;
    const hd = domain && config.hostedDomains.includes(domain) ? domain : config.hostedDomains.length === 1 ? config.hostedDomains[0] : undefined;
    return { ...(loginHint ? { login_hint: loginHint } : {}), ...(hd ? { hd } : {}) };
  },

  async identity(config, claims, context) {
    const hd = stringClaim(claims, 'hd')?.toLowerCase();
    if (!hd || !config.hostedDomains.includes(hd)) {
      const who = stringClaim(claims, 'email') ?? 'this Google account';
      throw new FederationError('ERR_FEDERATION_DOMAIN_NOT_ALLOWED',
        `${who} is not part of an allowed Google Workspace domain (${config.hostedDomains.join(', ')})`, `hd ${hd ?? 'absent'}`);
    }
    const base = commonIdentity(config, claims);
    const found = await googleDirectoryGroups(config, base.email, context);
    const groups = found ?? [];
    const groupsComplete = Array.isArray(found);
    return { ...base, groups, groupsComplete, attributes: { hd } };
  },

  expectedIssuer: (_config, issuer) => issuer,

  async probe(config, context) {
    if (!config.directory?.enabled) return [{ name: 'directory', ok: true, message: 'group look-up is not configured: group-based roles will not apply to Google sign-ins' }];
    const directory = directoryFor(config.directory, context);
    if (!directory) return [{ name: 'directory', ok: false, message: 'directory.serviceAccountKey is not a Google service account key (JSON with client_email and private_key)' }];
    try {
      await directory.token();
      return [{ name: 'directory', ok: true, message: `the service account can act as ${config.directory.adminEmail} with the directory group read-only scope` }];
    } catch (error) {
      return [{ name: 'directory', ok: false, message: `${(error as Error).message}: authorize the service account's client id for ${'https://www.googleapis.com/auth/admin.directory.group.readonly'} in Admin console › Security › API controls › Domain-wide delegation` }];
    }
  },
};
