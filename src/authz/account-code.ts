// Redeeming an authorization code of the gateway's own account client (clients.ts) in-process:
// the account pages' callback (src/account/sign-in.ts) does what the token endpoint would do for
// the authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6) and issues nothing. It reads the
// code through oidc-provider's public model API (`provider.AuthorizationCode.find`, `isExpired`,
// `isValid`, `consume()`; see oidc-provider's docs on models and its lib/models), and consumes it
// through the store adapter, whose consume() is atomic: of two concurrent redemptions one wins.
import { createHash, timingSafeEqual } from 'node:crypto';

import type Provider from 'oidc-provider';

import { ACCOUNT_CLIENT_ID, accountRedirectUri } from './clients.ts';
import { InvalidGrant } from './errors.ts';

export interface AccountCodeInput {
  code: string;
  /** The PKCE code_verifier the callback kept (RFC 7636 §4.1). */
  verifier: string;
  /** The person the browser's enterprise session names. */
  accountId: string;
}

/** Why a code was refused, in words a person may read (never the code itself). */
export type AccountCodeResult = { ok: true; grantId: string | undefined } | { ok: false; reason: string };

/** RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)) == code_challenge, compared in constant time. */
function pkceMatches(verifier: string, challenge: string | undefined, method: string | undefined): boolean {
  // §4.1: 43–128 characters of the unreserved set.
  if (method !== 'S256' || !challenge || !/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) return false;
  const expected = createHash('sha256').update(verifier).digest();
  const given = Buffer.from(challenge, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export function createAccountCodeRedeemer(provider: Provider, issuer: string) {
  const redirectUri = accountRedirectUri(issuer);
  return async function redeem(input: AccountCodeInput): Promise<AccountCodeResult> {
    const code = await provider.AuthorizationCode.find(input.code);
    if (!code) return { ok: false, reason: 'The sign-in code is unknown or has expired.' };
    // Checked before anything is spent: a code of another client is not ours to consume.
    if (code.clientId !== ACCOUNT_CLIENT_ID || code.redirectUri !== redirectUri) {
      return { ok: false, reason: 'The sign-in code was not issued for these pages.' };
    }
    if (code.isExpired) return { ok: false, reason: 'The sign-in code has expired.' };
    // isValid = not consumed and not expired (lib/models/authorization_code.js).
    if (!code.isValid) return { ok: false, reason: 'The sign-in code was already used.' };
    if (!pkceMatches(input.verifier, code.codeChallenge, code.codeChallengeMethod)) {
      return { ok: false, reason: 'The sign-in code was issued to another sign-in attempt.' };
    }
    if (code.accountId !== input.accountId) {
      return { ok: false, reason: 'The sign-in code names another person than the one now signed in.' };
    }
    try {
      await code.consume();
    } catch (error) {
      // The adapter's atomic claim lost to a concurrent redemption of the same code (adapter.ts);
      // anything else (the store is down) is no verdict on the code and goes up as it is.
      if (error instanceof InvalidGrant) return { ok: false, reason: 'The sign-in code was already used.' };
      throw error;
    }
    return { ok: true, grantId: code.grantId };
  };
}

export type AccountCodeRedeemer = ReturnType<typeof createAccountCodeRedeemer>;
