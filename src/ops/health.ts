// Liveness and readiness probes. `/healthz` answers whether the process is up (a failing
// liveness probe gets the pod restarted, so it must not depend on Redis or an IdP); `/readyz`
// answers whether this replica should receive traffic: every dependency check passes within a
// deadline and the process is not draining for shutdown. Failure reasons on the wire are short
// fixed tokens (`timeout`, an error code): probes are often reachable from outside and an error
// message can carry hostnames or connection strings.

import type { RequestHandler } from 'express';
import type { Logger } from './logger.ts';

export type HealthCheck = () => Promise<void>;

export interface HealthOptions {
  /** Named readiness checks, run in parallel on every `/readyz`. Resolve = healthy. */
  checks: Record<string, HealthCheck>;
  /** Deadline per check; a check still pending then counts as failed. Default 1000. */
  timeoutMs?: number;
  /** When it returns true, `/readyz` fails at once so the load balancer stops routing here. */
  draining?: () => boolean;
  /** Receives the full error of a failed check (the response carries only a short reason). */
  logger?: Logger;
}

export interface HealthHandlers {
  healthz: RequestHandler;
  readyz: RequestHandler;
}

type CheckResult = { ok: true } | { ok: false; reason: string; err?: unknown };

const SAFE_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

function safeReason(err: unknown): string {
  // Node and ioredis errors carry stable codes (ECONNREFUSED, ETIMEDOUT, ERR_*); those are safe
  // to show. Messages are not.
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string' && SAFE_CODE.test(code)) return code;
  }
  return 'error';
}

async function runCheck(check: HealthCheck, timeoutMs: number): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: 'timeout' }), timeoutMs);
  });
  // The async wrapper turns a check that throws synchronously into a rejection.
  const attempt = (async (): Promise<CheckResult> => {
    await check();
    return { ok: true };
  })().catch((err: unknown): CheckResult => ({ ok: false, reason: safeReason(err), err }));
  try {
    return await Promise.race([attempt, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

export function createHealthHandlers(options: HealthOptions): HealthHandlers {
  const { checks, draining, logger } = options;
  const timeoutMs = options.timeoutMs ?? 1000;
  if (typeof checks !== 'object' || checks === null) {
    throw new TypeError('createHealthHandlers: options.checks must be an object of named checks');
  }
  for (const [name, check] of Object.entries(checks)) {
    if (typeof check !== 'function') {
      throw new TypeError(`createHealthHandlers: options.checks.${name} must be a function`);
    }
  }
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError('createHealthHandlers: options.timeoutMs must be a positive number');
  }
  const entries = Object.entries(checks);

  const healthz: RequestHandler = (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.status(200).json({ status: 'ok' });
  };

  const readyz: RequestHandler = async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    if (draining?.()) {
      res.status(503).json({ status: 'unavailable', reason: 'draining', checks: {} });
      return;
    }
    const results = await Promise.all(entries.map(([, check]) => runCheck(check, timeoutMs)));
    const report: Record<string, string> = {};
    let healthy = true;
    entries.forEach(([name], i) => {
      const result = results[i];
      if (result?.ok) {
        report[name] = 'ok';
        return;
      }
      healthy = false;
      const reason = result?.reason ?? 'error';
      report[name] = `failed: ${reason}`;
      logger?.warn({ check: name, reason, err: result?.err }, 'readiness check failed');
    });
    res.status(healthy ? 200 : 503).json({ status: healthy ? 'ok' : 'unavailable', checks: report });
  };

  return { healthz, readyz };
}
