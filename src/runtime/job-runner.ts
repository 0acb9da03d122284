/**
 * Runs one leased job inline: builds its context, enforces the timeout through
 * the AbortSignal, and turns the handler's result into an outcome. It writes
 * nothing; the dispatcher records the outcome in the store.
 */
import { NonRetryableError, toError } from '../core/errors.js';
import type { JobContext, HandlerLogger } from '../core/handler.js';
import type { ResolvedHandler } from '../core/config.js';
import type { LeasedJob } from '../core/types.js';
import type { WaitRow } from '../core/durable.js';
import type { StepContext } from './step-context.js';
import { BUILTIN_GATES, type FeatureFlags } from '../core/rollout.js';

export type RunOutcome =
  | { kind: 'succeeded'; result: unknown }
  /**
   * `killed`: the worker running the attempt was killed under it (its thread
   * hit the memory limit or died), so the attempt counts as a crash toward
   * `poisonAfter`. A timeout is not a kill: it is an ordinary `timed_out` attempt.
   */
  | { kind: 'failed'; error: Error; nonRetryable: boolean; timedOut: boolean; killed: boolean }
  /**
   * The lease is released, the attempt not spent: aborted by shutdown, or
   * (`thread_lost`) the job finished on a handler thread that was then killed
   * before its result reached the main thread, so it will run again; or
   * (`handler_unavailable`) its thread could not load the handler at all.
   */
  | { kind: 'aborted'; reason?: 'thread_lost' | 'handler_unavailable' }
  /** A durable step suspended the job (step-context.ts): the store holds it `suspended`; nothing more to write. */
  | { kind: 'suspended'; wait: WaitRow }
  /** A step write found the lease gone (`job:stale` already said so): another holder owns the job; nothing to write. */
  | { kind: 'stale'; op: 'start' | 'step' | 'suspend' };

