// How long a revocation must be remembered: as long as the longest-lived token it could affect.
import type { Config } from '../config/index.ts';

/** Admin and revocation-feed tokens (src/authz/resource-servers.ts). */
export const SERVICE_TOKEN_TTL = 300;

/**
 * The longest lifetime, in seconds, of any token the gateway issues under this config: resource
 * token TTLs, agent caps, every `tokens.*` TTL and the service tokens (computed once at start).
 */
export function longestTokenLifetime(config: Config): number {
  return Math.max(
    SERVICE_TOKEN_TTL,
    ...config.resources.map((res) => res.tokenTtl),
    ...config.agents.map((agent) => agent.maxTokenTtl),
    ...Object.values(config.tokens),
  );
}
