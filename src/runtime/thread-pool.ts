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
};
function run(msg) {
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
  if (msg.type === 'run') return run(msg);
  if (msg.type === 'abort') {
    const state = running.get(msg.id);
    if (!state) return;
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

/** The job a thread is running now. */
interface Active {
  id: number;
  options: RunJobOptions;
  settle: (outcome: RunOutcome) => void;
  timer: NodeJS.Timeout;
  onAbort: () => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy: boolean;
  /** Set while a job runs on this thread. */
  active: Active | null;
  /** The thread was dropped (died, killed, or the pool closed): ignore whatever it still reports. */
  dead: boolean;
}

/**
 * One handler's threads. Each thread has one set of listeners for its whole
 * life; the job it runs is `slot.active`. (Adding and removing listeners per
 * job cost more main-thread time than the job's messages themselves.)
 */
class HandlerThreads {
  readonly #slots = new Set<Slot>();
  readonly #idle: Slot[] = [];
  readonly #waiting: Array<(slot: Slot) => void> = [];
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

  async run(options: RunJobOptions): Promise<RunOutcome> {
    const slot = await this.#acquire();
    if (this.#closed) return { kind: 'aborted' };
    try {
      await slot.ready;
    } catch (error) {
      this.#drop(slot, 'crash', `could not load the handler: ${(error as Error).message}`);
      return { kind: 'failed', error: error as Error, nonRetryable: false, timedOut: false, killed: false };
    }
    if (slot.dead) {
      // Died while idle, between being handed out and now: the job never reached it.
      return this.run(options);
    }
    return new Promise<RunOutcome>((settle) => this.#dispatch(slot, options, settle));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const slot of this.#slots) slot.dead = true;
    await Promise.all([...this.#slots].map((slot) => slot.worker.terminate().catch(() => 0)));
    this.#slots.clear();
  }

  #dispatch(slot: Slot, options: RunJobOptions, settle: (outcome: RunOutcome) => void): void {
    const { job, controller } = options;
    const id = ++this.#seq;
    const handler = this.handler;
    const onAbort = () => slot.worker.postMessage({ type: 'abort', id, reason: String((controller.signal.reason as Error | undefined)?.message ?? 'aborted') });
    // The hard timeout: the thread is terminated, whatever its code is doing (an infinite loop included).
    const timer = setTimeout(() => {
      controller.abort(new TimeoutError(handler.timeoutMs));
      this.#crash(slot, new TimeoutError(handler.timeoutMs), 'timeout');
    }, handler.timeoutMs);
    slot.active = { id, options, settle, timer, onAbort };
    controller.signal.addEventListener('abort', onAbort, { once: true });
    slot.worker.postMessage({ type: 'run', id, job: { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, maxAttempts: job.maxAttempts, payload: job.payload }, event: job.event });
  }

  /** End the slot's active job; a healthy thread goes back to the pool. */
  #finish(slot: Slot, outcome: RunOutcome, healthy: boolean): void {
    const active = slot.active;
    if (!active) return;
    slot.active = null;
    clearTimeout(active.timer);
    active.options.controller.signal.removeEventListener('abort', active.onAbort);
    if (healthy) {
      this.#crashes = 0;
      this.#releaseSlot(slot);
    }
    active.settle(active.options.isShutdownAborted() ? { kind: 'aborted' } : outcome);
  }

  /** The thread is gone (memory, crash) or is being killed (timeout): replace it and fail its job. */
  #crash(slot: Slot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead) return;
    this.#drop(slot, reason, error.message);
    // A kill (memory, crash) counts toward poisonAfter; the timeout is an ordinary timed_out attempt.
    this.#finish(slot, { kind: 'failed', error, nonRetryable: false, timedOut: reason === 'timeout', killed: reason !== 'timeout' }, false);
  }

  #onMessage(slot: Slot, msg: ThreadMessage): void {
    const active = slot.active;
    if (!active || msg.id !== active.id || slot.dead) return;
    if (msg.type === 'result') {
      if (msg.ok) return this.#finish(slot, { kind: 'succeeded', result: msg.result }, true);
      const error = Object.assign(new Error(msg.error?.message ?? 'handler failed'), { name: msg.error?.name ?? 'Error' });
      if (msg.error?.stack) error.stack = msg.error.stack;
      this.#finish(slot, { kind: 'failed', error, nonRetryable: error.name === 'NonRetryableError', timedOut: false, killed: false }, true);
    } else if (msg.type === 'log') {
      const log = active.options.log() as unknown as Record<string, (obj: unknown, m?: string) => void>;
      log[msg.level ?? 'info']?.(msg.obj, msg.msg);
    } else if (msg.type === 'heartbeat') {
      const worker = slot.worker;
      void active.options.heartbeat().then((ok) => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok }), () => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok: false }));
    }
  }

  #acquire(): Promise<Slot> {
    const idle = this.#idle.pop();
    if (idle) {
      idle.busy = true;
      return Promise.resolve(idle);
    }
    if (this.#slots.size < this.handler.concurrency) return this.#spawn();
    return new Promise((resolveSlot) => this.#waiting.push(resolveSlot));
  }

  async #spawn(): Promise<Slot> {
    const slot: Slot = { worker: null as unknown as Worker, ready: Promise.resolve(), busy: true, active: null, dead: false };
    this.#slots.add(slot); // counts against concurrency while it waits out a restart backoff
    const delay = this.#nextSpawnAt - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay).unref());
    const worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { ...this.urls, name: this.handler.name },
      resourceLimits: { maxOldGenerationSizeMb: this.handler.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(64, Math.floor(this.handler.memoryMb / 8))) },
      stdout: false,
      stderr: false,
    });
    slot.worker = worker;
    worker.unref();
    let loaded: (() => void) | undefined;
    let failed: ((error: Error) => void) | undefined;
    slot.ready = new Promise<void>((resolveReady, reject) => {
      loaded = resolveReady;
      failed = reject;
    });
    slot.ready.catch(() => undefined);
    worker.on('message', (msg: ThreadMessage) => {
      if (msg.type === 'ready') loaded?.();
      else if (msg.type === 'load-error') failed?.(new Error(msg.error?.message ?? 'load failed'));
      else this.#onMessage(slot, msg);
    });
    worker.on('error', (error: Error & { code?: string }) => {
      failed?.(error);
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') this.#died(slot, new MemoryLimitError(this.handler.memoryMb), 'memory');
      else this.#died(slot, new ThreadCrashError(error.message), 'crash');
    });
    worker.on('exit', (code: number) => {
      failed?.(new ThreadCrashError(`exited with code ${code}`));
      this.#died(slot, new ThreadCrashError(`exited with code ${code}`), 'crash');
    });
    return slot;
  }

  /** A thread died by itself: fail its job if it had one, else just replace it. */
  #died(slot: Slot, error: Error, reason: ThreadRestartReason): void {
    if (slot.dead || this.#closed) return;
    if (slot.active) return this.#crash(slot, error, reason);
    const at = this.#idle.indexOf(slot);
    if (at >= 0) this.#idle.splice(at, 1);
    this.#drop(slot, reason, error.message);
  }

  #releaseSlot(slot: Slot): void {
    const waiter = this.#waiting.shift();
    if (waiter) return waiter(slot);
    slot.busy = false;
    this.#idle.push(slot);
  }

  /** A thread died: forget it, back off, and let a waiter spawn its replacement. */
  #drop(slot: Slot, reason: ThreadRestartReason, detail: string): void {
    slot.dead = true;
    if (!this.#slots.delete(slot)) return;
    void slot.worker.terminate().catch(() => 0);
    this.#crashes += 1;
    const backoff = Math.min(this.pool.restartMaxMs, this.pool.restartInitialMs * 2 ** (this.#crashes - 1));
    this.#nextSpawnAt = Date.now() + backoff;
    this.pool.onRestart?.(this.handler.name, reason, detail);
    const waiter = this.#waiting.shift();
    if (waiter && !this.#closed) void this.#spawn().then(waiter);
  }
}

/**
 * The node's handler threads.
 * @example
 * const pool = new ThreadPool({ configPath: './drover.config.ts', restartInitialMs: 100, restartMaxMs: 30_000 });
 * const outcome = await pool.run(options); // options as for runJob
 */
export class ThreadPool {
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
