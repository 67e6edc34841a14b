// The one seam into oidc-provider's internals (STYLE.md; enforced by ESLint no-restricted-imports).
// Custom grants need what oidc-provider's own grants use but does not export: DPoP proof
// validation (RFC 9449 §4.3: signature, typ, htm, htu, iat window, nonce) and its replay check.
// Pinned by the oidc-provider version in package-lock.json (9.13: helpers take the provider
// first and assert it matches the context); any upgrade must revisit this file and its tests.
// @ts-expect-error: internal module without type declarations
import validateDpopInternal, { checkDpopReplay as checkDpopReplayInternal } from 'oidc-provider/lib/helpers/validate_dpop.js';
import type { KoaContextWithOIDC } from 'oidc-provider';

export interface DpopProof {
  /** RFC 7638 thumbprint of the proof's public key (becomes cnf.jkt). */
  thumbprint: string;
  jti: string;
  iat: number;
}

/** Validates the request's DPoP proof, if any; throws invalid_dpop_proof when it is invalid. */
export async function validateDpop(ctx: KoaContextWithOIDC): Promise<DpopProof | undefined> {
  const validate = validateDpopInternal as (provider: unknown, ctx: KoaContextWithOIDC) => Promise<DpopProof | undefined>;
  return (await validate(ctx.oidc.provider, ctx)) ?? undefined;
}

/** Refuses a proof whose jti was already seen for this client (replay). */
export async function checkDpopReplay(ctx: KoaContextWithOIDC, proof: DpopProof, clientId: string, ErrorClass: new (message: string) => Error): Promise<void> {
  await (checkDpopReplayInternal as (...args: unknown[]) => Promise<void>)(ctx.oidc.provider, ctx, proof, clientId, ErrorClass);
}
