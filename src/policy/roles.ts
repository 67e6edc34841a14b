// IdP groups (and other identity attributes) → gateway roles, through config `roleMappings`.
// Mappings are indexed once by (idp, group id) and (idp, group name) so a decision looks only at
// the few mappings the person's groups can match, not all of them. Fail closed: when the IdP's
// group list is incomplete, group-based grants do not apply, and group-based denials of that IdP
// do (the person may be in the group); a CEL condition that fails to evaluate never grants and
// always denies.
import type { CelBindings } from './cel-bindings.ts';
import { GROUPS_UNBOUND, celBindings } from './cel-bindings.ts';
import type { CompiledCondition, ConditionResult, Config } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import type { MappingTrace, RolesTrace } from './types.ts';

/**
 * A mapping as the resolver reads it: every field present (one object shape, so reading them
 * stays cheap across 1,000s of mappings), roles and denials also as positions in `roleNames`.
 */
interface Rule {
  idp: string | undefined;
  group: string | undefined;
  groupName: string | undefined;
  when: CompiledCondition | undefined;
  description: string | undefined;
  roles: string[];
  deny: string[];
  grants: number[];
  denies: number[];
}

export interface RoleIndex {
  /** config.roleMappings, in order (a mapping's index is its position in the config). */
  rules: readonly Rule[];
  /** Every role name, sorted; rules refer to roles by position in this list. */
  roleNames: readonly string[];
  /** idp → group id → mappings (nested, so a lookup hashes the IdP's own strings, no key built). */
  byGroupId: Map<string, Map<string, number[]>>;
  byGroupName: Map<string, Map<string, number[]>>;
  /** Mappings with an idp and no group matcher (idp-wide, maybe with a condition). */
  byIdp: Map<string, number[]>;
  /** Group-based deny mappings per idp: they apply when groups are incomplete. */
  groupDeniesByIdp: Map<string, number[]>;
  /** Mappings with no idp at all (conditions over attributes). */
  global: number[];
  /** Reused per resolution (marks are stamped, never cleared): allocating them cost more than deciding. */
  scratch: Scratch;
}

interface Scratch {
  stamp: number;
  /** Per rule: considered / matched through one of the person's groups; per role: granted / denied. */
  seen: Int32Array;
  member: Int32Array;
  granted: Int32Array;
  denied: Int32Array;
}

/** A fresh stamp; marks from earlier resolutions never equal it. Resolution is synchronous. */
function nextStamp(scratch: Scratch): number {
  if (scratch.stamp === 0x7fffffff) {
    for (const marks of [scratch.seen, scratch.member, scratch.granted, scratch.denied]) marks.fill(0);
    scratch.stamp = 0;
  }
  return ++scratch.stamp;
}

function push(map: Map<string, number[]>, k: string, index: number): void {
  const list = map.get(k);
  if (list) list.push(index);
  else map.set(k, [index]);
}

function pushNested(map: Map<string, Map<string, number[]>>, idp: string, value: string, index: number): void {
  let inner = map.get(idp);
  if (!inner) map.set(idp, (inner = new Map()));
  push(inner, value, index);
}

export function indexRoleMappings(config: Config): RoleIndex {
  const roleNames = [...new Set([
    ...Object.keys(config.roles),
    ...config.roleMappings.flatMap((m) => [...m.roles, ...m.deny]),
  ])].sort();
  const position = new Map(roleNames.map((name, i) => [name, i]));
  const positions = (names: string[]) => names.map((name) => position.get(name)!);
  const index: RoleIndex = {
    rules: config.roleMappings.map((m) => ({
      idp: m.idp || undefined,
      group: m.group || undefined,
      groupName: m.groupName || undefined,
      when: m.when,
      description: m.description || undefined,
      roles: m.roles,
      deny: m.deny,
      grants: positions(m.roles),
      denies: positions(m.deny),
    })),
    roleNames,
    byGroupId: new Map(),
    byGroupName: new Map(),
    byIdp: new Map(),
    groupDeniesByIdp: new Map(),
    global: [],
    scratch: {
      stamp: 0,
      seen: new Int32Array(config.roleMappings.length),
      member: new Int32Array(config.roleMappings.length),
      granted: new Int32Array(roleNames.length),
      denied: new Int32Array(roleNames.length),
    },
  };
  index.rules.forEach((m, i) => {
    if (m.idp && m.group) pushNested(index.byGroupId, m.idp, m.group, i);
    else if (m.idp && m.groupName) pushNested(index.byGroupName, m.idp, m.groupName, i);
    else if (m.idp) push(index.byIdp, m.idp, i);
    else index.global.push(i);
    if (m.idp && (m.group || m.groupName) && m.deny.length > 0) push(index.groupDeniesByIdp, m.idp, i);
  });
  return index;
}

/** What a mapping contributes: nothing, only its denials (fail closed), or everything. */
type Effect = 'none' | 'deny_only' | 'full';

interface Evaluation {
  effect: Effect;
  reason: string;
}

/** What one resolution knows about the person, computed once for all mappings. */
interface Subject {
  identity: FederatedIdentity;
  /**
   * Per rule, 1 when one of the person's groups from their own IdP matches its group id or
   * name (found through the index; mappings match groups only within their own IdP).
   */
  member: Int32Array;
  stamp: number;
  /** A condition's result; the same expression over the same person is evaluated once. */
  condition: (when: CompiledCondition) => ConditionResult;
}

