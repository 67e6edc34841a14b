// Policy decision benchmark (run on demand: `npx node bench/policy.ts`; not part of `npm test`).
// Builds a large config programmatically — 200 roles, 1,000 role mappings over 3 IdPs (group id,
// group name, idp-wide and attribute-only mappings, some with CEL `when` conditions, some
// denials), 100 agents, 20 resources, step-up rules — and a pool of identities with 10–20 groups
// and of requests mixing grants, refusals, step-ups and re-delegations. Each scenario cycles
// through the whole pool (nothing is decided twice in a row; the policy caches nothing across
// decisions, and 2,000 identities do not stay in CPU cache) on one core for BENCH_SECONDS after a
// warm-up, and reports decisions/s and µs/decision. "decide (no CEL)" runs the same requests
// against the mappings stripped of their conditions, to show what CEL evaluation costs.
import { validateConfig } from '../src/config/index.ts';
import type { FederatedIdentity } from '../src/identity/index.ts';
import { createPolicy } from '../src/policy/index.ts';
import type { DecisionRequest } from '../src/policy/index.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 1);
const TARGET = 100_000;
const NOW = 1_700_000_000;

const ROLES = 200;
const MAPPINGS = 1_000;
const AGENTS = 100;
const RESOURCES = 20;
const SCOPES_PER_RESOURCE = 10;
const IDPS = ['entra', 'okta', 'google'] as const;
const GROUPS_PER_IDP = 300;
const IDENTITIES = 2_000;
const REQUESTS = 20_000;

// Deterministic PRNG (mulberry32) so every run measures the same workload.
let seed = 0x5eed;
function random(): number {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
}
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
const chance = (p: number) => random() < p;
function sample<T>(items: readonly T[], n: number): T[] {
  const copy = [...items];
  const out: T[] = [];
  while (out.length < n && copy.length > 0) out.push(copy.splice(int(copy.length), 1)[0]!);
  return out;
}

// --- config ------------------------------------------------------------------------------------
const resourceId = (i: number) => `https://api${i}.bench.test`;
const scopesOf = (r: number) => Array.from({ length: SCOPES_PER_RESOURCE }, (_, j) => `api${r}:s${j}`);
const groupId = (idp: string, g: number) => `${idp}-g${g}`;
const groupName = (g: number) => `Team ${g}`;

const resources = Array.from({ length: RESOURCES }, (_, i) => ({
  id: resourceId(i), scopes: scopesOf(i), tokenTtl: pick(['5m', '10m', '15m']),
}));

const roles: Record<string, { scopes: string[] }> = {};
for (let i = 0; i < ROLES; i++) {
  const scopes = new Set<string>();
  for (const r of sample([...Array(RESOURCES).keys()], 1 + int(3))) {
    for (const s of sample(scopesOf(r), 2 + int(4))) scopes.add(s);
  }
  roles[`role-${i}`] = { scopes: [...scopes] };
}
const roleNames = Object.keys(roles);

// Conditions as enterprises write them: tenant and department checks (attributes may be absent,
// which makes the condition fail to evaluate: no grant, denial applies), email domains, amr.
const CONDITIONS = [
  ...Array.from({ length: 10 }, (_, k) => `attributes.tid == "tenant-${k}"`),
  ...['finance', 'sales', 'engineering', 'legal'].map((d) => `attributes.department == "${d}"`),
  'email.endsWith("@corp.bench.test") && email_verified',
  '"mfa" in amr',
  'attributes.tid != "tenant-9" && "Team 7" in group_names',
];
const roleMappings: Record<string, unknown>[] = [];
for (let i = 0; i < MAPPINGS; i++) {
  const idp = IDPS[i % IDPS.length]!;
  const kind = random();
  const mapping: Record<string, unknown> = { idp };
  if (kind < 0.985) {
    // Entra and Google mappings mostly name group ids, some display names; Okta ones, names.
    if (idp !== 'okta' && chance(0.8)) mapping.group = groupId(idp, int(GROUPS_PER_IDP));
    else mapping.groupName = groupName(int(GROUPS_PER_IDP));
    if (chance(0.1)) mapping.when = pick(CONDITIONS);
  } else if (kind < 0.995) {
    mapping.when = pick(CONDITIONS); // idp-wide, with a condition
  } else {
    delete mapping.idp; // attribute-only, every IdP
    mapping.when = pick(CONDITIONS);
  }
  if (chance(0.06)) mapping.deny = sample(roleNames, 1);
  else mapping.roles = sample(roleNames, 1 + int(2));
  roleMappings.push(mapping);
}

