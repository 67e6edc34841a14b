// Public surface of ops/: logging, metrics, health probes and graceful shutdown. Everything is a
// factory; nothing here holds module-level state, so main.ts wires one of each and tests make
// as many as they like.

export { createLogger, requestLogger } from './logger.ts';
export type { Logger, LoggerOptions, RequestLoggerOptions } from './logger.ts';
export { createMetrics } from './metrics.ts';
export type { Metrics, MetricsOptions } from './metrics.ts';
export { createHealthHandlers } from './health.ts';
export type { HealthCheck, HealthHandlers, HealthOptions } from './health.ts';
export { createGracefulShutdown } from './shutdown.ts';
export type { GracefulShutdown, GracefulShutdownOptions } from './shutdown.ts';
export { AUDIT_MAX_LEN, AUDIT_STREAM, createAuditTrail } from './audit.ts';
export type { AuditTrail, AuditValue } from './audit.ts';
