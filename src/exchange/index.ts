// Token exchange (RFC 8693): per-agent downscoped tokens on one enterprise session.
export { createTokenExchange, TOKEN_EXCHANGE } from './grant.ts';
export type { TokenExchangeDeps } from './grant.ts';
export { createAuditLog } from './audit.ts';
export type { AuditLog, ExchangeAuditEvent } from './audit.ts';
export { actFromChain } from './tokens.ts';
export { TOKEN_TYPE } from './actor-token.ts';
