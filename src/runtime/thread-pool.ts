/**
 * Runs `isolation: 'thread'` handlers in worker threads: one pool per
 * handler, up to its concurrency, each thread with a V8 heap limit
 * (`resourceLimits`). The hard timeout terminates the thread, so an infinite
 * loop is stopped; running out of heap kills only that thread. Either way only
 * the job on that thread fails, with a reason that says which limit it hit,
 * and the thread is replaced after a capped exponential backoff so a crash
 * loop cannot spin the CPU.
 *
 * The thread loads the user's config module itself (by path, through tsx for
 * TypeScript) and looks the handler up by name: functions cannot be posted to
 * a thread.
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ResolvedHandler } from '../core/config.js';
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

export interface ThreadPoolOptions {
  /** Path of the config module that defines the handlers. */
  configPath: string;
  restartInitialMs: number;
  restartMaxMs: number;
  /** A thread was replaced: it ran out of memory, died, or was terminated at the hard timeout (metrics, logs). */
  onRestart?: (handler: string, reason: ThreadRestartReason, detail: string) => void;
}

// Plain CommonJS, evaluated in the thread: it must not need a TypeScript loader itself.
// Per job it allocates only the context: the AbortController and the logger are
// created when the handler first touches `ctx.signal` / `ctx.log` (a no-op job
// touches neither), and a synchronous handler answers without a promise.
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let handler;
const running = new Map(); // job message id -> { controller, reason }
const heartbeats = new Map();
let seq = 0;
const errorJson = (e) => e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };
const done = (id, ok, value) => {
  running.delete(id);
  if (ok) parentPort.postMessage({ type: 'result', id, ok: true, result: value === undefined ? null : value });
  else parentPort.postMessage({ type: 'result', id, ok: false, error: errorJson(value) });
  next();
};
// Jobs posted while one runs wait here: one job at a time per thread.
const queue = [];
let busy = false;
function next() {
  busy = false;
  const msg = queue.shift();
  if (msg) run(msg);
}
function run(msg) {
  busy = true;
  const id = msg.id;
  const state = { controller: null, reason: null };
  running.set(id, state);
  let log;
  const ctx = { job: msg.job, event: msg.event,
    get signal() {
      if (!state.controller) {
        state.controller = new AbortController();
        if (state.reason !== null) state.controller.abort(new Error(state.reason));
      }
      return state.controller.signal;
    },
    get log() {
      if (!log) {
        log = {};
        for (const level of ['info', 'warn', 'error', 'debug']) log[level] = (obj, m) => parentPort.postMessage({ type: 'log', id, level, obj, msg: m });
      }
      return log;
    },
    heartbeat: () => new Promise((resolve) => { const s = ++seq; heartbeats.set(s, resolve); parentPort.postMessage({ type: 'heartbeat', id, seq: s }); }) };
  let result;
  try { result = handler.run(ctx); } catch (e) { done(id, false, e); return; }
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') result.then((v) => done(id, true, v), (e) => done(id, false, e));
  else done(id, true, result);
}
parentPort.on('message', (msg) => {
  if (msg.type === 'run') {
    if (busy) queue.push(msg);
    else run(msg);
    return;
  }
  if (msg.type === 'abort') {
    const state = running.get(msg.id);
    if (!state) {
      // Not started yet (shutdown): never start it; the answer tells the pool it is gone.
      const at = queue.findIndex((m) => m.id === msg.id);
      if (at >= 0) { queue.splice(at, 1); parentPort.postMessage({ type: 'result', id: msg.id, ok: false, error: { name: 'AbortError', message: msg.reason } }); }
      return;
    }
    state.reason = msg.reason;
    if (state.controller) state.controller.abort(new Error(msg.reason));
    return;
  }
  if (msg.type === 'heartbeat') { heartbeats.get(msg.seq)?.(msg.ok); heartbeats.delete(msg.seq); }
});
(async () => {
  const { configUrl, tsxUrl, name } = workerData;
  const mod = /\\.(c|m)?ts$/.test(configUrl) ? await (await import(tsxUrl)).tsImport(configUrl, configUrl) : await import(configUrl);
  let config = mod.default;
  if (config && typeof config === 'object' && 'default' in config && !('handlers' in config)) config = config.default;
  handler = (config && config.handlers || []).find((h) => h && h.name === name);
  if (!handler || typeof handler.run !== 'function') throw new Error('handler "' + name + '" not found in ' + configUrl);
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'load-error', error: errorJson(e) }));
`;

/** One message from a handler thread. */
interface ThreadMessage {
  type: 'ready' | 'load-error' | 'log' | 'heartbeat' | 'result';
  id?: number;
  ok?: boolean;
  result?: unknown;
  error?: { name: string; message: string; stack?: string };
  level?: string;
  obj?: unknown;
  msg?: string;
  seq?: number;
}

/**
 * Jobs posted to one thread at most: the one it runs and the next one, which
 * waits in the thread. The thread starts the next job the moment the current
 * one ends instead of sleeping until the main thread has seen the result and
 * answered (a wake-up costs ~20 µs, and the answer waits for the main thread's
 * next event-loop turn, behind its group commit): with quick handlers this
 * doubles what a thread gets done per turn of the main thread. A queued job
 * has not started: its timeout starts with it, a thread that dies hands it to
 * another thread, and shutdown takes it back unstarted. The dispatcher uses
 * the depth for quick handlers only (as it leases ahead only for them).
 */
export const THREAD_QUEUE_DEPTH = 2;

/** A job posted to a thread: `jobs[0]` of its slot runs, the rest wait in the thread. */
interface Active {
  id: number;
  options: RunJobOptions;
  settle: (outcome: RunOutcome) => void;
  timer: NodeJS.Timeout | null;
  onAbort: () => void;
}

interface Slot {
  worker: Worker | null;
  /** The thread loaded its handler and takes jobs. */
  ready: boolean;
  /** Jobs posted to the thread, in order: the first runs. Empty: idle. */
  jobs: Active[];
  /** The thread was dropped (died, killed, or the pool closed): ignore whatever it still reports. */
  dead: boolean;
}

/**
 * One handler's threads, at most `concurrency`, each running one job at a
 * time with up to `THREAD_QUEUE_DEPTH - 1` more posted behind it. Each thread
 * has one set of listeners for its whole life (adding and removing listeners
 * per job cost more main-thread time than the job's messages themselves).
 */
class HandlerThreads {
  readonly #slots = new Set<Slot>();
  /** Runs waiting for room on a thread (all threads full, or being spawned). */
  readonly #waiting: Array<{ options: RunJobOptions; settle: (outcome: RunOutcome) => void }> = [];
  #crashes = 0;
  #nextSpawnAt = 0;
  #closed = false;
  #seq = 0;

  constructor(
    private readonly handler: ResolvedHandler,
    private readonly pool: ThreadPoolOptions,
    private readonly urls: { configUrl: string; tsxUrl: string },
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
      for (const active of slot.jobs.splice(0)) {
        if (active.timer) clearTimeout(active.timer);
        active.settle({ kind: 'aborted' });
      }
    }
    for (const { settle } of this.#waiting.splice(0)) settle({ kind: 'aborted' });
    await Promise.all(slots.map((slot) => slot.worker?.terminate().catch(() => 0)));
  }

  /** Post the job to the least busy ready thread with room, spawn one, or wait. */
  #place(options: RunJobOptions, settle: (outcome: RunOutcome) => void): void {
    if (this.#closed) return settle({ kind: 'aborted' });
    let best: Slot | null = null;
    for (const slot of this.#slots) {
      if (slot.dead || !slot.ready) continue;
      if (slot.jobs.length < THREAD_QUEUE_DEPTH && (best === null || slot.jobs.length < best.jobs.length)) best = slot;
    }
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

  /** Hand waiting runs to threads with room. */
  #drainWaiting(): void {
    while (this.#waiting.length > 0 && !this.#closed) {
      let room: Slot | null = null;
      for (const slot of this.#slots) {
        if (slot.dead || !slot.ready || slot.jobs.length >= THREAD_QUEUE_DEPTH) continue;
        if (room === null || slot.jobs.length < room.jobs.length) room = slot;
      }
      if (!room) return;
      const { options, settle } = this.#waiting.shift()!;
      this.#dispatch(room, options, settle);
    }
  }

  #dispatch(slot: Slot, options: RunJobOptions, settle: (outcome: RunOutcome) => void): void {
    const { job, controller } = options;
    const id = ++this.#seq;
    const worker = slot.worker!;
    const onAbort = () => worker.postMessage({ type: 'abort', id, reason: String((controller.signal.reason as Error | undefined)?.message ?? 'aborted') });
    const active: Active = { id, options, settle, timer: null, onAbort };
    slot.jobs.push(active);
    if (slot.jobs.length === 1) this.#startTimer(slot, active);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    worker.postMessage({ type: 'run', id, job: { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, maxAttempts: job.maxAttempts, payload: job.payload }, event: job.event });
  }

  /** The hard timeout, from when the job starts on its thread: the thread is terminated, whatever its code is doing (an infinite loop included). */
  #startTimer(slot: Slot, active: Active): void {
    const { timeoutMs } = this.handler;
    active.timer = setTimeout(() => {
      active.options.controller.abort(new TimeoutError(timeoutMs));
      this.#crash(slot, new TimeoutError(timeoutMs), 'timeout');
    }, timeoutMs);
  }

  /** End the job at the head of the slot; the next posted one has started on the thread. */
  #finishHead(slot: Slot, outcome: RunOutcome): void {
    const active = slot.jobs.shift();
    if (!active) return;
    this.#crashes = 0;
    this.#settle(active, outcome);
    const next = slot.jobs[0];
    if (next) this.#startTimer(slot, next);
    this.#drainWaiting();
  }

  #settle(active: Active, outcome: RunOutcome): void {
    if (active.timer) clearTimeout(active.timer);
    active.options.controller.signal.removeEventListener('abort', active.onAbort);
    active.settle(active.options.isShutdownAborted() ? { kind: 'aborted' } : outcome);
  }

  /** The thread is gone (memory, crash) or is being killed (timeout): fail its running job, move the queued ones, replace it. */
  #crash(slot: Slot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead) return;
    const [head, ...queued] = slot.jobs.splice(0);
    this.#drop(slot, reason, error.message);
    // A kill (memory, crash) counts toward poisonAfter; the timeout is an ordinary timed_out attempt.
    if (head) this.#settle(head, { kind: 'failed', error, nonRetryable: false, timedOut: reason === 'timeout', killed: reason !== 'timeout' });
    // Never started: they go to another thread, as if just posted.
    for (const active of queued) {
      active.options.controller.signal.removeEventListener('abort', active.onAbort);
      if (active.options.isShutdownAborted()) active.settle({ kind: 'aborted' });
      else this.#waiting.unshift({ options: active.options, settle: active.settle });
    }
    this.#respawnForWaiting();
  }

  #onMessage(slot: Slot, msg: ThreadMessage): void {
    if (slot.dead) return;
    const head = slot.jobs[0];
    if (!head) return;
    if (msg.type === 'result') {
      if (msg.id !== head.id) {
        // A queued job taken back unstarted (shutdown): answered out of order.
        const at = slot.jobs.findIndex((a) => a.id === msg.id);
        if (at > 0) this.#settle(slot.jobs.splice(at, 1)[0]!, { kind: 'aborted' });
        return;
      }
      if (msg.ok) return this.#finishHead(slot, { kind: 'succeeded', result: msg.result });
      const error = Object.assign(new Error(msg.error?.message ?? 'handler failed'), { name: msg.error?.name ?? 'Error' });
      if (msg.error?.stack) error.stack = msg.error.stack;
      this.#finishHead(slot, { kind: 'failed', error, nonRetryable: error.name === 'NonRetryableError', timedOut: false, killed: false });
      return;
    }
    const active = slot.jobs.find((a) => a.id === msg.id);
    if (!active) return;
    if (msg.type === 'log') {
      const log = active.options.log() as unknown as Record<string, (obj: unknown, m?: string) => void>;
      log[msg.level ?? 'info']?.(msg.obj, msg.msg);
    } else if (msg.type === 'heartbeat') {
      const worker = slot.worker!;
      void active.options.heartbeat().then((ok) => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok }), () => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok: false }));
    }
  }

  async #spawn(): Promise<void> {
    const slot: Slot = { worker: null, ready: false, jobs: [], dead: false };
    this.#slots.add(slot); // counts against concurrency while it waits out a restart backoff
    const delay = this.#nextSpawnAt - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay).unref());
    if (this.#closed) return;
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { ...this.urls, name: this.handler.name },
      resourceLimits: { maxOldGenerationSizeMb: this.handler.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(64, Math.floor(this.handler.memoryMb / 8))) },
      stdout: false,
      stderr: false,
    });
    slot.worker = worker;
    worker.unref();
    let loading = true;
    worker.on('message', (msg: ThreadMessage) => {
      if (msg.type === 'ready') {
        loading = false;
        slot.ready = true;
        this.#drainWaiting();
      } else if (msg.type === 'load-error') {
        loading = false;
        this.#loadFailed(slot, new Error(msg.error?.message ?? 'load failed'));
      } else {
        this.#onMessage(slot, msg);
      }
    });
    worker.on('error', (error: Error & { code?: string }) => {
      if (loading) return this.#loadFailed(slot, error);
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') this.#died(slot, new MemoryLimitError(this.handler.memoryMb), 'memory');
      else this.#died(slot, new ThreadCrashError(error.message), 'crash');
    });
    worker.on('exit', (code: number) => {
      if (loading) return this.#loadFailed(slot, new ThreadCrashError(`exited with code ${code}`));
      this.#died(slot, new ThreadCrashError(`exited with code ${code}`), 'crash');
    });
  }

  /** The thread could not load the handler: the first waiting run fails with the reason (not a kill), the thread is replaced. */
  #loadFailed(slot: Slot, error: Error): void {
    if (slot.dead || this.#closed) return;
    this.#drop(slot, 'crash', `could not load the handler: ${error.message}`);
    const first = this.#waiting.shift();
    first?.settle({ kind: 'failed', error, nonRetryable: false, timedOut: false, killed: false });
    this.#respawnForWaiting();
  }

  /** A thread died by itself: fail its job if it had one, else just replace it. */
  #died(slot: Slot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead || this.#closed) return;
    if (slot.jobs.length > 0) return this.#crash(slot, error, reason);
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
  #drop(slot: Slot, reason: ThreadRestartReason, detail: string): void {
    slot.dead = true;
    slot.ready = false;
    if (!this.#slots.delete(slot)) return;
    void slot.worker?.terminate().catch(() => 0);
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
  readonly #urls: { configUrl: string; tsxUrl: string };

  constructor(private readonly options: ThreadPoolOptions) {
    const require = createRequire(import.meta.url);
    this.#urls = {
      configUrl: pathToFileURL(resolve(options.configPath)).href,
      tsxUrl: pathToFileURL(require.resolve('tsx/esm/api')).href,
    };
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
