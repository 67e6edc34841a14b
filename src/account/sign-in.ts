// Signing a browser into the gateway's own pages ("My agents", consent, the admin console), as
// Keycloak's account console and Okta's dashboard do: a GET of such a page without a live
// enterprise session is sent through the gateway's own authorization endpoint as the reserved
// first-party client `agentgate-account` (src/authz/clients.ts), and comes back to where it was.
//   start     303 to {issuer}/auth — authorization code, PKCE S256 (RFC 7636 §4.1–4.3), state
//             (RFC 6749 §10.12); state, verifier and return path in a signed, HttpOnly,
//             SameSite=Lax cookie scoped to the callback path, for 10 minutes.
//   callback  GET {issuer}/account/signed-in: checks state (constant time) and `iss` (RFC 9207
//             §2.4), redeems the code in-process (src/authz/account-code.ts) for the person the
//             sign-in's session cookie names, and 303s back. Every failure is a page, never another
//             redirect, so a browser that cannot keep a session does not loop.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import type { NextFunction, Request, Response } from 'express';

import { ACCOUNT_CLIENT_ID, issuerPath } from '../authz/index.ts';
import type { AccountCodeRedeemer } from '../authz/index.ts';
import type { Config } from '../config/index.ts';
import type { Logger } from '../ops/index.ts';
import { renderProblemPage } from '../pages/index.ts';
import type { CookieSigner, SessionService } from '../session/index.ts';
import { SESSION_COOKIE } from '../session/index.ts';

/** The in-flight sign-in (signed; state, PKCE verifier, return path, when it started). */
export const SIGN_IN_COOKIE = 'agentgate.signin';
/** How long a page sign-in may take, in seconds. */
export const SIGN_IN_TTL = 600;
/** Authorization parameters a page passes on to the sign-in (README "Signing people in"). */
const FORWARDED_PARAMS = ['login_hint', 'idp_hint'] as const;

export interface PageSignInDeps {
  config: Config;
  sessions: SessionService;
  cookies: CookieSigner;
  redeem: AccountCodeRedeemer;
  logger: Logger;
  /** Seconds since the epoch. */
  now?: () => number;
}

export interface PageSignIn {
  /** Answers a GET of a page that needs a signed-in person: 303 to the authorization endpoint. */
  start(req: Request, res: Response): void;
  /** GET `{issuer}/account/signed-in` (mount under /account as /signed-in). */
  callback(req: Request, res: Response, next: NextFunction): void;
}

interface InFlight {
  state: string;
  verifier: string;
  returnTo: string;
  startedAt: number;
}

/**
 * A path+query under the issuer's path to send the browser back to, or undefined: never an
 * absolute URL, a scheme-relative `//host`, a backslash, or a path outside the issuer (`..`
 * is resolved first). The sign-in's own hints are dropped (they were spent on the sign-in).
 */
export function safeReturnPath(raw: unknown, issuer: string): string | undefined {
  if (typeof raw !== 'string' || !raw.startsWith('/') || raw.startsWith('//') || /[\\\p{Cc}]/u.test(raw)) return undefined;
  let url: URL;
  try {
    url = new URL(raw, issuer);
  } catch {
    return undefined;
  }
  if (url.origin !== new URL(issuer).origin || !url.pathname.startsWith(`${issuerPath(issuer)}/`) || url.pathname.startsWith('//')) return undefined;
  for (const name of FORWARDED_PARAMS) url.searchParams.delete(name);
  return `${url.pathname}${url.search}`;
}

const digest = (value: string) => createHash('sha256').update(value).digest();
/** Constant-time equality of two strings of any length (RFC 6749 §10.12 state check). */
const sameString = (a: string, b: string) => timingSafeEqual(digest(a), digest(b));

