// CEL conditions in config (`roleMappings[].when`), compiled once at config load (@bufbuild/cel).
// Expressions see the signed-in person as typed variables:
//   idp, subject, email, email_verified, name, groups (ids), group_names, amr, acr,
//   auth_time (int, epoch seconds), attributes (map: tenant id, hosted domain, …)
// A syntax error, an unknown variable or function, a type mismatch, or a non-boolean result is a
// config error; a runtime error (e.g. a missing attribute key) makes the condition fail, and the
// policy decides what failing means (grants do not apply, denials do: fail closed).
import { CelScalar, celEnv, isCelError, listType, mapType, parse, plan } from '@bufbuild/cel';
import type { CelInput, CelType } from '@bufbuild/cel';

export type CelVariable =
  | 'idp' | 'subject' | 'email' | 'email_verified' | 'name' | 'groups' | 'group_names'
  | 'amr' | 'acr' | 'auth_time' | 'attributes';

export const CEL_VARIABLES: Readonly<Record<CelVariable, CelType>> = {
  idp: CelScalar.STRING,
  subject: CelScalar.STRING,
  email: CelScalar.STRING,
  email_verified: CelScalar.BOOL,
  name: CelScalar.STRING,
  groups: listType(CelScalar.STRING),
  group_names: listType(CelScalar.STRING),
  amr: listType(CelScalar.STRING),
  acr: CelScalar.STRING,
  auth_time: CelScalar.INT,
  attributes: mapType(CelScalar.STRING, CelScalar.DYN),
};

export type CelBindings = Record<CelVariable, CelInput>;

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };

export interface CompiledCondition {
  readonly source: string;
  evaluate(bindings: CelBindings): ConditionResult;
}

const env = celEnv({ variables: CEL_VARIABLES });

// A probe identity with every variable bound: evaluation errors that depend on the expression
// alone (not on the data) show up here, at config load.
const PROBE: CelBindings = {
  idp: 'probe', subject: 'probe', email: 'probe@example.test', email_verified: true, name: 'Probe',
  groups: ['g'], group_names: ['G'], amr: ['pwd'], acr: 'probe', auth_time: 0n, attributes: new Map<string, CelInput>(),
};
const STATIC_ERRORS = /unresolved attribute|no matching overload|unbound function|undeclared/i;

/** Compiles a condition, or returns why it cannot be used. */
export function compileCondition(source: string): CompiledCondition | { error: string } {
  let run: (bindings: CelBindings) => unknown;
  try {
    run = plan(env, parse(source)) as unknown as (bindings: CelBindings) => unknown;
  } catch (error) {
    return { error: `invalid CEL expression: ${(error as Error).message.split('\n')[0]}` };
  }
  const evaluate = (bindings: CelBindings): ConditionResult => {
    let value: unknown;
    try {
      value = run(bindings);
    } catch (error) {
      return { ok: false, error: (error as Error).message };
    }
    if (isCelError(value)) return { ok: false, error: value.message };
    if (typeof value !== 'boolean') return { ok: false, error: `evaluated to ${typeof value}, not a boolean` };
    return { ok: true, value };
  };
  const probe = evaluate(PROBE);
  if (!probe.ok && (STATIC_ERRORS.test(probe.error) || probe.error.startsWith('evaluated to'))) {
    return { error: `invalid CEL expression: ${probe.error} (variables: ${Object.keys(CEL_VARIABLES).join(', ')})` };
  }
  return { source, evaluate };
}
