/**
 * OTLP export against a real OTLP/HTTP receiver started here (a small HTTP
 * server that decodes the JSON encoding of ExportMetricsServiceRequest and
 * ExportTraceServiceRequest and checks it against opentelemetry-proto's
 * metrics/v1 field rules), from real nodes (child processes): metrics arrive
 * with the node's series; a collector that refuses or is unreachable is
 * counted in drover_errors_total{layer="telemetry"} with a warning; and
 * SIGTERM does not sit out the trace exporter's retries (~8 s before).
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DroverMetrics, JOB_BUCKETS } from '../../src/obs/metrics.js';
import { toOtlpMetric } from '../../src/obs/otlp-metrics.js';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { parseExposition } from './exposition.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const KEY = 'drv_otlp_metrics_key_0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'drover-otlp-metrics-'));
const servers: Server[] = [];
afterEach(async () => {
  await killAllChildren();
  for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Any = Record<string, any>;
const U64 = /^\d+$/;

/** The rules of opentelemetry-proto metrics/v1 that a JSON sender can get wrong. */
function checkMetricsRequest(body: Any): string[] {
  const problems: string[] = [];
  for (const rm of body.resourceMetrics ?? []) {
    if (!Array.isArray(rm.resource?.attributes)) problems.push('resource.attributes missing');
    for (const sm of rm.scopeMetrics ?? []) {
      for (const m of sm.metrics ?? []) {
        const kinds = ['sum', 'gauge', 'histogram'].filter((k) => k in m);
        if (kinds.length !== 1) problems.push(`${m.name}: one data field expected, got ${kinds.join(',')}`);
        const data = m[kinds[0]!];
        for (const p of data.dataPoints) {
          if (!U64.test(p.timeUnixNano) || !U64.test(p.startTimeUnixNano)) problems.push(`${m.name}: fixed64 times must be decimal strings`);
          for (const a of p.attributes) if (typeof a.key !== 'string' || !a.value || !('stringValue' in a.value)) problems.push(`${m.name}: bad attribute`);
          if (kinds[0] === 'histogram') {
            if (p.bucketCounts.length !== p.explicitBounds.length + 1) problems.push(`${m.name}: bucketCounts must be explicitBounds + 1`);
            const sum = p.bucketCounts.reduce((n: number, c: string) => n + Number(c), 0);
            if (String(sum) !== p.count) problems.push(`${m.name}: bucket counts add up to ${sum}, count is ${p.count}`);
          } else if (typeof p.asDouble !== 'number') problems.push(`${m.name}: asDouble must be a number`);
        }
        if (kinds[0] !== 'gauge' && data.aggregationTemporality !== 2) problems.push(`${m.name}: cumulative temporality expected`);
      }
    }
  }
  return problems;
}

