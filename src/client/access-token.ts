// Verification of the gateway's JWT access tokens at a resource server (RFC 9068 §4): signature by
// a key in the issuer's JWKS (fetched once, refetched on an unknown `kid`, keys imported once by
// jose), algorithms pinned to the asymmetric ones the issuer advertises, `typ` at+jwt, `iss`,
// `aud`, `exp`, `nbf`, `iat` not in the future, and the claims an agent token must carry.
// RFC 8725 §3.1/§3.11: `alg: none` and HMAC over a public key never verify.
import { createRemoteJWKSet, customFetch, errors, jwtVerify } from 'jose';
import type { JWTPayload, JWTVerifyGetKey } from 'jose';

import type { Discovery } from './discovery.ts';
import { ProtectedResourceError } from './errors.ts';
import type { FetchLike } from './http.ts';

/** Asymmetric JWS algorithms only (RFC 7518 §3.1, RFC 8037): what an access token may be signed with. */
export const ASYMMETRIC_ALGS = Object.freeze(['ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512', 'EdDSA', 'Ed25519']);

/** What `req.agentToken` holds once the middleware has accepted a request. */
export interface AgentToken {
  /** The person the agent works for (`sub`). */
  person: string;
  /** The agent that presents the token (`client_id`). */
  agent: string;
  /** The actor chain (RFC 8693 §4.1 `act`), outermost (current actor) first; empty for a person's own app token. */
  actors: string[];
  scopes: string[];
  /** The audience this resource server accepted the token for. */
  audience: string;
  /** The enterprise session the token derives from. */
  sid: string | undefined;
  jti: string;
  /** Epoch seconds. */
  expiresAt: number;
  /** Every claim of the verified token. */
  claims: AccessTokenClaims;
}

export interface AccessTokenClaims extends JWTPayload {
  iss: string;
  sub: string;
  jti: string;
  exp: number;
  iat: number;
  client_id: string;
  scope?: string;
  sid?: string;
  act?: unknown;
  cnf?: { jkt?: string; [member: string]: unknown };
}

/**
 * The actors of an `act` claim (RFC 8693 §4.1), outermost first; undefined when it is malformed
 * or absurdly deep (a hostile nesting stays cheap).
 */
export function actorsOf(act: unknown, maxDepth = 16): string[] | undefined {
  const chain: string[] = [];
  let node = act;
  while (node !== undefined) {
    const actor = node as { sub?: unknown; act?: unknown } | null;
    if (typeof actor !== 'object' || actor === null || Array.isArray(actor) || typeof actor.sub !== 'string' || chain.length >= maxDepth) return undefined;
    chain.push(actor.sub);
    node = actor.act;
  }
  return chain;
}

/** The keys and algorithms could not be established: the resource server cannot decide (503). */
export class KeysUnavailableError extends Error {
  readonly code = 'ERR_KEYS_UNAVAILABLE';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeysUnavailableError';
  }
}

export interface AccessTokenVerifierOptions {
  issuer: string;
  audience: string;
  discovery: Discovery;
  fetch: FetchLike;
  /** Accepted JWS algorithms; default the asymmetric ones the issuer's discovery advertises. */
  algorithms?: string[];
  /** Seconds of clock skew allowed for exp/nbf/iat. */
  clockTolerance: number;
  now: () => number;
}

export interface AccessTokenVerifier {
  /** The verified token, or throws ProtectedResourceError (401 invalid_token) / KeysUnavailableError. */
  verify(token: string): Promise<AgentToken>;
}

const invalid = (description: string) => new ProtectedResourceError(401, 'invalid_token', description);

