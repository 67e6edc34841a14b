// The policy: for a person, an agent and a request, exactly which scopes and audience are granted,
// for how long, and why (issue 3; DESIGN.md core flow step 4). Pure: no I/O, no clock (the caller
// passes `now`), so every decision is reproducible and explainable offline.
//
//   granted = requested ∩ person's role scopes ∩ agent ceiling ∩ resource scopes
//             (∩ subject-token scopes on re-delegation)
//   ttl     = min(agent cap, resource cap, remaining session, remaining subject token)
//
// Asking for anything outside that set is refused (invalid_scope naming each scope and the rule
// that excluded it), never silently trimmed. Step-up rules (RFC 9470) turn a grant into a request
// to sign in again, with the acr_values / max_age the client needs.
import type { AgentConfig, Config, ResourceConfig, StepUpConfig } from '../config/index.ts';
import { formatDuration } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { indexRoleMappings, resolveRoles } from './roles.ts';
import type { ResolvedRoles, RoleIndex } from './roles.ts';
import type { Decision, DecisionRequest, PolicyError, ScopeExclusion, StepUpTrace, Trace, TtlTrace } from './types.ts';

export interface Policy {
  /** Roles for a person (used at sign-in and by decide). */
  resolveRoles(identity: FederatedIdentity, explainAll?: boolean): ResolvedRoles;
  decide(request: DecisionRequest): Decision;
}

interface CompiledAgent {
  config: AgentConfig;
  ceiling: Set<string>;
  audiences: Set<string>;
  delegateTo: Set<string>;
}

const list = (items: Iterable<string>) => [...items].map((i) => `"${i}"`).join(', ') || 'none';

