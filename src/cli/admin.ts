// `agentgate sessions …` and `agentgate agents …`: the admin API's revocation surface from a
// terminal (issue 6). Each run gets an admin token by client_credentials (scope agentgate:admin,
// client_secret_basic with RFC 6749 §2.3.1 encoding) and calls {issuer}/admin over HTTP, so the
// command works against any replica and is audited like any admin client. The secret comes from
// --client-secret or $AGENTGATE_ADMIN_CLIENT_SECRET and is never printed.
//
// Exit codes: 0 done; 2 a problem you can fix (usage, missing or refused admin credentials);
// 3 the gateway refused the operation (unknown session or agent, a stale cursor); 1 unexpected
// (unreachable, 5xx).
import { parseArgs } from 'node:util';

export interface AdminCliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  fetch?: typeof fetch;
}

const EXIT_FIXABLE = 2;
const EXIT_REFUSED = 3;
const EXIT_UNEXPECTED = 1;

const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  'client-id': { type: 'string' },
  'client-secret': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** A failure with the exit code it maps to and a message for stderr. */
class CliFailure extends Error {
  readonly exitCode: number;

  constructor(exitCode: number, message: string) {
    super(message);
    this.name = 'CliFailure';
    this.exitCode = exitCode;
  }
}

interface Connection {
  url: string;
  clientId: string;
  clientSecret: string;
  fetch: typeof fetch;
}

function connection(values: { url?: string; 'client-id'?: string; 'client-secret'?: string }, io: AdminCliIo): Connection {
  const url = values.url ?? io.env.AGENTGATE_URL;
  const clientId = values['client-id'] ?? io.env.AGENTGATE_ADMIN_CLIENT_ID;
  const clientSecret = values['client-secret'] ?? io.env.AGENTGATE_ADMIN_CLIENT_SECRET;
  if (!url) throw new CliFailure(EXIT_FIXABLE, 'the gateway issuer URL is required: --url URL (or $AGENTGATE_URL)');
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new TypeError('not http(s)');
  } catch {
    throw new CliFailure(EXIT_FIXABLE, `--url "${url}" is not an http(s) URL`);
  }
  if (!clientId || !clientSecret) {
    throw new CliFailure(EXIT_FIXABLE, 'admin client credentials are required: --client-id and --client-secret (or $AGENTGATE_ADMIN_CLIENT_ID and $AGENTGATE_ADMIN_CLIENT_SECRET)');
  }
  return { url: url.replace(/\/+$/, ''), clientId, clientSecret, fetch: io.fetch ?? fetch };
}

async function call(conn: Connection, url: string, init: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  let res: Response;
  try {
    res = await conn.fetch(url, init);
  } catch (error) {
    const reason = (error as { cause?: { code?: string; message?: string } }).cause;
    throw new CliFailure(EXIT_UNEXPECTED, `cannot reach the gateway at ${conn.url} (${reason?.code ?? reason?.message ?? (error as Error).message})`);
  }
  const text = await res.text();
  if (!text) return { status: res.status, body: {} };
  try {
    return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
  } catch {
    throw new CliFailure(EXIT_UNEXPECTED, `the gateway answered ${res.status} with a body that is not JSON (is ${conn.url} the issuer URL?)`);
  }
}

const oauthMessage = (body: Record<string, unknown>) =>
  typeof body.error === 'string' ? `${body.error}${typeof body.error_description === 'string' ? `: ${body.error_description}` : ''}` : 'no error description';

