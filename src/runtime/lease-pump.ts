/**
 * The dispatcher's lease pump (dispatcher.ts): asks the store for due jobs for
 * the lanes with room and puts them in the lanes' buffers. It is woken by new
 * work (store notifications, finished jobs) and otherwise sleeps: there is no
 * poll on the hot path.
 *
 * One pump runs at a time; a wake that arrives while pumping sets a flag so the
 * pump goes round again instead of racing itself. A lane whose last lease found
 * nothing more is idle (`idleHandlers`) until new work for it is announced.
 *
 * What it needs from the dispatcher's runs is `PumpRuns`, one object made once:
 * start a lane's buffered jobs, hand jobs back unspent.
 */
import { toError } from '../core/errors.js';
import type { LeasedJob } from '../core/types.js';
import { Attempt, type Lane } from './attempt.js';
import { capFields, contendedPauseMs, emitCapRefusals } from './cap-refusals.js';
import type { DispatcherOptions } from './dispatcher-options.js';
import type { LeaseRoom, LaneAsk } from './lease-room.js';
import { nextReach } from './lease-window.js';

/** The dispatcher's options the pump reads. */
export type LeasePumpOptions = Pick<DispatcherOptions, 'store' | 'handlers' | 'lifecycle' | 'logger' | 'workerId' | 'clock' | 'pausedQueues' | 'tenantCaps'>;

/** What the pump asks of the dispatcher's runs (per lease, never per job). */
export interface PumpRuns {
  /** Start the lane's buffered jobs while it has free slots. */
  startBuffered(lane: Lane, now: number): void;
  /** Hand jobs back unspent; never rejects. */
  handBack(jobs: readonly LeasedJob[]): Promise<unknown>;
}

