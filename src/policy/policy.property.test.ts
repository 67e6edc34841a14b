// Property test of the policy (issue 3): for random small configs, identities and requests,
//   - a grant's scopes ⊆ requested (or the agent's defaults) ∩ the person's role scopes ∩ the
//     agent ceiling ∩ the resource's scopes (∩ the parent token's scopes on re-delegation),
//     and its ttl is ≤ every limit;
//   - an invalid_scope refusal names at least one requested scope, and only requested ones;
//   - roles equal an independent model of the documented semantics (fail closed);
//   - explainAll never changes a decision.
// Configs go through validateConfig, so only valid configs are tested.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { ConfigError, validateConfig } from '../config/index.ts';
import type { Config } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createPolicy } from './index.ts';
import type { Decision, DecisionRequest } from './index.ts';

const NOW = 1_700_000_000;
const ALPHABET = ['a', 'b', 'c', 'd', 'e', 'f'];
const IDPS = ['i0', 'i1'];
const GROUP_IDS = ['g0', 'g1', 'g2', 'g3'];
// Names include ids, so a group whose *name* is a configured id is generated often.
const GROUP_NAMES = ['G0', 'G1', 'g0', 'g2'];
const auth = { method: 'client_secret_basic', secret: 'property-test-secret-0123456789abcdef' };

type Ternary = boolean | 'error';
const or = (a: Ternary, b: Ternary): Ternary => (a === true || b === true ? true : a === 'error' || b === 'error' ? 'error' : false);

/** Conditions with a reference meaning: what CEL must answer for an identity (error included). */
const CONDITIONS: { source: string; ref: (p: FederatedIdentity) => Ternary }[] = [
  { source: 'attributes.t == "x"', ref: (p) => attributeIs(p, 'x') },
  { source: '"g1" in groups', ref: (p) => (p.groupsComplete ? ownGroups(p).some((g) => g.id === 'g1') : 'error') },
  { source: '!("G0" in group_names)', ref: (p) => (p.groupsComplete ? !ownGroups(p).some((g) => g.name === 'G0') : 'error') },
  { source: 'email.endsWith("@x.test")', ref: (p) => (p.email ?? '').endsWith('@x.test') },
  {
    source: 'attributes.t == "x" || "g2" in groups',
    ref: (p) => or(attributeIs(p, 'x'), p.groupsComplete ? ownGroups(p).some((g) => g.id === 'g2') : 'error'),
  },
  { source: '"mfa" in amr', ref: (p) => p.amr.includes('mfa') },
];
function attributeIs(p: FederatedIdentity, value: string): Ternary {
  const t = p.attributes.t;
  return t === undefined ? 'error' : t === value;
}
const ownGroups = (p: FederatedIdentity) => p.groups.filter((g) => g.idp === p.idp);

// --- arbitraries -------------------------------------------------------------------------------
const rarely = fc.integer({ min: 0, max: 9 }).map((n) => n === 0);
/** Mostly the first IdP, so mappings and people meet often enough for grants to happen. */
const idp = fc.integer({ min: 0, max: 4 }).map((n) => IDPS[n === 0 ? 1 : 0]!);
const sometimes = <T>(arbitrary: fc.Arbitrary<T>) =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary });
const mask = fc.integer({ min: 0, max: 63 });
const pickMask = <T>(items: readonly T[], bits: number) => items.filter((_, i) => (bits >> i) & 1);
const uniq = <T>(items: T[]) => [...new Set(items)];

