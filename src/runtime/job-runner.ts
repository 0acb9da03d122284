/**
 * Runs one leased job inline: builds its context, enforces the timeout through
 * the AbortSignal, and turns the handler's result into an outcome. It writes
 * nothing; the dispatcher records the outcome in the store.
 */
import { NonRetryableError, toError } from '../core/errors.js';
import type { JobContext, HandlerLogger } from '../core/handler.js';
import type { ResolvedHandler } from '../core/config.js';
import type { LeasedJob } from '../core/types.js';

export type RunOutcome =
  | { kind: 'succeeded'; result: unknown }
  /**
   * `killed`: the worker running the attempt was killed under it (its thread
   * hit the memory limit or died), so the attempt counts as a crash toward
   * `poisonAfter`. A timeout is not a kill: it is an ordinary `timed_out` attempt.
   */
  | { kind: 'failed'; error: Error; nonRetryable: boolean; timedOut: boolean; killed: boolean }
  /** Aborted by shutdown: the lease is released, the attempt not spent. */
  | { kind: 'aborted' };

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`handler did not finish within its timeout of ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

export interface RunningJob {
  job: LeasedJob;
  startedAt: number;
  controller: AbortController;
  /** Set when shutdown aborts the job: its outcome becomes a release. */
  shutdownAborted: boolean;
  done: Promise<void>;
}

export interface RunJobOptions {
  handler: ResolvedHandler;
  job: LeasedJob;
  controller: AbortController;
  /** Creates the job's child logger; called only if the handler logs (most no-op jobs never do). */
  log: () => HandlerLogger;
  heartbeat: () => Promise<boolean>;
  isShutdownAborted: () => boolean;
}

export async function runJob(options: RunJobOptions): Promise<RunOutcome> {
  const { handler, job, controller } = options;
  let log: HandlerLogger | undefined;
  const ctx: JobContext = {
    job: {
      id: job.id,
      handler: job.handler,
      queue: job.queue,
      attempt: job.attempts,
      maxAttempts: job.maxAttempts,
      payload: job.payload,
    },
    event: job.event,
    signal: controller.signal,
    get log() {
      log ??= options.log();
      return log;
    },
    heartbeat: options.heartbeat,
  };

  let timer: NodeJS.Timeout | undefined;
  // An inline handler cannot be killed; at the timeout its signal fires and the
  // attempt is failed even if the code ignores the signal and keeps running.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(handler.timeoutMs);
      controller.abort(error);
      reject(error);
    }, handler.timeoutMs);
  });
  try {
    const result = await Promise.race([Promise.resolve().then(() => handler.run(ctx)), timeout]);
    if (options.isShutdownAborted()) return { kind: 'aborted' };
    return { kind: 'succeeded', result: result === undefined ? null : result };
  } catch (caught) {
    if (options.isShutdownAborted()) return { kind: 'aborted' };
    const error = toError(caught);
    return {
      kind: 'failed',
      error,
      nonRetryable: error instanceof NonRetryableError || error.name === 'NonRetryableError',
      timedOut: error instanceof TimeoutError,
      killed: false,
    };
  } finally {
    clearTimeout(timer);
  }
}
