// The one place domain errors become HTTP (STYLE.md "Errors"): every error a client sees from the
// express side is OAuth-shaped `{ error, error_description }` with `Cache-Control: no-store`.
// oidc-provider renders its own endpoints' errors the same way.
import type { ErrorRequestHandler, RequestHandler } from 'express';

import type { Logger } from '../ops/index.ts';
import { StoreUnavailableError } from '../store/index.ts';

export class OAuthError extends Error {
  readonly error: string;
  readonly status: number;
  /** Internal detail for logs; never serialized. */
  readonly detail: string | undefined;

  constructor(status: number, error: string, description: string, detail?: string) {
    super(description);
    this.name = 'OAuthError';
    this.status = status;
    this.error = error;
    this.detail = detail;
  }
}

interface HttpishError {
  status?: number;
  statusCode?: number;
  error?: string;
  error_description?: string;
  expose?: boolean;
  type?: string;
}

export function toOAuthBody(err: unknown): { status: number; body: { error: string; error_description: string } } {
  if (err instanceof OAuthError) return { status: err.status, body: { error: err.error, error_description: err.message } };
  if (err instanceof StoreUnavailableError || (err as HttpishError)?.error === 'temporarily_unavailable') {
    return { status: 503, body: { error: 'temporarily_unavailable', error_description: 'the gateway cannot reach its session store; retry shortly' } };
  }
  const e = err as HttpishError;
  // oidc-provider errors raised from interaction helpers (SessionNotFound, InvalidRequest …).
  if (e && typeof e.error === 'string' && e.expose) {
    return { status: e.statusCode ?? e.status ?? 400, body: { error: e.error, error_description: e.error_description ?? e.error } };
  }
  // body-parser errors: malformed or oversized bodies are the client's fault.
  if (e && typeof e.type === 'string' && typeof e.status === 'number' && e.status < 500) {
    return { status: e.status, body: { error: 'invalid_request', error_description: e.type === 'entity.too.large' ? 'request body too large' : 'malformed request body' } };
  }
  return { status: 500, body: { error: 'server_error', error_description: 'unexpected error; see the gateway logs' } };
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const { status, body } = toOAuthBody(err);
    if (status >= 500) {
      logger.error({ reqId: req.id, err: { name: (err as Error)?.name, message: (err as Error)?.message, code: (err as { code?: string })?.code } }, 'request failed');
    }
    res.status(status).set('Cache-Control', 'no-store').json(body);
  };
}

export const notFound: RequestHandler = (_req, res) => {
  res.status(404).set('Cache-Control', 'no-store').json({ error: 'invalid_request', error_description: 'no such endpoint' });
};
