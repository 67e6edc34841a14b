// `agentgate explain` on the worked example in config/: what would an agent get for a person,
// and why — without a live sign-in.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';

const CONFIG = 'config/roles.example.yaml';
const NOW = '1795770100';
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-explain-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(args, {
    env: {}, stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l), serve: async () => 0, version: 'test',
  });
  return { code, out: stdout.join('\n'), stderr };
}

describe('agentgate explain', () => {
  it('prints a grant with the steps that led to it (exit 0)', async () => {
    const res = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/bob-entra.json', '--agent', 'invoice-agent', '--scope', 'erp:approve', '--now', NOW]);
    expect(res.code).toBe(0);
    const lines = res.out.split('\n');
    expect(lines[0]).toBe('GRANT  erp:approve for https://erp.example.com, 5m (300s)');
    expect(lines).toContain('roles    finance-approver, mail-user');
    expect(lines).toContain('step-up  ✓ stepUp[0] for erp:approve: satisfied by the sign-in');
    expect(lines).toContain('ttl      300s = min(agent 600s, resource 300s), bound by resource');
  });

  it('prints a refusal naming the rule that excluded the scope (exit 3)', async () => {
    const res = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/alice.json', '--agent', 'invoice-agent', '--scope', 'erp:read erp:approve', '--now', NOW]);
    expect(res.code).toBe(3);
    expect(res.out.split('\n')).toEqual(expect.arrayContaining([
      'DENY   invalid_scope: scope "erp:approve" is not granted to this person by any role (roles: "finance-reader", "mail-user")',
      '  ✗ erp:approve [roles] scope "erp:approve" is not granted to this person by any role (roles: "finance-reader", "mail-user")',
      '  ✓ roleMappings[0] +finance-reader (Okta Finance group): member of group id "Finance"',
    ]));
  });

  it('prints a step-up with the acr_values and max_age to send the person back with', async () => {
    const res = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/bob-entra.json', '--agent', 'invoice-agent', '--scope', 'erp:approve', '--now', String(1795770000 + 600)]);
    expect(res.code).toBe(3);
    expect(res.out.split('\n')[0]).toBe('STEP-UP insufficient_user_authentication: scope "erp:approve" requires a stronger or more recent sign-in: sign-in is 10m old, more than 5m (acr_values=mfa phr, max_age=300)');
  });

  it('explains re-delegation to a sub-agent', async () => {
    const ok = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/alice.json', '--agent', 'mail-agent', '--scope', 'mail:read',
      '--subject-scope', 'mail:read', '--actors', 'invoice-agent', '--subject-exp', String(Number(NOW) + 120), '--now', NOW, '--json']);
    expect(ok.code).toBe(0);
    const body = JSON.parse(ok.out) as Record<string, unknown> & { trace: { delegation: unknown } };
    expect(body).toMatchObject({ outcome: 'grant', scope: 'mail:read', actors: ['mail-agent', 'invoice-agent'], expires_in: 120 });
    expect(body.trace.delegation).toEqual({
      chain: ['mail-agent', 'invoice-agent'], depth: 2, maxDepth: 3, allowed: true,
      reason: 'agent "invoice-agent" may delegate to "mail-agent" and depth 2 ≤ 3',
    });

    const back = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/alice.json', '--agent', 'invoice-agent', '--scope', 'erp:read',
      '--subject-scope', 'mail:read', '--actors', 'mail-agent', '--now', NOW, '--json']);
    expect(back.code).toBe(3);
    expect(JSON.parse(back.out)).toMatchObject({
      outcome: 'deny', error: 'unauthorized_client',
      error_description: 'agent "mail-agent" may not delegate to "invoice-agent" (its delegateTo: none)',
    });
  });

  it('lists every mapping with --all', async () => {
    const res = await cli(['explain', '--config', CONFIG, '--identity', 'config/examples/alice.json', '--agent', 'invoice-agent', '--now', NOW, '--all', '--json']);
    const body = JSON.parse(res.out) as { trace: { roles: { mappings: { index: number; matched: boolean }[]; notConsidered: number } } };
    expect(body.trace.roles.notConsidered).toBe(0);
    expect(body.trace.roles.mappings.map((m) => [m.index, m.matched])).toEqual([[0, true], [1, false], [2, true], [3, false]]);
  });

  it('reports an invalid identity with paths (exit 2)', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, JSON.stringify({ idp: 'okta', groups: [{ id: 'x' }], authTime: 'yesterday' }));
    const res = await cli(['explain', '--config', CONFIG, '--identity', file, '--agent', 'invoice-agent']);
    expect(res.code).toBe(2);
    expect(res.stderr).toEqual([
      '  identity.subject: Invalid input: expected string, received undefined',
      '  identity.groups.0.idp: Invalid input: expected string, received undefined',
      '  identity.authTime: Invalid input: expected number, received string',
    ]);
  });

  it('needs --identity and --agent', async () => {
    const res = await cli(['explain', '--config', CONFIG]);
    expect(res.code).toBe(2);
    expect(res.stderr[0]).toBe('agentgate: explain needs --identity FILE and --agent ID');
  });
});
