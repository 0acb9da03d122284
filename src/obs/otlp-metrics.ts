/**
 * Metrics over OTLP/HTTP (JSON encoding) or OTLP/gRPC (protobuf; otlp-grpc.ts,
 * with `OTEL_EXPORTER_OTLP_PROTOCOL=grpc`), for collectors that receive rather
 * than scrape. Off unless `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_ENDPOINT` is set (`OTEL_METRICS_EXPORTER=none` turns it
 * off). Every `OTEL_METRIC_EXPORT_INTERVAL` ms (default 60 s) the node's
 * registry — the same series `/metrics` serves — is sent as cumulative sums,
 * gauges and explicit-bucket histograms.
 *
 * A failed export is not retried: the next one carries the cumulative values,
 * so nothing is lost but resolution. Each failure counts in
 * `drover_errors_total{layer="telemetry"}` (`unreachable`, `rejected`, and
 * `dropped` for an export skipped because the previous one still waits), and
 * the first of a run of failures logs a warning (recovery logs once too).
 * Shutdown sends a last export bounded by `finalTimeoutMs`.
 */
import type { Registry } from 'prom-client';
import { toError } from '../core/errors.js';
import { VERSION } from '../version.js';
import type { ErrorMetrics, TelemetryErrorKind } from './error-metrics.js';
import type { Logger } from './logger.js';
import { OtlpGrpcExporter, type ExportFailure } from './otlp-grpc.js';
import { histogramPoints, withoutLe, type PromMetric, type PromValue } from './prom-points.js';

export interface OtlpMetricsOptions {
  /** HTTP: the full URL, `…/v1/metrics`. gRPC: the collector, `http://host:4317` (`https:` for TLS). */
  url: string;
  /** `http/json` (default) or `grpc` (OTEL_EXPORTER_OTLP_METRICS_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL). */
  protocol?: 'http/json' | 'grpc';
  headers?: Record<string, string>;
  registries: () => Registry[];
  intervalMs?: number;
  /** Per export. Default 10 s. */
  timeoutMs?: number;
  /** The last export at shutdown. Default 2 s. */
  finalTimeoutMs?: number;
  serviceName?: string;
  instanceId?: string;
  errors: ErrorMetrics;
  logger: Logger;
}

type Attr = { key: string; value: { stringValue: string } };

const attributes = (labels: Record<string, string | number>): Attr[] =>
  Object.entries(withoutLe(labels)).map(([key, value]) => ({ key, value: { stringValue: String(value) } }));

/**
 * The OTLP/JSON `metrics` of one prom-client metric (ExportMetricsServiceRequest,
 * opentelemetry-proto `metrics/v1/metrics.proto`; 64-bit integers as strings).
 */
export function toOtlpMetric(metric: PromMetric, startNano: string, nowNano: string): Record<string, unknown> | null {
  const point = (v: PromValue) => ({ attributes: attributes(v.labels), startTimeUnixNano: startNano, timeUnixNano: nowNano, asDouble: v.value });
  const base = { name: metric.name, description: metric.help };
  // NaN (an event-loop histogram with no sample yet) has no JSON form: leave the point out.
  const finite = metric.values.filter((v) => Number.isFinite(v.value));
  if (metric.type === 'counter') return { ...base, sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: finite.map(point) } };
  if (metric.type === 'gauge') return { ...base, gauge: { dataPoints: finite.map(point) } };
  if (metric.type !== 'histogram') return null; // summaries: none of Drover's
  const dataPoints = histogramPoints(metric).map((p) => ({
    attributes: attributes(p.labels),
    startTimeUnixNano: startNano,
    timeUnixNano: nowNano,
    count: String(p.count),
    sum: p.sum,
    bucketCounts: p.counts.map(String),
    explicitBounds: p.boundaries,
  }));
  return { ...base, histogram: { aggregationTemporality: 2, dataPoints } };
}

/**
 * @example
 * const otlp = OtlpMetrics.fromEnv(process.env, { registries: () => [metrics.registry, processRegistry()], errors, logger });
 * otlp?.start();
 * await otlp?.stop();
 */
export class OtlpMetrics {
  readonly #options: OtlpMetricsOptions;
  readonly #startNano = `${BigInt(Date.now()) * 1_000_000n}`;
  readonly #startMs = Date.now();
  #timer: NodeJS.Timeout | null = null;
  #inFlight: Promise<void> | null = null;
  #failing = false;
  /** Only with `protocol: 'grpc'`: its channel opens on the first export. */
  readonly #grpc: OtlpGrpcExporter | null;

  constructor(options: OtlpMetricsOptions) {
    this.#options = options;
    this.#grpc = options.protocol === 'grpc' ? new OtlpGrpcExporter({ url: options.url, headers: options.headers ?? {} }) : null;
  }

