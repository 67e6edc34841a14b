// The example resource server (examples/resource-server) as `npm run example:resource-server`
// runs it: a child process on the same Node, configured by environment, in front of a real
// gateway. It serves RFC 9728 metadata, refuses callers without a token with the
// `resource_metadata` challenge an MCP client follows, and answers agents' REST and JSON-RPC calls.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { TestGateway } from '../support/gateway.ts';
import { ERP, exchangeAs, signInPerson } from '../exchange/fixture.ts';
import { startClientGateway } from './fixture.ts';

const MAIN = fileURLToPath(new URL('../../examples/resource-server/main.ts', import.meta.url));
let gw: TestGateway;
let child: ChildProcess;
let output = '';
let base: string;
let token: string;

beforeAll(async () => {
  ({ gw } = await startClientGateway());
  child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, AGENTGATE_ISSUER: gw.url, RESOURCE_AUDIENCE: ERP, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (d) => { output += String(d); });
  child.stderr?.on('data', (d) => { output += String(d); });
  const deadline = Date.now() + 15_000;
  while (!/on (http:\/\/[^ ]+) /.test(output)) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`example did not start:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  base = /on (http:\/\/[^ ]+) /.exec(output)![1]!;
  const alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
  token = String((await exchangeAs(gw, 'agent-a', { subject_token: alice.accessToken, scope: 'erp:read', audience: ERP })).body.access_token);
});
afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
  await gw?.close();
});

describe('examples/resource-server', () => {
  it('starts, says where, and warns that revocation is off without a client', () => {
    expect(output).toContain(`example resource server on ${base} (audience ${ERP}, issuer ${gw.url})`);
    expect(output).toContain('revocation: NOT enforced (set RESOURCE_CLIENT_ID / RESOURCE_CLIENT_SECRET)');
    expect(output).toContain('agentgate: requireAgentToken for https://erp.example.test has no `client`');
  });

  it('serves its RFC 9728 metadata', async () => {
    const res = await fetch(`${base}/.well-known/oauth-protected-resource`);
    expect(await res.json()).toEqual({
      resource: ERP, authorization_servers: [gw.url], scopes_supported: ['erp:read', 'erp:approve'],
      bearer_methods_supported: ['header'], dpop_signing_alg_values_supported: ['ES256', 'Ed25519', 'EdDSA'],
      dpop_bound_access_tokens_required: false, resource_name: 'Demo ERP (agentgate example)',
    });
  });

  it('MCP: a caller without a token learns where the metadata is; an agent lists and calls tools', async () => {
    const rpc = (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    const anonymous = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe(`Bearer resource_metadata="${base}/.well-known/oauth-protected-resource"`);

    const auth = { authorization: `Bearer ${token}` };
    const list = await rpc({ jsonrpc: '2.0', id: 1, method: 'tools/list' }, auth);
    expect(list.status).toBe(200);
    expect(await list.json()).toMatchObject({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'list_invoices' }] } });
    const called = await rpc({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'list_invoices', arguments: { status: 'approved' } } }, auth);
    expect(await called.json()).toMatchObject({ id: 2, result: { structuredContent: { invoices: [{ id: 'INV-1003', status: 'approved' }] } } });
    const unknown = await rpc({ jsonrpc: '2.0', id: 3, method: 'resources/list' }, auth);
    expect(await unknown.json()).toEqual({ jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found' } });
  });

  it('REST: erp:read lists invoices for the person and agent; approving needs erp:approve', async () => {
    const res = await fetch(`${base}/invoices`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ requestedBy: { person: 'dev|alice@example.test', agent: 'agent-a', actors: ['agent-a'] } });
    const approve = await fetch(`${base}/invoices/INV-1001/approve`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(approve.status).toBe(403);
    expect(approve.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('stops on SIGTERM with exit code 0', async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
