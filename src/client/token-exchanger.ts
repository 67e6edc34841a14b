// createTokenExchanger: the agent side of RFC 8693. The agent authenticates as itself
// (private_key_jwt with a fresh assertion per request, or client_secret_basic), sends the
// person's (or its parent agent's) token as `subject_token`, and gets its own narrowed token.
// Results are cached per (subject token, scope, audience, actor token) until shortly before
// they expire, and concurrent identical calls share one request, so an agent can call
// `exchange()` before every resource call. With `dpopKey`, each request carries a DPoP proof
// (RFC 9449 §5) and the token comes back bound to that key.
import { createHash } from 'node:crypto';

import type { CryptoKey, JWK } from 'jose';

import { createClientAuthentication } from './client-auth.ts';
import { createDiscovery } from './discovery.ts';
import { dpopProof } from './dpop-proof.ts';
import type { DpopKeyPair } from './dpop-proof.ts';
import { InsufficientUserAuthenticationError, TokenExchangeError } from './errors.ts';
import { requestJson } from './http.ts';
import type { FetchLike } from './http.ts';

export const TOKEN_EXCHANGE_GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

export interface TokenExchangerOptions {
  issuer: string;
  /** The agent's client id at the gateway. */
  clientId: string;
  /** private_key_jwt: the agent's registered private key (CryptoKey or private JWK). */
  privateKey?: CryptoKey | JWK;
  /** JWS alg / kid of the client assertion (default from the key / JWK). */
  alg?: string;
  kid?: string;
  /** client_secret_basic (or `authMethod: 'client_secret_post'`). */
  clientSecret?: string;
  authMethod?: 'client_secret_basic' | 'client_secret_post';
  /** Bind the tokens to this key pair (DPoP, RFC 9449). */
  dpopKey?: DpopKeyPair;
  /** Seconds before expiry at which a cached token is exchanged anew (default 30). */
  refreshBefore?: number;
  /** Most cached results kept (default 1000; the oldest go first). */
  maxCacheEntries?: number;
  fetch?: FetchLike;
  /** Epoch seconds; tests control time with it. */
  now?: () => number;
}

export interface ExchangeRequest {
  /** The person's access token from the app, or the parent agent's token (re-delegation). */
  subjectToken: string;
  /** Space-separated string or list. */
  scope?: string | string[];
  /** The resource the token is for (a configured `resources[].id`). */
  audience: string;
  /** RFC 8693 §2.1 actor token: the agent's own access token, or a JWT it signed. */
  actorToken?: string;
  /** Default `…:token-type:access_token`; `…:token-type:jwt` for a self-signed actor token. */
  actorTokenType?: string;
}

export interface ExchangedToken {
  accessToken: string;
  /** `Bearer`, or `DPoP` for a key-bound token. */
  tokenType: string;
  /** Epoch seconds. */
  expiresAt: number;
  /** The granted scopes, space-separated. */
  scope: string;
}

export interface TokenExchanger {
  exchange(request: ExchangeRequest): Promise<ExchangedToken>;
  /** Forgets every cached token (e.g. after the person signed out). */
  clear(): void;
}

