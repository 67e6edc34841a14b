// A resource server's subscription to the gateway's revocation feed (issue 6 contract, "Feed
// endpoints"). The resource server authenticates as a client of its own and gets a feed token by
// client_credentials (resource `{issuer}/revocations`, scope `agentgate:revocations`); then, on
// every (re)connection: the catch-up `GET {issuer}/revocations?since=<cursor>` (nothing missed
// while away), then the Server-Sent Events stream `GET {issuer}/revocations/feed` with
// `Last-Event-ID`. When the stream ends (the gateway closes it when the token expires, a replica
// goes away, the network drops, or nothing — not even a keep-alive — arrives for `idleTimeout`)
// it reconnects with exponential backoff and jitter. `outage()` says for how long the feed has been
// down, so the middleware can fall back to introspection past its bound.
import type { ClientAuthentication } from './client-auth.ts';
import type { Discovery } from './discovery.ts';
import { requestJson } from './http.ts';
import type { FetchLike } from './http.ts';
import type { ClientLogger } from './logger.ts';
import { parseRevocationEvent } from './revocation-list.ts';
import type { RevocationList } from './revocation-list.ts';
import { createSseParser } from './sse.ts';

export const REVOCATIONS_SCOPE = 'agentgate:revocations';

export interface RevocationFeedOptions {
  issuer: string;
  discovery: Discovery;
  auth: ClientAuthentication;
  fetch: FetchLike;
  list: RevocationList;
  logger: ClientLogger;
  /** Epoch seconds (fractions allowed). */
  now: () => number;
  /** First reconnection delay in ms (default 500), doubling up to `maxDelay` (default 30 000). */
  initialDelay?: number;
  maxDelay?: number;
  /** Milliseconds without a byte (keep-alives come every 15 s) after which the stream is presumed dead (default 45 000). */
  idleTimeout?: number;
}

export interface RevocationFeed {
  /** Seconds the feed has been down; Infinity until the first catch-up succeeded; 0 while connected. */
  outage(): number;
  readonly connected: boolean;
  /** The cursor of the last applied event. */
  readonly cursor: string | undefined;
  /** Resolves once the first catch-up has been applied and the stream is open. */
  ready(): Promise<void>;
  close(): Promise<void>;
}

class FeedHttpError extends Error {
  readonly status: number;
  constructor(what: string, status: number) {
    super(`${what} answered HTTP ${status}`);
    this.name = 'FeedHttpError';
    this.status = status;
  }
}

