// The audit trail of exchange decisions (DESIGN.md "Store key schema": stream `audit`, XADD with
// MAXLEN ~): one entry per decision, granted or refused, plus one log line. Names are
// noun.past_verb (STYLE.md). Never tokens, never secrets: the jti identifies an issued token.
import type { Logger } from '../ops/index.ts';
import type { Store } from '../store/index.ts';

export const AUDIT_STREAM = 'audit';
const AUDIT_MAX_LEN = 100_000;

export interface ExchangeAuditEvent {
  event: 'token.exchanged' | 'token.exchange_refused';
  time: number;
  sub?: string;
  agent: string;
  actors: string[];
  requested: string[];
  granted: string[];
  audience?: string;
  outcome: 'grant' | 'deny' | 'step_up';
  error?: string;
  reasons: string[];
  sid?: string;
  jti?: string;
}

export interface AuditLog {
  record(event: ExchangeAuditEvent): Promise<void>;
}

export function createAuditLog(store: Store, logger: Logger): AuditLog {
  return {
    async record(event) {
      const fields: Record<string, string> = {
        event: event.event,
        time: String(event.time),
        agent: event.agent,
        actors: event.actors.join(' '),
        requested: event.requested.join(' '),
        granted: event.granted.join(' '),
        outcome: event.outcome,
        reasons: JSON.stringify(event.reasons),
        ...(event.sub ? { sub: event.sub } : {}),
        ...(event.audience ? { audience: event.audience } : {}),
        ...(event.error ? { error: event.error } : {}),
        ...(event.sid ? { sid: event.sid } : {}),
        ...(event.jti ? { jti: event.jti } : {}),
      };
      logger.info({ ...event }, event.event);
      await store.appendToStream(AUDIT_STREAM, fields, AUDIT_MAX_LEN);
    },
  };
}
