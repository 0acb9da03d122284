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
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let handler;
const controllers = new Map();
const heartbeats = new Map();
let seq = 0;
const errorJson = (e) => e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };
parentPort.on('message', async (msg) => {
  if (msg.type === 'abort') { controllers.get(msg.id)?.abort(new Error(msg.reason)); return; }
  if (msg.type === 'heartbeat') { heartbeats.get(msg.seq)?.(msg.ok); heartbeats.delete(msg.seq); return; }
  if (msg.type !== 'run') return;
  const controller = new AbortController();
  controllers.set(msg.id, controller);
  const log = {};
  for (const level of ['info', 'warn', 'error', 'debug']) log[level] = (obj, m) => parentPort.postMessage({ type: 'log', id: msg.id, level, obj, msg: m });
  const ctx = { job: msg.job, event: msg.event, signal: controller.signal, log,
    heartbeat: () => new Promise((resolve) => { const s = ++seq; heartbeats.set(s, resolve); parentPort.postMessage({ type: 'heartbeat', id: msg.id, seq: s }); }) };
  try {
    const result = await handler.run(ctx);
    parentPort.postMessage({ type: 'result', id: msg.id, ok: true, result: result === undefined ? null : result });
  } catch (e) {
    parentPort.postMessage({ type: 'result', id: msg.id, ok: false, error: errorJson(e) });
  } finally { controllers.delete(msg.id); }
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

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  busy: boolean;
}

interface Pending {
  options: RunJobOptions;
  settle: (outcome: RunOutcome) => void;
}

/** One handler's threads. */
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
    return new Promise<RunOutcome>((settle) => this.#dispatch(slot, { options, settle }));
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#slots].map((slot) => slot.worker.terminate().catch(() => 0)));
    this.#slots.clear();
  }

  #dispatch(slot: Slot, { options, settle }: Pending): void {
    const { job, controller, handler } = { ...options, handler: this.handler };
    const id = ++this.#seq;
    const worker = slot.worker;
    let done = false;
    const finish = (outcome: RunOutcome, healthy: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      controller.signal.removeEventListener('abort', onAbort);
      if (healthy) {
        this.#crashes = 0;
        this.#releaseSlot(slot);
      }
      settle(options.isShutdownAborted() ? { kind: 'aborted' } : outcome);
    };
    const crash = (error: Error, reason: ThreadRestartReason) => {
      this.#drop(slot, reason, error.message);
      // A kill (memory, crash) counts toward poisonAfter; the timeout is an ordinary timed_out attempt.
      finish({ kind: 'failed', error, nonRetryable: false, timedOut: reason === 'timeout', killed: reason !== 'timeout' }, false);
    };
    const onMessage = (msg: { type: string; id?: number; ok?: boolean; result?: unknown; error?: { name: string; message: string; stack?: string }; level?: string; obj?: unknown; msg?: string; seq?: number }) => {
      if (msg.id !== id) return;
      if (msg.type === 'log') {
        const log = options.log() as unknown as Record<string, (obj: unknown, m?: string) => void>;
        log[msg.level ?? 'info']?.(msg.obj, msg.msg);
      } else if (msg.type === 'heartbeat') {
        void options.heartbeat().then((ok) => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok }), () => worker.postMessage({ type: 'heartbeat', seq: msg.seq, ok: false }));
      } else if (msg.type === 'result') {
        if (msg.ok) return finish({ kind: 'succeeded', result: msg.result }, true);
        const error = Object.assign(new Error(msg.error?.message ?? 'handler failed'), { name: msg.error?.name ?? 'Error' });
        if (msg.error?.stack) error.stack = msg.error.stack;
        finish({ kind: 'failed', error, nonRetryable: error.name === 'NonRetryableError', timedOut: false, killed: false }, true);
      }
    };
    const onError = (error: Error & { code?: string }) => {
      if (error.code === 'ERR_WORKER_OUT_OF_MEMORY') crash(new MemoryLimitError(handler.memoryMb), 'memory');
      else crash(new ThreadCrashError(error.message), 'crash');
    };
    const onExit = (code: number) => crash(new ThreadCrashError(`exited with code ${code}`), 'crash');
    const onAbort = () => worker.postMessage({ type: 'abort', id, reason: String((controller.signal.reason as Error | undefined)?.message ?? 'aborted') });
    // The hard timeout: the thread is terminated, whatever its code is doing (an infinite loop included).
    const timer = setTimeout(() => {
      controller.abort(new TimeoutError(handler.timeoutMs));
      crash(new TimeoutError(handler.timeoutMs), 'timeout');
    }, handler.timeoutMs);
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
    controller.signal.addEventListener('abort', onAbort, { once: true });
    worker.postMessage({ type: 'run', id, job: { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempts, maxAttempts: job.maxAttempts, payload: job.payload }, event: job.event });
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
    const slot: Slot = { worker: null as unknown as Worker, ready: Promise.resolve(), busy: true };
    this.#slots.add(slot); // counts against concurrency while it waits out a restart backoff
    const delay = this.#nextSpawnAt - Date.now();
    if (delay > 0) await new Promise((r) => setTimeout(r, delay).unref());
    slot.worker = new Worker(THREAD_SOURCE, {
      eval: true,
      workerData: { ...this.urls, name: this.handler.name },
      resourceLimits: { maxOldGenerationSizeMb: this.handler.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(64, Math.floor(this.handler.memoryMb / 8))) },
      stdout: false,
      stderr: false,
    });
    slot.worker.unref();
    slot.ready = new Promise<void>((resolveReady, reject) => {
      const onMessage = (msg: { type: string; error?: { message: string } }) => {
        if (msg.type === 'ready') resolveReady();
        else if (msg.type === 'load-error') reject(new Error(msg.error?.message ?? 'load failed'));
        else return;
        slot.worker.off('message', onMessage);
      };
      slot.worker.on('message', onMessage);
      slot.worker.once('error', reject);
    });
    slot.ready.catch(() => undefined);
    return slot;
  }

  #releaseSlot(slot: Slot): void {
    const waiter = this.#waiting.shift();
    if (waiter) return waiter(slot);
    slot.busy = false;
    this.#idle.push(slot);
  }

  /** A thread died: forget it, back off, and let a waiter spawn its replacement. */
  #drop(slot: Slot, reason: ThreadRestartReason, detail: string): void {
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
