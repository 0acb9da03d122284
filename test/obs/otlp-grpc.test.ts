/**
 * OTLP metrics over gRPC against a real gRPC receiver started here (a
 * @grpc/grpc-js server serving opentelemetry-proto's
 * `MetricsService/Export` method): a node (child process) exports its series
 * with the configured headers as gRPC metadata; a collector that answers
 * with an error status, or is not there, is counted in
 * drover_errors_total{layer="telemetry"} with one warning.
 */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ErrorMetrics } from '../../src/obs/error-metrics.js';
import { DroverMetrics } from '../../src/obs/metrics.js';
import { OtlpMetrics } from '../../src/obs/otlp-metrics.js';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { waitFor } from '../helpers/wait-for.js';
import { parseExposition } from './exposition.js';

const CONFIG = fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url));
const KEY = 'drv_otlp_grpc_key_0123456789abcdef01';
const EXPORT = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';
const dir = mkdtempSync(join(tmpdir(), 'drover-otlp-grpc-'));
const servers: grpc.Server[] = [];
afterEach(async () => {
  await killAllChildren();
  for (const server of servers.splice(0)) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Received {
  body: Buffer;
  metadata: Record<string, unknown>;
}

/** A gRPC OTLP metrics receiver on a free port; `status` answers every export with that error instead of OK. */
async function receiver(status?: grpc.status): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const raw = (b: Buffer) => b;
  const server = new grpc.Server();
  server.addService(
    { Export: { path: EXPORT, requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw } },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        received.push({ body: call.request, metadata: call.metadata.getMap() });
        if (status !== undefined) callback({ code: status, details: 'the test receiver refuses' });
        else callback(null, Buffer.alloc(0)); // an empty ExportMetricsServiceResponse: all accepted
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p))));
  servers.push(server);
  return { url: `http://127.0.0.1:${port}`, received };
}

/** An exporter on a registry of its own, with its warnings collected. */
function exporter(url: string) {
  const metrics = new DroverMetrics({ handlers: [{ name: 'h', queue: 'q' }], queues: ['q'], engine: 'sqlite' });
  const warnings: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (warnings.push(String(chunk)), done()) }));
  const otlp = new OtlpMetrics({ url, protocol: 'grpc', registries: () => [metrics.registry], errors: new ErrorMetrics(metrics), logger, timeoutMs: 2_000 });
  const errors = async (kind: string) => parseExposition(await metrics.registry.metrics()).value('drover_errors_total', { layer: 'telemetry', kind });
  return { otlp, errors, warnings: () => warnings.filter((line) => line.includes('OTLP metrics export failed')) };
}

describe('OTLP metrics over gRPC', () => {
  it('reach a real gRPC receiver from a node, with the node\'s series and the configured headers as metadata', { timeout: 60_000 }, async () => {
    const otlp = await receiver();
    const node = await startChildNode({
      config: CONFIG,
      env: {
        DROVER_DATABASE_URL: join(dir, 'ok.db'),
        DROVER_BOOTSTRAP_ADMIN_KEY: KEY,
        OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: otlp.url,
        OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: 'grpc',
        OTEL_EXPORTER_OTLP_METRICS_HEADERS: 'x-collector-tenant=team%20a',
        OTEL_METRIC_EXPORT_INTERVAL: '200',
        OTEL_SERVICE_NAME: 'drover-otlp-grpc',
      },
    });
    expect((await api(node.url, KEY, 'POST', '/v1/events', { name: 'hello.world', data: { who: 'grpc' } })).status).toBe(202);
    // Protobuf carries names and string attributes as UTF-8: the node's series and resource are in the request.
    const request = await waitFor(() => otlp.received.find((r) => r.body.includes('drover_jobs_completed_total') && r.body.includes('greet')), { timeoutMs: 20_000, message: 'an export with the node\'s series' });
    for (const text of ['drover_job_duration_seconds', 'drover_process_resident_memory_bytes', 'service.name', 'drover-otlp-grpc']) expect(request.body.includes(text), text).toBe(true);
    expect(request.metadata['x-collector-tenant']).toBe('team a');
    expect(String(request.metadata['user-agent'])).toMatch(/grpc-node-js/);
    const scrape = parseExposition(await (await fetch(`${node.url}/metrics`)).text());
    expect(scrape.value('drover_errors_total', { layer: 'telemetry', kind: 'rejected' })).toBe(0);
    expect(scrape.value('drover_errors_total', { layer: 'telemetry', kind: 'unreachable' })).toBe(0);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
  });

  it('count a collector that answers with an error status as rejected, and warn once', async () => {
    const otlp = await receiver(grpc.status.UNAUTHENTICATED);
    const { otlp: exporterUnderTest, errors, warnings } = exporter(otlp.url);
    for (let i = 0; i < 3; i++) await exporterUnderTest.exportOnce();
    await exporterUnderTest.stop();
    expect(otlp.received.length).toBe(4); // three, and the last one at stop
    expect(await errors('rejected')).toBe(4);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toContain('UNAUTHENTICATED');
  });

  it('count a collector that is not there as unreachable, within the export timeout', async () => {
    const gone = await receiver();
    await new Promise<void>((resolve) => servers.pop()!.tryShutdown(() => resolve())); // nothing listens there now
    const { otlp, errors, warnings } = exporter(gone.url);
    const started = Date.now();
    await otlp.exportOnce();
    await otlp.exportOnce();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await errors('unreachable')).toBe(2);
    expect(warnings()).toHaveLength(1);
    otlp.stopTimer();
  });
});
