// Attacks on the policy: every way an agent or a crafted identity might get more than
// requested ∩ roles ∩ agent ceiling ∩ resource (∩ parent token), or get it for another audience.
// Each case asserts the exact refusal, so a weaker refusal (or a silent trim) fails the test.
import { describe, expect, it } from 'vitest';

import { validateConfig } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createPolicy } from './index.ts';
import type { Decision, DecisionRequest } from './index.ts';

const NOW = 1_700_000_000;
const ERP = 'https://erp.example.test';
const CRM = 'https://crm.example.test';
const auth = { method: 'client_secret_basic', secret: 'security-test-secret-0123456789abcdef' };

const config = validateConfig({
  mode: 'development',
  issuer: 'http://localhost:8080',
  store: { driver: 'memory' },
  keys: { generate: true },
  resources: [
    { id: ERP, scopes: ['erp:read', 'erp:write', 'erp:admin'] },
    { id: CRM, scopes: ['crm:read', 'crm:write'] },
  ],
  roles: {
    reader: { scopes: ['erp:read', 'crm:read'] },
    writer: { scopes: ['erp:write', 'crm:write'] },
    admin: { scopes: ['erp:admin'] },
    tenant: { scopes: ['crm:read'] },
  },
  roleMappings: [
    /* 0 */ { idp: 'entra', group: 'g-readers', roles: ['reader'] },
    /* 1 */ { idp: 'entra', groupName: 'Writers', roles: ['writer'] },
    /* 2 */ { idp: 'entra', group: 'g-admins', roles: ['admin'] },
    /* 3 */ { idp: 'entra', when: '"g-admins-cel" in groups', roles: ['admin'] },
    /* 4 */ { idp: 'entra', when: '!("g-contractors" in groups)', roles: ['writer'] },
    /* 5 */ { when: '"Admins" in group_names', roles: ['admin'] },
    /* 6 */ { idp: 'entra', when: 'attributes.tid == "t1"', roles: ['tenant'] },
    /* 7 */ { idp: 'entra', when: 'attributes.level > 3', roles: ['admin'] },
    /* 8 */ { idp: 'entra', when: 'attributes.tags[3] == "root"', roles: ['admin'] },
    /* 9 */ { idp: 'entra', when: '"g-banned" in groups', deny: ['reader', 'writer', 'admin', 'tenant'] },
  ],
  agents: [
    { clientId: 'reader-bot', auth, scopes: ['erp:read', 'crm:read'], audiences: [ERP, CRM], delegateTo: ['wide-bot'] },
    { clientId: 'wide-bot', auth, scopes: ['erp:read', 'erp:write', 'erp:admin', 'crm:read', 'crm:write'], audiences: [ERP, CRM], defaultScopes: { [ERP]: ['erp:read', 'erp:write'] }, delegateTo: ['reader-bot'] },
    { clientId: 'ping', auth, scopes: ['erp:read'], audiences: [ERP], delegateTo: ['pong'] },
    { clientId: 'pong', auth, scopes: ['erp:read'], audiences: [ERP], delegateTo: ['ping'] },
    { clientId: 'off', auth, scopes: ['erp:read'], audiences: [ERP], disabled: true, delegateTo: ['reader-bot'] },
  ],
  policy: { maxDelegationDepth: 4 },
});
const policy = createPolicy(config);

function person(overrides: Partial<FederatedIdentity> = {}): FederatedIdentity {
  return {
    idp: 'entra', subject: 'mallory', groups: [{ idp: 'entra', id: 'g-readers' }, { idp: 'entra', id: 'g-contractors' }],
    groupsComplete: true, amr: ['pwd'], authTime: NOW - 10, attributes: {}, ...overrides,
  };
}

function decide(overrides: Partial<DecisionRequest>): Decision {
  return policy.decide({ identity: person(), agent: 'wide-bot', audience: ERP, scopes: ['erp:read'], now: NOW, sessionExpiresAt: NOW + 3600, ...overrides });
}

function refusal(decision: Decision): { outcome: string; error?: string; description?: string } {
  return decision.outcome === 'grant'
    ? { outcome: 'grant' }
    : { outcome: decision.outcome, error: decision.error, description: decision.description };
}

