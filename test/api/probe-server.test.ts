/**
 * The worker-only node's probe server (`node:http`, no Fastify) answers like
 * the Fastify metrics server it replaced: same statuses, headers and bodies
 * for the probes, `/metrics`, unknown routes and HEAD; its requests are
 * counted in `drover_http_*`; once closing it answers 503. That Fastify is not
 * loaded at all is checked in a child process (test/e2e/lazy-modules.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ProbeServer } from '../../src/api/probe-server.js';
import { buildMetricsServer } from '../../src/api/routes/metrics.js';
import { probeRoutes } from '../../src/api/routes/probes.js';
import { resolveConfig } from '../../src/core/config.js';
import { startNode, type WorkerOnlyNode } from '../../src/node/start-node.js';
import { waitFor } from '../helpers/wait-for.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function workerOnlyNode(env: Record<string, string> = {}): Promise<WorkerOnlyNode> {
  const dir = mkdtempSync(join(tmpdir(), 'drover-probe-server-'));
  const config = resolveConfig({ databaseUrl: join(dir, 'drover.db'), server: { port: 0 }, handlers: [{ name: 'h', run: async () => undefined }] }, env);
  const node = await startNode({ config, api: false, logger: pino({ level: 'silent' }), bootstrapAdminKey: 'drv_probe_server_test_key_0123456789', print: () => undefined });
  cleanups.push(async () => {
    await node.shutdown(1_000);
    rmSync(dir, { recursive: true, force: true });
  });
  return node;
}

/** Headers that differ between any two answers. */
const VARYING = new Set(['date', 'connection', 'keep-alive', 'content-length']);

async function call(base: string, method: string, path: string): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${base}${path}`, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const headers = Object.fromEntries(Object.entries(res.headers).filter(([name]) => !VARYING.has(name)).map(([name, value]) => [name, String(value)]));
        resolve({ status: res.statusCode ?? 0, headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the worker-only probe server', () => {
  it('answers the probes, /metrics, HEAD and unknown routes as the Fastify metrics server does', async () => {
    const node = await workerOnlyNode();
    expect(node.app).toBeInstanceOf(ProbeServer);
    const fastify = await buildMetricsServer({ runtime: node.runtime, metrics: node.metrics });
    const fastifyUrl = await fastify.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => fastify.close());
    const probes = new ProbeServer({ routes: probeRoutes({ runtime: node.runtime, metrics: node.metrics }), metrics: node.metrics, logger: pino({ level: 'silent' }) });
    const probesUrl = await probes.listen({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => probes.close());

    // Each server counts its requests in its own ids: call both the same number of times.
    for (const [method, path] of [
      ['GET', '/health/live'],
      ['GET', '/health/ready'],
      ['GET', '/health/live?probe=1'],
      ['HEAD', '/health/live'],
      ['GET', '/v1/jobs'],
      ['POST', '/health/live'],
      ['HEAD', '/nowhere?x=1'],
      ['GET', '/health/live/'],
    ] as const) {
      const [expected, actual] = [await call(fastifyUrl, method, path), await call(probesUrl, method, path)];
      expect(actual, `${method} ${path}`).toEqual(expected);
    }
    const [expected, actual] = [await call(fastifyUrl, 'GET', '/metrics'), await call(probesUrl, 'GET', '/metrics')];
    expect(actual.status).toBe(200);
    expect(actual.headers).toEqual(expected.headers);
    expect(actual.body).toContain('drover_jobs_enqueued_total{queue="default",handler="h"} 0');
    // Both servers record into the node's registry, by route template.
    expect(actual.body).toMatch(/drover_http_requests_total\{method="GET",route="\/health\/live",status="200"\} [1-9]/);
    expect(actual.body).toMatch(/drover_http_requests_total\{method="POST",route="unmatched",status="404"\} [1-9]/);
  });

  it('is what a worker-only node listens with, on its port and on metrics.port', async () => {
    const node = await workerOnlyNode({ DROVER_METRICS_PORT: '0', DROVER_METRICS_HOST: '127.0.0.1' });
    expect(node.metricsApp).toBeInstanceOf(ProbeServer);
    for (const base of [node.url, node.metricsUrl!]) {
      expect((await call(base, 'GET', '/health/ready')).status).toBe(200);
      expect((await call(base, 'GET', '/metrics')).body).toContain('drover_jobs_');
    }
  });

  it('answers 503 to a request that arrives once it is closing, as Fastify does', async () => {
    const node = await workerOnlyNode();
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let arrived = false;
    const slow = async () => {
      arrived = true;
      await held;
      return { status: 200, json: { status: 'ok' } };
    };
    const routes = new Map([
      ['/slow', slow],
      ['/health/live', probeRoutes({ runtime: node.runtime, metrics: node.metrics }).get('/health/live')!],
    ]);
    const probes = new ProbeServer({ routes, metrics: node.metrics, logger: pino({ level: 'silent' }) });
    const url = new URL(await probes.listen({ host: '127.0.0.1', port: 0 }));
    // A request in flight when the server starts closing is answered; the next one on its connection gets 503.
    const socket = connect(Number(url.port), url.hostname);
    let received = '';
    socket.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n\r\n');
    await waitFor(() => arrived, { timeoutMs: 5_000, message: 'the first request' });
    const closed = probes.close();
    socket.write('GET /health/live HTTP/1.1\r\nhost: x\r\n\r\n');
    release();
    await waitFor(() => /HTTP\/1\.1 503[\s\S]*Service Unavailable/.test(received) || undefined, { timeoutMs: 5_000, message: 'the 503' });
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
    socket.destroy();
  });
});