export function createPageSignIn(deps: PageSignInDeps): PageSignIn {
  const { config, sessions, cookies, logger } = deps;
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  const callbackPath = `${issuerPath(config.issuer)}/account/signed-in`;
  const redirectUri = `${config.issuer}/account/signed-in`;
  const fallback = `${issuerPath(config.issuer)}/account/agents`;
  const cookieOptions = { path: callbackPath, secure: new URL(config.issuer).protocol === 'https:', sameSite: 'Lax' as const };

  function read(req: Request): InFlight | undefined {
    const raw = cookies.read(req.headers.cookie, SIGN_IN_COOKIE);
    if (!raw) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      return undefined;
    }
    const { state, verifier, returnTo, startedAt } = (value ?? {}) as Partial<Record<keyof InFlight, unknown>>;
    if (typeof state !== 'string' || typeof verifier !== 'string' || typeof returnTo !== 'string' || typeof startedAt !== 'number') return undefined;
    // The cookie's Max-Age is the browser's business; the signed start time is ours.
    if (startedAt > now() + 60 || now() - startedAt > SIGN_IN_TTL) return undefined;
    return { state, verifier, returnTo, startedAt };
  }

  function problem(req: Request, res: Response, title: string, message: string, retry?: string): void {
    res.status(400).type('html').set('Cache-Control', 'no-store').send(renderProblemPage({
      title, message, correlationId: String(req.id), ...(retry ? { link: { href: retry, text: 'Sign in again' } } : {}),
    }));
  }

  async function callback(req: Request, res: Response): Promise<void> {
    const flight = read(req);
    // Spent whatever happens: one callback per sign-in.
    res.append('Set-Cookie', cookies.clear(SIGN_IN_COOKIE, cookieOptions));
    const query = req.query as Record<string, unknown>;
    const str = (name: string) => (typeof query[name] === 'string' ? query[name] : undefined);
    if (!flight) {
      return problem(req, res, 'Sign-in could not be completed', 'This sign-in was not started in this browser, or it took longer than 10 minutes. Open the page you wanted again to sign in.', fallback);
    }
    const returnTo = safeReturnPath(flight.returnTo, config.issuer) ?? fallback;
    const state = str('state');
    if (state === undefined || !sameString(state, flight.state)) {
      return problem(req, res, 'Sign-in could not be completed', 'This sign-in answer does not belong to the sign-in this browser started. Nothing was changed. Open the page you wanted again to sign in.', returnTo);
    }
    // RFC 9207 §2.4: the gateway's authorization server always names itself.
    if (str('iss') !== config.issuer) {
      return problem(req, res, 'Sign-in could not be completed', 'This sign-in answer did not come from this gateway.', returnTo);
    }
    const error = str('error');
    if (error !== undefined) {
      const said = str('error_description');
      return problem(req, res, 'Sign-in did not complete', `${error === 'access_denied' ? 'The sign-in was cancelled or refused' : 'The sign-in did not complete'}${said ? `: ${said}` : ''} (${error}). You are not signed in.`, returnTo);
    }
    const code = str('code');
    if (!code) return problem(req, res, 'Sign-in could not be completed', 'The sign-in answer carries no code.', returnTo);
    const sid = cookies.read(req.headers.cookie, SESSION_COOKIE);
    const session = sid ? await sessions.get(sid) : undefined;
    if (!session) {
      // No redirect from here: a browser that drops the session cookie would come right back.
      return problem(req, res, 'Signed in, but no session here', 'The sign-in finished, but this browser holds no live session at the gateway (are cookies blocked for this site?). You are not signed in.');
    }
    const redeemed = await deps.redeem({ code, verifier: flight.verifier, accountId: session.accountId });
    if (!redeemed.ok) return problem(req, res, 'Sign-in could not be completed', `${redeemed.reason} You are not signed in to this page; open it again to sign in.`, returnTo);
    // The code's grant is the one the sign-in linked to this very session (interactions.ts).
    if (!redeemed.grantId || redeemed.grantId !== (await sessions.grantFor(session.sid, ACCOUNT_CLIENT_ID))) {
      return problem(req, res, 'Sign-in could not be completed', 'The sign-in code belongs to another session than this browser\'s.', returnTo);
    }
    logger.info({ reqId: req.id, sid: session.sid, sub: session.accountId }, 'signed in to the gateway pages');
    res.set('Cache-Control', 'no-store').redirect(303, returnTo);
  }

  return {
    start(req, res) {
      const state = randomBytes(32).toString('base64url');
      const verifier = randomBytes(32).toString('base64url');
      const flight: InFlight = { state, verifier, returnTo: safeReturnPath(req.originalUrl, config.issuer) ?? fallback, startedAt: now() };
      res.append('Set-Cookie', cookies.serialize(SIGN_IN_COOKIE, JSON.stringify(flight), { ...cookieOptions, maxAge: SIGN_IN_TTL }));
      const params = new URLSearchParams({
        client_id: ACCOUNT_CLIENT_ID, response_type: 'code', scope: 'openid', redirect_uri: redirectUri, state,
        code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
      });
      for (const name of FORWARDED_PARAMS) {
        const value = req.query[name];
        if (typeof value === 'string' && value) params.set(name, value);
      }
      res.set('Cache-Control', 'no-store').redirect(303, `${config.issuer}/auth?${params}`);
    },
    callback(req, res, next) {
      callback(req, res).catch(next);
    },
  };
}
