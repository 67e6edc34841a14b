// oidc-provider's login "interaction" (DESIGN.md core flow step 1). Federation (issue 4) plugs
// in here. Until then: a development-only test login form (config devLogin.enabled, refused in
// production mode by config validation), and, when no sign-in method is configured, an
// interaction that ends the request with an OAuth error instead of hanging.
//
// Consent for configured first-party apps is implicit: the gateway's own apps are registered by
// the operator, so the grant simply records what was requested (per-agent consent: issue 9).
import express from 'express';
import type { NextFunction, Request, Response, Router } from 'express';
import type Provider from 'oidc-provider';

import type { Config } from '../config/index.ts';
import type { AccountStore } from './accounts.ts';
import { escapeHtml, page } from './pages.ts';

export interface InteractionDeps {
  provider: Provider;
  accounts: AccountStore;
  config: Config;
}

const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap = (fn: Handler) => (req: Request, res: Response, next: NextFunction) => fn(req, res).catch(next);

export function createInteractionRouter({ provider, accounts, config }: InteractionDeps): Router {
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '8kb' });

  async function approveConsent(req: Request, res: Response): Promise<void> {
    const { prompt, params, session, grantId } = await provider.interactionDetails(req, res);
    const details = prompt.details as {
      missingOIDCScope?: string[];
      missingOIDCClaims?: string[];
      missingResourceScopes?: Record<string, string[]>;
    };
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
    if (!grant) throw new Error('grant referenced by the interaction no longer exists');
    if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
    if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const id = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId: id } }, { mergeWithLastSubmission: true });
  }

  router.get('/:uid', wrap(async (req, res) => {
    const { uid, prompt, params } = await provider.interactionDetails(req, res);
    if (prompt.name === 'consent') return approveConsent(req, res);
    if (!config.devLogin.enabled) {
      await provider.interactionFinished(req, res, {
        error: 'login_required',
        error_description: 'no sign-in method is configured at this gateway',
      }, { mergeWithLastSubmission: false });
      return;
    }
    res.type('html').set('Cache-Control', 'no-store').send(loginForm(uid, String(params.client_id), String(params.login_hint ?? '')));
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
    if (!EMAIL.test(email)) {
      res.status(400).type('html').send(loginForm(uid, '', email, 'Enter an email address.'));
      return;
    }
    const sub = `dev:${email}`;
    await accounts.save({ sub, email, email_verified: false, name: name || email, preferred_username: email }, config.session.ttl);
    await provider.interactionFinished(req, res, {
      login: { accountId: sub, amr: ['pwd'], acr: 'dev' },
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

function loginForm(uid: string, clientId: string, email: string, problem?: string): string {
  const action = `${encodeURIComponent(uid)}/login`;
  return page('Sign in (development)', `<h1>Sign in</h1>
<p class="note">Development test login${clientId ? ` for <strong>${escapeHtml(clientId)}</strong>` : ''}. This page does not exist in production mode.</p>
${problem ? `<p role="alert">${escapeHtml(problem)}</p>` : ''}
<form method="post" action="${escapeHtml(action)}">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="${escapeHtml(email)}">
<label for="name">Name</label><input id="name" name="name" autocomplete="name">
<button type="submit">Sign in</button>
</form>
<p><a href="${escapeHtml(encodeURIComponent(uid))}/abort">Cancel</a></p>`);
}
