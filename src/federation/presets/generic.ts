// Any OpenID Provider: claim paths for subject, email, name and groups are configurable.
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import { stringListClaim } from '../claims.ts';
import type { OidcPreset } from './preset.ts';
import { commonIdentity, toGroups } from './preset.ts';

type Generic = Extract<OidcIdentityProviderConfig, { preset: 'generic' }>;

export const genericPreset: OidcPreset<Generic> = {
  name: 'generic',
  defaultScopes: ['openid', 'email', 'profile'],
  discoveryUrl: (config) => new URL(config.issuer),
  authorizationParams: (_config, { loginHint }): Record<string, string> => (loginHint ? { login_hint: loginHint } : {}),
  async identity(config, claims) {
    const groups = config.claims.groups ? stringListClaim(claims, config.claims.groups) ?? [] : [];
    return { ...commonIdentity(config, claims), groups: toGroups(config, groups), groupsComplete: true, attributes: {} };
  },
  expectedIssuer: (_config, issuer) => issuer,
};