async function adminToken(conn: Connection): Promise<string> {
  const basic = Buffer.from(`${encodeURIComponent(conn.clientId)}:${encodeURIComponent(conn.clientSecret)}`).toString('base64');
  const { status, body } = await call(conn, `${conn.url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'agentgate:admin' }),
  });
  if (status === 200 && typeof body.access_token === 'string') return body.access_token;
  if (status >= 400 && status < 500) {
    throw new CliFailure(EXIT_FIXABLE, `the gateway refused the admin credentials of "${conn.clientId}" (${status} ${oauthMessage(body)})`);
  }
  throw new CliFailure(EXIT_UNEXPECTED, `the gateway could not issue an admin token (${status} ${oauthMessage(body)})`);
}

async function admin(conn: Connection, method: string, path: string): Promise<Record<string, unknown>> {
  const token = await adminToken(conn);
  const { status, body } = await call(conn, `${conn.url}/admin${path}`, { method, headers: { authorization: `Bearer ${token}` } });
  if (status >= 200 && status < 300) return body;
  if (status === 401 || status === 403) throw new CliFailure(EXIT_FIXABLE, `the admin API refused client "${conn.clientId}" (${status} ${oauthMessage(body)})`);
  if (status === 404 || status === 400) throw new CliFailure(EXIT_REFUSED, `the gateway refused: ${oauthMessage(body)}`);
  throw new CliFailure(EXIT_UNEXPECTED, `the admin API failed (${status} ${oauthMessage(body)})`);
}

/** Seconds since the epoch as `2026-11-27 13:05:00Z`. */
const time = (epoch: unknown) => (typeof epoch === 'number' ? new Date(epoch * 1000).toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z') : '-');

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)];
}

interface ListedSession {
  sid: string;
  sub: string;
  idp: string;
  createdAt: number;
  expiresAt: number;
  agents: { clientId: string; scopes: string[]; audience: string; expiresAt: number }[];
}

/** One row per agent of each session (a session without agents: one row, agent `-`). */
function sessionTable(sessions: ListedSession[], withPerson: boolean): string[] {
  const rows: string[][] = [];
  for (const session of sessions) {
    const head = [session.sid, ...(withPerson ? [session.sub] : []), session.idp, time(session.createdAt), time(session.expiresAt)];
    const blank = head.map(() => '');
    if (session.agents.length === 0) rows.push([...head, '-', '', '', '']);
    session.agents.forEach((agent, i) => {
      rows.push([...(i === 0 ? head : blank), agent.clientId, agent.scopes.join(' '), agent.audience, time(agent.expiresAt)]);
    });
  }
  return formatTable(['SESSION', ...(withPerson ? ['PERSON'] : []), 'IDP', 'SIGNED IN', 'EXPIRES', 'AGENT', 'SCOPES', 'AUDIENCE', 'TOKEN EXPIRES'], rows);
}

function formatSessions(sub: string, sessions: ListedSession[]): string[] {
  if (sessions.length === 0) return [`no live sessions for ${sub}`];
  return [`${sessions.length} live session(s) for ${sub}`, '', ...sessionTable(sessions, false)];
}

/** A page of all live sessions: the table, the total and, when more follow, how to get them. */
function formatPage(body: Record<string, unknown>, limit: string | undefined): string[] {
  const sessions = (body.sessions ?? []) as ListedSession[];
  const total = typeof body.total === 'number' ? body.total : sessions.length;
  if (total === 0 && sessions.length === 0) return ['no live sessions'];
  const lines = sessions.length > 0 ? [...sessionTable(sessions, true), ''] : [];
  lines.push(`${total} live session${total === 1 ? '' : 's'}`);
  if (typeof body.next_cursor === 'string') {
    lines.push(`next page: agentgate sessions list --cursor ${body.next_cursor}${limit === undefined ? '' : ` --limit ${limit}`}`);
  }
  return lines;
}

/** 1 to 200, as the admin API takes it (said here, before any request). */
const PAGE_LIMIT = /^(?:[1-9]\d?|1\d\d|200)$/;

async function sessionsCommand(args: readonly string[], io: AdminCliIo, usage: (problem: string) => number): Promise<number> {
  const [sub, ...rest] = args;
  const { values, positionals } = parseArgs({
    args: [...rest], strict: true, allowPositionals: true,
    options: { ...CONNECTION_OPTIONS, sub: { type: 'string' }, limit: { type: 'string' }, cursor: { type: 'string' } },
  });
  if (sub === 'list') {
    if (positionals.length > 0) return usage("sessions list takes no arguments: --sub SUBJECT for a person's sessions, else all of them (--limit N, --cursor C)");
    if (values.sub === '') return usage('sessions list --sub needs a SUBJECT');
    if (values.sub !== undefined && (values.limit !== undefined || values.cursor !== undefined)) {
      return usage("sessions list --sub lists one person's sessions; --limit and --cursor page through all of them");
    }
    if (values.limit !== undefined && !PAGE_LIMIT.test(values.limit)) return usage('sessions list --limit must be a whole number from 1 to 200');
    const conn = connection(values, io);
    if (values.sub === undefined) {
      const query = new URLSearchParams({ ...(values.limit ? { limit: values.limit } : {}), ...(values.cursor !== undefined ? { cursor: values.cursor } : {}) });
      const body = await admin(conn, 'GET', `/sessions${query.size ? `?${query}` : ''}`);
      for (const line of values.json ? [JSON.stringify(body, null, 2)] : formatPage(body, values.limit)) io.stdout(line);
      return 0;
    }
    const body = await admin(conn, 'GET', `/sessions?${new URLSearchParams({ sub: values.sub })}`);
    const sessions = (body.sessions ?? []) as ListedSession[];
    for (const line of values.json ? [JSON.stringify(body, null, 2)] : formatSessions(values.sub, sessions)) io.stdout(line);
    return 0;
  }
  if (values.limit !== undefined || values.cursor !== undefined) return usage('--limit and --cursor are options of sessions list');
  if (sub === 'revoke') {
    if ((positionals.length === 1) === Boolean(values.sub) || positionals.length > 1) {
      return usage('sessions revoke needs one session id, or --sub SUBJECT for every session of a person');
    }
    const conn = connection(values, io);
    if (values.sub) {
      const body = await admin(conn, 'DELETE', `/subjects/${encodeURIComponent(values.sub)}/sessions`);
      const ended = (body.ended ?? []) as string[];
      if (values.json) io.stdout(JSON.stringify(body, null, 2));
      else {
        io.stdout(`ended ${ended.length} session(s) of ${values.sub}${ended.length ? `: ${ended.join(', ')}` : ''}`);
        io.stdout(`every token issued to ${values.sub} until now is revoked`);
      }
      return 0;
    }
    const sid = positionals[0]!;
    await admin(conn, 'DELETE', `/sessions/${encodeURIComponent(sid)}`);
    io.stdout(values.json ? JSON.stringify({ ended: [sid] }, null, 2) : `ended session ${sid}; every token from it is revoked`);
    return 0;
  }
  return usage(sub ? `unknown sessions command "${sub}"` : 'sessions needs a command: list or revoke');
}

async function agentsCommand(args: readonly string[], io: AdminCliIo, usage: (problem: string) => number): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'disable' && sub !== 'enable') return usage(sub ? `unknown agents command "${sub}"` : 'agents needs a command: disable or enable');
  const { values, positionals } = parseArgs({ args: [...rest], strict: true, allowPositionals: true, options: CONNECTION_OPTIONS });
  if (positionals.length !== 1) return usage(`agents ${sub} needs exactly one agent client id`);
  const clientId = positionals[0]!;
  const conn = connection(values, io);
  const body = await admin(conn, 'POST', `/agents/${encodeURIComponent(clientId)}/${sub}`);
  if (values.json) {
    io.stdout(JSON.stringify(body, null, 2));
  } else if (sub === 'disable') {
    io.stdout(`disabled agent ${clientId} at ${time(body.at)}: it gets no tokens, and every token it held or delegated onward is revoked`);
  } else {
    io.stdout(`enabled agent ${clientId} at ${time(body.at)}: new tokens work; tokens issued before it was disabled stay revoked`);
    if (body.disabled === true) io.stdout(`note: agent ${clientId} is still disabled in the config (agents[].disabled)`);
  }
  return 0;
}

/** Runs `sessions …` or `agents …`; resolves to the exit code. */
export async function runAdminCommand(command: 'sessions' | 'agents', args: readonly string[], io: AdminCliIo, usage: (problem: string) => number): Promise<number> {
  try {
    return command === 'sessions' ? await sessionsCommand(args, io, usage) : await agentsCommand(args, io, usage);
  } catch (error) {
    if (!(error instanceof CliFailure)) throw error;
    io.stderr(`agentgate: ${error.message}`);
    return error.exitCode;
  }
}
