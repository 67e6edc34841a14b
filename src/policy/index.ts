// The policy module (pure): roles from groups, the decision for an agent's request, and the
// trace that explains it.
export { createPolicy } from './policy.ts';
export type { Policy } from './policy.ts';
export type { ResolvedRoles } from './roles.ts';
export type {
  Decision, DecisionRequest, Denial, Grant, MappingTrace, PolicyError, RolesTrace, ScopeExclusion,
  StepUpRequired, StepUpTrace, SubjectTokenFacts, Trace, TtlTrace,
} from './types.ts';
export { decisionToJson, formatDecision } from './explain.ts';
export type { DecisionJson } from './explain.ts';
