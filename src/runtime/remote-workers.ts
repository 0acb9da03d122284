/**
 * Jobs run by remote workers over HTTP (docs/remote-workers.md): lease,
 * long-poll, heartbeat, and complete, fail or release with the lease token.
 * The route (`api/routes/workers.ts`) keeps the schemas, the key's scope and
 * the status codes; every transition is made here, on the same parts as the
 * node's own dispatcher: admission holds what it would hold, a failure goes
 * through `recordFailure` (outcome.ts) with the same policy and random, and
 * the same lifecycle events are emitted, carrying the request's origin.
 *
 * Every settle is fenced by the token in the store: a stale token (the job
 * was reaped, cancelled, released or leased again) is a `stale_lease` error
 * and changes nothing.
 */
import type { ResolvedHandler } from '../core/config.js';
import { DroverError } from '../core/errors.js';
import type { JobRow, LeasedJob } from '../core/types.js';
import type { FenceResult, StorageEngine } from '../store/engine.js';
import { LEASE_LIMITS } from '../core/lease-limits.js';
import type { Admission } from './admission.js';
import type { Lifecycle, RemoteOrigin } from './lifecycle.js';
import { recordFailure, reportedError, type OutcomeContext } from './outcome.js';
import { asLeased, notFound, RemoteSteps } from './remote-steps.js';
import { capFields, contendedPauseMs, emitCapRefusals } from './cap-refusals.js';
import { tenantCapsIfAny, workerCapsFor, type FlowCaps, type LeaseCapReport, type LeaseCaps } from '../core/lease-caps.js';

/** Without a notification, look again this often anyway (another node's enqueue on a store without cross-process notify). */
const RELEASE_CHECK_MS = 5_000;
/** How often a waiting lease checks that its client and the node are still there. */
const WAIT_TICK_MS = 500;
/** Lease looks per call when another node holds some tenants' locks (`contendedPauseMs` apart). */
const CONTENDED_ATTEMPTS = 3;
/** Attempt start times kept in memory at most (beyond, durations come from the attempt rows). */
const MAX_STARTED = 100_000;

export interface RemoteWorkersOptions {
  store: StorageEngine;
  lifecycle: Lifecycle;
  handlers: ReadonlyMap<string, ResolvedHandler>;
  admission: Admission;
  pausedQueues: () => readonly string[];
  clock: () => number;
  random: () => number;
  poisonAfter?: number;
  /** A job became scheduled for `runAt` (a retry, a held job): stage it when due. */
  onScheduled: (runAt: number) => void;
  /** The node accepts work; a waiting lease stops waiting once it does not. */
  isRunning: () => boolean;
  /** Lease caps (config `flow`): tenants, and the defaults for worker ids and work keys. */
  caps?: FlowCaps;
}

/** Which lease caps held back jobs in a remote lease (the route reports them: `Drover-Lease-Capped`). */
export type CapName = 'tenant' | 'worker' | 'key';

/** The HTTP client a lease is for: a lease stops waiting when it goes, and what was leased for it is handed back. */
export interface LeaseClient {
  /** Calls `listener` when the connection closes; returns the unsubscribe. */
  onClose(listener: () => void): () => void;
  /** The client has gone (its connection closed before the answer was written). */
  gone(): boolean;
}

export interface RemoteLeaseRequest {
  /** The worker's own id, if it gave one. */
  workerId?: string;
  /** The API key leasing (stored with each lease: only it may settle them). */
  keyId: string | null;
  handlers: readonly string[];
  max?: number;
  leaseMs?: number;
  waitMs?: number;
  requestId: string;
  /** The leasing key's name (its caps may be configured by name: `flow.workers.keys`). */
  keyName?: string;
}

export interface SettleRequest {
  jobId: string;
  token: string;
  requestId: string;
  /**
   * Called with the job's row before the fenced write (the key's scope and
   * binding); throw to refuse, nothing is changed. Without it heartbeat,
   * complete and release do not read the row first.
   */
  check?: (job: JobRow | null) => void;
}

export type SettleOp = 'heartbeat' | 'complete' | 'fail' | 'release' | 'step' | 'suspend';

