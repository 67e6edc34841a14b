// Presenting a decision: the JSON shape the admin API and `agentgate explain --json` return, and
// the human-readable text `agentgate explain` prints. Protocol names stay as the RFCs spell them
// (error, error_description, acr_values, max_age, expires_in).
import { formatDuration } from '../config/index.ts';
import type { Decision } from './types.ts';

export type DecisionJson =
  | { outcome: 'grant'; scope: string; audience: string; expires_in: number; roles: string[]; actors: string[]; dpop_required: boolean; trace: Decision['trace'] }
  | { outcome: 'deny'; error: string; error_description: string; trace: Decision['trace'] }
  | { outcome: 'step_up'; error: string; error_description: string; acr_values?: string; max_age?: number; trace: Decision['trace'] };

export function decisionToJson(decision: Decision): DecisionJson {
  switch (decision.outcome) {
    case 'grant':
      return {
        outcome: 'grant', scope: decision.scopes.join(' '), audience: decision.audience, expires_in: decision.ttl,
        roles: decision.roles, actors: decision.actors, dpop_required: decision.requireDpop, trace: decision.trace,
      };
    case 'deny':
      return { outcome: 'deny', error: decision.error, error_description: decision.description, trace: decision.trace };
    case 'step_up':
      return {
        outcome: 'step_up', error: decision.error, error_description: decision.description,
        ...(decision.acrValues ? { acr_values: decision.acrValues.join(' ') } : {}),
        ...(decision.maxAge !== undefined ? { max_age: decision.maxAge } : {}),
        trace: decision.trace,
      };
  }
}

const mark = (ok: boolean) => (ok ? '✓' : '✗');

/** A readable account of a decision: the outcome first, then each step that led to it. */
export function formatDecision(decision: Decision): string {
  const { trace } = decision;
  const lines: string[] = [];
  if (decision.outcome === 'grant') {
    lines.push(`GRANT  ${decision.scopes.join(' ')} for ${decision.audience}, ${formatDuration(decision.ttl)} (${decision.ttl}s)`);
  } else if (decision.outcome === 'deny') {
    lines.push(`DENY   ${decision.error}: ${decision.description}`);
  } else {
    const hints = [decision.acrValues ? `acr_values=${decision.acrValues.join(' ')}` : '', decision.maxAge !== undefined ? `max_age=${decision.maxAge}` : ''].filter(Boolean);
    lines.push(`STEP-UP ${decision.error}: ${decision.description}${hints.length ? ` (${hints.join(', ')})` : ''}`);
  }
  lines.push('', `person   ${trace.identity.idp} / ${trace.identity.subject}${trace.roles.groupsComplete ? '' : '  (groups INCOMPLETE: group-based grants do not apply)'}`);
  lines.push(`agent    ${trace.agent.clientId}${trace.agent.known ? '' : ' (unknown)'}${trace.agent.disabled ? ' (disabled)' : ''}`);
  if (trace.agent.actsFor) lines.push(`         acts for ${trace.agent.actsFor.roles.join(', ')}: ${mark(trace.agent.actsFor.satisfied)}`);

  lines.push('', `roles    ${trace.roles.granted.join(', ') || '(none)'}${trace.roles.denied.length ? `   denied: ${trace.roles.denied.join(', ')}` : ''}`);
  for (const m of trace.roles.mappings) {
    const effect = [m.roles.length ? `+${m.roles.join(' +')}` : '', m.deny.length ? `-${m.deny.join(' -')}` : ''].filter(Boolean).join(' ');
    lines.push(`  ${mark(m.matched)} roleMappings[${m.index}] ${effect}${m.description ? ` (${m.description})` : ''}: ${m.reason}`);
  }
  if (trace.roles.notConsidered > 0) lines.push(`  … ${trace.roles.notConsidered} mapping(s) not considered (no matching idp/group; --all lists them)`);

  if (trace.delegation) {
    const d = trace.delegation;
    lines.push('', `delegation ${mark(d.allowed)} chain ${d.chain.join(' ← ')} (depth ${d.depth} of max ${d.maxDepth}): ${d.reason}`);
  }
  if (trace.audience) lines.push('', `audience ${mark(trace.audience.allowed)} ${trace.audience.id} (${trace.audience.source === 'request' ? 'requested' : "the agent's only audience"}): ${trace.audience.reason}`);
  if (trace.scopes) {
    lines.push(`scopes   requested ${trace.scopes.requested.join(' ') || '(none)'} (${trace.scopes.source === 'request' ? 'from the request' : "agent's default"})`);
    for (const e of trace.scopes.excluded) lines.push(`  ✗ ${e.scope} [${e.rule}] ${e.reason}`);
    if (trace.scopes.granted.length) lines.push(`  ✓ ${trace.scopes.granted.join(' ')}`);
  }
  if (trace.dpop?.required) lines.push(`dpop     required: ${mark(trace.dpop.present)}`);
  for (const s of trace.stepUp) lines.push(`step-up  ${mark(s.satisfied)} stepUp[${s.rule}] for ${s.scopes.join(' ')}: ${s.reason}`);
  if (trace.ttl) {
    lines.push(`ttl      ${trace.ttl.seconds}s = min(${trace.ttl.limits.map((l) => `${l.limit} ${Math.floor(l.seconds)}s`).join(', ')}), bound by ${trace.ttl.boundBy}`);
  }
  return lines.join('\n');
}