const configSpec = fc.record({
  resources: fc.array(fc.record({
    scopes: fc.subarray(ALPHABET, { minLength: 1 }),
    ttl: fc.constantFrom('1m', '5m', '10m'),
  }), { minLength: 1, maxLength: 3 }),
  roles: fc.array(fc.subarray(ALPHABET, { minLength: 1 }), { minLength: 1, maxLength: 4 }),
  mappings: fc.array(fc.record({
    kind: fc.constantFrom('group', 'group', 'group', 'groupName', 'idp', 'idp', 'idp', 'global'),
    idp,
    group: fc.constantFrom(...GROUP_IDS),
    groupName: fc.constantFrom(...GROUP_NAMES),
    when: sometimes(fc.integer({ min: 0, max: CONDITIONS.length - 1 })),
    roles: fc.subarray([0, 1, 2, 3]),
    deny: sometimes(fc.integer({ min: 0, max: 3 })).map((r) => (r === undefined ? [] : [r])),
    denyOnly: rarely,
  }), { minLength: 1, maxLength: 7 }),
  agents: fc.array(fc.record({
    audiences: fc.subarray([0, 1, 2], { minLength: 1 }),
    ceiling: fc.subarray(ALPHABET),
    ttl: fc.constantFrom('30s', '2m', '10m', '1h'),
    delegateTo: fc.subarray([0, 1, 2]),
    maxDepth: sometimes(fc.integer({ min: 1, max: 4 })),
    requireDpop: rarely,
    disabled: rarely,
    actsFor: sometimes(fc.integer({ min: 0, max: 3 })),
    defaults: fc.subarray(ALPHABET),
  }), { minLength: 2, maxLength: 3 }),
  stepUp: fc.array(fc.record({
    scopes: fc.subarray(ALPHABET, { minLength: 1 }),
    acr: fc.option(fc.subarray(['x', 'y'], { minLength: 1 }), { nil: undefined }),
    amr: fc.option(fc.subarray(['pwd', 'mfa'], { minLength: 1 }), { nil: undefined }),
    maxAge: fc.option(fc.constantFrom('1m', '10m', '1h'), { nil: undefined }),
  }), { maxLength: 2 }),
  maxDelegationDepth: fc.constantFrom(1, 2, 3, 3, 4, 4),
});
type Spec<A> = A extends fc.Arbitrary<infer T> ? T : never;
type ConfigSpec = Spec<typeof configSpec>;

const identitySpec = fc.record({
  idp,
  groups: fc.array(fc.record({
    /** Mostly the person's own IdP; sometimes another one (such groups must never match). */
    otherIdp: rarely,
    id: fc.constantFrom(...GROUP_IDS, 'G0'),
    name: fc.option(fc.constantFrom(...GROUP_NAMES), { nil: undefined }),
  }), { minLength: 1, maxLength: 5 }),
  groupsComplete: rarely.map((r) => !r),
  amr: fc.subarray(['pwd', 'mfa']),
  acr: fc.option(fc.constantFrom('x', 'y', 'z'), { nil: undefined }),
  age: fc.integer({ min: 0, max: 7200 }),
  email: fc.constantFrom(undefined, 'p@x.test', 'p@y.test'),
  t: fc.constantFrom(undefined, 'x', 'x', 'y'),
});

const requestSpec = fc.record({
  agent: fc.integer({ min: 0, max: 9 }),
  audience: fc.integer({ min: 0, max: 9 }),
  scopeMode: fc.integer({ min: 0, max: 4 }),
  scopeBits: mask,
  redelegate: fc.option(fc.record({
    parent: fc.integer({ min: 0, max: 9 }),
    /** Actors before the parent: usually none, sometimes a longer (maybe cyclic) chain. */
    earlier: fc.oneof(
      { weight: 2, arbitrary: fc.constant<number[]>([]) },
      { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 3 }) },
    ),
    scopeBits: mask,
    /** A parent token holding at least the requested scopes (plus others), or any random set. */
    superset: fc.boolean(),
    expiresIn: fc.integer({ min: -10, max: 2000 }),
  }), { nil: undefined, freq: 2 }),
  userToken: fc.option(fc.integer({ min: -10, max: 2000 }), { nil: undefined }),
  session: fc.option(fc.integer({ min: -10, max: 10_000 }), { nil: undefined, freq: 4 }),
  dpop: fc.boolean(),
});

// --- building valid inputs from the specs --------------------------------------------------------
const resourceId = (i: number) => `https://r${i}.test`;
const agentId = (i: number) => `a${i}`;

