/**
 * Durable-execution metrics from the lifecycle: steps by outcome, jobs
 * suspended by reason, step sequences that changed under a job. Series are
 * looked up per event (a Map inside the family); a step is far rarer than a
 * poll, so nothing is cached here.
 */
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';
import type { DroverMetrics } from './metrics.js';

/**
 * Subscribe `metrics` to `lifecycle`; returns the unsubscribe functions.
 *
 * @example
 * const off = observeDurable(runtime.lifecycle, metrics);
 */
export function observeDurable(lifecycle: LifecycleSubscriber, metrics: DroverMetrics): Array<() => void> {
  return [
    lifecycle.on('step:finished', ({ job, outcome }) => metrics.steps.series(job.handler, outcome).inc()),
    lifecycle.on('job:suspended', ({ job, wait }) => metrics.jobsSuspended.series(job.handler, wait.kind).inc()),
    lifecycle.on('step:sequence_changed', ({ job }) => metrics.stepSequenceChanges.series(job.handler).inc()),
  ];
}
