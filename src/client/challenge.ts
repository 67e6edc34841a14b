// The refusal a protected resource sends (RFC 6750 §3, RFC 9449 §7.1, RFC 9728 §5.1): a status, a
// `WWW-Authenticate` challenge, `Cache-Control: no-store` and an OAuth-shaped JSON body.
// A request without any token gets a challenge without an error code (RFC 6750 §3.1); every
// challenge carries `resource_metadata`, the URL of this resource's RFC 9728 metadata, so a
// client (an MCP client, say) can find the authorization server from a bare 401.
import type { Response } from 'express';

import type { ProtectedResourceError } from './errors.ts';

/** RFC 9110 §5.6.4 quoted-string. */
const quote = (value: string) => `"${value.replace(/[\\"]/g, '\\$&')}"`;

export interface ChallengeContext {
  resourceMetadata: string;
  /** DPoP proof algorithms accepted (RFC 9449 §7.1 `algs`). */
  dpopAlgs: readonly string[];
  /** Scopes the resource requires, for insufficient_scope challenges (RFC 6750 §3). */
  scopes: readonly string[];
}

export function challengeHeader(error: ProtectedResourceError, context: ChallengeContext): string {
  const params: [string, string][] = [];
  if (error.error) {
    params.push(['error', error.error], ['error_description', error.message]);
    if (error.error === 'insufficient_scope' && context.scopes.length > 0) params.push(['scope', context.scopes.join(' ')]);
  }
  if (error.scheme === 'DPoP') params.push(['algs', context.dpopAlgs.join(' ')]);
  params.push(['resource_metadata', context.resourceMetadata]);
  return `${error.scheme} ${params.map(([name, value]) => `${name}=${quote(value)}`).join(', ')}`;
}

export function sendRefusal(res: Response, error: ProtectedResourceError, context: ChallengeContext, retryAfter?: number): void {
  res.status(error.status).set('Cache-Control', 'no-store');
  if (error.status === 503) {
    if (retryAfter !== undefined) res.set('Retry-After', String(retryAfter));
    res.json({ error: 'temporarily_unavailable', error_description: error.message });
    return;
  }
  res.set('WWW-Authenticate', challengeHeader(error, context));
  res.json({ error: error.error ?? 'invalid_token', error_description: error.message });
}
