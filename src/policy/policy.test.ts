// Unit tests of the policy (issue 3): roles from groups and conditions, then the decision for an
// agent's request — granted = requested ∩ roles ∩ agent ceiling ∩ resource (∩ subject token on
// re-delegation), ttl = min of the limits, step-up — with exact outcomes and error descriptions,
// and the explanation trace asserted by structure (no snapshots).
import { describe, expect, it } from 'vitest';

import { validateConfig } from '../config/index.ts';
import type { FederatedIdentity } from '../identity/index.ts';
import { createPolicy } from './index.ts';
import type { Decision, DecisionRequest, Grant } from './index.ts';

const NOW = 1_700_000_000;
const ERP = 'https://erp.example.test';
const CRM = 'https://crm.example.test';
const HR = 'https://hr.example.test';
const SECRET = 'policy-test-secret-0123456789abcdef';

const auth = { method: 'client_secret_basic', secret: SECRET };

function baseConfig(): Record<string, unknown> {
  return {
    mode: 'development',
    issuer: 'http://localhost:8080',
    store: { driver: 'memory' },
    keys: { generate: true },
    resources: [
      { id: ERP, scopes: ['erp:read', 'erp:write', 'erp:approve'], tokenTtl: '5m' },
      { id: CRM, scopes: ['crm:read', 'crm:write'], tokenTtl: '15m' },
      { id: HR, scopes: ['hr:read'], tokenTtl: '5m' },
    ],
    roles: {
      'erp-reader': { scopes: ['erp:read'] },
      'erp-writer': { scopes: ['erp:read', 'erp:write'] },
      'erp-approver': { scopes: ['erp:approve'] },
      'crm-user': { scopes: ['crm:read', 'crm:write'] },
      'hr-viewer': { scopes: ['hr:read'] },
    },
    roleMappings: [
      /* 0 */ { description: 'ERP readers', idp: 'entra', group: 'g-erp-read', roles: ['erp-reader'] },
      /* 1 */ { idp: 'entra', groupName: 'ERP Writers', roles: ['erp-writer'] },
      /* 2 */ { idp: 'okta', group: 'g-crm', roles: ['crm-user'] },
      /* 3 */ { description: 'every Entra user', idp: 'entra', roles: ['hr-viewer'] },
      /* 4 */ { idp: 'entra', when: 'attributes.tid == "t1"', roles: ['crm-user'] },
      /* 5 */ { idp: 'entra', group: 'g-blocked', deny: ['erp-writer'] },
      /* 6 */ { idp: 'entra', when: 'attributes.clearance != "high"', deny: ['erp-approver'] },
      /* 7 */ { idp: 'entra', group: 'g-approvers', roles: ['erp-approver'] },
      /* 8 */ { idp: 'okta', group: 'g-erp-read', roles: ['erp-writer'] },
      /* 9 */ { when: 'email.endsWith("@partner.test")', deny: ['crm-user'] },
    ],
    agents: [
      {
        clientId: 'assistant', auth,
        scopes: ['erp:read', 'erp:write', 'erp:approve', 'crm:read', 'crm:write', 'hr:read'],
        audiences: [ERP, CRM, HR], maxTokenTtl: '10m',
        defaultScopes: { [ERP]: ['erp:read'] },
        delegateTo: ['summarizer', 'mailer'],
      },
      {
        clientId: 'summarizer', auth,
        scopes: ['erp:read', 'erp:write', 'crm:read'], audiences: [ERP, CRM], maxTokenTtl: '2m',
        defaultScopes: { [ERP]: ['erp:read', 'erp:write'] },
        delegateTo: ['mailer', 'assistant'],
      },
      {
        clientId: 'mailer', auth,
        scopes: ['crm:read', 'crm:write'], audiences: [CRM], maxTokenTtl: '1h',
        delegateTo: ['assistant'], maxDelegationDepth: 2,
      },
      { clientId: 'dpop-bot', auth, scopes: ['erp:read'], audiences: [ERP], requireDpop: true },
      { clientId: 'disabled-bot', auth, scopes: ['erp:read'], audiences: [ERP], disabled: true, delegateTo: ['summarizer'] },
      { clientId: 'hr-bot', auth, scopes: ['hr:read'], audiences: [HR], actsFor: ['hr-viewer'] },
      { clientId: 'no-audience', auth },
    ],
    stepUp: [
      /* 0 */ { scopes: ['erp:approve'], acr: ['phr', 'phrh'], maxAge: '15m' },
      /* 1 */ { scopes: ['erp:write'], amr: 'mfa' },
      /* 2 */ { scopes: ['crm:write'], maxAge: '1h' },
    ],
    policy: { maxDelegationDepth: 3 },
  };
}

const policy = createPolicy(validateConfig(baseConfig()));

const group = (id: string, name?: string, idp = 'entra') => ({ idp, id, ...(name === undefined ? {} : { name }) });

/** Alice (Entra): ERP reader and writer by group, CRM user by tenant, HR viewer as an Entra user. */
function alice(overrides: Partial<FederatedIdentity> = {}): FederatedIdentity {
  return {
    idp: 'entra',
    subject: 'alice-oid',
    email: 'alice@corp.test',
    groups: [group('g-erp-read', 'ERP Readers'), group('0f1-writers', 'ERP Writers')],
    groupsComplete: true,
    amr: ['pwd', 'mfa'],
    acr: 'phr',
    authTime: NOW - 60,
    attributes: { tid: 't1', clearance: 'high' },
    ...overrides,
  };
}
const ALICE_ROLES = ['crm-user', 'erp-reader', 'erp-writer', 'hr-viewer'];
const ALICE_ROLE_LIST = '"crm-user", "erp-reader", "erp-writer", "hr-viewer"';

