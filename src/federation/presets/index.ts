// The presets by name.
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import { azureAdPreset } from './azure-ad.ts';
import { genericPreset } from './generic.ts';
import { googleWorkspacePreset } from './google-workspace.ts';
import { oktaPreset } from './okta.ts';
import type { OidcPreset } from './preset.ts';

export type { IdTokenClaims, OidcPreset, PresetContext } from './preset.ts';

export function presetFor(config: OidcIdentityProviderConfig): OidcPreset {
  const presets: Record<OidcIdentityProviderConfig['preset'], OidcPreset> = {
    generic: genericPreset as OidcPreset,
    okta: oktaPreset as OidcPreset,
    'azure-ad': azureAdPreset as OidcPreset,
    'google-workspace': googleWorkspacePreset as OidcPreset,
  };
  return presets[config.preset]!;
}
