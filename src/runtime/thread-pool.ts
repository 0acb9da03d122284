/**
 * Runs `isolation: 'thread'` handlers in worker threads: one pool per
 * handler, up to its concurrency, each thread with a V8 heap limit
 * (`resourceLimits`). The hard timeout terminates the thread, so an infinite
 * loop is stopped; running out of heap kills only that thread. Either way only
 * the job on that thread fails, with a reason that says which limit it hit,
 * and the thread is replaced after a capped exponential backoff so a crash
 * loop cannot spin the CPU.
 *
 * The thread loads the user's config module itself (by path, the same way
 * the main thread does: user-module.mjs) and looks the handler up by name:
 * functions cannot be posted to a thread.
 *
 * This module places jobs on threads and accounts for them when a thread
 * dies; one thread's own side (its messages, progress and timeout timer) is
 * thread-slot.ts.
 */
import { resolve } from 'node:path';
import type { ResolvedHandler } from '../core/config.js';
import { RESULT_HOLD_MS, type ThreadResult } from './handler-thread.js';
import { DEFAULT_FEATURES, TimeoutError, type RunJobOptions, type RunOutcome } from './job-runner.js';
import { ThreadSlot, type Active, type SlotOwner, type ThreadRestartReason } from './thread-slot.js';

export { MemoryLimitError, ThreadCrashError, type ThreadRestartReason } from './thread-slot.js';

export interface ThreadPoolOptions {
  /** Path of the config module that defines the handlers. */
  configPath: string;
  restartInitialMs: number;
  restartMaxMs: number;
  /** How long a quick job's result may wait for the jobs after it (default RESULT_HOLD_MS; tests widen it). */
  resultHoldMs?: number;
  /** A thread was replaced: it ran out of memory, died, or was terminated at the hard timeout (metrics, logs). */
  onRestart?: (handler: string, reason: ThreadRestartReason, detail: string) => void;
}

/**
 * Jobs posted to one thread at most: the one it runs and up to three more,
 * which wait in the thread. The thread starts the next job the moment the
 * current one ends instead of sleeping until the main thread has seen the
 * result and answered (a wake-up costs ~20 µs, and the answer waits for the
 * main thread's next event-loop turn, behind its group commit); and the
 * results of jobs run back to back travel in one message. Measured with
 * `node bench/run.mjs --only isolation`: depth 4 beat 2 and 8. A queued job
 * has not started: its timeout starts with it, a thread that dies hands it to
 * another thread, and shutdown takes it back unstarted. The dispatcher uses
 * the depth for quick handlers only (as it leases ahead only for them).
 */
export const THREAD_QUEUE_DEPTH = 4;

/**
 * One handler's threads, at most `concurrency`, each running one job at a
 * time with up to `THREAD_QUEUE_DEPTH - 1` more posted behind it. Its
 * `SlotOwner` methods are what a thread reports (thread-slot.ts).
 */
class HandlerThreads implements SlotOwner {
  readonly #slots = new Set<ThreadSlot>();
  /** Runs waiting for room on a thread (all threads full, or being spawned). */
  readonly #waiting: Array<{ options: RunJobOptions; settle: (outcome: RunOutcome) => void }> = [];
  #crashes = 0;
  #nextSpawnAt = 0;
  #closed = false;
  #seq = 0;

  constructor(
    private readonly handler: ResolvedHandler,
    private readonly pool: ThreadPoolOptions,
    private readonly urls: { configPath: string },
  ) {}

  get size(): number {
    return this.#slots.size;
  }