export function createTokenExchanger(options: TokenExchangerOptions): TokenExchanger {
  if (typeof options?.issuer !== 'string' || !URL.canParse(options.issuer)) throw new TypeError('issuer must be an absolute URL');
  const { issuer } = options;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const auth = createClientAuthentication({
    clientId: options.clientId,
    ...(options.clientSecret !== undefined ? { clientSecret: options.clientSecret } : {}),
    ...(options.privateKey !== undefined ? { privateKey: options.privateKey } : {}),
    ...(options.alg !== undefined ? { alg: options.alg } : {}),
    ...(options.kid !== undefined ? { kid: options.kid } : {}),
    ...(options.authMethod !== undefined ? { authMethod: options.authMethod } : {}),
  }, issuer, now, 'createTokenExchanger');
  if (options.dpopKey !== undefined && (!options.dpopKey.privateKey || !options.dpopKey.publicKey)) {
    throw new TypeError('dpopKey must be a key pair { privateKey, publicKey }');
  }
  const fetchImpl: FetchLike = options.fetch ?? ((input, init) => fetch(input, init));
  const discovery = createDiscovery({ issuer, fetch: fetchImpl, now });
  const refreshBefore = options.refreshBefore ?? 30;
  const maxEntries = options.maxCacheEntries ?? 1000;
  const cache = new Map<string, ExchangedToken>();
  const inflight = new Map<string, Promise<ExchangedToken>>();

  async function request(req: ExchangeRequest, scope: string | undefined): Promise<ExchangedToken> {
    const metadata = await discovery.get().catch((error: unknown) => {
      throw new TokenExchangeError('temporarily_unavailable', (error as Error).message, 0, { cause: error });
    });
    const form = new URLSearchParams({
      grant_type: TOKEN_EXCHANGE_GRANT,
      subject_token: req.subjectToken,
      subject_token_type: ACCESS_TOKEN_TYPE,
      audience: req.audience,
    });
    if (scope) form.set('scope', scope);
    if (req.actorToken !== undefined) {
      form.set('actor_token', req.actorToken);
      form.set('actor_token_type', req.actorTokenType ?? ACCESS_TOKEN_TYPE);
    }
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    await auth.apply(form, headers);
    if (options.dpopKey) headers.dpop = await dpopProof({ key: options.dpopKey, method: 'POST', url: metadata.token_endpoint, now: now() });
    let res;
    try {
      res = await requestJson(fetchImpl, metadata.token_endpoint, { method: 'POST', headers, body: form });
    } catch (error) {
      throw new TokenExchangeError('temporarily_unavailable', 'the gateway could not be reached', 0, { cause: error });
    }
    const body = res.body;
    if (res.status !== 200) {
      const description = typeof body.error_description === 'string' ? body.error_description : undefined;
      if (body.error === 'insufficient_user_authentication') {
        const maxAge = Number(body.max_age);
        throw new InsufficientUserAuthenticationError(description, res.status, {
          ...(typeof body.acr_values === 'string' ? { acrValues: body.acr_values } : {}),
          ...(body.max_age !== undefined && Number.isFinite(maxAge) ? { maxAge } : {}),
        });
      }
      throw new TokenExchangeError(typeof body.error === 'string' ? body.error : 'server_error', description ?? (typeof body.error === 'string' ? undefined : `HTTP ${res.status}`), res.status);
    }
    if (typeof body.access_token !== 'string' || typeof body.expires_in !== 'number' || typeof body.token_type !== 'string') {
      throw new TokenExchangeError('server_error', 'the token response lacks access_token, token_type or expires_in', res.status);
    }
    return {
      accessToken: body.access_token,
      tokenType: body.token_type,
      expiresAt: now() + body.expires_in,
      // RFC 8693 §2.2.1: scope may be omitted when it is what was asked for.
      scope: typeof body.scope === 'string' ? body.scope : (scope ?? ''),
    };
  }

  function remember(key: string, token: ExchangedToken): void {
    const t = now();
    for (const [k, v] of cache) if (v.expiresAt - refreshBefore <= t) cache.delete(k);
    while (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, token);
  }

  return {
    exchange(req) {
      if (typeof req?.subjectToken !== 'string' || !req.subjectToken) return Promise.reject(new TypeError('exchange: subjectToken is required'));
      if (typeof req.audience !== 'string' || !req.audience) return Promise.reject(new TypeError('exchange: audience is required'));
      const scope = Array.isArray(req.scope) ? req.scope.join(' ') : req.scope;
      // Hashed so the cache's keys do not keep a second copy of the tokens.
      const key = createHash('sha256')
        .update(JSON.stringify([req.subjectToken, scope ?? '', req.audience, req.actorToken ?? '', req.actorTokenType ?? '']))
        .digest('base64url');
      const cached = cache.get(key);
      if (cached && now() < cached.expiresAt - refreshBefore) return Promise.resolve(cached);
      let pending = inflight.get(key);
      if (!pending) {
        pending = request(req, scope)
          .then((token) => {
            remember(key, token);
            return token;
          })
          .finally(() => inflight.delete(key));
        inflight.set(key, pending);
      }
      return pending;
    },
    clear() {
      cache.clear();
    },
  };
}
