// HTTP endpoints of the upstream face, under {issuer}/federation:
//   GET  /oidc/{idp}/callback            the IdP's redirect back (one per IdP: mix-up defence)
//   POST /oidc/{idp}/backchannel-logout  OIDC Back-Channel Logout 1.0
//   GET  /oidc/{idp}/logged-out          return from the IdP's end_session endpoint
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';

import type { Logger } from '../ops/index.ts';
import { renderSignInFailedPage, renderSignedOutPage } from '../pages/index.ts';
import type { Store } from '../store/index.ts';
import { FederationError } from './errors.ts';
import type { Federation } from './service.ts';

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

export const logoutReturnKey = (state: string) => `fed:logout:${state}`;

export function createFederationRouter(deps: { federation: Federation; logger: Logger; store: Store; basePath: string }): Router {
  const { federation, logger } = deps;
  const router = express.Router();

  router.get('/oidc/:idp/callback', wrap(async (req, res) => {
    const idp = String(req.params.idp);
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    try {
      const { interactionUid } = await federation.callback({ idp, query, ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}) });
      res.set('Cache-Control', 'no-store').redirect(303, `${deps.basePath}/interaction/${encodeURIComponent(interactionUid)}/federated`);
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      // No session is made; the audit trail says why (without tokens or the response itself).
      await federation.recordFailure({ idp, error, reqId: req.id });
      const status = error.code === 'ERR_FEDERATION_IDP_UNREACHABLE' ? 502
        : error.code === 'ERR_FEDERATION_TENANT_NOT_ALLOWED' || error.code === 'ERR_FEDERATION_DOMAIN_NOT_ALLOWED' ? 403 : 400;
      res.status(status).type('html').set('Cache-Control', 'no-store')
        .send(renderSignInFailedPage({ message: error.message, correlationId: req.id }));
    }
  }));

  router.post('/oidc/:idp/backchannel-logout', express.urlencoded({ extended: false, limit: '16kb' }), wrap(async (req, res) => {
    const idp = String(req.params.idp);
    const token = (req.body as Record<string, unknown> | undefined)?.logout_token;
    res.set('Cache-Control', 'no-store');
    if (typeof token !== 'string' || token.length === 0) {
      res.status(400).json({ error: 'invalid_request', error_description: 'logout_token is required' });
      return;
    }
    try {
      await federation.backchannelLogout(idp, token);
      res.status(200).end();
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      logger.warn({ event: 'session.upstream_logout_refused', reqId: req.id, idp, errorCode: error.code, reason: error.message }, 'back-channel logout refused');
      const status = error.code === 'ERR_FEDERATION_IDP_UNREACHABLE' ? 503 : 400;
      res.status(status).json({ error: status === 503 ? 'temporarily_unavailable' : 'invalid_request', error_description: error.message });
    }
  }));

  router.get('/oidc/:idp/logged-out', wrap(async (req, res) => {
    const state = typeof req.query.state === 'string' ? req.query.state : '';
    const back = state ? await deps.store.take(logoutReturnKey(state)) : null;
    res.set('Cache-Control', 'no-store');
    if (back) {
      res.redirect(303, back);
      return;
    }
    res.type('html').send(renderSignedOutPage());
  }));

  return router;
}
