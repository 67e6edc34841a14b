// Revocation records as pure functions: which keys decide a token, and what their values mean.
import { describe, expect, it } from 'vitest';

import { isRevokedBy, revocationKeys } from './records.ts';
import type { RevocableClaims } from './records.ts';

const agentToken: RevocableClaims = {
  jti: 'j1', iat: 1000, client_id: 'agent-c', sub: 'okta|alice', sid: 's1', actors: ['agent-c', 'agent-b', 'agent-a'],
};

describe('revocationKeys', () => {
  it('lists the token, its session, its person, then its agent and every actor once', () => {
    expect(revocationKeys(agentToken)).toEqual([
      'revoked:jti:j1', 'revoked:sid:s1', 'revoked:sub:okta|alice',
      'revoked:agent:agent-c', 'revoked:agent:agent-b', 'revoked:agent:agent-a',
      'revoked:sidagent:s1:agent-c', 'revoked:sidagent:s1:agent-b', 'revoked:sidagent:s1:agent-a',
    ]);
  });

  it('leaves out what the token does not carry', () => {
    expect(revocationKeys({ jti: 'j2', iat: 1, client_id: 'svc', actors: [] })).toEqual(['revoked:jti:j2', 'revoked:agent:svc']);
  });
});

describe('isRevokedBy', () => {
  const none = [null, null, null, null, null, null, null, null, null];
  const only = (i: number, value: string) => none.map((v, j) => (j === i ? value : v));

  it('is live when no record exists', () => {
    expect(isRevokedBy(agentToken, none)).toBe(false);
  });

  it('a jti or sid record kills the token whatever its value', () => {
    expect(isRevokedBy(agentToken, only(0, '1'))).toBe(true);
    expect(isRevokedBy(agentToken, only(1, 'logout'))).toBe(true);
  });

  it('a person or agent record kills tokens issued at or before its time, not after', () => {
    // 2: person; 3–5: agents; 6–8: the agents within this session ("My agents" revoke).
    for (const i of [2, 3, 4, 5, 6, 7, 8]) {
      expect(isRevokedBy(agentToken, only(i, '1000'))).toBe(true);
      expect(isRevokedBy(agentToken, only(i, '1001'))).toBe(true);
      expect(isRevokedBy(agentToken, only(i, '999'))).toBe(false);
    }
  });

  it('an unreadable time record fails closed', () => {
    expect(isRevokedBy(agentToken, only(4, 'garbage'))).toBe(true);
  });

  it('refuses fewer values than keys (a caller bug, not a live token)', () => {
    expect(() => isRevokedBy(agentToken, [null])).toThrow(TypeError);
  });
});
