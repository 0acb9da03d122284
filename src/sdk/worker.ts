/**
 * `drover/worker`: run handlers in another process, leasing jobs from a
 * Drover node over HTTP (docs/remote-workers.md).
 *
 * The loop long-polls `/v1/workers/lease` for as many jobs as it has free
 * slots, runs each with an AbortSignal, heartbeats while it runs, and reports
 * the outcome with the lease token. If the lease is lost (the job was
 * cancelled, or a heartbeat came too late and another worker took it), the
 * job's signal aborts and its outcome is dropped: the server would refuse it.
 *
 * Handlers get `ctx.step` (run, sleep, waitForEvent, interrupt, key) as the
 * node's own handlers do (worker-steps.ts): a step that suspends the job ends
 * the attempt without an outcome, and the job comes back in a later lease.
 *
 * The key needs the `work` scope, and its handler scope must cover every
 * handler given: by default only handlers declared `remote: true`, or those
 * its `--handlers` patterns match. A lease naming any other is refused (403
 * `handler-not-allowed`, reported to `onError`; the loop keeps asking, slowly,
 * in case the node's config or the key is fixed).
 *
 * `stop()` is graceful: no new leases, running jobs get `graceMs` to finish,
 * then their signals abort and their leases are released (the attempt is not
 * spent), so another worker picks them up at once.
 *
 * @example
 * import { runWorker, NonRetryableError } from 'drover/worker';
 * const worker = runWorker({
 *   url: 'http://127.0.0.1:7070',
 *   key: process.env.WORKER_KEY!,
 *   concurrency: 4,
 *   handlers: {
 *     async 'resize-image'(ctx) {
 *       const { url } = ctx.job.payload as { url: string };
 *       if (!url) throw new NonRetryableError('no url');
 *       return await resize(url, { signal: ctx.signal });
 *     },
 *   },
 * });
 * process.once('SIGTERM', () => void worker.stop());
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { DroverApiError } from './errors.js';
import { sleep, Transport, type TransportOptions } from './http.js';
import type { Event, LeasedJob } from './types.js';
import type { StepApi } from '../core/handler.js';
import { remoteSteps } from './worker-steps.js';

export { NonRetryableError } from '../core/errors.js';
export { DroverApiError, DroverNetworkError, isProblem } from './errors.js';
export type { LeasedJob } from './types.js';
export { StepSuspendedError } from './worker-steps.js';
export type { StepApi, WaitedEvent } from '../core/handler.js';

export interface RemoteJobContext<P = unknown> {
  job: { id: string; handler: string; queue: string; attempt: number; maxAttempts: number; payload: P };
  event: Event | null;
  /** Aborts when the lease is lost or the worker stops; stop work promptly. */
  signal: AbortSignal;
  /** Extend the lease now (it is also extended automatically); false when the lease is lost. */
  heartbeat(): Promise<boolean>;
  /** Durable steps (docs/durable-execution.md); the job's stored steps are fetched on the first call. */
  step: StepApi;
}

export type RemoteHandler<P = any> = (ctx: RemoteJobContext<P>) => unknown | Promise<unknown>;

export interface WorkerOptions extends Pick<TransportOptions, 'url' | 'key' | 'fetch' | 'headers'> {
  /**
   * Handler name → code. The names must be handlers in the node's config that
   * the key may lease: `remote: true` ones for a default work key, or those
   * its handler patterns match (docs/remote-workers.md, "Key scope").
   */
  handlers: Record<string, RemoteHandler>;
  /** Jobs run at once. Default 1. */
  concurrency?: number;
  /** Lease length; heartbeats extend it. 1,000–3,600,000. Default 30 s. */
  leaseMs?: number;
  /** How long one lease request waits for work. Default 20 s. */
  waitMs?: number;
  /** Heartbeat interval. Default leaseMs / 3. */
  heartbeatMs?: number;
  /** What `stop()` waits for running jobs by default. Default 25 s. */
  shutdownGraceMs?: number;
  /** Recorded on each attempt (prefixed `remote:` by the server). Default `<host>-<pid>-<random>`. */
  workerId?: string;
  /** Aborting it stops the worker (like `stop()`). */
  signal?: AbortSignal;
  /** Called for errors the loop survives: lease failures, lost leases, undeliverable outcomes. Default: console.error. */
  onError?: (error: Error, context: { op: string; jobId?: string }) => void;
}

export interface Worker {
  readonly workerId: string;
  /** Jobs running now. */
  readonly running: number;
  /** Stop leasing, let running jobs finish within `graceMs`, release the rest. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  /** Resolves when the worker has stopped. */
  readonly done: Promise<void>;
}

/** The lease was lost: the job belongs to someone else now (or was cancelled). */
export class LeaseLostError extends Error {
  constructor(jobId: string) {
    super(`lost the lease of job ${jobId} (cancelled, expired or taken over); its outcome will not be recorded`);
    this.name = 'LeaseLostError';
  }
}

