// Baseline response headers for everything the gateway serves. Pages carry no inline script;
// the CSP allows only same-origin forms and our pages' one stylesheet, by its hash.
import type { RequestHandler } from 'express';

import { PAGE_STYLE_HASH } from '../pages/index.ts';

// node:http's setHeader (not express's res.set), so the token endpoint's router-less path can
// run this too.
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  next();
};

/**
 * The pages' CSP. `form-action` also governs where a submitted form may be redirected (CSP 3
 * §6.4.1; Chrome enforces it on every hop), so pages whose forms start or finish a sign-in
 * (picker, demo IdP, logout) list the origins those redirects reach: the IdPs and the apps.
 * `liveTargets` adds what is only known at run time (an IdP's endpoints from its discovery
 * document or SAML metadata, which may live on another host than its issuer or metadata URL).
 */
export function pageCspFor(formTargets: readonly string[] = [], liveTargets?: () => readonly string[]): RequestHandler {
  const fixed = [...formTargets];
  const header = (targets: readonly string[]) => {
    const origins = [...new Set(targets.flatMap((target) => {
      try {
        const { origin } = new URL(target);
        return origin === 'null' ? [] : [origin];
      } catch {
        return [];
      }
    }))];
    return `default-src 'none'; style-src '${PAGE_STYLE_HASH}'; img-src 'self'; form-action ${["'self'", ...origins].join(' ')}; frame-ancestors 'none'; base-uri 'none'`;
  };
  const value = header(fixed);
  let last: { key: string; value: string } | undefined;
  return (_req, res, next) => {
    if (!liveTargets) {
      res.set('Content-Security-Policy', value);
      return next();
    }
    const live = liveTargets();
    const key = live.join(' ');
    if (last?.key !== key) last = { key, value: header([...fixed, ...live]) };
    res.set('Content-Security-Policy', last.value);
    next();
  };
}

export const pageCsp: RequestHandler = pageCspFor();
