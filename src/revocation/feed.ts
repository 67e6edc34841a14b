// The revocation feed for resource servers (issue 6): `GET {issuer}/revocations?since=<cursor>`
// answers every event after the cursor at once (catch-up); `GET {issuer}/revocations/feed` is a
// Server-Sent Events stream (WHATWG HTML §9.2): `retry`, the events after `Last-Event-ID` or
// `since`, then live events as they happen on any replica, a `: keep-alive` comment every 15 s,
// and the end of the stream when the caller's token expires (it reconnects with a fresh token and
// its Last-Event-ID, missing nothing).
//
// Callers are resource servers authenticating as their own clients (config `resources[].client`)
// with a bearer JWT for the audience `{issuer}/revocations` and the scope `agentgate:revocations`
// (RFC 6750 challenges otherwise). Each connection reads the stream from its own cursor whenever
// the replica is woken (a published event, a recovered subscription, or the keep-alive tick, which
// also catches a lost wake-up), so a slow or late connection never skips an event.
import express from 'express';
import type { Request, RequestHandler, Response, Router } from 'express';

import type { AccessTokenClaims, AccessTokenVerifier } from '../authz/index.ts';
import type { Logger } from '../ops/index.ts';
import { isStreamId } from '../store/index.ts';
import type { RevocationEvent } from './events.ts';
import type { RevocationService } from './service.ts';

/** The scope of the revocation feed; only `resources[].client` clients may hold it. */
export const REVOCATIONS_SCOPE = 'agentgate:revocations';

/** The feed is a resource of its own: feed tokens are JWTs with this audience. */
export const revocationsAudience = (issuer: string) => `${issuer}/revocations`;

export interface RevocationFeedOptions {
  issuer: string;
  revocations: RevocationService;
  tokens: AccessTokenVerifier;
  /** Client ids of the resource servers (config `resources[].client.clientId`). */
  clients: readonly string[];
  logger: Logger;
  /** Milliseconds between keep-alive comments (default 15 s). */
  keepAliveMs?: number;
  /** Entries read per stream round trip (default 500). */
  pageSize?: number;
  /** Seconds since the epoch. */
  now?: () => number;
}

export interface RevocationFeed {
  /** Mount at `{issuer path}/revocations`. */
  router: Router;
  /** Ends every open stream (graceful shutdown: clients reconnect to another replica). */
  close(): void;
  /** Open streams on this replica. */
  connections(): number;
}

const RETRY_MS = 2000;
const MAX_TIMER_MS = 2 ** 31 - 1;

function challenge(res: Response, status: 400 | 401 | 403, error: string, description: string): void {
  if (status !== 400) {
    const scope = error === 'insufficient_scope' ? `, scope="${REVOCATIONS_SCOPE}"` : '';
    res.set('WWW-Authenticate', `Bearer error="${error}", error_description="${description}"${scope}`);
  }
  res.status(status).set('Cache-Control', 'no-store').json({ error, error_description: description });
}

