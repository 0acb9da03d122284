/**
 * Traces: off by default (no provider registered); on, a request's server
 * span, the ingest's producer span and each attempt's consumer span form one
 * trace with the caller's traceparent, the attempt span links to the producer,
 * and only the final failure is an error. A real child node exports over
 * OTLP/HTTP to a tiny receiver when OTEL_EXPORTER_OTLP_ENDPOINT is set.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SpanKind, SpanStatusCode, trace, type ProxyTracerProvider } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Tracing } from '../../src/obs/tracing.js';
import { api, killAllChildren, startChildNode } from '../helpers/child-node.js';
import { startTestNode, type TestNode } from '../helpers/node.js';
import { waitFor } from '../helpers/wait-for.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN}-01`;
const noBackoff = { initialMs: 0, jitter: 'none' as const };

let node: TestNode | null = null;
afterEach(async () => {
  await node?.close();
  node = null;
  await killAllChildren();
});

const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

describe('tracing off (no OTEL endpoint)', () => {
  it('registers no provider and stores the caller traceparent unchanged', async () => {
    node = await startTestNode({ handlers: [{ name: 'h', run: async () => undefined }] });
    expect(node.tracing.enabled).toBe(false);
    expect((trace.getTracerProvider() as ProxyTracerProvider).getDelegate().constructor.name).toBe('NoopTracerProvider');
    const res = await node.request('POST', '/v1/jobs', { handler: 'h' }, { traceparent: TRACEPARENT });
    expect((await node.store.getJob(res.body.id))?.traceparent).toBe(TRACEPARENT);
    expect(node.runtime.attempts.openSpans).toBe(0);
  });
});

describe('tracing with an in-memory exporter', () => {
  it('joins the attempt span to the producer trace: child of the stored traceparent, and linked to it', async () => {
    const exporter = new InMemorySpanExporter();
    node = await startTestNode(
      {
        handlers: [
          {
            name: 'traced',
            on: 'order.created',
            run: async () => {
              // Handler code using the OTel API nests under the attempt span.
              trace.getTracer('handler').startActiveSpan('handler work', (span) => span.end());
            },
          },
        ],
      },
      { tracing: await Tracing.withExporter({ exporter, simple: true }) },
    );
    const n = node;
    expect(n.tracing.enabled).toBe(true);
    const res = await n.request('POST', '/v1/events', { name: 'order.created', data: { id: 1 } }, { traceparent: TRACEPARENT });
    expect(res.status).toBe(202);
    const jobId = res.body.jobs[0].id as string;
    const consumer = await waitFor(() => exporter.getFinishedSpans().find((s) => s.name === 'process default'));
    await waitFor(() => n.logLines.some((l) => l.msg === 'job succeeded' && l.job_id === jobId));
    const spans = exporter.getFinishedSpans();
    const byName = (name: string) => spans.find((s) => s.name === name)!;

    const server = byName('POST /v1/events');
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(server)).toBe(CALLER_SPAN);
    expect(server.attributes['http.route']).toBe('/v1/events');
    expect(server.attributes['http.response.status_code']).toBe(202);

    const producer = byName('send order.created');
    expect(producer.kind).toBe(SpanKind.PRODUCER);
    expect(parentOf(producer)).toBe(server.spanContext().spanId);
    expect(producer.attributes['messaging.system']).toBe('drover');
    expect(byName('store ingest').parentSpanContext?.spanId).toBe(producer.spanContext().spanId);

    // The producer's context is what the job stores.
    expect((await n.store.getJob(jobId))?.traceparent).toBe(`00-${TRACE_ID}-${producer.spanContext().spanId}-01`);

    expect(consumer.kind).toBe(SpanKind.CONSUMER);
    expect(consumer.spanContext().traceId).toBe(TRACE_ID);
    expect(parentOf(consumer)).toBe(producer.spanContext().spanId);
    expect(consumer.links.map((l) => l.context.spanId)).toEqual([producer.spanContext().spanId]);
    expect(consumer.attributes).toMatchObject({
      'messaging.system': 'drover',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'default',
      'messaging.message.id': jobId,
      'drover.handler': 'traced',
      'drover.attempt': 1,
    });
    expect(consumer.status.code).toBe(SpanStatusCode.UNSET);
    expect(parentOf(byName('handler work'))).toBe(consumer.spanContext().spanId);

    const line = n.logLines.find((l) => l.msg === 'job succeeded' && l.job_id === jobId)!;
    expect(line.trace_id).toBe(TRACE_ID);
    expect(line.span_id).toBe(consumer.spanContext().spanId);
    expect(n.runtime.attempts.openSpans).toBe(0);
  });

  it('records an error status only on the final failure', async () => {
    const exporter = new InMemorySpanExporter();
    node = await startTestNode(
      {
        handlers: [
          {
            name: 'fails',
            queue: 'q2',
            retry: { maxAttempts: 2, backoff: noBackoff },
            run: async () => {
              throw new Error('nope');
            },
          },
        ],
      },
      { tracing: await Tracing.withExporter({ exporter, simple: true }) },
    );
    const res = await node.request('POST', '/v1/jobs', { handler: 'fails' });
    expect(res.status).toBe(202);
    const attempts = await waitFor(() => {
      const found = exporter.getFinishedSpans().filter((s) => s.name === 'process q2');
      return found.length === 2 ? found : null;
    });
    attempts.sort((a, b) => Number(a.attributes['drover.attempt']) - Number(b.attributes['drover.attempt']));
    const [first, last] = attempts as [ReadableSpan, ReadableSpan];
    expect(first.status.code).toBe(SpanStatusCode.UNSET);
    expect(first.events.map((e) => e.name)).toContain('exception');
    expect(last.status.code).toBe(SpanStatusCode.ERROR);
    expect(last.status.message).toBe('nope');
    // Both attempts are in the trace the producer span started (no caller traceparent: the producer is the root).
    const producer = exporter.getFinishedSpans().find((s) => s.name === 'send q2')!;
    expect(first.spanContext().traceId).toBe(producer.spanContext().traceId);
    expect(parentOf(last)).toBe(producer.spanContext().spanId);
  });
});

describe('OTLP/HTTP export', () => {
  const dir = mkdtempSync(join(tmpdir(), 'drover-otlp-'));
  let receiver: Server | null = null;
  afterAll(() => {
    receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends spans to OTEL_EXPORTER_OTLP_ENDPOINT from a real node', async () => {
    const requests: Array<{ path: string; contentType: string; body: any }> = [];
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        requests.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: JSON.parse(body) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => receiver!.listen(0, '127.0.0.1', resolve));
    const port = (receiver.address() as AddressInfo).port;
    const key = 'drv_otlp_test_key_0123456789abcdef';
    const child = await startChildNode({
      config: fileURLToPath(new URL('../fixtures/hello.config.ts', import.meta.url)),
      env: {
        DROVER_DATABASE_URL: join(dir, 'otlp.db'),
        DROVER_BOOTSTRAP_ADMIN_KEY: key,
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        OTEL_SERVICE_NAME: 'drover-otlp-test',
      },
    });
    const sent = await fetch(`${child.url}/v1/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', traceparent: TRACEPARENT },
      body: JSON.stringify({ name: 'hello.world', data: { who: 'otlp' } }),
    });
    expect(sent.status).toBe(202);

    const spans = () =>
      requests.flatMap((r) =>
        (r.body.resourceSpans ?? []).flatMap((rs: any) =>
          rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => ({ ...s, service: rs.resource.attributes.find((a: any) => a.key === 'service.name')?.value.stringValue }))),
        ),
      );
    const consumer = await waitFor(() => spans().find((s: any) => s.name === 'process default'), { timeoutMs: 15_000, message: 'the attempt span at the receiver' });
    expect(requests[0]!.path).toBe('/v1/traces');
    expect(requests[0]!.contentType).toMatch(/application\/json/);
    expect(consumer.traceId).toBe(TRACE_ID);
    expect(consumer.service).toBe('drover-otlp-test');
    expect(spans().some((s: any) => s.name === 'POST /v1/events' && s.parentSpanId === CALLER_SPAN)).toBe(true);

    expect((await api(child.url, key, 'GET', '/v1/status')).body.features.tracing).toBe(true);
    child.child.kill('SIGTERM');
    expect((await child.exited).code).toBe(0);
  });
});