/** The worker is stopping and the grace period is over. */
export class WorkerStoppingError extends Error {
  constructor() {
    super('the worker is stopping; the job is released and will run again elsewhere');
    this.name = 'WorkerStoppingError';
  }
}

/** Between lease attempts the key is refused (401/403): it will not fix itself soon, so do not hammer the node. */
const REFUSED_RETRY_MS = 30_000;

/** The node says this job is not ours to act on: its lease is gone as far as we are concerned. */
function leaseGone(error: unknown): boolean {
  if (!(error instanceof DroverApiError)) return false;
  return error.status === 409 || error.status === 404 || error.code === 'lease-key-mismatch' || error.code === 'handler-not-allowed';
}

/** After the grace period, how long aborted handlers get to settle before their leases are released regardless. */
const ABORT_GRACE_MS = 2_000;

interface Running {
  job: LeasedJob;
  /** The node's clock minus ours, estimated from the lease answer (never overestimated). */
  clockOffsetMs: number;
  controller: AbortController;
  lost: boolean;
  /** A step suspended the job: the attempt is over, with no outcome to report. */
  suspended: boolean;
  releasing: boolean;
  done: Promise<void>;
}

/**
 * Start a remote worker; it runs until `stop()` or `signal` aborts.
 * @example
 * const worker = runWorker({ url, key, handlers: { 'send-sms': async (ctx) => sms.send(ctx.job.payload) } });
 */