  run(options: RunJobOptions): Promise<RunOutcome> {
    if (this.#closed) return Promise.resolve({ kind: 'aborted' });
    return new Promise<RunOutcome>((settle) => this.#place(options, settle));
  }

  /** Terminate every thread; jobs still on them (or waiting) end as `aborted`: their leases are handed back. */
  async close(): Promise<void> {
    this.#closed = true;
    const slots = [...this.#slots];
    this.#slots.clear();
    for (const slot of slots) {
      slot.dead = true;
      slot.stopTimer();
      for (const active of slot.jobs.splice(0)) this.#settle(active, { kind: 'aborted' });
    }
    for (const { settle } of this.#waiting.splice(0)) settle({ kind: 'aborted' });
    await Promise.all(slots.map((slot) => slot.terminate()));
  }

  /** Post the job to the least busy ready thread with room, spawn one, or wait. */
  #place(options: RunJobOptions, settle: (outcome: RunOutcome) => void): void {
    if (this.#closed) return settle({ kind: 'aborted' });
    const best = this.#roomiest();
    // An idle thread first; a spare thread before queueing behind a running job.
    if (best && best.jobs.length === 0) return this.#dispatch(best, options, settle);
    if (this.#slots.size < this.handler.concurrency) {
      this.#waiting.push({ options, settle });
      void this.#spawn();
      return;
    }
    if (best) return this.#dispatch(best, options, settle);
    this.#waiting.push({ options, settle });
  }

  /** The ready thread with the fewest jobs, if one has room. */
  #roomiest(): ThreadSlot | null {
    let best: ThreadSlot | null = null;
    for (const slot of this.#slots) {
      if (slot.dead || !slot.ready || slot.jobs.length >= THREAD_QUEUE_DEPTH) continue;
      if (best === null || slot.jobs.length < best.jobs.length) best = slot;
    }
    return best;
  }

  /** Hand waiting runs to threads with room. */
  #drainWaiting(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      const room = this.#roomiest();
      if (!room) return;
      const { options, settle } = this.#waiting.shift()!;
      this.#dispatch(room, options, settle);
    }
  }

  #dispatch(slot: ThreadSlot, options: RunJobOptions, settle: (outcome: RunOutcome) => void): void {
    const { job, controller } = options;
    const id = ++this.#seq;
    slot.jobs.push({ id, options, settle });
    slot.armTimeout();
    controller.onAbort((reason) => slot.post({ type: 'abort', id, reason: String((reason as Error | undefined)?.message ?? 'aborted') }));
    slot.post({ type: 'run', id, job: { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, maxAttempts: job.maxAttempts, payload: job.payload }, event: job.event, features: (options.features ?? DEFAULT_FEATURES).snapshot() });
  }