const agentId = (i: number) => `agent-${i}`;
const agents = Array.from({ length: AGENTS }, (_, i) => {
  const audiences = sample([...Array(RESOURCES).keys()], 1 + int(4));
  const scopes = audiences.flatMap((r) => sample(scopesOf(r), 4 + int(5)));
  const first = audiences[0]!;
  return {
    clientId: agentId(i),
    auth: { method: 'client_secret_basic', secret: `bench-secret-${i}-0123456789abcdefghijklmnop` },
    scopes,
    audiences: audiences.map(resourceId),
    maxTokenTtl: pick(['2m', '10m', '1h']),
    delegateTo: sample([...Array(AGENTS).keys()].filter((j) => j !== i), int(4)).map(agentId),
    requireDpop: chance(0.1),
    ...(chance(0.1) ? { actsFor: sample(roleNames, 3) } : {}),
    defaultScopes: { [resourceId(first)]: scopes.filter((s) => s.startsWith(`api${first}:`)).slice(0, 2) },
  };
});

const stepUp = Array.from({ length: 10 }, (_, i) => ({
  scopes: sample(resources.flatMap((r) => r.scopes), 5),
  ...(i % 3 === 0 ? { acr: ['phrh'] } : i % 3 === 1 ? { amr: ['mfa'] } : { maxAge: '15m' }),
}));

const base = {
  mode: 'development',
  issuer: 'http://localhost:8080',
  store: { driver: 'memory' },
  keys: { generate: true },
  resources,
  agents,
  roles,
  stepUp,
  policy: { maxDelegationDepth: 3 },
};
const config = validateConfig({ ...base, roleMappings });
const policy = createPolicy(config);
// For comparison only: the same mappings without their CEL conditions (attribute-only ones dropped).
const withoutCel = createPolicy(validateConfig({
  ...base,
  roleMappings: roleMappings.filter((m) => m.idp !== undefined).map(({ when: _when, ...m }) => m),
}));

// --- workload ----------------------------------------------------------------------------------
const identities: FederatedIdentity[] = Array.from({ length: IDENTITIES }, (_, i) => {
  const idp = IDPS[i % IDPS.length]!;
  const groups = Array.from({ length: 10 + int(11) }, () => {
    const g = int(GROUPS_PER_IDP);
    // A few groups from another IdP (e.g. a merged directory): they must never match.
    const from = chance(0.05) ? pick(IDPS) : idp;
    return { idp: from, id: groupId(from, g), name: groupName(g) };
  });
  return {
    idp,
    subject: `user-${i}`,
    email: chance(0.7) ? `user${i}@corp.bench.test` : `user${i}@partner.bench.test`,
    emailVerified: chance(0.9),
    groups,
    groupsComplete: chance(0.95),
    amr: chance(0.6) ? ['pwd', 'mfa'] : ['pwd'],
    ...(chance(0.7) ? { acr: pick(['phr', 'phrh']) } : {}),
    authTime: NOW - int(3600),
    attributes: {
      ...(chance(0.8) ? { tid: `tenant-${int(10)}` } : {}),
      ...(chance(0.5) ? { department: pick(['finance', 'sales', 'engineering', 'legal', 'support']) } : {}),
    },
  };
});

/** A request the person's roles can (mostly) satisfy: scopes from agent ∩ resource ∩ roles. */
function plausibleScopes(agent: (typeof agents)[number], audience: string, identity: FederatedIdentity): string[] {
  const roleScopes = new Set(policy.resolveRoles(identity).roles.flatMap((r) => roles[r]!.scopes));
  const fitting = agent.scopes.filter((s) => s.startsWith(`${audience.slice(8, audience.indexOf('.'))}:`) && roleScopes.has(s));
  return sample(fitting, 1 + int(3));
}

const requests: DecisionRequest[] = Array.from({ length: REQUESTS }, () => {
  const identity = pick(identities);
  const a = int(AGENTS);
  const agent = agents[a]!;
  const audience = pick(agent.audiences);
  const kind = random();
  const base = { identity, agent: agent.clientId, now: NOW + int(60), sessionExpiresAt: NOW + 3600 + int(3600), dpop: chance(0.95) };
  if (kind < 0.55) {
    // Likely grant (or step-up when a scope needs a stronger sign-in).
    const scopes = plausibleScopes(agent, audience, identity);
    return { ...base, audience, scopes: scopes.length > 0 ? scopes : agent.scopes.slice(0, 1) };
  }
  if (kind < 0.65) return { ...base, audience: agent.audiences[0]! }; // omitted scope → defaults
  if (kind < 0.8) {
    // Escalation: everything the agent may have, whatever the person holds.
    return { ...base, audience, scopes: agent.scopes.slice(0, 4) };
  }
  if (kind < 0.85) return { ...base, audience: resourceId(int(RESOURCES)), scopes: ['api0:s0'] }; // wrong audience
  // Re-delegation from an agent that may (or may not) hand work to this one.
  const parents = agents.filter((p) => p.delegateTo.includes(agent.clientId));
  const parent = parents.length > 0 && chance(0.8) ? pick(parents).clientId : agentId(int(AGENTS));
  const chain = chance(0.3) ? [parent, agentId(int(AGENTS))] : [parent];
  const scopes = plausibleScopes(agent, audience, identity);
  return {
    ...base,
    audience,
    scopes: scopes.length > 0 ? scopes : agent.scopes.slice(0, 1),
    subjectToken: { scopes: chance(0.7) ? [...scopes] : scopes.slice(1), actors: chain, expiresAt: NOW + 60 + int(600) },
  };
});

