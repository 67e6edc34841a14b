// RFC 8693 §2.1 actor_token: the authenticated client IS the actor; an actor token, when sent,
// must identify that same agent — a JWT the agent signed with its registered key (iss = sub =
// client_id, aud = the gateway), or an access token the gateway issued to that agent.
import { jwtVerify } from 'jose';
import type { JWTVerifyGetKey } from 'jose';

import type { AccessTokenVerifier } from '../authz/index.ts';
import type { AgentConfig } from '../config/index.ts';

export const TOKEN_TYPE = {
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
} as const;

export interface ActorTokenDeps {
  issuer: string;
  accessTokens: AccessTokenVerifier;
  /** The agent's registered verification keys (private_key_jwt agents; client-auth.ts). */
  keysFor(clientId: string): JWTVerifyGetKey | undefined;
}

/** True when the actor token identifies `agent`; false otherwise (never throws on bad input). */
export async function actorTokenIdentifies(agent: AgentConfig, token: string, type: string, deps: ActorTokenDeps): Promise<boolean> {
  if (type === TOKEN_TYPE.accessToken) {
    const claims = await deps.accessTokens.verify(token);
    return Boolean(claims && claims.client_id === agent.clientId && !(await deps.accessTokens.isRevoked(claims)));
  }
  if (type === TOKEN_TYPE.jwt) {
    const keys = deps.keysFor(agent.clientId);
    if (!keys) return false;
    try {
      const { payload } = await jwtVerify(token, keys, {
        issuer: agent.clientId,
        subject: agent.clientId,
        audience: [deps.issuer, `${deps.issuer}/token`],
        algorithms: ['ES256', 'ES384', 'PS256', 'RS256', 'EdDSA'],
        requiredClaims: ['exp', 'iat'],
        maxTokenAge: '5m',
      });
      return payload.sub === agent.clientId;
    } catch {
      return false;
    }
  }
  return false;
}
