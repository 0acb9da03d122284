/**
 * The program a handler thread runs (thread-pool.ts starts it), and the
 * progress it shares with the pool.
 *
 * Messages are batched both ways, because per message the main thread pays
 * more than a no-op job costs: the pool posts an array of messages per thread
 * per turn, and the thread answers the results of jobs it ran back to back in
 * one message. Only quick jobs' results wait: before it starts its next job,
 * the thread sends what it holds if the oldest held job started
 * RESULT_HOLD_MS or more ago; it also sends when it runs out of jobs, and
 * before it waits on an async one.
 *
 * Held results cannot be seen by the pool, so the thread also publishes, in
 * shared memory and without waking anyone, how many jobs it has started and
 * finished and when the running one started. From that the pool knows, at a
 * timeout or when the thread dies, which of its jobs had finished (their
 * results died with the thread: they are released to run again), which one
 * was running (it failed), and which never started (they move to another
 * thread), and it times a job from when it really started. So the price of
 * batching is bounded: a job that never yields (it hits the timeout) takes
 * with it the results of the jobs that started less than RESULT_HOLD_MS
 * before it, and those run again.
 */

import { Worker } from 'node:worker_threads';
import type { StepStart, WaitOptions } from './step-context.js';

/** The module a thread imports to load the config (plain JavaScript: a thread has no TypeScript loader yet). */
const LOADER_URL = new URL('./user-module.mjs', import.meta.url).href;

/**
 * Start a thread for one handler under its heap limit; it loads the config
 * and posts `ready` or `load-error` (see FromThread).
 */
export function startHandlerThread(handler: { name: string; memoryMb: number }, configPath: string, progress: SharedArrayBuffer, resultHoldMs: number): Worker {
  return new Worker(HANDLER_THREAD_SOURCE, {
    eval: true,
    workerData: { configPath, loaderUrl: LOADER_URL, name: handler.name, progress, resultHoldMs },
    resourceLimits: { maxOldGenerationSizeMb: handler.memoryMb, maxYoungGenerationSizeMb: Math.max(4, Math.min(64, Math.floor(handler.memoryMb / 8))) },
    stdout: false,
    stderr: false,
  });
}

/** Layout of the progress buffer: [startedAt (f64 ms, Date.now())], then [started, finished] (i32 counters, wrapping). */
export const PROGRESS_BYTES = 16;

export interface ThreadProgress {
  /** Date.now() when the latest job started. */
  readonly startedAt: Float64Array;
  /** [jobs started, jobs finished]: read with Atomics.load. */
  readonly counts: Int32Array;
}

export function threadProgress(buffer: SharedArrayBuffer): ThreadProgress {
  return { startedAt: new Float64Array(buffer, 0, 1), counts: new Int32Array(buffer, 8, 2) };
}

/** A result waits for the jobs after it only while its own job started less than this long ago. */
export const RESULT_HOLD_MS = 2;

/** One job as posted to a thread. */
export interface ThreadJob {
  type: 'run';
  id: number;
  job: { id: string; handler: string; queue: string; attempt: number; maxAttempts: number; payload: unknown };
  event: unknown;
}

/**
 * A `ctx.step` call of a thread's handler, for the step context on the main
 * thread (which holds the store and the lease). A `run` step is `begin`, its
 * function in the thread, then `record` (or `failed`); a sleep or wait is one
 * `wait`. The result travels as JSON text: what the store keeps.
 */
export type ThreadStepCall =
  | { op: 'begin'; name: string }
  | { op: 'record'; name: string; start: StepStart; json?: string; notJson?: string }
  | { op: 'failed'; name: string; startedAt: number }
  | { op: 'wait'; name: string; options: WaitOptions };

/** The main thread's answer to a step call (none to `failed`). */
export type ThreadStepReply = { ok: true; value: unknown } | { ok: false; error: { name: string; message: string } };
export type ThreadStepAnswer = { type: 'step'; seq: number } & ThreadStepReply;

/** What the pool posts to a thread, always in arrays (one postMessage per thread per turn). */
export type ToThread = ThreadJob | { type: 'abort'; id: number; reason: string } | { type: 'heartbeat'; seq: number; ok: boolean } | ThreadStepAnswer;

/** A job's answer. `aborted`: taken back before it started (shutdown). */
export interface ThreadResult {
  id: number;
  ok: boolean;
  result?: unknown;
  error?: { name: string; message: string; stack?: string };
  aborted?: boolean;
}

/** What a thread posts to the pool. */
export type FromThread =
  | { type: 'ready' }
  | { type: 'load-error'; error: { name: string; message: string } }
  | { type: 'results'; results: ThreadResult[] }
  | { type: 'log'; id: number; level: string; obj: unknown; msg?: string }
  | { type: 'heartbeat'; id: number; seq: number }
  | { type: 'step'; id: number; seq: number; call: ThreadStepCall };

