/**
 * The retention pruner's work as metrics: rows deleted per table, when the
 * last run ended and how long it took. A prune that stopped running shows
 * as a growing "since the last prune" (and table growth on the storage
 * dashboard) long before the disk fills.
 */
import { Gauge } from 'prom-client';
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';
import type { DroverMetrics } from './metrics.js';


/**
 * @example
 * const off = observeRetention(runtime.lifecycle, metrics);
 */
export function observeRetention(lifecycle: LifecycleSubscriber, metrics: DroverMetrics): () => void {
  const pruned = metrics.counter(
    'drover_retention_pruned_rows_total',
    'Rows the retention pruner deleted, by table: jobs (finished past retention.succeededMs / deadMs, with their attempts and steps) and events (past retention.eventsMs).',
    ['table'],
  );
  const rows = { jobs: pruned.series('jobs'), events: pruned.series('events') };
  const lastRun = new Gauge({
    name: 'drover_retention_last_run_timestamp_seconds',
    help: 'When this node\'s retention pruner last finished a run (Unix seconds); 0 before the first.',
    registers: [metrics.registry],
  });
  const lastDuration = new Gauge({
    name: 'drover_retention_last_run_duration_seconds',
    help: 'How long this node\'s last retention run took (all its batches).',
    registers: [metrics.registry],
  });
  lastRun.set(0);
  lastDuration.set(0);
  return lifecycle.on('retention:pruned', ({ jobs, events, durationMs, at }) => {
    rows.jobs.inc(jobs);
    rows.events.inc(events);
    lastRun.set(at / 1000);
    lastDuration.set(durationMs / 1000);
  });
}