export function createRevocationFeed(options: RevocationFeedOptions): RevocationFeed {
  const { issuer, discovery, auth, list, logger, now } = options;
  const fetchImpl = options.fetch;
  const base = issuer.replace(/\/$/, '');
  const resource = `${base}/revocations`;
  const initialDelay = options.initialDelay ?? 500;
  const maxDelay = options.maxDelay ?? 30_000;
  const idleTimeout = options.idleTimeout ?? 45_000;

  let closed = false;
  let connected = false;
  let synced = false;
  let downSince: number | undefined;
  let cursor: string | undefined;
  let token: { value: string; refreshAt: number } | undefined;
  let serverRetry: number | undefined;
  let current: AbortController | undefined;
  let wake: (() => void) | undefined;
  let markReady: () => void;
  const readyPromise = new Promise<void>((resolve) => { markReady = resolve; });

  async function feedToken(signal: AbortSignal): Promise<string> {
    if (token && now() < token.refreshAt) return token.value;
    const metadata = await discovery.get();
    const form = new URLSearchParams({ grant_type: 'client_credentials', resource, scope: REVOCATIONS_SCOPE });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    await auth.apply(form, headers);
    const res = await requestJson(fetchImpl, metadata.token_endpoint, { method: 'POST', headers, body: form, signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
    if (res.status !== 200 || typeof res.body.access_token !== 'string') {
      const error = typeof res.body.error === 'string' ? ` (${res.body.error}: ${String(res.body.error_description ?? '')})` : '';
      throw new Error(`the gateway refused the revocation feed token: HTTP ${res.status}${error}`);
    }
    const expiresIn = typeof res.body.expires_in === 'number' ? res.body.expires_in : 60;
    // Renewed a little before it runs out, so a reconnection never presents an expiring token.
    token = { value: res.body.access_token, refreshAt: now() + Math.max(expiresIn - 30, expiresIn / 2) };
    return token.value;
  }

  function applyAll(events: unknown[]): void {
    for (const raw of events) {
      const event = parseRevocationEvent(raw);
      if (!event) {
        logger.warn('agentgate: ignored a revocation event this SDK cannot read');
        continue;
      }
      list.apply(event);
      cursor = event.id;
    }
  }

  async function catchUp(bearer: string, signal: AbortSignal): Promise<void> {
    const url = cursor === undefined ? resource : `${resource}?since=${encodeURIComponent(cursor)}`;
    const res = await requestJson(fetchImpl, url, { headers: { authorization: `Bearer ${bearer}`, accept: 'application/json' }, signal: AbortSignal.any([signal, AbortSignal.timeout(10_000)]) });
    if (res.status !== 200 || !Array.isArray(res.body.events)) throw new FeedHttpError('the revocation catch-up', res.status);
    applyAll(res.body.events);
    if (typeof res.body.cursor === 'string') cursor = res.body.cursor;
  }

  async function stream(bearer: string, controller: AbortController): Promise<void> {
    const headers: Record<string, string> = { authorization: `Bearer ${bearer}`, accept: 'text/event-stream', 'cache-control': 'no-store' };
    if (cursor !== undefined) headers['last-event-id'] = cursor;
    let idle: NodeJS.Timeout | undefined;
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(new Error('the revocation feed went silent')), idleTimeout);
      idle.unref();
    };
    touch();
    try {
      const res = await fetchImpl(`${resource}/feed`, { headers, signal: controller.signal, redirect: 'manual' });
      if (res.status !== 200 || !res.body || !(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        await res.body?.cancel().catch(() => undefined);
        throw new FeedHttpError('the revocation feed', res.status);
      }
      connected = true;
      if (synced && downSince !== undefined) logger.info(`agentgate: revocation feed reconnected after ${Math.round(now() - downSince)}s`);
      synced = true;
      downSince = undefined;
      markReady();
      const parser = createSseParser({
        onEvent(event) {
          if (event.event !== 'revocation') return;
          let data: unknown;
          try {
            data = JSON.parse(event.data);
          } catch {
            data = undefined;
          }
          applyAll([data]);
          if (event.lastEventId) cursor = event.lastEventId;
        },
        onRetry(milliseconds) {
          serverRetry = milliseconds;
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        touch();
        parser.push(decoder.decode(chunk as Uint8Array, { stream: true }));
      }
    } finally {
      clearTimeout(idle);
    }
  }

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!closed) {
      const controller = new AbortController();
      current = controller;
      let openedAt: number | undefined;
      try {
        const bearer = await feedToken(controller.signal);
        await catchUp(bearer, controller.signal);
        openedAt = now();
        await stream(bearer, controller);
      } catch (error) {
        if (closed) break;
        // A 401 means the feed token ran out or was revoked: get a fresh one next time.
        if (error instanceof FeedHttpError && error.status === 401) token = undefined;
        if (connected || downSince === undefined || failures === 0) {
          logger.warn(`agentgate: revocation feed unavailable: ${(error as Error).message}`);
        }
      }
      if (closed) break;
      if (connected) {
        connected = false;
        downSince = now();
      }
      downSince ??= now();
      // A stream that lived a while was a success: start the backoff over.
      failures = openedAt !== undefined && now() - openedAt > 10 ? 0 : failures + 1;
      const base = Math.min(maxDelay, Math.max(initialDelay, serverRetry ?? 0) * 2 ** Math.max(0, failures - 1));
      await sleep(base / 2 + Math.random() * (base / 2));
    }
  }

  downSince = now();
  const running = run().catch((error: unknown) => {
    logger.warn(`agentgate: revocation feed stopped: ${(error as Error).message}`);
  });

  return {
    outage() {
      if (!synced) return Infinity;
      if (connected || downSince === undefined) return 0;
      return Math.max(0, now() - downSince);
    },
    get connected() {
      return connected;
    },
    get cursor() {
      return cursor;
    },
    ready: () => readyPromise,
    async close() {
      closed = true;
      current?.abort(new Error('closed'));
      wake?.();
      await running;
    },
  };
}
