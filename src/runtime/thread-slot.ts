/**
 * One handler thread as the main thread sees it: the worker and its one set
 * of listeners, the jobs posted to it in order, the messages for it (posted
 * together once per turn), where it is in its jobs (the progress it shares,
 * handler-thread.ts), the hard-timeout timer, and the answers to what its
 * running jobs ask for (log lines, heartbeats, durable steps). Which thread
 * a job goes to, and what becomes of a dead thread's jobs, is its owner's
 * (`SlotOwner`: one handler's threads in thread-pool.ts).
 */
import type { Worker } from 'node:worker_threads';
import type { ResolvedHandler } from '../core/config.js';
import { PROGRESS_BYTES, startHandlerThread, threadProgress, type FromThread, type ThreadProgress, type ThreadResult, type ThreadStepCall, type ToThread } from './handler-thread.js';
import { TimeoutError, type RunJobOptions, type RunOutcome } from './job-runner.js';

/** The attempt was killed for exceeding the handler's heap limit. */
export class MemoryLimitError extends Error {
  constructor(mb: number) {
    super(`handler exceeded its memory limit of ${mb} MiB (limits.memoryMb); its thread was terminated`);
    this.name = 'MemoryLimitError';
  }
}

/** The handler's thread died without an answer (process.exit, a native crash). */
export class ThreadCrashError extends Error {
  constructor(detail: string) {
    super(`handler thread crashed: ${detail}`);
    this.name = 'ThreadCrashError';
  }
}

/** Why a handler's thread was replaced (the `reason` label of `drover_thread_restarts_total`). */
export type ThreadRestartReason = 'memory' | 'crash' | 'timeout';

/** A job posted to a thread: `jobs[0]` of its slot is the oldest not yet answered. */
export interface Active {
  id: number;
  options: RunJobOptions;
  settle: (outcome: RunOutcome) => void;
}

/** What a slot reports to the owner of its handler's threads. */
export interface SlotOwner {
  /** The thread loaded its handler and takes jobs. */
  onReady(slot: ThreadSlot): void;
  onResults(slot: ThreadSlot, results: readonly ThreadResult[]): void;
  /** The thread could not load its handler (it had not run a job). */
  onLoadFailed(slot: ThreadSlot, error: Error): void;
  /** The thread died by itself (out of memory, exited, crashed). */
  onDied(slot: ThreadSlot, error: Error, reason: ThreadRestartReason): void;
  /** The hard timeout: the running job used up its time, or the thread took no job for as long. */
  onOverdue(slot: ThreadSlot, error: Error): void;
}

export class ThreadSlot {
  worker: Worker | null = null;
  /** The thread loaded its handler and takes jobs. */
  ready = false;
  /** Jobs posted to the thread and not answered yet, in order. Empty: idle. */
  jobs: Active[] = [];
  /** The thread was dropped (died, killed, or the pool closed): ignore whatever it still reports. */
  dead = false;
  /** Jobs whose results have been received (compared with the thread's finished count). */
  answered = 0;
  /** What the thread has started and finished, written by the thread itself. */
  readonly #progress: ThreadProgress;
  readonly #buffer = new SharedArrayBuffer(PROGRESS_BYTES);
  /** Messages for the thread, posted together at the end of this turn. */
  #outbox: ToThread[] | null = null;
  /** Checks the running job's hard timeout; set while the slot has jobs. */
  #timer: NodeJS.Timeout | null = null;
  /** The thread's started count when the timer last found it running nothing (null: it was running a job). */
  #idleAt: number | null = null;

  constructor(
    private readonly handler: ResolvedHandler,
    private readonly owner: SlotOwner,
  ) {
    this.#progress = threadProgress(this.#buffer);
  }

