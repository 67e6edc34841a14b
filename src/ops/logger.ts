// Structured logging: the pino factory every part of the gateway logs through, and the one
// access-log middleware. Owns the redaction list, because DESIGN.md promises that secrets,
// tokens, SAML responses and cookies never reach a log line; redaction here is the backstop for
// a careless `logger.info({ body })` elsewhere, not a licence to log raw requests.
// The access log records the pathname only: on an OAuth server the query string carries
// authorization codes, state and (for implicit-era clients) tokens (RFC 6749 §4.1.2, §10.12).

import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { pino } from 'pino';
import type { DestinationStream, LevelWithSilent } from 'pino';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

export type Logger = pino.Logger;

declare module 'express-serve-static-core' {
  interface Request {
    /** Correlation id assigned by `requestLogger` (echoed as the `x-request-id` header). */
    id: string;
  }
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** Pretty printing is left to `| pino-pretty` outside the process; only `false` is accepted. */
  pretty?: false;
  /** Where JSON lines go; stdout when omitted. Tests pass an in-memory stream. */
  destination?: DestinationStream;
}

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

// Key names redacted wherever they appear at depth 0, 1 or 2 of a log object
// (`{ token }`, `{ body: { token } }`, `{ req: { headers: { cookie } } }`).
const SECRET_KEYS = [
  // HTTP credentials (RFC 9110 §11.6.2, RFC 6265, RFC 9449 DPoP proofs)
  'authorization', 'proxy-authorization', 'cookie', 'cookies', 'set-cookie', 'dpop', 'x-api-key',
  // generic secrets
  'password', 'secret', 'client_secret', 'clientSecret', 'apiKey', 'api_key',
  'privateKey', 'private_key', 'keys',
  // OAuth / OIDC artefacts (RFC 6749, RFC 7636, RFC 7523, RFC 8693)
  'token', 'access_token', 'accessToken', 'refresh_token', 'refreshToken', 'id_token', 'idToken',
  'subject_token', 'subjectToken', 'actor_token', 'actorToken', 'assertion', 'client_assertion',
  'clientAssertion', 'code', 'code_verifier', 'codeVerifier',
  // SAML messages (bindings §3.4, §3.5)
  'SAMLResponse', 'SAMLRequest', 'samlResponse', 'samlRequest',
  // JWK private members (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037 §2): any one of them
  // (even RSA `p` alone) gives the key away.
  'd', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k',
] as const;

const SECRET_KEY_SET: ReadonlySet<string> = new Set(SECRET_KEYS);
const CENSOR = '[redacted]';

/**
 * Replaces the value of every secret key at depth 0, 1 or 2 (`{ token }`, `{ body: { token } }`,
 * `{ req: { headers: { cookie } } }`; array items count as a level, like pino's `*`), copying
 * only what it changes: the caller's objects are never mutated. A plain key scan — pino's
 * path-based redaction with ~150 wildcard paths cost more CPU per line than a token exchange's
 * own logic.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (value === null || typeof value !== 'object' || depth > 2) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((item, i) => {
      const cleaned = scrub(item, depth + 1);
      if (cleaned !== item) (copy ??= [...value])[i] = cleaned;
    });
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    if (SECRET_KEY_SET.has(key)) {
      (copy ??= { ...record })[key] = CENSOR;
    } else if (depth < 2 && item !== null && typeof item === 'object') {
      const cleaned = scrub(item, depth + 1);
      if (cleaned !== item) (copy ??= { ...record })[key] = cleaned;
    }
  }
  return copy ?? value;
}

export function createLogger(options: LoggerOptions): Logger {
  if (!LEVELS.has(options.level)) {
    throw new TypeError(`createLogger: options.level must be one of ${[...LEVELS].join(', ')}`);
  }
  if ((options.pretty as boolean | undefined) === true) {
    throw new TypeError('createLogger: options.pretty is not supported; pipe the JSON output through pino-pretty');
  }
  const config: pino.LoggerOptions = {
    level: options.level,
    base: { service: 'agentgate' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names rather than numbers: log pipelines (Loki, Cloud Logging) key severity on them.
    formatters: {
      level: (label) => ({ level: label }),
      log: (object) => scrub(object) as Record<string, unknown>,
    },
  };
  // stdout written asynchronously and in batches (pino's "asynchronous logging"): up to 4 KiB or
  // 250 ms of lines per write instead of one write per line (the token endpoint logs two lines
  // per request); pino flushes what is pending when the process exits.
  return pino(config, options.destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096, periodicFlush: 250 }));
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/;

function requestIdFrom(headers: IncomingHttpHeaders): string {
  const incoming = headers['x-request-id'];
  // An id from upstream (load balancer, agent SDK) is kept so logs join across hops, but only if
  // it is short and inert: anything else could forge or break log lines.
  return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

function pathnameOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

export interface RequestLoggerOptions {
  /** Pathnames logged at debug (probes and scrapes would otherwise drown the access log). */
  quietPaths?: readonly string[];
}

const DEFAULT_QUIET_PATHS = ['/healthz', '/readyz', '/metrics'];

/**
 * Express middleware: assigns `req.id`, sets the `x-request-id` response header and writes one
 * access-log line when the response finishes (or the client goes away first). Never logs
 * headers, bodies or the query string.
 */
export function requestLogger(logger: Logger, options: RequestLoggerOptions = {}): RequestHandler {
  const quiet: ReadonlySet<string> = new Set(options.quietPaths ?? DEFAULT_QUIET_PATHS);
  return function requestLog(req: Request, res: Response, next: NextFunction): void {
    const started = process.hrtime.bigint();
    const id = requestIdFrom(req.headers);
    req.id = id;
    res.setHeader('x-request-id', id);
    // Captured now: routers rewrite req.url while dispatching.
    const path = pathnameOf(req.originalUrl);
    let logged = false;
    const done = (): void => {
      if (logged) return;
      logged = true;
      const aborted = !res.writableFinished;
      const status = res.statusCode;
      const durationMs = Math.round(Number(process.hrtime.bigint() - started) / 1000) / 1000;
      const line = aborted
        ? { reqId: id, method: req.method, path, status, durationMs, aborted: true }
        : { reqId: id, method: req.method, path, status, durationMs };
      const msg = aborted ? 'request aborted' : 'request completed';
      if (quiet.has(path)) logger.debug(line, msg);
      else if (status >= 500) logger.error(line, msg);
      else logger.info(line, msg);
    };
    res.once('finish', done);
    res.once('close', done);
    next();
  };
}
