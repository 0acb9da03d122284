/**
 * One leased job on its way through the dispatcher, from the lease-ahead
 * buffer to its recorded outcome, and what all jobs of a handler share (its
 * lane). The per-job path runs tens of thousands of times a second, so a job
 * is one object: it is the dispatcher's running entry and the runner's
 * options at once, its methods live on the prototype instead of being closures
 * made per job, and everything per handler is looked up once per handler.
 */
import type { ResolvedHandler } from '../core/config.js';
import { toError } from '../core/errors.js';
import type { HandlerLogger } from '../core/handler.js';
import type { FeatureFlags } from '../core/rollout.js';
import type { LeasedJob } from '../core/types.js';
import type { AttemptTracer } from '../obs/attempt-tracing.js';
import type { Logger } from '../obs/logger.js';
import type { StartResult, StartWatch, StorageEngine } from '../store/engine.js';
import type { CompletionRate } from './lease-window.js';
import { LazyAbortController, type RunJobOptions, type RunningJob, type RunOutcome } from './job-runner.js';
import type { Lifecycle } from './lifecycle.js';
import { StepContext, type StepDeps } from './step-context.js';

/** What every attempt on a dispatcher uses. */
export interface AttemptDeps {
  store: StorageEngine;
  lifecycle: Lifecycle;
  logger: Logger;
  /** Added to a handler's timeout to get its lease duration (what heartbeats renew it to). */
  leaseMarginMs: number;
  attempts: Pick<AttemptTracer, 'fields' | 'run'> | undefined;
  steps: StepDeps | undefined;
  features: FeatureFlags | undefined;
}

/** A handler's share of the dispatcher: its slots, its lease-ahead buffer, its runner. */
export interface Lane {
  readonly handler: ResolvedHandler;
  readonly deps: AttemptDeps;
  /** Jobs started and not yet returned (or waiting for admission). */
  running: number;
  /** Leased but not yet started, in lease order. */
  readonly buffer: AttemptQueue;
  /** Moving average of the handler's run time (ms); decides whether to lease ahead. NaN: none yet. */
  avgRunMs: number;
  /** Its jobs finished per ms while busy; sizes its lease-ahead window. */
  readonly completions: CompletionRate;
  /** Jobs its window reaches past the rate's size, as its leases showed (lease-window.ts `nextReach`); 0: none. */
  reach: number;
  /** The thread pool for an `isolation: 'thread'` handler; null: it runs inline. */
  readonly threads: { run(options: RunJobOptions): Promise<RunOutcome> } | null;
}

const STARTED: Promise<void> = Promise.resolve();

/** The reason a handler's signal gives when its start mark, sent ahead of its answer, found the lease gone. */
export class StartLeaseLost extends Error {
  constructor() {
    super("the job's lease was gone when its start reached the store (it was cancelled, reclaimed or leased again); this attempt stops and writes nothing");
    this.name = 'StartLeaseLost';
  }
}

/**
 * A lane's lease-ahead buffer: first in, first out. A head index instead of
 * `Array.prototype.shift`, which copies what is left of the array on every
 * call (every job started from the buffer).
 */
