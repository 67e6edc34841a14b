// oidc-provider's login "interaction" (DESIGN.md core flow step 1): where federation plugs in.
// Choosing the IdP: `idp_hint`, else home-realm discovery from the domain of `login_hint`, else the
// only IdP, else a sign-in page (email for discovery, or a button per IdP). An unknown domain gets
// the page back, never an error that reveals which domains exist. The development test login
// (devLogin.enabled, refused in production) signs a person in as the pseudo-IdP `dev`.
//
// Consent for configured first-party apps is implicit: the grant records what was requested and
// is tied to the enterprise session (one grant per session and client), so ending the session
// revokes everything issued under it.
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import type Provider from 'oidc-provider';

import type { Config } from '../config/index.ts';
import type { Connector, Federation } from '../federation/index.ts';
import { FederationError } from '../federation/index.ts';
import type { Logger } from '../ops/index.ts';
import { escapeHtml, page, renderPickerPage, renderSignInFailedPage } from '../pages/index.ts';
import type { Policy } from '../policy/index.ts';
import type { CookieSigner, EnterpriseSession, SessionService } from '../session/index.ts';
import { accountIdOf, SESSION_COOKIE } from '../session/index.ts';
import { issuerPath } from './provider.ts';

export interface InteractionDeps {
  provider: Provider;
  config: Config;
  federation: Federation;
  sessions: SessionService;
  policy: Policy;
  cookies: CookieSigner;
  logger: Logger;
  /** A federated sign-in through this IdP completed (the admin console's "last successful sign-in"). */
  onSignedIn?: (idp: string) => Promise<void>;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
/** An acr or amr value claimed at the development login: printable ASCII, no spaces. */
const AUTH_VALUE = /^[\x21-\x7E]{1,100}$/;

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

export function createInteractionRouter(deps: InteractionDeps): Router {
  const { provider, config, federation, sessions, policy, cookies } = deps;
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb' });
  const base = issuerPath(config.issuer);
  const secure = new URL(config.issuer).protocol === 'https:';
  const sessionCookie = (session: EnterpriseSession) => cookies.serialize(SESSION_COOKIE, session.sid, {
    path: base || '/', maxAge: session.expiresAt - session.createdAt, secure,
  });

  /** Never fails the sign-in: the record is for the admin console only. */
  async function signedIn(session: EnterpriseSession): Promise<void> {
    try {
      await deps.onSignedIn?.(session.identity.idp);
    } catch (error) {
      deps.logger.warn({ idp: session.identity.idp, err: { name: (error as Error).name, message: (error as Error).message } }, 'last sign-in not recorded');
    }
  }

  async function approveConsent(req: Request, res: Response): Promise<void> {
    const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
    const details = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const clientId = String(params.client_id);
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session?.accountId, clientId });
    if (!grant) throw new Error('grant referenced by the interaction no longer exists');
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const id = await grant.save();
    const sid = cookies.read(req.headers.cookie, SESSION_COOKIE);
    if (sid) await sessions.linkGrant(sid, clientId, id);
    await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  }

  async function federate(req: Request, res: Response, uid: string, idp: string, params: Record<string, unknown>): Promise<void> {
    const { location, setCookie } = await federation.start({
      idp,
      interactionUid: uid,
      ...(typeof params.login_hint === 'string' ? { loginHint: params.login_hint } : {}),
      ...(typeof params.acr_values === 'string' ? { acrValues: params.acr_values } : {}),
      ...(params.max_age !== undefined ? { maxAge: Number(params.max_age) } : {}),
      ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}),
    });
    if (setCookie) res.append('Set-Cookie', setCookie);
    res.set('Cache-Control', 'no-store').redirect(303, location);
  }

  function picker(res: Response, uid: string, options: { email?: string; notice?: string; status?: number } = {}): void {
    res.status(options.status ?? 200).type('html').set('Cache-Control', 'no-store').send(renderPickerPage({
      action: `${base}/interaction/${encodeURIComponent(uid)}/choose`,
      options: [...federation.connectors.values()].map((c) => ({ id: c.id, displayName: c.displayName })),
      ...(options.email ? { email: options.email } : {}),
      ...(options.notice ? { notice: options.notice } : {}),
      ...(config.devLogin.enabled ? { devLoginAction: `${base}/interaction/${encodeURIComponent(uid)}/dev` } : {}),
    }));
  }

  async function failed(req: Request, res: Response, error: FederationError, idp?: string): Promise<void> {
    await federation.recordFailure({ ...(idp ? { idp } : {}), error, reqId: req.id });
    res.status(error.code === 'ERR_FEDERATION_IDP_UNREACHABLE' ? 502 : 400).type('html').set('Cache-Control', 'no-store')
      .send(renderSignInFailedPage({ message: error.message, correlationId: req.id }));
  }

  router.get('/:uid', wrap(async (req, res) => {
    const { uid, prompt, params } = await provider.interactionDetails(req, res);
    if (prompt.name === 'consent') return approveConsent(req, res);
    // A sign-in the IdP started (SAML IdP-initiated, held for this app and browser): finish it.
    const held = await federation.takeIdpInitiatedLogin({ clientId: String(params.client_id), ...(req.headers.cookie ? { cookieHeader: req.headers.cookie } : {}) });
    const heldSession = held ? await sessions.get(held.sid) : undefined;
    if (held && heldSession) {
      res.append('Set-Cookie', federation.clearIdpInitiatedCookie);
      res.append('Set-Cookie', sessionCookie(heldSession));
      await signedIn(heldSession);
      await provider.interactionFinished(req, res, {
        login: { accountId: held.accountId, ...(held.acr ? { acr: held.acr } : {}), amr: held.amr, ts: held.authTime, remember: false },
      }, { mergeWithLastSubmission: false });
      return;
    }
    const connectors = federation.connectors;
    let chosen: Connector | undefined;
    try {
      const hinted = typeof params.idp_hint === 'string' ? connectors.get(params.idp_hint) : undefined;
      const discovered = federation.discover(typeof params.login_hint === 'string' ? params.login_hint : undefined);
      const only = connectors.size === 1 && !config.devLogin.enabled ? [...connectors.values()][0] : undefined;
      chosen = hinted ?? discovered ?? only;
      if (chosen) return await federate(req, res, uid, chosen.id, params);
    } catch (error) {
      if (error instanceof FederationError) return failed(req, res, error, chosen?.id);
      throw error;
    }
    if (connectors.size === 0 && config.devLogin.enabled) {
      res.redirect(303, `${base}/interaction/${encodeURIComponent(uid)}/dev`);
      return;
    }
    if (connectors.size === 0) {
      await provider.interactionFinished(req, res, {
        error: 'login_required',
        error_description: 'no sign-in method is configured at this gateway',
      }, { mergeWithLastSubmission: false });
      return;
    }
    picker(res, uid, { ...(typeof params.login_hint === 'string' ? { email: params.login_hint } : {}) });
  }));

  router.post('/:uid/choose', form, wrap(async (req, res) => {
    const { uid, params } = await provider.interactionDetails(req, res);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.trim() : '';
    const connector = typeof body.idp === 'string' && body.idp
      ? federation.connectors.get(body.idp)
      : federation.discover(email);
    if (!connector) {
      // Same answer for every unknown domain: the page never tells which domains exist.
      return picker(res, uid, { ...(email ? { email } : {}), notice: 'Choose how your organization signs in.' });
    }
    try {
      await federate(req, res, uid, connector.id, { ...params, ...(email && EMAIL.test(email) ? { login_hint: email } : {}) });
    } catch (error) {
      if (error instanceof FederationError) return failed(req, res, error, connector.id);
      throw error;
    }
  }));

  // The federation callback hands the finished sign-in over here, where the interaction cookie is.
  router.get('/:uid/federated', wrap(async (req, res) => {
    const { uid } = await provider.interactionDetails(req, res);
    const login = await federation.takeLogin(uid);
    const session = login ? await sessions.get(login.sid) : undefined;
    if (!login || !session) {
      return failed(req, res, new FederationError('ERR_FEDERATION_STATE', 'this sign-in has expired or was already completed; start again from the application'));
    }
    res.append('Set-Cookie', sessionCookie(session));
    await signedIn(session);
    await provider.interactionFinished(req, res, {
      login: { accountId: login.accountId, ...(login.acr ? { acr: login.acr } : {}), amr: login.amr, ts: login.authTime, remember: false },
    }, { mergeWithLastSubmission: false });
  }));

  router.get('/:uid/dev', wrap(async (req, res) => {
    if (!config.devLogin.enabled) {
      res.status(404).json({ error: 'invalid_request', error_description: 'the development login is disabled' });
      return;
    }
    const { uid, params } = await provider.interactionDetails(req, res);
    res.type('html').set('Cache-Control', 'no-store').send(devLoginForm(base, uid, String(params.client_id), String(params.login_hint ?? '')));
  }));

  router.post('/:uid/login', form, wrap(async (req, res) => {
    if (!config.devLogin.enabled) {
      res.status(404).json({ error: 'invalid_request', error_description: 'the development login is disabled' });
      return;
    }
    const { uid, prompt } = await provider.interactionDetails(req, res);
    if (prompt.name !== 'login') {
      res.status(400).json({ error: 'invalid_request', error_description: 'this interaction does not expect a login' });
      return;
    }
    const body = (req.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const name = typeof body.name === 'string' ? body.name.trim().slice(0, 200) : '';
    const groups = typeof body.groups === 'string' ? body.groups.split(',').map((g) => g.trim()).filter(Boolean).slice(0, 50) : [];
    // How the person signed in, as the tester claims it (default acr "dev", amr ["pwd"]): lets
    // step-up rules (RFC 9470 acr/amr) be exercised without an IdP. This route exists only with
    // devLogin, which production mode refuses; federated sign-ins take acr/amr from the IdP.
    const acr = typeof body.acr === 'string' && AUTH_VALUE.test(body.acr.trim()) ? body.acr.trim() : 'dev';
    const claimedAmr = typeof body.amr === 'string' ? body.amr.split(',').map((m) => m.trim()).filter((m) => AUTH_VALUE.test(m)).slice(0, 10) : [];
    const amr = claimedAmr.length > 0 ? claimedAmr : ['pwd'];
    if (!EMAIL.test(email)) {
      res.status(400).type('html').send(devLoginForm(base, uid, '', email, 'Enter an email address.'));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const identity = {
      idp: 'dev', subject: email, email, emailVerified: false, name: name || email,
      groups: groups.map((id) => ({ idp: 'dev', id, name: id })), groupsComplete: true,
      amr, acr, authTime: now, attributes: {},
    };
    const session = await sessions.create({ identity, roles: policy.resolveRoles(identity).roles });
    res.append('Set-Cookie', sessionCookie(session));
    await provider.interactionFinished(req, res, {
      login: { accountId: accountIdOf(identity), amr, acr, ts: now, remember: false },
    }, { mergeWithLastSubmission: false });
  }));

  router.get('/:uid/abort', wrap(async (req, res) => {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'the person cancelled the sign-in',
    }, { mergeWithLastSubmission: false });
  }));

  return router;
}

function devLoginForm(base: string, uid: string, clientId: string, email: string, problem?: string): string {
  const action = `${base}/interaction/${encodeURIComponent(uid)}/login`;
  return page('Sign in (development)', `<h1>Sign in</h1>
<p class="note">Development test login${clientId ? ` for <strong>${escapeHtml(clientId)}</strong>` : ''}. This page does not exist in production mode.</p>
${problem ? `<p role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(email)}">
<label for="name">Name</label><input id="name" name="name" autocomplete="name">
<label for="groups">Groups (comma-separated, for role mappings with idp: dev)</label><input id="groups" name="groups">
<label for="acr">acr (optional, default dev; for step-up rules)</label><input id="acr" name="acr">
<label for="amr">amr (comma-separated, optional, default pwd)</label><input id="amr" name="amr">
<button type="submit">Sign in</button>
</form>
<p><a href="${escapeHtml(`${base}/interaction/${encodeURIComponent(uid)}/abort`)}">Cancel</a></p>`);
}
