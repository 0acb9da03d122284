/**
 * The dispatcher leases due jobs for the handlers that have free capacity and
 * runs them in-process. Three parts, one module each:
 *
 * - the lease pump (lease-pump.ts): lanes, wakes, idle handlers, leasing into
 *   the lanes' buffers; it needs from here only `PumpRuns` (start a lane's
 *   buffered jobs, hand jobs back), one object made once;
 * - intake claims (intake-claims.ts): slots held for an enqueue's jobs while
 *   its insert leases them; it reads the pump's idle set and lanes and the
 *   room's slots;
 * - one attempt's run, here: from the buffer through its start mark to its
 *   recorded outcome, and the slot it frees. This path runs for every job, so
 *   it stays in one class with its fields (no closures or hops per job).
 *
 * Lease-ahead: a handler whose jobs are quick (recent average under
 * `FAST_JOB_MS`, lease-room.ts) may hold extra leased jobs in a local
 * buffer, so a freed slot starts the next job at once and more jobs ride in
 * each group commit. The buffer holds about 20 ms of the handler's work, more
 * when its leases come back slower than that (lease-window.ts): it is also how
 * far a newly arrived job may be overtaken.
 * Slow handlers get no buffer: holding their jobs here would only keep them
 * from other nodes. Buffered jobs are `running` in the store (their lease
 * protects them); on shutdown they are released unstarted.
 */
import { toError } from '../core/errors.js';
import type { LeasedJob, NewJob } from '../core/types.js';
import type { StorageEngine } from '../store/engine.js';
import { Attempt, AttemptQueue, type AttemptDeps, type Lane } from './attempt.js';
import { runInline, type RunningJob, type RunOutcome } from './job-runner.js';
import type { LifecycleChannel } from './lifecycle.js';
import { recordOutcome, type OutcomeContext } from './outcome.js';
import { CompletionRate } from './lease-window.js';
import { LeaseRoom } from './lease-room.js';
import { LeasePump } from './lease-pump.js';
import { IntakeClaims, type IntakeClaim } from './intake-claims.js';
import type { DispatcherOptions } from './dispatcher-options.js';

export type { IntakeClaim } from './intake-claims.js';
export type { DispatcherOptions } from './dispatcher-options.js';

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
  /** Jobs waiting for the store's rate-limit verdict (see `admit`). */
  readonly #admitting = new Set<Promise<void>>();
  /** Leasing into the lanes (lease-pump.ts); its `stopped` is read on the per-job path. */
  readonly #pump: LeasePump;
  /** Slots held for enqueues leasing their own jobs (intake-claims.ts). */
  readonly #claims: IntakeClaims;
  #idle: Array<() => void> = [];
  readonly #leaseMarginMs: number;
  readonly #outcomes: OutcomeContext;
  /** Slots, lease-ahead room and the starts that ride in a lease (lease-room.ts). */
  readonly #room: LeaseRoom;
  readonly #jobStart: LifecycleChannel<'job:start'>;
  readonly #monotonic: () => number;
  /** The store may answer a start mark once it is sent (`startOnSend`): a young lease's handler begins then. */
  readonly #startOnSend: boolean;

  constructor(private readonly options: DispatcherOptions) {
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
    /** Each handler's slots, buffer and run-time average (attempt.ts), by name: one lookup serves a job's whole path. */
    const lanes = new Map<string, Lane>();
    for (const handler of options.handlers.values()) {
      const threads = handler.isolation === 'thread' && options.threads ? options.threads : null;
      lanes.set(handler.name, { handler, deps, running: 0, buffer: new AttemptQueue(), avgRunMs: Number.NaN, completions: new CompletionRate(), reach: 0, threads });
    }
    const runs = { startBuffered: (lane: Lane, now: number) => this.#startBuffered(lane, now), handBack: (jobs: readonly LeasedJob[]) => this.#handBack(jobs) };
    this.#pump = new LeasePump(options, lanes, this.#room, runs, options.leaseBatch ?? 250, this.#leaseMarginMs, this.#monotonic);
    this.#claims = new IntakeClaims(options, this.#pump, this.#room);
  }

  start(): void {
    this.#pump.stopped = false;
    const now = this.options.clock();
    for (const lane of this.#pump.lanes.values()) this.#startBuffered(lane, now);
    this.wake();
  }

  /** Stop leasing; running jobs continue. */
  stopLeasing(): void {
    this.#pump.stop();
  }

  get leasing(): boolean {
    return !this.#pump.stopped;
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
    this.#pump.wake(handlers);
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
    return this.#claims.claim(jobs, now);
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
      if (job && !this.#pump.stopped) this.#start(new Attempt(lane, job, now), now);
      else {
        freed = true;
        if (job) back.push(job);
      }
    });
    // Shutdown (releaseBuffered) waits until what the claim leased is handed back (#handBack never rejects).
    this.#claims.settle(claim, back.length > 0 ? this.#handBack(back) : Promise.resolve());
    if (freed) this.#pump.wakeForRoom();
  }

  /** Jobs leased ahead and not yet started. */
  get bufferedCount(): number {
    let n = 0;
    for (const lane of this.#pump.lanes.values()) n += lane.buffer.length;
    return n;
  }

  /** Hand back every leased-but-unstarted job (shutdown): they were never run, so no attempt is spent. */
  async releaseBuffered(): Promise<number> {
    // Jobs waiting for a rate-limit verdict come back to the buffer once it arrives (leasing has stopped).
    while (this.#admitting.size > 0) await Promise.all(this.#admitting);
    // A lease still out hands its jobs back itself (lease-pump.ts); wait for that too, and for inserts leasing jobs (startClaimed).
    await this.#pump.settled;
    await this.#claims.settled();
    const jobs = [...this.#pump.lanes.values()].flatMap((lane) => lane.buffer.clear().map((attempt) => attempt.job));
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
        if (this.#pump.stopped) lane.buffer.push(attempt);
        else if (holdUntil === null) this.#start(attempt, now);
        else this.#hold(job, holdUntil);
        if (!this.#pump.stopped) this.#startBuffered(lane, now);
        this.#pump.wakeForRoom();
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
      // Its start mark found the lease gone: another holder, or none, owns the job. Unless its own step
      // suspended the job before the mark ran (that write held the lease): the store has it suspended, and
      // nothing was lost.
      if (attempt.leaseLost && result.kind !== 'suspended') {
        result = STALE_START;
        this.options.lifecycle.emit('job:stale', { job, op: 'start' });
      }
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
    // `#idle` first: it is read on every call, so the check has type feedback before the
    // optimiser compiles `#finish`; the other way round its first read (the last job) deoptimised it.
    if (this.#idle.length > 0 && this.running.size === 0) {
      const waiters = this.#idle;
      this.#idle = [];
      for (const resolve of waiters) resolve();
    }
  }

  #releaseSlot(lane: Lane, now: number): void {
    lane.running--;
    const pump = this.#pump;
    if (!pump.stopped) this.#startBuffered(lane, now);
    pump.wakeForRoom();
  }

  #finish(running: RunningJob): void {
    this.running.delete(running.job.id);
    this.#notifyIdle();
    // A job with a concurrency key frees its key, one with a capped tenant a
    // place under its tenant's cap: jobs of any handler waiting on them may run now.
    if (running.job.concurrencyKey !== null || (this.options.tenantCaps && running.job.tenant !== null)) this.wake();
    else this.#pump.wakeForRoom();
  }
}