  #settle(active: Active, outcome: RunOutcome): void {
    active.options.controller.onAbort(null);
    // A success that arrives after shutdown's abort was done before the thread saw the abort: keep it.
    active.settle(active.options.isShutdownAborted() && outcome.kind !== 'succeeded' ? { kind: 'aborted' } : outcome);
  }

  /**
   * Terminate the thread (it hit the timeout, ran out of memory or died) and
   * account for each of its jobs: those that finished but whose results died
   * with the thread are released to run again; the running one fails (a kill
   * counts toward poisonAfter, a timeout is an ordinary timed_out attempt);
   * those never started go to another thread, as if just posted.
   */
  #kill(slot: ThreadSlot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead) return;
    const { finished, running } = slot.position();
    const jobs = slot.jobs.splice(0);
    this.#drop(slot, reason, error.message);
    const unstarted: Array<{ options: RunJobOptions; settle: (outcome: RunOutcome) => void }> = [];
    jobs.forEach((active, at) => {
      if (at < finished) return this.#settle(active, { kind: 'aborted', reason: 'thread_lost' });
      if (at === running) return this.#settle(active, { kind: 'failed', error, nonRetryable: false, timedOut: error instanceof TimeoutError, killed: reason !== 'timeout' });
      active.options.controller.onAbort(null);
      if (active.options.isShutdownAborted()) active.settle({ kind: 'aborted' });
      else unstarted.push({ options: active.options, settle: active.settle });
    });
    // Ahead of later runs: they were handed out first.
    this.#waiting.unshift(...unstarted);
    this.#respawnForWaiting();
  }

  /** The hard timeout (thread-slot.ts) stopped the thread. */
  onOverdue(slot: ThreadSlot, error: Error): void {
    this.#kill(slot, error, 'timeout');
  }

  onResults(slot: ThreadSlot, results: readonly ThreadResult[]): void {
    if (slot.dead) return;
    for (const answer of results) {
      const at = slot.jobs.findIndex((a) => a.id === answer.id);
      if (at < 0) continue;
      const active = slot.jobs.splice(at, 1)[0]!;
      // Taken back unstarted (shutdown): it never ran.
      if (answer.aborted) {
        this.#settle(active, { kind: 'aborted' });
        continue;
      }
      slot.answered = (slot.answered + 1) | 0;
      this.#crashes = 0;
      if (answer.ok) {
        this.#settle(active, { kind: 'succeeded', result: answer.result });
        continue;
      }
      const error = Object.assign(new Error(answer.error?.message ?? 'handler failed'), { name: answer.error?.name ?? 'Error' });
      if (answer.error?.stack) error.stack = answer.error.stack;
      this.#settle(active, { kind: 'failed', error, nonRetryable: error.name === 'NonRetryableError', timedOut: false, killed: false });
    }
    if (slot.jobs.length === 0) slot.stopTimer();
    this.#drainWaiting();
  }

  onReady(): void {
    this.#drainWaiting();
  }

  async #spawn(): Promise<void> {
    const slot = new ThreadSlot(this.handler, this);
    this.#slots.add(slot); // counts against concurrency while it waits out a restart backoff
    const delay = this.#nextSpawnAt - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay).unref());
    if (this.#closed) return;
    slot.start(this.urls.configPath, this.pool.resultHoldMs ?? RESULT_HOLD_MS);
  }

  /**
   * The thread could not load the handler (the node checked it at start, so
   * its module changed or broke since): the waiting runs are handed back
   * without spending an attempt - the handler's code never ran - and the
   * thread is replaced after the restart backoff; the log says why each time.
   */
  onLoadFailed(slot: ThreadSlot, error: Error): void {
    if (slot.dead || this.#closed) return;
    this.#drop(slot, 'crash', `could not load the handler: ${error.message}`);
    for (const { settle } of this.#waiting.splice(0)) settle({ kind: 'aborted', reason: 'handler_unavailable' });
  }

  /** A thread died by itself: account for its jobs if it had any, else just replace it. */
  onDied(slot: ThreadSlot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead || this.#closed) return;
    if (slot.jobs.length > 0) return this.#kill(slot, error, reason);
    this.#drop(slot, reason, error.message);
    this.#respawnForWaiting();
  }

  /** Runs are waiting and a thread is missing: start its replacement (after the restart backoff). */
  #respawnForWaiting(): void {
    if (this.#closed || this.#waiting.length === 0) return;
    let starting = 0;
    for (const slot of this.#slots) if (!slot.ready) starting++;
    if (starting === 0 && this.#slots.size < this.handler.concurrency) void this.#spawn();
    else this.#drainWaiting();
  }

  /** A thread died: forget it and back off before the next spawn. */
  #drop(slot: ThreadSlot, reason: ThreadRestartReason, detail: string): void {
    slot.dead = true;
    slot.ready = false;
    slot.stopTimer();
    if (!this.#slots.delete(slot)) return;
    void slot.terminate();
    this.#crashes += 1;
    const backoff = Math.min(this.pool.restartMaxMs, this.pool.restartInitialMs * 2 ** (this.#crashes - 1));
    this.#nextSpawnAt = Date.now() + backoff;
    this.pool.onRestart?.(this.handler.name, reason, detail);
  }
}

/**
 * The node's handler threads.
 * @example
 * const pool = new ThreadPool({ configPath: './drover.config.ts', restartInitialMs: 100, restartMaxMs: 30_000 });
 * const outcome = await pool.run(options); // options as for runJob
 */
export class ThreadPool {
  /** Jobs per thread the dispatcher may hand over at once (one running, the rest queued in the thread). */
  readonly queueDepth = THREAD_QUEUE_DEPTH;
  readonly #handlers = new Map<string, HandlerThreads>();
  readonly #urls: { configPath: string };

  constructor(private readonly options: ThreadPoolOptions) {
    this.#urls = { configPath: resolve(options.configPath) };
  }

  run(options: RunJobOptions): Promise<RunOutcome> {
    let threads = this.#handlers.get(options.handler.name);
    if (!threads) this.#handlers.set(options.handler.name, (threads = new HandlerThreads(options.handler, this.options, this.#urls)));
    return threads.run(options);
  }

  /** Threads alive (or starting) for a handler. */
  threads(handler: string): number {
    return this.#handlers.get(handler)?.size ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#handlers.values()].map((h) => h.close()));
  }
}