function buildConfig(spec: ConfigSpec): Config | undefined {
  const resources = spec.resources.map((r, i) => ({ id: resourceId(i), scopes: r.scopes, tokenTtl: r.ttl }));
  const allScopes = new Set(resources.flatMap((r) => r.scopes));
  const roleNames = spec.roles.map((_, i) => `r${i}`);
  const roleAt = (i: number) => roleNames[i % roleNames.length]!;
  const roles = Object.fromEntries(spec.roles.map((scopes, i) => [roleNames[i], { scopes: scopes.filter((s) => allScopes.has(s)) }]));
  const roleMappings = spec.mappings.map((m) => {
    const mapping: Record<string, unknown> = {};
    if (m.kind !== 'global') mapping.idp = m.idp;
    if (m.kind === 'group') mapping.group = m.group;
    if (m.kind === 'groupName') mapping.groupName = m.groupName;
    const when = m.when ?? (m.kind === 'global' ? 0 : undefined);
    if (when !== undefined) mapping.when = CONDITIONS[when]!.source;
    const granted = m.denyOnly ? [] : uniq(m.roles.map(roleAt));
    const denied = uniq(m.deny.map(roleAt));
    mapping.roles = granted.length === 0 && denied.length === 0 ? [roleAt(0)] : granted;
    mapping.deny = denied;
    return mapping;
  });
  const agents = spec.agents.map((a, i) => {
    const audiences = uniq(a.audiences.map((r) => r % resources.length));
    const reachable = new Set(audiences.flatMap((r) => resources[r]!.scopes));
    const ceiling = a.ceiling.filter((s) => reachable.has(s));
    const first = resources[audiences[0]!]!;
    return {
      clientId: agentId(i), auth, scopes: ceiling, audiences: audiences.map(resourceId), maxTokenTtl: a.ttl,
      delegateTo: uniq(a.delegateTo.map((j) => j % spec.agents.length)).filter((j) => j !== i).map(agentId),
      ...(a.maxDepth === undefined ? {} : { maxDelegationDepth: a.maxDepth }),
      requireDpop: a.requireDpop, disabled: a.disabled,
      ...(a.actsFor === undefined ? {} : { actsFor: [roleAt(a.actsFor)] }),
      defaultScopes: { [first.id]: a.defaults.filter((s) => ceiling.includes(s) && first.scopes.includes(s)) },
    };
  });
  const stepUp = spec.stepUp
    .map((rule) => ({
      scopes: rule.scopes.filter((s) => allScopes.has(s)),
      ...(rule.acr ? { acr: rule.acr } : {}),
      ...(rule.amr ? { amr: rule.amr } : {}),
      ...(rule.maxAge || (!rule.acr && !rule.amr) ? { maxAge: rule.maxAge ?? '1h' } : {}),
    }))
    .filter((rule) => rule.scopes.length > 0);
  try {
    return validateConfig({
      mode: 'development', issuer: 'http://localhost:8080', store: { driver: 'memory' }, keys: { generate: true },
      resources, roles, roleMappings, agents, stepUp, policy: { maxDelegationDepth: spec.maxDelegationDepth },
    });
  } catch (error) {
    if (error instanceof ConfigError) return undefined;
    throw error;
  }
}

function buildIdentity(spec: Spec<typeof identitySpec>): FederatedIdentity {
  return {
    idp: spec.idp, subject: 'p',
    ...(spec.email === undefined ? {} : { email: spec.email }),
    groups: spec.groups.map((g) => ({
      idp: g.otherIdp ? IDPS.find((i) => i !== spec.idp)! : spec.idp, id: g.id, ...(g.name === undefined ? {} : { name: g.name }),
    })),
    groupsComplete: spec.groupsComplete,
    amr: spec.amr,
    ...(spec.acr === undefined ? {} : { acr: spec.acr }),
    authTime: NOW - spec.age,
    attributes: spec.t === undefined ? {} : { t: spec.t },
  };
}

function buildRequest(config: Config, identity: FederatedIdentity, spec: Spec<typeof requestSpec>): DecisionRequest {
  const agent = spec.agent === 9 ? undefined : config.agents[spec.agent % config.agents.length]!;
  const clientId = agent?.clientId ?? 'unknown-agent';
  const audiences = agent?.audiences ?? [];
  const audience = spec.audience <= 6 && audiences.length > 0
    ? audiences[spec.audience % audiences.length]
    : spec.audience === 7 ? undefined : spec.audience === 8 ? resourceId(spec.scopeBits % 3) : 'https://other.test';
  const offered = config.resources.find((r) => r.id === (audience ?? audiences[0]))?.scopes ?? [];
  const held = new Set(referenceRoles(config, identity).roles.flatMap((r) => config.roles[r]!.scopes));
  // Sometimes anything; mostly what the agent and resource could grant, often also what the
  // person holds (a well-behaved client), so that grants happen as often as refusals.
  const scopes = spec.scopeMode === 0
    ? undefined
    : spec.scopeMode === 1
      ? pickMask([...ALPHABET, 'zz'], spec.scopeBits)
      : spec.scopeMode === 2
        ? pickMask(offered.filter((s) => agent?.scopes.includes(s)), spec.scopeBits)
        : pickMask(offered.filter((s) => agent?.scopes.includes(s) && held.has(s)), spec.scopeBits);
  const req: DecisionRequest = { identity, agent: clientId, now: NOW, dpop: spec.dpop };
  if (audience !== undefined) req.audience = audience;
  if (scopes !== undefined && scopes.length > 0) req.scopes = scopes;
  if (spec.session !== undefined) req.sessionExpiresAt = NOW + spec.session;
  if (spec.redelegate) {
    const { parent, earlier, scopeBits, superset, expiresIn } = spec.redelegate;
    const delegators = config.agents.filter((a) => a.delegateTo.includes(clientId));
    const parentId = parent < 7 && delegators.length > 0
      ? delegators[parent % delegators.length]!.clientId
      : parent === 9 ? 'unknown-parent' : config.agents[parent % config.agents.length]!.clientId;
    req.subjectToken = {
      actors: [parentId, ...earlier.map((i) => agentId(i % config.agents.length))],
      scopes: uniq([...(superset ? req.scopes ?? ALPHABET : []), ...pickMask(ALPHABET, scopeBits)]),
      expiresAt: NOW + expiresIn,
    };
  } else if (spec.userToken !== undefined) {
    req.subjectToken = { actors: [], scopes: [], expiresAt: NOW + spec.userToken };
  }
  return req;
}

