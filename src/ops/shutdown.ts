// Graceful shutdown of the HTTP server (SIGTERM from Kubernetes, Ctrl-C in dev). Owns the
// in-flight request count and the drain sequence: stop accepting, drop idle keep-alive
// connections, end long-lived streams (`onDraining`: an SSE feed would otherwise hold the drain
// to its deadline; its clients reconnect elsewhere), let requests already running finish (each answered with `Connection: close`,
// RFC 9112 §9.6) up to a deadline, cut whatever is left, then close dependencies (Redis, …).
// A token request cut mid-way is safe to retry: oidc-provider consumes codes atomically.
// It does not call process.exit: main.ts decides that after `shutdown()` settles.

import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Logger } from './logger.ts';

export interface GracefulShutdownOptions {
  server: Server;
  /** How long running requests may take to finish before their connections are cut. */
  timeoutMs: number;
  logger: Logger;
  /**
   * Run in order as the drain starts, before waiting for in-flight requests: end long-lived
   * responses (event streams). A hook that fails is logged and skipped.
   */
  onDraining?: Array<() => void | Promise<void>>;
  /** Run in order after the server has closed; a hook that fails is logged and skipped. */
  onClosed?: Array<() => Promise<void>>;
}

export interface GracefulShutdown {
  /** Starts the drain; every call returns the same promise, which never rejects. */
  shutdown(signal: string): Promise<void>;
  /** Requests received and not yet finished or aborted. */
  inFlight(): number;
  /** True from the first `shutdown()` call on (readiness fails while draining). */
  draining(): boolean;
}

export function createGracefulShutdown(options: GracefulShutdownOptions): GracefulShutdown {
  const { server, logger } = options;
  const hooks = [...(options.onClosed ?? [])];
  const drainingHooks = [...(options.onDraining ?? [])];
  if (!Number.isFinite(options.timeoutMs) || options.timeoutMs < 0) {
    throw new TypeError('createGracefulShutdown: options.timeoutMs must be a non-negative number');
  }
  const timeoutMs = options.timeoutMs;

  const active = new Set<ServerResponse>();
  let isDraining = false;
  let onIdle: (() => void) | undefined;
  let pending: Promise<void> | undefined;

  const closeOnFinish = (res: ServerResponse): void => {
    // Once headers are out the connection's fate is sealed; the force step handles the rest.
    if (!res.headersSent) res.setHeader('Connection', 'close');
  };

  // prependListener: run before the app's own 'request' listener, so a response the app
  // finishes synchronously is still counted and still gets `Connection: close`.
  server.prependListener('request', (_req: IncomingMessage, res: ServerResponse) => {
    active.add(res);
    if (isDraining) closeOnFinish(res);
    const done = (): void => {
      if (!active.delete(res)) return;
      if (active.size === 0) onIdle?.();
    };
    res.once('finish', done);
    res.once('close', done);
  });

  async function drain(signal: string): Promise<void> {
    const started = Date.now();
    isDraining = true;
    logger.info({ signal, inFlight: active.size, timeoutMs }, 'shutdown started');

    const closed = new Promise<void>((resolve) => {
      // An error here only means the server was not listening; there is nothing left to close.
      server.close(() => resolve());
    });
    server.closeIdleConnections();
    for (const res of active) closeOnFinish(res);
    for (const [index, hook] of drainingHooks.entries()) {
      try {
        await hook();
      } catch (err) {
        logger.error({ err, hook: index }, 'shutdown draining hook failed');
      }
    }

    let forced = false;
    if (active.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      forced = await new Promise<boolean>((resolve) => {
        onIdle = () => resolve(false);
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      clearTimeout(timer);
      onIdle = undefined;
    }
    // After the drain every connection left is idle, or one whose response was cut by the
    // deadline; either way nothing useful is lost by closing it now.
    const cut = active.size;
    server.closeAllConnections();
    await closed;
    // Their sockets are gone; Node emits the responses' 'close' a little later, and nobody can
    // be served by them any more.
    active.clear();
    if (forced) logger.warn({ signal, cut }, 'shutdown deadline reached; cut in-flight requests');

    let hookFailures = 0;
    for (const [index, hook] of hooks.entries()) {
      try {
        await hook();
      } catch (err) {
        hookFailures += 1;
        logger.error({ err, hook: index }, 'shutdown hook failed');
      }
    }
    logger.info({ signal, forced, hookFailures, durationMs: Date.now() - started }, 'shutdown complete');
  }

  return {
    shutdown(signal: string): Promise<void> {
      pending ??= drain(signal).catch((err: unknown) => {
        logger.error({ err, signal }, 'shutdown failed');
      });
      return pending;
    },
    inFlight: () => active.size,
    draining: () => isDraining,
  };
}
