/**
 * One log line per attempt outcome (never per poll), plus the rarer events an
 * operator needs to see. Subscribes to the lifecycle like any other observer.
 */
import type { TraceFields } from '../obs/attempt-tracing.js';
import type { Logger } from '../obs/logger.js';
import type { LeasedJob } from '../core/types.js';
import type { Lifecycle, RemoteOrigin } from './lifecycle.js';

/** A remote worker's outcome is logged inside its HTTP request: carry the request's id. */
function origin(remote: RemoteOrigin['remote']): Record<string, string> {
  return remote ? { request_id: remote.requestId, worker_id: remote.workerId } : {};
}

/** `trace` gives a job's `trace_id` / `span_id` (the attempt span's, or the producer's trace). */
export function logLifecycle(lifecycle: Lifecycle, logger: Logger, trace: (job: LeasedJob) => TraceFields = () => ({})): void {
  lifecycle.on('job:succeeded', ({ job, durationMs, remote }) => {
    if (!logger.isLevelEnabled('info')) return;
    logger.info({ job_id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, duration_ms: durationMs, ...origin(remote), ...trace(job) }, 'job succeeded');
  });
  lifecycle.on('job:failed', ({ job, durationMs, outcome, error, retryAt, deadReason, killed, remote }) => {
    const fields = {
      job_id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, duration_ms: durationMs, outcome, err: error,
      ...(killed ? { killed: true } : {}), ...origin(remote), ...trace(job),
    };
    if (retryAt !== null) logger.warn({ ...fields, retry_at: new Date(retryAt).toISOString() }, 'job attempt failed; will retry');
    else if (deadReason === 'poison') logger.error({ ...fields, dead_reason: deadReason }, 'job attempt killed its worker thread too many times; job is dead (poison)');
    else logger.error({ ...fields, dead_reason: deadReason ?? 'exhausted' }, 'job failed; no attempts left, it is dead');
  });
  lifecycle.on('thread:restarted', ({ handler, reason, detail }) => {
    logger.warn({ handler, reason, detail }, 'handler thread replaced');
  });
  lifecycle.on('job:released', ({ job, reason, remote }) => {
    logger.warn({ job_id: job.id, handler: job.handler, attempt: job.attempts, reason, ...origin(remote), ...trace(job) }, 'job released without finishing; it will run again');
  });
  lifecycle.on('job:stale', ({ job, op, remote }) => {
    logger.warn({ job_id: job.id, handler: job.handler, attempt: job.attempts, op, ...origin(remote), ...trace(job) }, 'lease was lost before the outcome was recorded (cancelled, expired or taken over); outcome discarded');
  });
  lifecycle.on('lease:expired', ({ jobId, handler, state }) => {
    logger.warn({ job_id: jobId, handler, state }, state === 'dead' ? 'lease expired too many times; job is dead (poison)' : 'lease expired; job queued again');
  });
  logCapRefusals(lifecycle, logger);
  lifecycle.on('task:failed', ({ task, error }) => {
    logger.error({ task, err: error }, 'background task failed; it will run again at its next interval');
  });
}

/** One line per tenant (or worker id, or key) at its lease cap per this interval, however many lease calls it held back. */
const CAP_LOG_INTERVAL_MS = 60_000;

function logCapRefusals(lifecycle: Lifecycle, logger: Logger): void {
  const lastLogged = new Map<string, number>();
  const due = (what: string): boolean => {
    const now = performance.now();
    const last = lastLogged.get(what);
    if (last !== undefined && now - last < CAP_LOG_INTERVAL_MS) return false;
    // Bounded: forget everything once a minute's worth of distinct names piles up.
    if (lastLogged.size >= 10_000) lastLogged.clear();
    lastLogged.set(what, now);
    return true;
  };
  lifecycle.on('lease:capped', ({ cap, queue, tenants, workerId }) => {
    if (cap === 'tenant') {
      for (const tenant of tenants) {
        if (due(`tenant\u0000${queue}\u0000${tenant}`)) logger.info({ cap, tenant, queue }, 'tenant at its lease cap; its other jobs wait until one of its running jobs finishes');
      }
    } else if (due(`${cap}\u0000${workerId}`)) {
      logger.info({ cap, worker_id: workerId }, cap === 'worker' ? 'remote worker at its lease cap; lease answered with fewer jobs' : 'work key at its lease cap; lease answered with fewer jobs');
    }
  });
}
