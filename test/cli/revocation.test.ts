// `agentgate sessions list|revoke` and `agentgate agents disable|enable` against a running gateway:
// they get an admin token by client_credentials and call the admin API; readable tables, clear
// errors, exit codes 0 done / 2 fixable (usage, credentials) / 3 refused (unknown) / 1 unexpected.
import { spawn } from 'node:child_process';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from '../../src/cli/index.ts';
import { freePort } from '../support/redis-server.ts';
import { BIN } from '../support/process.ts';
import { startGateway } from '../support/gateway.ts';
import type { TestGateway } from '../support/gateway.ts';
import { ADMIN, ERP, exchange, introspect, MAIL, revocationConfig, SECRETS, signInPerson } from '../revocation/fixture.ts';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway({ config: revocationConfig() });
});
afterAll(async () => {
  await gw?.close();
});

const credentials = () => ['--url', gw.url, '--client-id', ADMIN, '--client-secret', SECRETS[ADMIN]!];

async function cli(args: string[], env: Record<string, string> = {}, fetcher?: typeof fetch) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(args, {
    env, stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l), serve: async () => 0, version: 'test', ...(fetcher ? { fetch: fetcher } : {}),
  });
  return { code, stdout, stderr };
}

/** The real command as a child process (asynchronously: the gateway runs in this process). */
function command(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += String(d); });
    child.stderr.on('data', (d) => { stderr += String(d); });
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const iso = (epoch: number) => new Date(epoch * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');

describe('agentgate sessions', () => {
  it('list prints a person\'s live sessions as a table; --json prints the API answer', async () => {
    const alice = await signInPerson(gw, { email: 'alice@example.test', groups: 'Finance' });
    const session = (await gw.gateway.sessions.get(alice.sid))!;
    const res = await cli(['sessions', 'list', '--sub', 'dev|alice@example.test', ...credentials()]);
    expect(res).toMatchObject({ code: 0, stderr: [] });
    expect(res.stdout[0]).toBe('1 live session(s) for dev|alice@example.test');
    expect(res.stdout[1]).toBe('');
    expect(res.stdout[2]).toMatch(/^SESSION +IDP +SIGNED IN +EXPIRES +AGENT +SCOPES +AUDIENCE +TOKEN EXPIRES$/);
    expect(res.stdout[3]!.split(/ {2,}/)).toEqual([alice.sid, 'dev', iso(session.createdAt), iso(session.expiresAt), '-']);
    expect(res.stdout).toHaveLength(4);

    const json = await cli(['sessions', 'list', '--sub', 'dev|alice@example.test', '--json', ...credentials()]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout.join('\n'))).toMatchObject({ sessions: [{ sid: alice.sid, sub: 'dev|alice@example.test', idp: 'dev', agents: [] }] });

    const nobody = await cli(['sessions', 'list', '--sub', 'dev|nobody@example.test', ...credentials()]);
    expect(nobody).toEqual({ code: 0, stdout: ['no live sessions for dev|nobody@example.test'], stderr: [] });
  });

  it('list without --sub prints every live session, the total and how to get the next page', async () => {
    const dana = await signInPerson(gw, { email: 'dana@example.test', groups: 'Finance' });
    await exchange(gw, 'agent-a', dana.accessToken, 'erp:read', ERP);
    await exchange(gw, 'agent-a', dana.accessToken, 'mail:read', MAIL);
    const session = (await gw.gateway.sessions.get(dana.sid))!;

    const json = await cli(['sessions', 'list', '--json', ...credentials()]);
    expect(json.code).toBe(0);
    const body = JSON.parse(json.stdout.join('\n')) as { sessions: { sid: string; agents: { expiresAt: number }[] }[]; total: number; next_cursor?: string };
    expect(body).toEqual({ sessions: expect.any(Array), total: body.sessions.length });
    expect(body.total).toBeGreaterThanOrEqual(2);
    const listed = body.sessions.find((s) => s.sid === dana.sid)!;

    const res = await cli(['sessions', 'list', ...credentials()]);
    expect(res).toMatchObject({ code: 0, stderr: [] });
    expect(res.stdout[0]).toMatch(/^SESSION +PERSON +IDP +SIGNED IN +EXPIRES +AGENT +SCOPES +AUDIENCE +TOKEN EXPIRES$/);
    const at = res.stdout.findIndex((line) => line.startsWith(dana.sid));
    expect(res.stdout[at]!.split(/ {2,}/)).toEqual([
      dana.sid, 'dev|dana@example.test', 'dev', iso(session.createdAt), iso(session.expiresAt), 'agent-a', 'erp:read', ERP, iso(listed.agents[0]!.expiresAt),
    ]);
    expect(res.stdout[at + 1]!.trim().split(/ {2,}/)).toEqual(['agent-a', 'mail:read', MAIL, iso(listed.agents[1]!.expiresAt)]);
    expect(res.stdout.slice(-2)).toEqual(['', `${body.total} live sessions`]);

    // A page at a time: the footer says how to get the next one, until the last.
    const seen: string[] = [];
    let args = ['--limit', '1'];
    for (let page = 0; page <= body.total; page += 1) {
      const one = await cli(['sessions', 'list', ...args, ...credentials()]);
      expect(one.code).toBe(0);
      seen.push(one.stdout[1]!.split(' ')[0]!);
      const next = one.stdout.at(-1)!;
      if (!next.startsWith('next page: ')) {
        expect(next).toBe(`${body.total} live sessions`);
        break;
      }
      expect(one.stdout.at(-2)).toBe(`${body.total} live sessions`);
      const cursor = /^next page: agentgate sessions list --cursor ([\w-]+) --limit 1$/.exec(next)?.[1];
      expect(cursor).toBeDefined();
      args = ['--cursor', cursor!, '--limit', '1'];
    }
    expect(seen).toEqual(body.sessions.map((s) => s.sid));

    const bad = await cli(['sessions', 'list', '--cursor', 'nope', ...credentials()]);
    expect(bad).toEqual({ code: 3, stdout: [], stderr: ["agentgate: the gateway refused: invalid_request: the 'cursor' query parameter is not a next_cursor this gateway gave out"] });
  });

  it('list without --sub: no sessions at all, and the next page in --json', async () => {
    const answers: Record<string, unknown>[] = [];
    const requested: string[] = [];
    const fake = (async (input: string | URL | Request) => {
      const url = String(input);
      requested.push(url);
      const body = url.endsWith('/token') ? { access_token: 'admin-token', token_type: 'Bearer' } : answers.shift();
      return new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });
    }) as typeof fetch;
    const args = ['sessions', 'list', '--url', 'https://sso.example.test', '--client-id', ADMIN, '--client-secret', 's'];
    answers.push({ sessions: [], total: 0 });
    expect(await cli(args, {}, fake)).toEqual({ code: 0, stdout: ['no live sessions'], stderr: [] });
    expect(requested.at(-1)).toBe('https://sso.example.test/admin/sessions');
    const page = { sessions: [], total: 3, next_cursor: 'abc' };
    answers.push(page);
    const json = await cli([...args, '--json', '--limit', '2', '--cursor', 'xyz'], {}, fake);
    expect(JSON.parse(json.stdout.join('\n'))).toEqual(page);
    expect(requested.at(-1)).toBe('https://sso.example.test/admin/sessions?limit=2&cursor=xyz');
  });

  it('revoke SID ends one session (its tokens die); an unknown session exits 3', async () => {
    const bob = await signInPerson(gw, { email: 'bob@example.test', groups: 'Finance' });
    const token = await exchange(gw, 'agent-c', bob.accessToken, 'erp:read', ERP);
    const res = await cli(['sessions', 'revoke', bob.sid, ...credentials()]);
    expect(res).toEqual({ code: 0, stdout: [`ended session ${bob.sid}; every token from it is revoked`], stderr: [] });
    expect(await introspect(gw, token)).toEqual({ active: false });

    const again = await cli(['sessions', 'revoke', bob.sid, ...credentials()]);
    expect(again).toEqual({ code: 3, stdout: [], stderr: [`agentgate: the gateway refused: not_found: no live session "${bob.sid}"`] });
  });

  it('revoke --sub ends every session of a person', async () => {
    const one = await signInPerson(gw, { email: 'carol@example.test', groups: 'Finance' });
    const two = await signInPerson(gw, { email: 'carol@example.test', groups: 'Finance' });
    const res = await cli(['sessions', 'revoke', '--sub', 'dev|carol@example.test', ...credentials()]);
    expect(res.code).toBe(0);
    expect(res.stdout).toHaveLength(2);
    expect(res.stdout[0]).toMatch(/^ended 2 session\(s\) of dev\|carol@example\.test: /);
    expect(res.stdout[0]).toContain(one.sid);
    expect(res.stdout[0]).toContain(two.sid);
    expect(res.stdout[1]).toBe('every token issued to dev|carol@example.test until now is revoked');
  });

  it('usage errors exit 2 and say what is missing', async () => {
    expect(await cli(['sessions', 'list', 'extra', ...credentials()])).toMatchObject({
      code: 2, stderr: ["agentgate: sessions list takes no arguments: --sub SUBJECT for a person's sessions, else all of them (--limit N, --cursor C)", expect.any(String)],
    });
    expect((await cli(['sessions', 'list', '--sub', '', ...credentials()])).stderr[0]).toBe('agentgate: sessions list --sub needs a SUBJECT');
    expect((await cli(['sessions', 'list', '--sub', 's', '--limit', '5', ...credentials()])).stderr[0])
      .toBe("agentgate: sessions list --sub lists one person's sessions; --limit and --cursor page through all of them");
    for (const limit of ['0', '201', 'ten', '1.5', '01']) {
      expect(await cli(['sessions', 'list', '--limit', limit, ...credentials()])).toMatchObject({ code: 2, stdout: [], stderr: ['agentgate: sessions list --limit must be a whole number from 1 to 200', expect.any(String)] });
    }
    expect((await cli(['sessions', 'revoke', 'sid', '--cursor', 'c', ...credentials()])).stderr[0]).toBe('agentgate: --limit and --cursor are options of sessions list');
    expect((await cli(['sessions', 'revoke', ...credentials()])).stderr[0]).toBe('agentgate: sessions revoke needs one session id, or --sub SUBJECT for every session of a person');
    expect((await cli(['sessions', 'revoke', 'sid', '--sub', 's', ...credentials()])).code).toBe(2);
    expect((await cli(['sessions', 'purge'])).stderr[0]).toBe('agentgate: unknown sessions command "purge"');
    expect((await cli(['sessions'])).stderr[0]).toBe('agentgate: sessions needs a command: list or revoke');
    expect((await cli(['sessions', 'list', '--sub', 's', '--bogus'])).code).toBe(2);
    expect(await cli(['sessions', 'list', '--sub', 's'])).toEqual({ code: 2, stdout: [], stderr: ['agentgate: the gateway issuer URL is required: --url URL (or $AGENTGATE_URL)'] });
    expect(await cli(['sessions', 'list', '--sub', 's', '--url', gw.url])).toEqual({
      code: 2, stdout: [],
      stderr: ['agentgate: admin client credentials are required: --client-id and --client-secret (or $AGENTGATE_ADMIN_CLIENT_ID and $AGENTGATE_ADMIN_CLIENT_SECRET)'],
    });
    expect((await cli(['sessions', 'list', '--sub', 's', '--url', 'ftp://x', '--client-id', 'a', '--client-secret', 'b'])).stderr).toEqual(['agentgate: --url "ftp://x" is not an http(s) URL']);
  });

  it('refused credentials exit 2; an unreachable gateway exits 1; the secret is never printed', async () => {
    const wrong = await cli(['sessions', 'list', '--sub', 's', '--url', gw.url, '--client-id', ADMIN, '--client-secret', 'wrong-secret-0123456789abcdefghijkl']);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toEqual([`agentgate: the gateway refused the admin credentials of "${ADMIN}" (401 invalid_client: client authentication failed)`]);
    // An agent is no admin client.
    const agent = await cli(['agents', 'disable', 'agent-a', '--url', gw.url, '--client-id', 'agent-c', '--client-secret', SECRETS['agent-c']!]);
    expect(agent.code).toBe(2);
    expect(agent.stderr[0]).toMatch(/^agentgate: the gateway refused the admin credentials of "agent-c" \(400 /);
    expect(JSON.stringify(agent)).not.toContain(SECRETS['agent-c']);

    const port = await freePort();
    const down = await cli(['agents', 'enable', 'agent-a', '--url', `http://127.0.0.1:${port}`, '--client-id', ADMIN, '--client-secret', SECRETS[ADMIN]!]);
    expect(down).toEqual({ code: 1, stdout: [], stderr: [`agentgate: cannot reach the gateway at http://127.0.0.1:${port} (ECONNREFUSED)`] });
  });
});