function describe(error: unknown): ProtectedResourceError | undefined {
  if (error instanceof errors.JWTExpired) return invalid('the access token has expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss': return invalid('the access token was not issued by the expected issuer (iss)');
      case 'aud': return invalid('the access token is not meant for this resource (aud)');
      case 'typ': return invalid('the token is not an access token (typ must be at+jwt, RFC 9068)');
      case 'nbf': return invalid('the access token is not valid yet (nbf)');
      default:
        return error.reason === 'missing'
          ? invalid(`the access token lacks the ${error.claim} claim`)
          : invalid(`the access token's ${error.claim} claim is invalid`);
    }
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return invalid('the access token is signed with an algorithm this resource does not accept');
  if (error instanceof errors.JWSSignatureVerificationFailed || error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) {
    return invalid('the access token signature is invalid');
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid || error instanceof errors.JOSENotSupported) {
    return invalid('the access token is malformed');
  }
  return undefined;
}

export function createAccessTokenVerifier(options: AccessTokenVerifierOptions): AccessTokenVerifier {
  const { issuer, audience, clockTolerance, now } = options;
  let keys: Promise<{ getKey: JWTVerifyGetKey; algorithms: string[] }> | undefined;

  async function loadKeys() {
    const metadata = await options.discovery.get();
    const advertised = metadata.id_token_signing_alg_values_supported;
    const algorithms = (options.algorithms ?? (Array.isArray(advertised) && advertised.length > 0 ? advertised : ASYMMETRIC_ALGS))
      .filter((alg) => ASYMMETRIC_ALGS.includes(alg));
    if (algorithms.length === 0) throw new KeysUnavailableError('the issuer advertises no asymmetric signing algorithm');
    const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri), { [customFetch]: options.fetch, timeoutDuration: 5000 });
    const getKey: JWTVerifyGetKey = async (header, token) => {
      try {
        return await jwks(header, token);
      } catch (error) {
        // No key for this kid/alg (after a refetch) is a verdict on the token; anything else means
        // the key set itself could not be fetched or read, which says nothing about the token.
        if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) throw error;
        throw new KeysUnavailableError("the issuer's JWKS could not be fetched", { cause: error });
      }
    };
    return { getKey, algorithms };
  }

  return {
    async verify(token) {
      if (!keys) {
        keys = loadKeys();
        keys.catch(() => { keys = undefined; });
      }
      let loaded;
      try {
        loaded = await keys;
      } catch (error) {
        if (error instanceof KeysUnavailableError) throw error;
        throw new KeysUnavailableError("the issuer's metadata could not be fetched", { cause: error });
      }
      const t = now();
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, loaded.getKey, {
          issuer,
          audience,
          algorithms: loaded.algorithms,
          typ: 'at+jwt',
          requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
          clockTolerance,
          currentDate: new Date(t * 1000),
        }));
      } catch (error) {
        throw describe(error) ?? error;
      }
      const claims = payload as AccessTokenClaims;
      if (typeof claims.iat !== 'number' || claims.iat > t + clockTolerance) throw invalid('the access token was issued in the future (iat)');
      for (const member of ['sub', 'jti', 'client_id'] as const) {
        if (typeof claims[member] !== 'string' || !claims[member]) throw invalid(`the access token's ${member} claim is invalid`);
      }
      if (claims.scope !== undefined && typeof claims.scope !== 'string') throw invalid("the access token's scope claim is invalid");
      if (claims.sid !== undefined && typeof claims.sid !== 'string') throw invalid("the access token's sid claim is invalid");
      if (claims.cnf !== undefined && (typeof claims.cnf !== 'object' || claims.cnf === null || (claims.cnf.jkt !== undefined && typeof claims.cnf.jkt !== 'string'))) {
        throw invalid("the access token's cnf claim is invalid");
      }
      const actors = claims.act === undefined ? [] : actorsOf(claims.act);
      if (!actors) throw invalid("the access token's act claim is malformed");
      return {
        person: claims.sub,
        agent: claims.client_id,
        actors,
        scopes: (claims.scope ?? '').split(' ').filter(Boolean),
        audience,
        sid: claims.sid,
        jti: claims.jti,
        expiresAt: claims.exp,
        claims,
      };
    },
  };
}
