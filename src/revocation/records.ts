// Revocation records: which store keys decide whether a token is dead, and what their values mean
// (issue 6; DESIGN.md "Store key schema"). Pure functions of the token's claims and the fetched
// values, so a caller can batch the reads (the token exchange reads them in the same MGET as the
// session) and every replica reaches the same answer from the same records, with no cache.
//
//   revoked:jti:{jti}          RFC 7009 revocation of one token            presence = dead
//   revoked:sid:{sid}          the enterprise session ended                 presence = dead
//   revoked:sub:{sub}          every session of the person ended at <at>    iat <= at = dead
//   revoked:agent:{clientId}   kill switch at <at>: tokens the agent holds  iat <= at = dead
//                              (client_id) or delegated onward (in `act`)
//   revoked:sidagent:{sid}:{clientId}
//                              the person revoked one agent in one session      iat <= at = dead
//                              at <at> ("My agents"): tokens of that session the
//                              agent holds (client_id) or delegated onward (in `act`)
//   agent:disabled:{clientId}  the agent is disabled now (no TTL): nothing is issued to it

export const revokedJtiKey = (jti: string) => `revoked:jti:${jti}`;
export const revokedSidKey = (sid: string) => `revoked:sid:${sid}`;
export const revokedSubKey = (sub: string) => `revoked:sub:${sub}`;
export const revokedAgentKey = (clientId: string) => `revoked:agent:${clientId}`;
export const revokedSessionAgentKey = (sid: string, clientId: string) => `revoked:sidagent:${sid}:${clientId}`;
export const agentDisabledKey = (clientId: string) => `agent:disabled:${clientId}`;

/** The claims revocation looks at (a subset of an RFC 9068 access token). */
export interface RevocableClaims {
  jti: string;
  iat: number;
  client_id: string;
  sub?: string | undefined;
  sid?: string | undefined;
  /** Actors of the token's `act` chain (RFC 8693 §4.1), newest first; empty for none. */
  actors: readonly string[];
}

/**
 * The keys whose records decide the token, in a fixed order: jti, sid (if any), sub (if any),
 * then the agent records of client_id and of every actor (deduplicated), then (with a sid) the
 * session-agent records of the same agents.
 */
export function revocationKeys(claims: RevocableClaims): string[] {
  const agents = [...new Set([claims.client_id, ...claims.actors])];
  return [
    revokedJtiKey(claims.jti),
    ...(claims.sid !== undefined ? [revokedSidKey(claims.sid)] : []),
    ...(claims.sub !== undefined ? [revokedSubKey(claims.sub)] : []),
    ...agents.map(revokedAgentKey),
    ...(claims.sid !== undefined ? agents.map((agent) => revokedSessionAgentKey(claims.sid!, agent)) : []),
  ];
}

/** A time record ("<at>") kills tokens issued at or before `at`; an unreadable one kills all (fail closed). */
export function hitsIssuedAt(value: string, iat: number): boolean {
  const at = Number(value);
  return !Number.isFinite(at) || iat <= at;
}

/**
 * Whether the values read for `revocationKeys(claims)` (same order; null = no record) mean the
 * token is revoked.
 */
export function isRevokedBy(claims: RevocableClaims, values: readonly (string | null | undefined)[]): boolean {
  const keys = revocationKeys(claims);
  if (values.length < keys.length) throw new TypeError(`isRevokedBy: expected ${keys.length} values (one per revocationKeys entry), got ${values.length}`);
  return keys.some((key, i) => {
    const value = values[i];
    if (value === null || value === undefined) return false;
    if (key.startsWith('revoked:sub:') || key.startsWith('revoked:agent:') || key.startsWith('revoked:sidagent:')) return hitsIssuedAt(value, claims.iat);
    return true;
  });
}
