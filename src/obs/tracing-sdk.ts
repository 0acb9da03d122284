/**
 * The OpenTelemetry SDK side of tracing (obs/tracing.ts): the provider, the
 * span processor, the OTLP exporter and the W3C propagator. Imported only
 * when tracing is on, so a node with tracing off never loads the SDK.
 */
import { ExportResultCode, W3CTraceContextPropagator, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { VERSION } from '../version.js';
import type { SpanExportFailure, TracingOptions } from './tracing.js';

/**
 * Tells the node about failed exports: the SDK only reports them to its
 * diagnostic logger, which nobody reads, so an unreachable collector was
 * silent until shutdown.
 */
class ReportingSpanExporter implements SpanExporter {
  listener: ((failure: SpanExportFailure) => void) | null = null;
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.listener?.({ kind: 'failed', spans: spans.length, error: result.error ?? new Error('span export failed') });
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** A provider with its reporting exporter, and the propagator for incoming requests. */
export interface SdkTracing {
  provider: NodeTracerProvider;
  reporter: ReportingSpanExporter;
  propagator: W3CTraceContextPropagator;
}

export function sdkTracing(options: TracingOptions): SdkTracing {
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.serviceName ?? 'drover',
    [ATTR_SERVICE_VERSION]: VERSION,
    ...(options.instanceId ? { 'service.instance.id': options.instanceId } : {}),
  });
  const reporter = new ReportingSpanExporter(options.exporter);
  const processor = options.simple ? new SimpleSpanProcessor(reporter) : new BatchSpanProcessor(reporter);
  return { provider: new NodeTracerProvider({ resource, spanProcessors: [processor] }), reporter, propagator: new W3CTraceContextPropagator() };
}

/** The OTLP/HTTP exporter; it reads the standard `OTEL_EXPORTER_OTLP_*` variables itself. */
export function otlpExporter(): SpanExporter {
  return new OTLPTraceExporter();
}
