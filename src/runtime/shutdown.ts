/**
 * The shutdown deadline (docs/operations.md "Shutdown"). `shutdown.graceMs`
 * is how long running jobs get to finish; the whole shutdown, whatever its
 * handlers, store or log reader do, ends within the grace period plus
 * `SHUTDOWN_ALLOWANCE_MS`. The allowance is spent, at most, as below; the
 * process exits when it is used up, finished or not.
 */
import { DroverError } from '../core/errors.js';
import type { Logger } from '../obs/logger.js';
import { LOG_FLUSH_MS } from '../obs/logger.js';
import type { StorageEngine } from '../store/engine.js';
import type { Dispatcher } from './dispatcher.js';
import type { Lifecycle } from './lifecycle.js';
import type { ThreadPool } from './thread-pool.js';

/** After the grace period: aborted handlers settle through their signal. */
export const ABORT_SETTLE_MS = 1_000;
/** Then: threads of handlers that ignored their signal are terminated, leases of inline ones released, outcomes in flight written. */
export const RELEASE_MS = 1_000;
/** Then: background tasks, servers and the store are closed (each bounded; what remains is left to the exit). */
export const CLOSE_MS = 2_000;
/** Time past `shutdown.graceMs` a shutdown may take, the final log flush included. */
export const SHUTDOWN_ALLOWANCE_MS = ABORT_SETTLE_MS + RELEASE_MS + CLOSE_MS + LOG_FLUSH_MS;

/** Resolve true if `promise` settles within `ms`, false otherwise (a rejection counts as settled). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise.then(() => true as const, () => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** What draining the node's own jobs touches. */
export interface DrainParts {
  dispatcher: Dispatcher;
  threads: ThreadPool | null;
  store: StorageEngine;
  lifecycle: Lifecycle;
  logger: Logger;
}

/**
 * The node's jobs under the deadline: hand back jobs leased ahead and never
 * started, let running ones finish until `graceEnds` (a `performance.now()`
 * time), then abort them through their signals and, after ABORT_SETTLE_MS,
 * abandon those that ignored it (`abandonRunning`). Leasing must already be
 * stopped. `drained`: every job finished within the grace period;
 * `released`: jobs handed back unfinished for another run.
 */
export async function drainJobs(parts: DrainParts, graceEnds: number, graceMs: number): Promise<{ drained: boolean; released: number }> {
  const { dispatcher, lifecycle, logger } = parts;
  const graceLeft = () => graceEnds - performance.now();
  let released = 0;
  const stopCounting = lifecycle.on('job:released', ({ reason }) => {
    if (reason === 'shutdown') released++;
  });
  try {
    // Leased ahead but never started: hand them back now so another node (or the next start) runs them.
    await settlesWithin(dispatcher.releaseBuffered(), graceLeft());
    const running = dispatcher.running.size;
    if (running > 0) logger.info({ running, grace_ms: graceMs }, 'draining: waiting for running jobs');
    const drained = await settlesWithin(dispatcher.whenIdle(), graceLeft());
    if (!drained) {
      logger.warn({ jobs: dispatcher.running.size }, 'grace period over: aborting running jobs and releasing their leases');
      dispatcher.abortAll(new DroverError('shutting_down', 'the node is shutting down'));
      // Handlers that honour the signal settle and release themselves; give them a moment.
      if (!(await settlesWithin(dispatcher.whenIdle(), ABORT_SETTLE_MS))) await abandonRunning(parts);
    }
    return { drained, released };
  } finally {
    stopCounting();
  }
}

/**
 * Handlers that ignored their signal: terminate the threads of thread ones
 * (their jobs then release themselves), abandon inline ones (their code
 * cannot be stopped; it dies with the process) and release their leases.
 * Jobs whose handler has returned keep their outcome: it is being written.
 */
async function abandonRunning({ dispatcher, threads, store, lifecycle, logger }: DrainParts): Promise<void> {
  const until = performance.now() + RELEASE_MS;
  if (threads) await settlesWithin(threads.close(), RELEASE_MS / 2);
  const abandoned = dispatcher.abandonRunning();
  if (abandoned.length > 0) {
    logger.warn({ jobs: abandoned.length, job_ids: abandoned.slice(0, 10).map((job) => job.id) }, 'handlers ignored their abort signal: abandoning them and releasing their leases (they run again)');
  }
  const releases = abandoned.map(async (job) => {
    const result = await store.release(job.id, job.leaseToken).catch(() => null);
    if (result?.ok) lifecycle.emit('job:released', { job, reason: 'shutdown' });
    else if (result) lifecycle.emit('job:stale', { job, op: 'release' });
  });
  const done = await settlesWithin(Promise.all([...releases, dispatcher.whenIdle()]), until - performance.now());
  if (!done) logger.warn({ jobs: abandoned.length }, 'releasing leases or recording outcomes took too long; those jobs run again once their leases expire');
}
