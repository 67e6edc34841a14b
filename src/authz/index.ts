// The downstream face: oidc-provider on the gateway's store, plus its interactions.
export { createAuthorizationServer, issuerPath } from './provider.ts';
export type { AuthorizationServerDeps } from './provider.ts';
export { createInteractionRouter } from './interactions.ts';
export { createAdapterFactory as createOidcAdapter } from './adapter.ts';
export {
  CustomOIDCProviderError, InvalidDpopProof, InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, TemporarilyUnavailable, UnauthorizedClient,
} from './errors.ts';
export { checkDpopReplay, validateDpop } from './oidc-provider-internals.ts';
export type { DpopProof } from './oidc-provider-internals.ts';
export { chainFromAct, createAccessTokenVerifier, revokedJtiKey } from './access-tokens.ts';
export type { AccessTokenClaims, AccessTokenVerifier } from './access-tokens.ts';
export { ADMIN_SCOPE, adminAudience } from './clients.ts';
