// Prometheus metrics: one prom-client Registry per gateway instance (never the library's global
// default registry, so two apps in one process, or two tests, cannot collide), the gateway's own
// series, the HTTP timing middleware and the scrape handler. Names follow Prometheus practice
// (`agentgate_` prefix, base units: `_seconds`, `_total`).

import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Request, RequestHandler, Response, NextFunction } from 'express';

export interface MetricsOptions {
  /** Process metrics (CPU, heap, event-loop lag, GC) under `agentgate_`. Default true. */
  defaultMetrics?: boolean;
}

export interface Metrics {
  registry: Registry;
  httpRequestDuration: Histogram<'method' | 'route' | 'status'>;
  tokensIssued: Counter<'grant_type'>;
  storeErrors: Counter<'operation'>;
  /**
   * Times every request. `routeLabel` must map requests onto a small fixed set (route patterns,
   * and one constant for anything unmatched): a raw path as a label lets any client create
   * unbounded series.
   */
  middleware(routeLabel: (req: Request) => string): RequestHandler;
  /** Serves the registry in the Prometheus text format. */
  handler: RequestHandler;
}

// 5 ms .. 5 s: token-endpoint work (a signature, a Redis round trip) sits at the low end; the
// upstream IdP calls made during federation reach the top.
const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

// Used when the caller's label function throws: an exception escaping a 'finish' listener
// would take the process down over a metric.
const LABEL_ERROR = '#label-error';

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: 'agentgate_' });
  }

  const httpRequestDuration = new Histogram({
    name: 'agentgate_http_request_duration_seconds',
    help: 'HTTP request duration in seconds, from first byte in to last byte out.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [registry],
  });
  const tokensIssued = new Counter({
    name: 'agentgate_tokens_issued_total',
    help: 'Tokens issued, by OAuth grant type.',
    labelNames: ['grant_type'] as const,
    registers: [registry],
  });
  const storeErrors = new Counter({
    name: 'agentgate_store_errors_total',
    help: 'Failed store operations, by operation.',
    labelNames: ['operation'] as const,
    registers: [registry],
  });

  function middleware(routeLabel: (req: Request) => string): RequestHandler {
    return function observeDuration(req: Request, res: Response, next: NextFunction): void {
      const stopTimer = httpRequestDuration.startTimer();
      res.once('finish', () => {
        let route: string;
        try {
          // Asked at finish time, after routing, so the caller can use req.route.
          route = routeLabel(req);
        } catch {
          route = LABEL_ERROR;
        }
        stopTimer({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    };
  }

  const handler: RequestHandler = async (_req, res) => {
    const body = await registry.metrics();
    res.setHeader('Content-Type', registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(body);
  };

  return { registry, httpRequestDuration, tokensIssued, storeErrors, middleware, handler };
}
