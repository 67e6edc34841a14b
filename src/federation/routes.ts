// HTTP endpoints of the upstream face, under {issuer}/federation:
//   GET  /oidc/{idp}/callback            the IdP's redirect back (one per IdP: mix-up defence)
//   POST /oidc/{idp}/backchannel-logout  OIDC Back-Channel Logout 1.0
//   GET  /oidc/{idp}/logged-out          return from the IdP's end_session endpoint
//   POST /saml/{idp}/acs                 SAML assertion consumer service (HTTP-POST binding)
//   GET  /saml/{idp}/metadata            the gateway's SP metadata for this IdP
//   GET|POST /saml/{idp}/slo             SAML Single Logout (HTTP-Redirect and HTTP-POST bindings)
//   GET  /saml/{idp}/logout              SP-initiated SLO: binds the browser, then on to the IdP
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';

import type { Logger } from '../ops/index.ts';
import { renderErrorPage, renderSignInFailedPage, renderSignedOutPage } from '../pages/index.ts';
import type { Store } from '../store/index.ts';
import { FederationError } from './errors.ts';
import { isSamlConnector } from './saml/index.ts';
import type { Federation } from './service.ts';

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

export const logoutReturnKey = (state: string) => `fed:logout:${state}`;

/** Over the largest SAML message accepted once base64-decoded (saml/xml.ts MAX_MESSAGE_BYTES), plus RelayState. */
const SAML_FORM_LIMIT = 400 * 1024;
const samlForm = express.urlencoded({ extended: false, limit: SAML_FORM_LIMIT, parameterLimit: 10 });

function failureStatus(error: FederationError): number {
  if (error.code === 'ERR_FEDERATION_IDP_UNREACHABLE') return 502;
  if (error.code === 'ERR_FEDERATION_TENANT_NOT_ALLOWED' || error.code === 'ERR_FEDERATION_DOMAIN_NOT_ALLOWED') return 403;
  if (error.code === 'ERR_SAML_TOO_LARGE') return 413;
  return 400;
}

