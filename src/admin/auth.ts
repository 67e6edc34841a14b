// Bearer authentication of the admin API (RFC 6750): a JWT access token the gateway issued to
// one of `admin.clients` through client_credentials, for the admin audience, carrying the
// agentgate:admin scope, not revoked. Anything else is 401 invalid_token / 403 insufficient_scope
// with a WWW-Authenticate challenge.
import type { RequestHandler, Response } from 'express';

import { ADMIN_SCOPE, adminAudience } from '../authz/index.ts';
import type { AccessTokenVerifier } from '../authz/index.ts';

export interface AdminAuthOptions {
  issuer: string;
  tokens: AccessTokenVerifier;
  adminClients: readonly string[];
}

function challenge(res: Response, status: 401 | 403, error: 'invalid_token' | 'insufficient_scope', description: string): void {
  const scope = error === 'insufficient_scope' ? `, scope="${ADMIN_SCOPE}"` : '';
  res.status(status)
    .set('WWW-Authenticate', `Bearer realm="agentgate-admin", error="${error}", error_description="${description}"${scope}`)
    .set('Cache-Control', 'no-store')
    .json({ error, error_description: description });
}

export function requireAdmin(options: AdminAuthOptions): RequestHandler {
  const audience = adminAudience(options.issuer);
  const admins = new Set(options.adminClients);
  return async (req, res, next) => {
    try {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(req.headers.authorization ?? '');
      if (!match) {
        challenge(res, 401, 'invalid_token', 'a bearer access token for the admin API is required');
        return;
      }
      const claims = await options.tokens.verify(match[1]!, { audience });
      if (!claims || (await options.tokens.isRevoked(claims))) {
        challenge(res, 401, 'invalid_token', 'the access token is invalid, expired, revoked or not meant for the admin API');
        return;
      }
      if (!admins.has(claims.client_id) || !(claims.scope ?? '').split(' ').includes(ADMIN_SCOPE)) {
        challenge(res, 403, 'insufficient_scope', `the admin API needs the ${ADMIN_SCOPE} scope of an admin client`);
        return;
      }
      res.locals.adminClient = claims.client_id;
      next();
    } catch (error) {
      next(error);
    }
  };
}
