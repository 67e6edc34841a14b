// What operators see: health probes, Prometheus metrics with bounded route labels, and request
// logs that never carry secrets, tokens or query strings.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { signIn } from '../support/browser.ts';
import { AGENT_SECRET, basic, postForm, startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(async () => gw?.close());

describe('health', () => {
  it('answers /healthz and /readyz', async () => {
    const live = await fetch(`${gw.url}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ok', checks: { store: 'ok', keys: 'ok' } });
  });
});

describe('metrics and logs', () => {
  it('labels requests by route pattern and keeps secrets out of the logs', async () => {
    const issued = await postForm(`${gw.url}/token`, { grant_type: 'client_credentials', scope: 'erp:read' }, {
      authorization: basic('invoice-agent', AGENT_SECRET),
    });
    const token = String(issued.body.access_token);
    await postForm(`${gw.url}/token/introspection`, { token }, { authorization: basic('invoice-agent', AGENT_SECRET) });
    await fetch(`${gw.url}/no/such/${crypto.randomUUID()}`);
    const { code } = await signIn(gw.url, { clientId: 'agent-console', redirectUri: 'http://127.0.0.1/cb', email: 'hana@example.test' });

    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    const count = (route: string, method: string, status: number) =>
      new RegExp(`agentgate_http_request_duration_seconds_count\\{method="${method}",route="${route.replace(/[/.]/g, '\\$&')}",status="${status}"\\} (\\d+)`).exec(text)?.[1];
    expect(count('/token', 'POST', 200)).toBe('1');
    expect(count('/token/introspection', 'POST', 200)).toBe('1');
    expect(count('unmatched', 'GET', 404)).toBe('1');
    expect(count('/auth', 'GET', 303)).toBe('1');
    expect(count('/interaction/:uid', 'GET', 303)).toBe('2'); // login (→ dev form) and consent
    expect(count('/interaction/:uid/dev', 'GET', 200)).toBe('1');
    expect(count('/interaction/:uid/login', 'POST', 303)).toBe('1');
    expect(text).toContain('agentgate_tokens_issued_total{grant_type="client_credentials"} 1');
    // No raw paths (uids, random segments) as labels.
    expect(text).not.toMatch(/route="\/no\/such/);

    const logs = gw.logs.join('');
    for (const secret of [AGENT_SECRET, token, code, token.split('.')[2]!]) expect(logs).not.toContain(secret);
    const lines = gw.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    const tokenLine = lines.find((l) => l.path === '/token');
    expect(tokenLine).toMatchObject({ level: 'info', method: 'POST', status: 200, service: 'agentgate' });
    expect(Object.keys(tokenLine!).sort()).toEqual(['durationMs', 'level', 'method', 'msg', 'path', 'reqId', 'service', 'status', 'time']);
    // The authorization request's query (client_id, code_challenge, state…) is never logged.
    const authLine = lines.find((l) => typeof l.path === 'string' && l.path === '/auth');
    expect(authLine).toBeDefined();
    expect(logs).not.toContain('code_challenge');
  });

  it('echoes a caller-supplied request id', async () => {
    const res = await fetch(`${gw.url}/healthz`, { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
  });

  it('sets baseline security headers', async () => {
    const res = await fetch(`${gw.url}/.well-known/openid-configuration`);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-powered-by')).toBeNull();
  });
});
