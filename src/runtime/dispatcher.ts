/**
 * The dispatcher leases due jobs for the handlers that have free capacity and
 * runs them in-process. It is woken by new work (store notifications, finished
 * jobs) and otherwise sleeps: there is no poll on the hot path.
 *
 * One pump runs at a time; a wake that arrives while pumping sets a flag so the
 * pump goes round again instead of racing itself.
 *
 * Lease-ahead: a handler whose jobs are quick (recent average under
 * `FAST_JOB_MS`, lease-room.ts) may hold extra leased jobs in a local
 * buffer, so a freed slot starts the next job at once and more jobs ride in
 * each group commit. The buffer holds about 20 ms of the handler's work
 * (lease-window.ts): it is also how far a newly arrived job may be overtaken.
 * Slow handlers get no buffer: holding their jobs here would only keep them
 * from other nodes. Buffered jobs are `running` in the store (their lease
 * protects them); on shutdown they are released unstarted.
 */
import type { ResolvedHandler } from '../core/config.js';
import { toError } from '../core/errors.js';
import type { LeasedJob, NewJob } from '../core/types.js';
import type { AttemptTracer } from '../obs/attempt-tracing.js';
import type { Logger } from '../obs/logger.js';
import type { IntakeLease, StorageEngine } from '../store/engine.js';
import type { FeatureFlags } from '../core/rollout.js';
import { Attempt, AttemptQueue, type AttemptDeps, type Lane } from './attempt.js';
import { runInline, type RunJobOptions, type RunningJob, type RunOutcome } from './job-runner.js';
import type { Lifecycle, LifecycleChannel } from './lifecycle.js';
import { recordOutcome, type OutcomeContext } from './outcome.js';
import type { StepDeps } from './step-context.js';
import { CompletionRate } from './lease-window.js';
import { LeaseRoom, type LaneAsk } from './lease-room.js';
import { capFields, contendedPauseMs, emitCapRefusals } from './cap-refusals.js';
import type { TenantCaps } from '../core/lease-caps.js';

/** Slots held for an enqueue's jobs while its insert leases them (`Dispatcher.claimAtIntake`). */
export interface IntakeClaim {
  /** Per job of the call, the lane holding a slot for it; null: inserted as usual. */
  readonly lanes: ReadonlyArray<Lane | null>;
  /** What the store is asked to lease (`EnqueueOptions.lease`). */
  readonly lease: IntakeLease;
}

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

/** Run one attempt's handler where its handler runs. A function of the attempt, so tracing can wrap it without a closure per job. */
function runAttempt(attempt: Attempt): RunOutcome | Promise<RunOutcome> {
  const { threads } = attempt.lane;
  return threads ? threads.run(attempt) : runInline(attempt);
}

const STALE_START: RunOutcome = Object.freeze({ kind: 'stale', op: 'start' });

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

export class Dispatcher {
  readonly running = new Map<string, RunningJob>();
  /** Each handler's slots, buffer and run-time average (attempt.ts), by name: one lookup serves a job's whole path. */
  readonly #lanes = new Map<string, Lane>();
  /** Jobs waiting for the store's rate-limit verdict (see `admit`). */
  readonly #admitting = new Set<Promise<void>>();
  #pumping = false;
  /** The pump in progress (settled when it ends); `releaseBuffered` waits for a lease still out. */
  #pumpRun: Promise<void> = Promise.resolve();
  /** Handlers whose last lease found nothing more; skipped until new work is announced (`wake`). */
  readonly #idleHandlers = new Set<string>();
  /** Counts `wake` calls for all handlers, so a lease that raced one does not mark a handler idle. */
  #workSeen = 0;
  /** Handlers named by `wake` since the current lease began: that lease may have missed their new work. */
  readonly #wokenDuringLease = new Set<string>();
  #again = false;
  /** Claims whose insert is still out, or whose unstarted jobs are being handed back (claimAtIntake → startClaimed): shutdown waits for them. */
  readonly #claims = new Map<IntakeClaim, { settled: Promise<void>; settle(): void }>();
  #contendedRetry: NodeJS.Timeout | undefined;
  #stopped = true;
  #idle: Array<() => void> = [];
  readonly #leaseBatch: number;
  readonly #leaseMarginMs: number;
  readonly #outcomes: OutcomeContext;
  /** Slots, lease-ahead room and the starts that ride in a lease (lease-room.ts). */
  readonly #room: LeaseRoom;
  readonly #jobStart: LifecycleChannel<'job:start'>;
  readonly #monotonic: () => number;
  /** The store may answer a start mark once it is sent (`startOnSend`): a young lease's handler begins then. */
  readonly #startOnSend: boolean;