// --- measurement -------------------------------------------------------------------------------
interface Result { name: string; count: number; perSecond: number; micros: number }

function measure(name: string, step: (i: number) => number): Result {
  let sink = 0;
  const loop = (seconds: number) => {
    let count = 0;
    const start = performance.now();
    const end = start + seconds * 1000;
    // Check the clock every 1,000 decisions so it does not dominate the loop.
    while (performance.now() < end) {
      for (let k = 0; k < 1000; k++) sink += step(count++);
    }
    return { count, elapsed: (performance.now() - start) / 1000 };
  };
  loop(WARMUP_SECONDS);
  const { count, elapsed } = loop(SECONDS);
  if (sink === -1) console.log('unreachable'); // keeps results observable
  return { name, count, perSecond: count / elapsed, micros: (elapsed * 1e6) / count };
}

const outcomes = { grant: 0, deny: 0, step_up: 0 };
const errors: Record<string, number> = {};
for (const request of requests) {
  const decision = policy.decide(request);
  outcomes[decision.outcome] += 1;
  if (decision.outcome === 'deny') errors[decision.error] = (errors[decision.error] ?? 0) + 1;
}
let mappingsLooked = 0;
let conditions = 0;
let rolesHeld = 0;
for (const person of identities) {
  const { roles: held, trace } = policy.resolveRoles(person);
  mappingsLooked += trace.mappings.length / IDENTITIES;
  rolesHeld += held.length / IDENTITIES;
  // Distinct conditions actually evaluated (the same expression is evaluated once per person).
  conditions += new Set(trace.mappings.filter((m) => / condition /.test(m.reason)).map((m) => config.roleMappings[m.index]!.when!.source)).size / IDENTITIES;
}

// The exchange path: roles were resolved once at sign-in and live in the enterprise session
// (DESIGN.md core flow step 1), so a decision reads them instead of re-running the mappings.
const sessionRoles = new Map(identities.map((person) => [person, policy.resolveRoles(person).roles]));
const exchangeRequests = requests.map((request) => ({ ...request, roles: sessionRoles.get(request.identity)! }));

const results = [
  measure('decide (session roles)', (i) => policy.decide(exchangeRequests[i % REQUESTS]!).trace.stepUp.length + 1),
  measure('decide (mixed)', (i) => policy.decide(requests[i % REQUESTS]!).trace.stepUp.length + 1),
  measure('resolveRoles', (i) => policy.resolveRoles(identities[i % IDENTITIES]!).roles.length),
  measure('decide (explainAll)', (i) => policy.decide({ ...requests[i % REQUESTS]!, explainAll: true }).trace.roles.mappings.length),
  measure('decide (no CEL)', (i) => withoutCel.decide(requests[i % REQUESTS]!).trace.stepUp.length + 1),
];

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
console.log(`policy benchmark: ${ROLES} roles, ${MAPPINGS} role mappings, ${AGENTS} agents, ${RESOURCES} resources, ${config.stepUp.length} step-up rules`);
console.log(`workload: ${fmt(REQUESTS)} requests over ${fmt(IDENTITIES)} identities, 10–20 groups each; per person ~${fmt(mappingsLooked, 1)} mappings`
  + ` evaluated (~${fmt(conditions, 1)} distinct CEL conditions), ~${fmt(rolesHeld, 1)} roles held`);
console.log(`outcomes: ${outcomes.grant} grant, ${outcomes.step_up} step_up, ${outcomes.deny} deny (${Object.entries(errors).map(([e, n]) => `${e} ${n}`).join(', ')})`);
console.log(`one core, ${SECONDS}s per scenario after ${WARMUP_SECONDS}s warm-up, Node ${process.version}\n`);
console.log(`${'scenario'.padEnd(26)}${'ops/s'.padStart(12)}${'µs/op'.padStart(10)}`);
for (const r of results) console.log(`${r.name.padEnd(26)}${fmt(r.perSecond).padStart(12)}${fmt(r.micros, 2).padStart(10)}`);
const exchange = results[0]!.perSecond;
const mixed = results[1]!.perSecond;
console.log(`\ntarget ≥ ${fmt(TARGET)} decisions/s on the exchange path (roles from the session): ${exchange >= TARGET ? 'PASS' : 'FAIL'} (${fmt(exchange)})`);
console.log(`with every mapping re-evaluated in each decision: ${fmt(mixed)}/s (${fmt(mixed / TARGET, 2)}x the target)`);