export function runWorker(options: WorkerOptions): Worker {
  const names = Object.keys(options.handlers);
  if (names.length === 0) throw new TypeError('handlers: give at least one handler');
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 100) throw new TypeError('concurrency: expected an integer from 1 to 100');
  const leaseMs = options.leaseMs ?? 30_000;
  const waitMs = options.waitMs ?? 20_000;
  const heartbeatMs = options.heartbeatMs ?? Math.floor(leaseMs / 3);
  const workerId = (options.workerId ?? `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`).replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 100);
  const onError = options.onError ?? ((error: Error, context: { op: string; jobId?: string }) => console.error(`drover worker ${workerId}: ${context.op}${context.jobId ? ` (job ${context.jobId})` : ''}: ${error.message}`));
  const http = new Transport({ url: options.url, key: options.key, ...(options.fetch ? { fetch: options.fetch } : {}), ...(options.headers ? { headers: options.headers } : {}), retries: 0 });

  const running = new Map<string, Running>();
  const stopping = new AbortController();
  let slotFreed: (() => void) | null = null;
  let stopped: Promise<void> | null = null;

  const post = <T>(path: string, body: unknown, extra: { signal?: AbortSignal; timeoutMs?: number } = {}) => http.request<T>('POST', path, { body, ...extra });

  /** Report an outcome, retrying transport failures until the lease would have expired anyway. */
  async function report(op: 'complete' | 'fail' | 'release', entry: Running, body: Record<string, unknown>): Promise<void> {
    const deadline = Date.now() + leaseMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await post(`/v1/workers/${op}`, { jobId: entry.job.id, token: entry.job.leaseToken, ...body });
        return;
      } catch (error) {
        const e = error instanceof Error ? error : new Error(String(error));
        if (leaseGone(e)) {
          onError(e instanceof DroverApiError && e.status === 403 ? e : new LeaseLostError(entry.job.id), { op, jobId: entry.job.id });
          return;
        }
        if ((e instanceof DroverApiError && e.status < 500 && e.status !== 429) || Date.now() > deadline) {
          onError(e, { op, jobId: entry.job.id });
          return;
        }
        const wait = e instanceof DroverApiError && e.retryAfterMs !== null ? e.retryAfterMs : Math.min(5_000, 200 * 2 ** attempt);
        await sleep(wait);
      }
    }
  }

  async function heartbeat(entry: Running): Promise<boolean> {
    if (entry.lost || entry.suspended) return false;
    try {
      await post('/v1/workers/heartbeat', { jobId: entry.job.id, token: entry.job.leaseToken, leaseMs });
      return true;
    } catch (error) {
      // A beat sent just before a step suspended the job: the lease ended with the attempt, nothing was lost.
      if (entry.suspended) return false;
      if (leaseGone(error)) {
        entry.lost = true;
        entry.controller.abort(new LeaseLostError(entry.job.id));
        onError(new LeaseLostError(entry.job.id), { op: 'heartbeat', jobId: entry.job.id });
        return false;
      }
      // A missed beat is not a lost lease; the next one may get through.
      onError(error instanceof Error ? error : new Error(String(error)), { op: 'heartbeat', jobId: entry.job.id });
      return true;
    }
  }

  async function execute(entry: Running): Promise<void> {
    const { job } = entry;
    const handler = options.handlers[job.handler];
    const timer = setInterval(() => void heartbeat(entry), heartbeatMs);
    timer.unref?.();
    let outcome: { ok: true; result: unknown } | { ok: false; error: Error };
    try {
      if (!handler) throw Object.assign(new Error(`this worker has no handler "${job.handler}"`), { name: 'NonRetryableError' });
      const result = await handler({
        job: { id: job.id, handler: job.handler, queue: job.queue, attempt: job.attempt, maxAttempts: job.maxAttempts, payload: job.payload },
        event: job.event,
        signal: entry.controller.signal,
        heartbeat: () => heartbeat(entry),
        step: stepsOf(entry),
      });
      outcome = { ok: true, result: result === undefined ? null : result };
    } catch (error) {
      outcome = { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
    } finally {
      clearInterval(timer);
    }
    // Suspended: the node holds the job now (an outcome would be refused as stale anyway).
    if (entry.lost || entry.suspended) return;
    if (entry.releasing && !outcome.ok) {
      await report('release', entry, {});
    } else if (outcome.ok) {
      await report('complete', entry, { result: outcome.result });
    } else {
      const { error } = outcome;
      await report('fail', entry, {
        error: (error.stack ?? `${error.name}: ${error.message}`).slice(0, 8192),
        nonRetryable: error.name === 'NonRetryableError',
      });
    }
  }

  function stepsOf(entry: Running): StepApi {
    const { job } = entry;
    return remoteSteps({
      jobId: job.id,
      token: job.leaseToken,
      // A 429 wrote nothing: wait and resend (the transport's own retries are off for outcomes).
      post: (path, body, extra = {}) => http.request('POST', path, { body: { jobId: job.id, token: job.leaseToken, ...body }, retries: 3, ...extra }),
      nodeNow: () => Date.now() + entry.clockOffsetMs,
      leaseLost: (error) => {
        if (!entry.lost) {
          entry.lost = true;
          entry.controller.abort(new LeaseLostError(job.id));
          onError(error instanceof DroverApiError && error.status === 403 ? error : new LeaseLostError(job.id), { op: 'step', jobId: job.id });
        }
        return new LeaseLostError(job.id);
      },
      suspended: () => {
        entry.suspended = true;
      },
    });
  }

  function start(job: LeasedJob, clockOffsetMs: number): void {
    const entry: Running = { job, clockOffsetMs, controller: new AbortController(), lost: false, suspended: false, releasing: false, done: Promise.resolve() };
    running.set(job.id, entry);
    entry.done = execute(entry)
      .catch((error: unknown) => onError(error instanceof Error ? error : new Error(String(error)), { op: 'run', jobId: job.id }))
      .finally(() => {
        running.delete(job.id);
        slotFreed?.();
      });
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping.signal.aborted) {
      const free = concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => {
          slotFreed = resolve;
          stopping.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        slotFreed = null;
        continue;
      }
      try {
        const { jobs } = await post<{ jobs: LeasedJob[] }>(
          '/v1/workers/lease',
          { workerId, handlers: names, max: free, leaseMs, waitMs },
          { signal: stopping.signal, timeoutMs: waitMs + 30_000 },
        );
        failures = 0;
        // The node took each lease at leaseExpiresAt - leaseMs on its clock, before we got the answer:
        // so `now + offset` is never ahead of the node (a wait's look-back must not start late).
        const received = Date.now();
        for (const job of jobs) start(job, Date.parse(job.leaseExpiresAt) - leaseMs - received);
      } catch (error) {
        if (stopping.signal.aborted) break;
        const e = error instanceof Error ? error : new Error(String(error));
        onError(e, { op: 'lease' });
        const refused = e instanceof DroverApiError && (e.status === 401 || e.status === 403);
        const wait = e instanceof DroverApiError && e.retryAfterMs !== null ? e.retryAfterMs : refused ? REFUSED_RETRY_MS : Math.min(30_000, 500 * 2 ** failures++);
        await sleep(wait, stopping.signal).catch(() => undefined);
      }
    }
  }

  const looping = loop();

  async function stop(graceMs = options.shutdownGraceMs ?? 25_000): Promise<void> {
    stopped ??= (async () => {
      stopping.abort(new WorkerStoppingError());
      await looping;
      const all = () => Promise.all([...running.values()].map((r) => r.done));
      if (!(await settlesWithin(all(), graceMs))) {
        // Grace is over: abort what is left; a job that then fails is released, not failed.
        for (const entry of running.values()) {
          entry.releasing = true;
          entry.controller.abort(new WorkerStoppingError());
        }
        if (!(await settlesWithin(all(), ABORT_GRACE_MS))) {
          // Handlers that ignore their signal: release their leases anyway and drop whatever they return later.
          await Promise.all(
            [...running.values()].map(async (entry) => {
              entry.lost = true;
              await report('release', entry, {});
            }),
          );
        }
      }
    })();
    return stopped;
  }

  if (options.signal) {
    if (options.signal.aborted) void stop();
    else options.signal.addEventListener('abort', () => void stop(), { once: true });
  }
  const done = looping.then(async () => {
    await stop();
  });

  return {
    workerId,
    get running() {
      return running.size;
    },
    stop,
    done,
  };
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
