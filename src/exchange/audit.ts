// The audit trail of exchange decisions (DESIGN.md "Store key schema": stream `audit`, XADD with
// MAXLEN ~): one entry per decision, granted or refused, plus one log line. Names are
// noun.past_verb (STYLE.md). Never tokens, never secrets: the jti identifies an issued token.
import { createAuditTrail } from '../ops/index.ts';
import type { Logger } from '../ops/index.ts';
import type { Store } from '../store/index.ts';

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
  const trail = createAuditTrail(store, logger);
  return {
    async record({ event, reasons, ...fields }) {
      await trail.record(event, { ...fields, reasons: JSON.stringify(reasons) });
    },
  };
}
