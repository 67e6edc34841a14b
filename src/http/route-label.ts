// Route labels for metrics: a fixed, small set (route patterns), never raw paths, so a client
// cannot mint unbounded time series by requesting random URLs.
import type { Request } from 'express';

// oidc-provider's default route table (relative to the issuer path).
const PROVIDER_ROUTES: [RegExp, string][] = [
  [/^\/\.well-known\/openid-configuration$/, '/.well-known/openid-configuration'],
  [/^\/auth$/, '/auth'],
  [/^\/auth\/[^/]+$/, '/auth/:uid'],
  [/^\/token$/, '/token'],
  [/^\/token\/introspection$/, '/token/introspection'],
  [/^\/token\/revocation$/, '/token/revocation'],
  [/^\/jwks$/, '/jwks'],
  [/^\/me$/, '/me'],
  [/^\/session\/end$/, '/session/end'],
  [/^\/session\/end\/confirm$/, '/session/end/confirm'],
  [/^\/session\/end\/success$/, '/session/end/success'],
  [/^\/request$/, '/request'],
];

export function createRouteLabeler(issuerPath: string): (req: Request) => string {
  return (req) => {
    if (req.route?.path && typeof req.route.path === 'string') return `${req.baseUrl}${req.route.path}`;
    const path = (req.originalUrl ?? req.url).split('?')[0] ?? '';
    if (!path.startsWith(issuerPath)) return 'unmatched';
    const rest = path.slice(issuerPath.length) || '/';
    for (const [pattern, label] of PROVIDER_ROUTES) if (pattern.test(rest)) return `${issuerPath}${label}`;
    return 'unmatched';
  };
}
