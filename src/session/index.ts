// Enterprise sessions: create, look up, end (and what ending revokes).
export { accountIdOf, createSessionService, isSessionCursor, parseSessionAgents, revokedSidKey, sessionAgentField, sessionAgentsKey } from './sessions.ts';
export type { EndReason, EnterpriseSession, SessionAgent, SessionPage, SessionService, SessionServiceOptions, UpstreamSession } from './sessions.ts';
export { createCookieSigner } from './cookies.ts';
export type { CookieOptions, CookieSigner } from './cookies.ts';

/** The enterprise-session cookie (signed; carries only the sid). */
export const SESSION_COOKIE = 'agentgate.sid';