export class TimeoutError extends Error {
  constructor(ms: number) {
    super(`handler did not finish within its timeout of ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

/**
 * An AbortController made on first use. Most handlers never read
 * `ctx.signal`, and a real controller (an EventTarget and its signal) per job
 * is a measurable share of a no-op job's cost; aborting one nobody observed
 * only records the reason, so a later read still sees an aborted signal.
 */
export class LazyAbortController {
  #controller: AbortController | undefined;

  get signal(): AbortSignal {
    this.#controller ??= new AbortController();
    return this.#controller.signal;
  }

  #listener: ((reason: unknown) => void) | null = null;

  abort(reason?: unknown): void {
    this.#controller ??= new AbortController();
    this.#controller.abort(reason);
    const listener = this.#listener;
    this.#listener = null;
    listener?.(this.#controller.signal.reason);
  }

  /**
   * Call `listener` once when aborted, without making the AbortController
   * (the thread pool forwards every job's abort to its thread this way). One
   * listener at a time; null removes it.
   */
  onAbort(listener: ((reason: unknown) => void) | null): void {
    this.#listener = listener;
  }
}

export interface RunningJob {
  job: LeasedJob;
  startedAt: number;
  controller: LazyAbortController;
  /** Set when shutdown aborts the job: a failure becomes a release (a success stays a success). */
  shutdownAborted: boolean;
  /** The handler has returned (or failed): its outcome is being recorded, and shutdown must not release its lease under it. */
  returned?: boolean;
  /** Shutdown gave up on the handler and released its lease itself: whatever the handler still returns is ignored. */
  abandoned?: boolean;
  done: Promise<void>;
  /** Its step context, once the handler used `ctx.step`. */
  stepContext?: StepContext | undefined;
}

/**
 * What a runner needs to run one attempt. The dispatcher's per-job object
 * (attempt.ts) is one: its methods are called as methods (`options.log()`),
 * never detached, so they cost no closure per job.
 */
export interface RunJobOptions {
  handler: ResolvedHandler;
  job: LeasedJob;
  controller: LazyAbortController;
  /** Creates the job's child logger; called only if the handler logs (most no-op jobs never do). */
  log(): HandlerLogger;
  heartbeat(): Promise<boolean>;
  isShutdownAborted(): boolean;
  /** The attempt's step context, made on first use (`ctx.step`); absent where steps are not wired (unit tests). May be called detached. */
  steps?: (() => StepContext) | undefined;
  /** Feature gates as the node applies them now (`ctx.features`); absent: every gate off but Drover's own defaults. */
  features?: FeatureFlags | undefined;
}

/** Where no gates are wired (unit tests): Drover's own features on, every other gate off. */
export const DEFAULT_FEATURES: FeatureFlags = {
  enabled: (name) => BUILTIN_GATES[name]?.default ?? false,
  snapshot: () => Object.fromEntries(Object.entries(BUILTIN_GATES).map(([name, gate]) => [name, gate.default])),
};

/** Why `ctx.step` is refused while an operator has turned durable steps off: a retryable failure, so the job runs once they are back on. */
export function durableStepsOff(): Error {
  return new Error('durable steps are turned off on this node (feature gate durable-steps); turn them on (drover gates set durable-steps on) and the job runs again at its next retry');
}

/**
 * A handler's `ctx`. A class, so a job's context is one object: the accessors
 * live on the prototype instead of being closures made per job, and what most
 * handlers never touch (`heartbeat`, the logger) is made on first use.
 */
class AttemptContext implements JobContext {
  readonly job: JobContext['job'];
  readonly event: JobContext['event'];
  readonly features: FeatureFlags;
  readonly #options: RunJobOptions;
  #log: HandlerLogger | undefined;
  #heartbeat: (() => Promise<boolean>) | undefined;

  constructor(options: RunJobOptions) {
    const { job } = options;
    this.#options = options;
    this.job = { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, maxAttempts: job.maxAttempts, payload: job.payload };
    this.event = job.event;
    this.features = options.features ?? DEFAULT_FEATURES;
  }

  get signal(): AbortSignal {
    return this.#options.controller.signal;
  }

  get log(): HandlerLogger {
    this.#log ??= this.#options.log();
    return this.#log;
  }

  /** A function that may be called detached (`const { heartbeat } = ctx`), made when first read. */
  get heartbeat(): () => Promise<boolean> {
    this.#heartbeat ??= () => this.#options.heartbeat();
    return this.#heartbeat;
  }

  // A getter: a job that never uses steps makes no step context and reads no stored steps.
  get step(): JobContext['step'] {
    const { steps } = this.#options;
    if (!steps) throw new Error('durable steps (ctx.step) are not available where this handler runs');
    if (!this.features.enabled('durable-steps')) throw durableStepsOff();
    return steps().api;
  }
}

function failed(caught: unknown): RunOutcome {
  const error = toError(caught);
  return {
    kind: 'failed',
    error,
    nonRetryable: error instanceof NonRetryableError || error.name === 'NonRetryableError',
    timedOut: error instanceof TimeoutError,
    killed: false,
  };
}

/**
 * @example
 * const outcome = await runJob({ handler, job, controller: new LazyAbortController(), log, heartbeat, isShutdownAborted: () => false });
 */
export function runJob(options: RunJobOptions): Promise<RunOutcome> {
  const outcome = runInline(options);
  return outcome instanceof Promise ? outcome : Promise.resolve(outcome);
}

/**
 * `runJob` without a promise for a synchronous handler: its outcome is
 * returned as is (the dispatcher records it without waiting a turn); an
 * asynchronous handler's outcome is a promise.
 */
export function runInline(options: RunJobOptions): RunOutcome | Promise<RunOutcome> {
  const { handler } = options;
  // Called directly: a synchronous handler has finished (or thrown) when this
  // returns, so it needs no timer and no race; it could not have been
  // interrupted by one anyway, since it held the event loop.
  let pending: unknown;
  try {
    pending = handler.run(new AttemptContext(options));
  } catch (caught) {
    return options.isShutdownAborted() ? { kind: 'aborted' } : failed(caught);
  }
  if (!isThenable(pending)) return { kind: 'succeeded', result: pending === undefined ? null : pending };
  return settle(options, pending);
}

async function settle(options: RunJobOptions, pending: PromiseLike<unknown>): Promise<RunOutcome> {
  const { handler, controller } = options;
  let timer: NodeJS.Timeout | undefined;
  // An inline handler cannot be killed; at the timeout its signal fires and the
  // attempt is failed even if the code ignores the signal and keeps running.
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const error = new TimeoutError(handler.timeoutMs);
      // Reject before aborting: a handler that settles from its abort listener
      // must not win the race against its own timeout.
      reject(error);
      controller.abort(error);
    }, handler.timeoutMs);
  });
  try {
    // A handler that returned did its work, even if shutdown had aborted it
    // meanwhile: record the success, never release it to run again.
    const result = await Promise.race([pending, timeout]);
    return { kind: 'succeeded', result: result === undefined ? null : result };
  } catch (caught) {
    if (options.isShutdownAborted()) return { kind: 'aborted' };
    return failed(caught);
  } finally {
    clearTimeout(timer);
  }
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as { then?: unknown }).then === 'function';
}
