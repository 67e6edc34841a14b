// requireAgentToken: express middleware for a resource server (or MCP server) that accepts the
// gateway's agent tokens. In order, per request:
//   1. the access token from `Authorization: Bearer|DPoP` (RFC 6750 §2.1, RFC 9449 §7.1);
//   2. the JWT, verified strictly (access-token.ts, RFC 9068 §4);
//   3. sender constraint: a token with `cnf.jkt` needs the DPoP scheme and a proof for this very
//      request (htm, htu from the request's own URL, ath, iat window) signed by that key, used
//      once (RFC 9449 §7.1, §11.1); an unbound token under the DPoP scheme is refused, and
//      `dpop: 'required'` refuses unbound tokens outright;
//   4. revocation: the revocation feed's in-memory lists (no gateway call per request) or, when
//      the feed has been down longer than `revocation.maxFeedOutage`, introspection per request,
//      failing closed (503);
//   5. scopes (403 insufficient_scope).
// Refusals are OAuth-shaped with an RFC 6750 / RFC 9449 challenge carrying RFC 9728
// `resource_metadata`. Without `client`, revocation is NOT enforced (tokens stay good until they
// expire); a warning says so once.
import type { NextFunction, Request, RequestHandler, Response } from 'express';

import { DPOP_ALGORITHMS, DpopProofError, verifyDpopProof } from '../keys/dpop.ts';
import { createAccessTokenVerifier, KeysUnavailableError } from './access-token.ts';
import type { AgentToken } from './access-token.ts';
import { sendRefusal } from './challenge.ts';
import type { ChallengeContext } from './challenge.ts';
import { createClientAuthentication } from './client-auth.ts';
import type { ClientCredentials } from './client-auth.ts';
import { createDiscovery, DiscoveryError } from './discovery.ts';
import { ProtectedResourceError } from './errors.ts';
import type { FetchLike } from './http.ts';
import { createIntrospector, IntrospectionUnavailableError } from './introspection.ts';
import type { Introspector } from './introspection.ts';
import { resolveLogger } from './logger.ts';
import type { ClientLogger } from './logger.ts';
import { createReplayCache } from './replay-cache.ts';
import { createRevocationFeed } from './revocation-feed.ts';
import type { RevocationFeed } from './revocation-feed.ts';
import { createRevocationList } from './revocation-list.ts';
import type { RevocationList } from './revocation-list.ts';

declare global {
  // Declaration merging is how express types request extensions.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The verified agent token, set by requireAgentToken. */
      agentToken?: AgentToken;
    }
  }
}

export interface RequireAgentTokenOptions {
  /** The gateway's issuer URL (exactly as in its discovery document). */
  issuer: string;
  /** This resource's identifier: the `aud` its tokens must carry (a configured `resources[].id`). */
  audience: string;
  /** Scopes every request must carry (all of them). Per-route scopes: `middleware.scopes(...)`. */
  scopes?: string[] | string;
  /** `allowed` (default): Bearer and DPoP-bound tokens; `required`: DPoP-bound tokens only. */
  dpop?: 'required' | 'allowed';
  /** The resource server's own client (config `resources[].client`): enables revocation. */
  client?: ClientCredentials;
  revocation?: {
    /** Seconds the feed may be down before every request is introspected instead (default 30). */
    maxFeedOutage?: number;
    /** Introspection timeout in seconds (default 3). */
    introspectionTimeout?: number;
    /** Feed reconnection: first delay and cap in milliseconds (default 500 and 30 000). */
    reconnectDelay?: number;
    maxReconnectDelay?: number;
    /** Milliseconds of feed silence after which the stream is presumed dead (default 45 000). */
    idleTimeout?: number;
  };
  fetch?: FetchLike;
  /** Seconds of clock skew tolerated on exp/nbf/iat (default 5). */
  clockTolerance?: number;
  /** Accepted token signing algorithms (default: the asymmetric ones in the issuer's discovery). */
  algorithms?: string[];
  /** How far a DPoP proof's iat may be from now, in seconds (default 300). */
  dpopMaxAge?: number;
  /** Accepted DPoP proof algorithms (default ES256, Ed25519, EdDSA, as the gateway). */
  dpopAlgorithms?: string[];
  /** URL of this resource's RFC 9728 metadata; default `<request origin>/.well-known/oauth-protected-resource`. */
  resourceMetadata?: string;
  logger?: Partial<ClientLogger>;
  /** Epoch seconds (fractions allowed); tests control time with it. */
  now?: () => number;
}

