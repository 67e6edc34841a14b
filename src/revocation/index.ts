// Revocation (issue 6): the records that kill tokens, the event stream every replica and resource
// server follows, and the feed that serves it.
export { agentDisabledKey, isRevokedBy, revocationKeys, revokedAgentKey, revokedJtiKey, revokedSessionAgentKey, revokedSidKey, revokedSubKey } from './records.ts';
export type { RevocableClaims } from './records.ts';
export { REVOCATION_CHANNEL, REVOCATION_STREAM } from './events.ts';
export type { RevocationEvent, RevocationEventType } from './events.ts';
export { CLOCK_SKEW, createRevocationService } from './service.ts';
export type { RevocationService, RevocationServiceOptions } from './service.ts';
export { longestTokenLifetime, SERVICE_TOKEN_TTL } from './lifetime.ts';
export { createRevocationFeed, REVOCATIONS_SCOPE, revocationsAudience } from './feed.ts';
export type { RevocationFeed, RevocationFeedOptions } from './feed.ts';
