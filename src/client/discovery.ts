// The authorization server's metadata (OpenID Connect Discovery 1.0 §4 / RFC 8414 §3), fetched
// from `{issuer}/.well-known/openid-configuration` once and cached. The document must name the
// issuer it was fetched for (RFC 8414 §3.3), else it is refused: a mix-up defence. A failed fetch
// is not cached, so the next caller tries again.
import { epochSeconds, requestJson } from './http.ts';
import type { FetchLike } from './http.ts';

export interface AuthorizationServerMetadata {
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  introspection_endpoint?: string;
  id_token_signing_alg_values_supported?: string[];
  dpop_signing_alg_values_supported?: string[];
  [member: string]: unknown;
}

export class DiscoveryError extends Error {
  readonly code = 'ERR_DISCOVERY_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DiscoveryError';
  }
}

export interface Discovery {
  get(): Promise<AuthorizationServerMetadata>;
}

const DEFAULT_MAX_AGE = 3600;

export function createDiscovery(options: { issuer: string; fetch: FetchLike; maxAge?: number; now?: () => number }): Discovery {
  const issuer = options.issuer;
  const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
  const maxAge = options.maxAge ?? DEFAULT_MAX_AGE;
  const now = options.now ?? epochSeconds;
  let cached: { metadata: AuthorizationServerMetadata; fetchedAt: number } | undefined;
  let inflight: Promise<AuthorizationServerMetadata> | undefined;

  async function load(): Promise<AuthorizationServerMetadata> {
    let res;
    try {
      res = await requestJson(options.fetch, url, { headers: { accept: 'application/json' } });
    } catch (error) {
      throw new DiscoveryError(`the issuer's discovery document could not be fetched (${url})`, { cause: error });
    }
    if (res.status !== 200) throw new DiscoveryError(`the issuer's discovery document answered HTTP ${res.status} (${url})`);
    const metadata = res.body;
    if (metadata.issuer !== issuer) {
      throw new DiscoveryError(`the discovery document names issuer ${JSON.stringify(metadata.issuer)}, not ${JSON.stringify(issuer)}`);
    }
    for (const member of ['jwks_uri', 'token_endpoint'] as const) {
      if (typeof metadata[member] !== 'string') throw new DiscoveryError(`the discovery document has no ${member}`);
    }
    cached = { metadata: metadata as AuthorizationServerMetadata, fetchedAt: now() };
    return cached.metadata;
  }

  return {
    get() {
      if (cached && now() - cached.fetchedAt < maxAge) return Promise.resolve(cached.metadata);
      // A stale document keeps serving while a fresh one loads; only the first load waits.
      inflight ??= load().finally(() => { inflight = undefined; });
      if (cached) {
        inflight.catch(() => undefined);
        return Promise.resolve(cached.metadata);
      }
      return inflight;
    },
  };
}