// --- reference model of roles (README "Roles and agents"; fail closed) --------------------------
function referenceRoles(config: Config, p: FederatedIdentity): { roles: string[]; denied: string[] } {
  const granted = new Set<string>();
  const denied = new Set<string>();
  for (const m of config.roleMappings) {
    if (m.idp && m.idp !== p.idp) continue;
    const ref = m.when ? CONDITIONS.find((c) => c.source === m.when!.source)!.ref(p) : true;
    const matcher = Boolean(m.group || m.groupName);
    const member = ownGroups(p).some((g) => (m.group ? g.id === m.group : g.name === m.groupName));
    if (matcher && !p.groupsComplete) {
      // Group grants never apply; the denial applies unless membership is known and the condition false.
      if (!member || ref !== false) m.deny.forEach((r) => denied.add(r));
      continue;
    }
    if (matcher && !member) continue;
    if (ref === true) m.roles.forEach((r) => granted.add(r));
    if (ref !== false) m.deny.forEach((r) => denied.add(r));
  }
  return { roles: [...granted].filter((r) => !denied.has(r)).sort(), denied: [...denied].sort() };
}

function stepUpSatisfied(config: Config, p: FederatedIdentity, scopes: string[]): boolean {
  return config.stepUp.every((rule) => !rule.scopes.some((s) => scopes.includes(s)) || (
    (!rule.acr || (p.acr !== undefined && rule.acr.includes(p.acr)))
    && (rule.amr ?? []).every((m) => p.amr.includes(m))
    && (rule.maxAge === undefined || NOW - p.authTime <= rule.maxAge)));
}

const expectSubset = (items: readonly string[], of: readonly string[], what: string) => {
  const outside = items.filter((s) => !of.includes(s));
  expect(outside, `not in ${what}`).toEqual([]);
};

const seen = { grant: 0, step_up: 0, deny: 0, invalidScope: 0, redelegatedGrant: 0, defaultGrant: 0, skipped: 0, withRoles: 0, withoutRoles: 0 };