export class AttemptQueue {
  #items: Array<Attempt | undefined> = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(attempt: Attempt): void {
    this.#items.push(attempt);
  }

  shift(): Attempt | undefined {
    if (this.#head === this.#items.length) return undefined;
    const attempt = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    if (this.#head === this.#items.length) {
      this.#items.length = 0;
      this.#head = 0;
    } else if (this.#head >= 64 && this.#head * 2 >= this.#items.length) {
      // A buffer refilled before it empties never resets: drop the taken half now and then.
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return attempt;
  }

  some(predicate: (attempt: Attempt) => boolean): boolean {
    for (let i = this.#head; i < this.#items.length; i++) if (predicate(this.#items[i]!)) return true;
    return false;
  }

  /** Take out the jobs `predicate` picks, in order; the rest stay, in order. */
  removeWhere(predicate: (attempt: Attempt) => boolean): Attempt[] {
    const removed: Attempt[] = [];
    const kept: Array<Attempt | undefined> = [];
    for (let i = this.#head; i < this.#items.length; i++) {
      const attempt = this.#items[i]!;
      (predicate(attempt) ? removed : kept).push(attempt);
    }
    if (removed.length > 0) {
      this.#items = kept;
      this.#head = 0;
    }
    return removed;
  }

  /** Take out every job, in order. */
  clear(): Attempt[] {
    const all = this.#items.slice(this.#head) as Attempt[];
    this.#items = [];
    this.#head = 0;
    return all;
  }
}

export class Attempt implements RunningJob, RunJobOptions, StartWatch {
  readonly job: LeasedJob;
  readonly lane: Lane;
  readonly controller = new LazyAbortController();
  /** When the lease that brought it was taken (ms). */
  readonly leasedAt: number;
  /** When that lease was asked for, by the monotonic clock (ms): the lease is no older. -Infinity: unknown. */
  readonly leaseAskedAt: number;
  startedAt: number;
  shutdownAborted = false;
  returned = false;
  abandoned = false;
  /** Its start mark, answered when sent, found the lease gone: nothing is recorded for it. */
  leaseLost = false;
  /** Its start mark was answered when sent: settled once the store answered it (the outcome is written after). */
  markAnswered: Promise<unknown> | undefined = undefined;
  done: Promise<void> = STARTED;
  stepContext: StepContext | undefined = undefined;
  readonly features: FeatureFlags | undefined;

  constructor(lane: Lane, job: LeasedJob, leasedAt: number, leaseAskedAt = Number.NEGATIVE_INFINITY) {
    this.lane = lane;
    this.job = job;
    this.leasedAt = leasedAt;
    this.leaseAskedAt = leaseAskedAt;
    this.startedAt = leasedAt;
    this.features = lane.deps.features;
  }

  /** `StartWatch`: the mark went out and the handler may begin; its outcome waits for `settled`. */
  answered(settled: Promise<unknown>): void {
    this.markAnswered = settled;
  }

  /**
   * `StartWatch`: the start mark the handler began on found the lease gone
   * (its outcome, written only after the mark's answer, cannot have
   * overtaken it). Abort a handler still running as a lost lease is
   * (step-context.ts); nothing is recorded either way. `job:stale` is told
   * with the outcome (Dispatcher), not here: the write that took the lease
   * may be the job's own step suspending it, whose answer can come back
   * after this one.
   */
  lost(_result: Extract<StartResult, { ok: false }>): void {
    if (this.abandoned || this.leaseLost) return;
    this.leaseLost = true;
    if (!this.returned) this.controller.abort(new StartLeaseLost());
  }

  /** `StartWatch`: the mark's statement failed after the handler began. Mark it once more (a mark is idempotent); failing that, it runs on uncounted. */
  failed(error: unknown): void {
    const { store, logger } = this.lane.deps;
    // The outcome waits for this one too (it must not overtake it either).
    this.markAnswered = store.start(this.job.id, this.job.leaseToken).then(
      (result) => {
        if (!result.ok) this.lost(result);
      },
      (again: unknown) => {
        logger.warn({ err: toError(again), first: toError(error).message, job_id: this.job.id, handler: this.job.handler }, 'could not record the running job as started; it runs on, and if this node dies during it the job runs again without a crash counted');
      },
    );
  }

  get handler(): ResolvedHandler {
    return this.lane.handler;
  }

  log(): HandlerLogger {
    const { job } = this;
    const { logger, attempts } = this.lane.deps;
    return logger.child({ job_id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, ...attempts?.fields(job) });
  }

  async heartbeat(): Promise<boolean> {
    const { store, lifecycle, leaseMarginMs } = this.lane.deps;
    const result = await store.heartbeat(this.job.id, this.job.leaseToken, this.lane.handler.timeoutMs + leaseMarginMs);
    if (!result.ok) lifecycle.emit('job:stale', { job: this.job, op: 'heartbeat' });
    return result.ok;
  }

  isShutdownAborted(): boolean {
    return this.shutdownAborted;
  }

  /** The step context's factory; absent where steps are not wired. A closure (runners may call it detached), made only when asked for. */
  get steps(): (() => StepContext) | undefined {
    const deps = this.lane.deps.steps;
    if (!deps) return undefined;
    return () => (this.stepContext ??= new StepContext(deps, this.job, (error) => this.controller.abort(error)));
  }
}
