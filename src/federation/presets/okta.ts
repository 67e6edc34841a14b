// Okta: an org authorization server (https://acme.okta.com) or a custom one (…/oauth2/default).
// Groups arrive as names in the `groups` claim when the `groups` scope is granted (the app's
// groups claim filter decides which); Okta has no stable group id in tokens, so the name is the id.
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import { stringListClaim } from '../claims.ts';
import type { OidcPreset } from './preset.ts';
import { commonIdentity, toGroups } from './preset.ts';

type Okta = Extract<OidcIdentityProviderConfig, { preset: 'okta' }>;

export const oktaPreset: OidcPreset<Okta> = {
  name: 'okta',
  defaultScopes: ['openid', 'email', 'profile', 'groups'],
  discoveryUrl: (config) => new URL(config.issuer),
  authorizationParams: (_config, { loginHint }): Record<string, string> => (loginHint ? { login_hint: loginHint } : {}),
  async identity(config, claims) {
    const names = stringListClaim(claims, config.claims.groups ?? 'groups') ?? [];
    const attributes: Record<string, string> = {};
    if (typeof claims.idp === 'string') attributes.okta_idp = claims.idp;
    return {
      ...commonIdentity(config, claims, { email: 'email', name: 'name' }),
      groups: toGroups(config, names, new Map(names.map((n) => [n, n]))),
      groupsComplete: true,
      attributes,
    };
  },
  expectedIssuer: (_config, issuer) => issuer,
};
