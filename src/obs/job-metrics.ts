/**
 * Job, event and intake metrics, driven by the lifecycle event map. Each
 * handler's series are looked up once (one Map.get per event) and updated
 * with field writes: nothing is allocated per job.
 */
import type { LifecycleSubscriber } from '../core/lifecycle-events.js';
import { observeDurable } from './durable-metrics.js';
import type { CounterSeries, DroverMetrics, HistogramSeries, JobOutcome } from './metrics.js';

interface HandlerSeries {
  started: CounterSeries;
  completed: Record<JobOutcome, CounterSeries>;
  duration: Record<Exclude<JobOutcome, 'cancelled'>, HistogramSeries>;
  retries: CounterSeries;
  leaseExpired: CounterSeries;
  releasedShutdown: CounterSeries;
}

/**
 * Subscribe `metrics` to `lifecycle`; returns an unsubscribe function.
 *
 * @example
 * const stop = observeJobs(runtime.lifecycle, metrics);
 */
export function observeJobs(lifecycle: LifecycleSubscriber, metrics: DroverMetrics, clock: () => number = Date.now): () => void {
  const handlers = new Map<string, HandlerSeries>();
  // The last handler's series: a node's jobs come in runs of one handler, and
  // each job's events (start, outcome) ask for the same one in a row.
  let lastHandler: string | undefined;
  let lastSeries: HandlerSeries | undefined;
  const forHandler = (name: string): HandlerSeries => {
    if (name === lastHandler) return lastSeries!;
    let s = handlers.get(name);
    if (!s) {
      // Handlers are declared, so this runs once per handler; a job of a
      // handler removed from the config (still in the store) lands here too.
      const c = (outcome: JobOutcome) => metrics.jobsCompleted.series(name, outcome);
      const d = (outcome: Exclude<JobOutcome, 'cancelled'>) => metrics.jobDuration.series(name, outcome);
      s = {
        started: metrics.jobsStarted.series(name),
        completed: { succeeded: c('succeeded'), retried: c('retried'), dead: c('dead'), cancelled: c('cancelled'), timed_out: c('timed_out') },
        duration: { succeeded: d('succeeded'), retried: d('retried'), dead: d('dead'), timed_out: d('timed_out') },
        retries: metrics.jobRetries.series(name),
        leaseExpired: metrics.leaseExpirations.series(name),
        releasedShutdown: metrics.jobsReleased.series(name, 'shutdown'),
      };
      handlers.set(name, s);
    }
    lastHandler = name;
    lastSeries = s;
    return s;
  };

  const enqueued = new Map<string, Map<string, CounterSeries>>();
  const enqueuedSeries = (queue: string, handler: string): CounterSeries => {
    let byQueue = enqueued.get(handler);
    if (!byQueue) enqueued.set(handler, (byQueue = new Map()));
    let s = byQueue.get(queue);
    if (!s) byQueue.set(queue, (s = metrics.jobsEnqueued.series(queue, handler)));
    return s;
  };
  const waits = new Map<string, HistogramSeries>();
  let lastQueue: string | undefined;
  let lastWait: HistogramSeries | undefined;
  const waitSeries = (queue: string): HistogramSeries => {
    if (queue === lastQueue) return lastWait!;
    let s = waits.get(queue);
    if (!s) waits.set(queue, (s = metrics.jobWait.series(queue)));
    lastQueue = queue;
    lastWait = s;
    return s;
  };
  const recovery = { lease: metrics.recoveryLatency.series('lease'), node: metrics.recoveryLatency.series('node') };
  const ingested = metrics.eventsIngested.series();
  const deduplicated = metrics.eventsDeduplicated.series();

  const off = [
    lifecycle.on('job:enqueued', ({ job }) => enqueuedSeries(job.queue, job.handler).inc()),
    lifecycle.on('event:ingested', ({ created }) => (created ? ingested : deduplicated).inc()),
    lifecycle.on('trigger:controlled', ({ handler, kind, merged, delayedMs }) => {
      if (kind === 'throttle' && delayedMs > 0) metrics.triggerThrottled.series(handler).inc();
      else if (kind !== 'throttle' && merged) metrics.triggerMerges.series(handler, kind).inc();
    }),
    lifecycle.on('intake:rejected', ({ queue, reason }) => metrics.backpressureRejections.series(queue, reason).inc()),
    lifecycle.on('job:start', ({ job, waitMs }) => {
      forHandler(job.handler).started.inc();
      waitSeries(job.queue).observe(waitMs / 1000);
    }),
    lifecycle.on('job:succeeded', ({ job, durationMs }) => {
      const s = forHandler(job.handler);
      s.completed.succeeded.inc();
      s.duration.succeeded.observe(durationMs / 1000);
    }),
    lifecycle.on('job:failed', ({ job, durationMs, outcome, retryAt }) => {
      const s = forHandler(job.handler);
      // A final failure is `dead` whatever its cause; a retried one says whether it timed out.
      const result = retryAt === null ? 'dead' : outcome === 'timed_out' ? 'timed_out' : 'retried';
      s.completed[result].inc();
      s.duration[result].observe(durationMs / 1000);
      if (retryAt !== null) s.retries.inc();
    }),
    lifecycle.on('job:released', ({ job, reason }) => {
      if (reason === 'shutdown') forHandler(job.handler).releasedShutdown.inc();
      else metrics.jobsReleased.series(job.handler, reason).inc();
    }),
    lifecycle.on('job:cancelled', ({ job }) => forHandler(job.handler).completed.cancelled.inc()),
    lifecycle.on('lease:expired', ({ handler, state, cause, expiredAt }) => {
      const s = forHandler(handler);
      s.leaseExpired.inc();
      if (state === 'dead') s.completed.dead.inc();
      // Recovery ends when the job is queued again; a poisoned job is not recovered.
      else if (expiredAt !== undefined) recovery[cause].observe(Math.max(0, clock() - expiredAt) / 1000);
    }),
    lifecycle.on('job:stale', ({ job, op }) => metrics.leaseConflicts.series(job.handler, op).inc()),
    ...observeDurable(lifecycle, metrics),
  ];
  return () => {
    for (const unsubscribe of off) unsubscribe();
  };
}
