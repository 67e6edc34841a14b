// What a vendor preset specializes in the generic OIDC connector (STYLE.md "Vendor quirks are
// presets"): where discovery lives, default scopes, how hints are forwarded, how claims become
// a FederatedIdentity (including group look-ups in the vendor's directory), and which issuer a
// logout token may carry.
import type { OidcIdentityProviderConfig } from '../../config/index.ts';
import type { FederatedIdentity, IdentityGroup } from '../../identity/index.ts';
import type { Logger } from '../../ops/index.ts';
import { stringClaim, stringListClaim } from '../claims.ts';
import { FederationError } from '../errors.ts';
import { directoryFor } from '../directory/google.ts';
import type { GoogleDirectorySettings } from '../directory/google.ts';
import type { ProbeCheck } from '../types.ts';

export type IdTokenClaims = Record<string, unknown> & { sub: string; iss: string };

export interface PresetContext {
  fetch: typeof fetch;
  /** Seconds since the epoch. */
  now: () => number;
  logger: Logger;
}

export interface OidcPreset<C extends OidcIdentityProviderConfig = OidcIdentityProviderConfig> {
  readonly name: C['preset'];
  readonly defaultScopes: readonly string[];
  /** The issuer identifier to discover from (or a discovery document URL). */
  discoveryUrl(config: C): URL;
  /** Vendor-specific forwarding of the sign-in hint (Entra domain_hint, Google hd, …). */
  authorizationParams(config: C, hints: { loginHint?: string }): Record<string, string>;
  identity(config: C, claims: IdTokenClaims, context: PresetContext): Promise<FederatedIdentity>;
  /** The issuer a token from this IdP must carry (Entra multi-tenant: bound to its tid). */
  expectedIssuer(config: C, discoveredIssuer: string, claims: Record<string, unknown>): string;
  /** Extra diagnostics (directory credentials) for `agentgate idp test`. */
  probe?(config: C, context: PresetContext): Promise<ProbeCheck[]>;
}

/** Fields every preset reads the same way, honouring `claims` overrides. */
export function commonIdentity(
  config: OidcIdentityProviderConfig,
  claims: IdTokenClaims,
  defaults: { email?: string; name?: string } = {},
): Omit<FederatedIdentity, 'groups' | 'groupsComplete' | 'attributes'> {
  const subject = stringClaim(claims, config.claims.subject ?? 'sub');
  if (!subject) throw new FederationError('ERR_FEDERATION_CLAIMS_MISSING', `the ID token from "${config.id}" has no subject claim (${config.claims.subject ?? 'sub'})`);
  const email = stringClaim(claims, config.claims.email ?? defaults.email ?? 'email');
  const name = stringClaim(claims, config.claims.name ?? defaults.name ?? 'name');
  const amr = stringListClaim(claims, 'amr') ?? [];
  const acr = stringClaim(claims, 'acr');
  const authTime = typeof claims.auth_time === 'number' ? claims.auth_time : typeof claims.iat === 'number' ? claims.iat : 0;
  return {
    idp: config.id,
    subject,
    ...(email ? { email } : {}),
    ...(typeof claims.email_verified === 'boolean' ? { emailVerified: claims.email_verified } : {}),
    ...(name ? { name } : {}),
    amr,
    ...(acr ? { acr } : {}),
    authTime,
  };
}

/** Groups as the identity carries them: scoped to the IdP, with alias names where configured. */
export function toGroups(config: Pick<OidcIdentityProviderConfig, 'id' | 'groupAliases'>, ids: readonly string[], names?: ReadonlyMap<string, string>): IdentityGroup[] {
  return [...new Set(ids)].map((id) => {
    const name = config.groupAliases[id] ?? names?.get(id);
    return { idp: config.id, id, ...(name ? { name } : {}) };
  });
}

/**
 * A Google Workspace person's groups from the Admin SDK Directory API (OIDC and SAML presets
 * alike): undefined when there is nothing to ask (no directory configured, no email), null when
 * the directory could not be read (group-based roles then do not apply; logged).
 */
export async function googleDirectoryGroups(
  config: Pick<OidcIdentityProviderConfig, 'id' | 'groupAliases'> & { directory?: GoogleDirectorySettings | undefined },
  email: string | undefined,
  context: PresetContext,
): Promise<IdentityGroup[] | null | undefined> {
  const directory = directoryFor(config.directory, context);
  if (!directory || !email) return undefined;
  try {
    const found = await directory.groupsOf(email);
    return toGroups(config, found.map((g) => g.email), new Map(found.flatMap((g) => (g.name ? [[g.email, g.name] as [string, string]] : []))));
  } catch (error) {
    context.logger.warn({ idp: config.id, reason: (error as Error).message }, 'Google Workspace groups could not be read; group-based roles will not apply');
    return null;
  }
}