const BAD_CURSOR = 'the cursor must be an event id from this feed, such as 1700000000000-0';

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { revocations, tokens, logger } = options;
  const audience = revocationsAudience(options.issuer);
  const clients = new Set(options.clients);
  const keepAliveMs = options.keepAliveMs ?? 15_000;
  const pageSize = options.pageSize ?? 500;
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const open = new Set<() => void>();

  const authenticate: RequestHandler = async (req, res, next) => {
    try {
      const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(req.headers.authorization ?? '');
      if (!match) {
        challenge(res, 401, 'invalid_token', 'a bearer access token for the revocation feed is required');
        return;
      }
      const claims = await tokens.verify(match[1]!, { audience });
      if (!claims || (await tokens.isRevoked(claims))) {
        challenge(res, 401, 'invalid_token', 'the access token is invalid, expired, revoked or not meant for the revocation feed');
        return;
      }
      if (!clients.has(claims.client_id) || !(claims.scope ?? '').split(' ').includes(REVOCATIONS_SCOPE)) {
        challenge(res, 403, 'insufficient_scope', `the revocation feed needs the ${REVOCATIONS_SCOPE} scope of a resource server client`);
        return;
      }
      res.locals.feedClaims = claims;
      next();
    } catch (error) {
      next(error);
    }
  };

  /** The cursor the request starts after, `0-0` for none; undefined when malformed. */
  function startCursor(req: Request, header: boolean): string | undefined {
    const since = req.query.since;
    const lastEventId = header ? req.headers['last-event-id'] : undefined;
    const value = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : since;
    if (value === undefined) return '0-0';
    return typeof value === 'string' && isStreamId(value) ? value : undefined;
  }

  const router = express.Router();

  router.get('/', authenticate, async (req, res, next) => {
    try {
      const since = startCursor(req, false);
      if (since === undefined) {
        challenge(res, 400, 'invalid_request', BAD_CURSOR);
        return;
      }
      const events: RevocationEvent[] = [];
      let cursor = since;
      for (;;) {
        const page = await revocations.eventsAfter(cursor, pageSize);
        events.push(...page.events);
        if (page.cursor === cursor) break;
        cursor = page.cursor;
      }
      res.set('Cache-Control', 'no-store').json({ events, cursor });
    } catch (error) {
      next(error);
    }
  });

  router.get('/feed', authenticate, async (req, res, next) => {
    const claims = res.locals.feedClaims as AccessTokenClaims;
    let cursor = startCursor(req, true);
    if (cursor === undefined) {
      challenge(res, 400, 'invalid_request', BAD_CURSOR);
      return;
    }
    let started = false;
    let pumping = false;
    let again = false;
    let closed = false;
    let stopListening: (() => void) | undefined;
    let keepAlive: NodeJS.Timeout | undefined;
    let expiry: NodeJS.Timeout | undefined;

    const end = () => {
      if (closed) return;
      closed = true;
      clearInterval(keepAlive);
      clearTimeout(expiry);
      stopListening?.();
      open.delete(end);
      if (!res.writableEnded) res.end();
    };

    const send = (events: RevocationEvent[]) => {
      for (const event of events) res.write(`id: ${event.id}\nevent: revocation\ndata: ${JSON.stringify(event)}\n\n`);
    };

    // Reads from this connection's cursor until the stream has nothing newer; a wake-up during a
    // read schedules one more round, so nothing appended meanwhile is left behind.
    const pump = async (): Promise<void> => {
      if (pumping || !started) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          const page = await revocations.eventsAfter(cursor!, pageSize);
          if (closed) return;
          send(page.events);
          if (page.cursor !== cursor) again = true;
          cursor = page.cursor;
        } while (again && !closed);
      } catch (error) {
        // The store is unreachable: end the stream so the client sees the outage and reconnects.
        logger.warn({ reqId: req.id, err: { name: (error as Error).name, message: (error as Error).message } }, 'revocation feed read failed; closing the stream');
        end();
      } finally {
        pumping = false;
      }
    };

    try {
      // Listen before the first read: an event appended in between then wakes a second read.
      stopListening = await revocations.listen(() => void pump());
      const first = await revocations.eventsAfter(cursor, pageSize);
      if (req.destroyed) {
        stopListening();
        return;
      }
      if (first.cursor !== cursor) again = true;
      cursor = first.cursor;
      open.add(end);
      res.on('close', end);
      res.status(200).set({
        'Content-Type': 'text/event-stream; charset=utf-8',
        'Cache-Control': 'no-store',
        Connection: 'keep-alive',
        // Reverse proxies (nginx) must pass events through as they come.
        'X-Accel-Buffering': 'no',
      });
      res.flushHeaders();
      res.write(`retry: ${RETRY_MS}\n\n`);
      send(first.events);
      started = true;
      if (again) void pump();
      keepAlive = setInterval(() => {
        res.write(': keep-alive\n\n');
        void pump();
      }, keepAliveMs);
      // The stream lives as long as the token that opened it.
      expiry = setTimeout(end, Math.min(MAX_TIMER_MS, Math.max(0, (claims.exp - now()) * 1000)));
    } catch (error) {
      stopListening?.();
      next(error);
    }
  });

  return {
    router,
    close() {
      for (const end of [...open]) end();
    },
    connections: () => open.size,
  };
}
