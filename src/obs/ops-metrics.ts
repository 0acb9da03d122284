/**
 * The operations metrics one node adds beyond the core surface, wired in one
 * call so start-node stays short: storage (WAL, checkpoints, commit latency,
 * pool limit), store faults by kind (`drover_errors_total{layer="store"}`),
 * node liveness, process limits, the TLS certificate's expiry, and the audit
 * export's lag. See docs/observability.md for each metric.
 */
import type { ResolvedConfig } from '../core/config.js';
import type { AuditStore, NodeRegistry } from '../store/engine.js';
import type { InstrumentOptions } from '../store/instrumented.js';
import { observeAuditLag } from './audit-lag.js';
import { ErrorMetrics } from './error-metrics.js';
import type { Logger } from './logger.js';
import { processRegistry, type DroverMetrics } from './metrics.js';
import { observeNodes } from './node-metrics.js';
import { OtlpMetrics } from './otlp-metrics.js';
import { observeProcessLimits } from './process-limits.js';
import { observeStorage } from './store-metrics.js';
import { observeTlsCertificate } from './tls-metrics.js';
import type { SpanExportFailure, Tracing } from './tracing.js';

export interface OpsMetrics {
  readonly errors: ErrorMetrics;
  /** Options for `instrumentStore`: store faults and node deaths are seen at the seam. */
  readonly seam: Pick<InstrumentOptions, 'onError' | 'onResult'>;
  /** Once the store is instrumented and the ops subsystems exist. */
  afterStart(sources: { store: NodeRegistry & Pick<AuditStore, 'listAudit'>; exportedSeq: () => number | null }): void;
  /**
   * Stop the periodic checkpoint and the OTLP metrics export (before the store
   * closes); with `flush`, send a last OTLP export first (bounded: 2 s). Idempotent.
   */
  stop(options?: { flush?: boolean }): Promise<void>;
}

/**
 * @example
 * const opsMetrics = observeOpsMetrics(metrics, engine, { config, clock, logger });
 * const store = instrumentStore(engine, { timer, ...opsMetrics.seam });
 * opsMetrics.afterStart({ store, exportedSeq: () => exporter?.status().exportedSeq ?? null });
 */
export function observeOpsMetrics(
  metrics: DroverMetrics,
  engine: object,
  options: { config: ResolvedConfig; clock: () => number; logger: Logger; tracing?: Tracing; env?: Readonly<Record<string, string | undefined>>; nodeId?: string },
): OpsMetrics {
  const { config, clock, logger } = options;
  const errors = new ErrorMetrics(metrics);
  options.tracing?.onExportFailure(spanExportReporter(errors, logger));
  const otlp = OtlpMetrics.fromEnv(options.env ?? process.env, { registries: () => [metrics.registry, processRegistry()], errors, logger, ...(options.nodeId ? { instanceId: options.nodeId } : {}) });
  otlp?.start();
  const stopStorage = observeStorage(metrics, engine, {
    onError: (error, what) =>
      what === 'checkpoint'
        ? logger.warn({ err: error }, 'WAL checkpoint failed; the WAL keeps growing until one succeeds (see drover_store_wal_size_bytes)')
        : logger.warn({ err: error }, 'metrics: reading table sizes failed; /metrics keeps the last values'),
  });
  observeProcessLimits(metrics);
  if (config.server.tls) {
    observeTlsCertificate(metrics, config.server.tls.certFile, (error) => logger.warn({ err: error }, 'metrics: cannot read the TLS certificate file; its expiry metric keeps the last value'));
  }
  let reclaimed: (result: unknown) => void = () => undefined;
  return {
    errors,
    seam: {
      onError: (_op, error) => errors.store(error),
      onResult: { reclaimDeadNodes: (result) => reclaimed(result) },
    },
    afterStart({ store, exportedSeq }) {
      const onError = (what: string) => (error: Error) => logger.warn({ err: error }, `metrics: ${what} failed; /metrics keeps the last value`);
      reclaimed = observeNodes(metrics, { listNodes: () => store.listNodes(), deadNodeMs: config.cluster.deadNodeMs, clock, onError: onError('listing nodes') }).reclaimed;
      observeAuditLag(metrics, { exportedSeq, headSeq: async () => (await store.listAudit({ limit: 1 }))[0]?.seq ?? 0, onError: onError('reading the audit head') });
    },
    async stop({ flush = false } = {}) {
      stopStorage();
      if (!otlp) return;
      if (flush) await otlp.stop();
      else otlp.stopTimer();
    },
  };
}

/** Failed span exports: counted, and a warning for the first of a run (the SDK only tells its diagnostic logger). */
function spanExportReporter(errors: ErrorMetrics, logger: Logger): (failure: SpanExportFailure) => void {
  let warned = false;
  return (failure) => {
    if (failure.kind === 'abandoned') {
      errors.telemetry('dropped');
      logger.warn('shutdown stopped waiting for the last span export (the collector did not answer within 2 s); those spans are lost');
      return;
    }
    // OTLPExporterError carries the HTTP status when the collector answered.
    const answered = typeof (failure.error as { code?: unknown }).code === 'number';
    errors.telemetry(answered ? 'rejected' : 'unreachable');
    if (warned) return;
    warned = true;
    logger.warn({ spans: failure.spans, error: failure.error.message }, 'OTLP span export failed; spans are being lost (drover_errors_total{layer="telemetry"} counts failures). Check OTEL_EXPORTER_OTLP_ENDPOINT and the collector');
  };
}