function evaluateMapping(m: Rule, i: number, subject: Subject): Evaluation {
  const { identity } = subject;
  const denies = m.deny.length > 0;
  if (m.idp && m.idp !== identity.idp) {
    return { effect: 'none', reason: `identity is from idp "${identity.idp}", mapping is for "${m.idp}"` };
  }
  let effect: Effect = 'full';
  let reason = m.idp ? `identity is from idp "${m.idp}"` : 'applies to every identity';
  if (m.group || m.groupName) {
    const wanted = m.group ? `group id "${m.group}"` : `group name "${m.groupName}"`;
    const member = subject.member[i] === subject.stamp;
    if (identity.groupsComplete) {
      if (!member) return { effect: 'none', reason: `not a member of ${wanted}` };
      reason = `member of ${wanted}`;
    } else if (!denies) {
      return { effect: 'none', reason: `groups are incomplete (IdP overage or truncated list): group-based grants do not apply` };
    } else {
      effect = 'deny_only';
      reason = member
        ? `member of ${wanted}, but groups are incomplete: only its denial applies`
        : `groups are incomplete, so membership of ${wanted} cannot be ruled out: its denial applies (fail closed)`;
      // Unknown membership: the condition cannot make the denial safer to skip.
      if (!member) return { effect, reason };
    }
  }
  if (m.when) {
    const result = subject.condition(m.when);
    if (!result.ok) {
      const why = !identity.groupsComplete && GROUPS_UNBOUND.test(result.error)
        ? 'it reads groups, which are incomplete'
        : result.error;
      return denies
        ? { effect: 'deny_only', reason: `${reason}; condition failed to evaluate (${why}): only its denial applies (fail closed)` }
        : { effect: 'none', reason: `${reason}; condition failed to evaluate (${why}): no grant` };
    }
    if (!result.value) return { effect: 'none', reason: `${reason}; condition is false: ${m.when.source}` };
    reason = `${reason}; condition is true: ${m.when.source}`;
  }
  return { effect, reason };
}

/** Insertion sort: for the few dozen candidates it beats Array#sort calling a comparator. */
function sortAscending(list: number[]): number[] {
  for (let i = 1; i < list.length; i++) {
    const value = list[i]!;
    let j = i - 1;
    for (; j >= 0 && list[j]! > value; j--) list[j + 1] = list[j]!;
    list[j + 1] = value;
  }
  return list;
}

export interface ResolvedRoles {
  roles: string[];
  trace: RolesTrace;
}

export function resolveRoles(index: RoleIndex, identity: FederatedIdentity, explainAll = false): ResolvedRoles {
  const { rules, roleNames } = index;
  // Candidates: mappings something about the person could match (all of them to explain).
  const { scratch } = index;
  const stamp = nextStamp(scratch);
  const { member, seen, granted, denied } = scratch;
  const found: number[] = [];
  const add = (list: readonly number[] | undefined, groupMatch: boolean) => {
    if (!list) return;
    for (const i of list) {
      if (groupMatch) member[i] = stamp;
      if (seen[i] !== stamp) { seen[i] = stamp; found.push(i); }
    }
  };
  const byId = index.byGroupId.get(identity.idp);
  const byName = index.byGroupName.get(identity.idp);
  for (const g of identity.groups) {
    if (g.idp !== identity.idp) continue; // a group from another IdP never matches
    add(byId?.get(g.id), true);
    if (g.name !== undefined) add(byName?.get(g.name), true);
  }
  add(index.global, false);
  add(index.byIdp.get(identity.idp), false);
  if (!identity.groupsComplete) add(index.groupDeniesByIdp.get(identity.idp), false);
  const candidates: ArrayLike<number> = explainAll
    ? rules.map((_m, i) => i)
    : sortAscending(found); // the trace lists mappings in config order

  let bindings: CelBindings | undefined;
  const results = new Map<string, ConditionResult>();
  const subject: Subject = {
    identity,
    member,
    stamp,
    condition: (when) => {
      let result = results.get(when.source);
      if (!result) results.set(when.source, (result = when.evaluate(bindings ??= celBindings(identity))));
      return result;
    },
  };

  const mappings: MappingTrace[] = [];
  // A condition that fails to evaluate is an ordinary outcome here (a missing attribute), and
  // @bufbuild/cel reports it as an Error: capturing its stack trace would cost more than the
  // whole evaluation. The loop is synchronous, so the global is restored before anything else runs.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    for (let c = 0; c < candidates.length; c++) {
      const i = candidates[c]!;
      const m = rules[i]!;
      const { effect, reason } = evaluateMapping(m, i, subject);
      const matched = effect !== 'none';
      mappings.push(m.description
        ? { index: i, description: m.description, roles: m.roles, deny: m.deny, matched, effect, reason }
        : { index: i, roles: m.roles, deny: m.deny, matched, effect, reason });
      if (effect === 'full') for (const r of m.grants) granted[r] = stamp;
      if (effect !== 'none') for (const r of m.denies) denied[r] = stamp;
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }

  // Positions follow sorted name order, so both lists come out sorted.
  const roles: string[] = [];
  const deniedRoles: string[] = [];
  for (let r = 0; r < roleNames.length; r++) {
    if (denied[r] === stamp) deniedRoles.push(roleNames[r]!);
    else if (granted[r] === stamp) roles.push(roleNames[r]!);
  }
  return {
    roles,
    trace: {
      source: 'mappings',
      groupsComplete: identity.groupsComplete,
      mappings,
      notConsidered: rules.length - candidates.length,
      granted: roles,
      denied: deniedRoles,
    },
  };
}
