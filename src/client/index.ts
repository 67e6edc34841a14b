// agentgate/client: what resource servers and agents import. It runs inside them, so it depends
// on nothing server-side (no oidc-provider, no store, no config): jose, express types and the
// pure DPoP proof verifier of src/keys.
//   - requireAgentToken: express middleware verifying the gateway's agent tokens (RFC 9068,
//     RFC 9449 DPoP, RFC 6750 / RFC 9728 challenges) and honouring revocation (feed + fallback).
//   - protectedResourceMetadata: the RFC 9728 document for /.well-known/oauth-protected-resource.
//   - createTokenExchanger: RFC 8693 token exchange for agents, cached; dpopProof for their calls.

export { requireAgentToken } from './require-agent-token.ts';
export type { AgentTokenMiddleware, RequireAgentTokenOptions, RevocationStatus } from './require-agent-token.ts';
export { actorsOf } from './access-token.ts';
export type { AccessTokenClaims, AgentToken } from './access-token.ts';
export { protectedResourceMetadata, protectedResourceMetadataDocument } from './metadata.ts';
export type { ProtectedResourceMetadataOptions } from './metadata.ts';
export { ACCESS_TOKEN_TYPE, createTokenExchanger, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT } from './token-exchanger.ts';
export type { ExchangedToken, ExchangeRequest, TokenExchanger, TokenExchangerOptions } from './token-exchanger.ts';
export { athOf, dpopProof, htuOf } from './dpop-proof.ts';
export type { DpopKeyPair, DpopProofOptions } from './dpop-proof.ts';
export { InsufficientUserAuthenticationError, TokenExchangeError } from './errors.ts';
export type { ClientCredentials } from './client-auth.ts';
export type { ClientLogger } from './logger.ts';
export type { RevocationEvent, RevocationType } from './revocation-list.ts';
export type { FetchLike } from './http.ts';
