/** What a dispatcher (dispatcher.ts) is built from; its lease pump, intake claims and lease room each read a part. */
import type { ResolvedHandler } from '../core/config.js';
import type { TenantCaps } from '../core/lease-caps.js';
import type { FeatureFlags } from '../core/rollout.js';
import type { LeasedJob } from '../core/types.js';
import type { AttemptTracer } from '../obs/attempt-tracing.js';
import type { Logger } from '../obs/logger.js';
import type { StorageEngine } from '../store/engine.js';
import type { RunJobOptions, RunOutcome } from './job-runner.js';
import type { Lifecycle } from './lifecycle.js';
import type { StepDeps } from './step-context.js';

export interface DispatcherOptions {
  store: StorageEngine;
  handlers: ReadonlyMap<string, ResolvedHandler>;
  lifecycle: Lifecycle;
  logger: Logger;
  workerId: string;
  clock: () => number;
  random?: () => number;
  /** Most jobs leased in one store call. */
  leaseBatch?: number;
  /** Most jobs leased ahead per quick handler (default: about 20 ms of its work, from max(concurrency, 64) to 512 jobs; lease-window.ts). */
  prefetch?: number;
  /**
   * A job whose attempts ended by crash, lease expiry or a killed worker
   * thread this many times is dead with reason `poison` (config `poisonAfter`).
   * Without it a killed attempt is an ordinary failure.
   */
  poisonAfter?: number;
  /** Added to a handler's timeout to get its lease duration. */
  leaseMarginMs?: number;
  /** A retry due at this time should be staged; tells the scheduler. */
  onRetryScheduled: (runAt: number) => void;
  /** A paused handler's jobs are not leased. */
  isHandlerPaused?: (handler: string) => boolean;
  /** Most jobs of a handler that may run at once right now, below its concurrency (a half-open breaker's single probe). */
  slotLimit?: (handler: string) => number;
  /**
   * Runs `isolation: 'thread'` handlers (thread-pool.ts); without it every handler runs inline.
   * `queueDepth`: jobs it takes per thread at once (one runs, the rest wait in the thread), so
   * a thread handler may have `concurrency × queueDepth` jobs started here, `concurrency` running.
   */
  threads?: { run(options: RunJobOptions): Promise<RunOutcome>; queueDepth?: number };
  /** Queues not to lease from. Excluded by queue, not by handler: a job may sit in a queue other than its handler's default. */
  pausedQueues?: () => readonly string[];
  /** Runs each handler inside its attempt's span and adds trace ids to its log lines. */
  attempts?: Pick<AttemptTracer, 'fields' | 'run'>;
  /**
   * Asked just before a leased job starts: null starts it (and counts it, e.g.
   * against a rate limit); a time hands the lease back unspent, the job
   * scheduled for then (rate limit reached, webhook host breaker open). A
   * promise when the store decides (a rate limit shared by several nodes):
   * the job keeps its slot while it waits for the answer.
   */
  admit?: (job: LeasedJob, handler: ResolvedHandler) => number | null | Promise<number | null>;
  /** How many more jobs of a handler may start now (a rate limit without key); caps what is leased. */
  startRoom?: (handler: ResolvedHandler) => number | undefined;
  /** Durable steps (`ctx.step`): the store, limits and wake-up hook each attempt's step context uses; without it handlers have no steps. */
  steps?: StepDeps;
  /** Feature gates handed to each attempt (`ctx.features`). */
  features?: FeatureFlags;
  /** Tenant lease caps (config `flow.tenants`, per-queue caps), counted by the store in each lease; absent: none configured. */
  tenantCaps?: TenantCaps;
  /** A monotonic clock (ms) for a lease's age (default `performance.now`): a wall clock set back would make a lease look younger. */
  monotonic?: () => number;
}
