/**
 * OTLP metrics over gRPC (`OTEL_EXPORTER_OTLP_PROTOCOL=grpc`): the node's
 * Prometheus registry as an ExportMetricsServiceRequest in protobuf (encoded
 * by OpenTelemetry's own serializer, from the SDK's metric-data shape), sent
 * as one unary call to `opentelemetry.proto.collector.metrics.v1.MetricsService/Export`.
 * `@grpc/grpc-js` and the serializer are loaded on the first export only: a
 * node that does not export over gRPC never loads them.
 */
import type { Client } from '@grpc/grpc-js';
import type { MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { VERSION } from '../version.js';
import type { TelemetryErrorKind } from './error-metrics.js';
import { histogramPoints, withoutLe, type PromMetric } from './prom-points.js';

const EXPORT_METHOD = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';


/** What a failed export was: the collector could not be reached (or did not answer in time), or it answered with an error. */
export type ExportFailure = { kind: Exclude<TelemetryErrorKind, 'dropped'>; error: Error } | null;

type Sdk = {
  grpc: typeof import('@grpc/grpc-js');
  sdk: typeof import('@opentelemetry/sdk-metrics');
  transformer: typeof import('@opentelemetry/otlp-transformer');
  resources: typeof import('@opentelemetry/resources');
};
let loaded: Promise<Sdk> | null = null;
const load = (): Promise<Sdk> =>
  (loaded ??= Promise.all([import('@grpc/grpc-js'), import('@opentelemetry/sdk-metrics'), import('@opentelemetry/otlp-transformer'), import('@opentelemetry/resources')]).then(
    ([grpc, sdk, transformer, resources]) => ({ grpc, sdk, transformer, resources }),
  ));

const hrTime = (ms: number): [number, number] => [Math.floor(ms / 1000), (ms % 1000) * 1_000_000];
const attributes = (labels: Record<string, string | number>): Record<string, string> =>
  Object.fromEntries(Object.entries(withoutLe(labels)).map(([key, value]) => [key, String(value)]));

/** One prom-client metric as the SDK's MetricData (cumulative; histograms per bucket with the overflow bucket last). */
function toMetricData(sdk: Sdk['sdk'], metric: PromMetric, startMs: number, nowMs: number): MetricData | null {
  const descriptor = { name: metric.name, description: metric.help, unit: '', valueType: 1 /* ValueType.DOUBLE */ };
  const times = { startTime: hrTime(startMs), endTime: hrTime(nowMs) };
  const finite = metric.values.filter((v) => Number.isFinite(v.value));
  const single = finite.map((v) => ({ ...times, attributes: attributes(v.labels), value: v.value }));
  if (metric.type === 'counter') {
    return { descriptor, aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE, dataPointType: sdk.DataPointType.SUM, isMonotonic: true, dataPoints: single } as MetricData;
  }
  if (metric.type === 'gauge') return { descriptor, aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE, dataPointType: sdk.DataPointType.GAUGE, dataPoints: single } as MetricData;
  if (metric.type !== 'histogram') return null;
  const dataPoints = histogramPoints(metric).map((p) => ({ ...times, attributes: attributes(p.labels), value: { buckets: { boundaries: p.boundaries, counts: p.counts }, sum: p.sum, count: p.count } }));
  return { descriptor, aggregationTemporality: sdk.AggregationTemporality.CUMULATIVE, dataPointType: sdk.DataPointType.HISTOGRAM, dataPoints } as MetricData;
}

/**
 * One gRPC channel to a collector, opened on the first export.
 *
 * @example
 * const exporter = new OtlpGrpcExporter({ url: 'http://collector:4317', headers: {} });
 * const failure = await exporter.export(promMetrics, { startMs, serviceName: 'drover' }, 10_000);
 * exporter.close();
 */
export class OtlpGrpcExporter {
  #client: Client | null = null;

  constructor(private readonly options: { url: string; headers: Record<string, string> }) {}

  async export(metrics: PromMetric[], meta: { startMs: number; serviceName: string; instanceId?: string }, timeoutMs: number): Promise<ExportFailure> {
    const libs = await load();
    const now = Date.now();
    const resource = libs.resources.resourceFromAttributes({
      'service.name': meta.serviceName,
      'service.version': VERSION,
      ...(meta.instanceId ? { 'service.instance.id': meta.instanceId } : {}),
    });
    const request: ResourceMetrics = {
      resource,
      scopeMetrics: [{ scope: { name: 'drover', version: VERSION }, metrics: metrics.map((m) => toMetricData(libs.sdk, m, meta.startMs, now)).filter((m): m is MetricData => m !== null) }],
    };
    const body = libs.transformer.ProtobufMetricsSerializer.serializeRequest(request);
    if (!body) return { kind: 'rejected', error: new Error('the metrics could not be encoded as OTLP protobuf') };
    const { grpc } = libs;
    const client = (this.#client ??= new grpc.Client(target(this.options.url), this.options.url.startsWith('https:') ? grpc.credentials.createSsl() : grpc.credentials.createInsecure()));
    const metadata = new grpc.Metadata();
    for (const [key, value] of Object.entries(this.options.headers)) metadata.set(key.toLowerCase(), value);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        EXPORT_METHOD,
        (payload: Uint8Array) => Buffer.from(payload),
        (answer: Buffer) => answer,
        body,
        metadata,
        { deadline: Date.now() + timeoutMs },
        (error) => {
          if (!error) return resolve(null);
          // No connection, or no answer in time: unreachable; any status the collector sent: rejected.
          const unreachable = error.code === grpc.status.UNAVAILABLE || error.code === grpc.status.DEADLINE_EXCEEDED;
          resolve({ kind: unreachable ? 'unreachable' : 'rejected', error: new Error(`gRPC ${grpc.status[error.code] ?? error.code}: ${error.details || error.message}`) });
        },
      );
    });
  }

  close(): void {
    this.#client?.close();
    this.#client = null;
  }
}

/** `http://host:4317` (the OTEL_EXPORTER_OTLP_ENDPOINT form) or `host:4317` → `host:4317`. */
function target(url: string): string {
  return url.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}
