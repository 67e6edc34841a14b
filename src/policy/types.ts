// Inputs, decisions and the explanation trace of the policy module.
import type { FederatedIdentity } from '../identity/index.ts';

/** What the policy refuses with; the exchange maps these to RFC 6749 / 8693 errors unchanged. */
export type PolicyError =
  | 'invalid_scope'
  | 'invalid_target'
  | 'unauthorized_client'
  | 'invalid_grant'
  | 'invalid_request';

export interface SubjectTokenFacts {
  /** Scopes of the subject token: on re-delegation the new token can only narrow them. */
  scopes: readonly string[];
  /** Actor chain of the subject token, most recent actor first (empty for a user token). */
  actors: readonly string[];
  /** Expiry of the subject token, seconds since the epoch. */
  expiresAt: number;
}

export interface DecisionRequest {
  identity: FederatedIdentity;
  /** client_id of the requesting agent. */
  agent: string;
  /** Requested scopes; undefined when the request omitted `scope`. */
  scopes?: readonly string[];
  /** Requested audience / resource; undefined when omitted. */
  audience?: string;
  subjectToken?: SubjectTokenFacts;
  /** Expiry of the enterprise session, seconds since the epoch. */
  sessionExpiresAt?: number;
  /** Whether the request carries a valid DPoP proof. */
  dpop?: boolean;
  /** Seconds since the epoch. */
  now: number;
  /**
   * The person's roles as resolved at sign-in and kept in the enterprise session (DESIGN.md core
   * flow step 1). When given, mappings are not evaluated again: the exchange hot path decides on
   * the roles the session holds. Omit to resolve them from the identity (explain, tests).
   */
  roles?: readonly string[];
  /** Include every mapping in the trace, not only those that could apply (explain). */
  explainAll?: boolean;
}

export interface MappingTrace {
  index: number;
  description?: string;
  roles: string[];
  deny: string[];
  matched: boolean;
  /** `full`: its roles and denials apply; `deny_only`: fail-closed case, only its denials. */
  effect: 'none' | 'deny_only' | 'full';
  reason: string;
}

export interface RolesTrace {
  /** `mappings`: resolved now from the identity; `session`: taken from the enterprise session. */
  source: 'mappings' | 'session';
  groupsComplete: boolean;
  mappings: MappingTrace[];
  /** Mappings not looked at because nothing about the identity could match them. */
  notConsidered: number;
  granted: string[];
  denied: string[];
}

export interface ScopeExclusion {
  scope: string;
  rule: 'resource' | 'agent' | 'roles' | 'subject_token';
  reason: string;
}

export interface StepUpTrace {
  rule: number;
  scopes: string[];
  satisfied: boolean;
  reason: string;
}

export interface TtlTrace {
  seconds: number;
  limits: { limit: 'agent' | 'resource' | 'session' | 'subject_token'; seconds: number }[];
  boundBy: string;
}

export interface Trace {
  identity: { idp: string; subject: string };
  agent: { clientId: string; known: boolean; disabled: boolean; actsFor?: { roles: string[]; satisfied: boolean } };
  roles: RolesTrace;
  delegation?: { chain: string[]; depth: number; maxDepth: number; allowed: boolean; reason: string };
  audience?: { id: string; source: 'request' | 'only_audience'; allowed: boolean; reason: string };
  scopes?: { requested: string[]; source: 'request' | 'default'; granted: string[]; excluded: ScopeExclusion[] };
  dpop?: { required: boolean; present: boolean };
  stepUp: StepUpTrace[];
  ttl?: TtlTrace;
}

export interface Grant {
  outcome: 'grant';
  scopes: string[];
  audience: string;
  /** Seconds. */
  ttl: number;
  roles: string[];
  /** The new token's actor chain, most recent first (the requesting agent first). */
  actors: string[];
  requireDpop: boolean;
  trace: Trace;
}

export interface Denial {
  outcome: 'deny';
  error: PolicyError;
  description: string;
  trace: Trace;
}

/** RFC 9470: the person must sign in again, more strongly or more recently. */
export interface StepUpRequired {
  outcome: 'step_up';
  error: 'insufficient_user_authentication';
  description: string;
  acrValues?: string[];
  maxAge?: number;
  trace: Trace;
}

export type Decision = Grant | Denial | StepUpRequired;