/** Bob (Okta): ERP writer through Okta's g-erp-read; nothing else. */
function bob(overrides: Partial<FederatedIdentity> = {}): FederatedIdentity {
  return {
    idp: 'okta', subject: 'bob-sub', groups: [group('g-erp-read', undefined, 'okta')], groupsComplete: true,
    amr: ['pwd'], authTime: NOW - 60, attributes: {}, ...overrides,
  };
}

function request(overrides: Partial<DecisionRequest> = {}): DecisionRequest {
  return {
    identity: alice(),
    agent: 'assistant',
    audience: ERP,
    scopes: ['erp:read'],
    sessionExpiresAt: NOW + 3600,
    now: NOW,
    ...overrides,
  };
}

/** The decision without its trace, so a row states the whole outcome exactly. */
function outcome(decision: Decision): Record<string, unknown> {
  const { trace: _trace, ...rest } = decision;
  return rest;
}

const grant = (fields: Omit<Grant, 'outcome' | 'trace' | 'requireDpop'> & { requireDpop?: boolean }) =>
  ({ outcome: 'grant', requireDpop: false, ...fields });
const deny = (error: string, description: string) => ({ outcome: 'deny', error, description });

function asGrant(decision: Decision): Grant {
  if (decision.outcome !== 'grant') throw new Error(`expected a grant, got ${decision.outcome}: ${'description' in decision ? decision.description : ''}`);
  return decision;
}

