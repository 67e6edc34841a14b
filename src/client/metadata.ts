// OAuth 2.0 Protected Resource Metadata (RFC 9728 §2, §3): the document a resource server (or an
// MCP server) serves at `/.well-known/oauth-protected-resource`, naming its resource identifier,
// the authorization server(s) that issue its tokens, its scopes and how tokens are presented.
// The 401 challenges of requireAgentToken point here (`resource_metadata`, §5.1).
import type { RequestHandler } from 'express';

import { DPOP_ALGORITHMS } from '../keys/dpop.ts';

export interface ProtectedResourceMetadataOptions {
  /** The resource identifier: the audience of its tokens (RFC 9728 §3.3: must match what clients use). */
  resource: string;
  /** The gateway's issuer. */
  issuer: string;
  scopes: string[];
  /** Whether only DPoP-bound tokens are accepted (`requireAgentToken({ dpop: 'required' })`). */
  dpopRequired?: boolean;
  /** Human-readable name (RFC 9728 §2 `resource_name`). */
  resourceName?: string;
  /** DPoP proof algorithms accepted (default those requireAgentToken accepts by default). */
  dpopAlgorithms?: string[];
  /** Extra members (e.g. `resource_documentation`), added as given. */
  extra?: Record<string, unknown>;
}

/** The metadata document itself (RFC 9728 §2). */
export function protectedResourceMetadataDocument(options: ProtectedResourceMetadataOptions): Record<string, unknown> {
  for (const option of ['resource', 'issuer'] as const) {
    if (typeof options?.[option] !== 'string' || !URL.canParse(options[option])) throw new TypeError(`${option} must be an absolute URL`);
  }
  if (!Array.isArray(options.scopes) || options.scopes.some((scope) => typeof scope !== 'string')) throw new TypeError('scopes must be an array of strings');
  return {
    ...options.extra,
    resource: options.resource,
    authorization_servers: [options.issuer],
    scopes_supported: [...options.scopes],
    bearer_methods_supported: ['header'],
    dpop_signing_alg_values_supported: [...(options.dpopAlgorithms ?? DPOP_ALGORITHMS)],
    dpop_bound_access_tokens_required: options.dpopRequired ?? false,
    ...(options.resourceName !== undefined ? { resource_name: options.resourceName } : {}),
  };
}

/** An express handler serving the document; mount it at `/.well-known/oauth-protected-resource`. */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): RequestHandler {
  const body = JSON.stringify(protectedResourceMetadataDocument(options));
  return (_req, res) => {
    res.status(200).set('Content-Type', 'application/json').set('Cache-Control', 'public, max-age=3600').send(body);
  };
}
