// Consent: a person's approval (or denial) of an agent acting for them with a set of scopes.
export { CONSENT_TTL, consentKey, createConsentService } from './consents.ts';
export type { ConsentDecision, ConsentRecord, ConsentService, ConsentSubject } from './consents.ts';