// Plain CommonJS, evaluated in the thread: it must not need a TypeScript loader itself.
// Per job it allocates only the context: the AbortController and the logger are
// created when the handler first touches `ctx.signal` / `ctx.log` (a no-op job
// touches neither), and a synchronous handler answers without a promise.
export const HANDLER_THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const startedAt = new Float64Array(workerData.progress, 0, 1);
const counts = new Int32Array(workerData.progress, 8, 2);
const HOLD_MS = workerData.resultHoldMs;
let handler;
const running = new Map(); // job message id -> { controller, reason }
const heartbeats = new Map();
let seq = 0;
const stepCalls = new Map(); // step call seq -> { resolve, reject }
function stepCall(id, call) {
  return new Promise((resolve, reject) => {
    const s = ++seq;
    stepCalls.set(s, { resolve, reject });
    parentPort.postMessage({ type: 'step', id, seq: s, call });
  });
}
// ctx.step: each call is answered by the job's step context on the main thread; only a run step's function runs here.
function stepApi(id, jobId) {
  return {
    run: async (name, fn) => {
      const begun = await stepCall(id, { op: 'begin', name });
      if ('memoized' in begun) return begun.memoized;
      let value;
      try { value = await fn(); } catch (e) {
        parentPort.postMessage({ type: 'step', id, seq: 0, call: { op: 'failed', name, startedAt: begun.startedAt } });
        throw e;
      }
      const call = { op: 'record', name, start: begun };
      try { const json = JSON.stringify(value === undefined ? null : value); if (json !== undefined) call.json = json; } catch (e) { call.notJson = String(e); }
      return stepCall(id, call);
    },
    sleep: (name, duration) => stepCall(id, { op: 'wait', name, options: { kind: 'sleep', duration } }).then(() => undefined),
    waitForEvent: (name, options) => stepCall(id, { op: 'wait', name, options: Object.assign({}, options, { kind: 'event' }) }),
    interrupt: (name, options) => stepCall(id, { op: 'wait', name, options: Object.assign({}, options, { kind: 'interrupt' }) }),
    // core/durable.ts stepKey, written out: the thread imports nothing of drover's.
    key: (name) => 'drover:' + jobId + ':' + name,
  };
}
const errorJson = (e) => e instanceof Error ? { name: e.name, message: e.message, stack: e.stack } : { name: 'Error', message: String(e) };

// Results of finished jobs not yet posted, and when the oldest of those jobs started.
let results = [];
let heldSince = 0;
let runningSince = 0;
function flush() {
  if (results.length === 0) return;
  const batch = results;
  results = [];
  parentPort.postMessage({ type: 'results', results: batch });
}
function done(id, ok, value) {
  running.delete(id);
  Atomics.add(counts, 1, 1);
  if (results.length === 0) heldSince = runningSince;
  results.push(ok ? { id, ok: true, result: value === undefined ? null : value } : { id, ok: false, error: errorJson(value) });
  next();
}

// Jobs posted while one runs wait here: one job at a time per thread, in order.
const queue = [];
let busy = false;
function next() {
  const msg = queue.shift();
  if (!msg) {
    busy = false;
    flush();
    return;
  }
  if (results.length > 0 && Date.now() - heldSince >= HOLD_MS) flush();
  run(msg);
}
function run(msg) {
  busy = true;
  const id = msg.id;
  const state = { controller: null, reason: null };
  running.set(id, state);
  runningSince = startedAt[0] = Date.now();
  Atomics.add(counts, 0, 1); // after startedAt: a reader that sees the count sees the time
  let log;
  let step;
  const ctx = { job: msg.job, event: msg.event,
    get step() { return step || (step = stepApi(id, msg.job.id)); },
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
  if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
    // The thread waits now: nothing finished earlier may wait with it.
    flush();
    result.then((v) => done(id, true, v), (e) => done(id, false, e));
  } else {
    done(id, true, result);
  }
}
function receive(msg) {
  if (msg.type === 'run') {
    queue.push(msg);
    return;
  }
  if (msg.type === 'abort') {
    const state = running.get(msg.id);
    if (!state) {
      // Not started yet (shutdown): never start it; the answer tells the pool it is gone.
      const at = queue.findIndex((m) => m.id === msg.id);
      if (at >= 0) {
        queue.splice(at, 1);
        // Messages arrive only while the thread is idle or awaiting a job, when no result is held.
        results.push({ id: msg.id, ok: false, aborted: true, error: { name: 'AbortError', message: msg.reason } });
        flush();
      }
      return;
    }
    state.reason = msg.reason;
    if (state.controller) state.controller.abort(new Error(msg.reason));
    return;
  }
  if (msg.type === 'heartbeat') { heartbeats.get(msg.seq)?.(msg.ok); heartbeats.delete(msg.seq); }
  if (msg.type === 'step') {
    const call = stepCalls.get(msg.seq);
    stepCalls.delete(msg.seq);
    if (!call) return;
    if (msg.ok) call.resolve(msg.value);
    else call.reject(Object.assign(new Error(msg.error.message), { name: msg.error.name }));
  }
}
parentPort.on('message', (messages) => {
  for (const msg of messages) receive(msg);
  if (!busy) next();
});
(async () => {
  const { configPath, loaderUrl, name } = workerData;
  const config = await (await import(loaderUrl)).importConfig(configPath);
  handler = (config && config.handlers || []).find((h) => h && h.name === name);
  if (!handler || typeof handler.run !== 'function') throw new Error('handler "' + name + '" not found in ' + configPath);
  parentPort.postMessage({ type: 'ready' });
})().catch((e) => parentPort.postMessage({ type: 'load-error', error: errorJson(e) }));
`;