  /** Start the thread and listen to it for its whole life (listeners per job cost more main-thread time than the job's messages). */
  start(configPath: string, resultHoldMs: number): void {
    const worker = startHandlerThread(this.handler, configPath, this.#buffer, resultHoldMs);
    this.worker = worker;
    worker.unref();
    let loading = true;
    worker.on('message', (msg: FromThread) => {
      if (msg.type === 'ready') {
        loading = false;
        this.ready = true;
        this.owner.onReady(this);
      } else if (msg.type === 'load-error') {
        loading = false;
        this.owner.onLoadFailed(this, new Error(msg.error.message));
      } else {
        this.#onMessage(msg);
      }
    });
    worker.on('error', (error: Error & { code?: string }) => {
      if (loading) return this.owner.onLoadFailed(this, error);
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') this.owner.onDied(this, new MemoryLimitError(this.handler.memoryMb), 'memory');
      else this.owner.onDied(this, new ThreadCrashError(error.message), 'crash');
    });
    worker.on('exit', (code: number) => {
      if (loading) return this.owner.onLoadFailed(this, new ThreadCrashError(`exited with code ${code}`));
      this.owner.onDied(this, new ThreadCrashError(`exited with code ${code}`), 'crash');
    });
  }

  /** Terminate the thread (never rejects). */
  terminate(): Promise<unknown> {
    return this.worker?.terminate().catch(() => 0) ?? Promise.resolve();
  }

  /** Queue a message for the thread; everything queued this turn goes in one postMessage. */
  post(message: ToThread): void {
    if (this.dead) return;
    if (this.#outbox) {
      this.#outbox.push(message);
      return;
    }
    this.#outbox = [message];
    queueMicrotask(() => {
      const messages = this.#outbox!;
      this.#outbox = null;
      if (!this.dead) this.worker!.postMessage(messages);
    });
  }

  /** Arm the hard timeout for the job about to be posted, unless it is armed already. */
  armTimeout(): void {
    if (this.#timer === null) this.#startTimer(this.handler.timeoutMs);
  }

  stopTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /**
   * Where the thread is in its jobs: `finished` of them have ended (their
   * results may still be on the way), `running` is the index of the one it
   * runs (null: none), started at `startedAt`.
   */
  position(): { finished: number; running: number | null; startedAt: number; started: number } {
    const { counts, startedAt } = this.#progress;
    const finishedCount = Atomics.load(counts, 1);
    const started = Atomics.load(counts, 0);
    const finished = Math.min(this.jobs.length, (finishedCount - this.answered) | 0);
    const running = started !== finishedCount && finished < this.jobs.length ? finished : null;
    return { finished, running, startedAt: startedAt[0]!, started };
  }

  /**
   * The hard timeout. The timer is armed when the slot gets work and, when it
   * fires, looks at what the thread runs and since when: a job that has not
   * used up its time yet gets the rest, one that has is stopped by
   * terminating the thread, whatever its code is doing (an infinite loop
   * included). One timer per busy thread, not per job.
   */
  #startTimer(ms: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.dead || this.jobs.length === 0) return;
      const { timeoutMs } = this.handler;
      const { running, startedAt, started } = this.position();
      if (running === null) {
        // Its jobs are answered or posted and it runs none: fine while messages
        // travel, but a whole timeout later with nothing started, its event loop
        // is stuck outside any job (a runaway callback a job left behind).
        if (this.#idleAt !== started) {
          this.#idleAt = started;
          return this.#startTimer(timeoutMs);
        }
        return this.owner.onOverdue(this, new ThreadCrashError(`it took no job for ${timeoutMs} ms (limits.timeoutMs) while jobs waited for it`));
      }
      this.#idleAt = null;
      const left = startedAt + timeoutMs - Date.now();
      if (left > 0) return this.#startTimer(left);
      const error = new TimeoutError(timeoutMs);
      this.jobs[running]?.options.controller.abort(error);
      this.owner.onOverdue(this, error);
    }, ms);
  }

  #onMessage(msg: Exclude<FromThread, { type: 'ready' | 'load-error' }>): void {
    if (this.dead) return;
    if (msg.type === 'results') return this.owner.onResults(this, msg.results);
    const active = this.jobs.find((a) => a.id === msg.id);
    if (!active) return;
    if (msg.type === 'step') return this.#onStep(active, msg.seq, msg.call);
    if (msg.type === 'log') {
      const log = active.options.log() as unknown as Record<string, (obj: unknown, m?: string) => void>;
      log[msg.level]?.(msg.obj, msg.msg);
      return;
    }
    const reply = (ok: boolean) => this.post({ type: 'heartbeat', seq: msg.seq, ok });
    void active.options.heartbeat().then(reply, () => reply(false));
  }

  /** A `ctx.step` call of the thread's handler: the job's step context (main thread: store, lease) answers it. */
  #onStep(active: Active, seq: number, call: ThreadStepCall): void {
    const steps = active.options.steps;
    const answer = steps ? steps().answer(call) : Promise.resolve({ ok: false as const, error: { name: 'Error', message: 'durable steps (ctx.step) are not available where this handler runs' } });
    void answer.then((reply) => reply && this.post({ type: 'step', seq, ...reply }));
  }
}