export class LeasePump {
  /** Leasing stopped (or not yet started): read on the per-job path, so a plain field. */
  stopped = true;
  /** Handlers whose last lease found nothing more; skipped until new work is announced (`wake`). */
  readonly idleHandlers = new Set<string>();
  #pumping = false;
  #again = false;
  /** The pump in progress (settled when it ends); shutdown waits for a lease still out. */
  #pumpRun: Promise<void> = Promise.resolve();
  /** Counts `wake` calls for all handlers, so a lease that raced one does not mark a handler idle. */
  #workSeen = 0;
  /** Handlers named by `wake` since the current lease began: that lease may have missed their new work. */
  readonly #wokenDuringLease = new Set<string>();
  #contendedRetry: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: LeasePumpOptions,
    /** Each handler's lane, by name (made by the dispatcher). */
    readonly lanes: ReadonlyMap<string, Lane>,
    private readonly room: LeaseRoom,
    private readonly runs: PumpRuns,
    private readonly leaseBatch: number,
    private readonly leaseMarginMs: number,
    private readonly monotonic: () => number,
  ) {}

  stop(): void {
    this.stopped = true;
    clearTimeout(this.#contendedRetry);
    this.#contendedRetry = undefined;
  }

  /** Settles when no lease is out (a lease out at shutdown hands its own jobs back). */
  get settled(): Promise<void> {
    return this.#pumpRun;
  }

  /** Dispatcher.wake says what this does. */
  wake(handlers?: readonly string[]): void {
    if (handlers === undefined) {
      this.#workSeen++;
      this.idleHandlers.clear();
      this.wakeForRoom();
      return;
    }
    let ours = false;
    for (const name of handlers) {
      const handler = this.options.handlers.get(name);
      // Another node's handler, or one only remote workers run: nothing to lease here.
      if (!handler || handler.remote) continue;
      ours = true;
      this.idleHandlers.delete(name);
      this.#wokenDuringLease.add(name);
    }
    if (ours) this.wakeForRoom();
  }

  /**
   * A slot freed up: lease again, but only for handlers that had work last
   * time. Asking an idle handler (the built-in ones usually are) on every
   * finished job would be a lease round trip per job that finds nothing.
   */
  wakeForRoom(): void {
    if (this.stopped) return;
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
    if (this.#contendedRetry || this.stopped) return;
    this.#contendedRetry = setTimeout(() => {
      this.#contendedRetry = undefined;
      this.wakeForRoom();
    }, contendedPauseMs());
    this.#contendedRetry.unref();
  }

  async #pump(): Promise<void> {
    try {
      do {
        this.#again = false;
        while (!this.stopped) {
          const wanted = this.room.ask(this.lanes.values(), this.idleHandlers);
          if (wanted.total === 0) break;
          const seen = this.#workSeen;
          this.#wokenDuringLease.clear();
          const capped = capFields({ ...(this.options.tenantCaps ? { tenants: this.options.tenantCaps } : {}) });
          // Before the lease is sent: its jobs' leases are no older than this.
          const askedAt = this.monotonic();
          const jobs = await this.options.store.lease({
            workerId: this.options.workerId,
            inProcess: true,
            // Each job's lease follows its own handler's timeout (a quick handler's jobs are recovered quickly
            // after a silent death, whatever else is leased along); each `start` is counted when the store reads it.
            handlers: wanted.handlers,
            limit: Math.min(wanted.total, this.leaseBatch),
            leaseMs: this.leaseMarginMs,
            excludeQueues: this.options.pausedQueues?.() ?? [],
            ...capped,
          });
          emitCapRefusals(this.options.lifecycle, capped.capped, this.options.workerId);
          // Leasing stopped while this lease was out (shutdown): none of its jobs may start, and the
          // buffer may already have been handed back, so these go back unspent now, not into it.
          if (this.stopped) {
            await this.runs.handBack(jobs);
            break;
          }
          const now = this.options.clock();
          this.#noteRoundTrip(wanted.handlers, jobs, Math.min(wanted.total, this.leaseBatch));
          let lane: Lane | undefined;
          for (const job of jobs) {
            // A lease's jobs are mostly of one handler: look its lane up again only when the handler changes.
            if (lane?.handler.name !== job.handler) lane = this.lanes.get(job.handler);
            lane?.buffer.push(new Attempt(lane, job, now, askedAt));
          }
          for (const { lane: wantedLane } of wanted.handlers) this.runs.startBuffered(wantedLane, now);
          this.#handBackMarkedUnstarted(wanted.handlers, jobs);
          // Fewer than asked means nothing more is due right now; sleep until woken.
          if (jobs.length < Math.min(wanted.total, this.leaseBatch)) {
            if (capped.capped?.contended) this.#lookAgainSoon();
            else if (seen === this.#workSeen) this.#noteIdle(wanted.handlers, jobs);
            break;
          }
        }
      } while (this.#again && !this.stopped);
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
      if (unstarted.length > 0) void this.runs.handBack(unstarted.map(({ job }) => job));
    }
  }

  /**
   * A lease is back, its jobs not yet buffered: what each lane did while it
   * was out sizes its window's reach (lease-window.ts `nextReach`). Only lanes
   * that lease ahead; a lease of one handler (the usual case) counts nothing.
   */
  #noteRoundTrip(asked: readonly LaneAsk[], got: readonly LeasedJob[], limit: number): void {
    for (const ask of asked) {
      const { lane } = ask;
      if (ask.window === 0) continue;
      const mine = asked.length === 1 ? got.length : got.reduce((n, job) => (job.handler === ask.name ? n + 1 : n), 0);
      lane.reach = nextReach(lane.reach, {
        window: ask.window,
        ran: Math.max(0, ask.buffered - lane.buffer.length),
        // Ran dry while the lease was out: it had jobs buffered when it asked (an empty lane asking is no sign of a small window).
        dry: ask.buffered > 0 && lane.buffer.length === 0 && lane.running < this.room.slots(lane),
        filled: mine >= ask.max || got.length >= limit,
      });
    }
  }

  /** After a short lease: a handler that got fewer jobs than it asked for has none left to lease (nor a reach: it starts again from its rate). */
  #noteIdle(asked: readonly LaneAsk[], got: readonly LeasedJob[]): void {
    const counts = new Map<string, number>();
    for (const job of got) counts.set(job.handler, (counts.get(job.handler) ?? 0) + 1);
    for (const { name, max, lane } of asked) {
      if ((counts.get(name) ?? 0) < max && !this.#wokenDuringLease.has(name)) {
        this.idleHandlers.add(name);
        lane.reach = 0;
      }
    }
  }
}