export class RemoteWorkers {
  /** When each remote attempt started (for durations); entries go when the attempt ends. Bounded. */
  readonly #started = new Map<string, number>();
  readonly #waiting = new Set<() => void>();
  readonly #outcomes: OutcomeContext;
  #closing = false;
  /** Durable steps over the lease protocol: read the stored steps, record one, suspend (remote-steps.ts). */
  readonly steps: RemoteSteps;

  constructor(private readonly options: RemoteWorkersOptions) {
    this.#outcomes = {
      store: options.store,
      lifecycle: options.lifecycle,
      clock: options.clock,
      random: options.random,
      onRetryScheduled: options.onScheduled,
      ...(options.poisonAfter !== undefined ? { poisonAfter: options.poisonAfter } : {}),
    };
    this.steps = new RemoteSteps({
      store: options.store,
      lifecycle: options.lifecycle,
      clock: options.clock,
      onScheduled: options.onScheduled,
      durationOf: (jobId, attempt) => this.#durationOf(jobId, attempt),
      ended: (jobId) => void this.#started.delete(jobId),
      stale: (request, op, row) => this.#stale(request, op, row),
      origin,
    });
  }

  /** Prefixed so a remote worker can never share the node's own worker id (whose leases a restart reclaims). */
  static workerId(given: string | undefined, keyId: string | null): string {
    return `remote:${given ?? keyId ?? 'anonymous'}`;
  }

  /** Stop every waiting lease now (the server is closing); later leases do not wait. */
  stopWaiting(): void {
    this.#closing = true;
    for (const poke of this.#waiting) poke();
  }

  /**
   * Lease jobs of the named handlers, waiting up to `waitMs` for some. The
   * jobs are marked started (a worker that dies on one counts a crash) and
   * `job:start` is emitted. `jobs` null: the client went away and what was
   * leased for it was handed back, unspent.
   */
  async lease(request: RemoteLeaseRequest, client: LeaseClient): Promise<{ jobs: LeasedJob[] | null; gone: boolean; capped: CapName[] }> {
    const workerId = RemoteWorkers.workerId(request.workerId, request.keyId);
    const { jobs, gone, capped } = await this.#leaseWaiting(request, client, workerId);
    if (jobs.length > 0 && (gone || client.gone())) {
      await Promise.all(jobs.map((job) => this.options.store.release(job.id, job.leaseToken)));
      return { jobs: null, gone: true, capped };
    }
    const now = this.options.clock();
    for (const job of jobs) {
      if (this.#started.size > MAX_STARTED) this.#started.clear();
      this.#started.set(job.id, now);
      this.options.lifecycle.emit('job:start', { job, waitMs: Math.max(0, now - job.runAt), ...origin(request.requestId, workerId) });
    }
    return { jobs, gone, capped };
  }

  /** The caps of one remote lease: tenants as configured; worker id and key by the key's own entry, else the defaults (core/lease-caps.ts). */
  #capsFor(request: RemoteLeaseRequest): LeaseCaps {
    const flow = this.options.caps;
    if (!flow) return {};
    const tenants = tenantCapsIfAny(flow.tenants);
    const key = request.keyId === null ? null : { id: request.keyId, name: request.keyName ?? request.keyId };
    return { ...(tenants ? { tenants } : {}), ...workerCapsFor(flow.workers, key) };
  }

  /** A remote lease waiting on a worker or key cap may fit now: one of the caller's jobs was settled. */
  #pokeWaiting(): void {
    for (const poke of this.#waiting) poke();
  }

  async heartbeat(request: SettleRequest & { leaseMs?: number }): Promise<JobRow> {
    await this.#check(request);
    const result = await this.options.store.heartbeat(request.jobId, request.token, request.leaseMs ?? LEASE_LIMITS.leaseMs.default);
    return this.#fenced(request, 'heartbeat', result);
  }

  async complete(request: SettleRequest & { result: unknown }): Promise<JobRow> {
    await this.#check(request);
    const result = await this.options.store.complete(request.jobId, request.token, request.result);
    const job = await this.#fenced(request, 'complete', result);
    this.#pokeWaiting();
    const durationMs = await this.#durationOf(job.id, job.attempts);
    this.#started.delete(job.id);
    this.options.lifecycle.emit('job:succeeded', { job: asLeased(job, request.token), durationMs, ...origin(request.requestId, job.workerId) });
    return job;
  }

  /** Fail the attempt by the handler's retry policy, exactly as an in-process attempt; `retryAt` null: the job is dead. */
  async fail(request: SettleRequest & { error: string; nonRetryable: boolean }): Promise<{ job: JobRow; retryAt: number | null }> {
    const { store, handlers } = this.options;
    const before = await store.getJob(request.jobId);
    if (!before) throw notFound(request.jobId);
    request.check?.(before);
    // Not running: certainly stale. A wrong token on a running job is fenced by the store below.
    if (before.state !== 'running') await this.#fenced(request, 'fail', { ok: false, reason: 'stale_lease' }, before);
    const durationMs = await this.#durationOf(before.id, before.attempts);
    const recorded = await recordFailure(
      this.#outcomes,
      asLeased(before, request.token),
      // A handler removed from the config since the job was leased has no policy left: the job is dead.
      handlers.get(before.handler),
      { error: reportedError(request.error), nonRetryable: request.nonRetryable, timedOut: false, killed: false },
      durationMs,
      origin(request.requestId, before.workerId),
    );
    const job = await this.#fenced(request, 'fail', recorded, before);
    this.#started.delete(job.id);
    this.#pokeWaiting();
    return { job, retryAt: recorded.retryAt };
  }

  async release(request: SettleRequest): Promise<JobRow> {
    await this.#check(request);
    const result = await this.options.store.release(request.jobId, request.token);
    const job = await this.#fenced(request, 'release', result);
    this.#started.delete(job.id);
    this.#pokeWaiting();
    this.options.lifecycle.emit('job:released', { job: asLeased(job, request.token), reason: 'shutdown', ...origin(request.requestId, job.workerId) });
    return job;
  }

  async #check(request: SettleRequest): Promise<void> {
    if (request.check) request.check(await this.options.store.getJob(request.jobId));
  }

  /** The settled row, or the error for a missing job or a stale lease (emitting `job:stale` for the latter). */
  async #fenced(request: Omit<SettleRequest, 'check'>, op: SettleOp, result: FenceResult, before?: JobRow | null): Promise<JobRow> {
    if (result.ok) return result.job;
    if (result.reason === 'not_found') throw notFound(request.jobId);
    return this.#stale(request, op, before === undefined ? await this.options.store.getJob(request.jobId) : before);
  }

  /** Emit `job:stale` for the row (if any) and throw the 409: nothing was changed. */
  async #stale(request: Omit<SettleRequest, 'check'>, op: SettleOp, row: JobRow | null): Promise<never> {
    if (row) this.options.lifecycle.emit('job:stale', { job: asLeased(row, request.token), op, ...origin(request.requestId, row.workerId) });
    throw new DroverError('stale_lease', 'the lease token is no longer valid (the job was reaped, cancelled, released or leased again); stop working on this job, nothing was changed', {
      extensions: { jobId: request.jobId },
    });
  }

  /** How long the attempt has run (its start is forgotten once the attempt is settled). */
  async #durationOf(jobId: string, attempt: number): Promise<number> {
    let at = this.#started.get(jobId);
    if (at === undefined) {
      // Leased through another node, or before a restart: the attempt row knows.
      at = (await this.options.store.getAttempts(jobId)).find((a) => a.attempt === attempt)?.startedAt;
    }
    return at === undefined ? 0 : Math.max(0, this.options.clock() - at);
  }

  /** Lease, waiting up to `waitMs` for work; `gone` when the client disconnected meanwhile. */
  async #leaseWaiting(request: RemoteLeaseRequest, client: LeaseClient, workerId: string): Promise<{ jobs: LeasedJob[]; gone: boolean; capped: CapName[] }> {
    const { store, lifecycle } = this.options;
    const waitMs = request.waitMs ?? LEASE_LIMITS.waitMs.default;
    const deadline = performance.now() + waitMs;
    let signalled = false;
    let gone = false;
    let wake: (() => void) | null = null;
    const poke = () => {
      signalled = true;
      wake?.();
    };
    // Subscribe before the first look, so work committed between the look and the wait is not missed.
    // Work named for other handlers only is not this worker's: keep waiting.
    const offWork = store.onWork((_queues, handlers) => {
      if (!handlers || handlers.some((name) => request.handlers.includes(name))) poke();
    });
    const offHandler = lifecycle.on('handler:changed', poke);
    // Quarantine cleared, breaker half-open or closed: held jobs may be leased now.
    const offSupervision = lifecycle.on('handler:supervision', poke);
    const offQueue = lifecycle.on('queue:changed', poke);
    const offClose = client.onClose(() => {
      gone = client.gone();
      poke();
    });
    this.#waiting.add(poke);
    try {
      let lastLook = 0;
      for (;;) {
        signalled = false;
        lastLook = performance.now();
        const { jobs, capped } = await this.#leaseOnce(request, workerId);
        if (jobs.length > 0 || gone) return { jobs, gone, capped };
        for (;;) {
          const left = deadline - performance.now();
          if (left <= 0 || gone || this.#closing || !this.options.isRunning()) return { jobs: [], gone, capped };
          if (signalled || performance.now() - lastLook >= RELEASE_CHECK_MS) break;
          let timer: NodeJS.Timeout | undefined;
          await new Promise<void>((resolve) => {
            wake = resolve;
            timer = setTimeout(resolve, Math.min(left, WAIT_TICK_MS));
          });
          wake = null;
          clearTimeout(timer);
        }
      }
    } finally {
      offWork();
      offHandler();
      offSupervision();
      offQueue();
      offClose();
      this.#waiting.delete(poke);
    }
  }

  /** One look: held as the node's own dispatcher holds them (paused, quarantined, breaker open or probing, rate-limited). */
  async #leaseOnce(request: RemoteLeaseRequest, workerId: string): Promise<{ jobs: LeasedJob[]; capped: CapName[] }> {
    const { store, admission, handlers: configured } = this.options;
    const max = request.max ?? 1;
    const handlers = request.handlers.map((name) => ({ name, max: admission.remoteRoom(configured.get(name)!, max) })).filter((h) => h.max > 0);
    if (handlers.length === 0) return { jobs: [], capped: [] };
    const leased: LeasedJob[] = [];
    const capped = new Set<CapName>();
    for (let attempt = 1; ; attempt++) {
      const caps = capFields(this.#capsFor(request));
      const room = handlers.map((h) => ({ ...h, max: h.max - leased.filter((job) => job.handler === h.name).length })).filter((h) => h.max > 0);
      leased.push(
        ...(await store.lease({
          workerId,
          keyId: request.keyId,
          handlers: room,
          limit: max - leased.length,
          leaseMs: request.leaseMs ?? LEASE_LIMITS.leaseMs.default,
          excludeQueues: this.options.pausedQueues(),
          ...caps,
        })),
      );
      emitCapRefusals(this.options.lifecycle, caps.capped, workerId);
      for (const name of capNames(caps.capped)) capped.add(name);
      // Another node was leasing some tenants at that moment (not at a cap):
      // its commit takes a few ms and wakes nobody, so look again shortly.
      if (!caps.capped?.contended || leased.length >= max || attempt === CONTENDED_ATTEMPTS) break;
      await new Promise((resolve) => setTimeout(resolve, contendedPauseMs()));
    }
    const admitted: LeasedJob[] = [];
    const held: Array<Promise<unknown>> = [];
    for (const job of leased) {
      const until = await admission.admit(job, configured.get(job.handler)!);
      if (until === null) admitted.push(job);
      // Over its key's rate limit: back to the store unspent, due when the key has room.
      else held.push(store.release(job.id, job.leaseToken, until).then((r) => r.ok && this.options.onScheduled(until)));
    }
    await Promise.all(held);
    // Handed to the remote worker, which runs them at once: started, so a
    // worker that dies on one counts a crash toward poisonAfter.
    const marks = await Promise.all(admitted.map((job) => store.start(job.id, job.leaseToken)));
    return { jobs: admitted.filter((_, i) => marks[i]!.ok), capped: (['tenant', 'worker', 'key'] as const).filter((name) => capped.has(name)) };
  }
}

function capNames(report: LeaseCapReport | undefined): CapName[] {
  if (!report) return [];
  return [...(report.tenantByQueue.size > 0 ? (['tenant'] as const) : []), ...(report.worker ? (['worker'] as const) : []), ...(report.key ? (['key'] as const) : [])];
}

function origin(requestId: string, workerId: string | null): RemoteOrigin {
  return { remote: { requestId, workerId: workerId ?? 'unknown' } };
}