describe('resolveRoles', () => {
  it.each([
    { name: 'group id match', identity: alice({ groups: [group('g-erp-read')], attributes: {} }), roles: ['erp-reader', 'hr-viewer'], denied: ['erp-approver'] },
    { name: 'group name match', identity: alice({ groups: [group('0f1', 'ERP Writers')], attributes: {} }), roles: ['erp-writer', 'hr-viewer'], denied: ['erp-approver'] },
    {
      name: 'a group id equal to a configured groupName does not match the name mapping',
      identity: alice({ groups: [group('ERP Writers')], attributes: {} }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: 'a group name equal to a configured group id does not match the id mapping',
      identity: alice({ groups: [group('0f2', 'g-erp-read')], attributes: {} }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: "a group of another idp with the mapping's id does not match",
      identity: alice({ groups: [group('g-crm', undefined, 'okta')], attributes: {} }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: "a group listed from another idp does not match this idp's mapping with its id",
      identity: alice({ groups: [group('g-erp-read', 'ERP Writers', 'okta')], attributes: {} }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: 'the same group id maps differently per idp',
      identity: bob(), roles: ['erp-writer'], denied: [],
    },
    { name: 'idp-wide mapping applies to every identity of that idp', identity: alice({ groups: [], attributes: { clearance: 'high' } }), roles: ['hr-viewer'], denied: [] },
    { name: 'idp-wide mapping does not apply to another idp', identity: bob({ groups: [] }), roles: [], denied: [] },
    { name: 'CEL grant condition true', identity: alice({ groups: [], attributes: { tid: 't1', clearance: 'high' } }), roles: ['crm-user', 'hr-viewer'], denied: [] },
    { name: 'CEL grant condition false', identity: alice({ groups: [], attributes: { tid: 't2', clearance: 'high' } }), roles: ['hr-viewer'], denied: [] },
    { name: 'CEL grant condition erroring (no tid) does not grant', identity: alice({ groups: [], attributes: { clearance: 'high' } }), roles: ['hr-viewer'], denied: [] },
    {
      name: 'CEL deny condition true removes a role granted by a group',
      identity: alice({ groups: [group('g-approvers')], attributes: { clearance: 'low' } }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: 'CEL deny condition false leaves the role',
      identity: alice({ groups: [group('g-approvers')], attributes: { clearance: 'high' } }), roles: ['erp-approver', 'hr-viewer'], denied: [],
    },
    {
      name: 'CEL deny condition erroring (no clearance) denies',
      identity: alice({ groups: [group('g-approvers')], attributes: {} }), roles: ['hr-viewer'], denied: ['erp-approver'],
    },
    {
      name: 'group deny removes a role granted by another group',
      identity: alice({ groups: [group('w', 'ERP Writers'), group('g-blocked')] }), roles: ['crm-user', 'hr-viewer'], denied: ['erp-writer'],
    },
    {
      name: 'global (idp-less) deny applies to every idp',
      identity: alice({ email: 'eve@partner.test', groups: [] }), roles: ['hr-viewer'], denied: ['crm-user'],
    },
    {
      name: 'incomplete groups: group grants skipped, group denials of the idp apply, attribute grants apply',
      identity: alice({ groupsComplete: false, groups: [group('g-erp-read'), group('g-approvers'), group('w', 'ERP Writers')] }),
      roles: ['crm-user', 'hr-viewer'], denied: ['erp-writer'],
    },
    {
      name: "incomplete groups of another idp do not pull in this idp's group denials",
      identity: bob({ groupsComplete: false }), roles: [], denied: [],
    },
  ])('$name', ({ identity, roles, denied }) => {
    const resolved = policy.resolveRoles(identity);
    expect(resolved.roles).toEqual(roles);
    expect(resolved.trace.granted).toEqual(roles);
    expect(resolved.trace.denied).toEqual(denied);
    expect(resolved.trace.groupsComplete).toBe(identity.groupsComplete);
    // explainAll looks at every mapping but must reach the same roles.
    expect(policy.resolveRoles(identity, true).roles).toEqual(roles);
  });

  it('traces the mappings that could apply, in config order, with effect and reason', () => {
    const resolved = policy.resolveRoles(alice({ groups: [group('g-erp-read', 'ERP Readers')], attributes: { tid: 't2' } }));
    expect(resolved.trace.mappings).toEqual([
      { index: 0, description: 'ERP readers', roles: ['erp-reader'], deny: [], matched: true, effect: 'full', reason: 'member of group id "g-erp-read"' },
      { index: 3, description: 'every Entra user', roles: ['hr-viewer'], deny: [], matched: true, effect: 'full', reason: 'identity is from idp "entra"' },
      { index: 4, roles: ['crm-user'], deny: [], matched: false, effect: 'none', reason: 'identity is from idp "entra"; condition is false: attributes.tid == "t1"' },
      {
        index: 6, roles: [], deny: ['erp-approver'], matched: true, effect: 'deny_only',
        reason: 'identity is from idp "entra"; condition failed to evaluate (field not found: clearance): only its denial applies (fail closed)',
      },
      { index: 9, roles: [], deny: ['crm-user'], matched: false, effect: 'none', reason: 'applies to every identity; condition is false: email.endsWith("@partner.test")' },
    ]);
    expect(resolved.trace.notConsidered).toBe(5);
  });

  it('traces an erroring grant condition as no grant, with the error', () => {
    const { trace } = policy.resolveRoles(alice({ groups: [], attributes: { clearance: 'high' } }));
    expect(trace.mappings.find((m) => m.index === 4)).toEqual({
      index: 4, roles: ['crm-user'], deny: [], matched: false, effect: 'none',
      reason: 'identity is from idp "entra"; condition failed to evaluate (field not found: tid): no grant',
    });
  });

  it('explainAll lists every mapping, including other idps and non-members', () => {
    const { trace } = policy.resolveRoles(alice(), true);
    expect(trace.mappings.map((m) => m.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(trace.notConsidered).toBe(0);
    expect(trace.mappings[2]).toMatchObject({ matched: false, effect: 'none', reason: 'identity is from idp "entra", mapping is for "okta"' });
    expect(trace.mappings[5]).toMatchObject({ matched: false, effect: 'none', reason: 'not a member of group id "g-blocked"' });
    expect(trace.mappings[1]).toMatchObject({ matched: true, effect: 'full', reason: 'member of group name "ERP Writers"' });
  });

  it('traces incomplete groups: grants skipped with reason, denials fail closed', () => {
    const { trace } = policy.resolveRoles(alice({ groupsComplete: false, groups: [group('g-erp-read')] }));
    expect(trace.groupsComplete).toBe(false);
    const byIndex = new Map(trace.mappings.map((m) => [m.index, m]));
    expect(byIndex.get(0)).toMatchObject({
      matched: false, effect: 'none',
      reason: 'groups are incomplete (IdP overage or truncated list): group-based grants do not apply',
    });
    expect(byIndex.get(5)).toMatchObject({
      matched: true, effect: 'deny_only',
      reason: 'groups are incomplete, so membership of group id "g-blocked" cannot be ruled out: its denial applies (fail closed)',
    });
    expect(byIndex.get(4)).toMatchObject({ matched: true, effect: 'full' });
    // The person's listed group 0 and the denial 5 are looked at; 7 (a grant they are not listed in) is not.
    expect([...byIndex.keys()]).toEqual([0, 3, 4, 5, 6, 9]);
    expect(trace.notConsidered).toBe(4);
  });

  it('traces a listed group whose deny mapping applies under incomplete groups', () => {
    const { trace } = policy.resolveRoles(alice({ groupsComplete: false, groups: [group('g-blocked')] }));
    expect(trace.mappings.find((m) => m.index === 5)).toMatchObject({
      matched: true, effect: 'deny_only', reason: 'member of group id "g-blocked", but groups are incomplete: only its denial applies',
    });
  });
});

describe('decide: scopes and audience', () => {
  it.each<{ name: string; req: Partial<DecisionRequest>; expected: Record<string, unknown> }>([
    {
      name: 'grants the intersection of request, roles, agent and resource',
      req: { scopes: ['erp:read', 'erp:write'] },
      expected: grant({ scopes: ['erp:read', 'erp:write'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
    {
      name: 'duplicate requested scopes are granted once',
      req: { scopes: ['erp:read', 'erp:read'] },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
    {
      name: "omitted scope uses the agent's default scopes for the audience",
      req: { scopes: undefined },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
    {
      name: 'omitted scope without defaults for the audience is refused',
      req: { scopes: undefined, audience: CRM },
      expected: deny('invalid_scope', `no scope requested and agent "assistant" has no default scopes for "${CRM}"`),
    },
    {
      name: 'an empty scope list is refused',
      req: { scopes: [] },
      expected: deny('invalid_scope', 'no scope requested'),
    },
    {
      name: 'a scope the resource does not offer',
      req: { scopes: ['crm:read'] },
      expected: deny('invalid_scope', `scope "crm:read" is not offered by resource "${ERP}"`),
    },
    {
      name: "a scope outside the agent's ceiling",
      req: { agent: 'summarizer', scopes: ['erp:approve'] },
      expected: deny('invalid_scope', 'scope "erp:approve" is outside the scopes registered for agent "summarizer"'),
    },
    {
      name: "a scope none of the person's roles grants",
      req: { scopes: ['erp:approve'] },
      expected: deny('invalid_scope', `scope "erp:approve" is not granted to this person by any role (roles: ${ALICE_ROLE_LIST})`),
    },
    {
      name: 'several excluded scopes are all named, joined by "; "',
      req: { scopes: ['crm:read', 'erp:read', 'erp:approve'] },
      expected: deny('invalid_scope', [
        `scope "crm:read" is not offered by resource "${ERP}"`,
        `scope "erp:approve" is not granted to this person by any role (roles: ${ALICE_ROLE_LIST})`,
      ].join('; ')),
    },
    {
      name: 'an unknown resource',
      req: { audience: 'https://unknown.example.test' },
      expected: deny('invalid_target', 'unknown resource "https://unknown.example.test"'),
    },
    {
      name: 'a resource the agent may not target',
      req: { agent: 'summarizer', audience: HR, scopes: ['hr:read'] },
      expected: deny('invalid_target', `agent "summarizer" may not request tokens for "${HR}"`),
    },
    {
      name: "a resource none of the person's roles covers",
      req: { identity: bob(), audience: HR, scopes: ['hr:read'] },
      expected: deny('invalid_target', `no role of this person grants any scope of "${HR}" (roles: "erp-writer")`),
    },
    {
      name: 'audience omitted, agent with one audience: that audience',
      req: { agent: 'mailer', audience: undefined, scopes: ['crm:read'] },
      expected: grant({ scopes: ['crm:read'], audience: CRM, ttl: 900, roles: ALICE_ROLES, actors: ['mailer'] }),
    },
    {
      name: 'audience omitted, agent with several audiences: refused',
      req: { audience: undefined },
      expected: deny('invalid_target', `an audience is required: agent "assistant" may target "${ERP}", "${CRM}", "${HR}"`),
    },
    {
      name: 'audience omitted, agent with no audience: refused',
      req: { agent: 'no-audience', audience: undefined },
      expected: deny('invalid_target', 'an audience is required: agent "no-audience" may target none'),
    },
  ])('$name', ({ req, expected }) => {
    expect(outcome(policy.decide(request(req)))).toStrictEqual(expected);
  });

  it('traces each excluded scope with the rule that excluded it', () => {
    const decision = policy.decide(request({ scopes: ['crm:read', 'erp:read', 'erp:approve'] }));
    expect(decision.trace.scopes).toEqual({
      requested: ['crm:read', 'erp:read', 'erp:approve'],
      source: 'request',
      granted: [],
      excluded: [
        { scope: 'crm:read', rule: 'resource', reason: `scope "crm:read" is not offered by resource "${ERP}"` },
        { scope: 'erp:approve', rule: 'roles', reason: `scope "erp:approve" is not granted to this person by any role (roles: ${ALICE_ROLE_LIST})` },
      ],
    });
    expect(decision.trace.audience).toEqual({ id: ERP, source: 'request', allowed: true, reason: 'allowed for agent "assistant" and for the person\'s roles' });
  });

  it('traces default scopes and an audience taken from the only one the agent has', () => {
    const decision = policy.decide(request({ agent: 'mailer', audience: undefined, scopes: ['crm:read'] }));
    expect(decision.trace.audience).toMatchObject({ id: CRM, source: 'only_audience', allowed: true });
    const defaults = policy.decide(request({ scopes: undefined }));
    expect(defaults.trace.scopes).toEqual({ requested: ['erp:read'], source: 'default', granted: ['erp:read'], excluded: [] });
  });

  it('traces a refused audience', () => {
    const decision = policy.decide(request({ agent: 'summarizer', audience: HR }));
    expect(decision.trace.audience).toEqual({
      id: HR, source: 'request', allowed: false, reason: `agent "summarizer" may not request tokens for "${HR}"`,
    });
    expect(decision.trace.scopes).toBeUndefined();
  });
});

describe('decide: the agent', () => {
  it.each<{ name: string; req: Partial<DecisionRequest>; expected: Record<string, unknown> }>([
    { name: 'unknown agent', req: { agent: 'ghost' }, expected: deny('unauthorized_client', 'unknown agent "ghost"') },
    { name: 'disabled agent', req: { agent: 'disabled-bot' }, expected: deny('unauthorized_client', 'agent "disabled-bot" is disabled') },
    {
      name: 'actsFor satisfied',
      req: { agent: 'hr-bot', audience: undefined, scopes: ['hr:read'] },
      expected: grant({ scopes: ['hr:read'], audience: HR, ttl: 300, roles: ALICE_ROLES, actors: ['hr-bot'] }),
    },
    {
      name: 'actsFor not satisfied',
      req: { agent: 'hr-bot', identity: bob(), audience: HR, scopes: ['hr:read'] },
      expected: deny('unauthorized_client', 'agent "hr-bot" acts only for people holding one of the roles "hr-viewer"; this person holds "erp-writer"'),
    },
    {
      name: 'actsFor not satisfied by a person with no role',
      req: { agent: 'hr-bot', identity: bob({ groups: [] }), audience: HR, scopes: ['hr:read'] },
      expected: deny('unauthorized_client', 'agent "hr-bot" acts only for people holding one of the roles "hr-viewer"; this person holds none'),
    },
    {
      name: 'requireDpop without a DPoP proof',
      req: { agent: 'dpop-bot' },
      expected: deny('invalid_request', 'agent "dpop-bot" must present a DPoP proof (requireDpop)'),
    },
    {
      name: 'requireDpop with a DPoP proof',
      req: { agent: 'dpop-bot', dpop: true },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['dpop-bot'], requireDpop: true }),
    },
    {
      name: 'a DPoP proof is fine for an agent that does not require it',
      req: { dpop: true },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
  ])('$name', ({ req, expected }) => {
    expect(outcome(policy.decide(request(req)))).toStrictEqual(expected);
  });

  it('traces the agent, actsFor and DPoP', () => {
    const refused = policy.decide(request({ agent: 'hr-bot', identity: bob(), audience: HR }));
    expect(refused.trace.agent).toEqual({ clientId: 'hr-bot', known: true, disabled: false, actsFor: { roles: ['hr-viewer'], satisfied: false } });
    expect(policy.decide(request({ agent: 'ghost' })).trace.agent).toEqual({ clientId: 'ghost', known: false, disabled: false });
    expect(policy.decide(request({ agent: 'disabled-bot' })).trace.agent).toEqual({ clientId: 'disabled-bot', known: true, disabled: true });
    expect(policy.decide(request({ agent: 'dpop-bot' })).trace.dpop).toEqual({ required: true, present: false });
  });
});

describe('decide: re-delegation', () => {
  const token = (actors: string[], scopes: string[] = ['erp:read', 'erp:write']) => ({ actors, scopes, expiresAt: NOW + 1800 });

  it.each<{ name: string; req: Partial<DecisionRequest>; expected: Record<string, unknown> }>([
    {
      name: 'allowed by delegateTo: the new actor is first in the chain',
      req: { agent: 'summarizer', subjectToken: token(['assistant']) },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 120, roles: ALICE_ROLES, actors: ['summarizer', 'assistant'] }),
    },
    {
      name: 'a three-agent chain within the policy depth',
      req: { agent: 'assistant', subjectToken: token(['summarizer', 'assistant']) },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant', 'summarizer', 'assistant'] }),
    },
    {
      name: 'refused when the delegating agent does not list the new one in delegateTo',
      req: { agent: 'hr-bot', audience: HR, scopes: ['hr:read'], subjectToken: token(['assistant']) },
      expected: deny('unauthorized_client', 'agent "assistant" may not delegate to "hr-bot" (its delegateTo: "summarizer", "mailer")'),
    },
    {
      name: 'refused for an agent re-exchanging its own token (no self-delegation)',
      req: { agent: 'assistant', subjectToken: token(['assistant']) },
      expected: deny('unauthorized_client', 'agent "assistant" may not delegate to "assistant" (its delegateTo: "summarizer", "mailer")'),
    },
    {
      name: 'refused when the delegating agent is unknown',
      req: { agent: 'summarizer', subjectToken: token(['ghost']) },
      expected: deny('unauthorized_client', 'the delegating agent "ghost" is unknown'),
    },
    {
      name: 'refused when the delegating agent is disabled',
      req: { agent: 'summarizer', subjectToken: token(['disabled-bot']) },
      expected: deny('unauthorized_client', 'the delegating agent "disabled-bot" is disabled'),
    },
    {
      name: 'refused beyond policy.maxDelegationDepth',
      req: { agent: 'summarizer', subjectToken: token(['assistant', 'summarizer', 'assistant']) },
      expected: deny('unauthorized_client', 'delegation depth 4 exceeds the maximum of 3'),
    },
    {
      name: "the requesting agent's own maxDelegationDepth is lower",
      req: { agent: 'mailer', audience: CRM, scopes: ['crm:read'], subjectToken: token(['summarizer', 'assistant'], ['crm:read']) },
      expected: deny('unauthorized_client', 'delegation depth 3 exceeds the maximum of 2'),
    },
    {
      name: 'an earlier agent in the chain with a lower maxDelegationDepth limits the whole chain',
      req: { agent: 'summarizer', subjectToken: token(['assistant', 'mailer']) },
      expected: deny('unauthorized_client', 'delegation depth 3 exceeds the maximum of 2'),
    },
    {
      name: "an agent's maxDelegationDepth allows a chain up to it",
      req: { agent: 'mailer', audience: CRM, scopes: ['crm:read'], subjectToken: token(['assistant'], ['crm:read']) },
      expected: grant({ scopes: ['crm:read'], audience: CRM, ttl: 900, roles: ALICE_ROLES, actors: ['mailer', 'assistant'] }),
    },
    {
      name: "scopes narrow: a scope outside the parent token's is refused",
      req: { agent: 'summarizer', scopes: ['erp:read', 'erp:write'], subjectToken: token(['assistant'], ['erp:read']) },
      expected: deny('invalid_scope', 'scope "erp:write" is not in the subject token (delegation can only narrow)'),
    },
    {
      name: "default scopes are narrowed by the parent token's too",
      req: { agent: 'summarizer', scopes: undefined, subjectToken: token(['assistant'], ['erp:read']) },
      expected: deny('invalid_scope', 'scope "erp:write" is not in the subject token (delegation can only narrow)'),
    },
    {
      name: "a subset of the parent token's scopes is granted",
      req: { agent: 'summarizer', scopes: ['erp:write'], subjectToken: token(['assistant'], ['erp:read', 'erp:write']) },
      expected: grant({ scopes: ['erp:write'], audience: ERP, ttl: 120, roles: ALICE_ROLES, actors: ['summarizer', 'assistant'] }),
    },
    {
      name: 'a user token (no actors) is not a re-delegation: its scopes do not narrow',
      req: { scopes: ['erp:write'], subjectToken: token([], ['openid']) },
      expected: grant({ scopes: ['erp:write'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
  ])('$name', ({ req, expected }) => {
    expect(outcome(policy.decide(request(req)))).toStrictEqual(expected);
  });

  it('a lower policy.maxDelegationDepth refuses a chain the default allows', () => {
    const strict = createPolicy(validateConfig({ ...baseConfig(), policy: { maxDelegationDepth: 1 } }));
    const req = request({ agent: 'summarizer', subjectToken: token(['assistant']) });
    expect(outcome(strict.decide(req))).toStrictEqual(deny('unauthorized_client', 'delegation depth 2 exceeds the maximum of 1'));
    expect(policy.decide(req).outcome).toBe('grant');
  });

  it('traces the chain, depth and limit', () => {
    const allowed = policy.decide(request({ agent: 'summarizer', subjectToken: token(['assistant']) }));
    expect(allowed.trace.delegation).toEqual({
      chain: ['summarizer', 'assistant'], depth: 2, maxDepth: 3, allowed: true,
      reason: 'agent "assistant" may delegate to "summarizer" and depth 2 ≤ 3',
    });
    const refused = policy.decide(request({ agent: 'summarizer', subjectToken: token(['assistant', 'mailer']) }));
    expect(refused.trace.delegation).toEqual({
      chain: ['summarizer', 'assistant', 'mailer'], depth: 3, maxDepth: 2, allowed: false,
      reason: 'delegation depth 3 exceeds the maximum of 2',
    });
    const narrowed = policy.decide(request({ agent: 'summarizer', scopes: ['erp:read', 'erp:write'], subjectToken: token(['assistant'], ['erp:read']) }));
    expect(narrowed.trace.scopes?.excluded).toEqual([
      { scope: 'erp:write', rule: 'subject_token', reason: 'scope "erp:write" is not in the subject token (delegation can only narrow)' },
    ]);
    expect(policy.decide(request()).trace.delegation).toBeUndefined();
  });
});

describe('decide: token lifetime', () => {
  it.each<{ name: string; req: Partial<DecisionRequest>; ttl: number; boundBy: string; limits: { limit: string; seconds: number }[] }>([
    {
      name: 'bound by the resource',
      req: {}, ttl: 300, boundBy: 'resource',
      limits: [{ limit: 'agent', seconds: 600 }, { limit: 'session', seconds: 3600 }, { limit: 'resource', seconds: 300 }],
    },
    {
      name: 'bound by the agent',
      req: { agent: 'summarizer' }, ttl: 120, boundBy: 'agent',
      limits: [{ limit: 'agent', seconds: 120 }, { limit: 'session', seconds: 3600 }, { limit: 'resource', seconds: 300 }],
    },
    {
      name: 'bound by what is left of the session',
      req: { sessionExpiresAt: NOW + 100 }, ttl: 100, boundBy: 'session',
      limits: [{ limit: 'agent', seconds: 600 }, { limit: 'session', seconds: 100 }, { limit: 'resource', seconds: 300 }],
    },
    {
      name: 'bound by what is left of the subject token',
      req: { subjectToken: { actors: [], scopes: [], expiresAt: NOW + 42 } }, ttl: 42, boundBy: 'subject_token',
      limits: [{ limit: 'agent', seconds: 600 }, { limit: 'session', seconds: 3600 }, { limit: 'subject_token', seconds: 42 }, { limit: 'resource', seconds: 300 }],
    },
    {
      name: 'no session limit when the request has no session',
      req: { sessionExpiresAt: undefined, agent: 'mailer', audience: CRM, scopes: ['crm:read'] }, ttl: 900, boundBy: 'resource',
      limits: [{ limit: 'agent', seconds: 3600 }, { limit: 'resource', seconds: 900 }],
    },
    {
      name: 'a fractional remainder is rounded down',
      req: { sessionExpiresAt: NOW + 99.5 }, ttl: 99, boundBy: 'session',
      limits: [{ limit: 'agent', seconds: 600 }, { limit: 'session', seconds: 99.5 }, { limit: 'resource', seconds: 300 }],
    },
  ])('$name', ({ req, ttl, boundBy, limits }) => {
    const decision = asGrant(policy.decide(request(req)));
    expect(decision.ttl).toBe(ttl);
    expect(decision.trace.ttl).toEqual({ seconds: ttl, limits, boundBy });
  });

  it.each<{ name: string; req: Partial<DecisionRequest>; expected: Record<string, unknown> }>([
    { name: 'session ended exactly now', req: { sessionExpiresAt: NOW }, expected: deny('invalid_grant', 'the enterprise session has ended') },
    { name: 'session ended before', req: { sessionExpiresAt: NOW - 1 }, expected: deny('invalid_grant', 'the enterprise session has ended') },
    {
      name: 'subject token expired',
      req: { subjectToken: { actors: [], scopes: [], expiresAt: NOW } },
      expected: deny('invalid_grant', 'the subject token has expired'),
    },
  ])('$name', ({ req, expected }) => {
    const decision = policy.decide(request(req));
    expect(outcome(decision)).toStrictEqual(expected);
    expect(decision.trace.ttl).toBeUndefined();
  });
});

describe('decide: step-up', () => {
  it.each<{ name: string; identity: Partial<FederatedIdentity>; req: Partial<DecisionRequest>; expected: Record<string, unknown> }>([
    {
      name: 'acr not accepted',
      identity: { acr: 'basic', groups: [group('g-approvers')] },
      req: { scopes: ['erp:approve'] },
      expected: {
        outcome: 'step_up', error: 'insufficient_user_authentication',
        description: 'scope "erp:approve" requires a stronger or more recent sign-in: acr "basic" is not one of "phr", "phrh"',
        acrValues: ['phr', 'phrh'], maxAge: 900,
      },
    },
    {
      name: 'acr absent',
      identity: { acr: undefined, groups: [group('g-approvers')] },
      req: { scopes: ['erp:approve'] },
      expected: {
        outcome: 'step_up', error: 'insufficient_user_authentication',
        description: 'scope "erp:approve" requires a stronger or more recent sign-in: acr is absent, expected one of "phr", "phrh"',
        acrValues: ['phr', 'phrh'], maxAge: 900,
      },
    },
    {
      name: 'amr lacks a required method (no acr_values, no max_age to ask for)',
      identity: { amr: ['pwd'] },
      req: { scopes: ['erp:write'] },
      expected: {
        outcome: 'step_up', error: 'insufficient_user_authentication',
        description: 'scope "erp:write" requires a stronger or more recent sign-in: amr lacks "mfa"',
      },
    },
    {
      name: 'sign-in older than maxAge',
      identity: { authTime: NOW - 7200 },
      req: { audience: CRM, scopes: ['crm:write'] },
      expected: {
        outcome: 'step_up', error: 'insufficient_user_authentication',
        description: 'scope "crm:write" requires a stronger or more recent sign-in: sign-in is 2h old, more than 1h',
        maxAge: 3600,
      },
    },
    {
      name: 'several failing rules combine',
      identity: { acr: 'basic', amr: ['pwd'], authTime: NOW - 1200, groups: [group('g-approvers'), group('w', 'ERP Writers')] },
      req: { scopes: ['erp:approve', 'erp:write'] },
      expected: {
        outcome: 'step_up', error: 'insufficient_user_authentication',
        description: 'scope "erp:approve", "erp:write" requires a stronger or more recent sign-in: '
          + 'acr "basic" is not one of "phr", "phrh"; sign-in is 20m old, more than 15m; amr lacks "mfa"',
        acrValues: ['phr', 'phrh'], maxAge: 900,
      },
    },
    {
      name: 'satisfied: acr accepted, recent enough, mfa present',
      identity: { acr: 'phrh', authTime: NOW - 899, groups: [group('g-approvers'), group('w', 'ERP Writers')] },
      req: { scopes: ['erp:approve', 'erp:write'] },
      expected: grant({ scopes: ['erp:approve', 'erp:write'], audience: ERP, ttl: 300, roles: ['crm-user', 'erp-approver', 'erp-writer', 'hr-viewer'], actors: ['assistant'] }),
    },
    {
      name: 'only rules touching a granted scope apply',
      identity: { acr: 'basic', amr: ['pwd'], authTime: NOW - 86_400 },
      req: { scopes: ['erp:read'] },
      expected: grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ALICE_ROLES, actors: ['assistant'] }),
    },
  ])('$name', ({ identity, req, expected }) => {
    expect(outcome(policy.decide(request({ identity: alice(identity), ...req })))).toStrictEqual(expected);
  });

  it('combines acr values as a union and max ages as the smallest', () => {
    const config = baseConfig();
    config.stepUp = [
      { scopes: ['erp:approve'], acr: ['phr', 'phrh'], maxAge: '15m' },
      { scopes: ['erp:approve', 'erp:write'], acr: ['phrh', 'hwk'], maxAge: '5m' },
    ];
    const strict = createPolicy(validateConfig(config));
    const decision = strict.decide(request({
      identity: alice({ acr: 'pwd', authTime: NOW - 600, groups: [group('g-approvers'), group('w', 'ERP Writers')] }),
      scopes: ['erp:approve', 'erp:write'],
    }));
    expect(outcome(decision)).toStrictEqual({
      outcome: 'step_up', error: 'insufficient_user_authentication',
      description: 'scope "erp:approve", "erp:write" requires a stronger or more recent sign-in: '
        + 'acr "pwd" is not one of "phr", "phrh"; acr "pwd" is not one of "phrh", "hwk"; sign-in is 10m old, more than 5m',
      acrValues: ['phr', 'phrh', 'hwk'], maxAge: 300,
    });
    expect(decision.trace.stepUp).toEqual([
      { rule: 0, scopes: ['erp:approve'], satisfied: false, reason: 'acr "pwd" is not one of "phr", "phrh"' },
      { rule: 1, scopes: ['erp:approve', 'erp:write'], satisfied: false, reason: 'acr "pwd" is not one of "phrh", "hwk"; sign-in is 10m old, more than 5m' },
    ]);
  });

  it('traces satisfied and failing rules', () => {
    const decision = policy.decide(request({ identity: alice({ amr: ['pwd'], groups: [group('g-approvers'), group('w', 'ERP Writers')] }), scopes: ['erp:approve', 'erp:write'] }));
    expect(decision.outcome).toBe('step_up');
    expect(decision.trace.stepUp).toEqual([
      { rule: 0, scopes: ['erp:approve'], satisfied: true, reason: 'satisfied by the sign-in' },
      { rule: 1, scopes: ['erp:write'], satisfied: false, reason: 'amr lacks "mfa"' },
    ]);
    // Step-up is decided after everything else: the scopes are already known to be grantable.
    expect(decision.trace.scopes?.excluded).toEqual([]);
    expect(decision.trace.ttl).toBeUndefined();
  });
});

describe('decide: the explanation trace', () => {
  it('describes a grant completely', () => {
    const decision = asGrant(policy.decide(request({ scopes: ['erp:read', 'erp:write'] })));
    const { trace } = decision;
    expect(trace.identity).toEqual({ idp: 'entra', subject: 'alice-oid' });
    expect(trace.agent).toEqual({ clientId: 'assistant', known: true, disabled: false });
    expect(trace.roles.granted).toEqual(decision.roles);
    expect(trace.roles.mappings.filter((m) => m.effect === 'full').map((m) => m.index)).toEqual([0, 1, 3, 4]);
    expect(trace.scopes).toEqual({ requested: ['erp:read', 'erp:write'], source: 'request', granted: ['erp:read', 'erp:write'], excluded: [] });
    expect(trace.dpop).toEqual({ required: false, present: false });
    expect(trace.stepUp).toEqual([{ rule: 1, scopes: ['erp:write'], satisfied: true, reason: 'satisfied by the sign-in' }]);
    expect(trace.ttl?.boundBy).toBe('resource');
  });

  it('explainAll lists every mapping without changing the decision', () => {
    const req = request({ scopes: ['erp:read', 'erp:write'] });
    const plain = policy.decide(req);
    const explained = policy.decide({ ...req, explainAll: true });
    expect(outcome(explained)).toStrictEqual(outcome(plain));
    expect(plain.trace.roles.mappings.length).toBeLessThan(10);
    expect(explained.trace.roles.mappings.map((m) => m.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(explained.trace.roles.notConsidered).toBe(0);
  });

  it('stops at the first refusal and leaves later sections out', () => {
    const decision = policy.decide(request({ agent: 'disabled-bot' }));
    expect(decision.trace.roles.mappings).toEqual([]);
    expect(decision.trace.audience).toBeUndefined();
    expect(decision.trace.scopes).toBeUndefined();
    expect(decision.trace.stepUp).toEqual([]);
  });
});

describe('decide: roles held by the enterprise session', () => {
  it('decides on the roles the session holds without evaluating mappings again', () => {
    // Bob's groups map to erp-writer; the session says he was an erp-reader at sign-in.
    const decision = policy.decide(request({ identity: bob(), agent: 'assistant', scopes: ['erp:read'], roles: ['erp-reader'] }));
    expect(outcome(decision)).toStrictEqual(grant({ scopes: ['erp:read'], audience: ERP, ttl: 300, roles: ['erp-reader'], actors: ['assistant'] }));
    expect(decision.trace.roles).toStrictEqual({
      source: 'session', groupsComplete: true, mappings: [], notConsidered: 10, granted: ['erp-reader'], denied: [],
    });
    expect(outcome(policy.decide(request({ identity: bob(), scopes: ['erp:write'], roles: ['erp-reader'] })))).toStrictEqual(
      deny('invalid_scope', 'scope "erp:write" is not granted to this person by any role (roles: "erp-reader")'),
    );
  });

  it('resolves from mappings when explaining, whatever the session holds', () => {
    const decision = policy.decide(request({ identity: bob(), roles: ['erp-reader'], explainAll: true }));
    expect(decision.trace.roles.source).toBe('mappings');
    expect(decision.trace.roles.granted).toEqual(['erp-writer']);
  });
});

describe('decide: chain standing and born-expired tokens', () => {
  it('refuses re-delegation when an earlier agent in the chain has been disabled', () => {
    const decision = policy.decide(request({
      agent: 'mailer', audience: CRM, scopes: ['crm:read'],
      subjectToken: { scopes: ['crm:read'], actors: ['summarizer', 'disabled-bot'], expiresAt: NOW + 600 },
    }));
    expect(outcome(decision)).toStrictEqual(deny('unauthorized_client', 'agent "disabled-bot" earlier in the delegation chain is disabled'));
  });

  it('refuses a grant that would leave under a second', () => {
    const decision = policy.decide(request({ sessionExpiresAt: NOW + 0.5 }));
    expect(outcome(decision)).toStrictEqual(deny('invalid_grant', 'no time left for a token: the session allows under a second'));
  });
});
