// Enterprise sessions: create, look up, end (and what ending revokes).
export { accountIdOf, createSessionService, parseSessionAgents, revokedSidKey, sessionAgentsKey } from './sessions.ts';
export type { EndReason, EnterpriseSession, SessionAgent, SessionService, SessionServiceOptions, UpstreamSession } from './sessions.ts';
export { createCookieSigner } from './cookies.ts';
export type { CookieOptions, CookieSigner } from './cookies.ts';

/** The enterprise-session cookie (signed; carries only the sid). */
export const SESSION_COOKIE = 'agentgate.sid';