describe('scope escalation', () => {
  it.each<{ name: string; req: Partial<DecisionRequest>; description: string }>([
    {
      name: "beyond the agent's ceiling, though the person holds the scope",
      req: { agent: 'reader-bot', identity: person({ groups: [{ idp: 'entra', id: 'g-readers' }, { idp: 'entra', id: 'w', name: 'Writers' }] }), scopes: ['erp:read', 'erp:write'] },
      description: 'scope "erp:write" is outside the scopes registered for agent "reader-bot"',
    },
    {
      name: "beyond the person's roles, though the agent may hold the scope",
      req: { scopes: ['erp:read', 'erp:admin'] },
      description: 'scope "erp:admin" is not granted to this person by any role (roles: "reader")',
    },
    {
      name: 'a scope of another resource the person and agent both hold (audience confusion)',
      req: { scopes: ['crm:read'] },
      description: `scope "crm:read" is not offered by resource "${ERP}"`,
    },
    {
      name: 'two scopes smuggled as one token',
      req: { scopes: ['erp:read erp:admin'] },
      description: `scope "erp:read erp:admin" is not offered by resource "${ERP}"`,
    },
    {
      name: 'a scope differing only by case',
      req: { scopes: ['ERP:READ'] },
      description: `scope "ERP:READ" is not offered by resource "${ERP}"`,
    },
    {
      name: 'an object-prototype name as a scope',
      req: { scopes: ['__proto__', 'constructor'] },
      description: `scope "__proto__" is not offered by resource "${ERP}"; scope "constructor" is not offered by resource "${ERP}"`,
    },
  ])('refused, never trimmed: $name', ({ req, description }) => {
    expect(refusal(decide(req))).toEqual({ outcome: 'deny', error: 'invalid_scope', description });
  });
});

describe('audience confusion', () => {
  it.each([
    `${ERP}/`,
    'https://ERP.example.test',
    'HTTPS://erp.example.test',
    `${ERP}/admin`,
    `${ERP}.evil.test`,
    `${ERP}?tenant=other`,
    'https://erp.example.test:443',
    'constructor',
    '',
  ])('"%s" is not the resource "https://erp.example.test"', (audience) => {
    expect(refusal(decide({ audience }))).toEqual({ outcome: 'deny', error: 'invalid_target', description: `unknown resource "${audience}"` });
  });

  it('an agent cannot reach a resource outside its audiences through a default', () => {
    const decision = decide({ agent: 'ping', audience: CRM, scopes: undefined });
    expect(refusal(decision)).toEqual({ outcome: 'deny', error: 'invalid_target', description: `agent "ping" may not request tokens for "${CRM}"` });
  });

  it('the granted audience is exactly the one requested', () => {
    const decision = decide({});
    expect(decision.outcome === 'grant' && decision.audience).toBe(ERP);
  });
});

describe('re-delegation', () => {
  const fromReader = (scopes: string[], actors = ['reader-bot']) => ({ actors, scopes, expiresAt: NOW + 600 });
  const writerPerson = person({ groups: [{ idp: 'entra', id: 'g-readers' }, { idp: 'entra', id: 'w', name: 'Writers' }] });

  it.each<{ name: string; req: Partial<DecisionRequest>; description: string }>([
    {
      name: "a wider delegate cannot widen the parent token's scopes",
      req: { identity: writerPerson, scopes: ['erp:read', 'erp:write'], subjectToken: fromReader(['erp:read']) },
      description: 'scope "erp:write" is not in the subject token (delegation can only narrow)',
    },
    {
      name: "a delegate's default scopes are narrowed, not granted",
      req: { identity: writerPerson, scopes: undefined, subjectToken: fromReader(['erp:read']) },
      description: 'scope "erp:write" is not in the subject token (delegation can only narrow)',
    },
    {
      name: "scopes of the parent token's other audience do not carry over",
      req: { scopes: ['erp:read'], subjectToken: fromReader(['crm:read']) },
      description: 'scope "erp:read" is not in the subject token (delegation can only narrow)',
    },
    {
      name: 'an empty parent token grants nothing',
      req: { subjectToken: fromReader([]) },
      description: 'scope "erp:read" is not in the subject token (delegation can only narrow)',
    },
  ])('$name', ({ req, description }) => {
    expect(refusal(decide(req))).toEqual({ outcome: 'deny', error: 'invalid_scope', description });
  });

  it.each<{ name: string; req: Partial<DecisionRequest>; description: string }>([
    {
      name: 'a chain naming a disabled agent as the delegator',
      req: { agent: 'reader-bot', subjectToken: fromReader(['erp:read'], ['off']) },
      description: 'the delegating agent "off" is disabled',
    },
    {
      name: 'a chain naming an unknown agent as the delegator',
      req: { subjectToken: fromReader(['erp:read'], ['forged-bot']) },
      description: 'the delegating agent "forged-bot" is unknown',
    },
    {
      name: 'a delegator that does not list the requester',
      req: { agent: 'ping', subjectToken: fromReader(['erp:read'], ['wide-bot']) },
      description: 'agent "wide-bot" may not delegate to "ping" (its delegateTo: "reader-bot")',
    },
    {
      name: 'a disabled requester with an otherwise valid chain',
      req: { agent: 'off', subjectToken: fromReader(['erp:read'], ['ping']) },
      description: 'agent "off" is disabled',
    },
  ])('refused: $name', ({ req, description }) => {
    expect(refusal(decide(req))).toEqual({ outcome: 'deny', error: 'unauthorized_client', description });
  });

  it('a ping-pong cycle is stopped by the depth limit, never granted beyond it', () => {
    let actors: string[] = [];
    const outcomes: string[] = [];
    for (let hop = 0; hop < 8; hop++) {
      const agent = hop % 2 === 0 ? 'ping' : 'pong';
      const decision = decide({ agent, subjectToken: { actors, scopes: ['erp:read'], expiresAt: NOW + 600 } });
      outcomes.push(decision.outcome === 'grant' ? `grant:${decision.actors.length}` : `deny:${decision.outcome === 'deny' ? decision.description : ''}`);
      if (decision.outcome !== 'grant') break;
      expect(decision.actors).toEqual([agent, ...actors]);
      actors = decision.actors;
    }
    expect(outcomes).toEqual(['grant:1', 'grant:2', 'grant:3', 'grant:4', 'deny:delegation depth 5 exceeds the maximum of 4']);
  });
});

