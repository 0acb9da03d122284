/**
 * Probes and status: readiness through its transitions (started, store down,
 * store back, draining), migrations checked, liveness untouched by the store;
 * `/v1/status`; metrics and probes on a separate listener.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startNode, type DroverNode } from '../../src/node/start-node.js';
import { resolveConfig } from '../../src/core/config.js';
import { Readiness, schemaFromStatus, schemaRecheck } from '../../src/obs/health.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

let node: TestNode | null = null;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  await node?.close();
  node = null;
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function ready(n: { app: TestNode['app'] }) {
  const res = await n.app.inject({ method: 'GET', url: '/health/ready' });
  return { status: res.statusCode, body: res.json() as { status: string; checks: Record<string, { ok: boolean; detail?: string }> } };
}

describe('GET /health/ready', () => {
  it('is ready once started, 503 naming the store while it fails, ready again after, and live throughout', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    const up = await ready(node);
    expect(up.status).toBe(200);
    expect(up.body).toEqual({ status: 'ready', checks: { lifecycle: { ok: true }, store: { ok: true }, migrations: { ok: true } } });

    const ping = node.store.ping;
    node.store.ping = async () => {
      throw new Error('connection refused');
    };
    const down = await ready(node);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('not_ready');
    expect(down.body.checks.store).toEqual({ ok: false, detail: 'connection refused' });
    expect(down.body.checks.lifecycle?.ok).toBe(true);
    const live = await node.app.inject({ method: 'GET', url: '/health/live' });
    expect(live.statusCode).toBe(200);

    node.store.ping = ping;
    expect((await ready(node)).status).toBe(200);
  });

  it('turns 503 when the node drains, while liveness stays 200', async () => {
    let release!: () => void;
    const blocker = new Promise<void>((resolve) => (release = resolve));
    node = await startTestNode({ handlers: [{ name: 'slow', run: () => blocker }] });
    const n = node;
    await n.request('POST', '/v1/jobs', { handler: 'slow' });
    await waitFor(() => n.runtime.dispatcher.running.size === 1);
    const stopping = n.runtime.stop(10_000);
    const draining = await ready(n);
    expect(draining.status).toBe(503);
    expect(draining.body.checks.lifecycle).toEqual({ ok: false, detail: 'node is draining' });
    expect((await n.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    release();
    expect((await stopping).drained).toBe(true);
    expect((await ready(n)).body.checks.lifecycle).toEqual({ ok: false, detail: 'node is stopped' });
  });

  it('fails the migrations check when the schema is not the one this binary needs', async () => {
    const readiness = new Readiness({ state: () => 'running', store: { ping: async () => undefined }, schema: schemaFromStatus({ current: 1, latest: 2, applied: [] }) });
    const report = await readiness.check();
    expect(report.ok).toBe(false);
    expect(report.checks.migrations).toEqual({ ok: false, detail: 'schema is at version 1; this binary needs 2' });
  });

  it('times out a store that does not answer', async () => {
    const readiness = new Readiness({ state: () => 'running', store: { ping: () => new Promise(() => undefined) }, timeoutMs: 50 });
    const report = await readiness.check();
    expect(report.checks.store).toEqual({ ok: false, detail: 'store did not answer within 50 ms' });
  });

  it('asks a shared store for its schema version at most once per interval', async () => {
    let now = 0;
    let calls = 0;
    let behind = false;
    const store = {
      migrate: async () => {
        calls++;
        if (behind) throw new Error('the store is at schema version 3, this drover needs 2');
        return { current: 2, latest: 2, applied: [] };
      },
    };
    const check = schemaRecheck(store, 30_000, () => now);
    await check();
    await check();
    expect(calls).toBe(1);
    behind = true;
    now = 30_000;
    await expect(check()).rejects.toThrow(/schema version 3/);
    await expect(check()).rejects.toThrow(/schema version 3/);
    expect(calls).toBe(2);
  });
});

describe('GET /v1/status', () => {
  it('reports version, node id, engine, uptime, handlers, queues, supervision and features', async () => {
    node = await startTestNode({ handlers: [{ name: 'a', queue: 'qa', run: async () => undefined }, { name: 'r', remote: true }], rateLimit: { enabled: false } });
    const res = await node.request('GET', '/v1/status');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      nodeId: node.runtime.workerId,
      state: 'running',
      store: 'sqlite',
      handlers: expect.arrayContaining(['a', 'r']),
      queues: expect.arrayContaining(['default', 'qa']),
      quarantinedHandlers: [],
      openBreakers: [],
      features: { tracing: false, metricsListener: false, rateLimit: false, remoteHandlers: true },
    });
    expect(res.body.uptimeSeconds).toBeGreaterThanOrEqual(0);
  });
});

describe('separate metrics listener (metrics.port)', () => {
  it('serves /metrics and the probes on their own port, and /metrics no longer on the API port', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'drover-metrics-listener-'));
    const config = resolveConfig(
      { databaseUrl: join(dir, 'drover.db'), server: { port: 0 }, handlers: [{ name: 'h', run: async () => undefined }] },
      { DROVER_METRICS_PORT: '0', DROVER_METRICS_HOST: '127.0.0.1' },
    );
    expect(config.metrics).toEqual({ host: '127.0.0.1', port: 0, onApiPort: true });
    const started: DroverNode = await startNode({ config, logger: pino({ level: 'silent' }), bootstrapAdminKey: 'drv_listener_test_key_0123456789', print: () => undefined });
    cleanups.push(async () => {
      await started.shutdown(1_000);
      rmSync(dir, { recursive: true, force: true });
    });
    expect(started.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(started.metricsUrl).not.toBe(started.url);

    const metrics = await fetch(`${started.metricsUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain('drover_jobs_enqueued_total{queue="default",handler="h"} 0');
    expect((await fetch(`${started.metricsUrl}/health/ready`)).status).toBe(200);
    expect((await fetch(`${started.metricsUrl}/health/live`)).status).toBe(200);
    expect((await fetch(`${started.metricsUrl}/v1/status`)).status).toBe(404);

    expect((await fetch(`${started.url}/metrics`)).status).toBe(404);
    expect((await fetch(`${started.url}/health/ready`)).status).toBe(200);
  });

  it('rejects a bad DROVER_METRICS_PORT naming the variable', () => {
    expect(() => resolveConfig({ handlers: [] }, { DROVER_METRICS_PORT: 'nine' })).toThrow(/DROVER_METRICS_PORT: expected an integer from 0 to 65535/);
  });
});
