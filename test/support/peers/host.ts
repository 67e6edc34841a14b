// Hosting for test peers: one loopback HTTP server standing in for one or more public origins of
// the loopback internet (./internet.ts), dispatching on `x-forwarded-host`, with stop()/start()
// to simulate "the IdP is down" (connection refused) and back up.
//
// Also the internal hop peers use when one public endpoint is served by another (Entra's
// /common token endpoint trying each tenant, Google's oauth2.googleapis.com/token handing the
// code exchange to accounts.google.com): a real HTTP request to the same server, marked so the
// receiving route knows it has already been normalized.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { LoopbackInternet } from './internet.ts';

export interface HostedRequest {
  method: string;
  /** Public URL the request was addressed to. */
  url: string;
  /** Response status (0 until answered). */
  status: number;
  headers: IncomingHttpHeaders;
  /** A peer's own internal hop (see internalRequest). */
  internal: boolean;
}

export interface PeerHost {
  /** The public origins this server stands in for. */
  readonly origins: readonly string[];
  /** Every request received (the most recent 1000), oldest first: what the gateway sent to this peer. */
  readonly requests: readonly HostedRequest[];
  /** Loopback base URL the origins are routed to (changes only if start() cannot get the old port back). */
  readonly target: string;
  readonly running: boolean;
  /** Closes the listening socket and every open connection: requests then fail with ECONNREFUSED. */
  stop(): Promise<void>;
  /** Listens again (same port when it is still free) and re-routes the origins. */
  start(): Promise<void>;
  /** Stops and removes the routes, so another peer may serve these origins. */
  close(): Promise<void>;
}

/** Header marking an internal hop (value: a per-process secret, so no test client can forge it). */
export const INTERNAL_HEADER = 'x-peer-internal';
export const INTERNAL_TOKEN = randomBytes(16).toString('hex');

export function isInternal(req: IncomingMessage): boolean {
  return req.headers[INTERNAL_HEADER] === INTERNAL_TOKEN;
}

/** The public origin a request was addressed to (as set by the loopback internet). */
export function publicOrigin(req: IncomingMessage): string {
  const proto = String(req.headers['x-forwarded-proto'] ?? 'http').split(',')[0]!.trim();
  const host = String(req.headers['x-forwarded-host'] ?? req.headers.host ?? '').split(',')[0]!.trim();
  return `${proto}://${host}`;
}

export async function hostOrigins(internet: LoopbackInternet, apps: Record<string, RequestListener>): Promise<PeerHost> {
  const byHost = new Map(Object.entries(apps).map(([origin, app]) => [new URL(origin).host, app]));
  const origins = Object.keys(apps).map((origin) => new URL(origin).origin);
  const only = byHost.size === 1 ? [...byHost.values()][0] : undefined;
  for (const origin of origins) {
    if (internet.routes.has(origin)) throw new TypeError(`${origin} is already served on this loopback internet (close the other peer first)`);
  }
  const requests: HostedRequest[] = [];

  const server = createServer((req, res) => {
    const host = String(req.headers['x-forwarded-host'] ?? '');
    const entry: HostedRequest = {
      method: req.method ?? 'GET',
      url: `${publicOrigin(req)}${req.url ?? '/'}`,
      status: 0,
      headers: req.headers,
      internal: isInternal(req),
    };
    requests.push(entry);
    if (requests.length > 1000) requests.shift();
    res.on('finish', () => { entry.status = res.statusCode; });
    // No keep-alive: a caller's pooled socket to a peer that stop()ped would otherwise fail its
    // next request with "other side closed" instead of a clean ECONNREFUSED, or fail the first
    // request after start().
    res.shouldKeepAlive = false;
    const app = byHost.get(host) ?? (host === '' ? only : undefined);
    if (!app) {
      res.writeHead(421, { 'content-type': 'text/plain' }).end(`misdirected request for host ${host || '(none)'}`);
      return;
    }
    app(req, res);
  });

  let port = 0;
  let running = false;

  async function listen(wanted: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error) => { server.off('listening', onListening); reject(error); };
      const onListening = () => { server.off('error', onError); resolve(); };
      server.once('error', onError);
      server.once('listening', onListening);
      server.listen(wanted, '127.0.0.1');
    });
    port = (server.address() as AddressInfo).port;
    running = true;
    for (const origin of origins) internet.route(origin, `http://127.0.0.1:${port}`);
  }

  async function stop(): Promise<void> {
    if (!running) return;
    running = false;
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections();
    await closed;
  }

  async function start(): Promise<void> {
    if (running) return;
    try {
      await listen(port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error;
      await listen(0);
    }
  }

  await listen(0);
  return {
    origins,
    requests,
    get target() { return `http://127.0.0.1:${port}`; },
    get running() { return running; },
    stop,
    start,
    async close() {
      await stop();
      for (const origin of origins) {
        if (internet.routes.get(origin) === `http://127.0.0.1:${port}`) internet.unroute(origin);
      }
    },
  };
}

const BODY_LIMIT = 64 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > BODY_LIMIT) throw new Error('request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  return new URLSearchParams((await readBody(req)).toString('utf8'));
}

const HOP_BY_HOP = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'keep-alive', 'expect']);

/**
 * Sends `req` again to this same server (a real loopback request) at `path`, as the public
 * `host`, with the given body and header overrides (null deletes a header), marked internal
 * unless `mark` is false (then the receiving route treats it as it would an outside request).
 */
export async function internalRequest(
  req: IncomingMessage,
  options: { path: string; host?: string; method?: string; body?: string; headers?: Record<string, string | null>; mark?: boolean },
): Promise<Response> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (HOP_BY_HOP.has(name) || value === undefined) continue;
    headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  if (options.host) headers.set('x-forwarded-host', options.host);
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === null) headers.delete(name);
    else headers.set(name, value);
  }
  if (options.mark === false) headers.delete(INTERNAL_HEADER);
  else headers.set(INTERNAL_HEADER, INTERNAL_TOKEN);
  const method = options.method ?? req.method ?? 'GET';
  return fetch(`http://127.0.0.1:${req.socket.localPort}${options.path}`, {
    method,
    headers,
    body: method === 'GET' || method === 'HEAD' ? undefined : options.body,
    redirect: 'manual',
  });
}

/** Copies a fetched response (status, headers including every Set-Cookie, body) onto `res`. */
export async function relay(response: Response, res: ServerResponse): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  res.statusCode = response.status;
  response.headers.forEach((value, name) => {
    if (HOP_BY_HOP.has(name) || name === 'set-cookie' || name === 'content-encoding') return;
    res.setHeader(name, value);
  });
  const cookies = response.headers.getSetCookie();
  if (cookies.length > 0) res.setHeader('set-cookie', cookies);
  res.setHeader('content-length', body.length);
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Decodes the credentials of a client_secret_basic header (RFC 6749 §2.3.1 form-encoding tolerated). */
export function parseBasic(header: string | undefined): { id: string; secret: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon === -1) return undefined;
  const decode = (value: string) => {
    try {
      return decodeURIComponent(value.replace(/\+/g, '%20'));
    } catch {
      return value;
    }
  };
  return { id: decode(decoded.slice(0, colon)), secret: decode(decoded.slice(colon + 1)) };
}

export function basicHeader(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}
