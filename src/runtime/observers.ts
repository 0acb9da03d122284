/**
 * Every observer of a node's lifecycle, subscribed in one place and in the
 * order they must run: logs, then traces (an attempt's span ends after its
 * outcome line is written, with its span id), then metrics, then the SSE
 * stream. Observers only listen; `runtime/` alone emits. Scrape-time gauges
 * (queue depth, store pool, backups) are not lifecycle observers: startNode
 * wires those.
 */
import { observeLeaseCaps } from '../obs/cap-metrics.js';
import type { LeasedJob } from '../core/types.js';
import { AttemptTracer } from '../obs/attempt-tracing.js';
import { observeJobs } from '../obs/job-metrics.js';
import type { Logger } from '../obs/logger.js';
import type { DroverMetrics } from '../obs/metrics.js';
import { observeRetention } from '../obs/retention-metrics.js';
import { StreamHub, type StreamHubOptions } from '../obs/stream-hub.js';
import type { Tracing } from '../obs/tracing.js';
import type { Lifecycle } from './lifecycle.js';
import { logLifecycle } from './lifecycle-log.js';
import { observeSupervision } from './supervision-metrics.js';
import type { Runtime } from './runtime.js';

export interface ObserverOptions {
  lifecycle: Lifecycle;
  logger: Logger;
  tracing: Tracing;
  /** Null: no metrics (a runtime built without a registry). */
  metrics: DroverMetrics | null;
  /** Quarantine and breaker state for the supervision gauges. */
  runtime: Pick<Runtime, 'supervision' | 'config' | 'clock'>;
  stream: StreamHubOptions;
}

export interface Observers {
  /** Attempt spans, and the trace ids on job log lines. */
  attempts: AttemptTracer;
  /** The SSE stream's buffer and fan-out (`GET /v1/stream`). */
  stream: StreamHub;
}

/**
 * @example
 * const { attempts, stream } = observeLifecycle({ lifecycle, logger, tracing, metrics, runtime, stream: { ...config.stream, clock } });
 */
export function observeLifecycle(options: ObserverOptions): Observers {
  const { lifecycle, metrics } = options;
  let attempts: AttemptTracer | null = null;
  logLifecycle(lifecycle, options.logger, (job: LeasedJob) => attempts!.fields(job));
  attempts = new AttemptTracer(options.tracing, lifecycle);
  if (metrics) {
    observeJobs(lifecycle, metrics, options.runtime.clock);
    observeLeaseCaps(lifecycle, metrics);
    observeRetention(lifecycle, metrics);
    observeSupervision({ lifecycle, supervision: options.runtime.supervision, config: options.runtime.config }, metrics);
  }
  return { attempts, stream: new StreamHub(lifecycle, options.stream) };
}
