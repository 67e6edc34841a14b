// Baseline response headers for everything the gateway serves. Pages carry no inline script;
// the CSP allows only same-origin forms and the inline stylesheet of our own pages.
import type { RequestHandler } from 'express';

// node:http's setHeader (not express's res.set), so the token endpoint's router-less path can
// run this too.
export const securityHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('X-Frame-Options', 'DENY');
  next();
};

export const pageCsp: RequestHandler = (_req, res, next) => {
  res.set('Content-Security-Policy',
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  next();
};
