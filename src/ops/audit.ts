// The audit trail: one entry per security-relevant event in the Redis stream `audit` (bounded with
// XADD MAXLEN ~, so it never grows forever) plus one log line. Event names are noun.past_verb
// (STYLE.md). Entries never carry tokens, secrets or SAML documents: ids (jti, sid) identify them.
import type { Store } from '../store/index.ts';
import type { Logger } from './logger.ts';

export const AUDIT_STREAM = 'audit';
export const AUDIT_MAX_LEN = 100_000;

export type AuditValue = string | number | boolean | readonly string[] | undefined;

export interface AuditTrail {
  /** Appends the event; rejects when the store cannot take it (callers decide whether that fails the request). */
  record(event: string, fields: Record<string, AuditValue>): Promise<void>;
}

export function createAuditTrail(store: Store, logger: Logger, now: () => number = () => Math.floor(Date.now() / 1000)): AuditTrail {
  return {
    async record(event, fields) {
      const entry: Record<string, string> = { event, time: String(fields.time ?? now()) };
      for (const [name, value] of Object.entries(fields)) {
        if (value === undefined || name === 'time') continue;
        entry[name] = Array.isArray(value) ? value.join(' ') : String(value);
      }
      logger.info({ ...fields, event }, event);
      await store.appendToStream(AUDIT_STREAM, entry, AUDIT_MAX_LEN);
    },
  };
}