/** An OTLP/HTTP receiver: `status` decides the answer to /v1/metrics. */
async function receiver(status = 200): Promise<{ url: string; metrics: Any[]; spans: number; problems: string[] }> {
  const state = { url: '', metrics: [] as Any[], spans: 0, problems: [] as string[] };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      if (!/application\/json/.test(String(req.headers['content-type']))) state.problems.push(`content-type ${req.headers['content-type']}`);
      const parsed = JSON.parse(body) as Any;
      if (req.url === '/v1/metrics') {
        state.problems.push(...checkMetricsRequest(parsed));
        if (status === 200) state.metrics.push(parsed);
        res.writeHead(status, { 'content-type': 'application/json' }).end('{}');
      } else {
        state.spans += (parsed.resourceSpans ?? []).flatMap((rs: Any) => rs.scopeSpans.flatMap((ss: Any) => ss.spans)).length;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

const point = (requests: Any[], name: string, attrs: Record<string, string>): Any | undefined => {
  for (const request of [...requests].reverse()) {
    for (const m of request.resourceMetrics[0].scopeMetrics[0].metrics) {
      if (m.name !== name) continue;
      const data = m.sum ?? m.gauge ?? m.histogram;
      const found = data.dataPoints.find((p: Any) => Object.entries(attrs).every(([k, v]) => p.attributes.some((a: Any) => a.key === k && a.value.stringValue === v)));
      if (found) return found;
    }
  }
  return undefined;
};

const telemetryErrors = async (url: string, kind: string) => parseExposition(await (await fetch(`${url}/metrics`)).text()).value('drover_errors_total', { layer: 'telemetry', kind });

describe('OTLP metrics', () => {
  it('turn Prometheus histograms into OTLP explicit buckets (per bucket, not cumulative)', async () => {
    const metrics = new DroverMetrics({ handlers: [{ name: 'h', queue: 'q' }], queues: ['q'], engine: 'sqlite' });
    for (const seconds of [0.003, 0.04, 0.04, 7200]) metrics.jobDuration.series('h', 'succeeded').observe(seconds);
    const json = (await metrics.registry.getMetricsAsJSON()).find((m) => m.name === 'drover_job_duration_seconds')!;
    const otlp = toOtlpMetric(json as never, '1', '2') as Any;
    const p = otlp.histogram.dataPoints.find((d: Any) => d.attributes.some((a: Any) => a.value.stringValue === 'succeeded'));
    expect(p.explicitBounds).toEqual([...JOB_BUCKETS]);
    expect(p.count).toBe('4');
    expect(p.bucketCounts[0]).toBe('1'); // 3 ms ≤ 5 ms
    expect(p.bucketCounts[JOB_BUCKETS.indexOf(0.05)]).toBe('2');
    expect(p.bucketCounts.at(-1)).toBe('1'); // 2 h: above the last bound
    expect(checkMetricsRequest({ resourceMetrics: [{ resource: { attributes: [] }, scopeMetrics: [{ metrics: [otlp] }] }] })).toEqual([]);
  });

  it('reach a real receiver from a node, with the node\'s series', { timeout: 60_000 }, async () => {
    const otlp = await receiver();
    const node = await startChildNode({
      config: CONFIG,
      env: { DROVER_DATABASE_URL: join(dir, 'ok.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url, OTEL_METRIC_EXPORT_INTERVAL: '200', OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_SERVICE_NAME: 'drover-otlp-metrics' },
    });
    expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'hello.world', data: { who: 'otlp' } })).status).toBe(202);
    const done = await waitFor(() => point(otlp.metrics, 'drover_jobs_completed_total', { handler: 'greet', outcome: 'succeeded' })?.asDouble === 1, { timeoutMs: 20_000, message: 'the completed job counted at the receiver' });
    expect(done).toBe(true);
    expect(point(otlp.metrics, 'drover_job_duration_seconds', { handler: 'greet', outcome: 'succeeded' })?.count).toBe('1');
    expect(point(otlp.metrics, 'drover_process_resident_memory_bytes', {})?.asDouble).toBeGreaterThan(0);
    const service = otlp.metrics[0]!.resourceMetrics[0].resource.attributes.find((a: Any) => a.key === 'service.name');
    expect(service.value.stringValue).toBe('drover-otlp-metrics');
    expect(otlp.problems.slice(0, 5)).toEqual([]);
    expect(await telemetryErrors(node.url, 'rejected')).toBe(0);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('count a collector that refuses them, and warn once', { timeout: 60_000 }, async () => {
    const otlp = await receiver(503);
    const node = await startChildNode({
      config: CONFIG,
      env: { DROVER_DATABASE_URL: join(dir, 'refused.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: `${otlp.url}/v1/metrics`, OTEL_METRIC_EXPORT_INTERVAL: '100' },
    });
    await waitFor(async () => (await telemetryErrors(node.url, 'rejected')) >= 3, { timeoutMs: 20_000, message: 'three refused exports counted' });
    const warnings = node.stdout.filter((line) => line.includes('OTLP metrics export failed'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', kind: 'rejected' });
  });

  it('count an unreachable collector, and SIGTERM does not wait out the trace exporter\'s retries', { timeout: 60_000 }, async () => {
    const gone = await receiver();
    const dead = gone.url;
    await new Promise((resolve) => servers.pop()!.close(resolve)); // nothing listens there now
    const node = await startChildNode({
      config: CONFIG,
      env: { DROVER_DATABASE_URL: join(dir, 'gone.db'), DROVER_BOOTSTRAP_ADMIN_KEY: KEY, OTEL_EXPORTER_OTLP_ENDPOINT: dead, OTEL_METRIC_EXPORT_INTERVAL: '100', OTEL_BSP_SCHEDULE_DELAY: '100' },
    });
    // Spans waiting for export when the signal comes.
    for (let i = 0; i < 5; i++) expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'hello.world', data: { who: i } })).status).toBe(202);
    await waitFor(async () => (await telemetryErrors(node.url, 'unreachable')) >= 2, { timeoutMs: 20_000, message: 'unreachable exports counted' });
    expect(node.stdout.some((line) => line.includes('OTLP metrics export failed'))).toBe(true);
    const started = Date.now();
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    // The node's own drain is instant here; the exporters are bounded at 2 s each (metrics, spans).
    expect(Date.now() - started).toBeLessThan(6_000);
  });
});
