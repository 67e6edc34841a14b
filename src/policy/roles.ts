// IdP groups (and other identity attributes) → gateway roles, through config `roleMappings`.
// Mappings are indexed once by (idp, group id) and (idp, group name) so a decision looks only at
// the few mappings the person's groups can match, not all of them. Fail closed: when the IdP's
// group list is incomplete, group-based grants do not apply, and group-based denials of that IdP
// do (the person may be in the group); a CEL condition that fails to evaluate never grants and
// always denies.
import type { CelBindings } from './cel-bindings.ts';
import { GROUPS_UNBOUND, celBindings } from './cel-bindings.ts';
import type { Config, RoleMappingConfig } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import type { MappingTrace, RolesTrace } from './types.ts';

export interface RoleIndex {
  mappings: readonly RoleMappingConfig[];
  byGroupId: Map<string, number[]>;
  byGroupName: Map<string, number[]>;
  /** Mappings with an idp and no group matcher (idp-wide, maybe with a condition). */
  byIdp: Map<string, number[]>;
  /** Group-based deny mappings per idp: they apply when groups are incomplete. */
  groupDeniesByIdp: Map<string, number[]>;
  /** Mappings with no idp at all (conditions over attributes). */
  global: number[];
}

const key = (idp: string, value: string) => `${idp}\u0000${value}`;

function push(map: Map<string, number[]>, k: string, index: number): void {
  const list = map.get(k);
  if (list) list.push(index);
  else map.set(k, [index]);
}

export function indexRoleMappings(config: Config): RoleIndex {
  const index: RoleIndex = {
    mappings: config.roleMappings,
    byGroupId: new Map(),
    byGroupName: new Map(),
    byIdp: new Map(),
    groupDeniesByIdp: new Map(),
    global: [],
  };
  config.roleMappings.forEach((m, i) => {
    if (m.idp && m.group) push(index.byGroupId, key(m.idp, m.group), i);
    else if (m.idp && m.groupName) push(index.byGroupName, key(m.idp, m.groupName), i);
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

function evaluateMapping(m: RoleMappingConfig, identity: FederatedIdentity, bindings: () => CelBindings): Evaluation {
  const denies = m.deny.length > 0;
  if (m.idp && m.idp !== identity.idp) {
    return { effect: 'none', reason: `identity is from idp "${identity.idp}", mapping is for "${m.idp}"` };
  }
  let effect: Effect = 'full';
  let reason = m.idp ? `identity is from idp "${m.idp}"` : 'applies to every identity';
  if (m.group || m.groupName) {
    const wanted = m.group ? `group id "${m.group}"` : `group name "${m.groupName}"`;
    const member = identity.groups.some((g) => g.idp === m.idp && (m.group ? g.id === m.group : g.name === m.groupName));
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
    const result = m.when.evaluate(bindings());
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

export interface ResolvedRoles {
  roles: string[];
  trace: RolesTrace;
}

export function resolveRoles(index: RoleIndex, identity: FederatedIdentity, explainAll = false): ResolvedRoles {
  let candidates: number[];
  if (explainAll) {
    candidates = index.mappings.map((_m, i) => i);
  } else {
    const set = new Set<number>(index.global);
    for (const i of index.byIdp.get(identity.idp) ?? []) set.add(i);
    for (const g of identity.groups) {
      if (g.idp !== identity.idp) continue;
      for (const i of index.byGroupId.get(key(g.idp, g.id)) ?? []) set.add(i);
      if (g.name !== undefined) for (const i of index.byGroupName.get(key(g.idp, g.name)) ?? []) set.add(i);
    }
    if (!identity.groupsComplete) for (const i of index.groupDeniesByIdp.get(identity.idp) ?? []) set.add(i);
    candidates = [...set].sort((a, b) => a - b);
  }

  let cached: CelBindings | undefined;
  const bindings = () => (cached ??= celBindings(identity));
  const granted = new Set<string>();
  const denied = new Set<string>();
  const mappings: MappingTrace[] = [];
  for (const i of candidates) {
    const m = index.mappings[i]!;
    const { effect, reason } = evaluateMapping(m, identity, bindings);
    mappings.push({
      index: i, ...(m.description ? { description: m.description } : {}),
      roles: m.roles, deny: m.deny, matched: effect !== 'none', effect, reason,
    });
    if (effect === 'full') for (const r of m.roles) granted.add(r);
    if (effect !== 'none') for (const r of m.deny) denied.add(r);
  }
  const roles = [...granted].filter((r) => !denied.has(r)).sort();
  return {
    roles,
    trace: {
      groupsComplete: identity.groupsComplete,
      mappings,
      notConsidered: index.mappings.length - candidates.length,
      granted: roles,
      denied: [...denied].sort(),
    },
  };
}
