import express from 'express';
import { describe, expect, it, vi } from 'vitest';
import { createMetrics } from './index.ts';
import { useTestServer } from '../../test/support/http.ts';
import type { Metrics } from './index.ts';

describe('createMetrics', () => {
  const testServer = useTestServer();

  async function start(metrics: Metrics): Promise<string> {
    const app = express();
    // Bounded labels: the one known route, everything else collapses to a constant.
    app.use(metrics.middleware((req) => (req.path === '/x' ? '/x' : '#unmatched')));
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    app.get('/metrics', metrics.handler);
    const base = await testServer.listen(app);
    return `${base}`;
  }

  it('times requests per method, route and status and serves them in the Prometheus format', async () => {
    const metrics = createMetrics();
    const base = await start(metrics);
    for (let i = 0; i < 3; i += 1) expect((await fetch(`${base}/x?code=abc`)).status).toBe(200);
    expect((await fetch(`${base}/nope/123`)).status).toBe(404);

    // Observed on 'finish', which may land just after the client has read the response.
    await vi.waitFor(async () => {
      const text = await metrics.registry.getSingleMetricAsString('agentgate_http_request_duration_seconds');
      expect(text).toContain('agentgate_http_request_duration_seconds_count{method="GET",route="/x",status="200"} 3');
      expect(text).toContain('agentgate_http_request_duration_seconds_count{method="GET",route="#unmatched",status="404"} 1');
    });

    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.registry.contentType);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const text = await res.text();
    expect(text).toContain('agentgate_http_request_duration_seconds_bucket{le="0.005",method="GET",route="/x",status="200"}');
    expect(text).toContain('agentgate_http_request_duration_seconds_bucket{le="5",method="GET",route="/x",status="200"} 3');
    expect(text).toContain('agentgate_http_request_duration_seconds_bucket{le="+Inf",method="GET",route="/x",status="200"} 3');
    expect(text).not.toContain('/nope');
    expect(text).not.toContain('abc');
    // Default process metrics are on the same registry, under the gateway's prefix.
    expect(text).toMatch(/^agentgate_process_cpu_user_seconds_total \d/m);
  });

  it('counts issued tokens and store errors with exact values', async () => {
    const metrics = createMetrics();
    metrics.tokensIssued.inc({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' });
    metrics.tokensIssued.inc({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange' });
    metrics.tokensIssued.inc({ grant_type: 'client_credentials' });
    metrics.storeErrors.inc({ operation: 'consume' }, 4);

    const text = await metrics.registry.metrics();
    expect(text).toContain('agentgate_tokens_issued_total{grant_type="urn:ietf:params:oauth:grant-type:token-exchange"} 2\n');
    expect(text).toContain('agentgate_tokens_issued_total{grant_type="client_credentials"} 1\n');
    expect(text).toContain('agentgate_store_errors_total{operation="consume"} 4\n');
  });

  it('keeps two instances apart (no global registry)', async () => {
    const a = createMetrics();
    const b = createMetrics();
    expect(a.registry).not.toBe(b.registry);
    a.tokensIssued.inc({ grant_type: 'refresh_token' }, 7);

    expect(await a.registry.metrics()).toContain('agentgate_tokens_issued_total{grant_type="refresh_token"} 7\n');
    const other = await b.registry.metrics();
    expect(other).toContain('# TYPE agentgate_tokens_issued_total counter');
    expect(other).not.toContain('agentgate_tokens_issued_total{');
  });

  it('falls back to a constant route label when the label function throws', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const app = express();
    app.use(
      metrics.middleware(() => {
        throw new Error('bug in caller');
      }),
    );
    app.get('/x', (_req, res) => {
      res.json({ ok: true });
    });
    const base = await testServer.listen(app);
    expect((await fetch(`${base}/x`)).status).toBe(200);
    await vi.waitFor(async () => {
      expect(await metrics.registry.metrics()).toContain(
        'agentgate_http_request_duration_seconds_count{method="GET",route="#label-error",status="200"} 1',
      );
    });
  });
});