export function createFederationRouter(deps: { federation: Federation; logger: Logger; store: Store; basePath: string }): Router {
  const { federation, logger } = deps;
  const router = express.Router();

  /** No session is made; the audit trail says why (without tokens or the response itself). */
  async function signInFailed(req: Request, res: Response, idp: string, error: FederationError): Promise<void> {
    await federation.recordFailure({ idp, error, reqId: req.id });
    res.status(failureStatus(error)).type('html').set('Cache-Control', 'no-store')
      .send(renderSignInFailedPage({ message: error.message, correlationId: req.id }));
  }

  router.get('/oidc/:idp/callback', wrap(async (req, res) => {
    const idp = String(req.params.idp);
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    try {
      const { interactionUid } = await federation.callback({ idp, query, ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}) });
      res.set('Cache-Control', 'no-store').redirect(303, `${deps.basePath}/interaction/${encodeURIComponent(interactionUid)}/federated`);
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      await signInFailed(req, res, idp, error);
    }
  }));

  router.post('/saml/:idp/acs', wrap(async (req, res) => {
    const idp = String(req.params.idp);
    try {
      // The body parser's own refusals (too large, bad encoding) end on the same page.
      await new Promise<void>((resolve, reject) => samlForm(req, res, (error?: unknown) => (error ? reject(error) : resolve())));
    } catch (error) {
      const tooLarge = (error as { type?: string }).type === 'entity.too.large';
      return signInFailed(req, res, idp, tooLarge
        ? new FederationError('ERR_SAML_TOO_LARGE', 'the SAML response is larger than the gateway accepts', 'form body over the limit')
        : new FederationError('ERR_SAML_MALFORMED', 'the SAML response could not be read', (error as Error).message));
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const samlResponse = body.SAMLResponse;
    const relayState = body.RelayState;
    try {
      if (typeof samlResponse !== 'string' || samlResponse.length === 0) {
        throw new FederationError('ERR_SAML_MALFORMED', 'the sign-in response carries no SAMLResponse', 'no SAMLResponse');
      }
      const done = await federation.samlAcs({
        idp, samlResponse,
        ...(typeof relayState === 'string' ? { relayState } : {}),
        ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}),
      });
      res.set('Cache-Control', 'no-store');
      if ('idpInitiated' in done) {
        res.append('Set-Cookie', done.idpInitiated.setCookie).redirect(303, done.idpInitiated.location);
        return;
      }
      res.redirect(303, `${deps.basePath}/interaction/${encodeURIComponent(done.interactionUid)}/federated`);
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      await signInFailed(req, res, idp, error);
    }
  }));

  async function samlLogout(req: Request, res: Response, input: Parameters<Federation['samlLogout']>[0]): Promise<void> {
    res.set('Cache-Control', 'no-store');
    try {
      const result = await federation.samlLogout(input);
      if (result.kind === 'request') {
        if (result.location) res.redirect(303, result.location);
        else res.type('html').send(renderSignedOutPage());
        return;
      }
      // The answer to our own LogoutRequest: back to where the person's sign-out began.
      const back = result.relayState ? await deps.store.take(logoutReturnKey(result.relayState)) : null;
      if (back) res.redirect(303, back);
      else res.type('html').send(renderSignedOutPage());
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      await logoutRefused(req, res, input.idp, error);
    }
  }

  /** Nothing is ended; the audit trail says why (`session.upstream_logout_refused`). */
  async function logoutRefused(req: Request, res: Response, idp: string, error: FederationError): Promise<void> {
    await federation.recordLogoutRefused({ idp, error, reqId: req.id });
    const status = error.code === 'ERR_FEDERATION_IDP_UNREACHABLE' ? 502 : error.code === 'ERR_SAML_TOO_LARGE' ? 413 : 400;
    res.status(status).set('Cache-Control', 'no-store').type('html').send(renderErrorPage({ error: 'invalid_request', error_description: error.message }));
  }

  router.get('/saml/:idp/logout', wrap(async (req, res) => {
    const idp = String(req.params.idp);
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    try {
      const started = await federation.samlLogoutStart({ idp, token, ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}) });
      res.append('Set-Cookie', started.setCookie).set('Cache-Control', 'no-store').redirect(303, started.location);
    } catch (error) {
      if (!(error instanceof FederationError)) throw error;
      await logoutRefused(req, res, idp, error);
    }
  }));

  router.get('/saml/:idp/slo', wrap(async (req, res) => {
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    await samlLogout(req, res, { idp: String(req.params.idp), binding: 'redirect', query, ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}) });
  }));

  router.post('/saml/:idp/slo', wrap(async (req, res) => {
    try {
      await new Promise<void>((resolve, reject) => samlForm(req, res, (error?: unknown) => (error ? reject(error) : resolve())));
    } catch (error) {
      const tooLarge = (error as { type?: string }).type === 'entity.too.large';
      await logoutRefused(req, res, String(req.params.idp), tooLarge
        ? new FederationError('ERR_SAML_TOO_LARGE', 'the SAML logout message is larger than the gateway accepts', 'form body over the limit')
        : new FederationError('ERR_SAML_MALFORMED', 'the SAML logout message could not be read', (error as Error).message));
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const message = typeof body.SAMLRequest === 'string' ? body.SAMLRequest : typeof body.SAMLResponse === 'string' ? body.SAMLResponse : '';
    const relayState = typeof body.RelayState === 'string' ? body.RelayState : undefined;
    await samlLogout(req, res, {
      idp: String(req.params.idp), binding: 'post', message,
      ...(relayState !== undefined ? { relayState } : {}),
      ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}),
    });
  }));

  router.get('/saml/:idp/metadata', (req, res) => {
    const connector = federation.connectors.get(String(req.params.idp));
    if (!connector || !isSamlConnector(connector)) {
      res.status(404).set('Cache-Control', 'no-store').json({ error: 'invalid_request', error_description: 'there is no SAML identity provider by that id here' });
      return;
    }
    res.type('application/samlmetadata+xml').set('Cache-Control', 'public, max-age=300').send(connector.spMetadata());
  });

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