describe('roles from groups', () => {
  const rolesOf = (overrides: Partial<FederatedIdentity>) => policy.resolveRoles(person({ groups: [], ...overrides })).roles;

  it.each<{ name: string; identity: Partial<FederatedIdentity> }>([
    { name: "a group from another IdP with the mapping's id", identity: { groups: [{ idp: 'okta', id: 'g-admins' }] } },
    { name: "a group from another IdP with the mapping's name", identity: { groups: [{ idp: 'okta', id: 'x', name: 'Writers' }] } },
    { name: 'a group whose name is the configured group id', identity: { groups: [{ idp: 'entra', id: 'spoof', name: 'g-admins' }] } },
    { name: 'a group whose id is the configured group name', identity: { groups: [{ idp: 'entra', id: 'Writers' }] } },
    { name: 'a group id differing only by case', identity: { groups: [{ idp: 'entra', id: 'G-ADMINS' }] } },
    { name: 'a CEL membership test on a group from another IdP', identity: { groups: [{ idp: 'okta', id: 'g-admins-cel', name: 'Admins' }] } },
    { name: 'an identity of another IdP with the same group', identity: { idp: 'okta', groups: [{ idp: 'okta', id: 'g-admins' }] } },
  ])('$name grants nothing', ({ identity }) => {
    // Listed as a contractor, so mapping 4 (writer for non-contractors) stays out of the way.
    const roles = rolesOf({ ...identity, groups: [{ idp: 'entra', id: 'g-contractors' }, ...(identity.groups ?? [])] });
    expect(roles).not.toContain('admin');
    expect(roles).not.toContain('writer');
    expect(roles).toEqual([]);
  });

  it('the genuine groups do grant (the cases above are not vacuous)', () => {
    expect(rolesOf({ groups: [{ idp: 'entra', id: 'g-admins' }, { idp: 'entra', id: 'g-contractors' }] })).toEqual(['admin']);
    expect(rolesOf({ groups: [{ idp: 'entra', id: 'w', name: 'Writers' }, { idp: 'entra', id: 'g-contractors' }] })).toEqual(['writer']);
    expect(rolesOf({ groups: [{ idp: 'entra', id: 'g-admins-cel' }, { idp: 'entra', id: 'g-contractors' }] })).toEqual(['admin']);
    expect(rolesOf({ groups: [{ idp: 'entra', id: 'x', name: 'Admins' }, { idp: 'entra', id: 'g-contractors' }] })).toEqual(['admin']);
    expect(rolesOf({ groups: [] })).toEqual(['writer']); // mapping 4: not a contractor
  });
});

