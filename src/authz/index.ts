// The downstream face: oidc-provider on the gateway's store, plus its interactions.
export { createAuthorizationServer, issuerPath } from './provider.ts';
export type { AuthorizationServerDeps } from './provider.ts';
export { createInteractionRouter } from './interactions.ts';
export { createAdapterFactory as createOidcAdapter } from './adapter.ts';
export {
  CustomOIDCProviderError, InvalidDpopProof, InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget, TemporarilyUnavailable, UnauthorizedClient,
} from './errors.ts';
export { createClientAuthenticator } from './client-auth.ts';
export type { AuthenticatedClient, ClientAuthenticator } from './client-auth.ts';
export { createTokenEndpoint } from './token-endpoint.ts';
export type { LeanGrant, LeanGrantRequest, LeanGrantResponse, TokenParams } from './token-endpoint.ts';
export { chainFromAct, createAccessTokenVerifier, revokedJtiKey } from './access-tokens.ts';
export type { AccessTokenClaims, AccessTokenVerifier } from './access-tokens.ts';
export { ACCOUNT_CLIENT_ID, accountRedirectUri, ADMIN_SCOPE, adminAudience, staticClients } from './clients.ts';
export { createAccountCodeRedeemer } from './account-code.ts';
export type { AccountCodeRedeemer, AccountCodeResult } from './account-code.ts';
