// The CEL variables a role-mapping condition sees, built from a normalized identity.
import type { CelBindings } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';

export type { CelBindings };

/** What roles.ts reports when a condition needed the groups an incomplete identity lacks. */
export const GROUPS_UNBOUND = /unresolved attribute/;

export function celBindings(identity: FederatedIdentity): CelBindings {
  const own = identity.groups.filter((g) => g.idp === identity.idp);
  const bindings: Partial<CelBindings> = {
    idp: identity.idp,
    subject: identity.subject,
    email: identity.email ?? '',
    email_verified: identity.emailVerified ?? false,
    name: identity.name ?? '',
    amr: identity.amr,
    acr: identity.acr ?? '',
    auth_time: BigInt(identity.authTime),
    attributes: new Map(Object.entries(identity.attributes)),
  };
  // Fail closed: with a partial group list, `"g" in groups` and `!("g" in groups)` are both
  // unknowable. Leaving the variables unbound makes every condition whose result depends on
  // them fail to evaluate (no grant; a denial applies), while one decided by other variables
  // alone (`attributes.tid == "t1" || "g" in groups`) still evaluates.
  if (identity.groupsComplete) {
    bindings.groups = own.map((g) => g.id);
    bindings.group_names = own.flatMap((g) => (g.name === undefined ? [] : [g.name]));
  }
  // The evaluator accepts missing variables (they become CEL errors); the type says "all bound"
  // because config load probes conditions with every variable bound.
  return bindings as CelBindings;
}