export function createPolicy(config: Config): Policy {
  const roleIndex: RoleIndex = indexRoleMappings(config);
  const roleScopes = new Map(Object.entries(config.roles).map(([name, role]) => [name, new Set(role.scopes)]));
  const resources = new Map<string, { config: ResourceConfig; scopes: Set<string> }>(
    config.resources.map((res) => [res.id, { config: res, scopes: new Set(res.scopes) }]),
  );
  /** Per role, the resources it grants at least one scope of (the audience check). */
  const roleResources = new Map([...roleScopes].map(([name, scopes]) => [
    name, new Set(config.resources.filter((res) => res.scopes.some((s) => scopes.has(s))).map((res) => res.id)),
  ]));
  const agents = new Map<string, CompiledAgent>(config.agents.map((agent) => [agent.clientId, {
    config: agent,
    ceiling: new Set(agent.scopes),
    audiences: new Set(agent.audiences),
    delegateTo: new Set(agent.delegateTo),
  }]));
  const stepUp = config.stepUp.map((rule) => ({ rule, scopes: new Set(rule.scopes) }));

  function decide(req: DecisionRequest): Decision {
    const { identity, now } = req;
    const agent = agents.get(req.agent);
    const trace: Trace = {
      identity: { idp: identity.idp, subject: identity.subject },
      agent: { clientId: req.agent, known: Boolean(agent), disabled: agent?.config.disabled ?? false },
      roles: { source: 'mappings', groupsComplete: identity.groupsComplete, mappings: [], notConsidered: 0, granted: [], denied: [] },
      stepUp: [],
    };
    const deny = (error: PolicyError, description: string): Decision => ({ outcome: 'deny', error, description, trace });

    if (!agent) return deny('unauthorized_client', `unknown agent "${req.agent}"`);
    if (agent.config.disabled) return deny('unauthorized_client', `agent "${req.agent}" is disabled`);

    let roles: string[];
    if (req.roles && !req.explainAll) {
      roles = [...req.roles].sort();
      trace.roles = {
        source: 'session', groupsComplete: identity.groupsComplete, mappings: [],
        notConsidered: roleIndex.rules.length, granted: roles, denied: [],
      };
    } else {
      const resolved = resolveRoles(roleIndex, identity, req.explainAll);
      trace.roles = resolved.trace;
      roles = resolved.roles;
    }

    if (agent.config.actsFor) {
      const satisfied = agent.config.actsFor.some((r) => roles.includes(r));
      trace.agent.actsFor = { roles: agent.config.actsFor, satisfied };
      if (!satisfied) {
        return deny('unauthorized_client', `agent "${req.agent}" acts only for people holding one of the roles ${list(agent.config.actsFor)}; this person holds ${list(roles)}`);
      }
    }

    // Re-delegation: the subject token already names actors; the newest one hands work on.
    const parentActors = req.subjectToken?.actors ?? [];
    const chain = [req.agent, ...parentActors];
    if (parentActors.length > 0) {
      const parentId = parentActors[0]!;
      const parent = agents.get(parentId);
      const limits = [config.policy.maxDelegationDepth, ...chain.map((id) => agents.get(id)?.config.maxDelegationDepth ?? Infinity)];
      const maxDepth = Math.min(...limits);
      const depth = chain.length;
      let allowed = true;
      let reason = `agent "${parentId}" may delegate to "${req.agent}" and depth ${depth} ≤ ${maxDepth}`;
      const stale = parentActors.find((id) => !agents.get(id) || agents.get(id)!.config.disabled);
      if (!parent || parent.config.disabled) {
        allowed = false;
        reason = `the delegating agent "${parentId}" is ${parent ? 'disabled' : 'unknown'}`;
      } else if (stale !== undefined) {
        // Every agent up the chain must still be in good standing, not only the newest one.
        allowed = false;
        reason = `agent "${stale}" earlier in the delegation chain is ${agents.get(stale) ? 'disabled' : 'unknown'}`;
      } else if (!parent.delegateTo.has(req.agent)) {
        allowed = false;
        reason = `agent "${parentId}" may not delegate to "${req.agent}" (its delegateTo: ${list(parent.delegateTo)})`;
      } else if (depth > maxDepth) {
        allowed = false;
        reason = `delegation depth ${depth} exceeds the maximum of ${maxDepth}`;
      }
      trace.delegation = { chain, depth, maxDepth, allowed, reason };
      if (!allowed) return deny('unauthorized_client', reason);
    }

    // Time: nothing outlives the session or the token it was exchanged from.
    const ttlLimits: TtlTrace['limits'] = [{ limit: 'agent', seconds: agent.config.maxTokenTtl }];
    if (req.sessionExpiresAt !== undefined) {
      const left = req.sessionExpiresAt - now;
      if (left <= 0) return deny('invalid_grant', 'the enterprise session has ended');
      ttlLimits.push({ limit: 'session', seconds: left });
    }
    if (req.subjectToken) {
      const left = req.subjectToken.expiresAt - now;
      if (left <= 0) return deny('invalid_grant', 'the subject token has expired');
      ttlLimits.push({ limit: 'subject_token', seconds: left });
    }

    // Audience: exactly one, allowed for the agent and for the person.
    let audience = req.audience;
    let source: 'request' | 'only_audience' = 'request';
    if (audience === undefined) {
      if (agent.audiences.size !== 1) {
        return deny('invalid_target', `an audience is required: agent "${req.agent}" may target ${list(agent.audiences)}`);
      }
      audience = [...agent.audiences][0]!;
      source = 'only_audience';
    }
    const resource = resources.get(audience);
    const rolesGrant = (scope: string) => roles.some((r) => roleScopes.get(r)?.has(scope));
    let audienceProblem: string | undefined;
    if (!resource) audienceProblem = `unknown resource "${audience}"`;
    else if (!agent.audiences.has(audience)) audienceProblem = `agent "${req.agent}" may not request tokens for "${audience}"`;
    else if (!roles.some((r) => roleResources.get(r)?.has(audience))) {
      audienceProblem = `no role of this person grants any scope of "${audience}" (roles: ${list(roles)})`;
    }
    trace.audience = { id: audience, source, allowed: !audienceProblem, reason: audienceProblem ?? `allowed for agent "${req.agent}" and for the person's roles` };
    if (audienceProblem || !resource) return deny('invalid_target', audienceProblem ?? 'unknown resource');
    ttlLimits.push({ limit: 'resource', seconds: resource.config.tokenTtl });

    // Scopes.
    const fromRequest = req.scopes !== undefined;
    const requested = [...new Set(fromRequest ? req.scopes : agent.config.defaultScopes[audience] ?? [])];
    if (requested.length === 0) {
      trace.scopes = { requested, source: fromRequest ? 'request' : 'default', granted: [], excluded: [] };
      return deny('invalid_scope', fromRequest
        ? 'no scope requested'
        : `no scope requested and agent "${req.agent}" has no default scopes for "${audience}"`);
    }
    const parentScopes = parentActors.length > 0 ? new Set(req.subjectToken?.scopes) : undefined;
    const excluded: ScopeExclusion[] = [];
    for (const scope of requested) {
      if (!resource.scopes.has(scope)) {
        excluded.push({ scope, rule: 'resource', reason: `scope "${scope}" is not offered by resource "${audience}"` });
      } else if (!agent.ceiling.has(scope)) {
        excluded.push({ scope, rule: 'agent', reason: `scope "${scope}" is outside the scopes registered for agent "${req.agent}"` });
      } else if (!rolesGrant(scope)) {
        excluded.push({ scope, rule: 'roles', reason: `scope "${scope}" is not granted to this person by any role (roles: ${list(roles)})` });
      } else if (parentScopes && !parentScopes.has(scope)) {
        excluded.push({ scope, rule: 'subject_token', reason: `scope "${scope}" is not in the subject token (delegation can only narrow)` });
      }
    }
    const granted = requested.filter((s) => !excluded.some((e) => e.scope === s));
    trace.scopes = { requested, source: fromRequest ? 'request' : 'default', granted: excluded.length ? [] : granted, excluded };
    if (excluded.length > 0) return deny('invalid_scope', excluded.map((e) => e.reason).join('; '));

    trace.dpop = { required: agent.config.requireDpop, present: Boolean(req.dpop) };
    if (agent.config.requireDpop && !req.dpop) {
      return deny('invalid_request', `agent "${req.agent}" must present a DPoP proof (requireDpop)`);
    }

    // Step-up (RFC 9470): every rule touching a granted scope must be satisfied by the sign-in.
    const failing: StepUpConfig[] = [];
    stepUp.forEach(({ rule, scopes }, i) => {
      const touched = granted.filter((s) => scopes.has(s));
      if (touched.length === 0) return;
      const problems: string[] = [];
      if (rule.acr && !(identity.acr !== undefined && rule.acr.includes(identity.acr))) {
        problems.push(identity.acr === undefined
          ? `acr is absent, expected one of ${list(rule.acr)}`
          : `acr "${identity.acr}" is not one of ${list(rule.acr)}`);
      }
      const missingAmr = rule.amr?.filter((m) => !identity.amr.includes(m)) ?? [];
      if (missingAmr.length > 0) problems.push(`amr lacks ${list(missingAmr)}`);
      const age = now - identity.authTime;
      if (rule.maxAge !== undefined && age > rule.maxAge) {
        problems.push(`sign-in is ${formatDuration(Math.max(age, 1))} old, more than ${formatDuration(rule.maxAge)}`);
      }
      const entry: StepUpTrace = {
        rule: i, scopes: touched, satisfied: problems.length === 0,
        reason: problems.length === 0 ? 'satisfied by the sign-in' : problems.join('; '),
      };
      trace.stepUp.push(entry);
      if (!entry.satisfied) failing.push(rule);
    });
    if (failing.length > 0) {
      const acrValues = [...new Set(failing.flatMap((r) => r.acr ?? []))];
      const maxAges = failing.flatMap((r) => (r.maxAge === undefined ? [] : [r.maxAge]));
      const maxAge = maxAges.length > 0 ? Math.min(...maxAges) : undefined;
      const touched = [...new Set(trace.stepUp.filter((e) => !e.satisfied).flatMap((e) => e.scopes))];
      return {
        outcome: 'step_up',
        error: 'insufficient_user_authentication',
        description: `scope ${list(touched)} requires a stronger or more recent sign-in: ${trace.stepUp.filter((e) => !e.satisfied).map((e) => e.reason).join('; ')}`,
        ...(acrValues.length > 0 ? { acrValues } : {}),
        ...(maxAge !== undefined ? { maxAge } : {}),
        trace,
      };
    }

    const bound = ttlLimits.reduce((a, b) => (b.seconds < a.seconds ? b : a));
    const ttl = Math.floor(bound.seconds);
    trace.ttl = { seconds: ttl, limits: ttlLimits, boundBy: bound.limit };
    if (ttl < 1) {
      // A token that is born expired is no grant; say which limit left no time.
      return deny('invalid_grant', `no time left for a token: the ${bound.limit.replace('_', ' ')} allows under a second`);
    }
    return {
      outcome: 'grant',
      scopes: granted,
      audience,
      ttl,
      roles,
      actors: chain,
      requireDpop: agent.config.requireDpop,
      trace,
    };
  }

  return {
    resolveRoles: (identity, explainAll = false) => resolveRoles(roleIndex, identity, explainAll),
    decide,
  };
}
