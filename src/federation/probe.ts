// Probing identity providers within a time bound: the admin console's health table and the
// gateway's start-up warm-up (discovery and JWKS, or SAML metadata, fetched before the first
// sign-in needs them, with a log line per IdP saying it is ready or what is wrong).
import type { Logger } from '../ops/index.ts';
import type { Connector, ProbeCheck } from './types.ts';

/** The connector's own checks; a probe that throws or outlasts `timeoutMs` is one failed check. */
export async function probeWithin(connector: Connector, timeoutMs: number): Promise<ProbeCheck[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<ProbeCheck[]>((resolve) => {
    timer = setTimeout(() => resolve([{ name: 'probe', ok: false, message: `no answer within ${timeoutMs / 1000}s` }]), timeoutMs);
  });
  return Promise.race([
    connector.probe().catch((error: unknown) => [{ name: 'probe', ok: false, message: (error as Error).message }]),
    timeout,
  ]).finally(() => clearTimeout(timer));
}

/**
 * Loads every IdP's metadata at start, in the background: one line per IdP when it is ready
 * (`identity provider ready`, with how long it took) or a warning naming each failing check.
 * Never fails the start: a sign-in through an IdP that is not ready tries again.
 */
export async function warmUpIdentityProviders(connectors: Iterable<Connector>, logger: Logger, timeoutMs = 10_000): Promise<void> {
  await Promise.all([...connectors].map(async (connector) => {
    const started = performance.now();
    const checks = await probeWithin(connector, timeoutMs);
    const fields = { idp: connector.id, type: connector.type, ms: Math.round(performance.now() - started) };
    const failing = checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.message}`);
    if (failing.length === 0) logger.info(fields, 'identity provider ready');
    else logger.warn({ ...fields, failing }, 'identity provider not ready; sign-ins through it will try again');
  }));
}
