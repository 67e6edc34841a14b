import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import { createLogger, requestLogger } from './index.ts';
import { useTestServer } from '../../test/support/http.ts';

type Line = Record<string, unknown>;

function capture(): { lines: Line[]; raw: string[]; stream: { write(msg: string): void } } {
  const raw: string[] = [];
  const lines: Line[] = [];
  return {
    raw,
    lines,
    stream: {
      write(msg: string) {
        raw.push(msg);
        lines.push(JSON.parse(msg) as Line);
      },
    },
  };
}

describe('createLogger', () => {
  it('writes JSON with the service name, ISO time and level names', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.stream });
    logger.info({ n: 1 }, 'hello');
    logger.debug('hidden below level');
    expect(out.lines).toHaveLength(1);
    const line = out.lines[0];
    expect(line).toMatchObject({ level: 'info', service: 'agentgate', n: 1, msg: 'hello' });
    expect(typeof line?.['time']).toBe('string');
    expect(new Date(String(line?.['time'])).toISOString()).toBe(line?.['time']);
  });

  it('redacts credentials in headers and secret-named fields', () => {
    const out = capture();
    const logger = createLogger({ level: 'info', destination: out.stream });
    logger.info(
      {
        req: { headers: { authorization: 'Bearer s3cr3t-at', cookie: 'sid=s3cr3t-cookie', dpop: 's3cr3t-dpop', accept: 'text/html' } },
        res: { headers: { 'set-cookie': ['sid=s3cr3t-set'] } },
        client_secret: 's3cr3t-client',
        body: { token: 's3cr3t-token', grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' },
        form: { nested: { code: 's3cr3t-code', password: 's3cr3t-pw' } },
        jwk: { kty: 'EC', crv: 'P-256', x: 'pub-x', d: 's3cr3t-d' },
      },
      'incoming',
    );
    const raw = out.raw.join('');
    expect(raw).not.toContain('s3cr3t');
    expect(out.lines[0]).toMatchObject({
      req: { headers: { authorization: '[redacted]', cookie: '[redacted]', dpop: '[redacted]', accept: 'text/html' } },
      res: { headers: { 'set-cookie': '[redacted]' } },
      client_secret: '[redacted]',
      body: { token: '[redacted]', grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' },
      form: { nested: { code: '[redacted]', password: '[redacted]' } },
      jwk: { kty: 'EC', crv: 'P-256', x: 'pub-x', d: '[redacted]' },
    });
  });

  it('rejects an unknown level and pretty printing at construction', () => {
    expect(() => createLogger({ level: 'loud' as 'info' })).toThrow(TypeError);
    expect(() => createLogger({ level: 'info', pretty: true as false })).toThrow(/options\.pretty/);
  });
});

describe('requestLogger', () => {
  const testServer = useTestServer();

  async function start(): Promise<{ base: string; out: ReturnType<typeof capture> }> {
    const out = capture();
    const logger = createLogger({ level: 'debug', destination: out.stream });
    const app = express();
    app.use(requestLogger(logger));
    app.get('/token', (req, res) => {
      res.json({ id: req.id });
    });
    app.get('/boom', (_req, res) => {
      res.status(502).json({ error: 'temporarily_unavailable' });
    });
    app.get('/healthz', (_req, res) => {
      res.json({ status: 'ok' });
    });
    const base = await testServer.listen(app);
    return { base: `${base}`, out };
  }

  async function accessLines(out: ReturnType<typeof capture>, count: number): Promise<Line[]> {
    // The server logs on 'finish', which can land just after the client has read the response.
    await vi.waitFor(() => {
      expect(out.lines.filter((l) => l['reqId'] !== undefined)).toHaveLength(count);
    });
    return out.lines.filter((l) => l['reqId'] !== undefined);
  }

  it('logs the pathname only, never the query string, headers or body', async () => {
    const { base, out } = await start();
    const res = await fetch(`${base}/token?code=abc&state=xyz`, {
      headers: { authorization: 'Bearer zzz-secret', cookie: 'sid=zzz-cookie' },
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string };
    const [line] = await accessLines(out, 1);
    expect(line).toMatchObject({
      level: 'info',
      reqId: body.id,
      method: 'GET',
      path: '/token',
      status: 200,
      msg: 'request completed',
    });
    expect(typeof line?.['durationMs']).toBe('number');
    const raw = out.raw.join('');
    expect(raw).not.toContain('abc');
    expect(raw).not.toContain('xyz');
    expect(raw).not.toContain('zzz');
    expect(Object.keys(line ?? {}).sort()).toEqual(
      ['durationMs', 'level', 'method', 'msg', 'path', 'reqId', 'service', 'status', 'time'].sort(),
    );
  });

  it('echoes a valid x-request-id', async () => {
    const { base, out } = await start();
    const res = await fetch(`${base}/token`, { headers: { 'x-request-id': 'abc-123_XYZ.9' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123_XYZ.9');
    expect(await res.json()).toEqual({ id: 'abc-123_XYZ.9' });
    const [line] = await accessLines(out, 1);
    expect(line?.['reqId']).toBe('abc-123_XYZ.9');
  });

  it.each([
    ['characters outside the allowed set', 'bad id"}\\n'],
    ['more than 128 characters', 'a'.repeat(129)],
  ])('replaces an x-request-id with %s', async (_case, incoming) => {
    const { base, out } = await start();
    const res = await fetch(`${base}/token`, { headers: { 'x-request-id': incoming } });
    const echoed = res.headers.get('x-request-id');
    expect(echoed).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await res.json()).toEqual({ id: echoed });
    const [line] = await accessLines(out, 1);
    expect(line?.['reqId']).toBe(echoed);
    expect(out.raw.join('')).not.toContain(incoming);
  });

  it('logs 5xx at error and probes at debug', async () => {
    const { base, out } = await start();
    expect((await fetch(`${base}/boom`)).status).toBe(502);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/missing?token=t`)).status).toBe(404);
    const lines = await accessLines(out, 3);
    const byPath = Object.fromEntries(lines.map((l) => [l['path'], l]));
    expect(byPath['/boom']).toMatchObject({ level: 'error', status: 502 });
    expect(byPath['/healthz']).toMatchObject({ level: 'debug', status: 200 });
    expect(byPath['/missing']).toMatchObject({ level: 'info', status: 404 });
  });
});

describe('scrub', () => {
  it('redacts secret keys down to depth 2, in arrays too, without mutating the input', async () => {
    const { scrub } = await import('./logger.ts');
    const input = {
      token: 't', ok: 1,
      body: { client_secret: 's', nested: { code: 'c', deeper: { token: 'kept at depth 3' } } },
      list: [{ access_token: 'a' }, 'plain'],
      req: { headers: { authorization: 'Bearer x', accept: '*/*' } },
    };
    const snapshot = JSON.stringify(input);
    expect(scrub(input)).toEqual({
      token: '[redacted]', ok: 1,
      body: { client_secret: '[redacted]', nested: { code: '[redacted]', deeper: { token: 'kept at depth 3' } } },
      list: [{ access_token: '[redacted]' }, 'plain'],
      req: { headers: { authorization: '[redacted]', accept: '*/*' } },
    });
    expect(JSON.stringify(input)).toBe(snapshot);
    const clean = { a: { b: 1 } };
    expect(scrub(clean)).toBe(clean);
  });
});
