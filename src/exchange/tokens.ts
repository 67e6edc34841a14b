// Agent access tokens (RFC 9068 JWTs) the exchange mints, and the `act` chain (RFC 8693 §4.1):
// the outermost `act` is the current agent, earlier actors are nested inside it.
import { randomBytes } from 'node:crypto';

import { createJwsSigner } from '../keys/index.ts';
import type { KeyRing } from '../keys/index.ts';

export interface ActClaim {
  sub: string;
  act?: ActClaim;
}

/** ['b', 'a'] (newest first) → { sub: 'b', act: { sub: 'a' } }. */
export function actFromChain(chain: readonly string[]): ActClaim | undefined {
  let act: ActClaim | undefined;
  for (let i = chain.length - 1; i >= 0; i -= 1) act = { sub: chain[i]!, ...(act ? { act } : {}) };
  return act;
}

export interface AgentTokenClaims {
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  act: ActClaim;
  sid: string;
  acr?: string;
  auth_time: number;
  roles: string[];
  cnf?: { jkt: string };
}

export interface AgentTokenSigner {
  /** Signs an agent token; returns it with its jti and exp. */
  sign(claims: AgentTokenClaims, ttl: number, now: number): Promise<{ token: string; jti: string; exp: number }>;
}

export function createAgentTokenSigner(issuer: string, keyRing: KeyRing): AgentTokenSigner {
  // node:crypto with the key imported once (src/keys/jws.ts): one synchronous call per token.
  const signer = createJwsSigner(keyRing.signingKey);
  return {
    async sign(claims, ttl, now) {
      const jti = randomBytes(18).toString('base64url');
      const exp = now + ttl;
      const token = signer.sign({ iss: issuer, ...claims, jti, iat: now, exp }, { typ: 'at+jwt' });
      return { token, jti, exp };
    },
  };
}
