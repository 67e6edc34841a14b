// Consent records (issue 9): a person's decision about one agent acting for them with one set of
// scopes at one resource — approved or denied — remembered per person + agent + audience + scope
// set (order-free). An agent registered with `consent: required` gets no token for a person until
// an approval for exactly that set is on record; a denial is recorded too (the exchange then says
// so, and the person can still change their mind on the consent page).
//
// RFC 8693 has no user interaction: the exchange cannot show a page. It answers
// `consent_required` (the error code OpenID Connect Core §3.1.2.6 registered for "the
// authorization server requires end-user consent") with a `consent_uri` the app sends the person
// to; the decision is made at `{issuer}/account/consent`.
import { createHash } from 'node:crypto';

import type { Store } from '../store/index.ts';

export type ConsentDecision = 'approved' | 'denied';

export interface ConsentSubject {
  /** The person (`idp|subject`). */
  accountId: string;
  clientId: string;
  audience: string;
  scopes: readonly string[];
}

export interface ConsentRecord {
  decision: ConsentDecision;
  /** Seconds since the epoch. */
  at: number;
}

export interface ConsentService {
  get(subject: ConsentSubject): Promise<ConsentRecord | undefined>;
  record(subject: ConsentSubject, decision: ConsentDecision): Promise<ConsentRecord>;
  /** Withdraws a decision (the person revoked the agent: it must ask again). */
  forget(subject: ConsentSubject): Promise<void>;
  /** Where the person decides (the `consent_uri` of a `consent_required` error). */
  uri(subject: Omit<ConsentSubject, 'accountId'>): string;
}

/** How long a decision is remembered (then the person is asked again). */
export const CONSENT_TTL = 180 * 24 * 3600;

const sha256 = (value: string) => createHash('sha256').update(value).digest('base64url');

/** `consent:{person}:{agent}:{audience + scope set}`, hashed: ids and URLs never become key syntax. */
export const consentKey = (subject: ConsentSubject) =>
  `consent:${sha256(subject.accountId)}:${sha256(subject.clientId)}:${sha256(`${subject.audience}\n${[...new Set(subject.scopes)].sort().join(' ')}`)}`;

export function createConsentService(deps: { store: Store; issuer: string; now?: () => number }): ConsentService {
  const now = deps.now ?? (() => Math.floor(Date.now() / 1000));
  return {
    async get(subject) {
      const raw = await deps.store.get(consentKey(subject));
      if (!raw) return undefined;
      const parsed = JSON.parse(raw) as ConsentRecord;
      return parsed.decision === 'approved' || parsed.decision === 'denied' ? parsed : undefined;
    },
    async record(subject, decision) {
      const record = { decision, at: now() };
      await deps.store.set(consentKey(subject), JSON.stringify(record), { ttl: CONSENT_TTL });
      return record;
    },
    async forget(subject) {
      await deps.store.del(consentKey(subject));
    },
    uri({ clientId, audience, scopes }) {
      const params = new URLSearchParams({ agent: clientId, audience, scope: [...new Set(scopes)].sort().join(' ') });
      return `${deps.issuer}/account/consent?${params}`;
    },
  };
}
