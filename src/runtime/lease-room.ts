/**
 * What the dispatcher's lanes have room for (dispatcher.ts): each handler's
 * slots, its lease-ahead window, and so how many jobs it may lease now.
 *
 * A lease names the jobs that will go straight to a free slot
 * (`LeaseRequest.start`), so the store can mark them started in the lease
 * itself instead of in a start mark of their own. That count is worked out
 * when the store reads it, as it runs the lease (SQLite: in the group commit,
 * a turn after the ask), not when the lease is asked for: a quick lane runs
 * its whole buffer in the turn it asks in, so a lease asked with jobs still
 * buffered (none to start at once) comes back to an empty buffer and idle
 * slots. Counted at the ask, its jobs each needed a mark of their own.
 *
 * The count cannot outgrow the slots the lease finds free when it returns:
 * meanwhile jobs only leave the buffer for a slot or finish (only the pump,
 * waiting for this lease, fills the buffer), so the free slots left over
 * after the buffer only grow. A slot limit that shrinks meanwhile (a breaker
 * going half-open) is the exception; the dispatcher hands such jobs back
 * unspent (`told`).
 */
import type { ResolvedHandler } from '../core/config.js';
import type { Lane } from './attempt.js';
import { leaseAheadWindow } from './lease-window.js';

/** Handlers whose jobs average less than this are leased ahead. */
export const FAST_JOB_MS = 50;

/** The dispatcher's options this reads (DispatcherOptions says what each is). */
export interface LeaseRoomOptions {
  /** Most jobs leased ahead per quick handler; default: about 20 ms of its work (lease-window.ts). */
  prefetch?: number;
  /** The thread pool's jobs per thread. */
  threads?: { queueDepth?: number };
  slotLimit?: (handler: string) => number;
  isHandlerPaused?: (handler: string) => boolean;
  startRoom?: (handler: ResolvedHandler) => number | undefined;
}

/**
 * One handler's part of a lease request (`LeaseRequest.handlers`). `start` is
 * counted when first read, by the store as it runs the lease, and kept.
 */
export class LaneAsk {
  readonly name: string;
  readonly leaseMs: number;
  /** The lane's lease-ahead window and buffered jobs when asked (what `nextReach` compares the lease's return with). */
  readonly window: number;
  readonly buffered: number;
  #start: number | undefined;

  constructor(
    readonly lane: Lane,
    /** Jobs it may take. */
    readonly max: number,
    private readonly room: LeaseRoom,
    /** False: none may be marked (jobs admission may hold back: a rate limit, the built-in handlers). */
    private readonly marks: boolean,
    window: number,
  ) {
    this.name = lane.handler.name;
    this.leaseMs = room.leaseMsFor(lane.handler);
    this.window = window;
    this.buffered = lane.buffer.length;
  }

  get start(): number {
    this.#start ??= this.marks ? this.room.startsNow(this.lane, this.max) : 0;
    return this.#start;
  }

  /** How many the store was told start at once (0 if it never asked): those it may have marked. */
  get told(): number {
    return this.#start ?? 0;
  }
}

/**
 * @example
 * const room = new LeaseRoom(options, leaseMarginMs);
 * const wanted = room.ask(lanes, idleHandlers);
 * await store.lease({ handlers: wanted.handlers, limit: Math.min(wanted.total, leaseBatch), ... });
 */
export class LeaseRoom {
  constructor(
    private readonly options: LeaseRoomOptions,
    /** Added to a handler's timeout to get its lease duration. */
    private readonly leaseMarginMs: number,
  ) {}

  /**
   * What each lane may lease now; lanes in `skip` (idle: their last lease
   * found nothing) are not asked.
   */
  ask(lanes: Iterable<Lane>, skip: ReadonlySet<string>): { total: number; handlers: LaneAsk[] } {
    const handlers: LaneAsk[] = [];
    let total = 0;
    for (const lane of lanes) {
      const { handler } = lane;
      if (skip.has(handler.name)) continue;
      // Remote handlers are run by remote workers only (`/v1/workers/lease`).
      if (handler.remote || this.options.isHandlerPaused?.(handler.name)) continue;
      const prefetch = this.prefetch(lane);
      const buffered = lane.buffer.length;
      const limit = this.slots(lane);
      const width = this.width(lane);
      // Refill the lease-ahead buffer only once it is half empty, then to the
      // top: jobs that finish one at a time (each a message from its thread)
      // would otherwise cost one lease call per job. An empty buffer with a
      // free slot always leases (0 > prefetch / 2 is false).
      if (limit >= width && prefetch > 0 && buffered > prefetch / 2) continue;
      let free = limit < width ? limit - lane.running - buffered : width + prefetch - lane.running - buffered;
      const room = this.options.startRoom?.(handler);
      if (room !== undefined) free = Math.min(free, room - buffered);
      if (free > 0) {
        handlers.push(new LaneAsk(lane, free, this, !(handler.rateLimit || handler.name.startsWith('drover.')), prefetch));
        total += free;
      }
    }
    return { total, handlers };
  }

  /** Jobs of the lane that would go straight to a free slot now, at most `max`. */
  startsNow(lane: Lane, max: number): number {
    return Math.max(0, Math.min(max, this.slots(lane) - lane.running - lane.buffer.length));
  }

  /** Jobs of the lane that may run at once right now: its width, below a slot limit (a half-open breaker's probe). */
  slots(lane: Lane): number {
    return Math.min(this.width(lane), this.options.slotLimit?.(lane.handler.name) ?? Number.POSITIVE_INFINITY);
  }

  /**
   * Jobs of a handler that may be started at once: its concurrency; for a
   * quick thread handler, times the thread pool's queue depth. A slow job
   * queued in a thread would only wait there instead of in the store, where
   * another node could take it.
   */
  width(lane: Lane): number {
    const { handler } = lane;
    const threads = this.options.threads;
    if (handler.isolation !== 'thread' || !threads?.queueDepth) return handler.concurrency;
    // NaN (no run yet) is not <= anything.
    return lane.avgRunMs <= FAST_JOB_MS ? handler.concurrency * threads.queueDepth : handler.concurrency;
  }

  prefetch(lane: Lane): number {
    // NaN (no run yet) is not <= anything: no lease-ahead until a run time is known.
    if (!(lane.avgRunMs <= FAST_JOB_MS)) return 0;
    return this.options.prefetch ?? leaseAheadWindow(lane.handler.concurrency, lane.completions.perMs, lane.reach);
  }

  /** A handler's lease: its timeout plus the margin (what heartbeats renew it to as well). */
  leaseMsFor(handler: ResolvedHandler): number {
    return handler.timeoutMs + this.leaseMarginMs;
  }
}