export interface RevocationStatus {
  /** `feed`: enforced through the feed; `disabled`: no `client`, not enforced. */
  mode: 'feed' | 'disabled';
  connected: boolean;
  /** Seconds the feed has been down (Infinity before the first catch-up). */
  outage: number;
  /** Whether requests are being introspected because the feed has been down too long. */
  introspecting: boolean;
}

export interface AgentTokenMiddleware extends RequestHandler {
  /** The same checks plus these scopes, sharing this middleware's keys, caches and feed. */
  scopes(...required: string[]): RequestHandler;
  /** Resolves once revocation is in effect (the feed's first catch-up), at once without `client`. */
  ready(): Promise<void>;
  revocationStatus(): RevocationStatus;
  /** Stops the revocation feed; for shutdown and tests. */
  close(): Promise<void>;
}

const RETRY_AFTER = 5;

function parseScopes(value: string[] | string | undefined, option: string): string[] {
  if (value === undefined) return [];
  const list = typeof value === 'string' ? value.split(' ') : value;
  if (!Array.isArray(list) || list.some((scope) => typeof scope !== 'string')) throw new TypeError(`${option} must be a string or an array of strings`);
  return list.filter(Boolean);
}

function checkUrl(value: unknown, option: string): string {
  if (typeof value !== 'string' || !URL.canParse(value)) throw new TypeError(`${option} must be an absolute URL`);
  return value;
}

const AUTHORIZATION = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i;