  constructor(private readonly options: DispatcherOptions) {
    this.#leaseBatch = options.leaseBatch ?? 250;
    this.#leaseMarginMs = options.leaseMarginMs ?? 30_000;
    this.#monotonic = options.monotonic ?? performance.now.bind(performance);
    this.#startOnSend = options.store.capabilities.startOnSend === true;
    this.#room = new LeaseRoom(options, this.#leaseMarginMs);
    this.#outcomes = {
      store: options.store,
      lifecycle: options.lifecycle,
      clock: options.clock,
      random: options.random ?? Math.random,
      onRetryScheduled: options.onRetryScheduled,
      ...(options.poisonAfter !== undefined ? { poisonAfter: options.poisonAfter } : {}),
    };
    this.#jobStart = options.lifecycle.channel('job:start');
    const deps: AttemptDeps = {
      store: options.store,
      lifecycle: options.lifecycle,
      logger: options.logger,
      leaseMarginMs: this.#leaseMarginMs,
      attempts: options.attempts,
      steps: options.steps,
      features: options.features,
    };
    for (const handler of options.handlers.values()) {
      const threads = handler.isolation === 'thread' && options.threads ? options.threads : null;
      this.#lanes.set(handler.name, { handler, deps, running: 0, buffer: new AttemptQueue(), avgRunMs: Number.NaN, completions: new CompletionRate(), threads });
    }
  }

  start(): void {
    this.#stopped = false;
    const now = this.options.clock();
    for (const lane of this.#lanes.values()) this.#startBuffered(lane, now);
    this.wake();
  }

  /** Stop leasing; running jobs continue. */
  stopLeasing(): void {
    this.#stopped = true;
    clearTimeout(this.#contendedRetry);
    this.#contendedRetry = undefined;
  }

  get leasing(): boolean {
    return !this.#stopped;
  }

  /**
   * Ask for a pump soon. Cheap and safe to call often. The pump runs on
   * `process.nextTick`: after the current cascade of promise callbacks (every
   * job finishing in this turn has freed its slot, so one lease asks for all
   * of the room) but before the store's group commit, which flushes on
   * `setImmediate`. So the lease joins the same commit as the completions or
   * the enqueue that woke it: one commit from enqueue to start.
   *
   * `handlers`: new work is for these only (the store names the handlers of
   * the jobs it committed), so only they stop being idle; the built-in
   * handlers, usually idle, are not asked again for every enqueue. Without
   * it (a reconnect, a poll, a freed concurrency key): any handler.
   */
  wake(handlers?: readonly string[]): void {
    if (handlers === undefined) {
      this.#workSeen++;
      this.#idleHandlers.clear();
      this.#wakeForRoom();
      return;
    }
    let ours = false;
    for (const name of handlers) {
      const handler = this.options.handlers.get(name);
      // Another node's handler, or one only remote workers run: nothing to lease here.
      if (!handler || handler.remote) continue;
      ours = true;
      this.#idleHandlers.delete(name);
      this.#wokenDuringLease.add(name);
    }
    if (ours) this.#wakeForRoom();
  }

  /**
   * A slot freed up: lease again, but only for handlers that had work last
   * time. Asking an idle handler (the built-in ones usually are) on every
   * finished job would be a lease round trip per job that finds nothing.
   */
  #wakeForRoom(): void {
    if (this.#stopped) return;
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    this.#pumpRun = new Promise((resolve) => process.nextTick(() => void this.#pump().finally(resolve)));
  }

  /**
   * Another node held some tenants' locks during the lease, so their jobs were
   * passed over though not at a cap. Its commit wakes nobody here (only new
   * work is announced across nodes), so look again after a short, jittered
   * pause instead of idling until the next poll.
   */
  #lookAgainSoon(): void {
    if (this.#contendedRetry || this.#stopped) return;
    this.#contendedRetry = setTimeout(() => {
      this.#contendedRetry = undefined;
      this.#wakeForRoom();
    }, contendedPauseMs());
    this.#contendedRetry.unref();
  }

  /**
   * Jobs of an enqueue this node may lease in the insert itself (engines with
   * `leaseAtIntake`) and start as soon as it commits: one round trip from
   * enqueue to start instead of the insert's and then a lease's. Only into
   * an idle lane (its last lease found nothing, nothing buffered) with a free
   * slot for every due job of the call, so no queued job is overtaken; only
   * handlers whose jobs start without asking anyone (what a lease may mark
   * started: lease-room.ts), no concurrency keys, no paused queue, no tenant
   * caps. Each job's slot is held until `startClaimed`, which must follow.
   * Null when no job qualifies.
   */
  claimAtIntake(jobs: readonly NewJob[], now: number): IntakeClaim | null {
    if (this.#stopped || this.options.tenantCaps || jobs.some((job) => job.idempotencyKey != null)) return null;
    const due = new Map<Lane, number>();
    for (const job of jobs) {
      const lane = job.runAt <= now ? this.#lanes.get(job.handler) : undefined;
      if (lane) due.set(lane, (due.get(lane) ?? 0) + 1);
    }
    const open = new Set<Lane>();
    for (const [lane, n] of due) {
      const { handler } = lane;
      if (!this.#idleHandlers.has(handler.name) || handler.remote || handler.rateLimit || handler.name.startsWith('drover.')) continue;
      if (this.options.isHandlerPaused?.(handler.name) || lane.buffer.length > 0 || this.#room.slots(lane) - lane.running < n) continue;
      open.add(lane);
    }
    if (open.size === 0) return null;
    const paused = this.options.pausedQueues?.() ?? [];
    const lanes: Array<Lane | null> = jobs.map((job) => {
      const lane = this.#lanes.get(job.handler)!;
      return open.has(lane) && job.runAt <= now && job.concurrencyKey == null && !paused.includes(job.queue) ? lane : null;
    });
    if (lanes.every((lane) => lane === null)) return null;
    for (const lane of lanes) if (lane) lane.running++;
    const claim: IntakeClaim = { lanes, lease: { workerId: this.options.workerId, leaseMs: lanes.map((lane) => (lane ? this.#room.leaseMsFor(lane.handler) : null)) } };
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.#claims.set(claim, { settled, settle });
    return claim;
  }

  /**
   * After the insert of a claim (`claimAtIntake`): start the jobs it leased
   * (each already marked started) in the slots held for them, and free the
   * slots of the others (`leased` is empty when the insert failed). Leasing
   * stopped meanwhile (shutdown): they go back unspent.
   */
  startClaimed(claim: IntakeClaim, leased: ReadonlyArray<LeasedJob | undefined>): void {
    const now = this.options.clock();
    const back: LeasedJob[] = [];
    let freed = false;
    claim.lanes.forEach((lane, n) => {
      if (!lane) return;
      lane.running--;
      const job = leased[n];
      if (job && !this.#stopped) this.#start(new Attempt(lane, job, now), now);
      else {
        freed = true;
        if (job) back.push(job);
      }
    });
    // Shutdown (releaseBuffered) waits until what the claim leased is handed back (#handBack never rejects).
    const entry = this.#claims.get(claim);
    void (back.length > 0 ? this.#handBack(back) : Promise.resolve()).then(() => {
      this.#claims.delete(claim);
      entry?.settle();
    });
    if (freed) this.#wakeForRoom();
  }

  /** Jobs leased ahead and not yet started. */
  get bufferedCount(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.buffer.length;
    return n;
  }

  /** Hand back every leased-but-unstarted job (shutdown): they were never run, so no attempt is spent. */
  async releaseBuffered(): Promise<number> {
    // Jobs waiting for a rate-limit verdict come back to the buffer once it arrives (leasing has stopped).
    while (this.#admitting.size > 0) await Promise.all(this.#admitting);
    // A lease still out hands its jobs back itself (#pump); wait for that too, and for inserts leasing jobs (startClaimed).
    await this.#pumpRun;
    await Promise.all([...this.#claims.values()].map((claim) => claim.settled));
    const jobs = [...this.#lanes.values()].flatMap((lane) => lane.buffer.clear().map((attempt) => attempt.job));
    await this.#handBack(jobs);
    return jobs.length;
  }

  #handBack(jobs: readonly LeasedJob[]): Promise<unknown> {
    return Promise.all(jobs.map((job) => this.options.store.release(job.id, job.leaseToken).catch(() => undefined)));
  }

  /** Resolves when no job is running. */
  whenIdle(): Promise<void> {
    if (this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Abort every running job (shutdown): their leases are released, not failed. */
  abortAll(reason: Error): void {
    for (const running of this.running.values()) {
      running.shutdownAborted = true;
      running.controller.abort(reason);
    }
  }

  /**
   * Give up on handlers still running (shutdown, after their signal was
   * ignored): inline code cannot be stopped, so forget them and return their
   * jobs for the caller to release. What they return later is not recorded.
   * Jobs whose handler has returned are not among them: their outcome is being
   * written, and releasing the lease under it would run a finished job again.
   */
  abandonRunning(): LeasedJob[] {
    const abandoned: LeasedJob[] = [];
    for (const running of [...this.running.values()]) {
      if (running.returned) continue;
      running.abandoned = true;
      abandoned.push(running.job);
      this.running.delete(running.job.id);
    }
    this.#notifyIdle();
    return abandoned;
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#again = false;
        while (!this.#stopped) {
          const wanted = this.#room.ask(this.#lanes.values(), this.#idleHandlers);
          if (wanted.total === 0) break;
          const seen = this.#workSeen;
          this.#wokenDuringLease.clear();
          const capped = capFields({ ...(this.options.tenantCaps ? { tenants: this.options.tenantCaps } : {}) });
          // Before the lease is sent: its jobs' leases are no older than this.
          const askedAt = this.#monotonic();
          const jobs = await this.options.store.lease({
            workerId: this.options.workerId,
            inProcess: true,
            // Each job's lease follows its own handler's timeout (a quick handler's jobs are recovered quickly
            // after a silent death, whatever else is leased along); each `start` is counted when the store reads it.
            handlers: wanted.handlers,
            limit: Math.min(wanted.total, this.#leaseBatch),
            leaseMs: this.#leaseMarginMs,
            excludeQueues: this.options.pausedQueues?.() ?? [],
            ...capped,
          });
          emitCapRefusals(this.options.lifecycle, capped.capped, this.options.workerId);
          // Leasing stopped while this lease was out (shutdown): none of its jobs may start, and the
          // buffer may already have been handed back, so these go back unspent now, not into it.
          if (this.#stopped) {
            await this.#handBack(jobs);
            break;
          }
          const now = this.options.clock();
          let lane: Lane | undefined;
          for (const job of jobs) {
            // A lease's jobs are mostly of one handler: look its lane up again only when the handler changes.
            if (lane?.handler.name !== job.handler) lane = this.#lanes.get(job.handler);
            lane?.buffer.push(new Attempt(lane, job, now, askedAt));
          }
          for (const { lane: wantedLane } of wanted.handlers) this.#startBuffered(wantedLane, now);
          this.#handBackMarkedUnstarted(wanted.handlers, jobs);
          // Fewer than asked means nothing more is due right now; sleep until woken.
          if (jobs.length < Math.min(wanted.total, this.#leaseBatch)) {
            if (capped.capped?.contended) this.#lookAgainSoon();
            else if (seen === this.#workSeen) this.#noteIdle(wanted.handlers, jobs);
            break;
          }
        }
      } while (this.#again && !this.#stopped);
    } catch (error) {
      this.options.logger.error({ err: toError(error) }, 'lease failed; retrying in 1 s');
      const timer = setTimeout(() => this.wake(), 1000);
      timer.unref();
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * The store may have marked started the first `told` jobs of each handler
   * in this lease (they were to go straight to a free slot). One still in the
   * buffer (a breaker or a slot limit shrank while the lease was out) goes
   * back unspent now: a mark must mean that its handler ran.
   */
  #handBackMarkedUnstarted(asked: readonly LaneAsk[], got: readonly LeasedJob[]): void {
    for (const { lane, name, told } of asked) {
      const { buffer } = lane;
      if (told === 0 || buffer.length === 0) continue;
      const marked = got.filter((job) => job.handler === name).slice(0, told);
      const unstarted = buffer.removeWhere((attempt) => marked.includes(attempt.job));
      if (unstarted.length > 0) this.#releaseJobs(unstarted);
    }
  }

  /** After a short lease: a handler that got fewer jobs than it asked for has none left to lease. */
  #noteIdle(asked: ReadonlyArray<{ name: string; max: number }>, got: readonly LeasedJob[]): void {
    const counts = new Map<string, number>();
    for (const job of got) counts.set(job.handler, (counts.get(job.handler) ?? 0) + 1);
    for (const { name, max } of asked) {
      if ((counts.get(name) ?? 0) < max && !this.#wokenDuringLease.has(name)) this.#idleHandlers.add(name);
    }
  }

  #noteRunTime(lane: Lane, ms: number): void {
    const avg = lane.avgRunMs;
    lane.avgRunMs = Number.isNaN(avg) ? ms : avg * 0.9 + ms * 0.1;
  }

  /** Start buffered jobs of this handler while it has free slots. `now`: the clock, read by the caller just before. */
  #startBuffered(lane: Lane, now: number): void {
    const { handler, buffer } = lane;
    if (buffer.length === 0) return;
    // Paused after these were leased ahead: hand them back unstarted rather than run them.
    if (this.options.isHandlerPaused?.(handler.name)) {
      this.#releaseJobs(buffer.clear());
      return;
    }
    const pausedQueues = this.options.pausedQueues?.() ?? [];
    if (pausedQueues.length > 0 && buffer.some(({ job }) => pausedQueues.includes(job.queue))) {
      this.#releaseJobs(buffer.removeWhere(({ job }) => pausedQueues.includes(job.queue)));
    }
    const { admit } = this.options;
    // Nothing in this loop changes the slot limit (a job counts toward a breaker only once it ran).
    const slots = this.#room.slots(lane);
    while (buffer.length > 0 && lane.running < slots) {
      const attempt = buffer.shift()!;
      const holdUntil = admit?.(attempt.job, handler) ?? null;
      if (holdUntil === null) this.#start(attempt, now);
      else if (typeof holdUntil === 'number') this.#hold(attempt.job, holdUntil);
      else this.#admitLater(attempt, holdUntil);
    }
  }

  /** The store decides whether the job may start; it holds a slot of its handler meanwhile. */
  #admitLater(attempt: Attempt, verdict: Promise<number | null>): void {
    const { job, lane } = attempt;
    lane.running++;
    const decided = verdict
      .catch((error: unknown) => {
        this.options.logger.warn({ err: toError(error), job_id: job.id, handler: lane.handler.name }, 'could not check the rate limit in the store; the job waits a second and is checked again');
        return this.options.clock() + 1_000;
      })
      .then((holdUntil) => {
        this.#admitting.delete(decided);
        lane.running--;
        const now = this.options.clock();
        // Shutdown began meanwhile: back to the buffer, which shutdown hands back unstarted.
        if (this.#stopped) lane.buffer.push(attempt);
        else if (holdUntil === null) this.#start(attempt, now);
        else this.#hold(job, holdUntil);
        if (!this.#stopped) this.#startBuffered(lane, now);
        this.#wakeForRoom();
      });
    this.#admitting.add(decided);
  }

  /** Hand a job back without spending its attempt, scheduled for `runAt` (it waits its turn in the store, not here). */
  #hold(job: LeasedJob, runAt: number): void {
    this.options.store.release(job.id, job.leaseToken, runAt).then((result) => {
      if (result.ok) this.options.onRetryScheduled(runAt);
    }, (error: unknown) => {
      this.options.logger.warn({ err: toError(error), job_id: job.id }, 'handing back a held job failed; its lease will expire and it will run then');
    });
  }

  #releaseJobs(attempts: ReadonlyArray<{ readonly job: LeasedJob }>): void {
    void this.#handBack(attempts.map(({ job }) => job));
  }

  #start(attempt: Attempt, now: number): void {
    const { job, lane } = attempt;
    // A job that waited in the buffer for a while gets its lease renewed before
    // it runs, so the full timeout is covered (in the background: the fence
    // on completion still protects against a lost lease).
    if (now - attempt.leasedAt > this.#leaseMarginMs / 2) {
      void this.options.store.heartbeat(job.id, job.leaseToken, lane.handler.timeoutMs + this.#leaseMarginMs).catch(() => undefined);
    }
    lane.running++;
    attempt.startedAt = now;
    this.running.set(job.id, attempt);
    attempt.done = this.#attempt(attempt);
  }

  /**
   * One job from its start mark to its recorded outcome, in one async frame
   * (this path runs for every job). The handler runs only once its start
   * cannot be lost to a crash of this node: once the store has it, or, on
   * engines with `startOnSend`, once the mark is on its way (in the kernel)
   * while the lease is young by this node's monotonic clock (under half the
   * margin, as `#start` reasons for its renewal; the lease lasts at least the
   * margin). If the handler then kills the node, the reclaim counts a crash
   * (toward poisonAfter), while a job still in the buffer goes back unspent.
   * A mark sent ahead that finds the lease gone aborts the handler
   * (`Attempt.lost`), and nothing is recorded for it. Engines batch the
   * marks of the jobs started in the same turn (sqlite/start-marks.ts,
   * postgres/start-batch.ts).
   */
  async #attempt(attempt: Attempt): Promise<void> {
    const { job, lane } = attempt;
    let marked: Awaited<ReturnType<StorageEngine['start']>>;
    try {
      const watch = this.#startOnSend && this.#monotonic() - attempt.leaseAskedAt < this.#leaseMarginMs / 2 ? attempt : undefined;
      marked = await this.options.store.start(job.id, job.leaseToken, watch);
    } catch (error) {
      this.options.logger.warn({ err: toError(error), job_id: job.id, handler: job.handler }, 'could not record the job as started; it is handed back unstarted');
      return this.#notStarted(attempt, true);
    }
    if (!marked.ok || attempt.shutdownAborted) return this.#notStarted(attempt, marked.ok);

    const { attempts } = this.options;
    const now = this.options.clock();
    attempt.startedAt = now;
    if (this.#jobStart.listening) this.#jobStart.emit({ job, waitMs: Math.max(0, now - job.runAt) });
    try {
      let result: RunOutcome;
      // When the handler returned: its run time, and the start time of the jobs its slot goes to (one clock read for both).
      let returnedAt = now;
      try {
        const outcome = attempts ? attempts.run(job, runAttempt, attempt) : runAttempt(attempt);
        // A synchronous handler's outcome is here already: record it without waiting a turn.
        result = isPromise(outcome) ? await outcome : outcome;
      } finally {
        attempt.returned = true;
        returnedAt = this.options.clock();
        // Free the handler's slot as soon as its code returns; the outcome is
        // written in the next group commit. Waiting for that write would cap
        // throughput at concurrency / commit latency.
        this.#releaseSlot(lane, returnedAt);
      }
      // A suspended job (or one whose lease a step found gone) ends so whatever its handler did after.
      if (attempt.stepContext) result = attempt.stepContext.outcome(result);
      const durationMs = returnedAt - attempt.startedAt;
      this.#noteRunTime(lane, durationMs);
      lane.completions.note(returnedAt);
      // A mark answered at send: the outcome goes after its answer, so a completion never races its own
      // mark for the row (measured: the lock waits cost the server more than the wait costs here).
      // (A failed mark is sent again, which replaces the promise: wait for the latest.)
      for (let answered = attempt.markAnswered; answered !== undefined; answered = attempt.markAnswered === answered ? undefined : attempt.markAnswered) await answered;
      // Its start mark found the lease gone (`job:stale` said so): another holder, or none, owns the job.
      // Unless its own step suspended the job before the mark ran (that write held the lease): the store has it suspended.
      if (attempt.leaseLost && result.kind !== 'suspended') result = STALE_START;
      // Shutdown released this job's lease after giving up on it: too late to record anything.
      if (attempt.abandoned) return;
      await recordOutcome(this.#outcomes, attempt, lane.handler, result, durationMs);
    } catch (error) {
      this.options.logger.error({ err: toError(error), job_id: job.id }, 'recording the outcome failed; the lease will expire and the job run again');
    } finally {
      this.#finish(attempt);
    }
  }

  /** The handler never ran: free the slot; hand the lease back when we still hold it (shutdown began, or the mark failed). */
  #notStarted(attempt: Attempt, holdsLease: boolean): void {
    // A mark sent ahead may still answer (its release can overtake it): nothing ran, nothing to report.
    attempt.abandoned = true;
    if (holdsLease) this.#releaseJobs([attempt]);
    this.#releaseSlot(attempt.lane, this.options.clock());
    this.#finish(attempt);
  }

  #notifyIdle(): void {
    if (this.running.size === 0 && this.#idle.length > 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const resolve of waiters) resolve();
    }
  }

  #releaseSlot(lane: Lane, now: number): void {
    lane.running--;
    if (!this.#stopped) this.#startBuffered(lane, now);
    this.#wakeForRoom();
  }

  #finish(running: RunningJob): void {
    this.running.delete(running.job.id);
    this.#notifyIdle();
    // A job with a concurrency key frees its key, one with a capped tenant a
    // place under its tenant's cap: jobs of any handler waiting on them may run now.
    if (running.job.concurrencyKey !== null || (this.options.tenantCaps && running.job.tenant !== null)) this.wake();
    else this.#wakeForRoom();
  }
}