function checkDecision(config: Config, req: DecisionRequest, decision: Decision): void {
  const agent = config.agents.find((a) => a.clientId === req.agent);
  const parentActors = req.subjectToken?.actors ?? [];
  const audience = decision.outcome === 'grant' ? decision.audience : decision.trace.audience?.id;
  const requested = req.scopes ?? (audience === undefined ? [] : agent?.defaultScopes[audience] ?? []);

  if (decision.outcome === 'deny') {
    seen.deny += 1;
    if (decision.error === 'invalid_scope' && requested.length > 0) {
      seen.invalidScope += 1;
      expect(requested.some((s) => decision.description.includes(`"${s}"`)), decision.description).toBe(true);
      expectSubset(decision.trace.scopes!.excluded.map((e) => e.scope), requested, 'the requested scopes');
    }
    return;
  }

  // A grant, or a grant waiting for a stronger sign-in: the same set bounds both.
  const scopes = decision.outcome === 'grant' ? decision.scopes : decision.trace.scopes!.granted;
  expect(agent).toBeDefined();
  expect(agent!.disabled).toBe(false);
  expect(audience).toBeDefined();
  if (req.audience !== undefined) expect(audience).toBe(req.audience);
  expect(agent!.audiences).toContain(audience);
  const resource = config.resources.find((r) => r.id === audience)!;
  const roles = referenceRoles(config, req.identity).roles;
  const roleScopes = roles.flatMap((r) => config.roles[r]!.scopes);

  expect(scopes.length).toBeGreaterThan(0);
  expectSubset(scopes, requested, 'the requested (or default) scopes');
  expectSubset(scopes, roleScopes, "the person's role scopes");
  expectSubset(scopes, agent!.scopes, "the agent's ceiling");
  expectSubset(scopes, resource.scopes, "the resource's scopes");
  if (parentActors.length > 0) {
    expectSubset(scopes, req.subjectToken!.scopes, "the parent token's scopes");
    const parent = config.agents.find((a) => a.clientId === parentActors[0]);
    expect(parent?.delegateTo).toContain(req.agent);
    const chain = [req.agent, ...parentActors];
    const depths = [config.policy.maxDelegationDepth, ...chain.map((id) => config.agents.find((a) => a.clientId === id)?.maxDelegationDepth ?? Infinity)];
    expect(chain.length).toBeLessThanOrEqual(Math.min(...depths));
  }
  if (agent!.actsFor) expect(agent!.actsFor.some((r) => roles.includes(r))).toBe(true);
  if (agent!.requireDpop) expect(req.dpop).toBe(true);

  if (decision.outcome === 'step_up') {
    seen.step_up += 1;
    expect(stepUpSatisfied(config, req.identity, scopes)).toBe(false);
    return;
  }
  seen.grant += 1;
  if (parentActors.length > 0) seen.redelegatedGrant += 1;
  if (req.scopes === undefined) seen.defaultGrant += 1;
  expect(decision.roles).toEqual(roles);
  expect(decision.actors).toEqual([req.agent, ...parentActors]);
  expect(stepUpSatisfied(config, req.identity, scopes)).toBe(true);
  const limits = [agent!.maxTokenTtl, resource.tokenTtl];
  if (req.sessionExpiresAt !== undefined) limits.push(req.sessionExpiresAt - NOW);
  if (req.subjectToken) limits.push(req.subjectToken.expiresAt - NOW);
  for (const limit of limits) expect(decision.ttl).toBeLessThanOrEqual(limit);
  expect(decision.ttl).toBe(Math.floor(Math.min(...limits)));
}

const summary = (d: Decision) => (d.outcome === 'grant'
  ? [d.outcome, d.scopes, d.audience, d.ttl, d.roles, d.actors]
  : [d.outcome, d.error, d.description, d.outcome === 'step_up' ? [d.acrValues, d.maxAge] : []]);

describe('policy properties', () => {
  it('never grants outside requested ∩ roles ∩ agent ∩ resource (∩ parent token), within every ttl limit', () => {
    fc.assert(
      fc.property(
        configSpec,
        fc.array(fc.tuple(identitySpec, fc.array(requestSpec, { minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 3 }),
        (spec, people) => {
          const config = buildConfig(spec);
          if (!config) {
            seen.skipped += 1;
            return;
          }
          const policy = createPolicy(config);
          for (const [identitySpecValue, requests] of people) {
            const identity = buildIdentity(identitySpecValue);
            const reference = referenceRoles(config, identity);
            const resolved = policy.resolveRoles(identity);
            seen[resolved.roles.length > 0 ? 'withRoles' : 'withoutRoles'] += 1;
            expect(resolved.roles).toEqual(reference.roles);
            expect(resolved.trace.denied).toEqual(reference.denied);
            expect(policy.resolveRoles(identity, true).roles).toEqual(reference.roles);
            for (const requestSpecValue of requests) {
              const req = buildRequest(config, identity, requestSpecValue);
              const decision = policy.decide(req);
              checkDecision(config, req, decision);
              expect(summary(policy.decide({ ...req, explainAll: true }))).toEqual(summary(decision));
            }
          }
        },
      ),
      { numRuns: 1000, seed: 20_240_601 },
    );
    // The property must have been exercised, not vacuously true.
    expect(seen.skipped).toBeLessThan(100);
    expect(seen.withRoles).toBeGreaterThan(500);
    expect(seen.withoutRoles).toBeGreaterThan(100);
    expect(seen.grant).toBeGreaterThan(150);
    expect(seen.redelegatedGrant).toBeGreaterThan(20);
    expect(seen.defaultGrant).toBeGreaterThan(20);
    expect(seen.step_up).toBeGreaterThan(50);
    expect(seen.invalidScope).toBeGreaterThan(150);
  });
});
