import { describe, expect, it } from 'vitest';

import type { AgentToken } from './access-token.ts';
import { createRevocationList, parseRevocationEvent } from './revocation-list.ts';

function token(overrides: Partial<AgentToken> & { iat?: number } = {}): AgentToken {
  const { iat = 1000, ...rest } = overrides;
  return {
    person: 'dev|alice', agent: 'agent-b', actors: ['agent-b', 'agent-a'], scopes: ['mail:read'], audience: 'https://mail',
    sid: 'sid-1', jti: 'jti-1', expiresAt: 2000,
    claims: { iss: 'https://gw', sub: 'dev|alice', jti: 'jti-1', exp: 2000, iat, client_id: 'agent-b' },
    ...rest,
  };
}

describe('revocation list', () => {
  it('revokes by session, token, subject (issued at or before) and agent anywhere in the chain', () => {
    let t = 1500;
    const list = createRevocationList(() => t);
    expect(list.check(token())).toBeUndefined();

    list.apply({ id: '1-0', type: 'subject', at: 999, until: 3000, sub: 'dev|alice' });
    expect(list.check(token())).toBeUndefined();
    list.apply({ id: '2-0', type: 'subject', at: 1000, until: 3000, sub: 'dev|alice' });
    expect(list.check(token())).toBe('subject');
    expect(list.check(token({ iat: 1001 }))).toBeUndefined();

    list.apply({ id: '3-0', type: 'agent', at: 1000, until: 3000, clientId: 'agent-a' });
    expect(list.check(token({ person: 'dev|bob' }))).toBe('agent');
    expect(list.check(token({ person: 'dev|bob', actors: ['agent-b'] }))).toBeUndefined();

    list.apply({ id: '4-0', type: 'session', at: 1500, until: 3000, sid: 'sid-2' });
    expect(list.check(token({ person: 'dev|bob', actors: [], sid: 'sid-2', iat: 2500 }))).toBe('session');
    list.apply({ id: '5-0', type: 'token', at: 1500, until: 3000, jti: 'jti-9' });
    expect(list.check(token({ person: 'dev|bob', actors: [], jti: 'jti-9' }))).toBe('token');
    expect(list.size).toBe(4);

    // Past `until` a record can affect no token: it goes.
    t = 3001;
    expect(list.check(token({ person: 'dev|bob', actors: [], sid: 'sid-2' }))).toBeUndefined();
    list.sweep();
    expect(list.size).toBe(0);
  });

  it('revokes one agent within one session: its own and its delegated tokens there, issued at or before', () => {
    const list = createRevocationList(() => 1500);
    list.apply({ id: '1-0', type: 'session-agent', at: 1000, until: 3000, sid: 'sid-1', clientId: 'agent-a' });
    expect(list.check(token())).toBe('session-agent');
    expect(list.check(token({ agent: 'agent-a', actors: ['agent-a'] }))).toBe('session-agent');
    expect(list.check(token({ iat: 1001 }))).toBeUndefined();
    expect(list.check(token({ sid: 'sid-2' }))).toBeUndefined();
    expect(list.check(token({ actors: ['agent-b'] }))).toBeUndefined();
    // Another agent of the same session is another record.
    list.apply({ id: '2-0', type: 'session-agent', at: 1000, until: 3000, sid: 'sid-1', clientId: 'agent-b' });
    expect(list.size).toBe(2);
    expect(list.check(token({ actors: ['agent-b'] }))).toBe('session-agent');
  });

  it('parses only events it can apply', () => {
    expect(parseRevocationEvent({ id: '1-0', type: 'session-agent', at: 1, until: 2, sid: 's', clientId: 'a', reason: 'person' })).toEqual({ id: '1-0', type: 'session-agent', at: 1, until: 2, sid: 's', clientId: 'a', reason: 'person' });
    expect(parseRevocationEvent({ id: '1-0', type: 'session-agent', at: 1, until: 2, sid: 's' })).toBeUndefined();
    expect(parseRevocationEvent({ id: '1-0', type: 'session', at: 1, until: 2, sid: 's', reason: 'logout' })).toEqual({ id: '1-0', type: 'session', at: 1, until: 2, sid: 's', reason: 'logout' });
    expect(parseRevocationEvent({ id: '1-0', type: 'session', at: 1, until: 2, sub: 's' })).toBeUndefined();
    expect(parseRevocationEvent({ id: '1-0', type: 'everything', at: 1, until: 2 })).toBeUndefined();
    expect(parseRevocationEvent({ id: '1-0', type: 'toString', at: 1, until: 2 })).toBeUndefined();
    expect(parseRevocationEvent({ type: 'token', at: 1, until: 2, jti: 'j' })).toBeUndefined();
    expect(parseRevocationEvent({ id: '1-0', type: 'token', at: '1', until: 2, jti: 'j' })).toBeUndefined();
    expect(parseRevocationEvent(null)).toBeUndefined();
    expect(parseRevocationEvent([])).toBeUndefined();
  });
});