describe('CEL conditions fail closed', () => {
  it.each<{ name: string; attributes: FederatedIdentity['attributes'] }>([
    { name: 'a missing attribute', attributes: {} },
    { name: 'a runtime type error (string compared with int)', attributes: { level: '9' } },
    { name: 'an index out of range', attributes: { tags: ['a', 'b'] } },
    { name: 'indexing a string', attributes: { tags: 'root' } },
  ])('an erroring condition never grants: $name', ({ attributes }) => {
    const { roles, trace } = policy.resolveRoles(person({ groups: [{ idp: 'entra', id: 'g-contractors' }], attributes }));
    expect(roles).toEqual([]);
    for (const index of [6, 7, 8]) {
      expect(trace.mappings.find((m) => m.index === index)).toMatchObject({ matched: false, effect: 'none' });
    }
  });

  it('an erroring deny condition denies', () => {
    const banConfig = validateConfig({
      ...minimalConfig(),
      roleMappings: [
        { idp: 'entra', group: 'g-readers', roles: ['reader'] },
        { idp: 'entra', when: 'attributes.risk != "high"', deny: ['reader'] },
      ],
    });
    const strict = createPolicy(banConfig);
    const withRisk = (risk?: string) => strict.resolveRoles(person({ attributes: risk === undefined ? {} : { risk } }));
    expect(withRisk('high').roles).toEqual(['reader']);
    expect(withRisk('low').roles).toEqual([]);
    const missing = withRisk();
    expect(missing.roles).toEqual([]);
    expect(missing.trace.denied).toEqual(['reader']);
    expect(missing.trace.mappings[1]).toMatchObject({ matched: true, effect: 'deny_only' });
  });
});

describe('incomplete groups never grant through groups', () => {
  const incomplete = (groups: FederatedIdentity['groups'], attributes: FederatedIdentity['attributes'] = {}) =>
    policy.resolveRoles(person({ groupsComplete: false, groups, attributes }));

  it('group id and group name mappings do not grant, though the group is listed', () => {
    expect(incomplete([{ idp: 'entra', id: 'g-admins' }, { idp: 'entra', id: 'w', name: 'Writers' }, { idp: 'entra', id: 'g-contractors' }]).roles).toEqual([]);
  });

  it('a CEL membership test does not grant, though the group is listed', () => {
    const { roles, trace } = incomplete([{ idp: 'entra', id: 'g-admins-cel', name: 'Admins' }, { idp: 'entra', id: 'g-contractors' }]);
    expect(roles).toEqual([]);
    expect(trace.mappings.find((m) => m.index === 3)).toEqual({
      index: 3, roles: ['admin'], deny: [], matched: false, effect: 'none',
      reason: 'identity is from idp "entra"; condition failed to evaluate (it reads groups, which are incomplete): no grant',
    });
    expect(trace.mappings.find((m) => m.index === 5)).toMatchObject({ matched: false, effect: 'none' });
  });

  it('a negated CEL membership test does not grant when the group may be missing from the list', () => {
    // Mapping 4 grants "writer" to non-contractors; with a truncated list, "not listed" proves nothing.
    expect(policy.resolveRoles(person({ groups: [] })).roles).toEqual(['writer']);
    expect(incomplete([]).roles).toEqual([]);
  });

  it('a CEL denial that reads groups applies', () => {
    const { trace } = incomplete([], { tid: 't1' });
    expect(trace.mappings.find((m) => m.index === 9)).toMatchObject({ matched: true, effect: 'deny_only' });
    expect(trace.denied).toEqual(['admin', 'reader', 'tenant', 'writer']);
    // …which here also removes the attribute-based "tenant" role (fail closed).
    expect(trace.granted).toEqual([]);
  });

  it('an attribute-only condition still grants', () => {
    const strict = createPolicy(validateConfig({
      ...minimalConfig(),
      roleMappings: [{ idp: 'entra', when: 'attributes.tid == "t1" || "g-x" in groups', roles: ['tenant'] }],
    }));
    expect(strict.resolveRoles(person({ groupsComplete: false, attributes: { tid: 't1' } })).roles).toEqual(['tenant']);
    // The same condition, undecided without the groups, grants nothing.
    expect(strict.resolveRoles(person({ groupsComplete: false, attributes: { tid: 't2' } })).roles).toEqual([]);
  });

  it('no decision is granted on group-derived roles', () => {
    const decision = decide({ identity: person({ groupsComplete: false, groups: [{ idp: 'entra', id: 'g-readers' }] }) });
    expect(refusal(decision)).toEqual({
      outcome: 'deny', error: 'invalid_target', description: `no role of this person grants any scope of "${ERP}" (roles: none)`,
    });
  });
});

/** The raw input of a minimal valid config with this file's resources, roles and agents. */
function minimalConfig(): Record<string, unknown> {
  return {
    mode: 'development',
    issuer: 'http://localhost:8080',
    store: { driver: 'memory' },
    keys: { generate: true },
    resources: [{ id: ERP, scopes: ['erp:read', 'erp:write', 'erp:admin'] }, { id: CRM, scopes: ['crm:read', 'crm:write'] }],
    roles: { reader: { scopes: ['erp:read', 'crm:read'] }, tenant: { scopes: ['crm:read'] } },
  };
}
