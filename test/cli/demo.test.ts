// Demo mode (issue 9): `agentgate demo walkthrough` runs the whole story against the demo config
// served in-process on a free loopback port — sign-in through the picker and the built-in demo
// IdP over real HTTP, two agents, a sub-agent, a refused escalation with its explanation, logout,
// every token rejected — and every step is asserted here. The demo refuses production mode.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';
import { loadConfigFile, parseConfig } from '../../src/config/index.ts';
import type { ConfigError } from '../../src/config/index.ts';
import { walkthrough } from '../../src/main.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'agentgate-demo-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(args: string[], color = false) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const io = { stdout: (l: string) => stdout.push(l), stderr: (l: string) => stderr.push(l) };
  const code = await runCli(args, {
    env: {}, ...io, version: '9.9.9',
    serve: async () => 0,
    walkthrough: (path) => walkthrough(path, { ...io, color, env: {} }),
  });
  return { code, stdout, stderr, text: stdout.join('\n') };
}

describe('agentgate demo walkthrough', () => {
  it('runs every step of the story and exits 0', async () => {
    const res = await cli(['demo', 'walkthrough', '--config', 'config/demo.yaml']);
    expect(res.stderr).toEqual([]);
    expect(res.code).toBe(0);
    const titles = res.stdout.filter((line) => /^\d+\. /.test(line));
    expect(titles).toEqual([
      '1. Alice Finance signs in to the agent console through the picker and the demo IdP',
      '2. Invoice agent exchanges the person\'s token for a narrow ERP token',
      '3. Mail agent exchanges the same token for a different narrow mail token, once the person consents',
      '4. Invoice agent delegates to the sub-agent Report agent (a sub-agent of the invoice agent)',
      '5. Mail agent tries to escalate to mail:send and is refused, with the policy\'s explanation',
      '6. Alice Finance signs out of the gateway (RP-initiated logout)',
      '7. Every agent token from that session is now rejected (RFC 7662 introspection)',
    ]);
    expect(res.stdout.filter((line) => line === '   ✓ ok')).toHaveLength(7);
    expect(res.stdout.at(-1)).toBe('walkthrough complete: 7 steps passed');
    // No colours off a TTY.
    expect(res.text).not.toContain('\u001b[');
    // Step 1: through the gateway's picker, then the demo IdP's own page, federated over OIDC.
    expect(res.text).toMatch(/→ picker at \/interaction\/[\w-]+: "Sign in with Demo IdP"/);
    expect(res.text).toMatch(/→ Demo IdP at \/demo-idp\/interaction\/[\w-]+: chose alice/);
    expect(res.text).toMatch(/"iss": "http:\/\/127\.0\.0\.1:\d+"/);
    expect(res.text).toContain('"sub": "demo|alice"');
    expect(res.text).toContain('"idp": "demo"');
    // Steps 2–4: different narrow tokens, the sub-agent's with the nested actor chain.
    const block = (n: number) => res.text.slice(res.text.indexOf(`${n}. `), res.text.indexOf(`${n + 1}. `));
    expect(block(2)).toContain('"client_id": "invoice-agent"');
    expect(block(2)).toContain('"scope": "erp:read"');
    expect(block(2)).toContain('"aud": "https://erp.demo.agentgate.test"');
    expect(block(3)).toContain('→ 400 consent_required: the person has not yet approved agent "mail-agent" for mail:read at https://mail.demo.agentgate.test; send them to consent_uri, then retry');
    expect(block(3)).toContain('→ the person opens consent_uri: "Allow Mail agent to act for you?" (read your mail) and chooses Allow');
    expect(block(3)).toContain('"client_id": "mail-agent"');
    expect(block(3)).toContain('"scope": "mail:read"');
    expect(block(3)).toContain('"aud": "https://mail.demo.agentgate.test"');
    expect(block(4).replace(/\s+/g, ' ')).toContain('"act": { "sub": "report-agent", "act": { "sub": "invoice-agent" } }');
    // Step 5: the exact refusal and the policy's trace.
    expect(block(5)).toContain('"error": "invalid_scope"');
    expect(block(5)).toContain('DENY   invalid_scope: scope "mail:send" is outside the scopes registered for agent "mail-agent"');
    expect(block(5)).toContain('roleMappings[1] +mail-user: member of group id "Staff"');
    // Step 7: all three agent tokens inactive.
    for (const agent of ['invoice-agent', 'mail-agent', 'report-agent']) expect(res.text).toContain(`   ${agent}: {"active":false}`);
    // Never a secret or a token.
    const demo = await readFile('config/demo.yaml', 'utf8');
    for (const secret of demo.match(/demo-[\w-]+-secret-\w+/g) ?? []) expect(res.text).not.toContain(secret);
    expect(res.text).not.toMatch(/eyJ[\w-]+\.eyJ/);
  }, 60_000);

  it('colours its output on a TTY', async () => {
    const res = await cli(['demo', 'walkthrough'], true);
    expect(res.code).toBe(0);
    expect(res.text).toContain('\u001b[32m');
  }, 60_000);

  it('refuses a production-mode config, naming the path', async () => {
    const file = join(dir, 'prod.yaml');
    const demo = await readFile('config/demo.yaml', 'utf8');
    await writeFile(file, demo.replace('mode: development', 'mode: production'));
    const res = await cli(['demo', 'walkthrough', '--config', file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContainEqual('  demoIdp.enabled: the built-in demo identity provider is refused in production mode (it signs anyone in with one click); set mode: development to run the demo');
    expect(res.stdout).toEqual([]);
  });

  it('usage errors exit 2', async () => {
    expect((await cli(['demo'])).code).toBe(2);
    expect((await cli(['demo', 'tour'])).stderr[0]).toBe('agentgate: unknown demo command "tour"');
  });
});

describe('demoIdp config', () => {
  it('is federated as an ordinary OIDC identity provider at {issuer}/demo-idp', async () => {
    const config = await loadConfigFile('config/demo.yaml');
    expect(config.identityProviders).toEqual([expect.objectContaining({
      id: 'demo', type: 'oidc', preset: 'generic', issuer: 'http://localhost:8080/demo-idp', clientId: 'agentgate',
      domains: ['demo.agentgate.test'], upstreamLogout: false, claims: { groups: 'groups' },
    })]);
  });

  it('checks its people and its id', () => {
    const base = 'mode: development\nissuer: http://localhost:8080\nstore: { driver: memory }\nkeys: { generate: true }\n';
    const problems = (text: string) => {
      try {
        parseConfig(text);
        return [];
      } catch (error) {
        return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(problems(`${base}demoIdp: { enabled: true }\n`)).toEqual(['demoIdp.people: needs at least one person to sign in as']);
    expect(problems(`${base}demoIdp: { enabled: true, people: [{ username: a, name: A, email: a@x.test }, { username: a, name: B, email: b@x.test }] }\n`))
      .toEqual(['demoIdp.people[1].username: duplicate demo person "a"']);
    expect(problems(`${base}demoIdp: { enabled: true, people: [{ username: a, name: A, email: a@x.test }] }
identityProviders: [{ id: demo, type: oidc, preset: generic, issuer: https://idp.example.test, clientId: c, clientSecret: s }]\n`))
      .toEqual(['demoIdp.id: "demo" is already the id of a configured identity provider']);
  });
});