export function requireAgentToken(options: RequireAgentTokenOptions): AgentTokenMiddleware {
  const issuer = checkUrl(options?.issuer, 'issuer');
  if (typeof options.audience !== 'string' || !options.audience) throw new TypeError('audience is required');
  const audience = options.audience;
  const baseScopes = parseScopes(options.scopes, 'scopes');
  if (options.dpop !== undefined && options.dpop !== 'required' && options.dpop !== 'allowed') throw new TypeError('dpop must be "required" or "allowed"');
  const dpopRequired = options.dpop === 'required';
  if (options.resourceMetadata !== undefined) checkUrl(options.resourceMetadata, 'resourceMetadata');
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? (() => Date.now() / 1000);
  const clockTolerance = options.clockTolerance ?? 5;
  const dpopMaxAge = options.dpopMaxAge ?? 300;
  const dpopAlgs = options.dpopAlgorithms ?? [...DPOP_ALGORITHMS];
  const maxFeedOutage = options.revocation?.maxFeedOutage ?? 30;
  const logger = resolveLogger(options.logger);

  const discovery = createDiscovery({ issuer, fetch: fetchImpl, now });
  const verifier = createAccessTokenVerifier({
    issuer, audience, discovery, fetch: fetchImpl, clockTolerance, now,
    ...(options.algorithms ? { algorithms: options.algorithms } : {}),
  });
  const replays = createReplayCache(now);

  let feed: RevocationFeed | undefined;
  let list: RevocationList | undefined;
  let introspector: Introspector | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  if (options.client) {
    const auth = createClientAuthentication(options.client, issuer, () => Math.floor(now()));
    list = createRevocationList(now);
    introspector = createIntrospector({ discovery, auth, fetch: fetchImpl, timeoutMs: (options.revocation?.introspectionTimeout ?? 3) * 1000 });
    feed = createRevocationFeed({
      issuer, discovery, auth, fetch: fetchImpl, list, logger, now,
      ...(options.revocation?.reconnectDelay !== undefined ? { initialDelay: options.revocation.reconnectDelay } : {}),
      ...(options.revocation?.maxReconnectDelay !== undefined ? { maxDelay: options.revocation.maxReconnectDelay } : {}),
      ...(options.revocation?.idleTimeout !== undefined ? { idleTimeout: options.revocation.idleTimeout } : {}),
    });
    const revocations = list;
    sweeper = setInterval(() => revocations.sweep(), 60_000);
    sweeper.unref();
  } else {
    logger.warn(`agentgate: requireAgentToken for ${audience} has no \`client\`: revoked tokens (ended sessions, disabled agents) are accepted until they expire. Configure resources[].client at the gateway and pass \`client\` to enforce revocation.`);
  }

  // A gateway outage refuses every request; one line per cause every 30 s says so without flooding.
  const lastWarned = new Map<string, number>();
  function warnThrottled(cause: string, message: string): void {
    const t = now();
    if ((lastWarned.get(cause) ?? -Infinity) > t - 30) return;
    lastWarned.set(cause, t);
    logger.warn(message);
  }

  /** Tokens this instance already accepted for a request (app-wide use plus `scopes()` on a route). */
  const accepted = new WeakSet<Request>();

  function context(req: Request, scopes: readonly string[]): ChallengeContext {
    return {
      resourceMetadata: options.resourceMetadata ?? `${req.protocol}://${req.host}/.well-known/oauth-protected-resource`,
      dpopAlgs,
      scopes,
    };
  }

  /** RFC 9449 §4.3 item 9: the proof names the URL this request was made to, without the query. */
  function requestUrl(req: Request): string {
    return `${req.protocol}://${req.host}${req.originalUrl.split('?')[0]}`;
  }

  function checkDpop(req: Request, scheme: 'Bearer' | 'DPoP', token: string, agentToken: AgentToken): void {
    const jkt = agentToken.claims.cnf?.jkt;
    if (jkt === undefined) {
      if (scheme === 'DPoP') throw new ProtectedResourceError(401, 'invalid_token', 'the access token is not DPoP-bound; present it with the Bearer scheme', 'DPoP');
      if (dpopRequired) throw new ProtectedResourceError(401, 'invalid_token', 'this resource accepts DPoP-bound access tokens only', 'DPoP');
      return;
    }
    if (scheme !== 'DPoP') {
      throw new ProtectedResourceError(401, 'invalid_token', 'the access token is DPoP-bound; present it with the DPoP scheme and a DPoP proof', 'DPoP');
    }
    const proof = req.headers.dpop;
    if (typeof proof !== 'string' || !proof) throw new ProtectedResourceError(401, 'invalid_dpop_proof', 'a DPoP proof (DPoP header) is required', 'DPoP');
    let verified;
    try {
      verified = verifyDpopProof(proof, { method: req.method, url: requestUrl(req), accessToken: token, now: Math.floor(now()), maxAge: dpopMaxAge, algorithms: dpopAlgs });
    } catch (error) {
      if (error instanceof DpopProofError) throw new ProtectedResourceError(401, 'invalid_dpop_proof', error.message, 'DPoP');
      throw error;
    }
    if (verified.thumbprint !== jkt) {
      throw new ProtectedResourceError(401, 'invalid_token', 'the DPoP proof is not signed by the key the access token is bound to (cnf.jkt)', 'DPoP');
    }
    if (!replays.use(`${verified.thumbprint}:${verified.jti}`, verified.iat + dpopMaxAge)) {
      throw new ProtectedResourceError(401, 'invalid_dpop_proof', 'the DPoP proof has been used before (jti)', 'DPoP');
    }
  }

  async function checkRevocation(token: string, agentToken: AgentToken, scheme: 'Bearer' | 'DPoP'): Promise<void> {
    if (!feed || !list || !introspector) return;
    const revoked = () => new ProtectedResourceError(401, 'invalid_token', 'the access token has been revoked', scheme);
    if (list.check(agentToken)) throw revoked();
    if (feed.outage() <= maxFeedOutage) return;
    // The feed has been down too long to trust the lists: ask the gateway (fail closed).
    if (!(await introspector.active(token))) throw revoked();
  }

  function handler(required: readonly string[]): RequestHandler {
    return async (req: Request, res: Response, next: NextFunction) => {
      const schemeOf = (): 'Bearer' | 'DPoP' => (dpopRequired ? 'DPoP' : 'Bearer');
      try {
        let agentToken = req.agentToken;
        let scheme: 'Bearer' | 'DPoP' = agentToken?.claims.cnf?.jkt !== undefined ? 'DPoP' : 'Bearer';
        if (!agentToken || !accepted.has(req)) {
          const header = req.headers.authorization;
          const match = header ? AUTHORIZATION.exec(header) : null;
          if (!match) {
            // A malformed Bearer/DPoP credential is an invalid token; any other (or no)
            // credential is a request without authentication information (RFC 6750 §3.1).
            if (header && /^(Bearer|DPoP)(\s|$)/i.test(header)) throw new ProtectedResourceError(401, 'invalid_token', 'the access token is malformed', schemeOf());
            throw new ProtectedResourceError(401, undefined, 'an access token is required', schemeOf());
          }
          scheme = match[1]!.toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer';
          const token = match[2]!;
          try {
            agentToken = await verifier.verify(token);
          } catch (error) {
            if (error instanceof ProtectedResourceError && scheme === 'DPoP') {
              throw new ProtectedResourceError(error.status, error.error, error.message, 'DPoP');
            }
            throw error;
          }
          checkDpop(req, scheme, token, agentToken);
          await checkRevocation(token, agentToken, scheme);
        }
        const missing = required.filter((scope) => !agentToken.scopes.includes(scope));
        if (missing.length > 0) {
          const label = missing.length === 1 ? 'scope' : 'scopes';
          throw new ProtectedResourceError(403, 'insufficient_scope', `the access token lacks the ${label} ${missing.join(' ')}`, scheme);
        }
        req.agentToken = agentToken;
        accepted.add(req);
        next();
      } catch (error) {
        if (error instanceof ProtectedResourceError) {
          sendRefusal(res, error, context(req, required));
        } else if (error instanceof KeysUnavailableError || error instanceof DiscoveryError) {
          warnThrottled('keys', `agentgate: cannot verify access tokens: ${error.message}`);
          sendRefusal(res, new ProtectedResourceError(503, 'temporarily_unavailable', "the authorization server's keys cannot be fetched; retry shortly"), context(req, required), RETRY_AFTER);
        } else if (error instanceof IntrospectionUnavailableError) {
          warnThrottled('introspection', `agentgate: the revocation feed is down and ${error.message}: refusing requests`);
          sendRefusal(res, new ProtectedResourceError(503, 'temporarily_unavailable', 'the revocation status of the access token cannot be established; retry shortly'), context(req, required), RETRY_AFTER);
        } else {
          next(error);
        }
      }
    };
  }

  const middleware = handler(baseScopes) as AgentTokenMiddleware;
  middleware.scopes = (...required: string[]) => handler([...new Set([...baseScopes, ...parseScopes(required, 'scopes()')])]);
  middleware.ready = async () => {
    await feed?.ready();
  };
  middleware.revocationStatus = () => {
    if (!feed) return { mode: 'disabled', connected: false, outage: 0, introspecting: false };
    const outage = feed.outage();
    return { mode: 'feed', connected: feed.connected, outage, introspecting: outage > maxFeedOutage };
  };
  middleware.close = async () => {
    clearInterval(sweeper);
    await feed?.close();
  };
  return middleware;
}