  /** From the standard `OTEL_*` variables; null when metrics export is off. */
  static fromEnv(env: Readonly<Record<string, string | undefined>>, options: Omit<OtlpMetricsOptions, 'url' | 'headers' | 'intervalMs' | 'timeoutMs'>): OtlpMetrics | null {
    if (env.OTEL_SDK_DISABLED === 'true' || env.OTEL_METRICS_EXPORTER === 'none') return null;
    const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
    // gRPC sends to the collector itself (one method path); HTTP to its /v1/metrics.
    const protocol = (env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL) === 'grpc' ? 'grpc' : 'http/json';
    const url = env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT || (base ? (protocol === 'grpc' ? base : `${base.replace(/\/$/, '')}/v1/metrics`) : '');
    if (!url) return null;
    const headers = parseHeaders(env.OTEL_EXPORTER_OTLP_METRICS_HEADERS ?? env.OTEL_EXPORTER_OTLP_HEADERS ?? '');
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
    const timeout = Number(env.OTEL_METRIC_EXPORT_TIMEOUT);
    return new OtlpMetrics({
      url,
      protocol,
      headers,
      ...(interval > 0 ? { intervalMs: interval } : {}),
      ...(timeout > 0 ? { timeoutMs: timeout } : {}),
      ...(env.OTEL_SERVICE_NAME ? { serviceName: env.OTEL_SERVICE_NAME } : {}),
      ...options,
    });
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.exportOnce(), this.#options.intervalMs ?? 60_000);
    this.#timer.unref();
  }

  /** Stop the interval without a last export. */
  stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    if (!this.#inFlight) this.#grpc?.close();
  }

  /** Stop the interval and send what the registry holds now, within `finalTimeoutMs`. */
  async stop(): Promise<void> {
    this.stopTimer();
    await this.#inFlight?.catch(() => undefined);
    await this.exportOnce(this.#options.finalTimeoutMs ?? 2_000);
    this.#grpc?.close();
  }

  /** One export now (skipped and counted as dropped while another waits). */
  exportOnce(timeoutMs = this.#options.timeoutMs ?? 10_000): Promise<void> {
    if (this.#inFlight) {
      this.#failed('dropped', new Error('the previous export has not finished'));
      return this.#inFlight;
    }
    this.#inFlight = this.#send(timeoutMs).finally(() => (this.#inFlight = null));
    return this.#inFlight;
  }

  async #send(timeoutMs: number): Promise<void> {
    const { registries, serviceName, instanceId } = this.#options;
    let metrics: PromMetric[];
    try {
      metrics = (await Promise.all(registries().map((r) => r.getMetricsAsJSON()))).flat() as unknown as PromMetric[];
    } catch (error) {
      this.#options.logger.warn({ err: toError(error) }, 'OTLP metrics: collecting the registry failed; this export is skipped');
      return;
    }
    const failure = this.#grpc
      ? await this.#grpc.export(metrics, { startMs: this.#startMs, serviceName: serviceName ?? 'drover', ...(instanceId ? { instanceId } : {}) }, timeoutMs).catch((error: unknown) => ({ kind: 'rejected' as const, error: toError(error) }))
      : await this.#sendJson(metrics, timeoutMs);
    if (failure) {
      this.#failed(failure.kind, failure.error);
      return;
    }
    if (this.#failing) this.#options.logger.info({ url: this.#options.url }, 'OTLP metrics export works again');
    this.#failing = false;
  }

  /** OTLP/HTTP with the JSON encoding. */
  async #sendJson(metrics: PromMetric[], timeoutMs: number): Promise<ExportFailure> {
    const { url, headers, serviceName, instanceId } = this.#options;
    let body: string;
    try {
      const now = `${BigInt(Date.now()) * 1_000_000n}`;
      const resource = [{ key: 'service.name', value: { stringValue: serviceName ?? 'drover' } }, { key: 'service.version', value: { stringValue: VERSION } }];
      if (instanceId) resource.push({ key: 'service.instance.id', value: { stringValue: instanceId } });
      body = JSON.stringify({
        resourceMetrics: [{ resource: { attributes: resource }, scopeMetrics: [{ scope: { name: 'drover', version: VERSION }, metrics: metrics.map((m) => toOtlpMetric(m, this.#startNano, now)).filter(Boolean) }] }],
      });
    } catch (error) {
      this.#options.logger.warn({ err: toError(error) }, 'OTLP metrics: encoding the registry failed; this export is skipped');
      return null;
    }
    let response: Response;
    try {
      response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal: AbortSignal.timeout(timeoutMs) });
      await response.arrayBuffer();
    } catch (error) {
      return { kind: 'unreachable', error: toError(error) };
    }
    return response.ok ? null : { kind: 'rejected', error: new Error(`the collector answered ${response.status}`) };
  }

  #failed(kind: TelemetryErrorKind, error: Error): void {
    this.#options.errors.telemetry(kind);
    // A skipped export only means the previous one is slow; its own outcome warns if it fails.
    if (this.#failing || kind === 'dropped') return;
    this.#failing = true;
    this.#options.logger.warn(
      { url: this.#options.url, kind, error: error.message },
      'OTLP metrics export failed; the next export sends the cumulative values (drover_errors_total{layer="telemetry"} counts failures). Check OTEL_EXPORTER_OTLP_ENDPOINT and the collector',
    );
  }
}

/** `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,key2=value2`, values URL-encoded. */
export function parseHeaders(text: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at > 0) headers[pair.slice(0, at).trim()] = decodeURIComponent(pair.slice(at + 1).trim());
  }
  return headers;
}