describe('agentgate agents', () => {
  it('disable and enable flip the kill switch; env credentials work; unknown agents exit 3', async () => {
    const env = { AGENTGATE_URL: gw.url, AGENTGATE_ADMIN_CLIENT_ID: ADMIN, AGENTGATE_ADMIN_CLIENT_SECRET: SECRETS[ADMIN]! };
    const off = await cli(['agents', 'disable', 'agent-b'], env);
    expect(off.code).toBe(0);
    expect(off.stdout).toHaveLength(1);
    expect(off.stdout[0]).toMatch(/^disabled agent agent-b at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ: it gets no tokens, and every token it held or delegated onward is revoked$/);
    expect(await gw.store.get('agent:disabled:agent-b')).not.toBeNull();

    const on = await cli(['agents', 'enable', 'agent-b', '--json'], env);
    expect(on.code).toBe(0);
    expect(JSON.parse(on.stdout.join('\n'))).toEqual({ clientId: 'agent-b', disabled: false, at: expect.any(Number) });
    expect(await gw.store.get('agent:disabled:agent-b')).toBeNull();

    const unknown = await cli(['agents', 'disable', 'ghost'], env);
    expect(unknown).toEqual({ code: 3, stdout: [], stderr: ['agentgate: the gateway refused: not_found: no agent "ghost" is configured'] });
    expect((await cli(['agents', 'disable'], env)).stderr[0]).toBe('agentgate: agents disable needs exactly one agent client id');
    expect((await cli(['agents', 'pause', 'x'], env)).stderr[0]).toBe('agentgate: unknown agents command "pause"');
  });

  it('the installed command runs the same (bin/agentgate.js, exit codes)', async () => {
    const env = { AGENTGATE_ADMIN_CLIENT_ID: ADMIN, AGENTGATE_ADMIN_CLIENT_SECRET: SECRETS[ADMIN]! };
    const off = await command(['agents', 'disable', 'agent-b', '--url', gw.url], env);
    expect(off.code).toBe(0);
    expect(off.stdout).toMatch(/^disabled agent agent-b at /);
    const on = await command(['agents', 'enable', 'agent-b', '--url', gw.url], env);
    expect(on.code).toBe(0);
    expect(on.stdout).toMatch(/^enabled agent agent-b at .*: new tokens work; tokens issued before it was disabled stay revoked\n$/);
    const unknown = await command(['agents', 'enable', 'ghost', '--url', gw.url], env);
    expect(unknown).toEqual({ code: 3, stdout: '', stderr: 'agentgate: the gateway refused: not_found: no agent "ghost" is configured\n' });
  });
});
